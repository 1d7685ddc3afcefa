/*
 * test_progress - annb_build's progress (annb.h, annb_progress) after the
 * inputs are read: the phases of each kind of index in order (annb's IVF and
 * a Faiss IVF: train, add, tune, write; annb's graph: graph, tune, write;
 * exact: write), each with its unit, starting at done 0, never going back,
 * within its total, ended once with finished set, reported a bounded number
 * of times (the rows added in chunks: some report in between), every call
 * on the thread that called annb_build. A build without a callback writes
 * the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "annb.h"
#include "progress.h" /* ANNB_PROGRESS_REPORTS */
#include "testutil.h"

#define MAX_EVENTS 4096

typedef struct event {
    char phase[32], unit[32];
    int has_path;
    uint64_t done, total;
    int finished;
} event;

typedef struct recorder {
    pthread_t caller;
    int other_thread; /* a call came from another thread */
    size_t count;
    event ev[MAX_EVENTS];
} recorder;

static void record(void *ctx, const annb_progress *p)
{
    recorder *r = ctx;
    if (!pthread_equal(pthread_self(), r->caller)) r->other_thread = 1;
    if (r->count == MAX_EVENTS) return;
    event *e = &r->ev[r->count++];
    snprintf(e->phase, sizeof e->phase, "%s", p->phase);
    snprintf(e->unit, sizeof e->unit, "%s", p->unit ? p->unit : "(null)");
    e->has_path = p->path != NULL;
    e->done = p->done;
    e->total = p->total;
    e->finished = p->finished;
}

typedef struct fixture {
    char dir[256];
    tu_data big, small; /* 70000 x 8 (more than one chunk of rows to add), 3000 x 8 */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    tu_rng r;
    tu_rng_seed(&r, 7);
    tu_tmpdir_make(f->dir);
    int64_t *ids = malloc(70000 * sizeof *ids);
    for (int64_t i = 0; i < 70000; i++) ids[i] = i * 3 + 1;
    tu_data_make_clustered(&f->big, 70000, 8, ids, 64, 0.1, &r);
    tu_data_make_clustered(&f->small, 3000, 8, ids, 20, 0.1, &r);
    free(ids);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_data_free(&f->big);
    tu_data_free(&f->small);
    tu_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* One phase: events [from, to) of r, all of phase `phase`. */
static void check_phase(const recorder *r, size_t from, size_t to, const char *phase,
                        const char *unit, uint64_t total)
{
    assert_true(to > from + 1); /* a start and an end at least */
    assert_int_equal(r->ev[from].done, 0);
    assert_false(r->ev[from].finished);
    for (size_t i = from; i < to; i++) {
        const event *e = &r->ev[i];
        assert_string_equal(e->phase, phase);
        assert_string_equal(e->unit, unit);
        assert_false(e->has_path);
        assert_int_equal(e->finished, i + 1 == to);
        if (i > from) assert_true(e->done >= r->ev[i - 1].done);
        if (e->total) assert_true(e->done <= e->total);
        if (total && !e->finished) assert_int_equal(e->total, total);
    }
    const event *last = &r->ev[to - 1];
    if (total) { /* known from the start: the end is the whole of it */
        assert_int_equal(last->total, total);
        assert_int_equal(last->done, total);
        assert_true(to - from <= ANNB_PROGRESS_REPORTS + 2);
    } else { /* tune: known at the end */
        assert_true(last->done >= 1);
        assert_int_equal(last->total, last->done);
    }
}

/* Builds t with index `index`, recording; checks the phases are `phases`
 * (unit and total of each: 0 for tune's, ~0 for "the bundle's size"), and
 * that a build without progress gives the same bytes. Returns r. */
typedef struct want {
    const char *phase, *unit;
    uint64_t total;
} want;
#define BUNDLE_SIZE UINT64_MAX

static recorder *build_recorded(fixture *f, const tu_data *t, const char *index, const want *w,
                                size_t nw)
{
    char with[512], without[512];
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err;
    annb_matrix items = {t->ids, t->vecs, t->n, t->d};
    recorder *r = calloc(1, sizeof *r);
    r->caller = pthread_self();
    o.index = index;
    o.allow_low_recall = 1;
    o.progress = record;
    o.progress_ctx = r;
    int rc = annb_build_arrays(&rep, &items, NULL, NULL, tu_path(with, f->dir, "with.annb"), &o,
                               &err);
    if (rc) fail_msg("%s: %s", index, err.message);
    assert_false(r->other_thread);
    assert_true(r->count < MAX_EVENTS);
    size_t at = 0;
    for (size_t i = 0; i < nw; i++) {
        size_t end = at;
        while (end < r->count && strcmp(r->ev[end].phase, w[i].phase) == 0) end++;
        if (end == at) fail_msg("%s: phase %s missing at event %zu", index, w[i].phase, at);
        check_phase(r, at, end, w[i].phase, w[i].unit,
                    w[i].total == BUNDLE_SIZE ? rep.bundle_bytes : w[i].total);
        at = end;
    }
    assert_int_equal(at, r->count); /* nothing else */
    o.progress = NULL;
    o.progress_ctx = NULL;
    rc = annb_build_arrays(&rep, &items, NULL, NULL, tu_path(without, f->dir, "without.annb"), &o,
                           &err);
    if (rc) fail_msg("%s without progress: %s", index, err.message);
    size_t a, b;
    uint8_t *x = tu_read_file(with, &a), *y = tu_read_file(without, &b);
    assert_int_equal(a, b);
    assert_memory_equal(x, y, a);
    free(x);
    free(y);
    return r;
}

/* Some report between the start and the end of a phase: it moves. */
static void moves(const recorder *r, const char *phase)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->ev[i].phase, phase) == 0 && !r->ev[i].finished && r->ev[i].done > 0 &&
            r->ev[i].done < r->ev[i].total)
            return;
    fail_msg("no report in the middle of %s", phase);
}

/* An IVF index, annb's or Faiss's: train (its k-means iterations), add,
 * tune, write; the first two and the last move in between. */
static void ivf_phases(fixture *f, const char *index, uint64_t iterations)
{
    const want w[] = {{"train", "iterations", iterations}, {"add", "rows", 70000},
                      {"tune", "candidates", 0}, {"write", "bytes", BUNDLE_SIZE}};
    recorder *r = build_recorded(f, &f->big, index, w, 4);
    moves(r, "train");
    moves(r, "add");
    moves(r, "write");
    free(r);
}

static void test_ivf(void **state) { ivf_phases(*state, "ivf", 20); }

/* Faiss's IVF trains its quantizer with 10 iterations (faiss::IndexIVF's cp). */
static void test_faiss_ivf(void **state) { ivf_phases(*state, "IVF64,SQ8", 10); }

static void test_graph(void **state)
{
    fixture *f = *state;
    const want w[] = {{"graph", "rows", 3000}, {"tune", "candidates", 0},
                      {"write", "bytes", BUNDLE_SIZE}};
    free(build_recorded(f, &f->small, "graph", w, 3));
}

static void test_exact(void **state)
{
    fixture *f = *state;
    const want w[] = {{"write", "bytes", BUNDLE_SIZE}};
    free(build_recorded(f, &f->small, "flat", w, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ivf),
        cmocka_unit_test(test_faiss_ivf),
        cmocka_unit_test(test_graph),
        cmocka_unit_test(test_exact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
