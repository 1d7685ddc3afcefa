/*
 * sq8.h - 8-bit scalar codes of vectors, and their scores against a float
 * query (internal; the graph walks on them, then re-ranks exactly).
 *
 * Per dimension j, a value x is coded as c = round((x - lo[j]) / step[j])
 * in 0..255, so x is about lo[j] + step[j] * c. A vector of d floats becomes
 * d bytes: one cache line at d = 64, a quarter of the float row, which is
 * what a graph walk at a million rows spends its time fetching.
 */
#ifndef ANNB_SQ8_H
#define ANNB_SQ8_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* The per-dimension range: lo[d] then step[d] (2 x d floats). */
typedef struct annb_sq8 {
    uint32_t d;
    const float *lo, *step;
} annb_sq8;

/* Trains lo and step (params: 2 x d floats, lo then step) on the n >= 1
 * rows of x. Deterministic; a dimension with one value gets step 1. */
void annb_sq8_train(float *params, const float *x, uint64_t n, uint32_t d);

/* Writes the n x d codes of the n rows of x under params (any rows: the
 * code of a row depends on that row only). */
void annb_sq8_encode(uint8_t *codes, const float *params, const float *x, uint64_t n, uint32_t d);

/* Are the parameters usable (lo finite, step finite and > 0)? 0: yes, else
 * the index of the first bad float. */
int64_t annb_sq8_check(const float *params, uint32_t d);

/*
 * A query prepared for scoring codes: for ip (and cosine), w[j] = q[j] *
 * step[j], and score = sum w[j] c[j] (plus a constant per query, dropped:
 * it does not change the order); for l2, z[j] = (q[j] - lo[j]) / step[j]
 * and w[j] = step[j]^2, score = sum w[j] (z[j] - c[j])^2. Lower or higher
 * is better as for the metric. prep holds 2 x d floats.
 */
void annb_sq8_prepare(float *prep, const annb_sq8 *sq, annb_metric m, const float *q);

/* Scores one code row against a prepared query. */
typedef float (*annb_sq8_score_fn)(const uint8_t *code, const float *prep, uint32_t d);

/* The kernel for metric m on this CPU (AVX-512, AVX2 or scalar; the same
 * choice as kernels.c's, ANNB_KERNEL included). */
annb_sq8_score_fn annb_sq8_score_fn_for(annb_metric m);

/*
 * The walk's score for ip and cosine, in integers: the prepared weights
 * w[j] = q[j] * step[j] rounded to int8 at a scale that maps the largest
 * |w[j]| to 127 (wq, d bytes), and a code's score is sum wq[j] c[j] in
 * int32 (at SPEC's largest d, 65536, |sum| <= 65536 * 255 * 127 < 2^31:
 * no overflow). Integers make the score the same on every CPU, whichever
 * kernel runs, so the walk (and the build, which walks the same way) takes
 * the same path everywhere; and an int8 x u8 dot product is one AVX-512
 * VNNI instruction per 64 bytes. The rounding costs a query's weights about
 * as much precision as the codes already lose (half a step in 255).
 * A query with a non-finite weight gets all zeros (every code ties; the
 * exact re-rank then scores it as exact.h would).
 */
void annb_sq8_query_i8(int8_t *wq, const annb_sq8 *sq, const float *q);

/* Scores the m code rows codes[pos[i] * d ..] against wq into out[i]; the
 * caller has bounded every pos[i]. Prefetches a few rows ahead itself. */
typedef void (*annb_sq8_dots_fn)(const uint8_t *codes, uint32_t d, const uint32_t *pos,
                                 uint32_t m, const int8_t *wq, int32_t *out);

/* The integer kernel on this CPU: "vnni" (AVX-512 VNNI, with BW and VL),
 * "avx2" or "scalar", following kernels.c's choice (ANNB_KERNEL included);
 * every kernel gives the same integers. */
annb_sq8_dots_fn annb_sq8_dots_fn_for(void);

/* A named kernel ("vnni", "avx2", "scalar"), or NULL when this CPU lacks
 * it (for tests: all must agree). */
annb_sq8_dots_fn annb_sq8_dots_fn_named(const char *name);

#endif /* ANNB_SQ8_H */
