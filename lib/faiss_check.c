/* faiss_check.c - walking a Faiss 1.7.3 blob as faiss/impl/index_read.cpp
 * reads it, refusing anything that reader or the searches after it would
 * trust wrongly (see faiss_check.h; SPEC 6.17). Field order and widths are
 * those of read_index, read_index_header, read_HNSW, read_ivf_header,
 * read_InvertedLists, read_ProductQuantizer, read_ScalarQuantizer and
 * read_VectorTransform in that file. */
#include "faiss_check.h"
#include "annb.h"
#include "le.h" /* format/: the little-endian helpers of the format layer */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct cur {
    const uint8_t *p;
    size_t size, pos;
    annb_faiss_check_out *out;
} cur;

/* What an index header (read_index_header) says, or what one must say
 * (-1: anything). */
typedef struct hdr {
    int64_t d, ntotal, metric;
} hdr;

/* Which index types may stand at a place (HNSW storage, IVF quantizer). */
enum { ALLOW_FLAT = 1, ALLOW_PQ = 2, ALLOW_SQ = 4, ALLOW_ANY = 0xff };

#define MAX_DEPTH 4 /* IDMap(PreTransform(HNSW(storage))) */
#define MAX_D 65537 /* annb's dimension cap, plus MIPS-to-L2's one */

static int fail(cur *c, uint64_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->out->message, sizeof c->out->message, fmt, ap);
    va_end(ap);
    c->out->bad_at = at;
    return ANNB_E_CORRUPT;
}

static void mark(cur *c, const char *role, const char *field, uint64_t at)
{
    annb_faiss_check_out *o = c->out;
    if (!o->marks || o->mark_count == o->mark_cap) return;
    annb_faiss_mark *m = &o->marks[o->mark_count++];
    snprintf(m->name, sizeof m->name, "%s.%s", role, field);
    m->at = at;
}

/* Claims n bytes at the cursor; *at is where they start. */
static int take(cur *c, uint64_t n, const char *what, uint64_t *at)
{
    *at = c->pos;
    if (n > c->size - c->pos)
        return fail(c, c->pos, "%s: %llu bytes needed, %llu remain", what,
                    (unsigned long long)n, (unsigned long long)(c->size - c->pos));
    c->pos += (size_t)n;
    return ANNB_OK;
}

/* An n-byte (1, 4 or 8) little-endian field, with format/'s helpers. */
static uint64_t le(const uint8_t *p, int n)
{
    return n == 8 ? le64_get(p) : n == 4 ? le32_get(p) : p[0];
}

static int64_t i32_at(const cur *c, uint64_t at) { return (int32_t)(uint32_t)le(c->p + at, 4); }
static uint64_t u64_at(const cur *c, uint64_t at) { return le(c->p + at, 8); }

/* Reads an n-byte little-endian field, marked role.field. */
static int rd(cur *c, const char *role, const char *field, int n, uint64_t *v, uint64_t *at)
{
    uint64_t a;
    int rc = take(c, (uint64_t)n, field, &a);
    if (rc) return rc;
    mark(c, role, field, a);
    *v = le(c->p + a, n);
    if (at) *at = a;
    return ANNB_OK;
}

static int rd_i32(cur *c, const char *role, const char *field, int64_t lo, int64_t hi,
                  int64_t *v)
{
    uint64_t u, at;
    int rc = rd(c, role, field, 4, &u, &at);
    if (rc) return rc;
    *v = (int32_t)(uint32_t)u;
    if (*v < lo || *v > hi)
        return lo == hi ? fail(c, at, "%s %s is %lld, expected %lld", role, field, (long long)*v,
                               (long long)lo)
                        : fail(c, at, "%s %s is %lld, expected %lld..%lld", role, field,
                               (long long)*v, (long long)lo, (long long)hi);
    return ANNB_OK;
}

static int rd_u64(cur *c, const char *role, const char *field, uint64_t lo, uint64_t hi,
                  uint64_t *v)
{
    uint64_t at;
    int rc = rd(c, role, field, 8, v, &at);
    if (rc) return rc;
    if (*v < lo || *v > hi)
        return lo == hi ? fail(c, at, "%s %s is %llu, expected %llu", role, field,
                               (unsigned long long)*v, (unsigned long long)lo)
                        : fail(c, at, "%s %s is %llu, expected %llu..%llu", role, field,
                               (unsigned long long)*v, (unsigned long long)lo,
                               (unsigned long long)hi);
    return ANNB_OK;
}

/* A C++ bool: any byte but 0 or 1 is undefined behaviour once loaded. */
static int rd_bool(cur *c, const char *role, const char *field, int *v)
{
    int64_t b;
    uint64_t u, at;
    int rc = rd(c, role, field, 1, &u, &at);
    if (rc) return rc;
    b = (int64_t)u;
    if (b > 1) return fail(c, at, "%s %s is %lld, expected a bool (0 or 1)", role, field, (long long)b);
    *v = (int)b;
    return ANNB_OK;
}

/* READVECTOR: a size_t count, then count elements of `elem` bytes; the
 * count is bounded by the bytes that remain before anything else. With
 * want != UINT64_MAX the count must be exactly want. */
static int rd_vec(cur *c, const char *role, const char *field, uint64_t elem, uint64_t want,
                  uint64_t *count, uint64_t *start)
{
    uint64_t at;
    int rc = take(c, 8, field, &at);
    if (rc) return rc;
    uint64_t n = u64_at(c, at);
    if (want != UINT64_MAX && n != want)
        return fail(c, at, "%s %s holds %llu elements, expected %llu", role, field,
                    (unsigned long long)n, (unsigned long long)want);
    if (n > (c->size - c->pos) / elem)
        return fail(c, at, "%s %s declares %llu elements of %llu bytes, %llu bytes remain", role,
                    field, (unsigned long long)n, (unsigned long long)elem,
                    (unsigned long long)(c->size - c->pos));
    *start = c->pos;
    mark(c, role, field, c->pos);
    c->pos += (size_t)(n * elem);
    if (count) *count = n;
    return ANNB_OK;
}

static int fourcc_is(const uint8_t *p, const char *s) { return memcmp(p, s, 4) == 0; }

static void fourcc_text(char out[17], const uint8_t *p)
{
    size_t k = 0;
    for (int i = 0; i < 4; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\') out[k++] = (char)p[i];
        else k += (size_t)snprintf(out + k, 5, "\\x%02x", p[i]);
    }
    out[k] = '\0';
}

static int unknown(cur *c, uint64_t at, const char *role)
{
    char t[17];
    fourcc_text(t, c->p + at);
    c->out->unknown_type = 1;
    return fail(c, at, "%s type '%s' is not one annb checks; open with ANNB_OPEN_TRUST_FAISS / "
                "--trust-faiss if the bundle is trusted", role, t);
}

/* read_index_header, checked against want. */
static int header(cur *c, const char *role, const hdr *want, hdr *got)
{
    uint64_t u, at;
    int64_t v;
    int b, rc;
    if ((rc = rd_i32(c, role, "d", 1, MAX_D, &got->d))) return rc;
    if (want->d >= 0 && got->d != want->d)
        return fail(c, c->pos - 4, "%s d is %lld, expected %lld", role, (long long)got->d,
                    (long long)want->d);
    if ((rc = rd(c, role, "ntotal", 8, &u, &at))) return rc;
    got->ntotal = (int64_t)u;
    if (want->ntotal >= 0 ? got->ntotal != want->ntotal : (got->ntotal < 0 || u > UINT32_MAX))
        return fail(c, at, "%s ntotal is %lld, expected %lld", role, (long long)got->ntotal,
                    (long long)(want->ntotal >= 0 ? want->ntotal : UINT32_MAX));
    if ((rc = take(c, 16, "dummy fields", &at))) return rc; /* two unused idx_t */
    if ((rc = rd_bool(c, role, "is_trained", &b))) return rc;
    /* Metric types above 1 carry a metric_arg annb never writes. */
    if ((rc = rd_i32(c, role, "metric", 0, 1, &v))) return rc;
    got->metric = v;
    if (want->metric >= 0 && v != want->metric)
        return fail(c, c->pos - 4, "%s metric is %s, expected %s", role,
                    v ? "L2" : "inner product", want->metric ? "L2" : "inner product");
    return ANNB_OK;
}

static int check_index(cur *c, const char *role, const hdr *want, unsigned allow, int depth,
                       hdr *got, uint64_t *code_size);

/* IndexFlat (IxF2, IxFI, IxFl): READXBVECTOR counts 4-byte words. */
static int flat(cur *c, const char *role, const hdr *h)
{
    uint64_t n, s;
    return rd_vec(c, role, "codes", 4, (uint64_t)h->ntotal * (uint64_t)h->d, &n, &s);
}

typedef struct pq_info {
    uint64_t M, nbits, code_size;
} pq_info;

/* read_ProductQuantizer; set_derived_values throws unless M divides d. */
static int product_quantizer(cur *c, const char *role, int64_t d, uint64_t max_nbits, pq_info *pq)
{
    uint64_t pd, n, s, at;
    int rc;
    if ((rc = rd_u64(c, role, "pq.d", (uint64_t)d, (uint64_t)d, &pd)) ||
        (rc = rd_u64(c, role, "pq.M", 1, (uint64_t)d, &pq->M)))
        return rc;
    at = c->pos - 8;
    if ((uint64_t)d % pq->M)
        return fail(c, at, "%s pq.M %llu does not divide d %lld", role,
                    (unsigned long long)pq->M, (long long)d);
    if ((rc = rd_u64(c, role, "pq.nbits", 1, max_nbits, &pq->nbits))) return rc;
    pq->code_size = (pq->M * pq->nbits + 7) / 8;
    return rd_vec(c, role, "pq.centroids", 4, (uint64_t)d << pq->nbits, &n, &s);
}

/* read_ScalarQuantizer: set_derived_sizes recomputes code_size from the
 * type, and the quantizer reads `trained` by the type's layout. */
static int scalar_quantizer(cur *c, const char *role, int64_t d, uint64_t *code_size)
{
    int64_t qtype, rs;
    uint64_t sd, cs, n, s, at;
    int rc;
    if ((rc = rd_i32(c, role, "sq.qtype", 0, 6, &qtype)) ||
        (rc = rd_i32(c, role, "sq.rangestat", 0, 3, &rs)) ||
        (rc = take(c, 4, "sq.rangestat_arg", &at)) ||
        (rc = rd_u64(c, role, "sq.d", (uint64_t)d, (uint64_t)d, &sd)))
        return rc;
    uint64_t ud = (uint64_t)d;
    /* QT_8bit, 4bit, 8bit_uniform, 4bit_uniform, fp16, 8bit_direct, 6bit */
    static const int trained_kind[7] = {2, 2, 1, 1, 0, 0, 2}; /* 2: per dim, 1: shared */
    uint64_t want_cs = qtype == 1 || qtype == 3 ? (ud + 1) / 2
                     : qtype == 4               ? ud * 2
                     : qtype == 6               ? (ud * 6 + 7) / 8
                                                : ud;
    uint64_t want_trained = trained_kind[qtype] == 2 ? 2 * ud : trained_kind[qtype] == 1 ? 2 : 0;
    if ((rc = rd_u64(c, role, "sq.code_size", want_cs, want_cs, &cs)) ||
        (rc = rd_vec(c, role, "sq.trained", 4, want_trained, &n, &s)))
        return rc;
    *code_size = cs;
    return ANNB_OK;
}

/* read_InvertedLists for ArrayInvertedLists ("ilar"): list sizes add up to
 * ntotal, every ID is a row. A sparse size table ("sprs", written when
 * most lists are empty) must name its lists in ascending order, as
 * write_InvertedLists does: the lists' data follow in that order. */
static int inverted_lists(cur *c, uint64_t nlist, uint64_t code_size, int64_t ntotal)
{
    const char *r = "invlists";
    uint64_t at, v, type_at, count, sizes;
    int rc;
    if ((rc = take(c, 4, "invlists type", &at))) return rc;
    if (!fourcc_is(c->p + at, "ilar")) return unknown(c, at, "inverted lists");
    if ((rc = rd_u64(c, r, "nlist", nlist, nlist, &v)) ||
        (rc = rd_u64(c, r, "code_size", code_size, code_size, &v)) ||
        (rc = take(c, 4, "list size table type", &type_at)))
        return rc;
    int full = fourcc_is(c->p + type_at, "full");
    if (!full && !fourcc_is(c->p + type_at, "sprs"))
        return fail(c, type_at, "list size table type is not 'full' or 'sprs'");
    if ((rc = rd_vec(c, r, "sizes", 8, full ? nlist : UINT64_MAX, &count, &sizes))) return rc;
    if (!full && count % 2)
        return fail(c, sizes - 8, "sparse list size table holds %llu words, expected pairs",
                    (unsigned long long)count);
    uint64_t total = 0, lists = full ? count : count / 2;
    int64_t prev = -1;
    for (uint64_t i = 0; i < lists; i++) {
        uint64_t e = full ? sizes + 8 * i : sizes + 16 * i;
        uint64_t list = full ? i : u64_at(c, e), n = u64_at(c, full ? e : e + 8);
        if (!full && (list >= nlist || (int64_t)list <= prev))
            return fail(c, e, "sparse list number %llu not ascending below nlist %llu",
                        (unsigned long long)list, (unsigned long long)nlist);
        prev = (int64_t)list;
        if (n > (uint64_t)ntotal - total)
            return fail(c, full ? e : e + 8, "list %llu holds %llu entries: the lists hold more "
                        "than ntotal %lld", (unsigned long long)list, (unsigned long long)n,
                        (long long)ntotal);
        total += n;
    }
    if (total != (uint64_t)ntotal)
        return fail(c, sizes, "list sizes add up to %llu, expected ntotal %lld",
                    (unsigned long long)total, (long long)ntotal);
    for (uint64_t i = 0; i < lists; i++) {
        uint64_t e = full ? sizes + 8 * i : sizes + 16 * i + 8, n = u64_at(c, e), ids;
        if (n == 0) continue;
        /* n <= ntotal <= 2^32 and code_size <= 2^18: no overflow. */
        if ((rc = take(c, n * code_size, "list codes", &at)) ||
            (rc = take(c, n * 8, "list IDs", &ids)))
            return rc;
        mark(c, r, "ids", ids);
        for (uint64_t j = 0; j < n; j++) {
            int64_t id = (int64_t)u64_at(c, ids + 8 * j);
            if (id < 0 || id >= ntotal)
                return fail(c, ids + 8 * j, "list ID %lld out of range 0..%lld", (long long)id,
                            (long long)ntotal - 1);
        }
    }
    return ANNB_OK;
}

/* read_ivf_header: the quantizer is a flat index of exactly nlist
 * centroids (more would send list numbers past the lists, inside Faiss's
 * OpenMP region); no direct map (annb never asks for one). */
static int ivf_header(cur *c, const char *role, const hdr *want, int depth, hdr *h,
                      uint64_t *nlist)
{
    uint64_t nprobe, at, v, n, s;
    int rc;
    if ((rc = header(c, role, want, h)) ||
        (rc = rd_u64(c, role, "nlist", 1, 1u << 24, nlist)) ||
        (rc = rd_u64(c, role, "nprobe", 1, *nlist, &nprobe)))
        return rc;
    hdr qwant = {h->d, (int64_t)*nlist, -1}, q;
    if ((rc = check_index(c, "quantizer", &qwant, ALLOW_FLAT, depth + 1, &q, &v))) return rc;
    if ((rc = rd(c, role, "direct_map", 1, &v, &at))) return rc;
    if (v != 0) return fail(c, at, "%s direct map type %llu, expected none (0)", role,
                            (unsigned long long)v);
    return rd_vec(c, role, "direct_map.array", 8, 0, &n, &s);
}

static int ivf(cur *c, const uint8_t *t, const char *role, const hdr *want, int depth, hdr *h)
{
    uint64_t nlist, code_size, cs, cs_at = 0;
    int by_residual = 0, rc;
    pq_info pq;
    if ((rc = ivf_header(c, role, want, depth, h, &nlist))) return rc;
    if (fourcc_is(t, "IwFl")) {
        code_size = (uint64_t)h->d * 4;
    } else if (fourcc_is(t, "IwPQ")) {
        if ((rc = rd_bool(c, role, "by_residual", &by_residual)) ||
            (rc = rd(c, role, "code_size", 8, &cs, &cs_at)) ||
            (rc = product_quantizer(c, role, h->d, 16, &pq)))
            return rc;
        code_size = pq.code_size;
        if (cs != code_size)
            return fail(c, cs_at, "%s code_size %llu, expected %llu for M %llu x %llu bits", role,
                        (unsigned long long)cs, (unsigned long long)code_size,
                        (unsigned long long)pq.M, (unsigned long long)pq.nbits);
        /* by_residual: Faiss builds nlist x M x 2^nbits floats at load. */
        if (by_residual && nlist * pq.M > (ANNB_FAISS_MAX_PQ_TABLE_BYTES / 4) >> pq.nbits)
            return fail(c, c->pos, "%s precomputed table of %llu x %llu x 2^%llu floats above %u "
                        "bytes", role, (unsigned long long)nlist, (unsigned long long)pq.M,
                        (unsigned long long)pq.nbits, ANNB_FAISS_MAX_PQ_TABLE_BYTES);
    } else { /* IwSQ, IwSq */
        if ((rc = scalar_quantizer(c, role, h->d, &code_size)) ||
            (rc = rd_u64(c, role, "code_size", code_size, code_size, &cs)))
            return rc;
        if (fourcc_is(t, "IwSq") && (rc = rd_bool(c, role, "by_residual", &by_residual)))
            return rc;
    }
    return inverted_lists(c, nlist, code_size, h->ntotal);
}

/* read_HNSW, then the storage: every reference a search follows in range,
 * laid out as HNSW::prepare_level_tab lays it out. */
static int hnsw(cur *c, const uint8_t *t, const char *role, const hdr *want, int depth, hdr *h)
{
    const char *r = "hnsw";
    uint64_t L, cum, lev, off, nnb, nb, v;
    int64_t n, ep, ml, x;
    int rc;
    if ((rc = header(c, role, want, h))) return rc;
    n = h->ntotal;
    if (n > INT32_MAX) return fail(c, c->pos, "%s ntotal %lld above HNSW's 2^31 - 1", role, (long long)n);
    if ((rc = rd_vec(c, r, "assign_probas", 8, UINT64_MAX, &L, &v))) return rc;
    if (L < 1 || L > 64)
        return fail(c, v - 8, "hnsw assign_probas holds %llu levels, expected 1..64",
                    (unsigned long long)L);
    if ((rc = rd_vec(c, r, "cum_nneighbor_per_level", 4, L + 1, &v, &cum))) return rc;
    for (uint64_t i = 0; i <= L; i++) {
        int64_t a = i32_at(c, cum + 4 * i), prev = i ? i32_at(c, cum + 4 * (i - 1)) : 0;
        if ((i == 0 && a != 0) || a < prev || a > 65536)
            return fail(c, cum + 4 * i, "hnsw cum_nneighbor_per_level[%llu] is %lld, expected "
                        "%s", (unsigned long long)i, (long long)a,
                        i ? "ascending up to 65536" : "0");
    }
    if ((rc = rd_vec(c, r, "levels", 4, (uint64_t)n, &v, &lev)) ||
        (rc = rd_vec(c, r, "offsets", 8, (uint64_t)n + 1, &v, &off)))
        return rc;
    int64_t top = 0;
    if (u64_at(c, off) != 0) return fail(c, off, "hnsw offsets[0] is not 0");
    for (int64_t i = 0; i < n; i++) {
        int64_t l = i32_at(c, lev + 4 * (uint64_t)i);
        if (l < 1 || (uint64_t)l > L)
            return fail(c, lev + 4 * (uint64_t)i, "hnsw level of node %lld is %lld, expected "
                        "1..%llu", (long long)i, (long long)l, (unsigned long long)L);
        if (l > top) top = l;
        uint64_t a = u64_at(c, off + 8 * (uint64_t)i), b = u64_at(c, off + 8 * (uint64_t)i + 8);
        uint64_t span = (uint64_t)i32_at(c, cum + 4 * (uint64_t)l);
        if (b < a || b - a != span)
            return fail(c, off + 8 * (uint64_t)i + 8, "hnsw offsets[%lld] is %llu, expected "
                        "%llu (offsets[%lld] + the node's %llu neighbour slots)", (long long)i + 1,
                        (unsigned long long)b, (unsigned long long)(a + span), (long long)i,
                        (unsigned long long)span);
    }
    if ((rc = rd_vec(c, r, "neighbors", 4, u64_at(c, off + 8 * (uint64_t)n), &nnb, &nb))) return rc;
    /* A search reads node v's slots for level l as if v had that level: a
     * neighbour at level l must exist at level l (past the last node's
     * slots otherwise). The offsets make the slots exactly nnb. */
    for (int64_t i = 0; i < n; i++) {
        uint64_t base = u64_at(c, off + 8 * (uint64_t)i);
        int64_t levels_i = i32_at(c, lev + 4 * (uint64_t)i);
        for (int64_t l = 0; l < levels_i; l++) {
            uint64_t from = base + (uint64_t)i32_at(c, cum + 4 * (uint64_t)l);
            uint64_t to = base + (uint64_t)i32_at(c, cum + 4 * (uint64_t)(l + 1));
            for (uint64_t j = from; j < to; j++) {
                int64_t id = i32_at(c, nb + 4 * j);
                if (id < -1 || id >= n)
                    return fail(c, nb + 4 * j, "hnsw neighbour ID %lld out of range -1..%lld",
                                (long long)id, (long long)n - 1);
                if (id >= 0 && i32_at(c, lev + 4 * (uint64_t)id) <= l)
                    return fail(c, nb + 4 * j, "hnsw neighbour %lld of node %lld at level %lld "
                                "has no level %lld", (long long)id, (long long)i, (long long)l,
                                (long long)l);
            }
        }
    }
    if ((rc = rd_i32(c, r, "entry_point", n ? 0 : -1, n - 1, &ep)) ||
        (rc = rd_i32(c, r, "max_level", top - 1, top - 1, &ml)))
        return rc;
    if (n && i32_at(c, lev + 4 * (uint64_t)ep) - 1 != ml)
        return fail(c, c->pos - 4, "hnsw max_level %lld is not the entry point's level %lld",
                    (long long)ml, (long long)i32_at(c, lev + 4 * (uint64_t)ep) - 1);
    if ((rc = rd_i32(c, r, "efConstruction", 1, ANNB_FAISS_MAX_EF_SEARCH, &x)) ||
        (rc = rd_i32(c, r, "efSearch", 1, ANNB_FAISS_MAX_EF_SEARCH, &x)) ||
        (rc = rd_i32(c, r, "upper_beam", 1, ANNB_FAISS_MAX_EF_SEARCH, &x)))
        return rc;
    unsigned allow = fourcc_is(t, "IHNf") ? ALLOW_FLAT : fourcc_is(t, "IHNs") ? ALLOW_SQ : ALLOW_PQ;
    hdr sw = *h, s;
    /* IHNp: compute_sdc_table builds M x 2^nbits x 2^nbits floats: at most 8 bits. */
    return check_index(c, "storage", &sw, allow | (allow == ALLOW_PQ ? 0x100 : 0), depth + 1, &s, &v);
}

/* read_VectorTransform for the linear ones (rrot, PCA*, LTra, Viqm) and
 * RmDT, VNrm, VCnt; the chain's dimensions must join up. */
static int transform(cur *c, int64_t d_in_want, int64_t *d_out)
{
    const char *r = "transform";
    uint64_t at, A = 0, B = 0, M = 0, s = 0, v;
    int64_t x, d_in;
    int b, have_bias = 0, linear = 0, rc;
    if ((rc = take(c, 4, "transform type", &at))) return rc;
    const uint8_t *t = c->p + at;
    if (fourcc_is(t, "PCAm") || fourcc_is(t, "PcAm") || fourcc_is(t, "Pcam")) {
        if ((rc = take(c, 4, "eigen_power", &v))) return rc;
        if (fourcc_is(t, "Pcam") && (rc = take(c, 4, "epsilon", &v))) return rc;
        if ((rc = rd_bool(c, r, "random_rotation", &b))) return rc;
        if (!fourcc_is(t, "PCAm") && (rc = rd_i32(c, r, "balanced_bins", INT32_MIN, INT32_MAX, &x)))
            return rc;
        if ((rc = rd_vec(c, r, "mean", 4, UINT64_MAX, &v, &s)) ||
            (rc = rd_vec(c, r, "eigenvalues", 4, UINT64_MAX, &v, &s)) ||
            (rc = rd_vec(c, r, "PCAMat", 4, UINT64_MAX, &v, &s)))
            return rc;
        linear = 1;
    } else if (fourcc_is(t, "Viqm")) {
        if ((rc = take(c, 8, "max_iter, seed", &v))) return rc;
        linear = 1;
    } else if (fourcc_is(t, "rrot") || fourcc_is(t, "LTra")) {
        linear = 1;
    } else if (fourcc_is(t, "RmDT")) {
        if ((rc = rd_vec(c, r, "map", 4, UINT64_MAX, &M, &s))) return rc;
    } else if (fourcc_is(t, "VNrm")) {
        if ((rc = take(c, 4, "norm", &v))) return rc;
        float norm;
        uint32_t w = (uint32_t)le(c->p + v, 4);
        memcpy(&norm, &w, 4);
        if (norm != 2.0f) return fail(c, v, "normalization transform norm is not 2 (L2)");
    } else if (fourcc_is(t, "VCnt")) {
        if ((rc = rd_vec(c, r, "mean", 4, UINT64_MAX, &M, &s))) return rc;
    } else {
        return unknown(c, at, "vector transform");
    }
    uint64_t maps = s;
    if (linear && ((rc = rd_bool(c, r, "have_bias", &have_bias)) ||
                   (rc = rd_vec(c, r, "A", 4, UINT64_MAX, &A, &s)) ||
                   (rc = rd_vec(c, r, "b", 4, UINT64_MAX, &B, &s))))
        return rc;
    if ((rc = rd_i32(c, r, "d_in", d_in_want, d_in_want, &d_in)) ||
        (rc = rd_i32(c, r, "d_out", 1, MAX_D, d_out)) ||
        (rc = rd_bool(c, r, "is_trained", &b)))
        return rc;
    at = c->pos - 9; /* d_in */
    if (!b) return fail(c, c->pos - 1, "transform not trained");
    uint64_t io = (uint64_t)d_in * (uint64_t)*d_out;
    if (linear && (A != io || (have_bias ? B != (uint64_t)*d_out : B != 0 && B != (uint64_t)*d_out)))
        return fail(c, at, "linear transform %lld -> %lld holds a matrix of %llu and a bias of "
                    "%llu values, expected %llu and %lld", (long long)d_in, (long long)*d_out,
                    (unsigned long long)A, (unsigned long long)B, (unsigned long long)io,
                    (long long)*d_out);
    if (!linear && !fourcc_is(t, "RmDT") && (*d_out != d_in || (fourcc_is(t, "VCnt") && M != (uint64_t)d_in)))
        return fail(c, at, "transform %lld -> %lld, expected %lld -> %lld%s", (long long)d_in,
                    (long long)*d_out, (long long)d_in, (long long)d_in,
                    fourcc_is(t, "VCnt") ? " with a mean of as many values" : "");
    if (fourcc_is(t, "RmDT")) {
        if (M != (uint64_t)*d_out)
            return fail(c, at, "dimension map of %llu entries, expected d_out %lld",
                        (unsigned long long)M, (long long)*d_out);
        for (uint64_t i = 0; i < M; i++) {
            int64_t m = i32_at(c, maps + 4 * i);
            if (m < -1 || m >= d_in)
                return fail(c, maps + 4 * i, "dimension map entry %lld out of range -1..%lld",
                            (long long)m, (long long)d_in - 1);
        }
    }
    return ANNB_OK;
}

static int pretransform(cur *c, const char *role, const hdr *want, int depth, hdr *h)
{
    int64_t nt, d;
    uint64_t v;
    int rc;
    if ((rc = header(c, role, want, h)) || (rc = rd_i32(c, role, "chain", 1, 8, &nt))) return rc;
    d = h->d;
    for (int64_t i = 0; i < nt; i++)
        if ((rc = transform(c, d, &d))) return rc;
    hdr sw = {d, h->ntotal, h->metric}, s;
    return check_index(c, "sub", &sw, ALLOW_ANY, depth + 1, &s, &v);
}

/* IndexIDMap (IxMp) and IDMap2 (IxM2): the map turns Faiss's labels into
 * what annb reads as rows, so each must be a row. */
static int idmap(cur *c, const char *role, const hdr *want, int depth, hdr *h)
{
    uint64_t n, ids, v;
    int rc;
    if ((rc = header(c, role, want, h))) return rc;
    hdr sw = *h, s;
    if ((rc = check_index(c, "sub", &sw, ALLOW_ANY, depth + 1, &s, &v)) ||
        (rc = rd_vec(c, role, "id_map", 8, (uint64_t)h->ntotal, &n, &ids)))
        return rc;
    for (uint64_t i = 0; i < n; i++) {
        int64_t id = (int64_t)u64_at(c, ids + 8 * i);
        if (id < 0 || id >= h->ntotal)
            return fail(c, ids + 8 * i, "id_map entry %lld out of range 0..%lld", (long long)id,
                        (long long)h->ntotal - 1);
    }
    return ANNB_OK;
}

/* IndexPQ (IxPq) and IndexScalarQuantizer (IxSQ): codes for every vector.
 * IndexPQ searches by table (ST_PQ) or, with 8-bit codes, by polysemous
 * filtering; the other search types need tables the reader does not build. */
static int codes_index(cur *c, const uint8_t *t, const char *role, const hdr *want,
                       unsigned allow, hdr *h, uint64_t *code_size)
{
    uint64_t n, s, at;
    int64_t st, ht;
    int b, rc;
    pq_info pq;
    if ((rc = header(c, role, want, h))) return rc;
    if (fourcc_is(t, "IxSQ")) {
        if ((rc = scalar_quantizer(c, role, h->d, code_size))) return rc;
        return rd_vec(c, role, "codes", 1, (uint64_t)h->ntotal * *code_size, &n, &s);
    }
    if ((rc = product_quantizer(c, role, h->d, allow & 0x100 ? 8 : 16, &pq))) return rc;
    *code_size = pq.code_size;
    if ((rc = rd_vec(c, role, "codes", 1, (uint64_t)h->ntotal * pq.code_size, &n, &s)) ||
        (rc = rd_i32(c, role, "search_type", 0, 4, &st)))
        return rc;
    at = c->pos - 4;
    if (st != 0 && !(st == 4 && pq.nbits == 8))
        return fail(c, at, "%s search_type %lld, expected 0 (ST_PQ) or 4 (polysemous, 8-bit codes)",
                    role, (long long)st);
    if ((rc = rd_bool(c, role, "encode_signs", &b)) ||
        (rc = rd_i32(c, role, "polysemous_ht", 0, INT32_MAX, &ht)))
        return rc;
    return ANNB_OK;
}

/* read_index: one index of an allowed type whose header agrees with want. */
static int check_index(cur *c, const char *role, const hdr *want, unsigned allow, int depth,
                       hdr *got, uint64_t *code_size)
{
    uint64_t at;
    int rc;
    if (depth > MAX_DEPTH) return fail(c, c->pos, "indexes nested deeper than %d", MAX_DEPTH);
    if ((rc = take(c, 4, "index type", &at))) return rc;
    mark(c, role, "type", at);
    const uint8_t *t = c->p + at;
    unsigned kind = fourcc_is(t, "IxF2") || fourcc_is(t, "IxFI") || fourcc_is(t, "IxFl") ? ALLOW_FLAT
                  : fourcc_is(t, "IxPq")                                                ? ALLOW_PQ
                  : fourcc_is(t, "IxSQ")                                                ? ALLOW_SQ
                                                                                        : 0x80;
    if (!(allow & kind)) { /* a typed place (storage, quantizer) */
        static const char *const expected[] = {"", "a flat index", "a PQ index", "",
                                               "a scalar quantizer index"};
        char s[17];
        fourcc_text(s, t);
        return fail(c, at, "%s type '%s', expected %s", role, s, expected[allow & 7]);
    }
    *code_size = 0;
    if (kind == ALLOW_FLAT) {
        if ((rc = header(c, role, want, got))) return rc;
        return flat(c, role, got);
    }
    if (kind != 0x80) return codes_index(c, t, role, want, allow, got, code_size);
    if (fourcc_is(t, "IHNf") || fourcc_is(t, "IHNs") || fourcc_is(t, "IHNp"))
        return hnsw(c, t, role, want, depth, got);
    if (fourcc_is(t, "IwFl") || fourcc_is(t, "IwPQ") || fourcc_is(t, "IwSQ") || fourcc_is(t, "IwSq"))
        return ivf(c, t, role, want, depth, got);
    if (fourcc_is(t, "IxPT")) return pretransform(c, role, want, depth, got);
    if (fourcc_is(t, "IxMp") || fourcc_is(t, "IxM2")) return idmap(c, role, want, depth, got);
    return unknown(c, at, "index");
}

int annb_faiss_check(const void *blob, size_t size, const annb_faiss_expect *want,
                     annb_faiss_check_out *out)
{
    static const uint8_t none[1];
    cur c = {blob ? blob : none, blob ? size : 0, 0, out};
    out->bad_at = 0;
    out->message[0] = '\0';
    out->unknown_type = 0;
    out->mark_count = 0;
    hdr w = {(int64_t)want->d, (int64_t)want->ntotal, want->metric}, got;
    uint64_t cs;
    int rc = check_index(&c, "index", &w, ALLOW_ANY, 0, &got, &cs);
    if (rc == ANNB_OK && c.pos != c.size)
        rc = fail(&c, c.pos, "%llu bytes after the index, expected none",
                  (unsigned long long)(c.size - c.pos));
    return rc;
}
