/*
 * test_repro.c - reproducible bundles, SHA-256 and provenance.
 *
 *  - SHA-256 (lib/sha256.c) against the FIPS 180-2/180-4 example vectors,
 *    streamed in every split, and annb_file_sha256.
 *  - annb_build, for every index type annb supports (flat with each metric,
 *    IVF, IVF-PQ, HNSW), from real files in a temporary directory: the same
 *    bytes with 1 thread and with 2 (twice: thread timing varies), and from
 *    files with the same rows in another order (SPEC 4.2).
 *  - The provenance section (SPEC 6.13): its lines, the inputs' content
 *    digests recomputed here from the SPEC's definition, the same bundle from
 *    the same content in another form (wide TSV, latin-1 movies.dat), no
 *    path, and a reader that refuses a malformed section.
 *
 * "IVF16,PQ4" trains Faiss's polysemous codes (about 30 s of CPU whatever the
 * data size); it runs with ANNB_TEST_SLOW=1. "IVF16,PQ4np" (the same PQ
 * k-means without it) always runs.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "bundle.h"
#include "sha256.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ------------------------------------------------------------------------ */
/* SHA-256                                                                   */
/* ------------------------------------------------------------------------ */

/* FIPS 180-2 appendix B and the NIST example values for SHA-256. */
static const struct {
    const char *msg;
    size_t repeat;
    const char *hex;
} fips[] = {
    {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1, /* 448 bits */
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"}, /* 896 bits */
    {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
};

static void digest_hex(char hex[ANNB_SHA256_HEX], annb_sha256 *s)
{
    uint8_t d[ANNB_SHA256_SIZE];
    annb_sha256_final(s, d);
    annb_sha256_hex(hex, d);
}

/* One million 'a' (the last FIPS example), malloc'd. */
#define MILLION 1000000
static char *million_a(void)
{
    char *a = malloc(MILLION);
    assert_non_null(a);
    memset(a, 'a', MILLION);
    return a;
}

static void test_sha256_fips(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof fips / sizeof fips[0]; v++) {
        size_t len = strlen(fips[v].msg);
        char hex[ANNB_SHA256_HEX];
        annb_sha256 s;
        /* In one call per repetition... */
        annb_sha256_init(&s);
        for (size_t r = 0; r < fips[v].repeat; r++) annb_sha256_update(&s, fips[v].msg, len);
        digest_hex(hex, &s);
        assert_string_equal(hex, fips[v].hex);
        /* ... and a byte at a time (every block boundary inside a call). */
        annb_sha256_init(&s);
        for (size_t r = 0; r < fips[v].repeat; r++)
            for (size_t i = 0; i < len; i++) annb_sha256_update(&s, fips[v].msg + i, 1);
        digest_hex(hex, &s);
        assert_string_equal(hex, fips[v].hex);
    }
    /* One million 'a' in one buffer, and in uneven pieces that straddle
     * block boundaries. */
    size_t n = MILLION;
    char *a = million_a(), hex[ANNB_SHA256_HEX];
    annb_sha256 s;
    annb_sha256_init(&s);
    annb_sha256_update(&s, a, n);
    digest_hex(hex, &s);
    assert_string_equal(hex, fips[4].hex);
    annb_sha256_init(&s);
    for (size_t pos = 0, step = 1; pos < n; pos += step, step = step % 197 + 13)
        annb_sha256_update(&s, a + pos, pos + step <= n ? step : n - pos);
    digest_hex(hex, &s);
    assert_string_equal(hex, fips[4].hex);
    free(a);
}

/* Every length from 0 to 200 (all padding cases: 55, 56, 63, 64 bytes left
 * in the last block) gives the same digest in one piece and in two. */
static void test_sha256_splits(void **state)
{
    (void)state;
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 31 + 7);
    for (size_t len = 0; len <= sizeof msg; len++) {
        char whole[ANNB_SHA256_HEX], split[ANNB_SHA256_HEX];
        annb_sha256 s;
        annb_sha256_init(&s);
        annb_sha256_update(&s, msg, len);
        digest_hex(whole, &s);
        for (size_t cut = 0; cut <= len; cut += 7) {
            annb_sha256_init(&s);
            annb_sha256_update(&s, msg, cut);
            annb_sha256_update(&s, msg + cut, len - cut);
            digest_hex(split, &s);
            if (strcmp(whole, split) != 0) fail_msg("length %zu cut at %zu: %s vs %s", len, cut, whole, split);
        }
    }
}

static void test_file_sha256(void **state)
{
    (void)state;
    char dir[256], path[512], hex[65];
    annb_error err = {0};
    tu_tmpdir_make(dir);
    tu_write_text(tu_path(path, dir, "abc.txt"), "abc");
    assert_int_equal(annb_file_sha256(hex, path, &err), ANNB_OK);
    assert_string_equal(hex, fips[0].hex);
    /* Larger than the read block, not a multiple of it. */
    char *a = million_a();
    tu_write_file(tu_path(path, dir, "million.txt"), a, MILLION);
    free(a);
    assert_int_equal(annb_file_sha256(hex, path, &err), ANNB_OK);
    assert_string_equal(hex, fips[4].hex);
    tu_write_file(tu_path(path, dir, "empty"), "", 0);
    assert_int_equal(annb_file_sha256(hex, path, &err), ANNB_OK);
    assert_string_equal(hex, fips[1].hex);

    assert_int_equal(annb_file_sha256(hex, tu_path(path, dir, "missing"), &err), ANNB_E_IO);
    assert_non_null(strstr(err.message, "missing"));
    assert_string_equal(hex, "");
    assert_int_equal(annb_file_sha256(hex, dir, &err), ANNB_E_IO);
    assert_int_equal(annb_file_sha256(NULL, path, NULL), ANNB_E_INVALID);
    assert_int_equal(annb_file_sha256(hex, NULL, NULL), ANNB_E_INVALID);
    tu_tmpdir_remove(dir);
}

/* ------------------------------------------------------------------------ */
/* Reproducible builds                                                       */
/* ------------------------------------------------------------------------ */

#define N 1000 /* enough for IVF16's k-means without Faiss's warning */
#define D 8    /* PQ4: 4 sub-vectors of 2 */
#define USERS 60

/* The same inputs written twice: in generation order (a) and with every
 * file's rows shuffled (b). */
typedef struct fixture {
    char dir[256];
    char items[2][512], catalog[2][512], users[2][512], seen[2][512];
    tu_data data, users_data;
    int64_t catalog_ids[N / 2 + 20]; /* every other item, and 20 without a vector */
    size_t catalog_count;
} fixture;

static fixture fx; /* built once for all cases (group setup) */

static const char *const genre_lists[] = {"Comedy", "Drama|Romance", "Action|Sci-Fi", "Horror"};

static void entry_title(char out[64], int64_t id)
{
    snprintf(out, 64, "Movie %lld, The (19%02lld)", (long long)id, (long long)(llabs(id) % 100));
}

/* movies.csv (quoted titles), or movies.dat (`::`; latin-1, all ASCII here). */
static void write_catalog(const char *path, const int64_t *ids, size_t n, int dat)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (!dat) fprintf(f, "movieId,title,genres\n");
    for (size_t i = 0; i < n; i++) {
        char title[64];
        entry_title(title, ids[i]);
        fprintf(f, dat ? "%lld::%s::%s\n" : "%lld,\"%s\",%s\n", (long long)ids[i], title,
                genre_lists[(size_t)llabs(ids[i]) % 4]);
    }
    assert_int_equal(fclose(f), 0);
}

/* user,item pairs: user u has seen the items at rows u, u+7, u+14, ... */
static void write_seen(const char *path, const size_t *order, size_t npairs, const tu_data *t)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "user,item\n");
    for (size_t k = 0; k < npairs; k++) {
        size_t p = order[k], u = p / 10, j = p % 10;
        fprintf(f, "%zu,%lld\n", u + 1, (long long)t->ids[(u + 7 * j) % t->n]);
    }
    assert_int_equal(fclose(f), 0);
}

/* Writes the rows of t in the order perm. */
static void write_permuted(const char *path, const tu_data *t, const size_t *perm)
{
    tu_data p;
    int64_t *ids = malloc(t->n * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < t->n; i++) ids[i] = t->ids[perm[i]];
    tu_rng r;
    tu_rng_seed(&r, 1);
    tu_data_make(&p, t->n, t->d, ids, &r);
    for (size_t i = 0; i < t->n; i++)
        memcpy(p.vecs + i * t->d, t->vecs + perm[i] * t->d, t->d * sizeof(float));
    tu_write_spark_csv(path, &p);
    tu_data_free(&p);
    free(ids);
}

/* 0..n-1 in order (side a) or shuffled (side b); malloc'd. */
static size_t *row_order(size_t n, int shuffled, tu_rng *r)
{
    size_t *perm = malloc(n * sizeof *perm);
    assert_non_null(perm);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    if (shuffled) tu_rng_shuffle(r, perm, n, sizeof *perm);
    return perm;
}

static int setup(void **state)
{
    (void)state;
    tu_rng r;
    int64_t ids[N], cat_ids[N + 20];
    tu_rng_seed(&r, 20240611);
    tu_scattered_ids(ids, N, &r);
    tu_data_make_clustered(&fx.data, N, D, ids, 16, 0.05, &r);
    int64_t uids[USERS];
    for (int64_t u = 0; u < USERS; u++) uids[u] = u + 1;
    tu_data_make(&fx.users_data, USERS, D, uids, &r);
    tu_tmpdir_make(fx.dir);
    const char *side[2] = {"a", "b"};
    char name[64];
    for (int s = 0; s < 2; s++) {
        size_t *perm = row_order(N, s, &r);
        snprintf(name, sizeof name, "items-%s.csv", side[s]);
        write_permuted(tu_path(fx.items[s], fx.dir, name), &fx.data, perm);
        free(perm);

        /* Catalog: every other item, and 20 entries without a vector. */
        size_t nc = 0;
        for (size_t i = 0; i < N; i += 2) cat_ids[nc++] = fx.data.ids[i];
        for (int64_t k = 0; k < 20; k++) cat_ids[nc++] = 200000 + k;
        if (s == 0) {
            memcpy(fx.catalog_ids, cat_ids, nc * sizeof *cat_ids);
            fx.catalog_count = nc;
        } else {
            tu_rng_shuffle(&r, cat_ids, nc, sizeof *cat_ids);
        }
        snprintf(name, sizeof name, "movies-%s.csv", side[s]);
        write_catalog(tu_path(fx.catalog[s], fx.dir, name), cat_ids, nc, 0);

        perm = row_order(USERS, s, &r);
        snprintf(name, sizeof name, "users-%s.csv", side[s]);
        write_permuted(tu_path(fx.users[s], fx.dir, name), &fx.users_data, perm);
        free(perm);

        perm = row_order(USERS * 10, s, &r);
        snprintf(name, sizeof name, "seen-%s.csv", side[s]);
        write_seen(tu_path(fx.seen[s], fx.dir, name), perm, USERS * 10, &fx.data);
        free(perm);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_data_free(&fx.data);
    tu_data_free(&fx.users_data);
    tu_tmpdir_remove(fx.dir);
    return 0;
}

typedef struct repro_case {
    const char *index; /* NULL: flat */
    annb_metric metric;
    int with_extras;   /* catalog, users, interactions too */
    int slow;          /* only with ANNB_TEST_SLOW=1 */
} repro_case;

static void build(const repro_case *c, int side, int threads, const char *out)
{
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    o.metric = c->metric;
    o.index = c->index;
    o.threads = threads;
    /* Bytes, not recall, are under test: a bundle whose index misses the
     * target at some k is still written, and must be the same each time. */
    o.allow_low_recall = 1;
    if (c->with_extras) {
        o.users_path = fx.users[side];
        o.interactions_path = fx.seen[side];
    }
    int rc = annb_build(&rep, fx.items[side], c->with_extras ? fx.catalog[side] : NULL, out, &o,
                        &err);
    if (rc != ANNB_OK) fail_msg("annb_build(%s) = %d: %s", out, rc, err.message);
}

/* Where two bundles first differ, past the header and table (which differ
 * whenever a section does): byte offset and the section holding it. */
static void first_difference(char *out, size_t size, const char *a, const uint8_t *x, size_t nx,
                             const uint8_t *y, size_t ny)
{
    annb_bundle *b = tu_open(a, ANNB_OPEN_STRUCTURE_ONLY);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    size_t end = (size_t)TU_HDR_SIZE + (size_t)info.section_count * TU_ENTRY_SIZE, i = end;
    while (i < nx && i < ny && x[i] == y[i]) i++;
    if (i == nx || i == ny) /* the sections agree: the header or table differs */
        for (i = 0; i < end && x[i] == y[i]; i++) continue;
    char where[5] = "-";
    annb_section_info s;
    for (uint32_t k = 0; k < info.section_count; k++)
        if (annb_section_info_get(&s, b, k) == ANNB_OK && i >= s.offset) memcpy(where, s.kind, 5);
    snprintf(out, size, "sizes %zu and %zu, first difference at byte %zu (section %s)", nx, ny, i,
             i < end ? "header/table" : where);
    annb_close(b);
}

static void check_same_bytes(const char *a, const char *b, const char *what)
{
    size_t na, nb;
    uint8_t *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    assert_non_null(x);
    assert_non_null(y);
    if (na != nb || memcmp(x, y, na) != 0) {
        char why[200];
        first_difference(why, sizeof why, a, x, na, y, nb);
        free(x);
        free(y);
        fail_msg("%s: %s and %s differ: %s", what, a, b, why);
    }
    free(x);
    free(y);
}

static void test_repro_case(void **state)
{
    const repro_case *c = *state;
    char what[128], a[512], a2[512], b[512];
    snprintf(what, sizeof what, "%s, %s%s", c->index ? c->index : "flat",
             annb_metric_name(c->metric), c->with_extras ? ", with catalog, users, interactions" : "");
    if (c->slow && !getenv("ANNB_TEST_SLOW")) {
        print_message("[ SKIPPED  ] %s (set ANNB_TEST_SLOW=1)\n", what);
        skip();
    }
    /* Graph indexes are reproducible as built by default (one thread); an
     * explicit thread count above 1 trades that for build speed. */
    int many = c->index && strstr(c->index, "HNSW") ? 0 : 2;
    build(c, 0, 1, tu_path(a, fx.dir, "a.annb"));   /* file order, 1 thread */
    build(c, 0, many, tu_path(a2, fx.dir, "a2.annb")); /* file order, 2 threads */
    check_same_bytes(a, a2, what);
    build(c, 0, many, a2); /* again: thread timing differs from run to run */
    check_same_bytes(a, a2, what);
    build(c, 1, many, tu_path(b, fx.dir, "b.annb"));   /* rows shuffled, 2 threads */
    check_same_bytes(a, b, what);
    /* The bundle is the expected one, not merely a stable one. */
    annb_bundle *bb = tu_open(b, 0);
    annb_bundle_info info;
    annb_bundle_info_get(&info, bb);
    assert_int_equal(info.count, N);
    assert_int_equal(info.metric, c->metric);
    assert_int_equal(info.has_catalog, c->with_extras);
    assert_int_equal(annb_space_count(bb, ANNB_SPACE_USERS), c->with_extras ? USERS : 0);
    annb_error err = {0};
    if (annb_verify(bb, &err) != ANNB_OK) fail_msg("%s: %s", what, err.message);
    annb_close(bb);
}

static const repro_case cases[] = {
    {NULL, ANNB_METRIC_IP, 0, 0},
    {NULL, ANNB_METRIC_COSINE, 0, 0},
    {NULL, ANNB_METRIC_L2, 0, 0},
    {NULL, ANNB_METRIC_IP, 1, 0},
    {"IVF16,Flat", ANNB_METRIC_IP, 0, 0},
    {"IVF16,Flat", ANNB_METRIC_L2, 1, 0},
    {"IVF16,Flat", ANNB_METRIC_COSINE, 0, 0},
    {"IVF16,PQ4np", ANNB_METRIC_L2, 0, 0},
    {"IVF16,PQ4", ANNB_METRIC_L2, 0, 1},
    {"HNSW16", ANNB_METRIC_IP, 0, 0},
    {"HNSW16", ANNB_METRIC_L2, 1, 0},
    {"HNSW16", ANNB_METRIC_COSINE, 0, 0},
};

/* ------------------------------------------------------------------------ */
/* Provenance                                                                */
/* ------------------------------------------------------------------------ */

/* ---- the content digests of SPEC 6.13, computed here from the
 * definition, from the fixture's own values (not from what annb read) ---- */

static void put_le(annb_sha256 *s, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        uint8_t b = (uint8_t)(v >> (8 * i));
        annb_sha256_update(s, &b, 1);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* n (u64), d (u32), then per row by ascending ID: ID (i64), d x f32. */
static void digest_of_vectors(char hex[65], const tu_data *t)
{
    int64_t *ids = malloc(t->n * sizeof *ids);
    assert_non_null(ids);
    memcpy(ids, t->ids, t->n * sizeof *ids);
    qsort(ids, t->n, sizeof *ids, cmp_i64);
    annb_sha256 s;
    annb_sha256_init(&s);
    put_le(&s, t->n, 8);
    put_le(&s, t->d, 4);
    for (size_t i = 0; i < t->n; i++) {
        const float *v = t->vecs + (size_t)tu_data_row(t, ids[i]) * t->d;
        put_le(&s, (uint64_t)ids[i], 8);
        for (uint32_t j = 0; j < t->d; j++) {
            uint32_t bits;
            memcpy(&bits, &v[j], 4);
            put_le(&s, bits, 4);
        }
    }
    digest_hex(hex, &s);
    free(ids);
}

/* count (u64), then per entry by ascending ID: ID (i64), title and a NUL,
 * genre count (u32), each genre and a NUL as listed. */
static void digest_of_catalog(char hex[65])
{
    int64_t ids[sizeof fx.catalog_ids / sizeof fx.catalog_ids[0]];
    size_t n = fx.catalog_count;
    memcpy(ids, fx.catalog_ids, n * sizeof *ids);
    qsort(ids, n, sizeof *ids, cmp_i64);
    annb_sha256 s;
    annb_sha256_init(&s);
    put_le(&s, n, 8);
    for (size_t i = 0; i < n; i++) {
        char title[64], genres[64];
        entry_title(title, ids[i]);
        put_le(&s, (uint64_t)ids[i], 8);
        annb_sha256_update(&s, title, strlen(title) + 1);
        strcpy(genres, genre_lists[(size_t)llabs(ids[i]) % 4]);
        uint32_t count = 1;
        for (char *p = genres; *p; p++)
            if (*p == '|') {
                *p = '\0';
                count++;
            }
        put_le(&s, count, 4);
        for (const char *g = genres; count--; g += strlen(g) + 1)
            annb_sha256_update(&s, g, strlen(g) + 1);
    }
    digest_hex(hex, &s);
}

/* count (u64), then (user, item) pairs as i64, sorted, without repeats. */
static void digest_of_interactions(char hex[65])
{
    annb_sha256 s;
    annb_sha256_init(&s);
    put_le(&s, USERS * 10, 8);
    for (size_t u = 0; u < USERS; u++) {
        int64_t items[10];
        for (size_t j = 0; j < 10; j++) items[j] = fx.data.ids[(u + 7 * j) % N];
        qsort(items, 10, sizeof *items, cmp_i64);
        for (size_t j = 0; j < 10; j++) {
            put_le(&s, u + 1, 8);
            put_le(&s, (uint64_t)items[j], 8);
        }
    }
    digest_hex(hex, &s);
}

static void test_provenance_lines(void **state)
{
    (void)state;
    repro_case c = {"IVF16,Flat", ANNB_METRIC_COSINE, 1, 0};
    char out[512], items[65], catalog[65], users[65], seen[65], expect[1024];
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    build(&c, 1, 2, tu_path(out, fx.dir, "prov.annb"));
    annb_bundle *b = tu_open(out, 0);
    const char *p = annb_bundle_provenance(b);
    assert_non_null(p);
    int len = snprintf(expect, sizeof expect, "tool=annb %s\nformat=%d.%d\nfaiss=",
                       ANNB_VERSION_STRING, ANNB_FORMAT_VERSION_MAJOR, ANNB_FORMAT_VERSION_MINOR);
    assert_memory_equal(p, expect, (size_t)len);
    const char *rest = strstr(p, "\nzstd=");
    assert_non_null(rest);
    rest = strchr(rest + 1, '\n');
    digest_of_vectors(items, &fx.data);
    digest_of_catalog(catalog);
    digest_of_vectors(users, &fx.users_data);
    digest_of_interactions(seen);
    snprintf(expect, sizeof expect,
             "\nmetric=cosine\nindex=IVF16,Flat\nitems_content_sha256=%s\n"
             "catalog_content_sha256=%s\nusers_content_sha256=%s\n"
             "interactions_content_sha256=%s\n", items, catalog, users, seen);
    assert_string_equal(rest, expect);
    assert_null(strstr(p, fx.dir));
    annb_close(b);

    /* Flat without a catalog: no catalog line; a shard says which, and its
     * items digest is the whole file's, the same for every shard. */
    o.shard_index = 1;
    o.shard_count = 3;
    assert_int_equal(annb_build(&rep, fx.items[0], NULL, out, &o, &err), ANNB_OK);
    assert_int_equal(rep.single_threaded, 0);
    assert_true(rep.items < N);
    b = tu_open(out, 0);
    snprintf(expect, sizeof expect, "\nmetric=ip\nindex=Flat\nshard=1/3\nitems_content_sha256=%s\n",
             items);
    assert_string_equal(strchr(strstr(annb_bundle_provenance(b), "\nzstd=") + 1, '\n'), expect);
    annb_close(b);
    /* A STRUCTURE_ONLY handle has no content, so no provenance. */
    b = tu_open(out, ANNB_OPEN_STRUCTURE_ONLY);
    assert_null(annb_bundle_provenance(b));
    annb_close(b);
    assert_null(annb_bundle_provenance(NULL));

    /* The graph index reports that it was built with one thread, unless
     * more were asked for. */
    o = (annb_build_opts)ANNB_BUILD_OPTS_INIT;
    o.index = "HNSW16";
    o.allow_low_recall = 1;
    assert_int_equal(annb_build(&rep, fx.items[0], NULL, out, &o, &err), ANNB_OK);
    assert_int_equal(rep.single_threaded, 1);
    o.threads = 2;
    assert_int_equal(annb_build(&rep, fx.items[0], NULL, out, &o, &err), ANNB_OK);
    assert_int_equal(rep.single_threaded, 0);
}

/* The same content in another accepted form gives the same bundle: items as
 * a wide TSV, the catalog as a latin-1 movies.dat (SPEC 6.13: digests are of
 * the content, not of the files). */
static void test_same_content_other_form(void **state)
{
    (void)state;
    char tsv[512], dat[512], a[512], b[512];
    FILE *f = fopen(tu_path(tsv, fx.dir, "items-wide.tsv"), "w");
    assert_non_null(f);
    fprintf(f, "id");
    for (int j = 0; j < D; j++) fprintf(f, "\tf%d", j);
    for (size_t i = N; i-- > 0;) { /* and backwards */
        fprintf(f, "\n%lld", (long long)fx.data.ids[i]);
        for (int j = 0; j < D; j++) fprintf(f, "\t%.9g", (double)fx.data.vecs[i * D + j]);
    }
    fprintf(f, "\n");
    assert_int_equal(fclose(f), 0);
    write_catalog(tu_path(dat, fx.dir, "movies.dat"), fx.catalog_ids, fx.catalog_count, 1);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_error err = {0};
    o.index = "IVF16,Flat";
    assert_int_equal(annb_build(NULL, fx.items[0], fx.catalog[0], tu_path(a, fx.dir, "form-a.annb"),
                                &o, &err), ANNB_OK);
    assert_int_equal(annb_build(NULL, tsv, dat, tu_path(b, fx.dir, "form-b.annb"), &o, &err), ANNB_OK);
    check_same_bytes(a, b, "Spark CSV + movies.csv vs wide TSV + movies.dat");
}

/* Replaces the BILD payload of a bundle image (the last section) with
 * `text`, stored raw (at the next 4096-byte boundary, SPEC 3.2), with the
 * section's and the header's checksums made to match: what a hostile or
 * buggy writer can produce. */
static uint8_t *with_provenance(size_t *size, const uint8_t *img, const char *text, size_t len)
{
    uint32_t count = (uint32_t)tu_get_le(img + TU_HDR_SECTION_COUNT, 4);
    const uint8_t *last = img + TU_HDR_SIZE + (size_t)(count - 1) * TU_ENTRY_SIZE;
    assert_memory_equal(last, "BILD", 4);
    size_t old_off = (size_t)tu_get_le(last + 16, 8), off = (old_off + 4095) / 4096 * 4096;
    *size = off + len;
    uint8_t *out = calloc(1, *size);
    assert_non_null(out);
    memcpy(out, img, old_off);
    memcpy(out + off, text, len);
    uint8_t *e = out + (last - img);
    tu_put_le(e + 8, 4, 0);     /* codec: raw */
    tu_put_le(e + 16, 8, off);  /* offset */
    tu_put_le(e + 24, 8, len);  /* stored size */
    tu_put_le(e + 32, 8, len);  /* decoded size */
    tu_put_le(e + 40, 8, len);  /* element count (bytes) */
    tu_put_le(e + 48, 8, XXH3_64bits(text, len));
    tu_put_le(out + 16, 8, *size); /* file size */
    assert_int_equal(tu_header_rehash(out, *size), 0);
    return out;
}

static void test_provenance_untrusted(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        int ok;
    } cases[] = {
        {"tool=x\n", 0, 1},
        {"a=\nb_2=caf\xc3\xa9 \xe2\x82\xac =x\n", 0, 1}, /* empty value, UTF-8, '=' in a value */
        {"tool=x", 0, 0},                  /* no final line feed */
        {"\n", 0, 0},                      /* empty line: no key */
        {"=x\n", 0, 0},                    /* empty key */
        {"Tool=x\n", 0, 0},                /* key outside [a-z0-9_] */
        {"to ol=x\n", 0, 0},
        {"tool=x\ntool=y\n", 0, 0},        /* key twice */
        {"tool=a\x1b[2Jb\n", 0, 0},        /* ESC: a terminal escape */
        {"tool=a\rb\n", 0, 0},
        {"tool=a\x7f\n", 0, 0},
        {"tool=a\xc2\x9b" "2J\n", 0, 0},   /* C1 CSI */
        {"tool=\xc3\n", 0, 0},             /* truncated sequence */
        {"tool=\xc0\xaf\n", 0, 0},         /* overlong */
        {"tool=\xed\xa0\x80\n", 0, 0},     /* surrogate */
        {"tool=\xf4\x90\x80\x80\n", 0, 0}, /* above U+10FFFF */
        {"tool=\xff\n", 0, 0},
        {"tool=a\0b\n", 9, 0},             /* NUL */
    };
    char path[512];
    repro_case c = {NULL, ANNB_METRIC_IP, 0, 0};
    build(&c, 0, 1, tu_path(path, fx.dir, "plain.annb"));
    size_t n;
    uint8_t *img = tu_read_file(path, &n);
    assert_non_null(img);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t len = cases[k].len ? cases[k].len : strlen(cases[k].text), size;
        uint8_t *bad = with_provenance(&size, img, cases[k].text, len);
        annb_bundle *b = NULL;
        annb_error err = {0};
        int rc = annb_bundle_from_bytes(&b, bad, size, "forged.annb", 0, &err);
        if (cases[k].ok) {
            if (rc != ANNB_OK) fail_msg("case %zu refused: %s", k, err.message);
            assert_memory_equal(annb_bundle_provenance(b), cases[k].text, len);
            assert_int_equal(annb_bundle_provenance(b)[len], '\0');
        } else {
            if (rc != ANNB_E_CORRUPT) fail_msg("case %zu: expected ANNB_E_CORRUPT, got %d (%s)", k, rc, err.message);
            assert_non_null(strstr(err.message, "BILD"));
        }
        annb_close(b);
        free(bad);
    }
    /* Too large (64 KiB + 1) and too many lines (257), each otherwise valid. */
    size_t big = 65537;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, 'v', big);
    memcpy(text, "k=", 2);
    text[big - 1] = '\n';
    size_t size;
    uint8_t *bad = with_provenance(&size, img, text, big);
    annb_bundle *b = NULL;
    annb_error err = {0};
    assert_int_equal(annb_bundle_from_bytes(&b, bad, size, "big.annb", 0, &err), ANNB_E_CORRUPT);
    free(bad);
    size_t len = 0;
    for (int i = 0; i < 257; i++) len += (size_t)sprintf(text + len, "k%d=\n", i);
    bad = with_provenance(&size, img, text, len);
    assert_int_equal(annb_bundle_from_bytes(&b, bad, size, "lines.annb", 0, &err), ANNB_E_CORRUPT);
    free(bad);
    len -= strlen("k256=\n"); /* 256 lines are fine */
    bad = with_provenance(&size, img, text, len);
    assert_int_equal(annb_bundle_from_bytes(&b, bad, size, "lines.annb", 0, &err), ANNB_OK);
    annb_close(b);
    free(bad);
    free(text);
    free(img);
}

int main(void)
{
    struct CMUnitTest tests[3 + sizeof cases / sizeof cases[0] + 3];
    size_t t = 0;
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_sha256_fips);
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_sha256_splits);
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_file_sha256);
    static char names[sizeof cases / sizeof cases[0]][96];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(names[i], sizeof names[i], "repro %s %s%s", cases[i].index ? cases[i].index : "flat",
                 annb_metric_name(cases[i].metric), cases[i].with_extras ? " +catalog,users,seen" : "");
        tests[t++] = (struct CMUnitTest){names[i], test_repro_case, NULL, NULL, (void *)&cases[i]};
    }
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_provenance_lines);
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_same_content_other_form);
    tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_provenance_untrusted);
    return _cmocka_run_group_tests("test_repro", tests, t, setup, teardown);
}
