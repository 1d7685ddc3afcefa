/*
 * fuzz_bundle.c - libFuzzer harness for the bundle reader.
 *
 * The input is a whole bundle image. It is opened from memory with the full
 * checks (annb_bundle_from_bytes, the bytes annb_open would map) and, when
 * it opens, every read function of the public API is driven over it:
 * annb_verify, annb_bundle_info_get, annb_section_info_get for each section,
 * two searches for a zero vector (k = 5, and k = count + 3 with exclusions),
 * and annb_item_title / annb_item_genres / annb_item_vector for the first,
 * the last and a missing ID. Answers are checked against the API's promises
 * (FUZZ_CHECK aborts), so a wrong answer is a finding as well as a crash.
 *
 * Built with -DANNB_FUZZ_REPAIR (target fuzz_bundle_repair) the harness
 * first rewrites the stored checksums to match the bytes, so that mutations
 * reach the checks behind the checksums (section meaning, catalog, IDs).
 * FAIS is repaired too: annb's own checker (lib/faiss_check.c) walks the
 * Faiss bytes before Faiss 1.7.3's read_index, which trusts its input, so
 * a mutated FAIS section with a valid checksum must be refused by that
 * checker or be one Faiss reads and searches safely.
 */
#define _GNU_SOURCE /* memfd_create (fuzz_util.h) */
#include "bundle.h"
#include "fuzz_util.h"
#include "layout.h" /* header and table field offsets (SPEC 2, 3) */
#include "le.h"

#include <string.h>
#include <xxhash.h>

#ifdef ANNB_FUZZ_REPAIR
/* Makes every checksum match the bytes, when the table is in
 * bounds (otherwise the reader refuses the file before any checksum). */
static void repair_checksums(uint8_t *d, size_t size)
{
    if (size < ANNBF_HEADER_SIZE) return;
    uint64_t count = le32_get(d + H_SECTION_COUNT);
    if (count == 0 || count > ANNBF_MAX_SECTIONS ||
        count * ANNBF_ENTRY_SIZE > size - ANNBF_HEADER_SIZE)
        return;
    for (uint64_t i = 0; i < count; i++) {
        uint8_t *e = d + ANNBF_HEADER_SIZE + i * ANNBF_ENTRY_SIZE;
        uint64_t off = le64_get(e + E_OFFSET), stored = le64_get(e + E_STORED);
        if (off > size || stored > size - off) continue;
        le64_put(e + E_CHECKSUM, XXH3_64bits(d + off, (size_t)stored));
    }
    /* Last: the header checksum covers the table just rewritten. */
    le64_put(d + H_CHECKSUM, annbf_header_checksum(d, (uint32_t)count));
}
#endif

/* 1 when annb_verify accepts the bundle: the promises that rest on the
 * bulk sections (SPEC 3.11: IDs ascending, so found by bisection) hold only
 * then; a damaged bundle may answer wrongly, never read outside the file. */
static int sound;

/* The promises of annb_search: every slot is an ID of the bundle or
 * ANNB_ID_NONE, and no excluded ID is returned. */
static void check_hits(const annb_bundle *b, const annb_hit *hits, size_t k,
                       const int64_t *exclude, size_t nexclude)
{
    for (size_t j = 0; j < k; j++) {
        if (hits[j].id == ANNB_ID_NONE) continue;
        if (!sound) { /* IDS unsorted: bisection may miss it; it is still stored */
            uint64_t r = 0, n = b->c.meta.count;
            while (r < n && b->c.ids[r] != hits[j].id) r++;
            FUZZ_CHECK(r < n);
            continue;
        }
        FUZZ_CHECK(annb_row_of(b, hits[j].id) >= 0);
        for (size_t x = 0; x < nexclude; x++) FUZZ_CHECK(hits[j].id != exclude[x]);
    }
}

static void search_zero(const annb_bundle *b, const annb_bundle_info *info, size_t k,
                        const int64_t *exclude, size_t nexclude)
{
    float *q = calloc(info->dimension, sizeof *q);
    annb_hit *hits = malloc(k * sizeof *hits);
    FUZZ_CHECK(q && hits);
    annb_search_opts opts = ANNB_SEARCH_OPTS_INIT;
    opts.exclude_ids = exclude;
    opts.exclude_count = nexclude;
    int rc = annb_search(b, q, 1, k, &opts, hits);
    /* A loaded index answers; Faiss may still refuse (ANNB_E_FAISS). */
    FUZZ_CHECK(rc == ANNB_OK || rc == ANNB_E_FAISS || rc == ANNB_E_NOMEM);
    if (rc == ANNB_OK) check_hits(b, hits, k, exclude, nexclude);
    free(hits);
    free(q);
}

/* Title, genres and vector of one ID, present (row >= 0) or not. */
static void item_lookups(const annb_bundle *b, const annb_bundle_info *info, int64_t id)
{
    int present = annb_row_of(b, id) >= 0;

    const char *title = annb_item_title(b, id);
    if (title) {
        FUZZ_CHECK(present);
        volatile size_t title_len = strlen(title); /* reads up to its NUL, under ASan */
        (void)title_len;
    }
    if (!info->has_catalog) FUZZ_CHECK(title == NULL);

    int len = annb_item_genres(b, id, NULL, 0);
    if (!present) {
        FUZZ_CHECK(len == ANNB_E_NOT_FOUND);
    } else {
        FUZZ_CHECK(len >= 0);
        /* The full string, then a truncated one: both NUL-terminated. */
        char *buf = malloc((size_t)len + 1);
        FUZZ_CHECK(buf);
        FUZZ_CHECK(annb_item_genres(b, id, buf, (size_t)len + 1) == len);
        FUZZ_CHECK(strlen(buf) == (size_t)len);
        char small[4];
        FUZZ_CHECK(annb_item_genres(b, id, small, sizeof small) == len);
        FUZZ_CHECK(strlen(small) == ((size_t)len < sizeof small ? (size_t)len : sizeof small - 1));
        FUZZ_CHECK(memcmp(small, buf, strlen(small)) == 0);
        free(buf);
    }

    float *v = malloc((size_t)info->dimension * sizeof *v);
    FUZZ_CHECK(v);
    FUZZ_CHECK(annb_item_vector(b, id, v) == (present ? ANNB_OK : ANNB_E_NOT_FOUND));
    free(v);

    /* String IDs (SPEC 6.19): a key read back names the same ID; a table
     * damaged at that row gives no key, never bytes outside the file. */
    size_t klen = 0;
    const char *key = annb_space_key(b, ANNB_SPACE_ITEMS, id, &klen);
    if (key) {
        FUZZ_CHECK(present && annb_space_has_keys(b, ANNB_SPACE_ITEMS) && key[klen] == '\0');
        int64_t back;
        int rc = annb_space_id_of(b, ANNB_SPACE_ITEMS, key, klen, &back);
        FUZZ_CHECK(back == annb_key_id(key, klen));
        FUZZ_CHECK(rc == (back == id ? ANNB_OK : ANNB_E_NOT_FOUND) || rc == ANNB_OK);
    }
    for (uint64_t r = 0; r < annb_space_count(b, ANNB_SPACE_USERS) && r < 4; r++) {
        const char *u = annb_space_key_at(b, ANNB_SPACE_USERS, r, &klen);
        if (u) FUZZ_CHECK(u[klen] == '\0');
    }
}

static void exercise(const annb_bundle *b)
{
    annb_error err;
    int rc = annb_verify(b, &err);
    if (rc) FUZZ_CHECK_FAILURE(rc, err);
    sound = rc == ANNB_OK;

    annb_bundle_info info;
    annb_bundle_info_get(&info, b);
    FUZZ_CHECK(info.format_major == ANNBF_MAJOR && info.section_count >= 1);
    FUZZ_CHECK(info.count >= 1 && info.dimension >= 1 && info.index && info.index[0]);
    for (uint32_t i = 0; i < info.section_count; i++) {
        annb_section_info s;
        FUZZ_CHECK(annb_section_info_get(&s, b, i) == ANNB_OK);
        FUZZ_CHECK(strlen(s.kind) == 4 && s.codec && s.offset + s.stored_size <= info.file_size);
    }
    annb_section_info none;
    FUZZ_CHECK(annb_section_info_get(&none, b, info.section_count) == ANNB_E_INVALID);

    /* The IDs are internal: no public call lists them. */
    const int64_t first = b->c.ids[0], last = b->c.ids[info.count - 1];
    /* first > INT64_MIN in a sound bundle (SPEC 6.2): no overflow */
    const int64_t missing = first == INT64_MIN ? INT64_MAX : first - 1;
    if (sound) {
        FUZZ_CHECK(annb_row_of(b, first) == 0);
        FUZZ_CHECK(annb_row_of(b, last) == (int64_t)(info.count - 1));
        FUZZ_CHECK(annb_row_of(b, missing) < 0);
    }
    /* Interactions (SPEC 6.11-6.12, bulk): each user's list is checked where
     * it is read; a damaged one is ANNB_E_CORRUPT, never a read outside. */
    if (annb_bundle_has_seen(b)) {
        annb_search_opts ro = ANNB_SEARCH_OPTS_INIT;
        ro.exclude_seen = 1;
        annb_hit hits[5];
        for (uint64_t r = 0; r < annb_space_count(b, ANNB_SPACE_USERS) && r < 4; r++) {
            int64_t u = annb_space_id(b, ANNB_SPACE_USERS, r);
            int rr = annb_recommend(b, &u, 1, 5, &ro, hits);
            FUZZ_CHECK(rr == ANNB_OK || rr == ANNB_E_NOMEM || rr == ANNB_E_FAISS ||
                       (!sound && (rr == ANNB_E_CORRUPT || rr == ANNB_E_NOT_FOUND)));
            if (rr == ANNB_OK) check_hits(b, hits, 5, NULL, 0);
        }
    }

    search_zero(b, &info, 5, NULL, 0);
    const int64_t exclude[] = {first, missing};
    search_zero(b, &info, (size_t)info.count + 3, exclude, 2);

    item_lookups(b, &info, first);
    item_lookups(b, &info, last);
    item_lookups(b, &info, missing);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private, exactly sized copy: the repair writes to it, and ASan sees
     * any read past the end of the image. */
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy);
    if (size) memcpy(copy, data, size);
#ifdef ANNB_FUZZ_REPAIR
    repair_checksums(copy, size);
#endif
    annb_bundle *b;
    annb_error err;
    int rc = annb_bundle_from_bytes(&b, copy, size, "fuzz.annb", 0, &err);
    if (rc == ANNB_OK) {
        exercise(b);
        annb_close(b);
    } else {
        FUZZ_CHECK_FAILURE(rc, err);
        FUZZ_CHECK(b == NULL);
    }
    free(copy);
    return 0;
}
