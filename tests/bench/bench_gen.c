/*
 * bench_gen - the benchmark's synthetic data set, from a seed.
 *
 *   bench_gen DIR N Q D SEED [DATASET]
 *   bench_gen --version      the data version (part of the cache key)
 *
 * Two data sets (DATASET, default clustered), both clustered like trained
 * recommender embeddings: CLUSTERS centres drawn from N(0, 1); an item is a
 * centre plus N(0, NOISE^2) noise, scaled by a log-normal norm factor
 * exp(sigma * N(0, 1)) (so inner product and cosine differ, as with matrix
 * factorisation); a query ("user") is a centre plus the same noise,
 * unscaled, drawn separately from the items.
 *   clustered  sigma 0.25 (the original set; its items and queries are the
 *              same bits as in data version 1)
 *   als        sigma 0.5: item norms vary as an ALS or two-tower model's do
 *              (issue 13's "ALS-like" generator) The clusters overlap: an IVF index with about as many
 * lists as clusters finds most, not all, of the true top 10 at nprobe 1
 * (about 0.75 in a trial at 100k items), a well-separated set would make
 * every index look perfect. External IDs are a scrambled injection of the row number
 * offset past 2^32 (never the row number, rows not in ID order).
 *
 * Every value is rounded to 7 significant digits and stored as the float32
 * that decimal reads back as, so items.csv and items.f32 hold the same
 * vectors bit for bit. Writes items.{f32,ids,csv}, queries.{f32,ids,csv}
 * and, for the graph benchmark (from a second random stream, so the items
 * and queries do not depend on them):
 *   users.{f32,ids,csv}  Q "tuning users" drawn like the queries but apart
 *                        from them (ann-build --users)
 *   movies.dat           a MovieLens-like catalog of the items
 *                        (`ID::Item ID (2000)::Genre|Genre`), in which
 *                        GENRE10 covers about 10% and GENRE1 about 1% of the
 *                        items, independently of the vectors
 *   items.genres         one byte per item row: bit 0 GENRE10, bit 1 GENRE1
 * and, last, params (its presence marks a complete data set).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bump when the output for the same arguments changes: run.sh keys its
 * cache directory on it (bench_gen --version). */
#define DATA_VERSION 2 /* 2: users, catalog, items.genres, DATASET */
#define CLUSTERS 1000
#define NOISE 1.0
#define ID_BASE 10000000000LL /* IDs above 2^32: int64 throughout */
#define ID_MUL 48271ULL       /* i -> i*ID_MUL mod (2^31-1) is injective */
#define ID_MOD 2147483647ULL
#define GENRE10 "Drama"     /* bench_common.h BENCH_GENRE10 */
#define GENRE1 "Film-Noir"  /* bench_common.h BENCH_GENRE1 */

static uint64_t rng_state;

static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_uniform(void) /* (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_gauss(void)
{
    return sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform());
}

typedef struct out {
    FILE *f32, *ids, *csv;
    char path[3][4096];
} out;

static void out_open(out *o, const char *dir, const char *base)
{
    static const char *const ext[3] = {"f32", "ids", "csv"};
    FILE **f[3] = {&o->f32, &o->ids, &o->csv};
    for (int i = 0; i < 3; i++) {
        snprintf(o->path[i], sizeof o->path[i], "%s/%s.%s", dir, base, ext[i]);
        if (!(*f[i] = fopen(o->path[i], "wb"))) {
            perror(o->path[i]);
            exit(1);
        }
    }
    fputs("id,features\n", o->csv);
}

static void out_close(out *o)
{
    FILE *f[3] = {o->f32, o->ids, o->csv};
    for (int i = 0; i < 3; i++)
        if (ferror(f[i]) || fclose(f[i]) != 0) {
            fprintf(stderr, "bench_gen: %s: write failed\n", o->path[i]);
            exit(1);
        }
}

/* One row: the rounded vector into .f32, the ID into .ids, both into .csv. */
static void out_row(out *o, int64_t id, const double *v, size_t d, float *tmp)
{
    char num[32];
    fprintf(o->csv, "%lld,\"[", (long long)id);
    for (size_t j = 0; j < d; j++) {
        snprintf(num, sizeof num, "%.7g", v[j]);
        tmp[j] = (float)strtod(num, NULL); /* what a JSON reader gets */
        if (j) fputs(", ", o->csv);
        fputs(num, o->csv);
    }
    fputs("]\"\n", o->csv);
    fwrite(tmp, sizeof(float), d, o->f32);
    fwrite(&id, sizeof id, 1, o->ids);
}

/* movies.dat for the items (same IDs, same row order) and items.genres.
 * Every item has at least one genre, as in MovieLens; GENRE10 and GENRE1
 * are drawn independently of the vectors, with probabilities 0.10 and 0.01. */
static void write_catalog(const char *dir, size_t n, uint64_t seed)
{
    static const char *const filler[] = {"Action", "Comedy", "Romance", "Thriller"};
    char path[2][4096];
    snprintf(path[0], sizeof path[0], "%s/movies.dat", dir);
    snprintf(path[1], sizeof path[1], "%s/items.genres", dir);
    FILE *cat = fopen(path[0], "wb"), *bits = fopen(path[1], "wb");
    if (!cat || !bits) {
        perror(cat ? path[1] : path[0]);
        exit(1);
    }
    rng_state = seed ^ 0x67656e726573ULL; /* "genres" */
    for (size_t i = 0; i < n; i++) {
        int64_t id = ID_BASE + (int64_t)((i * ID_MUL) % ID_MOD);
        unsigned char b = (unsigned char)((rng_uniform() < 0.10) | (rng_uniform() < 0.01) << 1);
        const char *f = filler[rng_next() % 4];
        fprintf(cat, "%lld::Item %lld (2000)::%s%s%s%s%s\n", (long long)id, (long long)id, f,
                b & 1 ? "|" : "", b & 1 ? GENRE10 : "", b & 2 ? "|" : "", b & 2 ? GENRE1 : "");
        fputc(b, bits);
    }
    if (ferror(cat) || fclose(cat) != 0 || ferror(bits) || fclose(bits) != 0) {
        fprintf(stderr, "bench_gen: %s: write failed\n", dir);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("%d\n", DATA_VERSION);
        return 0;
    }
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: bench_gen DIR N Q D SEED [clustered|als]\n");
        return 2;
    }
    const char *dataset = argc == 7 ? argv[6] : "clustered";
    double sigma;
    if (!strcmp(dataset, "clustered")) sigma = 0.25;
    else if (!strcmp(dataset, "als")) sigma = 0.5;
    else {
        fprintf(stderr, "bench_gen: unknown data set '%s' (clustered, als)\n", dataset);
        return 2;
    }
    const char *dir = argv[1];
    size_t n = strtoull(argv[2], NULL, 10), q = strtoull(argv[3], NULL, 10),
           d = strtoull(argv[4], NULL, 10);
    uint64_t seed = strtoull(argv[5], NULL, 10);
    if (!n || !q || !d || d > 4096 || n >= ID_MOD) {
        fprintf(stderr, "bench_gen: bad N, Q or D\n");
        return 2;
    }
    double *centres = malloc(CLUSTERS * d * sizeof *centres), *v = malloc(d * sizeof *v);
    float *tmp = malloc(d * sizeof *tmp);
    if (!centres || !v || !tmp) return 1;
    rng_state = seed;
    for (size_t i = 0; i < CLUSTERS * d; i++) centres[i] = rng_gauss();

    out o;
    out_open(&o, dir, "items");
    for (size_t i = 0; i < n; i++) {
        const double *c = centres + (rng_next() % CLUSTERS) * d;
        double pop = exp(sigma * rng_gauss());
        for (size_t j = 0; j < d; j++) v[j] = pop * (c[j] + NOISE * rng_gauss());
        out_row(&o, ID_BASE + (int64_t)((i * ID_MUL) % ID_MOD), v, d, tmp);
    }
    out_close(&o);

    out_open(&o, dir, "queries");
    for (size_t i = 0; i < q; i++) {
        const double *c = centres + (rng_next() % CLUSTERS) * d;
        for (size_t j = 0; j < d; j++) v[j] = c[j] + NOISE * rng_gauss();
        out_row(&o, (int64_t)(i * 7 + 1), v, d, tmp);
    }
    out_close(&o);

    /* The graph benchmark's extras, from their own stream. */
    rng_state = seed ^ 0x7573657273ULL; /* "users" */
    out_open(&o, dir, "users");
    for (size_t i = 0; i < q; i++) {
        const double *c = centres + (rng_next() % CLUSTERS) * d;
        for (size_t j = 0; j < d; j++) v[j] = c[j] + NOISE * rng_gauss();
        out_row(&o, (int64_t)(i * 7 + 3), v, d, tmp);
    }
    out_close(&o);
    write_catalog(dir, n, seed);

    char path[4096];
    snprintf(path, sizeof path, "%s/params", dir);
    FILE *p = fopen(path, "w");
    if (!p || fprintf(p, "version=%d\nn=%zu\nq=%zu\nd=%zu\nseed=%llu\nclusters=%d\nnoisemilli=%d\n"
                         "sigmamilli=%d\nusers=%zu\n",
                      DATA_VERSION, n, q, d, (unsigned long long)seed, CLUSTERS,
                      (int)(NOISE * 1000 + 0.5), (int)(sigma * 1000 + 0.5), q) < 0 ||
        fclose(p) != 0) {
        perror(path);
        return 1;
    }
    free(centres);
    free(v);
    free(tmp);
    return 0;
}
