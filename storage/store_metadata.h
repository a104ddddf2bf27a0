/*
 * storage/store_metadata.h — the signed desired-state answers pemnd hands to devices
 * (docs/TRUST.md, "Signed desired state"). Internal to pemnd; the same contract as
 * storage/store.h: no SQL outside storage/, every write one transaction, thread-safe.
 *
 * Per device id (across fleets: a device that moves keeps its counter):
 *   version   the last metadata version handed out; store_metadata_next_version only ever
 *             raises it, so the versions a device sees never decrease, whatever the
 *             concurrency, restarts or fleet moves.
 *   the last signed answer: its version, the fleet it was for, the hash of what it says
 *   (the caller's choice of input: pemnd hashes the unsigned answer and the signing key),
 *   issued and expiry times, and the signed body itself. Reused while the answer is the same
 *   and far enough from expiry, so that steady-state polling does not sign.
 */
#ifndef PEMN_STORAGE_STORE_METADATA_H
#define PEMN_STORAGE_STORE_METADATA_H

#include "storage/store.h"

#define STORE_METADATA_BODY_MAX 8192u /* bytes of a signed answer, NUL included */
#define STORE_METADATA_HASH_MAX 65u   /* 64 hex + NUL */

struct store_metadata {
    uint64_t version; /* of the stored body (0: none stored) */
    char fleet[STORE_LABEL_MAX];
    char answer_hash[STORE_METADATA_HASH_MAX];
    int64_t issued, expires; /* Unix seconds */
    char body[STORE_METADATA_BODY_MAX];
};

/* The last signed answer for device. *found = false (and *out zeroed) when none is stored.
 * PEMN_EDB. */
PEMN_WARN_UNUSED pemn_rc store_metadata_get(struct store *st, const char *device,
                                            struct store_metadata *out, bool *found,
                                            struct pemn_err *err);

/* Raises device's metadata counter by one (creating it at 1) and returns the new value in
 * *version: two callers never get the same value and a later call always gets a higher one.
 * PEMN_EINVAL (bad device id), PEMN_EDB. */
PEMN_WARN_UNUSED pemn_rc store_metadata_next_version(struct store *st, const char *device,
                                                     uint64_t *version, struct pemn_err *err);

/* The highest version handed out for device (0 when none). PEMN_EDB. */
PEMN_WARN_UNUSED pemn_rc store_metadata_counter(struct store *st, const char *device,
                                                uint64_t *version, struct pemn_err *err);

/* Stores m (a body signed with m->version, which came from store_metadata_next_version) as
 * device's answer, unless a body with a higher version is stored already (a concurrent
 * signer won: *stored = false, nothing changes). PEMN_EINVAL (version 0 or above the
 * counter, body too long or empty, bad hash), PEMN_EDB. stored may be NULL. */
PEMN_WARN_UNUSED pemn_rc store_metadata_put(struct store *st, const char *device,
                                            const struct store_metadata *m, bool *stored,
                                            struct pemn_err *err);

/* ---- backends (internal to storage/; storage/store_ops.h) ---------------------------------- */
/* Arguments arrive validated (device a label, m checked for lengths and version > 0). */
struct store_metadata_ops {
    pemn_rc (*get)(struct store *st, const char *device, struct store_metadata *out, bool *found,
                   struct pemn_err *err);
    pemn_rc (*next_version)(struct store *st, const char *device, uint64_t *version,
                            struct pemn_err *err);
    pemn_rc (*counter)(struct store *st, const char *device, uint64_t *version,
                       struct pemn_err *err);
    pemn_rc (*put)(struct store *st, const char *device, const struct store_metadata *m,
                   bool *stored, struct pemn_err *err);
};
extern const struct store_metadata_ops sq_metadata_ops; /* storage/sqlite_metadata.c */
extern const struct store_metadata_ops pg_metadata_ops; /* storage/pg_metadata.c */
extern const char pg_schema_metadata[];                 /* its migration (pg_schema.c) */

#endif
