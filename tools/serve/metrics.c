/*
 * metrics.c - the counters of ann-serve and their Prometheus text (format
 * 0.0.4, what `GET /metrics` returns). Counters are relaxed atomics bumped
 * on the request path; the text is made on demand, on the polling thread.
 */
#define _GNU_SOURCE /* open_memstream */
#include "serve.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const question_names[SQ_COUNT] = {
    "items_for_user", "items_for_vector", "similar_items", "similar_users", "users_for_item",
    "batch", "invalid", "other",
};
static const unsigned statuses[SERVE_STATUS_COUNT] = SERVE_STATUSES;
static const double buckets[SERVE_LATENCY_BUCKET_COUNT] = SERVE_LATENCY_BUCKETS;

void serve_log(int verbosity, int level, const char *fmt, ...)
{
    if (verbosity < level) return;
    char line[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", SERVE_PROG, line); /* one call: lines of threads do not mix */
}

uint64_t serve_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void serve_metrics_init(serve_metrics *m)
{
    memset(m, 0, sizeof *m); /* all-zero bits are zero atomics on every target we build for */
    pthread_mutex_init(&m->recall_lock, NULL);
}

void serve_metrics_destroy(serve_metrics *m) { pthread_mutex_destroy(&m->recall_lock); }

void serve_metrics_request(serve_metrics *m, serve_question q, unsigned status, uint64_t ns)
{
    size_t s = 0;
    while (s < SERVE_STATUS_COUNT - 1 && statuses[s] != status) s++;
    if (statuses[s] != status) s = 8; /* 500: a status we never meant to send */
    atomic_fetch_add_explicit(&m->requests[q][s], 1, memory_order_relaxed);
    double secs = (double)ns / 1e9;
    size_t b = 0;
    while (b < SERVE_LATENCY_BUCKET_COUNT && secs > buckets[b]) b++;
    atomic_fetch_add_explicit(&m->latency[q][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_ns[q], ns, memory_order_relaxed);
}

void serve_metrics_recall(serve_metrics *m, double recall)
{
    pthread_mutex_lock(&m->recall_lock);
    if (m->recall_filled == SERVE_RECALL_WINDOW) m->recall_sum -= m->recall_window[m->recall_next];
    else m->recall_filled++;
    m->recall_window[m->recall_next] = recall;
    m->recall_sum += recall;
    m->recall_next = (m->recall_next + 1) % SERVE_RECALL_WINDOW;
    m->recall_measured++;
    if (m->recall_next == 0) { /* once per window: no drift of the running sum */
        m->recall_sum = 0;
        for (size_t i = 0; i < m->recall_filled; i++) m->recall_sum += m->recall_window[i];
    }
    pthread_mutex_unlock(&m->recall_lock);
}

/* A label value: backslash, double quote and line feed escaped (0.0.4). */
static void label(FILE *out, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\') fputs("\\\\", out);
        else if (*v == '"') fputs("\\\"", out);
        else if (*v == '\n') fputs("\\n", out);
        else fputc(*v, out);
    }
}

static void head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t get(atomic_uint_fast64_t *v) { return atomic_load_explicit(v, memory_order_relaxed); }

static void requests(FILE *out, serve_metrics *m)
{
    head(out, "annb_serve_requests_total", "counter", "HTTP requests answered, by question and status");
    for (int q = 0; q < SQ_COUNT; q++)
        for (int s = 0; s < SERVE_STATUS_COUNT; s++) {
            uint64_t v = get(&m->requests[q][s]);
            if (v) fprintf(out, "annb_serve_requests_total{question=\"%s\",status=\"%u\"} %llu\n",
                           question_names[q], statuses[s], (unsigned long long)v);
        }
    head(out, "annb_serve_request_duration_seconds", "histogram",
         "time from the request's arrival to its answer being handed to the connection");
    for (int q = 0; q < SQ_OTHER; q++) {
        uint64_t cumulative = 0;
        for (int b = 0; b <= SERVE_LATENCY_BUCKET_COUNT; b++) {
            cumulative += get(&m->latency[q][b]);
            if (b < SERVE_LATENCY_BUCKET_COUNT)
                fprintf(out, "annb_serve_request_duration_seconds_bucket{question=\"%s\",le=\"%g\"} "
                        "%llu\n", question_names[q], buckets[b], (unsigned long long)cumulative);
            else
                fprintf(out, "annb_serve_request_duration_seconds_bucket{question=\"%s\",le=\"+Inf\"} "
                        "%llu\n", question_names[q], (unsigned long long)cumulative);
        }
        fprintf(out, "annb_serve_request_duration_seconds_sum{question=\"%s\"} %.9f\n",
                question_names[q], (double)get(&m->latency_sum_ns[q]) / 1e9);
        fprintf(out, "annb_serve_request_duration_seconds_count{question=\"%s\"} %llu\n",
                question_names[q], (unsigned long long)cumulative);
    }
    head(out, "annb_serve_in_flight_requests", "gauge", "questions being answered by a worker");
    fprintf(out, "annb_serve_in_flight_requests %ld\n", atomic_load(&m->in_flight));
    head(out, "annb_serve_queued_requests", "gauge", "questions waiting for a worker");
    fprintf(out, "annb_serve_queued_requests %ld\n", atomic_load(&m->queued));
}

static void provenance_value(char *out, size_t size, const char *text, const char *key)
{
    size_t klen = strlen(key);
    snprintf(out, size, "%s", "");
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && !strncmp(line, key, klen) && line[klen] == '=') {
            snprintf(out, size, "%.*s", (int)(len - klen - 1), line + klen + 1);
            return;
        }
        line = end ? end + 1 : line + len;
    }
}

static void bundles(FILE *out, serve_bundle_set *set)
{
    serve_generation *g = serve_acquire(set);
    head(out, "annb_serve_generation", "gauge", "the served generation: 1 at start, +1 per swap");
    fprintf(out, "annb_serve_generation %llu\n", (unsigned long long)g->number);
    head(out, "annb_serve_bundle_info", "gauge",
         "the served files: SHA-256 of the bytes, index, metric and build tool (provenance)");
    for (size_t i = 0; i < g->n; i++) {
        const serve_file *f = &g->files[i];
        char tool[128], index[128], metric[32];
        const char *prov = annb_bundle_provenance(f->bundle);
        provenance_value(tool, sizeof tool, prov, "tool");
        provenance_value(index, sizeof index, prov, "index");
        provenance_value(metric, sizeof metric, prov, "metric");
        fputs("annb_serve_bundle_info{path=\"", out);
        label(out, f->path);
        fprintf(out, "\",sha256=\"%s\",format=\"%u.%u\",index=\"", f->sha256,
                f->info.format_major, f->info.format_minor);
        label(out, index[0] ? index : f->info.index);
        fputs("\",metric=\"", out);
        label(out, metric[0] ? metric : annb_metric_name(f->info.metric));
        fputs("\",tool=\"", out);
        label(out, tool);
        fprintf(out, "\",dimension=\"%u\",items=\"%llu\"} 1\n", f->info.dimension,
                (unsigned long long)f->info.count);
    }
    head(out, "annb_serve_bundle_stored_recall", "gauge",
         "recall@k measured when the bundle was built (1: exact index)");
    for (size_t i = 0; i < g->n; i++) {
        const serve_file *f = &g->files[i];
        uint32_t n = annb_recall_count(f->bundle);
        annb_recall_info r;
        for (uint32_t j = 0; j <= n; j++) {
            if (j < n) { if (annb_recall_get(&r, f->bundle, j) != ANNB_OK) continue; }
            else if (n == 0 && f->info.has_recall) r = f->info.recall;
            else break;
            fputs("annb_serve_bundle_stored_recall{path=\"", out);
            label(out, f->path);
            fprintf(out, "\",k=\"%u\"} %.6f\n", r.k, r.measured ? r.recall : 1.0);
        }
    }
    serve_release(g);
}

static void swaps(FILE *out, serve_metrics *m)
{
    head(out, "annb_serve_reloads_total", "counter",
         "looks at the served files (SIGHUP, inotify, POST /admin/reload)");
    fprintf(out, "annb_serve_reloads_total %llu\n", (unsigned long long)get(&m->reloads));
    head(out, "annb_serve_reloads_unchanged_total", "counter", "reloads that found no file changed");
    fprintf(out, "annb_serve_reloads_unchanged_total %llu\n",
            (unsigned long long)get(&m->reloads_unchanged));
    head(out, "annb_serve_swaps_total", "counter", "new generations put in service");
    fprintf(out, "annb_serve_swaps_total %llu\n", (unsigned long long)get(&m->swaps));
    head(out, "annb_serve_swaps_refused_total", "counter",
         "new files refused: failed to open or verify, or dimension or metric changed");
    fprintf(out, "annb_serve_swaps_refused_total %llu\n", (unsigned long long)get(&m->swaps_refused));
}

static void live_recall(FILE *out, serve_metrics *m, double fraction)
{
    head(out, "annb_serve_live_recall_sample_ratio", "gauge",
         "fraction of questions re-answered exactly (--recall-sample)");
    fprintf(out, "annb_serve_live_recall_sample_ratio %g\n", fraction);
    head(out, "annb_serve_live_recall_sampled_total", "counter", "questions sampled for live recall");
    fprintf(out, "annb_serve_live_recall_sampled_total %llu\n",
            (unsigned long long)get(&m->recall_sampled));
    head(out, "annb_serve_live_recall_dropped_total", "counter",
         "samples dropped: the exact re-answering thread was behind");
    fprintf(out, "annb_serve_live_recall_dropped_total %llu\n",
            (unsigned long long)get(&m->recall_dropped));
    pthread_mutex_lock(&m->recall_lock);
    size_t filled = m->recall_filled;
    double mean = filled ? m->recall_sum / (double)filled : 0;
    uint64_t measured = m->recall_measured;
    pthread_mutex_unlock(&m->recall_lock);
    head(out, "annb_serve_live_recall_measured_total", "counter", "samples measured");
    fprintf(out, "annb_serve_live_recall_measured_total %llu\n", (unsigned long long)measured);
    head(out, "annb_serve_live_recall_window_samples", "gauge",
         "samples in the sliding window of annb_serve_live_recall");
    fprintf(out, "annb_serve_live_recall_window_samples %zu\n", filled);
    head(out, "annb_serve_live_recall", "gauge",
         "mean recall@k of the served answers against exact answers, over the last "
         "window_samples sampled questions (each at its own k); NaN before the first");
    if (filled) fprintf(out, "annb_serve_live_recall %.6f\n", mean);
    else fputs("annb_serve_live_recall NaN\n", out);
}

int serve_metrics_render(char **text, size_t *len, serve_metrics *m, serve_bundle_set *set,
                         double recall_sample)
{
    FILE *out = open_memstream(text, len);
    if (!out) return -1;
    requests(out, m);
    bundles(out, set);
    swaps(out, m);
    live_recall(out, m, recall_sample);
    int bad = ferror(out);
    if (fclose(out) != 0 || bad) {
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}
