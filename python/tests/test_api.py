"""annb.Bundle: every question against numpy brute force, dtypes and shapes,
errors, zero-copy IDs, threads, and memory over many calls."""
import os
import threading

import numpy as np
import pytest

import annb
from conftest import GENRES, assert_top_k

METRICS = ["ip", "l2", "cosine"]


@pytest.mark.parametrize("metric", METRICS)
def test_search_matches_brute_force(data, metric):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((25, data.d)).astype(np.float32)
    with annb.open(data.bundle(metric)) as b:
        for k in (1, 10, 57):
            ids, scores = b.search(q, k)
            assert_top_k(ids, scores, metric, q, data.item_ids, data.item_vecs, k)
        # more than there are: the tail is ID_NONE
        ids, scores = b.search(q[:2], 1600)
        assert_top_k(ids, scores, metric, q[:2], data.item_ids, data.item_vecs, 1600)


@pytest.mark.parametrize("metric", METRICS)
def test_search_exclude_and_genres(data, metric):
    rng = np.random.default_rng(2)
    q = rng.standard_normal((8, data.d)).astype(np.float32)
    exclude = data.item_ids[rng.choice(len(data.item_ids), 300, replace=False)]
    ex = set(exclude.tolist())
    genre_of = data.item_genres
    with annb.open(data.bundle(metric)) as b:
        ids, scores = b.search(q, 20, exclude=exclude)
        assert_top_k(ids, scores, metric, q, data.item_ids, data.item_vecs, 20,
                     allowed=lambda _q: np.array([int(i) not in ex for i in data.item_ids]))
        ids, scores = b.search(q, 20, genres=["Horror", "Sci-Fi"], exclude=exclude)
        ok = np.array([int(i) not in ex and bool({"Horror", "Sci-Fi"} & set(genre_of.get(int(i), [])))
                       for i in data.item_ids])
        assert_top_k(ids, scores, metric, q, data.item_ids, data.item_vecs, 20,
                     allowed=lambda _q: ok)
        ids1, _ = b.search(q, 5, genres="Comedy")  # one name as a str
        for i in ids1.ravel():
            assert "Comedy" in b.genres(int(i))


@pytest.mark.parametrize("metric", METRICS)
def test_recommend(data, metric):
    users = data.user_ids[:30]
    uvecs = data.user_vecs[:30]
    with annb.open(data.bundle(metric)) as b:
        # default: the bundle stores interactions, so seen items are excluded
        ids, scores = b.recommend(users, 15)
        seen = [data.seen[int(u)] for u in users]
        assert_top_k(ids, scores, metric, uvecs, data.item_ids, data.item_vecs, 15,
                     allowed=lambda q: np.array([int(i) not in seen[q] for i in data.item_ids]))
        ids2, scores2 = b.recommend(users, 15, exclude_seen=True)
        assert (ids2 == ids).all()
        ids, scores = b.recommend(users, 15, exclude_seen=False, genres=["Drama"])
        ok = np.array(["Drama" in data.item_genres.get(int(i), []) for i in data.item_ids])
        assert_top_k(ids, scores, metric, uvecs, data.item_ids, data.item_vecs, 15,
                     allowed=lambda q: ok)
        one_ids, one_scores = b.recommend(int(users[3]), 15, exclude_seen=False)
        all_ids, _ = b.recommend(users, 15, exclude_seen=False)
        assert one_ids.shape == (1, 15) and (one_ids[0] == all_ids[3]).all()


@pytest.mark.parametrize("metric", METRICS)
def test_similar_and_users_for_item(data, metric):
    items = data.item_ids[[0, 5, 99, 1400]]
    ivecs = data.item_vecs[[0, 5, 99, 1400]]
    users = data.user_ids[[1, 2, 399]]
    uvecs = data.user_vecs[[1, 2, 399]]
    with annb.open(data.bundle(metric)) as b:
        ids, scores = b.similar_items(items, 12)
        assert_top_k(ids, scores, metric, ivecs, data.item_ids, data.item_vecs, 12,
                     allowed=lambda q: data.item_ids != items[q])
        ids, scores = b.similar_users(users, 9)
        assert_top_k(ids, scores, metric, uvecs, data.user_ids, data.user_vecs, 9,
                     allowed=lambda q: data.user_ids != users[q])
        ids, scores = b.users_for_item(items, 7)
        assert_top_k(ids, scores, metric, ivecs, data.user_ids, data.user_vecs, 7)
        ex = data.user_ids[:50]
        ids, scores = b.users_for_item(items, 7, exclude=ex)
        assert_top_k(ids, scores, metric, ivecs, data.user_ids, data.user_vecs, 7,
                     allowed=lambda q: ~np.isin(data.user_ids, ex))


def test_lookups(data):
    with annb.open(data.bundle("ip")) as b:
        iid = int(data.item_ids[10])
        np.testing.assert_array_equal(b.vector(iid), data.item_vecs[10])
        np.testing.assert_array_equal(b.vector(data.item_ids[:3]), data.item_vecs[:3])
        np.testing.assert_array_equal(b.vector(int(data.user_ids[4]), space="users"),
                                      data.user_vecs[4])
        row = int(np.where(data.item_ids == iid)[0][0])
        assert b.title(iid) == f"Movie {iid} (Caf\u00e9 {row})"
        assert b.genres(iid) == data.item_genres[iid]
        no_entry = int(data.item_ids[-1])  # the last 100 items have no catalog entry
        assert b.title(no_entry) is None and b.genres(no_entry) == []
        info = b.info
        assert info["dimension"] == data.d and info["count"] == len(data.item_ids)
        assert info["users"] == len(data.user_ids) and info["metric"] == "ip"
        assert info["index"] == "Flat" and info["has_interactions"]
        assert sorted(info["genres"]) == GENRES
        assert info["provenance"]["metric"] == "ip"
        assert len(info["provenance"]["items_content_sha256"]) == 64
        assert b.recall == {}  # exact: recall 1 by construction
        b.verify()
        assert "3 items" not in repr(b) and "1500 items x 16" in repr(b)


def test_ids_zero_copy_outlives_close(data):
    b = annb.open(data.bundle("ip"))
    ids = b.ids()
    users = b.ids("users")
    np.testing.assert_array_equal(ids, np.sort(data.item_ids))
    np.testing.assert_array_equal(users, np.sort(data.user_ids))
    assert ids.dtype == np.int64 and not ids.flags.writeable and not ids.flags.owndata
    with pytest.raises(ValueError):
        ids[0] = 1
    assert b.ids() .__array_interface__["data"][0] == ids.__array_interface__["data"][0]
    b.close()
    del b
    # the view keeps the mapping: still readable after the Bundle is gone
    np.testing.assert_array_equal(ids, np.sort(data.item_ids))
    assert users[-1] == data.user_ids.max()


def test_dtypes_and_shapes(data):
    rng = np.random.default_rng(3)
    q32 = rng.standard_normal((6, data.d)).astype(np.float32)
    with annb.open(data.bundle("l2")) as b:
        want_ids, want_scores = b.search(q32, 10)
        for q in (q32.astype(np.float64), np.asfortranarray(q32),
                  np.repeat(q32, 2, axis=0)[::2], q32.tolist()):
            ids, scores = b.search(q, 10)
            assert (ids == want_ids).all() and (scores == want_scores).all()
        ids, scores = b.search(q32[2], 10)  # 1-D: one query, still 2-D out
        assert ids.shape == (1, 10) and (ids[0] == want_ids[2]).all()
        strided = np.zeros((6, data.d * 2), np.float32)
        strided[:, ::2] = q32
        ids, _ = b.search(strided[:, ::2], 10)
        assert (ids == want_ids).all()
        with pytest.raises(annb.DimensionError) as e:
            b.search(np.zeros((2, data.d + 1)), 5)
        assert f"{data.d + 1}" in str(e.value) and f"{data.d}" in str(e.value)
        assert isinstance(e.value, ValueError) and e.value.code == -11
        with pytest.raises(ValueError):
            b.search(np.zeros((2, 2, data.d)), 5)
        for bad in (np.zeros(data.d, np.complex64), np.array(["1.0"] * data.d),
                    np.zeros(data.d, bool)):
            with pytest.raises(annb.InvalidError, match="expected real numbers"):
                b.search(bad, 5)
        ids, scores = b.search(np.zeros((0, data.d), np.float32), 5)
        assert ids.shape == (0, 5)
        # IDs as any integer array
        i32 = data.item_ids[:2].astype(np.int64)
        a, _ = b.similar_items(i32, 3)
        c, _ = b.similar_items(list(map(int, i32)), 3)
        assert (a == c).all()


def test_errors(data, tmp_path):
    with annb.open(data.bundle("ip")) as b:
        with pytest.raises(annb.NotFoundError) as e:
            b.recommend(4, 5)
        assert isinstance(e.value, KeyError) and str(e.value) == "user 4 is not in the bundle"
        with pytest.raises(annb.NotFoundError, match="item 1 is not in the bundle"):
            b.similar_items([int(data.item_ids[0]), 1], 5)
        with pytest.raises(annb.NotFoundError, match='unknown genre "Western"'):
            b.search(np.ones(data.d), 5, genres=["Western"])
        with pytest.raises(annb.InvalidError):
            b.search(np.ones(data.d), 0)
        with pytest.raises(annb.InvalidError, match="nprobe and ef_search"):
            b.search(np.ones(data.d), 5, nprobe=-1)
        with pytest.raises(annb.InvalidError, match="genres filter items"):
            b.similar_users(int(data.user_ids[0]), 5, genres="Drama")
        with pytest.raises(annb.NotFoundError):
            b.title(2)
    path = tmp_path / "no-users.annb"
    annb.build(path, (data.item_ids, data.item_vecs))
    with annb.open(path) as b:
        with pytest.raises(annb.UnsupportedError, match="has no users"):
            b.recommend(int(data.user_ids[0]), 5)
        assert b.title(int(data.item_ids[0])) is None
    path2 = tmp_path / "users-only.annb"
    annb.build(path2, (data.item_ids, data.item_vecs), users=(data.user_ids, data.user_vecs))
    with annb.open(path2) as b:
        with pytest.raises(annb.UnsupportedError, match="interactions"):
            b.recommend(int(data.user_ids[0]), 5, exclude_seen=True)
        b.recommend(int(data.user_ids[0]), 5)  # None: nothing to exclude, no error
    bad = tmp_path / "bad.annb"
    bad.write_bytes(b"not a bundle at all" * 100)
    with pytest.raises(annb.NotBundleError):
        annb.open(bad)
    with pytest.raises(annb.IOError) as e:
        annb.open(tmp_path / "missing.annb")
    assert isinstance(e.value, OSError) and "missing.annb" in str(e.value)
    damaged = tmp_path / "damaged.annb"
    raw = bytearray(open(path, "rb").read())
    raw[-100] ^= 0xFF  # in the last section
    damaged.write_bytes(bytes(raw))
    with pytest.raises(annb.Error):
        annb.open(damaged, verify=True)
    b = annb.open(path)
    b.close()
    with pytest.raises(ValueError, match="closed"):
        b.search(np.ones(data.d))


def test_frame(data):
    with annb.open(data.bundle("ip")) as b:
        users = data.user_ids[:3]
        ids, scores = b.recommend(users, 5, exclude_seen=False)
        ids[1, 4] = annb.ID_NONE  # an empty slot is dropped
        df = b.frame(ids, scores)
        assert list(df.columns) == ["query", "rank", "id", "score", "title", "genres"]
        assert len(df) == 14
        first = df[df["query"] == 0]
        assert first["rank"].tolist() == [1, 2, 3, 4, 5]
        assert first["id"].tolist() == ids[0].tolist()
        for _, r in df.iterrows():
            assert r["title"] == b.title(int(r["id"]))
            assert r["genres"] == "|".join(b.genres(int(r["id"])))
        # as_frame=True: the same frame from the question itself
        ids, scores = b.recommend(users, 5, exclude_seen=False)
        direct = b.recommend(users, 5, exclude_seen=False, as_frame=True)
        assert direct.equals(b.frame(ids, scores))
        q = data.item_vecs[:2]
        assert b.search(q, 3, as_frame=True).equals(b.frame(*b.search(q, 3)))
        users_df = b.similar_users(users, 4, as_frame=True)
        assert list(users_df.columns) == ["query", "rank", "id", "score"]
        assert users_df["id"].tolist() == b.similar_users(users, 4)[0].ravel().tolist()


def test_threads_share_one_bundle(data):
    rng = np.random.default_rng(4)
    queries = rng.standard_normal((8, 40, data.d)).astype(np.float32)
    with annb.open(data.bundle("cosine")) as b:
        alone = [b.search(q, 10) for q in queries]
        alone_rec = b.recommend(data.user_ids, 10)
        results = [None] * 8
        errors = []

        def work(t):
            try:
                for _ in range(20):
                    got = b.search(queries[t], 10)
                    rec = b.recommend(data.user_ids, 10, threads=2)
                    assert (got[0] == alone[t][0]).all() and (got[1] == alone[t][1]).all()
                    assert (rec[0] == alone_rec[0]).all()
                results[t] = True
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert all(results)


def test_close_while_other_threads_search(data):
    """close() with searches running: they finish on the mapping they hold."""
    b = annb.open(data.bundle("ip"))
    q = np.random.default_rng(5).standard_normal((200, data.d)).astype(np.float32)
    want = b.search(q, 50)[0]
    outcomes = []

    def work():
        for _ in range(30):
            try:
                outcomes.append((b.search(q, 50)[0] == want).all())
            except ValueError:  # closed before this call started
                outcomes.append(True)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    b.close()
    for t in threads:
        t.join()
    assert all(outcomes) and len(outcomes) == 90


def _rss_pages():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1])


def test_rss_flat_over_100000_calls(data):
    page = os.sysconf("SC_PAGE_SIZE")
    with annb.open(data.bundle("ip")) as b:
        q = np.random.default_rng(6).standard_normal(data.d).astype(np.float32)
        user = int(data.user_ids[0])
        item = int(data.item_ids[0])
        ex = data.item_ids[:3]

        def calls(n):
            for i in range(n):
                m = i % 5
                if m == 0:
                    b.search(q, 10, exclude=ex, genres=["Drama", "Comedy"])
                elif m == 1:
                    b.recommend(user, 10)
                elif m == 2:
                    b.similar_items(item, 10)
                elif m == 3:
                    b.title(item), b.genres(item), b.ids()
                else:
                    try:
                        b.recommend(4, 10)
                    except annb.NotFoundError:
                        pass

        calls(20_000)  # warm up: allocator pools, numpy caches
        before = _rss_pages()
        calls(100_000)
        grown = (_rss_pages() - before) * page
    # 100,000 calls leaking even 64 bytes each would be 6.4 MB
    assert grown < 2 << 20, f"RSS grew by {grown} bytes over 100,000 calls"


def test_exact_and_effort_on_an_approximate_index(data, tmp_path):
    path = tmp_path / "ivf.annb"
    annb.build(path, (data.item_ids, data.item_vecs), users=(data.user_ids, data.user_vecs),
               index="IVF32,Flat")
    q = np.random.default_rng(8).standard_normal((30, data.d)).astype(np.float32)
    with annb.open(path) as b:
        assert b.info["index"].startswith("IVF") and b.recall[10]["recall"] >= 0.95
        # exact: the brute force's answer even at the least effort
        ids, scores = b.search(q, 10, exact=True, nprobe=1)
        assert_top_k(ids, scores, "ip", q, data.item_ids, data.item_vecs, 10)
        ids, scores = b.recommend(data.user_ids[:10], 10, exact=True)
        assert_top_k(ids, scores, "ip", data.user_vecs[:10], data.item_ids, data.item_vecs, 10)
        # every list searched: exact too; one list: a different, worse answer
        ids, scores = b.search(q, 10, nprobe=32)
        assert_top_k(ids, scores, "ip", q, data.item_ids, data.item_vecs, 10)
        low, _ = b.search(q, 10, nprobe=1)
        assert (low != ids).any()


def test_ids_are_integers_only(data):
    """A float, bool or string ID that is no integer is refused, never cast
    into another ID; a str is read as the library reads text in an integer
    space: a decimal integer, digits and a leading '-' only."""
    user = int(data.user_ids[0])
    item = int(data.item_ids[0])
    with annb.open(data.bundle("ip")) as b:
        for bad in (user + 0.7, f"+{user}", f" {user}", f"{user}.0", "u1", True, [float(user)],
                    np.array([user], np.float64)):
            with pytest.raises(annb.InvalidError):
                b.recommend(bad, 5)
        a, _ = b.recommend(str(user), 5)
        c, _ = b.recommend(user, 5)
        assert a.dtype == np.int64 and (a == c).all()
        for call in (lambda: b.vector([item + 0.5]), lambda: b.title(float(item)),
                     lambda: b.genres(True),
                     lambda: b.search(np.ones(data.d), 5, exclude=[item + 0.5]),
                     lambda: b.similar_items(np.array([2**63], np.uint64), 5)):
            with pytest.raises(annb.InvalidError):
                call()
        # integer kinds of any width are fine
        a, _ = b.recommend(np.array([user], np.uint32 if user < 2**32 else np.int64), 5)
        c, _ = b.recommend(np.int64(user), 5)
        assert (a == c).all()
        assert b.title(np.int64(item)) == b.title(item)


def test_close_from_argument_conversion(data):
    """An argument whose conversion closes the bundle: no use after free."""
    b = annb.open(data.bundle("ip"))
    item = int(data.item_ids[0])

    class Closing:
        def __index__(self):
            b.close()
            return item

        def __int__(self):
            return self.__index__()

        def __array__(self, dtype=None):
            b.close()
            return np.array(item, dtype=np.int64)

    for call in (lambda: b.title(Closing()), lambda: b.genres(Closing()),
                 lambda: b.vector(Closing())):
        b = annb.open(data.bundle("ip"))
        with pytest.raises(ValueError, match="closed"):
            call()


def test_messages_not_utf8(tmp_path):
    with pytest.raises(annb.IOError) as e:
        annb.open(os.fsencode(str(tmp_path)) + b"/caf\xe9-missing.annb")
    assert "caf\\xe9-missing.annb" in str(e.value)


def test_build_options_range_checked(data, tmp_path):
    out = tmp_path / "x.annb"
    for kwargs in (dict(shard=(2**32 + 1, 3)), dict(shard=(-1, 3)), dict(recall_k=-1),
                   dict(max_memory=-5)):
        with pytest.raises(annb.InvalidError):
            annb.build(out, (data.item_ids, data.item_vecs), **kwargs)
    assert not out.exists()


def test_gil_released_during_a_search(data, tmp_path):
    """A Python thread keeps running while another thread's long search runs."""
    rng = np.random.default_rng(9)
    n, d = 60_000, 64
    path = tmp_path / "big.annb"
    annb.build(path, (np.arange(n, dtype=np.int64) * 3 + 1,
                      rng.standard_normal((n, d)).astype(np.float32)))
    q = rng.standard_normal((400, d)).astype(np.float32)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)

    import sys

    interval = sys.getswitchinterval()
    # a long switch interval: a thread holding the GIL keeps it, so the
    # counter can only run while the search has let the GIL go
    sys.setswitchinterval(0.5)
    try:
        with annb.open(path) as b:
            b.search(q[:5], 10)
            t = threading.Thread(target=count)
            t.start()
            while not ticks:
                pass
            before = len(ticks)
            b.search(q, 100)
            during = len(ticks) - before
            done.set()
            t.join()
    finally:
        sys.setswitchinterval(interval)
    # held for the whole search, the GIL would have let the counter add nothing
    assert during > 1000, during


def test_no_reference_or_allocation_kept_per_call(data):
    """Each method, error paths included: the inputs' reference counts are
    unchanged and Python-allocated memory does not grow (tracemalloc), so a
    leak of even one small object per call shows."""
    import sys
    import tracemalloc

    q = np.random.default_rng(10).standard_normal((2, data.d)).astype(np.float32)
    users = data.user_ids[:2].copy()
    items = data.item_ids[:2].copy()
    ex = data.item_ids[5:8].copy()
    genres = ["Drama", "Comedy"]
    item = int(items[0])

    def expect(exc, f):
        try:
            f()
        except exc:
            return
        raise AssertionError("no error")

    with annb.open(data.bundle("ip")) as b:
        calls = {
            "search": lambda: b.search(q, 5, exclude=ex, genres=genres),
            "recommend": lambda: b.recommend(users, 5, exclude=ex),
            "similar_items": lambda: b.similar_items(items, 5),
            "similar_users": lambda: b.similar_users(users, 5),
            "users_for_item": lambda: b.users_for_item(items, 5),
            "vector": lambda: b.vector(items),
            "title+genres": lambda: (b.title(item), b.genres(item)),
            "ids": lambda: b.ids("users"),
            "not found": lambda: expect(annb.NotFoundError, lambda: b.recommend([4], 5)),
            "bad genre": lambda: expect(annb.NotFoundError, lambda: b.search(q, 5, genres=["X"])),
            "bad dimension": lambda: expect(annb.DimensionError, lambda: b.search(q[:, :3], 5)),
            "bad id": lambda: expect(annb.InvalidError, lambda: b.vector([1.5])),
        }
        inputs = [q, users, items, ex, genres]
        counts = [sys.getrefcount(x) for x in inputs]
        for name, call in calls.items():
            for _ in range(200):
                call()
            tracemalloc.start()
            try:
                start = tracemalloc.get_traced_memory()[0]
                for _ in range(5000):
                    call()
                grown = tracemalloc.get_traced_memory()[0] - start
            finally:
                tracemalloc.stop()
            # one leaked int (28 bytes) per call would be 140,000 bytes
            assert grown < 50_000, (name, grown)
        assert [sys.getrefcount(x) for x in inputs] == counts
