/* rerank.c - exact re-ranking of an index's candidates (see rerank.h). */
#include "rerank.h"
#include "topk.h"

#include <math.h>

static float exact_score(const float *x, const float *q, uint32_t d, annb_metric m)
{
    float s = 0;
    if (m == ANNB_METRIC_L2)
        for (uint32_t j = 0; j < d; j++) s += (x[j] - q[j]) * (x[j] - q[j]);
    else
        for (uint32_t j = 0; j < d; j++) s += x[j] * q[j];
    return s;
}

/* a before b: a real row (not -1) before an empty slot, then topk.h's one
 * rule (annb_hit_better): a better score, or the same score and a lower row. */
static int before(float sa, int64_t ra, float sb, int64_t rb, int lower_first)
{
    if (ra < 0) return 0;
    if (rb < 0) return 1;
    return annb_hit_better(sa, ra, sb, rb, lower_first);
}

void annb_rerank(const float *vecs, uint64_t n, uint32_t d, annb_metric m, const float *q,
                 float *scores, int64_t *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (rows[i] < 0 || (uint64_t)rows[i] >= n) {
            rows[i] = -1;
            scores[i] = NAN;
        } else {
            scores[i] = exact_score(vecs + (uint64_t)rows[i] * d, q, d, m);
        }
    }
    /* Insertion sort: count is small (k or k x ANNB_RERANK_FACTOR) and the
     * index's order is close to the exact one. */
    int lower_first = m == ANNB_METRIC_L2;
    for (size_t i = 1; i < count; i++) {
        float s = scores[i];
        int64_t r = rows[i];
        size_t j = i;
        for (; j > 0 && before(s, r, scores[j - 1], rows[j - 1], lower_first); j--) {
            scores[j] = scores[j - 1];
            rows[j] = rows[j - 1];
        }
        scores[j] = s;
        rows[j] = r;
    }
}
