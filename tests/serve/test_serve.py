#!/usr/bin/python3
"""test_serve.py - ann-serve as a real process on a free loopback port.

    test_serve.py ANN-SERVE ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-EXAMPLE-GEN DATA-DIR

Every endpoint against ann-query's answers (--serve-stdin, the same
questions) and an independent brute force written here; every error status;
body and k limits; swaps under concurrent load with zero failed requests and
the new bundle's answers after them; damaged, hostile and reshaped bundles
refused while the old one keeps answering; /metrics parsed with
prometheus_client's parser; SIGTERM drains a request in flight. Every server
is stopped by its PID at the end, on failure too. No timing thresholds: where
a request must find the workers busy, the test waits (on /metrics) until they
are, behind a request that takes seconds.
"""
import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families

if len(sys.argv) != 7:
    sys.exit("usage: test_serve.py ANN-SERVE ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-EXAMPLE-GEN DATA-DIR")
SERVE, BUILD, QUERY, INSPECT, GEN, DATA = sys.argv[1:]

PASSED = 0
FAILED = 0
SERVERS = []


def check(desc, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL: %s%s" % (desc, ("\n  " + str(detail)[:3000]) if detail != "" else ""),
              file=sys.stderr)
    return ok


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- the server

class Server:
    """ann-serve on 127.0.0.1:0; the port from its first stdout line."""

    def __init__(self, *args):
        self.err_path = os.path.join(TMP, "serve-%d.err" % len(SERVERS))
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen([SERVE, *map(str, args), "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        SERVERS.append(self)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise RuntimeError("ann-serve did not start: %r, stderr: %s" % (line, self.stderr()))
        self.port = int(line.rsplit(":", 1)[1])

    def stderr(self):
        self.err.flush()
        with open(self.err_path) as f:
            return f.read()

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read().decode("utf-8")
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            if conn is None:
                c.close()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body=body if isinstance(body, (bytes, str))
                            else json.dumps(body), headers={"Content-Type": "application/json"})

    def metrics(self):
        status, _, text = self.get("/metrics")
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return status, text, out

    def metric(self, name, **labels):
        return self.metrics()[2].get((name, tuple(sorted(labels.items()))))

    def wait_metric(self, name, pred, what, **labels):
        """Polls /metrics until pred(value) (a state, not a time, is awaited)."""
        deadline = time.monotonic() + 120  # a hang guard only
        while time.monotonic() < deadline:
            v = self.metric(name, **labels)
            if v is not None and pred(v):
                return v
            time.sleep(0.02)
        raise RuntimeError("never reached: %s (%s=%s)" % (what, name, self.metric(name, **labels)))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()  # by its PID
        self.proc.wait()
        self.err.close()


# ---------------------------------------------------------------- reference answers

def ann_query(bundle, requests):
    """ann-query's answers to protocol requests, one per request (--serve-stdin)."""
    r = run(QUERY, bundle, "--serve-stdin", input="".join(json.dumps(q) + "\n" for q in requests))
    return r.stdout.splitlines()


def read_vectors(path):
    vecs = {}
    with open(path) as f:
        next(f)
        for line in f:
            i, rest = line.split(",", 1)
            vecs[int(i)] = [float(x) for x in rest.strip().strip('"[]').split(",")]
    return vecs


def brute_top(query, rows, k, exclude=(), keep=lambda i: True):
    """Inner-product top-k: (id, score) best first, ties by ID (any order is fine)."""
    scored = sorted(((-sum(a * b for a, b in zip(query, v)), i) for i, v in rows.items()
                     if i not in exclude and keep(i)))
    return [(i, -s) for s, i in scored], [(i, -s) for s, i in scored[:k]]


def is_top_k(answer, ranked, k, desc):
    """The answer's results are a top-k of `ranked` (the full brute-force order):
    right scores, best first, nothing better left out (ties in any order)."""
    res = json.loads(answer)["results"]
    score = dict(ranked)
    ok = len(res) == min(k, len(ranked))
    ok = ok and all(r["id"] in score and abs(r["score"] - score[r["id"]]) <= 1e-5 * max(1, abs(r["score"]))
                    for r in res)
    ok = ok and all(res[j]["score"] >= res[j + 1]["score"] for j in range(len(res) - 1))
    if ok and len(ranked) > k:
        ok = res[-1]["score"] >= ranked[k][1] - 1e-6
    return check(desc + ": the top %d of a brute force" % k, ok, answer)


# ---------------------------------------------------------------- fixtures

TMP = tempfile.mkdtemp(prefix="annb-serve.")


def build(out, items, catalog, *extra):
    r = run(BUILD, items, catalog, "-o", out, "-q", *extra)
    if r.returncode != 0:
        raise RuntimeError("ann-build %s: %s" % (out, r.stderr))
    return out


def main():
    cli = os.path.join(DATA, "cli")
    ratings = os.path.join(TMP, "ratings.dat")
    with open(ratings, "w") as f:  # user 10 saw 2571, 10 and 1; user 20 saw 260
        f.write("10::2571::5::1\n10::10::4::2\n10::1::3::3\n20::260::4::4\n")
    small = build(os.path.join(TMP, "u.annb"), os.path.join(cli, "items.csv"),
                  os.path.join(cli, "movies.dat"), "--users", os.path.join(cli, "users.csv"),
                  "--interactions", ratings)
    items_only = build(os.path.join(TMP, "items.annb"), os.path.join(cli, "items.csv"),
                       os.path.join(cli, "movies.dat"))
    items = read_vectors(os.path.join(cli, "items.csv"))
    users = read_vectors(os.path.join(cli, "users.csv"))
    genres = {}
    with open(os.path.join(cli, "movies.dat"), encoding="latin-1") as f:
        for line in f:
            mid, _, g = line.rstrip("\n").split("::")
            genres[int(mid)] = set(g.split("|"))

    endpoints(small, items, users, genres)
    shards(cli, items, users)
    errors(small, items_only)
    keyed()
    limits(small)
    ex = swaps()
    live_recall_approximate(ex[1])
    busy_and_drain()
    print("serve: %d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


def endpoints(small, items, users, genres):
    log = os.path.join(TMP, "access.log")
    s = Server(small, "--access-log", log, "--recall-sample", "1")
    # (GET path, the same question in the protocol, brute-force ranking, k)
    cases = [
        ("/v1/users/10/items?k=3", {"user": 10, "k": 3},
         brute_top(users[10], items, 99)[0], 3),
        ("/v1/users/10/items?k=3&exclude_seen=1", {"user": 10, "k": 3, "exclude_seen": True},
         brute_top(users[10], items, 99, exclude={2571, 10, 1})[0], 3),
        ("/v1/users/20/items?k=4&genre=Drama&genre=Comedy&exclude=593", {"user": 20, "k": 4,
         "genres": ["Drama", "Comedy"], "exclude": [593]},
         brute_top(users[20], items, 99, exclude={593},
                   keep=lambda i: bool(genres.get(i, set()) & {"Drama", "Comedy"}))[0], 4),
        ("/v1/items/2571/similar?k=2", {"item": 2571, "k": 2},
         brute_top(items[2571], items, 99, exclude={2571})[0], 2),
        ("/v1/items/2571/similar?k=5&exclude=1,260", {"item": 2571, "k": 5, "exclude": [1, 260]},
         brute_top(items[2571], items, 99, exclude={2571, 1, 260})[0], 5),
        ("/v1/users/10/similar?k=1", {"similar_users": 10, "k": 1},
         brute_top(users[10], users, 99, exclude={10})[0], 1),
        ("/v1/items/2571/users?k=2", {"users_for_item": 2571, "k": 2},
         brute_top(items[2571], users, 99)[0], 2),
        ("/v1/users/30/items", {"user": 30}, brute_top(users[30], items, 99)[0], 10),
    ]
    expected = ann_query(small, [q for _, q, _, _ in cases])
    c = s.conn()  # one keep-alive connection for all of them
    for (path, q, ranked, k), want in zip(cases, expected):
        status, headers, body = s.request("GET", path, conn=c)
        check("GET %s: 200" % path, status == 200, body)
        check("GET %s: application/json" % path, headers.get("content-type") == "application/json")
        check("GET %s: the same answer as ann-query --serve-stdin" % path, body == want,
              "got  %s\nwant %s" % (body, want))
        is_top_k(body, ranked, k, "GET " + path)
    check("keep-alive: the connection stayed open", c.sock is not None)
    c.close()

    # POST: one request, the same bytes as ann-query; a batch, element-wise.
    reqs = [dict(q, id=n) for n, (_, q, _, _) in enumerate(cases)]
    want = ann_query(small, reqs)
    status, _, body = s.post("/v1/query", reqs[1])
    check("POST one request: 200 and ann-query's answer", status == 200 and body == want[1], body)
    batch = reqs + [{"id": "bad", "user": 11}, {"id": "v", "vector": [1, 2]}]
    want = ann_query(small, batch)
    status, _, body = s.post("/v1/query", batch)
    check("POST a batch: 200", status == 200, body)
    check("POST a batch: each answer as ann-query gives it", body == "[" + ",".join(want) + "]",
          "got  %s\nwant %s" % (body, want))
    status, _, body = s.post("/v1/query", {"id": 7, "vector": [0.5, -1.25, 2, 0.125], "k": 2})
    is_top_k(body, brute_top([0.5, -1.25, 2, 0.125], items, 99)[0], 2, "POST vector")

    status, _, body = s.get("/healthz")
    check("/healthz: 200", status == 200 and json.loads(body)["status"] == "alive", body)
    status, _, body = s.get("/readyz")
    check("/readyz: 200, generation 1", status == 200 and json.loads(body)["generation"] == 1, body)

    status, headers, text = s.get("/metrics")
    check("/metrics: 200, text format 0.0.4",
          status == 200 and headers.get("content-type", "").startswith("text/plain; version=0.0.4"))
    _, _, m = s.metrics()
    sha = hashlib.sha256(open(small, "rb").read()).hexdigest()
    info = [labels for (name, labels), v in m.items() if name == "annb_serve_bundle_info"]
    check("/metrics: the served file's SHA-256, index and metric",
          len(info) == 1 and ("sha256", sha) in info[0] and ("index", "Flat") in info[0]
          and ("metric", "ip") in info[0], info)
    check("/metrics: the stored recall (exact: 1)",
          any(n == "annb_serve_bundle_stored_recall" and v == 1.0 for (n, _), v in m.items()), text)
    got = m.get(("annb_serve_requests_total", (("question", "items_for_user"), ("status", "200"))))
    check("/metrics: GET and POST user questions counted by question and status", got == 5, got)
    got = m.get(("annb_serve_request_duration_seconds_count", (("question", "similar_items"),)))
    check("/metrics: the latency histogram counts the similar-items questions", got == 2, got)
    for name in ("annb_serve_in_flight_requests", "annb_serve_queued_requests",
                 "annb_serve_swaps_total", "annb_serve_swaps_refused_total", "annb_serve_generation",
                 "annb_serve_live_recall_failed_total"):
        check("/metrics: %s" % name, (name, ()) in m, text)
    status, _, _ = s.get("/v1/x%0Aforged%20200%200.1%1b[2J%ff")
    check("a path with %0A, %1b and %ff: 404", status == 404, status)
    live_recall(s)
    s.stop()
    with open(log, "rb") as f:
        raw = f.read()
    lines = raw.decode("utf-8").splitlines()
    check("--access-log: a line per request", len(lines) >= len(cases) + 7 and
          any(l.startswith("GET /v1/users/10/items 200 ") for l in lines), lines[:5])
    check("--access-log: control bytes and invalid UTF-8 in a path escaped, no forged line",
          "GET /v1/x\\nforged 200 0.1\\x1b[2J\\xff 404 " in raw.decode("utf-8")
          and not any(l.startswith("forged") for l in lines) and b"\x1b" not in raw,
          [l for l in lines if "forged" in l])


def live_recall(s):
    """Flat bundle, every question sampled: the 18 answered with results (8 GET,
    1 POST, 8 in the batch, 1 vector) are re-answered exactly, and agree."""
    n = s.wait_metric("annb_serve_live_recall_measured_total", lambda v: v >= 18,
                      "the sampled questions re-answered exactly")
    check("live recall: every question answered with results sampled, GET and POST",
          s.metric("annb_serve_live_recall_sampled_total") == 18 and n == 18,
          (s.metric("annb_serve_live_recall_sampled_total"), n))
    check("live recall: 1 on an exact index", s.metric("annb_serve_live_recall") == 1.0,
          s.metrics()[1])


def shards(cli, items, users):
    """Two shards of the fixture served together: merged answers, as
    ann-query gives them over the same shards and as the brute force ranks."""
    paths = [build(os.path.join(TMP, "shard%d.annb" % i), os.path.join(cli, "items.csv"),
                   os.path.join(cli, "movies.dat"), "--users", os.path.join(cli, "users.csv"),
                   "--shard", "%d/2" % i) for i in range(2)]
    s = Server(*paths)
    cases = [("/v1/items/2571/similar?k=4", {"item": 2571, "k": 4},
              brute_top(items[2571], items, 99, exclude={2571})[0], 4),
             ("/v1/users/20/items?k=5&exclude=260", {"user": 20, "k": 5, "exclude": [260]},
              brute_top(users[20], items, 99, exclude={260})[0], 5)]
    r = run(QUERY, *paths, "--serve-stdin", input="".join(json.dumps(q) + "\n" for _, q, _, _ in cases))
    for (path, q, ranked, k), want in zip(cases, r.stdout.splitlines()):
        status, _, body = s.get(path)
        check("shards: GET %s: ann-query's answer over the same shards" % path,
              status == 200 and body == want, "%s\n%s" % (body, want))
        is_top_k(body, ranked, k, "shards: GET " + path)
    status, _, body = s.get("/v1/users/20/items?exclude_seen=1")
    check("shards: exclude_seen is unsupported (422)",
          status == 422 and json.loads(body)["error"]["code"] == "unsupported", body)
    info = [l for (n, l), v in s.metrics()[2].items() if n == "annb_serve_bundle_info"]
    check("shards: /metrics names both files", len(info) == 2, info)
    s.stop()


def errors(small, items_only):
    s = Server(small, "--max-k", "50")
    cases = [
        ("POST", "/v1/query", '{"user": 10', 400, "bad_json"),
        ("POST", "/v1/query", "", 400, "bad_json"),
        ("POST", "/v1/query", '{"user": 10, "colour": "red"}', 400, "invalid_request"),
        ("POST", "/v1/query", '{"id": "x", "user": 10, "k": 51}', 400, "invalid_request"),
        ("POST", "/v1/query", '{"user": 11}', 404, "not_found"),
        ("POST", "/v1/query", '{"user": 10, "genres": ["Comdy"]}', 404, "not_found"),
        ("POST", "/v1/query", '{"vector": [1, 2]}', 422, "dimension"),
        ("POST", "/v1/query", b'{"user": 10}\x00', 400, "bad_json"),
        ("GET", "/v1/users/11/items", None, 404, "not_found"),
        ("GET", "/v1/items/999999/similar", None, 404, "not_found"),
        ("GET", "/v1/users/x10/items", None, 400, "invalid_request"),
        ("GET", "/v1/users/%20%2B10/items", None, 400, "invalid_request"),
        ("GET", "/v1/users/+10/items", None, 400, "invalid_request"),
        ("GET", "/v1/users/10/items?k=0", None, 400, "invalid_request"),
        ("GET", "/v1/users/10/items?k=51", None, 400, "invalid_request"),
        ("GET", "/v1/users/10/items?colour=red", None, 400, "invalid_request"),
        ("GET", "/v1/users/10/similar?genre=Drama", None, 400, "invalid_request"),
        ("GET", "/v1/users/10/items?exclude=1,x", None, 400, "invalid_request"),
        ("GET", "/v1/users/10/items?exclude=1,%2B2", None, 400, "invalid_request"),
        ("GET", "/v1/users/10/items?genre=Comdy", None, 404, "not_found"),
        ("GET", "/v2/users/10/items", None, 404, "not_found"),
        ("GET", "/", None, 404, "not_found"),
        ("GET", "/v1/query", None, 405, "method_not_allowed"),
        ("DELETE", "/v1/users/10/items", None, 405, "method_not_allowed"),
        ("POST", "/metrics", "", 405, "method_not_allowed"),
        ("GET", "/admin/reload", None, 405, "method_not_allowed"),
    ]
    for method, path, body, status, code in cases:
        got, headers, text = s.request(method, path, body=body)
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {}
        check("%s %s %r: %d %s" % (method, path, body, status, code),
              got == status and answer.get("error", {}).get("code") == code, "%d %s" % (got, text))
        if status == 405:
            allow = "POST" if path in ("/v1/query", "/admin/reload") else "GET, HEAD"
            check("%s %s: Allow: %s" % (method, path, allow), headers.get("allow") == allow, headers)
    # A batch's k add up to at most --max-k (10 where not given).
    got, _, text = s.post("/v1/query", [{"id": n, "user": 10} for n in range(5)])
    check("a batch of 5 x k 10 under --max-k 50: 200", got == 200 and len(json.loads(text)) == 5, text)
    got, _, text = s.post("/v1/query", [{"id": n, "user": 10} for n in range(6)])
    check("a batch of 6 x k 10 over --max-k 50: 400 invalid_request",
          got == 400 and json.loads(text)["error"]["code"] == "invalid_request", text)
    _, _, text = s.post("/v1/query", '{"id": "x", "user": 10, "k": 51}')
    check("--max-k: the error echoes the request's id", json.loads(text)["id"] == "x", text)
    s.stop()
    # unsupported: a bundle without users or interactions
    s = Server(items_only)
    for path in ("/v1/users/10/items", "/v1/users/10/similar", "/v1/items/2571/users"):
        got, _, text = s.get(path)
        check("GET %s without users: 422 unsupported" % path,
              got == 422 and json.loads(text)["error"]["code"] == "unsupported", text)
    s.stop()


def keyed():
    """String IDs (SPEC 6.19): keys in the path, percent-encoded (a '/', a
    blank, UTF-8), in exclude (a key holding a comma, whole), stored
    interactions by key; GET and POST against ann-query and a brute force,
    live recall on both, and the errors."""
    def vecs(n, seed):
        out = []
        for _ in range(n):
            row = []
            for _ in range(4):
                seed = (seed * 69069 + 1) % 4294967296
                row.append(((seed >> 16) % 257 - 128) / 64)
            out.append(row)
        return out
    item_keys = ["tt%07d" % (100 + i) for i in range(12)] + ["a/b", "has space", "a,b", "x:y",
                                                             "caf\u00e9", "50%", "?q=1"]
    user_keys = ["alice", "bob/2", "carol x", "\u00fc"]
    items, users = dict(zip(item_keys, vecs(len(item_keys), 3))), dict(zip(user_keys, vecs(4, 8)))
    seen = {"alice": {"a/b", "tt0000100"}, "bob/2": {"has space"}}

    def write(name, header, rows):
        with open(os.path.join(TMP, name), "w", encoding="utf-8") as f:
            f.write(header + "\n")
            for row in rows:
                f.write(",".join('"%s"' % str(x).replace('"', '""') for x in row) + "\n")
        return os.path.join(TMP, name)
    it = write("k_items.csv", "item_id,embedding", [(k, json.dumps(v)) for k, v in items.items()])
    us = write("k_users.csv", "user_id,embedding", [(k, json.dumps(v)) for k, v in users.items()])
    sn = write("k_seen.csv", "user_id,item_id", [(u, i) for u, s in seen.items() for i in sorted(s)])
    cat = write("k_movies.csv", "movieId,title,genres", [("a/b", "Slash (2000)", "Drama"),
                                                         ("a,b", "Comma (2001)", "Comedy|Drama")])
    b = build(os.path.join(TMP, "keyed.annb"), it, cat, "--users", us, "--interactions", sn)
    s = Server(b, "--recall-sample", "1")
    q = lambda key: urllib.parse.quote(key, safe="")
    cases = [
        ("/v1/users/%s/items?k=4" % q("carol x"), {"user": "carol x", "k": 4},
         brute_top(users["carol x"], items, 99)[0], 4),
        ("/v1/users/%s/items?k=5&exclude_seen=1&exclude=%s" % (q("alice"), q("a,b")),
         {"user": "alice", "k": 5, "exclude_seen": True, "exclude": ["a,b"]},
         brute_top(users["alice"], items, 99, exclude=seen["alice"] | {"a,b"})[0], 5),
        ("/v1/users/%s/items?k=3&genre=Drama" % q("bob/2"), {"user": "bob/2", "k": 3, "genres": ["Drama"]},
         brute_top(users["bob/2"], items, 99, keep=lambda i: i in ("a/b", "a,b"))[0], 2),
        ("/v1/items/%s/similar?k=5&exclude=x:y,%s&exclude=%s" % (q("a/b"), q("caf\u00e9"), q("50%")),
         {"item": "a/b", "k": 5, "exclude": ["x:y", "caf\u00e9", "50%"]},
         brute_top(items["a/b"], items, 99, exclude={"a/b", "x:y", "caf\u00e9", "50%"})[0], 5),
        ("/v1/items/%s/similar?k=3" % q("?q=1"), {"item": "?q=1", "k": 3},
         brute_top(items["?q=1"], items, 99, exclude={"?q=1"})[0], 3),
        ("/v1/users/%s/similar?k=2&exclude=alice" % q("\u00fc"), {"similar_users": "\u00fc", "k": 2,
         "exclude": ["alice"]}, brute_top(users["\u00fc"], users, 99, exclude={"\u00fc", "alice"})[0], 2),
        ("/v1/items/%s/users?k=3" % q("has space"), {"users_for_item": "has space", "k": 3},
         brute_top(items["has space"], users, 99)[0], 3),
    ]
    expected = ann_query(b, [c[1] for c in cases])
    for (path, req, ranked, k), want in zip(cases, expected):
        status, _, body = s.get(path)
        check("keyed: GET %s: ann-query's answer" % path, status == 200 and body == want,
              "%d %s\nwant %s" % (status, body, want))
        is_top_k(body, ranked, k, "keyed: GET " + path)
        status, _, body = s.post("/v1/query", req)
        check("keyed: POST %s: ann-query's answer" % req, status == 200 and body == want, body)
    status, _, body = s.post("/v1/query", [c[1] for c in cases])
    check("keyed: POST a batch: each answer as ann-query gives it",
          status == 200 and body == "[" + ",".join(expected) + "]", body)
    n = 3 * len(cases)
    got = s.wait_metric("annb_serve_live_recall_measured_total", lambda v: v >= n,
                        "the keyed questions re-answered exactly")
    check("keyed: live recall measured every GET and POST question (string IDs as text)",
          got == n and s.metric("annb_serve_live_recall_sampled_total") == n
          and s.metric("annb_serve_live_recall_failed_total") == 0
          and s.metric("annb_serve_live_recall") == 1.0, s.metrics()[1])
    for path, status, code, message in [
        ("/v1/users/carol/items", 404, "not_found", 'user "carol" is not in the bundle'),
        ("/v1/items/a%2Fc/similar", 404, "not_found", 'item "a/c" is not in the bundle'),
        ("/v1/items/a/b/similar", 404, "not_found", "no such path"),
        ("/v1/items/a%zzb/similar", 400, "invalid_request", "malformed percent-encoding"),
        ("/v1/items/a%2/similar", 400, "invalid_request", "malformed percent-encoding"),
        ("/v1/items/a%00b/similar", 400, "invalid_request", "malformed percent-encoding"),
        ("/v1/items/x:y/similar?exclude=x:y,,a/b", 400, "invalid_request", "has an empty one"),
    ]:
        got, _, text = s.get(path)
        try:
            error = json.loads(text)["error"]
        except (ValueError, KeyError):
            error = {}
        check("keyed: GET %s: %d %s" % (path, status, code), got == status and error.get("code") == code
              and message in error.get("message", ""), "%d %s" % (got, text))
    s.stop()


def limits(small):
    s = Server(small, "--max-request-bytes", "4096")
    pad = " " * 5000
    got, headers, text = s.post("/v1/query", '{"user": 10}' + pad)
    check("body over --max-request-bytes: 413 too_large",
          got == 413 and json.loads(text)["error"]["code"] == "too_large", text)
    c = s.conn()  # chunked: no Content-Length to refuse it by
    c.request("POST", "/v1/query", body=iter([b'{"user": 10}', pad.encode(), pad.encode()]),
              encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    text = r.read().decode()
    check("a chunked body over the cap: 413", r.status == 413, text)
    c.close()
    sent = [0]

    def endless():  # 100 MB unless the server hangs up
        yield b'{"user": 10}'
        for _ in range(100 * 128):
            sent[0] += 8192
            yield b" " * 8192
    c = s.conn()
    try:
        c.request("POST", "/v1/query", body=endless(), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        status = c.getresponse().status
    except OSError as e:  # reset or broken pipe: the server hung up
        status = type(e).__name__
    c.close()
    check("an endless chunked body is cut off (%s after %d bytes)" % (status, sent[0]),
          sent[0] < 100 * 128 * 8192, sent[0])
    got, _, text = s.post("/v1/query", '{"user": 10}' + " " * 4000)
    check("a body under the cap: 200", got == 200, text)
    s.stop()
    r = run(SERVE, small, "--listen", "127.0.0.1:99999")
    check("--listen with a bad port: exit 2", r.returncode == 2 and r.stderr.startswith("ann-serve: "),
          r.stderr)
    r = run(SERVE, os.path.join(TMP, "missing.annb"), "--listen", "127.0.0.1:0")
    check("a missing bundle: exit 1, named", r.returncode == 1 and "missing.annb" in r.stderr, r.stderr)


# ---------------------------------------------------------------- swaps

class Load:
    """Threads asking user questions without pause; every answer recorded."""

    def __init__(self, server, threads=4):
        self.server, self.stop_flag, self.lock = server, threading.Event(), threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.loop, args=(t,)) for t in range(threads)]
        for t in self.threads:
            t.start()

    def loop(self, t):
        c = self.server.conn()
        n = t
        while not self.stop_flag.is_set():
            n += 7
            try:
                status, _, body = self.server.request("GET", "/v1/users/%d/items?k=5&exclude_seen=1"
                                                      % (1 + n % 6040), conn=c)
                with self.lock:
                    if status == 200 and len(json.loads(body)["results"]) == 5:
                        self.ok += 1
                    else:
                        self.failures.append((status, body[:200]))
            except Exception as e:  # a dropped connection is a failure too
                with self.lock:
                    self.failures.append(("exception", repr(e)))
                c.close()
                c = self.server.conn()
        c.close()

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()
        return self.ok, self.failures


def publish(src, served):
    """The documented pattern: a copy under a temporary name in the same
    directory, verified, renamed over the served path."""
    tmp = served + ".tmp"
    shutil.copyfile(src, tmp)
    r = run(INSPECT, tmp, "--verify", "-q")
    if r.returncode != 0:
        raise RuntimeError("ann-inspect --verify: " + r.stderr)
    os.rename(tmp, served)


def put_over(src, served):
    """A damaged file renamed over (what the server must refuse)."""
    tmp = served + ".tmp"
    shutil.copyfile(src, tmp)
    os.rename(tmp, served)


def swaps():
    ex = {}
    for seed in (1, 2):
        d = os.path.join(TMP, "ex%d" % seed)
        run(GEN, d, "--seed", seed)
        ex[seed] = build(os.path.join(TMP, "ex%d.annb" % seed), os.path.join(d, "items.csv"),
                         os.path.join(d, "movies.dat"), "--users", os.path.join(d, "users.csv"),
                         "--interactions", os.path.join(d, "ratings.dat"))
    d = os.path.join(TMP, "ex12")  # another dimension
    run(GEN, d, "--dim", 12)
    reshaped = build(os.path.join(TMP, "dim12.annb"), os.path.join(d, "items.csv"),
                     os.path.join(d, "movies.dat"), "--users", os.path.join(d, "users.csv"))
    damaged = os.path.join(TMP, "damaged.annb")  # a vector byte flipped: only a full verify sees it
    data = bytearray(open(ex[2], "rb").read())
    vecs = run(INSPECT, ex[2], "--json")
    sec = [x for x in json.loads(vecs.stdout)["sections"] if x["kind"] == "VECS"][0]
    data[sec["offset"] + sec["stored_size"] // 2] ^= 0x40
    open(damaged, "wb").write(data)
    nousers = build(os.path.join(TMP, "nousers.annb"),  # stores less than the served one
                    os.path.join(TMP, "ex2", "items.csv"), os.path.join(TMP, "ex2", "movies.dat"))
    hostile = os.path.join(TMP, "hostile.annb")  # not a bundle at all
    open(hostile, "wb").write(b"ANNB" + os.urandom(5000))

    live = os.path.join(TMP, "live")
    os.mkdir(live)
    served = os.path.join(live, "rec.annb")
    shutil.copyfile(ex[1], served)
    s = Server(served, "-v")
    question = {"user": 10, "k": 5, "exclude_seen": True}
    want = {seed: ann_query(ex[seed], [question])[0] for seed in (1, 2)}
    check("the two bundles answer differently", want[1] != want[2])

    def answer():
        return s.post("/v1/query", question)[2]

    load = Load(s)
    s.wait_metric("annb_serve_requests_total", lambda v: v > 50, "load running",
                  question="items_for_user", status="200")
    for n in range(1, 7):  # 6 swaps under load, alternating the two bundles
        publish(ex[2 if n % 2 else 1], served)
        s.wait_metric("annb_serve_swaps_total", lambda v: v >= n, "swap %d" % n)
        check("swap %d: the new bundle's answers after it" % n, answer() == want[2 if n % 2 else 1],
              answer())
    for n, bad in enumerate((damaged, hostile, reshaped, nousers), 1):
        put_over(bad, served)
        s.wait_metric("annb_serve_swaps_refused_total", lambda v: v >= n,
                      "refusal of %s" % os.path.basename(bad))
        check("%s refused: the old bundle keeps answering" % os.path.basename(bad),
              answer() == want[1], answer())
    ok, failures = load.finish()
    check("swaps under load: zero failed requests (%d answered)" % ok, not failures and ok > 0,
          failures[:5])
    # No request in flight: only the current generation's file is mapped
    # (live recall samples hold no generation, so superseded ones are closed).
    with open("/proc/%d/maps" % s.proc.pid) as f:
        mapped = {l.split()[4] for l in f if live + "/" in l}
    check("after the swaps only the current bundle is mapped", len(mapped) == 1, mapped)
    print("serve: swaps under load: %d swaps, %d refused, %d requests, %d failed"
          % (6, 4, ok, len(failures)))
    err = s.stderr()
    check("a refusal is logged with the reason", "refused" in err and "dimension" in err, err[-2000:])
    check("a bundle without the served one's users is refused, saying so", "stores no users" in err,
          err[-2000:])
    # SIGHUP and POST /admin/reload each make the server look at the files again.
    for how in ("SIGHUP", "admin"):
        before = s.metric("annb_serve_reloads_total")
        if how == "SIGHUP":
            s.proc.send_signal(signal.SIGHUP)
        else:
            status, _, body = s.post("/admin/reload", "")
            check("POST /admin/reload from loopback: 202", status == 202, body)
        s.wait_metric("annb_serve_reloads_total", lambda v: v > before, how + " reloads")
        check("%s: a reload ran" % how, True)
    m = s.metrics()[2]
    check("/metrics after the swaps: generation 7", m[("annb_serve_generation", ())] == 7)
    sha = hashlib.sha256(open(served, "rb").read()).hexdigest()
    sha1 = hashlib.sha256(open(ex[1], "rb").read()).hexdigest()
    info = [dict(l) for (name, l), v in m.items() if name == "annb_serve_bundle_info"]
    check("/metrics: the identity of the bundle served (not of the refused file on disk)",
          len(info) == 1 and info[0]["sha256"] == sha1 and sha != sha1, info)
    # A stream of reload requests (SIGHUP every 100 ms, never 200 ms quiet)
    # does not postpone the reload of a published file past about 1 s.
    publish(ex[2], served)
    swapped, end = False, time.monotonic() + 5
    while not swapped and time.monotonic() < end:
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.1)
        swapped = s.metric("annb_serve_swaps_total") >= 7
    check("a stream of reload requests: the swap happens while it goes on", swapped,
          s.metric("annb_serve_swaps_total"))
    s.stop()
    return ex


def live_recall_approximate(flat):
    """An IVF bundle asked with nprobe=1, every question sampled: the live
    recall equals the recall computed here from the served answers and
    ann-query's answers over the flat bundle of the same items."""
    d = os.path.join(TMP, "ex1")
    ivf = build(os.path.join(TMP, "ivf.annb"), os.path.join(d, "items.csv"),
                os.path.join(d, "movies.dat"), "--index", "ivf")
    s = Server(ivf, "--recall-sample", "1")
    ids = [json.loads(line)["results"][0]["id"]
           for line in ann_query(flat, [{"vector": [((j * 7 + i) % 5 - 2) / 2 for i in range(10)],
                                         "k": 1} for j in range(30)])]
    ids = sorted(set(ids))
    exact = ann_query(flat, [{"item": i, "k": 10} for i in ids])
    recalls = []
    for i, want in zip(ids, exact):
        status, _, body = s.get("/v1/items/%d/similar?k=10&nprobe=1" % i)
        served = {r["id"] for r in json.loads(body)["results"]}
        truth = [r["id"] for r in json.loads(want)["results"]]
        recalls.append(sum(1 for t in truth if t in served) / len(truth))
    s.wait_metric("annb_serve_live_recall_measured_total", lambda v: v >= len(ids),
                  "every question measured")
    expected = sum(recalls) / len(recalls)
    got = s.metric("annb_serve_live_recall")
    check("live recall on IVF at nprobe=1 (%d questions): %.4f, as computed from the answers"
          % (len(ids), expected), got is not None and abs(got - expected) < 1e-9,
          "got %s, expected %s" % (got, expected))
    check("live recall: below 1 at nprobe=1 (the test can see a difference)", expected < 1, expected)
    s.stop()


# ---------------------------------------------------------------- busy workers, drain

def busy_and_drain():
    d = os.path.join(TMP, "big")
    run(GEN, d, "--items", 200000, "--dim", 64, "--users", 10)
    big = build(os.path.join(TMP, "big.annb"), os.path.join(d, "items.csv"),
                os.path.join(d, "movies.dat"), "--index", "flat")
    probe = json.loads(ann_query(big, [{"item": 1, "k": 1}])[0])
    if "results" not in probe:
        raise RuntimeError("big bundle: " + str(probe))
    item = probe["results"][0]["id"]
    # A batch one worker needs seconds for: 1000 exact scans of 200k x 64
    # (51 GB read: 3.5 s at one core's 14.7 GB/s, 15-30 s on the shared test
    # machine), so that a question sent once the batch is seen in the worker
    # finds the worker busy for far longer than the 1 s of --timeout-ms below.
    slow = [{"id": n, "item": item, "k": 3} for n in range(1000)]

    def in_background(server, result):
        # The batch must be seen in the worker before the checks go on; a
        # batch answered before any poll saw it (it happened twice in a row
        # on a busy machine, once in many runs) is sent again, a few times,
        # before that counts as a failure.
        for attempt in range(4):
            del result[:]
            t = threading.Thread(target=lambda: result.append(server.post("/v1/query", slow)))
            t.start()
            while server.metric("annb_serve_in_flight_requests") != 1 and t.is_alive():
                time.sleep(0.02)
            if t.is_alive():
                return t
            t.join()
        raise RuntimeError("the batch was answered before it was seen in a worker, 4 times: %s"
                           % (result[0][:2] if result else "nothing",))

    s = Server(big, "--threads", "1", "--queue", "0")  # the default dispatch: queue
    res = []
    t = in_background(s, res)
    status, headers, body = s.get("/v1/items/%d/similar?k=3" % item)
    check("the worker busy, --queue 0: 503 with Retry-After",
          status == 503 and headers.get("retry-after") == "1", "%s %s %s" % (status, headers, body))
    status, _, _ = s.get("/healthz")
    check("/healthz answers while every worker is busy", status == 200)
    t.join()
    check("the batch: 200, 1000 answers", res and res[0][0] == 200 and len(json.loads(res[0][2])) == 1000,
          res[0][:2] if res else res)
    s.stop()

    s = Server(big, "--dispatch", "queue", "--threads", "1", "--queue", "4", "--timeout-ms", "1000")
    res = []
    t = in_background(s, res)
    status, _, body = s.get("/v1/items/%d/similar?k=3" % item)
    check("waited for a worker past --timeout-ms: 504 timeout",
          status == 504 and json.loads(body)["error"]["code"] == "timeout", body)
    t.join()
    s.stop()

    # Inline dispatch: one thread answers the batch, the other the rest. The
    # drain's grace (--drain-ms) outlasts the checks below, and the batch
    # has twice that to finish, however slow the machine.
    s = Server(big, "--dispatch", "inline", "--threads", "2", "--drain-ms", "30000")
    res = []
    t = in_background(s, res)
    keep = s.conn()  # opened before the drain, on the thread not busy with the batch
    status, headers, _ = s.request("GET", "/healthz", conn=keep)
    check("before the drain: keep-alive", status == 200 and headers.get("connection") != "close")
    s.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 120  # a hang guard only
    while s.get("/readyz")[0] != 503 and time.monotonic() < deadline:
        time.sleep(0.02)
    status, _, body = s.get("/readyz")
    check("draining: /readyz 503 draining while the batch is in flight",
          status == 503 and json.loads(body)["status"] == "draining" and t.is_alive(), body)
    status, headers, body = s.request("GET", "/v1/items/%d/similar?k=3" % item, conn=keep)
    check("draining: a question on an open connection is answered, Connection: close",
          status == 200 and "results" in json.loads(body) and headers.get("connection") == "close",
          "%s %s %s" % (status, headers, body))
    keep.close()
    t.join()
    code = s.proc.wait(timeout=120)
    check("SIGTERM: the request in flight is answered in full",
          res and res[0][0] == 200 and len(json.loads(res[0][2])) == 1000, res[0][:2] if res else res)
    check("SIGTERM: exit 0 after the drain", code == 0, s.stderr())
    try:
        s.get("/healthz")
        refused = False
    except OSError:
        refused = True
    check("after SIGTERM nothing listens", refused)
    s.stop()


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:  # a broken step fails the test, never skips it
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        for srv in SERVERS:
            srv.stop()
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(rc)
