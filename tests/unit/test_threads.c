/* test_threads.c - one open bundle searched by many threads at once, each
 * call with its own search effort (HNSW ef_search, IVF nprobe, 0 = the
 * tuned default) and some with excluded IDs.
 *
 * Every answer a thread gets is compared, ID and score bit for bit, with the
 * answer computed single-threaded beforehand for the same (question,
 * effort): a search that changed shared state for its call (Faiss 1.7.3's
 * hnsw.efSearch) answers some other thread's question at the wrong effort.
 * Built for ThreadSanitizer by `make tsan`, which also sees the race itself.
 * annb's own graph (lib/graph.c: a pool of per-thread visited marks taken
 * without a lock, ef per call) is searched the same way.
 * Also: annb's HNSW search (lib/hnsw_search.cpp) against Faiss's own
 * IndexHNSW::search at the same ef, inner product and L2, one query and a
 * batch; and recall at a high ef against a brute force (testutil.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "faiss_glue.h"
#include "testutil.h"

#define N_ITEMS 3000
#define DIM 16
#define N_QUERIES 24
#define K 10
#define N_THREADS 8
#define ROUNDS 2     /* each thread asks every (bundle, effort, question) this often */
#define N_EXCLUDE 40 /* IDs excluded by the "exclude" variant of each case */
#define HIGH_EF 400

typedef struct fixture {
    tu_data items;
    char dir[256];
    annb_bundle *hnsw, *ivf, *ivfsq, *graph;
    float queries[N_QUERIES * DIM];
    int64_t exclude[N_EXCLUDE];
} fixture;

static annb_bundle *build_open(fixture *fx, const char *csv, const char *name, const char *index)
{
    char out[512];
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_error err = {0};
    o.index = index;
    o.tune_queries = 200; /* fewer than the default: the build runs under TSan too */
    int rc = annb_build(NULL, csv, NULL, tu_path(out, fx->dir, name), &o, &err);
    if (rc != ANNB_OK) fail_msg("annb_build(%s) = %d: %s", index, rc, err.message);
    return tu_open(out, 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    tu_rng r;
    char csv[512];
    tu_items_setup(&fx->items, &r, fx->dir, csv, N_ITEMS, DIM, 9009);
    fx->hnsw = build_open(fx, csv, "hnsw.annb", "HNSW32");
    fx->ivf = build_open(fx, csv, "ivf.annb", "IVF32,Flat");
    fx->ivfsq = build_open(fx, csv, "ivfsq.annb", "IVF32,SQ8");
    fx->graph = build_open(fx, csv, "graph.annb", "graph"); /* Graph32,SQ8 */
    for (size_t i = 0; i < N_QUERIES * DIM; i++) fx->queries[i] = (float)tu_rng_uniform(&r, -1, 1);
    for (size_t i = 0; i < N_EXCLUDE; i++) fx->exclude[i] = fx->items.ids[i * 7];
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    annb_close(fx->hnsw);
    annb_close(fx->ivf);
    annb_close(fx->ivfsq);
    annb_close(fx->graph);
    tu_tmpdir_remove(fx->dir);
    tu_data_free(&fx->items);
    free(fx);
    return 0;
}

/* ---- the cases every thread asks, with their single-threaded answers ---- */

typedef struct search_case {
    const annb_bundle *b;
    const char *what;
    uint32_t nprobe, ef_search;
    int exclude;
    annb_hit expected[N_QUERIES * K];
} search_case;

#define N_EFFORTS 6
static const uint32_t hnsw_efs[N_EFFORTS] = {0, 4, 16, 48, 150, HIGH_EF};
static const uint32_t ivf_nprobes[N_EFFORTS] = {0, 1, 2, 5, 12, 32};
#define N_KINDS 4 /* HNSW32, IVF32,Flat, IVF32,SQ8, annb's graph (ef as HNSW's) */
#define N_CASES (N_KINDS * N_EFFORTS * 2)

static int ask(const fixture *fx, const search_case *c, size_t qi, size_t nq, annb_hit *hits)
{
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    o.nprobe = c->nprobe;
    o.ef_search = c->ef_search;
    if (c->exclude) {
        o.exclude_ids = fx->exclude;
        o.exclude_count = N_EXCLUDE;
    }
    return annb_search(c->b, fx->queries + qi * DIM, nq, K, &o, hits);
}

static search_case *make_cases(const fixture *fx)
{
    search_case *cases = calloc(N_CASES, sizeof *cases);
    assert_non_null(cases);
    size_t n = 0;
    for (int ex = 0; ex < 2; ex++)
        for (int e = 0; e < N_EFFORTS; e++) {
            cases[n++] = (search_case){fx->hnsw, "HNSW32", 0, hnsw_efs[e], ex, {{0}}};
            cases[n++] = (search_case){fx->ivf, "IVF32,Flat", ivf_nprobes[e], 0, ex, {{0}}};
            cases[n++] = (search_case){fx->ivfsq, "IVF32,SQ8", ivf_nprobes[e], 0, ex, {{0}}};
            cases[n++] = (search_case){fx->graph, "Graph32,SQ8", 0, hnsw_efs[e], ex, {{0}}};
        }
    for (size_t c = 0; c < n; c++)
        for (size_t q = 0; q < N_QUERIES; q++)
            assert_int_equal(ask(fx, &cases[c], q, 1, cases[c].expected + q * K), ANNB_OK);
    return cases;
}

static int same_hits(const annb_hit *a, const annb_hit *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].id != b[i].id || memcmp(&a[i].score, &b[i].score, sizeof a[i].score)) return 0;
    return 1;
}

typedef struct worker {
    pthread_t thread;
    const fixture *fx;
    const search_case *cases;
    uint64_t seed;
    size_t asked, wrong, failed;
    char first_wrong[160];
} worker;

/* Every (case, question) ROUNDS times in an order of the thread's own, one
 * question per call or two at once, so that threads ask different efforts
 * at the same moment. */
static void *work(void *arg)
{
    worker *w = arg;
    tu_rng r;
    tu_rng_seed(&r, w->seed);
    size_t total = (size_t)N_CASES * N_QUERIES;
    uint32_t *order = malloc(total * sizeof *order);
    if (!order) {
        w->failed++;
        return NULL;
    }
    for (uint32_t i = 0; i < total; i++) order[i] = i;
    for (int round = 0; round < ROUNDS; round++) {
        tu_rng_shuffle(&r, order, total, sizeof *order);
        for (size_t i = 0; i < total; i++) {
            const search_case *c = &w->cases[order[i] / N_QUERIES];
            size_t q = order[i] % N_QUERIES;
            size_t nq = q + 1 < N_QUERIES && tu_rng_below(&r, 2) ? 2 : 1;
            annb_hit hits[2 * K];
            w->asked++;
            if (ask(w->fx, c, q, nq, hits) != ANNB_OK) {
                w->failed++;
            } else if (!same_hits(hits, c->expected + q * K, nq * K)) {
                if (!w->wrong++)
                    snprintf(w->first_wrong, sizeof w->first_wrong,
                             "%s nprobe %u ef_search %u exclude %d query %zu", c->what, c->nprobe,
                             c->ef_search, c->exclude, q);
            }
        }
    }
    free(order);
    return NULL;
}

static void test_threads_match_single_threaded(void **state)
{
    const fixture *fx = *state;
    search_case *cases = make_cases(fx);
    worker w[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        w[t] = (worker){.fx = fx, .cases = cases, .seed = 100 + (uint64_t)t};
        assert_int_equal(pthread_create(&w[t].thread, NULL, work, &w[t]), 0);
    }
    size_t asked = 0, wrong = 0, failed = 0;
    for (int t = 0; t < N_THREADS; t++) {
        assert_int_equal(pthread_join(w[t].thread, NULL), 0);
        asked += w[t].asked;
        wrong += w[t].wrong;
        failed += w[t].failed;
        if (w[t].wrong) print_message("thread %d: first wrong answer: %s\n", t, w[t].first_wrong);
    }
    print_message("%d threads: %zu searches, %zu wrong answers, %zu failed\n", N_THREADS, asked,
                  wrong, failed);
    assert_int_equal(asked, (size_t)N_THREADS * ROUNDS * N_CASES * N_QUERIES);
    assert_int_equal(failed, 0);
    assert_int_equal(wrong, 0);

    /* The efforts really differ: low and high ef do not answer alike. */
    assert_false(same_hits(cases[1 * N_KINDS].expected, cases[(N_EFFORTS - 1) * N_KINDS].expected,
                           N_QUERIES * K));
    assert_false(same_hits(cases[1 * N_KINDS + 3].expected,
                           cases[(N_EFFORTS - 1) * N_KINDS + 3].expected, N_QUERIES * K));
    free(cases);
}

/* A batch (Faiss's and annb's OpenMP path) answers as the questions one by
 * one. annb's graph walks a batch under ANNB_GRAPH_BATCH=walk: at the stored
 * efSearch it would otherwise answer this small bundle's batch by an exact
 * pass (lib/search.c, graph_batch_exact; test_graph checks that path). */
static void test_batch_matches_single(void **state)
{
    const fixture *fx = *state;
    search_case *cases = make_cases(fx);
    annb_hit hits[N_QUERIES * K];
    assert_int_equal(setenv("ANNB_GRAPH_BATCH", "walk", 1), 0);
    for (size_t c = 0; c < N_CASES; c++) {
        assert_int_equal(ask(fx, &cases[c], 0, N_QUERIES, hits), ANNB_OK);
        if (!same_hits(hits, cases[c].expected, N_QUERIES * K))
            fail_msg("%s nprobe %u ef %u exclude %d: batch differs", cases[c].what,
                     cases[c].nprobe, cases[c].ef_search, cases[c].exclude);
    }
    assert_int_equal(unsetenv("ANNB_GRAPH_BATCH"), 0);
    free(cases);
}

/* ---- recall against the brute force ---- */

static double recall_at(const fixture *fx, const annb_bundle *b, uint32_t nprobe, uint32_t ef,
                        int exclude)
{
    size_t found = 0;
    for (size_t q = 0; q < N_QUERIES; q++) {
        const float *qv = fx->queries + q * DIM;
        search_case c = {b, "", nprobe, ef, exclude, {{0}}};
        annb_hit hits[K];
        assert_int_equal(ask(fx, &c, q, 1, hits), ANNB_OK);
        size_t count;
        tu_ranked *truth = tu_brute_force(&count, &fx->items, qv, ANNB_METRIC_IP,
                                          exclude ? fx->exclude : NULL, exclude ? N_EXCLUDE : 0);
        for (size_t j = 0; j < K; j++) {
            for (size_t e = 0; exclude && e < N_EXCLUDE; e++)
                if (hits[j].id == fx->exclude[e])
                    fail_msg("excluded ID %lld returned", (long long)hits[j].id);
            for (size_t i = 0; i < K; i++) found += hits[j].id == truth[i].id;
        }
        free(truth);
    }
    return (double)found / (N_QUERIES * K);
}

static void test_recall_at_high_effort(void **state)
{
    const fixture *fx = *state;
    for (int ex = 0; ex < 2; ex++) {
        double hi = recall_at(fx, fx->hnsw, 0, HIGH_EF, ex);
        double lo = recall_at(fx, fx->hnsw, 0, 1, ex);
        print_message("HNSW32 recall@%d exclude %d: ef %d %.3f, ef 1 %.3f\n", K, ex, HIGH_EF, hi,
                      lo);
        assert_true(hi >= 0.98);
        assert_true(lo < hi); /* the per-call ef reaches the search */
        /* Every list probed: annb's IVF-Flat is exact. */
        for (size_t q = 0; q < N_QUERIES; q++) {
            search_case c = {fx->ivf, "", 32, 0, ex, {{0}}};
            annb_hit hits[K];
            assert_int_equal(ask(fx, &c, q, 1, hits), ANNB_OK);
            tu_check_hits(&fx->items, fx->queries + q * DIM, ANNB_METRIC_IP,
                          ex ? fx->exclude : NULL, ex ? N_EXCLUDE : 0, hits, K,
                          "IVF32,Flat nprobe 32");
        }
        double g = recall_at(fx, fx->graph, 0, HIGH_EF, ex);
        print_message("Graph32,SQ8 recall@%d exclude %d: ef %d %.3f\n", K, ex, HIGH_EF, g);
        assert_true(g >= 0.98);
        double sq = recall_at(fx, fx->ivfsq, 32, 0, ex);
        print_message("IVF32,SQ8 recall@%d exclude %d, nprobe 32: %.3f\n", K, ex, sq);
        assert_true(sq >= 0.9);
    }
}

/* ---- annb's HNSW search against Faiss's IndexHNSW::search ---- */

/* Faiss's own search (through the C API: IndexHNSW::search, candidate list
 * sized by the index's efSearch) and annb's at the same ef, the index's own
 * then passed per call while the index holds another: bit for bit equal. */
static void compare_with_faiss(FaissIndex *ix, const float *x, size_t nq, const char *what)
{
    const int efs[] = {1, 7, 16, 33, 120, HIGH_EF};
    const int64_t ks[] = {1, K, 40}; /* 40: k above some efs (Faiss: list of max(ef, k)) */
    float *df = malloc(nq * 40 * sizeof *df), *da = malloc(nq * 40 * sizeof *da);
    int64_t *lf = malloc(nq * 40 * sizeof *lf), *la = malloc(nq * 40 * sizeof *la);
    assert_true(df && da && lf && la);
    for (size_t e = 0; e < sizeof efs / sizeof *efs; e++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
            int64_t k = ks[ki];
            annb_faiss_set_defaults(ix, 0, (uint32_t)efs[e]);
            assert_int_equal(faiss_Index_search(ix, (int64_t)nq, x, k, df, lf), 0);
            annb_faiss_params own = {0};
            assert_int_equal(annb_faiss_search_params(ix, (int64_t)nq, x, k, &own, da, la), 0);
            if (memcmp(lf, la, nq * k * sizeof *lf) || memcmp(df, da, nq * k * sizeof *df))
                fail_msg("%s nq %zu ef %d k %lld: annb at the index's ef differs from Faiss", what,
                         nq, efs[e], (long long)k);
            annb_faiss_set_defaults(ix, 0, efs[e] == 16 ? 64 : 16);
            annb_faiss_params call = {.ef_search = (uint32_t)efs[e]};
            assert_int_equal(annb_faiss_search_params(ix, (int64_t)nq, x, k, &call, da, la), 0);
            if (memcmp(lf, la, nq * k * sizeof *lf) || memcmp(df, da, nq * k * sizeof *df))
                fail_msg("%s nq %zu ef %d k %lld: per-call ef differs from Faiss at that ef", what,
                         nq, efs[e], (long long)k);
        }
    free(df);
    free(da);
    free(lf);
    free(la);
}

static void test_hnsw_equals_faiss(void **state)
{
    const fixture *fx = *state;
    /* The bundle's own index: inner product, which Faiss searches negated. */
    FaissIndex *ix = fx->hnsw->c.index;
    assert_non_null(ix);
    assert_int_equal(annb_faiss_family_of(ix), ANNB_FAISS_HNSW);
    compare_with_faiss(ix, fx->queries, 1, "bundle HNSW32 (ip)");
    compare_with_faiss(ix, fx->queries, N_QUERIES, "bundle HNSW32 (ip)");

    /* An ef above the item count answers as the item count (annb caps it),
     * the largest asks included, without a heap of that size. */
    float d1[N_QUERIES * K], d2[N_QUERIES * K];
    int64_t l1[N_QUERIES * K], l2[N_QUERIES * K];
    annb_faiss_params at_n = {.ef_search = N_ITEMS}, huge = {.ef_search = UINT32_MAX};
    assert_int_equal(annb_faiss_search_params(ix, N_QUERIES, fx->queries, K, &at_n, d1, l1), 0);
    assert_int_equal(annb_faiss_search_params(ix, N_QUERIES, fx->queries, K, &huge, d2, l2), 0);
    assert_memory_equal(l1, l2, sizeof l1);
    assert_memory_equal(d1, d2, sizeof d1);

    /* L2, built here straight through Faiss. */
    FaissIndex *flat_l2 = NULL;
    assert_int_equal(faiss_index_factory(&flat_l2, DIM, "HNSW16", METRIC_L2), 0);
    assert_int_equal(faiss_Index_add(flat_l2, (int64_t)fx->items.n, fx->items.vecs), 0);
    compare_with_faiss(flat_l2, fx->queries, 1, "HNSW16 (l2)");
    compare_with_faiss(flat_l2, fx->queries, N_QUERIES, "HNSW16 (l2)");
    faiss_Index_free(flat_l2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall_at_high_effort),
        cmocka_unit_test(test_batch_matches_single),
        cmocka_unit_test(test_threads_match_single_threaded),
        /* Last: it leaves another efSearch set on the bundle's index. */
        cmocka_unit_test(test_hnsw_equals_faiss),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
