/* print.c - ann-query's answers per output format: a table for people, TSV
 * for tools, JSON through the library's one results writer
 * (annb_results_json), Redis commands for --all-users. */
#define _POSIX_C_SOURCE 200809L
#include "query.h"
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The JSON results array of one question (annb_results_json); returns how
 * many results it holds. */
static size_t put_json_results(const ctx *c, annb_space space, const annb_hit *hits, size_t k)
{
    char *json = annb_results_json((const annb_bundle *const *)c->b, c->n, space, hits, k);
    size_t shown = 0;
    while (shown < k && hits[shown].id != ANNB_ID_NONE) shown++;
    fputs(json ? json : "[]", stdout);
    if (!json) cli_warn(query_prog, "out of memory writing JSON");
    annb_free(json);
    return shown;
}

const char *query_key_of(const ctx *c, annb_space space, int64_t id)
{
    if (!(space == ANNB_SPACE_USERS ? c->user_keys : c->item_keys)) return NULL;
    const annb_bundle *holder = space == ANNB_SPACE_USERS
        ? c->users : annb_item_owner((const annb_bundle *const *)c->b, c->n, id);
    return holder ? annb_space_key(holder, space, id, NULL) : NULL;
}

/* An ID in TSV (and in table, `width` characters wide: integers to the
 * right, string IDs to the left): its string ID, escaped as any text, or
 * the integer. */
static void put_id(const char *key, int64_t id, size_t width)
{
    if (key) put_padded(key, width);
    else printf("%*lld", (int)width, (long long)id);
}

/* One result as a table row or a TSV row: title and genres from the shard
 * holding the item; users have neither. */
static void print_hit(const ctx *c, out_format fmt, annb_space space, size_t rank, const annb_hit *h)
{
    char genres[1024] = "";
    const annb_bundle *owner = space == ANNB_SPACE_ITEMS
        ? annb_item_owner((const annb_bundle *const *)c->b, c->n, h->id) : NULL;
    const char *title = owner ? annb_item_title(owner, h->id) : NULL;
    const char *key = query_key_of(c, space, h->id);
    if (owner) annb_item_genres(owner, h->id, genres, sizeof genres);
    const char *none = space == ANNB_SPACE_USERS ? "-" : fmt == OUT_TABLE ? "-" : "";
    if (fmt == OUT_TABLE) {
        printf("%4zu  ", rank);
        put_id(key, h->id, 10);
        printf("  %12.6f  ", (double)h->score);
        put_padded(title ? title : none, 50);
        fputs("  ", stdout);
    } else {
        printf("%zu\t", rank);
        put_id(key, h->id, 0);
        printf("\t%.9g\t", (double)h->score);
        cli_put_text(stdout, title ? title : none);
        putchar('\t');
    }
    cli_put_text(stdout, genres);
    putchar('\n');
}

void print_results(const ctx *c, const char *question, annb_space space, const annb_hit *hits,
                   size_t k)
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
        uint32_t nprobe = c->q.nprobe ? c->q.nprobe : r->nprobe;
        uint32_t ef = c->q.ef_search ? c->q.ef_search : r->ef_search;
        if (c->q.exact) printf(", searched exactly (--exact)");
        else if (c->info.has_recall && r->measured)
            printf(", recall@%u %.3f at build%s", r->k, r->recall,
                   nprobe != r->nprobe || ef != r->ef_search ? " (other settings now)" : "");
        if (r->nprobe && !c->q.exact) printf(", nprobe %u", nprobe);
        if (r->ef_search && !c->q.exact) printf(", efSearch %u", ef);
        if (c->n > 1) printf(", %zu shards", c->n);
        /* string IDs are text: left-aligned, as titles are */
        int keyed = space == ANNB_SPACE_USERS ? c->user_keys : c->item_keys;
        printf("\n%4s  %*s  %12s  %-50s  %s\n", "rank", keyed ? -10 : 10, "id", "score", "title",
               "genres");
    } else if (fmt == OUT_TSV) {
        printf("rank\tid\tscore\ttitle\tgenres\n");
    }
    if (fmt == OUT_JSON) {
        printf("{\"question\":");
        cli_put_json_string(stdout, question);
        printf(",\"metric\":\"%s\",\"index\":", metric);
        cli_put_json_string(stdout, c->info.index);
        printf(",\"results\":");
        shown = put_json_results(c, space, hits, k);
        printf("}\n");
    } else {
        for (; shown < k && hits[shown].id != ANNB_ID_NONE; shown++)
            print_hit(c, fmt, space, shown + 1, &hits[shown]);
    }
    if (shown < k && !c->o->quiet)
        cli_warn(query_prog, "only %zu of %zu results: %s", shown, k,
                 space == ANNB_SPACE_USERS ? "the bundle has fewer users"
                 : c->o->nexclude_args || c->o->exclude_seen || c->q.genre_count
                     ? "fewer items pass the filters" : "the bundle has fewer items");
}

/* A JSON ID: a string ID as a string, else the integer. */
static void put_json_id(const char *key, int64_t id)
{
    if (key) cli_put_json_string(stdout, key);
    else printf("%lld", (long long)id);
}

void print_batch(const ctx *c, const int64_t *qids, const char *const *qkeys, size_t nq,
                 const annb_hit *hits, size_t k)
{
    if (c->o->fmt == OUT_TSV) printf("query_id\trank\tid\tscore\ttitle\tgenres\n");
    for (size_t i = 0; i < nq; i++) {
        const annb_hit *h = hits + i * k;
        const char *qkey = qkeys ? qkeys[i] : NULL;
        if (c->o->fmt == OUT_JSON) {
            printf("{\"query\":");
            put_json_id(qkey, qids[i]);
            printf(",\"results\":");
            put_json_results(c, ANNB_SPACE_ITEMS, h, k);
            printf("}\n");
            continue;
        }
        for (size_t j = 0; j < k && h[j].id != ANNB_ID_NONE; j++) {
            put_id(qkey, qids[i], 0);
            putchar('\t');
            print_hit(c, OUT_TSV, ANNB_SPACE_ITEMS, j + 1, &h[j]);
        }
    }
}

/* A RESP bulk string: $LEN, then the bytes `a` followed by `b`. Bulk
 * strings are binary-safe (the length counts bytes, nothing is escaped), so
 * string IDs holding blanks, ':' or any UTF-8 go as they are (a string ID
 * holds no NUL or control character, SPEC 6.19). */
static void put_resp_arg(const char *a, const char *b)
{
    printf("$%zu\r\n%s%s\r\n", strlen(a) + strlen(b), a, b);
}

/* Redis commands for one user: DEL key, RPUSH key id..., EXPIRE key ttl.
 * A list keeps the rank order exactly; see docs/redis.md. The key is the
 * prefix and the user's string ID or integer; the list's elements are the
 * items' string IDs or integers. */
static void print_resp_user(const ctx *c, const char *prefix, int64_t user, const char *key,
                            const annb_hit *h, size_t k)
{
    char uid[24], num[24];
    size_t m = 0;
    snprintf(uid, sizeof uid, "%lld", (long long)user);
    if (key) uid[0] = '\0';
    const char *name = key ? key : uid;
    while (m < k && h[m].id != ANNB_ID_NONE) m++;
    printf("*2\r\n");
    put_resp_arg("DEL", "");
    put_resp_arg(prefix, name);
    if (m) {
        printf("*%zu\r\n", m + 2);
        put_resp_arg("RPUSH", "");
        put_resp_arg(prefix, name);
        for (size_t j = 0; j < m; j++) {
            const char *item = query_key_of(c, ANNB_SPACE_ITEMS, h[j].id);
            snprintf(num, sizeof num, "%lld", (long long)h[j].id);
            put_resp_arg(item ? item : num, "");
        }
    }
    if (m && c->o->ttl) {
        snprintf(num, sizeof num, "%lld", (long long)c->o->ttl);
        printf("*3\r\n");
        put_resp_arg("EXPIRE", "");
        put_resp_arg(prefix, name);
        put_resp_arg(num, "");
    }
}

/* --all-users writes millions of lists: IDs and scores only (no titles),
 * printed directly, in TSV or compact JSON lines. */
void print_user_top(const ctx *c, const char *prefix, int64_t user, const char *key,
                    const annb_hit *h, size_t k)
{
    switch (c->o->fmt) {
    case OUT_RESP: print_resp_user(c, prefix, user, key, h, k); break;
    case OUT_JSON:
        printf("{\"user\":");
        put_json_id(key, user);
        printf(",\"items\":[");
        for (size_t j = 0; j < k && h[j].id != ANNB_ID_NONE; j++) {
            printf("%s[", j ? "," : "");
            put_json_id(query_key_of(c, ANNB_SPACE_ITEMS, h[j].id), h[j].id);
            putchar(',');
            put_json_score(h[j].score);
            putchar(']');
        }
        printf("]}\n");
        break;
    default:
        for (size_t j = 0; j < k && h[j].id != ANNB_ID_NONE; j++) {
            if (!key && !c->item_keys) { /* integers: one call, millions of rows */
                printf("%lld\t%zu\t%lld\t%.9g\n", (long long)user, j + 1, (long long)h[j].id,
                       (double)h[j].score);
                continue;
            }
            put_id(key, user, 0);
            printf("\t%zu\t", j + 1);
            put_id(query_key_of(c, ANNB_SPACE_ITEMS, h[j].id), h[j].id, 0);
            printf("\t%.9g\n", (double)h[j].score);
        }
    }
}

/* Scores that are not numbers come from damaged vectors (opening does not
 * read them, SPEC 3.11) or a query vector too large for float: JSON says
 * null, and the user hears it once, with the bundle that holds the answer. */
void query_check_scores(ctx *c, annb_space space, const annb_hit *hits, size_t n)
{
    for (size_t i = 0; i < n && !c->warned_scores; i++) {
        if (hits[i].id == ANNB_ID_NONE || isfinite(hits[i].score)) continue;
        size_t owner = 0;
        for (size_t j = 0; j < c->n; j++)
            if (space == ANNB_SPACE_USERS ? annb_space_count(c->b[j], ANNB_SPACE_USERS) > 0
                                          : annb_item_genres(c->b[j], hits[i].id, NULL, 0) >= 0) {
                owner = j;
                break;
            }
        cli_warn(query_prog, "bundle %s: non-finite scores (damaged vectors?); run ann-inspect --verify",
                 c->o->paths[owner]);
        c->warned_scores = 1;
    }
}
