/*
 * test_numparse.c - lib/numparse.c against glibc's strtof, bit for bit.
 *
 * strtof is the reference: for every text, annb_float_parse must accept
 * exactly what strtof consumes whole, and give its float (an infinity being
 * ANNB_FLOAT_RANGE); annb_json_float must stop where an independent JSON
 * number automaton stops and give the same float. Each text sits in a
 * buffer of exactly its size, so that reading past it shows under ASan.
 *
 * Millions of texts: random digit strings (1..20 digits, and long ones for
 * the strtof fallback), exponents across the subnormal and overflow ranges,
 * printf output of random floats and doubles (%.9g, %.17g, %e, ...), exact
 * float midpoints and their near neighbours, and random strings over the
 * number alphabet for the grammar. ANNB_NUMPARSE_ROUNDS=N multiplies the
 * counts (default 1: about 2.6 million texts, a few seconds; 40 gives the
 * 100 million of a thorough run).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "numparse.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rounds(void)
{
    const char *s = getenv("ANNB_NUMPARSE_ROUNDS");
    long n = s ? strtol(s, NULL, 10) : 1;
    return n > 0 ? (uint64_t)n : 1;
}

static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* JSON's number automaton (RFC 8259), written apart from numparse.c: the
 * length of the number at s, or 0 when the automaton stops in a state that
 * does not end a number ("-", "1.", "1e+"). */
static size_t json_number_length(const char *s, size_t len)
{
    enum { START, MINUS, ZERO, INT, DOT, FRAC, E, ESIGN, EXP, STOP } st = START;
    size_t i = 0;
    for (; i < len; i++) {
        char c = s[i];
        int digit = c >= '0' && c <= '9', next = STOP;
        switch (st) {
        case START: next = c == '-' ? MINUS : c == '0' ? ZERO : digit ? INT : STOP; break;
        case MINUS: next = c == '0' ? ZERO : digit ? INT : STOP; break;
        case ZERO: next = c == '.' ? DOT : (c == 'e' || c == 'E') ? E : STOP; break;
        case INT: next = digit ? INT : c == '.' ? DOT : (c == 'e' || c == 'E') ? E : STOP; break;
        case DOT: next = digit ? FRAC : STOP; break;
        case FRAC: next = digit ? FRAC : (c == 'e' || c == 'E') ? E : STOP; break;
        case E: next = (c == '+' || c == '-') ? ESIGN : digit ? EXP : STOP; break;
        case ESIGN: next = digit ? EXP : STOP; break;
        case EXP: next = digit ? EXP : STOP; break;
        default: break;
        }
        if (next == STOP) break;
        st = next;
    }
    return st == ZERO || st == INT || st == FRAC || st == EXP ? i : 0;
}

typedef struct tally {
    uint64_t texts, accepted, json, slow_candidates;
} tally;

/* Checks both functions on s[0..len) against strtof and the automaton. */
static void check(tally *t, const char *s, size_t len)
{
    char ref_text[512];
    if (len >= sizeof ref_text) {
        fail_msg("test text too long: %zu", len);
        return;
    }
    memcpy(ref_text, s, len);
    ref_text[len] = '\0';
    char *ref_end;
    float ref = strtof(ref_text, &ref_end);
    /* strtof also takes blanks, hex, inf and nan, which the grammar leaves out */
    int whole = len > 0 && ref_end == ref_text + len && strspn(ref_text, "0123456789.+-eE") == len;

    char *buf = malloc(len ? len : 1); /* exactly the text: no NUL after it */
    assert_non_null(buf);
    memcpy(buf, s, len);
    float got = 12345.0f;
    int rc = annb_float_parse(&got, buf, len);
    int want = !whole ? ANNB_FLOAT_SYNTAX : isinf(ref) ? ANNB_FLOAT_RANGE : ANNB_FLOAT_OK;
    if (rc != want || (rc == ANNB_FLOAT_OK && bits_of(got) != bits_of(ref)))
        fail_msg("annb_float_parse(\"%s\"): %d %a (0x%08x), strtof: %d %a (0x%08x)", ref_text, rc,
                 (double)got, bits_of(got), want, (double)ref, bits_of(ref));
    if (rc != ANNB_FLOAT_OK && got != 12345.0f) fail_msg("\"%s\": output written on failure", ref_text);

    size_t jlen = json_number_length(buf, len);
    const char *jend = annb_json_float(&got, buf, buf + len);
    if (jlen) {
        char num[512];
        memcpy(num, s, jlen);
        num[jlen] = '\0';
        float jref = strtof(num, NULL);
        const char *jwant = isinf(jref) ? NULL : buf + jlen;
        if (jend != jwant || (jend && bits_of(got) != bits_of(jref)))
            fail_msg("annb_json_float(\"%s\"): end %td %a, want end %td %a", ref_text,
                     jend ? jend - buf : -1, (double)got, jwant ? jwant - buf : -1, (double)jref);
        t->json++;
    } else if (jend) {
        fail_msg("annb_json_float(\"%s\") took %td bytes of a text that is no JSON number", ref_text,
                 jend - buf);
    }
    free(buf);
    t->texts++;
    t->accepted += rc == ANNB_FLOAT_OK;
}

static void check_str(tally *t, const char *s) { check(t, s, strlen(s)); }

/* ------------------------------------------------------------------------ */

static void test_table(void **state)
{
    (void)state;
    static const char *const texts[] = {
        /* both grammars */
        "0", "-0", "0.0", "-0.0", "1", "-1", "0.5", "1e0", "1E+2", "2e-3", "123456789", "0.1234567",
        "-1.2345678E-4", "3.4028235e38", "3.4028236e38", "-3.4028235e38", "3.40282357e38",
        "1.17549435e-38", "1.4e-45", "7e-46", "7.1e-46", "1e-46", "0e999999999999999999999",
        "16777217", "16777216", "16777218", "33554431", "33554433", "9007199254740993",
        "9223372036854775807", "18446744073709551615", "18446744073709551616",
        "1234567890123456789", "12345678901234567890", "0.00000000000000000000012345678901234567890",
        "1e22", "1e23", "1e-22", "1e-23", "9007199254740992e22", "9007199254740993e-22",
        "4.7019774032891500318749461488889827112746622270883500860350068251e-38",
        "1.00000005960464477539062500", "1.00000005960464477539062501", "1.00000005960464477539062499",
        "340282356779733661637539395458142568448", "340282356779733661637539395458142568447",
        "1e-99999999999999999999", "1e99999999999999999999", "-1e99999999999999999999",
        /* strtod's grammar only */
        "1.", ".5", "-.5", "+.5e-3", "+1", "00012", "-00.000", "01.10E+01",
        /* neither */
        "", "-", "+", ".", "e5", "1e", "1e+", "1e-", "--1", "+-1", "1.5.3", "1e5e5", "0x10", "inf",
        "-inf", "nan", "NaN", "Infinity", " 1", "1 ", "1,5", "1d5",
    };
    tally t = {0};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) check_str(&t, texts[i]);
    /* the JSON-only rules, checked directly too */
    float f;
    const char *s = "01]";
    assert_ptr_equal(annb_json_float(&f, s, s + 3), s + 1);
    s = "+1";
    assert_null(annb_json_float(&f, s, s + 2));
    s = "1.]";
    assert_null(annb_json_float(&f, s, s + 3));
    s = "1e+]";
    assert_null(annb_json_float(&f, s, s + 4));
    s = "1e39,";
    assert_null(annb_json_float(&f, s, s + 5)); /* not a finite float */
    s = "-0, ";
    assert_ptr_equal(annb_json_float(&f, s, s + 4), s + 2);
    assert_true(f == 0.0f && signbit(f));
}

/* Random digit strings: sign, 1..20 digits (now and then up to 300, for the
 * strtof fallback's cut), a decimal point anywhere or none, maybe leading
 * zeros, and an exponent that puts the value anywhere from below the
 * smallest subnormal to above FLT_MAX. */
static size_t random_decimal(char *out, tu_rng *r)
{
    size_t o = 0;
    uint64_t kind = tu_rng_below(r, 100);
    int ndig = kind < 90 ? 1 + (int)tu_rng_below(r, 20) : kind < 98 ? 21 + (int)tu_rng_below(r, 40)
                                                                   : 61 + (int)tu_rng_below(r, 240);
    uint64_t sign = tu_rng_below(r, 4);
    if (sign == 0) out[o++] = '-';
    if (sign == 1) out[o++] = '+';
    if (tu_rng_below(r, 8) == 0)
        for (int z = (int)tu_rng_below(r, 4); z > 0; z--) out[o++] = '0';
    int point = tu_rng_below(r, 4) == 0 ? -1 : (int)tu_rng_below(r, (uint64_t)ndig + 1);
    for (int i = 0; i < ndig; i++) {
        if (i == point) out[o++] = '.';
        /* runs of 0s and 9s find carries and cut ties; else uniform */
        uint64_t c = tu_rng_below(r, 16);
        out[o++] = (char)('0' + (c == 0 ? 0 : c == 1 ? 9 : tu_rng_below(r, 10)));
    }
    if (point == ndig) out[o++] = '.';
    if (tu_rng_below(r, 5) != 0) {
        int frac = point < 0 ? 0 : ndig - point;
        int lead = ndig - frac; /* digits before the point */
        int target = (int)tu_rng_below(r, 100) - 52; /* decimal exponent of the value */
        int e = target - lead + 1;
        if (tu_rng_below(r, 50) == 0) e = (int)tu_rng_below(r, 2000) - 1000;
        out[o++] = tu_rng_below(r, 2) ? 'e' : 'E';
        if (e >= 0 && tu_rng_below(r, 3) == 0) out[o++] = '+';
        o += (size_t)sprintf(out + o, "%d", e);
    }
    out[o] = '\0';
    return o;
}

static void test_random_decimals(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 20261201);
    tally t = {0};
    char text[400];
    for (uint64_t i = 0, n = 800000 * rounds(); i < n; i++) check(&t, text, random_decimal(text, &r));
    print_message("random decimals: %llu texts, %llu finite, %llu JSON numbers\n",
                  (unsigned long long)t.texts, (unsigned long long)t.accepted,
                  (unsigned long long)t.json);
}

/* Any finite float (uniform over bit patterns, so every binade). */
static float random_float(tu_rng *r)
{
    for (;;) {
        uint32_t b = (uint32_t)tu_rng_next(r);
        float f;
        memcpy(&f, &b, sizeof f);
        if (isfinite(f)) return f;
    }
}

/* A double around the float range: exponent within 2^-160 .. 2^130. */
static double random_double(tu_rng *r)
{
    uint64_t b = tu_rng_next(r);
    uint64_t exp = 1023 - 160 + tu_rng_below(r, 291);
    b = (b & 0x800fffffffffffffu) | exp << 52;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static void test_printf_output(void **state)
{
    (void)state;
    static const char *const ffmt[] = {"%.9g", "%.8g", "%.7g", "%.6g", "%.17g", "%e", "%.12e", "%.9e", "%.3g"};
    static const char *const dfmt[] = {"%.17g", "%.9g", "%.16g", "%.20e", "%.25g", "%g", "%f"};
    tu_rng r;
    tu_rng_seed(&r, 7);
    tally t = {0};
    char text[400];
    for (uint64_t i = 0, n = 400000 * rounds(); i < n; i++) {
        float f = random_float(&r);
        int len = snprintf(text, sizeof text, ffmt[i % (sizeof ffmt / sizeof ffmt[0])], (double)f);
        check(&t, text, (size_t)len);
        double d = random_double(&r);
        len = snprintf(text, sizeof text, dfmt[i % (sizeof dfmt / sizeof dfmt[0])], d);
        if (len > 0 && (size_t)len < sizeof text) check(&t, text, (size_t)len);
    }
    print_message("printf output: %llu texts, %llu finite\n", (unsigned long long)t.texts,
                  (unsigned long long)t.accepted);
}

/* Exact halfway points between neighbouring floats (subnormal, normal, and
 * between FLT_MAX and 2^128), written out in full (glibc prints the exact
 * decimal expansion), cut short, and their double neighbours: where a
 * double rounding would go wrong. */
static void test_midpoints(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 99);
    tally t = {0};
    char text[400];
    for (uint64_t i = 0, n = 60000 * rounds(); i < n; i++) {
        float f = fabsf(random_float(&r));
        if (i % 16 == 0) f = nextafterf(FLT_MAX, 0.0f); /* the top, and */
        if (i % 16 == 1) f = FLT_MAX;                   /* the overflow boundary */
        if (i % 16 == 2) f = (float)tu_rng_below(&r, 1u << 25); /* integers, some past 2^24 */
        double next = f == FLT_MAX ? 0x1p128 : (double)nextafterf(f, INFINITY);
        double mid = ((double)f + next) / 2; /* exact: 25 significant bits */
        const char *sign = tu_rng_below(&r, 2) ? "-" : "";
        int len = snprintf(text, sizeof text, "%s%.150e", sign, mid);
        check(&t, text, (size_t)len);
        for (int cut = 8; cut <= 29; cut += 7) { /* 9, 16 (the exact path), 23, 30 digits */
            len = snprintf(text, sizeof text, "%s%.*e", sign, cut, mid);
            check(&t, text, (size_t)len);
        }
        len = snprintf(text, sizeof text, "%s%.17g", sign, nextafter(mid, 0));
        check(&t, text, (size_t)len);
        len = snprintf(text, sizeof text, "%s%.17g", sign, nextafter(mid, INFINITY));
        check(&t, text, (size_t)len);
        len = snprintf(text, sizeof text, "%s%.17g", sign, mid);
        check(&t, text, (size_t)len);
    }
    print_message("midpoints: %llu texts\n", (unsigned long long)t.texts);
}

/* Random strings over the number alphabet: the grammar of both functions. */
static void test_random_grammar(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789.-+eE0019.e-";
    tu_rng r;
    tu_rng_seed(&r, 5);
    tally t = {0};
    char text[32];
    for (uint64_t i = 0, n = 500000 * rounds(); i < n; i++) {
        size_t len = 1 + tu_rng_below(&r, 12);
        for (size_t j = 0; j < len; j++) text[j] = alphabet[tu_rng_below(&r, sizeof alphabet - 1)];
        check(&t, text, len);
    }
    print_message("random strings: %llu texts, %llu numbers, %llu JSON numbers\n",
                  (unsigned long long)t.texts, (unsigned long long)t.accepted,
                  (unsigned long long)t.json);
}

/* Runs of digits at every offset and length around the 8-byte steps of the
 * digit scanner, and numbers that end exactly at the end of the buffer. */
static void test_digit_runs(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 11);
    tally t = {0};
    char text[64];
    for (int a = 1; a <= 20; a++)
        for (int b = 0; b <= 20; b++)
            for (int rep = 0; rep < 50; rep++) {
                size_t o = 0;
                for (int i = 0; i < a; i++) text[o++] = (char)('0' + (i ? tu_rng_below(&r, 10) : 1 + tu_rng_below(&r, 9)));
                if (b) {
                    text[o++] = '.';
                    for (int i = 0; i < b; i++) text[o++] = (char)('0' + tu_rng_below(&r, 10));
                }
                check(&t, text, o);
                text[o] = (char)(rep % 2 ? ',' : ']'); /* followed by more text */
                check(&t, text, o + 1);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_digit_runs),
        cmocka_unit_test(test_random_grammar),
        cmocka_unit_test(test_midpoints),
        cmocka_unit_test(test_printf_output),
        cmocka_unit_test(test_random_decimals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
