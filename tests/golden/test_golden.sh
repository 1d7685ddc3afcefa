#!/usr/bin/env bash
# Golden bundles must keep opening and answering as when they were made.
# usage: test_golden.sh ANN-QUERY ANN-INSPECT
set -u
QUERY=$1 INSPECT=$2
ROOT=$(cd "$(dirname "$0")" && pwd)
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
# version/bundle pairs; a bundle with a .user.tsv also answers --user 10 --exclude-seen
for vb in v1.0/flat-ip v1.0/flat-cosine v1.0/flat-l2 v1.3/graph-ip; do
    DIR=$ROOT/${vb%/*} b=${vb#*/}
    check "$vb opens and verifies" "$INSPECT" --verify "$DIR/$b.annb" >/dev/null
    check "$vb --vec answers" same "$DIR/$b.vec.tsv" "$QUERY" "$DIR/$b.annb" --vec '[1, 0.5, -0.25, 2]' -k 5 --format tsv
    check "$vb --item answers" same "$DIR/$b.item.tsv" "$QUERY" "$DIR/$b.annb" --item 2571 -k 5 --format tsv
    [ -e "$DIR/$b.user.tsv" ] || continue
    check "$vb --user --exclude-seen answers" same "$DIR/$b.user.tsv" \
        "$QUERY" "$DIR/$b.annb" --user 10 --exclude-seen -k 5 --format tsv
done
# 1.4: string IDs, asked through the JSON protocol (every question kind)
for vb in v1.4/keys-ip v1.4/keys-graph; do
    DIR=$ROOT/${vb%/*} b=${vb#*/}
    check "$vb opens and verifies" "$INSPECT" --verify "$DIR/$b.annb" >/dev/null
    check "$vb answers by string ID" same "$DIR/$b.answers.jsonl" "$QUERY" "$DIR/$b.annb" \
        --serve-stdin <"$DIR/req.jsonl"
done
echo "golden: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
