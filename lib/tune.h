/*
 * tune.h - measuring an approximate index against exact search and picking
 * its search parameter (internal; used by annb_build).
 *
 * The questions are sampled (seeded, so the same inputs give the same
 * bundle): user vectors when the bundle stores users, otherwise items asked
 * "which items are like this one?" with the item itself excluded, as
 * ann-query --item asks it. Their exact answers come from exact.c over the
 * same vectors; recall@k is the mean share of the exact top k found.
 */
#ifndef ANNB_TUNE_H
#define ANNB_TUNE_H

#include "annb.h"
#include "sections.h"

#include <stddef.h>
#include <stdint.h>

/* One approximate search of nq queries with the parameter at `value`:
 * rows[i * k + j] (-1 when fewer were found). Returns ANNB_OK or an error. */
typedef int (*annb_tune_search_fn)(void *ctx, uint32_t value, const float *q, size_t nq, size_t k,
                                   int64_t *rows, annb_error *err);

typedef struct annb_tune_in {
    const float *vecs;    /* the indexed items, n x d, as stored */
    uint64_t n;
    uint32_t d;
    annb_metric metric;
    const float *users;   /* m x d, or NULL: item questions */
    uint64_t m;
    double target;
    uint32_t k, queries;
    uint32_t lowest, highest; /* the parameter's range, lowest >= 1 */
    annb_tune_search_fn search;
    void *ctx;
} annb_tune_in;

/*
 * Finds the smallest value in [lowest, highest] whose recall reaches the
 * target: doubling from lowest, then bisection between the last value that
 * fell short and the first that reached it (recall grows with the value).
 * When even `highest` falls short, that is the value chosen; out->recall
 * says what it reached. Fills out (all but nprobe/ef_search) and *value.
 */
int annb_tune_run(annb_tune *out, uint32_t *value, const annb_tune_in *in, annb_error *err);

#endif /* ANNB_TUNE_H */
