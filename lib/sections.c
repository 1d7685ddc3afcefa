/* sections.c - META, TUNE and TUNK encoding (SPEC 6.1, 6.14, 6.16), TUNE
 * and TUNK read back and written, and the list of known section kinds. */
#include "sections.h"
#include "section_io.h"

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
    if (out->flags & ~(ANNB_META_FLAG_NORMALIZED | ANNB_META_FLAG_MIPS_L2)) {
        snprintf(msg, msgsz, "META flags 0x%x has unknown bits", out->flags);
        return ANNB_E_CORRUPT;
    }
    if ((out->metric == ANNB_METRIC_COSINE) != !!(out->flags & ANNB_META_FLAG_NORMALIZED)) {
        snprintf(msg, msgsz, "META normalised flag disagrees with the metric");
        return ANNB_E_CORRUPT;
    }
    if ((out->flags & ANNB_META_FLAG_MIPS_L2) && out->metric != ANNB_METRIC_IP) {
        snprintf(msg, msgsz, "META MIPS-to-L2 flag set for metric %s", annb_metric_name(out->metric));
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

/* TUNE layout (SPEC 6.14), little-endian:
 *   0 u32 k   4 u32 queries   8 f64 target   16 f64 recall   24 u32 source
 *  28 u32 nprobe   32 u32 ef_search   36 u32 rerank   40..63 reserved, zero */
static uint64_t f64_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bits_f64(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

size_t annb_tune_encode(uint8_t buf[ANNB_TUNE_SIZE], const annb_tune *t)
{
    memset(buf, 0, ANNB_TUNE_SIZE);
    le32_put(buf, t->k);
    le32_put(buf + 4, t->queries);
    le64_put(buf + 8, f64_bits(t->target));
    le64_put(buf + 16, f64_bits(t->recall));
    le32_put(buf + 24, (uint32_t)t->source);
    le32_put(buf + 28, t->nprobe);
    le32_put(buf + 32, t->ef_search);
    le32_put(buf + 36, t->rerank);
    return ANNB_TUNE_SIZE;
}

int annb_tune_decode(annb_tune *out, const uint8_t *data, size_t size, char *msg, size_t msgsz)
{
    memset(out, 0, sizeof *out);
    if (size != ANNB_TUNE_SIZE) {
        snprintf(msg, msgsz, "TUNE is %zu bytes, expected %u", size, ANNB_TUNE_SIZE);
        return ANNB_E_CORRUPT;
    }
    for (size_t i = 40; i < ANNB_TUNE_SIZE; i++)
        if (data[i]) {
            snprintf(msg, msgsz, "TUNE reserved byte %zu is not zero", i);
            return ANNB_E_CORRUPT;
        }
    out->k = le32_get(data);
    out->queries = le32_get(data + 4);
    out->target = bits_f64(le64_get(data + 8));
    out->recall = bits_f64(le64_get(data + 16));
    uint32_t source = le32_get(data + 24);
    out->nprobe = le32_get(data + 28);
    out->ef_search = le32_get(data + 32);
    out->rerank = le32_get(data + 36);
    /* Bounded like the options that set them: a search sizes buffers by them. */
    if (out->rerank > 1024 || out->nprobe > (1u << 24) || out->ef_search > (1u << 20)) {
        snprintf(msg, msgsz, "TUNE rerank %u, nprobe %u or efSearch %u above 1024, 2^24, 2^20",
                 out->rerank, out->nprobe, out->ef_search);
        return ANNB_E_CORRUPT;
    }
    /* Written as !(x >= lo && x <= hi) so that NaN is refused too. */
    if (source > ANNB_TUNE_USERS) {
        snprintf(msg, msgsz, "TUNE source %u unknown (expected 0 exact, 1 items, 2 users)", source);
        return ANNB_E_CORRUPT;
    }
    out->source = (annb_tune_source)source;
    if (!(out->target > 0 && out->target <= 1) || !(out->recall >= 0 && out->recall <= 1)) {
        snprintf(msg, msgsz, "TUNE target %g or recall %g outside 0..1", out->target, out->recall);
        return ANNB_E_CORRUPT;
    }
    if ((out->source == ANNB_TUNE_EXACT) != (out->k == 0 || out->queries == 0) ||
        (out->source == ANNB_TUNE_EXACT && out->recall != 1)) {
        snprintf(msg, msgsz, "TUNE k %u and queries %u disagree with source %u", out->k,
                 out->queries, source);
        return ANNB_E_CORRUPT;
    }
    return ANNB_OK;
}

/* TUNK's questions field: TUNE's source, with 3 for query vectors given
 * at build (TUNE says 2, "query vectors", for both). */
static uint32_t tunk_questions(const annb_tune *t)
{
    return t->source == ANNB_TUNE_USERS && t->given_queries ? 3 : (uint32_t)t->source;
}

size_t annb_tunk_encode(uint8_t *buf, const annb_tune *t)
{
    size_t size = ANNB_TUNK_HEADER + (size_t)t->nrows * ANNB_TUNK_ROW;
    memset(buf, 0, size);
    le32_put(buf, tunk_questions(t));
    le32_put(buf + 4, t->nrows);
    for (uint32_t i = 0; i < t->nrows; i++) {
        uint8_t *r = buf + ANNB_TUNK_HEADER + (size_t)i * ANNB_TUNK_ROW;
        le32_put(r, t->rows[i].k);
        le32_put(r + 4, t->rows[i].queries);
        le64_put(r + 8, f64_bits(t->rows[i].recall));
        le32_put(r + 16, t->rows[i].nprobe);
        le32_put(r + 20, t->rows[i].ef_search);
    }
    return size;
}

int annb_tunk_decode(annb_tune *t, const uint8_t *data, size_t size, char *msg, size_t msgsz)
{
    if (size < ANNB_TUNK_HEADER || (size - ANNB_TUNK_HEADER) % ANNB_TUNK_ROW) {
        snprintf(msg, msgsz, "TUNK is %zu bytes, expected %u + a multiple of %u", size,
                 ANNB_TUNK_HEADER, ANNB_TUNK_ROW);
        return ANNB_E_CORRUPT;
    }
    uint32_t questions = le32_get(data), nrows = le32_get(data + 4);
    size_t i_bad = 0;
    for (size_t i = 8; i < ANNB_TUNK_HEADER; i++) i_bad |= data[i];
    if (i_bad || nrows == 0 || nrows > ANNB_TUNE_MAX_ROWS ||
        size != ANNB_TUNK_HEADER + (size_t)nrows * ANNB_TUNK_ROW) {
        snprintf(msg, msgsz, "TUNK header: %u rows in %zu bytes (1 to %u rows; reserved zero)",
                 nrows, size, ANNB_TUNE_MAX_ROWS);
        return ANNB_E_CORRUPT;
    }
    if (t->source == ANNB_TUNE_EXACT ||
        !(questions == (uint32_t)t->source || (questions == 3 && t->source == ANNB_TUNE_USERS))) {
        snprintf(msg, msgsz, "TUNK questions %u disagree with TUNE source %u", questions,
                 (unsigned)t->source);
        return ANNB_E_CORRUPT;
    }
    int has_tune_k = 0;
    for (uint32_t i = 0; i < nrows; i++) {
        const uint8_t *r = data + ANNB_TUNK_HEADER + (size_t)i * ANNB_TUNK_ROW;
        annb_tune_row *row = &t->rows[i];
        row->k = le32_get(r);
        row->queries = le32_get(r + 4);
        row->recall = bits_f64(le64_get(r + 8));
        row->nprobe = le32_get(r + 16);
        row->ef_search = le32_get(r + 20);
        int reserved = 0;
        for (int j = 24; j < 32; j++) reserved |= r[j];
        /* Bounded like TUNE's: a search sizes its buffers by them. */
        if (reserved || row->k == 0 || (i && row->k <= t->rows[i - 1].k) || row->queries == 0 ||
            !(row->recall >= 0 && row->recall <= 1) || row->nprobe > (1u << 24) ||
            row->ef_search > (1u << 20) || !row->nprobe != !t->nprobe ||
            !row->ef_search != !t->ef_search) {
            snprintf(msg, msgsz, "TUNK row %u (k %u, recall %g, nprobe %u, efSearch %u) is "
                     "invalid (k ascending, recall in 0..1, parameters of TUNE's kind, reserved zero)",
                     i, row->k, row->recall, row->nprobe, row->ef_search);
            return ANNB_E_CORRUPT;
        }
        if (row->k == t->k) {
            if (row->recall != t->recall || row->nprobe != t->nprobe ||
                row->ef_search != t->ef_search) {
                snprintf(msg, msgsz, "TUNK row for k %u disagrees with TUNE", t->k);
                return ANNB_E_CORRUPT;
            }
            has_tune_k = 1;
        }
    }
    if (!has_tune_k) {
        snprintf(msg, msgsz, "TUNK has no row for TUNE's k %u", t->k);
        return ANNB_E_CORRUPT;
    }
    t->nrows = nrows;
    t->given_queries = questions == 3;
    return ANNB_OK;
}

void annb_recall_from_tune_row(annb_recall_info *out, const annb_tune *t, uint32_t i)
{
    annb_recall_from_tune(out, t);
    out->k = t->rows[i].k;
    out->queries = t->rows[i].queries;
    out->recall = t->rows[i].recall;
    out->nprobe = t->rows[i].nprobe;
    out->ef_search = t->rows[i].ef_search;
}

void annb_tune_params_for_k(const annb_tune *t, size_t k, uint32_t *nprobe, uint32_t *ef_search)
{
    *nprobe = t->nprobe;
    *ef_search = t->ef_search;
    if (t->nrows == 0) return;
    uint32_t i = 0;
    while (i + 1 < t->nrows && t->rows[i].k < k) i++;
    *nprobe = t->rows[i].nprobe;
    *ef_search = t->rows[i].ef_search;
}

void annb_recall_from_tune(annb_recall_info *out, const annb_tune *t)
{
    static const char *const questions[] = {"exact", "items", "users"};
    out->measured = t->source != ANNB_TUNE_EXACT;
    out->questions = t->given_queries ? "queries" : questions[t->source];
    out->k = t->k;
    out->queries = t->queries;
    out->target = t->target;
    out->recall = t->recall;
    out->nprobe = t->nprobe;
    out->ef_search = t->ef_search;
    out->rerank = t->rerank;
}

int annb_index_native_ivf(const char *index, uint32_t *nlist)
{
    /* Digits only (no sign, no spaces), no leading zero, at most 2^24 lists. */
    if (strncmp(index, "IVF", 3) != 0 || index[3] < '1' || index[3] > '9') return 0;
    uint64_t v = 0;
    const char *p = index + 3;
    for (; *p >= '0' && *p <= '9' && v <= (1u << 24); p++) v = v * 10 + (uint64_t)(*p - '0');
    if (v > (1u << 24) || strcmp(p, ",Flat") != 0) return 0;
    *nlist = (uint32_t)v;
    return 1;
}

int annb_index_native_graph(const char *index, uint32_t *degree, int *sq8)
{
    /* Digits only, no leading zero, 1..256 (ANNB_GRAPH_MAX_DEGREE). */
    if (strncmp(index, "Graph", 5) != 0 || index[5] < '1' || index[5] > '9') return 0;
    uint32_t v = 0;
    const char *p = index + 5;
    for (; *p >= '0' && *p <= '9' && v <= 256; p++) v = v * 10 + (uint32_t)(*p - '0');
    if (v > 256 || (*p && strcmp(p, ",SQ8") != 0)) return 0;
    *degree = v;
    *sq8 = *p != '\0';
    return 1;
}

int annb_kind_known(const char kind[4])
{
    static const char *const known[] = {
        ANNB_KIND_META, ANNB_KIND_IDS, ANNB_KIND_VECS, ANNB_KIND_FAISS,
        ANNB_KIND_TITLE_OFFSETS, ANNB_KIND_TITLES, ANNB_KIND_GENRE_NAMES, ANNB_KIND_GENRE_BITS,
        ANNB_KIND_USER_IDS, ANNB_KIND_USER_VECS, ANNB_KIND_SEEN_OFFSETS, ANNB_KIND_SEEN_ROWS,
        ANNB_KIND_BUILD, ANNB_KIND_TUNE, ANNB_KIND_IVF_CENTROIDS, ANNB_KIND_IVF_OFFSETS,
        ANNB_KIND_IVF_ROWS, ANNB_KIND_IVF_VECS, ANNB_KIND_TUNE_K, ANNB_KIND_GRAPH_ADJ,
        ANNB_KIND_GRAPH_ENTRY, ANNB_KIND_GRAPH_CODES, ANNB_KIND_GRAPH_SQ,
        ANNB_KIND_GRAPH_ROWS, ANNB_KIND_ITEM_KEY_OFFSETS, ANNB_KIND_ITEM_KEYS,
        ANNB_KIND_USER_KEY_OFFSETS, ANNB_KIND_USER_KEYS,
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

/* Recall and search parameters (SPEC 6.14): optional (format 1.0 bundles
 * have none); decoded within bounds, and "exact" exactly for Flat. */
int annb_tune_load(const annb_bundle *b, annb_content *c, annb_error *err)
{
    const void *p;
    char msg[200];
    int i = annbf_section_find(&b->file, ANNB_KIND_TUNE);
    if (i < 0) return ANNB_OK;
    int rc = annb_sec_load(b, c, ANNB_KIND_TUNE, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err);
    if (rc) return rc;
    const annbf_section *s = &b->file.sections[i];
    if ((rc = annb_tune_decode(&c->tune, p, s->decoded_size, msg, sizeof msg)))
        return annb_error_set(err, rc, "%s: at byte %llu: %s", b->path,
                              (unsigned long long)s->offset, msg);
    int flat = strcmp(c->meta.index, ANNB_INDEX_FLAT) == 0;
    if (flat != (c->tune.source == ANNB_TUNE_EXACT))
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu: TUNE %s for index '%s'",
                              b->path, (unsigned long long)s->offset,
                              flat ? "measured recall" : "claims exact search", c->meta.index);
    c->has_tune = 1;
    /* TUNK (6.16): the same for several k, agreeing with TUNE. */
    if ((i = annbf_section_find(&b->file, ANNB_KIND_TUNE_K)) < 0) return ANNB_OK;
    if ((rc = annb_sec_load(b, c, ANNB_KIND_TUNE_K, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err)))
        return rc;
    s = &b->file.sections[i];
    if ((rc = annb_tunk_decode(&c->tune, p, s->decoded_size, msg, sizeof msg)))
        return annb_error_set(err, rc, "%s: at byte %llu: %s", b->path,
                              (unsigned long long)s->offset, msg);
    return ANNB_OK;
}


/* TUNE, and TUNK when several k were measured: not critical, raw. */
int annb_tune_sections_write(annbf_writer *w, const annb_tune *t, annbf_error *fe)
{
    uint8_t tbuf[ANNB_TUNE_SIZE], kbuf[ANNB_TUNK_HEADER + ANNB_TUNE_MAX_ROWS * ANNB_TUNK_ROW];
    size_t tsize = annb_tune_encode(tbuf, t);
    size_t ksize = t->nrows ? annb_tunk_encode(kbuf, t) : 0;
    int rc = annbf_writer_add(w, ANNB_KIND_TUNE, 0, ANNBF_CODEC_RAW, ANNBF_ELEM_BYTES, tsize, tbuf,
                              tsize, fe);
    if (rc == ANNB_OK && ksize)
        rc = annbf_writer_add(w, ANNB_KIND_TUNE_K, 0, ANNBF_CODEC_RAW, ANNBF_ELEM_BYTES, ksize,
                              kbuf, ksize, fe);
    return rc;
}

int annb_sec_add_raw(annbf_writer *w, const char *kind, uint32_t type, uint64_t count,
                     const void *data, size_t size, annbf_error *fe)
{
    return annbf_writer_add(w, kind, ANNBF_FLAG_CRITICAL, ANNBF_CODEC_RAW, type, count, data, size,
                            fe);
}
