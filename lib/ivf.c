/* ivf.c - IVF-Flat as plain arrays, searched in place (see ivf.h). */
#include "ivf.h"

#include "faiss_glue.h"
#include "ingest.h"
#include "nearest.h"
#include "progress.h"
#include "threads.h"

#include <inttypes.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- build ---- */

/* Rows x centroids scored per k-means iteration: 4e8 gives 1024 lists 256
 * training rows each (Faiss's maximum), 2048 lists 95, and 4096 lists the
 * floor of 32 (below Faiss's advised 39: on clustered 1M x 64 data 24, 39
 * and 64 rows per list gave the same recall), so that 20 iterations at
 * d = 64 stay around 10 s on two cores. */
#define ANNB_IVF_TRAIN_WORK 400000000ULL
#define ANNB_IVF_TRAIN_MIN 32
#define ANNB_IVF_TRAIN_MAX 256

/* What the assignment callback needs besides the vectors. */
typedef struct annb_ivf_ctx {
    uint32_t d;
    annb_metric m;
    annb_phase *train; /* k-means: one assignment per iteration (NULL: none) */
    uint64_t iterations;
} annb_ivf_ctx;

/* Rows assigned to their lists per call, and per progress report: a 64th
 * of them (ANNB_PROGRESS_REPORTS), at least this many. */
#define ANNB_IVF_ADD_CHUNK 65536u

/* Faiss's max_points_per_centroid: it trains on min(n, nlist * this) rows. */
static int train_per_centroid(uint32_t nlist)
{
    uint64_t per = ANNB_IVF_TRAIN_WORK / ((uint64_t)nlist * nlist);
    return per > ANNB_IVF_TRAIN_MAX ? ANNB_IVF_TRAIN_MAX
           : per < ANNB_IVF_TRAIN_MIN ? ANNB_IVF_TRAIN_MIN
                                      : (int)per;
}

uint64_t annb_ivf_train_points(uint64_t n, uint32_t nlist)
{
    uint64_t t = (uint64_t)train_per_centroid(nlist) * nlist;
    return t < n ? t : n;
}

void annb_ivf_release_built(annb_ivf_built *b)
{
    if (!b) return;
    free(b->centroids);
    free(b->offsets);
    free(b->rows);
    free(b->vecs);
    memset(b, 0, sizeof *b);
}

/* The assignment step, in k-means and for the final lists: nearest.c's fused
 * nearest-vector kernel on all of OpenMP's threads (the caller's setting,
 * as for Faiss); its result does not depend on their number. */
static int assign(void *ctx, const float *x, int64_t n, const float *centroids, uint32_t k,
                  float *dist, int64_t *label)
{
    annb_ivf_ctx *c = ctx;
    int rc = annb_exact_nearest(label, dist, x, (uint64_t)n, centroids, k, c->d, c->m,
                                omp_get_max_threads());
    if (c->train) annb_phase_update(c->train, ++c->iterations);
    return rc;
}

/* Every row's list, in chunks (phase "add"): each row's choice is its own,
 * so the chunks change nothing but how often progress is reported. */
static int assign_rows(annb_ivf_ctx *c, const float *x, uint64_t n, const float *centroids,
                       uint32_t nlist, int64_t *list, const annb_progress_to *progress)
{
    uint64_t chunk = n / ANNB_PROGRESS_REPORTS;
    if (chunk < ANNB_IVF_ADD_CHUNK) chunk = ANNB_IVF_ADD_CHUNK;
    annb_phase added;
    annb_phase_begin(&added, progress, "add", "rows", n);
    for (uint64_t lo = 0; lo < n; lo += chunk) {
        uint64_t len = n - lo < chunk ? n - lo : chunk;
        int rc = assign(c, x + lo * c->d, (int64_t)len, centroids, nlist, NULL, list + lo);
        if (rc) return rc;
        annb_phase_update(&added, lo + len);
    }
    annb_phase_end(&added);
    return ANNB_OK;
}

/* Counting sort of the rows by list: rows stay ascending within a list. */
static void fill_lists(annb_ivf_built *b, const int64_t *list, const float *x, uint64_t n,
                       uint32_t d, uint32_t nlist)
{
    uint64_t *o = b->offsets;
    memset(o, 0, ((size_t)nlist + 1) * sizeof *o);
    for (uint64_t r = 0; r < n; r++) o[list[r] + 1]++;
    for (uint32_t l = 0; l < nlist; l++) o[l + 1] += o[l];
    /* o[l] is now list l's start; advance it as rows land, then shift back. */
    for (uint64_t r = 0; r < n; r++) {
        uint64_t pos = o[list[r]]++;
        b->rows[pos] = (uint32_t)r;
        memcpy(b->vecs + pos * d, x + r * d, d * sizeof *x);
    }
    memmove(o + 1, o, (size_t)nlist * sizeof *o);
    o[0] = 0;
}

int annb_ivf_build(annb_ivf_built *out, const float *x, uint64_t n, uint32_t d, annb_metric m,
                   uint32_t nlist, const annb_progress_to *progress, annb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!n || !d || !nlist)
        return annb_error_set(err, ANNB_E_INVALID, "IVF needs rows, a dimension and lists");
    if (nlist > n)
        return annb_error_set(err, ANNB_E_INVALID, "IVF: %" PRIu32 " lists for %" PRIu64
                              " rows (at most one list per row)", nlist, n);
    if (n > (uint64_t)UINT32_MAX + 1)
        return annb_error_set(err, ANNB_E_LIMIT, "IVF: %" PRIu64 " rows, at most 2^32", n);
    annb_ivf_built b = {0};
    int64_t *list = malloc(n * sizeof *list);
    b.centroids = malloc((size_t)nlist * d * sizeof *b.centroids);
    b.offsets = malloc(((size_t)nlist + 1) * sizeof *b.offsets);
    b.rows = malloc(n * sizeof *b.rows);
    b.vecs = malloc(n * d * sizeof *b.vecs);
    int rc = ANNB_OK;
    if (!list || !b.centroids || !b.offsets || !b.rows || !b.vecs) {
        rc = annb_error_set(err, ANNB_E_NOMEM, "IVF: out of memory for %" PRIu64 " rows", n);
        goto out;
    }
    annb_phase trained;
    annb_ivf_ctx ctx = {d, m, &trained, 0};
    annb_phase_begin(&trained, progress, "train", "iterations", ANNB_IVF_KMEANS_NITER);
    if (annb_faiss_kmeans(b.centroids, x, n, d, nlist, m != ANNB_METRIC_L2, ANNB_IVF_KMEANS_NITER,
                          train_per_centroid(nlist), ANNB_IVF_KMEANS_SEED, assign, &ctx)) {
        rc = annb_error_set(err, annb_faiss_code(annb_faiss_ext_error()), "Faiss k-means: %s",
                            annb_faiss_ext_error());
        goto out;
    }
    annb_phase_end(&trained);
    ctx.train = NULL;
    rc = assign_rows(&ctx, x, n, b.centroids, nlist, list, progress);
    if (rc) {
        annb_error_set(err, rc, "IVF: out of memory assigning rows to lists");
        goto out;
    }
    fill_lists(&b, list, x, n, d, nlist);
    b.ivf = (annb_ivf){nlist, d, n, b.centroids, b.offsets, b.rows, b.vecs};
    *out = b;
out:
    free(list);
    if (rc) annb_ivf_release_built(&b);
    return rc;
}

/* ---- check ---- */

static int refuse(char *why, size_t size, const char *fmt, ...)
{
    if (size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return ANNB_E_CORRUPT;
}

int annb_ivf_check(const annb_ivf *ivf, uint64_t n_rows_total, char *why, size_t why_size)
{
    if (!ivf->nlist || !ivf->d) return refuse(why, why_size, "IVF with no lists or dimension 0");
    if (!ivf->centroids || !ivf->offsets || (ivf->n && (!ivf->rows || !ivf->vecs)))
        return refuse(why, why_size, "IVF array missing");
    const uint64_t *o = ivf->offsets;
    if (o[0] != 0) return refuse(why, why_size, "IVF offsets[0] = %" PRIu64 ", not 0", o[0]);
    for (uint32_t l = 0; l < ivf->nlist; l++)
        if (o[l + 1] < o[l])
            return refuse(why, why_size, "IVF offsets decrease at list %" PRIu32, l);
    if (o[ivf->nlist] != ivf->n)
        return refuse(why, why_size, "IVF offsets end at %" PRIu64 ", not at the %" PRIu64
                      " positions", o[ivf->nlist], ivf->n);
    /* Rows: in range, ascending in a list, in one list only (else a row
     * could come back twice in one answer). */
    /* Rows are 32-bit: a damaged row count cannot ask for more than 512 MB. */
    uint64_t bits = n_rows_total < (1ULL << 32) ? n_rows_total : (1ULL << 32);
    uint8_t *seen = calloc(bits / 8 + 1, 1);
    if (!seen) return ANNB_E_NOMEM;
    int rc = ANNB_OK;
    for (uint32_t l = 0; rc == ANNB_OK && l < ivf->nlist; l++)
        for (uint64_t p = o[l]; p < o[l + 1]; p++) {
            uint32_t r = ivf->rows[p];
            if (r >= n_rows_total) {
                rc = refuse(why, why_size, "IVF position %" PRIu64 ": row %" PRIu32 " of %" PRIu64,
                            p, r, n_rows_total);
                break;
            }
            if (p > o[l] && r <= ivf->rows[p - 1]) {
                rc = refuse(why, why_size, "IVF list %" PRIu32 ": rows not ascending at position %"
                            PRIu64, l, p);
                break;
            }
            if (seen[r / 8] >> (r % 8) & 1) {
                rc = refuse(why, why_size, "IVF row %" PRIu32 " in two lists", r);
                break;
            }
            seen[r / 8] |= (uint8_t)(1u << (r % 8));
        }
    free(seen);
    return rc;
}

/* ---- search ---- */

/* Positions per thread, at least, when one query's lists are split: 8k
 * vectors of d = 64 take about 0.1 ms, a few times a thread's start. */
#define ANNB_IVF_THREAD_MIN_POSITIONS 8192

/* The nprobe best lists for q into list[0..*np): the centroids go through
 * the same scan and heap as vectors, the list number as the row. */
static void probe(const annb_ivf *ivf, annb_score_block_fn fn, annb_metric m, const float *q,
                  size_t nprobe, float *pscore, int64_t *list, size_t *np)
{
    annb_topk h;
    annb_topk_init(&h, pscore, list, nprobe, m);
    annb_exact_scan(fn, ivf->centroids, ivf->nlist, ivf->d, q, NULL, 0, NULL, 0, &h);
    *np = h.size; /* heap order: the scan order does not change the result */
}

/* Scans positions [lo, hi) of the concatenation of the probed lists. */
static void scan_lists(const annb_ivf *ivf, annb_score_block_fn fn, const float *q,
                       const int64_t *list, size_t np, uint64_t lo, uint64_t hi,
                       const annb_row_filter *f, size_t qi, annb_topk *h)
{
    uint64_t at = 0;
    for (size_t i = 0; i < np && at < hi; i++) {
        uint64_t a = ivf->offsets[list[i]], len = ivf->offsets[list[i] + 1] - a;
        uint64_t s = at > lo ? at : lo, e = at + len < hi ? at + len : hi;
        if (s < e)
            annb_exact_scan(fn, ivf->vecs + (a + s - at) * ivf->d, (size_t)(e - s), ivf->d, q,
                            ivf->rows + (a + s - at), 0, f, qi, h);
        at += len;
    }
}

static uint64_t probed_positions(const annb_ivf *ivf, const int64_t *list, size_t np)
{
    uint64_t total = 0;
    for (size_t i = 0; i < np; i++) total += ivf->offsets[list[i] + 1] - ivf->offsets[list[i]];
    return total;
}

/* What the threads of one search share. */
typedef struct job {
    const annb_ivf *ivf;
    annb_metric m;
    annb_score_block_fn fn;
    const float *q;
    size_t nq, k, nprobe;
    const annb_row_filter *f;
    float *scores;
    int64_t *rows;
    int threads;
    float *pscore; /* threads x nprobe: each thread's probe heap */
    int64_t *plist;
    /* one query split by positions: */
    const float *q1;
    size_t qi, np;
    uint64_t total;
    annb_topk *heaps; /* threads */
} job;

/* Thread t answers whole queries: its share of 0..nq-1. */
static void by_query(void *ctx, int t)
{
    const job *j = ctx;
    float *ps = j->pscore + (size_t)t * j->nprobe;
    int64_t *pl = j->plist + (size_t)t * j->nprobe;
    for (size_t i = j->nq * t / j->threads; i < j->nq * (t + 1) / j->threads; i++) {
        const float *q = j->q + i * j->ivf->d;
        size_t np;
        probe(j->ivf, j->fn, j->m, q, j->nprobe, ps, pl, &np);
        annb_topk h;
        annb_topk_init(&h, j->scores + i * j->k, j->rows + i * j->k, j->k, j->m);
        scan_lists(j->ivf, j->fn, q, pl, np, 0, UINT64_MAX, j->f, i, &h);
        annb_topk_finish(&h);
    }
}

/* Thread t scans its share of one query's probed positions. */
static void by_position(void *ctx, int t)
{
    const job *j = ctx;
    uint64_t lo = j->total * (uint64_t)t / (uint64_t)j->threads;
    uint64_t hi = j->total * (uint64_t)(t + 1) / (uint64_t)j->threads;
    scan_lists(j->ivf, j->fn, j->q1, j->plist, j->np, lo, hi, j->f, j->qi, &j->heaps[t]);
}

/* Each query on all threads: probe, split the positions, merge the heaps. */
static int split_each_query(job *j)
{
    int threads = j->threads;
    size_t extra = (size_t)(threads - 1) * j->k;
    float *xs = malloc(extra * sizeof *xs);
    int64_t *xr = malloc(extra * sizeof *xr);
    annb_topk *heaps = malloc((size_t)threads * sizeof *heaps);
    int rc = xs && xr && heaps ? ANNB_OK : ANNB_E_NOMEM;
    for (size_t i = 0; rc == ANNB_OK && i < j->nq; i++) {
        j->q1 = j->q + i * j->ivf->d;
        j->qi = i;
        probe(j->ivf, j->fn, j->m, j->q1, j->nprobe, j->pscore, j->plist, &j->np);
        j->total = probed_positions(j->ivf, j->plist, j->np);
        uint64_t useful = j->total / ANNB_IVF_THREAD_MIN_POSITIONS;
        j->threads = useful < (uint64_t)threads ? (int)useful + !useful : threads;
        j->heaps = heaps;
        annb_topk_init(&heaps[0], j->scores + i * j->k, j->rows + i * j->k, j->k, j->m);
        for (int t = 1; t < j->threads; t++)
            annb_topk_init(&heaps[t], xs + (size_t)(t - 1) * j->k, xr + (size_t)(t - 1) * j->k,
                           j->k, j->m);
        annb_run_threads(j->threads, by_position, j);
        for (int t = 1; t < j->threads; t++) annb_topk_merge(&heaps[0], &heaps[t]);
        annb_topk_finish(&heaps[0]);
    }
    free(xs);
    free(xr);
    free(heaps);
    return rc;
}

int annb_ivf_search_threads(const annb_ivf *ivf, annb_metric m, const float *q, size_t nq,
                            size_t k, size_t nprobe, const annb_row_filter *filter, int threads,
                            float *scores, int64_t *rows)
{
    if (!nprobe || !ivf->nlist) return ANNB_E_INVALID;
    if (!k || !nq) return ANNB_OK;
    if (nprobe > ivf->nlist) nprobe = ivf->nlist;
    if (threads < 1) threads = 1;
    /* Probe heaps: one per thread answering whole queries, one otherwise. */
    int by_q = (size_t)threads <= nq;
    size_t heaps = by_q ? (size_t)threads : 1;
    job j = {.ivf = ivf, .m = m, .fn = annb_exact_score_fn(m), .q = q, .nq = nq, .k = k,
             .nprobe = nprobe, .f = filter, .scores = scores, .rows = rows, .threads = threads,
             .pscore = malloc(heaps * nprobe * sizeof(float)),
             .plist = malloc(heaps * nprobe * sizeof(int64_t))};
    int rc = j.pscore && j.plist ? ANNB_OK : ANNB_E_NOMEM;
    if (rc == ANNB_OK && by_q) annb_run_threads(threads, by_query, &j);
    else if (rc == ANNB_OK) rc = split_each_query(&j);
    free(j.pscore);
    free(j.plist);
    return rc;
}

int annb_ivf_search(const annb_ivf *ivf, annb_metric m, const float *q, size_t nq, size_t k,
                    size_t nprobe, const annb_row_filter *filter, float *scores, int64_t *rows)
{
    return annb_ivf_search_threads(ivf, m, q, nq, k, nprobe, filter, 1, scores, rows);
}

int annb_ivf_work(const annb_ivf *ivf, annb_metric m, const float *q, size_t nq, size_t nprobe,
                  uint64_t *centroids, uint64_t *rows)
{
    *centroids = *rows = 0;
    if (!nprobe || !ivf->nlist) return ANNB_E_INVALID;
    if (nprobe > ivf->nlist) nprobe = ivf->nlist;
    float *ps = malloc(nprobe * sizeof *ps);
    int64_t *pl = malloc(nprobe * sizeof *pl);
    if (!ps || !pl) {
        free(ps);
        free(pl);
        return ANNB_E_NOMEM;
    }
    annb_score_block_fn fn = annb_exact_score_fn(m);
    for (size_t i = 0; i < nq; i++) {
        size_t np;
        probe(ivf, fn, m, q + i * ivf->d, nprobe, ps, pl, &np);
        *centroids += ivf->nlist;
        *rows += probed_positions(ivf, pl, np);
    }
    free(ps);
    free(pl);
    return ANNB_OK;
}
