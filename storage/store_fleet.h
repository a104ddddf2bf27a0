/*
 * storage/store_fleet.h — fleets, devices and rollouts in the registry store (internal to
 * pemnd; the same contract as storage/store.h: no SQL outside storage/, every write one
 * transaction, thread-safe).
 *
 * Data model:
 *   fleet    a name -> target (model, version, release, digest, size; tag if it was chosen
 *            by tag: the fleet then follows the tag, see store_tag_set), the previous target,
 *            and the current
 *            rollout: id, percentage (basis points), abort rule, state (active, paused,
 *            aborted) with the reason for the last change.
 *   device   an id -> the fleet it belongs to (one at a time: contacting another fleet moves
 *            it), first/last seen, its last report (state, reason, running version and
 *            release, digest the report is about, free-text message) and the rollout that
 *            report counted for ("" when it counted for none).
 *
 * The rollout arithmetic (membership, abort rule) is not here: server/srv_rollout.h.
 */
#ifndef PEMN_STORAGE_STORE_FLEET_H
#define PEMN_STORAGE_STORE_FLEET_H

#include "storage/store.h"

#define STORE_ROLLOUT_ID_MAX 33 /* 32 hex + NUL */
#define STORE_REASON_MAX 256
#define STORE_DEVICE_STATE_MAX 16
#define STORE_MESSAGE_MAX 257 /* a report's free-text message: 256 bytes + NUL */

enum store_rollout_state {
    STORE_ROLLOUT_ACTIVE = 0,
    STORE_ROLLOUT_PAUSED,
    STORE_ROLLOUT_ABORTED,
};
/* "active", "paused", "aborted" (NULL for anything else). */
const char *store_rollout_state_name(enum store_rollout_state s);

struct store_fleet_target {
    char model[STORE_LABEL_MAX];
    char version[STORE_LABEL_MAX];
    char tag[STORE_LABEL_MAX]; /* "" unless the target was given by tag */
    uint64_t release;
    char digest[PEMN_DIGEST_TEXT_MAX];
    uint64_t size;
};

struct store_fleet {
    char name[STORE_LABEL_MAX];
    struct store_fleet_target target;
    bool has_previous;
    struct store_fleet_target previous;
    char rollout_id[STORE_ROLLOUT_ID_MAX];
    uint32_t percent_bp;       /* 0..10000 */
    uint32_t abort_failure_bp; /* 0 = no abort rule */
    uint64_t abort_min_devices;
    enum store_rollout_state state;
    char state_reason[STORE_REASON_MAX];
    int64_t rollout_started, created, updated;
};

/* Sets a fleet's target and rollout parameters (creating the fleet), in one transaction:
 *   - new fleet: no previous target, rollout new_rollout_id, active;
 *   - same package as the current target (same digest) and the rollout not aborted: only
 *     the percentage and abort rule change (same rollout: raising the percentage only adds
 *     devices); state unchanged;
 *   - otherwise a new rollout (new_rollout_id, active); the previous target becomes the old
 *     target, or stays the old previous target when the old rollout was aborted (an aborted
 *     target never becomes anyone's fallback).
 * A target given by tag (t->tag set) is re-read inside the transaction: if the tag moved
 * since the caller resolved it, the fleet gets the tag's current version (a tag move that
 * committed in between could not have moved this fleet yet).
 * *started tells whether a new rollout began (may be NULL); *out gets the stored fleet. */
pemn_rc store_fleet_put(struct store *st, const char *fleet, const struct store_fleet_target *t,
                        uint32_t percent_bp, uint32_t abort_failure_bp, uint64_t abort_min_devices,
                        const char *new_rollout_id, const char *actor, bool *started,
                        struct store_fleet *out, struct pemn_err *err);
/* PEMN_ENOTFOUND for an unknown fleet. */
pemn_rc store_fleet_get(struct store *st, const char *fleet, struct store_fleet *out,
                        struct pemn_err *err);
typedef int (*store_fleet_cb)(void *ctx, const struct store_fleet *f);
/* Every fleet by name. */
pemn_rc store_fleet_list(struct store *st, store_fleet_cb cb, void *ctx, struct pemn_err *err);

/* Rollout state changes, in one transaction. to: PAUSED (from active; paused stays paused),
 * ACTIVE (resume: from paused; active stays active), ABORTED (from anything; aborted stays
 * aborted and keeps its first reason). Resuming or pausing an aborted rollout:
 * PEMN_ECONFLICT. When rollout_id is not NULL the change applies only if it is still the
 * fleet's rollout (PEMN_ECONFLICT otherwise: a newer rollout must not be aborted by a late
 * report on an older one). *changed tells whether the state moved (may be NULL). */
pemn_rc store_fleet_set_state(struct store *st, const char *fleet, enum store_rollout_state to,
                              const char *reason, const char *rollout_id, const char *actor,
                              bool *changed, struct store_fleet *out, struct pemn_err *err);

/* ---- devices ------------------------------------------------------------------------------ */
struct store_device {
    char id[STORE_LABEL_MAX];
    char fleet[STORE_LABEL_MAX];
    int64_t first_seen, last_seen, reported; /* reported: 0 = never */
    char state[STORE_DEVICE_STATE_MAX];      /* "" until the first report */
    char reason[STORE_REASON_MAX];
    char version[STORE_LABEL_MAX]; /* running version */
    uint64_t release;
    char digest[PEMN_DIGEST_TEXT_MAX]; /* the package the report is about */
    char report_rollout[STORE_ROLLOUT_ID_MAX];
    char message[STORE_MESSAGE_MAX]; /* the last report's message ("" when none) */
};

/* A device polls its fleet: reads the fleet and the device in one go and registers the
 * device on first contact (or moves it here from another fleet); last_seen is refreshed
 * when older than touch_seconds, so steady polling mostly reads. PEMN_ENOTFOUND when the
 * fleet does not exist (the device is then not registered). */
pemn_rc store_device_poll(struct store *st, const char *fleet, const char *device,
                          int touch_seconds, struct store_fleet *fleet_out,
                          struct store_device *dev_out, struct pemn_err *err);

/* A status report. r->state/reason/version/release/digest/message are stored as given (validated by
 * the caller). counts_for: the rollout this report counts for, or NULL/"" (the device is not
 * in the rollout or reports on another package). In the same transaction, the rollout's
 * reporting and failed devices are counted (when counts_for is set; else both 0).
 * PEMN_ENOTFOUND for an unknown fleet. */
pemn_rc store_device_report(struct store *st, const char *fleet, const struct store_device *r,
                            const char *counts_for, uint64_t *reporting, uint64_t *failed,
                            struct pemn_err *err);
/* PEMN_ENOTFOUND when the device is not in this fleet. */
pemn_rc store_device_get(struct store *st, const char *fleet, const char *device,
                         struct store_device *out, struct pemn_err *err);

/* Counts over a fleet's devices. cb gets (what, key, n) with what = "state" (key "" for
 * never reported) or "version" (key "" when nothing runs); the rollout numbers are over the
 * devices whose last report counted for the fleet's current rollout. */
struct store_fleet_counts {
    uint64_t devices;
    uint64_t reporting, failed, installed, in_progress;
};
typedef int (*store_count_cb)(void *ctx, const char *what, const char *key, uint64_t n);
pemn_rc store_fleet_counts(struct store *st, const char *fleet, struct store_fleet_counts *out,
                           store_count_cb cb, void *ctx, struct pemn_err *err);

#endif
