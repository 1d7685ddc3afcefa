/* bundle.c - opening, checking and describing a bundle. */
#define _GNU_SOURCE /* O_CLOEXEC */
#include "bundle.h"
#include "section_io.h"
#include "faiss_check.h"
#include "regular_file.h"
#include "faiss_glue.h"
#include "csvread.h"
#include "ingest.h"
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Formats "PATH: at byte N: message" from a format-layer error. */
int annb_sec_format_error(annb_error *err, const annb_bundle *b, const annbf_error *fe)
{
    if (fe->offset != UINT64_MAX)
        return annb_error_set(err, fe->code, "%s: at byte %llu: %s", b->path,
                              (unsigned long long)fe->offset, fe->message);
    return annb_error_set(err, fe->code, "%s: %s", b->path, fe->message);
}

/* Hands a malloc'd buffer to the content, which frees it when released. */
int annb_sec_keep(const annb_bundle *b, annb_content *c, void *owned, annb_error *err)
{
    if (c->owned_count == sizeof c->owned / sizeof c->owned[0]) {
        free(owned);
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: too many decoded sections", b->path);
    }
    c->owned[c->owned_count++] = owned;
    return ANNB_OK;
}

/* Loads (checksum verified, decoded) the section of this kind and checks its
 * element type and count. Absent: *out = NULL and ANNB_OK unless required. */
int annb_sec_load(const annb_bundle *b, annb_content *c, const char *kind, int required,
                  uint32_t elem_type, uint64_t elem_count, const void **out,
                  annb_error *err)
{
    *out = NULL;
    int i = annbf_section_find(&b->file, kind);
    if (i < 0) {
        if (!required) return ANNB_OK;
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: required section '%.4s' is missing",
                              b->path, kind);
    }
    const annbf_section *s = &b->file.sections[i];
    if (s->elem_type != elem_type || (elem_count != UINT64_MAX && s->elem_count != elem_count))
        return annb_error_set(err, ANNB_E_CORRUPT,
                              "%s: at byte %llu: section '%.4s' has element type %u and count "
                              "%llu, expected type %u and count %llu",
                              b->path, (unsigned long long)s->offset, kind, s->elem_type,
                              (unsigned long long)s->elem_count, elem_type,
                              (unsigned long long)elem_count);
    annbf_error fe;
    void *owned = NULL;
    int rc = annbf_section_load(&b->file, (uint32_t)i, out, &owned, &fe);
    if (rc) return annb_sec_format_error(err, b, &fe);
    return owned ? annb_sec_keep(b, c, owned, err) : ANNB_OK;
}

/* A bulk section (SPEC 3.11): used in place without its checksum unless
 * `verify` (annb_verify, ANNB_OPEN_VERIFY_ALL), so that opening costs time
 * independent of the bundle's size. Raw float data locates nothing: damage
 * there changes scores, never what is read. */
int annb_sec_bulk(const annb_bundle *b, annb_content *c, const char *kind, uint32_t type,
                  uint64_t elem_count, int verify, const void **out, annb_error *err)
{
    int i = annbf_section_find(&b->file, kind);
    const annbf_section *s = i >= 0 ? &b->file.sections[i] : NULL;
    if (!verify && s && s->codec == ANNBF_CODEC_RAW && s->elem_type == type &&
        s->elem_count == elem_count) {
        *out = annbf_section_unverified(&b->file, (uint32_t)i);
        return ANNB_OK;
    }
    /* Verified, or not as expected: load_section checks it and says why. */
    return annb_sec_load(b, c, kind, 1, type, elem_count, out, err);
}

int annb_sec_bulk_f32(const annb_bundle *b, annb_content *c, const char *kind, uint64_t elem_count,
                      int verify, const void **out, annb_error *err)
{
    return annb_sec_bulk(b, c, kind, ANNBF_ELEM_F32, elem_count, verify, out, err);
}

static void content_release(annb_content *c)
{
    if (c->index) faiss_Index_free(c->index);
    annb_graph_pool_free(c->graph_pool);
    annb_genre_rows_free(c->genre_rows);
    for (unsigned i = 0; i < c->owned_count; i++) free(c->owned[i]);
    free((void *)c->genre_names);
    memset(c, 0, sizeof *c);
}

/* A meaning error in element `index` of a section, located by byte: in the
 * file for a raw section, in the decoded bytes for a compressed one. */
int annb_sec_corrupt(annb_error *err, const annb_bundle *b, const char *kind, const char *what,
                     uint64_t index)
{
    int i = annbf_section_find(&b->file, kind);
    const annbf_section *s = i >= 0 ? &b->file.sections[i] : NULL;
    uint64_t size = s && s->elem_count ? s->decoded_size / s->elem_count : 1;
    if (s && s->codec == ANNBF_CODEC_RAW)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu: section '%.4s': %s "
                              "(element %llu)", b->path,
                              (unsigned long long)(s->offset + index * size), kind, what,
                              (unsigned long long)index);
    return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu of section '%.4s' (at byte %llu, "
                          "decoded): %s (element %llu)", b->path,
                          (unsigned long long)(index * size), kind,
                          (unsigned long long)(s ? s->offset : 0), what,
                          (unsigned long long)index);
}

/* Text [from, to) of a bytes section: clean (annb_text_char), as the
 * catalog reader made it. Opening skips this pass (it reads every title),
 * so writers escape or repair what they print; annb_verify refuses. */
int annb_sec_check_text(annb_error *err, const annb_bundle *b, const char *kind, const char *name,
                        uint64_t number, const char *base, uint64_t from, uint64_t to)
{
    char what[160];
    for (uint64_t i = from; i < to;) {
        int control;
        size_t len = annb_text_char(base + i, (size_t)(to - i), &control);
        if (len && !control) {
            i += len;
            continue;
        }
        unsigned cp = len == 2 ? ((unsigned char)base[i + 1] & 0x3fu) | 0x80u : (unsigned char)base[i];
        if (control)
            snprintf(what, sizeof what, "%s %llu holds the control character U+%04X", name,
                     (unsigned long long)number, cp);
        else
            snprintf(what, sizeof what, "%s %llu is not valid UTF-8 (byte 0x%02x)", name,
                     (unsigned long long)number, (unsigned char)base[i]);
        return annb_sec_corrupt(err, b, kind, what, i);
    }
    return ANNB_OK;
}

/* IDs strictly ascending, never the reserved ANNB_ID_NONE (SPEC 6.2, 6.9). */
int annb_sec_check_ids(const annb_bundle *b, const char *kind, const int64_t *ids, uint64_t n,
                       annb_error *err)
{
    for (uint64_t i = 0; i < n; i++)
        if (ids[i] == ANNB_ID_NONE || (i && ids[i] <= ids[i - 1]))
            return annb_sec_corrupt(err, b, kind, "IDs not strictly ascending", i);
    return ANNB_OK;
}

/* annb's walk of the Faiss bytes (SPEC 6.16) before Faiss's reader, which
 * trusts them. An index type the walk does not know passes only with
 * ANNB_OPEN_TRUST_FAISS. */
static int check_faiss(const annb_bundle *b, const void *blob, uint64_t size, uint64_t d,
                       uint64_t n, FaissMetricType metric, annb_error *err)
{
    annb_faiss_expect want = {d, n, metric == METRIC_L2 ? 1 : 0};
    annb_faiss_check_out out = {0};
    int rc = annb_faiss_check(blob, (size_t)size, &want, &out);
    if (rc == ANNB_OK || (out.unknown_type && b->trust_faiss)) return ANNB_OK;
    const annbf_section *s = &b->file.sections[annbf_section_find(&b->file, ANNB_KIND_FAISS)];
    if (s->codec == ANNBF_CODEC_RAW)
        return annb_error_set(err, rc, "%s: FAIS at byte %llu: %s", b->path,
                              (unsigned long long)(s->offset + out.bad_at), out.message);
    return annb_error_set(err, rc, "%s: FAIS at byte %llu of its decoded bytes (section at byte "
                          "%llu): %s", b->path, (unsigned long long)out.bad_at,
                          (unsigned long long)s->offset, out.message);
}

/* Loads what searching needs and checks its meaning. `full` adds the
 * checks that cost a pass over every value (annb_verify). */
static int content_load(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    const void *p;
    char msg[200];
    int rc;
    memset(c, 0, sizeof *c);
    for (uint32_t i = 0; i < b->file.section_count; i++) {
        const annbf_section *s = &b->file.sections[i];
        if ((s->flags & ANNBF_FLAG_CRITICAL) && !annb_kind_known(s->kind))
            return annb_error_set(err, ANNB_E_VERSION,
                                  "%s: at byte %llu: unknown critical section '%.4s' (written by "
                                  "a newer annb?)", b->path, (unsigned long long)s->offset, s->kind);
    }
    if ((rc = annb_sec_load(b, c, ANNB_KIND_META, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err)))
        return rc;
    uint64_t msize = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_META)].decoded_size;
    uint64_t moff = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_META)].offset;
    if ((rc = annb_meta_decode(&c->meta, p, msize, msg, sizeof msg)))
        return annb_error_set(err, rc, "%s: at byte %llu: %s", b->path, (unsigned long long)moff, msg);
    uint64_t n = c->meta.count, d = c->meta.dimension;
    /* IDS is bulk (SPEC 3.11): IDs locate nothing (rows are found by
     * bisection, which stays in bounds over any values), so opening neither
     * hashes nor walks them (8 MB at 1M items, most of an open); unsorted
     * IDs can only give wrong answers. Full checks them. */
    if ((rc = annb_sec_bulk(b, c, ANNB_KIND_IDS, ANNBF_ELEM_I64, n, full || b->verify_all, &p, err)))
        return rc;
    c->ids = p;
    if ((full || b->verify_all) && (rc = annb_sec_check_ids(b, ANNB_KIND_IDS, c->ids, n, err)))
        return rc;
    /* n <= 2^32 and d <= 2^16: n * d cannot overflow. */
    if ((rc = annb_sec_bulk_f32(b, c, ANNB_KIND_VECS, n * d, full || b->verify_all, &p, err))) return rc;
    c->vecs = p;
    if (full)
        for (uint64_t i = 0; i < n * d; i++)
            if (!isfinite(c->vecs[i]))
                return annb_sec_corrupt(err, b, ANNB_KIND_VECS, "value not finite", i);
    if ((rc = annb_keys_sections_load(b, c, ANNB_KIND_ITEM_KEY_OFFSETS, ANNB_KIND_ITEM_KEYS,
                                      c->ids, n, full || b->verify_all, &c->item_key_offsets,
                                      &c->item_keys, &c->item_key_size, err)))
        return rc;
    if ((rc = annb_catalog_sections_load(b, c, full || b->verify_all, err))) return rc;
    if ((rc = annb_user_sections_load(b, c, full || b->verify_all, err))) return rc;
    if ((rc = annb_tune_load(b, c, err))) return rc;
    if ((rc = annb_ivf_sections_load(b, c, full || b->verify_all, err))) return rc;
    if ((rc = annb_graph_sections_load(b, c, full || b->verify_all, err))) return rc;
    if ((rc = annb_provenance_load(b, c, err))) return rc;

    int has_faiss = annbf_section_find(&b->file, ANNB_KIND_FAISS) >= 0;
    int flat = strcmp(c->meta.index, ANNB_INDEX_FLAT) == 0;
    if (flat && (c->meta.flags & ANNB_META_FLAG_MIPS_L2))
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu: MIPS-to-L2 flag on a Flat "
                              "index", b->path, (unsigned long long)moff);
    /* FAIS exactly when the index is neither Flat nor annb's IVF; a bundle
     * of format 1.0 may hold "IVF<n>,Flat" as a FAIS section. */
    int native = c->has_ivf || c->has_graph;
    if (has_faiss == (flat || native))
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu: index '%s' %s a 'FAIS' "
                              "section", b->path, (unsigned long long)moff, c->meta.index,
                              flat || native ? "must not have" : "needs");
    if (native && (c->meta.flags & ANNB_META_FLAG_MIPS_L2))
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu: MIPS-to-L2 flag on annb's "
                              "%s", b->path, (unsigned long long)moff, c->has_ivf ? "IVF" : "graph");
    if (has_faiss) { /* Flat: searched in place by exact.c, nothing to load */
        /* load_section verified the checksum: Faiss never parses unverified bytes. */
        if ((rc = annb_sec_load(b, c, ANNB_KIND_FAISS, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err)))
            return rc;
        uint64_t fsize = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_FAISS)].decoded_size;
        /* MIPS-to-L2 (SPEC 6.4): one more dimension, searched as L2. */
        int mips = !!(c->meta.flags & ANNB_META_FLAG_MIPS_L2);
        FaissMetricType metric = mips ? METRIC_L2 : annb_faiss_metric(c->meta.metric);
        if ((rc = check_faiss(b, p, fsize, d + mips, n, metric, err))) return rc;
        rc = annb_faiss_from_blob(&c->index, p, (size_t)fsize, err);
        if (rc == ANNB_OK &&
            ((uint64_t)faiss_Index_d(c->index) != d + mips ||
             (uint64_t)faiss_Index_ntotal(c->index) != n || faiss_Index_metric_type(c->index) != metric))
            rc = annb_error_set(err, ANNB_E_CORRUPT,
                                "%s: Faiss index (d=%d, n=%lld) disagrees with META (d=%llu, "
                                "n=%llu, metric %s)", b->path, faiss_Index_d(c->index),
                                (long long)faiss_Index_ntotal(c->index), (unsigned long long)d,
                                (unsigned long long)n, annb_metric_name(c->meta.metric));
        if (rc == ANNB_OK && c->has_tune)
            annb_faiss_set_defaults(c->index, c->tune.nprobe, c->tune.ef_search);
    }
    return rc;
}

static annb_bundle *bundle_new(const char *name, unsigned flags)
{
    annb_bundle *b = calloc(1, sizeof *b);
    if (b) {
        snprintf(b->path, sizeof b->path, "%s", name);
        b->structure_only = !!(flags & ANNB_OPEN_STRUCTURE_ONLY);
        b->verify_all = !!(flags & ANNB_OPEN_VERIFY_ALL);
        b->trust_faiss = !!(flags & ANNB_OPEN_TRUST_FAISS);
    }
    return b;
}

/* Parses and checks (data, size), which must outlive b. */
static int bundle_attach(annb_bundle *b, const void *data, size_t size, annb_error *err)
{
    static const uint8_t empty[1];
    annbf_error fe;
    int rc = annbf_file_parse(&b->file, size ? data : empty, size, &fe);
    if (rc) return annb_sec_format_error(err, b, &fe);
    return b->structure_only ? ANNB_OK : content_load(b, &b->c, 0, err);
}

int annb_bundle_from_bytes(annb_bundle **out, const void *data, size_t size, const char *name,
                           unsigned flags, annb_error *err)
{
    *out = NULL;
    annb_bundle *b = bundle_new(name, flags);
    if (!b) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    int rc = bundle_attach(b, data, size, err);
    if (rc) annb_close(b);
    else *out = b;
    return rc;
}

/* Maps the whole file read-only. The mapping outlives the descriptor and
 * keeps the file's data even if the path is renamed over. */
static int map_file(annb_bundle *b, const char *path, annb_error *err)
{
    struct stat st;
    int fd, rc = annb_open_regular(&fd, &st, path, err);
    if (rc) return rc;
    if (st.st_size > 0) {
        b->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (b->map == MAP_FAILED) {
            b->map = NULL;
            rc = annb_error_set(err, ANNB_E_IO, "%s: mmap: %s", path, strerror(errno));
        } else {
            b->map_size = (size_t)st.st_size;
        }
    }
    close(fd);
    return rc;
}

void annb_open_opts_init(annb_open_opts *opts)
{
    if (opts) *opts = (annb_open_opts)ANNB_OPEN_OPTS_INIT;
}

int annb_open(annb_bundle **out, const char *path, const annb_open_opts *opts, annb_error *err)
{
    annb_open_opts defaults = ANNB_OPEN_OPTS_INIT;
    if (!out) return annb_error_set(err, ANNB_E_INVALID, "annb_open: out is NULL");
    *out = NULL;
    if (!path) return annb_error_set(err, ANNB_E_INVALID, "annb_open: path is NULL");
    if (!opts) opts = &defaults;
    if (opts->struct_size < sizeof(annb_open_opts))
        return annb_error_set(err, ANNB_E_INVALID, "annb_open: opts.struct_size too small");
    annb_bundle *b = bundle_new(path, opts->flags);
    if (!b) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    int rc = map_file(b, path, err);
    if (!rc) rc = bundle_attach(b, b->map, b->map_size, err);
    if (rc) annb_close(b);
    else *out = b;
    return rc;
}

void annb_close(annb_bundle *b)
{
    if (!b) return;
    content_release(&b->c);
    annbf_file_release(&b->file);
    if (b->map) munmap(b->map, b->map_size);
    free(b);
}

int annb_verify(const annb_bundle *b, annb_error *err)
{
    if (!b) return annb_error_set(err, ANNB_E_INVALID, "annb_verify: bundle is NULL");
    annbf_error fe;
    int rc = annbf_file_verify(&b->file, annb_kind_known, &fe);
    if (rc) return annb_sec_format_error(err, b, &fe);
    annb_content scratch;
    rc = content_load(b, &scratch, 1, err);
    content_release(&scratch);
    return rc;
}

void annb_bundle_info_get(annb_bundle_info *out, const annb_bundle *b)
{
    memset(out, 0, sizeof *out);
    out->format_major = b->file.major;
    out->format_minor = b->file.minor;
    out->file_size = b->file.file_size;
    out->required_features = b->file.required_features;
    out->optional_features = b->file.optional_features;
    out->section_count = b->file.section_count;
    if (b->structure_only) return;
    out->dimension = b->c.meta.dimension;
    out->count = b->c.meta.count;
    out->metric = b->c.meta.metric;
    out->index = b->c.meta.index;
    out->genre_count = b->c.genre_count;
    out->has_catalog = b->c.titles != NULL;
    out->has_recall = b->c.has_tune;
    if (b->c.has_tune) annb_recall_from_tune(&out->recall, &b->c.tune);
}

int annb_section_info_get(annb_section_info *out, const annb_bundle *b, uint32_t i)
{
    if (!b || !out || i >= b->file.section_count) return ANNB_E_INVALID;
    const annbf_section *s = &b->file.sections[i];
    memset(out, 0, sizeof *out);
    for (int j = 0; j < 4; j++) /* kinds are checked printable by the parser */
        out->kind[j] = s->kind[j];
    out->critical = !!(s->flags & ANNBF_FLAG_CRITICAL);
    out->codec = s->codec == ANNBF_CODEC_ZSTD ? "zstd" : "raw";
    out->offset = s->offset;
    out->stored_size = s->stored_size;
    out->decoded_size = s->decoded_size;
    out->element_count = s->elem_count;
    out->checksum = s->checksum;
    return ANNB_OK;
}

int64_t annb_row_of(const annb_bundle *b, int64_t id)
{
    return annb_row_in(b->c.ids, b->c.meta.count, id);
}

annb_space_view annb_space_of(const annb_bundle *b, annb_space s)
{
    annb_space_view v = {0};
    if (s == ANNB_SPACE_ITEMS) {
        v = (annb_space_view){b->c.meta.count, b->c.ids, b->c.vecs, b->c.index,
                              b->c.has_ivf ? &b->c.ivf : NULL,
                              b->c.has_graph ? &b->c.graph : NULL, b->c.graph_pool,
                              strcmp(b->c.meta.index, ANNB_INDEX_FLAT) == 0,
                              b->c.item_key_offsets, b->c.item_keys, b->c.item_key_size};
    } else if (s == ANNB_SPACE_USERS) {
        v = (annb_space_view){b->c.user_count, b->c.user_ids, b->c.user_vecs, NULL, NULL, NULL,
                              NULL, 1, b->c.user_key_offsets, b->c.user_keys,
                              b->c.user_key_size};
    }
    if (!v.ids) v.count = 0; /* STRUCTURE_ONLY handles have no content */
    return v;
}

uint64_t annb_space_count(const annb_bundle *b, annb_space space)
{
    return b ? annb_space_of(b, space).count : 0;
}

int64_t annb_space_id(const annb_bundle *b, annb_space space, uint64_t row)
{
    annb_space_view v = annb_space_of(b, space);
    return row < v.count ? v.ids[row] : ANNB_ID_NONE;
}

const int64_t *annb_space_ids(const annb_bundle *b, annb_space space)
{
    annb_space_view v = b ? annb_space_of(b, space) : (annb_space_view){0};
    return v.count ? v.ids : NULL;
}

int annb_space_has_keys(const annb_bundle *b, annb_space space)
{
    return b && annb_space_of(b, space).key_offsets != NULL;
}

const char *annb_space_key_at(const annb_bundle *b, annb_space space, uint64_t row, size_t *len)
{
    annb_space_view v = b ? annb_space_of(b, space) : (annb_space_view){0};
    if (!v.key_offsets || row >= v.count) return NULL;
    return annb_keys_stored(v.key_offsets, v.keys, v.key_size, row, len);
}

const char *annb_space_key(const annb_bundle *b, annb_space space, int64_t id, size_t *len)
{
    annb_space_view v = b ? annb_space_of(b, space) : (annb_space_view){0};
    int64_t row = v.key_offsets ? annb_row_in(v.ids, v.count, id) : -1;
    return row < 0 ? NULL : annb_keys_stored(v.key_offsets, v.keys, v.key_size, (uint64_t)row, len);
}

int annb_space_id_of(const annb_bundle *b, annb_space space, const char *text, size_t len,
                     int64_t *id)
{
    if (!id) return ANNB_E_INVALID;
    *id = ANNB_ID_NONE;
    if (!b || (!text && len)) return ANNB_E_INVALID;
    annb_space_view v = annb_space_of(b, space);
    if (v.key_offsets) {
        *id = annb_key_id(text, len);
        size_t klen;
        const char *key = annb_space_key(b, space, *id, &klen);
        return key && klen == len && memcmp(key, text, len) == 0 ? ANNB_OK : ANNB_E_NOT_FOUND;
    }
    /* the protocol's integers: digits and a leading '-', nothing else */
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (i == 0 && text[i] == '-' && len > 1)))
            return ANNB_E_INVALID;
    int64_t value;
    if (len == 0 || annb_id_parse(&value, text, len) || value == ANNB_ID_NONE)
        return ANNB_E_INVALID;
    *id = value;
    return annb_row_in(v.ids, v.count, value) >= 0 ? ANNB_OK : ANNB_E_NOT_FOUND;
}

int annb_vector_get(const annb_bundle *b, annb_space space, int64_t id, float *out)
{
    if (!b || !out) return ANNB_E_INVALID;
    annb_space_view v = annb_space_of(b, space);
    int64_t row = annb_row_in(v.ids, v.count, id);
    if (row < 0) return ANNB_E_NOT_FOUND;
    uint32_t d = b->c.meta.dimension;
    memcpy(out, v.vecs + (uint64_t)row * d, d * sizeof(float));
    return ANNB_OK;
}

uint32_t annb_genre_count(const annb_bundle *b) { return b ? b->c.genre_count : 0; }

const char *annb_genre_name(const annb_bundle *b, uint32_t i)
{
    return b && i < b->c.genre_count ? b->c.genre_names[i] : NULL;
}

const char *annb_bundle_provenance(const annb_bundle *b)
{
    return b ? b->c.provenance : NULL;
}

uint64_t annb_bundle_id(const annb_bundle *b)
{
    /* The stored header checksum (SPEC 2.5) covers the table, which holds
     * every section's checksum. */
    return b ? b->file.checksum : 0;
}

int annb_item_vector(const annb_bundle *b, int64_t id, float *out)
{
    return annb_vector_get(b, ANNB_SPACE_ITEMS, id, out);
}

const char *annb_item_title(const annb_bundle *b, int64_t id)
{
    if (!b || !b->c.titles) return NULL;
    int64_t row = annb_row_of(b, id);
    return row < 0 ? NULL : annb_catalog_title(&b->c, (uint64_t)row);
}

/* Appends src to buf at *len, truncating at size - 1; *len counts all of it. */
static void append(char *buf, size_t size, size_t *len, const char *src)
{
    for (; *src; src++, (*len)++)
        if (*len + 1 < size) buf[*len] = *src;
}

int annb_item_genres(const annb_bundle *b, int64_t id, char *buf, size_t size)
{
    if (!b || (!buf && size)) return ANNB_E_INVALID;
    int64_t row = annb_row_of(b, id);
    if (row < 0) return ANNB_E_NOT_FOUND;
    size_t len = 0;
    /* No catalog: NULL and genre_count 0. */
    const uint64_t *bits = annb_catalog_genre_words(&b->c, (uint64_t)row);
    for (uint32_t g = 0; bits && g < b->c.genre_count; g++) {
        if (!(bits[g / 64] >> (g % 64) & 1)) continue;
        if (len) append(buf, size, &len, "|");
        append(buf, size, &len, b->c.genre_names[g]);
    }
    if (size) buf[len < size ? len : size - 1] = '\0';
    return len > INT32_MAX ? INT32_MAX : (int)len;
}
