/*
 * test_question.c - the question model (annb_ask, lib/question.c) against an
 * independent brute force written here (double precision over the test's own
 * vectors, never libannb or Faiss): the five kinds, one subject and seven at
 * once, k = 1, 10 and more than remain; subjects left out of their own
 * similar-items / similar-users answer only; excluded IDs, genres and seen
 * items, alone and together, with filters that remove most of the best
 * answers; ties by the lower ID. Shards (3) against the unsharded bundle,
 * annb_item_owner, exclude_seen refused over shards. Every error with its
 * code and message. annb_search_opts.exact on approximate bundles (annb's
 * graph and IVF, Faiss's HNSW), older annb_search_opts sizes with garbage
 * past struct_size, annb_results_json and annb_serve_ask.
 *
 * Data shaped like a factorisation model's: inner product, item norms
 * log-normal, users drawn from another distribution than the items, IDs far
 * from row positions (negative, gapped, shuffled, two beyond 2^53), a group
 * of items with one and the same vector (exact ties), items without a
 * catalog entry, a rare genre and a genre no stored item has.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 600  /* items of the exact bundles */
#define D 16
#define U 90   /* users */
#define NSH 3  /* shards */
#define MANY 7 /* subjects asked at once */
#define HEAVY_SEEN 30 /* user row 0 has seen its own 30 best items */
#define NDUP 4 /* item rows 0..3 share one vector (exact ties) */

#define AN 3000 /* items of the approximate bundles */
#define AU 200
#define AQ 60
#define NOLD 7 /* queries of the old-struct checks on exact bundles */

static const char *const genre_names[] = {"Action", "Comedy", "Drama", "Horror", "Romance",
                                          "Sci-Fi", "Film-Noir", "Documentary"};
#define NG 8
#define G_NOIR 6 /* rare: 1 item in 50 */
#define G_DOC 7  /* only a catalog entry whose ID no item has */

typedef struct fixture {
    char dir[256];
    char items_csv[512], users_csv[512], movies[512], ratings[512];
    tu_data items, users;
    unsigned genres[N]; /* by item row: bit g = genre_names[g]; 0: no catalog entry */
    int has_entry[N];
    int64_t *seen[U]; /* by user row */
    size_t nseen[U];
    annb_bundle *ip, *cosine, *l2;      /* flat: users, interactions (ip only), catalog */
    annb_bundle *shard[NSH];            /* ip, shards of 3: users, interactions, catalog */
    annb_bundle *no_users, *no_seen, *no_catalog, *other_dim, *structure;
    /* approximate */
    tu_data aitems, ausers;
    annb_bundle *graph, *ivf, *hnsw, *aflat;
} fixture;

/* ---- data ---- */

static double gauss(tu_rng *r)
{
    double u = tu_rng_uniform(r, 1e-12, 1), v = tu_rng_uniform(r, 0, 1);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* Items: a random direction times a log-normal norm (popular items get large
 * norms in a factorisation model). */
static void make_items(tu_data *t, size_t n, uint32_t d, const int64_t *ids, tu_rng *r)
{
    tu_data_make(t, n, d, ids, r);
    for (size_t i = 0; i < n; i++) {
        double ss = 0, norm = exp(0.7 * gauss(r));
        float *v = t->vecs + i * d;
        for (uint32_t j = 0; j < d; j++) {
            v[j] = (float)gauss(r);
            ss += (double)v[j] * v[j];
        }
        for (uint32_t j = 0; j < d; j++) v[j] = (float)(v[j] * norm / sqrt(ss));
    }
}

/* Users: not like the items: a common offset, other scales per axis. */
static void make_users(tu_data *t, size_t n, uint32_t d, const int64_t *ids, tu_rng *r)
{
    tu_data_make(t, n, d, ids, r);
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < d; j++)
            t->vecs[i * d + j] = (float)(0.6 + (j % 3 + 1) * 0.5 * gauss(r));
}

static unsigned genres_of_row(size_t row)
{
    unsigned bits = 1u << (row % 6);
    if (row % 2 == 0) bits |= 1u << (row / 6 % 6);
    if (row % 50 == 7) bits |= 1u << G_NOIR;
    return bits;
}

static void title_of(char *out, size_t size, int64_t id)
{
    snprintf(out, size, "Item %lld, The (2001) \xc3\xa9t\xc3\xa9", (long long)id);
}

static void write_movies(fixture *fx)
{
    FILE *f = fopen(tu_path(fx->movies, fx->dir, "movies.csv"), "w");
    assert_non_null(f);
    fprintf(f, "movieId,title,genres\n");
    char title[128];
    for (size_t r = 0; r < N; r++) {
        fx->genres[r] = 0;
        if (r % 9 == 4) continue; /* no catalog entry */
        fx->has_entry[r] = 1;
        fx->genres[r] = genres_of_row(r);
        title_of(title, sizeof title, fx->items.ids[r]);
        fprintf(f, "%lld,\"%s\",", (long long)fx->items.ids[r], title);
        for (int g = 0, first = 1; g < NG; g++)
            if (fx->genres[r] >> g & 1) {
                fprintf(f, "%s%s", first ? "" : "|", genre_names[g]);
                first = 0;
            }
        fputc('\n', f);
    }
    /* Known to the catalog, held by no item. */
    fprintf(f, "5,\"Only in the catalog (1950)\",Documentary|Drama\n");
    fclose(f);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static const float *item_vec(const fixture *fx, size_t r) { return fx->items.vecs + r * D; }
static const float *user_vec(const fixture *fx, size_t u) { return fx->users.vecs + u * D; }

/* ---- the reference: brute force over allowed rows ---- */

typedef struct ranked {
    int64_t id;
    double score;
} ranked;

static annb_metric g_metric;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score) {
        int better = g_metric == ANNB_METRIC_L2 ? x->score < y->score : x->score > y->score;
        return better ? -1 : 1;
    }
    return (x->id > y->id) - (x->id < y->id);
}

static int in_list(int64_t id, const int64_t *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        if (list[i] == id) return 1;
    return 0;
}

/* What one subject's answer must be: the rows of t whose genres meet
 * `gmask` (items; 0: no filter) and whose ID is in none of ex1, ex2 and
 * `self`, best first, ties by the lower ID. */
typedef struct filter {
    const unsigned *genres; /* by row of t, or NULL */
    unsigned gmask;
    const int64_t *ex1;
    size_t nex1;
    const int64_t *ex2;
    size_t nex2;
    int has_self;
    int64_t self;
} filter;


static ranked *reference(size_t *count, const tu_data *t, const float *q, annb_metric m,
                         const filter *f)
{
    ranked *r = malloc((t->n ? t->n : 1) * sizeof *r);
    assert_non_null(r);
    size_t c = 0;
    for (size_t i = 0; i < t->n; i++) {
        int64_t id = t->ids[i];
        if (f && f->gmask && !(f->genres[i] & f->gmask)) continue;
        if (f && (in_list(id, f->ex1, f->nex1) || in_list(id, f->ex2, f->nex2))) continue;
        if (f && f->has_self && id == f->self) continue;
        r[c].id = id;
        r[c].score = tu_score(t, i, q, m);
        c++;
    }
    g_metric = m;
    qsort(r, c, sizeof *r, cmp_ranked);
    *count = c;
    return r;
}

/* The library's order on its own scores: better first, equal scores by the
 * lower ID, empty slots last. */
static void expect_library_order(const annb_hit *h, size_t k, annb_metric m, const char *what)
{
    for (size_t j = 1; j < k; j++) {
        if (h[j].id == ANNB_ID_NONE) continue;
        if (h[j - 1].id == ANNB_ID_NONE)
            fail_msg("%s: slot %zu holds %lld after an empty slot", what, j, (long long)h[j].id);
        float a = h[j - 1].score, b = h[j].score;
        int worse = m == ANNB_METRIC_L2 ? a > b : a < b;
        if (worse || (a == b && h[j - 1].id >= h[j].id))
            fail_msg("%s: slots %zu, %zu out of order: %lld (%.9g) before %lld (%.9g)", what, j - 1,
                     j, (long long)h[j - 1].id, (double)a, (long long)h[j].id, (double)b);
    }
}

/* hits[0..k) against the reference: the same IDs in the same order (items
 * whose exact scores differ by less than float rounding may swap; items of
 * exactly one score come by the lower ID), each with its own exact score;
 * ANNB_ID_NONE past the reference's end. */
static void expect_answer(const tu_data *t, const float *q, annb_metric m, const filter *f,
                          const annb_hit *hits, size_t k, const char *what)
{
    size_t nr;
    ranked *ref = reference(&nr, t, q, m, f);
    char why[256] = "";
    for (size_t j = 0; j < k && !why[0]; j++) {
        int64_t id = hits[j].id;
        if (j >= nr) {
            if (id != ANNB_ID_NONE)
                snprintf(why, sizeof why, "slot %zu holds %lld; only %zu answers remain", j,
                         (long long)id, nr);
            continue;
        }
        if (id == ANNB_ID_NONE) {
            snprintf(why, sizeof why, "slot %zu is empty; %zu answers remain (expected %lld)", j,
                     nr, (long long)ref[j].id);
            continue;
        }
        size_t at = 0;
        while (at < nr && ref[at].id != id) at++;
        if (at == nr) {
            snprintf(why, sizeof why, "slot %zu holds %lld, which is not an allowed answer "
                     "(filtered, the subject itself, or not in the data)", j, (long long)id);
            continue;
        }
        for (size_t i = 0; i < j; i++)
            if (hits[i].id == id) snprintf(why, sizeof why, "slot %zu repeats %lld", j, (long long)id);
        if (!why[0] && !tu_close(hits[j].score, ref[at].score, TU_SCORE_EPS))
            snprintf(why, sizeof why, "slot %zu: %lld scored %.9g, exactly %.9g", j, (long long)id,
                     (double)hits[j].score, ref[at].score);
        if (!why[0] && at != j &&
            (ref[at].score == ref[j].score ||
             !tu_close(ref[at].score, ref[j].score, TU_TIE_EPS)))
            snprintf(why, sizeof why, "slot %zu holds %lld (exact %.9g); expected %lld (exact %.9g)",
                     j, (long long)id, ref[at].score, (long long)ref[j].id, ref[j].score);
    }
    free(ref);
    if (why[0]) fail_msg("%s: %s", what, why);
    expect_library_order(hits, k, m, what);
}

/* ---- fixture ---- */

static annb_bundle *build_with(fixture *fx, const char *name, const char *items, annb_metric m,
                               const char *index, int users, int seen, int catalog,
                               uint32_t shard, uint32_t nshards, unsigned open_flags)
{
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    char out[512];
    o.metric = m;
    o.index = index;
    o.users_path = users ? fx->users_csv : NULL;
    o.interactions_path = seen ? fx->ratings : NULL;
    o.shard_index = shard;
    o.shard_count = nshards;
    int rc = annb_build(&rep, items, catalog ? fx->movies : NULL, tu_path(out, fx->dir, name), &o, &err);
    if (rc != ANNB_OK) fail_msg("annb_build(%s) = %d: %s", name, rc, err.message);
    return tu_open(out, open_flags);
}

static annb_bundle *build(fixture *fx, const char *name, annb_metric m, int users, int seen,
                          int catalog, uint32_t shard, uint32_t nshards)
{
    return build_with(fx, name, fx->items_csv, m, NULL, users, seen, catalog, shard, nshards, 0);
}

static void write_ratings(fixture *fx, tu_rng *r)
{
    FILE *f = fopen(tu_path(fx->ratings, fx->dir, "ratings.csv"), "w");
    assert_non_null(f);
    fprintf(f, "userId,movieId,rating,timestamp\n");
    for (size_t u = 0; u < U; u++) {
        size_t n = u == 0 ? HEAVY_SEEN : (size_t)tu_rng_below(r, 40);
        int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
        assert_non_null(ids);
        if (u == 0) { /* its own best 30: its answer comes from further down */
            size_t nr;
            ranked *ref = reference(&nr, &fx->items, user_vec(fx, 0), ANNB_METRIC_IP, NULL);
            for (size_t i = 0; i < n; i++) ids[i] = ref[i].id;
            free(ref);
        } else {
            for (size_t i = 0; i < n; i++) {
                int64_t id;
                do id = fx->items.ids[tu_rng_below(r, N)];
                while (in_list(id, ids, i));
                ids[i] = id;
            }
        }
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%lld,%lld,%.1f,97830%04zu\n", (long long)fx->users.ids[u],
                    (long long)ids[i], 1.0 + (double)(i % 9) / 2, i);
        qsort(ids, n, sizeof *ids, cmp_i64);
        fx->seen[u] = ids;
        fx->nseen[u] = n;
    }
    fclose(f);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_rng r;
    tu_rng_seed(&r, 20261206);
    tu_tmpdir_make(fx->dir);

    int64_t ids[AN];
    tu_scattered_ids(ids, N, &r);
    ids[10] = 9007199254740993LL;      /* 2^53 + 1: no double holds it */
    ids[11] = -9223372036854775807LL;  /* INT64_MIN + 1 */
    make_items(&fx->items, N, D, ids, &r);
    /* Rows 0..3: one vector of norm 20 (the others stay below 10), so that
     * they are each other's best answers, in ID order. */
    {
        double ss = 0;
        for (size_t i = 0; i < D; i++) ss += (double)fx->items.vecs[i] * fx->items.vecs[i];
        for (size_t i = 0; i < D; i++) fx->items.vecs[i] = (float)(fx->items.vecs[i] * 20 / sqrt(ss));
    }
    for (size_t row = 1; row < NDUP; row++)
        memcpy(fx->items.vecs + row * D, fx->items.vecs, D * sizeof(float));
    tu_write_spark_csv(tu_path(fx->items_csv, fx->dir, "items.csv"), &fx->items);

    int64_t uids[AU];
    for (size_t u = 0; u < U; u++)
        uids[u] = u % 4 == 1 ? -(int64_t)(u * 7919 + 11) : (int64_t)(u * 7919 + 11);
    tu_rng_shuffle(&r, uids, U, sizeof *uids);
    make_users(&fx->users, U, D, uids, &r);
    tu_write_spark_csv(tu_path(fx->users_csv, fx->dir, "users.csv"), &fx->users);
    write_movies(fx);
    write_ratings(fx, &r);

    fx->ip = build(fx, "ip.annb", ANNB_METRIC_IP, 1, 1, 1, 0, 0);
    fx->cosine = build(fx, "cosine.annb", ANNB_METRIC_COSINE, 1, 0, 1, 0, 0);
    fx->l2 = build(fx, "l2.annb", ANNB_METRIC_L2, 1, 0, 1, 0, 0);
    for (uint32_t s = 0; s < NSH; s++) {
        char name[64];
        snprintf(name, sizeof name, "ip-%u.annb", s);
        fx->shard[s] = build(fx, name, ANNB_METRIC_IP, 1, 1, 1, s, NSH);
    }
    fx->no_users = build(fx, "no-users.annb", ANNB_METRIC_IP, 0, 0, 1, 0, 0);
    fx->no_seen = build(fx, "no-seen.annb", ANNB_METRIC_IP, 1, 0, 1, 0, 0);
    fx->no_catalog = build(fx, "no-catalog.annb", ANNB_METRIC_IP, 1, 1, 0, 0, 0);
    fx->structure = build_with(fx, "structure.annb", fx->items_csv, ANNB_METRIC_IP, NULL, 1, 1, 1,
                               0, 0, ANNB_OPEN_STRUCTURE_ONLY);
    {
        tu_data small;
        char csv[512];
        make_items(&small, 50, D / 2, fx->items.ids, &r);
        tu_write_spark_csv(tu_path(csv, fx->dir, "half.csv"), &small);
        fx->other_dim = build_with(fx, "half.annb", csv, ANNB_METRIC_IP, NULL, 0, 0, 0, 0, 0, 0);
        tu_data_free(&small);
    }

    /* Approximate bundles of a few thousand items, tuned on their users. */
    tu_scattered_ids(ids, AN, &r);
    make_items(&fx->aitems, AN, D, ids, &r);
    for (size_t u = 0; u < AU; u++) uids[u] = 1000000 + 37 * (int64_t)u;
    make_users(&fx->ausers, AU, D, uids, &r);
    char acsv[512], aucsv[512];
    tu_write_spark_csv(tu_path(acsv, fx->dir, "aitems.csv"), &fx->aitems);
    tu_write_spark_csv(tu_path(aucsv, fx->dir, "ausers.csv"), &fx->ausers);
    const char *indexes[4] = {"graph", "IVF16,Flat", "HNSW16", "flat"};
    annb_bundle **out[4] = {&fx->graph, &fx->ivf, &fx->hnsw, &fx->aflat};
    for (int i = 0; i < 4; i++) {
        annb_build_opts o = ANNB_BUILD_OPTS_INIT;
        annb_error err = {0};
        char path[512], name[32];
        o.metric = ANNB_METRIC_IP;
        o.index = indexes[i];
        o.users_path = aucsv;
        o.target_recall = 0.9;
        o.tune_queries = 100;
        o.allow_low_recall = 1;
        snprintf(name, sizeof name, "approx-%d.annb", i);
        int rc = annb_build(NULL, acsv, NULL, tu_path(path, fx->dir, name), &o, &err);
        if (rc != ANNB_OK) fail_msg("annb_build(%s) = %d: %s", indexes[i], rc, err.message);
        *out[i] = tu_open(path, 0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    annb_close(fx->ip);
    annb_close(fx->cosine);
    annb_close(fx->l2);
    for (int s = 0; s < NSH; s++) annb_close(fx->shard[s]);
    annb_close(fx->no_users);
    annb_close(fx->no_seen);
    annb_close(fx->no_catalog);
    annb_close(fx->structure);
    annb_close(fx->other_dim);
    annb_close(fx->graph);
    annb_close(fx->ivf);
    annb_close(fx->hnsw);
    annb_close(fx->aflat);
    for (int u = 0; u < U; u++) free(fx->seen[u]);
    tu_data_free(&fx->items);
    tu_data_free(&fx->users);
    tu_data_free(&fx->aitems);
    tu_data_free(&fx->ausers);
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

/* ---- asking, and the reference for a question ---- */

static void ask_ok(annb_hit *hits, const annb_bundle *const *b, size_t n, const annb_question *q,
                   const char *what)
{
    annb_error err = {0, ""};
    int rc = annb_ask(hits, b, n, q, &err);
    if (rc != ANNB_OK) fail_msg("%s: annb_ask = %d: %s", what, rc, err.message);
}

/* Checks the answer to q (subjects given by row of the data) against the
 * reference. rows: the subjects' rows (users or items by kind); queries:
 * for ITEMS_FOR_VECTOR. */
static void expect_question(const fixture *fx, const annb_question *q, annb_metric m,
                            const size_t *rows, const float *queries, unsigned gmask,
                            const annb_hit *hits, const char *what)
{
    const int users_answer = annb_question_space(q->kind) == ANNB_SPACE_USERS;
    const tu_data *t = users_answer ? &fx->users : &fx->items;
    for (size_t i = 0; i < q->count; i++) {
        filter f = {fx->genres, gmask, q->exclude_ids, q->exclude_count, NULL, 0, 0, 0};
        const float *v = NULL;
        switch (q->kind) {
        case ANNB_Q_ITEMS_FOR_USER:
            v = user_vec(fx, rows[i]);
            if (q->exclude_seen) {
                f.ex2 = fx->seen[rows[i]];
                f.nex2 = fx->nseen[rows[i]];
            }
            break;
        case ANNB_Q_ITEMS_FOR_VECTOR: v = queries + i * D; break;
        case ANNB_Q_SIMILAR_ITEMS:
            v = item_vec(fx, rows[i]);
            f.has_self = 1;
            f.self = fx->items.ids[rows[i]];
            break;
        case ANNB_Q_SIMILAR_USERS:
            v = user_vec(fx, rows[i]);
            f.has_self = 1;
            f.self = fx->users.ids[rows[i]];
            break;
        case ANNB_Q_USERS_FOR_ITEM: v = item_vec(fx, rows[i]); break;
        }
        char w[256];
        snprintf(w, sizeof w, "%s (kind %d, subject %zu of %zu, k %zu)", what, (int)q->kind, i + 1,
                 q->count, q->k);
        expect_answer(t, v, m, &f, hits + i * q->k, q->k, w);
    }
}

static int subject_is_user(annb_question_kind kind)
{
    return kind == ANNB_Q_ITEMS_FOR_USER || kind == ANNB_Q_SIMILAR_USERS;
}

/* A question of `kind` for the subjects at rows (or the queries). */
static void question_for(annb_question *q, const fixture *fx, annb_question_kind kind,
                         const size_t *rows, size_t count, const float *queries, int64_t *ids,
                         size_t k)
{
    annb_question_init(q);
    q->kind = kind;
    q->count = count;
    q->k = k;
    if (kind == ANNB_Q_ITEMS_FOR_VECTOR) {
        q->vectors = queries;
        return;
    }
    for (size_t i = 0; i < count; i++)
        ids[i] = subject_is_user(kind) ? fx->users.ids[rows[i]] : fx->items.ids[rows[i]];
    q->subjects = ids;
}

/* Subjects: item rows with the tie group, a huge ID and a negative one;
 * user rows spread out. */
static const size_t item_rows[MANY] = {0, 2, 10, 11, 137, 418, 599};
static const size_t user_rows[MANY] = {0, 1, 13, 44, 45, 70, 89};

static void vector_queries(float *out, size_t n, tu_rng *r)
{
    for (size_t i = 0; i < n * D; i++) out[i] = (float)(0.3 + gauss(r));
}

/* ---- 1. the five kinds on exact bundles ---- */

static void test_five_kinds(void **state)
{
    fixture *fx = *state;
    const annb_bundle *bundles[3] = {fx->ip, fx->cosine, fx->l2};
    const annb_metric metrics[3] = {ANNB_METRIC_IP, ANNB_METRIC_COSINE, ANNB_METRIC_L2};
    float queries[MANY * D];
    tu_rng r;
    tu_rng_seed(&r, 77);
    vector_queries(queries, MANY, &r);
    annb_hit *hits = malloc(MANY * (N + 5) * sizeof *hits), one[N + 5];
    assert_non_null(hits);
    int64_t ids[MANY];
    for (int b = 0; b < 3; b++)
        for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
            const int users_answer = annb_question_space((annb_question_kind)kind) == ANNB_SPACE_USERS;
            const size_t all = users_answer ? U : N;
            const size_t *rows = subject_is_user((annb_question_kind)kind) ? user_rows : item_rows;
            /* k = 1, 10, all but one (the subject may be left out: k then
             * fills exactly), and beyond what remains. */
            const size_t ks[4] = {1, 10, all - 1, all + 5};
            for (int ki = 0; ki < 4; ki++) {
                annb_question q;
                char what[96];
                snprintf(what, sizeof what, "%s bundle", annb_metric_name(metrics[b]));
                question_for(&q, fx, (annb_question_kind)kind, rows, MANY, queries, ids, ks[ki]);
                memset(hits, 0x5a, MANY * ks[ki] * sizeof *hits);
                ask_ok(hits, &bundles[b], 1, &q, what);
                expect_question(fx, &q, metrics[b], rows, queries, 0, hits, what);
                /* One subject at a time: the same answers. */
                for (size_t i = 0; i < MANY; i += 3) {
                    annb_question q1 = q;
                    q1.count = 1;
                    if (q.subjects) q1.subjects = q.subjects + i;
                    else q1.vectors = q.vectors + i * D;
                    ask_ok(one, &bundles[b], 1, &q1, what);
                    for (size_t j = 0; j < ks[ki]; j++)
                        if (one[j].id != hits[i * ks[ki] + j].id)
                            fail_msg("%s kind %d k %zu: subject %zu alone gets %lld at slot %zu, "
                                     "asked with others %lld", what, kind, ks[ki], i,
                                     (long long)one[j].id, j, (long long)hits[i * ks[ki] + j].id);
                }
                /* Past what remains: the last slots are empty. */
                if (ks[ki] > all) {
                    size_t real = (kind == ANNB_Q_SIMILAR_ITEMS || kind == ANNB_Q_SIMILAR_USERS) ? all - 1 : all;
                    for (size_t i = 0; i < MANY; i++) {
                        assert_true(hits[i * ks[ki] + real - 1].id != ANNB_ID_NONE);
                        for (size_t j = real; j < ks[ki]; j++)
                            assert_true(hits[i * ks[ki] + j].id == ANNB_ID_NONE);
                    }
                }
            }
        }
    free(hits);
}

/* Subjects are left out of their own answer only; ties by the lower ID. */
static void test_self_and_ties(void **state)
{
    fixture *fx = *state;
    const annb_bundle *b[] = {fx->ip};
    int64_t dup[NDUP];
    for (size_t i = 0; i < NDUP; i++) dup[i] = fx->items.ids[i];
    int64_t sorted[NDUP];
    memcpy(sorted, dup, sizeof dup);
    qsort(sorted, NDUP, sizeof *sorted, cmp_i64);
    /* The tie group answers the vector they share first, in ID order. */
    annb_question q;
    annb_hit hits[NDUP * NDUP];
    annb_question_init(&q);
    q.kind = ANNB_Q_ITEMS_FOR_VECTOR;
    q.vectors = item_vec(fx, 0);
    q.k = NDUP;
    ask_ok(hits, b, 1, &q, "tie group");
    for (size_t j = 0; j < NDUP; j++) {
        if (hits[j].id != sorted[j])
            fail_msg("tie group: slot %zu holds %lld, expected %lld (equal scores: lower ID first)",
                     j, (long long)hits[j].id, (long long)sorted[j]);
        assert_true(hits[j].score == hits[0].score);
    }
    /* Each member asked for its similar items, all at once: the other
     * three, in ID order; each member appears in the others' answers. */
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    q.vectors = NULL;
    q.subjects = dup;
    q.count = NDUP;
    q.k = NDUP - 1;
    ask_ok(hits, b, 1, &q, "similar items of the tie group");
    for (size_t i = 0; i < NDUP; i++) {
        const annb_hit *h = hits + i * (NDUP - 1);
        for (size_t j = 0, s = 0; j < NDUP - 1; j++, s++) {
            if (sorted[s] == dup[i]) s++;
            if (h[j].id != sorted[s])
                fail_msg("similar items of %lld: slot %zu holds %lld, expected %lld", (long long)dup[i],
                         j, (long long)h[j].id, (long long)sorted[s]);
        }
    }
    /* k = 1: the subject with the lowest ID answers for each other member,
     * and the second lowest for it. */
    q.k = 1;
    ask_ok(hits, b, 1, &q, "similar items k 1");
    for (size_t i = 0; i < NDUP; i++)
        assert_true(hits[i].id == (dup[i] == sorted[0] ? sorted[1] : sorted[0]));
    /* The same subject twice: left out of both answers. */
    int64_t twice[2] = {sorted[1], sorted[1]};
    q.subjects = twice;
    q.count = 2;
    q.k = 2;
    ask_ok(hits, b, 1, &q, "subject twice");
    for (size_t i = 0; i < 2; i++) {
        assert_true(hits[i * 2].id == sorted[0]);
        assert_true(hits[i * 2 + 1].id == sorted[2]);
    }
    /* Similar users: a subject of one answer in the other's. Users row 44
     * and its own best other user. */
    size_t nr;
    filter f = {NULL, 0, NULL, 0, NULL, 0, 1, fx->users.ids[44]};
    ranked *ref = reference(&nr, &fx->users, user_vec(fx, 44), ANNB_METRIC_IP, &f);
    long best = tu_data_row(&fx->users, ref[0].id);
    free(ref);
    int64_t pair[2] = {fx->users.ids[44], fx->users.ids[best]};
    q.kind = ANNB_Q_SIMILAR_USERS;
    q.subjects = pair;
    q.k = 10;
    annb_hit uh[20];
    ask_ok(uh, b, 1, &q, "similar users pair");
    assert_true(uh[0].id == pair[1]);
    for (size_t j = 0; j < 10; j++) {
        assert_true(uh[j].id != pair[0]);
        assert_true(uh[10 + j].id != pair[1]);
    }
}

/* ---- filters ---- */

static void test_filters(void **state)
{
    fixture *fx = *state;
    const annb_bundle *b[] = {fx->ip};
    annb_hit hits[MANY * (N + 1)];
    int64_t ids[MANY];
    float queries[MANY * D];
    tu_rng r;
    tu_rng_seed(&r, 99);
    vector_queries(queries, MANY, &r);
    /* Excluded: the 12 best items of user row 0 and of item row 137 (most
     * of their top answers), the tie group but one, IDs no one has. */
    int64_t ex[40];
    size_t nex = 0, nr;
    ranked *ref = reference(&nr, &fx->items, user_vec(fx, 0), ANNB_METRIC_IP, NULL);
    for (size_t i = 0; i < 12; i++) ex[nex++] = ref[i].id;
    free(ref);
    filter self = {NULL, 0, NULL, 0, NULL, 0, 1, fx->items.ids[137]};
    ref = reference(&nr, &fx->items, item_vec(fx, 137), ANNB_METRIC_IP, &self);
    for (size_t i = 0; i < 12; i++)
        if (!in_list(ref[i].id, ex, nex)) ex[nex++] = ref[i].id;
    free(ref);
    for (size_t i = 1; i < NDUP; i++)
        if (!in_list(fx->items.ids[i], ex, nex)) ex[nex++] = fx->items.ids[i];
    ex[nex++] = 3;
    ex[nex++] = -424242;
    /* Excluded users: the five best users of item row 137 and of user 44. */
    int64_t uex[12];
    size_t nuex = 0;
    ref = reference(&nr, &fx->users, item_vec(fx, 137), ANNB_METRIC_IP, NULL);
    for (size_t i = 0; i < 5; i++) uex[nuex++] = ref[i].id;
    free(ref);
    self = (filter){NULL, 0, NULL, 0, NULL, 0, 1, fx->users.ids[44]};
    ref = reference(&nr, &fx->users, user_vec(fx, 44), ANNB_METRIC_IP, &self);
    for (size_t i = 0; i < 5; i++)
        if (!in_list(ref[i].id, uex, nuex)) uex[nuex++] = ref[i].id;
    free(ref);
    uex[nuex++] = 424242;

    const char *const rare[] = {"Film-Noir"};
    const char *const two[] = {"Horror", "Film-Noir"};
    const char *const none[] = {"Documentary"};
    const struct {
        const char *const *names;
        size_t n;
        unsigned mask;
    } gsets[4] = {{NULL, 0, 0}, {rare, 1, 1u << G_NOIR}, {two, 2, 1u << 3 | 1u << G_NOIR},
                  {none, 1, 1u << G_DOC}};

    for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
        const int users_answer = annb_question_space((annb_question_kind)kind) == ANNB_SPACE_USERS;
        const size_t *rows = subject_is_user((annb_question_kind)kind) ? user_rows : item_rows;
        for (int g = 0; g < (users_answer ? 1 : 4); g++)
            for (int use_ex = 0; use_ex < 2; use_ex++)
                for (int seen = 0; seen < (kind == ANNB_Q_ITEMS_FOR_USER ? 2 : 1); seen++)
                    for (int ki = 0; ki < 2; ki++) {
                        const size_t k = ki ? 20 : 1;
                        annb_question q;
                        question_for(&q, fx, (annb_question_kind)kind, rows, MANY, queries, ids, k);
                        q.genres = gsets[g].names;
                        q.genre_count = gsets[g].n;
                        if (use_ex) {
                            q.exclude_ids = users_answer ? uex : ex;
                            q.exclude_count = users_answer ? nuex : nex;
                        }
                        q.exclude_seen = seen;
                        char what[96];
                        snprintf(what, sizeof what, "filters: genres %d, exclude %d, seen %d", g,
                                 use_ex, seen);
                        ask_ok(hits, b, 1, &q, what);
                        expect_question(fx, &q, ANNB_METRIC_IP, rows, queries, gsets[g].mask, hits,
                                        what);
                    }
    }
    /* Each filter removes most of the best answers and k still fills. User
     * row 0 saw its 30 best items; its 12 best are also excluded. */
    annb_question q;
    int64_t user0 = fx->users.ids[0];
    annb_question_init(&q);
    q.subjects = &user0;
    q.k = 25;
    q.exclude_seen = 1;
    q.exclude_ids = ex;
    q.exclude_count = nex;
    q.genres = two;
    q.genre_count = 2;
    ask_ok(hits, b, 1, &q, "user 0, every filter");
    size_t rows0 = 0;
    expect_question(fx, &q, ANNB_METRIC_IP, &rows0, NULL, gsets[2].mask, hits, "user 0, every filter");
    for (size_t j = 0; j < 25; j++) {
        assert_true(hits[j].id != ANNB_ID_NONE);
        assert_false(in_list(hits[j].id, fx->seen[0], fx->nseen[0]));
    }
    /* Fewer remain than k: the rare genre alone (12 items), all of them,
     * then empty slots. */
    q.exclude_seen = 0;
    q.exclude_ids = NULL;
    q.exclude_count = 0;
    q.genres = rare;
    q.genre_count = 1;
    q.k = N;
    ask_ok(hits, b, 1, &q, "rare genre, k = N");
    size_t n_noir = 0;
    for (size_t row = 0; row < N; row++) n_noir += fx->genres[row] >> G_NOIR & 1;
    assert_true(n_noir > 5 && n_noir < 20);
    expect_question(fx, &q, ANNB_METRIC_IP, &rows0, NULL, gsets[1].mask, hits, "rare genre, k = N");
    assert_true(hits[n_noir - 1].id != ANNB_ID_NONE);
    assert_true(hits[n_noir].id == ANNB_ID_NONE);
    /* A genre no stored item has: every slot empty. */
    q.genres = none;
    q.k = 3;
    ask_ok(hits, b, 1, &q, "genre of no item");
    for (size_t j = 0; j < 3; j++) assert_true(hits[j].id == ANNB_ID_NONE);
}

/* ---- 2. shards ---- */

static void expect_same(const annb_hit *a, const annb_hit *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].id != b[i].id)
            fail_msg("%s: slot %zu holds %lld over shards, %lld from one bundle", what, i,
                     (long long)a[i].id, (long long)b[i].id);
        if (a[i].id != ANNB_ID_NONE && !tu_close(a[i].score, b[i].score, TU_SCORE_EPS))
            fail_msg("%s: slot %zu score %.9g over shards, %.9g from one bundle", what, i,
                     (double)a[i].score, (double)b[i].score);
    }
}

static void test_shards(void **state)
{
    fixture *fx = *state;
    const annb_bundle *whole[] = {fx->ip};
    const annb_bundle *sh[NSH] = {fx->shard[0], fx->shard[1], fx->shard[2]};
    annb_hit *a = malloc(MANY * (N + 5) * sizeof *a), *w = malloc(MANY * (N + 5) * sizeof *w);
    assert_true(a && w);
    int64_t ids[MANY];
    float queries[MANY * D];
    tu_rng r;
    tu_rng_seed(&r, 5);
    vector_queries(queries, MANY, &r);
    const char *const genres[] = {"Comedy", "Film-Noir"};
    const int64_t ex_items[3] = {fx->items.ids[0], fx->items.ids[137], fx->items.ids[300]};
    const int64_t ex_users[2] = {fx->users.ids[1], fx->users.ids[2]};
    for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
        const int users_answer = annb_question_space((annb_question_kind)kind) == ANNB_SPACE_USERS;
        const size_t *rows = subject_is_user((annb_question_kind)kind) ? user_rows : item_rows;
        const size_t all = users_answer ? U : N;
        const size_t ks[3] = {1, 10, all + 5};
        for (int variant = 0; variant < 3; variant++)
            for (int ki = 0; ki < 3; ki++) {
                annb_question q;
                question_for(&q, fx, (annb_question_kind)kind, rows, MANY, queries, ids, ks[ki]);
                if (variant == 1 && !users_answer) {
                    q.genres = genres;
                    q.genre_count = 2;
                } else if (variant == 2) {
                    q.exclude_ids = users_answer ? ex_users : ex_items;
                    q.exclude_count = users_answer ? 2 : 3;
                }
                char what[96];
                snprintf(what, sizeof what, "shards: kind %d variant %d k %zu", kind, variant, ks[ki]);
                ask_ok(a, sh, NSH, &q, what);
                ask_ok(w, whole, 1, &q, what);
                expect_same(a, w, MANY * ks[ki], what);
                expect_question(fx, &q, ANNB_METRIC_IP, rows, queries,
                                q.genre_count ? (1u << 1 | 1u << G_NOIR) : 0, a, what);
            }
    }
    /* An item subject from whichever shard holds it; annb_item_owner. */
    int seen_shard[NSH] = {0};
    for (size_t row = 0; row < N; row += 7) {
        int64_t id = fx->items.ids[row];
        uint32_t s = annb_shard_of(id, NSH);
        seen_shard[s] = 1;
        assert_ptr_equal(annb_item_owner(sh, NSH, id), sh[s]);
        assert_ptr_equal(annb_item_owner(whole, 1, id), fx->ip);
        annb_question q;
        question_for(&q, fx, ANNB_Q_SIMILAR_ITEMS, &row, 1, NULL, ids, 10);
        ask_ok(a, sh, NSH, &q, "similar items over shards");
        expect_question(fx, &q, ANNB_METRIC_IP, &row, NULL, 0, a, "similar items over shards");
        /* The shards in another order: the same answer. */
        const annb_bundle *rev[NSH] = {sh[2], sh[0], sh[1]};
        ask_ok(w, rev, NSH, &q, "similar items, shards reordered");
        expect_same(w, a, 10, "similar items, shards reordered");
        q.kind = ANNB_Q_USERS_FOR_ITEM;
        ask_ok(a, sh, NSH, &q, "users for item over shards");
        expect_question(fx, &q, ANNB_METRIC_IP, &row, NULL, 0, a, "users for item over shards");
    }
    for (int s = 0; s < NSH; s++) assert_true(seen_shard[s]);
    assert_null(annb_item_owner(sh, NSH, 3));
    assert_null(annb_item_owner(NULL, NSH, fx->items.ids[0]));
    assert_null(annb_item_owner(sh, 0, fx->items.ids[0]));
    /* exclude_seen over shards: refused, whatever the user. */
    annb_question q;
    annb_error err = {0, ""};
    question_for(&q, fx, ANNB_Q_ITEMS_FOR_USER, user_rows, 1, NULL, ids, 10);
    q.exclude_seen = 1;
    assert_int_equal(annb_ask(a, sh, NSH, &q, &err), ANNB_E_UNSUPPORTED);
    assert_int_equal(err.code, ANNB_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, "single bundle"));
    /* Over one shard alone it is a bundle like any other. */
    ask_ok(a, sh, 1, &q, "exclude_seen on one shard");
    free(a);
    free(w);
}

/* ---- 3. errors ---- */

static void expect_error(const annb_bundle *const *b, size_t n, const annb_question *q, int code,
                         const char *fragment, const char *what)
{
    annb_hit hits[64];
    annb_error err = {0, ""};
    int rc = annb_ask(hits, b, n, q, &err);
    if (rc != code || err.code != code || (fragment && !strstr(err.message, fragment)))
        fail_msg("%s: annb_ask = %d (err.code %d) \"%s\"; expected %d with \"%s\"", what, rc,
                 err.code, err.message, code, fragment ? fragment : "");
    /* err may be NULL. */
    assert_int_equal(annb_ask(hits, b, n, q, NULL), code);
}

static void test_errors(void **state)
{
    fixture *fx = *state;
    const annb_bundle *ip[] = {fx->ip};
    const annb_bundle *sh[NSH] = {fx->shard[0], fx->shard[1], fx->shard[2]};
    annb_question q;
    int64_t two[2] = {fx->users.ids[3], 424242};
    int64_t item = fx->items.ids[5];
    char msg[128];

    /* Unknown user: named, even second of two. */
    annb_question_init(&q);
    q.subjects = two;
    q.count = 2;
    expect_error(ip, 1, &q, ANNB_E_NOT_FOUND, "user 424242 is not in the bundle", "unknown user");
    expect_error(sh, NSH, &q, ANNB_E_NOT_FOUND, "user 424242 is not in the bundle", "unknown user, shards");
    q.kind = ANNB_Q_SIMILAR_USERS;
    expect_error(ip, 1, &q, ANNB_E_NOT_FOUND, "user 424242 is not in the bundle", "similar users, unknown");
    /* Unknown item. */
    int64_t items[2] = {item, 3};
    q.subjects = items;
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    expect_error(ip, 1, &q, ANNB_E_NOT_FOUND, "item 3 is not in the bundle", "unknown item");
    expect_error(sh, NSH, &q, ANNB_E_NOT_FOUND, "item 3 is in none of the bundles", "unknown item, shards");
    q.kind = ANNB_Q_USERS_FOR_ITEM;
    expect_error(ip, 1, &q, ANNB_E_NOT_FOUND, "item 3 is not in the bundle", "users for unknown item");
    expect_error(sh, NSH, &q, ANNB_E_NOT_FOUND, "item 3 is in none of the bundles", "users for unknown item, shards");
    /* Unknown genre: the message lists the known ones. */
    const char *const nope[] = {"Comedy", "Nope"};
    annb_question_init(&q);
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    q.subjects = &item;
    q.genres = nope;
    q.genre_count = 2;
    expect_error(ip, 1, &q, ANNB_E_NOT_FOUND, "unknown genre \"Nope\"", "unknown genre");
    expect_error(sh, NSH, &q, ANNB_E_NOT_FOUND, "unknown genre \"Nope\"", "unknown genre, shards");
    {
        annb_hit hits[10];
        annb_error err = {0, ""};
        assert_int_equal(annb_ask(hits, ip, 1, &q, &err), ANNB_E_NOT_FOUND);
        for (int g = 0; g < NG; g++)
            if (!strstr(err.message, genre_names[g]))
                fail_msg("unknown genre: \"%s\" does not list %s", err.message, genre_names[g]);
    }
    const char *const lower[] = {"comedy"}; /* case-sensitive */
    q.genres = lower;
    q.genre_count = 1;
    expect_error(ip, 1, &q, ANNB_E_NOT_FOUND, "unknown genre \"comedy\"", "genre in the wrong case");
    const char *const null_genre[] = {"Comedy", NULL};
    q.genres = null_genre;
    q.genre_count = 2;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "genre 2 is NULL", "NULL genre");
    /* What the bundles do not store. */
    const annb_bundle *no_users[] = {fx->no_users};
    for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
        if (kind == ANNB_Q_ITEMS_FOR_VECTOR || kind == ANNB_Q_SIMILAR_ITEMS) continue;
        annb_question_init(&q);
        q.kind = (annb_question_kind)kind;
        q.subjects = kind == ANNB_Q_USERS_FOR_ITEM ? &item : two;
        expect_error(no_users, 1, &q, ANNB_E_UNSUPPORTED, "the bundle has no users", "no users");
    }
    /* Items questions need no users. */
    {
        annb_hit hits[10];
        annb_question_init(&q);
        q.kind = ANNB_Q_SIMILAR_ITEMS;
        q.subjects = &item;
        ask_ok(hits, no_users, 1, &q, "similar items without users");
    }
    annb_question_init(&q);
    q.subjects = two;
    q.exclude_seen = 1;
    const annb_bundle *no_seen[] = {fx->no_seen};
    expect_error(no_seen, 1, &q, ANNB_E_UNSUPPORTED, "no interactions", "no interactions");
    expect_error(sh, NSH, &q, ANNB_E_UNSUPPORTED, "single bundle", "exclude_seen over shards");
    /* Genres with an answer of users; exclude_seen with another kind. */
    const char *const comedy[] = {"Comedy"};
    for (int kind = ANNB_Q_SIMILAR_USERS; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
        annb_question_init(&q);
        q.kind = (annb_question_kind)kind;
        q.subjects = kind == ANNB_Q_USERS_FOR_ITEM ? &item : two;
        q.genres = comedy;
        q.genre_count = 1;
        expect_error(ip, 1, &q, ANNB_E_INVALID, "answers users", "genres with users");
    }
    float vec[D] = {1};
    for (int kind = ANNB_Q_ITEMS_FOR_VECTOR; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
        annb_question_init(&q);
        q.kind = (annb_question_kind)kind;
        q.subjects = kind == ANNB_Q_SIMILAR_USERS ? two : &item;
        q.vectors = vec;
        q.exclude_seen = 1;
        snprintf(msg, sizeof msg, "exclude_seen with kind %d", kind);
        expect_error(ip, 1, &q, ANNB_E_INVALID, "items for a stored user only", msg);
    }
    /* Missing or contradictory fields. */
    annb_question_init(&q);
    expect_error(ip, 1, &q, ANNB_E_INVALID, "subjects", "NULL subjects");
    q.kind = ANNB_Q_ITEMS_FOR_VECTOR;
    q.subjects = &item;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "vectors", "NULL vectors");
    annb_question_init(&q);
    q.subjects = two;
    q.count = 0;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "count and k of at least 1", "count 0");
    q.count = 1;
    q.k = 0;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "count and k of at least 1", "k 0");
    q.k = 10;
    q.exclude_count = 2;
    expect_error(ip, 1, &q, ANNB_E_INVALID, NULL, "exclude_count without IDs");
    q.exclude_count = 0;
    q.genre_count = 1;
    expect_error(ip, 1, &q, ANNB_E_INVALID, NULL, "genre_count without genres");
    q.genre_count = 0;
    q.k = SIZE_MAX;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "too large", "k = SIZE_MAX");
    q.k = SIZE_MAX / 2;
    q.count = 4;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "too large", "count x k overflows");
    annb_question_init(&q);
    q.subjects = two;
    q.kind = (annb_question_kind)5;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "unknown question kind 5", "kind 5");
    q.kind = (annb_question_kind)-1;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "unknown question kind", "kind -1");
    q.kind = ANNB_Q_ITEMS_FOR_USER;
    q.struct_size = offsetof(annb_question, exact);
    expect_error(ip, 1, &q, ANNB_E_INVALID, "struct_size too small", "struct_size too small");
    q.struct_size = 0;
    expect_error(ip, 1, &q, ANNB_E_INVALID, "struct_size too small", "struct_size 0");
    q.struct_size = sizeof q;
    {
        annb_hit hits[10];
        annb_error err = {0, ""};
        assert_int_equal(annb_ask(hits, ip, 1, NULL, &err), ANNB_E_INVALID);
        assert_int_equal(annb_ask(NULL, ip, 1, &q, &err), ANNB_E_INVALID);
        assert_int_equal(annb_ask(hits, NULL, 1, &q, &err), ANNB_E_INVALID);
        assert_int_equal(annb_ask(hits, ip, 0, &q, &err), ANNB_E_INVALID);
        const annb_bundle *with_null[] = {fx->ip, NULL};
        assert_int_equal(annb_ask(hits, with_null, 2, &q, &err), ANNB_E_INVALID);
        const annb_bundle *structure[] = {fx->structure};
        assert_int_equal(annb_ask(hits, structure, 1, &q, &err), ANNB_E_INVALID);
        assert_non_null(strstr(err.message, "structure only"));
    }
    /* Bundles of two dimensions, or two metrics. */
    const annb_bundle *mixed[] = {fx->ip, fx->other_dim};
    const annb_bundle *mixed_metric[] = {fx->ip, fx->l2};
    for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
        annb_question_init(&q);
        q.kind = (annb_question_kind)kind;
        q.subjects = subject_is_user((annb_question_kind)kind) ? two : &item;
        q.vectors = vec;
        expect_error(mixed, 2, &q, ANNB_E_INVALID, "disagree on dimension or metric", "two dimensions");
        expect_error(mixed_metric, 2, &q, ANNB_E_INVALID, "disagree on dimension or metric", "two metrics");
    }
    /* Shards none of which has users. */
    const annb_bundle *no_users2[] = {fx->no_users, fx->no_users};
    annb_question_init(&q);
    q.subjects = two;
    expect_error(no_users2, 2, &q, ANNB_E_UNSUPPORTED, "none of the bundles has users", "no users, 2");
}

/* Genres asked of a bundle without a catalog: annb.h's annb_ask lists this
 * under ANNB_E_UNSUPPORTED ("genres on a bundle without a catalog"), as
 * ANNB_E_UNSUPPORTED's own comment does (users, interactions, genres). */
static void test_genres_without_catalog(void **state)
{
    fixture *fx = *state;
    const annb_bundle *b[] = {fx->no_catalog};
    const char *const comedy[] = {"Comedy"};
    annb_question q;
    annb_question_init(&q);
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    q.subjects = &fx->items.ids[20];
    q.genres = comedy;
    q.genre_count = 1;
    expect_error(b, 1, &q, ANNB_E_UNSUPPORTED, "catalog", "genres without a catalog");
}

/* Every byte of s is part of a well-formed UTF-8 character. */
static int valid_utf8(const char *s)
{
    size_t n = strlen(s), len;
    for (size_t i = 0; i < n; i += len)
        if (!(len = annb_text_char(s + i, n - i, NULL))) return 0;
    return 1;
}

/* The unknown-genre message is text for a person: valid UTF-8 when the
 * caller's name is long and cut (question.c prints it with %.64s). */
static void test_genre_message_long_name(void **state)
{
    fixture *fx = *state;
    annb_question q;
    annb_hit hits[10];
    annb_error err = {0, ""};
    /* 30 euro signs (3 bytes each): 90 bytes. */
    char name[128] = "";
    for (int i = 0; i < 30; i++) strcat(name, "\xe2\x82\xac");
    const char *const names[] = {name};
    const annb_bundle *ip[] = {fx->ip};
    annb_question_init(&q);
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    q.subjects = &fx->items.ids[20];
    q.genres = names;
    q.genre_count = 1;
    assert_int_equal(annb_ask(hits, ip, 1, &q, &err), ANNB_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "unknown genre"));
    if (!valid_utf8(err.message))
        fail_msg("a long unknown genre name of 3-byte characters: the message is not UTF-8: %s",
                 err.message);
}

/* A catalog of 100 genres with accented names: the list is cut at a
 * character and ends with ", ..". */
static void test_genre_message_many(void **state)
{
    fixture *fx = *state;
    annb_question q;
    annb_hit hits[10];
    annb_error err = {0, ""};
    char csv[512], movies[512], out[512];
    tu_data t;
    tu_rng r;
    tu_rng_seed(&r, 100);
    make_items(&t, 100, 4, fx->items.ids, &r);
    tu_write_spark_csv(tu_path(csv, fx->dir, "many-genres.csv"), &t);
    FILE *f = fopen(tu_path(movies, fx->dir, "many-genres-movies.csv"), "w");
    assert_non_null(f);
    fprintf(f, "movieId,title,genres\n");
    for (size_t i = 1; i < t.n; i++)
        fprintf(f, "%lld,T%zu,G\xc3\xa9nero-\xe2\x82\xac-%0*zu\n", (long long)t.ids[i], i,
                (int)(1 + i % 3), i);
    /* The first item has every genre: 1.5 KB of them (results_json's long path). */
    fprintf(f, "%lld,Everything,", (long long)t.ids[0]);
    for (size_t i = 0; i < t.n; i++)
        fprintf(f, "%sG\xc3\xa9nero-\xe2\x82\xac-%0*zu", i ? "|" : "", (int)(1 + i % 3), i);
    fprintf(f, "\n");
    fclose(f);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    if (annb_build(NULL, csv, movies, tu_path(out, fx->dir, "many-genres.annb"), &o, &err))
        fail_msg("build: %s", err.message);
    annb_bundle *b = tu_open(out, 0);
    assert_int_equal(annb_genre_count(b), 100);
    const annb_bundle *bb[] = {b};
    const char *const nope[] = {"Nope"};
    annb_question_init(&q);
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    q.genre_count = 1;
    q.subjects = &t.ids[0];
    q.genres = nope;
    assert_int_equal(annb_ask(hits, bb, 1, &q, &err), ANNB_E_NOT_FOUND);
    if (!valid_utf8(err.message)) fail_msg("100 genres: the message is not UTF-8: %s", err.message);
    size_t len = strlen(err.message);
    assert_true(len >= 4 && !strcmp(err.message + len - 4, ", .."));
    assert_non_null(strstr(err.message, annb_genre_name(b, 0)));
    /* The item of every genre, as JSON: its title and all 100 genres. */
    annb_hit every = {t.ids[0], 1.0f};
    char *text = annb_results_json(bb, 1, ANNB_SPACE_ITEMS, &every, 1);
    cJSON *arr = cJSON_Parse(text);
    const cJSON *g = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "genres");
    if (cJSON_GetArraySize(g) != 100) fail_msg("the item of 100 genres: %s", text);
    for (int i = 0; i < 100; i++)
        assert_string_equal(cJSON_GetArrayItem(g, i)->valuestring, annb_genre_name(b, (uint32_t)i));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "title")->valuestring,
                        "Everything");
    cJSON_Delete(arr);
    annb_free(text);
    annb_close(b);
    tu_data_free(&t);
}

/* ---- 4. exact on approximate bundles ---- */

static void test_exact_flag(void **state)
{
    fixture *fx = *state;
    const annb_bundle *approx[3] = {fx->graph, fx->ivf, fx->hnsw};
    const char *names[3] = {"graph", "IVF16,Flat", "HNSW16"};
    annb_hit *hits = malloc(AQ * (AN + 1) * sizeof *hits), *ex = malloc(AQ * (AN + 1) * sizeof *ex);
    assert_true(hits && ex);
    int64_t users[AQ];
    for (size_t i = 0; i < AQ; i++) users[i] = fx->ausers.ids[i * 3];
    float queries[AQ * D];
    tu_rng r;
    tu_rng_seed(&r, 1234);
    vector_queries(queries, AQ, &r);
    for (int b = 0; b < 3; b++) {
        const annb_bundle *one[] = {approx[b]};
        size_t differ = 0;
        for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_SIMILAR_ITEMS; kind++) {
            annb_question q;
            annb_question_init(&q);
            q.kind = (annb_question_kind)kind;
            q.count = AQ;
            q.k = 10;
            q.subjects = kind == ANNB_Q_ITEMS_FOR_USER ? users : fx->aitems.ids;
            q.vectors = queries;
            q.nprobe = 1;
            q.ef_search = 1;
            q.exact = 1;
            char what[96];
            snprintf(what, sizeof what, "%s, exact, kind %d", names[b], kind);
            ask_ok(ex, one, 1, &q, what);
            for (size_t i = 0; i < AQ; i++) {
                const float *v = kind == ANNB_Q_ITEMS_FOR_USER ? fx->ausers.vecs + i * 3 * D
                                 : kind == ANNB_Q_ITEMS_FOR_VECTOR ? queries + i * D
                                                                   : fx->aitems.vecs + i * D;
                filter f = {NULL, 0, NULL, 0, NULL, 0, kind == ANNB_Q_SIMILAR_ITEMS, fx->aitems.ids[i]};
                expect_answer(&fx->aitems, v, ANNB_METRIC_IP, &f, ex + i * 10, 10, what);
            }
            /* The same question answered by the exact bundle. */
            const annb_bundle *flat[] = {fx->aflat};
            ask_ok(hits, flat, 1, &q, "flat bundle");
            expect_same(ex, hits, AQ * 10, "exact flag vs flat bundle");
            /* Without exact, at the low effort: approximate. */
            q.exact = 0;
            ask_ok(hits, one, 1, &q, names[b]);
            for (size_t i = 0; i < AQ * 10; i++) differ += hits[i].id != ex[i].id;
        }
        if (!differ)
            fail_msg("%s at nprobe/efSearch 1: every answer equals the exact one; the test "
                     "cannot tell exact from approximate", names[b]);
        /* Provably different: k = every item. IVF at nprobe 1 can only
         * answer from one of its 16 lists; exact answers every item. */
        annb_question q;
        annb_question_init(&q);
        q.kind = ANNB_Q_ITEMS_FOR_VECTOR;
        q.vectors = queries;
        q.k = AN;
        q.nprobe = 1;
        q.ef_search = 1;
        q.exact = 1;
        ask_ok(ex, one, 1, &q, "exact, k = all");
        expect_answer(&fx->aitems, queries, ANNB_METRIC_IP, NULL, ex, AN, "exact, k = all");
        if (b == 1) {
            q.exact = 0;
            ask_ok(hits, one, 1, &q, "IVF, nprobe 1, k = all");
            assert_true(hits[AN / 2].id == ANNB_ID_NONE);
        }
        /* exact with filters: the filtered brute force. */
        int64_t exclude[5];
        for (size_t i = 0; i < 5; i++) exclude[i] = ex[i * 2].id;
        q.exact = 1;
        q.k = 10;
        q.count = 5;
        q.exclude_ids = exclude;
        q.exclude_count = 5;
        ask_ok(hits, one, 1, &q, "exact, excluded");
        for (size_t i = 0; i < 5; i++) {
            filter f = {NULL, 0, exclude, 5, NULL, 0, 0, 0};
            expect_answer(&fx->aitems, queries + i * D, ANNB_METRIC_IP, &f, hits + i * 10, 10,
                          "exact, excluded");
        }
        /* annb_search_opts.exact directly. */
        annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
        o.exact = 1;
        o.nprobe = 1;
        o.ef_search = 1;
        assert_int_equal(annb_search(approx[b], queries, AQ, 10, &o, hits), ANNB_OK);
        for (size_t i = 0; i < AQ; i++)
            expect_answer(&fx->aitems, queries + i * D, ANNB_METRIC_IP, NULL, hits + i * 10, 10,
                          "annb_search exact");
    }
    free(hits);
    free(ex);
}

/* ---- 5. older callers ---- */

static void test_old_search_opts(void **state)
{
    fixture *fx = *state;
    float queries[AQ * D];
    tu_rng r;
    tu_rng_seed(&r, 4321);
    vector_queries(queries, AQ, &r);
    annb_hit old[AQ * 10], now[AQ * 10], exact[AQ * 10];
    /* A 0.1 caller: its struct ends at threads; what follows is not its. */
    _Alignas(annb_search_opts) unsigned char buf[sizeof(annb_search_opts) + 64];
    annb_search_opts small = ANNB_SEARCH_OPTS_INIT;
    small.struct_size = ANNB_SEARCH_OPTS_SIZE_0_1;
    small.ef_search = 1;
    small.nprobe = 1;
    memset(buf, 0xff, sizeof buf);
    memcpy(buf, &small, ANNB_SEARCH_OPTS_SIZE_0_1);
    const annb_search_opts *o = (const annb_search_opts *)buf;
    assert_true(ANNB_SEARCH_OPTS_SIZE_0_1 < sizeof(annb_search_opts));
    assert_true(ANNB_SEARCH_OPTS_SIZE_0_1 <= offsetof(annb_search_opts, exact));
    assert_true(o->exact != 0); /* garbage where exact is */
    annb_search_opts full = ANNB_SEARCH_OPTS_INIT;
    full.ef_search = 1;
    full.nprobe = 1;
    annb_search_opts ex = full;
    ex.exact = 1;
    const annb_bundle *approx[2] = {fx->graph, fx->ivf};
    for (int b = 0; b < 2; b++) {
        assert_int_equal(annb_search(approx[b], queries, AQ, 10, o, old), ANNB_OK);
        assert_int_equal(annb_search(approx[b], queries, AQ, 10, &full, now), ANNB_OK);
        assert_int_equal(annb_search(approx[b], queries, AQ, 10, &ex, exact), ANNB_OK);
        size_t differ = 0;
        for (size_t i = 0; i < AQ * 10; i++) {
            assert_true(old[i].id == now[i].id);
            differ += old[i].id != exact[i].id;
        }
        assert_true(differ > 0); /* the garbage was not read as exact = 1 */
        /* annb_recommend and annb_search_shards take it too. */
        int64_t users[AQ];
        for (size_t i = 0; i < AQ; i++) users[i] = fx->ausers.ids[i];
        assert_int_equal(annb_recommend(approx[b], users, AQ, 10, o, old), ANNB_OK);
        assert_int_equal(annb_recommend(approx[b], users, AQ, 10, &full, now), ANNB_OK);
        for (size_t i = 0; i < AQ * 10; i++) assert_true(old[i].id == now[i].id);
    }
    /* On the exact bundles: the defaults, over one bundle and shards, items
     * and users, with a filter inside the old struct (see test_batch_ties
     * for batches). */
    const annb_bundle *sh[NSH] = {fx->shard[0], fx->shard[1], fx->shard[2]};
    small = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
    small.struct_size = ANNB_SEARCH_OPTS_SIZE_0_1;
    const int64_t exclude[2] = {fx->items.ids[0], fx->items.ids[1]};
    for (int v = 0; v < 3; v++) {
        full = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
        small.space = full.space = v == 2 ? ANNB_SPACE_USERS : ANNB_SPACE_ITEMS;
        small.exclude_ids = full.exclude_ids = v == 1 ? exclude : NULL;
        small.exclude_count = full.exclude_count = v == 1 ? 2 : 0;
        memset(buf, 0xff, sizeof buf);
        memcpy(buf, &small, ANNB_SEARCH_OPTS_SIZE_0_1);
        assert_int_equal(annb_search(fx->ip, queries, NOLD, 10, o, old), ANNB_OK);
        assert_int_equal(annb_search(fx->ip, queries, NOLD, 10, &full, now), ANNB_OK);
        expect_same(old, now, NOLD * 10, "old struct, one bundle");
        for (size_t i = 0; i < NOLD; i++)
            expect_answer(v == 2 ? &fx->users : &fx->items, queries + i * D, ANNB_METRIC_IP,
                          &(filter){NULL, 0, full.exclude_ids, full.exclude_count, NULL, 0, 0, 0},
                          old + i * 10, 10, "old struct vs brute force");
        if (v < 2) {
            assert_int_equal(annb_search_shards(sh, NSH, queries, NOLD, 10, o, old), ANNB_OK);
            expect_same(old, now, NOLD * 10, "old struct, shards");
        }
    }
    /* Smaller than the first struct: refused, by every entry point. */
    small.struct_size = ANNB_SEARCH_OPTS_SIZE_0_1 - 1;
    small.space = ANNB_SPACE_ITEMS;
    small.exclude_ids = NULL;
    small.exclude_count = 0;
    assert_int_equal(annb_search(fx->ip, queries, 1, 10, &small, old), ANNB_E_INVALID);
    assert_int_equal(annb_search_shards(sh, NSH, queries, 1, 10, &small, old), ANNB_E_INVALID);
    assert_int_equal(annb_recommend(fx->ip, fx->users.ids, 1, 10, &small, old), ANNB_E_INVALID);
    small.struct_size = 0;
    assert_int_equal(annb_search(fx->ip, queries, 1, 10, &small, old), ANNB_E_INVALID);
    /* The *_init functions give the macros. */
    annb_search_opts so;
    memset(&so, 0xab, sizeof so);
    annb_search_opts_init(&so);
    assert_int_equal(so.struct_size, sizeof so);
    assert_true(so.space == ANNB_SPACE_ITEMS && !so.exclude_ids && !so.exclude_count &&
                !so.genres && !so.genre_count && !so.exclude_seen && !so.nprobe &&
                !so.ef_search && !so.threads && !so.exact);
    annb_question qq;
    memset(&qq, 0xab, sizeof qq);
    annb_question_init(&qq);
    assert_true(qq.kind == ANNB_Q_ITEMS_FOR_USER && !qq.subjects && !qq.vectors &&
                !qq.exclude_seen && !qq.exclude_ids && !qq.exclude_count && !qq.genres &&
                !qq.genre_count && !qq.nprobe && !qq.ef_search && !qq.threads && !qq.exact);
    assert_int_equal(qq.struct_size, sizeof qq);
    assert_int_equal(qq.count, 1);
    assert_int_equal(qq.k, 10);
    annb_open_opts oo, oo_macro = ANNB_OPEN_OPTS_INIT;
    memset(&oo, 0xab, sizeof oo);
    annb_open_opts_init(&oo);
    assert_int_equal(oo.struct_size, oo_macro.struct_size);
    assert_int_equal(oo.flags, oo_macro.flags);
    annb_search_opts_init(NULL);
    annb_question_init(NULL);
    annb_open_opts_init(NULL);
    assert_int_equal(annb_question_space(ANNB_Q_ITEMS_FOR_USER), ANNB_SPACE_ITEMS);
    assert_int_equal(annb_question_space(ANNB_Q_ITEMS_FOR_VECTOR), ANNB_SPACE_ITEMS);
    assert_int_equal(annb_question_space(ANNB_Q_SIMILAR_ITEMS), ANNB_SPACE_ITEMS);
    assert_int_equal(annb_question_space(ANNB_Q_SIMILAR_USERS), ANNB_SPACE_USERS);
    assert_int_equal(annb_question_space(ANNB_Q_USERS_FOR_ITEM), ANNB_SPACE_USERS);
    /* A question struct larger than this library's (a newer caller): the
     * fields it knows are read, the rest ignored. */
    _Alignas(annb_question) unsigned char qbuf[sizeof(annb_question) + 32];
    annb_question big;
    annb_question_init(&big);
    big.subjects = fx->users.ids;
    memset(qbuf, 0, sizeof qbuf);
    memcpy(qbuf, &big, sizeof big);
    ((annb_question *)qbuf)->struct_size = sizeof qbuf;
    const annb_bundle *ip[] = {fx->ip};
    annb_hit a[10], b2[10];
    ask_ok(a, ip, 1, (const annb_question *)qbuf, "larger struct");
    ask_ok(b2, ip, 1, &big, "struct");
    expect_same(a, b2, 10, "larger question struct");
}

/* A question asked for many subjects at once answers each as if it were
 * asked alone, ties included: items of one and the same vector score the
 * same and come by the lower ID (annb_hit order), however many subjects
 * share the call. From 2 query vectors on, exact search scores them with
 * one blocked matrix multiply (lib/exact.c, ANNB_BATCH_MIN_QUERIES). */
#define NBATCH 20
static void test_batch_ties(void **state)
{
    fixture *fx = *state;
    const annb_bundle *b[] = {fx->ip};
    float queries[NBATCH * D];
    tu_rng r;
    tu_rng_seed(&r, 4321);
    vector_queries(queries, NBATCH, &r);
    annb_hit batch[NBATCH * 10], one[10];
    annb_question q;
    annb_question_init(&q);
    q.kind = ANNB_Q_ITEMS_FOR_VECTOR;
    q.vectors = queries;
    q.count = NBATCH;
    ask_ok(batch, b, 1, &q, "batch of vectors");
    for (size_t i = 0; i < NBATCH; i++) {
        annb_question q1 = q;
        q1.count = 1;
        q1.vectors = queries + i * D;
        ask_ok(one, b, 1, &q1, "one vector");
        char what[160];
        snprintf(what, sizeof what, "vector %zu of a batch of %d", i, NBATCH);
        expect_answer(&fx->items, queries + i * D, ANNB_METRIC_IP, NULL, one, 10, "one vector alone");
        for (size_t j = 0; j < 10; j++)
            if (one[j].id != batch[i * 10 + j].id ||
                !tu_close(one[j].score, batch[i * 10 + j].score, TU_SCORE_EPS))
                fail_msg("%s: slot %zu holds %lld (score %.9g), asked alone %lld (score %.9g)", what,
                         j, (long long)batch[i * 10 + j].id, (double)batch[i * 10 + j].score,
                         (long long)one[j].id, (double)one[j].score);
        expect_answer(&fx->items, queries + i * D, ANNB_METRIC_IP, NULL, batch + i * 10, 10, what);
    }
}

/* Many subjects at once (20: exact search then scores them with one matrix
 * multiply) for every kind and metric, with filters: each answer is its
 * brute force, ties by the lower ID as for one question at a time. */
static void test_batch_kinds(void **state)
{
    fixture *fx = *state;
    const annb_bundle *bundles[3] = {fx->ip, fx->cosine, fx->l2};
    const annb_metric metrics[3] = {ANNB_METRIC_IP, ANNB_METRIC_COSINE, ANNB_METRIC_L2};
    size_t irows[NBATCH], urows[NBATCH];
    int64_t ids[NBATCH];
    for (size_t i = 0; i < NBATCH; i++) {
        irows[i] = i * 29 % N;
        urows[i] = i * 4 % U;
    }
    float queries[NBATCH * D];
    tu_rng r;
    tu_rng_seed(&r, 2027);
    vector_queries(queries, NBATCH, &r);
    const char *const genres[] = {"Drama", "Film-Noir"};
    const int64_t ex_items[3] = {fx->items.ids[29], fx->items.ids[58], fx->items.ids[301]};
    const int64_t ex_users[2] = {fx->users.ids[4], fx->users.ids[5]};
    annb_hit hits[NBATCH * 10];
    for (int b = 0; b < 3; b++)
        for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++)
            for (int filtered = 0; filtered < 2; filtered++) {
                const int users_answer = annb_question_space((annb_question_kind)kind) == ANNB_SPACE_USERS;
                const size_t *rows = subject_is_user((annb_question_kind)kind) ? urows : irows;
                annb_question q;
                question_for(&q, fx, (annb_question_kind)kind, rows, NBATCH, queries, ids, 10);
                if (filtered) {
                    q.exclude_ids = users_answer ? ex_users : ex_items;
                    q.exclude_count = users_answer ? 2 : 3;
                    if (!users_answer) {
                        q.genres = genres;
                        q.genre_count = 2;
                    }
                    q.exclude_seen = kind == ANNB_Q_ITEMS_FOR_USER && b == 0;
                }
                char what[96];
                snprintf(what, sizeof what, "batch of %d, %s, filtered %d", NBATCH,
                         annb_metric_name(metrics[b]), filtered);
                ask_ok(hits, &bundles[b], 1, &q, what);
                expect_question(fx, &q, metrics[b], rows, queries,
                                q.genre_count ? (1u << 2 | 1u << G_NOIR) : 0, hits, what);
            }
    /* More subjects than annb_recommend's batch of 256, users repeated,
     * seen items excluded: every answer still its own user's. */
    enum { MANY_USERS = 600 };
    size_t *rows = malloc(MANY_USERS * sizeof *rows);
    int64_t *subjects = malloc(MANY_USERS * sizeof *subjects);
    annb_hit *h = malloc(MANY_USERS * 10 * sizeof *h);
    assert_true(rows && subjects && h);
    for (size_t i = 0; i < MANY_USERS; i++) rows[i] = (i * 7 + i / U) % U;
    for (int seen = 0; seen < 2; seen++) {
        annb_question q;
        question_for(&q, fx, ANNB_Q_ITEMS_FOR_USER, rows, MANY_USERS, NULL, subjects, 10);
        q.exclude_seen = seen;
        ask_ok(h, &bundles[0], 1, &q, "600 users");
        expect_question(fx, &q, ANNB_METRIC_IP, rows, NULL, 0, h, "600 users");
    }
    free(rows);
    free(subjects);
    free(h);
}

/* ---- 6. JSON ---- */

/* The IDs in a results array's text, in order (exact: not through double). */
static size_t text_ids(int64_t *out, size_t max, const char *text)
{
    size_t n = 0;
    for (const char *p = text; n < max && (p = strstr(p, "\"id\":")); p += 5)
        out[n++] = strtoll(p + 5, NULL, 10);
    return n;
}

static void expect_results_json(const fixture *fx, const char *text, const annb_hit *hits,
                                size_t k, annb_space space, const char *what)
{
    assert_non_null(text);
    cJSON *arr = cJSON_Parse(text);
    if (!cJSON_IsArray(arr)) fail_msg("%s: not a JSON array: %s", what, text);
    size_t n = 0;
    while (n < k && hits[n].id != ANNB_ID_NONE) n++;
    assert_int_equal(cJSON_GetArraySize(arr), n);
    int64_t ids[N + 5];
    assert_int_equal(text_ids(ids, N + 5, text), n);
    char title[128];
    for (size_t j = 0; j < n; j++) {
        const cJSON *o = cJSON_GetArrayItem(arr, (int)j);
        assert_true(cJSON_IsObject(o));
        assert_true(cJSON_GetObjectItem(o, "rank")->valuedouble == (double)(j + 1));
        if (ids[j] != hits[j].id)
            fail_msg("%s: result %zu has ID %lld in the text, the hit %lld", what, j,
                     (long long)ids[j], (long long)hits[j].id);
        assert_true((float)cJSON_GetObjectItem(o, "score")->valuedouble == hits[j].score);
        const cJSON *t = cJSON_GetObjectItem(o, "title"), *g = cJSON_GetObjectItem(o, "genres");
        assert_true(cJSON_IsArray(g));
        long row = space == ANNB_SPACE_ITEMS ? tu_data_row(&fx->items, hits[j].id) : -1;
        if (space == ANNB_SPACE_USERS) assert_true(tu_data_has(&fx->users, hits[j].id));
        if (row < 0 || !fx->has_entry[row]) {
            if (!cJSON_IsNull(t)) fail_msg("%s: result %zu: title %s, expected null", what, j, text);
            assert_int_equal(cJSON_GetArraySize(g), 0);
            continue;
        }
        title_of(title, sizeof title, hits[j].id);
        if (!cJSON_IsString(t) || strcmp(t->valuestring, title))
            fail_msg("%s: result %zu: title %s, expected %s", what, j,
                     cJSON_IsString(t) ? t->valuestring : "(not a string)", title);
        /* The item's genres, each once (in the bundle's order). */
        unsigned got = 0;
        int count = 0;
        for (const cJSON *e = g->child; e; e = e->next, count++) {
            int gi = 0;
            while (gi < NG && !(cJSON_IsString(e) && !strcmp(e->valuestring, genre_names[gi]))) gi++;
            if (gi == NG || (got >> gi & 1) || !(fx->genres[row] >> gi & 1))
                fail_msg("%s: result %zu (ID %lld): genres %s, not its own", what, j,
                         (long long)hits[j].id, text);
            got |= 1u << gi;
        }
        if (got != fx->genres[row])
            fail_msg("%s: result %zu (ID %lld): genres missing in %s", what, j, (long long)hits[j].id, text);
    }
    cJSON_Delete(arr);
}

static void test_results_json(void **state)
{
    fixture *fx = *state;
    const annb_bundle *whole[] = {fx->ip};
    const annb_bundle *sh[NSH] = {fx->shard[0], fx->shard[1], fx->shard[2]};
    annb_hit hits[MANY * 40];
    int64_t ids[MANY];
    float queries[MANY * D];
    tu_rng r;
    tu_rng_seed(&r, 8);
    vector_queries(queries, MANY, &r);
    for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++) {
        annb_space space = annb_question_space((annb_question_kind)kind);
        const size_t *rows = subject_is_user((annb_question_kind)kind) ? user_rows : item_rows;
        for (int s = 0; s < 2; s++) {
            const annb_bundle *const *b = s ? sh : whole;
            size_t n = s ? NSH : 1;
            annb_question q;
            question_for(&q, fx, (annb_question_kind)kind, rows, MANY, queries, ids, 40);
            ask_ok(hits, b, n, &q, "json");
            for (size_t i = 0; i < MANY; i++) {
                char *text = annb_results_json(b, n, space, hits + i * 40, 40);
                expect_results_json(fx, text, hits + i * 40, 40, space, "annb_results_json");
                annb_free(text);
            }
        }
    }
    /* The huge IDs print exactly: ask for them. */
    annb_question q;
    size_t rows[2] = {10, 11};
    question_for(&q, fx, ANNB_Q_SIMILAR_ITEMS, rows, 2, NULL, ids, 3);
    ask_ok(hits, whole, 1, &q, "huge IDs");
    annb_hit mine[2] = {{fx->items.ids[10], 1.5f}, {fx->items.ids[11], -2.25f}};
    char *text = annb_results_json(whole, 1, ANNB_SPACE_ITEMS, mine, 2);
    assert_non_null(strstr(text, "\"rank\":1,\"id\":9007199254740993,\"score\":1.5,"));
    assert_non_null(strstr(text, "\"rank\":2,\"id\":-9223372036854775807,\"score\":-2.25,"));
    expect_results_json(fx, text, mine, 2, ANNB_SPACE_ITEMS, "huge IDs");
    annb_free(text);
    /* Empty slots end the array; none at all gives []. */
    annb_hit empty[2] = {{ANNB_ID_NONE, NAN}, {ANNB_ID_NONE, NAN}};
    text = annb_results_json(whole, 1, ANNB_SPACE_ITEMS, empty, 2);
    assert_string_equal(text, "[]");
    annb_free(text);
    assert_null(annb_results_json(NULL, 1, ANNB_SPACE_ITEMS, mine, 2));
    assert_null(annb_results_json(whole, 0, ANNB_SPACE_ITEMS, mine, 2));
    assert_null(annb_results_json(whole, 1, ANNB_SPACE_ITEMS, NULL, 2));
}

/* annb_serve_ask answers as annb_serve_request does, byte for byte. */
static void test_serve_ask(void **state)
{
    fixture *fx = *state;
    const annb_bundle *whole[] = {fx->ip};
    const annb_bundle *sh[NSH] = {fx->shard[0], fx->shard[1], fx->shard[2]};
    static const char *const keys[5] = {"user", "vector", "item", "similar_users", "users_for_item"};
    const char *const genres[] = {"Drama", "Film-Noir"};
    float vec[D];
    tu_rng r;
    tu_rng_seed(&r, 31);
    vector_queries(vec, 1, &r);
    for (int s = 0; s < 2; s++)
        for (int kind = ANNB_Q_ITEMS_FOR_USER; kind <= ANNB_Q_USERS_FOR_ITEM; kind++)
            for (size_t i = 0; i < MANY; i++)
                for (int variant = 0; variant < 5; variant++) {
                    const int users_answer =
                        annb_question_space((annb_question_kind)kind) == ANNB_SPACE_USERS;
                    const size_t *rows = subject_is_user((annb_question_kind)kind) ? user_rows : item_rows;
                    int64_t id = subject_is_user((annb_question_kind)kind) ? fx->users.ids[rows[i]]
                                                                           : fx->items.ids[rows[i]];
                    if (variant == 4) id = 424242; /* unknown: an error answer */
                    int64_t exclude[2] = {users_answer ? fx->users.ids[5] : fx->items.ids[1],
                                          users_answer ? fx->users.ids[6] : fx->items.ids[2]};
                    char req[2048];
                    int at = snprintf(req, sizeof req, "{\"%s\": ", keys[kind]);
                    if (kind == ANNB_Q_ITEMS_FOR_VECTOR) {
                        at += snprintf(req + at, sizeof req - at, "[");
                        for (int j = 0; j < D; j++)
                            at += snprintf(req + at, sizeof req - at, "%s%.9g", j ? "," : "", (double)vec[j]);
                        at += snprintf(req + at, sizeof req - at, "]");
                    } else {
                        at += snprintf(req + at, sizeof req - at, "\"%lld\"", (long long)id);
                    }
                    annb_question q;
                    annb_question_init(&q);
                    q.kind = (annb_question_kind)kind;
                    q.subjects = &id;
                    q.vectors = vec;
                    q.k = 5 + i;
                    at += snprintf(req + at, sizeof req - at, ", \"k\": %zu", q.k);
                    if (variant == 1) {
                        q.exclude_ids = exclude;
                        q.exclude_count = 2;
                        at += snprintf(req + at, sizeof req - at, ", \"exclude\": [%lld, %lld]",
                                       (long long)exclude[0], (long long)exclude[1]);
                    } else if (variant == 2) { /* on a users answer: invalid_request */
                        q.genres = genres;
                        q.genre_count = 2;
                        at += snprintf(req + at, sizeof req - at, ", \"genres\": [\"Drama\", \"Film-Noir\"]");
                    } else if (variant == 3) { /* with another kind or over shards: an error */
                        q.exclude_seen = 1;
                        at += snprintf(req + at, sizeof req - at, ", \"exclude_seen\": true");
                    }
                    snprintf(req + at, sizeof req - at, "}");
                    char *from_request = NULL, *from_ask = NULL;
                    int rc1 = annb_serve_request(s ? sh : whole, s ? NSH : 1, req, &from_request);
                    int rc2 = annb_serve_ask(s ? sh : whole, s ? NSH : 1, &q, NULL, &from_ask);
                    assert_non_null(from_request);
                    assert_non_null(from_ask);
                    if (rc1 != rc2 || strcmp(from_request, from_ask))
                        fail_msg("%s\n annb_serve_request (%d): %s\n annb_serve_ask (%d):     %s",
                                 req, rc1, from_request, rc2, from_ask);
                    /* What annb_ask says, and the results as annb_results_json writes them. */
                    annb_hit hits[16];
                    annb_error err = {0, ""};
                    int rc3 = annb_ask(hits, s ? sh : whole, s ? NSH : 1, &q, &err);
                    assert_int_equal(rc3, rc2);
                    cJSON *a = cJSON_Parse(from_ask);
                    assert_true(cJSON_IsObject(a));
                    assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "id")));
                    if (rc3 == ANNB_OK) {
                        char *results = annb_results_json(s ? sh : whole, s ? NSH : 1,
                                                          annb_question_space(q.kind), hits, q.k);
                        assert_non_null(strstr(from_ask, results));
                        assert_string_equal(cJSON_GetObjectItem(a, "space")->valuestring,
                                            users_answer ? "users" : "items");
                        expect_results_json(fx, results, hits, q.k, annb_question_space(q.kind),
                                            "serve_ask");
                        annb_free(results);
                    } else {
                        const cJSON *e = cJSON_GetObjectItem(a, "error");
                        assert_non_null(e);
                        assert_string_equal(cJSON_GetObjectItem(e, "message")->valuestring, err.message);
                    }
                    cJSON_Delete(a);
                    annb_free(from_request);
                    annb_free(from_ask);
                }
    /* What only annb_serve_ask can be given. */
    annb_question q;
    char *text = NULL;
    int64_t id = fx->users.ids[0];
    annb_question_init(&q);
    q.subjects = fx->users.ids;
    q.count = 2;
    assert_int_equal(annb_serve_ask(whole, 1, &q, NULL, &text), ANNB_E_INVALID);
    assert_non_null(strstr(text, "\"code\":\"invalid_request\""));
    assert_non_null(strstr(text, "one question at a time"));
    annb_free(text);
    q.subjects = &id;
    q.count = 1;
    q.k = ANNB_SERVE_MAX_K + 1;
    assert_int_equal(annb_serve_ask(whole, 1, &q, NULL, &text), ANNB_E_INVALID);
    assert_non_null(strstr(text, "must be an integer from 1 to 10000"));
    annb_free(text);
    q.k = 0;
    assert_int_equal(annb_serve_ask(whole, 1, &q, NULL, &text), ANNB_E_INVALID);
    annb_free(text);
    assert_int_equal(annb_serve_ask(whole, 1, NULL, NULL, &text), ANNB_E_INVALID);
    assert_non_null(text);
    annb_free(text);
    q.k = 10;
    assert_int_equal(annb_serve_ask(whole, 1, &q, NULL, NULL), ANNB_E_INVALID);
    assert_int_equal(annb_serve_ask(NULL, 0, &q, NULL, &text), ANNB_E_INVALID);
    annb_free(text);
    q.struct_size = 8;
    assert_int_equal(annb_serve_ask(whole, 1, &q, NULL, &text), ANNB_E_INVALID);
    annb_free(text);
}

/* What a service adds: a lower cap on k, and a hook that sees each question
 * answered (with its hits) so that it can sample them. */
typedef struct seen_answer {
    int calls;
    annb_question q;
    int64_t subject;
    char subject_text[32]; /* the protocol hands the subject over as text */
    annb_hit hits[16];
} seen_answer;

static void on_answered(void *ctx, const annb_question *q, const annb_hit *hits)
{
    seen_answer *s = ctx;
    s->calls++;
    s->q = *q;
    s->subject = q->subjects ? q->subjects[0] : ANNB_ID_NONE;
    snprintf(s->subject_text, sizeof s->subject_text, "%s",
             q->subject_texts && q->subject_texts[0] ? q->subject_texts[0] : "");
    memcpy(s->hits, hits, q->k * sizeof *hits);
}

static void test_serve_opts(void **state)
{
    fixture *fx = *state;
    const annb_bundle *whole[] = {fx->ip};
    seen_answer seen = {0};
    annb_serve_opts o;
    annb_serve_opts_init(&o);
    o.max_k = 7;
    o.answered = on_answered;
    o.answered_ctx = &seen;
    char req[256], *text = NULL;
    const int64_t user = fx->users.ids[3];
    /* Over the cap: refused with the cap in the message, nothing answered. */
    snprintf(req, sizeof req, "{\"user\": %lld, \"k\": 8}", (long long)user);
    assert_int_equal(annb_serve_request_with(whole, 1, req, &o, &text), ANNB_E_INVALID);
    assert_non_null(strstr(text, "must be an integer from 1 to 7"));
    assert_int_equal(seen.calls, 0);
    annb_free(text);
    /* At the cap: answered, and the hook saw the question and the answer's hits. */
    snprintf(req, sizeof req, "{\"user\": %lld, \"k\": 7, \"exclude_seen\": true, "
             "\"genres\": [\"Drama\"]}", (long long)user);
    assert_int_equal(annb_serve_request_with(whole, 1, req, &o, &text), ANNB_OK);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.q.kind, ANNB_Q_ITEMS_FOR_USER);
    assert_int_equal(seen.q.k, 7);
    assert_int_equal(seen.q.count, 1);
    assert_true(seen.q.exclude_seen);
    assert_int_equal(seen.q.genre_count, 1);
    char user_text[32];
    snprintf(user_text, sizeof user_text, "%lld", (long long)user);
    assert_string_equal(seen.subject_text, user_text);
    annb_question q = seen.q; /* its pointers were the request's: */
    q.subjects = &user;
    q.subject_texts = NULL; /* the hook's texts lived during the call only */
    q.exclude_texts = NULL;
    q.exclude_text_count = 0;
    q.genres = (const char *const[]){"Drama"};
    annb_hit hits[7];
    assert_int_equal(annb_ask(hits, whole, 1, &q, NULL), ANNB_OK);
    char *results = annb_results_json(whole, 1, ANNB_SPACE_ITEMS, hits, 7);
    assert_non_null(strstr(text, results)); /* the hook's hits are the answer's */
    for (size_t j = 0; j < 7; j++) assert_true(seen.hits[j].id == hits[j].id);
    annb_free(results);
    annb_free(text);
    /* A failed question is not reported to the hook. */
    assert_int_equal(annb_serve_request_with(whole, 1, "{\"user\": 424242}", &o, &text),
                     ANNB_E_NOT_FOUND);
    assert_int_equal(seen.calls, 1);
    annb_free(text);
    /* annb_serve_ask takes the same options. */
    q.k = 8;
    assert_int_equal(annb_serve_ask(whole, 1, &q, &o, &text), ANNB_E_INVALID);
    assert_non_null(strstr(text, "from 1 to 7"));
    annb_free(text);
    q.k = 3;
    assert_int_equal(annb_serve_ask(whole, 1, &q, &o, &text), ANNB_OK);
    assert_int_equal(seen.calls, 2);
    annb_free(text);
    /* An older caller's struct ends before the hook: it is not called. */
    o.struct_size = offsetof(annb_serve_opts, answered);
    assert_int_equal(annb_serve_request_with(whole, 1, req, &o, &text), ANNB_OK);
    assert_int_equal(seen.calls, 2);
    annb_free(text);
    /* max_k 0 or above the protocol's limit: the protocol's limit. */
    o = (annb_serve_opts)ANNB_SERVE_OPTS_INIT;
    o.max_k = ANNB_SERVE_MAX_K + 5;
    snprintf(req, sizeof req, "{\"user\": %lld, \"k\": %d}", (long long)user, ANNB_SERVE_MAX_K + 1);
    assert_int_equal(annb_serve_request_with(whole, 1, req, &o, &text), ANNB_E_INVALID);
    assert_non_null(strstr(text, "from 1 to 10000"));
    annb_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_kinds),
        cmocka_unit_test(test_serve_opts),
        cmocka_unit_test(test_self_and_ties),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_genres_without_catalog),
        cmocka_unit_test(test_genre_message_long_name),
        cmocka_unit_test(test_genre_message_many),
        cmocka_unit_test(test_exact_flag),
        cmocka_unit_test(test_old_search_opts),
        cmocka_unit_test(test_batch_ties),
        cmocka_unit_test(test_batch_kinds),
        cmocka_unit_test(test_results_json),
        cmocka_unit_test(test_serve_ask),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
