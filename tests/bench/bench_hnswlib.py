"""bench_hnswlib - Debian's python3-hnswlib (0.6.2) on the benchmark's data,
measured like bench_annb / bench_npm.js (same queries, ground truth, ef list).

    python3 bench_hnswlib.py DATADIR TMPDIR NLAT LAT_SECONDS TPUT_SECONDS THREADS M EFC EFS STOP
    python3 bench_hnswlib.py build DATADIR THREADS M EFC

Builds an inner-product index with M and EFC (efConstruction) from
items.f32 on THREADS threads (labels: row numbers, mapped to the int64 IDs
after a search, as annb does), saves it to TMPDIR/hnswlib.index (which
bench_npm.js can load into hnswlib-node: the same file format), loads it
back for the open time, then sweeps ef over EFS (comma-separated) with one
query per `knn_query` call on one thread, k=10, until recall@10 reaches STOP.
At the first ef reaching 0.95 the THREADS-thread throughput is one batched
`knn_query(..., num_threads=THREADS)`. Prints JSON lines like the C programs.
The second form only builds (docs/graph.md, "Build"): one "hnswlib-build" line
with the build's wall and CPU seconds, after set_num_threads(THREADS).
The Python call costs a few microseconds per query on top of hnswlib's own
search; it is in the figures, as it is in any Python service. cpu_qps1:
queries / the calling thread's CPU time in those calls (time.thread_time),
as bench_common.h measures it for annb.
"""
import json
import os
import sys
import time

import hnswlib
import numpy as np

MATCH = 0.95  # bench_common.h BENCH_MATCH_RECALL
GT_K = 100


def emit(obj):
    print(json.dumps(obj), flush=True)


def params(data_dir):
    out = {}
    with open(os.path.join(data_dir, "params"), encoding="utf-8") as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if value.isdigit():
                out[key] = int(value)
    return out


def build(data_dir, threads, m, efc):
    """The index over items.f32, and its build's wall and CPU seconds."""
    p = params(data_dir)
    n, d = p["n"], p["d"]
    items = np.fromfile(os.path.join(data_dir, "items.f32"), dtype=np.float32).reshape(n, d)
    index = hnswlib.Index(space="ip", dim=d)
    index.set_num_threads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    index.init_index(max_elements=n, ef_construction=efc, M=m, random_seed=100)
    index.add_items(items, np.arange(n), num_threads=threads)
    return index, time.perf_counter() - t0, time.process_time() - c0


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "build":
        threads, m, efc = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        _, build_s, build_cpu_s = build(sys.argv[2], threads, m, efc)
        emit({"system": "hnswlib-build", "M": m, "efConstruction": efc, "build_threads": threads,
              "build_s": build_s, "build_cpu_s": build_cpu_s})
        return
    if len(sys.argv) != 11:
        sys.exit(__doc__)
    data_dir, tmp_dir = sys.argv[1], sys.argv[2]
    nlat, lat_s, tput_s = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    threads, m, efc = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
    efs = [int(v) for v in sys.argv[9].split(",")]
    stop = float(sys.argv[10])
    p = params(data_dir)
    n, q, d = p["n"], p["q"], p["d"]
    ids = np.fromfile(os.path.join(data_dir, "items.ids"), dtype=np.int64)
    queries = np.fromfile(os.path.join(data_dir, "queries.f32"), dtype=np.float32).reshape(q, d)
    gt = np.fromfile(os.path.join(data_dir, "gt.ids"), dtype=np.int64).reshape(q, GT_K)

    index, build_s, build_cpu_s = build(data_dir, threads, m, efc)
    path = os.path.join(tmp_dir, "hnswlib.index")
    index.save_index(path)
    del index
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        index = hnswlib.Index(space="ip", dim=d)
        index.load_index(path, max_elements=n)
        opens.append((time.perf_counter() - t0) * 1e3)
    emit({"system": "hnswlib", "index": "hnsw", "version": "0.6.2 (Debian python3-hnswlib)",
          "build_s": build_s, "build_cpu_s": build_cpu_s, "index_bytes": os.path.getsize(path),
          "open_ms_first": opens[0], "open_ms": sorted(opens[1:])[0],
          "M": m, "efConstruction": efc, "build_threads": threads})
    index.set_num_threads(1)
    rows = [queries[i:i + 1] for i in range(q)]
    truth = [set(gt[i, :10].tolist()) for i in range(q)]
    best, last, prev, same = 0.0, 0, -1.0, 0
    matched = False
    for ef in efs:
        index.set_ef(ef)
        last = ef
        for i in range(5):  # warm-up on queries the latency pass does not use
            index.knn_query(rows[q - 1 - i], k=10, num_threads=1)
        lat, rec, cpu = [], 0.0, 0.0
        start = time.perf_counter()
        for i in range(min(nlat, q)):
            if i >= 10 and time.perf_counter() - start >= lat_s:
                break
            c0, t0 = time.thread_time(), time.perf_counter()
            labels, _ = index.knn_query(rows[i], k=10, num_threads=1)
            lat.append(time.perf_counter() - t0)
            cpu += time.thread_time() - c0
            rec += len(truth[i].intersection(ids[labels[0]].tolist())) / 10
        lat.sort()
        r = {"index": "hnsw", "param": "ef", "value": ef,
             "p50_ms": lat[max(0, -(-len(lat) * 50 // 100) - 1)] * 1e3,
             "p99_ms": lat[max(0, -(-len(lat) * 99 // 100) - 1)] * 1e3,
             "qps1": len(lat) / sum(lat), "cpu_qps1": len(lat) / cpu if cpu > 0 else None,
             "recall10": rec / len(lat), "nlat": len(lat)}
        emit({"system": "hnswlib-sweep", **r})
        best = max(best, r["recall10"])
        same = same + 1 if r["recall10"] == prev else 0
        prev = r["recall10"]
        if same == 2 and r["recall10"] < stop:  # the knob has no effect any more
            emit({"system": "hnswlib-sweep-stopped", "index": "hnsw", "param": "ef", "value": ef})
            break
        if not matched and r["recall10"] >= MATCH:
            matched = True
            nq = max(100, min(q, round(r["qps1"] * threads * tput_s)))
            t0 = time.perf_counter()
            index.knn_query(queries[:nq], k=10, num_threads=threads)
            emit({"system": "hnswlib-matched", **r, "threads": threads,
                  "qps2": nq / (time.perf_counter() - t0)})
        if r["recall10"] >= stop:
            break
    emit({"system": "hnswlib-sweep-end", "index": "hnsw", "param": "ef", "stop_recall": stop,
          "reached": best >= stop, "best_recall10": best, "last_value": last})


if __name__ == "__main__":
    main()
