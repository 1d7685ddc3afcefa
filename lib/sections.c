/* sections.c - META encoding and the list of known section kinds. */
#include "sections.h"

#include "le.h" /* format/: the same little-endian helpers as the format layer */

#include <stdio.h>
#include <string.h>

/* META layout (SPEC 6.1), little-endian:
 *   0 u32 dimension   4 u32 metric   8 u64 count   16 u32 flags
 *  20 u32 index_len  24..63 reserved, zero   64.. index string (index_len bytes) */
size_t annb_meta_encode(uint8_t *buf, size_t size, const annb_meta *m)
{
    size_t len = strlen(m->index);
    if (size < ANNB_META_SIZE + len) return 0;
    memset(buf, 0, ANNB_META_SIZE);
    le32_put(buf, m->dimension);
    le32_put(buf + 4, (uint32_t)m->metric);
    le64_put(buf + 8, m->count);
    le32_put(buf + 16, m->flags);
    le32_put(buf + 20, (uint32_t)len);
    memcpy(buf + ANNB_META_SIZE, m->index, len);
    return ANNB_META_SIZE + len;
}

int annb_meta_decode(annb_meta *out, const uint8_t *data, size_t size, char *msg, size_t msgsz)
{
    memset(out, 0, sizeof *out);
    if (size < ANNB_META_SIZE) {
        snprintf(msg, msgsz, "META is %zu bytes, expected at least %u", size, ANNB_META_SIZE);
        return ANNB_E_CORRUPT;
    }
    for (size_t i = 24; i < ANNB_META_SIZE; i++)
        if (data[i]) {
            snprintf(msg, msgsz, "META reserved byte %zu is not zero", i);
            return ANNB_E_CORRUPT;
        }
    out->dimension = le32_get(data);
    uint32_t metric = le32_get(data + 4);
    out->count = le64_get(data + 8);
    out->flags = le32_get(data + 16);
    uint32_t len = le32_get(data + 20);
    if (out->dimension == 0 || out->dimension > 65536) {
        snprintf(msg, msgsz, "META dimension %u out of range 1..65536", out->dimension);
        return ANNB_E_CORRUPT;
    }
    if (metric > ANNB_METRIC_COSINE) {
        snprintf(msg, msgsz, "META metric %u unknown (expected 0 ip, 1 l2, 2 cosine)", metric);
        return ANNB_E_CORRUPT;
    }
    out->metric = (annb_metric)metric;
    if (out->count == 0 || out->count > UINT32_MAX) {
        snprintf(msg, msgsz, "META count %llu out of range 1..2^32-1",
                 (unsigned long long)out->count);
        return ANNB_E_CORRUPT;
    }
    if (out->flags & ~ANNB_META_FLAG_NORMALIZED) {
        snprintf(msg, msgsz, "META flags 0x%x has unknown bits", out->flags);
        return ANNB_E_CORRUPT;
    }
    if ((out->metric == ANNB_METRIC_COSINE) != !!(out->flags & ANNB_META_FLAG_NORMALIZED)) {
        snprintf(msg, msgsz, "META normalised flag disagrees with the metric");
        return ANNB_E_CORRUPT;
    }
    if (len == 0 || len > ANNB_MAX_INDEX_DESC || len != size - ANNB_META_SIZE) {
        snprintf(msg, msgsz, "META index string length %u does not fit the section (%zu bytes)",
                 len, size);
        return ANNB_E_CORRUPT;
    }
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = data[ANNB_META_SIZE + i];
        if (c < 0x20 || c > 0x7e) {
            snprintf(msg, msgsz, "META index string byte %u is not printable ASCII", i);
            return ANNB_E_CORRUPT;
        }
        out->index[i] = (char)c;
    }
    out->index[len] = '\0';
    return ANNB_OK;
}

int annb_kind_known(const char kind[4])
{
    static const char *const known[] = {
        ANNB_KIND_META, ANNB_KIND_IDS, ANNB_KIND_VECS, ANNB_KIND_FAISS,
        ANNB_KIND_TITLE_OFFSETS, ANNB_KIND_TITLES, ANNB_KIND_GENRE_NAMES, ANNB_KIND_GENRE_BITS,
        ANNB_KIND_USER_IDS, ANNB_KIND_USER_VECS, ANNB_KIND_SEEN_OFFSETS, ANNB_KIND_SEEN_ROWS,
        ANNB_KIND_BUILD,
    };
    _Static_assert(sizeof known / sizeof known[0] == ANNB_KIND_COUNT, "ANNB_KIND_COUNT");
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (memcmp(kind, known[i], 4) == 0) return 1;
    return 0;
}

int64_t annb_row_in(const int64_t *ids, uint64_t n, int64_t id)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo] == id ? (int64_t)lo : -1;
}
