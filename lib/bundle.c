/* bundle.c - opening, checking and describing a bundle. */
#define _GNU_SOURCE /* O_CLOEXEC */
#include "bundle.h"
#include "faiss_check.h"
#include "regular_file.h"
#include "faiss_glue.h"
#include "csvread.h"
#include "ingest.h"
#include "keys.h"
#include "provenance.h"

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
static int format_error(annb_error *err, const annb_bundle *b, const annbf_error *fe)
{
    if (fe->offset != UINT64_MAX)
        return annb_error_set(err, fe->code, "%s: at byte %llu: %s", b->path,
                              (unsigned long long)fe->offset, fe->message);
    return annb_error_set(err, fe->code, "%s: %s", b->path, fe->message);
}

/* Hands a malloc'd buffer to the content, which frees it when released. */
static int keep_owned(const annb_bundle *b, annb_content *c, void *owned, annb_error *err)
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
static int load_section(const annb_bundle *b, annb_content *c, const char *kind, int required,
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
    if (rc) return format_error(err, b, &fe);
    return owned ? keep_owned(b, c, owned, err) : ANNB_OK;
}

/* A bulk section (SPEC 3.11): used in place without its checksum unless
 * `verify` (annb_verify, ANNB_OPEN_VERIFY_ALL), so that opening costs time
 * independent of the bundle's size. Raw float data locates nothing: damage
 * there changes scores, never what is read. */
static int load_bulk_typed(const annb_bundle *b, annb_content *c, const char *kind, uint32_t type,
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
    return load_section(b, c, kind, 1, type, elem_count, out, err);
}

static int load_bulk(const annb_bundle *b, annb_content *c, const char *kind, uint64_t elem_count,
                     int verify, const void **out, annb_error *err)
{
    return load_bulk_typed(b, c, kind, ANNBF_ELEM_F32, elem_count, verify, out, err);
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
static int corrupt(annb_error *err, const annb_bundle *b, const char *kind, const char *what,
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
static int check_text(annb_error *err, const annb_bundle *b, const char *kind, const char *name,
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
        return corrupt(err, b, kind, what, i);
    }
    return ANNB_OK;
}

/* Catalog sections (SPEC 6.5-6.8): all four or none. */
static int load_catalog(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    uint64_t n = c->meta.count;
    const void *toff, *ttls, *gvoc, *gbit;
    int present = annbf_section_find(&b->file, ANNB_KIND_TITLE_OFFSETS) >= 0;
    int rc;
    if ((rc = load_section(b, c, ANNB_KIND_TITLE_OFFSETS, present, ANNBF_ELEM_U64, n + 1, &toff,
                           err)) ||
        (rc = load_section(b, c, ANNB_KIND_TITLES, present, ANNBF_ELEM_BYTES, UINT64_MAX, &ttls,
                           err)) ||
        (rc = load_section(b, c, ANNB_KIND_GENRE_NAMES, present, ANNBF_ELEM_BYTES, UINT64_MAX,
                           &gvoc, err)))
        return rc;
    if (!present) {
        if (ttls || gvoc || annbf_section_find(&b->file, ANNB_KIND_GENRE_BITS) >= 0)
            return annb_error_set(err, ANNB_E_CORRUPT, "%s: catalog sections without 'TOFF'",
                                  b->path);
        return ANNB_OK;
    }
    /* Titles: offsets strictly ascending from 0 to the blob size, each title
     * NUL-terminated (an empty one: the item has no catalog entry). */
    const uint64_t *off = toff;
    const char *titles = ttls;
    uint64_t tsize = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_TITLES)].decoded_size;
    if (off[0] != 0 || off[n] != tsize)
        return corrupt(err, b, ANNB_KIND_TITLE_OFFSETS, "offsets do not span the titles", 0);
    for (uint64_t i = 0; i < n; i++) {
        /* off[i + 1] <= tsize before it is used: off[n] == tsize does not
         * bound an offset that a later one (out of order) comes under. */
        if (off[i + 1] <= off[i] || off[i + 1] > tsize || titles[off[i + 1] - 1] != '\0')
            return corrupt(err, b, ANNB_KIND_TITLE_OFFSETS, "title offset out of order or title "
                           "not NUL-terminated", i);
        if (full && (rc = check_text(err, b, ANNB_KIND_TITLES, "title of row", i, titles,
                                     off[i], off[i + 1] - 1)))
            return rc;
    }
    /* Genre vocabulary: NUL-terminated names, each non-empty. */
    uint64_t vsize = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_GENRE_NAMES)].decoded_size;
    const char *v = gvoc;
    if (vsize && v[vsize - 1] != '\0')
        return corrupt(err, b, ANNB_KIND_GENRE_NAMES, "vocabulary not NUL-terminated", vsize - 1);
    uint32_t g = 0;
    for (uint64_t i = 0; i < vsize; i++) g += v[i] == '\0';
    if (g > ANNB_MAX_GENRES)
        return corrupt(err, b, ANNB_KIND_GENRE_NAMES, "too many genres", g);
    c->genre_names = malloc((g ? g : 1) * sizeof *c->genre_names);
    if (!c->genre_names) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    for (uint64_t i = 0, k = 0; i < vsize; k++) {
        size_t len = strlen(v + i);
        if (len == 0) return corrupt(err, b, ANNB_KIND_GENRE_NAMES, "empty genre name", k);
        if (full && (rc = check_text(err, b, ANNB_KIND_GENRE_NAMES, "genre", k, v, i, i + len)))
            return rc;
        c->genre_names[k] = v + i;
        i += len + 1;
    }
    c->genre_count = g;
    c->genre_words = (g + 63) / 64;
    if ((rc = load_section(b, c, ANNB_KIND_GENRE_BITS, 1, ANNBF_ELEM_U64, n * c->genre_words,
                           &gbit, err)))
        return rc;
    c->genre_bits = gbit;
    if (g && !(c->genre_rows = annb_genre_rows_new(g)))
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", b->path);
    if (full && g % 64)
        for (uint64_t i = 0; i < n; i++)
            if (c->genre_bits[i * c->genre_words + c->genre_words - 1] >> (g % 64))
                return corrupt(err, b, ANNB_KIND_GENRE_BITS, "bit set past the vocabulary", i);
    c->title_offsets = off;
    c->titles = titles;
    return ANNB_OK;
}

/* IDs strictly ascending, never the reserved ANNB_ID_NONE (SPEC 6.2, 6.9). */
static int check_ids(const annb_bundle *b, const char *kind, const int64_t *ids, uint64_t n,
                     annb_error *err)
{
    for (uint64_t i = 0; i < n; i++)
        if (ids[i] == ANNB_ID_NONE || (i && ids[i] <= ids[i - 1]))
            return corrupt(err, b, kind, "IDs not strictly ascending", i);
    return ANNB_OK;
}

/* String IDs (SPEC 6.19): the offsets and the text of n rows whose IDs are
 * ids, both or neither. Bulk sections: opening checks their sizes only
 * (each use checks what it reads); full checks every key against its ID. */
static int load_keys(const annb_bundle *b, annb_content *c, const char *off_kind,
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
    int rc = load_bulk_typed(b, c, off_kind, ANNBF_ELEM_U64, n + 1, full, &off, err);
    if (rc == ANNB_OK)
        rc = load_bulk_typed(b, c, text_kind, ANNBF_ELEM_BYTES, b->file.sections[it].elem_count,
                             full, &text, err);
    if (rc) return rc;
    uint64_t size = b->file.sections[it].decoded_size, row;
    if (full) {
        const char *why = annb_keys_stored_check(off, text, size, ids, n, &row);
        if (why) return corrupt(err, b, off_kind, why, row);
    }
    *off_out = off;
    *text_out = text;
    *size_out = size;
    return ANNB_OK;
}

/* Users and their interactions (SPEC 6.9-6.12): UIDS and UVEC together;
 * SOFF and SEEN together, and only with users. */
static int load_users(const annb_bundle *b, annb_content *c, int full, annb_error *err)
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
    if ((rc = load_section(b, c, ANNB_KIND_USER_IDS, 1, ANNBF_ELEM_I64, UINT64_MAX, &p, err)))
        return rc;
    uint64_t m = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_USER_IDS)].elem_count;
    if (m == 0 || m > UINT32_MAX)
        return corrupt(err, b, ANNB_KIND_USER_IDS, "user count out of range 1..2^32-1", m);
    c->user_ids = p;
    if ((rc = check_ids(b, ANNB_KIND_USER_IDS, c->user_ids, m, err))) return rc;
    if ((rc = load_bulk(b, c, ANNB_KIND_USER_VECS, m * c->meta.dimension, full, &p, err)))
        return rc;
    c->user_vecs = p;
    c->user_count = m;
    if ((rc = load_keys(b, c, ANNB_KIND_USER_KEY_OFFSETS, ANNB_KIND_USER_KEYS, c->user_ids, m,
                        full, &c->user_key_offsets, &c->user_keys, &c->user_key_size, err)))
        return rc;
    if (has_seen) {
        if ((rc = load_section(b, c, ANNB_KIND_SEEN_OFFSETS, 1, ANNBF_ELEM_U64, m + 1, &p, err)))
            return rc;
        const uint64_t *off = p;
        if ((rc = load_section(b, c, ANNB_KIND_SEEN_ROWS, 1, ANNBF_ELEM_U32, UINT64_MAX, &p, err)))
            return rc;
        const uint32_t *rows = p;
        uint64_t total = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_SEEN_ROWS)].elem_count;
        if (off[0] != 0 || off[m] != total)
            return corrupt(err, b, ANNB_KIND_SEEN_OFFSETS, "offsets do not span 'SEEN'", 0);
        for (uint64_t u = 0; u < m; u++) {
            if (off[u + 1] < off[u])
                return corrupt(err, b, ANNB_KIND_SEEN_OFFSETS, "offsets decrease", u);
            for (uint64_t i = off[u]; i < off[u + 1]; i++) /* ascending: searched by bsearch */
                if (rows[i] >= c->meta.count || (i > off[u] && rows[i] <= rows[i - 1]))
                    return corrupt(err, b, ANNB_KIND_SEEN_ROWS,
                                   "item rows of a user out of range or not ascending", i);
        }
        c->seen_offsets = off;
        c->seen_rows = rows;
    } else if (annbf_section_find(&b->file, ANNB_KIND_SEEN_ROWS) >= 0) {
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: 'SEEN' without 'SOFF'", b->path);
    }
    return ANNB_OK;
}

/* Provenance (SPEC 6.13): optional; when present, checked like any other
 * section (a size bound before anything is allocated, the checksum, then
 * the text rules) and kept with a NUL for annb_bundle_provenance. */
static int load_provenance(const annb_bundle *b, annb_content *c, annb_error *err)
{
    int i = annbf_section_find(&b->file, ANNB_KIND_BUILD);
    if (i < 0) return ANNB_OK;
    uint64_t size = b->file.sections[i].decoded_size, bad;
    const char *what;
    const void *p;
    if (size == 0 || size > ANNB_MAX_PROVENANCE_BYTES)
        return corrupt(err, b, ANNB_KIND_BUILD, "provenance size out of range 1..65536 bytes", 0);
    int rc = load_section(b, c, ANNB_KIND_BUILD, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err);
    if (rc) return rc;
    if (annb_provenance_check(p, (size_t)size, &bad, &what))
        return corrupt(err, b, ANNB_KIND_BUILD, what, bad);
    char *text = malloc((size_t)size + 1);
    if (!text) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    memcpy(text, p, (size_t)size);
    text[size] = '\0';
    if ((rc = keep_owned(b, c, text, err))) return rc;
    c->provenance = text;
    return ANNB_OK;
}

/* Recall and search parameters (SPEC 6.14): optional (format 1.0 bundles
 * have none); decoded within bounds, and "exact" exactly for Flat. */
static int load_tune(const annb_bundle *b, annb_content *c, annb_error *err)
{
    const void *p;
    char msg[200];
    int i = annbf_section_find(&b->file, ANNB_KIND_TUNE);
    if (i < 0) return ANNB_OK;
    int rc = load_section(b, c, ANNB_KIND_TUNE, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err);
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
    if ((rc = load_section(b, c, ANNB_KIND_TUNE_K, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err)))
        return rc;
    s = &b->file.sections[i];
    if ((rc = annb_tunk_decode(&c->tune, p, s->decoded_size, msg, sizeof msg)))
        return annb_error_set(err, rc, "%s: at byte %llu: %s", b->path,
                              (unsigned long long)s->offset, msg);
    return ANNB_OK;
}

/* annb's own IVF-Flat (SPEC 6.15): the four sections together, for index
 * "IVF<nlist>,Flat" with that nlist, every row indexed once. The arrays
 * that say where to read are checksummed and checked (annb_ivf_check)
 * before any search; the vectors are bulk (3.11). */
static int load_ivf(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    static const char *const kinds[] = {ANNB_KIND_IVF_CENTROIDS, ANNB_KIND_IVF_OFFSETS,
                                        ANNB_KIND_IVF_ROWS, ANNB_KIND_IVF_VECS};
    int present = 0, rc;
    for (int i = 0; i < 4; i++) present += annbf_section_find(&b->file, kinds[i]) >= 0;
    uint32_t nlist = 0;
    int native = annb_index_native_ivf(c->meta.index, &nlist);
    if (present == 0) return ANNB_OK;
    if (present != 4 || !native)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: IVF sections: %d of 4, for index '%s'",
                              b->path, present, c->meta.index);
    uint64_t n = c->meta.count, d = c->meta.dimension;
    const void *ct, *of, *rw, *vc;
    if ((rc = load_section(b, c, ANNB_KIND_IVF_OFFSETS, 1, ANNBF_ELEM_U64, (uint64_t)nlist + 1,
                           &of, err)) ||
        (rc = load_section(b, c, ANNB_KIND_IVF_CENTROIDS, 1, ANNBF_ELEM_F32, nlist * d, &ct, err)) ||
        (rc = load_section(b, c, ANNB_KIND_IVF_ROWS, 1, ANNBF_ELEM_U32, n, &rw, err)) ||
        (rc = load_bulk(b, c, ANNB_KIND_IVF_VECS, n * d, full, &vc, err)))
        return rc;
    c->ivf = (annb_ivf){nlist, (uint32_t)d, n, ct, of, rw, vc};
    char why[200];
    if ((rc = annb_ivf_check(&c->ivf, n, why, sizeof why))) {
        int i = annbf_section_find(&b->file, ANNB_KIND_IVF_ROWS);
        return annb_error_set(err, rc, "%s: at byte %llu: IVF lists: %s", b->path,
                              (unsigned long long)b->file.sections[i].offset, why);
    }
    c->has_ivf = 1;
    return ANNB_OK;
}

/* annb's own graph (SPEC 6.18): GENT and GADJ together, for index
 * "Graph<degree>". The entry rows are checked here; the adjacency is bulk
 * (3.11): every neighbour number is bounded where a search reads it. */
static int load_graph(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    static const char *const kinds[] = {ANNB_KIND_GRAPH_ADJ, ANNB_KIND_GRAPH_ENTRY,
                                        ANNB_KIND_GRAPH_CODES, ANNB_KIND_GRAPH_SQ,
                                        ANNB_KIND_GRAPH_ROWS};
    int present = 0, sq8 = 0;
    for (int i = 0; i < 5; i++) present += annbf_section_find(&b->file, kinds[i]) >= 0;
    uint32_t degree = 0;
    int native = annb_index_native_graph(c->meta.index, &degree, &sq8);
    if (present == 0 && !native) return ANNB_OK;
    if (present != (sq8 ? 5 : 2) || !native)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: graph sections: %d of %d, for index '%s'",
                              b->path, present, sq8 ? 5 : 2, c->meta.index);
    uint64_t n = c->meta.count;
    int ie = annbf_section_find(&b->file, ANNB_KIND_GRAPH_ENTRY);
    uint64_t ne = b->file.sections[ie].elem_count;
    if (ne == 0 || ne > ANNB_GRAPH_MAX_ENTRIES || ne > n)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu: GENT: %llu entry rows, "
                              "expected 1..%u and at most the %llu rows", b->path,
                              (unsigned long long)b->file.sections[ie].offset,
                              (unsigned long long)ne, ANNB_GRAPH_MAX_ENTRIES,
                              (unsigned long long)n);
    const void *en, *adj;
    int rc;
    if ((rc = load_section(b, c, ANNB_KIND_GRAPH_ENTRY, 1, ANNBF_ELEM_U32, ne, &en, err)) ||
        (rc = load_bulk_typed(b, c, ANNB_KIND_GRAPH_ADJ, ANNBF_ELEM_U32, n * degree, full, &adj,
                              err)))
        return rc;
    c->graph = (annb_graph){n, c->meta.dimension, degree, (uint32_t)ne, adj, en, c->vecs, NULL,
                            {0}, NULL};
    if (sq8) { /* the parameters checked, the codes bulk: any byte is a valid code */
        const void *sp, *codes, *rows;
        uint32_t d = c->meta.dimension;
        if ((rc = load_section(b, c, ANNB_KIND_GRAPH_SQ, 1, ANNBF_ELEM_F32, 2 * (uint64_t)d, &sp,
                               err)) ||
            (rc = load_bulk_typed(b, c, ANNB_KIND_GRAPH_CODES, ANNBF_ELEM_BYTES, n * d, full,
                                  &codes, err)) ||
            (rc = load_bulk_typed(b, c, ANNB_KIND_GRAPH_ROWS, ANNBF_ELEM_U32, n, full, &rows,
                                  err)))
            return rc;
        c->graph.row_of = rows;
        if (full) { /* annb_verify: GROW is a permutation of the rows */
            uint8_t *hit = calloc(n ? n : 1, 1);
            if (!hit) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
            const uint32_t *r = rows;
            uint64_t bad = n;
            for (uint64_t i = 0; i < n && bad == n; i++) {
                if (r[i] >= n || hit[r[i]]) bad = i;
                else hit[r[i]] = 1;
            }
            free(hit);
            if (bad < n)
                return corrupt(err, b, ANNB_KIND_GRAPH_ROWS,
                               r[bad] >= n ? "row past the rows" : "row at two positions", bad);
        }
        int64_t bad = annb_sq8_check(sp, d);
        if (bad >= 0)
            return corrupt(err, b, ANNB_KIND_GRAPH_SQ,
                           bad < d ? "code offset not finite" : "code step not finite and > 0",
                           (uint64_t)bad);
        c->graph.codes = codes;
        c->graph.sq = (annb_sq8){d, sp, (const float *)sp + d};
    }
    char why[200];
    if ((rc = annb_graph_check(&c->graph, why, sizeof why)))
        return annb_error_set(err, rc, "%s: at byte %llu: graph: %s", b->path,
                              (unsigned long long)b->file.sections[ie].offset, why);
    if (full) { /* annb_verify: every neighbour in range, no row linked to itself */
        const uint32_t *a = adj;
        for (uint64_t i = 0; i < n * degree; i++)
            if ((a[i] >= n && a[i] != ANNB_GRAPH_NONE) || a[i] == i / degree)
                return corrupt(err, b, ANNB_KIND_GRAPH_ADJ,
                               a[i] >= n ? "neighbour row past the rows" : "row linked to itself",
                               i);
    }
    if (!(c->graph_pool = annb_graph_pool_new(n)))
        return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    c->has_graph = 1;
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
    if ((rc = load_section(b, c, ANNB_KIND_META, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err)))
        return rc;
    uint64_t msize = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_META)].decoded_size;
    uint64_t moff = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_META)].offset;
    if ((rc = annb_meta_decode(&c->meta, p, msize, msg, sizeof msg)))
        return annb_error_set(err, rc, "%s: at byte %llu: %s", b->path, (unsigned long long)moff, msg);
    uint64_t n = c->meta.count, d = c->meta.dimension;
    if ((rc = load_section(b, c, ANNB_KIND_IDS, 1, ANNBF_ELEM_I64, n, &p, err))) return rc;
    c->ids = p;
    if ((rc = check_ids(b, ANNB_KIND_IDS, c->ids, n, err))) return rc;
    /* n <= 2^32 and d <= 2^16: n * d cannot overflow. */
    if ((rc = load_bulk(b, c, ANNB_KIND_VECS, n * d, full || b->verify_all, &p, err))) return rc;
    c->vecs = p;
    if (full)
        for (uint64_t i = 0; i < n * d; i++)
            if (!isfinite(c->vecs[i]))
                return corrupt(err, b, ANNB_KIND_VECS, "value not finite", i);
    if ((rc = load_keys(b, c, ANNB_KIND_ITEM_KEY_OFFSETS, ANNB_KIND_ITEM_KEYS, c->ids, n,
                        full || b->verify_all, &c->item_key_offsets, &c->item_keys,
                        &c->item_key_size, err)))
        return rc;
    if ((rc = load_catalog(b, c, full, err))) return rc;
    if ((rc = load_users(b, c, full || b->verify_all, err))) return rc;
    if ((rc = load_tune(b, c, err))) return rc;
    if ((rc = load_ivf(b, c, full || b->verify_all, err))) return rc;
    if ((rc = load_graph(b, c, full || b->verify_all, err))) return rc;
    if ((rc = load_provenance(b, c, err))) return rc;

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
        if ((rc = load_section(b, c, ANNB_KIND_FAISS, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err)))
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
    if (rc) return format_error(err, b, &fe);
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
    if (rc) return format_error(err, b, &fe);
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
    if (row < 0) return NULL;
    const uint64_t *off = b->c.title_offsets;
    return off[row + 1] - off[row] > 1 ? b->c.titles + off[row] : NULL;
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
    /* No catalog: genre_bits is NULL and genre_count 0 (NULL + 0 is UB in C). */
    const uint64_t *bits =
        b->c.genre_bits ? b->c.genre_bits + (uint64_t)row * b->c.genre_words : NULL;
    for (uint32_t g = 0; g < b->c.genre_count; g++) {
        if (!(bits[g / 64] >> (g % 64) & 1)) continue;
        if (len) append(buf, size, &len, "|");
        append(buf, size, &len, b->c.genre_names[g]);
    }
    if (size) buf[len < size ? len : size - 1] = '\0';
    return len > INT32_MAX ? INT32_MAX : (int)len;
}
