/*
 * storage/store_metadata.c — signed desired-state answers (storage/store_metadata.h):
 * validation, then the backend's table (st->ops->metadata).
 */
#include "storage/store_metadata.h"
#include "storage/store_ops.h"

#include "proto/err.h"

#include <stddef.h>
#include <string.h>

static bool device_ok(const char *device)
{
    size_t n = device ? strnlen(device, STORE_LABEL_MAX) : 0;
    return n > 0 && n < STORE_LABEL_MAX;
}

#define META_OPS(st, device, err)                                                                  \
    do {                                                                                           \
        if (!(st)->ops->metadata)                                                                  \
            return store_unsupported((st), "signed metadata", (err));                              \
        if (!device_ok(device))                                                                    \
            return proto_err((err), PEMN_EINVAL, PEMN_NO_OFFSET, "bad device id");                 \
    } while (0)

pemn_rc store_metadata_get(struct store *st, const char *device, struct store_metadata *out,
                           bool *found, struct pemn_err *err)
{
    /* the header only: the body buffer is 8 KiB and this runs on every poll */
    memset(out, 0, offsetof(struct store_metadata, body));
    out->body[0] = 0;
    *found = false;
    META_OPS(st, device, err);
    return st->ops->metadata->get(st, device, out, found, err);
}

pemn_rc store_metadata_next_version(struct store *st, const char *device, uint64_t *version,
                                    struct pemn_err *err)
{
    META_OPS(st, device, err);
    return st->ops->metadata->next_version(st, device, version, err);
}

pemn_rc store_metadata_counter(struct store *st, const char *device, uint64_t *version,
                               struct pemn_err *err)
{
    *version = 0;
    META_OPS(st, device, err);
    return st->ops->metadata->counter(st, device, version, err);
}

pemn_rc store_metadata_put(struct store *st, const char *device, const struct store_metadata *m,
                           bool *stored, struct pemn_err *err)
{
    if (stored)
        *stored = false;
    META_OPS(st, device, err);
    size_t blen = strnlen(m->body, sizeof m->body);
    if (m->version == 0 || blen == 0 || blen >= sizeof m->body ||
        m->version > (uint64_t)INT64_MAX || strnlen(m->fleet, sizeof m->fleet) >= sizeof m->fleet ||
        strnlen(m->answer_hash, sizeof m->answer_hash) >= sizeof m->answer_hash)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad signed metadata for '%s'", device);
    bool dummy;
    return st->ops->metadata->put(st, device, m, stored ? stored : &dummy, err);
}
