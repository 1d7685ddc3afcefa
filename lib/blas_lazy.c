/* blas_lazy.c - OpenBLAS loaded on the first BLAS call, not at process start.
 *
 * Why: linked normally, libopenblas.so.0 (with the libgfortran and
 * libquadmath it pulls in) cost every process ~12,000 symbol relocations in
 * the dynamic loader (LD_DEBUG=statistics for ann-query --version: 14,201,
 * then 1,980): more than half of a one-shot `ann-query` that never
 * multiplies a matrix. BLAS is needed only for batches of queries (exact.c's
 * cblas_sgemm) and inside Faiss (training, PCA, batch search).
 *
 * How: libannb defines every BLAS/LAPACK symbol that it and the static Faiss
 * linked into it reference (the list below; `nm -D --undefined-only
 * libannb.so` must name none of them). The definitions are hidden: Faiss's
 * calls bind to them when libannb is linked, and OpenBLAS's own internal calls
 * still bind inside OpenBLAS. Each forwarder makes sure the library is loaded
 * (dlopen, every one of the symbols below looked up at once, under
 * pthread_once) and tail-calls the real function with its arguments
 * unchanged. OpenBLAS starts its thread pool when it is loaded.
 *
 * RTLD_LAZY | RTLD_LOCAL: lazy, as OpenBLAS was when linked. RTLD_NOW would
 * also bind up front the ~2,500 PLT slots of OpenBLAS and libgfortran that a
 * run mostly never calls, about half a millisecond more for every run that
 * uses BLAS. What it would catch sooner (an OpenBLAS whose own dependencies
 * lack a function) failed just as late when OpenBLAS was linked; the
 * functions annb calls are all looked up, and checked, at load. RTLD_LOCAL
 * keeps OpenBLAS's symbols out of the global scope: nothing else in the
 * process binds to them by accident.
 *
 * Failure: a BLAS call cannot return an error, so if the library or one of
 * its symbols is missing, the first BLAS call prints one line to stderr
 * naming the library and dlerror()'s reason, and calls abort().
 *
 * Global state (STYLE 5): the table of function pointers is process-wide, as
 * the library it points into is; it is written once inside pthread_once and
 * only read afterwards. A BLAS call has no handle that could carry it. */
#include "blas_lazy.h"

#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef ANNB_BLAS_SONAME
#define ANNB_BLAS_SONAME "libopenblas.so.0"
#endif

/* The forwarders stand for OpenBLAS only inside the library or program that
 * links this file: never exported, so they cannot interpose on anyone else's
 * BLAS, OpenBLAS's own internal calls included. */
#define FORWARDER __attribute__((visibility("hidden")))

_Static_assert(sizeof(blasint) == sizeof(annb_fint),
               "OpenBLAS built with 64-bit integers: Faiss's FINTEGER is int");

#define BLAS_SYMBOLS(X)                                                                         \
    X(cblas_sgemm) X(sgemm_) X(dgemm_) X(ssyrk_) X(dsyev_) X(sgesvd_) X(dgesvd_) X(sgeqrf_)     \
    X(sorgqr_) X(sgelsd_) X(sgetrf_) X(sgetri_) X(dgetrf_) X(dgetri_)

enum {
#define X(name) SYM_##name,
    BLAS_SYMBOLS(X)
#undef X
    SYM_COUNT
};

static const char *const sym_names[SYM_COUNT] = {
#define X(name) #name,
    BLAS_SYMBOLS(X)
#undef X
};

static void *sym_addr[SYM_COUNT];
static pthread_once_t sym_once = PTHREAD_ONCE_INIT;

static void blas_load(void)
{
    void *lib = dlopen(ANNB_BLAS_SONAME, RTLD_LAZY | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "annb: cannot load %s, needed for matrix products (batches of queries, "
                        "index training): %s\n", ANNB_BLAS_SONAME, dlerror());
        abort();
    }
    for (int i = 0; i < SYM_COUNT; i++) {
        dlerror();
        sym_addr[i] = dlsym(lib, sym_names[i]);
        if (!sym_addr[i]) {
            const char *why = dlerror();
            fprintf(stderr, "annb: %s has no function %s: %s\n", ANNB_BLAS_SONAME, sym_names[i],
                    why ? why : "null address");
            abort();
        }
    }
    /* Never dlclose'd: the pointers stay valid for the life of the process. */
}

/* The real function, typed as its forwarder is declared. */
#define REAL(name) (pthread_once(&sym_once, blas_load), (__typeof__(&name))sym_addr[SYM_##name])

FORWARDER void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE transa,
                           const enum CBLAS_TRANSPOSE transb, const blasint m, const blasint n,
                           const blasint k, const float alpha, const float *a, const blasint lda,
                           const float *b, const blasint ldb, const float beta, float *c,
                           const blasint ldc)
{
    REAL(cblas_sgemm)(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

FORWARDER int sgemm_(const char *transa, const char *transb, annb_fint *m, annb_fint *n,
                     annb_fint *k, const float *alpha, const float *a, annb_fint *lda,
                     const float *b, annb_fint *ldb, float *beta, float *c, annb_fint *ldc)
{
    return REAL(sgemm_)(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

FORWARDER int dgemm_(const char *transa, const char *transb, annb_fint *m, annb_fint *n,
                     annb_fint *k, const double *alpha, const double *a, annb_fint *lda,
                     const double *b, annb_fint *ldb, double *beta, double *c, annb_fint *ldc)
{
    return REAL(dgemm_)(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

FORWARDER int ssyrk_(const char *uplo, const char *trans, annb_fint *n, annb_fint *k,
                     float *alpha, float *a, annb_fint *lda, float *beta, float *c, annb_fint *ldc)
{
    return REAL(ssyrk_)(uplo, trans, n, k, alpha, a, lda, beta, c, ldc);
}

FORWARDER int dsyev_(const char *jobz, const char *uplo, annb_fint *n, double *a, annb_fint *lda,
                     double *w, double *work, annb_fint *lwork, annb_fint *info)
{
    return REAL(dsyev_)(jobz, uplo, n, a, lda, w, work, lwork, info);
}

FORWARDER int sgesvd_(const char *jobu, const char *jobvt, annb_fint *m, annb_fint *n, float *a,
                      annb_fint *lda, float *s, float *u, annb_fint *ldu, float *vt,
                      annb_fint *ldvt, float *work, annb_fint *lwork, annb_fint *info)
{
    return REAL(sgesvd_)(jobu, jobvt, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, info);
}

FORWARDER int dgesvd_(const char *jobu, const char *jobvt, annb_fint *m, annb_fint *n, double *a,
                      annb_fint *lda, double *s, double *u, annb_fint *ldu, double *vt,
                      annb_fint *ldvt, double *work, annb_fint *lwork, annb_fint *info)
{
    return REAL(dgesvd_)(jobu, jobvt, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, info);
}

FORWARDER int sgeqrf_(annb_fint *m, annb_fint *n, float *a, annb_fint *lda, float *tau,
                      float *work, annb_fint *lwork, annb_fint *info)
{
    return REAL(sgeqrf_)(m, n, a, lda, tau, work, lwork, info);
}

FORWARDER int sorgqr_(annb_fint *m, annb_fint *n, annb_fint *k, float *a, annb_fint *lda,
                      float *tau, float *work, annb_fint *lwork, annb_fint *info)
{
    return REAL(sorgqr_)(m, n, k, a, lda, tau, work, lwork, info);
}

FORWARDER int sgelsd_(annb_fint *m, annb_fint *n, annb_fint *nrhs, float *a, annb_fint *lda,
                      float *b, annb_fint *ldb, float *s, float *rcond, annb_fint *rank,
                      float *work, annb_fint *lwork, annb_fint *iwork, annb_fint *info)
{
    return REAL(sgelsd_)(m, n, nrhs, a, lda, b, ldb, s, rcond, rank, work, lwork, iwork, info);
}

FORWARDER void sgetrf_(annb_fint *m, annb_fint *n, float *a, annb_fint *lda, annb_fint *ipiv,
                       annb_fint *info)
{
    REAL(sgetrf_)(m, n, a, lda, ipiv, info);
}

FORWARDER void sgetri_(annb_fint *n, float *a, annb_fint *lda, annb_fint *ipiv, float *work,
                       annb_fint *lwork, annb_fint *info)
{
    REAL(sgetri_)(n, a, lda, ipiv, work, lwork, info);
}

FORWARDER void dgetrf_(annb_fint *m, annb_fint *n, double *a, annb_fint *lda, annb_fint *ipiv,
                       annb_fint *info)
{
    REAL(dgetrf_)(m, n, a, lda, ipiv, info);
}

FORWARDER void dgetri_(annb_fint *n, double *a, annb_fint *lda, annb_fint *ipiv, double *work,
                       annb_fint *lwork, annb_fint *info)
{
    REAL(dgetri_)(n, a, lda, ipiv, work, lwork, info);
}
