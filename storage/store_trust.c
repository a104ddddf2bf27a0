/*
 * storage/store_trust.c — the root chain and package signers (storage/store_trust.h):
 * validation and the root's digest, then the backend's trust table (st->ops->trust).
 */
#include "storage/store_ops.h"
#include "storage/store_trust.h"

#include "proto/err.h"

#include <string.h>

#define TRUST_OPS(st, err)                                                                         \
    do {                                                                                           \
        if (!(st)->ops->trust)                                                                     \
            return store_unsupported((st), "the root of trust", (err));                            \
    } while (0)

static bool digest_ok(const char *d)
{
    return d && d[0] && strnlen(d, PEMN_DIGEST_TEXT_MAX) < PEMN_DIGEST_TEXT_MAX;
}

pemn_rc store_trust_root_put(struct store *st, uint64_t version, int64_t expires, const void *bytes,
                             size_t len, const char *actor, bool *created, struct pemn_err *err)
{
    if (created)
        *created = false;
    TRUST_OPS(st, err);
    if (!bytes || len == 0 || version == 0 || version > (uint64_t)INT64_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid root");
    uint8_t d[PEMN_DIGEST_BYTES];
    char digest[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256(bytes, len, d);
    pemn_digest_format(d, digest);
    return st->ops->trust->root_put(st, version, expires, digest, bytes, len, actor ? actor : "",
                                    created, err);
}

pemn_rc store_trust_root_get(struct store *st, uint64_t version, struct store_root *meta,
                             uint8_t **bytes, size_t *len, struct pemn_err *err)
{
    if (bytes)
        *bytes = NULL;
    if (len)
        *len = 0;
    TRUST_OPS(st, err);
    if (version > (uint64_t)INT64_MAX)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no root version %llu",
                         (unsigned long long)version);
    return st->ops->trust->root_get(st, version, meta, bytes, len, err);
}

pemn_rc store_trust_root_list(struct store *st, store_root_cb cb, void *ctx, struct pemn_err *err)
{
    TRUST_OPS(st, err);
    if (!cb)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no callback");
    return st->ops->trust->root_list(st, cb, ctx, err);
}

pemn_rc store_trust_signers_put(struct store *st, const char *digest,
                                const struct pemn_pubkey *keys, size_t n, struct pemn_err *err)
{
    TRUST_OPS(st, err);
    if (!digest_ok(digest) || (!keys && n))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    return st->ops->trust->signers_put(st, digest, keys, n, err);
}

pemn_rc store_trust_signers_get(struct store *st, const char *digest, struct pemn_pubkey *keys,
                                size_t cap, size_t *n, struct pemn_err *err)
{
    if (n)
        *n = 0;
    TRUST_OPS(st, err);
    if (!digest_ok(digest) || !n || (!keys && cap))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    return st->ops->trust->signers_get(st, digest, keys, cap, n, err);
}
