/* test_ivf.c - annb's IVF-Flat (lib/ivf.c) with real Faiss k-means, against
 * a brute force in double precision written here: every list probed equals
 * the brute force (and annb_exact_search); fewer lists equal a brute force
 * over the lists whose centroids score best, chosen here from the arrays.
 * Also: the lists' structure, filters, determinism of the build, threads,
 * annb_ivf_check on damaged arrays, and recall rising with nprobe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exact.h"
#include "nearest.h"
#include "ivf.h"
#include "testutil.h"

/* ---- the reference ---- */

static double ref_score(const float *x, const float *q, uint32_t d, int l2)
{
    double s = 0;
    for (uint32_t j = 0; j < d; j++) s += l2 ? ((double)x[j] - q[j]) * ((double)x[j] - q[j])
                                             : (double)x[j] * q[j];
    return s;
}

typedef struct ref {
    double s;
    int64_t row;
} ref;

static int g_l2; /* qsort has no context argument */

static int ref_cmp(const void *a, const void *b)
{
    const ref *x = a, *y = b;
    if (x->s != y->s) return (g_l2 ? x->s < y->s : x->s > y->s) ? -1 : 1;
    return x->row < y->row ? -1 : 1;
}

static int in_list(const int64_t *a, size_t n, int64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] == v) return 1;
    return 0;
}

/* Does row pass f for query qi? Written independently of exact.c. */
static int ref_passes(const annb_row_filter *f, size_t qi, int64_t row)
{
    if (!f) return 1;
    if (f->allowed && !(f->allowed[row / 8] >> (row % 8) & 1)) return 0;
    if (in_list(f->skip, f->nskip, row)) return 0;
    if (f->extra && f->extra[qi])
        for (size_t i = 0; i < f->extra_count[qi]; i++)
            if (f->extra[qi][i] == row) return 0;
    return 1;
}

/* Every candidate row (use[row] set, or all if use is NULL) passing f,
 * ranked best first. Returns a malloc'd array of *count. */
static ref *brute(size_t *count, const float *x, uint64_t n, uint32_t d, int l2, const float *q,
                  const uint8_t *use, const annb_row_filter *f, size_t qi)
{
    ref *r = malloc((n + 1) * sizeof *r);
    assert_non_null(r);
    size_t m = 0;
    for (uint64_t i = 0; i < n; i++)
        if ((!use || use[i]) && ref_passes(f, qi, (int64_t)i))
            r[m++] = (ref){ref_score(x + i * d, q, d, l2), (int64_t)i};
    g_l2 = l2;
    qsort(r, m, sizeof *r, ref_cmp);
    *count = m;
    return r;
}

/* One query's k answers against the ranked candidates: the same rows in the
 * same order (a different row only where the reference scores tie in
 * double), scores within 1e-4 relative, -1 / NaN past the candidates. */
static void check_answer(const ref *r, size_t m, const float *x, uint32_t d, int l2,
                         const float *q, const uint8_t *use, const annb_row_filter *f, size_t qi,
                         size_t k, const float *scores, const int64_t *rows)
{
    for (size_t j = 0; j < k; j++) {
        if (j >= m) {
            assert_int_equal(rows[j], -1);
            assert_true(isnan(scores[j]));
            continue;
        }
        assert_true(tu_close(scores[j], r[j].s, 1e-4));
        if (rows[j] == r[j].row) continue;
        /* A tie: the row must still be a candidate, distinct, and tied. */
        assert_true(rows[j] >= 0);
        assert_true(!use || use[rows[j]]);
        assert_true(ref_passes(f, qi, rows[j]));
        for (size_t i = 0; i < j; i++) assert_true(rows[i] != rows[j]);
        double own = ref_score(x + rows[j] * d, q, d, l2);
        assert_true(tu_close(own, r[j].s, 1e-6));
    }
}

/* The lists the search should probe for q, from the arrays alone:
 * use[row] = 1 for each row of the nprobe best centroids (ties: lower list). */
static void ref_probed(uint8_t *use, const annb_ivf *ivf, const float *q, int l2, size_t nprobe)
{
    ref *c = malloc(ivf->nlist * sizeof *c);
    assert_non_null(c);
    for (uint32_t l = 0; l < ivf->nlist; l++)
        c[l] = (ref){ref_score(ivf->centroids + (size_t)l * ivf->d, q, ivf->d, l2), l};
    g_l2 = l2;
    qsort(c, ivf->nlist, sizeof *c, ref_cmp);
    memset(use, 0, ivf->n);
    for (size_t i = 0; i < nprobe && i < ivf->nlist; i++)
        for (uint64_t p = ivf->offsets[c[i].row]; p < ivf->offsets[c[i].row + 1]; p++)
            use[ivf->rows[p]] = 1;
    free(c);
}

/* ---- data ---- */

static float *make_data(size_t n, uint32_t d, unsigned clusters, double spread, int normalise,
                        tu_rng *r)
{
    tu_data t;
    int64_t *ids = calloc(n, sizeof *ids); /* unused here, but copied */
    assert_non_null(ids);
    tu_data_make_clustered(&t, n, d, ids, clusters, spread, r);
    free(ids);
    float *x = t.vecs;
    t.vecs = NULL;
    tu_data_free(&t);
    for (size_t i = 0; normalise && i < n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        for (uint32_t j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] / sqrt(s));
    }
    return x;
}

/* Queries near the data: a row plus noise (the clustered regime IVF is for). */
static float *make_queries(const float *x, size_t n, uint32_t d, size_t nq, double noise,
                           int normalise, tu_rng *r)
{
    float *q = malloc(nq * d * sizeof *q);
    assert_non_null(q);
    for (size_t i = 0; i < nq; i++) {
        const float *b = x + tu_rng_below(r, n) * d;
        double s = 0;
        for (uint32_t j = 0; j < d; j++) {
            q[i * d + j] = b[j] + (float)tu_rng_uniform(r, -noise, noise);
            s += (double)q[i * d + j] * q[i * d + j];
        }
        for (uint32_t j = 0; normalise && j < d; j++) q[i * d + j] = (float)(q[i * d + j] / sqrt(s));
    }
    return q;
}

static void build(annb_ivf_built *b, const float *x, uint64_t n, uint32_t d, annb_metric m,
                  uint32_t nlist)
{
    annb_error err = {0};
    int rc = annb_ivf_build(b, x, n, d, m, nlist, NULL, &err);
    if (rc) fail_msg("annb_ivf_build: %s", err.message);
    char why[256];
    assert_int_equal(annb_ivf_check(&b->ivf, n, why, sizeof why), ANNB_OK);
}

static const annb_metric metrics[] = {ANNB_METRIC_IP, ANNB_METRIC_L2, ANNB_METRIC_COSINE};

/* ---- tests ---- */

/* nprobe = nlist: brute force over everything, and annb_exact_search one
 * query at a time bit for bit (same kernel, position-independent scores);
 * nprobe < nlist: brute force over the probed lists. k = 1, 10, > n. Under
 * every kernel the CPU runs. */
static void run_metric(annb_metric m, const char *kernel)
{
    const size_t n = 1500, nq = 12;
    const uint32_t d = 48, nlist = 20;
    int l2 = m == ANNB_METRIC_L2, norm = m == ANNB_METRIC_COSINE;
    tu_rng r;
    tu_rng_seed(&r, 100 + (uint64_t)m);
    float *x = make_data(n, d, 30, 1.5, norm, &r), *q = make_queries(x, n, d, nq, 0.5, norm, &r);
    annb_ivf_built b;
    build(&b, x, n, d, m, nlist);
    if (kernel) setenv("ANNB_KERNEL", kernel, 1);
    static const size_t ks[] = {1, 10, 1600};
    static const size_t probes[] = {20, 1000, 1, 3, 7};
    uint8_t *use = malloc(n);
    for (size_t ki = 0; ki < 3; ki++) {
        size_t k = ks[ki];
        float *s = malloc(nq * k * sizeof *s), *es = malloc(k * sizeof *es);
        int64_t *rw = malloc(nq * k * sizeof *rw), *er = malloc(k * sizeof *er);
        for (size_t pi = 0; pi < 5; pi++) {
            size_t nprobe = probes[pi];
            assert_int_equal(annb_ivf_search(&b.ivf, m, q, nq, k, nprobe, NULL, s, rw), ANNB_OK);
            for (size_t i = 0; i < nq; i++) {
                const float *qi = q + i * d;
                size_t cnt;
                ref_probed(use, &b.ivf, qi, l2, nprobe);
                ref *rf = brute(&cnt, x, n, d, l2, qi, nprobe >= nlist ? NULL : use, NULL, 0);
                check_answer(rf, cnt, x, d, l2, qi, nprobe >= nlist ? NULL : use, NULL, 0, k,
                             s + i * k, rw + i * k);
                free(rf);
                if (nprobe < nlist) continue;
                assert_int_equal(annb_exact_search(x, n, d, m, qi, 1, k, NULL, es, er), ANNB_OK);
                assert_memory_equal(er, rw + i * k, k * sizeof *er);
                for (size_t j = 0; j < k && er[j] >= 0; j++) assert_true(es[j] == s[i * k + j]);
            }
        }
        free(s);
        free(es);
        free(rw);
        free(er);
    }
    unsetenv("ANNB_KERNEL");
    free(use);
    annb_ivf_release_built(&b);
    free(x);
    free(q);
}

static void test_against_brute_force(void **state)
{
    (void)state;
    static const char *const kernels[] = {"scalar", "avx2", NULL};
    for (size_t kk = 0; kk < 3; kk++)
        for (size_t mi = 0; mi < 3; mi++) run_metric(metrics[mi], kernels[kk]);
}

/* Every row in exactly one list, ascending within it, its vector copied. */
static void test_list_structure(void **state)
{
    (void)state;
    const size_t n = 3001;
    const uint32_t d = 13, nlist = 37;
    tu_rng r;
    tu_rng_seed(&r, 5);
    float *x = make_data(n, d, 50, 1.5, 0, &r);
    for (size_t mi = 0; mi < 3; mi++) {
        annb_ivf_built b;
        build(&b, x, n, d, metrics[mi], nlist);
        assert_int_equal(b.ivf.n, n);
        assert_int_equal(b.ivf.offsets[0], 0);
        assert_int_equal(b.ivf.offsets[nlist], n);
        uint8_t *seen = calloc(n, 1);
        for (uint32_t l = 0; l < nlist; l++)
            for (uint64_t p = b.ivf.offsets[l]; p < b.ivf.offsets[l + 1]; p++) {
                uint32_t row = b.ivf.rows[p];
                assert_true(row < n);
                assert_false(seen[row]);
                seen[row] = 1;
                if (p > b.ivf.offsets[l]) assert_true(row > b.ivf.rows[p - 1]);
                assert_memory_equal(b.ivf.vecs + p * d, x + (size_t)row * d, d * sizeof(float));
            }
        for (size_t i = 0; i < n; i++) assert_true(seen[i]);
        free(seen);
        annb_ivf_release_built(&b);
    }
    free(x);
}

/* The allowed bitmap, the skip list and per-query exclusions, in the scan. */
static void test_filters(void **state)
{
    (void)state;
    const size_t n = 2000, nq = 4, k = 10;
    const uint32_t d = 32, nlist = 16;
    tu_rng r;
    tu_rng_seed(&r, 9);
    float *x = make_data(n, d, 20, 1.5, 0, &r), *q = make_queries(x, n, d, nq, 0.5, 0, &r);
    uint8_t *allowed = calloc(n / 8 + 1, 1), *use = malloc(n);
    for (size_t i = 0; i < n; i++)
        if (tu_rng_below(&r, 3)) allowed[i / 8] |= (uint8_t)(1u << (i % 8));
    int64_t skip[50];
    for (size_t i = 0; i < 50; i++) skip[i] = (int64_t)(i * 37 + 3);
    uint32_t ex0[30];
    for (size_t i = 0; i < 30; i++) ex0[i] = (uint32_t)(i * 61 + 1);
    const uint32_t *extra[4] = {ex0, NULL, ex0, NULL};
    size_t extra_count[4] = {30, 0, 30, 0};
    annb_row_filter filters[3] = {{allowed, NULL, 0, NULL, NULL},
                                  {NULL, skip, 50, NULL, NULL},
                                  {allowed, skip, 50, extra, extra_count}};
    float s[4 * 10];
    int64_t rw[4 * 10];
    for (size_t mi = 0; mi < 3; mi++) {
        annb_metric m = metrics[mi];
        int l2 = m == ANNB_METRIC_L2;
        annb_ivf_built b;
        build(&b, x, n, d, m, nlist);
        for (size_t fi = 0; fi < 3; fi++)
            for (size_t nprobe = 2; nprobe <= nlist; nprobe += nlist - 2) {
                assert_int_equal(annb_ivf_search(&b.ivf, m, q, nq, k, nprobe, &filters[fi], s, rw),
                                 ANNB_OK);
                for (size_t i = 0; i < nq; i++) {
                    size_t cnt;
                    ref_probed(use, &b.ivf, q + i * d, l2, nprobe);
                    ref *rf = brute(&cnt, x, n, d, l2, q + i * d, use, &filters[fi], i);
                    check_answer(rf, cnt, x, d, l2, q + i * d, use, &filters[fi], i, k, s + i * k,
                                 rw + i * k);
                    free(rf);
                }
            }
        annb_ivf_release_built(&b);
    }
    free(allowed);
    free(use);
    free(x);
    free(q);
}

static void assert_same_built(const annb_ivf_built *a, const annb_ivf_built *b)
{
    const annb_ivf *x = &a->ivf, *y = &b->ivf;
    assert_int_equal(x->nlist, y->nlist);
    assert_int_equal(x->n, y->n);
    assert_memory_equal(x->centroids, y->centroids, (size_t)x->nlist * x->d * sizeof(float));
    assert_memory_equal(x->offsets, y->offsets, ((size_t)x->nlist + 1) * sizeof(uint64_t));
    assert_memory_equal(x->rows, y->rows, x->n * sizeof(uint32_t));
    assert_memory_equal(x->vecs, y->vecs, x->n * x->d * sizeof(float));
}

/* Same input, same bytes: twice, and with one or two OpenMP threads. The
 * sample (256 per list here) is smaller than n, so Faiss subsamples. */
static void test_deterministic(void **state)
{
    (void)state;
    const size_t n = 20000;
    const uint32_t d = 24, nlist = 50;
    tu_rng r;
    tu_rng_seed(&r, 11);
    float *x = make_data(n, d, 60, 1.5, 0, &r);
    assert_true(annb_ivf_train_points(n, nlist) < n);
    int caller = omp_get_max_threads();
    for (size_t mi = 0; mi < 4; mi++) {
        if (mi == 3) setenv("ANNB_KERNEL", "scalar", 1); /* the generic assignment kernel */
        annb_ivf_built a, b, c;
        annb_metric m = metrics[mi % 3];
        omp_set_num_threads(2);
        build(&a, x, n, d, m, nlist);
        build(&b, x, n, d, m, nlist);
        omp_set_num_threads(1);
        build(&c, x, n, d, m, nlist);
        assert_same_built(&a, &b);
        assert_same_built(&a, &c);
        annb_ivf_release_built(&a);
        annb_ivf_release_built(&b);
        annb_ivf_release_built(&c);
    }
    unsetenv("ANNB_KERNEL");
    omp_set_num_threads(caller);
    free(x);
}

/* Threads change nothing: IVF split by query and by position, and the
 * exact scan split by rows, bit for bit against one thread. */
static void test_threads_identical(void **state)
{
    (void)state;
    const size_t n = 70000, k = 25;
    const uint32_t d = 48, nlist = 8; /* d = 48: AVX-512 sums in more than one order */
    tu_rng r;
    tu_rng_seed(&r, 13);
    float *x = make_data(n, d, 10, 1.5, 0, &r), *q = make_queries(x, n, d, 5, 0.5, 0, &r);
    float s1[5 * 25], s2[5 * 25];
    int64_t r1[5 * 25], r2[5 * 25];
    for (size_t mi = 0; mi < 3; mi++) {
        annb_metric m = metrics[mi];
        annb_ivf_built b;
        build(&b, x, n, d, m, nlist);
        for (size_t nq = 1; nq <= 5; nq += 4)
            for (int threads = 2; threads <= 3; threads++) {
                size_t nprobe = 5; /* ~44k positions: split among 2 or 3 threads */
                assert_int_equal(annb_ivf_search(&b.ivf, m, q, nq, k, nprobe, NULL, s1, r1), ANNB_OK);
                assert_int_equal(
                    annb_ivf_search_threads(&b.ivf, m, q, nq, k, nprobe, NULL, threads, s2, r2),
                    ANNB_OK);
                assert_memory_equal(r1, r2, nq * k * sizeof *r1);
                assert_memory_equal(s1, s2, nq * k * sizeof *s1);
                /* exact, one query per call (the scan path), split by rows */
                assert_int_equal(annb_exact_search(x, n, d, m, q, nq, k, NULL, s1, r1), ANNB_OK);
                assert_int_equal(
                    annb_exact_search_threads(x, n, d, m, q, nq, k, NULL, threads, s2, r2), ANNB_OK);
                assert_memory_equal(r1, r2, nq * k * sizeof *r1);
                assert_memory_equal(s1, s2, nq * k * sizeof *s1);
            }
        annb_ivf_release_built(&b);
    }
    free(x);
    free(q);
}

/* annb_exact_nearest (the assignment step): the best centroid up to
 * rounding, for every kernel, dimensions through each code path, partial
 * tiles and panels; ties to the lower centroid; the same with any threads. */
static void test_nearest(void **state)
{
    (void)state;
    static const char *const kernels[] = {"scalar", "avx2", NULL};
    static const uint32_t dims[] = {1, 7, 16, 64, 130};
    static const uint32_t ncs[] = {1, 5, 16, 37};
    const size_t n = 203;
    tu_rng r;
    tu_rng_seed(&r, 31);
    for (size_t kk = 0; kk < 3; kk++) {
        if (kernels[kk]) setenv("ANNB_KERNEL", kernels[kk], 1);
        else unsetenv("ANNB_KERNEL");
        for (size_t di = 0; di < 5; di++)
            for (size_t ci = 0; ci < 4; ci++)
                for (int l2 = 0; l2 <= 1; l2++) {
                    uint32_t d = dims[di], nc = ncs[ci];
                    float *x = malloc(n * d * sizeof *x), *c = malloc((size_t)nc * d * sizeof *c);
                    float *dist = malloc(n * sizeof *dist);
                    int64_t *best = malloc(n * sizeof *best), *best3 = malloc(n * sizeof *best3);
                    for (size_t i = 0; i < n * d; i++) x[i] = (float)tu_rng_uniform(&r, -1, 1);
                    for (size_t i = 0; i < (size_t)nc * d; i++) c[i] = (float)tu_rng_uniform(&r, -1, 1);
                    annb_metric m = l2 ? ANNB_METRIC_L2 : ANNB_METRIC_IP;
                    assert_int_equal(annb_exact_nearest(best, dist, x, n, c, nc, d, m, 1), ANNB_OK);
                    assert_int_equal(annb_exact_nearest(best3, NULL, x, n, c, nc, d, m, 3), ANNB_OK);
                    assert_memory_equal(best, best3, n * sizeof *best);
                    for (size_t i = 0; i < n; i++) {
                        double top = l2 ? INFINITY : -INFINITY, scale = 1;
                        for (uint32_t v = 0; v < nc; v++) {
                            double sv = ref_score(c + (size_t)v * d, x + i * d, d, l2);
                            top = l2 ? fmin(top, sv) : fmax(top, sv);
                            scale = fmax(scale, ref_score(c + (size_t)v * d, c + (size_t)v * d, d, 0));
                        }
                        assert_true(best[i] >= 0 && best[i] < nc);
                        double own = ref_score(c + best[i] * d, x + i * d, d, l2);
                        scale += ref_score(x + i * d, x + i * d, d, 0);
                        assert_true(fabs(own - top) <= 1e-5 * scale);
                        assert_true(fabs(dist[i] - own) <= 1e-5 * scale);
                    }
                    /* ties: copies of centroid 0 later on lose to it */
                    for (uint32_t v = 1; v < nc; v++) memcpy(c + (size_t)v * d, c, d * sizeof *c);
                    memcpy(x, c, d * sizeof *x);
                    assert_int_equal(annb_exact_nearest(best, NULL, x, n, c, nc, d, m, 2), ANNB_OK);
                    for (size_t i = 0; i < n; i++) assert_int_equal(best[i], 0);
                    free(x);
                    free(c);
                    free(dist);
                    free(best);
                    free(best3);
                }
    }
    unsetenv("ANNB_KERNEL");
}

/* Damaged offsets and rows are refused with a reason, never scanned. */
static void test_check_refuses_damage(void **state)
{
    (void)state;
    const size_t n = 500;
    const uint32_t d = 8, nlist = 10;
    tu_rng r;
    tu_rng_seed(&r, 17);
    float *x = make_data(n, d, 10, 1.5, 0, &r);
    annb_ivf_built b;
    build(&b, x, n, d, ANNB_METRIC_L2, nlist);
    uint64_t *o = b.offsets;
    uint32_t *rows = b.rows;
    char why[256];
    /* a list with at least two rows, and another non-empty one */
    uint32_t l = 0, other = 0;
    while (o[l + 1] - o[l] < 2) l++;
    while (other == l || o[other + 1] == o[other]) other++;

    struct {
        const char *what;
        uint64_t *o_at;
        uint64_t o_val;
        uint32_t *r_at;
        uint32_t r_val;
    } cases[] = {
        {"offsets[0] not 0", &o[0], 1, NULL, 0},
        {"offsets decrease", &o[1], o[2] + 1, NULL, 0},
        {"offsets end short", &o[nlist], n - 1, NULL, 0},
        {"offsets end long", &o[nlist], n + 1, NULL, 0},
        {"row out of range", NULL, 0, &rows[o[l]], (uint32_t)n},
        {"rows not ascending", NULL, 0, &rows[o[l] + 1], rows[o[l]]},
        {"row in two lists", NULL, 0, &rows[o[other]], rows[o[l]]},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t so = cases[i].o_at ? *cases[i].o_at : 0;
        uint32_t sr = cases[i].r_at ? *cases[i].r_at : 0;
        if (cases[i].o_at) *cases[i].o_at = cases[i].o_val;
        if (cases[i].r_at) *cases[i].r_at = cases[i].r_val;
        why[0] = 0;
        int rc = annb_ivf_check(&b.ivf, n, why, sizeof why);
        if (rc != ANNB_E_CORRUPT) fail_msg("%s: accepted", cases[i].what);
        assert_true(strstr(why, "IVF") != NULL);
        if (cases[i].o_at) *cases[i].o_at = so;
        if (cases[i].r_at) *cases[i].r_at = sr;
    }
    assert_int_equal(annb_ivf_check(&b.ivf, n, why, sizeof why), ANNB_OK);
    /* fewer rows in the bundle than the lists name */
    assert_int_equal(annb_ivf_check(&b.ivf, n - 1, why, sizeof why), ANNB_E_CORRUPT);
    annb_ivf built = b.ivf;
    built.nlist = 0;
    assert_int_equal(annb_ivf_check(&built, n, why, sizeof why), ANNB_E_CORRUPT);
    annb_ivf_release_built(&b);
    free(x);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float x[4 * 2] = {0, 1, 1, 0, 1, 1, 0, 0};
    annb_ivf_built b;
    annb_error err = {0};
    assert_int_equal(annb_ivf_build(&b, x, 4, 2, ANNB_METRIC_L2, 5, NULL, &err), ANNB_E_INVALID);
    assert_int_equal(annb_ivf_build(&b, x, 4, 2, ANNB_METRIC_L2, 0, NULL, &err), ANNB_E_INVALID);
    assert_int_equal(annb_ivf_build(&b, x, 0, 2, ANNB_METRIC_L2, 1, NULL, &err), ANNB_E_INVALID);
    annb_ivf_release_built(NULL);
    /* nlist == n: each row its own list */
    assert_int_equal(annb_ivf_build(&b, x, 4, 2, ANNB_METRIC_L2, 4, NULL, &err), ANNB_OK);
    float s[2];
    int64_t rw[2];
    assert_int_equal(annb_ivf_search(&b.ivf, ANNB_METRIC_L2, x, 1, 2, 0, NULL, s, rw),
                     ANNB_E_INVALID);
    assert_int_equal(annb_ivf_search(&b.ivf, ANNB_METRIC_L2, x, 1, 2, 4, NULL, s, rw), ANNB_OK);
    assert_int_equal(rw[0], 0);
    assert_true(s[0] == 0);
    annb_ivf_release_built(&b);
}

/* Overlapping clusters: recall@10 never falls as nprobe grows (the probed
 * rows only grow), is well below 1 at nprobe 1, and 1 at nlist. */
static void test_recall_rises(void **state)
{
    (void)state;
    const size_t n = 20000, nq = 50, k = 10;
    const uint32_t d = 32, nlist = 64;
    tu_rng r;
    tu_rng_seed(&r, 21);
    float *x = make_data(n, d, 64, 4.0, 0, &r), *q = make_queries(x, n, d, nq, 4.0, 0, &r);
    float *es = malloc(nq * k * sizeof *es), *s = malloc(nq * k * sizeof *s);
    int64_t *er = malloc(nq * k * sizeof *er), *rw = malloc(nq * k * sizeof *rw);
    for (size_t mi = 0; mi < 2; mi++) {
        annb_metric m = metrics[mi];
        annb_ivf_built b;
        build(&b, x, n, d, m, nlist);
        assert_int_equal(annb_exact_search(x, n, d, m, q, nq, k, NULL, es, er), ANNB_OK);
        double last = -1, first = -1;
        static const size_t probes[] = {1, 2, 4, 8, 16, 64};
        for (size_t pi = 0; pi < 6; pi++) {
            assert_int_equal(annb_ivf_search(&b.ivf, m, q, nq, k, probes[pi], NULL, s, rw), ANNB_OK);
            size_t hit = 0;
            for (size_t i = 0; i < nq; i++)
                for (size_t j = 0; j < k; j++)
                    for (size_t t = 0; t < k; t++) hit += rw[i * k + j] == er[i * k + t];
            double recall = (double)hit / (double)(nq * k);
            print_message("%s nprobe %zu: recall@10 %.3f\n", annb_metric_name(m), probes[pi], recall);
            assert_true(recall >= last);
            last = recall;
            if (first < 0) first = recall;
        }
        assert_true(first < 0.9);
        assert_true(last == 1.0);
        annb_ivf_release_built(&b);
    }
    free(es);
    free(s);
    free(er);
    free(rw);
    free(x);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_brute_force),
        cmocka_unit_test(test_list_structure),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_nearest),
        cmocka_unit_test(test_check_refuses_damage),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_recall_rises),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
