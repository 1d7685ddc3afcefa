/* catalog_sections.c - the catalog sections TOFF, TTLS, GVOC, GBIT (SPEC 6.5-6.8):
 * joined to the rows and written, then read back and checked. */
#include "keys.h"
#include "section_io.h"

#include <stdlib.h>
#include <string.h>

static int cmp_entry_ptr_by_id(const void *a, const void *b)
{
    int64_t x = (*(annb_catalog_entry *const *)a)->id, y = (*(annb_catalog_entry *const *)b)->id;
    return (x > y) - (x < y);
}

/* Joins the catalog to the sorted rows and adds TOFF, TTLS, GVOC, GBIT
 * (SPEC 6.5-6.8). Rows without an entry get an empty title and no genres. */
int annb_catalog_sections_write(annbf_writer *w, const int64_t *ids, uint64_t n,
                                const annb_catalog *c, uint64_t *no_entry, uint64_t *no_row,
                                annb_error *err)
{
    int rc = ANNB_E_NOMEM;
    uint32_t words = (c->genre_count + 63) / 64;
    annb_catalog_entry **byid = malloc((c->count ? c->count : 1) * sizeof *byid);
    uint64_t *toff = malloc((n + 1) * sizeof *toff);
    uint64_t *bits = calloc(words ? n * words : 1, sizeof *bits);
    char *titles = NULL, *vocab = NULL;
    size_t tsize = n, vsize = 0; /* every row has at least its NUL */
    annbf_error fe;
    if (!byid || !toff || !bits) goto out;
    for (uint64_t i = 0; i < c->count; i++) byid[i] = &c->entries[i];
    qsort(byid, c->count, sizeof *byid, cmp_entry_ptr_by_id);

    /* Pass 1: match rows to entries (both sorted by ID) and size the blob. */
    annb_catalog_entry **match = calloc(n ? n : 1, sizeof *match);
    if (!match) goto out;
    uint64_t j = 0, matched = 0;
    for (uint64_t i = 0; i < n; i++) {
        while (j < c->count && byid[j]->id < ids[i]) j++;
        if (j < c->count && byid[j]->id == ids[i]) {
            match[i] = byid[j];
            tsize += strlen(byid[j]->title);
            matched++;
        }
    }
    *no_entry = n - matched;
    *no_row = c->count - matched;

    titles = malloc(tsize);
    for (uint32_t g = 0; g < c->genre_count; g++) vsize += strlen(c->genre_names[g]) + 1;
    vocab = malloc(vsize ? vsize : 1);
    if (!titles || !vocab) {
        free(match);
        goto out;
    }
    size_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        toff[i] = pos;
        if (match[i]) {
            size_t len = strlen(match[i]->title);
            memcpy(titles + pos, match[i]->title, len);
            pos += len;
            for (uint32_t k = 0; k < match[i]->genre_count; k++) {
                uint32_t g = c->genre_ids[match[i]->genre_first + k];
                bits[i * words + g / 64] |= 1ull << (g % 64);
            }
        }
        titles[pos++] = '\0';
    }
    toff[n] = pos;
    free(match);
    pos = 0;
    for (uint32_t g = 0; g < c->genre_count; g++) {
        size_t len = strlen(c->genre_names[g]) + 1;
        memcpy(vocab + pos, c->genre_names[g], len);
        pos += len;
    }

    /* All raw: TOFF, TTLS and GBIT are read in place (bulk, SPEC 3.11), so
     * opening does not decode them; GVOC is a few hundred bytes. */
    if ((rc = annbf_writer_add(w, ANNB_KIND_TITLE_OFFSETS, 0, ANNBF_CODEC_RAW, ANNBF_ELEM_U64,
                               n + 1, toff, (n + 1) * sizeof *toff, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_TITLES, 0, ANNBF_CODEC_RAW, ANNBF_ELEM_BYTES, tsize,
                               titles, tsize, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_GENRE_NAMES, 0, ANNBF_CODEC_RAW, ANNBF_ELEM_BYTES,
                               vsize, vocab, vsize, &fe)) ||
        (rc = annbf_writer_add(w, ANNB_KIND_GENRE_BITS, 0, ANNBF_CODEC_RAW, ANNBF_ELEM_U64,
                               n * words, bits, n * words * sizeof *bits, &fe)))
        annb_error_set(err, rc, "adding catalog sections: %s", fe.message);
out:
    if (rc == ANNB_E_NOMEM) annb_error_set(err, rc, "out of memory joining the catalog");
    free(byid);
    free(toff);
    free(bits);
    free(titles);
    free(vocab);
    return rc;
}

/* Catalog sections (SPEC 6.5-6.8): all four or none. TOFF, TTLS and GBIT
 * are bulk (3.11): opening checks their sizes only, so that it costs the
 * same at any n (a pass over 1M titles' offsets, or decoding 46 MB of them,
 * was most of the open); each read checks what it reads (annb_catalog_title)
 * and `full` checks every row. GVOC is small and parsed here: checked. */
int annb_catalog_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    uint64_t n = c->meta.count;
    const void *toff, *ttls, *gvoc, *gbit;
    int it = annbf_section_find(&b->file, ANNB_KIND_TITLES);
    int present = annbf_section_find(&b->file, ANNB_KIND_TITLE_OFFSETS) >= 0;
    int rc;
    if (!present) {
        if (it >= 0 || annbf_section_find(&b->file, ANNB_KIND_GENRE_NAMES) >= 0 ||
            annbf_section_find(&b->file, ANNB_KIND_GENRE_BITS) >= 0)
            return annb_error_set(err, ANNB_E_CORRUPT, "%s: catalog sections without 'TOFF'",
                                  b->path);
        return ANNB_OK;
    }
    if (it < 0)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: required section '%.4s' is missing",
                              b->path, ANNB_KIND_TITLES);
    if ((rc = annb_sec_bulk(b, c, ANNB_KIND_TITLE_OFFSETS, ANNBF_ELEM_U64, n + 1, full, &toff,
                            err)) ||
        (rc = annb_sec_bulk(b, c, ANNB_KIND_TITLES, ANNBF_ELEM_BYTES,
                            b->file.sections[it].elem_count, full, &ttls, err)) ||
        (rc = annb_sec_load(b, c, ANNB_KIND_GENRE_NAMES, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &gvoc,
                            err)))
        return rc;
    /* Titles (full only): offsets strictly ascending from 0 to the blob
     * size, each title NUL-terminated and clean text (an empty one: the item
     * has no catalog entry). */
    const uint64_t *off = toff;
    const char *titles = ttls;
    uint64_t tsize = b->file.sections[it].decoded_size;
    if (full && (off[0] != 0 || off[n] != tsize))
        return annb_sec_corrupt(err, b, ANNB_KIND_TITLE_OFFSETS, "offsets do not span the titles", 0);
    for (uint64_t i = 0; full && i < n; i++) {
        size_t len;
        const char *t = annb_keys_stored(off, titles, tsize, i, &len);
        if (!t)
            return annb_sec_corrupt(err, b, ANNB_KIND_TITLE_OFFSETS, "title offset out of order or title "
                                    "not NUL-terminated", i);
        if ((rc = annb_sec_check_text(err, b, ANNB_KIND_TITLES, "title of row", i, titles,
                                      off[i], off[i] + len)))
            return rc;
    }
    /* Genre vocabulary: NUL-terminated names, each non-empty. */
    uint64_t vsize = b->file.sections[annbf_section_find(&b->file, ANNB_KIND_GENRE_NAMES)].decoded_size;
    const char *v = gvoc;
    if (vsize && v[vsize - 1] != '\0')
        return annb_sec_corrupt(err, b, ANNB_KIND_GENRE_NAMES, "vocabulary not NUL-terminated", vsize - 1);
    uint32_t g = 0;
    for (uint64_t i = 0; i < vsize; i++) g += v[i] == '\0';
    if (g > ANNB_MAX_GENRES)
        return annb_sec_corrupt(err, b, ANNB_KIND_GENRE_NAMES, "too many genres", g);
    c->genre_names = malloc((g ? g : 1) * sizeof *c->genre_names);
    if (!c->genre_names) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    for (uint64_t i = 0, k = 0; i < vsize; k++) {
        size_t len = strlen(v + i);
        if (len == 0) return annb_sec_corrupt(err, b, ANNB_KIND_GENRE_NAMES, "empty genre name", k);
        if (full && (rc = annb_sec_check_text(err, b, ANNB_KIND_GENRE_NAMES, "genre", k, v, i, i + len)))
            return rc;
        c->genre_names[k] = v + i;
        i += len + 1;
    }
    c->genre_count = g;
    c->genre_words = (g + 63) / 64;
    /* GBIT: its size is all that bounds a read (row r's words, a genre
     * below g); bits past the vocabulary are never read, refused by full. */
    if ((rc = annb_sec_bulk(b, c, ANNB_KIND_GENRE_BITS, ANNBF_ELEM_U64, n * c->genre_words, full,
                            &gbit, err)))
        return rc;
    c->genre_bits = gbit;
    if (g && !(c->genre_rows = annb_genre_rows_new(g)))
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", b->path);
    if (full && g % 64)
        for (uint64_t i = 0; i < n; i++)
            if (c->genre_bits[i * c->genre_words + c->genre_words - 1] >> (g % 64))
                return annb_sec_corrupt(err, b, ANNB_KIND_GENRE_BITS, "bit set past the vocabulary", i);
    c->title_offsets = off;
    c->titles = titles;
    c->title_size = tsize;
    return ANNB_OK;
}

const char *annb_catalog_title(const annb_content *c, uint64_t row)
{
    size_t len;
    if (!c->titles || row >= c->meta.count) return NULL;
    const char *t = annb_keys_stored(c->title_offsets, c->titles, c->title_size, row, &len);
    return t && len ? t : NULL;
}

const uint64_t *annb_catalog_genre_words(const annb_content *c, uint64_t row)
{
    /* GBIT holds n x genre_words words (checked at open); none: NULL. */
    if (!c->genre_bits || !c->genre_words || row >= c->meta.count) return NULL;
    return c->genre_bits + row * c->genre_words;
}
