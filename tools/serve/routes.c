/*
 * routes.c - HTTP requests as questions (docs/serve.md): the GET forms parsed
 * into an annb_question and answered with annb_serve_ask; POST bodies (one
 * protocol request or an array of them, docs/protocol.md) answered with
 * annb_serve_request; and each answer's HTTP status. The rules of which
 * option fits which question, and every message about them, are the
 * library's: only the URL's own syntax is checked here.
 */
#define _GNU_SOURCE
#include "serve.h"
#include "cli.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static char *error_json_v(const char *code, const char *fmt, va_list ap)
{
    char message[1024];
    vsnprintf(message, sizeof message, fmt, ap);
    cJSON *root = cJSON_CreateObject(), *e = cJSON_CreateObject();
    char *text = NULL;
    if (root && e && cJSON_AddNullToObject(root, "id")) {
        cJSON_AddItemToObject(root, "error", e);
        if (cJSON_AddStringToObject(e, "code", code) && cJSON_AddStringToObject(e, "message", message))
            text = cJSON_PrintUnformatted(root);
        e = NULL; /* root owns it */
    }
    cJSON_Delete(e);
    cJSON_Delete(root);
    if (text) { /* names and values from the request may hold any bytes */
        char *fixed = annb_text_repair(text);
        cJSON_free(text);
        text = fixed ? strdup(fixed) : NULL; /* callers free() it; the library's is annb_free'd */
        annb_free(fixed);
    }
    return text;
}

char *serve_error_json(const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = error_json_v(code, fmt, ap);
    va_end(ap);
    return text;
}

/* ---- the status of an answer ---- */

static unsigned status_of(int rc)
{
    switch (rc) {
    case ANNB_OK: return 200;
    case ANNB_E_INPUT:
    case ANNB_E_INVALID: return 400;
    case ANNB_E_NOT_FOUND: return 404;
    case ANNB_E_DIMENSION:
    case ANNB_E_UNSUPPORTED: return 422;
    default: return 500;
    }
}

/* The library's answer text (annb_free) as ours (free()), with its status:
 * one rule for every answer the HTTP layer sends. */
static unsigned copy_answer(char **answer, int rc, char *text)
{
    *answer = text ? strdup(text) : NULL;
    annb_free(text);
    return *answer ? status_of(rc) : 500;
}

unsigned serve_answer_text(char **answer, const annb_bundle *const *bundles, size_t n,
                           const char *request, const annb_serve_opts *opts)
{
    char *text = NULL;
    int rc = annb_serve_request_with(bundles, n, request, opts, &text);
    return copy_answer(answer, rc, text);
}

/* ---- POST /v1/query ---- */

static serve_question question_of(const cJSON *req)
{
    static const struct { const char *key; serve_question q; } keys[] = {
        {"user", SQ_ITEMS_FOR_USER}, {"vector", SQ_ITEMS_FOR_VECTOR}, {"item", SQ_SIMILAR_ITEMS},
        {"similar_users", SQ_SIMILAR_USERS}, {"users_for_item", SQ_USERS_FOR_ITEM},
    };
    serve_question found = SQ_INVALID;
    int count = 0;
    if (!cJSON_IsObject(req)) return SQ_INVALID;
    for (const cJSON *e = req->child; e; e = e->next)
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (e->string && !strcmp(e->string, keys[i].key)) found = keys[i].q, count++;
    return count == 1 ? found : SQ_INVALID;
}

/* One element of a batch, or the whole body: its answer and status. */
static unsigned answer_one(char **answer, const annb_bundle *const *bundles, size_t n,
                           const cJSON *req, const char *text, const annb_serve_opts *opts)
{
    if (text) return serve_answer_text(answer, bundles, n, text, opts);
    char *printed = cJSON_PrintUnformatted(req);
    if (!printed) return *answer = NULL, 500;
    unsigned status = serve_answer_text(answer, bundles, n, printed, opts);
    cJSON_free(printed);
    return status;
}

unsigned serve_answer_post(char **answer, serve_question *question,
                           const annb_bundle *const *bundles, size_t n, const char *body,
                           size_t len, const annb_serve_opts *opts)
{
    size_t max_k = opts->max_k;
    *answer = NULL;
    *question = SQ_INVALID;
    if (memchr(body, '\0', len)) {
        *answer = serve_error_json("bad_json", "the request holds a NUL byte (byte %zu)",
                                   (size_t)((const char *)memchr(body, '\0', len) - body) + 1);
        return 400;
    }
    cJSON *req = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsArray(req)) {
        /* One request (or not JSON: the library's message says where). */
        *question = question_of(req);
        unsigned status = answer_one(answer, bundles, n, req, body, opts);
        cJSON_Delete(req);
        return status;
    }
    *question = SQ_BATCH;
    /* A batch costs at most what one request at the cap does: its k (10
     * where not given) add up to at most max_k, so its answer is bounded
     * like any other, whatever the body packs in. */
    size_t total = 0;
    for (const cJSON *e = req->child; e; e = e->next) {
        const cJSON *k = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "k") : NULL;
        double v = cJSON_IsNumber(k) ? k->valuedouble : 10;
        total += v >= 1 && v <= (double)max_k ? (size_t)v : 1; /* a bad k is its own error */
        if (total > max_k) {
            cJSON_Delete(req);
            *answer = serve_error_json("invalid_request", "a batch asks for more than %zu results "
                                       "in all (the sum of its requests' k, 10 where not given; "
                                       "--max-k): split it", max_k);
            return 400;
        }
    }
    /* [answer, answer, ...]: each element answered as if sent alone. */
    char *out = NULL;
    size_t out_len = 0;
    FILE *f = open_memstream(&out, &out_len);
    int ok = f != NULL;
    if (ok) fputc('[', f);
    for (const cJSON *e = req->child; ok && e; e = e->next) {
        char *one = NULL;
        answer_one(&one, bundles, n, e, NULL, opts);
        if (!one) ok = 0;
        else fprintf(f, "%s%s", e == req->child ? "" : ",", one);
        free(one);
    }
    if (f) {
        fputc(']', f);
        ok = !ferror(f) && fclose(f) == 0 && ok;
    }
    cJSON_Delete(req);
    if (!ok) {
        free(out);
        *answer = serve_error_json("internal", "out of memory");
        return 500;
    }
    *answer = out;
    return 200;
}

/* ---- the GET forms ---- */

enum { F_K = 1, F_EXCLUDE_SEEN = 2, F_GENRE = 4, F_EXCLUDE = 8, F_EFFORT = 16 };

static const struct get_form {
    const char *first, *last; /* /v1/FIRST/{id}/LAST */
    annb_question_kind kind;
    serve_question question;
    unsigned params;          /* query parameters the question takes */
} forms[] = {
    {"users", "items", ANNB_Q_ITEMS_FOR_USER, SQ_ITEMS_FOR_USER,
     F_K | F_EXCLUDE_SEEN | F_GENRE | F_EXCLUDE | F_EFFORT},
    {"items", "similar", ANNB_Q_SIMILAR_ITEMS, SQ_SIMILAR_ITEMS, F_K | F_GENRE | F_EXCLUDE | F_EFFORT},
    {"users", "similar", ANNB_Q_SIMILAR_USERS, SQ_SIMILAR_USERS, F_K | F_EXCLUDE},
    {"items", "users", ANNB_Q_USERS_FOR_ITEM, SQ_USERS_FOR_ITEM, F_K | F_EXCLUDE},
};

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

void serve_get_question_release(serve_get_question *q)
{
    free_strings(q->genres, q->ngenres);
    free_strings(q->exclude_texts, q->nexclude_texts);
    free_strings(q->subject_text, q->subject_text ? 1 : 0);
    free(q->subject);
    free(q->exclude);
    free(q->vector);
    memset(q, 0, sizeof *q);
}

/* Points q's annb_question at its own storage. */
static void link_question(serve_get_question *q)
{
    q->q.subjects = q->subject;
    q->q.subject_texts = (const char *const *)q->subject_text;
    q->q.vectors = q->vector;
    q->q.count = 1;
    q->q.exclude_ids = q->exclude;
    q->q.exclude_count = q->nexclude;
    q->q.exclude_texts = (const char *const *)q->exclude_texts;
    q->q.exclude_text_count = q->nexclude_texts;
    q->q.genres = (const char *const *)q->genres;
    q->q.genre_count = q->ngenres;
}

/* n strings copied into *dst (malloc'd, each string too); 0 or -1. */
static int copy_strings(char ***dst, const char *const *src, size_t n)
{
    if (!n) return 0;
    if (!(*dst = calloc(n, sizeof **dst))) return -1;
    for (size_t i = 0; i < n; i++)
        if (!src[i] || !((*dst)[i] = strdup(src[i]))) return -1;
    return 0;
}

int serve_get_question_copy(serve_get_question *dst, const annb_question *src, size_t dimension)
{
    memset(dst, 0, sizeof *dst);
    dst->q = *src;
    if (src->count != 1) return -1;
    if (src->kind == ANNB_Q_ITEMS_FOR_VECTOR) {
        if (!src->vectors || !(dst->vector = malloc(dimension * sizeof *dst->vector))) return -1;
        memcpy(dst->vector, src->vectors, dimension * sizeof *dst->vector);
    } else if (src->subject_texts) { /* annb_ask reads the text when there is one */
        if (copy_strings(&dst->subject_text, src->subject_texts, 1)) goto fail;
    } else if (src->subjects) {
        if (!(dst->subject = malloc(sizeof *dst->subject))) goto fail;
        *dst->subject = src->subjects[0];
    }
    size_t nex = src->exclude_ids ? src->exclude_count : 0, ngen = src->genres ? src->genre_count : 0;
    size_t ntx = src->exclude_texts ? src->exclude_text_count : 0;
    if (nex && !(dst->exclude = malloc(nex * sizeof *dst->exclude))) goto fail;
    if (nex) memcpy(dst->exclude, src->exclude_ids, nex * sizeof *dst->exclude);
    dst->nexclude = nex;
    if (copy_strings(&dst->exclude_texts, src->exclude_texts, ntx)) goto fail;
    dst->nexclude_texts = ntx;
    if (copy_strings(&dst->genres, src->genres, ngen)) goto fail;
    dst->ngenres = ngen;
    link_question(dst);
    return 0;
fail:
    /* what was copied so far is freed: counts cover the arrays allocated */
    if (dst->exclude_texts && !dst->nexclude_texts) dst->nexclude_texts = ntx;
    if (dst->genres && !dst->ngenres) dst->ngenres = ngen;
    serve_get_question_release(dst);
    return -1;
}

typedef struct get_args {
    const struct get_form *form;
    size_t max_k;
    serve_get_question *q;
    unsigned seen;           /* parameters given: each at most once */
    int oom;
    char *error;             /* the first problem, as an answer */
} get_args;

static int bad(get_args *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int bad(get_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!a->error) a->error = error_json_v("invalid_request", fmt, ap);
    va_end(ap);
    return MHD_NO;
}

/* Once only: k, exclude_seen, nprobe, ef_search. */
static int once(get_args *a, unsigned flag, const char *key)
{
    if (a->seen & flag) return bad(a, "query parameter \"%s\" given twice", key), 0;
    a->seen |= flag;
    return 1;
}

/* One value of the exclude parameter, kept whole: serve_answer_get splits
 * it, knowing the bundles (a string ID may hold commas). */
static int add_exclude(get_args *a, const char *value)
{
    char **grown = realloc(a->q->exclude_texts, (a->q->nexclude_texts + 1) * sizeof *grown);
    if (!grown) return a->oom = 1, MHD_NO;
    a->q->exclude_texts = grown;
    if (!(grown[a->q->nexclude_texts] = strdup(value))) return a->oom = 1, MHD_NO;
    a->q->nexclude_texts++;
    return MHD_YES;
}

static enum MHD_Result get_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    get_args *a = cls;
    (void)kind;
    unsigned p = a->form->params;
    int64_t v;
    if (a->error || a->oom) return MHD_NO;
    if (!value) value = "";
    if (!strcmp(key, "k") && (p & F_K)) {
        if (!once(a, F_K, key)) return MHD_NO;
        if (cli_parse_i64(value, &v) != 0 || v < 1 || (uint64_t)v > a->max_k)
            return bad(a, "\"k\" must be an integer from 1 to %zu, not \"%.64s\"", a->max_k, value);
        a->q->q.k = (size_t)v;
    } else if (!strcmp(key, "exclude_seen") && (p & F_EXCLUDE_SEEN)) {
        if (!once(a, F_EXCLUDE_SEEN, key)) return MHD_NO;
        int on = !strcmp(value, "1") || !strcmp(value, "true");
        if (!on && strcmp(value, "0") && strcmp(value, "false"))
            return bad(a, "\"exclude_seen\" must be 1, 0, true or false, not \"%.64s\"", value);
        a->q->q.exclude_seen = on;
    } else if (!strcmp(key, "genre") && (p & F_GENRE)) {
        char **grown = realloc(a->q->genres, (a->q->ngenres + 1) * sizeof *grown);
        if (!grown) return a->oom = 1, MHD_NO;
        a->q->genres = grown;
        if (!(a->q->genres[a->q->ngenres] = strdup(value))) return a->oom = 1, MHD_NO;
        a->q->ngenres++;
    } else if (!strcmp(key, "exclude") && (p & F_EXCLUDE)) {
        return add_exclude(a, value);
    } else if ((!strcmp(key, "nprobe") || !strcmp(key, "ef_search")) && (p & F_EFFORT)) {
        if (!once(a, key[0] == 'n' ? F_EFFORT : F_EFFORT << 1, key)) return MHD_NO;
        if (cli_parse_i64(value, &v) != 0 || v < 1 || v > 1 << 20)
            return bad(a, "\"%s\" must be an integer from 1 to 1048576, not \"%.64s\"", key, value);
        *(key[0] == 'n' ? &a->q->q.nprobe : &a->q->q.ef_search) = (uint32_t)v;
    } else {
        return bad(a, "unknown query parameter \"%.64s\" for this question", key);
    }
    return a->error || a->oom ? MHD_NO : MHD_YES;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) (RFC 3986: '%' and two hex digits; '+' is a
 * plus in a path) into a malloc'd string. NULL with *bad set when an escape
 * is malformed or encodes a NUL; NULL alone when out of memory. */
static char *percent_decode(const char *s, size_t n, int *bad)
{
    char *out = malloc(n + 1), *o = out;
    *bad = 0;
    for (size_t i = 0; out && i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex_value(s[i + 1]) : -1, lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            *bad = 1;
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    if (out) *o = '\0';
    return out;
}

/* Splits /v1/FIRST/ID/LAST (percent-encoded) into its decoded parts: 0 when
 * the path has that shape (*id malloc'd; first and last at most size - 1
 * bytes), -1 when it has not, 400 when a part is badly encoded, 500 when
 * out of memory. */
static int split_path(const char *path, char *first, char **id, char *last, size_t size)
{
    if (strncmp(path, "/v1/", 4) != 0) return -1;
    const char *parts[3];
    size_t lens[3];
    const char *at = path + 4;
    for (int i = 0; i < 3; i++) {
        const char *slash = strchr(at, '/');
        if ((i < 2 && !slash) || (i == 2 && slash)) return -1;
        parts[i] = at;
        lens[i] = slash ? (size_t)(slash - at) : strlen(at);
        if (lens[i] == 0 || lens[i] > (i == 1 ? 4096 : 3 * size)) return -1;
        at = slash ? slash + 1 : at + lens[i];
    }
    char *decoded[3] = {NULL, NULL, NULL};
    int bad = 0, rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        if (!(decoded[i] = percent_decode(parts[i], lens[i], &bad))) rc = bad ? 400 : 500;
    if (rc == 0 && (strlen(decoded[0]) >= size || strlen(decoded[2]) >= size)) rc = -1;
    if (rc == 0) {
        snprintf(first, size, "%s", decoded[0]);
        snprintf(last, size, "%s", decoded[2]);
        *id = decoded[1];
        decoded[1] = NULL;
    }
    for (int i = 0; i < 3; i++) free(decoded[i]);
    return rc;
}

int serve_route_get(serve_get_question *q, serve_question *question, char **error,
                    struct MHD_Connection *conn, const char *path, size_t max_k)
{
    char first[64], last[64], *id = NULL;
    const struct get_form *form = NULL;
    *error = NULL;
    int split = split_path(path, first, &id, last, sizeof first);
    if (split == 400) {
        *error = serve_error_json("invalid_request", "the path holds a malformed "
                                  "percent-encoding (%%XX, two hex digits, not %%00)");
        return 400;
    }
    if (split == 500) return (*error = serve_error_json("internal", "out of memory")), 500;
    if (split != 0) return -1;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0] && !form; i++)
        if (!strcmp(first, forms[i].first) && !strcmp(last, forms[i].last)) form = &forms[i];
    if (!form) {
        free(id);
        return -1;
    }
    *question = form->question;
    memset(q, 0, sizeof *q);
    annb_question_init(&q->q);
    q->q.kind = form->kind;
    get_args a = {form, max_k, q, 0, 0, NULL};
    /* The ID as text: annb_ask reads it in its space (a string ID, or a
     * decimal integer where the bundle's IDs are integers) and names it. */
    if (!(q->subject_text = malloc(sizeof *q->subject_text))) {
        free(id);
        a.oom = 1;
    } else {
        q->subject_text[0] = id;
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, get_arg, &a);
    }
    link_question(q);
    if (a.oom && !a.error) {
        serve_get_question_release(q);
        *error = serve_error_json("internal", "out of memory");
        return 500;
    }
    if (a.error) {
        serve_get_question_release(q);
        *error = a.error;
        return 400;
    }
    return 0;
}

unsigned serve_answer_get(char **answer, const annb_bundle *const *bundles, size_t n,
                          const serve_get_question *q, const annb_serve_opts *opts)
{
    /* The exclude values into IDs as text: a value that is one ID whole is
     * taken whole, any other is split at its commas (an empty piece is no
     * ID). */
    annb_question asked = q->q;
    const annb_space space = annb_question_space(q->q.kind);
    size_t most = 0, count = 0;
    for (size_t i = 0; i < q->nexclude_texts; i++) most += strlen(q->exclude_texts[i]) + 1;
    char *storage = most ? malloc(most) : NULL, *at = storage;
    const char **texts = most ? malloc(most * sizeof *texts) : NULL;
    if (most && (!storage || !texts)) {
        free(storage);
        free(texts);
        *answer = serve_error_json("internal", "out of memory");
        return 500;
    }
    const char *empty = NULL;
    for (size_t i = 0; i < q->nexclude_texts; i++) {
        const char *v = q->exclude_texts[i];
        size_t len = strlen(v);
        memcpy(at, v, len + 1);
        if (cli_id_named(bundles, n, space, v)) {
            texts[count++] = at;
        } else {
            for (char *piece = at;; piece++) {
                char *comma = strchr(piece, ',');
                if (comma) *comma = '\0';
                if (!*piece && !empty) empty = v;
                else if (*piece) texts[count++] = piece;
                if (!comma) break;
                piece = comma;
            }
        }
        at += len + 1;
    }
    char *text = NULL;
    int rc;
    if (empty) {
        free(storage);
        free(texts);
        *answer = serve_error_json("invalid_request", "\"exclude\" takes IDs separated by commas; "
                                   "\"%.64s\" has an empty one", empty);
        return *answer ? 400 : 500;
    }
    asked.exclude_texts = texts;
    asked.exclude_text_count = count;
    rc = annb_serve_ask(bundles, n, &asked, opts, &text);
    free(storage);
    free(texts);
    return copy_answer(answer, rc, text);
}
