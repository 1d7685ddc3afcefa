/* cli.c - shared by the annb tools. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_exit_code(int annb_code)
{
    switch (annb_code) {
    case ANNB_OK: return EXIT_OK;
    case ANNB_E_INVALID: return EXIT_USAGE;
    case ANNB_E_IO: return EXIT_IO;
    case ANNB_E_NOT_FOUND: return EXIT_NOT_FOUND;
    case ANNB_E_NOMEM:
    case ANNB_E_FAISS: return EXIT_INTERNAL;
    case ANNB_E_RECALL: return EXIT_RECALL;
    default: return EXIT_DATA;
    }
}

void cli_warn(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(const char *prog, int rc, const annb_error *err)
{
    /* A message quotes files and bundles (IDs, genre names, titles): escaped
     * like any text from them, for a terminal. */
    fprintf(stderr, "%s: ", prog);
    cli_put_text(stderr, err && err->code == rc && err->message[0] ? err->message : annb_strerror(rc));
    fputc('\n', stderr);
    return cli_exit_code(rc);
}

int cli_parse_i64(const char *s, int64_t *out)
{
    char *end;
    /* Digits with a leading '-' at most, as the JSON protocol takes an ID in
     * a string: strtoll alone would also take " +10". */
    if (!s || !s[s[0] == '-'] || strspn(s + (s[0] == '-'), "0123456789") != strlen(s + (s[0] == '-')))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s) return -1;
    *out = (int64_t)v;
    return 0;
}

int cli_bad_option(const char *prog, char **argv)
{
    if (optopt && optopt != '?')
        cli_warn(prog, "option -%c is unknown or needs an argument", optopt);
    else
        cli_warn(prog, "option '%s' is unknown or needs an argument", argv[optind - 1]);
    cli_warn(prog, "try '%s --help'", prog);
    return EXIT_USAGE;
}

int cli_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (!*p) return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == s) return -1;
    static const char units[] = "KMGT";
    const char *u = *p ? strchr(units, *p) : NULL;
    if (*p && (!u || p[1])) return -1;
    for (int shift = u ? (int)(u - units + 1) * 10 : 0; shift > 0; shift -= 10) {
        if (v > UINT64_MAX >> 10) return -1;
        v <<= 10;
    }
    *out = v;
    return 0;
}

int cli_id_named(const annb_bundle *const *b, size_t n, annb_space space, const char *text)
{
    int64_t id;
    for (size_t i = 0; i < n; i++) {
        if (space == ANNB_SPACE_USERS && !annb_space_count(b[i], space) && i + 1 < n) continue;
        if (annb_space_id_of(b[i], space, text, strlen(text), &id) == ANNB_OK) return 1;
        if (space == ANNB_SPACE_USERS) break;
    }
    return 0;
}

const char *cli_questions(const char *questions)
{
    if (strcmp(questions, "items") == 0) return "item-to-item";
    if (strcmp(questions, "users") == 0) return "user";
    if (strcmp(questions, "queries") == 0) return "query-vector";
    return questions;
}

size_t cli_put_text(FILE *out, const char *s)
{
    size_t chars = 0, n = strlen(s);
    for (size_t i = 0; i < n; chars++) {
        int control;
        size_t len = annb_text_char(s + i, n - i, &control);
        const char *named = s[i] == '\\' ? "\\\\" : s[i] == '\t' ? "\\t"
                          : s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : NULL;
        if (named) {
            fputs(named, out);
            chars++;
            i++;
        } else if (len && !control) {
            fwrite(s + i, 1, len, out);
            i += len;
        } else { /* a control character, or a byte outside UTF-8: each byte */
            for (size_t b = 0; b < (len ? len : 1); b++, i++)
                fprintf(out, "\\x%02x", (unsigned char)s[i]);
            chars += 4 * (len ? len : 1) - 1;
        }
    }
    return chars;
}

void cli_put_json_string(FILE *out, const char *s) { cli_put_json_mem(out, s, strlen(s)); }

void cli_put_json_mem(FILE *out, const char *s, size_t n)
{
    putc('"', out);
    for (size_t i = 0; i < n;) {
        int control;
        size_t len = annb_text_char(s + i, n - i, &control);
        if (len == 0) {
            fputs("\\ufffd", out);
            i++;
        } else if (s[i] == '"' || s[i] == '\\') {
            fprintf(out, "\\%c", s[i++]);
        } else if (control) { /* C1 too: U+0080..U+009F in two bytes */
            unsigned cp = len == 2 ? ((unsigned char)s[i + 1] & 0x3fu) | 0x80u : (unsigned char)s[i];
            fprintf(out, "\\u%04x", cp);
            i += len;
        } else {
            fwrite(s + i, 1, len, out);
            i += len;
        }
    }
    putc('"', out);
}
