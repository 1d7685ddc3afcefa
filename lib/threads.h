/*
 * threads.h - a tiny fork-join runner for the in-place searches and the
 * nearest-centroid assignment (internal).
 */
#ifndef ANNB_THREADS_H
#define ANNB_THREADS_H

/* Runs fn(ctx, t) for t = 0 .. threads-1, t = 0 on the calling thread, the
 * others on new threads, and returns when all are done. A thread that
 * cannot be started runs on the calling thread instead, so fn must not
 * rely on running concurrently. */
void annb_run_threads(int threads, void (*fn)(void *ctx, int t), void *ctx);

#endif /* ANNB_THREADS_H */
