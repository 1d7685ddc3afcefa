/* replace.h - how a new file replaces the target (SPEC 4.3), internal to
 * format/: writer.c writes the bytes into out->fd; replace.c decides what
 * may be replaced, creates the file and gives it its name. */
#ifndef ANNB_REPLACE_H
#define ANNB_REPLACE_H

#include "annb_format.h"

#include <limits.h>

typedef struct annbf_out {
    const char *path;        /* the target, as given */
    const annbf_commit_opts *opts;
    int dfd;                 /* the target's directory */
    int fd;                  /* the new file, write-only */
    int named;               /* 1: fallback, the file has a temporary name from the start */
    int slot;                /* its slot in the cleanup registry, or -1 */
    int published;           /* 1: renamed (or linked) over the target */
    char base[NAME_MAX + 1]; /* the target's last path component */
    char tmp[NAME_MAX + 1];  /* the temporary name in dfd, "" when none */
} annbf_out;

/* Checks the target again (annbf_output_check), opens its directory and
 * creates the new file there: unnamed (O_TMPFILE) where the file system
 * supports it, else under a temporary name registered for
 * annbf_temp_remove_all. On failure nothing is left and *o is closed. */
int annbf_out_open(annbf_out *o, const char *path, const annbf_commit_opts *opts,
                   annbf_error *err);

/* fsyncs the file, gives it the target's name and fsyncs the directory.
 * On failure the target is untouched, except when only the final fsync of
 * the directory failed (o->published is then 1). */
int annbf_out_publish(annbf_out *o, annbf_error *err);

/* Closes the descriptors; a file not published is removed (an unnamed one
 * vanishes with its descriptor). */
void annbf_out_close(annbf_out *o);

#endif /* ANNB_REPLACE_H */
