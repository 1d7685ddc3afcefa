/*
 * _annb.c - the C half of the Python package `annb`: libannb's public API
 * (annb.h) with numpy arrays in and out. The Python half (annb/__init__.py)
 * adds what needs no speed: the exception classes, DataFrames, argument
 * forms of annb.build. Only translation lives here; every rule (which
 * option fits which question, what is excluded) is the library's.
 *
 * Three things shape this file:
 *  - The GIL is released around every search and build, so threads of one
 *    process search one bundle at once (an open bundle is immutable and
 *    thread-safe, annb.h).
 *  - The handle outlives what was lent from it. An annb_bundle lives in an
 *    `_Mapping` object; the Bundle holds one reference, every zero-copy
 *    array from ids() holds one (its numpy base), and a search holds one
 *    while the GIL is released. Bundle.close() drops only the Bundle's, so
 *    closing while another thread searches, or while an ids() view is
 *    alive, never unmaps memory still in use.
 *  - Per-call overhead is the product for one-query searches: arguments are
 *    parsed once with the C API, small answers use a stack buffer.
 * Every question goes to annb_ask, the library's question model, so the
 * rules (what is left out, which option fits which question) and the
 * messages are the ones ann-query and the JSON protocol give.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "annb.h"

#include <stdlib.h>
#include <string.h>

/* 1 when `space` of b holds id: a binary search on its ascending IDs. */
static int has_id(const annb_bundle *b, annb_space space, int64_t id)
{
    const int64_t *ids = annb_space_ids(b, space);
    uint64_t lo = 0, hi = annb_space_count(b, space);
    while (ids && lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ids[mid] == id) return 1;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Errors: annb.Error and its subclasses, registered by annb/__init__.py     */
/* ------------------------------------------------------------------------ */

/* code -> class, set once by _set_errors; the module's only state. */
static PyObject *error_classes; /* dict int -> type */
static PyObject *error_base;    /* annb.Error */

/* Raises the class for `code` with `message`; returns NULL. */
static PyObject *raise_code(int code, const char *message)
{
    PyObject *cls = NULL;
    if (error_classes) {
        PyObject *key = PyLong_FromLong(code);
        if (!key) return NULL;
        cls = PyDict_GetItemWithError(error_classes, key);
        Py_DECREF(key);
        if (!cls && PyErr_Occurred()) return NULL;
    }
    if (!cls) cls = error_base ? error_base : PyExc_RuntimeError;
    /* a message may quote a path or an input's bytes that are not UTF-8 */
    const char *text = message && *message ? message : annb_strerror(code);
    PyObject *msg = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "backslashreplace");
    if (!msg) return NULL;
    PyObject *exc = PyObject_CallFunction(cls, "Ni", msg, code);
    if (!exc) return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *raise_err(const annb_error *err)
{
    return raise_code(err->code, err->message);
}

static PyObject *raise_fmt(int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return raise_code(code, msg);
}

static PyObject *set_errors(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *base, *classes;
    if (!PyArg_ParseTuple(args, "OO!", &base, &PyDict_Type, &classes)) return NULL;
    Py_XSETREF(error_base, Py_NewRef(base));
    Py_XSETREF(error_classes, Py_NewRef(classes));
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* _Mapping: owns the annb_bundle                                           */
/* ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    annb_bundle *b;
} MappingObject;

static void mapping_dealloc(MappingObject *m)
{
    annb_close(m->b);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyTypeObject MappingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "annb._annb._Mapping",
    .tp_basicsize = sizeof(MappingObject),
    .tp_dealloc = (destructor)mapping_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An open bundle's mapping, kept alive by the Bundle and by the arrays lent from it.",
};

/* ------------------------------------------------------------------------ */
/* _Bundle                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    MappingObject *mapping; /* NULL once closed */
    annb_bundle *b;         /* mapping->b, or NULL once closed */
    uint32_t dimension;
    annb_metric metric;
    int has_seen;
    uint64_t user_count;
} BundleObject;

static int bundle_init(BundleObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "verify", NULL};
    PyObject *path_obj;
    int verify = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|p", kwlist, PyUnicode_FSConverter, &path_obj,
                                     &verify))
        return -1;
    if (self->mapping) {
        Py_DECREF(path_obj);
        PyErr_SetString(PyExc_RuntimeError, "Bundle is already open");
        return -1;
    }
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = verify ? ANNB_OPEN_VERIFY_ALL : 0;
    annb_error err = {0};
    annb_bundle *b = NULL;
    const char *path = PyBytes_AS_STRING(path_obj);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = annb_open(&b, path, &oo, &err);
    if (rc == ANNB_OK && verify) {
        rc = annb_verify(b, &err);
        if (rc) {
            annb_close(b);
            b = NULL;
        }
    }
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (rc) {
        raise_err(&err);
        return -1;
    }
    MappingObject *m = PyObject_New(MappingObject, &MappingType);
    if (!m) {
        annb_close(b);
        return -1;
    }
    m->b = b;
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    self->mapping = m;
    self->b = b;
    self->dimension = info.dimension;
    self->metric = info.metric;
    self->has_seen = annb_bundle_has_seen(b);
    self->user_count = annb_space_count(b, ANNB_SPACE_USERS);
    return 0;
}

static void bundle_dealloc(BundleObject *self)
{
    Py_CLEAR(self->mapping);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The open handle, or NULL with ValueError (as a closed file does). */
static annb_bundle *open_handle(BundleObject *self)
{
    if (!self->b) PyErr_SetString(PyExc_ValueError, "I/O operation on a closed bundle");
    return self->b;
}

/* The open handle and a reference to its mapping (*hold, to release with
 * Py_DECREF), for methods that call Python (allocations, conversions: a
 * __del__ or __index__ may close the bundle) while they use the handle. */
static annb_bundle *hold_open(BundleObject *self, MappingObject **hold)
{
    annb_bundle *b = open_handle(self);
    *hold = b ? (MappingObject *)Py_NewRef(self->mapping) : NULL;
    return b;
}

static PyObject *bundle_close(BundleObject *self, PyObject *unused)
{
    (void)unused;
    self->b = NULL;
    Py_CLEAR(self->mapping);
    Py_RETURN_NONE;
}

static PyObject *bundle_closed(BundleObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(self->b == NULL);
}

/* ---- arguments ---- */

/* IDs as a caller gives them: integers (the int64 IDs), str (string IDs,
 * or decimal integers: the library reads each in the space asked about,
 * annb_space_id_of), or, for excluded IDs, an object array or a sequence
 * mixing both. Released by id_args_release. */
typedef struct {
    PyArrayObject *ints;    /* int64, C-contiguous, or NULL */
    int64_t *mixed;         /* PyMem: the integers of a mixed sequence */
    const int64_t *ids;     /* ints' data or mixed: nids of them */
    size_t nids;
    PyObject *strs;         /* a list holding the str IDs alive, or NULL */
    const char **texts;     /* PyMem: their UTF-8, ntexts of them */
    size_t ntexts;
    int scalar;             /* one ID, not an array of them, was given */
} id_args;

/* One call's options, parsed; what they own is released by ask_args_release. */
typedef struct {
    size_t k;
    id_args exclude;        /* read with the GIL held, used without it */
    PyObject *genre_list;   /* list of str, or NULL */
    const char **genres;    /* UTF-8 of genre_list's strings */
    const char *genre_stack[8];
    size_t genre_count;
    long long nprobe, ef_search; /* checked to fit uint32_t by parse_effort */
    int threads, exact;
    int exclude_seen;
} ask_args;

static void id_args_release(id_args *a)
{
    Py_CLEAR(a->ints);
    Py_CLEAR(a->strs);
    PyMem_Free(a->mixed);
    PyMem_Free((void *)a->texts);
    memset(a, 0, sizeof *a);
}

static void ask_args_release(ask_args *a)
{
    id_args_release(&a->exclude);
    Py_CLEAR(a->genre_list);
    if (a->genres != a->genre_stack) PyMem_Free((void *)a->genres);
    a->genres = NULL;
}

/* IDs: an int or an array-like of integers (0-D up to maxdim), as a
 * C-contiguous int64 array. Only integer kinds: a float, bool or string
 * would otherwise be cast into some other ID; a uint64 must fit int64. */
static PyArrayObject *as_ids(PyObject *obj, int maxdim, const char *what)
{
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!arr) return NULL;
    char kind = PyArray_DESCR(arr)->kind;
    if (!(kind == 'i' || kind == 'u') || PyArray_NDIM(arr) > maxdim) {
        Py_DECREF(arr);
        return (PyArrayObject *)raise_fmt(ANNB_E_INVALID, "%s: expected %s, got %s", what,
                                          maxdim ? "integer IDs (an int or an array of them)"
                                                 : "an integer ID",
                                          kind == 'i' || kind == 'u' ? "more dimensions"
                                          : kind == 'b' ? "bool" : kind == 'f' ? "a float"
                                          : "another type");
    }
    if (PyArray_TYPE(arr) == NPY_UINT64) {
        const npy_intp n = PyArray_SIZE(arr);
        PyArrayObject *c = (PyArrayObject *)PyArray_GETCONTIGUOUS(arr);
        Py_DECREF(arr);
        if (!c) return NULL;
        const uint64_t *u = PyArray_DATA(c);
        for (npy_intp i = 0; i < n; i++)
            if (u[i] > INT64_MAX) {
                Py_DECREF(c);
                return (PyArrayObject *)raise_fmt(ANNB_E_INVALID, "%s: ID %llu does not fit in "
                                                  "int64", what, (unsigned long long)u[i]);
            }
        arr = c;
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_FROMANY(
        (PyObject *)arr, NPY_INT64, 0, maxdim,
        NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(arr);
    return out;
}

/* Vectors: any real numeric array-like (float of any width, integers) as
 * C-contiguous float32, copied only when needed. Complex, bool, string and
 * object arrays are refused rather than cast (a cast would drop imaginary
 * parts or parse text). */
static PyArrayObject *as_vectors(PyObject *obj, int mindim, int maxdim, const char *what)
{
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!arr) return NULL;
    char kind = PyArray_DESCR(arr)->kind;
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        Py_DECREF(arr);
        return (PyArrayObject *)raise_fmt(ANNB_E_INVALID, "%s: expected real numbers, got "
                                          "dtype kind '%c'", what, kind);
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_FROMANY(
        (PyObject *)arr, NPY_FLOAT32, mindim, maxdim,
        NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(arr);
    return out;
}

/* Whether obj is an integer for an ID (an int or a numpy integer, not a bool). */
static int is_int_id(PyObject *obj)
{
    return PyLong_Check(obj) ? !PyBool_Check(obj)
                             : PyArray_IsScalar(obj, Integer) != 0;
}

/* One str ID of a list into out->texts (its UTF-8, lent by the str). */
static int add_text(id_args *out, PyObject *str, const char *what)
{
    Py_ssize_t len;
    const char *utf8 = PyUnicode_AsUTF8AndSize(str, &len);
    if (!utf8) return -1;
    if (strlen(utf8) != (size_t)len) {
        raise_fmt(ANNB_E_INVALID, "%s: an ID holds a NUL character", what);
        return -1;
    }
    if (PyList_Append(out->strs, str) < 0) return -1;
    out->texts[out->ntexts++] = utf8;
    return 0;
}

/* IDs (id_args) from an int, a str, or an array-like of them up to one
 * dimension. mixed_ok: str and integers may come together (exclusions);
 * otherwise they are all of one kind (subjects, whose order matters). */
static int parse_id_args(id_args *out, PyObject *obj, int mixed_ok, const char *what)
{
    memset(out, 0, sizeof *out);
    PyObject *list = NULL;
    int has_str = 0; /* a list or tuple holding a str: read element by element, not as
                      * numpy would (it makes every element of ["a", 5] a str) */
    for (Py_ssize_t i = 0; (PyList_Check(obj) || PyTuple_Check(obj)) && !has_str &&
                           i < PySequence_Fast_GET_SIZE(obj); i++)
        has_str = PyUnicode_Check(PySequence_Fast_GET_ITEM(obj, i));
    if (PyUnicode_Check(obj)) {
        out->scalar = 1;
        list = Py_BuildValue("[O]", obj);
    } else if (has_str) {
        list = PySequence_List(obj);
    } else {
        PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_O(obj);
        if (!arr) return -1;
        char kind = PyArray_DESCR(arr)->kind;
        if (kind != 'U' && kind != 'O') { /* integers (and the refusals of the rest) */
            Py_DECREF(arr);
            if (!(out->ints = as_ids(obj, 1, what))) return -1;
            out->scalar = PyArray_NDIM(out->ints) == 0;
            out->ids = PyArray_DATA(out->ints);
            out->nids = (size_t)PyArray_SIZE(out->ints);
            return 0;
        }
        if (PyArray_NDIM(arr) > 1) {
            Py_DECREF(arr);
            raise_fmt(ANNB_E_INVALID, "%s: expected IDs (an int or a str, or a 1-D array of them), "
                      "got more dimensions", what);
            return -1;
        }
        out->scalar = PyArray_NDIM(arr) == 0;
        PyObject *items = PyArray_ToList(arr);
        Py_DECREF(arr);
        if (!items) return -1;
        list = out->scalar ? Py_BuildValue("[N]", items) : items;
    }
    if (!list) return -1;
    Py_ssize_t n = PyList_GET_SIZE(list);
    out->strs = PyList_New(0);
    out->texts = PyMem_Calloc((size_t)n + 1, sizeof *out->texts);
    out->mixed = PyMem_Calloc((size_t)n + 1, sizeof *out->mixed);
    int rc = out->strs && out->texts && out->mixed ? 0 : -1;
    if (rc) PyErr_NoMemory();
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *e = PyList_GET_ITEM(list, i);
        if (PyUnicode_Check(e)) {
            rc = add_text(out, e, what);
        } else if (is_int_id(e)) {
            long long v = PyLong_AsLongLong(e);
            if (v == -1 && PyErr_Occurred()) rc = -1;
            else out->mixed[out->nids++] = (int64_t)v;
        } else {
            raise_fmt(ANNB_E_INVALID, "%s: expected IDs (int or str), got %.80s", what,
                      Py_TYPE(e)->tp_name);
            rc = -1;
        }
    }
    Py_DECREF(list);
    if (rc == 0 && !mixed_ok && out->nids && out->ntexts) {
        raise_fmt(ANNB_E_INVALID, "%s: expected IDs of one kind, all str or all integers", what);
        rc = -1;
    }
    out->ids = out->mixed;
    if (rc) id_args_release(out);
    return rc;
}

/* exclude: None, or IDs (id_args; str and integers may mix). */
static int parse_exclude(ask_args *a, PyObject *obj)
{
    if (!obj || obj == Py_None) return 0;
    return parse_id_args(&a->exclude, obj, 1, "exclude");
}

/* genres: None, one str, or an iterable of str. */
static int parse_genres(ask_args *a, PyObject *obj)
{
    if (!obj || obj == Py_None) return 0;
    if (PyUnicode_Check(obj)) a->genre_list = Py_BuildValue("[O]", obj);
    else a->genre_list = PySequence_List(obj);
    if (!a->genre_list) return -1;
    Py_ssize_t n = PyList_GET_SIZE(a->genre_list);
    a->genres = n <= 8 ? a->genre_stack : PyMem_Calloc((size_t)n, sizeof *a->genres);
    if (!a->genres) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyList_GET_ITEM(a->genre_list, i);
        if (!PyUnicode_Check(s)) {
            PyErr_Format(PyExc_TypeError, "genres: expected str, got %.80s", Py_TYPE(s)->tp_name);
            return -1;
        }
        if (!(a->genres[i] = PyUnicode_AsUTF8(s))) return -1;
    }
    a->genre_count = (size_t)n;
    return 0;
}

static int parse_effort(const ask_args *a)
{
    if (a->nprobe < 0 || a->nprobe > UINT32_MAX || a->ef_search < 0 || a->ef_search > UINT32_MAX) {
        raise_fmt(ANNB_E_INVALID, "nprobe and ef_search must be 0 (as tuned) .. %u, got %lld and "
                  "%lld", UINT32_MAX, a->nprobe, a->ef_search);
        return -1;
    }
    return 0;
}

static int parse_k(ask_args *a, Py_ssize_t k)
{
    if (parse_effort(a)) return -1;
    if (k < 1) { /* the largest k is annb_ask's to say */
        raise_fmt(ANNB_E_INVALID, "k must be at least 1, got %zd", k);
        return -1;
    }
    a->k = (size_t)k;
    return 0;
}

/* An ID of `space` as Python gives it back: its string ID (str) where the
 * space has them, else the int (a damaged key table: the int too). */
static PyObject *id_object(const annb_bundle *b, annb_space space, int64_t id)
{
    size_t len;
    const char *key = annb_space_has_keys(b, space) ? annb_space_key(b, space, id, &len) : NULL;
    if (key) return PyUnicode_DecodeUTF8(key, (Py_ssize_t)len, "replace");
    return PyLong_FromLongLong(id);
}

/* The (ids, scores) pair of arrays of shape (n, k) for n * k hits: ids are
 * int64 (ID_NONE in empty slots), or, where `space` of keys_of has string
 * IDs, an object array of str (None in empty slots). keys_of: NULL, or the
 * bundle, held open by the caller. */
static PyObject *hits_to_arrays(const annb_hit *hits, size_t n, size_t k,
                                const annb_bundle *keys_of, annb_space space)
{
    npy_intp dims[2] = {(npy_intp)n, (npy_intp)k};
    const int keyed = keys_of && annb_space_has_keys(keys_of, space);
    PyObject *ids = PyArray_SimpleNew(2, dims, keyed ? NPY_OBJECT : NPY_INT64);
    PyObject *scores = ids ? PyArray_SimpleNew(2, dims, NPY_FLOAT32) : NULL;
    if (!scores) {
        Py_XDECREF(ids);
        return NULL;
    }
    float *sp = PyArray_DATA((PyArrayObject *)scores);
    for (size_t i = 0; i < n * k; i++) sp[i] = hits[i].score;
    if (!keyed) {
        int64_t *ip = PyArray_DATA((PyArrayObject *)ids);
        for (size_t i = 0; i < n * k; i++) ip[i] = hits[i].id;
        return Py_BuildValue("(NN)", ids, scores);
    }
    PyObject **op = PyArray_DATA((PyArrayObject *)ids); /* NULL or None: set each */
    for (size_t i = 0; i < n * k; i++) {
        PyObject *o = hits[i].id == ANNB_ID_NONE ? Py_NewRef(Py_None)
                                                 : id_object(keys_of, space, hits[i].id);
        if (!o) {
            Py_DECREF(ids);
            Py_DECREF(scores);
            return NULL;
        }
        Py_XSETREF(op[i], o);
    }
    return Py_BuildValue("(NN)", ids, scores);
}

/* Answers `count` questions of one kind into hits (count * k): the
 * library's question model, so the rules and messages are the ones every
 * front end gives. Runs without the GIL: it touches no Python object. */
static int ask(annb_hit *hits, const annb_bundle *b, annb_question_kind kind,
               const id_args *subjects, const float *vectors, size_t count, const ask_args *a,
               annb_error *err)
{
    annb_question q = ANNB_QUESTION_INIT;
    q.kind = kind;
    q.subjects = subjects && subjects->nids ? subjects->ids : NULL;
    q.subject_texts = subjects && subjects->ntexts ? subjects->texts : NULL;
    q.vectors = vectors;
    q.count = count;
    q.k = a->k;
    q.exclude_seen = a->exclude_seen;
    q.exclude_ids = a->exclude.nids ? a->exclude.ids : NULL;
    q.exclude_count = a->exclude.nids;
    q.exclude_texts = a->exclude.ntexts ? a->exclude.texts : NULL;
    q.exclude_text_count = a->exclude.ntexts;
    q.genres = a->genre_count ? a->genres : NULL;
    q.genre_count = a->genre_count;
    q.nprobe = (uint32_t)a->nprobe;
    q.ef_search = (uint32_t)a->ef_search;
    q.threads = a->threads;
    q.exact = a->exact;
    return annb_ask(hits, &b, 1, &q, err);
}

/* Runs ask() without the GIL, holding the mapping, and returns (ids, scores). */
static PyObject *ask_py(BundleObject *self, annb_question_kind kind, const id_args *subjects,
                        const float *vectors, size_t count, const ask_args *a)
{
    annb_bundle *b = open_handle(self);
    if (!b) return NULL;
    const annb_space space = annb_question_space(kind);
    if (count == 0) return hits_to_arrays(NULL, 0, a->k, b, space);
    if (count > SIZE_MAX / sizeof(annb_hit) / a->k) return PyErr_NoMemory();
    annb_hit stack[64];
    annb_hit *hits = count * a->k <= 64 ? stack : PyMem_RawMalloc(count * a->k * sizeof *hits);
    if (!hits) return PyErr_NoMemory();
    annb_error err = {0};
    int rc;
    MappingObject *hold = (MappingObject *)Py_NewRef(self->mapping);
    Py_BEGIN_ALLOW_THREADS
    rc = ask(hits, b, kind, subjects, vectors, count, a, &err);
    Py_END_ALLOW_THREADS
    /* string IDs are lent by the bundle: read while it is held */
    PyObject *out = rc ? raise_err(&err) : hits_to_arrays(hits, count, a->k, b, space);
    Py_DECREF(hold);
    if (hits != stack) PyMem_RawFree(hits);
    return out;
}

/* as_frame=True: self.frame(ids, scores, space=...) of the answer (steals it). */
static PyObject *as_frame_of(BundleObject *self, PyObject *answer, annb_question_kind kind)
{
    const char *space = annb_question_space(kind) == ANNB_SPACE_USERS ? "users" : "items";
    PyObject *frame = PyObject_GetAttrString((PyObject *)self, "frame");
    PyObject *kw = frame ? Py_BuildValue("{s:s}", "space", space) : NULL;
    PyObject *out = kw ? PyObject_Call(frame, answer, kw) : NULL;
    Py_XDECREF(kw);
    Py_XDECREF(frame);
    Py_DECREF(answer);
    return out;
}

/* search(queries, k=10, *, exclude=None, genres=None, nprobe=0,
 *        ef_search=0, threads=0, exact=False) */
static PyObject *bundle_search(BundleObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"queries", "k", "exclude", "genres", "nprobe", "ef_search",
                             "threads", "exact", "as_frame", NULL};
    PyObject *qobj, *exclude = NULL, *genres = NULL;
    Py_ssize_t k = 10;
    int as_frame = 0;
    ask_args a = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n$OOLLipp", kwlist, &qobj, &k, &exclude,
                                     &genres, &a.nprobe, &a.ef_search, &a.threads, &a.exact,
                                     &as_frame))
        return NULL;
    if (!open_handle(self)) return NULL;
    PyObject *out = NULL;
    PyArrayObject *q = as_vectors(qobj, 1, 2, "queries");
    if (!q) return NULL;
    int nd = PyArray_NDIM(q);
    npy_intp d = PyArray_DIM(q, nd - 1);
    if ((uint64_t)d != self->dimension) {
        raise_fmt(ANNB_E_DIMENSION, "queries have %zd values, the bundle's vectors %u",
                  (Py_ssize_t)d, self->dimension);
        goto out;
    }
    if (parse_k(&a, k) || parse_exclude(&a, exclude) || parse_genres(&a, genres)) goto out;
    out = ask_py(self, ANNB_Q_ITEMS_FOR_VECTOR, NULL, PyArray_DATA(q),
                 nd == 1 ? 1 : (size_t)PyArray_DIM(q, 0), &a);
    if (out && as_frame) out = as_frame_of(self, out, ANNB_Q_ITEMS_FOR_VECTOR);
out:
    ask_args_release(&a);
    Py_DECREF(q);
    return out;
}

/* The questions about stored subjects: one ID or an array of them. */
static PyObject *subject_question(BundleObject *self, annb_question_kind kind, PyObject *args,
                                  PyObject *kwds)
{
    static char *kwlist[] = {"ids", "k", "exclude", "genres", "nprobe", "ef_search", "threads",
                             "exact", "as_frame", NULL};
    static char *kwlist_user[] = {"users", "k", "exclude_seen", "exclude", "genres", "nprobe",
                                  "ef_search", "threads", "exact", "as_frame", NULL};
    PyObject *sobj, *exclude = NULL, *genres = NULL, *seen = Py_None;
    Py_ssize_t k = 10;
    int as_frame = 0;
    ask_args a = {0};
    int ok = kind == ANNB_Q_ITEMS_FOR_USER
                 ? PyArg_ParseTupleAndKeywords(args, kwds, "O|nO$OOLLipp", kwlist_user, &sobj,
                                               &k, &seen, &exclude, &genres, &a.nprobe,
                                               &a.ef_search, &a.threads, &a.exact, &as_frame)
                 : PyArg_ParseTupleAndKeywords(args, kwds, "O|n$OOLLipp", kwlist, &sobj, &k,
                                               &exclude, &genres, &a.nprobe, &a.ef_search,
                                               &a.threads, &a.exact, &as_frame);
    if (!ok || !open_handle(self)) return NULL;
    PyObject *out = NULL;
    id_args s;
    if (parse_id_args(&s, sobj, 0, "ids")) return NULL;
    /* exclude_seen None: whenever the bundle knows what was seen; True on a
     * bundle without interactions is the library's UnsupportedError. */
    a.exclude_seen = kind == ANNB_Q_ITEMS_FOR_USER && self->has_seen;
    if (kind == ANNB_Q_ITEMS_FOR_USER && seen != Py_None) {
        int want = PyObject_IsTrue(seen);
        if (want < 0) goto out;
        a.exclude_seen = want;
    }
    if (parse_k(&a, k) || parse_exclude(&a, exclude) || parse_genres(&a, genres)) goto out;
    out = ask_py(self, kind, &s, NULL, s.nids + s.ntexts, &a);
    if (out && as_frame) out = as_frame_of(self, out, kind);
out:
    ask_args_release(&a);
    id_args_release(&s);
    return out;
}

static PyObject *bundle_recommend(BundleObject *self, PyObject *args, PyObject *kwds)
{
    return subject_question(self, ANNB_Q_ITEMS_FOR_USER, args, kwds);
}

static PyObject *bundle_similar_items(BundleObject *self, PyObject *args, PyObject *kwds)
{
    return subject_question(self, ANNB_Q_SIMILAR_ITEMS, args, kwds);
}

static PyObject *bundle_similar_users(BundleObject *self, PyObject *args, PyObject *kwds)
{
    return subject_question(self, ANNB_Q_SIMILAR_USERS, args, kwds);
}

static PyObject *bundle_users_for_item(BundleObject *self, PyObject *args, PyObject *kwds)
{
    return subject_question(self, ANNB_Q_USERS_FOR_ITEM, args, kwds);
}

/* ---- lookups ---- */

static int parse_space(PyObject *obj, annb_space *out)
{
    const char *s = obj ? PyUnicode_AsUTF8(obj) : "items";
    if (!s) return -1;
    if (strcmp(s, "items") == 0) *out = ANNB_SPACE_ITEMS;
    else if (strcmp(s, "users") == 0) *out = ANNB_SPACE_USERS;
    else {
        raise_fmt(ANNB_E_INVALID, "space must be \"items\" or \"users\", got \"%.100s\"", s);
        return -1;
    }
    return 0;
}

/* The ID `text` names in `space` of b (annb_space_id_of), or -1 with the
 * library's wording raised: NotFoundError for an ID the space does not
 * hold, InvalidError for text that cannot be one there. */
static int resolve_text(int64_t *id, const annb_bundle *b, annb_space space, const char *text)
{
    const char *what = space == ANNB_SPACE_USERS ? "user" : "item";
    int rc = annb_space_id_of(b, space, text, strlen(text), id);
    if (rc == ANNB_OK) return 0;
    if (rc == ANNB_E_NOT_FOUND && annb_space_has_keys(b, space))
        raise_fmt(rc, "%s \"%.200s\" is not in the bundle", what, text);
    else if (rc == ANNB_E_NOT_FOUND)
        raise_fmt(rc, "%s %.200s is not in the bundle", what, text);
    else
        raise_fmt(rc, "%s ID \"%.200s\": expected an integer (the bundle's %s IDs are integers)",
                  what, text, what);
    return -1;
}

/* vector(id, space="items"): a copy of the stored vector (1-D; 2-D for an
 * array of IDs). */
static PyObject *bundle_vector(BundleObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ids", "space", NULL};
    PyObject *sobj, *space_obj = NULL;
    annb_space space;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|U", kwlist, &sobj, &space_obj)) return NULL;
    if (parse_space(space_obj, &space)) return NULL;
    /* arguments first (conversions may run Python code that closes the
     * bundle), then the handle, held for the rest of the call */
    id_args s;
    if (parse_id_args(&s, sobj, 0, "ids")) return NULL;
    MappingObject *hold;
    annb_bundle *b = hold_open(self, &hold);
    if (!b) {
        id_args_release(&s);
        return NULL;
    }
    npy_intp n = (npy_intp)(s.nids + s.ntexts);
    npy_intp dims[2] = {n, self->dimension};
    PyObject *out = s.scalar ? PyArray_SimpleNew(1, dims + 1, NPY_FLOAT32)
                             : PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    if (out) {
        float *v = PyArray_DATA((PyArrayObject *)out);
        for (npy_intp i = 0; i < n; i++) {
            int64_t id = s.ntexts ? ANNB_ID_NONE : s.ids[i];
            if (s.ntexts && resolve_text(&id, b, space, s.texts[i])) {
                Py_CLEAR(out);
                break;
            }
            if (annb_vector_get(b, space, id, v + (size_t)i * self->dimension)) {
                Py_CLEAR(out);
                raise_fmt(ANNB_E_NOT_FOUND, "%s %lld is not in the bundle",
                          space == ANNB_SPACE_USERS ? "user" : "item", (long long)id);
                break;
            }
        }
    }
    id_args_release(&s);
    Py_DECREF(hold);
    return out;
}

/* One item ID, for title() and genres(): an int, or a str read in the
 * bundle's item space. Two steps: the argument is converted first (that may
 * run Python code, which may close the bundle), then, with the bundle held
 * (b), a str is read. 0, or -1 with an exception. */
static int parse_item_id(PyObject *obj, int64_t *id, const char **text)
{
    *text = NULL;
    if (PyUnicode_Check(obj)) return (*text = PyUnicode_AsUTF8(obj)) ? 0 : -1;
    PyArrayObject *a = as_ids(obj, 0, "id");
    if (!a) return -1;
    *id = *(const int64_t *)PyArray_DATA(a);
    Py_DECREF(a);
    return 0;
}

/* title(id) -> str or None (an item without a catalog entry). */
static PyObject *bundle_title(BundleObject *self, PyObject *arg)
{
    int64_t id;
    const char *text;
    MappingObject *hold;
    if (parse_item_id(arg, &id, &text)) return NULL;
    annb_bundle *b = hold_open(self, &hold);
    if (!b) return NULL;
    if (text && resolve_text(&id, b, ANNB_SPACE_ITEMS, text)) {
        Py_DECREF(hold);
        return NULL;
    }
    PyObject *out;
    const char *t = annb_item_title(b, id);
    if (!has_id(b, ANNB_SPACE_ITEMS, id))
        out = raise_fmt(ANNB_E_NOT_FOUND, "item %lld is not in the bundle", (long long)id);
    else if (!t)
        out = Py_NewRef(Py_None);
    else /* titles are checked by annb_verify, not annb_open: repair, never fail */
        out = PyUnicode_DecodeUTF8(t, (Py_ssize_t)strlen(t), "replace");
    Py_DECREF(hold);
    return out;
}

/* genres(id) -> list of str. */
static PyObject *bundle_genres(BundleObject *self, PyObject *arg)
{
    int64_t id;
    const char *text;
    MappingObject *hold;
    if (parse_item_id(arg, &id, &text)) return NULL;
    annb_bundle *b = hold_open(self, &hold);
    if (!b) return NULL;
    if (text && resolve_text(&id, b, ANNB_SPACE_ITEMS, text)) {
        Py_DECREF(hold);
        return NULL;
    }
    char stack[256];
    int n = annb_item_genres(b, id, stack, sizeof stack);
    char *buf = stack;
    if (n >= 0 && (size_t)n >= sizeof stack) {
        if ((buf = PyMem_Malloc((size_t)n + 1))) annb_item_genres(b, id, buf, (size_t)n + 1);
    }
    Py_DECREF(hold); /* the text is copied out of the bundle from here on */
    if (n == ANNB_E_NOT_FOUND)
        return raise_fmt(ANNB_E_NOT_FOUND, "item %lld is not in the bundle", (long long)id);
    if (n < 0) return raise_code(n, NULL);
    if (!buf) return PyErr_NoMemory();
    PyObject *out = PyList_New(0);
    if (out && n > 0) {
        PyObject *joined = PyUnicode_DecodeUTF8(buf, n, "replace");
        PyObject *sep = PyUnicode_FromString("|");
        Py_XSETREF(out, joined && sep ? PyUnicode_Split(joined, sep, -1) : NULL);
        Py_XDECREF(joined);
        Py_XDECREF(sep);
    }
    if (buf != stack) PyMem_Free(buf);
    return out;
}

/* ids(space="items"): the bundle's own ascending IDs, read-only, no copy;
 * the array keeps the mapping alive (its base). */
static PyObject *bundle_ids(BundleObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"space", NULL};
    PyObject *space_obj = NULL;
    annb_space space;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|U", kwlist, &space_obj)) return NULL;
    annb_bundle *b = open_handle(self);
    if (!b || parse_space(space_obj, &space)) return NULL;
    npy_intp n = (npy_intp)annb_space_count(b, space);
    const int64_t *ids = annb_space_ids(b, space);
    if (!ids) return PyArray_SimpleNew(1, &n, NPY_INT64); /* empty */
    PyObject *arr = PyArray_New(&PyArray_Type, 1, &n, NPY_INT64, NULL, (void *)ids, 0,
                                NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
    if (!arr) return NULL;
    if (PyArray_SetBaseObject((PyArrayObject *)arr, Py_NewRef(self->mapping)) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

/* keys(space="items", start=0, stop=None): the string IDs of rows
 * [start, stop) as a list of str, in the order of ids(space); None when the
 * space has integer IDs. */
static PyObject *bundle_keys(BundleObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"space", "start", "stop", NULL};
    PyObject *space_obj = NULL, *stop_obj = Py_None;
    Py_ssize_t start = 0;
    annb_space space;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|UnO", kwlist, &space_obj, &start, &stop_obj))
        return NULL;
    if (parse_space(space_obj, &space)) return NULL;
    Py_ssize_t stop = -1;
    if (stop_obj != Py_None && (stop = PyNumber_AsSsize_t(stop_obj, PyExc_OverflowError)) == -1 &&
        PyErr_Occurred())
        return NULL;
    MappingObject *hold;
    annb_bundle *b = hold_open(self, &hold);
    if (!b) return NULL;
    if (!annb_space_has_keys(b, space)) {
        Py_DECREF(hold);
        Py_RETURN_NONE;
    }
    /* as a slice of the rows: negative from the end, clipped */
    Py_ssize_t n = (Py_ssize_t)annb_space_count(b, space);
    if (stop_obj == Py_None) stop = n;
    if (start < 0) start = start + n < 0 ? 0 : start + n;
    if (stop < 0) stop = stop + n < 0 ? 0 : stop + n;
    if (start > n) start = n;
    if (stop > n) stop = n;
    if (stop < start) stop = start;
    PyObject *out = PyList_New(stop - start);
    for (Py_ssize_t r = start; out && r < stop; r++) {
        size_t len;
        const char *key = annb_space_key_at(b, space, (uint64_t)r, &len);
        PyObject *str = key ? PyUnicode_DecodeUTF8(key, (Py_ssize_t)len, "replace") : NULL;
        if (!key)
            raise_fmt(ANNB_E_CORRUPT, "%s row %zd: the stored string ID is damaged (run verify())",
                      space == ANNB_SPACE_USERS ? "users" : "items", r);
        if (!str) Py_CLEAR(out);
        else PyList_SET_ITEM(out, r - start, str);
    }
    Py_DECREF(hold);
    return out;
}

static PyObject *bundle_verify(BundleObject *self, PyObject *unused)
{
    (void)unused;
    annb_bundle *b = open_handle(self);
    if (!b) return NULL;
    annb_error err = {0};
    int rc;
    MappingObject *hold = (MappingObject *)Py_NewRef(self->mapping);
    Py_BEGIN_ALLOW_THREADS
    rc = annb_verify(b, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(hold);
    if (rc) return raise_err(&err);
    Py_RETURN_NONE;
}

static PyObject *recall_dict(const annb_recall_info *r)
{
    return Py_BuildValue("{s:O,s:s,s:I,s:I,s:d,s:d,s:I,s:I,s:I}", "measured",
                         r->measured ? Py_True : Py_False, "questions",
                         r->questions ? r->questions : "exact", "k", r->k, "queries", r->queries,
                         "target", r->target, "recall", r->recall, "nprobe", r->nprobe,
                         "ef_search", r->ef_search, "rerank", r->rerank);
}

/* _info() -> dict of what annb_bundle_info says, plus counts. */
static PyObject *bundle_info(BundleObject *self, PyObject *unused)
{
    (void)unused;
    MappingObject *hold;
    annb_bundle *b = hold_open(self, &hold);
    if (!b) return NULL;
    annb_bundle_info i;
    annb_bundle_info_get(&i, b);
    PyObject *genres = PyList_New(i.genre_count);
    for (uint32_t g = 0; genres && g < i.genre_count; g++) {
        const char *name = annb_genre_name(b, g);
        PyObject *s = PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name), "replace");
        if (!s) Py_CLEAR(genres);
        else PyList_SET_ITEM(genres, g, s);
    }
    PyObject *recall = i.has_recall ? recall_dict(&i.recall) : Py_NewRef(Py_None);
    if (!genres || !recall) {
        Py_XDECREF(genres);
        Py_XDECREF(recall);
        Py_DECREF(hold);
        return NULL;
    }
    char format[32];
    snprintf(format, sizeof format, "%u.%u", i.format_major, i.format_minor);
    PyObject *result_ = Py_BuildValue("{s:I,s:K,s:K,s:s,s:s,s:O,s:N,s:O,s:N,s:s,s:K,s:K,s:s,s:s}",
                         "dimension", i.dimension, "count", (unsigned long long)i.count,
                         "users", (unsigned long long)self->user_count,
                         "metric", annb_metric_name(i.metric), "index", i.index ? i.index : "",
                         "has_catalog", i.has_catalog ? Py_True : Py_False, "genres", genres,
                         "has_interactions", self->has_seen ? Py_True : Py_False,
                         "recall", recall, "format", format,
                         "file_size", (unsigned long long)i.file_size,
                         "bundle_id", (unsigned long long)annb_bundle_id(b),
                         "item_ids", annb_space_has_keys(b, ANNB_SPACE_ITEMS) ? "string" : "integer",
                         "user_ids", annb_space_has_keys(b, ANNB_SPACE_USERS) ? "string" : "integer");
    Py_DECREF(hold);
    return result_;
}

/* _recalls() -> list of dicts, one per k measured at build. */
static PyObject *bundle_recalls(BundleObject *self, PyObject *unused)
{
    (void)unused;
    MappingObject *hold;
    annb_bundle *b = hold_open(self, &hold);
    if (!b) return NULL;
    uint32_t n = annb_recall_count(b);
    PyObject *out = PyList_New(n);
    for (uint32_t i = 0; out && i < n; i++) {
        annb_recall_info r;
        PyObject *d = annb_recall_get(&r, b, i) == ANNB_OK ? recall_dict(&r) : NULL;
        if (!d) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, d);
    }
    PyObject *result_ = out;
    Py_DECREF(hold);
    return result_;
}

static PyObject *bundle_provenance_text(BundleObject *self, PyObject *unused)
{
    (void)unused;
    MappingObject *hold;
    annb_bundle *b = hold_open(self, &hold);
    if (!b) return NULL;
    const char *t = annb_bundle_provenance(b);
    PyObject *result_ = t ? PyUnicode_DecodeUTF8(t, (Py_ssize_t)strlen(t), "replace")
                          : Py_NewRef(Py_None);
    Py_DECREF(hold);
    return result_;
}

static PyMethodDef bundle_methods[] = {
    {"close", (PyCFunction)bundle_close, METH_NOARGS,
     "close($self)\n--\n\nClose the bundle. Arrays from ids() stay valid (they keep the mapping); "
     "every other method then raises ValueError."},
    {"search", (PyCFunction)(void (*)(void))bundle_search, METH_VARARGS | METH_KEYWORDS,
     "search($self, queries, k=10, *, exclude=None, genres=None, nprobe=0, ef_search=0, threads=0, "
     "exact=False, as_frame=False)\n--\n\n"
     "The k items nearest each query vector.\n\n"
     "queries: a 1-D vector (one query) or a 2-D array (n, dimension); any float dtype and any\n"
     "layout (converted to C-contiguous float32, copied only when needed).\n"
     "Returns (ids, scores): int64 and float32 arrays of shape (n, k), n = 1 for a 1-D query;\n"
     "best first; slots past the available items hold annb.ID_NONE with a meaningless score.\n"
     "exclude: item IDs never returned. genres: a name or names; items with at least one of\n"
     "them. nprobe / ef_search: search effort (0: as tuned at build). threads: threads this\n"
     "call may use (0/1: the calling one). exact: exact scan whatever the index.\n"
     "as_frame: return Bundle.frame(ids, scores) (a pandas DataFrame) instead.\n"
     "The GIL is released while searching."},
    {"recommend", (PyCFunction)(void (*)(void))bundle_recommend, METH_VARARGS | METH_KEYWORDS,
     "recommend($self, users, k=10, exclude_seen=None, *, exclude=None, genres=None, nprobe=0, "
     "ef_search=0, threads=0, exact=False, as_frame=False)\n--\n\n"
     "Top-k items for users stored in the bundle (one ID or an array of IDs), as (ids, scores)\n"
     "of shape (n, k). exclude_seen: None (default) excludes the items each user has seen\n"
     "whenever the bundle stores interactions; True demands it (UnsupportedError without\n"
     "them); False never excludes them."},
    {"similar_items", (PyCFunction)(void (*)(void))bundle_similar_items,
     METH_VARARGS | METH_KEYWORDS,
     "similar_items($self, ids, k=10, *, exclude=None, genres=None, nprobe=0, ef_search=0, threads=0, "
     "exact=False, as_frame=False)\n--\n\n"
     "The k items nearest each given item's stored vector, the item itself left out.\n"
     "(ids, scores) of shape (n, k)."},
    {"similar_users", (PyCFunction)(void (*)(void))bundle_similar_users,
     METH_VARARGS | METH_KEYWORDS,
     "similar_users($self, ids, k=10, *, exclude=None, nprobe=0, ef_search=0, threads=0, exact=False, "
     "as_frame=False)"
     "\n--\n\nThe k users nearest each given user, the user left out. (ids, scores) (n, k)."},
    {"users_for_item", (PyCFunction)(void (*)(void))bundle_users_for_item,
     METH_VARARGS | METH_KEYWORDS,
     "users_for_item($self, ids, k=10, *, exclude=None, nprobe=0, ef_search=0, threads=0, exact=False, "
     "as_frame=False)"
     "\n--\n\nThe k users whose vectors score highest against each item's. (ids, scores) (n, k)."},
    {"vector", (PyCFunction)(void (*)(void))bundle_vector, METH_VARARGS | METH_KEYWORDS,
     "vector($self, ids, space='items')\n--\n\nThe stored vector of an ID (1-D float32 copy; for an\n"
     "array of IDs, 2-D). Cosine bundles store normalised vectors."},
    {"title", (PyCFunction)bundle_title, METH_O,
     "title($self, id)\n--\n\nThe item's title, or None when the catalog has no entry for it."},
    {"genres", (PyCFunction)bundle_genres, METH_O,
     "genres($self, id)\n--\n\nThe item's genres as a list of str ([] without a catalog entry)."},
    {"ids", (PyCFunction)(void (*)(void))bundle_ids, METH_VARARGS | METH_KEYWORDS,
     "ids($self, space='items')\n--\n\nEvery ID of the space, ascending: a read-only int64 view of the\n"
     "bundle's memory-mapped section (no copy). It keeps the mapping alive after close()."},
    {"keys", (PyCFunction)(void (*)(void))bundle_keys, METH_VARARGS | METH_KEYWORDS,
     "keys($self, space='items', start=0, stop=None)\n--\n\nThe string IDs of the space's rows\n"
     "[start, stop) (a slice: negative counts from the end) as a list of str, in the order of\n"
     "ids(space), so ids(space)[i] is annb.key_id(keys(space)[i]); None when the space has\n"
     "integer IDs."},
    {"verify", (PyCFunction)bundle_verify, METH_NOARGS,
     "verify($self)\n--\n\nCheck every section's checksum and meaning (what opening may skip);\n"
     "raises the matching annb.Error on the first problem."},
    {"_info", (PyCFunction)bundle_info, METH_NOARGS, NULL},
    {"_recalls", (PyCFunction)bundle_recalls, METH_NOARGS, NULL},
    {"_provenance_text", (PyCFunction)bundle_provenance_text, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef bundle_getset[] = {
    {"closed", (getter)bundle_closed, NULL, "True after close().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject BundleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "annb._annb._Bundle",
    .tp_basicsize = sizeof(BundleObject),
    .tp_dealloc = (destructor)bundle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C half of annb.Bundle (see there).",
    .tp_methods = bundle_methods,
    .tp_getset = bundle_getset,
    .tp_init = (initproc)bundle_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------ */
/* Building                                                                  */
/* ------------------------------------------------------------------------ */

/* One of items / users: (ids, vectors) arrays converted into m, or a path. */
typedef struct {
    PyArrayObject *ids, *vecs;
    PyObject *path; /* bytes, or NULL */
    annb_matrix m;
} build_rows;

static void build_rows_release(build_rows *r)
{
    Py_CLEAR(r->ids);
    Py_CLEAR(r->vecs);
    Py_CLEAR(r->path);
}

static int parse_rows(build_rows *r, PyObject *obj, const char *name)
{
    if (!obj || obj == Py_None) return 0;
    if (PyTuple_Check(obj) && PyTuple_GET_SIZE(obj) == 2) {
        r->ids = as_ids(PyTuple_GET_ITEM(obj, 0), 1, name);
        if (!r->ids) return -1;
        if (PyArray_NDIM(r->ids) != 1) {
            raise_fmt(ANNB_E_INVALID, "%s: expected a 1-D array of IDs", name);
            return -1;
        }
        r->vecs = as_vectors(PyTuple_GET_ITEM(obj, 1), 2, 2, name);
        if (!r->vecs) return -1;
        if (PyArray_DIM(r->vecs, 0) != PyArray_DIM(r->ids, 0)) {
            raise_fmt(ANNB_E_INVALID, "%s: %zd IDs for %zd vectors", name,
                      (Py_ssize_t)PyArray_DIM(r->ids, 0), (Py_ssize_t)PyArray_DIM(r->vecs, 0));
            return -1;
        }
        if (PyArray_DIM(r->vecs, 1) > UINT32_MAX) {
            raise_fmt(ANNB_E_LIMIT, "%s: too many dimensions", name);
            return -1;
        }
        r->m = (annb_matrix){PyArray_DATA(r->ids), PyArray_DATA(r->vecs),
                             (uint64_t)PyArray_DIM(r->ids, 0), (uint32_t)PyArray_DIM(r->vecs, 1)};
        return 0;
    }
    return PyUnicode_FSConverter(obj, &r->path) ? 0 : -1;
}

/* PyUnicode_FSConverter that takes None (leaving *out NULL). */
static int opt_fs_converter(PyObject *obj, void *out)
{
    if (obj == Py_None) {
        *(PyObject **)out = NULL;
        return 1;
    }
    return PyUnicode_FSConverter(obj, out);
}

static const char *opt_path(PyObject *bytes)
{
    return bytes ? PyBytes_AS_STRING(bytes) : NULL;
}

static PyObject *report_dict(const annb_build_report *r)
{
    PyObject *recalls = PyList_New(r->recall_count);
    for (uint32_t i = 0; recalls && i < r->recall_count; i++) {
        PyObject *d = recall_dict(&r->recalls[i]);
        if (!d) Py_CLEAR(recalls);
        else PyList_SET_ITEM(recalls, i, d);
    }
    if (!recalls) return NULL;
    return Py_BuildValue(
        "{s:K,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:s,s:N,s:N,s:O,s:s,s:K,s:K,s:O}",
        "items", (unsigned long long)r->items, "dimension", r->dimension,
        "catalog_entries", (unsigned long long)r->catalog_entries,
        "items_without_catalog", (unsigned long long)r->items_without_catalog,
        "catalog_without_item", (unsigned long long)r->catalog_without_item,
        "users", (unsigned long long)r->users, "interactions", (unsigned long long)r->interactions,
        "interactions_skipped", (unsigned long long)r->interactions_skipped,
        "items_in_other_shards", (unsigned long long)r->items_in_other_shards,
        "bundle_bytes", (unsigned long long)r->bundle_bytes, "index", r->index,
        "recall", recall_dict(&r->recall), "recalls", recalls,
        "recall_reached", r->recall_reached ? Py_True : Py_False, "auto_note", r->auto_note,
        "items_dropped_zero", (unsigned long long)r->items_dropped_zero,
        "users_dropped_zero", (unsigned long long)r->users_dropped_zero,
        "single_threaded", r->single_threaded ? Py_True : Py_False);
}

/* _build(out, items, catalog, users, interactions, metric, index, threads,
 *        target_recall, recall_k, tune_queries, max_memory, allow_low_recall,
 *        tune_vectors, expect_sha256, drop_zero, ids_from_rows, shard_index,
 *        shard_count, id_column, vector_column, recall_ks)
 * items / users: (ids, vectors) or a path. The rest as annb_build_opts. */
static PyObject *py_build(PyObject *self, PyObject *args, PyObject *kwds)
{
    (void)self;
    static char *kwlist[] = {"out", "items", "catalog", "users", "interactions", "metric",
                             "index", "threads", "target_recall", "recall_k", "tune_queries",
                             "max_memory", "allow_low_recall", "tune_vectors", "expect_sha256",
                             "drop_zero", "ids_from_rows", "shard_index", "shard_count",
                             "id_column", "vector_column", "recall_ks", "string_ids", NULL};
    PyObject *out = NULL, *items = NULL, *catalog = NULL, *users = NULL, *inter = NULL;
    PyObject *tune = NULL, *recall_ks = NULL;
    const char *metric = "ip", *index = NULL, *expect = NULL, *id_col = NULL, *vec_col = NULL;
    int threads = 0, allow_low = 0, drop_zero = 0, from_rows = 0, string_ids = 0;
    double target = 0;
    long long recall_k = 0, tune_queries = 0, shard_index = 0, shard_count = 0, max_memory = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&O|O&OO&szidLLLpO&zppLLzzOp", kwlist,
                                     PyUnicode_FSConverter, &out, &items, opt_fs_converter,
                                     &catalog, &users, opt_fs_converter, &inter, &metric,
                                     &index, &threads, &target, &recall_k, &tune_queries,
                                     &max_memory, &allow_low, opt_fs_converter, &tune,
                                     &expect, &drop_zero, &from_rows, &shard_index, &shard_count,
                                     &id_col, &vec_col, &recall_ks, &string_ids))
        return NULL;
    build_rows it = {0}, us = {0};
    PyObject *result = NULL;
    uint32_t ks[ANNB_RECALL_MAX_K];
    annb_build_opts o;
    annb_build_opts_init(&o);
    if (annb_metric_parse(&o.metric, metric)) {
        raise_fmt(ANNB_E_INVALID, "metric must be \"ip\", \"l2\" or \"cosine\", got \"%.50s\"",
                  metric);
        goto done;
    }
    if (recall_k < 0 || recall_k > UINT32_MAX || tune_queries < 0 || tune_queries > UINT32_MAX ||
        shard_index < 0 || shard_index > UINT32_MAX || shard_count < 0 ||
        shard_count > UINT32_MAX || max_memory < 0) {
        raise_code(ANNB_E_INVALID, "recall_k, tune_queries and the shard must be 0 .. 2^32-1, "
                   "max_memory at least 0");
        goto done;
    }
    if (parse_rows(&it, items, "items") || parse_rows(&us, users, "users")) goto done;
    if (us.ids && !it.ids) {
        raise_code(ANNB_E_INVALID, "users given as arrays need the items as arrays too");
        goto done;
    }
    o.index = index;
    o.threads = threads;
    o.target_recall = target;
    o.recall_k = (uint32_t)recall_k;
    o.tune_queries = (uint32_t)tune_queries;
    o.max_memory = (uint64_t)max_memory;
    o.allow_low_recall = allow_low;
    o.tune_vectors_path = opt_path(tune);
    o.expect_sha256 = expect;
    o.drop_zero = drop_zero;
    o.ids_from_rows = from_rows;
    o.string_ids = string_ids;
    o.shard_index = (uint32_t)shard_index;
    o.shard_count = (uint32_t)shard_count;
    o.id_column = id_col;
    o.vector_column = vec_col;
    o.interactions_path = opt_path(inter);
    o.users_path = opt_path(us.path);
    if (recall_ks && recall_ks != Py_None) {
        PyObject *seq = PySequence_Fast(recall_ks, "recall_ks: expected a sequence of int");
        if (!seq) goto done;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n > ANNB_RECALL_MAX_K) {
            Py_DECREF(seq);
            raise_fmt(ANNB_E_LIMIT, "recall_ks: at most %d values", ANNB_RECALL_MAX_K);
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned long v = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(seq, i));
            if (PyErr_Occurred() || v > UINT32_MAX) {
                Py_DECREF(seq);
                if (!PyErr_Occurred()) raise_code(ANNB_E_INVALID, "recall_ks: value too large");
                goto done;
            }
            ks[i] = (uint32_t)v;
        }
        Py_DECREF(seq);
        o.recall_ks = ks;
        o.recall_k_count = (size_t)n;
    }
    annb_build_report rep;
    annb_error err = {0};
    int rc;
    const char *out_path = PyBytes_AS_STRING(out), *cat = opt_path(catalog);
    Py_BEGIN_ALLOW_THREADS
    if (it.path)
        rc = annb_build(&rep, PyBytes_AS_STRING(it.path), cat, out_path, &o, &err);
    else
        rc = annb_build_arrays(&rep, &it.m, us.ids ? &us.m : NULL, cat, out_path, &o, &err);
    Py_END_ALLOW_THREADS
    result = rc ? raise_err(&err) : report_dict(&rep);
done:
    build_rows_release(&it);
    build_rows_release(&us);
    Py_XDECREF(out);
    Py_XDECREF(catalog);
    Py_XDECREF(inter);
    Py_XDECREF(tune);
    return result;
}

static PyObject *py_file_sha256(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path)) return NULL;
    char hex[65];
    annb_error err = {0};
    int rc;
    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    rc = annb_file_sha256(hex, p, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc) return raise_err(&err);
    return PyUnicode_FromString(hex);
}

static PyObject *py_key_id(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t len;
    const char *text = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &len) : NULL;
    if (!text) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "key_id: expected str, got %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    return PyLong_FromLongLong(annb_key_id(text, (size_t)len));
}

static PyObject *py_version(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(annb_version());
}

static PyMethodDef module_methods[] = {
    {"_set_errors", set_errors, METH_VARARGS, NULL},
    {"_build", (PyCFunction)(void (*)(void))py_build, METH_VARARGS | METH_KEYWORDS, NULL},
    {"file_sha256", py_file_sha256, METH_VARARGS,
     "file_sha256(path)\n--\n\nThe SHA-256 of a whole file as 64 hex digits (what sha256sum "
     "prints)."},
    {"key_id", py_key_id, METH_O,
     "key_id(text)\n--\n\nThe int64 ID a string ID is stored as (annb_key_id: XXH3-64 of its UTF-8,\n"
     "top bit cleared): the same text has the same ID in every bundle."},
    {"library_version", py_version, METH_NOARGS,
     "library_version()\n--\n\nlibannb's version with its Faiss and zstd versions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "annb._annb", "The C half of annb (see the package annb).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__annb(void)
{
    import_array();
    if (PyType_Ready(&MappingType) < 0 || PyType_Ready(&BundleType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    PyObject *none = PyLong_FromLongLong(ANNB_ID_NONE);
    if (PyModule_AddObjectRef(m, "_Bundle", (PyObject *)&BundleType) < 0 ||
        PyModule_AddIntConstant(m, "DIMENSION_MAX", 4096) < 0 ||
        PyModule_AddIntConstant(m, "K_MAX", ANNB_SERVE_MAX_K) < 0 ||
        PyModule_AddStringConstant(m, "VERSION", ANNB_VERSION_STRING) < 0 ||
        !none || PyModule_AddObjectRef(m, "ID_NONE", none) < 0) {
        Py_XDECREF(none);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(none);
    return m;
}
