/*
 * failalloc.c - the allocator replacement described in failalloc.h.
 *
 * glibc lets a program replace malloc and friends (its manual, "Replacing
 * malloc"); the real work is done by glibc's own exported __libc_* entry
 * points, so nothing here recurses. The table of live blocks is a static
 * open-addressing hash (no allocation), behind one mutex: libannb's exact
 * search and the OpenMP runtime may allocate from other threads.
 */
#define _GNU_SOURCE
#include "failalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
/* std::__throw_bad_alloc(): how operator new reports failure, callable from C
 * (this file is compiled with -fexceptions so the throw unwinds through it). */
extern void _ZSt17__throw_bad_allocv(void) __attribute__((noreturn));
/* libgomp, linked in for libfaiss.a; weak so that the file stands alone. */
extern int omp_get_level(void) __attribute__((weak));

/* The executable's text (GNU ld's default linker script defines both). */
extern char __executable_start[], etext[];

#define SLOTS (1u << 20) /* power of two; far above what the tests keep live */

typedef struct block {
    void *p;
    const void *caller;
    size_t size;
    uint64_t seq;
    int counted;
} block;

static block table[SLOTS];
static size_t live;
static uint64_t seq;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* libc's __cxa_thread_atexit_impl: the registration of a thread_local's
 * destructor (Faiss's and annb's last-error strings, made on a thread's first
 * error), freed when the thread exits. Not a leak of the call that made it. */
static const char *atexit_lo, *atexit_hi;

static uint64_t armed_at;  /* 0: disarmed */
static int armed_persistent;
static uint64_t failable;  /* failable allocations since arming */
static uint64_t failures;

static size_t slot_of(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 40) & (SLOTS - 1);
}

static void die(const char *msg)
{
    /* No stdio: it allocates. */
    (void)!write(2, msg, strlen(msg));
    abort();
}

static void table_add(void *p, size_t size, const void *caller)
{
    size_t i = slot_of(p);
    while (table[i].p) i = (i + 1) & (SLOTS - 1);
    int counted = !((const char *)caller >= atexit_lo && (const char *)caller < atexit_hi);
    table[i] = (block){p, caller, size, ++seq, counted};
    live += counted;
    if (live > SLOTS / 2) die("failalloc: too many live blocks\n");
}

/* Linear probing with backward-shift deletion (no tombstones). */
static void table_remove(void *p)
{
    size_t i = slot_of(p);
    while (table[i].p && table[i].p != p) i = (i + 1) & (SLOTS - 1);
    if (!table[i].p) return; /* from before the replacement took over, or memalign'd by libc */
    live -= table[i].counted;
    for (size_t j = i;;) {
        table[i].p = NULL;
        for (;;) {
            j = (j + 1) & (SLOTS - 1);
            if (!table[j].p) return;
            size_t home = slot_of(table[j].p);
            /* Move j back into the hole at i unless its home lies in (i, j]. */
            if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
            table[i] = table[j];
            i = j;
            break;
        }
    }
}

/* The text of the shared libraries libannb calls that report a failed
 * allocation to their caller (NULL, an error code): see failalloc.h. */
static const char *const libs_reporting[] = {"libcjson.so", "libcsv.so", "libzstd.so", "libxxhash.so"};
#define MAX_RANGES 16
static struct { const char *lo, *hi; } ranges[MAX_RANGES];
static int nranges;

static int in_text(const char *c)
{
    if (c >= __executable_start && c < etext) return 1;
    for (int i = 0; i < nranges; i++)
        if (c >= ranges[i].lo && c < ranges[i].hi) return 1;
    return 0;
}

static int failable_caller(const void *caller)
{
    return in_text(caller) && !(omp_get_level && omp_get_level() > 0);
}

/* Under the lock: does this allocation fail? */
static int should_fail(const void *caller)
{
    if (!armed_at || !failable_caller(caller)) return 0;
    failable++;
    if (failable == armed_at || (armed_persistent && failable > armed_at)) {
        failures++;
        return 1;
    }
    return 0;
}

typedef enum kind { K_MALLOC, K_CALLOC, K_ALIGNED } kind;

static void *alloc(kind k, size_t a, size_t b, const void *caller)
{
    pthread_mutex_lock(&lock);
    void *p = NULL;
    if (should_fail(caller)) {
        errno = ENOMEM;
    } else {
        p = k == K_MALLOC ? __libc_malloc(a) : k == K_CALLOC ? __libc_calloc(a, b)
                                                             : __libc_memalign(a, b);
        if (p) table_add(p, k == K_CALLOC ? a * b : k == K_MALLOC ? a : b, caller);
    }
    pthread_mutex_unlock(&lock);
    return p;
}

void *malloc(size_t n) { return alloc(K_MALLOC, n, 0, __builtin_return_address(0)); }
void *calloc(size_t n, size_t size) { return alloc(K_CALLOC, n, size, __builtin_return_address(0)); }

void *realloc(void *old, size_t n)
{
    const void *caller = __builtin_return_address(0);
    if (!old) return alloc(K_MALLOC, n, 0, caller);
    pthread_mutex_lock(&lock);
    void *p = NULL;
    if (n && should_fail(caller)) { /* the old block stays as it was */
        errno = ENOMEM;
    } else {
        p = __libc_realloc(old, n);
        if (p || n == 0) table_remove(old); /* glibc frees on realloc(p, 0) */
        if (p) table_add(p, n, caller);
    }
    pthread_mutex_unlock(&lock);
    return p;
}

void free(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&lock);
    table_remove(p);
    __libc_free(p);
    pthread_mutex_unlock(&lock);
}

void *memalign(size_t align, size_t n) { return alloc(K_ALIGNED, align, n, __builtin_return_address(0)); }

void *aligned_alloc(size_t align, size_t n)
{
    return alloc(K_ALIGNED, align, n, __builtin_return_address(0));
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = alloc(K_ALIGNED, align, n, __builtin_return_address(0));
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t n) { return alloc(K_ALIGNED, (size_t)sysconf(_SC_PAGESIZE), n, __builtin_return_address(0)); }

/* glibc's own strdup allocates from inside libc, where nothing fails: these
 * count format/ and lib/ as the callers. */
char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = alloc(K_MALLOC, n, 0, __builtin_return_address(0));
    return p ? memcpy(p, s, n) : NULL;
}

char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *p = alloc(K_MALLOC, n + 1, 0, __builtin_return_address(0));
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* libc's stdio allocates a FILE from inside libc, where nothing fails: for
 * a failable caller these fail first as that allocation would (NULL, ENOMEM). */
static int fails_here(const void *caller)
{
    pthread_mutex_lock(&lock);
    int fail = should_fail(caller);
    pthread_mutex_unlock(&lock);
    if (fail) errno = ENOMEM;
    return fail;
}

typedef FILE *fopen_fn(const char *, const char *);
typedef FILE *fmemopen_fn(void *, size_t, const char *);
typedef FILE *open_memstream_fn(char **, size_t *);

FILE *fopen(const char *path, const char *mode)
{
    static fopen_fn *real;
    if (!real) real = (fopen_fn *)dlsym(RTLD_NEXT, "fopen");
    return fails_here(__builtin_return_address(0)) ? NULL : real(path, mode);
}

FILE *fmemopen(void *buf, size_t size, const char *mode)
{
    static fmemopen_fn *real;
    if (!real) real = (fmemopen_fn *)dlsym(RTLD_NEXT, "fmemopen");
    return fails_here(__builtin_return_address(0)) ? NULL : real(buf, size, mode);
}

FILE *open_memstream(char **buf, size_t *size)
{
    static open_memstream_fn *real;
    if (!real) real = (open_memstream_fn *)dlsym(RTLD_NEXT, "open_memstream");
    return fails_here(__builtin_return_address(0)) ? NULL : real(buf, size);
}

/* operator new (size_t), new[] and their nothrow forms. libstdc++'s operator
 * delete calls free. */
static void *new_or_throw(size_t n, const void *caller)
{
    void *p = alloc(K_MALLOC, n ? n : 1, 0, caller);
    if (!p) _ZSt17__throw_bad_allocv();
    return p;
}

void *_Znwm(size_t n) { return new_or_throw(n, __builtin_return_address(0)); }
void *_Znam(size_t n) { return new_or_throw(n, __builtin_return_address(0)); }
void *_ZnwmRKSt9nothrow_t(size_t n, const void *tag)
{
    (void)tag;
    return alloc(K_MALLOC, n ? n : 1, 0, __builtin_return_address(0));
}
void *_ZnamRKSt9nothrow_t(size_t n, const void *tag)
{
    (void)tag;
    return alloc(K_MALLOC, n ? n : 1, 0, __builtin_return_address(0));
}

static int add_ranges(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    int wanted = 0;
    for (size_t i = 0; info->dlpi_name && i < sizeof libs_reporting / sizeof *libs_reporting; i++)
        wanted |= strstr(info->dlpi_name, libs_reporting[i]) != NULL;
    for (int i = 0; wanted && i < info->dlpi_phnum && nranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        ranges[nranges].lo = (const char *)(info->dlpi_addr + ph->p_vaddr);
        ranges[nranges].hi = ranges[nranges].lo + ph->p_memsz;
        nranges++;
    }
    return 0;
}

static void find_ranges(void)
{
    dl_iterate_phdr(add_ranges, NULL);
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    void *f = dlsym(RTLD_DEFAULT, "__cxa_thread_atexit_impl");
    if (f && dladdr1(f, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) {
        atexit_lo = f;
        atexit_hi = (const char *)f + sym->st_size;
    }
}

void failalloc_arm(uint64_t n, int persistent)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_ranges); /* here, not in malloc: dlsym takes the loader's lock */
    pthread_mutex_lock(&lock);
    armed_at = n;
    armed_persistent = persistent;
    failable = failures = 0;
    pthread_mutex_unlock(&lock);
}

uint64_t failalloc_disarm(void)
{
    pthread_mutex_lock(&lock);
    uint64_t n = failable;
    armed_at = 0;
    pthread_mutex_unlock(&lock);
    return n;
}

uint64_t failalloc_failures(void)
{
    pthread_mutex_lock(&lock);
    uint64_t n = failures;
    pthread_mutex_unlock(&lock);
    return n;
}

size_t failalloc_live(void)
{
    pthread_mutex_lock(&lock);
    size_t n = live;
    pthread_mutex_unlock(&lock);
    return n;
}

uint64_t failalloc_mark(void)
{
    pthread_mutex_lock(&lock);
    uint64_t s = seq;
    pthread_mutex_unlock(&lock);
    return s;
}

size_t failalloc_blocks_since(uint64_t mark, void **out, size_t max)
{
    size_t count = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < SLOTS; i++)
        if (table[i].p && table[i].counted && table[i].seq > mark) {
            if (count < max) out[count] = table[i].p;
            count++;
        }
    pthread_mutex_unlock(&lock);
    return count;
}

size_t failalloc_report_since(uint64_t mark, size_t max)
{
    block shown[16];
    size_t count = 0, nshown = 0;
    if (max > 16) max = 16;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < SLOTS; i++)
        if (table[i].p && table[i].counted && table[i].seq > mark) {
            if (nshown < max) shown[nshown++] = table[i];
            count++;
        }
    pthread_mutex_unlock(&lock);
    /* stdio only now, outside the lock: it may allocate. */
    for (size_t i = 0; i < nshown; i++) {
        const char *c = shown[i].caller;
        Dl_info info;
        if (c >= __executable_start && c < etext)
            fprintf(stderr, "  live block of %zu bytes from exe+0x%zx\n", shown[i].size,
                    (size_t)(c - __executable_start));
        else if (dladdr(c, &info) && info.dli_fname)
            fprintf(stderr, "  live block of %zu bytes from %s+0x%zx (%s)\n", shown[i].size,
                    info.dli_fname, (size_t)(c - (const char *)info.dli_fbase),
                    info.dli_sname ? info.dli_sname : "?");
    }
    return count;
}
