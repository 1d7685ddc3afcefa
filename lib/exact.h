/*
 * exact.h - exact search straight on the mapped vectors (internal).
 *
 * No copy at open: the scan reads the VECS section in place. One query is a
 * single pass over the rows with a SIMD score kernel chosen at run time
 * (AVX-512, AVX2 or scalar) fused with top-k selection; many queries go
 * through a BLAS matrix multiply, block by block.
 *
 * The pieces of that scan (the kernel, the top-k heap, the scan of one
 * contiguous block, a tiny thread runner) are exported below for the other
 * in-place scan, the IVF lists of ivf.c.
 */
#ifndef ANNB_EXACT_H
#define ANNB_EXACT_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* Which rows may answer: all three parts optional. */
typedef struct annb_row_filter {
    const uint8_t *allowed; /* bitmap over rows (LSB first), NULL: all */
    const int64_t *skip;    /* ascending rows excluded for every query */
    size_t nskip;
    const uint32_t *const *extra; /* per query: ascending rows excluded, or NULL */
    const size_t *extra_count;
} annb_row_filter;

/*
 * The k best rows of vecs (n x d) for each of nq queries: rows[i*k + j] and
 * scores[i*k + j], best first (ties by lower row), -1 past the rows that
 * pass the filter. ip and cosine: larger inner product first; l2: smaller
 * squared distance first. Returns ANNB_OK or ANNB_E_NOMEM.
 */
int annb_exact_search(const float *vecs, uint64_t n, uint32_t d, annb_metric m, const float *q,
                      size_t nq, size_t k, const annb_row_filter *filter, float *scores,
                      int64_t *rows);

/*
 * annb_exact_search with the rows of each query split among `threads`
 * threads (threads <= 1: the calling thread alone), each with its own
 * heaps, merged at the end: the result is the same, bit for bit, as with one
 * thread. Only the one-query scan path (fewer than 8 queries) is split; many
 * queries go through BLAS, which has its own threads. Small n uses fewer
 * threads (a thread is worth it from about 32k rows). If a thread cannot be
 * started, its share runs on the calling thread. Returns ANNB_OK or
 * ANNB_E_NOMEM.
 */
int annb_exact_search_threads(const float *vecs, uint64_t n, uint32_t d, annb_metric m,
                              const float *q, size_t nq, size_t k, const annb_row_filter *filter,
                              int threads, float *scores, int64_t *rows);

/*
 * For each of the n rows of x (n x d), the best of the nc vectors c (nc x d)
 * under m, ties to the lower one: best[i] in [0, nc), and if dist is not
 * NULL, dist[i] = its inner product (ip, cosine) or squared L2 distance
 * computed as |x|^2 + |c|^2 - 2 x.c (l2; cancels for near vectors: good to
 * rank, not to report). Picks the nearest centroid of an IVF list: the
 * multiply is fused with the choice, no score matrix is written, and the
 * rows are split among `threads` threads without changing any result.
 * Returns ANNB_OK, ANNB_E_INVALID (nc or d 0), ANNB_E_NOMEM.
 */
int annb_exact_nearest(int64_t *best, float *dist, const float *x, uint64_t n, const float *c,
                       uint32_t nc, uint32_t d, annb_metric m, int threads);

/* Name of the score kernel this CPU runs ("avx512", "avx2", "scalar"). */
const char *annb_exact_kernel(void);

/* Does row pass filter f for query qi (qi indexes f->extra)? f NULL: yes. */
int annb_row_filter_passes(const annb_row_filter *f, size_t qi, int64_t row);

/* ---- building blocks of the scans (for ivf.c and graph.c) ---- */

/* Scores of `count` consecutive vectors of d floats (x, row-major) against
 * q into out: inner product, or squared L2 distance. */
typedef void (*annb_score_block_fn)(const float *x, const float *q, uint32_t d, size_t count,
                                    float *out);

/* The kernel for metric m on this CPU (ANNB_KERNEL=scalar|avx2 forces a
 * slower one). Looks at the environment: pick once per search, not per block. */
annb_score_block_fn annb_exact_score_fn(annb_metric m);

/* The k best (score, row) pairs offered so far, in caller-owned arrays of k
 * slots: a binary heap whose root is the worst kept pair. Order: better
 * score first (larger for ip/cosine, smaller for l2), then lower row. */
typedef struct annb_topk {
    float *score;
    int64_t *row;
    size_t size, k;
    int lower_first; /* l2 */
} annb_topk;

/* An empty heap over score[k] and row[k]. */
void annb_topk_init(annb_topk *h, float *score, int64_t *row, size_t k, annb_metric m);
/* Offers every pair of src to dst (merging per-thread heaps; src is left as is). */
void annb_topk_merge(annb_topk *dst, const annb_topk *src);
/* Sorts the kept pairs best first in place; the slots past them get NaN / -1. */
void annb_topk_finish(annb_topk *h);

/*
 * Offers `count` consecutive vectors x (count x d) to h as candidates for
 * query q, scored with fn: vector i is row rows[i], or first_row + i when
 * rows is NULL. Rows failing filter (qi: the query's index into
 * filter->extra) are never kept. The order of calls does not change the
 * final heap (ties go to the lower row).
 */
void annb_exact_scan(annb_score_block_fn fn, const float *x, size_t count, uint32_t d,
                     const float *q, const uint32_t *rows, int64_t first_row,
                     const annb_row_filter *filter, size_t qi, annb_topk *h);

/* Runs fn(ctx, t) for t = 0 .. threads-1, t = 0 on the calling thread, the
 * others on new threads, and returns when all are done. A thread that
 * cannot be started runs on the calling thread instead, so fn must not
 * rely on running concurrently. */
void annb_run_threads(int threads, void (*fn)(void *ctx, int t), void *ctx);

#endif /* ANNB_EXACT_H */
