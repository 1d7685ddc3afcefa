"""annb: recommender embeddings in one checksummed, memory-mapped bundle, and
top-k answers from it with numpy arrays in and out.

A bundle (``.annb``) holds the items' vectors and IDs, an index, optionally a
catalog (titles, genres), the users' vectors and who has seen what. It is
built once (``annb.build`` or the ``ann-build`` tool) and opened by any number
of processes, which share one page-cache copy of it.

Quick start::

    import annb, numpy as np
    annb.build("ml.annb", items=(item_ids, item_vectors),       # int64 (n,), float32 (n, d)
               catalog="movies.dat", users=(user_ids, user_vectors),
               interactions="ratings.dat", metric="ip", index="flat")
    with annb.open("ml.annb") as b:
        ids, scores = b.recommend(10, k=30)          # user 10; seen items excluded
        print(b.frame(ids, scores))                  # rank, id, score, title, genres
        ids, scores = b.search(np.random.rand(5, b.info["dimension"]), k=10)
        ids, scores = b.similar_items(2571, k=10)    # the item itself left out

Every question returns ``(ids, scores)``: int64 and float32 arrays of shape
(n, k), one row per query or subject (n = 1 for a single vector or ID), best
first. A slot past the items there are holds ``annb.ID_NONE`` (the smallest
int64). ip and cosine scores are similarities (higher first), l2 scores
squared distances (lower first).

String IDs (SKUs, "tt0114709", item2vec words; a bundle built from files
whose IDs are text, or from arrays of str): questions take them as str (one,
or a list / numpy array of them), and the answer's ids are then an object
array of str, None in empty slots. ``Bundle.ids(space)`` stays the int64
IDs the texts are stored as (``annb.key_id(text)``); ``Bundle.keys(space)``
gives the texts in the same order. Integer bundles are unchanged.

Errors are ``annb.Error`` subclasses carrying the library's message and
``.code``: NotFoundError (also a KeyError), InvalidError and DimensionError
(also ValueError), IOError (also OSError), NoMemoryError (also MemoryError),
InputError, CorruptError, ChecksumError, TruncatedError, NotBundleError,
VersionError, LimitError, RecallError, FaissError, UnsupportedError.

The GIL is released during searches and builds: threads can search one
bundle at once. ``annb.dask.top_k_all_users`` answers every user on a Dask
cluster. See docs/python.md.
"""
from __future__ import annotations

import builtins
import csv
import json
import os
import tempfile

import numpy as np

from . import _annb
from ._annb import ID_NONE, file_sha256, key_id, library_version

__all__ = [
    "open", "build", "Bundle", "ID_NONE", "file_sha256", "key_id", "library_version", "Error",
    "InvalidError", "NoMemoryError", "IOError", "NotBundleError", "VersionError",
    "TruncatedError", "CorruptError", "ChecksumError", "InputError", "NotFoundError",
    "DimensionError", "FaissError", "LimitError", "RecallError", "UnsupportedError",
]
__version__ = _annb.VERSION  # the library's: the package is built with it


class Error(Exception):
    """A failure reported by libannb: ``str(e)`` is its message, ``e.code`` its
    ANNB_E_* status code (annb.h)."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.message

    def __reduce__(self):  # picklable across processes (Dask)
        return (type(self), (self.message, self.code))


class InvalidError(Error, ValueError):
    """A bad argument (ANNB_E_INVALID)."""


class NoMemoryError(Error, MemoryError):
    """An allocation failed (ANNB_E_NOMEM)."""


class IOError(Error, OSError):  # noqa: A001 - annb.IOError, as the library names it
    """Opening, reading or writing a file failed (ANNB_E_IO)."""

    def __str__(self) -> str:
        return self.message


class NotBundleError(Error, ValueError):
    """The file is not a bundle (ANNB_E_NOT_BUNDLE)."""


class VersionError(Error):
    """A newer format version or an unknown required feature (ANNB_E_VERSION)."""


class TruncatedError(Error):
    """The file is shorter than it declares (ANNB_E_TRUNCATED)."""


class CorruptError(Error):
    """The bundle breaks format/SPEC.md (ANNB_E_CORRUPT)."""


class ChecksumError(Error):
    """A checksum does not match (ANNB_E_CHECKSUM), or a build missed expect_sha256."""


class InputError(Error, ValueError):
    """A build input is malformed (ANNB_E_INPUT); the message names file:line:column
    or the array row."""


class NotFoundError(Error, KeyError):
    """An ID or a genre is not in the bundle (ANNB_E_NOT_FOUND)."""


class DimensionError(Error, ValueError):
    """A vector has the wrong number of components (ANNB_E_DIMENSION)."""


class FaissError(Error):
    """Faiss reported an error (ANNB_E_FAISS)."""


class LimitError(Error, ValueError):
    """An input exceeds a documented limit (ANNB_E_LIMIT)."""


class RecallError(Error):
    """The index cannot reach the target recall (ANNB_E_RECALL)."""


class UnsupportedError(Error):
    """The bundle does not store what the question needs: users, interactions
    (ANNB_E_UNSUPPORTED)."""


_CODES = {-1: InvalidError, -2: NoMemoryError, -3: IOError, -4: NotBundleError,
          -5: VersionError, -6: TruncatedError, -7: CorruptError, -8: ChecksumError,
          -9: InputError, -10: NotFoundError, -11: DimensionError, -12: FaissError,
          -13: LimitError, -14: RecallError, -15: UnsupportedError}
_annb._set_errors(Error, _CODES)


class Bundle(_annb._Bundle):
    """An open bundle: memory-mapped, immutable, safe to search from many threads.

    ``annb.open(path)`` or ``Bundle(path, verify=False)``; a context manager.
    ``verify=True`` checks every checksum and the content first (as
    ``verify()`` does), which reads the whole file.

    Questions (each returns ``(ids, scores)`` of shape (n, k)):
      ``search(queries, k)``        items nearest query vectors
      ``recommend(users, k)``       items for stored users, seen ones excluded
      ``similar_items(ids, k)``     items like items (each left out of its own answer)
      ``similar_users(ids, k)``     users like users
      ``users_for_item(ids, k)``    users an item scores highest with
    Options: ``exclude`` (IDs never returned), ``genres`` (items with one of
    these genres), ``nprobe``/``ef_search`` (search effort; 0: as tuned),
    ``threads`` (per call), ``exact`` (exact scan).

    Lookups: ``vector(id, space)``, ``title(id)``, ``genres(id)``, ``ids(space)``
    (zero-copy view), ``keys(space)`` (string IDs), ``info``, ``recall``,
    ``provenance``, ``frame(ids, scores)``.

    IDs: ints, or str where the space has string IDs (``info["item_ids"]``,
    ``info["user_ids"]``: "string" or "integer"); a str on an integer space
    is read as a decimal integer ("10"). Answers over a space with string
    IDs give them as str (an object array, None in empty slots).
    """

    def __init__(self, path: str | os.PathLike, verify: bool = False):
        super().__init__(path, verify)
        self.path = os.fspath(path)
        self._info_cache = None

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<annb.Bundle {self.path!r} closed>"
        i = self.info
        return (f"<annb.Bundle {self.path!r} {i['count']} items x {i['dimension']}, "
                f"{i['metric']}, {i['index']}, {i['users']} users>")

    def __reduce__(self):
        # A bundle travels by path: the receiving process maps the same file.
        return (type(self), (self.path,))

    @property
    def info(self) -> dict:
        """What the bundle holds: dimension, count (items), users, metric, index,
        has_catalog, genres (the catalog's names), has_interactions, recall (the
        measurement searches use by default, or None), format, file_size,
        bundle_id, item_ids and user_ids ("string" for string IDs, else
        "integer"), provenance (dict)."""
        if self._info_cache is None:
            info = self._info()
            info["provenance"] = self.provenance
            self._info_cache = info
        return dict(self._info_cache)

    @property
    def provenance(self) -> dict:
        """How the bundle was made (tool, format, faiss, metric, index, the
        content digests of the inputs, ...) as a dict; {} when it has none."""
        text = self._provenance_text() or ""
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    @property
    def recall(self) -> dict:
        """The recall measured at build time per k: {k: {"recall", "target",
        "queries", "nprobe", "ef_search", "questions", ...}}. Empty for an exact
        index (recall 1 by construction)."""
        rows = self._recalls()
        if not rows and self.info["recall"] and self.info["recall"]["measured"]:
            rows = [self.info["recall"]]
        return {r["k"]: r for r in rows}

    def frame(self, ids, scores, space: str = "items"):
        """A pandas DataFrame of an answer: columns query (row of the answer),
        rank (1-based), id, score, and for items title and genres ("A|B").
        Empty slots (ID_NONE, or None among string IDs) are dropped."""
        import pandas as pd

        ids = np.atleast_2d(np.asarray(ids))
        if ids.dtype != object:
            ids = ids.astype(np.int64)
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float32))
        if ids.shape != scores.shape:
            raise InvalidError(f"ids {ids.shape} and scores {scores.shape} differ in shape", -1)
        n, k = ids.shape
        keep = _present(ids).ravel()
        query = np.repeat(np.arange(n, dtype=np.int64), k)[keep]
        rank = np.tile(np.arange(1, k + 1, dtype=np.int64), n)[keep]
        flat = ids.ravel()[keep]
        df = pd.DataFrame({"query": query, "rank": rank, "id": flat,
                           "score": scores.ravel()[keep]})
        if space == "items":
            cast = (lambda i: i) if flat.dtype == object else int
            df["title"] = [self.title(cast(i)) for i in flat]
            df["genres"] = ["|".join(self.genres(cast(i))) for i in flat]
        return df


def _present(ids):
    """Which slots of an answer's ids hold an ID: not ID_NONE (int64 ids),
    not None (string IDs, an object array)."""
    ids = np.asarray(ids)
    if ids.dtype == object:
        return np.frompyfunc(lambda i: i is not None and i != ID_NONE, 1, 1)(ids).astype(bool)
    return ids != ID_NONE


def open(path: str | os.PathLike, verify: bool = False) -> Bundle:  # noqa: A001
    """Open (memory-map and check) a bundle. ``verify=True`` also checks every
    checksum and the content (reads the whole file). Raises IOError,
    NotBundleError, CorruptError, ChecksumError, TruncatedError, VersionError."""
    return Bundle(path, verify)


_ID_NAMES = ("id", "word", "item_id", "movie_id", "user_id", "itemid", "movieid", "userid")
_VECTOR_NAMES = ("features", "vector", "embedding")


def _pick(columns, wanted, given, what):
    if given is not None:
        if given not in columns:
            raise InvalidError(f"{what} column {given!r} is not among {list(columns)}", -1)
        return given
    found = [c for c in columns
             if str(c).lower() in wanted
             or (what == "vector" and str(c).lower().endswith("_embedding"))]
    if len(found) != 1:
        raise InvalidError(f"cannot tell the {what} column among {list(columns)}: name it with "
                           f"{what}_column=", -1)
    return found[0]


def _text_ids(ids, name):
    """String IDs (an object array of str) when ids hold str, else None: any
    str among them makes every ID text, as ann-build reads a column that is
    not all integers (an int then stands for its decimal text)."""
    ids = np.asarray(ids)
    if ids.dtype.kind == "U" or (ids.dtype == object and any(isinstance(i, str) for i in ids)):
        out = np.empty(len(ids), dtype=object)
        for r, i in enumerate(ids.tolist()):
            if isinstance(i, bool) or not isinstance(i, (str, int)):
                raise InvalidError(f"{name}: row {r}: expected a str or int ID, got "
                                   f"{type(i).__name__}", -1)
            out[r] = str(i)
        return out
    return None


def _int64_ids(ids, name):
    """IDs as int64, refusing what would change on the way (floats, uint64 past
    int64); str IDs (_text_ids) as an object array of str."""
    text = _text_ids(ids, name)
    if text is not None:
        return text
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise InvalidError(f"{name}: IDs must be integers, got dtype {ids.dtype}", -1)
    if ids.dtype == np.uint64 and len(ids) and ids.max() > np.uint64(np.iinfo(np.int64).max):
        raise InvalidError(f"{name}: ID {ids.max()} does not fit in int64", -1)
    return ids.astype(np.int64, copy=False)


def _rows(obj, name, id_column=None, vector_column=None):
    """items/users as (ids, vectors) arrays, a path (str/PathLike), or None."""
    if obj is None or isinstance(obj, (str, bytes, os.PathLike)):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        return (_int64_ids(obj[0], name), obj[1])
    if hasattr(obj, "columns"):  # a pandas DataFrame: an ID column and a vector column
        idc = _pick(obj.columns, _ID_NAMES, id_column, "id")
        vc = _pick(obj.columns, _VECTOR_NAMES, vector_column, "vector")
        cells = obj[vc].to_numpy()
        if len(cells) and isinstance(cells[0], str):
            raise InvalidError(f"{name}: column {vc!r} holds text; parse it (json.loads) or give "
                               "the file's path instead", -1)
        ids = _int64_ids(obj[idc].to_numpy(), name)
        rows = []
        for r, c in enumerate(cells):  # a ragged or empty cell is named by row and ID
            v = None if c is None else np.asarray(c, dtype=np.float32)
            if v is None or v.ndim != 1 or (rows and len(v) != len(rows[0])):
                got = "nothing" if v is None else f"shape {v.shape}"
                raise InputError(f"{name}: row {r} (ID {ids[r]}), column {vc!r}: expected a "
                                 f"vector{f' of {len(rows[0])} values' if rows else ''}, "
                                 f"found {got}", -9)
            rows.append(v)
        return (ids, np.stack(rows) if rows else np.zeros((0, 0), np.float32))
    raise InvalidError(f"{name}: expected (ids, vectors), a DataFrame or a path, got "
                       f"{type(obj).__name__}", -1)


def _is_text(rows):
    return isinstance(rows, tuple) and rows[0].dtype == object


def _write_rows(path, rows, name):
    """(ids, vectors) as JSON lines for the library to read: a value is
    written as the shortest text of its float32 (read back exactly), an ID
    as a JSON string or integer."""
    ids, vecs = rows
    vecs = np.asarray(vecs, dtype=np.float32)
    if vecs.ndim != 2 or len(vecs) != len(ids):
        raise InvalidError(f"{name}: {len(ids)} IDs for vectors of shape {vecs.shape}", -1)
    bad = ~np.isfinite(vecs).all(axis=1)
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(f"{name}: row {r} (ID {ids[r]}): expected finite values", -9)
    with builtins.open(path, "w", encoding="utf-8") as f:
        for i, v in zip(ids.tolist(), vecs.tolist()):
            f.write(json.dumps({"id": i, "vector": v}, ensure_ascii=False) + "\n")
    return path


def build(out, items, catalog=None, users=None, interactions=None, *, metric: str = "ip",
          index: str = "flat", threads: int = 0, target_recall: float = 0.0,
          recall_k: int = 0, recall_ks=None, tune_queries: int = 0, max_memory: int = 0,
          allow_low_recall: bool = False, tune_vectors=None, expect_sha256: str | None = None,
          drop_zero: bool = False, ids_from_rows: bool = False, shard=None,
          id_column: str | None = None, vector_column: str | None = None,
          string_ids: bool = False) -> dict:
    """Build a bundle at ``out`` and return the build's report (dict: items,
    dimension, users, catalog_entries, interactions, index, recall, ...).

    items, users: ``(ids, vectors)`` (int64 (n,), float32 (n, d); other dtypes
      are converted), a pandas DataFrame with an ID column and a vector column
      of lists or arrays (names as ann-build detects them: id/item_id/movieId...,
      features/vector/embedding/NAME_embedding; or id_column=, vector_column=),
      or the path of an embeddings file (CSV, TSV, JSON lines, .npy, gzip/zstd)
      read by the library itself. Arrays go straight into the library
      (annb_build_arrays): the bundle is byte-identical to ann-build's on a
      file of the same values. users=arrays needs items=arrays.
      String IDs: IDs given as str (a numpy str or object array, a DataFrame
      column of str) make that space's IDs string IDs; such arrays are
      written to a temporary JSON lines file that the library reads as
      ann-build would (the bundle is the same as ann-build's on that file).
    catalog: path of movies.dat / movies.csv (joined to string IDs by text).
    interactions: path of ratings.dat / ratings.csv / a user,item CSV, or an
      (n, 2) array / DataFrame of (user, item) pairs, int or str (written to a
      temporary user,item CSV: the bundle stores their content, not the file).
    metric: "ip" (default), "cosine" or "l2". index: "flat" (default), "auto",
      "ivf", "graph", "ivfpq" or a Faiss factory string. shard: (i, n).
    string_ids: every ID of the items and users is text, digits too ("007"
      stays "007"), as ann-build --string-ids; also set when every array
      given has str IDs. Without it a file's IDs are text when some are no
      integers.
    The rest as ann-build's options (docs/cli.md). The GIL is released.
    Raises InputError (bad values, with the row), InvalidError, IOError,
    RecallError, ChecksumError (expect_sha256 not met).
    """
    it = _rows(items, "items", id_column, vector_column)
    us = _rows(users, "users", id_column, vector_column)
    if isinstance(us, tuple) and not isinstance(it, tuple):
        raise InvalidError("users given as arrays need the items as arrays too", -1)
    shard_index, shard_count = shard if shard else (0, 0)
    kwargs = dict(metric=metric, index=index, threads=threads, target_recall=target_recall,
                  recall_k=recall_k, tune_queries=tune_queries, max_memory=max_memory,
                  allow_low_recall=allow_low_recall, tune_vectors=tune_vectors,
                  expect_sha256=expect_sha256, drop_zero=drop_zero, ids_from_rows=ids_from_rows,
                  shard_index=shard_index, shard_count=shard_count, recall_ks=recall_ks,
                  id_column=None if isinstance(it, tuple) else id_column,
                  vector_column=None if isinstance(it, tuple) else vector_column,
                  string_ids=string_ids)
    pairs = None
    if interactions is not None and not isinstance(interactions, (str, bytes, os.PathLike)):
        pairs = interactions
        if hasattr(pairs, "columns"):  # by name, as ratings files name them
            uc = _pick(pairs.columns, ("user", "userid", "user_id"), None, "user")
            ic = _pick(pairs.columns, ("item", "itemid", "item_id", "movie", "movieid", "movie_id"),
                       None, "item")
            pairs = [_int64_ids(pairs[uc].to_numpy(), "interactions"),
                     _int64_ids(pairs[ic].to_numpy(), "interactions")]
        else:
            pairs = np.asarray(pairs)
            if pairs.ndim != 2 or pairs.shape[1] != 2:
                raise InvalidError("interactions: expected a path or (n, 2) (user, item) pairs",
                                   -1)
            pairs = [_int64_ids(pairs[:, 0], "interactions"),
                     _int64_ids(pairs[:, 1], "interactions")]
    arrays = [r for r in (it, us) if isinstance(r, tuple)]
    text = [r for r in arrays if _is_text(r)]
    if not text and pairs is None:
        return _annb._build(out, it, catalog, us, interactions, **kwargs)
    with tempfile.TemporaryDirectory(prefix="annb-") as tmp:
        if text:  # arrays with string IDs: through files the library reads
            kwargs["string_ids"] = string_ids or len(text) == len(arrays)
            kwargs["id_column"] = kwargs["vector_column"] = None
            if isinstance(it, tuple):
                it = _write_rows(os.path.join(tmp, "items.jsonl"), it, "items")
            if isinstance(us, tuple):
                us = _write_rows(os.path.join(tmp, "users.jsonl"), us, "users")
        if pairs is not None:
            interactions = os.path.join(tmp, "interactions.csv")
            with builtins.open(interactions, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(["user", "item"])  # a header by its user column's name
                w.writerows(zip(pairs[0].tolist(), pairs[1].tolist()))
        return _annb._build(out, it, catalog, us, interactions, **kwargs)
