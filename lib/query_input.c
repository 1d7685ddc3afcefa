/* query_input.c - query vectors from text and from embeddings files. */
#include "annb.h"
#include "ingest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int put_value(float *out, size_t dimension, size_t i, double v, annb_error *err)
{
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return annb_error_set(err, ANNB_E_INPUT, "vector element %zu is not a finite float", i + 1);
    if (i >= dimension)
        return annb_error_set(err, ANNB_E_DIMENSION, "vector has more than %zu values", dimension);
    out[i] = (float)v;
    return ANNB_OK;
}

static int parse_json(float *out, size_t dimension, const char *text, annb_error *err)
{
    cJSON *arr = cJSON_ParseWithOpts(text, NULL, 1); /* 1: nothing may follow */
    int rc = ANNB_OK;
    size_t n = 0;
    if (!cJSON_IsArray(arr)) {
        rc = annb_error_set(err, ANNB_E_INPUT, "vector is not a JSON array of numbers");
        goto out;
    }
    for (cJSON *e = arr->child; e; e = e->next, n++) {
        if (!cJSON_IsNumber(e)) {
            rc = annb_error_set(err, ANNB_E_INPUT, "vector element %zu is not a number", n + 1);
            goto out;
        }
        if ((rc = put_value(out, dimension, n, e->valuedouble, err))) goto out;
    }
    if (n != dimension)
        rc = annb_error_set(err, ANNB_E_DIMENSION, "vector has %zu values, the bundle's dimension is %zu",
                            n, dimension);
out:
    cJSON_Delete(arr);
    return rc;
}

int annb_vector_parse(float *out, size_t dimension, const char *text, annb_error *err)
{
    if (!out || !text || !dimension)
        return annb_error_set(err, ANNB_E_INVALID, "annb_vector_parse: bad argument");
    const char *p = text + strspn(text, " \t\r\n");
    if (*p == '[') return parse_json(out, dimension, p, err);
    size_t n = 0;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno == ERANGE)
            return annb_error_set(err, ANNB_E_INPUT, "vector element %zu is not a number", n + 1);
        int rc = put_value(out, dimension, n++, v, err);
        if (rc) return rc;
        p = end + strspn(end, " \t");
        if (*p == '\0') break;
        if (*p++ != ',')
            return annb_error_set(err, ANNB_E_INPUT, "expected ',' after vector element %zu", n);
    }
    if (n != dimension)
        return annb_error_set(err, ANNB_E_DIMENSION,
                              "vector has %zu values, the bundle's dimension is %zu", n, dimension);
    return ANNB_OK;
}

/* An embeddings file whose vectors have `dimension` components. */
static int read_queries(annb_embeddings *e, size_t dimension, const char *path, annb_error *err)
{
    int rc = annb_embeddings_read(e, path, err);
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

int annb_seen_items_from_file(int64_t **items, size_t *count, const char *path, int64_t user,
                              annb_error *err)
{
    if (!items || !count || !path)
        return annb_error_set(err, ANNB_E_INVALID, "annb_seen_items_from_file: bad argument");
    *items = NULL;
    *count = 0;
    annb_interactions x;
    int rc = annb_interactions_read(&x, path, err);
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
