#!/bin/bash
# test_hostile.sh - bundles whose FAIS section (the serialized Faiss index)
# is crafted, with every checksum recomputed: ann-query and ann-inspect
# --verify refuse them with exit 1 and a message naming FAIS, the byte and
# what was expected, before Faiss's reader sees the bytes (SPEC 6.17); and
# --serve-stdin over a good bundle keeps answering whatever it is asked.
#
#   bash test_hostile.sh ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-TEST-DAMAGE

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

need_args 4 "ANN-BUILD ANN-QUERY ANN-INSPECT ANNB-TEST-DAMAGE" "$@"
BUILD=$1 QUERY=$2 INSPECT=$3 DAMAGE=$4
valgrind_wrap BUILD QUERY INSPECT
export LC_ALL=C
W=$TMP/work
mkdir -p "$W"

gen_vectors 400 8 7 3 100 >"$W/items.csv"
run "$BUILD" -q "$W/items.csv" -o "$W/ivfpq.annb" --metric l2 --index IVF8,PQ4np
expect_status 0
run "$BUILD" -q "$W/items.csv" -o "$W/hnsw.annb" --metric l2 --index HNSW32
expect_status 0

# Faiss 1.7.3 layout (faiss/impl/index_read.cpp): fourcc at 0; d at 4,
# ntotal at 8; an IVF's nlist at 37, nprobe at 45, its quantizer's fourcc
# at 53, d at 57, ntotal at 61.
run "$DAMAGE" "$W/ivfpq.annb" "$W/quantizer.annb" fais64:61 64
expect_status 0
run "$DAMAGE" "$W/ivfpq.annb" "$W/nprobe.annb" fais64:45 1000
expect_status 0
run "$DAMAGE" "$W/hnsw.annb" "$W/unknown.annb" fais32:0 0x5a5a7849 # 'IxZZ'
expect_status 0
run "$DAMAGE" "$W/hnsw.annb" "$W/ntotal.annb" fais64:8 401
expect_status 0

# More centroids than lists: Faiss would std::terminate inside OpenMP.
for tool in query inspect; do
    if [ $tool = query ]; then run "$QUERY" "$W/quantizer.annb" --item 103 -k 3
    else run "$INSPECT" "$W/quantizer.annb" --verify; fi
    expect_status 1
    expect_stderr_matches "quantizer.annb: FAIS at byte [0-9]+: quantizer ntotal is 64, expected 8"
done
run "$QUERY" "$W/nprobe.annb" --item 103 -k 3
expect_status 1
expect_stderr_contains "index nprobe is 1000, expected 1..8"
run "$INSPECT" "$W/ntotal.annb" --verify
expect_status 1
expect_stderr_contains "index ntotal is 401, expected 400"

# An index type the checker does not know: refused unless trusted; trusted,
# Faiss's own reader refuses 'IxZZ' (exit 5), and nothing crashes.
run "$QUERY" "$W/unknown.annb" --item 103 -k 3
expect_status 1
expect_stderr_contains "index type 'IxZZ' is not one annb checks; open with ANNB_OPEN_TRUST_FAISS / --trust-faiss"
run "$INSPECT" "$W/unknown.annb" --verify
expect_status 1
expect_stderr_contains "--trust-faiss if the bundle is trusted"
run "$QUERY" "$W/unknown.annb" --trust-faiss --item 103 -k 3
expect_status 5
run "$INSPECT" "$W/hnsw.annb" --verify --trust-faiss
expect_status 0

# The good bundle answers through --serve-stdin, extreme search settings
# included: each item's own vector finds that item first (distance 0).
v103=$(vector_of "$W/items.csv" 103)
v400=$(vector_of "$W/items.csv" 400)
cat >"$W/requests.jsonl" <<JSON
{"id": 1, "vector": [$v103], "k": 3}
{"id": 2, "vector": [$v400], "k": 3, "ef_search": 1048576}
{"id": 3, "vector": [$v103], "k": 400, "ef_search": 1}
{"id": 4, "item": 400, "k": 2}
{"id": 5, "vector": [$v400], "k": 1}
JSON
run "$QUERY" "$W/hnsw.annb" --serve-stdin <"$W/requests.jsonl"
expect_status 0
expect_true "one answer per request" test "$(wc -l <"$TMP/stdout")" -eq 5
expect_stdout_matches '^\{"id":1,.*"results":\[\{"rank":1,"id":103,'
expect_stdout_matches '^\{"id":2,.*"results":\[\{"rank":1,"id":400,'
expect_stdout_matches '^\{"id":5,.*"results":\[\{"rank":1,"id":400,'
finish
