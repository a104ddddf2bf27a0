/*
 * pemn/safetensors.h — the Hugging Face safetensors layout, read and written.
 *
 * Layout: u64 little-endian N = header length; N bytes of UTF-8 JSON
 *   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [..],
 *    "data_offsets": [begin, end]}, ...}
 * then the data buffer; offsets are relative to the start of the buffer. The reader
 * checks: N bounded (100 MiB) and within the file, valid JSON object, known dtypes,
 * shape products without overflow, end - begin == numel * dtype size, offsets inside the
 * buffer, no overlaps, and the buffer fully covered. Also: the header starts with '{', is
 * valid UTF-8 JSON with no duplicate names and no trailing bytes (space padding is fine),
 * every tensor has exactly the fields dtype, shape, data_offsets, and __metadata__ is an
 * object of strings. Errors: PEMN_ECORRUPT for all of these, PEMN_EUNSUPPORTED for a dtype
 * name this library does not know, PEMN_ETOOBIG for more than PEMN_MAX_DIMS dimensions or
 * a header over 100 MiB; err->offset points into the file where it can.
 *
 * The writer lays tensors out in insertion order from offset 0 and writes compact JSON
 * ("__metadata__" first) padded with spaces to a multiple of 8 bytes, so the data buffer
 * starts 8-byte aligned; a given set of tensors always gives the same bytes.
 *
 * Thread-safety: a reader is immutable after open; a writer is single-threaded.
 */
#ifndef PEMN_SAFETENSORS_H
#define PEMN_SAFETENSORS_H

#include <pemn/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pemn_st pemn_st;

struct pemn_st_tensor {
    const char *name; /* borrowed */
    pemn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[PEMN_MAX_DIMS];
    uint64_t numel;
    const void *data; /* borrowed, little-endian, possibly unaligned */
    uint64_t nbytes;
};

/* Borrows data unless PEMN_OPEN_COPY (pemn/pkg.h) is given. */
PEMN_WARN_UNUSED pemn_rc pemn_st_open_mem(const void *data, size_t len, unsigned flags,
                                          pemn_st **out, struct pemn_err *err);
PEMN_WARN_UNUSED pemn_rc pemn_st_open_file(const char *path, pemn_st **out, struct pemn_err *err);
void pemn_st_free(pemn_st *st); /* NULL is a no-op */

/* Tensors in data-offset order. */
uint32_t pemn_st_count(const pemn_st *st);
pemn_rc pemn_st_tensor(const pemn_st *st, uint32_t i, struct pemn_st_tensor *out);
pemn_rc pemn_st_find(const pemn_st *st, const char *name, uint32_t *index);
/* __metadata__ value (borrowed) or NULL. */
const char *pemn_st_meta_get(const pemn_st *st, const char *key);
uint32_t pemn_st_meta_count(const pemn_st *st);
pemn_rc pemn_st_meta(const pemn_st *st, uint32_t i, const char **key, const char **value);

/* ---- writer --------------------------------------------------------------------------- */
typedef struct pemn_st_writer pemn_st_writer;

pemn_rc pemn_st_writer_new(pemn_st_writer **out);
void pemn_st_writer_free(pemn_st_writer *w); /* NULL is a no-op */
/* Adds a tensor. The data is borrowed until the writer writes or is freed. PEMN_EINVAL for
 * a bad dtype, more than PEMN_MAX_DIMS dimensions, nbytes != numel * dtype size, a name
 * that is "__metadata__" or not UTF-8; PEMN_EEXIST for a name already added. A failed add
 * leaves the writer as it was. */
pemn_rc pemn_st_writer_add(pemn_st_writer *w, const char *name, pemn_dtype dtype, uint32_t ndim,
                           const uint64_t *shape, const void *data, uint64_t nbytes,
                           struct pemn_err *err);
/* Adds a metadata pair, or replaces the value of an existing key (strings are copied). */
pemn_rc pemn_st_writer_add_meta(pemn_st_writer *w, const char *key, const char *value);
/* Writes atomically (temporary file, fsync, rename). */
pemn_rc pemn_st_writer_write_file(pemn_st_writer *w, const char *path, struct pemn_err *err);
/* Serialises into a malloc'ed buffer (release with free()). */
pemn_rc pemn_st_writer_write_mem(pemn_st_writer *w, uint8_t **out, size_t *len,
                                 struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
