/* build.c - embeddings + catalog -> bundle (annb_build). */
#define _GNU_SOURCE /* qsort_r */
#include "annb.h"
#include "annb_format.h"
#include "build.h"
#include "csvread.h"
#include "index_build.h"
#include "ingest.h"
#include "progress.h"
#include "provenance.h"
#include "section_io.h"
#include "sections.h"
#include "sha256.h"

#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

/* Rows are stored in ascending ID order: ID -> row is a binary search on the
 * mapping, and the bundle does not depend on the input's row order. */
typedef struct sorted_rows {
    uint64_t n;
    uint32_t d;
    int64_t *ids;
    float *vecs;
    /* String IDs (keys.h): row i's key is keys' key src[i]; src NULL: the
     * IDs are integers. Rows dropped later (shards, zero vectors) take their
     * src along, so the stored table is gathered at the end. */
    annb_keys keys;
    uint32_t *src;
} sorted_rows;

/* Row i's ID for a message: its key, or the integer. */
static const char *row_name(char buf[24], const sorted_rows *r, uint64_t i)
{
    if (r->src) return annb_keys_at(&r->keys, r->src[i], NULL);
    snprintf(buf, 24, "%" PRId64, r->ids[i]);
    return buf;
}

static int cmp_row_by_id(const void *a, const void *b, void *ids_v)
{
    const int64_t *ids = ids_v;
    int64_t x = ids[*(const size_t *)a], y = ids[*(const size_t *)b];
    return (x > y) - (x < y);
}

/* Rows of e by ID; e's keys, if any, move to out. */
static int sort_rows(sorted_rows *out, annb_embeddings *e, annb_error *err)
{
    size_t n = (size_t)e->count, d = e->dimension;
    size_t *perm = malloc(n * sizeof *perm);
    out->ids = malloc(n * sizeof *out->ids);
    out->vecs = malloc(n * d * sizeof *out->vecs);
    if (e->keys.count) out->src = malloc(n * sizeof *out->src);
    if (!perm || !out->ids || !out->vecs || (e->keys.count && !out->src)) {
        free(perm);
        return annb_error_set(err, ANNB_E_NOMEM, "out of memory sorting %zu rows", n);
    }
    for (size_t i = 0; i < n; i++) perm[i] = i;
    qsort_r(perm, n, sizeof *perm, cmp_row_by_id, e->ids);
    for (size_t i = 0; i < n; i++) {
        out->ids[i] = e->ids[perm[i]];
        memcpy(out->vecs + i * d, e->vectors + perm[i] * d, d * sizeof(float));
        if (out->src) out->src[i] = (uint32_t)perm[i]; /* rows < 2^31 */
    }
    free(perm);
    if (out->src) {
        out->keys = e->keys;
        memset(&e->keys, 0, sizeof e->keys);
    }
    out->n = n;
    out->d = (uint32_t)d;
    return ANNB_OK;
}

static void normalize_rows(float *v, uint64_t n, uint32_t d)
{
    for (uint64_t i = 0; i < n; i++) {
        float *row = v + i * d;
        double ss = 0;
        for (uint32_t j = 0; j < d; j++) ss += (double)row[j] * row[j];
        if (ss > 0) { /* a zero vector stays zero: it scores 0 against everything */
            double inv = 1.0 / sqrt(ss);
            for (uint32_t j = 0; j < d; j++) row[j] = (float)(row[j] * inv);
        }
    }
}

/* The index string `buf` (resolved from a name such as "hnsw"), checked
 * for length and printable ASCII: it goes into META. */
static int index_desc(char out[ANNB_MAX_INDEX_DESC + 1], const char *buf, annb_error *err)
{
    size_t len = strlen(buf);
    if (len == 0 || len > ANNB_MAX_INDEX_DESC)
        return annb_error_set(err, ANNB_E_INVALID, "index string is %zu bytes, expected 1 to %u",
                              len, ANNB_MAX_INDEX_DESC);
    for (size_t i = 0; i < len; i++)
        if (buf[i] < 0x20 || buf[i] > 0x7e)
            return annb_error_set(err, ANNB_E_INVALID, "index string has a non-printable byte");
    memcpy(out, buf, len + 1);
    return ANNB_OK;
}


/* Host floats/ints are written as little-endian bytes: annb builds only on
 * little-endian hosts (checked at compile time). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "annb assumes a little-endian host");

#define BUILD_INPUTS_MAX 8 /* items, catalog, users, interactions, and room for more */

/* Everything a bundle is written from. */
typedef struct bundle_parts {
    annb_meta meta;
    sorted_rows items, users;          /* users.n == 0: no users */
    const annb_catalog *catalog;       /* NULL: no catalog */
    uint64_t *seen_offsets;            /* users.n + 1, or NULL */
    uint32_t *seen_rows;
    annb_index_made index;
    char *provenance;                  /* BILD text (SPEC 6.13) */
    char auto_choice[800];             /* index "auto": why (SPEC 6.13 `auto`), or "" */
    size_t provenance_size;
    /* What each input held, for the provenance; "" when not given. */
    char items_digest[ANNB_SHA256_HEX], users_digest[ANNB_SHA256_HEX];
    char catalog_digest[ANNB_SHA256_HEX], seen_digest[ANNB_SHA256_HEX];
    sorted_rows tune_vectors;          /* --tune-vectors; n == 0: none */
    char tune_digest[ANNB_SHA256_HEX];
    /* How it is written. */
    const annb_build_opts *opts;
    const char *inputs[BUILD_INPUTS_MAX];
    size_t input_count;
    int named_temp; /* the writer's fallback path, forced (tests) */
    uint64_t auto_exact_bytes; /* index "auto" indexes vectors of more bytes */
} bundle_parts;

static void rows_release(sorted_rows *r)
{
    free(r->ids);
    free(r->vecs);
    free(r->src);
    annb_keys_release(&r->keys);
}

static void parts_release(bundle_parts *p)
{
    rows_release(&p->items);
    rows_release(&p->users);
    rows_release(&p->tune_vectors);
    free(p->seen_offsets);
    free(p->seen_rows);
    annb_index_made_release(&p->index);
    free(p->provenance);
}


/* Every input of a build, for the check that the output is none of them:
 * a new input option is added here. Returns how many (NULLs kept). */
static size_t build_inputs(const char *out[BUILD_INPUTS_MAX], const char *items_path,
                           const char *catalog_path, const annb_build_opts *o)
{
    size_t n = 0;
    out[n++] = items_path;
    out[n++] = catalog_path;
    out[n++] = o->users_path;
    out[n++] = o->interactions_path;
    out[n++] = o->tune_vectors_path;
    out[n++] = o->ids_path;
    out[n++] = o->user_ids_path;
    /* "-" is stdin: the output must not be the file stdin reads either */
    for (size_t i = 0; i < n; i++)
        if (out[i] && strcmp(out[i], "-") == 0) out[i] = "/dev/stdin";
    return n;
}

/* The output may replace nothing that is not a regular file, nor an input:
 * checked before the build starts, and by the writer again. */
static int check_output(const char *output_path, const char *items_path,
                        const char *catalog_path, const annb_build_opts *o, annb_error *err)
{
    const char *inputs[BUILD_INPUTS_MAX];
    size_t n = build_inputs(inputs, items_path, catalog_path, o);
    annbf_error fe = {0};
    int rc = annbf_output_check(output_path, inputs, n, &fe);
    return rc ? annb_error_set(err, rc, "%s: %s", output_path, fe.message) : ANNB_OK;
}

/* "-" (stdin) can be one input only. */
static int stdin_once(const char *items_path, const char *catalog_path, const annb_build_opts *o,
                      annb_error *err)
{
    const char *const names[] = {"the items", "the catalog", "the users", "the interactions",
                                 "the tune vectors", "the item IDs", "the user IDs"};
    const char *paths[] = {items_path, catalog_path, o->users_path, o->interactions_path,
                           o->tune_vectors_path, o->ids_path, o->user_ids_path};
    int first = -1;
    for (int i = 0; i < 7; i++) {
        if (!paths[i] || strcmp(paths[i], "-") != 0) continue;
        if (first >= 0)
            return annb_error_set(err, ANNB_E_INVALID, "-: stdin can be read once: %s and %s "
                                  "both name it", names[first], names[i]);
        first = i;
    }
    return ANNB_OK;
}

/* opts.expect_sha256: 64 hex digits, either case. */
static int expect_ok(const char *hex)
{
    size_t n = 0;
    while (hex[n] && n <= 64 && isxdigit((unsigned char)hex[n])) n++;
    return n == 64 && !hex[64];
}

/* --expect-sha256: the writer hands every byte it writes to hash_bytes and
 * asks hash_matches before it names the file, so the bytes hashed are the
 * bytes written, in the writer's own single sequence (SPEC 4.3). */
typedef struct expect_hash {
    annb_sha256 state;
    const char *expect;
} expect_hash;

static void hash_bytes(void *ctx, const void *data, size_t size)
{
    annb_sha256_update(&((expect_hash *)ctx)->state, data, size);
}

static int hash_matches(void *ctx, annbf_error *fe)
{
    expect_hash *h = ctx;
    uint8_t digest[ANNB_SHA256_SIZE];
    char hex[ANNB_SHA256_HEX];
    annb_sha256_final(&h->state, digest);
    annb_sha256_hex(hex, digest);
    if (strcasecmp(hex, h->expect) == 0) return ANNBF_OK;
    fe->code = ANNBF_E_CHECKSUM;
    fe->offset = UINT64_MAX;
    snprintf(fe->message, sizeof fe->message, "SHA-256 mismatch: built %s, expected %.64s; "
             "nothing was written (a file already there is unchanged)", hex, h->expect);
    return ANNBF_E_CHECKSUM;
}

/* Phase "write": the bundle's bytes as the writer writes them; begun at
 * the first write, when the file's size is known. */
typedef struct write_progress {
    annb_progress_to to;
    annb_phase phase;
    int begun;
} write_progress;

static void on_written(void *ctx, uint64_t written, uint64_t total)
{
    write_progress *wp = ctx;
    if (!wp->begun) annb_phase_begin(&wp->phase, &wp->to, "write", "bytes", total);
    wp->begun = 1;
    annb_phase_update(&wp->phase, written);
}

static int write_bundle(const char *output_path, const bundle_parts *p, annb_build_report *rep,
                        annb_error *err)
{
    annbf_writer *w = NULL;
    annbf_error fe = {0};
    uint8_t mbuf[ANNB_META_SIZE + ANNB_MAX_INDEX_DESC];
    size_t msize = annb_meta_encode(mbuf, sizeof mbuf, &p->meta);
    const sorted_rows *it = &p->items, *us = &p->users;
    int rc = annbf_writer_new(&w, &fe);
    if (rc) return annb_error_set(err, rc, "%s", fe.message);
    /* The items, their string IDs and index, then the users; every group
     * of sections is written by its own module (section_io.h). */
    if ((rc = annb_sec_add_raw(w, ANNB_KIND_META, ANNBF_ELEM_BYTES, msize, mbuf, msize, &fe)) ||
        (rc = annb_sec_add_raw(w, ANNB_KIND_IDS, ANNBF_ELEM_I64, it->n, it->ids, it->n * 8, &fe)) ||
        (rc = annb_sec_add_raw(w, ANNB_KIND_VECS, ANNBF_ELEM_F32, it->n * it->d, it->vecs,
                               it->n * it->d * 4, &fe)) ||
        (it->src && (rc = annb_keys_sections_write(w, ANNB_KIND_ITEM_KEY_OFFSETS,
                                                   ANNB_KIND_ITEM_KEYS, &it->keys, it->src, it->n,
                                                   &fe))) ||
        (p->index.faiss_blob &&
         (rc = annb_sec_add_raw(w, ANNB_KIND_FAISS, ANNBF_ELEM_BYTES, p->index.faiss_size,
                                p->index.faiss_blob, p->index.faiss_size, &fe))) ||
        (rc = annb_tune_sections_write(w, &p->index.tune, &fe)) ||
        (us->n && (rc = annb_user_sections_write(w, us->ids, us->vecs, us->n, us->d,
                                                 p->seen_offsets, p->seen_rows, &us->keys,
                                                 us->src, &fe))) ||
        (p->index.native_ivf && (rc = annb_ivf_sections_write(w, &p->index.ivf.ivf, &fe))) ||
        (p->index.native_graph && (rc = annb_graph_sections_write(w, &p->index.graph.g, &fe)))) {
        annb_error_set(err, rc, "adding sections: %s", fe.message);
        goto out;
    }
    if (p->catalog &&
        (rc = annb_catalog_sections_write(w, it->ids, it->n, p->catalog,
                                          &rep->items_without_catalog,
                                          &rep->catalog_without_item, err)))
        goto out;
    if ((rc = annbf_writer_add(w, ANNB_KIND_BUILD, 0, ANNBF_CODEC_ZSTD, ANNBF_ELEM_BYTES,
                               p->provenance_size, p->provenance, p->provenance_size, &fe))) {
        annb_error_set(err, rc, "adding the provenance section: %s", fe.message);
        goto out;
    }
    expect_hash hash = {.expect = p->opts->expect_sha256};
    annbf_commit_opts co = {.inputs = p->inputs, .input_count = p->input_count,
                            .named_temp = p->named_temp};
    if (hash.expect) {
        annb_sha256_init(&hash.state);
        co.tee = hash_bytes;
        co.accept = hash_matches;
        co.ctx = &hash;
    }
    write_progress wp = {{p->opts->progress, p->opts->progress_ctx}, {0}, 0};
    if (wp.to.fn) {
        co.progress = on_written;
        co.progress_ctx = &wp;
    }
    if ((rc = annbf_writer_commit_opts(w, output_path, &co, &rep->bundle_bytes, &fe)))
        annb_error_set(err, rc, "%s: %s", output_path, fe.message);
    else if (wp.begun) /* written, synced and named */
        annb_phase_end(&wp.phase);
out:
    annbf_writer_free(w);
    return rc;
}

uint32_t annb_shard_of(int64_t id, uint32_t count)
{
    /* splitmix64's finaliser: a fixed, well-mixed hash of the ID. */
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return count ? (uint32_t)(z % count) : 0;
}

/* Keeps the rows of shard `index` of `count`, in place (order kept). */
static void keep_shard(sorted_rows *r, uint32_t index, uint32_t count, uint64_t *dropped)
{
    uint64_t kept = 0;
    for (uint64_t i = 0; i < r->n; i++) {
        if (annb_shard_of(r->ids[i], count) != index) continue;
        r->ids[kept] = r->ids[i];
        if (r->src) r->src[kept] = r->src[i];
        memmove(r->vecs + kept * r->d, r->vecs + i * r->d, r->d * sizeof(float));
        kept++;
    }
    *dropped = r->n - kept;
    r->n = kept;
}

/* Reads an embeddings file into rows sorted by ID, with the digest of all
 * of them (before sharding and normalising: what the file holds), then
 * keeps a shard's rows and normalises them for cosine. */
/* Cosine: a vector of zeros has no direction. Such rows (a training bug,
 * or items never trained) would score 0 against everything and come back
 * as neighbours of nothing in particular: refused with their count and
 * first IDs, or left out with drop (their count in *dropped). */
static int zero_rows(sorted_rows *r, const char *path, int drop, uint64_t *dropped,
                     annb_error *err)
{
    uint64_t zeros = 0, kept = 0;
    char ids[160] = "";
    size_t len = 0;
    for (uint64_t i = 0; i < r->n; i++) {
        const float *v = r->vecs + i * r->d;
        uint32_t j = 0;
        while (j < r->d && v[j] == 0) j++;
        if (j < r->d) {
            if (kept != i) {
                r->ids[kept] = r->ids[i];
                if (r->src) r->src[kept] = r->src[i];
                memmove(r->vecs + kept * r->d, v, r->d * sizeof *v);
            }
            kept++;
            continue;
        }
        char num[24];
        if (zeros++ < 5 && len < sizeof ids)
            len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%.40s", zeros > 1 ? ", " : "",
                                    row_name(num, r, i));
    }
    if (zeros == 0) return ANNB_OK;
    const char *name = annb_input_name(path);
    if (!drop || kept == 0) {
        /* rows were moved above: the caller fails and frees them */
        return annb_error_set(err, ANNB_E_INPUT, "%s: %llu %svector%s of zeros (ID%s %s%s): cosine "
                              "similarity is undefined for %s; leave %s out with --drop-zero%s",
                              name, (unsigned long long)zeros, kept == 0 ? "(all) " : "",
                              zeros == 1 ? "" : "s", zeros == 1 ? "" : "s", ids,
                              zeros > 5 ? ", ..." : "", zeros == 1 ? "it" : "them",
                              zeros == 1 ? "it" : "them",
                              kept == 0 ? " (which leaves nothing here)" : " or fix the training "
                                                                           "output");
    }
    r->n = kept;
    if (dropped) *dropped = zeros;
    return ANNB_OK;
}

/* rows: the rows in memory (annb_build_arrays), checked like a file's and
 * then taking the same path; path is then their name for messages. */
static int read_sorted(sorted_rows *out, char digest[ANNB_SHA256_HEX], const char *path,
                       const annb_matrix *rows, const annb_build_opts *o,
                       const annb_read_opts *ro, uint64_t *other_shards, uint64_t *dropped,
                       annb_error *err)
{
    annb_embeddings e = {0};
    int rc;
    if (rows) {
        rc = annb_embeddings_borrow(&e, path, rows, err);
        if (rc == ANNB_OK) rc = sort_rows(out, &e, err); /* copies: e is only a view */
    } else {
        rc = annb_embeddings_read_with(&e, path, ro, err);
        if (rc == ANNB_OK) rc = annb_embeddings_check_scores(&e, path, err);
        if (rc == ANNB_OK) rc = sort_rows(out, &e, err);
        annb_embeddings_release(&e);
    }
    if (rc) return rc;
    annb_digest_vectors(digest, out->ids, out->vecs, out->n, out->d);
    if (other_shards && o->shard_count > 1) {
        keep_shard(out, o->shard_index, o->shard_count, other_shards);
        if (out->n == 0)
            return annb_error_set(err, ANNB_E_INPUT, "%s: no item falls in shard %u/%u", path,
                                  o->shard_index, o->shard_count);
    }
    if (o->metric == ANNB_METRIC_COSINE) {
        int rc2 = zero_rows(out, path, o->drop_zero, dropped, err);
        if (rc2) return rc2;
        normalize_rows(out->vecs, out->n, out->d);
    }
    return ANNB_OK;
}

/* Interactions as rows: for each user row, the ascending item rows seen. */
static int read_seen(bundle_parts *p, const char *path, annb_build_report *rep, annb_error *err)
{
    annb_interactions x;
    annb_interactions_opts xo = {p->users.src != NULL, p->items.src != NULL, p->opts->progress,
                                 p->opts->progress_ctx};
    int rc = annb_interactions_read_with(&x, path, &xo, err);
    if (rc) return rc;
    annb_digest_interactions(p->seen_digest, &x);
    uint64_t m = p->users.n;
    p->seen_offsets = calloc(m + 1, sizeof *p->seen_offsets);
    p->seen_rows = malloc((x.count ? x.count : 1) * sizeof *p->seen_rows);
    if (!p->seen_offsets || !p->seen_rows) {
        annb_interactions_release(&x);
        return annb_error_set(err, ANNB_E_NOMEM, "%s: out of memory", path);
    }
    /* Pairs are sorted by (user ID, item ID) and rows follow ID order, so
     * each user's item rows come out ascending. */
    uint64_t n = 0;
    for (uint64_t i = 0; i < x.count; i++) {
        int64_t u = annb_row_in(p->users.ids, m, x.users[i]);
        int64_t r = annb_row_in(p->items.ids, p->items.n, x.items[i]);
        if (u < 0 || r < 0) {
            rep->interactions_skipped++;
            continue;
        }
        p->seen_rows[n++] = (uint32_t)r;
        p->seen_offsets[u + 1]++;
    }
    for (uint64_t u = 0; u < m; u++) p->seen_offsets[u + 1] += p->seen_offsets[u];
    rep->interactions = n;
    annb_interactions_release(&x);
    return ANNB_OK;
}

/* The provenance of this build (SPEC 6.13). */
static int make_provenance(bundle_parts *p, const annb_build_opts *o, annb_error *err)
{
    annb_provenance_in in = {
        .metric = annb_metric_name(o->metric),
        .index = p->meta.index,
        .shard_index = o->shard_index,
        .shard_count = o->shard_count,
        .items = p->items_digest,
        .catalog = *p->catalog_digest ? p->catalog_digest : NULL,
        .users = *p->users_digest ? p->users_digest : NULL,
        .interactions = *p->seen_digest ? p->seen_digest : NULL,
        .tune_vectors = *p->tune_digest ? p->tune_digest : NULL,
        .auto_choice = *p->auto_choice ? p->auto_choice : NULL,
    };
    return annb_provenance_make(&p->provenance, &p->provenance_size, &in, err);
}

/* How the items, and the users and tune vectors, are read. */
static annb_read_opts item_read_opts(const annb_build_opts *o)
{
    annb_read_opts ro = {.id_column = o->id_column, .vector_column = o->vector_column,
                         .ids_path = o->ids_path, .ids_from_rows = o->ids_from_rows,
                         .progress = o->progress, .progress_ctx = o->progress_ctx,
                         .phase = "items", .string_ids = o->string_ids};
    return ro;
}

static annb_read_opts user_read_opts(const annb_build_opts *o)
{
    annb_read_opts ro = item_read_opts(o);
    if (o->user_id_column) ro.id_column = o->user_id_column;
    if (o->user_vector_column) ro.vector_column = o->user_vector_column;
    ro.ids_path = o->user_ids_path;
    ro.phase = "users";
    return ro;
}

/* --tune-vectors: the questions recall is measured on, normalised like the
 * stored vectors. */
static int read_tune_vectors(bundle_parts *p, const annb_build_opts *o, annb_error *err)
{
    annb_read_opts ro = user_read_opts(o);
    ro.ids_path = NULL; /* questions: their IDs do not matter */
    ro.ids_from_rows = 1;
    ro.phase = "tune vectors";
    int rc = read_sorted(&p->tune_vectors, p->tune_digest, o->tune_vectors_path, NULL, o, &ro,
                         NULL, NULL, err);
    if (rc == ANNB_OK && p->tune_vectors.d != p->items.d)
        rc = annb_error_set(err, ANNB_E_DIMENSION, "%s: query vectors have %u values, the items %u",
                            o->tune_vectors_path, p->tune_vectors.d, p->items.d);
    return rc;
}

/* Builds and tunes one index into p->index (desc into META). Graph indexes
 * are built with one thread unless the caller asks for more: Faiss's graph
 * indexes (HNSW, also as an IVF quantizer, and NSG) insert vectors from
 * several threads at once, and the links a vector gets depend on which
 * thread came first. Everything else Faiss trains is k-means (IVF, PQ, SQ,
 * OPQ; fixed seed 1234), where each centroid is summed by one thread in row
 * order, and IVF adds append to each list in row order: the same bytes with
 * any number of threads (test_repro.c). */
static int make_one_index(bundle_parts *p, const char *desc, const annb_build_opts *o,
                          annb_build_report *rep, annb_error *err)
{
    int rc = index_desc(p->meta.index, desc, err);
    if (rc) return rc;
    rep->single_threaded = annb_index_is_graph(p->meta.index) && o->threads <= 1;
    int threads = omp_get_max_threads();
    if (rep->single_threaded) omp_set_num_threads(1);
    /* Questions: the given query vectors, else the users, else items. */
    const sorted_rows *q = p->tune_vectors.n ? &p->tune_vectors : &p->users;
    annb_tune_questions tq = {q->vecs, q->n, q == &p->tune_vectors};
    rc = annb_index_make(&p->index, p->meta.index, o, p->items.vecs, p->items.n, p->items.d, &tq,
                         err);
    omp_set_num_threads(threads);
    return rc;
}

/* Does the tuned index reach the target at every k measured? */
static int index_reached(const annb_tune *t)
{
    if (t->source == ANNB_TUNE_EXACT) return 1;
    for (uint32_t i = 0; i < t->nrows; i++)
        if (t->rows[i].recall < t->target) return 0;
    return t->recall >= t->target;
}

/* index "auto" with the vectors in the budget: every candidate built and
 * tuned, the one reaching the target at the least modelled cost kept
 * (auto_pick.h); the provenance and the report say the comparison. Only
 * the best so far is kept in memory beside the one being built. */
static int auto_compare(bundle_parts *p, char chain[][ANNB_MAX_INDEX_DESC + 1], size_t n,
                        const annb_build_opts *o, annb_build_report *rep, annb_error *err)
{
    annb_build_opts lenient = *o;
    lenient.allow_low_recall = 1; /* measured either way; a miss only loses */
    annb_auto_candidate cand[ANNB_AUTO_MAX_CHAIN];
    annb_index_made best = {0};
    size_t won = n;
    int rc = ANNB_OK;
    for (size_t i = 0; i < n; i++) {
        if ((rc = make_one_index(p, chain[i], &lenient, rep, err))) break;
        const annb_tune *t = &p->index.tune;
        cand[i] = (annb_auto_candidate){
            chain[i], t->source == ANNB_TUNE_EXACT ? NULL : t->ef_search ? "efSearch" : "nprobe",
            t->ef_search ? t->ef_search : t->nprobe, t->recall, index_reached(t), p->index.cost};
        if (annb_auto_pick(cand, i + 1) == i) { /* the best so far */
            if (won < n) annb_index_made_release(&best);
            best = p->index;
            won = i;
        } else {
            annb_index_made_release(&p->index);
        }
        memset(&p->index, 0, sizeof p->index);
    }
    if (rc) {
        if (won < n) annb_index_made_release(&best);
        return rc;
    }
    /* Flat, last, always reaches the target: there is a winner. */
    p->index = best;
    if ((rc = index_desc(p->meta.index, chain[won], err))) return rc;
    rep->single_threaded = annb_index_is_graph(p->meta.index) && o->threads <= 1;
    uint32_t k = p->index.tune.k ? p->index.tune.k : o->recall_k ? o->recall_k : 10;
    char said[700];
    annb_auto_describe(said, sizeof said, cand, n, won, k);
    snprintf(p->auto_choice, sizeof p->auto_choice, "%.700s, the least modelled work to reach "
             "recall@%u %g", said, k, p->index.tune.target);
    snprintf(rep->auto_note, sizeof rep->auto_note, "%.511s", said);
    return ANNB_OK;
}

/* The index: the one asked for, or for "auto" the cheapest candidate that
 * reaches the target (auto_compare), or over a memory budget the first of
 * the candidates (annb_index_auto_chain) that does; exact search, the last
 * candidate, always does. */
static int make_index(bundle_parts *p, const annb_build_opts *o, annb_build_report *rep,
                      annb_error *err)
{
    char chain[ANNB_AUTO_MAX_CHAIN][ANNB_MAX_INDEX_DESC + 1];
    if (!o->index || strcasecmp(o->index, "auto") != 0) {
        char buf[1024];
        annb_index_choose(buf, sizeof buf, o->index, p->items.n, p->items.d, o->max_memory);
        return make_one_index(p, buf, o, rep, err);
    }
    int compare;
    size_t n = annb_index_auto_chain(chain, &compare, p->items.n, p->items.d, o->max_memory,
                                     p->auto_exact_bytes);
    if (compare) return auto_compare(p, chain, n, o, rep, err);
    annb_build_opts strict = *o;
    size_t used = 0;
    for (size_t i = 0;; i++) {
        strict.allow_low_recall = i + 1 == n && o->allow_low_recall;
        int rc = make_one_index(p, chain[i], &strict, rep, err);
        if (rc == ANNB_OK) { /* the provenance says why (SPEC 6.13 `auto`) */
            int w = snprintf(p->auto_choice, sizeof p->auto_choice, "%s, the first of", chain[i]);
            for (size_t j = 0; j < n && w > 0 && (size_t)w < sizeof p->auto_choice; j++)
                w += snprintf(p->auto_choice + w, sizeof p->auto_choice - (size_t)w, "%s %s",
                              j ? "," : "", chain[j]);
            if (w > 0 && (size_t)w < sizeof p->auto_choice)
                snprintf(p->auto_choice + w, sizeof p->auto_choice - (size_t)w,
                         " to reach recall@%u %g%s%.200s%s",
                         p->index.tune.k ? p->index.tune.k : o->recall_k ? o->recall_k : 10,
                         p->index.tune.target, used ? "; passed over: " : "",
                         used ? rep->auto_note + strlen("passed over ") : "", "");
        }
        if (rc != ANNB_E_RECALL || i + 1 == n) return rc;
        /* Keep what was passed over, for the report: the message up to its advice. */
        const char *msg = err ? err->message : "target recall not reached";
        const char *cut = strstr(msg, "; choose");
        int len = cut ? (int)(cut - msg) : (int)strlen(msg);
        int w = snprintf(rep->auto_note + used, sizeof rep->auto_note - used, "%s%.*s",
                         used ? "; " : "passed over ", len, msg);
        if (w > 0) used = used + (size_t)w < sizeof rep->auto_note ? used + (size_t)w
                                                                  : sizeof rep->auto_note - 1;
        if (err) memset(err, 0, sizeof *err);
    }
}

static void report_recall(annb_build_report *rep, const annb_tune *t)
{
    annb_recall_from_tune(&rep->recall, t);
    rep->recall_reached = t->source == ANNB_TUNE_EXACT || t->recall >= t->target;
    rep->recall_count = t->nrows;
    for (uint32_t i = 0; i < t->nrows; i++) {
        annb_recall_from_tune_row(&rep->recalls[i], t, i);
        if (rep->recalls[i].recall < t->target) rep->recall_reached = 0;
    }
}
void annb_temp_files_remove(void) { annbf_temp_remove_all(); }

/* annb_build and annb_build_arrays: the items and users each from a file
 * (path) or from memory (rows, with path NULL). */
static int build_from(annb_build_report *report, const char *items_path,
                      const annb_matrix *item_rows, const annb_matrix *user_rows,
                      const char *catalog_path, const char *output_path,
                      const annb_build_opts *opts, const annb_build_test *test,
                      annb_error *err);

/* The bytes of the caller's report: annb_build_report grew in 0.2 (the
 * dropped-zero counts) without a struct_size of its own, so a caller built
 * against 0.1 has a shorter one. Its opts tell: the new fields are written
 * only for opts of 0.2's size or more (NULL opts: 0.1's fields only). */
static size_t report_size(const annb_build_opts *opts)
{
    return opts && opts->struct_size >= sizeof(annb_build_opts) ? sizeof(annb_build_report)
                                                                : ANNB_BUILD_REPORT_SIZE_0_1;
}

static void report_clear(annb_build_report *report, const annb_build_opts *opts)
{
    if (report) memset(report, 0, report_size(opts));
}

int annb_build(annb_build_report *report, const char *items_path, const char *catalog_path,
               const char *output_path, const annb_build_opts *opts, annb_error *err)
{
    return annb_build_written(report, items_path, catalog_path, output_path, opts, 0, err);
}

int annb_build_arrays(annb_build_report *report, const annb_matrix *items,
                      const annb_matrix *users, const char *catalog_path,
                      const char *output_path, const annb_build_opts *opts, annb_error *err)
{
    report_clear(report, opts);
    if (!items)
        return annb_error_set(err, ANNB_E_INVALID, "annb_build_arrays: the items are required");
    if (opts && opts->struct_size >= ANNB_BUILD_OPTS_SIZE_0_1 && users && opts->users_path)
        return annb_error_set(err, ANNB_E_INVALID, "annb_build_arrays: users given twice, as "
                              "arrays and as %s", opts->users_path);
    if (opts && opts->struct_size > offsetof(annb_build_opts, user_ids_path) &&
        (opts->ids_path || (users && opts->user_ids_path)))
        return annb_error_set(err, ANNB_E_INVALID, "annb_build_arrays: the arrays hold the IDs; "
                              "an IDs file (%s) is for a .npy input",
                              opts->ids_path ? opts->ids_path : opts->user_ids_path);
    /* Options that only say how to read the items' (or users') file would
     * be ignored: refused, so that a caller never believes they applied. */
    if (opts && opts->struct_size > offsetof(annb_build_opts, ids_from_rows) &&
        (opts->id_column || opts->vector_column ||
         (users && (opts->user_id_column || opts->user_vector_column))))
        return annb_error_set(err, ANNB_E_INVALID, "annb_build_arrays: column options are for "
                              "files; the arrays have no columns");
    return build_from(report, NULL, items, users, catalog_path, output_path, opts, NULL, err);
}

void annb_build_opts_init(annb_build_opts *opts)
{
    static const annb_build_opts init = ANNB_BUILD_OPTS_INIT;
    if (opts) *opts = init;
}

int annb_build_written(annb_build_report *report, const char *items_path,
                       const char *catalog_path, const char *output_path,
                       const annb_build_opts *opts, int named_temp, annb_error *err)
{
    annb_build_test t = {named_temp, 0};
    return annb_build_tested(report, items_path, catalog_path, output_path, opts, &t, err);
}

int annb_build_tested(annb_build_report *report, const char *items_path,
                      const char *catalog_path, const char *output_path,
                      const annb_build_opts *opts, const annb_build_test *test, annb_error *err)
{
    if (!items_path) {
        report_clear(report, opts);
        return annb_error_set(err, ANNB_E_INVALID, "annb_build: items and output paths are required");
    }
    return build_from(report, items_path, NULL, NULL, catalog_path, output_path, opts, test, err);
}

static int build_from(annb_build_report *report, const char *items_path,
                      const annb_matrix *item_rows, const annb_matrix *user_rows,
                      const char *catalog_path, const char *output_path,
                      const annb_build_opts *opts, const annb_build_test *test,
                      annb_error *err)
{
    annb_build_opts defaults = ANNB_BUILD_OPTS_INIT;
    const annb_build_opts *caller_opts = opts; /* its size says the report's */
    annb_build_report rep = {0};
    annb_catalog cat = {0};
    bundle_parts p = {0};
    int rc;

    report_clear(report, opts);
    if ((!items_path && !item_rows) || !output_path)
        return annb_error_set(err, ANNB_E_INVALID, "annb_build: items and output paths are required");
    if (opts) { /* fields past the caller's struct_size keep their defaults */
        if (opts->struct_size < ANNB_BUILD_OPTS_SIZE_0_1)
            return annb_error_set(err, ANNB_E_INVALID, "annb_build: opts.struct_size too small");
        memcpy(&defaults, opts,
               opts->struct_size < sizeof defaults ? opts->struct_size : sizeof defaults);
        defaults.struct_size = sizeof defaults;
    }
    opts = &defaults;
    if (!annb_metric_name(opts->metric))
        return annb_error_set(err, ANNB_E_INVALID, "annb_build: unknown metric %d", (int)opts->metric);
    if (opts->interactions_path && !opts->users_path && !user_rows)
        return annb_error_set(err, ANNB_E_INVALID, "interactions need the users' vectors too");
    if (opts->shard_count > 1 && opts->shard_index >= opts->shard_count)
        return annb_error_set(err, ANNB_E_INVALID, "shard %u/%u: the index must be below the count",
                              opts->shard_index, opts->shard_count);
    const char *const columns[] = {opts->id_column, opts->vector_column, opts->user_id_column,
                                   opts->user_vector_column};
    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++)
        if (columns[i] && !*columns[i])
            return annb_error_set(err, ANNB_E_INVALID, "annb_build: a column option is empty "
                                  "(expected a header name or a 1-based column number)");
    if (opts->expect_sha256 && !expect_ok(opts->expect_sha256))
        return annb_error_set(err, ANNB_E_INVALID, "annb_build: expect_sha256 must be 64 hex "
                              "digits");
    if (strcmp(output_path, "-") == 0)
        return annb_error_set(err, ANNB_E_INVALID, "-: a bundle is written to a regular file "
                              "(it is checksummed, memory-mapped and replaced atomically), not "
                              "to stdout: give a file name, then copy or stream that file");
    if ((rc = stdin_once(items_path, catalog_path, opts, err))) return rc;
    if ((rc = check_output(output_path, items_path, catalog_path, opts, err))) return rc;
    p.opts = opts;
    p.input_count = build_inputs(p.inputs, items_path, catalog_path, opts);
    p.named_temp = test ? test->named_temp : 0;
    p.auto_exact_bytes = test && test->auto_exact_bytes ? test->auto_exact_bytes
                                                        : ANNB_AUTO_EXACT_BYTES;
    /* omp_set_num_threads sets the calling thread's setting: restored below,
     * so the caller's own OpenMP code is left as it was. */
    int caller_threads = omp_get_max_threads();
    if (opts->threads > 0) omp_set_num_threads(opts->threads);

    annb_read_opts item_ro = item_read_opts(opts), user_ro = user_read_opts(opts);
    const char *users_name = user_rows ? "users" : opts->users_path;
    if ((rc = read_sorted(&p.items, p.items_digest, item_rows ? "items" : items_path, item_rows,
                          opts, &item_ro, &rep.items_in_other_shards, &rep.items_dropped_zero,
                          err)))
        goto out;
    if (users_name && (rc = read_sorted(&p.users, p.users_digest, users_name, user_rows, opts,
                                        &user_ro, NULL, &rep.users_dropped_zero, err)))
        goto out;
    if (p.users.n && p.users.d != p.items.d) {
        rc = annb_error_set(err, ANNB_E_DIMENSION, "%s: user vectors have %u values, the items %u",
                            users_name, p.users.d, p.items.d);
        goto out;
    }
    if (opts->interactions_path && (rc = read_seen(&p, opts->interactions_path, &rep, err)))
        goto out;
    if (catalog_path && ((rc = annb_catalog_read_keyed(&cat, catalog_path, p.items.src != NULL,
                                                       err)) ||
                         (rc = annb_digest_catalog(p.catalog_digest, &cat, err))))
        goto out;
    if (opts->tune_vectors_path && (rc = read_tune_vectors(&p, opts, err))) goto out;

    p.meta.dimension = p.items.d;
    p.meta.count = p.items.n;
    p.meta.metric = opts->metric;
    if (opts->metric == ANNB_METRIC_COSINE) p.meta.flags |= ANNB_META_FLAG_NORMALIZED;
    if ((rc = make_index(&p, opts, &rep, err))) goto out;
    if ((rc = make_provenance(&p, opts, err))) goto out;
    if (p.index.mips_l2) p.meta.flags |= ANNB_META_FLAG_MIPS_L2;

    snprintf(rep.index, sizeof rep.index, "%s", p.meta.index);
    report_recall(&rep, &p.index.tune);
    rep.items = p.items.n;
    rep.dimension = p.items.d;
    rep.users = p.users.n;
    rep.catalog_entries = cat.count;
    p.catalog = catalog_path ? &cat : NULL;
    rc = write_bundle(output_path, &p, &rep, err);
out:
    omp_set_num_threads(caller_threads);
    if (rc == ANNB_OK && report) memcpy(report, &rep, report_size(caller_opts));
    annb_catalog_release(&cat);
    parts_release(&p);
    return rc;
}
