/*
 * server/srv_rollout.h — the pure rules of a staged fleet rollout (no I/O, no SQL, no HTTP).
 *
 * Membership: a device belongs to a rollout iff its bucket is below the rollout's percentage
 * in basis points (percent * 100). The bucket is a stable function of (rollout id, device id):
 *   bucket = LE64(BLAKE2b-64(key = none, msg = "pemn-rollout\0" || rollout_id || "\0" ||
 *            device_id)) mod 10000
 * (libsodium crypto_generichash with an 8-byte output). Consequences the tests pin down:
 * raising the percentage only adds devices (monotone), the same ids always give the same
 * bucket, and a new rollout id reshuffles which devices go first.
 *
 * Abort rule: with failure_bp > 0, a rollout aborts when failed * 10000 >= failure_bp *
 * reporting and reporting >= min_devices (reporting = devices of the rollout that reported
 * on its target, failed = those whose last report on it is "failed").
 *
 * Thread-safety: pure functions.
 */
#ifndef PEMN_SRV_ROLLOUT_H
#define PEMN_SRV_ROLLOUT_H

#include <pemn/common.h>
#include <stdbool.h>

#define SRV_ROLLOUT_BUCKETS 10000u
#define SRV_ROLLOUT_ID_MAX 64 /* text length bound (ids are 32 hex digits) */

/* Bucket 0..9999 of a device in a rollout. */
uint32_t srv_rollout_bucket(const char *rollout_id, const char *device_id);
/* True when the device is in a rollout at percent_bp basis points (0..10000). */
bool srv_rollout_member(const char *rollout_id, const char *device_id, uint32_t percent_bp);

/* Parses a JSON-style percentage (0..100, at most two decimals honoured) into basis points.
 * PEMN_EINVAL when outside [0, 100] or not finite. */
pemn_rc srv_percent_to_bp(double percent, uint32_t *bp);
/* Writes a percentage for JSON (basis points back to a double). */
double srv_bp_to_percent(uint32_t bp);

struct srv_abort_rule {
    uint32_t failure_bp;  /* 0 = no automatic abort */
    uint64_t min_devices; /* reporting devices needed before the rule may fire */
};
/* True when the rule says stop. */
bool srv_rollout_should_abort(const struct srv_abort_rule *rule, uint64_t failed,
                              uint64_t reporting);

/* A fresh random rollout id: 32 lowercase hex digits (out: 33 bytes). */
void srv_rollout_new_id(char out[33]);

#endif
