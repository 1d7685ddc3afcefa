/*
 * numparse.h - decimal text to float32, correctly rounded (internal).
 *
 * Both functions give, for every text they accept, the float that strtof
 * gives in the "C" locale, bit for bit: the float nearest to the exact
 * decimal value, ties to even, -0 for a negative zero, 0 or a subnormal on
 * underflow. They never depend on the locale, allocate or touch errno, and
 * are safe to call from any thread.
 *
 * Most numbers of an embeddings file (up to 19 significant digits and a
 * decimal exponent within +-22) take an exact double computation; the
 * others, and the rare values where that shortcut could round twice, go to
 * strtof (see numparse.c).
 */
#ifndef ANNB_NUMPARSE_H
#define ANNB_NUMPARSE_H

#include <stddef.h>

/* Longest JSON number the shortcut of embeddings.c takes: cJSON 1.7.15 as
 * released copies at most 63 bytes of a number for strtod and so refuses
 * longer ones (Debian's fix for CVE-2023-26819 lifts that). Longer numbers
 * go the general way, where the cJSON at hand decides. */
#define ANNB_JSON_NUMBER_MAX 63

/*
 * Reads the JSON number (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)
 * that starts at p, within [p, end), into *out. Returns the first byte after
 * it, or NULL when p does not start a JSON number, when a '.' or exponent
 * marker is not followed by its digits ("1.", "1e+"), or when the value is
 * not a finite float32. What follows the number is the caller's to check
 * ("01" returns after the "0").
 */
const char *annb_json_float(float *out, const char *p, const char *end);

enum {
    ANNB_FLOAT_OK = 0,
    ANNB_FLOAT_SYNTAX = 1, /* not a decimal number */
    ANNB_FLOAT_RANGE = 2   /* rounds to an infinity */
};

/*
 * Reads all of s[0..len) as a decimal number in strtod's decimal grammar,
 * [+-]?([0-9]+(.[0-9]*)?|.[0-9]+)([eE][+-]?[0-9]+)? (no blanks, hex, inf
 * or nan), into *out. Returns ANNB_FLOAT_OK, ANNB_FLOAT_SYNTAX (*out
 * untouched) or ANNB_FLOAT_RANGE (*out untouched).
 */
int annb_float_parse(float *out, const char *s, size_t len);

#endif /* ANNB_NUMPARSE_H */
