/*
 * catalog.c - MovieLens catalogs: movies.dat (`MovieID::Title::Genres`,
 * latin-1) and movies.csv (`movieId,title,genres`, UTF-8), into UTF-8
 * titles and a sorted genre vocabulary.
 *
 * Both forms feed the same three steps (entry_begin, entry_title,
 * entry_genres) so they check the same things. Genre names get provisional
 * numbers in order of first appearance (a small hash table finds them);
 * at the end the vocabulary is sorted by byte order and the numbers remapped.
 * Titles and genre names must be clean text (annb_text_char): control
 * characters (C0, DEL, C1) are rejected, as annb_verify rejects them.
 */
#include "csvread.h"
#include "ingest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define GENRE_SLOTS (2 * ANNB_MAX_GENRES) /* hash table, at most half full */

typedef struct cat_reader {
    const char *path;
    annb_catalog *out;
    int latin1;              /* movies.dat: bytes are latin-1 */
    uint64_t entry_cap, genre_id_cap;
    uint64_t *lines;         /* line of each entry, for the duplicate message */
    uint32_t slots[GENRE_SLOTS]; /* 0 empty, else provisional genre number + 1 */
    int keyed;               /* the items have string IDs: IDs are keys */
    annb_keys keys;          /* keyed: each entry's key, for the duplicate message */
} cat_reader;

static int nomem(const cat_reader *r, annb_error *err)
{
    return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", r->path);
}

/* ---- text ---- */

/* Checks a title or genre: clean text (annb_text_char: no control
 * character, C0, DEL or C1, and valid UTF-8 unless latin-1, where bytes
 * 0x80-0x9F are the C1 controls). On failure fills err, naming column
 * col + the offending byte's offset and what was found there. */
static int text_check(const cat_reader *r, const char *text, size_t n, uint64_t line, uint64_t col,
                      annb_error *err)
{
    const unsigned char *s = (const unsigned char *)text;
    char ex[ANNB_EXCERPT_SIZE];
    for (size_t i = 0; i < n;) {
        int control = 0;
        size_t len = 1;
        if (r->latin1) control = s[i] < 0x20 || s[i] == 0x7f || (s[i] >= 0x80 && s[i] <= 0x9f);
        else len = annb_text_char(text + i, n - i, &control);
        if (control) {
            unsigned cp = len == 2 ? (unsigned)(s[i + 1] & 0x3f) | 0x80u : s[i];
            return annb_input_error(err, ANNB_E_INPUT, r->path, line, col + i,
                                    "expected printable text, found the control character "
                                    "U+%04X (%s)", cp, annb_excerpt(ex, s + i, len));
        }
        if (len == 0) { /* show the bad byte and the continuation bytes after it */
            size_t bad = 1;
            while (bad < 4 && i + bad < n && s[i + bad] >= 0x80) bad++;
            return annb_input_error(err, ANNB_E_INPUT, r->path, line, col + i,
                                    "expected UTF-8 text, found the invalid byte sequence %s",
                                    annb_excerpt(ex, s + i, bad));
        }
        i += len;
    }
    return ANNB_OK;
}

/* Bytes the text takes as UTF-8. */
static size_t utf8_size(const cat_reader *r, const char *s, size_t n)
{
    size_t size = n;
    if (r->latin1)
        for (size_t i = 0; i < n; i++) size += (unsigned char)s[i] >= 0x80;
    return size;
}

/* Writes the text as UTF-8 into out (utf8_size bytes) and a NUL. */
static void utf8_copy(const cat_reader *r, char *out, const char *s, size_t n)
{
    if (!r->latin1) {
        memcpy(out, s, n);
        out[n] = '\0';
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[o++] = (char)c;
        } else { /* latin-1 is the first 256 code points */
            out[o++] = (char)(0xc0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = '\0';
}

/* ---- entries ---- */

static int entry_begin(cat_reader *r, const char *s, size_t n, uint64_t line, uint64_t col,
                       annb_error *err)
{
    char ex[ANNB_EXCERPT_SIZE];
    annb_catalog *c = r->out;
    int64_t id;
    const char *why;
    if (r->keyed) { /* as UTF-8: movies.dat is latin-1 */
        char key[2 * ANNB_MAX_KEY_BYTES + 1];
        size_t len = n <= ANNB_MAX_KEY_BYTES ? utf8_size(r, s, n) : n;
        if (len <= ANNB_MAX_KEY_BYTES) utf8_copy(r, key, s, n);
        why = len <= ANNB_MAX_KEY_BYTES ? annb_key_invalid(key, len) : "an ID longer than 256 bytes";
        if (why)
            return annb_input_error(err, ANNB_E_INPUT, r->path, line, col,
                                    "expected a string ID (the items' IDs are text), found %s "
                                    "(%s)", annb_excerpt(ex, s, n), why);
        if (annb_keys_add(&r->keys, key, len)) return nomem(r, err);
        id = annb_key_id(key, len);
    } else if ((why = annb_id_parse(&id, s, n))) {
        return annb_input_error(err, ANNB_E_INPUT, r->path, line, col, "%s, found %s", why,
                                annb_excerpt(ex, s, n));
    }
    if (c->count >= ANNB_MAX_ROWS)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, line, col,
                                "expected at most %llu catalog entries, found more", ANNB_MAX_ROWS);
    if (c->count == r->entry_cap) {
        uint64_t cap = annb_grow_capacity(r->entry_cap, c->count + 1);
        void *p = annb_array_resize(c->entries, cap, sizeof *c->entries);
        if (!p) return nomem(r, err);
        c->entries = p;
        if (!(p = annb_array_resize(r->lines, cap, sizeof *r->lines))) return nomem(r, err);
        r->lines = p;
        r->entry_cap = cap;
    }
    r->lines[c->count] = line;
    c->entries[c->count++] = (annb_catalog_entry){id, NULL, (uint32_t)c->genre_id_count, 0};
    return ANNB_OK;
}

static int entry_title(cat_reader *r, const char *s, size_t n, uint64_t line, uint64_t col,
                       annb_error *err)
{
    annb_catalog_entry *e = &r->out->entries[r->out->count - 1];
    if (n == 0)
        return annb_input_error(err, ANNB_E_INPUT, r->path, line, col,
                                "expected a title, found an empty field");
    int rc = text_check(r, s, n, line, col, err);
    if (rc) return rc;
    size_t size = utf8_size(r, s, n);
    if (size > ANNB_MAX_TITLE_BYTES)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, line, col,
                                "expected a title of at most %u bytes of UTF-8, found %zu",
                                ANNB_MAX_TITLE_BYTES, size);
    if (!(e->title = malloc(size + 1))) return nomem(r, err);
    utf8_copy(r, e->title, s, n);
    return ANNB_OK;
}

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The provisional number of genre name[0..n) (UTF-8), added if new. */
static int genre_number(cat_reader *r, uint32_t *num, const char *name, size_t n, uint64_t line,
                        uint64_t col, annb_error *err)
{
    annb_catalog *c = r->out;
    uint32_t slot = hash_bytes(name, n) & (GENRE_SLOTS - 1);
    for (; r->slots[slot]; slot = (slot + 1) & (GENRE_SLOTS - 1)) {
        const char *known = c->genre_names[r->slots[slot] - 1];
        if (strncmp(known, name, n) == 0 && known[n] == '\0') {
            *num = r->slots[slot] - 1;
            return ANNB_OK;
        }
    }
    if (c->genre_count == ANNB_MAX_GENRES)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, line, col,
                                "expected at most %u distinct genres, found more", ANNB_MAX_GENRES);
    if (!c->genre_names && !(c->genre_names = calloc(ANNB_MAX_GENRES, sizeof *c->genre_names)))
        return nomem(r, err);
    char *copy = malloc(n + 1);
    if (!copy) return nomem(r, err);
    memcpy(copy, name, n);
    copy[n] = '\0';
    c->genre_names[c->genre_count] = copy;
    *num = c->genre_count++;
    r->slots[slot] = *num + 1;
    return ANNB_OK;
}

/* Appends genre name s[0..n) to the current entry, once. */
static int entry_genre(cat_reader *r, const char *s, size_t n, uint64_t line, uint64_t col,
                       annb_error *err)
{
    annb_catalog *c = r->out;
    annb_catalog_entry *e = &c->entries[c->count - 1];
    char name[ANNB_MAX_TITLE_BYTES + 1];
    if (n == 0)
        return annb_input_error(err, ANNB_E_INPUT, r->path, line, col,
                                "expected a genre name, found an empty one (between '|', or at "
                                "either end)");
    size_t size = utf8_size(r, s, n);
    if (size > ANNB_MAX_TITLE_BYTES)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, line, col,
                                "expected a genre name of at most %u bytes of UTF-8, found %zu",
                                ANNB_MAX_TITLE_BYTES, size);
    utf8_copy(r, name, s, n);
    uint32_t num = 0;
    int rc = genre_number(r, &num, name, size, line, col, err);
    if (rc) return rc;
    for (uint32_t i = 0; i < e->genre_count; i++)
        if (c->genre_ids[e->genre_first + i] == num) return ANNB_OK; /* listed twice */
    if (c->genre_id_count >= UINT32_MAX)
        return annb_input_error(err, ANNB_E_LIMIT, r->path, line, col,
                                "expected fewer than 2^32 genre assignments, found more");
    if (c->genre_id_count == r->genre_id_cap) {
        uint64_t cap = annb_grow_capacity(r->genre_id_cap, c->genre_id_count + 1);
        void *p = annb_array_resize(c->genre_ids, cap, sizeof *c->genre_ids);
        if (!p) return nomem(r, err);
        c->genre_ids = p;
        r->genre_id_cap = cap;
    }
    c->genre_ids[c->genre_id_count++] = num;
    e->genre_count++;
    return ANNB_OK;
}

/* The genres field: names split on '|'; empty or "(no genres listed)": none. */
static int entry_genres(cat_reader *r, const char *s, size_t n, uint64_t line, uint64_t col,
                        annb_error *err)
{
    if (n == 0 || (n == 18 && memcmp(s, "(no genres listed)", 18) == 0)) return ANNB_OK;
    int rc = text_check(r, s, n, line, col, err);
    for (size_t start = 0; rc == ANNB_OK && start <= n;) {
        const char *bar = memchr(s + start, '|', n - start);
        size_t end = bar ? (size_t)(bar - s) : n;
        rc = entry_genre(r, s + start, end - start, line, col + start, err);
        start = end + 1;
    }
    return rc;
}

/* ---- movies.dat ---- */

static int blank_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

static int dat_line(cat_reader *r, const annb_line *ln, annb_error *err)
{
    const char *s = ln->data;
    size_t n = ln->len, sep[3];
    int nsep = 0;
    for (size_t i = 0; i + 1 < n && nsep < 3;) {
        if (s[i] == ':' && s[i + 1] == ':') {
            sep[nsep++] = i;
            i += 2;
        } else {
            i++;
        }
    }
    if (nsep != 2)
        return annb_input_error(err, ANNB_E_INPUT, r->path, ln->number,
                                nsep > 2 ? sep[2] + 1 : n + 1,
                                "expected 3 fields separated by \"::\" (MovieID::Title::Genres), "
                                "found %s",
                                nsep > 2 ? "a 4th" : nsep == 1 ? "2" : "1");
    int rc = entry_begin(r, s, sep[0], ln->number, 1, err);
    if (rc == ANNB_OK)
        rc = entry_title(r, s + sep[0] + 2, sep[1] - sep[0] - 2, ln->number, sep[0] + 3, err);
    if (rc == ANNB_OK)
        rc = entry_genres(r, s + sep[1] + 2, n - sep[1] - 2, ln->number, sep[1] + 3, err);
    return rc;
}

static int read_dat(cat_reader *r, annb_source *src, annb_error *err)
{
    annb_line ln;
    uint64_t blank = 0;
    int rc;
    while ((rc = annb_source_getline(src, &ln, err)) == 1) {
        if (blank_text(ln.data, ln.len)) {
            if (!blank) blank = ln.number;
            continue;
        }
        if (blank)
            return annb_input_error(err, ANNB_E_INPUT, r->path, blank, 1,
                                    "expected a MovieID::Title::Genres line, found a blank line "
                                    "(blank lines are allowed only at the end of the file)");
        if ((rc = dat_line(r, &ln, err))) return rc;
    }
    return rc;
}

/* ---- movies.csv ---- */

static int csv_field(void *ctx, const annb_csv_field *f, annb_error *err)
{
    static const char *const names[] = {"movieId", "title", "genres"};
    cat_reader *r = ctx;
    char ex[ANNB_EXCERPT_SIZE];
    uint64_t content = f->col + (uint64_t)f->quoted;
    if (f->index > 2)
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                "expected 3 fields (movieId,title,genres), found field %" PRIu32,
                                f->index + 1);
    if (f->row == 0) {
        if (annb_ascii_ieq(f->data, f->len, names[f->index])) return ANNB_OK;
        return annb_input_error(err, ANNB_E_INPUT, r->path, f->line, f->col,
                                "expected the header movieId,title,genres (column %s), found %s",
                                names[f->index], annb_excerpt(ex, f->data, f->len));
    }
    switch (f->index) {
    case 0: return entry_begin(r, f->data, f->len, f->line, f->col, err);
    case 1: return entry_title(r, f->data, f->len, f->line, content, err);
    default: return entry_genres(r, f->data, f->len, f->line, content, err);
    }
}

static int csv_row(void *ctx, const annb_csv_row *row, annb_error *err)
{
    cat_reader *r = ctx;
    if (row->fields == 3) return ANNB_OK;
    return annb_input_error(err, ANNB_E_INPUT, r->path, row->end_line, row->end_col,
                            "expected 3 fields (movieId,title,genres), found %" PRIu32, row->fields);
}

/* ---- the whole catalog ---- */

typedef struct named {
    const char *name;
    uint32_t number;
} named;

static int named_cmp(const void *a, const void *b)
{
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

/* Sorts the vocabulary by byte order and renumbers genre_ids to match. */
static int vocabulary_sort(cat_reader *r, annb_error *err)
{
    annb_catalog *c = r->out;
    uint32_t n = c->genre_count;
    if (n == 0) return ANNB_OK;
    named *v = malloc(n * sizeof *v);
    uint32_t *renumber = malloc(n * sizeof *renumber);
    if (!v || !renumber) {
        free(v);
        free(renumber);
        return nomem(r, err);
    }
    for (uint32_t i = 0; i < n; i++) v[i] = (named){c->genre_names[i], i};
    qsort(v, n, sizeof *v, named_cmp);
    for (uint32_t i = 0; i < n; i++) {
        c->genre_names[i] = (char *)v[i].name;
        renumber[v[i].number] = i;
    }
    for (uint64_t i = 0; i < c->genre_id_count; i++) c->genre_ids[i] = renumber[c->genre_ids[i]];
    free(v);
    free(renumber);
    return ANNB_OK;
}

static int check_unique(cat_reader *r, annb_error *err)
{
    annb_catalog *c = r->out;
    int64_t *ids = annb_array_resize(NULL, c->count, sizeof *ids);
    if (!ids) return nomem(r, err);
    for (uint64_t i = 0; i < c->count; i++) ids[i] = c->entries[i].id;
    int rc = annb_keys_check_unique(r->path, ids, r->keyed ? &r->keys : NULL, r->lines, c->count,
                                    err);
    free(ids);
    return rc;
}

int annb_catalog_read(annb_catalog *out, const char *path, annb_error *err)
{
    return annb_catalog_read_keyed(out, path, 0, err);
}

int annb_catalog_read_keyed(annb_catalog *out, const char *path, int keyed, annb_error *err)
{
    if (!out || !path) return annb_error_set(err, ANNB_E_INVALID, "annb_catalog_read: NULL argument");
    memset(out, 0, sizeof *out);
    cat_reader *r = calloc(1, sizeof *r);
    if (!r) return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
    r->path = annb_input_name(path);
    r->out = out;
    r->keyed = keyed;
    annb_source src;
    int rc = annb_source_open(&src, path, err);
    if (rc == ANNB_OK) {
        r->latin1 = annb_source_first_line_has(&src, "::");
        const annb_csv_handler h = {csv_field, csv_row, r,
                                    "movieId,title,genres or a MovieID::Title::Genres line"};
        rc = r->latin1 ? read_dat(r, &src, err) : annb_csv_read(&src, ',', &h, err);
        annb_source_close(&src);
    }
    if (rc == ANNB_OK) rc = check_unique(r, err);
    if (rc == ANNB_OK) rc = vocabulary_sort(r, err);
    free(r->lines);
    annb_keys_release(&r->keys);
    free(r);
    if (rc) annb_catalog_release(out);
    return rc;
}

void annb_catalog_release(annb_catalog *c)
{
    if (!c) return;
    for (uint64_t i = 0; i < c->count; i++) free(c->entries[i].title);
    if (c->genre_names)
        for (uint32_t i = 0; i < c->genre_count; i++) free(c->genre_names[i]);
    free(c->entries);
    free(c->genre_ids);
    free(c->genre_names);
    memset(c, 0, sizeof *c);
}
