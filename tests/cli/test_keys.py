#!/usr/bin/python3
"""test_keys.py - string IDs (SPEC 6.19) through every front end of the tools,
as real processes on real files.

    test_keys.py ANN-BUILD ANN-QUERY ANN-INSPECT

Bundles are built from keyed inputs in the forms training code writes:
two-tower CSVs (movie_id,movie_embedding and user_id,user_embedding with
"0.1,0.2" vectors and string IDs), item2vec `word,vector`, JSON lines and
word2vec text, with a movies.csv / movies.dat catalog and an interactions CSV
joined by key. Every question (items for a user, for a vector, for a user's
vector in a file, similar items, similar users, users for an item; with
exclude-seen, excluded IDs and genres) is asked in every output format (table,
TSV, JSON, and for --all-users RESP) and through the protocol
(--serve-stdin), over one bundle and over three shards, and each answer is
compared with a brute force written here over the same values. Also: a mixed
bundle (string item IDs, integer user IDs), --string-ids keeping "007", and
the errors with their messages and exit codes.

Vector values are multiples of 1/64 in [-2, 2] and dimension 6, so inner
products are exact in float32 and double: scores are compared exactly, and an
answer is right when its scores are the true top-k scores and each ID has the
score it is given (ties may come in any order).
"""
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile

if len(sys.argv) != 4:
    sys.exit("usage: test_keys.py ANN-BUILD ANN-QUERY ANN-INSPECT")
BUILD, QUERY, INSPECT = sys.argv[1:]
# ANNB_CLI_VALGRIND=1 (as lib.sh): ann-query runs under valgrind, and a memory
# error or a definite/indirect leak makes it exit 99, which no check accepts.
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect"] if os.environ.get("ANNB_CLI_VALGRIND") == "1" else []

PASSED = 0
FAILED = 0
TMP = tempfile.mkdtemp(prefix="annb-keys.")
D = 6


def check(desc, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL: %s%s" % (desc, ("\n  " + str(detail)[:3000]) if detail != "" else ""),
              file=sys.stderr)
    return ok


def run(*args, input=None):
    args = [str(a) for a in args]
    if args[0] == QUERY:
        args = VALGRIND + args
    r = subprocess.run(args, capture_output=True, input=input, env=dict(os.environ, LC_ALL="C.UTF-8"))
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def path(name):
    return os.path.join(TMP, name)


# ---------------------------------------------------------------- data

def vectors(n, seed):
    """n vectors of D multiples of 1/64 in [-2, 2], from a fixed generator."""
    out = []
    for _ in range(n):
        row = []
        for _ in range(D):
            seed = (seed * 69069 + 1) % 4294967296
            row.append(((seed >> 16) % 257 - 128) / 64)
        out.append(row)
    return out


# Items: IMDb-like IDs and the keys that test the edges: blanks, ':', '/',
# ',', quotes, a backslash, non-ASCII, digits in a keyed file, a leading '-'.
SPECIAL_ITEMS = ["has space", "x:y", "a/b", "a,b", 'quo"te', "back\\slash", "sku-\u00e4",
                 "\u65e5\u672c", "123", "-dash"]
ITEM_KEYS = ["tt%07d" % (114709 + 7 * i) for i in range(26)] + SPECIAL_ITEMS
ITEMS = dict(zip(ITEM_KEYS, vectors(len(ITEM_KEYS), 11)))
USER_KEYS = ["alice", "bob", "carol x", "u:1", "\u00fc", "dave/1", "user07", "user08", "7"]
USERS = dict(zip(USER_KEYS, vectors(len(USER_KEYS), 29)))
GENRES = ["Action", "Comedy", "Drama", "Sci-Fi"]
# The catalog: most items (not the last four), and two entries without an item.
CATALOG = {}
for n, key in enumerate(ITEM_KEYS[:-4] + ["tt9999999", "no such, item"]):
    CATALOG[key] = ("Movie %d, \"%s\" (19%02d)" % (n, key, n % 100),
                    sorted({GENRES[n % 4], GENRES[(n * 7) % 3]}))
# Who saw what, by key; two pairs name what is not in the bundle (skipped).
SEEN = {u: set(ITEM_KEYS[(3 * j + 5 * i) % len(ITEM_KEYS)] for j in range(1 + i % 5))
        for i, u in enumerate(USER_KEYS)}
SEEN["bob"] |= {"a,b", "x:y", "has space"}


def fmt_vec_sep(v):
    return ",".join(repr(x) for x in v)  # multiples of 1/64: exact in decimal


def write_csv(name, header, rows):
    with open(path(name), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path(name)


def write_inputs():
    write_csv("movies_emb.csv", ["movie_id", "movie_embedding"],
              [(k, fmt_vec_sep(v)) for k, v in reversed(list(ITEMS.items()))])
    write_csv("users_emb.csv", ["user_id", "user_embedding"],
              [(k, fmt_vec_sep(v)) for k, v in USERS.items()])
    write_csv("movies.csv", ["movieId", "title", "genres"],
              [(k, t, "|".join(g)) for k, (t, g) in CATALOG.items()])
    pairs = [(u, i) for u in USER_KEYS for i in sorted(SEEN[u])]
    pairs += [("nobody", ITEM_KEYS[0]), ("alice", "tt0000000")]
    write_csv("seen.csv", ["user_id", "item_id"], pairs)
    with open(path("batch_users.txt"), "w", encoding="utf-8") as f:
        f.write("".join(u + "\n" for u in ["bob", "u:1", "carol x", "\u00fc"]))


# ---------------------------------------------------------------- brute force

def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def ranked(query, rows, exclude=(), genres=None):
    """Every row's (key, score), best first (ties in any order)."""
    out = [(k, dot(query, v)) for k, v in rows.items() if k not in exclude and
           (genres is None or (k in CATALOG and set(CATALOG[k][1]) & set(genres)))]
    return sorted(out, key=lambda x: -x[1])


def f32(x):
    """x as the float32 it names: a score is exact in float32 here, and the
    tools print %.9g, which reads back as the same float32."""
    return None if x is None else struct.unpack("f", struct.pack("f", x))[0]


def is_topk(got, truth, k, desc):
    """got: [(id, score)] as answered; truth: ranked(). Right when the scores
    are the true top-k scores and each ID has its true score."""
    want = [f32(s) for _, s in truth[:k]]
    score = dict(truth)
    ok = [f32(s) for _, s in got] == want and len({i for i, _ in got}) == len(got)
    ok = ok and all(i in score and f32(score[i]) == f32(s) for i, s in got)
    return check(desc, ok, "got  %s\nwant %s" % (got, truth[:k]))


def results_of(answer):
    """(id, score) of a protocol or --format json answer."""
    return [(r["id"], r["score"]) for r in answer["results"]]


def title_genres_ok(answer, desc):
    ok = all((r["title"], r["genres"]) == (CATALOG[r["id"]][0], CATALOG[r["id"]][1])
             if r["id"] in CATALOG else (r["title"], r["genres"]) == (None, [])
             for r in answer["results"])
    return check(desc + ": titles and genres by key", ok, answer)


def tsv_escape(s):
    return s.replace("\\", "\\\\")


def tsv_unescape(s):
    return s.replace("\\\\", "\\")


def parse_tsv(text, query_col=False):
    """TSV rows as (id, score) (and the query ID first with query_col)."""
    lines = text.splitlines()
    out = []
    for line in lines[1:]:
        f = line.split("\t")
        if query_col:
            out.append((tsv_unescape(f[0]), tsv_unescape(f[2]), float(f[3]), f[4], f[5]))
        else:
            out.append((tsv_unescape(f[1]), float(f[2]), f[3], f[4]))
    return lines[0], out


def parse_table(text):
    """Table rows as (id, score text, title, genres): the ID is left-aligned
    text for string IDs, so it is what comes before the score."""
    import re
    lines = text.splitlines()
    rows = []
    for line in lines[2:]:
        m = re.match(r"^ *(\d+)  (.*?) *  (-?\d+\.\d{6})  (.*?) *  (.*)$", line)
        if not m:
            rows.append(None)
            continue
        rows.append((tsv_unescape(m.group(2)), m.group(3), m.group(4), m.group(5)))
    return lines[0], lines[1], rows


# ---------------------------------------------------------------- questions

def ask_all_formats(bundles, flag, subject, truth, k, desc, extra=(), answers_users=False):
    """One question in table, TSV and JSON: each against the brute force."""
    args = [*bundles, flag, subject, "-k", k, *extra]
    status, out, err = run(QUERY, *args, "--format", "json")
    if not check("%s (json): exit 0" % desc, status == 0, err):
        return
    answer = json.loads(out)
    is_topk(results_of(answer), truth, k, "%s (json): the brute force's top %d" % (desc, k))
    if not answers_users:
        title_genres_ok(answer, desc + " (json)")
    else:
        check(desc + " (json): users have no title", all(r["title"] is None for r in answer["results"]))
    status, out, err = run(QUERY, *args, "--format", "tsv")
    header, rows = parse_tsv(out)
    check("%s (tsv): exit 0 and the header" % desc, status == 0 and header == "rank\tid\tscore\ttitle\tgenres",
          out + err)
    is_topk([(i, s) for i, s, _, _ in rows], truth, k, "%s (tsv)" % desc)
    want_titles = [("-" if answers_users else CATALOG.get(i, ("", []))[0],
                    "" if answers_users else "|".join(CATALOG.get(i, ("", []))[1])) for i, _, _, _ in rows]
    check("%s (tsv): titles and genres" % desc, [(t, g) for _, _, t, g in rows] == want_titles, out)
    status, out, err = run(QUERY, *args)
    heading, colnames, rows = parse_table(out)
    check("%s (table): exit 0, the ID column left-aligned (text)" % desc,
          status == 0 and colnames.startswith("rank  id          ") and None not in rows, out + err)
    if None not in rows:
        is_topk([(i, float(s)) for i, s, _, _ in rows],
                [(i, float("%.6f" % s)) for i, s in truth], k, "%s (table)" % desc)
    return heading


def serve(bundles, requests):
    status, out, err = run(QUERY, *bundles, "--serve-stdin",
                           input="".join(json.dumps(r) + "\n" for r in requests).encode())
    check("--serve-stdin: exit 0", status == 0, err)
    return [json.loads(line) for line in out.splitlines()]


def questions(bundles, tag):
    """Every question over `bundles` (one keyed bundle or its shards)."""
    for user in ["alice", "carol x", "u:1", "\u00fc", "7"]:
        ask_all_formats(bundles, "--user", user, ranked(USERS[user], ITEMS), 5,
                        "%s: --user %s" % (tag, user))
    ask_all_formats(bundles, "--user", "bob", ranked(USERS["bob"], ITEMS, exclude={"a,b", "tt0114709"}),
                    6, "%s: --user bob --exclude a,b --exclude tt0114709" % tag,
                    extra=["--exclude", "a,b", "--exclude", "tt0114709"])
    ask_all_formats(bundles, "--user", "bob",
                    ranked(USERS["bob"], ITEMS, exclude={"tt0114709", "x:y", "nothere"}),
                    6, "%s: --user bob --exclude tt0114709,x:y,nothere" % tag,
                    extra=["--exclude", "tt0114709,x:y,nothere"])
    ask_all_formats(bundles, "--user", "dave/1", ranked(USERS["dave/1"], ITEMS, genres=["Sci-Fi", "Drama"]),
                    4, "%s: --user dave/1 --genre Sci-Fi,Drama" % tag, extra=["--genre", "Sci-Fi,Drama"])
    for item in ["tt0114709", "has space", "a,b", "back\\slash", "123", "-dash", 'quo"te']:
        h = ask_all_formats(bundles, "--item", item, ranked(ITEMS[item], ITEMS, exclude={item}), 5,
                            "%s: --item %s" % (tag, item))
        if item in CATALOG and h is not None:
            check("%s: --item %s: the heading names it and its title" % (tag, item),
                  h.startswith(tsv_escape("# items similar to item %s (%s), metric ip" % (item, CATALOG[item][0]))), h)
    ask_all_formats(bundles, "--item", "x:y", ranked(ITEMS["x:y"], ITEMS, exclude={"x:y", "a/b"}, genres=["Comedy"]),
                    3, "%s: --item x:y --exclude a/b --genre Comedy" % tag,
                    extra=["--exclude", "a/b", "--genre", "Comedy"])
    for user in ["alice", "u:1"]:
        ask_all_formats(bundles, "--similar-users", user, ranked(USERS[user], USERS, exclude={user, "bob"}), 4,
                        "%s: --similar-users %s --exclude bob" % (tag, user), extra=["--exclude", "bob"],
                        answers_users=True)
    for item in ["sku-\u00e4", "a/b"]:
        ask_all_formats(bundles, "--users-for-item", item, ranked(ITEMS[item], USERS), 4,
                        "%s: --users-for-item %s" % (tag, item), answers_users=True)
    q = [0.5, -1, 0.25, 2, 0, -0.75]
    ask_all_formats(bundles, "--vec", ",".join(map(str, q)), ranked(q, ITEMS, exclude={"a/b"}), 7,
                    "%s: --vec --exclude a/b" % tag, extra=["--exclude", "a/b"])
    # the vector of a user in a keyed file; FILE:ID splits after the file
    users_csv = path("users_emb.csv")
    for user in ["u:1", "carol x"]:
        ask_all_formats(bundles, "--user-vec", "%s:%s" % (users_csv, user), ranked(USERS[user], ITEMS), 5,
                        "%s: --user-vec users_emb.csv:%s" % (tag, user))
    ask_all_formats(bundles, "--user-vec", "%s:bob" % users_csv, ranked(USERS["bob"], ITEMS, exclude=SEEN["bob"]),
                    5, "%s: --user-vec bob --exclude-seen seen.csv" % tag,
                    extra=["--exclude-seen=" + path("seen.csv")])
    ask_all_formats(bundles, "--user", "bob", ranked(USERS["bob"], ITEMS, exclude=SEEN["bob"]),
                    5, "%s: --user bob --exclude-seen seen.csv" % tag,
                    extra=["--exclude-seen=" + path("seen.csv")])

    # batches: query IDs as text
    for form in ("tsv", "json"):
        status, out, err = run(QUERY, *bundles, "--batch", users_csv, "-k", 3, "--format", form)
        check("%s: --batch (%s): exit 0" % (tag, form), status == 0, err)
        got = {}
        if form == "tsv":
            header, rows = parse_tsv(out, query_col=True)
            for u, i, s, _, _ in rows:
                got.setdefault(u, []).append((i, s))
        else:
            for line in out.splitlines():
                a = json.loads(line)
                got[a["query"]] = results_of(a)
        check("%s: --batch (%s): a list per user, named by key" % (tag, form), set(got) == set(USER_KEYS), got.keys())
        for u in USER_KEYS:
            is_topk(got.get(u, []), ranked(USERS[u], ITEMS), 3, "%s: --batch (%s): %s" % (tag, form, u))
    status, out, err = run(QUERY, *bundles, "--batch-users", path("batch_users.txt"), "-k", 4, "--format", "json")
    lines = [json.loads(line) for line in out.splitlines()]
    check("%s: --batch-users: in the order asked, named by key" % tag,
          status == 0 and [a["query"] for a in lines] == ["bob", "u:1", "carol x", "\u00fc"], out + err)
    for a in lines:
        is_topk(results_of(a), ranked(USERS[a["query"]], ITEMS), 4, "%s: --batch-users %s" % (tag, a["query"]))

    # the protocol
    reqs = [
        {"id": 1, "user": "carol x", "k": 4},
        {"id": 2, "item": "a,b", "k": 4, "exclude": ["x:y", 123, "nothere"]},
        {"id": 3, "similar_users": "\u00fc", "k": 3},
        {"id": 4, "users_for_item": "\u65e5\u672c", "k": 3, "exclude": ["alice"]},
        {"id": 5, "vector": USERS["bob"], "k": 4, "genres": ["Action"]},
        {"id": 6, "user": "nobody"},
        {"id": 7, "item": 123, "k": 2},
    ]
    truths = [ranked(USERS["carol x"], ITEMS), ranked(ITEMS["a,b"], ITEMS, exclude={"a,b", "x:y", "123"}),
              ranked(USERS["\u00fc"], USERS, exclude={"\u00fc"}), ranked(ITEMS["\u65e5\u672c"], USERS, exclude={"alice"}),
              ranked(USERS["bob"], ITEMS, genres=["Action"]), None, ranked(ITEMS["123"], ITEMS, exclude={"123"})]
    for req, truth, a in zip(reqs, truths, serve(bundles, reqs)):
        if truth is None:
            check("%s: protocol: unknown user key: not_found, quoted" % tag,
                  a["error"] == {"code": "not_found", "message": 'user "nobody" is not in the bundle'}, a)
            continue
        check("%s: protocol %d: the request's id" % (tag, req["id"]), a.get("id") == req["id"], a)
        is_topk(results_of(a) if "results" in a else [], truth, req["k"], "%s: protocol %s" % (tag, req))


def stored_seen_questions(bundle):
    """exclude-seen from the interactions stored by key (one bundle)."""
    for user in USER_KEYS:
        ask_all_formats([bundle], "--user", user, ranked(USERS[user], ITEMS, exclude=SEEN[user]), 5,
                        "--user %s --exclude-seen" % user, extra=["--exclude-seen"])
    a = serve([bundle], [{"user": "bob", "k": 30, "exclude_seen": True}])[0]
    is_topk(results_of(a), ranked(USERS["bob"], ITEMS, exclude=SEEN["bob"]), 30, "protocol: exclude_seen by key")
    status, out, err = run(QUERY, bundle, "--batch-users", path("batch_users.txt"), "-k", 3, "--exclude-seen")
    header, rows = parse_tsv(out, query_col=True)
    got = {}
    for u, i, s, _, _ in rows:
        got.setdefault(u, []).append((i, s))
    for u in ["bob", "u:1", "carol x", "\u00fc"]:
        is_topk(got.get(u, []), ranked(USERS[u], ITEMS, exclude=SEEN[u]), 3, "--batch-users --exclude-seen: %s" % u)


def all_users(bundles, tag, seen):
    extra = ["--exclude-seen"] if seen else []
    excl = (lambda u: SEEN[u]) if seen else (lambda u: ())
    status, out, err = run(QUERY, *bundles, "--all-users", "-k", 3, *extra)
    lines = out.splitlines()
    check("%s: --all-users (tsv): exit 0, the header" % tag, status == 0 and lines[0] == "user\trank\titem\tscore", err)
    got = {}
    for line in lines[1:]:
        u, r, i, s = line.split("\t")
        got.setdefault(tsv_unescape(u), []).append((tsv_unescape(i), float(s)))
    check("%s: --all-users (tsv): every user by key" % tag, set(got) == set(USER_KEYS), got.keys())
    for u in USER_KEYS:
        is_topk(got.get(u, []), ranked(USERS[u], ITEMS, exclude=excl(u)), 3, "%s: --all-users (tsv) %s" % (tag, u))
    status, out, err = run(QUERY, *bundles, "--all-users", "-k", 3, "--format", "json", *extra)
    got = {}
    for line in out.splitlines():
        a = json.loads(line)
        got[a["user"]] = [tuple(p) for p in a["items"]]
    check("%s: --all-users (json): every user by key" % tag, status == 0 and set(got) == set(USER_KEYS), out + err)
    for u in USER_KEYS:
        is_topk(got.get(u, []), ranked(USERS[u], ITEMS, exclude=excl(u)), 3, "%s: --all-users (json) %s" % (tag, u))
    # RESP: bulk strings carry keys with blanks, ':' and UTF-8 as they are
    r = subprocess.run([*VALGRIND, QUERY, *bundles, "--all-users", "-k", "3", "--format", "resp",
                        "--key-prefix", "rec:", "--ttl", "60", *extra], capture_output=True)
    cmds = parse_resp(r.stdout)
    check("%s: --all-users (resp): parses as RESP, DEL RPUSH EXPIRE per user" % tag,
          r.returncode == 0 and cmds is not None and len(cmds) == 3 * len(USER_KEYS), r.stderr)
    lists = {}
    for c in cmds or []:
        if c[0] == b"RPUSH":
            lists[c[1].decode("utf-8")] = [x.decode("utf-8") for x in c[2:]]
    check("%s: --all-users (resp): keys rec:<user key>" % tag,
          set(lists) == {"rec:" + u for u in USER_KEYS}, lists.keys())
    for u in USER_KEYS:
        truth = ranked(USERS[u], ITEMS, exclude=excl(u))
        score = dict(truth)
        got_list = lists.get("rec:" + u, [])
        is_topk([(i, score.get(i)) for i in got_list], truth, 3, "%s: --all-users (resp) %s" % (tag, u))


def parse_resp(data):
    """Arrays of bulk strings, as redis-cli --pipe reads them; None if malformed."""
    cmds, at = [], 0
    try:
        while at < len(data):
            assert data[at:at + 1] == b"*"
            end = data.index(b"\r\n", at)
            n = int(data[at + 1:end])
            at = end + 2
            cmd = []
            for _ in range(n):
                assert data[at:at + 1] == b"$"
                end = data.index(b"\r\n", at)
                size = int(data[at + 1:end])
                cmd.append(data[end + 2:end + 2 + size])
                assert data[end + 2 + size:end + 4 + size] == b"\r\n"
                at = end + 4 + size
            cmds.append(cmd)
    except (AssertionError, ValueError):
        return None
    return cmds


# ---------------------------------------------------------------- scenarios

def build(out, *args):
    status, _, err = run(BUILD, *args, "-o", out, "-q")
    check("ann-build %s: exit 0" % os.path.basename(out), status == 0, err)
    return out


def keyed():
    write_inputs()
    b = build(path("k.annb"), path("movies_emb.csv"), path("movies.csv"), "--users", path("users_emb.csv"),
              "--interactions", path("seen.csv"))
    status, out, err = run(INSPECT, b, "--verify")
    check("ann-inspect: string IDs for items and users",
          status == 0 and "\nitems       %d (string IDs)\n" % len(ITEMS) in out and
          "\nusers       %d (string IDs, with interactions)\n" % len(USERS) in out, out + err)
    status, out, err = run(INSPECT, b, "--json")
    meta = json.loads(out)["metadata"] if status == 0 else {}
    check("ann-inspect --json: item_ids and user_ids", meta.get("item_ids") == "string" and
          meta.get("user_ids") == "string", out + err)
    status, _, err = run(BUILD, path("movies_emb.csv"), path("movies.csv"), "--users", path("users_emb.csv"),
                         "--interactions", path("seen.csv"), "-o", path("k2.annb"))
    check("ann-build: interactions joined by key (skipped pairs counted)",
          "seen.csv: %d stored, 2 skipped" % sum(len(s) for s in SEEN.values()) in err, err)
    check("ann-build: the catalog joined by key",
          "movies.csv: %d entries; 4 items without a catalog entry, 2 catalog entries without a vector"
          % len(CATALOG) in err, err)
    questions([b], "keyed")
    stored_seen_questions(b)
    all_users([b], "keyed", seen=False)
    all_users([b], "keyed", seen=True)
    # shards of the same inputs, asked together: the same answers
    shards = [build(path("s%d.annb" % i), path("movies_emb.csv"), path("movies.csv"), "--users",
                    path("users_emb.csv"), "--shard", "%d/3" % i) for i in range(3)]
    counts = []
    for s in shards:
        status, out, _ = run(INSPECT, s, "--json")
        counts.append(json.loads(out)["metadata"]["items"] if status == 0 else 0)
    check("shards: every item in exactly one shard", sum(counts) == len(ITEMS) and all(counts), counts)
    questions(shards, "3 shards")
    all_users(shards, "3 shards", seen=False)
    for q in (["--item", "a,b"], ["--user", "u:1"], ["--users-for-item", "x:y"]):
        one = run(QUERY, b, *q, "-f", "json")[1]
        many = run(QUERY, *shards, *q, "-f", "json")[1]
        check("shards %s: the results of the whole bundle" % q,
              json.loads(one)["results"] == json.loads(many)["results"], "%s\n%s" % (one, many))
    return b


def other_forms():
    """item2vec word,vector; JSON lines; word2vec text: the same words and
    vectors give the same bundle, and answers by word."""
    words = ["the", "of", "na\u00efve", "x:y", "a,b", "12", "caf\u00e9s", "-1x"]
    vecs = dict(zip(words, vectors(len(words), 5)))
    write_csv("words.csv", ["word", "vector"], [(w, json.dumps(v)) for w, v in vecs.items()])
    with open(path("words.jsonl"), "w", encoding="utf-8") as f:
        for w, v in reversed(list(vecs.items())):
            f.write(json.dumps({"word": w, "vector": v}, ensure_ascii=False) + "\n")
    with open(path("words.vec"), "w", encoding="utf-8") as f:
        f.write("%d %d\n" % (len(vecs), D))
        for w, v in vecs.items():
            f.write(w + " " + " ".join(repr(x) for x in v) + "\n")
    built = [build(path("w-%s.annb" % ext), path("words." + ext)) for ext in ("csv", "jsonl", "vec")]
    same = [open(b, "rb").read() for b in built]
    check("words as CSV, JSON lines and word2vec text: the same bundle", same[0] == same[1] == same[2])
    for b in built:
        for w in ("na\u00efve", "a,b", "12"):
            status, out, err = run(QUERY, b, "--item", w, "-k", 4, "-f", "json")
            a = json.loads(out) if status == 0 else {"results": []}
            is_topk(results_of(a), ranked(vecs[w], vecs, exclude={w}), 4, "%s --item %s" % (os.path.basename(b), w))
    # "007" stays "007" with --string-ids; without it, digits are integers
    write_csv("digits.csv", ["id", "features"], [("007", "[1,0]"), ("7", "[0.5,0.5]"), ("42", "[0,1]")])
    status, _, err = run(BUILD, path("digits.csv"), "-o", path("d.annb"))
    check("digits without --string-ids: integers, so 007 and 7 are one ID twice (exit 1)",
          status == 1 and "expected unique IDs, found ID 7 again" in err, err)
    b = build(path("d.annb"), path("digits.csv"), "--string-ids")
    status, out, err = run(QUERY, b, "--item", "007", "-f", "json")
    a = json.loads(out) if status == 0 else {"results": []}
    check("--string-ids: --item 007 answers 7 and 42 as string IDs",
          [(r["id"], r["score"]) for r in a["results"]] == [("7", 0.5), ("42", 0)], out + err)
    status, out, err = run(QUERY, b, "--item", "7", "-f", "tsv", "-k", 1)
    check("--string-ids: 7 is not 007", status == 0 and out.splitlines()[1:] == ["1\t007\t0.5\t\t"], out + err)


def mixed():
    """String item IDs, integer user IDs; movies.dat (latin-1) keyed; the
    interactions' header told by its user column's name."""
    user_ids = [10, 20, 30, -4]
    users = dict(zip(user_ids, vectors(4, 77)))
    write_csv("int_users.csv", ["id", "features"], [(u, json.dumps(v)) for u, v in users.items()])
    with open(path("movies.dat"), "w", encoding="latin-1") as f:
        f.write("tt0114709::Toy Story (1995)::Animation|Comedy\nsku-\u00e4::Caf\u00e9 (2001)::Drama\n")
    write_csv("int_seen.csv", ["userId", "movieId"], [(10, "tt0114709"), (10, "a,b"), (20, "x:y")])
    b = build(path("mixed.annb"), path("movies_emb.csv"), path("movies.dat"), "--users", path("int_users.csv"),
              "--interactions", path("int_seen.csv"))
    status, out, _ = run(INSPECT, b, "--json")
    meta = json.loads(out)["metadata"] if status == 0 else {}
    check("mixed: string item IDs, integer user IDs", (meta.get("item_ids"), meta.get("user_ids")) ==
          ("string", "integer"), meta)
    status, out, err = run(QUERY, b, "--user", 10, "--exclude-seen", "-k", 5, "-f", "json")
    a = json.loads(out) if status == 0 else {"results": []}
    is_topk(results_of(a), ranked(users[10], ITEMS, exclude={"tt0114709", "a,b"}), 5, "mixed: --user 10 --exclude-seen")
    status, out, err = run(QUERY, b, "--item", "sku-\u00e4", "-k", 1, "-f", "json")
    check("mixed: movies.dat (latin-1) titles joined by key",
          status == 0 and json.loads(out)["question"] == "items similar to item sku-\u00e4 (Caf\u00e9 (2001))",
          out + err)
    status, out, err = run(QUERY, b, "--users-for-item", "sku-\u00e4", "-k", 4, "-f", "tsv")
    header, rows = parse_tsv(out)
    is_topk([(int(i), s) for i, s, _, _ in rows], ranked(ITEMS["sku-\u00e4"], users), 4,
            "mixed: --users-for-item answers integer users")
    status, out, err = run(QUERY, b, "--all-users", "-k", 2, "-f", "json")
    got = {json.loads(l)["user"]: [tuple(p) for p in json.loads(l)["items"]] for l in out.splitlines()}
    check("mixed: --all-users names users by integer", set(got) == set(user_ids), out + err)
    for u in user_ids:
        is_topk(got.get(u, []), ranked(users[u], ITEMS), 2, "mixed: --all-users %d" % u)
    a = serve([b], [{"user": 20, "k": 3, "exclude": ["x:y"]}, {"user": "20", "k": 3, "exclude": ["x:y"]}])
    is_topk(results_of(a[0]), ranked(users[20], ITEMS, exclude={"x:y"}), 3, "mixed: protocol user 20")
    check("mixed: protocol user \"20\" = user 20", a[0]["results"] == a[1]["results"], a)
    for args, code, message in [
        (["--user", "alice"], 2, 'mixed.annb: user ID "alice": expected an integer (the bundle\'s user IDs are integers)'),
        (["--similar-users", "10", "--exclude", "x"], 2, 'mixed.annb: user ID "x": expected an integer'),
        (["--item", "10"], 4, 'mixed.annb: item "10" is not in the bundle'),
    ]:
        status, out, err = run(QUERY, b, *args)
        check("mixed: %s: exit %d, %s" % (args, code, message), status == code and message in err and out == "",
              "%d %s" % (status, err))


def errors(keyed_bundle):
    b = keyed_bundle
    cases = [
        (["--item", "nothere"], 4, 'k.annb: item "nothere" is not in the bundle'),
        (["--user", "carol"], 4, 'k.annb: user "carol" is not in the bundle'),
        (["--similar-users", "Alice"], 4, 'user "Alice" is not in the bundle'),
        (["--users-for-item", "TT0114709"], 4, 'item "TT0114709" is not in the bundle'),
        (["--item", "bad\x01key"], 4, 'item "bad\\x01key" is not in the bundle'),
        (["--user-vec", path("users_emb.csv") + ":nobody"], 4, 'users_emb.csv: no vector with ID "nobody"'),
        (["--user-vec", path("users_emb.csv") + ":"], 2, "--user-vec expects FILE:ID"),
        (["--user-vec", path("no-such.csv") + ":alice"], 3, "no-such.csv"),
    ]
    with open(path("unknown_users.txt"), "w") as f:
        f.write("alice\ncarol\n")
    cases.append((["--batch-users", path("unknown_users.txt")], 4,
                  'unknown_users.txt: user "carol" is not in the bundle'))
    for args, code, message in cases:
        status, out, err = run(QUERY, b, *args)
        check("%s: exit %d, %s" % (args, code, message),
              status == code and message in err and err.startswith("ann-query: ") and out == "",
              "%d %s" % (status, err))
    a = serve([b], [{"item": "nothere"}, {"item": ""}, {"similar_users": ["alice"]}])
    check("protocol: unknown item key", a[0]["error"]["code"] == "not_found" and
          a[0]["error"]["message"] == 'item "nothere" is not in the bundle', a[0])
    check("protocol: empty item key: not found", a[1]["error"]["code"] == "not_found", a[1])
    check("protocol: an ID that is neither string nor integer", a[2]["error"]["code"] == "invalid_request", a[2])
    # integer text on an integer bundle: the strict rule
    ints = write_csv("ints.csv", ["id", "features"], [(i, json.dumps(v)) for i, v in enumerate(vectors(5, 3))])
    ib = build(path("ints.annb"), ints)
    for args, code, message in [
        (["--item", "abc"], 2, 'ints.annb: item ID "abc": expected an integer (the bundle\'s item IDs are integers)'),
        (["--item", "+1"], 2, 'item ID "+1": expected an integer'),
        (["--item", "1", "--exclude", "2,x"], 2, 'item ID "x": expected an integer'),
        (["--item", "9"], 4, "item 9 is not in the bundle"),
    ]:
        status, out, err = run(QUERY, ib, *args)
        check("integer bundle %s: exit %d, %s" % (args, code, message), status == code and message in err,
              "%d %s" % (status, err))
    # keys that cannot be IDs, at build time
    for name, rows, message in [
        ("ctl.csv", [("ok", "[1]"), ("bad\x01", "[2]")], "ctl.csv:3:1: expected an integer or a string ID"),
        ("long.csv", [("ok", "[1]"), ("x" * 300, "[2]")], "long.csv:3:1: expected an integer or a string ID"),
        ("float.csv", [("ok", "[1]"), ("12.0", "[2]")],
         'float.csv:3:1: expected an integer ID (optional sign and decimal digits), found "12.0" '
         "(pass --string-ids to take every ID as text)"),
        ("dup.csv", [("ok", "[1]"), ("ok", "[2]")], "dup.csv:3:1: expected unique IDs"),
    ]:
        write_csv(name, ["id", "features"], rows)
        status, _, err = run(BUILD, path(name), "-o", path("x.annb"))
        check("ann-build %s: exit 1, %s" % (name, message), status == 1 and message in err, err)


def main():
    b = keyed()
    other_forms()
    mixed()
    errors(b)
    print("keys: %d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        import shutil
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(rc)
