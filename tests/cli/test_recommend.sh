#!/bin/bash
# test_recommend.sh - ann-query's recommendation modes as processes: users
# stored in the bundle, seen items excluded (stored or from a file at query
# time), ID and genre filters, user answers, batches, every user, the JSON
# protocol on stdin, and shard bundles merged. Answers are checked against
# the independent brute force brute.awk.
#
#   bash test_recommend.sh ANN-BUILD ANN-QUERY
#
# Fixtures: tests/data/cli/items.csv and movies.dat (see test_cli.sh); the
# users (40 rows, values multiples of 1/64 so ip scores are exact in float)
# and the ratings are generated here, deterministically.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

need_args 2 "ANN-BUILD ANN-QUERY" "$@"
BUILD=$1 QUERY=$2
valgrind_wrap BUILD QUERY
DATA=$HERE/../data/cli
ITEMS=$DATA/items.csv
export LC_ALL=C

W=$TMP/work
mkdir -p "$W"
iconv -f latin1 -t utf-8 "$DATA/movies.dat" >"$W/movies.utf8" || exit 99

# 40 users, IDs 10, 20, ..., 400.
USERS=$W/users.csv
gen_vectors 40 4 20240601 10 0 >"$USERS"

# Who saw what. User 20 saw 8 of the 12 items; user 10 three; user 40 one;
# two pairs name an unknown user or item (skipped by the build).
SEEN_10=2571,10,1
SEEN_20=2571,10,1,3000000000,260,1196,42,-7
SEEN_40=593
{
    for u in 10 20 40; do
        seen=SEEN_$u
        for item in ${!seen//,/ }; do printf '%s::%s::4::978300760\n' $u "$item"; done
    done
    printf '11::2571::5::978300760\n10::999::3::978300760\n'
} >"$W/ratings.dat"
awk -F '::' 'BEGIN { print "userId,movieId,rating,timestamp" } { print $1 "," $2 "," $3 "," $4 }' \
    "$W/ratings.dat" >"$W/ratings.csv"
awk -F '::' '{ print $1 "," $2 }' "$W/ratings.dat" >"$W/pairs.csv"

seen_of() { local v=SEEN_$1; printf '%s' "${!v-}"; }

# expect_brute DESC CSV METRIC K QUERY [EXCLUDE [GENRES [USERS]]]: the last
# run's stdout is the brute force's answer over CSV, byte for byte.
expect_brute() {
    local desc=$1 csv=$2
    if ! awk -f "$HERE/brute.awk" -v metric="$3" -v k="$4" -v q="$5" -v exclude="${6-}" \
        -v genres="${7-}" -v users="${8-}" -v catalog="$W/movies.utf8" "$csv" >"$W/expected.tsv"; then
        fail "$desc: brute.awk failed"
        return
    fi
    expect_status 0
    if cmp -s "$W/expected.tsv" "$TMP/stdout"; then pass; else
        fail "$desc: stdout differs from the brute force:
$(diff "$W/expected.tsv" "$TMP/stdout" | head -20)"
    fi
}

# ---------------------------------------------------------------- building
REC=$W/rec.annb
run "$BUILD" "$ITEMS" "$DATA/movies.dat" --users "$USERS" --interactions "$W/ratings.dat" -o "$REC"
expect_status 0
expect_stderr_contains "ann-build: 40 user vectors"
expect_stderr_contains "12 stored, 2 skipped"
COS=$W/cos.annb # users, no interactions
run "$BUILD" "$ITEMS" "$DATA/movies.dat" --users "$USERS" -o "$COS" --metric cosine
expect_status 0
PLAIN=$W/plain.annb # no users
run "$BUILD" "$ITEMS" "$DATA/movies.dat" -o "$PLAIN"
expect_status 0

# ---------------------------------------------------------------- --user
for user in 10 20 70 400; do
    q=$(vector_of "$USERS" $user)
    for k in 1 5 12; do
        run "$QUERY" "$REC" --user $user -k $k --format tsv
        expect_brute "--user $user -k $k" "$ITEMS" ip $k "$q"
        expect_stderr_empty
    done
    run "$QUERY" "$COS" --user $user -k 5 --format tsv
    expect_status 0
    awk -f "$HERE/brute.awk" -v metric=cosine -v k=5 -v q="$q" -v catalog="$W/movies.utf8" \
        "$ITEMS" >"$W/expected.tsv"
    check "--user $user on a cosine bundle" tsv_close "$W/expected.tsv" "$TMP/stdout"
done
run "$QUERY" "$REC" --user 10 -k 3
expect_status 0
expect_stdout_matches '^# items for user 10, metric ip'

# ---------------------------------------------------------------- --exclude-seen
for user in 10 20 40 70; do
    q=$(vector_of "$USERS" $user)
    run "$QUERY" "$REC" --user $user -k 4 --exclude-seen --format tsv
    expect_brute "--user $user --exclude-seen (stored)" "$ITEMS" ip 4 "$q" "$(seen_of $user)"
    for file in ratings.dat ratings.csv pairs.csv; do
        run "$QUERY" "$REC" --user $user -k 4 --exclude-seen "$W/$file" --format tsv
        expect_brute "--user $user --exclude-seen $file" "$ITEMS" ip 4 "$q" "$(seen_of $user)"
    done
    run "$QUERY" "$REC" --user $user -k 4 --exclude-seen="$W/ratings.dat" --format tsv
    expect_brute "--exclude-seen=FILE" "$ITEMS" ip 4 "$q" "$(seen_of $user)"
    # The vector from the users' file, on a bundle without users.
    run "$QUERY" "$PLAIN" --user-vec "$USERS:$user" -k 4 --exclude-seen "$W/ratings.csv" --format tsv
    expect_brute "--user-vec $user --exclude-seen FILE" "$ITEMS" ip 4 "$q" "$(seen_of $user)"
done
# The option before the bundle: a word ending in .annb is the bundle.
run "$QUERY" --exclude-seen "$REC" --user 20 -k 4 --format tsv
expect_brute "--exclude-seen BUNDLE" "$ITEMS" ip 4 "$(vector_of "$USERS" 20)" "$SEEN_20"
# User 20 saw 8 of 12: k=4 fills exactly, k=6 gets the 4 that remain.
run "$QUERY" "$REC" --user 20 -k 6 --exclude-seen --format tsv
expect_brute "--user 20 -k 6, 8 of 12 seen" "$ITEMS" ip 6 "$(vector_of "$USERS" 20)" "$SEEN_20"
expect_stderr_contains "ann-query: only 4 of 6 results: fewer items pass the filters"
check "4 answers" test "$(wc -l <"$TMP/stdout")" -eq 5

# ---------------------------------------------------------------- --exclude, --genre
q=$(vector_of "$USERS" 30)
run "$QUERY" "$REC" --user 30 -k 8 --exclude 1,260 --exclude 5 --format tsv
expect_brute "--exclude" "$ITEMS" ip 8 "$q" "1,260,5"
run "$QUERY" "$REC" --item 2571 -k 8 --exclude 10,1 --format tsv
expect_brute "--item --exclude" "$ITEMS" ip 8 "$(vector_of "$ITEMS" 2571)" "2571,10,1"
for genres in Comedy Drama,Thriller "Children's" Action,Sci-Fi,War; do
    run "$QUERY" "$REC" --user 30 -k 5 --genre "$genres" --format tsv
    expect_brute "--genre $genres" "$ITEMS" ip 5 "$q" "" "$genres"
done
run "$QUERY" "$REC" --user 30 -k 5 --genre Drama --genre Thriller --format tsv
expect_brute "--genre twice" "$ITEMS" ip 5 "$q" "" "Drama,Thriller"
run "$QUERY" "$REC" --vec "0.5,-1.25,2,0.125" -k 3 --genre Drama --exclude 593 --format tsv
expect_brute "--vec --genre --exclude" "$ITEMS" ip 3 "0.5,-1.25,2,0.125" "593" "Drama"
run "$QUERY" "$REC" --user 10 -k 5 --genre Action --exclude-seen --format tsv
expect_brute "--genre --exclude-seen" "$ITEMS" ip 5 "$(vector_of "$USERS" 10)" "$SEEN_10" Action
run "$QUERY" "$REC" --user 10 --genre Comedy,Nope
expect_failure ann-query 4 'rec\.annb: unknown genre "Nope"' \
    "the genres are: Action, Adventure, Animation, Children's, Comedy, Drama, Fantasy, Musical, Romance, Sci-Fi, Thriller, War$"
expect_stdout_empty
run "$QUERY" "$REC" --vec "1,2,3,4" --genre comedy
expect_failure ann-query 4 'unknown genre "comedy"'
"$BUILD" -q "$ITEMS" -o "$W/nocat.annb"
run "$QUERY" "$W/nocat.annb" --item 2571 --genre Drama
expect_failure ann-query 1 "has no catalog genres"

# ---------------------------------------------------------------- user answers
for user in 10 130 400; do
    q=$(vector_of "$USERS" $user)
    run "$QUERY" "$REC" --similar-users $user -k 6 --format tsv
    expect_brute "--similar-users $user" "$USERS" ip 6 "$q" $user "" 1
    run "$QUERY" "$REC" --similar-users $user -k 4 --exclude 20,30 --format tsv
    expect_brute "--similar-users $user --exclude" "$USERS" ip 4 "$q" "$user,20,30" "" 1
done
for item in 2571 -7 3000000000; do
    run "$QUERY" "$REC" --users-for-item "$item" -k 7 --format tsv
    expect_brute "--users-for-item $item" "$USERS" ip 7 "$(vector_of "$ITEMS" "$item")" "" "" 1
done
run "$QUERY" "$REC" --users-for-item 2571 -k 2 --format json
expect_status 0
expect_stdout_matches '^\{"question":"users for item 2571 \(Matrix, The \(1999\)\)","metric":"ip","index":"Flat","results":\[\{"rank":1,"id":[0-9]+,"score":[-0-9.e]+,"title":null,"genres":\[\]\},'
run "$QUERY" "$REC" --similar-users 10 -k 2
expect_stdout_matches '^# users similar to user 10, metric ip'
expect_stdout_matches '^ +1 +[0-9]+ +-?[0-9]+\.[0-9]{6}  - +$'
run "$QUERY" "$REC" --similar-users 10 -k 45 --format tsv
expect_status 0
expect_stderr_contains "only 39 of 45 results: the bundle has fewer users"

# IDs as the protocol takes them in strings: no '+', no blanks (the
# library reads the text in the bundle's user space, and says so)
for id in +10 " 10" "10 "; do
    run "$QUERY" "$REC" --user "$id"
    expect_failure ann-query 2
    expect_stderr_contains "rec.annb: user ID \"$id\": expected an integer (the bundle's user IDs are integers)"
done

# ---------------------------------------------------------------- not found, missing data
run "$QUERY" "$REC" --user 11
expect_failure ann-query 4 "user 11 is not in the bundle"
expect_stdout_empty
run "$QUERY" "$REC" --similar-users 11
expect_failure ann-query 4 "user 11"
run "$QUERY" "$REC" --users-for-item 999
expect_failure ann-query 4 "item 999 is not in the bundle"
for question in "--user 10" "--similar-users 10" "--users-for-item 2571" "--all-users"; do
    run "$QUERY" "$PLAIN" $question
    expect_failure ann-query 1 "plain\.annb: the bundle has no users \(build with --users\)"
    expect_stdout_empty
done
run "$QUERY" "$COS" --user 10 --exclude-seen
expect_failure ann-query 1 "cos\.annb: the bundle has no interactions"
run "$QUERY" "$REC" --user 10 --exclude-seen "$W/no-such-ratings.dat"
expect_failure ann-query 3 "no-such-ratings\.dat"
printf '10::2571::5\n10::x::1\n' >"$W/bad-ratings.dat"
run "$QUERY" "$REC" --user 10 --exclude-seen "$W/bad-ratings.dat"
expect_failure ann-query 1 "bad-ratings\.dat:2:"

# ---------------------------------------------------------------- usage
usage_cases=(
    "--item 2571 --exclude-seen"
    "--vec 1,2,3,4 --exclude-seen"
    "--user-vec $USERS:10 --exclude-seen"
    "--item 2571 --exclude-seen $W/ratings.dat"
    "--batch-users $W/ratings.dat --exclude-seen $W/ratings.dat"
    "--similar-users 10 --genre Drama"
    "--users-for-item 2571 --genre Drama"
    "--user 10 --format resp"
    "--user 10 --key-prefix x:"
    "--all-users --ttl 60"
    "--all-users --format table"
    "--batch $USERS --format table"
    "--serve-stdin -k 5"
    "--serve-stdin --genre Drama"
    "--serve-stdin --format json"
    "--user 10 --item 2571"
    "--user 10 --user 20"
    "--user abc"
    "--similar-users 1.5"
    "--users-for-item x"
    "--user 10 --exclude 1,x"
    "--user 10 --genre="
    "--user 10 --exclude-seen="
    "--all-users --format resp --ttl 0"
)
for args in "${usage_cases[@]}"; do
    run "$QUERY" "$REC" $args
    expect_usage_error ann-query
done
run "$QUERY" --user 10
expect_usage_error ann-query
expect_stderr_contains "expected at least one BUNDLE"

# ---------------------------------------------------------------- --batch, --batch-users
# Expected: the brute force for each query of the file, in file order,
# each row prefixed with the query's ID.
batch_expected() { # batch_expected CSV K [users-with-seen]
    printf 'query_id\trank\tid\tscore\ttitle\tgenres\n'
    awk -F, 'NR > 1 { print $1 }' "$1" | while read -r qid; do
        awk -f "$HERE/brute.awk" -v metric=ip -v k="$2" -v q="$(vector_of "$1" "$qid")" \
            -v exclude="${3:+$(seen_of "$qid")}" -v catalog="$W/movies.utf8" "$ITEMS" |
            awk -v id="$qid" 'NR > 1 { print id "\t" $0 }'
    done
}
batch_expected "$USERS" 3 >"$W/batch.tsv"
run "$QUERY" "$REC" --batch "$USERS" -k 3
expect_status 0
expect_stdout_equals "$W/batch.tsv"
expect_stderr_empty
run "$QUERY" "$PLAIN" --batch "$USERS" -k 3 --format tsv -v
expect_stdout_equals "$W/batch.tsv"
expect_stderr_matches '^ann-query: 40 queries read in [0-9.]+ s, answered in [0-9.]+ s \([0-9]+ queries/s\), top 3$'
run "$QUERY" "$REC" --batch "$USERS" -k 3 --format json
expect_status 0
check "40 JSON lines" test "$(grep -c '^{"query":[0-9]*,"results":\[{"rank":1,' "$TMP/stdout")" -eq 40
expect_stdout_contains '{"query":10,"results":[{"rank":1,"id":'"$(awk -F '\t' '$1 == 10 && $2 == 1 { print $3 }' "$W/batch.tsv")"','
# The users of the file, by ID: the same answers, in the order asked.
awk -F, 'NR > 1 { print $1 }' "$USERS" >"$W/users.txt"
run "$QUERY" "$REC" --batch-users "$W/users.txt" -k 3
expect_stdout_equals "$W/batch.tsv"
batch_expected "$USERS" 4 seen >"$W/batch-seen.tsv"
run "$QUERY" "$REC" --batch-users "$W/users.txt" -k 4 --exclude-seen
expect_stdout_equals "$W/batch-seen.tsv"
printf '10\n\n20\n' >"$W/blank.txt"
run "$QUERY" "$REC" --batch-users "$W/blank.txt" -k 1
expect_status 0
check "blank lines skipped" test "$(wc -l <"$TMP/stdout")" -eq 3
printf '10\n11\n' >"$W/unknown.txt"
run "$QUERY" "$REC" --batch-users "$W/unknown.txt"
expect_failure ann-query 4 "unknown\.txt: user 11 is not in the bundle"
expect_stdout_empty
printf '10\nten\n' >"$W/bad.txt"
run "$QUERY" "$REC" --batch-users "$W/bad.txt"
expect_failure ann-query 1 "bad\.txt:2:1: expected a user ID"
printf 'id,features\n1,"[1, 2, 3]"\n' >"$W/dim3.csv"
run "$QUERY" "$REC" --batch "$W/dim3.csv"
expect_failure ann-query 1 "dimension"
run "$QUERY" "$REC" --batch "$W/no-such.csv"
expect_failure ann-query 3 "no-such\.csv"

# ---------------------------------------------------------------- --all-users
run "$QUERY" "$REC" --all-users -k 3
expect_status 0
expect_stderr_matches '^ann-query: top 3 for 40 users in [0-9.]+ s \([0-9]+ users/s\)$'
check "a header and 3 rows per user" test "$(wc -l <"$TMP/stdout")" -eq 121
expect_stdout_matches $'^user\trank\titem\tscore$'
awk -F '\t' 'NR > 1 { print $1 "\t" $2 "\t" $3 "\t" $4 }' "$W/batch.tsv" | sort >"$W/all.expected"
tail -n +2 "$TMP/stdout" | sort >"$W/all.actual"
check "--all-users = the brute force of every user" cmp -s "$W/all.expected" "$W/all.actual"
run "$QUERY" "$REC" --all-users -k 4 --exclude-seen --format json
expect_status 0
check "40 JSON lines" test "$(grep -c '^{"user":-\?[0-9]*,"items":\[\[' "$TMP/stdout")" -eq 40
expected20=$(awk -F '\t' '$1 == 20 { printf "%s[%s,%s]", n++ ? "," : "", $3, $4 }' "$W/batch-seen.tsv")
expect_stdout_contains "{\"user\":20,\"items\":[$expected20]}"
run "$QUERY" "$REC" --all-users -k 2 --format resp
expect_status 0
expect_stderr_matches '^ann-query: keys annb:[0-9a-f]{16}:user:<user>$'
check "resp: one DEL per user" test "$(grep -c '^DEL'$'\r''$' "$TMP/stdout")" -eq 40
check "resp: one RPUSH per user" test "$(grep -c '^RPUSH'$'\r''$' "$TMP/stdout")" -eq 40
check "resp: no EXPIRE without --ttl" test "$(grep -c '^EXPIRE' "$TMP/stdout")" -eq 0
top10=$(awk -F '\t' '$1 == 10 && $2 <= 2 { print $3 }' "$W/batch.tsv")
printf '*2\r\n$3\r\nDEL\r\n$29\r\nannb:%s:user:10\r\n*4\r\n$5\r\nRPUSH\r\n$29\r\nannb:%s:user:10\r\n' \
    "$(grep -aom1 'annb:[0-9a-f]*' "$TMP/stdout" | cut -d: -f2)" \
    "$(grep -aom1 'annb:[0-9a-f]*' "$TMP/stdout" | cut -d: -f2)" >"$W/resp.expected"
for id in $top10; do printf '$%d\r\n%s\r\n' ${#id} "$id"; done >>"$W/resp.expected"
check "resp: DEL then RPUSH of user 10's items, in rank order" \
    cmp -s "$W/resp.expected" <(head -c "$(wc -c <"$W/resp.expected")" "$TMP/stdout")
run "$QUERY" "$REC" --all-users -k 2 --format resp --key-prefix 'rec:v2:' --ttl 3600
expect_status 0
expect_stdout_contains $'$9\r\nrec:v2:10\r\n'
check "resp: one EXPIRE per user" test "$(grep -c '^EXPIRE'$'\r''$' "$TMP/stdout")" -eq 40
expect_stdout_contains $'*3\r\n$6\r\nEXPIRE\r\n$9\r\nrec:v2:10\r\n$4\r\n3600\r\n'

# ---------------------------------------------------------------- --serve-stdin
u10=$(awk -F '\t' '$1 == 10 { print $3 }' "$W/batch-seen.tsv" | head -3 | tr '\n' ' ')
cat >"$W/requests.jsonl" <<'EOF'
{"id": 1, "user": 10, "k": 3, "exclude_seen": true}
{"id": "two", "item": 2571, "k": 2, "genres": ["Drama"]}
this is not JSON

{"id": 5, "user": 11}
{"id": 6, "similar_users": 10, "k": 1, "genres": ["Comedy"]}
{"id": 7, "vector": [0.5, -1.25, 2, 0.125], "k": 3}
{"id": 8, "user": 10, "k": 0}
{"id": 9, "users_for_item": 2571, "k": 1}
EOF
run "$QUERY" "$REC" --serve-stdin <"$W/requests.jsonl"
expect_status 0
expect_stderr_empty
check "one answer per request line" test "$(wc -l <"$TMP/stdout")" -eq "$(wc -l <"$W/requests.jsonl")"
check "every answer is one JSON object" test -z "$(grep -v '^{"id":.*}$' "$TMP/stdout")"
answer_ids() { sed -n "$1p" "$TMP/stdout" | grep -o '"rank":[0-9]*,"id":-\?[0-9]*' | sed 's/.*"id"://' | tr '\n' ' '; }
check "answer 1 = the brute force over unseen items" test "$(answer_ids 1)" = "$u10"
expect_stdout_matches '^\{"id":1,"metric":"ip","space":"items","results":\[\{"rank":1,'
awk -f "$HERE/brute.awk" -v metric=ip -v k=2 -v q="$(vector_of "$ITEMS" 2571)" -v exclude=2571 \
    -v genres=Drama -v catalog="$W/movies.utf8" "$ITEMS" >"$W/expected.tsv"
check "answer 2 = the brute force over Drama" \
    test "$(answer_ids 2)" = "$(awk -F '\t' 'NR > 1 { printf "%s ", $2 }' "$W/expected.tsv")"
expect_stdout_contains '{"id":"two","metric":"ip","space":"items","results":[{"rank":1,'
check "line 3: bad_json" test "$(sed -n 3p "$TMP/stdout")" = \
    '{"id":null,"error":{"code":"bad_json","message":"the request is not valid JSON (byte 1)"}}'
check "line 4: empty" test "$(sed -n 4p "$TMP/stdout")" = \
    '{"id":null,"error":{"code":"bad_json","message":"the request is empty"}}'
check "line 5: not_found" test "$(sed -n 5p "$TMP/stdout")" = \
    '{"id":5,"error":{"code":"not_found","message":"user 11 is not in the bundle"}}'
expect_stdout_contains '{"id":6,"error":{"code":"invalid_request","message":"genres filter items, and this question answers users"}}'
awk -f "$HERE/brute.awk" -v metric=ip -v k=3 -v q=0.5,-1.25,2,0.125 -v catalog="$W/movies.utf8" \
    "$ITEMS" >"$W/expected.tsv"
check "answer 7 = the brute force" \
    test "$(answer_ids 7)" = "$(awk -F '\t' 'NR > 1 { printf "%s ", $2 }' "$W/expected.tsv")"
expect_stdout_contains '{"id":8,"error":{"code":"invalid_request","message":"\"k\" must be an integer from 1 to 10000"}}'
expect_stdout_matches '^\{"id":9,"metric":"ip","space":"users","results":\[\{"rank":1,"id":[0-9]+,"score":[-0-9.e]+,"title":null,"genres":\[\]\}\]\}$'
# A line without a final line break is answered too; so is a NUL byte.
printf '{"id": 1, "item": 2571, "k": 1}\n{"id": 2, "item": 2571, "k": 1}' >"$W/nonl.jsonl"
run "$QUERY" "$REC" --serve-stdin <"$W/nonl.jsonl"
expect_status 0
check "two answers" test "$(wc -l <"$TMP/stdout")" -eq 2
printf '{"id": 1,\0 "item": 2571}\n' >"$W/nul.jsonl"
run "$QUERY" "$REC" --serve-stdin <"$W/nul.jsonl"
expect_status 0
expect_stdout_contains '"code":"bad_json","message":"the request contains a NUL byte"'
run "$QUERY" "$REC" --serve-stdin -v </dev/null
expect_status 0
expect_stdout_empty
expect_stderr_matches '^ann-query: 0 requests in'

# ---------------------------------------------------------------- shards
SHARDS=()
for i in 0 1 2; do
    run "$BUILD" "$ITEMS" "$DATA/movies.dat" --users "$USERS" --interactions "$W/ratings.dat" \
        --shard $i/3 -o "$W/shard$i.annb"
    expect_status 0
    SHARDS+=("$W/shard$i.annb")
done
same_as_whole() { # same_as_whole DESC ARGS...: shards answer what the whole bundle answers
    local desc=$1
    shift
    run "$QUERY" "$REC" "$@"
    cp "$TMP/stdout" "$W/whole.out"
    expect_status 0
    run "$QUERY" "${SHARDS[@]}" "$@"
    expect_status 0
    expect_stdout_equals "$W/whole.out"
}
for user in 10 20 250; do
    same_as_whole "--user $user" --user $user -k 12 --format tsv
    same_as_whole "--user $user --exclude-seen FILE" --user $user -k 5 --exclude-seen "$W/ratings.dat" -f tsv
    same_as_whole "--user $user --genre" --user $user -k 4 --genre Drama,Comedy --format json
    same_as_whole "--similar-users $user" --similar-users $user -k 5 --format tsv
done
for item in 2571 -7 42; do
    same_as_whole "--item $item" --item "$item" -k 11 --format tsv
    same_as_whole "--users-for-item $item" --users-for-item "$item" -k 3 --format tsv
done
same_as_whole "--user-vec" --user-vec "$USERS:30" -k 6 --format tsv
same_as_whole "--vec" --vec "0.5,-1.25,2,0.125" -k 12 --format tsv
same_as_whole "--batch" --batch "$USERS" -k 4
same_as_whole "--batch-users" --batch-users "$W/users.txt" -k 2 --format json
same_as_whole "--all-users" --all-users -k 3
grep -v exclude_seen "$W/requests.jsonl" >"$W/shard-requests.jsonl"
run "$QUERY" "$REC" --serve-stdin <"$W/shard-requests.jsonl"
cp "$TMP/stdout" "$W/whole.out"
run "$QUERY" "${SHARDS[@]}" --serve-stdin <"$W/shard-requests.jsonl"
expect_status 0
expect_stdout_equals "$W/whole.out"
# The table says how many shards answered.
run "$QUERY" "${SHARDS[@]}" --item 2571 -k 2
expect_stdout_matches 'index Flat, 3 shards$'
# Stored interactions are per shard: refused; a file works (above).
run "$QUERY" "${SHARDS[@]}" --user 10 --exclude-seen
expect_usage_error ann-query
expect_stderr_contains "with several bundles, --exclude-seen needs a FILE"
run "$QUERY" "${SHARDS[@]}" --serve-stdin <<<'{"id": 1, "user": 10, "exclude_seen": true}'
expect_status 0
expect_stdout_contains '"code":"unsupported"'
# Shards that cannot belong together.
run "$BUILD" "$ITEMS" --shard 1/3 -o "$W/l2shard.annb" --metric l2
run "$QUERY" "${SHARDS[0]}" "$W/l2shard.annb" --item 2571
expect_failure ann-query 1 "l2shard\.annb: dimension 4, metric l2, but .*shard0\.annb has 4, ip"
run "$QUERY" "${SHARDS[0]}" "${SHARDS[0]}" --item 2571
expect_failure ann-query 2 "are the same bundle"
run "$QUERY" "${SHARDS[0]}" "${SHARDS[1]}" --item 999
expect_failure ann-query 4 "item 999 is in none of the bundles"

finish
