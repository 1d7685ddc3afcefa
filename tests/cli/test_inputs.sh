#!/bin/bash
# test_inputs.sh - ann-build reading the files real training code writes:
# column choice and detection (item2vec `word,vector`, two-tower
# `movie_id,movie_embedding` with separated numbers in a quoted field),
# stdin, compressed inputs, more forms, and the warnings about them.
#
#   bash test_inputs.sh ANN-BUILD ANN-QUERY ANN-INSPECT
#
# Fixtures: tests/data/ingest/ (item2vec.csv, two_tower_*.csv, ...) and
# tests/data/cli/ (items.csv, movies.dat).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

need_args 3 "ANN-BUILD ANN-QUERY ANN-INSPECT" "$@"
BUILD=$1 QUERY=$2 INSPECT=$3

valgrind_wrap BUILD QUERY INSPECT
ING=$HERE/../data/ingest
CLI=$HERE/../data/cli
export LC_ALL=C
W=$TMP/work
mkdir -p "$W"

# ---- columns ----

# item2vec output builds as it is (it was refused: first column "word")
run "$BUILD" "$ING/item2vec.csv" -o "$W/i2v.annb" --metric cosine
expect_status 0
expect_stderr_contains "5 vectors of dimension 4"
run "$QUERY" "$W/i2v.annb" --item 1193 -k 2 --format tsv
expect_status 0
expect_stdout_matches '^1	3408	0\.6957'

# two-tower: items and users, each with its own header, detected
run "$BUILD" "$ING/two_tower_movies.csv" -o "$W/tt.annb" --users "$ING/two_tower_users.csv"
expect_status 0
expect_stderr_contains "4 vectors of dimension 4"
expect_stderr_contains "2 user vectors"
# user 7 = (0.25,0.5,0.125,-0.5): movie 1 scores 0.125*0.80466634+0.125,
# the best (movies 3 and 10: 0.09375)
run "$QUERY" "$W/tt.annb" --user 7 -k 1 --format tsv
expect_status 0
expect_stdout_matches '^1	1	0\.2255'

# named columns, by name and by number; the users' own options
printf 'sku,count,emb\n5,3,"[1,2]"\n6,1,"3 4"\n' >"$W/named.csv"
printf 'a,b\n"0.5,0.5",9\n' >"$W/users_named.csv"
run "$BUILD" "$W/named.csv" -o "$W/named.annb" --id-column sku --vector-column 3 \
    --users "$W/users_named.csv" --user-id-column b --user-vector-column a
expect_status 0
expect_stderr_contains "2 vectors of dimension 2"
run "$QUERY" "$W/named.annb" --user 9 -k 1 --format tsv
expect_stdout_matches '^1	6	3\.5'

# an unknown header names the fix; a missing named column names the header
printf 'sku,emb\n5,"[1,2]"\n' >"$W/sku.csv"
run "$BUILD" "$W/sku.csv" -o "$W/x.annb"
expect_failure ann-build 1 "sku.csv:1:1: expected a header naming the ID column" \
    "found header sku,emb: pass --id-column sku --vector-column emb"
expect_true "no bundle after a failure" test ! -e "$W/x.annb"
run "$BUILD" "$W/sku.csv" -o "$W/x.annb" --id-column sku --vector-column emb
expect_status 0
run "$BUILD" "$W/sku.csv" -o "$W/x.annb" --id-column id
expect_failure ann-build 1 "sku.csv:1:1: expected a column id \(--id-column id\), found header sku,emb"
run "$BUILD" "$W/sku.csv" -o "$W/x.annb" --id-column ''
expect_usage_error ann-build

# the two-tower file read as wide used to say "value 1 of the row": the hint
printf 'key,x\n1,"0.5,0.25"\n' >"$W/wide1.csv"
run "$BUILD" "$W/wide1.csv" -o "$W/x.annb" --id-column key
expect_failure ann-build 1 'wide1.csv:2:3: expected a number as value 1 of the row' \
    'name its column with --vector-column'

# string IDs are refused, saying so
printf 'word,vector\nthe,"[1,2]"\n' >"$W/words.csv"
run "$BUILD" "$W/words.csv" -o "$W/x.annb"
expect_failure ann-build 1 'words.csv:2:1: expected an integer ID' 'string IDs are not supported yet'

# ---- streams: stdin and compressed inputs ----

# 30000 x 16 (about 2.4 MB of text: more than the 1 MiB read blocks)
gen_vectors 30000 16 7 3 1 >"$W/big.csv"
gen_vectors 40 16 9 1 0 | sed 's/^id,/userId,/' >"$W/users.csv"
gzip -c "$W/big.csv" >"$W/big.csv.gz"
zstd -q -c "$W/big.csv" >"$W/big.csv.zst"
run "$BUILD" "$W/big.csv" -o "$W/plain.annb" --users "$W/users.csv" "$CLI/movies.dat"
expect_status 0
# the same bundle, byte for byte (provenance included: it digests the
# content read, whatever the transport), from every way of reading
for src in gz zst; do
    run "$BUILD" "$W/big.csv.$src" -o "$W/$src.annb" --users "$W/users.csv" "$CLI/movies.dat"
    expect_status 0
    expect_true "$src input gives the same bundle" cmp -s "$W/plain.annb" "$W/$src.annb"
done
run bash -c '"$1" - -o "$2" --users "$3" "$4" <"$5"' _ "$BUILD" "$W/stdin.annb" "$W/users.csv" \
    "$CLI/movies.dat" "$W/big.csv"
expect_status 0
expect_stderr_contains "30000 vectors of dimension 16 from stdin"
expect_true "stdin gives the same bundle" cmp -s "$W/plain.annb" "$W/stdin.annb"
# compressed stdin, the users from stdin, the catalog from stdin
run bash -c '"$1" - -o "$2" --users "$3" "$4" <"$5"' _ "$BUILD" "$W/stdin.annb" "$W/users.csv" \
    "$CLI/movies.dat" "$W/big.csv.zst"
expect_true "compressed stdin gives the same bundle" cmp -s "$W/plain.annb" "$W/stdin.annb"
gzip -c "$W/users.csv" >"$W/users.csv.gz"
run bash -c '"$1" "$2" -o "$3" --users - "$4" <"$5"' _ "$BUILD" "$W/big.csv" "$W/stdin.annb" \
    "$CLI/movies.dat" "$W/users.csv.gz"
expect_true "users from compressed stdin give the same bundle" cmp -s "$W/plain.annb" "$W/stdin.annb"
run bash -c '"$1" "$2" - -o "$3" --users "$4" <"$5"' _ "$BUILD" "$W/big.csv" "$W/stdin.annb" \
    "$W/users.csv" "$CLI/movies.dat"
expect_true "a catalog from stdin gives the same bundle" cmp -s "$W/plain.annb" "$W/stdin.annb"
run "$INSPECT" "$W/stdin.annb" --json
expect_stdout_contains "items_content_sha256"

# gzip members one after the other (as `cat a.gz b.gz` makes them)
head -n 15001 "$W/big.csv" | gzip -c >"$W/cat.csv.gz"
tail -n +15002 "$W/big.csv" | gzip -c >>"$W/cat.csv.gz"
run "$BUILD" "$W/cat.csv.gz" -o "$W/cat.annb" --users "$W/users.csv" "$CLI/movies.dat"
expect_true "concatenated gzip members give the same bundle" cmp -s "$W/plain.annb" "$W/cat.annb"

# damaged streams: the file and the compressed byte offset
rm -f "$W/x.annb"
size=$(stat -c %s "$W/big.csv.gz")
head -c $((size - 100)) "$W/big.csv.gz" >"$W/cut.csv.gz"
run "$BUILD" "$W/cut.csv.gz" -o "$W/x.annb"
expect_failure ann-build 1 "cut.csv.gz: byte [0-9]+: expected more gzip data, found the end of the file \(a truncated file\?\)"
size=$(stat -c %s "$W/big.csv.zst")
head -c $((size - 100)) "$W/big.csv.zst" >"$W/cut.csv.zst"
run "$BUILD" "$W/cut.csv.zst" -o "$W/x.annb"
expect_failure ann-build 1 "cut.csv.zst: byte [0-9]+: expected more zstd data"
# (a damaged deflate block may decode to text first, which the CSV reader
# then refuses; a damaged header is the decompressor's to report)
{ printf '\037\213\011'; tail -c +4 "$W/big.csv.gz"; } >"$W/bad.csv.gz"
run "$BUILD" "$W/bad.csv.gz" -o "$W/x.annb"
expect_failure ann-build 1 "bad.csv.gz: byte [0-9]+ of the gzip stream: unknown compression method"
{ printf '\050\265\057\375\377\377'; tail -c +7 "$W/big.csv.zst"; } >"$W/bad.csv.zst"
run "$BUILD" "$W/bad.csv.zst" -o "$W/x.annb"
expect_failure ann-build 1 "bad.csv.zst: byte [0-9]+ of the zstd stream: "
{ cat "$W/big.csv.gz"; printf 'junk'; } >"$W/junk.csv.gz"
run "$BUILD" "$W/junk.csv.gz" -o "$W/x.annb"
expect_failure ann-build 1 "junk.csv.gz: byte [0-9]+ of the gzip stream: expected another compressed member or the end of the file"
expect_true "no bundle after a failure" test ! -e "$W/x.annb"
# errors inside a compressed file name the line of the text
printf 'id,features\n1,"[1, 2]"\n2,"[1, x]"\n' | gzip -c >"$W/err.csv.gz"
run "$BUILD" "$W/err.csv.gz" -o "$W/x.annb"
expect_failure ann-build 1 'err.csv.gz:3:8: expected a JSON array of numbers, found "x\]"'
printf 'id,features\n1,"[1, 2]"\n2,"[1, x]"\n' >"$W/err.csv"
run bash -c '"$1" - -o "$2" <"$3"' _ "$BUILD" "$W/x.annb" "$W/err.csv"
expect_failure ann-build 1 '<stdin>:3:8: expected a JSON array of numbers'

# stdin once; never a bundle on stdout
run "$BUILD" - --users - -o "$W/x.annb"
expect_usage_error ann-build
expect_stderr_contains "stdin can be read once: the items and the users both name it"
run "$BUILD" "$W/big.csv" -o -
expect_usage_error ann-build
expect_stderr_contains "a bundle is written to a regular file"
expect_true "no file named -" test ! -e ./-
# the output may not be what stdin reads
cp "$W/plain.annb" "$W/in.annb"
run bash -c '"$1" - -o "$2" <"$2"' _ "$BUILD" "$W/in.annb"
expect_usage_error ann-build
expect_stderr_contains "is the same file as the input"

# ann-query: query files from stdin (gzip too); a bundle never
vector_rows() { printf 'id,features\n'; grep -E "^(4|7)," "$W/big.csv"; }
vector_rows >"$W/q.csv"
run "$QUERY" "$W/plain.annb" --batch "$W/q.csv" -k 3 --format tsv
expect_status 0
cp "$TMP/stdout" "$W/batch.expected"
run bash -c '"$1" "$2" --batch - -k 3 --format tsv <"$3"' _ "$QUERY" "$W/plain.annb" "$W/q.csv"
expect_stdout_equals "$W/batch.expected"
gzip -c "$W/q.csv" >"$W/q.csv.gz"
run bash -c '"$1" "$2" --batch - -k 3 --format tsv <"$3"' _ "$QUERY" "$W/plain.annb" "$W/q.csv.gz"
expect_stdout_equals "$W/batch.expected"
run "$QUERY" "$W/plain.annb" --user-vec "$W/q.csv.gz:7" -k 3 --format tsv
expect_status 0
printf '3\n5\n' >"$W/uids"
run "$QUERY" "$W/plain.annb" --batch-users "$W/uids" -k 2 --format tsv
expect_status 0
cp "$TMP/stdout" "$W/bu.expected"
run bash -c '"$1" "$2" --batch-users - -k 2 --format tsv <"$3"' _ "$QUERY" "$W/plain.annb" "$W/uids"
expect_stdout_equals "$W/bu.expected"
run bash -c '"$1" - --item 4 <"$2"' _ "$QUERY" "$W/plain.annb"
expect_usage_error ann-query
expect_stderr_contains "'-' (stdin) is no BUNDLE"
run bash -c '"$1" - <"$2"' _ "$INSPECT" "$W/plain.annb"
expect_usage_error ann-inspect

# --help documents the options
run "$BUILD" --help
expect_stdout_contains "--id-column"
expect_stdout_contains "--vector-column"
expect_stdout_contains "--user-id-column"

finish
