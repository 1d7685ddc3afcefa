/*
 * fuzz_catalog.c - libFuzzer harness for the catalog reader.
 *
 * The input is the text of a catalog: MovieLens `movies.dat` (`::`,
 * latin-1) or `movies.csv` (UTF-8). It goes to annb_catalog_read through an
 * in-memory file; on success the result is checked against the reader's
 * promises (ingest.h), on failure the error contract is checked.
 */
#define _GNU_SOURCE /* memfd_create (fuzz_util.h) */
#include "fuzz_util.h"
#include "ingest.h"

#include <string.h>

static void check_catalog(const annb_catalog *c)
{
    FUZZ_CHECK(c->genre_count <= ANNB_MAX_GENRES);
    for (uint32_t g = 0; g < c->genre_count; g++) {
        FUZZ_CHECK(c->genre_names[g][0] != '\0');
        if (g) FUZZ_CHECK(strcmp(c->genre_names[g - 1], c->genre_names[g]) < 0);
    }
    for (uint64_t i = 0; i < c->count; i++) {
        const annb_catalog_entry *e = &c->entries[i];
        FUZZ_CHECK(e->id != ANNB_ID_NONE && e->title[0] != '\0');
        FUZZ_CHECK(strlen(e->title) <= ANNB_MAX_TITLE_BYTES);
        FUZZ_CHECK(e->genre_first <= c->genre_id_count &&
                   e->genre_count <= c->genre_id_count - e->genre_first);
        for (uint32_t j = 0; j < e->genre_count; j++)
            FUZZ_CHECK(c->genre_ids[e->genre_first + j] < c->genre_count);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(path, data, size);
    annb_catalog c;
    annb_error err;
    int rc = annb_catalog_read(&c, path, &err);
    if (rc == ANNB_OK) {
        check_catalog(&c);
        annb_catalog_release(&c);
    } else {
        FUZZ_CHECK_FAILURE(rc, err);
        FUZZ_CHECK(rc == ANNB_E_INPUT || rc == ANNB_E_LIMIT || rc == ANNB_E_NOMEM);
    }
    close(fd);
    return 0;
}
