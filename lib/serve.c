/*
 * serve.c - the JSON request protocol (docs/protocol.md): one request in,
 * one answer out. A translator only: the request becomes an annb_question,
 * annb_ask answers it (the combination rules live there), and the answer is
 * written by json_out.h's writer.
 * Threads: cJSON keeps the last parse error in a static that only
 * cJSON_GetErrorPtr reads; we never call it (the error position comes back
 * through ParseWithOpts), which is cJSON's own condition for thread safety.
 */
#define _POSIX_C_SOURCE 200809L /* flockfile, getc_unlocked */
#include "annb.h"
#include "json_out.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keys of a request. The questions come first (Q_FIRST .. Q_LAST). */
enum key {
    K_USER, K_ITEM, K_VECTOR, K_SIMILAR_USERS, K_USERS_FOR_ITEM,
    K_ID, K_K, K_EXCLUDE_SEEN, K_EXCLUDE, K_GENRES, K_NPROBE, K_EF_SEARCH, K_COUNT
};
#define Q_LAST K_USERS_FOR_ITEM

static const char *const key_names[K_COUNT] = {
    "user", "item", "vector", "similar_users", "users_for_item",
    "id", "k", "exclude_seen", "exclude", "genres", "nprobe", "ef_search",
};

/* Why a request gets an error answer. */
typedef struct problem {
    int code;          /* ANNB_E_*, or ANNB_OK */
    const char *name;  /* the answer's "code" */
    char message[1024];
} problem;

static int fail(problem *p, int code, const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int fail(problem *p, int code, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
    p->code = code;
    p->name = name;
    return code;
}

#define INVALID(p, ...) fail(p, ANNB_E_INVALID, "invalid_request", __VA_ARGS__)

typedef struct request {
    const cJSON *key[K_COUNT]; /* each key's value, NULL when absent */
    int question;              /* K_USER .. K_USERS_FOR_ITEM */
    annb_question q;           /* what annb_ask answers */
    size_t max_k;              /* the largest k accepted (annb_serve_opts.max_k) */
    char subject_num[24];      /* the subject given as a JSON number, as text */
    const char *subject;       /* the user or item asked about, as text */
    char (*exclude_num)[24];   /* excluded IDs given as numbers, as text */
    const char **exclude;
    const char **genres;
    float *vector;             /* dimension floats */
} request;

static void request_release(request *r)
{
    free(r->exclude);
    free(r->exclude_num);
    free(r->genres);
    free(r->vector);
}

/* An ID as text for annb_question's subject_texts and exclude_texts: a
 * JSON string as it is (a string ID, or an integer beyond what a JSON
 * number reliably carries), or a JSON integer that a double holds exactly,
 * written into num. annb_ask reads it in its space. NULL: neither. */
static const char *id_text(char num[24], const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    if (!cJSON_IsNumber(v)) return NULL;
    double d = v->valuedouble;
    if (!(fabs(d) <= 9007199254740992.0) || d != floor(d)) return NULL;
    snprintf(num, 24, "%lld", (long long)d);
    return num;
}

static int parse_keys(request *r, const cJSON *root, problem *p)
{
    for (const cJSON *c = root->child; c; c = c->next) {
        int k = 0;
        while (k < K_COUNT && strcmp(key_names[k], c->string)) k++;
        if (k == K_COUNT) return INVALID(p, "unknown key \"%.64s\"", c->string);
        if (r->key[k]) return INVALID(p, "key \"%s\" appears twice", key_names[k]);
        r->key[k] = c;
        if (k > Q_LAST) continue;
        if (r->key[r->question] && r->question != k)
            return INVALID(p, "several questions (\"%s\" and \"%s\"): ask one per request",
                           key_names[r->question], key_names[k]);
        r->question = k;
    }
    if (!r->key[r->question])
        return INVALID(p, "no question: give one of \"user\", \"item\", \"vector\", "
                          "\"similar_users\", \"users_for_item\"");
    return ANNB_OK;
}

static int parse_vector(request *r, const cJSON *v, size_t dim, problem *p)
{
    if (!cJSON_IsArray(v)) return INVALID(p, "\"vector\" must be an array of numbers");
    if (!(r->vector = malloc(dim * sizeof *r->vector)))
        return fail(p, ANNB_E_NOMEM, "internal", "out of memory");
    size_t n = 0;
    for (const cJSON *e = v->child; e; e = e->next, n++) {
        if (!cJSON_IsNumber(e) || !(fabs(e->valuedouble) <= FLT_MAX))
            return INVALID(p, "\"vector\" element %zu is not a finite float", n + 1);
        if (n < dim) r->vector[n] = (float)e->valuedouble;
    }
    if (n != dim)
        return fail(p, ANNB_E_DIMENSION, "dimension",
                    "\"vector\" has %zu values, the bundle's dimension is %zu", n, dim);
    return ANNB_OK;
}

static int parse_filters(request *r, problem *p)
{
    const cJSON *v;
    if ((v = r->key[K_K])) {
        double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
        if (!(d >= 1 && d <= (double)r->max_k) || d != floor(d))
            return INVALID(p, "\"k\" must be an integer from 1 to %zu", r->max_k);
        r->q.k = (size_t)d;
    }
    for (int key = K_NPROBE; key <= K_EF_SEARCH; key++) {
        if (!(v = r->key[key])) continue;
        double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
        if (!(d >= 1 && d <= 1 << 20) || d != floor(d))
            return INVALID(p, "\"%s\" must be an integer from 1 to %d", key_names[key], 1 << 20);
        *(key == K_NPROBE ? &r->q.nprobe : &r->q.ef_search) = (uint32_t)d;
    }
    if ((v = r->key[K_EXCLUDE_SEEN])) {
        if (!cJSON_IsBool(v)) return INVALID(p, "\"exclude_seen\" must be true or false");
        r->q.exclude_seen = cJSON_IsTrue(v);
    }
    if ((v = r->key[K_EXCLUDE])) {
        if (!cJSON_IsArray(v)) return INVALID(p, "\"exclude\" must be an array of IDs");
        size_t n = (size_t)cJSON_GetArraySize(v);
        if (n && (!(r->exclude = malloc(n * sizeof *r->exclude)) ||
                  !(r->exclude_num = malloc(n * sizeof *r->exclude_num))))
            return fail(p, ANNB_E_NOMEM, "internal", "out of memory");
        size_t i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++)
            if (!(r->exclude[i] = id_text(r->exclude_num[i], e)))
                return INVALID(p, "\"exclude\" element %zu is not an ID", i + 1);
        r->q.exclude_texts = r->exclude;
        r->q.exclude_text_count = n;
    }
    if (!(v = r->key[K_GENRES])) return ANNB_OK;
    if (!cJSON_IsArray(v)) return INVALID(p, "\"genres\" must be an array of strings");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n && !(r->genres = malloc(n * sizeof *r->genres)))
        return fail(p, ANNB_E_NOMEM, "internal", "out of memory");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return INVALID(p, "\"genres\" element %zu is not a string", r->q.genre_count + 1);
        r->genres[r->q.genre_count++] = e->valuestring;
    }
    r->q.genres = r->genres;
    return ANNB_OK;
}

/* The protocol's questions, key by key (K_USER .. K_USERS_FOR_ITEM). */
static const annb_question_kind kinds[Q_LAST + 1] = {
    ANNB_Q_ITEMS_FOR_USER, ANNB_Q_SIMILAR_ITEMS, ANNB_Q_ITEMS_FOR_VECTOR, ANNB_Q_SIMILAR_USERS,
    ANNB_Q_USERS_FOR_ITEM,
};

static int parse_request(request *r, const cJSON *root, size_t dim, problem *p)
{
    int rc;
    annb_question_init(&r->q);
    if (!cJSON_IsObject(root)) return INVALID(p, "a request is a JSON object");
    if ((rc = parse_keys(r, root, p))) return rc;
    const cJSON *q = r->key[r->question];
    r->q.kind = kinds[r->question];
    if (r->question == K_VECTOR) {
        rc = parse_vector(r, q, dim, p);
        r->q.vectors = r->vector;
    } else if (!(r->subject = id_text(r->subject_num, q))) {
        rc = INVALID(p, "\"%s\" must be an ID: an integer, or a string",
                     key_names[r->question]);
    }
    r->q.subject_texts = &r->subject;
    return rc ? rc : parse_filters(r, p);
}

/* The protocol's name of a library code (docs/protocol.md). */
static const char *code_name(int code)
{
    switch (code) {
    case ANNB_E_INPUT: return "bad_json";
    case ANNB_E_INVALID: return "invalid_request";
    case ANNB_E_UNSUPPORTED: return "unsupported";
    case ANNB_E_NOT_FOUND: return "not_found";
    case ANNB_E_DIMENSION: return "dimension";
    default: return "internal";
    }
}

/* annb_ask's answer to q into hits (q->k slots), or its reason in p. */
static int answer(annb_hit *hits, const annb_bundle *const *b, size_t n, const annb_question *q,
                  problem *p)
{
    annb_error e = {0, ""};
    int rc = annb_ask(hits, b, n, q, &e);
    return rc ? fail(p, rc, code_name(rc), "%s", e.message) : ANNB_OK;
}

/* ---- the answer ---- */

static int put_results(cJSON *root, const annb_bundle *const *b, size_t n, annb_space space,
                       const annb_hit *hits, size_t k)
{
    annb_bundle_info info;
    annb_bundle_info_get(&info, b[0]);
    return annb_json_put(root, "metric", cJSON_CreateString(annb_metric_name(info.metric))) &&
           annb_json_put(root, "space",
                         cJSON_CreateString(space == ANNB_SPACE_USERS ? "users" : "items")) &&
           annb_json_put(root, "results", annb_json_results(b, n, space, hits, k));
}

static int put_error(cJSON *root, const problem *p)
{
    cJSON *e = cJSON_CreateObject();
    if (!annb_json_put(root, "error", e)) return 0;
    return annb_json_put(e, "code", cJSON_CreateString(p->name)) &&
           annb_json_put(e, "message", cJSON_CreateString(p->message));
}

/* The dimension a "vector" must have; annb_ask checks the rest of the
 * bundles (that shards agree, what each stores). */
static int check_bundles(const annb_bundle *const *b, size_t n, size_t *dim, problem *p)
{
    annb_bundle_info first;
    for (size_t i = 0; b && i < n; i++)
        if (!b[i]) return INVALID(p, "no bundle to answer from");
    if (!b || n == 0) return INVALID(p, "no bundle to answer from");
    annb_bundle_info_get(&first, b[0]);
    if (!first.dimension) return INVALID(p, "the bundle was opened for its structure only");
    *dim = first.dimension;
    return ANNB_OK;
}

/* The answer object: {"id":..,"metric":..,"space":..,"results":[..]} or
 * {"id":..,"error":{..}}; returns p->code. */
static int respond(char **response, const annb_bundle *const *b, size_t n, const cJSON *id,
                   const problem *p, annb_space space, const annb_hit *hits, size_t k)
{
    static const char oom[] =
        "{\"id\":null,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    int code = p->code;
    cJSON *root = cJSON_CreateObject();
    int ok = root && annb_json_put(root, "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull()) &&
             (code ? put_error(root, p) : put_results(root, b, n, space, hits, k));
    if (ok) *response = annb_json_print(root);
    if (!*response) { /* out of memory: a fixed answer, if even that fits */
        code = ANNB_E_NOMEM;
        if ((*response = malloc(sizeof oom))) memcpy(*response, oom, sizeof oom);
    }
    cJSON_Delete(root);
    return code;
}

void annb_serve_opts_init(annb_serve_opts *opts)
{
    if (opts) *opts = (annb_serve_opts)ANNB_SERVE_OPTS_INIT;
}

/* opts resolved: defaults for NULL and for fields past an older struct_size. */
static annb_serve_opts serve_opts(const annb_serve_opts *given)
{
    annb_serve_opts o = ANNB_SERVE_OPTS_INIT;
    if (given && given->struct_size >= sizeof(size_t))
        memcpy(&o, given, given->struct_size < sizeof o ? given->struct_size : sizeof o);
    o.struct_size = sizeof o;
    if (o.max_k == 0 || o.max_k > ANNB_SERVE_MAX_K) o.max_k = ANNB_SERVE_MAX_K;
    return o;
}

/* The question answered: the caller's hook sees it with its hits, and
 * with its subject as an ID too when the request named it as text (the
 * protocol always does), so a hook can use either. */
static void tell_answered(const annb_serve_opts *o, const problem *p,
                          const annb_bundle *const *bundles, size_t n, const annb_question *q,
                          const annb_hit *hits)
{
    if (!o->answered || p->code != ANNB_OK) return;
    annb_question told = *q;
    int64_t subject;
    if (q->subject_texts && !q->subjects && q->kind != ANNB_Q_ITEMS_FOR_VECTOR) {
        const int of_items = q->kind == ANNB_Q_SIMILAR_ITEMS || q->kind == ANNB_Q_USERS_FOR_ITEM;
        const annb_bundle *in = bundles[0];
        for (size_t i = 0; !of_items && i < n; i++)
            if (annb_space_count(bundles[i], ANNB_SPACE_USERS)) {
                in = bundles[i];
                break;
            }
        const char *text = q->subject_texts[0];
        annb_space_id_of(in, of_items ? ANNB_SPACE_ITEMS : ANNB_SPACE_USERS, text, strlen(text),
                         &subject); /* answered: it is there */
        told.subjects = &subject;
    }
    o->answered(o->answered_ctx, &told, hits);
}

int annb_serve_request_with(const annb_bundle *const *bundles, size_t n, const char *request_text,
                            const annb_serve_opts *opts, char **response)
{
    const annb_serve_opts o = serve_opts(opts);
    problem p = {ANNB_OK, NULL, ""};
    request r = {.max_k = o.max_k};
    annb_hit *hits = NULL;
    size_t dim = 0;
    const char *end = NULL;
    if (!response) return ANNB_E_INVALID;
    *response = NULL;
    errno = 0;
    cJSON *req = request_text ? cJSON_ParseWithOpts(request_text, &end, 1) : NULL;
    if (!req && errno == ENOMEM) { /* cJSON says only "failed"; malloc set errno */
        fail(&p, ANNB_E_NOMEM, "internal", "out of memory");
    } else if (!req && request_text && !request_text[strspn(request_text, " \t\r\n")]) {
        fail(&p, ANNB_E_INPUT, "bad_json", "the request is empty");
    } else if (!req) {
        fail(&p, ANNB_E_INPUT, "bad_json", "the request is not valid JSON (byte %zu)",
             request_text && end ? (size_t)(end - request_text) + 1 : 1);
    } else if (check_bundles(bundles, n, &dim, &p) == ANNB_OK &&
               parse_request(&r, req, dim, &p) == ANNB_OK) {
        if (!(hits = malloc(r.q.k * sizeof *hits))) fail(&p, ANNB_E_NOMEM, "internal", "out of memory");
        else if (answer(hits, bundles, n, &r.q, &p) == ANNB_OK) tell_answered(&o, &p, bundles, n, &r.q, hits);
    }
    const cJSON *id = req && cJSON_IsObject(req) ? cJSON_GetObjectItemCaseSensitive(req, "id") : NULL;
    int rc = respond(response, bundles, n, id, &p, annb_question_space(r.q.kind), hits, r.q.k);
    cJSON_Delete(req);
    request_release(&r);
    free(hits);
    return rc;
}

int annb_serve_request(const annb_bundle *const *bundles, size_t n, const char *request_text,
                       char **response)
{
    return annb_serve_request_with(bundles, n, request_text, NULL, response);
}

int annb_serve_ask(const annb_bundle *const *bundles, size_t n, const annb_question *q,
                   const annb_serve_opts *opts, char **response)
{
    const annb_serve_opts o = serve_opts(opts);
    problem p = {ANNB_OK, NULL, ""};
    annb_hit *hits = NULL;
    size_t dim = 0;
    if (!response) return ANNB_E_INVALID;
    *response = NULL;
    if (!q) INVALID(&p, "no question");
    else if (q->count != 1) INVALID(&p, "one question at a time (count %zu)", q->count);
    else if (q->k < 1 || q->k > o.max_k)
        INVALID(&p, "\"k\" must be an integer from 1 to %zu", o.max_k);
    else if (check_bundles(bundles, n, &dim, &p) == ANNB_OK) {
        if (!(hits = malloc(q->k * sizeof *hits))) fail(&p, ANNB_E_NOMEM, "internal", "out of memory");
        else if (answer(hits, bundles, n, q, &p) == ANNB_OK) tell_answered(&o, &p, bundles, n, q, hits);
    }
    int rc = respond(response, bundles, n, NULL, &p,
                     q ? annb_question_space(q->kind) : ANNB_SPACE_ITEMS, hits, q ? q->k : 0);
    free(hits);
    return rc;
}

/* ---- request lines ---- */

int annb_serve_read_line(FILE *in, size_t max_bytes, char **line, size_t *cap, size_t *len)
{
    if (!in || !line || !cap || !len || max_bytes == 0 || max_bytes > SIZE_MAX - 3)
        return ANNB_E_INVALID;
    size_t n = 0;
    int c = EOF, over = 0;
    *len = 0;
    flockfile(in);
    while ((c = getc_unlocked(in)) != EOF && c != '\n') {
        /* One byte past the cap is kept: a '\r' there may end the line. */
        if (over || n > max_bytes) {
            over = 1;
            continue;
        }
        if (n + 2 > *cap) {
            size_t want = *cap ? *cap * 2 : 256;
            if (want > max_bytes + 3 || want < *cap) want = max_bytes + 3;
            char *grown = realloc(*line, want);
            if (!grown) {
                funlockfile(in);
                return ANNB_E_NOMEM;
            }
            *line = grown;
            *cap = want;
        }
        (*line)[n++] = (char)c;
    }
    int failed = c == EOF && ferror(in);
    funlockfile(in);
    if (failed) return ANNB_E_IO;
    if (c == EOF && n == 0 && !over) return 0;
    if (n && (*line)[n - 1] == '\r' && !over) n--;
    if (over || n > max_bytes) return ANNB_E_LIMIT;
    if (!*line && !(*line = malloc(*cap = 1))) return ANNB_E_NOMEM;
    (*line)[n] = '\0';
    *len = n;
    return 1;
}

char *annb_serve_too_large(size_t max_bytes)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf, "{\"id\":null,\"error\":{\"code\":\"too_large\",\"message\":"
                     "\"request line of more than %zu bytes\"}}", max_bytes);
    char *out = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (out) memcpy(out, buf, (size_t)n + 1);
    return out;
}
