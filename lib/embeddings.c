/*
 * embeddings.c - an embeddings CSV/TSV into IDs and float32 vectors.
 *
 * Two forms, told apart by the header: Spark's `id,features` (a JSON array
 * per row, parsed with cJSON) and the wide `id,f0,...` (one number per
 * column, parsed with strtod). Fields arrive one by one from annb_csv_read
 * and go straight into the growing arrays: nothing per row is kept except
 * the row's line, which the duplicate check needs for its message.
 *
 * Note: cJSON records its last parse error in a process-wide variable even
 * when the caller asks for the error position, as we do. That write is the
 * only shared state touched here.
 */
#include "csvread.h"
#include "ingest.h"

#include <cjson/cJSON.h>
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
    const char *point; /* the locale's decimal point when it is not "." */
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

static int parse_features(emb_reader *r, const annb_csv_field *f, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    const char *end = NULL;
    cJSON *arr = cJSON_ParseWithOpts(f->data, &end, 1);
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
        size_t k = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, arr)
        {
            if (!cJSON_IsNumber(item)) {
                rc = element_error(r, f, k, "a number", err);
                break;
            }
            if (!annb_float_from_double(&v[k], item->valuedouble)) {
                rc = element_error(r, f, k, "a finite float32", err);
                break;
            }
            k++;
        }
    }
    cJSON_Delete(arr);
    return rc;
}

/* A whole field as a number: JSON-like characters only (no "nan", "inf",
 * hex or blanks), all of it consumed by strtod. strtod reads the decimal
 * point of the current locale, so where that is not '.' the text is
 * translated first (as cJSON does). 0 ok, 1 not a number, 2 not a finite
 * float32. */
static int parse_value(float *out, const char *s, size_t len, const char *point)
{
    char buf[128];
    if (len == 0) return 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
            return 1;
    }
    if (point) {
        size_t n = strlen(point), o = 0;
        for (size_t i = 0; i < len; i++) {
            if (o + n >= sizeof buf) return 1; /* no float needs that many digits */
            if (s[i] == '.') {
                memcpy(buf + o, point, n);
                o += n;
            } else {
                buf[o++] = s[i];
            }
        }
        buf[o] = '\0';
        s = buf;
        len = o;
    }
    char *end;
    double d = strtod(s, &end);
    if (end != s + len) return 1;
    return annb_float_from_double(out, d) ? 0 : 2;
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
    int bad = parse_value(v, f->data, f->len, r->point);
    if (bad)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                "expected %s as value %" PRIu32 " of the row, found %s",
                                bad == 1 ? "a number" : "a finite float32", f->index,
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

int annb_embeddings_read(annb_embeddings *out, const char *path, annb_error *err)
{
    if (!out || !path) return annb_error_set(err, ANNB_E_INVALID, "annb_embeddings_read: NULL argument");
    memset(out, 0, sizeof *out);
    annb_source src;
    int rc = annb_source_open(&src, path, err);
    if (rc) return rc;
    emb_reader r = {.path = path, .out = out};
    const char *point = localeconv()->decimal_point;
    if (point && strcmp(point, ".") != 0) r.point = point;
    const annb_csv_handler h = {emb_field, emb_row, &r, "id,features or id,f0,..."};
    rc = annb_csv_read(&src, annb_source_first_line_has(&src, "\t") ? '\t' : ',', &h, err);
    annb_source_close(&src);
    if (rc == ANNB_OK) rc = annb_ids_check_unique(path, out->ids, r.lines, out->count, err);
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

void annb_embeddings_release(annb_embeddings *e)
{
    if (!e) return;
    free(e->ids);
    free(e->vectors);
    memset(e, 0, sizeof *e);
}
