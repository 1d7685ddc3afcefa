/*
 * exact.h - exact search straight on the mapped vectors (internal).
 *
 * No copy at open: the scan reads the VECS section in place. One query is a
 * single pass over the rows with a SIMD score kernel chosen at run time
 * (kernels.h: AVX-512, AVX2 or scalar) fused with top-k selection (topk.h);
 * several queries (2 or more) go through annb's own blocked multiply-and-select
 * (gemm.h's tile kernels, same dispatch), or through BLAS's cblas_sgemm
 * above 4096 dimensions or with ANNB_EXACT_BATCH=blas (for tests and
 * benchmarks; ANNB_EXACT_BATCH=tiles forces the tiles). Either way the
 * answers are those of the one-query kernels, bit for bit: the products
 * only rule rows out, with a margin for their rounding (gemm.c).
 *
 * The scan of one contiguous block and the row filter are exported below
 * for the other in-place scans, the IVF lists of ivf.c and graph.c's
 * fallback for selective filters. The order of results is topk.h's.
 */
#ifndef ANNB_EXACT_H
#define ANNB_EXACT_H

#include "annb.h"
#include "kernels.h"
#include "topk.h"

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
 * squared distance first (topk.h's annb_hit_better). Returns ANNB_OK or
 * ANNB_E_NOMEM.
 */
int annb_exact_search(const float *vecs, uint64_t n, uint32_t d, annb_metric m, const float *q,
                      size_t nq, size_t k, const annb_row_filter *filter, float *scores,
                      int64_t *rows);

/*
 * annb_exact_search on up to `threads` threads (threads <= 1: the calling
 * thread alone); the result is the same, bit for bit, as with one thread.
 * One query: its rows are split among the threads, each with its own
 * heaps, merged at the end; small n uses fewer threads (a thread is worth
 * it from about 32k rows). A batch on the tiles: its
 * queries are split among the threads when each gets 24 or more (two
 * tiles), else the rows as above. The BLAS path runs on the calling thread
 * and OpenBLAS's own threads. If a thread cannot be started, its share runs
 * on the calling thread. Returns ANNB_OK or ANNB_E_NOMEM.
 */
int annb_exact_search_threads(const float *vecs, uint64_t n, uint32_t d, annb_metric m,
                              const float *q, size_t nq, size_t k, const annb_row_filter *filter,
                              int threads, float *scores, int64_t *rows);

/* Does row pass filter f for query qi (qi indexes f->extra)? f NULL: yes. */
int annb_row_filter_passes(const annb_row_filter *f, size_t qi, int64_t row);

/* ---- the building block of the scans (for ivf.c and graph.c) ---- */

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

#endif /* ANNB_EXACT_H */
