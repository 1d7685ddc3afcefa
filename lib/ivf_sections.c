/* ivf_sections.c - annb's own IVF-Flat (SPEC 6.15): its four sections
 * written, then read back and checked before any search. */
#include "section_io.h"

#include <stdlib.h>
#include <string.h>

/* annb's own IVF-Flat (SPEC 6.15): the four sections together, for index
 * "IVF<nlist>,Flat" with that nlist, every row indexed once. The arrays
 * that say where to read are checksummed and checked (annb_ivf_check)
 * before any search; the vectors are bulk (3.11). */
int annb_ivf_sections_load(const annb_bundle *b, annb_content *c, int full, annb_error *err)
{
    static const char *const kinds[] = {ANNB_KIND_IVF_CENTROIDS, ANNB_KIND_IVF_OFFSETS,
                                        ANNB_KIND_IVF_ROWS, ANNB_KIND_IVF_VECS};
    int present = 0, rc;
    for (int i = 0; i < 4; i++) present += annbf_section_find(&b->file, kinds[i]) >= 0;
    uint32_t nlist = 0;
    int native = annb_index_native_ivf(c->meta.index, &nlist);
    if (present == 0) return ANNB_OK;
    if (present != 4 || !native)
        return annb_error_set(err, ANNB_E_CORRUPT, "%s: IVF sections: %d of 4, for index '%s'",
                              b->path, present, c->meta.index);
    uint64_t n = c->meta.count, d = c->meta.dimension;
    const void *ct, *of, *rw, *vc;
    if ((rc = annb_sec_load(b, c, ANNB_KIND_IVF_OFFSETS, 1, ANNBF_ELEM_U64, (uint64_t)nlist + 1,
                            &of, err)) ||
        (rc = annb_sec_load(b, c, ANNB_KIND_IVF_CENTROIDS, 1, ANNBF_ELEM_F32, nlist * d, &ct, err)) ||
        (rc = annb_sec_load(b, c, ANNB_KIND_IVF_ROWS, 1, ANNBF_ELEM_U32, n, &rw, err)) ||
        (rc = annb_sec_bulk_f32(b, c, ANNB_KIND_IVF_VECS, n * d, full, &vc, err)))
        return rc;
    c->ivf = (annb_ivf){nlist, (uint32_t)d, n, ct, of, rw, vc};
    char why[200];
    if ((rc = annb_ivf_check(&c->ivf, n, why, sizeof why))) {
        int i = annbf_section_find(&b->file, ANNB_KIND_IVF_ROWS);
        return annb_error_set(err, rc, "%s: at byte %llu: IVF lists: %s", b->path,
                              (unsigned long long)b->file.sections[i].offset, why);
    }
    c->has_ivf = 1;
    return ANNB_OK;
}


int annb_ivf_sections_write(annbf_writer *w, const annb_ivf *ivf, annbf_error *fe)
{
    int rc;
    if ((rc = annb_sec_add_raw(w, ANNB_KIND_IVF_CENTROIDS, ANNBF_ELEM_F32,
                               (uint64_t)ivf->nlist * ivf->d, ivf->centroids,
                               (size_t)ivf->nlist * ivf->d * 4, fe)) ||
        (rc = annb_sec_add_raw(w, ANNB_KIND_IVF_OFFSETS, ANNBF_ELEM_U64, ivf->nlist + 1,
                               ivf->offsets, ((size_t)ivf->nlist + 1) * 8, fe)) ||
        (rc = annb_sec_add_raw(w, ANNB_KIND_IVF_ROWS, ANNBF_ELEM_U32, ivf->n, ivf->rows,
                               ivf->n * 4, fe)))
        return rc;
    return annb_sec_add_raw(w, ANNB_KIND_IVF_VECS, ANNBF_ELEM_F32, ivf->n * ivf->d, ivf->vecs,
                            ivf->n * ivf->d * 4, fe);
}
