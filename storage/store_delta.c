/*
 * storage/store_delta.c — package deltas (store_delta.h): validation and canonical digests,
 * then the backend.
 */
#include "storage/store_delta.h"
#include "storage/store_ops.h"

#include "proto/err.h"

#include <stdio.h>
#include <string.h>

static bool canon(const char *in, char out[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t d[PEMN_DIGEST_BYTES];
    if (!in || pemn_digest_parse(in, d) != PEMN_OK)
        return false;
    pemn_digest_format(d, out);
    return true;
}

pemn_rc store_delta_version_of(struct store *st, const char *digest, struct store_version *out,
                               struct pemn_err *err)
{
    char c[PEMN_DIGEST_TEXT_MAX];
    if (!canon(digest, c) || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    if (!st->ops->delta)
        return store_unsupported(st, "deltas", err);
    return st->ops->delta->version_of(st, c, out, err);
}

pemn_rc store_delta_get(struct store *st, const char *new_digest, const char *old_digest,
                        struct store_delta *out, struct pemn_err *err)
{
    char n[PEMN_DIGEST_TEXT_MAX], o[PEMN_DIGEST_TEXT_MAX];
    if (!canon(new_digest, n) || !canon(old_digest, o) || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    if (!st->ops->delta)
        return store_unsupported(st, "deltas", err);
    return st->ops->delta->get(st, n, o, out, err);
}

pemn_rc store_delta_put(struct store *st, const char *new_digest, const char *old_digest,
                        uint64_t new_size, const void *bytes, size_t len, struct store_delta *out,
                        struct pemn_err *err)
{
    struct store_delta row;
    memset(&row, 0, sizeof row);
    if (!canon(new_digest, row.new_digest) || !canon(old_digest, row.old_digest))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    if (strcmp(row.new_digest, row.old_digest) == 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "a delta needs two different packages");
    if (bytes && (len == 0 || len >= new_size))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "a stored delta must be smaller than the package it rebuilds");
    if (!st->ops->delta)
        return store_unsupported(st, "deltas", err);
    row.new_size = new_size;
    row.smaller = bytes != NULL;
    if (bytes) {
        uint8_t d[PEMN_DIGEST_BYTES];
        pemn_sha256(bytes, len, d);
        pemn_digest_format(d, row.delta_digest);
        row.size = len;
    }
    pemn_rc rc = st->ops->delta->put(st, &row, bytes, err);
    if (!rc && out)
        rc = st->ops->delta->get(st, row.new_digest, row.old_digest, out, err);
    return rc;
}
