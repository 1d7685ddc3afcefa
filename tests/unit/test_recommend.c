/*
 * test_recommend.c - recommendations for users stored in a bundle, user
 * searches, filters (seen items, IDs, genres), shard merging and the JSON
 * request protocol (annb_serve_request), against an independent brute force.
 *
 * Bundles are built by annb_build from real files in a temporary directory:
 * items and users as Spark-form CSVs, a movies.dat catalog whose genres the
 * test assigns itself, and a ratings.dat the test writes from its own record
 * of who saw what. References come from tu_brute_force()/tu_check_hits()
 * (double precision, never libannb or Faiss) over the test's own vectors,
 * restricted to the allowed items (a genre's items, the unseen ones).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 400   /* items */
#define D 8
#define U 60    /* users */
#define K 10
#define NQ 16
#define NSHARDS 3
#define HEAVY_SEEN (3 * K) /* user row 0 has seen its own top 30 */

static const char *const genre_names[] = {"Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"};
#define NG 6

typedef struct fixture {
    char dir[256];
    char items_csv[512], users_csv[512], movies[512], ratings[512];
    tu_data items, users;
    unsigned genres[N];  /* by item row (file order): bit g = genre_names[g]; 0: no entry */
    int64_t *seen[U];    /* by user row: the item IDs seen, ascending */
    size_t nseen[U];
    float queries[NQ * D];
    annb_bundle *ip;         /* flat ip: users, interactions, catalog */
    annb_bundle *cosine;     /* flat cosine: users, catalog, no interactions */
    annb_bundle *l2;         /* flat l2: catalog only */
    annb_bundle *ivf;        /* IVF8,Flat l2: catalog */
    annb_bundle *ip_shard[NSHARDS], *l2_shard[NSHARDS];
} fixture;

/* ---- fixture ---- */

static unsigned genres_of_row(size_t row)
{
    if (row % 7 == 3) return 0; /* no catalog entry */
    unsigned bits = 1u << (row % NG);
    if (row % 2 == 0) bits |= 1u << (row / NG % NG);
    return bits;
}

static void write_movies(fixture *fx)
{
    FILE *f = fopen(tu_path(fx->movies, fx->dir, "movies.dat"), "w");
    assert_non_null(f);
    for (size_t r = 0; r < N; r++) {
        if (!(fx->genres[r] = genres_of_row(r))) continue;
        fprintf(f, "%lld::Item %lld (2000)::", (long long)fx->items.ids[r], (long long)fx->items.ids[r]);
        for (int g = 0, first = 1; g < NG; g++)
            if (fx->genres[r] >> g & 1) {
                fprintf(f, "%s%s", first ? "" : "|", genre_names[g]);
                first = 0;
            }
        fputc('\n', f);
    }
    fclose(f);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Who saw what: user row 0 saw its own 30 best items (so its answer must
 * come from further down), the others up to 39 random items. The file also
 * holds a repeated pair and pairs of an unknown user and an unknown item,
 * which the build skips. */
static void write_ratings(fixture *fx, tu_rng *r)
{
    FILE *f = fopen(tu_path(fx->ratings, fx->dir, "ratings.dat"), "w");
    assert_non_null(f);
    for (size_t u = 0; u < U; u++) {
        size_t n = u == 0 ? HEAVY_SEEN : (size_t)tu_rng_below(r, 40);
        int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
        assert_non_null(ids);
        if (u == 0) {
            size_t nr;
            tu_ranked *ref = tu_brute_force(&nr, &fx->items, fx->users.vecs, ANNB_METRIC_IP, NULL, 0);
            for (size_t i = 0; i < n; i++) ids[i] = ref[i].id;
            free(ref);
        } else {
            for (size_t i = 0; i < n; i++) {
                int64_t id;
                size_t j;
                do {
                    id = fx->items.ids[tu_rng_below(r, N)];
                    for (j = 0; j < i && ids[j] != id; j++) {}
                } while (j < i);
                ids[i] = id;
            }
        }
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%lld::%lld::%u::97830%04zu\n", (long long)fx->users.ids[u], (long long)ids[i],
                    (unsigned)(1 + i % 5), i);
        if (n) fprintf(f, "%lld::%lld::5::1\n", (long long)fx->users.ids[u], (long long)ids[0]);
        qsort(ids, n, sizeof *ids, cmp_i64);
        fx->seen[u] = ids;
        fx->nseen[u] = n;
    }
    fprintf(f, "999999999::%lld::4::1\n%lld::3::4::1\n", (long long)fx->items.ids[0],
            (long long)fx->users.ids[1]);
    fclose(f);
}

static annb_bundle *build(fixture *fx, const char *name, annb_metric m, const char *index,
                          int users, int interactions, uint32_t shard, uint32_t nshards)
{
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    char out[512];
    o.metric = m;
    o.index = index;
    o.users_path = users ? fx->users_csv : NULL;
    o.interactions_path = interactions ? fx->ratings : NULL;
    o.shard_index = shard;
    o.shard_count = nshards;
    int rc = annb_build(&rep, fx->items_csv, fx->movies, tu_path(out, fx->dir, name), &o, &err);
    if (rc != ANNB_OK) fail_msg("annb_build(%s) = %d: %s", name, rc, err.message);
    if (users) assert_int_equal(rep.users, U);
    return tu_open(out, 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_rng r;
    tu_items_setup(&fx->items, &r, fx->dir, fx->items_csv, N, D, 4242);
    int64_t uids[U];
    for (size_t u = 0; u < U; u++) uids[u] = u % 4 == 1 ? -(int64_t)(u * 131 + 5) : (int64_t)(u * 131 + 5);
    tu_rng_shuffle(&r, uids, U, sizeof *uids);
    tu_data_make(&fx->users, U, D, uids, &r);
    tu_write_spark_csv(tu_path(fx->users_csv, fx->dir, "users.csv"), &fx->users);
    for (size_t i = 0; i < NQ * D; i++) fx->queries[i] = (float)tu_rng_uniform(&r, -1, 1);
    write_movies(fx);
    write_ratings(fx, &r);

    fx->ip = build(fx, "ip.annb", ANNB_METRIC_IP, NULL, 1, 1, 0, 0);
    fx->cosine = build(fx, "cosine.annb", ANNB_METRIC_COSINE, NULL, 1, 0, 0, 0);
    fx->l2 = build(fx, "l2.annb", ANNB_METRIC_L2, NULL, 0, 0, 0, 0);
    fx->ivf = build(fx, "ivf.annb", ANNB_METRIC_L2, "IVF8,Flat", 0, 0, 0, 0);
    for (uint32_t s = 0; s < NSHARDS; s++) {
        char name[64];
        snprintf(name, sizeof name, "ip-%u.annb", s);
        fx->ip_shard[s] = build(fx, name, ANNB_METRIC_IP, NULL, 1, 1, s, NSHARDS);
        snprintf(name, sizeof name, "l2-%u.annb", s);
        fx->l2_shard[s] = build(fx, name, ANNB_METRIC_L2, NULL, 0, 0, s, NSHARDS);
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
    annb_close(fx->ivf);
    for (int s = 0; s < NSHARDS; s++) {
        annb_close(fx->ip_shard[s]);
        annb_close(fx->l2_shard[s]);
    }
    for (int u = 0; u < U; u++) free(fx->seen[u]);
    tu_data_free(&fx->items);
    tu_data_free(&fx->users);
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

/* The items of any of the genres in `mask`, as a tu_data of their own. */
static void genre_subset(tu_data *out, const fixture *fx, unsigned mask)
{
    int64_t *ids = malloc(N * sizeof *ids);
    float *vecs = malloc(N * D * sizeof *vecs);
    assert_true(ids && vecs);
    size_t n = 0;
    for (size_t r = 0; r < N; r++)
        if (fx->genres[r] & mask) {
            ids[n] = fx->items.ids[r];
            memcpy(vecs + n * D, fx->items.vecs + r * D, D * sizeof *vecs);
            n++;
        }
    *out = (tu_data){n, D, ids, vecs};
}

static const float *user_vec(const fixture *fx, size_t u) { return fx->users.vecs + u * D; }
static const float *item_vec(const fixture *fx, size_t r) { return fx->items.vecs + r * D; }

/* ---- annb_recommend ---- */

static void test_recommend(void **state)
{
    fixture *fx = *state;
    annb_hit hits[U * K];
    char what[96];
    /* All users in one call, each answer against its own brute force. */
    assert_int_equal(annb_recommend(fx->ip, fx->users.ids, U, K, NULL, hits), ANNB_OK);
    for (size_t u = 0; u < U; u++) {
        snprintf(what, sizeof what, "recommend user %lld", (long long)fx->users.ids[u]);
        tu_check_hits(&fx->items, user_vec(fx, u), ANNB_METRIC_IP, NULL, 0, hits + u * K, K, what);
    }
    /* One at a time gives the same. */
    for (size_t u = 0; u < U; u += 7) {
        annb_hit one[K];
        assert_int_equal(annb_recommend(fx->ip, &fx->users.ids[u], 1, K, NULL, one), ANNB_OK);
        for (size_t j = 0; j < K; j++) assert_true(one[j].id == hits[u * K + j].id);
    }
    /* Cosine: stored user vectors are normalised; the brute force
     * normalises in double. */
    assert_int_equal(annb_recommend(fx->cosine, fx->users.ids, U, K, NULL, hits), ANNB_OK);
    for (size_t u = 0; u < U; u++)
        tu_check_hits(&fx->items, user_vec(fx, u), ANNB_METRIC_COSINE, NULL, 0, hits + u * K, K,
                      "recommend cosine");
}

static void test_recommend_exclude_seen(void **state)
{
    fixture *fx = *state;
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    annb_hit hits[U * K];
    char what[96];
    o.exclude_seen = 1;
    assert_int_equal(annb_recommend(fx->ip, fx->users.ids, U, K, &o, hits), ANNB_OK);
    for (size_t u = 0; u < U; u++) {
        snprintf(what, sizeof what, "recommend user %lld, %zu seen excluded",
                 (long long)fx->users.ids[u], fx->nseen[u]);
        tu_check_hits(&fx->items, user_vec(fx, u), ANNB_METRIC_IP, fx->seen[u], fx->nseen[u],
                      hits + u * K, K, what);
    }
    /* User row 0 saw its own top 30: still k answers, all from rank 31 on. */
    for (size_t j = 0; j < K; j++) {
        assert_true(hits[j].id != ANNB_ID_NONE);
        assert_null(bsearch(&hits[j].id, fx->seen[0], fx->nseen[0], sizeof(int64_t), cmp_i64));
    }
    /* A bundle without interactions refuses exclude_seen. */
    assert_int_equal(annb_recommend(fx->cosine, fx->users.ids, 1, K, &o, hits), ANNB_E_INVALID);
    assert_int_equal(annb_bundle_has_seen(fx->ip), 1);
    assert_int_equal(annb_bundle_has_seen(fx->cosine), 0);
    assert_int_equal(annb_bundle_has_seen(fx->l2), 0);
    assert_int_equal(annb_bundle_has_seen(NULL), 0);
}

/* The seen items read from the file at query time exclude the same. */
static void test_seen_from_file(void **state)
{
    fixture *fx = *state;
    annb_error err = {0};
    for (size_t u = 0; u < U; u += 5) {
        int64_t *seen = NULL;
        size_t n = 99;
        assert_int_equal(annb_seen_items_from_file(&seen, &n, fx->ratings, fx->users.ids[u], &err), ANNB_OK);
        assert_int_equal(n, fx->nseen[u]);
        qsort(seen, n, sizeof *seen, cmp_i64);
        for (size_t i = 0; i < n; i++) assert_true(seen[i] == fx->seen[u][i]);
        annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
        annb_hit from_file[K];
        o.exclude_ids = seen;
        o.exclude_count = n;
        assert_int_equal(annb_recommend(fx->ip, &fx->users.ids[u], 1, K, &o, from_file), ANNB_OK);
        tu_check_hits(&fx->items, user_vec(fx, u), ANNB_METRIC_IP, fx->seen[u], fx->nseen[u],
                      from_file, K, "recommend, seen items from the file");
        annb_free(seen);
    }
}

static void test_recommend_errors(void **state)
{
    fixture *fx = *state;
    annb_hit hits[2 * K];
    int64_t users[2] = {fx->users.ids[0], 424242};
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    assert_int_equal(annb_recommend(fx->ip, users, 2, K, NULL, hits), ANNB_E_NOT_FOUND);
    assert_int_equal(annb_recommend(fx->l2, users, 1, K, NULL, hits), ANNB_E_INVALID); /* no users */
    o.space = ANNB_SPACE_USERS;
    assert_int_equal(annb_recommend(fx->ip, users, 1, K, &o, hits), ANNB_E_INVALID);
    o.space = ANNB_SPACE_ITEMS;
    const char *nope[] = {"Nope"};
    o.genres = nope;
    o.genre_count = 1;
    assert_int_equal(annb_recommend(fx->ip, users, 1, K, &o, hits), ANNB_E_NOT_FOUND);
}

/* ---- the users' space ---- */

static void test_similar_users(void **state)
{
    fixture *fx = *state;
    const annb_bundle *bundles[] = {fx->ip, fx->cosine};
    const annb_metric metrics[] = {ANNB_METRIC_IP, ANNB_METRIC_COSINE};
    for (int b = 0; b < 2; b++)
        for (size_t u = 0; u < U; u++) {
            annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
            annb_hit hits[K];
            float q[D];
            const int64_t self = fx->users.ids[u];
            /* The stored vector, as a service would take it. */
            assert_int_equal(annb_vector_get(bundles[b], ANNB_SPACE_USERS, self, q), ANNB_OK);
            o.space = ANNB_SPACE_USERS;
            o.exclude_ids = &self;
            o.exclude_count = 1;
            assert_int_equal(annb_search(bundles[b], q, 1, K, &o, hits), ANNB_OK);
            tu_check_hits(&fx->users, user_vec(fx, u), metrics[b], &self, 1, hits, K, "similar users");
        }
    /* annb_space_count / annb_space_id walk the users in ascending ID order. */
    assert_int_equal(annb_space_count(fx->ip, ANNB_SPACE_USERS), U);
    assert_int_equal(annb_space_count(fx->l2, ANNB_SPACE_USERS), 0);
    for (uint64_t row = 0; row < U; row++) {
        int64_t id = annb_space_id(fx->ip, ANNB_SPACE_USERS, row);
        assert_true(tu_data_has(&fx->users, id));
        if (row) assert_true(id > annb_space_id(fx->ip, ANNB_SPACE_USERS, row - 1));
    }
    assert_true(annb_space_id(fx->ip, ANNB_SPACE_USERS, U) == ANNB_ID_NONE);
}

static void test_users_for_item(void **state)
{
    fixture *fx = *state;
    for (size_t r = 0; r < N; r += 13) {
        annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
        annb_hit hits[U + 2];
        o.space = ANNB_SPACE_USERS;
        /* k beyond the user count: every user, then empty slots. */
        assert_int_equal(annb_search(fx->ip, item_vec(fx, r), 1, U + 2, &o, hits), ANNB_OK);
        tu_check_hits(&fx->users, item_vec(fx, r), ANNB_METRIC_IP, NULL, 0, hits, U + 2, "users for item");
    }
}

/* ---- filters ---- */

static void test_genre_filter(void **state)
{
    fixture *fx = *state;
    /* Each genre alone, and with another (an item with either passes). */
    for (int g0 = 0; g0 < NG; g0++) {
        for (int pair = 0; pair < 2; pair++) {
            unsigned m = 1u << g0 | (pair ? 1u << (g0 + 2) % NG : 0);
            const char *names[NG];
            size_t nn = 0;
            for (int g = 0; g < NG; g++)
                if (m >> g & 1) names[nn++] = genre_names[g];
            tu_data sub;
            genre_subset(&sub, fx, m);
            assert_true(sub.n > K);
            annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
            o.genres = names;
            o.genre_count = nn;
            annb_hit hits[NQ * K];
            assert_int_equal(annb_search(fx->ip, fx->queries, NQ, K, &o, hits), ANNB_OK);
            for (size_t q = 0; q < NQ; q++)
                tu_check_hits(&sub, fx->queries + q * D, ANNB_METRIC_IP, NULL, 0, hits + q * K, K,
                              "genre filter");
            assert_int_equal(annb_search(fx->l2, fx->queries, NQ, K, &o, hits), ANNB_OK);
            for (size_t q = 0; q < NQ; q++)
                tu_check_hits(&sub, fx->queries + q * D, ANNB_METRIC_L2, NULL, 0, hits + q * K, K,
                              "genre filter, l2");
            tu_data_free(&sub);
        }
    }
}

static void test_genre_and_seen(void **state)
{
    fixture *fx = *state;
    const char *names[] = {"Drama"};
    tu_data sub;
    genre_subset(&sub, fx, 1u << 2);
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    annb_hit hits[U * K];
    o.genres = names;
    o.genre_count = 1;
    o.exclude_seen = 1;
    assert_int_equal(annb_recommend(fx->ip, fx->users.ids, U, K, &o, hits), ANNB_OK);
    for (size_t u = 0; u < U; u++)
        tu_check_hits(&sub, user_vec(fx, u), ANNB_METRIC_IP, fx->seen[u], fx->nseen[u], hits + u * K,
                      K, "Drama, seen excluded");
    tu_data_free(&sub);
    /* Unknown genre; genres on the users' space. */
    const char *nope[] = {"Drama", "Nope"};
    o = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
    o.genres = nope;
    o.genre_count = 2;
    assert_int_equal(annb_search(fx->ip, fx->queries, 1, K, &o, hits), ANNB_E_NOT_FOUND);
    o.genre_count = 1;
    o.space = ANNB_SPACE_USERS;
    assert_int_equal(annb_search(fx->ip, fx->queries, 1, K, &o, hits), ANNB_E_INVALID);
}

static void test_exclude_ids(void **state)
{
    fixture *fx = *state;
    for (size_t q = 0; q < NQ; q++) {
        const float *v = fx->queries + q * D;
        size_t nr;
        tu_ranked *ref = tu_brute_force(&nr, &fx->items, v, ANNB_METRIC_IP, NULL, 0);
        /* The five best, a later one, and two IDs the bundle does not hold. */
        int64_t ex[8] = {ref[0].id, ref[1].id, ref[2].id, ref[3].id, ref[4].id, ref[12].id, 3, -424242};
        free(ref);
        annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
        annb_hit hits[K];
        o.exclude_ids = ex;
        o.exclude_count = 8;
        assert_int_equal(annb_search(fx->ip, v, 1, K, &o, hits), ANNB_OK);
        tu_check_hits(&fx->items, v, ANNB_METRIC_IP, ex, 8, hits, K, "exclude ids");
    }
}

/* An approximate index filtered by genre answers only items of the genre,
 * each with its exact score. */
static void test_ivf_genre(void **state)
{
    fixture *fx = *state;
    for (int g = 0; g < NG; g++) {
        tu_data sub;
        genre_subset(&sub, fx, 1u << g);
        annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
        o.genres = &genre_names[g];
        o.genre_count = 1;
        annb_hit hits[NQ * K];
        assert_int_equal(annb_search(fx->ivf, fx->queries, NQ, K, &o, hits), ANNB_OK);
        for (size_t q = 0; q < NQ; q++) {
            const annb_hit *h = hits + q * K;
            assert_true(h[0].id != ANNB_ID_NONE);
            for (size_t j = 0; j < K && h[j].id != ANNB_ID_NONE; j++) {
                long row = tu_data_row(&sub, h[j].id);
                if (row < 0)
                    fail_msg("IVF, genre %s: item %lld is not of the genre", genre_names[g],
                             (long long)h[j].id);
                assert_true(tu_close(h[j].score, tu_score(&sub, (size_t)row, fx->queries + q * D,
                                                          ANNB_METRIC_L2), TU_SCORE_EPS));
                for (size_t i = 0; i < j; i++) assert_true(h[i].id != h[j].id);
            }
        }
        tu_data_free(&sub);
    }
}

/* ---- shards ---- */

static void expect_same_hits(const annb_hit *a, const annb_hit *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].id != b[i].id)
            fail_msg("%s: slot %zu holds %lld, the unsharded bundle %lld", what, i,
                     (long long)a[i].id, (long long)b[i].id);
        if (a[i].id != ANNB_ID_NONE && !tu_close(a[i].score, b[i].score, TU_SCORE_EPS))
            fail_msg("%s: slot %zu score %.9g, unsharded %.9g", what, i, (double)a[i].score,
                     (double)b[i].score);
    }
}

static void test_shards_partition(void **state)
{
    fixture *fx = *state;
    uint64_t total = 0;
    for (uint32_t s = 0; s < NSHARDS; s++) {
        uint64_t n = annb_space_count(fx->ip_shard[s], ANNB_SPACE_ITEMS);
        assert_true(n > 0 && n < N);
        for (uint64_t row = 0; row < n; row++)
            assert_int_equal(annb_shard_of(annb_space_id(fx->ip_shard[s], ANNB_SPACE_ITEMS, row), NSHARDS), s);
        total += n;
        /* Every shard keeps every user. */
        assert_int_equal(annb_space_count(fx->ip_shard[s], ANNB_SPACE_USERS), U);
    }
    assert_int_equal(total, N);
}

static void test_shards_merge(void **state)
{
    fixture *fx = *state;
    annb_hit merged[NQ * K], whole[NQ * K];
    const annb_bundle *ip[NSHARDS], *l2[NSHARDS];
    for (int s = 0; s < NSHARDS; s++) {
        ip[s] = fx->ip_shard[s];
        l2[s] = fx->l2_shard[s];
    }
    /* Plain, with a genre filter, and with excluded IDs. */
    const char *names[] = {"Comedy", "Horror"};
    int64_t ex[4] = {fx->items.ids[0], fx->items.ids[1], fx->items.ids[2], fx->items.ids[3]};
    for (int variant = 0; variant < 3; variant++) {
        annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
        if (variant == 1) {
            o.genres = names;
            o.genre_count = 2;
        } else if (variant == 2) {
            o.exclude_ids = ex;
            o.exclude_count = 4;
        }
        assert_int_equal(annb_search_shards(ip, NSHARDS, fx->queries, NQ, K, &o, merged), ANNB_OK);
        assert_int_equal(annb_search(fx->ip, fx->queries, NQ, K, &o, whole), ANNB_OK);
        expect_same_hits(merged, whole, NQ * K, "ip shards");
        assert_int_equal(annb_search_shards(l2, NSHARDS, fx->queries, NQ, K, &o, merged), ANNB_OK);
        assert_int_equal(annb_search(fx->l2, fx->queries, NQ, K, &o, whole), ANNB_OK);
        expect_same_hits(merged, whole, NQ * K, "l2 shards");
        if (variant == 0)
            for (size_t q = 0; q < NQ; q++)
                tu_check_hits(&fx->items, fx->queries + q * D, ANNB_METRIC_L2, NULL, 0, merged + q * K,
                              K, "l2 shards vs brute force");
    }
    /* A user's vector from a shard, searched over all shards = annb_recommend. */
    for (size_t u = 0; u < U; u += 3) {
        float q[D];
        assert_int_equal(annb_vector_get(ip[1], ANNB_SPACE_USERS, fx->users.ids[u], q), ANNB_OK);
        assert_int_equal(annb_search_shards(ip, NSHARDS, q, 1, K, NULL, merged), ANNB_OK);
        assert_int_equal(annb_recommend(fx->ip, &fx->users.ids[u], 1, K, NULL, whole), ANNB_OK);
        expect_same_hits(merged, whole, K, "user over shards");
    }
    /* Shards that disagree on the metric are refused. */
    const annb_bundle *mixed[] = {fx->ip_shard[0], fx->l2_shard[1]};
    assert_int_equal(annb_search_shards(mixed, 2, fx->queries, 1, K, NULL, merged), ANNB_E_INVALID);
}

/* A shard whose vectors are damaged (NaN in the bulk VECS section, SPEC
 * 3.11, which annb_open does not checksum) ranks last in the merge, as each
 * shard and the exact scan rank it. The damage is in the last shard: the
 * old merge compared NaN as a number, and a number never came before a
 * NaN of the second list, so [5, 4] and [NaN] merged to [NaN, 5]. */
static void test_shards_nan_last(void **state)
{
    fixture *fx = *state;
    char path[512], name[64];
    snprintf(name, sizeof name, "ip-%u.annb", NSHARDS - 1);
    size_t size;
    uint8_t *bytes = tu_read_file(tu_path(path, fx->dir, name), &size);
    uint32_t count = (uint32_t)tu_get_le(bytes + TU_HDR_SECTION_COUNT, 4), vecs = count;
    for (uint32_t i = 0; i < count; i++)
        if (memcmp(bytes + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE, "VECS", 4) == 0) vecs = i;
    assert_true(vecs < count);
    const uint8_t *e = bytes + TU_HDR_SIZE + (size_t)vecs * TU_ENTRY_SIZE;
    uint64_t off = tu_get_le(e + TU_ENTRY_OFFSET, 8), len = tu_get_le(e + TU_ENTRY_STORED, 8);
    float nan = NAN;
    for (uint64_t b = 0; b + 4 <= len; b += 4) memcpy(bytes + off + b, &nan, 4);
    assert_int_equal(tu_section_rehash(bytes, size, vecs), 0);
    char damaged[512];
    tu_write_file(tu_path(damaged, fx->dir, "ip-nan.annb"), bytes, size);
    free(bytes);
    annb_bundle *bad = tu_open(damaged, 0);
    const annb_bundle *shards[NSHARDS];
    for (int s = 0; s < NSHARDS - 1; s++) shards[s] = fx->ip_shard[s];
    shards[NSHARDS - 1] = bad;
    annb_hit merged[NQ * K], healthy[NQ * K];
    assert_int_equal(annb_search_shards(shards, NSHARDS, fx->queries, NQ, K, NULL, merged), ANNB_OK);
    /* The healthy shards hold more than K items: the damaged one adds nothing. */
    assert_int_equal(annb_search_shards(shards, NSHARDS - 1, fx->queries, NQ, K, NULL, healthy),
                     ANNB_OK);
    for (size_t i = 0; i < NQ * K; i++) {
        if (isnan(merged[i].score))
            fail_msg("query %zu slot %zu: a NaN hit ahead of real ones", i / K, i % K);
        assert_int_equal(merged[i].id, healthy[i].id);
    }
    annb_close(bad);
}

/* ---- annb_vectors_from_csv ---- */

static void test_vectors_from_csv(void **state)
{
    fixture *fx = *state;
    annb_error err = {0};
    int64_t *ids = NULL;
    float *v = NULL;
    size_t n = 0;
    assert_int_equal(annb_vectors_from_csv(&ids, &v, &n, D, fx->users_csv, &err), ANNB_OK);
    assert_int_equal(n, U);
    for (size_t i = 0; i < U; i++) { /* file order, every float exact */
        assert_true(ids[i] == fx->users.ids[i]);
        assert_memory_equal(v + i * D, user_vec(fx, i), D * sizeof *v);
    }
    annb_free(ids);
    annb_free(v);
    assert_int_equal(annb_vectors_from_csv(&ids, &v, &n, D + 1, fx->users_csv, &err), ANNB_E_DIMENSION);
    assert_null(ids);
    assert_null(v);
    assert_int_equal(n, 0);
    char missing[512];
    assert_int_equal(annb_vectors_from_csv(&ids, &v, &n, D, tu_path(missing, fx->dir, "nope.csv"), &err),
                     ANNB_E_IO);
    assert_int_equal(annb_vectors_from_csv(NULL, &v, &n, D, fx->users_csv, &err), ANNB_E_INVALID);
}

/* ---- annb_serve_request ---- */

/* Parses an answer: one line, a JSON object echoing `id`. */
static cJSON *parse_answer(const char *text)
{
    assert_non_null(text);
    assert_null(strchr(text, '\n'));
    cJSON *a = cJSON_Parse(text);
    if (!cJSON_IsObject(a)) fail_msg("answer is not a JSON object: %s", text);
    return a;
}

/* The answer's results equal hits (IDs; scores as floats, exactly, since
 * they are printed with %.9g), with each item's title and genres. */
static void expect_results(const cJSON *a, const annb_bundle *b, const annb_hit *hits, size_t k,
                           const char *space)
{
    char genres[256], *save = NULL;
    assert_null(cJSON_GetObjectItem(a, "error"));
    assert_string_equal(cJSON_GetObjectItem(a, "space")->valuestring, space);
    const cJSON *res = cJSON_GetObjectItem(a, "results");
    assert_true(cJSON_IsArray(res));
    size_t n = 0;
    while (n < k && hits[n].id != ANNB_ID_NONE) n++;
    assert_int_equal(cJSON_GetArraySize(res), n);
    for (size_t j = 0; j < n; j++) {
        const cJSON *r = cJSON_GetArrayItem(res, (int)j);
        assert_int_equal(cJSON_GetObjectItem(r, "rank")->valuedouble, j + 1);
        assert_true(cJSON_GetObjectItem(r, "id")->valuedouble == (double)hits[j].id);
        assert_true((float)cJSON_GetObjectItem(r, "score")->valuedouble == hits[j].score);
        const cJSON *title = cJSON_GetObjectItem(r, "title"), *g = cJSON_GetObjectItem(r, "genres");
        const char *expect = strcmp(space, "items") ? NULL : annb_item_title(b, hits[j].id);
        if (expect) assert_string_equal(title->valuestring, expect);
        else assert_true(cJSON_IsNull(title));
        genres[0] = '\0';
        if (!strcmp(space, "items")) assert_true(annb_item_genres(b, hits[j].id, genres, sizeof genres) >= 0);
        const cJSON *e = g->child;
        for (char *t = strtok_r(genres, "|", &save); t; t = strtok_r(NULL, "|", &save), e = e->next) {
            assert_non_null(e);
            assert_string_equal(e->valuestring, t);
        }
        assert_null(e);
    }
}

static cJSON *serve(const annb_bundle *const *b, size_t n, const char *req, int expect_rc)
{
    char *text = NULL;
    int rc = annb_serve_request(b, n, req, &text);
    if (rc != expect_rc) fail_msg("%s -> %d (expected %d): %s", req, rc, expect_rc, text);
    cJSON *a = parse_answer(text);
    annb_free(text);
    return a;
}

static void test_serve_answers(void **state)
{
    fixture *fx = *state;
    const annb_bundle *b[] = {fx->ip};
    char req[1024];
    annb_hit hits[K];
    annb_search_opts o;
    for (size_t u = 0; u < U; u += 11) {
        const int64_t user = fx->users.ids[u];
        /* user, seen excluded, an ID echoed */
        snprintf(req, sizeof req, "{\"id\": {\"trace\": [%zu]}, \"user\": %lld, \"k\": %d, "
                 "\"exclude_seen\": true}\n", u, (long long)user, K);
        cJSON *a = serve(b, 1, req, ANNB_OK);
        assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "id"), "trace"), 0)->valuedouble, u);
        assert_string_equal(cJSON_GetObjectItem(a, "metric")->valuestring, "ip");
        o = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
        o.exclude_seen = 1;
        assert_int_equal(annb_recommend(fx->ip, &user, 1, K, &o, hits), ANNB_OK);
        expect_results(a, fx->ip, hits, K, "items");
        tu_check_hits(&fx->items, user_vec(fx, u), ANNB_METRIC_IP, fx->seen[u], fx->nseen[u], hits,
                      K, "serve user");
        cJSON_Delete(a);
        /* similar users, the ID as a string */
        snprintf(req, sizeof req, "{\"similar_users\": \"%lld\", \"k\": 4}", (long long)user);
        a = serve(b, 1, req, ANNB_OK);
        o = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
        o.space = ANNB_SPACE_USERS;
        o.exclude_ids = &user;
        o.exclude_count = 1;
        assert_int_equal(annb_search(fx->ip, user_vec(fx, u), 1, 4, &o, hits), ANNB_OK);
        expect_results(a, fx->ip, hits, 4, "users");
        tu_check_hits(&fx->users, user_vec(fx, u), ANNB_METRIC_IP, &user, 1, hits, 4, "serve similar users");
        cJSON_Delete(a);
    }
    for (size_t r = 0; r < N; r += 37) {
        const int64_t item = fx->items.ids[r];
        /* similar items in a genre, the item itself and two others excluded */
        snprintf(req, sizeof req, "{\"item\": %lld, \"genres\": [\"Comedy\", \"Drama\"], "
                 "\"exclude\": [%lld, \"%lld\"], \"k\": 7}", (long long)item,
                 (long long)fx->items.ids[(r + 1) % N], (long long)fx->items.ids[(r + 2) % N]);
        cJSON *a = serve(b, 1, req, ANNB_OK);
        const char *names[] = {"Comedy", "Drama"};
        int64_t ex[3] = {fx->items.ids[(r + 1) % N], fx->items.ids[(r + 2) % N], item};
        o = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
        o.genres = names;
        o.genre_count = 2;
        o.exclude_ids = ex;
        o.exclude_count = 3;
        assert_int_equal(annb_search(fx->ip, item_vec(fx, r), 1, 7, &o, hits), ANNB_OK);
        expect_results(a, fx->ip, hits, 7, "items");
        tu_data sub;
        genre_subset(&sub, fx, 1u << 1 | 1u << 2);
        tu_check_hits(&sub, item_vec(fx, r), ANNB_METRIC_IP, ex, 3, hits, 7, "serve item");
        tu_data_free(&sub);
        cJSON_Delete(a);
        /* users for the item */
        snprintf(req, sizeof req, "{\"users_for_item\": %lld, \"k\": 5, \"id\": \"q%zu\"}",
                 (long long)item, r);
        a = serve(b, 1, req, ANNB_OK);
        snprintf(req, sizeof req, "q%zu", r);
        assert_string_equal(cJSON_GetObjectItem(a, "id")->valuestring, req);
        o = (annb_search_opts)ANNB_SEARCH_OPTS_INIT;
        o.space = ANNB_SPACE_USERS;
        assert_int_equal(annb_search(fx->ip, item_vec(fx, r), 1, 5, &o, hits), ANNB_OK);
        expect_results(a, fx->ip, hits, 5, "users");
        tu_check_hits(&fx->users, item_vec(fx, r), ANNB_METRIC_IP, NULL, 0, hits, 5, "serve users_for_item");
        cJSON_Delete(a);
    }
    /* a vector, printed so that every float reads back exactly; default k */
    for (size_t q = 0; q < NQ; q++) {
        int len = snprintf(req, sizeof req, "{\"vector\": [");
        for (int j = 0; j < D; j++)
            len += snprintf(req + len, sizeof req - len, "%s%.9g", j ? ", " : "", (double)fx->queries[q * D + j]);
        snprintf(req + len, sizeof req - len, "]}");
        cJSON *a = serve(b, 1, req, ANNB_OK);
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "id")));
        assert_int_equal(annb_search(fx->ip, fx->queries + q * D, 1, 10, NULL, hits), ANNB_OK);
        expect_results(a, fx->ip, hits, 10, "items");
        cJSON_Delete(a);
    }
}

/* Each bad request gets an error answer with its code; none is fatal. */
static void test_serve_errors(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *request;
        int rc;
        const char *code, *message; /* message: a fragment */
    } cases[] = {
        {"", ANNB_E_INPUT, "bad_json", "empty"},
        {"  \r\n", ANNB_E_INPUT, "bad_json", "empty"},
        {"{\"user\": 10", ANNB_E_INPUT, "bad_json", "not valid JSON"},
        {"{\"user\": 10} trailing", ANNB_E_INPUT, "bad_json", "not valid JSON"},
        {"not json", ANNB_E_INPUT, "bad_json", "byte 1"},
        {"[1, 2]", ANNB_E_INVALID, "invalid_request", "JSON object"},
        {"42", ANNB_E_INVALID, "invalid_request", "JSON object"},
        {"{}", ANNB_E_INVALID, "invalid_request", "no question"},
        {"{\"id\": 5}", ANNB_E_INVALID, "invalid_request", "no question"},
        {"{\"user\": 5, \"item\": 7}", ANNB_E_INVALID, "invalid_request", "several questions"},
        {"{\"user\": 5, \"user\": 7}", ANNB_E_INVALID, "invalid_request", "twice"},
        {"{\"user\": 5, \"frobnicate\": 1}", ANNB_E_INVALID, "invalid_request", "unknown key \"frobnicate\""},
        {"{\"User\": 5}", ANNB_E_INVALID, "invalid_request", "unknown key"},
        {"{\"user\": 1.5}", ANNB_E_INVALID, "invalid_request", "\"user\" must be an ID"},
        /* text is read in the bundle's user space (annb_space_id_of): integers here */
        {"{\"user\": \"12x\"}", ANNB_E_INVALID, "invalid_request",
         "user ID \"12x\": expected an integer (the bundle's user IDs are integers)"},
        {"{\"user\": \"99999999999999999999\"}", ANNB_E_INVALID, "invalid_request",
         "user ID \"99999999999999999999\": expected an integer"},
        {"{\"user\": 1e300}", ANNB_E_INVALID, "invalid_request", "must be an ID"},
        {"{\"user\": true}", ANNB_E_INVALID, "invalid_request", "must be an ID"},
        {"{\"item\": null}", ANNB_E_INVALID, "invalid_request", "must be an ID"},
        {"{\"vector\": \"1,2\"}", ANNB_E_INVALID, "invalid_request", "array of numbers"},
        {"{\"vector\": [1, \"x\"]}", ANNB_E_INVALID, "invalid_request", "element 2"},
        {"{\"vector\": [1, 2]}", ANNB_E_DIMENSION, "dimension", "2 values"},
        {"{\"vector\": [1,2,3,4,5,6,7,8,9]}", ANNB_E_DIMENSION, "dimension", "dimension is 8"},
        {"{\"vector\": [1,2,3,4,5,6,7,1e39]}", ANNB_E_INVALID, "invalid_request", "element 8"},
        {"{\"item\": 3, \"k\": 0}", ANNB_E_INVALID, "invalid_request", "\"k\""},
        {"{\"item\": 3, \"k\": 10001}", ANNB_E_INVALID, "invalid_request", "1 to 10000"},
        {"{\"item\": 3, \"k\": 2.5}", ANNB_E_INVALID, "invalid_request", "\"k\""},
        {"{\"item\": 3, \"k\": \"5\"}", ANNB_E_INVALID, "invalid_request", "\"k\""},
        {"{\"item\": 3, \"nprobe\": 0}", ANNB_E_INVALID, "invalid_request", "\"nprobe\" must be an integer"},
        {"{\"item\": 3, \"ef_search\": 1.5}", ANNB_E_INVALID, "invalid_request", "\"ef_search\""},
        {"{\"item\": 3, \"nprobe\": \"8\"}", ANNB_E_INVALID, "invalid_request", "\"nprobe\""},
        {"{\"item\": 3, \"exclude_seen\": 1}", ANNB_E_INVALID, "invalid_request", "true or false"},
        {"{\"item\": 3, \"exclude_seen\": true}", ANNB_E_INVALID, "invalid_request", "items for a stored user only"},
        {"{\"item\": 3, \"exclude\": 5}", ANNB_E_INVALID, "invalid_request", "array of IDs"},
        {"{\"item\": 3, \"exclude\": [5, 2.5]}", ANNB_E_INVALID, "invalid_request", "element 2"},
        {"{\"item\": 3, \"genres\": \"Comedy\"}", ANNB_E_INVALID, "invalid_request", "array of strings"},
        {"{\"item\": 3, \"genres\": [7]}", ANNB_E_INVALID, "invalid_request", "element 1"},
        {"{\"similar_users\": 5, \"genres\": [\"Comedy\"]}", ANNB_E_INVALID, "invalid_request", "answers users"},
        {"{\"item\": 3}", ANNB_E_NOT_FOUND, "not_found", "item 3 is not in the bundle"},
        {"{\"users_for_item\": 3}", ANNB_E_NOT_FOUND, "not_found", "item 3"},
        {"{\"user\": 424242}", ANNB_E_NOT_FOUND, "not_found", "user 424242 is not in the bundle"},
        {"{\"user\": \"-9223372036854775807\"}", ANNB_E_NOT_FOUND, "not_found", "user -9223372036854775807"},
        {"{\"similar_users\": 424242}", ANNB_E_NOT_FOUND, "not_found", "user 424242"},
        {"{\"vector\": [1,2,3,4,5,6,7,8], \"genres\": [\"Comedy\", \"Nope\"]}", ANNB_E_NOT_FOUND,
         "not_found", "unknown genre \"Nope\"; the genres are: Action, Comedy, Drama, Horror, Romance, Sci-Fi"},
    };
    const annb_bundle *b[] = {fx->ip};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = NULL;
        int rc = annb_serve_request(b, 1, cases[i].request, &text);
        if (rc != cases[i].rc) fail_msg("%s -> %d, expected %d: %s", cases[i].request, rc, cases[i].rc, text);
        cJSON *a = parse_answer(text);
        const cJSON *e = cJSON_GetObjectItem(a, "error");
        if (!e || strcmp(cJSON_GetObjectItem(e, "code")->valuestring, cases[i].code) ||
            !strstr(cJSON_GetObjectItem(e, "message")->valuestring, cases[i].message))
            fail_msg("%s -> %s, expected code %s with '%s'", cases[i].request, text, cases[i].code,
                     cases[i].message);
        assert_null(cJSON_GetObjectItem(a, "results"));
        annb_free(text);
        cJSON_Delete(a);
    }
    /* The ID of a request that fails after parsing is still echoed. */
    cJSON *a = serve(b, 1, "{\"id\": [1, \"two\"], \"user\": 424242}", ANNB_E_NOT_FOUND);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "id"), 1)->valuestring, "two");
    cJSON_Delete(a);
    /* What the bundles do not store. */
    const annb_bundle *no_users[] = {fx->l2}, *no_seen[] = {fx->cosine};
    a = serve(no_users, 1, "{\"user\": 5}", ANNB_E_UNSUPPORTED);
    const cJSON *e = cJSON_GetObjectItem(a, "error");
    assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, "unsupported");
    assert_non_null(strstr(cJSON_GetObjectItem(e, "message")->valuestring, "no users"));
    cJSON_Delete(a);
    char req[128];
    snprintf(req, sizeof req, "{\"user\": %lld, \"exclude_seen\": true}", (long long)fx->users.ids[0]);
    a = serve(no_seen, 1, req, ANNB_E_UNSUPPORTED);
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "error"), "message")->valuestring,
                           "no interactions"));
    cJSON_Delete(a);
    /* Bad arguments. */
    char *text = NULL;
    assert_int_equal(annb_serve_request(b, 1, "{}", NULL), ANNB_E_INVALID);
    assert_int_equal(annb_serve_request(NULL, 0, "{\"item\": 1}", &text), ANNB_E_INVALID);
    annb_free(text);
    assert_int_equal(annb_serve_request(b, 1, NULL, &text), ANNB_E_INPUT);
    annb_free(text);
}

/* Over shards, the same answers, byte for byte, as from one bundle. */
static void test_serve_shards(void **state)
{
    fixture *fx = *state;
    const annb_bundle *whole[] = {fx->ip};
    const annb_bundle *shards[] = {fx->ip_shard[0], fx->ip_shard[1], fx->ip_shard[2]};
    char req[256];
    for (size_t i = 0; i < 40; i++) {
        size_t r = i * 7 % N, u = i % U;
        switch (i % 4) {
        case 0: snprintf(req, sizeof req, "{\"id\": %zu, \"item\": %lld, \"k\": 12}", i, (long long)fx->items.ids[r]); break;
        case 1: snprintf(req, sizeof req, "{\"user\": %lld, \"genres\": [\"Horror\"]}", (long long)fx->users.ids[u]); break;
        case 2: snprintf(req, sizeof req, "{\"similar_users\": %lld}", (long long)fx->users.ids[u]); break;
        default: snprintf(req, sizeof req, "{\"users_for_item\": %lld, \"exclude\": [%lld]}",
                          (long long)fx->items.ids[r], (long long)fx->users.ids[u]);
        }
        char *a = NULL, *b = NULL;
        assert_int_equal(annb_serve_request(whole, 1, req, &a), ANNB_OK);
        assert_int_equal(annb_serve_request(shards, NSHARDS, req, &b), ANNB_OK);
        if (strcmp(a, b)) fail_msg("%s:\n one bundle: %s\n shards:     %s", req, a, b);
        annb_free(a);
        annb_free(b);
    }
    snprintf(req, sizeof req, "{\"user\": %lld, \"exclude_seen\": true}", (long long)fx->users.ids[0]);
    cJSON *a = serve(shards, NSHARDS, req, ANNB_E_UNSUPPORTED);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "error"), "code")->valuestring, "unsupported");
    cJSON_Delete(a);
    const annb_bundle *mixed[] = {fx->ip_shard[0], fx->l2_shard[1]};
    a = serve(mixed, 2, "{\"item\": 1}", ANNB_E_INVALID);
    cJSON_Delete(a);
}

/* Many threads serving from the same bundle get the answers one thread gets. */
#define THREADS 4
#define PER_THREAD 60
typedef struct serve_job {
    const fixture *fx;
    char **expected; /* PER_THREAD answers */
    int mismatches;
} serve_job;

static void request_text(char *req, size_t size, const fixture *fx, size_t i)
{
    if (i % 3 == 0) snprintf(req, size, "{\"user\": %lld, \"exclude_seen\": true}", (long long)fx->users.ids[i % U]);
    else if (i % 3 == 1) snprintf(req, size, "{\"item\": %lld, \"genres\": [\"Drama\"]}", (long long)fx->items.ids[i % N]);
    else snprintf(req, size, "{\"user\": %zu}", i); /* mostly unknown users: error answers */
}

static void *serve_worker(void *arg)
{
    serve_job *job = arg;
    const annb_bundle *b[] = {job->fx->ip};
    char req[128];
    for (size_t i = 0; i < PER_THREAD; i++) {
        char *text = NULL;
        request_text(req, sizeof req, job->fx, i);
        annb_serve_request(b, 1, req, &text);
        job->mismatches += !text || strcmp(text, job->expected[i]);
        annb_free(text);
    }
    return NULL;
}

static void test_serve_threads(void **state)
{
    fixture *fx = *state;
    const annb_bundle *b[] = {fx->ip};
    char *expected[PER_THREAD], req[128];
    for (size_t i = 0; i < PER_THREAD; i++) {
        request_text(req, sizeof req, fx, i);
        annb_serve_request(b, 1, req, &expected[i]);
        assert_non_null(expected[i]);
    }
    pthread_t th[THREADS];
    serve_job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (serve_job){fx, expected, 0};
        assert_int_equal(pthread_create(&th[t], NULL, serve_worker, &jobs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].mismatches, 0);
    }
    for (size_t i = 0; i < PER_THREAD; i++) annb_free(expected[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recommend),
        cmocka_unit_test(test_recommend_exclude_seen),
        cmocka_unit_test(test_seen_from_file),
        cmocka_unit_test(test_recommend_errors),
        cmocka_unit_test(test_similar_users),
        cmocka_unit_test(test_users_for_item),
        cmocka_unit_test(test_genre_filter),
        cmocka_unit_test(test_genre_and_seen),
        cmocka_unit_test(test_exclude_ids),
        cmocka_unit_test(test_ivf_genre),
        cmocka_unit_test(test_shards_partition),
        cmocka_unit_test(test_shards_merge),
        cmocka_unit_test(test_shards_nan_last),
        cmocka_unit_test(test_vectors_from_csv),
        cmocka_unit_test(test_serve_answers),
        cmocka_unit_test(test_serve_errors),
        cmocka_unit_test(test_serve_shards),
        cmocka_unit_test(test_serve_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
