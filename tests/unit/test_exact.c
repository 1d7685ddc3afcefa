/* test_exact.c - the in-place exact scan (lib/exact.c) against a brute force
 * in double precision, for every kernel this CPU can run, dimensions that hit
 * each code path (tails, the 4-row AVX-512 loop, d > 128), one query (scan)
 * and many (BLAS), and filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exact.h"
#include "testutil.h"

static double ref_score(const float *x, const float *q, uint32_t d, int l2)
{
    double s = 0;
    for (uint32_t j = 0; j < d; j++) s += l2 ? ((double)x[j] - q[j]) * ((double)x[j] - q[j])
                                             : (double)x[j] * q[j];
    return s;
}

/* Checks one query's answer: each returned row passes the filter, scores
 * match the reference, and the k-th best reference score is reached (so no
 * better row was missed; ties may pick either row). */
static void check_query(const float *x, uint64_t n, uint32_t d, int l2, const float *q,
                        const uint8_t *allowed, size_t k, const float *scores, const int64_t *rows)
{
    double *ref = malloc(n * sizeof *ref);
    size_t m = 0;
    for (uint64_t r = 0; r < n; r++)
        if (!allowed || (allowed[r / 8] >> (r % 8) & 1)) ref[m++] = ref_score(x + r * d, q, d, l2);
    /* sort best first */
    for (size_t i = 1; i < m; i++)
        for (size_t j = i; j > 0 && (l2 ? ref[j] < ref[j - 1] : ref[j] > ref[j - 1]); j--) {
            double t = ref[j];
            ref[j] = ref[j - 1];
            ref[j - 1] = t;
        }
    for (size_t j = 0; j < k; j++) {
        if (j >= m) {
            assert_int_equal(rows[j], -1);
            continue;
        }
        assert_true(rows[j] >= 0 && (uint64_t)rows[j] < n);
        if (allowed) assert_true(allowed[rows[j] / 8] >> (rows[j] % 8) & 1);
        double own = ref_score(x + rows[j] * d, q, d, l2);
        assert_true(tu_close(scores[j], own, TU_SCORE_EPS));
        assert_true(tu_close(own, ref[j], TU_SCORE_EPS)); /* the j-th best, up to ties */
    }
    free(ref);
}

static void run_case(uint32_t d, uint64_t n, size_t nq, int l2, int filtered, tu_rng *r)
{
    size_t k = 7;
    float *x = malloc(n * d * sizeof *x), *q = malloc(nq * d * sizeof *q);
    float *scores = malloc(nq * k * sizeof *scores);
    int64_t *rows = malloc(nq * k * sizeof *rows);
    uint8_t *allowed = calloc((n + 7) / 8, 1);
    for (uint64_t i = 0; i < n * d; i++) x[i] = (float)tu_rng_uniform(r, -1, 1);
    for (size_t i = 0; i < nq * d; i++) q[i] = (float)tu_rng_uniform(r, -1, 1);
    for (uint64_t i = 0; i < n; i++)
        if (tu_rng_below(r, 10) == 0) allowed[i / 8] |= (uint8_t)(1u << (i % 8)); /* ~10% pass */
    annb_row_filter f = {allowed, NULL, 0, NULL, NULL};
    assert_int_equal(annb_exact_search(x, n, d, l2 ? ANNB_METRIC_L2 : ANNB_METRIC_IP, q, nq, k,
                                       filtered ? &f : NULL, scores, rows),
                     ANNB_OK);
    for (size_t i = 0; i < nq; i++)
        check_query(x, n, d, l2, q + i * d, filtered ? allowed : NULL, k, scores + i * k,
                    rows + i * k);
    free(x);
    free(q);
    free(scores);
    free(rows);
    free(allowed);
}

static void test_every_kernel_and_shape(void **state)
{
    (void)state;
    static const char *const kernels[] = {"scalar", "avx2", NULL /* the best this CPU has */};
    static const uint32_t dims[] = {1, 7, 16, 64, 100, 128, 130};
    tu_rng r;
    tu_rng_seed(&r, 42);
    for (size_t kk = 0; kk < 3; kk++) {
        if (kernels[kk]) setenv("ANNB_KERNEL", kernels[kk], 1);
        else unsetenv("ANNB_KERNEL");
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
            for (int l2 = 0; l2 <= 1; l2++)
                for (int filtered = 0; filtered <= 1; filtered++) {
                    run_case(dims[di], 1003, 1, l2, filtered, &r);  /* scan */
                    run_case(dims[di], 1003, 9, l2, filtered, &r);  /* BLAS */
                }
    }
    unsetenv("ANNB_KERNEL");
}

static void test_k_larger_than_rows(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 7);
    run_case(16, 5, 1, 0, 0, &r); /* 5 rows, k = 7: two empty slots */
    run_case(16, 5, 9, 1, 0, &r);
}

/* A NaN row (damaged vectors are used unverified, SPEC 3.11) ranks after
 * every row with a number, for every kernel, scan and BLAS: it must not
 * push the right answers out of the top k. */
static void test_nan_rows_rank_last(void **state)
{
    (void)state;
    static const char *const kernels[] = {"scalar", "avx2", NULL};
    enum { n = 64, d = 8, k = 5 };
    float x[n * d], q[9 * d], scores[9 * k];
    int64_t rows[9 * k];
    for (size_t i = 0; i < n * d; i++) x[i] = (float)((i * 7919) % 97) / 97.0f - 0.5f;
    for (size_t i = 0; i < 9 * d; i++) q[i] = (float)((i * 104729) % 89) / 89.0f - 0.5f;
    for (uint32_t j = 0; j < d; j++) x[3 * d + j] = NAN; /* row 3, and one value of row 40 */
    x[40 * d + 2] = NAN;
    for (size_t kk = 0; kk < 3; kk++) {
        if (kernels[kk]) setenv("ANNB_KERNEL", kernels[kk], 1);
        else unsetenv("ANNB_KERNEL");
        for (int m = 0; m < 2; m++) {
            annb_metric metric = m ? ANNB_METRIC_L2 : ANNB_METRIC_IP;
            for (size_t nq = 1; nq <= 9; nq += 8) { /* one query: scan; nine: BLAS */
                assert_int_equal(annb_exact_search(x, n, d, metric, q, nq, k, NULL, scores, rows),
                                 ANNB_OK);
                for (size_t i = 0; i < nq; i++) {
                    /* The expected top k: a brute force over the finite rows. */
                    double best[k];
                    size_t got = 0;
                    for (size_t r = 0; r < n; r++) {
                        if (r == 3 || r == 40) continue;
                        double s = 0;
                        for (uint32_t j = 0; j < d; j++) {
                            double a = x[r * d + j], b = q[i * d + j];
                            s += m ? (a - b) * (a - b) : a * b;
                        }
                        size_t at = got < k ? got++ : k;
                        if (at == k && !(m ? s < best[k - 1] : s > best[k - 1])) continue;
                        if (at == k) at = k - 1;
                        while (at > 0 && (m ? s < best[at - 1] : s > best[at - 1])) {
                            best[at] = best[at - 1];
                            at--;
                        }
                        best[at] = s;
                    }
                    for (size_t j = 0; j < k; j++) {
                        assert_true(rows[i * k + j] != 3 && rows[i * k + j] != 40);
                        assert_true(tu_close(scores[i * k + j], best[j], TU_SCORE_EPS));
                    }
                }
            }
        }
    }
    unsetenv("ANNB_KERNEL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kernel_and_shape),
        cmocka_unit_test(test_k_larger_than_rows),
        cmocka_unit_test(test_nan_rows_rank_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
