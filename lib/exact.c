/* exact.c - exact top-k over vectors in place: the scans (see exact.h). */
#include "exact.h"
#include "threads.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

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
static inline void offer(annb_topk *h, const annb_row_filter *f, size_t qi, float s, int64_t row)
{
    if (h->size == h->k && !annb_topk_better(h, s, row, h->score[0], h->row[0])) return;
    if (passes(f, qi, row)) annb_topk_push(h, s, row);
}

/* ---- the scans ---- */

/* Rows per block: the block's scores stay in L1 (scan) or L2 (BLAS). */
#define ANNB_SCAN_ROWS 256
#define ANNB_BLOCK_ROWS 8192
/* Queries per matrix product: 64 x 8192 scores, 2 MB. */
#define ANNB_BLAS_QUERY_BLOCK 64

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

/* Many queries at once: one matrix multiply per block of rows gives every
 * score, but not bit for bit the score the one-query kernels give (another
 * order of additions), so a batch would rank ties and near-ties unlike the
 * same questions asked one at a time. The product only discards rows that
 * cannot enter a top k (with a margin for its rounding error); the others
 * are scored by `fn`, the one-query kernel. For l2 this also avoids
 * |q|^2 + |x|^2 - 2 x.q, which cancels badly for near neighbours. */
/* The rows of one query's block of products that may enter its top k:
 * those not discarded against `thr` (a bound from the heap's worst score,
 * the product's error allowed for). Branch-free, so the compiler can make
 * it a vector loop; NaN products stay candidates (the comparisons are
 * false), as the one-query scan offers them too. */
static size_t candidates(uint32_t *cand, const float *s, const float *xa, int b, int l2, float thr)
{
    size_t nc = 0;
    if (l2)
        for (int j = 0; j < b; j++) {
            cand[nc] = (uint32_t)j;
            nc += !(xa[j] - 2 * s[j] > thr);
        }
    else
        for (int j = 0; j < b; j++) {
            cand[nc] = (uint32_t)j;
            nc += !(s[j] + xa[j] < thr);
        }
    return nc;
}

/* Many queries at once: one matrix multiply per block of rows and queries
 * gives every score, but not bit for bit the score the one-query kernels
 * give (another order of additions), so a batch would rank ties and
 * near-ties unlike the same questions asked one at a time. The product only
 * discards rows that cannot enter a top k (with a margin for its rounding
 * error, far below 1e-4 (|q|^2 + |x|^2) >= 2e-4 |q||x|); the others are
 * scored by `fn`, the one-query kernel. For l2 this also avoids
 * |q|^2 + |x|^2 - 2 x.q, which cancels badly for near neighbours. Queries
 * go through in blocks so that a block's scores (2 MB) stay in cache
 * between the product writing them and the scan reading them. */
static int scan_blas(const float *vecs, uint64_t n, uint32_t d, int l2, annb_score_block_fn fn,
                     const float *q, size_t nq, const annb_row_filter *f, annb_topk *heaps)
{
    const size_t qb = nq < ANNB_BLAS_QUERY_BLOCK ? nq : ANNB_BLAS_QUERY_BLOCK;
    float *s = malloc(qb * ANNB_BLOCK_ROWS * sizeof *s);
    float *qn = malloc(nq * sizeof *qn), *xn = malloc(ANNB_BLOCK_ROWS * sizeof *xn);
    float *xa = malloc(ANNB_BLOCK_ROWS * sizeof *xa);
    uint32_t *cand = malloc(ANNB_BLOCK_ROWS * sizeof *cand);
    int rc = s && qn && xn && xa && cand ? ANNB_OK : ANNB_E_NOMEM;
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++) qn[i] = annb_dot_scalar(q + i * d, q + i * d, d);
    for (uint64_t r0 = 0; rc == ANNB_OK && r0 < n; r0 += ANNB_BLOCK_ROWS) {
        int b = (int)(n - r0 < ANNB_BLOCK_ROWS ? n - r0 : ANNB_BLOCK_ROWS);
        const float *x = vecs + r0 * d;
        for (int j = 0; j < b; j++) {
            xn[j] = annb_dot_scalar(x + (size_t)j * d, x + (size_t)j * d, d);
            xa[j] = l2 ? xn[j] * (1 - 1e-4f) : 1e-4f * xn[j];
        }
        for (size_t i0 = 0; i0 < nq; i0 += qb) {
            size_t m = nq - i0 < qb ? nq - i0 : qb;
            /* s (m x b) = q (m x d) * x^T (d x b) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, b, (int)d, 1.0f,
                        q + i0 * d, (int)d, x, (int)d, 0.0f, s, b);
            for (size_t i = i0; i < i0 + m; i++) {
                annb_topk *h = &heaps[i];
                const float *si = s + (i - i0) * (size_t)b;
                const int full = h->size == h->k;
                float thr = l2 ? (full ? h->score[0] - qn[i] * (1 - 1e-4f) + 1e-30f : INFINITY)
                               : (full ? h->score[0] - 1e-4f * qn[i] - 1e-30f : -INFINITY);
                size_t nc = candidates(cand, si, xa, b, l2, thr);
                for (size_t c = 0; c < nc; c++) {
                    uint32_t j = cand[c];
                    /* The heap has moved on since thr: the same test, up to date. */
                    float margin = 1e-4f * (qn[i] + xn[j]) + 1e-30f;
                    float approx = l2 ? qn[i] + xn[j] - 2 * si[j] : si[j];
                    if (h->size == h->k && (l2 ? approx - margin > h->score[0]
                                               : approx + margin < h->score[0]))
                        continue;
                    float exact;
                    fn(x + (size_t)j * d, q + i * d, d, 1, &exact);
                    offer(h, f, i, exact, (int64_t)(r0 + j));
                }
            }
        }
    }
    free(s);
    free(qn);
    free(xn);
    free(xa);
    free(cand);
    return rc;
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
    annb_topk *heaps;
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
    annb_topk *heaps = malloc((size_t)threads * nq * sizeof *heaps);
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
        rc = scan_blas(vecs, n, d, m == ANNB_METRIC_L2, annb_exact_score_fn(m), q, nq, filter, heaps);
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
