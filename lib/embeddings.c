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
#include "keys.h"
#include "npy.h"
#include "numparse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct emb_reader {
    const char *path;
    annb_embeddings *out;
    const annb_read_opts *opts; /* never NULL */
    uint64_t cap;      /* rows the arrays can hold */
    uint64_t *lines;   /* line of each row, for the duplicate message */
    int spark;         /* one vector column (JSON array or separated numbers) */
    uint32_t fields;   /* fields per row */
    uint32_t id_col;   /* 0-based column of the ID */
    uint32_t vec_col;  /* 0-based column of the vector (spark) */
    uint64_t dim_line; /* the row that fixed the dimension (Spark) */
    unsigned char delim;
    int fast;          /* spark_fast_row may take rows (the locale allows it) */
    /* the header, kept until the columns are decided */
    char **names;
    uint64_t *name_cols;
    uint64_t header_line;
    uint32_t name_count, name_cap;
    char vec_name[64]; /* the vector column's name, for messages */
    /* Each row's ID as written, until it is known whether the IDs are
     * integers (then dropped) or keys (then hashed and kept). */
    annb_keys keys;
    int keyed;         /* some ID is a key: every ID is one (keys.h) */
} emb_reader;

/* Header names that mean "the ID" (any case). */
static int is_id_name(const char *s, size_t len)
{
    static const char *const names[] = {"id",      "userid",  "itemid",   "movieid", "user_id",
                                        "item_id", "movie_id", "word"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (annb_ascii_ieq(s, len, names[i])) return 1;
    return 0;
}

/* Header names that mean "the whole vector in one field" (any case):
 * features, vector, embedding and NAME_embedding. */
static int is_vector_name(const char *s, size_t len)
{
    static const char suffix[] = "_embedding";
    const size_t n = sizeof suffix - 1;
    if (annb_ascii_ieq(s, len, "features") || annb_ascii_ieq(s, len, "vector") ||
        annb_ascii_ieq(s, len, "embedding"))
        return 1;
    return len > n && annb_ascii_ieq(s + len - n, n, suffix);
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
    if (r->spark && r->fields == 2 && r->id_col == 0) return "id and a features array";
    if (r->spark) {
        snprintf(buf, 64, "an ID in column %" PRIu32 " and a vector in column %" PRIu32,
                 r->id_col + 1, r->vec_col + 1);
        return buf;
    }
    snprintf(buf, 64, "id and %" PRIu32 " value%s", r->fields - 1, r->fields == 2 ? "" : "s");
    return buf;
}

/* ---- header ---- */

static void free_names(emb_reader *r)
{
    for (uint32_t i = 0; i < r->name_count; i++) free(r->names[i]);
    free(r->names);
    free(r->name_cols);
    r->names = NULL;
    r->name_cols = NULL;
    r->name_count = r->name_cap = 0;
}

/* Keeps each header name: the columns are decided on the whole header. */
static int header_field(emb_reader *r, const annb_csv_field *f, annb_error *err)
{
    if (f->index > ANNB_MAX_DIMENSION)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, f->line, f->col,
                                "expected at most %u value columns, found more", ANNB_MAX_DIMENSION);
    if (r->name_count == r->name_cap) {
        uint32_t cap = r->name_cap ? 2 * r->name_cap : 16;
        void *p = realloc(r->names, cap * sizeof *r->names);
        if (!p) return nomem(r, err);
        r->names = p;
        if (!(p = realloc(r->name_cols, cap * sizeof *r->name_cols))) return nomem(r, err);
        r->name_cols = p;
        r->name_cap = cap;
    }
    char *name = malloc(f->len + 1);
    if (!name) return nomem(r, err);
    memcpy(name, f->data, f->len + 1);
    r->names[r->name_count] = name;
    r->name_cols[r->name_count++] = f->col;
    r->header_line = f->line;
    return ANNB_OK;
}

/* Copies s into out (size > 4) with bytes a terminal must not see as '?',
 * cut with "..." when it does not fit. */
static void printable(char *out, size_t size, const char *s)
{
    size_t o = 0;
    for (; *s && o + 4 < size; s++)
        out[o++] = (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?';
    if (*s) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* The header as it was written (names joined by the delimiter), for
 * messages. */
static const char *header_text(const emb_reader *r, char *out, size_t size)
{
    char joined[256];
    size_t o = 0;
    for (uint32_t i = 0; i < r->name_count && o + 1 < sizeof joined; i++) {
        if (i) joined[o++] = r->delim == '\t' ? ',' : (char)r->delim;
        size_t n = strlen(r->names[i]);
        if (n > sizeof joined - 1 - o) n = sizeof joined - 1 - o;
        memcpy(joined + o, r->names[i], n);
        o += n;
    }
    joined[o] = '\0';
    printable(out, size, joined);
    return out;
}

/* A column given as a name (any case) or a 1-based number; UINT32_MAX if
 * the header has none such. */
static uint32_t column_of(const emb_reader *r, const char *spec)
{
    size_t n = strlen(spec), i = 0;
    while (i < n && spec[i] >= '0' && spec[i] <= '9') i++;
    if (n > 0 && i == n && n < 10) {
        unsigned long v = strtoul(spec, NULL, 10);
        return v >= 1 && v <= r->name_count ? (uint32_t)(v - 1) : UINT32_MAX;
    }
    for (uint32_t c = 0; c < r->name_count; c++)
        if (annb_ascii_ieq(r->names[c], strlen(r->names[c]), spec)) return c;
    return UINT32_MAX;
}

/* The one column whose name is_name accepts: its index, UINT32_MAX if none,
 * UINT32_MAX - 1 if several (then *first and *second name two). */
static uint32_t detect(const emb_reader *r, int (*is_name)(const char *, size_t), uint32_t skip,
                       uint32_t *first, uint32_t *second)
{
    uint32_t found = UINT32_MAX;
    for (uint32_t c = 0; c < r->name_count; c++) {
        if (c == skip || !is_name(r->names[c], strlen(r->names[c]))) continue;
        if (found != UINT32_MAX) {
            *first = found;
            *second = c;
            return UINT32_MAX - 1;
        }
        found = c;
    }
    return found;
}

static int column_error(emb_reader *r, const char *option, const char *spec, annb_error *err)
{
    char head[128], s[64];
    printable(s, sizeof s, spec);
    return annb_input_error(err, ANNB_E_INPUT, r->path, r->header_line, 1,
                            "expected a column %s (%s %s), found header %s", s, option, s,
                            header_text(r, head, sizeof head));
}

/* Which column is the ID and which the vector: as the options say, else
 * by the names of the header (is_id_name, is_vector_name) when that is
 * unambiguous. No vector column: the wide form, every other column a value. */
static int decide_columns(emb_reader *r, annb_error *err)
{
    const annb_read_opts *o = r->opts;
    char head[128], a[64], b[64];
    uint32_t x = 0, y = 0, id, vec = UINT32_MAX;
    if (o->id_column) {
        if ((id = column_of(r, o->id_column)) == UINT32_MAX)
            return column_error(r, "--id-column", o->id_column, err);
    } else if ((id = detect(r, is_id_name, UINT32_MAX, &x, &y)) == UINT32_MAX - 1) {
        printable(a, sizeof a, r->names[x]);
        printable(b, sizeof b, r->names[y]);
        return annb_input_error(err, ANNB_E_INPUT, r->path, r->header_line, r->name_cols[y],
                                "expected one ID column, found header %s with two (%s and %s): "
                                "pass --id-column %s or --id-column %s",
                                header_text(r, head, sizeof head), a, b, a, b);
    } else if (id == UINT32_MAX) {
        printable(a, sizeof a, r->names[0]);
        if (r->name_count == 2) printable(b, sizeof b, r->names[1]);
        return annb_input_error(err, ANNB_E_INPUT, r->path, r->header_line, 1,
                                "expected a header naming the ID column (id, word, item_id, "
                                "movie_id, user_id, itemId, movieId, userId), found header %s: "
                                "pass --id-column %s%s%s",
                                header_text(r, head, sizeof head), r->name_count ? a : "NAME",
                                r->name_count == 2 ? " --vector-column " : "",
                                r->name_count == 2 ? b : "");
    }
    if (o->vector_column) {
        if ((vec = column_of(r, o->vector_column)) == UINT32_MAX)
            return column_error(r, "--vector-column", o->vector_column, err);
        if (vec == id)
            return annb_input_error(err, ANNB_E_INPUT, r->path, r->header_line, r->name_cols[id],
                                    "expected the vector in another column than the ID, found "
                                    "both in column %" PRIu32, id + 1);
    } else if ((vec = detect(r, is_vector_name, id, &x, &y)) == UINT32_MAX - 1) {
        printable(a, sizeof a, r->names[x]);
        printable(b, sizeof b, r->names[y]);
        return annb_input_error(err, ANNB_E_INPUT, r->path, r->header_line, r->name_cols[y],
                                "expected one vector column, found header %s with two (%s and "
                                "%s): pass --vector-column %s or --vector-column %s",
                                header_text(r, head, sizeof head), a, b, a, b);
    }
    r->id_col = id;
    if (vec != UINT32_MAX) {
        r->spark = 1;
        r->vec_col = vec;
        printable(r->vec_name, sizeof r->vec_name, r->names[vec]);
    }
    return ANNB_OK;
}

static int header_row(emb_reader *r, const annb_csv_row *row, annb_error *err)
{
    if (row->fields < 2)
        return annb_input_error(err, ANNB_E_INPUT, r->path, row->end_line, row->end_col,
                                "expected a features column or value columns after id, found "
                                "the end of the header");
    int rc = decide_columns(r, err);
    if (rc) return rc;
    r->fields = row->fields;
    if (!r->spark) r->out->dimension = row->fields - 1;
    free_names(r);
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
                            "expected %s as element %zu of the %s array, found %s", what,
                            k + 1, r->vec_name, annb_excerpt(ex, f->data + off, n));
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
                                    "expected at most %u numbers in the %s array, found %d",
                                    ANNB_MAX_DIMENSION, r->vec_name, n);
        r->dim_line = f->line;
        return set_dimension(r, (uint32_t)n, err);
    }
    if ((unsigned)n != e->dimension)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col,
                                "expected %" PRIu32 " numbers in the %s array (the dimension "
                                "of line %" PRIu64 "), found %d",
                                e->dimension, r->vec_name, r->dim_line, n);
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

/* ---- a vector as numbers separated by commas or blanks ---- */

static int is_blank_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The next number of "0.1, 0.2 0.3" from *pos on: its offset and length;
 * returns 0 at the end, -1 where a number was expected and a comma found
 * (*pos then at that comma). One comma at most between two numbers. */
static int next_separated(const char *s, size_t len, size_t *pos, size_t *off, size_t *n)
{
    size_t i = *pos;
    while (i < len && is_blank_byte(s[i])) i++;
    if (*pos > 0 && i < len && s[i] == ',') { /* the separator after the previous number */
        size_t comma = i++;
        while (i < len && is_blank_byte(s[i])) i++;
        if (i == len || s[i] == ',') {
            *pos = i == len ? comma : i;
            return -1;
        }
    } else if (i < len && s[i] == ',') {
        *pos = i;
        return -1;
    }
    if (i == len) {
        *pos = i;
        return 0;
    }
    size_t start = i;
    while (i < len && !is_blank_byte(s[i]) && s[i] != ',') i++;
    *off = start;
    *n = i - start;
    *pos = i;
    return 1;
}

/* A vector field that is not a JSON array: "0.1,0.2,..." (the two-tower
 * form, quoted in a CSV) or "0.1 0.2 ...". Counted first, so that the
 * dimension is checked before a value is stored. */
static int parse_separated(emb_reader *r, const annb_csv_field *f, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    annb_embeddings *e = r->out;
    uint64_t col = f->col + (uint64_t)f->quoted;
    size_t pos = 0, off = 0, n = 0;
    uint64_t count = 0;
    int got;
    while ((got = next_separated(f->data, f->len, &pos, &off, &n)) == 1) count++;
    if (got < 0)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col + pos,
                                "expected a number as value %" PRIu64 " of the %s vector, found "
                                "%s",
                                count + 1, r->vec_name,
                                annb_excerpt(ex, f->data + pos, f->len - pos));
    if (count == 0)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col,
                                "expected a vector (a JSON array, or numbers separated by commas "
                                "or spaces), found %s",
                                f->len ? "only blanks" : "an empty field");
    if (e->dimension == 0) {
        if (count > ANNB_MAX_DIMENSION)
            return annb_input_error(err, ANNB_E_LIMIT, r->path, f->line, col,
                                    "expected at most %u numbers in the %s vector, found %" PRIu64,
                                    ANNB_MAX_DIMENSION, r->vec_name, count);
        r->dim_line = f->line;
        int rc = set_dimension(r, (uint32_t)count, err);
        if (rc) return rc;
    } else if (count != e->dimension) {
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col,
                                "expected %" PRIu32 " numbers in the %s vector (the dimension of "
                                "line %" PRIu64 "), found %" PRIu64,
                                e->dimension, r->vec_name, r->dim_line, count);
    }
    float *v = e->vectors + e->count * e->dimension;
    pos = 0;
    for (uint32_t k = 0; next_separated(f->data, f->len, &pos, &off, &n) == 1; k++) {
        int bad = annb_float_parse(&v[k], f->data + off, n);
        if (bad)
            return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, col + off,
                                    "expected %s as value %" PRIu32 " of the %s vector, found %s",
                                    bad == ANNB_FLOAT_RANGE ? "a finite float32" : "a number",
                                    k + 1, r->vec_name, annb_excerpt(ex, f->data + off, n));
    }
    return ANNB_OK;
}

/* Separated numbers when the field starts (after blanks) like a number,
 * else a JSON array (which says what is wrong with anything else). */
static int parse_vector(emb_reader *r, const annb_csv_field *f, annb_error *err)
{
    size_t i = 0;
    while (i < f->len && is_blank_byte(f->data[i])) i++;
    if (i < f->len && (is_number_byte(f->data[i]) || f->data[i] == ','))
        return parse_separated(r, f, err);
    return parse_features(r, f, err);
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
    if (!r->fast || !r->spark || r->fields != 2 || r->id_col != 0 || e->dimension == 0 ||
        e->count >= ANNB_MAX_ROWS)
        return 0;
    while (q < end && q - p <= 20 && ((*q >= '0' && *q <= '9') || *q == '-' || *q == '+')) q++;
    const size_t id_len = (size_t)(q - p);
    if (q == end || *q != r->delim || annb_id_parse(&id, p, id_len)) return 0;
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
    if (annb_keys_add(&r->keys, p, id_len)) return 0;
    e->ids[e->count] = id;
    r->lines[e->count] = line;
    e->count++;
    return (size_t)(q - p);
}

/* ---- rows ---- */

/*
 * Row out->count's ID, as the text of its field (line, col: where it is).
 * An integer is taken as it is; any other text that can be a key makes the
 * file's IDs keys (annb_read_opts.string_ids: from the start), every one
 * hashed at the end (finish_ids), so "12" and "u12" in one file are both
 * keys. A number that is no integer ("12.0") is refused: it is a broken
 * integer ID far more often than a key. `what` names the field.
 */
static int take_id(emb_reader *r, const char *text, size_t len, uint64_t line, uint64_t col,
                   const char *what, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    annb_embeddings *e = r->out;
    if (annb_keys_add(&r->keys, text, len)) return nomem(r, err);
    if (!r->opts->string_ids) {
        const char *why = annb_id_parse(&e->ids[e->count], text, len);
        if (!why) return ANNB_OK;
        if (annb_key_looks_numeric(text, len) || len == 0)
            return annb_input_error(err, ANNB_E_INPUT, r->path, line, col,
                                    "%s%s, found %s%s", why, what, annb_excerpt(ex, text, len),
                                    len ? " (pass --string-ids to take every ID as text)" : "");
    }
    const char *bad = annb_key_invalid(text, len);
    if (bad)
        return annb_input_error(err, ANNB_E_INPUT, r->path, line, col,
                                "expected an integer or a string ID%s, found %s (%s)", what,
                                annb_excerpt(ex, text, len), bad);
    r->keyed = 1;
    return ANNB_OK;
}

/* Once every row is read: keys hashed into IDs, or the texts dropped. */
static void finish_ids(emb_reader *r)
{
    annb_embeddings *e = r->out;
    if (!r->keyed && !r->opts->string_ids) {
        annb_keys_release(&r->keys);
        return;
    }
    for (uint64_t i = 0; i < e->count; i++) {
        size_t len;
        const char *key = annb_keys_at(&r->keys, i, &len);
        e->ids[i] = annb_key_id(key, len);
    }
    e->keys = r->keys;
    memset(&r->keys, 0, sizeof r->keys);
}

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
    }
    if (f->index == r->id_col) {
        r->lines[e->count] = f->line;
        return take_id(r, f->data, f->len, f->line, f->col, "", err);
    }
    if (r->spark) return f->index == r->vec_col ? parse_vector(r, f, err) : ANNB_OK;
    uint32_t value = f->index - (f->index > r->id_col); /* 0-based */
    float *v = e->vectors + e->count * e->dimension + value;
    /* strtod's decimal grammar: no "nan", "inf", hex or blanks */
    int bad = annb_float_parse(v, f->data, f->len);
    if (bad)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                "expected %s as value %" PRIu32 " of the row, found %s%s",
                                bad == ANNB_FLOAT_SYNTAX ? "a number" : "a finite float32", value + 1,
                                annb_excerpt(ex, f->data, f->len),
                                r->fields == 2 && bad == ANNB_FLOAT_SYNTAX &&
                                        strpbrk(f->data, ", [")
                                    ? " (a vector in one field? name its column with "
                                      "--vector-column)"
                                    : "");
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

/* ---- JSON lines: {"id": 10, "vector": [0.5, 0.25]} per line ---- */

static int is_blank_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && is_blank_byte(s[i])) i++;
    return i;
}

/* Whether a key names the column spec asks for (any case), or, without
 * one, a name is_name accepts. */
static int key_matches(const char *key, const char *spec, int (*is_name)(const char *, size_t))
{
    return spec ? annb_ascii_ieq(key, strlen(key), spec) : is_name(key, strlen(key));
}

typedef struct json_span {
    size_t at, len; /* offset in the line, length; len 0: absent */
    char key[64];   /* the key, printable, for messages */
} json_span;

static int jsonl_error(emb_reader *r, uint64_t line, size_t at, const char *s, size_t n,
                       const char *what, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    return annb_input_error(err, ANNB_E_INPUT, r->path, line, at + 1, "expected %s, found %s", what,
                            at < n ? annb_excerpt(ex, s + at, n - at) : "the end of the line");
}

/* Keeps the span of a value whose key is an ID or vector candidate; two
 * candidates for one role are ambiguous. */
static int jsonl_keep(emb_reader *r, uint64_t line, json_span *slot, const char *key,
                      size_t key_at, size_t at, size_t len, const char *option, annb_error *err)
{
    char k[64];
    printable(k, sizeof k, key);
    if (slot->len)
        return annb_input_error(err, ANNB_E_INPUT, r->path, line, key_at + 1,
                                "expected one %s key, found \"%s\" and \"%s\": pass %s %s or "
                                "%s %s",
                                strcmp(option, "--id-column") == 0 ? "ID" : "vector", slot->key, k,
                                option, slot->key, option, k);
    slot->at = at;
    slot->len = len;
    memcpy(slot->key, k, sizeof k);
    return ANNB_OK;
}

/* One object: the ID and vector values located, every other value skipped
 * (but checked as JSON). s is NUL-terminated at n. */
static int jsonl_object(emb_reader *r, char *s, size_t n, uint64_t line, annb_error *err)
{
    const annb_read_opts *o = r->opts;
    json_span id = {0}, vec = {0};
    const char *end;
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return jsonl_error(r, line, i, s, n,
                           "a JSON object such as {\"id\": 1, \"vector\": [0.5, 0.25]}", err);
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}') i++;
    else
        for (;;) {
            if (i >= n || s[i] != '"') return jsonl_error(r, line, i, s, n, "a key in quotes", err);
            cJSON *k = cJSON_ParseWithLengthOpts(s + i, n - i, &end, 0);
            if (!k || !cJSON_IsString(k)) {
                cJSON_Delete(k);
                return jsonl_error(r, line, i, s, n, "a key in quotes", err);
            }
            size_t key_at = i;
            i = skip_ws(s, n, (size_t)(end - s));
            if (i >= n || s[i] != ':') {
                cJSON_Delete(k);
                return jsonl_error(r, line, i, s, n, "':' after the key", err);
            }
            i = skip_ws(s, n, i + 1);
            cJSON *v = cJSON_ParseWithLengthOpts(s + i, n - i, &end, 0);
            if (!v) {
                size_t at = end && end >= s && end <= s + n ? (size_t)(end - s) : i;
                cJSON_Delete(k);
                return jsonl_error(r, line, at, s, n, "a JSON value", err);
            }
            cJSON_Delete(v);
            size_t vlen = (size_t)(end - s) - i;
            int rc = ANNB_OK;
            if (key_matches(k->valuestring, o->id_column, is_id_name))
                rc = jsonl_keep(r, line, &id, k->valuestring, key_at, i, vlen, "--id-column", err);
            else if (key_matches(k->valuestring, o->vector_column, is_vector_name))
                rc = jsonl_keep(r, line, &vec, k->valuestring, key_at, i, vlen, "--vector-column",
                                err);
            cJSON_Delete(k);
            if (rc) return rc;
            i = skip_ws(s, n, i + vlen);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, n, i + 1);
                continue;
            }
            if (i < n && s[i] == '}') {
                i++;
                break;
            }
            return jsonl_error(r, line, i, s, n, "',' or '}' after a value", err);
        }
    i = skip_ws(s, n, i);
    if (i < n) return jsonl_error(r, line, i, s, n, "the end of the line after the object", err);
    if (!id.len)
        return annb_input_error(err, ANNB_E_INPUT, r->path, line, 1,
                                "expected %s%s%s, found none in the object%s",
                                o->id_column ? "the key " : "an ID key (id, word, item_id, movie_id, "
                                                            "user_id, itemId, movieId, userId)",
                                o->id_column ? o->id_column : "",
                                o->id_column ? " (--id-column)" : "",
                                o->id_column ? "" : ": pass --id-column KEY");
    if (!vec.len)
        return annb_input_error(err, ANNB_E_INPUT, r->path, line, 1,
                                "expected %s%s%s, found none in the object%s",
                                o->vector_column ? "the key " : "a vector key (features, vector, "
                                                                "embedding, NAME_embedding)",
                                o->vector_column ? o->vector_column : "",
                                o->vector_column ? " (--vector-column)" : "",
                                o->vector_column ? "" : ": pass --vector-column KEY");
    annb_embeddings *e = r->out;
    if (e->count >= ANNB_MAX_ROWS)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, line, 1,
                                "expected at most %llu rows, found more", ANNB_MAX_ROWS);
    int rc = reserve_row(r, err);
    if (rc) return rc;
    /* the ID: a JSON integer (its text, so any int64 is exact) or a string of one */
    const char *text = s + id.at;
    size_t tlen = id.len;
    cJSON *str = NULL;
    if (*text == '"') {
        s[id.at + id.len] = '\0'; /* the value is a complete JSON string */
        str = cJSON_Parse(text);
        text = str && cJSON_IsString(str) ? str->valuestring : "";
        tlen = strlen(text);
    }
    rc = take_id(r, text, tlen, line, id.at + 1, "", err);
    cJSON_Delete(str);
    if (rc) return rc;
    /* the vector, checked and converted as a CSV field holding it */
    memcpy(r->vec_name, vec.key, sizeof r->vec_name);
    s[vec.at + vec.len] = '\0';
    annb_csv_field f = {s + vec.at, vec.len, line, vec.at + 1, e->count + 1, 1, 0};
    if ((rc = parse_features(r, &f, err))) return rc;
    r->lines[e->count] = line;
    e->count++;
    return ANNB_OK;
}

static int read_jsonl(emb_reader *r, annb_source *src, annb_error *err)
{
    annb_line ln;
    char *buf = NULL;
    size_t cap = 0;
    uint64_t blank = 0;
    int rc;
    while ((rc = annb_source_getline(src, &ln, err)) == 1) {
        if (is_blank_text(ln.data, ln.len)) {
            if (!blank) blank = ln.number;
            continue;
        }
        if (blank) {
            rc = annb_input_error(err, ANNB_E_INPUT, r->path, blank, 1,
                                  "expected a row, found a blank line (blank lines are allowed "
                                  "only at the end of the file)");
            break;
        }
        if (ln.len + 1 > cap) {
            void *p = realloc(buf, ln.len + 1);
            if (!p) {
                rc = nomem(r, err);
                break;
            }
            buf = p;
            cap = ln.len + 1;
        }
        memcpy(buf, ln.data, ln.len);
        buf[ln.len] = '\0';
        if ((rc = jsonl_object(r, buf, ln.len, ln.number, err))) break;
    }
    free(buf);
    return rc;
}

/* ---- word2vec text (.vec): "count dimension", then "word v1 ... vd" ---- */

/* Reads an unsigned decimal of at most 10 digits at s[*i]; -1 if none. */
static int64_t small_number(const char *s, size_t n, size_t *i)
{
    size_t j = *i;
    int64_t v = 0;
    while (j < n && j - *i < 11 && s[j] >= '0' && s[j] <= '9') v = v * 10 + (s[j++] - '0');
    if (j == *i || j - *i > 10) return -1;
    *i = j;
    return v;
}

/* Whether the first line is "count dimension" (two numbers and blanks). */
static int first_line_is_counts(const annb_source *src)
{
    const char *s = (const char *)src->block + src->pos;
    size_t n = 0, i = 0;
    while (src->pos + n < src->len && s[n] != '\n' && s[n] != '\r') n++;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (small_number(s, n, &i) < 0 || i == n || (s[i] != ' ' && s[i] != '\t')) return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (small_number(s, n, &i) < 0) return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    return i == n;
}

static int w2v_row(emb_reader *r, const annb_line *ln, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    annb_embeddings *e = r->out;
    const char *s = ln->data;
    size_t n = ln->len, i = 0, start;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--; /* gensim ends rows with a blank */
    while (i < n && s[i] != ' ' && s[i] != '\t') i++;
    if (e->count >= ANNB_MAX_ROWS)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, ln->number, 1,
                                "expected at most %llu rows, found more", ANNB_MAX_ROWS);
    int rc = reserve_row(r, err);
    if (rc) return rc;
    if ((rc = take_id(r, s, i, ln->number, 1, " as the word", err))) return rc;
    float *v = e->vectors + e->count * e->dimension;
    uint32_t k = 0;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i == n) break;
        start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t') i++;
        if (k == e->dimension)
            return annb_input_error(err, ANNB_E_INPUT, r->path, ln->number, start + 1,
                                    "expected %" PRIu32 " values after the word (the dimension on "
                                    "line 1), found more: %s",
                                    e->dimension, annb_excerpt(ex, s + start, n - start));
        int bad = annb_float_parse(&v[k], s + start, i - start);
        if (bad)
            return annb_input_error(err, ANNB_E_INPUT, r->path, ln->number, start + 1,
                                    "expected %s as value %" PRIu32 " after the word, found %s",
                                    bad == ANNB_FLOAT_RANGE ? "a finite float32" : "a number", k + 1,
                                    annb_excerpt(ex, s + start, i - start));
        k++;
    }
    if (k != e->dimension)
        return annb_input_error(err, ANNB_E_INPUT, r->path, ln->number, n + 1,
                                "expected %" PRIu32 " values after the word (the dimension on line "
                                "1), found %" PRIu32,
                                e->dimension, k);
    r->lines[e->count] = ln->number;
    e->count++;
    return ANNB_OK;
}

static int read_word2vec(emb_reader *r, annb_source *src, annb_error *err)
{
    annb_line ln;
    int rc = annb_source_getline(src, &ln, err);
    if (rc != 1) return rc ? rc : annb_input_error(err, ANNB_E_INPUT, r->path, 1, 1, "expected a line");
    size_t i = 0;
    while (i < ln.len && (ln.data[i] == ' ' || ln.data[i] == '\t')) i++;
    int64_t count = small_number(ln.data, ln.len, &i);
    while (i < ln.len && (ln.data[i] == ' ' || ln.data[i] == '\t')) i++;
    size_t dim_at = i;
    int64_t dim = small_number(ln.data, ln.len, &i);
    if (count < 1 || (uint64_t)count > ANNB_MAX_ROWS)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, 1, 1,
                                "expected a row count from 1 to %llu, found %" PRId64,
                                ANNB_MAX_ROWS, count);
    if (dim < 1 || dim > ANNB_MAX_DIMENSION)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, 1, dim_at + 1,
                                "expected a dimension from 1 to %u, found %" PRId64,
                                ANNB_MAX_DIMENSION, dim);
    if ((rc = set_dimension(r, (uint32_t)dim, err))) return rc;
    snprintf(r->vec_name, sizeof r->vec_name, "word2vec");
    uint64_t blank = 0, last = 1;
    while ((rc = annb_source_getline(src, &ln, err)) == 1) {
        last = ln.number;
        if (is_blank_text(ln.data, ln.len)) {
            if (!blank) blank = ln.number;
            continue;
        }
        if (blank)
            return annb_input_error(err, ANNB_E_INPUT, r->path, blank, 1,
                                    "expected a row, found a blank line (blank lines are allowed "
                                    "only at the end of the file)");
        if (r->out->count == (uint64_t)count)
            return annb_input_error(err, ANNB_E_INPUT, r->path, ln.number, 1,
                                    "expected %" PRId64 " rows (the count on line 1), found more",
                                    count);
        if ((rc = w2v_row(r, &ln, err))) return rc;
    }
    if (rc) return rc;
    if (r->out->count != (uint64_t)count)
        return annb_input_error(err, ANNB_E_INPUT, r->path, last + 1, 1,
                                "expected %" PRId64 " rows (the count on line 1), found %" PRIu64
                                " (a truncated file?)",
                                count, r->out->count);
    return ANNB_OK;
}

/* The squared norm of a row, in double: d <= 4096 squares of at most
 * FLT_MAX stay finite. */
static double squared_norm(const float *v, uint32_t d)
{
    double sq = 0;
    for (uint32_t j = 0; j < d; j++) sq += (double)v[j] * v[j];
    return sq;
}

/* Every value is a finite float, yet products can overflow: notes the
 * first row past ANNB_MAX_SQUARED_NORM for annb_embeddings_check_scores. */
static void find_overflow(annb_embeddings *e, const uint64_t *lines)
{
    for (uint64_t i = 0; i < e->count; i++) {
        double sq = squared_norm(e->vectors + i * e->dimension, e->dimension);
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
    double sq = squared_norm(e->vectors + i * e->dimension, e->dimension);
    return annb_input_error(err, ANNB_E_INPUT, path, e->overflow_line, 1,
                            "expected a vector whose squared norm is at most %.3g, so that its "
                            "scores fit in float32, found %.3g (ID %lld)",
                            ANNB_MAX_SQUARED_NORM, sq, (long long)e->ids[i]);
}

static int read_embeddings(annb_embeddings *out, const char *path, const annb_read_opts *opts,
                           int fast, annb_error *err)
{
    static const annb_read_opts defaults = {0};
    if (!out || !path) return annb_error_set(err, ANNB_E_INVALID, "annb_embeddings_read: NULL argument");
    memset(out, 0, sizeof *out);
    annb_source src;
    int rc = annb_source_open(&src, path, err);
    if (rc) return rc;
    emb_reader r = {.path = annb_input_name(path), .out = out, .opts = opts ? opts : &defaults};
    if (r.opts->progress)
        annb_source_watch(&src, r.opts->progress, r.opts->progress_ctx,
                          r.opts->phase ? r.opts->phase : "embeddings", path);
    r.delim = annb_source_first_line_has(&src, "\t") ? '\t' : ',';
    /* cJSON puts the first byte of the locale's decimal point in place of
     * '.': with a longer one it refuses fractions, and so must the shortcut. */
    const char *point = localeconv()->decimal_point;
    r.fast = point && strlen(point) == 1;
    size_t first = src.pos;
    while (first < src.len && is_blank_byte((char)src.block[first])) first++;
    if (src.len - src.pos >= 6 && memcmp(src.block + src.pos, "\x93NUMPY", 6) == 0) {
        rc = annb_npy_read(out, &src, r.opts, err);
        annb_source_close(&src);
        return rc; /* complete: IDs checked, arrays trimmed */
    } else if (r.opts->ids_path) {
        rc = annb_error_set(err, ANNB_E_INVALID, "%s: IDs from a separate file (%s) are for a "
                            ".npy matrix, and this is no .npy file", r.path,
                            annb_input_name(r.opts->ids_path));
    } else if (first < src.len && src.block[first] == '{') {
        rc = read_jsonl(&r, &src, err);
    } else if (first_line_is_counts(&src)) {
        rc = read_word2vec(&r, &src, err);
    } else {
        const annb_csv_handler h = {emb_field, emb_row, &r, "id,features or id,f0,..."};
        rc = annb_csv_read_fast(&src, r.delim, &h, fast ? spark_fast_row : NULL, err);
    }
    if (rc == ANNB_OK && out->count == 0)
        rc = annb_input_error(err, ANNB_E_INPUT, r.path, 1, 1, "expected at least one row, found "
                              "an empty file");
    annb_source_close(&src);
    free_names(&r);
    if (rc == ANNB_OK) finish_ids(&r);
    annb_keys_release(&r.keys);
    if (rc == ANNB_OK)
        rc = annb_keys_check_unique(r.path, out->ids, out->keys.count ? &out->keys : NULL,
                                    r.lines, out->count, err);
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
    return read_embeddings(out, path, NULL, 1, err);
}

int annb_embeddings_read_with(annb_embeddings *out, const char *path, const annb_read_opts *opts,
                              annb_error *err)
{
    return read_embeddings(out, path, opts, 1, err);
}

int annb_embeddings_read_general(annb_embeddings *out, const char *path, annb_error *err)
{
    return read_embeddings(out, path, NULL, 0, err);
}

int annb_embeddings_borrow(annb_embeddings *out, const char *name, const annb_matrix *m,
                           annb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!m || !m->ids || !m->vectors || m->count == 0 || m->dimension == 0)
        return annb_error_set(err, ANNB_E_INVALID, "%s: expected IDs and vectors of at least one "
                              "row and one dimension", name);
    if (m->dimension > ANNB_MAX_DIMENSION)
        return annb_error_set(err, ANNB_E_LIMIT, "%s: %u dimensions, at most %u are supported",
                              name, m->dimension, ANNB_MAX_DIMENSION);
    if (m->count > ANNB_MAX_ROWS)
        return annb_error_set(err, ANNB_E_LIMIT, "%s: %" PRIu64 " rows, at most %llu are "
                              "supported", name, m->count, (unsigned long long)ANNB_MAX_ROWS);
    uint32_t d = m->dimension;
    for (uint64_t i = 0; i < m->count; i++) {
        if (m->ids[i] == ANNB_ID_NONE)
            return annb_error_set(err, ANNB_E_INPUT, "%s: row %" PRIu64 ": ID %" PRId64 " is "
                                  "reserved (it marks an empty result slot)", name, i, m->ids[i]);
        const float *v = m->vectors + i * d;
        for (uint32_t j = 0; j < d; j++)
            if (!isfinite(v[j]))
                return annb_error_set(err, ANNB_E_INPUT, "%s: row %" PRIu64 " (ID %" PRId64 "), "
                                      "value %u: expected a finite float32, found %g", name, i,
                                      m->ids[i], j, (double)v[j]);
        double sq = squared_norm(v, d);
        if (sq > ANNB_MAX_SQUARED_NORM)
            return annb_error_set(err, ANNB_E_INPUT, "%s: row %" PRIu64 " (ID %" PRId64 "): "
                                  "expected a vector whose squared norm is at most %.3g, so that "
                                  "its scores fit in float32, found %.3g", name, i, m->ids[i],
                                  ANNB_MAX_SQUARED_NORM, sq);
    }
    uint64_t first, second;
    if (annb_ids_first_repeat(m->ids, m->count, &first, &second))
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", name);
    if (second != UINT64_MAX)
        return annb_error_set(err, ANNB_E_INPUT, "%s: row %" PRIu64 ": expected unique IDs, "
                              "found ID %" PRId64 " again (first in row %" PRIu64 ")", name,
                              second, m->ids[second], first);
    out->count = m->count;
    out->dimension = d;
    out->ids = (int64_t *)m->ids;       /* borrowed: see ingest.h */
    out->vectors = (float *)m->vectors;
    return ANNB_OK;
}

void annb_embeddings_release(annb_embeddings *e)
{
    if (!e) return;
    free(e->ids);
    free(e->vectors);
    annb_keys_release(&e->keys);
    memset(e, 0, sizeof *e);
}
