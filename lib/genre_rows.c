/* genre_rows.c - per-genre row bitmaps, built on first use (genre_rows.h). */
#include "genre_rows.h"

#include <stdatomic.h>
#include <stdlib.h>

struct annb_genre_rows {
    uint32_t count;
    _Atomic(uint8_t *) bitmap[]; /* count of them, NULL until built */
};

annb_genre_rows *annb_genre_rows_new(uint32_t genre_count)
{
    annb_genre_rows *gr = malloc(sizeof *gr + (size_t)genre_count * sizeof gr->bitmap[0]);
    if (!gr) return NULL;
    gr->count = genre_count;
    for (uint32_t g = 0; g < genre_count; g++) atomic_init(&gr->bitmap[g], NULL);
    return gr;
}

void annb_genre_rows_free(annb_genre_rows *gr)
{
    for (uint32_t g = 0; gr && g < gr->count; g++) free(atomic_load(&gr->bitmap[g]));
    free(gr);
}

const uint8_t *annb_genre_rows_get(annb_genre_rows *gr, uint32_t g, const uint64_t *bits,
                                   uint32_t words, uint64_t rows)
{
    if (!gr || g >= gr->count) return NULL;
    uint8_t *have = atomic_load_explicit(&gr->bitmap[g], memory_order_acquire);
    if (have) return have;
    uint8_t *made = calloc((size_t)(rows + 7) / 8, 1);
    if (!made) return NULL;
    const uint64_t mask = 1ull << (g % 64);
    const uint64_t *col = bits + g / 64;
    for (uint64_t r = 0; r < rows; r++)
        if (col[r * words] & mask) made[r / 8] |= (uint8_t)(1u << (r % 8));
    if (atomic_compare_exchange_strong_explicit(&gr->bitmap[g], &have, made, memory_order_acq_rel,
                                                memory_order_acquire))
        return made;
    free(made); /* another thread built it first: theirs is in `have` */
    return have;
}
