#!/bin/bash
# test_cli.sh - ann-build, ann-query and ann-inspect as processes: stdout,
# stderr and exit status, with answers checked against an independent
# brute force (brute.awk) over the fixture files in tests/data/cli/.
#
#   bash test_cli.sh ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-TEST-DAMAGE
#
# Fixtures (tests/data/cli/): items.csv (12 Spark-form rows, unsorted, gapped
# IDs, values multiples of 1/8 so ip and l2 scores are exact), users.csv,
# movies.dat (latin-1, an accented title, a title with one colon), movies.csv
# (UTF-8, quoted commas and quotes).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

need_args 4 "ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-TEST-DAMAGE" "$@"
BUILD=$1 QUERY=$2 INSPECT=$3 DAMAGE=$4

valgrind_wrap BUILD QUERY INSPECT
DATA=$HERE/../data/cli
ITEMS=$DATA/items.csv
USERS=$DATA/users.csv
export LC_ALL=C

W=$TMP/work
mkdir -p "$W"
iconv -f latin1 -t utf-8 "$DATA/movies.dat" >"$W/movies.utf8" || exit 99

# expected_tsv OUT METRIC K QUERY [EXCLUDE]: the brute force's answer.
expected_tsv() {
    if ! awk -f "$HERE/brute.awk" -v metric="$2" -v k="$3" -v q="$4" -v exclude="${5-}" \
        -v catalog="$W/movies.utf8" "$ITEMS" >"$1"; then
        fail "brute.awk failed for metric $2 k $3 query $4"
        return 1
    fi
}

# flip_byte FILE OFFSET: XOR the byte at OFFSET with 0x01, in place.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# section_offset BUNDLE KIND: offset of a section, from ann-inspect's table.
section_offset() { "$INSPECT" "$1" | awk -v k="$2" '$1 == k && NF >= 8 { print $4; exit }'; }

# ---------------------------------------------------------------- help, version
for tool in "$BUILD" "$QUERY" "$INSPECT"; do
    name=$(basename "$tool")
    run "$tool" --help
    expect_status 0
    expect_stdout_contains "usage: $name"
    expect_stdout_contains "Exit status"
    expect_stderr_empty
    run "$tool" -h
    expect_status 0
    expect_stdout_contains "usage: $name"
    run "$tool" --version
    expect_status 0
    expect_stdout_matches '^annb [0-9]+\.[0-9]+\.[0-9]+ \(format [0-9]+\.[0-9]+, faiss [0-9.]+, zstd [0-9.]+\)$'
    expect_stderr_empty
    run "$tool" --no-such-option
    expect_usage_error "$name"
done

# ---------------------------------------------------------------- building
IP=$W/ip.annb
run "$BUILD" "$ITEMS" "$DATA/movies.dat" -o "$IP"
expect_status 0
expect_stdout_empty
expect_stderr_contains "ann-build: 12 vectors of dimension 4"
expect_stderr_contains "metric ip"
# 9 of the 11 catalog entries have a vector; 3 of the 12 items have no entry.
expect_stderr_contains "11 entries; 3 items without a catalog entry, 2 catalog entries without a vector"
expect_stderr_matches "^ann-build: wrote .*ip\.annb \([0-9]+ bytes\)"
expect_true "the bundle exists" test -s "$IP"

run "$BUILD" -q "$ITEMS" "$DATA/movies.dat" -o "$W/quiet.annb"
expect_status 0
expect_stderr_empty
expect_true "a rebuild gives the same bytes" cmp -s "$IP" "$W/quiet.annb"

L2=$W/l2.annb COS=$W/cos.annb
run "$BUILD" "$ITEMS" "$DATA/movies.dat" -o "$L2" --metric l2
expect_status 0
expect_stderr_contains "metric l2"
run "$BUILD" "$ITEMS" "$DATA/movies.dat" -o "$COS" -m cosine
expect_status 0

run "$BUILD" "$ITEMS" "$DATA/movies.csv" -o "$W/csvcat.annb"
expect_status 0
# 5 of the 6 movies.csv entries have a vector; 7 items have none.
expect_stderr_contains "6 entries; 7 items without a catalog entry, 1 catalog entries without a vector"

# ---------------------------------------------------------------- answers vs brute force
for user in 10 20 30; do
    q=$(vector_of "$USERS" $user)
    for k in 1 5 12; do
        expected_tsv "$W/expected.tsv" ip $k "$q" || continue
        run "$QUERY" "$IP" --user-vec "$USERS:$user" -k $k --format tsv
        expect_status 0
        expect_stdout_equals "$W/expected.tsv"
        expect_stderr_empty
    done
    expected_tsv "$W/expected.tsv" l2 5 "$q" &&
        run "$QUERY" "$L2" --user-vec "$USERS:$user" -k 5 -f tsv &&
        expect_stdout_equals "$W/expected.tsv"
    expected_tsv "$W/expected.tsv" cosine 5 "$q" &&
        run "$QUERY" "$COS" --user-vec "$USERS:$user" -k 5 -f tsv &&
        check "cosine answer for user $user matches brute force" tsv_close "$W/expected.tsv" "$TMP/stdout"
done

# The default k is 10.
expected_tsv "$W/expected.tsv" ip 10 "$(vector_of "$USERS" 20)"
run "$QUERY" "$IP" --user-vec "$USERS:20" --format tsv
expect_stdout_equals "$W/expected.tsv"

# k beyond the item count: all 12, and a note on stderr.
expected_tsv "$W/expected.tsv" ip 12 "$(vector_of "$USERS" 30)"
run "$QUERY" "$IP" --user-vec "$USERS:30" -k 50 --format tsv
expect_status 0
expect_stdout_equals "$W/expected.tsv"
expect_stderr_contains "ann-query: only 12 of 50 results"

# --vec, both forms.
VEC='0.5,-1.25,2,0.125'
expected_tsv "$W/expected.tsv" ip 4 "$VEC"
run "$QUERY" "$IP" --vec "[0.5, -1.25, 2, 0.125]" -k 4 --format tsv
expect_status 0
expect_stdout_equals "$W/expected.tsv"
run "$QUERY" "$IP" --vec "$VEC" -k 4 --format tsv
expect_status 0
expect_stdout_equals "$W/expected.tsv"
expected_tsv "$W/expected.tsv" l2 4 "$VEC"
run "$QUERY" "$L2" --vec="$VEC" -k 4 --format=tsv
expect_stdout_equals "$W/expected.tsv"

# --item: the item's own vector as the query, the item itself excluded.
for item in 2571 3000000000 -7 42; do
    q=$(vector_of "$ITEMS" "$item")
    for metric in ip l2; do
        expected_tsv "$W/expected.tsv" $metric 11 "$q" "$item" || continue
        bundle=$IP
        [ $metric = l2 ] && bundle=$L2
        run "$QUERY" "$bundle" --item "$item" -k 11 --format tsv
        expect_status 0
        expect_stdout_equals "$W/expected.tsv"
        check "--item $item is not in its own answer" \
            test -z "$(cut -f2 "$TMP/stdout" | grep -x -- "$item")"
    done
done
run "$QUERY" "$IP" --item 2571 -k 12 --format tsv
expect_stderr_contains "only 11 of 12 results"

# ---------------------------------------------------------------- output formats
q=$(vector_of "$USERS" 10)
expected_tsv "$W/expected.tsv" ip 3 "$q"
top=$(awk -F '\t' 'NR == 2 { print $2 }' "$W/expected.tsv")
top_title=$(awk -F '\t' 'NR == 2 { print $4 }' "$W/expected.tsv")
run "$QUERY" "$IP" --user-vec "$USERS:10" -k 3
expect_status 0
expect_stdout_matches "^# items for user 10 of .*users\.csv, metric ip \(similarity, higher is closer\), index Flat$"
expect_stdout_matches "^ +1 +$top +-?[0-9]+\.[0-9]{6} +"
check "user 10's best item has a title in the fixture" test -n "$top_title"
expect_stdout_contains "$top_title"
check "table has a header and 3 rows" test "$(wc -l <"$TMP/stdout")" -eq 5
run "$QUERY" "$L2" --user-vec "$USERS:10" -k 3 --format table
expect_stdout_contains "metric l2 (squared distance, lower is closer)"

run "$QUERY" "$IP" --user-vec "$USERS:10" -k 3 --format json
expect_status 0
expect_stdout_matches '^\{"question":"items for user 10 of [^"]*users\.csv","metric":"ip","index":"Flat","results":\[\{"rank":1,"id":'"$top"',"score":'
check "json has 3 results" test "$(grep -o '"rank":' "$TMP/stdout" | wc -l)" -eq 3
expect_stdout_matches '\]\}$'

# Titles and genres: UTF-8 from the latin-1 movies.dat, a colon kept, and no
# title (null / empty) for an item without a catalog entry.
run "$QUERY" "$IP" --vec "$(vector_of "$ITEMS" 42)" -k 12 --format json
expect_stdout_contains '"id":42,'
expect_stdout_contains '"title":"Misérables, Les (1995)","genres":["Drama","Musical"]'
expect_stdout_contains '"title":"Star Wars: Episode IV - A New Hope (1977)","genres":["Action","Adventure","Fantasy","Sci-Fi"]'
expect_stdout_contains '"id":3000000000,'
expect_stdout_matches '"id":3000000000,"score":[-0-9.e]+,"title":null,"genres":\[\]'
expect_stdout_matches '"id":-7,"score":[-0-9.e]+,"title":null,"genres":\[\]'
run "$QUERY" "$IP" --item 260 -k 12 --format table
expect_stdout_contains "items similar to item 260 (Star Wars: Episode IV - A New Hope (1977))"
expect_stdout_contains "Misérables, Les (1995)"

# The movies.csv catalog: quoted commas and doubled quotes, "(no genres listed)".
run "$QUERY" "$W/csvcat.annb" --item 5 -k 11 --format tsv
expect_status 0
expect_stdout_matches $'^[0-9]+\t10\t[^\t]+\tAmerican President, The \\(1995\\)\tComedy\\|Drama\\|Romance$'
expect_stdout_matches $'^[0-9]+\t593\t[^\t]+\tTitle with "quotes" \\(1991\\)\t$'
expect_stdout_matches $'^[0-9]+\t42\t[^\t]+\tMisérables, Les \\(1995\\)\tDrama\\|Musical$'

# ---------------------------------------------------------------- not found, bad data
run "$QUERY" "$IP" --item 999 -k 3
expect_failure ann-query 4 "item 999"
expect_stdout_empty
run "$QUERY" "$IP" --item 2 # in the catalog, but it has no vector
expect_failure ann-query 4
run "$QUERY" "$IP" --user-vec "$USERS:11"
expect_failure ann-query 4 "11"
expect_stdout_empty
run "$QUERY" "$IP" --vec "1,2,3"
expect_failure ann-query 1 "dimension|values"
expect_stdout_empty
run "$QUERY" "$IP" --vec "[1, 2, 3, 4, 5]"
expect_failure ann-query 1
run "$QUERY" "$IP" --vec "1,2,x,4"
expect_failure ann-query 1 "element 3"
printf 'id,features\n10,"[1, 2, 3]"\n' >"$W/users3.csv"
run "$QUERY" "$IP" --user-vec "$W/users3.csv:10"
expect_failure ann-query 1 "dimension"
run "$QUERY" "$IP" --user-vec "$W/no-such-users.csv:10"
expect_failure ann-query 3 "no-such-users.csv"

# ---------------------------------------------------------------- usage errors
run "$QUERY"
expect_usage_error ann-query
run "$QUERY" "$IP"
expect_usage_error ann-query
expect_stderr_contains "expected exactly one of --user-vec, --item, --vec"
run "$QUERY" "$IP" --item 1 --vec 1,2,3,4
expect_usage_error ann-query
run "$QUERY" "$IP" "$IP" --item 1
expect_usage_error ann-query
for k in 0 -1 abc 1x 100001 99999999999999999999; do
    run "$QUERY" "$IP" --item 1 -k "$k"
    expect_usage_error ann-query
done
run "$QUERY" "$IP" --item 1 --format xml
expect_usage_error ann-query
run "$QUERY" "$IP" --item abc
expect_usage_error ann-query
run "$QUERY" "$IP" --user-vec "$USERS"
expect_usage_error ann-query
run "$QUERY" "$IP" --user-vec "$USERS:"
expect_usage_error ann-query
run "$BUILD" "$ITEMS"
expect_usage_error ann-build
run "$BUILD" -o "$W/x.annb"
expect_usage_error ann-build
run "$BUILD" "$ITEMS" "$DATA/movies.dat" "$USERS" -o "$W/x.annb"
expect_usage_error ann-build
run "$BUILD" "$ITEMS" -o "$W/x.annb" --metric dot
expect_usage_error ann-build
for t in 0 -2 x 1025; do
    run "$BUILD" "$ITEMS" -o "$W/x.annb" --threads "$t"
    expect_usage_error ann-build
done
check "no bundle from usage errors" test ! -e "$W/x.annb"
run "$INSPECT"
expect_usage_error ann-inspect
run "$INSPECT" "$IP" "$IP"
expect_usage_error ann-inspect

# ---------------------------------------------------------------- bad bundles
run "$QUERY" "$W/no-such.annb" --item 1
expect_failure ann-query 3 "no-such\.annb"
run "$QUERY" "$W" --item 1
expect_failure ann-query 3
run "$QUERY" "$ITEMS" --item 1
expect_failure ann-query 1 "not an annb bundle"
run "$INSPECT" "$ITEMS"
expect_failure ann-inspect 1 "not an annb bundle"
: >"$W/empty.annb"
run "$QUERY" "$W/empty.annb" --item 1
expect_failure ann-query 1

size=$(stat -c %s "$IP")
for cut in 64 200 $((size / 2)) $((size - 1)); do
    head -c "$cut" "$IP" >"$W/cut.annb"
    run "$QUERY" "$W/cut.annb" --item 1
    expect_failure ann-query 1 "truncated"
    run "$INSPECT" "$W/cut.annb"
    expect_failure ann-inspect 1 "truncated"
done

# A newer major version (header checksum recomputed): refused as a version.
run "$DAMAGE" "$IP" "$W/v2.annb" major 2
expect_status 0
run "$QUERY" "$W/v2.annb" --item 1
expect_failure ann-query 1 "version"
run "$INSPECT" "$W/v2.annb" --verify
expect_failure ann-inspect 1 "version"
# An unknown required feature bit: refused; an unknown optional one: ignored.
run "$DAMAGE" "$IP" "$W/req.annb" required 0x8000
run "$QUERY" "$W/req.annb" --item 1
expect_failure ann-query 1 "feature"
run "$DAMAGE" "$IP" "$W/opt.annb" optional 0x8000
expected_tsv "$W/expected.tsv" ip 5 "$(vector_of "$USERS" 10)"
run "$QUERY" "$W/opt.annb" --user-vec "$USERS:10" -k 5 -f tsv
expect_status 0
expect_stdout_equals "$W/expected.tsv"

# ---------------------------------------------------------------- ann-inspect
run "$INSPECT" "$IP"
expect_status 0
expect_stdout_matches '^format +1\.4$'
expect_stdout_matches "^file size +$size bytes$"
for kind in META IDS VECS TOFF TTLS GVOC GBIT; do
    expect_stdout_matches "^$kind +(yes|no) +(raw|zstd) +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9a-f]{16}$"
done
expect_stdout_matches '^items +12$'
expect_stdout_matches '^dimension +4$'
expect_stdout_matches '^metric +ip$'
expect_stdout_matches '^catalog +yes'
run "$INSPECT" "$COS" --verify
expect_status 0
expect_stdout_matches '^metric +cosine$'
expect_stdout_matches '^verify +ok'
expect_stderr_empty
run "$INSPECT" "$W/csvcat.annb" --verify
expect_status 0
expect_stdout_matches '^verify +ok'

# One flipped byte in a section: ann-inspect still describes the structure,
# --verify and ann-query refuse it.
for kind in VECS IDS TTLS META; do
    off=$(section_offset "$IP" $kind)
    check "ann-inspect lists $kind" test -n "$off"
    [ -n "$off" ] || continue
    cp "$IP" "$W/flip.annb"
    flip_byte "$W/flip.annb" $((off + 3))
    run "$INSPECT" "$W/flip.annb" --verify
    expect_failure ann-inspect 1 "checksum"
    expect_stdout_matches "^$kind "
    # Bulk sections (vectors, IDs, titles) are used unverified at open (SPEC
    # 3.11): ann-query --verify checks them too; others at every open.
    if [ $kind != META ]; then
        run "$QUERY" "$W/flip.annb" --item 1
        expect_status 0
        run "$QUERY" "$W/flip.annb" --item 1 --verify
    else
        run "$QUERY" "$W/flip.annb" --item 1
    fi
    expect_failure ann-query 1 "checksum"
done

# annb's own IVF (format/SPEC.md 6.15), and an index through the serialized
# Faiss section.
run "$BUILD" "$ITEMS" -o "$W/ivf.annb" --index 'IVF2,Flat' --metric l2
expect_status 0
expect_stderr_contains "index IVF2,Flat"
expect_stderr_matches 'recall@10 [01]\.[0-9]{4} at nprobe [12] against exact search'
run "$INSPECT" "$W/ivf.annb" --verify
expect_status 0
expect_stdout_matches '^IVEC +yes'
expect_stdout_matches '^index +IVF2,Flat$'
expect_stdout_matches '^recall +recall@10 [01]\.[0-9]{4} at nprobe [12] on [0-9]+ item-to-item questions'
expect_stdout_matches 'warning: recall was measured on item-to-item questions only'
check "annb's IVF has no Faiss section" test -z "$(grep '^FAIS' "$TMP/stdout")"
run "$BUILD" "$ITEMS" -o "$W/sq.annb" --index 'IVF2,SQ8' --metric l2
expect_status 0
run "$INSPECT" "$W/sq.annb" --verify
expect_status 0
expect_stdout_matches '^FAIS +yes'
expect_stdout_matches '^rerank +10 x k candidates'
run "$QUERY" "$W/sq.annb" --item 2571 -k 3 --format tsv
expect_status 0
run "$QUERY" "$W/ivf.annb" --item 2571 -k 3 --format tsv
expect_status 0
check "IVF answers carry item IDs" test -z "$(awk -F '\t' 'NR > 1 { print $2 }' "$TMP/stdout" |
    grep -vxE '2571|10|1|3000000000|260|1196|42|-7|318|593|7|5')"
check "IVF answers do not hold the item itself" test -z "$(cut -f2 "$TMP/stdout" | grep -x 2571)"
run "$BUILD" "$ITEMS" -o "$W/bad-index.annb" --index 'NoSuchIndex,Flat'
expect_failure ann-build 2 "NoSuchIndex"
check "no bundle from a bad index string" test ! -e "$W/bad-index.annb"

# ---------------------------------------------------------------- bad inputs
# name | content (printf format) | expected stderr fragment (regex after the file name)
bad_inputs=(
    "dup.csv|id,features\n1,\"[1, 2]\"\n5,\"[0, 0]\"\n1,\"[3, 4]\"\n|:4:1\\b.*(duplicate|line 2)"
    "dim.csv|id,features\n1,\"[1, 2]\"\n2,\"[1, 2, 3]\"\n|:3:[0-9]+\\b"
    "nan.csv|id,features\n1,\"[1, 2]\"\n2,\"[1, NaN]\"\n|:3:[0-9]+\\b"
    "nan-wide.csv|id,f0,f1\n1,1,2\n2,nan,2\n|:3:3\\b"
    "inf.csv|id,features\n1,\"[1, 1e39]\"\n|:2:[0-9]+\\b"
    "nonint.csv|id,features\n1,\"[1, 2]\"\n2.5,\"[1, 2]\"\n|:3:1\\b"
    "bigid.csv|id,features\n99999999999999999999,\"[1, 2]\"\n|:2:1\\b"
    "minid.csv|id,features\n-9223372036854775808,\"[1, 2]\"\n|:2:1\\b"
    "quote.csv|id,features\n1,\"[1, 2]\"\n2,\"[1, 2]\n|:3:[0-9]+\\b"
    "badjson.csv|id,features\n1,\"[1, 2\"\n|:2:[0-9]+\\b"
    "fields.csv|id,features\n1,\"[1, 2]\",extra\n|:2:[0-9]+\\b"
    "empty.csv||:1(:[0-9]+)?\\b"
    "header-only.csv|id,features\n|:[0-9]+(:[0-9]+)?\\b"
    "noid.csv|name,features\nx,\"[1, 2]\"\n|:1:1\\b"
)
for case in "${bad_inputs[@]}"; do
    IFS='|' read -r name content fragment <<<"$case"
    printf "$content" >"$W/$name"
    run "$BUILD" "$W/$name" -o "$W/bad.annb"
    expect_failure ann-build 1 "$name$fragment"
    check "$name: no bundle written" test ! -e "$W/bad.annb"
done
printf '1::Toy Story (1995)\n' >"$W/two-fields.dat"
run "$BUILD" "$ITEMS" "$W/two-fields.dat" -o "$W/bad.annb"
expect_failure ann-build 1 'two-fields\.dat:1:[0-9]+\b'
printf '1::Toy Story (1995)::Animation\n1::Toy Story (1995)::Animation\n' >"$W/dup.dat"
run "$BUILD" "$ITEMS" "$W/dup.dat" -o "$W/bad.annb"
expect_failure ann-build 1 'dup\.dat:2:[0-9]+\b'
printf 'movieId,title,genres\n1,"Unterminated (1995),Comedy\n' >"$W/quote-cat.csv"
run "$BUILD" "$ITEMS" "$W/quote-cat.csv" -o "$W/bad.annb"
expect_failure ann-build 1 'quote-cat\.csv:[0-9]+:[0-9]+\b'
printf 'movieId,title,genres\n1,Bad \xe9 UTF-8 (1995),Comedy\n' >"$W/latin1.csv"
run "$BUILD" "$ITEMS" "$W/latin1.csv" -o "$W/bad.annb"
expect_failure ann-build 1 'latin1\.csv:2:[0-9]+\b'
check "no bundle from bad catalogs" test ! -e "$W/bad.annb"
run "$BUILD" "$W/no-such-items.csv" -o "$W/bad.annb"
expect_failure ann-build 3 "no-such-items\.csv"
run "$BUILD" "$ITEMS" "$W/no-such-movies.dat" -o "$W/bad.annb"
expect_failure ann-build 3 "no-such-movies\.dat"
run "$BUILD" "$ITEMS" -o "$W/no-such-dir/x.annb"
expect_failure ann-build 3

# A failed build leaves the previous bundle as it was, and no temporary file.
mkdir "$W/out"
cp "$IP" "$W/out/ml.annb"
cp "$IP" "$W/before.annb"
for bad in dup.csv nan.csv quote.csv; do
    run "$BUILD" "$W/$bad" -o "$W/out/ml.annb"
    expect_status 1
    expect_true "$bad: the previous bundle is unchanged" cmp -s "$W/before.annb" "$W/out/ml.annb"
done
run "$BUILD" "$ITEMS" "$W/two-fields.dat" -o "$W/out/ml.annb"
expect_status 1
expect_true "bad catalog: the previous bundle is unchanged" cmp -s "$W/before.annb" "$W/out/ml.annb"
check "no temporary file is left" test "$(ls -A "$W/out")" = ml.annb
# ... and a successful one replaces it.
run "$BUILD" "$ITEMS" -o "$W/out/ml.annb" --metric l2
expect_status 0
check "the bundle was replaced" test "$(cmp -s "$W/before.annb" "$W/out/ml.annb"; echo $?)" = 1
check "still no temporary file" test "$(ls -A "$W/out")" = ml.annb

# ---------------------------------------------------------------- reproducible builds
# The same rows, in another order, with 1 thread or 2: the same bytes
# (format/SPEC.md 4.2), for flat, IVF and HNSW with each metric.
R=$W/repro
mkdir -p "$R"
gen_vectors 200 8 7 3 -50 >"$R/items.csv"
{ head -n 1 "$R/items.csv"; tail -n +2 "$R/items.csv" | awk 'NR % 2' | tac
  tail -n +2 "$R/items.csv" | awk '!(NR % 2)'; } >"$R/shuffled.csv"
check "the shuffled file holds the same rows" test \
    "$(tail -n +2 "$R/items.csv" | sort | sha256sum)" = "$(tail -n +2 "$R/shuffled.csv" | sort | sha256sum)"
check "... in another order" test "$(sed -n 2p "$R/items.csv")" != "$(sed -n 2p "$R/shuffled.csv")"
# The catalog in the other order too (latin-1 movies.dat, header-less).
tac "$DATA/movies.dat" >"$R/movies-reversed.dat"
for idx in flat 'IVF4,Flat' HNSW8; do
    for m in ip l2 cosine; do
        tag=$(printf '%s-%s' "$idx" "$m" | tr -c 'a-zA-Z0-9-' _)
        run "$BUILD" -q "$R/items.csv" "$DATA/movies.dat" -o "$R/$tag-1.annb" -i "$idx" -m $m --threads 1
        expect_status 0
        # A graph index is reproducible as built by default (one thread).
        threads=(--threads 2)
        [ "$idx" = HNSW8 ] && threads=()
        run "$BUILD" -q "$R/shuffled.csv" "$R/movies-reversed.dat" -o "$R/$tag-2.annb" -i "$idx" -m $m "${threads[@]}"
        expect_status 0
        expect_true "$idx $m: shuffled rows and ${threads[*]:-default threads} give the same bytes" cmp "$R/$tag-1.annb" "$R/$tag-2.annb"
    done
done
# A graph index is built with one thread by default, and says so; asked for
# one thread or for several, it does as told and says nothing.
run "$BUILD" "$R/items.csv" -o "$R/hnsw.annb" -i HNSW8
expect_status 0
expect_stderr_contains "ann-build: note: the HNSW8 index was built with one thread"
for t in 1 2; do
    run "$BUILD" "$R/items.csv" -o "$R/hnsw.annb" -i HNSW8 --threads $t
    expect_status 0
    check "no note with --threads $t" test "$(grep -c note: "$TMP/stderr")" = 0
done

# ---------------------------------------------------------------- provenance
run "$INSPECT" "$IP"
expect_status 0
expect_stdout_matches '^provenance +tool=annb [0-9]+\.[0-9]+\.[0-9]+$'
expect_stdout_matches '^ +format=1\.4$'
expect_stdout_matches '^ +faiss=[0-9.]+$'
expect_stdout_matches '^ +zstd=[0-9.]+$'
expect_stdout_matches '^ +metric=ip$'
expect_stdout_matches '^ +index=Flat$'
expect_stdout_matches '^ +items_content_sha256=[0-9a-f]{64}$'
expect_stdout_matches '^ +catalog_content_sha256=[0-9a-f]{64}$'
expect_stdout_matches '^BILD +no +zstd '
check "no path in the provenance" test -z "$(grep -E '=.*(/|items|movies)' "$TMP/stdout")"
# The digests are of the content, not of the file: the same items as a wide
# TSV give the same bundle.
items_digest=$(grep -o 'items_content_sha256=.*' "$TMP/stdout")
awk -F '"' 'NR == 1 { print "id\tf0\tf1\tf2\tf3"; next }
    { id = $1; sub(/,$/, "", id); v = $2; gsub(/[\[\] ]/, "", v); gsub(/,/, "\t", v); print id "\t" v }' \
    "$ITEMS" >"$W/items-wide.tsv"
run "$BUILD" -q "$W/items-wide.tsv" "$DATA/movies.dat" -o "$W/wide.annb"
expect_status 0
expect_true "the wide TSV of the same items gives the same bundle" cmp "$IP" "$W/wide.annb"
run "$BUILD" -q "$ITEMS" -o "$W/nocat.annb" --index 'IVF2,Flat' -m l2 --users "$USERS"
run "$INSPECT" "$W/nocat.annb"
expect_stdout_matches '^ +index=IVF2,Flat$'
expect_stdout_contains "$items_digest"
expect_stdout_matches '^ +users_content_sha256=[0-9a-f]{64}$'
check "no catalog digest without a catalog" test "$(grep -c catalog_content "$TMP/stdout")" = 0

# ---------------------------------------------------------------- ann-inspect --json
run "$INSPECT" "$IP" --json --verify
expect_status 0
expect_stderr_empty
check "--json is one line" test "$(wc -l <"$TMP/stdout")" -eq 1
expect_stdout_matches '^\{"bundle":"[^"]*ip\.annb","format":"1\.4","file_size":'"$size"',"required_features":"0x0","optional_features":"0x0","sections":\[\{"kind":"META","critical":true,"codec":"raw","offset":4096,'
expect_stdout_contains '{"kind":"IDS ","critical":true,'
expect_stdout_matches '"checksum":"[0-9a-f]{16}"'
expect_stdout_contains '"metadata":{"items":12,"dimension":4,"metric":"ip","index":"Flat","catalog":true,'
expect_stdout_matches '"provenance":\{"tool":"annb [0-9.]+","format":"1\.4","faiss":"[0-9.]+","zstd":"[0-9.]+","metric":"ip","index":"Flat","items_content_sha256":"[0-9a-f]{64}","catalog_content_sha256":"[0-9a-f]{64}"\}'
expect_stdout_matches '"verify":\{"ok":true\}\}$'
if command -v python3 >/dev/null; then
    check "--json is valid JSON" python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/stdout"
fi
# Damaged content: still one JSON object, with the error, and exit 1.
off=$(section_offset "$IP" VECS)
cp "$IP" "$W/flip-json.annb"
flip_byte "$W/flip-json.annb" $((off + 5))
run "$INSPECT" "$W/flip-json.annb" --json --verify
expect_failure ann-inspect 1 "checksum"
expect_stdout_matches '"verify":\{"ok":false,"code":-8,"name":"checksum mismatch","message":"[^"]*flip-json\.annb: at byte [0-9]+: [^"]*"\}\}$'
off=$(section_offset "$IP" META)
cp "$IP" "$W/flip-json.annb"
flip_byte "$W/flip-json.annb" $((off + 5))
run "$INSPECT" "$W/flip-json.annb" --json --verify
expect_failure ann-inspect 1 "checksum"
expect_stdout_matches '"metadata":null,"provenance":null,"error":\{"code":-8,"name":"checksum mismatch","message":"[^"]*flip-json\.annb: at byte [0-9]+: [^"]*"\}\}$'
# A path that is not UTF-8 and holds a quote: escaped, replaced, still JSON.
odd=$W/$'odd"\xff.annb'
cp "$IP" "$odd"
run "$INSPECT" "$odd" --json
expect_status 0
expect_stdout_contains '"bundle":"'"$W"'/odd\"\ufffd.annb"'
run "$INSPECT" "$ITEMS" --json
expect_failure ann-inspect 1 "not an annb bundle"
expect_stdout_empty

# ---------------------------------------------------------------- ann-inspect --sha256
for f in "$IP" "$ITEMS" "$odd"; do
    sha256sum "$f" >"$W/expected.sha"
    run "$INSPECT" --sha256 "$f"
    expect_status 0
    expect_stdout_equals "$W/expected.sha"
    expect_stderr_empty
done
run "$INSPECT" --sha256 "$W/no-such.annb"
expect_failure ann-inspect 3 "no-such\.annb"
expect_stdout_empty
run "$INSPECT" --sha256 --json "$IP"
expect_usage_error ann-inspect
run "$INSPECT" --sha256 "$IP" "$ITEMS"
expect_usage_error ann-inspect

# ---------------------------------------------------------------- ann-build --expect-sha256
E=$W/expect
mkdir -p "$E"
"$BUILD" -q "$ITEMS" "$DATA/movies.dat" -o "$E/want.annb" -i 'IVF2,Flat'
want=$(sha256sum <"$E/want.annb" | cut -c1-64)
"$BUILD" -q "$ITEMS" -o "$E/ml.annb" -m l2
cp "$E/ml.annb" "$E/before.annb"
# A rebuild that matches: written, exit 0 (upper-case hex accepted).
run "$BUILD" "$ITEMS" "$DATA/movies.dat" -o "$E/ml.annb" -i 'IVF2,Flat' --threads 2 \
    --expect-sha256 "$(printf '%s' "$want" | tr a-f A-F)"
expect_status 0
expect_stderr_contains "SHA-256 as expected"
expect_true "the matching bundle replaced the old one" cmp -s "$E/want.annb" "$E/ml.annb"
check "no temporary file after a match" test "$(ls -A "$E" | sort | tr '\n' ' ')" = "before.annb ml.annb want.annb "
# One that does not: exit 1, the old bundle untouched, nothing left behind.
cp "$E/before.annb" "$E/ml.annb"
run "$BUILD" "$ITEMS" "$DATA/movies.dat" -o "$E/ml.annb" -i 'IVF2,Flat' -m cosine --expect-sha256 "$want"
expect_failure ann-build 1 "SHA-256 mismatch: built [0-9a-f]{64}, expected $want" "unchanged"
expect_true "a mismatch leaves the previous bundle unchanged" cmp -s "$E/before.annb" "$E/ml.annb"
check "no temporary file after a mismatch" test "$(ls -A "$E" | sort | tr '\n' ' ')" = "before.annb ml.annb want.annb "
# ... and when there was no bundle, none appears.
run "$BUILD" "$ITEMS" -o "$E/new.annb" --expect-sha256 "$want"
expect_status 1
check "a mismatch creates no bundle" test ! -e "$E/new.annb"
# A failed build with --expect-sha256: the build's own error, nothing left.
run "$BUILD" "$W/dup.csv" -o "$E/ml.annb" --expect-sha256 "$want"
expect_failure ann-build 1 "dup\.csv"
expect_true "a failed build leaves the previous bundle unchanged" cmp -s "$E/before.annb" "$E/ml.annb"
check "no temporary file after a failed build" test "$(ls -A "$E" | sort | tr '\n' ' ')" = "before.annb ml.annb want.annb "
for hex in abc "${want}0" "${want%?}g" ""; do
    run "$BUILD" "$ITEMS" -o "$E/ml.annb" --expect-sha256 "$hex"
    expect_usage_error ann-build
done
expect_true "usage errors leave the bundle unchanged" cmp -s "$E/before.annb" "$E/ml.annb"

finish
