/*
 * storage/store_devguard.h — limits on how device tokens register devices (docs/SECURITY.md,
 * item 4): which fleet a device is in, and a per-token record of the devices it registered
 * (count and rate), so that one token cannot invent devices without limit.
 *
 * Thread-safety: any thread (each call borrows a connection).
 */
#ifndef PEMN_STORAGE_STORE_DEVGUARD_H
#define PEMN_STORAGE_STORE_DEVGUARD_H

#include "storage/store.h"

/* The fleet a device belongs to (fleet_out, STORE_LABEL_MAX bytes). PEMN_ENOTFOUND when the
 * device is in no fleet; PEMN_EDB. */
pemn_rc store_devguard_fleet_of(struct store *st, const char *device,
                                char fleet_out[STORE_LABEL_MAX], struct pemn_err *err);

/* Records that token registers device. A device the token registered before is PEMN_OK and
 * costs nothing; otherwise PEMN_ETOOBIG (nothing recorded) when the token has registered
 * max_total devices in all (0: no limit) or max_per_minute in the last 60 seconds (0: no
 * limit). One write transaction: concurrent registrations never exceed the limits. */
pemn_rc store_devguard_register(struct store *st, const char *token, const char *device,
                                uint64_t max_total, uint64_t max_per_minute, struct pemn_err *err);

/* How many devices token has registered (all time / in the last 60 s). */
pemn_rc store_devguard_count(struct store *st, const char *token, uint64_t *total,
                             uint64_t *last_minute, struct pemn_err *err);

/* ---- internal to storage/: the backends' table (arguments validated above) ---- */
struct store_devguard_ops {
    pemn_rc (*fleet_of)(struct store *st, const char *device, char fleet_out[STORE_LABEL_MAX],
                        struct pemn_err *err);
    pemn_rc (*reg)(struct store *st, const char *token, const char *device, uint64_t max_total,
                   uint64_t max_per_minute, struct pemn_err *err);
    pemn_rc (*count)(struct store *st, const char *token, uint64_t *total, uint64_t *last_minute,
                     struct pemn_err *err);
};
extern const struct store_devguard_ops sq_devguard_ops;
extern const struct store_devguard_ops pg_devguard_ops;

#endif
