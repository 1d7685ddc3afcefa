# brute.awk - an independent brute-force top-k over a Spark-form embeddings
# CSV (`id,"[v0, v1, ...]"`), printing what `ann-query --format tsv` must print.
#
#   awk -f brute.awk -v q=V0,V1,... -v metric=ip|l2|cosine -v k=N \
#       [-v exclude=ID,ID,...] [-v catalog=FILE] [-v genres=G,G,...] \
#       [-v users=1] items.csv
#
# catalog: UTF-8 `ID::Title::Genres` lines (a latin-1 movies.dat through iconv).
# genres: keep only rows whose catalog entry has one of these genres.
# users=1: the rows are users (e.g. users.csv): title "-", no genres, as
# ann-query prints user answers.
# Scores are computed in double precision and printed with %.9g, as the tool
# prints its float scores: with dyadic fixture values (multiples of 1/8) the
# ip and l2 scores are exact in float and double, so the text must match byte
# for byte. Exits 3 if two of the first k+1 scores tie within 1e-6: the
# fixture would then not pin down one expected order.

function score(row,    j, dot, qq, vv, diff, l2) {
    dot = 0; qq = 0; vv = 0; l2 = 0
    for (j = 1; j <= dim; j++) {
        dot += Q[j] * V[row, j]
        qq += Q[j] * Q[j]
        vv += V[row, j] * V[row, j]
        diff = Q[j] - V[row, j]
        l2 += diff * diff
    }
    if (metric == "ip") return dot
    if (metric == "l2") return l2
    if (metric == "cosine") return (qq > 0 && vv > 0) ? dot / sqrt(qq * vv) : 0
    print "brute.awk: unknown metric " metric > "/dev/stderr"
    exit 2
}

function better(a, b) { return metric == "l2" ? a < b : a > b }

function abs(x) { return x < 0 ? -x : x }

function genre_ok(id,    n, i, g) {
    if (ng == 0) return 1
    n = split(genres_of[id], g, "|")
    for (i = 1; i <= n; i++) if (g[i] in wanted) return 1
    return 0
}

BEGIN {
    dim = split(q, Q, ",")
    nx = split(exclude, X, ",")
    for (i = 1; i <= nx; i++) excluded[X[i]] = 1
    ng = split(genres, G, ",")
    for (i = 1; i <= ng; i++) wanted[G[i]] = 1
    if (catalog != "") {
        while ((getline line < catalog) > 0) {
            split(line, f, "::")
            title[f[1]] = f[2]
            genres_of[f[1]] = f[3]
        }
        close(catalog)
    }
}

NR == 1 { next } # header

{
    id = substr($0, 1, index($0, ",") - 1)
    if (id in excluded || !genre_ok(id)) next
    rest = substr($0, index($0, ",") + 1)
    gsub(/[\[\]" ]/, "", rest)
    if (split(rest, vals, ",") != dim) {
        print "brute.awk: line " NR " has " length(vals) " values, the query " dim > "/dev/stderr"
        exit 2
    }
    n++
    ids[n] = id
    for (j = 1; j <= dim; j++) V[n, j] = vals[j] + 0
    S[n] = score(n)
}

END {
    # Insertion sort: best first.
    for (i = 2; i <= n; i++) {
        s = S[i]; t = ids[i]
        for (j = i - 1; j >= 1 && better(s, S[j]); j--) { S[j + 1] = S[j]; ids[j + 1] = ids[j] }
        S[j + 1] = s; ids[j + 1] = t
    }
    shown = k < n ? k : n
    for (i = 1; i < shown + (shown < n) ; i++)
        if (abs(S[i] - S[i + 1]) <= 1e-6) {
            print "brute.awk: scores of " ids[i] " and " ids[i + 1] " tie: fix the fixture" > "/dev/stderr"
            exit 3
        }
    printf "rank\tid\tscore\ttitle\tgenres\n"
    for (i = 1; i <= shown; i++)
        printf "%d\t%s\t%.9g\t%s\t%s\n", i, ids[i], S[i], users ? "-" : title[ids[i]],
            users ? "" : genres_of[ids[i]]
}
