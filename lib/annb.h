/*
 * annb.h - the one public header of libannb.
 *
 * libannb turns trained recommender embeddings (user and item vectors) plus a
 * movie-style catalog into one immutable, checksummed file, the *bundle*
 * (`.annb`), and answers nearest-neighbour questions from it in-process.
 *
 *   annb_build()   offline: embeddings CSV + catalog  ->  bundle file
 *   annb_open()    online:  memory-map a bundle, verify what it uses
 *   annb_search()  top-k items for one or many query vectors, with the
 *                  items' real external IDs (never Faiss row positions)
 *
 * Conventions (they hold for every function below unless it says otherwise):
 *  - Functions that can fail return an `int`: 0 (ANNB_OK) on success or one of
 *    the negative ANNB_E_* codes. annb_strerror() names a code.
 *  - Functions that take an `annb_error *err` fill it with the code and a
 *    one-line message naming the file and the line, column or byte offset
 *    concerned. `err` may be NULL. The library keeps no global error state.
 *  - Out-parameters come first. Every *_free / *_close accepts NULL.
 *  - Option structs start with `struct_size`; initialise them with the
 *    matching *_INIT macro (or *_init function) so that later versions of the
 *    library can add fields without breaking callers.
 *  - External IDs are int64_t. INT64_MIN (ANNB_ID_NONE) is reserved: it marks
 *    an empty result slot, and ann-build rejects it as an input ID.
 *  - Thread safety: an open bundle is immutable. annb_search(),
 *    annb_item_vector(), annb_item_title() and the other read functions may be
 *    called from many threads at once on the same bundle. annb_close() must
 *    not race with them.
 *
 * The library version (ANNB_VERSION_*) and the bundle format version
 * (ANNB_FORMAT_VERSION_*) are separate numbers: the library can change
 * without changing the bytes it writes. See format/SPEC.md for the format.
 */
#ifndef ANNB_H
#define ANNB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* FILE, for annb_serve_read_line */

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the shared library; everything else in it is hidden. */
#if defined(__GNUC__)
#define ANNB_API __attribute__((visibility("default")))
#else
#define ANNB_API
#endif

#define ANNB_VERSION_MAJOR 0
#define ANNB_VERSION_MINOR 4
#define ANNB_VERSION_PATCH 0
#define ANNB_VERSION_STRING "0.4.0"

/* Bundle format written by this library; it reads every minor version of
 * this major version. */
#define ANNB_FORMAT_VERSION_MAJOR 1
#define ANNB_FORMAT_VERSION_MINOR 4

/* Reserved ID: marks a result slot that holds no item (fewer than k items
 * could be returned). Never a valid item or user ID. */
#define ANNB_ID_NONE INT64_MIN

/* ------------------------------------------------------------------------ */
/* Status codes. The values are pinned: they never change meaning.          */
/* ------------------------------------------------------------------------ */
#define ANNB_OK 0
#define ANNB_E_INVALID -1     /* bad argument from the caller */
#define ANNB_E_NOMEM -2       /* allocation failed */
#define ANNB_E_IO -3          /* open/read/write/mmap/rename failed (errno in message) */
#define ANNB_E_NOT_BUNDLE -4  /* the file does not start with the bundle magic */
#define ANNB_E_VERSION -5     /* newer major format version or unknown required feature */
#define ANNB_E_TRUNCATED -6   /* the file is shorter than its header or table declares */
#define ANNB_E_CORRUPT -7     /* structure or content violates format/SPEC.md */
#define ANNB_E_CHECKSUM -8    /* a header, table or section checksum does not match */
#define ANNB_E_INPUT -9       /* a build input (CSV, JSON vector, catalog) is malformed */
#define ANNB_E_NOT_FOUND -10  /* an ID is not in the bundle */
#define ANNB_E_DIMENSION -11  /* a vector has the wrong number of components */
#define ANNB_E_FAISS -12      /* Faiss reported an error (its message is kept) */
#define ANNB_E_LIMIT -13      /* an input exceeds a documented limit */
#define ANNB_E_RECALL -14     /* the index cannot reach the target recall (build, tuning) */
#define ANNB_E_UNSUPPORTED -15 /* the bundles do not store what a question needs (users,
                                  interactions, genres) */

/* Returns a static, constant, English name for a status code ("bundle
 * checksum mismatch", ...). Never NULL; unknown codes give "unknown error". */
ANNB_API const char *annb_strerror(int code);

/* Detail of a failure: filled by the functions that take it. Caller-owned
 * (usually on the stack); nothing in it needs freeing. */
typedef struct annb_error {
    int code;          /* the status code also returned by the function */
    char message[512]; /* "items.csv:12:7: expected a number in the JSON array" */
} annb_error;

/* Library version as a string, e.g. "0.1.0", and the Faiss and zstd versions
 * it was built against, e.g. "annb 0.1.0 (format 1.0, faiss 1.7.3, zstd 1.5.4)".
 * Static strings. */
ANNB_API const char *annb_version(void);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */
/* ------------------------------------------------------------------------ */
typedef enum annb_metric {
    /* Inner product, higher is better. The score matrix factorisation and
     * two-tower models are trained for: the default for user -> items. */
    ANNB_METRIC_IP = 0,
    /* Squared Euclidean distance, lower is better (Faiss IndexFlatL2). */
    ANNB_METRIC_L2 = 1,
    /* Cosine similarity, higher is better: item vectors are L2-normalised at
     * build time and every query is normalised before the search. */
    ANNB_METRIC_COSINE = 2
} annb_metric;

/* "ip", "l2", "cosine"; NULL for an unknown value. Static strings. */
ANNB_API const char *annb_metric_name(annb_metric m);
/* Parses "ip", "l2" or "cosine" into *out. Returns ANNB_OK or ANNB_E_INVALID. */
ANNB_API int annb_metric_parse(annb_metric *out, const char *name);

/* ------------------------------------------------------------------------ */
/* Building a bundle (offline)                                               */
/* ------------------------------------------------------------------------ */
/* Progress of a build, for a tool's progress line. Filled by the library,
 * valid during the call only.
 *
 * First the inputs are read, each a phase with a path:
 *   "items", "users", "tune vectors", "interactions"  unit "bytes"
 * then the index is made, each phase with path NULL, in this order:
 *   "train"  "iterations"  k-means iterations: annb's IVF (20), a Faiss IVF's
 *                          coarse quantizer and an IVF-PQ's sub-quantizers;
 *                          training that cannot be counted (an HNSW index's
 *                          codes, OPQ) is reported with total 0, and done 0
 *                          at its end
 *   "add"    "rows"        rows put into annb's IVF lists or added to a Faiss
 *                          index (an IVF one in chunks, others in one call)
 *   "graph"  "rows"        rows linked into annb's graph index
 *   "tune"   "candidates"  search parameter values measured against exact
 *                          search; total 0 (unknown) until the last call
 * and last the bundle is written:
 *   "write"  "bytes"       bytes written; the last call once the file is
 *                          synced and has its name.
 * An IVF index has train, add, tune; annb's graph graph, tune; Faiss's HNSW
 * train (uncounted), add, tune; exact search (Flat) none of them. Index
 * "auto" may make several indexes, each with its phases. A later version
 * may add phases and units: show an unknown one by its names. */
typedef struct annb_progress {
    /* The phase (above): a static string. */
    const char *phase;
    const char *path;  /* the file as the caller named it ("-": stdin); NULL after reading */
    uint64_t done;     /* units done so far (a compressed file's compressed bytes) */
    uint64_t total;    /* units in all, 0: unknown (stdin, a pipe; "tune" until its end) */
    int finished;      /* 1 on the last call for this file or phase */
    /* Added in 0.2: what done and total count (above). */
    const char *unit;
} annb_progress;

/* Called on the thread that called annb_build (or annb_build_arrays), work
 * done on other threads being counted and reported from it: once at the
 * start of a phase with done 0 (not for a file being read), then as done
 * grows, at most about once per MiB read and 64 times in a phase of known
 * total (once per candidate in "tune"), and once with finished set (not
 * when the build fails). It must not call back into the library for this
 * build; the build waits while it runs. */
typedef void (*annb_progress_fn)(void *ctx, const annb_progress *p);

typedef struct annb_build_opts {
    size_t struct_size;       /* sizeof(annb_build_opts), set by the initialiser */
    annb_metric metric;       /* default ANNB_METRIC_IP */
    /* The index: "flat" (exact, the default when NULL); "auto" (chosen by
     * size and max_memory, see annb_index_choose); "ivf", "graph" (also
     * "hnsw": annb's own graph, deterministic on any thread count), "ivfpq"
     * (sized from the item count); or any Faiss index factory string such
     * as "IVF1024,Flat" or "HNSW32". Case does not matter for the names. */
    const char *index;
    /* Threads for training and adding; 0 = the OpenMP default (all cores).
     * Never changes the bytes written, except for graph indexes (HNSW,
     * NSG): with more than one thread their links depend on thread timing,
     * so they are built with one thread unless threads is set above 1
     * explicitly (see annb_build_report.single_threaded). */
    int threads;
    /* Users' embeddings (same forms as the items, same dimension), stored
     * for annb_recommend and user searches; NULL: none. Users are always
     * searched exactly. */
    const char *users_path;
    /* Who has seen what (see annb_seen_items_from_file for the forms),
     * stored for opts.exclude_seen; needs users_path. NULL: none. Pairs
     * whose user or item is not in the bundle are counted and skipped. */
    const char *interactions_path;
    /* Sharding: with shard_count > 1, only items with
     * annb_shard_of(id, shard_count) == shard_index are stored. */
    uint32_t shard_index, shard_count;
    /* Recall measured at build time (approximate indexes): up to
     * tune_queries sampled questions are answered exactly and by the index,
     * and for each k measured the search parameter (IVF nprobe, HNSW
     * efSearch) is set to the smallest value whose mean recall@k reaches
     * target_recall. The questions are, in this order of preference: the
     * vectors of tune_vectors_path, the users' vectors (users_path), or
     * sampled items asked "which items are like this one?" (item-to-item
     * questions, which may not predict the recall user vectors get: users of
     * a factorisation model are not distributed like the items). The knob is
     * searched until the target is met or the knob is exhausted (IVF: nprobe
     * up to nlist; HNSW: efSearch up to ANNB_TUNE_MAX_EF, 4096). When the
     * target cannot be met, annb_build fails with ANNB_E_RECALL and writes
     * nothing, unless allow_low_recall is set (then the bundle stores the
     * parameter with the best recall measured, and says so). The bundle
     * stores the recall and parameter for each k (annb_recall_get) and
     * searches of k results use the parameter tuned for the smallest k
     * measured at or above it. 0 means the default: 0.95, k 10, 1000. */
    double target_recall;
    uint32_t recall_k;
    uint32_t tune_queries;
    /* For index "auto": bytes of RAM the index may take; when the vectors
     * (n x d x 4) would not fit, auto tries compressed codes (IVF-PQ, then
     * IVF-SQ8 if it fits) and falls back to exact search when they cannot
     * reach the target recall. 0: no budget. */
    uint64_t max_memory;
    /* 1: search inner product on graph indexes (HNSW, NSG) as L2 over
     * vectors given one extra coordinate (the MIPS-to-L2 reduction of
     * Bachrach et al., SPEC 6.4). Off by default: measured on data whose
     * norms vary, Faiss's HNSW reaches recall@10 0.95 at efSearch 16-32
     * with inner product directly and 0.6-0.85 at efSearch 4096 with the
     * reduction (docs/benchmarks.md, tests/unit/test_mips.c). Faiss's
     * graph indexes only: annb's own graph ("graph", "hnsw") is always built
     * on the inner product (docs/graph.md measures the reduction there:
     * recall@10 0.08 against 0.95 at the same effort), and ignores it. */
    int mips_reduction;
    /* Query vectors to measure recall on (any embeddings file, same forms
     * and dimension as the items), e.g. held-out users of the training job;
     * NULL: the users, else item-to-item questions (see above). */
    const char *tune_vectors_path;
    /* 1: write the bundle even when the target recall is not reached. */
    int allow_low_recall;
    /* More k to measure and tune for (any order, duplicates ignored),
     * besides recall_k, 10 and 100 (those up to the item count), at most
     * ANNB_RECALL_MAX_K in all. NULL/0: none. */
    const uint32_t *recall_ks;
    size_t recall_k_count;
    /* 64 hex digits (either case), or NULL: keep the bundle only if the
     * SHA-256 of its bytes is this (a rebuild that must reproduce a
     * published bundle). The writer hashes the bytes as it writes them and
     * checks before the file gets a name: on a mismatch annb_build returns
     * ANNB_E_CHECKSUM (the message gives both hashes), no file is left and
     * output_path is untouched. */
    const char *expect_sha256;
    /* ---- added in 0.2; a struct_size that ends above gets their defaults ---- */
    /* The columns of the embeddings CSV/TSV files, each a header name (any
     * case) or a 1-based column number; NULL: detected from the header
     * (ID: the one column named id, word, item_id, movie_id, user_id,
     * itemId, movieId or userId; vector: the one named features, vector,
     * embedding or NAME_embedding, else the wide form). id_column and
     * vector_column apply to the items; user_id_column and
     * user_vector_column to the users and the tune vectors, which take the
     * items' when those are NULL. The vector field holds a JSON array or
     * numbers separated by commas or blanks. */
    const char *id_column;
    const char *vector_column;
    const char *user_id_column;
    const char *user_vector_column;
    /* numpy .npy matrices (float32 or float64, C order, rows x dimension)
     * hold no IDs: ids_path is a .npy of int64 (or int32), one ID per row of
     * the items; user_ids_path the same for the users. With ids_from_rows
     * set, a .npy given no IDs file takes its row numbers 0..n-1 as IDs
     * (this holds for the tune vectors too). Without either, a .npy input is
     * refused (ANNB_E_INVALID). */
    const char *ids_path;
    const char *user_ids_path;
    int ids_from_rows;
    /* Metric cosine: vectors of zeros (no direction) make the build fail
     * with their count and first IDs (ANNB_E_INPUT); with drop_zero set
     * they are left out instead and counted (annb_build_report.
     * items_dropped_zero, users_dropped_zero). Other metrics keep them. */
    int drop_zero;
    /* Progress of reading the embeddings and interactions, then of
     * training, adding, linking, tuning and writing (annb_progress; NULL:
     * none), called with progress_ctx. */
    annb_progress_fn progress;
    void *progress_ctx;
    /* ---- added in 0.3; a struct_size that ends above gets their defaults ---- */
    /* IDs that are text (SKUs, "tt0114709", words): an ID column whose
     * values are not all integers makes that file's IDs string IDs, stored
     * as their annb_key_id with the text beside it (SPEC 6.19); the catalog
     * and the interactions are then joined by the text. A value that reads
     * as a number but no integer ("12.0") is refused, not taken as text.
     * 1: every ID of the items, users and tune vectors is text, digits
     * included ("007" stays "007"). The .npy form has integer IDs only. */
    int string_ids;
} annb_build_opts;

#define ANNB_BUILD_OPTS_INIT \
    { sizeof(annb_build_opts), ANNB_METRIC_IP, NULL, 0, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, 0, \
      NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, 0 }

/* The struct_size of annb_build_opts in 0.2 (up to progress_ctx). */
#define ANNB_BUILD_OPTS_SIZE_0_2 (offsetof(annb_build_opts, progress_ctx) + sizeof(void *))

/* The struct_size of the first annb_build_opts (0.1, up to expect_sha256):
 * annb_build accepts any struct_size from this one up, and gives the
 * fields past the caller's struct_size their defaults. */
#define ANNB_BUILD_OPTS_SIZE_0_1 \
    (offsetof(annb_build_opts, expect_sha256) + sizeof(const char *))

/* Sets *opts to ANNB_BUILD_OPTS_INIT (for callers that cannot use the macro,
 * e.g. bindings). */
ANNB_API void annb_build_opts_init(annb_build_opts *opts);

/* Most k values a bundle measures recall for (annb_recall_count). */
#define ANNB_RECALL_MAX_K 16

/* The index string `name` ("auto", "flat", "ivf", "graph", "hnsw", "ivfpq", any
 * case; anything else is returned as it is) resolves to for n vectors of
 * dimension d under a memory budget (0: none), into out (size >= 64).
 * auto: "Flat" while the vectors take at most ANNB_AUTO_EXACT_BYTES (an
 * exact scan of them takes about 2 ms on one core at 15 GB/s) and fit the
 * budget; else "Graph32,SQ8", annb's graph, when it fits the budget (the
 * vectors plus d + 132 bytes per vector); else "IVF<nlist>,Flat" (nlist =
 * sqrt(n) rounded to a power of two, at least 39 items per list); else,
 * when the vectors do not fit the budget, "IVF<nlist>,PQ<m>" (m bytes per
 * vector). graph and hnsw:
 * "Graph32,SQ8", annb's own graph (format/SPEC.md 6.18; Faiss's HNSW is
 * "HNSW32").
 * This is auto's first candidate. With the vectors over
 * ANNB_AUTO_EXACT_BYTES and in the budget, annb_build builds and tunes the
 * graph (when it fits) and IVF-Flat, and keeps the one that reaches the
 * target recall with the least modelled work per tuning question (work the
 * search counts at its tuned parameter, weighed by kind: never timed, so
 * the bytes are the same on any machine and thread count), or Flat when
 * exact search costs less. Over the budget it goes on from IVF-PQ to
 * IVF-SQ8 (when its codes fit) and then Flat when one cannot reach the
 * target. annb_build_report.auto_note says the comparison or what was
 * passed over, and the bundle's provenance records the choice (SPEC 6.13
 * `auto`). */
#define ANNB_AUTO_EXACT_BYTES (32u << 20)
ANNB_API void annb_index_choose(char *out, size_t size, const char *name, uint64_t n, uint32_t d,
                                uint64_t max_memory);

/* The shard (0 .. count-1) of an item ID: a fixed hash of the ID, the same
 * on every machine and in every version of annb. */
ANNB_API uint32_t annb_shard_of(int64_t id, uint32_t count);

/* How well a bundle's index answers, measured when it was built. */
typedef struct annb_recall_info {
    int measured;          /* 0: exact index (recall 1 by construction) */
    /* "exact"; "items" (similar-items questions: the recall user vectors
     * get may differ); "users" (the bundle's users); "queries" (vectors
     * given at build, annb_build_opts.tune_vectors_path). */
    const char *questions;
    uint32_t k, queries;   /* recall@k over this many questions */
    double target, recall; /* asked for, and measured at the parameters below */
    uint32_t nprobe;       /* IVF lists searched per question; 0: not IVF */
    uint32_t ef_search;    /* HNSW candidate list size; 0: not HNSW */
    uint32_t rerank;       /* compressed codes: k x rerank candidates get their exact
                            * score from the stored vectors; 0: none */
} annb_recall_info;

/* What a successful build saw, for the tool to report. */
typedef struct annb_build_report {
    uint64_t items;                 /* vectors stored in the bundle */
    uint32_t dimension;
    uint64_t catalog_entries;       /* entries read from the catalog (0: no catalog) */
    uint64_t items_without_catalog; /* vectors whose ID the catalog does not list */
    uint64_t catalog_without_item;  /* catalog entries with no vector */
    uint64_t users;                 /* user vectors stored (0: none) */
    uint64_t interactions;          /* (user, item) pairs stored */
    uint64_t interactions_skipped;  /* pairs whose user or item is not stored */
    uint64_t items_in_other_shards; /* rows of the items file left to other shards */
    uint64_t bundle_bytes;          /* size of the file written */
    /* 1 when the index was trained and filled with one thread, whatever
     * opts.threads said, so that its bytes are reproducible (graph indexes:
     * HNSW, NSG); 0 otherwise. */
    int single_threaded;
    char index[257];                /* the index built ("auto" resolved) */
    annb_recall_info recall;        /* what was measured for recall_k (see annb_build_opts) */
    /* Every k measured, ascending (recall_count of them). */
    uint32_t recall_count;
    annb_recall_info recalls[ANNB_RECALL_MAX_K];
    int recall_reached;             /* every k reached the target */
    /* index "auto": how it chose, one line, or "". Comparing (vectors in
     * the budget): the one kept, then "over" the others, each with its
     * tuned parameter, recall and modelled cost, e.g. "Graph32,SQ8
     * (efSearch 56, recall@10 0.9507, cost 410k units/question) over
     * IVF512,Flat (...), Flat (...)". Over the budget: "passed over " and
     * why each candidate before the one built was, e.g. "passed over index
     * IVF1024,PQ32np reaches recall@10 0.81 at most ..."; "" when none was. */
    char auto_note[512];
    /* Added in 0.2. Metric cosine with opts.drop_zero: vectors of zeros
     * left out of the items (of this shard) and of the users. Written only
     * when opts is given with a 0.2 struct_size (or larger): a caller built
     * against 0.1 has a report that ends before them, and its opts say so. */
    uint64_t items_dropped_zero, users_dropped_zero;
} annb_build_report;

/* The size of a 0.1 annb_build_report (up to auto_note): what annb_build
 * writes for opts of a 0.1 struct_size, or NULL opts. */
#define ANNB_BUILD_REPORT_SIZE_0_1 offsetof(annb_build_report, items_dropped_zero)

/*
 * annb_build - read an embeddings file and an optional catalog, build the
 * index and write a bundle.
 *
 *  report       out, may be NULL: counts for the caller to print.
 *  items_path   in: embeddings, CSV or TSV. Either the Spark form
 *               `id,features` with features a JSON array of floats in a
 *               quoted field, or the wide form `id,f0,f1,...`. Rows in any
 *               order; IDs unique int64 (not INT64_MIN); every row the same
 *               dimension; every value a finite float.
 *  catalog_path in, may be NULL: MovieLens `movies.dat`
 *               (`MovieID::Title::Genres`, latin-1) or `movies.csv`
 *               (`movieId,title,genres`, UTF-8). Titles are stored as UTF-8.
 *  output_path  in: the bundle to write. Checked first, before any input is
 *               read, and again before the new file is named: nothing may
 *               be there, or a regular file that is none of the inputs
 *               (same device and inode, whatever the path); a symbolic
 *               link, directory, device, FIFO or socket there is refused
 *               (ANNB_E_IO, "is a FIFO, not a regular file"), and so is an
 *               input (ANNB_E_INVALID, naming the input). Its directory
 *               must exist. The bundle is written to an unnamed file
 *               (O_TMPFILE) in that directory, fsynced, and only then
 *               linked in place: no failure and no signal, not even
 *               SIGKILL, leaves a partial file, and an existing output_path
 *               is untouched until it is replaced whole. Over an existing
 *               output the complete file is linked as OUTPUT.tmp.XXXXXX and
 *               renamed over it at once; only a SIGKILL between those two
 *               calls can leave that (complete) file behind. Where the file
 *               system has no O_TMPFILE the file is written under that
 *               temporary name from the start; a program that wants it
 *               removed on SIGINT/SIGTERM/SIGHUP calls
 *               annb_temp_files_remove() from its handler (ann-build does).
 *  opts         in, may be NULL for defaults.
 *  err          out, may be NULL.
 *
 * Returns ANNB_OK, ANNB_E_INPUT / ANNB_E_LIMIT (bad input; the message names
 * file, line and column), ANNB_E_IO, ANNB_E_NOMEM, ANNB_E_FAISS,
 * ANNB_E_INVALID (bad option, e.g. an unparsable index string, or an
 * output that is an input), ANNB_E_CHECKSUM (opts.expect_sha256 not met).
 *
 * Reproducible: the output is a function of the inputs' content, the
 * options (not opts.threads) and the versions of annb, Faiss and zstd only.
 * The same inputs, in any row order, with any number of threads, give the
 * same bytes, so a bundle can be rebuilt and compared (annb_file_sha256).
 * The bundle records those versions, the options and a digest of each
 * input's content in its provenance (annb_bundle_provenance).
 *
 * OpenMP: it sets the calling thread's OpenMP thread count (its own
 * setting, not other threads') while it runs, and restores it on return.
 */
ANNB_API int annb_build(annb_build_report *report, const char *items_path, const char *catalog_path,
               const char *output_path, const annb_build_opts *opts, annb_error *err);

/* Vectors already in memory, for annb_build_arrays: row i is ids[i] and
 * vectors[i * dimension .. (i + 1) * dimension). Borrowed for the call.
 * No struct_size: a plain description of two arrays, complete as it is (a
 * new way to give rows would be a new type, not a field). */
typedef struct annb_matrix {
    const int64_t *ids;    /* count IDs, unique, any order, not ANNB_ID_NONE */
    const float *vectors;  /* count x dimension finite floats, row-major */
    uint64_t count;        /* at least 1 */
    uint32_t dimension;    /* 1 .. 4096 */
} annb_matrix;

/*
 * annb_build_arrays - annb_build with the items (and the users) given as
 * arrays instead of files: for bindings (the Python package's annb.build)
 * and programs that hold their embeddings in memory. The rows take the
 * path a file's rows take once read, so the bundle is byte-identical to
 * annb_build's on a file holding the same IDs and float32 values (in any
 * row order or form), and its provenance records the same digests.
 *
 *  report        out, may be NULL.
 *  items         in: the items' IDs and vectors (not kept).
 *  users         in, may be NULL: the users' (same dimension); then
 *                opts->users_path must be NULL, and opts->interactions_path
 *                may name who has seen what.
 *  catalog_path, output_path, opts, err: as for annb_build. opts->ids_path
 *                (with items) and opts->user_ids_path (with users) must be
 *                NULL: the arrays hold the IDs; so must the column options
 *                (id_column, vector_column; user_* with users arrays):
 *                ANNB_E_INVALID. The other options apply (metric, index,
 *                threads, recall, shard, drop_zero, tune vectors, ...).
 *
 * The arrays are checked as a file's rows are, with the row in the message
 * ("items: row 3 (ID 17), value 5: expected a finite float32, found nan"):
 * ANNB_E_INPUT for a value that is not finite, a reserved or repeated ID,
 * a vector whose scores would overflow float32; ANNB_E_LIMIT for a
 * dimension above 4096 or more than 2^31 rows; ANNB_E_INVALID for NULL
 * arrays or a count or dimension of 0. Other returns as annb_build.
 * Thread-safe (no shared state); it does not modify the arrays.
 */
ANNB_API int annb_build_arrays(annb_build_report *report, const annb_matrix *items,
                               const annb_matrix *users, const char *catalog_path,
                               const char *output_path, const annb_build_opts *opts,
                               annb_error *err);

/*
 * annb_temp_files_remove - remove the temporary files that builds in this
 * process have named and not yet renamed or removed: where the file system
 * has no O_TMPFILE, the file being written; elsewhere only the moment
 * between linking a complete file and renaming it over an existing output.
 * Async-signal-safe (atomic loads and unlinkat only), for a program's own
 * SIGINT/SIGTERM/SIGHUP handler, which then ends the process (re-raising
 * the signal): the library never installs signal handlers itself. Process-
 * wide by necessity (a handler can reach nothing else): it covers up to 16
 * builds writing at once.
 */
ANNB_API void annb_temp_files_remove(void);

/* ------------------------------------------------------------------------ */
/* Opening a bundle (online)                                                 */
/* ------------------------------------------------------------------------ */
typedef struct annb_bundle annb_bundle; /* opaque */

/* Open only header and section table: enough for annb_bundle_info() and
 * annb_section_info(), for tools that describe damaged files. Searches on
 * such a handle return ANNB_E_INVALID. */
#define ANNB_OPEN_STRUCTURE_ONLY 0x1u
/* Also verify the checksums of the bulk vector sections (SPEC 3.11), which
 * annb_open otherwise uses unverified so that opening takes the same time
 * for any size; annb_verify always checks them. */
#define ANNB_OPEN_VERIFY_ALL 0x2u
/* Hand a FAIS section whose index type annb's own checker does not know
 * (lib/faiss_check.c) to Faiss's reader anyway. Faiss 1.7.3's reader trusts
 * its input: only for bundles from a trusted source. */
#define ANNB_OPEN_TRUST_FAISS 0x4u

typedef struct annb_open_opts {
    size_t struct_size; /* sizeof(annb_open_opts) */
    unsigned flags;     /* ANNB_OPEN_* bits; 0 by default */
} annb_open_opts;

#define ANNB_OPEN_OPTS_INIT { sizeof(annb_open_opts), 0u }

/* Sets *opts to ANNB_OPEN_OPTS_INIT (for callers that cannot use the macro). */
ANNB_API void annb_open_opts_init(annb_open_opts *opts);

/*
 * annb_open - memory-map a bundle and check it.
 *
 *  out   out: the new handle on success, NULL on failure. Free with annb_close.
 *  path  in: the bundle file. The path is not kept. It is opened without
 *        blocking and must be a regular file: a FIFO, device, socket or
 *        directory gives ANNB_E_IO "PATH: not a regular file" at once.
 *  opts  in, may be NULL.
 *  err   out, may be NULL.
 *
 * Checks, before anything is used: file size, magic, version, feature bits,
 * header and table checksum, every table entry in bounds and
 * non-overlapping; then the checksum and meaning of the sections that
 * searching uses (META, the Faiss index, the graph's entries). The Faiss bytes
 * are checksummed and then walked by annb's own checker (SPEC 6.17: index
 * types annb writes, every length within the bytes, every graph, list and
 * ID reference in range, dimension, count and metric equal to META's,
 * nprobe and efSearch refused beyond 1..nlist and 1..65536) before Faiss
 * 1.7.3's reader, which trusts its input, sees them; an index type the
 * checker does not know is refused (ANNB_E_CORRUPT) unless opts.flags has
 * ANNB_OPEN_TRUST_FAISS, and then Faiss's reader may crash, or leak what it
 * allocated when it fails, on a crafted file. The bulk sections (SPEC 3.11:
 * vectors, IDs, the catalog's titles and genre bits, the interactions, the
 * graph's links, string IDs) are used in place unverified, each read
 * checking what it reads, so that opening costs the same at any size
 * (docs/benchmarks.md, Open time); ANNB_OPEN_VERIFY_ALL or annb_verify check
 * them: publish with `ann-inspect --verify`.
 *
 * Returns ANNB_OK, ANNB_E_IO, ANNB_E_NOT_BUNDLE, ANNB_E_VERSION,
 * ANNB_E_TRUNCATED, ANNB_E_CORRUPT, ANNB_E_CHECKSUM, ANNB_E_FAISS,
 * ANNB_E_NOMEM. The message names the file and the byte offset.
 *
 * The mapping stays valid after the file is renamed over or deleted, so a
 * service can keep answering from an open bundle while a new build replaces
 * the path.
 */
ANNB_API int annb_open(annb_bundle **out, const char *path, const annb_open_opts *opts, annb_error *err);

/* Unmaps and frees everything. Accepts NULL. Every pointer lent by the
 * bundle (titles, genres, vectors) becomes invalid. */
ANNB_API void annb_close(annb_bundle *b);

/*
 * annb_verify - check everything annb_open may skip: every section's
 * checksum and decoded size, and meaning (IDs strictly ascending, counts
 * agreeing across sections, catalog offsets in bounds, Faiss index agreeing
 * with the metadata). Works on a handle opened with ANNB_OPEN_STRUCTURE_ONLY.
 * Returns ANNB_OK or the first problem's code, with its message in err.
 */
ANNB_API int annb_verify(const annb_bundle *b, annb_error *err);

/* What a bundle holds. Strings are lent by the bundle until annb_close. */
typedef struct annb_bundle_info {
    uint16_t format_major, format_minor;
    uint64_t file_size;
    uint64_t required_features, optional_features;
    uint32_t section_count;
    /* From the META section; zero / NULL on a STRUCTURE_ONLY handle. */
    uint32_t dimension;
    uint64_t count;           /* number of items */
    annb_metric metric;
    const char *index;        /* Faiss factory string, e.g. "Flat" */
    uint32_t genre_count;     /* 0: no catalog */
    int has_catalog;
    /* The recall measured at build time and the search parameters used by
     * default (SPEC 6.14); has_recall is 0 for bundles made before annb
     * recorded it (format 1.0). */
    int has_recall;
    annb_recall_info recall;
} annb_bundle_info;

/* Fills *out. Never fails on an open handle. */
ANNB_API void annb_bundle_info_get(annb_bundle_info *out, const annb_bundle *b);

/* The recall measured at build time for each k (SPEC 6.16): count rows,
 * ascending k; 0 for an exact bundle and for bundles of format 1.1 (their
 * one measurement is annb_bundle_info.recall). annb_recall_get fills row i
 * (target and questions as in annb_bundle_info.recall); ANNB_E_INVALID when
 * i is out of range. */
ANNB_API uint32_t annb_recall_count(const annb_bundle *b);
ANNB_API int annb_recall_get(annb_recall_info *out, const annb_bundle *b, uint32_t i);

/* What annb_recall_audit measured. */
typedef struct annb_recall_audit {
    uint32_t k, queries;     /* recall@k over this many query vectors */
    const char *parameter;   /* "nprobe", "efSearch", or NULL: exact (recall 1) */
    /* At the parameter a search of k results uses by default (as tuned). */
    uint32_t stored_value;
    double stored_recall;
    double stored_ms;        /* mean wall time of one single-query search, ms */
    /* The smallest value reaching target on these queries, searched as
     * ann-build does; when none does, the best one (reached = 0). */
    double target;
    int reached;
    uint32_t value;
    double recall;
    double ms;
    uint32_t highest;        /* the knob's range searched: 1 .. highest */
} annb_recall_audit;

/*
 * annb_recall_audit - measures a bundle's recall@k on any query vectors
 * (users of a later training run, logged queries) against exact search
 * over the bundle's own vectors, at the stored parameter, and finds the
 * parameter that would reach `target` (0: the bundle's target) with the
 * latency of each. Items space only. Searches as annb_search does
 * (reranking, MIPS reduction); cosine queries are normalised.
 *  out      out: the measurement.
 *  queries  in: nq x dimension floats.
 *  k        in: 1 .. ANNB_SERVE_MAX_K.
 * Returns ANNB_OK (whether or not the target holds: see out), ANNB_E_INVALID,
 * ANNB_E_NOMEM, ANNB_E_FAISS. Thread-safe; takes time in proportion to nq
 * exact searches plus some ten approximate passes.
 */
ANNB_API int annb_recall_audit_run(annb_recall_audit *out, const annb_bundle *b,
                                   const float *queries, size_t nq, size_t k, double target,
                                   annb_error *err);

typedef struct annb_section_info {
    char kind[5];           /* four characters and a NUL, e.g. "VECS" */
    int critical;           /* a reader that does not know the kind must refuse */
    const char *codec;      /* "raw" or "zstd" */
    uint64_t offset;        /* byte offset in the file */
    uint64_t stored_size;   /* bytes in the file */
    uint64_t decoded_size;  /* bytes after decoding */
    uint64_t element_count;
    uint64_t checksum;      /* XXH3-64 of the stored bytes */
} annb_section_info;

/* Fills *out for section i (0 <= i < section_count).
 * Returns ANNB_OK or ANNB_E_INVALID. */
ANNB_API int annb_section_info_get(annb_section_info *out, const annb_bundle *b, uint32_t i);

/* ------------------------------------------------------------------------ */
/* Searching                                                                 */
/* ------------------------------------------------------------------------ */
typedef struct annb_hit {
    int64_t id;   /* external item ID, or ANNB_ID_NONE for an empty slot */
    float score;  /* ip/cosine: similarity (higher first); l2: squared distance (lower first) */
} annb_hit;

/* The two sets of vectors a bundle can hold. Users are stored when the
 * bundle was built with users (ann-build --users). */
typedef enum annb_space {
    ANNB_SPACE_ITEMS = 0, /* what is recommended: movies, products, ... */
    ANNB_SPACE_USERS = 1  /* who it is recommended to */
} annb_space;

typedef struct annb_search_opts {
    size_t struct_size;        /* sizeof(annb_search_opts) */
    /* Which set answers: items (default) or users (e.g. "similar users",
     * "users for an item"). Queries are vectors in the same space either way. */
    annb_space space;
    /* IDs (of the answering space) that must not appear in any answer, e.g.
     * the query item itself for "similar items". IDs not in the bundle are
     * ignored. The answer still has k results whenever k remain. */
    const int64_t *exclude_ids;
    size_t exclude_count;
    /* Items only: keep items that have at least one of these genres (names
     * as in the catalog, e.g. "Comedy"). A name the catalog does not know
     * makes the search fail with ANNB_E_NOT_FOUND. NULL/0: no genre filter. */
    const char *const *genres;
    size_t genre_count;
    /* annb_recommend only: exclude the items each user has already seen, as
     * stored in the bundle (ann-build --interactions). */
    int exclude_seen;
    /* Search effort for approximate indexes; 0: the value tuned at build
     * time (annb_bundle_info.recall), else Faiss's default. Larger values
     * give higher recall and slower answers. Ignored by exact search.
     * Per call: threads searching one bundle at once with different values
     * each get their own, and no search waits for another (the shared index
     * is never changed; tests/unit/test_threads.c, `make tsan`). */
    uint32_t nprobe;    /* IVF: lists searched */
    uint32_t ef_search; /* HNSW: candidate list size */
    /* Threads one call may use (0 or 1: the calling thread alone): exact
     * search splits each query's rows among them, annb's IVF its probed
     * lists, and batches share out their queries (exact batches with fewer
     * than 24 queries a thread: their rows). Same answers with any count.
     * Faiss indexes use Faiss's own OpenMP threads. */
    int threads;
    /* ---- added in 0.2; a struct_size that ends above gets their defaults ---- */
    /* 1: an exact scan of the stored vectors, whatever the index (nprobe
     * and ef_search are then ignored): the ground truth to check an
     * approximate answer against, e.g. a service's live recall. Costs a
     * full scan per query. */
    int exact;
} annb_search_opts;

#define ANNB_SEARCH_OPTS_INIT { sizeof(annb_search_opts), ANNB_SPACE_ITEMS, NULL, 0, NULL, 0, 0, 0, 0, 0, 0 }

/* The struct_size of the first annb_search_opts (0.1, up to threads): every
 * function taking one accepts any struct_size from this one up, and gives
 * the fields past the caller's struct_size their defaults. */
#define ANNB_SEARCH_OPTS_SIZE_0_1 (offsetof(annb_search_opts, threads) + sizeof(int))

/* Sets *opts to ANNB_SEARCH_OPTS_INIT (for callers that cannot use the macro). */
ANNB_API void annb_search_opts_init(annb_search_opts *opts);

/*
 * annb_search - the k nearest items for each of nq query vectors.
 *
 *  b        in: an open bundle.
 *  queries  in: nq * dimension floats, row-major. Not modified (cosine
 *           queries are normalised in a private copy).
 *  nq, k    in: number of queries and results per query (k >= 1).
 *  opts     in, may be NULL.
 *  hits     out: nq * k slots; hits[i*k + j] is the j-th result of query i,
 *           best first. Slots past the available items hold ANNB_ID_NONE.
 *
 * Several queries at once are answered in one Faiss call, or for exact
 * search in one blocked matrix multiply of annb's own (2 queries or more),
 * with the same answers, bit for bit, as the queries asked one at a time.
 * Returns ANNB_OK, ANNB_E_INVALID, ANNB_E_NOMEM, ANNB_E_FAISS.
 * Thread-safe on a shared bundle.
 */
ANNB_API int annb_search(const annb_bundle *b, const float *queries, size_t nq, size_t k,
                const annb_search_opts *opts, annb_hit *hits);

/*
 * annb_recommend - top-k items for users stored in the bundle: each user's
 * vector is taken from the bundle, and with opts->exclude_seen the items
 * that user has seen (stored interactions) are excluded inside the search,
 * so the answer still has k items whenever k unseen items remain. Other
 * options as for annb_search (opts->space must be ANNB_SPACE_ITEMS).
 *
 *  users  in: n user IDs.
 *  hits   out: n * k slots, as for annb_search.
 * Returns ANNB_OK, ANNB_E_NOT_FOUND (a user is not in the bundle, or an
 * unknown genre), ANNB_E_INVALID (no users stored, bad argument),
 * ANNB_E_CORRUPT (with exclude_seen: a user's stored seen list is damaged,
 * in a bundle annb_verify refuses), ANNB_E_NOMEM, ANNB_E_FAISS. Thread-safe
 * on a shared bundle.
 */
ANNB_API int annb_recommend(const annb_bundle *b, const int64_t *users, size_t n, size_t k,
                            const annb_search_opts *opts, annb_hit *hits);

/*
 * annb_search_shards - annb_search over several bundles that partition one
 * catalog (ann-build --shard I/N), merged into one top-k. The bundles must
 * agree on dimension and metric (ANNB_E_INVALID otherwise). For exact
 * indexes the merged answer equals that of one unsharded bundle.
 */
ANNB_API int annb_search_shards(const annb_bundle *const *bundles, size_t nbundles,
                                const float *queries, size_t nq, size_t k,
                                const annb_search_opts *opts, annb_hit *hits);

/* ------------------------------------------------------------------------ */
/* Questions: what every front end asks (ann-query, the JSON protocol,      */
/* ann-serve, the Python package), answered by one call                     */
/* ------------------------------------------------------------------------ */

/* The five questions. "Left out" means the subject never answers its own
 * question; the answer still has k results whenever k others exist. */
typedef enum annb_question_kind {
    ANNB_Q_ITEMS_FOR_USER = 0,   /* subjects: users stored in the bundle -> items */
    ANNB_Q_ITEMS_FOR_VECTOR = 1, /* vectors: query vectors -> items */
    ANNB_Q_SIMILAR_ITEMS = 2,    /* subjects: items -> items, each left out */
    ANNB_Q_SIMILAR_USERS = 3,    /* subjects: users -> users, each left out */
    ANNB_Q_USERS_FOR_ITEM = 4    /* subjects: items -> users */
} annb_question_kind;

typedef struct annb_question {
    size_t struct_size;        /* sizeof(annb_question), set by the initialiser */
    annb_question_kind kind;   /* default ANNB_Q_ITEMS_FOR_USER */
    /* The question is asked `count` times at once, for each subject (IDs:
     * every kind but ITEMS_FOR_VECTOR) or each query vector (count x
     * dimension floats, ITEMS_FOR_VECTOR). Default count 1. */
    const int64_t *subjects;
    const float *vectors;
    size_t count;
    size_t k;                  /* results per subject, at least 1; default 10 */
    /* ITEMS_FOR_USER over one bundle built with interactions: leave out the
     * items each user has seen. Over shards it is refused (ANNB_E_UNSUPPORTED):
     * each shard stores its own items' interactions; send them as exclude_ids. */
    int exclude_seen;
    /* IDs of the answering space left out of every answer (IDs the bundles
     * do not hold are ignored). */
    const int64_t *exclude_ids;
    size_t exclude_count;
    /* Item answers only: items with at least one of these genres (catalog
     * names, case-sensitive). An unknown name fails with ANNB_E_NOT_FOUND
     * and a message listing the known ones. */
    const char *const *genres;
    size_t genre_count;
    uint32_t nprobe, ef_search; /* search effort; 0: as tuned at build (annb_search_opts) */
    int threads;                /* threads for this call; 0 or 1: the caller's alone */
    int exact;                  /* 1: an exact scan whatever the index (annb_search_opts.exact) */
    /* ---- added in 0.3; a struct_size that ends above gets their defaults ---- */
    /* The subjects (instead of `subjects`) and the excluded IDs (besides
     * exclude_ids) as text, the way people and protocols name them: each
     * is read by annb_space_id_of in its space (keys where the bundles have
     * string IDs, decimal integers elsewhere), and messages quote it
     * ("user \"u11\" is not in the bundle"). Text that cannot be an ID
     * there fails with ANNB_E_INVALID. */
    const char *const *subject_texts;
    const char *const *exclude_texts;
    size_t exclude_text_count;
} annb_question;

#define ANNB_QUESTION_INIT \
    { sizeof(annb_question), ANNB_Q_ITEMS_FOR_USER, NULL, NULL, 1, 10, 0, NULL, 0, NULL, 0, 0, 0, \
      0, 0, NULL, NULL, 0 }

/* Sets *q to ANNB_QUESTION_INIT (for callers that cannot use the macro). */
ANNB_API void annb_question_init(annb_question *q);

/* The space a kind's answers are in: ANNB_SPACE_USERS for SIMILAR_USERS and
 * USERS_FOR_ITEM, ANNB_SPACE_ITEMS otherwise. */
ANNB_API annb_space annb_question_space(annb_question_kind kind);

/*
 * annb_ask - answers a question over one bundle (n = 1) or the shards of one
 * catalog (n > 1, ann-build --shard I/N; they must agree on dimension and
 * metric). Item answers over shards are merged (annb_search_shards); the
 * subjects' vectors come from whichever shard holds the item, and from the
 * first bundle that stores users. The combination rules (which option goes
 * with which question) live here, so every front end applies the same ones.
 *
 *  hits     out: q->count x q->k slots, best first per subject; slots past
 *           the available answers hold ANNB_ID_NONE.
 *  err      out, may be NULL: what failed, for a person:
 *           ANNB_E_NOT_FOUND  "user 11 is not in the bundle", "item 7 is in
 *                             none of the bundles", "unknown genre
 *                             \"Comedy\"; the genres are: Action, ..."
 *           ANNB_E_UNSUPPORTED "the bundle has no users (build with --users)",
 *                             no interactions, exclude_seen over shards,
 *                             genres on a bundle without a catalog
 *           ANNB_E_INVALID    a NULL or contradictory field ("genres filter
 *                             items, and this question answers users"),
 *                             bundles that disagree on dimension or metric
 *           ANNB_E_NOMEM, ANNB_E_FAISS
 * Thread-safe on shared bundles; keeps nothing after it returns.
 */
ANNB_API int annb_ask(annb_hit *hits, const annb_bundle *const *bundles, size_t n,
                      const annb_question *q, annb_error *err);

/* The bundle among n shards that holds item `id` (and so its title and
 * genres), or NULL. */
ANNB_API const annb_bundle *annb_item_owner(const annb_bundle *const *bundles, size_t n,
                                            int64_t id);

/*
 * annb_results_json - answers as the protocol's JSON array (docs/protocol.md):
 * [{"rank":1,"id":2571,"score":3.25,"title":"Matrix, The (1999)","genres":
 * ["Action","Sci-Fi"]},...], one object per filled slot of hits[0..k),
 * titles and genres from the shard holding each item (users have none:
 * null and []). Scores print with 9 significant digits (they read back as
 * the same float); a score that is not finite is null. Valid UTF-8 whatever
 * the bundle holds. The one writer of results for every JSON front end.
 * Returns malloc'd text (free with annb_free), NULL when out of memory.
 */
ANNB_API char *annb_results_json(const annb_bundle *const *bundles, size_t n, annb_space space,
                                 const annb_hit *hits, size_t k);

/* Copies the stored vector of `id` in `space` (dimension floats) into out.
 * For a cosine bundle this is the normalised vector.
 * Returns ANNB_OK or ANNB_E_NOT_FOUND. */
ANNB_API int annb_vector_get(const annb_bundle *b, annb_space space, int64_t id, float *out);

/* Number of vectors in `space` (0 when the bundle stores no users). */
ANNB_API uint64_t annb_space_count(const annb_bundle *b, annb_space space);

/* The ID of row `row` (0 <= row < annb_space_count) of `space`, in ascending
 * ID order: lets a caller iterate over every user (e.g. top-k for all users). */
ANNB_API int64_t annb_space_id(const annb_bundle *b, annb_space space, uint64_t row);

/* The IDs of every row of `space` (annb_space_count of them), ascending
 * (in a bundle annb_verify accepts: opening does not walk them, SPEC 3.11):
 * the bundle's own array (in the mapping for a raw section), lent until
 * annb_close; NULL when the space is empty or b is NULL. For bindings that
 * hand the IDs out without copying (Python's Bundle.ids). */
ANNB_API const int64_t *annb_space_ids(const annb_bundle *b, annb_space space);

/* ---- String IDs (keys): SPEC 6.19 ----
 * A space built from IDs that are text stores each as the int64
 * annb_key_id(text) beside the text. Every function taking or giving IDs
 * works on those int64s (answers' annb_hit.id included); these turn them
 * into text and back. An integer space has no keys. */

/* The int64 ID a string ID is stored as: XXH3-64 of its bytes with the top
 * bit cleared (never negative, so never ANNB_ID_NONE). The same text has
 * the same ID in every bundle. */
ANNB_API int64_t annb_key_id(const char *key, size_t len);

/* 1 when `space` of b has string IDs, 0 otherwise (and for NULL). */
ANNB_API int annb_space_has_keys(const annb_bundle *b, annb_space space);

/* The string ID of `id` (by ID) or of row `row` (by row) in `space`: UTF-8,
 * NUL-terminated, lent until annb_close; its length in *len (may be NULL).
 * NULL when the space has no keys, the ID or row is not there, or the
 * stored text is damaged at that row (bulk sections are checked where they
 * are used; annb_verify checks them all). */
ANNB_API const char *annb_space_key(const annb_bundle *b, annb_space space, int64_t id,
                                    size_t *len);
ANNB_API const char *annb_space_key_at(const annb_bundle *b, annb_space space, uint64_t row,
                                       size_t *len);

/*
 * annb_space_id_of - the ID that `text` (len bytes) names in `space`, as a
 * person or a protocol writes it: in a space with keys, the key's ID; in
 * an integer space, a decimal integer (digits with an optional leading
 * '-': no blanks, no '+'). Returns ANNB_OK when the space holds it,
 * ANNB_E_NOT_FOUND when it does not (*id is still set: excluding an absent
 * ID is harmless), ANNB_E_INVALID when the text cannot be an ID there (an
 * integer space given "u12"; *id is ANNB_ID_NONE).
 */
ANNB_API int annb_space_id_of(const annb_bundle *b, annb_space space, const char *text, size_t len,
                              int64_t *id);

/* 1 when the bundle stores who has seen what (built with interactions), so
 * that annb_recommend can take opts->exclude_seen; 0 otherwise (and for
 * NULL). A bundle may store interactions for none of its users' items. */
ANNB_API int annb_bundle_has_seen(const annb_bundle *b);

/* Number of genres in the catalog, and the name of genre i (lent until
 * annb_close; NULL when i is out of range). */
ANNB_API uint32_t annb_genre_count(const annb_bundle *b);
ANNB_API const char *annb_genre_name(const annb_bundle *b, uint32_t i);

/*
 * annb_bundle_provenance - how the bundle was made: UTF-8 text of
 * `key=value` lines, each ending with a line feed, in this order:
 *
 *   tool=annb 0.1.0
 *   format=1.0
 *   faiss=1.7.3
 *   zstd=1.5.4
 *   metric=ip
 *   index=IVF256,Flat
 *   shard=0/4                        only for a shard (opts.shard_count > 1)
 *   items_content_sha256=<64 hex digits>
 *   catalog_content_sha256=<...>     likewise users_ and interactions_,
 *                                    when those inputs were given
 *
 * (format/SPEC.md 6.13; a reader must accept keys it does not know). No
 * timestamps, paths or host names. The digests are of what annb read from
 * each input (IDs and float32 values, titles and genres, user/item pairs) in
 * ID order, as SPEC 6.13 defines: not of the files' bytes, so the same
 * content in another row order or form (TSV, the wide form, a latin-1
 * catalog) gives the same bundle, and the digest of the whole items file is
 * the same in every shard.
 *
 * The text comes from the file, so it is untrusted; annb_open has checked
 * it: valid UTF-8, no control characters but the line feeds (so it is safe
 * to print on a terminal), every line a key of [a-z0-9_] and '=', keys
 * unique, at most 64 KiB. A bundle whose provenance breaks these rules is
 * refused by annb_open (ANNB_E_CORRUPT), like any damaged section.
 *
 * Returns the NUL-terminated text, lent by the bundle until annb_close; NULL
 * when the bundle has none (written before provenance existed, or by another
 * writer), for a handle opened with ANNB_OPEN_STRUCTURE_ONLY, or for NULL.
 * Thread-safe.
 */
ANNB_API const char *annb_bundle_provenance(const annb_bundle *b);

/*
 * annb_file_sha256 - the SHA-256 of a whole file (any file, not only a
 * bundle), as 64 lowercase hex digits: what `sha256sum` prints. For
 * publishing a bundle with its hash and checking a rebuild against it.
 *
 *  hex   out: 64 hex digits and a NUL (at least 65 bytes). "" on failure.
 *  path  in: the file, read in blocks (memory does not grow with its size).
 *        It must be a regular file: it is opened without blocking and a
 *        FIFO, device or directory is refused ("not a regular file").
 *  err   out, may be NULL.
 *
 * Returns ANNB_OK, ANNB_E_IO (cannot open or read, or not a regular file;
 * the message names the path) or ANNB_E_INVALID (a NULL argument).
 * Thread-safe.
 */
ANNB_API int annb_file_sha256(char hex[65], const char *path, annb_error *err);

/* A 64-bit identity of the bundle's content (the header checksum, which
 * covers every section's checksum): different builds give different IDs.
 * For cache keys such as Redis key prefixes. */
ANNB_API uint64_t annb_bundle_id(const annb_bundle *b);

/* Copies item `id`'s stored vector (dimension floats) into out. For a cosine
 * bundle this is the normalised vector. Returns ANNB_OK or ANNB_E_NOT_FOUND. */
ANNB_API int annb_item_vector(const annb_bundle *b, int64_t id, float *out);

/* Title of item `id` as NUL-terminated UTF-8, lent by the bundle until
 * annb_close; NULL when the ID is unknown, the catalog has no entry, or the
 * stored offsets of its title are damaged (checked here, SPEC 6.8).
 * Opening does not read every title: only annb_verify guarantees clean text
 * (see annb_text_char); a writer of JSON or of a terminal must repair or
 * escape what it prints. */
ANNB_API const char *annb_item_title(const annb_bundle *b, int64_t id);

/* Genres of item `id` as "Action|Comedy" (UTF-8, NUL-terminated), written
 * into buf (size bytes, truncated safely). Returns the full length the
 * string needs (without the NUL), or a negative code: ANNB_E_NOT_FOUND. An
 * item without a catalog entry or genres gives "". */
ANNB_API int annb_item_genres(const annb_bundle *b, int64_t id, char *buf, size_t size);

/*
 * annb_seen_items_from_file - the items `user` has interacted with, read
 * from an interactions file: MovieLens ratings.dat
 * (`UserID::MovieID::Rating::Timestamp`), ratings.csv
 * (`userId,movieId,rating,timestamp`) or a plain `user,item` CSV. For
 * opts->exclude_ids at query time.
 *  items  out: a malloc'd array of *count IDs (free with annb_free); NULL
 *         when the user has none.
 * Returns ANNB_OK, ANNB_E_IO, ANNB_E_INPUT (file:line:col), ANNB_E_NOMEM.
 */
ANNB_API int annb_seen_items_from_file(int64_t **items, size_t *count, const char *path,
                                       int64_t user, annb_error *err);

/*
 * annb_seen_items_read - annb_seen_items_from_file where the IDs may be
 * string IDs (SPEC 6.19), as the bundle's spaces have them
 * (annb_space_has_keys): user_keys 1 when the file's user IDs are keys (a
 * CSV header is then told by its user column's name: user, userId, user_id,
 * users, uid, customer, customerId, customer_id, visitor_id, any case),
 * item_keys 1 when its item IDs are. `user` and the items given back are
 * IDs (annb_key_id of a key), for annb_question.exclude_ids. Returns as
 * annb_seen_items_from_file, which is this with user_keys = item_keys = 0.
 */
ANNB_API int annb_seen_items_read(int64_t **items, size_t *count, const char *path, int64_t user,
                                  int user_keys, int item_keys, annb_error *err);

/* Frees memory the library returned to the caller. Accepts NULL. */
ANNB_API void annb_free(void *p);

/* ------------------------------------------------------------------------ */
/* Query vectors from text                                                   */
/* ------------------------------------------------------------------------ */

/*
 * annb_vector_parse - a query vector from text: a JSON array "[0.1, -2e-3]"
 * or comma-separated numbers "0.1,-2e-3". Every value must be a finite
 * float32 and there must be exactly `dimension` of them.
 *  out        out: dimension floats.
 * Returns ANNB_OK, ANNB_E_INPUT (unparsable; the message gives the element)
 * or ANNB_E_DIMENSION.
 */
ANNB_API int annb_vector_parse(float *out, size_t dimension, const char *text, annb_error *err);

/*
 * annb_vector_from_csv - the vector of `id` from an embeddings file in any
 * form annb_build accepts (e.g. the users' vectors of the same training job).
 *  out        out: dimension floats.
 * Returns ANNB_OK, ANNB_E_IO, ANNB_E_INPUT / ANNB_E_LIMIT (the file is
 * malformed: file, line, column), ANNB_E_NOT_FOUND (no such ID in the file),
 * ANNB_E_DIMENSION (the file's vectors do not have `dimension` components).
 */
ANNB_API int annb_vector_from_csv(float *out, size_t dimension, const char *path, int64_t id,
                                  annb_error *err);

/*
 * annb_vectors_from_csv - every vector of an embeddings file (any form
 * annb_build accepts; "-" is stdin; gzip and zstd are decompressed; a numpy
 * .npy matrix has its rows numbered 0..n-1 as IDs), in file order: e.g. a
 * batch of query vectors.
 *  ids      out: a malloc'd array of *count IDs (free with annb_free).
 *  vectors  out: a malloc'd array of *count * dimension floats, row i
 *           belonging to ids[i] (free with annb_free).
 *  count    out: the number of rows (at least 1 on success).
 * On failure *ids and *vectors are NULL and *count is 0. IDs are unique
 * (a repeated one is a malformed file).
 * Returns ANNB_OK, ANNB_E_IO, ANNB_E_INPUT / ANNB_E_LIMIT (file, line,
 * column), ANNB_E_DIMENSION (not `dimension` components), ANNB_E_NOMEM.
 */
ANNB_API int annb_vectors_from_csv(int64_t **ids, float **vectors, size_t *count, size_t dimension,
                                   const char *path, annb_error *err);

/* Vectors read from an embeddings file whose IDs may be text (string IDs,
 * SPEC 6.19): annb_vectors_read fills it, annb_vectors_release frees it. */
typedef struct annb_vectors {
    size_t count;              /* rows, at least 1 */
    uint32_t dimension;
    int64_t *ids;              /* count IDs in file order (annb_key_id of keys) */
    float *vectors;            /* count x dimension floats, row i belongs to ids[i] */
    const char *const *keys;   /* NULL: integer IDs; else keys[i] is row i's string ID */
    void *internal;            /* the library's: do not touch */
} annb_vectors;

/*
 * annb_vectors_read - every vector of an embeddings file (the forms of
 * annb_vectors_from_csv), with the IDs as written: integers, or text when
 * some ID of the file is no integer (then every ID is text, as annb_build
 * reads it). Returns as annb_vectors_from_csv; on failure *out is empty.
 */
ANNB_API int annb_vectors_read(annb_vectors *out, size_t dimension, const char *path,
                               annb_error *err);
ANNB_API void annb_vectors_release(annb_vectors *v);

/* The row of v whose ID is `text` (len bytes): a string ID as it is, or a
 * decimal integer in a file of integer IDs; -1 when there is none. */
ANNB_API int64_t annb_vectors_row(const annb_vectors *v, const char *text, size_t len);

/* ------------------------------------------------------------------------ */
/* Serving: one JSON request in, one JSON answer out (docs/protocol.md)     */
/* ------------------------------------------------------------------------ */

/* Largest k a request may ask for. */
#define ANNB_SERVE_MAX_K 10000

/* Default longest request line (bytes, line end not counted) of
 * `ann-query --serve-stdin` (--max-request-bytes) and annb_serve_read_line. */
#define ANNB_SERVE_MAX_REQUEST_BYTES (1u << 20)

/*
 * annb_serve_request - answers one request of the JSON protocol that
 * `ann-query --serve-stdin` speaks, so that a service (HTTP handler, queue
 * worker, ...) answers exactly as the tool does without parsing anything
 * itself. A request is one JSON object:
 *
 *   {"id": <any JSON, echoed>,
 *    one of: "user": ID | "item": ID | "vector": [numbers] |
 *            "similar_users": ID | "users_for_item": ID,
 *    "k": 1..ANNB_SERVE_MAX_K (default 10), "exclude_seen": true|false,
 *    "exclude": [ID, ...], "genres": ["Comedy", ...]}
 *
 * IDs are JSON integers (exact up to 2^53) or decimal strings (any int64).
 * The answer is one JSON object without line breaks:
 *
 *   {"id":..,"metric":"ip","space":"items","results":[{"rank":1,"id":2571,
 *    "score":3.25,"title":"Matrix, The (1999)","genres":["Action"]}, ...]}
 *   {"id":..,"error":{"code":"not_found","message":"user 11 is not in the bundle"}}
 *
 * "id" is null when the request had none or could not be parsed. Error
 * codes: "bad_json", "invalid_request" (not an object, unknown or repeated
 * key, wrong type, no or several questions, k out of range, an option that
 * does not fit the question), "not_found" (user, item or genre; the message
 * of an unknown genre lists the known ones), "dimension" (vector length),
 * "unsupported" (the bundles do not store what the request needs: users,
 * interactions, or exclude_seen over several bundles), "internal"; and
 * "too_large", which the caller gives when annb_serve_read_line reports an
 * over-long line (annb_serve_too_large writes that answer).
 * The answer is valid UTF-8 even when a title or the request is not
 * (invalid bytes become U+FFFD), and a score that is not finite (damaged
 * vectors: opening does not check them, annb_verify does) is null.
 *
 *  bundles   in: n open bundles. n > 1: shards of one catalog
 *            (ann-build --shard I/N) that agree on dimension and metric;
 *            item questions are merged with annb_search_shards, user vectors
 *            come from the first bundle that stores users, and "exclude_seen"
 *            (stored per shard) is refused: send the seen items in "exclude".
 *  request   in: NUL-terminated UTF-8 JSON text (surrounding white space,
 *            including a line end, is fine). Not kept.
 *  response  out: the answer, NUL-terminated, malloc'd: free with annb_free.
 *            Set on every return except ANNB_E_NOMEM, where it may be NULL.
 *
 * Returns ANNB_OK when the answer holds results, otherwise the code matching
 * the answer's error: ANNB_E_INPUT (bad_json), ANNB_E_INVALID
 * (invalid_request), ANNB_E_UNSUPPORTED (unsupported; ANNB_E_INVALID before
 * 0.2), ANNB_E_NOT_FOUND, ANNB_E_DIMENSION,
 * ANNB_E_NOMEM / ANNB_E_FAISS (internal). A bad request is never fatal to the
 * caller: answer it and go on with the next.
 * Thread-safe: no state is kept between calls; many threads may serve from
 * the same bundles at once.
 */
ANNB_API int annb_serve_request(const annb_bundle *const *bundles, size_t n, const char *request,
                                char **response);

/* What a service adds to the protocol (annb_serve_request_with,
 * annb_serve_ask). */
typedef struct annb_serve_opts {
    size_t struct_size; /* sizeof(annb_serve_opts), set by the initialiser */
    /* The largest k a request may ask for, 1..ANNB_SERVE_MAX_K (0: that);
     * a larger k is an invalid_request answer naming this limit. */
    size_t max_k;
    /* Called, on the caller's thread, after each question answered with
     * results: the parsed question (count 1) and its q->k hits, both valid
     * during the call only. The protocol names subjects and exclusions as
     * text (q->subject_texts, q->exclude_texts); q->subjects holds the
     * subject's ID as well. For a service that samples its traffic, e.g. to
     * ask again with q->exact set and measure its live recall. NULL: none. */
    void (*answered)(void *ctx, const annb_question *q, const annb_hit *hits);
    void *answered_ctx;
} annb_serve_opts;

#define ANNB_SERVE_OPTS_INIT { sizeof(annb_serve_opts), 0, NULL, NULL }

/* Sets *opts to ANNB_SERVE_OPTS_INIT (for callers that cannot use the macro). */
ANNB_API void annb_serve_opts_init(annb_serve_opts *opts);

/* annb_serve_request with a service's options (NULL: the defaults, which
 * is what annb_serve_request uses). */
ANNB_API int annb_serve_request_with(const annb_bundle *const *bundles, size_t n,
                                     const char *request, const annb_serve_opts *opts,
                                     char **response);

/*
 * annb_serve_ask - the protocol's answer to a question already parsed (a
 * front end with its own request form, e.g. an HTTP GET with query
 * parameters): the same JSON object, with "id" null, and the same return
 * codes as annb_serve_request. q->count must be 1 and q->k at most
 * opts->max_k (else an invalid_request answer). opts may be NULL.
 */
ANNB_API int annb_serve_ask(const annb_bundle *const *bundles, size_t n, const annb_question *q,
                            const annb_serve_opts *opts, char **response);

/*
 * annb_serve_read_line - reads one request line from `in` (up to '\n' or
 * the end of input) in memory bounded by max_bytes, so that an endless or
 * huge line costs nothing: a server reading requests from a pipe or socket
 * must cap them, and this is the cap `ann-query --serve-stdin` uses.
 *  in         in: the stream (e.g. fdopen of a socket). Read with getc.
 *  max_bytes  in: longest line accepted, line end ("\n", "\r\n") not
 *             counted; e.g. ANNB_SERVE_MAX_REQUEST_BYTES. At least 1.
 *  line, cap  in/out: a buffer the function grows with realloc (start with
 *             NULL and 0; free with annb_free). Never grows past max_bytes + 3.
 *  len        out: the bytes of the line in *line (NUL-terminated, the line
 *             end removed; it may contain NUL bytes, which
 *             annb_serve_request cannot take: len tells).
 * Returns 1 (a line), 0 (end of input, nothing read), ANNB_E_LIMIT (the
 * line had more than max_bytes bytes: it was read to its end and discarded;
 * answer it with annb_serve_too_large and go on), ANNB_E_IO (read error),
 * ANNB_E_NOMEM, ANNB_E_INVALID (NULL argument, max_bytes 0).
 * Thread-safety: one stream per caller at a time.
 */
ANNB_API int annb_serve_read_line(FILE *in, size_t max_bytes, char **line, size_t *cap,
                                  size_t *len);

/* The answer to a line over max_bytes:
 * {"id":null,"error":{"code":"too_large","message":"request line of more
 * than N bytes"}}. malloc'd, free with annb_free; NULL when out of memory. */
ANNB_API char *annb_serve_too_large(size_t max_bytes);

/* ------------------------------------------------------------------------ */
/* Text from a bundle (titles, genre names)                                 */
/* ------------------------------------------------------------------------ */

/*
 * annb_text_char - the length in bytes (1 to 4) of the well-formed UTF-8
 * character at text[0..n), or 0 if none starts there (a stray continuation
 * byte, an overlong form, a surrogate, past U+10FFFF, or cut short by n).
 * *control (may be NULL) is set to 1 for a control character: C0
 * (U+0000-U+001F), DEL (U+007F) or C1 (U+0080-U+009F), else 0.
 * Clean text, as the catalog reader and annb_verify demand it, is well-formed
 * with no control character. Writers use this to repair or escape the rest.
 */
ANNB_API size_t annb_text_char(const char *text, size_t n, int *control);

/* A copy of NUL-terminated `text` with each byte that does not belong to a
 * well-formed UTF-8 character replaced by U+FFFD, so it can go into JSON.
 * Control characters are kept (JSON writers escape them). malloc'd, free
 * with annb_free; NULL when text is NULL or out of memory. */
ANNB_API char *annb_text_repair(const char *text);

#ifdef __cplusplus
}
#endif
#endif /* ANNB_H */
