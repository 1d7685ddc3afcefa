/*
 * ingest.h - reading build inputs (internal to libannb).
 *
 * Every input is untrusted: each reader checks every byte and, on failure,
 * fills an annb_error with ANNB_E_INPUT (or ANNB_E_LIMIT / ANNB_E_IO /
 * ANNB_E_NOMEM) and a message "PATH:LINE:COL: what was expected".
 */
#ifndef ANNB_INGEST_H
#define ANNB_INGEST_H

#include "annb.h"
#include "keys.h"

#include <float.h>
#include <stdint.h>
#include <stdio.h>

/* Limits (documented in docs/ and enforced with ANNB_E_LIMIT). */
#define ANNB_MAX_DIMENSION 4096u
#define ANNB_MAX_ROWS (1ull << 31)         /* rows are uint32 positions */
#define ANNB_MAX_FIELD_BYTES (1u << 20)    /* one CSV field */
#define ANNB_MAX_TITLE_BYTES 4096u         /* one title, after UTF-8 conversion */
#define ANNB_MAX_GENRES 1024u              /* distinct genre names */

/* Vectors in file order. ids[i] belongs to vectors[i*dimension ...]. */
typedef struct annb_embeddings {
    uint64_t count;
    uint32_t dimension;
    int64_t *ids;
    float *vectors;
    /* The first row whose scores could overflow float (squared norm above
     * ANNB_MAX_SQUARED_NORM), as row + 1 and its line; 0 if none. Values
     * are finite, so parsing takes it; building refuses it
     * (annb_embeddings_check_scores), a query vector may have it. */
    uint64_t overflow_row, overflow_line;
    /* String IDs (keys.h): keys.count == count, key i belongs to row i and
     * ids[i] is its annb_key_id. keys.count 0: the IDs are integers. */
    annb_keys keys;
} annb_embeddings;

/* Scores between vectors whose squared norms are at most this stay finite
 * in float: |<a,b>| <= |a||b| and |a-b|^2 <= (|a|+|b|)^2 = 4 max, with
 * room for the rounding of float sums. */
#define ANNB_MAX_SQUARED_NORM (FLT_MAX / 4.0)

/* ANNB_E_INPUT naming path:line:1 and the ID of e->overflow_row, if any:
 * for inputs of a build, whose stored scores must be numbers. */
int annb_embeddings_check_scores(const annb_embeddings *e, const char *path, annb_error *err);

/* How to read an embeddings file; zeroed: everything detected. */
typedef struct annb_read_opts {
    /* The ID and the vector columns of a CSV/TSV, each a header name (any
     * case) or a 1-based column number; NULL: detected from the header. */
    const char *id_column;
    const char *vector_column;
    /* A .npy matrix: its IDs from this .npy of int64 (or int32), one per
     * row; or, with ids_from_rows, the row numbers 0..n-1. Neither: a .npy
     * input is refused (ANNB_E_INVALID). Ignored by the text forms. */
    const char *ids_path;
    int ids_from_rows;
    /* 1: every ID is a key, taken as text ("007" stays "007"); 0: keys only
     * when some ID is no integer (keys.h). The .npy form has integer IDs. */
    int string_ids;
    /* Progress of reading the file (NULL: none), reported as phase. */
    annb_progress_fn progress;
    void *progress_ctx;
    const char *phase;
} annb_read_opts;

/*
 * Reads an embeddings file ("-": stdin; gzip or zstd decompressed, see
 * csvread.h). The first bytes decide the form: the .npy magic (npy.h); a
 * '{' (JSON lines: one object per line with an ID key and a vector key,
 * chosen by the same names as the CSV columns below or by
 * annb_read_opts, other keys ignored; the ID a JSON integer or a string of
 * one, the vector a JSON array); a first line of two numbers (word2vec
 * text: "count dimension", then "word v1 ... vd" rows separated by blanks,
 * the word an integer ID, exactly count rows); else CSV/TSV, whose header
 * decides the form:
 *  - one vector column (`id,features`, Spark; `word,vector`, item2vec;
 *    `movie_id,movie_embedding`, two-tower): the vector is a JSON array of
 *    numbers, as cJSON accepts it, or numbers separated by commas or blanks,
 *    in one (normally quoted) field; other columns are ignored;
 *  - no vector column, `id,f0,...,f{d-1}` (wide): every column but the ID
 *    holds one number;
 * the delimiter is a tab if the header line has a tab, else a comma. The ID
 * column is the one named id, word, item_id, movie_id, user_id, itemId,
 * movieId or userId (any case), the vector column the one named features,
 * vector, embedding or NAME_embedding, when exactly one column has such a
 * name; annb_read_opts names them otherwise, and a header without an ID
 * column or with two candidates is refused with the option that resolves
 * it in the message. libcsv runs in strict mode; the file is streamed, memory is
 * proportional to the vectors. Rejects (ANNB_E_INPUT, file:line:col): empty
 * file, header without id column, malformed quoting, a row with the wrong
 * number of fields, non-integer or out-of-range or reserved (INT64_MIN) ID,
 * malformed JSON array, a value that is not a finite float32, a dimension
 * different from the first row's, zero rows. Duplicate IDs are rejected
 * too (with both line numbers). Accepted: LF, CRLF or CR line ends, a UTF-8
 * BOM, a last line without a line break, and blank lines at the end of the
 * file only (a blank line followed by more rows is an error). Each value is
 * the float strtof gives for its text in the "C" locale (numparse.h),
 * whatever the locale.
 */
int annb_embeddings_read(annb_embeddings *out, const char *path, annb_error *err);
/* The same with options (NULL: as annb_embeddings_read). */
int annb_embeddings_read_with(annb_embeddings *out, const char *path, const annb_read_opts *opts,
                              annb_error *err);
/* The same without the shortcut for usual Spark rows (embeddings.c): every
 * row through libcsv and cJSON. Same result, same error, on every input;
 * for the tests and the fuzzer that check exactly that. */
int annb_embeddings_read_general(annb_embeddings *out, const char *path, annb_error *err);
void annb_embeddings_release(annb_embeddings *e);

/*
 * Checks rows given in memory (annb_build_arrays) as the readers check a
 * file's rows, and makes *out a view of them: out->ids and out->vectors are
 * the caller's arrays, borrowed (cast from const, never written), so *out
 * must NOT go to annb_embeddings_release. `name` ("items", "users") starts
 * every message, which gives the row (0-based, as the array indexes it) and
 * its ID. Returns ANNB_OK, ANNB_E_INVALID (NULL array, count or dimension
 * 0), ANNB_E_LIMIT, ANNB_E_INPUT (reserved or repeated ID, a value that is
 * not finite, a vector whose scores would overflow float32), ANNB_E_NOMEM.
 */
int annb_embeddings_borrow(annb_embeddings *out, const char *name, const annb_matrix *m,
                           annb_error *err);

/* One catalog entry: UTF-8 title and genres split on '|'. */
typedef struct annb_catalog_entry {
    int64_t id;
    char *title;      /* NUL-terminated UTF-8, never empty */
    uint32_t genre_first; /* index into genre_ids */
    uint32_t genre_count;
} annb_catalog_entry;

typedef struct annb_catalog {
    uint64_t count;
    annb_catalog_entry *entries;  /* in file order */
    uint32_t *genre_ids;          /* entries[i]'s genres: genre_ids[first .. first+count) */
    uint64_t genre_id_count;
    uint32_t genre_count;         /* vocabulary size */
    char **genre_names;           /* vocabulary, UTF-8, sorted by byte order */
} annb_catalog;

/*
 * Reads a catalog. `MovieID::Title::Genres` lines (movies.dat; bytes are
 * latin-1 and converted to UTF-8) when the first line contains "::";
 * otherwise CSV with header `movieId,title,genres` (quoted fields, UTF-8,
 * which is validated). "(no genres listed)" means no genres. Rejects
 * (ANNB_E_INPUT, file:line:col): a line with a wrong number of fields, a bad
 * ID, an empty title, invalid UTF-8 (CSV form), duplicate IDs, an empty
 * genre name between '|'. Blank trailing lines and CRLF endings are accepted.
 */
int annb_catalog_read(annb_catalog *out, const char *path, annb_error *err);
/* The same for items with string IDs when keyed: each entry's ID is the
 * annb_key_id of the first field's text (UTF-8; latin-1 in movies.dat). */
int annb_catalog_read_keyed(annb_catalog *out, const char *path, int keyed, annb_error *err);
void annb_catalog_release(annb_catalog *c);

/* Who has seen what, sorted by (user, item), without repeats. */
#define ANNB_MAX_INTERACTIONS (1ull << 32)
typedef struct annb_interactions {
    uint64_t count;
    int64_t *users;
    int64_t *items;
} annb_interactions;

/*
 * Reads interactions: MovieLens ratings.dat (`UserID::MovieID::Rating::Timestamp`,
 * fields after the second ignored), ratings.csv (`userId,movieId,rating,timestamp`)
 * or a plain `user,item` CSV, with or without a header (a first row whose
 * first field is not an integer is a header). Errors name file:line:col.
 */
int annb_interactions_read(annb_interactions *out, const char *path, annb_error *err);
/* How to read them: which IDs are keys (keys.h: the user or item space has
 * string IDs; a CSV header is then told by its first field's name: user,
 * userId, user_id, users, uid, customer, customerId, customer_id,
 * visitor_id, any case), and progress (NULL: none) as phase "interactions". */
typedef struct annb_interactions_opts {
    int user_keys, item_keys;
    annb_progress_fn progress;
    void *progress_ctx;
} annb_interactions_opts;
int annb_interactions_read_with(annb_interactions *out, const char *path,
                                const annb_interactions_opts *opts, annb_error *err);
void annb_interactions_release(annb_interactions *x);
/* The range [*first, *first + *count) of user's pairs (binary search). */
void annb_interactions_of(const annb_interactions *x, int64_t user, uint64_t *first,
                          uint64_t *count);

/* Sets err (if non-NULL) to code and a printf-formatted message; returns code. */
int annb_error_set(annb_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* ANNB_INGEST_H */
