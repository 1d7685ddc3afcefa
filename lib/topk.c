/* topk.c - the top-k heap (see topk.h for the order it keeps). */
#include "topk.h"

#include <math.h>

void annb_topk_init(annb_topk *h, float *score, int64_t *row, size_t k, annb_metric m)
{
    *h = (annb_topk){score, row, 0, k, m == ANNB_METRIC_L2};
}

/* The top k of a union is the top k of the tops: with ties broken by row,
 * the order is total, so any split of the rows merges to the same result. */
void annb_topk_merge(annb_topk *dst, const annb_topk *src)
{
    for (size_t i = 0; i < src->size; i++) annb_topk_push(dst, src->score[i], src->row[i]);
}

void annb_topk_finish(annb_topk *h)
{
    size_t n = h->size;
    while (h->size > 1) { /* heap sort: the worst goes to the end */
        size_t last = --h->size;
        float ts = h->score[0];
        int64_t tr = h->row[0];
        h->score[0] = h->score[last];
        h->row[0] = h->row[last];
        h->score[last] = ts;
        h->row[last] = tr;
        annb_topk_sift_down(h, 0);
    }
    for (size_t i = n; i < h->k; i++) {
        h->score[i] = NAN;
        h->row[i] = -1;
    }
}
