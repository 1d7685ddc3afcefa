/*
 * live_recall.c - the recall the real traffic sees. A fraction of the
 * questions answered (exactly that fraction: a counter, not a coin) is
 * copied onto a bounded queue, with a reference to the generation that
 * answered it; one thread at the lowest priority (SCHED_IDLE) asks each
 * again as served and exactly (annb_question.exact), and the share of the
 * exact top-k found in the served one goes into the metrics' sliding window.
 * A sample that finds the queue full is dropped and counted: measuring
 * never slows answering.
 *
 * The approximate answer is asked again rather than kept from the request:
 * searches are deterministic for a given bundle and question, so it is the
 * answer that was served, and the request path copies nothing but the
 * question.
 */
#define _GNU_SOURCE /* SCHED_IDLE */
#include "serve.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

typedef struct sample {
    serve_generation *g;  /* a reference, released after measuring */
    serve_get_question q; /* a deep copy */
} sample;

struct serve_recall {
    double fraction;
    atomic_uint_fast64_t seen;
    serve_metrics *m;
    int verbosity;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sample *ring;
    size_t capacity, head, count;
    int stopping;
    pthread_t thread;
};

/* recall@k of one question: the exact answer's IDs found in the served one. */
static int measure(double *recall, const serve_generation *g, const annb_question *served)
{
    size_t k = served->k;
    annb_hit *hits = malloc(2 * k * sizeof *hits);
    annb_question exact = *served;
    exact.exact = 1;
    int rc = hits ? ANNB_OK : ANNB_E_NOMEM;
    if (rc == ANNB_OK) rc = annb_ask(hits, g->bundles, g->n, served, NULL);
    if (rc == ANNB_OK) rc = annb_ask(hits + k, g->bundles, g->n, &exact, NULL);
    size_t truth = 0, found = 0;
    for (size_t i = 0; rc == ANNB_OK && i < k && hits[k + i].id != ANNB_ID_NONE; i++) {
        truth++;
        for (size_t j = 0; j < k && hits[j].id != ANNB_ID_NONE; j++)
            if (hits[j].id == hits[k + i].id) {
                found++;
                break;
            }
    }
    free(hits);
    if (rc != ANNB_OK || truth == 0) return rc != ANNB_OK ? rc : 1; /* 1: nothing to measure */
    *recall = (double)found / (double)truth;
    return ANNB_OK;
}

static void *recall_main(void *arg)
{
    serve_recall *r = arg;
    struct sched_param idle = {0};
    /* The lowest priority there is: a core gives it time only when idle. */
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!r->count && !r->stopping) pthread_cond_wait(&r->cond, &r->lock);
        if (r->stopping) { /* what is queued is released by serve_recall_stop */
            pthread_mutex_unlock(&r->lock);
            return NULL;
        }
        sample s = r->ring[r->head];
        r->head = (r->head + 1) % r->capacity;
        r->count--;
        pthread_mutex_unlock(&r->lock);
        double recall = 0;
        int rc = measure(&recall, s.g, &s.q.q);
        if (rc == ANNB_OK) serve_metrics_recall(r->m, recall);
        else if (rc < 0) atomic_fetch_add(&r->m->recall_failed, 1);
        serve_release(s.g);
        serve_get_question_release(&s.q);
    }
}

int serve_recall_start(serve_recall **out, double fraction, size_t capacity, serve_metrics *m,
                       int verbosity)
{
    *out = NULL;
    if (fraction <= 0) return 0;
    serve_recall *r = calloc(1, sizeof *r);
    if (!r || !(r->ring = calloc(capacity, sizeof *r->ring))) {
        free(r);
        return -1;
    }
    r->fraction = fraction;
    r->capacity = capacity;
    r->m = m;
    r->verbosity = verbosity;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, recall_main, r) != 0) {
        free(r->ring);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void serve_recall_offer(serve_recall *r, serve_generation *g, const annb_question *q)
{
    if (!r) return;
    /* Sample n when floor((n + 1) f) > floor(n f): exactly a fraction f. */
    uint64_t n = atomic_fetch_add_explicit(&r->seen, 1, memory_order_relaxed);
    if ((uint64_t)((double)(n + 1) * r->fraction) == (uint64_t)((double)n * r->fraction)) return;
    atomic_fetch_add(&r->m->recall_sampled, 1);
    pthread_mutex_lock(&r->lock);
    if (r->count == r->capacity || r->stopping) {
        pthread_mutex_unlock(&r->lock);
        atomic_fetch_add(&r->m->recall_dropped, 1);
        return;
    }
    sample *s = &r->ring[(r->head + r->count) % r->capacity];
    if (serve_get_question_copy(&s->q, q, g->files[0].info.dimension) != 0) {
        pthread_mutex_unlock(&r->lock);
        atomic_fetch_add(&r->m->recall_dropped, 1);
        return;
    }
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    s->g = g;
    r->count++;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void serve_recall_stop(serve_recall *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    for (; r->count; r->count--, r->head = (r->head + 1) % r->capacity) {
        serve_release(r->ring[r->head].g);
        serve_get_question_release(&r->ring[r->head].q);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r->ring);
    free(r);
}
