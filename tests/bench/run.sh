#!/usr/bin/env bash
# tests/bench/run.sh - the whole benchmark, called by `make bench`
# (docs/benchmarks.md says what it measures and how to read the results).
#
# Environment (all optional):
#   BUILD               build directory with ann-build, libannb.so (default build)
#   BENCH_N, BENCH_Q    items and queries (default 1000000, 10000); BENCH_D (64)
#   BENCH_SEED          data seed (42)
#   BENCH_DATA          cache of data sets and ground truth ($BUILD/bench-data),
#                       one subdirectory per (version, N, Q, D, seed), reused
#   BENCH_OUT           the report ($BUILD/bench-results.md)
#   BENCH_NLAT          single queries for latency and recall@10 (1000)
#   BENCH_LAT_SECONDS   stop a latency pass early after this long (120)
#   BENCH_OPENS         repeated opens for the open-time median (7)
#   BENCH_THREADS       threads for the throughput figure (2)
#   BENCH_TPUT_SECONDS  length of a throughput run (10)
#   BENCH_INDEXES       index types to build and measure ("flat ivf hnsw")
#   BENCH_SKIP          any of: faiss notebook npm (skip those baselines)
#   BENCH_FAISS_BUILD   index labels for which the Faiss baseline builds its
#                       own index ("flat ivf"); the others search the Faiss
#                       index annb built, taken out of the bundle (same graph:
#                       the difference is annb's cost; saves a 1M HNSW build)
#   BENCH_NPM_PREFIX    npm install prefix ($BUILD/bench-npm)
# OPENBLAS_CORETYPE and OMP_NUM_THREADS are left as they are and reported.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
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
TPUT_S=${BENCH_TPUT_SECONDS:-10}
SKIP=" ${BENCH_SKIP:-} "
FAISS_BUILD=" ${BENCH_FAISS_BUILD:-flat ivf} "
NPM_PREFIX=${BENCH_NPM_PREFIX:-$BUILD/bench-npm}
# Pinned so that reruns compare like with like.
NPM_PACKAGES=(usearch@2.25.3 hnswlib-node@3.0.0)
# The index types: label and Faiss factory string (annb's --index).
ALL_INDEXES=("flat:Flat" "ivf:IVF1024,Flat" "hnsw:HNSW32")
WANT_INDEXES=" ${BENCH_INDEXES:-flat ivf hnsw} "
INDEXES=()
for spec in "${ALL_INDEXES[@]}"; do
  [[ $WANT_INDEXES == *" ${spec%%:*} "* ]] && INDEXES+=("$spec")
done
HNSW_M=32 HNSW_EFC=40 # Faiss's HNSW32: M 32, efConstruction 40 (its default)

BIN=$BUILD/bench              # the benchmark's programs
WORK=$BUILD/bench-work        # bundles and indexes of this run (overwritten)
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

for tool in ann-build ann-query annb-example-gen libannb.so; do
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

# median_time RUNS CMD...: median wall seconds of RUNS runs (output discarded).
median_time() {
  local runs=$1 i tf=$WORK/time.txt
  shift
  for ((i = 0; i < runs; i++)); do
    { TIMEFORMAT='%R'; time "$@" >/dev/null 2>>"$LOG"; } 2>"$tf"
    cat "$tf"
  done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
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
if ! skipped faiss; then
  $CXX "${FLAGS[@]}" -fopenmp "${BLAS_CFLAGS[@]}" -o "$BIN/bench_faiss" tests/bench/bench_faiss.cpp \
    -lfaiss "${BLAS_LIBS[@]}" -lpthread
fi

# ---- data set and ground truth (cached) ----
DATA=$DATA_ROOT/v$("$BIN/bench_gen" --version)-n$N-q$Q-d$D-s$SEED
if [ ! -f "$DATA/params" ]; then
  say "generating $N x $D items and $Q queries into $DATA"
  rm -rf "$DATA.tmp" && mkdir -p "$DATA.tmp"
  timed "$BIN/bench_gen" "$DATA.tmp" "$N" "$Q" "$D" "$SEED"
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
  echo "data=$N x $D items, $Q queries, seed $SEED ($DATA)"
  echo "csv_bytes=$CSV_BYTES"
  echo "nlat=$NLAT"
  echo "command=${BENCH_COMMAND:-make bench}$(for v in BENCH_N BENCH_Q BENCH_D BENCH_SEED BENCH_INDEXES BENCH_SKIP BENCH_NLAT BENCH_LAT_SECONDS BENCH_OPENS BENCH_THREADS BENCH_TPUT_SECONDS BENCH_FAISS_BUILD; do [ -n "${!v:-}" ] && printf ' %s=%q' "$v" "${!v}"; done)"
  echo "start_epoch=$(date +%s)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$MACHINE"

# ---- references: memory bandwidth, CSV parse rate ----
phase "references (bandwidth, CSV ingest)"
say "memory bandwidth (one thread, 256 MiB)"
"$BIN/bench_annb" membw 256 >>"$RESULTS" 2>>"$LOG"
say "CSV ingest ($((CSV_BYTES / 1000000)) MB through annb_vector_from_csv)"
"$BIN/bench_annb" ingest "$ITEMS" "$D" >>"$RESULTS" 2>>"$LOG"

# ---- annb and Faiss, per index type ----
for spec in "${INDEXES[@]}"; do
  label=${spec%%:*} factory=${spec#*:}
  index_opt=$factory
  [ "$label" = flat ] && index_opt=flat
  bundle=$WORK/$label.annb
  phase "$factory: ann-build"
  say "$label: ann-build --index $index_opt"
  rm -f "$bundle"
  timed "$BUILD/ann-build" "$ITEMS" -o "$bundle" --index "$index_opt"
  json "{\"system\":\"annb-build\",\"index\":\"$label\",\"build_s\":$T_REAL,\"cpu_s\":$T_CPU,\"bundle_bytes\":$(stat -c %s "$bundle")}"
  say "  built in ${T_REAL} s; measuring"
  phase "$factory: annb and Faiss measured"
  "$BIN/bench_annb" search "$bundle" "$DATA" "$label" "$NLAT" "$OPENS" "$TPUT_S" "$THREADS" \
    "$LAT_S" >>"$RESULTS" 2>>"$LOG"
  if ! skipped faiss; then
    findex=$WORK/faiss-$label.index mode=() off='' size=''
    rm -f "$findex"
    if [[ $FAISS_BUILD != *" $label "* ]]; then
      # The FAIS section's bytes (SPEC: raw codec) are a Faiss index file.
      read -r off size < <("$BUILD/ann-inspect" "$bundle" | awk '$1 == "FAIS" && $3 == "raw" { print $4, $5 }') || true
      if [ -n "${size:-}" ]; then
        tail -c +$((off + 1)) "$bundle" | head -c "$size" >"$findex"
        mode=(load)
      fi
    fi
    say "$label: Faiss $factory in-process (${mode[*]:-own build})"
    "$BIN/bench_faiss" "$DATA" "$label" "$factory" "$NLAT" "$OPENS" "$TPUT_S" "$THREADS" \
      "$LAT_S" "$findex" "${mode[@]}" >>"$RESULTS" 2>>"$LOG"
  fi
done

# ---- the notebook flow vs one ann-query process ----
if ! skipped notebook; then
  phase "notebook flow vs ann-query"
  if "$PY" -c 'import faiss, pandas' 2>>"$LOG"; then
    EX=$WORK/example
    "$BUILD/annb-example-gen" "$EX" >>"$LOG" 2>&1
    # l2, as the notebook's IndexFlatL2, so the two answers can be compared.
    "$BUILD/ann-build" "$EX/items.csv" "$EX/movies.dat" --metric l2 -o "$EX/ml1m-l2.annb" >>"$LOG" 2>&1
    notebook() { "$PY" tests/bench/notebook_flow.py "$@"; }
    same=$(cmp -s <(notebook "$EX/items.csv" "$EX/users.csv" 10 2>>"$LOG" | cut -f2) \
                  <("$BUILD/ann-query" "$EX/ml1m-l2.annb" --user-vec "$EX/users.csv:10" -k 10 \
                      --format tsv | tail -n +2 | cut -f2) && echo true || echo false)
    say "notebook flow vs ann-query on the example (same top 10: $same)"
    t_nb=$(median_time 3 notebook "$EX/items.csv" "$EX/users.csv" 10)
    t_q=$(median_time 5 "$BUILD/ann-query" "$EX/ml1m-l2.annb" --user-vec "$EX/users.csv:10" -k 10)
    json "{\"system\":\"process\",\"data\":\"example\",\"notebook_s\":$t_nb,\"annquery_s\":$t_q,\"same_top10\":$same,\"items\":$(($(wc -l <"$EX/items.csv") - 1))}"
    say "notebook flow vs ann-query on $N items (once; ann-query on the flat ip bundle)"
    qid=$(sed -n 2p "$DATA/queries.csv" | cut -d, -f1)
    t_nb=$(median_time 1 notebook "$ITEMS" "$DATA/queries.csv" "$qid")
    t_q=$(median_time 3 "$BUILD/ann-query" "$WORK/flat.annb" --user-vec "$DATA/queries.csv:$qid" -k 10)
    json "{\"system\":\"process\",\"data\":\"bench\",\"notebook_s\":$t_nb,\"annquery_s\":$t_q,\"items\":$N}"
  else
    say "skipping the notebook flow: no python3-faiss / python3-pandas (make bench installs them)"
  fi
fi

# ---- HNSW from npm ----
if ! skipped npm; then
  phase "usearch and hnswlib-node"
  if command -v node >/dev/null && command -v npm >/dev/null; then
    if ! NODE_PATH=$NPM_PREFIX/node_modules node -e 'require("usearch"); require("hnswlib-node")' 2>/dev/null; then
      say "npm install --prefix $NPM_PREFIX ${NPM_PACKAGES[*]}"
      npm install --prefix "$NPM_PREFIX" --no-save --no-audit --no-fund "${NPM_PACKAGES[@]}" >>"$LOG" 2>&1
    fi
    say "usearch and hnswlib-node (HNSW M=$HNSW_M, efConstruction=$HNSW_EFC, ef swept)"
    node tests/bench/bench_npm.js "$DATA" "$NPM_PREFIX" "$WORK" "$NLAT" "$LAT_S" "$TPUT_S" \
      "$THREADS" "$HNSW_M" "$HNSW_EFC" >>"$RESULTS" 2>>"$LOG"
  else
    say "skipping usearch / hnswlib-node: node and npm not found (apt-get install nodejs npm)"
  fi
fi

phase ""
{
  echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "end_epoch=$(date +%s)"
} >>"$MACHINE"
"$PY" tests/bench/report.py "$RESULTS" "$MACHINE" >"$OUT"
say "wrote $OUT"
cat "$OUT"
