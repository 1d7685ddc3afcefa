/*
 * test_nomem.c - allocation failure, sqlite-style (failalloc.h): for every
 * n, the n-th allocation of a call fails (and, in the persistent mode, every
 * one after it), and the call must
 *  - return ANNB_E_NOMEM (or ANNB_OK when it could do without that memory,
 *    and then give exactly the answer of an unhindered call),
 *  - not crash, and leave no block allocated that the unhindered call would
 *    not have freed (live count before == after),
 *  - for annb_build: leave the temporary directory as it was, the previous
 *    target file untouched.
 * The sweep for n = 1, 2, ... stops at the first n the call no longer
 * reaches. Calls: annb_build (flat, annb's ivf, Faiss HNSW16 and
 * IVF8,PQ4x4np) with a catalog, users and interactions; annb_open of each
 * bundle (and with ANNB_OPEN_VERIFY_ALL); on each, annb_search (plain;
 * genre filter + excluded IDs), annb_recommend (exclude_seen + genre),
 * annb_serve_request (user, item, vector, similar-users questions) and
 * annb_verify; annb_search_shards over two shards; annb_vectors_from_csv
 * and annb_seen_items_from_file.
 *
 * Exhaustive (every n, both modes) for every call except the HNSW16 and
 * IVF8,PQ4x4np builds, where Faiss (std::regex in index_factory, training)
 * allocates 7,000-11,000 times: there the sweep takes every n of the first
 * SAMPLE_HEAD (annb's ingest) and of the last SAMPLE_TAIL (annb's tuning and
 * writing), and SAMPLE_POINTS n spread evenly in between (printed as
 * "sampled"), unless ANNB_NOMEM_EXHAUSTIVE=1 (about 3 minutes more).
 *
 * Which allocations can fail is failalloc.h's rule: those made by code in
 * this executable (libannb, annb_format, libfaiss.a) or by cJSON, libcsv,
 * zstd and xxhash, outside OpenMP regions, and fopen/fmemopen/open_memstream.
 */
#define _GNU_SOURCE
#include "failalloc.h"
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 700 /* items: enough for IVF8,PQ4x4 to train without Faiss warnings */
#define D 8
#define U 40  /* users */
#define K 10
#define NQ 3
#define NREQ 4
#define SAMPLE_HEAD 800   /* annb's ingest: the flat build makes 744 allocations in all */
#define SAMPLE_TAIL 300   /* annb's tuning, serializing and writing after Faiss's build */
#define SAMPLE_POINTS 200

extern void omp_set_num_threads(int) __attribute__((weak));

static const char *const genre_names[] = {"Action", "Comedy", "Drama", "Horror"};
#define NG 4

typedef struct fixture {
    char dir[256];   /* inputs and the bundles the search cases use */
    char out_dir[256]; /* build targets only: its entries are checked after each failure */
    char items_csv[512], users_csv[512], movies[512], ratings[512];
    char flat[512], ivf[512], hnsw[512], pq[512], graph[512], shard[2][512];
    tu_data items, users;
    float queries[NQ * D];
} fixture;

static fixture fx;

/* ---- one call under test ---- */

typedef struct nm_case nm_case;
struct nm_case {
    const char *name;
    /* The call, made while armed: it must not allocate itself (test code is
     * in the executable too), so results go into fixed buffers or into
     * library-owned pointers that check() releases. */
    int (*call)(nm_case *c, annb_error *err);
    /* Unarmed, after the call: compares a successful result with the
     * reference (recording it the first time) and frees the results. */
    void (*check)(nm_case *c, int rc);
    /* Unarmed, after a failed call: what it must have left as it was. */
    void (*after_failure)(nm_case *c);
    int sampled; /* sweep a sample of n (see the header comment) */
    unsigned open_flags;
    int fills_err; /* the call takes an annb_error, whose code must be the one returned */

    const char *bundle_path;
    annb_bundle *b;
    const char *index;
    annb_hit hits[NQ * K], ref_hits[NQ * K];
    char *resp[NREQ], *ref_resp[NREQ];
    uint8_t *ref_file, *prev_file;
    size_t ref_size, prev_size, out_entries;
    int64_t *ids;
    float *vecs;
    size_t count;
    int recorded;
};

/* Field by field: annb_hit has padding, which nobody writes. */
static int hits_differ(const annb_hit *a, const annb_hit *b)
{
    int differ = 0;
    for (size_t i = 0; i < NQ * K; i++)
        if (a[i].id != b[i].id || memcmp(&a[i].score, &b[i].score, sizeof a[i].score)) {
            fprintf(stderr, "  hit %zu: %lld %.9g, expected %lld %.9g\n", i, (long long)a[i].id,
                    a[i].score, (long long)b[i].id, b[i].score);
            differ = 1;
        }
    return differ;
}

static void hits_check(nm_case *c, int rc)
{
    if (rc != ANNB_OK) return;
    if (!c->recorded) {
        memcpy(c->ref_hits, c->hits, sizeof c->hits);
        c->recorded = 1;
    } else if (hits_differ(c->hits, c->ref_hits)) {
        fail_msg("%s: a call that succeeded despite a failed allocation answered differently", c->name);
    }
}

/* annb_open, then annb_close unarmed. */
static int open_call(nm_case *c, annb_error *err)
{
    annb_open_opts o = ANNB_OPEN_OPTS_INIT;
    o.flags = c->open_flags;
    return annb_open(&c->b, c->bundle_path, &o, err);
}

static void open_check(nm_case *c, int rc)
{
    if (rc == ANNB_OK) {
        annb_bundle_info info;
        annb_bundle_info_get(&info, c->b);
        assert_int_equal(info.count, N);
        assert_non_null(c->b);
    } else {
        assert_null(c->b);
    }
    annb_close(c->b);
    c->b = NULL;
}

static int search_call(nm_case *c, annb_error *err)
{
    (void)err;
    return annb_search(c->b, fx.queries, NQ, K, NULL, c->hits);
}

static int filtered_call(nm_case *c, annb_error *err)
{
    (void)err;
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    const char *genres[] = {"Comedy", "Horror"};
    int64_t exclude[] = {fx.items.ids[0], fx.items.ids[5], fx.items.ids[9]};
    o.genres = genres;
    o.genre_count = 2;
    o.exclude_ids = exclude;
    o.exclude_count = 3;
    return annb_search(c->b, fx.queries, NQ, K, &o, c->hits);
}

static int recommend_call(nm_case *c, annb_error *err)
{
    (void)err;
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    const char *genres[] = {"Drama"};
    int64_t users[NQ] = {fx.users.ids[0], fx.users.ids[7], fx.users.ids[13]};
    o.genres = genres;
    o.genre_count = 1;
    o.exclude_seen = 1;
    return annb_recommend(c->b, users, NQ, K, &o, c->hits);
}

static int verify_call(nm_case *c, annb_error *err) { return annb_verify(c->b, err); }
static void no_check(nm_case *c, int rc) { (void)c, (void)rc; }

static char requests[NREQ][512];

static int serve_call(nm_case *c, annb_error *err)
{
    (void)err;
    const annb_bundle *const bs[] = {c->b};
    for (int i = 0; i < NREQ; i++) {
        int rc = annb_serve_request(bs, 1, requests[i], &c->resp[i]);
        if (rc != ANNB_OK) return rc;
    }
    return ANNB_OK;
}

static void serve_check(nm_case *c, int rc)
{
    for (int i = 0; i < NREQ; i++) {
        if (rc == ANNB_OK) {
            assert_non_null(c->resp[i]);
            if (!c->recorded) c->ref_resp[i] = strdup(c->resp[i]);
            else if (strcmp(c->resp[i], c->ref_resp[i]))
                fail_msg("%s: request %d answered %s instead of %s", c->name, i, c->resp[i],
                         c->ref_resp[i]);
        } else if (c->resp[i] && !strstr(c->resp[i], "\"error\"")) {
            /* Answered before the failing request: must be the reference. */
            if (c->recorded && strcmp(c->resp[i], c->ref_resp[i]))
                fail_msg("%s: request %d answered %s", c->name, i, c->resp[i]);
        } else if (c->resp[i] && !strstr(c->resp[i], "\"internal\"")) {
            fail_msg("%s: out of memory answered as %s", c->name, c->resp[i]);
        }
        annb_free(c->resp[i]);
        c->resp[i] = NULL;
    }
    if (rc == ANNB_OK) c->recorded = 1;
}

static annb_bundle *shards[2];

static int shards_call(nm_case *c, annb_error *err)
{
    (void)err;
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    const char *genres[] = {"Action"};
    o.genres = genres;
    o.genre_count = 1;
    return annb_search_shards((const annb_bundle *const *)shards, 2, fx.queries, NQ, K, &o, c->hits);
}

static int seen_call(nm_case *c, annb_error *err)
{
    return annb_seen_items_from_file(&c->ids, &c->count, fx.ratings, fx.users.ids[2], err);
}

static void seen_check(nm_case *c, int rc)
{
    if (rc == ANNB_OK) {
        if (!c->recorded) {
            c->ref_size = c->count;
            c->ref_file = malloc(c->count * sizeof *c->ids + 1);
            memcpy(c->ref_file, c->ids, c->count * sizeof *c->ids);
            c->recorded = 1;
        }
        assert_int_equal(c->count, c->ref_size);
        assert_memory_equal(c->ids, c->ref_file, c->count * sizeof *c->ids);
    } else {
        assert_null(c->ids);
    }
    annb_free(c->ids);
    c->ids = NULL;
}

static int vectors_call(nm_case *c, annb_error *err)
{
    return annb_vectors_from_csv(&c->ids, &c->vecs, &c->count, D, fx.users_csv, err);
}

static void vectors_check(nm_case *c, int rc)
{
    if (rc == ANNB_OK) {
        assert_int_equal(c->count, U);
        for (size_t i = 0; i < U; i++) assert_true(c->ids[i] == fx.users.ids[i]);
        assert_memory_equal(c->vecs, fx.users.vecs, U * D * sizeof(float));
    } else {
        assert_null(c->ids);
        assert_null(c->vecs);
        assert_int_equal(c->count, 0);
    }
    annb_free(c->ids);
    annb_free(c->vecs);
    c->ids = NULL;
    c->vecs = NULL;
}

/* annb_build into out_dir/target.annb, over a previous target file. */
static const char prev_text[] = "the previous target: a build that fails must leave it as it is\n";

static int build_call(nm_case *c, annb_error *err)
{
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    char out[512];
    o.index = c->index;
    o.users_path = fx.users_csv;
    o.interactions_path = fx.ratings;
    o.threads = 1;
    o.tune_queries = 50;
    return annb_build(NULL, fx.items_csv, fx.movies, tu_path(out, fx.out_dir, "target.annb"), &o, err);
}

static void build_check(nm_case *c, int rc)
{
    char out[512];
    tu_path(out, fx.out_dir, "target.annb");
    if (rc == ANNB_OK) {
        size_t size;
        uint8_t *got = tu_read_file(out, &size);
        assert_non_null(got);
        if (!c->recorded) {
            c->ref_file = got;
            c->ref_size = size;
            c->recorded = 1;
        } else {
            /* Builds are reproducible: same bytes or a bug. */
            if (size != c->ref_size || memcmp(got, c->ref_file, size))
                fail_msg("%s: a build that succeeded despite a failed allocation wrote other bytes",
                         c->name);
            free(got);
        }
        tu_write_text(out, prev_text);
    }
}

static void build_after_failure(nm_case *c)
{
    char out[512];
    size_t size;
    uint8_t *got = tu_read_file(tu_path(out, fx.out_dir, "target.annb"), &size);
    assert_non_null(got);
    if (size != strlen(prev_text) || memcmp(got, prev_text, size))
        fail_msg("%s: a failed build changed the previous target", c->name);
    free(got);
    if (tu_dir_entry_count(fx.out_dir) != 1)
        fail_msg("%s: a failed build left %zu files in %s", c->name, tu_dir_entry_count(fx.out_dir),
                 fx.out_dir);
}

/* ---- the sweep ---- */

/* Leaks of Faiss 1.7.3 itself, outside annb's reach: its index_factory
 * makes a flat index with `new` and hands it on as a raw pointer (to
 * IndexHNSW's constructor as the storage, to the IVF index as the coarse
 * quantizer), so when the next allocation throws, that flat index is lost.
 * Tolerated only when index_factory is what failed and every block left is
 * such an object, told by its vtable pointer; any other block fails the
 * test. */
extern char _ZTVN5faiss9IndexFlatE[], _ZTVN5faiss11IndexFlatL2E[], _ZTVN5faiss11IndexFlatIPE[];

static int is_faiss_flat(void *block)
{
    /* An object's vptr points 16 bytes into its class's vtable (Itanium ABI). */
    const char *vptr;
    memcpy(&vptr, block, sizeof vptr);
    return vptr == _ZTVN5faiss9IndexFlatE + 16 || vptr == _ZTVN5faiss11IndexFlatL2E + 16 ||
           vptr == _ZTVN5faiss11IndexFlatIPE + 16;
}

static int faiss_factory_leak(uint64_t mark, const annb_error *err)
{
    void *blocks[4];
    size_t n = failalloc_blocks_since(mark, blocks, 4);
    if (!strstr(err->message, "Faiss index_factory") || n == 0 || n > 4) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_faiss_flat(blocks[i])) return 0;
    return 1;
}

static uint64_t known_leaks; /* calls that lost only what faiss_factory_leak() allows */

/* One armed call (n = 0: unarmed). Returns the number of failable
 * allocations it made; fails the test on a wrong code or a leak. */
static uint64_t armed_call(nm_case *c, uint64_t n, int persistent, int *rc_out)
{
    annb_error err = {0};
    int recording = !c->recorded; /* check() then keeps copies: not leaks */
    size_t before = failalloc_live();
    uint64_t mark = failalloc_mark();
    failalloc_arm(n ? n : UINT64_MAX, persistent);
    int rc = c->call(c, &err);
    uint64_t reached = failalloc_disarm();
    int failed = n && reached >= n;
    if (!failed && rc != ANNB_OK)
        fail_msg("%s: unhindered call returned %d: %s", c->name, rc, err.message);
    if (failed && rc != ANNB_OK && rc != ANNB_E_NOMEM)
        fail_msg("%s: allocation %llu%s failed: returned %d (%s), not ANNB_E_NOMEM: %s", c->name,
                 (unsigned long long)n, persistent ? " and later" : "", rc, annb_strerror(rc),
                 err.message);
    if (failed && c->fills_err && err.code != rc)
        fail_msg("%s: returned %d but err.code is %d", c->name, rc, err.code);
    c->check(c, rc);
    if (failed && rc != ANNB_OK && c->after_failure) c->after_failure(c);
    size_t after = failalloc_live();
    if (failed && rc == ANNB_E_NOMEM && after > before && after - before <= 4 &&
        faiss_factory_leak(mark, &err)) {
        known_leaks++;
        after = before;
    }
    if (after != before && !recording) {
        fprintf(stderr, "%s: allocation %llu%s failed (returned %d: %s): %zd blocks leaked\n",
                c->name, (unsigned long long)n, persistent ? " and later" : "", rc, err.message,
                (ssize_t)(after - before));
        failalloc_report_since(mark, 16);
        fail_msg("%s: leak after allocation %llu failed", c->name, (unsigned long long)n);
    }
    *rc_out = rc;
    return reached;
}

/* ANNB_NOMEM_EXHAUSTIVE=1: every n for the sampled cases too. */
static int exhaustive;

static void sweep(nm_case *c)
{
    int rc;
    /* Twice unhindered: the reference, then with every lazily made cache
     * (BLAS loaded, OpenMP pool, Faiss's error strings) already there, so
     * the leak check sees only what the call itself keeps. */
    armed_call(c, 0, 0, &rc);
    uint64_t total = armed_call(c, 0, 0, &rc);
    for (int persistent = 0; persistent <= 1; persistent++) {
        uint64_t points = 0, tolerated = 0;
        uint64_t stride = 1;
        known_leaks = 0;
        if (c->sampled && !exhaustive && total > SAMPLE_HEAD + SAMPLE_TAIL + SAMPLE_POINTS)
            stride = (total - SAMPLE_HEAD - SAMPLE_TAIL) / SAMPLE_POINTS;
        for (uint64_t n = 1;; n += n < SAMPLE_HEAD || n + SAMPLE_TAIL >= total ? 1 : stride) {
            if (armed_call(c, n, persistent, &rc) < n) break;
            points++;
            if (rc == ANNB_OK) tolerated++;
        }
        print_message("%-22s %-10s %llu of %llu allocation points%s, %llu survived with the same "
                      "answer%s\n", c->name, persistent ? "persistent" : "single",
                      (unsigned long long)points, (unsigned long long)total,
                      stride > 1 ? " (sampled)" : "", (unsigned long long)tolerated,
                      known_leaks ? ", Faiss's own index_factory leak seen" : "");
    }
}

static void case_free(nm_case *c)
{
    free(c->ref_file);
    for (int i = 0; i < NREQ; i++) free(c->ref_resp[i]);
}

/* ---- fixture ---- */

static void write_movies(void)
{
    FILE *f = fopen(tu_path(fx.movies, fx.dir, "movies.dat"), "w");
    assert_non_null(f);
    for (size_t r = 0; r < N; r++) {
        if (r % 11 == 4) continue; /* items without an entry */
        fprintf(f, "%lld::Item %zu (19%02zu)::%s", (long long)fx.items.ids[r], r, r % 100,
                genre_names[r % NG]);
        if (r % 3 == 0) fprintf(f, "|%s", genre_names[(r / NG + 1) % NG]);
        fputc('\n', f);
    }
    fclose(f);
}

static void write_ratings(tu_rng *r)
{
    FILE *f = fopen(tu_path(fx.ratings, fx.dir, "ratings.dat"), "w");
    assert_non_null(f);
    for (size_t u = 0; u < U; u++)
        for (size_t i = 0, n = (size_t)tu_rng_below(r, 30); i < n; i++)
            fprintf(f, "%lld::%lld::%u::97830%04zu\n", (long long)fx.users.ids[u],
                    (long long)fx.items.ids[tu_rng_below(r, N)], (unsigned)(1 + i % 5), i);
    fclose(f);
}

static void build_fixture_bundle(char path[512], const char *name, const char *index)
{
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_error err = {0};
    o.index = index;
    o.users_path = fx.users_csv;
    o.interactions_path = fx.ratings;
    o.threads = 1;
    o.tune_queries = 50;
    int rc = annb_build(NULL, fx.items_csv, fx.movies, tu_path(path, fx.dir, name), &o, &err);
    if (rc) fail_msg("annb_build(%s): %d: %s", name, rc, err.message);
}

static int setup(void **state)
{
    (void)state;
    tu_rng r;
    tu_items_setup(&fx.items, &r, fx.dir, fx.items_csv, N, D, 909);
    tu_tmpdir_make(fx.out_dir);
    int64_t uids[U];
    for (size_t u = 0; u < U; u++) uids[u] = (int64_t)(u * 37 + 3);
    tu_data_make(&fx.users, U, D, uids, &r);
    tu_write_spark_csv(tu_path(fx.users_csv, fx.dir, "users.csv"), &fx.users);
    for (size_t i = 0; i < NQ * D; i++) fx.queries[i] = (float)tu_rng_uniform(&r, -1, 1);
    write_movies();
    write_ratings(&r);
    build_fixture_bundle(fx.flat, "flat.annb", "flat");
    build_fixture_bundle(fx.ivf, "ivf.annb", "ivf");
    build_fixture_bundle(fx.hnsw, "hnsw.annb", "HNSW16");
    build_fixture_bundle(fx.pq, "pq.annb", "IVF8,PQ4x4np");
    build_fixture_bundle(fx.graph, "graph.annb", "graph");
    for (uint32_t s = 0; s < 2; s++) {
        annb_build_opts o = ANNB_BUILD_OPTS_INIT;
        annb_error err = {0};
        char name[32];
        snprintf(name, sizeof name, "shard%u.annb", s);
        o.shard_index = s;
        o.shard_count = 2;
        int rc = annb_build(NULL, fx.items_csv, fx.movies, tu_path(fx.shard[s], fx.dir, name), &o, &err);
        if (rc) fail_msg("annb_build(%s): %d: %s", name, rc, err.message);
    }
    char out[512];
    tu_write_text(tu_path(out, fx.out_dir, "target.annb"), prev_text);

    snprintf(requests[0], sizeof requests[0],
             "{\"id\":1,\"user\":%lld,\"k\":5,\"exclude_seen\":true,\"genres\":[\"Comedy\"]}",
             (long long)fx.users.ids[3]);
    snprintf(requests[1], sizeof requests[1], "{\"id\":\"two\",\"item\":%lld,\"k\":4,\"exclude\":[%lld]}",
             (long long)fx.items.ids[2], (long long)fx.items.ids[8]);
    snprintf(requests[2], sizeof requests[2],
             "{\"vector\":[0.5,-0.25,1,0,0.125,-1,0.75,0.3],\"k\":3,\"genres\":[\"Action\",\"Drama\"]}");
    snprintf(requests[3], sizeof requests[3], "{\"id\":4,\"similar_users\":%lld,\"k\":3}",
             (long long)fx.users.ids[1]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_data_free(&fx.items);
    tu_data_free(&fx.users);
    tu_tmpdir_remove(fx.dir);
    tu_tmpdir_remove(fx.out_dir);
    return 0;
}

/* ---- tests ---- */

static void test_build(void **state)
{
    (void)state;
    nm_case cases[] = {
        {.name = "build flat", .index = "flat", .fills_err = 1},
        {.name = "build ivf", .index = "ivf", .fills_err = 1},
        {.name = "build HNSW16", .index = "HNSW16", .sampled = 1, .fills_err = 1},
        {.name = "build IVF8,PQ4x4np", .index = "IVF8,PQ4x4np", .sampled = 1, .fills_err = 1},
        {.name = "build graph", .index = "graph", .sampled = 1, .fills_err = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cases[i].call = build_call;
        cases[i].check = build_check;
        cases[i].after_failure = build_after_failure;
        sweep(&cases[i]);
        case_free(&cases[i]);
    }
}

static void test_open(void **state)
{
    (void)state;
    nm_case cases[] = {
        {.name = "open flat", .bundle_path = fx.flat, .fills_err = 1},
        {.name = "open ivf", .bundle_path = fx.ivf, .fills_err = 1},
        {.name = "open HNSW16", .bundle_path = fx.hnsw, .fills_err = 1},
        {.name = "open IVF8,PQ4x4np", .bundle_path = fx.pq, .fills_err = 1},
        {.name = "open graph", .bundle_path = fx.graph, .fills_err = 1},
        {.name = "open flat verify-all", .bundle_path = fx.flat, .open_flags = ANNB_OPEN_VERIFY_ALL, .fills_err = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cases[i].call = open_call;
        cases[i].check = open_check;
        sweep(&cases[i]);
    }
}

/* Every question kind on one open bundle. */
static void questions_on(const char *path, const char *what)
{
    annb_bundle *b = tu_open(path, 0);
    struct {
        const char *name;
        int (*call)(nm_case *, annb_error *);
        void (*check)(nm_case *, int);
    } kinds[] = {
        {"search", search_call, hits_check},     {"search filtered", filtered_call, hits_check},
        {"recommend", recommend_call, hits_check}, {"serve", serve_call, serve_check},
        {"verify", verify_call, no_check},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s %s", kinds[i].name, what);
        nm_case c = {.name = name, .call = kinds[i].call, .check = kinds[i].check, .b = b,
                     .fills_err = kinds[i].call == verify_call};
        sweep(&c);
        if (kinds[i].call == search_call && b)
            for (size_t q = 0; q < NQ; q++) /* the reference itself, against brute force */
                if (!strcmp(what, "flat"))
                    tu_check_hits(&fx.items, fx.queries + q * D, ANNB_METRIC_IP, NULL, 0,
                                  c.ref_hits + q * K, K, name);
        case_free(&c);
    }
    annb_close(b);
}

static void test_questions_flat(void **state)
{
    (void)state;
    questions_on(fx.flat, "flat");
}

static void test_questions_ivf(void **state)
{
    (void)state;
    questions_on(fx.ivf, "ivf");
}

static void test_questions_hnsw(void **state)
{
    (void)state;
    questions_on(fx.hnsw, "HNSW16");
}

static void test_questions_pq(void **state)
{
    (void)state;
    questions_on(fx.pq, "IVF8,PQ4x4np");
}

static void test_questions_graph(void **state)
{
    (void)state;
    questions_on(fx.graph, "Graph32,SQ8");
}

static void test_shards(void **state)
{
    (void)state;
    shards[0] = tu_open(fx.shard[0], 0);
    shards[1] = tu_open(fx.shard[1], 0);
    nm_case c = {.name = "search_shards", .call = shards_call, .check = hits_check};
    sweep(&c);
    annb_close(shards[0]);
    annb_close(shards[1]);
}

static void test_inputs(void **state)
{
    (void)state;
    nm_case c = {.name = "vectors_from_csv", .call = vectors_call, .check = vectors_check, .fills_err = 1};
    sweep(&c);
    nm_case s = {.name = "seen_items_from_file", .call = seen_call, .check = seen_check, .fills_err = 1};
    sweep(&s);
    case_free(&s);
}

int main(void)
{
    /* Faiss's OpenMP regions on the calling thread alone: the interposer
     * never fails inside them (failalloc.h), and with one thread no other
     * thread allocates meanwhile. */
    if (omp_set_num_threads) omp_set_num_threads(1);
    const char *all = getenv("ANNB_NOMEM_EXHAUSTIVE");
    exhaustive = all && *all && strcmp(all, "0");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inputs),         cmocka_unit_test(test_open),
        cmocka_unit_test(test_questions_flat), cmocka_unit_test(test_questions_ivf),
        cmocka_unit_test(test_questions_hnsw), cmocka_unit_test(test_questions_pq),
        cmocka_unit_test(test_questions_graph),
        cmocka_unit_test(test_shards),         cmocka_unit_test(test_build),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
