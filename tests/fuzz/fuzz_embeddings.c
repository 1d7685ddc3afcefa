/*
 * fuzz_embeddings.c - libFuzzer harness for the embeddings reader.
 *
 * The input is an embeddings file in any form (Spark `id,features`, wide
 * `id,f0,...`, other column layouts, CSV or TSV, JSON lines, word2vec text,
 * numpy .npy, each maybe gzip or zstd). It goes to annb_embeddings_read through an
 * in-memory file; on success the result is checked against the reader's
 * promises (ingest.h), on failure the error contract is checked. It is read
 * a second time by annb_embeddings_read_general, without the shortcut for
 * usual Spark rows: both must give the same code and message, or the same
 * IDs and the same float bits.
 */
#define _GNU_SOURCE /* memfd_create (fuzz_util.h) */
#include "fuzz_util.h"
#include "ingest.h"

#include <math.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(path, data, size);
    annb_embeddings e, g;
    annb_error err, gerr;
    if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
        /* a .npy has no text rows: one way, IDs from the row numbers */
        annb_read_opts rows = {.ids_from_rows = 1};
        int nrc = annb_embeddings_read_with(&e, path, &rows, &err);
        if (nrc == ANNB_OK) {
            FUZZ_CHECK(e.count >= 1 && e.dimension >= 1 && e.dimension <= ANNB_MAX_DIMENSION);
            for (uint64_t i = 0; i < e.count * e.dimension; i++) FUZZ_CHECK(isfinite(e.vectors[i]));
            annb_embeddings_release(&e);
        } else {
            FUZZ_CHECK_FAILURE(nrc, err);
            FUZZ_CHECK(nrc == ANNB_E_INPUT || nrc == ANNB_E_LIMIT || nrc == ANNB_E_NOMEM);
        }
        close(fd);
        return 0;
    }
    int rc = annb_embeddings_read(&e, path, &err);
    int grc = annb_embeddings_read_general(&g, path, &gerr);
    FUZZ_CHECK(rc == grc);
    if (rc == ANNB_OK) {
        FUZZ_CHECK(e.count >= 1 && e.dimension >= 1 && e.dimension <= ANNB_MAX_DIMENSION);
        for (uint64_t i = 0; i < e.count; i++) FUZZ_CHECK(e.ids[i] != ANNB_ID_NONE);
        for (uint64_t i = 0; i < e.count * e.dimension; i++) FUZZ_CHECK(isfinite(e.vectors[i]));
        FUZZ_CHECK(g.count == e.count && g.dimension == e.dimension);
        FUZZ_CHECK(memcmp(g.ids, e.ids, e.count * sizeof *e.ids) == 0);
        FUZZ_CHECK(memcmp(g.vectors, e.vectors, e.count * e.dimension * sizeof *e.vectors) == 0);
        annb_embeddings_release(&e);
        annb_embeddings_release(&g);
    } else {
        FUZZ_CHECK_FAILURE(rc, err);
        FUZZ_CHECK(rc == ANNB_E_INPUT || rc == ANNB_E_LIMIT || rc == ANNB_E_NOMEM);
        FUZZ_CHECK(strcmp(err.message, gerr.message) == 0);
    }
    close(fd);
    return 0;
}
