/*
 * http.c - ann-serve's HTTP front end on libmicrohttpd, and its workers.
 *
 * Two ways to dispatch a question (--dispatch; docs/serve.md measures both):
 *
 *  inline: MHD's own thread pool (--threads threads, epoll each)
 *    reads a request, answers it and writes the answer on one thread. The
 *    fewest context switches and system calls: 28,000 against 16,000
 *    requests/s on 2 cores for the same questions. Overload shows as latency
 *    (queue in front, e.g. HAProxy's maxconn, which answers 503 itself).
 *
 *  queue (default: the bounded queue, 503 and timeout the issue requires;
 *    inline has no way to bound or time out what waits in socket buffers):
 *    one MHD polling thread does the I/O and answers the cheap routes;
 *    a question goes onto a bounded queue with its connection suspended, a
 *    worker answers it and resumes the connection, and MHD calls the handler
 *    again to send the answer. So a full queue is a 503 with Retry-After at
 *    once, a question that waited longer than --timeout-ms for a worker is a
 *    504 without being answered, and /healthz or /metrics never wait behind
 *    searches; each question costs a suspend, a resume and two wake-ups.
 *
 * Memory: the answer of a request is freed when MHD reports it complete; a
 * body is held only up to --max-request-bytes, and all bodies being received
 * at once up to a budget (503 past it); MHD caps connections and their header
 * memory. Nothing grows with the number of requests served.
 */
#define _GNU_SOURCE
#include "serve.h"

#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum phase { P_RECEIVING, P_QUEUED, P_ANSWERED };

typedef struct request_state {
    struct serve_http *h;
    struct MHD_Connection *conn;
    struct request_state *next;  /* in the queue */
    uint64_t start_ns;           /* the headers arrived */
    uint64_t queued_ns;          /* put on the queue (the body, if any, was in) */
    enum phase phase;
    int is_post;
    char *body;                  /* POST: NUL-terminated */
    size_t len, cap, reserved;   /* reserved: bytes counted in the body budget */
    int too_large, over_budget;
    size_t discarded;            /* body bytes dropped past the cap */
    serve_get_question get;      /* GET: the question */
    int has_get;
    serve_question question;
    unsigned status;
    char *answer;                /* free()d after sending */
    char *uri;                   /* for the access log (decoded by MHD) */
    char *raw_uri;               /* the request target as sent (on_uri), or NULL */
    const char *method;
} request_state;

struct serve_http {
    serve_config cfg;
    serve_bundle_set *set;
    serve_metrics *m;
    serve_recall *recall;
    struct MHD_Daemon *daemon;
    pthread_t *workers;
    int nworkers;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    request_state *head, *tail;
    size_t qlen;
    size_t idle;                 /* workers not answering a question (from their start: a
                                  * question arriving before a worker first waits is not
                                  * refused) */
    int stopping;
    atomic_int draining;
    atomic_long open_requests;   /* begun and not complete */
    atomic_size_t body_bytes;
    size_t body_budget;
    pthread_mutex_t log_lock;
};

static const char json_type[] = "application/json";

/* ---- answers ---- */

static enum MHD_Result send_text(request_state *rs, unsigned status, char *text, const char *type)
{
    serve_http *h = rs->h;
    if (!text) {
        text = serve_error_json("internal", "out of memory");
        status = 500;
        if (!text) return MHD_NO; /* MHD closes the connection */
    }
    size_t len = strlen(text);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : json_type);
    if (status == 503) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 405) {
        const char *uri = rs->uri ? rs->uri : "";
        int post = !strcmp(uri, "/v1/query") || !strcmp(uri, "/admin/reload");
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, post ? "POST" : "GET, HEAD");
    }
    if (status == 413 || atomic_load(&h->draining))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    rs->status = status;
    serve_metrics_request(h->m, rs->question, status, serve_now_ns() - rs->start_ns);
    enum MHD_Result ok = MHD_queue_response(rs->conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(request_state *rs, unsigned status, const char *code,
                                  const char *message)
{
    return send_text(rs, status, serve_error_json(code, "%s", message), NULL);
}

/* ---- the workers ---- */

struct answered_ctx {
    serve_recall *recall;
    serve_generation *g;
};

static void on_answered(void *arg, const annb_question *q, const annb_hit *hits)
{
    const struct answered_ctx *ctx = arg;
    (void)hits; /* the sampler asks again: searches are deterministic */
    serve_recall_offer(ctx->recall, ctx->g, q);
}

static void answer(serve_http *h, request_state *rs)
{
    uint64_t waited_ms = (serve_now_ns() - rs->queued_ns) / 1000000u;
    if (h->cfg.dispatch_queue && h->cfg.timeout_ms && waited_ms > h->cfg.timeout_ms) {
        rs->status = 504;
        rs->answer = serve_error_json("timeout", "the request waited %llu ms for a worker, more "
                                      "than the server's --timeout-ms %u",
                                      (unsigned long long)waited_ms, h->cfg.timeout_ms);
        return;
    }
    serve_generation *g = serve_acquire(h->set);
    const annb_bundle *const *b = g->bundles;
    /* The library caps k and hands every question answered (GET, POST and
     * each element of a batch) to the live recall sampler. */
    struct answered_ctx ctx = {h->recall, g};
    annb_serve_opts opts = ANNB_SERVE_OPTS_INIT;
    opts.max_k = h->cfg.max_k;
    opts.answered = h->recall ? on_answered : NULL;
    opts.answered_ctx = &ctx;
    if (rs->has_get)
        rs->status = serve_answer_get(&rs->answer, b, g->n, &rs->get, &opts);
    else
        rs->status = serve_answer_post(&rs->answer, &rs->question, b, g->n, rs->body, rs->len,
                                       &opts);
    serve_release(g);
}

static void *worker_main(void *arg)
{
    serve_http *h = arg;
    int busy = 0;
    for (;;) {
        pthread_mutex_lock(&h->qlock);
        if (busy) h->idle++; /* back from the last question */
        busy = 0;
        while (!h->head && !h->stopping) pthread_cond_wait(&h->qcond, &h->qlock);
        request_state *rs = h->head;
        if (rs) {
            h->head = rs->next;
            if (!h->head) h->tail = NULL;
            h->qlen--;
            h->idle--;
            busy = 1;
        }
        pthread_mutex_unlock(&h->qlock);
        if (!rs) return NULL; /* stopping, and the queue is empty */
        atomic_fetch_sub(&h->m->queued, 1);
        atomic_fetch_add(&h->m->in_flight, 1);
        answer(h, rs);
        atomic_fetch_sub(&h->m->in_flight, 1);
        rs->phase = P_ANSWERED;
        MHD_resume_connection(rs->conn); /* MHD calls on_request again to send it */
    }
}

/* Answers rs on this thread (inline), or puts it on the queue (its
 * connection suspended), or answers 503. */
static enum MHD_Result enqueue(serve_http *h, request_state *rs)
{
    if (!h->cfg.dispatch_queue) {
        atomic_fetch_add(&h->m->in_flight, 1);
        answer(h, rs);
        atomic_fetch_sub(&h->m->in_flight, 1);
        char *text = rs->answer;
        rs->answer = NULL; /* send_text owns it now */
        return send_text(rs, rs->status, text, NULL);
    }
    pthread_mutex_lock(&h->qlock);
    if (h->stopping) { /* the workers are leaving: nobody would resume it */
        pthread_mutex_unlock(&h->qlock);
        return send_error(rs, 503, "unavailable", "the server is shutting down");
    }
    /* Admitted while fewer than --queue questions would wait beyond the
     * idle workers (a signalled worker counts as idle until it takes its
     * question, which is in qlen until then: no worker is promised twice). */
    if (h->qlen >= h->cfg.queue + h->idle) {
        pthread_mutex_unlock(&h->qlock);
        return send_error(rs, 503, "overloaded", "every worker is busy and the queue is full; "
                          "retry after the time in Retry-After");
    }
    /* Suspended before a worker can see it: the worker's resume must
     * follow the suspend. */
    MHD_suspend_connection(rs->conn);
    rs->phase = P_QUEUED;
    rs->queued_ns = serve_now_ns();
    rs->next = NULL;
    if (h->tail) h->tail->next = rs;
    else h->head = rs;
    h->tail = rs;
    h->qlen++;
    atomic_fetch_add(&h->m->queued, 1);
    pthread_cond_signal(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
    return MHD_YES;
}

/* ---- routes ---- */

static int is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (!sa) return 0;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

static enum MHD_Result metrics_page(request_state *rs)
{
    char *text = NULL;
    size_t len = 0;
    if (serve_metrics_render(&text, &len, rs->h->m, rs->h->set, rs->h->cfg.recall_sample) != 0)
        return send_error(rs, 500, "internal", "out of memory");
    return send_text(rs, 200, text, "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result route(serve_http *h, request_state *rs, const char *url)
{
    int get = !strcmp(rs->method, MHD_HTTP_METHOD_GET) || !strcmp(rs->method, MHD_HTTP_METHOD_HEAD);
    int post = rs->is_post;
    if (rs->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes (--max-request-bytes)",
                 h->cfg.max_request_bytes);
        return send_error(rs, 413, "too_large", msg);
    }
    if (rs->over_budget)
        return send_error(rs, 503, "overloaded", "too many request bodies are being received "
                          "at once; retry after the time in Retry-After");
    if (!strcmp(url, "/v1/query")) {
        if (!post) return send_error(rs, 405, "method_not_allowed", "/v1/query takes POST");
        return enqueue(h, rs);
    }
    if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/metrics")) {
        if (!get) return send_error(rs, 405, "method_not_allowed", "this path takes GET");
        if (url[1] == 'm') return metrics_page(rs);
        if (url[1] == 'h') return send_text(rs, 200, strdup("{\"status\":\"alive\"}"), NULL);
        if (atomic_load(&h->draining))
            return send_text(rs, 503, strdup("{\"status\":\"draining\"}"), NULL);
        serve_generation *g = serve_acquire(h->set);
        char buf[96];
        snprintf(buf, sizeof buf, "{\"status\":\"ready\",\"generation\":%llu}",
                 (unsigned long long)g->number);
        serve_release(g);
        return send_text(rs, 200, strdup(buf), NULL);
    }
    if (!strcmp(url, "/admin/reload")) {
        if (!post) return send_error(rs, 405, "method_not_allowed", "/admin/reload takes POST");
        if (!h->cfg.admin_any_peer && !is_loopback(rs->conn))
            return send_error(rs, 403, "forbidden", "/admin/reload is for loopback peers only "
                              "(ann-serve --admin-any-peer allows any)");
        serve_set_request_reload(h->set, "POST /admin/reload");
        return send_text(rs, 202, strdup("{\"reload\":\"requested\"}"), NULL);
    }
    /* The GET forms read the path as sent: MHD decodes it, and a string ID
     * may hold an encoded '/' ("a%2Fb"), which its decoded form would not
     * tell from a separator. */
    char *error = NULL, *raw = rs->raw_uri ? strndup(rs->raw_uri, strcspn(rs->raw_uri, "?#")) : NULL;
    int form = serve_route_get(&rs->get, &rs->question, &error, rs->conn, raw ? raw : url,
                               h->cfg.max_k);
    free(raw);
    if (form >= 0) {
        if (!get) {
            if (form == 0) serve_get_question_release(&rs->get);
            free(error);
            return send_error(rs, 405, "method_not_allowed", "this path takes GET");
        }
        if (form > 0) return send_text(rs, (unsigned)form, error, NULL);
        rs->has_get = 1;
        return enqueue(h, rs);
    }
    char msg[160];
    snprintf(msg, sizeof msg, "no such path: %.100s (docs/serve.md lists the API)", url);
    return send_error(rs, 404, "not_found", msg);
}

/* ---- MHD callbacks ---- */

/* Appends a body chunk within the caps; past them the rest is read and dropped. */
static void take_body(serve_http *h, request_state *rs, const char *data, size_t size)
{
    if (rs->too_large || rs->over_budget) return;
    if (size > h->cfg.max_request_bytes - rs->len) {
        rs->too_large = 1;
        return;
    }
    if (rs->len + size + 1 > rs->cap) {
        size_t want = rs->cap ? rs->cap : 1024;
        while (want < rs->len + size + 1) want *= 2;
        if (want > h->cfg.max_request_bytes + 1) want = h->cfg.max_request_bytes + 1;
        size_t extra = want - rs->reserved;
        if (atomic_fetch_add(&h->body_bytes, extra) + extra > h->body_budget) {
            atomic_fetch_sub(&h->body_bytes, extra);
            rs->over_budget = 1;
            return;
        }
        rs->reserved = want;
        char *grown = realloc(rs->body, want);
        if (!grown) {
            rs->over_budget = 1;
            return;
        }
        rs->body = grown;
        rs->cap = want;
    }
    memcpy(rs->body + rs->len, data, size);
    rs->len += size;
    rs->body[rs->len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **state)
{
    serve_http *h = cls;
    request_state *rs = *state;
    (void)version;
    if (!rs || !rs->h) { /* the headers: set up, and refuse an announced oversized body now */
        if (!rs && !(rs = calloc(1, sizeof *rs))) return MHD_NO;
        rs->h = h;
        rs->conn = conn;
        rs->start_ns = serve_now_ns();
        rs->question = SQ_OTHER;
        rs->method = method;
        rs->is_post = !strcmp(method, MHD_HTTP_METHOD_POST);
        rs->uri = strdup(url); /* MHD's copy lives as long, but only while the request does */
        *state = rs;
        atomic_fetch_add(&h->open_requests, 1);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->cfg.max_request_bytes) {
            rs->too_large = 1;
            return route(h, rs, url);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        take_body(h, rs, upload_data, *upload_data_size);
        if (rs->too_large) rs->discarded += *upload_data_size;
        *upload_data_size = 0;
        /* A body over the cap is read on (and dropped) so that its client can
         * read the 413, but an endless one is cut off: hang up after as much
         * again as the cap, and 64 KiB. */
        return rs->discarded > h->cfg.max_request_bytes + (64u << 10) ? MHD_NO : MHD_YES;
    }
    if (rs->phase == P_ANSWERED) { /* back from a worker: send what it wrote */
        char *text = rs->answer;
        rs->answer = NULL; /* send_text owns it now */
        return send_text(rs, rs->status, text, NULL);
    }
    if (rs->status) return MHD_YES; /* answered already (an early 413) */
    if (rs->is_post && !rs->body && !rs->too_large) {
        rs->body = strdup(""); /* no body: the library says "the request is empty" */
        if (!rs->body) return MHD_NO;
    }
    return route(h, rs, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why)
{
    serve_http *h = cls;
    request_state *rs = *state;
    (void)conn;
    if (!rs) return;
    if (!rs->h) { /* on_uri's, never seen by on_request (a malformed request) */
        free(rs->raw_uri);
        free(rs);
        *state = NULL;
        return;
    }
    if (h->cfg.access_log) {
        double ms = (double)(serve_now_ns() - rs->start_ns) / 1e6;
        pthread_mutex_lock(&h->log_lock);
        /* The method and the decoded path are the client's bytes: escaped
         * (cli_put_text), so that %0A cannot forge a line nor %1b a terminal. */
        cli_put_text(h->cfg.access_log, rs->method);
        putc(' ', h->cfg.access_log);
        cli_put_text(h->cfg.access_log, rs->uri ? rs->uri : "-");
        fprintf(h->cfg.access_log, " %u %.3f%s\n", rs->status, ms,
                why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
        fflush(h->cfg.access_log);
        pthread_mutex_unlock(&h->log_lock);
    }
    atomic_fetch_sub(&h->body_bytes, rs->reserved);
    free(rs->body);
    if (rs->has_get) serve_get_question_release(&rs->get);
    free(rs->answer);
    free(rs->uri);
    free(rs->raw_uri);
    free(rs);
    *state = NULL;
    atomic_fetch_sub(&h->open_requests, 1);
}

/* MHD's URI callback, called with the request target as the client sent
 * it, before MHD decodes its path; what it returns is the request's state
 * (on_request sets the rest up). Without memory, NULL: on_request then
 * allocates the state and the decoded path serves. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    request_state *rs = calloc(1, sizeof *rs);
    if (rs && !(rs->raw_uri = strdup(uri))) {
        free(rs);
        rs = NULL;
    }
    return rs;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    serve_http *h = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    serve_log(h->cfg.verbosity, 1, "libmicrohttpd: %s", line);
}

/* ---- start and stop ---- */

static int listen_address(struct sockaddr_storage *ss, const char *host, unsigned port)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return AF_INET6;
    }
    return -1;
}

int serve_http_start(serve_http **out, const serve_config *cfg, serve_bundle_set *set,
                     serve_metrics *m, serve_recall *recall, unsigned *bound)
{
    struct sockaddr_storage ss;
    int family = listen_address(&ss, cfg->listen_host, cfg->listen_port);
    serve_http *h = calloc(1, sizeof *h);
    *out = NULL;
    if (!h) return -1;
    if (family < 0) {
        serve_log(cfg->verbosity, -1, "--listen: %s is not a numeric IPv4 or IPv6 address",
                  cfg->listen_host);
        free(h);
        return -1;
    }
    h->cfg = *cfg;
    h->set = set;
    h->m = m;
    h->recall = recall;
    /* Bodies being received at once: room for a few full-size ones. */
    h->body_budget = cfg->max_request_bytes * 8 > (64u << 20) ? cfg->max_request_bytes * 8
                                                              : (64u << 20);
    pthread_mutex_init(&h->qlock, NULL);
    pthread_cond_init(&h->qcond, NULL);
    pthread_mutex_init(&h->log_lock, NULL);
    int workers = cfg->dispatch_queue ? cfg->threads : 0;
    h->idle = (size_t)workers;
    if (workers && !(h->workers = calloc((size_t)workers, sizeof *h->workers))) return -1;
    for (; h->nworkers < workers; h->nworkers++)
        if (pthread_create(&h->workers[h->nworkers], NULL, worker_main, h) != 0) break;
    /* ITC (an eventfd per thread): MHD_quiesce_daemon needs it to stop
     * accepting at SIGTERM; suspend/resume implies it. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ERROR_LOG |
                     (cfg->dispatch_queue ? MHD_ALLOW_SUSPEND_RESUME : MHD_USE_ITC) |
                     (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first: it then gets every message */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->dispatch_queue ? 1 : cfg->threads),
        MHD_OPTION_END);
    if (!h->daemon || h->nworkers < workers) {
        serve_log(cfg->verbosity, -1, "cannot listen on %s:%u: %s", cfg->listen_host,
                  cfg->listen_port, h->daemon ? "cannot start the workers" : strerror(errno));
        serve_http_stop(h, 0);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *bound = di ? di->port : cfg->listen_port;
    *out = h;
    return 0;
}

void serve_http_stop(serve_http *h, unsigned drain_ms)
{
    if (!h) return;
    /* The grace period: /readyz answers 503 so that load balancers take this
     * replica out, while every request, new connections and open ones, is
     * still answered (with Connection: close). */
    atomic_store(&h->draining, 1);
    MHD_socket fd = MHD_INVALID_SOCKET;
    if (h->daemon) {
        uint64_t until = serve_now_ns() + (uint64_t)drain_ms * 1000000u;
        while (serve_now_ns() < until) usleep(5000);
        fd = MHD_quiesce_daemon(h->daemon); /* no new connections */
        /* Requests begun finish (at most drain_ms more): queued ones are
         * answered, answers sent. */
        until = serve_now_ns() + (uint64_t)drain_ms * 1000000u;
        while (atomic_load(&h->open_requests) > 0 && serve_now_ns() < until) usleep(5000);
    }
    pthread_mutex_lock(&h->qlock);
    h->stopping = 1; /* workers empty the queue, then leave */
    pthread_cond_broadcast(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
    for (int i = 0; i < h->nworkers; i++) pthread_join(h->workers[i], NULL);
    if (h->daemon) MHD_stop_daemon(h->daemon);
    /* Only now: MHD's threads may still use the socket until they stop, and a
     * number closed earlier could be reused by another file meanwhile. */
    if (fd != MHD_INVALID_SOCKET) close(fd);
    free(h->workers);
    pthread_mutex_destroy(&h->qlock);
    pthread_cond_destroy(&h->qcond);
    pthread_mutex_destroy(&h->log_lock);
    free(h);
}
