/*
 * search_example.c - annb-example-search: libannb in a service, in one page.
 *
 *   annb-example-search BUNDLE ITEM_ID [K]
 *
 * prints the K (default 10) items most similar to ITEM_ID, the item itself
 * excluded: rank, ID, score, title and genres. It is what a "more like this"
 * endpoint does per request, minus the HTTP:
 *
 *   at start-up  annb_open()          map and check the bundle once  (main)
 *   per request  annb_ask()           the question "items like this one": top-k,
 *                                     with real item IDs (similar_items)
 *                annb_item_title(), annb_item_genres()   catalog lookups (print_hits)
 *   at shutdown  annb_close()                                         (main)
 *
 * An open bundle is immutable, so a real service shares one handle between
 * all its request threads without locking.
 *
 * Build (after the library): cc -Ilib search_example.c -Lbuild -lannb
 * Exit codes: 0 ok, 1 error (bad bundle, unknown item), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annb.h"

#define PROG "annb-example-search"
#define DEFAULT_K 10
#define MAX_K 10000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " BUNDLE ITEM_ID [K]\n"
            "\n"
            "Prints the K (default %d, at most %d) items of BUNDLE most similar to\n"
            "ITEM_ID, the item itself excluded: rank, ID, score, title, genres.\n"
            "Exit status: 0 ok, 1 error, 2 usage.\n",
            DEFAULT_K, MAX_K);
}

/* A whole decimal number in [min, max], nothing else on the line. */
static int parse_int64(int64_t *out, const char *s, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < min || v > max)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/*
 * Genres of an item. annb_item_genres() works like snprintf: it returns the
 * length the full string needs, so a caller with a small buffer can tell
 * that it was cut and retry with a bigger one. `buf` is caller-owned; the
 * returned pointer is either buf or a malloc'ed string stored in *heap, which
 * the caller frees.
 */
static const char *item_genres(const annb_bundle *b, int64_t id, char *buf, size_t size, char **heap)
{
    *heap = NULL;
    int need = annb_item_genres(b, id, buf, size);
    if (need < 0)
        return "";
    if ((size_t)need < size)
        return buf;
    *heap = malloc((size_t)need + 1);
    if (!*heap || annb_item_genres(b, id, *heap, (size_t)need + 1) < 0)
        return buf; /* out of memory: the truncated string will do */
    return *heap;
}

/* A title or a placeholder: items may have no catalog entry. */
static const char *item_title(const annb_bundle *b, int64_t id)
{
    const char *title = annb_item_title(b, id);
    return title ? title : "(no title)";
}

/* Prints the answer; returns 0, or -1 when stdout could not be written. */
static int print_hits(const annb_bundle *b, const annb_bundle_info *info, int64_t item_id,
                      const annb_hit *hits, size_t k)
{
    /* Titles are lent by the bundle (valid until annb_close) and are UTF-8
     * whatever the catalog's encoding was. */
    char genres[256];
    char *heap;
    const char *g = item_genres(b, item_id, genres, sizeof genres, &heap);
    printf("# similar to %" PRId64 " %s [%s]\n", item_id, item_title(b, item_id), g);
    free(heap);

    const char *metric = annb_metric_name(info->metric);
    printf("# %" PRIu64 " items, dimension %" PRIu32 ", metric %s (%s is better), index %s\n",
           info->count, info->dimension, metric ? metric : "?",
           info->metric == ANNB_METRIC_L2 ? "lower" : "higher", info->index ? info->index : "?");
    printf("%4s  %10s  %10s  %s\n", "rank", "id", "score", "title [genres]");

    /* Fewer than k items left: the remaining slots hold ANNB_ID_NONE. */
    for (size_t i = 0; i < k && hits[i].id != ANNB_ID_NONE; i++) {
        g = item_genres(b, hits[i].id, genres, sizeof genres, &heap);
        printf("%4zu  %10" PRId64 "  %10.4f  %s [%s]\n", i + 1, hits[i].id,
               (double)hits[i].score, item_title(b, hits[i].id), g);
        free(heap);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

/*
 * One request: the k items most similar to item_id. This is the part a
 * service runs per call, on a bundle opened once at start-up; it only reads
 * the bundle, so many threads may run it at once. Returns 0 or 1.
 */
static int similar_items(const annb_bundle *b, const char *path, int64_t item_id, size_t k)
{
    /* What the bundle holds: the metric says how to read the scores. */
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);

    /* The question, as every annb front end asks it: items like this item.
     * The library takes the item's stored vector and leaves the item out of
     * its own answer; it still returns k other items when it has them.
     * Filters (exclude_ids, genres), search effort and threads are fields of
     * the same struct. */
    annb_question q = ANNB_QUESTION_INIT;
    q.kind = ANNB_Q_SIMILAR_ITEMS;
    q.subjects = &item_id;
    q.count = 1;
    q.k = k;

    annb_hit *hits = malloc(k * sizeof *hits);
    annb_error err;
    int rc = hits ? annb_ask(hits, &b, 1, &q, &err) : ANNB_E_NOMEM;

    /* An unknown ID is an ordinary answer, not a crash: err says which. */
    int status = 0;
    if (rc != ANNB_OK) {
        fprintf(stderr, PROG ": %s: %s\n", path, hits ? err.message : annb_strerror(rc));
        status = 1;
    } else if (print_hits(b, &info, item_id, hits, k) != 0) {
        fprintf(stderr, PROG ": writing the results: %s\n", strerror(errno));
        status = 1;
    }
    free(hits);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 3 || argc > 4) {
        usage(stderr);
        return 2;
    }
    int64_t item_id, k = DEFAULT_K;
    /* INT64_MIN is ANNB_ID_NONE, never a real ID. */
    if (parse_int64(&item_id, argv[2], INT64_MIN + 1, INT64_MAX) != 0) {
        fprintf(stderr, PROG ": ITEM_ID must be a whole number, not '%s'\n", argv[2]);
        return 2;
    }
    if (argc == 4 && parse_int64(&k, argv[3], 1, MAX_K) != 0) {
        fprintf(stderr, PROG ": K must be a whole number from 1 to %d, not '%s'\n", MAX_K, argv[3]);
        return 2;
    }

    /* Start-up: open once. The error struct lives on our stack; on failure
     * its message names the file and the byte offset of the problem, and
     * the return code says what kind of problem it is. */
    annb_bundle *bundle;
    annb_error err;
    int rc = annb_open(&bundle, argv[1], NULL, &err);
    if (rc != ANNB_OK) {
        fprintf(stderr, PROG ": %s (%s)\n", err.message, annb_strerror(rc));
        return 1;
    }

    int status = similar_items(bundle, argv[1], item_id, (size_t)k);

    /* Shutdown: every pointer the bundle lent (titles) becomes invalid. */
    annb_close(bundle);
    return status;
}
