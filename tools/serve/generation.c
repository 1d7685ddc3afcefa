/*
 * generation.c - the served bundles and their hot swap.
 *
 * A generation is an immutable set of open bundles with a reference count.
 * Requests take a reference for the time of one answer; a swap replaces the
 * current pointer under a mutex and drops the set's own reference, so the
 * old bundles are closed by whichever reader leaves last, never under one.
 * New files are opened with ANNB_OPEN_VERIFY_ALL and annb_verify on the
 * reloader thread, never on a request's path: a file that fails, or whose
 * dimension or metric differs from what is served, is refused (logged and
 * counted) and the old generation keeps answering.
 */
#define _GNU_SOURCE /* pipe2 */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void generation_free(serve_generation *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) annb_close(g->files[i].bundle);
    free(g->files);
    free(g->bundles);
    free(g);
}

serve_generation *serve_acquire(serve_bundle_set *s)
{
    pthread_mutex_lock(&s->lock);
    serve_generation *g = s->current;
    if (g) atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return g;
}

void serve_release(serve_generation *g)
{
    if (g && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1) generation_free(g);
}

static int same_file(const serve_file *f, const struct stat *st)
{
    return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
           f->mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void remember(serve_file *f, const struct stat *st)
{
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->size = st->st_size;
    f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Opens, verifies and hashes one file. The hash and the mapping must be of
 * the same file: when the path was replaced between the two (a publish
 * racing the reload), start over; the reload that publish triggers follows. */
static int load_file(serve_file *f, const char *path, annb_error *err)
{
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = ANNB_OPEN_VERIFY_ALL;
    for (int attempt = 0; attempt < 5; attempt++) {
        struct stat before, after;
        annb_bundle *b = NULL;
        int rc;
        if (stat(path, &before) != 0) {
            snprintf(err->message, sizeof err->message, "%s: %s", path, strerror(errno));
            return err->code = ANNB_E_IO;
        }
        if ((rc = annb_open(&b, path, &oo, err)) != ANNB_OK) return rc;
        if ((rc = annb_verify(b, err)) != ANNB_OK ||
            (rc = annb_file_sha256(f->sha256, path, err)) != ANNB_OK) {
            annb_close(b);
            return rc;
        }
        if (stat(path, &after) == 0 && after.st_dev == before.st_dev &&
            after.st_ino == before.st_ino && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
            after.st_mtim.tv_nsec == before.st_mtim.tv_nsec && after.st_size == before.st_size) {
            f->path = path;
            f->bundle = b;
            annb_bundle_info_get(&f->info, b);
            remember(f, &after);
            return ANNB_OK;
        }
        annb_close(b);
    }
    snprintf(err->message, sizeof err->message, "%s: replaced again while it was being opened",
             path);
    return err->code = ANNB_E_IO;
}

static serve_generation *generation_load(serve_bundle_set *s, uint64_t number, annb_error *err)
{
    serve_generation *g = calloc(1, sizeof *g);
    if (g) {
        g->files = calloc(s->n, sizeof *g->files);
        g->bundles = calloc(s->n, sizeof *g->bundles);
    }
    if (!g || !g->files || !g->bundles) {
        generation_free(g);
        snprintf(err->message, sizeof err->message, "out of memory");
        err->code = ANNB_E_NOMEM;
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->number = number;
    for (size_t i = 0; i < s->n; i++) {
        if (load_file(&g->files[i], s->paths[i], err) != ANNB_OK) {
            generation_free(g);
            return NULL;
        }
        g->bundles[i] = g->files[i].bundle;
        g->n = i + 1;
    }
    /* Shards of one catalog must agree, as annb_serve_request demands. */
    for (size_t i = 1; i < g->n; i++)
        if (g->files[i].info.dimension != g->files[0].info.dimension ||
            g->files[i].info.metric != g->files[0].info.metric) {
            snprintf(err->message, sizeof err->message,
                     "%s: dimension %u, metric %s; %s has dimension %u, metric %s (shards of "
                     "one catalog must agree)", s->paths[i], g->files[i].info.dimension,
                     annb_metric_name(g->files[i].info.metric), s->paths[0],
                     g->files[0].info.dimension, annb_metric_name(g->files[0].info.metric));
            err->code = ANNB_E_INVALID;
            generation_free(g);
            return NULL;
        }
    return g;
}

static void log_generation(serve_bundle_set *s, const serve_generation *g, const char *verb)
{
    for (size_t i = 0; i < g->n; i++)
        serve_log(s->verbosity, 0, "%s generation %llu: %s (sha256 %s, %s, dimension %u, %s)",
                  verb, (unsigned long long)g->number, g->files[i].path, g->files[i].sha256,
                  g->files[i].info.index ? g->files[i].info.index : "?", g->files[i].info.dimension,
                  annb_metric_name(g->files[i].info.metric));
}

int serve_set_open(serve_bundle_set *s, const char **paths, size_t n, serve_metrics *m,
                   int verbosity)
{
    annb_error err = {0, ""};
    memset(s, 0, sizeof *s);
    s->paths = paths;
    s->n = n;
    s->metrics = m;
    s->verbosity = verbosity;
    s->inotify_fd = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->reload_lock, NULL);
    pthread_condattr_t ca; /* timed waits on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->reload_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!(s->current = generation_load(s, 1, &err))) {
        serve_log(verbosity, -1, "%s", err.message[0] ? err.message : annb_strerror(err.code));
        return -1;
    }
    log_generation(s, s->current, "serving");
    return 0;
}

/* Why the new generation may not replace the old one, or NULL. */
static const char *incompatible(const serve_generation *old, const serve_generation *new,
                                size_t *which)
{
    for (size_t i = 0; i < new->n; i++) {
        *which = i;
        if (new->files[i].info.dimension != old->files[i].info.dimension)
            return "its dimension differs from the served bundle's";
        if (new->files[i].info.metric != old->files[i].info.metric)
            return "its metric differs from the served bundle's";
        /* Storing less than the served bundle would turn questions that are
         * answered now into errors (422) the moment it is swapped in. */
        const annb_bundle *ob = old->files[i].bundle, *nb = new->files[i].bundle;
        if (annb_space_count(ob, ANNB_SPACE_USERS) && !annb_space_count(nb, ANNB_SPACE_USERS))
            return "it stores no users, and the served bundle does (user questions would fail)";
        if (annb_bundle_has_seen(ob) && !annb_bundle_has_seen(nb))
            return "it stores no interactions, and the served bundle does (exclude_seen would fail)";
        if (old->files[i].info.has_catalog && !new->files[i].info.has_catalog)
            return "it has no catalog, and the served bundle has (titles and genre filters would go)";
    }
    return NULL;
}

static void reload(serve_bundle_set *s)
{
    annb_error err = {0, ""};
    serve_generation *old = serve_acquire(s);
    size_t changed = 0, which = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct stat st;
        if (stat(s->paths[i], &st) != 0 || !same_file(&old->files[i], &st)) changed++;
    }
    atomic_fetch_add(&s->metrics->reloads, 1);
    if (!changed) {
        atomic_fetch_add(&s->metrics->reloads_unchanged, 1);
        serve_log(s->verbosity, 1, "reload: no served file changed");
        serve_release(old);
        return;
    }
    serve_generation *new = generation_load(s, old->number + 1, &err);
    const char *why = new ? incompatible(old, new, &which) : NULL;
    if (!new || why) {
        atomic_fetch_add(&s->metrics->swaps_refused, 1);
        if (why)
            serve_log(s->verbosity, -1, "refused %s: %s (dimension %u, metric %s); still serving "
                      "generation %llu", new->files[which].path, why,
                      new->files[which].info.dimension,
                      annb_metric_name(new->files[which].info.metric),
                      (unsigned long long)old->number);
        else
            serve_log(s->verbosity, -1, "refused the new files: %s; still serving generation %llu",
                      err.message[0] ? err.message : annb_strerror(err.code),
                      (unsigned long long)old->number);
        generation_free(new);
        serve_release(old);
        return;
    }
    pthread_mutex_lock(&s->lock);
    serve_generation *replaced = s->current;
    s->current = new;
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->metrics->swaps, 1);
    log_generation(s, new, "swapped to");
    serve_release(replaced); /* the set's reference */
    serve_release(old);      /* ours; the last reader closes it */
}

/* Requests are coalesced until none has come for this long: the shards of
 * one catalog renamed one after another, or a burst of events, give one
 * reload of them all, never a generation mixing old and new shards. */
#define RELOAD_QUIET_MS 200
/* ...but at most this long after the first: a steady stream of events (a
 * file rewritten over and over) cannot postpone a reload forever. */
#define RELOAD_MAX_WAIT_MS 1000

static struct timespec ms_after(struct timespec t, long ms)
{
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

static int before(struct timespec a, struct timespec b)
{
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static void *reloader_main(void *arg)
{
    serve_bundle_set *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->reload_lock);
        while (!s->reload_pending && !s->stopping) pthread_cond_wait(&s->reload_cond, &s->reload_lock);
        struct timespec now, cap;
        clock_gettime(CLOCK_MONOTONIC, &now);
        cap = ms_after(now, RELOAD_MAX_WAIT_MS);
        while (s->reload_pending && !s->stopping && before(now, cap)) { /* a quiet moment */
            s->reload_pending = 0;
            struct timespec until = ms_after(now, RELOAD_QUIET_MS);
            if (before(cap, until)) until = cap;
            while (!s->reload_pending && !s->stopping &&
                   pthread_cond_timedwait(&s->reload_cond, &s->reload_lock, &until) == 0) {
            }
            clock_gettime(CLOCK_MONOTONIC, &now);
        }
        s->reload_pending = 0; /* this reload looks at the files after every request so far */
        int stop = s->stopping;
        pthread_mutex_unlock(&s->reload_lock);
        if (stop) return NULL;
        reload(s);
    }
}

void serve_set_request_reload(serve_bundle_set *s, const char *why)
{
    serve_log(s->verbosity, 1, "reload requested: %s", why);
    pthread_mutex_lock(&s->reload_lock);
    s->reload_pending = 1;
    pthread_cond_signal(&s->reload_cond);
    pthread_mutex_unlock(&s->reload_lock);
}

/* ---- inotify: a rename over (or a write to) a served name ---- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void *watcher_main(void *arg)
{
    serve_bundle_set *s = arg;
    /* Aligned as inotify_event, with room for the longest name. */
    union { struct inotify_event ev; char bytes[sizeof(struct inotify_event) + NAME_MAX + 1]; }
        buf[8];
    struct pollfd p[2] = {{s->inotify_fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            serve_log(s->verbosity, -1, "inotify: poll: %s", strerror(errno));
            return NULL;
        }
        if (p[1].revents) return NULL;
        ssize_t got = read(s->inotify_fd, buf, sizeof buf);
        if (got <= 0) {
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            serve_log(s->verbosity, -1, "inotify: read: %s", got ? strerror(errno) : "end of file");
            return NULL;
        }
        int hit = 0;
        for (char *at = (char *)buf; at < (char *)buf + got;) {
            const struct inotify_event *ev = (const struct inotify_event *)at;
            if (ev->mask & IN_Q_OVERFLOW) hit = 1; /* events lost: look anyway */
            for (size_t i = 0; ev->len && i < s->n && !hit; i++)
                hit = strcmp(ev->name, base_name(s->paths[i])) == 0;
            at += sizeof *ev + ev->len;
        }
        if (hit) serve_set_request_reload(s, "a served file was replaced (inotify)");
    }
}

static int watch_directories(serve_bundle_set *s)
{
    if ((s->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0 ||
        pipe2(s->stop_pipe, O_CLOEXEC) != 0) {
        serve_log(s->verbosity, -1, "inotify: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        const char *slash = strrchr(s->paths[i], '/');
        char dir[PATH_MAX];
        if (!slash) snprintf(dir, sizeof dir, ".");
        else if (slash == s->paths[i]) snprintf(dir, sizeof dir, "/");
        else snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->paths[i]), s->paths[i]);
        /* The same directory twice gives the same watch: harmless. */
        if (inotify_add_watch(s->inotify_fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
            serve_log(s->verbosity, -1, "inotify: cannot watch %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int serve_set_start(serve_bundle_set *s)
{
    if (pthread_create(&s->reloader, NULL, reloader_main, s) != 0) return -1;
    s->reloader_started = 1;
    if (watch_directories(s) != 0) return -1;
    if (pthread_create(&s->watcher, NULL, watcher_main, s) != 0) return -1;
    s->watcher_started = 1;
    return 0;
}

void serve_set_close(serve_bundle_set *s)
{
    pthread_mutex_lock(&s->reload_lock);
    s->stopping = 1;
    pthread_cond_signal(&s->reload_cond);
    pthread_mutex_unlock(&s->reload_lock);
    if (s->reloader_started) pthread_join(s->reloader, NULL);
    if (s->watcher_started) {
        ssize_t w = write(s->stop_pipe[1], "x", 1);
        (void)w;
        pthread_join(s->watcher, NULL);
    }
    if (s->inotify_fd >= 0) close(s->inotify_fd);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0) close(s->stop_pipe[i]);
    serve_release(s->current);
    s->current = NULL;
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->reload_lock);
    pthread_cond_destroy(&s->reload_cond);
}
