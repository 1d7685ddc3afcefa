#!/usr/bin/env bash
# tests/bench/serve.sh - ann-serve under wrk, beside --serve-stdin and Redis,
# in one run (docs/benchmarks.md, "ann-serve"). Not part of `make test`.
#
#   tests/bench/serve.sh [BUILD_DIR]
#
# The question: a stored user's top 10 with the seen items excluded, on the
# MovieLens-shaped example (annb-example-gen: 3,706 items and 6,040 users of
# dimension 10, flat ip bundle with users and interactions), users drawn from
# a fixed generator. Measured:
#   ann-serve, --dispatch inline and queue: wrk at 1, 16 and 64 connections
#     (requests/s, p50, p99, errors), wrk on this machine;
#   ann-query --serve-stdin: the same questions one at a time over a pipe
#     (examples/serve_latency.py: closed-loop p50/p99, and pipelined rate);
#   redis-server: redis-benchmark GETs of the same answers precomputed
#     (the JSON ann-serve returns, one string per user) at 1, 16, 64 clients.
#   10 swaps under wrk load at 16 connections: errors seen by wrk.
#   1M x 64 (IVF, users, interactions): ann-serve at 1, 16, 64 connections.
# Environment: BENCH_SERVE_BIG (1; 0: skip the 1M set), BENCH_SERVE_SECONDS (10) per wrk run, BENCH_SERVE_THREADS
# (ann-serve --threads; default the cores), BENCH_SERVE_OUT ($BUILD/bench-serve.md).
set -eu
BUILD=${1:-${BUILD:-build}}
SECS=${BENCH_SERVE_SECONDS:-10}
OUT=${BENCH_SERVE_OUT:-$BUILD/bench-serve.md}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/annb-bench-serve.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
for tool in wrk redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "serve.sh: $tool is missing (make deps)" >&2; exit 2; }
done

"$BUILD/annb-example-gen" "$W/ex" >/dev/null
"$BUILD/ann-build" "$W/ex/items.csv" "$W/ex/movies.dat" --users "$W/ex/users.csv" \
    --interactions "$W/ex/ratings.dat" -o "$W/rec.annb" -q

# The users asked, in order: the generator of docs/protocol.md's benchmark
# (users 1..N: users_lua N FILE).
users_lua() {
    cat >"$2" <<LUA
local s = 5
request = function()
  s = (s * 69069 + 1) % 4294967296
  return wrk.format("GET", "/v1/users/" .. (1 + math.floor(s / 65536) % $1) ..
                    "/items?k=10&exclude_seen=1")
end
LUA
}
users_lua 6040 "$W/users.lua"

# CPU seconds (user + system) a process has used: the server's cost per
# request, which other load on the machine does not change as it does wall
# time. And its resident memory.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
rss_of() { awk '/^VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$1/status"; }
# wrk's output -> requests/s, p50, p99, errors, server CPU per request
wrk_row() { # wrk_row WHAT CONNECTIONS FILE CPU-SECONDS
    awk -v what="$1" -v c="$2" -v cpu="$4" '
        /requests in/ { n = $1 }
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /Non-2xx/ { err += $NF } /Socket errors/ { for (i = 3; i <= NF; i += 2) err += $(i + 1) }
        END { printf "| %s | %s | %.0f | %s | %s | %d | %.1f |\n", what, c, rps, p50, p99, err,
              n ? cpu * 1e6 / n : 0 }' "$3" >>"$OUT"
}

{
    echo "# ann-serve benchmark"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -1)), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "annb $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?'); wrk, redis-benchmark and the server on the same machine; ${SECS} s per run."
    echo
    echo "| what | connections | requests/s | p50 | p99 | errors | server CPU µs/request |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
} >"$OUT"

# serve BUNDLE [OPTION...]: ann-serve in the background; sets pid and port.
serve() {
    "$BUILD/ann-serve" "$@" --listen 127.0.0.1:0 -q \
        ${BENCH_SERVE_THREADS:+--threads "$BENCH_SERVE_THREADS"} >"$W/serve.out" 2>"$W/serve.err" &
    PIDS+=($!)
    pid=${PIDS[-1]}
    for _ in $(seq 100); do grep -q '^listening on' "$W/serve.out" && break; sleep 0.05; done
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$W/serve.out")
}
# wrk_runs WHAT LUA: a warm-up, then 1, 16 and 64 connections against $port.
wrk_runs() {
    wrk -t1 -c1 -d1s -s "$2" "http://127.0.0.1:$port/" >/dev/null
    rss_warm=$(rss_of "$pid")
    for c in 1 16 64; do
        local before
        before=$(cpu_of "$pid")
        wrk -t$((c > 1 ? 2 : 1)) -c"$c" -d"${SECS}s" --latency -s "$2" \
            "http://127.0.0.1:$port/" >"$W/wrk.txt"
        wrk_row "$1" "$c" "$W/wrk.txt" \
            "$(awk -v a="$before" -v b="$(cpu_of "$pid")" 'BEGIN { print b - a }')"
    done
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }

for mode in inline queue; do
    serve "$W/rec.annb" --dispatch "$mode"
    wrk_runs "ann-serve --dispatch $mode" "$W/users.lua"
    echo "ann-serve --dispatch $mode: resident memory $rss_warm after the warm-up, $(rss_of "$pid") after the three runs" >>"$W/rss.txt"
    stop
done

# The issue's second data set: 1,000,000 items x 64 (2,000 users and their
# ratings), an IVF bundle tuned to recall@10 0.95 on the users; the same
# question, inline dispatch. BENCH_SERVE_BIG=0 leaves it out.
if [ "${BENCH_SERVE_BIG:-1}" = 1 ]; then
    "$BUILD/annb-example-gen" "$W/big" --items 1000000 --dim 64 --users 2000 >/dev/null
    start=$(date +%s)
    "$BUILD/ann-build" "$W/big/items.csv" "$W/big/movies.dat" --users "$W/big/users.csv" \
        --interactions "$W/big/ratings.dat" --index ivf -o "$W/big.annb" -q
    built=$(($(date +%s) - start))
    rm -rf "$W/big"
    users_lua 2000 "$W/big.lua"
    serve "$W/big.annb"
    curl -s "http://127.0.0.1:$port/metrics" >"$W/big-metrics.txt"
    index=$(sed -n 's/^annb_serve_bundle_info{.*index="\([^"]*\)".*/\1/p' "$W/big-metrics.txt")
    recall=$(awk '/^annb_serve_bundle_stored_recall/ && /k="10"/ { print $NF }' "$W/big-metrics.txt")
    wrk_runs "ann-serve, 1M x 64, $index (stored recall@10 $recall)" "$W/big.lua"
    echo "1M x 64: ann-build --index ivf with users and interactions took ${built} s; ann-serve's resident memory after its runs $(rss_of "$pid")." >>"$W/rss.txt"
    stop
fi

# 10 swaps under load: the two example bundles (seeds 1 and 2) published in
# turn over the served path as docs/serve.md says, while wrk asks at 16
# connections; every swap awaited in /metrics.
"$BUILD/annb-example-gen" "$W/ex2" --seed 2 >/dev/null
"$BUILD/ann-build" "$W/ex2/items.csv" "$W/ex2/movies.dat" --users "$W/ex2/users.csv" \
    --interactions "$W/ex2/ratings.dat" -o "$W/rec2.annb" -q
mkdir "$W/live"
cp "$W/rec.annb" "$W/live/rec.annb"
serve "$W/live/rec.annb"
swaps() { curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "annb_serve_swaps_total" { print $2 }'; }
wrk -t2 -c16 -d"$((SECS * 3))s" --latency -s "$W/users.lua" "http://127.0.0.1:$port/" >"$W/wrk-swaps.txt" &
wrk_pid=$!
sleep 1
for n in $(seq 10); do
    src=$W/rec.annb; [ $((n % 2)) = 1 ] && src=$W/rec2.annb
    cp "$src" "$W/live/rec.annb.new"
    "$BUILD/ann-inspect" "$W/live/rec.annb.new" --verify -q
    mv "$W/live/rec.annb.new" "$W/live/rec.annb"
    for _ in $(seq 400); do [ "$(swaps)" -ge "$n" ] && break; sleep 0.05; done
done
swapped=$(swaps)
wait "$wrk_pid"
refused=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "annb_serve_swaps_refused_total" { print $2 }')
stop
awk -v s="$swapped" -v r="$refused" '/requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
    /^ +99%/ { p99 = $2 } /Non-2xx/ { err += $NF } /Socket errors/ { for (i = 3; i <= NF; i += 2) err += $(i + 1) }
    END { printf "Swaps under load: %d swaps (%d refused) during %d requests at 16 connections (%.0f/s, p99 %s): %d errors.\n",
          s, r, n, rps, p99, err }' "$W/wrk-swaps.txt" >>"$W/rss.txt"

# The same questions through a pipe, one process, one question at a time.
/usr/bin/python3 "$HERE/examples/serve_latency.py" --requests 20000 --kind user --exclude-seen \
    -- "$BUILD/ann-query" "$W/rec.annb" >"$W/pipe.txt"
awk '/^closed loop/ { rate1 = $3; for (i = 1; i <= NF; i++) { if ($i == "p50") p50 = $(i + 1) "ms"
                                                                if ($i == "p99") p99 = $(i + 1) "ms" } }
     /^pipelined/ { rate2 = $2 }
     END { gsub(",", "", rate1); gsub(",", "", rate2)
           printf "| ann-query --serve-stdin, one at a time (pipelined: %s req/s) | 1 (pipe) | %s | %s | %s | 0 | |\n",
                  rate2, rate1, p50, p99 }' "$W/pipe.txt" >>"$OUT"

# Redis: the same answers, precomputed, one GET per question.
rport=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >"$W/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
# redis-benchmark's __rand_int__ is 12 digits, zero-padded: the keys are too.
seq 0 6040 | awk '{ printf "{\"id\": %d, \"user\": %d, \"k\": 10, \"exclude_seen\": true}\n", $1, $1 }' |
    "$BUILD/ann-query" "$W/rec.annb" --serve-stdin |
    /usr/bin/python3 -c '
import json, sys
out = sys.stdout.buffer
for line in sys.stdin:
    a = json.loads(line)
    if "results" not in a:
        continue
    key = b"rec:%012d" % a["id"]
    val = json.dumps(dict(a, id=None), separators=(",", ":")).encode()
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(val), val))
' | redis-cli -p "$rport" --pipe >"$W/pipe.log"
for c in 1 16 64; do
    redis-benchmark -p "$rport" -c "$c" -n $((c == 1 ? 50000 : 300000)) -r 6041 --csv \
        GET rec:__rand_int__ >"$W/rb.csv"
    awk -F'"' -v c="$c" 'NR == 2 { printf "| redis-server GET of the precomputed answer | %s | %.0f | %sms | %sms | 0 | |\n",
        c, $4, $10, $14 }' "$W/rb.csv" >>"$OUT"
done

{
    echo
    cat "$W/rss.txt"
    echo
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} >>"$OUT"
cat "$OUT"
