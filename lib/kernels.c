/* kernels.c - score kernels and their run-time dispatch (see kernels.h). */
#include "kernels.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* ---- score kernels: dot product or squared L2 of one row with q ---- */

__attribute__((target("avx2,fma"))) static float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *x, const float *q, uint32_t d)
{
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    uint32_t j = 0;
    for (; j + 16 <= d; j += 16) {
        a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(q + j), a);
        b = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 8), _mm256_loadu_ps(q + j + 8), b);
    }
    for (; j + 8 <= d; j += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(q + j), a);
    float s = hsum256(_mm256_add_ps(a, b));
    for (; j < d; j++) s += x[j] * q[j];
    return s;
}

__attribute__((target("avx2,fma"))) static float l2_avx2(const float *x, const float *q, uint32_t d)
{
    __m256 a = _mm256_setzero_ps();
    uint32_t j = 0;
    for (; j + 8 <= d; j += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(q + j));
        a = _mm256_fmadd_ps(t, t, a);
    }
    float s = hsum256(a);
    for (; j < d; j++) s += (x[j] - q[j]) * (x[j] - q[j]);
    return s;
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *x, const float *q, uint32_t d)
{
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    uint32_t j = 0;
    for (; j + 32 <= d; j += 32) {
        a = _mm512_fmadd_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(q + j), a);
        b = _mm512_fmadd_ps(_mm512_loadu_ps(x + j + 16), _mm512_loadu_ps(q + j + 16), b);
    }
    a = _mm512_add_ps(a, b);
    if (j + 16 <= d) {
        a = _mm512_fmadd_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(q + j), a);
        j += 16;
    }
    if (j < d) { /* the tail under a mask: no read past the row */
        __mmask16 m = (__mmask16)((1u << (d - j)) - 1);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, q + j), a);
    }
    return _mm512_reduce_add_ps(a);
}

__attribute__((target("avx512f"))) static float l2_avx512(const float *x, const float *q, uint32_t d)
{
    __m512 a = _mm512_setzero_ps();
    uint32_t j = 0;
    for (; j + 16 <= d; j += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(q + j));
        a = _mm512_fmadd_ps(t, t, a);
    }
    if (j < d) {
        __mmask16 m = (__mmask16)((1u << (d - j)) - 1);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, q + j));
        a = _mm512_fmadd_ps(t, t, a);
    }
    return _mm512_reduce_add_ps(a);
}

/* Scores of `rows` consecutive rows: one call per block, not per row, so the
 * query stays in registers and the loop has no indirect call. */

#define BLOCK_KERNEL(name, isa, score)                                                      \
    __attribute__((target(isa))) static void name(const float *x, const float *q,             \
                                                      uint32_t d, size_t rows, float *out)     \
    {                                                                                          \
        for (size_t r = 0; r < rows; r++) out[r] = score(x + r * d, q, d);                     \
    }

BLOCK_KERNEL(dot_block_scalar, "default", annb_dot_scalar)
BLOCK_KERNEL(l2_block_scalar, "default", annb_l2_scalar)
BLOCK_KERNEL(dot_block_avx2, "avx2,fma", dot_avx2)
BLOCK_KERNEL(l2_block_avx2, "avx2,fma", l2_avx2)

/* d a multiple of 16 up to 128 (the usual embedding sizes): the query is
 * loaded once per block into registers, four rows are scored at a time. */
__attribute__((target("avx512f"))) static void dot_block_avx512(const float *x, const float *q,
                                                                uint32_t d, size_t rows, float *out)
{
    if (d % 16 || d > 128) {
        for (size_t r = 0; r < rows; r++) out[r] = dot_avx512(x + r * d, q, d);
        return;
    }
    __m512 qv[8];
    uint32_t w = d / 16;
    for (uint32_t j = 0; j < w; j++) qv[j] = _mm512_loadu_ps(q + 16 * j);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *a = x + r * d;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (uint32_t j = 0; j < w; j++) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 16 * j), qv[j], s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + d + 16 * j), qv[j], s1);
            s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 2 * d + 16 * j), qv[j], s2);
            s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 3 * d + 16 * j), qv[j], s3);
        }
        out[r] = _mm512_reduce_add_ps(s0);
        out[r + 1] = _mm512_reduce_add_ps(s1);
        out[r + 2] = _mm512_reduce_add_ps(s2);
        out[r + 3] = _mm512_reduce_add_ps(s3);
    }
    /* The last rows summed in the same order as the four above: a row's
     * score must not depend on where it sits in a block, or splitting a
     * scan (threads, IVF lists) would change the last bits of scores. */
    for (; r < rows; r++) {
        __m512 s0 = _mm512_setzero_ps();
        for (uint32_t j = 0; j < w; j++)
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + r * d + 16 * j), qv[j], s0);
        out[r] = _mm512_reduce_add_ps(s0);
    }
}

BLOCK_KERNEL(l2_block_avx512, "avx512f", l2_avx512)

typedef struct kernel {
    const char *name;
    annb_score_block_fn dot, l2;
} kernel;

/* Chosen from the CPU at run time; the same binary runs everywhere.
 * ANNB_KERNEL=scalar|avx2 forces a slower one (for tests and benchmarks). */
static kernel pick_kernel(void)
{
    static const kernel k512 = {"avx512", dot_block_avx512, l2_block_avx512};
    static const kernel k2 = {"avx2", dot_block_avx2, l2_block_avx2};
    static const kernel k1 = {"scalar", dot_block_scalar, l2_block_scalar};
    const char *force = getenv("ANNB_KERNEL");
    __builtin_cpu_init();
    if (force && strcmp(force, "scalar") == 0) return k1;
    if (__builtin_cpu_supports("avx512f") && !(force && strcmp(force, "avx2") == 0)) return k512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return k2;
    return k1;
}

const char *annb_exact_kernel(void) { return pick_kernel().name; }

annb_score_block_fn annb_exact_score_fn(annb_metric m)
{
    kernel kn = pick_kernel();
    return m == ANNB_METRIC_L2 ? kn.l2 : kn.dot;
}
