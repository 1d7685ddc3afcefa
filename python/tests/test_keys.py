"""String IDs (SPEC 6.19) in the Python package: str in, str out on keyed
spaces, int64 unchanged on integer ones; keys(), key_id(); annb.build from
arrays of str (the same bundle as ann-build on the same values); errors.
Answers are checked against a numpy brute force."""
import csv
import json
import os
import subprocess

import numpy as np
import pytest

import annb

ITEM_KEYS = ["tt%07d" % (114709 + 3 * i) for i in range(40)] + [
    "has space", "x:y", "a/b", "a,b", 'quo"te', "back\\slash", "sku-\u00e4", "\u65e5\u672c", "123"]
USER_KEYS = ["alice", "bob", "carol x", "u:1", "\u00fc", "7"]


class Keyed:
    """Keyed inputs as files (two-tower CSVs, a movies.csv, an interactions
    CSV) and as arrays of str, and the bundle built from the files."""

    def __init__(self, root):
        rng = np.random.default_rng(3)
        self.root = root
        self.items = (rng.integers(-128, 129, (len(ITEM_KEYS), 8)) / 64).astype(np.float32)
        self.users = (rng.integers(-128, 129, (len(USER_KEYS), 8)) / 64).astype(np.float32)
        self.item_keys = np.array(ITEM_KEYS)
        self.user_keys = np.array(USER_KEYS, dtype=object)
        self.genres = {k: ["Drama" if n % 2 else "Comedy"] for n, k in enumerate(ITEM_KEYS[:-3])}
        self.seen = {"alice": {"a,b", ITEM_KEYS[0]}, "bob": {"x:y"}, "carol x": set()}

        def write(name, header, rows):
            p = os.path.join(root, name)
            with open(p, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(rows)
            return p
        vec = lambda v: ",".join(repr(float(x)) for x in v)  # noqa: E731
        self.items_csv = write("items.csv", ["movie_id", "movie_embedding"],
                               [(k, vec(v)) for k, v in zip(ITEM_KEYS, self.items)])
        self.users_csv = write("users.csv", ["user_id", "user_embedding"],
                               [(k, vec(v)) for k, v in zip(USER_KEYS, self.users)])
        self.catalog = write("movies.csv", ["movieId", "title", "genres"],
                             [(k, "Movie %s" % k, "|".join(g)) for k, g in self.genres.items()])
        self.pairs = [(u, i) for u, s in self.seen.items() for i in sorted(s)]
        self.seen_csv = write("seen.csv", ["user_id", "item_id"], self.pairs)
        self.path = os.path.join(root, "keyed.annb")
        annb.build(self.path, self.items_csv, catalog=self.catalog, users=self.users_csv,
                   interactions=self.seen_csv)

    def top(self, query, space="items", k=5, exclude=(), genres=None):
        keys, vecs = (ITEM_KEYS, self.items) if space == "items" else (USER_KEYS, self.users)
        scores = vecs.astype(np.float64) @ np.asarray(query, np.float64)
        rows = [(s, key) for key, s in zip(keys, scores) if key not in exclude and
                (genres is None or set(self.genres.get(key, [])) & set(genres))]
        rows.sort(key=lambda r: -r[0])
        return rows[:k], {key: s for s, key in rows}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    return Keyed(str(tmp_path_factory.mktemp("keys")))


def item(keyed, key):
    return keyed.items[ITEM_KEYS.index(key)]


def user(keyed, key):
    return keyed.users[USER_KEYS.index(key)]


def assert_answer(ids, scores, truth):
    """One row: str IDs with the brute force's scores, best first (ties
    either way). truth: Keyed.top()'s (top k, every candidate's score)."""
    want, score = truth
    got = [(float(s), i) for i, s in zip(ids, scores) if i is not None]
    assert [s for s, _ in got] == [s for s, _ in want], (got, want)
    for s, i in got:
        assert isinstance(i, str) and score[i] == s, (i, s)
    assert len({i for _, i in got}) == len(got)
    assert all(i is None for i in list(ids)[len(got):])


def test_info_keys_and_ids(keyed):
    with annb.open(keyed.path) as b:
        assert b.info["item_ids"] == "string" and b.info["user_ids"] == "string"
        keys, ids = b.keys(), b.ids()
        assert sorted(keys) == sorted(ITEM_KEYS)
        assert ids.dtype == np.int64 and (np.diff(ids) > 0).all()  # ascending stored IDs
        assert [annb.key_id(k) for k in keys] == ids.tolist()  # the same order
        assert b.keys(start=3, stop=5) == keys[3:5] and b.keys(start=-2) == keys[-2:]
        assert sorted(b.keys("users")) == sorted(USER_KEYS)
        assert annb.key_id("tt0114709") == annb.key_id("tt0114709") >= 0
        assert b.title("a,b") == "Movie a,b" and b.genres("x:y") == keyed.genres["x:y"]
        assert b.title(annb.key_id("a,b")) == "Movie a,b"  # the int64 ID works too
        assert b.title("\u65e5\u672c") is None  # no catalog entry
        np.testing.assert_array_equal(b.vector("a/b"), item(keyed, "a/b"))
        np.testing.assert_array_equal(b.vector(["u:1", "7"], "users"),
                                      np.stack([user(keyed, "u:1"), user(keyed, "7")]))


def test_questions(keyed):
    with annb.open(keyed.path) as b:
        for u in USER_KEYS:
            ids, scores = b.recommend(u, 6, exclude_seen=False)
            assert ids.dtype == object and ids.shape == (1, 6)
            assert_answer(ids[0], scores[0], keyed.top(user(keyed, u), k=6))
        # stored interactions by key, seen items left out by default
        ids, scores = b.recommend(["alice", "bob"], 4)
        for row, srow, u in zip(ids, scores, ["alice", "bob"]):
            assert_answer(row, srow, keyed.top(user(keyed, u), k=4, exclude=keyed.seen[u]))
        # a numpy str array, an object array; exclude mixing str and int
        for subjects in (np.array(["a,b", "has space"]), np.array(["a,b", "has space"], dtype=object)):
            ids, scores = b.similar_items(subjects, 5, exclude=["x:y", annb.key_id("123"), "nothere"])
            for row, srow, key in zip(ids, scores, ["a,b", "has space"]):
                assert_answer(row, srow, keyed.top(item(keyed, key), k=5, exclude={key, "x:y", "123"}))
        ids, scores = b.similar_items("back\\slash", 3, genres="Drama")
        assert_answer(ids[0], scores[0], keyed.top(item(keyed, "back\\slash"), k=3,
                                                   exclude={"back\\slash"}, genres=["Drama"]))
        ids, scores = b.similar_users("u:1", 3, exclude="alice")
        assert_answer(ids[0], scores[0], keyed.top(user(keyed, "u:1"), "users", 3, {"u:1", "alice"}))
        ids, scores = b.users_for_item("sku-\u00e4", 10)
        assert_answer(ids[0], scores[0], keyed.top(item(keyed, "sku-\u00e4"), "users", 10))
        assert ids[0][-4:].tolist() == [None] * 4  # 6 users for k 10
        q = user(keyed, "bob")
        ids, scores = b.search(np.stack([q, -q]), 4, exclude=np.array(["a/b"]))
        assert_answer(ids[0], scores[0], keyed.top(q, k=4, exclude={"a/b"}))
        assert_answer(ids[1], scores[1], keyed.top(-q, k=4, exclude={"a/b"}))
        # int IDs ask too (the stored IDs)
        a, _ = b.similar_items(annb.key_id("x:y"), 5)
        c, _ = b.similar_items("x:y", 5)
        assert a.tolist() == c.tolist()
        df = b.recommend("carol x", 3, as_frame=True)
        assert df["id"].tolist() == c_ids(b.recommend("carol x", 3)[0])
        assert all(t == (b.title(i) or None) for t, i in zip(df["title"], df["id"]))


def c_ids(ids):
    return [i for i in ids.ravel().tolist() if i is not None]


def test_same_answers_as_ann_query(keyed):
    query = os.environ["ANNB_QUERY_TOOL"]
    with annb.open(keyed.path) as b:
        for args, ask in [(["--user", "carol x", "--exclude-seen"], lambda: b.recommend("carol x", 5)),
                          (["--item", "a,b", "--exclude", "x:y"], lambda: b.similar_items("a,b", 5, exclude="x:y")),
                          (["--users-for-item", "123"], lambda: b.users_for_item("123", 5))]:
            out = subprocess.run([query, keyed.path, *args, "-k", "5", "--format", "json"], check=True,
                                 capture_output=True, text=True).stdout
            ids, scores = ask()
            assert [r["id"] for r in json.loads(out)["results"]] == c_ids(ids), args


def test_errors(keyed):
    with annb.open(keyed.path) as b:
        with pytest.raises(annb.NotFoundError, match='user "carol" is not in the bundle'):
            b.recommend("carol")
        with pytest.raises(annb.NotFoundError, match='item "nothere" is not in the bundle'):
            b.similar_items(["a,b", "nothere"])
        with pytest.raises(annb.NotFoundError, match='item "zz" is not in the bundle'):
            b.title("zz")
        with pytest.raises(annb.NotFoundError):
            b.vector("zz")
        for bad in (["a,b", 5], [b"a,b"], np.array([["a,b"]]), "a\0b", [1.5]):
            with pytest.raises(annb.InvalidError):
                b.similar_items(bad)
        with pytest.raises(annb.InvalidError):
            b.recommend("alice", exclude=[{"a": 1}])


def test_integer_bundle_unchanged(data):
    with annb.open(data.bundle("ip")) as b:
        assert b.info["item_ids"] == "integer" and b.keys() is None and b.keys("users") is None
        user = int(data.user_ids[0])
        ids, _ = b.recommend(str(user), 5, exclude=[str(int(data.item_ids[0]))])
        same, _ = b.recommend(user, 5, exclude=[int(data.item_ids[0])])
        assert ids.dtype == np.int64 and (ids == same).all()
        with pytest.raises(annb.InvalidError, match='user ID "u1": expected an integer'):
            b.recommend("u1")


def test_build_from_str_arrays(keyed, tmp_path):
    """Arrays of str IDs go through a file the library reads: the bundle is
    byte for byte the one built from the CSV files of the same values."""
    out = tmp_path / "arrays.annb"
    rep = annb.build(out, (keyed.item_keys, keyed.items), catalog=keyed.catalog,
                     users=(keyed.user_keys, keyed.users), interactions=np.array(keyed.pairs))
    assert rep["items"] == len(ITEM_KEYS) and rep["users"] == len(USER_KEYS)
    assert rep["interactions"] == len(keyed.pairs)
    assert open(out, "rb").read() == open(keyed.path, "rb").read()
    # a DataFrame with a str ID column; "007" stays "007" (every ID is str)
    import pandas as pd
    df = pd.DataFrame({"word": ["007", "7", "x"], "vector": [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]})
    annb.build(tmp_path / "words.annb", df)
    with annb.open(tmp_path / "words.annb") as b:
        assert sorted(b.keys()) == ["007", "7", "x"]
        ids, scores = b.similar_items("007", 2)
        assert ids[0].tolist() == ["7", "x"] and scores[0].tolist() == [0.5, 0.0]
    # files: string_ids= as --string-ids
    p = tmp_path / "digits.csv"
    p.write_text('id,features\n007,"[1,0]"\n7,"[0,1]"\n')
    with pytest.raises(annb.InputError, match="expected unique IDs"):
        annb.build(tmp_path / "d.annb", str(p))
    annb.build(tmp_path / "d.annb", str(p), string_ids=True)
    with annb.open(tmp_path / "d.annb") as b:
        assert sorted(b.keys()) == ["007", "7"]
    with pytest.raises(annb.InputError, match="row 1"):
        annb.build(tmp_path / "nan.annb", (np.array(["a", "b"]), np.array([[1, 0], [np.nan, 0]], np.float32)))
