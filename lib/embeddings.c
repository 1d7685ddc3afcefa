/*
 * embeddings.c - an embeddings CSV/TSV into IDs and float32 vectors.
 *
 * Two forms, told apart by the header: Spark's `id,features` (a JSON array
 * per row, checked with cJSON) and the wide `id,f0,...` (one number per
 * column). Fields arrive one by one from annb_csv_read and go straight into
 * the growing arrays: nothing per row is kept except the row's line, which
 * the duplicate check needs for its message. Every number becomes the float
 * strtof would give (numparse.h), in either form and in any locale.
 *
 * Spark rows of the usual shape, `ID,"[x, y, ...]"`, take a shortcut
 * (spark_fast_row): libcsv's byte-by-byte callbacks and cJSON's node per
 * number cost most of the read time. The shortcut declines anything
 * unusual or wrong, which then goes the general way, so every message
 * comes from one place and both ways agree on every input (the fuzzer and
 * test_ingest compare them).
 *
 * Note: cJSON records its last parse error in a process-wide variable even
 * when the caller asks for the error position, as we do. That write is the
 * only shared state touched here.
 */
#include "csvread.h"
#include "ingest.h"
#include "numparse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct emb_reader {
    const char *path;
    annb_embeddings *out;
    uint64_t cap;      /* rows the arrays can hold */
    uint64_t *lines;   /* line of each row, for the duplicate message */
    int spark;         /* `id,features` */
    uint32_t fields;   /* fields per row: 2 (Spark) or dimension + 1 */
    uint64_t dim_line; /* the row that fixed the dimension (Spark) */
    unsigned char delim;
    int fast;          /* spark_fast_row may take rows (the locale allows it) */
} emb_reader;

static int is_id_name(const char *s, size_t len)
{
    static const char *const names[] = {"id",      "userid",  "itemid",   "movieid",
                                        "user_id", "item_id", "movie_id"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (annb_ascii_ieq(s, len, names[i])) return 1;
    return 0;
}

static int nomem(const emb_reader *r, annb_error *err)
{
    return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", r->path);
}

/* Room for row out->count, vectors included once the dimension is known
 * (from the header in the wide form, from the first row in the Spark form). */
static int reserve_row(emb_reader *r, annb_error *err)
{
    annb_embeddings *e = r->out;
    if (e->count < r->cap) return ANNB_OK;
    uint64_t cap = annb_grow_capacity(r->cap, e->count + 1);
    void *p;
    if (!(p = annb_array_resize(e->ids, cap, sizeof *e->ids))) return nomem(r, err);
    e->ids = p;
    if (!(p = annb_array_resize(r->lines, cap, sizeof *r->lines))) return nomem(r, err);
    r->lines = p;
    if (e->dimension) {
        if (!(p = annb_array_resize(e->vectors, cap * e->dimension, sizeof *e->vectors)))
            return nomem(r, err);
        e->vectors = p;
    }
    r->cap = cap;
    return ANNB_OK;
}

/* Fixes the dimension on the first row of the Spark form. */
static int set_dimension(emb_reader *r, uint32_t d, annb_error *err)
{
    annb_embeddings *e = r->out;
    e->dimension = d;
    void *p = annb_array_resize(NULL, r->cap * d, sizeof *e->vectors);
    if (!p) return nomem(r, err);
    e->vectors = p;
    return ANNB_OK;
}

static const char *form_text(const emb_reader *r, char buf[64])
{
    if (r->spark) return "id and a features array";
    snprintf(buf, 64, "id and %" PRIu32 " value%s", r->fields - 1, r->fields == 2 ? "" : "s");
    return buf;
}

/* ---- header ---- */

static int header_field(emb_reader *r, const annb_csv_field *f, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    if (f->index == 0) {
        if (is_id_name(f->data, f->len)) return ANNB_OK;
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                "expected a header whose first column is id (or userId, itemId, "
                                "movieId), found %s",
                                annb_excerpt(ex, f->data, f->len));
    }
    if (f->index > ANNB_MAX_DIMENSION)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, f->line, f->col,
                                "expected at most %u value columns, found more", ANNB_MAX_DIMENSION);
    if (annb_ascii_ieq(f->data, f->len, "features")) {
        if (f->index != 1)
            return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                    "expected features only as the second column, found it as "
                                    "column %" PRIu32,
                                    f->index + 1);
        r->spark = 1;
    }
    return ANNB_OK;
}

static int header_row(emb_reader *r, const annb_csv_row *row, annb_error *err)
{
    if (row->fields < 2)
        return annb_input_error(err, ANNB_E_INPUT, r->path, row->end_line, row->end_col,
                                "expected a features column or value columns after id, found "
                                "the end of the header");
    if (r->spark && row->fields != 2)
        return annb_input_error(err, ANNB_E_INPUT, r->path, row->end_line, row->end_col,
                                "expected features to be the only column after id, found %" PRIu32
                                " columns",
                                row->fields);
    r->fields = row->fields;
    if (!r->spark) r->out->dimension = row->fields - 1;
    return ANNB_OK;
}

/* ---- values ---- */

/* Offset and length of element k (0-based) of the JSON array text s, for
 * messages: top-level commas counted outside strings and nested values. */
static void json_element_span(const char *s, size_t len, size_t k, size_t *off, size_t *elen)
{
    size_t i = 0, idx = 0, start;
    int depth = 0, in_str = 0;
    while (i < len && s[i] != '[') i++;
    start = ++i;
    for (; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '[' || c == '{') depth++;
        else if ((c == ']' || c == '}') && depth > 0) depth--;
        else if ((c == ',' && depth == 0) || c == ']') {
            if (idx == k) break;
            idx++;
            start = i + 1;
        }
    }
    while (start < i && (s[start] == ' ' || s[start] == '\t' || s[start] == '\n' || s[start] == '\r'))
        start++;
    size_t end = i < len ? i : len;
    while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\n' || s[end - 1] == '\r'))
        end--;
    *off = start < len ? start : len;
    *elen = end > start ? end - start : 0;
}

static int element_error(emb_reader *r, const annb_csv_field *f, size_t k, const char *what,
                         annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    size_t off, n;
    json_element_span(f->data, f->len, k, &off, &n);
    return annb_input_error(err, ANNB_E_INPUT, r->path, f->line,
                            f->col + (uint64_t)f->quoted + off,
                            "expected %s as element %zu of the features array, found %s", what,
                            k + 1, annb_excerpt(ex, f->data + off, n));
}

/* Decides the dimension on the first row; the row's vector slot after that. */
static int features_checked(emb_reader *r, const annb_csv_field *f, const cJSON *arr,
                            annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    annb_embeddings *e = r->out;
    uint64_t col = f->col + (uint64_t)f->quoted;
    if (!cJSON_IsArray(arr))
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col,
                                "expected a JSON array of numbers, found %s",
                                annb_excerpt(ex, f->data, f->len));
    int n = cJSON_GetArraySize(arr);
    if (n <= 0)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col,
                                "expected a non-empty JSON array of numbers, found %s",
                                annb_excerpt(ex, f->data, f->len));
    if (e->dimension == 0) {
        if ((unsigned)n > ANNB_MAX_DIMENSION)
            return annb_input_error(err, ANNB_E_LIMIT, r->path, f->line, col,
                                    "expected at most %u numbers in the features array, found %d",
                                    ANNB_MAX_DIMENSION, n);
        r->dim_line = f->line;
        return set_dimension(r, (uint32_t)n, err);
    }
    if ((unsigned)n != e->dimension)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col,
                                "expected %" PRIu32 " numbers in the features array (the dimension "
                                "of line %" PRIu64 "), found %d",
                                e->dimension, r->dim_line, n);
    return ANNB_OK;
}

/* The next number of a JSON array text that cJSON accepted, from *pos on:
 * before the first element that is not a number, the runs of the bytes
 * cJSON hands to strtod are exactly the numbers, in order. */
static int is_number_byte(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
}

static void next_number(const char *s, size_t len, size_t *pos, const char **num, size_t *n)
{
    size_t i = *pos;
    while (i < len && !is_number_byte(s[i])) i++;
    size_t start = i;
    while (i < len && is_number_byte(s[i])) i++;
    *num = s + start;
    *n = i - start;
    *pos = i;
}

static int parse_features(emb_reader *r, const annb_csv_field *f, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    const char *end = NULL;
    errno = 0;
    cJSON *arr = cJSON_ParseWithOpts(f->data, &end, 1);
    /* cJSON says only "failed": malloc's ENOMEM tells out of memory apart */
    if (!arr && errno == ENOMEM)
        return annb_input_error(err, ANNB_E_NOMEM, r->path, f->line, f->col, "out of memory");
    if (!arr) {
        size_t at = end && end >= f->data && end <= f->data + f->len ? (size_t)(end - f->data) : 0;
        /* `1,[0.5,0.25]` in a CSV splits the array at its commas */
        int split = !f->quoted && at >= f->len && memchr(f->data, '[', f->len);
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line,
                                f->col + (uint64_t)f->quoted + at,
                                "expected a JSON array of numbers, found %s%s",
                                f->len == 0  ? "an empty field"
                                : at < f->len ? annb_excerpt(ex, f->data + at, f->len - at)
                                              : "the end of the field",
                                split ? " (quote the features array: it contains the delimiter)" : "");
    }
    int rc = features_checked(r, f, arr, err);
    if (rc == ANNB_OK) {
        float *v = r->out->vectors + r->out->count * r->out->dimension;
        size_t k = 0, pos = 0, n;
        const char *num;
        const cJSON *item;
        /* cJSON's valuedouble, rounded again to float, could differ from
         * the float nearest to the text: convert the text itself. */
        cJSON_ArrayForEach(item, arr)
        {
            int bad = ANNB_FLOAT_SYNTAX;
            if (cJSON_IsNumber(item)) {
                next_number(f->data, f->len, &pos, &num, &n);
                bad = annb_float_parse(&v[k], num, n);
            }
            if (bad) {
                rc = element_error(r, f, k, bad == ANNB_FLOAT_RANGE ? "a finite float32" : "a number",
                                   err);
                break;
            }
            k++;
        }
    }
    cJSON_Delete(arr);
    return rc;
}

/* ---- the shortcut for usual Spark rows ---- */

static const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && *p == ' ') p++;
    return p;
}

/*
 * Reads `ID,"[x, y, ...]"` up to its line break (an annb_csv_fast_row):
 * an ID that annb_id_parse takes, the delimiter, the quoted (or, with tabs,
 * unquoted) array of exactly dimension JSON numbers of at most
 * ANNB_JSON_NUMBER_MAX bytes (cJSON's limit) with finite float values,
 * spaces around the brackets and elements only, then LF or CR. libcsv and
 * cJSON take all of those, and with the same values, because the text is
 * converted by numparse.h on both ways. Anything else, or a row that would
 * fail, is declined (0) so that the general path reads it and says what is
 * wrong. The first row, which fixes the dimension, always goes that way.
 */
static size_t spark_fast_row(void *ctx, const char *p, size_t n, uint64_t line)
{
    emb_reader *r = ctx;
    annb_embeddings *e = r->out;
    const char *q = p, *end = p + n;
    int64_t id;
    if (!r->fast || !r->spark || e->dimension == 0 || e->count >= ANNB_MAX_ROWS) return 0;
    while (q < end && q - p <= 20 && ((*q >= '0' && *q <= '9') || *q == '-' || *q == '+')) q++;
    if (q == end || *q != r->delim || annb_id_parse(&id, p, (size_t)(q - p))) return 0;
    int quoted = ++q < end && *q == '"';
    if (quoted) q++;
    else if (r->delim == ',') return 0; /* libcsv would split the array at its commas */
    if (reserve_row(r, NULL) != ANNB_OK) return 0;
    q = skip_spaces(q, end);
    if (q == end || *q++ != '[') return 0;
    float *v = e->vectors + e->count * e->dimension;
    for (uint32_t k = 0;; k++) {
        if (k == e->dimension) return 0;
        const char *num = skip_spaces(q, end);
        q = annb_json_float(&v[k], num, end);
        if (!q || q - num > ANNB_JSON_NUMBER_MAX) return 0;
        q = skip_spaces(q, end);
        if (q < end && *q == ']' && k + 1 == e->dimension) break;
        if (q == end || *q++ != ',') return 0;
    }
    q = skip_spaces(q + 1, end);
    if (quoted && (q == end || *q++ != '"')) return 0;
    if (q == end || (*q != '\n' && *q != '\r')) return 0;
    e->ids[e->count] = id;
    r->lines[e->count] = line;
    e->count++;
    return (size_t)(q - p);
}

/* ---- rows ---- */

static int data_field(emb_reader *r, const annb_csv_field *f, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE], form[64];
    annb_embeddings *e = r->out;
    if (f->index >= r->fields)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                "expected %" PRIu32 " fields (%s), found field %" PRIu32,
                                r->fields, form_text(r, form), f->index + 1);
    if (f->index == 0) {
        if (e->count >= ANNB_MAX_ROWS)
            return annb_input_error(err, ANNB_E_LIMIT, r->path, f->line, f->col,
                                    "expected at most %llu rows, found more", ANNB_MAX_ROWS);
        int rc = reserve_row(r, err);
        if (rc) return rc;
        const char *why = annb_id_parse(&e->ids[e->count], f->data, f->len);
        if (why)
            return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col, "%s, found %s",
                                    why, annb_excerpt(ex, f->data, f->len));
        r->lines[e->count] = f->line;
        return ANNB_OK;
    }
    if (r->spark) return parse_features(r, f, err);
    float *v = e->vectors + e->count * e->dimension + (f->index - 1);
    /* strtod's decimal grammar: no "nan", "inf", hex or blanks */
    int bad = annb_float_parse(v, f->data, f->len);
    if (bad)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                "expected %s as value %" PRIu32 " of the row, found %s",
                                bad == ANNB_FLOAT_SYNTAX ? "a number" : "a finite float32", f->index,
                                annb_excerpt(ex, f->data, f->len));
    return ANNB_OK;
}

static int emb_field(void *ctx, const annb_csv_field *f, annb_error *err)
{
    emb_reader *r = ctx;
    return f->row == 0 ? header_field(r, f, err) : data_field(r, f, err);
}

static int emb_row(void *ctx, const annb_csv_row *row, annb_error *err)
{
    emb_reader *r = ctx;
    char form[64];
    if (row->row == 0) return header_row(r, row, err);
    if (row->fields != r->fields)
        return annb_input_error(err, ANNB_E_INPUT, r->path, row->end_line, row->end_col,
                                "expected %" PRIu32 " fields (%s), found %" PRIu32, r->fields,
                                form_text(r, form), row->fields);
    r->out->count++;
    return ANNB_OK;
}

/* Every value is a finite float, yet products can overflow: notes the
 * first row past ANNB_MAX_SQUARED_NORM for annb_embeddings_check_scores. */
static void find_overflow(annb_embeddings *e, const uint64_t *lines)
{
    for (uint64_t i = 0; i < e->count; i++) {
        const float *v = e->vectors + i * e->dimension;
        double sq = 0; /* d <= 4096 squares of at most FLT_MAX: finite in double */
        for (uint32_t j = 0; j < e->dimension; j++) sq += (double)v[j] * v[j];
        if (sq > ANNB_MAX_SQUARED_NORM) {
            e->overflow_row = i + 1;
            e->overflow_line = lines[i];
            return;
        }
    }
}

int annb_embeddings_check_scores(const annb_embeddings *e, const char *path, annb_error *err)
{
    if (!e->overflow_row) return ANNB_OK;
    uint64_t i = e->overflow_row - 1;
    const float *v = e->vectors + i * e->dimension;
    double sq = 0;
    for (uint32_t j = 0; j < e->dimension; j++) sq += (double)v[j] * v[j];
    return annb_input_error(err, ANNB_E_INPUT, path, e->overflow_line, 1,
                            "expected a vector whose squared norm is at most %.3g, so that its "
                            "scores fit in float32, found %.3g (ID %lld)",
                            ANNB_MAX_SQUARED_NORM, sq, (long long)e->ids[i]);
}

static int read_embeddings(annb_embeddings *out, const char *path, int fast, annb_error *err)
{
    if (!out || !path) return annb_error_set(err, ANNB_E_INVALID, "annb_embeddings_read: NULL argument");
    memset(out, 0, sizeof *out);
    annb_source src;
    int rc = annb_source_open(&src, path, err);
    if (rc) return rc;
    emb_reader r = {.path = path, .out = out};
    r.delim = annb_source_first_line_has(&src, "\t") ? '\t' : ',';
    /* cJSON puts the first byte of the locale's decimal point in place of
     * '.': with a longer one it refuses fractions, and so must the shortcut. */
    const char *point = localeconv()->decimal_point;
    r.fast = point && strlen(point) == 1;
    const annb_csv_handler h = {emb_field, emb_row, &r, "id,features or id,f0,..."};
    rc = annb_csv_read_fast(&src, r.delim, &h, fast ? spark_fast_row : NULL, err);
    annb_source_close(&src);
    if (rc == ANNB_OK) rc = annb_ids_check_unique(path, out->ids, r.lines, out->count, err);
    if (rc == ANNB_OK) find_overflow(out, r.lines);
    free(r.lines);
    if (rc) {
        annb_embeddings_release(out);
        return rc;
    }
    /* Give back the unused tail of the geometric growth. */
    void *p = annb_array_resize(out->ids, out->count, sizeof *out->ids);
    if (p) out->ids = p;
    p = annb_array_resize(out->vectors, out->count * out->dimension, sizeof *out->vectors);
    if (p) out->vectors = p;
    return ANNB_OK;
}

int annb_embeddings_read(annb_embeddings *out, const char *path, annb_error *err)
{
    return read_embeddings(out, path, 1, err);
}

int annb_embeddings_read_general(annb_embeddings *out, const char *path, annb_error *err)
{
    return read_embeddings(out, path, 0, err);
}

void annb_embeddings_release(annb_embeddings *e)
{
    if (!e) return;
    free(e->ids);
    free(e->vectors);
    memset(e, 0, sizeof *e);
}
