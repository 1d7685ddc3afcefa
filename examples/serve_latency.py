#!/usr/bin/env python3
"""serve_latency.py - drives `ann-query --serve-stdin` and measures it.

    examples/serve_latency.py [--requests N] [--kind user|item|vector|mixed]
                              [--k K] [--dim D] [--exclude-seen] [--seed S]
                              -- ANN-QUERY BUNDLE...

Starts ANN-QUERY BUNDLE... --serve-stdin and sends N requests for random
users (IDs from `--all-users -k 1`), items (IDs from one answer over every
item) or random vectors (--dim D: the bundle's dimension), twice
(--exclude-seen: user requests leave out the stored seen items):

  closed loop  one request at a time, the next sent when the answer is read:
               latency per request (p50, p90, p99, max) as a client sees it,
               pipe round trip included;
  pipelined    every request written at once by a writer thread while the
               answers are read: throughput when requests queue up.

Every answer is checked to be one JSON line with the request's "id" and
results (an error answer counts as a failure). Standard library only.
"""
import argparse
import json
import random
import subprocess
import sys
import threading
import time


def run(cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, check=True, capture_output=True, text=True).stdout


def make_requests(n, kind, k, users, items, dim, exclude_seen, rng):
    reqs = []
    for i in range(n):
        q = kind if kind != "mixed" else rng.choice(["user", "item", "vector", "similar_users"])
        r = {"id": i, "k": k}
        if q == "user":
            r["user"] = rng.choice(users)
            if exclude_seen:
                r["exclude_seen"] = True
        elif q == "similar_users":
            r["similar_users"] = rng.choice(users)
        elif q == "item":
            r["item"] = rng.choice(items)
        else:
            r["vector"] = [round(rng.uniform(-1, 1), 6) for _ in range(dim)]
        reqs.append(json.dumps(r) + "\n")
    return reqs


def check(answer, i):
    a = json.loads(answer)
    if a.get("id") != i or "results" not in a:
        raise SystemExit(f"request {i}: unexpected answer {answer[:200]}")


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--kind", default="user", choices=["user", "item", "vector", "mixed"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dim", type=int, help="the bundle's dimension (for vector requests)")
    ap.add_argument("--exclude-seen", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("cmd", nargs="+", help="ANN-QUERY BUNDLE...")
    a = ap.parse_args()
    rng = random.Random(a.seed)

    if a.kind in ("vector", "mixed") and not a.dim:
        ap.error("vector requests need --dim")
    users = [int(line.split("\t")[0]) for line in run(a.cmd + ["--all-users", "-k", "1"]).splitlines()[1:]]
    probe = run(a.cmd + ["--serve-stdin"], '{"user": %d, "k": 10000}\n' % users[0])
    items = [r["id"] for r in json.loads(probe)["results"]]
    dim = a.dim
    reqs = make_requests(a.requests, a.kind, a.k, users, items, dim, a.exclude_seen, rng)

    proc = subprocess.Popen(a.cmd + ["--serve-stdin"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    lat = []
    t0 = time.perf_counter()
    for i, r in enumerate(reqs):
        s = time.perf_counter()
        proc.stdin.write(r)
        proc.stdin.flush()
        answer = proc.stdout.readline()
        lat.append(time.perf_counter() - s)
        check(answer, i)
    closed = time.perf_counter() - t0

    def writer():
        proc.stdin.writelines(reqs)
        proc.stdin.flush()

    t0 = time.perf_counter()
    w = threading.Thread(target=writer)
    w.start()
    for i in range(len(reqs)):
        check(proc.stdout.readline(), i)
    pipelined = time.perf_counter() - t0
    w.join()
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("ann-query --serve-stdin did not exit 0")

    lat.sort()
    ms = lambda x: f"{x * 1000:.3f} ms"
    seen = ", seen excluded" if a.exclude_seen else ""
    print(f"{a.requests} {a.kind} requests{seen}, k={a.k}, {len(users)} users, {len(items)} items")
    print(f"closed loop: {a.requests / closed:,.0f} requests/s; latency p50 {ms(percentile(lat, 50))}, "
          f"p90 {ms(percentile(lat, 90))}, p99 {ms(percentile(lat, 99))}, max {ms(lat[-1])}")
    print(f"pipelined:   {a.requests / pipelined:,.0f} requests/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
