/* testutil.c - shared helpers of the unit tests (see testutil.h). */
#define _GNU_SOURCE /* mkdtemp, qsort_r */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- PRNG ---- */
void tu_rng_seed(tu_rng *r, uint64_t seed) { r->state = seed; }

uint64_t tu_rng_next(tu_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tu_rng_below(tu_rng *r, uint64_t n) { return tu_rng_next(r) % n; }

double tu_rng_uniform(tu_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(tu_rng_next(r) >> 11) / 9007199254740992.0);
}

void tu_rng_shuffle(tu_rng *r, void *base, size_t n, size_t size)
{
    unsigned char tmp[64], *p = base;
    assert_true(size <= sizeof tmp);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tu_rng_below(r, i);
        memcpy(tmp, p + (i - 1) * size, size);
        memcpy(p + (i - 1) * size, p + j * size, size);
        memcpy(p + j * size, tmp, size);
    }
}

/* ---- files ---- */
void tu_tmpdir_make(char dir[256])
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, 256, "%s/annb-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) fail_msg("mkdtemp %s: %s", dir, strerror(errno));
}

void tu_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(tu_path(p, dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

const char *tu_path(char out[512], const char *dir, const char *name)
{
    snprintf(out, 512, "%s/%s", dir, name);
    return out;
}

void tu_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size) fail_msg("writing %s failed", path);
}

void tu_write_text(const char *path, const char *text) { tu_write_file(path, text, strlen(text)); }

uint8_t *tu_read_file(const char *path, size_t *size)
{
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            buf = realloc(buf, (cap *= 2) + 1);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    *size = len;
    return buf;
}

size_t tu_dir_entry_count(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* ---- generated embeddings ---- */
static void data_alloc(tu_data *out, size_t n, uint32_t d, const int64_t *ids)
{
    out->n = n;
    out->d = d;
    out->ids = malloc(n * sizeof *out->ids);
    out->vecs = malloc(n * d * sizeof *out->vecs);
    assert_non_null(out->ids);
    assert_non_null(out->vecs);
    memcpy(out->ids, ids, n * sizeof *ids);
}

void tu_data_make(tu_data *out, size_t n, uint32_t d, const int64_t *ids, tu_rng *r)
{
    data_alloc(out, n, d, ids);
    for (size_t i = 0; i < n * d; i++) out->vecs[i] = (float)tu_rng_uniform(r, -1, 1);
}

void tu_data_make_clustered(tu_data *out, size_t n, uint32_t d, const int64_t *ids,
                            unsigned clusters, double spread, tu_rng *r)
{
    data_alloc(out, n, d, ids);
    double *centre = malloc((size_t)clusters * d * sizeof *centre);
    assert_non_null(centre);
    for (size_t i = 0; i < (size_t)clusters * d; i++) centre[i] = tu_rng_uniform(r, -4, 4);
    for (size_t i = 0; i < n; i++) {
        const double *c = centre + tu_rng_below(r, clusters) * d;
        for (uint32_t j = 0; j < d; j++)
            out->vecs[i * d + j] = (float)(c[j] + tu_rng_uniform(r, -spread, spread));
    }
    free(centre);
}

void tu_data_free(tu_data *t)
{
    free(t->ids);
    free(t->vecs);
    memset(t, 0, sizeof *t);
}

long tu_data_row(const tu_data *t, int64_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->ids[i] == id) return (long)i;
    return -1;
}

int tu_data_has(const tu_data *t, int64_t id) { return tu_data_row(t, id) >= 0; }

void tu_scattered_ids(int64_t *out, size_t n, tu_rng *r)
{
    assert_true(n < 99991); /* 1000003 * i mod the prime 99991 is then injective */
    for (size_t i = 0; i < n; i++) {
        int64_t id = (int64_t)(1000003ull * i % 99991u) + 7;
        out[i] = i % 5 == 3 ? -id : id;
    }
    tu_rng_shuffle(r, out, n, sizeof *out);
}

void tu_write_spark_csv(const char *path, const tu_data *t)
{
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "id,features\n");
    for (size_t i = 0; i < t->n; i++) {
        fprintf(f, "%lld,\"[", (long long)t->ids[i]);
        for (uint32_t j = 0; j < t->d; j++)
            fprintf(f, "%s%.9g", j ? ", " : "", (double)t->vecs[i * t->d + j]);
        fprintf(f, "]\"\n");
    }
    if (fclose(f) != 0) fail_msg("writing %s failed", path);
}

void tu_items_setup(tu_data *t, tu_rng *r, char dir[256], char csv[512], size_t n, uint32_t d,
                    uint64_t seed)
{
    int64_t *ids = malloc(n * sizeof *ids);
    assert_non_null(ids);
    tu_rng_seed(r, seed);
    tu_scattered_ids(ids, n, r);
    tu_data_make(t, n, d, ids, r);
    free(ids);
    tu_tmpdir_make(dir);
    tu_write_spark_csv(tu_path(csv, dir, "items.csv"), t);
}

/* ---- brute force ---- */
double tu_score(const tu_data *t, size_t row, const float *q, annb_metric m)
{
    const float *v = t->vecs + row * t->d;
    double dot = 0, vv = 0, qq = 0, l2 = 0;
    for (uint32_t j = 0; j < t->d; j++) {
        double a = v[j], b = q[j];
        dot += a * b;
        vv += a * a;
        qq += b * b;
        l2 += (a - b) * (a - b);
    }
    switch (m) {
    case ANNB_METRIC_IP: return dot;
    case ANNB_METRIC_L2: return l2;
    case ANNB_METRIC_COSINE: return vv > 0 && qq > 0 ? dot / sqrt(vv * qq) : 0.0;
    }
    fail_msg("unknown metric %d", (int)m);
    return 0;
}

/* Best first; equal scores by ID so the order is total. */
static int cmp_ranked(const void *a, const void *b, void *metric)
{
    const tu_ranked *x = a, *y = b;
    if (x->score != y->score) {
        int lower_first = *(const annb_metric *)metric == ANNB_METRIC_L2;
        int better = lower_first ? x->score < y->score : x->score > y->score;
        return better ? -1 : 1;
    }
    return (x->id > y->id) - (x->id < y->id);
}

static int excluded(int64_t id, const int64_t *exclude, size_t nexclude)
{
    for (size_t i = 0; i < nexclude; i++)
        if (exclude[i] == id) return 1;
    return 0;
}

tu_ranked *tu_brute_force(size_t *count, const tu_data *t, const float *q, annb_metric m,
                          const int64_t *exclude, size_t nexclude)
{
    tu_ranked *r = malloc((t->n ? t->n : 1) * sizeof *r);
    assert_non_null(r);
    size_t c = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (excluded(t->ids[i], exclude, nexclude)) continue;
        r[c].id = t->ids[i];
        r[c].score = tu_score(t, i, q, m);
        c++;
    }
    qsort_r(r, c, sizeof *r, cmp_ranked, &m);
    *count = c;
    return r;
}

int tu_close(double a, double b, double eps)
{
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    return fabs(a - b) <= eps * scale;
}

double tu_recall(const annb_bundle *b, const tu_data *t, const float *queries, size_t count,
                 size_t k, annb_metric m, const annb_search_opts *opts)
{
    annb_hit *hits = malloc(k * sizeof *hits);
    assert_non_null(hits);
    double sum = 0;
    for (size_t i = 0; i < count; i++) {
        const float *q = queries + i * t->d;
        assert_int_equal(annb_search(b, q, 1, k, opts, hits), ANNB_OK);
        size_t ranked, hit = 0;
        tu_ranked *truth = tu_brute_force(&ranked, t, q, m, NULL, 0);
        for (size_t j = 0; j < k; j++)
            for (size_t r = 0; r < k && r < ranked; r++)
                if (hits[j].id == truth[r].id) hit++;
        sum += (double)hit / (double)k;
        free(truth);
    }
    free(hits);
    return sum / (double)count;
}

void tu_check_hits(const tu_data *t, const float *q, annb_metric m, const int64_t *exclude,
                   size_t nexclude, const annb_hit *hits, size_t k, const char *what)
{
    size_t nr;
    tu_ranked *ref = tu_brute_force(&nr, t, q, m, exclude, nexclude);
    for (size_t j = 0; j < k; j++) {
        int64_t id = hits[j].id;
        if (j >= nr) {
            if (id != ANNB_ID_NONE) {
                free(ref);
                fail_msg("%s: slot %zu of %zu holds ID %lld, but only %zu items can be returned",
                         what, j, k, (long long)id, nr);
            }
            continue;
        }
        long row = tu_data_row(t, id);
        const char *bad = NULL;
        double truth = 0;
        if (id == ANNB_ID_NONE) bad = "an empty slot (ANNB_ID_NONE)";
        else if (row < 0) bad = "an ID that is not in the input (a row position?)";
        else if (excluded(id, exclude, nexclude)) bad = "an excluded ID";
        else {
            for (size_t i = 0; i < j && !bad; i++)
                if (hits[i].id == id) bad = "an ID already returned";
            truth = tu_score(t, (size_t)row, q, m);
            if (!bad && !tu_close(hits[j].score, truth, TU_SCORE_EPS))
                bad = "a score different from the exact score of that ID";
            else if (!bad && !tu_close(truth, ref[j].score, TU_TIE_EPS))
                bad = "an ID whose exact score differs from the reference at this rank";
        }
        if (bad) {
            int64_t want = ref[j].id;
            double want_score = ref[j].score;
            free(ref);
            fail_msg("%s: rank %zu: got ID %lld score %.9g (exact %.9g): %s; brute force says ID "
                     "%lld score %.9g",
                     what, j, (long long)id, (double)hits[j].score, truth, bad, (long long)want,
                     want_score);
        }
    }
    free(ref);
}

void tu_build(annb_build_report *rep, const char *csv, const char *catalog, const char *out,
              annb_metric m, const char *index)
{
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_error err = {0};
    o.metric = m;
    o.index = index;
    int rc = annb_build(rep, csv, catalog, out, &o, &err);
    if (rc != ANNB_OK) fail_msg("annb_build(%s) = %d: %s", csv, rc, err.message);
}

annb_bundle *tu_open(const char *path, unsigned flags)
{
    annb_open_opts o = ANNB_OPEN_OPTS_INIT;
    annb_error err = {0};
    annb_bundle *b = NULL;
    o.flags = flags;
    int rc = annb_open(&b, path, &o, &err);
    if (rc != ANNB_OK) fail_msg("annb_open(%s) = %d: %s", path, rc, err.message);
    assert_non_null(b);
    return b;
}
