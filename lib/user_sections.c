/* user_sections.c - the users (SPEC 6.9-6.10), who has seen what (6.11-6.12)
 * and the users' string IDs (6.19): written, then read back and checked. */
#include "section_io.h"

#include <stdlib.h>
#include <string.h>

/* Users and their interactions (SPEC 6.9-6.12): UIDS and UVEC together;
 * SOFF and SEEN together, and only with users. */
int annb_user_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    const void *p;
    int rc, has_users = annbf_section_find(&b->file, ANNB_KIND_USER_IDS) >= 0;
    int has_seen = annbf_section_find(&b->file, ANNB_KIND_SEEN_OFFSETS) >= 0;
    if (!has_users) {
        if (has_seen || annbf_section_find(&b->file, ANNB_KIND_USER_VECS) >= 0 ||
            annbf_section_find(&b->file, ANNB_KIND_USER_KEY_OFFSETS) >= 0 ||
            annbf_section_find(&b->file, ANNB_KIND_USER_KEYS) >= 0 ||
            annbf_section_find(&b->file, ANNB_KIND_SEEN_ROWS) >= 0)
            return annb_error_set(err, ANNB_E_CORRUPT, "%s: user sections without 'UIDS'", b->path);
        return ANNB_OK;
    }
    /* UIDS bulk like IDS (SPEC 3.11): bisected, never used to locate bytes. */
    uint64_t m = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_USER_IDS)].elem_count;
    if (m == 0 || m > UINT32_MAX)
        return annb_sec_corrupt(err, b, ANNB_KIND_USER_IDS, "user count out of range 1..2^32-1", m);
    if ((rc = annb_sec_bulk(b, c, ANNB_KIND_USER_IDS, ANNBF_ELEM_I64, m, full, &p, err)))
        return rc;
    c->user_ids = p;
    if (full && (rc = annb_sec_check_ids(b, ANNB_KIND_USER_IDS, c->user_ids, m, err))) return rc;
    if ((rc = annb_sec_bulk_f32(b, c, ANNB_KIND_USER_VECS, m * c->meta.dimension, full, &p, err)))
        return rc;
    c->user_vecs = p;
    c->user_count = m;
    if ((rc = annb_keys_sections_load(b, c, ANNB_KIND_USER_KEY_OFFSETS, ANNB_KIND_USER_KEYS, c->user_ids, m,
                        full, &c->user_key_offsets, &c->user_keys, &c->user_key_size, err)))
        return rc;
    if (has_seen) {
        /* Bulk (SPEC 3.11): opening checks sizes only, so that it costs the
         * same at any size (decoding 1M users' lists was hundreds of MB at
         * every open); annb_seen_of checks the list it reads, full all. */
        int is = annbf_section_find(&b->file, ANNB_KIND_SEEN_ROWS);
        if (is < 0)
            return annb_error_set(err, ANNB_E_CORRUPT, "%s: required section '%.4s' is missing",
                                  b->path, ANNB_KIND_SEEN_ROWS);
        if ((rc = annb_sec_bulk(b, c, ANNB_KIND_SEEN_OFFSETS, ANNBF_ELEM_U64, m + 1, full, &p, err)))
            return rc;
        const uint64_t *off = p;
        uint64_t total = b->file.sections[is].elem_count;
        if ((rc = annb_sec_bulk(b, c, ANNB_KIND_SEEN_ROWS, ANNBF_ELEM_U32, total, full, &p, err)))
            return rc;
        const uint32_t *rows = p;
        c->seen_offsets = off;
        c->seen_rows = rows;
        c->seen_count = total;
        if (full && (off[0] != 0 || off[m] != total))
            return annb_sec_corrupt(err, b, ANNB_KIND_SEEN_OFFSETS, "offsets do not span 'SEEN'", 0);
        for (uint64_t u = 0; full && u < m; u++) {
            /* off[m] == total does not bound an offset before it: one
             * past the end with smaller ones after it was read as a list */
            if (off[u + 1] < off[u] || off[u + 1] > total)
                return annb_sec_corrupt(err, b, ANNB_KIND_SEEN_OFFSETS,
                                        "offsets decrease or pass the end of 'SEEN'", u + 1);
            for (uint64_t i = off[u]; i < off[u + 1]; i++) /* ascending: searched by bisection */
                if (rows[i] >= c->meta.count || (i > off[u] && rows[i] <= rows[i - 1]))
                    return annb_sec_corrupt(err, b, ANNB_KIND_SEEN_ROWS,
                                            "item rows of a user out of range or not ascending", i);
        }
    } else if (annbf_section_find(&b->file, ANNB_KIND_SEEN_ROWS) >= 0) {
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: 'SEEN' without 'SOFF'", b->path);
    }
    return ANNB_OK;
}


int annb_seen_of(const annb_content *c, uint64_t u, const uint32_t **rows, size_t *count)
{
    *rows = NULL;
    *count = 0;
    if (!c->seen_offsets || u >= c->user_count) return ANNB_OK;
    uint64_t from = c->seen_offsets[u], to = c->seen_offsets[u + 1];
    if (from > to || to > c->seen_count) return ANNB_E_CORRUPT;
    const uint32_t *r = c->seen_rows + from;
    /* Ascending (searched by bisection) and rows of items: one pass over
     * one user's list, small next to the search it filters. */
    for (uint64_t i = 0; i < to - from; i++)
        if (r[i] >= c->meta.count || (i && r[i] <= r[i - 1])) return ANNB_E_CORRUPT;
    *rows = r;
    *count = (size_t)(to - from);
    return ANNB_OK;
}

/* UIDS, UVEC, SOFF and SEEN raw (read in place: SPEC 3.11), then the
 * users' string IDs. */
int annb_user_sections_write(annbf_writer *w, const int64_t *ids, const float *vecs, uint64_t m,
                             uint32_t d, const uint64_t *seen_offsets, const uint32_t *seen_rows,
                             const annb_keys *keys, const uint32_t *src, annbf_error *fe)
{
    int rc;
    if ((rc = annb_sec_add_raw(w, ANNB_KIND_USER_IDS, ANNBF_ELEM_I64, m, ids, m * 8, fe)) ||
        (rc = annb_sec_add_raw(w, ANNB_KIND_USER_VECS, ANNBF_ELEM_F32, m * d, vecs, m * d * 4, fe)))
        return rc;
    if (seen_offsets &&
        ((rc = annb_sec_add_raw(w, ANNB_KIND_SEEN_OFFSETS, ANNBF_ELEM_U64, m + 1, seen_offsets,
                                (m + 1) * 8, fe)) ||
         (rc = annb_sec_add_raw(w, ANNB_KIND_SEEN_ROWS, ANNBF_ELEM_U32, seen_offsets[m], seen_rows,
                                seen_offsets[m] * 4, fe))))
        return rc;
    if (src)
        return annb_keys_sections_write(w, ANNB_KIND_USER_KEY_OFFSETS, ANNB_KIND_USER_KEYS, keys,
                                        src, m, fe);
    return ANNB_OK;
}
