/*
 * keys.h - string IDs ("keys": SKUs, "tt0114709", words), internal to libannb.
 *
 * A key stands in the bundle as an int64 ID, annb_key_id(key): every index,
 * order, shard and merge keeps working on int64 IDs, and the same key has
 * the same ID in every bundle (shards of one catalog, users and their
 * interactions, a catalog joined by key). The key texts are stored per row
 * (SPEC 6.19: KOF offsets and KEY text, for items IKOF/IKEY, for users
 * UKOF/UKEY), so answers can print them and questions can name them.
 *
 * This module owns the rule of what a key is, the in-memory table the
 * readers fill, and the sections' encoding and checks.
 */
#ifndef ANNB_KEYS_H
#define ANNB_KEYS_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

/* Longest key, in bytes (a URL-sized product ID fits; a sentence does not). */
#define ANNB_MAX_KEY_BYTES 256u

/* Why text cannot be a key, or NULL when it can: 1..ANNB_MAX_KEY_BYTES bytes
 * of well-formed UTF-8 without control characters (C0, DEL, C1), so that a
 * key prints on a terminal and in JSON as it is. */
const char *annb_key_invalid(const char *text, size_t len);

/* Does the text read as a number ("12", "-3", "12.0", "1e5", " 7", or a sign
 * alone)? Such an
 * ID field in a file whose IDs are not all integers is a mistake more often
 * than a key (pandas writes integer IDs as "12.0" when a column has gaps):
 * the readers refuse it unless keys are asked for (string_ids). */
int annb_key_looks_numeric(const char *text, size_t len);

/* Keys in some order: key i is text[off[i] .. off[i+1] - 1), followed by a
 * NUL at off[i+1] - 1 (the section layout, SPEC 6.19). */
typedef struct annb_keys {
    uint64_t count;
    uint64_t *off;   /* count + 1 entries once anything is added; off[0] = 0 */
    char *text;
    uint64_t cap, text_cap;
} annb_keys;

/* Appends a key (not checked here). ANNB_OK or ANNB_E_NOMEM. */
int annb_keys_add(annb_keys *k, const char *text, size_t len);
static inline const char *annb_keys_at(const annb_keys *k, uint64_t i, size_t *len)
{
    if (len) *len = (size_t)(k->off[i + 1] - k->off[i] - 1);
    return k->text + k->off[i];
}
void annb_keys_release(annb_keys *k);

/* annb_ids_check_unique for IDs that may be keys' (keys NULL: integers):
 * a repeated key is named as text, and two keys with one ID (a hash
 * collision) are refused naming both. */
int annb_keys_check_unique(const char *path, const int64_t *ids, const annb_keys *keys,
                           const uint64_t *lines, uint64_t n, annb_error *err);

/* The table of `count` rows whose key i is k's key src[i] (rows after
 * sorting and filtering), in the section layout: *off (count + 1 u64) and
 * *text (*text_size bytes), malloc'd. ANNB_OK or ANNB_E_NOMEM. */
int annb_keys_gather(uint64_t **off, char **text, uint64_t *text_size, const annb_keys *k,
                     const uint32_t *src, uint64_t count);

/* Row r's key in a stored table (off: n + 1 entries, text: size bytes),
 * checked where it is used (the sections are bulk, SPEC 3.11): NULL when
 * the offsets are out of order or out of the text, or the key does not end
 * with a NUL. *len (may be NULL) gets its length. */
const char *annb_keys_stored(const uint64_t *off, const char *text, uint64_t size, uint64_t r,
                             size_t *len);

/* The full check of a stored table (annb_verify): offsets from 0, strictly
 * ascending, ending at size; every key valid (annb_key_invalid) with one NUL
 * after it; and ids[r] == annb_key_id(key r). NULL when sound, else what is
 * wrong, with the row in *row. */
const char *annb_keys_stored_check(const uint64_t *off, const char *text, uint64_t size,
                                   const int64_t *ids, uint64_t n, uint64_t *row);

#endif /* ANNB_KEYS_H */
