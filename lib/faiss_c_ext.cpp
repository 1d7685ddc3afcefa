// faiss_c_ext.cpp - k-means with chosen parameters (faiss::Clustering, for
// ivf.c): in Faiss 1.7.3's C++ API, not its C API (searching with
// parameters is lib/faiss_params.cpp). Named annb_faiss_* so it
// never clashes with a system libfaiss_c; always compiled. Exceptions are
// caught into a return code and their message kept as in faiss_c_impl.cpp.
#include "faiss_glue.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
// Thread-local like Faiss's own last error: the message of the last failure
// of an annb_faiss_* function on this thread.
thread_local std::string ext_error;
} // namespace

extern "C" const char *annb_faiss_ext_error(void) { return ext_error.c_str(); }

extern "C" void annb_faiss_ext_caught(void)
{
    try {
        throw;
    } catch (const std::exception &e) {
        ext_error = e.what();
    } catch (...) {
        ext_error = "unknown C++ exception in Faiss";
    }
}

namespace {
// k-means's assignment step done by the caller (annb's fused kernel) rather
// than by Faiss's IndexFlat: Clustering only resets, adds the centroids and
// searches with k = 1.
struct AssignIndex : faiss::Index {
    std::vector<float> centroids;
    annb_faiss_assign_fn fn;
    void *ctx;
    AssignIndex(uint32_t d, faiss::MetricType m, annb_faiss_assign_fn fn, void *ctx)
        : faiss::Index((idx_t)d, m), fn(fn), ctx(ctx)
    {
    }
    void add(idx_t n, const float *x) override
    {
        centroids.insert(centroids.end(), x, x + n * d);
        ntotal += n;
    }
    void reset() override
    {
        centroids.clear();
        ntotal = 0;
    }
    void search(idx_t n, const float *x, idx_t k, float *dist, idx_t *labels,
                const faiss::SearchParameters *) const override
    {
        if (k != 1) throw std::invalid_argument("k-means assignment with k != 1");
        if (fn(ctx, x, n, centroids.data(), (uint32_t)ntotal, dist, labels)) throw std::bad_alloc();
    }
};
} // namespace

extern "C" int annb_faiss_kmeans(float *centroids, const float *x, uint64_t n, uint32_t d,
                                 uint32_t k, int inner_product, int niter,
                                 int max_points_per_centroid, int seed,
                                 annb_faiss_assign_fn assign, void *assign_ctx)
{
    try {
        faiss::ClusteringParameters cp;
        cp.niter = niter;
        cp.seed = seed;
        cp.max_points_per_centroid = max_points_per_centroid;
        // Faiss prints a warning to stderr below this many points per
        // centroid; a library does not write to stderr, and the caller chose k.
        cp.min_points_per_centroid = 1;
        // What IndexIVF's constructor sets for METRIC_INNER_PRODUCT: without
        // it, max-inner-product assignment favours the largest centroids.
        cp.spherical = inner_product != 0;
        faiss::Clustering clus((int)d, (int)k, cp);
        faiss::MetricType metric = inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
        std::unique_ptr<faiss::Index> index;
        if (assign) index.reset(new AssignIndex(d, metric, assign, assign_ctx));
        else if (inner_product) index.reset(new faiss::IndexFlatIP((faiss::Index::idx_t)d));
        else index.reset(new faiss::IndexFlatL2((faiss::Index::idx_t)d));
        clus.train((faiss::Index::idx_t)n, x, *index);
        std::copy(clus.centroids.begin(), clus.centroids.end(), centroids);
        return 0;
    } catch (...) {
        annb_faiss_ext_caught();
    }
    return -1;
}
