/*
 * progress.h - a phase of a build reported to the caller's annb_progress_fn
 * at a bounded rate (internal; annb.h describes the phases and units).
 *
 * Every report is made on the thread that calls these functions, which in
 * annb is the thread that called annb_build: work done on other threads is
 * counted there and reported from here.
 */
#ifndef ANNB_PROGRESS_H
#define ANNB_PROGRESS_H

#include "annb.h"

#include <stdint.h>

/* Where a build's progress goes (annb_build_opts.progress, progress_ctx).
 * A NULL pointer to one, or fn NULL: nowhere. */
typedef struct annb_progress_to {
    annb_progress_fn fn;
    void *ctx;
} annb_progress_to;

/* Reports at most this many times in a phase whose total is known, besides
 * its first and last. */
#define ANNB_PROGRESS_REPORTS 64

typedef struct annb_phase {
    const annb_progress_to *to;
    annb_progress info;
    uint64_t next; /* the done that makes the next report */
} annb_phase;

/* Starts phase `phase` (a static string) counting `unit` up to total (0:
 * unknown), and reports done 0. to may be NULL. */
void annb_phase_begin(annb_phase *ph, const annb_progress_to *to, const char *phase,
                      const char *unit, uint64_t total);
/* done so far: reported when it has grown by 1/ANNB_PROGRESS_REPORTS of the
 * total since the last report (every call when the total is unknown: the
 * caller calls at most once per unit of real work then). */
void annb_phase_update(annb_phase *ph, uint64_t done);
/* The last report, finished set: done is the total (when known). */
void annb_phase_end(annb_phase *ph);

#endif /* ANNB_PROGRESS_H */
