/* layout.h - internal to format/ (and its unit tests): byte offsets of the
 * header and table entry fields (SPEC 2, 3), the v1 limits, and the helpers
 * the reader and the writer share. Not installed, not for lib/. */
#ifndef ANNB_LAYOUT_H
#define ANNB_LAYOUT_H

#include "annb_format.h"

#include <stdint.h>

enum {
    H_MAGIC = 0, H_MAJOR = 8, H_MINOR = 10, H_HEADER_SIZE = 12, H_FILE_SIZE = 16,
    H_REQUIRED = 24, H_OPTIONAL = 32, H_SECTION_COUNT = 40, H_ENTRY_SIZE = 44,
    H_TABLE_OFFSET = 48, H_RESERVED = 56, H_CHECKSUM = 120
};
enum {
    E_KIND = 0, E_FLAGS = 4, E_CODEC = 8, E_ELEM_TYPE = 12, E_OFFSET = 16, E_STORED = 24,
    E_DECODED = 32, E_COUNT = 40, E_CHECKSUM = 48, E_RESERVED = 56
};

/* SPEC 3.5: largest decoded size of any section. */
#define ANNBF_MAX_DECODED (1ull << 40)
/* SPEC 3.6: largest decoded size of a zstd section relative to its stored
 * size, so a small file cannot make a reader allocate without bound. */
#define ANNBF_ZSTD_MAX_RATIO 256u
#define ANNBF_ZSTD_SLACK 4096u

/* SPEC 3.6, for the reader (refuse) and the writer (store raw instead):
 * decoded <= stored * 256 + 4096, without overflow for any stored. */
static inline int annbf_zstd_ratio_ok(uint64_t decoded, uint64_t stored)
{
    return decoded <= ANNBF_ZSTD_SLACK ||
           (decoded - ANNBF_ZSTD_SLACK + ANNBF_ZSTD_MAX_RATIO - 1) / ANNBF_ZSTD_MAX_RATIO <= stored;
}

/* Fills *err (when not NULL) and returns code. offset is a byte offset in
 * the file, or UINT64_MAX when the error is not about a place in a file.
 * Defined in reader.c. */
int annbf_fail(annbf_error *err, int code, uint64_t offset, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif /* ANNB_LAYOUT_H */
