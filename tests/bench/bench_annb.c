/*
 * bench_annb - measures libannb through its public API (annb.h) only, so it
 * measures whatever the library does when it runs.
 *
 *   bench_annb membw MB
 *       single-thread streaming read bandwidth over MB megabytes (GB/s)
 *   bench_annb ingest CSV D
 *       CSV parse rate: annb_vector_from_csv for an ID the file lacks reads
 *       and parses every row (the same reader as ann-build); D: dimension
 *   bench_annb search BUNDLE DATADIR LABEL NLAT OPENS TPUT_SECONDS THREADS LAT_SECONDS
 *       open time (first, and p50 of OPENS more), NLAT single queries
 *       (nq=1, k=10) for p50/p99 latency and recall@10 (stopping early after
 *       LAT_SECONDS), one batched call (nq=min(1000,q), k=100) for
 *       recall@100, then THREADS pthreads sharing the bundle, nq=1, k=10,
 *       for TPUT_SECONDS (or until every query is answered once).
 *
 * Each mode prints one JSON object on stdout (bench_common.h).
 */
#define _GNU_SOURCE
#include "annb.h"
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>

static void usage(void)
{
    fprintf(stderr, "usage: bench_annb membw MB | ingest CSV D | search BUNDLE DATADIR LABEL NLAT "
                    "OPENS TPUT_SECONDS THREADS LAT_SECONDS\n");
    exit(2);
}

static annb_bundle *open_or_die(const char *path, double *seconds)
{
    annb_bundle *b;
    annb_error err;
    double t0 = bench_now();
    if (annb_open(&b, path, NULL, &err) != ANNB_OK) bench_die("annb_open: %s", err.message);
    *seconds = bench_now() - t0;
    return b;
}

typedef struct tput_ctx {
    const annb_bundle *b;
    const bench_data *D;
    atomic_size_t next;
    double deadline;
    size_t limit;
    atomic_int failed;
} tput_ctx;

static void *tput_worker(void *arg)
{
    tput_ctx *c = arg;
    annb_hit hits[10];
    for (;;) {
        size_t i = atomic_fetch_add(&c->next, 1);
        if (i >= c->limit || bench_now() > c->deadline) break;
        if (annb_search(c->b, c->D->queries + (i % c->D->q) * c->D->d, 1, 10, NULL, hits))
            atomic_store(&c->failed, 1);
    }
    return NULL;
}

static int mode_search(char **a)
{
    const char *path = a[0], *label = a[2];
    size_t nlat = strtoull(a[3], NULL, 10), opens = strtoull(a[4], NULL, 10);
    double tput_s = atof(a[5]), lat_s = atof(a[7]);
    int nthreads = atoi(a[6]);
    bench_data D;
    bench_data_load(&D, a[1], 1);
    if (nlat > D.q) nlat = D.q;
    if (nthreads < 1 || nthreads > 64 || !nlat) usage();

    /* Open: the first open after the build (page cache warm from the write),
     * then the median of `opens` more. */
    double first, t;
    annb_close(open_or_die(path, &first));
    double *open_s = calloc(opens ? opens : 1, sizeof *open_s);
    for (size_t i = 0; i < opens; i++) {
        annb_close(open_or_die(path, &t));
        open_s[i] = t;
    }
    double open_p50 = opens ? bench_percentile(open_s, opens, 50) : first;
    annb_bundle *b = open_or_die(path, &t);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    if (info.count != D.n || info.dimension != D.d)
        bench_die("%s holds %llu x %u, the data set is %zu x %zu", path,
                  (unsigned long long)info.count, info.dimension, D.n, D.d);

    /* The bundle's vectors are the generator's, bit for bit (sampled). */
    size_t mismatch = 0, step = D.n / 1000 ? D.n / 1000 : 1;
    float *v = malloc(D.d * sizeof *v);
    for (size_t r = 0; r < D.n; r += step)
        if (annb_item_vector(b, D.ids[r], v) || memcmp(v, D.items + r * D.d, D.d * sizeof *v))
            mismatch++;
    free(v);
    if (mismatch) fprintf(stderr, "bench_annb: %zu sampled vectors differ from items.f32\n", mismatch);

    /* Latency, nq=1, k=10, after a few untimed warm-up queries. */
    annb_hit hits[BENCH_GT_K];
    int64_t ids[BENCH_GT_K];
    for (size_t i = 0; i < 5; i++)
        if (annb_search(b, D.queries + (D.q - 1 - i % D.q) * D.d, 1, 10, NULL, hits))
            bench_die("annb_search failed");
    double *lat = malloc(nlat * sizeof *lat), rec10 = 0, lat_sum = 0;
    size_t done = 0;
    double lat_start = bench_now();
    for (; done < nlat && (done < 10 || bench_now() - lat_start < lat_s); done++) {
        double t0 = bench_now();
        if (annb_search(b, D.queries + done * D.d, 1, 10, NULL, hits)) bench_die("annb_search failed");
        lat[done] = bench_now() - t0;
        lat_sum += lat[done];
        for (size_t j = 0; j < 10; j++) ids[j] = hits[j].id;
        rec10 += bench_recall_one(ids, D.gt + done * D.gtk, 10);
    }
    rec10 /= (double)done;
    double qps1 = (double)done / lat_sum;
    double p50 = bench_percentile(lat, done, 50), p99 = bench_percentile(lat, done, 99);

    /* Recall@100: one batched call. */
    size_t nb = D.q < 1000 ? D.q : 1000;
    annb_hit *bh = malloc(nb * BENCH_GT_K * sizeof *bh);
    double t0 = bench_now();
    if (annb_search(b, D.queries, nb, BENCH_GT_K, NULL, bh)) bench_die("annb_search failed");
    double batch_s = bench_now() - t0, rec100 = 0;
    for (size_t i = 0; i < nb; i++) {
        for (size_t j = 0; j < BENCH_GT_K; j++) ids[j] = bh[i * BENCH_GT_K + j].id;
        rec100 += bench_recall_one(ids, D.gt + i * D.gtk, BENCH_GT_K);
    }
    rec100 /= (double)nb;
    free(bh);

    /* Throughput: threads sharing the one open bundle. */
    tput_ctx c = {.b = b, .D = &D, .limit = D.q};
    atomic_init(&c.next, 0);
    atomic_init(&c.failed, 0);
    pthread_t th[64];
    t0 = bench_now();
    c.deadline = t0 + tput_s;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, tput_worker, &c)) bench_die("pthread_create failed");
    for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    double tput_wall = bench_now() - t0;
    size_t answered = atomic_load(&c.next);
    answered -= (size_t)nthreads; /* each thread's last fetch was not answered */
    if (answered > c.limit) answered = c.limit;
    if (atomic_load(&c.failed)) bench_die("annb_search failed in a thread");

    bench_result("system", "annb", "index", label, "faiss_index", info.index, "open_ms_first",
                 bench_fmt("%.3f", first * 1e3), "open_ms", bench_fmt("%.3f", open_p50 * 1e3),
                 "p50_ms", bench_fmt("%.4f", p50 * 1e3), "p99_ms", bench_fmt("%.4f", p99 * 1e3),
                 "nlat", bench_fmt("%.0f", (double)done), "qps1", bench_fmt("%.1f", qps1),
                 "qps2", bench_fmt("%.1f", (double)answered / tput_wall), "threads",
                 bench_fmt("%.0f", nthreads), "recall10", bench_fmt("%.4f", rec10), "recall100",
                 bench_fmt("%.4f", rec100), "batch_nq", bench_fmt("%.0f", (double)nb),
                 "batch_qps", bench_fmt("%.1f", (double)nb / batch_s), "vec_mismatch",
                 bench_fmt("%.0f", (double)mismatch), NULL);
    annb_close(b);
    free(lat);
    free(open_s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "membw")) {
        size_t mb = strtoull(argv[2], NULL, 10);
        double gbs = bench_membw(mb << 20, 5);
        bench_result("system", "membw", "mb", bench_fmt("%.0f", (double)mb), "gbs",
                     bench_fmt("%.2f", gbs), NULL);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "ingest")) {
        size_t size;
        const void *p = bench_map(argv[2], &size);
        munmap((void *)p, size);
        float v[4096];
        size_t d = strtoull(argv[3], NULL, 10);
        if (!d || d > 4096) usage();
        annb_error err;
        double t0 = bench_now();
        int rc = annb_vector_from_csv(v, d, argv[2], INT64_MIN + 1, &err);
        double t = bench_now() - t0;
        if (rc != ANNB_E_NOT_FOUND)
            bench_die("annb_vector_from_csv: %s", err.message);
        bench_result("system", "ingest", "bytes", bench_fmt("%.0f", (double)size), "seconds",
                     bench_fmt("%.3f", t), "mbs", bench_fmt("%.1f", (double)size / t / 1e6), NULL);
        return 0;
    }
    if (argc == 10 && !strcmp(argv[1], "search")) return mode_search(argv + 2);
    usage();
}
