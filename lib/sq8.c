/* sq8.c - 8-bit scalar codes and their score kernels (see sq8.h). */
#include "sq8.h"
#include "kernels.h" /* annb_exact_kernel: one CPU dispatch rule */

#include <immintrin.h>
#include <math.h>
#include <string.h>

void annb_sq8_train(float *params, const float *x, uint64_t n, uint32_t d)
{
    float *lo = params, *hi = params + d; /* hi becomes step */
    memcpy(lo, x, d * sizeof *lo);
    memcpy(hi, x, d * sizeof *hi);
    /* Row by row (one pass over x), each dimension's values in row order. */
    for (uint64_t i = 1; i < n; i++)
        for (uint32_t j = 0; j < d; j++) {
            float v = x[i * d + j];
            lo[j] = v < lo[j] ? v : lo[j];
            hi[j] = v > hi[j] ? v : hi[j];
        }
    for (uint32_t j = 0; j < d; j++) hi[j] = hi[j] > lo[j] ? (hi[j] - lo[j]) / 255.0f : 1.0f;
}

void annb_sq8_encode(uint8_t *codes, const float *params, const float *x, uint64_t n, uint32_t d)
{
    const float *lo = params, *step = params + d;
    for (uint64_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < d; j++) {
            float c = rintf((x[i * d + j] - lo[j]) / step[j]);
            codes[i * d + j] = (uint8_t)(c < 0 ? 0 : c > 255 ? 255 : c);
        }
}

int64_t annb_sq8_check(const float *params, uint32_t d)
{
    for (uint32_t j = 0; j < d; j++)
        if (!isfinite(params[j])) return j;
    for (uint32_t j = 0; j < d; j++)
        if (!isfinite(params[d + j]) || !(params[d + j] > 0)) return (int64_t)d + j;
    return -1;
}

void annb_sq8_prepare(float *prep, const annb_sq8 *sq, annb_metric m, const float *q)
{
    uint32_t d = sq->d;
    if (m == ANNB_METRIC_L2) {
        for (uint32_t j = 0; j < d; j++) {
            prep[j] = (q[j] - sq->lo[j]) / sq->step[j];
            prep[d + j] = sq->step[j] * sq->step[j];
        }
    } else {
        for (uint32_t j = 0; j < d; j++) prep[j] = q[j] * sq->step[j];
    }
}

static float dot_scalar(const uint8_t *c, const float *w, uint32_t d)
{
    float s = 0;
    for (uint32_t j = 0; j < d; j++) s += w[j] * (float)c[j];
    return s;
}

static float l2_scalar(const uint8_t *c, const float *p, uint32_t d)
{
    float s = 0;
    for (uint32_t j = 0; j < d; j++) {
        float t = p[j] - (float)c[j];
        s += p[d + j] * t * t;
    }
    return s;
}

__attribute__((target("avx2,fma"))) static float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const uint8_t *c, const float *w,
                                                          uint32_t d)
{
    __m256 a = _mm256_setzero_ps();
    uint32_t j = 0;
    for (; j + 8 <= d; j += 8) {
        __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const void *)(c + j))));
        a = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + j), a);
    }
    float s = hsum8(a);
    for (; j < d; j++) s += w[j] * (float)c[j];
    return s;
}

__attribute__((target("avx2,fma"))) static float l2_avx2(const uint8_t *c, const float *p,
                                                         uint32_t d)
{
    __m256 a = _mm256_setzero_ps();
    uint32_t j = 0;
    for (; j + 8 <= d; j += 8) {
        __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const void *)(c + j))));
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(p + j), v);
        a = _mm256_fmadd_ps(_mm256_mul_ps(t, t), _mm256_loadu_ps(p + d + j), a);
    }
    float s = hsum8(a);
    for (; j < d; j++) {
        float t = p[j] - (float)c[j];
        s += p[d + j] * t * t;
    }
    return s;
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static float dot_avx512(const uint8_t *c,
                                                                            const float *w,
                                                                            uint32_t d)
{
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    uint32_t j = 0;
    for (; j + 32 <= d; j += 32) {
        __m512 v0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(c + j))));
        __m512 v1 =
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(c + j + 16))));
        a = _mm512_fmadd_ps(v0, _mm512_loadu_ps(w + j), a);
        b = _mm512_fmadd_ps(v1, _mm512_loadu_ps(w + j + 16), b);
    }
    a = _mm512_add_ps(a, b);
    for (; j < d; j += 16) { /* the tail under a mask: no read past the row */
        __mmask16 m = d - j >= 16 ? 0xffff : (__mmask16)((1u << (d - j)) - 1);
        __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c + j)));
        a = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, w + j), a);
    }
    return _mm512_reduce_add_ps(a);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static float l2_avx512(const uint8_t *c,
                                                                           const float *p,
                                                                           uint32_t d)
{
    __m512 a = _mm512_setzero_ps();
    for (uint32_t j = 0; j < d; j += 16) {
        __mmask16 m = d - j >= 16 ? 0xffff : (__mmask16)((1u << (d - j)) - 1);
        __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c + j)));
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + j), v);
        a = _mm512_fmadd_ps(_mm512_mul_ps(t, t), _mm512_maskz_loadu_ps(m, p + d + j), a);
    }
    return _mm512_reduce_add_ps(a);
}

annb_sq8_score_fn annb_sq8_score_fn_for(annb_metric m)
{
    const char *k = annb_exact_kernel();
    int l2 = m == ANNB_METRIC_L2;
    /* kernels.c picks AVX-512 on avx512f alone; the byte loads need BW and VL. */
    if (!strcmp(k, "avx512") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return l2 ? l2_avx512 : dot_avx512;
    if (strcmp(k, "scalar")) return l2 ? l2_avx2 : dot_avx2;
    return l2 ? l2_scalar : dot_scalar;
}

/* ---- the integer score (ip, cosine) ---- */

void annb_sq8_query_i8(int8_t *wq, const annb_sq8 *sq, const float *q)
{
    uint32_t d = sq->d;
    float mx = 0;
    for (uint32_t j = 0; j < d; j++) {
        float a = fabsf(q[j] * sq->step[j]);
        if (!(a <= 3.0e38f)) { /* NaN or infinite: no order to keep */
            memset(wq, 0, d);
            return;
        }
        mx = a > mx ? a : mx;
    }
    /* A subnormal largest weight makes the scale infinite: a zero weight
     * times it is NaN (found by fuzz_bundle), kept 0; the others clamp. */
    float scale = mx > 0 ? 127.0f / mx : 0.0f;
    for (uint32_t j = 0; j < d; j++) {
        float v = rintf(q[j] * sq->step[j] * scale);
        wq[j] = (int8_t)(v != v ? 0 : v > 127 ? 127 : v < -127 ? -127 : v);
    }
}

/* Rows scored ahead of the one being fetched: the codes of a node's fresh
 * neighbours are random lines, so a few misses are kept in flight. */
#define SQ8_PREFETCH 4

static void dots_scalar(const uint8_t *codes, uint32_t d, const uint32_t *pos, uint32_t m,
                        const int8_t *wq, int32_t *out)
{
    for (uint32_t i = 0; i < m; i++) {
        const uint8_t *c = codes + (size_t)pos[i] * d;
        int32_t s = 0;
        for (uint32_t j = 0; j < d; j++) s += (int32_t)wq[j] * (int32_t)c[j];
        out[i] = s;
    }
}

__attribute__((target("avx2"))) static void dots_avx2(const uint8_t *codes, uint32_t d,
                                                      const uint32_t *pos, uint32_t m,
                                                      const int8_t *wq, int32_t *out)
{
    for (uint32_t i = 0; i < m && i < SQ8_PREFETCH; i++)
        __builtin_prefetch(codes + (size_t)pos[i] * d);
    for (uint32_t i = 0; i < m; i++) {
        if (i + SQ8_PREFETCH < m) __builtin_prefetch(codes + (size_t)pos[i + SQ8_PREFETCH] * d);
        const uint8_t *c = codes + (size_t)pos[i] * d;
        __m256i a = _mm256_setzero_si256();
        uint32_t j = 0;
        /* u8 and s8 widened to s16, pairs multiplied and added into s32:
         * exact (pmaddubsw would saturate at 255 x 127 x 2). */
        for (; j + 16 <= d; j += 16) {
            __m256i cv = _mm256_cvtepu8_epi16(_mm_loadu_si128((const void *)(c + j)));
            __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(wq + j)));
            a = _mm256_add_epi32(a, _mm256_madd_epi16(cv, wv));
        }
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        int32_t t = _mm_cvtsi128_si32(s);
        for (; j < d; j++) t += (int32_t)wq[j] * (int32_t)c[j];
        out[i] = t;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void
dots_vnni(const uint8_t *codes, uint32_t d, const uint32_t *pos, uint32_t m, const int8_t *wq,
          int32_t *out)
{
    for (uint32_t i = 0; i < m && i < SQ8_PREFETCH; i++)
        __builtin_prefetch(codes + (size_t)pos[i] * d);
    if (d == 64) { /* the common case: one line per code, the query in a register */
        __m512i w = _mm512_loadu_si512(wq);
        for (uint32_t i = 0; i < m; i++) {
            if (i + SQ8_PREFETCH < m) __builtin_prefetch(codes + (size_t)pos[i + SQ8_PREFETCH] * d);
            __m512i c = _mm512_loadu_si512(codes + (size_t)pos[i] * d);
            out[i] = _mm512_reduce_add_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), c, w));
        }
        return;
    }
    for (uint32_t i = 0; i < m; i++) {
        if (i + SQ8_PREFETCH < m) __builtin_prefetch(codes + (size_t)pos[i + SQ8_PREFETCH] * d);
        const uint8_t *c = codes + (size_t)pos[i] * d;
        __m512i a = _mm512_setzero_si512();
        for (uint32_t j = 0; j < d; j += 64) { /* the tail under a mask: no read past the row */
            __mmask64 k = d - j >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (d - j)) - 1);
            a = _mm512_dpbusd_epi32(a, _mm512_maskz_loadu_epi8(k, c + j),
                                    _mm512_maskz_loadu_epi8(k, wq + j));
        }
        out[i] = _mm512_reduce_add_epi32(a);
    }
}

static int have_vnni(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

annb_sq8_dots_fn annb_sq8_dots_fn_named(const char *name)
{
    if (!strcmp(name, "vnni")) return have_vnni() ? dots_vnni : NULL;
    if (!strcmp(name, "avx2")) return __builtin_cpu_supports("avx2") ? dots_avx2 : NULL;
    if (!strcmp(name, "scalar")) return dots_scalar;
    return NULL;
}

annb_sq8_dots_fn annb_sq8_dots_fn_for(void)
{
    const char *k = annb_exact_kernel();
    if (!strcmp(k, "avx512") && have_vnni()) return dots_vnni;
    if (strcmp(k, "scalar")) return dots_avx2;
    return dots_scalar;
}
