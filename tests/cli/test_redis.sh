#!/bin/bash
# test_redis.sh - `ann-query --all-users --format resp` loaded into a real
# redis-server with `redis-cli --pipe`, then read back and compared with
# ann-query's own per-user answers (docs/redis.md).
#
#   bash test_redis.sh ANN-BUILD ANN-QUERY
#
# Needs redis-server and redis-cli (Debian packages redis-server and
# redis-tools, installed by `make deps`): without them the test fails, it is
# never skipped. The server runs on a free port of 127.0.0.1, without
# persistence, and is always stopped on exit.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

need_args 2 "ANN-BUILD ANN-QUERY" "$@"
BUILD=$1 QUERY=$2
DATA=$HERE/../data/cli
export LC_ALL=C
K=20

for tool in redis-server redis-cli; do
    if ! command -v $tool >/dev/null; then
        echo "test_redis.sh: $tool not found: install redis-server and redis-tools (make deps)" >&2
        exit 1
    fi
done

W=$TMP/work
mkdir -p "$W"

# ---------------------------------------------------------------- a bundle with users
# 60 items and 300 users of dimension 8 from a fixed generator, values
# multiples of 1/64; users 100, 200, ..., 3000 have seen 5 items each.
gen_vectors 60 8 7 3 1 >"$W/items.csv"    # IDs 4, 7, ..., 181
gen_vectors 300 8 11 10 0 >"$W/users.csv" # IDs 10, 20, ..., 3000
awk -F, 'NR > 1 && $1 % 100 == 0 { for (i = 0; i < 5; i++) print $1 "," (i * 12 + 4) }' \
    "$W/users.csv" >"$W/seen.csv"
B=$W/rec.annb
run "$BUILD" "$W/items.csv" --users "$W/users.csv" --interactions "$W/seen.csv" -o "$B"
expect_status 0
expect_stderr_contains "300 user vectors"
NUSERS=300

# ---------------------------------------------------------------- the server
# A free port: a port nothing answers on, from a pseudo-random start; should
# another process take it first, the server exits and the next port is tried.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
RC() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
SERVER=
stop_server() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$TMP"
}
trap stop_server EXIT
for try in $(seq 0 19); do
    PORT=$((20000 + (RANDOM * 7 + $$ + try * 97) % 40000))
    port_free $PORT || continue
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$W" --logfile "$W/redis.log" &
    SERVER=$!
    for wait in $(seq 1 100); do
        [ "$(RC PING 2>/dev/null)" = PONG ] && break 2
        kill -0 "$SERVER" 2>/dev/null || break # it could not start (port taken?)
        sleep 0.1
    done
    kill "$SERVER" 2>/dev/null
    wait "$SERVER" 2>/dev/null
    SERVER=
done
if [ -z "$SERVER" ]; then
    echo "test_redis.sh: could not start redis-server on 127.0.0.1:" >&2
    cat "$W/redis.log" >&2
    exit 1
fi
pass

# ---------------------------------------------------------------- load
"$QUERY" "$B" --all-users -k $K --format resp >"$W/load.resp" 2>"$W/load.err"
check "ann-query --all-users --format resp exits 0" test $? -eq 0
check "throughput reported" grep -Eq '^ann-query: top 20 for 300 users in [0-9.]+ s \([0-9]+ users/s\)$' "$W/load.err"
prefix=$(sed -n 's/^ann-query: keys \(.*\)<user>$/\1/p' "$W/load.err")
check "default key prefix annb:<16 hex>:user:" grep -Eq '^annb:[0-9a-f]{16}:user:$' <<<"$prefix"
run redis-cli -h 127.0.0.1 -p "$PORT" --pipe <"$W/load.resp"
expect_status 0
# 300 DEL + 300 RPUSH, no errors.
expect_stdout_contains "errors: 0, replies: $((2 * NUSERS))"

# ---------------------------------------------------------------- compare
check "one key per user" test "$(RC DBSIZE)" -eq $NUSERS
check "every key has the prefix" test "$(RC --scan --pattern "${prefix}*" | wc -l)" -eq $NUSERS
for user in 10 20 100 990 1500 2990 3000; do
    "$QUERY" "$B" --user $user -k $K --format tsv | awk -F '\t' 'NR > 1 { print $2 }' >"$W/expected"
    RC LRANGE "$prefix$user" 0 -1 >"$W/stored"
    check "user $user: the stored list is ann-query --user's answer, in order" cmp -s "$W/expected" "$W/stored"
    check "user $user: $K items" test "$(wc -l <"$W/stored")" -eq $K
    check "user $user: no TTL" test "$(RC TTL "$prefix$user")" -eq -1
done

# ---------------------------------------------------------------- reload under a new prefix
# Seen items excluded, a new prefix with a TTL, then the pointer flipped.
"$QUERY" "$B" --all-users -k $K --exclude-seen --format resp --key-prefix "recs:v2:" --ttl 600 \
    2>/dev/null | redis-cli -h 127.0.0.1 -p "$PORT" --pipe >"$W/pipe2.out"
check "second load: no errors" grep -q "errors: 0, replies: $((3 * NUSERS))" "$W/pipe2.out"
RC SET annb:current "recs:v2:" >/dev/null
check "both generations present" test "$(RC DBSIZE)" -eq $((2 * NUSERS + 1))
current=$(RC GET annb:current)
for user in 10 100 110 3000; do
    "$QUERY" "$B" --user $user -k $K --exclude-seen --format tsv | awk -F '\t' 'NR > 1 { print $2 }' >"$W/expected"
    RC LRANGE "$current$user" 0 -1 >"$W/stored"
    check "user $user: list under the new prefix = --user --exclude-seen" cmp -s "$W/expected" "$W/stored"
    ttl=$(RC TTL "$current$user")
    check "user $user: TTL set (got $ttl)" test "$ttl" -gt 0 -a "$ttl" -le 600
done
# User 100 saw 5 items: none of them is stored for it.
RC LRANGE "${current}100" 0 -1 >"$W/stored"
check "user 100: seen items are not stored" test -z "$(grep -xE '4|16|28|40|52' "$W/stored")"

# ---------------------------------------------------------------- string IDs
# Users and items with string IDs (blanks, ':', UTF-8): the keys are the
# prefix and the user's text, the lists the items' texts, as they are (RESP
# bulk strings are binary-safe).
{
    echo "user_id,embedding"
    printf '"%s","[%s]"\n' "alice smith" "1, 0" "u:1:2" "0, 1" "ü" "0.5, 0.5" "x" "-1, 0.25"
} >"$W/kusers.csv"
{
    echo "item_id,embedding"
    printf '"%s","[%s]"\n' "a b" "1, 0.125" "a:b" "0.25, 1" "日本" "0.75, 0.5" "tt0114709" "-1, -1" \
        "12" "0.5, -0.5"
} >"$W/kitems.csv"
KB=$W/keys.annb
run "$BUILD" "$W/kitems.csv" --users "$W/kusers.csv" -o "$KB"
expect_status 0
"$QUERY" "$KB" --all-users -k 3 --format resp --key-prefix "keys:" 2>/dev/null |
    redis-cli -h 127.0.0.1 -p "$PORT" --pipe >"$W/pipe-keys.out"
check "string IDs: loaded without errors" grep -q "errors: 0, replies: 8" "$W/pipe-keys.out"
check "string IDs: a key per user" test "$(RC --scan --pattern 'keys:*' | wc -l)" -eq 4
for user in "alice smith" "u:1:2" "ü" "x"; do
    "$QUERY" "$KB" --user "$user" -k 3 --format tsv | awk -F '\t' 'NR > 1 { print $2 }' >"$W/expected"
    RC LRANGE "keys:$user" 0 -1 >"$W/stored"
    check "string IDs: user '$user': the stored list is ann-query --user's answer" cmp -s "$W/expected" "$W/stored"
    check "string IDs: user '$user': 3 items" test "$(wc -l <"$W/stored")" -eq 3
done
RC DEL "keys:alice smith" "keys:u:1:2" "keys:ü" "keys:x" >/dev/null

# ---------------------------------------------------------------- docs/redis.md's recipe, as written
# The fenced blocks after each `<!-- recipe: switch-over` marker, in order,
# run by bash with ann-query and redis-cli pointed at this build and this
# server, in a directory where new.annb is the bundle: once as written (with
# --ttl) and once with its --ttl removed. Either way annb:current must name
# the bundle's default prefix (an empty pointer was the bug when --ttl made
# the sed match nothing), and the lists under it be the load's.
awk '/<!-- recipe: switch-over/ { want = 1; next }
     want && /^ *```sh$/ { inblock = 1; next }
     inblock && /^ *```$/ { inblock = 0; want = 0; next }
     inblock { sub(/^   /, ""); print }' "$HERE/../../docs/redis.md" >"$W/recipe.sh"
check "docs/redis.md: the recipe loads with --ttl and sets annb:current" \
    test "$(grep -c -e '--ttl 172800' -e 'SET annb:current' "$W/recipe.sh")" -eq 2
sed 's/ --ttl 172800//' "$W/recipe.sh" >"$W/recipe-nottl.sh"
check "the recipe without --ttl differs" test -z "$(grep -e '--ttl' "$W/recipe-nottl.sh")"
bundle_prefix=$("$QUERY" "$B" --all-users -k 1 --format resp 2>&1 >/dev/null |
    sed -n 's/^ann-query: keys \(annb:[0-9a-f]\{16\}:user:\)<user>$/\1/p')
check "the bundle's default prefix (got '$bundle_prefix')" test -n "$bundle_prefix"
for variant in recipe recipe-nottl; do
    R=$W/$variant
    mkdir -p "$R"
    ln -s "$B" "$R/new.annb"
    RC DEL annb:current >/dev/null
    (
        cd "$R" &&
            printf '%s\n' "ann-query() { \"$QUERY\" \"\$@\"; }" \
                "redis-cli() { command redis-cli -h 127.0.0.1 -p $PORT \"\$@\"; }" |
            cat - "$W/$variant.sh" >run.sh && bash run.sh
    ) >"$W/$variant.out" 2>&1
    status=$?
    check "$variant.sh exits 0 (got $status: $(head -c 500 "$W/$variant.out"))" test $status -eq 0
    current=$(RC GET annb:current)
    check "$variant: annb:current is the new prefix (got '$current')" test "$current" = "$bundle_prefix"
    check "$variant: pipe.log has no errors" grep -q "^errors: 0, replies: " "$R/pipe.log"
    for user in 10 100 3000; do
        "$QUERY" "$B" --user $user -k $K --exclude-seen --format tsv | awk -F '\t' 'NR > 1 { print $2 }' >"$W/expected"
        RC LRANGE "$current$user" 0 -1 >"$W/stored"
        check "$variant: user $user: the list under annb:current = --user --exclude-seen" cmp -s "$W/expected" "$W/stored"
        ttl=$(RC TTL "$current$user")
        if [ $variant = recipe ]; then
            check "$variant: user $user: TTL set (got $ttl)" test "$ttl" -gt 0 -a "$ttl" -le 172800
        else
            check "$variant: user $user: no TTL (got $ttl)" test "$ttl" -eq -1
        fi
    done
done

finish
