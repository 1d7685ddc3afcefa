/* auto_pick.c - index "auto"'s cost model and choice (see auto_pick.h). */
#include "auto_pick.h"

#include <stdio.h>

double annb_auto_cost(const annb_auto_work *w, uint32_t d)
{
    if (!w->questions) return 0;
    double per_value = ANNB_COST_CODE * (double)w->codes + ANNB_COST_RANDOM * (double)w->random +
                       ANNB_COST_SCAN * (double)w->scanned;
    return per_value * d / (double)w->questions;
}

size_t annb_auto_pick(const annb_auto_candidate *c, size_t n)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++)
        if (c[i].reached && (best == n || c[i].cost < c[best].cost)) best = i;
    return best;
}

/* 31234 -> "31.2k", 2100000 -> "2.10M": three significant figures. */
static void units(char *out, size_t size, double v)
{
    const char *suffix = "";
    if (v >= 1e6) v /= 1e6, suffix = "M";
    else if (v >= 1e3) v /= 1e3, suffix = "k";
    snprintf(out, size, "%.*f%s", v >= 100 ? 0 : v >= 10 ? 1 : 2, v, suffix);
}

static int one(char *out, size_t size, const annb_auto_candidate *c, uint32_t k)
{
    char cost[32], param[48] = "";
    units(cost, sizeof cost, c->cost);
    if (c->param) snprintf(param, sizeof param, "%s %u, ", c->param, c->value);
    return snprintf(out, size, "%s (%srecall@%u %.4f%s, cost %s units/question)", c->index, param,
                    k, c->recall, c->reached ? "" : " below target", cost);
}

void annb_auto_describe(char *out, size_t size, const annb_auto_candidate *c, size_t n,
                        size_t won, uint32_t k)
{
    if (!size) return;
    *out = 0;
    size_t used = 0, written = 0;
    for (size_t i = 0; i <= n && won < n && used + 1 < size; i++) {
        /* The winner first, then the others in auto's order. */
        size_t at = i == 0 ? won : i - 1;
        if (i > 0 && at == won) continue;
        const char *sep = written == 0 ? "" : written == 1 ? " over " : ", ";
        int w = snprintf(out + used, size - used, "%s", sep);
        if (w < 0) return;
        used = used + (size_t)w < size ? used + (size_t)w : size - 1;
        w = one(out + used, size - used, &c[at], k);
        if (w < 0) return;
        used = used + (size_t)w < size ? used + (size_t)w : size - 1;
        written++;
    }
}
