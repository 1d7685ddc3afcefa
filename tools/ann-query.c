/* ann-query - top-k answers from a bundle (or shard bundles): one question,
 * a batch, every user, or JSON requests on stdin (docs/cli.md). */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const prog = "ann-query";

typedef enum { OUT_TABLE, OUT_TSV, OUT_JSON, OUT_RESP } out_format;
static const char *const format_names[] = {"table", "tsv", "json", "resp"};

/* What is asked: exactly one per run. The first six are single questions. */
typedef enum {
    M_NONE, M_USER_VEC, M_ITEM, M_VEC, M_USER, M_SIMILAR_USERS, M_USERS_FOR_ITEM,
    M_BATCH, M_BATCH_USERS, M_SERVE, M_ALL_USERS, M_COUNT
} mode;
static const char *const mode_flags[M_COUNT] = {
    NULL, "--user-vec", "--item", "--vec", "--user", "--similar-users", "--users-for-item",
    "--batch", "--batch-users", "--serve-stdin", "--all-users",
};
#define SINGLE(m) ((m) >= M_USER_VEC && (m) <= M_USERS_FOR_ITEM)
/* Answers are users, not items. */
#define ASKS_USERS(m) ((m) == M_SIMILAR_USERS || (m) == M_USERS_FOR_ITEM)
/* Needs the users stored in a bundle. */
#define NEEDS_USERS(m) ((m) == M_USER || ASKS_USERS(m) || (m) == M_BATCH_USERS || (m) == M_ALL_USERS)

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
            "\n"
            "Filters:\n"
            "  --exclude-seen         leave out what the user has seen, as stored in the bundle\n"
            "                         (ann-build --interactions); with --user, --batch-users,\n"
            "                         --all-users and one bundle\n"
            "  --exclude-seen FILE    the same from ratings.dat, ratings.csv or a user,item CSV\n"
            "                         (with --user or --user-vec; also written --exclude-seen=FILE;\n"
            "                         the next word is taken as FILE unless it starts with '-'\n"
            "                         or ends in .annb)\n"
            "  --exclude ID,ID,...    leave out these IDs (repeatable)\n"
            "  --genre NAME[,NAME]    only items with one of these genres (repeatable)\n"
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
            "      --verify           also check the vector sections' checksums before answering\n"
            "                         (opening skips them so that it takes the same time for\n"
            "                         any size; ann-inspect --verify checks everything)\n"
            "      --trust-faiss      let Faiss read a Faiss index type annb's checker does not\n"
            "                         know (only for bundles from a trusted source)\n"
            "  -v, --verbose          batches and --serve-stdin: throughput on stderr\n"
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

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct options {
    mode mode;
    int modes_given;
    const char *arg;          /* the mode's argument */
    int64_t id;               /* --user, --item, ... and the ID of --user-vec */
    char *user_file;          /* --user-vec's FILE (malloc'd) */
    int64_t k;
    int k_given;
    uint32_t nprobe, ef_search; /* 0: as tuned at build time */
    int verify_all;             /* --verify: every checksum at open */
    int trust_faiss;            /* --trust-faiss: ANNB_OPEN_TRUST_FAISS */
    int64_t threads;            /* --threads: for each search (0: one) */
    out_format fmt;
    int fmt_given;
    int exclude_seen;
    const char *seen_file;    /* --exclude-seen FILE */
    int64_t *exclude;         /* --exclude, all of them */
    size_t nexclude;
    const char **genre_args;  /* --genre arguments as given */
    size_t ngenre_args;
    const char *key_prefix;
    int64_t ttl;
    int verbose;
    uint64_t max_request;     /* --max-request-bytes (0: not given) */
    char **paths;             /* the bundles */
    size_t npaths;
} options;

/* Largest --max-request-bytes: a line is held in memory whole. */
#define MAX_REQUEST_CAP (1ull << 30)

static void options_release(options *o)
{
    free(o->user_file);
    free(o->exclude);
    free(o->genre_args);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

static int append_excludes(options *o, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    int rc = copy ? 0 : EXIT_INTERNAL;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !rc; t = strtok_r(NULL, ",", &save)) {
        int64_t id, *grown;
        if (cli_parse_i64(t, &id)) {
            cli_warn(prog, "--exclude expects IDs separated by commas, not '%s'", list);
            rc = EXIT_USAGE;
        } else if (!(grown = realloc(o->exclude, (o->nexclude + 1) * sizeof *grown))) {
            rc = EXIT_INTERNAL;
        } else {
            o->exclude = grown;
            o->exclude[o->nexclude++] = id;
        }
    }
    free(copy);
    return rc;
}

static int set_mode(options *o, mode m, const char *arg)
{
    o->mode = m;
    o->arg = arg;
    o->modes_given++;
    if (m == M_USER_VEC) {
        const char *colon = strrchr(arg, ':');
        if (!colon || colon == arg || cli_parse_i64(colon + 1, &o->id)) {
            cli_warn(prog, "--user-vec expects FILE:ID, not '%s'", arg);
            return EXIT_USAGE;
        }
        free(o->user_file);
        if (!(o->user_file = strndup(arg, (size_t)(colon - arg)))) return EXIT_INTERNAL;
    } else if ((m == M_ITEM || m == M_USER || ASKS_USERS(m)) && cli_parse_i64(arg, &o->id)) {
        cli_warn(prog, "%s expects an integer ID, not '%s'", mode_flags[m], arg);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int parse_args(options *o, int argc, char **argv)
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
        {"version", no_argument, NULL, 'V'},            {"nprobe", required_argument, NULL, 'N'},
        {"ef-search", required_argument, NULL, 'E'},    {"verify", no_argument, NULL, 'C'},
        {"threads", required_argument, NULL, 't'},
        {"max-request-bytes", required_argument, NULL, 'M'},
        {"trust-faiss", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    static const struct { int opt; mode m; } modes[] = {
        {'u', M_USER_VEC}, {'I', M_ITEM}, {'w', M_VEC}, {'U', M_USER}, {'S', M_SIMILAR_USERS},
        {'F', M_USERS_FOR_ITEM}, {'b', M_BATCH}, {'B', M_BATCH_USERS}, {'s', M_SERVE},
        {'A', M_ALL_USERS},
    };
    int c, rc;
    opterr = 0; /* cli_bad_option reports */
    while ((c = getopt_long(argc, argv, "k:f:vhV", longopts, NULL)) != -1) {
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
                cli_warn(prog, "--exclude-seen= needs a FILE");
                return EXIT_USAGE;
            }
            o->seen_file = optarg;
            break;
        case 'e':
            if ((rc = append_excludes(o, optarg))) return rc;
            break;
        case 'g': {
            if (!*optarg) {
                cli_warn(prog, "--genre expects NAME[,NAME...]");
                return EXIT_USAGE;
            }
            const char **grown = realloc(o->genre_args, (o->ngenre_args + 1) * sizeof *grown);
            if (!grown) return EXIT_INTERNAL;
            o->genre_args = grown;
            o->genre_args[o->ngenre_args++] = optarg;
            break;
        }
        case 'P': o->key_prefix = optarg; break;
        case 'T':
            if (cli_parse_i64(optarg, &o->ttl) || o->ttl < 1 || o->ttl > INT32_MAX) {
                cli_warn(prog, "--ttl expects seconds from 1 to %d, not '%s'", INT32_MAX, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'N':
        case 'E': {
            int64_t v;
            if (cli_parse_i64(optarg, &v) || v < 1 || v > 1 << 20) {
                cli_warn(prog, "--%s expects a number from 1 to %d, not '%s'",
                         c == 'N' ? "nprobe" : "ef-search", 1 << 20, optarg);
                return EXIT_USAGE;
            }
            *(c == 'N' ? &o->nprobe : &o->ef_search) = (uint32_t)v;
            break;
        }
        case 'k':
            if (cli_parse_i64(optarg, &o->k) || o->k < 1 || o->k > 100000) {
                cli_warn(prog, "-k expects a number from 1 to 100000, not '%s'", optarg);
                return EXIT_USAGE;
            }
            o->k_given = 1;
            break;
        case 'f': {
            int f = 0;
            while (f <= OUT_RESP && strcmp(optarg, format_names[f])) f++;
            if (f > OUT_RESP) {
                cli_warn(prog, "unknown format '%s' (expected table, tsv, json or resp)", optarg);
                return EXIT_USAGE;
            }
            o->fmt = (out_format)f;
            o->fmt_given = 1;
            break;
        }
        case 'v': o->verbose = 1; break;
        case 'C': o->verify_all = 1; break;
        case 'R': o->trust_faiss = 1; break;
        case 't':
            if (cli_parse_i64(optarg, &o->threads) || o->threads < 1 || o->threads > 1024) {
                cli_warn(prog, "--threads expects a number from 1 to 1024, not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'M':
            if (cli_parse_size(optarg, &o->max_request) || o->max_request < 1 ||
                o->max_request > MAX_REQUEST_CAP) {
                cli_warn(prog, "--max-request-bytes expects a size from 1 to 1G (K, M, G "
                         "suffixes), not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return -1;
        case 'V': printf("%s\n", annb_version()); return -1;
        default: return cli_bad_option(prog, argv);
        }
    }
    o->paths = argv + optind;
    o->npaths = (size_t)(argc - optind);
    return EXIT_OK;
}

/* The combinations that make sense (docs/cli.md); a usage error otherwise. */
static const char *check_combination(options *o)
{
    const mode m = o->mode;
    if (o->npaths == 0) return "expected at least one BUNDLE";
    if (o->modes_given != 1)
        return "expected exactly one of --user-vec, --item, --vec, --user, --similar-users, "
               "--users-for-item, --batch, --batch-users, --all-users, --serve-stdin";
    if (m == M_SERVE && (o->k_given || o->fmt_given || o->exclude_seen || o->nexclude ||
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

/* ------------------------------------------------------------------------ */
/* Bundles                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct ctx {
    const options *o;
    annb_bundle **b;
    size_t n;
    const annb_bundle *users;  /* the first bundle that stores users, or NULL */
    annb_bundle_info info;     /* of b[0] */
    uint32_t dim;
    annb_search_opts so;       /* filters common to every question of the run */
    const char **genres;       /* --genre names, split */
    size_t ngenres;
    char *genre_text;          /* their storage */
    annb_error err;
    int status;                /* exit status when not the one of err.code */
    int warned_scores;         /* check_scores said it once */
} ctx;

/* Fails with a message in c->err. */
static int ctx_fail(ctx *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int ctx_fail(ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err.message, sizeof c->err.message, fmt, ap);
    va_end(ap);
    c->err.code = code;
    return code;
}

static int open_bundles(ctx *c)
{
    const options *o = c->o;
    if (!(c->b = calloc(o->npaths, sizeof *c->b))) return ANNB_E_NOMEM;
    c->n = o->npaths;
    for (size_t i = 0; i < c->n; i++) {
        annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
        if (o->verify_all) oo.flags |= ANNB_OPEN_VERIFY_ALL;
        if (o->trust_faiss) oo.flags |= ANNB_OPEN_TRUST_FAISS;
        int rc = annb_open(&c->b[i], o->paths[i], &oo, &c->err);
        if (rc) return rc;
        annb_bundle_info info;
        annb_bundle_info_get(&info, c->b[i]);
        if (i == 0) c->info = info;
        else if (info.dimension != c->info.dimension || info.metric != c->info.metric)
            return ctx_fail(c, ANNB_E_CORRUPT, "%s: dimension %u, metric %s, but %s has %u, %s: "
                            "shards of one catalog must agree", o->paths[i], info.dimension,
                            annb_metric_name(info.metric), o->paths[0], c->info.dimension,
                            annb_metric_name(c->info.metric));
        for (size_t j = 0; j < i; j++)
            if (annb_bundle_id(c->b[j]) == annb_bundle_id(c->b[i]))
                return ctx_fail(c, ANNB_E_INVALID, "%s and %s are the same bundle", o->paths[j],
                                o->paths[i]);
        if (!c->users && annb_space_count(c->b[i], ANNB_SPACE_USERS)) c->users = c->b[i];
    }
    c->dim = c->info.dimension;
    return ANNB_OK;
}

static int genre_known(const annb_bundle *b, const char *name)
{
    for (uint32_t g = 0; g < annb_genre_count(b); g++)
        if (strcmp(annb_genre_name(b, g), name) == 0) return 1;
    return 0;
}

static int unknown_genre(ctx *c, const char *name)
{
    const annb_bundle *b = c->b[0];
    char *list = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&list, &len); /* names escaped: stderr is a terminal too */
    if (!m) return ANNB_E_NOMEM;
    for (uint32_t g = 0; g < annb_genre_count(b); g++) {
        if (g) fputs(", ", m);
        cli_put_text(m, annb_genre_name(b, g));
    }
    if (fclose(m) != 0) {
        free(list);
        return ANNB_E_NOMEM;
    }
    /* The list can be longer than an annb_error message: print it here. */
    if (annb_genre_count(b))
        cli_warn(prog, "unknown genre '%s'; the genres of %s are: %s", name, c->o->paths[0], list);
    else
        cli_warn(prog, "unknown genre '%s': %s has no catalog genres", name, c->o->paths[0]);
    free(list);
    return ctx_fail(c, ANNB_E_NOT_FOUND, "%s", "");
}

/* --genre arguments: a known name as given, otherwise a comma-separated list. */
static int resolve_genres(ctx *c)
{
    const options *o = c->o;
    size_t bytes = 0, most = 0;
    for (size_t i = 0; i < o->ngenre_args; i++) {
        bytes += strlen(o->genre_args[i]) + 1;
        most += strlen(o->genre_args[i]) / 2 + 1;
    }
    if (!o->ngenre_args) return ANNB_OK;
    if (!(c->genre_text = malloc(bytes)) || !(c->genres = malloc(most * sizeof *c->genres)))
        return ANNB_E_NOMEM;
    char *at = c->genre_text, *save = NULL;
    for (size_t i = 0; i < o->ngenre_args; at += strlen(o->genre_args[i++]) + 1) {
        strcpy(at, o->genre_args[i]);
        if (genre_known(c->b[0], at)) {
            c->genres[c->ngenres++] = at;
            continue;
        }
        for (char *t = strtok_r(at, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!genre_known(c->b[0], t)) return unknown_genre(c, t);
            c->genres[c->ngenres++] = t;
        }
    }
    c->so.genres = c->genres;
    c->so.genre_count = c->ngenres;
    return ANNB_OK;
}

/* Checks that the bundles can answer the question at all: a bundle that
 * lacks what is asked is bad data (exit 1), not a bad command line. */
static int check_bundles(ctx *c)
{
    const options *o = c->o;
    c->status = EXIT_DATA;
    if (NEEDS_USERS(o->mode) && !c->users && c->n == 1)
        return ctx_fail(c, ANNB_E_INVALID, "%s: bundle has no users (build with --users)", o->paths[0]);
    if (NEEDS_USERS(o->mode) && !c->users)
        return ctx_fail(c, ANNB_E_INVALID, "no bundle has users (build with --users)");
    if (o->exclude_seen && !o->seen_file && !annb_bundle_has_seen(c->b[0]))
        return ctx_fail(c, ANNB_E_INVALID, "%s: bundle has no interactions (build with "
                        "--interactions, or give --exclude-seen FILE)", o->paths[0]);
    c->status = 0;
    return resolve_genres(c);
}

/* Item `id`'s vector from whichever shard holds it. */
static int item_vector(ctx *c, int64_t id, float *out)
{
    for (size_t i = 0; i < c->n; i++)
        if (annb_vector_get(c->b[i], ANNB_SPACE_ITEMS, id, out) == ANNB_OK) return ANNB_OK;
    if (c->n > 1) return ctx_fail(c, ANNB_E_NOT_FOUND, "item %lld is in none of the bundles", (long long)id);
    return ctx_fail(c, ANNB_E_NOT_FOUND, "%s: item %lld is not in the bundle", c->o->paths[0], (long long)id);
}

static int user_vector(ctx *c, int64_t id, float *out)
{
    if (annb_vector_get(c->users, ANNB_SPACE_USERS, id, out) == ANNB_OK) return ANNB_OK;
    return ctx_fail(c, ANNB_E_NOT_FOUND, "user %lld is not in the bundle", (long long)id);
}

/* Top-k items for n users of the bundle: annb_recommend on one bundle (it
 * applies the stored interactions), the users' vectors over shards. */
static int recommend(ctx *c, const int64_t *users, size_t n, size_t k, float *qbuf, annb_hit *hits)
{
    if (c->n == 1) return annb_recommend(c->b[0], users, n, k, &c->so, hits);
    for (size_t i = 0; i < n; i++) {
        int rc = user_vector(c, users[i], qbuf + i * c->dim);
        if (rc) return rc;
    }
    return annb_search_shards((const annb_bundle *const *)c->b, c->n, qbuf, n, k, &c->so, hits);
}

/* Scores that are not numbers come from damaged vectors (opening does not
 * read them, SPEC 3.11) or a query vector too large for float: JSON says
 * null, and the user hears it once, with the bundle that holds the answer. */
static void check_scores(ctx *c, annb_space space, const annb_hit *hits, size_t n)
{
    for (size_t i = 0; i < n && !c->warned_scores; i++) {
        if (hits[i].id == ANNB_ID_NONE || isfinite(hits[i].score)) continue;
        size_t owner = 0;
        for (size_t j = 0; j < c->n; j++)
            if (space == ANNB_SPACE_USERS ? c->b[j] == c->users
                                          : annb_item_genres(c->b[j], hits[i].id, NULL, 0) >= 0) {
                owner = j;
                break;
            }
        cli_warn(prog, "bundle %s: non-finite scores (damaged vectors?); run ann-inspect --verify",
                 c->o->paths[owner]);
        c->warned_scores = 1;
    }
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                  */
/* ------------------------------------------------------------------------ */

/* Writes s (escaped, docs/cli.md) and pads it to `width` characters (code
 * points, not bytes, so accented titles line up). */
static void put_padded(const char *s, size_t width)
{
    for (size_t chars = cli_put_text(stdout, s); chars < width; chars++) putchar(' ');
}

/* A score in JSON: null when it is not a number JSON can carry. */
static void put_json_score(float score)
{
    if (isfinite(score)) printf("%.9g", (double)score);
    else fputs("null", stdout);
}

/* Title (NULL if none) and genres of an answer: from the shard holding the
 * item; users have neither. */
static const char *describe(const ctx *c, annb_space space, int64_t id, char *genres, size_t size)
{
    genres[0] = '\0';
    for (size_t i = 0; space == ANNB_SPACE_ITEMS && i < c->n; i++)
        if (annb_item_genres(c->b[i], id, genres, size) >= 0) return annb_item_title(c->b[i], id);
    return NULL;
}

/* One result: a table row, a TSV row or a JSON object. */
static void print_hit(const ctx *c, out_format fmt, annb_space space, size_t rank, const annb_hit *h)
{
    char genres[1024];
    const char *title = describe(c, space, h->id, genres, sizeof genres);
    const char *none = space == ANNB_SPACE_USERS ? "-" : fmt == OUT_TABLE ? "-" : "";
    long long id = (long long)h->id;
    if (fmt == OUT_TABLE) {
        printf("%4zu  %10lld  %12.6f  ", rank, id, (double)h->score);
        put_padded(title ? title : none, 50);
        fputs("  ", stdout);
        cli_put_text(stdout, genres);
        putchar('\n');
    } else if (fmt == OUT_TSV) {
        printf("%zu\t%lld\t%.9g\t", rank, id, (double)h->score);
        cli_put_text(stdout, title ? title : none);
        putchar('\t');
        cli_put_text(stdout, genres);
        putchar('\n');
    } else {
        printf("{\"rank\":%zu,\"id\":%lld,\"score\":", rank, id);
        put_json_score(h->score);
        fputs(",\"title\":", stdout);
        if (title) cli_put_json_string(stdout, title);
        else fputs("null", stdout);
        printf(",\"genres\":[");
        char *save = NULL, *g = strtok_r(genres, "|", &save);
        for (int first = 1; g; g = strtok_r(NULL, "|", &save), first = 0) {
            if (!first) putchar(',');
            cli_put_json_string(stdout, g);
        }
        printf("]}");
    }
}

/* The JSON array of a query's results; returns how many there are. */
static size_t print_json_hits(const ctx *c, annb_space space, const annb_hit *hits, size_t k)
{
    size_t j = 0;
    putchar('[');
    for (; j < k && hits[j].id != ANNB_ID_NONE; j++) {
        if (j) putchar(',');
        print_hit(c, OUT_JSON, space, j + 1, &hits[j]);
    }
    putchar(']');
    return j;
}

static void print_results(const ctx *c, const char *question, annb_space space,
                          const annb_hit *hits, size_t k)
{
    const out_format fmt = c->o->fmt;
    const char *metric = annb_metric_name(c->info.metric);
    size_t shown = 0;
    if (fmt == OUT_TABLE) {
        fputs("# ", stdout);
        cli_put_text(stdout, question);
        printf(", metric %s (%s), index ", metric,
               c->info.metric == ANNB_METRIC_L2 ? "squared distance, lower is closer"
                                                : "similarity, higher is closer");
        cli_put_text(stdout, c->info.index);
        const annb_recall_info *r = &c->info.recall;
        uint32_t nprobe = c->so.nprobe ? c->so.nprobe : r->nprobe;
        uint32_t ef = c->so.ef_search ? c->so.ef_search : r->ef_search;
        if (c->info.has_recall && r->measured)
            printf(", recall@%u %.3f at build%s", r->k, r->recall,
                   nprobe != r->nprobe || ef != r->ef_search ? " (other settings now)" : "");
        if (r->nprobe) printf(", nprobe %u", nprobe);
        if (r->ef_search) printf(", efSearch %u", ef);
        if (c->n > 1) printf(", %zu shards", c->n);
        printf("\n%4s  %10s  %12s  %-50s  %s\n", "rank", "id", "score", "title", "genres");
    } else if (fmt == OUT_TSV) {
        printf("rank\tid\tscore\ttitle\tgenres\n");
    }
    if (fmt == OUT_JSON) {
        printf("{\"question\":");
        cli_put_json_string(stdout, question);
        printf(",\"metric\":\"%s\",\"index\":", metric);
        cli_put_json_string(stdout, c->info.index);
        printf(",\"results\":");
        shown = print_json_hits(c, space, hits, k);
        printf("}\n");
    } else {
        for (; shown < k && hits[shown].id != ANNB_ID_NONE; shown++)
            print_hit(c, fmt, space, shown + 1, &hits[shown]);
    }
    if (shown < k)
        cli_warn(prog, "only %zu of %zu results: %s", shown, k,
                 space == ANNB_SPACE_USERS ? "the bundle has fewer users"
                 : c->o->nexclude || c->ngenres || c->o->exclude_seen
                     ? "fewer items pass the filters" : "the bundle has fewer items");
}

/* Answers of many queries: TSV rows `query_id rank id score title genres`,
 * or JSON lines {"query":ID,"results":[...]}. */
static void print_batch(const ctx *c, const int64_t *qids, size_t nq, const annb_hit *hits, size_t k)
{
    if (c->o->fmt == OUT_TSV) printf("query_id\trank\tid\tscore\ttitle\tgenres\n");
    for (size_t i = 0; i < nq; i++) {
        const annb_hit *h = hits + i * k;
        if (c->o->fmt == OUT_JSON) {
            printf("{\"query\":%lld,\"results\":", (long long)qids[i]);
            print_json_hits(c, ANNB_SPACE_ITEMS, h, k);
            printf("}\n");
            continue;
        }
        for (size_t j = 0; j < k && h[j].id != ANNB_ID_NONE; j++) {
            printf("%lld\t", (long long)qids[i]);
            print_hit(c, OUT_TSV, ANNB_SPACE_ITEMS, j + 1, &h[j]);
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------ */
/* One question                                                              */
/* ------------------------------------------------------------------------ */

/* Adds ids to the run's exclusions (c->so owns a malloc'd copy). */
static int exclude_more(ctx *c, const int64_t *ids, size_t n)
{
    size_t have = c->so.exclude_count;
    int64_t *all = realloc((int64_t *)c->so.exclude_ids, (have + n + 1) * sizeof *all);
    if (!all) return ANNB_E_NOMEM;
    if (n) memcpy(all + have, ids, n * sizeof *all);
    c->so.exclude_ids = all;
    c->so.exclude_count = have + n;
    return ANNB_OK;
}

static int seen_from_file(ctx *c, int64_t user)
{
    int64_t *seen = NULL;
    size_t count = 0;
    int rc = annb_seen_items_from_file(&seen, &count, c->o->seen_file, user, &c->err);
    if (rc == ANNB_OK) rc = exclude_more(c, seen, count);
    annb_free(seen);
    return rc;
}

static void describe_question(const ctx *c, char *out, size_t size)
{
    const options *o = c->o;
    long long id = (long long)o->id;
    const annb_bundle *owner = NULL;
    for (size_t i = 0; (o->mode == M_ITEM || o->mode == M_USERS_FOR_ITEM) && !owner && i < c->n; i++)
        if (annb_item_genres(c->b[i], o->id, NULL, 0) >= 0) owner = c->b[i];
    const char *title = owner ? annb_item_title(owner, o->id) : NULL;
    char named[400];
    snprintf(named, sizeof named, "item %lld%s%s%s", id, title ? " (" : "", title ? title : "",
             title ? ")" : "");
    size_t len = 0;
    switch (o->mode) {
    case M_USER_VEC: len = (size_t)snprintf(out, size, "items for user %lld of %s", id, o->user_file); break;
    case M_ITEM: len = (size_t)snprintf(out, size, "items similar to %s", named); break;
    case M_VEC: len = (size_t)snprintf(out, size, "items for the given vector"); break;
    case M_USER: len = (size_t)snprintf(out, size, "items for user %lld", id); break;
    case M_SIMILAR_USERS: len = (size_t)snprintf(out, size, "users similar to user %lld", id); break;
    default: len = (size_t)snprintf(out, size, "users for %s", named); break;
    }
    if (o->exclude_seen && len < size)
        len += (size_t)snprintf(out + len, size - len, ", seen items excluded");
    for (size_t i = 0; i < c->ngenres && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", i ? "|" : ", genres ", c->genres[i]);
}

static int run_single(ctx *c)
{
    const options *o = c->o;
    const annb_bundle *const *b = (const annb_bundle *const *)c->b;
    const size_t k = (size_t)o->k;
    float *q = malloc(c->dim * sizeof *q);
    annb_hit *hits = malloc(k * sizeof *hits);
    annb_space space = ASKS_USERS(o->mode) ? ANNB_SPACE_USERS : ANNB_SPACE_ITEMS;
    char question[600];
    int rc = q && hits ? ANNB_OK : ANNB_E_NOMEM;
    if (rc == ANNB_OK && o->seen_file) rc = seen_from_file(c, o->id);
    if (rc == ANNB_OK && (o->mode == M_ITEM || o->mode == M_SIMILAR_USERS))
        rc = exclude_more(c, &o->id, 1);
    if (rc) goto out;
    switch (o->mode) {
    case M_USER_VEC: rc = annb_vector_from_csv(q, c->dim, o->user_file, o->id, &c->err); break;
    case M_VEC: rc = annb_vector_parse(q, c->dim, o->arg, &c->err); break;
    case M_ITEM:
    case M_USERS_FOR_ITEM: rc = item_vector(c, o->id, q); break;
    default: rc = user_vector(c, o->id, q); break;
    }
    if (rc) goto out;
    c->so.space = space;
    if (space == ANNB_SPACE_USERS) rc = annb_search(c->users, q, 1, k, &c->so, hits);
    else if (o->mode == M_USER) rc = recommend(c, &o->id, 1, k, q, hits);
    else rc = annb_search_shards(b, c->n, q, 1, k, &c->so, hits);
    if (rc) goto out;
    check_scores(c, space, hits, k);
    describe_question(c, question, sizeof question);
    print_results(c, question, space, hits, k);
out:
    free(q);
    free(hits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                   */
/* ------------------------------------------------------------------------ */

/* One user ID per line (blank lines are skipped). */
static int read_user_ids(ctx *c, const char *path, int64_t **ids, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) return ctx_fail(c, ANNB_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, have = 0, lineno = 0;
    int rc = ANNB_OK;
    ssize_t len;
    while (rc == ANNB_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        int64_t id;
        if (cli_parse_i64(line, &id) || (size_t)len != strlen(line)) {
            rc = ctx_fail(c, ANNB_E_INPUT, "%s:%zu:1: expected a user ID", path, lineno);
        } else if (*n == have) {
            have = have ? 2 * have : 1024;
            int64_t *grown = realloc(*ids, have * sizeof *grown);
            if (!grown) rc = ANNB_E_NOMEM;
            else *ids = grown;
        }
        if (rc == ANNB_OK) (*ids)[(*n)++] = id;
    }
    if (rc == ANNB_OK && ferror(f)) rc = ctx_fail(c, ANNB_E_IO, "%s: read error", path);
    if (rc == ANNB_OK && *n == 0) rc = ctx_fail(c, ANNB_E_INPUT, "%s: no user IDs", path);
    free(line);
    fclose(f);
    return rc;
}

static int run_batch(ctx *c)
{
    const options *o = c->o;
    const size_t k = (size_t)o->k;
    int64_t *qids = NULL;
    float *q = NULL;
    annb_hit *hits = NULL;
    size_t nq = 0;
    double t0 = now();
    int rc = o->mode == M_BATCH ? annb_vectors_from_csv(&qids, &q, &nq, c->dim, o->arg, &c->err)
                                : read_user_ids(c, o->arg, &qids, &nq);
    if (rc) goto out;
    if (nq > SIZE_MAX / k / sizeof *hits || !(hits = malloc(nq * k * sizeof *hits)) ||
        (!q && !(q = malloc(nq * c->dim * sizeof *q)))) {
        rc = ANNB_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; o->mode == M_BATCH_USERS && i < nq; i++) /* name an unknown user */
        if (annb_vector_get(c->users, ANNB_SPACE_USERS, qids[i], q) == ANNB_E_NOT_FOUND) {
            rc = ctx_fail(c, ANNB_E_NOT_FOUND, "%s: user %lld is not in the bundle", o->arg,
                          (long long)qids[i]);
            goto out;
        }
    double t1 = now();
    if (o->mode == M_BATCH)
        rc = annb_search_shards((const annb_bundle *const *)c->b, c->n, q, nq, k, &c->so, hits);
    else
        rc = recommend(c, qids, nq, k, q, hits);
    double t2 = now();
    if (rc) goto out;
    check_scores(c, ANNB_SPACE_ITEMS, hits, nq * k);
    print_batch(c, qids, nq, hits, k);
    if (o->verbose)
        cli_warn(prog, "%zu queries read in %.3f s, answered in %.3f s (%.0f queries/s), top %zu",
                 nq, t1 - t0, t2 - t1, nq / (t2 - t1 > 0 ? t2 - t1 : 1e-9), k);
out:
    free(qids);
    free(q);
    free(hits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Every user                                                                */
/* ------------------------------------------------------------------------ */

/* Users per recommend call: many, for the matrix multiply to pay, within
 * about 16 MB of results. */
#define ALL_USERS_BATCH(k) ((k) >= (1u << 20) / 1024 ? (1u << 20) / (k) + 1 : 1024)

/* A RESP bulk string: $LEN, then the bytes `a` followed by `b`. */
static void put_resp_arg(const char *a, const char *b)
{
    printf("$%zu\r\n%s%s\r\n", strlen(a) + strlen(b), a, b);
}

/* Redis commands for one user: DEL key, RPUSH key id..., EXPIRE key ttl.
 * A list keeps the rank order exactly; see docs/redis.md. */
static void print_resp_user(const ctx *c, const char *prefix, int64_t user, const annb_hit *h, size_t k)
{
    char uid[24], num[24];
    size_t m = 0;
    snprintf(uid, sizeof uid, "%lld", (long long)user);
    while (m < k && h[m].id != ANNB_ID_NONE) m++;
    printf("*2\r\n");
    put_resp_arg("DEL", "");
    put_resp_arg(prefix, uid);
    if (m) {
        printf("*%zu\r\n", m + 2);
        put_resp_arg("RPUSH", "");
        put_resp_arg(prefix, uid);
        for (size_t j = 0; j < m; j++) {
            snprintf(num, sizeof num, "%lld", (long long)h[j].id);
            put_resp_arg(num, "");
        }
    }
    if (m && c->o->ttl) {
        snprintf(num, sizeof num, "%lld", (long long)c->o->ttl);
        printf("*3\r\n");
        put_resp_arg("EXPIRE", "");
        put_resp_arg(prefix, uid);
        put_resp_arg(num, "");
    }
}

static void print_user_top(const ctx *c, const char *prefix, int64_t user, const annb_hit *h, size_t k)
{
    switch (c->o->fmt) {
    case OUT_RESP: print_resp_user(c, prefix, user, h, k); break;
    case OUT_JSON:
        printf("{\"user\":%lld,\"items\":[", (long long)user);
        for (size_t j = 0; j < k && h[j].id != ANNB_ID_NONE; j++) {
            printf("%s[%lld,", j ? "," : "", (long long)h[j].id);
            put_json_score(h[j].score);
            putchar(']');
        }
        printf("]}\n");
        break;
    default:
        for (size_t j = 0; j < k && h[j].id != ANNB_ID_NONE; j++)
            printf("%lld\t%zu\t%lld\t%.9g\n", (long long)user, j + 1, (long long)h[j].id,
                   (double)h[j].score);
    }
}

static int run_all_users(ctx *c)
{
    const options *o = c->o;
    const size_t k = (size_t)o->k;
    const uint64_t total = annb_space_count(c->users, ANNB_SPACE_USERS);
    const size_t batch = ALL_USERS_BATCH(k);
    int64_t *ids = malloc(batch * sizeof *ids);
    float *q = malloc(batch * c->dim * sizeof *q);
    annb_hit *hits = malloc(batch * k * sizeof *hits);
    char dflt[64];
    snprintf(dflt, sizeof dflt, "annb:%016llx:user:", (unsigned long long)annb_bundle_id(c->b[0]));
    const char *prefix = o->key_prefix ? o->key_prefix : dflt;
    int rc = ids && q && hits ? ANNB_OK : ANNB_E_NOMEM;
    double t0 = now();
    if (rc == ANNB_OK && o->fmt == OUT_TSV) printf("user\trank\titem\tscore\n");
    for (uint64_t at = 0; rc == ANNB_OK && at < total; at += batch) {
        size_t m = total - at < batch ? (size_t)(total - at) : batch;
        for (size_t i = 0; i < m; i++) ids[i] = annb_space_id(c->users, ANNB_SPACE_USERS, at + i);
        if ((rc = recommend(c, ids, m, k, q, hits))) break;
        check_scores(c, ANNB_SPACE_ITEMS, hits, m * k);
        for (size_t i = 0; i < m; i++) print_user_top(c, prefix, ids[i], hits + i * k, k);
    }
    double t = now() - t0;
    if (rc == ANNB_OK) {
        if (o->fmt == OUT_RESP)
            cli_warn(prog, "keys %s<user>%s", prefix, o->ttl ? ", with a TTL" : "");
        cli_warn(prog, "top %zu for %llu users in %.3f s (%.0f users/s)", k,
                 (unsigned long long)total, t, total / (t > 0 ? t : 1e-9));
    }
    free(ids);
    free(q);
    free(hits);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Serving                                                                   */
/* ------------------------------------------------------------------------ */

/* Whether a results answer holds a null score. The answer's shape is fixed
 * (docs/protocol.md): "results" is its last key, after the echoed id, so
 * the last `,"results":[` is the real one (inside a string the quotes would
 * be escaped), and in it `"score":null` can only be a score. */
static int has_null_score(const char *answer)
{
    const char *results = NULL;
    for (const char *p = answer; (p = strstr(p, ",\"results\":[")); p++) results = p;
    return results && strstr(results, "\"score\":null") != NULL;
}

/* One answer line; a NULL answer (out of memory) is fatal. */
static int put_answer(ctx *c, char *answer)
{
    if (!answer) return ANNB_E_NOMEM;
    puts(answer);
    annb_free(answer);
    if (fflush(stdout) != 0) return ctx_fail(c, ANNB_E_IO, "writing an answer failed");
    return ANNB_OK;
}

static int run_serve(ctx *c)
{
    static const char nul[] = "{\"id\":null,\"error\":{\"code\":\"bad_json\",\"message\":"
                              "\"the request contains a NUL byte\"}}";
    const size_t max = c->o->max_request ? (size_t)c->o->max_request : ANNB_SERVE_MAX_REQUEST_BYTES;
    char *line = NULL, *answer;
    size_t cap = 0, len, answered = 0;
    double t0 = now();
    int rc = ANNB_OK, got;
    while (rc == ANNB_OK && (got = annb_serve_read_line(stdin, max, &line, &cap, &len)) != 0) {
        if (got == ANNB_E_LIMIT) {
            answer = annb_serve_too_large(max);
        } else if (got < 0) {
            rc = got == ANNB_E_IO ? ctx_fail(c, ANNB_E_IO, "reading requests failed") : got;
            break;
        } else if (memchr(line, '\0', len)) {
            /* annb_serve_request reads a C string: a NUL would cut the line short. */
            answer = strdup(nul);
        } else {
            int ok = annb_serve_request((const annb_bundle *const *)c->b, c->n, line, &answer);
            if (ok == ANNB_OK && !c->warned_scores && answer && has_null_score(answer)) {
                if (c->n == 1)
                    cli_warn(prog, "bundle %s: non-finite scores (damaged vectors?); run "
                             "ann-inspect --verify", c->o->paths[0]);
                else
                    cli_warn(prog, "one of the %zu bundles: non-finite scores (damaged "
                             "vectors?); run ann-inspect --verify", c->n);
                c->warned_scores = 1;
            }
        }
        rc = put_answer(c, answer);
        answered++;
    }
    double t = now() - t0;
    if (c->o->verbose)
        cli_warn(prog, "%zu requests in %.3f s (%.0f requests/s)", answered, t,
                 answered / (t > 0 ? t : 1e-9));
    free(line);
    return rc;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    options o = {.k = 10};
    int status = parse_args(&o, argc, argv);
    if (status) {
        options_release(&o);
        return status < 0 ? EXIT_OK : status; /* -1: --help or --version done */
    }
    const char *bad = check_combination(&o);
    if (bad) {
        cli_warn(prog, "%s", bad);
        cli_warn(prog, "try '%s --help'", prog);
        options_release(&o);
        return EXIT_USAGE;
    }
    ctx c = {.o = &o, .so = ANNB_SEARCH_OPTS_INIT};
    int rc = open_bundles(&c);
    if (rc == ANNB_OK) rc = check_bundles(&c);
    if (rc == ANNB_OK && o.nexclude) rc = exclude_more(&c, o.exclude, o.nexclude);
    c.so.exclude_seen = o.exclude_seen && !o.seen_file;
    c.so.nprobe = o.nprobe;
    c.so.ef_search = o.ef_search;
    /* Batches (--batch, --batch-users, --all-users) keep every core busy
     * unless told otherwise: graph and IVF bundles share the questions out. */
    c.so.threads = (int)o.threads;
    if (!o.threads && !SINGLE(o.mode) && o.mode != M_SERVE) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        c.so.threads = cores > 1 ? (int)(cores < 1024 ? cores : 1024) : 1;
    }
    if (rc == ANNB_OK) {
        if (SINGLE(o.mode)) rc = run_single(&c);
        else if (o.mode == M_ALL_USERS) rc = run_all_users(&c);
        else if (o.mode == M_SERVE) rc = run_serve(&c);
        else rc = run_batch(&c);
    }
    if (rc == ANNB_OK && fflush(stdout) != 0) rc = ctx_fail(&c, ANNB_E_IO, "writing the results failed");
    status = EXIT_OK;
    if (rc != ANNB_OK) {
        if (c.err.code != rc || c.err.message[0]) cli_fail(prog, rc, &c.err); /* else reported */
        status = c.status ? c.status : cli_exit_code(rc);
    }
    for (size_t i = 0; i < c.n; i++) annb_close(c.b[i]);
    free(c.b);
    free((void *)c.so.exclude_ids);
    free(c.genres);
    free(c.genre_text);
    options_release(&o);
    return status;
}
