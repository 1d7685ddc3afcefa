"""Renders the benchmark's JSON lines as Markdown (called by run.sh).

    python3 report.py RESULTS.jsonl MACHINE.txt > bench-results.md
    python3 report.py RESULTS.jsonl MACHINE.txt [RESULTS2.jsonl MACHINE2.txt ...]

The targets table comes first: each target with the figure measured and
whether it was met. Runs of the graph suite (BENCH_SUITE=graph, machine
"suite=graph") get the graph report instead, one section per data set when
several runs are given (tests/bench/graph.sh). Standard library only.
"""
import json
import sys

MATCH = 0.95  # the recall@10 every "at equal recall" figure is taken at (bench_common.h)
# run.sh's index names, in report order (hnsw-mips: --index hnsw --mips-reduction)
LABELS = ("flat", "ivf", "hnsw", "hnsw-mips", "ivfpq", "auto")


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


def verdict(ok):
    return "-" if ok is None else ("**met**" if ok else "**not met**")


def mb(b):
    return None if b is None else b / 1e6


def setting(r):
    """'nprobe 32' / 'efSearch 64' of a result line that has one, else ''."""
    if r and r.get("param") and r.get("value"):
        return f"{r['param']} {r['value']:.0f}"
    return ""


def stored_setting(a):
    """The search parameter a bundle stores, from bench_annb's "annb" line."""
    if not a:
        return "-"
    if a.get("nprobe"):
        return f"nprobe {a['nprobe']:.0f}"
    if a.get("ef_search"):
        return f"efSearch {a['ef_search']:.0f}"
    return "- (exact)"


# ------------------------------------------------------------------ graph suite

LEVELS = (0.90, 0.95, 0.99)  # recall@10 levels of the graph report
# The graph suite's systems: result "system" prefix, and how the report names them.
GRAPH_SYSTEMS = (("annb", "annb"), ("hnswlib", "hnswlib (python3-hnswlib 0.6.2)"),
                 ("hnswlib-node", "hnswlib-node 3.0.0"), ("usearch", "usearch 2.25.3"))
REFERENCE = "hnswlib"  # the ratio columns divide by this system's QPS


def first_reaching(sweep, level):
    """The first sweep line (in sweep order) whose recall@10 reaches level."""
    return next((r for r in sweep if r.get("recall10", 0) >= level - 1e-12), None)


def ratios(a, b):
    """'wall ratio; CPU ratio' of two sweep lines' QPS."""
    if not a or not b:
        return "-"
    return f"{ratio(a.get('qps1'), b.get('qps1'))}; {ratio(a.get('cpu_qps1'), b.get('cpu_qps1'))}"


def bundle_split(build, n):
    """Bytes per vector of a bundle, and of its index and vector sections."""
    if not n or "bundle_bytes" not in build:
        return "-"
    sec = build.get("sections") or {}
    vec = sec.get("VECS", 0)
    idx = sum(v for k, v in sec.items() if k in ("GADJ", "GENT", "GCOD", "GSQP", "FAIS"))  # graph (+ codes) or Faiss
    parts = []
    if idx:
        parts.append(f"index {idx / n:.0f}")
    if vec:
        parts.append(f"vectors {vec / n:.0f}")
    return f"{build['bundle_bytes'] / n:,.0f}" + (f" ({', '.join(parts)})" if parts else "")


def graph_section(res, m, heading):
    def find(system, **kw):
        return next((r for r in res if r.get("system") == system and
                     all(r.get(k) == v for k, v in kw.items())), None)

    def every(system, **kw):
        return [r for r in res if r.get("system") == system and
                all(r.get(k) == v for k, v in kw.items())]

    n = int(m.get("n", 0) or 0)
    gi = m.get("graph_index", "?")
    build = find("annb-build", index="graph") or {}
    annb = find("annb", index="graph") or {}
    stop = float(m.get("stop_recall", 0.99) or 0.99)
    out = []
    w = out.append
    w(f"{heading} {m.get('dataset', '?')}: {m.get('data', '?')}\n")
    w(f"Command: `{m.get('command', '?')}`, run on {m.get('date', '?')}; annb `--index {gi}`"
      f"{' (a stand-in: this ann-build has no --index graph)' if gi != 'graph' else ''}"
      f" resolved to `{build.get('resolved', '?')}`. Load average at start "
      f"{m.get('load_start', '?')}, at end {m.get('load_end', '?')}.\n")

    # Sweeps per system, in sweep order.
    sweeps = {"annb": every("annb-sweep", index="graph")}
    for key, _ in GRAPH_SYSTEMS[1:]:
        sweeps[key] = every(f"{key}-sweep")
    ends = {"annb": find("annb-sweep-end", index="graph")}
    for key, _ in GRAPH_SYSTEMS[1:]:
        ends[key] = find(f"{key}-sweep-end")
    matched = {"annb": find("annb-matched", index="graph")}
    for key, _ in GRAPH_SYSTEMS[1:]:
        matched[key] = find(f"{key}-matched")

    # ---- the systems: build, size, open
    rows = []
    for key, label in GRAPH_SYSTEMS:
        if key == "annb":
            if not build:
                continue
            rec = build.get("recall") or {}
            stored = (f"stored efSearch {rec['ef_search']} (recall {rec['recall']:.4f} on "
                      f"{rec.get('queries', '?')} {rec.get('questions', '?')} questions)"
                      if rec.get("ef_search") else "no stored parameter")
            rows.append([f"annb `--index {gi}`", f"`{build.get('resolved', '?')}`; {stored}",
                         f"{num(build.get('build_s'))} ({num(build.get('cpu_s'))})",
                         build.get("build_threads", "-"),
                         bundle_split(build, n),
                         num(annb.get("open_ms")), num(annb.get("open_ms_first")),
                         num((matched["annb"] or {}).get("qps2"))])
            continue
        b = find(key)
        if not b:
            continue
        how = f"M={b.get('M')}, efConstruction={b.get('efConstruction')}"
        if b.get("index_from"):
            built = f"{b['index_from']}'s index"
        else:
            built = f"{num(b.get('build_s'))} ({num(b.get('build_cpu_s'))})"
        rows.append([label, how, built, b.get("build_threads", "-"),
                     num(b["index_bytes"] / n, 0) if n else "-", num(b.get("open_ms")),
                     num(b.get("open_ms_first")), num((matched[key] or {}).get("qps2"))])
    w("**Systems** (inner product; build = wall seconds (CPU seconds); bytes per vector = "
      "file size / N: annb's bundle holds the vectors, IDs, graph, catalog and tuning users; "
      "open = open/load of the file in the page cache, median and first)\n")
    w(table(["system", "index", "build s (CPU s)", "build threads", "bytes per vector", "open ms",
             "first open ms", f"{m.get('threads', 2)}-thread QPS at recall 0.95"], rows))
    w("")

    # ---- QPS at each recall level
    ref = {lv: first_reaching(sweeps.get(REFERENCE, []), lv) for lv in LEVELS}
    ref2 = {lv: first_reaching(sweeps.get("hnswlib-node", []), lv) for lv in LEVELS}
    rows = []
    for lv in LEVELS:
        for key, label in GRAPH_SYSTEMS:
            sw = sweeps.get(key) or []
            if not sw:
                continue
            r = first_reaching(sw, lv)
            name = f"annb `{gi}`" if key == "annb" else label
            if r:
                rows.append([f"{lv:.2f}", name, f"{r['param']} {r['value']:.0f}",
                             num(r["recall10"], 4), num(r["qps1"]), num(r.get("cpu_qps1")),
                             num(r["p50_ms"], 3), num(r["p99_ms"], 3),
                             ratios(r, ref[lv]) if key == "annb" else "",
                             ratios(r, ref2[lv]) if key == "annb" else ""])
            else:
                best = max(sw, key=lambda x: x.get("recall10", 0))
                rows.append([f"{lv:.2f}", name, "not reached", f"best {best['recall10']:.4f} "
                             f"at {best['param']} {best['value']:.0f}", "-", "-", "-", "-", "-",
                             "-"])
    w(f"**Single-thread QPS at the first ef reaching recall@10 0.90, 0.95 and 0.99** (one "
      "query per call, k=10, one thread; the same ef list for every system, annb's stored "
      "value added; ratios: annb's QPS over hnswlib's at the same level, through each of its "
      "two bindings, which search the same graph: the Python call costs more per query than "
      "the Node one. 1-thread QPS: queries / the sum of their wall latencies; CPU QPS: queries "
      "/ the CPU time the searching thread (Node: process) spent in those calls, which leaves "
      "out the time spent waiting for a core when the machine is busier than its cores; "
      "compare the two to see how much waiting there was)\n")
    w(table(["recall@10 >=", "system", "ef", "recall@10", "1-thread QPS", "CPU QPS", "p50 ms",
             "p99 ms", "annb / hnswlib (Python): QPS; CPU QPS",
             "annb / hnswlib-node: QPS; CPU QPS"], rows))
    w("")
    notes = []
    for key, label in GRAPH_SYSTEMS:
        e = ends.get(key)
        if e and not e.get("reached"):
            notes.append(f"- {label}: recall@10 {stop} not reached (best {e['best_recall10']:.4f}, "
                         f"sweep ended at ef {e['last_value']:.0f}).")
        st = find(f"{key}-sweep-stopped") if key != "annb" else find("annb-sweep-stopped", index="graph")
        if st:
            notes.append(f"- {label}: the sweep stopped at ef {st['value']:.0f}: the same recall for "
                         "three values in a row.")
    if annb.get("nlat") is not None and annb.get("vec_mismatch"):
        notes.append(f"- annb: {annb['vec_mismatch']:.0f} sampled vectors differ from the generator's.")
    if notes:
        w("\n".join(notes) + "\n")

    # ---- filtered
    filters = []
    for r in res:
        if r.get("system") in ("annb-filter-sweep", "hnswlib-node-filter-sweep") and \
                r.get("filter") not in filters:
            filters.append(r["filter"])
    if filters:
        what = {"seen100": "100 seen items excluded", "seen1000": "1,000 seen items excluded",
                "genre10": "genre at ~10% of items", "genre1": "genre at ~1% of items"}
        rows = []
        short_notes = []
        for f in filters:
            a_sw = every("annb-filter-sweep", index="graph", filter=f)
            h_sw = every("hnswlib-node-filter-sweep", filter=f)
            for lv in LEVELS:
                a, h = first_reaching(a_sw, lv), first_reaching(h_sw, lv)
                cells = [f"{what.get(f, f)}", f"{lv:.2f}"]
                for x, sw in ((a, a_sw), (h, h_sw)):
                    if x:
                        cells += [f"{x['value']:.0f}", num(x["recall10"], 4), num(x["qps1"]),
                                  num(x.get("cpu_qps1")), num(x["p50_ms"], 3)]
                    elif sw:
                        best = max(sw, key=lambda y: y.get("recall10", 0))
                        cells += [f"not reached (best {best['recall10']:.4f})", "-", "-", "-", "-"]
                    else:
                        cells += ["not run", "-", "-", "-", "-"]
                cells.append(ratios(a, h))
                rows.append(cells)
            for name, sw in (("annb", a_sw), ("hnswlib-node", h_sw)):
                if not sw:
                    continue
                short = [x for x in sw if x.get("short_answers")]
                if short:
                    short_notes.append(
                        f"- {what.get(f, f)}, {name}: fewer than 10 results at "
                        + ", ".join(f"ef {x['value']:.0f} ({x['short_answers']:.0f} of "
                                    f"{x['answers']:.0f} answers)" for x in short) + ".")
                else:
                    short_notes.append(f"- {what.get(f, f)}, {name}: 10 results in every answer "
                                       f"(ef {sw[0]['value']:.0f} to {sw[-1]['value']:.0f}).")
        w("**Filtered searches**: recall@10 against the exact answer under the same filter "
          "(`bench_gt --filters`); annb through `annb_search_opts.exclude_ids` (seen) and "
          "`.genres`, hnswlib-node through `searchKnn(q, 10, filter)` (a JavaScript callback per "
          "candidate label, on python3-hnswlib's index); first ef reaching each level, one "
          "query per call, one thread.\n")
        w(table(["filter", "recall@10 >=", "annb ef", "annb recall@10", "annb QPS", "annb CPU QPS",
                 "annb p50 ms", "hnswlib-node ef", "hnswlib-node recall@10", "hnswlib-node QPS",
                 "hnswlib-node CPU QPS", "hnswlib-node p50 ms",
                 "annb / hnswlib-node: QPS; CPU QPS"], rows))
        w("")
        w("Did k=10 results always come back?\n")
        w("\n".join(short_notes) + "\n")

    # ---- every user's top k (bench_exact_batch)
    peak = find("peak") or {}
    allu = {r.get("mode"): r for r in every("annb-all-users")}
    if allu:
        rows = []
        what = {"default": "the library's choice at the stored efSearch",
                "walk": "the graph walk forced (`ANNB_GRAPH_BATCH=walk`)",
                "exact": "exact search (`opts.exact`)"}
        for mode in ("default", "walk", "exact"):
            r = allu.get(mode)
            if not r:
                continue
            pk = peak.get("gflops_per_core")
            share = f"{100 * r['gflops_per_core'] / pk:.0f}%" if pk and mode != "walk" else "-"
            rows.append([what[mode], f"{r['users']:.0f}", num(r["users_s"]),
                         num(r["users_s_per_core"]), num(r["gflops_per_core"]), share,
                         num(r["recall"], 4)])
        r0 = next(iter(allu.values()))
        w(f"**Every user's top {r0['k']:.0f}** (`bench_exact_batch`: `annb_recommend` over the "
          f"bundle's {r0['users']:.0f} tuning users, {r0['batch']:.0f} a call as `ann-query "
          f"--all-users` asks, {r0['threads']:.0f} threads, best of {r0['rounds']:.0f} rounds; "
          f"recall@{r0['k']:.0f} against the exact answers; GFLOP/s = 2 x users x items x d / "
          f"time, whatever the path does; peak: `bench_peak`, "
          f"{num(peak.get('gflops_per_core'))} GFLOP/s per core ({peak.get('isa', '?')} FMA))\n")
        w(table(["path", "users", "users/s (wall)", "users/s per core (CPU time)",
                 "GFLOP/s per core", "share of peak", f"recall@{r0['k']:.0f}"], rows))
        w("")

    out += targets(find, every, sweeps, m)

    # ---- full sweeps
    rows = []
    for key, label in GRAPH_SYSTEMS:
        for r in sweeps.get(key) or []:
            rows.append([label if key != "annb" else f"annb `{gi}`", f"{r['value']:.0f}",
                         num(r["recall10"], 4), num(r["qps1"]), num(r.get("cpu_qps1")),
                         num(r["p50_ms"], 3), num(r["p99_ms"], 3)])
    if rows:
        w("<details><summary>Every swept value (unfiltered)</summary>\n")
        w(table(["system", "ef", "recall@10", "1-thread QPS", "CPU QPS", "p50 ms", "p99 ms"], rows))
        w("\n</details>\n")
    phases = every("phase")
    if phases:
        w("Time: " + ", ".join(f"{p['name']} {p['seconds']:.0f} s" for p in phases) + ".\n")
    return out


def targets(find, every, sweeps, m):
    """Issue 13's targets, each with the figure this run reached."""
    out = []
    w = out.append
    rows = []

    def row(target, wanted, reached, ok):
        rows.append([target, wanted, reached, "-" if ok is None else verdict(ok)])

    for lv, want in ((0.95, 2.0), (0.99, 1.0)):
        a = first_reaching(sweeps.get("annb", []), lv)
        h = first_reaching(sweeps.get(REFERENCE, []), lv)
        if a and h:
            x = a["qps1"] / h["qps1"]
            xc = a["cpu_qps1"] / h["cpu_qps1"] if a.get("cpu_qps1") and h.get("cpu_qps1") else None
            row(f"1-thread QPS at recall@10 {lv:.2f}, over python3-hnswlib's", f">= {want:g}x",
                f"{x:.2f}x ({num(a['qps1'])} / {num(h['qps1'])} QPS)"
                + (f"; CPU QPS {xc:.2f}x" if xc else ""), x >= want)
        else:
            row(f"1-thread QPS at recall@10 {lv:.2f}, over python3-hnswlib's", f">= {want:g}x",
                "not reached by " + ("annb" if not a else "hnswlib"), False if not a else None)
    a = first_reaching(sweeps.get("annb", []), 0.95)
    if a:
        row("p50 latency at recall@10 0.95", "<= 0.25 ms", f"{a['p50_ms']:.3f} ms",
            a["p50_ms"] <= 0.25)
    annb = find("annb", index="graph") or {}
    if annb.get("open_ms") is not None:
        row("open time (page cache), median", "<= 5 ms",
            f"{annb['open_ms']:.2f} ms (first {num(annb.get('open_ms_first'))})",
            annb["open_ms"] <= 5)
    build, hb = find("annb-build", index="graph") or {}, find("hnswlib") or {}
    if build.get("build_s") and hb.get("build_s"):
        row(f"build on {build.get('build_threads', '?')} threads, against python3-hnswlib's",
            "<= 1x", f"{build['build_s']:.0f} s against {hb['build_s']:.0f} s "
            f"({build['build_s'] / hb['build_s']:.2f}x; annb's includes reading the CSV and tuning)",
            build["build_s"] <= hb["build_s"])
    for f, name in (("seen100", "100 seen items excluded"), ("genre10", "genre at 10%")):
        a_sw = every("annb-filter-sweep", index="graph", filter=f)
        h_sw = every("hnswlib-node-filter-sweep", filter=f)
        if not a_sw:
            continue
        a, h = first_reaching(a_sw, 0.95), first_reaching(h_sw, 0.95)
        short = sum(x.get("short_answers", 0) for x in a_sw)
        if a and h:
            x = a["qps1"] / h["qps1"]
            row(f"filtered ({name}) QPS at recall@10 0.95, over hnswlib-node's", ">= 1x, k results",
                f"{x:.2f}x; {'every answer had 10 results' if not short else f'{short:.0f} short answers'}",
                x >= 1 and not short)
        else:
            row(f"filtered ({name}) QPS at recall@10 0.95, over hnswlib-node's", ">= 1x, k results",
                "not reached by " + ("annb" if not a else "hnswlib-node"), False if not a else None)
    allu = {r.get("mode"): r for r in every("annb-all-users")}
    peak = (find("peak") or {}).get("gflops_per_core")
    if "default" in allu:
        r = allu["default"]
        row(f"every user's top {r['k']:.0f} on {r['threads']:.0f} threads (graph bundle)",
            ">= 20,000 users/s at the stored recall",
            f"{num(r['users_s'])} users/s, recall@{r['k']:.0f} {r['recall']:.4f}",
            r["users_s"] >= 20000)
    if "exact" in allu and peak:
        r = allu["exact"]
        share = r["gflops_per_core"] / peak
        row("exact every-user batch, per core", ">= 70% of peak",
            f"{100 * share:.0f}% ({num(r['gflops_per_core'])} of {num(peak)} GFLOP/s)", share >= 0.70)
    if rows:
        w(f"**Issue 13's targets** (n = {m.get('n', '?')}; each figure from the tables above)\n")
        w(table(["target", "wanted", "reached", "met"], rows))
        w("")
    return out


def graph_main(runs):
    out = ["# annb graph-index benchmark\n"]
    m0 = runs[0][1]
    out.append("Inner product, k=10, one query per call on one thread unless said otherwise; "
               "recall@10 against exact ground truth (OpenBLAS sgemm, `bench_gt`). The peers are "
               "built with hnswlib's usual M=16 (layer-0 degree 32) and efConstruction=200 on "
               f"{m0.get('build_threads', 2)} threads; every system is swept over the same ef "
               "list up to the first value reaching recall@10 "
               f"{m0.get('stop_recall', '0.99')} (tests/bench/graph.sh, docs/benchmarks.md).\n")
    out.append("## Machine\n")
    for key in ("cpu", "cpus", "caches", "memory", "hypervisor", "os", "kernel", "compiler",
                "annb"):
        if key in m0:
            out.append(f"- {key}: {m0[key]}")
    out.append("")
    for res, m in runs:
        out += graph_section(res, m, "## Data set")
    print("\n".join(out))


def main():
    if len(sys.argv) >= 3 and len(sys.argv) % 2 == 1:
        runs = [(load(sys.argv[i]), machine(sys.argv[i + 1])) for i in range(1, len(sys.argv), 2)]
        if all(m.get("suite") == "graph" for _, m in runs):
            graph_main(runs)
            return
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

    labels = [lb for lb in LABELS if find("annb", lb) or find("annb-build", lb)]
    thr = int(m.get("threads") or next((r.get("threads") for r in res if r.get("system") == "annb"), 2))
    n_items, dim = int(m.get("n", 0) or 0), int(m.get("d", 0) or 0)
    resolved = {lb: (find("annb-build", lb) or {}).get("resolved") or
                (find("annb", lb) or {}).get("faiss_index", lb) for lb in labels}
    chosen = {r["name"]: r["index"] for r in every("choose")}

    def name(lb):
        return f"{lb} ({resolved[lb]})" if resolved.get(lb) and resolved[lb].lower() != lb else lb

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

    # ---------------------------------------------------------------- targets
    bw, ing = find("membw"), find("ingest")
    flat_a = find("annb", "flat")
    bound = (n_items * dim * 4 / (bw["gbs"] * 1e9) * 1e3) if bw and n_items and dim else None

    # annb configurations answering at recall@10 >= MATCH on the harness's
    # queries: the stored parameter (default options) and the first swept
    # value that reaches it.
    good = []
    for lb in labels:
        if lb == "flat" or resolved.get(lb) == "Flat":
            continue
        a, am = find("annb", lb), find("annb-matched", lb)
        if a and a.get("recall10", 0) >= MATCH:
            good.append((f"{name(lb)}, stored {stored_setting(a)}", a))
        if am:
            good.append((f"{name(lb)}, {setting(am)}", am))
    fastest = min(good, key=lambda g: g[1]["p50_ms"]) if good else None
    busiest = max(good, key=lambda g: g[1]["qps1"]) if good else None

    # "The approximate bundle": what auto picks at this size, else ivf, else hnsw.
    approx = None
    for lb in labels:
        if lb != "flat" and resolved.get(lb) not in (None, "Flat") and resolved[lb] == chosen.get("auto"):
            approx = lb
    approx = approx or next((lb for lb in ("ivf", "hnsw", "ivfpq") if lb in labels), None)

    def oneshot(data, lb, question):
        return find("oneshot", lb, data=data, question=question)

    rows = []
    # 1. exact search against the bandwidth bound
    if flat_a and bound:
        x = flat_a["p50_ms"] / bound
        rows.append([f"Exact single query {n_items:,} x {dim} within 1.25x of the one-core "
                     "memory-bandwidth time",
                     f"p50 {flat_a['p50_ms']:.2f} ms = **{x:.2f}x** the bound {bound:.2f} ms "
                     f"({bw['gbs']:.1f} GB/s, one thread)", verdict(x <= 1.25)])
    else:
        rows.append(["Exact single query within 1.25x of the memory-bandwidth time",
                     "not measured (flat not built)", verdict(None)])
    # 2. approximate latency at recall >= 0.95
    if fastest:
        g = fastest[1]
        rows.append([f"Approximate {n_items:,} x {dim} at recall@10 >= {MATCH}: library p50 <= "
                     "0.5 ms, one thread",
                     f"**{g['p50_ms']:.3f} ms** ({fastest[0]}; recall@10 {g['recall10']:.4f})",
                     verdict(g["p50_ms"] <= 0.5)])
    else:
        rows.append([f"Approximate at recall@10 >= {MATCH}: library p50 <= 0.5 ms",
                     f"no annb index reached recall@10 {MATCH} on the harness's queries",
                     verdict(False if labels != ["flat"] else None)])
    # 3. one-shot on the approximate bundle
    o = approx and oneshot("bench", approx, "vec")
    if o:
        a = find("annb", approx)
        others = [f"{lb} {x['median_ms']:.1f} ms" for lb in labels if lb != approx
                  for x in [oneshot("bench", lb, "vec")] if x]
        rows.append([f"One-shot `ann-query` on the {n_items:,}-item approximate bundle, warm "
                     "cache: <= 15 ms wall",
                     f"**{o['median_ms']:.1f} ms** ({name(approx)}, {stored_setting(a)}, `--vec`, "
                     f"median of {o['runs']}; " + ", ".join(others) + ")",
                     verdict(o["median_ms"] <= 15)])
    # 4. one-shot on the example
    o, ou = oneshot("example", "flat", "user-vec"), oneshot("example", "flat", "user")
    nb = find("notebook", data="example")
    if o:
        fl = find("oneshot", data="floor")
        extra = f"; `--user` (users stored): {ou['median_ms']:.1f} ms" if ou else ""
        extra += f"; `ann-query --version` alone: {fl['median_ms']:.1f} ms" if fl else ""
        extra += f"; the notebook flow: {nb['median_ms'] / 1e3:.2f} s" if nb else ""
        rows.append(["One-shot `ann-query` on the example: <= 5 ms",
                     f"**{o['median_ms']:.1f} ms** (`--user-vec users.csv:10`, the notebook's "
                     f"question{extra})", verdict(o["median_ms"] <= 5)])
    # 5. IVF build and CSV ingest
    ivf_b = find("annb-build", "ivf")
    if ivf_b:
        rows.append([f"Build of {n_items:,} x {dim} from CSV with an IVF index: <= 90 s on 2 cores",
                     f"**{ivf_b['build_s']:.1f} s** (CPU {ivf_b['cpu_s']:.1f} s; "
                     f"{ivf_b['resolved']}, --threads {ivf_b.get('build_threads', '?')}, "
                     f"{m.get('cpus', '?').split()[0]} cores online)",
                     verdict(ivf_b["build_s"] <= 90)])
    if ing:
        rows.append(["CSV ingest >= 100 MB/s", f"**{ing['mbs']:.1f} MB/s** "
                     f"({ing['bytes'] / 1e6:,.0f} MB in {ing['seconds']:.1f} s)",
                     verdict(ing["mbs"] >= 100)])
    # 6. throughput at equal recall against hnswlib and usearch
    npm = {s: find(f"{s}-matched", "hnsw") for s in ("usearch", "hnswlib-node")}
    npm = {s: r for s, r in npm.items() if r}
    if npm or busiest:
        theirs = ", ".join(f"{s} {r['qps1']:,.0f} ({setting(r)}, recall {r['recall10']:.4f})"
                           for s, r in npm.items())
        note = ""
        if busiest:
            mine = f"annb **{busiest[1]['qps1']:,.0f}** ({busiest[0]}, recall {busiest[1]['recall10']:.4f})"
            for lb in ("hnsw", "hnsw-mips"):
                hm = find("annb-matched", lb)
                best = max(every("annb-sweep", lb) + every("annb", lb),
                           key=lambda r: r.get("recall10", 0), default=None)
                if hm and busiest[1] is not hm:
                    note += f"; annb {name(lb)}: {hm['qps1']:,.0f} ({setting(hm)})"
                elif not hm and best:
                    note += (f"; annb {name(lb)} did not reach it (best recall@10 "
                             f"{best['recall10']:.4f})")
        else:
            mine = f"annb: no index reached recall@10 {MATCH}"
        ok = None
        if npm:
            ok = bool(busiest) and all(busiest[1]["qps1"] >= r["qps1"] for r in npm.values())
        rows.append([f"At equal recall (recall@10 >= {MATCH}), 1-thread throughput at least "
                     "that of hnswlib and usearch",
                     f"{mine} vs {theirs or 'npm baselines not run'} queries/s{note}", verdict(ok)])
    w("## Targets\n")
    if (n_items, dim) != (1000000, 64):
        w(f"This run is on {n_items:,} x {dim}: the targets are set for 1,000,000 x 64, so the "
          "verdicts below are indicative only.\n")
    w(table(["target", "measured", ""], rows))
    w("")
    w("Figures from the tables below. \"At recall@10 >= 0.95\" is on the harness's own queries "
      "and exact ground truth: annb at the parameter stored in the bundle when that reaches it, "
      "else at the first swept value that does.\n")

    # ---------------------------------------------------------------- machine
    w("## Machine\n")
    for key in ("cpu", "cpus", "caches", "memory", "hypervisor", "os", "kernel", "compiler",
                "openblas", "faiss", "annb", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS"):
        if key in m:
            w(f"- {key}: {m[key]}")
    w(f"- load average (1, 5, 15 min) at start: {m.get('load_start', '?')}, at end: "
      f"{m.get('load_end', '?')} (other work on the machine shows up as noise, above all in p99)")
    w("")

    # ---------------------------------------------------- builds and recall
    if labels:
        w("## annb bundles: build, stored recall, measured recall\n")
        if chosen:
            w("At this size (" + f"{n_items:,} x {dim}" + ") `--index` resolves as: " +
              ", ".join(f"{k} -> `{v}`" for k, v in chosen.items()) + ".\n")
        rows = []
        for lb in labels:
            b, a = find("annb-build", lb) or {}, find("annb", lb) or {}
            rec = b.get("recall") or {}
            if rec.get("measured"):
                stored = (f"{rec['recall']:.4f} @{rec.get('k', 10)} ({rec.get('queries', '?')} "
                          f"{rec.get('questions', '?')} questions, target {rec.get('target', '?')})")
            else:
                stored = "exact"
            opt = "hnsw --mips-reduction" if lb == "hnsw-mips" else lb
            rows.append([f"`--index {opt}`", f"`{resolved.get(lb)}`",
                         f"{num(b.get('build_s'))} ({num(b.get('cpu_s'))})", b.get("build_threads", "-"),
                         num(mb(b.get("bundle_bytes"))), stored_setting(a), stored,
                         num(a.get("recall10"), 4), num(a.get("recall100"), 4)])
        w(table(["index", "resolved", "build s (CPU s)", "build threads", "MB on disk",
                 "stored parameter", "stored recall (build time)", "recall@10 here",
                 "recall@100 here"], rows))
        w("")
        w("- Build: one `ann-build ITEMS.csv -o B --index X [--threads T]` process (CSV ingest, "
          "sort, index, recall measurement and tuning, write), wall and user+sys time.")
        w("- Stored recall: what `ann-build` measured on sampled questions and recorded "
          "(`ann-inspect --json`, \"recall\"), at the parameter it then stores as the default. "
          "\"Here\": the harness's own queries against its exact ground truth, at that default "
          "(recall@10 over the latency queries, recall@100 from one k=100 call).")
        hb = find("annb-build", "hnsw") or find("annb-build", "hnsw-mips")
        if hb and str(hb.get("build_threads")) not in ("1", "default"):
            w(f"- HNSW bundles were built with {hb['build_threads']} threads: the graph, and so "
              "the bytes, depend on thread timing and are not reproducible (one thread, "
              "ann-build's default for graph indexes, gives the same bytes on every run).")
        mips = [lb for lb in labels if (find("faiss", lb) or {}).get("mips_l2")]
        if mips:
            w(f"- {', '.join(mips)}: the FAIS index is over the MIPS-to-L2 reduction (one extra "
              "coordinate, searched as L2; SPEC 6.4), `--mips-reduction`.")
        w("")

    # ------------------------------------------------- annb vs Faiss, as is
    w("## annb vs Faiss in-process, at the stored parameter\n")
    w("annb: `bench_annb` through `annb.h`, default options, so each search uses the parameter "
      "the bundle stores. Faiss: `bench_faiss`, the same index string and metric (inner product), "
      "the same parameter set on the index; built from the raw float32 array (build = train + "
      "add) or, for the labels not in BENCH_FAISS_BUILD, the very index annb built, read from "
      "the bundle's FAIS section (no build time; an HNSW index over the MIPS-to-L2 reduction is "
      "asked (q, 0), as annb asks it), built here when the bundle has no FAIS section. "
      f"Latency: nq=1, k=10, one thread. {thr}-thread QPS: {thr} threads sharing one open "
      "bundle/index, nq=1, k=10. recall@100 and batch QPS: one call with nq=1000, k=100. "
      "Ratio rows: annb / Faiss (times: above 1 = annb slower; QPS: below 1 = annb slower).\n")
    header = ["index", "system", "parameter", "build s (CPU s)", "MB on disk", "open ms", "p50 ms",
              "p99 ms", "1-thread QPS", f"{thr}-thread QPS", "recall@10", "recall@100", "batch QPS"]
    rows = []
    for lb in labels:
        a, b, f = find("annb", lb), find("annb-build", lb), find("faiss", lb)
        if not a:
            continue
        rows.append([name(lb), "annb", stored_setting(a),
                     f"{num(b and b['build_s'])} ({num(b and b['cpu_s'])})",
                     num(mb(b and b["bundle_bytes"])), num(a.get("open_ms")), num(a.get("p50_ms")),
                     num(a.get("p99_ms")), num(a.get("qps1")), num(a.get("qps2")),
                     num(a.get("recall10"), 4), num(a.get("recall100"), 4), num(a.get("batch_qps"))])
        if f:
            fb = (f"{num(f['build_s'])} ({num(f['build_cpu_s'])})" if "build_s" in f
                  else "annb's index")
            rows.append(["", "Faiss", setting(f) or "-", fb, num(mb(f["index_bytes"])),
                         num(f["open_ms"]), num(f["p50_ms"]), num(f["p99_ms"]), num(f["qps1"]),
                         num(f.get("qps2")), num(f["recall10"], 4), num(f.get("recall100"), 4),
                         num(f.get("batch_qps"))])
            rows.append(["", "annb / Faiss", "", ratio(b and b["build_s"], f.get("build_s")),
                         ratio(mb(b and b["bundle_bytes"]), mb(f["index_bytes"])),
                         ratio(a.get("open_ms"), f["open_ms"]), ratio(a.get("p50_ms"), f["p50_ms"]),
                         ratio(a.get("p99_ms"), f["p99_ms"]), ratio(a.get("qps1"), f["qps1"]),
                         ratio(a.get("qps2"), f.get("qps2")), "", "",
                         ratio(a.get("batch_qps"), f.get("batch_qps"))])
    w(table(header, rows))
    w("")
    try:
        qcount = int(m.get("data", "").split(" items, ")[1].split()[0])
    except (IndexError, ValueError):
        qcount = 0
    for a in every("annb"):
        if a.get("nlat", 0) < int(m.get("nlat", "1000")) and a.get("nlat", 0) < qcount:
            w(f"- {a['index']}: the latency pass stopped after {a['nlat']:.0f} queries "
              "(BENCH_LAT_SECONDS).")
        if a.get("vec_mismatch"):
            w(f"- {a['index']}: {a['vec_mismatch']:.0f} sampled vectors in the bundle differ from "
              "the generator's.")
    w("")

    # ------------------------------------------------------- equal parameter
    swept = [lb for lb in labels if every("annb-sweep", lb) or every("faiss-sweep", lb)]
    if swept:
        w("## annb and Faiss at equal parameter (swept)\n")
        w("Both swept over the same values (`opts.nprobe` / `opts.ef_search` for annb; "
          "`nprobe` / `hnsw.efSearch` for Faiss): powers of two for IVF, the usearch / hnswlib "
          "ef list for HNSW, and the value annb stored. Each stops at the first value reaching "
          f"recall@10 >= {MATCH}. nq=1, k=10, one thread.\n")
        for lb in swept:
            an = {r["value"]: r for r in every("annb-sweep", lb)}
            fa = {r["value"]: r for r in every("faiss-sweep", lb)}
            param = next(iter(an.values() or fa.values()))["param"]
            rows = []
            for v in sorted(set(an) | set(fa)):
                x, y = an.get(v), fa.get(v)
                rows.append([f"{v:.0f}", num(x and x["recall10"], 4), num(x and x["p50_ms"]),
                             num(x and x["qps1"]), num(y and y["recall10"], 4),
                             num(y and y["p50_ms"]), num(y and y["qps1"]),
                             ratio(x and x["qps1"], y and y["qps1"])])
            w(f"**{name(lb)}**\n")
            w(table([param, "annb recall@10", "annb p50 ms", "annb QPS", "Faiss recall@10",
                     "Faiss p50 ms", "Faiss QPS", "annb / Faiss QPS"], rows))
            for sysname in ("annb", "faiss"):
                st = find(f"{sysname}-sweep-stopped", lb)
                if st:
                    w(f"\n{'annb' if sysname == 'annb' else 'Faiss'}: stopped at {param} "
                      f"{st['value']:.0f}: the same recall@10 for three values in a row, so the "
                      "knob has no effect on these searches.")
            w("")

    # --------------------------------------------------------- equal recall
    rows = []
    for lb in labels:
        b, a = find("annb-build", lb), find("annb", lb)
        for sysname, r in (("annb", find("annb-matched", lb)), ("Faiss", find("faiss-matched", lb))):
            if not r:
                continue
            f = find("faiss", lb)
            if sysname == "annb":
                build = f"{num(b and b['build_s'])} ({num(b and b['cpu_s'])})"
                size, opened = num(mb(b and b["bundle_bytes"])), num(a and a.get("open_ms"))
            else:
                build = (f"{num(f['build_s'])} ({num(f['build_cpu_s'])})" if f and "build_s" in f
                         else "annb's index")
                size, opened = num(mb(f and f["index_bytes"])), num(f and f["open_ms"])
            rows.append([f"{sysname} {name(lb)}", build, size, opened, setting(r),
                         num(r["recall10"], 4), num(r["p50_ms"]), num(r["p99_ms"]), num(r["qps1"]),
                         num(r.get("qps2"))])
    for sysname in ("usearch", "hnswlib-node"):
        s, sm = find(sysname, "hnsw"), find(f"{sysname}-matched", "hnsw")
        if s:
            rows.append([f"{sysname} HNSW (build threads {s.get('build_threads', '?')})",
                         f"{num(s['build_s'])} ({num(s.get('build_cpu_s'))})",
                         num(mb(s["index_bytes"])), num(s.get("open_ms")),
                         setting(sm) if sm else f"recall {MATCH} not reached",
                         num(sm and sm["recall10"], 4), num(sm and sm["p50_ms"]),
                         num(sm and sm["p99_ms"]), num(sm and sm["qps1"]),
                         num(sm and sm.get("qps2")) if sm and sm.get("qps2") else "-"])
    if rows:
        w(f"## Every system at recall@10 >= {MATCH}\n")
        w(f"The first swept value reaching recall@10 >= {MATCH} (HNSW: M=32, efConstruction=40 "
          "for all), its latency (nq=1, k=10, one thread) and "
          f"{thr}-thread throughput.\n")
        w(table(["system", "build s (CPU s)", "MB on disk", "open ms", "setting", "recall@10",
                 "p50 ms", "p99 ms", "1-thread QPS", f"{thr}-thread QPS"], rows))
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

    # -------------------------------------------------------------- open time
    rows = []
    for lb in labels:
        a, f = find("annb", lb), find("faiss", lb)
        if not a:
            continue
        fais = a.get("fais_bytes") or 0
        rows.append([name(lb), num(mb(a.get("file_bytes"))), num(mb(fais)) if fais else "0 (in place)",
                     num(a.get("open_ms")), num(a.get("open_ms_first")),
                     num(a["open_ms"] / mb(fais), 2) if fais else "-",
                     num(a.get("open_verify_ms")),
                     num(f and f["open_ms"]),
                     num(f["open_ms"] / mb(f["index_bytes"]), 2) if f and f.get("index_bytes") else "-"])
    if rows:
        w("## Open time\n")
        w("`annb_open` + `annb_close` of a bundle in the page cache: the median of repeated opens "
          "and the first open after the build. A flat bundle is searched in place and its vector "
          "sections are not checksummed at open (SPEC 3.11), so its open time should not grow "
          "with the size; an index Faiss deserialises (the FAIS section) is copied and checked, "
          "hence the time per MB of it. \"VERIFY_ALL\": `ANNB_OPEN_VERIFY_ALL`, every checksum "
          "(what `ann-query --verify` adds). Faiss: `read_index` of the same index file.\n")
        w(table(["index", "bundle MB", "deserialised MB", "open ms", "first open ms",
                 "ms per deserialised MB", "open ms, VERIFY_ALL", "Faiss read_index ms",
                 "Faiss ms per MB"], rows))
        w("")

    # ------------------------------------------------------ one-shot process
    shots = every("oneshot")
    if shots:
        w("## One `ann-query` process\n")
        w("Wall time of one whole `ann-query BUNDLE QUESTION -k 10` process (start, map, check, "
          "search, print), measured with bash's `$EPOCHREALTIME` around it: 2 untimed runs first "
          "(page cache warm), then the median, min and max of "
          f"{m.get('oneshot_runs', '?')} runs. `--vec`: the first query's vector on the command "
          "line; `--item`: similar items of one item; `--user-vec FILE:ID`: the vector read from "
          "a CSV (the whole file is parsed); `--user`: a user stored in the bundle; "
          "`--verify`: every section checksummed before answering; `--version`: no bundle, "
          "no search: what starting the program costs (loader, libannb with Faiss, OpenBLAS).\n")
        ex = find("example")
        rows = []
        for o in shots:
            what = (f"example ({ex['items']:,} items, d=10, l2)" if o["data"] == "example" and ex
                    else "example" if o["data"] == "example"
                    else "none: the process floor" if o["data"] == "floor"
                    else f"benchmark ({n_items:,} items)")
            q = {"vec": "--vec", "item": "--item", "vec-verify": "--vec --verify",
                 "user-vec": "--user-vec", "user": "--user",
                 "version": "--version"}.get(o["question"], o["question"])
            bundle = (name(o["index"]) if o["data"] == "bench" else "-" if o["data"] == "floor"
                      else "flat")
            rows.append([what, bundle, f"`{q}`",
                         f"{o['median_ms']:.1f}", f"{o['min_ms']:.1f}", f"{o['max_ms']:.1f}"])
        w(table(["data", "bundle", "question", "median ms", "min ms", "max ms"], rows))
        w("")

    nbs = every("notebook")
    if nbs:
        w("## The notebook flow vs one `ann-query` process\n")
        w("Notebook flow (`tests/bench/notebook_flow.py`, Debian python3-faiss + python3-pandas): "
          "read the items CSV with pandas, json-parse every vector, IndexIDMap(IndexFlatL2), "
          "look one user up in the users CSV, search, print the top 10, as one process (median "
          "of 3 runs on the example, 1 run on the benchmark set). ann-query: the same question, "
          "`--user-vec USERS.csv:ID`, on a bundle built beforehand (above).\n")
        rows = []
        for p in nbs:
            q = oneshot(p["data"], "flat", "user-vec")
            what = ("example, l2 bundle" if p["data"] == "example" else "benchmark set, flat ip bundle")
            rows.append([f"{what} ({p['items']:,} items)", f"{p['median_ms'] / 1e3:.3f}",
                         f"{q['median_ms'] / 1e3:.3f}" if q else "-",
                         ratio(p["median_ms"], q and q["median_ms"]), num(p.get("same_top10", "-"))])
        w(table(["data", "notebook s", "ann-query s", "notebook / ann-query", "same top 10"], rows))
        w("\nThe notebook pays for the CSV, JSON and index build on every start; ann-query maps a "
          "bundle built once. On the benchmark set the notebook uses L2 and the bundle inner "
          "product: both are one exact scan, the answers differ.\n")

    # ------------------------------------------------------------ Faiss OMP
    omp = every("faiss-omp1")
    if omp:
        w("## Faiss with one OpenMP thread per search call\n")
        w("The same Faiss indexes and parameters as in the annb vs Faiss table, but each search "
          "call made with `omp_set_num_threads(1)` in the calling thread: the difference is what "
          "Faiss's OpenMP parallel region costs a single query (nq=1).\n")
        rows = []
        for r in omp:
            f = find("faiss", r["index"])
            rows.append([name(r["index"]), setting(r), num(f and f["p50_ms"]), num(r["p50_ms"]),
                         num(f and f["p99_ms"]), num(r["p99_ms"]), num(f and f["qps1"]),
                         num(r["qps1"]), num(f and f.get("qps2")), num(r.get("qps2"))])
        w(table(["index", "parameter", "p50 ms", "p50 ms, 1 OMP", "p99 ms", "p99 ms, 1 OMP",
                 "1-thread QPS", "1-thread QPS, 1 OMP", f"{thr}-thread QPS",
                 f"{thr}-thread QPS, 1 OMP"], rows))
        w("")

    # ------------------------------------------------------------ references
    w("## References\n")
    if ing:
        w(f"- CSV ingest (`annb_vector_from_csv` parsing every row of the {ing['bytes'] / 1e6:,.0f} "
          f"MB items CSV, the reader `ann-build` uses): {ing['seconds']:.1f} s, "
          f"**{ing['mbs']:.1f} MB/s**.")
        b = find("annb-build", "flat")
        if b and b["build_s"]:
            w(f"  `ann-build --index flat` took {b['build_s']:.1f} s in all, so ingest is "
              f"{100 * ing['seconds'] / b['build_s']:.0f}% of a flat build.")
    if bw:
        w(f"- Memory bandwidth, one thread streaming a {bw['mb']:.0f} MiB buffer: "
          f"**{bw['gbs']:.1f} GB/s**.")
        if bound:
            w(f"- Exact search bound for one query: {n_items:,} x {dim} x 4 B / bandwidth = "
              f"**{bound:.2f} ms**.")
            for nm, r in (("annb Flat", flat_a), ("Faiss IndexFlatIP", find("faiss", "flat"))):
                if r:
                    w(f"  {nm}: p50 {r['p50_ms']:.2f} ms = {r['p50_ms'] / bound:.2f}x the bound "
                      f"({n_items * dim * 4 / r['p50_ms'] / 1e6:.1f} GB/s effective).")
    gt = find("groundtruth")
    if gt:
        w(f"- Ground truth (OpenBLAS sgemm + top-100 heap, computed once and cached): "
          f"{gt['seconds']:.0f} s.")
    w("")

    phases = every("phase")
    if phases:
        total = sum(p["seconds"] for p in phases)
        w("## Where the run's time went\n")
        w(table(["phase", "wall s", "share"],
                [[p["name"], f"{p['seconds']:.0f}", f"{100 * p['seconds'] / total:.0f}%" if total else "-"]
                 for p in phases] + [["total", f"{total:.0f}", ""]]))
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
