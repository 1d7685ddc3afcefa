/*
 * topk.h - the order of hits, and the top-k heap built on it (internal).
 *
 * ONE ORDERING RULE for every ranked answer annb gives (the exact scan, IVF
 * lists, the graph, the re-ranking of Faiss candidates, the merge of
 * shards): hit (s, r) comes before hit (t, u) when
 *   1. NaN last: a number comes before a NaN, a NaN before nothing. A NaN
 *      score (a damaged vector in a bulk section, SPEC 3.11) compared as a
 *      number would be neither better nor worse, and a NaN at a heap's root
 *      would keep every later row out. Two NaN scores are not ordered
 *      between themselves (neither comes first, whatever the rows);
 *   2. else, different scores, the better one: larger for ip and cosine
 *      (inner product), smaller for l2 (squared distance), `lower_first`;
 *   3. else, equal scores, the lower r: row number, or external ID where
 *      rows became IDs (shards). Ties broken by row make the order total on
 *      numbers, so results never depend on the scan order, the threads, the
 *      split into lists or shards.
 * Where a list can hold empty slots (row -1, ANNB_ID_NONE), they come after
 * every hit: that is the caller's check, before this one (annb_rerank,
 * annb_search_shards); heaps never hold them. Those two callers also keep,
 * for now, the NaN handling they had before the rule was shared (nothing
 * comes before a NaN score), marked where they call it: making them rank a
 * NaN last changes their output on damaged vectors. nearest.c's fused
 * assignment keeps the same order lane by lane in SIMD registers (larger
 * score, then the lower vector; a NaN score is never kept).
 *
 * The heap below keeps the k best (score, row) pairs under this rule; its
 * push is here, inline, because it is the exact scan's hot loop.
 */
#ifndef ANNB_TOPK_H
#define ANNB_TOPK_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* Does (s, r) come before (t, u)? The rule above; lower_first: l2. */
static inline int annb_hit_better(float s, int64_t r, float t, int64_t u, int lower_first)
{
    if (s != t) {
        if (s != s) return 0;
        if (t != t) return 1;
        return lower_first ? s < t : s > t;
    }
    return r < u;
}

/* The k best (score, row) pairs offered so far, in caller-owned arrays of k
 * slots: a binary heap whose root is the worst kept pair, in the order of
 * annb_hit_better. */
typedef struct annb_topk {
    float *score;
    int64_t *row;
    size_t size, k;
    int lower_first; /* l2 */
} annb_topk;

/* An empty heap over score[k] and row[k]. */
void annb_topk_init(annb_topk *h, float *score, int64_t *row, size_t k, annb_metric m);
/* Offers every pair of src to dst (merging per-thread heaps; src is left as is). */
void annb_topk_merge(annb_topk *dst, const annb_topk *src);
/* Sorts the kept pairs best first in place; the slots past them get NaN / -1. */
void annb_topk_finish(annb_topk *h);

/* Is (s, r) better than (t, u) under h's metric? */
static inline int annb_topk_better(const annb_topk *h, float s, int64_t r, float t, int64_t u)
{
    return annb_hit_better(s, r, t, u, h->lower_first);
}

/* Restores the heap below slot i after its pair got worse. */
static inline void annb_topk_sift_down(annb_topk *h, size_t i)
{
    for (;;) {
        size_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < h->size && annb_topk_better(h, h->score[w], h->row[w], h->score[l], h->row[l]))
            w = l;
        if (r < h->size && annb_topk_better(h, h->score[w], h->row[w], h->score[r], h->row[r]))
            w = r;
        if (w == i) return;
        float ts = h->score[i];
        int64_t tr = h->row[i];
        h->score[i] = h->score[w];
        h->row[i] = h->row[w];
        h->score[w] = ts;
        h->row[w] = tr;
        i = w;
    }
}

/* Offers (s, r): kept if the heap has room or it beats the worst kept pair. */
static inline void annb_topk_push(annb_topk *h, float s, int64_t r)
{
    if (h->size < h->k) {
        size_t i = h->size++;
        h->score[i] = s;
        h->row[i] = r;
        while (i && annb_topk_better(h, h->score[(i - 1) / 2], h->row[(i - 1) / 2], s, r)) {
            h->score[i] = h->score[(i - 1) / 2];
            h->row[i] = h->row[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h->score[i] = s;
        h->row[i] = r;
    } else if (annb_topk_better(h, s, r, h->score[0], h->row[0])) {
        h->score[0] = s;
        h->row[0] = r;
        annb_topk_sift_down(h, 0);
    }
}

#endif /* ANNB_TOPK_H */
