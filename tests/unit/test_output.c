/* test_output.c - what reaches clients can be parsed (issue 9): clean text
 * (annb_text_char, annb_text_repair), capped request lines
 * (annb_serve_read_line), serve answers that are valid UTF-8 and JSON with
 * null for a score that is not finite, and builds that refuse vectors whose
 * scores could overflow float. */
#define _POSIX_C_SOURCE 200809L /* fmemopen */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- clean text ---- */

static void test_text_char(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        int control;
    } cases[] = {
        {"a", 1, 0},           {"\x1f", 1, 1},          {"\x1b]0;", 1, 1},     {"\x7f", 1, 1},
        {" ", 1, 0},           {"~", 1, 0},             {"\xc2\x80", 2, 1},    {"\xc2\x9f", 2, 1},
        {"\xc2\xa0", 2, 0},    {"\xc3\xa9", 2, 0},      {"\xe2\x82\xac", 3, 0}, {"\xf0\x9f\x98\x80", 4, 0},
        {"\x80", 0, 0},        {"\x9b", 0, 0},          {"\xc0\xaf", 0, 0},    {"\xc1\xbf", 0, 0},
        {"\xe0\x80\xaf", 0, 0}, {"\xed\xa0\x80", 0, 0}, {"\xf4\x90\x80\x80", 0, 0},
        {"\xf5\x80\x80\x80", 0, 0}, {"\xff", 0, 0},      {"\xe2\x82", 0, 0},    {"\xc3(", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int control = -1;
        size_t len = annb_text_char(cases[i].s, strlen(cases[i].s), &control);
        if (len != cases[i].len || control != cases[i].control)
            fail_msg("case %zu: length %zu control %d, want %zu and %d", i, len, control,
                     cases[i].len, cases[i].control);
    }
    /* NUL is C0 (a title must not hold one); n cuts a sequence short. */
    int control = 0;
    assert_int_equal(annb_text_char("", 1, &control), 1);
    assert_int_equal(control, 1);
    assert_int_equal(annb_text_char("\xc3\xa9", 1, NULL), 0);
    assert_int_equal(annb_text_char("a", 0, NULL), 0);
}

/* Every byte of s belongs to a well-formed character. */
static int valid_utf8(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0, len; i < n; i += len)
        if (!(len = annb_text_char(s + i, n - i, NULL))) return 0;
    return 1;
}

static void test_text_repair(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"Toy Story (1995)", "Toy Story (1995)"},
        {"Mis\xc3\xa9rables", "Mis\xc3\xa9rables"},
        {"T\xff\xc0 S", "T\xef\xbf\xbd\xef\xbf\xbd S"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"ESC \x1b kept", "ESC \x1b kept"}, /* JSON writers escape controls */
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *fixed = annb_text_repair(cases[i][0]);
        assert_non_null(fixed);
        assert_string_equal(fixed, cases[i][1]);
        assert_true(valid_utf8(fixed));
        annb_free(fixed);
    }
    assert_null(annb_text_repair(NULL));
}

/* ---- request lines ---- */

static void test_read_line(void **state)
{
    (void)state;
    static char text[] = "{\"a\":1}\n\r\n12345\n123456\r\n1234567\n\n12345\r\r\nlast";
    FILE *in = fmemopen(text, sizeof text - 1, "r");
    assert_non_null(in);
    static const struct {
        int rc;
        const char *line;
    } want[] = {
        {ANNB_E_LIMIT, NULL}, {1, ""}, {1, "12345"}, {ANNB_E_LIMIT, NULL}, {ANNB_E_LIMIT, NULL},
        {1, ""}, {ANNB_E_LIMIT, NULL}, /* "12345\r\r": one \r is the line end */
        {1, "last"}, {0, NULL}, {0, NULL},
    };
    char *line = NULL;
    size_t cap = 0, len;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int rc = annb_serve_read_line(in, 5, &line, &cap, &len);
        if (rc != want[i].rc) fail_msg("line %zu: %d, want %d", i + 1, rc, want[i].rc);
        if (rc == 1) {
            assert_int_equal(len, strlen(want[i].line));
            assert_string_equal(line, want[i].line);
        }
        assert_true(cap <= 5 + 3);
    }
    fclose(in);
    free(line);
    assert_int_equal(annb_serve_read_line(NULL, 5, &line, &cap, &len), ANNB_E_INVALID);
}

/* A 16 MiB line with a cap of 1 KiB: read to its end, never held; the
 * next line is read whole. */
static void test_read_line_huge(void **state)
{
    (void)state;
    size_t big = (size_t)16 << 20;
    char *text = malloc(big + 16);
    assert_non_null(text);
    memset(text, 'a', big);
    memcpy(text + big, "\n{\"k\":1}\n", 9);
    FILE *in = fmemopen(text, big + 9, "r");
    assert_non_null(in);
    char *line = NULL;
    size_t cap = 0, len;
    assert_int_equal(annb_serve_read_line(in, 1024, &line, &cap, &len), ANNB_E_LIMIT);
    assert_true(cap <= 1024 + 3);
    assert_int_equal(annb_serve_read_line(in, 1024, &line, &cap, &len), 1);
    assert_string_equal(line, "{\"k\":1}");
    assert_int_equal(annb_serve_read_line(in, 1024, &line, &cap, &len), 0);
    fclose(in);
    free(line);
    free(text);
    char *answer = annb_serve_too_large(1024);
    assert_string_equal(answer, "{\"id\":null,\"error\":{\"code\":\"too_large\",\"message\":"
                                "\"request line of more than 1024 bytes\"}}");
    annb_free(answer);
}

/* ---- serve answers ---- */

typedef struct fixture {
    tu_data t;
    char dir[256], csv[512], bundle[512];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    tu_rng r;
    annb_build_report rep;
    tu_items_setup(&fx->t, &r, fx->dir, fx->csv, 20, 4, 9);
    tu_build(&rep, fx->csv, NULL, tu_path(fx->bundle, fx->dir, "b.annb"), ANNB_METRIC_IP, "flat");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tu_data_free(&fx->t);
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

/* A copy of the bundle with float `index` of VECS set to v, checksums
 * recomputed (the damage is only in the meaning). */
static void damage_vecs(const char *in, const char *out, size_t index, float v)
{
    size_t size;
    uint8_t *data = tu_read_file(in, &size);
    uint32_t n = (uint32_t)tu_get_le(data + TU_HDR_SECTION_COUNT, 4), i = 0;
    while (i < n && memcmp(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE, "VECS", 4)) i++;
    assert_true(i < n);
    uint64_t off = tu_get_le(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE + TU_ENTRY_OFFSET, 8);
    memcpy(data + off + 4 * index, &v, 4);
    assert_int_equal(tu_section_rehash(data, size, i), 0);
    tu_write_file(out, data, size);
    free(data);
}

static void test_serve_null_scores(void **state)
{
    fixture *fx = *state;
    const float values[] = {NAN, INFINITY, -INFINITY};
    for (size_t v = 0; v < 3; v++) {
        char path[512], req[128];
        damage_vecs(fx->bundle, tu_path(path, fx->dir, "d.annb"), 0, values[v]);
        annb_bundle *b = tu_open(path, 0); /* bulk sections unverified at open */
        annb_error err = {0};
        assert_int_equal(annb_verify(b, &err), ANNB_E_CORRUPT);
        int64_t sorted = INT64_MAX; /* row 0 is the smallest ID; ask another item */
        for (size_t i = 0; i < fx->t.n; i++)
            if (fx->t.ids[i] < sorted) sorted = fx->t.ids[i];
        int64_t asked = fx->t.ids[0] == sorted ? fx->t.ids[1] : fx->t.ids[0];
        snprintf(req, sizeof req, "{\"item\":%lld,\"k\":19}", (long long)asked);
        char *answer = NULL;
        assert_int_equal(annb_serve_request((const annb_bundle *const *)&b, 1, req, &answer), ANNB_OK);
        cJSON *root = cJSON_Parse(answer);
        if (!root) fail_msg("not JSON: %s", answer);
        const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results"), *r;
        int nulls = 0, count = 0;
        cJSON_ArrayForEach(r, results)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
            const cJSON *score = cJSON_GetObjectItemCaseSensitive(r, "score");
            count++;
            if (cJSON_IsNull(score)) {
                nulls++;
                assert_true(id->valuedouble == (double)sorted);
            } else {
                assert_true(cJSON_IsNumber(score) && isfinite(score->valuedouble));
            }
        }
        assert_int_equal(count, 19);
        assert_int_equal(nulls, 1);
        cJSON_Delete(root);
        annb_free(answer);
        annb_close(b);
    }
}

/* Bytes that are not UTF-8 in a request come back in the answer (the id
 * echoed, a key quoted in the message): the answer replaces them. */
static void test_serve_answer_utf8(void **state)
{
    fixture *fx = *state;
    annb_bundle *b = tu_open(fx->bundle, 0);
    static const char *const requests[] = {
        "{\"id\":\"\xff\xfe\",\"item\":1}",
        "{\"\xc3\x28\":1}",
        "{\"id\":[\"\xed\xa0\x80\"],\"vector\":[1,2,3,4],\"genres\":[\"\xff\"]}",
    };
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        char *answer = NULL;
        annb_serve_request((const annb_bundle *const *)&b, 1, requests[i], &answer);
        assert_non_null(answer);
        if (!valid_utf8(answer)) fail_msg("request %zu: answer not UTF-8: %s", i, answer);
        assert_non_null(strstr(answer, "\\ufffd")); /* the replacement, escaped: ASCII */
        cJSON *root = cJSON_Parse(answer);
        assert_non_null(root);
        cJSON_Delete(root);
        annb_free(answer);
    }
    annb_close(b);
}

/* ---- builds: scores that could overflow ---- */

static void test_build_refuses_overflow(void **state)
{
    fixture *fx = *state;
    char csv[512], out[512];
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    /* 1e19 twice: squared norm 2e38, finite values, ip with itself inf. */
    tu_write_text(tu_path(csv, fx->dir, "huge.csv"), "id,features\n1,\"[0.5,0.25]\"\n2,\"[1e19,1e19]\"\n");
    int rc = annb_build(&rep, csv, NULL, tu_path(out, fx->dir, "huge.annb"), &o, &err);
    assert_int_equal(rc, ANNB_E_INPUT);
    if (!strstr(err.message, "huge.csv:3:1: expected a vector whose squared norm is at most"))
        fail_msg("message: %s", err.message);
    assert_non_null(strstr(err.message, "(ID 2)"));
    /* The bound: FLT_MAX / 4 (8.5e37) refused just above, built just below. */
    tu_write_text(csv, "id,features\n1,\"[0.5,0.25]\"\n2,\"[9.3e18,0]\"\n");
    assert_int_equal(annb_build(&rep, csv, NULL, out, &o, &err), ANNB_E_INPUT);
    tu_write_text(csv, "id,features\n1,\"[0.5,0.25]\"\n2,\"[9.2e18,0]\"\n");
    assert_int_equal(annb_build(&rep, csv, NULL, out, &o, &err), ANNB_OK);
    /* The largest allowed vectors give finite scores in every metric. */
    annb_bundle *b = tu_open(out, 0);
    float q[2] = {-9.2e18f, 0};
    annb_hit hits[2];
    annb_search_opts so = ANNB_SEARCH_OPTS_INIT;
    assert_int_equal(annb_search(b, q, 1, 2, &so, hits), ANNB_OK);
    assert_true(isfinite(hits[0].score) && isfinite(hits[1].score));
    annb_close(b);
    o.metric = ANNB_METRIC_L2;
    assert_int_equal(annb_build(&rep, csv, NULL, out, &o, &err), ANNB_OK);
    b = tu_open(out, 0);
    assert_int_equal(annb_search(b, q, 1, 2, &so, hits), ANNB_OK);
    assert_true(isfinite(hits[0].score) && isfinite(hits[1].score));
    annb_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_char),
        cmocka_unit_test(test_text_repair),
        cmocka_unit_test(test_read_line),
        cmocka_unit_test(test_read_line_huge),
        cmocka_unit_test_setup_teardown(test_serve_null_scores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve_answer_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_refuses_overflow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
