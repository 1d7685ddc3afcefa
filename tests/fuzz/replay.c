/*
 * replay.c - runs a fuzz harness over a checked-in corpus, without libFuzzer.
 *
 *   fuzz_replay_X DIR...
 *
 * Calls LLVMFuzzerTestOneInput once for every regular file in each DIR (in
 * name order, so a failure is reproducible), each in an exactly sized heap
 * buffer. Built with any C compiler, so CTest replays the corpus on every
 * build: an input that once crashed a harness stays fixed. A crash or a
 * failed invariant aborts; exit 0 means every file ran, 1 a usage or I/O
 * problem (an empty corpus counts as one: it would test nothing).
 */
#define _GNU_SOURCE /* scandir, alphasort */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads path into a malloc'd buffer of exactly its size (1 byte if empty). */
static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size >= 0) {
        *size = (size_t)st.st_size;
        buf = malloc(*size ? *size : 1);
        if (buf && fread(buf, 1, *size, f) != *size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int is_regular(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int replay_dir(const char *dir, size_t *ran)
{
    struct dirent **names;
    int n = scandir(dir, &names, is_regular, alphasort);
    if (n < 0) {
        perror(dir);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t size = 0;
            uint8_t *data = read_all(path, &size);
            if (!data) {
                perror(path);
                rc = 1;
            } else {
                /* Named before the run: a crash's last line says which input. */
                fprintf(stderr, "replay %s (%zu bytes)\n", path, size);
                LLVMFuzzerTestOneInput(data, size);
                free(data);
                (*ran)++;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
        return 1;
    }
    size_t ran = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) rc |= replay_dir(argv[i], &ran);
    printf("%zu inputs replayed\n", ran);
    if (ran == 0) {
        fprintf(stderr, "%s: no input found\n", argv[0]);
        return 1;
    }
    return rc;
}
