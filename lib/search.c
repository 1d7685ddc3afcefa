/* search.c - top-k search with external IDs (annb_search), metric names. */
#include "bundle.h"
#include "faiss_glue.h"

#include <faiss/c_api/Index_c.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

const char *annb_metric_name(annb_metric m)
{
    switch (m) {
    case ANNB_METRIC_IP: return "ip";
    case ANNB_METRIC_L2: return "l2";
    case ANNB_METRIC_COSINE: return "cosine";
    }
    return NULL;
}

int annb_metric_parse(annb_metric *out, const char *name)
{
    for (int m = ANNB_METRIC_IP; m <= ANNB_METRIC_COSINE; m++)
        if (name && strcmp(name, annb_metric_name((annb_metric)m)) == 0) {
            *out = (annb_metric)m;
            return ANNB_OK;
        }
    return ANNB_E_INVALID;
}

#define ANNB_STR2(x) #x
#define ANNB_STR(x) ANNB_STR2(x)
const char *annb_version(void)
{
    return "annb " ANNB_VERSION_STRING " (format " ANNB_STR(ANNB_FORMAT_VERSION_MAJOR) "."
        ANNB_STR(ANNB_FORMAT_VERSION_MINOR) ", faiss " ANNB_FAISS_VERSION ", zstd "
        ZSTD_VERSION_STRING ")";
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Rows of the excluded IDs that are in the bundle, sorted, duplicates
 * removed. *out is malloc'd (NULL when there are none). */
static int excluded_rows(int64_t **out, size_t *count, const annb_bundle *b,
                         const annb_search_opts *o)
{
    *out = NULL;
    *count = 0;
    if (!o->exclude_count) return ANNB_OK;
    int64_t *rows = malloc(o->exclude_count * sizeof *rows);
    if (!rows) return ANNB_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < o->exclude_count; i++) {
        int64_t r = annb_row_of(b, o->exclude_ids[i]);
        if (r >= 0) rows[n++] = r;
    }
    qsort(rows, n, sizeof *rows, cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || rows[u - 1] != rows[i]) rows[u++] = rows[i];
    *out = rows;
    *count = u;
    return ANNB_OK;
}

int annb_search(const annb_bundle *b, const float *queries, size_t nq, size_t k,
                const annb_search_opts *opts, annb_hit *hits)
{
    annb_search_opts defaults = ANNB_SEARCH_OPTS_INIT;
    if (!b || !b->c.index || !queries || !hits || nq == 0 || k == 0) return ANNB_E_INVALID;
    if (!opts) opts = &defaults;
    if (opts->struct_size < sizeof(annb_search_opts) || (opts->exclude_count && !opts->exclude_ids))
        return ANNB_E_INVALID;
    const uint64_t n = b->c.meta.count;
    const uint32_t d = b->c.meta.dimension;

    int64_t *skip = NULL;
    size_t nskip = 0;
    int rc = excluded_rows(&skip, &nskip, b, opts);
    if (rc) return rc;
    /* Ask Faiss for k + |excluded| so that k remain after dropping them. */
    size_t kf = (k >= n || nskip >= n - k) ? (size_t)n : k + nskip;
    if (nq > SIZE_MAX / kf / sizeof(idx_t) || nq > SIZE_MAX / d / sizeof(float)) {
        free(skip);
        return ANNB_E_NOMEM;
    }
    float *dist = malloc(nq * kf * sizeof *dist);
    idx_t *labels = malloc(nq * kf * sizeof *labels);
    float *normed = NULL;
    if (!dist || !labels) {
        rc = ANNB_E_NOMEM;
        goto out;
    }
    if (b->c.meta.metric == ANNB_METRIC_COSINE) {
        if (!(normed = malloc(nq * d * sizeof *normed))) {
            rc = ANNB_E_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < nq; i++) {
            const float *q = queries + i * d;
            double ss = 0;
            for (uint32_t j = 0; j < d; j++) ss += (double)q[j] * q[j];
            double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
            for (uint32_t j = 0; j < d; j++) normed[i * d + j] = (float)(q[j] * inv);
        }
        queries = normed;
    }
    if (faiss_Index_search(b->c.index, (idx_t)nq, queries, (idx_t)kf, dist, labels)) {
        rc = ANNB_E_FAISS;
        goto out;
    }
    /* Faiss labels are row positions; answers carry the rows' external IDs.
     * This is the one place rows become IDs. */
    for (size_t i = 0; i < nq; i++) {
        size_t j = 0;
        for (size_t f = 0; f < kf && j < k; f++) {
            idx_t row = labels[i * kf + f];
            if (row < 0 || (uint64_t)row >= n) continue; /* Faiss: fewer than kf found */
            if (nskip && bsearch(&(int64_t){row}, skip, nskip, sizeof *skip, cmp_i64)) continue;
            hits[i * k + j].id = b->c.ids[row];
            hits[i * k + j].score = dist[i * kf + f];
            j++;
        }
        for (; j < k; j++) {
            hits[i * k + j].id = ANNB_ID_NONE;
            hits[i * k + j].score = NAN;
        }
    }
out:
    free(skip);
    free(dist);
    free(labels);
    free(normed);
    return rc;
}
