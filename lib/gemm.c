/* gemm.c - tile kernels of the exact batches and their margin (see gemm.h). */
#include "gemm.h"
#include "kernels.h"

#include <immintrin.h>
#include <string.h>

#define QT ANNB_GEMM_QT
#define RT ANNB_GEMM_RT

/* ---- the margin ----
 *
 * Notation: u = 2^-24 (float's unit roundoff), g(m) = m u / (1 - m u),
 * S = |q|^2 + |x|^2, qn and xn the computed squared norms, a the tile
 * kernel's product, s the one-query kernel's score (the one answers are
 * ranked by), T the score at the root of the query's heap (its k-th best).
 * Any float dot product of length d, in any order, FMA or not, is within
 * g(d) |q||x| of the exact one (Higham, Accuracy and Stability of Numerical
 * Algorithms, 2nd ed., 3.1 and 3.5); so is each norm of its own S part, and
 * 2|q||x| <= S. Underflow adds at most about d 2^-150 to each: far below
 * the 1e-30 that exact.c adds to every threshold.
 *
 * ip (and cosine): s <= a + 2 g(d) |q||x| <= a + g(d) S. exact.c discards
 * a row when fl(a + xa) < fl(T - mq), xa = fl(c xn), mq = fl(fl(c qn) + 1e-30).
 * Rounding is monotone, so the discard implies a + xa + mq < T exactly, and
 * xa + mq >= c (1 - u)^2 (xn + qn) + 0.99e-30 >= c (1 - u)^2 (1 - g(d)) S;
 * with c (1 - u)^2 (1 - g(d)) >= g(d) that gives s < T: the row cannot
 * enter (a tie with T would need s = T).
 *
 * l2: D = |x - q|^2 exactly; the one-query kernel's s = fl(sum fl(x_j - q_j)^2)
 * is within (g(d) + 2u + u^2) D <= g(d + 2) D of it, and D <= 2S: s >= D - 2 g(d+2) S.
 * L = xn + qn - 2a (exact arithmetic on the computed values) is within
 * g(d) S (norms) + 2 g(d) |q||x| <= 2 g(d) S of D; so s >= L - 4 g(d + 2) S.
 * exact.c discards when fl(xa - 2a) > fl(T - mq), xa = fl(f xn),
 * mq = fl(fl(f qn) - 1e-30), f = fl(1 - c) <= (1 - c)(1 + u): exactly,
 * then, xa + mq - 2a > T with xa + mq <= f (1 + u)^2 (xn + qn) - 0.99e-30
 * <= (1 - c + 3.01 u)(xn + qn), i.e. L - (c - 3.01 u)(xn + qn) > T; with
 * (c - 3.01 u)(1 - g(d)) >= 4 g(d + 2) (xn + qn >= (1 - g(d)) S) that gives
 * s > T: the row cannot enter.
 *
 * c(d) = 5 (d + 4) u satisfies both for every d <= 65536 (SPEC's largest
 * dimension), where (d + 2) u <= 0.0039: 4 g(d + 2) / (1 - g(d)) + 3.01 u
 * <= (4.04 d + 11.2) u and g(d) / ((1 - u)^2 (1 - g(d))) <= 1.01 d u. At
 * d = 64 it is 2.0e-5, against the 1e-4 the BLAS path used for every d
 * (which would not have held beyond d of about 1,600). The test
 * (tests/unit/test_exact.c) checks |a - s| and the l2 gap on
 * cancelling and log-normal data for every kernel, against these bounds. */
float annb_gemm_margin(uint32_t d)
{
    /* 5 (d + 4) 2^-24, exact in float for any d <= 65536 (an integer times a power of two) */
    return (float)(5.0 * ((double)d + 4.0) / 16777216.0);
}

/* ---- packing ---- */

static void pack_rows_scalar(float *p, float *norms, const float *x, size_t count, uint32_t d)
{
    if (count < RT) memset(p, 0, (size_t)d * RT * sizeof *p);
    for (size_t r = 0; r < count; r++) {
        const float *row = x + r * d;
        for (uint32_t j = 0; j < d; j++) p[(size_t)j * RT + r] = row[j];
    }
    /* Norms from the panel: 32 independent sums the compiler can vectorise
     * (a row at a time would be a chain of d dependent additions). */
    float acc[RT] = {0};
    for (uint32_t j = 0; j < d; j++)
        for (int r = 0; r < RT; r++) acc[r] += p[(size_t)j * RT + r] * p[(size_t)j * RT + r];
    memcpy(norms, acc, sizeof acc);
}

/* AVX-512: 16 rows x 16 dimensions at a time, transposed in registers
 * (4 rounds of 16 shuffles), the norms summed on the way. */
__attribute__((target("avx512f"))) static void transpose16(__m512 v[16])
{
    __m512 t[16], r[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    /* r[4g + c], lane L: dimension 4L + c of rows 4g .. 4g + 3 */
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        r[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 se = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        __m512 so = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        __m512 ue = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        __m512 uo = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        v[c] = _mm512_shuffle_f32x4(se, ue, 0x88);
        v[8 + c] = _mm512_shuffle_f32x4(se, ue, 0xDD);
        v[4 + c] = _mm512_shuffle_f32x4(so, uo, 0x88);
        v[12 + c] = _mm512_shuffle_f32x4(so, uo, 0xDD);
    }
}

__attribute__((target("avx512f"))) static void pack_rows_avx512(float *p, float *norms,
                                                                const float *x, size_t count,
                                                                uint32_t d)
{
    for (size_t g = 0; g < RT; g += 16) {
        const size_t rows = count > g ? (count - g < 16 ? count - g : 16) : 0;
        __m512 n = _mm512_setzero_ps();
        for (uint32_t j0 = 0; j0 < d; j0 += 16) {
            const uint32_t w = d - j0 < 16 ? d - j0 : 16;
            const __mmask16 m = (__mmask16)((1u << w) - 1);
            __m512 v[16];
#pragma GCC unroll 16
            for (size_t r = 0; r < 16; r++)
                v[r] = r < rows ? _mm512_maskz_loadu_ps(m, x + (g + r) * d + j0) : _mm512_setzero_ps();
            transpose16(v);
            for (uint32_t j = 0; j < w; j++) {
                _mm512_store_ps(p + (size_t)(j0 + j) * RT + g, v[j]);
                n = _mm512_fmadd_ps(v[j], v[j], n);
            }
        }
        _mm512_storeu_ps(norms + g, n);
    }
}

void annb_gemm_pack_queries(float *qt, const float *q, size_t count, uint32_t d)
{
    if (count < QT) memset(qt, 0, (size_t)d * QT * sizeof *qt);
    for (size_t i = 0; i < count; i++)
        for (uint32_t j = 0; j < d; j++) qt[(size_t)j * QT + i] = q[i * d + j];
}

/* ---- tile kernels ---- */

/* Scalar: the reference the others must agree with on which pairs are
 * candidates (given the same products). */
static int tile_scalar(const float *qt, const float *p, uint32_t d, const float *xa,
                       const float *thr, int l2, float *scores, uint32_t *mask)
{
    float acc[QT][RT] = {{0}};
    for (uint32_t j = 0; j < d; j++)
        for (int i = 0; i < QT; i++) {
            const float a = qt[(size_t)j * QT + i];
            for (int r = 0; r < RT; r++) acc[i][r] += a * p[(size_t)j * RT + r];
        }
    int which = 0;
    for (int i = 0; i < QT; i++) {
        uint32_t m = 0;
        for (int r = 0; r < RT; r++) {
            float v = l2 ? xa[r] - 2 * acc[i][r] : acc[i][r] + xa[r];
            m |= (uint32_t)(l2 ? !(v > thr[i]) : !(v < thr[i])) << r;
        }
        mask[i] = m;
        which |= (m != 0) << i;
    }
    if (which) memcpy(scores, acc, sizeof acc);
    return which;
}

/* AVX2: 6 queries x 16 rows in 12 ymm accumulators (of 16 registers), two
 * row halves x two query halves per tile. The accumulators are named
 * variables: kept in an array, GCC stored them to the stack at every step. */
#define AVX2_STEP(i)                                                                        \
    do {                                                                                    \
        const __m256 ai = _mm256_broadcast_ss(a + (i));                                     \
        c0##i = _mm256_fmadd_ps(ai, b0, c0##i);                                             \
        c1##i = _mm256_fmadd_ps(ai, b1, c1##i);                                             \
    } while (0)

#define AVX2_TEST(i)                                                                        \
    do {                                                                                    \
        const __m256 t = _mm256_broadcast_ss(thr + (i));                                    \
        __m256 k0, k1;                                                                      \
        if (l2) {                                                                           \
            k0 = _mm256_cmp_ps(_mm256_fnmadd_ps(two, c0##i, x0), t, _CMP_NGT_UQ);           \
            k1 = _mm256_cmp_ps(_mm256_fnmadd_ps(two, c1##i, x1), t, _CMP_NGT_UQ);           \
        } else {                                                                            \
            k0 = _mm256_cmp_ps(_mm256_add_ps(c0##i, x0), t, _CMP_NLT_UQ);                   \
            k1 = _mm256_cmp_ps(_mm256_add_ps(c1##i, x1), t, _CMP_NLT_UQ);                   \
        }                                                                                   \
        m[i] = (uint32_t)_mm256_movemask_ps(k0) | (uint32_t)_mm256_movemask_ps(k1) << 8;    \
        any |= m[i];                                                                        \
    } while (0)

#define AVX2_STORE(i)                                                                       \
    do {                                                                                    \
        _mm256_storeu_ps(scores + (i) * RT, c0##i);                                         \
        _mm256_storeu_ps(scores + (i) * RT + 8, c1##i);                                     \
    } while (0)

__attribute__((target("avx2,fma"), noinline)) static uint32_t
half_avx2(const float *qt, const float *p, uint32_t d, const float *xa, const float *thr, int l2,
          float *scores, uint32_t *m)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c05 = c00;
    __m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00, c14 = c00, c15 = c00;
    for (uint32_t j = 0; j < d; j++) {
        const __m256 b0 = _mm256_load_ps(p + (size_t)j * RT), b1 = _mm256_load_ps(p + (size_t)j * RT + 8);
        const float *a = qt + (size_t)j * QT;
        AVX2_STEP(0);
        AVX2_STEP(1);
        AVX2_STEP(2);
        AVX2_STEP(3);
        AVX2_STEP(4);
        AVX2_STEP(5);
    }
    const __m256 x0 = _mm256_loadu_ps(xa), x1 = _mm256_loadu_ps(xa + 8), two = _mm256_set1_ps(2);
    uint32_t any = 0;
    AVX2_TEST(0);
    AVX2_TEST(1);
    AVX2_TEST(2);
    AVX2_TEST(3);
    AVX2_TEST(4);
    AVX2_TEST(5);
    if (!any) return 0;
    AVX2_STORE(0);
    AVX2_STORE(1);
    AVX2_STORE(2);
    AVX2_STORE(3);
    AVX2_STORE(4);
    AVX2_STORE(5);
    return any;
}

__attribute__((target("avx2,fma"))) static int tile_avx2(const float *qt, const float *p,
                                                         uint32_t d, const float *xa,
                                                         const float *thr, int l2,
                                                         float *scores, uint32_t *mask)
{
    uint32_t any = 0, m[QT] = {0};
    for (int h = 0; h < 2; h++) {     /* query half */
        for (int w = 0; w < 2; w++) { /* row half */
            uint32_t part[6] = {0};
            uint32_t got = half_avx2(qt + 6 * h, p + 16 * w, d, xa + 16 * w, thr + 6 * h, l2,
                                     scores + 6 * h * RT + 16 * w, part);
            for (int i = 0; got && i < 6; i++) m[6 * h + i] |= part[i] << (16 * w);
            any |= got;
        }
    }
    if (!any) return 0;
    /* A half without candidates did not write its scores: the tile's
     * candidates are all in halves that did, so the others are never read. */
    memcpy(mask, m, sizeof m);
    int which = 0;
    for (int i = 0; i < QT; i++) which |= (m[i] != 0) << i;
    return which;
}

/* AVX-512: 12 queries x 32 rows in 24 zmm accumulators (of 32), each
 * query's value a broadcast, two loads of the panel per dimension. */
__attribute__((target("avx512f"))) static int tile_avx512(const float *qt, const float *p,
                                                          uint32_t d, const float *xa,
                                                          const float *thr, int l2,
                                                          float *scores, uint32_t *mask)
{
    __m512 c0[QT], c1[QT];
#pragma GCC unroll 12
    for (int i = 0; i < QT; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (uint32_t j = 0; j < d; j++) {
        const __m512 b0 = _mm512_load_ps(p + (size_t)j * RT), b1 = _mm512_load_ps(p + (size_t)j * RT + 16);
        const float *a = qt + (size_t)j * QT;
#pragma GCC unroll 12
        for (int i = 0; i < QT; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    const __m512 x0 = _mm512_loadu_ps(xa), x1 = _mm512_loadu_ps(xa + 16), two = _mm512_set1_ps(2);
    uint32_t m[QT];
    int which = 0;
#pragma GCC unroll 12
    for (int i = 0; i < QT; i++) {
        const __m512 t = _mm512_set1_ps(thr[i]);
        __mmask16 k0, k1;
        if (l2) {
            k0 = _mm512_cmp_ps_mask(_mm512_fnmadd_ps(two, c0[i], x0), t, _CMP_NGT_UQ);
            k1 = _mm512_cmp_ps_mask(_mm512_fnmadd_ps(two, c1[i], x1), t, _CMP_NGT_UQ);
        } else {
            k0 = _mm512_cmp_ps_mask(_mm512_add_ps(c0[i], x0), t, _CMP_NLT_UQ);
            k1 = _mm512_cmp_ps_mask(_mm512_add_ps(c1[i], x1), t, _CMP_NLT_UQ);
        }
        m[i] = (uint32_t)k0 | (uint32_t)k1 << 16;
        which |= (m[i] != 0) << i;
    }
    if (!which) return 0;
#pragma GCC unroll 12
    for (int i = 0; i < QT; i++) {
        _mm512_storeu_ps(scores + i * RT, c0[i]);
        _mm512_storeu_ps(scores + i * RT + 16, c1[i]);
        mask[i] = m[i];
    }
    return which;
}

annb_gemm_kernels annb_gemm_pick(void)
{
    /* kernels.c's choice, so that one rule (and one ANNB_KERNEL) picks the
     * instruction set of every scan. */
    const char *k = annb_exact_kernel();
    if (strcmp(k, "avx512") == 0) return (annb_gemm_kernels){"avx512", tile_avx512, pack_rows_avx512};
    if (strcmp(k, "avx2") == 0) return (annb_gemm_kernels){"avx2", tile_avx2, pack_rows_scalar};
    return (annb_gemm_kernels){"scalar", tile_scalar, pack_rows_scalar};
}
