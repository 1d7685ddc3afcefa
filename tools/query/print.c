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

/* One result as a table row or a TSV row: title and genres from the shard
 * holding the item; users have neither. */
static void print_hit(const ctx *c, out_format fmt, annb_space space, size_t rank, const annb_hit *h)
{
    char genres[1024] = "";
    const annb_bundle *owner = space == ANNB_SPACE_ITEMS
        ? annb_item_owner((const annb_bundle *const *)c->b, c->n, h->id) : NULL;
    const char *title = owner ? annb_item_title(owner, h->id) : NULL;
    if (owner) annb_item_genres(owner, h->id, genres, sizeof genres);
    const char *none = space == ANNB_SPACE_USERS ? "-" : fmt == OUT_TABLE ? "-" : "";
    long long id = (long long)h->id;
    if (fmt == OUT_TABLE) {
        printf("%4zu  %10lld  %12.6f  ", rank, id, (double)h->score);
        put_padded(title ? title : none, 50);
        fputs("  ", stdout);
    } else {
        printf("%zu\t%lld\t%.9g\t", rank, id, (double)h->score);
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
        shown = put_json_results(c, space, hits, k);
        printf("}\n");
    } else {
        for (; shown < k && hits[shown].id != ANNB_ID_NONE; shown++)
            print_hit(c, fmt, space, shown + 1, &hits[shown]);
    }
    if (shown < k && !c->o->quiet)
        cli_warn(query_prog, "only %zu of %zu results: %s", shown, k,
                 space == ANNB_SPACE_USERS ? "the bundle has fewer users"
                 : c->q.exclude_count || c->q.genre_count || c->q.exclude_seen
                     ? "fewer items pass the filters" : "the bundle has fewer items");
}

void print_batch(const ctx *c, const int64_t *qids, size_t nq, const annb_hit *hits, size_t k)
{
    if (c->o->fmt == OUT_TSV) printf("query_id\trank\tid\tscore\ttitle\tgenres\n");
    for (size_t i = 0; i < nq; i++) {
        const annb_hit *h = hits + i * k;
        if (c->o->fmt == OUT_JSON) {
            printf("{\"query\":%lld,\"results\":", (long long)qids[i]);
            put_json_results(c, ANNB_SPACE_ITEMS, h, k);
            printf("}\n");
            continue;
        }
        for (size_t j = 0; j < k && h[j].id != ANNB_ID_NONE; j++) {
            printf("%lld\t", (long long)qids[i]);
            print_hit(c, OUT_TSV, ANNB_SPACE_ITEMS, j + 1, &h[j]);
        }
    }
}

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

/* --all-users writes millions of lists: IDs and scores only (no titles),
 * printed directly, in TSV or compact JSON lines. */
void print_user_top(const ctx *c, const char *prefix, int64_t user, const annb_hit *h, size_t k)
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
