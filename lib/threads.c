/* threads.c - fork-join on POSIX threads (see threads.h). */
#include "threads.h"

#include <pthread.h>

/* POSIX threads, not OpenMP: the C sources are not compiled with -fopenmp
 * (CMake's OpenMP::OpenMP_CXX adds it to C++ only), and a search is a few
 * threads for a few milliseconds, for which creating them is cheap enough. */
typedef struct thread_arg {
    void (*fn)(void *, int);
    void *ctx;
    int t;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    a->fn(a->ctx, a->t);
    return NULL;
}

#define ANNB_MAX_THREADS 256

void annb_run_threads(int threads, void (*fn)(void *ctx, int t), void *ctx)
{
    pthread_t tid[ANNB_MAX_THREADS];
    thread_arg arg[ANNB_MAX_THREADS];
    int started[ANNB_MAX_THREADS];
    if (threads > ANNB_MAX_THREADS) threads = ANNB_MAX_THREADS;
    for (int t = 1; t < threads; t++) {
        arg[t] = (thread_arg){fn, ctx, t};
        started[t] = pthread_create(&tid[t], NULL, thread_main, &arg[t]) == 0;
    }
    fn(ctx, 0);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else fn(ctx, t); /* no thread: same work, later */
    }
}
