/* ann-query - top-k answers from a bundle (or shard bundles): one question,
 * a batch, every user, or JSON requests on stdin (docs/cli.md). The parts
 * are in tools/query/: options.c (the command line), modes.c (each run, as
 * annb_question for the library's annb_ask), print.c (the output formats). */
#define _POSIX_C_SOURCE 200809L
#include "query/query.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *const query_prog = "ann-query";

int main(int argc, char **argv)
{
    options o = {.k = 10};
    int status = query_parse_args(&o, argc, argv);
    if (status) {
        query_options_release(&o);
        return status < 0 ? EXIT_OK : status; /* -1: --help or --version done */
    }
    const char *bad = query_check_combination(&o);
    if (bad) {
        cli_warn(query_prog, "%s", bad);
        cli_warn(query_prog, "try '%s --help'", query_prog);
        query_options_release(&o);
        return EXIT_USAGE;
    }
    /* Batches (--batch, --batch-users, --all-users) keep every core busy
     * unless told otherwise: graph and IVF bundles share the questions out. */
    if (!o.threads && !SINGLE(o.mode) && o.mode != M_SERVE) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = cores > 1 ? (cores < 1024 ? cores : 1024) : 1;
    }
    ctx c = {.o = &o};
    int rc = query_setup(&c);
    if (rc == ANNB_OK) {
        if (SINGLE(o.mode)) rc = run_single(&c);
        else if (o.mode == M_ALL_USERS) rc = run_all_users(&c);
        else if (o.mode == M_SERVE) rc = run_serve(&c);
        else rc = run_batch(&c);
    }
    if (rc == ANNB_OK && fflush(stdout) != 0) {
        c.err.code = rc = ANNB_E_IO;
        snprintf(c.err.message, sizeof c.err.message, "writing the results failed");
    }
    status = rc == ANNB_OK ? EXIT_OK : cli_fail(query_prog, rc, &c.err);
    query_release(&c);
    query_options_release(&o);
    return status;
}
