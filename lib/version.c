/* version.c - the library's version string, with the versions it was built
 * against. */
#include "annb.h"

#include <zstd.h>

#ifndef ANNB_FAISS_VERSION
#define ANNB_FAISS_VERSION "unknown"
#endif

#define ANNB_STR2(x) #x
#define ANNB_STR(x) ANNB_STR2(x)

const char *annb_version(void)
{
    return "annb " ANNB_VERSION_STRING " (format " ANNB_STR(ANNB_FORMAT_VERSION_MAJOR) "."
        ANNB_STR(ANNB_FORMAT_VERSION_MINOR) ", faiss " ANNB_FAISS_VERSION ", zstd "
        ZSTD_VERSION_STRING ")";
}
