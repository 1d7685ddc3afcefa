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

static void usage(void)
{
    fprintf(stderr, "usage: bench_annb membw MB | ingest CSV D | search BUNDLE DATADIR LABEL NLAT "
                    "OPENS TPUT_SECONDS THREADS LAT_SECONDS\n");
    exit(2);
}

static annb_bundle *open_or_die(const char *path)
{
    annb_bundle *b;
    annb_error err;
    if (annb_open(&b, path, NULL, &err) != ANNB_OK) bench_die("annb_open: %s", err.message);
    return b;
}

static void open_close(const void *path)
{
    annb_close(open_or_die(path));
}

/* bench_search_fn over annb_search: hits -> IDs. */
static int search_ids(const void *ctx, const float *queries, size_t nq, size_t k, int64_t *ids)
{
    annb_hit one[BENCH_GT_K], *hits = nq * k <= BENCH_GT_K ? one : malloc(nq * k * sizeof *hits);
    if (!hits) return -1;
    int rc = annb_search(ctx, queries, nq, k, NULL, hits);
    for (size_t i = 0; i < nq * k; i++) ids[i] = hits[i].id;
    if (hits != one) free(hits);
    return rc;
}

static int mode_search(char **a)
{
    const char *path = a[0], *label = a[2];
    size_t nlat = strtoull(a[3], NULL, 10), opens = strtoull(a[4], NULL, 10);
    double tput_s = atof(a[5]), lat_s = atof(a[7]);
    int nthreads = atoi(a[6]);
    bench_data D;
    bench_data_load(&D, a[1], 1);
    if (nthreads < 1 || nthreads > 64 || !nlat) usage();

    double open_first, open_p50;
    bench_measure_open(&open_first, &open_p50, open_close, path, opens);
    annb_bundle *b = open_or_die(path);
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

    bench_search_result r;
    bench_measure(&r, &D, search_ids, b, nlat, lat_s, 1, nthreads, tput_s);
    bench_json_begin();
    bench_json_str("system", "annb");
    bench_json_str("index", label);
    bench_json_str("faiss_index", info.index);
    bench_json_num("open_ms_first", open_first);
    bench_json_num("open_ms", open_p50);
    bench_json_num("threads", nthreads);
    bench_json_search(&r);
    bench_json_num("vec_mismatch", (double)mismatch);
    bench_json_end();
    annb_close(b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "membw")) {
        size_t mb = strtoull(argv[2], NULL, 10);
        double gbs = bench_membw(mb << 20, 5);
        bench_json_begin();
        bench_json_str("system", "membw");
        bench_json_num("mb", (double)mb);
        bench_json_num("gbs", gbs);
        bench_json_end();
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
        bench_json_begin();
        bench_json_str("system", "ingest");
        bench_json_num("bytes", (double)size);
        bench_json_num("seconds", t);
        bench_json_num("mbs", (double)size / t / 1e6);
        bench_json_end();
        return 0;
    }
    if (argc == 10 && !strcmp(argv[1], "search")) return mode_search(argv + 2);
    usage();
}
