/* replace.c - what a bundle may replace, and how it replaces it (SPEC 4.3).
 *
 * The new file is made unnamed (O_TMPFILE) in the target's directory and
 * gets a name only when it is complete and fsynced, so a process killed
 * while writing, even by SIGKILL, leaves nothing: an unnamed file vanishes
 * with its last descriptor. Where the file system has no O_TMPFILE, the
 * file has a temporary name from the start, registered in a small table
 * that annbf_temp_remove_all empties from a signal handler. */
#define _GNU_SOURCE /* O_TMPFILE, AT_EMPTY_PATH, linkat */
#include "replace.h"
#include "layout.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEMP_SUFFIX ".tmp.XXXXXX" /* what docs and tests look for: NAME.tmp.<6 characters> */
#define TEMP_TRIES 100            /* names tried before giving up (EEXIST each time) */

/* ---- the cleanup registry ------------------------------------------------
 * The one piece of process-wide state in annb, because the thing it serves
 * is process-wide: a signal handler can reach nothing else, and SIGINT or
 * SIGTERM ends every thread's build at once. Fixed size, no allocation, no
 * locks: a slot goes FREE -> CLAIMED (being filled) -> READY (name valid)
 * -> FREE, by lock-free atomics, which C11 allows in a signal handler. */
enum { SLOT_FREE, SLOT_CLAIMED, SLOT_READY };
#define TEMP_SLOTS 16 /* concurrent named temporaries per process; a 17th is not registered */

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the registry needs lock-free atomics");

static struct temp_slot {
    atomic_int state;
    int dfd;
    char name[NAME_MAX + 1];
} temp_slots[TEMP_SLOTS];

/* Registers dfd/name for removal by a signal handler: the slot, or -1
 * when all are taken (the name is then not removed on a signal). */
static int temp_register(int dfd, const char *name)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&temp_slots[i].state, &expected, SLOT_CLAIMED))
            continue;
        temp_slots[i].dfd = dfd;
        snprintf(temp_slots[i].name, sizeof temp_slots[i].name, "%s", name);
        atomic_store(&temp_slots[i].state, SLOT_READY);
        return i;
    }
    return -1;
}

static void temp_unregister(int slot)
{
    if (slot >= 0) atomic_store(&temp_slots[slot].state, SLOT_FREE);
}

void annbf_temp_remove_all(void)
{
    /* Only async-signal-safe calls: atomic loads and unlinkat. A slot freed
     * and refilled while this reads it could give a torn name, which names
     * no file (every temporary name ends in fresh random characters). */
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temp_slots[i].state) == SLOT_READY)
            (void)unlinkat(temp_slots[i].dfd, temp_slots[i].name, 0);
}

/* ---- what may be replaced ------------------------------------------------ */

static const char *type_name(mode_t m)
{
    return S_ISDIR(m) ? "directory" : S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device"
         : S_ISFIFO(m) ? "FIFO" : S_ISSOCK(m) ? "socket" : "special file";
}

/* Splits path into its directory (".", "/" or the part before the last
 * slash) and its last component. -1 with errno set when either is too long
 * or there is no last component. */
static int split_path(char dir[PATH_MAX], char base[NAME_MAX + 1], const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    size_t dlen = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    if (!*b) {
        errno = EISDIR;
        return -1;
    }
    if (strlen(b) > NAME_MAX || dlen >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (slash) memcpy(dir, path, dlen);
    else dir[0] = '.';
    dir[dlen] = '\0';
    strcpy(base, b);
    return 0;
}

int annbf_output_check(const char *path, const char *const *inputs, size_t input_count,
                       annbf_error *err)
{
    char dir[PATH_MAX], base[NAME_MAX + 1];
    struct stat st, in;
    if (!path || !*path) return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "empty output path");
    if (split_path(dir, base, path))
        return annbf_fail(err, errno == EISDIR ? ANNBF_E_INVALID : ANNBF_E_IO, UINT64_MAX,
                          errno == EISDIR ? "ends in '/': expected the path of a file"
                                          : "%s", strerror(errno));
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "%s", strerror(errno));
        /* Nothing there yet: only the directory has to be (checked now,
         * not after a build of many minutes). */
        if (stat(dir, &st) != 0)
            return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "its directory %s: %s", dir,
                              strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "%s is not a directory", dir);
        return ANNBF_OK;
    }
    /* A link is neither replaced (it would silently become a regular file,
     * breaking a `current -> v42` scheme) nor written through (the bundle it
     * names, perhaps published and hashed, would change under every other
     * link to it): the caller names the file itself. */
    if (S_ISLNK(st.st_mode))
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "is a symbolic link: a bundle replaces "
                          "only a regular file (name the file the link points to, or remove it)");
    if (!S_ISREG(st.st_mode))
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "is a %s, not a regular file: a bundle "
                          "replaces only a regular file", type_name(st.st_mode));
    for (size_t i = 0; i < input_count; i++)
        if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == st.st_dev &&
            in.st_ino == st.st_ino)
            return annbf_fail(err, ANNBF_E_INVALID, UINT64_MAX, "is the same file as the input "
                              "%s (same device and inode): the build would replace its own "
                              "input", inputs[i]);
    return ANNBF_OK;
}

/* ---- creating and naming the file --------------------------------------- */

/* base + ".tmp." + 6 random characters into out. -1 (ENAMETOOLONG) when
 * that is longer than a name may be. */
static int temp_name(char out[NAME_MAX + 1], const char *base)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    if (strlen(base) + sizeof TEMP_SUFFIX - 1 > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* Only uniqueness matters (EEXIST is retried): the clock will do. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        for (int i = 0; i < 6; i++) r[i] = (unsigned char)(x >> (8 * i));
    }
    size_t n = strlen(base);
    memcpy(out, base, n);
    memcpy(out + n, ".tmp.", 5);
    for (int i = 0; i < 6; i++) out[n + 5 + i] = chars[r[i] % (sizeof chars - 1)];
    out[n + 11] = '\0';
    return 0;
}

/* The fallback: a new file under a fresh temporary name, registered before
 * it exists so that no moment has it on disk and unknown to the registry. */
static int create_named(annbf_out *o, annbf_error *err)
{
    for (int tries = 0; tries < TEMP_TRIES; tries++) {
        if (temp_name(o->tmp, o->base)) break;
        o->slot = temp_register(o->dfd, o->tmp);
        o->fd = openat(o->dfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (o->fd >= 0) {
            o->named = 1;
            return ANNBF_OK;
        }
        int e = errno;
        temp_unregister(o->slot);
        o->slot = -1;
        errno = e;
        if (e != EEXIST) break;
    }
    int e = errno;
    o->tmp[0] = '\0';
    return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "cannot create a temporary file beside it: %s",
                      strerror(e));
}

int annbf_out_open(annbf_out *o, const char *path, const annbf_commit_opts *opts,
                   annbf_error *err)
{
    char dir[PATH_MAX];
    memset(o, 0, sizeof *o);
    o->dfd = o->fd = o->slot = -1;
    o->path = path;
    o->opts = opts;
    int rc = annbf_output_check(path, opts->inputs, opts->input_count, err);
    if (rc) return rc;
    if (split_path(dir, o->base, path)) /* cannot fail after the check; kept for the reader */
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "%s", strerror(errno));
    o->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o->dfd < 0)
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "cannot open its directory %s: %s", dir,
                          strerror(errno));
    if (!opts->named_temp) {
        o->fd = openat(o->dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        /* EISDIR: a kernel without O_TMPFILE (it contains O_DIRECTORY);
         * EOPNOTSUPP, EINVAL: a file system without it. Anything else is
         * an error the fallback would meet too. */
        if (o->fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
            rc = annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "cannot create the new file in %s: %s",
                            dir, strerror(errno));
            annbf_out_close(o);
            return rc;
        }
    }
    if (o->fd < 0 && (rc = create_named(o, err))) {
        annbf_out_close(o);
        return rc;
    }
    /* 0644, not the umask: reading the umask is racy in a threaded process */
    if (fchmod(o->fd, 0644)) {
        rc = annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "chmod of the new file: %s", strerror(errno));
        annbf_out_close(o);
    }
    return rc;
}

/* Links the unnamed file as name in its directory. AT_EMPTY_PATH needs
 * CAP_DAC_READ_SEARCH (ENOENT without it); /proc/self/fd does not. */
static int link_fd(const annbf_out *o, const char *name)
{
    if (linkat(o->fd, "", o->dfd, name, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM && errno != EINVAL) return -1;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", o->fd);
    return linkat(AT_FDCWD, proc, o->dfd, name, AT_SYMLINK_FOLLOW);
}

/* Names the unnamed file. Where no target exists it is linked straight to
 * the target's name: atomic, and no other name ever exists. Over an
 * existing target Linux offers no atomic "link and replace", so the file is
 * linked under a temporary name and renamed over the target: between the
 * two calls a complete, fsynced bundle exists under NAME.tmp.XXXXXX. That
 * name is registered, so a SIGINT, SIGTERM or SIGHUP handled by
 * annbf_temp_remove_all removes it; those signals are blocked in this
 * thread for the two calls. Only a SIGKILL in that window (or such a signal
 * left at its default action and delivered to another thread) leaves it. */
static int link_unnamed(annbf_out *o, annbf_error *err)
{
    if (link_fd(o, o->base) == 0) return ANNBF_OK;
    if (errno != EEXIST)
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "cannot link the new file: %s",
                          strerror(errno));
    int linked = 0, e = 0;
    for (int tries = 0; tries < TEMP_TRIES && !linked; tries++) {
        if (temp_name(o->tmp, o->base)) {
            e = errno;
            break;
        }
        o->slot = temp_register(o->dfd, o->tmp);
        linked = link_fd(o, o->tmp) == 0;
        e = errno;
        if (!linked) {
            temp_unregister(o->slot);
            o->slot = -1;
            if (e != EEXIST) break;
        }
    }
    if (!linked) {
        o->tmp[0] = '\0';
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "cannot link the new file under a "
                          "temporary name: %s", strerror(e));
    }
    int rc = ANNBF_OK;
    if (renameat(o->dfd, o->tmp, o->dfd, o->base)) {
        rc = annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "cannot rename %s over it: %s", o->tmp,
                        strerror(errno));
        unlinkat(o->dfd, o->tmp, 0);
    }
    temp_unregister(o->slot);
    o->slot = -1;
    o->tmp[0] = '\0';
    return rc;
}

int annbf_out_publish(annbf_out *o, annbf_error *err)
{
    if (fsync(o->fd))
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "fsync of the new file: %s",
                          strerror(errno));
    /* Checked again: the target may have changed during a long build. */
    int rc = annbf_output_check(o->path, o->opts->inputs, o->opts->input_count, err);
    if (rc) return rc;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    if (!o->named) {
        rc = link_unnamed(o, err);
    } else if (renameat(o->dfd, o->tmp, o->dfd, o->base)) {
        rc = annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "cannot rename %s over it: %s", o->tmp,
                        strerror(errno));
    } else {
        temp_unregister(o->slot);
        o->slot = -1;
        o->tmp[0] = '\0';
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) return rc;
    o->published = 1;
    if (fsync(o->dfd)) /* the file is complete and in place; only durability is in doubt */
        return annbf_fail(err, ANNBF_E_IO, UINT64_MAX, "fsync of its directory: %s",
                          strerror(errno));
    return ANNBF_OK;
}

void annbf_out_close(annbf_out *o)
{
    if (o->named && !o->published && o->tmp[0]) unlinkat(o->dfd, o->tmp, 0);
    temp_unregister(o->slot);
    o->slot = -1;
    if (o->fd >= 0) close(o->fd);
    if (o->dfd >= 0) close(o->dfd);
    o->fd = o->dfd = -1;
}
