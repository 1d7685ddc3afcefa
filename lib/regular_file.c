/* regular_file.c - open a bundle (or a file to hash) without blocking. */
#include "regular_file.h"
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int annb_open_regular(int *fd, struct stat *st, const char *path, annb_error *err)
{
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0) return annb_error_set(err, ANNB_E_IO, "%s: %s", path, strerror(errno));
    int flags;
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(*fd);
        *fd = -1;
        return annb_error_set(err, ANNB_E_IO, "%s: not a regular file", path);
    }
    /* No effect on a regular file today; cleared so that later reads never
     * see EAGAIN should that change (e.g. mandatory locks). */
    if ((flags = fcntl(*fd, F_GETFL)) < 0 || fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return annb_error_set(err, ANNB_E_IO, "%s: fcntl: %s", path, strerror(e));
    }
    return ANNB_OK;
}
