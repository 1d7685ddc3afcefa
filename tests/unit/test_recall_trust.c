/*
 * test_recall_trust.c - the recall a bundle stores holds for the questions
 * users will ask, on data shaped like factorisation output: inner product,
 * item norms that vary (log-normal), user vectors drawn away from the
 * items. Every recall here is measured by a brute force in double
 * precision written in testutil.c, on users the build never saw. Also: a
 * target out of reach fails the build (nothing written) unless allowed,
 * and then the best parameter measured is stored; auto falls back; the
 * per-k table (SPEC 6.16) is what searches of each k use; the audit
 * (annb_recall_audit_run) agrees with the brute force.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "annb.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 12000
#define D 24
#define USERS 400 /* first half: tuning; second half: unseen */
#define HALF (USERS / 2)

static struct {
    tu_rng r;
    char dir[256], items[512], tune_users[512], all_users[512];
    tu_data t, u;
} fx;

/* Gaussian by the sum of 12 uniforms (mean 0, variance 1). */
static double gauss(tu_rng *r)
{
    double g = 0;
    for (int j = 0; j < 12; j++) g += tu_rng_uniform(r, 0, 1);
    return g - 6;
}

/* n rows around `clusters` centres of their own (directions), each row's
 * length log-normal (sigma `norm_sigma`, 0: about 1): what ALS item factors
 * look like, popular items longer. */
static void make_rows(tu_data *out, size_t n, const int64_t *ids, unsigned clusters,
                      double spread, double norm_sigma, tu_rng *r)
{
    float *centres = malloc((size_t)clusters * D * sizeof *centres);
    for (size_t i = 0; i < (size_t)clusters * D; i++) centres[i] = (float)gauss(r);
    out->n = n;
    out->d = D;
    out->ids = malloc(n * sizeof *out->ids);
    out->vecs = malloc(n * D * sizeof *out->vecs);
    memcpy(out->ids, ids, n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + tu_rng_below(r, clusters) * D;
        float *v = out->vecs + i * D;
        double ss = 0;
        for (uint32_t j = 0; j < D; j++) {
            v[j] = c[j] + (float)(spread * gauss(r));
            ss += (double)v[j] * v[j];
        }
        double len = exp(norm_sigma * gauss(r)) / sqrt(ss);
        for (uint32_t j = 0; j < D; j++) v[j] = (float)(v[j] * len);
    }
    free(centres);
}

static int setup(void **state)
{
    (void)state;
    tu_rng_seed(&fx.r, 9001);
    tu_tmpdir_make(fx.dir);
    int64_t *ids = malloc(N * sizeof *ids);
    tu_scattered_ids(ids, N, &fx.r);
    make_rows(&fx.t, N, ids, 80, 0.5, 0.6, &fx.r);
    tu_write_spark_csv(tu_path(fx.items, fx.dir, "items.csv"), &fx.t);
    /* Users: centres of their own, not the items' (a factorisation puts
     * users and items in one space but not in one distribution). */
    int64_t uids[USERS];
    for (size_t i = 0; i < USERS; i++) uids[i] = 7000000 + (int64_t)i;
    make_rows(&fx.u, USERS, uids, 12, 0.7, 0.3, &fx.r);
    tu_write_spark_csv(tu_path(fx.all_users, fx.dir, "users.csv"), &fx.u);
    tu_data first = fx.u;
    first.n = HALF;
    tu_write_spark_csv(tu_path(fx.tune_users, fx.dir, "users-first.csv"), &first);
    free(ids);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_data_free(&fx.t);
    tu_data_free(&fx.u);
    tu_tmpdir_remove(fx.dir);
    return 0;
}

/* Mean recall@k of b's answers (opts) for users [from, to), by brute force. */
static double recall_on_users(const annb_bundle *b, size_t from, size_t to, size_t k,
                              const annb_search_opts *opts)
{
    return tu_recall(b, &fx.t, fx.u.vecs + from * D, to - from, k, ANNB_METRIC_IP, opts);
}

static int build(annb_build_report *rep, const char *out, const char *index,
                 const char *users, const char *tune_vectors, double target, int allow,
                 uint64_t max_memory, annb_error *err)
{
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    o.index = index;
    o.users_path = users;
    o.tune_vectors_path = tune_vectors;
    o.target_recall = target;
    o.allow_low_recall = allow;
    o.max_memory = max_memory;
    memset(err, 0, sizeof *err);
    return annb_build(rep, fx.items, NULL, out, &o, err);
}

/* Stored recall (for k 10 and 100) against the recall unseen users get at
 * the default parameters, by brute force: within 0.02. */
static void check_holds(const char *path, const char *what)
{
    annb_bundle *b = tu_open(path, 0);
    uint32_t rows = annb_recall_count(b);
    assert_true(rows >= 2);
    for (uint32_t i = 0; i < rows; i++) {
        annb_recall_info r;
        assert_int_equal(annb_recall_get(&r, b, i), ANNB_OK);
        double unseen = recall_on_users(b, HALF, USERS, r.k, NULL);
        print_message("%s: recall@%u stored %.4f (nprobe %u, efSearch %u), unseen users %.4f\n",
                      what, r.k, r.recall, r.nprobe, r.ef_search, unseen);
        assert_true(r.recall >= r.target);
        assert_true(fabs(unseen - r.recall) <= 0.02);
    }
    annb_close(b);
}

/* Tuned on half the users (stored in the bundle), the recall holds on the
 * other half, for IVF and for HNSW, on inner product with log-normal norms. */
static void test_holds_on_unseen_users(void **state)
{
    (void)state;
    static const char *const indexes[] = {"ivf", "HNSW16"};
    for (size_t i = 0; i < 2; i++) {
        char out[512];
        annb_build_report rep;
        annb_error err;
        tu_path(out, fx.dir, "users.annb");
        int rc = build(&rep, out, indexes[i], fx.tune_users, NULL, 0, 0, 0, &err);
        if (rc) fail_msg("%s: %s", indexes[i], err.message);
        assert_string_equal(rep.recall.questions, "users");
        assert_true(rep.recall_reached);
        assert_int_equal(rep.recall_count, 2);
        assert_int_equal(rep.recalls[0].k, 10);
        assert_int_equal(rep.recalls[1].k, 100);
        check_holds(out, indexes[i]);
    }
}

/* --tune-vectors: the same with the questions from a file and no users
 * stored; the bundle says the questions were query vectors. */
static void test_tune_vectors(void **state)
{
    (void)state;
    char out[512];
    annb_build_report rep;
    annb_error err;
    tu_path(out, fx.dir, "tunev.annb");
    assert_int_equal(build(&rep, out, "ivf", NULL, fx.tune_users, 0, 0, 0, &err), ANNB_OK);
    assert_string_equal(rep.recall.questions, "queries");
    assert_int_equal(rep.recall.queries, HALF);
    assert_int_equal(rep.users, 0);
    check_holds(out, "ivf, --tune-vectors");
    annb_bundle *b = tu_open(out, 0);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    assert_string_equal(info.recall.questions, "queries");
    assert_non_null(strstr(annb_bundle_provenance(b), "\ntune_vectors_content_sha256="));
    annb_close(b);
    /* A file of another dimension is refused. */
    char bad[512];
    tu_write_text(tu_path(bad, fx.dir, "short.csv"), "id,features\n1,\"[1, 2]\"\n");
    assert_int_equal(build(&rep, out, "ivf", NULL, bad, 0, 0, 0, &err), ANNB_E_DIMENSION);
}

/* Without query vectors the build measures item-to-item questions and says
 * so; the audit on real user vectors then tells the truth about them, and
 * the parameter it suggests gives unseen users the target. */
static void test_items_only_and_audit(void **state)
{
    (void)state;
    char out[512];
    annb_build_report rep;
    annb_error err;
    tu_path(out, fx.dir, "items-only.annb");
    assert_int_equal(build(&rep, out, "ivf", NULL, NULL, 0, 0, 0, &err), ANNB_OK);
    assert_string_equal(rep.recall.questions, "items");
    annb_bundle *b = tu_open(out, 0);
    double brute = recall_on_users(b, HALF, USERS, 10, NULL);
    annb_recall_audit a;
    assert_int_equal(annb_recall_audit_run(&a, b, fx.u.vecs + HALF * D, HALF, 10, 0, &err),
                     ANNB_OK);
    print_message("items-only ivf: stored recall@10 %.4f on items (nprobe %u); users get %.4f "
                  "(audit %.4f); audit: nprobe %u reaches %.4f\n", rep.recall.recall,
                  rep.recall.nprobe, brute, a.stored_recall, a.value, a.recall);
    assert_string_equal(a.parameter, "nprobe");
    assert_int_equal(a.stored_value, rep.recall.nprobe);
    assert_int_equal(a.queries, HALF);
    /* The audit's recall is the brute force's (same definition; ties aside). */
    assert_true(fabs(a.stored_recall - brute) <= 0.005);
    assert_true(a.reached); /* IVF-Flat always gets there */
    assert_true(a.recall >= 0.95);
    assert_true(a.value >= 1 && a.value <= a.highest);
    assert_true(a.ms > 0 && a.stored_ms > 0);
    annb_search_opts so = ANNB_SEARCH_OPTS_INIT;
    so.nprobe = a.value;
    assert_true(fabs(recall_on_users(b, HALF, USERS, 10, &so) - a.recall) <= 0.005);
    annb_close(b);
}

/* A target out of reach: the build fails with ANNB_E_RECALL and writes
 * nothing (an existing bundle stays as it was); allowed, it stores the
 * parameter with the best recall measured, which an audit on the same
 * questions confirms is the best over the knob's whole range. */
static void test_unreachable_target(void **state)
{
    (void)state;
    char out[512];
    annb_build_report rep;
    annb_error err;
    tu_path(out, fx.dir, "keep.annb");
    tu_write_text(out, "previous bundle");
    size_t entries = tu_dir_entry_count(fx.dir);
    /* 2 bytes per vector of 24 dimensions: the codes cannot rank well
     * enough, even re-ranked, for recall 0.999. */
    int rc = build(&rep, out, "IVF32,PQ2np", fx.tune_users, NULL, 0.999, 0, 0, &err);
    assert_int_equal(rc, ANNB_E_RECALL);
    print_message("refused: %s\n", err.message);
    assert_non_null(strstr(err.message, "below the target 0.999"));
    assert_non_null(strstr(err.message, "--allow-low-recall"));
    assert_int_equal(tu_dir_entry_count(fx.dir), entries);
    size_t size;
    uint8_t *kept = tu_read_file(out, &size);
    assert_true(size == 15 && memcmp(kept, "previous bundle", 15) == 0);
    free(kept);

    assert_int_equal(build(&rep, out, "IVF32,PQ2np", fx.tune_users, NULL, 0.999, 1, 0, &err),
                     ANNB_OK);
    assert_false(rep.recall_reached);
    annb_bundle *b = tu_open(out, 0);
    annb_recall_audit a;
    /* The build's own questions (all HALF of them were sampled). */
    assert_int_equal(annb_recall_audit_run(&a, b, fx.u.vecs, HALF, 10, 0.999, &err), ANNB_OK);
    print_message("allowed: stored nprobe %u recall %.4f; audit's best nprobe %u recall %.4f\n",
                  rep.recall.nprobe, rep.recall.recall, a.value, a.recall);
    assert_false(a.reached);
    assert_int_equal(a.stored_value, rep.recall.nprobe);
    assert_true(fabs(a.stored_recall - rep.recall.recall) < 1e-9);
    assert_true(a.stored_recall >= a.recall - 1e-9); /* nothing measured was better */
    annb_close(b);
}

/* auto over a memory budget tries compressed codes, and moves on (finally
 * to exact search) when they cannot reach the target: in dimension 31 (a
 * prime) auto's PQ gets one byte per vector, which cannot rank 5000
 * random vectors, even re-ranked. */
static void test_auto_falls_back(void **state)
{
    (void)state;
    char csv[512], out[512];
    annb_build_report rep;
    annb_error err = {0};
    tu_data t;
    int64_t *ids = malloc(5000 * sizeof *ids);
    tu_scattered_ids(ids, 5000, &fx.r);
    tu_data_make(&t, 5000, 31, ids, &fx.r);
    tu_write_spark_csv(tu_path(csv, fx.dir, "random.csv"), &t);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    o.index = "auto";
    o.target_recall = 0.99;
    o.max_memory = 256u << 10; /* 5000 x 31 floats are 620 KB; PQ and SQ8 codes fit */
    o.tune_queries = 200;
    assert_int_equal(annb_build(&rep, csv, NULL, tu_path(out, fx.dir, "auto.annb"), &o, &err),
                     ANNB_OK);
    print_message("auto: %s; passed over: %s\n", rep.index, rep.auto_note);
    assert_true(rep.recall_reached);
    assert_true(rep.recall.recall >= 0.99 || !rep.recall.measured);
    assert_true(strcmp(rep.index, "IVF64,SQ8") == 0 || strcmp(rep.index, "Flat") == 0);
    assert_non_null(strstr(rep.auto_note, "IVF64,PQ1np reaches recall@"));
    /* Allowed a lower recall, auto still keeps trying: only the last
     * candidate may fall short. */
    o.allow_low_recall = 1;
    assert_int_equal(annb_build(&rep, csv, NULL, out, &o, &err), ANNB_OK);
    assert_true(rep.recall_reached);
    tu_data_free(&t);
    free(ids);
}

/* A search of k results uses the parameter tuned for the smallest k
 * measured at or above it (SPEC 6.16). */
static void test_parameter_by_k(void **state)
{
    (void)state;
    char out[512];
    annb_build_report rep;
    annb_error err;
    tu_path(out, fx.dir, "byk.annb");
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    uint32_t extra[] = {40};
    o.index = "ivf";
    o.users_path = fx.tune_users;
    o.recall_ks = extra;
    o.recall_k_count = 1;
    assert_int_equal(annb_build(&rep, fx.items, NULL, out, &o, &err), ANNB_OK);
    assert_int_equal(rep.recall_count, 3);
    annb_bundle *b = tu_open(out, 0);
    annb_recall_info r[3];
    for (uint32_t i = 0; i < 3; i++) assert_int_equal(annb_recall_get(&r[i], b, i), ANNB_OK);
    assert_int_equal(annb_recall_get(&r[0], b, 3), ANNB_E_INVALID);
    assert_true(r[0].k == 10 && r[1].k == 40 && r[2].k == 100);
    print_message("nprobe by k: 10 -> %u, 40 -> %u, 100 -> %u\n", r[0].nprobe, r[1].nprobe,
                  r[2].nprobe);
    /* k -> the row used: 5 and 10 -> k 10; 11 and 40 -> 40; 41, 100, 300 -> 100. */
    static const size_t ks[] = {5, 10, 11, 40, 41, 100, 300};
    static const int row[] = {0, 0, 1, 1, 2, 2, 2};
    annb_hit *dflt = malloc(300 * sizeof *dflt), *expl = malloc(300 * sizeof *expl);
    for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
        annb_search_opts so = ANNB_SEARCH_OPTS_INIT;
        so.nprobe = r[row[c]].nprobe;
        for (size_t i = HALF; i < HALF + 20; i++) {
            const float *q = fx.u.vecs + i * D;
            assert_int_equal(annb_search(b, q, 1, ks[c], NULL, dflt), ANNB_OK);
            assert_int_equal(annb_search(b, q, 1, ks[c], &so, expl), ANNB_OK);
            for (size_t j = 0; j < ks[c]; j++) assert_true(dflt[j].id == expl[j].id);
        }
    }
    free(dflt);
    free(expl);
    annb_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holds_on_unseen_users),
        cmocka_unit_test(test_tune_vectors),
        cmocka_unit_test(test_items_only_and_audit),
        cmocka_unit_test(test_unreachable_target),
        cmocka_unit_test(test_auto_falls_back),
        cmocka_unit_test(test_parameter_by_k),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
