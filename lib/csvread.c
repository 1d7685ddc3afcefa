/* csvread.c - streamed text input for the ingest readers (see csvread.h). */
#include "csvread.h"
#include "ingest.h"

#include <csv.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

/* ------------------------------------------------------------------------ */
/* Messages and small values                                                 */
/* ------------------------------------------------------------------------ */

int annb_input_error(annb_error *err, int code, const char *path, uint64_t line, uint64_t col,
                     const char *fmt, ...)
{
    if (!err) return code;
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return annb_error_set(err, code, "%s:%" PRIu64 ":%" PRIu64 ": %s", path, line, col, msg);
}

const char *annb_excerpt(char out[ANNB_EXCERPT_SIZE], const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = data;
    size_t n = len < ANNB_EXCERPT_MAX ? len : ANNB_EXCERPT_MAX, o = 0;
    if (len == 0) {
        memcpy(out, "an empty field", sizeof "an empty field");
        return out;
    }
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o++] = '"';
    if (len > n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

const char *annb_id_parse(int64_t *out, const char *s, size_t len)
{
    size_t i = 0;
    int neg = 0;
    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len) return "expected an integer ID";
    for (size_t j = i; j < len; j++)
        if (s[j] < '0' || s[j] > '9') return "expected an integer ID (optional sign and decimal digits)";
    const uint64_t limit = neg ? UINT64_C(1) << 63 : (UINT64_C(1) << 63) - 1;
    uint64_t mag = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (mag > (limit - d) / 10) return "expected an ID within the int64 range";
        mag = mag * 10 + d;
    }
    if (neg && mag == UINT64_C(1) << 63)
        return "expected an ID other than -9223372036854775808 (reserved)";
    *out = neg ? -(int64_t)mag : (int64_t)mag;
    return NULL;
}

int annb_ascii_ieq(const char *s, size_t len, const char *lit)
{
    size_t i = 0;
    for (; i < len && lit[i]; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b + 32);
        if (a != b) return 0;
    }
    return i == len && lit[i] == '\0';
}

void *annb_array_resize(void *p, uint64_t n, size_t size)
{
    if (n == 0) n = 1;
    if (size == 0 || n > SIZE_MAX / size) return NULL;
    return realloc(p, (size_t)n * size);
}

uint64_t annb_grow_capacity(uint64_t cap, uint64_t need)
{
    uint64_t c = cap < 512 ? 1024 : (cap > UINT64_MAX / 2 ? UINT64_MAX : cap * 2);
    return c < need ? need : c;
}

typedef struct id_row {
    int64_t id;
    uint64_t row;
} id_row;

static int id_row_cmp(const void *a, const void *b)
{
    const id_row *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

int annb_ids_first_repeat(const int64_t *ids, uint64_t n, uint64_t *first, uint64_t *second)
{
    uint64_t i = 1;
    *first = 0;
    *second = UINT64_MAX;
    while (i < n && ids[i - 1] < ids[i]) i++;
    if (i >= n) return ANNB_OK; /* already strictly ascending */
    id_row *v = annb_array_resize(NULL, n, sizeof *v);
    if (!v) return ANNB_E_NOMEM;
    for (i = 0; i < n; i++) v[i] = (id_row){ids[i], i};
    qsort(v, (size_t)n, sizeof *v, id_row_cmp);
    /* In a run of equal IDs the first pair holds the earliest repetition. */
    for (i = 1; i < n; i++) {
        if (v[i].id == v[i - 1].id && v[i].row < *second) {
            *first = v[i - 1].row;
            *second = v[i].row;
        }
    }
    free(v);
    return ANNB_OK;
}

int annb_ids_check_unique(const char *path, const int64_t *ids, const uint64_t *lines, uint64_t n,
                          annb_error *err)
{
    uint64_t first, second;
    if (annb_ids_first_repeat(ids, n, &first, &second))
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
    if (second == UINT64_MAX) return ANNB_OK;
    return annb_input_error(err, ANNB_E_INPUT, path, lines[second], 1,
                            "expected unique IDs, found ID %" PRId64 " again (first on line %" PRIu64 ")",
                            ids[second], lines[first]);
}

/* ------------------------------------------------------------------------ */
/* Block source and lines                                                    */
/* ------------------------------------------------------------------------ */

const char *annb_input_name(const char *path)
{
    return path && strcmp(path, "-") == 0 ? "<stdin>" : path;
}

#define RAW_BLOCK (256u << 10)

/* More compressed bytes into s->raw (kept: raw[raw_pos..raw_len)). */
static int raw_refill(annb_source *s, annb_error *err)
{
    if (s->raw_pos > 0) {
        memmove(s->raw, s->raw + s->raw_pos, s->raw_len - s->raw_pos);
        s->raw_offset += s->raw_pos;
        s->raw_len -= s->raw_pos;
        s->raw_pos = 0;
    }
    if (s->raw_eof || s->raw_len == RAW_BLOCK) return ANNB_OK;
    size_t n = fread(s->raw + s->raw_len, 1, RAW_BLOCK - s->raw_len, s->file);
    s->raw_len += n;
    if (n == 0 || n < RAW_BLOCK - (s->raw_len - n)) {
        if (ferror(s->file))
            return annb_error_set(err, ANNB_E_IO, "%s: read error near byte %" PRIu64 ": %s",
                                  s->path, s->raw_offset + s->raw_len, strerror(errno));
        if (feof(s->file)) s->raw_eof = 1;
    }
    return ANNB_OK;
}

static int stream_error(annb_source *s, const char *codec, const char *what, annb_error *err)
{
    return annb_error_set(err, ANNB_E_INPUT, "%s: byte %" PRIu64 " of the %s stream: %s", s->path,
                          s->raw_offset + s->raw_pos, codec, what);
}

static int truncated(annb_source *s, const char *codec, annb_error *err)
{
    return annb_error_set(err, ANNB_E_INPUT, "%s: byte %" PRIu64 ": expected more %s data, found "
                          "the end of the file (a truncated file?)",
                          s->path, s->raw_offset + s->raw_len, codec);
}

/* Decompresses into block until it is full or the input ends. After the
 * end of a gzip member or zstd frame, more input must be another one. */
static int inflate_block(annb_source *s, annb_error *err)
{
    const char *codec = s->codec == ANNB_CODEC_GZIP ? "gzip" : "zstd";
    int rc;
    while (s->len < ANNB_SOURCE_BLOCK) {
        if (s->raw_pos == s->raw_len && (rc = raw_refill(s, err))) return rc;
        if (s->raw_pos == s->raw_len) { /* end of the file */
            if (s->frame_open) return truncated(s, codec, err);
            break;
        }
        if (!s->frame_open) { /* a next member or frame must start here */
            if ((rc = raw_refill(s, err))) return rc;
            const unsigned char *p = s->raw + s->raw_pos;
            size_t have = s->raw_len - s->raw_pos;
            int ok = s->codec == ANNB_CODEC_GZIP
                         ? have >= 2 && p[0] == 0x1f && p[1] == 0x8b
                         : have >= 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0;
            if (!ok) return stream_error(s, codec, "expected another compressed member or the "
                                         "end of the file, found other bytes", err);
            if (s->codec == ANNB_CODEC_GZIP && inflateReset(s->z) != Z_OK)
                return stream_error(s, codec, "cannot restart the decompressor", err);
            s->frame_open = 1;
        }
        if (s->codec == ANNB_CODEC_GZIP) {
            z_stream *z = s->z;
            z->next_in = s->raw + s->raw_pos;
            z->avail_in = (uInt)(s->raw_len - s->raw_pos);
            z->next_out = s->block + s->len;
            z->avail_out = (uInt)(ANNB_SOURCE_BLOCK - s->len);
            int zr = inflate(z, Z_NO_FLUSH);
            s->raw_pos = s->raw_len - z->avail_in;
            s->len = ANNB_SOURCE_BLOCK - z->avail_out;
            if (zr == Z_STREAM_END) s->frame_open = 0;
            else if (zr == Z_MEM_ERROR)
                return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
            else if (zr != Z_OK && zr != Z_BUF_ERROR)
                return stream_error(s, codec, z->msg ? z->msg : "corrupt data", err);
        } else {
            ZSTD_inBuffer in = {s->raw, s->raw_len, s->raw_pos};
            ZSTD_outBuffer out = {s->block, ANNB_SOURCE_BLOCK, s->len};
            size_t zr = ZSTD_decompressStream(s->zd, &out, &in);
            /* Where the decoder stopped, before any error: the error names that byte. */
            s->raw_pos = in.pos;
            s->len = out.pos;
            if (ZSTD_isError(zr)) return stream_error(s, codec, ZSTD_getErrorName(zr), err);
            if (zr == 0) s->frame_open = 0;
        }
    }
    return ANNB_OK;
}

/* Bytes of the file consumed so far. */
static uint64_t consumed(const annb_source *s)
{
    return s->codec == ANNB_CODEC_NONE ? s->base + s->len : s->raw_offset + s->raw_pos;
}

static void report(annb_source *s)
{
    if (!s->progress || s->info.finished) return;
    s->info.done = consumed(s);
    s->info.finished = s->len == 0;
    s->progress(s->progress_ctx, &s->info);
}

void annb_source_watch(annb_source *s, annb_progress_fn fn, void *ctx, const char *phase,
                       const char *path)
{
    struct stat st;
    s->progress = fn;
    s->progress_ctx = ctx;
    memset(&s->info, 0, sizeof s->info);
    s->info.phase = phase;
    s->info.path = path;
    s->info.unit = "bytes";
    if (s->file && fstat(fileno(s->file), &st) == 0 && S_ISREG(st.st_mode) && !s->is_stdin)
        s->info.total = (uint64_t)st.st_size;
    else if (s->file && s->is_stdin && fstat(fileno(s->file), &st) == 0 && S_ISREG(st.st_mode))
        s->info.total = (uint64_t)st.st_size; /* stdin redirected from a file */
    report(s);
}

static int fill_block(annb_source *s, annb_error *err);

int annb_source_fill(annb_source *s, annb_error *err)
{
    int rc = fill_block(s, err);
    if (rc == ANNB_OK) report(s);
    return rc;
}

static int fill_block(annb_source *s, annb_error *err)
{
    s->base += s->len;
    s->pos = 0;
    s->len = 0;
    if (s->codec != ANNB_CODEC_NONE) return inflate_block(s, err);
    /* the bytes read to tell the codec go first */
    if (s->raw_pos < s->raw_len) {
        s->len = s->raw_len - s->raw_pos;
        memcpy(s->block, s->raw + s->raw_pos, s->len);
        s->raw_pos = s->raw_len;
    }
    if (s->raw_eof) return ANNB_OK;
    size_t n = fread(s->block + s->len, 1, ANNB_SOURCE_BLOCK - s->len, s->file);
    s->len += n;
    if (s->len < ANNB_SOURCE_BLOCK && ferror(s->file))
        return annb_error_set(err, ANNB_E_IO, "%s: read error near byte %" PRIu64 ": %s", s->path,
                              s->base + s->len, strerror(errno));
    return ANNB_OK;
}

/* Reads the first bytes and sets up the decompressor they call for. */
static int detect_codec(annb_source *s, annb_error *err)
{
    int rc = raw_refill(s, err);
    if (rc) return rc;
    const unsigned char *p = s->raw;
    if (s->raw_len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
        z_stream *z = calloc(1, sizeof *z);
        if (!z) return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
        s->z = z;
        if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip header and trailer */
            return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
        s->codec = ANNB_CODEC_GZIP;
        s->frame_open = 1;
    } else if (s->raw_len >= 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0) {
        if (!(s->zd = ZSTD_createDStream()))
            return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
        /* a window as large as the zstd CLI accepts by default (128 MiB) */
        ZSTD_DCtx_setParameter(s->zd, ZSTD_d_windowLogMax, 27);
        s->codec = ANNB_CODEC_ZSTD;
        s->frame_open = 1;
    }
    return ANNB_OK;
}

int annb_source_open(annb_source *s, const char *path, annb_error *err)
{
    memset(s, 0, sizeof *s);
    s->path = annb_input_name(path);
    if (strcmp(path, "-") == 0) {
        s->file = stdin;
        s->is_stdin = 1;
    } else {
        s->file = fopen(path, "rb");
    }
    if (!s->file) /* ENOMEM: stdio could not allocate the FILE */
        return annb_error_set(err, errno == ENOMEM ? ANNB_E_NOMEM : ANNB_E_IO, "%s: cannot open: %s",
                              path, strerror(errno));
    s->block = malloc(ANNB_SOURCE_BLOCK);
    s->raw = malloc(RAW_BLOCK);
    int rc = s->block && s->raw ? detect_codec(s, err)
                                : annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
    if (rc == ANNB_OK) {
        s->len = 0; /* nothing before the first block */
        rc = annb_source_fill(s, err);
    }
    if (rc) {
        annb_source_close(s);
        return rc;
    }
    if (s->len >= 3 && memcmp(s->block, "\xef\xbb\xbf", 3) == 0) s->pos = 3;
    return ANNB_OK;
}

void annb_source_close(annb_source *s)
{
    if (s->file && !s->is_stdin) fclose(s->file);
    if (s->z) inflateEnd(s->z);
    free(s->z);
    ZSTD_freeDStream(s->zd);
    free(s->block);
    free(s->raw);
    free(s->carry);
    memset(s, 0, sizeof *s);
}

int annb_source_first_line_has(const annb_source *s, const char *needle)
{
    size_t n = strlen(needle), end = s->pos;
    while (end < s->len && s->block[end] != '\n' && s->block[end] != '\r') end++;
    for (size_t i = s->pos; i + n <= end; i++)
        if (memcmp(s->block + i, needle, n) == 0) return 1;
    return 0;
}

static int line_too_long(const annb_source *s, annb_error *err)
{
    return annb_input_error(err, ANNB_E_LIMIT, s->path, s->line + 1, 1,
                            "expected a line of at most %u bytes, found a longer one",
                            ANNB_MAX_FIELD_BYTES);
}

/* Appends block[pos..pos+n) to the carry buffer. */
static int carry_append(annb_source *s, size_t n, annb_error *err)
{
    if (s->carry_len + n > ANNB_MAX_FIELD_BYTES) return line_too_long(s, err);
    if (s->carry_len + n > s->carry_cap) {
        size_t cap = (size_t)annb_grow_capacity(s->carry_cap, s->carry_len + n);
        void *p = realloc(s->carry, cap);
        if (!p) return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
        s->carry = p;
        s->carry_cap = cap;
    }
    memcpy(s->carry + s->carry_len, s->block + s->pos, n);
    s->carry_len += n;
    return ANNB_OK;
}

int annb_source_getline(annb_source *s, annb_line *line, annb_error *err)
{
    int rc;
    s->carry_len = 0;
    for (;;) {
        if (s->pos == s->len) {
            if (s->len > 0 && (rc = annb_source_fill(s, err))) return rc;
            if (s->len == 0) { /* end of file: a last line without a break? */
                if (s->carry_len == 0) return 0;
                line->data = (const char *)s->carry;
                line->len = s->carry_len;
                line->number = ++s->line;
                return 1;
            }
        }
        if (s->after_cr) {
            s->after_cr = 0;
            if (s->block[s->pos] == '\n' && ++s->pos == s->len) continue;
        }
        size_t j = s->pos;
        while (j < s->len && s->block[j] != '\n' && s->block[j] != '\r') j++;
        if (j == s->len) { /* the line goes on in the next block */
            if ((rc = carry_append(s, j - s->pos, err))) return rc;
            s->pos = j;
            continue;
        }
        if (s->carry_len > 0) {
            if ((rc = carry_append(s, j - s->pos, err))) return rc;
            line->data = (const char *)s->carry;
            line->len = s->carry_len;
        } else {
            if (j - s->pos > ANNB_MAX_FIELD_BYTES) return line_too_long(s, err);
            line->data = (const char *)s->block + s->pos;
            line->len = j - s->pos;
        }
        s->after_cr = s->block[j] == '\r';
        s->pos = j + 1;
        line->number = ++s->line;
        return 1;
    }
}

/* ------------------------------------------------------------------------ */
/* Strict CSV with positions                                                 */
/* ------------------------------------------------------------------------ */

/*
 * libcsv reports fields through callbacks but not where they are. So the
 * scanner below hands libcsv the input in chunks that end exactly at the
 * bytes where a field or row can end (a delimiter or line break outside
 * quotes) or where strict mode can fail (a quote): a callback then always
 * belongs to the chunk's last byte, whose line and column the scanner knows,
 * and a parse error's byte offset is libcsv's own return value. The scanner
 * follows quotes by parity, which agrees with libcsv on every input that
 * libcsv accepts; where they could disagree (a quote in an unquoted field,
 * text after a closing quote), libcsv stops at that chunk first.
 */
typedef struct csv_scan {
    annb_source *src;
    const annb_csv_handler *h;
    annb_csv_fast_row fast_row;
    annb_error *err;
    struct csv_parser parser;
    unsigned char delim;
    unsigned char special[256]; /* delimiter, quote, CR, LF */
    int status;                 /* first error; later callbacks are ignored */
    /* position */
    uint64_t line, line_start;  /* current line and file offset of its first byte */
    uint64_t cr_next;           /* offset right after the last CR (CRLF is one break) */
    int in_quotes;
    /* the row and field being read */
    int row_open, field_open, field_quoted;
    uint64_t row, row_line, field_start, field_line, field_col;
    uint32_t row_fields;
    uint64_t end_line, end_col; /* where the current row ends */
    uint64_t blank_line;        /* first blank line not yet followed by a row */
    int fired_field, fired_row;
} csv_scan;

static int is_blank(unsigned char c, unsigned char delim)
{
    return (c == ' ' || c == '\t') && c != delim;
}

static void on_field(void *data, size_t len, void *vs)
{
    csv_scan *st = vs;
    uint32_t index = st->row_fields++;
    st->fired_field = 1;
    if (st->status) return;
    const char *text = data ? data : "";
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        st->status = annb_input_error(st->err, ANNB_E_INPUT, st->src->path, st->field_line,
                                      st->field_col + (uint64_t)st->field_quoted + (uint64_t)(nul - text),
                                      "expected text, found a NUL byte");
        return;
    }
    annb_csv_field f = {text, len, st->field_line, st->field_col, st->row, index, st->field_quoted};
    st->status = st->h->field(st->h->ctx, &f, st->err);
}

static void on_row(int c, void *vs)
{
    csv_scan *st = vs;
    (void)c;
    st->fired_row = 1;
    if (!st->status) {
        annb_csv_row r = {st->row, st->row_line, st->row_fields, st->end_line, st->end_col};
        st->status = st->h->row(st->h->ctx, &r, st->err);
    }
    st->row++;
    st->row_fields = 0;
}

static uint64_t col_of(const csv_scan *st, uint64_t at) { return at - st->line_start + 1; }

/* A field (and maybe a row) starts at file offset at. */
static int open_field(csv_scan *st, uint64_t at, int quoted)
{
    if (!st->row_open) {
        if (st->blank_line)
            return annb_input_error(st->err, ANNB_E_INPUT, st->src->path, st->blank_line, 1,
                                    "expected a row, found a blank line (blank lines are allowed "
                                    "only at the end of the file)");
        st->row_open = 1;
        st->row_line = st->line;
    }
    st->field_open = 1;
    st->field_quoted = quoted;
    st->field_start = at;
    st->field_line = st->line;
    st->field_col = col_of(st, at);
    return ANNB_OK;
}

static int field_size_check(csv_scan *st, uint64_t at)
{
    if (!st->field_open || at - st->field_start <= ANNB_MAX_FIELD_BYTES) return ANNB_OK;
    return annb_input_error(st->err, ANNB_E_LIMIT, st->src->path, st->field_line, st->field_col,
                            "expected a field of at most %u bytes, found a longer one%s",
                            ANNB_MAX_FIELD_BYTES, st->in_quotes ? " (an unterminated quote?)" : "");
}

static void line_break(csv_scan *st, uint64_t at, unsigned char c)
{
    if (!(c == '\n' && st->cr_next == at)) st->line++;
    if (c == '\r') st->cr_next = at + 1;
    st->line_start = at + 1;
}

static int parse_error(csv_scan *st, const unsigned char *p, size_t done)
{
    /* the excerpt may run past the chunk, to the line's end in the block */
    size_t n = st->src->len - (size_t)(p - st->src->block);
    char ex[ANNB_EXCERPT_SIZE];
    uint64_t col = col_of(st, st->src->base + (uint64_t)(p - st->src->block) + done);
    if (csv_error(&st->parser) != CSV_EPARSE)
        return annb_error_set(st->err, ANNB_E_NOMEM, "%s: out of memory", st->src->path);
    if (p[done] == '"' && !st->field_quoted)
        return annb_input_error(st->err, ANNB_E_INPUT, st->src->path, st->line, col,
                                "expected a quote only at the start of a field, found '\"' inside "
                                "an unquoted field (quote the whole field, doubling inner quotes)");
    size_t end = done;
    char opened[64] = "";
    while (end < n && p[end] != '\n' && p[end] != '\r') end++;
    if (st->field_line != st->line) /* most likely a quote left open up there */
        snprintf(opened, sizeof opened, " (the quoted field started on line %" PRIu64 ")",
                 st->field_line);
    return annb_input_error(st->err, ANNB_E_INPUT, st->src->path, st->line, col,
                            "expected %s or a line break after the closing quote%s, found %s",
                            st->delim == '\t' ? "a tab" : "','", opened,
                            annb_excerpt(ex, p + done, end - done));
}

/* Hands p[0..n) to libcsv. */
static int feed(csv_scan *st, const unsigned char *p, size_t n)
{
    if (n == 0) return ANNB_OK;
    size_t done = csv_parse(&st->parser, p, n, on_field, on_row, st);
    if (st->status) return st->status;
    if (done < n) return parse_error(st, p, done);
    if (st->fired_field) st->field_open = st->fired_field = 0;
    if (st->fired_row) st->row_open = st->fired_row = 0;
    return ANNB_OK;
}

/* Scans and feeds the rest of the current block. */
static int scan_block(csv_scan *st)
{
    annb_source *s = st->src;
    const unsigned char *b = s->block;
    size_t n = s->len, i = s->pos, chunk = i;
    int rc;
    while (i < n) {
        uint64_t at = s->base + i;
        unsigned char c = b[i];
        if (st->fast_row && !st->row_open && chunk == i && st->row > 0 && !st->blank_line) {
            /* libcsv is between rows here, so it need not see rows taken */
            size_t len = st->fast_row(st->h->ctx, (const char *)b + i, n - i, st->line);
            if (len) {
                i += len;
                line_break(st, s->base + i, b[i]);
                st->row++;
                chunk = ++i;
                continue;
            }
        }
        if (st->in_quotes) {
            while (i < n && b[i] != '"' && b[i] != '\n' && b[i] != '\r') i++;
            if ((rc = field_size_check(st, s->base + i))) return rc;
            if (i == n) break;
            if (b[i] == '"') {
                st->in_quotes = 0;
                if ((rc = feed(st, b + chunk, i + 1 - chunk))) return rc;
                chunk = i + 1;
            } else {
                line_break(st, s->base + i, b[i]);
            }
            i++;
            continue;
        }
        if (!st->special[c]) {
            if (!st->field_open) {
                if (is_blank(c, st->delim)) {
                    i++;
                    continue;
                }
                if ((rc = open_field(st, at, 0))) return rc;
            }
            do i++;
            while (i < n && !st->special[b[i]]);
            if ((rc = field_size_check(st, s->base + i))) return rc;
            continue;
        }
        if (c == '"') {
            if (!st->field_open && (rc = open_field(st, at, 1))) return rc;
            st->in_quotes = 1;
        } else if (c == st->delim) {
            if (!st->field_open && (rc = open_field(st, at, 0))) return rc;
        } else if (st->row_open) { /* a line break ends the row */
            if (!st->field_open && (rc = open_field(st, at, 0))) return rc;
            st->end_line = st->line;
            st->end_col = col_of(st, at);
        } else if (!(c == '\n' && st->cr_next == at) && !st->blank_line) {
            st->blank_line = st->line;
        }
        if ((rc = feed(st, b + chunk, i + 1 - chunk))) return rc;
        chunk = i + 1;
        if (c == '\n' || c == '\r') line_break(st, at, c);
        i++;
    }
    rc = feed(st, b + chunk, n - chunk);
    s->pos = n;
    return rc;
}

static int scan_end(csv_scan *st)
{
    uint64_t at = st->src->base + st->src->len;
    int rc;
    if (st->row_open) {
        if (!st->field_open && (rc = open_field(st, at, 0))) return rc;
        st->end_line = st->line;
        st->end_col = col_of(st, at);
    }
    if (csv_fini(&st->parser, on_field, on_row, st) != 0) {
        if (csv_error(&st->parser) != CSV_EPARSE)
            return annb_error_set(st->err, ANNB_E_NOMEM, "%s: out of memory", st->src->path);
        return annb_input_error(st->err, ANNB_E_INPUT, st->src->path, st->field_line, st->field_col,
                                "expected a closing quote for the field opened here, found the "
                                "end of the file");
    }
    if (st->status) return st->status;
    if (st->row == 0)
        return annb_input_error(st->err, ANNB_E_INPUT, st->src->path, 1, 1,
                                "expected a header (%s), found an empty file", st->h->header);
    if (st->row == 1)
        return annb_input_error(st->err, ANNB_E_INPUT, st->src->path, st->line, col_of(st, at),
                                "expected at least one row after the header, found the end of the file");
    return ANNB_OK;
}

int annb_csv_read(annb_source *s, unsigned char delim, const annb_csv_handler *h, annb_error *err)
{
    return annb_csv_read_fast(s, delim, h, NULL, err);
}

int annb_csv_read_fast(annb_source *s, unsigned char delim, const annb_csv_handler *h,
                       annb_csv_fast_row fast_row, annb_error *err)
{
    csv_scan st;
    memset(&st, 0, sizeof st);
    st.src = s;
    st.h = h;
    st.fast_row = fast_row;
    st.err = err;
    st.delim = delim;
    st.special[delim] = st.special['"'] = st.special['\r'] = st.special['\n'] = 1;
    st.line = 1;
    st.line_start = s->base + s->pos; /* after a BOM */
    st.cr_next = UINT64_MAX;
    if (csv_init(&st.parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", s->path);
    csv_set_delim(&st.parser, delim);
    csv_set_blk_size(&st.parser, 4096); /* libcsv grows its field buffer linearly */
    int rc = ANNB_OK;
    while (rc == ANNB_OK && s->len > 0) {
        rc = scan_block(&st);
        if (rc == ANNB_OK) rc = annb_source_fill(s, err);
    }
    if (rc == ANNB_OK) rc = scan_end(&st);
    csv_free(&st.parser);
    return rc;
}
