/*
 * serve.c - the JSON request protocol (docs/protocol.md): one request in,
 * one answer out. A client of the public API only: it adds parsing, the
 * rules of which option goes with which question, and the answer's shape.
 * Threads: cJSON keeps the last parse error in a static that only
 * cJSON_GetErrorPtr reads; we never call it (the error position comes back
 * through ParseWithOpts), which is cJSON's own condition for thread safety.
 */
#define _POSIX_C_SOURCE 200809L /* flockfile, getc_unlocked */
#include "annb.h"

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
#define UNSUPPORTED(p, ...) fail(p, ANNB_E_INVALID, "unsupported", __VA_ARGS__)
#define NOT_FOUND(p, ...) fail(p, ANNB_E_NOT_FOUND, "not_found", __VA_ARGS__)

typedef struct request {
    const cJSON *key[K_COUNT]; /* each key's value, NULL when absent */
    int question;              /* K_USER .. K_USERS_FOR_ITEM */
    int64_t subject;           /* the user or item asked about */
    size_t k;
    uint32_t nprobe, ef_search; /* 0: the bundle's tuned values */
    int exclude_seen;
    int64_t *exclude;          /* room for one more: the subject itself */
    size_t nexclude;
    const char **genres;
    size_t ngenres;
    float *vector;             /* dimension floats */
} request;

static void request_release(request *r)
{
    free(r->exclude);
    free(r->genres);
    free(r->vector);
}

/* An ID: a JSON integer that a double holds exactly, or a decimal string
 * (IDs are int64, beyond what a JSON number reliably carries). */
static int id_of(int64_t *out, const cJSON *v)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(fabs(d) <= 9007199254740992.0) || d != floor(d)) return -1;
        *out = (int64_t)d;
        return 0;
    }
    if (!cJSON_IsString(v)) return -1;
    const char *s = v->valuestring;
    size_t i = s[0] == '-';
    if (!s[i] || strspn(s + i, "0123456789") != strlen(s + i) || strlen(s + i) > 19) return -1;
    uint64_t mag = 0;
    for (; s[i]; i++) {
        unsigned digit = (unsigned)(s[i] - '0');
        if (mag > (UINT64_MAX - digit) / 10) return -1;
        mag = mag * 10 + digit;
    }
    if (mag > (uint64_t)INT64_MAX + (s[0] == '-')) return -1;
    *out = s[0] == '-' ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
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
        if (!(d >= 1 && d <= ANNB_SERVE_MAX_K) || d != floor(d))
            return INVALID(p, "\"k\" must be an integer from 1 to %d", ANNB_SERVE_MAX_K);
        r->k = (size_t)d;
    }
    for (int key = K_NPROBE; key <= K_EF_SEARCH; key++) {
        if (!(v = r->key[key])) continue;
        double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
        if (!(d >= 1 && d <= 1 << 20) || d != floor(d))
            return INVALID(p, "\"%s\" must be an integer from 1 to %d", key_names[key], 1 << 20);
        *(key == K_NPROBE ? &r->nprobe : &r->ef_search) = (uint32_t)d;
    }
    if ((v = r->key[K_EXCLUDE_SEEN])) {
        if (!cJSON_IsBool(v)) return INVALID(p, "\"exclude_seen\" must be true or false");
        r->exclude_seen = cJSON_IsTrue(v);
        if (r->exclude_seen && r->question != K_USER)
            return INVALID(p, "\"exclude_seen\" goes with \"user\" only");
    }
    if ((v = r->key[K_EXCLUDE]) && !cJSON_IsArray(v))
        return INVALID(p, "\"exclude\" must be an array of IDs");
    size_t n = v ? (size_t)cJSON_GetArraySize(v) : 0;
    if (!(r->exclude = malloc((n + 1) * sizeof *r->exclude)))
        return fail(p, ANNB_E_NOMEM, "internal", "out of memory");
    for (const cJSON *e = v ? v->child : NULL; e; e = e->next)
        if (id_of(&r->exclude[r->nexclude++], e))
            return INVALID(p, "\"exclude\" element %zu is not an ID", r->nexclude);
    if (!(v = r->key[K_GENRES])) return ANNB_OK;
    if (!cJSON_IsArray(v)) return INVALID(p, "\"genres\" must be an array of strings");
    if (r->question == K_SIMILAR_USERS || r->question == K_USERS_FOR_ITEM)
        return INVALID(p, "\"genres\" filters items; \"%s\" answers users", key_names[r->question]);
    n = (size_t)cJSON_GetArraySize(v);
    if (n && !(r->genres = malloc(n * sizeof *r->genres)))
        return fail(p, ANNB_E_NOMEM, "internal", "out of memory");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return INVALID(p, "\"genres\" element %zu is not a string", r->ngenres + 1);
        r->genres[r->ngenres++] = e->valuestring;
    }
    return ANNB_OK;
}

static int parse_request(request *r, const cJSON *root, size_t dim, problem *p)
{
    int rc;
    r->k = 10;
    if (!cJSON_IsObject(root)) return INVALID(p, "a request is a JSON object");
    if ((rc = parse_keys(r, root, p))) return rc;
    const cJSON *q = r->key[r->question];
    if (r->question == K_VECTOR) rc = parse_vector(r, q, dim, p);
    else if (id_of(&r->subject, q)) rc = INVALID(p, "\"%s\" must be an ID: an integer, or a "
                                                    "decimal string", key_names[r->question]);
    return rc ? rc : parse_filters(r, p);
}

/* The names of the catalog's genres, for the message about an unknown one. */
static int unknown_genre(problem *p, const annb_bundle *b, const char *name)
{
    char list[768] = "";
    size_t used = 0;
    uint32_t n = annb_genre_count(b);
    for (uint32_t g = 0; g < n && used < sizeof list; g++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", g ? ", " : "",
                                 annb_genre_name(b, g));
    if (used >= sizeof list) { /* cut at a character boundary (names are UTF-8) */
        size_t at = sizeof list - 5;
        while (at > 0 && ((unsigned char)list[at] & 0xC0) == 0x80) at--;
        strcpy(list + at, ", ..");
    }
    if (!n) return NOT_FOUND(p, "unknown genre \"%.64s\": the bundle has no catalog genres", name);
    return NOT_FOUND(p, "unknown genre \"%.64s\"; the genres are: %s", name, list);
}

static const annb_bundle *users_bundle(const annb_bundle *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (annb_space_count(b[i], ANNB_SPACE_USERS)) return b[i];
    return NULL;
}

static int item_vector(float *out, const annb_bundle *const *b, size_t n, int64_t id, problem *p)
{
    for (size_t i = 0; i < n; i++)
        if (annb_vector_get(b[i], ANNB_SPACE_ITEMS, id, out) == ANNB_OK) return ANNB_OK;
    return NOT_FOUND(p, "item %lld is not in the bundle", (long long)id);
}

/* Runs the request into hits (r->k slots); *space says what the IDs are. */
static int answer(annb_hit *hits, annb_space *space, const annb_bundle *const *b, size_t n,
                  request *r, size_t dim, problem *p)
{
    annb_search_opts o = ANNB_SEARCH_OPTS_INIT;
    const annb_bundle *ub = users_bundle(b, n);
    const int q = r->question;
    float *v = r->vector;
    int rc;
    for (size_t i = 0; i < r->ngenres; i++) {
        uint32_t g = 0;
        while (g < annb_genre_count(b[0]) && strcmp(annb_genre_name(b[0], g), r->genres[i])) g++;
        if (g == annb_genre_count(b[0])) return unknown_genre(p, b[0], r->genres[i]);
    }
    if ((q == K_USER || q == K_SIMILAR_USERS || q == K_USERS_FOR_ITEM) && !ub)
        return UNSUPPORTED(p, "the bundle has no users (build with --users)");
    if (r->exclude_seen && n > 1)
        return UNSUPPORTED(p, "\"exclude_seen\" needs a single bundle: over shards, send the "
                              "seen items in \"exclude\"");
    if (r->exclude_seen && !annb_bundle_has_seen(b[0]))
        return UNSUPPORTED(p, "the bundle has no interactions (build with --interactions)");
    if (!v && !(v = r->vector = malloc(dim * sizeof *v)))
        return fail(p, ANNB_E_NOMEM, "internal", "out of memory");
    if (q == K_ITEM || q == K_USERS_FOR_ITEM) {
        if ((rc = item_vector(v, b, n, r->subject, p))) return rc;
    } else if ((q == K_USER || q == K_SIMILAR_USERS) &&
               annb_vector_get(ub, ANNB_SPACE_USERS, r->subject, v) != ANNB_OK) {
        return NOT_FOUND(p, "user %lld is not in the bundle", (long long)r->subject);
    }
    if (q == K_ITEM || q == K_SIMILAR_USERS) r->exclude[r->nexclude++] = r->subject;
    o.exclude_ids = r->exclude;
    o.exclude_count = r->nexclude;
    o.genres = r->genres;
    o.genre_count = r->ngenres;
    o.exclude_seen = r->exclude_seen;
    o.nprobe = r->nprobe;
    o.ef_search = r->ef_search;
    *space = q == K_SIMILAR_USERS || q == K_USERS_FOR_ITEM ? ANNB_SPACE_USERS : ANNB_SPACE_ITEMS;
    o.space = *space;
    if (*space == ANNB_SPACE_USERS) rc = annb_search(ub, v, 1, r->k, &o, hits);
    else if (q == K_USER && n == 1) rc = annb_recommend(b[0], &r->subject, 1, r->k, &o, hits);
    else rc = annb_search_shards(b, n, v, 1, r->k, &o, hits);
    return rc ? fail(p, rc, "internal", "%s", annb_strerror(rc)) : ANNB_OK;
}

/* ---- the answer ---- */

static int put(cJSON *obj, const char *key, cJSON *item)
{
    if (!item) return 0;
    cJSON_AddItemToObjectCS(obj, key, item); /* constant key: nothing to copy */
    return 1;
}

/* Numbers printed by us, which cJSON's double printing would not do: int64
 * IDs exactly (by hand: printf costs more than the rest of the answer), and
 * float scores with %.9g, which read back as the same float. */
static cJSON *raw_int(int64_t v)
{
    char buf[24], *p = buf + sizeof buf;
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    *--p = '\0';
    do *--p = (char)('0' + mag % 10); while (mag /= 10);
    if (v < 0) *--p = '-';
    return cJSON_CreateRaw(p);
}

static cJSON *raw_score(float score)
{
    char buf[32];
    if (!isfinite(score)) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.9g", (double)score);
    return cJSON_CreateRaw(buf);
}

/* "Action|Comedy" of item id as a JSON array; the bundle that holds the
 * item also holds its catalog entry (shards split the catalog too). */
static cJSON *genres_of(const annb_bundle *b, int64_t id)
{
    char small[256], *buf = small;
    int len = annb_item_genres(b, id, small, sizeof small);
    if (len >= (int)sizeof small && (buf = malloc((size_t)len + 1)))
        annb_item_genres(b, id, buf, (size_t)len + 1);
    cJSON *arr = buf ? cJSON_CreateArray() : NULL;
    int ok = arr != NULL;
    for (char *s = buf, *bar; ok && len > 0 && s; s = bar ? bar + 1 : NULL) {
        if ((bar = strchr(s, '|'))) *bar = '\0';
        ok = cJSON_AddItemToArray(arr, cJSON_CreateString(s));
    }
    if (buf != small) free(buf);
    if (!ok) cJSON_Delete(arr);
    return ok ? arr : NULL;
}

static cJSON *result(const annb_bundle *const *b, size_t n, annb_space space, size_t rank,
                     const annb_hit *h)
{
    const annb_bundle *owner = NULL;
    for (size_t i = 0; space == ANNB_SPACE_ITEMS && !owner && i < n; i++)
        if (annb_item_genres(b[i], h->id, NULL, 0) >= 0) owner = b[i];
    const char *title = owner ? annb_item_title(owner, h->id) : NULL;
    cJSON *o = cJSON_CreateObject();
    int ok = o && put(o, "rank", raw_int((int64_t)rank)) && put(o, "id", raw_int(h->id)) &&
             put(o, "score", raw_score(h->score)) &&
             put(o, "title", title ? cJSON_CreateString(title) : cJSON_CreateNull()) &&
             put(o, "genres", owner ? genres_of(owner, h->id) : cJSON_CreateArray());
    if (!ok) cJSON_Delete(o);
    return ok ? o : NULL;
}

static int put_results(cJSON *root, const annb_bundle *const *b, size_t n, annb_space space,
                       const annb_hit *hits, size_t k)
{
    annb_bundle_info info;
    annb_bundle_info_get(&info, b[0]);
    cJSON *arr = NULL; /* made last: root owns it at once */
    if (!put(root, "metric", cJSON_CreateString(annb_metric_name(info.metric))) ||
        !put(root, "space", cJSON_CreateString(space == ANNB_SPACE_USERS ? "users" : "items")) ||
        !put(root, "results", arr = cJSON_CreateArray()))
        return 0;
    for (size_t j = 0; j < k && hits[j].id != ANNB_ID_NONE; j++)
        if (!cJSON_AddItemToArray(arr, result(b, n, space, j + 1, &hits[j]))) return 0;
    return 1;
}

static int put_error(cJSON *root, const problem *p)
{
    cJSON *e = cJSON_CreateObject();
    if (!put(root, "error", e)) return 0;
    return put(e, "code", cJSON_CreateString(p->name)) &&
           put(e, "message", cJSON_CreateString(p->message));
}

static int check_bundles(const annb_bundle *const *b, size_t n, size_t *dim, problem *p)
{
    annb_bundle_info first, info;
    if (!b || n == 0 || !b[0]) return INVALID(p, "no bundle to answer from");
    annb_bundle_info_get(&first, b[0]);
    for (size_t i = 1; i < n; i++) {
        if (!b[i]) return INVALID(p, "no bundle to answer from");
        annb_bundle_info_get(&info, b[i]);
        if (info.dimension != first.dimension || info.metric != first.metric)
            return UNSUPPORTED(p, "the bundles disagree on dimension or metric");
    }
    *dim = first.dimension;
    return ANNB_OK;
}

/* cJSON copies string bytes as they are: a title of a crafted bundle, the
 * echoed id or a key quoted in a message may hold bytes that are not UTF-8.
 * Those bytes (all >= 0x80) can only be inside strings, so replacing each
 * by U+FFFD on the whole answer keeps it JSON and makes it valid UTF-8. */
static char *valid_utf8(char *text)
{
    size_t n = text ? strlen(text) : 0;
    for (size_t i = 0, len; i < n; i += len)
        if (!(len = annb_text_char(text + i, n - i, NULL))) {
            char *fixed = annb_text_repair(text);
            cJSON_free(text);
            return fixed;
        }
    return text;
}

int annb_serve_request(const annb_bundle *const *bundles, size_t n, const char *request_text,
                       char **response)
{
    static const char oom[] =
        "{\"id\":null,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    problem p = {ANNB_OK, NULL, ""};
    request r = {0};
    annb_hit *hits = NULL;
    annb_space space = ANNB_SPACE_ITEMS;
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
        if (!(hits = malloc(r.k * sizeof *hits))) fail(&p, ANNB_E_NOMEM, "internal", "out of memory");
        else answer(hits, &space, bundles, n, &r, dim, &p);
    }
    const cJSON *id = req && cJSON_IsObject(req) ? cJSON_GetObjectItemCaseSensitive(req, "id") : NULL;
    cJSON *root = cJSON_CreateObject();
    int ok = root && put(root, "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull()) &&
             (p.code ? put_error(root, &p) : put_results(root, bundles, n, space, hits, r.k));
    if (ok) *response = valid_utf8(cJSON_PrintUnformatted(root));
    if (!*response) { /* out of memory: a fixed answer, if even that fits */
        p.code = ANNB_E_NOMEM;
        if ((*response = malloc(sizeof oom))) memcpy(*response, oom, sizeof oom);
    }
    cJSON_Delete(root);
    cJSON_Delete(req);
    request_release(&r);
    free(hits);
    return p.code;
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
