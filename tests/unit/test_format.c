/*
 * test_format.c - the bundle format layer (format/annb_format.h) on its own:
 * writer round trips, determinism and atomic commits; a table of hand-made
 * bad files, each expecting its own code and byte offset; and exhaustive
 * truncation and bit flips, which must never crash and never pass.
 *
 * Every bad file is a good writer-made image damaged in memory. Images are
 * kept in buffers of exactly their size, so a read one byte past the end is
 * an ASan report, not a silent pass.
 */
#define _GNU_SOURCE /* mkdtemp, nftw */
#include "annb_format.h"
#include "layout.h"
#include "le.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#define XXH_INLINE_ALL /* section checksums of forged payloads, without linking xxhash */
#include <xxhash.h>

#define ENTRY(i) ((uint64_t)ANNBF_HEADER_SIZE + (uint64_t)(i) * ANNBF_ENTRY_SIZE)
#define ZSTD_FRAME_MAGIC 0xFD2FB528u
#define ZSTD_SKIPPABLE_MAGIC 0x184D2A50u

/* ---- the sections of the test bundles ---- */

typedef struct spec {
    const char *kind;
    uint32_t flags, codec, elem_type;
    uint64_t count;
} spec;

#define CRIT ANNBF_FLAG_CRITICAL
#define RAW ANNBF_CODEC_RAW
#define ZSTD ANNBF_CODEC_ZSTD

/* Every element type under both codecs, an empty section of each codec (the
 * raw one last, so it sits at the very end of the file after padding), and
 * critical sections among them. */
enum { S_BYTR, S_U32R, S_U64Z, S_EMPZ, S_IDS, S_F32Z, S_BYTZ, S_U32Z, S_U64R, S_F32R, S_I64Z,
       S_EMPR, N_RICH };
static const spec RICH[N_RICH] = {
    {"BYTR", CRIT, RAW, ANNBF_ELEM_BYTES, 1000}, {"U32R", 0, RAW, ANNBF_ELEM_U32, 300},
    {"U64Z", 0, ZSTD, ANNBF_ELEM_U64, 500},      {"EMPZ", 0, ZSTD, ANNBF_ELEM_F32, 0},
    {"IDS ", CRIT, RAW, ANNBF_ELEM_I64, 257},    {"F32Z", 0, ZSTD, ANNBF_ELEM_F32, 1234},
    {"BYTZ", 0, ZSTD, ANNBF_ELEM_BYTES, 5000},   {"U32Z", 0, ZSTD, ANNBF_ELEM_U32, 77},
    {"U64R", 0, RAW, ANNBF_ELEM_U64, 10},        {"F32R", 0, RAW, ANNBF_ELEM_F32, 33},
    {"I64Z", CRIT, ZSTD, ANNBF_ELEM_I64, 40},    {"EMPR", 0, RAW, ANNBF_ELEM_BYTES, 0},
};

/* A few hundred bytes, zstd only (64-aligned): small enough to cut and flip
 * everywhere; the last section is a non-empty frame that edits can extend. */
enum { M_A, M_E, M_B, N_SMALL };
static const spec SMALL[N_SMALL] = {
    {"SMLA", CRIT, ZSTD, ANNBF_ELEM_BYTES, 100},
    {"SMLE", 0, ZSTD, ANNBF_ELEM_U64, 0},
    {"SMLB", 0, ZSTD, ANNBF_ELEM_U32, 20},
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The payload of a section: a function of its kind, 4 bits of entropy per
 * byte so that zstd has something to do. malloc'd (at least 1 byte). */
static uint8_t *payload(const spec *s, size_t *size)
{
    *size = (size_t)(s->count * annbf_elem_size(s->elem_type));
    uint8_t *p = malloc(*size ? *size : 1);
    assert_non_null(p);
    uint64_t st = le32_get((const uint8_t *)s->kind);
    for (size_t i = 0; i < *size; i++) p[i] = (uint8_t)(0x40 | (splitmix(&st) & 0x0f));
    return p;
}

static int writer_add_spec(annbf_writer *w, const spec *s, annbf_error *err)
{
    size_t size;
    uint8_t *p = payload(s, &size);
    int rc = annbf_writer_add(w, s->kind, s->flags, s->codec, s->elem_type, s->count, p, size, err);
    free(p);
    return rc;
}

static annbf_writer *writer_of(const spec *specs, size_t n)
{
    annbf_writer *w = NULL;
    annbf_error err;
    assert_int_equal(annbf_writer_new(&w, &err), ANNBF_OK);
    for (size_t i = 0; i < n; i++)
        if (writer_add_spec(w, &specs[i], &err) != ANNBF_OK)
            fail_msg("adding %.4s: %s", specs[i].kind, err.message);
    return w;
}

/* ---- files ---- */

static const char *join(char out[512], const char *dir, const char *name)
{
    int n = snprintf(out, 512, "%s/%s", dir, name);
    if (n < 0 || n >= 512) fail_msg("path too long: %s/%s", dir, name);
    return out;
}

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *d = malloc(n ? (size_t)n : 1);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return d;
}

static void write_whole(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("create %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void commit_specs(const char *path, const spec *specs, size_t n, uint64_t *written)
{
    annbf_writer *w = writer_of(specs, n);
    annbf_error err;
    if (annbf_writer_commit(w, path, written, &err) != ANNBF_OK)
        fail_msg("commit %s: %s", path, err.message);
    annbf_writer_free(w);
}

/* The file at path holds exactly these bytes. */
static void expect_file(const char *path, const void *bytes, size_t size)
{
    size_t n;
    uint8_t *d = read_whole(path, &n);
    if (n != size) fail_msg("%s: %zu bytes, expected %zu", path, n, size);
    assert_memory_equal(d, bytes, n);
    free(d);
}

/* A commit of SMALL to path fails with IO (and an error that says so). */
static void expect_commit_io_error(const char *path)
{
    annbf_writer *w = writer_of(SMALL, N_SMALL);
    annbf_error err;
    memset(&err, 0, sizeof err);
    uint64_t written = 12345;
    assert_int_equal(annbf_writer_commit(w, path, &written, &err), ANNBF_E_IO);
    assert_int_equal(err.code, ANNBF_E_IO);
    assert_int_equal(err.offset, UINT64_MAX);
    assert_true(err.message[0] != '\0');
    assert_int_equal(written, 12345);
    annbf_writer_free(w);
}

/* Entries of dir whose name contains ".tmp." (the writer's temporary files). */
static size_t count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* ---- fixture: a temporary directory and the two good images ---- */

typedef struct fixture {
    char dir[256];
    uint8_t *rich, *small;
    size_t rich_size, small_size;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *base = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/annb-format-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(fx->dir)) fail_msg("mkdtemp %s: %s", fx->dir, strerror(errno));
    char path[512];
    uint64_t written = 0;
    commit_specs(join(path, fx->dir, "rich.annb"), RICH, N_RICH, &written);
    fx->rich = read_whole(path, &fx->rich_size);
    assert_int_equal(written, fx->rich_size);
    commit_specs(join(path, fx->dir, "small.annb"), SMALL, N_SMALL, &written);
    fx->small = read_whole(path, &fx->small_size);
    assert_int_equal(written, fx->small_size);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    nftw(fx->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx->rich);
    free(fx->small);
    free(fx);
    return 0;
}

/* A per-test subdirectory, so that directory scans see only that test. */
static const char *subdir(char out[512], const fixture *fx, const char *name)
{
    join(out, fx->dir, name);
    if (mkdir(out, 0755)) fail_msg("mkdir %s: %s", out, strerror(errno));
    return out;
}

/* ---- images: bytes in a buffer of exactly their size ---- */

typedef struct image {
    uint8_t *d;
    size_t size;
} image;

static image image_of(const uint8_t *data, size_t size)
{
    image im = {malloc(size ? size : 1), size};
    assert_non_null(im.d);
    memcpy(im.d, data, size);
    return im;
}

/* New size; new bytes are `fill`. Reallocated, so the buffer stays exact. */
static void image_resize(image *im, size_t size, uint8_t fill)
{
    uint8_t *d = realloc(im->d, size ? size : 1);
    assert_non_null(d);
    if (size > im->size) memset(d + im->size, fill, size - im->size);
    im->d = d;
    im->size = size;
}

static uint8_t *ent(image *im, unsigned i) { return im->d + ENTRY(i); }
static uint64_t sec_offset(image *im, unsigned i) { return le64_get(ent(im, i) + E_OFFSET); }
static uint64_t sec_stored(image *im, unsigned i) { return le64_get(ent(im, i) + E_STORED); }

/* Recomputes the header checksum (annbf_header_checksum, stored LE at 120)
 * so that the reader gets past it to the edited field. */
static void reseal(image *im)
{
    uint32_t count = le32_get(im->d + H_SECTION_COUNT);
    assert_true(count <= ANNBF_MAX_SECTIONS && ENTRY(count) <= im->size);
    le64_put(im->d + H_CHECKSUM, annbf_header_checksum(im->d, count));
}

/* Recomputes section i's checksum from its stored bytes, then the header's. */
static void reseal_section(image *im, unsigned i)
{
    uint64_t off = sec_offset(im, i), n = sec_stored(im, i);
    assert_true(off <= im->size && n <= im->size - off);
    le64_put(ent(im, i) + E_CHECKSUM, XXH3_64bits(im->d + off, (size_t)n));
    reseal(im);
}

/* Appends bytes to the last section (which must end the file): stored size,
 * file size and both checksums follow. */
static void append_to_last(image *im, const uint8_t *bytes, size_t n)
{
    unsigned last = le32_get(im->d + H_SECTION_COUNT) - 1;
    assert_int_equal(sec_offset(im, last) + sec_stored(im, last), im->size);
    size_t old = im->size;
    image_resize(im, old + n, 0);
    memcpy(im->d + old, bytes, n);
    le64_put(ent(im, last) + E_STORED, sec_stored(im, last) + n);
    le64_put(im->d + H_FILE_SIZE, im->size);
    reseal_section(im, last);
}

static uint64_t field_get(const uint8_t *p, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void field_put(uint8_t *p, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- parse + verify with the error struct checked ---- */

static int parse(annbf_file *f, const image *im, annbf_error *err)
{
    memset(err, 0, sizeof *err);
    int rc = annbf_file_parse(f, im->d, im->size, err);
    if (rc != ANNBF_OK) {
        assert_int_equal(err->code, rc);
        assert_true(err->message[0] != '\0');
        /* SPEC: on failure the output is empty */
        assert_null(f->sections);
        assert_int_equal(f->section_count, 0);
    }
    return rc;
}

static int verify(const annbf_file *f, int (*known)(const char kind[4]), annbf_error *err)
{
    memset(err, 0, sizeof *err);
    int rc = annbf_file_verify(f, known, err);
    if (rc != ANNBF_OK) {
        assert_int_equal(err->code, rc);
        assert_true(err->message[0] != '\0');
    }
    return rc;
}

/* ======================================================================== */
/* Round trips                                                              */
/* ======================================================================== */

static void check_round_trip(const uint8_t *data, size_t size, const spec *specs, size_t n,
                             int mapped)
{
    annbf_file f;
    annbf_error err;
    if (annbf_file_parse(&f, data, size, &err) != ANNBF_OK) fail_msg("parse: %s", err.message);
    assert_int_equal(f.major, ANNBF_MAJOR);
    assert_int_equal(f.minor, ANNBF_MINOR);
    assert_int_equal(f.file_size, size);
    assert_int_equal(f.required_features, 0);
    assert_int_equal(f.optional_features, 0);
    assert_int_equal(f.section_count, n);
    assert_memory_equal(data, ANNBF_MAGIC, 8);
    assert_int_equal(le64_get(data + H_CHECKSUM), annbf_header_checksum(data, (uint32_t)n));
    uint64_t end = ENTRY(n);
    for (uint32_t i = 0; i < n; i++) {
        const annbf_section *s = &f.sections[i];
        const spec *want = &specs[i];
        size_t psize;
        uint8_t *p = payload(want, &psize);
        assert_memory_equal(s->kind, want->kind, 4);
        assert_int_equal(annbf_section_find(&f, want->kind), (int)i);
        assert_int_equal(s->flags, want->flags);
        assert_int_equal(s->codec, want->codec);
        assert_int_equal(s->elem_type, want->elem_type);
        assert_int_equal(s->elem_count, want->count);
        assert_int_equal(s->decoded_size, psize);
        /* 3.2: raw 4096-aligned, zstd 64-aligned; 4.1: at the next such offset */
        uint64_t align = s->codec == RAW ? ANNBF_ALIGN_RAW : ANNBF_ALIGN;
        if (s->offset % align) fail_msg("%.4s at %" PRIu64 " not %" PRIu64 "-aligned", s->kind,
                                        s->offset, align);
        assert_true(s->offset >= end && s->offset - end < align);
        for (uint64_t b = end; b < s->offset; b++) assert_int_equal(data[b], 0); /* 3.9 */
        if (s->codec == RAW) assert_int_equal(s->stored_size, psize);
        assert_int_equal(s->checksum, XXH3_64bits(data + s->offset, (size_t)s->stored_size));

        const void *out = (const void *)1;
        void *owned = (void *)1;
        memset(&err, 0, sizeof err);
        if (annbf_section_load(&f, i, &out, &owned, &err) != ANNBF_OK)
            fail_msg("load %.4s: %s", s->kind, err.message);
        if (s->codec == RAW) {
            assert_null(owned);
            assert_ptr_equal(out, data + s->offset); /* used in place */
            if (mapped) assert_int_equal((uintptr_t)out % ANNBF_ALIGN_RAW, 0);
        } else {
            assert_non_null(owned);
            assert_ptr_equal(out, owned);
        }
        if (psize) assert_memory_equal(out, p, psize);
        free(owned);
        free(p);
        end = s->offset + s->stored_size;
    }
    assert_int_equal(end, size); /* 3.7 */
    char none[4] = {'N', 'O', 'P', 'E'};
    assert_int_equal(annbf_section_find(&f, none), -1);
    const void *out;
    void *owned;
    assert_int_equal(annbf_section_load(&f, (uint32_t)n, &out, &owned, &err), ANNBF_E_INVALID);
    assert_int_equal(err.code, ANNBF_E_INVALID);
    assert_null(out);
    assert_null(owned);
    assert_int_equal(verify(&f, NULL, &err), ANNBF_OK);
    annbf_file_release(&f);
    annbf_file_release(&f); /* released twice: harmless */
    annbf_file_release(NULL);
}

static void test_round_trip(void **state)
{
    fixture *fx = *state;
    check_round_trip(fx->rich, fx->rich_size, RICH, N_RICH, 0);
    check_round_trip(fx->small, fx->small_size, SMALL, N_SMALL, 0);
    /* The last section of RICH is empty and raw: it starts at the end of
     * the file, after the padding to 4096. */
    assert_int_equal(fx->rich_size % ANNBF_ALIGN_RAW, 0);
}

/* Through mmap, as a service reads it: raw sections are page-aligned in memory. */
static void test_round_trip_mapped(void **state)
{
    fixture *fx = *state;
    char path[512];
    int fd = open(join(path, fx->dir, "rich.annb"), O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_true(m != MAP_FAILED);
    close(fd);
    check_round_trip(m, (size_t)st.st_size, RICH, N_RICH, 1);
    munmap(m, (size_t)st.st_size);
}

static int known_all(const char kind[4]) { (void)kind; return 1; }
static int known_none(const char kind[4]) { (void)kind; return 0; }
static int known_but_ids(const char kind[4]) { return memcmp(kind, "IDS ", 4) != 0; }
static int known_but_u32r(const char kind[4]) { return memcmp(kind, "U32R", 4) != 0; }

static void test_verify_good(void **state)
{
    fixture *fx = *state;
    image im = image_of(fx->rich, fx->rich_size);
    annbf_file f;
    annbf_error err;
    assert_int_equal(parse(&f, &im, &err), ANNBF_OK);
    assert_int_equal(verify(&f, NULL, &err), ANNBF_OK);
    assert_int_equal(verify(&f, known_all, &err), ANNBF_OK);
    /* Unknown non-critical kinds are ignored (3.10). */
    assert_int_equal(verify(&f, known_but_u32r, &err), ANNBF_OK);
    /* A NULL error struct is allowed on success and failure alike. */
    assert_int_equal(annbf_file_verify(&f, NULL, NULL), ANNBF_OK);
    assert_int_equal(annbf_file_verify(&f, known_none, NULL), ANNBF_E_VERSION);
    annbf_file_release(&f);
    im.d[0] ^= 1;
    assert_int_equal(annbf_file_parse(&f, im.d, im.size, NULL), ANNBF_E_NOT_BUNDLE);
    annbf_file_release(&f);
    free(im.d);
}

/* The same sections give the same bytes (4.2): two writers, and one writer
 * committed twice. */
static void test_deterministic(void **state)
{
    fixture *fx = *state;
    char dir[512], a[512], b[512];
    subdir(dir, fx, "determinism");
    uint64_t wa = 0, wb = 0;
    commit_specs(join(a, dir, "a.annb"), RICH, N_RICH, &wa);
    expect_file(a, fx->rich, fx->rich_size);

    annbf_writer *w = writer_of(RICH, N_RICH);
    annbf_error err;
    assert_int_equal(annbf_writer_commit(w, join(a, dir, "c.annb"), &wa, &err), ANNBF_OK);
    assert_int_equal(annbf_writer_commit(w, join(b, dir, "d.annb"), &wb, &err), ANNBF_OK);
    annbf_writer_free(w);
    assert_int_equal(wa, fx->rich_size);
    assert_int_equal(wb, fx->rich_size);
    expect_file(a, fx->rich, fx->rich_size);
    expect_file(b, fx->rich, fx->rich_size);
}

/* The writer copies data at add time (the caller may reuse its buffer). */
static void test_writer_copies_data(void **state)
{
    fixture *fx = *state;
    annbf_writer *w = NULL;
    annbf_error err;
    assert_int_equal(annbf_writer_new(&w, &err), ANNBF_OK);
    for (size_t i = 0; i < N_SMALL; i++) {
        size_t size;
        uint8_t *p = payload(&SMALL[i], &size);
        assert_int_equal(annbf_writer_add(w, SMALL[i].kind, SMALL[i].flags, SMALL[i].codec,
                                          SMALL[i].elem_type, SMALL[i].count, p, size, &err),
                         ANNBF_OK);
        memset(p, 0xee, size);
        free(p);
    }
    char dir[512], path[512];
    subdir(dir, fx, "copies");
    assert_int_equal(annbf_writer_commit(w, join(path, dir, "x.annb"), NULL, &err), ANNBF_OK);
    annbf_writer_free(w);
    expect_file(path, fx->small, fx->small_size);
}

/* 3.6: data that zstd would shrink more than the ratio bound allows is
 * stored raw (and therefore 4096-aligned). */
static void test_writer_zstd_falls_back_to_raw(void **state)
{
    fixture *fx = *state;
    size_t size = 1u << 20;
    uint8_t *zeros = calloc(1, size);
    assert_non_null(zeros);
    annbf_writer *w = NULL;
    annbf_error err;
    assert_int_equal(annbf_writer_new(&w, &err), ANNBF_OK);
    assert_int_equal(annbf_writer_add(w, "SMAL", 0, ZSTD, ANNBF_ELEM_BYTES, 10, zeros, 10, &err),
                     ANNBF_OK);
    assert_int_equal(annbf_writer_add(w, "ZERO", 0, ZSTD, ANNBF_ELEM_U64, size / 8, zeros, size,
                                      &err), ANNBF_OK);
    char dir[512], path[512];
    subdir(dir, fx, "fallback");
    assert_int_equal(annbf_writer_commit(w, join(path, dir, "z.annb"), NULL, &err), ANNBF_OK);
    annbf_writer_free(w);
    size_t n;
    image im;
    im.d = read_whole(path, &n);
    im.size = n;
    annbf_file f;
    assert_int_equal(parse(&f, &im, &err), ANNBF_OK);
    assert_int_equal(f.sections[0].codec, ZSTD);
    assert_int_equal(f.sections[1].codec, RAW);
    assert_int_equal(f.sections[1].offset % ANNBF_ALIGN_RAW, 0);
    assert_int_equal(f.sections[1].stored_size, size);
    const void *out;
    void *owned;
    assert_int_equal(annbf_section_load(&f, 1, &out, &owned, &err), ANNBF_OK);
    assert_memory_equal(out, zeros, size);
    assert_int_equal(verify(&f, NULL, &err), ANNBF_OK);
    annbf_file_release(&f);
    free(im.d);
    free(zeros);
}

/* ======================================================================== */
/* Writer refusals                                                          */
/* ======================================================================== */

static void expect_add(annbf_writer *w, const char kind[4], uint32_t flags, uint32_t codec,
                       uint32_t type, uint64_t count, const void *data, size_t size, int want,
                       const char *what)
{
    annbf_error err;
    memset(&err, 0, sizeof err);
    int rc = annbf_writer_add(w, kind, flags, codec, type, count, data, size, &err);
    if (rc != want)
        fail_msg("annbf_writer_add %s: %d (%s), expected %d", what, rc, err.message, want);
    if (rc) {
        assert_int_equal(err.code, rc);
        assert_int_equal(err.offset, UINT64_MAX);
        assert_true(err.message[0] != '\0');
    }
}

static void test_writer_refuses_duplicate_kind(void **state)
{
    fixture *fx = *state;
    annbf_writer *w = writer_of(SMALL, N_SMALL);
    uint8_t b[4] = {1, 2, 3, 4};
    expect_add(w, "SMLE", 0, RAW, ANNBF_ELEM_BYTES, 4, b, 4, ANNBF_E_INVALID, "duplicate kind");
    expect_add(w, "SMLA", CRIT, ZSTD, ANNBF_ELEM_BYTES, 4, b, 4, ANNBF_E_INVALID, "duplicate kind");
    /* The refusal left the writer as it was: it still writes the same file. */
    char dir[512], path[512];
    subdir(dir, fx, "duplicate");
    annbf_error err;
    assert_int_equal(annbf_writer_commit(w, join(path, dir, "x.annb"), NULL, &err), ANNBF_OK);
    annbf_writer_free(w);
    expect_file(path, fx->small, fx->small_size);
}

/* 256 sections is the maximum (2.4): the 257th is refused and the 256 still
 * make a valid bundle. */
static void test_writer_refuses_257th_section(void **state)
{
    fixture *fx = *state;
    annbf_writer *w = NULL;
    annbf_error err;
    assert_int_equal(annbf_writer_new(&w, &err), ANNBF_OK);
    uint8_t one = 7;
    char kind[8];
    for (unsigned i = 0; i < ANNBF_MAX_SECTIONS; i++) {
        snprintf(kind, sizeof kind, "S%03u", i);
        if (i % 2)
            expect_add(w, kind, 0, ZSTD, ANNBF_ELEM_BYTES, 1, &one, 1, ANNBF_OK, kind);
        else
            expect_add(w, kind, 0, RAW, ANNBF_ELEM_U64, 0, NULL, 0, ANNBF_OK, kind);
    }
    expect_add(w, "S256", 0, RAW, ANNBF_ELEM_BYTES, 1, &one, 1, ANNBF_E_INVALID, "257th");
    char dir[512], path[512];
    subdir(dir, fx, "max");
    assert_int_equal(annbf_writer_commit(w, join(path, dir, "x.annb"), NULL, &err), ANNBF_OK);
    annbf_writer_free(w);
    image im;
    im.d = read_whole(path, &im.size);
    annbf_file f;
    assert_int_equal(parse(&f, &im, &err), ANNBF_OK);
    assert_int_equal(f.section_count, ANNBF_MAX_SECTIONS);
    assert_int_equal(verify(&f, NULL, &err), ANNBF_OK);
    for (uint32_t i = 1; i < ANNBF_MAX_SECTIONS; i += 2) {
        const void *out;
        void *owned;
        assert_int_equal(annbf_section_load(&f, i, &out, &owned, &err), ANNBF_OK);
        assert_int_equal(*(const uint8_t *)out, 7);
        free(owned);
    }
    annbf_file_release(&f);
    free(im.d);
}

/* Arguments that would make a file the reader refuses are refused at add
 * time, and a writer without sections does not commit. */
static void test_writer_refuses_bad_arguments(void **state)
{
    fixture *fx = *state;
    annbf_writer *w = NULL;
    annbf_error err;
    assert_int_equal(annbf_writer_new(&w, &err), ANNBF_OK);
    uint8_t b[8] = {0};
    expect_add(w, "CODC", 0, 2, ANNBF_ELEM_BYTES, 8, b, 8, ANNBF_E_INVALID, "codec 2");
    expect_add(w, "TYPE", 0, RAW, 5, 8, b, 8, ANNBF_E_INVALID, "element type 5");
    expect_add(w, "FLAG", 2, RAW, ANNBF_ELEM_BYTES, 8, b, 8, ANNBF_E_INVALID, "flag bit 1");
    expect_add(w, "NULL", 0, RAW, ANNBF_ELEM_BYTES, 8, NULL, 8, ANNBF_E_INVALID, "NULL data");
    /* SPEC 3.1 and 3.5, which the reader enforces: */
    expect_add(w, "CNT3", 0, RAW, ANNBF_ELEM_U32, 3, b, 8, ANNBF_E_INVALID, "8 bytes as 3 u32");
    expect_add(w, "CNTZ", 0, ZSTD, ANNBF_ELEM_U64, 2, b, 8, ANNBF_E_INVALID, "8 bytes as 2 u64");
    expect_add(w, "CNTW", 0, RAW, ANNBF_ELEM_U64, (1ull << 61) + 1, b, 8, ANNBF_E_INVALID,
               "count whose size wraps to 8");
    expect_add(w, "K\x01 1", 0, RAW, ANNBF_ELEM_BYTES, 8, b, 8, ANNBF_E_INVALID,
               "non-printable kind");
    expect_add(w, "K\x80 2", 0, RAW, ANNBF_ELEM_BYTES, 8, b, 8, ANNBF_E_INVALID,
               "non-ASCII kind");
    char dir[512], path[512];
    subdir(dir, fx, "badargs");
    memset(&err, 0, sizeof err);
    assert_int_equal(annbf_writer_commit(w, join(path, dir, "x.annb"), NULL, &err),
                     ANNBF_E_INVALID); /* nothing added */
    assert_int_equal(err.code, ANNBF_E_INVALID);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_tmp_files(dir), 0);
    /* Empty sections with NULL data are fine. */
    expect_add(w, "EMPT", 0, RAW, ANNBF_ELEM_F32, 0, NULL, 0, ANNBF_OK, "empty raw");
    expect_add(w, "EMPZ", 0, ZSTD, ANNBF_ELEM_F32, 0, NULL, 0, ANNBF_OK, "empty zstd");
    assert_int_equal(annbf_writer_commit(w, path, NULL, &err), ANNBF_OK);
    annbf_writer_free(w);
    annbf_writer_free(NULL);
    image im;
    im.d = read_whole(path, &im.size);
    annbf_file f;
    assert_int_equal(parse(&f, &im, &err), ANNBF_OK);
    assert_int_equal(verify(&f, NULL, &err), ANNBF_OK);
    annbf_file_release(&f);
    free(im.d);
}

/* ======================================================================== */
/* The table of bad files                                                   */
/* ======================================================================== */

/* Offset sentinel: the expected offset is the one the edit returns. */
#define AT_EDIT (UINT64_MAX - 1)

typedef struct bad_case {
    const char *name;
    int small;               /* damage SMALL rather than RICH */
    /* either a field set (or add, mod 2^(8*width)) at absolute offset `at`... */
    uint64_t at;
    unsigned width;
    uint64_t value;
    int add;
    /* ...or an edit, which returns the offset the error should name */
    uint64_t (*edit)(image *im);
    int reseal;              /* recompute the header checksum after the field set */
    int parse_rc;            /* expected from annbf_file_parse */
    uint64_t parse_off;
    int verify_rc;           /* expected from annbf_file_verify, when parse is OK */
    uint64_t verify_off;
    int (*known)(const char kind[4]);
} bad_case;

#define CUT(n)                                                                                 \
    static uint64_t cut_##n(image *im)                                                         \
    {                                                                                          \
        image_resize(im, n, 0);                                                                \
        return n;                                                                              \
    }
CUT(0)
CUT(7)
CUT(8)
CUT(64)
CUT(127)

static uint64_t cut_last_byte(image *im)
{
    image_resize(im, im->size - 1, 0);
    return im->size;
}

static uint64_t trailing_byte(image *im)
{
    uint64_t end = im->size;
    image_resize(im, im->size + 1, 0xab);
    return end;
}

static uint64_t trailing_zero_page(image *im)
{
    uint64_t end = im->size;
    image_resize(im, im->size + 4096, 0);
    return end;
}

static uint64_t file_size_plus_one(image *im)
{
    le64_put(im->d + H_FILE_SIZE, im->size + 1);
    reseal(im);
    return im->size;
}

static uint64_t file_size_max(image *im)
{
    le64_put(im->d + H_FILE_SIZE, UINT64_MAX);
    reseal(im);
    return im->size;
}

static uint64_t file_size_minus_one(image *im)
{
    le64_put(im->d + H_FILE_SIZE, im->size - 1);
    reseal(im);
    return im->size - 1;
}

/* Declared size grown with the file, zero bytes after the last section (3.7). */
static uint64_t zeros_after_last_section(image *im)
{
    uint64_t end = im->size;
    image_resize(im, im->size + 64, 0);
    le64_put(im->d + H_FILE_SIZE, im->size);
    reseal(im);
    return end;
}

static uint64_t header_checksum_flipped(image *im)
{
    im->d[H_CHECKSUM + 3] ^= 0x10;
    return H_CHECKSUM;
}

/* The table no longer fits in SMALL (section_count 256, no reseal: the
 * table check comes before the checksum). */
static uint64_t table_past_end(image *im)
{
    assert_true(ENTRY(ANNBF_MAX_SECTIONS) > im->size);
    le32_put(im->d + H_SECTION_COUNT, ANNBF_MAX_SECTIONS);
    return im->size;
}

/* One entry fewer: the file goes on after the last listed section. */
static uint64_t count_one_less(image *im)
{
    le32_put(im->d + H_SECTION_COUNT, N_RICH - 1);
    reseal(im);
    return sec_offset(im, N_RICH - 2) + sec_stored(im, N_RICH - 2);
}

static uint64_t duplicate_kind(image *im)
{
    memcpy(ent(im, S_IDS) + E_KIND, ent(im, S_BYTR) + E_KIND, 4);
    reseal(im);
    return ENTRY(S_IDS);
}

static uint64_t overlap_previous(image *im)
{
    assert_true(sec_stored(im, S_F32Z) > 64);
    le64_put(ent(im, S_BYTZ) + E_OFFSET, sec_offset(im, S_F32Z) + 64);
    reseal(im);
    return ENTRY(S_BYTZ);
}

static uint64_t empty_inside_previous(image *im)
{
    le64_put(ent(im, S_EMPZ) + E_OFFSET, sec_offset(im, S_U64Z));
    reseal(im);
    return ENTRY(S_EMPZ);
}

static uint64_t small_first_in_table(image *im)
{
    le64_put(ent(im, M_A) + E_OFFSET, ENTRY(1)); /* 64-aligned, inside the table */
    reseal(im);
    return ENTRY(M_A);
}

static uint64_t swap_entries(image *im)
{
    uint8_t t[ANNBF_ENTRY_SIZE];
    memcpy(t, ent(im, S_U32Z), sizeof t);
    memcpy(ent(im, S_U32Z), ent(im, S_U64R), sizeof t);
    memcpy(ent(im, S_U64R), t, sizeof t);
    reseal(im);
    return ENTRY(S_U64R);
}

static uint64_t offset_plus_stored_wraps(image *im)
{
    le64_put(ent(im, S_U64Z) + E_STORED, 0 - sec_offset(im, S_U64Z));
    reseal(im);
    return ENTRY(S_U64Z);
}

static uint64_t raw_offset_plus_stored_wraps(image *im)
{
    uint64_t n = 0 - sec_offset(im, S_BYTR);
    le64_put(ent(im, S_BYTR) + E_STORED, n);
    le64_put(ent(im, S_BYTR) + E_DECODED, n);
    le64_put(ent(im, S_BYTR) + E_COUNT, n);
    reseal(im);
    return ENTRY(S_BYTR);
}

static uint64_t last_nonempty_past_end(image *im)
{
    le64_put(ent(im, S_I64Z) + E_STORED, im->size - sec_offset(im, S_I64Z) + 1);
    reseal(im);
    return ENTRY(S_I64Z);
}

static uint64_t decoded_above_limit(image *im)
{
    le64_put(ent(im, S_BYTZ) + E_DECODED, (1ull << 40) + 1);
    le64_put(ent(im, S_BYTZ) + E_COUNT, (1ull << 40) + 1);
    reseal(im);
    return ENTRY(S_BYTZ);
}

static uint64_t zstd_ratio(image *im, uint64_t extra)
{
    uint64_t n = sec_stored(im, S_BYTZ) * ANNBF_ZSTD_MAX_RATIO + extra;
    le64_put(ent(im, S_BYTZ) + E_DECODED, n);
    le64_put(ent(im, S_BYTZ) + E_COUNT, n);
    reseal(im);
    return extra > ANNBF_ZSTD_SLACK ? ENTRY(S_BYTZ) : sec_offset(im, S_BYTZ);
}
static uint64_t zstd_ratio_bomb(image *im) { return zstd_ratio(im, ANNBF_ZSTD_SLACK + 1); }
static uint64_t zstd_ratio_at_bound(image *im) { return zstd_ratio(im, ANNBF_ZSTD_SLACK); }

/* 3.9: one nonzero byte in a gap. */
static uint64_t gap_after_table(image *im)
{
    im->d[ENTRY(N_RICH)] = 1;
    return ENTRY(N_RICH);
}

static uint64_t gap_before_first_section(image *im)
{
    uint64_t at = sec_offset(im, S_BYTR) - 1;
    im->d[at] = 0x80;
    return at;
}

static uint64_t gap_before_raw_section(image *im)
{
    uint64_t at = sec_offset(im, S_IDS) - 1;
    assert_true(at >= sec_offset(im, S_EMPZ) + sec_stored(im, S_EMPZ));
    im->d[at] = 1;
    return at;
}

static uint64_t gap_before_last_empty(image *im)
{
    uint64_t at = im->size - 1;
    assert_true(at >= sec_offset(im, S_I64Z) + sec_stored(im, S_I64Z));
    im->d[at] = 0xff;
    return at;
}

static uint64_t gap_between_zstd_sections(image *im)
{
    uint64_t at = sec_offset(im, M_E) - 1;
    assert_true(at >= sec_offset(im, M_A) + sec_stored(im, M_A));
    im->d[at] = 1;
    return at;
}

static uint64_t table_checksum_wrong(image *im)
{
    uint8_t *c = ent(im, S_F32Z) + E_CHECKSUM;
    le64_put(c, le64_get(c) ^ 1);
    reseal(im);
    return sec_offset(im, S_F32Z);
}

/* Where a zstd frame's Frame_Content_Size field is, and its width
 * (RFC 8878 3.1.1.1). */
static size_t fcs_field(const uint8_t *frame, unsigned *width)
{
    assert_int_equal(le32_get(frame), ZSTD_FRAME_MAGIC);
    uint8_t fhd = frame[4];
    unsigned single = fhd >> 5 & 1;
    static const unsigned did[4] = {0, 1, 2, 4}, fcs[4] = {0, 2, 4, 8};
    *width = (fhd >> 6) == 0 ? single : fcs[fhd >> 6];
    assert_true(*width > 0);
    return 5 + (single ? 0 : 1) + did[fhd & 3];
}

static uint64_t frame_content_size_changed(image *im, unsigned i)
{
    uint8_t *frame = im->d + sec_offset(im, i);
    unsigned width;
    uint8_t *p = frame + fcs_field(frame, &width);
    field_put(p, width, field_get(p, width) + 1);
    reseal_section(im, i);
    return sec_offset(im, i);
}
static uint64_t fcs_u64z(image *im) { return frame_content_size_changed(im, S_U64Z); }
static uint64_t fcs_u32z(image *im) { return frame_content_size_changed(im, S_U32Z); }
static uint64_t fcs_empz(image *im) { return frame_content_size_changed(im, S_EMPZ); }

static uint64_t frame_magic_damaged(image *im)
{
    im->d[sec_offset(im, S_I64Z)] ^= 1;
    reseal_section(im, S_I64Z);
    return sec_offset(im, S_I64Z);
}

/* SMALL: the last frame loses its last byte (declared size unchanged). */
static uint64_t frame_cut_short(image *im)
{
    image_resize(im, im->size - 1, 0);
    le64_put(ent(im, M_B) + E_STORED, sec_stored(im, M_B) - 1);
    le64_put(im->d + H_FILE_SIZE, im->size);
    reseal_section(im, M_B);
    return sec_offset(im, M_B);
}

/* SMALL: "one zstd frame" (3 codec): a second frame after it, here the
 * empty frame of SMLE, which adds no bytes when decoded. */
static uint64_t second_frame(image *im)
{
    uint8_t frame[64];
    size_t n = (size_t)sec_stored(im, M_E);
    assert_true(n <= sizeof frame);
    memcpy(frame, im->d + sec_offset(im, M_E), n);
    append_to_last(im, frame, n);
    return sec_offset(im, M_B);
}

/* SMALL: a skippable frame (hidden bytes, ignored by ZSTD_decompress). */
static uint64_t trailing_skippable_frame(image *im)
{
    uint8_t sk[12];
    le32_put(sk, ZSTD_SKIPPABLE_MAGIC);
    le32_put(sk + 4, 4);
    memcpy(sk + 8, "junk", 4);
    append_to_last(im, sk, sizeof sk);
    return sec_offset(im, M_B);
}

/* SMALL: the empty section's frame replaced by a skippable frame of the
 * same length, which "decodes" to zero bytes. */
static uint64_t only_skippable_frame(image *im)
{
    uint64_t off = sec_offset(im, M_E), n = sec_stored(im, M_E);
    assert_true(n >= 8);
    le32_put(im->d + off, ZSTD_SKIPPABLE_MAGIC);
    le32_put(im->d + off + 4, (uint32_t)(n - 8));
    memset(im->d + off + 8, 'x', (size_t)(n - 8));
    reseal_section(im, M_E);
    return off;
}

/* SMALL: the last section recompressed as a valid frame that does not
 * declare its content size (3.8 requires it). */
static uint64_t frame_without_content_size(image *im)
{
    size_t size;
    uint8_t *p = payload(&SMALL[M_B], &size);
    size_t cap = ZSTD_compressBound(size);
    uint8_t *frame = malloc(cap);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    assert_true(frame && c);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
    size_t n = ZSTD_compress2(c, frame, cap, p, size);
    assert_false(ZSTD_isError(n));
    assert_int_equal(ZSTD_getFrameContentSize(frame, n), ZSTD_CONTENTSIZE_UNKNOWN);
    uint64_t off = sec_offset(im, M_B);
    image_resize(im, (size_t)off + n, 0);
    memcpy(im->d + off, frame, n);
    le64_put(ent(im, M_B) + E_STORED, n);
    le64_put(im->d + H_FILE_SIZE, im->size);
    reseal_section(im, M_B);
    ZSTD_freeCCtx(c);
    free(frame);
    free(p);
    return off;
}

#define HDR(f) .at = (f)
#define ENT(i, f) .at = ENTRY(i) + (f)

static const bad_case BAD[] = {
    /* ---- 2.1 identification ---- */
    {"wrong magic", HDR(0), .width = 1, .value = 'X', .parse_rc = ANNBF_E_NOT_BUNDLE, .parse_off = 0},
    {"magic \\r\\n turned into \\n\\n (text mode)", HDR(4), .width = 1, .value = '\n',
     .parse_rc = ANNBF_E_NOT_BUNDLE, .parse_off = 0},
    {"magic last byte", HDR(7), .width = 1, .value = 0, .parse_rc = ANNBF_E_NOT_BUNDLE},
    {"empty file", .edit = cut_0, .parse_rc = ANNBF_E_NOT_BUNDLE, .parse_off = 0},
    {"7 bytes of the magic", .edit = cut_7, .parse_rc = ANNBF_E_NOT_BUNDLE, .parse_off = 0},
    {"the magic alone (8 bytes)", .edit = cut_8, .parse_rc = ANNBF_E_TRUNCATED, .parse_off = AT_EDIT},
    {"64 bytes with magic", .edit = cut_64, .parse_rc = ANNBF_E_TRUNCATED, .parse_off = AT_EDIT},
    {"127 bytes with magic", .edit = cut_127, .parse_rc = ANNBF_E_TRUNCATED, .parse_off = AT_EDIT},
    /* ---- 2.2 versions ---- */
    {"major 2", HDR(H_MAJOR), .width = 2, .value = 2, .reseal = 1, .parse_rc = ANNBF_E_VERSION,
     .parse_off = H_MAJOR},
    {"major 0xffff", HDR(H_MAJOR), .width = 2, .value = 0xffff, .reseal = 1,
     .parse_rc = ANNBF_E_VERSION, .parse_off = H_MAJOR},
    {"major 2, checksum not updated", HDR(H_MAJOR), .width = 2, .value = 2,
     .parse_rc = ANNBF_E_VERSION, .parse_off = H_MAJOR},
    {"major 0", HDR(H_MAJOR), .width = 2, .value = 0, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = H_MAJOR},
    {"minor 7 (1.7) is read", HDR(H_MINOR), .width = 2, .value = 7, .reseal = 1},
    {"minor 0xffff is read", HDR(H_MINOR), .width = 2, .value = 0xffff, .reseal = 1},
    /* ---- 2.4 sizes ---- */
    {"header_size 256", HDR(H_HEADER_SIZE), .width = 4, .value = 256, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = H_HEADER_SIZE},
    {"entry_size 32", HDR(H_ENTRY_SIZE), .width = 4, .value = 32, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = H_HEADER_SIZE},
    {"table_offset 192", HDR(H_TABLE_OFFSET), .width = 8, .value = 192, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = H_HEADER_SIZE},
    {"file_size one more than the file", .edit = file_size_plus_one,
     .parse_rc = ANNBF_E_TRUNCATED, .parse_off = AT_EDIT},
    {"file_size UINT64_MAX", .edit = file_size_max, .parse_rc = ANNBF_E_TRUNCATED,
     .parse_off = AT_EDIT},
    {"last byte missing", .edit = cut_last_byte, .parse_rc = ANNBF_E_TRUNCATED,
     .parse_off = AT_EDIT},
    {"trailing garbage byte", .edit = trailing_byte, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = AT_EDIT},
    {"trailing zero page", .edit = trailing_zero_page, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = AT_EDIT},
    {"file_size one less than the file", .edit = file_size_minus_one,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"section_count 0", HDR(H_SECTION_COUNT), .width = 4, .value = 0, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = H_SECTION_COUNT},
    {"section_count 257", HDR(H_SECTION_COUNT), .width = 4, .value = 257,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = H_SECTION_COUNT},
    {"section_count 0xffffffff", HDR(H_SECTION_COUNT), .width = 4, .value = 0xffffffff,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = H_SECTION_COUNT},
    {"table past the end of the file", .small = 1, .edit = table_past_end,
     .parse_rc = ANNBF_E_TRUNCATED, .parse_off = AT_EDIT},
    {"section_count one more (a zero entry)", HDR(H_SECTION_COUNT), .width = 4,
     .value = N_RICH + 1, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(N_RICH)},
    {"section_count one less (bytes after the last section)", .edit = count_one_less,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"zero bytes after the last section", .edit = zeros_after_last_section,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    /* ---- 2.5 checksum, reserved ---- */
    {"header checksum wrong", .edit = header_checksum_flipped, .parse_rc = ANNBF_E_CHECKSUM,
     .parse_off = H_CHECKSUM},
    {"minor changed, checksum not updated", HDR(H_MINOR), .width = 2, .value = 7,
     .parse_rc = ANNBF_E_CHECKSUM, .parse_off = H_CHECKSUM},
    {"table entry changed, checksum not updated", ENT(S_F32Z, E_CHECKSUM), .width = 1,
     .value = 0x5a, .add = 1, .parse_rc = ANNBF_E_CHECKSUM, .parse_off = H_CHECKSUM},
    {"reserved header byte 56", HDR(H_RESERVED), .width = 1, .value = 1, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = H_RESERVED},
    {"reserved header byte 90", HDR(90), .width = 1, .value = 0x20, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = 90},
    {"reserved header byte 119", HDR(119), .width = 1, .value = 0x80, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = 119},
    /* ---- 2.3 features ---- */
    {"unknown required feature bit 0", HDR(H_REQUIRED), .width = 8, .value = 1, .reseal = 1,
     .parse_rc = ANNBF_E_VERSION, .parse_off = H_REQUIRED},
    {"unknown required feature bit 63", HDR(H_REQUIRED), .width = 8, .value = 1ull << 63,
     .reseal = 1, .parse_rc = ANNBF_E_VERSION, .parse_off = H_REQUIRED},
    {"unknown optional feature bit is ignored", HDR(H_OPTIONAL), .width = 8, .value = 1,
     .reseal = 1},
    {"all optional feature bits are ignored", HDR(H_OPTIONAL), .width = 8, .value = UINT64_MAX,
     .reseal = 1},
    /* ---- 3.1 entry fields ---- */
    {"kind with a control byte", ENT(S_U32R, E_KIND + 2), .width = 1, .value = 0x1f,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U32R)},
    {"kind with DEL", ENT(S_U32R, E_KIND), .width = 1, .value = 0x7f, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U32R)},
    {"kind with a byte >= 0x80", ENT(S_I64Z, E_KIND + 1), .width = 1, .value = 0xc3,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_I64Z)},
    {"kind with NUL", ENT(S_IDS, E_KIND + 3), .width = 1, .value = 0, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_IDS)},
    {"duplicate kind", .edit = duplicate_kind, .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"flag bit 1", ENT(S_U64Z, E_FLAGS), .width = 4, .value = 2, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U64Z)},
    {"flag bit 31 besides critical", ENT(S_BYTR, E_FLAGS), .width = 4, .value = 0x80000001,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_BYTR)},
    {"codec 2", ENT(S_U64Z, E_CODEC), .width = 4, .value = 2, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U64Z)},
    {"codec 0xffffffff", ENT(S_U32R, E_CODEC), .width = 4, .value = 0xffffffff, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U32R)},
    {"element type 5", ENT(S_F32R, E_ELEM_TYPE), .width = 4, .value = 5, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_F32R)},
    {"element type 0xffffffff", ENT(S_EMPR, E_ELEM_TYPE), .width = 4, .value = 0xffffffff,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_EMPR)},
    {"entry reserved byte", ENT(S_EMPZ, E_RESERVED + 7), .width = 1, .value = 1, .reseal = 1,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_EMPZ)},
    /* ---- 3.2 alignment ---- */
    {"raw offset 64- but not 4096-aligned", ENT(S_U32R, E_OFFSET), .width = 8, .value = 64,
     .add = 1, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U32R)},
    {"zstd offset not 64-aligned", ENT(S_U64Z, E_OFFSET), .width = 8, .value = 1, .add = 1,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U64Z)},
    {"empty raw offset not 4096-aligned", ENT(S_EMPR, E_OFFSET), .width = 8,
     .value = (uint64_t)-64, .add = 1, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = ENTRY(S_EMPR)},
    /* ---- 3.3 order, overlap ---- */
    {"first section inside the table (raw, offset 0)", ENT(S_BYTR, E_OFFSET), .width = 8,
     .value = 0, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_BYTR)},
    {"first section inside the table (zstd)", .small = 1, .edit = small_first_in_table,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"overlapping sections", .edit = overlap_previous, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = AT_EDIT},
    {"empty section inside the previous one", .edit = empty_inside_previous,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"entries out of offset order", .edit = swap_entries, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = AT_EDIT},
    /* ---- 3.4 bounds, overflow ---- */
    {"raw offset UINT64_MAX - 4095", ENT(S_EMPR, E_OFFSET), .width = 8,
     .value = UINT64_MAX - 4095, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = ENTRY(S_EMPR)},
    {"zstd offset UINT64_MAX - 63", ENT(S_U64Z, E_OFFSET), .width = 8, .value = UINT64_MAX - 63,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U64Z)},
    {"stored size UINT64_MAX", ENT(S_U64Z, E_STORED), .width = 8, .value = UINT64_MAX,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U64Z)},
    {"offset + stored size wraps to 0 (zstd)", .edit = offset_plus_stored_wraps,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"offset + stored size wraps to 0 (raw)", .edit = raw_offset_plus_stored_wraps,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"last data section one byte past the end", .edit = last_nonempty_past_end,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    /* ---- 3.5 sizes ---- */
    {"decoded size not count x element size", ENT(S_U64Z, E_DECODED), .width = 8, .value = 1,
     .add = 1, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U64Z)},
    {"element count one more", ENT(S_U32Z, E_COUNT), .width = 8, .value = 1, .add = 1,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U32Z)},
    {"element count whose size wraps to the decoded size", ENT(S_U64Z, E_COUNT), .width = 8,
     .value = 1ull << 61, .add = 1, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = ENTRY(S_U64Z)},
    {"element count UINT64_MAX", ENT(S_EMPZ, E_COUNT), .width = 8, .value = UINT64_MAX,
     .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_EMPZ)},
    {"decoded size above 2^40", .edit = decoded_above_limit, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = AT_EDIT},
    {"raw stored size 4 less than decoded", ENT(S_U32R, E_STORED), .width = 8,
     .value = (uint64_t)-4, .add = 1, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT,
     .parse_off = ENTRY(S_U32R)},
    {"raw decoded size 4 more than stored", ENT(S_U32R, E_DECODED), .width = 8, .value = 4,
     .add = 1, .reseal = 1, .parse_rc = ANNBF_E_CORRUPT, .parse_off = ENTRY(S_U32R)},
    /* ---- 3.6 ratio ---- */
    {"zstd decoded size one past the ratio bound", .edit = zstd_ratio_bomb,
     .parse_rc = ANNBF_E_CORRUPT, .parse_off = AT_EDIT},
    {"zstd decoded size at the ratio bound (frame disagrees)", .edit = zstd_ratio_at_bound,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    /* ---- 3.8 section checksums and frames (through annbf_file_verify) ---- */
    {"section checksum field wrong", .edit = table_checksum_wrong,
     .verify_rc = ANNBF_E_CHECKSUM, .verify_off = AT_EDIT},
    {"zstd frame content size differs (2-byte field)", .edit = fcs_u64z,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"zstd frame content size differs (small frame)", .edit = fcs_u32z,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"zstd frame content size differs (empty frame)", .edit = fcs_empz,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"zstd frame magic damaged", .edit = frame_magic_damaged, .verify_rc = ANNBF_E_CORRUPT,
     .verify_off = AT_EDIT},
    {"zstd frame cut short", .small = 1, .edit = frame_cut_short, .verify_rc = ANNBF_E_CORRUPT,
     .verify_off = AT_EDIT},
    {"zstd section of two frames", .small = 1, .edit = second_frame,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"zstd frame followed by a skippable frame", .small = 1, .edit = trailing_skippable_frame,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"zstd frame without its content size", .small = 1, .edit = frame_without_content_size,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"empty zstd section holding a skippable frame", .small = 1, .edit = only_skippable_frame,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    /* ---- 3.9 padding (parse OK, verify refuses) ---- */
    {"nonzero byte right after the table", .edit = gap_after_table,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"nonzero byte just before the first section", .edit = gap_before_first_section,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"nonzero byte in the gap before a raw section", .edit = gap_before_raw_section,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"nonzero byte in the padding before the last, empty section", .edit = gap_before_last_empty,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    {"nonzero byte between zstd sections", .small = 1, .edit = gap_between_zstd_sections,
     .verify_rc = ANNBF_E_CORRUPT, .verify_off = AT_EDIT},
    /* ---- 3.10 critical kinds ---- */
    {"unknown critical kind", .known = known_but_ids, .verify_rc = ANNBF_E_VERSION,
     .verify_off = ENTRY(S_IDS)},
    {"no kind known: the first critical one is named", .known = known_none,
     .verify_rc = ANNBF_E_VERSION, .verify_off = ENTRY(S_BYTR)},
    {"unknown non-critical kind is ignored", .known = known_but_u32r},
    {"critical flag cleared: unknown kind ignored", ENT(S_IDS, E_FLAGS), .width = 4, .value = 0,
     .reseal = 1, .known = known_but_ids},
    {"critical flag set on an unknown kind", ENT(S_U32R, E_FLAGS), .width = 4, .value = CRIT,
     .reseal = 1, .known = known_but_u32r, .verify_rc = ANNBF_E_VERSION,
     .verify_off = ENTRY(S_U32R)},
};

static int check_code(const char *name, const char *stage, int rc, const annbf_error *err,
                      int want, uint64_t want_off)
{
    if (rc != want) {
        print_error("FAIL %-60s %s returned %d, expected %d (%s)\n", name, stage, rc, want,
                    rc ? err->message : "no error");
        return 1;
    }
    if (rc && want_off != err->offset) {
        print_error("FAIL %-60s %s offset %" PRIu64 ", expected %" PRIu64 " (%s)\n", name, stage,
                    err->offset, want_off, err->message);
        return 1;
    }
    return 0;
}

static void test_bad_files(void **state)
{
    fixture *fx = *state;
    int failures = 0;
    for (size_t c = 0; c < sizeof BAD / sizeof BAD[0]; c++) {
        const bad_case *bc = &BAD[c];
        image im = bc->small ? image_of(fx->small, fx->small_size)
                             : image_of(fx->rich, fx->rich_size);
        uint64_t off = UINT64_MAX;
        if (bc->edit) off = bc->edit(&im);
        if (bc->width) {
            uint8_t *p = im.d + bc->at;
            field_put(p, bc->width, bc->add ? field_get(p, bc->width) + bc->value : bc->value);
        }
        if (bc->reseal) reseal(&im);
        annbf_file f;
        annbf_error err;
        int rc = parse(&f, &im, &err);
        int bad = check_code(bc->name, "parse", rc, &err, bc->parse_rc,
                             bc->parse_off == AT_EDIT ? off : bc->parse_off);
        if (rc == ANNBF_OK) {
            if (rc == bc->parse_rc) {
                rc = verify(&f, bc->known, &err);
                bad = check_code(bc->name, "verify", rc, &err, bc->verify_rc,
                                 bc->verify_off == AT_EDIT ? off : bc->verify_off);
            }
            annbf_file_release(&f);
        }
        failures += bad;
        free(im.d);
    }
    assert_int_equal(failures, 0);
}

/* A flipped byte in each section's payload: that section fails its checksum
 * (3.8) naming the section's offset; the others still load. */
static void test_payload_flips(void **state)
{
    fixture *fx = *state;
    for (uint32_t i = 0; i < N_RICH; i++) {
        image im = image_of(fx->rich, fx->rich_size);
        uint64_t off = sec_offset(&im, i), n = sec_stored(&im, i);
        if (n == 0) {
            free(im.d);
            continue;
        }
        im.d[off + n / 2] ^= 0x04;
        annbf_file f;
        annbf_error err;
        assert_int_equal(parse(&f, &im, &err), ANNBF_OK);
        for (uint32_t j = 0; j < N_RICH; j++) {
            const void *out = NULL;
            void *owned = NULL;
            memset(&err, 0, sizeof err);
            int rc = annbf_section_load(&f, j, &out, &owned, &err);
            if (j == i) {
                if (rc != ANNBF_E_CHECKSUM || err.offset != off)
                    fail_msg("%.4s flipped: load %d at %" PRIu64 " (%s)", RICH[i].kind, rc,
                             err.offset, err.message);
                assert_int_equal(err.code, rc);
                assert_non_null(strstr(err.message, "expected 0x")); /* 1.1 */
                assert_non_null(strstr(err.message, "found 0x"));
                assert_null(out);
                assert_null(owned);
            } else {
                assert_int_equal(rc, ANNBF_OK);
            }
            free(owned);
        }
        assert_int_equal(verify(&f, NULL, &err), ANNBF_E_CHECKSUM);
        assert_int_equal(err.offset, off);
        annbf_file_release(&f);
        free(im.d);
    }
}

/* ======================================================================== */
/* Exhaustive damage                                                        */
/* ======================================================================== */

/* Every prefix: NOT_BUNDLE below 8 bytes, TRUNCATED from there, and the
 * offset named is the real size. */
static void truncate_everywhere(const uint8_t *data, size_t size)
{
    for (size_t n = 0; n < size; n++) {
        image im = image_of(data, n);
        annbf_file f;
        annbf_error err;
        int rc = parse(&f, &im, &err);
        int want = n < 8 ? ANNBF_E_NOT_BUNDLE : ANNBF_E_TRUNCATED;
        if (rc != want || err.offset != (n < 8 ? 0 : n))
            fail_msg("cut at %zu of %zu: %d at %" PRIu64 ", expected %d (%s)", n, size, rc,
                     err.offset, want, err.message);
        free(im.d);
    }
}

static void test_truncation_everywhere(void **state)
{
    fixture *fx = *state;
    truncate_everywhere(fx->small, fx->small_size);
    truncate_everywhere(fx->rich, fx->rich_size);
}

/* Every prefix again, but with file_size and the header checksum made to
 * agree with the cut: the damage is now only in the sections, which parse
 * or verify must still catch. */
static void truncate_consistently(const uint8_t *data, size_t size)
{
    uint32_t count = le32_get(data + H_SECTION_COUNT);
    for (size_t n = 0; n < size; n++) {
        image im = image_of(data, n);
        if (n >= ANNBF_HEADER_SIZE) {
            le64_put(im.d + H_FILE_SIZE, n);
            if (ENTRY(count) <= n) reseal(&im);
        }
        annbf_file f;
        annbf_error err;
        int rc = parse(&f, &im, &err);
        if (rc == ANNBF_OK) {
            rc = verify(&f, NULL, &err);
            annbf_file_release(&f);
        }
        if (rc == ANNBF_OK) fail_msg("cut at %zu of %zu with a matching header is accepted", n, size);
        assert_true(err.offset <= n);
        free(im.d);
    }
}

static void test_truncation_consistent_header(void **state)
{
    fixture *fx = *state;
    truncate_consistently(fx->small, fx->small_size);
    truncate_consistently(fx->rich, fx->rich_size);
}

/* Every bit of the header and table is covered by the header checksum (or
 * is the magic, or the checksum itself): a flip never parses. */
static void flip_header_and_table(const uint8_t *data, size_t size)
{
    uint32_t count = le32_get(data + H_SECTION_COUNT);
    image im = image_of(data, size);
    for (uint64_t bit = 0; bit < ENTRY(count) * 8; bit++) {
        uint64_t byte = bit / 8;
        im.d[byte] ^= (uint8_t)(1u << (bit % 8));
        annbf_file f;
        annbf_error err;
        int rc = parse(&f, &im, &err);
        if (rc == ANNBF_OK) {
            int vrc = verify(&f, NULL, &err);
            annbf_file_release(&f);
            fail_msg("bit %" PRIu64 " (byte %" PRIu64 ") flipped: parse OK, verify %d", bit, byte,
                     vrc);
        }
        if (byte < 8) assert_int_equal(rc, ANNBF_E_NOT_BUNDLE);
        assert_true(err.offset <= size);
        im.d[byte] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_memory_equal(im.d, data, size);
    free(im.d);
}

static void test_bit_flips_header_and_table(void **state)
{
    fixture *fx = *state;
    flip_header_and_table(fx->small, fx->small_size);
    flip_header_and_table(fx->rich, fx->rich_size);
}

/* A flip after the table parses (payloads are not read by parse) and fails
 * verification: CHECKSUM at the section's offset inside a payload, CORRUPT
 * at the byte itself in padding. `every_bit` or one bit per byte. */
static void flip_after_table(const uint8_t *data, size_t size, int every_bit)
{
    image im = image_of(data, size);
    annbf_file good;
    annbf_error err;
    assert_int_equal(parse(&good, &im, &err), ANNBF_OK);
    for (uint64_t byte = ENTRY(good.section_count); byte < size; byte++) {
        uint64_t want_off = byte;
        int want = ANNBF_E_CORRUPT;
        for (uint32_t i = 0; i < good.section_count; i++) {
            const annbf_section *s = &good.sections[i];
            if (byte >= s->offset && byte < s->offset + s->stored_size) {
                want = ANNBF_E_CHECKSUM;
                want_off = s->offset;
            }
        }
        for (unsigned b = every_bit ? 0 : byte % 8; b < (every_bit ? 8u : byte % 8 + 1); b++) {
            im.d[byte] ^= (uint8_t)(1u << b);
            annbf_file f;
            assert_int_equal(parse(&f, &im, &err), ANNBF_OK);
            int rc = verify(&f, NULL, &err);
            if (rc != want || err.offset != want_off)
                fail_msg("byte %" PRIu64 " bit %u flipped: verify %d at %" PRIu64
                         ", expected %d at %" PRIu64 " (%s)", byte, b, rc, err.offset, want,
                         want_off, err.message);
            annbf_file_release(&f);
            im.d[byte] ^= (uint8_t)(1u << b);
        }
    }
    annbf_file_release(&good);
    free(im.d);
}

static void test_bit_flips_after_table(void **state)
{
    fixture *fx = *state;
    flip_after_table(fx->small, fx->small_size, 1);
    flip_after_table(fx->rich, fx->rich_size, 0);
}

/* ======================================================================== */
/* Atomic commit (4.3)                                                      */
/* ======================================================================== */

static void test_commit_into_missing_directory(void **state)
{
    fixture *fx = *state;
    char dir[512], missing[512], path[512];
    subdir(dir, fx, "missing");
    join(missing, dir, "nope");
    expect_commit_io_error(join(path, missing, "x.annb"));
    assert_int_equal(access(missing, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            fail_msg("left behind: %s", e->d_name);
    closedir(d);
}

static void test_commit_replaces_existing_file(void **state)
{
    fixture *fx = *state;
    char dir[512], path[512];
    subdir(dir, fx, "replace");
    write_whole(join(path, dir, "b.annb"), "old content", 11);
    uint64_t written = 0;
    commit_specs(path, SMALL, N_SMALL, &written);
    assert_int_equal(written, fx->small_size);
    expect_file(path, fx->small, fx->small_size);
    /* and again over a bundle */
    commit_specs(path, RICH, N_RICH, &written);
    expect_file(path, fx->rich, fx->rich_size);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644); /* not mkstemp's 0600 */
    assert_int_equal(count_tmp_files(dir), 0);
}

/* A directory at the target is refused (SPEC 4.3, also as root): the commit
 * reports IO, the target and its content are untouched, no temporary file
 * is left, and the writer still commits elsewhere. */
static void test_failed_commit_leaves_target(void **state)
{
    fixture *fx = *state;
    char dir[512], target[512], keep[512], ok[512];
    subdir(dir, fx, "failed");
    join(target, dir, "t.annb");
    assert_int_equal(mkdir(target, 0755), 0);
    write_whole(join(keep, target, "keep"), "precious", 8);
    annbf_writer *w = writer_of(SMALL, N_SMALL);
    annbf_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(annbf_writer_commit(w, target, NULL, &err), ANNBF_E_IO);
    assert_int_equal(err.code, ANNBF_E_IO);
    assert_true(err.message[0] != '\0');
    struct stat st;
    assert_int_equal(stat(target, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    expect_file(keep, "precious", 8);
    assert_int_equal(count_tmp_files(dir), 0);
    assert_int_equal(count_tmp_files(target), 0);

    assert_int_equal(annbf_writer_commit(w, join(ok, dir, "ok.annb"), NULL, &err), ANNBF_OK);
    annbf_writer_free(w);
    expect_file(ok, fx->small, fx->small_size);
    assert_int_equal(count_tmp_files(dir), 0);
}

/* A path through a regular file: the temporary file cannot be made; the
 * file in the way is untouched. */
static void test_commit_through_a_file(void **state)
{
    fixture *fx = *state;
    char dir[512], plain[512], path[512];
    subdir(dir, fx, "through");
    write_whole(join(plain, dir, "plain.annb"), "old bundle", 10);
    expect_commit_io_error(join(path, plain, "x.annb"));
    expect_file(plain, "old bundle", 10);
    assert_int_equal(count_tmp_files(dir), 0);
}

/* The target exists; the temporary name beside it, which replacing it
 * needs, is too long for the file system (NAME_MAX): IO, old bytes intact. */
static void test_failed_commit_name_too_long(void **state)
{
    fixture *fx = *state;
    char dir[512], name[256], path[512];
    subdir(dir, fx, "toolong");
    memset(name, 'n', 250);
    memcpy(name + 245, ".annb", 6);
    write_whole(join(path, dir, name), "old bundle", 10);
    expect_commit_io_error(path);
    expect_file(path, "old bundle", 10);
    assert_int_equal(count_tmp_files(dir), 0);
}

/* A write fails half way (RLIMIT_FSIZE, EFBIG): IO, the partial temporary
 * file is removed, the bundle already at the target keeps its bytes, and
 * the same writer commits once the limit is lifted. */
static void test_failed_commit_mid_write(void **state)
{
    fixture *fx = *state;
    char dir[512], path[512];
    subdir(dir, fx, "midwrite");
    uint64_t written = 0;
    commit_specs(join(path, dir, "b.annb"), SMALL, N_SMALL, &written);
    assert_true(fx->rich_size > 2 * ANNBF_ALIGN_RAW);

    annbf_writer *w = writer_of(RICH, N_RICH);
    annbf_error err;
    memset(&err, 0, sizeof err);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = ANNBF_ALIGN_RAW;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_true(old_handler != SIG_ERR);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = annbf_writer_commit(w, path, &written, &err);
    int restored = setrlimit(RLIMIT_FSIZE, &old); /* before any assert can jump away */
    signal(SIGXFSZ, old_handler);
    assert_int_equal(restored, 0);
    if (rc != ANNBF_E_IO) fail_msg("commit past RLIMIT_FSIZE: %d (%s)", rc, err.message);
    assert_int_equal(err.code, ANNBF_E_IO);
    expect_file(path, fx->small, fx->small_size);
    assert_int_equal(count_tmp_files(dir), 0);

    assert_int_equal(annbf_writer_commit(w, path, &written, &err), ANNBF_OK);
    annbf_writer_free(w);
    assert_int_equal(written, fx->rich_size);
    expect_file(path, fx->rich, fx->rich_size);
    assert_int_equal(count_tmp_files(dir), 0);
}

/* The helpers the reader and the writer share. */
static void test_elem_size_and_ratio_bound(void **state)
{
    (void)state;
    assert_int_equal(annbf_elem_size(ANNBF_ELEM_BYTES), 1);
    assert_int_equal(annbf_elem_size(ANNBF_ELEM_U32), 4);
    assert_int_equal(annbf_elem_size(ANNBF_ELEM_U64), 8);
    assert_int_equal(annbf_elem_size(ANNBF_ELEM_I64), 8);
    assert_int_equal(annbf_elem_size(ANNBF_ELEM_F32), 4);
    assert_int_equal(annbf_elem_size(5), 0);
    assert_int_equal(annbf_elem_size(UINT32_MAX), 0);
    /* 3.6: decoded <= 256 * stored + 4096, exact at the edges, no overflow */
    assert_true(annbf_zstd_ratio_ok(0, 0));
    assert_true(annbf_zstd_ratio_ok(4096, 0));
    assert_false(annbf_zstd_ratio_ok(4097, 0));
    assert_true(annbf_zstd_ratio_ok(256 + 4096, 1));
    assert_false(annbf_zstd_ratio_ok(257 + 4096, 1));
    assert_true(annbf_zstd_ratio_ok(UINT64_MAX, UINT64_MAX));
    assert_true(annbf_zstd_ratio_ok(UINT64_MAX, (1ull << 56) - 16));
    assert_false(annbf_zstd_ratio_ok(UINT64_MAX, (1ull << 56) - 17));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_mapped),
        cmocka_unit_test(test_verify_good),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_writer_copies_data),
        cmocka_unit_test(test_writer_zstd_falls_back_to_raw),
        cmocka_unit_test(test_writer_refuses_duplicate_kind),
        cmocka_unit_test(test_writer_refuses_257th_section),
        cmocka_unit_test(test_writer_refuses_bad_arguments),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_payload_flips),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_truncation_consistent_header),
        cmocka_unit_test(test_bit_flips_header_and_table),
        cmocka_unit_test(test_bit_flips_after_table),
        cmocka_unit_test(test_commit_into_missing_directory),
        cmocka_unit_test(test_commit_replaces_existing_file),
        cmocka_unit_test(test_failed_commit_leaves_target),
        cmocka_unit_test(test_commit_through_a_file),
        cmocka_unit_test(test_failed_commit_name_too_long),
        cmocka_unit_test(test_failed_commit_mid_write),
        cmocka_unit_test(test_elem_size_and_ratio_bound),
    };
    return cmocka_run_group_tests_name("format", tests, setup, teardown);
}
