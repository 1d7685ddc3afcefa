/*
 * gemm.h - the blocked multiply-and-select of exact batches (internal).
 *
 * Many queries against the same rows are a matrix product. exact.c packs
 * the queries once into tiles of ANNB_GEMM_QT and the rows, 32 at a time,
 * into panels of ANNB_GEMM_RT; one call of the tile kernel multiplies a
 * query tile by a panel in registers and, in the same pass, compares every
 * product with its query's current threshold, so the scores themselves
 * almost never leave the registers: only a tile holding a candidate (a row
 * that may enter a query's top k) is written out.
 *
 * Layouts (j: dimension, i: query in the tile, r: row in the panel):
 *   query tile  qt[j * ANNB_GEMM_QT + i]    d x QT floats, 64-byte aligned
 *   row panel   p[j * ANNB_GEMM_RT + r]     d x RT floats, 64-byte aligned
 * Slots past the last query or row are zero.
 *
 * The products are another summation order than the one-query kernels'
 * (kernels.h), so they only decide which rows are worth scoring exactly:
 * annb_gemm_margin() says by how much they may differ (the derivation is
 * in gemm.c), and exact.c turns that into the thresholds below.
 */
#ifndef ANNB_GEMM_H
#define ANNB_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define ANNB_GEMM_QT 12 /* queries per tile */
#define ANNB_GEMM_RT 32 /* rows per panel */

/*
 * One tile: the products a[i][r] = sum_j qt[j][i] * p[j][r], and the
 * candidate test against thr[i] (one threshold per query of the tile) and
 * xa[r] (one term per row of the panel):
 *   ip (l2 = 0): row r is a candidate for query i unless a + xa[r] <  thr[i]
 *   l2 (l2 = 1): row r is a candidate for query i unless xa[r] - 2a > thr[i]
 * each side rounded once to float, as written. A NaN anywhere makes a
 * candidate. Returns 0 when no (query, row) pair is a candidate; otherwise
 * which queries have one (bit i: query i), with scores[i * RT + r] = a[i][r]
 * and mask[i] bit r set for each candidate, for all QT queries of the tile
 * (scores are only meant to be read where a mask bit is set).
 */
typedef int (*annb_gemm_tile_fn)(const float *qt, const float *panel, uint32_t d,
                                 const float *xa, const float *thr, int l2, float *scores,
                                 uint32_t *mask);

/* Copies `count` (<= RT) rows of d floats, row-major at x, into panel p
 * (layout above, zero past count), and writes their squared norms (any
 * summation order: gemm.c) into norms[0..RT) (zero past count). */
typedef void (*annb_gemm_pack_fn)(float *p, float *norms, const float *x, size_t count, uint32_t d);

typedef struct annb_gemm_kernels {
    const char *name; /* "avx512", "avx2", "scalar" */
    annb_gemm_tile_fn tile;
    annb_gemm_pack_fn pack_rows; /* the same panel from every level (norms: any order) */
} annb_gemm_kernels;

/* The kernels for this CPU: AVX-512, AVX2 or scalar, by kernels.h's one
 * rule (ANNB_KERNEL=scalar|avx2 forces a slower one). Looks at the
 * environment: pick once per search. */
annb_gemm_kernels annb_gemm_pick(void);

/* Copies `count` (<= QT) queries of d floats into a query tile (zero past count). */
void annb_gemm_pack_queries(float *qt, const float *q, size_t count, uint32_t d);

/*
 * c(d): for vectors q and x of dimension d <= 65536 in float32, every two
 * float computations of q.x (any summation order, with or without FMA; the
 * tile kernels' and the one-query kernels') differ by at most
 * c(d) * (|q|^2 + |x|^2) / 5, and two of |x - q|^2 (one of them expanded as
 * |q|^2 + |x|^2 - 2 q.x from computed norms) by at most
 * c(d) * (|q|^2 + |x|^2) * 4/5, with room for the roundings of the
 * threshold arithmetic (gemm.c has the derivation).
 */
float annb_gemm_margin(uint32_t d);

#endif /* ANNB_GEMM_H */
