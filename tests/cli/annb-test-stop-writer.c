/* annb-test-stop-writer.c - an LD_PRELOAD library for test_writes.sh: puts a
 * real ann-build process at a known point of its write, so a signal can be
 * sent there deterministically instead of after a guessed delay.
 *
 *   ANNB_SHIM_STOP_DIR=DIR   the first write(2) to a regular file in DIR
 *                            (an unnamed O_TMPFILE file counts: its /proc
 *                            link is "DIR/#INODE (deleted)") is done, then
 *                            the process stops itself (SIGSTOP): the new
 *                            bundle exists, partly written
 *   ANNB_SHIM_NO_TMPFILE=1   open/openat with O_TMPFILE fail with
 *                            EOPNOTSUPP, as on a file system without it, so
 *                            the writer takes its named-temporary fallback
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int tmpfile_refused(int flags)
{
    const char *e = getenv("ANNB_SHIM_NO_TMPFILE");
    return (flags & O_TMPFILE) == O_TMPFILE && e && e[0] == '1';
}

/* mode is passed on whenever the flags say one was given. */
static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

#define OPENAT(name)                                                                   \
    int name(int dfd, const char *path, int flags, ...)                                \
    {                                                                                  \
        static int (*real)(int, const char *, int, ...);                               \
        va_list ap;                                                                    \
        va_start(ap, flags);                                                           \
        mode_t mode = mode_arg(flags, ap);                                             \
        va_end(ap);                                                                    \
        if (tmpfile_refused(flags)) {                                                  \
            errno = EOPNOTSUPP;                                                        \
            return -1;                                                                 \
        }                                                                              \
        if (!real) real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        return real(dfd, path, flags, mode);                                           \
    }
#define OPEN(name)                                                                     \
    int name(const char *path, int flags, ...)                                         \
    {                                                                                  \
        static int (*real)(const char *, int, ...);                                    \
        va_list ap;                                                                    \
        va_start(ap, flags);                                                           \
        mode_t mode = mode_arg(flags, ap);                                             \
        va_end(ap);                                                                    \
        if (tmpfile_refused(flags)) {                                                  \
            errno = EOPNOTSUPP;                                                        \
            return -1;                                                                 \
        }                                                                              \
        if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);    \
        return real(path, flags, mode);                                                \
    }
OPENAT(openat)
OPENAT(openat64)
OPEN(open)
OPEN(open64)

/* fd is a regular file whose path (as /proc shows it) is under dir. */
static int in_dir(int fd, const char *dir)
{
    char proc[64], target[4096];
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = '\0';
    size_t len = strlen(dir);
    return strncmp(target, dir, len) == 0 && target[len] == '/';
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    static int stopped;
    if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    ssize_t r = real(fd, buf, n);
    const char *dir = getenv("ANNB_SHIM_STOP_DIR");
    if (r > 0 && dir && !stopped && in_dir(fd, dir)) {
        stopped = 1;
        raise(SIGSTOP);
    }
    return r;
}
