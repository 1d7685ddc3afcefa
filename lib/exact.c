/* exact.c - exact top-k over vectors in place: the scans (see exact.h). */
#include "exact.h"
#include "gemm.h"
#include "threads.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
/* The tile path up to this dimension, cblas_sgemm above. Measured
 * (docs/benchmarks.md, "Exact batches"): the tiles are 2.3x as fast as the
 * BLAS path at d = 64 to 512 and 1.3x at d = 4096 (ann-build's largest),
 * where a 32-row panel (512 KB) no longer fits in L2; beyond that, which
 * only other writers' bundles reach (SPEC allows 65536), cblas_sgemm's
 * blocking over d is likely to win and nothing was measured. */
#define ANNB_TILES_MAX_D 4096
/* Rows the tile scan packs at once: up to 16 panels (512 rows), at most
 * 256 KB (L2 holds them while every query tile meets them). */
#define ANNB_TILES_BLOCK_PANELS 16
#define ANNB_TILES_BLOCK_BYTES (256u << 10)
/* Bounds and packed queries of one thread's chunk of queries, at most. */
#define ANNB_TILES_CHUNK_BYTES (64u << 20)
/* A prime past any block count (2^40 blocks): block_at's stride. */
#define ANNB_TILES_BLOCK_STRIDE 1099511627791ull
/* Threads of one tile scan (the shares live on the stack). */
#define ANNB_TILES_MAX_THREADS 256

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

/* ---- many queries at once ----
 *
 * A matrix product gives every score of a block of queries and rows at
 * once, but not bit for bit the score the one-query kernels give (another
 * order of additions), so a batch would rank ties and near-ties unlike the
 * same questions asked one at a time. The product only discards rows that
 * cannot enter a query's top k, with a margin for its rounding error
 * (annb_gemm_margin, derived in gemm.c); the others are scored by `fn`, the
 * one-query kernel, and offered to the heap, so a batch answers exactly as
 * single questions do. For l2 this also avoids |q|^2 + |x|^2 - 2 x.q, which
 * cancels badly for near neighbours.
 *
 * With T a score that k rows passing the filter are known to reach (the
 * root of the query's heap on the BLAS path, L below on the tiles) and
 * c = annb_gemm_margin(d), a row x with product a and norm xn is discarded
 * for query q (norm qn) when
 *   ip, cosine: fl(a + xa) < thr,   xa = fl(c xn),        thr = fl(T - mq), mq = fl(fl(c qn) + 1e-30)
 *   l2:         fl(xa - 2a) > thr,  xa = fl(fl(1 - c) xn), thr = fl(T - mq), mq = fl(fl(fl(1 - c) qn) - 1e-30)
 * and is a candidate otherwise (also whenever a NaN is involved, and while
 * the heap has room: thr is then -inf or +inf). */

/* The threshold of query i from its heap (see above). */
static inline float threshold(const annb_topk *h, float mq, int l2)
{
    if (h->size < h->k) return l2 ? INFINITY : -INFINITY;
    return h->score[0] - mq;
}

/* Per-query and per-row terms of the test above. */
static inline float query_term(float qn, float c, int l2)
{
    return l2 ? (1 - c) * qn - 1e-30f : c * qn + 1e-30f;
}

static inline float row_term(float xn, float c, int l2)
{
    return l2 ? (1 - c) * xn : c * xn;
}

/* Does the product a of query (threshold thr) and row (term xa) survive? */
static inline int candidate(float a, float xa, float thr, int l2)
{
    return l2 ? !(xa - 2 * a > thr) : !(a + xa < thr);
}

/* ---- the BLAS path: cblas_sgemm into a block of scores, then a candidate
 * pass over it. Queries go through in blocks so that a block's scores (2 MB)
 * stay in cache between the product writing them and the scan reading them. ---- */

/* The rows of one query's block of products that may enter its top k.
 * Branch-free, so the compiler can make it a vector loop. */
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

static int scan_blas(const float *vecs, uint64_t n, uint32_t d, int l2, annb_score_block_fn fn,
                     const float *q, size_t nq, const annb_row_filter *f, annb_topk *heaps)
{
    const size_t qb = nq < ANNB_BLAS_QUERY_BLOCK ? nq : ANNB_BLAS_QUERY_BLOCK;
    const float c = annb_gemm_margin(d);
    float *s = malloc(qb * ANNB_BLOCK_ROWS * sizeof *s);
    float *mq = malloc(nq * sizeof *mq), *xa = malloc(ANNB_BLOCK_ROWS * sizeof *xa);
    uint32_t *cand = malloc(ANNB_BLOCK_ROWS * sizeof *cand);
    int rc = s && mq && xa && cand ? ANNB_OK : ANNB_E_NOMEM;
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++)
        mq[i] = query_term(annb_dot_scalar(q + i * d, q + i * d, d), c, l2);
    for (uint64_t r0 = 0; rc == ANNB_OK && r0 < n; r0 += ANNB_BLOCK_ROWS) {
        int b = (int)(n - r0 < ANNB_BLOCK_ROWS ? n - r0 : ANNB_BLOCK_ROWS);
        const float *x = vecs + r0 * d;
        for (int j = 0; j < b; j++)
            xa[j] = row_term(annb_dot_scalar(x + (size_t)j * d, x + (size_t)j * d, d), c, l2);
        for (size_t i0 = 0; i0 < nq; i0 += qb) {
            size_t m = nq - i0 < qb ? nq - i0 : qb;
            /* s (m x b) = q (m x d) * x^T (d x b) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, b, (int)d, 1.0f,
                        q + i0 * d, (int)d, x, (int)d, 0.0f, s, b);
            for (size_t i = i0; i < i0 + m; i++) {
                annb_topk *h = &heaps[i];
                const float *si = s + (i - i0) * (size_t)b;
                size_t nc = candidates(cand, si, xa, b, l2, threshold(h, mq[i], l2));
                for (size_t k = 0; k < nc; k++) {
                    uint32_t j = cand[k];
                    /* The heap has moved on since: the same test, up to date. */
                    if (!candidate(si[j], xa[j], threshold(h, mq[i], l2), l2)) continue;
                    float exact;
                    fn(x + (size_t)j * d, q + i * d, d, 1, &exact);
                    offer(h, f, i, exact, (int64_t)(r0 + j));
                }
            }
        }
    }
    free(s);
    free(mq);
    free(xa);
    free(cand);
    return rc;
}

/* ---- annb's own path: the tile kernels of gemm.h, fused with the test ----
 *
 * One thread's share: queries [q0, q1) against rows [r0, r1), into
 * heaps[i] for query i. Block by block of rows (16 panels of 32 rows,
 * packed once: 128 KB at d = 64, at most 256 KB, in L2), every query tile of
 * the share against each panel of the block in turn (the packed queries,
 * 256 KB for 1,024 queries at d = 64, also stay in L2), while the next
 * block's rows are prefetched from the mapping. Tile-major within a block,
 * so that a query's bounds (below) are used in bursts while in cache:
 * panel-major, with 512 queries' bounds (2 MB) cycling through L2, cost 7%
 * more at 1M x 64.
 *
 * A row the kernel lets through is not scored exactly at once: in random
 * order about k (1 + ln(rows / k)) rows per query beat the k-th best seen so
 * far, and an exact score plus a heap push for each cost a third of the
 * time at 200k rows. Instead its product gives bounds on its exact score
 * (product -/+ e, e = 2c (|q|^2 + |x|^2) + 1e-30 with c = annb_gemm_margin:
 * twice the kernel's margin, which leaves room for rounding the bounds
 * themselves), and each query keeps
 *   - the k best lower bounds in a plain float heap: its root L is at most
 *     the k-th best exact score among the rows seen, as k rows score at
 *     least L; the kernel's threshold comes from L (thr = L - mq above),
 *     so a row it discards scores below L: it cannot enter the top k;
 *   - the rows not ruled out, each with its upper bound; a row whose upper
 *     bound falls below L can be dropped.
 * Bounds are kept as "goodness", larger better: the score for ip and
 * cosine, minus it for l2. Once the rows are done, the rows left are scored
 * by the one-query kernel and offered to the query's heap: the same top k,
 * bit for bit, as one question at a time, with about k exact scores per
 * query instead of k (1 + ln(rows / k)). A NaN bound (a damaged vector, or
 * norms past float's range) keeps its row to the end. */

typedef struct bound_row {
    float ub; /* upper bound of the row's goodness */
    int64_t row;
} bound_row;

typedef struct query_bounds {
    float *lb;       /* min-heap of the k best lower bounds, k + 1 slots */
    size_t nlb;
    bound_row *rows; /* the rows not ruled out */
    size_t nrows, cap;
} query_bounds;

/* L: the k-th best lower bound, or -inf while fewer than k are known. */
static inline float bounds_floor(const query_bounds *b, size_t k)
{
    return b->nlb < k ? -INFINITY : b->lb[0];
}

/* The heap has a slot past its k, +inf, so that every node has two
 * children to choose from without a branch (a mispredicted one per level
 * was half the cost of a push). */
static void bounds_push_lb(query_bounds *b, size_t k, float v)
{
    float *h = b->lb;
    size_t i;
    if (b->nlb < k) {
        for (i = b->nlb++; i && h[(i - 1) / 2] > v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
        h[i] = v;
        return;
    }
    if (!(v > h[0])) return;
    for (i = 0; 2 * i + 1 < k;) {
        const size_t l = 2 * i + 1;
        const int right = h[l + 1] < h[l];
        const float hm = right ? h[l + 1] : h[l];
        if (!(hm < v)) break;
        h[i] = hm;
        i = l + (size_t)right;
    }
    h[i] = v;
}

/* Keeps the rows whose upper bound reaches L; grows the list if that
 * leaves it more than half full (many near-ties). 0 or ANNB_E_NOMEM. */
static int bounds_prune(query_bounds *b, float floor)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->nrows; i++)
        if (!(b->rows[i].ub < floor)) b->rows[kept++] = b->rows[i];
    b->nrows = kept;
    if (kept > b->cap / 2) {
        bound_row *grown = realloc(b->rows, 2 * b->cap * sizeof *grown);
        if (!grown) return ANNB_E_NOMEM;
        b->rows = grown;
        b->cap *= 2;
    }
    return ANNB_OK;
}

/* The kernel's threshold of a query from its L (see "many queries" above). */
static inline float tile_threshold(float floor, float mq, int l2)
{
    return l2 ? -floor - mq : floor - mq;
}

typedef struct tiles_share {
    const float *vecs;
    uint32_t d;
    int l2;
    annb_score_block_fn fn;
    annb_gemm_kernels kn;
    const float *q;
    size_t q0, q1, k;
    uint64_t r0, r1;
    const annb_row_filter *f;
    annb_topk *heaps;
    int rc;
} tiles_share;

static void *alloc64(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* Rows that fail the filter for every query (allowed bitmap, skip list) get
 * a row term that discards them whatever the threshold, once a query has k
 * bounds: otherwise a selective filter would send every row that beats the
 * (filtered) threshold to the slow path. The skip list is searched once per
 * panel, then walked along with the rows. */
static void shut_out_filtered(float *xa, uint64_t r0, size_t count, const annb_row_filter *f,
                              int l2)
{
    size_t lo = 0, hi = f->nskip;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->skip[mid] < (int64_t)r0) lo = mid + 1;
        else hi = mid;
    }
    for (size_t r = 0; r < count; r++) {
        const int64_t row = (int64_t)(r0 + r);
        int out = f->allowed && !(f->allowed[row / 8] >> (row % 8) & 1);
        while (lo < f->nskip && f->skip[lo] < row) lo++;
        if (lo < f->nskip && f->skip[lo] == row) out = 1;
        if (out) xa[r] = l2 ? INFINITY : -INFINITY;
    }
}

/* The i-th of nb blocks in the scan's order: a fixed permutation of them
 * (i times a prime, mod nb), not the rows' order. Answers do not depend on
 * the order; the work does: a row is handled past the kernel when it beats
 * the k-th best so far, about k (1 + ln(rows / k)) times per query for rows
 * in random order, but nearly every row when the order follows the scores
 * (IDs given by popularity, norms ascending): 200k x 64 rows sorted by norm
 * took 20% longer in row order. */
static inline uint64_t block_at(uint64_t i, uint64_t nb)
{
    if (nb >= ANNB_TILES_BLOCK_STRIDE) return i; /* 2^49 rows: never, but then in order */
    return (uint64_t)((unsigned __int128)i * ANNB_TILES_BLOCK_STRIDE % nb);
}

/* What a tile's candidates need beyond the tile itself. */
typedef struct tile_ctx {
    const tiles_share *w;
    float c2;          /* 2 annb_gemm_margin(d) */
    const float *qn;   /* squared norms of the share's queries */
    const float *mq;   /* their query terms */
    query_bounds *qb;  /* their bounds */
} tile_ctx;

/* Query i of tile t (share-relative index qs) meets row r0 + r with product
 * a: bounds, filter, heap of lower bounds, list of rows. */
static int tile_candidate(const tile_ctx *tc, size_t qs, float a, float xn, int64_t row,
                          float *thr)
{
    const tiles_share *w = tc->w;
    query_bounds *b = &tc->qb[qs];
    const float floor = bounds_floor(b, w->k);
    const float e = tc->c2 * (xn + tc->qn[qs]) + 1e-30f;
    float lb, ub;
    if (w->l2) {
        const float v = (xn + tc->qn[qs]) - 2 * a;
        lb = -(v + e);
        ub = -(v - e);
    } else {
        lb = a - e;
        ub = a + e;
    }
    if (ub < floor) return ANNB_OK; /* L has moved on since the kernel's test */
    if (!passes(w->f, w->q0 + qs, row)) return ANNB_OK;
    if (lb == lb && ub == ub) bounds_push_lb(b, w->k, lb);
    else ub = INFINITY; /* NaN: kept to the end */
    if (b->nrows == b->cap) {
        int rc = bounds_prune(b, bounds_floor(b, w->k));
        if (rc) return rc;
    }
    b->rows[b->nrows++] = (bound_row){ub, row};
    *thr = tile_threshold(bounds_floor(b, w->k), tc->mq[qs], w->l2);
    return ANNB_OK;
}

static void tiles_share_run(tiles_share *w)
{
    const uint32_t d = w->d;
    const int l2 = w->l2;
    const float c = annb_gemm_margin(d);
    const size_t nq = w->q1 - w->q0, ntiles = (nq + ANNB_GEMM_QT - 1) / ANNB_GEMM_QT;
    const size_t tile_floats = (size_t)d * ANNB_GEMM_QT, panel_floats = (size_t)d * ANNB_GEMM_RT;
    const size_t slots = ntiles * ANNB_GEMM_QT;
    /* Panels per block: the block stays in L2 while every tile meets it. */
    size_t bp = ANNB_TILES_BLOCK_BYTES / (panel_floats * sizeof(float));
    bp = bp < 1 ? 1 : bp > ANNB_TILES_BLOCK_PANELS ? ANNB_TILES_BLOCK_PANELS : bp;
    const uint64_t block_rows = (uint64_t)bp * ANNB_GEMM_RT;
    /* Room for k rows and as many again before a prune (at least 64). */
    const size_t cap0 = 2 * w->k > 64 ? 2 * w->k : 64;
    float *qt = alloc64(ntiles * tile_floats * sizeof *qt);
    float *panels = alloc64(bp * panel_floats * sizeof *panels);
    float *xn = alloc64(bp * ANNB_GEMM_RT * sizeof *xn), *xa = alloc64(bp * ANNB_GEMM_RT * sizeof *xa);
    float *thr = alloc64(slots * sizeof *thr), *mq = alloc64(slots * sizeof *mq);
    float *qn = alloc64(slots * sizeof *qn);
    float *scores = alloc64(ANNB_GEMM_QT * ANNB_GEMM_RT * sizeof *scores);
    const size_t lb_slots = w->k + 1;
    float *lbs = nq && lb_slots <= SIZE_MAX / sizeof(float) / nq ? malloc(nq * lb_slots * sizeof *lbs) : NULL;
    query_bounds *qb = calloc(nq, sizeof *qb);
    uint32_t mask[ANNB_GEMM_QT];
    int rc = qt && panels && xn && xa && thr && mq && qn && scores && lbs && qb ? ANNB_OK : ANNB_E_NOMEM;
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++) {
        qb[i].lb = lbs + i * lb_slots;
        for (size_t j = 0; j < lb_slots; j++) qb[i].lb[j] = INFINITY;
        qb[i].cap = cap0;
        if (!(qb[i].rows = malloc(cap0 * sizeof *qb[i].rows))) rc = ANNB_E_NOMEM;
    }
    for (size_t t = 0; rc == ANNB_OK && t < ntiles; t++) {
        const size_t first = w->q0 + t * ANNB_GEMM_QT;
        const size_t count = w->q1 - first < ANNB_GEMM_QT ? w->q1 - first : ANNB_GEMM_QT;
        annb_gemm_pack_queries(qt + t * tile_floats, w->q + first * d, count, d);
        for (size_t i = 0; i < ANNB_GEMM_QT; i++) {
            const size_t at = t * ANNB_GEMM_QT + i;
            qn[at] = i < count ? annb_dot_scalar(w->q + (first + i) * d, w->q + (first + i) * d, d) : 0;
            mq[at] = query_term(qn[at], c, l2);
            /* No query: never a candidate (a NaN would be, and is skipped below). */
            thr[at] = i < count ? tile_threshold(-INFINITY, mq[at], l2) : (l2 ? -INFINITY : INFINITY);
        }
    }
    const tile_ctx tc = {w, 2 * c, qn, mq, qb};
    const int filtered = w->f && (w->f->allowed || w->f->nskip);
    const uint64_t nblocks = (w->r1 - w->r0 + block_rows - 1) / block_rows;
    for (uint64_t bi = 0; rc == ANNB_OK && bi < nblocks; bi++) {
        const uint64_t b0 = w->r0 + block_at(bi, nblocks) * block_rows;
        const uint64_t brows = w->r1 - b0 < block_rows ? w->r1 - b0 : block_rows;
        const size_t np = (size_t)((brows + ANNB_GEMM_RT - 1) / ANNB_GEMM_RT);
        for (size_t p = 0; p < np; p++) {
            const uint64_t r0 = b0 + (uint64_t)p * ANNB_GEMM_RT;
            const size_t count = w->r1 - r0 < ANNB_GEMM_RT ? (size_t)(w->r1 - r0) : ANNB_GEMM_RT;
            float *pxa = xa + p * ANNB_GEMM_RT, *pxn = xn + p * ANNB_GEMM_RT;
            w->kn.pack_rows(panels + p * panel_floats, pxn, w->vecs + r0 * d, count, d);
            for (size_t r = 0; r < ANNB_GEMM_RT; r++) pxa[r] = row_term(pxn[r], c, l2);
            if (filtered) shut_out_filtered(pxa, r0, count, w->f, l2);
        }
        /* The next block's rows come from memory (the mapping, read once
         * per batch): a slice of them per tile, while this block computes. */
        const uint64_t nb0 = bi + 1 < nblocks ? w->r0 + block_at(bi + 1, nblocks) * block_rows : w->r1;
        const char *next = (const char *)(w->vecs + nb0 * d);
        const size_t next_bytes = nb0 < w->r1
            ? (size_t)(w->r1 - nb0 < block_rows ? w->r1 - nb0 : block_rows) * d * sizeof(float)
            : 0;
        const size_t slice = (next_bytes / 64 + ntiles) / ntiles * 64;
        /* Tile by tile, each against the whole block: a query's bounds are
         * touched in bursts, while they are in cache. */
        for (size_t t = 0; rc == ANNB_OK && t < ntiles; t++) {
            float *tt = thr + t * ANNB_GEMM_QT;
            for (size_t at = t * slice; at < (t + 1) * slice && at < next_bytes; at += 64)
                __builtin_prefetch(next + at, 0, 3);
            for (size_t p = 0; rc == ANNB_OK && p < np; p++) {
                int which = w->kn.tile(qt + t * tile_floats, panels + p * panel_floats, d,
                                       xa + p * ANNB_GEMM_RT, tt, l2, scores, mask);
                if (!which) continue;
                const uint64_t r0 = b0 + (uint64_t)p * ANNB_GEMM_RT;
                const size_t count = w->r1 - r0 < ANNB_GEMM_RT ? (size_t)(w->r1 - r0) : ANNB_GEMM_RT;
                for (; which && rc == ANNB_OK; which &= which - 1) {
                    const size_t i = (size_t)__builtin_ctz((unsigned)which);
                    if (t * ANNB_GEMM_QT + i >= nq) break;
                    for (uint32_t m = mask[i]; m && rc == ANNB_OK; m &= m - 1) {
                        const unsigned r = (unsigned)__builtin_ctz(m);
                        if (r >= count) break;
                        rc = tile_candidate(&tc, t * ANNB_GEMM_QT + i, scores[i * ANNB_GEMM_RT + r],
                                            xn[p * ANNB_GEMM_RT + r], (int64_t)(r0 + r), &tt[i]);
                    }
                }
            }
        }
    }
    /* The rows left, scored exactly and offered to the heaps. */
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++) {
        const query_bounds *b = &qb[i];
        const float floor = bounds_floor(b, w->k);
        const size_t qi = w->q0 + i;
        for (size_t j = 0; j < b->nrows; j++) {
            if (j + 4 < b->nrows) /* rows from all over the mapping */
                __builtin_prefetch(w->vecs + (uint64_t)b->rows[j + 4].row * d);
            if (b->rows[j].ub < floor) continue;
            float exact;
            w->fn(w->vecs + (uint64_t)b->rows[j].row * d, w->q + qi * d, d, 1, &exact);
            offer(&w->heaps[qi], w->f, qi, exact, b->rows[j].row);
        }
    }
    w->rc = rc;
    for (size_t i = 0; qb && i < nq; i++) free(qb[i].rows);
    free(qb);
    free(lbs);
    free(qt);
    free(panels);
    free(xn);
    free(xa);
    free(thr);
    free(mq);
    free(qn);
    free(scores);
}

/* From this many queries on, the tiles beat one scan per query (1M x 64,
 * 2 threads, CPU time: 2 queries 1.8x as fast, 4 queries 3.6x, 7 queries
 * 5.7x; a scan reads all rows for each query, the tiles once for all). */
#define ANNB_BATCH_MIN_QUERIES 2
/* Fewer rows than this per thread: starting the thread costs more than it saves. */
#define ANNB_THREAD_MIN_ROWS 32768

/* Which batch path: the tiles, unless ANNB_EXACT_BATCH=blas (for tests and
 * benchmarks) or the dimension is past what they were measured to win at. */
static int batch_uses_blas(uint32_t d)
{
    const char *force = getenv("ANNB_EXACT_BATCH");
    if (force && strcmp(force, "blas") == 0) return 1;
    if (force && strcmp(force, "tiles") == 0) return 0;
    return d > ANNB_TILES_MAX_D;
}

/* A thread's share, its queries a chunk at a time: the bounds and the
 * packed copy of the queries take about 3.6 KB a query at k = 100, d = 64
 * (2k rows of bounds, 16 bytes each), so a chunk is bounded by
 * ANNB_TILES_CHUNK_BYTES; each chunk reads the rows again. */
static void tiles_run(void *ctx, int t)
{
    tiles_share *w = &((tiles_share *)ctx)[t];
    const size_t per_query = (size_t)w->d * sizeof(float) + (w->k + 1) * sizeof(float) +
                             (2 * w->k > 64 ? 2 * w->k : 64) * sizeof(bound_row) +
                             sizeof(query_bounds) + 3 * sizeof(float);
    size_t chunk = ANNB_TILES_CHUNK_BYTES / per_query / ANNB_GEMM_QT * ANNB_GEMM_QT;
    if (chunk < 2 * ANNB_GEMM_QT) chunk = 2 * ANNB_GEMM_QT;
    const size_t q0 = w->q0, q1 = w->q1;
    for (size_t at = q0; at < q1 && w->rc == ANNB_OK; at += chunk) {
        w->q0 = at;
        w->q1 = q1 - at < chunk ? q1 : at + chunk;
        tiles_share_run(w);
    }
}

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

/* The tiles with the queries split among threads (each thread its own
 * whole tiles and the caller's heaps of its queries: nothing to merge), or,
 * with too few queries for that, the rows (each thread its own heaps,
 * merged after). */
static int scan_tiles(const float *vecs, uint64_t n, uint32_t d, int l2, annb_score_block_fn fn,
                      const float *q, size_t nq, const annb_row_filter *f, int threads,
                      int split_queries, annb_topk *heaps)
{
    tiles_share shares[ANNB_TILES_MAX_THREADS];
    const annb_gemm_kernels kn = annb_gemm_pick();
    const size_t ntiles = (nq + ANNB_GEMM_QT - 1) / ANNB_GEMM_QT;
    for (int t = 0; t < threads; t++) {
        tiles_share *w = &shares[t];
        *w = (tiles_share){vecs, d, l2, fn, kn, q, 0, nq, heaps[0].k, 0, n, f, heaps, ANNB_OK};
        if (split_queries) {
            size_t lo = ntiles * (size_t)t / (size_t)threads * ANNB_GEMM_QT;
            size_t hi = ntiles * (size_t)(t + 1) / (size_t)threads * ANNB_GEMM_QT;
            w->q0 = lo;
            w->q1 = hi < nq ? hi : nq;
        } else {
            w->r0 = n * (uint64_t)t / (uint64_t)threads;
            w->r1 = n * (uint64_t)(t + 1) / (uint64_t)threads;
            w->heaps = heaps + (size_t)t * nq;
        }
    }
    annb_run_threads(threads, tiles_run, shares);
    for (int t = 0; t < threads; t++)
        if (shares[t].rc) return shares[t].rc;
    return ANNB_OK;
}

int annb_exact_search_threads(const float *vecs, uint64_t n, uint32_t d, annb_metric m,
                              const float *q, size_t nq, size_t k, const annb_row_filter *filter,
                              int threads, float *scores, int64_t *rows)
{
    if (k == 0 || nq == 0) return ANNB_OK; /* nothing to write; a heap of 0 slots has no root */
    const int batch = nq >= ANNB_BATCH_MIN_QUERIES, blas = batch && batch_uses_blas(d);
    if (blas || threads < 1) threads = 1; /* BLAS has its own threads */
    if (threads > ANNB_TILES_MAX_THREADS) threads = ANNB_TILES_MAX_THREADS;
    /* Queries split among threads when each gets two tiles or more: every
     * thread then reads all rows (a pass per batch, prefetched) but keeps
     * one set of bounds per query (a row split's threads each need about
     * k (1 + ln(rows / threads / k)) candidates per query, in all nearly
     * twice as many on 2 threads; measured 7% slower at 1M x 64). */
    const int split_queries = batch && !blas && nq >= (size_t)threads * 2 * ANNB_GEMM_QT;
    if (!split_queries && (uint64_t)threads > n / ANNB_THREAD_MIN_ROWS)
        threads = (int)(n / ANNB_THREAD_MIN_ROWS);
    if (threads < 1) threads = 1;
    const int sets = split_queries ? 1 : threads; /* heaps per query */
    /* Set 0 fills the caller's arrays; the others get scratch slots. */
    size_t extra = (size_t)(sets - 1) * nq * k;
    annb_topk *heaps = malloc((size_t)sets * nq * sizeof *heaps);
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
    const annb_score_block_fn fn = annb_exact_score_fn(m);
    if (blas) {
        rc = scan_blas(vecs, n, d, m == ANNB_METRIC_L2, fn, q, nq, filter, heaps);
    } else if (batch) {
        rc = scan_tiles(vecs, n, d, m == ANNB_METRIC_L2, fn, q, nq, filter, threads, split_queries,
                        heaps);
    } else {
        row_split job = {vecs, n, d, fn, q, nq, filter, threads, heaps};
        annb_run_threads(threads, row_split_run, &job);
    }
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++)
        for (int t = 1; t < sets; t++) annb_topk_merge(&heaps[i], &heaps[(size_t)t * nq + i]);
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
