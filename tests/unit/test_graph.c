/* test_graph.c - annb's own proximity graph (lib/graph.c, lib/sq8.c) through
 * the public API, against a brute force in double precision (testutil.c):
 * recall on ALS-like data whose item norms vary, exact answers at ef = n,
 * exact scores, the stored recall (and the audit) on unseen queries; filters
 * inside the walk (excluded IDs, seen items, genres at 10%, 3% and 1%) with
 * k results; the same bytes with 1 or 2 threads, any row order and the
 * scalar kernel; crafted adjacency, entries, code parameters and section
 * sizes refused at open or harmless (under ASan in `make sanitize`; and on
 * heap arrays, where ASan sees every read); 8 and 72 threads with per-call
 * ef, each the single-threaded answer. One level down: every row reachable
 * from the entry rows at any degree, the same arrays on 1, 2, 3 and 5
 * threads with the unreached rows linked in many chunks, tiny bundles, many
 * duplicates, many searches on one slot's visited marks; the integer code score
 * (sq8.h): every kernel this CPU has gives the test's own integer sums. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "testutil.h"

#define N 5000   /* items */
#define D 24
#define CENTRES 50
#define NQ 300   /* unseen test queries */
#define NTUNE 250 /* the build's tuning questions (tune_vectors_path) */
#define NU 40    /* users */
#define K 10
#define HIGH_EF 200
#define NFQ 40   /* queries of the filter tests */
#define NEXCL 120 /* excluded IDs per filtered query */

static const annb_metric metrics[3] = {ANNB_METRIC_IP, ANNB_METRIC_COSINE, ANNB_METRIC_L2};

/* Genres by item row: "Tenth" ~10%, "Thirtieth" ~3% (just above the 2%
 * under which a filtered search scans exactly), "Hundredth" ~1% (below). */
static const char *const genre_names[3] = {"Tenth", "Thirtieth", "Hundredth"};

static unsigned genres_of_row(size_t row)
{
    unsigned g = 0;
    if (row % 10 == 3) g |= 1;
    if (row % 33 == 5) g |= 2;
    if (row % 100 == 41) g |= 4;
    return g;
}

/* ---- ALS-like data ---- */

static double gauss(tu_rng *r)
{
    double u = tu_rng_uniform(r, 1e-12, 1), v = tu_rng_uniform(r, 0, 1);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* n rows: a centre (N(0,1) per component) plus N(0,1) noise, times a
 * log-normal(0, 0.5) factor when `scaled` (items: varying norms). */
static void als_rows(float *out, size_t n, const double *centres, int scaled, tu_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        const double *c = centres + tu_rng_below(r, CENTRES) * D;
        double f = scaled ? exp(0.5 * gauss(r)) : 1.0;
        for (uint32_t j = 0; j < D; j++) out[i * D + j] = (float)((c[j] + gauss(r)) * f);
    }
}

/* The one-level-down tests' data: CENTRES centres of 24 values from the
 * generator seeded with `seed` (r), and als_rows cut to their first d <= 24
 * values (a new array). */
static void als_centres(double centres[CENTRES * 24], tu_rng *r, uint64_t seed)
{
    tu_rng_seed(r, seed);
    for (size_t i = 0; i < CENTRES * 24; i++) centres[i] = gauss(r);
}

static float *als_rows_cut(size_t n, uint32_t d, const double *centres, int scaled, tu_rng *r)
{
    float *x24 = malloc(n * 24 * sizeof *x24), *out = malloc(n * d * sizeof *out);
    assert_true(x24 && out);
    als_rows(x24, n, centres, scaled, r);
    for (size_t i = 0; i < n; i++) memcpy(out + i * d, x24 + i * 24, d * sizeof *out);
    free(x24);
    return out;
}

/* id -> row, by binary search over sorted pairs */
typedef struct idmap {
    size_t n;
    int64_t (*pair)[2];
} idmap;

static int cmp_pair(const void *a, const void *b)
{
    int64_t x = ((const int64_t *)a)[0], y = ((const int64_t *)b)[0];
    return (x > y) - (x < y);
}

static void idmap_make(idmap *m, const tu_data *t)
{
    m->n = t->n;
    m->pair = malloc((t->n ? t->n : 1) * sizeof *m->pair);
    assert_non_null(m->pair);
    for (size_t i = 0; i < t->n; i++) {
        m->pair[i][0] = t->ids[i];
        m->pair[i][1] = (int64_t)i;
    }
    qsort(m->pair, t->n, sizeof *m->pair, cmp_pair);
}

static long idmap_row(const idmap *m, int64_t id)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->pair[mid][0] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->n && m->pair[lo][0] == id ? (long)m->pair[lo][1] : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int in_sorted(const int64_t *a, size_t n, int64_t v)
{
    return n && bsearch(&v, a, n, sizeof *a, cmp_i64) != NULL;
}

/* ---- fixture ---- */

typedef struct fixture {
    char dir[256], items_csv[512], users_csv[512], tune_csv[512], movies[512], ratings[512];
    tu_data items, users;
    idmap items_map;
    float queries[NQ * D];
    unsigned genres[N];        /* by item row */
    int64_t *seen[NU];         /* by user row: seen item IDs, ascending */
    size_t nseen[NU];
    annb_bundle *g32[3];       /* "graph" (Graph32,SQ8), by metrics[]: catalog, users, seen */
    annb_bundle *g16[3];       /* "Graph16": floats only, no catalog */
} fixture;

static void write_movies(fixture *fx)
{
    FILE *f = fopen(tu_path(fx->movies, fx->dir, "movies.dat"), "w");
    assert_non_null(f);
    for (size_t r = 0; r < N; r++) {
        fx->genres[r] = genres_of_row(r);
        fprintf(f, "%lld::Item %zu (2000)::", (long long)fx->items.ids[r], r);
        if (!fx->genres[r]) fprintf(f, "Other");
        for (int g = 0, first = 1; g < 3; g++)
            if (fx->genres[r] >> g & 1) {
                fprintf(f, "%s%s", first ? "" : "|", genre_names[g]);
                first = 0;
            }
        fputc('\n', f);
    }
    fclose(f);
}

/* Each user has seen its true top 8 under every metric (so most of each
 * answer must come from further down) and 100 random items. */
static void write_ratings(fixture *fx, tu_rng *r)
{
    FILE *f = fopen(tu_path(fx->ratings, fx->dir, "ratings.dat"), "w");
    assert_non_null(f);
    for (size_t u = 0; u < NU; u++) {
        int64_t *ids = malloc((3 * 8 + 100) * sizeof *ids);
        assert_non_null(ids);
        size_t n = 0;
        for (int mi = 0; mi < 3; mi++) {
            size_t nr;
            tu_ranked *ref =
                tu_brute_force(&nr, &fx->items, fx->users.vecs + u * D, metrics[mi], NULL, 0);
            for (size_t i = 0; i < 8; i++) ids[n++] = ref[i].id;
            free(ref);
        }
        for (size_t i = 0; i < 100; i++) ids[n++] = fx->items.ids[tu_rng_below(r, N)];
        qsort(ids, n, sizeof *ids, cmp_i64);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!m || ids[m - 1] != ids[i]) ids[m++] = ids[i];
        for (size_t i = 0; i < m; i++)
            fprintf(f, "%lld::%lld::4::97830%04zu\n", (long long)fx->users.ids[u],
                    (long long)ids[i], i);
        fx->seen[u] = ids;
        fx->nseen[u] = m;
    }
    fclose(f);
}

static annb_bundle *build_open(fixture *fx, const char *name, annb_metric m, const char *index,
                               int extras)
{
    char out[512];
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    o.metric = m;
    o.index = index;
    o.tune_vectors_path = fx->tune_csv;
    if (extras) {
        o.users_path = fx->users_csv;
        o.interactions_path = fx->ratings;
    }
    int rc = annb_build(&rep, fx->items_csv, extras ? fx->movies : NULL,
                        tu_path(out, fx->dir, name), &o, &err);
    if (rc != ANNB_OK) fail_msg("annb_build(%s, %s) = %d: %s", index, name, rc, err.message);
    assert_int_equal(rep.items, N);
    return tu_open(out, 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_rng r;
    tu_rng_seed(&r, 1313);
    double *centres = malloc(CENTRES * D * sizeof *centres);
    assert_non_null(centres);
    for (size_t i = 0; i < CENTRES * D; i++) centres[i] = gauss(&r);
    int64_t *ids = malloc(N * sizeof *ids);
    assert_non_null(ids);
    tu_scattered_ids(ids, N, &r);
    tu_data_make(&fx->items, N, D, ids, &r); /* then overwritten with ALS-like rows */
    als_rows(fx->items.vecs, N, centres, 1, &r);
    int64_t uids[NU];
    for (size_t u = 0; u < NU; u++) uids[u] = 700000 + 13 * (int64_t)u;
    tu_data_make(&fx->users, NU, D, uids, &r);
    als_rows(fx->users.vecs, NU, centres, 0, &r);
    als_rows(fx->queries, NQ, centres, 0, &r);
    tu_data tune;
    tu_data_make(&tune, NTUNE, D, ids, &r); /* IDs: any distinct ones */
    als_rows(tune.vecs, NTUNE, centres, 0, &r);
    free(ids);
    free(centres);

    tu_tmpdir_make(fx->dir);
    tu_write_spark_csv(tu_path(fx->items_csv, fx->dir, "items.csv"), &fx->items);
    tu_write_spark_csv(tu_path(fx->users_csv, fx->dir, "users.csv"), &fx->users);
    tu_write_spark_csv(tu_path(fx->tune_csv, fx->dir, "tune.csv"), &tune);
    tu_data_free(&tune);
    idmap_make(&fx->items_map, &fx->items);
    write_movies(fx);
    write_ratings(fx, &r);
    for (int mi = 0; mi < 3; mi++) {
        char name[64];
        snprintf(name, sizeof name, "g32_%s.annb", annb_metric_name(metrics[mi]));
        fx->g32[mi] = build_open(fx, name, metrics[mi], "graph", 1);
        snprintf(name, sizeof name, "g16_%s.annb", annb_metric_name(metrics[mi]));
        fx->g16[mi] = build_open(fx, name, metrics[mi], "Graph16", 0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    for (int mi = 0; mi < 3; mi++) {
        annb_close(fx->g32[mi]);
        annb_close(fx->g16[mi]);
    }
    for (size_t u = 0; u < NU; u++) free(fx->seen[u]);
    free(fx->items_map.pair);
    tu_data_free(&fx->items);
    tu_data_free(&fx->users);
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

/* ---- checking one answer ---- */

/*
 * Checks k hits for q: each a distinct ID of t (the items that may answer:
 * all, or a genre's), not in exclude (sorted), its score the exact score of
 * that ID, and, when `full`, k of them (no empty slot). Returns how many of
 * the reference's top k (truth, the brute force over the same items and
 * exclusions) it holds.
 */
static size_t check_hits_count(const tu_data *t, const idmap *map, const float *q, annb_metric m,
                               const int64_t *exclude, size_t nexclude, const tu_ranked *truth,
                               size_t ntruth, const annb_hit *hits, size_t k, const char *what)
{
    size_t found = 0, want = k < ntruth ? k : ntruth;
    for (size_t j = 0; j < k; j++) {
        int64_t id = hits[j].id;
        if (j >= want) {
            if (id != ANNB_ID_NONE)
                fail_msg("%s: slot %zu holds %lld past the %zu rows that pass", what, j,
                         (long long)id, ntruth);
            continue;
        }
        if (id == ANNB_ID_NONE)
            fail_msg("%s: slot %zu of %zu empty although %zu rows pass", what, j, k, ntruth);
        long row = idmap_row(map, id);
        if (row < 0) fail_msg("%s: slot %zu: ID %lld is not among the allowed items", what, j,
                              (long long)id);
        if (in_sorted(exclude, nexclude, id))
            fail_msg("%s: slot %zu: excluded ID %lld returned", what, j, (long long)id);
        for (size_t i = 0; i < j; i++)
            if (hits[i].id == id) fail_msg("%s: ID %lld twice", what, (long long)id);
        double exact = tu_score(t, (size_t)row, q, m);
        if (!tu_close(hits[j].score, exact, TU_SCORE_EPS))
            fail_msg("%s: slot %zu: ID %lld score %.9g, exact %.9g", what, j, (long long)id,
                     (double)hits[j].score, exact);
        if (j && (m == ANNB_METRIC_L2 ? hits[j].score < hits[j - 1].score
                                       : hits[j].score > hits[j - 1].score))
            fail_msg("%s: slot %zu out of order", what, j);
        for (size_t i = 0; i < want; i++)
            if (truth[i].id == id) {
                found++;
                break;
            }
    }
    return found;
}

static void search_one(const annb_bundle *b, const float *q, size_t k, uint32_t ef,
                       const annb_search_opts *base, annb_hit *hits)
{
    annb_search_opts o = base ? *base : (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
    o.ef_search = ef;
    int rc = annb_search(b, q, 1, k, &o, hits);
    if (rc != ANNB_OK) fail_msg("annb_search(ef %u) = %d", ef, rc);
}

/* ---- 1. recall against the brute force ---- */

/* Mean recall@K over the NQ queries at ef (0: the tuned one), every hit
 * checked; truth[i] is query i's brute force. */
static double recall_at(const fixture *fx, const annb_bundle *b, annb_metric m, uint32_t ef,
                        size_t k, tu_ranked *const *truth, const char *what)
{
    size_t found = 0;
    annb_hit hits[100];
    assert_true(k <= 100);
    for (size_t i = 0; i < NQ; i++) {
        search_one(b, fx->queries + i * D, k, ef, NULL, hits);
        found += check_hits_count(&fx->items, &fx->items_map, fx->queries + i * D, m, NULL, 0,
                                  truth[i], N, hits, k, what);
    }
    return (double)found / (double)(NQ * k);
}

static void test_recall(void **state)
{
    fixture *fx = *state;
    tu_ranked **truth = malloc(NQ * sizeof *truth);
    assert_non_null(truth);
    for (int mi = 0; mi < 3; mi++) {
        annb_metric m = metrics[mi];
        for (size_t i = 0; i < NQ; i++) {
            size_t nr;
            truth[i] = tu_brute_force(&nr, &fx->items, fx->queries + i * D, m, NULL, 0);
        }
        for (int which = 0; which < 2; which++) {
            const annb_bundle *b = which ? fx->g16[mi] : fx->g32[mi];
            char what[96];
            snprintf(what, sizeof what, "%s %s", which ? "Graph16" : "Graph32,SQ8",
                     annb_metric_name(m));
            annb_bundle_info info;
            annb_bundle_info_get(&info, b);
            assert_string_equal(info.index, which ? "Graph16" : "Graph32,SQ8");

            /* A generous ef. */
            double high = recall_at(fx, b, m, HIGH_EF, K, truth, what);
            /* The stored recall, on unseen queries at the tuned ef. */
            assert_true(info.has_recall);
            assert_int_equal(info.recall.k, K);
            assert_string_equal(info.recall.questions, "queries");
            assert_true(info.recall.ef_search > 0);
            int found10 = 0, found100 = 0;
            for (uint32_t i = 0; i < annb_recall_count(b); i++) {
                annb_recall_info ri;
                assert_int_equal(annb_recall_get(&ri, b, i), ANNB_OK);
                if (ri.k == 100 && !which) { /* k = 100 at its own tuned ef (--all-users -k 100) */
                    found100 = 1;
                    double r100 = recall_at(fx, b, m, 0, 100, truth, what);
                    print_message("%s: recall@100 tuned ef %u: stored %.4f, unseen %.4f\n", what,
                                  ri.ef_search, ri.recall, r100);
                    if (fabs(r100 - ri.recall) > 0.03)
                        fail_msg("%s: stored recall@100 %.4f, %.4f on unseen queries at ef %u",
                                 what, ri.recall, r100, ri.ef_search);
                }
                if (ri.k != K) continue;
                found10 = 1;
                assert_true(ri.recall == info.recall.recall);
                assert_int_equal(ri.ef_search, info.recall.ef_search);
            }
            assert_true(found10 && (found100 || which));
            double tuned = recall_at(fx, b, m, 0, K, truth, what);
            print_message("%s: recall@%d ef %d %.4f; tuned ef %u: stored %.4f, unseen %.4f\n",
                          what, K, HIGH_EF, high, info.recall.ef_search, info.recall.recall,
                          tuned);
            if (high < 0.98) fail_msg("%s: recall@%d at ef %d %.4f < 0.98", what, K, HIGH_EF, high);
            if (fabs(tuned - info.recall.recall) > 0.03)
                fail_msg("%s: stored recall %.4f, %.4f on unseen queries at ef %u", what,
                         info.recall.recall, tuned, info.recall.ef_search);

            /* The audit measures what the build stored, on these queries. */
            annb_recall_audit au;
            annb_error aerr = {0};
            if (!which && annb_recall_audit_run(&au, b, fx->queries, NQ, K, 0, &aerr) != ANNB_OK)
                fail_msg("%s: audit: %s", what, aerr.message);
            if (!which) {
                assert_string_equal(au.parameter, "efSearch");
                assert_int_equal(au.stored_value, info.recall.ef_search);
                if (fabs(au.stored_recall - tuned) > 0.005)
                    fail_msg("%s: audit recall %.4f at ef %u, measured here %.4f", what,
                             au.stored_recall, au.stored_value, tuned);
                assert_true(au.reached && au.recall >= 0.95 && au.value >= 16);
            }

            /* ef = n: every answer is the brute force's (ties aside), k = 10 and 100. */
            annb_hit hits[100];
            for (size_t i = 0; i < NQ; i += 5) {
                size_t k = i % 2 ? 100 : K;
                search_one(b, fx->queries + i * D, k, N, NULL, hits);
                tu_check_hits(&fx->items, fx->queries + i * D, m, NULL, 0, hits, k, what);
            }
            /* k above n, at the tuned ef: all n rows, exactly ranked, then empty slots. */
            if (mi == 0 || which) {
                annb_hit *all = malloc((N + 3) * sizeof *all);
                assert_non_null(all);
                search_one(b, fx->queries, N + 3, 0, NULL, all);
                tu_check_hits(&fx->items, fx->queries, m, NULL, 0, all, N + 3, "k = n + 3");
                free(all);
            }
            /* Users through annb_recommend with opts.ef_search = n. */
            if (!which) {
                annb_hit uh[NU * K];
                annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
                o.ef_search = N;
                assert_int_equal(annb_recommend(b, fx->users.ids, NU, K, &o, uh), ANNB_OK);
                for (size_t u = 0; u < NU; u++)
                    tu_check_hits(&fx->items, fx->users.vecs + u * D, m, NULL, 0, uh + u * K, K,
                                  "recommend at ef n");
            }
        }
        for (size_t i = 0; i < NQ; i++) free(truth[i]);
    }
    free(truth);
}

/* ---- 2. filters ---- */

/* The items with one of the genres in mask, as a tu_data of their own. */
static void genre_subset(tu_data *out, const fixture *fx, unsigned mask)
{
    size_t n = 0;
    for (size_t r = 0; r < N; r++) n += (fx->genres[r] & mask) != 0;
    int64_t *ids = malloc(n * sizeof *ids);
    assert_non_null(ids);
    size_t c = 0;
    for (size_t r = 0; r < N; r++)
        if (fx->genres[r] & mask) ids[c++] = fx->items.ids[r];
    tu_data_make(out, n, D, ids, &(tu_rng){1});
    c = 0;
    for (size_t r = 0; r < N; r++)
        if (fx->genres[r] & mask) memcpy(out->vecs + c++ * D, fx->items.vecs + r * D, D * sizeof(float));
    free(ids);
}

/* Exclusions for query q: most of its true top K (8) and 112 random IDs. */
static size_t make_exclusions(int64_t *out, const fixture *fx, const tu_ranked *truth, tu_rng *r)
{
    size_t n = 0;
    for (size_t i = 0; i < 8; i++) out[n++] = truth[i].id;
    while (n < NEXCL) out[n++] = fx->items.ids[tu_rng_below(r, N)];
    qsort(out, n, sizeof *out, cmp_i64);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!m || out[m - 1] != out[i]) out[m++] = out[i];
    return m;
}

static void test_filters(void **state)
{
    fixture *fx = *state;
    tu_rng r;
    tu_rng_seed(&r, 77);
    annb_hit hits[K];
    for (int mi = 0; mi < 3; mi++) {
        annb_metric m = metrics[mi];
        const annb_bundle *b = fx->g32[mi];
        const char *mn = annb_metric_name(m);
        char what[96];

        /* Excluded IDs: 100+ per query, most of its true top K among them. */
        size_t found = 0;
        for (size_t i = 0; i < NFQ; i++) {
            const float *q = fx->queries + i * D;
            size_t nr;
            tu_ranked *all = tu_brute_force(&nr, &fx->items, q, m, NULL, 0);
            int64_t ex[NEXCL];
            size_t nex = make_exclusions(ex, fx, all, &r);
            free(all);
            assert_true(nex >= 100);
            tu_ranked *truth = tu_brute_force(&nr, &fx->items, q, m, ex, nex);
            annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
            o.exclude_ids = ex;
            o.exclude_count = nex;
            snprintf(what, sizeof what, "%s exclude %zu IDs", mn, nex);
            search_one(b, q, K, HIGH_EF, &o, hits);
            found += check_hits_count(&fx->items, &fx->items_map, q, m, ex, nex, truth, nr, hits,
                                      K, what);
            if (i % 4 == 0) { /* ef = n: the filtered brute force itself */
                search_one(b, q, K, N, &o, hits);
                tu_check_hits(&fx->items, q, m, ex, nex, hits, K, what);
            }
            free(truth);
        }
        double rec = (double)found / (NFQ * K);
        print_message("%s: excluded IDs: recall@%d at ef %d %.4f\n", mn, K, HIGH_EF, rec);
        if (rec < 0.95) fail_msg("%s: recall with excluded IDs %.4f < 0.95", mn, rec);

        /* Seen items, through annb_recommend. */
        annb_hit uh[NU * K];
        annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
        o.exclude_seen = 1;
        o.ef_search = HIGH_EF;
        assert_int_equal(annb_recommend(b, fx->users.ids, NU, K, &o, uh), ANNB_OK);
        found = 0;
        snprintf(what, sizeof what, "%s exclude_seen", mn);
        for (size_t u = 0; u < NU; u++) {
            size_t nr;
            const float *q = fx->users.vecs + u * D;
            tu_ranked *truth = tu_brute_force(&nr, &fx->items, q, m, fx->seen[u], fx->nseen[u]);
            found += check_hits_count(&fx->items, &fx->items_map, q, m, fx->seen[u], fx->nseen[u],
                                      truth, nr, uh + u * K, K, what);
            free(truth);
        }
        rec = (double)found / (NU * K);
        print_message("%s: seen excluded: recall@%d at ef %d %.4f\n", mn, K, HIGH_EF, rec);
        if (rec < 0.95) fail_msg("%s: recall with seen items excluded %.4f < 0.95", mn, rec);
        o.ef_search = N;
        assert_int_equal(annb_recommend(b, fx->users.ids, NU, K, &o, uh), ANNB_OK);
        for (size_t u = 0; u < NU; u++)
            tu_check_hits(&fx->items, fx->users.vecs + u * D, m, fx->seen[u], fx->nseen[u],
                          uh + u * K, K, "exclude_seen at ef n");

        /* Genres at ~10%, ~3%, ~1% of the items; and a genre with exclusions. */
        for (int g = 0; g < 4; g++) {
            unsigned mask = 1u << (g % 3);
            const char *names[1] = {genre_names[g % 3]};
            tu_data sub;
            genre_subset(&sub, fx, mask);
            idmap sm;
            idmap_make(&sm, &sub);
            assert_true(sub.n > K);
            found = 0;
            snprintf(what, sizeof what, "%s genre %s (%zu items)%s", mn, names[0], sub.n,
                     g == 3 ? " with exclusions" : "");
            for (size_t i = 0; i < NFQ; i++) {
                const float *q = fx->queries + i * D;
                size_t nr;
                int64_t ex[NEXCL];
                size_t nex = 0;
                if (g == 3) {
                    tu_ranked *all = tu_brute_force(&nr, &sub, q, m, NULL, 0);
                    nex = make_exclusions(ex, fx, all, &r);
                    free(all);
                }
                tu_ranked *truth = tu_brute_force(&nr, &sub, q, m, ex, nex);
                annb_search_opts go = ANNB_SEARCH_OPTS_INIT;
                go.genres = names;
                go.genre_count = 1;
                go.exclude_ids = nex ? ex : NULL;
                go.exclude_count = nex;
                search_one(b, q, K, HIGH_EF, &go, hits);
                found += check_hits_count(&sub, &sm, q, m, ex, nex, truth, nr, hits, K, what);
                if (i % 4 == 0) {
                    search_one(b, q, K, N, &go, hits);
                    tu_check_hits(&sub, q, m, ex, nex, hits, K, what);
                    /* the smallest ef (raised to k) still fills k slots */
                    search_one(b, q, K, 1, &go, hits);
                    check_hits_count(&sub, &sm, q, m, ex, nex, truth, nr, hits, K, what);
                }
                free(truth);
            }
            rec = (double)found / (NFQ * K);
            print_message("%s: recall@%d at ef %d %.4f\n", what, K, HIGH_EF, rec);
            if (rec < 0.95) fail_msg("%s: recall %.4f < 0.95", what, rec);
            free(sm.pair);
            tu_data_free(&sub);
        }

        /* Fewer than k rows pass: 4 of the ~3% genre (the walk, not the
         * exact scan), and 5 of all items by exclusions alone. Those rows,
         * then empty slots, at any ef. */
        {
            tu_data sub;
            genre_subset(&sub, fx, 2u);
            int64_t *ex = malloc(N * sizeof *ex);
            assert_non_null(ex);
            size_t nex = sub.n - 4;
            memcpy(ex, sub.ids + 4, nex * sizeof *ex);
            qsort(ex, nex, sizeof *ex, cmp_i64);
            const char *names[1] = {genre_names[1]};
            annb_search_opts go = ANNB_SEARCH_OPTS_INIT;
            go.genres = names;
            go.genre_count = 1;
            go.exclude_ids = ex;
            go.exclude_count = nex;
            static const uint32_t few_efs[] = {1, 0, HIGH_EF};
            for (size_t e = 0; e < 3; e++) {
                search_one(b, fx->queries, K, few_efs[e], &go, hits);
                tu_check_hits(&sub, fx->queries, m, ex, nex, hits, K, "4 rows of a genre pass");
            }
            tu_data_free(&sub);
            nex = N - 5;
            memcpy(ex, fx->items.ids + 5, nex * sizeof *ex);
            qsort(ex, nex, sizeof *ex, cmp_i64);
            annb_search_opts xo = ANNB_SEARCH_OPTS_INIT;
            xo.exclude_ids = ex;
            xo.exclude_count = nex;
            for (size_t e = 0; e < 3; e++) {
                search_one(b, fx->queries + D, K, few_efs[e], &xo, hits);
                tu_check_hits(&fx->items, fx->queries + D, m, ex, nex, hits, K,
                              "5 rows pass the exclusions");
            }
            free(ex);
        }
    }
}

/* ---- 3. the same bytes with any thread count and row order ---- */

#define RN 2000 /* rows: batches of up to 31 rows, shared among the threads */

static uint8_t *build_bytes(const fixture *fx, const char *csv, const char *index, annb_metric m,
                            int threads, size_t *size)
{
    char out[512];
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_error err = {0};
    o.metric = m;
    o.index = index;
    o.threads = threads;
    o.tune_vectors_path = fx->tune_csv;
    o.tune_queries = 60;
    tu_path(out, fx->dir, "repro.annb");
    int rc = annb_build(NULL, csv, NULL, out, &o, &err);
    if (rc != ANNB_OK) fail_msg("annb_build(%s, threads %d) = %d: %s", index, threads, rc,
                                err.message);
    uint8_t *data = tu_read_file(out, size);
    assert_non_null(data);
    remove(out);
    return data;
}

static void test_deterministic(void **state)
{
    fixture *fx = *state;
    /* The first RN items, as they are and in another row order. */
    tu_data part, shuf;
    tu_data_make(&part, RN, D, fx->items.ids, &(tu_rng){1});
    memcpy(part.vecs, fx->items.vecs, RN * D * sizeof(float));
    tu_data_make(&shuf, RN, D, fx->items.ids, &(tu_rng){1});
    size_t *perm = malloc(RN * sizeof *perm);
    assert_non_null(perm);
    for (size_t i = 0; i < RN; i++) perm[i] = i;
    tu_rng r;
    tu_rng_seed(&r, 5);
    tu_rng_shuffle(&r, perm, RN, sizeof *perm);
    for (size_t i = 0; i < RN; i++) {
        shuf.ids[i] = part.ids[perm[i]];
        memcpy(shuf.vecs + i * D, part.vecs + perm[i] * D, D * sizeof(float));
    }
    free(perm);
    char part_csv[512], shuf_csv[512];
    tu_write_spark_csv(tu_path(part_csv, fx->dir, "part.csv"), &part);
    tu_write_spark_csv(tu_path(shuf_csv, fx->dir, "shuffled.csv"), &shuf);
    tu_data_free(&part);
    tu_data_free(&shuf);

    static const struct {
        const char *index;
        annb_metric m;
    } cases[] = {{"graph", ANNB_METRIC_IP}, {"Graph16", ANNB_METRIC_L2}};
    for (size_t c = 0; c < 2; c++) {
        size_t s1, s2, s3;
        uint8_t *one = build_bytes(fx, part_csv, cases[c].index, cases[c].m, 1, &s1);
        uint8_t *two = build_bytes(fx, part_csv, cases[c].index, cases[c].m, 2, &s2);
        uint8_t *sh = build_bytes(fx, shuf_csv, cases[c].index, cases[c].m, 2, &s3);
        if (s1 != s2 || memcmp(one, two, s1))
            fail_msg("%s: threads 1 and 2 give different bytes", cases[c].index);
        if (s1 != s3 || memcmp(one, sh, s1))
            fail_msg("%s: shuffled rows give different bytes", cases[c].index);
        /* Another score kernel: annb_build promises bytes that depend on the
         * inputs, options and versions only, so not on the CPU. The kernels
         * sum in different orders; this holds as long as no neighbour choice
         * turns on the last bit of a score (measured: scalar, AVX2 and
         * AVX-512 build the same graph here). */
        if (c == 0) {
            setenv("ANNB_KERNEL", "scalar", 1);
            size_t s4;
            uint8_t *sc = build_bytes(fx, part_csv, cases[c].index, cases[c].m, 2, &s4);
            unsetenv("ANNB_KERNEL");
            if (s1 != s4 || memcmp(one, sc, s1))
                fail_msg("%s: the scalar kernel gives different bytes", cases[c].index);
            free(sc);
        }
        free(one);
        free(two);
        free(sh);
    }
    remove(part_csv);
    remove(shuf_csv);
}

/* ---- 4. hostile bytes ---- */

static uint32_t entry_of(const uint8_t *data, const char *kind)
{
    uint32_t count = (uint32_t)tu_get_le(data + TU_HDR_SECTION_COUNT, 4);
    for (uint32_t i = 0; i < count; i++)
        if (memcmp(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE, kind, 4) == 0) return i;
    fail_msg("no section '%s' in the bundle", kind);
    return 0;
}

static uint8_t *section_at(uint8_t *data, const char *kind, uint64_t *len)
{
    uint8_t *e = data + TU_HDR_SIZE + (size_t)entry_of(data, kind) * TU_ENTRY_SIZE;
    if (len) *len = tu_get_le(e + TU_ENTRY_STORED, 8);
    return data + tu_get_le(e + TU_ENTRY_OFFSET, 8);
}

static void rehash(uint8_t *data, size_t size, const char *kind)
{
    assert_int_equal(tu_section_rehash(data, size, entry_of(data, kind)), 0);
}

typedef struct hostile {
    char dir[256], csv[512];
    tu_data items;
    idmap map;
    float queries[8 * 8];
} hostile;

#define HN 700
#define HD 8

static int open_bytes(annb_bundle **b, const hostile *h, const uint8_t *data, size_t size,
                      unsigned flags, annb_error *err)
{
    char p[512];
    tu_write_file(tu_path(p, h->dir, "edited.annb"), data, size);
    annb_open_opts o = ANNB_OPEN_OPTS_INIT;
    o.flags = flags;
    return annb_open(b, p, &o, err);
}

/* Every kind of search on a damaged bundle returns, and what it returns are
 * real IDs with their exact scores (VECS is intact), never a crash or a read
 * out of bounds. */
static void search_everything(const hostile *h, const annb_bundle *b, annb_metric m,
                              const char *what)
{
    static const uint32_t efs[] = {0, 1, 10, 64, HN, 100000, UINT32_MAX};
    static const size_t ks[] = {1, K, HN + 5};
    annb_hit *hits = malloc(8 * (HN + 5) * sizeof *hits);
    assert_non_null(hits);
    int64_t ex[30];
    for (size_t i = 0; i < 30; i++) ex[i] = h->items.ids[i * 11];
    for (size_t e = 0; e < sizeof efs / sizeof *efs; e++)
        for (size_t ki = 0; ki < 3; ki++)
            for (int filt = 0; filt < 2; filt++)
                for (int threads = 1; threads <= 2; threads++) {
                    size_t k = ks[ki], nq = threads == 2 ? 8 : 1;
                    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
                    o.ef_search = efs[e];
                    o.threads = threads;
                    if (filt) {
                        o.exclude_ids = ex;
                        o.exclude_count = 30;
                    }
                    int rc = annb_search(b, h->queries, nq, k, &o, hits);
                    if (rc != ANNB_OK)
                        fail_msg("%s: search ef %u k %zu = %d", what, efs[e], k, rc);
                    for (size_t i = 0; i < nq * k; i++) {
                        if (hits[i].id == ANNB_ID_NONE) continue;
                        long row = idmap_row(&h->map, hits[i].id);
                        if (row < 0) fail_msg("%s: ID %lld not in the bundle", what,
                                              (long long)hits[i].id);
                        double exact = tu_score(&h->items, (size_t)row, h->queries + i / k * HD, m);
                        if (!tu_close(hits[i].score, exact, TU_SCORE_EPS))
                            fail_msg("%s: ID %lld score %.9g, exact %.9g", what,
                                     (long long)hits[i].id, (double)hits[i].score, exact);
                    }
                }
    free(hits);
}

/* An adjacency edit: what to write where (rows * degree slots). */
typedef struct adj_edit {
    const char *name;
    int kind; /* 0: slots = n; 1: 0xFFFFFFFE in every slot of the entry rows and more;
               * 2: every row's first slot = itself; 3: random u32 everywhere;
               * 4: every slot n + row (a different out-of-range number per row) */
} adj_edit;

static void edit_adjacency(uint8_t *adj, uint64_t len, uint32_t degree, int kind, tu_rng *r)
{
    uint64_t slots = len / 4;
    for (uint64_t i = 0; i < slots; i++) {
        uint64_t row = i / degree, slot = i % degree;
        uint8_t *p = adj + i * 4;
        switch (kind) {
        case 0: if (slot % 2 == 1 || row % 3 == 0) tu_put_le(p, 4, HN); break;
        case 1: if (row < 64 || row % 5 == 0) tu_put_le(p, 4, 0xFFFFFFFEu); break;
        case 2: if (slot == 0 || (row % 2 && slot == degree - 1)) tu_put_le(p, 4, row); break;
        case 3: tu_put_le(p, 4, (uint32_t)tu_rng_next(r)); break;
        case 4: tu_put_le(p, 4, (uint32_t)(HN + row * 7919 + slot)); break;
        }
    }
}

static void hostile_bundle(const hostile *h, const char *index, annb_metric m)
{
    char path[512];
    annb_build_opts bo = ANNB_BUILD_OPTS_INIT;
    annb_error err = {0};
    bo.metric = m;
    bo.index = index;
    bo.tune_queries = 100;
    int rc = annb_build(NULL, h->csv, NULL, tu_path(path, h->dir, "small.annb"), &bo, &err);
    if (rc) fail_msg("annb_build(%s): %s", index, err.message);
    size_t size;
    uint8_t *orig = tu_read_file(path, &size), *c = malloc(size);
    assert_non_null(orig);
    assert_non_null(c);
    int codes = strstr(index, "SQ8") != NULL || !strcmp(index, "graph");
    annb_bundle *b = NULL;
    char what[160];
    tu_rng r;
    tu_rng_seed(&r, 4242);

    /* Unedited: opens, verifies, searches. */
    assert_int_equal(open_bytes(&b, h, orig, size, 0, &err), ANNB_OK);
    assert_int_equal(annb_verify(b, &err), ANNB_OK);
    search_everything(h, b, m, "unedited");
    annb_close(b);

    uint64_t adj_len;
    section_at(orig, "GADJ", &adj_len);
    uint32_t degree = (uint32_t)(adj_len / 4 / HN);
    assert_int_equal((uint64_t)degree * HN * 4, adj_len);

    /* The adjacency is bulk: opens; searches harmless; annb_verify refuses. */
    static const char *const adj_names[] = {"neighbours = n", "0xFFFFFFFE in entry rows",
                                            "rows linked to themselves", "random u32",
                                            "n + row*7919 + slot"};
    for (int kind = 0; kind < 5; kind++) {
        memcpy(c, orig, size);
        uint8_t *adj = section_at(c, "GADJ", NULL);
        edit_adjacency(adj, adj_len, degree, kind, &r);
        rehash(c, size, "GADJ");
        snprintf(what, sizeof what, "%s %s: GADJ %s", index, annb_metric_name(m), adj_names[kind]);
        rc = open_bytes(&b, h, c, size, 0, &err);
        if (rc != ANNB_OK) fail_msg("%s: annb_open = %d (%s); the adjacency is bulk", what, rc,
                                    err.message);
        search_everything(h, b, m, what);
        rc = annb_verify(b, &err);
        if (rc != ANNB_E_CORRUPT) fail_msg("%s: annb_verify = %d, not ANNB_E_CORRUPT", what, rc);
        annb_close(b);
        b = NULL;
        assert_int_equal(open_bytes(&b, h, c, size, ANNB_OPEN_VERIFY_ALL, &err), ANNB_E_CORRUPT);
        assert_null(b);
    }

    /* A wrong degree: GADJ one row short (its sizes and count agree); GCOD
     * and GROW likewise. */
    for (int which = 0; which < 1 + 2 * codes; which++) {
        static const char *const short_kinds[] = {"GADJ", "GCOD", "GROW"};
        const char *kind = short_kinds[which];
        memcpy(c, orig, size);
        uint8_t *e = c + TU_HDR_SIZE + (size_t)entry_of(c, kind) * TU_ENTRY_SIZE;
        uint64_t elems = which == 0 ? degree : which == 1 ? HD : 1;
        uint64_t bytes = which == 0 ? 4 * (uint64_t)degree : which == 1 ? HD : 4;
        tu_put_le(e + 40, 8, tu_get_le(e + 40, 8) - elems);
        tu_put_le(e + TU_ENTRY_STORED, 8, tu_get_le(e + TU_ENTRY_STORED, 8) - bytes);
        tu_put_le(e + 32, 8, tu_get_le(e + 32, 8) - bytes);
        rehash(c, size, kind);
        rc = open_bytes(&b, h, c, size, 0, &err);
        if (rc != ANNB_E_CORRUPT) fail_msg("%s: %s one row short: annb_open = %d", index, kind, rc);
        assert_null(b);
    }

    /* A graph section missing (renamed to a kind no reader knows, not
     * critical): the index needs it. Refused. */
    static const char *const graph_kinds[] = {"GADJ", "GENT", "GSQP", "GCOD", "GROW"};
    for (int i = 0; i < (codes ? 5 : 2); i++) {
        memcpy(c, orig, size);
        uint8_t *e = c + TU_HDR_SIZE + (size_t)entry_of(c, graph_kinds[i]) * TU_ENTRY_SIZE;
        e[3] = 'Z';
        tu_put_le(e + 4, 4, 0); /* not critical: ignored by a reader that does not know it */
        assert_int_equal(tu_header_rehash(c, size), 0);
        rc = open_bytes(&b, h, c, size, 0, &err);
        if (rc != ANNB_E_CORRUPT) fail_msg("%s: no %s: annb_open = %d (%s)", index,
                                           graph_kinds[i], rc, err.message);
        assert_null(b);
    }

    /* Entries: a row past n, the NONE number, and none at all. Refused. */
    uint64_t ent_len;
    section_at(orig, "GENT", &ent_len);
    assert_true(ent_len >= 4);
    static const uint32_t bad_entries[] = {HN, HN + 1, 0xFFFFFFFFu, 0xFFFFFFFEu, 0x80000000u};
    for (size_t i = 0; i < 5; i++)
        for (int at = 0; at < 2; at++) {
            memcpy(c, orig, size);
            uint8_t *en = section_at(c, "GENT", NULL);
            tu_put_le(en + (at ? ent_len - 4 : 0), 4, bad_entries[i]);
            rehash(c, size, "GENT");
            rc = open_bytes(&b, h, c, size, 0, &err);
            if (rc != ANNB_E_CORRUPT)
                fail_msg("%s: GENT entry %s = %u: annb_open = %d", index, at ? "last" : "first",
                         bad_entries[i], rc);
            assert_null(b);
        }
    memcpy(c, orig, size);
    {
        uint8_t *e = c + TU_HDR_SIZE + (size_t)entry_of(c, "GENT") * TU_ENTRY_SIZE;
        tu_put_le(e + 40, 8, 0);
        tu_put_le(e + TU_ENTRY_STORED, 8, 0);
        tu_put_le(e + 32, 8, 0);
        rehash(c, size, "GENT");
        rc = open_bytes(&b, h, c, size, 0, &err);
        if (rc != ANNB_E_CORRUPT) fail_msg("%s: GENT with 0 entries: annb_open = %d (%s)", index,
                                           rc, err.message);
        assert_null(b);
    }

    /* GADJ stored as f32 (same size): not what the graph reads. Refused. */
    memcpy(c, orig, size);
    tu_put_le(c + TU_HDR_SIZE + (size_t)entry_of(c, "GADJ") * TU_ENTRY_SIZE + 12, 4, 4);
    rehash(c, size, "GADJ");
    rc = open_bytes(&b, h, c, size, 0, &err);
    if (rc != ANNB_E_CORRUPT) fail_msg("%s: GADJ of f32: annb_open = %d", index, rc);

    /* More entry rows than rows (each a valid row), in GENT's padding. */
    {
        memcpy(c, orig, size);
        uint8_t *e = c + TU_HDR_SIZE + (size_t)entry_of(c, "GENT") * TU_ENTRY_SIZE;
        uint64_t off = tu_get_le(e + TU_ENTRY_OFFSET, 8), next = size;
        uint32_t count = (uint32_t)tu_get_le(c + TU_HDR_SECTION_COUNT, 4);
        for (uint32_t i = 0; i < count; i++) {
            uint64_t o = tu_get_le(c + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE + TU_ENTRY_OFFSET, 8);
            if (o > off && o < next) next = o;
        }
        assert_true(next - off >= (HN + 1) * 4); /* raw sections start on 4096 bytes */
        for (uint32_t i = 0; i <= HN; i++) tu_put_le(c + off + 4 * i, 4, i % HN);
        tu_put_le(e + 40, 8, HN + 1);
        tu_put_le(e + TU_ENTRY_STORED, 8, (HN + 1) * 4);
        tu_put_le(e + 32, 8, (HN + 1) * 4);
        rehash(c, size, "GENT");
        rc = open_bytes(&b, h, c, size, 0, &err);
        if (rc != ANNB_E_CORRUPT) fail_msg("%s: GENT with n + 1 entries: annb_open = %d (%s)",
                                           index, rc, err.message);
    }

    if (codes) {
        /* Code parameters: NaN, infinite, step 0 or negative. Refused. */
        uint64_t sq_len;
        section_at(orig, "GSQP", &sq_len);
        assert_int_equal(sq_len, 2 * HD * 4);
        static const struct {
            uint32_t at;   /* float index: lo 0..d-1, step d..2d-1 */
            uint32_t bits;
        } bad_sq[] = {{0, 0x7FC00000u},      {HD - 1, 0x7F800000u}, {HD, 0x7FC00000u},
                      {HD + 3, 0},           {HD + 3, 0x80000000u}, {2 * HD - 1, 0xBF800000u},
                      {2 * HD - 1, 0x7F800000u}};
        for (size_t i = 0; i < sizeof bad_sq / sizeof *bad_sq; i++) {
            memcpy(c, orig, size);
            tu_put_le(section_at(c, "GSQP", NULL) + 4 * bad_sq[i].at, 4, bad_sq[i].bits);
            rehash(c, size, "GSQP");
            rc = open_bytes(&b, h, c, size, 0, &err);
            if (rc != ANNB_E_CORRUPT)
                fail_msg("%s: GSQP float %u = 0x%08x: annb_open = %d", index, bad_sq[i].at,
                         bad_sq[i].bits, rc);
            assert_null(b);
        }
        /* Finite but absurd parameters, and random codes: open, and every
         * search returns real IDs with exact scores. */
        static const uint32_t odd_steps[] = {0x00000001u /* denormal */, 0x7F7FFFFFu /* FLT_MAX */};
        for (size_t i = 0; i < 2; i++) {
            memcpy(c, orig, size);
            uint8_t *sq = section_at(c, "GSQP", NULL);
            for (uint32_t j = 0; j < HD; j++) tu_put_le(sq + 4 * (HD + j), 4, odd_steps[i]);
            tu_put_le(sq, 4, 0xFF7FFFFFu); /* lo[0] = -FLT_MAX */
            rehash(c, size, "GSQP");
            snprintf(what, sizeof what, "%s: GSQP steps 0x%08x", index, odd_steps[i]);
            rc = open_bytes(&b, h, c, size, 0, &err);
            if (rc != ANNB_OK) fail_msg("%s: annb_open = %d (%s)", what, rc, err.message);
            search_everything(h, b, m, what);
            annb_close(b);
        }
        memcpy(c, orig, size);
        uint64_t cod_len;
        uint8_t *cod = section_at(c, "GCOD", &cod_len);
        assert_int_equal(cod_len, (uint64_t)HN * HD);
        for (uint64_t i = 0; i < cod_len; i++) cod[i] = (uint8_t)tu_rng_next(&r);
        rehash(c, size, "GCOD");
        assert_int_equal(open_bytes(&b, h, c, size, 0, &err), ANNB_OK);
        search_everything(h, b, m, "random GCOD");
        assert_int_equal(annb_verify(b, &err), ANNB_OK); /* any byte is a code */
        annb_close(b);

        /* GROW, the row at each graph position, is bulk: rows past n, the
         * NONE number, one row at every position. Opens; every search
         * returns real IDs with their exact scores; annb_verify refuses. */
        uint64_t grow_len;
        section_at(orig, "GROW", &grow_len);
        assert_int_equal(grow_len, (uint64_t)HN * 4);
        static const char *const grow_names[] = {"odd positions = n", "every position NONE",
                                                 "row 0 at every position", "random u32"};
        for (int kind = 0; kind < 4; kind++) {
            memcpy(c, orig, size);
            uint8_t *gr = section_at(c, "GROW", NULL);
            for (uint64_t i = 0; i < HN; i++) {
                if (kind == 0 && i % 2) tu_put_le(gr + 4 * i, 4, HN);
                if (kind == 1) tu_put_le(gr + 4 * i, 4, 0xFFFFFFFFu);
                if (kind == 2) tu_put_le(gr + 4 * i, 4, 0);
                if (kind == 3) tu_put_le(gr + 4 * i, 4, (uint32_t)tu_rng_next(&r));
            }
            rehash(c, size, "GROW");
            snprintf(what, sizeof what, "%s %s: GROW %s", index, annb_metric_name(m),
                     grow_names[kind]);
            rc = open_bytes(&b, h, c, size, 0, &err);
            if (rc != ANNB_OK) fail_msg("%s: annb_open = %d (%s); GROW is bulk", what, rc,
                                        err.message);
            search_everything(h, b, m, what);
            rc = annb_verify(b, &err);
            if (rc != ANNB_E_CORRUPT) fail_msg("%s: annb_verify = %d, not ANNB_E_CORRUPT", what, rc);
            annb_close(b);
            b = NULL;
        }
    }
    free(orig);
    free(c);
}

static void test_hostile_bundles(void **state)
{
    (void)state;
    hostile h;
    tu_rng r;
    tu_items_setup(&h.items, &r, h.dir, h.csv, HN, HD, 31);
    idmap_make(&h.map, &h.items);
    for (size_t i = 0; i < 8 * HD; i++) h.queries[i] = (float)tu_rng_uniform(&r, -1, 1);
    hostile_bundle(&h, "graph", ANNB_METRIC_IP);
    hostile_bundle(&h, "Graph8", ANNB_METRIC_L2);
    hostile_bundle(&h, "Graph12,SQ8", ANNB_METRIC_COSINE);
    free(h.map.pair);
    tu_data_free(&h.items);
    tu_tmpdir_remove(h.dir);
}

/* The same, one level down, on heap arrays of exactly the right size, so
 * that ASan sees any read past the vectors, codes or adjacency (a mapping
 * hides reads past a section inside the file). */
static void test_hostile_arrays(void **state)
{
    (void)state;
    const uint64_t n = 400;
    const uint32_t d = 5; /* not a multiple of 8: the kernels' tails */
    tu_rng r;
    tu_rng_seed(&r, 99);
    float *x = malloc(n * d * sizeof *x), q[3 * 5];
    assert_non_null(x);
    for (uint64_t i = 0; i < n * d; i++) x[i] = (float)tu_rng_uniform(&r, -1, 1);
    for (size_t i = 0; i < 3 * 5; i++) q[i] = (float)tu_rng_uniform(&r, -1, 1);
    uint8_t allowed[(400 + 7) / 8];
    for (size_t i = 0; i < sizeof allowed; i++) allowed[i] = (uint8_t)tu_rng_next(&r);
    int64_t skip[3] = {1, 2, 300};
    annb_row_filter filt = {allowed, skip, 3, NULL, NULL};
    for (int sq8 = 0; sq8 < 2; sq8++)
        for (int mi = 0; mi < 3; mi++) {
            annb_metric m = metrics[mi] == ANNB_METRIC_COSINE ? ANNB_METRIC_IP : metrics[mi];
            annb_graph_params p = {.degree = 8, .build_ef = 32, .sq8 = sq8};
            annb_graph_built gb;
            annb_error err = {0};
            assert_int_equal(annb_graph_build(&gb, x, n, d, m, &p, 2, &err), ANNB_OK);
            char why[200];
            assert_int_equal(annb_graph_check(&gb.g, why, sizeof why), ANNB_OK);
            uint32_t *adj = malloc(n * 8 * sizeof *adj), *row_of = malloc(n * sizeof *row_of);
            assert_true(adj && row_of);
            assert_true(!sq8 || gb.g.row_of); /* with codes, positions are not rows */
            for (int kind = 0; kind < 5 + 3 * sq8; kind++) {
                memcpy(adj, gb.adj, n * 8 * sizeof *adj);
                if (sq8) memcpy(row_of, gb.g.row_of, n * sizeof *row_of);
                for (uint64_t i = 0; sq8 && i < n; i++) { /* GROW damaged: kinds 5, 6, 7 */
                    if (kind == 5 && i % 2) row_of[i] = (uint32_t)(n + i);
                    if (kind == 6) row_of[i] = 0xFFFFFFFFu;
                    if (kind == 7) row_of[i] = (uint32_t)(i % 3);
                }
                for (uint64_t i = 0; i < n * 8; i++) {
                    uint64_t row = i / 8, slot = i % 8;
                    if (kind == 0 && slot % 2) adj[i] = (uint32_t)n;
                    if (kind == 1 && row < 30) adj[i] = 0xFFFFFFFEu;
                    if (kind == 2 && slot == 0) adj[i] = (uint32_t)row;
                    if (kind == 3) adj[i] = (uint32_t)tu_rng_next(&r);
                    if (kind == 4) adj[i] = (uint32_t)(n + row);
                }
                annb_graph g = gb.g;
                g.adj = adj;
                if (sq8) g.row_of = row_of;
                annb_graph_pool *pool = annb_graph_pool_new(n);
                assert_non_null(pool);
                float s[3 * 410];
                int64_t rows[3 * 410];
                static const size_t efs[] = {1, 10, 400, 5000};
                for (size_t e = 0; e < 4; e++)
                    for (int f = 0; f < 2; f++) {
                        size_t k = e == 3 ? 410 : 10;
                        assert_int_equal(annb_graph_search(&g, pool, m, q, 3, k, efs[e],
                                                           f ? &filt : NULL, 2, s, rows),
                                         ANNB_OK);
                        for (size_t i = 0; i < 3 * k; i++) {
                            assert_true(rows[i] >= -1 && rows[i] < (int64_t)n);
                            if (rows[i] < 0) continue;
                            double sc = 0;
                            for (uint32_t j = 0; j < d; j++) {
                                double a = x[rows[i] * d + j], b = q[i / k * d + j];
                                sc += m == ANNB_METRIC_L2 ? (a - b) * (a - b) : a * b;
                            }
                            assert_true(tu_close(s[i], sc, TU_SCORE_EPS));
                        }
                    }
                annb_graph_pool_free(pool);
            }
            free(adj);
            free(row_of);
            annb_graph_release_built(&gb);
        }
    free(x);
}

/* ---- the graph's own structure (lib/graph.h, one level down) ---- */

/* Rows reachable from the entry rows of g (each checked < n); *first: the
 * lowest row that is not (n when all are). */
static uint64_t reachable(const annb_graph *g, uint64_t *first)
{
    uint8_t *seen = calloc(g->n, 1);
    uint32_t *queue = malloc(g->n * sizeof *queue);
    assert_true(seen && queue);
    uint64_t len = 0;
    for (uint32_t i = 0; i < g->nentry; i++) {
        assert_true(g->entry[i] < g->n);
        if (!seen[g->entry[i]]) {
            seen[g->entry[i]] = 1;
            queue[len++] = g->entry[i];
        }
    }
    for (uint64_t h = 0; h < len; h++)
        for (uint32_t j = 0; j < g->degree; j++) {
            uint32_t v = g->adj[(uint64_t)queue[h] * g->degree + j];
            if (v == ANNB_GRAPH_NONE) break;
            if (!seen[v]) {
                seen[v] = 1;
                queue[len++] = v;
            }
        }
    for (*first = 0; *first < g->n && seen[*first]; (*first)++) continue;
    free(seen);
    free(queue);
    return len;
}

/* Well-formed rows (neighbours < n, distinct, not the row itself, empty
 * slots only at the end) and every row reachable from the entry rows, so
 * that ef = n finds every row: at small degrees too, where pruning leaves
 * rows of small norm unlinked and the build must link them. And ef = n
 * answers as annb_exact_search. */
static void test_structure(void **state)
{
    (void)state;
    const uint64_t n = 2000;
    const uint32_t d = 16;
    tu_rng r;
    double centres[CENTRES * 24];
    als_centres(centres, &r, 2024);
    float *x = als_rows_cut(n, d, centres, 1, &r), *q = als_rows_cut(4, d, centres, 0, &r);
    static const uint32_t degrees[] = {2, 4, 8};
    int failures = 0;
    for (size_t di = 0; di < 3; di++)
        for (int mi = 0; mi < 3; mi += 2)
            for (int sq8 = 0; sq8 < 2; sq8++) {
                uint32_t R = degrees[di];
                annb_metric m = metrics[mi];
                annb_graph_params p = {.degree = R, .build_ef = 64, .sq8 = sq8};
                annb_graph_built gb;
                annb_error err = {0};
                assert_int_equal(annb_graph_build(&gb, x, n, d, m, &p, 2, &err), ANNB_OK);
                const annb_graph *g = &gb.g;
                char what[96];
                snprintf(what, sizeof what, "degree %u %s%s", R, annb_metric_name(m),
                         sq8 ? " SQ8" : "");
                assert_int_equal(g->degree, R);
                assert_true(g->nentry >= 1 && g->nentry <= n);
                for (uint64_t row = 0; row < n; row++) {
                    const uint32_t *nb = g->adj + row * R;
                    int ended = 0;
                    for (uint32_t j = 0; j < R; j++) {
                        if (nb[j] == ANNB_GRAPH_NONE) {
                            ended = 1;
                            continue;
                        }
                        if (ended) fail_msg("%s: row %llu: a neighbour after an empty slot", what,
                                            (unsigned long long)row);
                        if (nb[j] >= n || nb[j] == row)
                            fail_msg("%s: row %llu slot %u: neighbour %u", what,
                                     (unsigned long long)row, j, nb[j]);
                        for (uint32_t i = 0; i < j; i++)
                            if (nb[i] == nb[j]) fail_msg("%s: row %llu: neighbour %u twice", what,
                                                         (unsigned long long)row, nb[j]);
                    }
                }
                uint64_t first, len = reachable(g, &first);
                if (len != n) {
                    print_message("%s: %llu of %llu rows reachable from the %u entries; row %llu "
                                  "is not\n", what, (unsigned long long)len,
                                  (unsigned long long)n, g->nentry, (unsigned long long)first);
                    failures++;
                }
                /* ef = n: the exact answer, rows and order. */
                annb_graph_pool *pool = annb_graph_pool_new(n);
                assert_non_null(pool);
                float gs[4 * 20], es[4 * 20];
                int64_t gr[4 * 20], er[4 * 20];
                assert_int_equal(annb_graph_search(g, pool, m, q, 4, 20, n, NULL, 1, gs, gr),
                                 ANNB_OK);
                assert_int_equal(annb_exact_search(x, n, d, m, q, 4, 20, NULL, es, er), ANNB_OK);
                for (size_t i = 0; i < 4 * 20; i++)
                    if (gr[i] != er[i] || !tu_close(gs[i], es[i], 1e-6)) {
                        print_message("%s: ef = n: query %zu rank %zu: row %lld (%.9g), exact "
                                      "row %lld (%.9g)\n", what, i / 20, i % 20, (long long)gr[i],
                                      (double)gs[i], (long long)er[i], (double)es[i]);
                        failures++;
                        break;
                    }
                annb_graph_pool_free(pool);
                annb_graph_release_built(&gb);
            }
    free(x);
    free(q);
    if (failures) fail_msg("%d graphs with unreachable rows or inexact answers at ef = n", failures);
}

/* The same arrays from annb_graph_build on 1, 2, 3 and 5 threads, where
 * every step has work to share: batches of up to 46 rows, and (degree 2
 * and 8, few links kept) hundreds of unreached rows linked in chunks of 5
 * (a chunk's searches on all threads, then its links in row order). At
 * degree 2 the reached rows fill up, so the last-link swap runs too. */
static void test_build_threads(void **state)
{
    (void)state;
    const uint64_t n = 3000;
    const uint32_t d = 16;
    tu_rng r;
    double centres[CENTRES * 24];
    als_centres(centres, &r, 77);
    float *x = als_rows_cut(n, d, centres, 1, &r);
    static const uint32_t degrees[] = {2, 8};
    static const int thread_counts[] = {2, 3, 5};
    for (size_t di = 0; di < 2; di++)
        for (int mi = 0; mi < 3; mi += 2)
            for (int sq8 = 0; sq8 < 2; sq8++) {
                annb_graph_times times;
                annb_graph_params p = {.degree = degrees[di], .build_ef = 32, .sq8 = sq8,
                                       .times = &times, .connect_chunk = 5};
                annb_graph_built one, other;
                annb_error err = {0};
                char what[96];
                snprintf(what, sizeof what, "degree %u %s%s", degrees[di],
                         annb_metric_name(metrics[mi]), sq8 ? " SQ8" : "");
                assert_int_equal(annb_graph_build(&one, x, n, d, metrics[mi], &p, 1, &err),
                                 ANNB_OK);
                if (times.unreached < 20)
                    fail_msg("%s: %llu rows linked after the batches, expected several chunks "
                             "of 5", what, (unsigned long long)times.unreached);
                uint64_t first;
                if (reachable(&one.g, &first) != n)
                    fail_msg("%s: row %llu left unreachable", what, (unsigned long long)first);
                const annb_graph *g = &one.g;
                for (size_t ti = 0; ti < 3; ti++) {
                    assert_int_equal(annb_graph_build(&other, x, n, d, metrics[mi], &p,
                                                      thread_counts[ti], &err),
                                     ANNB_OK);
                    const annb_graph *h = &other.g;
                    int same = h->nentry == g->nentry &&
                               !memcmp(h->adj, g->adj, n * g->degree * sizeof *g->adj) &&
                               !memcmp(h->entry, g->entry, g->nentry * sizeof *g->entry) &&
                               (!sq8 || (!memcmp(h->codes, g->codes, n * d) &&
                                         !memcmp(h->row_of, g->row_of, n * sizeof *g->row_of) &&
                                         !memcmp(other.sq_params, one.sq_params,
                                                 2 * d * sizeof *one.sq_params)));
                    if (!same)
                        fail_msg("%s: %d threads build another graph than 1", what,
                                 thread_counts[ti]);
                    annb_graph_release_built(&other);
                }
                annb_graph_release_built(&one);
            }
    free(x);
}

/* The visited marks are cleared by each walk for the next (they were 16-bit
 * epochs that wrapped past 65,535 searches on one slot): answers past
 * 65,535 searches on one slot are the first ones. */
static void test_epoch_wrap(void **state)
{
    (void)state;
    const uint64_t n = 300;
    const uint32_t d = 8, nq = 7;
    tu_rng r;
    tu_rng_seed(&r, 65536);
    float *x = malloc(n * d * sizeof *x), q[7 * 8];
    assert_non_null(x);
    for (uint64_t i = 0; i < n * d; i++) x[i] = (float)tu_rng_uniform(&r, -1, 1);
    for (size_t i = 0; i < nq * d; i++) q[i] = (float)tu_rng_uniform(&r, -1, 1);
    annb_graph_params p = {.degree = 6, .build_ef = 32, .sq8 = 1};
    annb_graph_built gb;
    annb_error err = {0};
    assert_int_equal(annb_graph_build(&gb, x, n, d, ANNB_METRIC_IP, &p, 1, &err), ANNB_OK);
    annb_graph_pool *pool = annb_graph_pool_new(n);
    assert_non_null(pool);
    float want_s[7 * 5], s[5];
    int64_t want_r[7 * 5], rw[5];
    for (size_t i = 0; i < nq; i++)
        assert_int_equal(annb_graph_search(&gb.g, pool, ANNB_METRIC_IP, q + i * d, 1, 5, 12, NULL,
                                           1, want_s + i * 5, want_r + i * 5),
                         ANNB_OK);
    for (uint32_t t = 0; t < 3 * 65536 / 2; t++) {
        size_t i = t % nq;
        assert_int_equal(
            annb_graph_search(&gb.g, pool, ANNB_METRIC_IP, q + i * d, 1, 5, 12, NULL, 1, s, rw),
            ANNB_OK);
        if (memcmp(rw, want_r + i * 5, sizeof rw) || memcmp(s, want_s + i * 5, sizeof s))
            fail_msg("search %u (query %zu) differs from the first answer", t, i);
    }
    annb_graph_pool_free(pool);
    annb_graph_release_built(&gb);
    free(x);
}

/* Tiny bundles (1 row, fewer rows than k or than the degree) and data with
 * many exact duplicates (ties everywhere, pruning's worst case): through the
 * public API, every answer at ef = n (and at the tuned ef for the tiny ones,
 * where ef is raised to k >= n) is the brute force's. */
/* Is hits the brute force's answer, ties aside (tu_check_hits without
 * failing, for a test that reports every case before failing)? */
static int is_exact_answer(const tu_data *t, const float *q, annb_metric m, const annb_hit *hits,
                           size_t k, char *why, size_t why_size)
{
    size_t nr;
    tu_ranked *ref = tu_brute_force(&nr, t, q, m, NULL, 0);
    int ok = 1;
    for (size_t j = 0; j < k && ok; j++) {
        if (j >= nr) {
            ok = hits[j].id == ANNB_ID_NONE;
            if (!ok) snprintf(why, why_size, "slot %zu past the rows holds an ID", j);
            continue;
        }
        long row = tu_data_row(t, hits[j].id);
        for (size_t i = 0; i < j && row >= 0; i++)
            if (hits[i].id == hits[j].id) row = -1;
        double exact = row >= 0 ? tu_score(t, (size_t)row, q, m) : NAN;
        if (row < 0 || !tu_close(exact, ref[j].score, TU_TIE_EPS) ||
            !tu_close(hits[j].score, exact, TU_SCORE_EPS)) {
            snprintf(why, why_size, "rank %zu: ID %lld score %.9g, brute force ID %lld score %.9g",
                     j, (long long)hits[j].id, (double)hits[j].score, (long long)ref[j].id,
                     ref[j].score);
            ok = 0;
        }
    }
    free(ref);
    return ok;
}

static void test_tiny_and_duplicates(void **state)
{
    (void)state;
    int failures = 0;
    static const size_t sizes[] = {1, 3, 65, 1200};
    static const char *const indexes[] = {"graph", "Graph4", "Graph32"};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        int dup = n == 1200; /* 1200 rows, 40 distinct vectors */
        tu_data t;
        tu_rng r;
        char dir[256], csv[512], out[512];
        tu_items_setup(&t, &r, dir, csv, n, 6, 600 + n);
        if (dup) { /* 40 distinct vectors of varying norms, each repeated */
            for (size_t i = 0; i < 40; i++) {
                double f = exp(0.5 * gauss(&r));
                for (size_t j = 0; j < 6; j++) t.vecs[i * 6 + j] = (float)(gauss(&r) * f);
            }
            for (size_t i = 40; i < n; i++)
                memcpy(t.vecs + i * 6, t.vecs + (i % 40) * 6, 6 * sizeof(float));
            tu_write_spark_csv(csv, &t);
        }
        float q[5 * 6];
        for (size_t i = 0; i < 5 * 6; i++) q[i] = (float)tu_rng_uniform(&r, -1, 1);
        for (int mi = 0; mi < 3; mi++)
            for (int ii = 0; ii < 2 + dup; ii++) {
                annb_build_opts o = ANNB_BUILD_OPTS_INIT;
                annb_error err = {0};
                o.metric = metrics[mi];
                o.index = indexes[ii];
                o.allow_low_recall = 1;
                o.tune_queries = 50;
                int rc = annb_build(NULL, csv, NULL, tu_path(out, dir, "t.annb"), &o, &err);
                if (rc) fail_msg("n %zu %s %s: annb_build = %d: %s", n, indexes[ii],
                                 annb_metric_name(metrics[mi]), rc, err.message);
                annb_bundle *b = tu_open(out, 0);
                assert_int_equal(annb_verify(b, &err), ANNB_OK);
                char what[96];
                snprintf(what, sizeof what, "n %zu%s %s %s", n, dup ? " (40 distinct)" : "",
                         indexes[ii], annb_metric_name(metrics[mi]));
                annb_hit hits[70];
                char why[200];
                for (size_t i = 0; i < 5; i++) {
                    size_t k = n < 65 ? 70 : 10;
                    for (int tuned = 0; tuned < 1 + (n < 65); tuned++) {
                        search_one(b, q + i * 6, k, tuned ? 0 : (uint32_t)n, NULL, hits);
                        if (!is_exact_answer(&t, q + i * 6, metrics[mi], hits, k, why, sizeof why)) {
                            print_message("%s, ef %s, query %zu: %s\n", what, tuned ? "tuned" : "n",
                                          i, why);
                            failures++;
                            i = 5;
                            break;
                        }
                    }
                }
                /* k above n: every row comes back once, then empty slots.
                 * A row the walk cannot reach never comes back. */
                annb_hit *all = malloc((n + 3) * sizeof *all);
                assert_non_null(all);
                search_one(b, q, n + 3, 0, NULL, all);
                size_t got = 0;
                for (size_t j = 0; j < n + 3; j++) got += all[j].id != ANNB_ID_NONE;
                if (got != n) {
                    print_message("%s: k = n + 3 returns %zu of the %zu rows\n", what, got, n);
                    failures++;
                }
                free(all);
                annb_close(b);
            }
        tu_data_free(&t);
        tu_tmpdir_remove(dir);
    }
    if (failures) fail_msg("%d cases answer other than the brute force at ef = n or lose rows", failures);
}

/* ---- 5. threads with per-call ef ---- */

#define T_THREADS 8
#define T_QUERIES 30
#define T_EFFORTS 6
#define T_VARIANTS 3 /* plain, excluded IDs, genre */
static const uint32_t t_efs[T_EFFORTS] = {0, 10, 16, 40, 100, 300};

typedef struct tcase {
    uint32_t ef;
    int variant;
    annb_hit expected[T_QUERIES * K];
} tcase;

typedef struct tworker {
    pthread_t thread;
    const fixture *fx;
    const tcase *cases;
    uint64_t seed;
    size_t asked, wrong, failed;
    char first_wrong[128];
} tworker;

static int t_ask(const fixture *fx, const tcase *c, size_t q, size_t nq, int threads,
                 annb_hit *hits)
{
    static const char *const tenth[1] = {"Tenth"};
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    o.ef_search = c->ef;
    o.threads = threads;
    if (c->variant == 1) {
        o.exclude_ids = fx->seen[0];
        o.exclude_count = fx->nseen[0];
    } else if (c->variant == 2) {
        o.genres = tenth;
        o.genre_count = 1;
    }
    return annb_search(fx->g32[0], fx->queries + q * D, nq, K, &o, hits);
}

static int same_hits(const annb_hit *a, const annb_hit *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].id != b[i].id || memcmp(&a[i].score, &b[i].score, sizeof a[i].score)) return 0;
    return 1;
}

static void *t_work(void *arg)
{
    tworker *w = arg;
    tu_rng r;
    tu_rng_seed(&r, w->seed);
    const size_t total = (size_t)T_EFFORTS * T_VARIANTS * T_QUERIES;
    uint32_t *order = malloc(total * sizeof *order);
    if (!order) {
        w->failed++;
        return NULL;
    }
    for (uint32_t i = 0; i < total; i++) order[i] = i;
    for (int round = 0; round < 2; round++) {
        tu_rng_shuffle(&r, order, total, sizeof *order);
        for (size_t i = 0; i < total; i++) {
            const tcase *c = &w->cases[order[i] / T_QUERIES];
            size_t q = order[i] % T_QUERIES;
            size_t nq = q + 1 < T_QUERIES && tu_rng_below(&r, 3) == 0 ? 2 : 1;
            annb_hit hits[2 * K];
            w->asked++;
            if (t_ask(w->fx, c, q, nq, nq == 2 ? 2 : 1, hits) != ANNB_OK) w->failed++;
            else if (!same_hits(hits, c->expected + q * K, nq * K) && !w->wrong++)
                snprintf(w->first_wrong, sizeof w->first_wrong, "ef %u variant %d query %zu",
                         c->ef, c->variant, q);
        }
    }
    free(order);
    return NULL;
}

/* A few searches at once, started together, each checked. */
static void *t_burst(void *arg)
{
    tworker *w = arg;
    tu_rng r;
    tu_rng_seed(&r, w->seed);
    for (int i = 0; i < 6; i++) {
        size_t c = (size_t)tu_rng_below(&r, (uint64_t)T_EFFORTS * T_VARIANTS);
        size_t q = (size_t)tu_rng_below(&r, T_QUERIES);
        annb_hit hits[K];
        if (t_ask(w->fx, &w->cases[c], q, 1, 1, hits) != ANNB_OK) w->failed++;
        else if (!same_hits(hits, w->cases[c].expected + q * K, K) && !w->wrong++)
            snprintf(w->first_wrong, sizeof w->first_wrong, "ef %u variant %d query %zu",
                     w->cases[c].ef, w->cases[c].variant, q);
    }
    return NULL;
}

static void test_threads(void **state)
{
    const fixture *fx = *state;
    const size_t ncases = (size_t)T_EFFORTS * T_VARIANTS;
    tcase *cases = calloc(ncases, sizeof *cases);
    assert_non_null(cases);
    for (size_t c = 0; c < ncases; c++) {
        cases[c].ef = t_efs[c % T_EFFORTS];
        cases[c].variant = (int)(c / T_EFFORTS);
        for (size_t q = 0; q < T_QUERIES; q++)
            assert_int_equal(t_ask(fx, &cases[c], q, 1, 1, cases[c].expected + q * K), ANNB_OK);
    }
    /* The efforts really differ. */
    assert_false(same_hits(cases[1].expected, cases[T_EFFORTS - 1].expected, T_QUERIES * K));
    tworker w[T_THREADS];
    for (int t = 0; t < T_THREADS; t++) {
        w[t] = (tworker){.fx = fx, .cases = cases, .seed = 500 + (uint64_t)t};
        assert_int_equal(pthread_create(&w[t].thread, NULL, t_work, &w[t]), 0);
    }
    size_t asked = 0, wrong = 0, failed = 0;
    for (int t = 0; t < T_THREADS; t++) {
        assert_int_equal(pthread_join(w[t].thread, NULL), 0);
        asked += w[t].asked;
        wrong += w[t].wrong;
        failed += w[t].failed;
        if (w[t].wrong) print_message("thread %d: first wrong: %s\n", t, w[t].first_wrong);
    }
    print_message("%d threads: %zu searches, %zu wrong, %zu failed\n", T_THREADS, asked, wrong,
                  failed);
    assert_int_equal(asked, (size_t)T_THREADS * 2 * ncases * T_QUERIES);
    assert_int_equal(failed, 0);
    assert_int_equal(wrong, 0);
    /* A batch on 2 threads that walks answers as the questions one by one:
     * at an efSearch the caller sets, and at the stored one under
     * ANNB_GRAPH_BATCH=walk. */
    annb_hit hits[T_QUERIES * K];
    assert_int_equal(setenv("ANNB_GRAPH_BATCH", "walk", 1), 0);
    for (size_t c = 0; c < ncases; c++) {
        assert_int_equal(t_ask(fx, &cases[c], 0, T_QUERIES, 2, hits), ANNB_OK);
        assert_true(same_hits(hits, cases[c].expected, T_QUERIES * K));
    }
    assert_int_equal(unsetenv("ANNB_GRAPH_BATCH"), 0);
    /* At the stored efSearch (ef 0 here) a batch is answered by an exact
     * pass when that costs less than the walks (search.c,
     * graph_batch_exact; always at this size): every answer is then the
     * brute force's, while the same questions one by one walked (and
     * missed some: checked against the brute force too). */
    size_t walked_wrong = 0;
    for (size_t c = 0; c < ncases; c++) {
        if (cases[c].ef || cases[c].variant == 2) continue; /* tu_check_hits knows no genres */
        const int64_t *ex = cases[c].variant == 1 ? fx->seen[0] : NULL;
        size_t nex = cases[c].variant == 1 ? fx->nseen[0] : 0;
        assert_int_equal(t_ask(fx, &cases[c], 0, T_QUERIES, 2, hits), ANNB_OK);
        for (size_t q = 0; q < T_QUERIES; q++)
            tu_check_hits(&fx->items, fx->queries + q * D, metrics[0], ex, nex, hits + q * K, K,
                          "a batch at the stored efSearch");
        walked_wrong += !same_hits(hits, cases[c].expected, T_QUERIES * K);
    }
    if (!walked_wrong) fail_msg("the single walks at the stored efSearch were all exact: the test "
                                "cannot tell a batch's exact pass from a walk");
    /* More threads than the pool has slots (64): the rest take a scratch
     * of their own, and still answer alike. */
    tworker many[72];
    for (int t = 0; t < 72; t++) {
        many[t] = (tworker){.fx = fx, .cases = cases, .seed = 900 + (uint64_t)t};
        assert_int_equal(pthread_create(&many[t].thread, NULL, t_burst, &many[t]), 0);
    }
    for (int t = 0; t < 72; t++) {
        assert_int_equal(pthread_join(many[t].thread, NULL), 0);
        assert_int_equal(many[t].failed, 0);
        if (many[t].wrong) fail_msg("72 threads: thread %d: %s", t, many[t].first_wrong);
    }
    free(cases);
}

/* The walk's integer score: each kernel this CPU runs (VNNI, AVX2, scalar)
 * against a plain int64 sum written here, on dimensions with and without a
 * tail, the extreme codes and weights (the largest sums at the largest
 * dimension), rows in any order; and the query's rounding to int8. */
static void test_sq8_dots(void **state)
{
    (void)state;
    const char *names[] = {"vnni", "avx2", "scalar"};
    const uint32_t dims[] = {1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 4096};
    tu_rng r;
    tu_rng_seed(&r, 77);
    int ran = 0;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        uint32_t d = dims[di], rows = 40, m = 37;
        uint8_t *codes = malloc((size_t)rows * d);
        int8_t *wq = malloc(d);
        assert_non_null(codes);
        assert_non_null(wq);
        for (int kind = 0; kind < 3; kind++) {
            /* kind 0: random; 1: all 255 against all 127 (the largest sum);
             * 2: all 255 against all -127 (the smallest). */
            for (size_t i = 0; i < (size_t)rows * d; i++)
                codes[i] = kind ? 255 : (uint8_t)tu_rng_below(&r, 256);
            for (uint32_t j = 0; j < d; j++)
                wq[j] = kind == 1 ? 127 : kind == 2 ? -127 : (int8_t)((int)tu_rng_below(&r, 255) - 127);
            uint32_t pos[37];
            int64_t want[37];
            for (uint32_t i = 0; i < m; i++) {
                pos[i] = (uint32_t)tu_rng_below(&r, rows);
                int64_t sum = 0;
                for (uint32_t j = 0; j < d; j++) sum += (int64_t)wq[j] * codes[(size_t)pos[i] * d + j];
                want[i] = sum;
            }
            for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
                annb_sq8_dots_fn fn = annb_sq8_dots_fn_named(names[k]);
                if (!fn) continue;
                ran |= 1 << k;
                int32_t got[37];
                fn(codes, d, pos, m, wq, got);
                for (uint32_t i = 0; i < m; i++)
                    if (got[i] != want[i])
                        fail_msg("%s, d %u, kind %d, row %u: %d, want %lld", names[k], d, kind, i,
                                 got[i], (long long)want[i]);
                fn(codes, d, pos, 0, wq, got); /* no rows: nothing read */
            }
        }
        free(codes);
        free(wq);
    }
    assert_true(ran & 4); /* the scalar kernel always */
    assert_non_null(annb_sq8_dots_fn_for());
    /* The query: the largest |q[j] step[j]| becomes +-127, the rest in
     * proportion; a NaN query gives all zeros. */
    float lo[4] = {0, 0, 0, 0}, step[4] = {1, 2, 0.5f, 1};
    annb_sq8 sq = {4, lo, step};
    float q[4] = {1, -2, 3, 0.5f}; /* weights 1, -4, 1.5, 0.5 */
    int8_t w8[4];
    annb_sq8_query_i8(w8, &sq, q);
    assert_int_equal(w8[0], 32); /* 127 / 4 = 31.75 */
    assert_int_equal(w8[1], -127);
    assert_int_equal(w8[2], 48); /* 47.6 */
    assert_int_equal(w8[3], 16); /* 15.9 */
    q[2] = NAN;
    annb_sq8_query_i8(w8, &sq, q);
    for (int j = 0; j < 4; j++) assert_int_equal(w8[j], 0);
    /* Subnormal weights: 127 / the largest is infinite; the zero weight
     * stays 0 (it was NaN cast to int8, undefined: fuzz_bundle under
     * UBSan), the others keep their signs at full scale. */
    float tiny[4] = {1e-45f, 0, -1e-45f, 0};
    annb_sq8_query_i8(w8, &sq, tiny); /* weights 1e-45, 0, -5e-46 (0), 0 */
    assert_int_equal(w8[0], 127);
    assert_int_equal(w8[1], 0);
    assert_int_equal(w8[3], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_hostile_bundles),
        cmocka_unit_test(test_hostile_arrays),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_build_threads),
        cmocka_unit_test(test_tiny_and_duplicates),
        cmocka_unit_test(test_epoch_wrap),
        cmocka_unit_test(test_sq8_dots),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
