#!/usr/bin/env bash
# Golden bundles must keep opening and answering as when they were made.
# usage: test_golden.sh ANN-QUERY ANN-INSPECT
set -u
QUERY=$1 INSPECT=$2
DIR=$(cd "$(dirname "$0")/v1.0" && pwd)
passed=0 failed=0
check() { # DESC CMD...
    local desc=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $desc" >&2; fi
}
same() { # EXPECTED-FILE CMD...: CMD's stdout equals the file
    local expected=$1
    shift
    diff -u "$expected" <("$@")
}
for b in flat-ip flat-cosine flat-l2; do
    check "$b opens and verifies" "$INSPECT" --verify "$DIR/$b.annb" >/dev/null
    check "$b --vec answers" same "$DIR/$b.vec.tsv" "$QUERY" "$DIR/$b.annb" --vec '[1, 0.5, -0.25, 2]' -k 5 --format tsv
    check "$b --item answers" same "$DIR/$b.item.tsv" "$QUERY" "$DIR/$b.annb" --item 2571 -k 5 --format tsv
done
check "flat-ip --user --exclude-seen answers" same "$DIR/flat-ip.user.tsv" \
    "$QUERY" "$DIR/flat-ip.annb" --user 10 --exclude-seen -k 5 --format tsv
echo "golden: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
