/*
 * test_bundle_damage.c - damaged, truncated and foreign files through
 * annb_open and annb_verify, each expecting its own error code; and builds
 * that fail without touching what is already at the output path.
 *
 * The good bundles are made by annb_build from generated files in a
 * temporary directory; every damaged variant is a real file written beside
 * them and opened by path, as a service would.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 80
#define D 8

typedef struct fixture {
    char dir[256];
    char csv[512], movies[512];
    char good[512], ivf[512], scratch[512];
    uint8_t *bytes, *ivf_bytes; /* the good bundles' bytes */
    size_t size, ivf_size;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_rng r;
    tu_data t;
    tu_items_setup(&t, &r, fx->dir, fx->csv, N, D, 1234);
    FILE *f = fopen(tu_path(fx->movies, fx->dir, "movies.dat"), "wb");
    assert_non_null(f);
    for (size_t i = 0; i < N; i += 2)
        fprintf(f, "%lld::Title %zu, Caf\xe9 (19%02zu)::Comedy|Drama\n", (long long)t.ids[i], i, i);
    assert_int_equal(fclose(f), 0);
    tu_data_free(&t);

    tu_build(NULL, fx->csv, fx->movies, tu_path(fx->good, fx->dir, "good.annb"), ANNB_METRIC_IP,
             NULL);
    tu_build(NULL, fx->csv, fx->movies, tu_path(fx->ivf, fx->dir, "ivf.annb"), ANNB_METRIC_L2,
             "IVF2,Flat");
    tu_path(fx->scratch, fx->dir, "damaged.annb");
    fx->bytes = tu_read_file(fx->good, &fx->size);
    fx->ivf_bytes = tu_read_file(fx->ivf, &fx->ivf_size);
    assert_non_null(fx->bytes);
    assert_non_null(fx->ivf_bytes);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    free(fx->bytes);
    free(fx->ivf_bytes);
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

/* annb_open of these bytes (written to the scratch file), with flags.
 * Returns the code; on success the handle is closed unless *out is wanted. */
static int open_bytes(fixture *fx, const uint8_t *data, size_t size, unsigned flags,
                      annb_bundle **out, annb_error *err)
{
    tu_write_file(fx->scratch, data, size);
    annb_open_opts o = ANNB_OPEN_OPTS_INIT;
    o.flags = flags;
    annb_bundle *b = (annb_bundle *)0x1; /* must be reset to NULL on failure */
    memset(err, 0, sizeof *err);
    int rc = annb_open(&b, fx->scratch, &o, err);
    if (rc != ANNB_OK) {
        assert_null(b);
        assert_int_equal(err->code, rc);
        assert_true(err->message[0] != '\0');
    } else {
        assert_non_null(b);
    }
    if (out) *out = b;
    else annb_close(b);
    return rc;
}

/* The message of a failed open or verify names the file and the byte
 * offset of the damage (annb.h, annb_open). */
static void check_message(const fixture *fx, const annb_error *err, const char *what)
{
    if (!strstr(err->message, fx->scratch))
        fail_msg("%s: the message does not name the file: %s", what, err->message);
    if (!strstr(err->message, "byte"))
        fail_msg("%s: the message does not name the byte offset: %s", what, err->message);
}

static void expect_open(fixture *fx, const uint8_t *data, size_t size, unsigned flags, int want,
                        const char *what)
{
    annb_error err;
    int rc = open_bytes(fx, data, size, flags, NULL, &err);
    if (rc != want)
        fail_msg("%s: annb_open = %d (%s), expected %d (%s); message: %s", what, rc,
                 annb_strerror(rc), want, annb_strerror(want), err.message);
    if (rc != ANNB_OK) check_message(fx, &err, what);
}

/* These bytes open with ANNB_OPEN_STRUCTURE_ONLY (a tool can describe
 * them), and annb_verify then answers `want`. */
static void expect_verify(fixture *fx, const uint8_t *data, size_t size, int want, const char *what)
{
    annb_bundle *b = NULL;
    annb_error err = {0};
    assert_int_equal(open_bytes(fx, data, size, ANNB_OPEN_STRUCTURE_ONLY, &b, &err), ANNB_OK);
    int rc = annb_verify(b, &err);
    annb_close(b);
    if (rc != want)
        fail_msg("%s: annb_verify = %d (%s), expected %d (%s)", what, rc, err.message, want,
                 annb_strerror(want));
    if (rc != ANNB_OK) check_message(fx, &err, what);
}

/* A copy of the good bytes, to damage. */
static uint8_t *copy_of(const uint8_t *data, size_t size)
{
    uint8_t *c = malloc(size ? size : 1);
    assert_non_null(c);
    memcpy(c, data, size);
    return c;
}

static uint32_t section_count(const uint8_t *data)
{
    return (uint32_t)tu_get_le(data + TU_HDR_SECTION_COUNT, 4);
}

static void test_good_bundle(void **state)
{
    fixture *fx = *state;
    const char *paths[] = {fx->good, fx->ivf};
    for (int i = 0; i < 2; i++) {
        annb_error err = {0};
        annb_bundle *b = tu_open(paths[i], 0);
        assert_int_equal(annb_verify(b, &err), ANNB_OK);
        annb_close(b);
        b = tu_open(paths[i], ANNB_OPEN_STRUCTURE_ONLY);
        assert_int_equal(annb_verify(b, &err), ANNB_OK);
        annb_bundle_info info;
        annb_bundle_info_get(&info, b);
        assert_int_equal(info.format_major, 1);
        assert_int_equal(info.section_count, section_count(i ? fx->ivf_bytes : fx->bytes));
        annb_close(b);
    }
    /* The header as the test reads it agrees with what the library reports. */
    assert_memory_equal(fx->bytes, "ANNB\r\n\x1a\n", 8);
    assert_int_equal(tu_get_le(fx->bytes + TU_HDR_MAJOR, 2), ANNB_FORMAT_VERSION_MAJOR);
    assert_int_equal(tu_get_le(fx->bytes + TU_HDR_MINOR, 2), ANNB_FORMAT_VERSION_MINOR);
    uint8_t *c = copy_of(fx->bytes, fx->size);
    assert_int_equal(tu_header_rehash(c, fx->size), 0);
    assert_memory_equal(c, fx->bytes, fx->size); /* the test's checksum is the writer's */
    free(c);
}

/* The expected code for the first `len` bytes of a good bundle. */
static int truncated_code(size_t len)
{
    return len < 8 ? ANNB_E_NOT_BUNDLE : ANNB_E_TRUNCATED;
}

static void test_truncated(void **state)
{
    fixture *fx = *state;
    uint32_t count = section_count(fx->bytes);
    annb_section_info last;
    annb_bundle *b = tu_open(fx->good, ANNB_OPEN_STRUCTURE_ONLY);
    assert_int_equal(annb_section_info_get(&last, b, count - 1), ANNB_OK);
    annb_close(b);
    size_t cuts[] = {0,
                     7,
                     64,
                     127,
                     128,
                     TU_HDR_SIZE + count * TU_ENTRY_SIZE / 2,
                     (size_t)(last.offset + last.stored_size / 2),
                     fx->size - 1};
    char what[64];
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(what, sizeof what, "cut at %zu of %zu", cuts[i], fx->size);
        expect_open(fx, fx->bytes, cuts[i], 0, truncated_code(cuts[i]), what);
        expect_open(fx, fx->bytes, cuts[i], ANNB_OPEN_STRUCTURE_ONLY, truncated_code(cuts[i]), what);
    }
}

/* Every prefix of both bundles: never OK, never a crash, always one of the
 * two codes a short file can give. The file is cut in place, from the end. */
static void test_truncated_everywhere(void **state)
{
    fixture *fx = *state;
    const uint8_t *images[] = {fx->bytes, fx->ivf_bytes};
    size_t sizes[] = {fx->size, fx->ivf_size};
    for (int im = 0; im < 2; im++) {
        tu_write_file(fx->scratch, images[im], sizes[im]);
        for (size_t len = sizes[im]; len-- > 0;) {
            assert_int_equal(truncate(fx->scratch, (off_t)len), 0);
            annb_bundle *b = NULL;
            annb_open_opts o = ANNB_OPEN_OPTS_INIT;
            o.flags = len % 2 ? ANNB_OPEN_STRUCTURE_ONLY : 0;
            int rc = annb_open(&b, fx->scratch, &o, NULL);
            if (rc != truncated_code(len))
                fail_msg("image %d cut at %zu: annb_open = %d (%s), expected %d", im, len, rc,
                         annb_strerror(rc), truncated_code(len));
            assert_null(b);
        }
    }
}

/* Bytes after the declared end. */
static void test_trailing_bytes(void **state)
{
    fixture *fx = *state;
    uint8_t *c = malloc(fx->size + 100);
    assert_non_null(c);
    memcpy(c, fx->bytes, fx->size);
    memset(c + fx->size, 0, 100);
    expect_open(fx, c, fx->size + 100, 0, ANNB_E_CORRUPT, "100 zero bytes appended");
    free(c);
}

static void test_wrong_magic(void **state)
{
    fixture *fx = *state;
    uint8_t *c = copy_of(fx->bytes, fx->size);
    for (size_t i = 0; i < 8; i++) {
        c[i] ^= 0x20;
        expect_open(fx, c, fx->size, 0, ANNB_E_NOT_BUNDLE, "magic byte changed");
        expect_open(fx, c, fx->size, ANNB_OPEN_STRUCTURE_ONLY, ANNB_E_NOT_BUNDLE, "magic byte changed");
        c[i] ^= 0x20;
    }
    free(c);
    /* Files that were never bundles. */
    size_t sz;
    uint8_t *csv = tu_read_file(fx->csv, &sz);
    expect_open(fx, csv, sz, 0, ANNB_E_NOT_BUNDLE, "an embeddings CSV");
    free(csv);
    uint8_t zeros[4096] = {0};
    expect_open(fx, zeros, sizeof zeros, 0, ANNB_E_NOT_BUNDLE, "4096 zero bytes");
}

/* A header field changed, with the checksum recomputed so the reader
 * reaches the field. */
static void expect_header_field(fixture *fx, unsigned offset, unsigned width, uint64_t value,
                                int want, const char *what)
{
    uint8_t *c = copy_of(fx->bytes, fx->size);
    tu_put_le(c + offset, width, value);
    assert_int_equal(tu_header_rehash(c, fx->size), 0);
    expect_open(fx, c, fx->size, 0, want, what);
    expect_open(fx, c, fx->size, ANNB_OPEN_STRUCTURE_ONLY, want, what);
    free(c);
}

static void test_versions_and_features(void **state)
{
    fixture *fx = *state;
    expect_header_field(fx, TU_HDR_MAJOR, 2, 2, ANNB_E_VERSION, "major version 2");
    expect_header_field(fx, TU_HDR_MAJOR, 2, 0xffff, ANNB_E_VERSION, "major version 65535");
    /* A newer minor version of the same major: read. */
    expect_header_field(fx, TU_HDR_MINOR, 2, 7, ANNB_OK, "minor version 7");
    /* Unknown required feature: refuse. Unknown optional feature: ignore. */
    expect_header_field(fx, TU_HDR_REQUIRED, 8, 1, ANNB_E_VERSION, "required feature bit 0");
    expect_header_field(fx, TU_HDR_REQUIRED, 8, 1ull << 63, ANNB_E_VERSION, "required feature bit 63");
    expect_header_field(fx, TU_HDR_OPTIONAL, 8, 0x8000, ANNB_OK, "optional feature bit 15");
    /* The message says which version. */
    uint8_t *c = copy_of(fx->bytes, fx->size);
    tu_put_le(c + TU_HDR_MAJOR, 2, 2);
    tu_header_rehash(c, fx->size);
    annb_error err;
    assert_int_equal(open_bytes(fx, c, fx->size, 0, NULL, &err), ANNB_E_VERSION);
    assert_non_null(strstr(err.message, "2"));
    assert_non_null(strstr(err.message, fx->scratch));
    free(c);
}

/* Header and table bytes are covered by the header checksum. */
static void test_header_checksum(void **state)
{
    fixture *fx = *state;
    uint8_t *c = copy_of(fx->bytes, fx->size);
    char what[64];
    uint32_t count = section_count(fx->bytes);
    size_t spots[] = {TU_HDR_CHECKSUM, TU_HDR_CHECKSUM + 7,
                      TU_HDR_SIZE + 20, /* inside the first table entry */
                      TU_HDR_SIZE + (count - 1) * TU_ENTRY_SIZE + 40};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        c[spots[i]] ^= 0x10;
        snprintf(what, sizeof what, "byte %zu of header/table flipped", spots[i]);
        expect_open(fx, c, fx->size, 0, ANNB_E_CHECKSUM, what);
        expect_open(fx, c, fx->size, ANNB_OPEN_STRUCTURE_ONLY, ANNB_E_CHECKSUM, what);
        c[spots[i]] ^= 0x10;
    }
    free(c);
}

/* ---- hand-made bad bundles: one header or table field (SPEC 2, 3) ---- */
#define KIND4(s) ((uint64_t)(uint8_t)(s)[0] | (uint64_t)(uint8_t)(s)[1] << 8 | \
                  (uint64_t)(uint8_t)(s)[2] << 16 | (uint64_t)(uint8_t)(s)[3] << 24)

typedef struct field_edit {
    const char *what;
    const char *kind;   /* NULL: a header field; else a field of this section's table entry
                           ("LAST": the section that ends the file) */
    unsigned at, width; /* the field's offset in the header or the entry, and its size */
    int add;            /* value is added to the field (mod 2^64) instead of replacing it */
    uint64_t value;
    int code;           /* what annb_open must answer (checksums recomputed) */
    int structure_code; /* ... with ANNB_OPEN_STRUCTURE_ONLY (header and table only) */
} field_edit;

static const field_edit field_edits[] = {
    {"major version 0 (2.2)", NULL, 8, 2, 0, 0, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"header_size 129 (2.4)", NULL, 12, 4, 0, 129, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"entry_size 32 (2.4)", NULL, 44, 4, 0, 32, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"table_offset 0 (2.4)", NULL, 48, 8, 0, 0, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"file_size one more than the file (2.4)", NULL, 16, 8, 1, 1, ANNB_E_TRUNCATED, ANNB_E_TRUNCATED},
    {"file_size one less than the file (2.4)", NULL, 16, 8, 1, UINT64_MAX, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"file_size 2^64-1 (2.4)", NULL, 16, 8, 0, UINT64_MAX, ANNB_E_TRUNCATED, ANNB_E_TRUNCATED},
    {"section_count 0 (2.4)", NULL, 40, 4, 0, 0, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"section_count 257 (2.4)", NULL, 40, 4, 0, 257, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"first reserved header byte (2.5)", NULL, 56, 1, 0, 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"last reserved header byte (2.5)", NULL, 119, 1, 0, 0x80, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"unknown critical section kind (3.10)", "VECS", 0, 4, 0, KIND4("VECZ"), ANNB_E_VERSION, ANNB_OK},
    {"non-printable kind (3.1)", "META", 0, 1, 0, 0x01, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"a kind twice (3.1)", "IDS ", 0, 4, 0, KIND4("META"), ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"unknown flag bit (3.1)", "TTLS", 4, 4, 0, 2, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"unknown codec (3.1)", "META", 8, 4, 0, 7, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"unknown element type (3.1)", "IDS ", 12, 4, 0, 9, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"raw offset not 4096-aligned (3.2)", "VECS", 16, 8, 1, 64, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"offset not 64-aligned (3.2)", "TOFF", 16, 8, 1, 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"section inside the table (3.3)", "TOFF", 16, 8, 0, 128, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"sections overlap (3.3)", "IDS ", 16, 8, 1, (uint64_t)-4096, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"last section past the end (3.4)", "LAST", 24, 8, 1, 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"stored size near 2^64 (3.4)", "GBIT", 24, 8, 0, UINT64_MAX - 10, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"offset near 2^64 (3.4)", "GBIT", 16, 8, 0, UINT64_MAX - 63, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"raw decoded size differs from stored (3.5)", "VECS", 32, 8, 1, 4, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"element count disagrees with the size (3.5)", "VECS", 40, 8, 1, 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"zstd decoded size 2^40 (3.5, 3.6)", "TTLS", 32, 8, 0, 1ull << 40, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    {"reserved entry bytes (3.1)", "GBIT", 56, 8, 0, 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
    /* META: IDS is bulk (3.11), its checksum verified only by full
     * verification (test_section_payload_flips) */
    {"section checksum (3.8)", "META", 48, 8, 1, 1, ANNB_E_CHECKSUM, ANNB_OK},
};

/* Index of the table entry of this kind ("LAST": the one with the highest
 * offset), read straight from the bytes. */
static uint32_t entry_of(const uint8_t *data, const char *kind)
{
    uint32_t n = section_count(data), last = 0;
    if (strcmp(kind, "LAST") == 0) {
        for (uint32_t i = 1; i < n; i++)
            if (tu_get_le(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE + TU_ENTRY_OFFSET, 8) >
                tu_get_le(data + TU_HDR_SIZE + (size_t)last * TU_ENTRY_SIZE + TU_ENTRY_OFFSET, 8))
                last = i;
        return last;
    }
    for (uint32_t i = 0; i < n; i++)
        if (memcmp(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE, kind, 4) == 0) return i;
    fail_msg("no section '%s' in the bundle", kind);
    return 0;
}

static void test_bad_header_and_table_fields(void **state)
{
    fixture *fx = *state;
    for (size_t i = 0; i < sizeof field_edits / sizeof field_edits[0]; i++) {
        const field_edit *e = &field_edits[i];
        uint8_t *c = copy_of(fx->bytes, fx->size);
        uint8_t *p = c + e->at;
        if (e->kind) p += TU_HDR_SIZE + (size_t)entry_of(c, e->kind) * TU_ENTRY_SIZE;
        uint64_t v = e->add ? tu_get_le(p, e->width) + e->value : e->value;
        tu_put_le(p, e->width, v);
        /* May fail when the edit makes the table not fit (section_count 257):
         * the reader must refuse before it gets to the checksum then. */
        (void)tu_header_rehash(c, fx->size);
        expect_open(fx, c, fx->size, 0, e->code, e->what);
        expect_open(fx, c, fx->size, ANNB_OPEN_STRUCTURE_ONLY, e->structure_code, e->what);
        if (e->structure_code == ANNB_OK) /* described, but full verification refuses */
            expect_verify(fx, c, fx->size, e->code, e->what);
        free(c);
    }
    /* Bytes after the last section, declared in file_size (3.7). */
    uint8_t *c = calloc(1, fx->size + 64);
    assert_non_null(c);
    memcpy(c, fx->bytes, fx->size);
    tu_put_le(c + 16, 8, fx->size + 64);
    tu_header_rehash(c, fx->size + 64);
    expect_open(fx, c, fx->size + 64, 0, ANNB_E_CORRUPT, "64 declared bytes after the last section");
    free(c);
}

/* ---- hand-made bad bundles: section contents with repaired checksums ---- */

/* Writes value at byte `at` of section `kind`'s payload, then repairs the
 * section and header checksums: only the meaning is wrong. */
static void edit_payload(uint8_t *data, size_t size, const char *kind, uint64_t at, unsigned width,
                         uint64_t value)
{
    uint32_t i = entry_of(data, kind);
    uint64_t off = tu_get_le(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE + TU_ENTRY_OFFSET, 8);
    tu_put_le(data + off + at, width, value);
    assert_int_equal(tu_section_rehash(data, size, i), 0);
}

static uint64_t payload_get(const uint8_t *data, const char *kind, uint64_t at, unsigned width)
{
    uint32_t i = entry_of(data, kind);
    uint64_t off = tu_get_le(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE + TU_ENTRY_OFFSET, 8);
    return tu_get_le(data + off + at, width);
}

typedef struct payload_edit {
    const char *what;
    const char *kind;
    uint64_t at;
    unsigned width;
    uint64_t value;
    int open_code;   /* annb_open */
    int verify_code; /* annb_verify on a structure-only handle */
} payload_edit;

static void test_bad_section_contents(void **state)
{
    fixture *fx = *state;
    uint64_t id0 = payload_get(fx->bytes, "IDS ", 0, 8);
    const payload_edit edits[] = {
        /* IDS is bulk (3.11): IDs locate nothing, full verification only. */
        {"IDs not ascending (6.2)", "IDS ", 8, 8, id0 - 1, ANNB_OK, ANNB_E_CORRUPT},
        {"an ID twice (6.2)", "IDS ", 8, 8, id0, ANNB_OK, ANNB_E_CORRUPT},
        {"INT64_MIN as an ID (6.2)", "IDS ", 0, 8, (uint64_t)INT64_MIN, ANNB_OK, ANNB_E_CORRUPT},
        {"META dimension 0 (6.1)", "META", 0, 4, 0, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META dimension disagrees with VECS (6.1)", "META", 0, 4, D - 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META metric 3 (6.1)", "META", 4, 4, 3, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META count disagrees with IDS (6.1)", "META", 8, 8, N + 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META count 0 (6.1)", "META", 8, 8, 0, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META normalised flag on ip (6.1)", "META", 16, 4, 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META unknown flag (6.1)", "META", 16, 4, 4, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META index length wrong (6.1)", "META", 20, 4, 5, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META reserved byte (6.1)", "META", 40, 1, 1, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META index 'Flax' without FAIS (6.4)", "META", 67, 1, 'x', ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        {"META index not printable (6.1)", "META", 64, 1, 0x07, ANNB_E_CORRUPT, ANNB_E_CORRUPT},
        /* Finite values cost a pass over VECS: full verification only. */
        {"a NaN in VECS (6.3)", "VECS", 5 * 4, 4, 0x7fc00000u, ANNB_OK, ANNB_E_CORRUPT},
        {"an infinity in VECS (6.3)", "VECS", (N * D - 1) * 4, 4, 0x7f800000u, ANNB_OK, ANNB_E_CORRUPT},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const payload_edit *e = &edits[i];
        uint8_t *c = copy_of(fx->bytes, fx->size);
        edit_payload(c, fx->size, e->kind, e->at, e->width, e->value);
        expect_open(fx, c, fx->size, 0, e->open_code, e->what);
        expect_verify(fx, c, fx->size, e->verify_code, e->what);
        free(c);
    }
}

/* One flipped byte (first, middle, last) in each section's stored bytes:
 * annb_open verifies every section but the bulk ones and refuses; a structure-only
 * handle opens and annb_verify refuses. The FAIS section of the IVF bundle
 * is among them: Faiss must never parse unverified bytes. */
static void flip_each_section(fixture *fx, const uint8_t *image, size_t size, const char *path)
{
    annb_bundle *s = tu_open(path, ANNB_OPEN_STRUCTURE_ONLY);
    annb_bundle_info info;
    annb_bundle_info_get(&info, s);
    uint8_t *c = copy_of(image, size);
    char what[96];
    for (uint32_t i = 0; i < info.section_count; i++) {
        annb_section_info si;
        assert_int_equal(annb_section_info_get(&si, s, i), ANNB_OK);
        assert_true(si.stored_size > 0);
        assert_true(si.offset + si.stored_size <= size);
        uint64_t spots[] = {si.offset, si.offset + si.stored_size / 2,
                            si.offset + si.stored_size - 1};
        for (int j = 0; j < 3; j++) {
            c[spots[j]] ^= 0x04;
            snprintf(what, sizeof what, "%s: byte %llu of section %s flipped", path,
                     (unsigned long long)spots[j], si.kind);
            /* Bulk sections are used unverified at open (SPEC 3.11): damage
             * there is found by annb_verify and by ANNB_OPEN_VERIFY_ALL. */
            static const char *const bulk_kinds[] = {"IDS ", "VECS", "UIDS", "UVEC", "IVEC",
                                                     "TOFF", "TTLS", "GBIT", "SOFF", "SEEN"};
            int bulk = 0;
            for (size_t k = 0; k < sizeof bulk_kinds / sizeof bulk_kinds[0]; k++)
                bulk |= !strcmp(si.kind, bulk_kinds[k]);
            expect_open(fx, c, size, 0, bulk ? ANNB_OK : ANNB_E_CHECKSUM, what);
            expect_open(fx, c, size, ANNB_OPEN_VERIFY_ALL, ANNB_E_CHECKSUM, what);
            expect_verify(fx, c, size, ANNB_E_CHECKSUM, what);
            c[spots[j]] ^= 0x04;
        }
    }
    assert_memory_equal(c, image, size);
    free(c);
    annb_close(s);
}

static void test_section_payload_flips(void **state)
{
    fixture *fx = *state;
    flip_each_section(fx, fx->bytes, fx->size, fx->good);
    flip_each_section(fx, fx->ivf_bytes, fx->ivf_size, fx->ivf);
}

/* Padding between sections must be zero: annb_verify checks it. */
static void test_nonzero_padding(void **state)
{
    fixture *fx = *state;
    annb_bundle *s = tu_open(fx->good, ANNB_OPEN_STRUCTURE_ONLY);
    annb_bundle_info info;
    annb_bundle_info_get(&info, s);
    uint64_t gap = 0;
    annb_section_info a, b;
    for (uint32_t i = 0; i + 1 < info.section_count && !gap; i++) {
        annb_section_info_get(&a, s, i);
        annb_section_info_get(&b, s, i + 1);
        if (b.offset > a.offset + a.stored_size) gap = a.offset + a.stored_size;
    }
    annb_close(s);
    assert_true(gap > 0); /* raw sections are 4096-aligned: a small bundle has gaps */
    uint8_t *c = copy_of(fx->bytes, fx->size);
    c[gap] = 0x55;
    annb_bundle *bd = NULL;
    annb_error err;
    assert_int_equal(open_bytes(fx, c, fx->size, 0, &bd, &err), ANNB_OK);
    assert_int_equal(annb_verify(bd, &err), ANNB_E_CORRUPT);
    annb_close(bd);
    free(c);
}

static void test_not_a_file(void **state)
{
    fixture *fx = *state;
    annb_bundle *b = (annb_bundle *)0x1;
    annb_error err = {0};
    char missing[512];
    assert_int_equal(annb_open(&b, fx->dir, NULL, &err), ANNB_E_IO);
    assert_null(b);
    assert_int_equal(err.code, ANNB_E_IO);
    assert_non_null(strstr(err.message, fx->dir));
    tu_path(missing, fx->dir, "no-such.annb");
    assert_int_equal(annb_open(&b, missing, NULL, &err), ANNB_E_IO);
    assert_non_null(strstr(err.message, "no-such.annb"));
    assert_int_equal(annb_open(&b, NULL, NULL, &err), ANNB_E_INVALID);
    assert_int_equal(annb_open(NULL, fx->good, NULL, &err), ANNB_E_INVALID);
    assert_int_equal(annb_verify(NULL, &err), ANNB_E_INVALID);
}

/* The bundle keeps answering after its path is renamed over (a new build)
 * and after the file is deleted: the mapping holds the old file. */
static void test_open_survives_replacement(void **state)
{
    fixture *fx = *state;
    char path[512], other[512];
    tu_path(path, fx->dir, "replaced.annb");
    tu_path(other, fx->dir, "replacement.annb");
    tu_write_file(path, fx->bytes, fx->size);
    annb_bundle *b = tu_open(path, 0);
    tu_write_file(other, "not a bundle", 12);
    assert_int_equal(rename(other, path), 0);
    annb_error err;
    assert_int_equal(annb_verify(b, &err), ANNB_OK);
    unlink(path);
    assert_int_equal(annb_verify(b, &err), ANNB_OK);
    float v[D];
    assert_int_equal(annb_item_vector(b, 424242, v), ANNB_E_NOT_FOUND);
    annb_close(b);
}

/* ---- failed builds leave nothing behind ---- */
static void expect_build_fails(fixture *fx, const char *items, const char *catalog,
                               const char *index, int want, const char *out)
{
    size_t before_entries = tu_dir_entry_count(fx->dir);
    size_t osize;
    uint8_t *old = tu_read_file(out, &osize);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    o.index = index;
    annb_error err = {0};
    annb_build_report rep;
    int rc = annb_build(&rep, items, catalog, out, &o, &err);
    if (rc != want)
        fail_msg("annb_build(%s, %s, index %s) = %d (%s), expected %d", items,
                 catalog ? catalog : "-", index ? index : "-", rc, err.message, want);
    assert_int_equal(err.code, rc);
    size_t nsize;
    uint8_t *now = tu_read_file(out, &nsize);
    if (old) { /* the previous bundle, byte for byte */
        assert_non_null(now);
        assert_int_equal(nsize, osize);
        assert_memory_equal(now, old, osize);
    } else {
        assert_null(now);
    }
    assert_int_equal(tu_dir_entry_count(fx->dir), before_entries); /* no temporary file */
    free(old);
    free(now);
}

static void test_failed_build_leaves_nothing(void **state)
{
    fixture *fx = *state;
    char bad_csv[512], bad_cat[512], out[512], fresh[512], missing[512];
    tu_write_text(tu_path(bad_csv, fx->dir, "bad.csv"),
                  "id,features\n1,\"[1, 2, 3, 4, 5, 6, 7, 8]\"\n2,\"[1, 2, oops]\"\n");
    tu_write_text(tu_path(bad_cat, fx->dir, "bad.dat"), "1::Only two fields\n");
    tu_path(out, fx->dir, "existing.annb");
    tu_write_file(out, fx->bytes, fx->size);
    tu_path(fresh, fx->dir, "fresh.annb");
    tu_path(missing, fx->dir, "no-such.csv");

    expect_build_fails(fx, bad_csv, NULL, NULL, ANNB_E_INPUT, out);
    expect_build_fails(fx, fx->csv, bad_cat, NULL, ANNB_E_INPUT, out);
    expect_build_fails(fx, missing, NULL, NULL, ANNB_E_IO, out);
    expect_build_fails(fx, fx->csv, NULL, "NoSuchIndex,Flat", ANNB_E_INVALID, out);
    expect_build_fails(fx, bad_csv, NULL, NULL, ANNB_E_INPUT, fresh);
    expect_build_fails(fx, fx->csv, bad_cat, NULL, ANNB_E_INPUT, fresh);
    /* Failing at the very end: the rename onto a directory fails after the
     * temporary file was written in full; it must be removed. */
    char subdir[512];
    assert_int_equal(mkdir(tu_path(subdir, fx->dir, "a-directory"), 0755), 0);
    expect_build_fails(fx, fx->csv, fx->movies, NULL, ANNB_E_IO, subdir);
    assert_int_equal(rmdir(subdir), 0);
    /* The existing bundle still opens and verifies. */
    annb_bundle *b = tu_open(out, 0);
    annb_error err;
    assert_int_equal(annb_verify(b, &err), ANNB_OK);
    annb_close(b);
    /* And a good build replaces it atomically, leaving only the bundle. */
    size_t entries = tu_dir_entry_count(fx->dir);
    tu_build(NULL, fx->csv, NULL, out, ANNB_METRIC_COSINE, NULL);
    assert_int_equal(tu_dir_entry_count(fx->dir), entries);
    b = tu_open(out, 0);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    assert_int_equal(info.metric, ANNB_METRIC_COSINE);
    assert_false(info.has_catalog);
    annb_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_bundle),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_versions_and_features),
        cmocka_unit_test(test_header_checksum),
        cmocka_unit_test(test_bad_header_and_table_fields),
        cmocka_unit_test(test_bad_section_contents),
        cmocka_unit_test(test_section_payload_flips),
        cmocka_unit_test(test_nonzero_padding),
        cmocka_unit_test(test_not_a_file),
        cmocka_unit_test(test_open_survives_replacement),
        cmocka_unit_test(test_failed_build_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
