/*
 * faiss_glue.h - the few places libannb talks to Faiss (internal).
 *
 * Faiss's last-error string is thread-local and valid only until the next
 * Faiss call: annb_faiss_error copies it into the caller's annb_error at once.
 */
#ifndef ANNB_FAISS_GLUE_H
#define ANNB_FAISS_GLUE_H

#include "annb.h"

#include <faiss/c_api/Index_c.h>
#include <stddef.h>
#include <stdint.h>

/* Sets err to ANNB_E_FAISS with "what: <faiss message>"; returns ANNB_E_FAISS. */
int annb_faiss_error(annb_error *err, const char *what);

/* Faiss metric used to search vectors stored for annb metric m. */
FaissMetricType annb_faiss_metric(annb_metric m);

/* Builds index `desc` over n rows of x (row position = Faiss label) and
 * serializes it into a malloc'd buffer (*blob, *blob_size). */
int annb_faiss_build_blob(void **blob, size_t *blob_size, const char *desc, annb_metric m,
                          uint32_t d, uint64_t n, const float *x, annb_error *err);

/* Deserializes a Faiss index from bytes whose checksum was verified. */
int annb_faiss_from_blob(FaissIndex **out, const void *blob, size_t size, annb_error *err);

#ifdef __cplusplus
extern "C" {
#endif
/* Search only rows whose bit is set in `allowed` (nbits bits, LSB first):
 * Faiss 1.7.3's IDSelector, which its C API does not expose
 * (lib/faiss_c_ext.cpp). Returns 0, or -1 with annb_faiss_ext_error(). */
int annb_faiss_search_filtered(const FaissIndex *index, int64_t n, const float *x, int64_t k,
                               const uint8_t *allowed, size_t nbits, float *distances,
                               int64_t *labels);
const char *annb_faiss_ext_error(void);
#ifdef __cplusplus
}
#endif

#endif /* ANNB_FAISS_GLUE_H */
