// faiss_c_impl.cpp - the part of Faiss's C API that annb calls.
//
// Debian 12's libfaiss-dev ships the C API headers but not their compiled
// implementation (libfaiss.a has no faiss_* symbols). CMake compiles this file
// only when no system libfaiss_c is found. Each function below implements the
// declaration from <faiss/c_api/...> exactly, so the rest of annb is plain C
// calling standard faiss_* functions. Every C++ exception is caught and turned
// into a non-zero return; its message is kept, thread-locally as in upstream
// Faiss, for faiss_get_last_error() (callers copy it out at once).
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include <faiss/Index.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <exception>
#include <string>

namespace {

// Thread-local by necessity: the C API has no error out-parameter.
thread_local std::string last_error;

faiss::Index *cxx(FaissIndex *p) { return reinterpret_cast<faiss::Index *>(p); }
const faiss::Index *cxx(const FaissIndex *p) { return reinterpret_cast<const faiss::Index *>(p); }

template <typename F> int guarded(F &&f)
{
    try {
        f();
        return 0;
    } catch (const std::exception &e) {
        last_error = e.what();
    } catch (...) {
        last_error = "unknown C++ exception in Faiss";
    }
    return -1;
}

} // namespace

extern "C" {

const char *faiss_get_last_error() { return last_error.c_str(); }

int faiss_index_factory(FaissIndex **p_index, int d, const char *description,
                        FaissMetricType metric)
{
    return guarded([&] {
        *p_index = reinterpret_cast<FaissIndex *>(
            faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric)));
    });
}

void faiss_Index_free(FaissIndex *obj) { delete cxx(obj); }
int faiss_Index_d(const FaissIndex *index) { return cxx(index)->d; }
int faiss_Index_is_trained(const FaissIndex *index) { return cxx(index)->is_trained; }
idx_t faiss_Index_ntotal(const FaissIndex *index) { return cxx(index)->ntotal; }
FaissMetricType faiss_Index_metric_type(const FaissIndex *index)
{
    return static_cast<FaissMetricType>(cxx(index)->metric_type);
}

int faiss_Index_train(FaissIndex *index, idx_t n, const float *x)
{
    return guarded([&] { cxx(index)->train(n, x); });
}

int faiss_Index_add(FaissIndex *index, idx_t n, const float *x)
{
    return guarded([&] { cxx(index)->add(n, x); });
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k,
                       float *distances, idx_t *labels)
{
    return guarded([&] { cxx(index)->search(n, x, k, distances, labels); });
}

int faiss_write_index(const FaissIndex *idx, FILE *f)
{
    return guarded([&] { faiss::write_index(cxx(idx), f); });
}

int faiss_read_index(FILE *f, int io_flags, FaissIndex **p_out)
{
    return guarded([&] {
        *p_out = reinterpret_cast<FaissIndex *>(faiss::read_index(f, io_flags));
    });
}

} // extern "C"
