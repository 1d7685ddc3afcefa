/*
 * fuzz_util.h - what the annb fuzz harnesses share (tests/fuzz only).
 *
 * The text readers (annb_embeddings_read, annb_catalog_read) take a path,
 * not bytes: fuzz_memfile puts the input in an anonymous in-memory file
 * (memfd_create) and names it through /proc/self/fd, so no file is written
 * to disk and nothing is left behind if a run is killed.
 *
 * FUZZ_CHECK is an assertion that stays on in release builds: a broken
 * invariant of the library's answer is a finding, like a crash.
 */
#ifndef ANNB_FUZZ_UTIL_H
#define ANNB_FUZZ_UTIL_H

/* memfd_create needs _GNU_SOURCE, defined by each harness before any include. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* Copies data into a new memfd and writes "/proc/self/fd/N" into path.
 * Returns the descriptor (the caller closes it). A failure here is the
 * machine's, not the input's: it aborts rather than hide every input. */
static inline int fuzz_memfile(char path[64], const uint8_t *data, size_t size)
{
    int fd = memfd_create("annb-fuzz", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        FUZZ_CHECK(w > 0);
        done += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* The library's failure contract: a negative code, echoed in err. */
#define FUZZ_CHECK_FAILURE(rc, err) \
    FUZZ_CHECK((rc) < 0 && (err).code == (rc) && (err).message[0] != '\0')

#endif /* ANNB_FUZZ_UTIL_H */
