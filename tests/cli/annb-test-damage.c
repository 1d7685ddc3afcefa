/*
 * annb-test-damage - writes a copy of a bundle with one header field
 * changed and the header checksum recomputed, so that a reader gets past
 * the checksum to the field under test. For the CLI tests only.
 *
 *   annb-test-damage IN OUT FIELD VALUE
 *
 * FIELD: major, minor (u16), required, optional (u64 feature bits).
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

int main(int argc, char **argv)
{
    if (argc != 5) return die("usage: annb-test-damage IN OUT FIELD VALUE");
    size_t f = 0;
    while (f < sizeof fields / sizeof fields[0] && strcmp(fields[f].name, argv[3])) f++;
    if (f == sizeof fields / sizeof fields[0]) return die("unknown field");
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

    tu_put_le(buf + fields[f].offset, fields[f].width, value);
    if (tu_header_rehash(buf, size)) return die("IN's section table does not fit");

    FILE *out = fopen(argv[2], "wb");
    if (!out) return die("cannot create OUT");
    size_t w = fwrite(buf, 1, size, out);
    if (fclose(out) != 0 || w != size) return die("writing OUT failed");
    return 0;
}
