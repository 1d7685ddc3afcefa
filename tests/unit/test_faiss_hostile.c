/*
 * test_faiss_hostile.c - crafted FAIS sections (the serialized Faiss index)
 * with valid checksums, for every index type annb writes through Faiss:
 * each must give ANNB_E_CORRUPT naming FAIS from annb_open and annb_verify,
 * before Faiss 1.7.3's reader (which trusts its input) sees the bytes. The
 * unmodified bundles must open and answer as a brute force does.
 *
 * Fields are located by the checker's marks (annb_faiss_check_out.marks);
 * the marks are themselves checked against the Faiss 1.7.3 layout written
 * out here (the header fields' fixed offsets) and against the values the
 * build put there (counts, dimensions), and the walk is only trusted
 * because Faiss reads the very same good blob.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "faiss_check.h"
#include "faiss_glue.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 600
#define D 8
#define K 10

typedef struct fixture {
    char dir[256], csv[512], scratch[512];
    tu_data t;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_rng r;
    tu_items_setup(&fx->t, &r, fx->dir, fx->csv, N, D, 99);
    tu_path(fx->scratch, fx->dir, "hostile.annb");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tu_tmpdir_remove(fx->dir);
    tu_data_free(&fx->t);
    free(fx);
    return 0;
}

/* A built bundle, its bytes, and where its FAIS section lies. */
typedef struct built {
    char path[512];
    uint8_t *bytes;
    size_t size;
    uint32_t entry; /* table entry of FAIS */
    uint64_t off, len;
    annb_faiss_mark marks[256];
    size_t nmarks;
} built;

/* mips: the MIPS-to-L2 reduction (SPEC 6.4): FAIS is L2 over d + 1. */
static void build_one(built *b, const fixture *fx, const char *index, annb_metric m, int mips)
{
    char name[64];
    snprintf(name, sizeof name, "%s-%d.annb", index, (int)m);
    for (char *p = name; *p; p++)
        if (*p == ',') *p = '_';
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_error err = {0};
    o.metric = m;
    o.index = index;
    o.mips_reduction = mips;
    if (annb_build(NULL, fx->csv, NULL, tu_path(b->path, fx->dir, name), &o, &err))
        fail_msg("annb_build %s: %s", index, err.message);
    b->bytes = tu_read_file(b->path, &b->size);
    assert_non_null(b->bytes);
    uint32_t n = (uint32_t)tu_get_le(b->bytes + TU_HDR_SECTION_COUNT, 4), i;
    for (i = 0; i < n; i++)
        if (memcmp(b->bytes + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE, "FAIS", 4) == 0) break;
    if (i == n) fail_msg("%s: no FAIS section", index);
    const uint8_t *e = b->bytes + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE;
    b->entry = i;
    b->off = tu_get_le(e + TU_ENTRY_OFFSET, 8);
    b->len = tu_get_le(e + TU_ENTRY_STORED, 8);

    annb_faiss_expect want = {D + (mips ? 1 : 0), N, m == ANNB_METRIC_L2 || mips};
    annb_faiss_check_out out = {.marks = b->marks, .mark_cap = 256};
    int rc = annb_faiss_check(b->bytes + b->off, (size_t)b->len, &want, &out);
    if (rc) fail_msg("%s: the checker refuses the good blob: at %llu: %s", index,
                     (unsigned long long)out.bad_at, out.message);
    b->nmarks = out.mark_count;
    /* The header layout of read_index_header: fourcc, d (int), ntotal
     * (int64), two unused int64, is_trained (bool), metric (int). */
    assert_memory_equal(b->bytes + b->off, index[0] == 'H'   ? "IHNf"
                                           : index[0] == 'I' && index[1] == 'V' ? "Iw"
                                           : index[0] == 'I' ? "IxM"
                                           : index[0] == 'P' && index[1] == 'Q' ? "IxPq"
                                           : index[0] == 'P' ? "IxPT"
                                                             : "IxSQ",
                        index[0] == 'I' ? (index[1] == 'V' ? 2 : 3) : 4);
    assert_int_equal(tu_get_le(b->bytes + b->off + 4, 4), want.d);
    assert_int_equal(tu_get_le(b->bytes + b->off + 8, 8), N);
    assert_int_equal(tu_get_le(b->bytes + b->off + 33, 4), want.metric);
}

static uint64_t mark_at(const built *b, const char *name, int nth)
{
    for (size_t i = 0; i < b->nmarks; i++)
        if (strcmp(b->marks[i].name, name) == 0 && nth-- == 0) return b->marks[i].at;
    fail_msg("no mark '%s' in %s", name, b->path);
    return 0;
}

/* The good bundle opens, verifies, and answers each of 20 item vectors
 * with recall@10 of at least `min_recall` against the test's brute force
 * (1.0: every hit checked by tu_check_hits). */
static void check_good(const fixture *fx, const built *b, annb_metric m, double min_recall)
{
    annb_bundle *h = tu_open(b->path, 0);
    annb_error err;
    assert_int_equal(annb_verify(h, &err), ANNB_OK);
    annb_hit hits[K];
    annb_search_opts so = ANNB_SEARCH_OPTS_INIT;
    size_t found = 0, want = 0;
    for (size_t q = 0; q < 20; q++) {
        const float *qv = fx->t.vecs + q * 29 * D;
        assert_int_equal(annb_search(h, qv, 1, K, &so, hits), ANNB_OK);
        size_t count;
        tu_ranked *ref = tu_brute_force(&count, &fx->t, qv, m, NULL, 0);
        if (min_recall >= 1.0) tu_check_hits(&fx->t, qv, m, NULL, 0, hits, K, b->path);
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) found += hits[j].id == ref[i].id;
        want += K;
        free(ref);
    }
    annb_close(h);
    double recall = (double)found / (double)want;
    if (recall < min_recall) fail_msg("%s: recall@10 %.3f below %.2f", b->path, recall, min_recall);
}

typedef struct edit {
    const char *what;
    const char *mark; /* field, by the checker's name */
    int nth;          /* which occurrence of the mark */
    int64_t delta;    /* bytes past the mark (e.g. -8: a vector's size word) */
    unsigned width;
    uint64_t value;
    int add;          /* add value to the field instead of setting it */
} edit;

/* Applies e to a copy of b, repairs the checksums, and expects annb_open
 * and annb_verify to refuse it with ANNB_E_CORRUPT naming FAIS. */
static void expect_refused(const fixture *fx, const built *b, const edit *e, const char *expect)
{
    uint8_t *img = malloc(b->size);
    assert_non_null(img);
    memcpy(img, b->bytes, b->size);
    uint8_t *field = img + b->off + mark_at(b, e->mark, e->nth) + e->delta;
    uint64_t v = e->add ? tu_get_le(field, e->width) + e->value : e->value;
    tu_put_le(field, e->width, v);
    assert_int_equal(tu_section_rehash(img, b->size, b->entry), 0);
    tu_write_file(fx->scratch, img, b->size);
    free(img);

    annb_bundle *h = NULL;
    annb_error err;
    int rc = annb_open(&h, fx->scratch, NULL, &err);
    if (rc != ANNB_E_CORRUPT || !strstr(err.message, "FAIS at byte") ||
        (expect && !strstr(err.message, expect)))
        fail_msg("%s, %s: annb_open gave %d (%s)", b->path, e->what, rc, rc ? err.message : "ok");
    if (getenv("ANNB_TEST_VERBOSE")) printf("%-40s %s\n", e->what, err.message);
    annb_close(h);
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = ANNB_OPEN_STRUCTURE_ONLY;
    assert_int_equal(annb_open(&h, fx->scratch, &oo, &err), ANNB_OK);
    rc = annb_verify(h, &err);
    if (rc != ANNB_E_CORRUPT || !strstr(err.message, "FAIS at byte"))
        fail_msg("%s, %s: annb_verify gave %d (%s)", b->path, e->what, rc, rc ? err.message : "ok");
    annb_close(h);
}

static void run_edits(const fixture *fx, const built *b, const edit *edits, size_t n)
{
    for (size_t i = 0; i < n; i++) expect_refused(fx, b, &edits[i], NULL);
}

#define NEDITS(a) (sizeof(a) / sizeof((a)[0]))

static void free_built(built *b) { free(b->bytes); }

/* Edits every index type shares: its header against META, its type. */
static void header_edits(const fixture *fx, const built *b)
{
    const edit e[] = {
        {"ntotal disagrees with META", "index.ntotal", 0, 0, 8, N - 1, 0},
        {"d disagrees with META", "index.d", 0, 0, 4, 3, 0},
        {"metric flipped", "index.metric", 0, 0, 4, 1, 1},
        {"is_trained not a bool", "index.is_trained", 0, 0, 1, 7, 0},
    };
    run_edits(fx, b, e, NEDITS(e));
    const edit unknown = {"unknown index type", "index.type", 0, 0, 4, 0x5a5a7849 /* IxZZ */, 0};
    expect_refused(fx, b, &unknown, "index type 'IxZZ' is not one annb checks; open with "
                   "ANNB_OPEN_TRUST_FAISS / --trust-faiss");
}

static void test_hnsw(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "HNSW32", ANNB_METRIC_L2, 0);
    check_good(fx, &b, ANNB_METRIC_L2, 0.9);
    assert_int_equal(tu_get_le(b.bytes + b.off + mark_at(&b, "storage.ntotal", 0), 8), N);
    uint64_t levels = mark_at(&b, "hnsw.levels", 0);
    assert_int_equal(tu_get_le(b.bytes + b.off + levels - 8, 8), N); /* the size word */
    const edit e[] = {
        {"entry point past ntotal", "hnsw.entry_point", 0, 0, 4, N, 0},
        {"entry point negative", "hnsw.entry_point", 0, 0, 4, (uint32_t)-5, 0},
        {"max level above the levels", "hnsw.max_level", 0, 0, 4, 40, 0},
        {"a node's level past the table", "hnsw.levels", 0, 0, 4, 60, 0},
        {"a node's level 0", "hnsw.levels", 0, 4, 4, 0, 0},
        {"offsets not as the levels say", "hnsw.offsets", 0, 8, 8, 1, 1},
        {"offset past the neighbours", "hnsw.offsets", 0, 8 * N, 8, 1ull << 40, 0},
        {"neighbour ID past ntotal", "hnsw.neighbors", 0, 0, 4, N + 7, 0},
        {"neighbour ID below -1", "hnsw.neighbors", 0, 4, 4, (uint32_t)-2, 0},
        {"neighbour count past the bytes", "hnsw.neighbors", 0, -8, 8, 1ull << 39, 0},
        {"assign_probas count past the bytes", "hnsw.assign_probas", 0, -8, 8, 1ull << 37, 0},
        {"cum_nneighbor_per_level decreasing", "hnsw.cum_nneighbor_per_level", 0, 4, 4,
         (uint32_t)-1, 0},
        {"efSearch 2^28", "hnsw.efSearch", 0, 0, 4, 1u << 28, 0},
        {"efSearch 0", "hnsw.efSearch", 0, 0, 4, 0, 0},
        {"upper_beam 2^30", "hnsw.upper_beam", 0, 0, 4, 1u << 30, 0},
        {"storage count wrong", "storage.ntotal", 0, 0, 8, N + 1, 0},
        {"storage dimension wrong", "storage.d", 0, 0, 4, D - 1, 0},
        {"storage codes count wrong", "storage.codes", 0, -8, 8, 1, 1},
        {"storage of another type", "storage.type", 0, 0, 4, 0x71507849 /* IxPq */, 0},
    };
    run_edits(fx, &b, e, NEDITS(e));
    /* A node of level 1 as a neighbour in the level-1 slots of a node of
     * level 2 or more: Faiss would read the low node's level-1 slots. */
    const uint8_t *f = b.bytes + b.off;
    uint64_t offsets = mark_at(&b, "hnsw.offsets", 0);
    int64_t high = -1, low = -1;
    for (int64_t i = 0; i < N; i++) {
        uint64_t l = tu_get_le(f + levels + 4 * (uint64_t)i, 4);
        if (l >= 2 && high < 0) high = i;
        if (l == 1 && low < 0) low = i;
    }
    assert_true(high >= 0 && low >= 0);
    uint64_t slot = tu_get_le(f + offsets + 8 * (uint64_t)high, 8) + 64; /* 2 x 32 at level 0 */
    const edit up = {"upper-level neighbour without that level", "hnsw.neighbors", 0,
                     (int64_t)(4 * slot), 4, (uint64_t)low, 0};
    expect_refused(fx, &b, &up, "has no level 1");
    header_edits(fx, &b);
    free_built(&b);
}

/* HNSW on inner product: MIPS-to-L2, the index L2 over d + 1. */
static void test_hnsw_mips(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "HNSW16", ANNB_METRIC_IP, 1);
    check_good(fx, &b, ANNB_METRIC_IP, 0.9);
    const edit e[] = {
        {"d without the MIPS dimension", "index.d", 0, 0, 4, D, 0},
        {"inner product instead of L2", "index.metric", 0, 0, 4, 0, 0},
        {"storage inner product", "storage.metric", 0, 0, 4, 0, 0},
    };
    run_edits(fx, &b, e, NEDITS(e));
    free_built(&b);
}

static void ivf_edits(const fixture *fx, const built *b)
{
    const edit e[] = {
        {"quantizer with more centroids than lists", "quantizer.ntotal", 0, 0, 8, 32, 0},
        {"nlist below the quantizer's", "index.nlist", 0, 0, 8, 8, 0},
        {"nprobe past nlist", "index.nprobe", 0, 0, 8, 1000, 0},
        {"nprobe 0", "index.nprobe", 0, 0, 8, 0, 0},
        {"quantizer dimension", "quantizer.d", 0, 0, 4, D + 1, 0},
        {"quantizer of another type", "quantizer.type", 0, 0, 4, 0x664e4849 /* IHNf */, 0},
        {"direct map", "index.direct_map", 0, 0, 1, 1, 0},
        {"list sizes above ntotal", "invlists.sizes", 0, 0, 8, 1, 1},
        {"list size past the bytes", "invlists.sizes", 0, 0, 8, 1ull << 45, 0},
        {"list ID past ntotal", "invlists.ids", 0, 0, 8, N + 3, 0},
        {"list ID negative", "invlists.ids", 0, 0, 8, (uint64_t)-1, 0},
        {"inverted lists' nlist", "invlists.nlist", 0, 0, 8, 17, 0},
        {"inverted lists' code size", "invlists.code_size", 0, 0, 8, 1, 1},
        {"inverted lists of another type", "invlists.nlist", 0, -4, 4, 0x30306c69 /* il00 */, 0},
    };
    run_edits(fx, b, e, NEDITS(e));
    header_edits(fx, b);
}

static void test_ivfpq(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "IVF16,PQ4np", ANNB_METRIC_L2, 0);
    check_good(fx, &b, ANNB_METRIC_L2, 0.8);
    assert_int_equal(tu_get_le(b.bytes + b.off + mark_at(&b, "quantizer.ntotal", 0), 8), 16);
    ivf_edits(fx, &b);
    const edit e[] = {
        {"code size not M x nbits", "index.code_size", 0, 0, 8, 5, 0},
        {"M not dividing d", "index.pq.M", 0, 0, 8, 3, 0},
        {"nbits 30", "index.pq.nbits", 0, 0, 8, 30, 0},
        {"centroid count", "index.pq.centroids", 0, -8, 8, 1, 1},
        {"by_residual not a bool", "index.by_residual", 0, 0, 1, 2, 0},
    };
    run_edits(fx, &b, e, NEDITS(e));
    free_built(&b);
}

static void test_ivfsq(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "IVF16,SQ8", ANNB_METRIC_L2, 0);
    check_good(fx, &b, ANNB_METRIC_L2, 0.8);
    ivf_edits(fx, &b);
    const edit e[] = {
        {"quantizer type 9", "index.sq.qtype", 0, 0, 4, 9, 0},
        {"uniform type with per-dimension ranges", "index.sq.qtype", 0, 0, 4, 2, 0},
        {"SQ code size", "index.sq.code_size", 0, 0, 8, D + 1, 0},
        {"SQ trained count", "index.sq.trained", 0, -8, 8, 1, 1},
        {"index code size", "index.code_size", 0, 0, 8, 4, 0},
    };
    run_edits(fx, &b, e, NEDITS(e));
    free_built(&b);
}

static void test_pq_sq(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "PQ4np", ANNB_METRIC_L2, 0);
    check_good(fx, &b, ANNB_METRIC_L2, 0.8);
    const edit pe[] = {
        {"nbits 30", "index.pq.nbits", 0, 0, 8, 30, 0},
        {"codes count", "index.codes", 0, -8, 8, 1, 1},
        {"SDC search type (tables never built)", "index.search_type", 0, 0, 4, 3, 0},
    };
    run_edits(fx, &b, pe, NEDITS(pe));
    header_edits(fx, &b);
    free_built(&b);

    build_one(&b, fx, "SQ8", ANNB_METRIC_L2, 0);
    check_good(fx, &b, ANNB_METRIC_L2, 0.8);
    const edit se[] = {
        {"fp16 type with 8-bit codes", "index.sq.qtype", 0, 0, 4, 4, 0},
        {"codes count", "index.codes", 0, -8, 8, 1, 1},
        {"SQ dimension", "index.sq.d", 0, 0, 8, D - 1, 0},
    };
    run_edits(fx, &b, se, NEDITS(se));
    header_edits(fx, &b);
    free_built(&b);
}

static void test_pretransform(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "PCA8,Flat", ANNB_METRIC_L2, 0);
    check_good(fx, &b, ANNB_METRIC_L2, 1.0);
    const edit te[] = {
        {"d_out not the matrix's", "transform.d_out", 0, 0, 4, 5, 0},
        {"d_in not the index's", "transform.d_in", 0, 0, 4, 9, 0},
        {"matrix count past the bytes", "transform.A", 0, -8, 8, 1ull << 38, 0},
        {"chain of 0", "index.chain", 0, 0, 4, 0, 0},
        {"PCAMat count 0: what follows misread", "transform.PCAMat", 0, -8, 8, 0, 0},
    };
    run_edits(fx, &b, te, NEDITS(te));
    header_edits(fx, &b);
    free_built(&b);
}

/* Appends a read_index_header (SPEC 6.17) for an L2 index of N x D. */
static size_t put_header(uint8_t *p, const char *fourcc)
{
    memcpy(p, fourcc, 4);
    tu_put_le(p + 4, 4, D);
    tu_put_le(p + 8, 8, N);
    memset(p + 16, 0, 16);
    p[32] = 1;              /* is_trained */
    tu_put_le(p + 33, 4, 1); /* L2 */
    return 37;
}

/* IxMp(IxF2) written by hand, as write_index lays it out: annb_build
 * cannot make one (Faiss's add refuses an ID map), a bundle can hold one.
 * Faiss reads the blob the checker accepts; the checker refuses a label
 * that is not a row and a sub-index of another count. */
static void test_idmap(void **state)
{
    fixture *fx = *state;
    size_t size = 37 + 37 + 8 + (size_t)N * D * 4 + 8 + (size_t)N * 8, at = 0;
    uint8_t *blob = malloc(size);
    assert_non_null(blob);
    at += put_header(blob, "IxMp");
    at += put_header(blob + at, "IxF2");
    tu_put_le(blob + at, 8, (uint64_t)N * D);
    memcpy(blob + at + 8, fx->t.vecs, (size_t)N * D * 4);
    at += 8 + (size_t)N * D * 4;
    tu_put_le(blob + at, 8, N);
    size_t ids = at + 8;
    for (size_t i = 0; i < N; i++) tu_put_le(blob + ids + 8 * i, 8, N - 1 - i);
    assert_int_equal(ids + 8 * N, size);
    annb_faiss_expect want = {D, N, 1};
    annb_faiss_check_out out = {0};
    assert_int_equal(annb_faiss_check(blob, size, &want, &out), ANNB_OK);
    FaissIndex *index = NULL;
    annb_error err;
    assert_int_equal(annb_faiss_from_blob(&index, blob, size, &err), ANNB_OK);
    assert_int_equal(faiss_Index_ntotal(index), N);
    faiss_Index_free(index);

    memcpy(blob, "IxM2", 4);
    assert_int_equal(annb_faiss_check(blob, size, &want, &out), ANNB_OK);
    tu_put_le(blob + ids + 16, 8, N);
    assert_int_equal(annb_faiss_check(blob, size, &want, &out), ANNB_E_CORRUPT);
    assert_non_null(strstr(out.message, "id_map entry 600 out of range 0..599"));
    assert_int_equal(out.bad_at, ids + 16);
    tu_put_le(blob + ids + 16, 8, N - 3);
    tu_put_le(blob + 37 + 8, 8, N + 1); /* the sub-index's ntotal */
    assert_int_equal(annb_faiss_check(blob, size, &want, &out), ANNB_E_CORRUPT);
    assert_non_null(strstr(out.message, "sub ntotal is 601, expected 600"));
    free(blob);
}

/* An unknown type passes with ANNB_OPEN_TRUST_FAISS: Faiss's own reader
 * then refuses 'IxZZ' (ANNB_E_FAISS), and nothing else changes. */
static void test_trust_faiss(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "SQ8", ANNB_METRIC_L2, 0);
    uint8_t *img = malloc(b.size);
    assert_non_null(img);
    memcpy(img, b.bytes, b.size);
    memcpy(img + b.off, "IxZZ", 4);
    assert_int_equal(tu_section_rehash(img, b.size, b.entry), 0);
    tu_write_file(fx->scratch, img, b.size);
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = ANNB_OPEN_TRUST_FAISS;
    annb_bundle *h = NULL;
    annb_error err;
    assert_int_equal(annb_open(&h, fx->scratch, NULL, &err), ANNB_E_CORRUPT);
    assert_int_equal(annb_open(&h, fx->scratch, &oo, &err), ANNB_E_FAISS);
    assert_null(h);
    /* A known type with a bad field is refused even when trusted. */
    memcpy(img + b.off, "IxSQ", 4);
    tu_put_le(img + b.off + 8, 8, N - 1);
    assert_int_equal(tu_section_rehash(img, b.size, b.entry), 0);
    tu_write_file(fx->scratch, img, b.size);
    assert_int_equal(annb_open(&h, fx->scratch, &oo, &err), ANNB_E_CORRUPT);
    free(img);
    h = tu_open(b.path, ANNB_OPEN_TRUST_FAISS);
    annb_close(h);
    free_built(&b);
}

/* The checker alone: a truncated blob at every length, and one byte more,
 * are refused (every length bounded by the bytes that remain). */
static void test_truncated(void **state)
{
    fixture *fx = *state;
    built b;
    build_one(&b, fx, "IVF16,PQ4np", ANNB_METRIC_L2, 0);
    annb_faiss_expect want = {D, N, 1};
    annb_faiss_check_out out = {0};
    for (uint64_t len = 0; len < b.len; len += len < 256 ? 1 : 97)
        assert_int_equal(annb_faiss_check(b.bytes + b.off, (size_t)len, &want, &out), ANNB_E_CORRUPT);
    uint8_t *more = malloc(b.len + 1);
    assert_non_null(more);
    memcpy(more, b.bytes + b.off, b.len);
    more[b.len] = 0;
    assert_int_equal(annb_faiss_check(more, (size_t)b.len + 1, &want, &out), ANNB_E_CORRUPT);
    assert_non_null(strstr(out.message, "1 bytes after the index"));
    free(more);
    free_built(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hnsw),     cmocka_unit_test(test_hnsw_mips),
        cmocka_unit_test(test_ivfpq),    cmocka_unit_test(test_ivfsq),
        cmocka_unit_test(test_pq_sq),    cmocka_unit_test(test_pretransform), cmocka_unit_test(test_idmap),
        cmocka_unit_test(test_trust_faiss), cmocka_unit_test(test_truncated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
