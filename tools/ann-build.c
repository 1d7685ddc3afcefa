/* ann-build - embeddings CSV (+ catalog) -> bundle. */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const prog = "ann-build";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ann-build ITEMS.csv [CATALOG] -o BUNDLE [options]\n"
            "\n"
            "Reads item embeddings (Spark `id,features` CSV with a JSON array per row, item2vec\n"
            "`word,vector`, two-tower `movie_id,movie_embedding` with \"0.1,0.2,...\" in a\n"
            "quoted field, the wide form `id,f0,f1,...`, or the same as TSV; JSON lines\n"
            "{\"id\": 1, \"vector\": [...]}; word2vec text (.vec); numpy .npy) and an optional\n"
            "MovieLens catalog (movies.dat latin-1 or movies.csv UTF-8), and writes one\n"
            "checksummed bundle.\n"
            "Any input file may be '-' (stdin, for one of them) and may be gzip- or\n"
            "zstd-compressed (told by its first bytes, read as a stream).\n"
            "\n"
            "  -o, --output BUNDLE   bundle to write: a new path or a regular file that is no\n"
            "                        input; written unnamed, fsynced, then put in place\n"
            "                        (never stdout: '-o -' is refused)\n"
            "  -m, --metric M        ip (default), cosine or l2\n"
            "      --drop-zero       cosine: leave vectors of zeros out (counted on stderr)\n"
            "                        instead of refusing the input\n"
            "  -i, --index S         flat (default, exact), auto (exact up to 32 MiB of\n"
            "                        vectors; above, builds graph and IVF and keeps the one\n"
            "                        reaching the target with the least modelled work, or\n"
            "                        exact when cheaper; compressed codes over --max-memory),\n"
            "                        ivf, graph (annb's graph; also hnsw), ivfpq, or a Faiss\n"
            "                        factory string such as 'IVF1024,Flat' or 'HNSW32'\n"
            "  -t, --threads N       threads for training and adding (default: all cores;\n"
            "                        Faiss's HNSW: 1 unless given, since more makes its\n"
            "                        bytes vary; annb's graph: the same bytes on any number)\n"
            "      --target-recall R recall@k the search parameters are tuned to (default 0.95);\n"
            "                        approximate indexes that cannot reach it fail the build\n"
            "                        (exit 6, nothing written)\n"
            "      --allow-low-recall  write the bundle anyway, with the best parameter found\n"
            "      --recall-k K[,K..] the k recall is reported for (the first; default 10); it\n"
            "                        is measured and tuned for these, 10 and 100\n"
            "      --tune-vectors F  query vectors to measure recall on (same forms as ITEMS),\n"
            "                        e.g. held-out users; default: --users, else items asked\n"
            "                        for similar items (which may not predict user queries)\n"
            "      --tune-queries N  questions it is measured on, at most (default 1000)\n"
            "      --max-memory SIZE for --index auto: RAM the index may take, e.g. 512M or\n"
            "                        8G; above it auto tries compressed codes (IVF-PQ, then\n"
            "                        IVF-SQ8) and falls back to exact search\n"
            "      --mips-reduction  Faiss's HNSW (HNSW32...) with --metric ip: search as L2\n"
            "                        over one extra dimension instead of inner product\n"
            "                        directly (usually worse: the recall measured at build\n"
            "                        tells); annb's graph ignores it\n"
            "      --id-column C     the ID column of ITEMS: a header name or a 1-based number\n"
            "                        (default: the one column named id, word, item_id,\n"
            "                        movie_id, user_id, itemId, movieId or userId)\n"
            "      --vector-column C the column holding the whole vector of ITEMS, as a JSON\n"
            "                        array or numbers separated by commas or spaces (default:\n"
            "                        the one named features, vector, embedding or *_embedding;\n"
            "                        none: the wide form, every other column one value)\n"
            "      --user-id-column C\n"
            "      --user-vector-column C\n"
            "                        the same for --users and --tune-vectors (default: the\n"
            "                        items' options, else detected)\n"
            "      --ids FILE.npy    ITEMS is a numpy .npy matrix (float32/float64, C order):\n"
            "                        its IDs, a .npy of int64 with one per row\n"
            "      --user-ids FILE.npy  the same for --users\n"
            "      --ids-from-rows   a .npy without an IDs file takes its row numbers 0..n-1\n"
            "                        as IDs (only when asked: they rarely are the real IDs)\n"
            "  -u, --users FILE      also store the users' vectors (same forms as ITEMS)\n"
            "      --string-ids      every ID is text, digits too (\"007\" stays \"007\"); without\n"
            "                        it, IDs are text when some ID is no integer (SKUs,\n"
            "                        \"tt0114709\", words), and answers give them back as text\n"
            "      --interactions F  also store who has seen what (ratings.dat, ratings.csv or\n"
            "                        a user,item CSV), for ann-query --exclude-seen; needs --users\n"
            "      --shard I/N       keep only the items of shard I of N (a fixed hash of the ID);\n"
            "                        ann-query merges the answers of several shard bundles\n"
            "      --expect-sha256 HEX\n"
            "                        keep the bundle only if its SHA-256 is HEX (a rebuild\n"
            "                        that must match a published bundle; hashed as written,\n"
            "                        before it is named): otherwise exit 1\n"
            "                        and leave BUNDLE as it was\n"
            "  -q, --quiet           no summary, no progress and none of Faiss's own messages\n"
            "                        on stderr (errors and warnings only; otherwise Faiss's\n"
            "                        lines are shown as 'ann-build: faiss: ...')\n"
            "  -v, --verbose         also a progress line per input read, as --progress\n"
            "      --progress        progress as plain lines on stderr: reading the inputs,\n"
            "                        training the index, adding rows, linking a graph,\n"
            "                        tuning, writing (about one a second, and one when an\n"
            "                        input or phase is done); when stderr is a terminal,\n"
            "                        a live line with rate and ETA is shown anyway\n"
            "  -h, --help            this help\n"
            "  -V, --version         library, format, Faiss and zstd versions\n"
            "\n"
            "Exit status: 0 ok, 1 malformed input, 2 usage, 3 I/O error, 5 internal error,\n"
            "6 target recall not reached (no bundle written).\n");
}

/* 64 hex digits, lowered into out. 0 on success. */
static int parse_sha256(char out[65], const char *s)
{
    size_t n = strlen(s);
    if (n != 64) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i])) return -1;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = '\0';
    return 0;
}

/* SIGINT, SIGTERM, SIGHUP: remove the library's named temporary file, if
 * any (annb_temp_files_remove), then die of the same signal, so the parent
 * sees what happened. SA_RESETHAND restores the default action on entry;
 * the re-raised signal is blocked until the handler returns. */
static void on_fatal_signal(int sig)
{
    annb_temp_files_remove();
    raise(sig);
}

/* A signal ignored when the tool started (nohup, a background job of a
 * non-interactive shell) stays ignored. */
static void install_cleanup(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* The progress of reading and of the build's later phases (annb.h,
 * annb_progress): a live line (carriage return, rewritten at most five
 * times a second, after the first half second of a file or phase) when
 * stderr is a terminal; plain lines, about one a second and one when a
 * file or phase is done, with --progress. */
typedef struct progress_line {
    int fd;                /* where the lines go: the real stderr */
    int tty, plain;
    int open;              /* a live line is on the terminal, not ended */
    const char *path;      /* the file being read (NULL: a phase of the build) */
    const char *phase;
    double start, last;    /* when it started, when the last line was shown */
} progress_line;

static double now(void);

static void megabytes(char *out, size_t size, uint64_t bytes)
{
    if (bytes < 1000000) snprintf(out, size, "%.1f kB", (double)bytes / 1e3);
    else snprintf(out, size, "%.1f MB", (double)bytes / 1e6);
}

/* A file being read: bytes, MB/s, and the ETA when its size is known. */
static void reading_line(char *line, size_t size, const annb_progress *p, double elapsed)
{
    char done[32], total[32];
    megabytes(done, sizeof done, p->done);
    double rate = elapsed > 0 ? (double)p->done / elapsed / 1e6 : 0;
    const char *name = strcmp(p->path, "-") == 0 ? "stdin" : p->path;
    if (p->finished) {
        snprintf(line, size, "read %s from %s: %s in %.1f s (%.1f MB/s)", p->phase, name, done,
                 elapsed, rate);
    } else if (p->total) {
        megabytes(total, sizeof total, p->total);
        double left = rate > 0 ? (double)(p->total - (p->done < p->total ? p->done : p->total)) /
                                     1e6 / rate
                               : 0;
        snprintf(line, size, "reading %s from %s: %s of %s (%.0f%%), %.1f MB/s, ETA %.0f s",
                 p->phase, name, done, total, 100.0 * (double)p->done / (double)p->total, rate,
                 left);
    } else {
        snprintf(line, size, "reading %s from %s: %s, %.1f MB/s", p->phase, name, done, rate);
    }
}

/* What a phase of the build is called while it runs and once it is done;
 * a phase not listed (a newer library's) is shown by its own name. */
static const struct {
    const char *phase, *doing, *done;
} phase_names[] = {
    {"train", "training the index", "trained the index"},
    {"add", "adding rows to the index", "added to the index"},
    {"graph", "linking the graph", "linked the graph"},
    {"tune", "tuning the search parameter", "tuned the search parameter"},
    {"write", "writing the bundle", "wrote the bundle"},
};

/* n of a unit: bytes in kB or MB, anything else as a count and the unit's
 * name ("rows", "iterations", "candidates", or one this tool does not know). */
static void amount(char *out, size_t size, uint64_t n, const char *unit)
{
    size_t len = strlen(unit);
    if (strcmp(unit, "bytes") == 0) megabytes(out, size, n);
    else if (n == 1 && len > 1 && unit[len - 1] == 's') /* 1 row, 1 candidate */
        snprintf(out, size, "1 %.*s", (int)(len - 1), unit);
    else snprintf(out, size, "%llu %s", (unsigned long long)n, unit);
}

static void rate_of(char *out, size_t size, double per_s, const char *unit)
{
    if (strcmp(unit, "bytes") == 0) snprintf(out, size, "%.1f MB/s", per_s / 1e6);
    else snprintf(out, size, "%.*f %s/s", per_s < 10 ? 1 : 0, per_s, unit);
}

/* A phase of the build: its count, the rate, and the share and ETA when
 * the total is known (tune's is not until it is done). */
static void phase_line(char *line, size_t size, const annb_progress *p, double elapsed)
{
    const char *unit = p->unit ? p->unit : "steps", *doing = p->phase, *done_name = NULL;
    for (size_t i = 0; i < sizeof phase_names / sizeof phase_names[0]; i++)
        if (strcmp(p->phase, phase_names[i].phase) == 0) {
            doing = phase_names[i].doing;
            done_name = phase_names[i].done;
        }
    double per_s = elapsed > 0 ? (double)p->done / elapsed : 0;
    char done[48], total[48], rate[48];
    amount(done, sizeof done, p->done, unit);
    rate_of(rate, sizeof rate, per_s, unit);
    if (p->finished && !p->done) { /* nothing counted (a Faiss training annb cannot see into) */
        if (done_name) snprintf(line, size, "%s in %.1f s", done_name, elapsed);
        else snprintf(line, size, "%s done in %.1f s", doing, elapsed);
    } else if (p->finished) {
        if (done_name) snprintf(line, size, "%s: %s in %.1f s (%s)", done_name, done, elapsed, rate);
        else snprintf(line, size, "%s done: %s in %.1f s (%s)", doing, done, elapsed, rate);
    } else if (p->total) {
        amount(total, sizeof total, p->total, unit);
        if (strcmp(unit, "bytes") != 0) /* "5 of 20 iterations" */
            snprintf(done, sizeof done, "%llu", (unsigned long long)p->done);
        uint64_t left = p->total - (p->done < p->total ? p->done : p->total);
        snprintf(line, size, "%s: %s of %s (%.0f%%), %s, ETA %.0f s", doing, done, total,
                 100.0 * (double)p->done / (double)p->total, rate,
                 per_s > 0 ? (double)left / per_s : 0.0);
    } else {
        snprintf(line, size, "%s: %s, %s", doing, done, rate);
    }
}

static void on_progress(void *ctx, const annb_progress *p)
{
    progress_line *pl = ctx;
    double t = now();
    /* A new file or phase; or the same phase again (auto's next index),
     * which starts with done 0. */
    if (pl->path != p->path || !pl->phase || strcmp(pl->phase, p->phase) != 0 ||
        (!p->path && p->done == 0 && !p->finished)) {
        pl->path = p->path;
        pl->phase = p->phase;
        pl->start = pl->last = t;
    }
    double elapsed = t - pl->start;
    int live = pl->tty && !pl->plain;
    if (!p->finished && (t - pl->last < (live ? 0.2 : 1.0) || (live && elapsed < 0.5))) return;
    if (p->finished && live && !pl->open) return; /* done too fast to need a line */
    pl->last = t;
    char line[320];
    if (p->path) reading_line(line, sizeof line, p, elapsed);
    else phase_line(line, sizeof line, p, elapsed);
    if (live) {
        dprintf(pl->fd, "\r%s: %s\033[K%s", prog, line, p->finished ? "\n" : "");
        pl->open = !p->finished;
    } else {
        dprintf(pl->fd, "%s: %s\n", prog, line);
    }
}

/* Faiss writes some warnings itself, on stderr ("WARNING clustering 1000
 * points to 256 centroids: ..."). While the library builds, fd 2 is a pipe
 * whose lines a thread writes to the real stderr as "ann-build: faiss:
 * ...", or drops with -q. */
typedef struct faiss_relay {
    int saved; /* the real stderr; -1: not relaying */
    int read_end;
    int quiet;
    pthread_t thread;
} faiss_relay;

static void *relay_lines(void *arg)
{
    faiss_relay *r = arg;
    FILE *in = fdopen(r->read_end, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (!in) {
        close(r->read_end);
        return NULL;
    }
    while ((n = getline(&line, &cap, in)) > 0) {
        if (r->quiet) continue;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        for (ssize_t i = 0; i < n; i++) /* no control bytes to the terminal */
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) line[i] = '?';
        dprintf(r->saved, "%s: faiss: %.*s\n", prog, (int)n, line);
    }
    free(line);
    fclose(in);
    return NULL;
}

static void relay_start(faiss_relay *r, int quiet)
{
    int fds[2];
    r->saved = -1;
    r->quiet = quiet;
    fflush(stderr);
    if (pipe(fds) != 0) return;
    int saved = dup(STDERR_FILENO);
    if (saved < 0 || dup2(fds[1], STDERR_FILENO) < 0) {
        if (saved >= 0) close(saved);
        close(fds[0]);
        close(fds[1]);
        return;
    }
    close(fds[1]);
    fcntl(saved, F_SETFD, FD_CLOEXEC);
    r->read_end = fds[0];
    r->saved = saved;
    /* the thread takes no signals: the cleanup handler runs on the main one */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int failed = pthread_create(&r->thread, NULL, relay_lines, r) != 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (failed) { /* give stderr back */
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fds[0]);
        r->saved = -1;
    }
}

static void relay_stop(faiss_relay *r)
{
    if (r->saved < 0) return;
    fflush(stderr);
    dup2(r->saved, STDERR_FILENO); /* the pipe's last writer goes: the thread sees its end */
    pthread_join(r->thread, NULL);
    close(r->saved);
    r->saved = -1;
}

/* "-" is stdin, as the library reads it. */
static const char *input_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "stdin" : path;
}

/* A catalog that knows fewer than half of the items is most likely the
 * wrong one (another MovieLens version, another ID space): said even with
 * -q, since the bundle is built anyway. */
static void warn_catalog(const char *catalog, const annb_build_report *rep)
{
    if (!catalog || rep->items == 0) return;
    uint64_t matched = rep->items - rep->items_without_catalog;
    if (matched * 2 >= rep->items) return;
    cli_warn(prog, "warning: catalog %s has titles for only %llu of the %llu items (%.0f%%; it "
             "lists %llu entries): is it the catalog of these embeddings (the same dataset and "
             "version, the same IDs)?",
             input_name(catalog), (unsigned long long)matched, (unsigned long long)rep->items,
             100.0 * (double)matched / (double)rep->items,
             (unsigned long long)rep->catalog_entries);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --recall-k K[,K...]: the first is the k reported (opts->recall_k), the
 * rest are measured too. Returns 0, or -1 for a malformed list. */
static int parse_recall_ks(annb_build_opts *opts, uint32_t ks[ANNB_RECALL_MAX_K], const char *s)
{
    size_t n = 0;
    for (const char *p = s;; p++) {
        char *end;
        errno = 0;
        unsigned long v = *p >= '0' && *p <= '9' ? strtoul(p, &end, 10) : 0;
        if (errno || v < 1 || v > ANNB_SERVE_MAX_K || n == ANNB_RECALL_MAX_K ||
            (*end && *end != ','))
            return -1;
        ks[n++] = (uint32_t)v;
        if (!*end) break;
        p = end;
    }
    opts->recall_k = ks[0];
    opts->recall_ks = ks + 1;
    opts->recall_k_count = n - 1;
    return 0;
}

/* What was measured, one line per k, and what the user must know: a
 * target missed (only with --allow-low-recall: otherwise the build failed)
 * or a recall measured on item questions alone. */
static void print_recall(const annb_build_report *rep)
{
    const annb_recall_info *r = &rep->recall;
    if (!r->measured) return;
    for (uint32_t i = 0; i < rep->recall_count; i++) {
        const annb_recall_info *x = &rep->recalls[i];
        char param[48] = "";
        if (x->nprobe || x->ef_search)
            snprintf(param, sizeof param, " at %s %u", x->nprobe ? "nprobe" : "efSearch",
                     x->nprobe ? x->nprobe : x->ef_search);
        cli_warn(prog, "recall@%u %.4f%s against exact search, on %u %s questions (target "
                 "%g%s)%s", x->k, x->recall, param, x->queries, cli_questions(x->questions),
                 x->target,
                 x->recall < x->target ? ", NOT reached" : "",
                 x->k == r->k ? "; the k reported" : "");
    }
    if (r->rerank)
        cli_warn(prog, "compressed codes: %u x k candidates are re-ranked by their exact score",
                 r->rerank);
    if (!rep->recall_reached)
        cli_warn(prog, "warning: the bundle stores a recall below the target "
                 "(--allow-low-recall): the best this index reaches");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"metric", required_argument, NULL, 'm'},
        {"index", required_argument, NULL, 'i'},  {"threads", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {"users", required_argument, NULL, 'u'},
        {"interactions", required_argument, NULL, 'x'},
        {"shard", required_argument, NULL, 's'},  {"expect-sha256", required_argument, NULL, 'e'},
        {"target-recall", required_argument, NULL, 'R'}, {"recall-k", required_argument, NULL, 'K'},
        {"tune-queries", required_argument, NULL, 'Q'}, {"max-memory", required_argument, NULL, 'M'},
        {"mips-reduction", no_argument, NULL, 'N'},
        {"tune-vectors", required_argument, NULL, 'T'},
        {"allow-low-recall", no_argument, NULL, 'L'},
        {"id-column", required_argument, NULL, 'I'},
        {"vector-column", required_argument, NULL, 'C'},
        {"user-id-column", required_argument, NULL, 'J'},
        {"user-vector-column", required_argument, NULL, 'D'},
        {"ids", required_argument, NULL, 'd'},
        {"user-ids", required_argument, NULL, 'U'},
        {"ids-from-rows", no_argument, NULL, 'r'},
        {"string-ids", no_argument, NULL, 'S'},
        {"drop-zero", no_argument, NULL, 'z'},
        {"verbose", no_argument, NULL, 'v'},
        {"progress", no_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    annb_build_opts opts = ANNB_BUILD_OPTS_INIT;
    const char *output = NULL;
    char expect[65] = "";
    uint32_t recall_ks[ANNB_RECALL_MAX_K];
    int quiet = 0, verbose = 0, plain_progress = 0, c;
    int64_t threads;
    opterr = 0; /* cli_bad_option reports */
    while ((c = getopt_long(argc, argv, "o:m:i:t:u:qvhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'm':
            if (annb_metric_parse(&opts.metric, optarg) != ANNB_OK) {
                cli_warn(prog, "unknown metric '%s' (expected ip, cosine or l2)", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'i': opts.index = optarg; break;
        case 't':
            if (cli_parse_i64(optarg, &threads) || threads < 1 || threads > 1024) {
                cli_warn(prog, "--threads expects a number from 1 to 1024, not '%s'", optarg);
                return EXIT_USAGE;
            }
            opts.threads = (int)threads;
            break;
        case 'u': opts.users_path = optarg; break;
        case 'x': opts.interactions_path = optarg; break;
        case 's': {
            unsigned i, n;
            char end;
            if (sscanf(optarg, "%u/%u%c", &i, &n, &end) != 2 || n < 1 || i >= n) {
                cli_warn(prog, "--shard expects I/N with 0 <= I < N, not '%s'", optarg);
                return EXIT_USAGE;
            }
            opts.shard_index = i;
            opts.shard_count = n;
            break;
        }
        case 'e':
            if (parse_sha256(expect, optarg)) {
                cli_warn(prog, "--expect-sha256 expects 64 hex digits, not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'R': {
            char *end;
            errno = 0;
            opts.target_recall = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(opts.target_recall > 0 && opts.target_recall <= 1)) {
                cli_warn(prog, "--target-recall expects a number above 0 and at most 1, not '%s'",
                         optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case 'K':
            if (parse_recall_ks(&opts, recall_ks, optarg)) {
                cli_warn(prog, "--recall-k expects up to %u numbers from 1 to %u separated by "
                         "commas, not '%s'", ANNB_RECALL_MAX_K, ANNB_SERVE_MAX_K, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'T': opts.tune_vectors_path = optarg; break;
        case 'L': opts.allow_low_recall = 1; break;
        case 'I': opts.id_column = optarg; break;
        case 'C': opts.vector_column = optarg; break;
        case 'J': opts.user_id_column = optarg; break;
        case 'D': opts.user_vector_column = optarg; break;
        case 'd': opts.ids_path = optarg; break;
        case 'U': opts.user_ids_path = optarg; break;
        case 'r': opts.ids_from_rows = 1; break;
        case 'S': opts.string_ids = 1; break;
        case 'z': opts.drop_zero = 1; break;
        case 'v': verbose = 1; break;
        case 'P': plain_progress = 1; break;
        case 'Q': {
            int64_t v;
            if (cli_parse_i64(optarg, &v) || v < 1 || v > 100000) {
                cli_warn(prog, "--tune-queries expects a number from 1 to 100000, not '%s'", optarg);
                return EXIT_USAGE;
            }
            opts.tune_queries = (uint32_t)v;
            break;
        }
        case 'M':
            if (cli_parse_size(optarg, &opts.max_memory) || opts.max_memory == 0) {
                cli_warn(prog, "--max-memory expects a size such as 512M or 8G, not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'N': opts.mips_reduction = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("%s\n", annb_version()); return EXIT_OK;
        default: return cli_bad_option(prog, argv);
        }
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2 || !output) {
        cli_warn(prog, nargs < 1 ? "missing ITEMS file" : nargs > 2 ? "too many arguments"
                                                                     : "missing -o BUNDLE");
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *items = argv[optind], *catalog = nargs == 2 ? argv[optind + 1] : NULL;

    annb_build_report rep;
    annb_error err = {0};
    double t0 = now();
    if (*expect) opts.expect_sha256 = expect;
    install_cleanup();
    progress_line pl = {.tty = isatty(STDERR_FILENO), .plain = plain_progress || verbose};
    faiss_relay relay;
    relay_start(&relay, quiet);
    pl.fd = relay.saved >= 0 ? relay.saved : STDERR_FILENO;
    if (!quiet && (pl.tty || pl.plain)) {
        opts.progress = on_progress;
        opts.progress_ctx = &pl;
    }
    int rc = annb_build(&rep, items, catalog, output, &opts, &err);
    if (pl.open) dprintf(pl.fd, "\n"); /* a live line cut short by a failure */
    relay_stop(&relay);
    if (rc) return cli_fail(prog, rc, &err);
    if (rep.recall.measured && strcmp(rep.recall.questions, "items") == 0)
        cli_warn(prog, CLI_ITEM_RECALL_WARNING);
    warn_catalog(catalog, &rep);
    if (!quiet) {
        cli_warn(prog, "%llu vectors of dimension %u from %s, metric %s, index %s",
                 (unsigned long long)rep.items, rep.dimension, input_name(items),
                 annb_metric_name(opts.metric), rep.index);
        if (*rep.auto_note)
            cli_warn(prog, "auto: %s", rep.auto_note);
        print_recall(&rep);
        if (opts.shard_count > 1)
            cli_warn(prog, "shard %u/%u: %llu items here, %llu in other shards", opts.shard_index,
                     opts.shard_count, (unsigned long long)rep.items,
                     (unsigned long long)rep.items_in_other_shards);
        if (opts.users_path)
            cli_warn(prog, "%llu user vectors from %s", (unsigned long long)rep.users,
                     input_name(opts.users_path));
        if (rep.items_dropped_zero)
            cli_warn(prog, "left out %llu item vector%s of zeros (--drop-zero)",
                     (unsigned long long)rep.items_dropped_zero,
                     rep.items_dropped_zero == 1 ? "" : "s");
        if (rep.users_dropped_zero)
            cli_warn(prog, "left out %llu user vector%s of zeros (--drop-zero)",
                     (unsigned long long)rep.users_dropped_zero,
                     rep.users_dropped_zero == 1 ? "" : "s");
        if (opts.interactions_path)
            cli_warn(prog, "interactions %s: %llu stored, %llu skipped (user or item not in the "
                     "bundle)", input_name(opts.interactions_path), (unsigned long long)rep.interactions,
                     (unsigned long long)rep.interactions_skipped);
        if (catalog)
            cli_warn(prog, "catalog %s: %llu entries; %llu items without a catalog entry, "
                     "%llu catalog entries without a vector",
                     input_name(catalog), (unsigned long long)rep.catalog_entries,
                     (unsigned long long)rep.items_without_catalog,
                     (unsigned long long)rep.catalog_without_item);
        if (rep.single_threaded && opts.threads != 1)
            cli_warn(prog, "note: the %s index was built with one thread, so that the bundle "
                     "is the same on every run (--threads N to use more)", rep.index);
        cli_warn(prog, "wrote %s (%llu bytes) in %.3f s%s", output,
                 (unsigned long long)rep.bundle_bytes, now() - t0,
                 *expect ? ", SHA-256 as expected" : "");
    }
    return EXIT_OK;
}
