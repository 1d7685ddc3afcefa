/* writer.c - build a bundle in memory and write it atomically (SPEC 2-4).
 * Deterministic: the same sections give the same bytes (fixed zstd level,
 * single-threaded zstd, zeroed padding, no timestamps or paths). */
#define _GNU_SOURCE /* mkstemp, fsync, dirname */
#include "annb_format.h"
#include "layout.h"
#include "le.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#define ANNBF_ZSTD_LEVEL 9 /* fixed: part of what makes bundles reproducible */

typedef struct pending {
    annbf_section s;
    void *bytes; /* stored bytes (copied or compressed) */
} pending;

struct annbf_writer {
    pending sections[ANNBF_MAX_SECTIONS];
    uint32_t count;
};

static int fail(annbf_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->offset = UINT64_MAX;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

int annbf_writer_new(annbf_writer **out, annbf_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? ANNBF_OK : fail(err, ANNBF_E_NOMEM, "out of memory");
}

void annbf_writer_free(annbf_writer *w)
{
    if (!w) return;
    for (uint32_t i = 0; i < w->count; i++) free(w->sections[i].bytes);
    free(w);
}

/* Compresses data; returns a malloc'd frame in *out, or NULL when the result
 * would break the ratio bound of SPEC 3.6 (the caller then stores it raw). */
static int compress(void **out, size_t *out_size, const void *data, size_t size, annbf_error *err)
{
    *out = NULL;
    size_t cap = ZSTD_compressBound(size);
    void *buf = malloc(cap);
    if (!buf) return fail(err, ANNBF_E_NOMEM, "out of memory compressing %zu bytes", size);
    size_t n = ZSTD_compress(buf, cap, data, size, ANNBF_ZSTD_LEVEL);
    if (ZSTD_isError(n)) {
        free(buf);
        return fail(err, ANNBF_E_INVALID, "zstd: %s", ZSTD_getErrorName(n));
    }
    if ((uint64_t)size > (uint64_t)n * ANNBF_ZSTD_MAX_RATIO + 4096) {
        free(buf);
        return ANNBF_OK;
    }
    *out = buf;
    *out_size = n;
    return ANNBF_OK;
}

int annbf_writer_add(annbf_writer *w, const char kind[4], uint32_t flags, uint32_t codec,
                     uint32_t elem_type, uint64_t elem_count, const void *data, size_t size,
                     annbf_error *err)
{
    if (w->count == ANNBF_MAX_SECTIONS)
        return fail(err, ANNBF_E_INVALID, "more than %u sections", ANNBF_MAX_SECTIONS);
    for (uint32_t i = 0; i < w->count; i++)
        if (memcmp(w->sections[i].s.kind, kind, 4) == 0)
            return fail(err, ANNBF_E_INVALID, "section '%.4s' added twice", kind);
    if (codec > ANNBF_CODEC_ZSTD || elem_type > ANNBF_ELEM_F32 || (flags & ~ANNBF_FLAG_CRITICAL) ||
        (size && !data))
        return fail(err, ANNBF_E_INVALID, "section '%.4s': bad codec, type or flags", kind);
    /* What the reader refuses (SPEC 3.1, 3.5) is refused here, not written. */
    for (int i = 0; i < 4; i++)
        if ((unsigned char)kind[i] < 0x20 || (unsigned char)kind[i] > 0x7e)
            return fail(err, ANNBF_E_INVALID, "section kind is not four printable ASCII bytes");
    uint64_t es = elem_type == ANNBF_ELEM_BYTES ? 1
                  : elem_type == ANNBF_ELEM_U32 || elem_type == ANNBF_ELEM_F32 ? 4 : 8;
    if ((uint64_t)size > ANNBF_MAX_DECODED || size % es || elem_count != size / es)
        return fail(err, ANNBF_E_INVALID, "section '%.4s': %zu bytes are not %llu elements of "
                    "%llu bytes", kind, size, (unsigned long long)elem_count,
                    (unsigned long long)es);
    pending *p = &w->sections[w->count];
    memset(p, 0, sizeof *p);
    memcpy(p->s.kind, kind, 4);
    p->s.flags = flags;
    p->s.elem_type = elem_type;
    p->s.elem_count = elem_count;
    p->s.decoded_size = size;
    size_t stored = size;
    if (codec == ANNBF_CODEC_ZSTD) {
        int rc = compress(&p->bytes, &stored, data, size, err);
        if (rc) return rc;
    }
    if (p->bytes) {
        p->s.codec = ANNBF_CODEC_ZSTD;
    } else {
        p->s.codec = ANNBF_CODEC_RAW;
        stored = size;
        if (!(p->bytes = malloc(size ? size : 1)))
            return fail(err, ANNBF_E_NOMEM, "out of memory copying '%.4s'", kind);
        if (size) memcpy(p->bytes, data, size);
    }
    p->s.stored_size = stored;
    p->s.checksum = XXH3_64bits(p->bytes, stored);
    w->count++;
    return ANNBF_OK;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Zero bytes from *pos up to `to`. */
static int pad_to(int fd, uint64_t *pos, uint64_t to)
{
    static const uint8_t zeros[4096];
    while (*pos < to) {
        size_t n = to - *pos < sizeof zeros ? (size_t)(to - *pos) : sizeof zeros;
        if (write_all(fd, zeros, n)) return -1;
        *pos += n;
    }
    return 0;
}

/* Lays out the sections and fills the header and table (SPEC 2, 3). */
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

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int annbf_writer_commit(annbf_writer *w, const char *path, uint64_t *written, annbf_error *err)
{
    if (w->count == 0) return fail(err, ANNBF_E_INVALID, "a bundle needs at least one section");
    size_t head_size = ANNBF_HEADER_SIZE + (size_t)w->count * ANNBF_ENTRY_SIZE;
    uint8_t *head = calloc(1, head_size);
    size_t tlen = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(tlen);
    if (!head || !tmp) {
        free(head);
        free(tmp);
        return fail(err, ANNBF_E_NOMEM, "out of memory");
    }
    uint64_t size = layout(w, head);
    snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
    int rc = ANNBF_OK, fd = mkstemp(tmp);
    if (fd < 0) {
        rc = fail(err, ANNBF_E_IO, "cannot create a temporary file beside it: %s", strerror(errno));
        goto out;
    }
    uint64_t pos = head_size;
    int bad = fchmod(fd, 0644) || write_all(fd, head, head_size);
    for (uint32_t i = 0; i < w->count && !bad; i++) {
        const pending *p = &w->sections[i];
        bad = pad_to(fd, &pos, p->s.offset) || write_all(fd, p->bytes, (size_t)p->s.stored_size);
        pos += p->s.stored_size;
    }
    if (bad || fsync(fd)) {
        rc = fail(err, ANNBF_E_IO, "writing %s: %s", tmp, strerror(errno));
        close(fd);
    } else if (close(fd)) {
        rc = fail(err, ANNBF_E_IO, "closing %s: %s", tmp, strerror(errno));
    } else if (rename(tmp, path)) {
        rc = fail(err, ANNBF_E_IO, "renaming %s: %s", tmp, strerror(errno));
    } else if (sync_dir(path)) {
        /* The file is complete and in place; only durability of the rename is in doubt. */
        rc = fail(err, ANNBF_E_IO, "fsync of the directory: %s", strerror(errno));
    }
    if (rc && access(tmp, F_OK) == 0) unlink(tmp); /* not renamed: nothing may be left */
    if (rc == ANNBF_OK && written) *written = size;
out:
    free(head);
    free(tmp);
    return rc;
}
