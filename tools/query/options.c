/* options.c - ann-query's command line: flags into options, and which
 * flags go together (a usage error, exit 2, before any file is opened). */
#define _POSIX_C_SOURCE 200809L
#include "query.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const format_names[] = {"table", "tsv", "json", "resp"};
/* Answers are users, not items. */
#define ASKS_USERS(m) ((m) == M_SIMILAR_USERS || (m) == M_USERS_FOR_ITEM)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ann-query BUNDLE... QUESTION [filters] [-k N] [--format F]\n"
            "       ann-query BUNDLE... --batch FILE | --batch-users FILE [filters] [-k N]\n"
            "       ann-query BUNDLE... --all-users [-k N] [--format tsv|json|resp]\n"
            "       ann-query BUNDLE... --serve-stdin\n"
            "\n"
            "Several BUNDLEs: shards of one catalog (ann-build --shard I/N), answers merged.\n"
            "\n"
            "QUESTION is one of:\n"
            "  --user ID              items for a user stored in the bundle (ann-build --users)\n"
            "  --user-vec FILE:ID     items for the vector of ID in an embeddings file\n"
            "                         (e.g. the users.csv of the same training job)\n"
            "  --item ID              items similar to item ID (the item itself excluded)\n"
            "  --vec VECTOR           items for a vector: '[0.1, 0.2, ...]' or 0.1,0.2,...\n"
            "  --similar-users ID     users like user ID (the user itself excluded)\n"
            "  --users-for-item ID    users for whom item ID scores best\n"
            "An ID is a string ID where the bundle has them (its input IDs were text: SKUs,\n"
            "words), else a decimal integer; answers print string IDs as text. FILE:ID\n"
            "splits at the last colon after which FILE exists (IDs may hold colons).\n"
            "\n"
            "Filters:\n"
            "  --exclude-seen         leave out what the user has seen, as stored in the bundle\n"
            "                         (ann-build --interactions); with --user, --batch-users,\n"
            "                         --all-users and one bundle\n"
            "  --exclude-seen FILE    the same from ratings.dat, ratings.csv or a user,item CSV\n"
            "                         (with --user or --user-vec; also written --exclude-seen=FILE;\n"
            "                         the next word is taken as FILE unless it starts with '-'\n"
            "                         or ends in .annb)\n"
            "  --exclude ID,ID,...    leave out these IDs (repeatable; an argument that is one\n"
            "                         string ID whole, comma and all, is taken whole)\n"
            "  --genre NAME[,NAME]    only items with one of these genres (repeatable)\n"
            "\n"
            "An input FILE may be '-' (stdin) and gzip- or zstd-compressed; a BUNDLE is a\n"
            "regular file, never '-'.\n"
            "\n"
            "Many questions at once:\n"
            "  --batch FILE           query vectors, an embeddings file (`id,features`), answered\n"
            "                         in one search call\n"
            "  --batch-users FILE     user IDs, one per line\n"
            "  --all-users            top-k for every user stored in the bundle\n"
            "  --serve-stdin          one JSON request per line in, one JSON answer per line out\n"
            "                         (docs/protocol.md); ends at end of input\n"
            "      --max-request-bytes N  --serve-stdin: longest request line (default 1M; K, M,\n"
            "                         G suffixes); a longer one is answered with too_large\n"
            "\n"
            "  -k N                   number of results (default 10)\n"
            "      --nprobe N         IVF: lists searched (default: as tuned by ann-build)\n"
            "      --ef-search N      graph, HNSW: candidate list size (default: as tuned)\n"
            "      --threads N        threads per search (exact and IVF split each question's\n"
            "                         scan; batches are shared out; default 1, and every\n"
            "                         core for --batch, --batch-users and --all-users)\n"
            "  -f, --format F         table (default for one question), tsv (default for\n"
            "                         batches), json; resp (Redis protocol, --all-users only)\n"
            "      --key-prefix P     resp: keys P<user> (default annb:<bundle id>:user:)\n"
            "      --ttl SECONDS      resp: EXPIRE every key\n"
            "      --exact            an exact scan whatever the index: the true top k, to\n"
            "                         check an approximate bundle's answers against\n"
            "      --verify           also check the vector sections' checksums before answering\n"
            "                         (opening skips them so that it takes the same time for\n"
            "                         any size; ann-inspect --verify checks everything)\n"
            "      --trust-faiss      let Faiss read a Faiss index type annb's checker does not\n"
            "                         know (only for bundles from a trusted source)\n"
            "  -v, --verbose          batches and --serve-stdin: throughput on stderr\n"
            "  -q, --quiet            no notes on stderr (such as \"only 3 of 10 results\"):\n"
            "                         errors and warnings only\n"
            "  -h, --help             this help\n"
            "  -V, --version          library, format, Faiss and zstd versions\n"
            "\n"
            "Scores: ip and cosine are similarities (higher first); l2 is the squared\n"
            "Euclidean distance (lower first). A score that is not finite (damaged vectors)\n"
            "is null in JSON and nan/inf in table and TSV, with a warning on stderr.\n"
            "Control characters and invalid UTF-8 in titles and genres are escaped (\\xNN)\n"
            "in table and TSV, replaced in JSON (docs/cli.md).\n"
            "Exit status: 0 ok, 1 bad data or damaged/unsupported bundle, 2 usage,\n"
            "3 I/O error (e.g. missing file), 4 unknown ID or genre, 5 internal error.\n");
}

/* Largest --max-request-bytes: a line is held in memory whole. */
#define MAX_REQUEST_CAP (1ull << 30)

void query_options_release(options *o)
{
    free(o->user_file);
    free(o->exclude_args);
    free(o->genre_args);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* Appends a repeatable flag's argument to *list (*n of them). */
static int append_arg(const char ***list, size_t *n, const char *arg)
{
    const char **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown) return EXIT_INTERNAL;
    *list = grown;
    (*list)[(*n)++] = arg;
    return EXIT_OK;
}

/* The colon of --user-vec FILE:ID: the last one whose left part names a
 * file ('-' or one that exists), so that IDs may hold colons ("urn:x:1")
 * and file names too; the last colon when no left part does (the error
 * then names the file that is missing). */
static const char *user_vec_colon(const char *arg)
{
    const char *last = strrchr(arg, ':');
    for (const char *c = last; c && c > arg; c--) {
        if (*c != ':') continue;
        char *file = strndup(arg, (size_t)(c - arg));
        int named = file && (strcmp(file, "-") == 0 || access(file, F_OK) == 0);
        free(file);
        if (named) return c;
    }
    return last;
}

static int set_mode(options *o, mode m, const char *arg)
{
    o->mode = m;
    o->arg = arg;
    o->modes_given++;
    if (m == M_USER_VEC) {
        const char *colon = user_vec_colon(arg);
        if (!colon || colon == arg || !colon[1]) {
            cli_warn(query_prog, "--user-vec expects FILE:ID, not '%s'", arg);
            return EXIT_USAGE;
        }
        free(o->user_file);
        if (!(o->user_file = strndup(arg, (size_t)(colon - arg)))) return EXIT_INTERNAL;
        o->id_text = colon + 1;
    } else if (m == M_ITEM || m == M_USER || ASKS_USERS(m)) {
        o->id_text = arg; /* the library reads it in its space (annb_space_id_of) */
    }
    return EXIT_OK;
}

int query_parse_args(options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"user-vec", required_argument, NULL, 'u'},     {"item", required_argument, NULL, 'I'},
        {"vec", required_argument, NULL, 'w'},          {"user", required_argument, NULL, 'U'},
        {"similar-users", required_argument, NULL, 'S'}, {"users-for-item", required_argument, NULL, 'F'},
        {"batch", required_argument, NULL, 'b'},        {"batch-users", required_argument, NULL, 'B'},
        {"serve-stdin", no_argument, NULL, 's'},        {"all-users", no_argument, NULL, 'A'},
        {"exclude-seen", optional_argument, NULL, 'x'}, {"exclude", required_argument, NULL, 'e'},
        {"genre", required_argument, NULL, 'g'},        {"key-prefix", required_argument, NULL, 'P'},
        {"ttl", required_argument, NULL, 'T'},          {"format", required_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},            {"help", no_argument, NULL, 'h'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, 'V'},            {"nprobe", required_argument, NULL, 'N'},
        {"ef-search", required_argument, NULL, 'E'},    {"verify", no_argument, NULL, 'C'},
        {"threads", required_argument, NULL, 't'},
        {"max-request-bytes", required_argument, NULL, 'M'},
        {"trust-faiss", no_argument, NULL, 'R'},
        {"exact", no_argument, NULL, 'X'},
        {NULL, 0, NULL, 0},
    };
    static const struct { int opt; mode m; } modes[] = {
        {'u', M_USER_VEC}, {'I', M_ITEM}, {'w', M_VEC}, {'U', M_USER}, {'S', M_SIMILAR_USERS},
        {'F', M_USERS_FOR_ITEM}, {'b', M_BATCH}, {'B', M_BATCH_USERS}, {'s', M_SERVE},
        {'A', M_ALL_USERS},
    };
    int c, rc;
    opterr = 0; /* cli_bad_option reports */
    while ((c = getopt_long(argc, argv, "k:f:vqhV", longopts, NULL)) != -1) {
        size_t i = 0;
        while (i < sizeof modes / sizeof *modes && modes[i].opt != c) i++;
        if (i < sizeof modes / sizeof *modes) {
            if ((rc = set_mode(o, modes[i].m, optarg))) return rc;
            continue;
        }
        switch (c) {
        case 'x':
            o->exclude_seen = 1;
            /* An optional argument also as the next word (documented rule). */
            if (!optarg && optind < argc && argv[optind][0] != '-' && !ends_with(argv[optind], ".annb"))
                optarg = argv[optind++];
            if (optarg && !*optarg) {
                cli_warn(query_prog, "--exclude-seen= needs a FILE");
                return EXIT_USAGE;
            }
            o->seen_file = optarg;
            break;
        case 'e':
            if (!*optarg) {
                cli_warn(query_prog, "--exclude expects ID[,ID...]");
                return EXIT_USAGE;
            }
            if ((rc = append_arg(&o->exclude_args, &o->nexclude_args, optarg))) return rc;
            break;
        case 'g':
            if (!*optarg) {
                cli_warn(query_prog, "--genre expects NAME[,NAME...]");
                return EXIT_USAGE;
            }
            if ((rc = append_arg(&o->genre_args, &o->ngenre_args, optarg))) return rc;
            break;
        case 'P': o->key_prefix = optarg; break;
        case 'T':
            if (cli_parse_i64(optarg, &o->ttl) || o->ttl < 1 || o->ttl > INT32_MAX) {
                cli_warn(query_prog, "--ttl expects seconds from 1 to %d, not '%s'", INT32_MAX, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'N':
        case 'E': {
            int64_t v;
            if (cli_parse_i64(optarg, &v) || v < 1 || v > 1 << 20) {
                cli_warn(query_prog, "--%s expects a number from 1 to %d, not '%s'",
                         c == 'N' ? "nprobe" : "ef-search", 1 << 20, optarg);
                return EXIT_USAGE;
            }
            *(c == 'N' ? &o->nprobe : &o->ef_search) = (uint32_t)v;
            break;
        }
        case 'k':
            if (cli_parse_i64(optarg, &o->k) || o->k < 1 || o->k > 100000) {
                cli_warn(query_prog, "-k expects a number from 1 to 100000, not '%s'", optarg);
                return EXIT_USAGE;
            }
            o->k_given = 1;
            break;
        case 'f': {
            int f = 0;
            while (f <= OUT_RESP && strcmp(optarg, format_names[f])) f++;
            if (f > OUT_RESP) {
                cli_warn(query_prog, "unknown format '%s' (expected table, tsv, json or resp)", optarg);
                return EXIT_USAGE;
            }
            o->fmt = (out_format)f;
            o->fmt_given = 1;
            break;
        }
        case 'v': o->verbose = 1; break;
        case 'q': o->quiet = 1; break;
        case 'C': o->verify_all = 1; break;
        case 'R': o->trust_faiss = 1; break;
        case 'X': o->exact = 1; break;
        case 't':
            if (cli_parse_i64(optarg, &o->threads) || o->threads < 1 || o->threads > 1024) {
                cli_warn(query_prog, "--threads expects a number from 1 to 1024, not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'M':
            if (cli_parse_size(optarg, &o->max_request) || o->max_request < 1 ||
                o->max_request > MAX_REQUEST_CAP) {
                cli_warn(query_prog, "--max-request-bytes expects a size from 1 to 1G (K, M, G "
                         "suffixes), not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return -1;
        case 'V': printf("%s\n", annb_version()); return -1;
        default: return cli_bad_option(query_prog, argv);
        }
    }
    o->paths = argv + optind;
    o->npaths = (size_t)(argc - optind);
    return EXIT_OK;
}

const char *query_check_combination(options *o)
{
    const mode m = o->mode;
    if (o->npaths == 0) return "expected at least one BUNDLE";
    for (size_t i = 0; i < o->npaths; i++)
        if (strcmp(o->paths[i], "-") == 0) return CLI_BUNDLE_NOT_STDIN;
    if (o->quiet && o->verbose) return "-q and -v go one at a time";
    if (o->modes_given != 1)
        return "expected exactly one of --user-vec, --item, --vec, --user, --similar-users, "
               "--users-for-item, --batch, --batch-users, --all-users, --serve-stdin";
    if (m == M_SERVE && (o->k_given || o->fmt_given || o->exclude_seen || o->nexclude_args ||
                         o->ngenre_args))
        return "--serve-stdin takes k, filters and format from each request (docs/protocol.md)";
    if (o->max_request && m != M_SERVE) return "--max-request-bytes goes with --serve-stdin";
    if (!o->fmt_given) o->fmt = SINGLE(m) ? OUT_TABLE : OUT_TSV;
    if (o->fmt == OUT_TABLE && !SINGLE(m)) return "--format table is for one question: use tsv or json";
    if (o->fmt == OUT_RESP && m != M_ALL_USERS) return "--format resp goes with --all-users";
    if ((o->key_prefix || o->ttl) && o->fmt != OUT_RESP) return "--key-prefix and --ttl go with --format resp";
    if (o->exclude_seen && !o->seen_file && m != M_USER && m != M_BATCH_USERS && m != M_ALL_USERS)
        return "--exclude-seen without FILE (the interactions stored in the bundle) goes with "
               "--user, --batch-users or --all-users";
    if (o->exclude_seen && !o->seen_file && o->npaths > 1)
        return "with several bundles, --exclude-seen needs a FILE";
    if (o->seen_file && m != M_USER && m != M_USER_VEC)
        return "--exclude-seen FILE goes with --user or --user-vec";
    if (o->ngenre_args && ASKS_USERS(m)) return "--genre filters items, and this question answers users";
    return NULL;
}

