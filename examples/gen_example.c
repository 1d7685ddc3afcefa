/*
 * gen_example.c - annb-example-gen: deterministic example data shaped like
 * MovieLens 1M and a Spark ALS model trained on it.
 *
 *   annb-example-gen OUTDIR [--seed N] [--items N] [--users N] [--dim D]
 *
 * writes into OUTDIR (created if missing):
 *   movies.dat  3,883 lines `MovieID::Title::Genres`, latin-1, IDs 1..3952
 *               ascending with gaps, 1-3 of the 18 MovieLens genres each
 *   movies.csv  the same catalog in the newer form `movieId,title,genres`,
 *               UTF-8, CSV-quoted where a title holds a comma or a quote
 *   items.csv   `id,features` (Spark's form) for 3,706 of those movies, rows
 *               shuffled: the other 177 have no vector, as in ML-1M
 *   users.csv   `id,features` for users 1..6040, rows shuffled
 *   ratings.dat `UserID::MovieID::Rating::Timestamp` (ML-1M's form): 10-59
 *               movies per user, drawn from the user's own top picks
 *
 * Titles are synthetic but carry what real catalogs throw at a parser:
 * latin-1 accents, ':' inside a title, a trailing ", The", quotes, an
 * alternative title in parentheses before the year. A few IDs are fixed
 * whatever the seed (see FIXED_MOVIES) so that documentation can name them.
 *
 * Vectors are genre-clustered: each genre has a unit direction (related
 * genres share an axis); an item is the normalised sum of its genres'
 * directions plus noise, scaled by a popularity factor (so inner product
 * favours popular items, as matrix factorisation does); a user is a
 * weighted mix of 1-3 favourite genres plus noise.
 *
 * Determinism: the output is a function of the arguments only, byte for
 * byte, with any compiler and flags (checked: gcc and clang, -O0 to
 * -O3 -ffast-math) on any libc whose printf and strtof round correctly
 * (glibc, musl, BSD). Hence our own PRNG (xoshiro256** seeded through
 * splitmix64), one stream per purpose (a different --users leaves the items
 * untouched; an item's vector depends on its ID, not on row order), and all
 * vector arithmetic in 64-bit integers (fixed point, 20 fraction bits), so
 * that neither libm nor floating-point contraction can change a bit. Each
 * value becomes a float32 once, exactly, and is printed as the shortest
 * decimal that reads back as that same float32 (like Spark/Java) after
 * rounding to 7 significant digits, so every reader of the CSV gets exactly
 * the vector the generator meant.
 *
 * Exit codes: 0 ok, 1 a file could not be written (or out of memory),
 * 2 usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "annb-example-gen"

/* The shape of MovieLens 1M, the defaults. */
#define ML_ITEMS 3706u   /* movies with a rating, hence a vector */
#define ML_UNRATED 177u  /* catalog movies nobody rated: no vector */
#define ML_CATALOG 3883u /* lines of movies.dat */
#define ML_GAPS 69u      /* IDs in 1..3952 that are not used */
#define ML_USERS 6040u
#define DEFAULT_DIM 10u
#define DEFAULT_SEED 1u

#define MAX_ITEMS 10000000u
#define MAX_USERS 10000000u
#define MAX_DIM 4096u

/* Fixed point: a value v stands for v / 2^20. */
#define Q 20
#define ONE ((int64_t)1 << Q)

#define TITLE_MAX 256

/* ------------------------------------------------------------------------ */
/* Random numbers                                                            */
/* ------------------------------------------------------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

/* Independent streams: changing how much one purpose draws never shifts
 * another purpose's numbers. */
enum stream {
    STREAM_GAPS = 1,
    STREAM_UNRATED,
    STREAM_MOVIE,      /* genres and popularity, per movie ID */
    STREAM_TITLE,      /* per movie ID */
    STREAM_GENRE_DIRS,
    STREAM_ITEM_VEC,   /* per movie ID */
    STREAM_ITEM_ORDER,
    STREAM_USER_VEC,   /* per user ID */
    STREAM_USER_ORDER,
    STREAM_RATINGS     /* per user ID */
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
    *x += 0x9e3779b97f4a7c15u;
    return mix64(*x);
}

/* A generator for (seed, stream, index): per-ID streams make a row's content
 * independent of the order rows are written in. */
static void rng_seed(rng *r, uint64_t seed, enum stream stream, uint64_t index)
{
    uint64_t x = mix64(seed ^ mix64((uint64_t)stream * 0x9e3779b97f4a7c15u)) ^ mix64(~index);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0 (Blackman and Vigna, public domain). */
static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), n >= 1, without modulo bias. */
static uint64_t rng_below(rng *r, uint64_t n)
{
    uint64_t limit = -n % n; /* 2^64 mod n */
    uint64_t x;
    do
        x = rng_next(r);
    while (x < limit);
    return x % n;
}

/* Uniform in [0, 1), fixed point. */
static int64_t rng_unit(rng *r)
{
    return (int64_t)(rng_next(r) >> (64 - Q));
}

/* Mean 0, standard deviation 1, bell-shaped: the sum of three uniforms on
 * [-1, 1) (each of variance 1/3). Integer-only, unlike Box-Muller. */
static int64_t rng_normalish(rng *r)
{
    int64_t sum = 0;
    for (int i = 0; i < 3; i++)
        sum += (int64_t)(rng_next(r) >> (63 - Q)) - ONE;
    return sum;
}

static void shuffle_u32(uint32_t *a, size_t n, rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ------------------------------------------------------------------------ */
/* Fixed-point helpers                                                       */
/* ------------------------------------------------------------------------ */

static uint64_t isqrt64(uint64_t x)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > x)
        bit >>= 2;
    while (bit) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

/* a * b for fixed-point a, b (division truncates toward zero, as C99 fixes). */
static int64_t qmul(int64_t a, int64_t b)
{
    return a * b / ONE;
}

/* Standard deviation per component for noise of expected length `length`
 * (fixed point) in `dim` dimensions: length / sqrt(dim). */
static int64_t noise_sigma(int64_t length, uint32_t dim)
{
    int64_t sqrt_dim = (int64_t)isqrt64((uint64_t)dim << (2 * Q));
    return length * ONE / sqrt_dim;
}

/* ------------------------------------------------------------------------ */
/* Genres                                                                    */
/* ------------------------------------------------------------------------ */

enum genre {
    G_ACTION, G_ADVENTURE, G_ANIMATION, G_CHILDRENS, G_COMEDY, G_CRIME,
    G_DOCUMENTARY, G_DRAMA, G_FANTASY, G_FILM_NOIR, G_HORROR, G_MUSICAL,
    G_MYSTERY, G_ROMANCE, G_SCI_FI, G_THRILLER, G_WAR, G_WESTERN,
    GENRE_COUNT
};

#define GB(g) (1u << (g))

static const char *const GENRE_NAMES[GENRE_COUNT] = {
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
    "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
};

/* How often each genre occurs in ML-1M's movies.dat: Drama and Comedy are
 * common, Film-Noir rare. */
static const uint32_t GENRE_WEIGHTS[GENRE_COUNT] = {
    503, 283, 105, 251, 1200, 211, 127, 1603, 68, 44, 343, 114, 106, 471, 276, 492, 143, 68,
};

static enum genre genre_draw(rng *r)
{
    uint32_t total = 0;
    for (int g = 0; g < GENRE_COUNT; g++)
        total += GENRE_WEIGHTS[g];
    uint32_t x = (uint32_t)rng_below(r, total);
    int g = 0;
    while (x >= GENRE_WEIGHTS[g])
        x -= GENRE_WEIGHTS[g++];
    return (enum genre)g;
}

/* `count` distinct genres as a bit set. */
static uint32_t genres_draw(rng *r, unsigned count)
{
    uint32_t set = 0;
    for (unsigned n = 0; n < count;) {
        uint32_t bit = GB(genre_draw(r));
        if (set & bit)
            continue;
        set |= bit;
        n++;
    }
    return set;
}

/* Scales v to length 1 (fixed point); a zero vector stays zero. */
static void vec_normalize(int64_t *v, uint32_t dim)
{
    uint64_t sum_sq = 0;
    for (uint32_t j = 0; j < dim; j++)
        sum_sq += (uint64_t)(v[j] * v[j]);
    int64_t norm = (int64_t)isqrt64(sum_sq);
    if (norm == 0)
        return;
    for (uint32_t j = 0; j < dim; j++)
        v[j] = v[j] * ONE / norm;
}

static void vec_random_unit(int64_t *v, uint32_t dim, rng *r)
{
    for (uint32_t j = 0; j < dim; j++)
        v[j] = rng_normalish(r);
    vec_normalize(v, dim);
}

/* Gram-Schmidt: v minus its projections on the n orthonormal basis vectors,
 * normalised; left as it was when (nearly) inside their span. Returns 1 when
 * v joined the basis (the caller appends it), 0 otherwise. */
static int vec_orthogonalize(int64_t *v, const int64_t *basis, size_t n, uint32_t dim,
                             int64_t *tmp)
{
    if (n >= dim)
        return 0;
    memcpy(tmp, v, dim * sizeof *tmp);
    for (size_t b = 0; b < n; b++) {
        const int64_t *e = basis + b * dim;
        int64_t proj = 0;
        for (uint32_t j = 0; j < dim; j++)
            proj += qmul(tmp[j], e[j]);
        for (uint32_t j = 0; j < dim; j++)
            tmp[j] -= qmul(proj, e[j]);
    }
    uint64_t sum_sq = 0;
    for (uint32_t j = 0; j < dim; j++)
        sum_sq += (uint64_t)(tmp[j] * tmp[j]);
    if (isqrt64(sum_sq) < (uint64_t)ONE / 8)
        return 0;
    vec_normalize(tmp, dim);
    memcpy(v, tmp, dim * sizeof *tmp);
    return 1;
}

/* Related genres share a taste axis, so that neighbours make sense across
 * genres too (a Sci-Fi film near an Action film, not near a Musical). */
enum { GROUP_SPECTACLE, GROUP_DARK, GROUP_LIGHT, GROUP_FAMILY, GROUP_SERIOUS, GROUP_COUNT };

static const unsigned char GENRE_GROUP[GENRE_COUNT] = {
    [G_ACTION] = GROUP_SPECTACLE, [G_ADVENTURE] = GROUP_SPECTACLE, [G_SCI_FI] = GROUP_SPECTACLE,
    [G_WAR] = GROUP_SPECTACLE,    [G_WESTERN] = GROUP_SPECTACLE,   [G_CRIME] = GROUP_DARK,
    [G_FILM_NOIR] = GROUP_DARK,   [G_HORROR] = GROUP_DARK,         [G_MYSTERY] = GROUP_DARK,
    [G_THRILLER] = GROUP_DARK,    [G_COMEDY] = GROUP_LIGHT,        [G_MUSICAL] = GROUP_LIGHT,
    [G_ROMANCE] = GROUP_LIGHT,    [G_ANIMATION] = GROUP_FAMILY,    [G_CHILDRENS] = GROUP_FAMILY,
    [G_FANTASY] = GROUP_FAMILY,   [G_DRAMA] = GROUP_SERIOUS,       [G_DOCUMENTARY] = GROUP_SERIOUS,
};

/*
 * A unit direction per genre (GENRE_COUNT * dim fixed-point values):
 * 3/4 of its group's axis plus 2/3 of a direction of its own, normalised
 * (genres of one group have cosine about 0.56). The group axes, then the
 * genres' own directions from the most common genre down, are made
 * orthogonal for as long as the dimension allows; the rest stay random.
 */
static int genre_directions(int64_t *dirs, uint32_t dim, uint64_t seed)
{
    size_t max_basis = dim < GROUP_COUNT + GENRE_COUNT ? dim : GROUP_COUNT + GENRE_COUNT;
    int64_t *axes = malloc((size_t)GROUP_COUNT * dim * sizeof *axes);
    int64_t *basis = malloc(max_basis * dim * sizeof *basis);
    int64_t *tmp = malloc(dim * sizeof *tmp);
    if (!axes || !basis || !tmp) {
        free(axes);
        free(basis);
        free(tmp);
        return -1;
    }
    rng r;
    rng_seed(&r, seed, STREAM_GENRE_DIRS, 0);
    size_t n = 0;
    for (int k = 0; k < GROUP_COUNT; k++) {
        int64_t *v = axes + (size_t)k * dim;
        vec_random_unit(v, dim, &r);
        if (vec_orthogonalize(v, basis, n, dim, tmp))
            memcpy(basis + dim * n++, v, dim * sizeof *v);
    }
    int order[GENRE_COUNT]; /* by weight, descending; ties by index */
    for (int g = 0; g < GENRE_COUNT; g++) {
        int i = g;
        while (i > 0 && GENRE_WEIGHTS[order[i - 1]] < GENRE_WEIGHTS[g]) {
            order[i] = order[i - 1];
            i--;
        }
        order[i] = g;
    }
    for (int i = 0; i < GENRE_COUNT; i++) {
        int g = order[i];
        int64_t *v = dirs + (size_t)g * dim;
        vec_random_unit(v, dim, &r);
        if (vec_orthogonalize(v, basis, n, dim, tmp))
            memcpy(basis + dim * n++, v, dim * sizeof *v);
        const int64_t *axis = axes + (size_t)GENRE_GROUP[g] * dim;
        for (uint32_t j = 0; j < dim; j++)
            v[j] = 3 * axis[j] / 4 + 2 * v[j] / 3;
        vec_normalize(v, dim);
    }
    free(axes);
    free(basis);
    free(tmp);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The catalog                                                               */
/* ------------------------------------------------------------------------ */

/* Movies every seed produces (when the ID range reaches them), with a vector,
 * so the README and tests can name them. Titles are synthetic, latin-1. */
static const struct fixed_movie {
    int64_t id;
    const char *title;
    uint32_t genres;
    int64_t popularity; /* fixed point */
} FIXED_MOVIES[] = {
    {1, "Tin Soldier Story (1995)", GB(G_ANIMATION) | GB(G_CHILDRENS) | GB(G_COMEDY), 28 * ONE / 10},
    {29, "Cit\xe9 des enfants perdus, La (1995)", GB(G_ADVENTURE) | GB(G_SCI_FI), 12 * ONE / 10},
    {73, "Mis\xe9rables, Les (1995)", GB(G_DRAMA) | GB(G_MUSICAL), 10 * ONE / 10},
    {260, "Star Raiders: Episode IV - A New Frontier (1977)",
     GB(G_ACTION) | GB(G_ADVENTURE) | GB(G_SCI_FI), 30 * ONE / 10},
    {1196, "Star Raiders: Episode V - The Frontier Strikes Back (1980)",
     GB(G_ACTION) | GB(G_ADVENTURE) | GB(G_SCI_FI), 29 * ONE / 10},
    {1210, "Star Raiders: Episode VI - Return of the Rebel (1983)",
     GB(G_ACTION) | GB(G_ADVENTURE) | GB(G_SCI_FI), 28 * ONE / 10},
    {2571, "Lattice, The (1999)", GB(G_ACTION) | GB(G_SCI_FI) | GB(G_THRILLER), 30 * ONE / 10},
};
#define FIXED_COUNT (sizeof FIXED_MOVIES / sizeof FIXED_MOVIES[0])

static const struct fixed_movie *fixed_movie(int64_t id)
{
    for (size_t i = 0; i < FIXED_COUNT; i++)
        if (FIXED_MOVIES[i].id == id)
            return &FIXED_MOVIES[i];
    return NULL;
}

typedef struct movie {
    int64_t id;
    uint32_t genres;    /* GB() bits */
    int32_t popularity; /* fixed point, 0.4 .. 3.0 */
    int has_vector;
} movie;

typedef struct catalog {
    movie *movies; /* ascending ID */
    size_t count;
    size_t with_vector;
} catalog;

/* Genres and popularity of one random movie: 1-3 genres, as in ML-1M
 * (about half have one); a documentary is just that. Popularity is skewed:
 * most movies are obscure, a few are blockbusters. */
static void movie_draw(movie *m, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, STREAM_MOVIE, (uint64_t)m->id);
    uint64_t x = rng_below(&r, 100);
    unsigned count = x < 50 ? 1 : x < 85 ? 2 : 3;
    m->genres = genres_draw(&r, count);
    if ((m->genres & GB(G_DOCUMENTARY)) && count > 1)
        m->genres = GB(G_DOCUMENTARY);
    int64_t u = rng_unit(&r);
    int64_t u3 = qmul(qmul(u, u), u);
    m->popularity = (int32_t)(2 * ONE / 5 + 13 * u3 / 5);
}

/* Sets chosen[i] = 1 for `need` indices drawn at random, without
 * repetition, among those with excluded[i] == 0 (a partial Fisher-Yates
 * shuffle of the candidates: O(n)). Returns -1 when out of memory. */
static int choose(unsigned char *chosen, const unsigned char *excluded, size_t n, size_t need,
                  rng *r)
{
    uint32_t *cand = malloc((n ? n : 1) * sizeof *cand);
    if (!cand)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!excluded[i])
            cand[m++] = (uint32_t)i;
    if (need > m)
        need = m;
    for (size_t i = 0; i < need; i++) {
        size_t j = i + (size_t)rng_below(r, m - i);
        uint32_t t = cand[i];
        cand[i] = cand[j];
        cand[j] = t;
        chosen[cand[i]] = 1;
    }
    free(cand);
    return 0;
}

/*
 * Catalog of n_catalog movies over IDs 1..max_id, of which n_items have a
 * vector. The gaps are drawn at random, never at a fixed ID or at max_id;
 * the movies without a vector likewise, never a fixed one.
 */
static int catalog_make(catalog *c, size_t n_items, size_t n_catalog, int64_t max_id, uint64_t seed)
{
    size_t n_ids = (size_t)max_id;
    unsigned char *keep = calloc(n_ids, 1);
    unsigned char *drop = calloc(n_ids, 1);
    c->movies = malloc(n_catalog * sizeof *c->movies);
    int rc = -1;
    if (!keep || !drop || !c->movies)
        goto done;

    rng r;
    rng_seed(&r, seed, STREAM_GAPS, 0);
    keep[n_ids - 1] = 1;
    for (size_t i = 0; i < FIXED_COUNT; i++)
        if (FIXED_MOVIES[i].id <= max_id)
            keep[FIXED_MOVIES[i].id - 1] = 1;
    if (choose(drop, keep, n_ids, n_ids - n_catalog, &r) != 0)
        goto done;
    c->count = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (drop[i])
            continue;
        movie *m = &c->movies[c->count++];
        m->id = (int64_t)i + 1;
        const struct fixed_movie *f = fixed_movie(m->id);
        if (f) {
            m->genres = f->genres;
            m->popularity = (int32_t)f->popularity;
        } else {
            movie_draw(m, seed);
        }
    }

    /* Reuse the arrays over catalog positions 0..count-1. */
    memset(keep, 0, n_ids);
    memset(drop, 0, n_ids);
    for (size_t i = 0; i < c->count; i++)
        keep[i] = fixed_movie(c->movies[i].id) != NULL;
    rng_seed(&r, seed, STREAM_UNRATED, 0);
    if (choose(drop, keep, c->count, c->count - n_items, &r) != 0)
        goto done;
    c->with_vector = 0;
    for (size_t i = 0; i < c->count; i++) {
        c->movies[i].has_vector = !drop[i];
        c->with_vector += (size_t)c->movies[i].has_vector;
    }
    rc = 0;
done:
    free(keep);
    free(drop);
    if (rc != 0) {
        free(c->movies);
        c->movies = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Titles (latin-1)                                                          */
/* ------------------------------------------------------------------------ */

static const char *const ADJECTIVES[] = {
    "Last", "Lost", "Silent", "Dark", "Wild", "Broken", "Golden", "Hidden", "Little", "Big",
    "Long", "Dead", "Secret", "Crimson", "Electric", "Frozen", "Midnight", "American", "Blue",
    "Lonely", "Happy", "Strange", "Sweet", "Dangerous", "Perfect", "Eternal", "Final",
    "Burning", "Iron", "Wicked", "Quiet", "Restless",
};

static const char *const NOUNS[] = {
    "Road", "River", "Heart", "Night", "City", "Summer", "Dream", "Game", "Island", "Kingdom",
    "Mirror", "Garden", "Storm", "Shadow", "Train", "Station", "Ghost", "Hunter", "Wedding",
    "Party", "Planet", "Empire", "Letter", "Soldier", "Detective", "Sister", "Stranger",
    "Machine", "Valley", "Harbor", "Circus", "Bride", "Kid", "Mountain", "Horizon", "Voyage",
    "Legend", "Frontier", "Journey", "Affair",
};

static const char *const NAMES[] = {
    "Harry", "Annie", "Jack", "Max", "Lola", "Billy", "Rosa", "Frankie", "Sam", "Nell",
};

/* Accented words, latin-1 bytes (0xA0-0xFF only, never the 0x80-0x9F range
 * that cp1252 reads differently). A literal is split after \x.. whenever the
 * next character is a hex digit. */
static const char *const FOREIGN[] = {
    "Caf\xe9", "\xc9t\xe9", "No\xebl", "Se\xf1or", "Ni\xf1o", "Fr\xe4ulein", "M\xfcnchen",
    "Cora\xe7\xe3o", "H\xf4tel", "Ch\xe2teau", "Gar\xe7on", "Ma\xf1" "ana", "Stra\xdf" "e",
    "Pi\xf1" "ata", "R\xeave", "For\xeat", "L\xe9gende", "Soir\xe9" "e", "Gl\xfc" "ck",
    "Vit\xf3ria",
};

static const char *const FOREIGN_ARTICLES[] = {"Le", "La", "Les", "L'", "El", "Der", "Die", "Il"};

static const char *const NUMERALS[] = {"II", "III", "IV"};

#define PICK(r, list) ((list)[rng_below((r), sizeof(list) / sizeof((list)[0]))])

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* Appends printf-style to a fixed buffer; output past the end is cut. */
PRINTF_LIKE(2, 3) static void title_add(char *t, const char *fmt, ...)
{
    size_t len = strlen(t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t + len, TITLE_MAX - len, fmt, ap);
    va_end(ap);
}

/* A synthetic title "Words (Year)" in the shapes MovieLens uses. */
static void title_make(char *t, int64_t id, uint64_t seed)
{
    const struct fixed_movie *f = fixed_movie(id);
    if (f) {
        snprintf(t, TITLE_MAX, "%s", f->title);
        return;
    }
    /* Every word is drawn in its own statement: the order in which a
     * compiler evaluates function arguments is unspecified, and the output
     * must not depend on it. */
    rng r;
    rng_seed(&r, seed, STREAM_TITLE, (uint64_t)id);
    uint64_t shape = rng_below(&r, 100);
    const char *adj = PICK(&r, ADJECTIVES);
    const char *noun1 = PICK(&r, NOUNS);
    const char *noun2 = PICK(&r, NOUNS);
    const char *noun3 = PICK(&r, NOUNS);
    const char *name = PICK(&r, NAMES);
    const char *foreign1 = PICK(&r, FOREIGN);
    const char *foreign2 = PICK(&r, FOREIGN);
    const char *article = PICK(&r, FOREIGN_ARTICLES);
    const char *numeral = PICK(&r, NUMERALS);
    int sequel = 2 + (int)rng_below(&r, 2);
    uint64_t u = rng_below(&r, 1000);
    int year = 2000 - (int)(82 * u * u / 1000000); /* 1919..2000, mostly the 1990s */

    t[0] = '\0';
    if (shape < 35)
        title_add(t, "%s %s", adj, noun1);
    else if (shape < 45)
        title_add(t, "%s of the %s", noun1, noun2);
    else if (shape < 57) /* leading article moved to the end */
        title_add(t, "%s %s, The", adj, noun1);
    else if (shape < 63)
        title_add(t, "%s's %s", name, noun1);
    else if (shape < 70) /* ':' inside the title */
        title_add(t, "%s %s: %s of the %s", adj, noun1, noun2, noun3);
    else if (shape < 74) /* ':' and a trailing article, like "Godfather: Part II, The" */
        title_add(t, "%s: Part %s, The", noun1, numeral);
    else if (shape < 78)
        title_add(t, "%s %s %d", adj, noun1, sequel);
    else if (shape < 83) /* latin-1 */
        title_add(t, "%s %s, %s", foreign1, foreign2, article);
    else if (shape < 86) /* an alternative title in parentheses before the year */
        title_add(t, "%s %s (%s %s)", adj, noun1, foreign1, foreign2);
    else if (shape < 88) /* quotes */
        title_add(t, "\"%s %s\" %s", adj, noun1, noun2);
    else if (shape < 92)
        title_add(t, "%s, A", noun1);
    else
        title_add(t, "%s", noun1);
    title_add(t, " (%d)", year);
}

/* latin-1 -> UTF-8: every byte >= 0x80 is the code point of the same value. */
static void latin1_to_utf8(char *out, size_t size, const char *in)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 3 <= size; p++) {
        if (*p < 0x80) {
            out[n++] = (char)*p;
        } else {
            out[n++] = (char)(0xc0 | (*p >> 6));
            out[n++] = (char)(0x80 | (*p & 0x3f));
        }
    }
    out[n] = '\0';
}

static void genres_format(char *out, size_t size, uint32_t genres)
{
    out[0] = '\0';
    for (int g = 0; g < GENRE_COUNT; g++) {
        if (genres & GB(g)) {
            size_t len = strlen(out);
            snprintf(out + len, size - len, "%s%s", len ? "|" : "", GENRE_NAMES[g]);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Output files: written beside the target, renamed when complete           */
/* ------------------------------------------------------------------------ */

typedef struct out_file {
    FILE *f;
    char path[4096];
    char tmp[4096];
    int error; /* errno of the first failed write, or -1 when unknown */
} out_file;

static int out_open(out_file *o, const char *dir, const char *name)
{
    o->error = 0;
    o->f = NULL;
    if (snprintf(o->path, sizeof o->path, "%s/%s", dir, name) >= (int)sizeof o->path ||
        snprintf(o->tmp, sizeof o->tmp, "%s/%s.tmp", dir, name) >= (int)sizeof o->tmp) {
        fprintf(stderr, PROG ": %s: path too long\n", dir);
        return -1;
    }
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        fprintf(stderr, PROG ": %s: %s\n", o->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* printf into the file; the first failure is remembered for out_commit. */
PRINTF_LIKE(2, 3) static void out_printf(out_file *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfprintf(o->f, fmt, ap);
    va_end(ap);
    if (rc < 0 && o->error == 0)
        o->error = errno ? errno : -1;
}

static void out_report(const out_file *o, int error)
{
    fprintf(stderr, PROG ": %s: write failed: %s\n", o->path,
            error > 0 ? strerror(error) : "I/O error");
}

/* Closes the file and renames it into place; on any failure removes it. */
static int out_commit(out_file *o)
{
    int error = o->error;
    if (!error && ferror(o->f))
        error = -1;
    errno = 0;
    if (fclose(o->f) != 0 && !error)
        error = errno ? errno : -1;
    o->f = NULL;
    if (!error && rename(o->tmp, o->path) != 0)
        error = errno ? errno : -1;
    if (error) {
        out_report(o, error);
        remove(o->tmp);
        return -1;
    }
    return 0;
}

static void out_abandon(out_file *o)
{
    if (o->f) {
        fclose(o->f);
        o->f = NULL;
        remove(o->tmp);
    }
}

/* ------------------------------------------------------------------------ */
/* Writers                                                                   */
/* ------------------------------------------------------------------------ */

static void csv_write_title(out_file *o, const char *utf8)
{
    if (!strpbrk(utf8, ",\"")) {
        out_printf(o, "%s", utf8);
        return;
    }
    out_printf(o, "\"");
    for (const char *p = utf8; *p; p++) {
        if (*p == '"')
            out_printf(o, "\"\"");
        else
            out_printf(o, "%c", *p);
    }
    out_printf(o, "\"");
}

/* movies.dat (latin-1, as ML-1M ships it) and movies.csv (UTF-8) together:
 * each title is made once. */
static int write_catalog(const char *dir, const catalog *c, uint64_t seed)
{
    out_file dat, csv;
    if (out_open(&dat, dir, "movies.dat") != 0)
        return -1;
    if (out_open(&csv, dir, "movies.csv") != 0) {
        out_abandon(&dat);
        return -1;
    }
    out_printf(&csv, "movieId,title,genres\n");
    char title[TITLE_MAX], utf8[2 * TITLE_MAX], genres[256];
    for (size_t i = 0; i < c->count; i++) {
        const movie *m = &c->movies[i];
        title_make(title, m->id, seed);
        latin1_to_utf8(utf8, sizeof utf8, title);
        genres_format(genres, sizeof genres, m->genres);
        out_printf(&dat, "%" PRId64 "::%s::%s\n", m->id, title, genres);
        out_printf(&csv, "%" PRId64 ",", m->id);
        csv_write_title(&csv, utf8);
        out_printf(&csv, ",%s\n", genres);
    }
    int rc = out_commit(&dat);
    if (out_commit(&csv) != 0)
        rc = -1;
    return rc;
}

/* f rounded to 7 significant digits, as a training job's output usually is,
 * then printed as the shortest decimal that reads back as exactly that
 * float32 (as Java's Float.toString does; %.9g always would). The value a
 * reader parses is the value meant. */
static void float_format(char *buf, size_t size, float f)
{
    snprintf(buf, size, "%.7g", (double)f);
    f = strtof(buf, NULL);
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, size, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f)
            return;
    }
}

/* One Spark row: ID,"[f0, f1, ...]". v is fixed point; each component is
 * converted to float32 once (exactly: |v| < 2^24 and the division by 2^20 is
 * exact in double) and printed so that it reads back unchanged. */
static void write_vector_row(out_file *o, int64_t id, const int64_t *v, uint32_t dim)
{
    char num[32];
    out_printf(o, "%" PRId64 ",\"[", id);
    for (uint32_t j = 0; j < dim; j++) {
        float_format(num, sizeof num, (float)((double)v[j] / (double)ONE));
        out_printf(o, "%s%s", j ? ", " : "", num);
    }
    out_printf(o, "]\"\n");
}

/* Item vector: the normalised sum of its genres' directions plus noise
 * (expected length 0.3), times its popularity. A pure function of
 * (seed, id, genres, dim). */
static void item_vector(int64_t *v, const movie *m, const int64_t *dirs, uint32_t dim,
                        uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, STREAM_ITEM_VEC, (uint64_t)m->id);
    for (uint32_t j = 0; j < dim; j++) {
        v[j] = 0;
        for (int g = 0; g < GENRE_COUNT; g++)
            if (m->genres & GB(g))
                v[j] += dirs[(size_t)g * dim + j];
    }
    vec_normalize(v, dim);
    int64_t sigma = noise_sigma(3 * ONE / 10, dim);
    for (uint32_t j = 0; j < dim; j++)
        v[j] = qmul(v[j] + qmul(rng_normalish(&r), sigma), m->popularity);
}

/* User vector: 1-3 favourite genres with weights in [0.5, 1.5), their
 * normalised weighted sum plus noise (expected length 0.35), times an
 * activity factor in [0.6, 1.4). A pure function of (seed, id, dim). */
static void user_vector(int64_t *v, int64_t id, const int64_t *dirs, uint32_t dim, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, STREAM_USER_VEC, (uint64_t)id);
    unsigned count = 1 + (unsigned)rng_below(&r, 3);
    memset(v, 0, dim * sizeof *v);
    uint32_t set = 0;
    for (unsigned i = 0; i < count;) {
        enum genre g = genre_draw(&r);
        if (set & GB(g))
            continue;
        set |= GB(g);
        int64_t w = ONE / 2 + rng_unit(&r);
        for (uint32_t j = 0; j < dim; j++)
            v[j] += qmul(w, dirs[(size_t)g * dim + j]);
        i++;
    }
    vec_normalize(v, dim);
    int64_t sigma = noise_sigma(35 * ONE / 100, dim);
    int64_t activity = 6 * ONE / 10 + qmul(rng_unit(&r), 8 * ONE / 10);
    for (uint32_t j = 0; j < dim; j++)
        v[j] = qmul(v[j] + qmul(rng_normalish(&r), sigma), activity);
}

/* What a vectors file holds. A row is named by a key: for items the
 * movie's position in the catalog, for users the user ID. */
typedef struct vector_source {
    const catalog *c; /* items; NULL for users */
    const int64_t *dirs;
    uint32_t dim;
    uint64_t seed;
} vector_source;

/* Fills v for the row `key`; returns the row's ID. */
static int64_t vector_make(int64_t *v, const vector_source *s, uint32_t key)
{
    if (!s->c) {
        user_vector(v, key, s->dirs, s->dim, s->seed);
        return key;
    }
    const movie *m = &s->c->movies[key];
    item_vector(v, m, s->dirs, s->dim, s->seed);
    return m->id;
}

/* DIR/name in Spark's form, rows in a shuffled order of `keys` (shuffled
 * in place). */
static int write_vectors(const char *dir, const char *name, const vector_source *s,
                         uint32_t *keys, size_t n, enum stream order_stream)
{
    int64_t *v = malloc(s->dim * sizeof *v);
    if (!v) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    rng r;
    rng_seed(&r, s->seed, order_stream, 0);
    shuffle_u32(keys, n, &r);
    out_file o;
    int rc = out_open(&o, dir, name);
    if (rc == 0) {
        out_printf(&o, "id,features\n");
        for (size_t i = 0; i < n; i++) {
            int64_t id = vector_make(v, s, keys[i]);
            write_vector_row(&o, id, v, s->dim);
        }
        rc = out_commit(&o);
    }
    free(v);
    return rc;
}

/* items.csv (the catalog's movies that have a vector) and users.csv. */
static int write_embeddings(const char *dir, const catalog *c, size_t n_users,
                            const int64_t *dirs, uint32_t dim, uint64_t seed)
{
    size_t most = c->count > n_users ? c->count : n_users;
    uint32_t *keys = malloc(most * sizeof *keys);
    if (!keys) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    vector_source items = {c, dirs, dim, seed};
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++)
        if (c->movies[i].has_vector)
            keys[n++] = (uint32_t)i;
    int rc = write_vectors(dir, "items.csv", &items, keys, n, STREAM_ITEM_ORDER);
    if (rc == 0) {
        vector_source users = {NULL, dirs, dim, seed};
        for (size_t i = 0; i < n_users; i++)
            keys[i] = (uint32_t)(i + 1);
        rc = write_vectors(dir, "users.csv", &users, keys, n_users, STREAM_USER_ORDER);
    }
    free(keys);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                              */
/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " OUTDIR [--seed N] [--items N] [--users N] [--dim D]\n"
            "\n"
            "Writes deterministic example data shaped like MovieLens 1M and a Spark ALS\n"
            "model into OUTDIR (created if missing): movies.dat (latin-1), movies.csv\n"
            "(UTF-8), items.csv and users.csv (id,features). The same arguments always\n"
            "give the same bytes.\n"
            "\n"
            "  --seed N   random seed, 0..2^64-1 (default %u)\n"
            "  --items N  movies with a vector, 1..%u (default %u); the catalog has\n"
            "             about 4.8%% more without one, over an ID range with gaps\n"
            "  --users N  users, IDs 1..N, 1..%u (default %u)\n"
            "  --dim D    vector dimension, 1..%u (default %u)\n"
            "  -h, --help this text\n"
            "\n"
            "Exit status: 0 ok, 1 a file could not be written, 2 usage.\n",
            DEFAULT_SEED, MAX_ITEMS, ML_ITEMS, MAX_USERS, ML_USERS, MAX_DIM, DEFAULT_DIM);
}

/* Decimal digits only, in [min, max]. */
static int parse_u64(uint64_t *out, const char *s, uint64_t min, uint64_t max)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

typedef struct args {
    const char *outdir;
    uint64_t seed, items, users, dim;
} args;

/* Returns 0, 1 for --help (done), 2 for a usage error (reported). */
static int parse_args(args *a, int argc, char **argv)
{
    *a = (args){NULL, DEFAULT_SEED, ML_ITEMS, ML_USERS, DEFAULT_DIM};
    const struct {
        const char *name;
        uint64_t min, max;
        uint64_t *field;
    } opts[] = {
        {"--seed", 0, UINT64_MAX, &a->seed},
        {"--items", 1, MAX_ITEMS, &a->items},
        {"--users", 1, MAX_USERS, &a->users},
        {"--dim", 1, MAX_DIM, &a->dim},
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 1;
        }
        if (arg[0] != '-' || !strcmp(arg, "-")) {
            if (a->outdir) {
                fprintf(stderr, PROG ": one OUTDIR only (got '%s' and '%s')\n", a->outdir, arg);
                return 2;
            }
            a->outdir = arg;
            continue;
        }
        size_t k = 0, n = sizeof opts / sizeof opts[0];
        size_t len = 0;
        while (k < n) {
            len = strlen(opts[k].name);
            if (!strncmp(arg, opts[k].name, len) && (arg[len] == '\0' || arg[len] == '='))
                break;
            k++;
        }
        if (k == n) {
            fprintf(stderr, PROG ": unknown option '%s' (see --help)\n", arg);
            return 2;
        }
        const char *value = arg[len] == '=' ? arg + len + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value || parse_u64(opts[k].field, value, opts[k].min, opts[k].max) != 0) {
            fprintf(stderr, PROG ": %s takes a whole number from %" PRIu64 " to %" PRIu64 "\n",
                    opts[k].name, opts[k].min, opts[k].max);
            return 2;
        }
    }
    if (!a->outdir) {
        fprintf(stderr, PROG ": missing OUTDIR\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        fprintf(stderr, PROG ": %s: path too long\n", path);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, PROG ": %s: %s\n", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, PROG ": %s: not a directory\n", path);
        return -1;
    }
    return 0;
}

/* ratings.dat (`UserID::MovieID::Rating::Timestamp`, as ML-1M): each user
 * has seen 10-59 movies drawn from their own top 2x by score, so the movies
 * a model would recommend first are mostly seen already: the case that
 * `ann-query --exclude-seen` is for. */
static int write_ratings(const char *dir, const catalog *c, size_t n_users, const int64_t *dirs,
                         uint32_t dim, uint64_t seed)
{
    vector_source items = {c, dirs, dim, seed};
    size_t n = 0, best_cap = 120;
    int64_t *iv = malloc(c->with_vector * dim * sizeof *iv), *ids = malloc(c->with_vector * sizeof *ids);
    int64_t *uv = malloc(dim * sizeof *uv), *best_s = malloc(best_cap * sizeof *best_s);
    size_t *best_i = malloc(best_cap * sizeof *best_i);
    unsigned char *taken = malloc(best_cap);
    int rc = -1;
    out_file o;
    if (!iv || !ids || !uv || !best_s || !best_i || !taken) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < c->count; i++)
        if (c->movies[i].has_vector) ids[n] = vector_make(iv + n * dim, &items, (uint32_t)i), n++;
    if (out_open(&o, dir, "ratings.dat") != 0) goto out;
    for (size_t u = 1; u <= n_users; u++) {
        rng r;
        rng_seed(&r, seed, STREAM_RATINGS, (uint64_t)u);
        user_vector(uv, (int64_t)u, dirs, dim, seed);
        size_t want = 10 + (size_t)rng_below(&r, 50), top = 2 * want, kept = 0;
        for (size_t i = 0; i < n; i++) { /* the user's top `top` items, best first */
            int64_t sc = 0;
            for (uint32_t j = 0; j < dim; j++) sc += qmul(uv[j], iv[i * dim + j]);
            if (kept == top && sc <= best_s[kept - 1]) continue;
            size_t at = kept < top ? kept++ : top - 1;
            while (at > 0 && best_s[at - 1] < sc) {
                best_s[at] = best_s[at - 1];
                best_i[at] = best_i[at - 1];
                at--;
            }
            best_s[at] = sc;
            best_i[at] = i;
        }
        memset(taken, 0, top);
        for (size_t k = 0; k < want;) {
            size_t pick = (size_t)rng_below(&r, kept);
            if (taken[pick]) continue;
            taken[pick] = 1;
            k++;
        }
        for (size_t k = 0; k < kept; k++) /* in rank order: a deterministic file */
            if (taken[k])
                out_printf(&o, "%zu::%" PRId64 "::%u::%u\n", u, ids[best_i[k]],
                           3u + (unsigned)rng_below(&r, 3), 978300000u + (unsigned)(u * 97 + k));
    }
    rc = out_commit(&o);
out:
    free(iv);
    free(ids);
    free(uv);
    free(best_s);
    free(best_i);
    free(taken);
    return rc;
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse_args(&a, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;

    /* Scale ML-1M's proportions to --items; the defaults give exactly
     * 3706 items, 3883 catalog lines and IDs up to 3952. */
    size_t n_items = (size_t)a.items;
    size_t n_catalog = n_items + n_items * ML_UNRATED / ML_ITEMS;
    int64_t max_id = (int64_t)(n_catalog + n_catalog * ML_GAPS / ML_CATALOG);
    uint32_t dim = (uint32_t)a.dim;

    if (make_dirs(a.outdir) != 0)
        return 1;
    catalog c;
    int64_t *dirs = malloc((size_t)GENRE_COUNT * dim * sizeof *dirs);
    if (!dirs || genre_directions(dirs, dim, a.seed) != 0 ||
        catalog_make(&c, n_items, n_catalog, max_id, a.seed) != 0) {
        free(dirs);
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }

    rc = 0;
    if (write_catalog(a.outdir, &c, a.seed) != 0 ||
        write_embeddings(a.outdir, &c, (size_t)a.users, dirs, dim, a.seed) != 0 ||
        write_ratings(a.outdir, &c, (size_t)a.users, dirs, dim, a.seed) != 0)
        rc = 1;
    else
        fprintf(stderr, PROG ": %s: %zu movies (%zu with a vector, dimension %u), %zu users, seed %" PRIu64 "\n",
                a.outdir, c.count, c.with_vector, dim, (size_t)a.users, a.seed);
    free(c.movies);
    free(dirs);
    return rc;
}
