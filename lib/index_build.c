/* index_build.c - the index a bundle gets: resolved from a name, built with
 * Faiss, measured and tuned (see index_build.h). */
#include "index_build.h"
#include "faiss_glue.h"
#include "ingest.h"
#include "rerank.h" /* ANNB_RERANK_FACTOR */
#include "tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Power of two nearest to sqrt(n), at most n / 39 (Faiss's k-means wants
 * at least 39 training points per centroid), at least 1. Measured on 1M x
 * 64 clustered vectors (one thread, recall@10 0.95): 1024 lists need
 * nprobe 20, 0.54 ms; 2048 need 32-40, 0.6-0.7 ms; 4096 need 64, 0.70 ms;
 * each scans some 16k vectors, and fewer lists train faster (6 s vs 17 s). */
static uint32_t ivf_lists(uint64_t n)
{
    double want = sqrt((double)n);
    uint32_t nlist = 1;
    while (nlist < (1u << 20) && (double)nlist * 1.5 < want) nlist *= 2;
    while (nlist > 1 && (uint64_t)nlist * 39 > n) nlist /= 2;
    return nlist;
}

/* PQ bytes per vector: the largest divisor of d that is at most d / 2 (Faiss
 * needs m to divide d), so that each sub-quantizer covers two or more values. */
static uint32_t pq_bytes(uint32_t d)
{
    uint32_t m = d / 2 ? d / 2 : 1;
    while (d % m) m--;
    return m;
}

size_t annb_index_auto_chain(char out[ANNB_AUTO_MAX_CHAIN][ANNB_MAX_INDEX_DESC + 1], int *compare,
                             uint64_t n, uint32_t d, uint64_t max_memory, uint64_t exact_bytes)
{
    uint64_t bytes = n * d * sizeof(float);
    /* The graph adds its codes, links and positions to the vectors. */
    uint64_t graph_bytes = bytes + n * (d + 4u * ANNB_GRAPH_DEFAULT_DEGREE + 4u);
    size_t c = 0;
    *compare = 0;
    if (max_memory == 0 || bytes <= max_memory) {
        /* annb's graph first: on the data sets measured (docs/benchmarks.md)
         * it usually reaches recall 0.95 with less work than IVF-Flat, which
         * wins a tie; both are built and the cost model decides. IVF-Flat
         * reaches recall 1 at nprobe = nlist, at more cost than Flat's scan:
         * Flat then wins, and alone meets a target IVF cannot (ties at the
         * k-th score). */
        if (bytes > exact_bytes && (max_memory == 0 || graph_bytes <= max_memory))
            snprintf(out[c++], sizeof out[0], "Graph%u,SQ8", ANNB_GRAPH_DEFAULT_DEGREE);
        if (bytes > exact_bytes) snprintf(out[c++], sizeof out[0], "IVF%u,Flat", ivf_lists(n));
        *compare = c > 0;
    } else {
        /* Codes that fit: PQ (m bytes a vector), then SQ8 (d bytes), whose
         * 8 bits per value lose less than PQ's sub-quantizers. */
        snprintf(out[c++], sizeof out[0], "IVF%u,PQ%unp", ivf_lists(n), pq_bytes(d));
        if ((uint64_t)n * d <= max_memory) snprintf(out[c++], sizeof out[0], "IVF%u,SQ8", ivf_lists(n));
    }
    snprintf(out[c++], sizeof out[0], "%s", ANNB_INDEX_FLAT); /* exact: always reaches it */
    return c;
}

void annb_index_choose(char *out, size_t size, const char *name, uint64_t n, uint32_t d,
                       uint64_t max_memory)
{
    if (!name || strcasecmp(name, "flat") == 0) {
        snprintf(out, size, "%s", ANNB_INDEX_FLAT);
    } else if (strcasecmp(name, "auto") == 0) {
        char chain[ANNB_AUTO_MAX_CHAIN][ANNB_MAX_INDEX_DESC + 1];
        int compare;
        annb_index_auto_chain(chain, &compare, n, d, max_memory, ANNB_AUTO_EXACT_BYTES);
        snprintf(out, size, "%s", chain[0]);
    } else if (strcasecmp(name, "ivf") == 0) {
        snprintf(out, size, "IVF%u,Flat", ivf_lists(n));
    } else if (strcasecmp(name, "ivfpq") == 0) {
        snprintf(out, size, "IVF%u,PQ%unp", ivf_lists(n), pq_bytes(d));
    } else if (strcasecmp(name, "graph") == 0 || strcasecmp(name, "hnsw") == 0) {
        /* annb's own graph; Faiss's HNSW stays reachable as "HNSW32". */
        snprintf(out, size, "Graph%u,SQ8", ANNB_GRAPH_DEFAULT_DEGREE);
    } else {
        snprintf(out, size, "%s", name);
    }
}

int annb_index_is_graph(const char *index)
{
    return strstr(index, "HNSW") != NULL || strstr(index, "NSG") != NULL;
}

/* Searching the Faiss index being tuned, as lib/search.c does. */
typedef struct faiss_ctx {
    annb_faiss_view fv;
    annb_faiss_family family;
} faiss_ctx;

static int faiss_tune_search(void *ctx_v, uint32_t value, const float *q, size_t nq, size_t k,
                             int64_t *rows, annb_error *err)
{
    const faiss_ctx *c = ctx_v;
    annb_faiss_params params = {0};
    if (c->family == ANNB_FAISS_IVF) params.nprobe = value;
    if (c->family == ANNB_FAISS_HNSW) params.ef_search = value;
    float *dist = malloc(nq * k * sizeof *dist);
    int rc = dist ? annb_faiss_answer(&c->fv, &params, q, nq, k, dist, rows) : ANNB_E_NOMEM;
    free(dist);
    if (rc == ANNB_E_FAISS)
        return annb_error_set(err, rc, "Faiss search: %s", annb_faiss_ext_error());
    return rc ? annb_error_set(err, rc, "out of memory measuring recall") : ANNB_OK;
}

/* Searching annb's own IVF being tuned, as lib/search.c does. */
typedef struct ivf_ctx {
    const annb_ivf *ivf;
    annb_metric metric;
    uint64_t centroids, rows; /* what ivf_tune_count counted */
} ivf_ctx;

static int ivf_tune_search(void *ctx_v, uint32_t value, const float *q, size_t nq, size_t k,
                           int64_t *rows, annb_error *err)
{
    const ivf_ctx *c = ctx_v;
    float *scores = malloc(nq * k * sizeof *scores);
    int rc = scores ? annb_ivf_search(c->ivf, c->metric, q, nq, k, value, NULL, scores, rows)
                    : ANNB_E_NOMEM;
    free(scores);
    return rc ? annb_error_set(err, rc, "measuring recall: IVF search failed") : ANNB_OK;
}

/* Counts what ivf_tune_search would scan (annb_tune_in.counted). */
static int ivf_tune_count(void *ctx_v, uint32_t value, const float *q, size_t nq, size_t k,
                          int64_t *rows, annb_error *err)
{
    (void)k;
    (void)rows;
    ivf_ctx *c = ctx_v;
    uint64_t centroids, scanned;
    int rc = annb_ivf_work(c->ivf, c->metric, q, nq, value, &centroids, &scanned);
    c->centroids += centroids;
    c->rows += scanned;
    return rc ? annb_error_set(err, rc, "counting IVF work failed") : ANNB_OK;
}

int annb_graph_tune_count(void *ctx_v, uint32_t value, const float *q, size_t nq, size_t k,
                          int64_t *rows, annb_error *err)
{
    annb_graph_tune_ctx *c = ctx_v;
    float *scores = malloc(nq * k * sizeof *scores);
    int rc = scores ? annb_graph_search_work(c->g, c->pool, c->metric, q, nq, k, value, NULL,
                                             c->threads, scores, rows, &c->work)
                    : ANNB_E_NOMEM;
    free(scores);
    return rc ? annb_error_set(err, rc, "counting graph work failed") : ANNB_OK;
}

annb_auto_work annb_graph_auto_work(const annb_graph_work *w, uint64_t questions)
{
    annb_auto_work a = {questions, w->codes, w->floats + w->reranked, w->scanned};
    return a;
}

int annb_graph_tune_search(void *ctx_v, uint32_t value, const float *q, size_t nq, size_t k,
                           int64_t *rows, annb_error *err)
{
    const annb_graph_tune_ctx *c = ctx_v;
    float *scores = malloc(nq * k * sizeof *scores);
    int rc = scores ? annb_graph_search(c->g, c->pool, c->metric, q, nq, k, value, NULL,
                                        c->threads, scores, rows)
                    : ANNB_E_NOMEM;
    free(scores);
    return rc ? annb_error_set(err, rc, "measuring recall: graph search failed") : ANNB_OK;
}

/* Threads for annb's own builds and tuning searches: opts->threads, or
 * every core. The bytes do not depend on it. */
static int build_threads(const annb_build_opts *o)
{
    if (o->threads > 0) return o->threads;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)(c < 256 ? c : 256) : 1;
}

static double target_of(const annb_build_opts *o)
{
    return o->target_recall > 0 ? o->target_recall : 0.95;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The k measured, ascending: recall_k (default 10), 10, 100 and the extra
 * ones asked for; those above the item count only when asked for by name
 * (a k past the count is answered with every item). */
static int tune_ks(uint32_t ks[ANNB_RECALL_MAX_K], size_t *nk, const annb_build_opts *o,
                   uint64_t n, uint32_t primary, annb_error *err)
{
    uint32_t all[ANNB_RECALL_MAX_K + 3];
    size_t m = 0;
    all[m++] = primary;
    if (n >= 10) all[m++] = 10;
    if (n >= 100) all[m++] = 100;
    if (o->recall_k_count > ANNB_RECALL_MAX_K)
        return annb_error_set(err, ANNB_E_INVALID, "%zu values of recall k, at most %u",
                              o->recall_k_count, ANNB_RECALL_MAX_K);
    for (size_t i = 0; i < o->recall_k_count; i++) {
        if (o->recall_ks[i] == 0 || o->recall_ks[i] > ANNB_SERVE_MAX_K)
            return annb_error_set(err, ANNB_E_INVALID, "recall k %u is not in 1..%u",
                                  o->recall_ks[i], ANNB_SERVE_MAX_K);
        all[m++] = o->recall_ks[i];
    }
    qsort(all, m, sizeof *all, cmp_u32);
    *nk = 0;
    for (size_t i = 0; i < m; i++) {
        if (*nk && ks[*nk - 1] == all[i]) continue;
        if (*nk == ANNB_RECALL_MAX_K)
            return annb_error_set(err, ANNB_E_INVALID, "more than %u values of recall k",
                                  ANNB_RECALL_MAX_K);
        ks[(*nk)++] = all[i];
    }
    return ANNB_OK;
}

/* Runs the tuner and fills out->tune: TUNE for recall_k, TUNK for every k.
 * `param` names the knob ("nprobe", "efSearch", NULL: none) for messages.
 * A target missed at any k is ANNB_E_RECALL unless allow_low_recall. */
static int tune_index(annb_index_made *out, annb_tune_in *in, const char *desc,
                      const char *param, const annb_build_opts *o, annb_error *err)
{
    uint32_t ks[ANNB_RECALL_MAX_K], questions = 0, primary = o->recall_k ? o->recall_k : 10;
    size_t nk;
    annb_tune_pick picks[ANNB_RECALL_MAX_K];
    int rc = tune_ks(ks, &nk, o, in->n, primary, err);
    if (rc) return rc;
    in->ks = ks;
    in->nk = nk;
    in->counted_k = primary;
    if ((rc = annb_tune_run(picks, &questions, in, err))) return rc;
    annb_tune *t = &out->tune;
    t->queries = questions;
    t->nrows = (uint32_t)nk;
    const annb_tune_pick *missed = NULL;
    for (size_t i = 0; i < nk; i++) {
        annb_tune_row *row = &t->rows[i];
        row->k = picks[i].k;
        row->queries = questions;
        row->recall = picks[i].recall;
        if (param && param[0] == 'n') row->nprobe = picks[i].value;
        if (param && param[0] == 'e') row->ef_search = picks[i].value;
        if (!picks[i].reached && !missed) missed = &picks[i];
        if (row->k == primary) {
            t->k = row->k;
            t->recall = row->recall;
            t->nprobe = row->nprobe;
            t->ef_search = row->ef_search;
        }
    }
    if (!missed || o->allow_low_recall) return ANNB_OK;
    char knob[96] = "it has no search parameter";
    if (param)
        snprintf(knob, sizeof knob, "%s %u; searched up to %u%s", param, missed->value,
                 in->highest, param[0] == 'n' ? ", every list" : "");
    return annb_error_set(err, ANNB_E_RECALL,
                          "index %s reaches recall@%u %.4f at most (%s), below the target %g "
                          "on %u %s questions; choose another index (flat or ivf always get "
                          "there), lower the target, or allow a lower recall (--allow-low-recall)",
                          desc, missed->k, missed->recall, knob, in->target, questions,
                          in->queries ? (out->tune.given_queries ? "query-vector" : "user")
                                      : "item-to-item");
}

int annb_index_make(annb_index_made *out, const char *desc, const annb_build_opts *o,
                    const float *vecs, uint64_t n, uint32_t d, const annb_tune_questions *q,
                    annb_error *err)
{
    memset(out, 0, sizeof *out);
    out->tune.target = target_of(o);
    if (!(out->tune.target > 0 && out->tune.target <= 1))
        return annb_error_set(err, ANNB_E_INVALID, "target recall %g is not in (0, 1]",
                              out->tune.target);
    if (strcmp(desc, ANNB_INDEX_FLAT) == 0) { /* exact: nothing to build or measure */
        out->tune.recall = 1;
        out->tune.source = ANNB_TUNE_EXACT;
        out->work = (annb_auto_work){1, 0, 0, n}; /* every row, each question */
        out->cost = annb_auto_cost(&out->work, d);
        return ANNB_OK;
    }
    annb_progress_to progress = {o->progress, o->progress_ctx};
    out->tune.source = q->m ? ANNB_TUNE_USERS : ANNB_TUNE_ITEMS;
    out->tune.given_queries = q->m && q->given;
    annb_tune_in in = {
        .vecs = vecs, .n = n, .d = d, .metric = o->metric,
        .queries = q->m ? q->vecs : NULL, .m = q->m,
        .target = out->tune.target,
        .sample = o->tune_queries ? o->tune_queries : 1000,
        .lowest = 1, .highest = 1, /* an index without a knob: measured as it is */
        .progress = &progress,
    };
    uint32_t nlist;
    if (annb_index_native_ivf(desc, &nlist)) {
        int rc = annb_ivf_build(&out->ivf, vecs, n, d, o->metric, nlist, &progress, err);
        if (rc) return rc;
        out->native_ivf = 1;
        ivf_ctx ctx = {&out->ivf.ivf, o->metric, 0, 0};
        in.highest = nlist;
        in.search = ivf_tune_search;
        in.counted = ivf_tune_count;
        in.ctx = &ctx;
        if ((rc = tune_index(out, &in, desc, "nprobe", o, err))) {
            annb_index_made_release(out);
            return rc;
        }
        /* Centroids and list rows are both scanned in sequence. */
        out->work = (annb_auto_work){out->tune.queries, 0, 0, ctx.centroids + ctx.rows};
        out->cost = annb_auto_cost(&out->work, d);
        return ANNB_OK;
    }
    uint32_t degree;
    int sq8;
    if (annb_index_native_graph(desc, &degree, &sq8)) {
        annb_graph_params gp = {.degree = degree, .build_ef = ANNB_GRAPH_DEFAULT_BUILD_EF,
                                .sq8 = sq8, .progress = o->progress,
                                .progress_ctx = o->progress_ctx};
        int threads = build_threads(o);
        int rc = annb_graph_build(&out->graph, vecs, n, d, o->metric, &gp, threads, err);
        if (rc) return rc;
        out->native_graph = 1;
        annb_graph_tune_ctx ctx = {&out->graph.g, annb_graph_pool_new(n), o->metric, threads,
                                   {0, 0, 0, 0}};
        if (!ctx.pool) rc = annb_error_set(err, ANNB_E_NOMEM, "out of memory measuring recall");
        /* efSearch from 16 and above k, as for HNSW, up to ANNB_TUNE_MAX_EF. */
        in.lowest = 16;
        in.lowest_above_k = 1;
        in.highest = ANNB_TUNE_MAX_EF;
        in.search = annb_graph_tune_search;
        in.counted = annb_graph_tune_count;
        in.ctx = &ctx;
        if (!rc) rc = tune_index(out, &in, desc, "efSearch", o, err);
        out->work = annb_graph_auto_work(&ctx.work, out->tune.queries);
        out->cost = annb_auto_cost(&out->work, d);
        annb_graph_pool_free(ctx.pool);
        if (rc) annb_index_made_release(out);
        return rc;
    }
    out->mips_l2 = o->metric == ANNB_METRIC_IP && annb_index_is_graph(desc) && o->mips_reduction;
    float *aug = NULL;
    if (out->mips_l2 && !(aug = annb_mips_augment(vecs, n, d)))
        return annb_error_set(err, ANNB_E_NOMEM, "out of memory for the MIPS-to-L2 vectors");
    FaissIndex *index = NULL;
    int rc = annb_faiss_build(&index, desc, o->metric, d, out->mips_l2, n, aug ? aug : vecs,
                              &progress, err);
    free(aug);
    if (rc) return rc;

    /* Compressed codes order candidates roughly: more of them are re-ranked
     * by their exact score (rerank.h), at build time as at search time. */
    uint32_t rerank = annb_faiss_is_lossy(index) ? ANNB_RERANK_FACTOR : 0;
    faiss_ctx ctx = {{index, vecs, n, d, o->metric, out->mips_l2, rerank}, annb_faiss_family_of(index)};
    in.search = faiss_tune_search;
    in.ctx = &ctx;
    const char *param = NULL;
    if (ctx.family == ANNB_FAISS_IVF) {
        in.highest = annb_faiss_nlist(index);
        param = "nprobe";
    }
    /* HNSW: from 16 (Faiss's default), and above k, up to ANNB_TUNE_MAX_EF. */
    if (ctx.family == ANNB_FAISS_HNSW) {
        in.lowest = 16;
        in.lowest_above_k = 1;
        in.highest = ANNB_TUNE_MAX_EF;
        param = "efSearch";
    }
    out->tune.rerank = rerank;
    rc = tune_index(out, &in, desc, param, o, err);
    if (rc == ANNB_OK) rc = annb_faiss_serialize(&out->faiss_blob, &out->faiss_size, index, err);
    faiss_Index_free(index);
    if (rc) annb_index_made_release(out);
    return rc;
}

void annb_index_made_release(annb_index_made *made)
{
    free(made->faiss_blob);
    made->faiss_blob = NULL;
    annb_ivf_release_built(&made->ivf);
    annb_graph_release_built(&made->graph);
}
