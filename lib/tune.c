/* tune.c - recall measured against exact search; the parameter that reaches
 * the target (see tune.h). */
#include "tune.h"
#include "exact.h"
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

/* splitmix64: a fixed, seeded choice of questions, the same on every run. */
static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The questions, their exact answers (for the largest k), and the buffer
 * for approximate ones. */
typedef struct tune_set {
    const annb_tune_in *in;
    size_t q, kmax;    /* questions; exact results kept per question */
    int items;         /* item questions: the item itself is excluded */
    uint32_t *self;    /* items: the row asked about */
    float *queries;    /* q x d */
    int64_t *truth;    /* q x kmax, exact, best first */
    int64_t *found;    /* q x (kmax + 1), approximate */
    annb_phase tuned;  /* candidates measured */
    uint64_t tried;
} tune_set;

static void set_release(tune_set *s)
{
    free(s->self);
    free(s->queries);
    free(s->truth);
    free(s->found);
}

/* Picks q rows of `total` spread over the whole range: one per stride, at a
 * seeded place inside it (rows are in ID order, which may carry meaning). */
static void sample_rows(uint32_t *out, size_t q, uint64_t total)
{
    for (size_t i = 0; i < q; i++) {
        uint64_t from = (uint64_t)i * total / q, to = (uint64_t)(i + 1) * total / q;
        out[i] = (uint32_t)(from + mix(i) % (to - from));
    }
}

static int set_make(tune_set *s, const annb_tune_in *in, annb_error *err)
{
    memset(s, 0, sizeof *s);
    s->in = in;
    s->items = in->queries == NULL;
    uint64_t total = s->items ? in->n : in->m;
    s->q = in->sample < total ? in->sample : (size_t)total;
    s->kmax = in->ks[in->nk - 1];
    uint32_t *rows = malloc(s->q * sizeof *rows);
    float *scores = malloc(s->q * s->kmax * sizeof *scores);
    const uint32_t **extra = malloc(s->q * sizeof *extra);
    size_t *extra_count = malloc(s->q * sizeof *extra_count);
    s->queries = malloc(s->q * in->d * sizeof *s->queries);
    s->truth = malloc(s->q * s->kmax * sizeof *s->truth);
    s->found = malloc(s->q * (s->kmax + 1) * sizeof *s->found);
    int rc = ANNB_OK;
    if (!rows || !scores || !extra || !extra_count || !s->queries || !s->truth || !s->found) {
        rc = annb_error_set(err, ANNB_E_NOMEM, "out of memory measuring recall");
        goto out;
    }
    sample_rows(rows, s->q, total);
    const float *from = s->items ? in->vecs : in->queries;
    for (size_t i = 0; i < s->q; i++) {
        memcpy(s->queries + i * in->d, from + (uint64_t)rows[i] * in->d, in->d * sizeof(float));
        extra[i] = &rows[i];
        extra_count[i] = 1;
    }
    annb_row_filter self = {NULL, NULL, 0, extra, extra_count};
    rc = annb_exact_search(in->vecs, in->n, in->d, in->metric, s->queries, s->q, s->kmax,
                           s->items ? &self : NULL, scores, s->truth);
    if (rc) {
        annb_error_set(err, rc, "out of memory computing exact answers");
        goto out;
    }
    if (s->items) {
        s->self = rows;
        rows = NULL;
    }
out:
    free(rows);
    free(scores);
    free((void *)extra);
    free(extra_count);
    if (rc) set_release(s);
    return rc;
}

/* Mean recall@k of the index at `value`. The exact top k of a question is
 * the first k of its exact top kmax (topk.h breaks ties by row, the same
 * way for any k). */
static int measure(double *recall, tune_set *s, size_t k, uint32_t value, annb_error *err)
{
    size_t kf = k + (size_t)s->items; /* one more: the item itself comes back */
    int rc = s->in->search(s->in->ctx, value, s->queries, s->q, kf, s->found, err);
    if (rc) return rc;
    annb_phase_update(&s->tuned, ++s->tried);
    double sum = 0;
    for (size_t i = 0; i < s->q; i++) {
        const int64_t *truth = s->truth + i * s->kmax, *found = s->found + i * kf;
        size_t want = 0, hit = 0, taken = 0;
        for (size_t j = 0; j < k; j++) want += truth[j] >= 0;
        for (size_t f = 0; f < kf && taken < k; f++) {
            if (found[f] < 0 || (s->items && found[f] == (int64_t)s->self[i])) continue;
            taken++;
            for (size_t j = 0; j < want; j++)
                if (truth[j] == found[f]) {
                    hit++;
                    break;
                }
        }
        sum += want ? (double)hit / want : 1.0;
    }
    *recall = s->q ? sum / s->q : 1.0;
    return ANNB_OK;
}

/* The best value for one k (see annb_tune_run). */
static int pick_for_k(annb_tune_pick *out, tune_set *s, uint32_t k, annb_error *err)
{
    const annb_tune_in *in = s->in;
    uint32_t lowest = in->lowest, highest = in->highest;
    if (in->lowest_above_k && lowest <= k) lowest = k + 1;
    if (highest < lowest) highest = lowest;
    /* best: the smallest value with the highest recall measured so far. */
    uint32_t lo = 0, hi = lowest, best = 0;
    double r_hi = 0, r_best = -1, r;
    int rc;
    for (;;) {
        if ((rc = measure(&r_hi, s, k, hi, err))) return rc;
        if (r_hi > r_best) best = hi, r_best = r_hi;
        if (r_hi >= in->target || hi == highest) break;
        lo = hi;
        hi = hi > highest / 2 ? highest : 2 * hi;
    }
    out->k = k;
    out->tried_highest = hi == highest;
    if (in->probe && (rc = measure(&out->probe_recall, s, k, in->probe, err))) return rc;
    if (r_hi < in->target) { /* the whole range falls short */
        out->value = best;
        out->recall = r_best;
        out->reached = 0;
        return ANNB_OK;
    }
    while (lo && hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((rc = measure(&r, s, k, mid, err))) return rc;
        if (r >= in->target) hi = mid, r_hi = r;
        else lo = mid;
    }
    out->value = hi;
    out->recall = r_hi;
    out->reached = 1;
    return ANNB_OK;
}

int annb_tune_run(annb_tune_pick *picks, uint32_t *questions, const annb_tune_in *in,
                  annb_error *err)
{
    tune_set s;
    if (in->nk == 0 || in->sample == 0 || in->lowest == 0 || in->highest < in->lowest ||
        (in->queries ? in->m : in->n) == 0 || !(in->target > 0 && in->target <= 1))
        return annb_error_set(err, ANNB_E_INVALID, "recall measurement: bad parameters");
    for (size_t i = 0; i < in->nk; i++)
        if (in->ks[i] == 0 || (i && in->ks[i] <= in->ks[i - 1]))
            return annb_error_set(err, ANNB_E_INVALID, "recall measurement: k not ascending");
    annb_phase tuned;
    annb_phase_begin(&tuned, in->progress, "tune", "candidates", 0);
    int rc = set_make(&s, in, err);
    if (rc) return rc;
    s.tuned = tuned;
    for (size_t i = 0; rc == ANNB_OK && i < in->nk; i++)
        rc = pick_for_k(&picks[i], &s, in->ks[i], err);
    for (size_t i = 0; rc == ANNB_OK && in->counted && i < in->nk; i++)
        if (in->ks[i] == in->counted_k) /* asked as measure() asks */
            rc = in->counted(in->ctx, picks[i].value, s.queries, s.q, in->ks[i] + (size_t)s.items,
                             s.found, err);
    if (rc == ANNB_OK) {
        s.tuned.info.total = s.tried; /* known now */
        annb_phase_end(&s.tuned);
    }
    *questions = (uint32_t)s.q;
    set_release(&s);
    return rc;
}
