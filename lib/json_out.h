/* json_out.h - the one writer of answers as JSON (cJSON), shared by the
 * protocol (serve.c) and annb_results_json. */
#ifndef ANNB_JSON_OUT_H
#define ANNB_JSON_OUT_H

#include "annb.h"

#include <cjson/cJSON.h>

/* An int64 as a JSON number, exactly (cJSON prints numbers as doubles). */
cJSON *annb_json_int(int64_t v);

/* An ID of `space` as the answers give it: the string ID where holder's
 * space has them, else the integer (holder may be NULL). */
cJSON *annb_json_id(const annb_bundle *holder, annb_space space, int64_t id);

/* The results array of docs/protocol.md for hits[0..k); NULL when out of memory. */
cJSON *annb_json_results(const annb_bundle *const *bundles, size_t n, annb_space space,
                         const annb_hit *hits, size_t k);

/* Adds item to obj under a constant key (not copied); 0 when item is NULL
 * (out of memory), which the caller turns into failure. */
int annb_json_put(cJSON *obj, const char *key, cJSON *item);

/* root printed without line breaks and made valid UTF-8 (bytes of titles
 * or echoed requests that are not become U+FFFD); malloc'd, NULL when out
 * of memory. */
char *annb_json_print(const cJSON *root);

#endif /* ANNB_JSON_OUT_H */
