#!/bin/bash
# test_output.sh - what reaches clients can be parsed (issue 9): scores that
# are not finite are null in JSON, titles with control characters or
# invalid UTF-8 never reach a terminal raw nor a JSON client invalid, the
# catalog reader and --verify refuse them, a huge --serve-stdin line is
# answered with too_large in bounded memory, and ann-build refuses vectors
# whose scores could overflow float.
#
#   bash test_output.sh ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-TEST-SECTION
#
# Damaged bundles are made by annb-test-section from a good one: one
# section's decoded bytes edited, every checksum recomputed, so the damage
# is only in the meaning (opening skips it; --verify must not).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

need_args 4 "ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-TEST-SECTION" "$@"
BUILD=$1 QUERY=$2 INSPECT=$3 SECTION=$4
DATA=$HERE/../data/cli
ITEMS=$DATA/items.csv
USERS=$DATA/users.csv
export LC_ALL=C
W=$TMP/work
mkdir -p "$W"

# valid_json: every stdout line is one JSON value, and stdout is strict UTF-8.
valid_json_lines() {
    python3 -c '
import json, sys
data = open(sys.argv[1], "rb").read()
text = data.decode("utf-8")  # strict: invalid UTF-8 raises
lines = [l for l in text.split("\n") if l]
assert lines, "no output"
for l in lines:
    json.loads(l)
' "$TMP/stdout"
}
no_raw_controls() { ! LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]' "$TMP/stdout"; }
no_c1() { ! LC_ALL=C grep -qP '\xc2[\x80-\x9f]' "$TMP/stdout"; }
strict_utf8() { python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$TMP/stdout"; }

B=$W/good.annb
run "$BUILD" "$ITEMS" "$DATA/movies.dat" --users "$USERS" -o "$B"
expect_status 0

# ------------------------------------------------ non-finite scores: JSON null
# Row 0 (the smallest ID, -7) gets a NaN, another bundle an Inf.
for value in nan inf -inf; do
    D=$W/vecs-$value.annb
    run "$SECTION" "$B" "$D" VECS f32 0 "$value"
    expect_status 0
    run "$QUERY" "$D" --item 2571 -k 12 --format json
    expect_status 0
    expect_true "$value: JSON output parses" valid_json_lines
    expect_stdout_contains '"id":-7,"score":null,'
    expect_stdout_matches -v '[^"]inf|nan'
    expect_stderr_contains "ann-query: bundle $D: non-finite scores (damaged vectors?); run ann-inspect --verify"
    check "the warning comes once" test "$(grep -c non-finite "$TMP/stderr")" -eq 1
    # Batches and every user: one warning for the whole run.
    run "$QUERY" "$D" --all-users -k 12 --format json
    expect_status 0
    expect_true "$value: --all-users JSON parses" valid_json_lines
    expect_stdout_contains '[-7,null]'
    check "--all-users warns once" test "$(grep -c non-finite "$TMP/stderr")" -eq 1
    printf '{"id":1,"item":2571,"k":12}\n' >"$W/req"
    run "$QUERY" "$D" --serve-stdin <"$W/req"
    expect_status 0
    expect_true "$value: --serve-stdin answer parses" valid_json_lines
    expect_stdout_contains '"id":-7,"score":null'
    expect_stderr_contains "ann-query: bundle $D: non-finite scores (damaged vectors?); run ann-inspect --verify"
    # Twice asked, once said; an id that looks like a null score says nothing.
    printf '{"id":1,"item":2571,"k":12}\n{"id":2,"item":2571,"k":12}\n' >"$W/req"
    run "$QUERY" "$D" --serve-stdin <"$W/req"
    check "serve warns once" test "$(grep -c non-finite "$TMP/stderr")" -eq 1
    printf '{"id":{"x":1,"results":[{"score":null}]},"item":2571,"k":3}\n' >"$W/req"
    run "$QUERY" "$B" --serve-stdin <"$W/req"
    expect_status 0
    expect_stderr_empty
    run "$INSPECT" "$D" --verify
    expect_status 1
    expect_stderr_contains "value not finite"
done
# A query vector too large for float: the same null and warning, in every mode.
run "$QUERY" "$B" --vec '[3e38, 3e38, 3e38, 3e38]' -k 3 --format json
expect_status 0
expect_true "--vec overflow: JSON parses" valid_json_lines
expect_stdout_contains '"score":null'
expect_stderr_contains "non-finite scores"
printf '{"id":1,"vector":[3e38,3e38,3e38,3e38],"k":3}\n' >"$W/req"
run "$QUERY" "$B" --serve-stdin <"$W/req"
expect_status 0
expect_true "serve vector overflow: JSON parses" valid_json_lines
expect_stdout_contains '"score":null'
expect_stderr_contains "non-finite scores"
printf 'id,features\n77,"[3e38, -3e38, 3e38, 3e38]"\n' >"$W/q.csv"
run "$QUERY" "$B" --batch "$W/q.csv" -k 3 --format json
expect_status 0
expect_true "--batch overflow: JSON parses" valid_json_lines
expect_stdout_contains '"score":null'
check "--batch warns once" test "$(grep -c non-finite "$TMP/stderr")" -eq 1
# Table and TSV print what printf prints (nan, inf), documented in docs/cli.md.
run "$QUERY" "$W/vecs-nan.annb" --item 2571 -k 12 --format tsv
expect_status 0
expect_stdout_matches $'^11\t-7\t-?nan\t'
run "$QUERY" "$W/vecs-inf.annb" --item 2571 -k 12
expect_status 0
expect_stdout_matches '^ +[0-9]+ +-7 +-?inf '

# ------------------------------------------------ ann-build: scores that would overflow
# Squared norm 2e38 (> FLT_MAX / 4): every value finite, ip with itself inf.
{
    echo 'id,features'
    echo '1,"[0.5, 0.25]"'
    echo '2,"[1e19, 1e19]"'
} >"$W/huge.csv"
run "$BUILD" "$W/huge.csv" -o "$W/huge.annb"
expect_status 1
expect_stderr_contains "$W/huge.csv:3:1: expected a vector whose squared norm is at most"
expect_stderr_contains "found 2e+38 (ID 2)"
check "no bundle written" test ! -e "$W/huge.annb"
# The wide form goes the same way; users too.
printf 'id,f0,f1\n1,0.5,0.25\n2,-1e19,1e19\n' >"$W/huge-wide.csv"
run "$BUILD" "$W/huge-wide.csv" -o "$W/huge.annb"
expect_status 1
expect_stderr_contains "$W/huge-wide.csv:3:1: expected a vector whose squared norm"
run "$BUILD" "$ITEMS" --users "$W/huge.csv" -o "$W/huge.annb"
expect_status 1
expect_stderr_contains "$W/huge.csv:3:1:"
# Large but safe: 1e18 (squared norm 2e36) builds and answers finite scores.
printf 'id,features\n1,"[0.5, 0.25]"\n2,"[1e18, 1e18]"\n' >"$W/large.csv"
run "$BUILD" "$W/large.csv" -o "$W/large.annb"
expect_status 0
run "$QUERY" "$W/large.annb" --item 2 -k 1 --format json
expect_status 0
expect_stderr_empty

# ------------------------------------------------ catalogs with control characters
# ESC ] 0 ; ... BEL retitles a terminal; 0x85 is C1 NEL in latin-1.
printf '2571::Matrix\033]0;pwned\007 (1999)::Action\n' >"$W/esc.dat"
run "$BUILD" "$ITEMS" "$W/esc.dat" -o "$W/x.annb"
expect_status 1
expect_stderr_contains "$W/esc.dat:1:13: expected printable text, found the control character U+001B"
printf '2571::Matrix (1999)::Act\205ion\n' >"$W/c1.dat"
run "$BUILD" "$ITEMS" "$W/c1.dat" -o "$W/x.annb"
expect_status 1
expect_stderr_contains "$W/c1.dat:1:25: expected printable text, found the control character U+0085"
printf 'movieId,title,genres\n2571,"Matrix\033 (1999)",Action\n' >"$W/esc.csv"
run "$BUILD" "$ITEMS" "$W/esc.csv" -o "$W/x.annb"
expect_status 1
expect_stderr_contains "$W/esc.csv:2:13: expected printable text, found the control character U+001B"
printf 'movieId,title,genres\n2571,Matrix (1999),Sci\302\233Fi\n' >"$W/c1.csv"
run "$BUILD" "$ITEMS" "$W/c1.csv" -o "$W/x.annb"
expect_status 1
expect_stderr_contains "$W/c1.csv:2:23: expected printable text, found the control character U+009B"
check "no bundle from a bad catalog" test ! -e "$W/x.annb"
# latin-1 accents (0xA0 and up) stay fine.
printf '2571::Mis\351rables (1995)::Drama\n' >"$W/ok.dat"
run "$BUILD" "$ITEMS" "$W/ok.dat" -o "$W/ok.annb"
expect_status 0

# ------------------------------------------------ bundles with control bytes in titles
# Same lengths, checksums recomputed: the bundle opens, --verify refuses.
C=$W/ctl.annb
run "$SECTION" "$B" "$C" TTLS replace 'GoldenEye' $'Gold\033]0;\007'
expect_status 0
run "$SECTION" "$C" "$W/ctl2.annb" GVOC replace 'Sci-Fi' $'Sci\302\233F'
expect_status 0
C=$W/ctl2.annb
run "$QUERY" "$C" --item 2571 -k 12
expect_status 0
expect_true "table: no raw control byte" no_raw_controls
expect_true "table: no raw C1" no_c1
expect_stdout_contains 'Gold\x1b]0;\x07 (1995)'
expect_stdout_contains 'Sci\xc2\x9bF'
run "$QUERY" "$C" --item 10 -k 1
expect_status 0
expect_true "table header: no raw control byte" no_raw_controls
expect_stdout_contains '# items similar to item 10 (Gold\x1b]0;\x07 (1995))'
run "$QUERY" "$C" --item 2571 -k 12 --format tsv
expect_status 0
expect_true "tsv: no raw control byte" no_raw_controls
expect_true "tsv: no raw C1" no_c1
expect_stdout_contains $'\tGold\\x1b]0;\\x07 (1995)\t'
run "$QUERY" "$C" --item 2571 -k 12 --format json
expect_status 0
expect_true "json parses" valid_json_lines
expect_stdout_contains '"title":"Gold\u001b]0;\u0007 (1995)"'
expect_stdout_contains '"Sci\u009bF"'
run "$QUERY" "$C" --item 1 --genre Nope
expect_status 4
check "stderr: the genre list escaped" test "$(LC_ALL=C grep -cP '\xc2[\x80-\x9f]' "$TMP/stderr")" -eq 0
expect_stderr_contains 'Sci\xc2\x9bF'
printf '{"id":"a","item":2571,"k":12}\n' >"$W/req"
run "$QUERY" "$C" --serve-stdin <"$W/req"
expect_status 0
expect_true "serve: answer parses" valid_json_lines
expect_true "serve: no raw control byte" no_raw_controls
run "$INSPECT" "$W/ctl.annb" --verify
expect_status 1
expect_stderr_contains "title of row"
expect_stderr_contains "holds the control character U+001B"
run "$INSPECT" "$C" --verify
expect_status 1
run "$SECTION" "$B" "$W/gctl.annb" GVOC replace 'Sci-Fi' $'Sci\302\233F'
run "$INSPECT" "$W/gctl.annb" --verify
expect_status 1
expect_stderr_contains "genre"
expect_stderr_contains "holds the control character U+009B"
# Tab, newline and backslash in a title: TSV keeps one row per line.
run "$SECTION" "$B" "$W/tab.annb" TTLS replace 'Toy Story' $'Toy\tS\n\\ry'
run "$QUERY" "$W/tab.annb" --item 2571 -k 12 --format tsv
expect_status 0
expect_stdout_contains $'\tToy\\tS\\n\\\\ry (1995)\t'
check "tsv: 12 lines (header and 11 rows)" test "$(wc -l <"$TMP/stdout")" -eq 12

# ------------------------------------------------ invalid UTF-8 in titles
U=$W/utf.annb
run "$SECTION" "$B" "$U" TTLS replace 'Toy' $'T\377\300'
expect_status 0
run "$QUERY" "$U" --item 2571 -k 12 --format json
expect_status 0
expect_true "json: valid UTF-8 and JSON" valid_json_lines
expect_stdout_contains '"title":"T\ufffd\ufffd Story (1995)"'
run "$QUERY" "$U" --batch "$ITEMS" -k 3 --format json
expect_status 0
expect_true "batch json: valid" valid_json_lines
run "$QUERY" "$U" --item 2571 -k 12
expect_status 0
expect_true "table: valid UTF-8" strict_utf8
expect_stdout_contains 'T\xff\xc0 Story (1995)'
printf '{"id":"x","item":2571,"k":12}\n{"id":"\377","item":1}\n{"item":1,"genres":["\377"]}\n' >"$W/req"
run "$QUERY" "$U" --serve-stdin <"$W/req"
expect_status 0
expect_true "serve: valid UTF-8 and JSON" valid_json_lines
# The same writer as ann-query's JSON (annb_results_json): replacements escaped.
expect_stdout_contains '"title":"T\ufffd\ufffd Story (1995)"'
expect_stdout_contains '{"id":"\ufffd","metric"'
run "$INSPECT" "$U" --verify
expect_status 1
expect_stderr_contains "is not valid UTF-8 (byte 0xff)"

# ------------------------------------------------ --serve-stdin: request lines are capped
REQ='{"id":2,"item":2571,"k":3}'
# max_rss FILE CMD...: runs CMD (stdin, stdout, stderr as given) and writes
# its peak resident memory in kB to FILE: GNU time's %M, or where that is not
# installed the children's ru_maxrss as Python reads it.
max_rss() {
    local file=$1
    shift
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M' -o "$file" "$@"
    else
        python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$file" "$@"
    fi
}
# 200 MB of 'a' and no line end for a long time, then a normal request; never stored.
rss_of_serve() {
    { head -c 200000000 /dev/zero | tr '\0' 'a'; echo; echo "$REQ"; } |
        max_rss "$W/rss" "$QUERY" "$B" --serve-stdin >"$TMP/stdout" 2>"$TMP/stderr"
    STATUS=$?
    OUT=$(cat "$TMP/stdout")
    ERR=$(cat "$TMP/stderr")
    LAST_CMD="200 MB line | ann-query --serve-stdin"
}
rss_of_serve
expect_status 0
expect_true "serve: 2 answers" test "$(wc -l <"$TMP/stdout")" -eq 2
expect_stdout_contains '{"id":null,"error":{"code":"too_large","message":"request line of more than 1048576 bytes"}}'
expect_stdout_matches '^\{"id":2,"metric":"ip","space":"items","results":\[\{"rank":1,'
RSS=$(tail -n 1 "$W/rss")
echo "max RSS serving a 200 MB line: ${RSS} kB"
check "max RSS ${RSS} kB < 100 MB" test "${RSS:-999999999}" -lt 102400
# The cap is an option; a line of exactly N bytes is fine, N + 1 is not.
printf '%s\n%s \n%s\r\n' "$REQ" "$REQ" "$REQ" >"$W/req"
run "$QUERY" "$B" --serve-stdin --max-request-bytes ${#REQ} <"$W/req"
expect_status 0
check "3 answers" test "$(wc -l <"$TMP/stdout")" -eq 3
check "line 1 answered" test "$(sed -n 1p "$TMP/stdout" | cut -c1-10)" = '{"id":2,"m'
expect_stdout_contains "{\"id\":null,\"error\":{\"code\":\"too_large\",\"message\":\"request line of more than ${#REQ} bytes\"}}"
check "CRLF line answered" test "$(sed -n 3p "$TMP/stdout" | cut -c1-10)" = '{"id":2,"m'
run "$QUERY" "$B" --serve-stdin --max-request-bytes 1K <"$W/req"
expect_status 0
expect_stdout_matches -v 'too_large'
for bad in 0 -1 x 2G 1.5M; do
    run "$QUERY" "$B" --serve-stdin --max-request-bytes "$bad"
    expect_usage_error ann-query
done
run "$QUERY" "$B" --item 1 --max-request-bytes 10
expect_usage_error ann-query
expect_stderr_contains "--max-request-bytes goes with --serve-stdin"
# A last line without a line end, over the cap, at the end of input.
run bash -c "printf '%s\n%s' '$REQ' '$REQ$REQ' | '$QUERY' '$B' --serve-stdin --max-request-bytes 30"
expect_status 0
check "2 answers" test "$(wc -l <"$TMP/stdout")" -eq 2
expect_stdout_contains '"code":"too_large"'

finish
