/* exact.c - exact top-k over vectors in place (see exact.h). */
#include "exact.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
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

annb_score_block_fn annb_exact_score_fn(annb_metric m)
{
    kernel kn = pick_kernel();
    return m == ANNB_METRIC_L2 ? kn.l2 : kn.dot;
}

/* ---- top-k: a binary heap whose root is the worst kept result ---- */

typedef annb_topk topk;

void annb_topk_init(annb_topk *h, float *score, int64_t *row, size_t k, annb_metric m)
{
    *h = (annb_topk){score, row, 0, k, m == ANNB_METRIC_L2};
}

/* Is (s, r) better than (t, u)? Ties: the lower row, so results do not
 * depend on the scan order. A NaN score (a damaged vector in a bulk
 * section, SPEC 3.11) is worse than every number: compared as a number it
 * would be neither better nor worse, and a NaN at the heap's root would keep
 * every later row out. */
static inline int better(const topk *h, float s, int64_t r, float t, int64_t u)
{
    if (s != t) {
        if (s != s) return 0;
        if (t != t) return 1;
        return h->lower_first ? s < t : s > t;
    }
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

/* The top k of a union is the top k of the tops: with ties broken by row,
 * the order is total, so any split of the rows merges to the same result. */
void annb_topk_merge(annb_topk *dst, const annb_topk *src)
{
    for (size_t i = 0; i < src->size; i++) topk_push(dst, src->score[i], src->row[i]);
}

void annb_topk_finish(annb_topk *h)
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

int annb_row_filter_passes(const annb_row_filter *f, size_t qi, int64_t row)
{
    return passes(f, qi, row);
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

void annb_exact_scan(annb_score_block_fn fn, const float *x, size_t count, uint32_t d,
                     const float *q, const uint32_t *rows, int64_t first_row,
                     const annb_row_filter *f, size_t qi, annb_topk *h)
{
    float s[ANNB_SCAN_ROWS];
    for (size_t r0 = 0; r0 < count; r0 += ANNB_SCAN_ROWS) {
        size_t b = count - r0 < ANNB_SCAN_ROWS ? count - r0 : ANNB_SCAN_ROWS;
        fn(x + r0 * d, q, d, b, s);
        /* Two loops rather than a test per row: this is the hot loop. */
        if (rows)
            for (size_t j = 0; j < b; j++) offer(h, f, qi, s[j], (int64_t)rows[r0 + j]);
        else
            for (size_t j = 0; j < b; j++) offer(h, f, qi, s[j], first_row + (int64_t)(r0 + j));
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
/* Fewer rows than this per thread: starting the thread costs more than it saves. */
#define ANNB_THREAD_MIN_ROWS 32768

/* One query batch's rows split among threads: thread t scans its share of
 * the rows for every query into its own heaps[t * nq + i]. */
typedef struct row_split {
    const float *vecs;
    uint64_t n;
    uint32_t d;
    annb_score_block_fn fn;
    const float *q;
    size_t nq;
    const annb_row_filter *f;
    int threads;
    topk *heaps;
} row_split;

static void row_split_run(void *ctx, int t)
{
    const row_split *j = ctx;
    uint64_t lo = j->n * (uint64_t)t / (uint64_t)j->threads;
    uint64_t hi = j->n * (uint64_t)(t + 1) / (uint64_t)j->threads;
    for (size_t i = 0; i < j->nq; i++)
        annb_exact_scan(j->fn, j->vecs + lo * j->d, (size_t)(hi - lo), j->d, j->q + i * j->d, NULL,
                        (int64_t)lo, j->f, i, &j->heaps[(size_t)t * j->nq + i]);
}

int annb_exact_search_threads(const float *vecs, uint64_t n, uint32_t d, annb_metric m,
                              const float *q, size_t nq, size_t k, const annb_row_filter *filter,
                              int threads, float *scores, int64_t *rows)
{
    if (k == 0 || nq == 0) return ANNB_OK; /* nothing to write; a heap of 0 slots has no root */
    if (nq >= ANNB_BLAS_MIN_QUERIES) threads = 1;
    if (threads < 1) threads = 1;
    if ((uint64_t)threads > n / ANNB_THREAD_MIN_ROWS) threads = (int)(n / ANNB_THREAD_MIN_ROWS);
    if (threads < 1) threads = 1;
    /* Thread 0 fills the caller's arrays; the others get scratch slots. */
    size_t extra = (size_t)(threads - 1) * nq * k;
    topk *heaps = malloc((size_t)threads * nq * sizeof *heaps);
    float *xs = extra ? malloc(extra * sizeof *xs) : NULL;
    int64_t *xr = extra ? malloc(extra * sizeof *xr) : NULL;
    if (!heaps || (extra && (!xs || !xr))) {
        free(heaps);
        free(xs);
        free(xr);
        return ANNB_E_NOMEM;
    }
    for (size_t i = 0; i < nq; i++) annb_topk_init(&heaps[i], scores + i * k, rows + i * k, k, m);
    for (size_t i = 0; i < extra / k; i++)
        annb_topk_init(&heaps[nq + i], xs + i * k, xr + i * k, k, m);
    int rc = ANNB_OK;
    if (nq >= ANNB_BLAS_MIN_QUERIES) {
        rc = scan_blas(vecs, n, d, m == ANNB_METRIC_L2, q, nq, filter, heaps);
    } else {
        row_split job = {vecs, n, d, annb_exact_score_fn(m), q, nq, filter, threads, heaps};
        annb_run_threads(threads, row_split_run, &job);
        for (size_t i = 0; i < nq; i++)
            for (int t = 1; t < threads; t++) annb_topk_merge(&heaps[i], &heaps[(size_t)t * nq + i]);
    }
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++) annb_topk_finish(&heaps[i]);
    free(heaps);
    free(xs);
    free(xr);
    return rc;
}

int annb_exact_search(const float *vecs, uint64_t n, uint32_t d, annb_metric m, const float *q,
                      size_t nq, size_t k, const annb_row_filter *filter, float *scores,
                      int64_t *rows)
{
    return annb_exact_search_threads(vecs, n, d, m, q, nq, k, filter, 1, scores, rows);
}

/* ---- threads ---- */

/* POSIX threads, not OpenMP: the C sources are not compiled with -fopenmp
 * (CMake's OpenMP::OpenMP_CXX adds it to C++ only), and a search is a few
 * threads for a few milliseconds, for which creating them is cheap enough. */
typedef struct thread_arg {
    void (*fn)(void *, int);
    void *ctx;
    int t;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    a->fn(a->ctx, a->t);
    return NULL;
}

#define ANNB_MAX_THREADS 256

void annb_run_threads(int threads, void (*fn)(void *ctx, int t), void *ctx)
{
    pthread_t tid[ANNB_MAX_THREADS];
    thread_arg arg[ANNB_MAX_THREADS];
    int started[ANNB_MAX_THREADS];
    if (threads > ANNB_MAX_THREADS) threads = ANNB_MAX_THREADS;
    for (int t = 1; t < threads; t++) {
        arg[t] = (thread_arg){fn, ctx, t};
        started[t] = pthread_create(&tid[t], NULL, thread_main, &arg[t]) == 0;
    }
    fn(ctx, 0);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else fn(ctx, t); /* no thread: same work, later */
    }
}

/* ---- nearest of a few thousand vectors, for many rows (IVF assignment) ---- */

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
        bias[v] = v >= nc ? -INFINITY : l2 ? -dot_scalar(c + v * d, c + v * d, d) : 0;
    }
    const char *kn = annb_exact_kernel();
    if (threads < 1) threads = 1;
    near_job jb = {x, n, d, panels, panel, bias, l2 ? 2.0f : 1.0f,
                   !strcmp(kn, "avx512") ? 2 : !strcmp(kn, "avx2"), threads, best, dist};
    annb_run_threads(threads, near_run, &jb);
    for (uint64_t i = 0; dist && l2 && i < n; i++) /* |x|^2 - (2 x.c - |c|^2) */
        dist[i] = dot_scalar(x + i * d, x + i * d, d) - dist[i];
    free(panel);
    free(bias);
    return ANNB_OK;
}
