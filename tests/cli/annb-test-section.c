/*
 * annb-test-section - writes a copy of a bundle with bytes of one section
 * changed in its decoded content, every section re-encoded as it was and
 * every checksum recomputed (by the format writer), so that a reader gets
 * past the checksums to the meaning under test: titles with control bytes
 * or invalid UTF-8, vectors holding NaN or Inf. For the CLI tests only.
 *
 *   annb-test-section IN OUT KIND replace FROM TO   every FROM (bytes) by TO,
 *                                                   of the same length
 *   annb-test-section IN OUT KIND f32 INDEX VALUE   float INDEX set to VALUE
 *                                                   (strtof: nan, inf, 1e30)
 * Exit 0 ok, 1 failure (e.g. FROM not found).
 */
#include "annb_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what)
{
    fprintf(stderr, "annb-test-section: %s\n", what);
    return 1;
}

/* Edits the decoded bytes of the section; 0 ok. */
static int edit(uint8_t *p, size_t size, char **argv)
{
    if (strcmp(argv[4], "replace") == 0) {
        size_t n = strlen(argv[5]), hits = 0;
        if (n == 0 || strlen(argv[6]) != n) return die("FROM and TO must have the same length");
        for (size_t i = 0; i + n <= size; i++)
            if (memcmp(p + i, argv[5], n) == 0) {
                memcpy(p + i, argv[6], n);
                hits++;
            }
        return hits ? 0 : die("FROM is not in the section");
    }
    if (strcmp(argv[4], "f32") == 0) {
        size_t index = strtoul(argv[5], NULL, 10);
        float v = strtof(argv[6], NULL);
        if (index >= size / 4) return die("INDEX past the section");
        memcpy(p + 4 * index, &v, 4); /* little-endian hosts only, as the tests */
        return 0;
    }
    return die("expected replace or f32");
}

int main(int argc, char **argv)
{
    if (argc != 7) return die("usage: annb-test-section IN OUT KIND replace FROM TO | f32 INDEX VALUE");
    if (strlen(argv[3]) != 4) return die("KIND has four characters");
    FILE *in = fopen(argv[1], "rb");
    if (!in) return die("cannot open IN");
    static uint8_t buf[1 << 24];
    size_t size = fread(buf, 1, sizeof buf, in);
    int too_big = !feof(in);
    fclose(in);
    if (too_big) return die("IN is larger than 16 MiB");

    annbf_file f;
    annbf_error fe;
    annbf_writer *w = NULL;
    if (annbf_file_parse(&f, buf, size, &fe) || annbf_writer_new(&w, &fe)) return die(fe.message);
    int rc = 0, found = 0;
    for (uint32_t i = 0; i < f.section_count && !rc; i++) {
        const annbf_section *s = &f.sections[i];
        const void *data;
        void *owned = NULL;
        if (annbf_section_load(&f, i, &data, &owned, &fe)) {
            rc = die(fe.message);
            break;
        }
        uint8_t *copy = malloc(s->decoded_size ? s->decoded_size : 1);
        if (!copy) rc = die("out of memory");
        else memcpy(copy, data, s->decoded_size);
        if (!rc && memcmp(s->kind, argv[3], 4) == 0) {
            found = 1;
            rc = edit(copy, s->decoded_size, argv);
        }
        if (!rc && annbf_writer_add(w, s->kind, s->flags, s->codec, s->elem_type, s->elem_count,
                                    copy, s->decoded_size, &fe))
            rc = die(fe.message);
        free(copy);
        free(owned);
    }
    if (!rc && !found) rc = die("no section of that KIND");
    if (!rc && annbf_writer_commit(w, argv[2], NULL, &fe)) rc = die(fe.message);
    annbf_writer_free(w);
    annbf_file_release(&f);
    return rc;
}
