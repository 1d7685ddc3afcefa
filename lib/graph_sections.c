/* graph_sections.c - annb's own graph (SPEC 6.18): entries, adjacency and
 * codes written, then read back and checked (bulk ones where they are read). */
#include "section_io.h"

#include <stdlib.h>
#include <string.h>

/* annb's own graph (SPEC 6.18): GENT and GADJ together, for index
 * "Graph<degree>". The entry rows are checked here; the adjacency is bulk
 * (3.11): every neighbour number is bounded where a search reads it. */
int annb_graph_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    static const char *const kinds[] = {ANNB_KIND_GRAPH_ADJ, ANNB_KIND_GRAPH_ENTRY,
                                        ANNB_KIND_GRAPH_CODES, ANNB_KIND_GRAPH_SQ,
                                        ANNB_KIND_GRAPH_ROWS};
    int present = 0, sq8 = 0;
    for (int i = 0; i < 5; i++) present += annbf_section_find(&b->file, kinds[i]) >= 0;
    uint32_t degree = 0;
    int native = annb_index_native_graph(c->meta.index, &degree, &sq8);
    if (present == 0 && !native) return ANNB_OK;
    if (present != (sq8 ? 5 : 2) || !native)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: graph sections: %d of %d, for index '%s'",
                              b->path, present, sq8 ? 5 : 2, c->meta.index);
    uint64_t n = c->meta.count;
    int ie = annbf_section_find(&b->file, ANNB_KIND_GRAPH_ENTRY);
    uint64_t ne = b->file.sections[ie].elem_count;
    if (ne == 0 || ne > ANNB_GRAPH_MAX_ENTRIES || ne > n)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: at byte %llu: GENT: %llu entry rows, "
                              "expected 1..%u and at most the %llu rows", b->path,
                              (unsigned long long)b->file.sections[ie].offset,
                              (unsigned long long)ne, ANNB_GRAPH_MAX_ENTRIES,
                              (unsigned long long)n);
    const void *en, *adj;
    int rc;
    if ((rc = annb_sec_load(b, c, ANNB_KIND_GRAPH_ENTRY, 1, ANNBF_ELEM_U32, ne, &en, err)) ||
        (rc = annb_sec_bulk(b, c, ANNB_KIND_GRAPH_ADJ, ANNBF_ELEM_U32, n * degree, full, &adj,
                            err)))
        return rc;
    c->graph = (annb_graph){n, c->meta.dimension, degree, (uint32_t)ne, adj, en, c->vecs, NULL,
                            {0}, NULL};
    if (sq8) { /* the parameters checked, the codes bulk: any byte is a valid code */
        const void *sp, *codes, *rows;
        uint32_t d = c->meta.dimension;
        if ((rc = annb_sec_load(b, c, ANNB_KIND_GRAPH_SQ, 1, ANNBF_ELEM_F32, 2 * (uint64_t)d, &sp,
                                err)) ||
            (rc = annb_sec_bulk(b, c, ANNB_KIND_GRAPH_CODES, ANNBF_ELEM_BYTES, n * d, full,
                                &codes, err)) ||
            (rc = annb_sec_bulk(b, c, ANNB_KIND_GRAPH_ROWS, ANNBF_ELEM_U32, n, full, &rows,
                                err)))
            return rc;
        c->graph.row_of = rows;
        if (full) { /* annb_verify: GROW is a permutation of the rows */
            uint8_t *hit = calloc(n ? n : 1, 1);
            if (!hit) return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
            const uint32_t *r = rows;
            uint64_t bad = n;
            for (uint64_t i = 0; i < n && bad == n; i++) {
                if (r[i] >= n || hit[r[i]]) bad = i;
                else hit[r[i]] = 1;
            }
            free(hit);
            if (bad < n)
                return annb_sec_corrupt(err, b, ANNB_KIND_GRAPH_ROWS,
                                        r[bad] >= n ? "row past the rows" : "row at two positions", bad);
        }
        int64_t bad = annb_sq8_check(sp, d);
        if (bad >= 0)
            return annb_sec_corrupt(err, b, ANNB_KIND_GRAPH_SQ,
                                    bad < d ? "code offset not finite" : "code step not finite and > 0",
                                    (uint64_t)bad);
        c->graph.codes = codes;
        c->graph.sq = (annb_sq8){d, sp, (const float *)sp + d};
    }
    char why[200];
    if ((rc = annb_graph_check(&c->graph, why, sizeof why)))
        return annb_error_set(err, rc, "%s: at byte %llu: graph: %s", b->path,
                              (unsigned long long)b->file.sections[ie].offset, why);
    if (full) { /* annb_verify: every neighbour in range, no row linked to itself */
        const uint32_t *a = adj;
        for (uint64_t i = 0; i < n * degree; i++)
            if ((a[i] >= n && a[i] != ANNB_GRAPH_NONE) || a[i] == i / degree)
                return annb_sec_corrupt(err, b, ANNB_KIND_GRAPH_ADJ,
                                        a[i] >= n ? "neighbour row past the rows" : "row linked to itself",
                                        i);
    }
    if (!(c->graph_pool = annb_graph_pool_new(n)))
        return annb_error_set(err, ANNB_E_NOMEM, "out of memory");
    c->has_graph = 1;
    return ANNB_OK;
}


int annb_graph_sections_write(annbf_writer *w, const annb_graph *g, annbf_error *fe)
{
    int rc;
    if ((rc = annb_sec_add_raw(w, ANNB_KIND_GRAPH_ENTRY, ANNBF_ELEM_U32, g->nentry, g->entry,
                               (size_t)g->nentry * 4, fe)) ||
        (rc = annb_sec_add_raw(w, ANNB_KIND_GRAPH_ADJ, ANNBF_ELEM_U32, g->n * g->degree, g->adj,
                               (size_t)g->n * g->degree * 4, fe)))
        return rc;
    if (!g->codes) return ANNB_OK;
    if ((rc = annb_sec_add_raw(w, ANNB_KIND_GRAPH_SQ, ANNBF_ELEM_F32, 2 * (uint64_t)g->d,
                               g->sq.lo, 2 * (size_t)g->d * 4, fe)) ||
        (rc = annb_sec_add_raw(w, ANNB_KIND_GRAPH_CODES, ANNBF_ELEM_BYTES, g->n * g->d, g->codes,
                               (size_t)g->n * g->d, fe)))
        return rc;
    return annb_sec_add_raw(w, ANNB_KIND_GRAPH_ROWS, ANNBF_ELEM_U32, g->n, g->row_of,
                            (size_t)g->n * 4, fe);
}
