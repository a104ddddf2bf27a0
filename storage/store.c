/*
 * storage/store.c — the storage interface's dispatchers (storage/store.h): choosing the
 * backend from the --db string, the validation every backend shares, token generation and
 * checking, key ids; then one call through st->ops (storage/store_ops.h).
 */
#include "storage/store_ops.h"

#include "proto/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void (*store_test_hook)(struct store *st, const char *point);

void store_opts_default(struct store_opts *o)
{
    o->cache_bytes = (size_t)256 << 20;
    o->cache_item_max = (size_t)64 << 20;
    o->busy_timeout_ms = 5000;
}

pemn_rc store_unsupported(struct store *st, const char *what, struct pemn_err *err)
{
    return proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                     "the %s storage backend does not implement %s", st->ops->name, what);
}

void store_new_rollout_id(char out[STORE_ROLLOUT_ID_MAX])
{
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    proto_hex(rnd, sizeof rnd, out);
}

/* A label from a caller: present and short enough for every column it lands in. */
static bool label_ok(const char *s)
{
    return s && s[0] && strnlen(s, STORE_LABEL_MAX) < STORE_LABEL_MAX;
}

static pemn_rc bad_label(struct pemn_err *err, const char *what)
{
    return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing or too long %s", what);
}

/* ---- open / close ---------------------------------------------------------------------- */
static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

pemn_rc store_open(const char *path, const struct store_opts *opts, struct store **out,
                   struct pemn_err *err)
{
    if (!path || !*path || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no database path");
    *out = NULL;
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium initialisation failed");
    const struct store_ops *ops = &sq_ops;
    const char *target = path;
    if (has_prefix(path, "sqlite:")) {
        target = path + 7;
    } else if (has_prefix(path, "postgresql://") || has_prefix(path, "postgres://")) {
        ops = &pg_ops; /* libpq takes the URI as it is */
    }
    struct store *st = calloc(1, sizeof *st);
    if (!st)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    st->ops = ops;
    if (opts)
        st->opts = *opts;
    else
        store_opts_default(&st->opts);
    if (st->opts.busy_timeout_ms <= 0)
        st->opts.busy_timeout_ms = 5000;
    pemn_rc rc = PEMN_OK;
    if (st->opts.cache_bytes && !(st->cache = blob_cache_new(st->opts.cache_bytes)))
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    if (!rc)
        rc = ops->open(st, target, err);
    if (rc) {
        store_close(st);
        return rc;
    }
    *out = st;
    return PEMN_OK;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    st->ops->close(st);
    blob_cache_free(st->cache);
    free(st);
}

int store_schema_version(struct store *st)
{
    return st->schema;
}

int store_schema_latest(void)
{
    return sq_ops.schema_latest();
}

/* ---- versions and tags ----------------------------------------------------------------- */
pemn_rc store_put_package(struct store *st, const struct store_version *meta, const void *bytes,
                          size_t len, const char *actor, bool *created, struct store_version *out,
                          struct pemn_err *err)
{
    if (!meta || !bytes || !created || !meta->model[0] || !meta->version[0])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing package or metadata");
    if (meta->release > (uint64_t)INT64_MAX || meta->n_params > (uint64_t)INT64_MAX ||
        meta->f32_size > (uint64_t)INT64_MAX || (uint64_t)len > (uint64_t)INT64_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "number out of the storable range");
    uint8_t d[PEMN_DIGEST_BYTES];
    if (pemn_digest_parse(meta->digest, d) != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    struct store_version m = *meta;
    pemn_digest_format(d, m.digest); /* canonical lowercase */
    return st->ops->put_package(st, &m, bytes, len, actor, created, out, err);
}

pemn_rc store_get_version(struct store *st, const char *model, const char *version,
                          struct store_version *out, struct pemn_err *err)
{
    if (!label_ok(model) || !label_ok(version))
        return bad_label(err, "model or version");
    return st->ops->get_version(st, model, version, out, err);
}

pemn_rc store_get_latest(struct store *st, const char *model, struct store_version *out,
                         struct pemn_err *err)
{
    if (!label_ok(model))
        return bad_label(err, "model");
    return st->ops->get_latest(st, model, out, err);
}

pemn_rc store_list_models(struct store *st, store_model_cb cb, void *ctx, struct pemn_err *err)
{
    return st->ops->list_models(st, cb, ctx, err);
}

pemn_rc store_list_versions(struct store *st, const char *model, store_version_cb cb, void *ctx,
                            struct pemn_err *err)
{
    if (!label_ok(model))
        return bad_label(err, "model");
    return st->ops->list_versions(st, model, cb, ctx, err);
}

pemn_rc store_tag_set(struct store *st, const char *model, const char *tag, const char *version,
                      const char *actor, struct store_version *out, struct pemn_err *err)
{
    return store_tag_set_follow(st, model, tag, version, actor, out, NULL, err);
}

pemn_rc store_tag_set_follow(struct store *st, const char *model, const char *tag,
                             const char *version, const char *actor, struct store_version *out,
                             unsigned *fleets_moved, struct pemn_err *err)
{
    if (!label_ok(model) || !label_ok(tag) || !label_ok(version))
        return bad_label(err, "model, tag or version");
    return st->ops->tag_set(st, model, tag, version, actor, out, fleets_moved, err);
}

pemn_rc store_tag_get(struct store *st, const char *model, const char *tag,
                      struct store_version *out, struct pemn_err *err)
{
    if (!label_ok(model) || !label_ok(tag))
        return bad_label(err, "model or tag");
    return st->ops->tag_get(st, model, tag, out, err);
}

pemn_rc store_tag_delete(struct store *st, const char *model, const char *tag, const char *actor,
                         struct pemn_err *err)
{
    if (!label_ok(model) || !label_ok(tag))
        return bad_label(err, "model or tag");
    return st->ops->tag_delete(st, model, tag, actor, err);
}

pemn_rc store_list_tags(struct store *st, const char *model, store_tag_cb cb, void *ctx,
                        struct pemn_err *err)
{
    if (!label_ok(model))
        return bad_label(err, "model");
    return st->ops->list_tags(st, model, cb, ctx, err);
}

/* ---- keys ------------------------------------------------------------------------------ */
pemn_rc store_key_add(struct store *st, const struct pemn_pubkey *pub, const char *name,
                      const char *actor, struct store_key *out, struct pemn_err *err)
{
    if (!pub)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no key");
    if (name && strnlen(name, STORE_LABEL_MAX) >= STORE_LABEL_MAX)
        return bad_label(err, "key name");
    struct store_key k;
    memset(&k, 0, sizeof k);
    /* pemn/key.h: the first 8 bytes of SHA-256(public key), lowercase hex. */
    uint8_t h[PEMN_DIGEST_BYTES];
    pemn_sha256(pub->bytes, sizeof pub->bytes, h);
    proto_hex(h, PEMN_KEYID_BYTES, k.id);
    snprintf(k.name, sizeof k.name, "%s", name && *name ? name : k.id);
    k.pub = *pub;
    k.added = (int64_t)time(NULL);
    pemn_rc rc = st->ops->key_add(st, &k, actor, err);
    if (!rc && out)
        *out = k;
    return rc;
}

pemn_rc store_key_remove(struct store *st, const char *name_or_id, const char *actor,
                         struct pemn_err *err)
{
    if (!label_ok(name_or_id))
        return bad_label(err, "key name");
    return st->ops->key_remove(st, name_or_id, actor, err);
}

pemn_rc store_key_list(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err)
{
    return st->ops->key_list(st, cb, ctx, err);
}

/* ---- scopes and tokens ----------------------------------------------------------------- */
static const struct {
    const char *name;
    unsigned bit, rights;
} scopes[] = {
    {"read", STORE_SCOPE_READ, STORE_SCOPE_READ},
    {"publish", STORE_SCOPE_PUBLISH, STORE_SCOPE_PUBLISH | STORE_SCOPE_READ},
    {"admin", STORE_SCOPE_ADMIN,
     STORE_SCOPE_ADMIN | STORE_SCOPE_PUBLISH | STORE_SCOPE_READ | STORE_SCOPE_DEVICE},
    {"device", STORE_SCOPE_DEVICE, STORE_SCOPE_DEVICE | STORE_SCOPE_READ},
};

unsigned store_scope_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof scopes / sizeof scopes[0]; i++)
        if (strcmp(s, scopes[i].name) == 0)
            return scopes[i].bit;
    return 0;
}

const char *store_scope_name(unsigned scope)
{
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (scope == scopes[i].bit)
            return scopes[i].name;
    return NULL;
}

unsigned store_scope_rights(unsigned scope)
{
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (scope == scopes[i].bit)
            return scopes[i].rights;
    return 0;
}

#define TOKEN_PREFIX "pemn_"
#define TOKEN_RANDOM 32

pemn_rc store_token_create(struct store *st, unsigned scope, const char *name, const char *actor,
                           char token_out[STORE_TOKEN_TEXT_MAX], char name_out[STORE_LABEL_MAX],
                           struct pemn_err *err)
{
    return store_token_create_bound(st, scope, name, NULL, NULL, actor, token_out, name_out, err);
}

pemn_rc store_token_create_bound(struct store *st, unsigned scope, const char *name,
                                 const char *device, const char *fleet, const char *actor,
                                 char token_out[STORE_TOKEN_TEXT_MAX],
                                 char name_out[STORE_LABEL_MAX], struct pemn_err *err)
{
    const char *scope_name = store_scope_name(scope);
    if (!scope_name)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "unknown scope");
    if (!device)
        device = "";
    if (!fleet)
        fleet = "";
    if ((device[0] || fleet[0]) && scope != STORE_SCOPE_DEVICE)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "only device tokens can be bound to a device or a fleet");
    if (strlen(device) >= STORE_LABEL_MAX || strlen(fleet) >= STORE_LABEL_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "device or fleet name too long");
    uint8_t rnd[TOKEN_RANDOM], hash[PEMN_DIGEST_BYTES];
    char text[STORE_TOKEN_TEXT_MAX], nm[STORE_LABEL_MAX];
    randombytes_buf(rnd, sizeof rnd);
    memcpy(text, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    sodium_bin2base64(text + sizeof TOKEN_PREFIX - 1, sizeof text - (sizeof TOKEN_PREFIX - 1), rnd,
                      sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(rnd, sizeof rnd);
    crypto_hash_sha256(hash, (const unsigned char *)text, strlen(text));
    if (name && *name) {
        snprintf(nm, sizeof nm, "%s", name);
    } else {
        uint8_t r4[4];
        char hx[9];
        randombytes_buf(r4, sizeof r4);
        proto_hex(r4, sizeof r4, hx);
        snprintf(nm, sizeof nm, "%s-%s", scope_name, hx);
    }
    char detail[2 * STORE_LABEL_MAX + 32];
    snprintf(detail, sizeof detail, "%s%s%s%s%s", scope_name, device[0] ? " device " : "", device,
             fleet[0] ? " fleet " : "", fleet);
    pemn_rc rc = st->ops->token_insert(st, nm, hash, scope_name, device, fleet, actor, detail, err);
    if (!rc) {
        memcpy(token_out, text, sizeof text);
        if (name_out)
            memcpy(name_out, nm, sizeof nm);
    }
    sodium_memzero(text, sizeof text);
    return rc;
}

pemn_rc store_token_revoke(struct store *st, const char *name, const char *actor,
                           struct pemn_err *err)
{
    if (!label_ok(name))
        return bad_label(err, "token name");
    return st->ops->token_revoke(st, name, actor, err);
}

pemn_rc store_token_check(struct store *st, const char *token, unsigned *scope,
                          char name_out[STORE_LABEL_MAX], struct pemn_err *err)
{
    return store_token_check_bound(st, token, scope, name_out, NULL, NULL, err);
}

pemn_rc store_token_check_bound(struct store *st, const char *token, unsigned *scope,
                                char name_out[STORE_LABEL_MAX], char device_out[STORE_LABEL_MAX],
                                char fleet_out[STORE_LABEL_MAX], struct pemn_err *err)
{
    size_t len = token ? strnlen(token, STORE_TOKEN_TEXT_MAX) : 0;
    if (len < sizeof TOKEN_PREFIX || len >= STORE_TOKEN_TEXT_MAX ||
        memcmp(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) != 0)
        return proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "malformed token");
    uint8_t hash[PEMN_DIGEST_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *)token, len);
    struct store_token_row row;
    memset(&row, 0, sizeof row);
    bool found = false;
    pemn_rc rc = st->ops->token_find(st, hash, &found, &row, err);
    if (rc)
        return rc;
    if (!found || row.hash_len != sizeof hash || sodium_memcmp(row.hash, hash, sizeof hash) != 0 ||
        !store_scope_parse(row.scope))
        return proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "unknown token");
    if (row.revoked != 0)
        return proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "token revoked");
    *scope = store_scope_parse(row.scope);
    if (name_out)
        memcpy(name_out, row.name, STORE_LABEL_MAX);
    if (device_out)
        memcpy(device_out, row.device, STORE_LABEL_MAX);
    if (fleet_out)
        memcpy(fleet_out, row.fleet, STORE_LABEL_MAX);
    return PEMN_OK;
}

pemn_rc store_token_list(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err)
{
    return st->ops->token_list(st, cb, ctx, err);
}

/* ---- audit and statistics -------------------------------------------------------------- */
pemn_rc store_audit_list(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
                         struct pemn_err *err)
{
    return st->ops->audit_list(st, limit, cb, ctx, err);
}

pemn_rc store_stats(struct store *st, struct store_stats *out, struct pemn_err *err)
{
    memset(out, 0, sizeof *out);
    pemn_rc rc = st->ops->stats(st, out, err);
    blob_cache_stats(st->cache, out);
    return rc;
}
