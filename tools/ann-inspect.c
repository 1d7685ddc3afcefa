/* ann-inspect - describe a bundle; with --verify, check all of it. */
#define _POSIX_C_SOURCE 200809L
#include "annb.h"
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

static const char *const prog = "ann-inspect";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ann-inspect BUNDLE [--verify]\n"
            "\n"
            "Prints the header, the section table and the metadata of a bundle.\n"
            "  --verify        also check every section's checksum and decoded size, and the\n"
            "                  meaning (IDs sorted and unique, counts, catalog offsets, Faiss\n"
            "                  index agreeing with the metadata)\n"
            "  -h, --help      this help\n"
            "  -V, --version   library, format, Faiss and zstd versions\n"
            "\n"
            "Exit status: 0 ok (and verified, with --verify), 1 damaged or unsupported bundle,\n"
            "2 usage, 3 I/O error, 5 internal error.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"verify", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0},
    };
    int verify = 0, c;
    opterr = 0; /* cli_bad_option reports */
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'v': verify = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("%s\n", annb_version()); return EXIT_OK;
        default: return cli_bad_option(prog, argv);
        }
    }
    if (argc - optind != 1) {
        cli_warn(prog, "expected exactly one BUNDLE");
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    annb_error err = {0};
    annb_bundle *b = NULL;
    /* The structure alone first, so that a bundle with a damaged section can
     * still be described; then the content, which reports that damage. */
    annb_open_opts oo = ANNB_OPEN_OPTS_INIT;
    oo.flags = ANNB_OPEN_STRUCTURE_ONLY;
    int rc = annb_open(&b, path, &oo, &err);
    if (rc) return cli_fail(prog, rc, &err);

    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    printf("bundle      %s\nformat      %u.%u\nfile size   %" PRIu64 " bytes\n"
           "features    required 0x%" PRIx64 ", optional 0x%" PRIx64 "\nsections    %u\n\n",
           path, info.format_major, info.format_minor, info.file_size, info.required_features,
           info.optional_features, info.section_count);
    printf("%-4s  %-8s  %-4s  %12s  %12s  %12s  %12s  %-16s\n", "kind", "critical", "codec",
           "offset", "stored", "decoded", "elements", "xxh3-64");
    for (uint32_t i = 0; i < info.section_count; i++) {
        annb_section_info s;
        annb_section_info_get(&s, b, i);
        printf("%-4s  %-8s  %-4s  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64
               "  %016" PRIx64 "\n",
               s.kind, s.critical ? "yes" : "no", s.codec, s.offset, s.stored_size,
               s.decoded_size, s.element_count, s.checksum);
    }
    annb_close(b);

    b = NULL;
    if ((rc = annb_open(&b, path, NULL, &err))) return cli_fail(prog, rc, &err);
    annb_bundle_info_get(&info, b);
    printf("\nitems       %" PRIu64 "\ndimension   %u\nmetric      %s\nindex       %s\n"
           "catalog     %s (%u genres)\n",
           info.count, info.dimension, annb_metric_name(info.metric), info.index,
           info.has_catalog ? "yes" : "no", info.genre_count);
    if (verify) {
        rc = annb_verify(b, &err);
        if (rc == ANNB_OK) printf("verify      ok: every checksum, size and invariant holds\n");
    }
    annb_close(b);
    if (fflush(stdout) != 0) return cli_fail(prog, ANNB_E_IO, NULL);
    return rc ? cli_fail(prog, rc, &err) : EXIT_OK;
}
