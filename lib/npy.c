/* npy.c - numpy .npy matrices as embeddings (see npy.h). */
#include "npy.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAX_HEADER 65536u /* numpy itself writes a few hundred bytes */

typedef struct npy_info {
    char kind;       /* 'f' or 'i' */
    unsigned size;   /* bytes per value: 4 or 8 */
    uint64_t shape[2];
    unsigned dims;   /* 1 or 2 */
    uint64_t data_at; /* file offset of the first value (decompressed) */
} npy_info;

static int npy_error(const annb_source *s, uint64_t at, annb_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int npy_error(const annb_source *s, uint64_t at, annb_error *err, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return annb_error_set(err, ANNB_E_INPUT, "%s: byte %" PRIu64 ": %s", s->path, at, msg);
}

/* Exactly size bytes from the source into dst; returns how many it got
 * (fewer only at the end of the file) or a negative code. */
static int64_t take(annb_source *s, void *dst, size_t size, annb_error *err)
{
    size_t got = 0;
    while (got < size) {
        if (s->pos == s->len) {
            int rc = annb_source_fill(s, err);
            if (rc) return rc;
            if (s->len == 0) break;
        }
        size_t n = s->len - s->pos < size - got ? s->len - s->pos : size - got;
        memcpy((unsigned char *)dst + got, s->block + s->pos, n);
        s->pos += n;
        got += n;
    }
    return (int64_t)got;
}

static uint64_t offset(const annb_source *s) { return s->base + s->pos; }

/* Finds 'key' in the header dict text; the position after its ':' or NULL. */
static const char *dict_value(const char *h, const char *key)
{
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *p = strstr(h, quoted);
    if (!p) return NULL;
    p += strlen(quoted);
    while (*p == ' ') p++;
    if (*p++ != ':') return NULL;
    while (*p == ' ') p++;
    return p;
}

/* The header: magic, version, dict. Leaves s at the first data byte. */
static int npy_header(npy_info *info, annb_source *s, annb_error *err)
{
    unsigned char pre[12];
    uint64_t start = offset(s);
    int64_t got = take(s, pre, 10, err);
    if (got < 0) return (int)got;
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return npy_error(s, start, err, "expected a .npy header (\\x93NUMPY, version, length)");
    unsigned major = pre[6];
    uint64_t hlen;
    if (major == 1) {
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if ((got = take(s, pre + 10, 2, err)) < 0) return (int)got;
        if (got < 2) return npy_error(s, offset(s), err, "expected a header length, found the end of the file");
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 |
               (uint64_t)pre[11] << 24;
    } else {
        return npy_error(s, start + 6, err, "expected .npy format version 1, 2 or 3, found %u", major);
    }
    if (hlen > NPY_MAX_HEADER)
        return npy_error(s, start + 8, err, "expected a header of at most %u bytes, found %" PRIu64,
                         NPY_MAX_HEADER, hlen);
    uint64_t hstart = offset(s);
    char *h = malloc(hlen + 1);
    if (!h) return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
    if ((got = take(s, h, (size_t)hlen, err)) < 0) {
        free(h);
        return (int)got;
    }
    if ((uint64_t)got < hlen) {
        free(h);
        return npy_error(s, offset(s), err, "expected a %" PRIu64 "-byte header, found the end of "
                         "the file", hlen);
    }
    h[hlen] = '\0';
    int rc = ANNB_OK;
    const char *d = dict_value(h, "descr"), *f = dict_value(h, "fortran_order"),
               *sh = dict_value(h, "shape");
    if (!d || !f || !sh || memchr(h, '\0', hlen) || h[0] != '{') {
        rc = npy_error(s, hstart, err, "expected the header dict {'descr': ..., 'fortran_order': "
                       "..., 'shape': (...)}, found something else");
        goto out;
    }
    if (strncmp(d, "'<f4'", 5) == 0 || strncmp(d, "'<f8'", 5) == 0 || strncmp(d, "'<i4'", 5) == 0 ||
        strncmp(d, "'<i8'", 5) == 0) {
        info->kind = d[2];
        info->size = d[3] == '4' ? 4 : 8;
    } else {
        size_t n = strcspn(d, ",}");
        rc = npy_error(s, hstart + (uint64_t)(d - h), err,
                       "expected the dtype '<f4', '<f8' (vectors) or '<i8', '<i4' (IDs), found "
                       "%.*s", (int)(n < 40 ? n : 40), d);
        goto out;
    }
    if (strncmp(f, "False", 5) != 0) {
        rc = npy_error(s, hstart + (uint64_t)(f - h), err,
                       "expected fortran_order False (C order), found %.5s (numpy.ascontiguousarray "
                       "makes it C order)", f);
        goto out;
    }
    /* shape: (n,) or (n, d) */
    const char *p = sh;
    info->dims = 0;
    if (*p++ != '(') goto bad_shape;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || info->dims == 2) goto bad_shape;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end - p > 19) goto bad_shape;
        info->shape[info->dims++] = v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p != ')') goto bad_shape;
    }
    if (info->dims == 0) goto bad_shape;
    info->data_at = offset(s);
    goto out;
bad_shape:
    rc = npy_error(s, hstart + (uint64_t)(sh - h), err, "expected a shape (rows,) or (rows, "
                   "dimension), found %.*s", (int)strcspn(sh, "}"), sh);
out:
    free(h);
    return rc;
}

/* After the last value: nothing more. */
static int npy_end(annb_source *s, annb_error *err)
{
    unsigned char b;
    uint64_t at = offset(s);
    int64_t got = take(s, &b, 1, err);
    if (got < 0) return (int)got;
    if (got) return npy_error(s, at, err, "expected the end of the file after the values the "
                              "shape declares, found more bytes");
    return ANNB_OK;
}

/* IDs unique, the earliest repetition named (rows 0-based, shown so). */
static int ids_unique(const char *path, const int64_t *ids, uint64_t n, annb_error *err)
{
    uint64_t first, second;
    if (annb_ids_first_repeat(ids, n, &first, &second))
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
    if (second == UINT64_MAX) return ANNB_OK;
    return annb_error_set(err, ANNB_E_INPUT, "%s: element %" PRIu64 ": expected unique IDs, found "
                          "ID %" PRId64 " again (first as element %" PRIu64 ")",
                          path, second, ids[second], first);
}

/* The IDs .npy: one integer per row of the vectors. */
static int read_ids(annb_embeddings *e, const char *path, annb_error *err)
{
    annb_source s;
    npy_info info;
    int rc = annb_source_open(&s, path, err);
    if (rc) return rc;
    if ((rc = npy_header(&info, &s, err))) goto out;
    if (info.kind != 'i' || (info.dims == 2 && info.shape[1] != 1)) {
        rc = npy_error(&s, 0, err, "expected IDs: integers ('<i8' or '<i4') of shape (rows,) or "
                       "(rows, 1), found %s of %u dimensions",
                       info.kind == 'i' ? "integers" : "floats", info.dims);
        goto out;
    }
    if (info.shape[0] != e->count) {
        rc = npy_error(&s, 0, err, "expected %" PRIu64 " IDs (the rows of the vectors), found %" PRIu64,
                       e->count, info.shape[0]);
        goto out;
    }
    for (uint64_t i = 0; i < e->count; i++) {
        unsigned char b[8];
        uint64_t at = offset(&s);
        int64_t got = take(&s, b, info.size, err);
        if (got < 0) {
            rc = (int)got;
            goto out;
        }
        if ((unsigned)got < info.size) {
            rc = npy_error(&s, at, err, "expected %" PRIu64 " IDs, found the end of the file after "
                           "%" PRIu64, e->count, i);
            goto out;
        }
        uint64_t u = 0;
        for (unsigned k = 0; k < info.size; k++) u |= (uint64_t)b[k] << (8 * k);
        int64_t id = info.size == 8 ? (int64_t)u : (int64_t)(int32_t)(uint32_t)u;
        if (id == INT64_MIN) {
            rc = npy_error(&s, at, err, "expected an ID other than -9223372036854775808 (reserved) "
                           "as element %" PRIu64, i);
            goto out;
        }
        e->ids[i] = id;
    }
    if ((rc = npy_end(&s, err))) goto out;
    rc = ids_unique(s.path, e->ids, e->count, err);
out:
    annb_source_close(&s);
    return rc;
}

int annb_npy_read(annb_embeddings *out, annb_source *src, const annb_read_opts *o,
                  annb_error *err)
{
    npy_info info;
    memset(out, 0, sizeof *out);
    int rc = npy_header(&info, src, err);
    if (rc) return rc;
    if (info.kind != 'f' || info.dims != 2)
        return npy_error(src, 0, err, "expected a 2-D matrix of float32 or float64 (rows, "
                         "dimension), found %s of %u dimension%s",
                         info.kind == 'f' ? "floats" : "integers", info.dims,
                         info.dims == 1 ? "" : "s");
    uint64_t n = info.shape[0], d = info.shape[1];
    if (n == 0) return npy_error(src, 0, err, "expected at least one row, found shape (0, %" PRIu64 ")", d);
    if (n > ANNB_MAX_ROWS)
        return annb_error_set(err, ANNB_E_LIMIT, "%s: byte 0: expected at most %llu rows, found %" PRIu64,
                              src->path, ANNB_MAX_ROWS, n);
    if (d < 1 || d > ANNB_MAX_DIMENSION)
        return annb_error_set(err, ANNB_E_LIMIT, "%s: byte 0: expected a dimension from 1 to %u, "
                              "found %" PRIu64, src->path, ANNB_MAX_DIMENSION, d);
    if (!o->ids_path && !o->ids_from_rows)
        return annb_error_set(err, ANNB_E_INVALID, "%s: a .npy matrix holds no IDs: give them as a "
                              "second .npy of int64 (--ids FILE.npy) or take the row numbers "
                              "0..%" PRIu64 " (--ids-from-rows)", src->path, n - 1);
    /* The shape is the header's word: before allocating for it, a plain
     * file must hold that much data (a 128-byte header could otherwise ask
     * for gigabytes). Compressed and piped input is checked as it arrives. */
    struct stat st;
    uint64_t at0 = offset(src);
    if (src->codec == ANNB_CODEC_NONE && src->file && fstat(fileno(src->file), &st) == 0 &&
        S_ISREG(st.st_mode) && (uint64_t)st.st_size >= at0 &&
        ((uint64_t)st.st_size - at0) / info.size / d < n)
        return npy_error(src, (uint64_t)st.st_size, err, "expected %" PRIu64 " rows of %" PRIu64
                         " values (the shape), found the end of the file in row %" PRIu64
                         " (a truncated file?)", n, d,
                         ((uint64_t)st.st_size - at0) / info.size / d);
    out->ids = annb_array_resize(NULL, n, sizeof *out->ids);
    out->vectors = annb_array_resize(NULL, n * d, sizeof *out->vectors);
    unsigned char *row = malloc((size_t)d * info.size);
    if (!out->ids || !out->vectors || !row) {
        rc = annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", src->path);
        goto out;
    }
    out->dimension = (uint32_t)d;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t at = offset(src);
        int64_t got = take(src, row, (size_t)d * info.size, err);
        if (got < 0) {
            rc = (int)got;
            goto out;
        }
        if ((uint64_t)got < d * info.size) {
            rc = npy_error(src, at + (uint64_t)got, err, "expected %" PRIu64 " rows of %" PRIu64
                           " values (the shape), found the end of the file in row %" PRIu64
                           " (a truncated file?)", n, d, i);
            goto out;
        }
        float *v = out->vectors + i * d;
        for (uint64_t j = 0; j < d; j++) {
            const unsigned char *b = row + j * info.size;
            uint64_t u = 0;
            for (unsigned k = 0; k < info.size; k++) u |= (uint64_t)b[k] << (8 * k);
            double x;
            if (info.size == 4) {
                uint32_t w = (uint32_t)u;
                float f;
                memcpy(&f, &w, 4);
                x = f;
                v[j] = f;
            } else {
                memcpy(&x, &u, 8);
                v[j] = (float)x;
            }
            if (!isfinite(x) || !isfinite(v[j])) {
                rc = npy_error(src, at + j * info.size, err, "expected a finite float32 as value %"
                               PRIu64 " of row %" PRIu64 ", found %g", j, i, x);
                goto out;
            }
        }
        out->ids[i] = (int64_t)i;
        out->count = i + 1;
    }
    if ((rc = npy_end(src, err))) goto out;
    if (o->ids_path) rc = read_ids(out, o->ids_path, err);
    if (rc == ANNB_OK) {
        /* the first row whose scores could overflow, as the text readers note it */
        for (uint64_t i = 0; i < n && !out->overflow_row; i++) {
            double sq = 0;
            for (uint64_t j = 0; j < d; j++) sq += (double)out->vectors[i * d + j] * out->vectors[i * d + j];
            if (sq > ANNB_MAX_SQUARED_NORM) {
                out->overflow_row = i + 1;
                out->overflow_line = i + 1;
            }
        }
    }
out:
    free(row);
    if (rc) annb_embeddings_release(out);
    return rc;
}
