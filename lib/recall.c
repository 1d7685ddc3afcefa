/* recall.c - the recall a bundle recorded for each k (SPEC 6.16) and the
 * recall audit: the same measurement as at build time, on an open bundle,
 * with any query vectors (annb_recall_audit_run). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "annb.h"
#include "bundle.h"
#include "faiss_glue.h"
#include "ingest.h" /* annb_error_set */
#include "tune.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint32_t annb_recall_count(const annb_bundle *b)
{
    return b && b->c.has_tune ? b->c.tune.nrows : 0;
}

int annb_recall_get(annb_recall_info *out, const annb_bundle *b, uint32_t i)
{
    if (!out || i >= annb_recall_count(b)) return ANNB_E_INVALID;
    annb_recall_from_tune_row(out, &b->c.tune, i);
    return ANNB_OK;
}

/* The tuner's search: annb_search at one parameter value, IDs back to rows. */
typedef struct audit_ctx {
    const annb_bundle *b;
    int ef; /* the knob is efSearch, else nprobe */
} audit_ctx;

static int audit_search(void *ctx_v, uint32_t value, const float *q, size_t nq, size_t k,
                        int64_t *rows, annb_error *err)
{
    const audit_ctx *c = ctx_v;
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    *(c->ef ? &o.ef_search : &o.nprobe) = value;
    annb_hit *hits = malloc(nq * k * sizeof *hits);
    if (!hits) return annb_error_set(err, ANNB_E_NOMEM, "out of memory measuring recall");
    int rc = annb_search(c->b, q, nq, k, &o, hits);
    for (size_t i = 0; rc == ANNB_OK && i < nq * k; i++)
        rows[i] = hits[i].id == ANNB_ID_NONE ? -1 : annb_row_of(c->b, hits[i].id);
    free(hits);
    return rc ? annb_error_set(err, rc, "measuring recall: search failed (%s)", annb_strerror(rc))
              : ANNB_OK;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Mean wall time of one single-query search at `value`, over the first
 * (at most 1000) queries after a warm-up: what one request to a service
 * costs. */
static int latency(double *ms, const annb_bundle *b, int ef, uint32_t value, const float *q,
                   size_t nq, size_t k)
{
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    *(ef ? &o.ef_search : &o.nprobe) = value;
    size_t d = b->c.meta.dimension, n = nq < 1000 ? nq : 1000;
    annb_hit *hits = malloc(k * sizeof *hits);
    if (!hits) return ANNB_E_NOMEM;
    int rc = ANNB_OK;
    for (size_t i = 0; rc == ANNB_OK && i < n && i < 50; i++) /* warm: caches, pages, threads */
        rc = annb_search(b, q + i * d, 1, k, &o, hits);
    double start = now_ms();
    for (size_t i = 0; rc == ANNB_OK && i < n; i++) rc = annb_search(b, q + i * d, 1, k, &o, hits);
    *ms = (now_ms() - start) / (double)n;
    free(hits);
    return rc;
}

int annb_recall_audit_run(annb_recall_audit *out, const annb_bundle *b, const float *queries,
                          size_t nq, size_t k, double target, annb_error *err)
{
    if (!out || !b || b->structure_only || !queries || nq == 0 || nq > UINT32_MAX || k == 0 ||
        k > ANNB_SERVE_MAX_K || !(target >= 0 && target <= 1))
        return annb_error_set(err, ANNB_E_INVALID, "recall audit: bad arguments");
    const annb_content *c = &b->c;
    memset(out, 0, sizeof *out);
    out->k = (uint32_t)k;
    out->queries = (uint32_t)nq;
    out->target = target > 0 ? target : c->has_tune && c->tune.target > 0 ? c->tune.target : 0.95;
    annb_tune_in in = {
        .vecs = c->vecs, .n = c->meta.count, .d = c->meta.dimension, .metric = c->meta.metric,
        .queries = queries, .m = nq, .target = out->target, .sample = (uint32_t)nq,
        .ks = &out->k, .nk = 1, .lowest = 1, .highest = 1, .search = audit_search,
    };
    audit_ctx ctx = {b, 0};
    in.ctx = &ctx;
    uint32_t nprobe = 0, ef = 0;
    if (c->has_tune) annb_tune_params_for_k(&c->tune, k, &nprobe, &ef);
    annb_faiss_family fam = c->index ? annb_faiss_family_of(c->index) : ANNB_FAISS_OTHER;
    if (c->has_ivf || fam == ANNB_FAISS_IVF) {
        out->parameter = "nprobe";
        in.highest = c->has_ivf ? c->ivf.nlist : annb_faiss_nlist(c->index);
        in.probe = nprobe ? nprobe : 1; /* what a search without a TUNE uses */
    } else if (fam == ANNB_FAISS_HNSW || c->has_graph) {
        out->parameter = "efSearch";
        ctx.ef = 1;
        in.lowest = 16;
        in.lowest_above_k = 1;
        in.highest = ANNB_TUNE_MAX_EF;
        /* What a search without a TUNE uses: Faiss's default, or annb's. */
        in.probe = ef ? ef : c->has_graph ? ANNB_GRAPH_DEFAULT_EF : 16;
    } else if (!c->index) { /* Flat: the exact answer itself */
        out->stored_recall = out->recall = 1;
        out->reached = 1;
        return latency(&out->stored_ms, b, 0, 0, queries, nq, k) ? ANNB_E_NOMEM : ANNB_OK;
    } else {
        in.probe = 1; /* an index without a knob: measured as it is */
    }
    out->highest = in.highest;
    /* Exact answers over the normalised VECS of a cosine bundle are for
     * normalised queries (annb_search normalises its own copy likewise). */
    float *normal = NULL;
    if (annb_queries_normalized(&normal, b, queries, nq))
        return annb_error_set(err, ANNB_E_NOMEM, "out of memory for the queries");
    if (normal) in.queries = normal;
    annb_tune_pick pick;
    uint32_t questions;
    int rc = annb_tune_run(&pick, &questions, &in, err);
    if (rc == ANNB_OK) {
        out->stored_value = in.probe;
        out->stored_recall = pick.probe_recall;
        out->value = pick.value;
        out->recall = pick.recall;
        out->reached = pick.reached;
        rc = latency(&out->stored_ms, b, ctx.ef, in.probe, queries, nq, k);
        if (rc == ANNB_OK) rc = latency(&out->ms, b, ctx.ef, pick.value, queries, nq, k);
        if (rc) annb_error_set(err, rc, "measuring latency: %s", annb_strerror(rc));
    }
    free(normal);
    return rc;
}
