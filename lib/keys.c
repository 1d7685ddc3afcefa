/* keys.c - string IDs: the rule, the in-memory table, the stored table. */
#include "keys.h"
#include "section_io.h"
#include "csvread.h"
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int64_t annb_key_id(const char *key, size_t len)
{
    /* XXH3-64 (the format's checksum hash: fixed, seedless, fast) with the
     * top bit cleared: IDs of keys are never negative, so never
     * ANNB_ID_NONE, and two keys of 10 million meet with odds of about
     * 1 in 10^5 (builds refuse such a pair by name). */
    return (int64_t)(XXH3_64bits(key, len) & (uint64_t)INT64_MAX);
}

const char *annb_key_invalid(const char *text, size_t len)
{
    if (len == 0) return "an empty ID";
    if (len > ANNB_MAX_KEY_BYTES) return "an ID longer than 256 bytes";
    for (size_t i = 0; i < len;) {
        int control;
        size_t n = annb_text_char(text + i, len - i, &control);
        if (!n) return "an ID that is not valid UTF-8";
        if (control) return "an ID holding a control character";
        i += n;
    }
    return NULL;
}

int annb_key_looks_numeric(const char *text, size_t len)
{
    size_t i = 0, digits = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
    if (i < len && (text[i] == '+' || text[i] == '-')) i++;
    if (i == len) return 1; /* a sign alone: a number missing, not a name */
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) digits++;
    if (i < len && text[i] == '.')
        for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++) digits++;
    if (!digits) return 0;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        size_t at = ++i;
        if (i < len && (text[i] == '+' || text[i] == '-')) i++;
        size_t exp = i;
        while (i < len && text[i] >= '0' && text[i] <= '9') i++;
        if (i == exp) i = at - 1; /* "12e" is "12" then a letter: not a number */
    }
    while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
    return i == len;
}

int annb_keys_add(annb_keys *k, const char *text, size_t len)
{
    if (k->count + 2 > k->cap) {
        uint64_t cap = annb_grow_capacity(k->cap, k->count + 2);
        void *p = realloc(k->off, cap * sizeof *k->off);
        if (!p) return ANNB_E_NOMEM;
        k->off = p;
        k->cap = cap;
        if (k->count == 0) k->off[0] = 0;
    }
    uint64_t at = k->off[k->count];
    if (at + len + 1 > k->text_cap) {
        uint64_t cap = annb_grow_capacity(k->text_cap, at + len + 1);
        void *p = realloc(k->text, cap);
        if (!p) return ANNB_E_NOMEM;
        k->text = p;
        k->text_cap = cap;
    }
    memcpy(k->text + at, text, len);
    k->text[at + len] = '\0';
    k->off[++k->count] = at + len + 1;
    return ANNB_OK;
}

void annb_keys_release(annb_keys *k)
{
    if (!k) return;
    free(k->off);
    free(k->text);
    memset(k, 0, sizeof *k);
}

int annb_keys_gather(uint64_t **off, char **text, uint64_t *text_size, const annb_keys *k,
                     const uint32_t *src, uint64_t count)
{
    uint64_t size = 0;
    for (uint64_t i = 0; i < count; i++) size += k->off[src[i] + 1] - k->off[src[i]];
    *off = malloc((count + 1) * sizeof **off);
    *text = malloc(size ? size : 1);
    if (!*off || !*text) {
        free(*off);
        free(*text);
        *off = NULL;
        *text = NULL;
        return ANNB_E_NOMEM;
    }
    uint64_t at = 0;
    (*off)[0] = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t from = k->off[src[i]], len = k->off[src[i] + 1] - from;
        memcpy(*text + at, k->text + from, len);
        (*off)[i + 1] = at += len;
    }
    *text_size = size;
    return ANNB_OK;
}

const char *annb_keys_stored(const uint64_t *off, const char *text, uint64_t size, uint64_t r,
                             size_t *len)
{
    uint64_t from = off[r], to = off[r + 1];
    if (from >= to || to > size || text[to - 1] != '\0') return NULL;
    if (len) *len = (size_t)(to - from - 1);
    return text + from;
}

const char *annb_keys_stored_check(const uint64_t *off, const char *text, uint64_t size,
                                   const int64_t *ids, uint64_t n, uint64_t *row)
{
    if (off[0] != 0 || off[n] != size) {
        *row = 0;
        return "key offsets do not span the key text";
    }
    for (uint64_t r = 0; r < n; r++) {
        *row = r;
        size_t len;
        const char *key = annb_keys_stored(off, text, size, r, &len);
        if (!key) return "key offsets out of order, or a key without its NUL";
        if (memchr(key, '\0', len)) return "a key holding a NUL";
        const char *why = annb_key_invalid(key, len);
        if (why) return why;
        if (annb_key_id(key, len) != ids[r]) return "a key whose ID is not the stored one";
    }
    return NULL;
}

int annb_keys_check_unique(const char *path, const int64_t *ids, const annb_keys *keys,
                           const uint64_t *lines, uint64_t n, annb_error *err)
{
    if (!keys) return annb_ids_check_unique(path, ids, lines, n, err);
    uint64_t first, second;
    if (annb_ids_first_repeat(ids, n, &first, &second))
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
    if (second == UINT64_MAX) return ANNB_OK;
    char ea[ANNB_EXCERPT_SIZE], eb[ANNB_EXCERPT_SIZE];
    size_t la, lb;
    const char *a = annb_keys_at(keys, first, &la), *b = annb_keys_at(keys, second, &lb);
    if (la == lb && memcmp(a, b, la) == 0)
        return annb_input_error(err, ANNB_E_INPUT, path, lines[second], 1,
                                "expected unique IDs, found ID %s again (first on line %" PRIu64 ")",
                                annb_excerpt(eb, b, lb), lines[first]);
    return annb_input_error(err, ANNB_E_INPUT, path, lines[second], 1,
                            "IDs %s and %s (line %" PRIu64 ") hash to the same 63-bit number, "
                            "which annb stores for a string ID: rename one of them",
                            annb_excerpt(eb, b, lb), annb_excerpt(ea, a, la), lines[first]);
}

/* ---- the sections (SPEC 6.19) ---- */

/* String IDs (SPEC 6.19): the offsets and the text of n rows whose IDs are
 * ids, both or neither. Bulk sections: opening checks their sizes only
 * (each use checks what it reads); full checks every key against its ID. */
int annb_keys_sections_load(const annb_bundle *b, annb_content *c, const char *off_kind,
                     const char *text_kind, const int64_t *ids, uint64_t n, int full,
                     const uint64_t **off_out, const char **text_out, uint64_t *size_out,
                     annb_error *err)
{
    int io = annbf_section_find(&b->file, off_kind), it = annbf_section_find(&b->file, text_kind);
    if (io < 0 && it < 0) return ANNB_OK;
    if (io < 0 || it < 0)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: '%.4s' without '%.4s'", b->path,
                              io < 0 ? text_kind : off_kind, io < 0 ? off_kind : text_kind);
    const void *off, *text;
    int rc = annb_sec_bulk(b, c, off_kind, ANNBF_ELEM_U64, n + 1, full, &off, err);
    if (rc == ANNB_OK)
        rc = annb_sec_bulk(b, c, text_kind, ANNBF_ELEM_BYTES, b->file.sections[it].elem_count,
                           full, &text, err);
    if (rc) return rc;
    uint64_t size = b->file.sections[it].decoded_size, row;
    if (full) {
        const char *why = annb_keys_stored_check(off, text, size, ids, n, &row);
        if (why) return annb_sec_corrupt(err, b, off_kind, why, row);
    }
    *off_out = off;
    *text_out = text;
    *size_out = size;
    return ANNB_OK;
}


int annb_keys_sections_write(annbf_writer *w, const char *off_kind, const char *text_kind,
                             const annb_keys *keys, const uint32_t *src, uint64_t n,
                             annbf_error *fe)
{
    uint64_t *off, size;
    char *text;
    if (annb_keys_gather(&off, &text, &size, keys, src, n)) {
        snprintf(fe->message, sizeof fe->message, "out of memory");
        return ANNB_E_NOMEM;
    }
    /* raw: read in place, each use checking what it reads (SPEC 6.19) */
    int rc = annb_sec_add_raw(w, off_kind, ANNBF_ELEM_U64, n + 1, off, (n + 1) * 8, fe);
    if (rc == ANNB_OK) rc = annb_sec_add_raw(w, text_kind, ANNBF_ELEM_BYTES, size, text, size, fe);
    free(off);
    free(text);
    return rc;
}
