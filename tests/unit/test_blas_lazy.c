/* test_blas_lazy.c - the BLAS/LAPACK forwarders of lib/blas_lazy.c.
 *
 * OpenBLAS is not loaded before the first call, and the first call may come
 * from many threads at once. Every forwarder is called once on a problem
 * whose answer is checked independently (a naive product, or an identity
 * such as A * inv(A) = I), so an argument passed in the wrong place fails.
 *
 * Built a second time with -DANNB_TEST_BLAS_MISSING against a library name
 * that does not exist: the first call prints one line naming the library and
 * aborts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blas_lazy.h"

/* Deterministic values in [-1, 1). */
static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* Element (i, j) of op(A), A stored with leading dimension ld, column-major
 * (row-major is column-major with i and j swapped by the caller). */
static double at(const float *a, int ld, int trans, int i, int j)
{
    return trans ? a[(size_t)i * ld + j] : a[(size_t)j * ld + i];
}

/* C = alpha op(A) op(B) + beta C, column-major, in double. */
static void naive_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int l = 0; l < k; l++) s += at(a, lda, ta, i, l) * at(b, ldb, tb, l, j);
            c[(size_t)j * ldc + i] = (float)(alpha * s + beta * c[(size_t)j * ldc + i]);
        }
}

/* Leading dimensions larger than every dimension and all different: strides
 * are honoured and cannot be swapped unnoticed. */
enum { M = 3, N = 5, K = 4, LDA = 7, LDB = 8, LDC = 9, SZ = 9 * 9 };

/* One sgemm_ (or cblas_sgemm, column-major) with transposes (ta, tb) against
 * the naive product; seed varies the data. Returns the largest difference,
 * padding included (it must stay untouched). No cmocka assertion inside: it
 * runs on other threads. */
static double sgemm_error(int use_cblas, int ta, int tb, unsigned seed)
{
    float a[SZ], b[SZ], c[SZ], ref[SZ];
    float alpha = 1.5f, beta = -0.5f;
    fill(a, SZ, seed);
    fill(b, SZ, seed + 1);
    fill(c, SZ, seed + 2);
    memcpy(ref, c, sizeof c);
    naive_sgemm(ta, tb, M, N, K, alpha, a, LDA, b, LDB, beta, ref, LDC);
    if (use_cblas) {
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, a, LDA, b, LDB, beta, c, LDC);
    } else {
        annb_fint m = M, n = N, k = K, lda = LDA, ldb = LDB, ldc = LDC;
        sgemm_(ta ? "T" : "N", tb ? "T" : "N", &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c,
               &ldc);
    }
    double worst = 0;
    for (int i = 0; i < SZ; i++) worst = fmax(worst, fabs((double)c[i] - ref[i]));
    return worst;
}

#ifndef ANNB_TEST_BLAS_MISSING

static int blas_loaded(void)
{
    void *h = dlopen(ANNB_BLAS_SONAME, RTLD_LAZY | RTLD_NOLOAD);
    if (h) dlclose(h);
    return h != NULL;
}

static void test_not_loaded_before_first_call(void **state)
{
    (void)state;
    assert_false(blas_loaded());
}

#define THREADS 8
static pthread_barrier_t start_line;

static double thread_error[THREADS];

static void *first_call(void *arg)
{
    size_t t = (size_t)arg;
    pthread_barrier_wait(&start_line);
    thread_error[t] = sgemm_error(t % 2, t / 2 % 2, t / 4 % 2, 100 + (unsigned)t);
    return NULL;
}

static void test_first_call_from_many_threads(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    assert_int_equal(pthread_barrier_init(&start_line, NULL, THREADS), 0);
    for (size_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, first_call, (void *)t), 0);
    for (size_t t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start_line);
    for (size_t t = 0; t < THREADS; t++) assert_true(thread_error[t] < 1e-5);
    assert_true(blas_loaded());
}

static void test_sgemm_transposes(void **state)
{
    (void)state;
    for (int t = 0; t < 4; t++) assert_true(sgemm_error(0, t & 1, t >> 1, (unsigned)t) < 1e-5);
}

static void test_cblas_sgemm_transposes_and_orders(void **state)
{
    (void)state;
    for (int t = 0; t < 4; t++) assert_true(sgemm_error(1, t & 1, t >> 1, 10u + (unsigned)t) < 1e-5);
    /* Row-major C = A B^T, as exact.c calls it: s (m x n) = q (m x k) x^T. */
    float q[M * K], x[N * K], s[M * N];
    fill(q, M * K, 20);
    fill(x, N * K, 21);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, q, K, x, K, 0.0f, s, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double d = 0;
            for (int l = 0; l < K; l++) d += (double)q[i * K + l] * x[j * K + l];
            assert_true(fabs(d - s[i * N + j]) < 1e-5);
        }
}

static void test_dgemm(void **state)
{
    (void)state;
    double a[SZ], b[SZ], c[SZ], alpha = 2, beta = 0.25;
    float fa[SZ], fb[SZ], fc[SZ];
    fill(fa, SZ, 30);
    fill(fb, SZ, 31);
    fill(fc, SZ, 32);
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        for (int i = 0; i < SZ; i++) a[i] = fa[i], b[i] = fb[i], c[i] = fc[i];
        annb_fint m = M, n = N, k = K, lda = LDA, ldb = LDB, ldc = LDC;
        dgemm_(ta ? "T" : "N", tb ? "T" : "N", &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c,
               &ldc);
        for (int j = 0; j < N; j++)
            for (int i = 0; i < M; i++) {
                double s = 0;
                for (int l = 0; l < K; l++) s += at(fa, LDA, ta, i, l) * at(fb, LDB, tb, l, j);
                assert_true(fabs(alpha * s + beta * fc[j * LDC + i] - c[j * LDC + i]) < 1e-12);
            }
    }
}

static void test_ssyrk(void **state)
{
    (void)state;
    for (int trans = 0; trans < 2; trans++) {
        float a[SZ], c[SZ], ref[SZ], alpha = 0.5f, beta = 2;
        fill(a, SZ, 40);
        fill(c, SZ, 41);
        memcpy(ref, c, sizeof c);
        /* C = alpha op(A) op(A)^T + beta C, upper triangle only. */
        naive_sgemm(trans, !trans, N, N, K, alpha, a, LDA, a, LDA, beta, ref, LDC);
        annb_fint n = N, k = K, lda = LDA, ldc = LDC;
        ssyrk_("U", trans ? "T" : "N", &n, &k, &alpha, a, &lda, &beta, c, &ldc);
        for (int j = 0; j < N; j++)
            for (int i = 0; i <= j; i++)
                assert_true(fabs(c[j * LDC + i] - ref[j * LDC + i]) < 1e-5);
    }
}

/* A symmetric 3x3 matrix: A v = w v for each eigenpair, w ascending. */
static void test_dsyev(void **state)
{
    (void)state;
    const double a0[9] = {4, 1, -2, 1, 3, 0.5, -2, 0.5, 5};
    double a[9], w[3], work[64];
    memcpy(a, a0, sizeof a);
    annb_fint n = 3, lwork = 64, info = -1;
    dsyev_("V", "U", &n, a, &n, w, work, &lwork, &info);
    assert_int_equal(info, 0);
    assert_true(w[0] <= w[1] && w[1] <= w[2]);
    assert_true(fabs(w[0] + w[1] + w[2] - 12) < 1e-12); /* the trace */
    for (int e = 0; e < 3; e++)
        for (int i = 0; i < 3; i++) {
            double av = 0;
            for (int l = 0; l < 3; l++) av += a0[l * 3 + i] * a[e * 3 + l];
            assert_true(fabs(av - w[e] * a[e * 3 + i]) < 1e-12);
        }
}

/* U diag(S) VT rebuilds the 4x3 matrix, single and double precision. */
static void test_gesvd(void **state)
{
    (void)state;
    enum { R = 4, C = 3 };
    float a0[R * C], a[R * C], s[C], u[R * R], vt[C * C], work[256];
    double da[R * C], ds[C], du[R * R], dvt[C * C], dwork[256];
    fill(a0, R * C, 50);
    memcpy(a, a0, sizeof a);
    for (int i = 0; i < R * C; i++) da[i] = a0[i];
    annb_fint r = R, c = C, lwork = 256, info = -1;
    sgesvd_("A", "A", &r, &c, a, &r, s, u, &r, vt, &c, work, &lwork, &info);
    assert_int_equal(info, 0);
    info = -1;
    dgesvd_("A", "A", &r, &c, da, &r, ds, du, &r, dvt, &c, dwork, &lwork, &info);
    assert_int_equal(info, 0);
    for (int j = 0; j < C; j++)
        for (int i = 0; i < R; i++) {
            double x = 0, dx = 0;
            for (int l = 0; l < C; l++) {
                x += (double)u[l * R + i] * s[l] * vt[j * C + l];
                dx += du[l * R + i] * ds[l] * dvt[j * C + l];
            }
            assert_true(fabs(x - a0[j * R + i]) < 1e-5);
            assert_true(fabs(dx - a0[j * R + i]) < 1e-12);
        }
}

/* sgeqrf_ then sorgqr_: Q has orthonormal columns and Q R = A. */
static void test_qr(void **state)
{
    (void)state;
    enum { R = 5, C = 3 };
    float a0[R * C], a[R * C], rr[C * C] = {0}, tau[C], work[256];
    fill(a0, R * C, 60);
    memcpy(a, a0, sizeof a);
    annb_fint r = R, c = C, lwork = 256, info = -1;
    sgeqrf_(&r, &c, a, &r, tau, work, &lwork, &info);
    assert_int_equal(info, 0);
    for (int j = 0; j < C; j++)
        for (int i = 0; i <= j; i++) rr[j * C + i] = a[j * R + i];
    info = -1;
    sorgqr_(&r, &c, &c, a, &r, tau, work, &lwork, &info);
    assert_int_equal(info, 0);
    for (int j = 0; j < C; j++)
        for (int i = 0; i < R; i++) {
            double x = 0;
            for (int l = 0; l < C; l++) x += (double)a[l * R + i] * rr[j * C + l];
            assert_true(fabs(x - a0[j * R + i]) < 1e-5);
        }
    for (int p = 0; p < C; p++)
        for (int q = 0; q < C; q++) {
            double x = 0;
            for (int i = 0; i < R; i++) x += (double)a[p * R + i] * a[q * R + i];
            assert_true(fabs(x - (p == q)) < 1e-5);
        }
}

/* A square, well-conditioned system: the least-squares answer is exact.
 * Padded leading dimensions (4 and 5 for n = 3), as everywhere below. */
static void test_sgelsd(void **state)
{
    (void)state;
    const float a0[9] = {4, 1, 0, 1, 3, 1, 0, 1, 2}, x0[3] = {1, -2, 0.5f};
    float a[12] = {0}, b[5] = {0}, s[3], rcond = -1, work[1024];
    annb_fint iwork[256], n = 3, lda = 4, ldb = 5, one = 1, rank = 0, lwork = 1024, info = -1;
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) a[j * 4 + i] = a0[j * 3 + i];
    for (int i = 0; i < 3; i++) b[i] = a0[i] * x0[0] + a0[3 + i] * x0[1] + a0[6 + i] * x0[2];
    sgelsd_(&n, &n, &one, a, &lda, b, &ldb, s, &rcond, &rank, work, &lwork, iwork, &info);
    assert_int_equal(info, 0);
    assert_int_equal(rank, 3);
    for (int i = 0; i < 3; i++) assert_true(fabs((double)b[i] - x0[i]) < 1e-5);
}

/* getrf then getri invert A: A inv(A) = I, single and double precision. */
static void test_lu_inverse(void **state)
{
    (void)state;
    const float a0[9] = {2, 1, 1, 1, 3, 2, 1, 0, 4};
    float a[12] = {0}, work[9];
    double da[12] = {0}, dwork[9];
    annb_fint ipiv[3], n = 3, lda = 4, lwork = 9, info = -1;
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) a[j * 4 + i] = da[j * 4 + i] = a0[j * 3 + i];
    sgetrf_(&n, &n, a, &lda, ipiv, &info);
    assert_int_equal(info, 0);
    info = -1;
    sgetri_(&n, a, &lda, ipiv, work, &lwork, &info);
    assert_int_equal(info, 0);
    info = -1;
    dgetrf_(&n, &n, da, &lda, ipiv, &info);
    assert_int_equal(info, 0);
    info = -1;
    dgetri_(&n, da, &lda, ipiv, dwork, &lwork, &info);
    assert_int_equal(info, 0);
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            double x = 0, dx = 0;
            for (int l = 0; l < 3; l++) {
                x += (double)a0[l * 3 + i] * a[j * 4 + l];
                dx += (double)a0[l * 3 + i] * da[j * 4 + l];
            }
            assert_true(fabs(x - (i == j)) < 1e-5);
            assert_true(fabs(dx - (i == j)) < 1e-12);
        }
}

#else

/* In a child: the first BLAS call must print one line naming the library and
 * die of SIGABRT. */
static void test_missing_library_aborts(void **state)
{
    (void)state;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        dup2(fd[1], 2);
        close(fd[0]);
        sgemm_error(0, 0, 0, 1);
        _exit(0); /* not reached if the forwarder aborts */
    }
    close(fd[1]);
    char msg[1024];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof msg - 1 && (got = read(fd[0], msg + len, sizeof msg - 1 - len)) > 0)
        len += (size_t)got;
    msg[len] = 0;
    close(fd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(msg, "annb: cannot load " ANNB_BLAS_SONAME));
    assert_non_null(strchr(msg, '\n'));
    assert_ptr_equal(strchr(msg, '\n'), msg + len - 1); /* one line */
}
#endif

int main(void)
{
#ifdef ANNB_TEST_BLAS_MISSING
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_library_aborts),
    };
#else
    /* In this order: the first two watch the library being loaded. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_loaded_before_first_call),
        cmocka_unit_test(test_first_call_from_many_threads),
        cmocka_unit_test(test_sgemm_transposes),
        cmocka_unit_test(test_cblas_sgemm_transposes_and_orders),
        cmocka_unit_test(test_dgemm),
        cmocka_unit_test(test_ssyrk),
        cmocka_unit_test(test_dsyev),
        cmocka_unit_test(test_gesvd),
        cmocka_unit_test(test_qr),
        cmocka_unit_test(test_sgelsd),
        cmocka_unit_test(test_lu_inverse),
    };
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
