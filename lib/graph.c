/* graph.c - annb's own proximity graph: build and in-place search (see graph.h). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "graph.h"
#include "ingest.h" /* annb_error_set */
#include "progress.h"
#include "sq8.h"
#include "threads.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a search's private state, and the pool it comes from ---- */

/* A (distance, row) pair: distance is "lower is better" (ip: the negated
 * inner product), ties by lower row, so the order is total. */
typedef struct node {
    float dist;
    uint32_t row;
} node;

/* topk.h's one rule on distances, i.e. with lower_first for every metric:
 * the walk negates inner products once, when it scores a row, so that one
 * heap and one comparison serve ip, cosine and l2 (and a row's distance is
 * compared many times per search). A wrapper keeps the heap code short. The
 * rule's NaN clause never fires here: dist_of and walk_dist turn a NaN
 * score into +infinity, which the rule orders after every number too. */
static inline int before(node a, node b)
{
    return annb_hit_better(a.dist, a.row, b.dist, b.row, 1);
}

/* Nodes in an array that grows (the walk's answer: best first). */
typedef struct nodes {
    node *v;
    size_t size, cap;
} nodes;

/* v with room for want elements of elem bytes (*cap: its room, updated),
 * or NULL (v untouched) when memory runs out. */
static void *grow(void *v, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap) return v;
    size_t c = *cap ? *cap : 64;
    while (c < want) c *= 2;
    void *p = realloc(v, c * elem);
    if (p) *cap = c;
    return p;
}

static int nodes_reserve(nodes *t, size_t want)
{
    node *v = grow(t->v, &t->cap, want, sizeof *v);
    if (v) t->v = v;
    return v ? 0 : -1;
}

/* A row the walk has scored that may answer: key orders it (cand_key),
 * done once expanded. */
typedef struct cand {
    uint64_t key;
    float dist;
    uint32_t done;
} cand;

/* before()'s order as one unsigned integer, so the insertion's binary
 * search compiles to conditional moves (its branches were mispredicted
 * half the time: a fifth of a search): the distance's bits made monotone
 * (negatives flipped, positives' sign set; -0 counted as +0, as the float
 * comparison does), then the row for ties. The walk never holds a NaN
 * (walk_dists makes it +infinity). */
static inline uint64_t cand_key(float dist, uint32_t row)
{
    float z = dist + 0.0f; /* -0 becomes +0 */
    uint32_t b;
    memcpy(&b, &z, sizeof b);
    b = b & 0x80000000u ? ~b : b | 0x80000000u;
    return (uint64_t)b << 32 | row;
}

static inline uint32_t key_row(uint64_t key)
{
    return (uint32_t)key;
}

/*
 * The walk's candidates, instead of HNSW's two binary heaps (candidates to
 * expand, and the ef best): the at most ef rows that may answer in one
 * array sorted best first (v), and the rows the filter refused that are
 * still better than the ef-th of them, which only lead the way, in a
 * min-heap of keys (refused; empty without a filter, and a filter that
 * refuses 90% of the rows would make the array ten times as long).
 * Expanding takes the better of the array's first row not done (cursor:
 * none before it) and the heap's root; inserting is a branch-free binary
 * search and a move of at most ef entries; the rows kept are already in
 * order at the end. Measured on 200k ALS-like rows (docs/benchmarks.md,
 * "Search speed"): the heaps' pops were 15% of a search.
 */
typedef struct cands {
    cand *v;
    size_t size, cap, cursor;
    uint64_t *refused;
    size_t nrefused, refused_cap;
} cands;

static int cands_reserve(cands *c, size_t want)
{
    cand *v = grow(c->v, &c->cap, want, sizeof *v);
    if (v) c->v = v;
    uint64_t *h = grow(c->refused, &c->refused_cap, c->nrefused + want, sizeof *h);
    if (h) c->refused = h;
    return v && h ? 0 : -1;
}

/* Can a row with this key still enter (the ef best that may answer, or
 * lead the way to them)? When ef rows may answer, only if before the worst. */
static inline int cands_wants(const cands *c, size_t ef, uint64_t key)
{
    return c->size < ef || key < c->v[c->size - 1].key;
}

/* Adds a row that may answer (cands_wants true, room reserved); the worst
 * leaves when ef + 1 are kept. */
static inline void cands_insert(cands *c, size_t ef, cand x)
{
    const cand *base = c->v; /* the first row x goes before: a branch-free lower bound */
    size_t len = c->size;
    while (len > 1) {
        size_t half = len / 2;
        base = base[half].key < x.key ? base + half : base;
        len -= half;
    }
    size_t lo = (size_t)(base - c->v) + (len && base->key < x.key);
    memmove(c->v + lo + 1, c->v + lo, (c->size - lo) * sizeof *c->v);
    c->v[lo] = x;
    if (++c->size > ef) c->size--;
    if (lo < c->cursor) c->cursor = lo;
}

/* Adds a refused row (cands_wants true, room reserved) to the min-heap. */
static inline void cands_refuse(cands *c, uint64_t key)
{
    size_t i = c->nrefused++;
    while (i && key < c->refused[(i - 1) / 2]) {
        c->refused[i] = c->refused[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    c->refused[i] = key;
}

static inline uint64_t cands_pop_refused(cands *c)
{
    uint64_t top = c->refused[0], x = c->refused[--c->nrefused];
    size_t i = 0, n = c->nrefused;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= n) break;
        if (k + 1 < n && c->refused[k + 1] < c->refused[k]) k++;
        if (x <= c->refused[k]) break;
        c->refused[i] = c->refused[k];
        i = k;
    }
    if (n) c->refused[i] = x;
    return top;
}

typedef struct scratch {
    /* Visited: one bit per row (n / 8 bytes: 125 KB at a million rows,
     * which stays in L2 where 16-bit epoch marks took 2 MB and missed),
     * and the rows set, cleared by the next walk: a walk touches a few
     * thousand rows, not n. */
    uint64_t *mark;
    uint32_t *trail;
    size_t ntrail, trail_cap;
    cands cand;     /* the walk's candidates */
    nodes top;      /* what it keeps, best first */
    node *list;     /* sorted candidates of a prune */
    size_t list_cap;
    uint32_t *kept;
    float *prep;    /* the query prepared for the codes (sq8.h), 2 x d */
    int8_t *wq;     /* or, for the integer score, its d int8 weights */
    uint32_t prep_d;
    uint64_t scored; /* rows the walks scored (codes or floats): annb_graph_work */
} scratch;

static void scratch_release_memory(scratch *s)
{
    free(s->mark);
    free(s->trail);
    free(s->cand.v);
    free(s->cand.refused);
    free(s->top.v);
    free(s->list);
    free(s->kept);
    free(s->prep);
    free(s->wq);
    memset(s, 0, sizeof *s);
}

static int trail_reserve(scratch *s, size_t want)
{
    uint32_t *v = grow(s->trail, &s->trail_cap, want, sizeof *v);
    if (v) s->trail = v;
    return v ? 0 : -1;
}

/* Clears the marks the last walk set. */
static void scratch_clear_marks(scratch *s)
{
    for (size_t i = 0; i < s->ntrail; i++) s->mark[s->trail[i] >> 6] = 0;
    s->ntrail = 0;
}

/* Marks row r visited (room in the trail reserved); 0 if it was already. */
static inline int scratch_visit(scratch *s, uint32_t r)
{
    uint64_t *word = &s->mark[r >> 6], bit = (uint64_t)1 << (r & 63);
    if (*word & bit) return 0;
    *word |= bit;
    s->trail[s->ntrail++] = r;
    return 1;
}

#define ANNB_GRAPH_POOL_SLOTS 64

struct annb_graph_pool {
    uint64_t n;
    struct {
        atomic_int busy;
        scratch s;
    } slot[ANNB_GRAPH_POOL_SLOTS];
};

annb_graph_pool *annb_graph_pool_new(uint64_t n)
{
    annb_graph_pool *p = calloc(1, sizeof *p);
    if (p) p->n = n;
    return p;
}

void annb_graph_pool_free(annb_graph_pool *p)
{
    if (!p) return;
    for (int i = 0; i < ANNB_GRAPH_POOL_SLOTS; i++) scratch_release_memory(&p->slot[i].s);
    free(p);
}

/* A free slot, or a fresh scratch (*temp set) when all are taken: no lock,
 * no waiting. The visited marks are allocated on a slot's first use. */
static scratch *pool_take(annb_graph_pool *p, int *slot)
{
    *slot = -1;
    for (int i = 0; i < ANNB_GRAPH_POOL_SLOTS; i++) {
        if (atomic_load_explicit(&p->slot[i].busy, memory_order_relaxed)) continue;
        if (atomic_exchange_explicit(&p->slot[i].busy, 1, memory_order_acquire)) continue;
        scratch *s = &p->slot[i].s;
        if (!s->mark && !(s->mark = calloc((p->n + 63) / 64 + 1, sizeof *s->mark))) {
            atomic_store_explicit(&p->slot[i].busy, 0, memory_order_release);
            return NULL;
        }
        *slot = i;
        return s;
    }
    scratch *s = calloc(1, sizeof *s);
    if (s && !(s->mark = calloc((p->n + 63) / 64 + 1, sizeof *s->mark))) {
        free(s);
        s = NULL;
    }
    *slot = -1;
    return s;
}

static void pool_give(annb_graph_pool *p, scratch *s, int slot)
{
    if (slot >= 0) {
        atomic_store_explicit(&p->slot[slot].busy, 0, memory_order_release);
    } else if (s) {
        scratch_release_memory(s);
        free(s);
    }
}

/* ---- the walk ---- */

uint32_t annb_graph_entries(uint64_t n)
{
    uint32_t e = (uint32_t)(sqrt((double)n) / 4);
    if (e < 1) e = 1;
    if (e > 256) e = 256;
    return (uint64_t)e > n ? (uint32_t)n : e;
}

typedef struct walk {
    const annb_graph *g;
    annb_score_block_fn fn;
    annb_sq8_score_fn code_fn; /* when g->codes: the walk scores codes */
    int l2;
    const annb_row_filter *filter; /* NULL: every row may answer */
    uint64_t limit; /* rows >= limit are not in the graph yet (build) */
    /* ip and cosine on codes: the integer score (sq8.h), the same on every
     * CPU; NULL (l2): code_fn's floats. */
    annb_sq8_dots_fn dots;
} walk;

static inline float dist_of(const walk *w, const float *x, const float *q)
{
    float s;
    w->fn(x, q, w->g->d, 1, &s);
    /* A NaN (a damaged bulk vector) ranks after every number, as topk.h's rule. */
    if (s != s) return INFINITY;
    return w->l2 ? s : -s;
}

/* Rows re-ranked exactly per result wanted, after a walk on codes. */
#define ANNB_GRAPH_RERANK 3

/* Vectors prefetched ahead of the one being scored. */
#define ANNB_GRAPH_PREFETCH 2

static inline void prefetch_bytes(const void *x, size_t size)
{
    const char *p = x;
    for (size_t off = 0; off < size; off += 64) __builtin_prefetch(p + off);
}

/* Where the walk reads row r: its code, or its float vector. */
static inline void prefetch_row(const walk *w, uint32_t r)
{
    const annb_graph *g = w->g;
    if (g->codes) prefetch_bytes(g->codes + (size_t)r * g->d, g->d);
    else prefetch_bytes(g->vecs + (size_t)r * g->d, (size_t)g->d * sizeof(float));
}

/* The walk's distance to row r: from its code when the graph has codes
 * (then only the order matters: the answer is re-ranked exactly). */
static inline float walk_dist(const walk *w, const scratch *s, uint32_t r, const float *q)
{
    const annb_graph *g = w->g;
    if (!g->codes) return dist_of(w, g->vecs + (size_t)r * g->d, q);
    float v = w->code_fn(g->codes + (size_t)r * g->d, s->prep, g->d);
    if (v != v) return INFINITY;
    return w->l2 ? v : -v;
}

/* The walk's distances to the m <= ANNB_GRAPH_MAX_DEGREE rows pos[],
 * scored in one loop (the integer kernel prefetches its own rows). */
static void walk_dists(const walk *w, const scratch *s, const uint32_t *pos, uint32_t m,
                       const float *q, float *dist)
{
    if (w->g->codes && w->dots) {
        int32_t v[ANNB_GRAPH_MAX_DEGREE];
        w->dots(w->g->codes, w->g->d, pos, m, s->wq, v);
        for (uint32_t j = 0; j < m; j++) dist[j] = -(float)v[j];
        return;
    }
    /* A few lines ahead, not all at once (too many misses in flight stall
     * the prefetches themselves). */
    for (uint32_t j = 0; j < m && j < ANNB_GRAPH_PREFETCH; j++) prefetch_row(w, pos[j]);
    for (uint32_t j = 0; j < m; j++) {
        if (j + ANNB_GRAPH_PREFETCH < m) prefetch_row(w, pos[j + ANNB_GRAPH_PREFETCH]);
        dist[j] = walk_dist(w, s, pos[j], q);
    }
}

/* The bundle row at graph position pos, or -1 when the (bulk) GROW entry
 * is out of range: such a position never answers. */
static inline int64_t row_at(const annb_graph *g, uint32_t pos)
{
    if (!g->row_of) return pos;
    uint32_t r = g->row_of[pos];
    return r < g->n ? (int64_t)r : -1;
}

static inline int walk_allows(const walk *w, size_t qi, uint32_t pos)
{
    if (!w->filter) return 1;
    int64_t row = row_at(w->g, pos);
    return row >= 0 && annb_row_filter_passes(w->filter, qi, row);
}

/* Scores the m fresh rows (entries, or a node's unvisited neighbours) in
 * one batch and offers each to the candidates: one that would enter the ef
 * best goes in if the filter allows it (asked only then), else waits with
 * the refused. 0, or -1 when out of memory. */
static inline int walk_offer(const walk *w, scratch *s, const float *q, size_t ef, size_t qi,
                      const uint32_t *fresh, uint32_t m)
{
    cands *c = &s->cand;
    float dist[ANNB_GRAPH_MAX_DEGREE];
    walk_dists(w, s, fresh, m, q, dist);
    s->scored += m;
    if (cands_reserve(c, c->size + m + 1)) return -1;
    for (uint32_t j = 0; j < m; j++) {
        cand x = {cand_key(dist[j], fresh[j]), dist[j], 0};
        if (!cands_wants(c, ef, x.key)) continue;
        if (walk_allows(w, qi, fresh[j])) cands_insert(c, ef, x);
        else cands_refuse(c, x.key);
    }
    return 0;
}

/*
 * Best-first search for q, as HNSW searches its bottom layer: candidates
 * are expanded best first while they can still improve the ef best rows
 * that may answer (s->top, a max-heap). Rows refused by the filter are
 * expanded like the others but never kept.
 */
static int walk_search(const walk *w, scratch *s, const float *q, size_t ef, size_t qi,
                       const uint32_t *entry, uint32_t nentry)
{
    const annb_graph *g = w->g;
    const uint32_t R = g->degree, d = g->d;
    scratch_clear_marks(s); /* whichever way the last walk ended */
    if (g->codes) {
        if (s->prep_d < d) {
            float *p = realloc(s->prep, 2 * (size_t)d * sizeof *p);
            if (!p) return ANNB_E_NOMEM;
            s->prep = p;
            int8_t *b = realloc(s->wq, d);
            if (!b) return ANNB_E_NOMEM;
            s->wq = b;
            s->prep_d = d;
        }
        if (w->dots) annb_sq8_query_i8(s->wq, &g->sq, q);
        else annb_sq8_prepare(s->prep, &g->sq, w->l2 ? ANNB_METRIC_L2 : ANNB_METRIC_IP, q);
    }
    cands *c = &s->cand;
    c->size = c->cursor = c->nrefused = 0;
    s->top.size = 0;
    if (cands_reserve(c, ef + ANNB_GRAPH_MAX_DEGREE + 1)) return ANNB_E_NOMEM;
    uint32_t fresh[ANNB_GRAPH_MAX_DEGREE];
    for (uint32_t i0 = 0; i0 < nentry; i0 += ANNB_GRAPH_MAX_DEGREE) {
        uint32_t m = 0;
        if (trail_reserve(s, s->ntrail + ANNB_GRAPH_MAX_DEGREE)) return ANNB_E_NOMEM;
        for (uint32_t i = i0; i < nentry && i < i0 + ANNB_GRAPH_MAX_DEGREE; i++) {
            uint32_t r = entry[i];
            if (r < w->limit && scratch_visit(s, r)) fresh[m++] = r;
        }
        if (walk_offer(w, s, q, ef, qi, fresh, m)) return ANNB_E_NOMEM;
    }
    /* Best first while a row is left that can still enter the ef best (the
     * heaps' stopping rule): refused rows past the ef-th are dropped. */
    for (;;) {
        if (c->nrefused && !cands_wants(c, ef, c->refused[0])) c->nrefused = 0;
        uint32_t row;
        if (c->nrefused && (c->cursor == c->size || c->refused[0] < c->v[c->cursor].key)) {
            row = key_row(cands_pop_refused(c));
        } else if (c->cursor < c->size) {
            row = key_row(c->v[c->cursor].key);
            c->v[c->cursor].done = 1;
            while (c->cursor < c->size && c->v[c->cursor].done) c->cursor++;
        } else {
            break;
        }
        /* The next candidate's neighbours (likely), while these are scored. */
        if (c->cursor < c->size) __builtin_prefetch(g->adj + (size_t)key_row(c->v[c->cursor].key) * R);
        const uint32_t *nb = g->adj + (size_t)row * R;
        uint32_t m = 0;
        if (trail_reserve(s, s->ntrail + R)) return ANNB_E_NOMEM;
        for (uint32_t j = 0; j < R; j++) {
            uint32_t r = nb[j];
            /* Every neighbour number is bounded here, where it is used: a
             * damaged adjacency ends the row, it never reads past VECS. */
            if (r >= w->limit) break;
            if (scratch_visit(s, r)) fresh[m++] = r;
        }
        if (m && walk_offer(w, s, q, ef, qi, fresh, m)) return ANNB_E_NOMEM;
    }
    /* The rows that may answer, best first. */
    if (nodes_reserve(&s->top, c->size + 1)) return ANNB_E_NOMEM;
    for (size_t i = 0; i < c->size; i++)
        s->top.v[s->top.size++] = (node){c->v[i].dist, key_row(c->v[i].key)};
    return ANNB_OK;
}

static int cmp_node(const void *a, const void *b)
{
    node x = *(const node *)a, y = *(const node *)b;
    return before(x, y) ? -1 : before(y, x);
}

/* Gives the kept positions their exact distances (after a walk on codes)
 * and turns them into rows (ANNB_GRAPH_NONE, distance infinite, for a
 * position whose GROW entry is out of range). */
static void rerank_exact(const walk *w, scratch *s, const float *q)
{
    const annb_graph *g = w->g;
    size_t m = s->top.size;
    if (!g->codes) return; /* walked on the exact vectors, by row */
    for (size_t r = 0; r < m; r++) {
        if (r + ANNB_GRAPH_PREFETCH < m) {
            int64_t ahead = row_at(g, s->top.v[r + ANNB_GRAPH_PREFETCH].row);
            if (ahead >= 0)
                prefetch_bytes(g->vecs + (size_t)ahead * g->d, (size_t)g->d * sizeof(float));
        }
        int64_t row = row_at(g, s->top.v[r].row);
        s->top.v[r].row = row >= 0 ? (uint32_t)row : ANNB_GRAPH_NONE;
        s->top.v[r].dist = row >= 0 ? dist_of(w, g->vecs + (size_t)row * g->d, q) : INFINITY;
    }
}

/* ---- search ---- */

typedef struct search_job {
    const annb_graph *g;
    annb_graph_pool *pool;
    walk w;
    const float *q;
    size_t nq, k, ef;
    float *scores;
    int64_t *rows;
    atomic_size_t next; /* the next query to take: a thread takes one as it finishes one */
    atomic_int rc;
    /* The work done (annb_graph_work): each query's counts depend on the
     * query alone, so the sums are the same on any number of threads. */
    atomic_uint_least64_t scored, reranked;
} search_job;

static void search_run(void *ctx, int t)
{
    (void)t;
    search_job *j = ctx;
    int slot;
    scratch *s = pool_take(j->pool, &slot);
    if (!s) {
        atomic_store(&j->rc, ANNB_E_NOMEM);
        return;
    }
    const annb_graph *g = j->g;
    uint64_t scored0 = s->scored, reranked = 0;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->nq) break;
        int rc = walk_search(&j->w, s, j->q + i * g->d, j->ef, i, g->entry, g->nentry);
        if (rc) {
            atomic_store(&j->rc, rc);
            break;
        }
        /* The kept rows, best first. Found on codes, the best
         * ANNB_GRAPH_RERANK x k of them by code get their exact scores from
         * VECS first (the 8-bit order is good enough to drop the others:
         * measured on ALS-like 200k x 64, recall@10 the same as re-ranking
         * all ef, and each row re-ranked is a random 4d-byte fetch). */
        size_t m = s->top.size; /* best first by the walk's distance */
        if (g->codes && m > ANNB_GRAPH_RERANK * j->k) s->top.size = m = ANNB_GRAPH_RERANK * j->k;
        rerank_exact(&j->w, s, j->q + i * g->d);
        if (g->codes) reranked += m;
        qsort(s->top.v, m, sizeof *s->top.v, cmp_node);
        for (size_t r = 0; r < j->k; r++) {
            float sc = NAN;
            int64_t row = -1;
            if (r < m && s->top.v[r].row != ANNB_GRAPH_NONE) {
                row = s->top.v[r].row;
                sc = j->w.l2 ? s->top.v[r].dist : -s->top.v[r].dist;
                if (s->top.v[r].dist == INFINITY) sc = NAN;
            }
            j->scores[i * j->k + r] = sc;
            j->rows[i * j->k + r] = row;
        }
    }
    atomic_fetch_add(&j->scored, s->scored - scored0);
    atomic_fetch_add(&j->reranked, reranked);
    pool_give(j->pool, s, slot);
}

/* How many rows the `allowed` bitmap lets through (n when there is none). */
static uint64_t allowed_rows(const annb_row_filter *f, uint64_t n)
{
    if (!f || !f->allowed) return n;
    uint64_t c = 0, full = n / 8;
    for (uint64_t i = 0; i < full; i++) c += (uint64_t)__builtin_popcount(f->allowed[i]);
    for (uint64_t r = full * 8; r < n; r++) c += f->allowed[r / 8] >> (r % 8) & 1;
    return c;
}

/* A selective filter: score its allowed rows only, exactly, as exact.c would. */
static void scan_allowed(const annb_graph *g, annb_metric m, const float *q, size_t nq, size_t k,
                         const annb_row_filter *f, float *scores, int64_t *rows)
{
    annb_score_block_fn fn = annb_exact_score_fn(m);
    for (size_t i = 0; i < nq; i++) {
        annb_topk h;
        annb_topk_init(&h, scores + i * k, rows + i * k, k, m);
        for (uint64_t byte = 0; byte < (g->n + 7) / 8; byte++) {
            unsigned bits = f->allowed[byte];
            while (bits) {
                uint64_t r = byte * 8 + (uint64_t)__builtin_ctz(bits);
                bits &= bits - 1;
                if (r >= g->n) break;
                annb_exact_scan(fn, g->vecs + r * g->d, 1, g->d, q + i * g->d, NULL, (int64_t)r, f,
                                i, &h);
            }
        }
        annb_topk_finish(&h);
    }
}

int annb_graph_search(const annb_graph *g, annb_graph_pool *pool, annb_metric m, const float *q,
                      size_t nq, size_t k, size_t ef, const annb_row_filter *filter, int threads,
                      float *scores, int64_t *rows)
{
    return annb_graph_search_work(g, pool, m, q, nq, k, ef, filter, threads, scores, rows, NULL);
}

int annb_graph_search_work(const annb_graph *g, annb_graph_pool *pool, annb_metric m,
                           const float *q, size_t nq, size_t k, size_t ef,
                           const annb_row_filter *filter, int threads, float *scores,
                           int64_t *rows, annb_graph_work *work)
{
    if (!nq || !k) return ANNB_OK;
    if (filter && filter->allowed &&
        (double)allowed_rows(filter, g->n) < ANNB_GRAPH_EXACT_SHARE * (double)g->n) {
        scan_allowed(g, m, q, nq, k, filter, scores, rows);
        if (work) work->scanned += nq * allowed_rows(filter, g->n);
        return ANNB_OK;
    }
    /* A filter that refuses nothing (search.c always passes one) is none:
     * checking it costs each row the walk keeps a random read of GROW. */
    if (filter && !filter->allowed && !filter->nskip && !filter->extra) filter = NULL;
    if (ef < k) ef = k;
    if (ef > g->n) ef = (size_t)g->n;
    if (threads < 1) threads = 1;
    if ((size_t)threads > nq) threads = (int)nq;
    search_job j = {g, pool,
                    {g, annb_exact_score_fn(m), annb_sq8_score_fn_for(m), m == ANNB_METRIC_L2,
                     filter, g->n, m == ANNB_METRIC_L2 ? NULL : annb_sq8_dots_fn_for()},
                    q, nq, k, ef, scores, rows, 0, ANNB_OK, 0, 0};
    annb_run_threads(threads, search_run, &j);
    if (work) {
        uint64_t scored = atomic_load(&j.scored);
        if (g->codes) work->codes += scored;
        else work->floats += scored;
        work->reranked += atomic_load(&j.reranked);
    }
    return atomic_load(&j.rc);
}

int annb_graph_check(const annb_graph *g, char *why, size_t why_size)
{
    const char *bad = NULL;
    if (!g->n || g->n > UINT32_MAX) bad = "row count out of range";
    else if (!g->d) bad = "dimension 0";
    else if (!g->degree || g->degree > ANNB_GRAPH_MAX_DEGREE) bad = "degree not in 1..256";
    else if (!g->nentry || g->nentry > ANNB_GRAPH_MAX_ENTRIES || g->nentry > g->n)
        bad = "entry count not in 1..min(4096, n)";
    for (uint32_t i = 0; !bad && i < g->nentry; i++)
        if (g->entry[i] >= g->n) {
            if (why_size) snprintf(why, why_size, "entry %u: row %u past the %llu rows", i,
                                   g->entry[i], (unsigned long long)g->n);
            return ANNB_E_CORRUPT;
        }
    if (bad && why_size) snprintf(why, why_size, "%s", bad);
    return bad ? ANNB_E_CORRUPT : ANNB_OK;
}

/* ---- build ---- */

/* The build's clocks (annb_graph_params.times): read only when asked for. */
static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct step_clock {
    double wall, cpu;
} step_clock;

static step_clock step_begin(const annb_graph_times *t)
{
    step_clock c = {0, 0};
    if (t) c = (step_clock){clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_PROCESS_CPUTIME_ID)};
    return c;
}

/* Adds the step's times; span: its critical path (see annb_graph_times). */
static void step_add(annb_graph_times *t, int step, step_clock c, double span, double cpu)
{
    t->wall[step] += clock_s(CLOCK_MONOTONIC) - c.wall;
    t->cpu[step] += cpu;
    t->span[step] += span;
}

/* Ends a step that ran once on nt threads (nt = 0: serially) whose CPU
 * times are thread_cpu[0..nt): its span is its busiest thread's CPU time
 * plus what the process spent outside those threads' work (the serial
 * part: the caller's own work, starting the threads). */
static void step_end(annb_graph_times *t, int step, step_clock c, const double *thread_cpu,
                     int nt)
{
    if (!t) return;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c.cpu, sum = 0, max = 0;
    for (int i = 0; i < nt; i++) {
        sum += thread_cpu[i];
        max = thread_cpu[i] > max ? thread_cpu[i] : max;
    }
    step_add(t, step, c, cpu - sum + max, cpu);
}

/* The busiest of the first `threads` per-thread CPU times. */
static double busiest(const double *thread_cpu, int threads)
{
    double m = 0;
    for (int t = 0; t < threads; t++)
        if (thread_cpu[t] > m) m = thread_cpu[t];
    return m;
}

/* HNSW's neighbour heuristic over cand (sorted, nearest to p first): keep a
 * candidate unless it is nearer to one already kept than to p, up to R.
 * Writes the kept rows to out and returns how many. */
static uint32_t prune(const walk *w, uint32_t p, const node *cand, size_t nc, uint32_t R,
                      uint32_t *out)
{
    const annb_graph *g = w->g;
    uint32_t kept = 0;
    for (size_t i = 0; i < nc && kept < R; i++) {
        uint32_t c = cand[i].row;
        if (c == p) continue;
        int good = 1;
        const float *xc = g->vecs + (size_t)c * g->d;
        for (uint32_t j = 0; j < kept && good; j++)
            if (dist_of(w, g->vecs + (size_t)out[j] * g->d, xc) < cand[i].dist) good = 0;
        if (good) out[kept++] = c;
    }
    return kept;
}

static int scratch_lists(scratch *s, size_t n, uint32_t R)
{
    if (n > s->list_cap) {
        node *l = realloc(s->list, n * sizeof *l);
        if (!l) return -1;
        s->list = l;
        s->list_cap = n;
    }
    if (!s->kept && !(s->kept = malloc(R * sizeof *s->kept))) return -1;
    return 0;
}

typedef struct build_job {
    annb_graph *g;
    uint32_t *adj; /* g->adj, writable */
    annb_graph_pool *pool;
    walk w;
    uint32_t ef;
    uint64_t lo, hi; /* the batch */
    /* reverse links of the batch: (to, from), sorted; groups by `to` */
    uint64_t *links;
    size_t nlinks;
    size_t *group; /* start of each group in links, ngroups + 1 */
    size_t ngroups;
    atomic_size_t next; /* the next row (phase 1) or group (phase 2) to take */
    atomic_int rc;
    double *thread_cpu; /* with params.times: each thread's CPU time in a run */
} build_job;

/* Groups of reverse links a thread takes at once: most only append. */
#define ANNB_GRAPH_GROUPS_TAKEN 16

/* Phase 1: each row of the batch picks its neighbours in the graph of rows
 * below the batch; it writes only its own row, which nothing reaches yet.
 * Threads take the next row as they finish one (their result does not
 * depend on which thread takes which: a slower or descheduled thread just
 * takes fewer). */
static void build_link_rows(void *ctx, int t)
{
    build_job *j = ctx;
    double c0 = j->thread_cpu ? clock_s(CLOCK_THREAD_CPUTIME_ID) : 0;
    int slot;
    scratch *s = pool_take(j->pool, &slot);
    if (!s || scratch_lists(s, j->ef, j->g->degree)) {
        atomic_store(&j->rc, ANNB_E_NOMEM);
        pool_give(j->pool, s, slot);
        return;
    }
    const annb_graph *g = j->g;
    uint32_t ne = 0;
    while (ne < g->nentry && g->entry[ne] < j->lo) ne++; /* entries are rows 0..nentry-1 */
    for (;;) {
        uint64_t u = j->lo + atomic_fetch_add(&j->next, 1);
        if (u >= j->hi) break;
        if (!ne) continue; /* the first row: nothing to link to */
        const float *x = g->vecs + u * g->d;
        if (walk_search(&j->w, s, x, j->ef, 0, g->entry, ne)) {
            atomic_store(&j->rc, ANNB_E_NOMEM);
            break;
        }
        size_t m = s->top.size;
        rerank_exact(&j->w, s, x);
        memcpy(s->list, s->top.v, m * sizeof *s->list);
        qsort(s->list, m, sizeof *s->list, cmp_node);
        uint32_t kept = prune(&j->w, (uint32_t)u, s->list, m, g->degree, s->kept);
        memcpy(j->adj + u * g->degree, s->kept, kept * sizeof *s->kept);
    }
    pool_give(j->pool, s, slot);
    if (j->thread_cpu) j->thread_cpu[t] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
}

/* Phase 2: row v gains the batch rows that chose it; when they do not fit,
 * its old and new neighbours are pruned together. Groups touch distinct
 * rows, and read only vectors and their own row. */
static void build_reverse(void *ctx, int t)
{
    build_job *j = ctx;
    double c0 = j->thread_cpu ? clock_s(CLOCK_THREAD_CPUTIME_ID) : 0;
    int slot;
    scratch *s = pool_take(j->pool, &slot);
    if (!s) {
        atomic_store(&j->rc, ANNB_E_NOMEM);
        return;
    }
    const annb_graph *g = j->g;
    const uint32_t R = g->degree;
    for (size_t gi = 0, end = 0;; gi++) {
        if (gi == end) {
            gi = atomic_fetch_add(&j->next, ANNB_GRAPH_GROUPS_TAKEN);
            if (gi >= j->ngroups) break;
            end = gi + ANNB_GRAPH_GROUPS_TAKEN < j->ngroups ? gi + ANNB_GRAPH_GROUPS_TAKEN
                                                           : j->ngroups;
        }
        size_t a = j->group[gi], b = j->group[gi + 1];
        uint32_t v = (uint32_t)(j->links[a] >> 32);
        uint32_t *row = j->adj + (size_t)v * R;
        uint32_t have = 0;
        while (have < R && row[have] != ANNB_GRAPH_NONE) have++;
        if (have + (b - a) <= R) {
            for (size_t i = a; i < b; i++) row[have++] = (uint32_t)j->links[i];
            continue;
        }
        if (scratch_lists(s, have + (b - a), R)) {
            atomic_store(&j->rc, ANNB_E_NOMEM);
            break;
        }
        const float *xv = g->vecs + (size_t)v * g->d;
        size_t m = 0;
        for (uint32_t i = 0; i < have; i++)
            s->list[m++] = (node){dist_of(&j->w, g->vecs + (size_t)row[i] * g->d, xv), row[i]};
        for (size_t i = a; i < b; i++) {
            uint32_t u = (uint32_t)j->links[i];
            s->list[m++] = (node){dist_of(&j->w, g->vecs + (size_t)u * g->d, xv), u};
        }
        qsort(s->list, m, sizeof *s->list, cmp_node);
        uint32_t kept = prune(&j->w, v, s->list, m, R, s->kept);
        memcpy(row, s->kept, kept * sizeof *row);
        for (uint32_t i = kept; i < R; i++) row[i] = ANNB_GRAPH_NONE;
    }
    pool_give(j->pool, s, slot);
    if (j->thread_cpu) j->thread_cpu[t] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Marks in `seen` every row reachable from the rows queue[0..len), and
 * appends them to queue; returns the new length. */
static uint64_t reach_from(const annb_graph *g, uint8_t *seen, uint32_t *queue, uint64_t len,
                           uint64_t head)
{
    for (; head < len; head++) {
        const uint32_t *nb = g->adj + (size_t)queue[head] * g->degree;
        for (uint32_t j = 0; j < g->degree && nb[j] != ANNB_GRAPH_NONE; j++)
            if (!seen[nb[j]]) {
                seen[nb[j]] = 1;
                queue[len++] = nb[j];
            }
    }
    return len;
}

/* The searches of one chunk of unreached rows, shared among threads: of
 * row rows[i]'s candidates, nearest first, those with a free slot go to
 * cand[i * ef ..], ncand[i] of them (rows only fill up: the others stay
 * full), and the nearest to nearest[i] (ANNB_GRAPH_NONE: none found). They
 * read the graph only. */
typedef struct connect_job {
    const annb_graph *g;
    annb_graph_pool *pool;
    walk w;
    uint32_t ef;
    const uint32_t *rows;
    size_t nrows;
    uint32_t *cand, *ncand, *nearest;
    atomic_size_t next;
    atomic_int rc;
    double *thread_cpu;
} connect_job;

static void connect_search(void *ctx, int t)
{
    connect_job *j = ctx;
    double c0 = j->thread_cpu ? clock_s(CLOCK_THREAD_CPUTIME_ID) : 0;
    const annb_graph *g = j->g;
    int slot;
    scratch *s = pool_take(j->pool, &slot);
    if (!s) {
        atomic_store(&j->rc, ANNB_E_NOMEM);
        return;
    }
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->nrows) break;
        const float *x = g->vecs + (size_t)j->rows[i] * g->d;
        if (walk_search(&j->w, s, x, j->ef, 0, g->entry, g->nentry)) {
            atomic_store(&j->rc, ANNB_E_NOMEM);
            break;
        }
        size_t m = s->top.size;
        rerank_exact(&j->w, s, x);
        qsort(s->top.v, m, sizeof *s->top.v, cmp_node);
        uint32_t *c = j->cand + i * j->ef, kept = 0, R = g->degree;
        for (size_t r = 0; r < m; r++)
            if (g->adj[(size_t)s->top.v[r].row * R + R - 1] == ANNB_GRAPH_NONE)
                c[kept++] = s->top.v[r].row;
        j->ncand[i] = kept;
        j->nearest[i] = m ? s->top.v[0].row : ANNB_GRAPH_NONE;
    }
    pool_give(j->pool, s, slot);
    if (j->thread_cpu) j->thread_cpu[t] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
}

/*
 * Pruning can leave a row that no other row links to (with inner product,
 * rows of small norm are rarely anyone's nearest: 59% of 200k ALS-like
 * rows, 79% of 1M): a search could never return it, however large its
 * ef. Each row not reachable from the entries, in row order, gets a link
 * from the nearest reachable row that has a free slot, found by a search
 * of the graph, else from the first reached row with one; then everything
 * it reaches counts as reached. When no reached row has a free slot (small
 * degrees), the nearest row p's last link, to v, goes to u instead and u
 * links to v (in a free slot, or in place of its own last link): v stays
 * reachable through u, and whatever u's replaced link led to was not
 * reached before u, so it is a later row, linked in its turn. Every row
 * below u is reached when u's turn comes, so one pass reaches all.
 *
 * The searches are most of the work: they run on all threads, a chunk of
 * ANNB_GRAPH_CONNECT_CHUNK unreached rows at a time, each on the graph as it
 * stood before the chunk (a row it finds was reached then, and stays so);
 * then one thread links the chunk's rows in row order, looking at the
 * graph as it is. Nothing depends on thread timing: deterministic.
 * *span: the busiest thread's CPU time of each chunk's searches plus the
 * linking's, summed (with thread_cpu; else untouched).
 */
static int connect_unreached(annb_graph *g, uint32_t *adj, const walk *w0, annb_graph_pool *pool,
                             uint32_t ef, size_t chunk, int threads, double *thread_cpu,
                             double *span, uint64_t *unreached)
{
    const uint32_t R = g->degree;
    uint8_t *seen = calloc(g->n, 1);
    uint32_t *queue = malloc(g->n * sizeof *queue), *rows = malloc(chunk * sizeof *rows);
    uint32_t *cand = malloc(chunk * ef * sizeof *cand), *ncand = malloc(chunk * sizeof *ncand);
    uint32_t *nearest = malloc(chunk * sizeof *nearest);
    int rc = seen && queue && rows && cand && ncand && nearest ? ANNB_OK : ANNB_E_NOMEM;
    connect_job j = {g, pool, *w0, ef, rows, 0, cand, ncand, nearest, 0, ANNB_OK, thread_cpu};
    j.w.limit = g->n;
    uint64_t len = 0;
    for (uint32_t i = 0; rc == ANNB_OK && i < g->nentry; i++)
        if (!seen[g->entry[i]]) {
            seen[g->entry[i]] = 1;
            queue[len++] = g->entry[i];
        }
    if (rc == ANNB_OK) len = reach_from(g, seen, queue, len, 0);
    uint64_t free_at = 0; /* reached rows before queue[free_at] are full (rows only fill up) */
    for (uint64_t from = 0; rc == ANNB_OK && from < g->n;) {
        j.nrows = 0;
        for (; from < g->n && j.nrows < chunk; from++)
            if (!seen[from]) rows[j.nrows++] = (uint32_t)from;
        if (!j.nrows) break;
        int t1 = threads < (int)j.nrows ? threads : (int)j.nrows;
        if (thread_cpu) memset(thread_cpu, 0, (size_t)threads * sizeof *thread_cpu);
        atomic_store(&j.next, 0);
        annb_run_threads(t1, connect_search, &j);
        if ((rc = atomic_load(&j.rc))) break;
        double c0 = thread_cpu ? clock_s(CLOCK_THREAD_CPUTIME_ID) : 0;
        for (size_t i = 0; i < j.nrows; i++) {
            uint32_t u = rows[i];
            if (seen[u]) continue; /* reached through a row linked before it */
            (*unreached)++;
            const uint32_t *c = cand + i * ef;
            uint32_t m = ncand[i], p = ANNB_GRAPH_NONE, at = R - 1;
            for (uint32_t k = 0; k < m && p == ANNB_GRAPH_NONE; k++) {
                const uint32_t *nb = adj + (size_t)c[k] * R;
                if (nb[R - 1] == ANNB_GRAPH_NONE) {
                    p = c[k];
                    for (at = 0; nb[at] != ANNB_GRAPH_NONE; at++) continue;
                }
            }
            while (p == ANNB_GRAPH_NONE && free_at < len) {
                const uint32_t *nb = adj + (size_t)queue[free_at] * R;
                if (nb[R - 1] != ANNB_GRAPH_NONE) {
                    free_at++;
                    continue;
                }
                p = queue[free_at];
                for (at = 0; nb[at] != ANNB_GRAPH_NONE; at++) continue;
            }
            if (p == ANNB_GRAPH_NONE) { /* every reached row is full: p -> u -> v */
                p = nearest[i] != ANNB_GRAPH_NONE ? nearest[i] : g->entry[0];
                at = R - 1;
                uint32_t v = adj[(size_t)p * R + at], *own = adj + (size_t)u * R, k = 0;
                while (k < R - 1 && own[k] != ANNB_GRAPH_NONE && own[k] != v) k++;
                own[k] = v;
            }
            adj[(size_t)p * R + at] = u;
            seen[u] = 1;
            queue[len] = u;
            len = reach_from(g, seen, queue, len + 1, len);
        }
        if (thread_cpu)
            *span += busiest(thread_cpu, t1) + clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    free(seen);
    free(queue);
    free(rows);
    free(cand);
    free(ncand);
    free(nearest);
    return rc;
}

/* A loop over rows 0..n-1 whose iterations are independent, split into
 * one range per thread (never fewer than ANNB_GRAPH_RANGE_MIN rows a range:
 * starting a thread costs about as much as copying that many rows). */
#define ANNB_GRAPH_RANGE_MIN 16384

typedef struct range_job {
    void (*fn)(void *ctx, uint64_t lo, uint64_t hi);
    void *ctx;
    uint64_t n;
    int threads;
    double *thread_cpu;
} range_job;

static void range_run(void *ctx, int t)
{
    const range_job *r = ctx;
    double c0 = r->thread_cpu ? clock_s(CLOCK_THREAD_CPUTIME_ID) : 0;
    r->fn(r->ctx, r->n * (uint64_t)t / (uint64_t)r->threads,
          r->n * (uint64_t)(t + 1) / (uint64_t)r->threads);
    if (r->thread_cpu) r->thread_cpu[t] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
}

/* Returns the threads it ran on, 0 when it ran on the caller alone;
 * thread_cpu (NULL: not timed) gets each one's CPU time. */
static int run_ranges(int threads, uint64_t n, void (*fn)(void *ctx, uint64_t lo, uint64_t hi),
                      void *ctx, double *thread_cpu)
{
    if ((uint64_t)threads > n / ANNB_GRAPH_RANGE_MIN) threads = (int)(n / ANNB_GRAPH_RANGE_MIN);
    if (threads <= 1) {
        fn(ctx, 0, n);
        return 0;
    }
    range_job r = {fn, ctx, n, threads, thread_cpu};
    annb_run_threads(threads, range_run, &r);
    return threads;
}

/* 8-bit codes of rows lo..hi-1 (annb_graph_build's "codes" step). */
typedef struct encode_job {
    uint8_t *codes;
    const float *params, *x;
    uint32_t d;
} encode_job;

static void encode_rows(void *ctx, uint64_t lo, uint64_t hi)
{
    const encode_job *e = ctx;
    annb_sq8_encode(e->codes + lo * e->d, e->params, e->x + lo * e->d, hi - lo, e->d);
}

/* reorder's copy: positions lo..hi-1 get their row's links (as positions)
 * and code. */
typedef struct relabel_job {
    const annb_graph_built *b;
    const uint32_t *row_of, *pos_of;
    uint32_t *adj;
    uint8_t *codes;
} relabel_job;

static void relabel_rows(void *ctx, uint64_t lo, uint64_t hi)
{
    const relabel_job *r = ctx;
    const uint32_t R = r->b->g.degree, d = r->b->g.d;
    for (uint64_t p = lo; p < hi; p++) {
        const uint32_t *from = r->b->adj + (size_t)r->row_of[p] * R;
        for (uint32_t j = 0; j < R; j++)
            r->adj[p * R + j] = from[j] == ANNB_GRAPH_NONE ? ANNB_GRAPH_NONE : r->pos_of[from[j]];
        memcpy(r->codes + p * d, r->b->codes + (size_t)r->row_of[p] * d, d);
    }
}

/*
 * Lays the graph out in breadth-first order from the entry rows: a row's
 * neighbours get nearby positions, so a walk's code and adjacency reads
 * fall on fewer pages and cache lines. Positions replace rows in adj,
 * codes and entry (the entries keep positions 0..nentry-1); row_of maps a
 * position back to its row, for filters, the exact re-rank and answers.
 */
static int reorder(annb_graph_built *b, int threads, double *thread_cpu, int *nt)
{
    annb_graph *g = &b->g;
    uint64_t n = g->n;
    uint32_t R = g->degree, d = g->d;
    uint32_t *row_of = malloc(n * sizeof *row_of), *pos_of = malloc(n * sizeof *pos_of);
    uint32_t *adj = malloc(n * R * sizeof *adj);
    uint8_t *codes = malloc(n * d), *seen = calloc(n, 1);
    int rc = row_of && pos_of && adj && codes && seen ? ANNB_OK : ANNB_E_NOMEM;
    if (rc == ANNB_OK) {
        uint64_t len = 0;
        for (uint32_t i = 0; i < g->nentry; i++)
            if (!seen[g->entry[i]]) {
                seen[g->entry[i]] = 1;
                row_of[len++] = g->entry[i];
            }
        len = reach_from(g, seen, row_of, len, 0);
        for (uint64_t r = 0; r < n; r++) /* none after connect_unreached, but never lose one */
            if (!seen[r]) row_of[len++] = (uint32_t)r;
        for (uint64_t p = 0; p < n; p++) pos_of[row_of[p]] = (uint32_t)p;
        relabel_job rj = {b, row_of, pos_of, adj, codes};
        *nt = run_ranges(threads, n, relabel_rows, &rj, thread_cpu);
        for (uint32_t i = 0; i < g->nentry; i++) b->entry[i] = pos_of[b->entry[i]];
        free(b->adj);
        free(b->codes);
        b->adj = adj;
        b->codes = codes;
        b->row_of = row_of;
        g->adj = adj;
        g->codes = codes;
        g->row_of = row_of;
        adj = NULL;
        codes = NULL;
        row_of = NULL;
    }
    free(row_of);
    free(pos_of);
    free(adj);
    free(codes);
    free(seen);
    return rc;
}

#define ANNB_GRAPH_BATCH_DIV 64
#define ANNB_GRAPH_BATCH_MAX 4096

void annb_graph_release_built(annb_graph_built *b)
{
    if (!b) return;
    free(b->adj);
    free(b->entry);
    free(b->codes);
    free(b->sq_params);
    free(b->row_of);
    memset(b, 0, sizeof *b);
}

int annb_graph_build(annb_graph_built *out, const float *x, uint64_t n, uint32_t d, annb_metric m,
                     const annb_graph_params *p, int threads, annb_error *err)
{
    memset(out, 0, sizeof *out);
    uint32_t R = p->degree, ef = p->build_ef;
    if (!n || !d) return annb_error_set(err, ANNB_E_INVALID, "graph: no rows or dimension 0");
    if (n >= UINT32_MAX)
        return annb_error_set(err, ANNB_E_LIMIT, "graph: %llu rows, at most 2^32 - 2",
                              (unsigned long long)n);
    if (!R || R > ANNB_GRAPH_MAX_DEGREE || ef < 1 || ef > 65536)
        return annb_error_set(err, ANNB_E_INVALID, "graph: degree %u not in 1..%u or build ef %u "
                              "not in 1..65536", R, ANNB_GRAPH_MAX_DEGREE, ef);
    uint32_t ne = p->nentry ? p->nentry : annb_graph_entries(n);
    if (ne > n) ne = (uint32_t)n;
    if (ne > ANNB_GRAPH_MAX_ENTRIES) ne = ANNB_GRAPH_MAX_ENTRIES;
    if (threads < 1) threads = 1;
    annb_graph_times *times = p->times;
    if (times) memset(times, 0, sizeof *times);
    out->adj = malloc(n * R * sizeof *out->adj);
    out->entry = malloc(ne * sizeof *out->entry);
    size_t max_links = (size_t)ANNB_GRAPH_BATCH_MAX * R;
    uint64_t *links = malloc(max_links * sizeof *links);
    size_t *group = malloc((max_links + 1) * sizeof *group);
    double *thread_cpu = times ? calloc((size_t)threads, sizeof *thread_cpu) : NULL;
    annb_graph_pool *pool = annb_graph_pool_new(n);
    int rc = ANNB_OK;
    if (!out->adj || !out->entry || !links || !group || !pool || (times && !thread_cpu))
        rc = ANNB_E_NOMEM;
    if (rc == ANNB_OK) {
        memset(out->adj, 0xff, n * R * sizeof *out->adj); /* ANNB_GRAPH_NONE everywhere */
        for (uint32_t i = 0; i < ne; i++) out->entry[i] = i;
        out->g = (annb_graph){n, d, R, ne, out->adj, out->entry, x, NULL, {0}, NULL};
    }
    /* With codes, the build walks on them too (a quarter of the bytes to
     * fetch), and re-ranks what it finds exactly before choosing links. */
    step_clock clk = step_begin(times);
    int nt = 0; /* threads of the step's parallel run, for its span */
    if (rc == ANNB_OK && p->sq8) {
        out->codes = malloc(n * d);
        out->sq_params = malloc(2 * (size_t)d * sizeof *out->sq_params);
        if (!out->codes || !out->sq_params) {
            rc = ANNB_E_NOMEM;
        } else {
            annb_sq8_train(out->sq_params, x, n, d);
            encode_job e = {out->codes, out->sq_params, x, d};
            nt = run_ranges(threads, n, encode_rows, &e, thread_cpu);
        }
        out->g.codes = out->codes;
        out->g.sq = (annb_sq8){d, out->sq_params, out->sq_params + d};
    }
    step_end(times, ANNB_GRAPH_STEP_CODES, clk, thread_cpu, nt);
    build_job j = {&out->g, out->adj, pool,
                   {&out->g, annb_exact_score_fn(m), annb_sq8_score_fn_for(m), m == ANNB_METRIC_L2,
                    NULL, 0, m == ANNB_METRIC_L2 ? NULL : annb_sq8_dots_fn_for()},
                   ef, 0, 0, links, 0, group, 0, 0, ANNB_OK, thread_cpu};
    annb_progress_to to = {p->progress, p->progress_ctx};
    annb_phase linked;
    if (rc == ANNB_OK) annb_phase_begin(&linked, &to, "graph", "rows", n);
    for (uint64_t lo = 0; rc == ANNB_OK && lo < n;) {
        uint64_t b = lo / ANNB_GRAPH_BATCH_DIV;
        if (b < 1) b = 1;
        if (b > ANNB_GRAPH_BATCH_MAX) b = ANNB_GRAPH_BATCH_MAX;
        if (b > n - lo) b = n - lo;
        j.lo = lo;
        j.hi = lo + b;
        j.w.limit = lo;
        int t1 = threads < (int)b ? threads : (int)b;
        if (thread_cpu) memset(thread_cpu, 0, (size_t)threads * sizeof *thread_cpu);
        clk = step_begin(times);
        atomic_store(&j.next, 0);
        annb_run_threads(t1, build_link_rows, &j);
        step_end(times, ANNB_GRAPH_STEP_LINK, clk, thread_cpu, t1);
        if ((rc = atomic_load(&j.rc))) break;
        clk = step_begin(times);
        j.nlinks = 0;
        for (uint64_t u = j.lo; u < j.hi; u++)
            for (uint32_t i = 0; i < R && out->adj[u * R + i] != ANNB_GRAPH_NONE; i++)
                links[j.nlinks++] = (uint64_t)out->adj[u * R + i] << 32 | u;
        qsort(links, j.nlinks, sizeof *links, cmp_u64);
        j.ngroups = 0;
        for (size_t i = 0; i < j.nlinks; i++)
            if (!i || links[i] >> 32 != links[i - 1] >> 32) group[j.ngroups++] = i;
        group[j.ngroups] = j.nlinks;
        step_end(times, ANNB_GRAPH_STEP_GATHER, clk, NULL, 0);
        int t2 = threads < (int)j.ngroups ? threads : (int)j.ngroups;
        if (thread_cpu) memset(thread_cpu, 0, (size_t)threads * sizeof *thread_cpu);
        clk = step_begin(times);
        atomic_store(&j.next, 0);
        if (t2 > 0) annb_run_threads(t2, build_reverse, &j);
        step_end(times, ANNB_GRAPH_STEP_REVERSE, clk, thread_cpu, t2 > 0 ? t2 : 0);
        rc = atomic_load(&j.rc);
        lo = j.hi;
        if (times) times->batches++;
        annb_phase_update(&linked, lo);
    }
    clk = step_begin(times);
    double span = 0;
    uint64_t unreached = 0;
    /* The unreached rows are searched with the build's ef. Half of it (64)
     * halved their searches, which are half the build's CPU at 1M rows,
     * and lost nothing on 200k ALS-like rows, but on 1M it lowered
     * recall@100 by 0.002 to 0.003 at ef 256 to 1024 (item questions'
     * efSearch for recall@100 0.95: 905 instead of 838). */
    uint32_t connect_ef = ef;
    if (rc == ANNB_OK)
        rc = connect_unreached(&out->g, out->adj, &j.w, pool, connect_ef,
                               p->connect_chunk ? p->connect_chunk : ANNB_GRAPH_CONNECT_CHUNK,
                               threads, thread_cpu, &span, &unreached);
    if (times) times->unreached = unreached;
    if (times) {
        double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - clk.cpu;
        step_add(times, ANNB_GRAPH_STEP_CONNECT, clk, span, cpu);
    }
    clk = step_begin(times);
    nt = 0;
    if (rc == ANNB_OK && p->sq8) rc = reorder(out, threads, thread_cpu, &nt);
    step_end(times, ANNB_GRAPH_STEP_REORDER, clk, thread_cpu, nt);
    if (rc == ANNB_OK) annb_phase_end(&linked);
    free(links);
    free(group);
    free(thread_cpu);
    annb_graph_pool_free(pool);
    if (rc) {
        annb_graph_release_built(out);
        return annb_error_set(err, rc, "out of memory building the graph");
    }
    return ANNB_OK;
}
