/*
 * bench_auto - index "auto"'s cost model (lib/auto_pick.h) against measured
 * search time (issue 13; docs/benchmarks.md, "--index auto").
 *
 *   bench_auto DATADIR [THREADS]
 *
 * Builds and tunes what `ann-build --index auto --users users.csv` compares
 * (annb_index_make: Graph32,SQ8 and IVF<nlist>,Flat, inner product, rows in
 * ascending ID order, tuned on DATADIR's users.f32 for recall@10 0.95) on
 * THREADS threads (default 2), then answers DATADIR's queries (not the
 * tuning users) one at a time on one thread at the tuned parameter and at 2
 * and 4 times it, counting the work (annb_graph_search_work, annb_ivf_work)
 * and timing it (CPU time of the thread: waiting for a core on a shared
 * machine is left out). Exact search and rows read at random are timed
 * too. From these it prints the weights of each kind of work, measured
 * here (ns per row at the tuned parameter, and the slope of time over
 * work as the parameter grows), in auto_pick.h's unit, and the model's
 * cost ratio graph/IVF/exact next to the measured one. JSON lines on stdout: "auto-candidate",
 * "auto-point", "auto-weights", "auto-compare".
 *
 * Linked with libannb.a: it reaches the internal index_build.h.
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "auto_pick.h"
#include "exact.h"
#include "index_build.h"

typedef struct id_row {
    int64_t id;
    size_t row;
} id_row;

static int cmp_id_row(const void *a, const void *b)
{
    int64_t x = ((const id_row *)a)->id, y = ((const id_row *)b)->id;
    return (x > y) - (x < y);
}

typedef struct point {
    double us;       /* CPU microseconds a query */
    annb_auto_work w;
    double recall;   /* recall@10 against gt.ids */
} point;

static double recall10(const bench_data *D, const int64_t *rows_found, const int64_t *row_ids)
{
    double sum = 0;
    int64_t found[10];
    for (size_t i = 0; i < D->q; i++) {
        for (size_t j = 0; j < 10; j++)
            found[j] = rows_found[i * 10 + j] >= 0 ? row_ids[rows_found[i * 10 + j]] : -1;
        sum += bench_recall_one(found, D->gt + i * D->gtk, 10);
    }
    return sum / (double)D->q;
}

static point graph_point(const bench_data *D, const annb_graph *g, annb_graph_pool *pool,
                         uint32_t ef, const int64_t *ids)
{
    point p = {0};
    float sc[10];
    int64_t *rows = malloc(D->q * 10 * sizeof *rows);
    annb_graph_work w = {0};
    double t0 = bench_thread_cpu();
    for (size_t i = 0; i < D->q; i++)
        if (annb_graph_search_work(g, pool, ANNB_METRIC_IP, D->queries + i * D->d, 1, 10, ef,
                                   NULL, 1, sc, rows + i * 10, &w))
            bench_die("graph search failed");
    p.us = (bench_thread_cpu() - t0) * 1e6 / (double)D->q;
    p.w = annb_graph_auto_work(&w, D->q);
    p.recall = recall10(D, rows, ids);
    free(rows);
    return p;
}

static point ivf_point(const bench_data *D, const annb_ivf *ivf, uint32_t nprobe, const int64_t *ids)
{
    point p = {0};
    float sc[10];
    int64_t *rows = malloc(D->q * 10 * sizeof *rows);
    double t0 = bench_thread_cpu();
    for (size_t i = 0; i < D->q; i++)
        if (annb_ivf_search(ivf, ANNB_METRIC_IP, D->queries + i * D->d, 1, 10, nprobe, NULL, sc,
                            rows + i * 10))
            bench_die("IVF search failed");
    p.us = (bench_thread_cpu() - t0) * 1e6 / (double)D->q;
    uint64_t c, r;
    if (annb_ivf_work(ivf, ANNB_METRIC_IP, D->queries, D->q, nprobe, &c, &r))
        bench_die("IVF work failed");
    p.w = (annb_auto_work){D->q, 0, 0, c + r};
    p.recall = recall10(D, rows, ids);
    free(rows);
    return p;
}

static void json_point(const char *system, uint32_t value, const point *p, uint32_t d)
{
    bench_json_begin();
    bench_json_str("system", "auto-point");
    bench_json_str("index", system);
    bench_json_num("value", value);
    bench_json_num("us_per_query", p->us);
    bench_json_num("codes", (double)p->w.codes / (double)p->w.questions);
    bench_json_num("random_rows", (double)p->w.random / (double)p->w.questions);
    bench_json_num("scanned_rows", (double)p->w.scanned / (double)p->w.questions);
    bench_json_num("cost", annb_auto_cost(&p->w, d));
    bench_json_num("recall10", p->recall);
    bench_json_end();
}

/* ns per row of one kind: the slope of time over rows between two points. */
static double slope(double us_a, double rows_a, double us_b, double rows_b)
{
    return (us_b - us_a) * 1e3 / (rows_b - rows_a);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_auto DATADIR [THREADS]\n");
        return 2;
    }
    bench_data D;
    bench_data_load(&D, argv[1], 1);
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/users.f32", argv[1]);
    size_t usize;
    const float *users = bench_map(path, &usize);
    uint64_t nu = usize / (D.d * sizeof(float));

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

    char chain[ANNB_AUTO_MAX_CHAIN][ANNB_MAX_INDEX_DESC + 1];
    int compare;
    size_t nc = annb_index_auto_chain(chain, &compare, D.n, (uint32_t)D.d, 0, ANNB_AUTO_EXACT_BYTES);
    if (!compare || nc != 3) bench_die("auto does not compare graph and IVF at n = %zu", D.n);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    o.metric = ANNB_METRIC_IP;
    o.threads = threads;
    o.allow_low_recall = 1;
    annb_tune_questions tq = {users, nu, 0};
    annb_index_made made[2];
    annb_error err = {0};
    for (size_t c = 0; c < 2; c++) {
        double t0 = bench_now();
        if (annb_index_make(&made[c], chain[c], &o, x, D.n, (uint32_t)D.d, &tq, &err))
            bench_die("%s: %s", chain[c], err.message);
        bench_json_begin();
        bench_json_str("system", "auto-candidate");
        bench_json_str("index", chain[c]);
        bench_json_num("build_tune_wall_s", bench_now() - t0);
        bench_json_num("value", made[c].tune.ef_search ? made[c].tune.ef_search
                                                       : made[c].tune.nprobe);
        bench_json_num("tune_recall10", made[c].tune.recall);
        bench_json_num("tune_questions", made[c].tune.queries);
        bench_json_num("cost", made[c].cost);
        bench_json_end();
    }
    const annb_graph *g = &made[0].graph.g;
    const annb_ivf *ivf = &made[1].ivf.ivf;
    uint32_t ef = made[0].tune.ef_search, np = made[1].tune.nprobe;
    annb_graph_pool *pool = annb_graph_pool_new(g->n);
    if (!pool) bench_die("out of memory");

    /* Warm both (page cache, allocator), then measure. */
    graph_point(&D, g, pool, ef, ids);
    ivf_point(&D, ivf, np, ids);
    point gp[3], ip[3];
    for (int s = 0; s < 3; s++) {
        gp[s] = graph_point(&D, g, pool, ef << s, ids);
        json_point(chain[0], ef << s, &gp[s], (uint32_t)D.d);
        uint32_t v = np << s < ivf->nlist ? np << s : ivf->nlist;
        ip[s] = ivf_point(&D, ivf, v, ids);
        json_point(chain[1], v, &ip[s], (uint32_t)D.d);
    }
    /* Exact search one query at a time: every row scanned. */
    size_t eq = D.q < 200 ? D.q : 200;
    float sc[10];
    int64_t er[10];
    double t0 = bench_thread_cpu();
    for (size_t i = 0; i < eq; i++)
        if (annb_exact_search(x, D.n, (uint32_t)D.d, ANNB_METRIC_IP, D.queries + i * D.d, 1, 10,
                              NULL, sc, er))
            bench_die("exact search failed");
    double exact_us = (bench_thread_cpu() - t0) * 1e6 / (double)eq;
    /* Rows read at random and scored exactly, as the re-rank reads them. */
    annb_score_block_fn fn = annb_exact_score_fn(ANNB_METRIC_IP);
    size_t nr = 2000000;
    uint64_t z = 12345;
    float acc = 0, s1;
    t0 = bench_thread_cpu();
    for (size_t i = 0; i < nr; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        fn(x + ((z >> 33) % D.n) * D.d, D.queries + (i % D.q) * D.d, (uint32_t)D.d, 1, &s1);
        acc += s1;
    }
    double random_ns = (bench_thread_cpu() - t0) * 1e9 / (double)nr;

    /* The weights auto_pick.h states: each kind's whole time a row at the
     * tuned parameter, as the model charges it (no fixed part a query): a
     * scanned row from IVF's time over its centroids and rows; a code from
     * the graph's time less its re-rank (random rows, timed above) over the
     * codes. Also the slope between the tuned and 4x the parameter (what
     * one more row costs there) and exact search's time a row. */
    double scan_ns = ip[0].us * 1e3 * (double)ip[0].w.questions / (double)ip[0].w.scanned;
    double code_ns = (gp[0].us * 1e3 - random_ns * (double)gp[0].w.random / gp[0].w.questions) *
                     (double)gp[0].w.questions / (double)gp[0].w.codes;
    double code_slope = slope(gp[0].us, (double)gp[0].w.codes / gp[0].w.questions, gp[2].us,
                              (double)gp[2].w.codes / gp[2].w.questions);
    double scan_slope = slope(ip[0].us, (double)ip[0].w.scanned / ip[0].w.questions, ip[2].us,
                              (double)ip[2].w.scanned / ip[2].w.questions);
    double exact_ns = exact_us * 1e3 / (double)D.n;
    bench_json_begin();
    bench_json_str("system", "auto-weights");
    bench_json_num("code_ns_per_row", code_ns);
    bench_json_num("random_ns_per_row", random_ns);
    bench_json_num("scan_ns_per_row", scan_ns);
    bench_json_num("code_ns_slope", code_slope);
    bench_json_num("scan_ns_slope", scan_slope);
    bench_json_num("scan_ns_per_row_exact", exact_ns);
    bench_json_num("code_weight", code_ns / scan_ns);
    bench_json_num("random_weight", random_ns / scan_ns);
    bench_json_num("checksum", acc);
    bench_json_end();

    annb_auto_work ew = {1, 0, 0, D.n};
    double exact_cost = annb_auto_cost(&ew, (uint32_t)D.d);
    for (int s = 0; s < 3; s++) {
        bench_json_begin();
        bench_json_str("system", "auto-compare");
        bench_json_num("scale", 1 << s);
        bench_json_num("model_graph_over_ivf",
                       annb_auto_cost(&gp[s].w, (uint32_t)D.d) / annb_auto_cost(&ip[s].w, (uint32_t)D.d));
        bench_json_num("measured_graph_over_ivf", gp[s].us / ip[s].us);
        bench_json_num("model_ivf_over_exact", annb_auto_cost(&ip[s].w, (uint32_t)D.d) / exact_cost);
        bench_json_num("measured_ivf_over_exact", ip[s].us / exact_us);
        bench_json_num("model_graph_over_exact", annb_auto_cost(&gp[s].w, (uint32_t)D.d) / exact_cost);
        bench_json_num("measured_graph_over_exact", gp[s].us / exact_us);
        bench_json_end();
    }
    annb_graph_pool_free(pool);
    annb_index_made_release(&made[0]);
    annb_index_made_release(&made[1]);
    free(x);
    free(ids);
    return 0;
}
