/*
 * test_keys.c - string IDs (format/SPEC.md 6.19) through the library: what
 * the readers take as a key, the bundle's key tables, every question asked
 * by key against a brute force written here, shards, and hostile tables.
 *
 * The test keeps its own map from key text to vector (file order) and
 * computes the expected answers from it in double precision; it uses the
 * library's annb_key_id only to name the int64 IDs the API hands out.
 */
#include "annb.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define N 300   /* items */
#define M 40    /* users */
#define D 8
#define K 10

typedef struct fixture {
    char dir[256];
    char items[512], users[512], movies[512], seen[512], bundle[512];
    char *item_keys[N], *user_keys[M];
    float item_vecs[N * D], user_vecs[M * D];
    unsigned char seen_by[M][N]; /* 1: user u has seen item i (file rows) */
} fixture;

/* Keys of every sort a catalog holds: codes, digits (a key too once the
 * file has text IDs), UTF-8, punctuation. */
static char *item_key(size_t i)
{
    char buf[64];
    switch (i % 5) {
    case 0: snprintf(buf, sizeof buf, "tt%07zu", i * 37 + 11); break;
    case 1: snprintf(buf, sizeof buf, "%zu", 900000 + i); break;
    case 2: snprintf(buf, sizeof buf, "sku-\xc3\xa4\xc3\xb6-%zu", i); break; /* sku-äö-N */
    case 3: snprintf(buf, sizeof buf, "B0%zuXZ:%zu/x", i * 7, i); break;
    default: snprintf(buf, sizeof buf, "word_%zu", i); break;
    }
    return strdup(buf);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    tu_rng r;
    tu_rng_seed(&r, 6190);
    tu_tmpdir_make(fx->dir);
    tu_path(fx->items, fx->dir, "items.csv");
    tu_path(fx->users, fx->dir, "users.csv");
    tu_path(fx->movies, fx->dir, "movies.csv");
    tu_path(fx->seen, fx->dir, "seen.csv");
    tu_path(fx->bundle, fx->dir, "keys.annb");
    FILE *f = fopen(fx->items, "w");
    fprintf(f, "item_id,embedding\n");
    for (size_t i = 0; i < N; i++) {
        fx->item_keys[i] = item_key(i);
        /* log-normal-ish norms: inner product ranks by norm too */
        double scale = 0.3 + 2.5 * tu_rng_uniform(&r, 0, 1) * tu_rng_uniform(&r, 0, 1);
        fprintf(f, "\"%s\",\"[", fx->item_keys[i]);
        for (uint32_t j = 0; j < D; j++) {
            fx->item_vecs[i * D + j] = (float)(scale * tu_rng_uniform(&r, -1, 1));
            fprintf(f, "%s%.9g", j ? "," : "", (double)fx->item_vecs[i * D + j]);
        }
        fprintf(f, "]\"\n");
    }
    fclose(f);
    f = fopen(fx->users, "w");
    fprintf(f, "user_id,embedding\n");
    for (size_t u = 0; u < M; u++) {
        char buf[32];
        snprintf(buf, sizeof buf, u % 3 ? "user-%zu" : "U%zu", u);
        fx->user_keys[u] = strdup(buf);
        fprintf(f, "%s,\"[", buf);
        for (uint32_t j = 0; j < D; j++) {
            fx->user_vecs[u * D + j] = (float)tu_rng_uniform(&r, -1, 1);
            fprintf(f, "%s%.9g", j ? "," : "", (double)fx->user_vecs[u * D + j]);
        }
        fprintf(f, "]\"\n");
    }
    fclose(f);
    f = fopen(fx->movies, "w");
    fprintf(f, "movieId,title,genres\n");
    for (size_t i = 0; i < N; i += 2) /* every other item has an entry */
        fprintf(f, "\"%s\",Title %zu,%s\n", fx->item_keys[i], i, i % 4 ? "Drama" : "Comedy|Drama");
    fclose(f);
    f = fopen(fx->seen, "w");
    fprintf(f, "user_id,item_id,rating\n");
    for (size_t u = 0; u < M; u++)
        for (int s = 0; s < 20; s++) {
            size_t i = (size_t)tu_rng_below(&r, N);
            fx->seen_by[u][i] = 1;
            fprintf(f, "%s,\"%s\",4\n", fx->user_keys[u], fx->item_keys[i]);
        }
    fprintf(f, "nobody,%s,1\nU0,not-an-item,1\n", fx->item_keys[0]); /* skipped */
    fclose(f);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    o.users_path = fx->users;
    o.interactions_path = fx->seen;
    annb_build_report rep;
    annb_error err = {0};
    if (annb_build(&rep, fx->items, fx->movies, fx->bundle, &o, &err)) {
        fprintf(stderr, "build: %s\n", err.message);
        return -1;
    }
    if (rep.interactions_skipped != 2 || rep.items_without_catalog != N / 2) {
        fprintf(stderr, "build report: %llu skipped, %llu without catalog\n",
                (unsigned long long)rep.interactions_skipped,
                (unsigned long long)rep.items_without_catalog);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    for (size_t i = 0; i < N; i++) free(fx->item_keys[i]);
    for (size_t u = 0; u < M; u++) free(fx->user_keys[u]);
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

static long item_row(const fixture *fx, const char *key)
{
    for (size_t i = 0; i < N; i++)
        if (strcmp(fx->item_keys[i], key) == 0) return (long)i;
    return -1;
}

static double dot(const float *a, const float *b)
{
    double s = 0;
    for (uint32_t j = 0; j < D; j++) s += (double)a[j] * b[j];
    return s;
}

/* The k best of `rows` candidate vectors for q (inner product), skipping
 * rows with skip[row] set and the row `self`; returns how many. */
static size_t brute(size_t *out, const float *vecs, size_t rows, const float *q,
                    const unsigned char *skip, long self, size_t k)
{
    size_t n = 0;
    for (size_t i = 0; i < rows; i++) {
        if ((skip && skip[i]) || (long)i == self) continue;
        size_t at = n < k ? n++ : k;
        double s = dot(vecs + i * D, q);
        if (at == k && s <= dot(vecs + out[k - 1] * D, q)) continue;
        if (at == k) at = k - 1;
        while (at > 0 && dot(vecs + out[at - 1] * D, q) < s) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = i;
    }
    return n;
}

/* hits name the keys of expect[0..n) in order, up to ties in score. */
static void same_answer(const annb_bundle *b, annb_space space, const annb_hit *hits,
                        const size_t *expect, size_t n, char *const *keys, const float *vecs,
                        const float *q, const char *what)
{
    for (size_t j = 0; j < n; j++) {
        const char *got = annb_space_key(b, space, hits[j].id, NULL);
        if (!got) fail_msg("%s: slot %zu: ID %lld has no key", what, j, (long long)hits[j].id);
        const char *want = keys[expect[j]];
        if (strcmp(got, want) != 0) {
            /* a tie in score may swap rows: then the scores must agree */
            double gs = hits[j].score, ws = dot(vecs + expect[j] * D, q);
            if (!tu_close(gs, ws, TU_TIE_EPS))
                fail_msg("%s: slot %zu: %s (%g), expected %s (%g)", what, j, got, gs, want, ws);
        }
        assert_int_equal(hits[j].id, annb_key_id(got, strlen(got)));
    }
    for (size_t j = n; j < K; j++) assert_int_equal(hits[j].id, ANNB_ID_NONE);
}

static void test_tables(void **state)
{
    fixture *fx = *state;
    annb_bundle *b = tu_open(fx->bundle, ANNB_OPEN_VERIFY_ALL);
    annb_error err = {0};
    assert_int_equal(annb_verify(b, &err), ANNB_OK);
    assert_true(annb_space_has_keys(b, ANNB_SPACE_ITEMS));
    assert_true(annb_space_has_keys(b, ANNB_SPACE_USERS));
    assert_int_equal(annb_space_count(b, ANNB_SPACE_ITEMS), N);
    for (size_t i = 0; i < N; i++) {
        const char *k = fx->item_keys[i];
        int64_t id;
        assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, k, strlen(k), &id), ANNB_OK);
        assert_int_equal(id, annb_key_id(k, strlen(k)));
        assert_true(id >= 0);
        size_t len;
        const char *back = annb_space_key(b, ANNB_SPACE_ITEMS, id, &len);
        assert_non_null(back);
        assert_int_equal(len, strlen(k));
        assert_string_equal(back, k);
        /* the catalog was joined by key: every other item has its title */
        char title[32];
        snprintf(title, sizeof title, "Title %zu", i);
        const char *t = annb_item_title(b, id);
        if (i % 2) assert_null(t);
        else assert_string_equal(t, title);
    }
    /* rows are in the order of the IDs, and key_at follows them */
    for (uint64_t r = 0; r < N; r++) {
        const char *k = annb_space_key_at(b, ANNB_SPACE_ITEMS, r, NULL);
        assert_non_null(k);
        assert_int_equal(annb_space_id(b, ANNB_SPACE_ITEMS, r), annb_key_id(k, strlen(k)));
    }
    assert_null(annb_space_key_at(b, ANNB_SPACE_ITEMS, N, NULL));
    int64_t id;
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "nope", 4, &id), ANNB_E_NOT_FOUND);
    assert_int_equal(id, annb_key_id("nope", 4));
    /* "900001" is the key of item 1, not the integer */
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "900001", 6, &id), ANNB_OK);
    assert_int_equal(id, annb_key_id("900001", 6));
    /* a key that is a prefix of another is a different key */
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "900", 3, &id), ANNB_E_NOT_FOUND);
    annb_close(b);
}

static void test_questions(void **state)
{
    fixture *fx = *state;
    annb_bundle *b = tu_open(fx->bundle, 0);
    const annb_bundle *one[1] = {b};
    annb_hit hits[K];
    size_t expect[K];
    annb_error err = {0};
    char what[128];
    for (size_t u = 0; u < M; u++) {
        const char *key = fx->user_keys[u];
        const float *q = fx->user_vecs + u * D;
        annb_question qq = ANNB_QUESTION_INIT;
        qq.k = K;
        qq.subject_texts = &key;
        qq.exact = 1;
        /* items for a stored user, seen ones left out */
        qq.exclude_seen = 1;
        assert_int_equal(annb_ask(hits, one, 1, &qq, &err), ANNB_OK);
        size_t n = brute(expect, fx->item_vecs, N, q, fx->seen_by[u], -1, K);
        snprintf(what, sizeof what, "user %s, unseen", key);
        same_answer(b, ANNB_SPACE_ITEMS, hits, expect, n, fx->item_keys, fx->item_vecs, q, what);
        /* and with two excluded by text, one of them absent */
        qq.exclude_seen = 0;
        n = brute(expect, fx->item_vecs, N, q, NULL, -1, K);
        const char *ex[2] = {fx->item_keys[expect[0]], "no-such-item"};
        unsigned char skip[N] = {0};
        skip[expect[0]] = 1;
        qq.exclude_texts = ex;
        qq.exclude_text_count = 2;
        assert_int_equal(annb_ask(hits, one, 1, &qq, &err), ANNB_OK);
        n = brute(expect, fx->item_vecs, N, q, skip, -1, K);
        snprintf(what, sizeof what, "user %s, excluding %s", key, ex[0]);
        same_answer(b, ANNB_SPACE_ITEMS, hits, expect, n, fx->item_keys, fx->item_vecs, q, what);
        /* similar users: the user itself left out */
        annb_question su = ANNB_QUESTION_INIT;
        su.kind = ANNB_Q_SIMILAR_USERS;
        su.k = K;
        su.subject_texts = &key;
        assert_int_equal(annb_ask(hits, one, 1, &su, &err), ANNB_OK);
        n = brute(expect, fx->user_vecs, M, q, NULL, (long)u, K);
        snprintf(what, sizeof what, "users like %s", key);
        same_answer(b, ANNB_SPACE_USERS, hits, expect, n, fx->user_keys, fx->user_vecs, q, what);
    }
    for (size_t i = 0; i < N; i += 7) {
        const char *key = fx->item_keys[i];
        const float *q = fx->item_vecs + i * D;
        annb_question si = ANNB_QUESTION_INIT;
        si.kind = ANNB_Q_SIMILAR_ITEMS;
        si.k = K;
        si.subject_texts = &key;
        assert_int_equal(annb_ask(hits, one, 1, &si, &err), ANNB_OK);
        size_t n = brute(expect, fx->item_vecs, N, q, NULL, (long)i, K);
        snprintf(what, sizeof what, "items like %s", key);
        same_answer(b, ANNB_SPACE_ITEMS, hits, expect, n, fx->item_keys, fx->item_vecs, q, what);
        si.kind = ANNB_Q_USERS_FOR_ITEM;
        assert_int_equal(annb_ask(hits, one, 1, &si, &err), ANNB_OK);
        n = brute(expect, fx->user_vecs, M, q, NULL, -1, K);
        snprintf(what, sizeof what, "users for %s", key);
        same_answer(b, ANNB_SPACE_USERS, hits, expect, n, fx->user_keys, fx->user_vecs, q, what);
    }
    /* a missing subject is named by its text */
    const char *missing = "ghost";
    annb_question qq = ANNB_QUESTION_INIT;
    qq.subject_texts = &missing;
    assert_int_equal(annb_ask(hits, one, 1, &qq, &err), ANNB_E_NOT_FOUND);
    assert_string_equal(err.message, "user \"ghost\" is not in the bundle");
    qq.kind = ANNB_Q_SIMILAR_ITEMS;
    assert_int_equal(annb_ask(hits, one, 1, &qq, &err), ANNB_E_NOT_FOUND);
    assert_string_equal(err.message, "item \"ghost\" is not in the bundle");
    /* the answers in JSON give the keys back */
    const char *key = fx->item_keys[3];
    qq.subject_texts = &key;
    qq.k = 3;
    assert_int_equal(annb_ask(hits, one, 1, &qq, &err), ANNB_OK);
    char *json = annb_results_json(one, 1, ANNB_SPACE_ITEMS, hits, 3);
    assert_non_null(json);
    char frag[128];
    snprintf(frag, sizeof frag, "\"id\":\"%s\"", annb_space_key(b, ANNB_SPACE_ITEMS, hits[0].id, NULL));
    if (!strstr(json, frag)) fail_msg("%s lacks %s", json, frag);
    annb_free(json);
    annb_close(b);
}

/* An integer bundle: IDs named as text must be decimal integers. */
static void test_integer_texts(void **state)
{
    (void)state;
    tu_data t;
    tu_rng r;
    char dir[256], csv[512], out[512];
    tu_items_setup(&t, &r, dir, csv, 50, 4, 61);
    tu_build(NULL, csv, NULL, tu_path(out, dir, "int.annb"), ANNB_METRIC_IP, "flat");
    annb_bundle *b = tu_open(out, 0);
    assert_false(annb_space_has_keys(b, ANNB_SPACE_ITEMS));
    char text[32];
    int64_t id;
    snprintf(text, sizeof text, "%lld", (long long)t.ids[3]);
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, text, strlen(text), &id), ANNB_OK);
    assert_int_equal(id, t.ids[3]);
    assert_null(annb_space_key(b, ANNB_SPACE_ITEMS, id, NULL));
    static const char *const bad[] = {"+7", " 7", "7 ", "u7", "", "-", "7.0", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, bad[i], strlen(bad[i]), &id),
                         ANNB_E_INVALID);
    const annb_bundle *one[1] = {b};
    annb_hit hits[5];
    annb_error err = {0};
    const char *subject = "abc";
    annb_question q = ANNB_QUESTION_INIT;
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    q.k = 5;
    q.subject_texts = &subject;
    assert_int_equal(annb_ask(hits, one, 1, &q, &err), ANNB_E_INVALID);
    assert_string_equal(err.message,
                        "item ID \"abc\": expected an integer (the bundle's item IDs are integers)");
    subject = text;
    assert_int_equal(annb_ask(hits, one, 1, &q, &err), ANNB_OK);
    annb_close(b);
    tu_data_free(&t);
    tu_tmpdir_remove(dir);
}

/* What the readers take as a key, and what they refuse. */
static void test_reading(void **state)
{
    (void)state;
    char dir[256], in[512], out[512];
    tu_tmpdir_make(dir);
    tu_path(in, dir, "in.csv");
    tu_path(out, dir, "out.annb");
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    /* all integers: integer IDs, no key table */
    tu_write_text(in, "id,features\n007,\"[1,2]\"\n8,\"[3,4]\"\n");
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_OK);
    annb_bundle *b = tu_open(out, 0);
    assert_false(annb_space_has_keys(b, ANNB_SPACE_ITEMS));
    assert_int_equal(annb_space_id(b, ANNB_SPACE_ITEMS, 0), 7);
    annb_close(b);
    /* --string-ids: "007" stays "007" */
    o.string_ids = 1;
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_OK);
    b = tu_open(out, ANNB_OPEN_VERIFY_ALL);
    assert_true(annb_space_has_keys(b, ANNB_SPACE_ITEMS));
    int64_t id;
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "007", 3, &id), ANNB_OK);
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "7", 1, &id), ANNB_E_NOT_FOUND);
    annb_close(b);
    o.string_ids = 0;
    /* one text ID makes every ID text, digits included */
    tu_write_text(in, "id,features\n12,\"[1,2]\"\nab,\"[3,4]\"\n");
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_OK);
    b = tu_open(out, 0);
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "12", 2, &id), ANNB_OK);
    assert_int_equal(id, annb_key_id("12", 2));
    annb_close(b);
    /* the same through JSON lines and word2vec text */
    tu_write_text(in, "{\"id\": \"a b\", \"vector\": [1, 2]}\n{\"id\": 5, \"vector\": [3, 4]}\n");
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_OK);
    b = tu_open(out, ANNB_OPEN_VERIFY_ALL);
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "a b", 3, &id), ANNB_OK);
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "5", 1, &id), ANNB_OK);
    annb_close(b);
    tu_write_text(in, "2 2\nthe 0.5 1\nk\xc3\xb6nig 1 0.5\n");
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_OK);
    b = tu_open(out, ANNB_OPEN_VERIFY_ALL);
    assert_int_equal(annb_space_id_of(b, ANNB_SPACE_ITEMS, "k\xc3\xb6nig", 6, &id), ANNB_OK);
    annb_close(b);
    /* refused: a number that is no integer, with the way out named */
    tu_write_text(in, "id,features\n12.0,\"[1,2]\"\nab,\"[3,4]\"\n");
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_E_INPUT);
    if (!strstr(err.message, ":2:1:") || !strstr(err.message, "\"12.0\"") ||
        !strstr(err.message, "--string-ids"))
        fail_msg("message: %s", err.message);
    /* a repeated key, named with both lines */
    tu_write_text(in, "id,features\nab,\"[1,2]\"\ncd,\"[1,2]\"\nab,\"[3,4]\"\n");
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_E_INPUT);
    if (!strstr(err.message, ":4:1: expected unique IDs, found ID \"ab\" again (first on line 2)"))
        fail_msg("message: %s", err.message);
    /* keys must be clean text of at most 256 bytes */
    tu_write_text(in, "id,features\nab,\"[1,2]\"\n\"c\x01\",\"[1,2]\"\n");
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_E_INPUT);
    if (!strstr(err.message, "control character")) fail_msg("message: %s", err.message);
    char big[400];
    memset(big, 'x', 257);
    snprintf(big + 257, sizeof big - 257, ",\"[1,2]\"\n");
    char text[600];
    snprintf(text, sizeof text, "id,features\nab,\"[1,2]\"\n%s", big);
    tu_write_text(in, text);
    assert_int_equal(annb_build(&rep, in, NULL, out, &o, &err), ANNB_E_INPUT);
    if (!strstr(err.message, "longer than 256")) fail_msg("message: %s", err.message);
    assert_int_equal(tu_dir_entry_count(dir), 2); /* in.csv, out.annb: no temporary left */
    tu_tmpdir_remove(dir);
}

/* Two shards of one keyed catalog, asked together by key. */
static void test_shards(void **state)
{
    fixture *fx = *state;
    char paths[2][512];
    annb_bundle *b[2];
    for (uint32_t s = 0; s < 2; s++) {
        char name[32];
        snprintf(name, sizeof name, "shard%u.annb", s);
        tu_path(paths[s], fx->dir, name);
        annb_build_opts o = ANNB_BUILD_OPTS_INIT;
        o.shard_index = s;
        o.shard_count = 2;
        o.users_path = s == 0 ? fx->users : NULL;
        annb_build_report rep;
        annb_error err = {0};
        if (annb_build(&rep, fx->items, fx->movies, paths[s], &o, &err))
            fail_msg("shard %u: %s", s, err.message);
        b[s] = tu_open(paths[s], ANNB_OPEN_VERIFY_ALL);
    }
    assert_int_equal(annb_space_count(b[0], ANNB_SPACE_ITEMS) + annb_space_count(b[1], ANNB_SPACE_ITEMS), N);
    const annb_bundle *both[2] = {b[0], b[1]};
    annb_hit hits[K];
    size_t expect[K];
    annb_error err = {0};
    for (size_t i = 1; i < N; i += 31) {
        const char *key = fx->item_keys[i];
        annb_question q = ANNB_QUESTION_INIT;
        q.kind = ANNB_Q_SIMILAR_ITEMS;
        q.k = K;
        q.subject_texts = &key;
        assert_int_equal(annb_ask(hits, both, 2, &q, &err), ANNB_OK);
        size_t n = brute(expect, fx->item_vecs, N, fx->item_vecs + i * D, NULL, (long)i, K);
        for (size_t j = 0; j < n; j++) {
            const annb_bundle *owner = annb_item_owner(both, 2, hits[j].id);
            assert_non_null(owner);
            const char *got = annb_space_key(owner, ANNB_SPACE_ITEMS, hits[j].id, NULL);
            assert_non_null(got);
            long row = item_row(fx, got);
            assert_true(row >= 0);
            if (row != (long)expect[j] &&
                !tu_close(hits[j].score, dot(fx->item_vecs + expect[j] * D, fx->item_vecs + i * D),
                          TU_TIE_EPS))
                fail_msg("shards, items like %s: slot %zu is %s", key, j, got);
        }
        char *json = annb_results_json(both, 2, ANNB_SPACE_ITEMS, hits, K);
        char frag[300];
        const annb_bundle *owner = annb_item_owner(both, 2, hits[0].id);
        snprintf(frag, sizeof frag, "\"id\":\"%s\"", annb_space_key(owner, ANNB_SPACE_ITEMS, hits[0].id, NULL));
        if (!strstr(json, frag)) fail_msg("%s lacks %s", json, frag);
        annb_free(json);
    }
    annb_close(b[0]);
    annb_close(b[1]);
}

/* ---- hostile key tables: valid checksums, crafted contents ---- */

static uint32_t entry_of(const uint8_t *data, const char *kind)
{
    uint32_t count = (uint32_t)tu_get_le(data + TU_HDR_SECTION_COUNT, 4);
    for (uint32_t i = 0; i < count; i++)
        if (memcmp(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE, kind, 4) == 0) return i;
    fail_msg("no section '%s'", kind);
    return 0;
}

static uint8_t *section(uint8_t *data, const char *kind, uint64_t *len)
{
    uint8_t *e = data + TU_HDR_SIZE + (size_t)entry_of(data, kind) * TU_ENTRY_SIZE;
    *len = tu_get_le(e + TU_ENTRY_STORED, 8);
    return data + tu_get_le(e + TU_ENTRY_OFFSET, 8);
}

/* Everything that reads keys, on a damaged bundle: no crash, no read
 * outside the file (ASan in `make sanitize`), keys either right or absent. */
static void use_keys(const fixture *fx, const annb_bundle *b)
{
    const annb_bundle *one[1] = {b};
    for (uint64_t r = 0; r < N; r++) {
        size_t len = 0;
        const char *k = annb_space_key_at(b, ANNB_SPACE_ITEMS, r, &len);
        if (k) assert_int_equal(k[len], '\0');
    }
    for (size_t i = 0; i < N; i += 13) {
        int64_t id;
        annb_space_id_of(b, ANNB_SPACE_ITEMS, fx->item_keys[i], strlen(fx->item_keys[i]), &id);
        const char *key = fx->user_keys[i % M];
        annb_question q = ANNB_QUESTION_INIT;
        q.k = K;
        q.subject_texts = &key;
        annb_hit hits[K];
        annb_error err = {0};
        if (annb_ask(hits, one, 1, &q, &err) == ANNB_OK) {
            char *json = annb_results_json(one, 1, ANNB_SPACE_ITEMS, hits, K);
            assert_non_null(json);
            annb_free(json);
        }
    }
}

static void test_hostile(void **state)
{
    fixture *fx = *state;
    size_t size;
    uint8_t *good = tu_read_file(fx->bundle, &size);
    assert_non_null(good);
    char path[512];
    tu_path(path, fx->dir, "hostile.annb");
    static const char *const kinds[] = {"IKOF", "IKEY", "UKOF", "UKEY"};
    tu_rng r;
    tu_rng_seed(&r, 619);
    for (int edit = 0; edit < 40; edit++) {
        uint8_t *data = malloc(size);
        memcpy(data, good, size);
        const char *kind = kinds[edit % 4];
        uint64_t len;
        uint8_t *s = section(data, kind, &len);
        switch (edit / 4 % 5) {
        case 0: /* an offset far out of the text */
            if (kind[1] == 'K' && kind[2] == 'O') tu_put_le(s + 8 * (1 + tu_rng_below(&r, 20)), 8, UINT64_MAX - 5);
            else s[tu_rng_below(&r, len)] = 0xff; /* an invalid UTF-8 byte */
            break;
        case 1: /* offsets out of order */
            if (kind[2] == 'O') tu_put_le(s + 16, 8, tu_get_le(s + 8, 8) - 1);
            else memset(s, 0, len); /* keys of nothing but NULs */
            break;
        case 2: /* a key without its NUL */
            if (kind[2] == 'O') tu_put_le(s + 8, 8, tu_get_le(s + 8, 8) + 1);
            else for (uint64_t i = 0; i < len; i++) if (!s[i]) s[i] = 'x';
            break;
        case 3: /* random bytes */
            for (int j = 0; j < 8; j++) s[tu_rng_below(&r, len)] = (uint8_t)tu_rng_next(&r);
            break;
        default: /* a control character, or the first offset moved */
            if (kind[2] == 'O') tu_put_le(s, 8, 3);
            else s[0] = 0x1b;
            break;
        }
        assert_int_equal(tu_section_rehash(data, size, entry_of(data, kind)), 0);
        tu_write_file(path, data, size);
        annb_bundle *b = NULL;
        annb_error err = {0};
        annb_open_opts o = ANNB_OPEN_OPTS_INIT;
        if (annb_open(&b, path, &o, &err) == ANNB_OK) { /* bulk: opening may not look */
            use_keys(fx, b);
            assert_int_equal(annb_verify(b, &err), ANNB_E_CORRUPT);
            annb_close(b);
        }
        o.flags = ANNB_OPEN_VERIFY_ALL;
        if (annb_open(&b, path, &o, &err) == ANNB_OK) fail_msg("edit %d of %s verified", edit, kind);
        assert_int_equal(err.code, ANNB_E_CORRUPT);
        free(data);
    }
    /* a key table whose sizes disagree with the rows is refused at open */
    uint8_t *data = malloc(size);
    memcpy(data, good, size);
    uint32_t ikof = entry_of(data, "IKOF"), ukof = entry_of(data, "UKOF");
    memcpy(data + TU_HDR_SIZE + (size_t)ikof * TU_ENTRY_SIZE, "UKOF", 4); /* swapped: */
    memcpy(data + TU_HDR_SIZE + (size_t)ukof * TU_ENTRY_SIZE, "IKOF", 4); /* N+1 vs M+1 */
    tu_header_rehash(data, size);
    tu_write_file(path, data, size);
    annb_bundle *b = NULL;
    annb_error err = {0};
    assert_int_not_equal(annb_open(&b, path, NULL, &err), ANNB_OK);
    free(data);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_questions),
        cmocka_unit_test(test_integer_texts),
        cmocka_unit_test(test_reading),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
