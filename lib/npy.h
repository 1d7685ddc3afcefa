/*
 * npy.h - numpy .npy matrices as embeddings (internal to libannb).
 *
 * A .npy file (format versions 1.0, 2.0 and 3.0) holding a C-order 2-D
 * array of little-endian float32 ('<f4') or float64 ('<f8'): one row per
 * vector. It holds no IDs: they come from a second .npy of little-endian
 * int64 ('<i8') or int32 ('<i4'), shape (n,) or (n, 1), one per row
 * (annb_read_opts.ids_path), or are the row numbers 0..n-1 when the caller
 * asks for that explicitly (ids_from_rows). Streamed block by block (gzip
 * and zstd too, as annb_source reads them). Errors name the file and the
 * byte offset (and the row and value): a header that is not a Python dict
 * literal with descr, fortran_order and shape, another dtype, Fortran
 * order, a shape that is not 2-D, fewer or more data bytes than the shape
 * says, a value that is not a finite float32 (float64 beyond the float32
 * range included), an ID count that differs from the rows, a repeated or
 * reserved (INT64_MIN) ID.
 */
#ifndef ANNB_NPY_H
#define ANNB_NPY_H

#include "csvread.h"
#include "ingest.h"

/* Reads the rest of src (whose first block starts with the .npy magic) into
 * out: IDs checked unique, overflow noted as annb_embeddings_read does.
 * On failure out is released. */
int annb_npy_read(annb_embeddings *out, annb_source *src, const annb_read_opts *o,
                  annb_error *err);

#endif /* ANNB_NPY_H */
