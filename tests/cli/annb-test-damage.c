/*
 * annb-test-damage - writes a copy of a bundle with one header field
 * changed and the header checksum recomputed, so that a reader gets past
 * the checksum to the field under test. For the CLI tests only.
 *
 *   annb-test-damage IN OUT FIELD VALUE
 *
 * FIELD: major, minor (u16), required, optional (u64 feature bits); or
 * fais32:OFF, fais64:OFF, a 4- or 8-byte field at byte OFF of the FAIS
 * section (a crafted Faiss index: the section checksum is recomputed too).
 * VALUE: a number (strtoull base 0: 2, 0x8000). Exit 0 ok, 1 failure.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned offset, width;
} fields[] = {
    {"major", TU_HDR_MAJOR, 2},
    {"minor", TU_HDR_MINOR, 2},
    {"required", TU_HDR_REQUIRED, 8},
    {"optional", TU_HDR_OPTIONAL, 8},
};

static int die(const char *what)
{
    fprintf(stderr, "annb-test-damage: %s\n", what);
    return 1;
}

/* Writes value at byte `at` of the FAIS payload and repairs its checksum. */
static int fais_edit(uint8_t *buf, size_t size, uint64_t at, unsigned width, uint64_t value)
{
    uint64_t n = tu_get_le(buf + TU_HDR_SECTION_COUNT, 4);
    for (uint32_t i = 0; i < n && TU_HDR_SIZE + (uint64_t)(i + 1) * TU_ENTRY_SIZE <= size; i++) {
        const uint8_t *e = buf + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE;
        if (memcmp(e, "FAIS", 4)) continue;
        uint64_t off = tu_get_le(e + TU_ENTRY_OFFSET, 8), len = tu_get_le(e + TU_ENTRY_STORED, 8);
        if (off > size || len > size - off || at > len || width > len - at) return -1;
        tu_put_le(buf + off + at, width, value);
        return tu_section_rehash(buf, size, i);
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) return die("usage: annb-test-damage IN OUT FIELD VALUE");
    size_t f = 0;
    unsigned fais_width = strncmp(argv[3], "fais32:", 7) == 0 ? 4
                        : strncmp(argv[3], "fais64:", 7) == 0 ? 8 : 0;
    while (!fais_width && f < sizeof fields / sizeof fields[0] && strcmp(fields[f].name, argv[3])) f++;
    if (!fais_width && f == sizeof fields / sizeof fields[0]) return die("unknown field");
    char *end;
    unsigned long long value = strtoull(argv[4], &end, 0);
    if (*end || end == argv[4]) return die("bad value");

    FILE *in = fopen(argv[1], "rb");
    if (!in) return die("cannot open IN");
    static uint8_t buf[1 << 24];
    size_t size = fread(buf, 1, sizeof buf, in);
    int too_big = !feof(in);
    fclose(in);
    if (too_big) return die("IN is larger than 16 MiB");
    if (size < TU_HDR_SIZE) return die("IN is smaller than a header");

    if (fais_width) {
        if (fais_edit(buf, size, strtoull(argv[3] + 7, NULL, 0), fais_width, value))
            return die("no FAIS section, or OFF past its end");
    } else {
        tu_put_le(buf + fields[f].offset, fields[f].width, value);
        if (tu_header_rehash(buf, size)) return die("IN's section table does not fit");
    }

    FILE *out = fopen(argv[2], "wb");
    if (!out) return die("cannot create OUT");
    size_t w = fwrite(buf, 1, size, out);
    if (fclose(out) != 0 || w != size) return die("writing OUT failed");
    return 0;
}
