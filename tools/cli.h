/* cli.h - what the annb tools share: messages, exit codes, number parsing. */
#ifndef ANNB_CLI_H
#define ANNB_CLI_H

#include "annb.h"

#include <stdint.h>
#include <stdio.h>

/* Exit codes of every annb tool (docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_DATA = 1,      /* malformed input file, damaged or unsupported bundle, wrong dimension */
    EXIT_USAGE = 2,     /* bad command line */
    EXIT_IO = 3,        /* a file cannot be read or written */
    EXIT_NOT_FOUND = 4, /* an ID is not in the bundle or file */
    EXIT_INTERNAL = 5,  /* out of memory, Faiss failure */
    EXIT_RECALL = 6     /* ann-build: the index cannot reach the target recall */
};

/* Maps an ANNB_E_* code to one of the exit codes above. */
int cli_exit_code(int annb_code);

/* Why "-" is no BUNDLE argument (a usage error). */
#define CLI_BUNDLE_NOT_STDIN \
    "a bundle is memory-mapped from a regular file: '-' (stdin) is no BUNDLE; save it to a " \
    "file first"

/* "PROG: message\n" on stderr. */
void cli_warn(const char *prog, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prints the error (err->message, or annb_strerror(rc)) and returns the exit code. */
int cli_fail(const char *prog, int rc, const annb_error *err);

/* For getopt's '?': names the offending argument with the program prefix
 * (getopt's own message would use argv[0]); returns EXIT_USAGE. Call with
 * opterr = 0. */
int cli_bad_option(const char *prog, char **argv);

/* Strict integer parsing: digits with a leading '-' at most (no blanks, no
 * '+'), the whole string, no overflow. 0 on success. */
int cli_parse_i64(const char *s, int64_t *out);
/* A byte size: digits with an optional K, M, G or T suffix (powers of 1024).
 * 0 on success, -1 for anything else or an overflow. */
int cli_parse_size(const char *s, uint64_t *out);

/* Whether `text` is, whole, an ID of `space` in the bundles b[0..n): an
 * item of any of them, a user of the first that stores users (the one user
 * questions ask). For ID lists written with commas (--exclude, ?exclude=):
 * a string ID may hold a comma, and is then taken whole. */
int cli_id_named(const annb_bundle *const *b, size_t n, annb_space space, const char *text);

/* The kind of questions recall was measured on (annb_recall_info.questions)
 * as an adjective for messages: "item-to-item", "user", "query-vector". */
const char *cli_questions(const char *questions);

/* Printed wherever a bundle's recall was measured on item questions. */
#define CLI_ITEM_RECALL_WARNING \
    "warning: recall was measured on item-to-item questions only and may not hold for user " \
    "vectors (build with --users or --tune-vectors; audit with ann-inspect --recall)"

/* Text from a bundle or an input on a terminal, in table and TSV output
 * (docs/cli.md, "Text in answers"): a backslash as \\, tab, newline and CR
 * as \t \n \r, every byte of any other control character (C0, DEL, C1)
 * and every byte that is not part of well-formed UTF-8 as \xNN; the rest
 * as it is. Returns the characters written, for padding columns. */
size_t cli_put_text(FILE *out, const char *s);

/* s as a JSON string: `"` and `\` escaped, control characters as \u00XX,
 * bytes that are not well-formed UTF-8 as \ufffd: always valid JSON and
 * valid UTF-8, whatever a bundle holds. */
void cli_put_json_string(FILE *out, const char *s);
/* The same for the n bytes at s (NUL bytes among them escaped). */
void cli_put_json_mem(FILE *out, const char *s, size_t n);

#endif /* ANNB_CLI_H */
