/* ann-serve - answers the JSON protocol's questions over HTTP from bundles it
 * swaps when they are republished (docs/serve.md). This file: options,
 * signals, start and drain; tools/serve/ holds the parts. */
#define _GNU_SOURCE
#include "annb.h"
#include "cli.h"
#include "serve/serve.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const prog = SERVE_PROG;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ann-serve BUNDLE... [--listen ADDR:PORT] [--threads N] [options]\n"
            "\n"
            "Answers the JSON protocol (docs/protocol.md) over HTTP/1.1: POST /v1/query (a\n"
            "request or an array of them), GET /v1/users/ID/items, /v1/items/ID/similar,\n"
            "/v1/users/ID/similar, /v1/items/ID/users; GET /healthz, /readyz, /metrics\n"
            "(Prometheus); POST /admin/reload. Several BUNDLEs are shards of one catalog.\n"
            "An ID is a string ID where the bundle has them, else a decimal integer; in a\n"
            "path it is percent-encoded (a string ID holding '/' as %%2F).\n"
            "A BUNDLE renamed over (inotify), SIGHUP or POST /admin/reload: the new files are\n"
            "opened and verified in the background and swapped in without dropping a request;\n"
            "a file that fails, or changes dimension or metric, is refused and counted.\n"
            "  --listen ADDR:PORT     numeric address and port (default 127.0.0.1:8080;\n"
            "                         [::1]:8080 for IPv6; port 0: any free port). The\n"
            "                         first line on stdout is `listening on ADDR:PORT`\n"
            "  --threads N            threads answering questions (default: the cores)\n"
            "  --dispatch MODE        queue (default): one HTTP thread hands questions to\n"
            "                         the workers through a bounded queue, for 503 on\n"
            "                         overload, 504 past --timeout-ms, and health checks\n"
            "                         that never wait behind questions; inline: each HTTP\n"
            "                         thread answers its own requests, the fastest, with\n"
            "                         no queue, 503 or timeout (queue in a load balancer)\n"
            "  --max-request-bytes N  largest request body (default 1048576; 413 past it)\n"
            "  --max-k N              largest k, and of a batch's k added up (default and\n"
            "                         at most 10000; 400 past it)\n"
            "  --queue N              --dispatch queue: questions that may wait for a busy\n"
            "                         worker (default 1024; 0: none); 503 with Retry-After\n"
            "                         past it\n"
            "  --timeout-ms N         --dispatch queue: longest wait for a worker (default\n"
            "                         1000; 0: no limit); 504 past it\n"
            "  --drain-ms N           on SIGTERM/SIGINT: /readyz 503 for N ms while every\n"
            "                         request is still answered (Connection: close), then\n"
            "                         stop listening and wait at most N ms more for\n"
            "                         requests begun (default 10000)\n"
            "  --recall-sample F      fraction of questions re-answered exactly to measure\n"
            "                         live recall (default 0.01; 0: off)\n"
            "  --access-log FILE      a line per request (method, path, status, ms); -: stdout\n"
            "  --admin-any-peer       POST /admin/reload from any address (default: loopback)\n"
            "  -q, --quiet            errors only on stderr (no swap lines)\n"
            "  -v, --verbose          also reloads, and libmicrohttpd's messages\n"
            "  -h, --help             this help\n"
            "  -V, --version          library, format, Faiss and zstd versions\n"
            "\n"
            "Exit status: 0 after SIGTERM/SIGINT and a drain, 1 a bundle cannot be served,\n"
            "2 usage, 3 cannot listen (or --access-log cannot be opened), 5 out of memory\n"
            "or a thread cannot start.\n");
}

/* ADDR:PORT, [V6]:PORT, or PORT alone (loopback). */
static int parse_listen(serve_config *c, char *spec)
{
    int64_t port;
    char *colon = strrchr(spec, ':');
    if (!colon) {
        c->listen_host = "127.0.0.1";
        colon = spec - 1;
    } else {
        *colon = '\0';
        c->listen_host = spec;
        size_t n = strlen(spec);
        if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
            spec[n - 1] = '\0';
            c->listen_host = spec + 1;
        }
    }
    if (cli_parse_i64(colon + 1, &port) != 0 || port < 0 || port > 65535) return -1;
    c->listen_port = (unsigned)port;
    return 0;
}

static int positive(const char *s, int64_t max, int64_t *out)
{
    return cli_parse_i64(s, out) == 0 && *out >= 0 && *out <= max ? 0 : -1;
}

/* Options into c and the bundle paths (argv's); returns -1 when done
 * (--help, --version), else 0 or EXIT_USAGE. */
static int parse_args(serve_config *c, unsigned *drain_ms, const char ***paths, size_t *npaths,
                      int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"dispatch", required_argument, NULL, 'd'},
        {"max-request-bytes", required_argument, NULL, 'b'},
        {"max-k", required_argument, NULL, 'k'},
        {"queue", required_argument, NULL, 'Q'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"drain-ms", required_argument, NULL, 'D'},
        {"recall-sample", required_argument, NULL, 'r'},
        {"access-log", required_argument, NULL, 'a'},
        {"admin-any-peer", no_argument, NULL, 'A'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    int64_t v;
    uint64_t size;
    char *end;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "qvhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (parse_listen(c, optarg) != 0) {
                cli_warn(prog, "--listen takes ADDR:PORT (port 0 to 65535), not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (positive(optarg, 1024, &v) != 0 || v < 1) {
                cli_warn(prog, "--threads takes 1 to 1024, not '%s'", optarg);
                return EXIT_USAGE;
            }
            c->threads = (int)v;
            break;
        case 'd':
            if (strcmp(optarg, "inline") && strcmp(optarg, "queue")) {
                cli_warn(prog, "--dispatch takes inline or queue, not '%s'", optarg);
                return EXIT_USAGE;
            }
            c->dispatch_queue = optarg[0] == 'q';
            break;
        case 'b':
            if (cli_parse_size(optarg, &size) != 0 || size < 1 || size > (1u << 30)) {
                cli_warn(prog, "--max-request-bytes takes 1 to 1G, not '%s'", optarg);
                return EXIT_USAGE;
            }
            c->max_request_bytes = (size_t)size;
            break;
        case 'k':
            if (positive(optarg, ANNB_SERVE_MAX_K, &v) != 0 || v < 1) {
                cli_warn(prog, "--max-k takes 1 to %d, not '%s'", ANNB_SERVE_MAX_K, optarg);
                return EXIT_USAGE;
            }
            c->max_k = (size_t)v;
            break;
        case 'Q':
            if (positive(optarg, 1 << 20, &v) != 0) {
                cli_warn(prog, "--queue takes 0 to 1048576, not '%s'", optarg);
                return EXIT_USAGE;
            }
            c->queue = (size_t)v;
            break;
        case 'T':
        case 'D':
            if (positive(optarg, 3600000, &v) != 0) {
                cli_warn(prog, "--%s takes milliseconds, 0 to 3600000, not '%s'",
                         opt == 'T' ? "timeout-ms" : "drain-ms", optarg);
                return EXIT_USAGE;
            }
            *(opt == 'T' ? &c->timeout_ms : drain_ms) = (unsigned)v;
            break;
        case 'r':
            errno = 0;
            c->recall_sample = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(c->recall_sample >= 0 && c->recall_sample <= 1)) {
                cli_warn(prog, "--recall-sample takes a fraction from 0 to 1, not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'a':
            if (!strcmp(optarg, "-")) c->access_log = stdout;
            else if (!(c->access_log = fopen(optarg, "a"))) {
                cli_warn(prog, "--access-log %s: %s", optarg, strerror(errno));
                return EXIT_IO;
            }
            break;
        case 'A': c->admin_any_peer = 1; break;
        case 'q': c->verbosity = -1; break;
        case 'v': c->verbosity = 1; break;
        case 'h': usage(stdout); return -1;
        case 'V': printf("%s\n", annb_version()); return -1;
        default: return cli_bad_option(prog, argv);
        }
    }
    if (optind >= argc) {
        cli_warn(prog, "no BUNDLE given (ann-serve --help)");
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++)
        if (!strcmp(argv[i], "-")) {
            cli_warn(prog, "%s", CLI_BUNDLE_NOT_STDIN);
            return EXIT_USAGE;
        }
    *paths = (const char **)(argv + optind);
    *npaths = (size_t)(argc - optind);
    return 0;
}

int main(int argc, char **argv)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    serve_config cfg = {
        .listen_host = "127.0.0.1", .listen_port = 8080, .threads = cores > 0 ? (int)cores : 1,
        .max_request_bytes = ANNB_SERVE_MAX_REQUEST_BYTES, .max_k = ANNB_SERVE_MAX_K,
        .dispatch_queue = 1, .queue = 1024, .timeout_ms = 1000, .recall_sample = 0.01,
    };
    unsigned drain_ms = 10000, port = 0;
    const char **paths = NULL;
    size_t npaths = 0;
    int status = parse_args(&cfg, &drain_ms, &paths, &npaths, argc, argv);
    if (status) return status < 0 ? EXIT_OK : status;

    /* Signals go to one thread, which waits for them below: block them
     * before any thread starts, so every thread inherits the mask. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    serve_metrics metrics;
    serve_bundle_set set;
    serve_recall *recall = NULL;
    serve_http *http = NULL;
    serve_metrics_init(&metrics);
    if (serve_set_open(&set, paths, npaths, &metrics, cfg.verbosity) != 0) return EXIT_DATA;
    if (serve_set_start(&set) != 0) {
        serve_set_close(&set);
        return EXIT_INTERNAL;
    }
    if (serve_recall_start(&recall, cfg.recall_sample, 256, &metrics, &set, cfg.verbosity) != 0) {
        serve_set_close(&set);
        return EXIT_INTERNAL;
    }
    if (serve_http_start(&http, &cfg, &set, &metrics, recall, &port) != 0) {
        serve_recall_stop(recall);
        serve_set_close(&set);
        return EXIT_IO;
    }
    printf("listening on %s%s%s:%u\n", strchr(cfg.listen_host, ':') ? "[" : "", cfg.listen_host,
           strchr(cfg.listen_host, ':') ? "]" : "", port);
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0) continue;
        if (sig == SIGHUP) {
            serve_set_request_reload(&set, "SIGHUP");
            continue;
        }
        serve_log(cfg.verbosity, 0, "%s: draining (/readyz 503 for %u ms)", strsignal(sig),
                  drain_ms);
        break;
    }
    serve_http_stop(http, drain_ms);
    serve_recall_stop(recall);
    serve_set_close(&set);
    serve_metrics_destroy(&metrics);
    if (cfg.access_log && cfg.access_log != stdout) fclose(cfg.access_log);
    serve_log(cfg.verbosity, 0, "stopped");
    return EXIT_OK;
}
