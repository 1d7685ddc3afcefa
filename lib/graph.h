/*
 * graph.h - annb's own proximity-graph index, searched in place from the
 * mapping (internal).
 *
 * One flat graph of fixed degree: row r's neighbours are adj[r * degree ..
 * r * degree + degree), rows numbers, ANNB_GRAPH_NONE after the last one. A
 * search starts from a few entry rows (a seeded sample, scored exactly: the
 * work a hierarchy's upper layers would do, at a known cost) and walks the
 * graph best-first with a candidate list of ef rows, scoring the mapped
 * vectors (VECS) with kernels.c's kernels, so every score is the real one.
 *
 * Nothing is deserialised or checked in bulk at open: each neighbour number
 * read from the file is compared with n where it is used, so a crafted
 * adjacency can give wrong answers, never an out-of-bounds read. The entry
 * rows (a few hundred) are checked at open.
 *
 * Scores and order are exact.h's (topk.h's rule): ip and cosine, larger
 * inner product first; l2, smaller squared distance first; ties by lower row. Cosine
 * vectors (and queries) arrive L2-normalised and are handled as ip.
 */
#ifndef ANNB_GRAPH_H
#define ANNB_GRAPH_H

#include "annb.h"
#include "exact.h"
#include "sq8.h"

#include <stddef.h>
#include <stdint.h>

#define ANNB_GRAPH_NONE UINT32_MAX
#define ANNB_GRAPH_MAX_DEGREE 256u
#define ANNB_GRAPH_MAX_ENTRIES 4096u

/* A graph as plain arrays; every pointer may point into a read-only mapping. */
typedef struct annb_graph {
    uint64_t n;            /* rows; every row is a node */
    uint32_t d;
    uint32_t degree;       /* slots per row, 1..ANNB_GRAPH_MAX_DEGREE */
    uint32_t nentry;       /* 1..ANNB_GRAPH_MAX_ENTRIES, at most n */
    const uint32_t *adj;   /* n x degree */
    const uint32_t *entry; /* nentry rows, each < n */
    const float *vecs;     /* n x d: VECS */
    /* Optional 8-bit codes (sq8.h): the walk scores them, and the rows it
     * keeps are re-ranked on vecs, so scores are exact. NULL: floats. */
    const uint8_t *codes;  /* n x d */
    annb_sq8 sq;
    /* With codes, the graph's nodes are positions in breadth-first order
     * (locality), not rows: adj, codes and entry hold positions, and
     * row_of[p] is the row at position p (bounded where it is read). NULL:
     * positions are rows. */
    const uint32_t *row_of;
} annb_graph;

/* Where a build's time goes, step by step (annb_graph_params.times): for
 * benchmarks (tests/bench/bench_graph_build.c), never part of the bytes. */
enum {
    ANNB_GRAPH_STEP_CODES,   /* 8-bit codes trained and encoded */
    ANNB_GRAPH_STEP_LINK,    /* batches, phase 1: each row's neighbours */
    ANNB_GRAPH_STEP_GATHER,  /* batches: the reverse links collected and sorted */
    ANNB_GRAPH_STEP_REVERSE, /* batches, phase 2: the reverse links added */
    ANNB_GRAPH_STEP_CONNECT, /* rows no search could reach linked */
    ANNB_GRAPH_STEP_REORDER, /* breadth-first layout */
    ANNB_GRAPH_STEPS
};

typedef struct annb_graph_times {
    double wall[ANNB_GRAPH_STEPS]; /* seconds, monotonic clock */
    double cpu[ANNB_GRAPH_STEPS];  /* seconds of the process's CPU time (all threads) */
    /* The critical path: of each parallel run, the busiest thread's CPU
     * time plus the serial work around it, summed (a serial step: its CPU
     * time). About the step's wall time on idle cores. */
    double span[ANNB_GRAPH_STEPS];
    uint64_t batches;
    uint64_t unreached; /* rows no search could reach after the batches */
} annb_graph_times;

/* How a graph is built (part of what makes the bytes). */
typedef struct annb_graph_params {
    uint32_t degree;   /* R: neighbours kept per row */
    uint32_t build_ef; /* candidate list of the searches that pick them */
    uint32_t nentry;   /* entry rows (0: chosen from n, annb_graph_entries) */
    int sq8;           /* also 8-bit codes for the walk (sq8.h) */
    annb_progress_fn progress; /* rows linked, phase "graph" (NULL: none) */
    void *progress_ctx;
    annb_graph_times *times;   /* filled when not NULL */
    /* Rows no search reaches after the batches are linked in chunks of this
     * many (0: ANNB_GRAPH_CONNECT_CHUNK): part of what makes the bytes. */
    uint32_t connect_chunk;
} annb_graph_params;

/* Unreached rows searched at once (annb_graph_build). */
#define ANNB_GRAPH_CONNECT_CHUNK 1024u

/* efSearch of a graph bundle without a TUNE section (annb writes one). */
#define ANNB_GRAPH_DEFAULT_EF 64u

/* Defaults: degree 32, build_ef 128. */
#define ANNB_GRAPH_DEFAULT_DEGREE 32u
#define ANNB_GRAPH_DEFAULT_BUILD_EF 128u

/* Entry rows for n rows: about sqrt(n) / 4, 1..256. */
uint32_t annb_graph_entries(uint64_t n);

/* What annb_graph_build returns: the graph and the arrays it owns. */
typedef struct annb_graph_built {
    annb_graph g;
    uint32_t *adj;
    uint32_t *entry;
    uint8_t *codes;    /* with params.sq8 */
    float *sq_params;  /* lo then step, 2 x d */
    uint32_t *row_of;  /* with params.sq8: the row at each position */
} annb_graph_built;

/*
 * Builds the graph over the n rows of x (n x d) under metric m (cosine rows
 * already normalised). Rows are inserted in order, in batches that grow with
 * the graph (about 1/64 of it, at most 4096 rows): each row of a batch
 * searches the graph as it stood before the batch and keeps at most degree
 * neighbours chosen by HNSW's heuristic (a candidate is kept unless it is
 * nearer to a neighbour already kept than to the row); then each row gains
 * the batch's reverse links, pruned by the same rule when they overflow.
 * Every choice depends only on the graph before the batch, so the bytes are
 * the same on any number of threads. Then each row no search can reach
 * gets a link from a near reached row: searched a chunk at a time on all
 * threads, on the graph as it stood before the chunk, linked in row order.
 * The entry rows are the first nentry.
 *
 * out: filled on success (annb_graph_release_built), zeroed on failure.
 * Returns ANNB_OK, ANNB_E_INVALID (n, d zero; degree or build_ef out of
 * range), ANNB_E_LIMIT (n >= 2^32), ANNB_E_NOMEM; err says why.
 */
int annb_graph_build(annb_graph_built *out, const float *x, uint64_t n, uint32_t d, annb_metric m,
                     const annb_graph_params *p, int threads, annb_error *err);

void annb_graph_release_built(annb_graph_built *b);

/*
 * Checks what a search trusts without looking: n, d, degree and nentry in
 * range, every entry row < n. O(nentry). The adjacency is not read (see the
 * top of this file). ANNB_OK or ANNB_E_CORRUPT with why.
 */
int annb_graph_check(const annb_graph *g, char *why, size_t why_size);

/*
 * Per-thread search state (the visited marks, n x 16 bits each, and the
 * heaps) kept for reuse: a pool a search takes a slot of without a lock.
 * One pool per open graph; many threads may use it at once.
 */
typedef struct annb_graph_pool annb_graph_pool;
annb_graph_pool *annb_graph_pool_new(uint64_t n);
void annb_graph_pool_free(annb_graph_pool *pool);

/*
 * The k best rows for each of nq queries: rows[i*k + j], scores[i*k + j],
 * best first, ties by lower row, -1 / NaN past what was found. ef (>= 1)
 * is the candidate list; below k it is raised to k. The filter applies
 * inside the walk: rows it refuses still lead the way but never answer, so
 * k results come back whenever the walk meets k allowed rows; a filter that
 * allows few rows (under ANNB_GRAPH_EXACT_SHARE of them, by the `allowed`
 * bitmap) is answered by an exact scan of those rows instead.
 * Queries are shared among `threads` threads. Reads g only: many threads may
 * search one graph at once. Returns ANNB_OK, ANNB_E_NOMEM.
 */
int annb_graph_search(const annb_graph *g, annb_graph_pool *pool, annb_metric m, const float *q,
                      size_t nq, size_t k, size_t ef, const annb_row_filter *filter, int threads,
                      float *scores, int64_t *rows);

/* The work a search did, summed over its queries (for index "auto"'s cost
 * model, lib/auto_pick.h): rows the walk scored on their 8-bit codes (d
 * bytes each) or on their float vectors (graphs without codes), rows
 * re-ranked exactly from VECS after a walk on codes, and rows scanned
 * exactly by a selective filter's scan. Counted, never timed: the same
 * numbers on any machine and any number of threads. */
typedef struct annb_graph_work {
    uint64_t codes, floats, reranked, scanned;
} annb_graph_work;

/* annb_graph_search, also adding its work to *work (NULL: not counted). */
int annb_graph_search_work(const annb_graph *g, annb_graph_pool *pool, annb_metric m,
                           const float *q, size_t nq, size_t k, size_t ef,
                           const annb_row_filter *filter, int threads, float *scores,
                           int64_t *rows, annb_graph_work *work);

/* Below this share of allowed rows, a filtered search scans them exactly. */
#define ANNB_GRAPH_EXACT_SHARE 0.02

#endif /* ANNB_GRAPH_H */
