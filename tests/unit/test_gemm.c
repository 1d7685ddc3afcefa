/* test_gemm.c - the exact batch path: lib/gemm.c's tile kernels and margin,
 * and exact.c's tile scan, for every kernel level (ANNB_KERNEL forced):
 *  - the packing and the products against a double-precision brute force,
 *    the candidate masks against the test they stand for (NaN, inf);
 *  - the margin: the discard tests and the bounds derived in gemm.c hold
 *    for the one-query kernels' own scores, on log-normal norms and on
 *    nearly orthogonal pairs (heavy cancellation);
 *  - a batch answers bit for bit as the same questions one at a time (ip,
 *    l2, cosine), with exact ties (integer data, duplicate rows), near ties
 *    (rows one ulp apart), 1 to 3 threads (queries or rows split), k above
 *    the row count, row and query counts off the tile sizes, dimensions off
 *    the SIMD widths (1, 3, 17, 64, 100, 257), rows in the order of their
 *    norms, the BLAS path too; and the answers match a double-precision
 *    brute force up to ties;
 *  - filters (allowed rows, skipped rows, per-query exclusions) hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exact.h"
#include "gemm.h"
#include "testutil.h"

#define QT ANNB_GEMM_QT
#define RT ANNB_GEMM_RT
#define U (1.0 / 16777216.0) /* float's unit roundoff, 2^-24 */

static const char *const levels[] = {"scalar", "avx2", NULL /* the best this CPU has */};
#define NLEVELS 3

static const uint32_t dims[] = {1, 3, 17, 64, 100, 257};
#define NDIMS (sizeof dims / sizeof dims[0])

static void set_level(size_t i)
{
    if (levels[i]) setenv("ANNB_KERNEL", levels[i], 1);
    else unsetenv("ANNB_KERNEL");
}

static double normal(tu_rng *r)
{
    double u1 = tu_rng_uniform(r, 1e-12, 1), u2 = tu_rng_uniform(r, 0, 1);
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* n vectors: N(0, 1) directions, norms scaled by exp(sigma N(0, 1)). */
static void fill_lognormal(float *x, size_t n, uint32_t d, double sigma, tu_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        double scale = exp(sigma * normal(r));
        for (uint32_t j = 0; j < d; j++) x[i * d + j] = (float)(normal(r) * scale);
    }
}

/* x made nearly orthogonal to q (in double, then rounded): q.x is tiny
 * against |q||x|, the products cancel as much as they can. */
static void make_orthogonal(float *x, const float *q, uint32_t d)
{
    double qq = 0, qx = 0;
    for (uint32_t j = 0; j < d; j++) {
        qq += (double)q[j] * q[j];
        qx += (double)q[j] * x[j];
    }
    if (qq == 0 || d == 1) return;
    for (uint32_t j = 0; j < d; j++) x[j] = (float)(x[j] - qx / qq * q[j]);
}

static float *alloc_floats(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    assert_non_null(p);
    return p;
}

/* ---- packing, products and masks ---- */

static void test_tile_products_against_double(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 11);
    static const size_t nqs[] = {1, 5, QT}, nrs[] = {1, 13, RT};
    for (size_t lv = 0; lv < NLEVELS; lv++) {
        set_level(lv);
        const annb_gemm_kernels kn = annb_gemm_pick();
        for (size_t di = 0; di < NDIMS; di++) {
            const uint32_t d = dims[di];
            float *q = malloc(QT * d * sizeof *q), *x = malloc(RT * d * sizeof *x);
            float *qt = alloc_floats(QT * d), *p = alloc_floats(RT * d);
            float scores[QT * RT], all[QT * RT], norms[RT], xa[RT], thr[QT];
            uint32_t mask[QT];
            for (size_t a = 0; a < 3; a++)
                for (size_t b = 0; b < 3; b++) {
                    const size_t nq = nqs[a], nr = nrs[b];
                    fill_lognormal(q, nq, d, 1.0, &r);
                    fill_lognormal(x, nr, d, 1.0, &r);
                    if (nr > 3) make_orthogonal(x + 2 * d, q, d);
                    annb_gemm_pack_queries(qt, q, nq, d);
                    kn.pack_rows(p, norms, x, nr, d);
                    for (uint32_t j = 0; j < d; j++) {
                        for (size_t i = 0; i < QT; i++)
                            assert_true(qt[j * QT + i] == (i < nq ? q[i * d + j] : 0.0f));
                        for (size_t k = 0; k < RT; k++)
                            assert_true(p[j * RT + k] == (k < nr ? x[k * d + j] : 0.0f));
                    }
                    for (size_t k = 0; k < RT; k++) {
                        double ref = 0;
                        for (uint32_t j = 0; j < d && k < nr; j++) ref += (double)x[k * d + j] * x[k * d + j];
                        assert_true(fabs(norms[k] - ref) <= 1.01 * d * U * ref);
                    }
                    /* Every pair a candidate: thr -inf (ip), +inf (l2). */
                    for (int l2 = 0; l2 <= 1; l2++) {
                        for (size_t k = 0; k < RT; k++) xa[k] = 0;
                        for (size_t i = 0; i < QT; i++) thr[i] = l2 ? INFINITY : -INFINITY;
                        assert_int_equal(kn.tile(qt, p, d, xa, thr, l2, all, mask), (1 << QT) - 1);
                        for (size_t i = 0; i < QT; i++) assert_int_equal(mask[i], 0xffffffffu);
                    }
                    for (size_t i = 0; i < QT; i++)
                        for (size_t k = 0; k < RT; k++) {
                            double ref = 0, abs_sum = 0;
                            for (uint32_t j = 0; j < d && i < nq && k < nr; j++) {
                                ref += (double)q[i * d + j] * x[k * d + j];
                                abs_sum += fabs((double)q[i * d + j] * x[k * d + j]);
                            }
                            /* Higham's bound for any order: d u sum |q_j x_j| (first order) */
                            assert_true(fabs(all[i * RT + k] - ref) <= 1.01 * d * U * abs_sum + 1e-35);
                        }
                    /* Masks: thresholds at the median product, random row
                     * terms, and NaN / infinities in a few places. */
                    for (int l2 = 0; l2 <= 1; l2++) {
                        for (size_t k = 0; k < RT; k++) xa[k] = (float)tu_rng_uniform(&r, -0.5, 0.5);
                        for (size_t i = 0; i < QT; i++) thr[i] = all[i * RT + tu_rng_below(&r, RT)];
                        xa[3] = l2 ? INFINITY : -INFINITY; /* shut out: never a candidate unless thr is too */
                        xa[5] = NAN;
                        thr[1] = NAN;
                        thr[2] = l2 ? -INFINITY : INFINITY; /* no query: only NaN products pass */
                        uint32_t want[QT], any = 0;
                        int which = 0;
                        for (size_t i = 0; i < QT; i++) {
                            want[i] = 0;
                            for (size_t k = 0; k < RT; k++) {
                                float a = all[i * RT + k];
                                float v = l2 ? xa[k] - 2 * a : a + xa[k];
                                int cand = l2 ? !(v > thr[i]) : !(v < thr[i]);
                                want[i] |= (uint32_t)cand << k;
                            }
                            any |= want[i];
                            which |= (want[i] != 0) << i;
                        }
                        assert_int_equal(kn.tile(qt, p, d, xa, thr, l2, scores, mask), which);
                        for (size_t i = 0; any && i < QT; i++) {
                            assert_int_equal(mask[i], want[i]);
                            for (size_t k = 0; k < RT; k++)
                                if (want[i] >> k & 1) assert_true(memcmp(&scores[i * RT + k], &all[i * RT + k], sizeof(float)) == 0);
                        }
                        assert_true(want[1] == 0xffffffffu); /* NaN threshold */
                        for (size_t i = 0; i < QT; i++) assert_true(want[i] >> 5 & 1); /* NaN row term */
                    }
                }
            free(q);
            free(x);
            free(qt);
            free(p);
        }
    }
    unsetenv("ANNB_KERNEL");
}

/* ---- the margin ---- */

/* The tile scan's tests (exact.c), written out again here: for a row that
 * scores exactly T under the one-query kernel (the case that must never be
 * discarded), the discard test must say no, and the bounds must hold. */
static void check_margin_pair(float a, float s_ip, float s_l2, float qn, float xn, uint32_t d,
                              double *worst_ip, double *worst_l2)
{
    const float c = annb_gemm_margin(d);
    /* ip: discard when fl(a + fl(c xn)) < fl(T - mq), mq = fl(fl(c qn) + 1e-30) */
    float xa = c * xn, mq = c * qn + 1e-30f, thr = s_ip - mq;
    assert_false(a + xa < thr);
    /* l2: discard when fl(fl(1 - c) xn - 2a) > fl(T - mq), mq = fl(fl(1 - c) qn - 1e-30) */
    xa = (1 - c) * xn;
    mq = (1 - c) * qn - 1e-30f;
    thr = s_l2 - mq;
    assert_false(xa - 2 * a > thr);
    /* The scan's bounds: e = 2c (xn + qn) + 1e-30 around a (ip) and around
     * xn + qn - 2a (l2). */
    const float e = 2 * c * (xn + qn) + 1e-30f;
    assert_true(a - e <= s_ip && s_ip <= a + e);
    const float v = (xn + qn) - 2 * a;
    assert_true(v - e <= s_l2 && s_l2 <= v + e);
    /* And the claims of gemm.h: |a - s_ip| <= c S / 5, |L - s_l2| <= 4 c S / 5. */
    const double S = (double)qn + xn;
    if (S > 0) {
        double rip = fabs((double)a - s_ip) / (c * S);
        double rl2 = fabs((double)qn + xn - 2.0 * a - s_l2) / (c * S);
        if (rip > *worst_ip) *worst_ip = rip;
        if (rl2 > *worst_l2) *worst_l2 = rl2;
    }
}

static void test_margin_holds(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 23);
    for (size_t lv = 0; lv < NLEVELS; lv++) {
        set_level(lv);
        const annb_gemm_kernels kn = annb_gemm_pick();
        const annb_score_block_fn ip = annb_exact_score_fn(ANNB_METRIC_IP);
        const annb_score_block_fn l2 = annb_exact_score_fn(ANNB_METRIC_L2);
        double worst_ip = 0, worst_l2 = 0;
        for (size_t di = 0; di < NDIMS; di++) {
            const uint32_t d = dims[di];
            float *q = malloc(QT * d * sizeof *q), *x = malloc(RT * d * sizeof *x);
            float *qt = alloc_floats(QT * d), *p = alloc_floats(RT * d);
            float all[QT * RT], xn[RT], xa[RT] = {0}, thr[QT];
            uint32_t mask[QT];
            for (int round = 0; round < 20; round++) {
                /* wide norms (sigma 2), half the rows nearly orthogonal to
                 * a query, a few near copies of a query (l2 near 0) */
                fill_lognormal(q, QT, d, 2.0, &r);
                fill_lognormal(x, RT, d, 2.0, &r);
                for (size_t k = 0; k < RT; k += 2) make_orthogonal(x + k * d, q + (k % QT) * d, d);
                for (size_t k = 1; k < 8; k += 2)
                    for (uint32_t j = 0; j < d; j++)
                        x[k * d + j] = q[(k % QT) * d + j] * (float)(1 + 1e-6 * normal(&r));
                annb_gemm_pack_queries(qt, q, QT, d);
                kn.pack_rows(p, xn, x, RT, d);
                for (size_t i = 0; i < QT; i++) thr[i] = -INFINITY;
                assert_int_equal(kn.tile(qt, p, d, xa, thr, 0, all, mask), (1 << QT) - 1);
                for (size_t i = 0; i < QT; i++) {
                    const float qn = annb_dot_scalar(q + i * d, q + i * d, d);
                    for (size_t k = 0; k < RT; k++) {
                        float s_ip, s_l2;
                        ip(x + k * d, q + i * d, d, 1, &s_ip);
                        l2(x + k * d, q + i * d, d, 1, &s_l2);
                        check_margin_pair(all[i * RT + k], s_ip, s_l2, qn, xn[k], d, &worst_ip,
                                          &worst_l2);
                    }
                }
            }
            free(q);
            free(x);
            free(qt);
            free(p);
        }
        print_message("level %s: largest |a - s| / (c S): ip %.4f (claim <= 0.2), l2 %.4f (<= 0.8)\n",
                      levels[lv] ? levels[lv] : "best", worst_ip, worst_l2);
        assert_true(worst_ip <= 0.2);
        assert_true(worst_l2 <= 0.8);
    }
    unsetenv("ANNB_KERNEL");
}

/* ---- batches against single questions and a brute force ---- */

typedef enum { DATA_LOGNORMAL, DATA_INTEGERS } data_kind;

/* n rows: log-normal norms (sigma 1) or small integers (exact ties
 * everywhere); then some rows copied (exact ties) and some copied with one
 * value one ulp away (near ties). Cosine: every row normalised. */
static void make_rows(float *x, uint64_t n, uint32_t d, data_kind kind, annb_metric m, tu_rng *r)
{
    if (kind == DATA_INTEGERS)
        for (uint64_t i = 0; i < n * d; i++) x[i] = (float)((int)tu_rng_below(r, 7) - 3);
    else
        fill_lognormal(x, n, d, 1.0, r);
    for (uint64_t i = 0; i + 1 < n; i += 7) {
        uint64_t from = tu_rng_below(r, n);
        memcpy(x + i * d, x + from * d, d * sizeof *x);
        if (i % 2) {
            uint32_t j = (uint32_t)tu_rng_below(r, d);
            x[i * d + j] = nextafterf(x[i * d + j], INFINITY);
        }
    }
    if (m == ANNB_METRIC_COSINE)
        for (uint64_t i = 0; i < n; i++) {
            double ss = 0;
            for (uint32_t j = 0; j < d; j++) ss += (double)x[i * d + j] * x[i * d + j];
            double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
            for (uint32_t j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] * inv);
        }
}

static double ref_score(const float *x, const float *q, uint32_t d, annb_metric m)
{
    double s = 0;
    for (uint32_t j = 0; j < d; j++)
        s += m == ANNB_METRIC_L2 ? ((double)x[j] - q[j]) * ((double)x[j] - q[j]) : (double)x[j] * q[j];
    return s;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* One query's answer against the brute force over the rows `ok` lets
 * through (NULL: all): the j-th score is the j-th best, up to rounding. */
static void check_brute(const float *x, uint64_t n, uint32_t d, annb_metric m, const float *q,
                        const uint8_t *ok, size_t k, const float *scores, const int64_t *rows)
{
    double *ref = malloc(n * sizeof *ref);
    size_t cnt = 0;
    const double sign = m == ANNB_METRIC_L2 ? -1 : 1;
    for (uint64_t i = 0; i < n; i++)
        if (!ok || ok[i]) ref[cnt++] = sign * ref_score(x + i * d, q, d, m);
    qsort(ref, cnt, sizeof *ref, cmp_desc);
    for (size_t j = 0; j < k; j++) {
        if (j >= cnt) {
            assert_int_equal(rows[j], -1);
            continue;
        }
        assert_true(rows[j] >= 0 && (uint64_t)rows[j] < n);
        if (ok) assert_true(ok[rows[j]]);
        for (size_t i = 0; i < j; i++) assert_true(rows[i] != rows[j]);
        const double own = ref_score(x + rows[j] * d, q, d, m);
        assert_true(tu_close(scores[j], own, TU_SCORE_EPS));
        assert_true(tu_close(sign * own, ref[j], TU_SCORE_EPS));
    }
    free(ref);
}

/* The batch (threads 1..3) against one question at a time, bit for bit,
 * and the single answers against the brute force. */
static void check_batch(const float *x, uint64_t n, uint32_t d, annb_metric m, const float *q,
                        size_t nq, size_t k, const annb_row_filter *f, const uint8_t *ok)
{
    float *s1 = malloc(nq * k * sizeof *s1), *sb = malloc(nq * k * sizeof *sb);
    int64_t *r1 = malloc(nq * k * sizeof *r1), *rb = malloc(nq * k * sizeof *rb);
    assert_true(s1 && sb && r1 && rb);
    for (size_t i = 0; i < nq; i++) {
        /* One question: a filter's per-query part is that of query i. */
        annb_row_filter fi;
        if (f) {
            fi = *f;
            if (f->extra) {
                fi.extra = f->extra + i;
                fi.extra_count = f->extra_count + i;
            }
        }
        assert_int_equal(annb_exact_search(x, n, d, m, q + i * d, 1, k, f ? &fi : NULL, s1 + i * k, r1 + i * k),
                         ANNB_OK);
        if (!f || !f->extra) check_brute(x, n, d, m, q + i * d, ok, k, s1 + i * k, r1 + i * k);
    }
    for (int threads = 1; threads <= 3; threads++) {
        memset(sb, 0, nq * k * sizeof *sb);
        assert_int_equal(annb_exact_search_threads(x, n, d, m, q, nq, k, f, threads, sb, rb), ANNB_OK);
        for (size_t i = 0; i < nq * k; i++) {
            if (rb[i] != r1[i] || memcmp(&sb[i], &s1[i], sizeof(float)) != 0)
                fail_msg("batch != single: d %u n %llu nq %zu k %zu threads %d metric %d query %zu "
                         "slot %zu: row %lld score %.9g vs row %lld score %.9g (kernel %s, path %s)",
                         d, (unsigned long long)n, nq, k, threads, (int)m, i / k, i % k,
                         (long long)rb[i], sb[i], (long long)r1[i], s1[i], annb_exact_kernel(),
                         getenv("ANNB_EXACT_BATCH") ? getenv("ANNB_EXACT_BATCH") : "default");
        }
    }
    free(s1);
    free(sb);
    free(r1);
    free(rb);
}

static void run_batches(const char *path, const size_t *levels_to_run, size_t nlev)
{
    static const annb_metric metrics[] = {ANNB_METRIC_IP, ANNB_METRIC_L2, ANNB_METRIC_COSINE};
    tu_rng r;
    tu_rng_seed(&r, 5);
    if (path) setenv("ANNB_EXACT_BATCH", path, 1);
    for (size_t li = 0; li < nlev; li++) {
        set_level(levels_to_run[li]);
        for (size_t di = 0; di < NDIMS; di++)
            for (size_t mi = 0; mi < 3; mi++)
                for (int kind = 0; kind <= 1; kind++) {
                    const uint32_t d = dims[di];
                    const annb_metric m = metrics[mi];
                    /* n off the panel size; 53 queries: 4 whole tiles and a
                     * part, query-split on 2 threads, row-split on 3 */
                    const uint64_t n = 517;
                    const size_t nq = 53;
                    float *x = malloc(n * d * sizeof *x), *q = malloc(nq * d * sizeof *q);
                    make_rows(x, n, d, kind ? DATA_INTEGERS : DATA_LOGNORMAL, m, &r);
                    /* Queries: some are rows (l2 distance 0, ip ties with
                     * the copies), the others drawn like the rows. */
                    make_rows(q, nq, d, kind ? DATA_INTEGERS : DATA_LOGNORMAL, m, &r);
                    for (size_t i = 0; i < nq; i += 5)
                        memcpy(q + i * d, x + tu_rng_below(&r, n) * d, d * sizeof *q);
                    static const size_t ks[] = {1, 10, 100};
                    for (size_t ki = 0; ki < 3; ki++) check_batch(x, n, d, m, q, nq, ks[ki], NULL, NULL);
                    free(x);
                    free(q);
                }
    }
    unsetenv("ANNB_KERNEL");
    unsetenv("ANNB_EXACT_BATCH");
}

static void test_batch_equals_single(void **state)
{
    (void)state;
    static const size_t all[] = {0, 1, 2};
    run_batches(NULL, all, 3);
}

/* The BLAS path (ANNB_EXACT_BATCH=blas) keeps the same property. */
static void test_blas_batch_equals_single(void **state)
{
    (void)state;
    static const size_t best[] = {2};
    run_batches("blas", best, 1);
}

/* Tiny and ragged shapes: k above the row count, rows fewer than a panel
 * or one past it, queries fewer than a tile or one past it. */
static void test_shapes(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 8);
    static const uint64_t ns[] = {1, 5, 31, 32, 33, 65};
    static const size_t nqs[] = {2, 3, 12, 13, 25, 49};
    for (size_t lv = 0; lv < NLEVELS; lv++) {
        set_level(lv);
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof nqs / sizeof nqs[0]; b++)
                for (size_t di = 0; di < NDIMS; di += 2) {
                    const uint32_t d = dims[di];
                    const uint64_t n = ns[a];
                    const size_t nq = nqs[b];
                    float *x = malloc(n * d * sizeof *x), *q = malloc(nq * d * sizeof *q);
                    fill_lognormal(x, n, d, 1.0, &r);
                    fill_lognormal(q, nq, d, 1.0, &r);
                    check_batch(x, n, d, ANNB_METRIC_IP, q, nq, n + 7, NULL, NULL);
                    check_batch(x, n, d, ANNB_METRIC_L2, q, nq, n > 3 ? n - 2 : 1, NULL, NULL);
                    free(x);
                    free(q);
                }
    }
    unsetenv("ANNB_KERNEL");
}

/* Rows in the order of their norms (ascending: with ip, nearly every row
 * beats the k-th best so far), over many blocks of the scan, which visits
 * them in its own order: still the single answers. */
static int cmp_norm(const void *a, const void *b)
{
    const float *x = a, *y = b;
    double nx = 0, ny = 0;
    for (uint32_t j = 0; j < 17; j++) {
        nx += (double)x[j] * x[j];
        ny += (double)y[j] * y[j];
    }
    return (nx > ny) - (nx < ny);
}

static void test_rows_in_score_order(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 77);
    const uint32_t d = 17;
    const uint64_t n = 9000; /* 18 blocks of 512 rows (d = 17) */
    const size_t nq = 30;
    float *x = malloc(n * d * sizeof *x), *q = malloc(nq * d * sizeof *q);
    fill_lognormal(x, n, d, 1.0, &r);
    fill_lognormal(q, nq, d, 0.0, &r);
    qsort(x, n, d * sizeof *x, cmp_norm);
    for (size_t lv = 0; lv < NLEVELS; lv++) {
        set_level(lv);
        check_batch(x, n, d, ANNB_METRIC_IP, q, nq, 50, NULL, NULL);
        check_batch(x, n, d, ANNB_METRIC_L2, q, nq, 5, NULL, NULL);
    }
    unsetenv("ANNB_KERNEL");
    free(x);
    free(q);
}

/* A large k: each thread takes its queries in chunks (the bounds of a
 * chunk are bounded in bytes, exact.c's ANNB_TILES_CHUNK_BYTES: at
 * k = 20000 about 88 queries a chunk), every chunk against all rows. */
static void test_query_chunks(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 91);
    const uint32_t d = 3;
    const uint64_t n = 40;
    const size_t nq = 200, k = 20000;
    float *x = malloc(n * d * sizeof *x), *q = malloc(nq * d * sizeof *q);
    fill_lognormal(x, n, d, 1.0, &r);
    fill_lognormal(q, nq, d, 1.0, &r);
    check_batch(x, n, d, ANNB_METRIC_IP, q, nq, k, NULL, NULL);
    free(x);
    free(q);
}

/* Filters: an allowed bitmap (about a tenth of the rows), a skip list, and
 * per-query exclusions; k above what passes, too. */
static void test_filters(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 31);
    const uint64_t n = 700;
    const size_t nq = 30;
    for (size_t lv = 0; lv < NLEVELS; lv++) {
        set_level(lv);
        for (size_t di = 0; di < NDIMS; di += 3) {
            const uint32_t d = dims[di];
            float *x = malloc(n * d * sizeof *x), *q = malloc(nq * d * sizeof *q);
            uint8_t *allowed = calloc((n + 7) / 8, 1), *ok = malloc(n);
            int64_t skip[40];
            size_t nskip = 0;
            fill_lognormal(x, n, d, 1.0, &r);
            fill_lognormal(q, nq, d, 1.0, &r);
            for (uint64_t i = 0; i < n; i++)
                if (tu_rng_below(&r, 10) == 0) allowed[i / 8] |= (uint8_t)(1u << (i % 8));
            for (uint64_t i = 3; i < n && nskip < 40; i += 1 + tu_rng_below(&r, 30)) skip[nskip++] = (int64_t)i;
            /* allowed rows, minus the skipped ones */
            for (uint64_t i = 0; i < n; i++) {
                ok[i] = allowed[i / 8] >> (i % 8) & 1;
                for (size_t s = 0; s < nskip; s++) ok[i] &= skip[s] != (int64_t)i;
            }
            annb_row_filter f = {allowed, skip, nskip, NULL, NULL};
            check_batch(x, n, d, ANNB_METRIC_IP, q, nq, 10, &f, ok);
            check_batch(x, n, d, ANNB_METRIC_L2, q, nq, 100, &f, ok); /* more than pass */
            /* Per query: each query's own best rows excluded (so the
             * exclusions bite), by a sorted list of rows. */
            uint32_t *ex[30];
            size_t exn[30];
            for (size_t i = 0; i < nq; i++) {
                float s[10];
                int64_t rows[10];
                assert_int_equal(annb_exact_search(x, n, d, ANNB_METRIC_IP, q + i * d, 1, 10, NULL, s, rows), ANNB_OK);
                ex[i] = malloc(10 * sizeof **ex);
                exn[i] = 0;
                for (size_t j = 0; j < 10; j += 2) ex[i][exn[i]++] = (uint32_t)rows[j];
                for (size_t a = 1; a < exn[i]; a++) /* sort */
                    for (size_t b = a; b > 0 && ex[i][b] < ex[i][b - 1]; b--) {
                        uint32_t t = ex[i][b];
                        ex[i][b] = ex[i][b - 1];
                        ex[i][b - 1] = t;
                    }
            }
            annb_row_filter fe = {NULL, NULL, 0, (const uint32_t *const *)ex, exn};
            check_batch(x, n, d, ANNB_METRIC_IP, q, nq, 10, &fe, NULL);
            float sb[30 * 10];
            int64_t rb[30 * 10];
            assert_int_equal(annb_exact_search_threads(x, n, d, ANNB_METRIC_IP, q, nq, 10, &fe, 2, sb, rb), ANNB_OK);
            for (size_t i = 0; i < nq; i++)
                for (size_t j = 0; j < 10; j++)
                    for (size_t e = 0; e < exn[i]; e++) assert_true(rb[i * 10 + j] != (int64_t)ex[i][e]);
            for (size_t i = 0; i < nq; i++) free(ex[i]);
            free(x);
            free(q);
            free(allowed);
            free(ok);
        }
    }
    unsetenv("ANNB_KERNEL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tile_products_against_double),
        cmocka_unit_test(test_margin_holds),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_blas_batch_equals_single),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_rows_in_score_order),
        cmocka_unit_test(test_query_chunks),
        cmocka_unit_test(test_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
