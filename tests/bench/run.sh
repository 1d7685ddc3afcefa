#!/usr/bin/env bash
# tests/bench/run.sh - the whole benchmark, called by `make bench`
# (docs/benchmarks.md says what it measures and how to read the results).
#
#   tests/bench/run.sh [BUILD_DIR]       or  BUILD=BUILD_DIR tests/bench/run.sh
#
# BUILD_DIR holds ann-build, ann-query, ann-inspect, annb-example-gen and
# libannb.so (default: build). Environment (all optional):
#   BENCH_N, BENCH_Q    items and queries (default 1000000, 10000); BENCH_D (64)
#   BENCH_SEED          data seed (42)
#   BENCH_DATA          cache of data sets and ground truth ($BUILD/bench-data),
#                       one subdirectory per (version, N, Q, D, seed), reused
#   BENCH_OUT           the report ($BUILD/bench-results.md)
#   BENCH_NLAT          single queries for latency and recall@10 (1000)
#   BENCH_LAT_SECONDS   stop a latency pass early after this long (120)
#   BENCH_OPENS         repeated opens for the open-time median (7)
#   BENCH_THREADS       threads for the throughput figures (2)
#   BENCH_BUILD_THREADS ann-build --threads for the approximate indexes
#                       ($BENCH_THREADS; HNSW built with more than one thread
#                       is not byte-reproducible)
#   BENCH_TPUT_SECONDS  length of a throughput run (10)
#   BENCH_ONESHOT_RUNS  timed runs of each one-shot ann-query process (9)
#   BENCH_INDEXES       ann-build --index values to build and measure, any of
#                       flat ivf hnsw ivfpq auto ("flat ivf hnsw"), and
#                       hnsw-mips: --index HNSW32 --mips-reduction (Faiss)
#   BENCH_SKIP          any of: faiss notebook npm (skip those baselines)
#   BENCH_FAISS_BUILD   index labels for which the Faiss baseline builds its
#                       own index ("flat ivf"); the others search the Faiss
#                       index annb built, taken out of the bundle's FAIS
#                       section (same graph: the difference is annb's cost;
#                       saves a 1M HNSW build), or build their own when the
#                       bundle has no FAIS section (annb's own IVF)
#   BENCH_NPM_PREFIX    npm install prefix ($BUILD/bench-npm)
#   BENCH_DATASET       clustered (default) or als (bench_gen: item norms
#                       log-normal(0, 0.25) or (0, 0.5)); cached apart
#   BENCH_SUITE         classic (default: everything above) or graph: the
#                       graph-index benchmark (tests/bench/graph.sh runs it
#                       per data set): annb's graph bundle (built with the
#                       catalog and tuning users) swept over opts.ef_search up
#                       to BENCH_STOP_RECALL, the filtered sweeps, Debian's
#                       python3-hnswlib, usearch and hnswlib-node, all with
#                       M=16, efConstruction=200, inner product
#   BENCH_GRAPH_INDEX   ann-build --index for the graph suite (graph when
#                       ann-build accepts it, else hnsw as a stand-in)
#   BENCH_STOP_RECALL   the graph suite's sweeps go on to this recall@10 (0.99)
#   BENCH_ALL_K         the graph suite's every-user top k, the tuning users'
#                       (100; bench_exact_batch: batch path, walk, exact)
#   BENCH_FILTERS       graph suite filters (seen100 seen1000 genre10 genre1)
#   BENCH_WORK          bundles, results and log of this run
#                       ($BUILD/bench-work, graph suite $BUILD/bench-work-graph-DATASET)
# OPENBLAS_CORETYPE and OMP_NUM_THREADS are left as they are and reported.
set -euo pipefail
export LC_ALL=C # decimal points in $EPOCHREALTIME and awk

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${BUILD:-build}}
BUILD=$(cd "$ROOT" && cd "$BUILD" && pwd) || { echo "bench: no build directory $BUILD" >&2; exit 1; }
cd "$ROOT"
N=${BENCH_N:-1000000}
Q=${BENCH_Q:-10000}
D=${BENCH_D:-64}
SEED=${BENCH_SEED:-42}
DATA_ROOT=${BENCH_DATA:-$BUILD/bench-data}
OUT=${BENCH_OUT:-$BUILD/bench-results.md}
NLAT=${BENCH_NLAT:-1000}
LAT_S=${BENCH_LAT_SECONDS:-120}
OPENS=${BENCH_OPENS:-7}
THREADS=${BENCH_THREADS:-2}
ALL_K=${BENCH_ALL_K:-100}      # graph suite: k of every user's top k (--all-users)
BUILD_THREADS=${BENCH_BUILD_THREADS:-$THREADS}
TPUT_S=${BENCH_TPUT_SECONDS:-10}
ONESHOT_RUNS=${BENCH_ONESHOT_RUNS:-9}
SKIP=" ${BENCH_SKIP:-} "
FAISS_BUILD=" ${BENCH_FAISS_BUILD:-flat ivf} "
NPM_PREFIX=${BENCH_NPM_PREFIX:-$BUILD/bench-npm}
DATASET=${BENCH_DATASET:-clustered}
SUITE=${BENCH_SUITE:-classic}
STOP_RECALL=${BENCH_STOP_RECALL:-0.99}
FILTERS=${BENCH_FILTERS-seen100 seen1000 genre10 genre1}
case $DATASET in clustered | als) ;; *) echo "bench: BENCH_DATASET: unknown data set '$DATASET' (clustered als)" >&2; exit 2 ;; esac
case $SUITE in classic | graph) ;; *) echo "bench: BENCH_SUITE: unknown suite '$SUITE' (classic graph)" >&2; exit 2 ;; esac
for f in $FILTERS; do
  case $f in seen100 | seen1000 | genre10 | genre1) ;; *) echo "bench: BENCH_FILTERS: unknown filter '$f'" >&2; exit 2 ;; esac
done
# Pinned so that reruns compare like with like.
NPM_PACKAGES=(usearch@2.25.3 hnswlib-node@3.0.0)
# The index types, by their ann-build --index name; the report shows what
# each resolved to (ann-inspect), e.g. ivf -> IVF4096,Flat at 1M.
INDEXES=()
for label in ${BENCH_INDEXES:-flat ivf hnsw}; do
  case $label in
    flat | ivf | hnsw | ivfpq | auto | hnsw-mips) INDEXES+=("$label") ;;
    *) echo "bench: BENCH_INDEXES: unknown index '$label' (flat ivf hnsw ivfpq auto hnsw-mips)" >&2; exit 2 ;;
  esac
done
HNSW_M=32 HNSW_EFC=40 # annb's hnsw = Faiss's HNSW32: M 32, efConstruction 40 (its default)
# The graph suite's peers: hnswlib's usual M (layer-0 degree 32) and its
# default efConstruction.
GRAPH_M=16 GRAPH_EFC=200
# Knob values swept for annb and Faiss alike (IVF: powers of two up to
# nlist, at most 1024; both also get the value annb stored).
EF_SWEEP=(16 24 32 48 64 96 128 192 256 384 512 768 1024) # as bench_npm.js

BIN=$BUILD/bench              # the benchmark's programs
WORK=$BUILD/bench-work        # bundles and indexes of this run (overwritten)
[ "$SUITE" = graph ] && WORK=$BUILD/bench-work-graph-$DATASET
WORK=${BENCH_WORK:-$WORK}
RESULTS=$WORK/results.jsonl   # one JSON object per measurement
LOG=$WORK/log.txt             # every program's stderr
mkdir -p "$BIN" "$WORK" "$DATA_ROOT"
: >"$RESULTS"
: >"$LOG"
PY=/usr/bin/python3 # Debian's, which python3-faiss and python3-pandas belong to
[ -x "$PY" ] || PY=python3

say() { printf 'bench: %s\n' "$*" >&2; }
trap 'say "failed; the end of $LOG:"; tail -n 30 "$LOG" >&2' ERR
skipped() { [[ $SKIP == *" $1 "* ]]; }
json() { printf '%s\n' "$1" >>"$RESULTS"; }

for tool in ann-build ann-query ann-inspect annb-example-gen libannb.so; do
  [ -e "$BUILD/$tool" ] || { say "$BUILD/$tool missing: run make build (or make bench)"; exit 1; }
done

# phase NAME: ends the current phase (its wall time goes to the results) and
# starts NAME; `phase ""` only ends.
PHASE='' PHASE_T0=0
phase() {
  local now
  now=$(date +%s.%N)
  [ -n "$PHASE" ] && json "{\"system\":\"phase\",\"name\":\"$PHASE\",\"seconds\":$(awk -v a="$PHASE_T0" -v b="$now" 'BEGIN { printf "%.1f", b - a }')}"
  PHASE=$1 PHASE_T0=$now
}

# timed CMD...: runs CMD (output to the log), sets T_REAL and T_CPU (user+sys).
timed() {
  local tf=$WORK/time.txt u s
  { TIMEFORMAT='%R %U %S'; time "$@" >>"$LOG" 2>&1; } 2>"$tf"
  read -r T_REAL u s <"$tf"
  T_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
}

# wall_ms RUNS CMD...: runs CMD twice untimed (page cache warm), then RUNS
# times timed with bash's $EPOCHREALTIME (no process started around it);
# prints "MEDIAN MIN MAX" in ms. Output discarded, stderr to the log; fails
# when CMD does.
wall_ms() {
  local runs=$1 i t0 t1
  shift
  "$@" >/dev/null 2>>"$LOG" && "$@" >/dev/null 2>>"$LOG" || return 1
  for ((i = 0; i < runs; i++)); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>>"$LOG" || return 1
    t1=$EPOCHREALTIME
    echo "$t0 $t1"
  done | awk '{ printf "%.3f\n", ($2 - $1) * 1e3 }' | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f\n", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

# oneshot DATA LABEL QUESTION CMD...: wall_ms of one ann-query process, as a
# "oneshot" result line.
oneshot() {
  local data=$1 label=$2 question=$3 med mn mx
  shift 3
  read -r med mn mx < <(wall_ms "$ONESHOT_RUNS" "$@") || { say "failed: $*"; return 1; }
  json "{\"system\":\"oneshot\",\"data\":\"$data\",\"index\":\"$label\",\"question\":\"$question\",\"median_ms\":$med,\"min_ms\":$mn,\"max_ms\":$mx,\"runs\":$ONESHOT_RUNS}"
  say "  $label $question: ${med} ms (median of $ONESHOT_RUNS)"
}

# inspect LABEL BUNDLE BUILD_S CPU_S THREADS: the bundle as ann-inspect --json
# describes it, with the build's times, as an "annb-build" result line; on
# stdout "INDEX PARAM VALUE FAIS_OFFSET FAIS_SIZE" (PARAM "-" for an exact
# index, FAIS "0 0" when the bundle has no FAIS section).
inspect() {
  "$BUILD/ann-inspect" "$2" --json | "$PY" -c '
import json, sys
label, build_s, cpu_s, threads, size, results = sys.argv[1:]
j = json.load(sys.stdin)
sec = {s["kind"].strip(): s for s in j["sections"]}
rec = j.get("recall") or {}
param, value = "-", 0
if rec.get("nprobe"):
    param, value = "nprobe", rec["nprobe"]
elif rec.get("ef_search"):
    param, value = "efSearch", rec["ef_search"]
fais = sec.get("FAIS")
line = {"system": "annb-build", "index": label, "resolved": j["metadata"]["index"],
        "build_s": float(build_s), "cpu_s": float(cpu_s), "build_threads": threads,
        "bundle_bytes": int(size), "recall": rec,
        "sections": {k: s["stored_size"] for k, s in sec.items()}}
with open(results, "a", encoding="utf-8") as f:
    f.write(json.dumps(line) + "\n")
print(j["metadata"]["index"], param, value, fais["offset"] if fais else 0, fais["stored_size"] if fais else 0)
' "$1" "$3" "$4" "$5" "$(stat -c %s "$2")" "$RESULTS"
}

# sweep_values PARAM STORED INDEX: the knob values both systems are swept over.
sweep_values() {
  local v=1 nlist
  {
    if [ "$1" = nprobe ]; then
      nlist=$(sed -n 's/^IVF\([0-9]*\).*/\1/p' <<<"$3")
      nlist=${nlist:-1024}
      while ((v <= nlist && v <= 1024)); do echo $v; v=$((v * 2)); done
    else
      printf '%s\n' "${EF_SWEEP[@]}"
    fi
    echo "$2"
  } | sort -nu | paste -sd, -
}

# ---- the benchmark's programs ----
CC=${CC:-cc}
CXX=${CXX:-c++}
FLAGS=(-O2 -g -Wall -Wextra)
read -ra BLAS_CFLAGS <<<"$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)"
read -ra BLAS_LIBS <<<"$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)"
say "compiling the benchmark programs into $BIN"
$CC "${FLAGS[@]}" -o "$BIN/bench_gen" tests/bench/bench_gen.c -lm
$CC "${FLAGS[@]}" -fopenmp "${BLAS_CFLAGS[@]}" -o "$BIN/bench_gt" tests/bench/bench_gt.c "${BLAS_LIBS[@]}" -lm
$CC "${FLAGS[@]}" -Ilib -o "$BIN/bench_annb" tests/bench/bench_annb.c -L"$BUILD" -lannb \
  -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lpthread -lm
if [ "$SUITE" = graph ]; then
  $CC "${FLAGS[@]}" -pthread -o "$BIN/bench_peak" tests/bench/bench_peak.c
  $CC "${FLAGS[@]}" -Ilib -o "$BIN/bench_exact_batch" tests/bench/bench_exact_batch.c -L"$BUILD" \
    -lannb -Wl,-rpath,"$(cd "$BUILD" && pwd)"
fi
if ! skipped faiss && [ "$SUITE" = classic ]; then
  $CXX "${FLAGS[@]}" -fopenmp "${BLAS_CFLAGS[@]}" -o "$BIN/bench_faiss" tests/bench/bench_faiss.cpp \
    -lfaiss "${BLAS_LIBS[@]}" -lpthread
fi

# ---- data set and ground truth (cached) ----
DATA=$DATA_ROOT/v$("$BIN/bench_gen" --version)$([ "$DATASET" = clustered ] || echo "-$DATASET")-n$N-q$Q-d$D-s$SEED
if [ ! -f "$DATA/params" ]; then
  say "generating $N x $D items and $Q queries ($DATASET) into $DATA"
  rm -rf "$DATA.tmp" && mkdir -p "$DATA.tmp"
  timed "$BIN/bench_gen" "$DATA.tmp" "$N" "$Q" "$D" "$SEED" "$DATASET"
  rm -rf "$DATA" && mv "$DATA.tmp" "$DATA"
  say "  ${T_REAL} s"
else
  say "reusing the data set in $DATA"
fi
if ! grep -q '^gtk=' "$DATA/params"; then
  say "exact ground truth (OpenBLAS sgemm, top-100 per query)"
  timed "$BIN/bench_gt" "$DATA"
  json "{\"system\":\"groundtruth\",\"seconds\":$T_REAL,\"cpu_s\":$T_CPU}"
  say "  ${T_REAL} s"
fi
if [ "$SUITE" = graph ] && ! grep -q '^fgtk=' "$DATA/params"; then
  say "filtered exact ground truth (seen items excluded, a 10% and a 1% genre)"
  timed "$BIN/bench_gt" --filters "$DATA"
  json "{\"system\":\"groundtruth-filters\",\"seconds\":$T_REAL,\"cpu_s\":$T_CPU}"
  say "  ${T_REAL} s"
fi
ITEMS=$DATA/items.csv
CSV_BYTES=$(stat -c %s "$ITEMS")

# ---- machine ----
MACHINE=$WORK/machine.txt
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
  echo "cpus=$(nproc) online ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
  echo "caches=L2 $(lscpu | sed -n 's/^L2 cache: *//p'), L3 $(lscpu | sed -n 's/^L3 cache: *//p')"
  echo "memory=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor: *//p')"
  # shellcheck source=/dev/null
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "compiler=$($CC --version | head -n 1)"
  echo "openblas=$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo '?'): $("$BIN/bench_gt" --config)"
  echo "faiss=$(dpkg-query -W -f='${Version}' libfaiss-dev 2>/dev/null || echo '?') (static libfaiss.a, generic build)"
  echo "annb=$("$BUILD/ann-build" --version 2>&1 | head -n 1), tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- lib format tools 2>/dev/null || echo ' + uncommitted changes in lib/format/tools')"
  echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(not set)}"
  echo "OMP_NUM_THREADS=${OMP_NUM_THREADS-(not set)}"
  echo "data=$N x $D items, $Q queries, seed $SEED, data set $DATASET ($DATA)"
  echo "dataset=$DATASET"
  echo "suite=$SUITE"
  echo "stop_recall=$STOP_RECALL"
  echo "csv_bytes=$CSV_BYTES"
  echo "n=$N"
  echo "d=$D"
  echo "nlat=$NLAT"
  echo "threads=$THREADS"
  echo "build_threads=$BUILD_THREADS"
  echo "oneshot_runs=$ONESHOT_RUNS"
  vars=$(for v in BENCH_N BENCH_Q BENCH_D BENCH_SEED BENCH_DATASET BENCH_SUITE BENCH_GRAPH_INDEX BENCH_STOP_RECALL BENCH_FILTERS BENCH_INDEXES BENCH_SKIP BENCH_NLAT BENCH_LAT_SECONDS BENCH_OPENS BENCH_THREADS BENCH_BUILD_THREADS BENCH_TPUT_SECONDS BENCH_ONESHOT_RUNS BENCH_FAISS_BUILD; do [ -z "${!v:-}" ] || printf ' %s=%q' "$v" "${!v}"; done)
  if [ -n "${BENCH_COMMAND:-}" ]; then echo "command=$BENCH_COMMAND"
  elif [ -n "${MAKELEVEL:-}" ]; then echo "command=make bench$vars"
  else echo "command=${vars# }${vars:+ }tests/bench/run.sh $BUILD"; fi
  echo "start_epoch=$(date +%s)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$MACHINE"

finish() {
  phase ""
  {
    echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "end_epoch=$(date +%s)"
  } >>"$MACHINE"
  "$PY" tests/bench/report.py "$RESULTS" "$MACHINE" >"$OUT"
  say "wrote $OUT"
  cat "$OUT"
}

# npm_install: usearch and hnswlib-node into $NPM_PREFIX unless there; fails
# (status 1) without node and npm.
npm_install() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "skipping usearch / hnswlib-node: node and npm not found (apt-get install nodejs npm)"
    return 1
  fi
  if ! NODE_PATH=$NPM_PREFIX/node_modules node -e 'require("usearch"); require("hnswlib-node")' 2>/dev/null; then
    say "npm install --prefix $NPM_PREFIX ${NPM_PACKAGES[*]}"
    npm install --prefix "$NPM_PREFIX" --no-save --no-audit --no-fund "${NPM_PACKAGES[@]}" >>"$LOG" 2>&1
  fi
}

# ---- the graph suite: annb's graph index against hnswlib and usearch ----
if [ "$SUITE" = graph ]; then
  GI=${BENCH_GRAPH_INDEX:-}
  if [ -z "$GI" ]; then
    # Does this ann-build know --index graph? (a 200-item build answers it)
    probe=$WORK/probe
    rm -rf "$probe" && mkdir -p "$probe"
    head -n 201 "$ITEMS" >"$probe/items.csv"
    if "$BUILD/ann-build" "$probe/items.csv" -o "$probe/p.annb" --index graph >>"$LOG" 2>&1; then
      GI=graph
    else
      GI=hnsw
      say "ann-build does not accept --index graph: measuring --index hnsw in its place"
    fi
    rm -rf "$probe"
  fi
  echo "graph_index=$GI" >>"$MACHINE"
  bundle=$WORK/graph.annb
  phase "annb --index $GI: ann-build"
  say "annb: ann-build ITEMS.csv movies.dat --users users.csv --index $GI --threads $BUILD_THREADS"
  rm -f "$bundle"
  timed "$BUILD/ann-build" "$ITEMS" "$DATA/movies.dat" --users "$DATA/users.csv" -o "$bundle" \
    --index "$GI" --threads "$BUILD_THREADS"
  read -r resolved param stored _ < <(inspect graph "$bundle" "$T_REAL" "$T_CPU" "$BUILD_THREADS")
  say "  $resolved built in ${T_REAL} s$([ "$param" != - ] && echo ", $param $stored stored")"
  phase "annb --index $GI: measured"
  "$BIN/bench_annb" search "$bundle" "$DATA" graph "$NLAT" "$OPENS" "$TPUT_S" "$THREADS" \
    "$LAT_S" >>"$RESULTS" 2>>"$LOG"
  if [ "$param" = - ]; then
    say "  the bundle stores no search parameter ($resolved): no sweep"
  else
    values=$(sweep_values "$param" "$stored" "$resolved")
    say "  annb swept over $param $values up to recall@10 $STOP_RECALL"
    "$BIN/bench_annb" sweep "$bundle" "$DATA" graph "$NLAT" "$TPUT_S" "$THREADS" "$LAT_S" \
      "$param" "$values" "$STOP_RECALL" >>"$RESULTS" 2>>"$LOG"
    for f in $FILTERS; do
      say "  annb filtered: $f"
      "$BIN/bench_annb" sweep "$bundle" "$DATA" graph "$NLAT" "$TPUT_S" 0 "$LAT_S" \
        "$param" "$values" "$STOP_RECALL" "$f" >>"$RESULTS" 2>>"$LOG"
    done
  fi
  # Every stored (tuning) user's top 100 in batches, as ann-query
  # --all-users asks: the library's choice at the stored efSearch (search.c
  # graph_batch_exact), the walk forced, and exact search; with the CPU's
  # peak FMA rate to read the exact path's GFLOP/s against.
  phase "annb: every user's top $ALL_K"
  say "  every stored user's top $ALL_K on $THREADS threads: the batch path, the walk, exact"
  for mode in default walk exact; do
    envs=() how=(--index)
    [ "$mode" = walk ] && envs=(ANNB_GRAPH_BATCH=walk)
    [ "$mode" = exact ] && how=()
    env "${envs[@]}" "$BIN/bench_exact_batch" "$bundle" -k "$ALL_K" --threads "$THREADS" \
      "${how[@]}" --json 2>>"$LOG" | sed "s/^{/{\"mode\":\"$mode\",/" >>"$RESULTS"
  done
  "$BIN/bench_peak" 1 2 2>>"$LOG" | tee -a "$LOG" | awk '
    /threads 1:/ && !done { printf "{\"system\":\"peak\",\"isa\":\"%s\",\"gflops_per_core\":%s}\n", $1, $4; done = 1 }' \
    >>"$RESULTS"
  phase "python3-hnswlib"
  if "$PY" -c 'import hnswlib, numpy' 2>>"$LOG"; then
    say "python3-hnswlib (M=$GRAPH_M, efConstruction=$GRAPH_EFC, $BUILD_THREADS build threads, ef swept)"
    "$PY" tests/bench/bench_hnswlib.py "$DATA" "$WORK" "$NLAT" "$LAT_S" "$TPUT_S" "$BUILD_THREADS" \
      "$GRAPH_M" "$GRAPH_EFC" "$(IFS=,; echo "${EF_SWEEP[*]}")" "$STOP_RECALL" >>"$RESULTS" 2>>"$LOG"
  else
    rm -f "$WORK/hnswlib.index"
    say "skipping python3-hnswlib: not installed (make bench-graph installs it)"
  fi
  if ! skipped npm && npm_install; then
    phase "usearch and hnswlib-node"
    say "usearch and hnswlib-node (M=$GRAPH_M, efConstruction=$GRAPH_EFC, filters: ${FILTERS:-none})"
    node tests/bench/bench_npm.js "$DATA" "$NPM_PREFIX" "$WORK" "$NLAT" "$LAT_S" "$TPUT_S" \
      "$BUILD_THREADS" "$GRAPH_M" "$GRAPH_EFC" "$STOP_RECALL" "$(echo $FILTERS | tr ' ' ,)" \
      "$WORK/hnswlib.index" >>"$RESULTS" 2>>"$LOG"
  fi
  finish
  exit 0
fi

# ---- references: memory bandwidth, CSV parse rate ----
phase "references (bandwidth, CSV ingest)"
say "memory bandwidth (one thread, 256 MiB)"
"$BIN/bench_annb" membw 256 >>"$RESULTS" 2>>"$LOG"
say "CSV ingest ($((CSV_BYTES / 1000000)) MB through annb_vector_from_csv)"
"$BIN/bench_annb" ingest "$ITEMS" "$D" >>"$RESULTS" 2>>"$LOG"

# What auto and the named indexes resolve to at this size (no build needed).
"$BIN/bench_annb" choose "$N" "$D" auto ivf hnsw ivfpq >>"$RESULTS" 2>>"$LOG"

# ---- annb and Faiss, per index type ----
for label in "${INDEXES[@]}"; do
  bundle=$WORK/$label.annb
  build_opts=(--index "$label") threads=default
  [ "$label" = hnsw-mips ] && build_opts=(--index HNSW32 --mips-reduction)
  if [ "$label" != flat ]; then
    build_opts+=(--threads "$BUILD_THREADS")
    threads=$BUILD_THREADS
  fi
  phase "$label: ann-build"
  say "$label: ann-build ${build_opts[*]}"
  rm -f "$bundle"
  timed "$BUILD/ann-build" "$ITEMS" -o "$bundle" "${build_opts[@]}"
  read -r resolved param stored fais_off fais_size < <(inspect "$label" "$bundle" "$T_REAL" "$T_CPU" "$threads")
  say "  $resolved built in ${T_REAL} s$([ "$param" != - ] && echo ", $param $stored stored")"
  phase "$label ($resolved): annb and Faiss measured"
  "$BIN/bench_annb" search "$bundle" "$DATA" "$label" "$NLAT" "$OPENS" "$TPUT_S" "$THREADS" \
    "$LAT_S" >>"$RESULTS" 2>>"$LOG"
  sweep=()
  if [ "$param" != - ]; then
    values=$(sweep_values "$param" "$stored" "$resolved")
    say "  annb swept over $param $values"
    "$BIN/bench_annb" sweep "$bundle" "$DATA" "$label" "$NLAT" "$TPUT_S" "$THREADS" "$LAT_S" \
      "$param" "$values" >>"$RESULTS" 2>>"$LOG"
    sweep=("param=$stored" "sweep=$values")
  fi
  if ! skipped faiss && [[ $resolved == Graph* ]]; then
    # annb's own graph (--index hnsw and graph resolve to it) has no Faiss
    # form; its peers are hnswlib and usearch (make bench-graph).
    say "$label: no Faiss counterpart for annb's $resolved (see make bench-graph)"
  elif ! skipped faiss; then
    findex=$WORK/faiss-$label.index mode=()
    rm -f "$findex"
    if [[ $FAISS_BUILD != *" $label "* ]] && [ "$fais_size" -gt 0 ]; then
      # The FAIS section's bytes (SPEC 6.4: raw codec) are a Faiss index file.
      dd if="$bundle" of="$findex" bs=4M iflag=skip_bytes,count_bytes skip="$fais_off" \
        count="$fais_size" status=none
      mode=(load)
    fi
    say "$label: Faiss $resolved in-process (${mode[*]:-own build})"
    "$BIN/bench_faiss" "$DATA" "$label" "$resolved" "$NLAT" "$OPENS" "$TPUT_S" "$THREADS" \
      "$LAT_S" "$findex" "${mode[@]}" "${sweep[@]}" >>"$RESULTS" 2>>"$LOG"
  fi
done

# ---- one ann-query process: start, open, search, print ----
phase "one-shot ann-query"
say "one-shot ann-query processes (wall, median of $ONESHOT_RUNS after 2 warm-up runs)"
qline=$(sed -n 2p "$DATA/queries.csv")
qid=${qline%%,*} qvec=${qline#*,}
qvec=${qvec#\"} qvec=${qvec%\"}
iid=$(sed -n 2p "$ITEMS" | cut -d, -f1)
# The floor: starting the program (loader, libannb with Faiss, OpenBLAS).
oneshot floor - version "$BUILD/ann-query" --version
for label in "${INDEXES[@]}"; do
  B=$WORK/$label.annb
  oneshot bench "$label" vec "$BUILD/ann-query" "$B" --vec "$qvec" -k 10
  oneshot bench "$label" item "$BUILD/ann-query" "$B" --item "$iid" -k 10
  oneshot bench "$label" vec-verify "$BUILD/ann-query" "$B" --vec "$qvec" -k 10 --verify
  if [ "$label" = flat ]; then
    oneshot bench "$label" user-vec "$BUILD/ann-query" "$B" --user-vec "$DATA/queries.csv:$qid" -k 10
  fi
done
# The seed-shaped example (MovieLens-1M shaped, 3,706 items): l2 as the
# notebook's IndexFlatL2 so that the answers can be compared, once without
# and once with the users stored.
EX=$WORK/example
{
  "$BUILD/annb-example-gen" "$EX"
  "$BUILD/ann-build" "$EX/items.csv" "$EX/movies.dat" --metric l2 -o "$EX/ml1m-l2.annb"
  "$BUILD/ann-build" "$EX/items.csv" "$EX/movies.dat" --metric l2 --users "$EX/users.csv" \
    -o "$EX/ml1m-l2-users.annb"
} >>"$LOG" 2>&1
EXN=$(($(wc -l <"$EX/items.csv") - 1))
json "{\"system\":\"example\",\"items\":$EXN,\"users\":$(($(wc -l <"$EX/users.csv") - 1)),\"users_csv_bytes\":$(stat -c %s "$EX/users.csv")}"
oneshot example flat user-vec "$BUILD/ann-query" "$EX/ml1m-l2.annb" --user-vec "$EX/users.csv:10" -k 10
oneshot example flat user "$BUILD/ann-query" "$EX/ml1m-l2-users.annb" --user 10 -k 10
oneshot example flat item "$BUILD/ann-query" "$EX/ml1m-l2.annb" --item 2571 -k 10

# ---- the notebook flow ----
if ! skipped notebook; then
  phase "notebook flow"
  if "$PY" -c 'import faiss, pandas' 2>>"$LOG"; then
    notebook() { "$PY" tests/bench/notebook_flow.py "$@"; }
    same=$(cmp -s <(notebook "$EX/items.csv" "$EX/users.csv" 10 2>>"$LOG" | cut -f2) \
                  <("$BUILD/ann-query" "$EX/ml1m-l2.annb" --user-vec "$EX/users.csv:10" -k 10 \
                      --format tsv | tail -n +2 | cut -f2) && echo true || echo false)
    say "notebook flow on the example (same top 10 as ann-query: $same)"
    read -r t_nb _ < <(wall_ms 3 notebook "$EX/items.csv" "$EX/users.csv" 10)
    json "{\"system\":\"notebook\",\"data\":\"example\",\"median_ms\":$t_nb,\"runs\":3,\"same_top10\":$same,\"items\":$EXN}"
    if [[ " ${INDEXES[*]} " == *" flat "* ]]; then
      say "notebook flow on $N items (once)"
      t0=$EPOCHREALTIME
      notebook "$ITEMS" "$DATA/queries.csv" "$qid" >/dev/null 2>>"$LOG"
      t_nb=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1e3 }')
      json "{\"system\":\"notebook\",\"data\":\"bench\",\"median_ms\":$t_nb,\"runs\":1,\"items\":$N}"
    fi
  else
    say "skipping the notebook flow: no python3-faiss / python3-pandas (make bench installs them)"
  fi
fi

# ---- HNSW from npm ----
if ! skipped npm; then
  phase "usearch and hnswlib-node"
  if npm_install; then
    say "usearch and hnswlib-node (HNSW M=$HNSW_M, efConstruction=$HNSW_EFC, ef swept)"
    node tests/bench/bench_npm.js "$DATA" "$NPM_PREFIX" "$WORK" "$NLAT" "$LAT_S" "$TPUT_S" \
      "$THREADS" "$HNSW_M" "$HNSW_EFC" >>"$RESULTS" 2>>"$LOG"
  fi
fi

finish
