/* build.c - embeddings + catalog -> bundle (annb_build). */
#define _GNU_SOURCE /* qsort_r */
#include "annb.h"
#include "annb_format.h"
#include "faiss_glue.h"
#include "ingest.h"
#include "sections.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Rows are stored in ascending ID order: ID -> row is a binary search on the
 * mapping, and the bundle does not depend on the input's row order. */
typedef struct sorted_rows {
    uint64_t n;
    uint32_t d;
    int64_t *ids;
    float *vecs;
} sorted_rows;

static int cmp_row_by_id(const void *a, const void *b, void *ids_v)
{
    const int64_t *ids = ids_v;
    int64_t x = ids[*(const size_t *)a], y = ids[*(const size_t *)b];
    return (x > y) - (x < y);
}

static int sort_rows(sorted_rows *out, const annb_embeddings *e, annb_error *err)
{
    size_t n = (size_t)e->count, d = e->dimension;
    size_t *perm = malloc(n * sizeof *perm);
    out->ids = malloc(n * sizeof *out->ids);
    out->vecs = malloc(n * d * sizeof *out->vecs);
    if (!perm || !out->ids || !out->vecs) {
        free(perm);
        return annb_error_set(err, ANNB_E_NOMEM, "out of memory sorting %zu rows", n);
    }
    for (size_t i = 0; i < n; i++) perm[i] = i;
    qsort_r(perm, n, sizeof *perm, cmp_row_by_id, e->ids);
    for (size_t i = 0; i < n; i++) {
        out->ids[i] = e->ids[perm[i]];
        memcpy(out->vecs + i * d, e->vectors + perm[i] * d, d * sizeof(float));
    }
    free(perm);
    out->n = n;
    out->d = (uint32_t)d;
    return ANNB_OK;
}

static void normalize_rows(float *v, uint64_t n, uint32_t d)
{
    for (uint64_t i = 0; i < n; i++) {
        float *row = v + i * d;
        double ss = 0;
        for (uint32_t j = 0; j < d; j++) ss += (double)row[j] * row[j];
        if (ss > 0) { /* a zero vector stays zero: it scores 0 against everything */
            double inv = 1.0 / sqrt(ss);
            for (uint32_t j = 0; j < d; j++) row[j] = (float)(row[j] * inv);
        }
    }
}

/* "flat" in any case means exact search; anything else is a Faiss factory
 * string, checked here for length and printable ASCII (it goes into META). */
static int index_desc(char out[ANNB_MAX_INDEX_DESC + 1], const char *opt, annb_error *err)
{
    if (!opt || !*opt || strcasecmp(opt, "flat") == 0) opt = ANNB_INDEX_FLAT;
    size_t len = strlen(opt);
    if (len > ANNB_MAX_INDEX_DESC)
        return annb_error_set(err, ANNB_E_INVALID, "index string is %zu bytes, at most %u", len,
                              ANNB_MAX_INDEX_DESC);
    for (size_t i = 0; i < len; i++)
        if (opt[i] < 0x20 || opt[i] > 0x7e)
            return annb_error_set(err, ANNB_E_INVALID, "index string has a non-printable byte");
    memcpy(out, opt, len + 1);
    return ANNB_OK;
}

static int cmp_entry_ptr_by_id(const void *a, const void *b)
{
    int64_t x = (*(annb_catalog_entry *const *)a)->id, y = (*(annb_catalog_entry *const *)b)->id;
    return (x > y) - (x < y);
}

/* Joins the catalog to the sorted rows and adds TOFF, TTLS, GVOC, GBIT
 * (SPEC 6.5-6.8). Rows without an entry get an empty title and no genres. */
static int add_catalog(annbf_writer *w, const sorted_rows *r, const annb_catalog *c,
                       annb_build_report *rep, annb_error *err)
{
    int rc = ANNB_E_NOMEM;
    uint32_t words = (c->genre_count + 63) / 64;
    annb_catalog_entry **byid = malloc((c->count ? c->count : 1) * sizeof *byid);
    uint64_t *toff = malloc((r->n + 1) * sizeof *toff);
    uint64_t *bits = calloc(words ? r->n * words : 1, sizeof *bits);
    char *titles = NULL, *vocab = NULL;
    size_t tsize = r->n, vsize = 0; /* every row has at least its NUL */
    annbf_error fe;
    if (!byid || !toff || !bits) goto out;
    for (uint64_t i = 0; i < c->count; i++) byid[i] = &c->entries[i];
    qsort(byid, c->count, sizeof *byid, cmp_entry_ptr_by_id);

    /* Pass 1: match rows to entries (both sorted by ID) and size the blob. */
    annb_catalog_entry **match = calloc(r->n ? r->n : 1, sizeof *match);
    if (!match) goto out;
    uint64_t j = 0, matched = 0;
    for (uint64_t i = 0; i < r->n; i++) {
        while (j < c->count && byid[j]->id < r->ids[i]) j++;
        if (j < c->count && byid[j]->id == r->ids[i]) {
            match[i] = byid[j];
            tsize += strlen(byid[j]->title);
            matched++;
        }
    }
    rep->items_without_catalog = r->n - matched;
    rep->catalog_without_item = c->count - matched;

    titles = malloc(tsize);
    for (uint32_t g = 0; g < c->genre_count; g++) vsize += strlen(c->genre_names[g]) + 1;
    vocab = malloc(vsize ? vsize : 1);
    if (!titles || !vocab) {
        free(match);
        goto out;
    }
    size_t pos = 0;
    for (uint64_t i = 0; i < r->n; i++) {
        toff[i] = pos;
        if (match[i]) {
            size_t len = strlen(match[i]->title);
            memcpy(titles + pos, match[i]->title, len);
            pos += len;
            for (uint32_t k = 0; k < match[i]->genre_count; k++) {
                uint32_t g = c->genre_ids[match[i]->genre_first + k];
                bits[i * words + g / 64] |= 1ull << (g % 64);
            }
        }
        titles[pos++] = '\0';
    }
    toff[r->n] = pos;
    free(match);
    pos = 0;
    for (uint32_t g = 0; g < c->genre_count; g++) {
        size_t len = strlen(c->genre_names[g]) + 1;
        memcpy(vocab + pos, c->genre_names[g], len);
        pos += len;
    }

    if ((rc = annbf_writer_add(w, ANNB_KIND_TITLE_OFFSETS, 0, ANNBF_CODEC_ZSTD, ANNBF_ELEM_U64,
                               r->n + 1, toff, (r->n + 1) * sizeof *toff, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_TITLES, 0, ANNBF_CODEC_ZSTD, ANNBF_ELEM_BYTES, tsize,
                               titles, tsize, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_GENRE_NAMES, 0, ANNBF_CODEC_ZSTD, ANNBF_ELEM_BYTES,
                               vsize, vocab, vsize, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_GENRE_BITS, 0, ANNBF_CODEC_ZSTD, ANNBF_ELEM_U64,
                               r->n * words, bits, r->n * words * sizeof *bits, &fe)))
        annb_error_set(err, rc, "adding catalog sections: %s", fe.message);
out:
    if (rc == ANNB_E_NOMEM) annb_error_set(err, rc, "out of memory joining the catalog");
    free(byid);
    free(toff);
    free(bits);
    free(titles);
    free(vocab);
    return rc;
}

/* Host floats/ints are written as little-endian bytes: annb builds only on
 * little-endian hosts (checked at compile time). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "annb assumes a little-endian host");

static int write_bundle(const char *output_path, const sorted_rows *r, const annb_catalog *cat,
                        const annb_meta *meta, const void *fblob, size_t fsize,
                        annb_build_report *rep, annb_error *err)
{
    annbf_writer *w = NULL;
    annbf_error fe = {0};
    uint8_t mbuf[ANNB_META_SIZE + ANNB_MAX_INDEX_DESC];
    size_t msize = annb_meta_encode(mbuf, sizeof mbuf, meta);
    int rc = annbf_writer_new(&w, &fe);
    if (rc) return annb_error_set(err, rc, "%s", fe.message);
    if ((rc = annbf_writer_add(w, ANNB_KIND_META, ANNBF_FLAG_CRITICAL, ANNBF_CODEC_RAW,
                               ANNBF_ELEM_BYTES, msize, mbuf, msize, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_IDS, ANNBF_FLAG_CRITICAL, ANNBF_CODEC_RAW,
                               ANNBF_ELEM_I64, r->n, r->ids, r->n * sizeof *r->ids, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_VECS, ANNBF_FLAG_CRITICAL, ANNBF_CODEC_RAW,
                               ANNBF_ELEM_F32, r->n * r->d, r->vecs,
                               r->n * r->d * sizeof *r->vecs, &fe)) ||
        (fblob && (rc = annbf_writer_add(w, ANNB_KIND_FAISS, ANNBF_FLAG_CRITICAL, ANNBF_CODEC_RAW,
                                         ANNBF_ELEM_BYTES, fsize, fblob, fsize, &fe)))) {
        annb_error_set(err, rc, "adding sections: %s", fe.message);
        goto out;
    }
    if (cat && (rc = add_catalog(w, r, cat, rep, err))) goto out;
    if ((rc = annbf_writer_commit(w, output_path, &rep->bundle_bytes, &fe)))
        annb_error_set(err, rc, "%s: %s", output_path, fe.message);
out:
    annbf_writer_free(w);
    return rc;
}

int annb_build(annb_build_report *report, const char *items_path, const char *catalog_path,
               const char *output_path, const annb_build_opts *opts, annb_error *err)
{
    annb_build_opts defaults = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep = {0};
    annb_embeddings emb = {0};
    annb_catalog cat = {0};
    sorted_rows rows = {0};
    annb_meta meta = {0};
    void *fblob = NULL;
    size_t fsize = 0;
    int rc;

    if (report) memset(report, 0, sizeof *report);
    if (!items_path || !output_path)
        return annb_error_set(err, ANNB_E_INVALID, "annb_build: items and output paths are required");
    if (!opts) opts = &defaults;
    if (opts->struct_size < sizeof(annb_build_opts))
        return annb_error_set(err, ANNB_E_INVALID, "annb_build: opts.struct_size too small");
    if (!annb_metric_name(opts->metric))
        return annb_error_set(err, ANNB_E_INVALID, "annb_build: unknown metric %d", (int)opts->metric);
    if ((rc = index_desc(meta.index, opts->index, err))) return rc;
    if (opts->threads > 0) omp_set_num_threads(opts->threads);

    if ((rc = annb_embeddings_read(&emb, items_path, err))) goto out;
    if (catalog_path && (rc = annb_catalog_read(&cat, catalog_path, err))) goto out;
    if ((rc = sort_rows(&rows, &emb, err))) goto out;
    annb_embeddings_release(&emb);

    meta.dimension = rows.d;
    meta.count = rows.n;
    meta.metric = opts->metric;
    if (opts->metric == ANNB_METRIC_COSINE) {
        normalize_rows(rows.vecs, rows.n, rows.d);
        meta.flags |= ANNB_META_FLAG_NORMALIZED;
    }
    if (strcmp(meta.index, ANNB_INDEX_FLAT) != 0 &&
        (rc = annb_faiss_build_blob(&fblob, &fsize, meta.index, opts->metric, rows.d, rows.n,
                                    rows.vecs, err)))
        goto out;

    rep.items = rows.n;
    rep.dimension = rows.d;
    rep.catalog_entries = cat.count;
    rc = write_bundle(output_path, &rows, catalog_path ? &cat : NULL, &meta, fblob, fsize, &rep,
                      err);
out:
    if (rc == ANNB_OK && report) *report = rep;
    annb_embeddings_release(&emb);
    annb_catalog_release(&cat);
    free(rows.ids);
    free(rows.vecs);
    free(fblob);
    return rc;
}
