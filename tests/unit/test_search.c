/*
 * test_search.c - annb_search and the read API against an independent brute
 * force.
 *
 * Every bundle here is built by annb_build from real files (a Spark-form CSV,
 * a latin-1 movies.dat) in a temporary directory and opened with annb_open:
 * real Faiss, real files. Every answer is checked against tu_brute_force()
 * (testutil.c), a double-precision scan over the same vectors that never
 * touches libannb or Faiss. IDs are never equal to row positions, so an
 * answer carrying a Faiss row label instead of the item's ID fails.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 500
#define D 12
#define NQ 20
#define K 10

static const annb_metric metrics[] = {ANNB_METRIC_IP, ANNB_METRIC_L2, ANNB_METRIC_COSINE};
#define NMETRICS 3

/* Two IDs listed by the catalog that have no vector (every item ID is >= 7
 * or <= -7, see tu_scattered_ids). */
static const int64_t catalog_only[] = {5, -3};

typedef struct fixture {
    char dir[256];
    char csv[512], movies[512];
    tu_data data;
    float queries[NQ * D];
    annb_build_report report[NMETRICS];
    annb_bundle *bundle[NMETRICS];
} fixture;

/* ---- the catalog: every third item (file order) has an entry ---- */
static int has_entry(size_t row) { return row % 3 == 0; }

static const char *const genre_cycle[] = {"Comedy", "Drama|Romance", "Action|Thriller",
                                          "Animation|Children's|Comedy", "Horror"};

/* Title as written (latin-1) and as it must read back (UTF-8). */
static void entry_title(char latin1[128], char utf8[128], size_t row, int64_t id)
{
    switch (row) {
    case 0:
        strcpy(latin1, "Mis\xe9rables, Les (1995)");
        strcpy(utf8, "Mis\xc3\xa9rables, Les (1995)");
        break;
    case 3: /* one colon is fine in a `::`-separated file */
        strcpy(latin1, "Star Wars: Episode IV - A New Hope (1977)");
        strcpy(utf8, latin1);
        break;
    case 6:
        strcpy(latin1, "Cit\xe9 des enfants perdus, La (Cit\xe9 of Lost Children, The) (1995)");
        strcpy(utf8, "Cit\xc3\xa9 des enfants perdus, La (Cit\xc3\xa9 of Lost Children, The) (1995)");
        break;
    case 9:
        strcpy(latin1, "Sch\xf6ne Tage \xbb\xe6\xff\xab (1999)");
        strcpy(utf8, "Sch\xc3\xb6ne Tage \xc2\xbb\xc3\xa6\xc3\xbf\xc2\xab (1999)");
        break;
    default:
        snprintf(latin1, 128, "Movie %lld (%zu)", (long long)id, 1900 + row % 120);
        strcpy(utf8, latin1);
    }
}

static const char *entry_genres(size_t row)
{
    if (row == 0) return "Drama|Musical";
    if (row == 3) return "Action|Adventure|Sci-Fi";
    return genre_cycle[row / 3 % 5];
}

static void write_movies_dat(const char *path, const tu_data *t)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char latin1[128], utf8[128];
    for (size_t i = 0; i < t->n; i++) {
        if (!has_entry(i)) continue;
        entry_title(latin1, utf8, i, t->ids[i]);
        fprintf(f, "%lld::%s::%s\n", (long long)t->ids[i], latin1, entry_genres(i));
    }
    fprintf(f, "%lld::Only In The Catalog (2000)::Drama\n", (long long)catalog_only[0]);
    fprintf(f, "%lld::Also Only In The Catalog (2001)::Comedy|Drama\n",
            (long long)catalog_only[1]);
    assert_int_equal(fclose(f), 0);
}

static size_t entries_with_vector(void) { return (N + 2) / 3; }

/* ---- fixture ---- */
static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_rng r;
    tu_items_setup(&fx->data, &r, fx->dir, fx->csv, N, D, 20240611);
    for (size_t i = 0; i < NQ * D; i++) fx->queries[i] = (float)tu_rng_uniform(&r, -1, 1);
    tu_path(fx->movies, fx->dir, "movies.dat");
    write_movies_dat(fx->movies, &fx->data);
    for (int m = 0; m < NMETRICS; m++) {
        char out[512], name[64];
        snprintf(name, sizeof name, "%s.annb", annb_metric_name(metrics[m]));
        tu_build(&fx->report[m], fx->csv, fx->movies, tu_path(out, fx->dir, name), metrics[m],
                 NULL);
        fx->bundle[m] = tu_open(out, 0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    for (int m = 0; m < NMETRICS; m++) annb_close(fx->bundle[m]);
    tu_tmpdir_remove(fx->dir);
    tu_data_free(&fx->data);
    free(fx);
    return 0;
}

static void search(const annb_bundle *b, const float *q, size_t nq, size_t k,
                   const int64_t *exclude, size_t nexclude, annb_hit *hits)
{
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    o.exclude_ids = exclude;
    o.exclude_count = nexclude;
    assert_int_equal(annb_search(b, q, nq, k, &o, hits), ANNB_OK);
}

/* ---- top-k against brute force ---- */
static void check_topk(fixture *fx, int m)
{
    annb_hit *hits = malloc(N * sizeof *hits);
    assert_non_null(hits);
    char what[128];
    for (size_t qi = 0; qi < NQ; qi++) {
        const float *q = fx->queries + qi * D;
        search(fx->bundle[m], q, 1, K, NULL, 0, hits);
        snprintf(what, sizeof what, "%s query %zu k=%d", annb_metric_name(metrics[m]), qi, K);
        tu_check_hits(&fx->data, q, metrics[m], NULL, 0, hits, K, what);
        search(fx->bundle[m], q, 1, N, NULL, 0, hits);
        snprintf(what, sizeof what, "%s query %zu k=N", annb_metric_name(metrics[m]), qi);
        tu_check_hits(&fx->data, q, metrics[m], NULL, 0, hits, N, what);
    }
    free(hits);
}

static void test_topk_ip(void **state) { check_topk(*state, 0); }
static void test_topk_l2(void **state) { check_topk(*state, 1); }
static void test_topk_cosine(void **state) { check_topk(*state, 2); }

/* nq queries in one call (Faiss takes its BLAS path from 20 queries on)
 * give what nq single calls give, up to the order of tied items. */
static void test_batch_equals_single(void **state)
{
    fixture *fx = *state;
    annb_hit batch[NQ * K], one[K];
    char what[128];
    for (int m = 0; m < NMETRICS; m++) {
        search(fx->bundle[m], fx->queries, NQ, K, NULL, 0, batch);
        for (size_t qi = 0; qi < NQ; qi++) {
            const float *q = fx->queries + qi * D;
            snprintf(what, sizeof what, "%s batched query %zu", annb_metric_name(metrics[m]), qi);
            tu_check_hits(&fx->data, q, metrics[m], NULL, 0, batch + qi * K, K, what);
            search(fx->bundle[m], q, 1, K, NULL, 0, one);
            for (size_t j = 0; j < K; j++) {
                const annb_hit *a = &batch[qi * K + j], *b = &one[j];
                assert_true(tu_close(a->score, b->score, TU_SCORE_EPS));
                if (a->id != b->id) { /* only tied items may swap */
                    double sa = tu_score(&fx->data, (size_t)tu_data_row(&fx->data, a->id), q, metrics[m]);
                    double sb = tu_score(&fx->data, (size_t)tu_data_row(&fx->data, b->id), q, metrics[m]);
                    if (!tu_close(sa, sb, TU_TIE_EPS))
                        fail_msg("%s rank %zu: batched ID %lld, single ID %lld", what, j,
                                 (long long)a->id, (long long)b->id);
                }
            }
        }
    }
}

/* Excluded IDs never come back, k results still do; IDs not in the bundle
 * and repeated IDs in the list are harmless. */
static void test_exclude_ids(void **state)
{
    fixture *fx = *state;
    annb_hit hits[K];
    char what[128];
    for (int m = 0; m < NMETRICS; m++) {
        for (size_t qi = 0; qi < NQ; qi++) {
            const float *q = fx->queries + qi * D;
            size_t nr;
            tu_ranked *ref = tu_brute_force(&nr, &fx->data, q, metrics[m], NULL, 0);
            /* The three best, the 12th, an unknown ID, a catalog-only ID, a repeat. */
            int64_t ex[] = {ref[0].id, ref[1].id, ref[2].id, ref[11].id, 424242, catalog_only[0],
                            ref[1].id};
            free(ref);
            size_t nex = sizeof ex / sizeof ex[0];
            search(fx->bundle[m], q, 1, K, ex, nex, hits);
            snprintf(what, sizeof what, "%s query %zu with exclusions", annb_metric_name(metrics[m]), qi);
            tu_check_hits(&fx->data, q, metrics[m], ex, nex, hits, K, what);
        }
    }
    /* Excluding everything but three items: three results, then empty slots. */
    int64_t *ex = malloc(N * sizeof *ex);
    assert_non_null(ex);
    memcpy(ex, fx->data.ids, (N - 3) * sizeof *ex);
    search(fx->bundle[0], fx->queries, 1, K, ex, N - 3, hits);
    tu_check_hits(&fx->data, fx->queries, ANNB_METRIC_IP, ex, N - 3, hits, K, "all but 3 excluded");
    assert_int_equal(hits[2].id == ANNB_ID_NONE, 0);
    assert_true(hits[3].id == ANNB_ID_NONE);
    /* Excluding everything: only empty slots. */
    memcpy(ex, fx->data.ids, N * sizeof *ex);
    search(fx->bundle[0], fx->queries, 1, K, ex, N, hits);
    for (size_t j = 0; j < K; j++) assert_true(hits[j].id == ANNB_ID_NONE);
    free(ex);
}

/* k > N: every item once, in order, then ANNB_ID_NONE. */
static void test_k_beyond_count(void **state)
{
    fixture *fx = *state;
    enum { KBIG = N + 7 };
    annb_hit *hits = malloc(2 * KBIG * sizeof *hits);
    assert_non_null(hits);
    for (int m = 0; m < NMETRICS; m++) {
        search(fx->bundle[m], fx->queries, 2, KBIG, NULL, 0, hits);
        for (size_t qi = 0; qi < 2; qi++) {
            tu_check_hits(&fx->data, fx->queries + qi * D, metrics[m], NULL, 0, hits + qi * KBIG,
                          KBIG, "k > N");
            for (size_t j = N; j < KBIG; j++) assert_true(hits[qi * KBIG + j].id == ANNB_ID_NONE);
        }
        /* With an exclusion, k = N leaves the last slot empty. */
        int64_t self = fx->data.ids[17];
        search(fx->bundle[m], fx->queries, 1, N, &self, 1, hits);
        tu_check_hits(&fx->data, fx->queries, metrics[m], &self, 1, hits, N, "k = N, one excluded");
        assert_true(hits[N - 1].id == ANNB_ID_NONE);
    }
    free(hits);
}

/* Stored vectors: bit-identical to the input for ip and l2; for cosine the
 * input divided by its norm. */
static void test_item_vector(void **state)
{
    fixture *fx = *state;
    float v[D];
    for (size_t i = 0; i < N; i++) {
        const float *want = fx->data.vecs + i * D;
        for (int m = 0; m < NMETRICS; m++) {
            assert_int_equal(annb_item_vector(fx->bundle[m], fx->data.ids[i], v), ANNB_OK);
            if (metrics[m] != ANNB_METRIC_COSINE) {
                assert_memory_equal(v, want, sizeof v);
                continue;
            }
            double norm = 0, stored_norm = 0;
            for (size_t j = 0; j < D; j++) norm += (double)want[j] * want[j];
            norm = sqrt(norm);
            for (size_t j = 0; j < D; j++) {
                stored_norm += (double)v[j] * v[j];
                assert_true(fabs(v[j] - want[j] / norm) <= 1e-6);
            }
            assert_true(fabs(sqrt(stored_norm) - 1.0) <= 1e-6);
        }
    }
    for (int m = 0; m < NMETRICS; m++) {
        assert_int_equal(annb_item_vector(fx->bundle[m], 424242, v), ANNB_E_NOT_FOUND);
        assert_int_equal(annb_item_vector(fx->bundle[m], catalog_only[0], v), ANNB_E_NOT_FOUND);
        assert_int_equal(annb_item_vector(fx->bundle[m], ANNB_ID_NONE, v), ANNB_E_NOT_FOUND);
    }
}

/* "Similar items": the item's stored vector as the query, the item excluded. */
static void test_similar_items(void **state)
{
    fixture *fx = *state;
    annb_hit hits[K];
    float v[D];
    char what[128];
    for (int m = 0; m < NMETRICS; m++) {
        for (size_t i = 0; i < N; i += 37) {
            int64_t self = fx->data.ids[i];
            assert_int_equal(annb_item_vector(fx->bundle[m], self, v), ANNB_OK);
            search(fx->bundle[m], v, 1, K, &self, 1, hits);
            snprintf(what, sizeof what, "%s similar to %lld", annb_metric_name(metrics[m]),
                     (long long)self);
            /* Reference query: the input vector (cosine is scale-free). */
            tu_check_hits(&fx->data, fx->data.vecs + i * D, metrics[m], &self, 1, hits, K, what);
        }
    }
}

/* Cosine: scaling the query changes nothing, and the scores are cosines. */
static void test_cosine_query_scaling(void **state)
{
    fixture *fx = *state;
    annb_hit base[K], scaled[K];
    float q[D];
    const float factors[] = {1e-3f, 0.5f, 3.75f, 1e4f};
    for (size_t qi = 0; qi < NQ; qi++) {
        const float *q0 = fx->queries + qi * D;
        search(fx->bundle[2], q0, 1, K, NULL, 0, base);
        for (size_t f = 0; f < sizeof factors / sizeof factors[0]; f++) {
            for (size_t j = 0; j < D; j++) q[j] = q0[j] * factors[f];
            search(fx->bundle[2], q, 1, K, NULL, 0, scaled);
            tu_check_hits(&fx->data, q0, ANNB_METRIC_COSINE, NULL, 0, scaled, K, "scaled cosine query");
            for (size_t j = 0; j < K; j++) {
                assert_true(fabs(scaled[j].score) <= 1.0 + 1e-5);
                assert_true(tu_close(scaled[j].score, base[j].score, TU_SCORE_EPS));
            }
        }
        /* The caller's query is not modified (normalised in a private copy). */
        memcpy(q, q0, sizeof q);
        search(fx->bundle[2], q, 1, K, NULL, 0, scaled);
        assert_memory_equal(q, q0, sizeof q);
    }
}

/* ---- catalog ---- */
static void test_titles(void **state)
{
    fixture *fx = *state;
    char latin1[128], utf8[128];
    for (int m = 0; m < NMETRICS; m++) {
        const annb_bundle *b = fx->bundle[m];
        for (size_t i = 0; i < N; i++) {
            const char *t = annb_item_title(b, fx->data.ids[i]);
            if (!has_entry(i)) {
                assert_null(t);
                continue;
            }
            entry_title(latin1, utf8, i, fx->data.ids[i]);
            assert_non_null(t);
            assert_string_equal(t, utf8);
        }
        /* The exact bytes of the latin-1 title converted to UTF-8. */
        const char *mis = annb_item_title(b, fx->data.ids[0]);
        assert_non_null(mis);
        assert_memory_equal(mis, "Mis\xc3\xa9rables, Les (1995)", sizeof "Mis\xc3\xa9rables, Les (1995)");
        assert_null(annb_item_title(b, 424242));
        assert_null(annb_item_title(b, catalog_only[0]));
        assert_null(annb_item_title(b, catalog_only[1]));
    }
}

static void test_genres(void **state)
{
    fixture *fx = *state;
    char buf[256];
    const annb_bundle *b = fx->bundle[0];
    for (size_t i = 0; i < N; i++) {
        int len = annb_item_genres(b, fx->data.ids[i], buf, sizeof buf);
        const char *want = has_entry(i) ? entry_genres(i) : "";
        assert_int_equal(len, (int)strlen(want));
        assert_string_equal(buf, want);
    }
    /* A short buffer: truncated and terminated; the full length is returned. */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(annb_item_genres(b, fx->data.ids[0], buf, 6), (int)strlen("Drama|Musical"));
    assert_string_equal(buf, "Drama");
    assert_int_equal(buf[6], 'x');
    assert_int_equal(annb_item_genres(b, fx->data.ids[0], NULL, 0), (int)strlen("Drama|Musical"));
    assert_int_equal(annb_item_genres(b, 424242, buf, sizeof buf), ANNB_E_NOT_FOUND);
    assert_int_equal(annb_item_genres(b, catalog_only[0], buf, sizeof buf), ANNB_E_NOT_FOUND);
}

static void test_build_report_and_info(void **state)
{
    fixture *fx = *state;
    for (int m = 0; m < NMETRICS; m++) {
        const annb_build_report *r = &fx->report[m];
        assert_int_equal(r->items, N);
        assert_int_equal(r->dimension, D);
        assert_int_equal(r->catalog_entries, entries_with_vector() + 2);
        assert_int_equal(r->items_without_catalog, N - entries_with_vector());
        assert_int_equal(r->catalog_without_item, 2);
        assert_true(r->bundle_bytes > N * D * sizeof(float));

        annb_bundle_info info;
        annb_bundle_info_get(&info, fx->bundle[m]);
        assert_int_equal(info.format_major, ANNB_FORMAT_VERSION_MAJOR);
        assert_int_equal(info.format_minor, ANNB_FORMAT_VERSION_MINOR);
        assert_int_equal(info.file_size, r->bundle_bytes);
        assert_int_equal(info.dimension, D);
        assert_int_equal(info.count, N);
        assert_int_equal(info.metric, metrics[m]);
        assert_string_equal(info.index, "Flat");
        assert_true(info.has_catalog);
        /* Action Adventure Animation Children's Comedy Drama Horror Musical
         * Romance Sci-Fi Thriller */
        assert_int_equal(info.genre_count, 11);
    }
}

/* Names the sections whose stored bytes differ between two bundles. */
static void differing_sections(char *out, size_t size, const char *a, const char *b)
{
    annb_bundle *x = tu_open(a, ANNB_OPEN_STRUCTURE_ONLY), *y = tu_open(b, ANNB_OPEN_STRUCTURE_ONLY);
    annb_bundle_info ix, iy;
    annb_bundle_info_get(&ix, x);
    annb_bundle_info_get(&iy, y);
    size_t len = (size_t)snprintf(out, size, "%u vs %u sections; differing:", ix.section_count,
                                  iy.section_count);
    for (uint32_t i = 0; i < ix.section_count && i < iy.section_count && len < size; i++) {
        annb_section_info sx, sy;
        annb_section_info_get(&sx, x, i);
        annb_section_info_get(&sy, y, i);
        if (strcmp(sx.kind, sy.kind) || sx.stored_size != sy.stored_size || sx.checksum != sy.checksum)
            len += (size_t)snprintf(out + len, size - len, " %s", sx.kind);
    }
    annb_close(x);
    annb_close(y);
}

/* Reproducible (annb_build): building the same files twice gives the same
 * bytes, and so do the same rows in another order (rows are stored sorted by
 * ID; annb.h: "the same inputs, in any row order, ... give the same bytes"). */
static void test_reproducible(void **state)
{
    fixture *fx = *state;
    tu_data shuffled;
    tu_rng r;
    tu_rng_seed(&r, 99);
    size_t perm[N];
    for (size_t i = 0; i < N; i++) perm[i] = i;
    tu_rng_shuffle(&r, perm, N, sizeof *perm);
    int64_t ids[N];
    for (size_t i = 0; i < N; i++) ids[i] = fx->data.ids[perm[i]];
    tu_data_make(&shuffled, N, D, ids, &r);
    for (size_t i = 0; i < N; i++)
        memcpy(shuffled.vecs + i * D, fx->data.vecs + perm[i] * D, D * sizeof(float));
    char csv[512], paths[3][512], diff[256];
    tu_write_spark_csv(tu_path(csv, fx->dir, "shuffled.csv"), &shuffled);
    tu_build(NULL, fx->csv, fx->movies, tu_path(paths[0], fx->dir, "order-a.annb"), ANNB_METRIC_IP, NULL);
    tu_build(NULL, fx->csv, fx->movies, tu_path(paths[1], fx->dir, "order-a2.annb"), ANNB_METRIC_IP, NULL);
    tu_build(NULL, csv, fx->movies, tu_path(paths[2], fx->dir, "order-b.annb"), ANNB_METRIC_IP, NULL);
    size_t sa, sb;
    uint8_t *ba = tu_read_file(paths[0], &sa);
    assert_non_null(ba);
    for (int i = 1; i < 3; i++) {
        uint8_t *bb = tu_read_file(paths[i], &sb);
        assert_non_null(bb);
        int same = sa == sb && memcmp(ba, bb, sa) == 0;
        free(bb);
        if (!same) {
            differing_sections(diff, sizeof diff, paths[0], paths[i]);
            free(ba);
            tu_data_free(&shuffled);
            fail_msg("%s: %zu bytes, %s: %zu bytes; %s", paths[0], sa, paths[i], sb, diff);
        }
    }
    free(ba);
    tu_data_free(&shuffled);
}

/* ---- arguments ---- */
static void test_search_bad_arguments(void **state)
{
    fixture *fx = *state;
    annb_hit hits[K];
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    const annb_bundle *b = fx->bundle[0];
    assert_int_equal(annb_search(b, fx->queries, 1, 0, NULL, hits), ANNB_E_INVALID);
    assert_int_equal(annb_search(b, fx->queries, 0, K, NULL, hits), ANNB_E_INVALID);
    assert_int_equal(annb_search(b, NULL, 1, K, NULL, hits), ANNB_E_INVALID);
    assert_int_equal(annb_search(b, fx->queries, 1, K, NULL, NULL), ANNB_E_INVALID);
    assert_int_equal(annb_search(NULL, fx->queries, 1, K, NULL, hits), ANNB_E_INVALID);
    o.exclude_count = 2; /* with no list */
    assert_int_equal(annb_search(b, fx->queries, 1, K, &o, hits), ANNB_E_INVALID);
    o = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
    o.struct_size = 1;
    assert_int_equal(annb_search(b, fx->queries, 1, K, &o, hits), ANNB_E_INVALID);

    /* A structure-only handle describes but does not search. */
    char path[512];
    annb_bundle *s = tu_open(tu_path(path, fx->dir, "ip.annb"), ANNB_OPEN_STRUCTURE_ONLY);
    assert_int_equal(annb_search(s, fx->queries, 1, K, NULL, hits), ANNB_E_INVALID);
    annb_close(s);
    annb_close(NULL);
}

/* ---- query vectors from text ---- */
static void test_vector_parse(void **state)
{
    (void)state;
    const float want[D] = {0.5f, -1, 2e-3f, 3, -4.25f, 0, 1e-7f, -0.125f, 7, 8, 9.5f, -10};
    float v[D];
    annb_error err = {0};
    const char *good[] = {
        "[0.5, -1, 2e-3, 3, -4.25, 0, 1e-7, -0.125, 7, 8, 9.5, -10]",
        "  [0.5,-1,0.002,3,-4.25,0,1e-7,-0.125,7,8,9.5,-10]\n",
        "0.5,-1,2e-3,3,-4.25,0,1e-7,-0.125,7,8,9.5,-10",
        "0.5, -1, 2e-3, 3, -4.25, 0, 1e-7, -0.125, 7, 8, 9.5, -10",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        memset(v, 0xff, sizeof v);
        int rc = annb_vector_parse(v, D, good[i], &err);
        if (rc != ANNB_OK) fail_msg("'%s': %d %s", good[i], rc, err.message);
        assert_memory_equal(v, want, sizeof v);
    }
    struct {
        const char *text;
        int code;
    } bad[] = {
        {"[1, 2, 3]", ANNB_E_DIMENSION},
        {"1,2,3", ANNB_E_DIMENSION},
        {"[1,2,3,4,5,6,7,8,9,10,11,12,13]", ANNB_E_DIMENSION},
        {"1,2,3,4,5,6,7,8,9,10,11,12,13", ANNB_E_DIMENSION},
        {"[]", ANNB_E_DIMENSION},
        {"", ANNB_E_INPUT},
        {"abc", ANNB_E_INPUT},
        {"[1, \"x\", 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]", ANNB_E_INPUT},
        {"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12", ANNB_E_INPUT},
        {"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, [12]]", ANNB_E_INPUT},
        {"{\"a\": 1}", ANNB_E_INPUT},
        {"1,,2,3,4,5,6,7,8,9,10,11", ANNB_E_INPUT},
        {"1 2 3 4 5 6 7 8 9 10 11 12", ANNB_E_INPUT},
        {"1,2,3,4,5,6,7,8,9,10,11,12,", ANNB_E_INPUT},
        {"1,2,3,4,5,6,7,8,9,10,11,x", ANNB_E_INPUT},
        {"nan,2,3,4,5,6,7,8,9,10,11,12", ANNB_E_INPUT},
        {"inf,2,3,4,5,6,7,8,9,10,11,12", ANNB_E_INPUT},
        {"1e39,2,3,4,5,6,7,8,9,10,11,12", ANNB_E_INPUT},
        {"[1e39, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]", ANNB_E_INPUT},
        {"[1e999, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]", ANNB_E_INPUT},
        {"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] junk", ANNB_E_INPUT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        int rc = annb_vector_parse(v, D, bad[i].text, &err);
        if (rc != bad[i].code)
            fail_msg("annb_vector_parse('%s') = %d, expected %d (%s)", bad[i].text, rc,
                     bad[i].code, err.message);
        assert_int_equal(err.code, rc);
        assert_true(err.message[0] != '\0');
    }
}

static void test_vector_from_csv(void **state)
{
    fixture *fx = *state;
    tu_rng r;
    tu_rng_seed(&r, 7);
    int64_t ids[40];
    tu_scattered_ids(ids, 40, &r);
    tu_data users;
    tu_data_make(&users, 40, D, ids, &r);
    char spark[512], wide[512], broken[512], missing[512];
    tu_write_spark_csv(tu_path(spark, fx->dir, "users.csv"), &users);
    /* The wide form of the same vectors. */
    FILE *f = fopen(tu_path(wide, fx->dir, "users-wide.csv"), "w");
    assert_non_null(f);
    fprintf(f, "userId");
    for (int j = 0; j < D; j++) fprintf(f, ",f%d", j);
    fprintf(f, "\n");
    for (size_t i = 0; i < users.n; i++) {
        fprintf(f, "%lld", (long long)users.ids[i]);
        for (int j = 0; j < D; j++) fprintf(f, ",%.9g", (double)users.vecs[i * D + j]);
        fprintf(f, "\n");
    }
    assert_int_equal(fclose(f), 0);

    float v[D];
    annb_error err = {0};
    for (size_t i = 0; i < users.n; i++) {
        const char *files[] = {spark, wide};
        for (int w = 0; w < 2; w++) {
            int rc = annb_vector_from_csv(v, D, files[w], users.ids[i], &err);
            if (rc) fail_msg("%s ID %lld: %d %s", files[w], (long long)users.ids[i], rc, err.message);
            assert_memory_equal(v, users.vecs + i * D, sizeof v);
        }
    }
    assert_int_equal(annb_vector_from_csv(v, D, spark, 424242, &err), ANNB_E_NOT_FOUND);
    assert_int_equal(err.code, ANNB_E_NOT_FOUND);
    assert_int_equal(annb_vector_from_csv(v, D - 1, spark, users.ids[0], &err), ANNB_E_DIMENSION);
    assert_int_equal(annb_vector_from_csv(v, D + 1, wide, users.ids[0], &err), ANNB_E_DIMENSION);
    tu_path(missing, fx->dir, "no-such-users.csv");
    assert_int_equal(annb_vector_from_csv(v, D, missing, users.ids[0], &err), ANNB_E_IO);
    tu_write_text(tu_path(broken, fx->dir, "users-broken.csv"),
                  "id,features\n1,\"[1, 2, 3]\"\n2,\"[1, 2, oops]\"\n");
    assert_int_equal(annb_vector_from_csv(v, 3, broken, 1, &err), ANNB_E_INPUT);
    assert_non_null(strstr(err.message, "users-broken.csv:3"));
    tu_data_free(&users);
}

/* ---- approximate index: IVF through the FAIS section ---- */
#define IVF_N 2000
#define IVF_Q 50

/* Builds an IVF8 bundle over clustered data and checks each answer: real
 * IDs whose exact scores are the returned scores, in best-first order; and
 * a sanity bound on recall@10 (the index is approximate). */
static void check_ivf(const tu_data *t, const char *dir, annb_metric m, const char *name,
                      const float *queries, double min_recall)
{
    char csv[512], out[512];
    tu_write_spark_csv(tu_path(csv, dir, "ivf-items.csv"), t);
    tu_build(NULL, csv, NULL, tu_path(out, dir, name), m, "IVF8,Flat");
    annb_bundle *b = tu_open(out, 0);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    assert_string_equal(info.index, "IVF8,Flat");
    assert_int_equal(info.count, t->n);

    annb_hit hits[IVF_Q * K];
    search(b, queries, IVF_Q, K, NULL, 0, hits);
    size_t found = 0;
    for (size_t qi = 0; qi < IVF_Q; qi++) {
        const float *q = queries + qi * t->d;
        const annb_hit *h = hits + qi * K;
        size_t nr;
        tu_ranked *ref = tu_brute_force(&nr, t, q, m, NULL, 0);
        for (size_t j = 0; j < K; j++) {
            if (h[j].id == ANNB_ID_NONE) continue; /* IVF may find fewer than k */
            long row = tu_data_row(t, h[j].id);
            if (row < 0)
                fail_msg("%s query %zu rank %zu: ID %lld is not an input ID (a Faiss row label?)",
                         name, qi, j, (long long)h[j].id);
            double exact = tu_score(t, (size_t)row, q, m);
            if (!tu_close(h[j].score, exact, TU_SCORE_EPS))
                fail_msg("%s query %zu rank %zu: ID %lld has score %.9g, exact %.9g", name, qi, j,
                         (long long)h[j].id, (double)h[j].score, exact);
            if (j && h[j - 1].id != ANNB_ID_NONE) {
                double prev = h[j - 1].score;
                assert_true(m == ANNB_METRIC_L2 ? h[j].score >= prev - 1e-5 : h[j].score <= prev + 1e-5);
            }
            for (size_t i = 0; i < j; i++) assert_true(h[i].id != h[j].id);
            for (size_t i = 0; i < K; i++)
                if (ref[i].id == h[j].id) found++;
        }
        free(ref);
    }
    double recall = (double)found / (IVF_Q * K);
    print_message("%s: recall@%d = %.3f\n", name, K, recall);
    assert_true(recall > min_recall);

    /* Exclusions through the approximate index: excluding the first three
     * answers of a k+3 search leaves the other k, in order (the same lists
     * are probed, the excluded items are skipped). */
    annb_hit more[K + 3], fewer[K];
    for (size_t qi = 0; qi < IVF_Q; qi += 7) {
        const float *q = queries + qi * t->d;
        search(b, q, 1, K + 3, NULL, 0, more);
        int64_t ex[3] = {more[0].id, more[1].id, more[2].id};
        search(b, q, 1, K, ex, 3, fewer);
        for (size_t j = 0; j < K; j++) {
            const annb_hit *want = &more[j + 3];
            if (fewer[j].id == want->id) continue;
            if (want->id == ANNB_ID_NONE || fewer[j].id == ANNB_ID_NONE ||
                !tu_close(fewer[j].score, want->score, TU_TIE_EPS))
                fail_msg("%s query %zu, 3 excluded: rank %zu is ID %lld (%.9g), expected %lld (%.9g)",
                         name, qi, j, (long long)fewer[j].id, (double)fewer[j].score,
                         (long long)want->id, (double)want->score);
        }
        for (size_t j = 0; j < K; j++)
            for (int e = 0; e < 3; e++) assert_true(fewer[j].id != ex[e]);
    }
    annb_close(b);
}

static void make_ivf_data(tu_data *t, float *queries, int64_t first_id, tu_rng *r)
{
    int64_t *ids = malloc(IVF_N * sizeof *ids);
    assert_non_null(ids);
    /* Gapped, descending-then-ascending in file order after the shuffle. */
    for (size_t i = 0; i < IVF_N; i++) ids[i] = first_id + (int64_t)(i * 7919 % IVF_N) * 13;
    tu_rng_shuffle(r, ids, IVF_N, sizeof *ids);
    tu_data_make_clustered(t, IVF_N, D, ids, 8, 0.6, r);
    free(ids);
    /* Queries: near random items. */
    for (size_t qi = 0; qi < IVF_Q; qi++) {
        const float *base = t->vecs + tu_rng_below(r, IVF_N) * D;
        for (size_t j = 0; j < D; j++) queries[qi * D + j] = base[j] + (float)tu_rng_uniform(r, -0.2, 0.2);
    }
}

static void test_ivf(void **state)
{
    fixture *fx = *state;
    tu_rng r;
    tu_rng_seed(&r, 31337);
    tu_data t;
    float queries[IVF_Q * D];
    make_ivf_data(&t, queries, -1000, &r);
    check_ivf(&t, fx->dir, ANNB_METRIC_L2, "ivf-l2.annb", queries, 0.5);
    check_ivf(&t, fx->dir, ANNB_METRIC_COSINE, "ivf-cosine.annb", queries, 0.5);
    /* Inner product with IVF clustering is a poor fit (see DESIGN.md): the
     * answers must be real and exact for their IDs, recall is not bounded. */
    check_ivf(&t, fx->dir, ANNB_METRIC_IP, "ivf-ip.annb", queries, -1.0);
    tu_data_free(&t);
}

/* ---- THE ID TRAP ----
 * IDs of 10^12 and more, not monotone in file order: a row label (0..n-1)
 * leaking out of any path is never an input ID, and a row mapped to the
 * wrong ID gives a score that is not that ID's exact score. Both the Flat
 * path (index rebuilt from VECS at open) and the FAIS path (serialized
 * Faiss index) are covered, with every metric. */
static void test_id_trap(void **state)
{
    fixture *fx = *state;
    tu_rng r;
    tu_rng_seed(&r, 4242);
    enum { TN = 300 };
    int64_t ids[TN];
    for (size_t i = 0; i < TN; i++)
        ids[i] = 1000000000000LL + (int64_t)tu_rng_below(&r, 1000000) * 1000 + (int64_t)i;
    tu_rng_shuffle(&r, ids, TN, sizeof *ids);
    /* Extremes of int64 (INT64_MIN is reserved) and IDs next to row numbers
     * would weaken the trap: keep them in a dataset of their own below. */
    tu_data t;
    tu_data_make(&t, TN, D, ids, &r);
    char csv[512], out[512];
    tu_write_spark_csv(tu_path(csv, fx->dir, "trap.csv"), &t);
    annb_hit hits[NQ * K];
    char what[128];
    const char *indexes[] = {NULL, "IVF4,Flat"};
    for (int ix = 0; ix < 2; ix++) {
        for (int m = 0; m < NMETRICS; m++) {
            tu_build(NULL, csv, NULL, tu_path(out, fx->dir, "trap.annb"), metrics[m], indexes[ix]);
            annb_bundle *b = tu_open(out, 0);
            search(b, fx->queries, NQ, K, NULL, 0, hits);
            for (size_t qi = 0; qi < NQ; qi++)
                for (size_t j = 0; j < K; j++) {
                    int64_t id = hits[qi * K + j].id;
                    if (!tu_data_has(&t, id))
                        fail_msg("%s %s: returned ID %lld is not an input ID", indexes[ix] ? indexes[ix] : "flat",
                                 annb_metric_name(metrics[m]), (long long)id);
                }
            if (!indexes[ix]) /* exact: the very IDs of the brute force */
                for (size_t qi = 0; qi < NQ; qi++) {
                    snprintf(what, sizeof what, "ID trap %s query %zu", annb_metric_name(metrics[m]), qi);
                    tu_check_hits(&t, fx->queries + qi * D, metrics[m], NULL, 0, hits + qi * K, K, what);
                }
            else /* IVF4 searches a quarter: each ID's score must be its exact score */
                for (size_t qi = 0; qi < NQ * K; qi++) {
                    long row = tu_data_row(&t, hits[qi].id);
                    double exact = tu_score(&t, (size_t)row, fx->queries + qi / K * D, metrics[m]);
                    assert_true(tu_close(hits[qi].score, exact, TU_SCORE_EPS));
                }
            /* The read API maps IDs too. */
            float v[D];
            for (size_t i = 0; i < TN; i += 29) {
                assert_int_equal(annb_item_vector(b, t.ids[i], v), ANNB_OK);
                if (metrics[m] != ANNB_METRIC_COSINE)
                    assert_memory_equal(v, t.vecs + i * D, sizeof v);
            }
            for (int64_t row = 0; row < TN; row += 50)
                assert_int_equal(annb_item_vector(b, row, v), ANNB_E_NOT_FOUND);
            annb_close(b);
        }
    }
    tu_data_free(&t);

    /* The extremes of int64 as IDs, beside 0 and -1. */
    const int64_t ext[] = {INT64_MAX, INT64_MIN + 1, 0, -1, 1, INT64_MAX - 1, 4611686018427387904LL};
    enum { EN = sizeof ext / sizeof ext[0] };
    tu_data_make(&t, EN, D, ext, &r);
    tu_write_spark_csv(tu_path(csv, fx->dir, "extreme.csv"), &t);
    tu_build(NULL, csv, NULL, tu_path(out, fx->dir, "extreme.annb"), ANNB_METRIC_IP, NULL);
    annb_bundle *b = tu_open(out, 0);
    annb_hit all[EN + 1];
    for (size_t qi = 0; qi < NQ; qi++) {
        search(b, fx->queries + qi * D, 1, EN + 1, NULL, 0, all);
        tu_check_hits(&t, fx->queries + qi * D, ANNB_METRIC_IP, NULL, 0, all, EN + 1, "int64 extremes");
    }
    float v[D];
    for (size_t i = 0; i < EN; i++) {
        assert_int_equal(annb_item_vector(b, ext[i], v), ANNB_OK);
        assert_memory_equal(v, t.vecs + i * D, sizeof v);
    }
    annb_close(b);
    tu_data_free(&t);
}

/* ---- dimensions and block sizes ----
 * Exact search scans blocks of rows with a SIMD kernel for few queries and a
 * BLAS multiply for many; dimensions below, at and past the vector widths
 * (8 and 16 floats) exercise every tail, end to end through a built bundle
 * (test_exact covers each kernel on its own). */

/* Builds t for metric m, then checks `single` one-query searches and one
 * batch of nbatch queries (random, uniform in [-1, 1)) at k. */
static void check_exact(const tu_data *t, const char *dir, annb_metric m, size_t single,
                        size_t nbatch, size_t k, tu_rng *r, const char *what)
{
    char csv[512], out[512], desc[160];
    tu_write_spark_csv(tu_path(csv, dir, "dims.csv"), t);
    tu_build(NULL, csv, NULL, tu_path(out, dir, "dims.annb"), m, NULL);
    annb_bundle *b = tu_open(out, 0);
    size_t nq = single > nbatch ? single : nbatch;
    float *q = malloc(nq * t->d * sizeof *q);
    annb_hit *hits = malloc(nq * k * sizeof *hits);
    assert_non_null(q);
    assert_non_null(hits);
    for (size_t i = 0; i < nq * t->d; i++) q[i] = (float)tu_rng_uniform(r, -1, 1);
    for (size_t i = 0; i < single; i++) {
        search(b, q + i * t->d, 1, k, NULL, 0, hits);
        snprintf(desc, sizeof desc, "%s, %s, single query %zu", what, annb_metric_name(m), i);
        tu_check_hits(t, q + i * t->d, m, NULL, 0, hits, k, desc);
    }
    search(b, q, nbatch, k, NULL, 0, hits);
    for (size_t i = 0; i < nbatch; i++) {
        snprintf(desc, sizeof desc, "%s, %s, batch of %zu, query %zu", what, annb_metric_name(m),
                 nbatch, i);
        tu_check_hits(t, q + i * t->d, m, NULL, 0, hits + i * k, k, desc);
    }
    free(q);
    free(hits);
    annb_close(b);
}

static void test_dimensions(void **state)
{
    fixture *fx = *state;
    const uint32_t dims[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 67};
    enum { DN = 300 }; /* more than one scan block of 256 rows */
    tu_rng r;
    tu_rng_seed(&r, 77);
    int64_t ids[DN];
    tu_scattered_ids(ids, DN, &r);
    char what[64];
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        tu_data t;
        tu_data_make(&t, DN, dims[i], ids, &r);
        snprintf(what, sizeof what, "d=%u", dims[i]);
        for (int m = 0; m < NMETRICS; m++) {
            check_exact(&t, fx->dir, metrics[m], 4, 9, K, &r, what);
            check_exact(&t, fx->dir, metrics[m], 1, 8, DN, &r, what);
        }
        tu_data_free(&t);
    }
}

/* More rows than one BLAS block (8192): the batch path crosses blocks. */
static void test_many_rows(void **state)
{
    fixture *fx = *state;
    enum { RN = 8192 + 333 };
    tu_rng r;
    tu_rng_seed(&r, 8192);
    int64_t *ids = malloc(RN * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < RN; i++) ids[i] = (int64_t)(i * 7) - 20000; /* negative to positive */
    tu_rng_shuffle(&r, ids, RN, sizeof *ids);
    tu_data t;
    tu_data_make(&t, RN, 5, ids, &r);
    free(ids);
    for (int m = 0; m < NMETRICS; m++) check_exact(&t, fx->dir, metrics[m], 3, 12, K, &r, "8525 rows");
    tu_data_free(&t);
}

/* L2 over near-duplicate items far from the origin (groups of 10 items
 * within +-0.01 of a centre in [4, 6)^32, e.g. editions of one film, or
 * embeddings sharing a large common component): the answer to a batch must
 * be the exact nearest items with their exact distances, as for a single
 * query. Computing |x|^2 + |q|^2 - 2 x.q in float cancels here (|x|^2 is
 * about 800, the distances about 0.001), which a batch path must not do. */
static void test_l2_batch_near_duplicates(void **state)
{
    fixture *fx = *state;
    enum { G = 50, PER = 10, GN = G * PER, GD = 32, GQ = 8 };
    tu_rng r;
    tu_rng_seed(&r, 5);
    int64_t ids[GN];
    tu_scattered_ids(ids, GN, &r);
    tu_data t;
    tu_data_make(&t, GN, GD, ids, &r);
    float centre[G * GD];
    for (size_t i = 0; i < G * GD; i++) centre[i] = (float)tu_rng_uniform(&r, 4, 6);
    for (size_t i = 0; i < GN; i++)
        for (size_t j = 0; j < GD; j++)
            t.vecs[i * GD + j] = centre[i / PER * GD + j] + (float)tu_rng_uniform(&r, -0.01, 0.01);
    char csv[512], out[512], what[64];
    tu_write_spark_csv(tu_path(csv, fx->dir, "near-dup.csv"), &t);
    tu_build(NULL, csv, NULL, tu_path(out, fx->dir, "near-dup.annb"), ANNB_METRIC_L2, NULL);
    annb_bundle *b = tu_open(out, 0);
    float q[GQ * GD];
    for (size_t i = 0; i < GQ; i++) memcpy(q + i * GD, centre + i * 5 * GD, GD * sizeof *q);
    annb_hit hits[GQ * K];
    for (size_t i = 0; i < GQ; i++) {
        search(b, q + i * GD, 1, K, NULL, 0, hits);
        snprintf(what, sizeof what, "near duplicates, single query %zu", i);
        tu_check_hits(&t, q + i * GD, ANNB_METRIC_L2, NULL, 0, hits, K, what);
    }
    search(b, q, GQ, K, NULL, 0, hits);
    for (size_t i = 0; i < GQ; i++) {
        snprintf(what, sizeof what, "near duplicates, batch of %d, query %zu", GQ, i);
        tu_check_hits(&t, q + i * GD, ANNB_METRIC_L2, NULL, 0, hits + i * K, K, what);
    }
    annb_close(b);
    tu_data_free(&t);
}

/* ---- many threads on one bundle ---- */
typedef struct worker {
    const fixture *fx;
    int metric;
    size_t first;
    annb_hit hits[NQ * K];
    int rc;
} worker;

static void *search_worker(void *arg)
{
    worker *w = arg;
    w->rc = ANNB_OK;
    for (int round = 0; round < 20 && w->rc == ANNB_OK; round++)
        for (size_t qi = 0; qi < NQ && w->rc == ANNB_OK; qi++) {
            size_t q = (w->first + qi) % NQ;
            w->rc = annb_search(w->fx->bundle[w->metric], w->fx->queries + q * D, 1, K, NULL,
                                w->hits + q * K);
        }
    return NULL;
}

static void test_concurrent_search(void **state)
{
    fixture *fx = *state;
    enum { T = 4 };
    worker *w = calloc(T, sizeof *w);
    pthread_t th[T];
    assert_non_null(w);
    for (int i = 0; i < T; i++) {
        w[i].fx = fx;
        w[i].metric = i % NMETRICS;
        w[i].first = (size_t)i * 5;
        assert_int_equal(pthread_create(&th[i], NULL, search_worker, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < T; i++) {
        assert_int_equal(w[i].rc, ANNB_OK);
        for (size_t qi = 0; qi < NQ; qi++)
            tu_check_hits(&fx->data, fx->queries + qi * D, metrics[w[i].metric], NULL, 0,
                          w[i].hits + qi * K, K, "concurrent search");
    }
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk_ip),
        cmocka_unit_test(test_topk_l2),
        cmocka_unit_test(test_topk_cosine),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_exclude_ids),
        cmocka_unit_test(test_k_beyond_count),
        cmocka_unit_test(test_item_vector),
        cmocka_unit_test(test_similar_items),
        cmocka_unit_test(test_cosine_query_scaling),
        cmocka_unit_test(test_titles),
        cmocka_unit_test(test_genres),
        cmocka_unit_test(test_build_report_and_info),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_search_bad_arguments),
        cmocka_unit_test(test_vector_parse),
        cmocka_unit_test(test_vector_from_csv),
        cmocka_unit_test(test_ivf),
        cmocka_unit_test(test_id_trap),
        cmocka_unit_test(test_dimensions),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_l2_batch_near_duplicates),
        cmocka_unit_test(test_concurrent_search),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
