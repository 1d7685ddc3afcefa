/* ann-inspect - describe a bundle (as text or JSON); with --verify, check all
 * of it; with --sha256, print a file's SHA-256 as sha256sum does. */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const prog = "ann-inspect";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ann-inspect BUNDLE [--verify] [--json] [--trust-faiss]\n"
            "       ann-inspect BUNDLE --recall QUERIES [-k K] [--target-recall R] [--json]\n"
            "       ann-inspect --sha256 FILE\n"
            "\n"
            "Prints the header, the section table, the metadata and the provenance (how the\n"
            "bundle was built: versions, options, a digest of each input's content).\n"
            "  --verify        also check every section's checksum and decoded size, and the\n"
            "                  meaning (IDs sorted and unique, counts, catalog offsets, Faiss\n"
            "                  index agreeing with the metadata, walked by annb's checker)\n"
            "  --trust-faiss   let Faiss read a Faiss index type annb's checker does not know\n"
            "                  (only for bundles from a trusted source)\n"
            "  --json          the same description as one JSON object on stdout\n"
            "  --recall FILE   audit: measure recall@k of the bundle's index on the query\n"
            "                  vectors of FILE (any embeddings file, e.g. this week's users)\n"
            "                  against exact search over the bundle's own vectors, at the\n"
            "                  stored parameter, and find the parameter that reaches the\n"
            "                  target, with the latency of each; exit 6 when the stored\n"
            "                  parameter falls short of the target on these queries\n"
            "  -k K            k of that recall (default 10)\n"
            "  --target-recall R  the target to check (default: the bundle's own)\n"
            "  --sha256        print `HEX  FILE`, the SHA-256 of the whole file, exactly as\n"
            "                  sha256sum does, and nothing else\n"
            "  -q, --quiet     print nothing on stdout: the exit status tells whether the\n"
            "                  bundle opens (and, with --verify, verifies); errors on stderr\n"
            "  -v, --verbose   also how long opening and --verify took, on stderr\n"
            "  -h, --help      this help\n"
            "  -V, --version   library, format, Faiss and zstd versions\n"
            "\n"
            "Exit status: 0 ok (and verified, with --verify), 1 damaged or unsupported bundle,\n"
            "2 usage, 3 I/O error, 5 internal error, 6 recall below the target (--recall).\n");
}

/* ------------------------------------------------------------------------ */
/* JSON output                                                               */
/* ------------------------------------------------------------------------ */

/* s[0..n) as a JSON string: valid JSON and UTF-8 whatever the bytes (paths
 * are bytes); the one rule of the tools (cli.h). */
static void json_mem(const char *s, size_t n) { cli_put_json_mem(stdout, s, n); }

static void json_string(const char *s) { json_mem(s, strlen(s)); }

static void json_key(const char *key, size_t len, int first)
{
    if (!first) putchar(',');
    json_mem(key, len);
    putchar(':');
}

/* {"code":-8,"name":"checksum mismatch","message":"PATH: at byte ..."} */
static void json_error(int rc, const annb_error *err, const char *prefix)
{
    printf("{%s\"code\":%d,\"name\":", prefix, rc);
    json_string(annb_strerror(rc));
    fputs(",\"message\":", stdout);
    json_string(err->code == rc && err->message[0] ? err->message : annb_strerror(rc));
    putchar('}');
}

/* The provenance lines as an object of strings. The library has checked
 * them (SPEC 6.13): each line is `key=value`, keys unique. */
static void json_provenance(const char *text)
{
    if (!text) {
        fputs("null", stdout);
        return;
    }
    putchar('{');
    for (int first = 1; *text; first = 0) {
        const char *eq = strchr(text, '='), *nl = strchr(eq, '\n');
        json_key(text, (size_t)(eq - text), first);
        json_mem(eq + 1, (size_t)(nl - eq - 1));
        text = nl + 1;
    }
    putchar('}');
}

static void json_structure(const char *path, const annb_bundle *b, const annb_bundle_info *info)
{
    fputs("{\"bundle\":", stdout);
    json_string(path);
    printf(",\"format\":\"%u.%u\",\"file_size\":%" PRIu64 ",\"required_features\":\"0x%" PRIx64
           "\",\"optional_features\":\"0x%" PRIx64 "\",\"sections\":[",
           info->format_major, info->format_minor, info->file_size, info->required_features,
           info->optional_features);
    for (uint32_t i = 0; i < info->section_count; i++) {
        annb_section_info s;
        annb_section_info_get(&s, b, i);
        printf("%s{\"kind\":", i ? "," : "");
        json_string(s.kind); /* printable ASCII, checked by the parser */
        printf(",\"critical\":%s,\"codec\":\"%s\",\"offset\":%" PRIu64 ",\"stored_size\":%" PRIu64
               ",\"decoded_size\":%" PRIu64 ",\"element_count\":%" PRIu64
               ",\"checksum\":\"%016" PRIx64 "\"}",
               s.critical ? "true" : "false", s.codec, s.offset, s.stored_size, s.decoded_size,
               s.element_count, s.checksum);
    }
    putchar(']');
}

/* What a space's IDs are: "string" (SPEC 6.19: keys stored beside them) or
 * "integer". */
static const char *id_kind(const annb_bundle *b, annb_space space)
{
    return annb_space_has_keys(b, space) ? "string" : "integer";
}

static void json_content(const annb_bundle *b)
{
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    printf(",\"metadata\":{\"items\":%" PRIu64 ",\"dimension\":%u,\"metric\":\"%s\",\"index\":",
           info.count, info.dimension, annb_metric_name(info.metric));
    json_string(info.index);
    printf(",\"catalog\":%s,\"genres\":%u,\"users\":%" PRIu64 ",\"interactions\":%s,"
           "\"item_ids\":\"%s\",\"user_ids\":\"%s\"}",
           info.has_catalog ? "true" : "false", info.genre_count,
           annb_space_count(b, ANNB_SPACE_USERS), annb_bundle_has_seen(b) ? "true" : "false",
           id_kind(b, ANNB_SPACE_ITEMS), id_kind(b, ANNB_SPACE_USERS));
    const annb_recall_info *r = &info.recall;
    if (!info.has_recall)
        fputs(",\"recall\":null", stdout);
    else
        printf(",\"recall\":{\"measured\":%s,\"questions\":\"%s\",\"k\":%u,\"queries\":%u,"
               "\"target\":%.17g,\"recall\":%.17g,\"nprobe\":%u,\"ef_search\":%u,\"rerank\":%u}",
               r->measured ? "true" : "false", r->questions, r->k, r->queries, r->target,
               r->recall, r->nprobe, r->ef_search, r->rerank);
    fputs(",\"recall_by_k\":[", stdout);
    for (uint32_t i = 0; i < annb_recall_count(b); i++) {
        annb_recall_info x;
        annb_recall_get(&x, b, i);
        printf("%s{\"k\":%u,\"queries\":%u,\"recall\":%.17g,\"nprobe\":%u,\"ef_search\":%u}",
               i ? "," : "", x.k, x.queries, x.recall, x.nprobe, x.ef_search);
    }
    putchar(']');
    if (info.has_recall && r->measured && strcmp(r->questions, "items") == 0) {
        fputs(",\"warning\":", stdout);
        json_string(CLI_ITEM_RECALL_WARNING);
    }
    fputs(",\"provenance\":", stdout);
    json_provenance(annb_bundle_provenance(b));
}

/* ------------------------------------------------------------------------ */
/* Text output                                                               */
/* ------------------------------------------------------------------------ */

static void text_structure(const char *path, const annb_bundle *b, const annb_bundle_info *info)
{
    printf("bundle      %s\nformat      %u.%u\nfile size   %" PRIu64 " bytes\n"
           "features    required 0x%" PRIx64 ", optional 0x%" PRIx64 "\nsections    %u\n\n",
           path, info->format_major, info->format_minor, info->file_size,
           info->required_features, info->optional_features, info->section_count);
    printf("%-4s  %-8s  %-4s  %12s  %12s  %12s  %12s  %-16s\n", "kind", "critical", "codec",
           "offset", "stored", "decoded", "elements", "xxh3-64");
    for (uint32_t i = 0; i < info->section_count; i++) {
        annb_section_info s;
        annb_section_info_get(&s, b, i);
        printf("%-4s  %-8s  %-4s  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64
               "  %016" PRIx64 "\n",
               s.kind, s.critical ? "yes" : "no", s.codec, s.offset, s.stored_size,
               s.decoded_size, s.element_count, s.checksum);
    }
}

/* One line per k measured (format 1.1 bundles: the one TUNE records). */
static void text_recall(const annb_bundle *b, const annb_recall_info *r)
{
    uint32_t n = annb_recall_count(b);
    for (uint32_t i = 0; i < (n ? n : 1); i++) {
        annb_recall_info x = *r;
        if (n) annb_recall_get(&x, b, i);
        char param[48] = "";
        if (x.nprobe || x.ef_search)
            snprintf(param, sizeof param, " at %s %u", x.nprobe ? "nprobe" : "efSearch",
                     x.nprobe ? x.nprobe : x.ef_search);
        printf("%-10s  recall@%u %.4f%s on %u %s questions, target %g%s\n", i ? "" : "recall",
               x.k, x.recall, param, x.queries, cli_questions(x.questions), x.target,
               x.recall < x.target ? " (NOT reached)" : "");
    }
    if (r->rerank)
        printf("rerank      %u x k candidates get their exact score from the vectors\n", r->rerank);
    printf("search      a search of k results uses the parameter of the smallest k measured "
           "at or above it\n");
    if (strcmp(r->questions, "items") == 0) printf("%-10s  %s\n", "", CLI_ITEM_RECALL_WARNING);
}

static void text_content(const annb_bundle *b)
{
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    uint64_t users = annb_space_count(b, ANNB_SPACE_USERS);
    const int item_keys = annb_space_has_keys(b, ANNB_SPACE_ITEMS);
    const int user_keys = annb_space_has_keys(b, ANNB_SPACE_USERS);
    const int seen = annb_bundle_has_seen(b);
    printf("\nitems       %" PRIu64 "%s\ndimension   %u\nmetric      %s\nindex       %s\n"
           "catalog     %s (%u genres)\nusers       %" PRIu64 "%s%s%s%s\n",
           info.count, item_keys ? " (string IDs)" : "", info.dimension,
           annb_metric_name(info.metric), info.index, info.has_catalog ? "yes" : "no",
           info.genre_count, users, user_keys || seen ? " (" : "", user_keys ? "string IDs" : "",
           user_keys && seen ? ", " : "", seen ? "with interactions)" : user_keys ? ")" : "");
    const annb_recall_info *r = &info.recall;
    if (!info.has_recall)
        printf("recall      not recorded (made before annb measured it)\n");
    else if (!r->measured)
        printf("recall      1 (exact search)\n");
    else
        text_recall(b, r);
    /* Checked by the library: UTF-8 without control characters, so it is
     * printed as it is. */
    const char *prov = annb_bundle_provenance(b);
    if (!prov) {
        printf("provenance  none\n");
        return;
    }
    for (const char *label = "provenance"; *prov; label = "") {
        const char *nl = strchr(prov, '\n');
        printf("%-10s  %.*s\n", label, (int)(nl - prov), prov);
        prov = nl + 1;
    }
}

/* ------------------------------------------------------------------------ */

/* `HEX  PATH` as sha256sum prints it: a name holding a backslash or a line
 * feed is escaped, and the line then starts with a backslash. */
static int print_sha256(const char *path)
{
    char hex[65];
    annb_error err = {0};
    int rc = annb_file_sha256(hex, path, &err);
    if (rc) return cli_fail(prog, rc, &err);
    int escape = strpbrk(path, "\\\n") != NULL;
    printf("%s%s  ", escape ? "\\" : "", hex);
    for (const char *p = path; *p; p++) {
        if (escape && *p == '\\') fputs("\\\\", stdout);
        else if (escape && *p == '\n') fputs("\\n", stdout);
        else putchar(*p);
    }
    putchar('\n');
    return fflush(stdout) == 0 ? EXIT_OK : cli_fail(prog, ANNB_E_IO, NULL);
}

/* --recall: the audit (annb_recall_audit_run) on the vectors of `file`. */
static int audit(const char *path, const char *file, uint32_t k, double target, int json,
                 unsigned flags)
{
    annb_error err = {0};
    annb_bundle *b = NULL;
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = flags;
    int rc = annb_open(&b, path, &oo, &err);
    if (rc) return cli_fail(prog, rc, &err);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    int64_t *ids = NULL;
    float *vecs = NULL;
    size_t n = 0;
    annb_recall_audit a;
    rc = annb_vectors_from_csv(&ids, &vecs, &n, info.dimension, file, &err);
    if (rc == ANNB_OK) rc = annb_recall_audit_run(&a, b, vecs, n, k, target, &err);
    annb_free(ids);
    annb_free(vecs);
    annb_close(b);
    if (rc) return cli_fail(prog, rc, &err);
    const char *param = a.parameter ? a.parameter : "";
    if (json) {
        printf("{\"bundle\":");
        json_string(path);
        printf(",\"queries_file\":");
        json_string(file);
        printf(",\"k\":%u,\"queries\":%u,\"target\":%.17g,\"parameter\":", a.k, a.queries,
               a.target);
        if (a.parameter) json_string(a.parameter);
        else fputs("null", stdout);
        printf(",\"stored\":{\"value\":%u,\"recall\":%.17g,\"ms_per_query\":%.6g},"
               "\"reached\":%s,\"best\":{\"value\":%u,\"recall\":%.17g,\"ms_per_query\":%.6g},"
               "\"highest\":%u}\n",
               a.stored_value, a.stored_recall, a.stored_ms, a.reached ? "true" : "false", a.value,
               a.recall, a.ms, a.highest);
    } else if (!a.parameter && info.recall.measured == 0) {
        printf("recall@%u 1 on %u queries of %s: exact search, %.3f ms per query\n", a.k,
               a.queries, file, a.stored_ms);
    } else {
        printf("recall@%u %.4f on %u queries of %s at the stored %s %u, %.3f ms per query%s\n",
               a.k, a.stored_recall, a.queries, file, param, a.stored_value, a.stored_ms,
               a.stored_recall < a.target ? " (BELOW the target)" : "");
        if (a.reached)
            printf("target %g reached at %s %u: recall@%u %.4f, %.3f ms per query\n", a.target,
                   param, a.value, a.k, a.recall, a.ms);
        else
            printf("target %g NOT reachable with this index: best recall@%u %.4f at %s %u "
                   "(searched 1..%u), %.3f ms per query; rebuild with another index\n",
                   a.target, a.k, a.recall, param, a.value, a.highest, a.ms);
    }
    if (fflush(stdout) != 0) return cli_fail(prog, ANNB_E_IO, NULL);
    return a.stored_recall >= a.target ? EXIT_OK : EXIT_RECALL;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* -q: open (and verify), print nothing but errors. */
static int check(const char *path, int verify, unsigned flags)
{
    annb_error err = {0};
    annb_bundle *b = NULL;
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = flags;
    int rc = annb_open(&b, path, &oo, &err);
    if (rc == ANNB_OK && verify) rc = annb_verify(b, &err);
    annb_close(b);
    return rc ? cli_fail(prog, rc, &err) : EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"verify", no_argument, NULL, 'y'}, {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'}, {"verbose", no_argument, NULL, 'v'},
        {"sha256", no_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'}, {"recall", required_argument, NULL, 'r'},
        {"target-recall", required_argument, NULL, 'R'}, {"trust-faiss", no_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    int verify = 0, json = 0, sha = 0, trust = 0, quiet = 0, verbose = 0, c;
    const char *recall_file = NULL;
    int64_t k = 10;
    double target = 0;
    char *end;
    opterr = 0; /* cli_bad_option reports */
    while ((c = getopt_long(argc, argv, "hVk:qv", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': recall_file = optarg; break;
        case 'k':
            if (cli_parse_i64(optarg, &k) || k < 1 || k > ANNB_SERVE_MAX_K) {
                cli_warn(prog, "-k expects a number from 1 to %d, not '%s'", ANNB_SERVE_MAX_K, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'R':
            target = strtod(optarg, &end);
            if (end == optarg || *end || !(target > 0 && target <= 1)) {
                cli_warn(prog, "--target-recall expects a number above 0 and at most 1, not '%s'",
                         optarg);
                return EXIT_USAGE;
            }
            break;
        case 'y': verify = 1; break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'j': json = 1; break;
        case 's': sha = 1; break;
        case 'T': trust = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("%s\n", annb_version()); return EXIT_OK;
        default: return cli_bad_option(prog, argv);
        }
    }
    if (argc - optind != 1 || (sha && (verify || json))) {
        cli_warn(prog, sha && (verify || json) ? "--sha256 goes alone (no --verify or --json)"
                                               : "expected exactly one BUNDLE");
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    if (strcmp(path, "-") == 0) {
        cli_warn(prog, "%s", CLI_BUNDLE_NOT_STDIN);
        return EXIT_USAGE;
    }
    if (quiet && (sha || json || recall_file || verbose)) {
        cli_warn(prog, "-q goes with a BUNDLE and --verify only");
        return EXIT_USAGE;
    }
    if (quiet) return check(path, verify, trust ? ANNB_OPEN_TRUST_FAISS : 0);
    if (sha) return print_sha256(path);
    if (recall_file && verify) {
        cli_warn(prog, "--recall goes without --verify");
        return EXIT_USAGE;
    }
    if (recall_file)
        return audit(path, recall_file, (uint32_t)k, target, json,
                     trust ? ANNB_OPEN_TRUST_FAISS : 0);

    annb_error err = {0};
    annb_bundle *b = NULL;
    /* The structure alone first, so that a bundle with a damaged section can
     * still be described; then the content, which reports that damage. */
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = ANNB_OPEN_STRUCTURE_ONLY;
    int rc = annb_open(&b, path, &oo, &err);
    oo.flags = trust ? ANNB_OPEN_TRUST_FAISS : 0;
    if (rc) return cli_fail(prog, rc, &err);
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    if (json) json_structure(path, b, &info);
    else text_structure(path, b, &info);
    annb_close(b);

    b = NULL;
    double t0 = seconds();
    rc = annb_open(&b, path, &oo, &err);
    if (rc == ANNB_OK && verbose)
        cli_warn(prog, "opened %s (%" PRIu64 " bytes) in %.3f ms", path, info.file_size,
                 (seconds() - t0) * 1e3);
    if (rc == ANNB_OK) {
        if (json) json_content(b);
        else text_content(b);
        if (verify) {
            t0 = seconds();
            rc = annb_verify(b, &err);
            if (rc == ANNB_OK && verbose) cli_warn(prog, "verified in %.3f ms", (seconds() - t0) * 1e3);
            if (json) {
                fputs(",\"verify\":", stdout);
                if (rc) json_error(rc, &err, "\"ok\":false,");
                else fputs("{\"ok\":true}", stdout);
            } else if (rc == ANNB_OK) {
                printf("verify      ok: every checksum, size and invariant holds\n");
            }
        }
        annb_close(b);
    } else if (json) { /* the structure was readable, its content is not */
        fputs(",\"metadata\":null,\"provenance\":null,\"error\":", stdout);
        json_error(rc, &err, "");
    }
    if (json) puts("}");
    if (fflush(stdout) != 0) return cli_fail(prog, ANNB_E_IO, NULL);
    return rc ? cli_fail(prog, rc, &err) : EXIT_OK;
}
