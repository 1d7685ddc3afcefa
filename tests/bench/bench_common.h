/*
 * bench_common.h - helpers shared by the benchmark programs (C and C++):
 * clock, mapped input files, the data set of a bench-data directory,
 * percentiles, recall and the JSON result line.
 *
 * A data directory (written by bench_gen and bench_gt) holds:
 *   params       "n= q= d= seed= clusters= gtk=" lines
 *   items.f32    n*d float32, row-major, in CSV row order
 *   items.ids    n int64: the external ID of each row (not the row number)
 *   items.csv    the same items in the Spark form `id,"[...]"`
 *   queries.f32  q*d float32;  queries.ids, queries.csv likewise
 *   gt.ids       q*gtk int64: exact top-gtk item IDs by inner product, best first
 *   gt.scores    q*gtk float32: their inner products
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_GT_K 100

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Maps a whole file read-only; *size gets its size. Dies on failure. */
static inline const void *bench_map(const char *path, size_t *size)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) bench_die("%s: %s", path, strerror(errno));
    *size = (size_t)st.st_size;
    void *p = *size ? mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (p == MAP_FAILED) bench_die("%s: mmap: %s", path, strerror(errno));
    close(fd);
    return p;
}

/* Maps dir/name and checks it holds exactly `expect` bytes. */
static inline const void *bench_map_part(const char *dir, const char *name, size_t expect)
{
    char path[4096];
    size_t size;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const void *p = bench_map(path, &size);
    if (size != expect)
        bench_die("%s: %zu bytes, expected %zu (stale data directory? remove it)", path, size,
                  expect);
    return p;
}

typedef struct bench_data {
    size_t n, q, d, gtk;
    const float *items;      /* n*d */
    const int64_t *ids;      /* n */
    const float *queries;    /* q*d */
    const int64_t *gt;       /* q*gtk, NULL if not loaded */
} bench_data;

/* Reads dir/params and maps the arrays (ground truth only if want_gt). */
static inline void bench_data_load(bench_data *D, const char *dir, int want_gt)
{
    char path[4096], key[32];
    unsigned long long v;
    memset(D, 0, sizeof *D);
    snprintf(path, sizeof path, "%s/params", dir);
    FILE *f = fopen(path, "r");
    if (!f) bench_die("%s: %s", path, strerror(errno));
    while (fscanf(f, " %31[a-z]=%llu", key, &v) == 2) {
        if (!strcmp(key, "n")) D->n = (size_t)v;
        else if (!strcmp(key, "q")) D->q = (size_t)v;
        else if (!strcmp(key, "d")) D->d = (size_t)v;
        else if (!strcmp(key, "gtk")) D->gtk = (size_t)v;
    }
    fclose(f);
    if (!D->n || !D->q || !D->d) bench_die("%s: n, q or d missing", path);
    D->items = (const float *)bench_map_part(dir, "items.f32", D->n * D->d * sizeof(float));
    D->ids = (const int64_t *)bench_map_part(dir, "items.ids", D->n * sizeof(int64_t));
    D->queries = (const float *)bench_map_part(dir, "queries.f32", D->q * D->d * sizeof(float));
    if (want_gt) {
        if (D->gtk != BENCH_GT_K) bench_die("%s: gtk=%zu, expected %d", path, D->gtk, BENCH_GT_K);
        D->gt = (const int64_t *)bench_map_part(dir, "gt.ids", D->q * D->gtk * sizeof(int64_t));
    }
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p-th percentile (0..100, nearest rank) of v[0..n); sorts v. */
static inline double bench_percentile(double *v, size_t n, double p)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    size_t r = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (r < 1) r = 1;
    if (r > n) r = n;
    return v[r - 1];
}

/* Recall@k of one answer: |found[0..k) ∩ gt[0..k)| / k (IDs; k <= gtk). */
static inline double bench_recall_one(const int64_t *found, const int64_t *gt, size_t k)
{
    size_t hit = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            if (found[i] == gt[j]) {
                hit++;
                break;
            }
    return (double)hit / (double)k;
}

/* Result line: one JSON object on stdout, keys and values given as
 * alternating strings; a value that parses fully as a number is written
 * bare, anything else quoted. Terminated by NULL. */
static inline void bench_result(const char *first_key, ...)
{
    va_list ap;
    va_start(ap, first_key);
    printf("{");
    for (const char *k = first_key; k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        char *end;
        strtod(v, &end);
        int num = *v && !*end && strcmp(v, "nan") && strcmp(v, "inf");
        printf("%s\"%s\":%s%s%s", k == first_key ? "" : ",", k, num ? "" : "\"", v,
               num ? "" : "\"");
    }
    printf("}\n");
    fflush(stdout);
    va_end(ap);
}

/* Formats a number for bench_result into one of a few rotating buffers. */
static inline const char *bench_fmt(const char *fmt, double v)
{
    static char buf[16][48];
    static unsigned next;
    char *b = buf[next++ % 16];
    snprintf(b, sizeof buf[0], fmt, v);
    return b;
}

/* Streaming read bandwidth of one thread (GB/s, best of `passes`) over a
 * buffer of `bytes`: the bound for one exact query over n*d floats. */
static inline double bench_membw(size_t bytes, int passes)
{
    typedef uint64_t v4u __attribute__((vector_size(32)));
    size_t nv = bytes / sizeof(v4u);
    v4u *buf = (v4u *)aligned_alloc(64, nv * sizeof(v4u));
    if (!buf) bench_die("out of memory (%zu bytes)", bytes);
    memset(buf, 1, nv * sizeof(v4u)); /* touch every page before timing */
    double best = 0;
    volatile uint64_t sink = 0;
    for (int p = 0; p < passes; p++) {
        v4u a = {0, 0, 0, 0}, b = a, c = a, e = a;
        double t0 = bench_now();
        for (size_t i = 0; i + 4 <= nv; i += 4) {
            a += buf[i];
            b += buf[i + 1];
            c += buf[i + 2];
            e += buf[i + 3];
        }
        double t = bench_now() - t0;
        v4u s = a + b + c + e;
        sink += s[0] + s[1] + s[2] + s[3];
        double gbs = (double)bytes / t / 1e9;
        if (gbs > best) best = gbs;
    }
    (void)sink;
    free(buf);
    return best;
}

#endif
