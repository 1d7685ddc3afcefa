"""Every user's top-k on a Dask cluster (Debian's python3-distributed).

    from distributed import Client
    import annb.dask
    with Client("scheduler:8786") as client:
        parts = annb.dask.top_k_all_users("ml.annb", k=20, client=client, out="topk/")

The users stored in the bundle are split into partitions (contiguous ranges
of rows of ``Bundle.ids("users")``, which is ascending). Each task opens the
bundle once per worker process (a cache keyed by the file's identity, so a
new build at the same path is opened anew), answers its users in batches
with ``Bundle.recommend`` (the GIL is released, so a worker's threads search
at once) and writes one file per partition, or loads Redis. Nothing but
the path and a row range travels to the workers: the bundle must be
readable at the same path on every worker (a shared file system, or copied
beside the job); it is memory-mapped, so the workers of one machine share one
page-cache copy.
"""
from __future__ import annotations

import json
import math
import os
import socket
import threading
import time

import numpy as np

import annb

__all__ = ["top_k_all_users", "answer_partition", "open_cached", "read_tsv"]

MANIFEST = "manifest.json"  # written last by top_k_all_users: the job is complete

_cache: dict = {}
_cache_lock = threading.Lock()


def _identity(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def open_cached(path: str) -> annb.Bundle:
    """The bundle at ``path``, opened once per process and kept open: a later
    call with the same file returns the same Bundle; a file replaced at that
    path (another inode, size or mtime) is opened anew (the old one is closed
    once no task uses it)."""
    key = _identity(path)
    with _cache_lock:
        b = _cache.get(key)
        if b is None:
            for old in [k for k in _cache if k[0] == key[0]]:
                del _cache[old]  # closed when its last user lets go
            b = _cache[key] = annb.open(path)
        return b


def _resp(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Redis:
    """RESP over a plain socket: commands are pipelined and the replies read
    back and counted, as `redis-cli --pipe` does (docs/redis.md)."""

    def __init__(self, address):
        if isinstance(address, str):
            host, _, port = address.rpartition(":")
            address = (host or "127.0.0.1", int(port))
        self.sock = socket.create_connection(address)
        self.pending = 0
        self.buf = b""

    def send(self, payload: bytes, commands: int) -> None:
        self.sock.sendall(payload)
        self.pending += commands

    def drain(self) -> int:
        """Reads every pending reply; returns the number of error replies."""
        errors = 0
        while self.pending:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise annb.IOError("redis closed the connection", -3)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line[:1] == b"-":
                errors += 1
            self.pending -= 1
        return errors

    def close(self) -> None:
        self.sock.close()


def _check_target(out, redis, fmt) -> None:
    if (out is None) == (redis is None):
        raise annb.InvalidError("give exactly one of out= (a directory) and redis=", -1)
    if fmt not in ("tsv", "jsonl"):
        raise annb.InvalidError(f'fmt must be "tsv" or "jsonl", got {fmt!r}', -1)


def answer_partition(path: str, lo: int, hi: int, k: int, out: str | None = None,
                     fmt: str = "tsv", redis=None, key_prefix: str | None = None,
                     ttl: int = 0, batch: int = 1024, part: int = 0,
                     bundle_id: int | None = None, users: int | None = None,
                     **options) -> dict:
    """Answers the users of rows [lo, hi) of the bundle at ``path``: what one
    Dask task runs (usable alone, e.g. from Spark's mapInPandas). Writes
    ``out/part-NNNNN.tsv|jsonl`` (atomically: a temporary name, then a
    rename) or loads Redis; returns {"part", "path", "users", "lines",
    "seconds", "redis_errors"}. options go to Bundle.recommend (exclude_seen,
    genres, nprobe, ef_search, threads, exact)."""
    _check_target(out, redis, fmt)
    t0 = time.perf_counter()
    b = open_cached(path)
    # the row ranges were cut from the driver's bundle: this worker's file at
    # that path must be the same build, or the partitions would mix two
    if bundle_id is not None and (b.info["bundle_id"] != bundle_id or b.info["users"] != users):
        raise annb.Error(f"{path} on this worker is not the bundle the job was planned on "
                         f"(bundle id {b.info['bundle_id']:016x} with {b.info['users']} users, "
                         f"expected {bundle_id:016x} with {users})", 0)
    users = b.ids("users")[lo:hi]
    # string IDs: users are asked by ID, and named by their text in the output
    names = b.keys("users", lo, hi)
    names = users if names is None else np.array(names, dtype=object)
    target = None
    fh = None
    lines = 0
    errors = 0
    if redis is not None:
        target = _Redis(redis)
        prefix = key_prefix or "annb:%016x:user:" % b.info["bundle_id"]
    else:
        os.makedirs(out, exist_ok=True)
        target = os.path.join(out, f"part-{part:05d}.{fmt}")
        fh = open(target + ".tmp", "w", encoding="utf-8")
        if fmt == "tsv":
            fh.write("user\trank\titem\tscore\n")
    try:
        for start in range(0, len(users), batch):
            chunk = users[start:start + batch]
            named = names[start:start + batch]
            ids, scores = b.recommend(chunk, k, **options)
            if fh is not None and fmt == "tsv":
                lines += _write_tsv(fh, named, ids, scores)
            elif fh is not None:
                lines += _write_jsonl(fh, named, ids, scores)
            else:
                payload = []
                n = 0
                for u, row in zip(named.tolist(), ids):
                    key = f"{prefix}{u}"
                    payload.append(_resp("DEL", key))
                    got = row[annb._present(row)]
                    if len(got):
                        payload.append(_resp("RPUSH", key, *got.tolist()))
                        n += 1
                    if ttl:
                        payload.append(_resp("EXPIRE", key, ttl))
                        n += 1
                    n += 1
                target.send(b"".join(payload), n)
                errors += target.drain()
                lines += n
        if fh is not None:  # complete on disk before it gets its name
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            fh = None
            os.replace(target + ".tmp", target)
            dfd = os.open(out, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    finally:
        if fh is not None:
            fh.close()
            os.unlink(target + ".tmp")
        if redis is not None:
            target.close()
    if errors:
        raise annb.Error(f"redis: {errors} commands failed for users of rows {lo}..{hi}", 0)
    return {"part": part, "path": None if redis is not None else target, "users": len(users),
            "lines": lines, "seconds": time.perf_counter() - t0, "redis_errors": errors}


def _score_text(s: float) -> str:
    """As ann-query writes a score: 9 significant digits (reads back as the same float32)."""
    return "%.9g" % s


def _tsv_id(i) -> str:
    """An ID in TSV as ann-query writes it: a string ID with its backslashes
    doubled (the one escape its text can need: a string ID holds no control
    character), an integer as it is."""
    return i.replace("\\", "\\\\") if isinstance(i, str) else str(i)


def _write_tsv(fh, users, ids, scores) -> int:
    """user, rank, item, score: one line per answer slot that holds an item,
    as `ann-query --all-users --format tsv` writes them (nan/inf as there)."""
    k = ids.shape[1]
    keep = annb._present(ids)
    u = np.repeat(users, k).reshape(ids.shape)[keep]
    r = np.tile(np.arange(1, k + 1), len(users)).reshape(ids.shape)[keep]
    text = [f"{_tsv_id(a)}\t{b}\t{_tsv_id(c)}\t{_score_text(s)}\n"
            for a, b, c, s in zip(u.tolist(), r.tolist(), ids[keep].tolist(), scores[keep].tolist())]
    fh.writelines(text)
    return len(text)


def _write_jsonl(fh, users, ids, scores) -> int:
    """{"user":U,"items":[[item,score],...]} per user, best first, as
    `ann-query --all-users --format json` writes it (a non-finite score: null)."""
    for u, row, srow in zip(users.tolist(), ids, scores):
        keep = annb._present(row)
        pairs = ",".join(f"[{json.dumps(i, ensure_ascii=False)},"
                         f"{_score_text(x) if math.isfinite(x) else 'null'}]"
                         for i, x in zip(row[keep].tolist(), srow[keep].tolist()))
        fh.write(f'{{"user":{json.dumps(u, ensure_ascii=False)},"items":[{pairs}]}}\n')
    return len(users)


def read_tsv(out: str):
    """The TSV partitions of ``out`` as one pandas DataFrame (user, rank, item,
    score), as listed by the manifest a finished top_k_all_users wrote last
    (IOError without one: the job did not finish)."""
    import glob

    import pandas as pd

    try:  # only a complete job's output: its manifest names every part
        with open(os.path.join(out, MANIFEST)) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise annb.IOError(f"{out}: no {MANIFEST}: the job did not finish (or did not run)",
                           -3) from None
    if manifest["fmt"] != "tsv":
        raise annb.InvalidError(f"{out}: the job wrote {manifest['fmt']}, not tsv", -1)
    parts = [os.path.join(out, p["file"]) for p in manifest["partitions"]]
    frames = [pd.read_csv(p, sep="\t") for p in parts]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["user", "rank", "item", "score"])


def top_k_all_users(bundle_path, k: int = 10, client=None, partitions: int | None = None,
                    out: str | None = None, fmt: str = "tsv", redis=None,
                    key_prefix: str | None = None, ttl: int = 0, batch: int = 1024,
                    **options) -> list:
    """Every stored user's top-k items, answered on a Dask cluster.

    bundle_path: the bundle, at the same path on every worker.
    client: a distributed.Client (None: the current default client).
    partitions: how many tasks (default: 4 per worker thread, at least 1).
    out, fmt: a directory for one file per partition, "tsv" (header and rows
      `user rank item score`) or "jsonl" ({"user":U,"items":[[item,score],...]}
      per user): ann-query --all-users's formats, so the partitions
      concatenated (one TSV header kept) are its output; or
    redis: "host:port" or (host, port): DEL + RPUSH per user as in docs/redis.md
      (prefix ``annb:<bundle id>:user:`` unless key_prefix; ttl: EXPIRE).
    batch: users per recommend() call. options: as Bundle.recommend
      (exclude_seen=None excludes seen items when the bundle stores them).
    Returns the partitions' reports (answer_partition), in order.
    """
    _check_target(out, redis, fmt)  # here too: before any task starts
    if client is None:
        from distributed import get_client
        client = get_client()
    path = os.path.abspath(os.fspath(bundle_path))
    with annb.open(path) as b:
        n = b.info["users"]
        bundle_id = b.info["bundle_id"]
    if n == 0:
        raise annb.UnsupportedError(f"{path}: the bundle stores no users", -15)
    if partitions is None:
        threads = sum(client.nthreads().values()) or 1
        partitions = 4 * threads
    partitions = max(1, min(int(partitions), n))
    edges = np.linspace(0, n, partitions + 1).astype(np.int64)
    futures = [client.submit(answer_partition, path, int(edges[p]), int(edges[p + 1]), k,
                             out=os.path.abspath(out) if out else None, fmt=fmt, redis=redis,
                             key_prefix=key_prefix, ttl=ttl, batch=batch, part=p, pure=False,
                             bundle_id=bundle_id, users=n, **options)
               for p in range(partitions)]
    out_dir = os.path.abspath(out) if out is not None else None
    if out_dir is not None:  # an earlier manifest no longer describes the files
        try:
            os.unlink(os.path.join(out_dir, MANIFEST))
        except FileNotFoundError:
            pass
    reports = client.gather(futures)
    if out_dir is not None:
        import glob
        # a file of an earlier run with more partitions is not part of this one
        for stale in glob.glob(os.path.join(out_dir, f"part-*.{fmt}")):
            name = os.path.basename(stale)[len("part-"):-len(fmt) - 1]
            if name.isdigit() and int(name) >= partitions:
                os.unlink(stale)
        # written last: its presence says every partition is complete
        manifest = {"bundle": path, "bundle_id": "%016x" % bundle_id, "users": n, "k": k,
                    "fmt": fmt, "options": {key: v for key, v in options.items()},
                    "partitions": [{"file": os.path.basename(r["path"]), "users": r["users"],
                                    "lines": r["lines"]} for r in reports]}
        tmp = os.path.join(out_dir, MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(out_dir, MANIFEST))
    return reports
