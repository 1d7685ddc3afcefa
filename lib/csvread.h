/*
 * csvread.h - streamed text input shared by the ingest readers (internal).
 *
 * annb_source reads a file in 1 MiB blocks (memory does not grow with the
 * file) and skips a UTF-8 byte order mark. The path "-" is standard input.
 * A gzip or zstd stream, told by its magic bytes (1f 8b, 28 b5 2f fd), is
 * decompressed as it is read (concatenated members and frames included);
 * lines, columns and byte offsets then count the decompressed text, and a
 * damaged or truncated stream is ANNB_E_INPUT naming the compressed byte
 * offset. Two readers sit on it:
 *  - annb_csv_read: libcsv in strict mode, with the 1-based physical line
 *    and byte column of every field, for the embeddings and movies.csv;
 *  - annb_source_getline: physical lines, for `::`-separated MovieLens files.
 * Positions count bytes from the start of the line, the BOM not included.
 *
 * Also here, because embeddings.c and catalog.c both need them: the
 * "PATH:LINE:COL: expected ..., found ..." message helper, short quoted
 * excerpts of bad text, ID parsing and duplicate-ID detection (numbers are
 * numparse.h's).
 */
#ifndef ANNB_CSVREAD_H
#define ANNB_CSVREAD_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ANNB_SOURCE_BLOCK (1u << 20)

/* A file read block by block. Fields are read-only for the readers. */
typedef struct annb_source {
    const char *path;     /* for messages (annb_input_name); borrowed */
    FILE *file;
    int is_stdin;         /* file is stdin: not closed */
    int codec;            /* ANNB_CODEC_* */
    unsigned char *raw;   /* compressed (or sniffed) bytes not yet used */
    size_t raw_len, raw_pos;
    int raw_eof;
    uint64_t raw_offset;  /* file offset of raw[0] */
    void *z;              /* z_stream (gzip) */
    void *zd;             /* ZSTD_DStream */
    int frame_open;       /* a gzip member or zstd frame is not finished */
    /* annb_source_watch */
    annb_progress_fn progress;
    void *progress_ctx;
    annb_progress info;
    unsigned char *block; /* ANNB_SOURCE_BLOCK bytes */
    size_t len;           /* bytes in block; 0 once the end of the file is reached */
    size_t pos;           /* next byte not yet consumed */
    uint64_t base;        /* file offset of block[0] */
    /* annb_source_getline state */
    unsigned char *carry; /* a line that crosses a block boundary */
    size_t carry_len, carry_cap;
    uint64_t line;        /* lines returned so far */
    int after_cr;         /* the last line ended with CR: skip a following LF */
} annb_source;

enum { ANNB_CODEC_NONE = 0, ANNB_CODEC_GZIP = 1, ANNB_CODEC_ZSTD = 2 };

/* The name of an input in messages: "<stdin>" for "-", else path. */
const char *annb_input_name(const char *path);

/* Opens path ("-": stdin) and reads the first block, skipping a BOM.
 * ANNB_E_IO / ANNB_E_NOMEM, ANNB_E_INPUT (a broken compressed stream). */
int annb_source_open(annb_source *s, const char *path, annb_error *err);
/* Reports progress from now on: fn(ctx, info) after each block read and
 * once at the end of the file (finished). phase and path are borrowed. */
void annb_source_watch(annb_source *s, annb_progress_fn fn, void *ctx, const char *phase,
                       const char *path);
/* Reads the next block (s->len == 0 at end of file). ANNB_E_IO on a read
 * error, ANNB_E_INPUT on a damaged or truncated compressed stream. */
int annb_source_fill(annb_source *s, annb_error *err);
void annb_source_close(annb_source *s);
/* Whether the first line (as far as the first block holds it) contains
 * needle. Only meaningful right after annb_source_open. */
int annb_source_first_line_has(const annb_source *s, const char *needle);

typedef struct annb_line {
    const char *data; /* without the line break; valid until the next call */
    size_t len;
    uint64_t number;  /* 1-based physical line */
} annb_line;

/* Next physical line (LF, CRLF or CR ends a line). Returns 1 with a line, 0
 * at end of file, or ANNB_E_LIMIT (a line over ANNB_MAX_FIELD_BYTES),
 * ANNB_E_IO, ANNB_E_NOMEM. */
int annb_source_getline(annb_source *s, annb_line *line, annb_error *err);

/* ---- strict CSV with positions ---- */

typedef struct annb_csv_field {
    const char *data; /* unquoted content, NUL-terminated, never holds a NUL */
    size_t len;
    uint64_t line;    /* position of the field's first byte (its opening */
    uint64_t col;     /* quote when quoted, leading blanks skipped) */
    uint64_t row;     /* 0-based row; row 0 is the header */
    uint32_t index;   /* 0-based field within the row */
    int quoted;       /* content starts at col + 1 */
} annb_csv_field;

typedef struct annb_csv_row {
    uint64_t row;      /* 0-based, as in annb_csv_field */
    uint64_t line;     /* line of the row's first field */
    uint32_t fields;   /* how many fields it had */
    uint64_t end_line; /* where it ended: its line break, or the end of file */
    uint64_t end_col;
} annb_csv_row;

/* Callbacks return ANNB_OK or a code (with err filled); a code stops the read. */
typedef struct annb_csv_handler {
    int (*field)(void *ctx, const annb_csv_field *f, annb_error *err);
    int (*row)(void *ctx, const annb_csv_row *r, annb_error *err);
    void *ctx;
    const char *header; /* the expected header, for the message on an empty file */
} annb_csv_handler;

/*
 * Streams the rest of s through libcsv (CSV_STRICT | CSV_STRICT_FINI) with
 * delimiter delim; the first row is a header and at least one row must
 * follow it. Errors, each as "PATH:LINE:COL: ...": an empty file, a header
 * and no rows, malformed quoting (at the byte libcsv stopped on), an
 * unterminated quote (at the field's opening quote), a field over
 * ANNB_MAX_FIELD_BYTES (ANNB_E_LIMIT), a NUL byte, a blank line followed by
 * more rows. Blank (empty or all space/tab) lines at the end of the file
 * are skipped. Lines end with LF, CRLF or CR.
 */
int annb_csv_read(annb_source *s, unsigned char delim, const annb_csv_handler *h, annb_error *err);

/*
 * A shortcut past libcsv for rows of a shape the caller knows. Called where
 * a data row starts (after the header, no blank line pending) with p[0..n)
 * the bytes from there to the end of the block and line the row's line.
 * Returns 0 to decline: the row is then read as usual, through h->field and
 * h->row. Or it reads the row itself and returns its length up to its line
 * break, which must be p[len] (LF or CR; a CRLF's LF is skipped as usual):
 * the row then counts as read, with no other callback. It may only take
 * rows that h->field and h->row would accept, with the same effect;
 * anything doubtful it declines, so that every error comes from one path.
 */
typedef size_t (*annb_csv_fast_row)(void *ctx, const char *p, size_t n, uint64_t line);

/* annb_csv_read with a shortcut (NULL: none), called with h->ctx. */
int annb_csv_read_fast(annb_source *s, unsigned char delim, const annb_csv_handler *h,
                       annb_csv_fast_row fast_row, annb_error *err);

/* ---- messages ---- */

/* Fills err with code and "PATH:LINE:COL: <printf text>"; returns code. */
int annb_input_error(annb_error *err, int code, const char *path, uint64_t line, uint64_t col,
                     const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

#define ANNB_EXCERPT_MAX 40 /* bytes of the input shown */
#define ANNB_EXCERPT_SIZE (ANNB_EXCERPT_MAX * 4 + 8)
/* Writes len bytes of data as a double-quoted C-like string (at most
 * ANNB_EXCERPT_MAX bytes, then "..."; `"`, `\` and non-printable bytes
 * escaped), or "an empty field" when len is 0. Returns out. */
const char *annb_excerpt(char out[ANNB_EXCERPT_SIZE], const void *data, size_t len);

/* ---- values ---- */

/* Parses an external ID: an optional sign and decimal digits, within int64,
 * not INT64_MIN (reserved). Returns NULL on success, else the phrase
 * "expected ..." that describes what was wrong. */
const char *annb_id_parse(int64_t *out, const char *s, size_t len);

/* Case-insensitive (ASCII) comparison of s[0..len) with the string lit. */
int annb_ascii_ieq(const char *s, size_t len, const char *lit);

/* ---- arrays ---- */

/* realloc for n elements of size bytes with overflow check; NULL on failure
 * (p is then untouched). */
void *annb_array_resize(void *p, uint64_t n, size_t size);
/* Geometric growth: a capacity of at least need, at least double cap. */
uint64_t annb_grow_capacity(uint64_t cap, uint64_t need);

/* Checks that ids[0..n) are distinct in O(n log n). On a repetition, fails
 * with ANNB_E_INPUT naming both lines (lines[i] is the line of ids[i]),
 * the one whose second occurrence comes earliest. ANNB_E_NOMEM possible. */
int annb_ids_check_unique(const char *path, const int64_t *ids, const uint64_t *lines, uint64_t n,
                          annb_error *err);
/* The earliest repetition in ids[0..n): *second is the first index whose
 * ID came before, at *first; *second = UINT64_MAX when all are distinct.
 * For readers that name elements rather than lines (.npy). ANNB_OK or
 * ANNB_E_NOMEM. */
int annb_ids_first_repeat(const int64_t *ids, uint64_t n, uint64_t *first, uint64_t *second);

#endif /* ANNB_CSVREAD_H */
