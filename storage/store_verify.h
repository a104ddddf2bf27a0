/*
 * storage/store_verify.h — the integrity of stored package bytes.
 *
 * A blob is addressed by the SHA-256 of its bytes; bit rot, a damaged file or a bad restore
 * can leave bytes that no longer hash to their digest. The store never hands out such bytes:
 * store_blob_get hashes a blob the first time it is read after the store was opened (when
 * it fills the memory cache, or, for a blob streamed in chunks, once in full before the
 * first handle) and answers PEMN_EDIGEST when the hash differs. Digests that verified are
 * remembered for the life of the struct store (at most STORE_VERIFIED_MAX of them; past
 * that a blob is verified again on each cold read).
 *
 * A scrub walks every stored blob and hashes it, each chunk a short read of its own (no
 * read snapshot is pinned), at a bounded rate, and reports every blob whose bytes are bad.
 *
 * Thread-safety: every function may be called from any thread at any time.
 */
#ifndef PEMN_STORAGE_STORE_VERIFY_H
#define PEMN_STORAGE_STORE_VERIFY_H

#include "storage/store.h"

#include <stdatomic.h>

#define STORE_VERIFIED_MAX (1u << 20)

/* Hashes the blob's stored bytes and compares them with its digest. PEMN_OK when they
 * match (the digest is then remembered as verified); PEMN_EDIGEST when they differ (or the
 * stored length differs from the recorded size); PEMN_ENOTFOUND; PEMN_EDB. */
pemn_rc store_verify_blob(struct store *st, const char *digest, struct pemn_err *err);

/* Whether digest ("sha256:<hex>", canonical lower case) verified since the store opened. */
bool store_verify_known(struct store *st, const char *digest);

struct store_scrub_stats {
    uint64_t blobs;      /* blobs checked */
    uint64_t bytes;      /* bytes hashed */
    uint64_t bad;        /* blobs whose bytes do not hash to their digest */
    uint64_t unreadable; /* blobs that could not be read (database error) */
};

/* Called for every bad or unreadable blob: rc is PEMN_EDIGEST or the read error, msg says
 * what was found. Return nonzero to stop the scrub. */
typedef int (*store_scrub_cb)(void *ctx, const char *digest, uint64_t size, pemn_rc rc,
                              const char *msg);

/* Hashes every stored blob, in rowid order. rate_bytes_per_s bounds the read rate (0: as
 * fast as possible). stop, when not NULL, is polled between chunks: when it becomes true the
 * scrub returns PEMN_ECANCELED. stats may be NULL. Bad blobs are reported through cb (may be
 * NULL) and counted; the return value is PEMN_OK when the walk completed (whatever it
 * found), PEMN_ECANCELED, or PEMN_EDB when the blob list could not be read. */
pemn_rc store_scrub(struct store *st, uint64_t rate_bytes_per_s, const atomic_bool *stop,
                    store_scrub_cb cb, void *ctx, struct store_scrub_stats *stats,
                    struct pemn_err *err);

/* ---- internal to storage/ -------------------------------------------------------------- */
/* The backends' part: walking the blob rows. blob_next gives the first blob whose reference
 * is greater than after (after = -1: the first), with its digest, recorded size and the
 * number of bytes actually stored; PEMN_ENOTFOUND past the last. */
struct store_verify_ops {
    pemn_rc (*blob_next)(struct store *st, int64_t after, int64_t *ref,
                         char digest[PEMN_DIGEST_TEXT_MAX], uint64_t *size, uint64_t *stored,
                         struct pemn_err *err);
};
extern const struct store_verify_ops sq_verify_ops;
extern const struct store_verify_ops pg_verify_ops;

/* The set of verified digests hanging on struct store (created at open, freed at close). */
struct verified_set;
struct verified_set *store_verified_new(void);
void store_verified_free(struct verified_set *v);
bool store_verified_has(struct store *st, const uint8_t d[PEMN_DIGEST_BYTES]);
void store_verified_add(struct store *st, const uint8_t d[PEMN_DIGEST_BYTES]);
/* SHA-256 of a stored blob, read through the backend in 1 MiB short reads; rate bytes/s (0:
 * unbounded); stop polled between chunks (may be NULL). */
pemn_rc store_hash_blob(struct store *st, int64_t ref, uint64_t size, uint64_t rate,
                        const atomic_bool *stop, uint8_t out[PEMN_DIGEST_BYTES],
                        struct pemn_err *err);

#endif
