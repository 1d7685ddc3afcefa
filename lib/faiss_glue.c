/* faiss_glue.c - building, serializing and loading Faiss indexes. */
#define _GNU_SOURCE /* open_memstream, fmemopen */
#include "faiss_glue.h"
#include "ingest.h"
#include "rerank.h"

#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int annb_faiss_code(const char *message)
{
    /* The C API passes on only what(): "std::bad_alloc", also inside the
     * FaissException Faiss makes of an exception caught in an OpenMP loop. */
    return message && strstr(message, "std::bad_alloc") ? ANNB_E_NOMEM : ANNB_E_FAISS;
}

int annb_faiss_error(annb_error *err, const char *what)
{
    const char *m = faiss_get_last_error();
    int code = annb_faiss_code(m);
    if (code == ANNB_E_NOMEM) return annb_error_set(err, code, "%s: out of memory (%s)", what, m);
    return annb_error_set(err, code, "%s: %s", what, m && *m ? m : "unknown error");
}

FaissMetricType annb_faiss_metric(annb_metric m)
{
    /* Cosine vectors are stored normalised: cosine is their inner product. */
    return m == ANNB_METRIC_L2 ? METRIC_L2 : METRIC_INNER_PRODUCT;
}

static int index_new(FaissIndex **out, const char *desc, annb_metric m, uint32_t d,
                     annb_error *err)
{
    *out = NULL;
    if (faiss_index_factory(out, (int)d, desc, annb_faiss_metric(m))) {
        /* The factory throws only for strings it cannot parse (a bad option)
         * and when out of memory. */
        const char *m = faiss_get_last_error();
        if (annb_faiss_code(m) == ANNB_E_NOMEM) return annb_faiss_error(err, "Faiss index_factory");
        return annb_error_set(err, ANNB_E_INVALID, "index string '%s' not understood by Faiss: %s",
                              desc, m ? m : "unknown error");
    }
    return ANNB_OK;
}

/* One k-means iteration of the training done (annb_faiss_train_counted). */
static void train_tick(void *ctx)
{
    annb_phase *ph = ctx;
    annb_phase_update(ph, ph->info.done + 1);
}

static int train(FaissIndex *index, uint64_t n, const float *x, const annb_progress_to *progress,
                 annb_error *err)
{
    if (faiss_Index_is_trained(index)) return ANNB_OK;
    if (!progress || !progress->fn) /* nothing to count for */
        return faiss_Index_train(index, (idx_t)n, x) ? annb_faiss_error(err, "Faiss train") : ANNB_OK;
    annb_phase ph;
    annb_phase_begin(&ph, progress, "train", "iterations", annb_faiss_train_iterations(index));
    if (annb_faiss_train_counted(index, (int64_t)n, x, train_tick, &ph))
        return annb_error_set(err, annb_faiss_code(annb_faiss_ext_error()), "Faiss train: %s",
                              annb_faiss_ext_error());
    annb_phase_end(&ph);
    return ANNB_OK;
}

/* Rows added per call to an IVF index: Faiss 1.7.3's IndexIVF adds in
 * blocks of 65536 itself, so multiples of it change nothing. */
#define ANNB_FAISS_ADD_CHUNK 65536u

static int add(FaissIndex *index, uint64_t n, uint32_t dim, const float *x,
               const annb_progress_to *progress, annb_error *err)
{
    uint64_t chunk = n;
    if (annb_faiss_family_of(index) == ANNB_FAISS_IVF) {
        chunk = (n / ANNB_PROGRESS_REPORTS + ANNB_FAISS_ADD_CHUNK - 1) / ANNB_FAISS_ADD_CHUNK *
                ANNB_FAISS_ADD_CHUNK;
        if (chunk == 0) chunk = ANNB_FAISS_ADD_CHUNK;
    }
    annb_phase ph;
    annb_phase_begin(&ph, progress, "add", "rows", n);
    for (uint64_t lo = 0; lo < n; lo += chunk) {
        uint64_t len = n - lo < chunk ? n - lo : chunk;
        if (faiss_Index_add(index, (idx_t)len, x + lo * dim)) return annb_faiss_error(err, "Faiss add");
        annb_phase_update(&ph, lo + len);
    }
    annb_phase_end(&ph);
    return ANNB_OK;
}

int annb_faiss_build(FaissIndex **out, const char *desc, annb_metric m, uint32_t d, int mips_l2,
                     uint64_t n, const float *x, const annb_progress_to *progress,
                     annb_error *err)
{
    FaissIndex *index = NULL;
    *out = NULL;
    uint32_t dim = mips_l2 ? d + 1 : d;
    int rc = index_new(&index, desc, mips_l2 ? ANNB_METRIC_L2 : m, dim, err);
    if (rc) return rc;
    if ((rc = train(index, n, x, progress, err)) == ANNB_OK)
        rc = add(index, n, dim, x, progress, err);
    if (rc) faiss_Index_free(index);
    else *out = index;
    return rc;
}

int annb_faiss_serialize(void **blob, size_t *blob_size, const FaissIndex *index, annb_error *err)
{
    char *buf = NULL;
    size_t size = 0;
    *blob = NULL;
    *blob_size = 0;
    FILE *mem = open_memstream(&buf, &size);
    if (!mem) return annb_error_set(err, ANNB_E_NOMEM, "open_memstream: %s", strerror(errno));
    if (faiss_write_index(index, mem)) {
        int rc = annb_faiss_error(err, "Faiss write_index");
        fclose(mem);
        free(buf);
        return rc;
    }
    if (fclose(mem) != 0) {
        free(buf);
        return annb_error_set(err, ANNB_E_NOMEM, "serializing the Faiss index: %s", strerror(errno));
    }
    *blob = buf;
    *blob_size = size;
    return ANNB_OK;
}

float *annb_mips_augment(const float *x, uint64_t n, uint32_t d)
{
    float *out = malloc((size_t)n * (d + 1) * sizeof *out);
    double *norm2 = malloc((size_t)n * sizeof *norm2);
    double most = 0;
    if (!out || !norm2) {
        free(out);
        free(norm2);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        norm2[i] = s;
        if (s > most) most = s;
    }
    for (uint64_t i = 0; i < n; i++) {
        memcpy(out + i * (d + 1), x + i * d, d * sizeof *out);
        out[i * (d + 1) + d] = (float)sqrt(most - norm2[i]); /* >= 0: most is the largest */
    }
    free(norm2);
    return out;
}

int annb_faiss_from_blob(FaissIndex **out, const void *blob, size_t size, annb_error *err)
{
    *out = NULL;
    if (size == 0) return annb_error_set(err, ANNB_E_CORRUPT, "empty Faiss section");
    /* fmemopen in "r" mode never writes to the buffer. */
    FILE *mem = fmemopen((void *)blob, size, "r");
    if (!mem) return annb_error_set(err, ANNB_E_NOMEM, "fmemopen: %s", strerror(errno));
    int rc = ANNB_OK;
    if (faiss_read_index(mem, 0, out)) {
        rc = annb_faiss_error(err, "Faiss read_index");
        *out = NULL;
    }
    fclose(mem);
    return rc;
}

int annb_faiss_answer(const annb_faiss_view *v, const annb_faiss_params *p, const float *q,
                      size_t nq, size_t kf, float *dist, int64_t *labels)
{
    size_t kr = kf;
    if (v->rerank > 1) kr = kf > v->n / v->rerank ? (size_t)v->n : kf * v->rerank;
    int exact = v->mips_l2 || v->rerank > 1;
    float *d = kr == kf ? dist : malloc(nq * kr * sizeof *d);
    int64_t *l = kr == kf ? labels : malloc(nq * kr * sizeof *l);
    float *aug = v->mips_l2 ? calloc(nq * (v->d + 1), sizeof *aug) : NULL;
    int rc = ANNB_OK;
    if (!d || !l || (v->mips_l2 && !aug)) {
        rc = ANNB_E_NOMEM;
    } else {
        for (size_t i = 0; aug && i < nq; i++) /* (q, 0): see annb_mips_augment */
            memcpy(aug + i * (v->d + 1), q + i * v->d, v->d * sizeof *aug);
        if (annb_faiss_search_params(v->index, (int64_t)nq, aug ? aug : q, (int64_t)kr, p, d, l))
            rc = annb_faiss_code(annb_faiss_ext_error());
    }
    for (size_t i = 0; rc == ANNB_OK && exact && i < nq; i++) {
        annb_rerank(v->vecs, v->n, v->d, v->metric, q + i * v->d, d + i * kr, l + i * kr, kr);
        if (kr != kf) {
            memcpy(dist + i * kf, d + i * kr, kf * sizeof *dist);
            memcpy(labels + i * kf, l + i * kr, kf * sizeof *labels);
        }
    }
    if (d != dist) free(d);
    if (l != labels) free(l);
    free(aug);
    return rc;
}
