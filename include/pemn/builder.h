/*
 * pemn/builder.h — building and signing packages.
 *
 * A builder collects the manifest, prototypes and tensors (all inputs are copied), then
 * serialises them in the layout of docs/FORMAT.md, computes the content digest and signs
 * it with the publisher's Ed25519 key.
 *
 * Thread-safety: a builder is used by one thread at a time.
 */
#ifndef PEMN_BUILDER_H
#define PEMN_BUILDER_H

#include <pemn/common.h>
#include <pemn/key.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pemn_builder pemn_builder;

/* Most bytes (values, masks, dense data, strings) one builder holds: PEMN_ETOOBIG beyond. */
#define PEMN_BUILDER_MAX_BYTES (UINT64_C(1) << 36)

/* name and version: PEMN_MAX_LABEL bytes at most, [A-Za-z0-9][A-Za-z0-9._-]* ;
 * created defaults to now, strategy to "", density to 0. */
pemn_rc pemn_builder_new(const char *name, const char *version, uint64_t release,
                         pemn_builder **out, struct pemn_err *err);
void pemn_builder_free(pemn_builder *b); /* NULL is a no-op */

pemn_rc pemn_builder_set_strategy(pemn_builder *b, const char *strategy);
pemn_rc pemn_builder_set_density(pemn_builder *b, float density); /* 0 < k <= 1, or 0 */
pemn_rc pemn_builder_set_created(pemn_builder *b, int64_t unix_seconds);
/* Adds or replaces a metadata pair. */
pemn_rc pemn_builder_add_meta(pemn_builder *b, const char *key, const char *value);

/* Prototypes; *id receives the index to name in add_masked. */
pemn_rc pemn_builder_add_proto_values(pemn_builder *b, const float *values, uint64_t n,
                                      uint32_t *id);
pemn_rc pemn_builder_add_proto_seeded(pemn_builder *b, uint32_t generator, const uint8_t seed[32],
                                      float scale, uint64_t n, uint32_t *id);

/* A masked tensor: element i = (scale * proto[(offset + i) mod d_v]) * (mask[i] ? 1 : 0),
 * as PyTorch's weight * mask (a dropped negative weight expands to -0.0).
 * `mask` has one byte per element (nonzero keeps the weight). */
pemn_rc pemn_builder_add_masked(pemn_builder *b, const char *name, uint32_t ndim,
                                const uint64_t *shape, uint32_t proto, uint64_t offset, float scale,
                                const uint8_t *mask, struct pemn_err *err);
/* The same with the mask already packed (1 bit per element, LSB-first). */
pemn_rc pemn_builder_add_masked_bits(pemn_builder *b, const char *name, uint32_t ndim,
                                     const uint64_t *shape, uint32_t proto, uint64_t offset,
                                     float scale, const uint8_t *bits, struct pemn_err *err);
/* A dense tensor stored raw (little-endian) in its dtype; nbytes must equal
 * numel * dtype size. */
pemn_rc pemn_builder_add_dense(pemn_builder *b, const char *name, pemn_dtype dtype, uint32_t ndim,
                               const uint64_t *shape, const void *data, uint64_t nbytes,
                               struct pemn_err *err);

/* Mask encoding of the masked tensors added after this call: 0 (default) stores each mask
 * in whichever encoding is smaller, bit-packed (PEMN_MASK_BITS) or entropy-coded
 * (PEMN_MASK_RANS, readable by readers of format 1.1 and later); PEMN_MASK_BITS always
 * bit-packs (for old readers); PEMN_MASK_RANS codes every mask the format allows (tests).
 * A package with a coded mask is written as format minor 1. PEMN_EINVAL for other values. */
pemn_rc pemn_builder_set_mask_encoding(pemn_builder *b, uint32_t encoding);

/* Serialises and signs. *out is malloc'ed (release with free()). */
pemn_rc pemn_builder_finish(pemn_builder *b, const struct pemn_seckey *key, uint8_t **out,
                            size_t *out_len, struct pemn_err *err);
/* Serialises, signs and writes path atomically (temporary file, fsync, rename). */
pemn_rc pemn_builder_write_file(pemn_builder *b, const struct pemn_seckey *key, const char *path,
                                struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
