// hnsw_search.cpp - Faiss 1.7.3's HNSW search, with ef a parameter.
//
// Faiss 1.7.3 sizes HNSW's candidate list from the index's own hnsw.efSearch
// and reads SearchParametersHNSW::efSearch only for its stopping rule, so a
// per-call efSearch through Faiss means writing the shared index: a data
// race with every other search. This is the same algorithm over the index's
// public members (faiss/impl/HNSW.cpp HNSW::search, search_from_candidates,
// greedy_update_nearest; faiss/IndexHNSW.cpp IndexHNSW::search), with the
// call's ef in both places and only per-call state written (the visited
// table, the heaps, the distance computer). It also skips Faiss's global
// hnsw_stats counters, which IndexHNSW::search updates unlocked.
// Kept step for step with Faiss so that at the index's own ef the answers
// are Faiss's (tests/unit/test_threads.c compares them).
#include "hnsw_search.h"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/Heap.h>

#include <omp.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <vector>

namespace {

using faiss::HNSW;
using idx_t = faiss::Index::idx_t;
using storage_idx_t = HNSW::storage_idx_t;

// Faiss's HNSW keeps "smaller is nearer": inner products are searched
// negated and turned back at the end, as IndexHNSW does.
struct NegatedDistance : faiss::DistanceComputer {
    std::unique_ptr<faiss::DistanceComputer> base;
    explicit NegatedDistance(faiss::DistanceComputer *b) : base(b) {}
    void set_query(const float *x) override { base->set_query(x); }
    float operator()(idx_t i) override { return -(*base)(i); }
    float symmetric_dis(idx_t i, idx_t j) override { return -base->symmetric_dis(i, j); }
};

std::unique_ptr<faiss::DistanceComputer> distance_computer(const faiss::Index &storage)
{
    // Owned at once: the wrapper's allocation may throw.
    std::unique_ptr<faiss::DistanceComputer> d(storage.get_distance_computer());
    if (storage.metric_type != faiss::METRIC_INNER_PRODUCT) return d;
    std::unique_ptr<faiss::DistanceComputer> negated(new NegatedDistance(d.get()));
    d.release(); // now the wrapper's
    return negated;
}

// One step down the upper levels: move to the nearest neighbour until none
// is nearer (Faiss's greedy_update_nearest).
void greedy_descent(const HNSW &h, faiss::DistanceComputer &qdis, int level,
                    storage_idx_t &nearest, float &d_nearest)
{
    for (;;) {
        storage_idx_t prev = nearest;
        size_t begin, end;
        h.neighbor_range(nearest, level, &begin, &end);
        for (size_t i = begin; i < end; i++) {
            storage_idx_t v = h.neighbors[i];
            if (v < 0) break;
            float dis = qdis(v);
            if (dis < d_nearest) {
                nearest = v;
                d_nearest = dis;
            }
        }
        if (nearest == prev) return;
    }
}

void keep_best(int k, int &nres, float *D, idx_t *I, float d, idx_t v, const faiss::IDSelector *sel)
{
    if (sel && !sel->is_member(v)) return;
    if (nres < k)
        faiss::maxheap_push(++nres, D, I, d, v);
    else if (d < D[0])
        faiss::maxheap_replace_top(nres, D, I, d, v);
}

// Best-first expansion of one level from the candidates (Faiss's
// search_from_candidates); the k best go to the max-heap (D, I). Returns
// how many it holds.
int search_level(const HNSW &h, faiss::DistanceComputer &qdis, int k, idx_t *I, float *D,
                 HNSW::MinimaxHeap &candidates, faiss::VisitedTable &vt, int level, int ef,
                 const faiss::IDSelector *sel)
{
    int nres = 0;
    for (int i = 0; i < candidates.size(); i++) {
        idx_t v1 = candidates.ids[i];
        FAISS_ASSERT(v1 >= 0);
        keep_best(k, nres, D, I, candidates.dis[i], v1, sel);
        vt.set(v1);
    }
    const bool dis_check = h.check_relative_distance;
    for (int nstep = 1; candidates.size() > 0; nstep++) {
        float d0 = 0;
        int v0 = candidates.pop_min(&d0);
        // Stop once ef candidates already processed are nearer than d0.
        if (dis_check && candidates.count_below(d0) >= ef) break;
        size_t begin, end;
        h.neighbor_range(v0, level, &begin, &end);
        for (size_t j = begin; j < end; j++) {
            int v1 = h.neighbors[j];
            if (v1 < 0) break;
            if (vt.get(v1)) continue;
            vt.set(v1);
            float d = qdis(v1);
            keep_best(k, nres, D, I, d, v1, sel);
            candidates.push(v1, d);
        }
        if (!dis_check && nstep > ef) break;
    }
    return nres;
}

// HNSW::search for one query into the max-heap (D, I) of size k. Only the
// bounded-queue search: search_bounded_queue is not stored in an index
// file and defaults to true.
void search_one(const HNSW &h, faiss::DistanceComputer &qdis, int k, idx_t *I, float *D,
                faiss::VisitedTable &vt, int ef, const faiss::IDSelector *sel)
{
    if (h.entry_point == -1) return;
    if (h.upper_beam == 1) {
        storage_idx_t nearest = h.entry_point;
        float d_nearest = qdis(nearest);
        for (int level = h.max_level; level >= 1; level--)
            greedy_descent(h, qdis, level, nearest, d_nearest);
        HNSW::MinimaxHeap candidates(std::max(ef, k));
        candidates.push(nearest, d_nearest);
        search_level(h, qdis, k, I, D, candidates, vt, 0, ef, sel);
        vt.advance();
        return;
    }
    // upper_beam > 1 (never written by annb, but readable): a beam of that
    // width down the levels. Faiss ignores the ID selector on this path;
    // here it applies to level 0, where the answers come from.
    int beam = h.upper_beam;
    HNSW::MinimaxHeap candidates(beam);
    std::vector<idx_t> I_next(beam);
    std::vector<float> D_next(beam);
    int nres = 1;
    I_next[0] = h.entry_point;
    D_next[0] = qdis(h.entry_point);
    for (int level = h.max_level; level >= 0; level--) {
        candidates.clear();
        for (int i = 0; i < nres; i++) candidates.push(I_next[i], D_next[i]);
        if (level == 0)
            search_level(h, qdis, k, I, D, candidates, vt, 0, ef, sel);
        else
            nres = search_level(h, qdis, beam, I_next.data(), D_next.data(), candidates, vt,
                                level, ef, nullptr);
        vt.advance();
    }
}

// Queries [from, to) with one visited table and distance computer, as one
// OpenMP thread of IndexHNSW::search does.
void search_range(const faiss::IndexHNSW &ix, int64_t from, int64_t to, const float *x, int64_t k,
                  int ef, const faiss::IDSelector *sel, float *distances, int64_t *labels)
{
    faiss::VisitedTable vt((int)ix.ntotal);
    std::unique_ptr<faiss::DistanceComputer> dis = distance_computer(*ix.storage);
    for (int64_t i = from; i < to; i++) {
        idx_t *I = labels + i * k;
        float *D = distances + i * k;
        dis->set_query(x + i * ix.d);
        faiss::maxheap_heapify(k, D, I);
        search_one(ix.hnsw, *dis, (int)k, I, D, vt, ef, sel);
        faiss::maxheap_reorder(k, D, I);
    }
}

} // namespace

void annb_hnsw_search(const faiss::IndexHNSW &ix, int64_t n, const float *x, int64_t k,
                      int64_t ef_asked, const faiss::IDSelector *sel, float *distances,
                      int64_t *labels)
{
    FAISS_THROW_IF_NOT(k > 0 && ef_asked > 0);
    // Each item enters the candidate heap at most once and the stopping
    // rule counts heap entries, so any ef above the item count searches
    // exactly as that count does; the cap keeps a caller's huge ef from
    // sizing the heap (zero-filled, 8 bytes an entry).
    int ef = (int)std::min<int64_t>(ef_asked, std::max<int64_t>(ix.ntotal, 1));
    FAISS_THROW_IF_NOT_MSG(ix.storage, "IndexHNSW without storage");
    // Its own search (a coarse IVF for level 0, reordering by neighbours)
    // is not this one; Faiss 1.7.3 also refuses search parameters for it.
    FAISS_THROW_IF_NOT_MSG(!dynamic_cast<const faiss::IndexHNSW2Level *>(&ix) &&
                               !(ix.reconstruct_from_neighbors &&
                                 ix.reconstruct_from_neighbors->k_reorder != 0),
                           "per-call search of IndexHNSW2Level is not supported");
    // A few queries stay on the calling thread: no OpenMP region at all.
    if (n < 8) {
        search_range(ix, 0, n, x, k, ef, sel, distances, labels);
    } else {
        std::exception_ptr failed;
#pragma omp parallel
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            try {
                search_range(ix, n * t / nt, n * (t + 1) / nt, x, k, ef, sel, distances, labels);
            } catch (...) {
                // An exception must not leave an OpenMP region.
#pragma omp critical(annb_hnsw_search_failed)
                if (!failed) failed = std::current_exception();
            }
        }
        if (failed) std::rethrow_exception(failed);
    }
    if (ix.metric_type == faiss::METRIC_INNER_PRODUCT)
        for (int64_t i = 0; i < n * k; i++) distances[i] = -distances[i];
}
