/*
 * rerank.h - exact scores for candidates an approximate index returned
 * (internal). Used when the index's own distances are not the metric's:
 * compressed codes (PQ, SQ) and the MIPS-to-L2 reduction.
 */
#ifndef ANNB_RERANK_H
#define ANNB_RERANK_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* Candidates kept per result when re-ranking compressed codes: the index
 * is asked for k x ANNB_RERANK_FACTOR, the best k by exact score stay. */
#define ANNB_RERANK_FACTOR 10u

/* Gives rows[0..count) their exact score for q from vecs (n rows of d; a
 * row < 0 or >= n becomes -1) and sorts them best first (ip and cosine:
 * higher; l2: lower squared distance), ties by lower row, -1 last. */
void annb_rerank(const float *vecs, uint64_t n, uint32_t d, annb_metric m, const float *q,
                 float *scores, int64_t *rows, size_t count);

#endif /* ANNB_RERANK_H */
