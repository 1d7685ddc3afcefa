/*
 * serve.h - what the parts of ann-serve share: the served bundle set and its
 * generations (generation.c), the counters of /metrics (metrics.c), the
 * translation of HTTP requests into questions (routes.c), the HTTP front end
 * with its worker pool (http.c) and the live recall sampler (live_recall.c).
 *
 * Threads: libmicrohttpd's, which answer questions themselves or hand them
 * to a pool of workers behind a bounded queue (--dispatch, http.c); a
 * reloader thread that opens and verifies new bundles; an inotify thread
 * watching the served directories; a low-priority thread re-answering
 * sampled questions exactly.
 */
#ifndef ANNB_SERVE_H
#define ANNB_SERVE_H

#include "annb.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define SERVE_PROG "ann-serve"

/* ---- log ---- */

/* "ann-serve: message" on stderr when verbosity >= level: level -1 for
 * errors (always), 0 for swaps (not with -q), 1 for -v only. */
void serve_log(int verbosity, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Monotonic clock in nanoseconds. */
uint64_t serve_now_ns(void);

/* ---- metrics (metrics.c) ---- */

/* What a request asked, the label "question" of the request counters. */
typedef enum serve_question {
    SQ_ITEMS_FOR_USER,
    SQ_ITEMS_FOR_VECTOR,
    SQ_SIMILAR_ITEMS,
    SQ_SIMILAR_USERS,
    SQ_USERS_FOR_ITEM,
    SQ_BATCH,   /* POST /v1/query with a JSON array */
    SQ_INVALID, /* not a question: bad JSON, no or several question keys */
    SQ_OTHER,   /* /healthz, /metrics, /admin/reload, unknown paths */
    SQ_COUNT
} serve_question;

/* The HTTP statuses ann-serve answers with (the label "status"). */
#define SERVE_STATUSES {200, 202, 400, 403, 404, 405, 413, 422, 500, 503, 504}
#define SERVE_STATUS_COUNT 11

/* Upper bounds of the latency histogram, seconds. */
#define SERVE_LATENCY_BUCKETS {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, \
                               0.05, 0.1, 0.25, 0.5, 1.0, 2.5}
#define SERVE_LATENCY_BUCKET_COUNT 14

/* Sliding window of live recall samples. */
#define SERVE_RECALL_WINDOW 1000

typedef struct serve_metrics {
    atomic_uint_fast64_t requests[SQ_COUNT][SERVE_STATUS_COUNT];
    /* Histogram per question: counts per bucket (the last is +Inf), not
     * cumulative (summed when printed), and the sum in nanoseconds. */
    atomic_uint_fast64_t latency[SQ_COUNT][SERVE_LATENCY_BUCKET_COUNT + 1];
    atomic_uint_fast64_t latency_sum_ns[SQ_COUNT];
    atomic_long in_flight; /* taken by a worker, not answered yet */
    atomic_long queued;    /* waiting for a worker */
    atomic_uint_fast64_t reloads, swaps, swaps_refused, reloads_unchanged;
    /* Live recall: sampled, dropped (queue full), failed; and the window. */
    atomic_uint_fast64_t recall_sampled, recall_dropped, recall_failed;
    pthread_mutex_t recall_lock;
    double recall_window[SERVE_RECALL_WINDOW]; /* recall@k of each sample */
    size_t recall_next, recall_filled;
    double recall_sum;                         /* of the window */
    uint64_t recall_measured;
} serve_metrics;

void serve_metrics_init(serve_metrics *m);
void serve_metrics_destroy(serve_metrics *m);
/* Counts one request answered with `status` after `ns` nanoseconds. */
void serve_metrics_request(serve_metrics *m, serve_question q, unsigned status, uint64_t ns);
/* One live recall measurement (0..1). */
void serve_metrics_recall(serve_metrics *m, double recall);

struct serve_bundle_set;
/* The Prometheus text (format 0.0.4) of everything, malloc'd into *text
 * (*len bytes). Returns 0, or -1 when out of memory. */
int serve_metrics_render(char **text, size_t *len, serve_metrics *m, struct serve_bundle_set *set,
                         double recall_sample);

/* ---- the served bundles (generation.c) ---- */

/* One served file as it was when its generation was loaded. */
typedef struct serve_file {
    const char *path;      /* as given on the command line (owned by the set) */
    annb_bundle *bundle;
    annb_bundle_info info;
    char sha256[65];       /* of the file's bytes, at load */
    dev_t dev;             /* identity of what was opened, to see a replacement */
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
} serve_file;

/* An immutable set of open bundles. Readers take a reference for the time of
 * one answer; the set holds one for the current generation; the last
 * release closes the bundles, so a swap never closes a bundle in use. */
typedef struct serve_generation {
    atomic_long refs;
    uint64_t number;                 /* 1 at start, +1 per swap */
    size_t n;
    const annb_bundle **bundles;     /* n, for annb_serve_request */
    serve_file *files;               /* n */
} serve_generation;

typedef struct serve_bundle_set {
    size_t n;
    const char **paths;
    int verbosity;
    serve_metrics *metrics;
    pthread_mutex_t lock;            /* guards current */
    serve_generation *current;
    /* Reload requests (SIGHUP, inotify, POST /admin/reload), coalesced. */
    pthread_mutex_t reload_lock;
    pthread_cond_t reload_cond;
    int reload_pending, stopping;
    pthread_t reloader, watcher;
    int reloader_started, watcher_started;
    int inotify_fd;
    int stop_pipe[2];                /* wakes the watcher at shutdown */
} serve_bundle_set;

/* Opens and fully verifies every path (the first generation). Returns 0, or
 * prints what failed and returns -1. */
int serve_set_open(serve_bundle_set *s, const char **paths, size_t n, serve_metrics *m,
                   int verbosity);
/* Starts the reloader and the inotify watcher. 0 or -1 (message printed). */
int serve_set_start(serve_bundle_set *s);
/* Asks the reloader to look at the files again; requests made while one
 * runs are coalesced into one more. `why` is logged with -v. */
void serve_set_request_reload(serve_bundle_set *s, const char *why);
/* Stops the threads and drops the set's reference to its generation. */
void serve_set_close(serve_bundle_set *s);
/* A reference to the current generation; release it with serve_release. */
serve_generation *serve_acquire(serve_bundle_set *s);
void serve_release(serve_generation *g);

/* ---- questions of the GET forms (routes.c) ---- */

/* An annb_question with the storage its pointers point into, all of it
 * malloc'd: a copy of the struct points at the same storage (a live recall
 * sample is copied out of its queue), and serve_get_question_release frees
 * it once. The subject and the excluded IDs are kept as given: as text (the
 * GET forms, the protocol; the library reads it in its space) or as IDs. */
typedef struct serve_get_question {
    annb_question q;
    int64_t *subject;        /* one ID, or NULL */
    char **subject_text;     /* one string, or NULL */
    float *vector;           /* ITEMS_FOR_VECTOR: dimension floats */
    int64_t *exclude;        /* nexclude IDs */
    size_t nexclude;
    char **exclude_texts;    /* nexclude_texts strings; the GET forms: each value of the
                              * exclude parameter, split by serve_answer_get */
    size_t nexclude_texts;
    char **genres;           /* ngenres strings */
    size_t ngenres;
} serve_get_question;

void serve_get_question_release(serve_get_question *q);
/* A deep copy of a question (count 1; a vector has `dimension` floats) into
 * *dst, for a live recall sample. 0, or -1 (out of memory, count not 1). */
int serve_get_question_copy(serve_get_question *dst, const annb_question *src, size_t dimension);

/* ---- live recall (live_recall.c) ---- */

typedef struct serve_recall serve_recall;

/* A sampler re-answering `fraction` of the questions offered exactly, on one
 * SCHED_IDLE thread with a queue of `capacity` samples. *out is NULL (and 0
 * returned) when fraction is 0; -1 when it cannot start. */
int serve_recall_start(serve_recall **out, double fraction, size_t capacity, serve_metrics *m,
                       serve_bundle_set *set, int verbosity);
/* Offers an answered question (r may be NULL): sampled or not, copied when
 * sampled, with the number of g, the generation that answered it (a sample
 * is measured on that generation, or dropped once it is swapped out). */
void serve_recall_offer(serve_recall *r, const serve_generation *g, const annb_question *q);
/* Stops the thread; queued samples are dropped. Accepts NULL. */
void serve_recall_stop(serve_recall *r);

/* ---- HTTP (http.c, routes.c) ---- */

typedef struct serve_config {
    const char *listen_host;   /* numeric IPv4 or IPv6 address */
    unsigned listen_port;      /* 0: any free port */
    int threads;               /* workers (inline: MHD's thread pool) */
    int dispatch_queue;        /* 1: --dispatch queue; 0: inline (http.c) */
    size_t max_request_bytes;  /* body cap (413) */
    size_t max_k;              /* k cap (400) */
    size_t queue;              /* requests waiting for a worker (503 past it) */
    unsigned timeout_ms;       /* longest wait for a worker (504 past it) */
    double recall_sample;      /* fraction re-answered exactly; 0 off */
    int admin_any_peer;        /* POST /admin/reload from any address, not loopback only */
    FILE *access_log;          /* NULL: none */
    int verbosity;
} serve_config;

typedef struct serve_http serve_http;

/* Starts listening and the workers. *bound gets the port. 0 or -1 (logged). */
int serve_http_start(serve_http **out, const serve_config *cfg, serve_bundle_set *set,
                     serve_metrics *m, serve_recall *recall, unsigned *bound);
/* Drains: for drain_ms /readyz is 503 and every request is answered with
 * Connection: close; then stops accepting connections, waits at most
 * drain_ms more for requests begun, and stops. */
void serve_http_stop(serve_http *h, unsigned drain_ms);

struct MHD_Connection;
/* Translates GET /v1/... (path: as the client sent it, percent-encoded,
 * without the query string; the query arguments read from conn, which MHD
 * decodes) into *q, labelled *question. Returns -1 when the path is none of
 * the GET forms; 0 when q holds the question; or an HTTP status (400, 500)
 * with its answer in *error (malloc'd, free()). */
int serve_route_get(serve_get_question *q, serve_question *question, char **error,
                    struct MHD_Connection *conn, const char *path, size_t max_k);
/* Answers a GET question: *answer (malloc'd, free()), the HTTP status back. */
unsigned serve_answer_get(char **answer, const annb_bundle *const *bundles, size_t n,
                          const serve_get_question *q, const annb_serve_opts *opts);
/* Answers a POST /v1/query body (a request or an array of them): the JSON
 * answer into *answer (malloc'd, free with free()), the HTTP status back. */
unsigned serve_answer_post(char **answer, serve_question *question,
                           const annb_bundle *const *bundles, size_t n, const char *body,
                           size_t len, const annb_serve_opts *opts);
/* Answers one protocol request text: *answer (malloc'd, free with free()). */
unsigned serve_answer_text(char **answer, const annb_bundle *const *bundles, size_t n,
                           const char *request, const annb_serve_opts *opts);
/* {"id":null,"error":{"code":CODE,"message":MESSAGE}}, malloc'd (free()). */
char *serve_error_json(const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* ANNB_SERVE_H */
