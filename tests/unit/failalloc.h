/*
 * failalloc.h - allocation-failure injection for the tests, in the manner of
 * sqlite's fault injection (its test_malloc.c): the executable that links
 * failalloc.c replaces malloc, calloc, realloc, free, the aligned
 * allocators, strdup/strndup and C++'s operator new, counts allocations,
 * and, when armed, makes the n-th one fail (NULL and errno ENOMEM, or
 * std::bad_alloc from operator new) and optionally every one after it.
 *
 * Only allocations that libannb can be expected to handle fail: those
 * called from the executable's text (libannb, annb_format and libfaiss.a
 * are linked into it statically) and from the shared libraries that report
 * a failed allocation to annb (cJSON, libcsv, zstd, xxhash); never inside an
 * OpenMP region (Faiss allocates with operator new inside its parallel
 * loops, and an exception leaving one terminates the process). fopen, fmemopen and
 * open_memstream, whose FILE libc allocates out of sight, fail for those
 * callers too, as that allocation would. Allocations made by libc itself,
 * libgomp, OpenBLAS and libstdc++'s out-of-line code are counted as live
 * blocks but never failed: they abort or misbehave on NULL, and are not
 * annb's to fix.
 *
 * Every block allocated through any of these functions is kept in a table,
 * so that a test can compare the number of live blocks before and after a
 * call (the leak check) and list the blocks a call left behind.
 */
#ifndef ANNB_FAILALLOC_H
#define ANNB_FAILALLOC_H

#include <stddef.h>
#include <stdint.h>

/* From the next failable allocation on, the n-th one (1-based) fails, and
 * with persistent every one after it too. n = 0 disarms. Resets the count
 * of failable allocations. */
void failalloc_arm(uint64_t n, int persistent);
/* Disarms; returns the number of failable allocations since failalloc_arm
 * (so the armed failure was reached when it is >= n). */
uint64_t failalloc_disarm(void);
/* Failures injected since failalloc_arm. */
uint64_t failalloc_failures(void);

/* Number of live blocks, and a mark for failalloc_report_since. */
size_t failalloc_live(void);
uint64_t failalloc_mark(void);
/* Prints (to stderr) up to max live blocks allocated after `mark`: size and
 * caller (as an offset into the executable when it is there, for
 * `addr2line -e EXE OFFSET`). Returns how many there are. */
size_t failalloc_report_since(uint64_t mark, size_t max);

/* The live blocks allocated after `mark`: up to max of them into out;
 * returns how many there are. */
size_t failalloc_blocks_since(uint64_t mark, void **out, size_t max);

#endif /* ANNB_FAILALLOC_H */
