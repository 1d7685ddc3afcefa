/* reader.c - parse and check bundle bytes (format/SPEC.md sections 2-3).
 * A pure function of (data, size): every size is checked against the real
 * size with overflow-safe arithmetic before a byte it designates is read.
 * Comments "SPEC n.m" name the rule a check enforces. */
#include "annb_format.h"
#include "layout.h"
#include "le.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

typedef unsigned long long ull; /* for printf only */

int annbf_fail(annbf_error *err, int code, uint64_t offset, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->offset = offset;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

uint32_t annbf_elem_size(uint32_t type)
{
    switch (type) {
    case ANNBF_ELEM_BYTES: return 1;
    case ANNBF_ELEM_U32:
    case ANNBF_ELEM_F32: return 4;
    case ANNBF_ELEM_U64:
    case ANNBF_ELEM_I64: return 8;
    default: return 0;
    }
}

uint64_t annbf_header_checksum(const uint8_t *data, uint32_t section_count)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, data, H_CHECKSUM);
    XXH3_64bits_update(&st, data + ANNBF_HEADER_SIZE, (size_t)section_count * ANNBF_ENTRY_SIZE);
    return XXH3_64bits_digest(&st);
}

/* SPEC 2: the header, in the order of the rules. */
static int parse_header(annbf_file *f, const uint8_t *d, size_t size, annbf_error *err)
{
    /* SPEC 2.1: fewer than 8 bytes cannot be identified as a bundle. */
    if (size < 8 || memcmp(d, ANNBF_MAGIC, 8) != 0)
        return annbf_fail(err, ANNBF_E_NOT_BUNDLE, 0, "not an annb bundle (expected the 8-byte "
                          "magic \"ANNB\\r\\n\\x1a\\n\" at the start)");
    if (size < ANNBF_HEADER_SIZE)
        return annbf_fail(err, ANNBF_E_TRUNCATED, size, "truncated: expected a %u-byte header, "
                          "found %zu bytes", ANNBF_HEADER_SIZE, size);
    f->major = le16_get(d + H_MAJOR);
    f->minor = le16_get(d + H_MINOR);
    if (f->major > ANNBF_MAJOR) /* SPEC 2.2 */
        return annbf_fail(err, ANNBF_E_VERSION, H_MAJOR, "format version %u.%u is newer than this "
                          "reader's %u.%u", f->major, f->minor, ANNBF_MAJOR, ANNBF_MINOR);
    if (f->major == 0)
        return annbf_fail(err, ANNBF_E_CORRUPT, H_MAJOR, "format major version 0 is invalid");
    uint32_t hs = le32_get(d + H_HEADER_SIZE), es = le32_get(d + H_ENTRY_SIZE);
    uint64_t to = le64_get(d + H_TABLE_OFFSET);
    if (hs != ANNBF_HEADER_SIZE || es != ANNBF_ENTRY_SIZE || to != ANNBF_HEADER_SIZE) /* SPEC 2.4 */
        return annbf_fail(err, ANNBF_E_CORRUPT, H_HEADER_SIZE, "header size, entry size, table "
                          "offset: expected %u, %u, %u, found %u, %u, %llu", ANNBF_HEADER_SIZE,
                          ANNBF_ENTRY_SIZE, ANNBF_HEADER_SIZE, hs, es, (ull)to);
    f->file_size = le64_get(d + H_FILE_SIZE);
    if (f->file_size > size)
        return annbf_fail(err, ANNBF_E_TRUNCATED, size, "truncated: the header declares %llu "
                          "bytes, found %zu", (ull)f->file_size, size);
    if (f->file_size < size)
        return annbf_fail(err, ANNBF_E_CORRUPT, f->file_size, "%llu bytes after the declared end "
                          "of the file", (ull)(size - f->file_size));
    f->section_count = le32_get(d + H_SECTION_COUNT);
    if (f->section_count == 0 || f->section_count > ANNBF_MAX_SECTIONS)
        return annbf_fail(err, ANNBF_E_CORRUPT, H_SECTION_COUNT, "section count: expected "
                          "1..%u, found %u", ANNBF_MAX_SECTIONS, f->section_count);
    uint64_t table_end = ANNBF_HEADER_SIZE + (uint64_t)f->section_count * ANNBF_ENTRY_SIZE;
    if (table_end > size)
        return annbf_fail(err, ANNBF_E_TRUNCATED, size, "truncated: the section table ends at "
                          "byte %llu, the file at %zu", (ull)table_end, size);
    uint64_t want = le64_get(d + H_CHECKSUM), got = annbf_header_checksum(d, f->section_count);
    if (want != got) /* SPEC 2.5 */
        return annbf_fail(err, ANNBF_E_CHECKSUM, H_CHECKSUM, "header checksum mismatch (expected "
                          "0x%016llx, found 0x%016llx)", (ull)want, (ull)got);
    f->checksum = got;
    for (unsigned i = H_RESERVED; i < H_CHECKSUM; i++)
        if (d[i])
            return annbf_fail(err, ANNBF_E_CORRUPT, i, "reserved header byte: expected 0, "
                              "found 0x%02x", d[i]);
    f->required_features = le64_get(d + H_REQUIRED);
    f->optional_features = le64_get(d + H_OPTIONAL); /* SPEC 2.3: unknown bits ignored */
    uint64_t unknown = f->required_features & ~(uint64_t)ANNBF_REQUIRED_KNOWN;
    if (unknown) /* SPEC 2.3 */
        return annbf_fail(err, ANNBF_E_VERSION, H_REQUIRED, "unknown required feature bits "
                          "0x%llx (a newer writer made this file)", (ull)unknown);
    return ANNBF_OK;
}

/* SPEC 3: one table entry at byte `at`, checked against the file and the
 * end of the previous section (or of the table), min_offset. */
static int parse_entry(annbf_section *s, const uint8_t *e, uint64_t at, uint64_t min_offset,
                       uint64_t file_size, annbf_error *err)
{
    memcpy(s->kind, e + E_KIND, 4);
    for (int i = 0; i < 4; i++) /* SPEC 3.1 */
        if (e[E_KIND + i] < 0x20 || e[E_KIND + i] > 0x7e)
            return annbf_fail(err, ANNBF_E_CORRUPT, at, "section kind: expected 4 printable "
                              "ASCII bytes, found byte 0x%02x", e[E_KIND + i]);
    s->flags = le32_get(e + E_FLAGS);
    s->codec = le32_get(e + E_CODEC);
    s->elem_type = le32_get(e + E_ELEM_TYPE);
    s->offset = le64_get(e + E_OFFSET);
    s->stored_size = le64_get(e + E_STORED);
    s->decoded_size = le64_get(e + E_DECODED);
    s->elem_count = le64_get(e + E_COUNT);
    s->checksum = le64_get(e + E_CHECKSUM);
    const char *k = s->kind;
    uint64_t reserved = le64_get(e + E_RESERVED);
    if (s->flags & ~ANNBF_FLAG_CRITICAL || reserved)
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': flags and reserved: expected "
                          "0x1 at most and 0, found 0x%x and 0x%llx", k, s->flags, (ull)reserved);
    if (s->codec > ANNBF_CODEC_ZSTD)
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': codec: expected 0 (raw) or "
                          "1 (zstd), found %u", k, s->codec);
    uint32_t es = annbf_elem_size(s->elem_type);
    if (!es)
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': element type: expected "
                          "0..4, found %u", k, s->elem_type);
    uint64_t align = s->codec == ANNBF_CODEC_RAW ? ANNBF_ALIGN_RAW : ANNBF_ALIGN;
    if (s->offset % align) /* SPEC 3.2 */
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': offset %llu is not a "
                          "multiple of %llu", k, (ull)s->offset, (ull)align);
    if (s->offset < min_offset) /* SPEC 3.3: sorted, after the table, non-overlapping */
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': expected an offset of at "
                          "least %llu (end of the table or of the previous section), found %llu",
                          k, (ull)min_offset, (ull)s->offset);
    if (s->offset > file_size || s->stored_size > file_size - s->offset) /* SPEC 3.4 */
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s' (%llu bytes at %llu) "
                          "extends past the end of the file (%llu bytes)", k,
                          (ull)s->stored_size, (ull)s->offset, (ull)file_size);
    /* SPEC 3.5; elem_count <= decoded_size <= 2^40 keeps the product exact */
    if (s->decoded_size > ANNBF_MAX_DECODED || s->elem_count > s->decoded_size ||
        s->elem_count * es != s->decoded_size)
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': decoded size: expected %llu "
                          "elements of %u bytes (at most 2^40 bytes), found %llu bytes", k,
                          (ull)s->elem_count, es, (ull)s->decoded_size);
    if (s->codec == ANNBF_CODEC_RAW && s->stored_size != s->decoded_size)
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "raw section '%.4s': stored size: expected "
                          "the decoded size %llu, found %llu", k, (ull)s->decoded_size,
                          (ull)s->stored_size);
    if (s->codec == ANNBF_CODEC_ZSTD && !annbf_zstd_ratio_ok(s->decoded_size, s->stored_size))
        return annbf_fail(err, ANNBF_E_CORRUPT, at, "zstd section '%.4s': %llu decoded bytes "
                          "from %llu stored exceed the bound %u x stored + %u (SPEC 3.6)", k,
                          (ull)s->decoded_size, (ull)s->stored_size, ANNBF_ZSTD_MAX_RATIO,
                          ANNBF_ZSTD_SLACK);
    return ANNBF_OK;
}

int annbf_file_parse(annbf_file *out, const void *data, size_t size, annbf_error *err)
{
    memset(out, 0, sizeof *out);
    annbf_file f = {.data = data, .size = size};
    const uint8_t *d = data;
    int rc = parse_header(&f, d, size, err);
    if (rc) return rc;
    f.sections = calloc(f.section_count, sizeof *f.sections);
    if (!f.sections) return annbf_fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory");
    uint64_t min_offset = ANNBF_HEADER_SIZE + (uint64_t)f.section_count * ANNBF_ENTRY_SIZE;
    for (uint32_t i = 0; i < f.section_count && !rc; i++) {
        uint64_t at = ANNBF_HEADER_SIZE + (uint64_t)i * ANNBF_ENTRY_SIZE;
        annbf_section *s = &f.sections[i];
        if ((rc = parse_entry(s, d + at, at, min_offset, f.file_size, err))) break;
        for (uint32_t j = 0; j < i && !rc; j++) /* SPEC 3.1: a kind appears once */
            if (memcmp(f.sections[j].kind, s->kind, 4) == 0)
                rc = annbf_fail(err, ANNBF_E_CORRUPT, at, "section '%.4s' appears twice (first "
                                "as entry %u)", s->kind, j);
        min_offset = s->offset + s->stored_size; /* <= file_size: SPEC 3.4 held */
    }
    if (rc == ANNBF_OK && min_offset != f.file_size) /* SPEC 3.7 */
        rc = annbf_fail(err, ANNBF_E_CORRUPT, min_offset, "%llu bytes after the last section",
                        (ull)(f.file_size - min_offset));
    if (rc) {
        free(f.sections);
        return rc;
    }
    *out = f;
    return ANNBF_OK;
}

void annbf_file_release(annbf_file *f)
{
    if (!f) return;
    free(f->sections);
    memset(f, 0, sizeof *f);
}

int annbf_section_find(const annbf_file *f, const char kind[4])
{
    for (uint32_t i = 0; i < f->section_count; i++)
        if (memcmp(f->sections[i].kind, kind, 4) == 0) return (int)i;
    return -1;
}

/* SPEC 3.8: the stored bytes of s, checksum verified, as exactly one zstd
 * frame declaring decoded_size, decoded into a malloc'd buffer. */
static int zstd_decode(const annbf_section *s, const uint8_t *p, void **out, annbf_error *err)
{
    size_t n = (size_t)s->stored_size;
    /* Skippable frames, or anything after the frame, would be bytes that are
     * checksummed but never decoded: refused. */
    if (n < 4 || le32_get(p) != ZSTD_MAGICNUMBER || ZSTD_findFrameCompressedSize(p, n) != n)
        return annbf_fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s': expected "
                          "exactly one zstd frame in its %zu bytes", s->kind, n);
    unsigned long long declared = ZSTD_getFrameContentSize(p, n);
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared == ZSTD_CONTENTSIZE_ERROR)
        return annbf_fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s': expected a "
                          "frame content size of %llu, found none", s->kind,
                          (ull)s->decoded_size);
    if (declared != s->decoded_size)
        return annbf_fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s': frame content "
                          "size: expected %llu (the table's), found %llu", s->kind,
                          (ull)s->decoded_size, declared);
    void *buf = malloc(s->decoded_size ? (size_t)s->decoded_size : 1);
    if (!buf)
        return annbf_fail(err, ANNBF_E_NOMEM, s->offset, "out of memory decoding section "
                          "'%.4s' (%llu bytes)", s->kind, (ull)s->decoded_size);
    size_t got = ZSTD_decompress(buf, (size_t)s->decoded_size, p, n);
    if (ZSTD_isError(got) || got != s->decoded_size) {
        free(buf);
        if (ZSTD_isError(got) && ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
            return annbf_fail(err, ANNBF_E_NOMEM, s->offset, "out of memory decoding section "
                              "'%.4s' (zstd)", s->kind);
        if (ZSTD_isError(got))
            return annbf_fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s' does not "
                              "decode: %s", s->kind, ZSTD_getErrorName(got));
        return annbf_fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s': expected %llu "
                          "decoded bytes, found %zu", s->kind, (ull)s->decoded_size, got);
    }
    *out = buf;
    return ANNBF_OK;
}

int annbf_section_load(const annbf_file *f, uint32_t i, const void **out, void **owned,
                       annbf_error *err)
{
    *out = NULL;
    *owned = NULL;
    if (i >= f->section_count)
        return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "no section %u (the file has %u)", i,
                          f->section_count);
    const annbf_section *s = &f->sections[i];
    const uint8_t *p = f->data + s->offset; /* in bounds: SPEC 3.4 held at parse */
    uint64_t sum = XXH3_64bits(p, (size_t)s->stored_size);
    if (sum != s->checksum) /* SPEC 3.8: checksum before anything reads the bytes */
        return annbf_fail(err, ANNBF_E_CHECKSUM, s->offset, "section '%.4s' checksum mismatch "
                          "(expected 0x%016llx, found 0x%016llx)", s->kind, (ull)s->checksum,
                          (ull)sum);
    if (s->codec == ANNBF_CODEC_RAW) {
        *out = p;
        return ANNBF_OK;
    }
    int rc = zstd_decode(s, p, owned, err);
    if (rc == ANNBF_OK) *out = *owned;
    return rc;
}

const void *annbf_section_unverified(const annbf_file *f, uint32_t i)
{
    if (i >= f->section_count || f->sections[i].codec != ANNBF_CODEC_RAW) return NULL;
    return f->data + f->sections[i].offset;
}

/* SPEC 3.9: bytes [from, to) are zero. */
static int zero_between(const annbf_file *f, uint64_t from, uint64_t to, annbf_error *err)
{
    for (uint64_t i = from; i < to; i++)
        if (f->data[i])
            return annbf_fail(err, ANNBF_E_CORRUPT, i, "padding byte: expected 0, found 0x%02x",
                              f->data[i]);
    return ANNBF_OK;
}

int annbf_file_verify(const annbf_file *f, int (*known)(const char kind[4]), annbf_error *err)
{
    uint64_t end = ANNBF_HEADER_SIZE + (uint64_t)f->section_count * ANNBF_ENTRY_SIZE;
    for (uint32_t i = 0; i < f->section_count; i++) {
        const annbf_section *s = &f->sections[i];
        int rc = zero_between(f, end, s->offset, err);
        if (rc) return rc;
        if (known && (s->flags & ANNBF_FLAG_CRITICAL) && !known(s->kind)) /* SPEC 3.10 */
            return annbf_fail(err, ANNBF_E_VERSION, ANNBF_HEADER_SIZE + (uint64_t)i * ANNBF_ENTRY_SIZE,
                              "critical section '%.4s' is of a kind this reader does not know "
                              "(a newer writer made this file)", s->kind);
        const void *p;
        void *owned;
        if ((rc = annbf_section_load(f, i, &p, &owned, err))) return rc;
        free(owned);
        end = s->offset + s->stored_size;
    }
    return ANNBF_OK;
}
