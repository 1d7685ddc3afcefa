#!/usr/bin/env bash
# test_recall.sh - on MovieLens-1M-shaped data (the example generator: 3,706
# items, 6,040 users, dimension 10, inner product), an approximate build
# either stores parameters whose recall holds on the users, as measured
# independently by the audit over all 6,040 of them (the build sampled
# 1,000), or fails with exit 6 and writes nothing; missed targets are
# written only when allowed, and then say so; item-only tuning is flagged.
# Usage: test_recall.sh EXAMPLE_GEN ANN_BUILD ANN_INSPECT
. "$(dirname "$0")/lib.sh"
need_args 3 "ANNB-EXAMPLE-GEN ANN-BUILD ANN-INSPECT" "$@"
GEN=$1 BUILD=$2 INSPECT=$3
E=$TMP/example
"$GEN" "$E" >/dev/null || exit 99

# The stored recall@K and the audit's: the audit within 0.02 of the target
# or above (exit 0), or the build refused (exit 6, no file).
for index in ivf ivfpq auto graph HNSW32; do
    out=$TMP/ml-$index.annb
    run "$BUILD" "$E/items.csv" -o "$out" --index $index --users "$E/users.csv" --tune-queries 500
    if [ "$STATUS" = 6 ]; then
        expect_stderr_contains "below the target"
        check "$index: nothing written when the target is missed" test ! -e "$out"
        continue
    fi
    expect_status 0
    for k in 10 100; do
        run "$INSPECT" "$out" --recall "$E/users.csv" -k $k --target-recall 0.93
        expect_status 0
        check "$index: recall@$k holds on all users" \
            awk -v k=$k '/^recall@/ { split($1, a, "@"); if (a[2] == k && $2 + 0 >= 0.93) ok = 1 }
                END { exit !ok }' "$TMP/stdout"
    done
done

# Item-to-item tuning is flagged at build (even with -q) and by ann-inspect.
run "$BUILD" "$E/items.csv" -o "$TMP/items-only.annb" --index ivf -q
expect_status 0
expect_stderr_contains "recall was measured on item-to-item questions only"
run "$INSPECT" "$TMP/items-only.annb"
expect_stdout_contains "recall was measured on item-to-item questions only"
run "$INSPECT" "$TMP/items-only.annb" --json
expect_stdout_contains '"warning":"warning: recall was measured on item-to-item'
expect_stdout_contains '"recall_by_k":[{"k":10,'
# --tune-vectors instead of --users: the bundle holds no users but its
# recall is about user questions.
run "$BUILD" "$E/items.csv" -o "$TMP/tunev.annb" --index ivf --tune-vectors "$E/users.csv"
expect_status 0
expect_stderr_matches 'recall@10 0\.9[5-9][0-9]* at nprobe [0-9]+ .* on 1000 query-vector questions'
expect_true "no item-only warning with --tune-vectors" \
    test -z "$(grep 'item-to-item questions only' "$TMP/stderr")"

# One byte per vector cannot reach 0.999: refused (exit 6), an existing
# bundle left as it was; allowed, written with the best, and flagged.
printf 'old' >"$TMP/pq1.annb"
run "$BUILD" "$E/items.csv" -o "$TMP/pq1.annb" --index 'IVF16,PQ1np' --users "$E/users.csv" \
    --target-recall 0.999
expect_status 6
expect_stderr_matches 'index IVF16,PQ1np reaches recall@10 0\.[0-9]+ at most \(nprobe [0-9]+; searched up to 16, every list\), below the target 0\.999'
check "the old file is untouched" test "$(cat "$TMP/pq1.annb")" = old
run "$BUILD" "$E/items.csv" -o "$TMP/pq1.annb" --index 'IVF16,PQ1np' --users "$E/users.csv" \
    --target-recall 0.999 --allow-low-recall
expect_status 0
expect_stderr_contains "NOT reached"
expect_stderr_contains "warning: the bundle stores a recall below the target"
run "$INSPECT" "$TMP/pq1.annb"
expect_stdout_contains "(NOT reached)"
run "$INSPECT" "$TMP/pq1.annb" --recall "$E/users.csv"
expect_status 6
expect_stdout_contains "NOT reachable with this index"
# Usage errors.
run "$BUILD" "$E/items.csv" -o "$TMP/x.annb" --recall-k 10,0
expect_status 2
run "$INSPECT" "$TMP/pq1.annb" --recall "$E/users.csv" --verify
expect_status 2
finish
