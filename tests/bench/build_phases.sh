#!/usr/bin/env bash
# tests/bench/build_phases.sh - where a whole ann-build spends its time, phase
# by phase: reading (and sorting) the inputs, building annb's graph, tuning,
# writing (docs/graph.md, "Build").
#
#   tests/bench/build_phases.sh LIBANNB OUT.data -- ANN-BUILD ARGS...
#
# Runs the command under perf with uprobes on libannb's read_sorted,
# annb_graph_build, annb_tune_run and annb_index_make (entry and return) and
# a CPU-clock sample every millisecond of every thread, then prints per
# window between probes: wall seconds, CPU seconds (all threads) and the
# main thread's CPU seconds (with annb's threads sharing each parallel step
# evenly, about the window's wall time on idle cores). CPU time leaves out
# the time the process waited for a core, so it holds on a loaded machine.
# Needs perf and the rights to add uprobes (root); LIBANNB is the
# libannb.so the command loads (with its symbols: a RelWithDebInfo build).
# The probes are removed at the end. Another program's phases are not
# known: use `perf stat -e task-clock` for a total.
set -euo pipefail
[ $# -ge 4 ] && [ "$3" = -- ] || { echo "usage: $0 LIBANNB OUT.data -- ANN-BUILD ARGS..." >&2; exit 2; }
LIB=$1 OUT=$2
shift 3
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
probes() { perf probe -l 2>/dev/null | awk '{print $1}' | grep '^probe_libannb:phase_' || true; }
drop() { for p in $(probes); do perf probe -q -d "$p" >/dev/null 2>&1 || true; done; }
trap drop EXIT
drop
for f in read_sorted annb_graph_build annb_tune_run annb_index_make; do
  perf probe -q -x "$LIB" --add "phase_${f}_in=$f" >/dev/null
  perf probe -q -x "$LIB" --add "phase_${f}_out=$f%return" >/dev/null
done
t0=$(date +%s.%N)
perf record -q -c 1000000 -e cpu-clock -e 'probe_libannb:phase_*' -o "$OUT" -- "$@" >/dev/null 2>"$OUT.stderr"
t1=$(date +%s.%N)
perf script -i "$OUT" -F pid,tid,time,event 2>/dev/null | "$PY" -c '
import bisect, sys
ev = []
for line in sys.stdin:
    parts = line.split()
    if len(parts) < 3:
        continue
    pid, tid = parts[0].split("/")
    ev.append((float(parts[1].rstrip(":")), parts[2].rstrip(":"), pid == tid))
ev.sort()
marks = [(ev[0][0], "start")]
marks += [(t, e.split(":")[1][len("phase_"):]) for t, e, _ in ev if e.startswith("probe_libannb:")]
marks.append((ev[-1][0], "end"))
every = [t for t, e, _ in ev if e == "cpu-clock"]
main = [t for t, e, m in ev if e == "cpu-clock" and m]
def count(s, a, b):
    return (bisect.bisect_left(s, b) - bisect.bisect_left(s, a)) * 1e-3
print("%-60s %8s %8s %8s" % ("window", "wall_s", "cpu_s", "main_cpu"))
for (a, na), (b, nb) in zip(marks, marks[1:]):
    if b - a < 0.005 and count(every, a, b) < 0.005:
        continue
    print("%-60s %8.2f %8.2f %8.2f" % (na + " -> " + nb, b - a, count(every, a, b), count(main, a, b)))
print("%-60s %8.2f %8.2f %8.2f" % ("total (first to last sample)", ev[-1][0] - ev[0][0],
                                   len(every) * 1e-3, len(main) * 1e-3))
'
echo "wall of the perf run: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
