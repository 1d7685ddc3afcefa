/*
 * text.c - what "clean text" means for titles and genre names: well-formed
 * UTF-8 without control characters. One definition for the catalog reader
 * (refuses), annb_verify (refuses) and the writers of JSON, tables and TSV
 * (repair or escape: a bundle is opened without reading every title).
 */
#include "annb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t annb_text_char(const char *text, size_t n, int *control)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (control) *control = 0;
    if (n == 0) return 0;
    if (c < 0x80) {
        if (control) *control = c < 0x20 || c == 0x7f;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) len = 3;
    else if (c >= 0xf0 && c <= 0xf4) len = 4;
    else return 0;
    if (c == 0xe0) lo = 0xa0;      /* overlong */
    else if (c == 0xed) hi = 0x9f; /* surrogates */
    else if (c == 0xf0) lo = 0x90; /* overlong */
    else if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    if (control) *control = c == 0xc2 && s[1] <= 0x9f; /* C1: U+0080..U+009F */
    return len;
}

char *annb_text_repair(const char *text)
{
    if (!text) return NULL;
    size_t n = strlen(text), bad = 0;
    for (size_t i = 0, len; i < n; i += len ? len : 1)
        bad += (len = annb_text_char(text + i, n - i, NULL)) == 0;
    /* Each bad byte (one byte) becomes U+FFFD (three). */
    char *out = malloc(n + 2 * bad + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0, len; i < n; i += len ? len : 1) {
        len = annb_text_char(text + i, n - i, NULL);
        if (len) {
            memcpy(o, text + i, len);
            o += len;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}
