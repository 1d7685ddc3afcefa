/*
 * bench_exact_batch - every stored user's exact top k from a bundle, the
 * library call `ann-query --all-users` makes (annb_recommend), timed without
 * the printing: the rate of the exact batch path in GFLOP/s and users/s
 * (docs/benchmarks.md, "Exact batches"; tests/bench/exact_batch.sh runs it).
 *
 *   bench_exact_batch BUNDLE [-k K] [--threads T] [--users N] [--batch B] [--rounds R]
 *
 * BUNDLE: an exact (flat) bundle built with --users. K: 100. T: threads of
 * the call (annb_search_opts.threads; 1). N: the first N users (all).
 * B: users per annb_recommend call (1024, what ann-query --all-users asks
 * at once). R: rounds (3), each over the same users; every round's figures
 * are printed and the best is summarised.
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

int main(int argc, char **argv)
{
    const char *path = NULL;
    long k = 100, threads = 1, users = 0, batch = 1024, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-k") == 0) k = arg_long(argv[++i], "-k");
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) threads = arg_long(argv[++i], "--threads");
        else if (i + 1 < argc && strcmp(argv[i], "--users") == 0) users = arg_long(argv[++i], "--users");
        else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0) batch = arg_long(argv[++i], "--batch");
        else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) rounds = arg_long(argv[++i], "--rounds");
        else if (!path && argv[i][0] != '-') path = argv[i];
        else {
            fprintf(stderr, "usage: bench_exact_batch BUNDLE [-k K] [--threads T] [--users N] "
                            "[--batch B] [--rounds R]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: bench_exact_batch BUNDLE [-k K] [--threads T] [--users N] "
                        "[--batch B] [--rounds R]\n");
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
    annb_hit *hits = malloc((size_t)batch * (size_t)k * sizeof *hits);
    if (!hits) return 1;
    annb_search_opts opts = ANNB_SEARCH_OPTS_INIT;
    opts.threads = (int)threads;
    opts.exact = 1;
    const double flop = 2.0 * (double)nu * (double)items * (double)info.dimension;
    printf("bundle %s: %llu items x %u, %llu users, k %ld, threads %ld, batch %ld\n", path,
           (unsigned long long)items, info.dimension, (unsigned long long)nu, k, threads, batch);
    double best_wall = 0, best_cpu = 0, sum = 0;
    for (long r = 0; r < rounds; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        sum = 0;
        for (uint64_t at = 0; at < nu; at += (uint64_t)batch) {
            size_t m = nu - at < (uint64_t)batch ? (size_t)(nu - at) : (size_t)batch;
            int rc = annb_recommend(b, ids + at, m, (size_t)k, &opts, hits);
            if (rc != ANNB_OK) {
                fprintf(stderr, "bench_exact_batch: annb_recommend: %s\n", annb_strerror(rc));
                return 1;
            }
            for (size_t i = 0; i < m * (size_t)k; i++)
                sum += (double)(hits[i].id % 1000003) + (double)hits[i].score;
        }
        double wall = now(CLOCK_MONOTONIC) - w0, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        printf("round %ld: wall %.3f s, CPU %.3f s: %.1f GFLOP/s wall, %.1f GFLOP/s per core "
               "(CPU time), %.0f users/s wall, %.0f users/s per core\n",
               r + 1, wall, cpu, flop / wall / 1e9, flop / cpu / 1e9, (double)nu / wall,
               (double)nu / cpu);
        if (r == 0 || wall < best_wall) best_wall = wall;
        if (r == 0 || cpu < best_cpu) best_cpu = cpu;
    }
    printf("best: %.1f GFLOP/s wall, %.1f GFLOP/s per core; %.0f users/s wall, %.0f users/s per core\n",
           flop / best_wall / 1e9, flop / best_cpu / 1e9, (double)nu / best_wall,
           (double)nu / best_cpu);
    printf("sum %.6e\n", sum);
    free(hits);
    annb_close(b);
    return 0;
}
