#!/usr/bin/env bash
# make_corpus.sh - (re)writes the seed corpora under tests/fuzz/corpus/.
#
#   tests/fuzz/make_corpus.sh BUILD_DIR
#
# BUILD_DIR holds a built ann-build and tests/annb-test-damage. Seeds are small valid inputs and broken
# variants of them (truncated, a byte flipped), so that every fuzzer starts
# past the magic and the header. The bundles are real ann-build output,
# hence reproducible (SPEC 4.2) for a given Faiss version. Files found by
# fuzzing (crash-*, named after what they caught) are kept: this script only
# rewrites the seed-* files.
set -euo pipefail
build=${1:?usage: make_corpus.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
data=$here/../data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$corpus"/{bundle,embeddings,catalog}
rm -f "$corpus"/{bundle,embeddings,catalog}/seed-* "$corpus"/bundle/hostile-fais-*

# ---- helpers ----
# truncate_to SRC DST BYTES
truncate_to() { head -c "$3" "$1" >"$2"; }
# flip SRC DST OFFSET: DST is SRC with the byte at OFFSET xor 0xff.
flip() {
    cp "$1" "$2"
    local b
    b=$(od -An -tu1 -j "$3" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}
# le OFFSET WIDTH FILE: the little-endian integer there.
le() { od -An -tu"$2" -j "$1" -N"$2" --endian=little "$3" | tr -d ' '; }
# entry_of KIND FILE: table offset of the entry of that kind.
entry_of() {
    local n i
    n=$(le 40 4 "$2")
    for ((i = 0; i < n; i++)); do
        if [ "$(dd if="$2" bs=1 skip=$((128 + 64 * i)) count=4 status=none)" = "$1" ]; then
            echo $((128 + 64 * i))
            return
        fi
    done
    return 1
}

# ---- bundles ----
b=$corpus/bundle
cat >"$tmp/items.csv" <<'EOF'
id,features
2571,"[-2, -1.125, 0.875, -1]"
10,"[-2, 1.875, 1, 0.625]"
1,"[-1.5, 1.875, 0.25, -1.875]"
3000000000,"[-1.125, 1.75, 0.75, -0.5]"
-7,"[0, 0, 0, 0]"
42,"[0.5, 0.25, -0.75, 1]"
EOF
printf 'itemId\tf0\tf1\tf2\n' >"$tmp/wide.tsv"
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    printf '%d\t%d.5\t-%d\t0.%d\n' "$((i * 7))" "$i" "$((i % 5))" "$i" >>"$tmp/wide.tsv"
done
ab() { "$build/ann-build" -q "$@"; }
ab "$tmp/items.csv" -o "$b/seed-flat-ip.annb"
ab "$tmp/items.csv" "$data/cli/movies.csv" -m cosine -o "$b/seed-flat-cosine-catalog.annb"
ab "$tmp/wide.tsv" -m l2 -o "$b/seed-flat-l2.annb"
ab "$tmp/wide.tsv" "$data/cli/movies.dat" -m l2 -o "$b/seed-flat-l2-catalog-dat.annb"
ab "$tmp/wide.tsv" -i 'IVF2,Flat' -t 1 -o "$b/seed-ivf2-flat.annb" 2>/dev/null
# The catalog and the interactions raw, read in place (bulk, SPEC 3.11).
printf 'user,item\n10,2571\n10,42\n20,1\n20,10\n20,3000000000\n30,-7\n' >"$tmp/seen.csv"
ab "$tmp/items.csv" "$data/cli/movies.dat" --users "$data/cli/users.csv" \
    --interactions "$tmp/seen.csv" -o "$b/seed-flat-ip-catalog-seen.annb"

# Broken variants. Without repair they stop at the first check; the repair
# harness gets past the checksums of all but FAIS.
f=$b/seed-flat-ip.annb
truncate_to "$f" "$b/seed-trunc-7.annb" 7
truncate_to "$f" "$b/seed-trunc-magic.annb" 8
truncate_to "$f" "$b/seed-trunc-header.annb" 100
truncate_to "$f" "$b/seed-trunc-table.annb" 200
truncate_to "$f" "$b/seed-trunc-half.annb" $(($(stat -c %s "$f") / 2))
flip "$f" "$b/seed-flip-major.annb" 8
flip "$f" "$b/seed-flip-section-count.annb" 40
flip "$f" "$b/seed-flip-checksum.annb" 120
flip "$f" "$b/seed-flip-entry-offset.annb" $((128 + 17))
meta=$(le $(($(entry_of META "$f") + 16)) 8 "$f")
ids=$(le $(($(entry_of 'IDS ' "$f") + 16)) 8 "$f")
vecs=$(le $(($(entry_of VECS "$f") + 16)) 8 "$f")
flip "$f" "$b/seed-flip-meta-dim.annb" "$meta"
flip "$f" "$b/seed-flip-meta-index.annb" $((meta + 64))
flip "$f" "$b/seed-flip-ids.annb" $((ids + 7))
flip "$f" "$b/seed-flip-vecs.annb" $((vecs + 3))
f=$b/seed-flat-cosine-catalog.annb
for kind in TOFF TTLS GVOC GBIT; do
    at=$(le $(($(entry_of "$kind" "$f") + 16)) 8 "$f")
    size=$(le $(($(entry_of "$kind" "$f") + 24)) 8 "$f")
    flip "$f" "$b/seed-flip-$(echo "$kind" | tr A-Z a-z).annb" $((at + size / 2))
done
# A FAIS byte changed: refused by its checksum, with or without repair.
f=$b/seed-ivf2-flat.annb
fais=$(le $(($(entry_of FAIS "$f") + 16)) 8 "$f")
flip "$f" "$b/seed-flip-fais.annb" $((fais + 40))

# ---- hostile FAIS sections (SPEC 6.17): crafted, every checksum valid ----
# Fields by the Faiss 1.7.3 layout (faiss/impl/index_read.cpp): fourcc at 0,
# ntotal at 8; an IVF's nprobe at 45, its quantizer's ntotal at 61. The
# checksums are recomputed by annb-test-damage (BUILD_DIR/tests).
dmg() { "$build/tests/annb-test-damage" "$@"; }
ab "$tmp/wide.tsv" -m l2 -i 'IVF2,SQ8' -t 1 -o "$tmp/ivfsq.annb" 2>/dev/null
f=$tmp/ivfsq.annb
dmg "$f" "$b/hostile-fais-ivf-quantizer-ntotal.annb" fais64:61 3   # more centroids than lists
dmg "$f" "$b/hostile-fais-ivf-nprobe.annb" fais64:45 1000
dmg "$f" "$b/hostile-fais-unknown-type.annb" fais32:0 0x5a5a7849  # 'IxZZ'
ab "$tmp/wide.tsv" -m l2 -i HNSW8 -t 1 -o "$tmp/hnsw.annb" 2>/dev/null
cp "$tmp/hnsw.annb" "$b/seed-hnsw8.annb"
# read_HNSW after the 37-byte header: five vectors (u64 size, then the
# elements: double, int, int, size_t, int), then entry_point, max_level,
# efConstruction, efSearch.
fais=$(le $(($(entry_of FAIS "$tmp/hnsw.annb") + 16)) 8 "$tmp/hnsw.annb")
at=37
for w in 8 4 4 8; do at=$((at + 8 + w * $(le $((fais + at)) 8 "$tmp/hnsw.annb"))); done
neighbors=$((at + 8))
at=$((at + 8 + 4 * $(le $((fais + at)) 8 "$tmp/hnsw.annb")))
dmg "$tmp/hnsw.annb" "$b/hostile-fais-hnsw-entry-point.annb" fais32:$at 12
dmg "$tmp/hnsw.annb" "$b/hostile-fais-hnsw-max-level.annb" fais32:$((at + 4)) 30
dmg "$tmp/hnsw.annb" "$b/hostile-fais-hnsw-efsearch.annb" fais32:$((at + 12)) 268435456
dmg "$tmp/hnsw.annb" "$b/hostile-fais-hnsw-neighbor.annb" fais32:$neighbors 1000
dmg "$tmp/hnsw.annb" "$b/hostile-fais-hnsw-storage-ntotal.annb" fais64:$((at + 28)) 11
# String IDs (SPEC 6.19): items and users with keys, and their tables flipped
printf 'item_id,embedding\ntt001,"[1,0]"\nsku-\303\244,"[0,1]"\n123,"[0.5,0.5]"\n' >"$tmp/keys.csv"
printf 'user_id,embedding\nalice,"[1,0]"\nbob,"[0,1]"\n' >"$tmp/keyusers.csv"
printf 'user_id,item_id\nalice,tt001\nbob,123\n' >"$tmp/keyseen.csv"
ab "$tmp/keys.csv" -o "$b/seed-keys.annb" --users "$tmp/keyusers.csv" \
    --interactions "$tmp/keyseen.csv"
for kind in IKOF IKEY UKOF UKEY; do
    at=$(le $(($(entry_of $kind "$b/seed-keys.annb") + 16)) 8 "$b/seed-keys.annb")
    flip "$b/seed-keys.annb" "$b/seed-flip-$(echo "$kind" | tr A-Z a-z).annb" $((at + 9))
done
: >"$b/seed-empty.annb"
printf 'not a bundle\n' >"$b/seed-text.annb"

# ---- embeddings ----
e=$corpus/embeddings
cp "$tmp/items.csv" "$e/seed-spark.csv"
cp "$tmp/wide.tsv" "$e/seed-wide.tsv"
cp "$data/ingest/items_spark.csv" "$e/seed-spark-edge.csv"
cp "$data/ingest/items_wide.tsv" "$e/seed-wide-bom-crlf.tsv"
printf 'id,f0,f1\n1,0.5,2\n2,-1e-3,3e38\r\n3,4,5' >"$e/seed-wide-mixed-eol.csv"
printf 'movieId,features\r1,"[1,2]"\r2,"[3,4]"\r\r' >"$e/seed-spark-cr.csv"
printf '' >"$e/seed-empty.csv"
printf 'id,features\n' >"$e/seed-header-only.csv"
printf 'name,features\n1,"[1]"\n' >"$e/seed-bad-header.csv"
printf 'id,features\n1,"[1,2]"\n2,"[1]"\n' >"$e/seed-bad-dimension.csv"
printf 'id,features\n1,"[1,2]"\n1,"[3,4]"\n' >"$e/seed-bad-duplicate.csv"
printf 'id,features\n1,"[1,nan]"\n' >"$e/seed-bad-nan.csv"
printf 'id,features\n1,"[1,1e39]"\n' >"$e/seed-bad-overflow.csv"
printf 'id,features\n1,"[1,2"\n' >"$e/seed-bad-json.csv"
printf 'id,features\n1,"[1,2]\n' >"$e/seed-bad-quote.csv"
printf 'id,features\n-9223372036854775808,"[1]"\n' >"$e/seed-bad-id-reserved.csv"
printf 'id,features\n99999999999999999999,"[1]"\n' >"$e/seed-bad-id-range.csv"
printf 'id,f0\n1,2\n\n3,4\n' >"$e/seed-bad-blank-line.csv"
printf 'id\tf0\tf1\n1\t2\n' >"$e/seed-bad-fields.tsv"
# Rows for the shortcut of usual Spark rows (embeddings.c) next to rows it
# must leave to libcsv and cJSON; the harness compares both ways.
printf 'id,features\n1,"[0.5, -1.25e-3]"\n2,"[0.1234567,-1.2345678E-4]"\r\n3,"[ 1 , 2 ]"\r4,"[01,1.]"\n5,"[-.5,0]"\n' \
    >"$e/seed-shortcut-shapes.csv"
printf 'id,features\n1,"[1,2]"\n2,"[16777217,-6.804300894904020e+24]"\n3,"[1e-50,3.4028235e38]"\n4,"[0.0000000000000000000000000000000000000000000000000000000000001,2]"\n5,"[0.00000000000000000000000000000000000000000000000000000000000001,2]"\n' \
    >"$e/seed-shortcut-numbers.csv"
printf 'id,features\n1,"[1,2]"\n2,"[1,2,3]"\n' >"$e/seed-shortcut-bad-dimension.csv"
printf 'id,features\n1,"[1,2]"\n2,"[1,3.40282357e38]"\n' >"$e/seed-shortcut-bad-overflow.csv"
printf 'id,features\n1,"[1,2]"\n2,"[1,2]" \n3,"[1,2]"x\n' >"$e/seed-shortcut-bad-after-quote.csv"
printf 'id\tfeatures\n1\t[1, 2]\n2\t[3, 4]\n3\t"[5,6]"\n' >"$e/seed-shortcut-tsv.tsv"
printf 'id,features\n1,"[1,2]"\ntt0114709,"[3,4]"\n2,"[5,6]"\n' >"$e/seed-keys-mixed.csv"
printf 'id,features\nab,"[1,2]"\n12.0,"[3,4]"\n' >"$e/seed-bad-keys-float.csv"

# ---- catalogs ----
c=$corpus/catalog
cp "$data/cli/movies.dat" "$c/seed-cli.dat"
cp "$data/cli/movies.csv" "$c/seed-cli.csv"
cp "$data/ingest/movies.dat" "$c/seed-latin1.dat"
cp "$data/ingest/movies.csv" "$c/seed-bom-crlf.csv"
printf '1::Caf\351 (2001)::Comedy|Drama\r\n2::Nothing::(no genres listed)\r\n\r\n' \
    >"$c/seed-latin1-crlf.dat"
printf '' >"$c/seed-empty.dat"
printf '1::Title\n' >"$c/seed-bad-fields.dat"
printf '1::::Drama\n' >"$c/seed-bad-empty-title.dat"
printf '1::A::Drama||Comedy\n' >"$c/seed-bad-empty-genre.dat"
printf '1::A::Drama\n1::B::Comedy\n' >"$c/seed-bad-duplicate.dat"
printf 'x::A::Drama\n' >"$c/seed-bad-id.dat"
printf 'movieId,title,genres\n1,"Bad \377 UTF-8",Drama\n' >"$c/seed-bad-utf8.csv"
printf 'movieId,title,genres\n1,"Unterminated,Drama\n' >"$c/seed-bad-quote.csv"
printf 'movieId,title,genres\n1,"Tab\there",Drama\n' >"$c/seed-bad-control.csv"

du -sh "$corpus"
