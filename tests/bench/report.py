"""Renders the benchmark's JSON lines as Markdown (called by run.sh).

    python3 report.py RESULTS.jsonl MACHINE.txt > bench-results.md

Standard library only.
"""
import json
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def machine(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            out[key] = value
    return out


def num(v, digits=None):
    """Human formatting: '-' for missing, thousands separators for big values."""
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if digits is not None:
        return f"{v:,.{digits}f}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}x"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main():
    res = load(sys.argv[1])
    m = machine(sys.argv[2])

    def find(system, index=None, **kw):
        for r in res:
            if r.get("system") == system and (index is None or r.get("index") == index) and all(
                r.get(k) == v for k, v in kw.items()
            ):
                return r
        return None

    def every(system, index=None):
        return [r for r in res if r.get("system") == system and (index is None or r.get("index") == index)]

    mb = lambda b: None if b is None else b / 1e6  # noqa: E731
    out = []
    w = out.append
    w("# annb benchmark results\n")
    w(f"Command: `{m.get('command', 'make bench')}`, run on {m.get('date', '?')}; data: "
      f"{m.get('data', '?')}.")
    if "start_epoch" in m and "end_epoch" in m:
        mins = (int(m["end_epoch"]) - int(m["start_epoch"])) / 60
        w(f"The measurements took {mins:.0f} min (data generation and ground truth, when not "
          "cached, come before and are not counted).")
    w("")
    w("## Machine\n")
    for key in ("cpu", "cpus", "caches", "memory", "hypervisor", "os", "kernel", "compiler",
                "openblas", "faiss", "annb", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS"):
        if key in m:
            w(f"- {key}: {m[key]}")
    w(f"- load average (1, 5, 15 min) at start: {m.get('load_start', '?')}, at end: "
      f"{m.get('load_end', '?')} (other work on the machine shows up as noise, above all in p99)")
    w("")

    thr = next((r.get("threads") for r in res if r.get("system") == "annb"), 2)
    try:
        qcount = int(m.get("data", "").split(" items, ")[1].split()[0])
    except (IndexError, ValueError):
        qcount = 0
    w("## annb vs Faiss in-process, per index type\n")
    w("annb: `ann-build` (a process: CSV ingest, sort, index, write) and `bench_annb` through "
      "`annb.h`. Faiss: `bench_faiss`, the same factory string and metric (inner product) from "
      "the raw float32 array, index written with `write_index`, \"open\" = `read_index`. "
      f"Latency: nq=1, k=10, one thread. {thr}-thread QPS: {thr} threads sharing one open "
      "bundle/index, nq=1, k=10. recall@100 and batch QPS: one call with nq=1000, k=100. "
      "Ratio rows: annb / Faiss (times: above 1 = annb slower; QPS: below 1 = annb slower).\n")
    header = ["index", "system", "build s (CPU s)", "MB on disk", "open ms", "p50 ms", "p99 ms",
              "1-thread QPS", f"{thr}-thread QPS", "recall@10", "recall@100", "batch QPS"]
    rows = []
    for label in ("flat", "ivf", "hnsw"):
        a, b, f = find("annb", label), find("annb-build", label), find("faiss", label)
        if not a:
            continue
        fi = a.get("faiss_index", label)
        rows.append([fi, "annb",
                     f"{num(b and b['build_s'])} ({num(b and b['cpu_s'])})",
                     num(mb(b and b["bundle_bytes"])), num(a.get("open_ms")), num(a.get("p50_ms")),
                     num(a.get("p99_ms")), num(a.get("qps1")), num(a.get("qps2")),
                     num(a.get("recall10"), 4), num(a.get("recall100"), 4), num(a.get("batch_qps"))])
        if f:
            fb = (f"{num(f['build_s'])} ({num(f['build_cpu_s'])})" if "build_s" in f
                  else "annb's index, not rebuilt")
            rows.append(["", "Faiss", fb, num(mb(f["index_bytes"])), num(f["open_ms"]),
                         num(f["p50_ms"]), num(f["p99_ms"]), num(f["qps1"]), num(f.get("qps2")),
                         num(f["recall10"], 4), num(f.get("recall100"), 4), num(f.get("batch_qps"))])
            rows.append(["", "annb / Faiss", ratio(b and b["build_s"], f.get("build_s")),
                         ratio(mb(b and b["bundle_bytes"]), mb(f["index_bytes"])),
                         ratio(a.get("open_ms"), f["open_ms"]), ratio(a.get("p50_ms"), f["p50_ms"]),
                         ratio(a.get("p99_ms"), f["p99_ms"]), ratio(a.get("qps1"), f["qps1"]),
                         ratio(a.get("qps2"), f.get("qps2")), "", "",
                         ratio(a.get("batch_qps"), f.get("batch_qps"))])
    w(table(header, rows))
    w("")
    notes = []
    for a in every("annb"):
        if a.get("nlat", 0) < int(m.get("nlat", "1000")) and a.get("nlat", 0) < qcount:
            notes.append(f"{a['index']}: the latency pass stopped after {a['nlat']} queries "
                         "(BENCH_LAT_SECONDS).")
        if a.get("vec_mismatch"):
            notes.append(f"{a['index']}: {a['vec_mismatch']:.0f} sampled vectors in the bundle "
                         "differ from the generator's.")
    for n in notes:
        w(f"- {n}")
    w("- annb sets no search parameter yet: IVF answers with Faiss's default nprobe = 1 and "
      "HNSW with efSearch = 16 (Faiss raises it to k when k is larger). The recall above is "
      "what that gives; the sweeps below show what tuning would give.")
    w("- open ms: the median of repeated opens of a file already in the page cache "
      "(the first open after the build is `open_ms_first` in the JSON lines).\n")

    omp = [r for r in res if r.get("system") == "faiss-omp1"]
    if omp:
        w("### Faiss with one OpenMP thread per search call\n")
        w("The same Faiss indexes and defaults, but each search call made with "
          "`omp_set_num_threads(1)` in the calling thread: the difference to the Faiss rows "
          "above is what Faiss's OpenMP parallel region costs a single query (nq=1).\n")
        rows = []
        for r in omp:
            f = find("faiss", r["index"])
            rows.append([r["faiss_index"], num(f and f["p50_ms"]), num(r["p50_ms"]),
                         num(f and f["p99_ms"]), num(r["p99_ms"]), num(f and f["qps1"]),
                         num(r["qps1"]), num(f and f.get("qps2")), num(r.get("qps2"))])
        w(table(["index", "p50 ms", "p50 ms, 1 OMP", "p99 ms", "p99 ms, 1 OMP", "1-thread QPS",
                 "1-thread QPS, 1 OMP", f"{thr}-thread QPS", f"{thr}-thread QPS, 1 OMP"], rows))
        w("")

    ing, bw = find("ingest"), find("membw")
    flat_a, flat_f = find("annb", "flat"), find("faiss", "flat")
    w("## References\n")
    if ing:
        w(f"- CSV ingest (`annb_vector_from_csv` parsing every row of the {ing['bytes'] / 1e6:,.0f} "
          f"MB items CSV, the reader `ann-build` uses): {ing['seconds']:.1f} s, "
          f"**{ing['mbs']:.1f} MB/s**.")
        b = find("annb-build", "flat")
        if b:
            w(f"  `ann-build --index flat` took {b['build_s']:.1f} s in all, so ingest is "
              f"{100 * ing['seconds'] / b['build_s']:.0f}% of a flat build.")
    if bw:
        w(f"- Memory bandwidth, one thread streaming a {bw['mb']:.0f} MiB buffer: "
          f"**{bw['gbs']:.1f} GB/s**.")
        data = m.get("data", "")
        n_items, dim = None, None
        try:
            n_items = int(data.split(" x ")[0])
            dim = int(data.split(" x ")[1].split()[0])
        except (ValueError, IndexError):
            pass
        if n_items and dim:
            bound = n_items * dim * 4 / (bw["gbs"] * 1e9) * 1e3
            w(f"- Exact search bound for one query: {n_items:,} x {dim} x 4 B / bandwidth = "
              f"**{bound:.1f} ms**.")
            for name, r in (("annb Flat", flat_a), ("Faiss IndexFlatIP", flat_f)):
                if r:
                    w(f"  {name}: p50 {r['p50_ms']:.1f} ms = {r['p50_ms'] / bound:.1f}x the bound "
                      f"({n_items * dim * 4 / r['p50_ms'] / 1e6:.1f} GB/s effective).")
    gt = find("groundtruth")
    if gt:
        w(f"- Ground truth (OpenBLAS sgemm + top-100 heap, computed once and cached): "
          f"{gt['seconds']:.0f} s.")
    w("")

    sweeps = [r for r in res if r.get("system") == "faiss-sweep"]
    if sweeps:
        w("## What tuning would give (Faiss, same index, knob swept)\n")
        w(table(["index", "knob", "value", "recall@10", "p50 ms", "p99 ms", "1-thread QPS"],
                [[r["faiss_index"], r["param"], f"{r['value']:.0f}", num(r["recall10"], 4),
                  num(r["p50_ms"]), num(r["p99_ms"]), num(r["qps1"])] for r in sweeps]))
        w("\nEach sweep stops at the first value reaching recall@10 >= 0.95.\n")

    rows = []
    a, b = find("annb", "hnsw"), find("annb-build", "hnsw")
    if a:
        rows.append(["annb HNSW32 (as is)", f"{num(b and b['build_s'])} ({num(b and b['cpu_s'])})", num(mb(b and b["bundle_bytes"])),
                     num(a.get("open_ms")), "efSearch 16 (default)", num(a["recall10"], 4),
                     num(a["p50_ms"]), num(a["p99_ms"]), num(a["qps1"]), num(a.get("qps2"))])
    f, fm = find("faiss", "hnsw"), find("faiss-matched", "hnsw")
    if fm:
        rows.append(["Faiss HNSW32", num(f and f.get("build_s", "annb's graph")), num(mb(f and f["index_bytes"])),
                     num(f and f["open_ms"]), f"efSearch {fm['value']:.0f}", num(fm["recall10"], 4),
                     num(fm["p50_ms"]), num(fm["p99_ms"]), num(fm["qps1"]), num(fm.get("qps2"))])
    for sysname in ("usearch", "hnswlib-node"):
        s, sm = find(sysname, "hnsw"), find(f"{sysname}-matched", "hnsw")
        if s:
            rows.append([f"{sysname} (build threads {s.get('build_threads', '?')})",
                         f"{num(s['build_s'])} ({num(s.get('build_cpu_s'))})",
                         num(mb(s["index_bytes"])), num(s.get("open_ms")),
                         f"ef {sm['value']:.0f}" if sm else "recall 0.95 not reached",
                         num(sm and sm["recall10"], 4), num(sm and sm["p50_ms"]),
                         num(sm and sm["p99_ms"]), num(sm and sm["qps1"]),
                         num(sm and sm.get("qps2")) if sm and sm.get("qps2") else "-"])
    if rows:
        w("## HNSW at matched recall (recall@10 >= 0.95; M=32, efConstruction=40 for all)\n")
        w(table(["system", "build s (CPU s)", "MB on disk", "open ms", "setting", "recall@10", "p50 ms",
                 "p99 ms", "1-thread QPS", f"{thr}-thread QPS"], rows))
        w("\nusearch's threaded figure is one batched `search(..., threads)` call; hnswlib-node "
          "searches on the calling JavaScript thread only (no threaded figure) and takes uint32 "
          "labels, so rows are labelled and mapped to the int64 IDs afterwards. Open = load from "
          "the saved file (usearch `load`, hnswlib `readIndexSync`).\n")
        npm_sweeps = [r for r in res if r.get("system") in ("usearch-sweep", "hnswlib-node-sweep")]
        if npm_sweeps:
            w(table(["system", "ef", "recall@10", "p50 ms", "1-thread QPS"],
                    [[r["system"][:-6], f"{r['value']:.0f}", num(r["recall10"], 4), num(r["p50_ms"]),
                      num(r["qps1"])] for r in npm_sweeps]))
            w("")

    procs = every("process")
    if procs:
        w("## The notebook flow vs one `ann-query` process\n")
        w("Notebook flow (`tests/bench/notebook_flow.py`, Debian python3-faiss + python3-pandas): "
          "read the items CSV with pandas, json-parse every vector, IndexIDMap(IndexFlatL2), "
          "look one user up in the users CSV, search, print the top 10, as one process. "
          "ann-query: `ann-query BUNDLE --user-vec USERS.csv:ID -k 10`, one process on a "
          "prebuilt bundle. Wall time, median of 3 (notebook) and 5 (ann-query) runs on the "
          "example, 1 and 3 on the large set.\n")
        rows = []
        for p in procs:
            what = ("seed-shaped example, l2 bundle" if p["data"] == "example"
                    else "benchmark set, flat ip bundle")
            rows.append([f"{what} ({p['items']:,} items)", f"{p['notebook_s']:.3f}",
                         f"{p['annquery_s']:.3f}", ratio(p["notebook_s"], p["annquery_s"]),
                         num(p.get("same_top10", "-"))])
        w(table(["data", "notebook s", "ann-query s", "notebook / ann-query", "same top 10"], rows))
        w("\nThe notebook pays for the CSV, JSON and index build on every start; ann-query maps a "
          "bundle built once. On the large set the notebook uses L2 and the bundle inner "
          "product: both are one exact scan, the answers differ.\n")
    phases = every("phase")
    if phases:
        total = sum(p["seconds"] for p in phases)
        w("## Where the run's time went\n")
        w(table(["phase", "wall s", "share"],
                [[p["name"], f"{p['seconds']:.0f}", f"{100 * p['seconds'] / total:.0f}%"]
                 for p in phases] + [["total", f"{total:.0f}", ""]]))
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
