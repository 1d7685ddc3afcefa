/*
 * bench_gt - exact ground truth for a bench_gen data directory, independent
 * of annb and Faiss: inner products by OpenBLAS sgemm in blocks, top-100
 * per query kept in a min-heap (a partial sort), then sorted best first.
 *
 *   bench_gt DIR
 *   bench_gt --config     prints OpenBLAS's build configuration and threads
 *
 * Writes DIR/gt.ids (q*100 int64 item IDs), DIR/gt.scores (q*100 float32),
 * then appends "gtk=100" to DIR/params (the marker that ground truth is
 * complete). Also prints the OpenBLAS configuration and the sgemm rate.
 */
#include "bench_common.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

#define K BENCH_GT_K
#define QB 256    /* queries per block */
#define NB 65536  /* items per block: QB*NB floats = 64 MiB of scores */

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

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--config")) {
        printf("%s, %d threads\n", openblas_get_config(), openblas_get_num_threads());
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: bench_gt DIR\n");
        return 2;
    }
    bench_data D;
    bench_data_load(&D, argv[1], 0);
    if (D.n < K || D.n > UINT32_MAX) bench_die("need %d <= n < 2^32 items", K);
    fprintf(stderr, "bench_gt: %s, %d threads; exact top-%d of %zu queries over %zu x %zu\n",
            openblas_get_config(), openblas_get_num_threads(), K, D.q, D.n, D.d);

    float *scores = malloc((size_t)QB * NB * sizeof *scores);
    heap_item *heaps = malloc((size_t)QB * K * sizeof *heaps);
    int64_t *out_ids = malloc(D.q * K * sizeof *out_ids);
    float *out_s = malloc(D.q * K * sizeof *out_s);
    if (!scores || !heaps || !out_ids || !out_s) bench_die("out of memory");

    double t_gemm = 0, t0 = bench_now();
    for (size_t q0 = 0; q0 < D.q; q0 += QB) {
        size_t qb = D.q - q0 < QB ? D.q - q0 : QB;
        for (size_t i = 0; i < qb * K; i++) heaps[i] = (heap_item){-INFINITY, UINT32_MAX};
        for (size_t n0 = 0; n0 < D.n; n0 += NB) {
            size_t nb = D.n - n0 < NB ? D.n - n0 : NB;
            double tg = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qb, (int)nb, (int)D.d, 1.0f,
                        D.queries + q0 * D.d, (int)D.d, D.items + n0 * D.d, (int)D.d, 0.0f, scores,
                        (int)nb);
            t_gemm += bench_now() - tg;
#pragma omp parallel for schedule(dynamic, 8)
            for (size_t i = 0; i < qb; i++) {
                heap_item *h = heaps + i * K;
                const float *s = scores + i * nb;
                for (size_t j = 0; j < nb; j++)
                    if (s[j] > h[0].s) heap_push_top(h, s[j], (uint32_t)(n0 + j));
            }
        }
        for (size_t i = 0; i < qb; i++) {
            heap_item *h = heaps + i * K;
            qsort(h, K, sizeof *h, cmp_desc);
            for (size_t j = 0; j < K; j++) {
                out_ids[(q0 + i) * K + j] = D.ids[h[j].row];
                out_s[(q0 + i) * K + j] = h[j].s;
            }
        }
    }
    double t = bench_now() - t0;
    fprintf(stderr, "bench_gt: %.1f s (sgemm %.1f s, %.1f GFLOPS)\n", t, t_gemm,
            2.0 * (double)D.q * (double)D.n * (double)D.d / t_gemm / 1e9);

    char path[4096];
    const char *names[2] = {"gt.ids", "gt.scores"};
    const void *data[2] = {out_ids, out_s};
    size_t sizes[2] = {sizeof *out_ids, sizeof *out_s};
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], names[f]);
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(data[f], sizes[f], D.q * K, fp) != D.q * K || fclose(fp) != 0)
            bench_die("%s: write failed", path);
    }
    snprintf(path, sizeof path, "%s/params", argv[1]);
    FILE *fp = fopen(path, "a");
    if (!fp || fprintf(fp, "gtk=%d\n", K) < 0 || fclose(fp) != 0) bench_die("%s: write failed", path);
    free(scores);
    free(heaps);
    free(out_ids);
    free(out_s);
    return 0;
}
