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
#include <pthread.h>
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
#define BENCH_STR_(x) #x
#define BENCH_STR(x) BENCH_STR_(x)
/* The filtered benchmark (bench_gen's catalog, bench_gt --filters): seen
 * items excluded per query, and the genres covering about 10% and 1% of the
 * items (bit 0 and bit 1 of items.genres). */
#define BENCH_SEEN_SMALL 100
#define BENCH_SEEN_LARGE 1000
#define BENCH_GENRE10 "Drama"
#define BENCH_GENRE1 "Film-Noir"

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the calling thread (s): what a search costs when the other
 * work on a shared machine makes it wait for a core (wall time counts the
 * wait, this does not). */
static inline double bench_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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
    size_t n, q, d, gtk, seed;
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
        else if (!strcmp(key, "seed")) D->seed = (size_t)v;
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

static inline int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
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

/* Result lines: one JSON object per line on stdout, built field by field:
 * bench_json_begin(); bench_json_str("system", "annb"); ...; bench_json_end(). */
static int bench_json_fields;

static inline void bench_json_begin(void)
{
    bench_json_fields = 0;
    putchar('{');
}

static inline void bench_json_key(const char *key)
{
    printf("%s\"%s\":", bench_json_fields++ ? "," : "", key);
}

/* Strings here are labels and Faiss factory strings: no escaping needed
 * beyond quotes and backslashes, which are dropped. */
static inline void bench_json_str(const char *key, const char *v)
{
    bench_json_key(key);
    putchar('"');
    for (; *v; v++)
        if (*v != '"' && *v != '\\' && (unsigned char)*v >= 0x20) putchar(*v);
    putchar('"');
}

static inline void bench_json_num(const char *key, double v)
{
    bench_json_key(key);
    if (v != v || v - v != 0) printf("null"); /* NaN or infinite */
    else printf("%.6g", v);
}

static inline void bench_json_end(void)
{
    printf("}\n");
    fflush(stdout);
}

/* ---- search measurement, shared by every system measured in-process ---- */

/* Answers nq queries (row-major, d floats each) with the top k item IDs,
 * best first, into ids[nq*k] (unused slots: any value not an item ID).
 * Returns 0 or non-zero on failure. Must be thread-safe for nq=1. */
typedef int (*bench_search_fn)(const void *ctx, const float *queries, size_t nq, size_t k,
                               int64_t *ids);

typedef struct bench_search_result {
    double p50_ms, p99_ms; /* nq=1, k=10, one thread */
    double qps1;           /* nlat / sum of their latencies */
    double cpu_qps1;       /* nlat / sum of their calling-thread CPU times */
    double recall10;       /* over the nlat latency queries */
    size_t nlat;           /* latency queries done (fewer when time ran out) */
    double qps2;           /* `threads` threads sharing ctx, nq=1, k=10 (0: not run) */
    double recall100;      /* one batched call, nq=batch_nq, k=100 (0: not run) */
    double batch_qps;
    size_t batch_nq;
} bench_search_result;

typedef struct bench_tput {
    bench_search_fn fn;
    const void *ctx;
    const bench_data *D;
    size_t next, limit; /* __atomic builtins: the header is also C++ */
    double deadline;
    int failed;
} bench_tput;

static inline void *bench_tput_worker(void *arg)
{
    bench_tput *c = (bench_tput *)arg;
    int64_t ids[10];
    for (;;) {
        size_t i = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
        if (i >= c->limit || bench_now() > c->deadline) break;
        if (c->fn(c->ctx, c->D->queries + (i % c->D->q) * c->D->d, 1, 10, ids))
            __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Latency and recall@10 over up to nlat single queries (stopping once
 * lat_seconds have passed, after at least 10); recall@100 from one batched
 * call when batch is set; throughput of `threads` threads for tput_seconds
 * (or until every query was answered once) when threads > 0. */
static inline void bench_measure(bench_search_result *r, const bench_data *D, bench_search_fn fn,
                                 const void *ctx, size_t nlat, double lat_seconds, int batch,
                                 int threads, double tput_seconds)
{
    int64_t ids[BENCH_GT_K];
    memset(r, 0, sizeof *r);
    if (nlat > D->q) nlat = D->q;
    for (size_t i = 0; i < 5; i++) /* warm-up, untimed, on queries the latency pass does not use */
        if (fn(ctx, D->queries + (D->q - 1 - i % D->q) * D->d, 1, 10, ids))
            bench_die("search failed");
    double *lat = (double *)malloc((nlat ? nlat : 1) * sizeof *lat), sum = 0, cpu = 0,
           start = bench_now();
    size_t done = 0;
    for (; done < nlat && (done < 10 || bench_now() - start < lat_seconds); done++) {
        double c0 = bench_thread_cpu(), t0 = bench_now();
        if (fn(ctx, D->queries + done * D->d, 1, 10, ids)) bench_die("search failed");
        lat[done] = bench_now() - t0;
        cpu += bench_thread_cpu() - c0;
        sum += lat[done];
        r->recall10 += bench_recall_one(ids, D->gt + done * D->gtk, 10);
    }
    r->nlat = done;
    r->recall10 /= (double)done;
    r->qps1 = (double)done / sum;
    r->cpu_qps1 = cpu > 0 ? (double)done / cpu : 0;
    r->p50_ms = bench_percentile(lat, done, 50) * 1e3;
    r->p99_ms = bench_percentile(lat, done, 99) * 1e3;
    free(lat);

    if (batch) {
        size_t nb = D->q < 1000 ? D->q : 1000;
        int64_t *bids = (int64_t *)malloc(nb * BENCH_GT_K * sizeof *bids);
        if (!bids) bench_die("out of memory");
        double t0 = bench_now();
        if (fn(ctx, D->queries, nb, BENCH_GT_K, bids)) bench_die("batched search failed");
        r->batch_qps = (double)nb / (bench_now() - t0);
        r->batch_nq = nb;
        for (size_t i = 0; i < nb; i++)
            r->recall100 += bench_recall_one(bids + i * BENCH_GT_K, D->gt + i * D->gtk, BENCH_GT_K);
        r->recall100 /= (double)nb;
        free(bids);
    }

    if (threads > 0) {
        bench_tput c = {fn, ctx, D, 0, D->q, 0, 0};
        pthread_t th[64];
        if (threads > 64) threads = 64;
        double t0 = bench_now();
        c.deadline = t0 + tput_seconds;
        for (int i = 0; i < threads; i++)
            if (pthread_create(&th[i], NULL, bench_tput_worker, &c)) bench_die("pthread_create failed");
        for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
        double wall = bench_now() - t0;
        /* Each thread's last fetch was not answered. */
        size_t answered = c.next - (size_t)threads;
        if (answered > c.limit) answered = c.limit;
        if (c.failed) bench_die("search failed in a thread");
        r->qps2 = (double)answered / wall;
    }
}

static inline void bench_json_search(const bench_search_result *r)
{
    bench_json_num("p50_ms", r->p50_ms);
    bench_json_num("p99_ms", r->p99_ms);
    bench_json_num("qps1", r->qps1);
    if (r->cpu_qps1 > 0) bench_json_num("cpu_qps1", r->cpu_qps1);
    bench_json_num("recall10", r->recall10);
    bench_json_num("nlat", (double)r->nlat);
    if (r->qps2 > 0) bench_json_num("qps2", r->qps2);
    if (r->batch_nq) {
        bench_json_num("recall100", r->recall100);
        bench_json_num("batch_qps", r->batch_qps);
        bench_json_num("batch_nq", (double)r->batch_nq);
    }
}

/* ---- parameter sweeps (IVF nprobe, HNSW efSearch) ---- */

#define BENCH_SWEEP_MAX 64
#define BENCH_MATCH_RECALL 0.95

/* Parses a comma-separated list of positive integers ("1,2,4") into vals
 * (at most BENCH_SWEEP_MAX); returns how many. Dies on anything else. */
static inline size_t bench_parse_values(unsigned *vals, const char *s)
{
    size_t n = 0;
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || !v || v > 1u << 20 || n == BENCH_SWEEP_MAX || (*end && *end != ','))
            bench_die("bad sweep list '%s'", s);
        vals[n++] = (unsigned)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

/* Sets the search knob of ctx to value before the next measurement. */
typedef void (*bench_set_fn)(void *ctx, unsigned value);

/* Adds fields of the caller's own to a sweep line (e.g. a filter's name and
 * how many answers came back short); may be NULL. */
typedef void (*bench_extra_fn)(void *ctx);

/* The same knob values for every system, so that they can be compared at
 * equal parameter and at equal recall: for each value, latency and
 * recall@10 over up to nlat queries ("<system>-sweep" lines). The first
 * value reaching recall@10 >= BENCH_MATCH_RECALL also gets its
 * `threads`-thread throughput measured ("<system>-matched"); the sweep goes
 * on up to the first value reaching stop_recall (>= BENCH_MATCH_RECALL; a
 * "<system>-sweep-end" line says whether it was reached). Three values in a
 * row giving exactly the same recall below stop_recall mean the knob has no
 * effect: the sweep stops there ("<system>-sweep-stopped").
 * Returns the matched value, or 0 when no value reached it. */
static inline unsigned bench_sweep_to(const char *system, const char *label, const char *index_str,
                                      const char *param, const bench_data *D, bench_search_fn fn,
                                      void *ctx, bench_set_fn set, const unsigned *vals,
                                      size_t nvals, size_t nlat, double lat_s, int threads,
                                      double tput_s, double stop_recall, bench_extra_fn extra)
{
    char name[64];
    bench_search_result r;
    double prev = -1, best = 0;
    int same = 0;
    unsigned matched = 0, last = 0;
    for (size_t i = 0; i < nvals; i++) {
        set(ctx, vals[i]);
        last = vals[i];
        bench_measure(&r, D, fn, ctx, nlat, lat_s, 0, 0, 0);
        snprintf(name, sizeof name, "%s-sweep", system);
        bench_json_begin();
        bench_json_str("system", name);
        bench_json_str("index", label);
        bench_json_str("faiss_index", index_str);
        bench_json_str("param", param);
        bench_json_num("value", vals[i]);
        bench_json_search(&r);
        if (extra) extra(ctx);
        bench_json_end();
        if (r.recall10 > best) best = r.recall10;
        same = r.recall10 == prev ? same + 1 : 0;
        prev = r.recall10;
        if (same == 2 && r.recall10 < stop_recall) {
            snprintf(name, sizeof name, "%s-sweep-stopped", system);
            bench_json_begin();
            bench_json_str("system", name);
            bench_json_str("index", label);
            bench_json_str("param", param);
            bench_json_num("value", vals[i]);
            if (extra) extra(ctx);
            bench_json_end();
            break;
        }
        if (!matched && r.recall10 >= BENCH_MATCH_RECALL) {
            matched = vals[i];
            if (threads > 0) bench_measure(&r, D, fn, ctx, nlat, lat_s, 0, threads, tput_s);
            snprintf(name, sizeof name, "%s-matched", system);
            bench_json_begin();
            bench_json_str("system", name);
            bench_json_str("index", label);
            bench_json_str("faiss_index", index_str);
            bench_json_str("param", param);
            bench_json_num("value", vals[i]);
            bench_json_num("threads", threads);
            bench_json_search(&r);
            if (extra) extra(ctx);
            bench_json_end();
        }
        if (r.recall10 >= stop_recall) break;
    }
    if (stop_recall > BENCH_MATCH_RECALL) {
        snprintf(name, sizeof name, "%s-sweep-end", system);
        bench_json_begin();
        bench_json_str("system", name);
        bench_json_str("index", label);
        bench_json_str("param", param);
        bench_json_num("stop_recall", stop_recall);
        bench_json_num("reached", best >= stop_recall);
        bench_json_num("best_recall10", best);
        bench_json_num("last_value", last);
        if (extra) extra(ctx);
        bench_json_end();
    }
    return matched;
}

/* bench_sweep_to, stopping at the first value reaching BENCH_MATCH_RECALL. */
static inline unsigned bench_sweep(const char *system, const char *label, const char *index_str,
                                   const char *param, const bench_data *D, bench_search_fn fn,
                                   void *ctx, bench_set_fn set, const unsigned *vals,
                                   size_t nvals, size_t nlat, double lat_s, int threads,
                                   double tput_s)
{
    return bench_sweep_to(system, label, index_str, param, D, fn, ctx, set, vals, nvals, nlat,
                          lat_s, threads, tput_s, BENCH_MATCH_RECALL, NULL);
}

/* Open (load) timing: the first call, then the median of `repeats` more. */
typedef void (*bench_open_fn)(const void *ctx);

static inline void bench_measure_open(double *first_ms, double *p50_ms, bench_open_fn fn,
                                      const void *ctx, size_t repeats)
{
    double t0 = bench_now();
    fn(ctx);
    *first_ms = (bench_now() - t0) * 1e3;
    *p50_ms = *first_ms;
    if (!repeats) return;
    double *t = (double *)malloc(repeats * sizeof *t);
    for (size_t i = 0; i < repeats; i++) {
        t0 = bench_now();
        fn(ctx);
        t[i] = (bench_now() - t0) * 1e3;
    }
    *p50_ms = bench_percentile(t, repeats, 50);
    free(t);
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
