/*
 * provenance.h - the BILD section (format/SPEC.md 6.13): how a bundle was
 * made, as `key=value` lines (internal to libannb).
 *
 * The inputs are identified by digests of their content as annb read it, in
 * a canonical order (SPEC 6.13), not by hashes of the files' bytes: the same
 * rows in another order or another accepted form (TSV, the wide form, a
 * latin-1 catalog) give the same digest, so the whole bundle stays a
 * function of the content (SPEC 4.2).
 */
#ifndef ANNB_PROVENANCE_H
#define ANNB_PROVENANCE_H

#include "ingest.h"
#include "sha256.h"

#include <stddef.h>
#include <stdint.h>

#define ANNB_MAX_PROVENANCE_BYTES 65536u /* decoded BILD size */
#define ANNB_MAX_PROVENANCE_LINES 256u

/* What a build's provenance records besides the versions: the options that
 * shape the bytes and the inputs' content digests (hex; NULL: no such
 * input). */
typedef struct annb_provenance_in {
    const char *metric, *index;
    uint32_t shard_index, shard_count; /* shard_count > 1: "shard=I/N" */
    const char *items, *catalog, *users, *interactions;
    const char *tune_vectors; /* the --tune-vectors file's digest, or NULL */
    const char *auto_choice;  /* index "auto": why this index (one line), or NULL */
} annb_provenance_in;

/* Makes the BILD text: "key=value\n" lines in a fixed order, no NUL. *text
 * is malloc'd (caller frees), *size its length. Returns ANNB_OK,
 * ANNB_E_NOMEM, or ANNB_E_INVALID if the text would break SPEC 6.13. */
int annb_provenance_make(char **text, size_t *size, const annb_provenance_in *in,
                         annb_error *err);

/* Checks untrusted BILD bytes against SPEC 6.13. Returns ANNB_OK, or
 * ANNB_E_CORRUPT with *bad the offending byte's offset and *what a static
 * description. */
int annb_provenance_check(const char *text, size_t size, uint64_t *bad, const char **what);

/* Content digests (SPEC 6.13) as 64 hex digits. */

/* Vectors: n rows of d floats, ids ascending (ids[i] owns vecs[i*d ...]). */
void annb_digest_vectors(char hex[ANNB_SHA256_HEX], const int64_t *ids, const float *vecs,
                         uint64_t n, uint32_t d);
/* A catalog, entries taken in ascending ID order. ANNB_OK or ANNB_E_NOMEM. */
int annb_digest_catalog(char hex[ANNB_SHA256_HEX], const annb_catalog *c, annb_error *err);
/* Interactions, already sorted by (user, item) without repeats. */
void annb_digest_interactions(char hex[ANNB_SHA256_HEX], const annb_interactions *x);

#endif /* ANNB_PROVENANCE_H */
