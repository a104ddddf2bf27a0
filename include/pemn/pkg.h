/*
 * pemn/pkg.h — reading, verifying and expanding .pemn packages.
 *
 * The byte layout is specified in docs/FORMAT.md. A package holds one model: a manifest
 * (name, version label, release number, creation time, strategy, density, metadata),
 * prototypes (explicit float32 values, or seeded: see pemn/gen.h), tensors (masked or
 * dense), the signer's public key, a content digest and an Ed25519 signature.
 *
 * Masked tensor element i (row-major) = (scale * proto[(offset + i) mod d_v]) * mask[i],
 * with mask[i] as 0.0 or 1.0, in binary32 (as PyTorch's weight * mask), so expansion is
 * bit-exact and reproducible.
 * Masked tensors always expand to float32.
 *
 * Opening checks the structure completely (every count, length, offset, alignment and shape
 * product); it does not check the digest or the signature: pemn_pkg_verify does. A
 * damaged file yields PEMN_ECORRUPT (or PEMN_EVERSION for an unknown major version),
 * never a crash or an allocation sized by the file before it is bounded.
 *
 * Identity of a package: "sha256:<hex>" of the whole file's bytes (pemn_pkg_digest).
 *
 * Thread-safety: a pemn_pkg is immutable after open; concurrent reads and expansions of
 * one package from several threads are safe.
 */
#ifndef PEMN_PKG_H
#define PEMN_PKG_H

#include <pemn/common.h>
#include <pemn/key.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pemn_pkg pemn_pkg;

/* Limits a reader enforces (also the writer's limits). */
#define PEMN_MAX_TENSORS 65536u
#define PEMN_MAX_PROTOS 65536u
#define PEMN_MAX_META 1024u
#define PEMN_MAX_NAME 1024u        /* tensor names, metadata keys */
#define PEMN_MAX_META_VALUE 65536u /* one metadata value */
#define PEMN_MAX_LABEL 128u        /* model name, version label, strategy */

/* Flags for open. */
#define PEMN_OPEN_COPY 1u /* open_mem: copy the bytes instead of borrowing them */

/* Opens a package held in memory. Without PEMN_OPEN_COPY the bytes are borrowed and must
 * outlive the package. *out is new; free with pemn_pkg_free. */
PEMN_WARN_UNUSED pemn_rc pemn_pkg_open_mem(const void *data, size_t len, unsigned flags,
                                           pemn_pkg **out, struct pemn_err *err);
/* Opens a file by mmap (read-only); nothing is copied. */
PEMN_WARN_UNUSED pemn_rc pemn_pkg_open_file(const char *path, unsigned flags, pemn_pkg **out,
                                            struct pemn_err *err);
void pemn_pkg_free(pemn_pkg *pkg); /* NULL is a no-op */

/* The whole file (borrowed). */
const uint8_t *pemn_pkg_bytes(const pemn_pkg *pkg, size_t *len);

/* ---- manifest ------------------------------------------------------------------------- */
struct pemn_pkg_info {
    const char *name;     /* borrowed, NUL-terminated, valid while pkg lives */
    const char *version;  /* version label */
    const char *strategy; /* "one-layer", "mp", "rp", "mask", "dense", ... (free text) */
    uint64_t release;     /* strictly increasing per model; rollback protection */
    int64_t created;      /* Unix seconds */
    float density;        /* k: fraction of weights kept; 0 when not applicable */
    uint16_t format_major, format_minor;
    uint32_t n_tensors, n_protos, n_meta;
    uint64_t file_size;
    uint64_t n_params; /* total elements over all tensors */
    uint64_t n_masked; /* elements of masked tensors */
    uint64_t f32_size; /* size of the same network as a float32 safetensors file */
    struct pemn_pubkey signer;
    uint8_t signer_id[PEMN_KEYID_BYTES];
};
pemn_rc pemn_pkg_info(const pemn_pkg *pkg, struct pemn_pkg_info *out);
/* i-th metadata pair (borrowed strings). PEMN_ENOTFOUND when i is out of range. */
pemn_rc pemn_pkg_meta(const pemn_pkg *pkg, uint32_t i, const char **key, const char **value);
/* Value for a key (borrowed) or NULL. */
const char *pemn_pkg_meta_get(const pemn_pkg *pkg, const char *key);

/* ---- prototypes ----------------------------------------------------------------------- */
#define PEMN_PROTO_EXPLICIT 1
#define PEMN_PROTO_SEEDED 2
struct pemn_proto_info {
    uint32_t kind;      /* PEMN_PROTO_EXPLICIT or PEMN_PROTO_SEEDED */
    uint64_t length;    /* d_v */
    uint32_t generator; /* seeded only: pemn_gen */
    float scale;        /* seeded only */
    uint8_t seed[32];   /* seeded only */
};
pemn_rc pemn_pkg_proto(const pemn_pkg *pkg, uint32_t i, struct pemn_proto_info *out);
/* The prototype's values (borrowed; seeded prototypes are generated once, on first use,
 * thread-safely). */
pemn_rc pemn_pkg_proto_values(const pemn_pkg *pkg, uint32_t i, const float **values,
                              struct pemn_err *err);

/* ---- tensors -------------------------------------------------------------------------- */
#define PEMN_MASK_BITS 1 /* mask encoding: 1 bit per element, LSB-first (docs/FORMAT.md) */
struct pemn_tensor_info {
    const char *name; /* borrowed */
    pemn_dtype dtype; /* F32 for masked tensors */
    uint32_t ndim;
    uint64_t shape[PEMN_MAX_DIMS];
    uint64_t numel;
    int masked; /* 1 masked, 0 dense */
    /* masked only */
    uint32_t proto;
    uint64_t offset;
    float scale;
    uint32_t mask_encoding;
    uint64_t kept;       /* number of 1 bits */
    const uint8_t *mask; /* borrowed: the packed bits */
    /* dense only */
    const void *data;      /* borrowed: raw little-endian data in dtype */
    uint64_t stored_bytes; /* bytes this tensor occupies in the file (mask or data) */
};
uint32_t pemn_pkg_tensor_count(const pemn_pkg *pkg);
pemn_rc pemn_pkg_tensor(const pemn_pkg *pkg, uint32_t i, struct pemn_tensor_info *out);
pemn_rc pemn_pkg_find(const pemn_pkg *pkg, const char *name, uint32_t *index);

/* ---- verification --------------------------------------------------------------------- */
/* SHA-256 of the whole file: the package identity. */
void pemn_pkg_digest(const pemn_pkg *pkg, uint8_t out[PEMN_DIGEST_BYTES]);
/* Checks the content digest and every signature, then that a signer is in `trusted`.
 * PEMN_OK; PEMN_ECORRUPT (content digest wrong); PEMN_EBADSIG (a signature does not verify
 * under its key); PEMN_EUNTRUSTED (valid, no signer trusted, or trusted is NULL/empty). */
PEMN_WARN_UNUSED pemn_rc pemn_pkg_verify(const pemn_pkg *pkg, const pemn_keyring *trusted,
                                         struct pemn_err *err);

/* ---- several signatures (format 1.1, docs/FORMAT.md "Co-signatures") ------------------ */
/* At most this many signatures on one package (the trailer's plus co-signatures). */
#define PEMN_PKG_MAX_SIGNERS 16u
/* Number of signatures the package carries (>= 1): the trailer's, then the co-signatures in
 * file order. Signer 0 is pemn_pkg_info.signer. */
uint32_t pemn_pkg_signer_count(const pemn_pkg *pkg);
/* Key (and id, when id is not NULL) of signature i. PEMN_ENOTFOUND when out of range. */
pemn_rc pemn_pkg_signer(const pemn_pkg *pkg, uint32_t i, struct pemn_pubkey *pk,
                        uint8_t id[PEMN_KEYID_BYTES]);
/* Checks the content digest (PEMN_ECORRUPT) and that every signature verifies under its key
 * (PEMN_EBADSIG naming the key). No trust decision: see pemn_pkg_verify, pemn/trust.h. */
PEMN_WARN_UNUSED pemn_rc pemn_pkg_verify_signatures(const pemn_pkg *pkg, struct pemn_err *err);
/* The package's bytes with sk's co-signature added, into *out (new, malloc'ed; free()).
 * The content and its digest are unchanged; the identity (whole-file digest) changes.
 * PEMN_EEXIST when sk already signed; PEMN_EVERSION for a format 1.0 package (its header
 * cannot announce co-signatures: re-pack it); PEMN_ETOOBIG past PEMN_PKG_MAX_SIGNERS.
 * The existing signatures are verified first (PEMN_ECORRUPT / PEMN_EBADSIG). */
PEMN_WARN_UNUSED pemn_rc pemn_pkg_add_signature(const pemn_pkg *pkg, const struct pemn_seckey *sk,
                                                uint8_t **out, size_t *out_len,
                                                struct pemn_err *err);

/* ---- expansion ------------------------------------------------------------------------ */
/* Writes tensor i as float32 into out (n_out elements, must equal numel). Masked tensors are
 * expanded; dense F32/F16/BF16/F64 tensors are converted; other dtypes: PEMN_EUNSUPPORTED. */
pemn_rc pemn_pkg_expand(const pemn_pkg *pkg, uint32_t i, float *out, uint64_t n_out,
                        struct pemn_err *err);
/* Expands every tensor i whose outs[i] is not NULL into outs[i] (numel floats each), as
 * pemn_pkg_expand does; n must equal pemn_pkg_tensor_count (PEMN_EINVAL otherwise). Pass
 * NULL for tensors not wanted and for dtypes that do not convert (integers, BOOL, F8:
 * PEMN_EUNSUPPORTED if given a buffer). Stops at the first error, naming the tensor. */
pemn_rc pemn_pkg_expand_all(const pemn_pkg *pkg, float *const *outs, uint32_t n,
                            struct pemn_err *err);
/* Writes the whole network as a safetensors file: masked tensors as F32, dense tensors as
 * stored; the manifest goes into __metadata__. Written to a temporary file, fsync'ed, then
 * renamed over path. Memory: one tensor at a time. */
pemn_rc pemn_pkg_write_safetensors(const pemn_pkg *pkg, const char *path, struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
