/*
 * kernels.h - the score kernels and their run-time CPU dispatch (internal).
 *
 * One rule picks the instruction set for every in-place scan (exact.c,
 * ivf.c, graph.c, and sq8.c's code kernels follow the same choice): AVX-512,
 * AVX2 or scalar, from the CPU at run time, so the same binary runs
 * everywhere. ANNB_KERNEL=scalar|avx2 forces a slower one (for tests and
 * benchmarks).
 */
#ifndef ANNB_KERNELS_H
#define ANNB_KERNELS_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* Scores of `count` consecutive vectors of d floats (x, row-major) against
 * q into out: inner product, or squared L2 distance. */
typedef void (*annb_score_block_fn)(const float *x, const float *q, uint32_t d, size_t count,
                                    float *out);

/* The kernel for metric m on this CPU (ANNB_KERNEL=scalar|avx2 forces a
 * slower one). Looks at the environment: pick once per search, not per block. */
annb_score_block_fn annb_exact_score_fn(annb_metric m);

/* Name of the score kernel this CPU runs ("avx512", "avx2", "scalar"). */
const char *annb_exact_kernel(void);

/* The scalar dot product and squared L2 distance of one row with q, summed
 * in index order: the scalar kernel's, and the reference the BLAS path and
 * the nearest-centroid assignment use for norms and exact re-scoring. */
static inline float annb_dot_scalar(const float *x, const float *q, uint32_t d)
{
    float s = 0;
    for (uint32_t j = 0; j < d; j++) s += x[j] * q[j];
    return s;
}

static inline float annb_l2_scalar(const float *x, const float *q, uint32_t d)
{
    float s = 0;
    for (uint32_t j = 0; j < d; j++) s += (x[j] - q[j]) * (x[j] - q[j]);
    return s;
}

#endif /* ANNB_KERNELS_H */
