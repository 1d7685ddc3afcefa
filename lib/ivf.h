/*
 * ivf.h - annb's own IVF-Flat index: plain arrays, searched in place
 * (internal).
 *
 * Faiss only trains the coarse centroids (k-means). The inverted lists are
 * four arrays a bundle can keep as raw sections and a search can read
 * straight from the mapping: no deserialization at open, and the scan runs
 * kernels.c's SIMD kernels (Debian's generic Faiss build has no AVX2 ones).
 *
 * Scores and order are exact.h's (topk.h's rule): ip and cosine, larger inner
 * product first; l2, smaller squared distance first; ties by lower row. Cosine vectors (and
 * queries) arrive L2-normalised, so cosine is handled as ip throughout.
 */
#ifndef ANNB_IVF_H
#define ANNB_IVF_H

#include "annb.h"
#include "exact.h"
#include "progress.h"

#include <stddef.h>
#include <stdint.h>

/* An IVF-Flat index as plain arrays. Every pointer may point into a
 * read-only mapping; nothing here owns memory. */
typedef struct annb_ivf {
    uint32_t nlist, d;
    uint64_t n;              /* positions (rows indexed) */
    const float *centroids;  /* nlist x d */
    const uint64_t *offsets; /* nlist + 1: list l holds positions offsets[l] .. offsets[l+1]-1 */
    const uint32_t *rows;    /* n: the bundle row at each position, ascending within a list */
    const float *vecs;       /* n x d: that row's vector, at each position (list order) */
} annb_ivf;

/* What annb_ivf_build returns: the index and the malloc'd arrays it points
 * to (ivf.centroids == centroids, and so on). */
typedef struct annb_ivf_built {
    annb_ivf ivf;
    float *centroids;
    uint64_t *offsets;
    uint32_t *rows;
    float *vecs;
} annb_ivf_built;

/* Sampling and iterations of the k-means (part of what makes the bytes). */
#define ANNB_IVF_KMEANS_NITER 20
#define ANNB_IVF_KMEANS_SEED 1234

/*
 * Builds an IVF-Flat index over the n rows of x (n x d): Faiss k-means
 * trains nlist centroids on a sample drawn with a fixed seed (at most
 * annb_ivf_train_points() rows), then each row goes to the list of its
 * nearest centroid by the metric: smallest L2 distance for l2, largest
 * inner product for ip and cosine (as Faiss's IndexIVFFlat assigns with its
 * quantizer; for ip the centroids are trained spherical, as Faiss 1.7.3's
 * IndexIVF does). Ties go to the lower list. Every assignment, in k-means
 * and at the end, is nearest.c's fused annb_exact_nearest, on OpenMP's thread
 * count. Deterministic: the same input gives the same bytes whatever that
 * count; a CPU with another kernel (AVX-512, AVX2, scalar) may round
 * differently and so assign a near-tie row elsewhere.
 *
 * Progress (progress.h; NULL: none): phase "train", the k-means iterations
 * (ANNB_IVF_KMEANS_NITER), then "add", the rows assigned to their lists.
 *
 * out: filled on success (free with annb_ivf_release_built), zeroed on
 * failure. Returns ANNB_OK, ANNB_E_INVALID (n, d or nlist zero, nlist > n),
 * ANNB_E_LIMIT (n > 2^32: rows are 32-bit), ANNB_E_NOMEM, ANNB_E_FAISS;
 * the message says why.
 */
int annb_ivf_build(annb_ivf_built *out, const float *x, uint64_t n, uint32_t d, annb_metric m,
                   uint32_t nlist, const annb_progress_to *progress, annb_error *err);

/* Frees the arrays of a built index and zeroes it. NULL is fine. */
void annb_ivf_release_built(annb_ivf_built *b);

/* How many rows of n the k-means for nlist lists trains on: 256 per list
 * up to 1024 lists, then fewer (down to 32 per list at 4096 lists and
 * beyond) so that training 1M x 64 stays around 10 s on two cores. */
uint64_t annb_ivf_train_points(uint64_t n, uint32_t nlist);

/*
 * Checks the structure of arrays read from a file before any search
 * trusts them: nlist and d not zero, offsets[0] == 0, non-decreasing,
 * offsets[nlist] == n; every row < n_rows_total, strictly ascending within
 * its list, and in no other list. O(nlist + n) time, n_rows_total bits of
 * scratch (at most 2^32); done once at open, so the scan checks nothing.
 * Whether every bundle row is indexed (n == n_rows_total) is the caller's
 * rule, not checked here.
 *
 * Returns ANNB_OK, ANNB_E_CORRUPT with the first problem in why (if
 * why_size > 0), or ANNB_E_NOMEM.
 */
int annb_ivf_check(const annb_ivf *ivf, uint64_t n_rows_total, char *why, size_t why_size);

/*
 * The k best rows for each of nq queries (nq x d): the nprobe lists whose
 * centroids score best (ties by lower list) are scanned with kernels.h's
 * kernel and topk.h's heap. Output as annb_exact_search: rows[i*k + j] and
 * scores[i*k + j] best first, ties by lower row, -1 / NaN past what was
 * found; filter applies inside the scan (filter->extra indexed by query).
 * nprobe >= nlist scans every list: the result is then annb_exact_search's
 * over the same vectors, bit for bit when that one takes fewer than 8
 * queries (its BLAS path for more rounds scores differently).
 *
 * The centroids are scored per query with the same kernel whatever nq, so a
 * query probes the same lists alone or in a batch.
 *
 * Returns ANNB_OK, ANNB_E_INVALID (nprobe or nlist 0), ANNB_E_NOMEM.
 * Reads ivf only: many threads may search the same index at once.
 */
int annb_ivf_search(const annb_ivf *ivf, annb_metric m, const float *q, size_t nq, size_t k,
                    size_t nprobe, const annb_row_filter *filter, float *scores, int64_t *rows);

/*
 * annb_ivf_search on `threads` threads (<= 1: the calling thread alone):
 * queries are shared among them when there are at least as many queries as
 * threads; otherwise each query's probed lists are (a thread per 8k vectors
 * at most). The result is the same, bit for bit, as with one thread.
 */
int annb_ivf_search_threads(const annb_ivf *ivf, annb_metric m, const float *q, size_t nq,
                            size_t k, size_t nprobe, const annb_row_filter *filter, int threads,
                            float *scores, int64_t *rows);

/*
 * The work annb_ivf_search does for nq queries at nprobe, counted rather
 * than timed (index "auto"'s cost model, lib/auto_pick.h): *centroids
 * scored (nlist a query) and *rows scanned in the probed lists, summed over
 * the queries. The same lists as the search probes (the same function
 * picks them). Returns ANNB_OK, ANNB_E_INVALID, ANNB_E_NOMEM.
 */
int annb_ivf_work(const annb_ivf *ivf, annb_metric m, const float *q, size_t nq, size_t nprobe,
                  uint64_t *centroids, uint64_t *rows);

#endif /* ANNB_IVF_H */
