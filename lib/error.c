/* error.c - status codes, their names, and the caller-owned error struct. */
#include "annb.h"
#include "ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *annb_strerror(int code)
{
    switch (code) {
    case ANNB_OK: return "success";
    case ANNB_E_INVALID: return "invalid argument";
    case ANNB_E_NOMEM: return "out of memory";
    case ANNB_E_IO: return "input/output error";
    case ANNB_E_NOT_BUNDLE: return "not an annb bundle";
    case ANNB_E_VERSION: return "unsupported bundle version or feature";
    case ANNB_E_TRUNCATED: return "bundle truncated";
    case ANNB_E_CORRUPT: return "bundle corrupt";
    case ANNB_E_CHECKSUM: return "checksum mismatch";
    case ANNB_E_INPUT: return "malformed input";
    case ANNB_E_NOT_FOUND: return "ID not found";
    case ANNB_E_DIMENSION: return "wrong vector dimension";
    case ANNB_E_FAISS: return "Faiss error";
    case ANNB_E_LIMIT: return "input exceeds a limit";
    case ANNB_E_RECALL: return "target recall not reached";
    case ANNB_E_UNSUPPORTED: return "the bundle does not store what is asked";
    default: return "unknown error";
    }
}

int annb_error_set(annb_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}
