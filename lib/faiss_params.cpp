// faiss_params.cpp - searching a Faiss index with per-call parameters
// (nprobe, efSearch, an ID selector): Faiss 1.7.3's SearchParameters, which
// its C API does not expose. Per call rather than by changing the shared
// index, so that one open bundle serves many threads with different settings
// (HNSW: through annb's own search, hnsw_search.cpp).
// Exceptions are caught into a return code (annb_faiss_ext_caught).
#include "faiss_glue.h"
#include "hnsw_search.h"

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/IDSelector.h>

#include <omp.h>

#include <memory>

extern "C" void annb_faiss_set_defaults(FaissIndex *index, uint32_t nprobe, uint32_t ef_search)
{
    faiss::Index *ix = reinterpret_cast<faiss::Index *>(index);
    if (auto ivf = dynamic_cast<faiss::IndexIVF *>(ix))
        if (nprobe) ivf->nprobe = nprobe;
    if (auto hnsw = dynamic_cast<faiss::IndexHNSW *>(ix))
        if (ef_search) hnsw->hnsw.efSearch = (int)ef_search;
}


extern "C" annb_faiss_family annb_faiss_family_of(const FaissIndex *index)
{
    const faiss::Index *ix = reinterpret_cast<const faiss::Index *>(index);
    if (dynamic_cast<const faiss::IndexIVF *>(ix)) return ANNB_FAISS_IVF;
    if (dynamic_cast<const faiss::IndexHNSW *>(ix)) return ANNB_FAISS_HNSW;
    return ANNB_FAISS_OTHER;
}

extern "C" int annb_faiss_is_lossy(const FaissIndex *index)
{
    const faiss::Index *ix = reinterpret_cast<const faiss::Index *>(index);
    if (auto ivf = dynamic_cast<const faiss::IndexIVF *>(ix))
        return ivf->code_size != ix->d * sizeof(float);
    if (auto hnsw = dynamic_cast<const faiss::IndexHNSW *>(ix))
        return dynamic_cast<const faiss::IndexFlat *>(hnsw->storage) == nullptr;
    return dynamic_cast<const faiss::IndexFlat *>(ix) == nullptr;
}

extern "C" uint32_t annb_faiss_nlist(const FaissIndex *index)
{
    auto ivf = dynamic_cast<const faiss::IndexIVF *>(reinterpret_cast<const faiss::Index *>(index));
    return ivf ? (uint32_t)ivf->nlist : 0;
}

namespace {
// Faiss 1.7.3 opens an OpenMP parallel region for every search, even of one
// query: on a busy machine waking the other threads costs milliseconds at
// the tail (measured: HNSW p99 22 ms with two threads, 4 ms with one). A few
// queries are answered on the calling thread alone; omp_set_num_threads
// sets the calling thread's own setting, restored after.
struct few_queries_alone {
    int saved;
    explicit few_queries_alone(int64_t n) : saved(n < 8 ? omp_get_max_threads() : 0)
    {
        if (saved) omp_set_num_threads(1);
    }
    ~few_queries_alone()
    {
        if (saved) omp_set_num_threads(saved);
    }
};
} // namespace

extern "C" int annb_faiss_search_params(const FaissIndex *index, int64_t n, const float *x,
                                        int64_t k, const annb_faiss_params *p, float *distances,
                                        int64_t *labels)
{
    few_queries_alone alone(n);
    try {
        const faiss::Index *ix = reinterpret_cast<const faiss::Index *>(index);
        std::unique_ptr<faiss::IDSelectorBitmap> sel;
        if (p->allowed) // bit i (LSB first) set: row i may be returned; Faiss counts bytes
            sel.reset(new faiss::IDSelectorBitmap((p->nbits + 7) / 8, p->allowed));
        // Each index family insists on its own parameter type; settings left
        // at 0 keep the index's own value.
        if (auto ivf = dynamic_cast<const faiss::IndexIVF *>(ix)) {
            faiss::SearchParametersIVF params;
            params.sel = sel.get();
            params.nprobe = p->nprobe ? p->nprobe : ivf->nprobe;
            params.max_codes = ivf->max_codes;
            ix->search(n, x, k, distances, labels, &params);
        } else if (auto hnsw = dynamic_cast<const faiss::IndexHNSW *>(ix)) {
            // Faiss 1.7.3 would size the candidate list from the shared
            // hnsw.efSearch, whatever the parameters say: hnsw_search.cpp.
            int64_t ef = p->ef_search ? (int64_t)p->ef_search : hnsw->hnsw.efSearch;
            annb_hnsw_search(*hnsw, n, x, k, ef, sel.get(), distances, labels);
        } else if (sel) {
            faiss::SearchParameters params;
            params.sel = sel.get();
            ix->search(n, x, k, distances, labels, &params);
        } else {
            ix->search(n, x, k, distances, labels);
        }
        return 0;
    } catch (...) {
        annb_faiss_ext_caught();
    }
    return -1;
}
