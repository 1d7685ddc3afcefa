/* exact.c - exact top-k over vectors in place (see exact.h). */
#include "exact.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- score kernels: dot product or squared L2 of one row with q ---- */

static float dot_scalar(const float *x, const float *q, uint32_t d)
{
    float s = 0;
    for (uint32_t j = 0; j < d; j++) s += x[j] * q[j];
    return s;
}

static float l2_scalar(const float *x, const float *q, uint32_t d)
{
    float s = 0;
    for (uint32_t j = 0; j < d; j++) s += (x[j] - q[j]) * (x[j] - q[j]);
    return s;
}

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

typedef float (*score_fn)(const float *, const float *, uint32_t);

/* Scores of `rows` consecutive rows: one call per block, not per row, so the
 * query stays in registers and the loop has no indirect call. */
typedef void (*block_fn)(const float *x, const float *q, uint32_t d, size_t rows, float *out);

#define BLOCK_KERNEL(name, isa, score)                                                      \
    __attribute__((target(isa))) static void name(const float *x, const float *q,             \
                                                      uint32_t d, size_t rows, float *out)     \
    {                                                                                          \
        for (size_t r = 0; r < rows; r++) out[r] = score(x + r * d, q, d);                     \
    }

BLOCK_KERNEL(dot_block_scalar, "default", dot_scalar)
BLOCK_KERNEL(l2_block_scalar, "default", l2_scalar)
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
    for (; r < rows; r++) out[r] = dot_avx512(x + r * d, q, d);
}

BLOCK_KERNEL(l2_block_avx512, "avx512f", l2_avx512)

typedef struct kernel {
    const char *name;
    block_fn dot, l2;
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

/* ---- top-k: a binary heap whose root is the worst kept result ---- */

typedef struct topk {
    float *score;
    int64_t *row;
    size_t size, k;
    int lower_first; /* l2 */
} topk;

/* Is (s, r) better than (t, u)? Ties: the lower row, so results do not
 * depend on the scan order. */
static inline int better(const topk *h, float s, int64_t r, float t, int64_t u)
{
    if (s != t) return h->lower_first ? s < t : s > t;
    return r < u;
}

static void sift_down(topk *h, size_t i)
{
    for (;;) {
        size_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < h->size && better(h, h->score[w], h->row[w], h->score[l], h->row[l])) w = l;
        if (r < h->size && better(h, h->score[w], h->row[w], h->score[r], h->row[r])) w = r;
        if (w == i) return;
        float ts = h->score[i];
        int64_t tr = h->row[i];
        h->score[i] = h->score[w];
        h->row[i] = h->row[w];
        h->score[w] = ts;
        h->row[w] = tr;
        i = w;
    }
}

static inline void topk_push(topk *h, float s, int64_t r)
{
    if (h->size < h->k) {
        size_t i = h->size++;
        h->score[i] = s;
        h->row[i] = r;
        while (i && better(h, h->score[(i - 1) / 2], h->row[(i - 1) / 2], s, r)) {
            h->score[i] = h->score[(i - 1) / 2];
            h->row[i] = h->row[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h->score[i] = s;
        h->row[i] = r;
    } else if (better(h, s, r, h->score[0], h->row[0])) {
        h->score[0] = s;
        h->row[0] = r;
        sift_down(h, 0);
    }
}

/* Sorts the heap best first in place; fills the slots past its size. */
static void topk_finish(topk *h)
{
    size_t n = h->size;
    while (h->size > 1) { /* heap sort: the worst goes to the end */
        size_t last = --h->size;
        float ts = h->score[0];
        int64_t tr = h->row[0];
        h->score[0] = h->score[last];
        h->row[0] = h->row[last];
        h->score[last] = ts;
        h->row[last] = tr;
        sift_down(h, 0);
    }
    for (size_t i = n; i < h->k; i++) {
        h->score[i] = NAN;
        h->row[i] = -1;
    }
}

/* ---- filters ---- */

static int in_sorted_i64(const int64_t *a, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && a[lo] == x;
}

static int in_sorted_u32(const uint32_t *a, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((int64_t)a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && (int64_t)a[lo] == x;
}

static inline int passes(const annb_row_filter *f, size_t qi, int64_t row)
{
    if (!f) return 1;
    if (f->allowed && !(f->allowed[row / 8] >> (row % 8) & 1)) return 0;
    if (f->nskip && in_sorted_i64(f->skip, f->nskip, row)) return 0;
    if (f->extra && f->extra[qi] && in_sorted_u32(f->extra[qi], f->extra_count[qi], row)) return 0;
    return 1;
}

/* A candidate is checked against the filter only if it would enter the
 * top-k: filters cost nothing on the rows that lose anyway. */
static inline void offer(topk *h, const annb_row_filter *f, size_t qi, float s, int64_t row)
{
    if (h->size == h->k && !better(h, s, row, h->score[0], h->row[0])) return;
    if (passes(f, qi, row)) topk_push(h, s, row);
}

/* ---- the scans ---- */

/* Rows per block: the block's scores stay in L1 (scan) or L2 (BLAS). */
#define ANNB_SCAN_ROWS 256
#define ANNB_BLOCK_ROWS 8192

static void scan_one(const float *vecs, uint64_t n, uint32_t d, int l2, const kernel *kn,
                     const float *q, const annb_row_filter *f, size_t qi, topk *h)
{
    block_fn fn = l2 ? kn->l2 : kn->dot;
    float s[ANNB_SCAN_ROWS];
    for (uint64_t r0 = 0; r0 < n; r0 += ANNB_SCAN_ROWS) {
        size_t b = n - r0 < ANNB_SCAN_ROWS ? (size_t)(n - r0) : ANNB_SCAN_ROWS;
        fn(vecs + r0 * d, q, d, b, s);
        for (size_t j = 0; j < b; j++) offer(h, f, qi, s[j], (int64_t)(r0 + j));
    }
}

static int scan_blas(const float *vecs, uint64_t n, uint32_t d, int l2, const float *q, size_t nq,
                     const annb_row_filter *f, topk *heaps)
{
    float *s = malloc(nq * ANNB_BLOCK_ROWS * sizeof *s);
    float *qn = l2 ? malloc(nq * sizeof *qn) : NULL, *xn = l2 ? malloc(ANNB_BLOCK_ROWS * sizeof *xn) : NULL;
    if (!s || (l2 && (!qn || !xn))) {
        free(s);
        free(qn);
        free(xn);
        return ANNB_E_NOMEM;
    }
    for (size_t i = 0; l2 && i < nq; i++) qn[i] = dot_scalar(q + i * d, q + i * d, d);
    for (uint64_t r0 = 0; r0 < n; r0 += ANNB_BLOCK_ROWS) {
        int b = (int)(n - r0 < ANNB_BLOCK_ROWS ? n - r0 : ANNB_BLOCK_ROWS);
        const float *x = vecs + r0 * d;
        /* s (nq x b) = q (nq x d) * x^T (d x b) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, b, (int)d, 1.0f, q, (int)d,
                    x, (int)d, 0.0f, s, b);
        for (int j = 0; l2 && j < b; j++) xn[j] = dot_scalar(x + (size_t)j * d, x + (size_t)j * d, d);
        for (size_t i = 0; i < nq; i++)
            for (int j = 0; j < b; j++) {
                int64_t row = (int64_t)(r0 + (uint64_t)j);
                if (!l2) {
                    offer(&heaps[i], f, i, s[i * b + j], row);
                    continue;
                }
                /* |x-q|^2 = |q|^2 + |x|^2 - 2 x.q cancels badly for near
                 * neighbours: use it only to discard rows that cannot enter
                 * the top-k (with a margin for that error), and score the
                 * others directly. */
                float approx = qn[i] + xn[j] - 2 * s[i * b + j];
                float margin = 1e-4f * (qn[i] + xn[j]) + 1e-30f;
                topk *h = &heaps[i];
                if (h->size == h->k && approx - margin > h->score[0]) continue;
                offer(h, f, i, l2_scalar(x + (size_t)j * d, q + i * d, d), row);
            }
    }
    free(s);
    free(qn);
    free(xn);
    return ANNB_OK;
}

/* From this many queries on, a matrix multiply beats one scan per query. */
#define ANNB_BLAS_MIN_QUERIES 8

int annb_exact_search(const float *vecs, uint64_t n, uint32_t d, annb_metric m, const float *q,
                      size_t nq, size_t k, const annb_row_filter *filter, float *scores,
                      int64_t *rows)
{
    int l2 = m == ANNB_METRIC_L2;
    topk *heaps = malloc(nq * sizeof *heaps);
    if (!heaps) return ANNB_E_NOMEM;
    for (size_t i = 0; i < nq; i++)
        heaps[i] = (topk){scores + i * k, rows + i * k, 0, k, l2};
    int rc = ANNB_OK;
    if (nq >= ANNB_BLAS_MIN_QUERIES) {
        rc = scan_blas(vecs, n, d, l2, q, nq, filter, heaps);
    } else {
        kernel kn = pick_kernel();
        for (size_t i = 0; i < nq; i++) scan_one(vecs, n, d, l2, &kn, q + i * d, filter, i, &heaps[i]);
    }
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++) topk_finish(&heaps[i]);
    free(heaps);
    return rc;
}
