/* modes.c - ann-query's runs: one question, a batch, every user, or the
 * JSON protocol on stdin. Each turns its flags into an annb_question and
 * lets annb_ask answer it: which option goes with which question, and what
 * a bundle must store, is the library's rule, not this tool's. */
#define _POSIX_C_SOURCE 200809L
#include "query.h"
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Fails with a message in c->err. */
static int ctx_fail(ctx *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int ctx_fail(ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err.message, sizeof c->err.message, fmt, ap);
    va_end(ap);
    c->err.code = code;
    return code;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* annb_ask; a failure's message names `where` (the bundle, or the file the
 * subjects came from) before the library's reason. */
static int ask(ctx *c, const annb_question *q, annb_hit *hits, const char *where)
{
    annb_error e = {0, ""};
    int rc = annb_ask(hits, (const annb_bundle *const *)c->b, c->n, q, &e);
    if (rc == ANNB_OK) return ANNB_OK;
    if (where) return ctx_fail(c, rc, "%s: %s", where, e.message);
    c->err = e;
    return rc;
}

/* Where a failure of the bundles is reported: the one bundle's path. */
static const char *bundle_name(const ctx *c)
{
    return c->n == 1 ? c->o->paths[0] : NULL;
}

static int open_bundles(ctx *c)
{
    const options *o = c->o;
    if (!(c->b = calloc(o->npaths, sizeof *c->b))) return ANNB_E_NOMEM;
    c->n = o->npaths;
    for (size_t i = 0; i < c->n; i++) {
        annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
        if (o->verify_all) oo.flags |= ANNB_OPEN_VERIFY_ALL;
        if (o->trust_faiss) oo.flags |= ANNB_OPEN_TRUST_FAISS;
        int rc = annb_open(&c->b[i], o->paths[i], &oo, &c->err);
        if (rc) return rc;
        annb_bundle_info info;
        annb_bundle_info_get(&info, c->b[i]);
        if (i == 0) c->info = info;
        else if (info.dimension != c->info.dimension || info.metric != c->info.metric)
            return ctx_fail(c, ANNB_E_CORRUPT, "%s: dimension %u, metric %s, but %s has %u, %s: "
                            "shards of one catalog must agree", o->paths[i], info.dimension,
                            annb_metric_name(info.metric), o->paths[0], c->info.dimension,
                            annb_metric_name(c->info.metric));
        for (size_t j = 0; j < i; j++)
            if (annb_bundle_id(c->b[j]) == annb_bundle_id(c->b[i]))
                return ctx_fail(c, ANNB_E_INVALID, "%s and %s are the same bundle", o->paths[j],
                                o->paths[i]);
    }
    c->dim = c->info.dimension;
    return ANNB_OK;
}

/* Whether `name` is one whole name of a list flag: a genre of the
 * catalog (genre_known), or an ID of `space` (id_known; a string ID may
 * hold commas too). */
static int genre_known(const ctx *c, annb_space space, const char *name)
{
    (void)space;
    for (uint32_t g = 0; g < annb_genre_count(c->b[0]); g++)
        if (strcmp(annb_genre_name(c->b[0], g), name) == 0) return 1;
    return 0;
}

static int id_known(const ctx *c, annb_space space, const char *name)
{
    return cli_id_named((const annb_bundle *const *)c->b, c->n, space, name);
}

/* Arguments of a repeatable list flag (--genre, --exclude): each a known
 * name as given (names may hold commas), otherwise a comma-separated list.
 * *out points into *storage. Unknown names go to annb_ask, which names
 * them (a genre with the known ones; an ID that cannot be one). */
static int split_names(const ctx *c, const char *const *args, size_t nargs,
                       int (*known)(const ctx *, annb_space, const char *), annb_space space,
                       const char ***out, size_t *count, char **storage)
{
    size_t bytes = 0, most = 0;
    for (size_t i = 0; i < nargs; i++) {
        bytes += strlen(args[i]) + 1;
        most += strlen(args[i]) / 2 + 1;
    }
    *count = 0;
    if (!nargs) return ANNB_OK;
    if (!(*storage = malloc(bytes)) || !(*out = malloc(most * sizeof **out))) return ANNB_E_NOMEM;
    char *at = *storage, *save = NULL;
    for (size_t i = 0; i < nargs; at += strlen(args[i++]) + 1) {
        strcpy(at, args[i]);
        if (known(c, space, at)) {
            (*out)[(*count)++] = at;
            continue;
        }
        for (char *t = strtok_r(at, ",", &save); t; t = strtok_r(NULL, ",", &save))
            (*out)[(*count)++] = t;
    }
    return ANNB_OK;
}

/* The first bundle that stores users: the one user questions ask. */
static const annb_bundle *users_bundle(const ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (annb_space_count(c->b[i], ANNB_SPACE_USERS)) return c->b[i];
    return c->b[0];
}

int query_setup(ctx *c)
{
    const options *o = c->o;
    annb_question_init(&c->q);
    int rc = open_bundles(c);
    if (rc == ANNB_OK) {
        c->users = users_bundle(c);
        c->user_keys = annb_space_has_keys(c->users, ANNB_SPACE_USERS);
        for (size_t i = 0; i < c->n; i++) c->item_keys |= annb_space_has_keys(c->b[i], ANNB_SPACE_ITEMS);
        rc = split_names(c, o->genre_args, o->ngenre_args, genre_known, ANNB_SPACE_ITEMS,
                         &c->genres, &c->q.genre_count, &c->genre_text);
        c->q.genres = c->genres;
    }
    /* --exclude: IDs of what the question answers, as text for the library */
    const annb_space answers = o->mode == M_SIMILAR_USERS || o->mode == M_USERS_FOR_ITEM
                                   ? ANNB_SPACE_USERS : ANNB_SPACE_ITEMS;
    if (rc == ANNB_OK)
        rc = split_names(c, o->exclude_args, o->nexclude_args, id_known, answers, &c->exclude,
                         &c->q.exclude_text_count, &c->exclude_text);
    c->q.exclude_texts = c->exclude;
    c->q.k = (size_t)o->k;
    c->q.exclude_seen = o->exclude_seen && !o->seen_file;
    c->q.nprobe = o->nprobe;
    c->q.ef_search = o->ef_search;
    c->q.exact = o->exact;
    c->q.threads = (int)o->threads;
    return rc;
}

void query_release(ctx *c)
{
    for (size_t i = 0; i < c->n; i++) annb_close(c->b[i]);
    free(c->b);
    free(c->exclude);
    free(c->exclude_text);
    annb_free(c->seen);
    free(c->genres);
    free(c->genre_text);
}

/* ------------------------------------------------------------------------ */
/* One question                                                              */
/* ------------------------------------------------------------------------ */

/* --exclude-seen FILE: the items `user` has seen, into q's exclude_ids. The
 * file's IDs are string IDs where the user's and the items' are. */
static int seen_from_file(ctx *c, annb_question *q, int64_t user, int user_keys)
{
    size_t count = 0;
    int rc = annb_seen_items_read(&c->seen, &count, c->o->seen_file, user, user_keys,
                                  c->item_keys, &c->err);
    q->exclude_ids = c->seen;
    q->exclude_count = rc == ANNB_OK ? count : 0;
    return rc;
}

/* The ID `text` names in `space` (of any shard for items), for headings and
 * titles; ANNB_ID_NONE when none does. */
static int64_t subject_id(const ctx *c, annb_space space, const char *text)
{
    int64_t id = ANNB_ID_NONE;
    if (space == ANNB_SPACE_USERS) {
        annb_space_id_of(c->users, space, text, strlen(text), &id);
        return id;
    }
    for (size_t i = 0; i < c->n; i++)
        if (annb_space_id_of(c->b[i], space, text, strlen(text), &id) == ANNB_OK) break;
    return id;
}

/* How a heading names the subject: a string ID as it is, an integer as the
 * number it reads as. */
static const char *subject_name(char num[24], int keyed, int64_t id, const char *text)
{
    if (keyed || id == ANNB_ID_NONE) return text;
    snprintf(num, 24, "%lld", (long long)id);
    return num;
}

static void describe_question(const ctx *c, const char *name, char *out, size_t size)
{
    const options *o = c->o;
    const int about_item = o->mode == M_ITEM || o->mode == M_USERS_FOR_ITEM;
    char num[24];
    const int64_t id = about_item ? subject_id(c, ANNB_SPACE_ITEMS, o->id_text) : ANNB_ID_NONE;
    const annb_bundle *owner = about_item && id != ANNB_ID_NONE
        ? annb_item_owner((const annb_bundle *const *)c->b, c->n, id) : NULL;
    const char *title = owner ? annb_item_title(owner, id) : NULL;
    char named[700];
    if (about_item) name = subject_name(num, c->item_keys, id, o->id_text);
    snprintf(named, sizeof named, "item %s%s%s%s", name, title ? " (" : "", title ? title : "",
             title ? ")" : "");
    size_t len = 0;
    switch (o->mode) {
    case M_USER_VEC: len = (size_t)snprintf(out, size, "items for user %s of %s", name, o->user_file); break;
    case M_ITEM: len = (size_t)snprintf(out, size, "items similar to %s", named); break;
    case M_VEC: len = (size_t)snprintf(out, size, "items for the given vector"); break;
    case M_USER: len = (size_t)snprintf(out, size, "items for user %s", name); break;
    case M_SIMILAR_USERS: len = (size_t)snprintf(out, size, "users similar to user %s", name); break;
    default: len = (size_t)snprintf(out, size, "users for %s", named); break;
    }
    if (o->exclude_seen && len < size)
        len += (size_t)snprintf(out + len, size - len, ", seen items excluded");
    for (size_t i = 0; i < c->q.genre_count && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", i ? "|" : ", genres ", c->genres[i]);
}

/* The question kind of each single-question mode. */
static annb_question_kind kind_of(mode m)
{
    switch (m) {
    case M_USER: return ANNB_Q_ITEMS_FOR_USER;
    case M_ITEM: return ANNB_Q_SIMILAR_ITEMS;
    case M_SIMILAR_USERS: return ANNB_Q_SIMILAR_USERS;
    case M_USERS_FOR_ITEM: return ANNB_Q_USERS_FOR_ITEM;
    default: return ANNB_Q_ITEMS_FOR_VECTOR; /* --vec, --user-vec */
    }
}

/* --user-vec FILE:ID: the vector of ID into v, the file's rows in *file;
 * *user gets the ID (annb_key_id of a string ID). */
static int user_vector(ctx *c, annb_vectors *file, float *v, int64_t *user)
{
    const options *o = c->o;
    const char *text = o->id_text;
    int rc = annb_vectors_read(file, c->dim, o->user_file, &c->err);
    if (rc) return rc;
    int64_t row = annb_vectors_row(file, text, strlen(text));
    if (row >= 0) {
        memcpy(v, file->vectors + (size_t)row * c->dim, c->dim * sizeof *v);
        *user = file->ids[row];
        return ANNB_OK;
    }
    int64_t id;
    if (file->keys)
        return ctx_fail(c, ANNB_E_NOT_FOUND, "%s: no vector with ID \"%s\"", o->user_file, text);
    if (cli_parse_i64(text, &id))
        return ctx_fail(c, ANNB_E_INVALID, "%s: ID \"%s\": expected an integer (the file's IDs "
                        "are integers)", o->user_file, text);
    return ctx_fail(c, ANNB_E_NOT_FOUND, "%s: no vector with ID %lld", o->user_file, (long long)id);
}

int run_single(ctx *c)
{
    const options *o = c->o;
    annb_question q = c->q;
    float *v = malloc(c->dim * sizeof *v);
    annb_hit *hits = malloc(q.k * sizeof *hits);
    annb_vectors file = {0};
    char question[1200], num[24];
    const char *name = o->id_text;
    int rc = v && hits ? ANNB_OK : ANNB_E_NOMEM;
    if (rc) goto out;
    q.kind = kind_of(o->mode);
    if (o->mode != M_USER_VEC && o->mode != M_VEC) q.subject_texts = &o->id_text;
    q.vectors = v;
    if (o->mode == M_USER_VEC) {
        int64_t user = ANNB_ID_NONE;
        rc = user_vector(c, &file, v, &user);
        if (rc == ANNB_OK && o->seen_file) rc = seen_from_file(c, &q, user, file.keys != NULL);
        if (rc == ANNB_OK) name = subject_name(num, file.keys != NULL, user, o->id_text);
    } else if (o->mode == M_VEC) {
        rc = annb_vector_parse(v, c->dim, o->arg, &c->err);
    } else if (o->mode == M_USER || o->mode == M_SIMILAR_USERS) {
        int64_t user;
        int found = annb_space_id_of(c->users, ANNB_SPACE_USERS, name, strlen(name), &user);
        /* A user text that cannot be an ID is annb_ask's to name. */
        if (o->seen_file && found != ANNB_E_INVALID)
            rc = seen_from_file(c, &q, user, c->user_keys);
        name = subject_name(num, c->user_keys, found == ANNB_E_INVALID ? ANNB_ID_NONE : user, name);
    }
    if (rc == ANNB_OK) rc = ask(c, &q, hits, bundle_name(c));
    if (rc) goto out;
    annb_space space = annb_question_space(q.kind);
    query_check_scores(c, space, hits, q.k);
    describe_question(c, name, question, sizeof question);
    print_results(c, question, space, hits, q.k);
out:
    annb_vectors_release(&file);
    free(v);
    free(hits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                   */
/* ------------------------------------------------------------------------ */

/* User IDs, one per line (blank lines are skipped), as text; *ids gets
 * what each names in the bundle's user space (annb_space_id_of), and a line
 * that cannot be a user ID there is an error naming it. *texts and each
 * text are malloc'd. */
static int read_user_ids(ctx *c, const char *path, char ***texts, int64_t **ids, size_t *n)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (!f) return ctx_fail(c, ANNB_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (is_stdin) path = "<stdin>";
    char *line = NULL;
    size_t cap = 0, have = 0, lineno = 0;
    int rc = ANNB_OK;
    ssize_t len;
    while (rc == ANNB_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        int64_t id;
        if ((size_t)len != strlen(line) ||
            annb_space_id_of(c->users, ANNB_SPACE_USERS, line, (size_t)len, &id) == ANNB_E_INVALID) {
            rc = ctx_fail(c, ANNB_E_INPUT, "%s:%zu:1: expected a user ID", path, lineno);
        } else if (*n == have) {
            have = have ? 2 * have : 1024;
            int64_t *grown = realloc(*ids, have * sizeof *grown);
            if (grown) *ids = grown;
            char **more = realloc(*texts, have * sizeof *more);
            if (more) *texts = more;
            if (!grown || !more) rc = ANNB_E_NOMEM;
        }
        if (rc == ANNB_OK && !((*texts)[*n] = strdup(line))) rc = ANNB_E_NOMEM;
        if (rc == ANNB_OK) (*ids)[(*n)++] = id;
    }
    if (rc == ANNB_OK && ferror(f)) rc = ctx_fail(c, ANNB_E_IO, "%s: read error", path);
    if (rc == ANNB_OK && *n == 0) rc = ctx_fail(c, ANNB_E_INPUT, "%s: no user IDs", path);
    free(line);
    if (!is_stdin) fclose(f);
    return rc;
}

int run_batch(ctx *c)
{
    const options *o = c->o;
    annb_question q = c->q;
    annb_vectors file = {0};
    char **texts = NULL;
    int64_t *user_ids = NULL;
    annb_hit *hits = NULL;
    size_t nq = 0;
    double t0 = now();
    int rc = o->mode == M_BATCH ? annb_vectors_read(&file, c->dim, o->arg, &c->err)
                                : read_user_ids(c, o->arg, &texts, &user_ids, &nq);
    if (rc) goto out;
    if (o->mode == M_BATCH) nq = file.count;
    if (nq > SIZE_MAX / q.k / sizeof *hits || !(hits = malloc(nq * q.k * sizeof *hits))) {
        rc = ANNB_E_NOMEM;
        goto out;
    }
    q.kind = o->mode == M_BATCH ? ANNB_Q_ITEMS_FOR_VECTOR : ANNB_Q_ITEMS_FOR_USER;
    q.subject_texts = (const char *const *)texts;
    q.vectors = file.vectors;
    q.count = nq;
    double t1 = now();
    /* An unknown user is named with the file it came from. */
    rc = ask(c, &q, hits, o->mode == M_BATCH_USERS ? o->arg : bundle_name(c));
    double t2 = now();
    if (rc) goto out;
    query_check_scores(c, ANNB_SPACE_ITEMS, hits, nq * q.k);
    if (o->mode == M_BATCH) print_batch(c, file.ids, file.keys, nq, hits, q.k);
    else print_batch(c, user_ids, c->user_keys ? (const char *const *)texts : NULL, nq, hits, q.k);
    if (o->verbose)
        cli_warn(query_prog, "%zu queries read in %.3f s, answered in %.3f s (%.0f queries/s), top %zu",
                 nq, t1 - t0, t2 - t1, nq / (t2 - t1 > 0 ? t2 - t1 : 1e-9), q.k);
out:
    for (size_t i = 0; texts && i < nq; i++) free(texts[i]);
    free(texts);
    free(user_ids);
    annb_vectors_release(&file);
    free(hits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Every user                                                                */
/* ------------------------------------------------------------------------ */

/* Users per question: many, for the matrix multiply to pay, within about
 * 16 MB of results. */
#define ALL_USERS_BATCH(k) ((k) >= (1u << 20) / 1024 ? (1u << 20) / (k) + 1 : 1024)

int run_all_users(ctx *c)
{
    const options *o = c->o;
    annb_question q = c->q;
    const annb_bundle *ub = c->users; /* every user of it is asked about */
    const uint64_t total = annb_space_count(ub, ANNB_SPACE_USERS);
    const size_t batch = ALL_USERS_BATCH(q.k);
    int64_t *ids = malloc(batch * sizeof *ids);
    annb_hit *hits = malloc(batch * q.k * sizeof *hits);
    char dflt[64];
    snprintf(dflt, sizeof dflt, "annb:%016llx:user:", (unsigned long long)annb_bundle_id(c->b[0]));
    const char *prefix = o->key_prefix ? o->key_prefix : dflt;
    int rc = ids && hits ? ANNB_OK : ANNB_E_NOMEM;
    double t0 = now();
    q.kind = ANNB_Q_ITEMS_FOR_USER;
    q.subjects = ids;
    if (rc == ANNB_OK && total == 0) { /* no users: annb_ask says so, in its words */
        ids[0] = 0;
        q.count = 1;
        rc = ask(c, &q, hits, bundle_name(c));
    }
    if (rc == ANNB_OK && o->fmt == OUT_TSV) printf("user\trank\titem\tscore\n");
    for (uint64_t at = 0; rc == ANNB_OK && at < total; at += batch) {
        q.count = total - at < batch ? (size_t)(total - at) : batch;
        for (size_t i = 0; i < q.count; i++) ids[i] = annb_space_id(ub, ANNB_SPACE_USERS, at + i);
        if ((rc = ask(c, &q, hits, bundle_name(c)))) break;
        query_check_scores(c, ANNB_SPACE_ITEMS, hits, q.count * q.k);
        for (size_t i = 0; i < q.count; i++)
            print_user_top(c, prefix, ids[i],
                           c->user_keys ? annb_space_key_at(ub, ANNB_SPACE_USERS, at + i, NULL) : NULL,
                           hits + i * q.k, q.k);
    }
    double t = now() - t0;
    if (rc == ANNB_OK) {
        if (o->fmt == OUT_RESP)
            cli_warn(query_prog, "keys %s<user>%s", prefix, o->ttl ? ", with a TTL" : "");
        cli_warn(query_prog, "top %zu for %llu users in %.3f s (%.0f users/s)", q.k,
                 (unsigned long long)total, t, total / (t > 0 ? t : 1e-9));
    }
    free(ids);
    free(hits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Serving                                                                   */
/* ------------------------------------------------------------------------ */

/* Whether a results answer holds a null score. The answer's shape is fixed
 * (docs/protocol.md): "results" is its last key, after the echoed id, so
 * the last `,"results":[` is the real one (inside a string the quotes would
 * be escaped), and in it `"score":null` can only be a score. */
static int has_null_score(const char *answer)
{
    const char *results = NULL;
    for (const char *p = answer; (p = strstr(p, ",\"results\":[")); p++) results = p;
    return results && strstr(results, "\"score\":null") != NULL;
}

/* One answer line; a NULL answer (out of memory) is fatal. */
static int put_answer(ctx *c, char *answer)
{
    if (!answer) return ANNB_E_NOMEM;
    puts(answer);
    annb_free(answer);
    if (fflush(stdout) != 0) return ctx_fail(c, ANNB_E_IO, "writing an answer failed");
    return ANNB_OK;
}

int run_serve(ctx *c)
{
    static const char nul[] = "{\"id\":null,\"error\":{\"code\":\"bad_json\",\"message\":"
                              "\"the request contains a NUL byte\"}}";
    const size_t max = c->o->max_request ? (size_t)c->o->max_request : ANNB_SERVE_MAX_REQUEST_BYTES;
    char *line = NULL, *answer;
    size_t cap = 0, len, answered = 0;
    double t0 = now();
    int rc = ANNB_OK, got;
    while (rc == ANNB_OK && (got = annb_serve_read_line(stdin, max, &line, &cap, &len)) != 0) {
        if (got == ANNB_E_LIMIT) {
            answer = annb_serve_too_large(max);
        } else if (got < 0) {
            rc = got == ANNB_E_IO ? ctx_fail(c, ANNB_E_IO, "reading requests failed") : got;
            break;
        } else if (memchr(line, '\0', len)) {
            /* annb_serve_request reads a C string: a NUL would cut the line short. */
            answer = strdup(nul);
        } else {
            int ok = annb_serve_request((const annb_bundle *const *)c->b, c->n, line, &answer);
            if (ok == ANNB_OK && !c->warned_scores && answer && has_null_score(answer)) {
                if (c->n == 1)
                    cli_warn(query_prog, "bundle %s: non-finite scores (damaged vectors?); run "
                             "ann-inspect --verify", c->o->paths[0]);
                else
                    cli_warn(query_prog, "one of the %zu bundles: non-finite scores (damaged "
                             "vectors?); run ann-inspect --verify", c->n);
                c->warned_scores = 1;
            }
        }
        rc = put_answer(c, answer);
        answered++;
    }
    double t = now() - t0;
    if (c->o->verbose)
        cli_warn(query_prog, "%zu requests in %.3f s (%.0f requests/s)", answered, t,
                 answered / (t > 0 ? t : 1e-9));
    free(line);
    return rc;
}
