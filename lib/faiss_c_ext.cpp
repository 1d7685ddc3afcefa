// faiss_c_ext.cpp - filtered search: what Faiss 1.7.3's C++ API has and its C
// API lacks (SearchParameters with an IDSelector). Named annb_faiss_* so it
// never clashes with a system libfaiss_c; always compiled. Exceptions are
// caught into a return code and their message kept as in faiss_c_impl.cpp.
#include "faiss_glue.h"

#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/IDSelector.h>

#include <exception>
#include <string>

namespace {
// Thread-local like Faiss's own last error: the message of the last failure
// of annb_faiss_search_filtered on this thread.
thread_local std::string ext_error;
} // namespace

extern "C" const char *annb_faiss_ext_error(void) { return ext_error.c_str(); }

extern "C" int annb_faiss_search_filtered(const FaissIndex *index, int64_t n, const float *x,
                                          int64_t k, const uint8_t *allowed, size_t nbits,
                                          float *distances, int64_t *labels)
{
    try {
        // Bit i of `allowed` (LSB first) set: row i may be returned.
        faiss::IDSelectorBitmap sel((nbits + 7) / 8, allowed); // Faiss counts bytes
        const faiss::Index *ix = reinterpret_cast<const faiss::Index *>(index);
        // Each index family insists on its own parameter type; carry over the
        // index's own settings so that only the selector changes.
        if (auto ivf = dynamic_cast<const faiss::IndexIVF *>(ix)) {
            faiss::SearchParametersIVF params;
            params.sel = &sel;
            params.nprobe = ivf->nprobe;
            params.max_codes = ivf->max_codes;
            ix->search(n, x, k, distances, labels, &params);
        } else if (auto hnsw = dynamic_cast<const faiss::IndexHNSW *>(ix)) {
            faiss::SearchParametersHNSW params;
            params.sel = &sel;
            params.efSearch = hnsw->hnsw.efSearch;
            ix->search(n, x, k, distances, labels, &params);
        } else {
            faiss::SearchParameters params;
            params.sel = &sel;
            ix->search(n, x, k, distances, labels, &params);
        }
        return 0;
    } catch (const std::exception &e) {
        ext_error = e.what();
    } catch (...) {
        ext_error = "unknown C++ exception in Faiss";
    }
    return -1;
}
