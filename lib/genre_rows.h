/* genre_rows.h - for each catalog genre, the bitmap of item rows that have
 * it, built the first time a search filters on the genre and kept with the
 * bundle. A genre filter then costs one of these bitmaps (or an OR of a few,
 * n/8 bytes each) instead of a pass over every row's genre bits per call
 * (0.8 ms at 200k items, the whole cost of a filtered graph search). */
#ifndef ANNB_GENRE_ROWS_H
#define ANNB_GENRE_ROWS_H

#include <stdint.h>

typedef struct annb_genre_rows annb_genre_rows;

/* Room for genre_count bitmaps, none built; NULL when out of memory. */
annb_genre_rows *annb_genre_rows_new(uint32_t genre_count);
void annb_genre_rows_free(annb_genre_rows *gr);

/* The bitmap of genre g (bit r of byte r/8 set when row r has it) over
 * `rows` rows whose genre bits are `bits` (`words` u64 per row), built on
 * first call. Lock-free and thread-safe: threads that race to build one
 * each build it, one copy is kept, the others freed. NULL when out of
 * memory. Valid until annb_genre_rows_free. */
const uint8_t *annb_genre_rows_get(annb_genre_rows *gr, uint32_t g, const uint64_t *bits,
                                   uint32_t words, uint64_t rows);

#endif /* ANNB_GENRE_ROWS_H */
