/* query_input.c - query vectors from text and from embeddings files. */
#include "annb.h"
#include "csvread.h"
#include "ingest.h"
#include "numparse.h"

#include <stdlib.h>
#include <string.h>

/* Query vectors are read with the same correctly rounded parser as the
 * items (numparse.h): an item's own text as a query gives its exact floats. */
static int put_value(float *out, size_t dimension, size_t i, annb_error *err, float v)
{
    if (i >= dimension)
        return annb_error_set(err, ANNB_E_DIMENSION, "vector has more than %zu values", dimension);
    out[i] = v;
    return ANNB_OK;
}

static const char *skip_blanks(const char *p)
{
    return p + strspn(p, " \t\r\n");
}

/* A JSON array of numbers, and nothing after it but white space. */
static int parse_json(float *out, size_t dimension, const char *text, annb_error *err)
{
    const char *p = skip_blanks(text + 1), *end = text + strlen(text);
    size_t n = 0;
    while (*p != ']') {
        float v;
        const char *after = annb_json_float(&v, p, end);
        if (!after)
            return annb_error_set(err, ANNB_E_INPUT, "vector element %zu is not a finite float "
                                  "(JSON number)", n + 1);
        int rc = put_value(out, dimension, n++, err, v);
        if (rc) return rc;
        p = skip_blanks(after);
        if (*p == ',') p = skip_blanks(p + 1);
        else if (*p != ']')
            return annb_error_set(err, ANNB_E_INPUT, "expected ',' or ']' after vector element %zu", n);
    }
    if (*skip_blanks(p + 1))
        return annb_error_set(err, ANNB_E_INPUT, "unexpected text after the vector's ']'");
    if (n != dimension)
        return annb_error_set(err, ANNB_E_DIMENSION, "vector has %zu values, the bundle's dimension is %zu",
                              n, dimension);
    return ANNB_OK;
}

int annb_vector_parse(float *out, size_t dimension, const char *text, annb_error *err)
{
    if (!out || !text || !dimension)
        return annb_error_set(err, ANNB_E_INVALID, "annb_vector_parse: bad argument");
    const char *p = skip_blanks(text);
    if (*p == '[') return parse_json(out, dimension, p, err);
    size_t n = 0;
    for (;;) {
        size_t len = strcspn(p, ", \t\r\n");
        float v;
        int f = annb_float_parse(&v, p, len);
        if (f == ANNB_FLOAT_RANGE)
            return annb_error_set(err, ANNB_E_INPUT, "vector element %zu is not a finite float", n + 1);
        if (f != ANNB_FLOAT_OK)
            return annb_error_set(err, ANNB_E_INPUT, "vector element %zu is not a number", n + 1);
        int rc = put_value(out, dimension, n++, err, v);
        if (rc) return rc;
        p = skip_blanks(p + len);
        if (*p == '\0') break;
        if (*p++ != ',')
            return annb_error_set(err, ANNB_E_INPUT, "expected ',' after vector element %zu", n);
        p = skip_blanks(p);
    }
    if (n != dimension)
        return annb_error_set(err, ANNB_E_DIMENSION,
                              "vector has %zu values, the bundle's dimension is %zu", n, dimension);
    return ANNB_OK;
}

/* An embeddings file whose vectors have `dimension` components. */
static int read_queries(annb_embeddings *e, size_t dimension, const char *path, annb_error *err)
{
    /* a .npy of query vectors: its rows are numbered 0..n-1 as IDs */
    const annb_read_opts rows = {.ids_from_rows = 1};
    int rc = annb_embeddings_read_with(e, path, &rows, err);
    if (rc == ANNB_OK && e->dimension != dimension) {
        rc = annb_error_set(err, ANNB_E_DIMENSION, "%s: vectors have %u values, the bundle's "
                            "dimension is %zu", path, e->dimension, dimension);
        annb_embeddings_release(e);
    }
    return rc;
}

int annb_vector_from_csv(float *out, size_t dimension, const char *path, int64_t id,
                         annb_error *err)
{
    if (!out || !path) return annb_error_set(err, ANNB_E_INVALID, "annb_vector_from_csv: bad argument");
    annb_embeddings e = {0};
    int rc = read_queries(&e, dimension, path, err);
    if (rc) return rc;
    rc = annb_error_set(err, ANNB_E_NOT_FOUND, "%s: no vector with ID %lld", path, (long long)id);
    for (uint64_t i = 0; i < e.count; i++)
        if (e.ids[i] == id) {
            memcpy(out, e.vectors + i * e.dimension, dimension * sizeof *out);
            rc = ANNB_OK;
            break;
        }
    annb_embeddings_release(&e);
    return rc;
}

int annb_vectors_from_csv(int64_t **ids, float **vectors, size_t *count, size_t dimension,
                          const char *path, annb_error *err)
{
    if (!ids || !vectors || !count || !path)
        return annb_error_set(err, ANNB_E_INVALID, "annb_vectors_from_csv: bad argument");
    *ids = NULL;
    *vectors = NULL;
    *count = 0;
    annb_embeddings e = {0};
    int rc = read_queries(&e, dimension, path, err);
    if (rc) return rc;
    /* The reader's arrays are plain malloc'd: hand them over. */
    *ids = e.ids;
    *vectors = e.vectors;
    *count = (size_t)e.count;
    return ANNB_OK;
}

/* What annb_vectors.internal holds. */
typedef struct vectors_owned {
    annb_keys keys;
    const char **key_ptrs;
} vectors_owned;

int annb_vectors_read(annb_vectors *out, size_t dimension, const char *path, annb_error *err)
{
    if (!out || !path) return annb_error_set(err, ANNB_E_INVALID, "annb_vectors_read: bad argument");
    memset(out, 0, sizeof *out);
    annb_embeddings e = {0};
    int rc = read_queries(&e, dimension, path, err);
    if (rc) return rc;
    vectors_owned *own = NULL;
    if (e.keys.count) {
        own = calloc(1, sizeof *own);
        if (own) own->key_ptrs = malloc(e.count * sizeof *own->key_ptrs);
        if (!own || !own->key_ptrs) {
            free(own);
            annb_embeddings_release(&e);
            return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
        }
        for (uint64_t i = 0; i < e.count; i++) own->key_ptrs[i] = annb_keys_at(&e.keys, i, NULL);
        own->keys = e.keys;
        out->keys = own->key_ptrs;
    }
    out->count = (size_t)e.count;
    out->dimension = e.dimension;
    out->ids = e.ids;
    out->vectors = e.vectors;
    out->internal = own;
    return ANNB_OK;
}

void annb_vectors_release(annb_vectors *v)
{
    if (!v) return;
    vectors_owned *own = v->internal;
    if (own) {
        annb_keys_release(&own->keys);
        free(own->key_ptrs);
        free(own);
    }
    free(v->ids);
    free(v->vectors);
    memset(v, 0, sizeof *v);
}

int64_t annb_vectors_row(const annb_vectors *v, const char *text, size_t len)
{
    if (!v || (!text && len)) return -1;
    int64_t id;
    if (v->keys) id = annb_key_id(text, len);
    else if (len == 0 || annb_id_parse(&id, text, len)) return -1;
    for (size_t i = 0; i < v->count; i++)
        if (v->ids[i] == id &&
            (!v->keys || (strlen(v->keys[i]) == len && memcmp(v->keys[i], text, len) == 0)))
            return (int64_t)i;
    return -1;
}

int annb_seen_items_from_file(int64_t **items, size_t *count, const char *path, int64_t user,
                              annb_error *err)
{
    return annb_seen_items_read(items, count, path, user, 0, 0, err);
}

int annb_seen_items_read(int64_t **items, size_t *count, const char *path, int64_t user,
                         int user_keys, int item_keys, annb_error *err)
{
    if (!items || !count || !path)
        return annb_error_set(err, ANNB_E_INVALID, "annb_seen_items_read: bad argument");
    *items = NULL;
    *count = 0;
    annb_interactions x;
    const annb_interactions_opts xo = {.user_keys = user_keys != 0, .item_keys = item_keys != 0};
    int rc = annb_interactions_read_with(&x, path, &xo, err);
    if (rc) return rc;
    uint64_t first, n;
    annb_interactions_of(&x, user, &first, &n);
    if (n) {
        if (!(*items = malloc(n * sizeof **items))) {
            rc = annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
        } else {
            memcpy(*items, x.items + first, n * sizeof **items);
            *count = (size_t)n;
        }
    }
    annb_interactions_release(&x);
    return rc;
}

void annb_free(void *p) { free(p); }
