/* search.c - top-k search with external IDs (annb_search, annb_recommend, shards). */
#include "bundle.h"
#include "exact.h"
#include "ivf.h"
#include "graph.h"
#include "faiss_glue.h"
#include "ingest.h"

#include <faiss/c_api/Index_c.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Rows that must not answer one query (a user's seen items): ascending. */
typedef struct row_list {
    const uint32_t *rows;
    size_t count;
} row_list;

/* A search after its options are resolved into rows. */
typedef struct plan {
    annb_space_view v;
    uint32_t d;            /* the queries' dimension */
    uint32_t nprobe, ef_search; /* Faiss search effort (0: the index's own) */
    annb_faiss_view fv;    /* when v.index: how Faiss answers become exact ones */
    annb_metric metric;
    int threads;
    int exact;             /* scan every row whatever the index (annb_search_opts.exact) */
    int ef_pinned;         /* the caller set ef_search: walk at it, never trade it for a scan */
    const int64_t *skip; /* rows excluded for every query, ascending, unique */
    size_t nskip;
    const uint8_t *genre_ok; /* bitmap of rows allowed by the genre filter, or NULL */
    uint8_t *genre_owned;    /* genre_ok when made for this search (an OR), else NULL */
} plan;

static int in_rows(const row_list *l, int64_t row)
{
    size_t lo = 0, hi = l ? l->count : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((int64_t)l->rows[mid] < row) lo = mid + 1;
        else hi = mid;
    }
    return l && lo < l->count && (int64_t)l->rows[lo] == row;
}

static int skipped(const plan *p, const row_list *extra, int64_t row)
{
    return (p->genre_ok && !(p->genre_ok[row / 8] >> (row % 8) & 1)) ||
           (p->nskip && bsearch(&row, p->skip, p->nskip, sizeof *p->skip, cmp_i64)) ||
           in_rows(extra, row);
}

/* Faiss labels are row positions; answers carry the rows' external IDs.
 * This is the one place rows become IDs. */
static void collect(annb_hit *out, size_t k, const plan *p, const row_list *extra,
                    const float *dist, const idx_t *labels, size_t kf)
{
    size_t j = 0;
    for (size_t f = 0; f < kf && j < k; f++) {
        idx_t row = labels[f];
        if (row < 0 || (uint64_t)row >= p->v.count) continue; /* Faiss: fewer than kf found */
        if (skipped(p, extra, row)) continue;
        out[j].id = p->v.ids[row];
        out[j].score = dist[f];
        j++;
    }
    for (; j < k; j++) {
        out[j].id = ANNB_ID_NONE;
        out[j].score = NAN;
    }
}

/* One Faiss search of queries [from, from + nq), kf results each, with the
 * bundle's search settings and `allowed` rows (NULL: all). */
static int faiss_search(const plan *p, const float *q, size_t from, size_t nq, size_t kf,
                        const uint8_t *allowed, float *dist, idx_t *labels)
{
    annb_faiss_params params = {allowed, allowed ? (size_t)p->v.count : 0, p->nprobe, p->ef_search};
    return annb_faiss_answer(&p->fv, &params, q + from * p->d, nq, kf, dist, labels);
}

/* Asks Faiss for kf results per query in one call (BLAS for many queries)
 * and drops the skipped rows. *short_of counts queries left with fewer than
 * k results. */
static int search_kf(const plan *p, const float *q, size_t nq, size_t k, size_t kf,
                     const row_list *extra, annb_hit *hits, size_t *short_of)
{
    if (nq > SIZE_MAX / kf / sizeof(idx_t)) return ANNB_E_NOMEM;
    float *dist = malloc(nq * kf * sizeof *dist);
    idx_t *labels = malloc(nq * kf * sizeof *labels);
    int rc = ANNB_OK;
    *short_of = 0;
    if (!dist || !labels) rc = ANNB_E_NOMEM;
    else rc = faiss_search(p, q, 0, nq, kf, NULL, dist, labels);
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++) {
        collect(hits + i * k, k, p, extra ? &extra[i] : NULL, dist + i * kf, labels + i * kf, kf);
        *short_of += hits[i * k + k - 1].id == ANNB_ID_NONE;
    }
    free(dist);
    free(labels);
    return rc;
}

/* The fallback for index types that take no ID selector: ask for
 * k + (rows any query may skip), drop them, and double the request until
 * every query has k results or all rows were asked for. */
static int search_overfetch(const plan *p, const float *q, size_t nq, size_t k,
                            const row_list *extra, annb_hit *hits)
{
    size_t most = 0, n = (size_t)p->v.count, short_of = 0;
    for (size_t i = 0; extra && i < nq; i++)
        if (extra[i].count > most) most = extra[i].count;
    size_t drop = p->nskip + most;
    size_t kf = (k >= n || drop >= n - k) ? n : k + drop;
    int rc = search_kf(p, q, nq, k, kf, extra, hits, &short_of);
    while (rc == ANNB_OK && short_of && kf < n) {
        kf = kf > n / 2 ? n : 2 * kf;
        rc = search_kf(p, q, nq, k, kf, extra, hits, &short_of);
    }
    return rc;
}

/* Any index, any filter: Faiss searches only the allowed rows (IDSelector),
 * so approximate indexes still fill k from what remains. One bitmap for all
 * queries, or one per query when queries skip different rows. */
static int search_selected(const plan *p, const float *q, size_t nq, size_t k,
                           const row_list *extra, annb_hit *hits)
{
    size_t n = (size_t)p->v.count, bytes = (n + 7) / 8, kf = k < n ? k : n;
    uint8_t *allowed = malloc(bytes);
    float *dist = malloc(nq * kf * sizeof *dist);
    idx_t *labels = malloc(nq * kf * sizeof *labels);
    int rc = ANNB_OK;
    if (!allowed || !dist || !labels) rc = ANNB_E_NOMEM;
    size_t step = extra ? 1 : nq;
    for (size_t i = 0; rc == ANNB_OK && i < nq; i += step) {
        if (p->genre_ok) memcpy(allowed, p->genre_ok, bytes);
        else memset(allowed, 0xff, bytes);
        for (size_t j = 0; j < p->nskip; j++) allowed[p->skip[j] / 8] &= (uint8_t)~(1u << (p->skip[j] % 8));
        for (size_t j = 0; extra && j < extra[i].count; j++) {
            uint32_t r = extra[i].rows[j];
            allowed[r / 8] &= (uint8_t)~(1u << (r % 8));
        }
        rc = faiss_search(p, q, i, step, kf, allowed, dist + i * kf, labels + i * kf);
        /* ANNB_E_FAISS: this index type takes no selector; see below */
    }
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++)
        collect(hits + i * k, k, p, extra ? &extra[i] : NULL, dist + i * kf, labels + i * kf, kf);
    free(allowed);
    free(dist);
    free(labels);
    return rc == ANNB_E_FAISS ? search_overfetch(p, q, nq, k, extra, hits) : rc;
}

/* Resolves opts for questions of k results into p (p->skip and
 * p->genre_ok are malloc'd: plan_release). */
static int plan_make(plan *p, const annb_bundle *b, const annb_search_opts *given, size_t k)
{
    /* Fields past an older caller's struct_size keep their defaults. */
    annb_search_opts all = ANNB_SEARCH_OPTS_INIT;
    const annb_search_opts *o = &all;
    memset(p, 0, sizeof *p);
    if (given->struct_size < ANNB_SEARCH_OPTS_SIZE_0_1) return ANNB_E_INVALID;
    memcpy(&all, given, given->struct_size < sizeof all ? given->struct_size : sizeof all);
    all.struct_size = sizeof all;
    if ((o->exclude_count && !o->exclude_ids) ||
        (o->genre_count && !o->genres) || (o->space != ANNB_SPACE_ITEMS && o->space != ANNB_SPACE_USERS) ||
        (o->genre_count && o->space != ANNB_SPACE_ITEMS))
        return ANNB_E_INVALID;
    p->v = annb_space_of(b, o->space);
    if (!p->v.count || (!p->v.exact && !p->v.index && !p->v.ivf && !p->v.graph)) return ANNB_E_INVALID; /* no such space */
    p->threads = o->threads;
    p->exact = o->exact;
    p->d = b->c.meta.dimension;
    /* The parameters tuned for the nearest k measured at or above this one
     * (SPEC 6.16), unless the caller sets them. */
    annb_tune_params_for_k(&b->c.tune, k, &p->nprobe, &p->ef_search);
    if (o->nprobe) p->nprobe = o->nprobe;
    if (o->ef_search) p->ef_search = o->ef_search;
    p->ef_pinned = o->ef_search != 0;
    p->metric = b->c.meta.metric;
    p->fv = (annb_faiss_view){p->v.index, p->v.vecs, p->v.count, p->d, p->metric,
                              !!(b->c.meta.flags & ANNB_META_FLAG_MIPS_L2), b->c.tune.rerank};
    if (o->exclude_count) {
        int64_t *rows = malloc(o->exclude_count * sizeof *rows);
        if (!rows) return ANNB_E_NOMEM;
        size_t n = 0, u = 0;
        for (size_t i = 0; i < o->exclude_count; i++) {
            int64_t r = annb_row_in(p->v.ids, p->v.count, o->exclude_ids[i]);
            if (r >= 0) rows[n++] = r;
        }
        qsort(rows, n, sizeof *rows, cmp_i64);
        for (size_t i = 0; i < n; i++)
            if (!u || rows[u - 1] != rows[i]) rows[u++] = rows[i];
        p->skip = rows;
        p->nskip = u;
    }
    if (o->genre_count) {
        const annb_content *c = &b->c;
        uint64_t mask[(ANNB_MAX_GENRES + 63) / 64] = {0};
        for (size_t i = 0; i < o->genre_count; i++) {
            uint32_t g = 0;
            while (g < c->genre_count && (!o->genres[i] || strcmp(c->genre_names[g], o->genres[i])))
                g++;
            if (g == c->genre_count) return ANNB_E_NOT_FOUND;
            mask[g / 64] |= 1ull << (g % 64);
        }
        /* One genre: its cached bitmap as it is; several: their OR. */
        const size_t bytes = (size_t)(p->v.count + 7) / 8;
        uint8_t *ok = NULL;
        for (uint32_t g = 0; g < c->genre_count; g++) {
            if (!(mask[g / 64] >> (g % 64) & 1)) continue;
            const uint8_t *rows = annb_genre_rows_get(c->genre_rows, g, c->genre_bits,
                                                      c->genre_words, p->v.count);
            if (!rows) return ANNB_E_NOMEM;
            if (!p->genre_ok) {
                p->genre_ok = rows;
                continue;
            }
            if (!ok) {
                if (!(ok = malloc(bytes))) return ANNB_E_NOMEM;
                memcpy(ok, p->genre_ok, bytes);
                p->genre_ok = p->genre_owned = ok;
            }
            for (size_t i = 0; i < bytes; i++) ok[i] |= rows[i];
        }
    }
    return ANNB_OK;
}

static void plan_release(plan *p)
{
    free((void *)p->skip);
    free(p->genre_owned); /* a single genre's bitmap belongs to the bundle */
}

/*
 * A batch of questions on a graph bundle is answered by an exact pass when
 * that costs less than walking the graph for each (and is then exact). Each
 * walk scores about ef x degree codes of scattered rows; an exact batch
 * streams every row through exact.c's register tiles. Measured by `make
 * bench-graph` on 1M x 64 ALS-like rows (docs/benchmarks.md, "Every user's
 * top 100"; efSearch 874 for recall@100 0.95): the walk took 28.6 ns per
 * ef x degree (a cache miss, a d-byte code, the candidate list), the tiles
 * 0.0148 ns per multiply-add, so one ef x degree weighs about 1,930
 * multiply-adds, modelled as 900 + 16 d. At k = 100 on inner-product data
 * with varying norms the tuned efSearch is in the hundreds (hnswlib needs
 * the same ef for the same recall@100), so the two paths come close: at 1M
 * the walk is 1.2x the exact rate, at 200k the exact pass is faster.
 * The choice depends only on the question's sizes and the stored efSearch,
 * never on timings, so the same question always gets the same answer; a
 * batch starts at one tile's worth of queries (exact.c tiles 12 at once).
 * Only at the stored efSearch: an efSearch the caller sets (a recall audit,
 * a sweep) is walked as asked. ANNB_GRAPH_BATCH=walk or =exact forces
 * either for batches (benchmarks, tests).
 */
static int graph_batch_exact(const annb_graph *g, size_t nq, size_t k, uint32_t ef)
{
    if (nq < 12) return 0; /* single questions never read the environment */
    const char *force = getenv("ANNB_GRAPH_BATCH");
    if (force && strcmp(force, "walk") == 0) return 0;
    if (force && strcmp(force, "exact") == 0) return 1;
    double walk = (double)(ef > k ? ef : k) * g->degree * (900.0 + 16.0 * g->d);
    double scan = (double)g->n * g->d;
    return scan < walk;
}

/* Exact, annb's IVF and annb's graph: our own search of the mapped vectors,
 * every filter applied inside it, so k results come back whenever k rows
 * pass (for IVF: of the probed lists; for the graph: that the walk meets). */
static int search_exact(const plan *p, const float *q, size_t nq, size_t k,
                        const row_list *extra, annb_hit *hits)
{
    const uint32_t **ex = extra ? malloc(nq * sizeof *ex) : NULL;
    size_t *exn = extra ? malloc(nq * sizeof *exn) : NULL;
    float *dist = malloc(nq * k * sizeof *dist);
    int64_t *rows = malloc(nq * k * sizeof *rows);
    int rc = ANNB_OK;
    if (!dist || !rows || (extra && (!ex || !exn))) rc = ANNB_E_NOMEM;
    for (size_t i = 0; rc == ANNB_OK && extra && i < nq; i++) {
        ex[i] = extra[i].rows;
        exn[i] = extra[i].count;
    }
    annb_row_filter f = {p->genre_ok, p->skip, p->nskip, ex, exn};
    /* efSearch: tuned at build (SPEC 6.14) */
    uint32_t ef = p->ef_search ? p->ef_search : ANNB_GRAPH_DEFAULT_EF;
    if (rc == ANNB_OK && p->v.graph && !p->exact &&
        (p->ef_pinned || !graph_batch_exact(p->v.graph, nq, k, ef)))
        rc = annb_graph_search(p->v.graph, p->v.graph_pool, p->metric, q, nq, k, ef, &f,
                               p->threads, dist, rows);
    else if (rc == ANNB_OK && p->v.ivf && !p->exact) /* nprobe: tuned at build (SPEC 6.14), 1 without */
        rc = annb_ivf_search_threads(p->v.ivf, p->metric, q, nq, k, p->nprobe ? p->nprobe : 1, &f,
                                     p->threads, dist, rows);
    else if (rc == ANNB_OK)
        rc = annb_exact_search_threads(p->v.vecs, p->v.count, p->d, p->metric, q, nq, k, &f,
                                       p->threads, dist, rows);
    /* The filter was applied in the scan; collect only maps rows to IDs. */
    plan all = {.v = p->v};
    for (size_t i = 0; rc == ANNB_OK && i < nq; i++)
        collect(hits + i * k, k, &all, NULL, dist + i * k, rows + i * k, k);
    free((void *)ex);
    free(exn);
    free(dist);
    free(rows);
    return rc;
}

static int run_plan(const plan *p, const float *q, size_t nq, size_t k,
                    const row_list *extra, annb_hit *hits)
{
    if (p->exact || p->v.exact || p->v.ivf || p->v.graph) return search_exact(p, q, nq, k, extra, hits);
    return search_selected(p, q, nq, k, extra, hits);
}

/* Cosine queries are normalised like the stored vectors: a private copy. */
int annb_queries_normalized(float **out, const annb_bundle *b, const float *q, size_t nq)
{
    uint32_t d = b->c.meta.dimension;
    *out = NULL;
    if (b->c.meta.metric != ANNB_METRIC_COSINE) return ANNB_OK;
    if (nq > SIZE_MAX / d / sizeof(float) || !(*out = malloc(nq * d * sizeof **out)))
        return ANNB_E_NOMEM;
    for (size_t i = 0; i < nq; i++) {
        double ss = 0;
        for (uint32_t j = 0; j < d; j++) ss += (double)q[i * d + j] * q[i * d + j];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (uint32_t j = 0; j < d; j++) (*out)[i * d + j] = (float)(q[i * d + j] * inv);
    }
    return ANNB_OK;
}

void annb_search_opts_init(annb_search_opts *opts)
{
    if (opts) *opts = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
}

int annb_search(const annb_bundle *b, const float *queries, size_t nq, size_t k,
                const annb_search_opts *opts, annb_hit *hits)
{
    annb_search_opts defaults = ANNB_SEARCH_OPTS_INIT;
    if (!b || !queries || !hits || nq == 0 || k == 0) return ANNB_E_INVALID;
    plan p;
    float *normed = NULL;
    int rc = plan_make(&p, b, opts ? opts : &defaults, k);
    if (!rc) rc = annb_queries_normalized(&normed, b, queries, nq);
    if (!rc) rc = run_plan(&p, normed ? normed : queries, nq, k, NULL, hits);
    free(normed);
    plan_release(&p);
    return rc;
}

int annb_bundle_has_seen(const annb_bundle *b)
{
    return b && b->c.user_count && b->c.seen_offsets;
}

/* Users per search: an exact batch reads every stored vector once per
 * search (exact.c's tiles), so more users per read pay better; this bounds
 * the copy of their vectors (4 KiB each at d = 1024). */
#define ANNB_RECOMMEND_BATCH 1024

int annb_recommend(const annb_bundle *b, const int64_t *users, size_t n, size_t k,
                   const annb_search_opts *opts, annb_hit *hits)
{
    annb_search_opts defaults = ANNB_SEARCH_OPTS_INIT;
    if (!opts) opts = &defaults;
    if (!b || !users || !hits || n == 0 || k == 0 || !b->c.user_count ||
        opts->space != ANNB_SPACE_ITEMS || (opts->exclude_seen && !b->c.seen_offsets))
        return ANNB_E_INVALID;
    const uint32_t d = b->c.meta.dimension;
    plan p;
    int rc = plan_make(&p, b, opts, k);
    float *q = malloc(ANNB_RECOMMEND_BATCH * d * sizeof *q);
    row_list *seen = calloc(ANNB_RECOMMEND_BATCH, sizeof *seen);
    if (!rc && (!q || !seen)) rc = ANNB_E_NOMEM;
    for (size_t at = 0; rc == ANNB_OK && at < n; at += ANNB_RECOMMEND_BATCH) {
        size_t m = n - at < ANNB_RECOMMEND_BATCH ? n - at : ANNB_RECOMMEND_BATCH;
        for (size_t i = 0; i < m && rc == ANNB_OK; i++) {
            int64_t u = annb_row_in(b->c.user_ids, b->c.user_count, users[at + i]);
            if (u < 0) {
                rc = ANNB_E_NOT_FOUND;
                break;
            }
            /* Stored user vectors are already normalised for cosine. */
            memcpy(q + i * d, b->c.user_vecs + (uint64_t)u * d, d * sizeof *q);
            /* A damaged list (unchecked at open, SPEC 3.11): ANNB_E_CORRUPT. */
            if (opts->exclude_seen &&
                (rc = annb_seen_of(&b->c, (uint64_t)u, &seen[i].rows, &seen[i].count)))
                break;
        }
        if (rc == ANNB_OK)
            rc = run_plan(&p, q, m, k, opts->exclude_seen ? seen : NULL, hits + at * k);
    }
    free(q);
    free(seen);
    plan_release(&p);
    return rc;
}

/* Better first, by topk.h's one rule (annb_hit_better) with IDs in place of
 * rows: ties by ID so that the merged order does not depend on the order of
 * the shards. Empty slots (ANNB_ID_NONE) come after every hit. */
static int hit_before(const annb_hit *a, const annb_hit *b, int lower_first)
{
    if (a->id == ANNB_ID_NONE || b->id == ANNB_ID_NONE) return b->id == ANNB_ID_NONE && a->id != ANNB_ID_NONE;
    return annb_hit_better(a->score, a->id, b->score, b->id, lower_first);
}

int annb_search_shards(const annb_bundle *const *bundles, size_t nbundles, const float *queries,
                       size_t nq, size_t k, const annb_search_opts *opts, annb_hit *hits)
{
    if (!bundles || nbundles == 0 || !hits || nq == 0 || k == 0) return ANNB_E_INVALID;
    for (size_t s = 0; s < nbundles; s++)
        if (!bundles[s] || bundles[s]->c.meta.dimension != bundles[0]->c.meta.dimension ||
            bundles[s]->c.meta.metric != bundles[0]->c.meta.metric)
            return ANNB_E_INVALID;
    if (nbundles == 1) return annb_search(bundles[0], queries, nq, k, opts, hits);
    if (nq > SIZE_MAX / k / sizeof(annb_hit)) return ANNB_E_NOMEM;
    int lower_first = bundles[0]->c.meta.metric == ANNB_METRIC_L2, rc = ANNB_OK;
    annb_hit *part = malloc(nq * k * sizeof *part), *merged = malloc(k * sizeof *merged);
    if (!part || !merged) rc = ANNB_E_NOMEM;
    for (size_t s = 0; rc == ANNB_OK && s < nbundles; s++) {
        if ((rc = annb_search(bundles[s], queries, nq, k, opts, s ? part : hits))) break;
        if (s == 0) continue;
        for (size_t i = 0; i < nq; i++) { /* merge two best-first lists of k */
            const annb_hit *x = hits + i * k, *y = part + i * k;
            size_t a = 0, c = 0;
            for (size_t j = 0; j < k; j++)
                merged[j] = (c >= k || (a < k && hit_before(&x[a], &y[c], lower_first))) ? x[a++] : y[c++];
            memcpy(hits + i * k, merged, k * sizeof *merged);
        }
    }
    free(part);
    free(merged);
    return rc;
}
