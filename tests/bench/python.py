"""Benchmark of the Python package annb (docs/benchmarks.md, "Python"). Not a test.

    PYTHONPATH=build/python /usr/bin/python3 tests/bench/python.py [--build build] [--n 100000]

Measures, in one run, printing a Markdown report on stdout:
 1. per-call cost of Bundle.search for one query against the same call made
    from C (tests/bench/python_c_loop.c, compiled here against build/libannb.so),
    python3-faiss's IndexFlatIP and python3-hnswlib, on a catalog so small
    (256 x 64) that the search itself costs little: the difference is the
    binding's overhead;
 2. one query and a batch of 10,000 queries on N x 64 items (log-normal norms,
    inner product): annb Flat, faiss IndexFlatIP (exact, the same answers),
    hnswlib (approximate, M=16, ef=64: another kind of index, for scale);
 3. every user's top-k: annb.dask on a LocalCluster of 2 worker processes
    against one process answering the same users in batches;
 4. the notebook flow (tests/bench/notebook_flow.py: pandas, json.loads, Faiss
    IndexIDMap(IndexFlatL2), one user's top 10) against examples/notebook.py's
    question on a built bundle, each a whole process.
Times are the best of several rounds (the machine is shared).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import annb
import annb.dask

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def best_of(fn, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def vectors(rng, n, d):
    v = rng.standard_normal((n, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return (v * rng.lognormal(0, 0.5, (n, 1))).astype(np.float32)


def per_call(build, tmp, rng, calls):
    import faiss
    import hnswlib

    n, d, k = 256, 64, 10
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    v = vectors(rng, n, d)
    q = rng.standard_normal((1000, d)).astype(np.float32)
    path = os.path.join(tmp, "tiny.annb")
    annb.build(path, (ids, v))
    qfile = os.path.join(tmp, "q.f32")
    q.tofile(qfile)
    exe = os.path.join(tmp, "python_c_loop")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(ROOT, "tests/bench/python_c_loop.c"),
                    "-I", os.path.join(ROOT, "lib"), "-L", build, "-lannb",
                    f"-Wl,-rpath,{os.path.abspath(build)}"], check=True)
    out = subprocess.run([exe, path, qfile, "1000", str(k), str(calls)], check=True,
                         capture_output=True, text=True).stdout
    c = {line.split()[0]: float(line.split()[2]) / 1e3 for line in out.splitlines()}
    rows = {"C annb_search": c["annb_search"], "C annb_ask": c["annb_ask"]}
    b = annb.open(path)
    qs = [q[i] for i in range(1000)]
    q2 = [q[i:i + 1] for i in range(1000)]

    def loop(f, args):
        def run():
            for i in range(calls):
                f(args[i % 1000])
        return best_of(run) / calls * 1e6

    rows["annb Bundle.search(q, 10)"] = loop(lambda x: b.search(x, k), qs)
    rows["annb Bundle.search(q[None], 10)"] = loop(lambda x: b.search(x, k), q2)
    users = annb.build(os.path.join(tmp, "tiny-users.annb"), (ids, v), users=(ids, v))
    bu = annb.open(os.path.join(tmp, "tiny-users.annb"))
    uid = [int(ids[i % n]) for i in range(1000)]
    rows["annb Bundle.recommend(user, 10)"] = loop(lambda u: bu.recommend(u, k), uid)
    rows["annb Bundle.similar_items(id, 10)"] = loop(lambda u: bu.similar_items(u, k), uid)
    faiss.omp_set_num_threads(1)
    fi = faiss.IndexFlatIP(d)
    fi.add(v)
    rows["faiss IndexFlatIP.search(q[None], 10)"] = loop(lambda x: fi.search(x, k), q2)
    h = hnswlib.Index(space="ip", dim=d)
    h.init_index(max_elements=n, M=16, ef_construction=100, random_seed=1)
    h.add_items(v, ids, num_threads=1)
    h.set_ef(64)
    h.set_num_threads(1)
    rows["hnswlib knn_query(q, 10)"] = loop(lambda x: h.knn_query(x, k), qs)
    print(f"\n### Per call, one query, k={k}, {n} x {d} items, one thread "
          f"(best of 5 x {calls} calls)\n")
    print("| call | us per call | over C annb_ask |\n| --- | ---: | ---: |")
    for name, us in rows.items():
        print(f"| {name} | {us:.2f} | {us - c['annb_ask']:+.2f} |")


def batch(tmp, rng, n, nq=10_000):
    import faiss
    import hnswlib

    d, k = 64, 10
    ids = rng.choice(np.arange(1, 50 * n, dtype=np.int64), n, replace=False)
    v = vectors(rng, n, d)
    q = rng.standard_normal((nq, d)).astype(np.float32)
    path = os.path.join(tmp, "items.annb")
    t0 = time.perf_counter()
    annb.build(path, (ids, v))
    t_build = time.perf_counter() - t0
    b = annb.open(path)
    rows = []
    one = [q[i] for i in range(200)]
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        got = b.search(q, k, threads=threads)[0]
        rows.append((f"annb Flat, threads={threads}", best_of(lambda: b.search(q, k, threads=threads), 3),
                     1.0))
        fi = faiss.IndexFlatIP(d)
        fi.add(v)
        _, fl = fi.search(q, k)
        same = (ids[fl] == got).mean()
        rows.append((f"faiss IndexFlatIP, {threads} OpenMP threads", best_of(lambda: fi.search(q, k), 3),
                     same))
    h = hnswlib.Index(space="ip", dim=d)
    h.init_index(max_elements=n, M=16, ef_construction=100, random_seed=1)
    t0 = time.perf_counter()
    h.add_items(v, ids, num_threads=2)
    t_h = time.perf_counter() - t0
    h.set_ef(64)
    exact = b.search(q, k, threads=2)[0]
    for threads in (1, 2):
        h.set_num_threads(threads)
        labels, _ = h.knn_query(q, k, num_threads=threads)
        rec = np.mean([len(set(a) & set(e)) / k for a, e in zip(labels.astype(np.int64), exact)])
        rows.append((f"hnswlib M=16 ef=64 (approximate), {threads} threads",
                     best_of(lambda: h.knn_query(q, k, num_threads=threads), 3), rec))
    faiss.omp_set_num_threads(1)
    fi = faiss.IndexFlatIP(d)
    fi.add(v)
    single = {
        "annb Bundle.search": best_of(lambda: [b.search(x, k) for x in one], 3) / len(one),
        "faiss IndexFlatIP.search": best_of(lambda: [fi.search(x[None], k) for x in one], 3) / len(one),
        "hnswlib knn_query (approximate)": best_of(lambda: [h.knn_query(x, k, num_threads=1)
                                                            for x in one], 3) / len(one),
    }
    print(f"\n### {n} x {d} items (inner product, log-normal norms), k={k}\n")
    print(f"annb.build from arrays: {t_build:.2f} s; hnswlib add_items (2 threads): {t_h:.2f} s\n")
    print("| one query, one thread | ms |\n| --- | ---: |")
    for name, s in single.items():
        print(f"| {name} | {s * 1e3:.3f} |")
    print(f"\n| batch of {nq} queries | s | queries/s | recall@10 vs annb exact |\n"
          "| --- | ---: | ---: | ---: |")
    for name, s, rec in rows:
        print(f"| {name} | {s:.3f} | {nq / s:,.0f} | {rec:.3f} |")


def dask_vs_one(tmp, rng, n_users, k=20):
    from distributed import Client, LocalCluster

    d, n_items = 32, 20_000
    item_ids = np.arange(1, n_items + 1, dtype=np.int64) * 3
    user_ids = np.arange(1, n_users + 1, dtype=np.int64) * 7
    path = os.path.join(tmp, "users.annb")
    annb.build(path, (item_ids, vectors(rng, n_items, d)),
               users=(user_ids, rng.standard_normal((n_users, d)).astype(np.float32)))
    out1 = os.path.join(tmp, "one")
    t_one = best_of(lambda: annb.dask.answer_partition(path, 0, n_users, k, out=out1), 2)
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           dashboard_address=None, host="127.0.0.1")
    client = Client(cluster)
    t_start = time.perf_counter() - t0
    out2 = os.path.join(tmp, "dask")
    t_first = best_of(lambda: annb.dask.top_k_all_users(path, k, client=client, partitions=8,
                                                        out=out2), 1)
    t_dask = best_of(lambda: annb.dask.top_k_all_users(path, k, client=client, partitions=8,
                                                       out=out2), 2)
    client.close()
    cluster.close()
    print(f"\n### Every user's top {k}: {n_users} users, {n_items} x {d} items, TSV out\n")
    print("| how | s | users/s |\n| --- | ---: | ---: |")
    print(f"| one process, answer_partition (batches of 1024, one thread) | {t_one:.2f} | "
          f"{n_users / t_one:,.0f} |")
    print(f"| annb.dask, LocalCluster 2 processes x 1 thread, 8 partitions, first run | "
          f"{t_first:.2f} | {n_users / t_first:,.0f} |")
    print(f"| the same, bundle already open in the workers | {t_dask:.2f} | "
          f"{n_users / t_dask:,.0f} |")
    print(f"\n(starting the LocalCluster: {t_start:.2f} s, not counted)")


def notebook(build):
    ex = os.path.join(build, "example")
    if not os.path.exists(os.path.join(ex, "items.csv")):
        subprocess.run([os.path.join(build, "annb-example-gen"), ex], check=True,
                       capture_output=True)
    bundle = os.path.join(ex, "bench-notebook.annb")
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "python"))
    subprocess.run([sys.executable, "-c", f"""
import annb
annb.build({bundle!r}, {os.path.join(ex, 'items.csv')!r}, catalog={os.path.join(ex, 'movies.dat')!r},
           users={os.path.join(ex, 'users.csv')!r}, interactions={os.path.join(ex, 'ratings.dat')!r},
           metric="l2")"""], check=True, env=env)
    flow = [sys.executable, os.path.join(ROOT, "tests/bench/notebook_flow.py"),
            os.path.join(ex, "items.csv"), os.path.join(ex, "users.csv"), "10"]
    ask = [sys.executable, "-c", f"""
import annb
with annb.open({bundle!r}) as b:
    print(b.frame(*b.recommend(10, 10, exclude_seen=False)).to_string())"""]
    t_flow = best_of(lambda: subprocess.run(flow, check=True, capture_output=True), 3)
    t_ask = best_of(lambda: subprocess.run(ask, check=True, capture_output=True, env=env), 3)
    print("\n### The notebook's question, a whole process each (user 10's top 10, l2)\n")
    print("| process | s |\n| --- | ---: |")
    print(f"| notebook flow: pandas + json.loads + Faiss IndexIDMap(IndexFlatL2) | {t_flow:.3f} |")
    print(f"| annb: import, open the bundle, recommend, frame with titles | {t_ask:.3f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--n", type=int, default=100_000, help="items of the batch benchmark")
    ap.add_argument("--users", type=int, default=200_000, help="users of the Dask benchmark")
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--only", default="per_call,batch,dask,notebook",
                    help="sections to run, comma-separated")
    args = ap.parse_args()
    only = set(args.only.split(","))

    def load(what):  # the machine is shared: say how busy it was
        print(f"\n(load average {os.getloadavg()[0]:.1f} {what})")
    rng = np.random.default_rng(2026)
    print(f"## Python package (tests/bench/python.py), {time.strftime('%Y-%m-%d')}\n")
    print(f"{annb.library_version()}; numpy {np.__version__}; {os.cpu_count()} CPUs: "
          + open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"))
    with tempfile.TemporaryDirectory(prefix="annb-bench-") as tmp:
        if "per_call" in only:
            load("before")
            per_call(args.build, tmp, rng, args.calls)
        if "batch" in only:
            load("before")
            batch(tmp, rng, args.n)
        if "dask" in only:
            load("before")
            dask_vs_one(tmp, rng, args.users)
    if "notebook" in only:
        load("before")
        notebook(args.build)
    load("at the end")


if __name__ == "__main__":
    main()
