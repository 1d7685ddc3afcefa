/* progress.c - a build's phases reported at a bounded rate (see progress.h). */
#include "progress.h"

static void report(annb_phase *ph)
{
    if (ph->to && ph->to->fn) ph->to->fn(ph->to->ctx, &ph->info);
}

static void plan_next(annb_phase *ph)
{
    uint64_t step = ph->info.total / ANNB_PROGRESS_REPORTS;
    ph->next = ph->info.done + (step ? step : 1);
}

void annb_phase_begin(annb_phase *ph, const annb_progress_to *to, const char *phase,
                      const char *unit, uint64_t total)
{
    ph->to = to;
    ph->info = (annb_progress){phase, NULL, 0, total, 0, unit};
    plan_next(ph);
    report(ph);
}

void annb_phase_update(annb_phase *ph, uint64_t done)
{
    if (done < ph->next || ph->info.finished) return;
    ph->info.done = ph->info.total && done > ph->info.total ? ph->info.total : done;
    plan_next(ph);
    report(ph);
}

void annb_phase_end(annb_phase *ph)
{
    if (ph->info.finished) return;
    if (ph->info.total) ph->info.done = ph->info.total;
    ph->info.finished = 1;
    report(ph);
}
