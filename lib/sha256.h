/*
 * sha256.h - SHA-256 (FIPS 180-4), streaming (internal to libannb).
 *
 * For the provenance's content digests (SPEC 6.13) and annb_file_sha256
 * (the identity of a published bundle, as sha256sum prints it). Not
 * constant-time: it hashes public data, never secrets.
 */
#ifndef ANNB_SHA256_H
#define ANNB_SHA256_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>

#define ANNB_SHA256_SIZE 32 /* digest bytes */
#define ANNB_SHA256_HEX 65  /* 64 lowercase hex digits and a NUL */

/* Caller-owned state (usually on the stack); nothing in it needs freeing. */
typedef struct annb_sha256 {
    uint32_t h[8];      /* chaining value */
    uint64_t bytes;     /* message length so far */
    uint8_t block[64];  /* pending partial block */
    size_t fill;        /* bytes in block */
} annb_sha256;

void annb_sha256_init(annb_sha256 *s);
/* Hashes n more bytes (data may be NULL when n is 0). */
void annb_sha256_update(annb_sha256 *s, const void *data, size_t n);
/* Writes the digest; s must be re-initialised before further use. */
void annb_sha256_final(annb_sha256 *s, uint8_t out[ANNB_SHA256_SIZE]);

/* The digest as 64 lowercase hex digits and a NUL. */
void annb_sha256_hex(char hex[ANNB_SHA256_HEX], const uint8_t digest[ANNB_SHA256_SIZE]);

/* SHA-256 of a whole file, read in blocks (constant memory), as hex.
 * Returns ANNB_OK, or ANNB_E_IO with "PATH: reason" in err. */
int annb_sha256_file(char hex[ANNB_SHA256_HEX], const char *path, annb_error *err);

#endif /* ANNB_SHA256_H */
