/*
 * storage/store_delta.h — package deltas computed by the server (issue 12, docs/API.md
 * "Deltas"): which package version a digest is, and the delta from one version of a model
 * to another, stored once computed.
 *
 * A delta row names NEW and OLD by their digests and either the blob holding the delta
 * bytes (its own SHA-256, stored in the blobs table like any blob, read with
 * store_blob_get) or, when the delta was not smaller than NEW, no blob: the server then
 * remembers not to compute it again.
 *
 * Thread-safety: any thread (each call borrows a connection).
 */
#ifndef PEMN_STORAGE_STORE_DELTA_H
#define PEMN_STORAGE_STORE_DELTA_H

#include "storage/store.h"

struct store_delta {
    char new_digest[PEMN_DIGEST_TEXT_MAX];
    char old_digest[PEMN_DIGEST_TEXT_MAX];
    bool smaller;                            /* false: computed, not smaller than NEW */
    char delta_digest[PEMN_DIGEST_TEXT_MAX]; /* "" when !smaller */
    uint64_t size;                           /* delta bytes (0 when !smaller) */
    uint64_t new_size;                       /* NEW's package bytes */
    int64_t created;
};

/* The package version whose bytes have this digest (model, version, release, digest,
 * size filled). PEMN_ENOTFOUND when no version has it; PEMN_EINVAL for a malformed digest. */
pemn_rc store_delta_version_of(struct store *st, const char *digest, struct store_version *out,
                               struct pemn_err *err);

/* The stored delta from old_digest to new_digest. PEMN_ENOTFOUND when none was stored. */
pemn_rc store_delta_get(struct store *st, const char *new_digest, const char *old_digest,
                        struct store_delta *out, struct pemn_err *err);

/* Stores a computed delta: bytes (len > 0, its blob digest computed here) when it is
 * smaller than NEW, or bytes NULL to record that it is not. new_size is NEW's size; a
 * delta of len >= new_size is refused (PEMN_EINVAL). Idempotent: when a row for the pair
 * exists already (another request computed it first), nothing changes and out (may be
 * NULL) receives the stored row. */
pemn_rc store_delta_put(struct store *st, const char *new_digest, const char *old_digest,
                        uint64_t new_size, const void *bytes, size_t len, struct store_delta *out,
                        struct pemn_err *err);

/* ---- internal to storage/: the backends' table (digests canonical, arguments checked) ---- */
struct store_delta_ops {
    pemn_rc (*version_of)(struct store *st, const char *digest, struct store_version *out,
                          struct pemn_err *err);
    pemn_rc (*get)(struct store *st, const char *new_digest, const char *old_digest,
                   struct store_delta *out, struct pemn_err *err);
    /* delta_digest "" and bytes NULL when not smaller */
    pemn_rc (*put)(struct store *st, const struct store_delta *row, const void *bytes,
                   struct pemn_err *err);
};
extern const struct store_delta_ops sq_delta_ops;
extern const struct store_delta_ops pg_delta_ops;

#endif
