/* blas_lazy.h - the Fortran BLAS/LAPACK entry points libannb defines itself
 * and forwards to OpenBLAS, loaded on first use (lib/blas_lazy.c).
 *
 * Nothing in libannb calls these through this header: Faiss declares them in
 * its own .cpp files, and exact.c calls cblas_sgemm through <cblas.h>. The
 * header exists so that blas_lazy.c's definitions are checked against one
 * declaration, and so tests can call the forwarders.
 *
 * The prototypes mirror Faiss 1.7.3's extern "C" declarations exactly
 * (faiss/VectorTransform.cpp, utils/distances.cpp, utils/utils.cpp,
 * impl/LocalSearchQuantizer.cpp, impl/ResidualQuantizer.cpp), with Faiss's
 * FINTEGER = int: Debian's libopenblas0 uses 32-bit integers (no INTERFACE64).
 * All arguments are pointers, as in Fortran; matrices are column-major.
 *
 * Thread safety: every function may be called from any thread, including the
 * first call (the library is loaded once, under pthread_once). If
 * libopenblas.so.0 cannot be loaded, the first call prints one line to stderr
 * and calls abort(): a BLAS call has no way to return an error. */
#ifndef ANNB_BLAS_LAZY_H
#define ANNB_BLAS_LAZY_H

#ifdef __cplusplus
extern "C" {
#endif

typedef int annb_fint; /* Faiss's FINTEGER */

/* BLAS level 3 */
int sgemm_(const char *transa, const char *transb, annb_fint *m, annb_fint *n, annb_fint *k,
           const float *alpha, const float *a, annb_fint *lda, const float *b, annb_fint *ldb,
           float *beta, float *c, annb_fint *ldc);
int dgemm_(const char *transa, const char *transb, annb_fint *m, annb_fint *n, annb_fint *k,
           const double *alpha, const double *a, annb_fint *lda, const double *b, annb_fint *ldb,
           double *beta, double *c, annb_fint *ldc);
int ssyrk_(const char *uplo, const char *trans, annb_fint *n, annb_fint *k, float *alpha, float *a,
           annb_fint *lda, float *beta, float *c, annb_fint *ldc);

/* LAPACK */
int dsyev_(const char *jobz, const char *uplo, annb_fint *n, double *a, annb_fint *lda, double *w,
           double *work, annb_fint *lwork, annb_fint *info);
int sgesvd_(const char *jobu, const char *jobvt, annb_fint *m, annb_fint *n, float *a,
            annb_fint *lda, float *s, float *u, annb_fint *ldu, float *vt, annb_fint *ldvt,
            float *work, annb_fint *lwork, annb_fint *info);
int dgesvd_(const char *jobu, const char *jobvt, annb_fint *m, annb_fint *n, double *a,
            annb_fint *lda, double *s, double *u, annb_fint *ldu, double *vt, annb_fint *ldvt,
            double *work, annb_fint *lwork, annb_fint *info);
int sgeqrf_(annb_fint *m, annb_fint *n, float *a, annb_fint *lda, float *tau, float *work,
            annb_fint *lwork, annb_fint *info);
int sorgqr_(annb_fint *m, annb_fint *n, annb_fint *k, float *a, annb_fint *lda, float *tau,
            float *work, annb_fint *lwork, annb_fint *info);
int sgelsd_(annb_fint *m, annb_fint *n, annb_fint *nrhs, float *a, annb_fint *lda, float *b,
            annb_fint *ldb, float *s, float *rcond, annb_fint *rank, float *work, annb_fint *lwork,
            annb_fint *iwork, annb_fint *info);
/* Faiss declares the LU pair void (LocalSearchQuantizer.cpp). */
void sgetrf_(annb_fint *m, annb_fint *n, float *a, annb_fint *lda, annb_fint *ipiv,
             annb_fint *info);
void sgetri_(annb_fint *n, float *a, annb_fint *lda, annb_fint *ipiv, float *work,
             annb_fint *lwork, annb_fint *info);
void dgetrf_(annb_fint *m, annb_fint *n, double *a, annb_fint *lda, annb_fint *ipiv,
             annb_fint *info);
void dgetri_(annb_fint *n, double *a, annb_fint *lda, annb_fint *ipiv, double *work,
             annb_fint *lwork, annb_fint *info);

#ifdef __cplusplus
}
#endif

#endif
