/* test_replace.c - a service keeps answering from an open bundle while a new
 * build is renamed over the same path (the publish pattern of docs/publishing.md);
 * what a build may replace (SPEC 4.3): never a non-regular file or an input;
 * the unnamed file while writing, the named fallback and its cleanup;
 * expect_sha256; bundle paths that are FIFOs or devices. */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "annb.h"
#include "annb_format.h"
#include "build.h"
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

/* ---- what a build may replace ------------------------------------------ */

/* The names in dir, sorted and space-separated, into out. */
static const char *names_in(char *out, size_t size, const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    size_t pos = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, ".."))
            pos += (size_t)snprintf(out + pos, size - pos, "%s ", list[i]->d_name);
        free(list[i]);
    }
    free(list);
    assert_true(pos < size);
    return out;
}

static void expect_same_file(const char *path, const uint8_t *bytes, size_t size)
{
    size_t n;
    uint8_t *d = tu_read_file(path, &n);
    assert_int_equal(n, size);
    assert_memory_equal(d, bytes, size);
    free(d);
}

/* Builds csv (+ catalog) into out and expects rc with msg in the message. */
static void expect_build(const char *csv, const char *catalog, const char *out,
                         const annb_build_opts *o, int rc, const char *msg)
{
    annb_error err = {0};
    int got = annb_build(NULL, csv, catalog, out, o, &err);
    if (got != rc || (msg && !strstr(err.message, msg)))
        fail_msg("build -o %s: %d (%s), expected %d with '%s'", out, got, err.message, rc,
                 msg ? msg : "");
}

/* Not a regular file: refused (IO) before anything is read, left as it was.
 * A FIFO is never opened, so nothing blocks (the test would hang). */
static void test_output_not_regular(void **state)
{
    (void)state;
    tu_rng r;
    tu_data items;
    char dir[256], csv[512], fifo[512], sub[512], link[512], names[4096], before[4096];
    tu_items_setup(&items, &r, dir, csv, 50, 4, 3);
    struct stat st;
    expect_build(csv, NULL, "/dev/null", NULL, ANNB_E_IO,
                 "/dev/null: is a character device, not a regular file");
    assert_int_equal(stat("/dev/null", &st), 0);
    if (!S_ISCHR(st.st_mode)) { /* a regression must not leave the machine without it */
        unlink("/dev/null");
        mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3));
        fail_msg("/dev/null was replaced by the build (restored)");
    }
    assert_int_equal(mkfifo(tu_path(fifo, dir, "fifo"), 0644), 0);
    expect_build(csv, NULL, fifo, NULL, ANNB_E_IO, "is a FIFO, not a regular file");
    assert_int_equal(mkdir(tu_path(sub, dir, "sub"), 0755), 0);
    expect_build(csv, NULL, sub, NULL, ANNB_E_IO, "is a directory, not a regular file");
    assert_int_equal(symlink("sub", tu_path(link, dir, "link.annb")), 0);
    expect_build(csv, NULL, link, NULL, ANNB_E_IO, "is a symbolic link");
    char slash[600];
    snprintf(slash, sizeof slash, "%s/", sub);
    expect_build(csv, NULL, slash, NULL, ANNB_E_INVALID, "ends in '/'");
    names_in(before, sizeof before, dir);
    assert_string_equal(before, "fifo items.csv link.annb sub ");
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_string_equal(names_in(names, sizeof names, sub), "");
    tu_data_free(&items);
    tu_tmpdir_remove(dir);
}

/* An input as the output, by any path to the same inode: INVALID, naming
 * the input, the input's bytes intact. */
static void test_output_is_input(void **state)
{
    (void)state;
    tu_rng r;
    tu_data items;
    char dir[256], csv[512], cat[512], hard[512], dotted[600], users[512];
    tu_items_setup(&items, &r, dir, csv, 50, 4, 5);
    tu_path(cat, dir, "movies.csv");
    tu_write_text(cat, "movieId,title,genres\n1,A (1995),Drama\n");
    tu_path(users, dir, "users.csv");
    tu_write_spark_csv(users, &items);
    size_t csv_size, cat_size;
    uint8_t *csv_bytes = tu_read_file(csv, &csv_size), *cat_bytes = tu_read_file(cat, &cat_size);
    assert_int_equal(link(csv, tu_path(hard, dir, "hard.annb")), 0);
    snprintf(dotted, sizeof dotted, "%s/./items.csv", dir);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    o.users_path = users;
    const char *outs[] = {csv, hard, dotted, cat, users};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        expect_build(csv, cat, outs[i], &o, ANNB_E_INVALID, "is the same file as the input");
    expect_build(csv, cat, cat, &o, ANNB_E_INVALID, cat);
    expect_same_file(csv, csv_bytes, csv_size);
    expect_same_file(cat, cat_bytes, cat_size);
    /* Without the users option, users.csv is not an input: replaced. */
    expect_build(csv, cat, users, NULL, ANNB_OK, NULL);
    free(csv_bytes);
    free(cat_bytes);
    tu_data_free(&items);
    tu_tmpdir_remove(dir);
}

/* The writer's callbacks see the file system as it is mid-write. */
typedef struct probe {
    const char *dir;
    char during_write[4096], before_name[4096];
    int writes, remove_all; /* remove_all: call annbf_temp_remove_all at the first write */
} probe;

static void probe_tee(void *ctx, const void *data, size_t size)
{
    (void)data;
    (void)size;
    probe *p = ctx;
    if (p->writes++ == 0) {
        names_in(p->during_write, sizeof p->during_write, p->dir);
        if (p->remove_all) annbf_temp_remove_all();
    }
}

static int probe_accept(void *ctx, annbf_error *err)
{
    (void)err;
    probe *p = ctx;
    names_in(p->before_name, sizeof p->before_name, p->dir);
    return ANNBF_OK;
}

static annbf_writer *small_writer(const char *text)
{
    annbf_writer *w;
    annbf_error fe;
    assert_int_equal(annbf_writer_new(&w, &fe), ANNBF_OK);
    assert_int_equal(annbf_writer_add(w, "TEXT", 0, ANNBF_CODEC_RAW, ANNBF_ELEM_BYTES,
                                      strlen(text), text, strlen(text), &fe), ANNBF_OK);
    return w;
}

/* O_TMPFILE: while the file is written and until it is complete, it has
 * no name; the named fallback has exactly one, which annbf_temp_remove_all
 * (what a signal handler calls) removes, failing the commit cleanly. */
static void test_unnamed_while_writing(void **state)
{
    (void)state;
    char dir[256], path[512], names[4096];
    tu_tmpdir_make(dir);
    tu_path(path, dir, "b.annb");
    tu_write_text(path, "old bundle");
    annbf_error fe;
    annbf_writer *w = small_writer("new bundle");
    probe p = {.dir = dir};
    annbf_commit_opts co = {.tee = probe_tee, .accept = probe_accept, .ctx = &p};
    uint64_t written = 0;
    assert_int_equal(annbf_writer_commit_opts(w, path, &co, &written, &fe), ANNBF_OK);
    assert_string_equal(p.during_write, "b.annb ");
    assert_string_equal(p.before_name, "b.annb ");
    assert_string_equal(names_in(names, sizeof names, dir), "b.annb ");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, written);
    assert_int_equal(st.st_mode & 0777, 0644);

    /* The fallback, over the same target: one NAME.tmp.XXXXXX while writing. */
    memset(&p, 0, sizeof p);
    p.dir = dir;
    co.named_temp = 1;
    assert_int_equal(annbf_writer_commit_opts(w, path, &co, NULL, &fe), ANNBF_OK);
    assert_int_equal(strncmp(p.during_write, "b.annb b.annb.tmp.", 18), 0);
    assert_int_equal(strlen(p.during_write), strlen("b.annb b.annb.tmp.XXXXXX "));
    assert_string_equal(names_in(names, sizeof names, dir), "b.annb ");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    /* The cleanup a signal handler runs, mid-write: the name is gone, the
     * commit fails (the rename finds nothing), the target is as it was. */
    size_t old_size;
    uint8_t *old = tu_read_file(path, &old_size);
    annbf_writer_free(w);
    w = small_writer("a third bundle");
    memset(&p, 0, sizeof p);
    p.dir = dir;
    p.remove_all = 1;
    assert_int_equal(annbf_writer_commit_opts(w, path, &co, NULL, &fe), ANNBF_E_IO);
    assert_string_equal(names_in(names, sizeof names, dir), "b.annb ");
    expect_same_file(path, old, old_size);
    /* ...and a later commit is not affected (its slot was freed). */
    assert_int_equal(annbf_writer_commit_opts(w, path, NULL, NULL, &fe), ANNBF_OK);
    assert_string_equal(names_in(names, sizeof names, dir), "b.annb ");
    free(old);
    annbf_writer_free(w);
    tu_tmpdir_remove(dir);
}

/* An accept callback that refuses: nothing named, nothing left, on both paths. */
static int refuse(void *ctx, annbf_error *err)
{
    (void)ctx;
    err->code = ANNBF_E_CHECKSUM;
    snprintf(err->message, sizeof err->message, "refused by the test");
    return ANNBF_E_CHECKSUM;
}

static void test_refused_before_name(void **state)
{
    (void)state;
    char dir[256], path[512], fresh[512], names[4096];
    tu_tmpdir_make(dir);
    tu_path(path, dir, "b.annb");
    tu_write_text(path, "old bundle");
    annbf_writer *w = small_writer("new bundle");
    annbf_error fe;
    for (int named = 0; named <= 1; named++) {
        annbf_commit_opts co = {.accept = refuse, .named_temp = named};
        assert_int_equal(annbf_writer_commit_opts(w, path, &co, NULL, &fe), ANNBF_E_CHECKSUM);
        assert_string_equal(fe.message, "refused by the test");
        assert_int_equal(annbf_writer_commit_opts(w, tu_path(fresh, dir, "new.annb"), &co, NULL,
                                                  &fe), ANNBF_E_CHECKSUM);
        assert_string_equal(names_in(names, sizeof names, dir), "b.annb ");
        expect_same_file(path, (const uint8_t *)"old bundle", 10);
    }
    annbf_writer_free(w);
    tu_tmpdir_remove(dir);
}

/* expect_sha256 through the library: a match keeps the bundle (either case
 * of hex), a mismatch gives CHECKSUM with both hashes and leaves the target
 * and the directory as they were, on the O_TMPFILE and the named paths. */
static void test_expect_sha256(void **state)
{
    (void)state;
    tu_rng r;
    tu_data items, other;
    char dir[256], csv[512], csv2[512], path[512], copy[512], names[4096], hex[65], upper[65];
    tu_items_setup(&items, &r, dir, csv, 80, 6, 9);
    int64_t ids[40];
    for (size_t i = 0; i < 40; i++) ids[i] = (int64_t)i * 3 + 1;
    tu_data_make(&other, 40, 6, ids, &r);
    tu_write_spark_csv(tu_path(csv2, dir, "other.csv"), &other);
    annb_error err = {0};
    tu_path(path, dir, "b.annb");
    assert_int_equal(annb_build(NULL, csv, NULL, path, NULL, &err), ANNB_OK);
    assert_int_equal(annb_file_sha256(hex, path, &err), ANNB_OK);
    for (int i = 0; i < 65; i++) upper[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);

    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    o.expect_sha256 = upper;
    annb_build_report rep;
    assert_int_equal(annb_build(&rep, csv, NULL, tu_path(copy, dir, "copy.annb"), &o, &err),
                     ANNB_OK);
    char got[65];
    assert_int_equal(annb_file_sha256(got, copy, &err), ANNB_OK);
    assert_string_equal(got, hex);
    assert_int_equal(unlink(copy), 0);

    size_t old_size;
    uint8_t *old = tu_read_file(path, &old_size);
    o.expect_sha256 = hex;
    for (int named = 0; named <= 1; named++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(annb_build_written(NULL, csv2, NULL, path, &o, named, &err),
                         ANNB_E_CHECKSUM);
        assert_non_null(strstr(err.message, "SHA-256 mismatch: built "));
        assert_non_null(strstr(err.message, hex));
        /* the built hash is the other build's, checked by building it plainly */
        expect_same_file(path, old, old_size);
        assert_string_equal(names_in(names, sizeof names, dir), "b.annb items.csv other.csv ");
    }
    char built[65];
    const char *b = strstr(err.message, "built ") + 6;
    memcpy(built, b, 64);
    built[64] = '\0';
    assert_int_equal(annb_build(NULL, csv2, NULL, copy, NULL, &err), ANNB_OK);
    assert_int_equal(annb_file_sha256(got, copy, &err), ANNB_OK);
    assert_string_equal(got, built);

    o.expect_sha256 = "abc";
    expect_build(csv, NULL, path, &o, ANNB_E_INVALID, "64 hex digits");
    o.expect_sha256 = "g" "000000000000000000000000000000000000000000000000000000000000000";
    expect_build(csv, NULL, path, &o, ANNB_E_INVALID, "64 hex digits");
    free(old);
    tu_data_free(&items);
    tu_data_free(&other);
    tu_tmpdir_remove(dir);
}

/* The named fallback writes the same bytes and leaves nothing else. */
static void test_named_fallback_build(void **state)
{
    (void)state;
    tu_rng r;
    tu_data items;
    char dir[256], csv[512], a[512], b[512], names[4096];
    tu_items_setup(&items, &r, dir, csv, 120, 8, 13);
    annb_error err = {0};
    assert_int_equal(annb_build(NULL, csv, NULL, tu_path(a, dir, "a.annb"), NULL, &err), ANNB_OK);
    tu_path(b, dir, "b.annb");
    tu_write_text(b, "old");
    assert_int_equal(annb_build_written(NULL, csv, NULL, b, NULL, 1, &err), ANNB_OK);
    size_t na, nb;
    uint8_t *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    assert_string_equal(names_in(names, sizeof names, dir), "a.annb b.annb items.csv ");
    free(da);
    free(db);
    tu_data_free(&items);
    tu_tmpdir_remove(dir);
}

/* A bundle path that is a FIFO (no writer ever comes) or a device: refused
 * at once. alarm() turns a blocking open into a failed test, not a hang. */
static void test_open_not_regular(void **state)
{
    (void)state;
    char dir[256], fifo[512], hex[65];
    tu_tmpdir_make(dir);
    assert_int_equal(mkfifo(tu_path(fifo, dir, "b.annb"), 0644), 0);
    alarm(60);
    annb_bundle *b = (annb_bundle *)1;
    annb_error err = {0};
    assert_int_equal(annb_open(&b, fifo, NULL, &err), ANNB_E_IO);
    assert_null(b);
    assert_non_null(strstr(err.message, "b.annb: not a regular file"));
    assert_int_equal(annb_file_sha256(hex, fifo, &err), ANNB_E_IO);
    assert_string_equal(hex, "");
    assert_non_null(strstr(err.message, "b.annb: not a regular file"));
    const char *devices[] = {"/dev/null", "/dev/zero", dir};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(annb_open(&b, devices[i], NULL, &err), ANNB_E_IO);
        assert_non_null(strstr(err.message, "not a regular file"));
        assert_int_equal(annb_file_sha256(hex, devices[i], &err), ANNB_E_IO);
    }
    alarm(0);
    tu_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rename_over_open_bundle),
        cmocka_unit_test(test_output_not_regular),
        cmocka_unit_test(test_output_is_input),
        cmocka_unit_test(test_unnamed_while_writing),
        cmocka_unit_test(test_refused_before_name),
        cmocka_unit_test(test_expect_sha256),
        cmocka_unit_test(test_named_fallback_build),
        cmocka_unit_test(test_open_not_regular),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
