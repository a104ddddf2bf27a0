/*
 * storage/store_console.h — what the web console (and anyone using the API) needs beyond the
 * fleet rows of store_fleet.h: each device's recent reports, how a rollout progressed over
 * time, device listings, failures by reason and a filtered audit log. Same contract as
 * storage/store.h: no SQL outside storage/, every write one transaction, thread-safe.
 *
 * Stored state (schema migration 4), bounded in size:
 *   report history   the last STORE_HISTORY_MAX reports of each device (written in the report's
 *                    own transaction, by a trigger on the device row, so no report is ever
 *                    stored without its history row).
 *   rollout progress samples of a rollout's counts over time: at most STORE_PROGRESS_MAX
 *                    samples per rollout (when full, every second older sample is dropped, so
 *                    the samples keep covering the whole rollout at a coarser step) and the
 *                    samples of at most STORE_PROGRESS_ROLLOUTS rollouts per fleet.
 */
#ifndef PEMN_STORAGE_STORE_CONSOLE_H
#define PEMN_STORAGE_STORE_CONSOLE_H

#include "storage/store_fleet.h"

#define STORE_HISTORY_MAX 64
#define STORE_PROGRESS_MAX 240
#define STORE_PROGRESS_ROLLOUTS 8

/* ---- report history ---------------------------------------------------------------------- */
struct store_report {
    int64_t id; /* increasing */
    int64_t at; /* when it was received (Unix seconds) */
    char fleet[STORE_LABEL_MAX];
    char state[STORE_DEVICE_STATE_MAX];
    char reason[STORE_REASON_MAX];
    char version[STORE_LABEL_MAX];
    uint64_t release;
    char digest[PEMN_DIGEST_TEXT_MAX];
    char rollout[STORE_ROLLOUT_ID_MAX]; /* the rollout it counted for, "" for none */
    char message[STORE_MESSAGE_MAX];
};
typedef int (*store_report_cb)(void *ctx, const struct store_report *r);
/* A device's reports, newest first, at most limit (and at most STORE_HISTORY_MAX are kept).
 * An unknown device has none. */
pemn_rc store_console_history(struct store *st, const char *device, unsigned limit,
                              store_report_cb cb, void *ctx, struct pemn_err *err);

/* ---- rollout progress ---------------------------------------------------------------------- */
struct store_progress {
    int64_t at;
    char rollout[STORE_ROLLOUT_ID_MAX];
    enum store_rollout_state state;
    uint32_t percent_bp;
    uint64_t devices;                                   /* devices in the fleet */
    uint64_t reporting, installed, failed, in_progress; /* counted for this rollout */
};
typedef int (*store_progress_cb)(void *ctx, const struct store_progress *p);

/* Records a sample of the fleet's current rollout when one is due: there is none yet, the
 * state or the percentage changed since the last one, force is set, or the last one is
 * older than max(min_step, span of the samples / STORE_PROGRESS_MAX) seconds. Due or not
 * is decided by a read; only a due sample writes. *taken (may be NULL) tells which.
 * PEMN_ENOTFOUND for an unknown fleet. */
pemn_rc store_console_progress_sample(struct store *st, const char *fleet, bool force,
                                      int64_t min_step, bool *taken, struct pemn_err *err);
/* The samples of one rollout (rollout NULL or "": the fleet's current one), oldest first.
 * PEMN_ENOTFOUND for an unknown fleet. */
pemn_rc store_console_progress(struct store *st, const char *fleet, const char *rollout,
                               store_progress_cb cb, void *ctx, struct pemn_err *err);

/* ---- device listings ----------------------------------------------------------------------- */
struct store_device_query {
    const char *state;   /* NULL/"": any; "registered": never reported; else that state */
    const char *reason;  /* NULL/"": any */
    const char *version; /* NULL/"": any; "none": runs nothing; else that running version */
    unsigned limit;      /* rows wanted */
    uint64_t offset;     /* rows skipped */
};
typedef int (*store_console_device_cb)(void *ctx, const struct store_device *d);
/* A fleet's devices, most recently reported first (then by id, descending), filtered; *total gets
 * the number of matching devices (before limit/offset). PEMN_ENOTFOUND for an unknown fleet. */
pemn_rc store_console_devices(struct store *st, const char *fleet,
                              const struct store_device_query *q, uint64_t *total,
                              store_console_device_cb cb, void *ctx, struct pemn_err *err);

/* Failed devices by reason (devices whose latest report is "failed"), most frequent first:
 * cb(ctx, reason, n, n_counted) with n_counted those whose failure counted for the fleet's
 * current rollout. PEMN_ENOTFOUND for an unknown fleet. */
typedef int (*store_failure_cb)(void *ctx, const char *reason, uint64_t n, uint64_t n_counted);
pemn_rc store_console_failures(struct store *st, const char *fleet, store_failure_cb cb, void *ctx,
                               struct pemn_err *err);

/* ---- the audit log ----------------------------------------------------------------------- */
struct store_audit_query {
    const char *action; /* NULL/"": any; "fleet" matches "fleet" and "fleet.*"; else exact */
    const char *actor;  /* NULL/"": any; exact */
    const char *target; /* NULL/"": any; exact, or a prefix when it ends with '*' */
    const char *text;   /* NULL/"": any; a substring of actor, action, target or detail */
    int64_t before;     /* rows with id < before (0: from the newest) */
    unsigned limit;
};
/* Matching rows, newest first. */
pemn_rc store_console_audit(struct store *st, const struct store_audit_query *q, store_audit_cb cb,
                            void *ctx, struct pemn_err *err);

/* ---- internal: the backends' operations (storage/store_ops.h), arguments validated above
 * (storage/store_console.c) -------------------------------------------------------------- */
struct store_console_ops {
    pemn_rc (*history)(struct store *st, const char *device, unsigned limit, store_report_cb cb,
                       void *ctx, struct pemn_err *err);
    pemn_rc (*progress_sample)(struct store *st, const char *fleet, bool force, int64_t min_step,
                               bool *taken, struct pemn_err *err);
    pemn_rc (*progress)(struct store *st, const char *fleet, const char *rollout,
                        store_progress_cb cb, void *ctx, struct pemn_err *err);
    pemn_rc (*devices)(struct store *st, const char *fleet, const struct store_device_query *q,
                       uint64_t *total, store_console_device_cb cb, void *ctx,
                       struct pemn_err *err);
    pemn_rc (*failures)(struct store *st, const char *fleet, store_failure_cb cb, void *ctx,
                        struct pemn_err *err);
    pemn_rc (*audit)(struct store *st, const struct store_audit_query *q, store_audit_cb cb,
                     void *ctx, struct pemn_err *err);
};
extern const struct store_console_ops sq_console_ops;
extern const struct store_console_ops pg_console_ops;
extern const char pg_schema_v4_console[]; /* storage/pg_console.c, for pg_schema.c */

#endif
