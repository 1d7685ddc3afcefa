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

# --help documents the options
run "$BUILD" --help
expect_stdout_contains "--id-column"
expect_stdout_contains "--vector-column"
expect_stdout_contains "--user-id-column"

finish
