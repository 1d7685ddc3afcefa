/* bundle.h - the open bundle handle (internal to libannb). */
#ifndef ANNB_BUNDLE_H
#define ANNB_BUNDLE_H

#include "annb.h"
#include "annb_format.h"
#include "genre_rows.h"
#include "graph.h"
#include "ivf.h"
#include "sections.h"

#include <faiss/c_api/Index_c.h>

/* What the sections say, with pointers into the mapping (raw sections) or
 * into decoded buffers (zstd sections, kept in `owned`). */
typedef struct annb_content {
    annb_meta meta;
    const int64_t *ids;          /* meta.count, ascending if verified (bulk, SPEC 6.2) */
    const float *vecs;           /* meta.count * meta.dimension */
    /* Catalog (SPEC 6.5-6.8). TOFF, TTLS and GBIT are bulk (3.11), in
     * place and unchecked at open: read them only through
     * annb_catalog_title and annb_catalog_genre_words. */
    const uint64_t *title_offsets; /* count + 1, or NULL without a catalog */
    const char *titles;
    uint64_t title_size;         /* TTLS bytes */
    const char **genre_names;    /* genre_count pointers into the GVOC payload */
    uint32_t genre_count;
    uint32_t genre_words;        /* u64 words per row in genre_bits */
    const uint64_t *genre_bits;
    annb_genre_rows *genre_rows; /* per-genre row bitmaps, built on first use; owned */
    FaissIndex *index;           /* NULL for Flat (exact.c scans vecs in place) and annb's IVF */
    annb_ivf ivf;                /* annb's own IVF-Flat (SPEC 6.15), in place, when has_ivf */
    int has_ivf;
    annb_graph graph;            /* annb's own graph (SPEC 6.18), in place, when has_graph */
    annb_graph_pool *graph_pool; /* its searches' scratch, owned */
    int has_graph;
    /* Users (SPEC 6.9-6.10), all zero when the bundle stores none; always
     * searched exactly, in place. */
    uint64_t user_count;
    const int64_t *user_ids;
    const float *user_vecs;
    /* Interactions (SPEC 6.11-6.12): user row u saw item rows
     * seen_rows[seen_offsets[u] .. seen_offsets[u+1]). NULL when absent.
     * Bulk (3.11), unchecked at open: read them only through annb_seen_of. */
    const uint64_t *seen_offsets;
    const uint32_t *seen_rows;
    uint64_t seen_count;         /* SEEN's elements */
    /* String IDs (SPEC 6.19) of the items and of the users, or NULL: key
     * offsets (rows + 1) into the key text of key_size bytes. Bulk: each
     * use checks what it reads (annb_keys_stored). */
    const uint64_t *item_key_offsets, *user_key_offsets;
    const char *item_keys, *user_keys;
    uint64_t item_key_size, user_key_size;
    const char *provenance;      /* BILD text and a NUL (SPEC 6.13), or NULL; in owned */
    annb_tune tune;              /* SPEC 6.14, when has_tune */
    int has_tune;
    /* Freed with the content: the decoded payload of each known section
     * (any of them may be zstd) and the provenance text. */
    void *owned[ANNB_KIND_COUNT + 1];
    unsigned owned_count;
} annb_content;

struct annb_bundle {
    void *map;
    size_t map_size;
    annbf_file file;
    int structure_only;
    int verify_all; /* ANNB_OPEN_VERIFY_ALL: bulk sections checksummed at open too */
    int trust_faiss; /* ANNB_OPEN_TRUST_FAISS: FAIS types the checker does not know pass */
    char path[256]; /* for messages: the path as given, truncated */
    annb_content c;
};

/* annb_open over bytes already in memory (tests, fuzzers): data must
 * outlive the handle; name is used in messages. Same checks as annb_open. */
int annb_bundle_from_bytes(annb_bundle **out, const void *data, size_t size, const char *name,
                           unsigned flags, annb_error *err);

/* One searchable set of vectors: items or users. */
typedef struct annb_space_view {
    uint64_t count;
    const int64_t *ids;
    const float *vecs;
    FaissIndex *index;  /* NULL when exact or annb's IVF or graph */
    const annb_ivf *ivf; /* annb's IVF, or NULL */
    const annb_graph *graph;   /* annb's graph, or NULL */
    annb_graph_pool *graph_pool;
    int exact;  /* Flat: exact.c scores every row in place */
    const uint64_t *key_offsets; /* string IDs (SPEC 6.19), or NULL */
    const char *keys;
    uint64_t key_size;
} annb_space_view;

/* The items or users of b (count 0 when the bundle has none of them). */
annb_space_view annb_space_of(const annb_bundle *b, annb_space s);

/* Cosine queries are searched normalised, like the stored vectors: *out is
 * a malloc'd normalised copy of the nq queries, or NULL for the other
 * metrics (search q as it is). ANNB_OK or ANNB_E_NOMEM. */
int annb_queries_normalized(float **out, const annb_bundle *b, const float *q, size_t nq);

/* Item row's title (catalog_sections.c), checked where it is read: its
 * offsets ascending within TTLS and a NUL at its end (SPEC 6.5). NULL
 * without a catalog, for an empty title, or when the stored one fails
 * those checks (a damaged bundle: the item shows no title). The text is
 * clean only in a verified bundle (6.6): writers escape what they print. */
const char *annb_catalog_title(const annb_content *c, uint64_t row);
/* Item row's genre_words GBIT words, or NULL without genres. */
const uint64_t *annb_catalog_genre_words(const annb_content *c, uint64_t row);

/* User row u's seen item rows (user_sections.c), checked where they are
 * read: offsets within SEEN, rows ascending and below the item count
 * (SPEC 6.11-6.12). ANNB_OK with *rows and *count (0 without
 * interactions), or ANNB_E_CORRUPT for a damaged bundle's row. */
int annb_seen_of(const annb_content *c, uint64_t u, const uint32_t **rows, size_t *count);

/* Row of item `id`, or -1. Binary search on the ascending IDs. */
int64_t annb_row_of(const annb_bundle *b, int64_t id);

#endif /* ANNB_BUNDLE_H */
