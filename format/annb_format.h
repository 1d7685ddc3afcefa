/*
 * annb_format.h - bundle bytes: header, section table, codecs, checksums.
 *
 * This layer knows bytes only (format/SPEC.md is the normative text). It
 * depends on libc, zstd and xxhash; never on Faiss, CSV or JSON. The reader
 * is a pure function of (data, size): mapping a file is the caller's job, so
 * tests and fuzzers feed bytes directly.
 *
 * Error codes are the public ANNB_E_* values of lib/annb.h (pinned numbers,
 * repeated here so this layer does not include the library's header).
 */
#ifndef ANNB_FORMAT_H
#define ANNB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define ANNBF_OK 0
#define ANNBF_E_INVALID -1
#define ANNBF_E_NOMEM -2
#define ANNBF_E_IO -3
#define ANNBF_E_NOT_BUNDLE -4
#define ANNBF_E_VERSION -5
#define ANNBF_E_TRUNCATED -6
#define ANNBF_E_CORRUPT -7
#define ANNBF_E_CHECKSUM -8
#define ANNBF_E_LIMIT -13

#define ANNBF_MAGIC "ANNB\r\n\x1a\n" /* 8 bytes */
#define ANNBF_MAJOR 1
#define ANNBF_MINOR 4
#define ANNBF_HEADER_SIZE 128
#define ANNBF_ENTRY_SIZE 64
#define ANNBF_MAX_SECTIONS 256
#define ANNBF_ALIGN 64        /* every section offset */
#define ANNBF_ALIGN_RAW 4096  /* raw sections: usable straight from a mapping */

/* Feature bits known to this version (none yet). */
#define ANNBF_REQUIRED_KNOWN 0u
#define ANNBF_OPTIONAL_KNOWN 0u

/* Section flags */
#define ANNBF_FLAG_CRITICAL 0x1u

/* Codecs */
#define ANNBF_CODEC_RAW 0u
#define ANNBF_CODEC_ZSTD 1u

/* Element types: how decoded bytes are to be read (all little-endian). */
#define ANNBF_ELEM_BYTES 0u
#define ANNBF_ELEM_U32 1u
#define ANNBF_ELEM_U64 2u
#define ANNBF_ELEM_I64 3u
#define ANNBF_ELEM_F32 4u

/* Bytes per element of an element type (1, 4, 8, 8, 4), 0 if unknown. */
uint32_t annbf_elem_size(uint32_t elem_type);

/* Error detail: code, byte offset in the file (or UINT64_MAX if none), and
 * a message naming what was expected and found, without the file name or
 * the offset: the caller prefixes both ("PATH: at byte N: message"). */
typedef struct annbf_error {
    int code;
    uint64_t offset;
    char message[256];
} annbf_error;

typedef struct annbf_section {
    char kind[4];
    uint32_t flags;
    uint32_t codec;
    uint32_t elem_type;
    uint64_t offset;
    uint64_t stored_size;
    uint64_t decoded_size;
    uint64_t elem_count;
    uint64_t checksum; /* XXH3-64, seed 0, of the stored bytes */
} annbf_section;

/* A parsed file: header fields and the decoded section table. The table is
 * owned by the struct (annbf_file_release frees it); data is borrowed. */
typedef struct annbf_file {
    const uint8_t *data;
    size_t size;
    uint16_t major, minor;
    uint64_t file_size;
    uint64_t required_features, optional_features;
    uint32_t section_count;
    uint64_t checksum; /* the header checksum, verified (SPEC 2.5) */
    annbf_section *sections;
} annbf_file;

/* Parses and checks header and section table (SPEC §2, §3): size, magic,
 * version, feature bits, reserved fields, header checksum, every entry
 * (known codec and element type, alignment, in bounds with overflow-safe
 * arithmetic, non-overlapping, zero padding is NOT checked here: see
 * annbf_file_verify). Does not read section payloads. On failure *out is
 * left empty (safe to release). data must stay valid while *out is used.
 * Returns ANNBF_OK, NOT_BUNDLE, TRUNCATED, VERSION, CORRUPT, CHECKSUM (header
 * checksum) or NOMEM. */
int annbf_file_parse(annbf_file *out, const void *data, size_t size, annbf_error *err);
void annbf_file_release(annbf_file *f);

/* Index of the first section of this kind, or -1. */
int annbf_section_find(const annbf_file *f, const char kind[4]);

/* Verifies section i's checksum and decodes it (SPEC 3.8). For a raw
 * section *out points into f->data and *owned is NULL; for zstd, *owned is a
 * malloc'd buffer (caller frees, at least 1 byte even when empty) and
 * *out == *owned. The decoded size equals decoded_size (elem_count elements,
 * checked at parse). Returns ANNBF_OK, CHECKSUM (checked first), CORRUPT
 * (not exactly one frame, content size missing or different, bad frame),
 * NOMEM, or INVALID (no section i). Thread-safe for one f. */
int annbf_section_load(const annbf_file *f, uint32_t i, const void **out, void **owned,
                       annbf_error *err);

/* The bytes of raw section i, NOT checksummed (SPEC 3.11: bulk sections
 * only), or NULL when the section is compressed or there is no section i.
 * In bounds: SPEC 3.4 held at parse. */
const void *annbf_section_unverified(const annbf_file *f, uint32_t i);

/* Full check (SPEC 3.8-3.10), section by section in table order: zero
 * padding before it (CORRUPT), an unknown critical kind (VERSION: `known`
 * returns 0 for it; NULL accepts all kinds), then annbf_section_load. */
int annbf_file_verify(const annbf_file *f, int (*known)(const char kind[4]), annbf_error *err);

/* XXH3-64 of header bytes [0,120) followed by the section table (SPEC 2.5):
 * for the writer, and for tests that forge headers. */
uint64_t annbf_header_checksum(const uint8_t *data, uint32_t section_count);

/* ---------------------------------------------------------------------- */
/* Writer: sections are added in memory, then written in one go to a new
 * file in the target's directory, unnamed (O_TMPFILE) where the file
 * system allows, fsynced, and only then named over the target (SPEC 4.3). */
typedef struct annbf_writer annbf_writer;

/* What a commit may replace, checked before anything is created and again
 * before the new file is named: nothing at path (its directory must
 * exist), or a regular file that is none of the inputs (compared by device
 * and inode, so another path to the same file counts). Refuses a symbolic
 * link, a directory, device, FIFO or socket (ANNBF_E_IO: "is a character
 * device, not a regular file"), and an input (ANNBF_E_INVALID, naming it).
 * inputs may hold NULLs (skipped), and paths that do not exist (skipped:
 * their reader reports them). Never opens path, so a FIFO cannot block. */
int annbf_output_check(const char *path, const char *const *inputs, size_t input_count,
                       annbf_error *err);

/* Options of annbf_writer_commit_opts; zero-initialise, then set. */
typedef struct annbf_commit_opts {
    const char *const *inputs; /* paths the target must not be (annbf_output_check) */
    size_t input_count;
    /* Called with every byte of the file, in order, as it is written (e.g.
     * to hash it); NULL: none. */
    void (*tee)(void *ctx, const void *data, size_t size);
    /* Called once the file is complete, before it is fsynced and named: a
     * non-zero return (an ANNBF_E_* code, with err filled) discards the
     * file, leaves the target untouched and is returned. NULL: accept. */
    int (*accept)(void *ctx, annbf_error *err);
    void *ctx;
    /* 1: use the named-temporary fallback even where O_TMPFILE works (for
     * tests of that path). */
    int named_temp;
    /* Called as the file is written, after each write of at most
     * ANNBF_WRITE_CHUNK bytes: bytes written so far and the file's size,
     * with progress_ctx; NULL: none. */
    void (*progress)(void *progress_ctx, uint64_t written, uint64_t total);
    void *progress_ctx;
} annbf_commit_opts;

/* The largest write(2) a commit makes (and so the most bytes between two
 * calls of annbf_commit_opts.progress). */
#define ANNBF_WRITE_CHUNK (4u << 20)

/* Removes every named temporary file a commit in this process has made
 * and not yet renamed or removed (the O_TMPFILE fallback, and the moment
 * an unnamed file is linked before its rename over an existing target).
 * Async-signal-safe: for a SIGINT/SIGTERM/SIGHUP handler of the program,
 * which then ends the process. The library never installs a handler. */
void annbf_temp_remove_all(void);

int annbf_writer_new(annbf_writer **out, annbf_error *err);
/* Adds a section. data is copied (raw) or compressed (zstd, fixed level)
 * immediately, so the caller may free it on return. */
int annbf_writer_add(annbf_writer *w, const char kind[4], uint32_t flags, uint32_t codec,
                     uint32_t elem_type, uint64_t elem_count, const void *data, size_t size,
                     annbf_error *err);
/* Writes the file atomically (SPEC 4.3), mode 0644 whatever the umask.
 * On failure no temporary file is left and an existing file at path is
 * unchanged; the one exception is a failing fsync of the directory after
 * the rename (ANNBF_E_IO, the new file is in place but maybe not durable).
 * *written (may be NULL) gets the file size. The writer can commit again.
 * opts may be NULL (no inputs, no callbacks); annbf_writer_commit is that. */
int annbf_writer_commit_opts(annbf_writer *w, const char *path, const annbf_commit_opts *opts,
                             uint64_t *written, annbf_error *err);
int annbf_writer_commit(annbf_writer *w, const char *path, uint64_t *written, annbf_error *err);
void annbf_writer_free(annbf_writer *w);

#endif /* ANNB_FORMAT_H */
