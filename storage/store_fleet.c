/*
 * storage/store_fleet.c — fleets, devices and rollouts (storage/store_fleet.h): validation,
 * then the backend's fleet table (st->ops->fleet).
 */
#include "storage/store_ops.h"

#include "proto/err.h"

#include <stdio.h>
#include <string.h>

static const char *const state_names[] = {"active", "paused", "aborted"};

const char *store_rollout_state_name(enum store_rollout_state s)
{
    if ((unsigned)s >= sizeof state_names / sizeof state_names[0])
        return NULL;
    return state_names[s];
}

enum store_rollout_state store_rollout_state_parse(const char *s)
{
    for (unsigned i = 0; i < sizeof state_names / sizeof state_names[0]; i++)
        if (!strcmp(s, state_names[i]))
            return (enum store_rollout_state)i;
    return STORE_ROLLOUT_ABORTED; /* unknown text never means "go" */
}

bool store_fleet_retarget(struct store_fleet *f, bool existed, const char *fleet,
                          const char *new_digest, int64_t now)
{
    if (!existed) {
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", fleet);
        f->created = now;
        return true;
    }
    if (!strcmp(f->target.digest, new_digest) && f->state != STORE_ROLLOUT_ABORTED)
        return false;
    /* the old target becomes the fallback, unless it was stopped by an abort */
    if (f->state != STORE_ROLLOUT_ABORTED) {
        f->previous = f->target;
        f->has_previous = true;
    }
    /* a fallback equal to the new target would be no fallback at all */
    if (f->has_previous && !strcmp(f->previous.digest, new_digest))
        f->has_previous = false;
    return true;
}

static bool label_ok(const char *s)
{
    return s && s[0] && strnlen(s, STORE_LABEL_MAX) < STORE_LABEL_MAX;
}

/* The fleet table, or PEMN_EUNSUPPORTED; then the fleet name checked. */
#define FLEET_OPS(st, fleet, err)                                                                  \
    do {                                                                                           \
        if (!(st)->ops->fleet)                                                                     \
            return store_unsupported((st), "fleets", (err));                                       \
        if (!label_ok(fleet))                                                                      \
            return proto_err((err), PEMN_EINVAL, PEMN_NO_OFFSET,                                   \
                             "missing or too long fleet name");                                    \
    } while (0)

pemn_rc store_fleet_put(struct store *st, const char *fleet, const struct store_fleet_target *t,
                        uint32_t percent_bp, uint32_t abort_failure_bp, uint64_t abort_min_devices,
                        const char *new_rollout_id, const char *actor, bool *started,
                        struct store_fleet *out, struct pemn_err *err)
{
    FLEET_OPS(st, fleet, err);
    if (!t || !new_rollout_id ||
        strnlen(new_rollout_id, STORE_ROLLOUT_ID_MAX) >= STORE_ROLLOUT_ID_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing target or rollout id");
    return st->ops->fleet->put(st, fleet, t, percent_bp, abort_failure_bp, abort_min_devices,
                               new_rollout_id, actor, started, out, err);
}

pemn_rc store_fleet_get(struct store *st, const char *fleet, struct store_fleet *out,
                        struct pemn_err *err)
{
    FLEET_OPS(st, fleet, err);
    return st->ops->fleet->get(st, fleet, out, err);
}

pemn_rc store_fleet_list(struct store *st, store_fleet_cb cb, void *ctx, struct pemn_err *err)
{
    if (!st->ops->fleet)
        return store_unsupported(st, "fleets", err);
    return st->ops->fleet->list(st, cb, ctx, err);
}

pemn_rc store_fleet_set_state(struct store *st, const char *fleet, enum store_rollout_state to,
                              const char *reason, const char *rollout_id, const char *actor,
                              bool *changed, struct store_fleet *out, struct pemn_err *err)
{
    FLEET_OPS(st, fleet, err);
    if (!store_rollout_state_name(to))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad rollout state");
    return st->ops->fleet->set_state(st, fleet, to, reason, rollout_id, actor, changed, out, err);
}

pemn_rc store_device_poll(struct store *st, const char *fleet, const char *device,
                          int touch_seconds, struct store_fleet *fleet_out,
                          struct store_device *dev_out, struct pemn_err *err)
{
    FLEET_OPS(st, fleet, err);
    if (!label_ok(device))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing or too long device id");
    return st->ops->fleet->device_poll(st, fleet, device, touch_seconds, fleet_out, dev_out, err);
}

pemn_rc store_device_report(struct store *st, const char *fleet, const struct store_device *r,
                            const char *counts_for, uint64_t *reporting, uint64_t *failed,
                            struct pemn_err *err)
{
    FLEET_OPS(st, fleet, err);
    if (!r || !label_ok(r->id))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing or too long device id");
    return st->ops->fleet->device_report(st, fleet, r, counts_for, reporting, failed, err);
}

pemn_rc store_device_get(struct store *st, const char *fleet, const char *device,
                         struct store_device *out, struct pemn_err *err)
{
    FLEET_OPS(st, fleet, err);
    if (!label_ok(device))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing or too long device id");
    return st->ops->fleet->device_get(st, fleet, device, out, err);
}

pemn_rc store_fleet_counts(struct store *st, const char *fleet, struct store_fleet_counts *out,
                           store_count_cb cb, void *ctx, struct pemn_err *err)
{
    FLEET_OPS(st, fleet, err);
    return st->ops->fleet->counts(st, fleet, out, cb, ctx, err);
}
