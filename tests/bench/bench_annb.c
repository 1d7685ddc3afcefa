/*
 * bench_annb - measures libannb through its public API (annb.h) only, so it
 * measures whatever the library does when it runs.
 *
 *   bench_annb membw MB
 *       single-thread streaming read bandwidth over MB megabytes (GB/s)
 *   bench_annb ingest CSV D
 *       CSV parse rate: annb_vector_from_csv for an ID the file lacks reads
 *       and parses every row (the same reader as ann-build); D: dimension
 *   bench_annb choose N D NAME...
 *       what each index NAME ("auto", "ivf", ...) resolves to for N x D
 *       (annb_index_choose, no memory budget)
 *   bench_annb search BUNDLE DATADIR LABEL NLAT OPENS TPUT_SECONDS THREADS LAT_SECONDS
 *       open time (first, and p50 of OPENS more; also p50 with
 *       ANNB_OPEN_VERIFY_ALL), NLAT single queries (nq=1, k=10, default
 *       options: the search parameter the bundle stores) for p50/p99
 *       latency and recall@10 (stopping early after LAT_SECONDS), one
 *       batched call (nq=min(1000,q), k=100) for recall@100, then THREADS
 *       pthreads sharing the bundle, nq=1, k=10, for TPUT_SECONDS (or until
 *       every query is answered once).
 *   bench_annb open BUNDLE OPENS
 *       annb_open + annb_close of BUNDLE: the first, then the best and
 *       median of OPENS more (the open time of issue 13: it should not
 *       depend on the bundle's size); also the median with
 *       ANNB_OPEN_VERIFY_ALL over OPENS / 10 + 1 more.
 *   bench_annb sweep BUNDLE DATADIR LABEL NLAT TPUT_SECONDS THREADS LAT_SECONDS PARAM V,V,...
 *       the same single queries with opts.nprobe (PARAM nprobe) or
 *       opts.ef_search (PARAM efSearch) set to each value in turn, up to
 *       the first reaching recall@10 >= 0.95, whose THREADS-thread
 *       throughput is measured too (bench_sweep, as bench_faiss does).
 *   bench_annb sweep ... PARAM V,V,... STOP [FILTER]
 *       the same, going on to the first value reaching recall@10 >= STOP
 *       (e.g. 0.99; bench_sweep_to). FILTER (bench_gt --filters): seen100
 *       or seen1000 (the query's seen items as opts.exclude_ids), genre10 or
 *       genre1 (opts.genres, BENCH_GENRE10 / BENCH_GENRE1), recall against
 *       that filter's exact answers; lines "annb-filter-sweep" with the
 *       filter's name and how many answers had fewer than 10 results.
 *
 * Each mode prints JSON objects, one a line, on stdout (bench_common.h).
 */
#define _GNU_SOURCE
#include "annb.h"
#include "bench_common.h"

#include <math.h>

static void usage(void)
{
    fprintf(stderr, "usage: bench_annb membw MB | ingest CSV D | choose N D NAME... | open BUNDLE OPENS\n"
                    "       bench_annb search BUNDLE DATADIR LABEL NLAT OPENS TPUT_SECONDS THREADS "
                    "LAT_SECONDS\n"
                    "       bench_annb sweep BUNDLE DATADIR LABEL NLAT TPUT_SECONDS THREADS "
                    "LAT_SECONDS nprobe|efSearch V,V,... [STOP_RECALL [FILTER]]\n");
    exit(2);
}

static annb_bundle *open_or_die(const char *path, unsigned flags)
{
    annb_bundle *b;
    annb_error err;
    annb_open_opts o = ANNB_OPEN_OPTS_INIT;
    o.flags = flags;
    if (annb_open(&b, path, &o, &err) != ANNB_OK) bench_die("annb_open: %s", err.message);
    return b;
}

static void open_close(const void *path)
{
    annb_close(open_or_die(path, 0));
}

static void open_verify_close(const void *path)
{
    annb_close(open_or_die(path, ANNB_OPEN_VERIFY_ALL));
}

/* What the searches run against: a bundle and the options they pass; for a
 * filtered sweep, each query's seen IDs (opts.exclude_ids per query) and
 * counters of answers with fewer than k results. */
typedef struct search_ctx {
    const annb_bundle *b;
    annb_search_opts opts;
    const bench_data *D;
    const char *filter;       /* NULL: unfiltered */
    const int64_t *seen;      /* D->q * nseen IDs, or NULL */
    size_t nseen;
    size_t answers, shorts;   /* __atomic builtins: searches may run in threads */
} search_ctx;

/* bench_search_fn over annb_search: hits -> IDs. */
static int search_ids(const void *ctx_v, const float *queries, size_t nq, size_t k, int64_t *ids)
{
    search_ctx *ctx = (search_ctx *)ctx_v;
    annb_search_opts opts = ctx->opts;
    if (ctx->seen) { /* one query per call: which one, from its address */
        size_t qi = (size_t)(queries - ctx->D->queries) / ctx->D->d;
        if (nq != 1 || qi >= ctx->D->q) return -1;
        opts.exclude_ids = ctx->seen + qi * ctx->nseen;
        opts.exclude_count = ctx->nseen;
    }
    annb_hit one[BENCH_GT_K], *hits = nq * k <= BENCH_GT_K ? one : malloc(nq * k * sizeof *hits);
    if (!hits) return -1;
    int rc = annb_search(ctx->b, queries, nq, k, &opts, hits);
    size_t shorts = 0;
    for (size_t i = 0; i < nq * k; i++) {
        ids[i] = hits[i].id;
        if (hits[i].id == ANNB_ID_NONE && (i % k == k - 1)) shorts++;
    }
    __atomic_fetch_add(&ctx->answers, nq, __ATOMIC_RELAXED);
    __atomic_fetch_add(&ctx->shorts, shorts, __ATOMIC_RELAXED);
    if (hits != one) free(hits);
    return rc;
}

/* bench_extra_fn: the filter and the short answers since the last line. */
static void filter_fields(void *ctx_v)
{
    search_ctx *ctx = ctx_v;
    bench_json_str("filter", ctx->filter);
    bench_json_num("answers", (double)ctx->answers);
    bench_json_num("short_answers", (double)ctx->shorts);
    ctx->answers = ctx->shorts = 0;
}

/* Opens the bundle for measuring and checks it holds the data set's items. */
static annb_bundle *open_checked(annb_bundle_info *info, const char *path, const bench_data *D)
{
    annb_bundle *b = open_or_die(path, 0);
    annb_bundle_info_get(info, b);
    if (info->count != D->n || info->dimension != D->d)
        bench_die("%s holds %llu x %u, the data set is %zu x %zu", path,
                  (unsigned long long)info->count, info->dimension, D->n, D->d);
    return b;
}

/* The largest section Faiss deserialises at open (FAIS), in bytes; 0: none. */
static uint64_t fais_bytes(const annb_bundle *b, const annb_bundle_info *info)
{
    annb_section_info s;
    for (uint32_t i = 0; i < info->section_count; i++)
        if (annb_section_info_get(&s, b, i) == ANNB_OK && !strcmp(s.kind, "FAIS"))
            return s.stored_size;
    return 0;
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

    double open_first, open_p50, verify_first, verify_p50;
    bench_measure_open(&open_first, &open_p50, open_close, path, opens);
    bench_measure_open(&verify_first, &verify_p50, open_verify_close, path, opens);
    annb_bundle_info info;
    annb_bundle *b = open_checked(&info, path, &D);

    /* The bundle's vectors are the generator's, bit for bit (sampled). */
    size_t mismatch = 0, step = D.n / 1000 ? D.n / 1000 : 1;
    float *v = malloc(D.d * sizeof *v);
    for (size_t r = 0; r < D.n; r += step)
        if (annb_item_vector(b, D.ids[r], v) || memcmp(v, D.items + r * D.d, D.d * sizeof *v))
            mismatch++;
    free(v);
    if (mismatch) fprintf(stderr, "bench_annb: %zu sampled vectors differ from items.f32\n", mismatch);

    search_ctx ctx = {b, ANNB_SEARCH_OPTS_INIT, &D, NULL, NULL, 0, 0, 0};
    bench_search_result r;
    bench_measure(&r, &D, search_ids, &ctx, nlat, lat_s, 1, nthreads, tput_s);
    bench_json_begin();
    bench_json_str("system", "annb");
    bench_json_str("index", label);
    bench_json_str("faiss_index", info.index);
    bench_json_num("file_bytes", (double)info.file_size);
    bench_json_num("fais_bytes", (double)fais_bytes(b, &info));
    bench_json_num("open_ms_first", open_first);
    bench_json_num("open_ms", open_p50);
    bench_json_num("open_verify_ms", verify_p50);
    /* The parameter the searches above used: the bundle's (SPEC 6.14). */
    bench_json_num("has_recall", info.has_recall);
    bench_json_num("nprobe", info.recall.nprobe);
    bench_json_num("ef_search", info.recall.ef_search);
    bench_json_num("threads", nthreads);
    bench_json_search(&r);
    bench_json_num("vec_mismatch", (double)mismatch);
    bench_json_end();
    annb_close(b);
    return 0;
}

static void set_param(void *ctx_v, unsigned value)
{
    search_ctx *ctx = ctx_v;
    if (ctx->opts.nprobe) ctx->opts.nprobe = value;
    else ctx->opts.ef_search = value;
}

static int mode_sweep(int argc, char **a)
{
    const char *path = a[0], *label = a[2], *param = a[7];
    size_t nlat = strtoull(a[3], NULL, 10);
    double tput_s = atof(a[4]), lat_s = atof(a[6]);
    double stop = argc > 9 ? atof(a[9]) : BENCH_MATCH_RECALL;
    const char *filter = argc > 10 ? a[10] : NULL;
    int nthreads = atoi(a[5]);
    unsigned vals[BENCH_SWEEP_MAX];
    size_t nvals = bench_parse_values(vals, a[8]);
    if (nthreads < 0 || nthreads > 64 || !nlat || stop < BENCH_MATCH_RECALL || stop > 1) usage();
    bench_data D;
    bench_data_load(&D, a[1], 1);
    annb_bundle_info info;
    annb_bundle *b = open_checked(&info, path, &D);
    search_ctx ctx = {b, ANNB_SEARCH_OPTS_INIT, &D, filter, NULL, 0, 0, 0};
    /* set_param tells the knobs apart by which one is non-zero. */
    if (!strcmp(param, "nprobe")) ctx.opts.nprobe = 1;
    else if (!strcmp(param, "efSearch")) ctx.opts.ef_search = 1;
    else usage();
    const char *genre[1];
    if (filter) {
        char name[64];
        snprintf(name, sizeof name, "gt-%s.ids", filter);
        D.gt = bench_map_part(a[1], name, D.q * D.gtk * sizeof *D.gt);
        if (!strcmp(filter, "seen" BENCH_STR(BENCH_SEEN_SMALL))) ctx.nseen = BENCH_SEEN_SMALL;
        else if (!strcmp(filter, "seen" BENCH_STR(BENCH_SEEN_LARGE))) ctx.nseen = BENCH_SEEN_LARGE;
        else if (!strcmp(filter, "genre10")) genre[0] = BENCH_GENRE10;
        else if (!strcmp(filter, "genre1")) genre[0] = BENCH_GENRE1;
        else bench_die("unknown filter '%s'", filter);
        if (ctx.nseen) {
            snprintf(name, sizeof name, "%s.ids", filter);
            ctx.seen = bench_map_part(a[1], name, D.q * ctx.nseen * sizeof *ctx.seen);
        } else {
            ctx.opts.genres = genre;
            ctx.opts.genre_count = 1;
        }
    }
    bench_sweep_to(filter ? "annb-filter" : "annb", label, info.index, param, &D, search_ids, &ctx,
                   set_param, vals, nvals, nlat, lat_s, filter ? 0 : nthreads, tput_s, stop,
                   filter ? filter_fields : NULL);
    annb_close(b);
    return 0;
}

static int mode_open(char **a)
{
    const char *path = a[0];
    size_t opens = strtoull(a[1], NULL, 10);
    if (!opens) usage();
    double *t = malloc(opens * sizeof *t), first, best = INFINITY, p50, vfirst, vp50;
    if (!t) bench_die("out of memory");
    double t0 = bench_now();
    open_close(path);
    first = (bench_now() - t0) * 1e3;
    for (size_t i = 0; i < opens; i++) {
        t0 = bench_now();
        open_close(path);
        t[i] = (bench_now() - t0) * 1e3;
        if (t[i] < best) best = t[i];
    }
    p50 = bench_percentile(t, opens, 50);
    free(t);
    bench_measure_open(&vfirst, &vp50, open_verify_close, path, opens / 10 + 1);
    annb_bundle *b = open_or_die(path, 0);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    bench_json_begin();
    bench_json_str("system", "annb-open");
    bench_json_str("bundle", path);
    bench_json_num("items", (double)info.count);
    bench_json_num("file_bytes", (double)info.file_size);
    bench_json_num("opens", (double)opens);
    bench_json_num("open_ms_first", first);
    bench_json_num("open_ms_best", best);
    bench_json_num("open_ms", p50);
    bench_json_num("open_verify_ms", vp50);
    bench_json_end();
    annb_close(b);
    return 0;
}

static int mode_choose(int argc, char **argv)
{
    uint64_t n = strtoull(argv[0], NULL, 10);
    uint32_t d = (uint32_t)strtoul(argv[1], NULL, 10);
    for (int i = 2; i < argc; i++) {
        char out[257];
        annb_index_choose(out, sizeof out, argv[i], n, d, 0);
        bench_json_begin();
        bench_json_str("system", "choose");
        bench_json_str("name", argv[i]);
        bench_json_num("n", (double)n);
        bench_json_num("d", d);
        bench_json_str("index", out);
        bench_json_end();
    }
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
    if (argc >= 11 && argc <= 13 && !strcmp(argv[1], "sweep")) return mode_sweep(argc - 2, argv + 2);
    if (argc == 4 && !strcmp(argv[1], "open")) return mode_open(argv + 2);
    if (argc >= 5 && !strcmp(argv[1], "choose")) return mode_choose(argc - 2, argv + 2);
    usage();
}
