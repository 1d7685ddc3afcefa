# lib.sh - a tiny assertion library for the annb CLI tests (sourced by bash).
#
#   run CMD ARGS...           runs CMD, capturing stdout ($TMP/stdout, $OUT),
#                             stderr ($TMP/stderr, $ERR) and the exit status ($STATUS)
#   expect_status N           the last run exited with N
#   expect_stdout_contains S  / expect_stderr_contains S    fixed string
#   expect_stdout_matches RE  / expect_stderr_matches RE    grep -E (case-insensitive: -i first)
#   expect_stdout_empty       / expect_stderr_empty
#   expect_stdout_equals FILE the whole stdout, byte for byte
#   expect_true DESC CMD...   CMD (a predicate) succeeds
#   need_args N "NAMES" "$@" exits 2 with a usage line unless the script got N arguments
#   finish                    prints "cli: P passed, F failed"; exits 1 on any failure
#
# and what the annb tests share:
#   valgrind_wrap VAR...      with ANNB_CLI_VALGRIND=1, each tool named by a
#                             variable runs under valgrind from then on
#   vector_of CSV ID          the vector of ID in a Spark-form CSV as v0,v1,...
#   tsv_close EXPECTED ACTUAL ann-query TSVs equal, scores within 1e-5
#   gen_vectors N DIM SEED STEP OFFSET
#                             a Spark-form CSV of N rows, IDs i*STEP+OFFSET,
#                             values multiples of 1/64 in [-2, 2] from a fixed
#                             generator (exact products and sums in float)
#
# Each expectation counts one pass or one failure; a failure prints the
# command, its status and both streams, so the log says what went wrong.

set -u

PASSED=0
FAILED=0
STATUS=0
OUT=
ERR=
LAST_CMD=
TMP=$(mktemp -d "${TMPDIR:-/tmp}/annb-cli.XXXXXX") || exit 99
trap 'rm -rf "$TMP"' EXIT

# need_args N "NAMES" "$@": the script's N arguments, or its usage and exit 2.
need_args() {
    local n=$1 names=$2
    shift 2
    if [ $# -ne "$n" ]; then
        echo "usage: $0 $names" >&2
        exit 2
    fi
}

run() {
    LAST_CMD="$*"
    "$@" >"$TMP/stdout" 2>"$TMP/stderr"
    STATUS=$?
    OUT=$(cat "$TMP/stdout")
    ERR=$(cat "$TMP/stderr")
}

pass() { PASSED=$((PASSED + 1)); }

fail() {
    FAILED=$((FAILED + 1))
    {
        printf 'FAIL: %s\n' "$1"
        printf '  command: %s\n  status:  %s\n' "$LAST_CMD" "$STATUS"
        printf '  stdout:  %s\n' "$(head -c 3000 "$TMP/stdout" 2>/dev/null)"
        printf '  stderr:  %s\n' "$(head -c 3000 "$TMP/stderr" 2>/dev/null)"
    } >&2
}

check() { # check DESC CMD...: pass if CMD succeeds
    local desc=$1
    shift
    if "$@"; then pass; else fail "$desc"; fi
}

expect_status() { check "expected exit status $1, got $STATUS" test "$STATUS" -eq "$1"; }

contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }

expect_stdout_contains() { check "stdout should contain '$1'" contains "$OUT" "$1"; }
expect_stderr_contains() { check "stderr should contain '$1'" contains "$ERR" "$1"; }

# expect_*_matches [-i] REGEX
expect_stdout_matches() { check "stdout should match '$*'" grep -Eq "$@" "$TMP/stdout"; }
expect_stderr_matches() { check "stderr should match '$*'" grep -Eq "$@" "$TMP/stderr"; }

expect_stdout_empty() { check "stdout should be empty" test ! -s "$TMP/stdout"; }
expect_stderr_empty() { check "stderr should be empty" test ! -s "$TMP/stderr"; }

expect_stdout_equals() {
    if cmp -s "$1" "$TMP/stdout"; then
        pass
    else
        fail "stdout differs from $1:
$(diff "$1" "$TMP/stdout" | head -40)"
    fi
}

expect_true() {
    local desc=$1
    shift
    check "$desc" "$@"
}

# A usage error: exit 2 and a "PROG: " diagnostic on stderr, nothing on stdout.
expect_usage_error() {
    expect_status 2
    expect_stderr_matches "^$1: "
    expect_stdout_empty
}

# Every diagnostic line of PROG starts with "PROG: " (usage text aside).
expect_failure() { # expect_failure PROG STATUS [STDERR-REGEX...]
    local prog=$1 status=$2
    shift 2
    expect_status "$status"
    expect_stderr_matches "^$prog: "
    for re in "$@"; do expect_stderr_matches -i "$re"; done
}

# ANNB_CLI_VALGRIND=1: every tool runs under valgrind; a memory error or a
# definite/indirect leak makes it exit 99, which no expectation accepts.
valgrind_wrap() {
    [ "${ANNB_CLI_VALGRIND:-0}" = 1 ] || return 0
    mkdir -p "$TMP/valgrind"
    local tool wrapper
    for tool in "$@"; do
        wrapper=$TMP/valgrind/$(basename "${!tool}") # same name: messages name the tool
        printf '#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect "%s" "$@"\n' \
            "${!tool}" >"$wrapper"
        chmod +x "$wrapper"
        printf -v "$tool" '%s' "$wrapper"
    done
}

# The vector of ID in a Spark-form CSV as "v0,v1,...".
vector_of() {
    awk -v id="$2" 'NR > 1 && substr($0, 1, index($0, ",") - 1) == id {
        s = substr($0, index($0, ",") + 1); gsub(/[\[\]" ]/, "", s); print s }' "$1"
}

# Same IDs, titles and genres in the same order, scores within 1e-5
# (relative, floor 1): for cosine, where float and double scores differ.
tsv_close() {
    awk -F '\t' 'NR == FNR { line[FNR] = $0; n = FNR; next }
        { split(line[FNR], e, "\t")
          if (FNR == 1) { if ($0 != line[1]) bad = 1; next }
          d = e[3] - $3; if (d < 0) d = -d
          m = e[3] < 0 ? -e[3] : e[3]; if (m < 1) m = 1
          if ($1 != e[1] || $2 != e[2] || $4 != e[4] || $5 != e[5] || d > 1e-5 * m) bad = 1 }
        END { exit (bad || FNR != n) }' "$1" "$2"
}

gen_vectors() {
    awk -v n="$1" -v d="$2" -v s="$3" -v step="$4" -v off="$5" 'BEGIN { print "id,features"
        for (i = 1; i <= n; i++) {
            row = ""
            for (j = 0; j < d; j++) {
                s = (s * 69069 + 1) % 4294967296
                row = row (j ? ", " : "") sprintf("%.10g", (int(s / 65536) % 257 - 128) / 64)
            }
            printf "%d,\"[%s]\"\n", i * step + off, row
        } }'
}

finish() {
    echo "cli: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}
