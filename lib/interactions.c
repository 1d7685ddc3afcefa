/* interactions.c - who has seen what: ratings.dat, ratings.csv, user,item CSV. */
#include "csvread.h"
#include "ingest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct pair_reader {
    const char *path;
    annb_interactions *out;
    uint64_t cap;
    int64_t user;  /* of the row being read */
    int header;    /* CSV: row 0 is a header (its first field is not an ID) */
    annb_interactions_opts opts;
} pair_reader;

static int add_pair(pair_reader *r, int64_t user, int64_t item, uint64_t line, annb_error *err)
{
    annb_interactions *x = r->out;
    if (x->count == ANNB_MAX_INTERACTIONS)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, line, 1,
                                "expected at most %llu interactions",
                                (unsigned long long)ANNB_MAX_INTERACTIONS);
    if (x->count == r->cap) {
        uint64_t cap = annb_grow_capacity(r->cap, x->count + 1);
        int64_t *u = annb_array_resize(x->users, cap, sizeof *u);
        if (!u) return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", r->path);
        x->users = u;
        int64_t *i = annb_array_resize(x->items, cap, sizeof *i);
        if (!i) return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", r->path);
        x->items = i;
        r->cap = cap;
    }
    x->users[x->count] = user;
    x->items[x->count++] = item;
    return ANNB_OK;
}

/* A user or item ID: an integer, or a key (keys.h) where that space has
 * string IDs. */
static int parse_id(pair_reader *r, int64_t *out, const char *s, size_t n, uint64_t line,
                    uint64_t col, const char *what, annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    int keyed = *what == 'u' ? r->opts.user_keys : r->opts.item_keys;
    const char *why = keyed ? annb_key_invalid(s, n) : annb_id_parse(out, s, n);
    if (!why) {
        if (keyed) *out = annb_key_id(s, n);
        return ANNB_OK;
    }
    return annb_input_error(err, ANNB_E_INPUT, r->path, line, col, "%s as the %s ID, found %s",
                            why, what, annb_excerpt(ex, s, n));
}

/* UserID::MovieID[::Rating[::Timestamp]] */
static int dat_line(pair_reader *r, const annb_line *ln, annb_error *err)
{
    const char *s = ln->data, *sep = NULL;
    for (size_t i = 0; i + 1 < ln->len && !sep; i++)
        if (s[i] == ':' && s[i + 1] == ':') sep = s + i;
    if (!sep)
        return annb_input_error(err, ANNB_E_INPUT, r->path, ln->number, ln->len + 1,
                                "expected UserID::MovieID::Rating::Timestamp");
    const char *item = sep + 2, *end = s + ln->len;
    for (const char *p = item; p + 1 < end; p++)
        if (p[0] == ':' && p[1] == ':') {
            end = p;
            break;
        }
    int64_t user, id;
    int rc = parse_id(r, &user, s, (size_t)(sep - s), ln->number, 1, "user", err);
    if (!rc)
        rc = parse_id(r, &id, item, (size_t)(end - item), ln->number, (uint64_t)(item - s) + 1,
                      "item", err);
    return rc ? rc : add_pair(r, user, id, ln->number, err);
}

/* With string user IDs any first field could be a user: a header is told
 * by the names of a user column that headers use (any case). */
static int is_user_header(const char *s, size_t n)
{
    static const char *const names[] = {"user",     "userid",  "user_id",  "users",      "uid",
                                        "customer", "customerid", "customer_id", "visitor_id"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (annb_ascii_ieq(s, n, names[i])) return 1;
    return 0;
}

static int csv_field(void *ctx, const annb_csv_field *f, annb_error *err)
{
    pair_reader *r = ctx;
    int64_t id;
    if (f->index > 1) return ANNB_OK; /* rating, timestamp: not needed */
    if (f->row == 0 && f->index == 0)
        r->header = r->opts.user_keys ? is_user_header(f->data, f->len)
                                      : annb_id_parse(&id, f->data, f->len) != NULL;
    if (f->row == 0 && r->header) return ANNB_OK;
    int rc = parse_id(r, &id, f->data, f->len, f->line, f->col, f->index ? "item" : "user", err);
    if (rc) return rc;
    if (f->index == 0) {
        r->user = id;
        return ANNB_OK;
    }
    return add_pair(r, r->user, id, f->line, err);
}

static int csv_row(void *ctx, const annb_csv_row *row, annb_error *err)
{
    pair_reader *r = ctx;
    if (row->fields >= 2) return ANNB_OK;
    return annb_input_error(err, ANNB_E_INPUT, r->path, row->end_line, row->end_col,
                            "expected at least 2 fields (user,item), found %" PRIu32, row->fields);
}

static int cmp_pair(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0]) return (x[0] > y[0]) - (x[0] < y[0]);
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Sorts by (user, item) and removes repeats (a user who rated twice). */
static int sort_unique(annb_interactions *x, const char *path, annb_error *err)
{
    int64_t *pairs = malloc((x->count ? x->count : 1) * 2 * sizeof *pairs);
    if (!pairs) return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < x->count; i++) {
        pairs[2 * i] = x->users[i];
        pairs[2 * i + 1] = x->items[i];
    }
    qsort(pairs, x->count, 2 * sizeof *pairs, cmp_pair);
    uint64_t n = 0;
    for (uint64_t i = 0; i < x->count; i++) {
        if (n && pairs[2 * i] == x->users[n - 1] && pairs[2 * i + 1] == x->items[n - 1]) continue;
        x->users[n] = pairs[2 * i];
        x->items[n++] = pairs[2 * i + 1];
    }
    x->count = n;
    free(pairs);
    return ANNB_OK;
}

int annb_interactions_read(annb_interactions *out, const char *path, annb_error *err)
{
    return annb_interactions_read_with(out, path, NULL, err);
}

int annb_interactions_read_with(annb_interactions *out, const char *path,
                                const annb_interactions_opts *opts, annb_error *err)
{
    if (!out || !path)
        return annb_error_set(err, ANNB_E_INVALID, "annb_interactions_read: NULL argument");
    memset(out, 0, sizeof *out);
    pair_reader r = {.path = annb_input_name(path), .out = out};
    if (opts) r.opts = *opts;
    annb_source src;
    int rc = annb_source_open(&src, path, err);
    if (rc) return rc;
    if (r.opts.progress)
        annb_source_watch(&src, r.opts.progress, r.opts.progress_ctx, "interactions", path);
    if (annb_source_first_line_has(&src, "::")) {
        annb_line ln;
        while ((rc = annb_source_getline(&src, &ln, err)) == 1)
            if (ln.len && (rc = dat_line(&r, &ln, err))) break;
    } else {
        const annb_csv_handler h = {csv_field, csv_row, &r, "userId,movieId[,rating,timestamp]"};
        rc = annb_csv_read(&src, ',', &h, err);
    }
    annb_source_close(&src);
    if (rc == ANNB_OK) rc = sort_unique(out, r.path, err);
    if (rc) annb_interactions_release(out);
    return rc;
}

void annb_interactions_release(annb_interactions *x)
{
    if (!x) return;
    free(x->users);
    free(x->items);
    memset(x, 0, sizeof *x);
}

void annb_interactions_of(const annb_interactions *x, int64_t user, uint64_t *first,
                          uint64_t *count)
{
    uint64_t lo = 0, hi = x->count;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (x->users[mid] < user) lo = mid + 1;
        else hi = mid;
    }
    uint64_t end = lo;
    while (end < x->count && x->users[end] == user) end++;
    *first = lo;
    *count = end - lo;
}
