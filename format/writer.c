/* writer.c - build a bundle in memory and write it (SPEC 2-4; replace.c puts it in place).
 * Deterministic (SPEC 4.2): the same sections give the same bytes (fixed
 * zstd parameters, single-threaded zstd, zeroed padding, no timestamps or
 * paths). Whatever the reader would refuse is refused at add time. */
#include "annb_format.h"
#include "layout.h"
#include "le.h"
#include "replace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#define ANNBF_ZSTD_LEVEL 9 /* fixed: part of what makes bundles reproducible */

typedef struct pending {
    annbf_section s; /* offset is filled in by layout() */
    void *bytes;     /* stored bytes (copied or compressed), at least 1 byte allocated */
} pending;

struct annbf_writer {
    pending sections[ANNBF_MAX_SECTIONS];
    uint32_t count;
    ZSTD_CCtx *cctx; /* made at the first zstd section, reused */
};

int annbf_writer_new(annbf_writer **out, annbf_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? ANNBF_OK : annbf_fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory");
}

void annbf_writer_free(annbf_writer *w)
{
    if (!w) return;
    for (uint32_t i = 0; i < w->count; i++) free(w->sections[i].bytes);
    ZSTD_freeCCtx(w->cctx);
    free(w);
}

/* One zstd frame with its content size and no checksum (the section has
 * its own), single-threaded, parameters fixed by the level alone. */
static int zstd_setup(annbf_writer *w, annbf_error *err)
{
    if (!w->cctx && !(w->cctx = ZSTD_createCCtx()))
        return annbf_fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory (zstd context)");
    ZSTD_CCtx *c = w->cctx;
    size_t r = ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, ANNBF_ZSTD_LEVEL);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0);
    if (ZSTD_isError(r))
        return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "zstd: %s", ZSTD_getErrorName(r));
    return ANNBF_OK;
}

/* Compresses data into a malloc'd frame in *out, or leaves *out NULL when
 * the frame would break the ratio bound of SPEC 3.6 (stored raw instead). */
static int compress(annbf_writer *w, void **out, size_t *out_size, const void *data, size_t size,
                    annbf_error *err)
{
    *out = NULL;
    int rc = zstd_setup(w, err);
    if (rc) return rc;
    size_t cap = ZSTD_compressBound(size);
    void *buf = malloc(cap);
    if (!buf)
        return annbf_fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory compressing %zu bytes",
                          size);
    size_t n = ZSTD_compress2(w->cctx, buf, cap, data, size);
    if (ZSTD_isError(n)) {
        free(buf);
        if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
            return annbf_fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory (zstd)");
        return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "zstd: %s", ZSTD_getErrorName(n));
    }
    if (!annbf_zstd_ratio_ok(size, n)) {
        free(buf);
        return ANNBF_OK;
    }
    *out = buf;
    *out_size = n;
    return ANNBF_OK;
}

/* SPEC 3.1, 3.5: the arguments describe a section the reader accepts. */
static int check_add(const annbf_writer *w, const char kind[4], uint32_t flags, uint32_t codec,
                     uint32_t elem_type, uint64_t elem_count, const void *data, size_t size,
                     annbf_error *err)
{
    for (int i = 0; i < 4; i++)
        if ((unsigned char)kind[i] < 0x20 || (unsigned char)kind[i] > 0x7e)
            return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "section kind: expected 4 "
                              "printable ASCII bytes, found byte 0x%02x", (unsigned char)kind[i]);
    if (w->count == ANNBF_MAX_SECTIONS)
        return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "section '%.4s': a bundle holds at "
                          "most %u sections", kind, ANNBF_MAX_SECTIONS);
    for (uint32_t i = 0; i < w->count; i++)
        if (memcmp(w->sections[i].s.kind, kind, 4) == 0)
            return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "section '%.4s' added twice",
                              kind);
    uint32_t es = annbf_elem_size(elem_type);
    if (codec > ANNBF_CODEC_ZSTD || !es || (flags & ~ANNBF_FLAG_CRITICAL) || (size && !data))
        return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "section '%.4s': codec %u, element "
                          "type %u, flags 0x%x or data NULL not allowed", kind, codec, elem_type,
                          flags);
    if ((uint64_t)size > ANNBF_MAX_DECODED || size % es || elem_count != size / es)
        return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "section '%.4s': expected %llu "
                          "elements of %u bytes (at most 2^40 bytes), found %zu bytes", kind,
                          (unsigned long long)elem_count, es, size);
    return ANNBF_OK;
}

int annbf_writer_add(annbf_writer *w, const char kind[4], uint32_t flags, uint32_t codec,
                     uint32_t elem_type, uint64_t elem_count, const void *data, size_t size,
                     annbf_error *err)
{
    int rc = check_add(w, kind, flags, codec, elem_type, elem_count, data, size, err);
    if (rc) return rc;
    pending *p = &w->sections[w->count];
    memset(p, 0, sizeof *p);
    memcpy(p->s.kind, kind, 4);
    p->s.flags = flags;
    p->s.elem_type = elem_type;
    p->s.elem_count = elem_count;
    p->s.decoded_size = size;
    size_t stored = size;
    if (codec == ANNBF_CODEC_ZSTD && (rc = compress(w, &p->bytes, &stored, data, size, err)))
        return rc;
    if (p->bytes) {
        p->s.codec = ANNBF_CODEC_ZSTD;
    } else {
        p->s.codec = ANNBF_CODEC_RAW;
        stored = size;
        if (!(p->bytes = malloc(size ? size : 1)))
            return annbf_fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory copying section "
                              "'%.4s' (%zu bytes)", kind, size);
        if (size) memcpy(p->bytes, data, size);
    }
    p->s.stored_size = stored;
    p->s.checksum = XXH3_64bits(p->bytes, stored);
    w->count++;
    return ANNBF_OK;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Where the bytes go: the file, and the tee and progress of the commit
 * options. */
typedef struct sink {
    int fd;
    const annbf_commit_opts *opts;
    uint64_t written, total;
} sink;

/* write(2) until all is written, ANNBF_WRITE_CHUNK at most at a time:
 * short writes and EINTR are retried. */
static int write_all(sink *k, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    if (k->opts->tee) k->opts->tee(k->opts->ctx, buf, n);
    while (n) {
        ssize_t m = write(k->fd, p, n < ANNBF_WRITE_CHUNK ? n : ANNBF_WRITE_CHUNK);
        if (m < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += m;
        n -= (size_t)m;
        k->written += (uint64_t)m;
        if (k->opts->progress) k->opts->progress(k->opts->progress_ctx, k->written, k->total);
    }
    return 0;
}

/* Zero bytes from *pos up to `to` (SPEC 3.9, 4.1). */
static int pad_to(sink *k, uint64_t *pos, uint64_t to)
{
    static const uint8_t zeros[4096];
    while (*pos < to) {
        size_t n = to - *pos < sizeof zeros ? (size_t)(to - *pos) : sizeof zeros;
        if (write_all(k, zeros, n)) return -1;
        *pos += n;
    }
    return 0;
}

/* Lays out the sections (SPEC 4.1) and fills the header and table (SPEC 2,
 * 3) into head, which is zeroed and holds both. Returns the file size. */
static uint64_t layout(annbf_writer *w, uint8_t *head)
{
    uint64_t pos = ANNBF_HEADER_SIZE + (uint64_t)w->count * ANNBF_ENTRY_SIZE;
    for (uint32_t i = 0; i < w->count; i++) {
        annbf_section *s = &w->sections[i].s;
        s->offset = align_up(pos, s->codec == ANNBF_CODEC_RAW ? ANNBF_ALIGN_RAW : ANNBF_ALIGN);
        pos = s->offset + s->stored_size;
        uint8_t *e = head + ANNBF_HEADER_SIZE + (size_t)i * ANNBF_ENTRY_SIZE;
        memcpy(e + E_KIND, s->kind, 4);
        le32_put(e + E_FLAGS, s->flags);
        le32_put(e + E_CODEC, s->codec);
        le32_put(e + E_ELEM_TYPE, s->elem_type);
        le64_put(e + E_OFFSET, s->offset);
        le64_put(e + E_STORED, s->stored_size);
        le64_put(e + E_DECODED, s->decoded_size);
        le64_put(e + E_COUNT, s->elem_count);
        le64_put(e + E_CHECKSUM, s->checksum);
    }
    memcpy(head + H_MAGIC, ANNBF_MAGIC, 8);
    le16_put(head + H_MAJOR, ANNBF_MAJOR);
    le16_put(head + H_MINOR, ANNBF_MINOR);
    le32_put(head + H_HEADER_SIZE, ANNBF_HEADER_SIZE);
    le64_put(head + H_FILE_SIZE, pos);
    le32_put(head + H_SECTION_COUNT, w->count);
    le32_put(head + H_ENTRY_SIZE, ANNBF_ENTRY_SIZE);
    le64_put(head + H_TABLE_OFFSET, ANNBF_HEADER_SIZE);
    le64_put(head + H_CHECKSUM, annbf_header_checksum(head, w->count));
    return pos;
}

/* Writes head, then each section after zero padding. -1 with errno set. */
static int write_file(sink *k, const annbf_writer *w, const uint8_t *head, size_t head_size)
{
    uint64_t pos = head_size;
    if (write_all(k, head, head_size)) return -1;
    for (uint32_t i = 0; i < w->count; i++) {
        const pending *p = &w->sections[i];
        if (pad_to(k, &pos, p->s.offset) || write_all(k, p->bytes, (size_t)p->s.stored_size))
            return -1;
        pos += p->s.stored_size;
    }
    return 0;
}

/* SPEC 4.3; replace.c creates and names the file. */
int annbf_writer_commit_opts(annbf_writer *w, const char *path, const annbf_commit_opts *opts,
                             uint64_t *written, annbf_error *err)
{
    static const annbf_commit_opts none = {0};
    if (!opts) opts = &none;
    if (w->count == 0)
        return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "a bundle needs at least one section");
    size_t head_size = ANNBF_HEADER_SIZE + (size_t)w->count * ANNBF_ENTRY_SIZE;
    uint8_t *head = calloc(1, head_size);
    if (!head) return annbf_fail(err, ANNBF_E_NOMEM, UINT64_MAX, "out of memory");
    uint64_t size = layout(w, head);
    annbf_out out;
    int rc = annbf_out_open(&out, path, opts, err);
    if (rc) {
        free(head);
        return rc;
    }
    sink k = {out.fd, opts, 0, size};
    if (write_file(&k, w, head, head_size))
        rc = annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "writing the new file: %s", strerror(errno));
    else if (opts->accept)
        rc = opts->accept(opts->ctx, err);
    if (rc == ANNBF_OK) rc = annbf_out_publish(&out, err);
    if (out.published && written) *written = size;
    annbf_out_close(&out); /* removes the file unless it was published */
    free(head);
    return rc;
}

int annbf_writer_commit(annbf_writer *w, const char *path, uint64_t *written, annbf_error *err)
{
    return annbf_writer_commit_opts(w, path, NULL, written, err);
}
