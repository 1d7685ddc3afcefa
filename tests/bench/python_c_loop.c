/*
 * python_c_loop - the C side of tests/bench/python.py: the per-call time of
 * one-query questions made straight through annb.h, on the same bundle and
 * query vectors Bundle.search gets, so the difference is the binding's cost.
 *
 *   python_c_loop BUNDLE QUERIES.f32 NQ K CALLS
 *
 * QUERIES.f32: NQ x dimension raw float32 (host order). Cycles through the
 * queries, one per call, CALLS times, for annb_search and for annb_ask
 * (ITEMS_FOR_VECTOR, what the binding calls); prints one line each:
 * "annb_search ns_per_call N" and "annb_ask ns_per_call N" (the best of 5
 * rounds: the least disturbed by other work on the machine).
 */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: python_c_loop BUNDLE QUERIES.f32 NQ K CALLS\n");
        return 2;
    }
    annb_bundle *b;
    annb_error err;
    if (annb_open(&b, argv[1], NULL, &err)) {
        fprintf(stderr, "python_c_loop: %s\n", err.message);
        return 1;
    }
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    size_t nq = strtoul(argv[3], NULL, 10), k = strtoul(argv[4], NULL, 10);
    long calls = strtol(argv[5], NULL, 10);
    size_t d = info.dimension;
    float *q = malloc(nq * d * sizeof *q);
    annb_hit *hits = malloc(k * sizeof *hits);
    FILE *f = fopen(argv[2], "rb");
    if (!q || !hits || !f || fread(q, sizeof *q, nq * d, f) != nq * d) {
        fprintf(stderr, "python_c_loop: cannot read %s\n", argv[2]);
        return 1;
    }
    fclose(f);
    double best_search = 1e30, best_ask = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        for (long i = 0; i < calls; i++)
            if (annb_search(b, q + (i % nq) * d, 1, k, NULL, hits)) return 1;
        double t1 = now();
        annb_question qu = ANNB_QUESTION_INIT;
        qu.kind = ANNB_Q_ITEMS_FOR_VECTOR;
        qu.k = k;
        const annb_bundle *one = b;
        for (long i = 0; i < calls; i++) {
            qu.vectors = q + (i % nq) * d;
            if (annb_ask(hits, &one, 1, &qu, &err)) {
                fprintf(stderr, "python_c_loop: %s\n", err.message);
                return 1;
            }
        }
        double t2 = now();
        if ((t1 - t0) / calls < best_search) best_search = (t1 - t0) / calls;
        if ((t2 - t1) / calls < best_ask) best_ask = (t2 - t1) / calls;
    }
    printf("annb_search ns_per_call %.0f\nannb_ask ns_per_call %.0f\n", best_search * 1e9,
           best_ask * 1e9);
    free(q);
    free(hits);
    annb_close(b);
    return 0;
}
