/* ann-inspect - describe a bundle (as text or JSON); with --verify, check all
 * of it; with --sha256, print a file's SHA-256 as sha256sum does. */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const prog = "ann-inspect";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ann-inspect BUNDLE [--verify] [--json] [--trust-faiss]\n"
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
            "  --sha256        print `HEX  FILE`, the SHA-256 of the whole file, exactly as\n"
            "                  sha256sum does, and nothing else\n"
            "  -h, --help      this help\n"
            "  -V, --version   library, format, Faiss and zstd versions\n"
            "\n"
            "Exit status: 0 ok (and verified, with --verify), 1 damaged or unsupported bundle,\n"
            "2 usage, 3 I/O error, 5 internal error.\n");
}

/* ------------------------------------------------------------------------ */
/* JSON output                                                               */
/* ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), 0 if invalid. The
 * second byte's range excludes overlong forms, surrogates and > U+10FFFF. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    if (len <= 1) return len;
    if (len > n) return 0;
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

/* s[0..n) as a JSON string: quotes, backslashes and control characters
 * escaped; a byte that is not valid UTF-8 (paths are bytes) becomes U+FFFD,
 * so the output is always valid JSON. */
static void json_mem(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    putchar('"');
    while (p < end) {
        size_t len = utf8_valid_prefix(p, (size_t)(end - p));
        if (len == 0) {
            fputs("\\ufffd", stdout);
            p++;
        } else if (*p == '"' || *p == '\\') {
            printf("\\%c", *p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            printf("\\u%04x", *p++);
        } else {
            fwrite(p, 1, len, stdout);
            p += len;
        }
    }
    putchar('"');
}

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

static void json_content(const annb_bundle *b)
{
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    printf(",\"metadata\":{\"items\":%" PRIu64 ",\"dimension\":%u,\"metric\":\"%s\",\"index\":",
           info.count, info.dimension, annb_metric_name(info.metric));
    json_string(info.index);
    printf(",\"catalog\":%s,\"genres\":%u,\"users\":%" PRIu64 ",\"interactions\":%s}",
           info.has_catalog ? "true" : "false", info.genre_count,
           annb_space_count(b, ANNB_SPACE_USERS), annb_bundle_has_seen(b) ? "true" : "false");
    const annb_recall_info *r = &info.recall;
    if (!info.has_recall)
        fputs(",\"recall\":null", stdout);
    else
        printf(",\"recall\":{\"measured\":%s,\"questions\":\"%s\",\"k\":%u,\"queries\":%u,"
               "\"target\":%.17g,\"recall\":%.17g,\"nprobe\":%u,\"ef_search\":%u,\"rerank\":%u}",
               r->measured ? "true" : "false", r->questions, r->k, r->queries, r->target,
               r->recall, r->nprobe, r->ef_search, r->rerank);
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

static void text_content(const annb_bundle *b)
{
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    uint64_t users = annb_space_count(b, ANNB_SPACE_USERS);
    printf("\nitems       %" PRIu64 "\ndimension   %u\nmetric      %s\nindex       %s\n"
           "catalog     %s (%u genres)\nusers       %" PRIu64 "%s\n",
           info.count, info.dimension, annb_metric_name(info.metric), info.index,
           info.has_catalog ? "yes" : "no", info.genre_count, users,
           annb_bundle_has_seen(b) ? " (with interactions)" : "");
    const annb_recall_info *r = &info.recall;
    if (!info.has_recall)
        printf("recall      not recorded (made before annb measured it)\n");
    else if (!r->measured)
        printf("recall      1 (exact search)\n");
    else
        printf("recall      %.4f at k=%u on %u questions from sampled %s, target %.2f%s\n", r->recall,
               r->k, r->queries, r->questions, r->target,
               r->recall < r->target ? " (NOT reached)" : "");
    if (r->nprobe) printf("search      nprobe %u (default for queries)\n", r->nprobe);
    if (r->rerank)
        printf("rerank      %u x k candidates get their exact score from the vectors\n", r->rerank);
    if (r->ef_search) printf("search      efSearch %u (default for queries)\n", r->ef_search);
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

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"verify", no_argument, NULL, 'v'}, {"json", no_argument, NULL, 'j'},
        {"sha256", no_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'}, {"trust-faiss", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    int verify = 0, json = 0, sha = 0, trust = 0, c;
    opterr = 0; /* cli_bad_option reports */
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'v': verify = 1; break;
        case 'j': json = 1; break;
        case 's': sha = 1; break;
        case 'R': trust = 1; break;
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
    if (sha) return print_sha256(path);

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
    rc = annb_open(&b, path, &oo, &err);
    if (rc == ANNB_OK) {
        if (json) json_content(b);
        else text_content(b);
        if (verify) {
            rc = annb_verify(b, &err);
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
