/* layout.h - byte offsets of the header and table entry fields (SPEC 2, 3). */
#ifndef ANNB_LAYOUT_H
#define ANNB_LAYOUT_H

enum {
    H_MAGIC = 0, H_MAJOR = 8, H_MINOR = 10, H_HEADER_SIZE = 12, H_FILE_SIZE = 16,
    H_REQUIRED = 24, H_OPTIONAL = 32, H_SECTION_COUNT = 40, H_ENTRY_SIZE = 44,
    H_TABLE_OFFSET = 48, H_RESERVED = 56, H_CHECKSUM = 120
};
enum {
    E_KIND = 0, E_FLAGS = 4, E_CODEC = 8, E_ELEM_TYPE = 12, E_OFFSET = 16, E_STORED = 24,
    E_DECODED = 32, E_COUNT = 40, E_CHECKSUM = 48, E_RESERVED = 56
};

/* SPEC 3.6: largest decoded size of a zstd section relative to its stored
 * size, so a small file cannot make a reader allocate without bound. */
#define ANNBF_ZSTD_MAX_RATIO 256u
#define ANNBF_MAX_DECODED (1ull << 40)

#endif /* ANNB_LAYOUT_H */
