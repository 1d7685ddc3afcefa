/* regular_file.h - opening a file that must be a regular file (internal to
 * libannb): bundles and files to hash, never inputs (a CSV may be a pipe). */
#ifndef ANNB_REGULAR_FILE_H
#define ANNB_REGULAR_FILE_H

#include "annb.h"

#include <sys/stat.h>

/* Opens path read-only without blocking (a FIFO without a writer would
 * block open(2) forever; a device's open may too), refuses anything but a
 * regular file, then clears O_NONBLOCK. *fd (close it) and *st on success;
 * ANNB_E_IO "PATH: reason" otherwise, with nothing left open. */
int annb_open_regular(int *fd, struct stat *st, const char *path, annb_error *err);

#endif /* ANNB_REGULAR_FILE_H */
