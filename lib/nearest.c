/* nearest.c - the nearest of a few thousand vectors for many rows, fused
 * with the multiply (see nearest.h). */
#include "nearest.h"
#include "kernels.h"
#include "threads.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows x vectors is a matrix multiply, but k = 1 needs no score matrix:
 * each tile of NEAR_ROWS rows runs over every panel of 16 vectors with the
 * dot products in registers, and only the best survives. Every (row,
 * vector) score is summed in the same order whatever the tile, thread or
 * position, so the choice never depends on the split. "Better" is larger
 * s = mul * x.c + bias: ip: x.c (bias 0); l2: 2 x.c - |c|^2, which orders
 * vectors as |x - c|^2 does for a fixed x. Padding vectors get bias -inf. */
#define NEAR_ROWS 8
#define NEAR_LANES 16

typedef struct near_job {
    const float *x; /* n x d */
    uint64_t n;
    uint32_t d, panels;
    const float *panel; /* panels x d x 16: panel[p][j][l] = c[16p + l][j] */
    const float *bias;  /* panels x 16 */
    float mul;
    int isa; /* 2: AVX-512, 1: AVX2, 0: scalar */
    int threads;
    int64_t *best;
    float *score; /* the best s per row */
} near_job;

/* Keeps, per lane, the better of (s, its vector number) and the best so far. */
#define NEAR_KEEP(s, bv, bx, idx)                                                                \
    do {                                                                                         \
        __mmask16 k_ = _mm512_cmp_ps_mask(s, bv, _CMP_GT_OQ); /* strict: earlier wins ties */    \
        bv = _mm512_mask_mov_ps(bv, k_, s);                                                      \
        bx = _mm512_mask_mov_epi32(bx, k_, idx);                                                 \
    } while (0)

/* Written out for 8 rows: at -O2 GCC keeps arrays of vectors in memory. */
__attribute__((target("avx512f"))) static void near_tile_avx512(const near_job *jb,
                                                                const float *const *x, float *bs,
                                                                int64_t *bi)
{
    const uint32_t d = jb->d;
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3], *x4 = x[4], *x5 = x[5],
                *x6 = x[6], *x7 = x[7];
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 mul = _mm512_set1_ps(jb->mul);
    __m512 v0 = _mm512_set1_ps(-INFINITY), v1 = v0, v2 = v0, v3 = v0, v4 = v0, v5 = v0, v6 = v0,
           v7 = v0;
    __m512i i0 = _mm512_setzero_si512(), i1 = i0, i2 = i0, i3 = i0, i4 = i0, i5 = i0, i6 = i0,
            i7 = i0;
    for (uint32_t p = 0; p < jb->panels; p++) {
        const float *c = jb->panel + (size_t)p * d * NEAR_LANES;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
               a7 = a0;
        for (uint32_t j = 0; j < d; j++) {
            __m512 cj = _mm512_loadu_ps(c + (size_t)j * NEAR_LANES);
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(x0[j]), cj, a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(x1[j]), cj, a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(x2[j]), cj, a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(x3[j]), cj, a3);
            a4 = _mm512_fmadd_ps(_mm512_set1_ps(x4[j]), cj, a4);
            a5 = _mm512_fmadd_ps(_mm512_set1_ps(x5[j]), cj, a5);
            a6 = _mm512_fmadd_ps(_mm512_set1_ps(x6[j]), cj, a6);
            a7 = _mm512_fmadd_ps(_mm512_set1_ps(x7[j]), cj, a7);
        }
        __m512 bias = _mm512_loadu_ps(jb->bias + (size_t)p * NEAR_LANES);
        __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)(p * NEAR_LANES)), iota);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a0, bias), v0, i0, idx);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a1, bias), v1, i1, idx);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a2, bias), v2, i2, idx);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a3, bias), v3, i3, idx);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a4, bias), v4, i4, idx);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a5, bias), v5, i5, idx);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a6, bias), v6, i6, idx);
        NEAR_KEEP(_mm512_fmadd_ps(mul, a7, bias), v7, i7, idx);
    }
    __m512 bv[NEAR_ROWS] = {v0, v1, v2, v3, v4, v5, v6, v7};
    __m512i bx[NEAR_ROWS] = {i0, i1, i2, i3, i4, i5, i6, i7};
    for (int r = 0; r < NEAR_ROWS; r++) { /* best lane; among equal ones the lower vector */
        float m = _mm512_reduce_max_ps(bv[r]);
        __mmask16 eq = _mm512_cmp_ps_mask(bv[r], _mm512_set1_ps(m), _CMP_EQ_OQ);
        bs[r] = m;
        bi[r] = eq ? _mm512_mask_reduce_min_epi32(eq, bx[r]) : 0;
    }
}

/* The same per-lane algorithm in plain C (the compiler vectorises the lane
 * loops for the target), for CPUs without AVX-512. */
#define NEAR_TILE_GENERIC(name, isa)                                                          \
    __attribute__((target(isa))) static void name(const near_job *jb, const float *const *x, \
                                                      float *bs, int64_t *bi)                 \
    {                                                                                         \
        const uint32_t d = jb->d;                                                             \
        float bv[NEAR_ROWS][NEAR_LANES], a[NEAR_ROWS][NEAR_LANES];                            \
        int32_t bx[NEAR_ROWS][NEAR_LANES];                                                    \
        for (int r = 0; r < NEAR_ROWS; r++)                                                   \
            for (int l = 0; l < NEAR_LANES; l++) {                                            \
                bv[r][l] = -INFINITY;                                                         \
                bx[r][l] = 0;                                                                 \
            }                                                                                 \
        for (uint32_t p = 0; p < jb->panels; p++) {                                           \
            const float *c = jb->panel + (size_t)p * d * NEAR_LANES;                          \
            memset(a, 0, sizeof a);                                                           \
            for (uint32_t j = 0; j < d; j++)                                                  \
                for (int r = 0; r < NEAR_ROWS; r++)                                           \
                    for (int l = 0; l < NEAR_LANES; l++)                                      \
                        a[r][l] += x[r][j] * c[(size_t)j * NEAR_LANES + l];                     \
            for (int r = 0; r < NEAR_ROWS; r++)                                               \
                for (int l = 0; l < NEAR_LANES; l++) {                                        \
                    float s = jb->mul * a[r][l] + jb->bias[(size_t)p * NEAR_LANES + l];       \
                    int gt = s > bv[r][l];                                                    \
                    bv[r][l] = gt ? s : bv[r][l];                                             \
                    bx[r][l] = gt ? (int32_t)(p * NEAR_LANES + (uint32_t)l) : bx[r][l];       \
                }                                                                             \
        }                                                                                     \
        for (int r = 0; r < NEAR_ROWS; r++) {                                                 \
            int w = 0;                                                                        \
            for (int l = 1; l < NEAR_LANES; l++)                                              \
                if (bv[r][l] > bv[r][w] || (bv[r][l] == bv[r][w] && bx[r][l] < bx[r][w])) w = l; \
            bs[r] = bv[r][w];                                                                 \
            bi[r] = bx[r][w];                                                                 \
        }                                                                                     \
    }

NEAR_TILE_GENERIC(near_tile_scalar, "default")
NEAR_TILE_GENERIC(near_tile_avx2, "avx2,fma")

static void near_run(void *ctx, int t)
{
    const near_job *jb = ctx;
    uint64_t tiles = (jb->n + NEAR_ROWS - 1) / NEAR_ROWS;
    const float *x[NEAR_ROWS];
    float bs[NEAR_ROWS];
    int64_t bi[NEAR_ROWS];
    for (uint64_t tl = tiles * (uint64_t)t / (uint64_t)jb->threads;
         tl < tiles * (uint64_t)(t + 1) / (uint64_t)jb->threads; tl++) {
        uint64_t r0 = tl * NEAR_ROWS, rows = jb->n - r0 < NEAR_ROWS ? jb->n - r0 : NEAR_ROWS;
        for (uint64_t r = 0; r < NEAR_ROWS; r++) /* a partial tile repeats its last row */
            x[r] = jb->x + (r0 + (r < rows ? r : rows - 1)) * jb->d;
        if (jb->isa == 2) near_tile_avx512(jb, x, bs, bi);
        else if (jb->isa == 1) near_tile_avx2(jb, x, bs, bi);
        else near_tile_scalar(jb, x, bs, bi);
        for (uint64_t r = 0; r < rows; r++) {
            jb->best[r0 + r] = bi[r];
            if (jb->score) jb->score[r0 + r] = bs[r];
        }
    }
}

int annb_exact_nearest(int64_t *best, float *dist, const float *x, uint64_t n, const float *c,
                       uint32_t nc, uint32_t d, annb_metric m, int threads)
{
    if (!n) return ANNB_OK;
    if (!nc || !d) return ANNB_E_INVALID;
    uint32_t panels = (nc + NEAR_LANES - 1) / NEAR_LANES;
    size_t lanes = (size_t)panels * NEAR_LANES;
    float *panel = malloc(lanes * d * sizeof *panel), *bias = malloc(lanes * sizeof *bias);
    if (!panel || !bias) {
        free(panel);
        free(bias);
        return ANNB_E_NOMEM;
    }
    int l2 = m == ANNB_METRIC_L2;
    for (size_t v = 0; v < lanes; v++) {
        float *dst = panel + (v / NEAR_LANES) * d * NEAR_LANES + v % NEAR_LANES;
        for (uint32_t j = 0; j < d; j++) dst[(size_t)j * NEAR_LANES] = v < nc ? c[v * d + j] : 0;
        bias[v] = v >= nc ? -INFINITY : l2 ? -annb_dot_scalar(c + v * d, c + v * d, d) : 0;
    }
    const char *kn = annb_exact_kernel();
    if (threads < 1) threads = 1;
    near_job jb = {x, n, d, panels, panel, bias, l2 ? 2.0f : 1.0f,
                   !strcmp(kn, "avx512") ? 2 : !strcmp(kn, "avx2"), threads, best, dist};
    annb_run_threads(threads, near_run, &jb);
    for (uint64_t i = 0; dist && l2 && i < n; i++) /* |x|^2 - (2 x.c - |c|^2) */
        dist[i] = annb_dot_scalar(x + i * d, x + i * d, d) - dist[i];
    free(panel);
    free(bias);
    return ANNB_OK;
}
