// bench_faiss - the baseline: Faiss itself, in-process, on the same data,
// with the same factory string and metric (inner product) as the annb
// bundle, measured by the same harness (bench_common.h).
//
//   bench_faiss DATADIR LABEL FACTORY NLAT OPENS TPUT_SECONDS THREADS LAT_SECONDS INDEXFILE
//               [load] [param=N] [sweep=V,V,...]
//
// Builds (train + add, Faiss's default OpenMP threads) and writes the index
// to INDEXFILE, or with `load` uses the index already in INDEXFILE: the one
// annb built, taken out of its bundle's FAIS section (the same graph, so any
// difference is annb's own cost), whose rows are in ascending ID order
// (format/SPEC.md 6.4). An index of dimension d + 1 is annb's MIPS-to-L2
// reduction (inner product searched as L2 over (x, sqrt(M^2 - |x|^2))): it is
// asked (q, 0), as annb asks it. Times read_index (first, and p50 of OPENS
// more), then measures the index with the search parameter annb stored in
// the bundle (param=N: nprobe or efSearch; without it Faiss's own default).
// For IVF and HNSW it then measures the same with one OpenMP thread per
// search call (what nq=1 costs without Faiss's parallel region) and sweeps
// nprobe / efSearch over the values given (the same list bench_annb sweeps)
// up to the first reaching recall@10 >= 0.95, whose THREADS-thread
// throughput it measures too.
// Prints JSON lines: "faiss", "faiss-omp1", "faiss-sweep" and "faiss-matched".
#include "bench_common.h"

#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <omp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

using idx_t = faiss::Index::idx_t; // faiss::idx_t only from Faiss 1.7.4

struct faiss_ctx {
    const faiss::Index *index;
    const int64_t *ids; // row -> external ID, as annb answers
    size_t n;
};

// bench_search_fn over Index::search: row labels -> external IDs.
int search_ids(const void *ctx, const float *queries, size_t nq, size_t k, int64_t *ids)
{
    const faiss_ctx *c = static_cast<const faiss_ctx *>(ctx);
    float dist_one[BENCH_GT_K];
    idx_t lab_one[BENCH_GT_K];
    std::vector<float> dist_v;
    std::vector<idx_t> lab_v;
    float *dist = dist_one;
    idx_t *lab = lab_one;
    if (nq * k > BENCH_GT_K) {
        dist_v.resize(nq * k);
        lab_v.resize(nq * k);
        dist = dist_v.data();
        lab = lab_v.data();
    }
    try {
        c->index->search((idx_t)nq, queries, (idx_t)k, dist, lab);
    } catch (const std::exception &e) {
        fprintf(stderr, "bench_faiss: %s\n", e.what());
        return -1;
    }
    for (size_t i = 0; i < nq * k; i++)
        ids[i] = lab[i] >= 0 && (size_t)lab[i] < c->n ? c->ids[lab[i]] : INT64_MIN;
    return 0;
}

// The same with one OpenMP thread for this call's parallel regions (the
// setting is per calling thread).
int search_ids_omp1(const void *ctx, const float *queries, size_t nq, size_t k, int64_t *ids)
{
    omp_set_num_threads(1);
    return search_ids(ctx, queries, nq, k, ids);
}

double cpu_now()
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void read_and_free(const void *path)
{
    delete faiss::read_index(static_cast<const char *>(path));
}

// The search knob of the IVF or HNSW index of a faiss_ctx (bench_set_fn);
// other indexes have none.
void set_knob(void *ctx, unsigned value)
{
    faiss::Index *index = const_cast<faiss::Index *>(static_cast<faiss_ctx *>(ctx)->index);
    if (auto *ivf = dynamic_cast<faiss::IndexIVF *>(index)) ivf->nprobe = value;
    else if (auto *hnsw = dynamic_cast<faiss::IndexHNSW *>(index)) hnsw->hnsw.efSearch = (int)value;
}

void emit_head(const char *system, const char *label, const char *factory)
{
    bench_json_begin();
    bench_json_str("system", system);
    bench_json_str("index", label);
    bench_json_str("faiss_index", factory);
}

} // namespace

int main(int argc, char **argv)
{
    int load = 0;
    unsigned param = 0, vals[BENCH_SWEEP_MAX];
    size_t nvals = 0;
    for (int i = 10; i < argc; i++) {
        if (!strcmp(argv[i], "load")) load = 1;
        else if (!strncmp(argv[i], "param=", 6)) param = (unsigned)strtoul(argv[i] + 6, NULL, 10);
        else if (!strncmp(argv[i], "sweep=", 6)) nvals = bench_parse_values(vals, argv[i] + 6);
        else argc = 0; // usage
    }
    if (argc < 10) {
        fprintf(stderr, "usage: bench_faiss DATADIR LABEL FACTORY NLAT OPENS TPUT_SECONDS THREADS "
                        "LAT_SECONDS INDEXFILE [load] [param=N] [sweep=V,V,...]\n");
        return 2;
    }
    const char *label = argv[2], *factory = argv[3], *file = argv[9];
    size_t nlat = strtoull(argv[4], NULL, 10), opens = strtoull(argv[5], NULL, 10);
    double tput_s = atof(argv[6]), lat_s = atof(argv[8]);
    int threads = atoi(argv[7]), omp_threads = omp_get_max_threads();
    bench_data D;
    bench_data_load(&D, argv[1], 1);

    std::unique_ptr<faiss::Index> index;
    double t0 = bench_now(), c0 = cpu_now(), train_s = 0, build_s = 0, build_cpu_s = 0;
    try {
        if (load) {
            index.reset(faiss::read_index(file));
            if ((size_t)index->ntotal != D.n || ((size_t)index->d != D.d && (size_t)index->d != D.d + 1))
                bench_die("%s: %lld x %d, the data set is %zu x %zu", file,
                          (long long)index->ntotal, index->d, D.n, D.d);
        } else {
            index.reset(faiss::index_factory((int)D.d, factory, faiss::METRIC_INNER_PRODUCT));
            if (!index->is_trained) index->train((idx_t)D.n, D.items);
            train_s = bench_now() - t0;
            index->add((idx_t)D.n, D.items);
            build_s = bench_now() - t0;
            build_cpu_s = cpu_now() - c0;
            faiss::write_index(index.get(), file);
        }
    } catch (const std::exception &e) {
        bench_die("Faiss %s '%s': %s", load ? "read_index" : "build", factory, e.what());
    }
    size_t file_size;
    const void *m = bench_map(file, &file_size);
    munmap(const_cast<void *>(m), file_size);
    double open_first = 0, open_p50 = 0;
    bench_measure_open(&open_first, &open_p50, read_and_free, file, opens);

    // annb's MIPS-to-L2 index: the queries as (q, 0), as annb asks it.
    int mips_l2 = (size_t)index->d == D.d + 1;
    std::vector<float> aug;
    bench_data Q = D;
    if (mips_l2) {
        aug.assign(D.q * (D.d + 1), 0.0f);
        for (size_t i = 0; i < D.q; i++)
            std::copy(D.queries + i * D.d, D.queries + (i + 1) * D.d, aug.begin() + i * (D.d + 1));
        Q.queries = aug.data();
        Q.d = D.d + 1;
    }

    // Row -> ID: the data set's row order for an index built here, ascending
    // IDs for annb's.
    std::vector<int64_t> row_ids(D.ids, D.ids + D.n);
    if (load) std::sort(row_ids.begin(), row_ids.end());
    faiss_ctx ctx = {index.get(), row_ids.data(), D.n};
    auto *ivf = dynamic_cast<faiss::IndexIVF *>(index.get());
    auto *hnsw = dynamic_cast<faiss::IndexHNSW *>(index.get());
    const char *pname = ivf ? "nprobe" : "efSearch";
    if (param && (ivf || hnsw)) set_knob(&ctx, param);
    unsigned used = ivf ? (unsigned)ivf->nprobe : hnsw ? (unsigned)hnsw->hnsw.efSearch : 0;

    bench_search_result r;
    bench_measure(&r, &Q, search_ids, &ctx, nlat, lat_s, 1, threads, tput_s);
    emit_head("faiss", label, factory);
    if (load) {
        bench_json_str("source", file);
    } else {
        bench_json_num("build_s", build_s);
        bench_json_num("build_cpu_s", build_cpu_s);
        bench_json_num("train_s", train_s);
    }
    bench_json_num("mips_l2", mips_l2);
    bench_json_num("index_bytes", (double)file_size);
    bench_json_num("open_ms_first", open_first);
    bench_json_num("open_ms", open_p50);
    if (ivf || hnsw) {
        bench_json_str("param", pname);
        bench_json_num("value", used);
    }
    bench_json_num("threads", threads);
    bench_json_search(&r);
    bench_json_end();

    if (!ivf && !hnsw) return 0;
    bench_measure(&r, &Q, search_ids_omp1, &ctx, nlat, lat_s, 0, threads, tput_s);
    emit_head("faiss-omp1", label, factory);
    bench_json_str("param", pname);
    bench_json_num("value", used);
    bench_json_num("threads", threads);
    bench_json_search(&r);
    bench_json_end();
    omp_set_num_threads(omp_threads); // the main thread's setting back
    bench_sweep("faiss", label, factory, pname, &Q, search_ids, &ctx, set_knob, vals, nvals,
                nlat, lat_s, threads, tput_s);
    return 0;
}
