/*
 * sections.h - what the bundle's sections mean (internal to libannb).
 *
 * format/ knows sections as checksummed byte ranges; this file knows their
 * content. format/SPEC.md section 6 is the normative description.
 */
#ifndef ANNB_SECTIONS_H
#define ANNB_SECTIONS_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* Section kinds of format 1.0. Critical ones: a reader must understand them. */
#define ANNB_KIND_META "META" /* critical: dimension, count, metric, index */
#define ANNB_KIND_IDS "IDS " /* critical: int64 external IDs, ascending */
#define ANNB_KIND_VECS "VECS" /* critical: float32 vectors, row-major */
#define ANNB_KIND_FAISS "FAIS" /* critical: serialized Faiss index (absent for Flat) */
#define ANNB_KIND_TITLE_OFFSETS "TOFF" /* u64 start offsets of titles, count + 1 */
#define ANNB_KIND_TITLES "TTLS" /* NUL-terminated UTF-8 titles, one per row */
#define ANNB_KIND_GENRE_NAMES "GVOC" /* NUL-terminated UTF-8 genre names */
#define ANNB_KIND_GENRE_BITS "GBIT" /* u64 bitset words per row */

#define ANNB_KIND_USER_IDS "UIDS" /* critical: int64 user IDs, ascending */
#define ANNB_KIND_USER_VECS "UVEC" /* critical: float32 user vectors, row-major */
#define ANNB_KIND_SEEN_OFFSETS "SOFF" /* critical: u64 per user row, users + 1 */
#define ANNB_KIND_SEEN_ROWS "SEEN" /* critical: u32 item rows each user has seen */
#define ANNB_KIND_BUILD "BILD" /* provenance: key=value lines, UTF-8 (SPEC 6.13) */
#define ANNB_KIND_TUNE "TUNE" /* measured recall and the search parameters reaching it (6.14) */
#define ANNB_KIND_TUNE_K "TUNK" /* the same for several k (6.16) */
/* annb's own IVF-Flat (SPEC 6.15), all critical: */
#define ANNB_KIND_IVF_CENTROIDS "IVCT" /* float32 nlist x d */
#define ANNB_KIND_IVF_OFFSETS "IVOF"   /* u64 nlist + 1: list l is positions [IVOF[l], IVOF[l+1]) */
#define ANNB_KIND_IVF_ROWS "IVRW"      /* u32 n: the row at each position */
#define ANNB_KIND_IVF_VECS "IVEC"      /* float32 n x d: its vector (bulk, SPEC 3.11) */

/* Number of kinds above: the most sections a reader decodes. */
/* annb's own graph (SPEC 6.18), both critical: */
#define ANNB_KIND_GRAPH_ADJ "GADJ"   /* u32 n x degree: neighbour rows (bulk, SPEC 3.11) */
#define ANNB_KIND_GRAPH_ENTRY "GENT" /* u32 entry rows */
#define ANNB_KIND_GRAPH_CODES "GCOD" /* bytes n x d: 8-bit codes (bulk), with ",SQ8" */
#define ANNB_KIND_GRAPH_SQ "GSQP"    /* f32 2 x d: the codes' lo and step */
#define ANNB_KIND_GRAPH_ROWS "GROW"  /* u32 n: the row at each graph position (bulk), with ",SQ8" */
/* String IDs (SPEC 6.19), critical, bulk (3.11): key offsets (u64 count + 1)
 * and key text (each key and a NUL), of the items and of the users. */
#define ANNB_KIND_ITEM_KEY_OFFSETS "IKOF"
#define ANNB_KIND_ITEM_KEYS "IKEY"
#define ANNB_KIND_USER_KEY_OFFSETS "UKOF"
#define ANNB_KIND_USER_KEYS "UKEY"
#define ANNB_KIND_COUNT 28

/* Is this index string annb's own IVF-Flat, "IVF<nlist>,Flat"? Sets *nlist. */
int annb_index_native_ivf(const char *index, uint32_t *nlist);
/* Is this index string annb's own graph, "Graph<degree>" or
 * "Graph<degree>,SQ8" (walked on 8-bit codes)? Sets *degree and *sq8. */
int annb_index_native_graph(const char *index, uint32_t *degree, int *sq8);

#define ANNB_META_SIZE 64u /* fixed part of META; the index string follows */
#define ANNB_META_FLAG_NORMALIZED 0x1u
#define ANNB_META_FLAG_MIPS_L2 0x2u /* FAIS indexes (x, sqrt(M^2 - |x|^2)) as L2 (6.4) */
#define ANNB_MAX_INDEX_DESC 256u

/* The index string meaning "exact search over VECS, no FAIS section". */
#define ANNB_INDEX_FLAT "Flat"

typedef struct annb_meta {
    uint32_t dimension;
    uint64_t count;
    annb_metric metric;
    uint32_t flags;
    char index[ANNB_MAX_INDEX_DESC + 1];
} annb_meta;

/* TUNE (SPEC 6.14): how well the index answers, measured at build time
 * against exact search, and the search parameters that reached it. */
#define ANNB_TUNE_SIZE 64u
typedef enum annb_tune_source {
    ANNB_TUNE_EXACT = 0, /* Flat: exact by construction, nothing measured */
    ANNB_TUNE_ITEMS = 1, /* sampled items as "similar items" questions (self excluded) */
    ANNB_TUNE_USERS = 2, /* sampled user vectors */
} annb_tune_source;

/* One row of TUNK (SPEC 6.16): recall@k and the parameter reaching it. */
typedef struct annb_tune_row {
    uint32_t k, queries;
    double recall;
    uint32_t nprobe, ef_search;
} annb_tune_row;
#define ANNB_TUNE_MAX_ROWS 16u
#define ANNB_TUNK_HEADER 16u
#define ANNB_TUNK_ROW 32u

typedef struct annb_tune {
    uint32_t k;           /* recall@k; 0 for EXACT */
    uint32_t queries;     /* questions measured; 0 for EXACT */
    double target;        /* recall asked for, in (0, 1] */
    double recall;        /* measured at the parameters below, in [0, 1] */
    annb_tune_source source;
    uint32_t nprobe;      /* IVF lists probed; 0: not an IVF index */
    uint32_t ef_search;   /* HNSW candidate list; 0: not HNSW */
    uint32_t rerank;      /* compressed codes: k x rerank candidates re-ranked exactly; 0: none */
    /* TUNK (6.16): the same for each k measured, ascending, one of them
     * TUNE's k; nrows 0 when the bundle has none (1.1, or exact). */
    uint32_t nrows;
    annb_tune_row rows[ANNB_TUNE_MAX_ROWS];
    int given_queries;    /* USERS questions came from a --tune-vectors file, not UVEC */
} annb_tune;

/* The search parameters for a question of k results: those tuned for the
 * smallest k measured at or above it (the largest when k is above all),
 * else TUNE's. */
void annb_tune_params_for_k(const annb_tune *t, size_t k, uint32_t *nprobe, uint32_t *ef_search);

/* TUNK bytes for t's rows (ANNB_TUNK_HEADER + nrows * ANNB_TUNK_ROW, at
 * most ANNB_TUNK_HEADER + ANNB_TUNE_MAX_ROWS * ANNB_TUNK_ROW into buf). */
size_t annb_tunk_encode(uint8_t *buf, const annb_tune *t);
/* Decodes TUNK into t (whose TUNE part is already decoded) and checks that
 * both agree. ANNB_E_CORRUPT with msg otherwise. */
int annb_tunk_decode(annb_tune *t, const uint8_t *data, size_t size, char *msg, size_t msgsz);

/* The public view of a TUNE (annb_recall_info), and of its TUNK row i
 * (i < t->nrows): that row's k, recall and parameters, the rest TUNE's. */
void annb_recall_from_tune(annb_recall_info *out, const annb_tune *t);
void annb_recall_from_tune_row(annb_recall_info *out, const annb_tune *t, uint32_t i);

size_t annb_tune_encode(uint8_t buf[ANNB_TUNE_SIZE], const annb_tune *t);
int annb_tune_decode(annb_tune *out, const uint8_t *data, size_t size, char *msg, size_t msgsz);

/* Encodes m into buf (ANNB_META_SIZE + strlen(index) bytes); returns the
 * number of bytes written, or 0 if buf is too small. */
size_t annb_meta_encode(uint8_t *buf, size_t size, const annb_meta *m);
/* Decodes and checks a META payload; on failure returns ANNB_E_CORRUPT with
 * a description in msg. */
int annb_meta_decode(annb_meta *out, const uint8_t *data, size_t size, char *msg, size_t msgsz);

/* Row of `id` in ascending ids[0..n) (IDS, UIDS), or -1: binary search. */
int64_t annb_row_in(const int64_t *ids, uint64_t n, int64_t id);

/* Is this a section kind of format 1.0? (for annbf_file_verify) */
int annb_kind_known(const char kind[4]);

#endif /* ANNB_SECTIONS_H */
