/*
 * storage/store_trust.h — the root-of-trust chain and package signers in the registry store
 * (internal to pemnd; the contract of storage/store.h: no SQL outside storage/, every write
 * one transaction, thread-safe).
 *
 * Data model:
 *   root     a version number -> the root file's exact bytes, its digest, expiry and when it
 *            was added. Versions are consecutive: a new one must be the latest + 1 (checked
 *            in the write transaction, so two concurrent adds cannot both succeed); the first
 *            may have any version. The signatures are checked by the caller (server/
 *            srv_trust.c) before storing: the store keeps bytes, it does not judge them.
 *   signers  a package digest -> the Ed25519 public keys of every signature it carries
 *            (format 1.1 co-signatures included), recorded at push.
 */
#ifndef PEMN_STORAGE_STORE_TRUST_H
#define PEMN_STORAGE_STORE_TRUST_H

#include "storage/store.h"

struct store_root {
    uint64_t version;
    int64_t expires; /* Unix seconds, from the root */
    int64_t added;   /* when stored */
    char digest[PEMN_DIGEST_TEXT_MAX];
    uint64_t size;
};

/* Stores a root. *created (may be NULL) tells whether a row was added: storing the identical
 * bytes under their version again is PEMN_OK with *created = false. PEMN_ECONFLICT when other
 * bytes hold that version, or when roots exist and version is not the latest + 1 (message
 * names the latest). One audit row "root.add". */
PEMN_WARN_UNUSED pemn_rc store_trust_root_put(struct store *st, uint64_t version, int64_t expires,
                                              const void *bytes, size_t len, const char *actor,
                                              bool *created, struct pemn_err *err);
/* One root (version 0: the latest). *bytes (may be NULL: metadata only) is new, malloc'ed;
 * free(). PEMN_ENOTFOUND when absent (or when no root exists, for version 0). */
pemn_rc store_trust_root_get(struct store *st, uint64_t version, struct store_root *meta,
                             uint8_t **bytes, size_t *len, struct pemn_err *err);
typedef int (*store_root_cb)(void *ctx, const struct store_root *r);
/* Every root, oldest first. */
pemn_rc store_trust_root_list(struct store *st, store_root_cb cb, void *ctx, struct pemn_err *err);

/* Records the signer keys of a package (duplicates ignored; idempotent). */
pemn_rc store_trust_signers_put(struct store *st, const char *digest,
                                const struct pemn_pubkey *keys, size_t n, struct pemn_err *err);
/* The signer keys recorded for a package, at most cap, into keys; *n = how many (0 when none
 * are recorded: packages pushed before this table existed). */
pemn_rc store_trust_signers_get(struct store *st, const char *digest, struct pemn_pubkey *keys,
                                size_t cap, size_t *n, struct pemn_err *err);

/* ---- backends (internal to storage/: storage/store_ops.h) ---------------------------------- */
/* Arguments validated and the root's digest computed by storage/store_trust.c. */
struct store_trust_ops {
    pemn_rc (*root_put)(struct store *st, uint64_t version, int64_t expires, const char *digest,
                        const void *bytes, size_t len, const char *actor, bool *created,
                        struct pemn_err *err);
    pemn_rc (*root_get)(struct store *st, uint64_t version, struct store_root *meta,
                        uint8_t **bytes, size_t *len, struct pemn_err *err);
    pemn_rc (*root_list)(struct store *st, store_root_cb cb, void *ctx, struct pemn_err *err);
    pemn_rc (*signers_put)(struct store *st, const char *digest, const struct pemn_pubkey *keys,
                           size_t n, struct pemn_err *err);
    pemn_rc (*signers_get)(struct store *st, const char *digest, struct pemn_pubkey *keys,
                           size_t cap, size_t *n, struct pemn_err *err);
};
extern const struct store_trust_ops sq_trust_ops; /* storage/sqlite_trust.c */
extern const struct store_trust_ops pg_trust_ops; /* storage/pg_trust.c */
/* The schema migration of each backend (appended to its migration list). */
extern const char sq_schema_trust[];
extern const char pg_schema_trust[];

#endif
