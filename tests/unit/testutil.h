/*
 * testutil.h - what the unit tests share: a seeded PRNG, temporary
 * directories and files, generated embeddings written as real input files,
 * and an independent brute-force search in double precision.
 *
 * The brute force here is the tests' own reference: it never calls libannb
 * or Faiss, so a test that compares the library against it compares two
 * independent computations over the same vectors.
 */
#ifndef ANNB_TESTUTIL_H
#define ANNB_TESTUTIL_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* ---- PRNG (splitmix64: tiny, seeded, the same on every platform) ---- */
typedef struct tu_rng {
    uint64_t state;
} tu_rng;

void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
/* Uniform in [0, n). */
uint64_t tu_rng_below(tu_rng *r, uint64_t n);
/* Uniform in [lo, hi). */
double tu_rng_uniform(tu_rng *r, double lo, double hi);
/* Fisher-Yates shuffle of n elements of `size` bytes. */
void tu_rng_shuffle(tu_rng *r, void *base, size_t n, size_t size);

/* ---- files and temporary directories (abort the test on failure) ---- */

/* Creates a fresh directory under $TMPDIR (or /tmp); writes its path into dir. */
void tu_tmpdir_make(char dir[256]);
/* Removes the directory and every plain file in it. */
void tu_tmpdir_remove(const char *dir);
/* dir + "/" + name into out (a buffer of 512 bytes). */
const char *tu_path(char out[512], const char *dir, const char *name);
void tu_write_file(const char *path, const void *data, size_t size);
void tu_write_text(const char *path, const char *text);
/* The whole file, malloc'd, with a NUL after the last byte; *size gets the
 * length. Returns NULL (and *size = 0) if the file cannot be read. */
uint8_t *tu_read_file(const char *path, size_t *size);
/* Number of directory entries other than "." and "..". */
size_t tu_dir_entry_count(const char *dir);

/* ---- generated embeddings ---- */
typedef struct tu_data {
    size_t n;
    uint32_t d;
    int64_t *ids;   /* n IDs, in file order */
    float *vecs;    /* n * d floats, row i belongs to ids[i] */
} tu_data;

/* n rows of d uniform values in [-1, 1), IDs from `ids` (copied, file order
 * is the order given). */
void tu_data_make(tu_data *out, size_t n, uint32_t d, const int64_t *ids, tu_rng *r);
/* n rows around `clusters` random centres (noise `spread`): clustered data
 * on which an IVF index with that many lists finds most true neighbours. */
void tu_data_make_clustered(tu_data *out, size_t n, uint32_t d, const int64_t *ids,
                            unsigned clusters, double spread, tu_rng *r);
void tu_data_free(tu_data *t);
/* Row of id in t (file order), or -1. */
long tu_data_row(const tu_data *t, int64_t id);
/* Is id one of t's IDs? */
int tu_data_has(const tu_data *t, int64_t id);

/* The IDs the search tests use: far from row positions, some negative,
 * gapped, and in shuffled (non-monotone) order: 1000003*i % 99991 + 7,
 * every fifth one negated. */
void tu_scattered_ids(int64_t *out, size_t n, tu_rng *r);

/* The usual start of a test fixture: seeds r, makes a temporary directory
 * (dir), n rows of d uniform values with tu_scattered_ids() IDs (t), and
 * writes them as dir/items.csv (csv). r continues for the caller. */
void tu_items_setup(tu_data *t, tu_rng *r, char dir[256], char csv[512], size_t n, uint32_t d,
                    uint64_t seed);

/* Writes t as a Spark-form CSV: header `id,features`, each row
 * `ID,"[v0, v1, ...]"` with %.9g so every float round-trips exactly. */
void tu_write_spark_csv(const char *path, const tu_data *t);

/* ---- brute force (double precision, independent of libannb/Faiss) ---- */

/* Score of item row `row` for query q under metric m, as annb defines it:
 * ip: dot product; l2: squared Euclidean distance; cosine: cosine of the
 * angle (item and query normalised in double). */
double tu_score(const tu_data *t, size_t row, const float *q, annb_metric m);

typedef struct tu_ranked {
    int64_t id;
    double score;
} tu_ranked;

/* All items not in exclude[0..nexclude), best first for metric m (ip and
 * cosine: descending; l2: ascending). Returns a malloc'd array; *count gets
 * its length. */
tu_ranked *tu_brute_force(size_t *count, const tu_data *t, const float *q, annb_metric m,
                          const int64_t *exclude, size_t nexclude);

/* Two scores are tied when they differ by at most this (relative, floor 1). */
#define TU_TIE_EPS 1e-5
/* A returned score must equal the reference within this (relative, floor 1). */
#define TU_SCORE_EPS 1e-4

int tu_close(double a, double b, double eps);

/*
 * Checks k hits against the brute-force ranking of the same query, failing
 * the current cmocka test with a description on the first difference:
 *  - slot j < min(k, ranked count) holds a real, distinct ID of t that is
 *    not excluded;
 *  - its score equals the brute-force score of THAT ID (TU_SCORE_EPS), so a
 *    wrong ID cannot hide behind a right score;
 *  - its brute-force score is tied (TU_TIE_EPS) with the brute-force score at
 *    rank j: the IDs equal the reference's, in order, except that items
 *    whose scores tie may come in either order (sets over tie groups);
 *  - slots past the ranked count hold ANNB_ID_NONE.
 * `what` names the case in the failure message.
 */
void tu_check_hits(const tu_data *t, const float *q, annb_metric m, const int64_t *exclude,
                   size_t nexclude, const annb_hit *hits, size_t k, const char *what);

/* Mean recall@k of b's answers (opts, may be NULL) to `count` query vectors
 * (count x t->d floats), one search each, against the brute force of t
 * under metric m: the share of the true top k found in the top k. */
double tu_recall(const annb_bundle *b, const tu_data *t, const float *queries, size_t count,
                 size_t k, annb_metric m, const annb_search_opts *opts);

/* Builds `csv` (+ optional catalog) into `out` with metric and index; fails
 * the test with the library's message if annb_build does not return OK. */
void tu_build(annb_build_report *rep, const char *csv, const char *catalog, const char *out,
              annb_metric m, const char *index);
/* Opens a bundle (flags: ANNB_OPEN_*), failing the test with the message on error. */
annb_bundle *tu_open(const char *path, unsigned flags);

/* ---- editing bundle bytes (format/SPEC.md §2), without libannb ----
 * Header-only so that the CLI tests' annb-test-damage tool, which does not
 * link cmocka, shares it. */
#include <xxhash.h>

#define TU_HDR_MAJOR 8           /* u16 */
#define TU_HDR_MINOR 10          /* u16 */
#define TU_HDR_REQUIRED 24       /* u64 required-feature bits */
#define TU_HDR_OPTIONAL 32       /* u64 optional-feature bits */
#define TU_HDR_SECTION_COUNT 40  /* u32 */
#define TU_HDR_CHECKSUM 120      /* u64 XXH3-64 of [0, 120) + the section table */
#define TU_HDR_SIZE 128
#define TU_ENTRY_SIZE 64

static inline uint64_t tu_get_le(const uint8_t *p, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline void tu_put_le(uint8_t *p, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the header checksum of a bundle image after a header edit, so
 * that the reader gets past the checksum to the edited field. Returns 0, or
 * -1 if the image is too small for its own section table. */
static inline int tu_header_rehash(uint8_t *data, size_t size)
{
    if (size < TU_HDR_SIZE) return -1;
    uint64_t table = tu_get_le(data + TU_HDR_SECTION_COUNT, 4) * TU_ENTRY_SIZE;
    if (table > size - TU_HDR_SIZE) return -1;
    XXH3_state_t *st = XXH3_createState();
    if (!st) return -1;
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, data, TU_HDR_CHECKSUM);
    XXH3_64bits_update(st, data + TU_HDR_SIZE, (size_t)table);
    tu_put_le(data + TU_HDR_CHECKSUM, 8, XXH3_64bits_digest(st));
    XXH3_freeState(st);
    return 0;
}

#define TU_ENTRY_OFFSET 16   /* u64, in a table entry */
#define TU_ENTRY_STORED 24   /* u64 */
#define TU_ENTRY_CHECKSUM 48 /* u64 XXH3-64 of the stored bytes */

/* Recomputes the checksum of table entry i after its stored bytes were
 * edited, then the header checksum: the damage is then only in the meaning. */
static inline int tu_section_rehash(uint8_t *data, size_t size, uint32_t i)
{
    if (size < TU_HDR_SIZE || i >= tu_get_le(data + TU_HDR_SECTION_COUNT, 4) ||
        (uint64_t)i * TU_ENTRY_SIZE + TU_HDR_SIZE + TU_ENTRY_SIZE > size)
        return -1;
    uint8_t *e = data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE;
    uint64_t off = tu_get_le(e + TU_ENTRY_OFFSET, 8), len = tu_get_le(e + TU_ENTRY_STORED, 8);
    if (off > size || len > size - off) return -1;
    tu_put_le(e + TU_ENTRY_CHECKSUM, 8, XXH3_64bits(data + off, (size_t)len));
    return tu_header_rehash(data, size);
}

#endif /* ANNB_TESTUTIL_H */
