/*
 * nearest.h - the nearest-centroid assignment: for many rows, the best of a
 * few thousand vectors, the multiply fused with the choice (internal).
 */
#ifndef ANNB_NEAREST_H
#define ANNB_NEAREST_H

#include "annb.h"

#include <stdint.h>

/*
 * For each of the n rows of x (n x d), the best of the nc vectors c (nc x d)
 * under m, ties to the lower one: best[i] in [0, nc), and if dist is not
 * NULL, dist[i] = its inner product (ip, cosine) or squared L2 distance
 * computed as |x|^2 + |c|^2 - 2 x.c (l2; cancels for near vectors: good to
 * rank, not to report). Picks the nearest centroid of an IVF list: the
 * multiply is fused with the choice, no score matrix is written, and the
 * rows are split among `threads` threads without changing any result.
 * Uses the CPU dispatch of kernels.h. Returns ANNB_OK, ANNB_E_INVALID (nc
 * or d 0), ANNB_E_NOMEM.
 */
int annb_exact_nearest(int64_t *best, float *dist, const float *x, uint64_t n, const float *c,
                       uint32_t nc, uint32_t d, annb_metric m, int threads);

#endif /* ANNB_NEAREST_H */
