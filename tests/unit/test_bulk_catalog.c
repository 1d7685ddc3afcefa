/*
 * test_bulk_catalog - the catalog (TOFF, TTLS, GBIT) and the interactions
 * (SOFF, SEEN) are bulk sections (SPEC 3.11): read in place, unchecked at
 * open. A sound bundle answers with the titles, genres and seen lists the
 * test wrote; crafted ones (every checksum valid, IDS among them) open, and everything that
 * reads those sections gives a right, empty or ANNB_E_CORRUPT answer,
 * never a read outside the file (ASan in `make sanitize`), while
 * annb_verify and ANNB_OPEN_VERIFY_ALL refuse them naming the section.
 */
#include "annb.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define N 120 /* items */
#define U 12  /* users */
#define D 4
#define K 8

static const char *const genre_names[] = {"Action", "Comedy", "Drama", "Sci-Fi"};
#define NG 4

typedef struct fixture {
    char dir[256], items[512], users[512], movies[512], ratings[512], bundle[512];
    tu_data it, us;
    unsigned genres[N];       /* by item row (file order): bit g = genre_names[g] */
    unsigned char seen[U][N]; /* by user row and item row (file order) */
} fixture;

/* Rows 5, 10, ... have no catalog entry: an empty title, no genres. */
static int has_entry(size_t r) { return r % 5 != 0; }

static void title_of(char *buf, size_t size, int64_t id)
{
    snprintf(buf, size, "Film %lld (19%02lld)", (long long)id, (long long)(id < 0 ? -id : id) % 100);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_rng r;
    tu_items_setup(&fx->it, &r, fx->dir, fx->items, N, D, 1311);
    int64_t uids[U];
    for (size_t u = 0; u < U; u++) uids[u] = (int64_t)(u * 17 + 3);
    tu_data_make(&fx->us, U, D, uids, &r);
    tu_write_spark_csv(tu_path(fx->users, fx->dir, "users.csv"), &fx->us);
    FILE *f = fopen(tu_path(fx->movies, fx->dir, "movies.dat"), "w");
    assert_non_null(f);
    for (size_t i = 0; i < N; i++) {
        if (!has_entry(i)) continue;
        char t[64];
        title_of(t, sizeof t, fx->it.ids[i]);
        fx->genres[i] = (1u << (i % NG)) | (i % 3 == 0 ? 1u << ((i / NG) % NG) : 0);
        fprintf(f, "%lld::%s::", (long long)fx->it.ids[i], t);
        for (int g = 0, first = 1; g < NG; g++)
            if (fx->genres[i] >> g & 1) {
                fprintf(f, "%s%s", first ? "" : "|", genre_names[g]);
                first = 0;
            }
        fputc('\n', f);
    }
    fclose(f);
    f = fopen(tu_path(fx->ratings, fx->dir, "ratings.csv"), "w");
    assert_non_null(f);
    fprintf(f, "user,item\n");
    for (size_t u = 0; u < U; u++)
        for (size_t k = 0, n = 3 + u * 2; k < n; k++) {
            size_t i = (size_t)tu_rng_below(&r, N);
            fx->seen[u][i] = 1;
            fprintf(f, "%lld,%lld\n", (long long)fx->us.ids[u], (long long)fx->it.ids[i]);
        }
    fclose(f);
    annb_build_opts o = ANNB_BUILD_OPTS_INIT;
    annb_build_report rep;
    annb_error err = {0};
    o.users_path = fx->users;
    o.interactions_path = fx->ratings;
    if (annb_build(&rep, fx->items, fx->movies, tu_path(fx->bundle, fx->dir, "cat.annb"), &o, &err))
        fail_msg("annb_build: %s", err.message);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tu_data_free(&fx->it);
    tu_data_free(&fx->us);
    tu_tmpdir_remove(fx->dir);
    free(fx);
    return 0;
}

/* The genres the test wrote for item row i, as annb_item_genres spells them. */
static void genres_text(char *buf, size_t size, unsigned bits)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int g = 0; g < NG; g++)
        if (bits >> g & 1) len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "|" : "", genre_names[g]);
}

/* Everything that reads the catalog and the seen lists. `sound`: the
 * answers must be the written ones; otherwise each must be right, empty
 * or refused, and *corrupt_users counts the users refused. */
static void use_all(const fixture *fx, const annb_bundle *b, int sound, int *titles_wrong,
                    int *corrupt_users)
{
    *titles_wrong = 0;
    *corrupt_users = 0;
    for (size_t i = 0; i < N; i++) {
        char want[64], got[256];
        title_of(want, sizeof want, fx->it.ids[i]);
        const char *t = annb_item_title(b, fx->it.ids[i]);
        if (t) assert_true(strlen(t) < 1u << 20); /* ends inside the mapping (ASan) */
        int right = has_entry(i) ? t && !strcmp(t, want) : !t;
        if (sound && !right) fail_msg("row %zu: title '%s', expected '%s'", i, t ? t : "(none)", want);
        *titles_wrong += !right;
        int n = annb_item_genres(b, fx->it.ids[i], got, sizeof got);
        /* unsorted IDS (damaged): bisection may not find an ID */
        assert_true(n >= 0 || (!sound && n == ANNB_E_NOT_FOUND));
        if (sound) {
            genres_text(want, sizeof want, fx->genres[i]);
            assert_string_equal(got, want);
        }
    }
    /* a genre filter reads every row's bits */
    const char *genre = "Comedy";
    annb_search_opts so = ANNB_SEARCH_OPTS_INIT;
    so.genres = &genre;
    so.genre_count = 1;
    annb_hit hits[K];
    assert_int_equal(annb_search(b, fx->it.vecs, 1, K, &so, hits), ANNB_OK);
    for (size_t j = 0; sound && j < K; j++) {
        long row = tu_data_row(&fx->it, hits[j].id);
        assert_true(row >= 0 && (fx->genres[row] >> 1 & 1));
    }
    annb_search_opts ro = ANNB_SEARCH_OPTS_INIT;
    ro.exclude_seen = 1;
    for (size_t u = 0; u < U; u++) {
        int rc = annb_recommend(b, &fx->us.ids[u], 1, K, &ro, hits);
        if (rc == ANNB_E_CORRUPT && !sound) {
            (*corrupt_users)++;
            continue;
        }
        assert_int_equal(rc, ANNB_OK);
        for (size_t j = 0; j < K; j++) {
            long row = tu_data_row(&fx->it, hits[j].id);
            assert_true(row >= 0);
            if (sound && fx->seen[u][row]) fail_msg("user %zu got seen item row %ld", u, row);
        }
        char *json = annb_results_json((const annb_bundle *const *)&b, 1, ANNB_SPACE_ITEMS, hits, K);
        assert_non_null(json);
        annb_free(json);
    }
}

static void test_sound(void **state)
{
    fixture *fx = *state;
    int wrong, corrupt;
    annb_bundle *b = tu_open(fx->bundle, 0);
    use_all(fx, b, 1, &wrong, &corrupt);
    annb_error err = {0};
    assert_int_equal(annb_verify(b, &err), ANNB_OK);
    /* written raw: read in place (SPEC 3.11) */
    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    for (uint32_t i = 0; i < info.section_count; i++) {
        annb_section_info s;
        assert_int_equal(annb_section_info_get(&s, b, i), ANNB_OK);
        if (!memcmp(s.kind, "TOFF", 4) || !memcmp(s.kind, "TTLS", 4) || !memcmp(s.kind, "GBIT", 4) ||
            !memcmp(s.kind, "SOFF", 4) || !memcmp(s.kind, "SEEN", 4))
            assert_string_equal(s.codec, "raw");
    }
    annb_close(b);
}

/* ---- crafted sections, valid checksums ---- */

static uint32_t entry_of(const uint8_t *data, const char *kind)
{
    uint32_t count = (uint32_t)tu_get_le(data + TU_HDR_SECTION_COUNT, 4);
    for (uint32_t i = 0; i < count; i++)
        if (memcmp(data + TU_HDR_SIZE + (size_t)i * TU_ENTRY_SIZE, kind, 4) == 0) return i;
    fail_msg("no section '%s'", kind);
    return 0;
}

static uint8_t *section(uint8_t *data, const char *kind, uint64_t *len)
{
    uint8_t *e = data + TU_HDR_SIZE + (size_t)entry_of(data, kind) * TU_ENTRY_SIZE;
    *len = tu_get_le(e + TU_ENTRY_STORED, 8);
    return data + tu_get_le(e + TU_ENTRY_OFFSET, 8);
}

typedef struct hostile {
    const char *what, *kind;
    int case_no;
    int titles_wrong_max; /* titles that may come out wrong (empty) */
    int corrupt_users;    /* users annb_recommend refuses, -1: any (a list may shift and
                           * stay a valid list: a wrong answer, not a read out of bounds) */
} hostile;

/* Applies edit h to the section's bytes s (len bytes). */
static void craft(const hostile *h, uint8_t *s, uint64_t len)
{
    switch (h->case_no) {
    case 0: tu_put_le(s + 8 * 7, 8, UINT64_MAX - 5); break;              /* TOFF/SOFF offset far out */
    case 1: tu_put_le(s + 8 * 3, 8, tu_get_le(s + 8 * 2, 8) - 1); break; /* out of order */
    case 2: tu_put_le(s + 8 * 4, 8, tu_get_le(s + 8 * 4, 8) + 1); break; /* title without its NUL */
    case 3: tu_put_le(s, 8, 3); break;                                   /* first offset moved */
    case 4: tu_put_le(s + len - 8, 8, tu_get_le(s + len - 8, 8) + 1000); break; /* last past the blob */
    case 5: for (uint64_t i = 0; i < len; i++) if (!s[i]) s[i] = 'x'; break; /* no NUL at all */
    case 6: s[len / 2] = 0x1b; break;                                     /* a control character */
    case 7: memset(s, 0xff, len); break;                                  /* everything set */
    case 8: tu_put_le(s + len - 4, 4, N); break;                          /* SEEN: row n */
    case 9: memset(s, 0, len); break;                                     /* SEEN: rows repeat */
    case 10: tu_put_le(s + 8 * 5, 8, tu_get_le(s + 8 * 4, 8) - 1); break; /* SOFF decreasing */
    case 11: { /* IDS: two IDs swapped, no longer ascending */
        uint64_t a = tu_get_le(s + 8 * 3, 8);
        tu_put_le(s + 8 * 3, 8, tu_get_le(s + 8 * 90, 8));
        tu_put_le(s + 8 * 90, 8, a);
        break;
    }
    }
}

static void test_hostile(void **state)
{
    fixture *fx = *state;
    static const hostile cases[] = {
        {"TOFF offset far past the titles", "TOFF", 0, 2, 0},
        {"TOFF out of order", "TOFF", 1, 2, 0},
        {"TOFF title without its NUL", "TOFF", 2, 2, 0},
        {"TOFF first offset not 0", "TOFF", 3, 1, 0},
        {"TOFF last offset past the titles", "TOFF", 4, 1, 0},
        {"TTLS without any NUL", "TTLS", 5, N, 0},
        {"TTLS control character", "TTLS", 6, 1, 0},
        {"TTLS all 0xff", "TTLS", 7, N, 0},
        {"GBIT bits past the vocabulary", "GBIT", 7, 0, 0},
        {"SOFF offset far past SEEN", "SOFF", 0, 0, 2},
        {"SOFF out of order", "SOFF", 1, 0, -1},
        {"SOFF first offset not 0", "SOFF", 3, 0, -1},
        {"SOFF last offset past SEEN", "SOFF", 4, 0, -1},
        {"SOFF decreasing", "SOFF", 10, 0, -1},
        {"SEEN row past the items", "SEEN", 8, 0, 1},
        {"SEEN rows all 2^32-1", "SEEN", 7, 0, U},
        {"SEEN rows repeated", "SEEN", 9, 0, -1},
        /* IDS is bulk too (6.2): bisection over unsorted IDs stays inside */
        {"IDS not ascending", "IDS ", 11, N, 0},
    };
    size_t size;
    uint8_t *good = tu_read_file(fx->bundle, &size);
    assert_non_null(good);
    char path[512];
    tu_path(path, fx->dir, "hostile.annb");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const hostile *h = &cases[c];
        uint8_t *data = malloc(size);
        assert_non_null(data);
        memcpy(data, good, size);
        uint64_t len;
        uint8_t *s = section(data, h->kind, &len);
        craft(h, s, len);
        assert_int_equal(tu_section_rehash(data, size, entry_of(data, h->kind)), 0);
        tu_write_file(path, data, size);
        annb_bundle *b = NULL;
        annb_error err = {0};
        /* bulk: opening does not look */
        if (annb_open(&b, path, NULL, &err) != ANNB_OK) fail_msg("%s: %s", h->what, err.message);
        int wrong, corrupt;
        use_all(fx, b, 0, &wrong, &corrupt);
        if (wrong > h->titles_wrong_max)
            fail_msg("%s: %d titles wrong, at most %d expected", h->what, wrong, h->titles_wrong_max);
        if (h->corrupt_users >= 0 && corrupt != h->corrupt_users)
            fail_msg("%s: %d users refused, expected %d", h->what, corrupt, h->corrupt_users);
        if (annb_verify(b, &err) != ANNB_E_CORRUPT) fail_msg("%s: annb_verify passed", h->what);
        annb_close(b);
        /* the refusal names the section (or the one whose offsets point there) */
        const char *named = !strcmp(h->kind, "TTLS") && h->case_no != 6 ? "TOFF" : h->kind;
        if (!strstr(err.message, named) && !strstr(err.message, h->kind))
            fail_msg("%s: message does not name %s: %s", h->what, named, err.message);
        annb_open_opts o = ANNB_OPEN_OPTS_INIT;
        o.flags = ANNB_OPEN_VERIFY_ALL;
        if (annb_open(&b, path, &o, &err) == ANNB_OK) fail_msg("%s: verified at open", h->what);
        assert_int_equal(err.code, ANNB_E_CORRUPT);
        free(data);
    }
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sound),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
