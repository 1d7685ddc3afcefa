"""Shared data for the annb Python tests: generated embeddings whose IDs are
not row positions, a MovieLens-style catalog and interactions, and the
brute force (numpy, float64) every answer is checked against."""
import os

import numpy as np
import pytest

import annb

GENRES = ["Action", "Comedy", "Drama", "Horror", "Sci-Fi"]


class Data:
    """Items, users, catalog and interactions written once per session."""

    def __init__(self, root, seed=7, n_items=1500, n_users=400, d=16):
        rng = np.random.default_rng(seed)
        self.root = root
        self.d = d
        # IDs: sparse, shuffled, never the row
        self.item_ids = rng.choice(np.arange(3, 10**9, 997, dtype=np.int64), n_items,
                                   replace=False)
        self.user_ids = rng.choice(np.arange(5, 10**7, 13, dtype=np.int64), n_users,
                                   replace=False)
        # inner product with log-normal item norms: popular items have long vectors
        v = rng.standard_normal((n_items, d)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        self.item_vecs = (v * rng.lognormal(0, 0.5, (n_items, 1))).astype(np.float32)
        self.user_vecs = rng.standard_normal((n_users, d)).astype(np.float32)
        self.catalog = os.path.join(root, "movies.dat")
        self.item_genres = {}
        with open(self.catalog, "w", encoding="latin-1") as f:
            for i, iid in enumerate(self.item_ids[: n_items - 100]):  # 100 without an entry
                gs = sorted(set(rng.choice(GENRES, rng.integers(1, 3)).tolist()))
                self.item_genres[int(iid)] = gs
                f.write(f"{iid}::Movie {iid} (Caf\xe9 {i})::{'|'.join(gs)}\n")
        self.interactions = os.path.join(root, "ratings.dat")
        self.seen = {}
        with open(self.interactions, "w") as f:
            for u in self.user_ids:
                items = rng.choice(self.item_ids, rng.integers(0, 40), replace=False)
                self.seen[int(u)] = set(items.tolist())
                for it in items:
                    f.write(f"{u}::{it}::4::978300760\n")
        self.bundles = {}

    def bundle(self, metric):
        """A flat bundle of everything, for metric, built from the arrays."""
        if metric not in self.bundles:
            path = os.path.join(self.root, f"{metric}.annb")
            annb.build(path, (self.item_ids, self.item_vecs), catalog=self.catalog,
                       users=(self.user_ids, self.user_vecs), interactions=self.interactions,
                       metric=metric, index="flat")
            self.bundles[metric] = path
        return self.bundles[metric]


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return Data(str(tmp_path_factory.mktemp("annb")))


def brute(metric, queries, vecs):
    """Scores (float64) of every row of vecs for each query, and whether
    higher is better."""
    q = np.asarray(queries, np.float64)
    v = np.asarray(vecs, np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    if metric == "l2":
        return ((q[:, None, :] - v[None, :, :]) ** 2).sum(-1), False
    return q @ v.T, True


def assert_top_k(ids, scores, metric, queries, cand_ids, cand_vecs, k, allowed=None):
    """Each row of (ids, scores) is a correct top-k of the candidates (those
    allowed for that row): every returned ID is a candidate with the score
    returned, best first, no better candidate left out (within float32
    rounding), and as many results as there are allowed candidates up to k.
    Ties at the k-th score may be broken either way."""
    full, higher = brute(metric, queries, cand_vecs)
    pos = {int(i): r for r, i in enumerate(cand_ids)}
    assert ids.shape == scores.shape == (len(full), k)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    for q in range(len(full)):
        ok = np.ones(len(cand_ids), bool) if allowed is None else allowed(q)
        row = np.where(ok, full[q], -np.inf if higher else np.inf)
        order = np.argsort(-row if higher else row, kind="stable")[: ok.sum()][:k]
        want = row[order]
        got_ids = ids[q][ids[q] != annb.ID_NONE]
        assert len(got_ids) == len(order), (q, len(got_ids), len(order))
        assert (ids[q][len(order):] == annb.ID_NONE).all()
        got = scores[q][: len(order)]
        tol = 1e-4 * max(1.0, float(np.abs(want).max()) if len(want) else 1.0)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
        for i, s in zip(got_ids, got):
            r = pos[int(i)]
            assert ok[r], (q, int(i), "not allowed")
            assert abs(full[q][r] - s) <= tol, (q, int(i), full[q][r], s)
        assert len(set(got_ids.tolist())) == len(got_ids)
