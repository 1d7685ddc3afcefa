#!/usr/bin/env bash
# tests/bench/exact_batch.sh - every user's exact top k against the CPU's
# peak multiply rate (docs/benchmarks.md, "Exact batches"), called by
# `make bench-exact`.
#
#   tests/bench/exact_batch.sh [BUILD_DIR]     or  BUILD=BUILD_DIR tests/bench/exact_batch.sh
#
# Environment (all optional):
#   BENCH_N, BENCH_USERS  items and stored users (1000000, 2000); BENCH_D (64)
#   BENCH_K               top k per user (100)
#   BENCH_ROUNDS          rounds of each library measurement (3) and of each
#                         ann-query process (3)
#   BENCH_DATA            data cache, shared with run.sh ($BUILD/bench-data)
#   BENCH_OLD_BUILD       a second build directory (say one of main) whose
#                         ann-query and libannb are measured the same way,
#                         as "old"
# Measures, on a flat (exact) bundle of the bench_gen items with the users
# stored (ann-build --users):
#   1. bench_peak: independent FMA chains in registers, 1 and 2 threads;
#   2. bench_exact_batch: annb_recommend over every user, 1024 per call (what
#      ann-query --all-users asks), threads 1 and 2, on the default path
#      (annb's tiles) and on the BLAS path (ANNB_EXACT_BATCH=blas;
#      OPENBLAS_NUM_THREADS=1 for its one-thread figure);
#   3. `ann-query BUNDLE --all-users -k K --format tsv >/dev/null` as a
#      whole process under perf stat (task-clock) when perf is there, else
#      bash's clock; its own "users/s" line is the wall rate of the questions
#      and the printing, after opening.
# Writes the numbers to BUILD_DIR/bench-exact.md (and every program's
# output to BUILD_DIR/bench-exact-work/log.txt). FLOP = 2 x users x items x d.
# Rates against CPU time ("per core") are steadier than wall rates on a
# shared machine; the report gives both and the load average.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${BUILD:-build}}
BUILD=$(cd "$ROOT" && cd "$BUILD" && pwd) || { echo "bench-exact: no build directory $BUILD" >&2; exit 1; }
cd "$ROOT"
N=${BENCH_N:-1000000}
USERS=${BENCH_USERS:-2000}
D=${BENCH_D:-64}
K=${BENCH_K:-100}
ROUNDS=${BENCH_ROUNDS:-3}
DATA_ROOT=${BENCH_DATA:-$BUILD/bench-data}
OLD=${BENCH_OLD_BUILD:-}
WORK=$BUILD/bench-exact-work
BIN=$WORK/bin
OUT=$BUILD/bench-exact.md
mkdir -p "$BIN" "$DATA_ROOT"
LOG=$WORK/log.txt
: >"$LOG"
say() { echo "bench-exact: $*" >&2; }
CC=${CC:-cc}
FLAGS=(-O2 -g -Wall -Wextra)

say "compiling the programs into $BIN"
$CC "${FLAGS[@]}" -o "$BIN/bench_gen" tests/bench/bench_gen.c -lm
$CC "${FLAGS[@]}" -pthread -o "$BIN/bench_peak" tests/bench/bench_peak.c
$CC "${FLAGS[@]}" -Ilib -o "$BIN/bench_exact_batch" tests/bench/bench_exact_batch.c -L"$BUILD" \
  -lannb -Wl,-rpath,"$BUILD"
if [ -n "$OLD" ]; then
  OLD=$(cd "$OLD" && pwd)
  $CC "${FLAGS[@]}" -Ilib -o "$BIN/bench_exact_batch_old" tests/bench/bench_exact_batch.c \
    -L"$OLD" -lannb -Wl,-rpath,"$OLD"
fi

# ---- data (bench_gen, cached as run.sh caches it) and the bundle ----
DATA=$DATA_ROOT/v$("$BIN/bench_gen" --version)-n$N-q$USERS-d$D-s42
if [ ! -f "$DATA/params" ]; then
  say "generating $N x $D items and $USERS users into $DATA"
  rm -rf "$DATA.tmp" && mkdir -p "$DATA.tmp"
  "$BIN/bench_gen" "$DATA.tmp" "$N" "$USERS" "$D" 42 >>"$LOG"
  rm -rf "$DATA" && mv "$DATA.tmp" "$DATA"
fi
BUNDLE=$WORK/flat-n$N-u$USERS-d$D.annb
if [ ! -f "$BUNDLE" ]; then
  say "building $BUNDLE"
  "$BUILD/ann-build" "$DATA/items.csv" -o "$BUNDLE" --index flat --users "$DATA/users.csv" 2>>"$LOG"
fi

PERF=
if perf stat -e task-clock true >/dev/null 2>&1; then PERF=perf; fi

# ---- measurements ----
load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD0=$(load)
say "peak FMA rate (bench_peak)"
PEAK=$("$BIN/bench_peak" | tee -a "$LOG")

# lib_run LABEL [VAR=VALUE...] -- ARGS: one table row from bench_exact_batch's
# "best" line (a label starting "old" runs the old build's library)
lib_run() {
  local label=$1 prog=$BIN/bench_exact_batch
  shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  [ "${label#old}" = "$label" ] || prog=$BIN/bench_exact_batch_old
  say "library: $label"
  echo "## $label: ${envs[*]} $prog $BUNDLE -k $K --rounds $ROUNDS $*" >>"$LOG"
  env "${envs[@]}" "$prog" "$BUNDLE" -k "$K" --rounds "$ROUNDS" "$@" | tee -a "$LOG" |
    awk -v l="$label" '/^best:/ { printf "| %s | %s | %s | %s | %s |\n", l, $2, $5, $9, $12 }'
}

# cli_run LABEL ANN-QUERY [VAR=VALUE...] -- ARGS: one table row, the best of
# ROUNDS processes: the users/s ann-query prints, and its CPU seconds
cli_run() {
  local label=$1 aq=$2 ups=0 cpu=
  shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  say "ann-query: $label"
  for _ in $(seq "$ROUNDS"); do
    local err=$WORK/aq.err c u
    echo "## $label: ${envs[*]} $aq $BUNDLE --all-users -k $K --format tsv $*" >>"$LOG"
    if [ -n "$PERF" ]; then
      env "${envs[@]}" perf stat -e task-clock -x, -o "$WORK/perf.txt" "$aq" "$BUNDLE" --all-users \
        -k "$K" --format tsv "$@" >/dev/null 2>"$err"
      c=$(awk -F, '/task-clock/ { printf "%.3f", $1 / 1000 }' "$WORK/perf.txt")
      if [ -z "$cpu" ] || awk "BEGIN { exit !($c < $cpu) }"; then cpu=$c; fi
    else
      env "${envs[@]}" "$aq" "$BUNDLE" --all-users -k "$K" --format tsv "$@" >/dev/null 2>"$err"
    fi
    cat "$err" >>"$LOG"
    u=$(sed -n 's/.*(\([0-9]*\) users\/s).*/\1/p' "$err")
    if [ "${u:-0}" -gt "$ups" ]; then ups=$u; fi
  done
  awk -v l="$label" -v u="$ups" -v c="${cpu:-?}" -v f="$FLOP" -v n="$USERS" \
    'BEGIN { printf "| %s | %s | %.1f | %s | %s |\n", l, u, f * u / n / 1e9, c, c == "?" ? "?" : sprintf("%.1f", f / c / 1e9) }'
}

FLOP=$(awk "BEGIN { print 2 * $USERS * $N * $D }")
{
  echo "## Exact batches: $N x $D items, $USERS users, top $K"
  echo
  echo "Command: \`tests/bench/exact_batch.sh $BUILD\` ($(date -u '+%Y-%m-%d %H:%M UTC'));"
  echo "FLOP per pass: 2 x $USERS x $N x $D = $FLOP."
  echo
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1) (family $(lscpu | sed -n 's/^CPU family: *//p')),"
  echo "$(nproc) CPUs online, $(grep -q avx512f /proc/cpuinfo && echo AVX-512 || echo no AVX-512), kernel $(uname -r),"
  echo "$("$BUILD/ann-query" --version | head -n 1); ANNB_KERNEL=${ANNB_KERNEL:-(not set)}; load average at start: $LOAD0."
  echo
  echo "### Peak FMA rate (bench_peak)"
  echo
  echo '```'
  echo "$PEAK"
  echo '```'
  echo
  echo "### The library call (bench_exact_batch: annb_recommend, 1024 users per call, best of $ROUNDS)"
  echo
  echo "| path, threads | GFLOP/s wall | GFLOP/s per core (CPU time) | users/s wall | users/s per core |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  lib_run "tiles, 1 thread" -- --threads 1
  lib_run "tiles, 2 threads" -- --threads 2
  lib_run "BLAS path, 1 thread" ANNB_EXACT_BATCH=blas OPENBLAS_NUM_THREADS=1 -- --threads 1
  lib_run "BLAS path, 2 threads" ANNB_EXACT_BATCH=blas OPENBLAS_NUM_THREADS=2 -- --threads 1
  if [ -n "$OLD" ]; then
    lib_run "old, 1 thread" OPENBLAS_NUM_THREADS=1 -- --threads 1
    lib_run "old, 2 threads" OPENBLAS_NUM_THREADS=2 -- --threads 1
  fi
  echo
  echo "### ann-query --all-users -k $K --format tsv, a whole process (best of $ROUNDS)"
  echo
  echo "users/s: the line ann-query prints (wall, questions and printing, after opening);"
  echo "CPU s: perf stat's task-clock of the whole process, opening and first touch of the mapping included."
  echo
  echo "| build, threads | users/s | GFLOP/s from it | CPU s | GFLOP/s per CPU s |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  cli_run "this build, --threads 1" "$BUILD/ann-query" -- --threads 1
  cli_run "this build, 2 threads (default)" "$BUILD/ann-query" --
  if [ -n "$OLD" ]; then
    cli_run "old, 1 thread (OPENBLAS_NUM_THREADS=1)" "$OLD/ann-query" OPENBLAS_NUM_THREADS=1 --
    cli_run "old, 2 threads (OpenBLAS's)" "$OLD/ann-query" --
  fi
  echo
  echo "Load average at end: $(load)."
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
say "wrote $OUT"
