/* provenance.c - the BILD section (SPEC 6.13): what made a bundle, as text.
 *
 * Written by annb_build, read back by annb_bundle_provenance. It records
 * versions, the options that shape the bytes and a digest of each input's
 * content, never a time, path or host: the section is part of the
 * reproducible bytes (SPEC 4.2). */
#include "provenance.h"
#include "section_io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#ifndef ANNB_FAISS_VERSION
#define ANNB_FAISS_VERSION "unknown"
#endif

typedef struct text_buf {
    char data[4096]; /* far more than the lines below can take (index <= 256 bytes) */
    size_t len;
    int overflow;
} text_buf;

static void line(text_buf *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void line(text_buf *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->data + t->len, sizeof t->data - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof t->data - t->len) t->overflow = 1;
    else t->len += (size_t)n;
}

int annb_provenance_make(char **text, size_t *size, const annb_provenance_in *in,
                         annb_error *err)
{
    text_buf t = {.len = 0};
    *text = NULL;
    *size = 0;
    /* The zstd that compresses, which is the one loaded at run time. */
    line(&t, "tool=annb %s\nformat=%d.%d\nfaiss=%s\nzstd=%s\nmetric=%s\nindex=%s\n",
         ANNB_VERSION_STRING, ANNB_FORMAT_VERSION_MAJOR, ANNB_FORMAT_VERSION_MINOR,
         ANNB_FAISS_VERSION, ZSTD_versionString(), in->metric, in->index);
    if (in->shard_count > 1) line(&t, "shard=%u/%u\n", in->shard_index, in->shard_count);
    if (in->auto_choice) line(&t, "auto=%s\n", in->auto_choice);
    const char *const keys[] = {"items", "catalog", "users", "interactions", "tune_vectors"};
    const char *const digests[] = {in->items, in->catalog, in->users, in->interactions,
                                   in->tune_vectors};
    for (int k = 0; k < 5; k++)
        if (digests[k]) line(&t, "%s_content_sha256=%s\n", keys[k], digests[k]);
    uint64_t bad;
    const char *what;
    if (t.overflow || annb_provenance_check(t.data, t.len, &bad, &what) != ANNB_OK)
        return annb_error_set(err, ANNB_E_INVALID, "provenance text does not follow SPEC 6.13");
    if (!(*text = malloc(t.len))) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    memcpy(*text, t.data, t.len);
    *size = t.len;
    return ANNB_OK;
}

/* ---- content digests (SPEC 6.13): little-endian integers, IEEE 754 floats ---- */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "floats are hashed as stored in memory");

static void put_le(annb_sha256 *s, uint64_t v, unsigned bytes)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++) b[i] = (uint8_t)(v >> (8 * i));
    annb_sha256_update(s, b, bytes);
}

static void finish(char hex[ANNB_SHA256_HEX], annb_sha256 *s)
{
    uint8_t d[ANNB_SHA256_SIZE];
    annb_sha256_final(s, d);
    annb_sha256_hex(hex, d);
}

void annb_digest_vectors(char hex[ANNB_SHA256_HEX], const int64_t *ids, const float *vecs,
                         uint64_t n, uint32_t d)
{
    annb_sha256 s;
    annb_sha256_init(&s);
    put_le(&s, n, 8);
    put_le(&s, d, 4);
    for (uint64_t i = 0; i < n; i++) {
        put_le(&s, (uint64_t)ids[i], 8);
        annb_sha256_update(&s, vecs + i * d, (size_t)d * sizeof(float));
    }
    finish(hex, &s);
}

static int cmp_entry_id(const void *a, const void *b)
{
    int64_t x = (*(annb_catalog_entry *const *)a)->id, y = (*(annb_catalog_entry *const *)b)->id;
    return (x > y) - (x < y);
}

int annb_digest_catalog(char hex[ANNB_SHA256_HEX], const annb_catalog *c, annb_error *err)
{
    const annb_catalog_entry **byid = malloc((c->count ? c->count : 1) * sizeof *byid);
    if (!byid) return annb_error_set(err, ANNB_E_NOMEM, "out of memory hashing the catalog");
    for (uint64_t i = 0; i < c->count; i++) byid[i] = &c->entries[i];
    qsort(byid, c->count, sizeof *byid, cmp_entry_id);
    annb_sha256 s;
    annb_sha256_init(&s);
    put_le(&s, c->count, 8);
    for (uint64_t i = 0; i < c->count; i++) {
        const annb_catalog_entry *e = byid[i];
        put_le(&s, (uint64_t)e->id, 8);
        annb_sha256_update(&s, e->title, strlen(e->title) + 1);
        put_le(&s, e->genre_count, 4);
        for (uint32_t g = 0; g < e->genre_count; g++) {
            const char *name = c->genre_names[c->genre_ids[e->genre_first + g]];
            annb_sha256_update(&s, name, strlen(name) + 1);
        }
    }
    free(byid);
    finish(hex, &s);
    return ANNB_OK;
}

void annb_digest_interactions(char hex[ANNB_SHA256_HEX], const annb_interactions *x)
{
    annb_sha256 s;
    annb_sha256_init(&s);
    put_le(&s, x->count, 8);
    for (uint64_t i = 0; i < x->count; i++) {
        put_le(&s, (uint64_t)x->users[i], 8);
        put_le(&s, (uint64_t)x->items[i], 8);
    }
    finish(hex, &s);
}

/* ---- reading it back ---- */

static int is_key_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int bad_at(uint64_t *bad, const char **what, uint64_t at, const char *why)
{
    *bad = at;
    *what = why;
    return ANNB_E_CORRUPT;
}

int annb_provenance_check(const char *text, size_t size, uint64_t *bad, const char **what)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t key_at[ANNB_MAX_PROVENANCE_LINES], key_len[ANNB_MAX_PROVENANCE_LINES];
    size_t lines = 0;
    if (size == 0 || size > ANNB_MAX_PROVENANCE_BYTES)
        return bad_at(bad, what, 0, "provenance size out of range 1..65536 bytes");
    if (s[size - 1] != '\n')
        return bad_at(bad, what, size - 1, "provenance does not end with a line feed");
    for (size_t i = 0; i < size; lines++) {
        if (lines == ANNB_MAX_PROVENANCE_LINES)
            return bad_at(bad, what, i, "provenance has more than 256 lines");
        size_t k = i;
        while (is_key_byte(s[k])) k++;
        if (k == i || s[k] != '=')
            return bad_at(bad, what, k, "expected a key of a-z, 0-9 or _ and then '='");
        for (size_t j = 0; j < lines; j++)
            if (key_len[j] == k - i && memcmp(s + key_at[j], s + i, k - i) == 0)
                return bad_at(bad, what, i, "provenance key appears twice");
        key_at[lines] = i;
        key_len[lines] = k - i;
        /* The value: printable UTF-8 up to the line feed. No control
         * characters, C1 included, so that printing it cannot drive a
         * terminal. The last byte is a line feed, so this loop ends. */
        for (i = k + 1; s[i] != '\n';) {
            int control;
            size_t len = annb_text_char(text + i, size - i, &control); /* lib/text.c's rule */
            if (len == 0) return bad_at(bad, what, i, "provenance is not valid UTF-8");
            if (control) return bad_at(bad, what, i, "provenance holds a control character");
            i += len;
        }
        i++;
    }
    return ANNB_OK;
}

/* Provenance (SPEC 6.13): optional; when present, checked like any other
 * section (a size bound before anything is allocated, the checksum, then
 * the text rules) and kept with a NUL for annb_bundle_provenance. */
int annb_provenance_load(const annb_bundle *b, annb_content *c, annb_error *err)
{
    int i = annbf_section_find(&b->file, ANNB_KIND_BUILD);
    if (i < 0) return ANNB_OK;
    uint64_t size = b->file.sections[i].decoded_size, bad;
    const char *what;
    const void *p;
    if (size == 0 || size > ANNB_MAX_PROVENANCE_BYTES)
        return annb_sec_corrupt(err, b, ANNB_KIND_BUILD, "provenance size out of range 1..65536 bytes", 0);
    int rc = annb_sec_load(b, c, ANNB_KIND_BUILD, 1, ANNBF_ELEM_BYTES, UINT64_MAX, &p, err);
    if (rc) return rc;
    if (annb_provenance_check(p, (size_t)size, &bad, &what))
        return annb_sec_corrupt(err, b, ANNB_KIND_BUILD, what, bad);
    char *text = malloc((size_t)size + 1);
    if (!text) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    memcpy(text, p, (size_t)size);
    text[size] = '\0';
    if ((rc = annb_sec_keep(b, c, text, err))) return rc;
    c->provenance = text;
    return ANNB_OK;
}

