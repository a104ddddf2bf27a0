/*
 * storage/store_devguard.c — device registration limits (store_devguard.h): validation,
 * then the backend.
 */
#include "storage/store_devguard.h"
#include "storage/store_ops.h"

#include "proto/err.h"

#include <string.h>

static bool label_ok(const char *s)
{
    size_t n = s ? strnlen(s, STORE_LABEL_MAX) : 0;
    return n > 0 && n < STORE_LABEL_MAX;
}

pemn_rc store_devguard_fleet_of(struct store *st, const char *device,
                                char fleet_out[STORE_LABEL_MAX], struct pemn_err *err)
{
    if (!label_ok(device) || !fleet_out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad device id");
    if (!st->ops->devguard)
        return store_unsupported(st, "device registration limits", err);
    return st->ops->devguard->fleet_of(st, device, fleet_out, err);
}

pemn_rc store_devguard_register(struct store *st, const char *token, const char *device,
                                uint64_t max_total, uint64_t max_per_minute, struct pemn_err *err)
{
    if (!label_ok(token) || !label_ok(device))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad token name or device id");
    if (!st->ops->devguard)
        return store_unsupported(st, "device registration limits", err);
    return st->ops->devguard->reg(st, token, device, max_total, max_per_minute, err);
}

pemn_rc store_devguard_count(struct store *st, const char *token, uint64_t *total,
                             uint64_t *last_minute, struct pemn_err *err)
{
    if (!label_ok(token) || !total || !last_minute)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad token name");
    if (!st->ops->devguard)
        return store_unsupported(st, "device registration limits", err);
    return st->ops->devguard->count(st, token, total, last_minute, err);
}
