/* test_replace.c - a service keeps answering from an open bundle while a new
 * build is renamed over the same path (the publish pattern of docs/publishing.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annb.h"
#include "testutil.h"

/* Asserts that the top-k of bundle b for query q equals the brute force over t. */
static void assert_answers(const annb_bundle *b, const tu_data *t, const float *q, size_t k)
{
    annb_hit hits[8];
    size_t count;
    assert_true(k <= 8);
    assert_int_equal(annb_search(b, q, 1, k, NULL, hits), ANNB_OK);
    tu_ranked *ref = tu_brute_force(&count, t, q, ANNB_METRIC_IP, NULL, 0);
    for (size_t j = 0; j < k; j++) {
        assert_true(tu_data_has(t, hits[j].id));
        assert_true(tu_close(hits[j].score, ref[j].score, TU_SCORE_EPS));
    }
    free(ref);
}

static void test_rename_over_open_bundle(void **state)
{
    (void)state;
    tu_rng r;
    tu_data old_items, new_items;
    char dir[256], old_csv[512], new_csv[512], bundle[512], staged[512];
    tu_items_setup(&old_items, &r, dir, old_csv, 200, 8, 11);
    /* Different vectors and IDs for the new build. */
    int64_t ids[150];
    for (size_t i = 0; i < 150; i++) ids[i] = 1000000 + (int64_t)i * 7;
    tu_data_make(&new_items, 150, 8, ids, &r);
    tu_write_spark_csv(tu_path(new_csv, dir, "new.csv"), &new_items);

    annb_error err = {0};
    tu_path(bundle, dir, "live.annb");
    assert_int_equal(annb_build(NULL, old_csv, NULL, bundle, NULL, &err), ANNB_OK);
    annb_bundle *serving = NULL;
    assert_int_equal(annb_open(&serving, bundle, NULL, &err), ANNB_OK);

    float q[8];
    for (int j = 0; j < 8; j++) q[j] = (float)tu_rng_uniform(&r, -1, 1);
    assert_answers(serving, &old_items, q, 5);

    /* Publish: build beside the live file under another name, then rename. */
    tu_path(staged, dir, "live.annb.new");
    assert_int_equal(annb_build(NULL, new_csv, NULL, staged, NULL, &err), ANNB_OK);
    assert_int_equal(rename(staged, bundle), 0);

    /* The open handle still answers from the old build, correctly... */
    assert_answers(serving, &old_items, q, 5);
    /* ...and a fresh open sees the new one. */
    annb_bundle *fresh = NULL;
    assert_int_equal(annb_open(&fresh, bundle, NULL, &err), ANNB_OK);
    assert_answers(fresh, &new_items, q, 5);

    /* annb_build straight over the live path is atomic too. */
    assert_int_equal(annb_build(NULL, old_csv, NULL, bundle, NULL, &err), ANNB_OK);
    assert_answers(fresh, &new_items, q, 5);
    assert_answers(serving, &old_items, q, 5);

    annb_close(serving);
    annb_close(fresh);
    tu_data_free(&old_items);
    tu_data_free(&new_items);
    tu_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rename_over_open_bundle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
