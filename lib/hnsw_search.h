// hnsw_search.h - HNSW search with the candidate list size given per call
// (C++, internal to lib/; see hnsw_search.cpp).
#ifndef ANNB_HNSW_SEARCH_H
#define ANNB_HNSW_SEARCH_H

#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>

#include <cstdint>

// The k nearest of each of the n queries x, as faiss::IndexHNSW::search
// answers at hnsw.efSearch == ef (same labels and distances, best first,
// unfilled slots label -1), but without reading or writing the index's
// efSearch: any number of threads may search one index at once, each with
// its own ef (any ef >= 1; above the item count it answers as at the item
// count, which it is capped to). sel (may be null): only its members are returned. Throws
// faiss::FaissException for indexes whose search this does not reproduce
// (IndexHNSW2Level, a storage-less IndexHNSW).
void annb_hnsw_search(const faiss::IndexHNSW &index, int64_t n, const float *x, int64_t k,
                      int64_t ef, const faiss::IDSelector *sel, float *distances, int64_t *labels);

#endif
