/*
 * section_io.h - reading and writing the bundle's sections, one module per
 * group (internal to libannb). format/ frames the bytes; each module here
 * encodes a group of sections (format/SPEC.md 6), decodes it from an open
 * bundle and checks what it decodes, so that the rules of a group live in
 * one file:
 *
 *   bundle.c            META, IDS, VECS, FAIS, and the reading toolkit below
 *   sections.c          TUNE, TUNK (6.14, 6.16)
 *   provenance.c        BILD (6.13)
 *   catalog_sections.c  TOFF, TTLS, GVOC, GBIT (6.5-6.8)
 *   user_sections.c     UIDS, UVEC, SOFF, SEEN (6.9-6.12), UKOF, UKEY (6.19)
 *   keys.c              the string ID tables (6.19), IKOF, IKEY
 *   ivf_sections.c      IVCT, IVOF, IVRW, IVEC (6.15)
 *   graph_sections.c    GENT, GADJ, GSQP, GCOD, GROW (6.18)
 *
 * A loader fills its part of annb_content; `full` is annb_verify's (or
 * ANNB_OPEN_VERIFY_ALL's) complete check, otherwise bulk sections (SPEC
 * 3.11) are used in place and checked where they are read. A writer adds
 * its sections to the writer in the order the bundle lays them out.
 */
#ifndef ANNB_SECTION_IO_H
#define ANNB_SECTION_IO_H

#include "annb_format.h"
#include "bundle.h"
#include "ingest.h"

/* ---- reading toolkit (bundle.c) ---- */

/* "PATH: at byte N: message" from a format-layer error. */
int annb_sec_format_error(annb_error *err, const annb_bundle *b, const annbf_error *fe);
/* Hands a malloc'd buffer to the content, which frees it when released. */
int annb_sec_keep(const annb_bundle *b, annb_content *c, void *owned, annb_error *err);
/* The section of this kind, checksum verified and decoded, with its element
 * type and count checked (elem_count UINT64_MAX: any). Absent: *out = NULL
 * and ANNB_OK unless required. */
int annb_sec_load(const annb_bundle *b, annb_content *c, const char *kind, int required,
                  uint32_t elem_type, uint64_t elem_count, const void **out, annb_error *err);
/* A bulk section (SPEC 3.11): in place without its checksum unless verify. */
int annb_sec_bulk(const annb_bundle *b, annb_content *c, const char *kind, uint32_t type,
                  uint64_t elem_count, int verify, const void **out, annb_error *err);
int annb_sec_bulk_f32(const annb_bundle *b, annb_content *c, const char *kind, uint64_t elem_count,
                      int verify, const void **out, annb_error *err);
/* ANNB_E_CORRUPT for element `index` of a section, located by byte. */
int annb_sec_corrupt(annb_error *err, const annb_bundle *b, const char *kind, const char *what,
                     uint64_t index);
/* Text [from, to) of a bytes section is clean (annb_text_char). */
int annb_sec_check_text(annb_error *err, const annb_bundle *b, const char *kind, const char *name,
                        uint64_t number, const char *base, uint64_t from, uint64_t to);
/* IDs strictly ascending, never ANNB_ID_NONE (SPEC 6.2, 6.9). */
int annb_sec_check_ids(const annb_bundle *b, const char *kind, const int64_t *ids, uint64_t n,
                       annb_error *err);

/* A critical raw section; the writer copies the bytes. */
int annb_sec_add_raw(annbf_writer *w, const char *kind, uint32_t type, uint64_t count,
                     const void *data, size_t size, annbf_error *fe);

/* ---- the groups ---- */

int annb_tune_load(const annb_bundle *b, annb_content *c, annb_error *err);
int annb_tune_sections_write(annbf_writer *w, const annb_tune *t, annbf_error *fe);

int annb_provenance_load(const annb_bundle *b, annb_content *c, annb_error *err);

int annb_catalog_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err);
/* Joins catalog c to the n rows of ascending ids: rows without an entry
 * get an empty title and no genres; the counts of the join into *no_entry
 * (rows) and *no_row (entries). */
int annb_catalog_sections_write(annbf_writer *w, const int64_t *ids, uint64_t n,
                                const annb_catalog *c, uint64_t *no_entry, uint64_t *no_row,
                                annb_error *err);

int annb_user_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err);
/* m users of dimension d (ids ascending); seen_offsets (m + 1) and
 * seen_rows, or NULL without interactions; keys with src (keys.h), or
 * NULL with integer IDs. */
int annb_user_sections_write(annbf_writer *w, const int64_t *ids, const float *vecs, uint64_t m,
                             uint32_t d, const uint64_t *seen_offsets, const uint32_t *seen_rows,
                             const annb_keys *keys, const uint32_t *src, annbf_error *fe);

/* The string ID table of n rows whose IDs are ids (keys.c). */
int annb_keys_sections_load(const annb_bundle *b, annb_content *c, const char *off_kind,
                            const char *text_kind, const int64_t *ids, uint64_t n, int full,
                            const uint64_t **off_out, const char **text_out, uint64_t *size_out,
                            annb_error *err);
int annb_keys_sections_write(annbf_writer *w, const char *off_kind, const char *text_kind,
                             const annb_keys *keys, const uint32_t *src, uint64_t n,
                             annbf_error *fe);

int annb_ivf_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err);
int annb_ivf_sections_write(annbf_writer *w, const annb_ivf *ivf, annbf_error *fe);

int annb_graph_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err);
int annb_graph_sections_write(annbf_writer *w, const annb_graph *g, annbf_error *fe);

#endif /* ANNB_SECTION_IO_H */
