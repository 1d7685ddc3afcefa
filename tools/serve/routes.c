/*
 * routes.c - HTTP requests as questions of the JSON protocol
 * (docs/protocol.md, docs/serve.md): the GET forms translated into a protocol
 * request, POST bodies (one request or an array of them) answered through
 * annb_serve_request, and each answer's HTTP status.
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
        text = fixed;
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

/* The "code" of an answer's error object: the last one in the text, as the
 * error object follows the echoed "id" (which may hold anything); in a
 * JSON string a quote is escaped, so the pattern cannot start inside one. */
static const char *error_code(const char *answer)
{
    static const char pattern[] = "\"error\":{\"code\":\"";
    const char *found = NULL;
    for (const char *at = answer; (at = strstr(at, pattern)); at++) found = at;
    return found ? found + sizeof pattern - 1 : "";
}

static unsigned status_of(int rc, const char *answer)
{
    switch (rc) {
    case ANNB_OK: return 200;
    case ANNB_E_INPUT: return 400;
    case ANNB_E_NOT_FOUND: return 404;
    case ANNB_E_DIMENSION: return 422;
    case ANNB_E_INVALID:
        return strncmp(error_code(answer), "unsupported\"", 12) == 0 ? 422 : 400;
    default: return 500;
    }
}

unsigned serve_answer_text(char **answer, const annb_bundle *const *bundles, size_t n,
                           const char *request)
{
    char *text = NULL;
    int rc = annb_serve_request(bundles, n, request, &text);
    if (!text) {
        *answer = NULL;
        return 500;
    }
    /* Copied: the library's text goes to annb_free, and every answer of
     * ann-serve (batches, errors) to free(); one rule for the HTTP layer. */
    *answer = strdup(text);
    unsigned status = status_of(rc, text);
    annb_free(text);
    return *answer ? status : 500;
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

/* The server's cap on k, below the protocol's: an answer in the protocol's
 * shape, with the request's id. NULL when k is within the cap. */
static char *k_over_cap(const cJSON *req, size_t max_k, unsigned *status)
{
    const cJSON *k = cJSON_IsObject(req) ? cJSON_GetObjectItemCaseSensitive(req, "k") : NULL;
    if (!cJSON_IsNumber(k) || !(k->valuedouble > (double)max_k)) return NULL;
    char *text = serve_error_json("invalid_request", "\"k\" must be an integer from 1 to %zu "
                                  "(this server's --max-k)", max_k);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
    cJSON *answer = text && id ? cJSON_Parse(text) : NULL;
    if (answer) { /* echo the id, as the protocol does */
        cJSON_ReplaceItemInObjectCaseSensitive(answer, "id", cJSON_Duplicate(id, 1));
        char *with_id = cJSON_PrintUnformatted(answer);
        cJSON_Delete(answer);
        if (with_id) {
            char *fixed = annb_text_repair(with_id); /* the echoed id may hold any bytes */
            cJSON_free(with_id);
            free(text);
            text = fixed;
        }
    }
    *status = 400;
    return text;
}

/* One element of a batch, or the whole body: its answer and status. */
static unsigned answer_one(char **answer, const annb_bundle *const *bundles, size_t n,
                           const cJSON *req, const char *text, size_t max_k)
{
    unsigned status;
    if ((*answer = k_over_cap(req, max_k, &status))) return status;
    if (text) return serve_answer_text(answer, bundles, n, text);
    char *printed = cJSON_PrintUnformatted(req);
    if (!printed) return *answer = NULL, 500;
    status = serve_answer_text(answer, bundles, n, printed);
    cJSON_free(printed);
    return status;
}

unsigned serve_answer_post(char **answer, serve_question *question,
                           const annb_bundle *const *bundles, size_t n, const char *body,
                           size_t len, size_t max_k)
{
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
        unsigned status = answer_one(answer, bundles, n, req, body, max_k);
        cJSON_Delete(req);
        return status;
    }
    *question = SQ_BATCH;
    /* [answer, answer, ...]: each element answered as if sent alone. */
    char *out = NULL;
    size_t out_len = 0;
    FILE *f = open_memstream(&out, &out_len);
    int ok = f != NULL;
    if (ok) fputc('[', f);
    for (const cJSON *e = req->child; ok && e; e = e->next) {
        char *one = NULL;
        answer_one(&one, bundles, n, e, NULL, max_k);
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
    const char *key;          /* the protocol's question key */
    serve_question question;
    unsigned params;          /* query parameters the question takes */
} forms[] = {
    {"users", "items", "user", SQ_ITEMS_FOR_USER, F_K | F_EXCLUDE_SEEN | F_GENRE | F_EXCLUDE | F_EFFORT},
    {"items", "similar", "item", SQ_SIMILAR_ITEMS, F_K | F_GENRE | F_EXCLUDE | F_EFFORT},
    {"users", "similar", "similar_users", SQ_SIMILAR_USERS, F_K | F_EXCLUDE},
    {"items", "users", "users_for_item", SQ_USERS_FOR_ITEM, F_K | F_EXCLUDE},
};

typedef struct get_args {
    const struct get_form *form;
    size_t max_k;
    cJSON *req;
    cJSON *genres, *exclude; /* owned by req once added */
    char *error;             /* first problem, as an answer */
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

/* An ID as the protocol takes any int64: a decimal string. */
static int add_id(cJSON *arr_or_obj, const char *key, const char *text)
{
    int64_t v;
    if (cli_parse_i64(text, &v) != 0) return 0;
    char digits[24];
    snprintf(digits, sizeof digits, "%lld", (long long)v);
    cJSON *s = cJSON_CreateString(digits);
    if (!s) return 0;
    if (key) cJSON_AddItemToObject(arr_or_obj, key, s);
    else cJSON_AddItemToArray(arr_or_obj, s);
    return 1;
}

static enum MHD_Result get_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    get_args *a = cls;
    (void)kind;
    unsigned p = a->form->params;
    int64_t v;
    if (a->error) return MHD_NO;
    if (!value) value = "";
    if (!strcmp(key, "k") && (p & F_K)) {
        if (cli_parse_i64(value, &v) != 0 || v < 1 || (uint64_t)v > a->max_k) {
            return bad(a, "\"k\" must be an integer from 1 to %zu, not \"%.64s\"", a->max_k, value);
        }
        if (cJSON_GetObjectItemCaseSensitive(a->req, "k"))
            return bad(a, "query parameter \"%s\" given twice", key);
        cJSON_AddNumberToObject(a->req, "k", (double)v);
    } else if (!strcmp(key, "exclude_seen") && (p & F_EXCLUDE_SEEN)) {
        int on = !strcmp(value, "1") || !strcmp(value, "true");
        if (!on && strcmp(value, "0") && strcmp(value, "false"))
            return bad(a, "\"%s\" must be 1, 0, true or false, not \"%.64s\"", key, value);
        if (cJSON_GetObjectItemCaseSensitive(a->req, "exclude_seen"))
            return bad(a, "query parameter \"%s\" given twice", key);
        cJSON_AddBoolToObject(a->req, "exclude_seen", on);
    } else if (!strcmp(key, "genre") && (p & F_GENRE)) {
        if (!a->genres && !(a->genres = cJSON_AddArrayToObject(a->req, "genres"))) return MHD_NO;
        cJSON_AddItemToArray(a->genres, cJSON_CreateString(value));
    } else if (!strcmp(key, "exclude") && (p & F_EXCLUDE)) {
        if (!a->exclude && !(a->exclude = cJSON_AddArrayToObject(a->req, "exclude"))) return MHD_NO;
        char *copy = strdup(value), *save = NULL;
        if (!copy) return MHD_NO;
        for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save))
            if (!add_id(a->exclude, NULL, id)) {
                bad(a, "\"%s\" takes IDs separated by commas; \"%.64s\" is not an ID", key, id);
                break;
            }
        free(copy);
    } else if ((!strcmp(key, "nprobe") || !strcmp(key, "ef_search")) && (p & F_EFFORT)) {
        if (cli_parse_i64(value, &v) != 0 || v < 1 || v > 1 << 20)
            return bad(a, "\"%s\" must be an integer from 1 to 1048576, not \"%.64s\"", key, value);
        if (cJSON_GetObjectItemCaseSensitive(a->req, key))
            return bad(a, "query parameter \"%s\" given twice", key);
        cJSON_AddNumberToObject(a->req, key, (double)v);
    } else {
        return bad(a, "unknown query parameter \"%.64s\" for this question", key);
    }
    return a->error ? MHD_NO : MHD_YES;
}

/* Splits /v1/FIRST/ID/LAST; 0 when the path has that shape. */
static int split_path(const char *path, char *first, char *id, char *last, size_t size)
{
    if (strncmp(path, "/v1/", 4) != 0) return -1;
    const char *parts[3];
    size_t lens[3];
    const char *at = path + 4;
    for (int i = 0; i < 3; i++) {
        const char *slash = strchr(at, '/');
        if (i < 2 && !slash) return -1;
        if (i == 2 && slash) return -1;
        parts[i] = at;
        lens[i] = slash ? (size_t)(slash - at) : strlen(at);
        if (lens[i] == 0 || lens[i] >= size) return -1;
        at = slash ? slash + 1 : at + lens[i];
    }
    snprintf(first, size, "%.*s", (int)lens[0], parts[0]);
    snprintf(id, size, "%.*s", (int)lens[1], parts[1]);
    snprintf(last, size, "%.*s", (int)lens[2], parts[2]);
    return 0;
}

int serve_route_get(serve_route_result *out, struct MHD_Connection *conn, const char *path,
                    size_t max_k)
{
    char first[64], id[64], last[64];
    const struct get_form *form = NULL;
    memset(out, 0, sizeof *out);
    if (split_path(path, first, id, last, sizeof first) != 0) return -1;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0] && !form; i++)
        if (!strcmp(first, forms[i].first) && !strcmp(last, forms[i].last)) form = &forms[i];
    if (!form) return -1;
    out->question = form->question;
    get_args a = {form, max_k, cJSON_CreateObject(), NULL, NULL, NULL};
    if (!a.req) {
        out->status = 500;
        out->body = serve_error_json("internal", "out of memory");
        return 0;
    }
    if (!add_id(a.req, form->key, id)) {
        bad(&a, "%s ID \"%.64s\" in the path is not an integer ID",
            form->first[0] == 'u' ? "user" : "item", id);
    } else {
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, get_arg, &a);
    }
    if (a.error) {
        out->status = 400;
        out->body = a.error;
    } else if (!(out->body = cJSON_PrintUnformatted(a.req))) {
        out->status = 500;
        out->body = serve_error_json("internal", "out of memory");
    }
    cJSON_Delete(a.req);
    return 0;
}
