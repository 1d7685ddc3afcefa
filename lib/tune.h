/*
 * tune.h - measuring an approximate index against exact search and picking
 * its search parameter for each k (internal; used by annb_build and by the
 * recall audit, annb_recall_audit).
 *
 * The questions are sampled (seeded, so the same inputs give the same
 * bundle): query vectors when some are given (the bundle's users, a
 * --tune-vectors file, an audit's file), otherwise items asked "which items
 * are like this one?" with the item itself excluded, as ann-query --item
 * asks it. Their exact answers come from exact.c over the same vectors;
 * recall@k is the mean share of the exact top k found.
 */
#ifndef ANNB_TUNE_H
#define ANNB_TUNE_H

#include "annb.h"
#include "progress.h"
#include "sections.h"

#include <stddef.h>
#include <stdint.h>

/* One approximate search of nq queries, k rows each, with the parameter at
 * `value`: rows[i * k + j] (-1 when fewer were found). Returns ANNB_OK or an
 * error (with err set). */
typedef int (*annb_tune_search_fn)(void *ctx, uint32_t value, const float *q, size_t nq, size_t k,
                                   int64_t *rows, annb_error *err);

typedef struct annb_tune_in {
    const float *vecs;     /* the indexed items, n x d, as stored */
    uint64_t n;
    uint32_t d;
    annb_metric metric;
    const float *queries;  /* m x d query vectors (normalised for cosine), or NULL: item questions */
    uint64_t m;
    double target;
    uint32_t sample;       /* questions measured: at most this many, spread over all */
    const uint32_t *ks;    /* nk values of k, strictly ascending, each >= 1 */
    size_t nk;
    /* The parameter's range: [lowest, highest], lowest >= 1; with
     * lowest_above_k, at least k + 1 for each k (HNSW: a candidate list
     * shorter than k cannot return k results). */
    uint32_t lowest, highest;
    int lowest_above_k;
    annb_tune_search_fn search;
    void *ctx;
    /* Non-zero: also measure recall at this value (picks[i].probe_recall),
     * e.g. the value a bundle stores, on the same questions. */
    uint32_t probe;
    /* Non-NULL: after the picks, called once with the value picked for
     * k = counted_k (which must be one of ks) on the same questions, for
     * the search to count its work into ctx (index "auto"'s cost model,
     * auto_pick.h). Its results are not measured. */
    annb_tune_search_fn counted;
    uint32_t counted_k;
    /* Progress (NULL: none): phase "tune", the candidate values measured
     * (their number is known only at the end: total 0 until then). */
    const annb_progress_to *progress;
} annb_tune_in;

/* The outcome for one k. */
typedef struct annb_tune_pick {
    uint32_t k;
    uint32_t value;   /* the parameter chosen */
    double recall;    /* measured at value */
    int reached;      /* recall >= target */
    uint32_t tried_highest; /* 1 when the knob's whole range was searched (value may be lower) */
    double probe_recall;    /* at in->probe, when set */
} annb_tune_pick;

/*
 * For each k of in->ks (picks[i] for ks[i]): the smallest value in the
 * range whose measured recall@k reaches the target: doubling from lowest up
 * to highest, with no early stop (an IVF-Flat index reaches recall 1 at
 * nprobe = nlist, and a curve that flattens for one doubling may rise again),
 * then bisection between the last value short of the target and the first
 * that reached it. When even highest falls short, the chosen value is the
 * smallest with the best recall measured: never one whose recall is below
 * the best. *questions: how many were measured.
 * Returns ANNB_OK (whether or not the target was reached: see picks), or an
 * error: ANNB_E_INVALID, ANNB_E_NOMEM, or the search function's.
 */
int annb_tune_run(annb_tune_pick *picks, uint32_t *questions, const annb_tune_in *in,
                  annb_error *err);

/* Largest HNSW efSearch the tuner tries (and an audit suggests): past it,
 * HNSW over the sizes annb builds it for is slower than exact search. */
#define ANNB_TUNE_MAX_EF 4096u

#endif /* ANNB_TUNE_H */
