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

/* The questions, their exact answers, and the buffer for approximate ones. */
typedef struct tune_set {
    const annb_tune_in *in;
    size_t q, k;       /* questions; results kept per question */
    int items;         /* item questions: the item itself is excluded */
    uint32_t *self;    /* items: the row asked about */
    float *queries;    /* q x d */
    int64_t *truth;    /* q x k, exact */
    int64_t *found;    /* q x (k + 1), approximate */
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
    s->items = in->users == NULL;
    uint64_t total = s->items ? in->n : in->m;
    s->q = in->queries < total ? in->queries : (size_t)total;
    s->k = in->k;
    uint32_t *rows = malloc(s->q * sizeof *rows);
    float *scores = malloc(s->q * s->k * sizeof *scores);
    const uint32_t **extra = malloc(s->q * sizeof *extra);
    size_t *extra_count = malloc(s->q * sizeof *extra_count);
    s->queries = malloc(s->q * in->d * sizeof *s->queries);
    s->truth = malloc(s->q * s->k * sizeof *s->truth);
    s->found = malloc(s->q * (s->k + 1) * sizeof *s->found);
    int rc = ANNB_OK;
    if (!rows || !scores || !extra || !extra_count || !s->queries || !s->truth || !s->found) {
        rc = annb_error_set(err, ANNB_E_NOMEM, "out of memory measuring recall");
        goto out;
    }
    sample_rows(rows, s->q, total);
    const float *from = s->items ? in->vecs : in->users;
    for (size_t i = 0; i < s->q; i++) {
        memcpy(s->queries + i * in->d, from + (uint64_t)rows[i] * in->d, in->d * sizeof(float));
        extra[i] = &rows[i];
        extra_count[i] = 1;
    }
    annb_row_filter self = {NULL, NULL, 0, extra, extra_count};
    rc = annb_exact_search(in->vecs, in->n, in->d, in->metric, s->queries, s->q, s->k,
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

/* Mean recall@k of the index at `value`. */
static int measure(double *recall, tune_set *s, uint32_t value, annb_error *err)
{
    size_t kf = s->k + (size_t)s->items; /* one more: the item itself comes back */
    int rc = s->in->search(s->in->ctx, value, s->queries, s->q, kf, s->found, err);
    if (rc) return rc;
    double sum = 0;
    for (size_t i = 0; i < s->q; i++) {
        const int64_t *truth = s->truth + i * s->k, *found = s->found + i * kf;
        size_t want = 0, hit = 0, taken = 0;
        for (size_t j = 0; j < s->k; j++) want += truth[j] >= 0;
        for (size_t f = 0; f < kf && taken < s->k; f++) {
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

int annb_tune_run(annb_tune *out, uint32_t *value, const annb_tune_in *in, annb_error *err)
{
    tune_set s;
    memset(out, 0, sizeof *out);
    if (in->k == 0 || in->queries == 0 || in->lowest == 0 || in->highest < in->lowest ||
        (in->users ? in->m : in->n) == 0)
        return annb_error_set(err, ANNB_E_INVALID, "recall measurement: bad parameters");
    int rc = set_make(&s, in, err);
    if (rc) return rc;
    /* Doubling until the target is reached, then bisection below it. A
     * doubling that gains less than a twentieth of what is missing means the
     * index cannot get there (PQ codes, say): the smaller value is kept. */
    uint32_t lo = 0, hi = in->lowest; /* lo: largest value known short; hi: the candidate */
    double r_lo = 0, r_hi = 0, r;
    for (;;) {
        if ((rc = measure(&r_hi, &s, hi, err))) goto out;
        if (r_hi >= in->target || hi == in->highest) break;
        if (lo && r_hi - r_lo < (in->target - r_lo) / 20) {
            hi = lo;
            r_hi = r_lo;
            break;
        }
        lo = hi;
        r_lo = r_hi;
        hi = hi > in->highest / 2 ? in->highest : 2 * hi;
    }
    while (r_hi >= in->target && lo && hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((rc = measure(&r, &s, mid, err))) goto out;
        if (r >= in->target) hi = mid, r_hi = r;
        else lo = mid;
    }
    *value = hi;
    out->k = in->k;
    out->queries = (uint32_t)s.q;
    out->target = in->target;
    out->recall = r_hi;
    out->source = s.items ? ANNB_TUNE_ITEMS : ANNB_TUNE_USERS;
out:
    set_release(&s);
    return rc;
}
