/*
 * index_build.h - choosing, building and measuring a bundle's index
 * (internal; used by annb_build).
 */
#ifndef ANNB_INDEX_BUILD_H
#define ANNB_INDEX_BUILD_H

#include "annb.h"
#include "auto_pick.h"
#include "graph.h"
#include "ivf.h"
#include "sections.h"

#include <stddef.h>
#include <stdint.h>

/* What goes into the bundle for its index. */
typedef struct annb_index_made {
    void *faiss_blob;    /* FAIS payload (SPEC 6.4), NULL for Flat and annb's IVF */
    annb_ivf_built ivf;  /* annb's own IVF-Flat (SPEC 6.15), when native_ivf */
    int native_ivf;
    annb_graph_built graph; /* annb's own graph (SPEC 6.18), when native_graph */
    int native_graph;
    size_t faiss_size;
    int mips_l2;         /* FAIS indexes the vectors augmented to d + 1 (META flag) */
    int single_threaded; /* a graph index built with one thread (reproducible) */
    annb_tune tune;      /* TUNE (SPEC 6.14) */
    /* The work of answering the tuning questions at the primary k's tuned
     * parameter, counted by the search (exact search: n rows scanned a
     * question), and its modelled cost per question (auto_pick.h); zero
     * for Faiss's indexes, whose searches do not count. */
    annb_auto_work work;
    double cost;
} annb_index_made;

/* index "auto": the candidates, in order, for n vectors of dimension d
 * under a memory budget (0: none), with vectors of more than exact_bytes
 * (ANNB_AUTO_EXACT_BYTES; tests lower it) indexed. When the vectors fit
 * the budget: annb's graph (when it fits too) and IVF-Flat, each built and
 * tuned, and the one that reaches the target recall at the least modelled
 * cost kept (auto_pick.h; *compare set); else compressed codes, the first
 * that reaches the target kept (*compare 0). The last is always Flat
 * (exact search reaches any target). Returns how many (at most
 * ANNB_AUTO_MAX_CHAIN). */
#define ANNB_AUTO_MAX_CHAIN 4
size_t annb_index_auto_chain(char out[ANNB_AUTO_MAX_CHAIN][ANNB_MAX_INDEX_DESC + 1], int *compare,
                             uint64_t n, uint32_t d, uint64_t max_memory, uint64_t exact_bytes);

/* Is this index string a graph (HNSW, NSG, also as an IVF quantizer)? */
int annb_index_is_graph(const char *index);

/* The questions recall is measured on: m query vectors (normalised for
 * cosine), or m == 0 for item-to-item questions. */
typedef struct annb_tune_questions {
    const float *vecs;
    uint64_t m;
    int given; /* from a --tune-vectors file (else the bundle's users) */
} annb_tune_questions;

/*
 * Builds index `desc` (a resolved string: "Flat", "IVF<nlist>,Flat", which
 * is annb's own IVF (ivf.h), "Graph<degree>", annb's own graph (graph.h),
 * or any other Faiss factory string)
 * over the n stored item vectors, measures its recall against exact search
 * on the questions q for each k (tune.h) and tunes its search parameter to
 * opts->target_recall. ANNB_E_RECALL when the target is out of reach and
 * opts->allow_low_recall is not set. OpenMP threads are set by the caller;
 * annb's graph is built on opts->threads (0: every core), with the same
 * bytes whatever that number.
 */
int annb_index_make(annb_index_made *out, const char *desc, const annb_build_opts *opts,
                    const float *vecs, uint64_t n, uint32_t d, const annb_tune_questions *q,
                    annb_error *err);

void annb_index_made_release(annb_index_made *made);

/* The tuner's search (annb_tune_search_fn) over annb's graph, as
 * lib/search.c searches it: ctx is an annb_graph_tune_ctx. Also what
 * tests/bench/bench_graph_build.c tunes with. */
typedef struct annb_graph_tune_ctx {
    const annb_graph *g;
    annb_graph_pool *pool;
    annb_metric metric;
    int threads;
    annb_graph_work work; /* what annb_graph_tune_count counted */
} annb_graph_tune_ctx;

int annb_graph_tune_search(void *ctx, uint32_t value, const float *q, size_t nq, size_t k,
                           int64_t *rows, annb_error *err);

/* annb_graph_tune_search, adding its work to ctx->work (annb_tune_in.counted). */
int annb_graph_tune_count(void *ctx, uint32_t value, const float *q, size_t nq, size_t k,
                          int64_t *rows, annb_error *err);

/* The work annb_graph_work stands for, as auto_pick.h weighs it. */
annb_auto_work annb_graph_auto_work(const annb_graph_work *w, uint64_t questions);

#endif /* ANNB_INDEX_BUILD_H */
