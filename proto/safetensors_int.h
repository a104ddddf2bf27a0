/*
 * proto/safetensors_int.h — safetensors internals shared by the reader, the writer and
 * the package exporter (proto/pkg_st.c).
 */
#ifndef PEMN_PROTO_SAFETENSORS_INT_H
#define PEMN_PROTO_SAFETENSORS_INT_H

#include <pemn/safetensors.h>

/* Largest JSON header the reader accepts and the writer produces (100 MiB). */
#define PROTO_ST_MAX_HEADER (100u << 20)
/* Most tensors in one file (the header limit allows no more than ~2.6 million anyway). */
#define PROTO_ST_MAX_TENSORS (1u << 24)
/* Most metadata pairs a writer accepts. */
#define PROTO_ST_MAX_META (1u << 20)

/* Produces bytes [off, off + nbytes) of a lazy tensor (little-endian) into buf at write
 * time. off and nbytes are multiples of the dtype size. */
typedef pemn_rc (*proto_st_fill_fn)(void *ctx, uint64_t arg, uint64_t off, void *buf,
                                    uint64_t nbytes, struct pemn_err *err);

/* Chunk in which write_file produces and writes lazy tensors (a multiple of 64): small
 * enough to stay in cache between being produced and being copied by write(). */
#define PROTO_ST_FILL_CHUNK (1u << 20)

/* Adds a tensor whose bytes are produced by fill(ctx, arg, ...) when the writer writes:
 * write_file produces them PROTO_ST_FILL_CHUNK bytes at a time through one buffer, so its
 * memory is bounded whatever the tensor sizes; write_mem asks for each tensor whole. */
pemn_rc proto_st_writer_add_lazy(pemn_st_writer *w, const char *name, pemn_dtype dtype,
                                 uint32_t ndim, const uint64_t *shape, proto_st_fill_fn fill,
                                 void *ctx, uint64_t arg, struct pemn_err *err);

#endif
