/*
 * bench_exact_batch - every stored user's exact top k from a bundle, the
 * library call `ann-query --all-users` makes (annb_recommend), timed without
 * the printing: the rate of the exact batch path in GFLOP/s and users/s
 * (docs/benchmarks.md, "Exact batches"; tests/bench/exact_batch.sh runs it).
 *
 *   bench_exact_batch BUNDLE [-k K] [--threads T] [--users N] [--batch B] [--rounds R]
 *                     [--index [--ef EF]] [--json]
 *
 * BUNDLE: a bundle built with --users. K: 100. T: threads of
 * the call (annb_search_opts.threads; 1). N: the first N users (all).
 * B: users per annb_recommend call (1024, what ann-query --all-users asks
 * at once). R: rounds (3), each over the same users; every round's figures
 * are printed and the best is summarised.
 *
 * --index: answer through the bundle's index at its stored parameter (what
 * `ann-query --all-users` does on a graph or IVF bundle) instead of exact
 * search, and measure recall@K of those answers against the exact ones
 * (computed once, untimed, for the same users); --ef: a graph's efSearch
 * instead of the stored one. --json: one JSON line
 * ("system":"annb-all-users") instead of the text, for tests/bench/run.sh.
 *
 * FLOP: 2 x users x items x d (a multiply-add per dimension, item and user),
 * what a matrix product of the two would cost, whatever the path does.
 * Rates are given against wall time and against the process's CPU time
 * (CLOCK_PROCESS_CPUTIME_ID, what perf stat's task-clock counts): on a
 * shared machine other work steals wall time from a thread, not CPU time,
 * so "per core" (FLOP / CPU seconds) is the steadier figure; compare it with
 * bench_peak's per-thread rate.
 *
 * Reaches annb through annb.h only. The last line, "sum", is a checksum of
 * the answers (IDs and scores), equal between builds that answer alike.
 */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long arg_long(const char *s, const char *name)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1) {
        fprintf(stderr, "bench_exact_batch: %s expects a positive number, not '%s'\n", name, s);
        exit(2);
    }
    return v;
}

/* Every user's top k, batch users per annb_recommend call; 0 or 1 (said why). */
static int answer_all(annb_bundle *b, const int64_t *ids, uint64_t nu, size_t k, size_t batch,
                      const annb_search_opts *opts, annb_hit *hits)
{
    for (uint64_t at = 0; at < nu; at += batch) {
        size_t m = nu - at < batch ? (size_t)(nu - at) : batch;
        int rc = annb_recommend(b, ids + at, m, k, opts, hits + at * k);
        if (rc != ANNB_OK) {
            fprintf(stderr, "bench_exact_batch: annb_recommend: %s\n", annb_strerror(rc));
            return 1;
        }
    }
    return 0;
}

/* Share of the exact answers' IDs the index's answers hold (IDs < 0 are
 * padding: a user with fewer than k answers). */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double recall_at_k(const annb_hit *got, const annb_hit *want, uint64_t nu, size_t k)
{
    int64_t *ids = malloc(k * sizeof *ids);
    uint64_t found = 0, wanted = 0;
    for (uint64_t u = 0; ids && u < nu; u++) {
        for (size_t i = 0; i < k; i++) ids[i] = got[u * k + i].id;
        qsort(ids, k, sizeof *ids, cmp_i64);
        for (size_t i = 0; i < k; i++) {
            int64_t id = want[u * k + i].id;
            if (id < 0) continue;
            wanted++;
            found += bsearch(&id, ids, k, sizeof *ids, cmp_i64) != NULL;
        }
    }
    free(ids);
    return wanted ? (double)found / (double)wanted : 1.0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long k = 100, threads = 1, users = 0, batch = 1024, rounds = 3;
    int through_index = 0, json = 0;
    long ef = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-k") == 0) k = arg_long(argv[++i], "-k");
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) threads = arg_long(argv[++i], "--threads");
        else if (i + 1 < argc && strcmp(argv[i], "--users") == 0) users = arg_long(argv[++i], "--users");
        else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0) batch = arg_long(argv[++i], "--batch");
        else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) rounds = arg_long(argv[++i], "--rounds");
        else if (i + 1 < argc && strcmp(argv[i], "--ef") == 0) ef = arg_long(argv[++i], "--ef");
        else if (strcmp(argv[i], "--index") == 0) through_index = 1;
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (!path && argv[i][0] != '-') path = argv[i];
        else {
            fprintf(stderr, "usage: bench_exact_batch BUNDLE [-k K] [--threads T] [--users N] "
                            "[--batch B] [--rounds R] [--index [--ef EF]] [--json]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: bench_exact_batch BUNDLE [-k K] [--threads T] [--users N] "
                        "[--batch B] [--rounds R] [--index [--ef EF]] [--json]\n");
        return 2;
    }
    annb_bundle *b = NULL;
    annb_error err;
    if (annb_open(&b, path, NULL, &err) != ANNB_OK) {
        fprintf(stderr, "bench_exact_batch: %s: %s\n", path, err.message);
        return 1;
    }
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    const uint64_t items = annb_space_count(b, ANNB_SPACE_ITEMS);
    uint64_t nu = annb_space_count(b, ANNB_SPACE_USERS);
    if (users && (uint64_t)users < nu) nu = (uint64_t)users;
    if (nu == 0) {
        fprintf(stderr, "bench_exact_batch: %s stores no users (ann-build --users)\n", path);
        annb_close(b);
        return 1;
    }
    const int64_t *ids = annb_space_ids(b, ANNB_SPACE_USERS);
    /* Every answer is kept (K per user) for --index's recall and the sum. */
    annb_hit *hits = malloc((size_t)nu * (size_t)k * sizeof *hits);
    annb_hit *exact = through_index ? malloc((size_t)nu * (size_t)k * sizeof *exact) : NULL;
    if (!hits || (through_index && !exact)) return 1;
    annb_search_opts opts = ANNB_SEARCH_OPTS_INIT;
    opts.threads = (int)threads;
    opts.exact = !through_index;
    opts.ef_search = (unsigned)ef; /* 0: the stored efSearch */
    if (through_index) {
        annb_search_opts xo = opts;
        xo.exact = 1;
        if (answer_all(b, ids, nu, (size_t)k, (size_t)batch, &xo, exact)) return 1;
    }
    const double flop = 2.0 * (double)nu * (double)items * (double)info.dimension;
    if (!json)
        printf("bundle %s: %llu items x %u, %llu users, k %ld, threads %ld, batch %ld, %s\n", path,
               (unsigned long long)items, info.dimension, (unsigned long long)nu, k, threads, batch,
               through_index ? info.index : "exact");
    double best_wall = 0, best_cpu = 0, sum = 0;
    for (long r = 0; r < rounds; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (answer_all(b, ids, nu, (size_t)k, (size_t)batch, &opts, hits)) return 1;
        double wall = now(CLOCK_MONOTONIC) - w0, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (!json)
            printf("round %ld: wall %.3f s, CPU %.3f s: %.1f GFLOP/s wall, %.1f GFLOP/s per core "
                   "(CPU time), %.0f users/s wall, %.0f users/s per core\n",
                   r + 1, wall, cpu, flop / wall / 1e9, flop / cpu / 1e9, (double)nu / wall,
                   (double)nu / cpu);
        if (r == 0 || wall < best_wall) best_wall = wall;
        if (r == 0 || cpu < best_cpu) best_cpu = cpu;
    }
    sum = 0;
    for (size_t i = 0; i < (size_t)nu * (size_t)k; i++)
        sum += (double)(hits[i].id % 1000003) + (double)hits[i].score;
    double recall = through_index ? recall_at_k(hits, exact, nu, (size_t)k) : 1.0;
    if (json) {
        printf("{\"system\":\"annb-all-users\",\"path\":\"%s\",\"index\":\"%s\",\"items\":%llu,"
               "\"d\":%u,\"users\":%llu,\"k\":%ld,\"threads\":%ld,\"batch\":%ld,\"rounds\":%ld,"
               "\"wall_s\":%.6g,\"cpu_s\":%.6g,\"users_s\":%.6g,\"users_s_per_core\":%.6g,"
               "\"gflops\":%.6g,\"gflops_per_core\":%.6g,\"recall\":%.6g}\n",
               through_index ? "index" : "exact", info.index, (unsigned long long)items,
               info.dimension, (unsigned long long)nu, k, threads, batch, rounds, best_wall,
               best_cpu, (double)nu / best_wall, (double)nu / best_cpu, flop / best_wall / 1e9,
               flop / best_cpu / 1e9, recall);
    } else {
        printf("best: %.1f GFLOP/s wall, %.1f GFLOP/s per core; %.0f users/s wall, %.0f users/s "
               "per core\n",
               flop / best_wall / 1e9, flop / best_cpu / 1e9, (double)nu / best_wall,
               (double)nu / best_cpu);
        if (through_index) printf("recall@%ld against exact answers: %.4f\n", k, recall);
        printf("sum %.6e\n", sum);
    }
    free(exact);
    free(hits);
    annb_close(b);
    return 0;
}
