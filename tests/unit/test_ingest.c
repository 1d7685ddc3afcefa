/*
 * test_ingest.c - embeddings and catalog readers (lib/embeddings.c,
 * lib/catalog.c, lib/csvread.c).
 *
 * Each case writes its input into a temporary directory and reads it back,
 * so the bytes under test sit next to the expectation. The checked-in
 * fixtures under $ANNB_TEST_DATA/ingest are read too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ingest.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    char dir[256];
} fixture;

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    tu_tmpdir_make(fx->dir);
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

/* Writes size bytes (strlen(text) when size is 0) to dir/name; path out. */
static const char *put(char path[512], void **state, const char *name, const char *text, size_t size)
{
    const fixture *fx = *state;
    tu_path(path, fx->dir, name);
    tu_write_file(path, text, size ? size : strlen(text));
    return path;
}

static int read_embeddings(annb_embeddings *e, annb_error *err, void **state, const char *name,
                           const char *text, size_t size)
{
    char path[512];
    memset(err, 0, sizeof *err);
    return annb_embeddings_read(e, put(path, state, name, text, size), err);
}

static void expect_ok(int rc, const annb_error *err)
{
    if (rc != ANNB_OK) fail_msg("expected success, got %d: %s", rc, err->message);
}

static void expect_vector(const annb_embeddings *e, uint64_t row, int64_t id, const double *want)
{
    assert_int_equal(e->ids[row], id);
    for (uint32_t j = 0; j < e->dimension; j++)
        if (e->vectors[row * e->dimension + j] != (float)want[j])
            fail_msg("row %llu value %u: got %.9g, want %.9g", (unsigned long long)row, j,
                     (double)e->vectors[row * e->dimension + j], (double)(float)want[j]);
}

/* ------------------------------------------------------------------------ */
/* Good embeddings                                                           */
/* ------------------------------------------------------------------------ */

/* A good input and everything that must come out of it. */
typedef struct good_case {
    const char *name;
    const char *text;
    uint64_t count;
    uint32_t dimension;
    int64_t ids[4];
    double values[16]; /* count * dimension, compared as floats, exactly */
} good_case;

static const good_case good_embeddings[] = {
    /* Unsorted IDs with gaps, negative IDs, exponents, spacing variants,
     * and the decimal that rounds to FLT_MAX. */
    {"spark", "id,features\n"
              "10,\"[0.2586649, 0.3560594, -1.5e-3]\"\n"
              "-7,\"[1, 2E2, -0.0]\"\n"
              "3,\"[ 1e-5 ,0.5,3.4028235e38]\"\n"
              "-9223372036854775807,\"[-1.25,0,7]\"\n",
     4, 3, {10, -7, 3, -INT64_MAX},
     {0.2586649, 0.3560594, -1.5e-3, 1, 200, -0.0, 1e-5, 0.5, FLT_MAX, -1.25, 0, 7}},
    {"wide", "movieId,f0,f1,f2,f3\n5,1.5,-2,3e-2,+4\n1, 0 ,.5,-.25e1,1E+1\n",
     2, 4, {5, 1}, {1.5, -2, 3e-2, 4, 0, 0.5, -2.5, 10}},
    /* The tab in the header picks the delimiter; then commas inside the JSON
     * array need no quotes. */
    {"spark TSV", "userId\tfeatures\n1\t[0.5, 0.25]\n2\t\"[-1, 1]\"\n", 2, 2, {1, 2}, {0.5, 0.25, -1, 1}},
    {"wide TSV", "ID\ta\tb\n4\t1\t2\n", 1, 2, {4}, {1, 2}},
    {"BOM and CRLF", "\xef\xbb\xbfid,features\r\n1,\"[1,2]\"\r\n2,\"[3,4]\"\r\n", 2, 2, {1, 2}, {1, 2, 3, 4}},
    {"no final line break", "\xef\xbb\xbfid,features\r\n1,\"[1,2]\"\r\n2,\"[3,4]\"", 2, 2, {1, 2}, {1, 2, 3, 4}},
    {"blank lines at the end", "id,features\n1,\"[1,2]\"\n2,\"[3,4]\"\n\n  \r\n\n", 2, 2, {1, 2}, {1, 2, 3, 4}},
    {"CR line ends", "id,features\r1,\"[1,2]\"\r2,\"[3,4]\"\r", 2, 2, {1, 2}, {1, 2, 3, 4}},
};

static void test_good_embeddings(void **state)
{
    for (size_t i = 0; i < sizeof good_embeddings / sizeof good_embeddings[0]; i++) {
        const good_case *c = &good_embeddings[i];
        annb_embeddings e;
        annb_error err;
        int rc = read_embeddings(&e, &err, state, "good.csv", c->text, 0);
        if (rc != ANNB_OK) fail_msg("case \"%s\": got %d \"%s\"", c->name, rc, err.message);
        if (e.count != c->count || e.dimension != c->dimension)
            fail_msg("case \"%s\": %llu rows of %u, want %llu of %u", c->name,
                     (unsigned long long)e.count, e.dimension, (unsigned long long)c->count,
                     c->dimension);
        for (uint64_t r = 0; r < c->count; r++)
            expect_vector(&e, r, c->ids[r], c->values + r * c->dimension);
        annb_embeddings_release(&e);
        assert_null(e.ids);
        annb_embeddings_release(&e); /* twice is harmless */
    }
    annb_embeddings_release(NULL);
}

/* A program may switch to a locale whose decimal point is ','. */
static void test_decimal_comma_locale(void **state)
{
    static const char *const locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "de_DE"};
    const char *set = NULL;
    for (size_t i = 0; i < sizeof locales / sizeof locales[0] && !set; i++)
        set = setlocale(LC_NUMERIC, locales[i]);
    if (!set || strcmp(localeconv()->decimal_point, ",") != 0) {
        setlocale(LC_NUMERIC, "C");
        skip(); /* no such locale installed */
    }
    annb_embeddings e;
    annb_error err;
    int rc = read_embeddings(&e, &err, state, "locale.csv", "id,a,b\n1,0.5,-2.25e1\n", 0);
    int rc2 = rc;
    if (rc == ANNB_OK) {
        expect_vector(&e, 0, 1, (const double[]){0.5, -22.5});
        annb_embeddings_release(&e);
        rc2 = read_embeddings(&e, &err, state, "locale.csv", "id,features\n1,\"[0.5, 1.5]\"\n", 0);
        if (rc2 == ANNB_OK) expect_vector(&e, 0, 1, (const double[]){0.5, 1.5});
        annb_embeddings_release(&e);
    }
    setlocale(LC_NUMERIC, "C");
    expect_ok(rc, &err);
    expect_ok(rc2, &err);
}

/* Many rows, so fields cross the 1 MiB block boundaries of the reader. */
static void test_large_spark_file(void **state)
{
    const fixture *fx = *state;
    enum { N = 40000, D = 8 };
    tu_rng rng;
    tu_rng_seed(&rng, 42);
    int64_t *ids = malloc(N * sizeof *ids);
    assert_non_null(ids);
    tu_scattered_ids(ids, N, &rng);
    tu_data t;
    tu_data_make(&t, N, D, ids, &rng);
    char path[512];
    tu_write_spark_csv(tu_path(path, fx->dir, "large.csv"), &t);

    annb_embeddings e;
    annb_error err = {0};
    expect_ok(annb_embeddings_read(&e, path, &err), &err);
    assert_int_equal(e.count, N);
    assert_int_equal(e.dimension, D);
    assert_memory_equal(e.ids, t.ids, N * sizeof *ids);
    assert_memory_equal(e.vectors, t.vecs, (size_t)N * D * sizeof(float));
    annb_embeddings_release(&e);
    tu_data_free(&t);
    free(ids);
}

/* A bad value far past the first block still gets its exact line:col. */
static void test_error_position_after_first_block(void **state)
{
    enum { N = 200000 };
    size_t cap = (size_t)N * 24 + 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)sprintf(text + len, "id,a,b\n");
    for (int i = 0; i < N; i++)
        len += (size_t)sprintf(text + len, i == 150000 ? "%d,0.5,oops\n" : "%d,0.5,0.25\n", i);
    assert_true(len > 2u * 1024 * 1024);
    annb_embeddings e;
    annb_error err;
    int rc = read_embeddings(&e, &err, state, "late.csv", text, len);
    free(text);
    assert_int_equal(rc, ANNB_E_INPUT);
    /* row 150000 is on line 150002: "150000,0.5,oops" puts oops at column 12 */
    if (!strstr(err.message, "late.csv:150002:12: expected a number as value 2 of the row, found \"oops\""))
        fail_msg("unexpected message: %s", err.message);
    assert_null(e.ids);
}

/* Every byte of a row (quote, delimiter, CR, LF, digits) lands on the 1 MiB
 * block boundary for one of the shifts; values, IDs and the line:col of an
 * error after the boundary must not change. */
static void test_block_boundary_shifts(void **state)
{
    enum { BLOCK = 1 << 20, ROW = 24 };
    size_t cap = BLOCK + 4096, rows = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned shift = 0; shift < ROW; shift++) {
        size_t len = (size_t)sprintf(text, "id,features\r\n");
        len += (size_t)sprintf(text + len, "0,\"[%*s0.25, 0.5]\"\r\n", (int)shift, ""); /* padding */
        for (rows = 1; len < BLOCK + 2 * ROW; rows++)
            len += (size_t)sprintf(text + len, "%zu,\"[0.25, %zu]\"\r\n", rows, rows % 7);
        len += (size_t)sprintf(text + len, "%zu,\"[0.25, x]\"\r\n", rows);
        annb_embeddings e;
        annb_error err;
        int rc = read_embeddings(&e, &err, state, "shift.csv", text, len);
        char want[128];
        /* the bad row is on line rows + 2; "N,\"[0.25, " puts x after the id */
        snprintf(want, sizeof want, "shift.csv:%zu:%d: expected a JSON array of numbers, found \"x]\"",
                 rows + 2, snprintf(NULL, 0, "%zu", rows) + 10);
        if (rc != ANNB_E_INPUT || !strstr(err.message, want))
            fail_msg("shift %u: got %d \"%s\", want \"%s\"", shift, rc, err.message, want);

        len -= (size_t)sprintf(want, "%zu,\"[0.25, x]\"\r\n", rows); /* drop the bad row */
        rc = read_embeddings(&e, &err, state, "shift.csv", text, len);
        expect_ok(rc, &err);
        assert_int_equal(e.count, rows);
        for (size_t i = 0; i < rows; i++)
            expect_vector(&e, i, (int64_t)i, (const double[]){0.25, i ? (double)(i % 7) : 0.5});
        annb_embeddings_release(&e);
    }
    free(text);
}

/* ------------------------------------------------------------------------ */
/* The shortcut for usual Spark rows and the general path agree              */
/* ------------------------------------------------------------------------ */

/* Reads text both ways (annb_embeddings_read, which takes usual Spark rows
 * by its shortcut, and annb_embeddings_read_general, libcsv and cJSON for
 * every row) and fails unless the code, the message, the IDs and the float
 * bits agree. Returns the code. */
static int expect_both_ways_agree(void **state, const char *what, const char *text, size_t size)
{
    char path[512];
    annb_embeddings a, b;
    annb_error ea, eb;
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    put(path, state, "both.csv", text, size);
    int ra = annb_embeddings_read(&a, path, &ea);
    int rb = annb_embeddings_read_general(&b, path, &eb);
    if (ra != rb || strcmp(ea.message, eb.message) != 0)
        fail_msg("%s: shortcut %d \"%s\", general %d \"%s\"", what, ra, ea.message, rb, eb.message);
    if (ra == ANNB_OK) {
        if (a.count != b.count || a.dimension != b.dimension)
            fail_msg("%s: %llu x %u against %llu x %u", what, (unsigned long long)a.count, a.dimension,
                     (unsigned long long)b.count, b.dimension);
        if (memcmp(a.ids, b.ids, a.count * sizeof *a.ids) != 0) fail_msg("%s: IDs differ", what);
        if (memcmp(a.vectors, b.vectors, a.count * a.dimension * sizeof *a.vectors) != 0)
            fail_msg("%s: vectors differ", what);
    }
    annb_embeddings_release(&a);
    annb_embeddings_release(&b);
    return ra;
}

/* Second rows (the first, which fixes the dimension 2, never takes the
 * shortcut) at the edges of the shortcut's shape: each one taken or
 * declined, both ways must say the same. want: the expected code. */
#define CJSON_DECIDES 1 /* not a code: accepted or not depending on the cJSON build */
static const struct {
    const char *row;
    int want;
} second_rows[] = {
    {"2,\"[1, 2]\"\n", ANNB_OK},
    {"2,\"[1,2]\"\r\n", ANNB_OK},
    {"2,\"[1,2]\"\r", ANNB_OK},
    {"2,\"[1,2]\"", ANNB_OK}, /* no line break at the end of the file */
    {"2,\"  [ 1 ,  2 ]  \"\n", ANNB_OK},
    {"2,\"[1\t,\t2]\"\n", ANNB_OK},
    {"2,\"[1\n,2]\"\n", ANNB_OK},
    {"2,\"[1,2]\" \n", ANNB_OK},
    {" 2,\"[1,2]\"\n", ANNB_OK},
    {"2 ,\"[1,2]\"\n", ANNB_OK},
    {"\"2\",\"[1,2]\"\n", ANNB_OK},
    {"+2,\"[1,2]\"\n", ANNB_OK},
    {"-2,\"[-0,-0.0]\"\n", ANNB_OK},
    {"2,\"[1e5,2E-3]\"\n", ANNB_OK},
    {"2,\"[1e+5,-2.5E+0]\"\n", ANNB_OK},
    {"2,\"[1e-50,2e-45]\"\n", ANNB_OK}, /* underflow: 0 and a subnormal */
    {"2,\"[3.4028235e38,-3.4028235e38]\"\n", ANNB_OK},
    {"2,\"[16777217,33554435]\"\n", ANNB_OK}, /* halfway: ties to even */
    {"2,\"[-6.804300894904020e+24,1]\"\n", ANNB_OK}, /* see test_values_are_strtof */
    {"2,\"[01,2]\"\n", ANNB_OK},   /* cJSON is lenient here: */
    {"2,\"[1.,2]\"\n", ANNB_OK},   /* strtod's grammar, */
    {"2,\"[-.5,2]\"\n", ANNB_OK},  /* after a '-' or a digit */
    {"2,\"[00.5e1,2]\"\n", ANNB_OK},
    /* 63 bytes (taken) and 64 (over the limit of cJSON 1.7.15 as released,
     * which Debian's fix for CVE-2023-26819 lifts) */
    {"2,\"[0.0000000000000000000000000000000000000000000000000000000000001,2]\"\n", ANNB_OK},
    {"2,\"[0.00000000000000000000000000000000000000000000000000000000000001,2]\"\n", CJSON_DECIDES},
    {"2,\"[0.1234567890123456789012345678901234567890,2]\"\n", ANNB_OK},
    {"2,\"[1234567890123456789012345678901234567890,2]\"\n", ANNB_E_INPUT},
    {"2,\"[+1,2]\"\n", ANNB_E_INPUT},
    {"2,\"[.5,2]\"\n", ANNB_E_INPUT},
    {"2,\"[1e,2]\"\n", ANNB_E_INPUT},
    {"2,\"[1e39,2]\"\n", ANNB_E_INPUT},
    {"2,\"[1,1e400]\"\n", ANNB_E_INPUT},
    {"2,\"[3.40282357e38,0]\"\n", ANNB_E_INPUT},
    {"2,\"[1,2,3]\"\n", ANNB_E_INPUT},
    {"2,\"[1]\"\n", ANNB_E_INPUT},
    {"2,\"[]\"\n", ANNB_E_INPUT},
    {"2,\"[1,,2]\"\n", ANNB_E_INPUT},
    {"2,\"[1,2,]\"\n", ANNB_E_INPUT},
    {"2,\"[1 2]\"\n", ANNB_E_INPUT},
    {"2,\"[null,2]\"\n", ANNB_E_INPUT},
    {"2,\"[true,2]\"\n", ANNB_E_INPUT},
    {"2,\"[[1],2]\"\n", ANNB_E_INPUT},
    {"2,\"[1,\"\"2\"\"]\"\n", ANNB_E_INPUT},
    {"2,\"[1,2]\"x\n", ANNB_E_INPUT},
    {"2,\"[1,2]\n", ANNB_E_INPUT},
    {"2,\"[1,2]\",\n", ANNB_E_INPUT},
    {"2,[1,2]\n", ANNB_E_INPUT},
    {"2,\"[1,2]]\"\n", ANNB_E_INPUT},
    {"2,\"[1,2] [3]\"\n", ANNB_E_INPUT},
    {"2,\"[1,2]\"\n\n3,\"[1,2]\"\n", ANNB_E_INPUT},
    {"1,\"[1,2]\"\n", ANNB_E_INPUT}, /* the first row's ID again */
    {"2x,\"[1,2]\"\n", ANNB_OK}, /* a string ID: every ID of the file is then text */
    {"2.5,\"[1,2]\"\n", ANNB_E_INPUT}, /* a number, but no integer */
    {"9223372036854775808,\"[1,2]\"\n", ANNB_E_INPUT},
    {"-9223372036854775808,\"[1,2]\"\n", ANNB_E_INPUT},
    {"-9223372036854775807,\"[1,2]\"\n", ANNB_OK},
    {"00000000000000000000002,\"[1,2]\"\n", ANNB_OK},
    {",\"[1,2]\"\n", ANNB_E_INPUT},
    {"2\n", ANNB_E_INPUT},
    {"2,\"\xef\xbb\xbf[1,2]\"\n", ANNB_OK}, /* cJSON skips a BOM */
};

static void test_shortcut_agrees(void **state)
{
    char text[512];
    for (size_t i = 0; i < sizeof second_rows / sizeof second_rows[0]; i++) {
        const char *row = second_rows[i].row;
        size_t rlen = strlen(row);
        for (int tail = 0; tail < 2; tail++) { /* alone, and before a usual row */
            size_t len = (size_t)sprintf(text, "id,features\n1,\"[0.5, 0.25]\"\n");
            memcpy(text + len, row, rlen);
            len += rlen;
            if (tail && text[len - 1] == '\n') len += (size_t)sprintf(text + len, "7,\"[3, 4]\"\n");
            int rc = expect_both_ways_agree(state, row, text, len);
            if (rc != second_rows[i].want && second_rows[i].want != CJSON_DECIDES)
                fail_msg("row %zu \"%s\": got %d, want %d", i, row, rc, second_rows[i].want);
        }
    }
    assert_int_equal(expect_both_ways_agree(state, "NUL", "id,features\n1,\"[1,2]\"\n2,\"[1,2\0]\"\n", 33),
                     ANNB_E_INPUT);
    /* TSV: the array may go unquoted, its commas are no delimiter */
    assert_int_equal(expect_both_ways_agree(state, "tsv", "id\tfeatures\n1\t[1, 2]\n2\t[3, 4]\n3\t\"[5,6]\"\n", 0),
                     ANNB_OK);
    assert_int_equal(expect_both_ways_agree(state, "tsv bad", "id\tfeatures\n1\t[1, 2]\n2\t[3, 4] x\n", 0),
                     ANNB_E_INPUT);
    assert_int_equal(expect_both_ways_agree(state, "tsv tab", "id\tfeatures\n1\t[1, 2]\n2\t[3,\t4]\n", 0),
                     ANNB_E_INPUT);
    /* the wide form never takes the shortcut, even for an array-like row */
    assert_int_equal(expect_both_ways_agree(state, "wide", "id\tf0\n1\t5\n2\t[5]\n", 0), ANNB_E_INPUT);
}

/* Rows of every shape above, valid ones, over several 1 MiB blocks and
 * with a bad row at the end: both ways agree, row for row. */
static void test_shortcut_agrees_across_blocks(void **state)
{
    static const char *const shapes[] = {
        "%zu,\"[%s, 0.5, -1.25e-3]\"\n", "%zu,\"[%s,0.5,-1.25e-3]\"\r\n", "%zu,\"[ %s , 0.5 , 1 ]\"\r",
        "%zu,\"[%s, 01, 1.]\"\n",       " %zu,\"[%s, 0, 0]\"\n",          "%zu,\"[%s,\t2,3]\"\n",
    };
    static const char *const bad_ends[] = {
        "%zu,\"[%s, 0.5, x]\"\n", "%zu,\"[%s, 1e39, 1]\"\n", "%zu,\"[%s, 1]\"\n", "%zu,\"[%s, 1, 2\n",
        "1,\"[%s, 1, 2]\"\n",     "",
    };
    enum { SIZE = 3 << 20 };
    tu_rng r;
    tu_rng_seed(&r, 3);
    char *text = malloc(SIZE + 256);
    assert_non_null(text);
    for (size_t b = 0; b < sizeof bad_ends / sizeof bad_ends[0]; b++) {
        size_t len = (size_t)sprintf(text, "id,features\n"), row = 1;
        char num[32];
        while (len < SIZE) {
            snprintf(num, sizeof num, "%.9g", (double)tu_rng_uniform(&r, -1e3, 1e3));
            len += (size_t)sprintf(text + len, shapes[tu_rng_below(&r, 6)], row++, num);
        }
        if (bad_ends[b][0] == '1') /* a repeated ID */
            len += (size_t)sprintf(text + len, bad_ends[b], "2");
        else if (bad_ends[b][0])
            len += (size_t)sprintf(text + len, bad_ends[b], row, "2");
        char what[64];
        snprintf(what, sizeof what, "bad end %zu", b);
        int rc = expect_both_ways_agree(state, what, text, len);
        assert_int_equal(rc, bad_ends[b][0] ? ANNB_E_INPUT : ANNB_OK);
    }
    free(text);
}

/* Values are the floats strtof gives, not a double rounded again to float:
 * this decimal is just above a float halfway point, and its nearest double
 * is that halfway point, which would round down to even. Spark form (the
 * first row by the general path, the second by the shortcut) and wide form. */
static void test_values_are_strtof(void **state)
{
    const char *dec = "-6.804300894904020e+24";
    float want = strtof(dec, NULL), twice = (float)strtod(dec, NULL);
    assert_true(want != twice);
    char text[256];
    annb_embeddings e;
    annb_error err;
    snprintf(text, sizeof text, "id,features\n1,\"[%s, 1]\"\n2,\"[%s, 1]\"\n", dec, dec);
    expect_ok(read_embeddings(&e, &err, state, "round.csv", text, 0), &err);
    assert_true(e.vectors[0] == want && e.vectors[2] == want);
    annb_embeddings_release(&e);
    snprintf(text, sizeof text, "id,a\n1,%s\n", dec);
    expect_ok(read_embeddings(&e, &err, state, "round.csv", text, 0), &err);
    assert_true(e.vectors[0] == want);
    annb_embeddings_release(&e);
}

/* ------------------------------------------------------------------------ */
/* Bad embeddings: one table, each case with its code and message            */
/* ------------------------------------------------------------------------ */

typedef struct bad_case {
    const char *name;
    const char *text;
    size_t size; /* 0: strlen(text) */
    int code;
    const char *message; /* a fragment of err.message, with line:col */
} bad_case;

static const bad_case bad_embeddings[] = {
    {"empty file", "", 0, ANNB_E_INPUT, "in.csv:1:1: expected a header"},
    {"BOM only", "\xef\xbb\xbf", 0, ANNB_E_INPUT, "in.csv:1:1: expected a header"},
    {"blank lines only", "\n\n", 0, ANNB_E_INPUT, "in.csv:1:1: expected a header"},
    {"header only", "id,features\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected at least one row after the header, found the end of the file"},
    {"header only, no line break", "id,features", 0, ANNB_E_INPUT, "in.csv:1:12: expected at least one row"},
    {"no id column", "key,features\n1,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:1:1: expected a header naming the ID column (id, word, item_id, movie_id, user_id, "
     "itemId, movieId, userId), found header key,features: pass --id-column key --vector-column "
     "features"},
    {"data without header", "10,\"[1, 2]\"\n", 0, ANNB_E_INPUT,
     "in.csv:1:1: expected a header naming the ID column"},
    {"two ID columns", "user_id,item_id,vector\n1,2,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:1:9: expected one ID column, found header user_id,item_id,vector with two (user_id "
     "and item_id): pass --id-column user_id or --id-column item_id"},
    {"two vector columns", "id,user_embedding,item_embedding\n1,2,3\n", 0, ANNB_E_INPUT,
     "in.csv:1:19: expected one vector column, found header id,user_embedding,item_embedding with "
     "two (user_embedding and item_embedding): pass --vector-column user_embedding or "
     "--vector-column item_embedding"},
    {"a number before string IDs", "word,vector\n12.0,\"[1]\"\nthe,\"[2]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an integer ID (optional sign and decimal digits), found \"12.0\" (pass "
     "--string-ids to take every ID as text)"},
    {"a number among string IDs", "word,vector\nthe,\"[1]\"\n12.0,\"[2]\"\n", 0, ANNB_E_INPUT,
     "in.csv:3:1: expected an integer ID (optional sign and decimal digits), found \"12.0\" (pass "
     "--string-ids to take every ID as text)"},
    {"separated: dimension mismatch", "movie_id,movie_embedding\n1,\"0.5,0.25\"\n2,\"0.5\"\n", 0,
     ANNB_E_INPUT,
     "in.csv:3:4: expected 2 numbers in the movie_embedding vector (the dimension of line 2), found 1"},
    {"separated: not a number", "movie_id,movie_embedding\n1,\"0.5,abc\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a number as value 2 of the movie_embedding vector, found \"abc\""},
    {"separated: overflow", "movie_id,movie_embedding\n1,\"0.5 1e39\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a finite float32 as value 2 of the movie_embedding vector, found \"1e39\""},
    {"separated: two commas", "movie_id,movie_embedding\n1,\"0.5,,1\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a number as value 2 of the movie_embedding vector, found \",1\""},
    {"separated: trailing comma", "movie_id,movie_embedding\n1,\"0.5, \"\n", 0, ANNB_E_INPUT,
     "in.csv:2:7: expected a number as value 2 of the movie_embedding vector, found \", \""},
    {"separated: leading comma", "movie_id,movie_embedding\n1,\",0.5\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:4: expected a number as value 1 of the movie_embedding vector, found \",0.5\""},
    {"wide: a vector in one field", "id,f0\n1,0.5 0.25\n", 0, ANNB_E_INPUT,
     "in.csv:2:3: expected a number as value 1 of the row, found \"0.5 0.25\" (a vector in one "
     "field? name its column with --vector-column)"},
    {"only an id column", "id\n1\n", 0, ANNB_E_INPUT,
     "in.csv:1:3: expected a features column or value columns after id"},
    {"non-integer id", "id,features\n1e5,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an integer ID (optional sign and decimal digits), found \"1e5\""},
    /* "1x" is a string ID (SPEC 6.19); one with a control character is no ID */
    {"id with a control character", "id,features\n1\x01x,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an integer or a string ID, found \"1\\x01x\""},
    {"float id", "id,features\n1.0,\"[1]\"\n", 0, ANNB_E_INPUT, "in.csv:2:1: expected an integer ID"},
    {"empty id", "id,features\n,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an integer ID, found an empty field"},
    /* "-" alone is a string ID now (annb_key_looks_numeric: no digits) */
    {"id overflow", "id,features\n9223372036854775808,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an ID within the int64 range, found \"9223372036854775808\""},
    {"negative id overflow", "id,features\n-9223372036854775809,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an ID within the int64 range"},
    {"INT64_MIN", "id,features\n-9223372036854775808,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an ID other than -9223372036854775808 (reserved)"},
    {"duplicate id", "id,features\n5,\"[1]\"\n6,\"[2]\"\n-5,\"[2]\"\n5,\"[3]\"\n", 0, ANNB_E_INPUT,
     "in.csv:5:1: expected unique IDs, found ID 5 again (first on line 2)"},
    {"dimension mismatch", "id,features\n1,\"[1,2]\"\n2,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:3:4: expected 2 numbers in the features array (the dimension of line 2), found 1"},
    {"NaN", "id,features\n1,\"[1, NaN]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a JSON array of numbers, found \"NaN]\""},
    {"Infinity", "id,features\n1,\"[Infinity, 1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:5: expected a JSON array of numbers, found \"Infinity, 1]\""},
    {"float overflow 1e39", "id,features\n1,\"[1, 1e39]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a finite float32 as element 2 of the features array, found \"1e39\""},
    {"double overflow 1e400", "id,features\n1,\"[1e400]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:5: expected a finite float32 as element 1 of the features array, found \"1e400\""},
    {"abc in array", "id,features\n1,\"[1, abc]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a JSON array of numbers, found \"abc]\""},
    {"string in array", "id,features\n1,\"[1, 2, \"\"abc\"\"]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:11: expected a number as element 3 of the features array, found \"\\\"abc\\\"\""},
    {"nested array", "id,features\n1,\"[1, [2, 3]]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a number as element 2 of the features array, found \"[2, 3]\""},
    {"null in array", "id,features\n1,\"[null]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:5: expected a number as element 1 of the features array, found \"null\""},
    {"empty array", "id,features\n1,\"[]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:4: expected a non-empty JSON array of numbers, found \"[]\""},
    {"not an array", "id,features\n1,true\n", 0, ANNB_E_INPUT,
     "in.csv:2:3: expected a JSON array of numbers, found \"true\""},
    {"unclosed array", "id,features\n1,\"[1, 2\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:9: expected a JSON array of numbers, found the end of the field"},
    {"trailing JSON", "id,features\n1,\"[1] [2]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:8: expected a JSON array of numbers, found \"[2]\""},
    {"empty features", "id,features\n1,\n", 0, ANNB_E_INPUT,
     "in.csv:2:3: expected a JSON array of numbers, found an empty field"},
    {"unterminated quote", "id,features\n1,\"[1, 2]\n2,\"[3, 4]\"\n", 0, ANNB_E_INPUT,
     "in.csv:3:4: expected ',' or a line break after the closing quote (the quoted field started on "
     "line 2), found \"[3, 4]\\\"\""},
    {"unterminated quote at end of file", "id,features\n1,\"[1, 2]\n", 0, ANNB_E_INPUT,
     "in.csv:2:3: expected a closing quote for the field opened here, found the end of the file"},
    {"text after closing quote", "id,features\n1,\"[1, 2]\"x\n", 0, ANNB_E_INPUT,
     "in.csv:2:11: expected ',' or a line break after the closing quote, found \"x\""},
    {"quote inside unquoted field", "id,features\n1\"2,\"[1]\"\n", 0, ANNB_E_INPUT,
     "in.csv:2:2: expected a quote only at the start of a field"},
    {"wrong field count (wide, fewer)", "id,a,b\n1,2\n", 0, ANNB_E_INPUT,
     "in.csv:2:4: expected 3 fields (id and 2 values), found 2"},
    {"wrong field count (wide, more)", "id,a\n1,2,3\n", 0, ANNB_E_INPUT,
     "in.csv:2:5: expected 2 fields (id and 1 value), found field 3"},
    {"missing features field", "id,features\n1\n", 0, ANNB_E_INPUT,
     "in.csv:2:2: expected 2 fields (id and a features array), found 1"},
    {"features not quoted", "id,features\n1,[1,2]\n", 0, ANNB_E_INPUT,
     "in.csv:2:5: expected a JSON array of numbers, found the end of the field (quote the features "
     "array: it contains the delimiter)"},
    {"extra field", "id,features\n1,\"[1,2]\",x\n", 0, ANNB_E_INPUT,
     "in.csv:2:11: expected 2 fields (id and a features array), found field 3"},
    {"blank line between rows", "id,features\n1,\"[1]\"\n\n2,\"[2]\"\n", 0, ANNB_E_INPUT,
     "in.csv:3:1: expected a row, found a blank line"},
    {"blank line after header", "id,a\r\n \r\n1,2\r\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected a row, found a blank line"},
    {"wide: not a number", "id,a\n1,abc\n", 0, ANNB_E_INPUT,
     "in.csv:2:3: expected a number as value 1 of the row, found \"abc\""},
    {"wide: nan", "id,a\n1,nan\n", 0, ANNB_E_INPUT, "in.csv:2:3: expected a number as value 1 of the row, found \"nan\""},
    {"wide: inf", "id,a\n1,-inf\n", 0, ANNB_E_INPUT, "in.csv:2:3: expected a number as value 1"},
    {"wide: hex", "id,a\n1,0x10\n", 0, ANNB_E_INPUT, "in.csv:2:3: expected a number as value 1"},
    {"wide: trailing junk", "id,a,b\n1,2,3.5.1\n", 0, ANNB_E_INPUT,
     "in.csv:2:5: expected a number as value 2 of the row, found \"3.5.1\""},
    {"wide: empty value", "id,a,b\n1,,2\n", 0, ANNB_E_INPUT,
     "in.csv:2:3: expected a number as value 1 of the row, found an empty field"},
    {"wide: float overflow", "id,a\n1,-1e39\n", 0, ANNB_E_INPUT,
     "in.csv:2:3: expected a finite float32 as value 1 of the row, found \"-1e39\""},
    {"NUL byte", "id,a\n1,2\0\n", 10, ANNB_E_INPUT, "in.csv:2:4: expected text, found a NUL byte"},
    {"control bytes are escaped in excerpts", "id,a\n\x01\xff,2\n", 0, ANNB_E_INPUT,
     "in.csv:2:1: expected an integer or a string ID, found \"\\x01\\xff\" (an ID holding a "
     "control character)"},
    {"long text is cut in excerpts", "id,a\n1,0123456789012345678901234567890123456789x\n", 0, ANNB_E_INPUT,
     "found \"0123456789012345678901234567890123456789\"..."},
};

/* Reads text as `name` with one of the readers; *cleared: the output was
 * left zeroed, as it must be on failure. */
typedef int (*bad_reader)(annb_error *err, int *cleared, void **state, const char *name,
                          const char *text, size_t size);

static int bad_read_embeddings(annb_error *err, int *cleared, void **state, const char *name,
                               const char *text, size_t size)
{
    annb_embeddings e;
    int rc = read_embeddings(&e, err, state, name, text, size);
    *cleared = !e.ids && !e.vectors && !e.count && !e.dimension;
    annb_embeddings_release(&e);
    return rc;
}

static void run_bad_cases(void **state, const bad_case *cases, size_t n, const char *name,
                          bad_reader read)
{
    for (size_t i = 0; i < n; i++) {
        const bad_case *c = &cases[i];
        annb_error err;
        int cleared;
        int rc = read(&err, &cleared, state, name, c->text, c->size);
        if (rc != c->code || err.code != c->code || !strstr(err.message, c->message))
            fail_msg("case \"%s\": got %d \"%s\"; want %d with \"%s\"", c->name, rc, err.message,
                     c->code, c->message);
        if (!cleared) fail_msg("case \"%s\": output not cleared on failure", c->name);
    }
}

static void test_bad_embeddings(void **state)
{
    run_bad_cases(state, bad_embeddings, sizeof bad_embeddings / sizeof bad_embeddings[0], "in.csv",
                  bad_read_embeddings);
}

static void test_missing_file(void **state)
{
    const fixture *fx = *state;
    char path[512];
    annb_embeddings e;
    annb_catalog c;
    annb_error err = {0};
    tu_path(path, fx->dir, "no-such-file.csv");
    assert_int_equal(annb_embeddings_read(&e, path, &err), ANNB_E_IO);
    assert_non_null(strstr(err.message, "no-such-file.csv: cannot open"));
    assert_int_equal(annb_catalog_read(&c, path, &err), ANNB_E_IO);
    assert_int_equal(annb_embeddings_read(&e, NULL, &err), ANNB_E_INVALID);
    assert_int_equal(annb_embeddings_read(&e, path, NULL), ANNB_E_IO); /* err may be NULL */
}

static void expect_limit(void **state, const char *text, size_t size, const char *fragment)
{
    annb_embeddings e;
    annb_error err;
    int rc = read_embeddings(&e, &err, state, "limit.csv", text, size);
    if (rc != ANNB_E_LIMIT || !strstr(err.message, fragment))
        fail_msg("got %d \"%s\"; want ANNB_E_LIMIT with \"%s\"", rc, err.message, fragment);
}

static void test_limits(void **state)
{
    /* A field over ANNB_MAX_FIELD_BYTES: stopped while it is read. */
    size_t n = ANNB_MAX_FIELD_BYTES + 100;
    char *text = malloc(n + 64);
    assert_non_null(text);
    size_t len = (size_t)sprintf(text, "id,features\n1,\"[");
    while (len < n) len += (size_t)sprintf(text + len, "0.5, ");
    len += (size_t)sprintf(text + len, "1]\"\n");
    expect_limit(state, text, len, "limit.csv:2:3: expected a field of at most 1048576 bytes");
    /* An unterminated quote runs into the same limit, with a hint. */
    len = (size_t)sprintf(text, "id,features\n1,\"[1]\n");
    while (len < n) len += (size_t)sprintf(text + len, "2,[1]\n");
    expect_limit(state, text, len, "limit.csv:2:3: expected a field of at most 1048576 bytes, "
                                   "found a longer one (an unterminated quote?)");
    free(text);

    /* ANNB_MAX_DIMENSION + 1 columns, wide and Spark. */
    text = malloc(16 * (ANNB_MAX_DIMENSION + 2) + 64);
    assert_non_null(text);
    len = (size_t)sprintf(text, "id");
    for (unsigned j = 0; j <= ANNB_MAX_DIMENSION; j++) len += (size_t)sprintf(text + len, ",f%u", j);
    len += (size_t)sprintf(text + len, "\n");
    expect_limit(state, text, len, "expected at most 4096 value columns, found more");
    len = (size_t)sprintf(text, "id,features\n1,\"[");
    for (unsigned j = 0; j <= ANNB_MAX_DIMENSION; j++) len += (size_t)sprintf(text + len, "%s1", j ? "," : "");
    len += (size_t)sprintf(text + len, "]\"\n");
    expect_limit(state, text, len, "limit.csv:2:4: expected at most 4096 numbers in the features array, found 4097");
    free(text);
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *data = getenv("ANNB_TEST_DATA");
    if (!data) skip();
    char path[512];
    annb_embeddings e;
    annb_error err = {0};

    snprintf(path, sizeof path, "%s/ingest/items_spark.csv", data);
    expect_ok(annb_embeddings_read(&e, path, &err), &err);
    assert_int_equal(e.count, 4);
    expect_vector(&e, 0, 2571, (const double[]){0.2586649, 0.3560594, -1.5e-3});
    expect_vector(&e, 3, INT64_MAX, (const double[]){-1.25, 0, 7});
    annb_embeddings_release(&e);

    snprintf(path, sizeof path, "%s/ingest/items_wide.tsv", data);
    expect_ok(annb_embeddings_read(&e, path, &err), &err);
    assert_int_equal(e.count, 2);
    expect_vector(&e, 0, 7, (const double[]){0.5, -2});
    expect_vector(&e, 1, 3, (const double[]){1e-3, 4.25});
    annb_embeddings_release(&e);
}


/* ------------------------------------------------------------------------ */
/* Columns: detected from the header, or named                               */
/* ------------------------------------------------------------------------ */

static int read_with(annb_embeddings *e, annb_error *err, void **state, const char *text,
                     const char *id_column, const char *vector_column)
{
    char path[512];
    annb_read_opts o = {.id_column = id_column, .vector_column = vector_column};
    memset(err, 0, sizeof *err);
    return annb_embeddings_read_with(e, put(path, state, "cols.csv", text, 0), &o, err);
}

static void expect_error_with(int rc, const annb_error *err, int code, const char *fragment)
{
    if (rc != code || !strstr(err->message, fragment))
        fail_msg("got %d \"%s\", want %d with \"%s\"", rc, err->message, code, fragment);
}

/* The two layouts real training code writes, as checked-in fixtures. */
static void test_real_layouts(void **state)
{
    (void)state;
    const char *data = getenv("ANNB_TEST_DATA");
    if (!data) skip();
    char path[512];
    annb_embeddings e;
    annb_error err = {0};

    /* item2vec (gensim): word,vector with a JSON array */
    snprintf(path, sizeof path, "%s/ingest/item2vec.csv", data);
    expect_ok(annb_embeddings_read(&e, path, &err), &err);
    assert_int_equal(e.count, 5);
    assert_int_equal(e.dimension, 4);
    expect_vector(&e, 0, 1193, (const double[]){0.125, -0.5, 0.25, 1.0});
    expect_vector(&e, 4, 2355, (const double[]){0.25, 0.25, 0.25, -1.0});
    annb_embeddings_release(&e);

    /* two-tower: movie_id,movie_embedding with "0.1,0.2,..." quoted */
    snprintf(path, sizeof path, "%s/ingest/two_tower_movies.csv", data);
    expect_ok(annb_embeddings_read(&e, path, &err), &err);
    assert_int_equal(e.count, 4);
    expect_vector(&e, 0, 1, (const double[]){0.0, 0.0, 0.80466634, -0.25});
    expect_vector(&e, 3, 10, (const double[]){0.125, 0.5, -0.5, 0.25});
    annb_embeddings_release(&e);

    /* its user tower, one row with blanks for separators */
    snprintf(path, sizeof path, "%s/ingest/two_tower_users.csv", data);
    expect_ok(annb_embeddings_read(&e, path, &err), &err);
    assert_int_equal(e.count, 2);
    expect_vector(&e, 1, 8, (const double[]){-0.5, 0.25, 0.75, 0.0});
    annb_embeddings_release(&e);
}

static void test_columns(void **state)
{
    annb_embeddings e;
    annb_error err;

    /* named, other columns ignored */
    expect_ok(read_with(&e, &err, state, "sku,count,emb\n5,3,\"[1,2]\"\n6,1,\"3 4\"\n", "sku", "emb"),
              &err);
    assert_int_equal(e.count, 2);
    expect_vector(&e, 0, 5, (const double[]){1, 2});
    expect_vector(&e, 1, 6, (const double[]){3, 4});
    annb_embeddings_release(&e);

    /* by number (1-based), the vector before the ID */
    expect_ok(read_with(&e, &err, state, "a,b,c\n\"0.5,0.25\",x,9\n", "3", "1"), &err);
    expect_vector(&e, 0, 9, (const double[]){0.5, 0.25});
    annb_embeddings_release(&e);

    /* wide, the ID detected in the middle */
    expect_ok(read_with(&e, &err, state, "f0,movieId,f1\n0.5,7,0.25\n", NULL, NULL), &err);
    assert_int_equal(e.dimension, 2);
    expect_vector(&e, 0, 7, (const double[]){0.5, 0.25});
    annb_embeddings_release(&e);

    /* only the ID named: the rest is the wide form */
    expect_ok(read_with(&e, &err, state, "key,x,y\n3,1,2\n", "key", NULL), &err);
    expect_vector(&e, 0, 3, (const double[]){1, 2});
    annb_embeddings_release(&e);

    /* TSV: the commas of a vector need no quotes */
    expect_ok(read_with(&e, &err, state, "item_id\titem_embedding\n4\t0.5,0.25\n5\t[1, 2]\n", NULL,
                        NULL),
              &err);
    expect_vector(&e, 0, 4, (const double[]){0.5, 0.25});
    expect_vector(&e, 1, 5, (const double[]){1, 2});
    annb_embeddings_release(&e);

    /* the header of the issue: detected */
    expect_ok(read_with(&e, &err, state, "word,vector\n1,\"[1, 2]\"\n", NULL, NULL), &err);
    annb_embeddings_release(&e);

    /* errors name the option and the header */
    expect_error_with(read_with(&e, &err, state, "id,features\n1,\"[1]\"\n", "nope", NULL), &err,
                      ANNB_E_INPUT,
                      "cols.csv:1:1: expected a column nope (--id-column nope), found header "
                      "id,features");
    expect_error_with(read_with(&e, &err, state, "id,features\n1,\"[1]\"\n", NULL, "3"), &err,
                      ANNB_E_INPUT, "cols.csv:1:1: expected a column 3 (--vector-column 3)");
    expect_error_with(read_with(&e, &err, state, "id,features\n1,\"[1]\"\n", "id", "ID"), &err,
                      ANNB_E_INPUT, "cols.csv:1:1: expected the vector in another column than the ID");
    /* the row is still checked whole */
    expect_error_with(read_with(&e, &err, state, "sku,count,emb\n5,3\n", "sku", "emb"), &err,
                      ANNB_E_INPUT, "cols.csv:2:4: expected 3 fields (an ID in column 1 and a vector in column 3), found 2");
    /* the shortcut and the general way agree on the new shapes */
    assert_int_equal(expect_both_ways_agree(state, "two-tower",
                                            "movie_id,movie_embedding\n1,\"0.5,0.25\"\n2,\"[1,2]\"\n", 0),
                     ANNB_OK);
    assert_int_equal(expect_both_ways_agree(state, "word,vector", "word,vector\n1,\"[1,2]\"\n2,\"[1,2]\"\n", 0),
                     ANNB_OK);
}



/* ------------------------------------------------------------------------ */
/* More forms: JSON lines, word2vec text, numpy .npy                         */
/* ------------------------------------------------------------------------ */

static void expect_read_error(void **state, const char *name, const char *text, size_t size,
                              int code, const char *fragment)
{
    annb_embeddings e;
    annb_error err;
    int rc = read_embeddings(&e, &err, state, name, text, size);
    if (rc != code || !strstr(err.message, fragment))
        fail_msg("%s: got %d \"%s\", want %d with \"%s\"", text, rc, err.message, code, fragment);
    assert_null(e.ids);
    assert_int_equal(e.count, 0);
}

static void test_jsonl(void **state)
{
    annb_embeddings e;
    annb_error err;
    const char *good = "{\"id\": 3, \"vector\": [0.5, 0.25]}\n"
                       "{\"name\": {\"a\": [1]}, \"vector\": [1e-3,-2], \"id\": \"9223372036854775807\"}\r\n"
                       "  {\"id\":-4,\"vector\":[3,4]}  \n\n";
    expect_ok(read_embeddings(&e, &err, state, "in.jsonl", good, 0), &err);
    assert_int_equal(e.count, 3);
    expect_vector(&e, 0, 3, (const double[]){0.5, 0.25});
    expect_vector(&e, 1, INT64_MAX, (const double[]){1e-3, -2});
    expect_vector(&e, 2, -4, (const double[]){3, 4});
    annb_embeddings_release(&e);
    /* any key names the options give; two-tower names detected */
    expect_ok(read_embeddings(&e, &err, state, "in.jsonl",
                              "{\"movie_id\": 10, \"movie_embedding\": [1, 2]}\n", 0),
              &err);
    expect_vector(&e, 0, 10, (const double[]){1, 2});
    annb_embeddings_release(&e);
    expect_ok(read_with(&e, &err, state, "{\"sku\": 10, \"emb\": [1, 2], \"vector\": [5]}\n", "sku",
                        "emb"),
              &err);
    expect_vector(&e, 0, 10, (const double[]){1, 2});
    annb_embeddings_release(&e);

    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"vector\": [1, x]}\n", 0, ANNB_E_INPUT,
                      "in.jsonl:1:25: expected a JSON value, found \"x]}\"");
    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"vector\": [1, 1e39]}\n", 0, ANNB_E_INPUT,
                      "in.jsonl:1:25: expected a finite float32 as element 2 of the vector array, "
                      "found \"1e39\"");
    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"v\": [1]}\n", 0, ANNB_E_INPUT,
                      "in.jsonl:1:1: expected a vector key (features, vector, embedding, "
                      "NAME_embedding), found none in the object: pass --vector-column KEY");
    expect_read_error(state, "in.jsonl", "{\"key\": 1, \"vector\": [1]}\n", 0, ANNB_E_INPUT,
                      "in.jsonl:1:1: expected an ID key (id, word, item_id, movie_id, user_id, "
                      "itemId, movieId, userId), found none in the object: pass --id-column KEY");
    expect_read_error(state, "in.jsonl", "{\"user_id\": 1, \"item_id\": 2, \"vector\": [1]}\n", 0,
                      ANNB_E_INPUT,
                      "in.jsonl:1:16: expected one ID key, found \"user_id\" and \"item_id\": pass "
                      "--id-column user_id or --id-column item_id");
    expect_read_error(state, "in.jsonl", "{\"id\": 1.5, \"vector\": [1]}\n", 0, ANNB_E_INPUT,
                      "in.jsonl:1:8: expected an integer ID (optional sign and decimal digits), "
                      "found \"1.5\"");
    expect_read_error(state, "in.jsonl", "{\"id\": \"t\\u0001\", \"vector\": [1]}\n", 0,
                      ANNB_E_INPUT, "in.jsonl:1:8: expected an integer or a string ID, found "
                      "\"t\\x01\" (an ID holding a control character)");
    /* a string ID (SPEC 6.19): the key beside its annb_key_id */
    expect_ok(read_embeddings(&e, &err, state, "in.jsonl",
                              "{\"id\": \"tt0114709\", \"vector\": [1]}\n", 0), &err);
    assert_int_equal(e.keys.count, 1);
    assert_string_equal(annb_keys_at(&e.keys, 0, NULL), "tt0114709");
    assert_true(e.ids[0] == annb_key_id("tt0114709", 9));
    annb_embeddings_release(&e);
    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"vector\": [1]} x\n", 0, ANNB_E_INPUT,
                      "in.jsonl:1:26: expected the end of the line after the object, found \"x\"");
    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"vector\": [1]}\n[1]\n", 0, ANNB_E_INPUT,
                      "in.jsonl:2:1: expected a JSON object such as");
    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"vector\": [1]}\n\n{\"id\": 2, \"vector\": [1]}\n",
                      0, ANNB_E_INPUT, "in.jsonl:2:1: expected a row, found a blank line");
    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"vector\": [1]}\n{\"id\": 2, \"vector\": [1, 2]}\n",
                      0, ANNB_E_INPUT,
                      "in.jsonl:2:21: expected 1 numbers in the vector array (the dimension of line 1), found 2");
    expect_read_error(state, "in.jsonl", "{\"id\": 1, \"vector\": [1]}\n{\"id\": 1, \"vector\": [2]}\n",
                      0, ANNB_E_INPUT, "in.jsonl:2:1: expected unique IDs, found ID 1 again (first on line 1)");
    expect_read_error(state, "in.jsonl", "{\"id\": 1 \"vector\": [1]}\n", 0, ANNB_E_INPUT,
                      "in.jsonl:1:10: expected ',' or '}' after a value");
}

static void test_word2vec(void **state)
{
    annb_embeddings e;
    annb_error err;
    expect_ok(read_embeddings(&e, &err, state, "in.vec", "3 2\n1 0.5 0.25 \n20 1 2\n-3\t3 4\n", 0),
              &err);
    assert_int_equal(e.count, 3);
    expect_vector(&e, 0, 1, (const double[]){0.5, 0.25});
    expect_vector(&e, 2, -3, (const double[]){3, 4});
    annb_embeddings_release(&e);
    expect_read_error(state, "in.vec", "2 2\n1e3 0.5 0.25\nthe 1 1\n", 0, ANNB_E_INPUT,
                      "in.vec:2:1: expected an integer ID (optional sign and decimal digits) as the "
                      "word, found \"1e3\" (pass --string-ids to take every ID as text)");
    /* words are string IDs (SPEC 6.19) */
    expect_ok(read_embeddings(&e, &err, state, "in.vec", "2 2\nthe 0.5 0.25\nof 1 2\n", 0), &err);
    assert_int_equal(e.keys.count, 2);
    assert_string_equal(annb_keys_at(&e.keys, 1, NULL), "of");
    annb_embeddings_release(&e);
    expect_read_error(state, "in.vec", "3 2\n1 0.5 0.25\n2 1 1\n", 0, ANNB_E_INPUT,
                      "in.vec:4:1: expected 3 rows (the count on line 1), found 2 (a truncated file?)");
    expect_read_error(state, "in.vec", "1 2\n1 0.5 0.25\n2 1 1\n", 0, ANNB_E_INPUT,
                      "in.vec:3:1: expected 1 rows (the count on line 1), found more");
    expect_read_error(state, "in.vec", "1 2\n1 0.5 0.25 7\n", 0, ANNB_E_INPUT,
                      "in.vec:2:12: expected 2 values after the word (the dimension on line 1), found more: \"7\"");
    expect_read_error(state, "in.vec", "1 2\n1 0.5\n", 0, ANNB_E_INPUT,
                      "in.vec:2:6: expected 2 values after the word (the dimension on line 1), found 1");
    expect_read_error(state, "in.vec", "1 2\n1 0.5 nan\n", 0, ANNB_E_INPUT,
                      "in.vec:2:7: expected a number as value 2 after the word, found \"nan\"");
    expect_read_error(state, "in.vec", "1 5000\n", 0, ANNB_E_LIMIT,
                      "in.vec:1:3: expected a dimension from 1 to 4096, found 5000");
}

/* A .npy file: version 1.0 header with the dict, padded to 64 bytes. */
static size_t npy_bytes(unsigned char *out, const char *descr, const char *shape, const void *data,
                        size_t size)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    size_t hlen = (size_t)n + 1;
    while ((10 + hlen) % 64) hlen++;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(hlen & 0xff);
    out[9] = (unsigned char)(hlen >> 8);
    memset(out + 10, ' ', hlen);
    memcpy(out + 10, dict, (size_t)n);
    out[10 + hlen - 1] = '\n';
    memcpy(out + 10 + hlen, data, size);
    return 10 + hlen + size;
}

static void test_npy(void **state)
{
    const fixture *fx = *state;
    unsigned char buf[512];
    char path[512], ids_path[512];
    annb_embeddings e;
    annb_error err = {0};
    const float f32[6] = {0.5f, 0.25f, 1, 2, -3, 4};
    const double f64[6] = {0.5, 0.25, 1, 2, -3, 4};
    const int64_t ids[3] = {30, 10, 20};
    annb_read_opts rows = {.ids_from_rows = 1}, with_ids = {.ids_path = ids_path};

    tu_path(ids_path, fx->dir, "ids.npy");
    tu_write_file(ids_path, buf, npy_bytes(buf, "<i8", "(3,)", ids, sizeof ids));
    for (int wide = 0; wide < 2; wide++) {
        tu_path(path, fx->dir, "v.npy");
        tu_write_file(path, buf, wide ? npy_bytes(buf, "<f8", "(3, 2)", f64, sizeof f64)
                                      : npy_bytes(buf, "<f4", "(3, 2)", f32, sizeof f32));
        expect_ok(annb_embeddings_read_with(&e, path, &with_ids, &err), &err);
        assert_int_equal(e.count, 3);
        expect_vector(&e, 0, 30, (const double[]){0.5, 0.25});
        expect_vector(&e, 2, 20, (const double[]){-3, 4});
        annb_embeddings_release(&e);
        expect_ok(annb_embeddings_read_with(&e, path, &rows, &err), &err);
        expect_vector(&e, 1, 1, (const double[]){1, 2});
        annb_embeddings_release(&e);
    }
    /* no IDs: refused, naming both ways */
    assert_int_equal(annb_embeddings_read(&e, path, &err), ANNB_E_INVALID);
    assert_non_null(strstr(err.message, "v.npy: a .npy matrix holds no IDs: give them as a second "
                                        ".npy of int64 (--ids FILE.npy) or take the row numbers 0..2 "
                                        "(--ids-from-rows)"));
    /* damage, each with the byte offset */
    static const struct {
        const char *descr, *shape;
        size_t cut; /* data bytes left out */
        const char *message;
    } bad[] = {
        {"<f4", "(3, 2)", 4, "v.npy: byte 148: expected 3 rows of 2 values (the shape), found the end "
                             "of the file in row 2 (a truncated file?)"},
        {">f4", "(3, 2)", 0, "v.npy: byte 20: expected the dtype '<f4', '<f8' (vectors) or '<i8', "
                             "'<i4' (IDs), found '>f4'"},
        {"<f4", "(6,)", 0, "v.npy: byte 0: expected a 2-D matrix of float32 or float64 (rows, "
                           "dimension), found floats of 1 dimension"},
        {"<f4", "(2, 2)", 0, "v.npy: byte 144: expected the end of the file after the values the "
                             "shape declares, found more bytes"},
        {"<f4", "(3, x)", 0, "v.npy: byte 60: expected a shape (rows,) or (rows, dimension), found (3, x)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(path, buf, npy_bytes(buf, bad[i].descr, bad[i].shape, f32, sizeof f32) - bad[i].cut);
        int rc = annb_embeddings_read_with(&e, path, &rows, &err);
        if (rc != ANNB_E_INPUT || !strstr(err.message, bad[i].message))
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, rc, err.message, bad[i].message);
    }
    float nan_row[6] = {0.5f, 0.25f, 1, NAN, -3, 4};
    tu_write_file(path, buf, npy_bytes(buf, "<f4", "(3, 2)", nan_row, sizeof nan_row));
    assert_int_equal(annb_embeddings_read_with(&e, path, &rows, &err), ANNB_E_INPUT);
    assert_non_null(strstr(err.message, "v.npy: byte 140: expected a finite float32 as value 1 of row 1, found nan"));
    const double big[6] = {0.5, 0.25, 1, 1e39, -3, 4};
    tu_write_file(path, buf, npy_bytes(buf, "<f8", "(3, 2)", big, sizeof big));
    assert_int_equal(annb_embeddings_read_with(&e, path, &rows, &err), ANNB_E_INPUT);
    assert_non_null(strstr(err.message, "expected a finite float32 as value 1 of row 1, found 1e+39"));
    /* the IDs file: its count, its repeats */
    tu_write_file(path, buf, npy_bytes(buf, "<f4", "(3, 2)", f32, sizeof f32));
    const int64_t twice[3] = {5, 6, 5};
    tu_write_file(ids_path, buf, npy_bytes(buf, "<i8", "(3,)", twice, sizeof twice));
    assert_int_equal(annb_embeddings_read_with(&e, path, &with_ids, &err), ANNB_E_INPUT);
    assert_non_null(strstr(err.message, "ids.npy: element 2: expected unique IDs, found ID 5 again (first as element 0)"));
    tu_write_file(ids_path, buf, npy_bytes(buf, "<i8", "(2,)", twice, 16));
    assert_int_equal(annb_embeddings_read_with(&e, path, &with_ids, &err), ANNB_E_INPUT);
    assert_non_null(strstr(err.message, "ids.npy: byte 0: expected 3 IDs (the rows of the vectors), found 2"));
    /* --ids with a text file */
    put(path, state, "t.csv", "id,features\n1,\"[1]\"\n", 0);
    assert_int_equal(annb_embeddings_read_with(&e, path, &with_ids, &err), ANNB_E_INVALID);
}

/* annb_build_opts keeps its struct_size promise: a caller compiled against
 * the first version (struct_size up to expect_sha256) gets the defaults for
 * the fields added since, whatever lies past its struct; a smaller one is
 * refused. */
static void test_build_opts_size(void **state)
{
    const char *data = getenv("ANNB_TEST_DATA");
    if (!data) skip();
    const fixture *fx = *state;
    char items[512], out[512];
    snprintf(items, sizeof items, "%s/ingest/item2vec.csv", data);
    tu_path(out, fx->dir, "old-opts.annb");
    annb_build_opts o;
    annb_build_opts_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    o.id_column = o.vector_column = "no such column"; /* beyond an old caller's struct */
    o.struct_size = ANNB_BUILD_OPTS_SIZE_0_1;
    annb_error err = {0};
    /* Its report ends before the fields added in 0.2: not a byte past it is
     * written (a canary fills the rest of a 0.2-sized buffer). */
    union { annb_build_report r; unsigned char bytes[sizeof(annb_build_report)]; } rep;
    memset(rep.bytes, 0xAB, sizeof rep.bytes);
    expect_ok(annb_build(&rep.r, items, NULL, out, &o, &err), &err);
    assert_true(rep.r.items > 0);
    for (size_t i = ANNB_BUILD_REPORT_SIZE_0_1; i < sizeof rep.bytes; i++)
        if (rep.bytes[i] != 0xAB) fail_msg("report byte %zu written for a 0.1 caller", i);
    memset(rep.bytes, 0xAB, sizeof rep.bytes);
    expect_ok(annb_build(&rep.r, items, NULL, out, NULL, &err), &err); /* NULL opts: 0.1's too */
    for (size_t i = ANNB_BUILD_REPORT_SIZE_0_1; i < sizeof rep.bytes; i++)
        if (rep.bytes[i] != 0xAB) fail_msg("report byte %zu written for NULL opts", i);
    o.struct_size = sizeof o; /* now they count */
    o.id_column = o.vector_column = NULL;
    memset(rep.bytes, 0xAB, sizeof rep.bytes);
    expect_ok(annb_build(&rep.r, items, NULL, out, &o, &err), &err);
    assert_true(rep.r.items_dropped_zero == 0 && rep.r.users_dropped_zero == 0);
    o.id_column = o.vector_column = "no such column";
    assert_int_equal(annb_build(NULL, items, NULL, out, &o, &err), ANNB_E_INPUT);
    assert_non_null(strstr(err.message, "expected a column no such column (--id-column"));
    o.struct_size = ANNB_BUILD_OPTS_SIZE_0_1 - 1;
    assert_int_equal(annb_build(NULL, items, NULL, out, &o, &err), ANNB_E_INVALID);
    remove(out);
}

/* ------------------------------------------------------------------------ */
/* Catalogs                                                                  */
/* ------------------------------------------------------------------------ */

static int read_catalog(annb_catalog *c, annb_error *err, void **state, const char *name,
                        const char *text, size_t size)
{
    char path[512];
    memset(err, 0, sizeof *err);
    return annb_catalog_read(c, put(path, state, name, text, size), err);
}

/* Entry i's genres as "A|B" in file order. */
static const char *genres_of(char out[256], const annb_catalog *c, uint64_t i)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t g = 0; g < c->entries[i].genre_count; g++) {
        uint32_t id = c->genre_ids[c->entries[i].genre_first + g];
        assert_true(id < c->genre_count);
        len += (size_t)snprintf(out + len, 256 - len, "%s%s", g ? "|" : "", c->genre_names[id]);
    }
    return out;
}

static void expect_sorted_vocabulary(const annb_catalog *c, const char *const *want, uint32_t n)
{
    assert_int_equal(c->genre_count, n);
    for (uint32_t i = 0; i < n; i++) assert_string_equal(c->genre_names[i], want[i]);
}

static void test_movies_dat(void **state)
{
    annb_catalog c;
    annb_error err;
    char g[256];
    int rc = read_catalog(&c, &err, state, "movies.dat",
                          "1::Toy Story (1995)::Animation|Children's|Comedy\n"
                          "73::Mis\xe9rables, Les (1995)::Drama|Musical\n"
                          "260::Star Wars: Episode IV - A New Hope (1977)::Sci-Fi|Action|Adventure\n"
                          "3::Untitled: A Film (2020)::(no genres listed)\n"
                          "-4::Caf\xe9 \xbd (1999)::Com\xe9" "die|Drama|Drama\r\n"
                          "\n",
                          0);
    expect_ok(rc, &err);
    assert_int_equal(c.count, 5);
    assert_int_equal(c.entries[1].id, 73);
    assert_string_equal(c.entries[1].title, "Mis\xc3\xa9rables, Les (1995)");
    assert_string_equal(c.entries[2].title, "Star Wars: Episode IV - A New Hope (1977)");
    assert_string_equal(c.entries[3].title, "Untitled: A Film (2020)");
    assert_int_equal(c.entries[3].genre_count, 0);
    assert_int_equal(c.entries[4].id, -4);
    assert_string_equal(c.entries[4].title, "Caf\xc3\xa9 \xc2\xbd (1999)");
    static const char *const vocab[] = {"Action", "Adventure", "Animation", "Children's", "Comedy",
                                        "Com\xc3\xa9" "die", "Drama", "Musical", "Sci-Fi"};
    expect_sorted_vocabulary(&c, vocab, 9);
    assert_string_equal(genres_of(g, &c, 0), "Animation|Children's|Comedy");
    assert_string_equal(genres_of(g, &c, 2), "Sci-Fi|Action|Adventure");
    assert_string_equal(genres_of(g, &c, 4), "Com\xc3\xa9" "die|Drama"); /* listed twice, kept once */
    annb_catalog_release(&c);
    assert_null(c.entries);
    annb_catalog_release(&c);
    annb_catalog_release(NULL);
}

static void test_movies_csv(void **state)
{
    annb_catalog c;
    annb_error err;
    char g[256];
    int rc = read_catalog(&c, &err, state, "movies.csv",
                          "\xef\xbb\xbfMovieID,Title,GENRES\r\n"
                          "11,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
                          "73,\"Mis\xc3\xa9rables, Les (1995)\",Drama|War\r\n"
                          "5,\"Quote \"\"Test\"\" (2001)\",(no genres listed)\r\n"
                          "6,Star Wars: Episode IV (1977),Action\r\n"
                          "7,\"\xe4\xb8\x83\xe4\xba\xba\xe3\x81\xae\xe4\xbe\x8d \xf0\x9f\x8e\xac\",Drama",
                          0);
    expect_ok(rc, &err);
    assert_int_equal(c.count, 5);
    assert_string_equal(c.entries[0].title, "American President, The (1995)");
    assert_string_equal(c.entries[1].title, "Mis\xc3\xa9rables, Les (1995)");
    assert_string_equal(c.entries[2].title, "Quote \"Test\" (2001)");
    assert_string_equal(c.entries[3].title, "Star Wars: Episode IV (1977)");
    assert_int_equal(c.entries[4].id, 7);
    static const char *const vocab[] = {"Action", "Comedy", "Drama", "Romance", "War"};
    expect_sorted_vocabulary(&c, vocab, 5);
    assert_string_equal(genres_of(g, &c, 0), "Comedy|Drama|Romance");
    assert_string_equal(genres_of(g, &c, 2), "");
    assert_string_equal(genres_of(g, &c, 4), "Drama");
    annb_catalog_release(&c);
}

static void test_catalog_fixtures(void **state)
{
    (void)state;
    const char *data = getenv("ANNB_TEST_DATA");
    if (!data) skip();
    char path[512], g[256];
    annb_catalog dat, csv;
    annb_error err = {0};
    snprintf(path, sizeof path, "%s/ingest/movies.dat", data);
    expect_ok(annb_catalog_read(&dat, path, &err), &err);
    snprintf(path, sizeof path, "%s/ingest/movies.csv", data);
    expect_ok(annb_catalog_read(&csv, path, &err), &err);
    assert_int_equal(dat.count, 4);
    assert_int_equal(csv.count, 4);
    /* The latin-1 title and its UTF-8 twin read the same. */
    assert_string_equal(dat.entries[1].title, csv.entries[1].title);
    assert_string_equal(dat.entries[1].title, "Mis\xc3\xa9rables, Les (1995)");
    assert_string_equal(genres_of(g, &dat, 2), "Action|Adventure|Fantasy|Sci-Fi");
    assert_string_equal(csv.entries[0].title, "American President, The (1995)");
    annb_catalog_release(&dat);
    annb_catalog_release(&csv);
}

/* movies.dat lines crossing the 1 MiB block boundary, CRLF split included. */
static void test_movies_dat_block_boundary(void **state)
{
    enum { BLOCK = 1 << 20, LINE = 32 };
    size_t cap = BLOCK + 4096;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned shift = 0; shift < LINE; shift++) {
        size_t len = (size_t)sprintf(text, "0::%*sPad::Drama\r\n", (int)shift, ""), n;
        for (n = 1; len < BLOCK + 2 * LINE; n++)
            len += (size_t)sprintf(text + len, "%zu::Caf\xe9 %zu::Drama|Com\xe9" "die\r\n", n, n);
        len += (size_t)sprintf(text + len, "%zu::Bad\x7f::Drama\r\n", n);
        annb_catalog c;
        annb_error err;
        char want[64];
        int rc = read_catalog(&c, &err, state, "shift.dat", text, len);
        snprintf(want, sizeof want, "shift.dat:%zu:%d: expected printable text", n + 1,
                 snprintf(NULL, 0, "%zu", n) + 6);
        if (rc != ANNB_E_INPUT || !strstr(err.message, want))
            fail_msg("shift %u: got %d \"%s\", want \"%s\"", shift, rc, err.message, want);

        len -= (size_t)sprintf(want, "%zu::Bad\x7f::Drama\r\n", n);
        rc = read_catalog(&c, &err, state, "shift.dat", text, len);
        expect_ok(rc, &err);
        assert_int_equal(c.count, n);
        for (size_t i = 1; i < n; i++) {
            char title[64];
            snprintf(title, sizeof title, "Caf\xc3\xa9 %zu", i);
            assert_int_equal(c.entries[i].id, (int64_t)i);
            assert_string_equal(c.entries[i].title, title);
            assert_int_equal(c.entries[i].genre_count, 2);
        }
        annb_catalog_release(&c);
    }
    free(text);
}

static const bad_case bad_catalogs[] = {
    {"empty file", "", 0, ANNB_E_INPUT, "cat:1:1: expected a header (movieId,title,genres"},
    {"dat: 2 fields", "1::Toy Story (1995)::Animation\n2::Jumanji (1995)\n", 0, ANNB_E_INPUT,
     "cat:2:18: expected 3 fields separated by \"::\" (MovieID::Title::Genres), found 2"},
    {"dat: 4 fields", "1::A::B::C\n", 0, ANNB_E_INPUT, "cat:1:8: expected 3 fields separated by \"::\""},
    {"dat: bad id", "x1::Toy Story (1995)::Animation\n", 0, ANNB_E_INPUT,
     "cat:1:1: expected an integer ID (optional sign and decimal digits), found \"x1\""},
    {"dat: id overflow", "99999999999999999999::T::Drama\n", 0, ANNB_E_INPUT,
     "cat:1:1: expected an ID within the int64 range"},
    {"dat: empty title", "1::::Drama\n", 0, ANNB_E_INPUT, "cat:1:4: expected a title, found an empty field"},
    {"dat: duplicate id", "1::A::Drama\n2::B::Drama\n1::C::Drama\n", 0, ANNB_E_INPUT,
     "cat:3:1: expected unique IDs, found ID 1 again (first on line 1)"},
    {"dat: empty genre", "1::T::Drama||Comedy\n", 0, ANNB_E_INPUT,
     "cat:1:13: expected a genre name, found an empty one"},
    {"dat: trailing bar", "1::T::Drama|\n", 0, ANNB_E_INPUT, "cat:1:13: expected a genre name"},
    {"dat: control byte", "1::T\x01::Drama\n", 0, ANNB_E_INPUT,
     "cat:1:5: expected printable text, found the control character U+0001 (\"\\x01\")"},
    /* Latin-1 0x80-0x9F are the C1 controls (0x9B: CSI), DEL is one too;
     * 0xA0 and up are letters. */
    {"dat: C1 byte", "1::T\x9b" "2J::Drama\n", 0, ANNB_E_INPUT,
     "cat:1:5: expected printable text, found the control character U+009B (\"\\x9b\")"},
    {"dat: C1 in genres", "1::T\xe9::Dr\x85" "ama\n", 0, ANNB_E_INPUT,
     "cat:1:10: expected printable text, found the control character U+0085"},
    {"dat: ESC in genres", "1::T::Drama|Co\x1b]0;x\x07\n", 0, ANNB_E_INPUT,
     "cat:1:15: expected printable text, found the control character U+001B"},
    {"dat: DEL", "1::T\x7f::Drama\n", 0, ANNB_E_INPUT,
     "cat:1:5: expected printable text, found the control character U+007F"},
    {"csv: C1 in title", "movieId,title,genres\n1,T\xc2\x9b" "2J,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:4: expected printable text, found the control character U+009B (\"\\xc2\\x9b\")"},
    {"csv: ESC in genres", "movieId,title,genres\n1,T,Drama|\x1b[2J\n", 0, ANNB_E_INPUT,
     "cat:2:11: expected printable text, found the control character U+001B"},
    {"dat: blank line between", "1::A::Drama\n\n2::B::Drama\n", 0, ANNB_E_INPUT,
     "cat:2:1: expected a MovieID::Title::Genres line, found a blank line"},
    {"csv: wrong header", "id,title,genres\n1,T,Drama\n", 0, ANNB_E_INPUT,
     "cat:1:1: expected the header movieId,title,genres (column movieId), found \"id\""},
    {"csv: header only", "movieId,title,genres\n", 0, ANNB_E_INPUT,
     "cat:2:1: expected at least one row after the header"},
    {"csv: 2 fields", "movieId,title,genres\n1,Foo\n", 0, ANNB_E_INPUT,
     "cat:2:6: expected 3 fields (movieId,title,genres), found 2"},
    {"csv: 4 fields", "movieId,title,genres\n1,Foo, Bar (1990),Drama\n", 0, ANNB_E_INPUT,
     "cat:2:19: expected 3 fields (movieId,title,genres), found field 4"},
    {"csv: bad id", "movieId,title,genres\n1e3,T,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:1: expected an integer ID"},
    {"csv: empty title", "movieId,title,genres\n1,\"\",Drama\n", 0, ANNB_E_INPUT,
     "cat:2:4: expected a title, found an empty field"},
    {"csv: invalid UTF-8", "movieId,title,genres\n1,Bad \xc3\x28 (1990),Drama\n", 0, ANNB_E_INPUT,
     "cat:2:7: expected UTF-8 text, found the invalid byte sequence \"\\xc3\""},
    {"csv: latin-1 byte", "movieId,title,genres\n1,\"Mis\xe9rables\",Drama\n", 0, ANNB_E_INPUT,
     "cat:2:7: expected UTF-8 text"},
    {"csv: overlong", "movieId,title,genres\n1,A\xc0\xaf,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:4: expected UTF-8 text, found the invalid byte sequence \"\\xc0\\xaf\""},
    {"csv: overlong 3 bytes", "movieId,title,genres\n1,A\xe0\x80\xaf,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:4: expected UTF-8 text"},
    {"csv: surrogate", "movieId,title,genres\n1,A\xed\xa0\x80,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:4: expected UTF-8 text"},
    {"csv: above U+10FFFF", "movieId,title,genres\n1,A\xf4\x90\x80\x80,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:4: expected UTF-8 text"},
    {"csv: truncated sequence", "movieId,title,genres\n1,A\xe2\x82,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:4: expected UTF-8 text"},
    {"csv: invalid UTF-8 in genres", "movieId,title,genres\n1,T,Dr\xff" "ama\n", 0, ANNB_E_INPUT,
     "cat:2:7: expected UTF-8 text"},
    {"csv: empty genre", "movieId,title,genres\n1,T,Drama|\n", 0, ANNB_E_INPUT,
     "cat:2:11: expected a genre name, found an empty one"},
    {"csv: duplicate id", "movieId,title,genres\n7,A,Drama\n7,B,Drama\n", 0, ANNB_E_INPUT,
     "cat:3:1: expected unique IDs, found ID 7 again (first on line 2)"},
    {"csv: newline in title", "movieId,title,genres\n1,\"Two\nLines\",Drama\n", 0, ANNB_E_INPUT,
     "cat:2:7: expected printable text, found the control character U+000A (\"\\x0a\")"},
    {"csv: unterminated quote", "movieId,title,genres\n1,\"Open,Drama\n", 0, ANNB_E_INPUT,
     "cat:2:3: expected a closing quote"},
};

static int bad_read_catalog(annb_error *err, int *cleared, void **state, const char *name,
                            const char *text, size_t size)
{
    annb_catalog c;
    int rc = read_catalog(&c, err, state, name, text, size);
    *cleared = !c.entries && !c.count && !c.genre_names && !c.genre_ids && !c.genre_count;
    annb_catalog_release(&c);
    return rc;
}

static void test_bad_catalogs(void **state)
{
    run_bad_cases(state, bad_catalogs, sizeof bad_catalogs / sizeof bad_catalogs[0], "cat",
                  bad_read_catalog);
}

static void test_catalog_limits(void **state)
{
    /* ANNB_MAX_GENRES + 1 distinct genres. */
    size_t cap = 16 * (ANNB_MAX_GENRES + 2) + 64, len;
    char *text = malloc(cap);
    assert_non_null(text);
    len = (size_t)sprintf(text, "1::T::");
    for (unsigned j = 0; j <= ANNB_MAX_GENRES; j++) len += (size_t)sprintf(text + len, "%sg%u", j ? "|" : "", j);
    len += (size_t)sprintf(text + len, "\n");
    annb_catalog c;
    annb_error err;
    int rc = read_catalog(&c, &err, state, "cat", text, len);
    free(text);
    assert_int_equal(rc, ANNB_E_LIMIT);
    assert_non_null(strstr(err.message, "expected at most 1024 distinct genres"));

    /* A title over ANNB_MAX_TITLE_BYTES once latin-1 doubles it. */
    text = malloc(ANNB_MAX_TITLE_BYTES + 64);
    assert_non_null(text);
    len = (size_t)sprintf(text, "1::");
    memset(text + len, 0xe9, ANNB_MAX_TITLE_BYTES / 2 + 1);
    len += ANNB_MAX_TITLE_BYTES / 2 + 1;
    len += (size_t)sprintf(text + len, "::Drama\n");
    rc = read_catalog(&c, &err, state, "cat", text, len);
    free(text);
    assert_int_equal(rc, ANNB_E_LIMIT);
    assert_non_null(strstr(err.message, "cat:1:4: expected a title of at most 4096 bytes of UTF-8, found 4098"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_embeddings),
        cmocka_unit_test(test_real_layouts),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_build_opts_size),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_word2vec),
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_decimal_comma_locale),
        cmocka_unit_test(test_large_spark_file),
        cmocka_unit_test(test_error_position_after_first_block),
        cmocka_unit_test(test_block_boundary_shifts),
        cmocka_unit_test(test_shortcut_agrees),
        cmocka_unit_test(test_shortcut_agrees_across_blocks),
        cmocka_unit_test(test_values_are_strtof),
        cmocka_unit_test(test_bad_embeddings),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_movies_dat),
        cmocka_unit_test(test_movies_csv),
        cmocka_unit_test(test_catalog_fixtures),
        cmocka_unit_test(test_movies_dat_block_boundary),
        cmocka_unit_test(test_bad_catalogs),
        cmocka_unit_test(test_catalog_limits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
