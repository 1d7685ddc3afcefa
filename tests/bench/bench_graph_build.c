/*
 * bench_graph_build - where the build of annb's graph index spends its time,
 * and what the graph it builds finds (issue 13; docs/graph.md, "Build").
 *
 *   bench_graph_build DATADIR THREADS [EF,EF,... [EF100,EF100,...]]
 *
 * Builds the graph `ann-build --index graph` builds (Graph32,SQ8, build ef
 * 128, inner product, rows in ascending ID order) over DATADIR's items
 * (bench_common.h) on THREADS threads, with annb_graph_params.times: wall,
 * CPU and span (the busiest thread's CPU) of each step. Then tunes it as
 * ann-build does without users (annb_tune_run: 1000 item questions, k 10 and
 * 100, target 0.95) and measures recall@10 of DATADIR's queries against
 * gt.ids at each EF (default 16,24,32,48,64,96,128), and recall@100 at each
 * EF100 (default 128,256,512,1024), where the tuner's item questions'
 * recall@10 and @100 are measured too. The "digest" of the
 * graph's arrays is the same for every THREADS when the build is
 * deterministic. JSON lines on stdout: "graph-build", "graph-tune",
 * "graph-item-recall", "graph-recall".
 *
 * Linked with libannb.a: it reaches the internal graph.h, tune.h and
 * index_build.h.
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "graph.h"
#include "index_build.h" /* annb_graph_tune_search */
#include "tune.h"

static const char *const step_names[ANNB_GRAPH_STEPS] = {"codes", "link", "gather", "reverse",
                                                         "connect", "reorder"};

static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* FNV-1a over the bytes: equal graphs, equal digests. */
static uint64_t digest(uint64_t h, const void *p, size_t size)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < size; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

typedef struct id_row {
    int64_t id;
    size_t row;
} id_row;

static int cmp_id_row(const void *a, const void *b)
{
    int64_t x = ((const id_row *)a)->id, y = ((const id_row *)b)->id;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bench_graph_build DATADIR THREADS [EF,EF,... [EF100,EF100,...]]\n");
        return 2;
    }
    bench_data D;
    bench_data_load(&D, argv[1], 1);
    int threads = atoi(argv[2]);
    unsigned efs[BENCH_SWEEP_MAX], efs100[BENCH_SWEEP_MAX];
    size_t nef = bench_parse_values(efs, argc > 3 ? argv[3] : "16,24,32,48,64,96,128");
    size_t nef100 = bench_parse_values(efs100, argc > 4 ? argv[4] : "128,256,512,1024");

    /* Rows in ascending ID order, as a bundle stores them. */
    id_row *order = malloc(D.n * sizeof *order);
    float *x = malloc(D.n * D.d * sizeof *x);
    int64_t *ids = malloc(D.n * sizeof *ids);
    if (!order || !x || !ids) bench_die("out of memory");
    for (size_t i = 0; i < D.n; i++) order[i] = (id_row){D.ids[i], i};
    qsort(order, D.n, sizeof *order, cmp_id_row);
    for (size_t r = 0; r < D.n; r++) {
        ids[r] = order[r].id;
        memcpy(x + r * D.d, D.items + order[r].row * D.d, D.d * sizeof *x);
    }
    free(order);

    annb_graph_times times;
    annb_graph_params p = {.degree = ANNB_GRAPH_DEFAULT_DEGREE,
                           .build_ef = ANNB_GRAPH_DEFAULT_BUILD_EF, .sq8 = 1, .times = &times};
    annb_graph_built gb;
    annb_error err = {0};
    double t0 = bench_now(), c0 = process_cpu();
    if (annb_graph_build(&gb, x, D.n, (uint32_t)D.d, ANNB_METRIC_IP, &p, threads, &err))
        bench_die("annb_graph_build: %s", err.message);
    double wall = bench_now() - t0, cpu = process_cpu() - c0;
    const annb_graph *g = &gb.g;
    uint64_t h = 0xcbf29ce484222325ull;
    h = digest(h, gb.adj, g->n * g->degree * sizeof *gb.adj);
    h = digest(h, gb.entry, g->nentry * sizeof *gb.entry);
    h = digest(h, gb.codes, g->n * g->d);
    h = digest(h, gb.row_of, g->n * sizeof *gb.row_of);
    bench_json_begin();
    bench_json_str("system", "graph-build");
    bench_json_num("n", (double)D.n);
    bench_json_num("d", (double)D.d);
    bench_json_num("threads", threads);
    bench_json_num("wall_s", wall);
    bench_json_num("cpu_s", cpu);
    double span = 0;
    for (int s = 0; s < ANNB_GRAPH_STEPS; s++) span += times.span[s];
    bench_json_num("span_s", span);
    bench_json_num("batches", (double)times.batches);
    bench_json_num("unreached", (double)times.unreached);
    for (int s = 0; s < ANNB_GRAPH_STEPS; s++) {
        char key[64];
        snprintf(key, sizeof key, "%s_wall_s", step_names[s]);
        bench_json_num(key, times.wall[s]);
        snprintf(key, sizeof key, "%s_cpu_s", step_names[s]);
        bench_json_num(key, times.cpu[s]);
        snprintf(key, sizeof key, "%s_span_s", step_names[s]);
        bench_json_num(key, times.span[s]);
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    bench_json_str("digest", hex);
    bench_json_end();

    /* Tuning as ann-build does it with no users: item questions. */
    annb_graph_tune_ctx tc = {g, annb_graph_pool_new(g->n), ANNB_METRIC_IP, threads, {0}};
    if (!tc.pool) bench_die("out of memory");
    uint32_t ks[2] = {10, 100}, questions = 0;
    annb_tune_pick picks[2];
    annb_tune_in in = {.vecs = x, .n = D.n, .d = (uint32_t)D.d, .metric = ANNB_METRIC_IP,
                       .target = 0.95, .sample = 1000, .ks = ks, .nk = 2, .lowest = 16,
                       .highest = ANNB_TUNE_MAX_EF, .lowest_above_k = 1,
                       .search = annb_graph_tune_search, .ctx = &tc};
    t0 = bench_now();
    c0 = process_cpu();
    if (annb_tune_run(picks, &questions, &in, &err)) bench_die("annb_tune_run: %s", err.message);
    bench_json_begin();
    bench_json_str("system", "graph-tune");
    bench_json_num("threads", threads);
    bench_json_num("wall_s", bench_now() - t0);
    bench_json_num("cpu_s", process_cpu() - c0);
    bench_json_num("questions", questions);
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "ef%u", ks[i]);
        bench_json_num(key, picks[i].value);
        snprintf(key, sizeof key, "recall%u", ks[i]);
        bench_json_num(key, picks[i].recall);
    }
    bench_json_end();

    /* The item questions' recall at fixed values (the tuner's questions):
     * the range narrowed to one value. */
    for (size_t e = 0; e < nef100; e++) {
        in.lowest = in.highest = efs100[e];
        in.lowest_above_k = 0;
        if (annb_tune_run(picks, &questions, &in, &err))
            bench_die("annb_tune_run: %s", err.message);
        bench_json_begin();
        bench_json_str("system", "graph-item-recall");
        bench_json_num("ef", efs100[e]);
        bench_json_num("recall10", picks[0].recall);
        bench_json_num("recall100", picks[1].recall);
        bench_json_end();
    }

    /* recall@10 of the benchmark's queries at each ef, recall@100 at each ef100. */
    float *scores = malloc(D.q * BENCH_GT_K * sizeof *scores);
    int64_t *rows = malloc(D.q * BENCH_GT_K * sizeof *rows), found[BENCH_GT_K];
    if (!scores || !rows) bench_die("out of memory");
    for (size_t e = 0; e < nef + nef100; e++) {
        size_t k = e < nef ? 10 : BENCH_GT_K;
        unsigned ef = e < nef ? efs[e] : efs100[e - nef];
        c0 = process_cpu();
        if (annb_graph_search(g, tc.pool, ANNB_METRIC_IP, D.queries, D.q, k, ef, NULL, 1, scores,
                              rows))
            bench_die("annb_graph_search failed");
        double qcpu = process_cpu() - c0, recall = 0;
        for (size_t i = 0; i < D.q; i++) {
            for (size_t j = 0; j < k; j++)
                found[j] = rows[i * k + j] >= 0 ? ids[rows[i * k + j]] : -1;
            recall += bench_recall_one(found, D.gt + i * D.gtk, k);
        }
        bench_json_begin();
        bench_json_str("system", "graph-recall");
        bench_json_num("ef", ef);
        bench_json_num(k == 10 ? "recall10" : "recall100", recall / (double)D.q);
        bench_json_num("cpu_us_per_query", qcpu / (double)D.q * 1e6);
        bench_json_end();
    }
    free(scores);
    free(rows);
    annb_graph_pool_free(tc.pool);
    annb_graph_release_built(&gb);
    free(x);
    free(ids);
    return 0;
}
