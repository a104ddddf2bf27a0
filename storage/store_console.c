/*
 * storage/store_console.c — report history, rollout progress, device listings, failures and
 * the filtered audit log (storage/store_console.h): validation, then the backend's console
 * table (st->ops->console).
 */
#include "storage/store_console.h"
#include "storage/store_ops.h"

#include "proto/err.h"

#include <string.h>

static bool label_ok(const char *s)
{
    return s && s[0] && strnlen(s, STORE_LABEL_MAX) < STORE_LABEL_MAX;
}

/* NULL or "" or a label-sized string. */
static bool opt_ok(const char *s, size_t max)
{
    return !s || strnlen(s, max) < max;
}

static pemn_rc check(struct store *st, const char *name, const char *what, struct pemn_err *err)
{
    if (!st->ops->console)
        return store_unsupported(st, "the console's reads", err);
    if (!label_ok(name))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing or too long %s", what);
    return PEMN_OK;
}

pemn_rc store_console_history(struct store *st, const char *device, unsigned limit,
                              store_report_cb cb, void *ctx, struct pemn_err *err)
{
    pemn_rc rc = check(st, device, "device id", err);
    if (rc)
        return rc;
    if (!cb)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no callback");
    return st->ops->console->history(st, device, limit, cb, ctx, err);
}

pemn_rc store_console_progress_sample(struct store *st, const char *fleet, bool force,
                                      int64_t min_step, bool *taken, struct pemn_err *err)
{
    if (taken)
        *taken = false;
    pemn_rc rc = check(st, fleet, "fleet name", err);
    if (rc)
        return rc;
    return st->ops->console->progress_sample(st, fleet, force, min_step < 0 ? 0 : min_step, taken,
                                             err);
}

pemn_rc store_console_progress(struct store *st, const char *fleet, const char *rollout,
                               store_progress_cb cb, void *ctx, struct pemn_err *err)
{
    pemn_rc rc = check(st, fleet, "fleet name", err);
    if (rc)
        return rc;
    if (!cb || !opt_ok(rollout, STORE_ROLLOUT_ID_MAX))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad rollout id or no callback");
    return st->ops->console->progress(st, fleet, rollout, cb, ctx, err);
}

pemn_rc store_console_devices(struct store *st, const char *fleet,
                              const struct store_device_query *q, uint64_t *total,
                              store_console_device_cb cb, void *ctx, struct pemn_err *err)
{
    if (total)
        *total = 0;
    pemn_rc rc = check(st, fleet, "fleet name", err);
    if (rc)
        return rc;
    if (!q || !total || !cb || !opt_ok(q->state, STORE_DEVICE_STATE_MAX) ||
        !opt_ok(q->reason, STORE_REASON_MAX) || !opt_ok(q->version, STORE_LABEL_MAX))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad device query");
    return st->ops->console->devices(st, fleet, q, total, cb, ctx, err);
}

pemn_rc store_console_failures(struct store *st, const char *fleet, store_failure_cb cb, void *ctx,
                               struct pemn_err *err)
{
    pemn_rc rc = check(st, fleet, "fleet name", err);
    if (rc)
        return rc;
    if (!cb)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no callback");
    return st->ops->console->failures(st, fleet, cb, ctx, err);
}

pemn_rc store_console_audit(struct store *st, const struct store_audit_query *q, store_audit_cb cb,
                            void *ctx, struct pemn_err *err)
{
    if (!st->ops->console)
        return store_unsupported(st, "the console's reads", err);
    if (!q || !cb || !opt_ok(q->action, 1024) || !opt_ok(q->actor, 1024) ||
        !opt_ok(q->target, 1024) || !opt_ok(q->text, 1024))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad audit query");
    return st->ops->console->audit(st, q, cb, ctx, err);
}
