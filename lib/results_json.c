/* results_json.c - answers as JSON: the results array of docs/protocol.md,
 * written once for every JSON front end (the protocol, ann-query's JSON
 * output, ann-serve). */
#include "json_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int annb_json_put(cJSON *obj, const char *key, cJSON *item)
{
    if (!item) return 0;
    cJSON_AddItemToObjectCS(obj, key, item); /* constant key: nothing to copy */
    return 1;
}

/* Numbers printed by us, which cJSON's double printing would not do: int64
 * IDs exactly (by hand: printf costs more than the rest of the answer), and
 * float scores with %.9g, which read back as the same float. */
cJSON *annb_json_int(int64_t v)
{
    char buf[24], *p = buf + sizeof buf;
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    *--p = '\0';
    do *--p = (char)('0' + mag % 10); while (mag /= 10);
    if (v < 0) *--p = '-';
    return cJSON_CreateRaw(p);
}

static cJSON *score_of(float score)
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

/* An answer's ID: its string ID where the space has them (SPEC 6.19),
 * else the integer. A damaged key table gives the integer. */
cJSON *annb_json_id(const annb_bundle *holder, annb_space space, int64_t id)
{
    const char *key = holder ? annb_space_key(holder, space, id, NULL) : NULL;
    return key ? cJSON_CreateString(key) : annb_json_int(id);
}

/* The bundle among b[0..n) that holds `id` of `space`, or NULL. */
static const annb_bundle *holder_of(const annb_bundle *const *b, size_t n, annb_space space,
                                    int64_t id)
{
    if (space == ANNB_SPACE_ITEMS) return annb_item_owner(b, n, id);
    for (size_t i = 0; i < n; i++)
        if (annb_space_count(b[i], ANNB_SPACE_USERS)) return b[i];
    return NULL;
}

static cJSON *result(const annb_bundle *const *b, size_t n, annb_space space, size_t rank,
                     const annb_hit *h)
{
    const annb_bundle *holder = holder_of(b, n, space, h->id);
    const annb_bundle *owner = space == ANNB_SPACE_ITEMS ? holder : NULL;
    const char *title = owner ? annb_item_title(owner, h->id) : NULL;
    cJSON *o = cJSON_CreateObject();
    int ok = o && annb_json_put(o, "rank", annb_json_int((int64_t)rank)) &&
             annb_json_put(o, "id", annb_json_id(holder, space, h->id)) &&
             annb_json_put(o, "score", score_of(h->score)) &&
             annb_json_put(o, "title", title ? cJSON_CreateString(title) : cJSON_CreateNull()) &&
             annb_json_put(o, "genres", owner ? genres_of(owner, h->id) : cJSON_CreateArray());
    if (!ok) cJSON_Delete(o);
    return ok ? o : NULL;
}

cJSON *annb_json_results(const annb_bundle *const *b, size_t n, annb_space space,
                         const annb_hit *hits, size_t k)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t j = 0; arr && j < k && hits[j].id != ANNB_ID_NONE; j++)
        if (!cJSON_AddItemToArray(arr, result(b, n, space, j + 1, &hits[j]))) {
            cJSON_Delete(arr);
            return NULL;
        }
    return arr;
}

/* cJSON copies string bytes as they are and escapes only C0 controls: a
 * title of a crafted bundle, the echoed id or a key quoted in a message may
 * hold bytes that are not UTF-8, or C1 controls and DEL that a terminal
 * showing the JSON would obey. Such bytes (all >= 0x7F) can only be inside
 * strings, so one pass over the whole text writes each invalid byte as
 * \ufffd and each of those controls as \u00XX: the same JSON string values,
 * valid UTF-8, nothing a terminal acts on. */
char *annb_json_print(const cJSON *root)
{
    char *text = cJSON_PrintUnformatted(root);
    size_t n = text ? strlen(text) : 0, extra = 0, len;
    int control;
    for (size_t i = 0; i < n; i += len ? len : 1) {
        len = annb_text_char(text + i, n - i, &control);
        if (!len || control) extra += 6; /* at most 6 more bytes each */
    }
    if (!extra) return text;
    char *out = malloc(n + extra + 1), *at = out;
    for (size_t i = 0; out && i < n; i += len ? len : 1) {
        len = annb_text_char(text + i, n - i, &control);
        if (!len) {
            memcpy(at, "\\ufffd", 6);
            at += 6;
        } else if (control) { /* C0 never gets here: cJSON escaped it */
            unsigned cp = len == 1 ? (unsigned char)text[i]
                                   : ((unsigned char)text[i] & 0x1Fu) << 6 | ((unsigned char)text[i + 1] & 0x3Fu);
            at += sprintf(at, "\\u%04x", cp);
        } else {
            memcpy(at, text + i, len);
            at += len;
        }
    }
    if (out) *at = '\0';
    cJSON_free(text);
    return out;
}

char *annb_results_json(const annb_bundle *const *bundles, size_t n, annb_space space,
                        const annb_hit *hits, size_t k)
{
    if (!bundles || !n || !hits) return NULL;
    cJSON *arr = annb_json_results(bundles, n, space, hits, k);
    char *text = arr ? annb_json_print(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}
