/* ann-query - top-k answers from a bundle, with IDs, scores, titles, genres. */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const prog = "ann-query";

typedef enum { OUT_TABLE, OUT_TSV, OUT_JSON } out_format;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ann-query BUNDLE QUESTION [-k N] [--format table|tsv|json]\n"
            "\n"
            "QUESTION is one of:\n"
            "  --user-vec FILE:ID   items for the vector of ID in an embeddings file\n"
            "                       (e.g. the users.csv of the same training job)\n"
            "  --item ID            items similar to item ID (the item itself excluded)\n"
            "  --vec VECTOR         items for a vector: '[0.1, 0.2, ...]' or 0.1,0.2,...\n"
            "\n"
            "  -k N                 number of results (default 10)\n"
            "  -f, --format F       table (default), tsv or json\n"
            "  -h, --help           this help\n"
            "  -V, --version        library, format, Faiss and zstd versions\n"
            "\n"
            "Scores: ip and cosine are similarities (higher first); l2 is the squared\n"
            "Euclidean distance (lower first).\n"
            "Exit status: 0 ok, 1 bad data or damaged/unsupported bundle, 2 usage,\n"
            "3 I/O error (e.g. missing file), 4 unknown ID, 5 internal error.\n");
}

/* Writes s with JSON string escaping (titles are valid UTF-8). */
static void put_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

/* Writes s for TSV: tab, newline and backslash escaped. */
static void put_tsv_field(const char *s)
{
    for (; *s; s++) {
        if (*s == '\t') fputs("\\t", stdout);
        else if (*s == '\n') fputs("\\n", stdout);
        else if (*s == '\r') fputs("\\r", stdout);
        else if (*s == '\\') fputs("\\\\", stdout);
        else putchar(*s);
    }
}

/* Writes s and pads it to `width` characters (UTF-8 code points, not bytes,
 * so accented titles line up). */
static void put_padded(const char *s, size_t width)
{
    size_t chars = 0;
    for (const char *p = s; *p; p++) chars += ((unsigned char)*p & 0xC0) != 0x80;
    fputs(s, stdout);
    for (; chars < width; chars++) putchar(' ');
}

static void print_results(const annb_bundle *b, const annb_bundle_info *info, const char *question,
                          const annb_hit *hits, size_t k, out_format fmt)
{
    char genres[1024];
    const char *metric = annb_metric_name(info->metric);
    if (fmt == OUT_TABLE)
        printf("# %s, metric %s (%s), index %s\n%4s  %10s  %12s  %-50s  %s\n", question, metric,
               info->metric == ANNB_METRIC_L2 ? "squared distance, lower is closer"
                                              : "similarity, higher is closer",
               info->index, "rank", "id", "score", "title", "genres");
    else if (fmt == OUT_TSV)
        printf("rank\tid\tscore\ttitle\tgenres\n");
    else {
        printf("{\"question\":");
        put_json_string(question);
        printf(",\"metric\":\"%s\",\"index\":", metric);
        put_json_string(info->index);
        printf(",\"results\":[");
    }
    size_t shown = 0;
    for (size_t j = 0; j < k; j++) {
        if (hits[j].id == ANNB_ID_NONE) break;
        const char *title = annb_item_title(b, hits[j].id);
        if (annb_item_genres(b, hits[j].id, genres, sizeof genres) < 0) genres[0] = '\0';
        long long id = (long long)hits[j].id;
        if (fmt == OUT_TABLE) {
            printf("%4zu  %10lld  %12.6f  ", j + 1, id, (double)hits[j].score);
            put_padded(title ? title : "-", 50);
            printf("  %s\n", genres);
        } else if (fmt == OUT_TSV) {
            printf("%zu\t%lld\t%.9g\t", j + 1, id, (double)hits[j].score);
            put_tsv_field(title ? title : "");
            putchar('\t');
            put_tsv_field(genres);
            putchar('\n');
        } else {
            printf("%s{\"rank\":%zu,\"id\":%lld,\"score\":%.9g,\"title\":", j ? "," : "", j + 1,
                   id, (double)hits[j].score);
            if (title) put_json_string(title);
            else fputs("null", stdout);
            printf(",\"genres\":[");
            char *save = NULL, *g = strtok_r(genres, "|", &save);
            for (int first = 1; g; g = strtok_r(NULL, "|", &save), first = 0) {
                if (!first) putchar(',');
                put_json_string(g);
            }
            printf("]}");
        }
        shown++;
    }
    if (fmt == OUT_JSON) printf("]}\n");
    if (shown < k) cli_warn(prog, "only %zu of %zu results: the bundle has fewer items", shown, k);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"user-vec", required_argument, NULL, 'u'}, {"item", required_argument, NULL, 'I'},
        {"vec", required_argument, NULL, 'v'},      {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *user_vec = NULL, *item = NULL, *vec = NULL;
    out_format fmt = OUT_TABLE;
    int64_t k = 10;
    int c;
    opterr = 0; /* cli_bad_option reports */
    while ((c = getopt_long(argc, argv, "k:f:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': user_vec = optarg; break;
        case 'I': item = optarg; break;
        case 'v': vec = optarg; break;
        case 'k':
            if (cli_parse_i64(optarg, &k) || k < 1 || k > 100000) {
                cli_warn(prog, "-k expects a number from 1 to 100000, not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'f':
            if (strcmp(optarg, "table") == 0) fmt = OUT_TABLE;
            else if (strcmp(optarg, "tsv") == 0) fmt = OUT_TSV;
            else if (strcmp(optarg, "json") == 0) fmt = OUT_JSON;
            else {
                cli_warn(prog, "unknown format '%s' (expected table, tsv or json)", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("%s\n", annb_version()); return EXIT_OK;
        default: return cli_bad_option(prog, argv);
        }
    }
    if (argc - optind != 1 || !!user_vec + !!item + !!vec != 1) {
        cli_warn(prog, argc - optind != 1 ? "expected exactly one BUNDLE"
                                          : "expected exactly one of --user-vec, --item, --vec");
        usage(stderr);
        return EXIT_USAGE;
    }
    int64_t id = 0;
    const char *user_file = NULL;
    char *user_copy = NULL;
    if (user_vec) {
        const char *colon = strrchr(user_vec, ':');
        if (!colon || colon == user_vec || cli_parse_i64(colon + 1, &id)) {
            cli_warn(prog, "--user-vec expects FILE:ID, not '%s'", user_vec);
            return EXIT_USAGE;
        }
        user_copy = strndup(user_vec, (size_t)(colon - user_vec));
        user_file = user_copy;
    }
    if (item && cli_parse_i64(item, &id)) {
        cli_warn(prog, "--item expects an integer ID, not '%s'", item);
        return EXIT_USAGE;
    }

    annb_error err = {0};
    annb_bundle *b = NULL;
    annb_bundle_info info;
    float *q = NULL;
    annb_hit *hits = NULL;
    char question[512];
    int rc = annb_open(&b, argv[optind], NULL, &err);
    if (rc) goto fail;
    annb_bundle_info_get(&info, b);
    q = malloc(info.dimension * sizeof *q);
    hits = malloc((size_t)k * sizeof *hits);
    if (!q || !hits) {
        rc = ANNB_E_NOMEM;
        goto fail;
    }
    annb_search_opts sopts = ANNB_SEARCH_OPTS_INIT;
    if (user_file) {
        rc = annb_vector_from_csv(q, info.dimension, user_file, id, &err);
        snprintf(question, sizeof question, "items for user %lld of %s", (long long)id, user_file);
    } else if (item) {
        rc = annb_item_vector(b, id, q);
        if (rc == ANNB_E_NOT_FOUND) {
            err.code = rc;
            snprintf(err.message, sizeof err.message, "%s: item %lld is not in the bundle",
                     argv[optind], (long long)id);
        }
        sopts.exclude_ids = &id;
        sopts.exclude_count = 1;
        const char *title = annb_item_title(b, id);
        snprintf(question, sizeof question, "items similar to item %lld%s%s%s", (long long)id,
                 title ? " (" : "", title ? title : "", title ? ")" : "");
    } else {
        rc = annb_vector_parse(q, info.dimension, vec, &err);
        snprintf(question, sizeof question, "items for the given vector");
    }
    if (rc) goto fail;
    if ((rc = annb_search(b, q, 1, (size_t)k, &sopts, hits))) goto fail;
    print_results(b, &info, question, hits, (size_t)k, fmt);
    if (fflush(stdout) != 0) {
        cli_warn(prog, "writing the results failed");
        rc = ANNB_E_IO;
    }
fail:;
    int status = rc ? cli_fail(prog, rc, &err) : EXIT_OK;
    free(q);
    free(hits);
    free(user_copy);
    annb_close(b);
    return status;
}
