/*
 * faiss_glue.h - the few places libannb talks to Faiss (internal).
 *
 * Faiss's last-error string is thread-local and valid only until the next
 * Faiss call: annb_faiss_error copies it into the caller's annb_error at once.
 */
#ifndef ANNB_FAISS_GLUE_H
#define ANNB_FAISS_GLUE_H

#include "annb.h"
#include "progress.h"

#include <faiss/c_api/Index_c.h>
#include <stddef.h>
#include <stdint.h>

/* Sets err to ANNB_E_FAISS with "what: <faiss message>"; returns ANNB_E_FAISS,
 * or ANNB_E_NOMEM when Faiss ran out of memory (annb_faiss_code). */
int annb_faiss_error(annb_error *err, const char *what);
/* ANNB_E_NOMEM for the message of a std::bad_alloc, else ANNB_E_FAISS. */
int annb_faiss_code(const char *message);

/* Faiss metric used to search vectors stored for annb metric m. */
FaissMetricType annb_faiss_metric(annb_metric m);

/* Builds index `desc` over n rows of x (row position = Faiss label): the
 * index has dimension d, or d + 1 with mips_l2 (then x must already be
 * augmented by annb_mips_augment and the index is L2). Progress (NULL:
 * none): phase "train" (k-means iterations, as annb_faiss_train_counted
 * counts them: else only its start and end), then "add", the rows added
 * (in chunks for an IVF index, whose lists grow in row order whatever the
 * chunks; in one call for others, e.g. HNSW, whose links would change). */
int annb_faiss_build(FaissIndex **out, const char *desc, annb_metric m, uint32_t d, int mips_l2,
                     uint64_t n, const float *x, const annb_progress_to *progress,
                     annb_error *err);

/* Serializes an index into a malloc'd buffer (*blob, *blob_size). */
int annb_faiss_serialize(void **blob, size_t *blob_size, const FaissIndex *index, annb_error *err);

/* The MIPS-to-L2 reduction (Bachrach et al. 2014): row x becomes
 * (x, sqrt(M^2 - |x|^2)) with M the largest norm, so that every row has norm
 * M and the L2-nearest rows of (q, 0) are the rows of largest inner product
 * with q. Returns a malloc'd n x (d + 1) array, or NULL when out of memory. */
float *annb_mips_augment(const float *x, uint64_t n, uint32_t d);

/* Deserializes a Faiss index from bytes whose checksum was verified. */
int annb_faiss_from_blob(FaissIndex **out, const void *blob, size_t size, annb_error *err);

#ifdef __cplusplus
extern "C" {
#endif
/* What lib/faiss_params.cpp knows how to tune. */
typedef enum annb_faiss_family { ANNB_FAISS_OTHER, ANNB_FAISS_IVF, ANNB_FAISS_HNSW } annb_faiss_family;
annb_faiss_family annb_faiss_family_of(const FaissIndex *index);
uint32_t annb_faiss_nlist(const FaissIndex *index); /* 0 when not IVF */
/* Does the index keep compressed codes (PQ, SQ, ...) rather than the vectors? */
int annb_faiss_is_lossy(const FaissIndex *index);

/* Sets the index's own search settings (at open, before any search);
 * zero leaves one as it is. */
void annb_faiss_set_defaults(FaissIndex *index, uint32_t nprobe, uint32_t ef_search);

/* Per-call settings; zero or NULL leaves the index's own. */
typedef struct annb_faiss_params {
    const uint8_t *allowed; /* only rows whose bit is set (nbits bits, LSB first) */
    size_t nbits;
    uint32_t nprobe, ef_search;
} annb_faiss_params;

/* index->search with those settings. Returns 0, or -1 with the message in
 * annb_faiss_ext_error(). */
int annb_faiss_search_params(const FaissIndex *index, int64_t n, const float *x, int64_t k,
                             const annb_faiss_params *p, float *distances, int64_t *labels);

/* The message of the last failed annb_faiss_* C++ call on this thread. */
const char *annb_faiss_ext_error(void);
/* Keeps the message of the exception being handled (call in a catch block). */
void annb_faiss_ext_caught(void);
/* k-means of the n x d rows of x into k centroids (k x d, caller's array),
 * with faiss::Clustering: `niter` iterations, at most max_points_per_centroid
 * * k rows sampled with `seed`, points assigned by L2 or, if inner_product,
 * by the largest inner product with the centroids L2-normalised after each
 * iteration (spherical, as Faiss 1.7.3's IndexIVF trains for inner product).
 * assign, if not NULL, does the assignment step instead of Faiss's IndexFlat
 * (label[i] = nearest of the k centroids for row i, dist[i] its distance or
 * inner product; returns 0, or non-zero when out of memory). Returns 0, or
 * -1 with annb_faiss_ext_error(). */
typedef int (*annb_faiss_assign_fn)(void *ctx, const float *x, int64_t n, const float *centroids,
                                    uint32_t k, float *dist, int64_t *label);
int annb_faiss_kmeans(float *centroids, const float *x, uint64_t n, uint32_t d, uint32_t k,
                      int inner_product, int niter, int max_points_per_centroid, int seed,
                      annb_faiss_assign_fn assign, void *assign_ctx);

/* Training that reports its k-means iterations: tick(ctx) after each, on
 * the calling thread. annb_faiss_train_iterations: how many there will be
 * (0: none that can be counted, or the index needs no training); those of
 * an IVF index's coarse quantizer and of an IVF-PQ's sub-quantizers, when
 * Faiss clusters them with a plain IndexFlat (then the counting one is
 * used in its place: the same centroids). annb_faiss_train_counted trains
 * the index as faiss_Index_train; returns 0, or -1 with
 * annb_faiss_ext_error(). */
typedef void (*annb_faiss_tick_fn)(void *ctx);
uint64_t annb_faiss_train_iterations(const FaissIndex *index);
int annb_faiss_train_counted(FaissIndex *index, int64_t n, const float *x, annb_faiss_tick_fn tick,
                             void *ctx);
#ifdef __cplusplus
}
#endif

/* A Faiss index as annb searches it: at build time (tuning) and from a bundle. */
typedef struct annb_faiss_view {
    const FaissIndex *index;
    const float *vecs;  /* the n stored rows of d floats, for exact scores */
    uint64_t n;
    uint32_t d;
    annb_metric metric;
    int mips_l2;        /* the index is asked (q, 0) over d + 1 (SPEC 6.4) */
    uint32_t rerank;    /* > 1: ask for kf x rerank, keep the best kf by exact score */
} annb_faiss_view;

/*
 * nq queries of d floats, kf rows each, as annb answers: with the MIPS-to-L2
 * reduction or compressed codes Faiss's distances are not the metric's, so
 * the candidates get their exact score from vecs (rerank.h) and the best kf
 * stay. Returns ANNB_OK, ANNB_E_NOMEM (also when Faiss threw std::bad_alloc)
 * or ANNB_E_FAISS (annb_faiss_ext_error).
 */
int annb_faiss_answer(const annb_faiss_view *v, const annb_faiss_params *p, const float *q,
                      size_t nq, size_t kf, float *dist, int64_t *labels);

#endif /* ANNB_FAISS_GLUE_H */
