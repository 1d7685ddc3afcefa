/*
 * exact.h - exact search straight on the mapped vectors (internal).
 *
 * No copy at open: the scan reads the VECS section in place. One query is a
 * single pass over the rows with a SIMD score kernel chosen at run time
 * (AVX-512, AVX2 or scalar) fused with top-k selection; many queries go
 * through a BLAS matrix multiply, block by block.
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

/* Name of the score kernel this CPU runs ("avx512", "avx2", "scalar"). */
const char *annb_exact_kernel(void);

#endif /* ANNB_EXACT_H */
