/*
 * bench_gt - exact ground truth for a bench_gen data directory, independent
 * of annb and Faiss: inner products by OpenBLAS sgemm in blocks, top-100
 * per query kept in a min-heap (a partial sort), then sorted best first.
 *
 *   bench_gt DIR
 *   bench_gt --filters DIR   filtered ground truth (after bench_gt DIR)
 *   bench_gt --config        prints OpenBLAS's build configuration and threads
 *
 * Writes DIR/gt.ids (q*100 int64 item IDs), DIR/gt.scores (q*100 float32),
 * then appends "gtk=100" to DIR/params (the marker that ground truth is
 * complete). Also prints the OpenBLAS configuration and the sgemm rate.
 *
 * --filters draws each query's "seen" items (BENCH_SEEN_SMALL and
 * BENCH_SEEN_LARGE of them, fixed seed; half, at most the whole top 100,
 * drawn from the query's exact top 100, the rest uniformly from the other
 * items: what a user has seen is mostly near what they like, so excluding it
 * changes the answer) into seen<S>.ids (q*S int64 IDs) and seen<S>.rows
 * (q*S uint32 rows), then computes the exact top 100 under each of the
 * filters BENCH_FILTERS names (seen items excluded; genre bit 0 or 1 of
 * items.genres required) into gt-<filter>.ids, and appends "fgtk=100".
 */
#include "bench_common.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

#define K BENCH_GT_K
#define QB 256    /* queries per block */
#define NB 65536  /* items per block: QB*NB floats = 64 MiB of scores */
#define MAXF 8    /* filters in one pass */

typedef struct heap_item {
    float s;
    uint32_t row;
} heap_item;

/* Min-heap of K items on s: h[0] is the weakest of the best K so far. */
static void heap_push_top(heap_item *h, float s, uint32_t row)
{
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        float ms = s;
        if (l < K && h[l].s < ms) m = l, ms = h[l].s;
        if (r < K && h[r].s < ms) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    h[i].s = s;
    h[i].row = row;
}

static int cmp_desc(const void *a, const void *b)
{
    const heap_item *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return (x->row > y->row) - (x->row < y->row);
}

/* What one filter lets through: row of query qi allowed? NULL: all. */
typedef struct filter {
    const char *name;                /* gt-<name>.ids */
    const unsigned char *genres;     /* genre filter: items.genres ... */
    unsigned char bit;               /* ... and the bit required */
    const uint32_t *seen;            /* seen filter: q*nseen rows, sorted per query */
    size_t nseen;
} filter;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int allowed(const filter *f, size_t qi, uint32_t row)
{
    if (f->genres) return (f->genres[row] & f->bit) != 0;
    if (f->seen) return !bsearch(&row, f->seen + qi * f->nseen, f->nseen, sizeof row, cmp_u32);
    return 1;
}

/* The exact top K of every query under each of nf filters (f NULL: one,
 * unfiltered), into out_ids[i] / out_s[i] (q*K each, best first; slots past
 * the allowed items hold ID -1, score -inf). One sgemm pass for all. */
static void exact_topk(const bench_data *D, const filter *f, int nf, int64_t **out_ids,
                       float **out_s)
{
    float *scores = malloc((size_t)QB * NB * sizeof *scores);
    heap_item *heaps = malloc((size_t)nf * QB * K * sizeof *heaps);
    if (!scores || !heaps) bench_die("out of memory");
    double t_gemm = 0, t0 = bench_now();
    for (size_t q0 = 0; q0 < D->q; q0 += QB) {
        size_t qb = D->q - q0 < QB ? D->q - q0 : QB;
        for (size_t i = 0; i < (size_t)nf * qb * K; i++) heaps[i] = (heap_item){-INFINITY, UINT32_MAX};
        for (size_t n0 = 0; n0 < D->n; n0 += NB) {
            size_t nb = D->n - n0 < NB ? D->n - n0 : NB;
            double tg = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qb, (int)nb, (int)D->d, 1.0f,
                        D->queries + q0 * D->d, (int)D->d, D->items + n0 * D->d, (int)D->d, 0.0f,
                        scores, (int)nb);
            t_gemm += bench_now() - tg;
#pragma omp parallel for schedule(dynamic, 8)
            for (size_t i = 0; i < qb; i++) {
                const float *s = scores + i * nb;
                for (int fi = 0; fi < nf; fi++) {
                    heap_item *h = heaps + ((size_t)fi * qb + i) * K;
                    for (size_t j = 0; j < nb; j++)
                        if (s[j] > h[0].s && (!f || allowed(&f[fi], q0 + i, (uint32_t)(n0 + j))))
                            heap_push_top(h, s[j], (uint32_t)(n0 + j));
                }
            }
        }
        for (int fi = 0; fi < nf; fi++)
            for (size_t i = 0; i < qb; i++) {
                heap_item *h = heaps + ((size_t)fi * qb + i) * K;
                qsort(h, K, sizeof *h, cmp_desc);
                for (size_t j = 0; j < K; j++) {
                    out_ids[fi][(q0 + i) * K + j] = h[j].row == UINT32_MAX ? -1 : D->ids[h[j].row];
                    out_s[fi][(q0 + i) * K + j] = h[j].s;
                }
            }
    }
    double t = bench_now() - t0;
    fprintf(stderr, "bench_gt: %.1f s (sgemm %.1f s, %.1f GFLOPS)\n", t, t_gemm,
            2.0 * (double)D->q * (double)D->n * (double)D->d / t_gemm / 1e9);
    free(scores);
    free(heaps);
}

static void write_file(const char *dir, const char *name, const void *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
        bench_die("%s: write failed", path);
}

static void append_param(const char *dir, const char *line)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/params", dir);
    FILE *fp = fopen(path, "a");
    if (!fp || fprintf(fp, "%s\n", line) < 0 || fclose(fp) != 0) bench_die("%s: write failed", path);
}

static uint64_t rng_state;

static uint64_t rng_next(void) /* splitmix64, as bench_gen */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Each query's S seen rows (sorted): half (at most the whole top K) from
 * its exact top K, the rest uniformly from the other items. */
static uint32_t *draw_seen(const bench_data *D, size_t S, uint64_t seed)
{
    if (S > D->n / 2) bench_die("%zu seen items need at least %zu items", S, 2 * S);
    uint32_t *rows = malloc(D->q * S * sizeof *rows);
    unsigned char *mark = calloc(D->n, 1);
    uint32_t top[K];
    if (!rows || !mark) bench_die("out of memory");
    /* ID -> row: the IDs are a scrambled injection of the row; sort pairs. */
    int64_t *pairs = malloc(D->n * 2 * sizeof *pairs);
    if (!pairs) bench_die("out of memory");
    for (size_t r = 0; r < D->n; r++) pairs[2 * r] = D->ids[r], pairs[2 * r + 1] = (int64_t)r;
    qsort(pairs, D->n, 2 * sizeof *pairs, bench_cmp_i64);
    rng_state = seed ^ (0x7365656eULL + S); /* "seen" */
    for (size_t qi = 0; qi < D->q; qi++) {
        uint32_t *out = rows + qi * S;
        size_t near = S / 2 < K ? S / 2 : K, m = 0;
        for (size_t j = 0; j < K; j++) {
            const int64_t *p = bsearch(&D->gt[qi * D->gtk + j], pairs, D->n, 2 * sizeof *pairs,
                                       bench_cmp_i64);
            if (!p) bench_die("ground truth ID not among the items");
            top[j] = (uint32_t)p[1];
        }
        for (size_t j = 0; j < near; j++) { /* partial Fisher-Yates over the top K */
            size_t r = j + rng_next() % (K - j);
            uint32_t t = top[j];
            top[j] = top[r], top[r] = t;
            out[m++] = top[j];
            mark[top[j]] = 1;
        }
        for (size_t j = 0; j < K; j++) mark[top[j]] |= 2; /* the rest of the top K stays */
        while (m < S) {
            uint32_t r = (uint32_t)(rng_next() % D->n);
            if (mark[r]) continue;
            mark[r] = 1;
            out[m++] = r;
        }
        for (size_t j = 0; j < K; j++) mark[top[j]] = 0;
        for (size_t j = 0; j < S; j++) mark[out[j]] = 0;
        qsort(out, S, sizeof *out, cmp_u32);
    }
    free(pairs);
    free(mark);
    return rows;
}

static int mode_filters(const char *dir)
{
    bench_data D;
    bench_data_load(&D, dir, 1);
    const unsigned char *genres = bench_map_part(dir, "items.genres", D.n);
    static const size_t seen_sizes[2] = {BENCH_SEEN_SMALL, BENCH_SEEN_LARGE};
    filter f[MAXF];
    int nf = 0;
    char name[64];
    uint32_t *seen[2];
    for (int s = 0; s < 2; s++) {
        size_t S = seen_sizes[s];
        seen[s] = draw_seen(&D, S, D.seed);
        int64_t *ids = malloc(D.q * S * sizeof *ids);
        if (!ids) bench_die("out of memory");
        for (size_t i = 0; i < D.q * S; i++) ids[i] = D.ids[seen[s][i]];
        snprintf(name, sizeof name, "seen%zu.ids", S);
        write_file(dir, name, ids, D.q * S * sizeof *ids);
        snprintf(name, sizeof name, "seen%zu.rows", S);
        write_file(dir, name, seen[s], D.q * S * sizeof *seen[s]);
        free(ids);
        f[nf++] = (filter){s ? "seen" BENCH_STR(BENCH_SEEN_LARGE) : "seen" BENCH_STR(BENCH_SEEN_SMALL),
                           NULL, 0, seen[s], S};
    }
    f[nf++] = (filter){"genre10", genres, 1, NULL, 0};
    f[nf++] = (filter){"genre1", genres, 2, NULL, 0};
    int64_t *out_ids[MAXF];
    float *out_s[MAXF];
    for (int i = 0; i < nf; i++) {
        out_ids[i] = malloc(D.q * K * sizeof **out_ids);
        out_s[i] = malloc(D.q * K * sizeof **out_s);
        if (!out_ids[i] || !out_s[i]) bench_die("out of memory");
    }
    fprintf(stderr, "bench_gt: filtered exact top-%d (%d filters) of %zu queries over %zu x %zu\n",
            K, nf, D.q, D.n, D.d);
    exact_topk(&D, f, nf, out_ids, out_s);
    for (int i = 0; i < nf; i++) {
        snprintf(name, sizeof name, "gt-%s.ids", f[i].name);
        write_file(dir, name, out_ids[i], D.q * K * sizeof **out_ids);
        free(out_ids[i]);
        free(out_s[i]);
    }
    free(seen[0]);
    free(seen[1]);
    append_param(dir, "fgtk=" BENCH_STR(K));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--config")) {
        printf("%s, %d threads\n", openblas_get_config(), openblas_get_num_threads());
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--filters")) return mode_filters(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: bench_gt DIR | bench_gt --filters DIR\n");
        return 2;
    }
    bench_data D;
    bench_data_load(&D, argv[1], 0);
    if (D.n < K || D.n > UINT32_MAX) bench_die("need %d <= n < 2^32 items", K);
    fprintf(stderr, "bench_gt: %s, %d threads; exact top-%d of %zu queries over %zu x %zu\n",
            openblas_get_config(), openblas_get_num_threads(), K, D.q, D.n, D.d);
    int64_t *out_ids = malloc(D.q * K * sizeof *out_ids);
    float *out_s = malloc(D.q * K * sizeof *out_s);
    if (!out_ids || !out_s) bench_die("out of memory");
    exact_topk(&D, NULL, 1, &out_ids, &out_s);
    write_file(argv[1], "gt.ids", out_ids, D.q * K * sizeof *out_ids);
    write_file(argv[1], "gt.scores", out_s, D.q * K * sizeof *out_s);
    append_param(argv[1], "gtk=" BENCH_STR(K));
    free(out_ids);
    free(out_s);
    return 0;
}
