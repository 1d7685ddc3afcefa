/* query.h - ann-query's parts: the command line (options.c), the runs of
 * each mode (modes.c) and the printing per output format (print.c). Every
 * question goes to the library as an annb_question (annb_ask); this tool only
 * translates flags in and answers out. */
#ifndef ANNB_QUERY_H
#define ANNB_QUERY_H

#include "annb.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern const char *const query_prog; /* "ann-query", the prefix of messages */

typedef enum { OUT_TABLE, OUT_TSV, OUT_JSON, OUT_RESP } out_format;

/* What is asked: exactly one per run. The first six are single questions. */
typedef enum {
    M_NONE, M_USER_VEC, M_ITEM, M_VEC, M_USER, M_SIMILAR_USERS, M_USERS_FOR_ITEM,
    M_BATCH, M_BATCH_USERS, M_SERVE, M_ALL_USERS, M_COUNT
} mode;
#define SINGLE(m) ((m) >= M_USER_VEC && (m) <= M_USERS_FOR_ITEM)

/* ---- options.c: the command line ---- */

typedef struct options {
    mode mode;
    int modes_given;
    const char *arg;          /* the mode's argument */
    /* The ID of --user, --item, ... and of --user-vec, as given: the
     * library reads it in its space (a string ID where the bundle has them,
     * a decimal integer elsewhere). */
    const char *id_text;
    char *user_file;          /* --user-vec's FILE (malloc'd) */
    int64_t k;
    int k_given;
    uint32_t nprobe, ef_search; /* 0: as tuned at build time */
    int verify_all;             /* --verify: every checksum at open */
    int trust_faiss;            /* --trust-faiss: ANNB_OPEN_TRUST_FAISS */
    int exact;                  /* --exact: exact scan whatever the index */
    int64_t threads;            /* --threads: for each search (0: one) */
    out_format fmt;
    int fmt_given;
    int exclude_seen;
    const char *seen_file;    /* --exclude-seen FILE */
    const char **exclude_args; /* --exclude arguments as given */
    size_t nexclude_args;
    const char **genre_args;  /* --genre arguments as given */
    size_t ngenre_args;
    const char *key_prefix;
    int64_t ttl;
    int verbose;
    int quiet;                /* -q: no notes on stderr */
    uint64_t max_request;     /* --max-request-bytes (0: not given) */
    char **paths;             /* the bundles */
    size_t npaths;
} options;

/* Fills o from argv. Returns 0, an exit status, or -1 after --help or
 * --version (done: exit 0). */
int query_parse_args(options *o, int argc, char **argv);
/* The combinations of flags that make sense (docs/cli.md): NULL, or why not
 * (a usage error). Also settles the default format. */
const char *query_check_combination(options *o);
void query_options_release(options *o);

/* ---- modes.c: one run ---- */

typedef struct ctx {
    const options *o;
    annb_bundle **b;
    size_t n;
    annb_bundle_info info;     /* of b[0] */
    uint32_t dim;
    /* The filters and effort common to every question of the run; each mode
     * sets kind, subjects or vectors, count and k. */
    annb_question q;
    const char **exclude;      /* q.exclude_texts: --exclude IDs, split */
    char *exclude_text;        /* their storage */
    int64_t *seen;             /* q.exclude_ids: the items seen, from --exclude-seen FILE */
    const char **genres;       /* q.genres: --genre names, split */
    char *genre_text;          /* their storage */
    const annb_bundle *users;  /* the bundle whose users are asked about (the first with users) */
    int item_keys, user_keys;  /* the items, the users have string IDs (SPEC 6.19) */
    annb_error err;
    int warned_scores;         /* query_check_scores said it once */
} ctx;

/* Opens the bundles and sets up c->q from the options. */
int query_setup(ctx *c);
void query_release(ctx *c);
int run_single(ctx *c);
int run_batch(ctx *c);
int run_all_users(ctx *c);
int run_serve(ctx *c);

/* ---- print.c: answers per output format ---- */

/* The string ID of `id` in `space` (of the shard holding an item, of
 * c->users for a user), or NULL where that space has integer IDs (and for a
 * damaged key table: the integer is printed then, as annb_results_json does). */
const char *query_key_of(const ctx *c, annb_space space, int64_t id);
/* One question's answers (table, TSV or JSON) under a heading `question`. */
void print_results(const ctx *c, const char *question, annb_space space, const annb_hit *hits,
                   size_t k);
/* Many questions' answers: TSV rows or JSON lines, one list per query,
 * named by qkeys[i] (string IDs) or else by qids[i]. */
void print_batch(const ctx *c, const int64_t *qids, const char *const *qkeys, size_t nq,
                 const annb_hit *hits, size_t k);
/* One user's list for --all-users: TSV, JSON line or Redis commands; the
 * user named by `key` (a string ID) or else by `user`. */
void print_user_top(const ctx *c, const char *prefix, int64_t user, const char *key,
                    const annb_hit *h, size_t k);
/* Warns once when a score is not finite (damaged vectors), naming the bundle. */
void query_check_scores(ctx *c, annb_space space, const annb_hit *hits, size_t n);

#endif /* ANNB_QUERY_H */
