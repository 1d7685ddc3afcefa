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

# string IDs are taken as text (item2vec words); a number that is no integer is refused
printf 'word,vector\nthe,"[1,2]"\nfox,"[2,1]"\n' >"$W/words.csv"
run "$BUILD" "$W/words.csv" -o "$W/x.annb"
expect_status 0
printf 'word,vector\nthe,"[1,2]"\n12.0,"[2,1]"\n' >"$W/words.csv"
run "$BUILD" "$W/words.csv" -o "$W/x.annb"
expect_failure ann-build 1 'words.csv:3:1: expected an integer ID' 'pass --string-ids'
# string IDs (tests/cli/test_keys.py asks them every question): taken when
# some ID is no integer; one that reads as a number but no integer is refused
printf 'word,vector\nthe,"[1,2]"\n' >"$W/words.csv"
run "$BUILD" "$W/words.csv" -o "$W/x.annb"
expect_status 0
run "$INSPECT" "$W/x.annb"
expect_stdout_matches '^items +1 \(string IDs\)$'
printf 'word,vector\nthe,"[1,2]"\n12.0,"[1,3]"\n' >"$W/words.csv"
run "$BUILD" "$W/words.csv" -o "$W/x.annb"
expect_failure ann-build 1 'words.csv:3:1: expected an integer ID \(optional sign and decimal digits\), found "12\.0" \(pass --string-ids to take every ID as text\)'
run "$BUILD" "$W/words.csv" -o "$W/x.annb" --string-ids
expect_status 0

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

# ---- more forms: JSON lines, word2vec text, numpy .npy ----

# the same five vectors in every form: the same bundle, byte for byte
printf 'id,features\n1193,"[0.125, -0.5, 0.25, 1.0]"\n661,"[-0.375, 0.5, 0.0, 0.75]"\n914,"[0.5, 0.125, -0.25, 0.0]"\n3408,"[0.0, -0.75, 0.5, 0.25]"\n2355,"[0.25, 0.25, 0.25, -1.0]"\n' >"$W/five.csv"
run "$BUILD" "$W/five.csv" -o "$W/five.annb" --metric cosine
expect_status 0
awk -F'"' 'NR > 1 { split($1, a, ","); printf "{\"id\": %s, \"vector\": %s, \"count\": 3}\n", a[1], $2 }' \
    "$W/five.csv" >"$W/five.jsonl"
awk -F'"' 'NR == 1 { print "5 4" } NR > 1 { split($1, a, ","); v = $2; gsub(/[][,]/, "", v); print a[1], v " " }' \
    "$W/five.csv" >"$W/five.vec"
# .npy written by hand (version 1.0 header, float32 or float64, int64 IDs)
python3 - "$W/five.csv" "$W" <<'PY' || exit 99
import json, struct, sys
rows = [l.rstrip("\n").split(",", 1) for l in open(sys.argv[1]).readlines()[1:]]
ids = [int(r[0]) for r in rows]
vecs = [json.loads(r[1].strip('"')) for r in rows]
def npy(path, descr, shape, fmt, values):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h = d + " " * ((64 - (10 + len(d) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))
flat = [x for v in vecs for x in v]
npy(sys.argv[2] + "/five.npy", "<f4", "(5, 4)", "f", flat)
npy(sys.argv[2] + "/five64.npy", "<f8", "(5, 4)", "d", flat)
npy(sys.argv[2] + "/five_ids.npy", "<i8", "(5,)", "q", ids)
npy(sys.argv[2] + "/five_rows.npy", "<i8", "(5,)", "q", list(range(5)))
PY
run "$BUILD" "$W/five.jsonl" -o "$W/jsonl.annb" --metric cosine
expect_status 0
expect_true "JSON lines give the CSV's bundle" cmp -s "$W/five.annb" "$W/jsonl.annb"
run "$BUILD" "$W/five.vec" -o "$W/vec.annb" --metric cosine
expect_status 0
expect_true "word2vec text gives the CSV's bundle" cmp -s "$W/five.annb" "$W/vec.annb"
for npy in five five64; do
    run "$BUILD" "$W/$npy.npy" --ids "$W/five_ids.npy" -o "$W/npy.annb" --metric cosine
    expect_status 0
    expect_true "$npy.npy with --ids gives the CSV's bundle" cmp -s "$W/five.annb" "$W/npy.annb"
done
gzip -c "$W/five.npy" >"$W/five.npy.gz"
run bash -c '"$1" - --ids "$2" -o "$3" --metric cosine <"$4"' _ "$BUILD" "$W/five_ids.npy" \
    "$W/npy.annb" "$W/five.npy.gz"
expect_status 0
expect_true "a gzipped .npy on stdin gives the CSV's bundle" cmp -s "$W/five.annb" "$W/npy.annb"
# row numbers as IDs only when asked
run "$BUILD" "$W/five.npy" -o "$W/x.annb"
expect_usage_error ann-build
expect_stderr_contains "five.npy: a .npy matrix holds no IDs: give them as a second .npy of int64 (--ids FILE.npy) or take the row numbers 0..4 (--ids-from-rows)"
run "$BUILD" "$W/five.npy" --ids-from-rows -o "$W/rows.annb" --metric cosine
expect_status 0
run "$BUILD" "$W/five.npy" --ids "$W/five_rows.npy" -o "$W/rows2.annb" --metric cosine
expect_true "--ids-from-rows numbers the rows from 0" cmp -s "$W/rows.annb" "$W/rows2.annb"
run "$QUERY" "$W/rows.annb" --item 0 -k 1 --format tsv
expect_stdout_matches '^1	3	0\.6957'
# ann-query: a .npy batch of query vectors, its rows numbered from 0
run "$QUERY" "$W/five.annb" --batch "$W/five.npy" -k 1 --format tsv
expect_status 0
expect_stdout_matches '^4	1	2355	'
# users as .npy, with their own IDs
run "$BUILD" "$W/five.csv" -o "$W/u.annb" --users "$W/five.npy" --user-ids "$W/five_ids.npy"
expect_status 0
expect_stderr_contains "5 user vectors"
# errors: file:line:col in text forms, byte offsets in .npy
printf '{"id": 1, "vector": [1, 2]}\n{"id": 2, "vector": [1, x]}\n' >"$W/bad.jsonl"
run "$BUILD" "$W/bad.jsonl" -o "$W/x.annb"
expect_failure ann-build 1 'bad.jsonl:2:25: expected a JSON value, found "x\]}"'
printf '2 2\n1 0.5 0.25\n' >"$W/short.vec"
run "$BUILD" "$W/short.vec" -o "$W/x.annb"
expect_failure ann-build 1 'short.vec:3:1: expected 2 rows \(the count on line 1\), found 1 \(a truncated file\?\)'
printf '1 2\ntt0114709 0.5 0.25\n' >"$W/words.vec"
run "$BUILD" "$W/words.vec" -o "$W/x.annb"
expect_status 0
printf '1 2\n0.5 0.5 0.25\n' >"$W/words.vec"
run "$BUILD" "$W/words.vec" -o "$W/x.annb"
expect_failure ann-build 1 'words.vec:2:1: expected an integer ID' 'pass --string-ids'
run "$QUERY" "$W/x.annb" --vec 1,0 -f tsv
expect_stdout_matches '^1	tt0114709	0\.5		$'
head -c 150 "$W/five.npy" >"$W/cut.npy"
run "$BUILD" "$W/cut.npy" --ids-from-rows -o "$W/x.annb"
expect_failure ann-build 1 'cut.npy: byte 150: expected 5 rows of 4 values \(the shape\), found the end of the file in row 1'
run "$BUILD" "$W/five.csv" --ids "$W/five_ids.npy" -o "$W/x.annb"
expect_usage_error ann-build
expect_stderr_contains "are for a .npy matrix, and this is no .npy file"

# ---- warnings that save a day ----

# vectors of zeros under cosine: refused with the count and the first IDs
printf 'id,features\n1,"[0,0]"\n2,"[1,0]"\n3,"[0,1]"\n4,"[0,0]"\n5,"[0.5,0.5]"\n' >"$W/zeros.csv"
rm -f "$W/x.annb"
run "$BUILD" "$W/zeros.csv" -o "$W/x.annb" --metric cosine
expect_failure ann-build 1 'zeros.csv: 2 vectors of zeros \(IDs 1, 4\): cosine similarity is undefined for them; leave them out with --drop-zero'
expect_true "no bundle when zero vectors are refused" test ! -e "$W/x.annb"
awk 'BEGIN { print "id,features"; for (i = 1; i <= 9; i++) print i ",\"[0,0]\""; print "10,\"[1,2]\"" }' >"$W/many0.csv"
run "$BUILD" "$W/many0.csv" -o "$W/x.annb" --metric cosine
expect_failure ann-build 1 'many0.csv: 9 vectors of zeros \(IDs 1, 2, 3, 4, 5, \.\.\.\)'
run "$BUILD" "$W/zeros.csv" -o "$W/z.annb" --metric cosine --drop-zero
expect_status 0
expect_stderr_contains "3 vectors of dimension 2"
expect_stderr_contains "left out 2 item vectors of zeros (--drop-zero)"
run "$QUERY" "$W/z.annb" --item 2 -k 5 --format tsv
expect_status 0
expect_true "dropped zero vectors are not answered" test "$(grep -cE '^[0-9]+	(1|4)	' "$TMP/stdout")" -eq 0
run "$QUERY" "$W/z.annb" --item 1
expect_status 4
# the users too, named as theirs
printf 'userId,features\n7,"[0,0]"\n8,"[1,1]"\n' >"$W/u0.csv"
run "$BUILD" "$W/five.csv" -o "$W/x.annb" --metric cosine --users "$W/u0.csv" --user-vector-column features
expect_failure ann-build 1 'u0.csv: 1 vector of zeros \(ID 7\): cosine similarity is undefined for it'
# other metrics keep them (a zero vector is a valid point for ip and l2)
run "$BUILD" "$W/zeros.csv" -o "$W/x.annb" --metric ip
expect_status 0
expect_stderr_contains "5 vectors of dimension 2"

# a catalog that knows fewer than half of the items: the wrong one?
run "$BUILD" "$ING/item2vec.csv" "$CLI/movies.dat" -o "$W/x.annb" -q
expect_status 0
expect_stderr_contains "warning: catalog $CLI/movies.dat has titles for only 0 of the 5 items (0%; it lists 11 entries): is it the catalog of these embeddings"
run "$BUILD" "$CLI/items.csv" "$CLI/movies.dat" -o "$W/x.annb"
expect_status 0
expect_true "no warning for the right catalog" test "$(grep -c 'warning: catalog' "$TMP/stderr")" -eq 0

# ---- progress and verbosity ----

printf '1,1\n3,2\n' >"$W/seen.csv"
run "$BUILD" "$W/big.csv" -o "$W/x.annb" --users "$W/users.csv" --interactions "$W/seen.csv" --progress
expect_status 0
expect_stderr_matches "^ann-build: read items from $W/big.csv: [0-9.]+ [kM]B in [0-9.]+ s \([0-9.]+ MB/s\)$"
expect_stderr_matches "^ann-build: read users from $W/users.csv: "
expect_stderr_matches "^ann-build: read interactions from $W/seen.csv: "
run "$BUILD" "$W/big.csv.gz" -o "$W/x.annb" -v
expect_stderr_matches "^ann-build: read items from $W/big.csv.gz: [0-9.]+ [kM]B in"
# the phases after reading (a line a second each, and one when it is done;
# these are done sooner): annb's IVF trains its k-means, adds the rows to
# its lists, tunes nprobe; every build writes the bundle
gen_vectors 3000 16 11 1 1 >"$W/mid.csv"
phase_done() { # phase_done PAST UNIT: the line of a phase that is done
    expect_stderr_matches "^ann-build: $1: [0-9.]+ $2 in [0-9.]+ s \\([0-9.]+ ${2%s}s?/s\\)\$"
}
run "$BUILD" "$W/mid.csv" -o "$W/i.annb" --index ivf --progress
expect_status 0
phase_done "trained the index" "iterations"
expect_stderr_matches "^ann-build: trained the index: 20 iterations in"
expect_stderr_matches "^ann-build: added to the index: 3000 rows in"
phase_done "tuned the search parameter" "candidates"
expect_stderr_matches "^ann-build: wrote the bundle: [0-9.]+ kB in [0-9.]+ s \\([0-9.]+ MB/s\\)$"
# a graph index: the rows linked, efSearch tuned, the bundle written
run "$BUILD" "$W/mid.csv" -o "$W/g.annb" --index graph --progress
expect_status 0
phase_done "linked the graph" "rows"
expect_stderr_matches "^ann-build: linked the graph: 3000 rows in"
phase_done "tuned the search parameter" "candidates"
expect_stderr_matches "^ann-build: wrote the bundle: "
expect_true "no training or adding for annb's graph" test "$(grep -c 'the index' "$TMP/stderr")" -eq 0
# a Faiss IVF index: its k-means iterations counted (10, Faiss's own), its
# rows added; the bytes are those of a build without progress
run "$BUILD" "$W/mid.csv" -o "$W/sq.annb" --index IVF16,SQ8 --allow-low-recall --progress
expect_status 0
expect_stderr_matches "^ann-build: trained the index: 10 iterations in"
expect_stderr_matches "^ann-build: added to the index: 3000 rows in"
phase_done "tuned the search parameter" "candidates"
run "$BUILD" "$W/mid.csv" -o "$W/sq-quiet.annb" --index IVF16,SQ8 --allow-low-recall -q
expect_status 0
expect_true "progress changes no byte of a Faiss IVF bundle" cmp -s "$W/sq.annb" "$W/sq-quiet.annb"
# -q: nothing but errors and warnings, --progress or not
run "$BUILD" "$W/big.csv" -o "$W/x.annb" -q --progress
expect_status 0
expect_stderr_empty
for index in ivf graph; do # (item-to-item recall: a warning)
    run "$BUILD" "$W/mid.csv" -o "$W/q.annb" --index $index -q --progress
    expect_status 0
    expect_true "-q: no progress of a $index build" \
        test -z "$(grep -v '^ann-build: warning: ' "$TMP/stderr")"
done
# not a terminal, no --progress: no progress lines
run "$BUILD" "$W/big.csv" -o "$W/x.annb"
expect_true "no progress lines without a terminal or --progress" \
    test "$(grep -c 'read items' "$TMP/stderr")" -eq 0
# a terminal: one live line, rewritten with a carriage return, ended by a
# line break (a pipe that stalls makes the read last)
if command -v script >/dev/null; then
    run script -qec "bash -c '(head -c 1500000 \"$W/big.csv\"; sleep 1.2; tail -c +1500001 \"$W/big.csv\") | \"$BUILD\" - -o \"$W/x.annb\"'" /dev/null
    expect_status 0
    expect_true "a live progress line on a terminal" grep -q $'\rann-build: reading items from stdin: [0-9.]* MB, [0-9.]* MB/s' "$TMP/stdout"
    expect_true "the live line ends with the total" grep -q $'\rann-build: read items from stdin: [0-9.]* [kM]B in' "$TMP/stdout"
fi

# Faiss's own stderr lines: shown with the prefix, or dropped with -q
gen_vectors 1000 8 5 1 0 >"$W/k1000.csv"
run "$BUILD" "$W/k1000.csv" -o "$W/pq.annb" --index IVF64,PQ4 --allow-low-recall --recall-k 10 --tune-queries 50
expect_status 0
expect_stderr_matches '^ann-build: faiss: WARNING clustering 1000 points to [0-9]+ centroids'
expect_true "no unprefixed Faiss line" test "$(grep -c '^WARNING' "$TMP/stderr")" -eq 0
run "$BUILD" "$W/k1000.csv" -o "$W/pq.annb" --index IVF64,PQ4 --allow-low-recall --recall-k 10 --tune-queries 50 -q
expect_status 0
expect_true "-q drops Faiss's lines" test "$(grep -c 'WARNING clustering' "$TMP/stderr")" -eq 0

# -q and -v on ann-query and ann-inspect
run "$QUERY" "$W/z.annb" --item 2 -k 10 --format tsv
expect_stderr_contains "only 2 of 10 results"
run "$QUERY" "$W/z.annb" --item 2 -k 10 --format tsv -q
expect_status 0
expect_stderr_empty
expect_stdout_matches '^1	'
run "$QUERY" "$W/z.annb" --item 2 -q -v
expect_usage_error ann-query
run "$QUERY" "$W/plain.annb" --batch "$W/q.csv" -k 3 --format tsv -v
expect_stderr_matches '^ann-query: 2 queries read in'
run "$INSPECT" -q --verify "$W/plain.annb"
expect_status 0
expect_stdout_empty
expect_stderr_empty
cp "$W/plain.annb" "$W/flipped.annb"
printf 'X' | dd of="$W/flipped.annb" bs=1 seek=$(( $(stat -c %s "$W/flipped.annb") - 10 )) conv=notrunc 2>/dev/null
run "$INSPECT" -q --verify "$W/flipped.annb"
expect_failure ann-inspect 1
expect_stdout_empty
run "$INSPECT" -q "$W/missing.annb"
expect_failure ann-inspect 3
run "$INSPECT" -q --json "$W/plain.annb"
expect_usage_error ann-inspect
run "$INSPECT" -v --verify "$W/plain.annb"
expect_status 0
expect_stdout_contains "verify      ok"
expect_stderr_matches '^ann-inspect: opened .*plain.annb \([0-9]+ bytes\) in [0-9.]+ ms$'
expect_stderr_matches '^ann-inspect: verified in [0-9.]+ ms$'
run "$INSPECT" --help
expect_stdout_contains "-q, --quiet"
expect_stdout_contains "-v, --verbose"
run "$QUERY" --help
expect_stdout_contains "-q, --quiet"

# --help documents the options
run "$BUILD" --help
expect_stdout_contains "--id-column"
expect_stdout_contains "--vector-column"
expect_stdout_contains "--user-id-column"
expect_stdout_contains "--ids FILE.npy"
expect_stdout_contains "--ids-from-rows"
expect_stdout_contains "--drop-zero"
expect_stdout_contains "--progress"
expect_stdout_contains "--verbose"

finish
