/*
 * test_build_arrays - annb_build_arrays (the Python package's build path):
 * the same bytes as annb_build on a file of the same values (items alone;
 * with users and interactions; cosine with an IVF index; shards), the
 * arrays checked as a file's rows are, with the row in the message, and the
 * arguments that do not fit refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "annb.h"
#include "testutil.h"

typedef struct fixture {
    char dir[256], items_csv[512], users_csv[512], seen[512];
    tu_data items, users;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    tu_rng r;
    tu_items_setup(&f->items, &r, f->dir, f->items_csv, 500, 12, 42);
    int64_t uids[80];
    for (size_t i = 0; i < 80; i++) uids[i] = (int64_t)(i * 37 + 5);
    tu_rng_shuffle(&r, uids, 80, sizeof uids[0]);
    tu_data_make(&f->users, 80, 12, uids, &r);
    tu_write_spark_csv(tu_path(f->users_csv, f->dir, "users.csv"), &f->users);
    /* each user saw a few items, named by ID */
    FILE *s = fopen(tu_path(f->seen, f->dir, "ratings.csv"), "w");
    fprintf(s, "userId,movieId,rating,timestamp\n");
    for (size_t u = 0; u < 80; u++)
        for (size_t j = 0; j < u % 7; j++)
            fprintf(s, "%lld,%lld,4.0,1\n", (long long)uids[u],
                    (long long)f->items.ids[(u * 13 + j * 101) % 500]);
    fclose(s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_data_free(&f->items);
    tu_data_free(&f->users);
    tu_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static annb_matrix matrix(const tu_data *t)
{
    return (annb_matrix){t->ids, t->vecs, t->n, t->d};
}

static void sha(char hex[65], const char *path)
{
    annb_error err;
    assert_int_equal(annb_file_sha256(hex, path, &err), ANNB_OK);
}

/* annb_build on the CSVs and annb_build_arrays on the arrays give the same bytes. */
static void same_bytes(fixture *f, int with_users, annb_build_opts *o)
{
    char a[512], b[512], ha[65], hb[65];
    annb_error err;
    annb_build_report ra, rb;
    tu_path(a, f->dir, "file.annb");
    tu_path(b, f->dir, "arrays.annb");
    o->users_path = with_users ? f->users_csv : NULL;
    o->interactions_path = with_users ? f->seen : NULL;
    int rc = annb_build(&ra, f->items_csv, NULL, a, o, &err);
    assert_int_equal(rc, ANNB_OK);
    o->users_path = NULL;
    annb_matrix it = matrix(&f->items), us = matrix(&f->users);
    rc = annb_build_arrays(&rb, &it, with_users ? &us : NULL, NULL, b, o, &err);
    if (rc) fail_msg("%s", err.message);
    sha(ha, a);
    sha(hb, b);
    assert_string_equal(ha, hb);
    assert_int_equal(ra.items, rb.items);
    assert_int_equal(ra.users, rb.users);
    assert_int_equal(ra.interactions, rb.interactions);
    assert_int_equal(ra.bundle_bytes, rb.bundle_bytes);
}

static void test_same_bytes_as_files(void **state)
{
    fixture *f = *state;
    annb_build_opts o;
    annb_build_opts_init(&o);
    same_bytes(f, 0, &o);
    same_bytes(f, 1, &o);
    o.metric = ANNB_METRIC_COSINE;
    o.index = "IVF8,Flat";
    same_bytes(f, 1, &o);
    annb_build_opts_init(&o);
    o.shard_index = 1;
    o.shard_count = 3;
    same_bytes(f, 0, &o);
}

static void expect_refused(fixture *f, const annb_matrix *it, const annb_matrix *us,
                           const annb_build_opts *o, int code, const char *message)
{
    char out[512];
    annb_error err;
    annb_build_report rep;
    tu_path(out, f->dir, "refused.annb");
    int rc = annb_build_arrays(&rep, it, us, NULL, out, o, &err);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    if (!strstr(err.message, message)) fail_msg("message \"%s\" lacks \"%s\"", err.message, message);
    FILE *x = fopen(out, "rb");
    assert_null(x); /* nothing written */
}

static void test_bad_arrays(void **state)
{
    fixture *f = *state;
    size_t n = f->items.n, d = f->items.d;
    int64_t *ids = malloc(n * sizeof *ids);
    float *v = malloc(n * d * sizeof *v);
    memcpy(ids, f->items.ids, n * sizeof *ids);
    memcpy(v, f->items.vecs, n * d * sizeof *v);
    annb_matrix m = {ids, v, n, (uint32_t)d};
    char msg[160];

    float keepv = v[7 * d + 3];
    v[7 * d + 3] = NAN;
    snprintf(msg, sizeof msg, "items: row 7 (ID %lld), value 3: expected a finite float32",
             (long long)ids[7]);
    expect_refused(f, &m, NULL, NULL, ANNB_E_INPUT, msg);
    v[7 * d + 3] = INFINITY;
    expect_refused(f, &m, NULL, NULL, ANNB_E_INPUT, "found inf");
    v[7 * d + 3] = 1e30f;
    expect_refused(f, &m, NULL, NULL, ANNB_E_INPUT, "squared norm");
    v[7 * d + 3] = keepv;

    int64_t keep = ids[9];
    ids[9] = ids[2];
    snprintf(msg, sizeof msg, "items: row 9: expected unique IDs, found ID %lld again (first in "
             "row 2)", (long long)ids[2]);
    expect_refused(f, &m, NULL, NULL, ANNB_E_INPUT, msg);
    ids[9] = ANNB_ID_NONE;
    expect_refused(f, &m, NULL, NULL, ANNB_E_INPUT, "row 9: ID -9223372036854775808 is reserved");
    ids[9] = keep;

    annb_matrix bad = m;
    bad.dimension = 5000;
    expect_refused(f, &bad, NULL, NULL, ANNB_E_LIMIT, "5000 dimensions");
    bad = m;
    bad.count = 0;
    expect_refused(f, &bad, NULL, NULL, ANNB_E_INVALID, "at least one row");
    bad = m;
    bad.ids = NULL;
    expect_refused(f, &bad, NULL, NULL, ANNB_E_INVALID, "items");
    expect_refused(f, NULL, NULL, NULL, ANNB_E_INVALID, "the items are required");

    annb_matrix us = matrix(&f->users);
    us.dimension = 6; /* the first half of the same floats, as 6-wide rows */
    expect_refused(f, &m, &us, NULL, ANNB_E_DIMENSION, "users: user vectors have 6 values, the items 12");
    us = matrix(&f->users);
    annb_build_opts o;
    annb_build_opts_init(&o);
    o.users_path = f->users_csv;
    expect_refused(f, &m, &us, &o, ANNB_E_INVALID, "users given twice");
    annb_build_opts_init(&o);
    o.ids_path = f->items_csv;
    expect_refused(f, &m, NULL, &o, ANNB_E_INVALID, "the arrays hold the IDs");
    annb_build_opts_init(&o);
    o.interactions_path = f->seen;
    expect_refused(f, &m, NULL, &o, ANNB_E_INVALID, "interactions need the users");
    annb_build_opts_init(&o);
    o.vector_column = "features"; /* would be ignored: refused */
    expect_refused(f, &m, NULL, &o, ANNB_E_INVALID, "column options are for files");
    annb_build_opts_init(&o);
    o.user_id_column = "id";
    expect_refused(f, &m, &us, &o, ANNB_E_INVALID, "column options are for files");

    /* the arrays are not modified: the good ones build */
    char out[512];
    annb_error err;
    assert_int_equal(annb_build_arrays(NULL, &m, &us, NULL, tu_path(out, f->dir, "ok.annb"), NULL,
                                       &err), ANNB_OK);
    assert_memory_equal(ids, f->items.ids, n * sizeof *ids);
    assert_memory_equal(v, f->items.vecs, n * d * sizeof *v);
    free(ids);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_files),
        cmocka_unit_test(test_bad_arrays),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
