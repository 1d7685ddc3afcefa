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
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>

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

namespace {
// An IndexFlat for k-means to assign with, as Faiss would have made it, that
// counts the assignments: Clustering searches its index once per iteration.
struct CountingFlat : faiss::IndexFlat {
    annb_faiss_tick_fn tick;
    void *ctx;
    CountingFlat(faiss::Index::idx_t d, faiss::MetricType m, annb_faiss_tick_fn tick, void *ctx)
        : faiss::IndexFlat(d, m), tick(tick), ctx(ctx)
    {
    }
    void search(idx_t n, const float *x, idx_t k, float *dist, idx_t *labels,
                const faiss::SearchParameters *p) const override
    {
        faiss::IndexFlat::search(n, x, k, dist, labels, p);
        tick(ctx);
    }
};

// The k-means runs of a Faiss index's training that can be counted: the
// coarse quantizer of an IVF index (when Faiss would cluster with a plain
// IndexFlat of the same metric: it then takes clustering_index instead of
// the quantizer itself, to the same result) and the sub-quantizers of an
// IVF-PQ (assign_index, ditto for its IndexFlatL2).
struct Counted {
    faiss::IndexIVF *ivf = nullptr;
    faiss::ProductQuantizer *pq = nullptr;
    explicit Counted(FaissIndex *index)
    {
        faiss::Index *ix = reinterpret_cast<faiss::Index *>(index);
        if (auto pre = dynamic_cast<faiss::IndexPreTransform *>(ix)) ix = pre->index;
        auto v = dynamic_cast<faiss::IndexIVF *>(ix);
        if (v && v->quantizer_trains_alone == 0 && !v->clustering_index &&
            dynamic_cast<faiss::IndexFlat *>(v->quantizer) &&
            v->quantizer->metric_type == v->metric_type)
            ivf = v;
        auto vpq = dynamic_cast<faiss::IndexIVFPQ *>(ix);
        if (vpq && !vpq->pq.assign_index && vpq->pq.train_type == faiss::ProductQuantizer::Train_default)
            pq = &vpq->pq;
    }
    uint64_t iterations() const
    {
        uint64_t total = 0;
        if (ivf) total += (uint64_t)ivf->cp.niter * (uint64_t)ivf->cp.nredo;
        if (pq) total += (uint64_t)pq->M * (uint64_t)pq->cp.niter * (uint64_t)pq->cp.nredo;
        return total;
    }
};
} // namespace

extern "C" uint64_t annb_faiss_train_iterations(const FaissIndex *index)
{
    if (reinterpret_cast<const faiss::Index *>(index)->is_trained) return 0;
    return Counted(const_cast<FaissIndex *>(index)).iterations();
}

extern "C" int annb_faiss_train_counted(FaissIndex *index, int64_t n, const float *x,
                                        annb_faiss_tick_fn tick, void *ctx)
{
    Counted c(index);
    std::unique_ptr<CountingFlat> coarse, sub;
    int rc = 0;
    try {
        if (c.ivf) {
            coarse.reset(new CountingFlat(c.ivf->d, c.ivf->metric_type, tick, ctx));
            c.ivf->clustering_index = coarse.get();
        }
        if (c.pq) {
            sub.reset(new CountingFlat((faiss::Index::idx_t)c.pq->dsub, faiss::METRIC_L2, tick, ctx));
            c.pq->assign_index = sub.get();
        }
        reinterpret_cast<faiss::Index *>(index)->train((faiss::Index::idx_t)n, x);
    } catch (...) {
        annb_faiss_ext_caught();
        rc = -1;
    }
    // Faiss neither owns nor keeps them: the index is as if trained without.
    if (c.ivf) c.ivf->clustering_index = nullptr;
    if (c.pq) c.pq->assign_index = nullptr;
    return rc;
}
