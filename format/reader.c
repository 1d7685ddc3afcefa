/* reader.c - parse and check bundle bytes (format/SPEC.md sections 2-4).
 * A pure function of (data, size): every size is checked against the real
 * size with overflow-safe arithmetic before a byte is touched. */
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

static int fail(annbf_error *err, int code, uint64_t offset, const char *fmt, ...)
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

static uint32_t elem_size(uint32_t type)
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

/* SPEC 2: the header. */
static int parse_header(annbf_file *f, const uint8_t *d, size_t size, annbf_error *err)
{
    /* SPEC 2.1: fewer than 8 bytes cannot be identified as a bundle. */
    if (size < 8 || memcmp(d, ANNBF_MAGIC, 8) != 0)
        return fail(err, ANNBF_E_NOT_BUNDLE, 0, "not an annb bundle (the file does not start "
                    "with the 8-byte magic)");
    if (size < ANNBF_HEADER_SIZE)
        return fail(err, ANNBF_E_TRUNCATED, size, "truncated: file is %zu bytes, shorter than the %u-byte "
                    "header", size, ANNBF_HEADER_SIZE);
    f->major = le16_get(d + H_MAJOR);
    f->minor = le16_get(d + H_MINOR);
    if (f->major > ANNBF_MAJOR) /* SPEC 2.2 */
        return fail(err, ANNBF_E_VERSION, H_MAJOR, "format version %u.%u is newer than this "
                    "reader's %u.%u", f->major, f->minor, ANNBF_MAJOR, ANNBF_MINOR);
    if (f->major == 0)
        return fail(err, ANNBF_E_CORRUPT, H_MAJOR, "format major version 0 is invalid");
    if (le32_get(d + H_HEADER_SIZE) != ANNBF_HEADER_SIZE ||
        le32_get(d + H_ENTRY_SIZE) != ANNBF_ENTRY_SIZE ||
        le64_get(d + H_TABLE_OFFSET) != ANNBF_HEADER_SIZE)
        return fail(err, ANNBF_E_CORRUPT, H_HEADER_SIZE, "header size, entry size or table "
                    "offset differ from %u, %u, %u", ANNBF_HEADER_SIZE, ANNBF_ENTRY_SIZE,
                    ANNBF_HEADER_SIZE);
    f->file_size = le64_get(d + H_FILE_SIZE);
    if (f->file_size > size) /* SPEC 2.4 */
        return fail(err, ANNBF_E_TRUNCATED, size, "truncated: file is %zu bytes, its header declares %llu",
                    size, (unsigned long long)f->file_size);
    if (f->file_size < size)
        return fail(err, ANNBF_E_CORRUPT, f->file_size, "%llu bytes after the declared end of "
                    "the file", (unsigned long long)(size - f->file_size));
    f->section_count = le32_get(d + H_SECTION_COUNT);
    if (f->section_count == 0 || f->section_count > ANNBF_MAX_SECTIONS)
        return fail(err, ANNBF_E_CORRUPT, H_SECTION_COUNT, "section count %u out of range 1..%u",
                    f->section_count, ANNBF_MAX_SECTIONS);
    uint64_t table_end = ANNBF_HEADER_SIZE + (uint64_t)f->section_count * ANNBF_ENTRY_SIZE;
    if (table_end > size)
        return fail(err, ANNBF_E_TRUNCATED, size, "truncated: section table ends at byte %llu, past the "
                    "end of the file", (unsigned long long)table_end);
    uint64_t want = le64_get(d + H_CHECKSUM), got = annbf_header_checksum(d, f->section_count);
    if (want != got) /* SPEC 2.5 */
        return fail(err, ANNBF_E_CHECKSUM, H_CHECKSUM, "header checksum mismatch (stored "
                    "0x%016llx, computed 0x%016llx)", (unsigned long long)want,
                    (unsigned long long)got);
    f->checksum = got;
    for (unsigned i = H_RESERVED; i < H_CHECKSUM; i++)
        if (d[i]) return fail(err, ANNBF_E_CORRUPT, i, "reserved header byte is not zero");
    f->required_features = le64_get(d + H_REQUIRED);
    f->optional_features = le64_get(d + H_OPTIONAL);
    if (f->required_features & ~(uint64_t)ANNBF_REQUIRED_KNOWN) /* SPEC 2.3 */
        return fail(err, ANNBF_E_VERSION, H_REQUIRED, "unknown required feature bits 0x%llx",
                    (unsigned long long)(f->required_features & ~(uint64_t)ANNBF_REQUIRED_KNOWN));
    return ANNBF_OK;
}

/* SPEC 3: one table entry, checked against the file and its predecessor. */
static int parse_entry(annbf_section *s, const uint8_t *e, uint64_t at, uint64_t min_offset,
                       uint64_t file_size, annbf_error *err)
{
    memcpy(s->kind, e + E_KIND, 4);
    for (int i = 0; i < 4; i++)
        if (e[i] < 0x20 || e[i] > 0x7e)
            return fail(err, ANNBF_E_CORRUPT, at, "section kind is not printable ASCII");
    s->flags = le32_get(e + E_FLAGS);
    s->codec = le32_get(e + E_CODEC);
    s->elem_type = le32_get(e + E_ELEM_TYPE);
    s->offset = le64_get(e + E_OFFSET);
    s->stored_size = le64_get(e + E_STORED);
    s->decoded_size = le64_get(e + E_DECODED);
    s->elem_count = le64_get(e + E_COUNT);
    s->checksum = le64_get(e + E_CHECKSUM);
    const char *k = s->kind;
    if (s->flags & ~ANNBF_FLAG_CRITICAL || le64_get(e + E_RESERVED))
        return fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': unknown flags or reserved bits", k);
    if (s->codec > ANNBF_CODEC_ZSTD)
        return fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': unknown codec %u", k, s->codec);
    uint32_t es = elem_size(s->elem_type);
    if (!es)
        return fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': unknown element type %u", k,
                    s->elem_type);
    uint64_t align = s->codec == ANNBF_CODEC_RAW ? ANNBF_ALIGN_RAW : ANNBF_ALIGN;
    if (s->offset % align) /* SPEC 3.2 */
        return fail(err, ANNBF_E_CORRUPT, at, "section '%.4s' offset %llu is not a multiple of "
                    "%llu", k, (unsigned long long)s->offset, (unsigned long long)align);
    if (s->offset < min_offset) /* SPEC 3.3: sorted, after the table, non-overlapping */
        return fail(err, ANNBF_E_CORRUPT, at, "section '%.4s' at %llu overlaps the table or the "
                    "previous section (ends at %llu)", k, (unsigned long long)s->offset,
                    (unsigned long long)min_offset);
    if (s->offset > file_size || s->stored_size > file_size - s->offset) /* SPEC 3.4 */
        return fail(err, ANNBF_E_CORRUPT, at, "section '%.4s' (%llu bytes at %llu) extends past "
                    "the end of the file (%llu bytes)", k, (unsigned long long)s->stored_size,
                    (unsigned long long)s->offset, (unsigned long long)file_size);
    if (s->decoded_size > ANNBF_MAX_DECODED || s->elem_count > s->decoded_size ||
        s->elem_count * es != s->decoded_size) /* SPEC 3.5 */
        return fail(err, ANNBF_E_CORRUPT, at, "section '%.4s': decoded size %llu is not %llu "
                    "elements of %u bytes", k, (unsigned long long)s->decoded_size,
                    (unsigned long long)s->elem_count, es);
    if (s->codec == ANNBF_CODEC_RAW && s->stored_size != s->decoded_size)
        return fail(err, ANNBF_E_CORRUPT, at, "raw section '%.4s': stored size %llu differs from "
                    "decoded size %llu", k, (unsigned long long)s->stored_size,
                    (unsigned long long)s->decoded_size);
    if (s->codec == ANNBF_CODEC_ZSTD &&
        s->decoded_size > s->stored_size * (uint64_t)ANNBF_ZSTD_MAX_RATIO + 4096) /* SPEC 3.6 */
        return fail(err, ANNBF_E_CORRUPT, at, "zstd section '%.4s' claims %llu decoded bytes "
                    "from %llu stored", k, (unsigned long long)s->decoded_size,
                    (unsigned long long)s->stored_size);
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
    if (!f.sections) return fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory");
    uint64_t min_offset = ANNBF_HEADER_SIZE + (uint64_t)f.section_count * ANNBF_ENTRY_SIZE;
    for (uint32_t i = 0; i < f.section_count; i++) {
        uint64_t at = ANNBF_HEADER_SIZE + (uint64_t)i * ANNBF_ENTRY_SIZE;
        annbf_section *s = &f.sections[i];
        if ((rc = parse_entry(s, d + at, at, min_offset, f.file_size, err))) break;
        for (uint32_t j = 0; j < i && !rc; j++) /* SPEC 3.1: a kind appears once */
            if (memcmp(f.sections[j].kind, s->kind, 4) == 0)
                rc = fail(err, ANNBF_E_CORRUPT, at, "section '%.4s' appears twice", s->kind);
        if (rc) break;
        min_offset = s->offset + s->stored_size;
    }
    if (rc == ANNBF_OK && min_offset != f.file_size) /* SPEC 3.7 */
        rc = fail(err, ANNBF_E_CORRUPT, min_offset, "%llu bytes after the last section",
                  (unsigned long long)(f.file_size - min_offset));
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

int annbf_section_load(const annbf_file *f, uint32_t i, const void **out, void **owned,
                       annbf_error *err)
{
    *out = NULL;
    *owned = NULL;
    if (i >= f->section_count) return fail(err, ANNBF_E_INVALID, UINT64_MAX, "no section %u", i);
    const annbf_section *s = &f->sections[i];
    const uint8_t *p = f->data + s->offset;
    uint64_t sum = XXH3_64bits(p, (size_t)s->stored_size);
    if (sum != s->checksum) /* SPEC 3.8 */
        return fail(err, ANNBF_E_CHECKSUM, s->offset, "section '%.4s' checksum mismatch (stored "
                    "0x%016llx, computed 0x%016llx)", s->kind, (unsigned long long)s->checksum,
                    (unsigned long long)sum);
    if (s->codec == ANNBF_CODEC_RAW) {
        *out = p;
        return ANNBF_OK;
    }
    /* SPEC 3: exactly one zstd frame; skippable frames or anything after the
     * frame would be bytes that are checked but never decoded. */
    if (s->stored_size < 4 || le32_get(p) != ZSTD_MAGICNUMBER ||
        ZSTD_findFrameCompressedSize(p, (size_t)s->stored_size) != s->stored_size)
        return fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s' is not exactly one "
                    "zstd frame", s->kind);
    unsigned long long n = ZSTD_getFrameContentSize(p, (size_t)s->stored_size);
    if (n != s->decoded_size)
        return fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s': frame declares %lld "
                    "bytes, the table %llu", s->kind, (long long)n,
                    (unsigned long long)s->decoded_size);
    void *buf = malloc(s->decoded_size ? (size_t)s->decoded_size : 1);
    if (!buf) return fail(err, ANNBF_E_NOMEM, s->offset, "out of memory decoding '%.4s'", s->kind);
    size_t got = ZSTD_decompress(buf, (size_t)s->decoded_size, p, (size_t)s->stored_size);
    if (ZSTD_isError(got) || got != s->decoded_size) {
        free(buf);
        return fail(err, ANNBF_E_CORRUPT, s->offset, "zstd section '%.4s' does not decode: %s",
                    s->kind, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
    }
    *out = buf;
    *owned = buf;
    return ANNBF_OK;
}

static int zero_between(const annbf_file *f, uint64_t from, uint64_t to, annbf_error *err)
{
    for (uint64_t i = from; i < to; i++)
        if (f->data[i]) return fail(err, ANNBF_E_CORRUPT, i, "padding byte is not zero");
    return ANNBF_OK;
}

int annbf_file_verify(const annbf_file *f, int (*known)(const char kind[4]), annbf_error *err)
{
    uint64_t end = ANNBF_HEADER_SIZE + (uint64_t)f->section_count * ANNBF_ENTRY_SIZE;
    for (uint32_t i = 0; i < f->section_count; i++) {
        const annbf_section *s = &f->sections[i];
        int rc = zero_between(f, end, s->offset, err); /* SPEC 3.9 */
        if (rc) return rc;
        if (known && (s->flags & ANNBF_FLAG_CRITICAL) && !known(s->kind)) /* SPEC 3.10 */
            return fail(err, ANNBF_E_VERSION, ANNBF_HEADER_SIZE + (uint64_t)i * ANNBF_ENTRY_SIZE,
                        "unknown critical section '%.4s'", s->kind);
        const void *p;
        void *owned;
        if ((rc = annbf_section_load(f, i, &p, &owned, err))) return rc;
        free(owned);
        end = s->offset + s->stored_size;
    }
    return ANNBF_OK;
}
