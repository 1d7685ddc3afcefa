#!/usr/bin/env bash
# tests/bench/graph.sh - the graph-index benchmark (issue 13), called by
# `make bench-graph`: tests/bench/run.sh with BENCH_SUITE=graph once per data
# set, then one report of them all (docs/benchmarks.md, "Graph index").
#
#   tests/bench/graph.sh [BUILD_DIR]      or  BUILD=BUILD_DIR tests/bench/graph.sh
#
# Environment (all optional; the rest as for run.sh):
#   BENCH_N, BENCH_Q     items and queries (default 200000, 2000)
#   BENCH_DATASET        data sets, in order ("als clustered")
#   BENCH_GRAPH_INDEX    ann-build --index measured (graph when ann-build
#                        accepts it, else hnsw as a stand-in)
#   BENCH_STOP_RECALL    sweeps go on to this recall@10 (0.99)
#   BENCH_FILTERS        "seen100 seen1000 genre10 genre1"
#   BENCH_LAT_SECONDS    a latency pass stops early after this long (60; the
#                        report gives the queries done, "nlat")
# Writes BUILD_DIR/bench-graph.md, the JSON lines of every run in
# BUILD_DIR/bench-graph.jsonl (each with its "dataset"), and each run's own
# report, results and log under BUILD_DIR/bench-work-graph-DATASET/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${BUILD:-build}}
BUILD=$(cd "$ROOT" && cd "$BUILD" && pwd) || { echo "bench-graph: no build directory $BUILD" >&2; exit 1; }
cd "$ROOT"
export BENCH_N=${BENCH_N:-200000} BENCH_Q=${BENCH_Q:-2000} BENCH_SUITE=graph
export BENCH_LAT_SECONDS=${BENCH_LAT_SECONDS:-60}
vars=$(for v in BENCH_N BENCH_Q BENCH_DATASET BENCH_GRAPH_INDEX BENCH_STOP_RECALL BENCH_FILTERS; do
  [ -z "${!v:-}" ] || printf ' %s=%q' "$v" "${!v}"; done)
export BENCH_COMMAND=${BENCH_COMMAND:-${vars# } tests/bench/graph.sh $BUILD}
args=()
for ds in ${BENCH_DATASET:-als clustered}; do
  work=$BUILD/bench-work-graph-$ds
  BENCH_DATASET=$ds BENCH_WORK=$work BENCH_OUT=$work/report.md tests/bench/run.sh "$BUILD" >/dev/null
  args+=("$work/results.jsonl" "$work/machine.txt")
done
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" tests/bench/report.py "${args[@]}" >"$BUILD/bench-graph.md"
"$PY" - "${args[@]}" >"$BUILD/bench-graph.jsonl" <<'PYEOF'
import json, sys
for res, mach in zip(sys.argv[1::2], sys.argv[2::2]):
    ds = next((l.split("=", 1)[1].strip() for l in open(mach) if l.startswith("dataset=")), "?")
    for line in open(res):
        if line.strip():
            print(json.dumps({"dataset": ds, **json.loads(line)}))
PYEOF
echo "bench-graph: wrote $BUILD/bench-graph.md and $BUILD/bench-graph.jsonl" >&2
cat "$BUILD/bench-graph.md"
