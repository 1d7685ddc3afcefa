"""annb.dask on a real LocalCluster of 2 worker processes: every user's list
checked against Bundle.recommend in this process; TSV, JSON lines, and Redis
(a real redis-server on a loopback port)."""
import glob
import json
import os
import socket
import subprocess
import time

import numpy as np
import pytest
from distributed import Client, LocalCluster

import annb
import annb.dask


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           dashboard_address=None, host="127.0.0.1")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def expected(path, k, **options):
    with annb.open(path) as b:
        users = b.ids("users").copy()
        ids, scores = b.recommend(users, k, **options)
    return users, ids, scores


def test_tsv_every_user(data, client, tmp_path):
    path = data.bundle("ip")
    out = tmp_path / "tsv"
    parts = annb.dask.top_k_all_users(path, k=10, client=client, partitions=7, out=str(out),
                                      batch=50)
    assert [p["part"] for p in parts] == list(range(7))
    assert sum(p["users"] for p in parts) == len(data.user_ids)
    assert len(glob.glob(str(out / "part-*.tsv"))) == 7
    # a second run with fewer partitions leaves no file of the first behind
    parts = annb.dask.top_k_all_users(path, k=10, client=client, partitions=5, out=str(out))
    assert sorted(os.listdir(out)) == ["manifest.json"] + [f"part-{i:05d}.tsv" for i in range(5)]
    manifest = json.load(open(out / "manifest.json"))
    assert manifest["k"] == 10 and len(manifest["partitions"]) == 5
    assert sum(p["users"] for p in manifest["partitions"]) == len(data.user_ids)
    os.unlink(out / "manifest.json")
    with pytest.raises(annb.IOError, match="did not finish"):
        annb.dask.read_tsv(str(out))
    parts = annb.dask.top_k_all_users(path, k=10, client=client, partitions=7, out=str(out),
                                      batch=50)
    assert not glob.glob(str(out / "*.tmp"))
    # two worker processes answered
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2
    users, ids, scores = expected(path, 10)
    df = annb.dask.read_tsv(str(out))
    got = {u: g.sort_values("rank") for u, g in df.groupby("user")}
    assert len(got) == len(users)
    for u, row, srow in zip(users.tolist(), ids, scores):
        g = got[u]
        keep = row != annb.ID_NONE
        assert g["item"].tolist() == row[keep].tolist(), u
        assert g["rank"].tolist() == list(range(1, keep.sum() + 1))
        # batches of other sizes may round the last bit differently (BLAS)
        np.testing.assert_allclose(g["score"].to_numpy(np.float32), srow[keep], rtol=1e-6)


def test_jsonl_options_and_cache(data, client, tmp_path):
    path = data.bundle("cosine")
    out = tmp_path / "jsonl"
    annb.dask.top_k_all_users(path, k=5, client=client, partitions=3, out=str(out),
                              fmt="jsonl", exclude_seen=False, genres=["Comedy"])
    users, ids, scores = expected(path, 5, exclude_seen=False, genres=["Comedy"])
    lines = [json.loads(x) for p in sorted(glob.glob(str(out / "part-*.jsonl")))
             for x in open(p)]
    assert [x["user"] for x in lines] == users.tolist()  # partitions in order, users ascending
    for x, row, srow in zip(lines, ids, scores):
        assert [i for i, _ in x["items"]] == row[row != annb.ID_NONE].tolist()
        np.testing.assert_allclose(np.float32([s for _, s in x["items"]]),
                                   srow[row != annb.ID_NONE], rtol=1e-6)
    # each worker process keeps the bundle open once, keyed by the file
    keys = client.run(lambda: [k[0] for k in annb.dask._cache])
    for ks in keys.values():
        assert ks.count(os.path.realpath(path)) == 1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_redis_load(data, client, tmp_path):
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        path = data.bundle("l2")
        parts = annb.dask.top_k_all_users(path, k=8, client=client, partitions=4,
                                          redis=f"127.0.0.1:{port}", ttl=3600)
        assert sum(p["users"] for p in parts) == len(data.user_ids)
        users, ids, _ = expected(path, 8)
        with annb.open(path) as b:
            prefix = "annb:%016x:user:" % b.info["bundle_id"]
        for u, row in list(zip(users.tolist(), ids))[::7]:
            got = subprocess.run(["redis-cli", "-p", str(port), "lrange", f"{prefix}{u}", "0",
                                  "-1"], capture_output=True, text=True, check=True).stdout
            assert [int(x) for x in got.split()] == row[row != annb.ID_NONE].tolist(), u
        ttl = subprocess.run(["redis-cli", "-p", str(port), "ttl", f"{prefix}{users[0]}"],
                             capture_output=True, text=True).stdout
        assert 0 < int(ttl) <= 3600
    finally:
        server.terminate()
        server.wait()


def test_arguments(data, client, tmp_path):
    with pytest.raises(annb.InvalidError):
        annb.dask.top_k_all_users(data.bundle("ip"), client=client)
    with pytest.raises(annb.InvalidError):
        annb.dask.top_k_all_users(data.bundle("ip"), client=client, out=str(tmp_path), fmt="csv")
    no_users = tmp_path / "items.annb"
    annb.build(no_users, (data.item_ids, data.item_vecs))
    with pytest.raises(annb.UnsupportedError):
        annb.dask.top_k_all_users(no_users, client=client, out=str(tmp_path))


def test_other_bundle_at_the_path_is_refused(data, tmp_path):
    """A worker whose file differs from the driver's fails the task, never mixes two builds."""
    with annb.open(data.bundle("ip")) as b:
        n, ident = b.info["users"], b.info["bundle_id"]
    with pytest.raises(annb.Error, match="not the bundle the job was planned on"):
        annb.dask.answer_partition(data.bundle("l2"), 0, 10, 5, out=str(tmp_path),
                                   bundle_id=ident, users=n)


def test_same_output_as_ann_query(data, client, tmp_path):
    """The partitions, concatenated, are `ann-query --all-users`'s output."""
    path = data.bundle("ip")
    for fmt, cli_fmt in (("tsv", "tsv"), ("jsonl", "json")):
        out = tmp_path / fmt
        annb.dask.top_k_all_users(path, k=7, client=client, partitions=5, out=str(out),
                                  fmt=fmt)
        text = []
        for i, p in enumerate(sorted(glob.glob(str(out / f"part-*.{fmt}")))):
            part = open(p).read().splitlines()
            text += part if fmt == "jsonl" or i == 0 else part[1:]  # one TSV header
        cli = subprocess.run([os.environ["ANNB_QUERY_TOOL"], path, "--all-users", "-k", "7",
                              "--exclude-seen", "--format", cli_fmt], check=True,
                             capture_output=True, text=True).stdout.splitlines()
        assert text == cli, fmt


def test_string_ids_as_ann_query(client, tmp_path):
    """A bundle with string IDs: users named by key in TSV and JSON lines (a
    backslash doubled in TSV, as ann-query writes it), the same output as
    `ann-query --all-users`."""
    rng = np.random.default_rng(5)
    items = np.array(["tt%07d" % i for i in range(30)] + ["a,b", "x:y", "back\\slash", "\u65e5"])
    users = np.array(["u%d" % i for i in range(20)] + ["carol x", "\u00fc", "a\\b"], dtype=object)
    path = str(tmp_path / "keyed.annb")
    annb.build(path, (items, (rng.integers(-64, 65, (len(items), 4)) / 32).astype(np.float32)),
               users=(users, (rng.integers(-64, 65, (len(users), 4)) / 32).astype(np.float32)))
    for fmt, cli_fmt in (("tsv", "tsv"), ("jsonl", "json")):
        out = tmp_path / fmt
        annb.dask.top_k_all_users(path, k=5, client=client, partitions=3, out=str(out), fmt=fmt)
        text = []
        for i, p in enumerate(sorted(glob.glob(str(out / f"part-*.{fmt}")))):
            part = open(p, encoding="utf-8").read().splitlines()
            text += part if fmt == "jsonl" or i == 0 else part[1:]
        cli = subprocess.run([os.environ["ANNB_QUERY_TOOL"], path, "--all-users", "-k", "5",
                              "--format", cli_fmt], check=True, capture_output=True,
                             text=True).stdout.splitlines()
        assert text == cli, fmt
    assert any('"user":"a\\\\b"' in line for line in text)
