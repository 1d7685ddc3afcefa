/*
 * question.c - the one question model (annb_ask): which option goes with
 * which question, where each subject's vector comes from, and how shards are
 * asked. Every front end (ann-query, the JSON protocol, ann-serve, Python)
 * translates its own form into an annb_question and this answers it, so the
 * rules and the messages are the same everywhere.
 * A client of the public search API only (annb_search, annb_recommend,
 * annb_search_shards, annb_vector_get): it adds no search of its own.
 */
#include "annb.h"
#include "ingest.h" /* annb_error_set */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The struct_size of the first annb_question (0.2): every field up to exact. */
#define ANNB_QUESTION_SIZE_0_2 (offsetof(annb_question, exact) + sizeof(int))

void annb_question_init(annb_question *q)
{
    if (q) *q = (annb_question)ANNB_QUESTION_INIT;
}

annb_space annb_question_space(annb_question_kind kind)
{
    return kind == ANNB_Q_SIMILAR_USERS || kind == ANNB_Q_USERS_FOR_ITEM ? ANNB_SPACE_USERS
                                                                          : ANNB_SPACE_ITEMS;
}

const annb_bundle *annb_item_owner(const annb_bundle *const *bundles, size_t n, int64_t id)
{
    for (size_t i = 0; bundles && i < n; i++)
        if (bundles[i] && annb_item_genres(bundles[i], id, NULL, 0) >= 0) return bundles[i];
    return NULL;
}

/* What a question needs from the bundles, resolved once. */
typedef struct asking {
    const annb_bundle *const *b;
    size_t n;
    const annb_bundle *users; /* the first bundle that stores users, or NULL */
    uint32_t dim;
    annb_error *err;
} asking;

static int needs_users(annb_question_kind kind)
{
    return kind == ANNB_Q_ITEMS_FOR_USER || kind == ANNB_Q_SIMILAR_USERS ||
           kind == ANNB_Q_USERS_FOR_ITEM;
}

static int subject_is_item(annb_question_kind kind)
{
    return kind == ANNB_Q_SIMILAR_ITEMS || kind == ANNB_Q_USERS_FOR_ITEM;
}

/* The bytes of s that fit in `most` without cutting a UTF-8 character (a
 * byte that starts none counts as one). */
static int fitting(const char *s, size_t most)
{
    size_t n = strlen(s), at = 0;
    while (at < n) {
        size_t len = annb_text_char(s + at, n - at, NULL);
        if (!len) len = 1;
        if (len > most - at) break;
        at += len;
    }
    return (int)at;
}

/* "unknown genre "X"; the genres are: A, B, .." within the message's room,
 * cut at a character boundary (names are UTF-8). */
static int unknown_genre(const asking *a, const char *name)
{
    const annb_bundle *b = a->b[0];
    uint32_t n = annb_genre_count(b);
    char list[400] = "";
    size_t used = 0;
    for (uint32_t g = 0; g < n && used < sizeof list; g++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", g ? ", " : "",
                                 annb_genre_name(b, g));
    if (used >= sizeof list) {
        size_t at = sizeof list - 5;
        while (at > 0 && ((unsigned char)list[at] & 0xC0) == 0x80) at--;
        strcpy(list + at, ", ..");
    }
    return annb_error_set(a->err, ANNB_E_NOT_FOUND, "unknown genre \"%.*s\"; the genres are: %s",
                          fitting(name, 64), name, list);
}

/* The combination rules: what each question may take and the bundles must
 * hold. Returns ANNB_OK or the code, with the reason in a->err. */
static int check(const asking *a, const annb_question *q)
{
    const annb_question_kind kind = q->kind;
    const annb_space space = annb_question_space(kind);
    if (needs_users(kind) && !a->users)
        return annb_error_set(a->err, ANNB_E_UNSUPPORTED,
                              a->n == 1 ? "the bundle has no users (build with --users)"
                                        : "none of the bundles has users (build with --users)");
    if (q->genre_count && space == ANNB_SPACE_USERS)
        return annb_error_set(a->err, ANNB_E_INVALID,
                              "genres filter items, and this question answers users");
    if (q->exclude_seen && kind != ANNB_Q_ITEMS_FOR_USER)
        return annb_error_set(a->err, ANNB_E_INVALID,
                              "excluding seen items goes with the items for a stored user only");
    if (q->exclude_seen && a->n > 1)
        return annb_error_set(a->err, ANNB_E_UNSUPPORTED,
                              "excluding seen items needs a single bundle: over shards, send "
                              "the seen items as excluded IDs");
    if (q->exclude_seen && !annb_bundle_has_seen(a->b[0]))
        return annb_error_set(a->err, ANNB_E_UNSUPPORTED,
                              "the bundle has no interactions (build with --interactions)");
    if (q->genre_count && !annb_genre_count(a->b[0]))
        return annb_error_set(a->err, ANNB_E_UNSUPPORTED,
                              "the bundle has no catalog genres to filter on (build with a "
                              "catalog)");
    for (size_t i = 0; i < q->genre_count; i++) {
        uint32_t g = 0, n = annb_genre_count(a->b[0]);
        if (!q->genres[i]) return annb_error_set(a->err, ANNB_E_INVALID, "genre %zu is NULL", i + 1);
        while (g < n && strcmp(annb_genre_name(a->b[0], g), q->genres[i])) g++;
        if (g == n) return unknown_genre(a, q->genres[i]);
    }
    return ANNB_OK;
}

/* How a message names an ID: the text it was given as (quoted when the
 * space has string IDs), else the integer. */
static const char *id_name(char buf[96], int64_t id, const char *text, int keyed)
{
    if (text && keyed) snprintf(buf, 96, "\"%.*s\"", fitting(text, 80), text);
    else if (text) snprintf(buf, 96, "%.*s", fitting(text, 80), text);
    else snprintf(buf, 96, "%lld", (long long)id);
    return buf;
}

/* The vector of subject `id` (an item from whichever shard holds it, or a
 * user) into out; text: how the question named it, or NULL. */
static int subject_vector(const asking *a, annb_question_kind kind, int64_t id, const char *text,
                          float *out)
{
    char name[96];
    if (!subject_is_item(kind)) {
        if (annb_vector_get(a->users, ANNB_SPACE_USERS, id, out) == ANNB_OK) return ANNB_OK;
        return annb_error_set(a->err, ANNB_E_NOT_FOUND, "user %s is not in the bundle",
                              id_name(name, id, text, annb_space_has_keys(a->users, ANNB_SPACE_USERS)));
    }
    for (size_t i = 0; i < a->n; i++)
        if (annb_vector_get(a->b[i], ANNB_SPACE_ITEMS, id, out) == ANNB_OK) return ANNB_OK;
    id_name(name, id, text, annb_space_has_keys(a->b[0], ANNB_SPACE_ITEMS));
    if (a->n > 1)
        return annb_error_set(a->err, ANNB_E_NOT_FOUND, "item %s is in none of the bundles", name);
    return annb_error_set(a->err, ANNB_E_NOT_FOUND, "item %s is not in the bundle", name);
}

/* IDs named as text (annb_question.subject_texts, exclude_texts) into
 * out[0..n), read in `space` of b. Text that cannot be an ID there fails;
 * one that is absent gets its ID all the same (subject_vector names it). */
static int ids_of_texts(const asking *a, const annb_bundle *b, annb_space space,
                        const char *const *texts, size_t n, int64_t *out)
{
    const char *what = space == ANNB_SPACE_USERS ? "user" : "item";
    for (size_t i = 0; i < n; i++) {
        char name[96];
        if (!texts[i]) return annb_error_set(a->err, ANNB_E_INVALID, "%s ID %zu is NULL", what, i + 1);
        if (annb_space_id_of(b, space, texts[i], strlen(texts[i]), &out[i]) == ANNB_E_INVALID)
            return annb_error_set(a->err, ANNB_E_INVALID, "%s ID %s: expected an integer (the "
                                  "bundle's %s IDs are integers)", what,
                                  id_name(name, 0, texts[i], 1), what);
    }
    return ANNB_OK;
}

/* A failed search: the library's code, named. */
static int search_failed(const asking *a, int rc)
{
    if (rc == ANNB_E_NOT_FOUND) /* checked above; only a race with nothing can get here */
        return annb_error_set(a->err, rc, "an ID or genre is not in the bundle");
    return annb_error_set(a->err, rc, "search failed: %s", annb_strerror(rc));
}

/* SIMILAR_ITEMS and SIMILAR_USERS leave each subject out of its own answer
 * only: one more result is asked for, the subject dropped from its list
 * (where it comes back), the list cut to k. */
static void drop_subjects(annb_hit *hits, const annb_hit *wide, const int64_t *subjects,
                          size_t count, size_t k)
{
    for (size_t i = 0; i < count; i++) {
        const annb_hit *from = wide + i * (k + 1);
        annb_hit *to = hits + i * k;
        size_t j = 0;
        for (size_t f = 0; f < k + 1 && j < k; f++)
            if (from[f].id != subjects[i] || from[f].id == ANNB_ID_NONE) to[j++] = from[f];
    }
}

static int ask(annb_hit *hits, const asking *a, const annb_question *q)
{
    const annb_question_kind kind = q->kind;
    const size_t count = q->count, k = q->k, dim = a->dim;
    const int self_out = kind == ANNB_Q_SIMILAR_ITEMS || kind == ANNB_Q_SIMILAR_USERS;
    const size_t kk = self_out ? k + 1 : k;
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    o.space = annb_question_space(kind);
    o.exclude_ids = q->exclude_ids;
    o.exclude_count = q->exclude_count;
    o.genres = q->genres;
    o.genre_count = q->genre_count;
    o.nprobe = q->nprobe;
    o.ef_search = q->ef_search;
    o.threads = q->threads;
    o.exact = q->exact;
    if (kind == ANNB_Q_ITEMS_FOR_VECTOR) {
        int rc = annb_search_shards(a->b, a->n, q->vectors, count, k, &o, hits);
        return rc ? search_failed(a, rc) : ANNB_OK;
    }
    if (count > SIZE_MAX / dim / sizeof(float) || count > SIZE_MAX / kk / sizeof(annb_hit))
        return annb_error_set(a->err, ANNB_E_NOMEM, "out of memory for %zu questions", count);
    const int recommend = kind == ANNB_Q_ITEMS_FOR_USER && a->n == 1;
    /* annb_recommend reads the stored users' vectors itself: one vector of
     * room is enough to check that each subject is there. */
    float *v = malloc((recommend ? 1 : count) * dim * sizeof *v);
    annb_hit *wide = self_out ? malloc(count * kk * sizeof *wide) : hits;
    int rc = v && wide ? ANNB_OK : annb_error_set(a->err, ANNB_E_NOMEM, "out of memory");
    /* Every subject is looked up first, so that a missing one is named. */
    for (size_t i = 0; rc == ANNB_OK && i < count; i++)
        rc = subject_vector(a, kind, q->subjects[i], q->subject_texts ? q->subject_texts[i] : NULL,
                            recommend ? v : v + i * dim);
    if (rc == ANNB_OK) {
        o.exclude_seen = q->exclude_seen;
        if (recommend) rc = annb_recommend(a->b[0], q->subjects, count, k, &o, hits);
        else if (o.space == ANNB_SPACE_USERS) rc = annb_search(a->users, v, count, kk, &o, wide);
        else rc = annb_search_shards(a->b, a->n, v, count, kk, &o, wide);
        if (rc) rc = search_failed(a, rc);
    }
    if (rc == ANNB_OK && self_out) drop_subjects(hits, wide, q->subjects, count, k);
    free(v);
    if (self_out) free(wide);
    return rc;
}

/* ask() once the subjects and exclusions named as text are IDs. */
static int ask_texts(annb_hit *hits, const asking *a, annb_question *q)
{
    if (q->kind == ANNB_Q_ITEMS_FOR_VECTOR) q->subject_texts = NULL;
    if (!q->subject_texts && !q->exclude_text_count) return ask(hits, a, q);
    const annb_space answers = annb_question_space(q->kind);
    const annb_space asks = subject_is_item(q->kind) ? ANNB_SPACE_ITEMS : ANNB_SPACE_USERS;
    const size_t nsub = q->subject_texts ? q->count : 0;
    const size_t nex = q->exclude_count + q->exclude_text_count;
    if (nex < q->exclude_count || nsub > SIZE_MAX / sizeof(int64_t) - nex)
        return annb_error_set(a->err, ANNB_E_NOMEM, "out of memory");
    int64_t *ids = malloc((nsub + nex ? nsub + nex : 1) * sizeof *ids);
    if (!ids) return annb_error_set(a->err, ANNB_E_NOMEM, "out of memory");
    int64_t *subjects = ids, *excluded = ids + nsub;
    const annb_bundle *in_asks = asks == ANNB_SPACE_USERS ? a->users : a->b[0];
    const annb_bundle *in_answers = answers == ANNB_SPACE_USERS ? a->users : a->b[0];
    int rc = ids_of_texts(a, in_asks, asks, q->subject_texts, nsub, subjects);
    if (rc == ANNB_OK)
        rc = ids_of_texts(a, in_answers, answers, q->exclude_texts, q->exclude_text_count,
                          excluded + q->exclude_count);
    if (rc == ANNB_OK) {
        if (q->exclude_count) memcpy(excluded, q->exclude_ids, q->exclude_count * sizeof *excluded);
        if (nsub) q->subjects = subjects;
        q->exclude_ids = excluded;
        q->exclude_count = nex;
        rc = ask(hits, a, q);
    }
    free(ids);
    return rc;
}

int annb_ask(annb_hit *hits, const annb_bundle *const *bundles, size_t n,
             const annb_question *given, annb_error *err)
{
    annb_question q = ANNB_QUESTION_INIT;
    if (!given || given->struct_size < ANNB_QUESTION_SIZE_0_2)
        return annb_error_set(err, ANNB_E_INVALID, "annb_ask: no question, or struct_size too small");
    memcpy(&q, given, given->struct_size < sizeof q ? given->struct_size : sizeof q);
    q.struct_size = sizeof q;
    if (!hits || !bundles || n == 0)
        return annb_error_set(err, ANNB_E_INVALID, "annb_ask: no bundle or no room for answers");
    if (q.kind < ANNB_Q_ITEMS_FOR_USER || q.kind > ANNB_Q_USERS_FOR_ITEM)
        return annb_error_set(err, ANNB_E_INVALID, "annb_ask: unknown question kind %d", (int)q.kind);
    if (q.count == 0 || q.k == 0 ||
        (q.kind == ANNB_Q_ITEMS_FOR_VECTOR ? !q.vectors : !q.subjects && !q.subject_texts) ||
        (q.exclude_count && !q.exclude_ids) || (q.exclude_text_count && !q.exclude_texts) ||
        (q.genre_count && !q.genres))
        return annb_error_set(err, ANNB_E_INVALID,
                              "annb_ask: a question needs count and k of at least 1, its "
                              "subjects or vectors, and the arrays its counts promise");
    if (q.k >= SIZE_MAX / sizeof(annb_hit) / q.count)
        return annb_error_set(err, ANNB_E_INVALID, "annb_ask: count x k is too large");
    asking a = {bundles, n, NULL, 0, err};
    annb_bundle_info first, info;
    for (size_t i = 0; i < n; i++) {
        if (!bundles[i]) return annb_error_set(err, ANNB_E_INVALID, "annb_ask: bundle %zu is NULL", i);
        annb_bundle_info_get(&info, bundles[i]);
        if (i == 0) first = info;
        if (!info.dimension)
            return annb_error_set(err, ANNB_E_INVALID, "annb_ask: the bundle was opened for "
                                  "its structure only");
        if (info.dimension != first.dimension || info.metric != first.metric)
            return annb_error_set(err, ANNB_E_INVALID,
                                  "the bundles disagree on dimension or metric (bundle %zu: %u, "
                                  "%s; bundle 1: %u, %s)", i + 1, info.dimension,
                                  annb_metric_name(info.metric), first.dimension,
                                  annb_metric_name(first.metric));
        if (!a.users && annb_space_count(bundles[i], ANNB_SPACE_USERS)) a.users = bundles[i];
    }
    a.dim = first.dimension;
    int rc = check(&a, &q);
    return rc ? rc : ask_texts(hits, &a, &q);
}
