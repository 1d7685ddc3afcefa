/* build.h - annb_build with the writer's path chosen (internal to libannb,
 * for tests). */
#ifndef ANNB_BUILD_H
#define ANNB_BUILD_H

#include "annb.h"

/* annb_build; named_temp 1 writes through the writer's fallback (a named
 * temporary file, as on a file system without O_TMPFILE) even where
 * O_TMPFILE works, so tests reach that path on any file system. */
int annb_build_written(annb_build_report *report, const char *items_path,
                       const char *catalog_path, const char *output_path,
                       const annb_build_opts *opts, int named_temp, annb_error *err);

/* What tests may change in annb_build. */
typedef struct annb_build_test {
    int named_temp;            /* as annb_build_written's */
    /* index "auto" indexes vectors of more bytes than this (0: the
     * library's ANNB_AUTO_EXACT_BYTES), so a test reaches auto's
     * comparison of graph and IVF on a few thousand rows. */
    uint64_t auto_exact_bytes;
} annb_build_test;

int annb_build_tested(annb_build_report *report, const char *items_path,
                      const char *catalog_path, const char *output_path,
                      const annb_build_opts *opts, const annb_build_test *test, annb_error *err);

#endif /* ANNB_BUILD_H */
