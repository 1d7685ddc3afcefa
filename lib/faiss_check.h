/*
 * faiss_check.h - annb's own walk of a serialized Faiss 1.7.3 index (the
 * FAIS section, SPEC 6.17), run before Faiss's read_index sees the bytes
 * (internal).
 *
 * Faiss 1.7.3's reader allocates declared lengths before checking them and
 * never range-checks graph or list references, so a blob with a valid
 * checksum can crash it or the searches after it. This checker reads the
 * bytes exactly as faiss/impl/index_read.cpp does, for the index types annb
 * writes, and accepts a blob only if every length fits in the bytes that
 * remain, every cross-reference is in range and the whole blob is consumed.
 * A blob it accepts is one Faiss parses without throwing (so without
 * leaking: read_index leaks what it allocated when it throws) and searches
 * without reading out of bounds.
 *
 * Search fields are refused, not clamped: IVF nprobe must be in 1..nlist,
 * HNSW efSearch and upper_beam in 1..ANNB_FAISS_MAX_EF_SEARCH.
 *
 * A pure function of bytes: no Faiss call, no I/O.
 */
#ifndef ANNB_FAISS_CHECK_H
#define ANNB_FAISS_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Largest HNSW efSearch (and upper_beam) a FAIS section may hold: the
 * candidate lists of every search are sized by it. */
#define ANNB_FAISS_MAX_EF_SEARCH 65536
/* Largest IVF-PQ precomputed table (nlist x M x 2^nbits floats) Faiss may
 * build at load for by_residual, in bytes: bounds what a small blob can
 * make the reader allocate. */
#define ANNB_FAISS_MAX_PQ_TABLE_BYTES (256u << 20)

/* What META says the index must be (MIPS-to-L2: d + 1 and L2). */
typedef struct annb_faiss_expect {
    uint64_t d, ntotal;
    int metric; /* Faiss's: 0 inner product, 1 L2 */
} annb_faiss_expect;

/* Where the checker found a field, by name ("index.ntotal",
 * "hnsw.entry_point", "storage.d", "invlists.sizes", ...): for tests that
 * craft hostile blobs. `at` is the byte offset in the blob of the field (of
 * a vector: its first element, after the size word). */
typedef struct annb_faiss_mark {
    char name[32];
    uint64_t at;
} annb_faiss_mark;

typedef struct annb_faiss_check_out {
    uint64_t bad_at;   /* on failure: offset in the blob of the offending field */
    char message[240]; /* on failure: what was found and what was expected */
    int unknown_type;  /* on failure: an index type the checker does not know */
    annb_faiss_mark *marks; /* in, may be NULL: room for mark_cap marks */
    size_t mark_cap;
    size_t mark_count; /* out */
} annb_faiss_check_out;

/* Checks blob[0..size) against `want`. Returns 0 when Faiss may read it,
 * ANNB_E_CORRUPT otherwise (out->bad_at, out->message, out->unknown_type).
 * Allocates nothing; reads each byte of the blob a bounded number of times. */
int annb_faiss_check(const void *blob, size_t size, const annb_faiss_expect *want,
                     annb_faiss_check_out *out);

#endif
