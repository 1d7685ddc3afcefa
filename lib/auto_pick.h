/*
 * auto_pick.h - index "auto"'s choice among the candidates that fit: the
 * one that reaches the target recall with the least modelled work per
 * tuning question (internal; used by annb_build).
 *
 * The work is counted by the searches themselves (graph.h annb_graph_work,
 * ivf.h annb_ivf_work), never timed, so a bundle's bytes do not depend on
 * the machine, its load or the number of threads. Each kind of work is
 * weighed by what one row of it cost on this project's machine
 * (tests/bench/bench_auto.c measures the weights and checks the model
 * against measured queries per second: docs/benchmarks.md, "--index auto").
 */
#ifndef ANNB_AUTO_PICK_H
#define ANNB_AUTO_PICK_H

#include <stddef.h>
#include <stdint.h>

/* The unit: one float of a row scored in sequence, as IVF scans its lists
 * and centroids and exact search scans every row (streamed, prefetched).
 * The other kinds, per value of the row, in that unit. Measured once with
 *   build/tests/bench_auto build/bench-data/v2-als-n200000-q2000-d64-s42 2
 * (tests/bench/bench_auto.c; 200k x 64 ALS-like items, Graph32,SQ8 at its
 * tuned efSearch 56, IVF512,Flat at nprobe 197, one thread, CPU time; AMD
 * EPYC, AVX-512; docs/benchmarks.md "--index auto"): a row scanned took
 * 19.2 ns (256 bytes; exact search: 19.0 ns), a code scored by the walk
 * 35.2 ns (its 64 bytes reached at random, the visited mark, the heaps), a
 * float row read at random and scored 81.4 ns (a cache miss per line). The
 * weights are the ratios, per value so that other d scale with the bytes
 * (an approximation: a random row's latency does not grow with d). */
#define ANNB_COST_SCAN 1.0
/* One byte of an 8-bit code scored by the graph walk (35.2 / 19.2). */
#define ANNB_COST_CODE 1.8
/* One float of a row read at random: the exact re-rank after a walk on
 * codes, or a walk on float vectors (81.4 / 19.2). */
#define ANNB_COST_RANDOM 4.2

/* The work of answering some questions, summed over them. */
typedef struct annb_auto_work {
    uint64_t questions;
    uint64_t codes;   /* 8-bit codes scored (d bytes each) */
    uint64_t random;  /* float rows read at random (d floats each) */
    uint64_t scanned; /* float rows scanned in sequence (d floats each) */
} annb_auto_work;

/* Modelled cost per question, in units (above) for dimension d; 0 when no
 * question was counted. */
double annb_auto_cost(const annb_auto_work *w, uint32_t d);

/* One candidate as measured on the tuning questions. */
typedef struct annb_auto_candidate {
    const char *index; /* the index string, e.g. "Graph32,SQ8" */
    const char *param; /* "efSearch", "nprobe", or NULL (exact search) */
    uint32_t value;    /* the parameter tuned for the target (primary k) */
    double recall;     /* recall@k measured at value (primary k) */
    int reached;       /* the target reached at every k measured */
    double cost;       /* annb_auto_cost at value */
} annb_auto_candidate;

/* The winner: of the candidates that reached the target, the lowest cost;
 * a tie goes to the earlier one (the order auto lists them in: graph, IVF,
 * exact). Returns its index, or n when none reached it. */
size_t annb_auto_pick(const annb_auto_candidate *c, size_t n);

/* Says the choice in one line, e.g. "Graph32,SQ8 (efSearch 56, recall@10
 * 0.9510, cost 31.2k units/question) over IVF512,Flat (nprobe 40, recall@10
 * 0.9520, cost 210k units/question), Flat (...)", candidates missing the
 * target marked "below target". won < n. Truncated to size. */
void annb_auto_describe(char *out, size_t size, const annb_auto_candidate *c, size_t n,
                        size_t won, uint32_t k);

#endif /* ANNB_AUTO_PICK_H */
