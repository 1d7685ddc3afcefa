/* numparse.c - decimal text to float32, correctly rounded (see numparse.h). */
#include "numparse.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value is (-1)^neg * w * 10^q, exactly, unless truncated. */
typedef struct decimal {
    uint64_t w;    /* the digits as an integer, when there are at most 19 (< 2^64) */
    int64_t q;
    int neg;
    int truncated; /* more than 19 significant digits: w and q are not the value */
} decimal;

/* A written exponent is capped here. No text in memory has 10^15 digits, so
 * a capped exponent cannot be brought back into float range by them. */
#define EXPONENT_CAP INT64_C(1000000000000000)

static int is_digit(char c) { return c >= '0' && c <= '9'; }

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ANNB_SWAR 1 /* 8 digits at a time in a uint64 (needs the byte order and ctz) */

/* The first n (1..8) bytes of v, digits minus '0', first byte lowest, as a
 * number: shifted up so the unused bytes become leading zeros, then digit
 * pairs, quads and the octet combined by three multiplications. */
static uint64_t swar_value(uint64_t v, int n)
{
    v <<= 8 * (8 - n);
    v = v * 10 + (v >> 8); /* byte 2i: 10 * d[2i] + d[2i+1] */
    v = ((v & 0x000000ff000000ff) * (100 + (UINT64_C(1000000) << 32)) +
         ((v >> 16) & 0x000000ff000000ff) * (1 + (UINT64_C(10000) << 32))) >> 32;
    return v;
}
#endif

/* Appends the run of digits at p to *w (wrapping past 19 digits: the caller
 * counts them) and returns its end. */
static inline const char *digits(const char *p, const char *end, uint64_t *w)
{
#ifdef ANNB_SWAR
    static const uint64_t pow10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        /* High bit of each byte below '0' or above '9'; the lowest such byte
         * is exact (no borrow or carry reaches it from the bytes before). */
        uint64_t odd = ((v + 0x4646464646464646) | (v - 0x3030303030303030)) & 0x8080808080808080;
        int n = odd ? __builtin_ctzll(odd) >> 3 : 8;
        if (n == 0) return p;
        *w = *w * pow10[n] + swar_value(v - 0x3030303030303030, n);
        p += n;
        if (n < 8) return p;
    }
#endif
    for (; p < end && is_digit(*p); p++) *w = *w * 10 + (uint64_t)(*p - '0');
    return p;
}

/* Digits of s[0..len) after the leading zeros ('.' skipped). */
static size_t significant_digits(const char *s, size_t len)
{
    size_t i = 0, n = 0;
    while (i < len && (s[i] == '0' || s[i] == '.')) i++;
    for (; i < len; i++) n += is_digit(s[i]);
    return n;
}

/*
 * Scans a number at p in JSON's grammar (strict) or strtod's decimal one
 * (see numparse.h) into d. Returns the end of the number, or NULL when p
 * does not start one or a '.' or exponent marker is not followed by the
 * digits it needs (neither caller wants the shorter number then).
 */
static inline const char *scan(decimal *d, const char *p, const char *end, int strict)
{
    uint64_t w = 0;
    int64_t q = 0;
    d->neg = p < end && *p == '-';
    if (p < end && (*p == '-' || (*p == '+' && !strict))) p++;
    const char *int_start = p;
    if (strict && p < end && *p == '0') p++; /* JSON: 0 alone, no leading zeros */
    else p = digits(p, end, &w);
    size_t int_digits = (size_t)(p - int_start), frac_digits = 0;
    if (strict && int_digits == 0) return NULL;
    if (p < end && *p == '.') {
        const char *frac = ++p;
        p = digits(p, end, &w);
        frac_digits = (size_t)(p - frac);
        if (strict ? frac_digits == 0 : int_digits + frac_digits == 0) return NULL;
    } else if (int_digits == 0) {
        return NULL;
    }
    d->truncated = int_digits + frac_digits > 19 &&
                   significant_digits(int_start, (size_t)(p - int_start)) > 19;
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = ++p < end && *p == '-';
        if (p < end && (*p == '-' || *p == '+')) p++;
        if (p == end || !is_digit(*p)) return NULL;
        int64_t x = 0;
        for (; p < end && is_digit(*p); p++)
            if (x < EXPONENT_CAP) x = x * 10 + (*p - '0');
        q = eneg ? -x : x;
    }
    d->w = w;
    d->q = q - (int64_t)frac_digits;
    return p;
}

/*
 * Clinger's fast path. When w <= 2^53 and |q| <= 22, w and 10^|q| are exact
 * doubles, so w * 10^q (or w / 10^-q) is the correctly rounded double of
 * the decimal. Rounding that double to float gives the correctly rounded
 * float unless the double is exactly halfway between two floats (the
 * decimal may then be just above or below it): the low 29 of the 52
 * mantissa bits, which float drops, are then 1 followed by zeros. Values
 * here are between 1e-22 and 2^53 * 1e22, normal floats, so the test holds.
 * It needs double arithmetic in double precision (not x87's extended).
 */
static int exact_path(float *out, const decimal *d)
{
#if FLT_EVAL_METHOD == 0
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (d->w > (UINT64_C(1) << 53) || d->q < -22 || d->q > 22) return 0;
    double x = (double)d->w;
    x = d->q < 0 ? x / pow10[-d->q] : x * pow10[d->q];
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x1fffffff) == 0x10000000) return 0;
    float f = (float)x;
    *out = d->neg ? -f : f;
    return 1;
#else
    (void)out;
    (void)d;
    return 0;
#endif
}

/* Significant digits passed to strtof. Every float rounding boundary (a
 * midpoint between neighbours, subnormal ones and the one above FLT_MAX
 * included) has at most 113 significant digits, so a decimal cut to 128
 * digits plus a nonzero "sticky" digit when anything nonzero was cut lies
 * on the same side of every boundary as the whole decimal. */
#define SLOW_DIGITS 128

/*
 * strtof on a rewritten copy: "[-]DIGITSe[-]EXP" with no decimal point (so
 * the locale's point does not matter), leading zeros dropped and at most
 * SLOW_DIGITS + 1 digits (so the copy is small whatever the text). text is
 * a number scan() accepted. Returns ANNB_FLOAT_OK or ANNB_FLOAT_RANGE.
 */
static int slow_path(float *out, const char *text, size_t len)
{
    char buf[SLOW_DIGITS + 40];
    size_t i = 0, o = 0, kept = 0;
    int neg = text[0] == '-', point = 0, sticky = 0;
    int64_t shift = 0; /* the decimal exponent the kept digits need */
    if (text[0] == '-' || text[0] == '+') i++;
    if (neg) buf[o++] = '-';
    for (; i < len && text[i] != 'e' && text[i] != 'E'; i++) {
        char c = text[i];
        if (c == '.') {
            point = 1;
        } else if (kept == 0 && c == '0') {
            shift -= point; /* a leading zero */
        } else if (kept < SLOW_DIGITS) {
            buf[o++] = c;
            kept++;
            shift -= point;
        } else {
            sticky |= c != '0';
            shift += !point; /* a dropped integer digit */
        }
    }
    if (kept == 0) { /* exact zero; scan() never sends one, but be complete */
        *out = neg ? -0.0f : 0.0f;
        return ANNB_FLOAT_OK;
    }
    if (sticky) {
        buf[o++] = '1';
        shift--;
    }
    int64_t x = 0;
    if (i < len) { /* scan() checked the exponent's form */
        int eneg = text[++i] == '-';
        if (text[i] == '-' || text[i] == '+') i++;
        for (; i < len; i++)
            if (x < EXPONENT_CAP) x = x * 10 + (text[i] - '0');
        if (eneg) x = -x;
    }
    /* Beyond +-10^9 the value is 0 or infinite whatever the 129 digits. */
    x += shift;
    if (x > 999999999) x = 999999999;
    if (x < -999999999) x = -999999999;
    snprintf(buf + o, sizeof buf - o, "e%" PRId64, x);
    float f = strtof(buf, NULL);
    if (isinf(f)) return ANNB_FLOAT_RANGE;
    *out = f;
    return ANNB_FLOAT_OK;
}

static int convert(float *out, const decimal *d, const char *text, size_t len)
{
    if (d->w == 0 && !d->truncated) { /* zero, whatever the exponent */
        *out = d->neg ? -0.0f : 0.0f;
        return ANNB_FLOAT_OK;
    }
    if (!d->truncated && exact_path(out, d)) return ANNB_FLOAT_OK;
    return slow_path(out, text, len);
}

const char *annb_json_float(float *out, const char *p, const char *end)
{
    decimal d;
    const char *q = scan(&d, p, end, 1);
    if (!q || convert(out, &d, p, (size_t)(q - p)) != ANNB_FLOAT_OK) return NULL;
    return q;
}

int annb_float_parse(float *out, const char *s, size_t len)
{
    decimal d;
    const char *q = scan(&d, s, s + len, 0);
    if (!q || q != s + len) return ANNB_FLOAT_SYNTAX;
    return convert(out, &d, s, len);
}
