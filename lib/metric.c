/* metric.c - the metrics' names ("ip", "l2", "cosine"), as the format, the
 * tools and the protocol spell them. */
#include "annb.h"

#include <string.h>

const char *annb_metric_name(annb_metric m)
{
    switch (m) {
    case ANNB_METRIC_IP: return "ip";
    case ANNB_METRIC_L2: return "l2";
    case ANNB_METRIC_COSINE: return "cosine";
    }
    return NULL;
}

int annb_metric_parse(annb_metric *out, const char *name)
{
    for (int m = ANNB_METRIC_IP; m <= ANNB_METRIC_COSINE; m++)
        if (name && strcmp(name, annb_metric_name((annb_metric)m)) == 0) {
            *out = (annb_metric)m;
            return ANNB_OK;
        }
    return ANNB_E_INVALID;
}
