/*
 * server/srv_trust.c — the stored root chain, GET /v1/root/{version|latest}, and the
 * server-side refusal of revoked or untrusted packages (server/srv_trust.h).
 */
#include "server/srv_trust.h"

#include "proto/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the chain ----------------------------------------------------------------------------- */
pemn_rc srv_trust_latest_root(struct store *st, pemn_root **out, struct pemn_err *err)
{
    *out = NULL;
    uint8_t *b = NULL;
    size_t n = 0;
    pemn_rc rc = store_trust_root_get(st, 0, NULL, &b, &n, err);
    if (rc == PEMN_ENOTFOUND)
        return PEMN_OK;
    if (rc)
        return rc;
    rc = pemn_root_parse(b, n, out, err);
    free(b);
    return rc;
}

pemn_rc srv_trust_root_add(struct store *st, const void *bytes, size_t len, int64_t now,
                           const char *actor, uint64_t *version, bool *created,
                           struct pemn_err *err)
{
    if (created)
        *created = false;
    pemn_root *next = NULL, *latest = NULL;
    pemn_rc rc = pemn_root_parse(bytes, len, &next, err);
    if (rc)
        return rc;
    if (version)
        *version = pemn_root_version(next);
    rc = pemn_root_check_expiry(next, now, err);
    if (!rc)
        rc = srv_trust_latest_root(st, &latest, err);
    /* a stored version again: the store answers (identical bytes: a no-op; else conflict) */
    if (!rc && latest && pemn_root_version(next) > pemn_root_version(latest)) {
        if (pemn_root_version(next) != pemn_root_version(latest) + 1)
            rc = proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                           "root version %" PRIu64 " does not follow the latest stored, %" PRIu64
                           ": add the versions in between first",
                           pemn_root_version(next), pemn_root_version(latest));
        else
            rc = pemn_root_verify_next(latest, next, err);
    }
    if (!rc)
        rc = store_trust_root_put(st, pemn_root_version(next), pemn_root_expires(next), bytes, len,
                                  actor, created, err);
    pemn_root_free(next);
    pemn_root_free(latest);
    return rc;
}

/* ---- GET /v1/root/{version} ---------------------------------------------------------------- */
static enum MHD_Result get_root(struct srv_req *r)
{
    const char *which = srv_param(r, "version");
    uint64_t version = 0;
    if (strcmp(which, "latest") != 0) {
        char *end;
        unsigned long long v = strtoull(which, &end, 10);
        if (*end || which[0] < '1' || which[0] > '9' || v > (unsigned long long)INT64_MAX)
            return srv_reply_error(r, 400, "bad_request",
                                   "a root version is a positive decimal number or \"latest\"");
        version = v;
    }
    struct store_root meta;
    uint8_t *b = NULL;
    size_t n = 0;
    struct pemn_err e = {0};
    pemn_rc rc = store_trust_root_get(srv_store(r->srv), version, &meta, &b, &n, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    char etag[PEMN_DIGEST_TEXT_MAX + 2], ver[24];
    snprintf(etag, sizeof etag, "\"%s\"", meta.digest);
    snprintf(ver, sizeof ver, "%" PRIu64, meta.version);
    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    uint64_t sent = n;
    if (srv_etag_matches(srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        free(b);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_MODIFIED;
        sent = 0;
    } else if (r->method == SRV_HEAD) {
        free(b);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        sent = 0;
    } else {
        resp = MHD_create_response_from_buffer(n, b, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(b);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, "Pemn-Root-Version", ver);
    /* a numbered version never changes; "latest" moves */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            version ? "public, max-age=31536000, immutable" : "no-cache");
    return srv_queue(r, status, resp, sent);
}

const struct srv_route srv_routes_trust[] = {
    {"root_get", SRV_GET | SRV_HEAD, "/v1/root/{version}", SRV_OPEN_READ, 0, get_root},
    {0},
};

/* ---- judging stored versions --------------------------------------------------------------- */
#define VIEW_MAX_KEYS 4096

struct srv_trust_view {
    pemn_root *root; /* latest, or NULL */
    size_t n_keys;
    struct pemn_pubkey keys[VIEW_MAX_KEYS];
};

static int view_key_cb(void *ctx, const struct store_key *k)
{
    struct srv_trust_view *v = ctx;
    if (v->n_keys >= VIEW_MAX_KEYS)
        return 1;
    v->keys[v->n_keys++] = k->pub;
    return 0;
}

pemn_rc srv_trust_view_new(struct store *st, struct srv_trust_view **out, struct pemn_err *err)
{
    *out = NULL;
    struct srv_trust_view *v = calloc(1, sizeof *v);
    if (!v)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = store_key_list(st, view_key_cb, v, err);
    if (rc == PEMN_ECANCELED)
        rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "more than %d trusted keys",
                       VIEW_MAX_KEYS);
    if (!rc)
        rc = srv_trust_latest_root(st, &v->root, err);
    if (rc) {
        srv_trust_view_free(v);
        return rc;
    }
    *out = v;
    return PEMN_OK;
}

void srv_trust_view_free(struct srv_trust_view *v)
{
    if (!v)
        return;
    pemn_root_free(v->root);
    free(v);
}

static const struct pemn_pubkey *trusted_by_id(const struct srv_trust_view *v, const char *idhex)
{
    for (size_t i = 0; i < v->n_keys; i++) {
        char hex[PEMN_KEYID_TEXT_MAX];
        pemn_key_id_hex(&v->keys[i], hex);
        if (strcmp(hex, idhex) == 0)
            return &v->keys[i];
    }
    return NULL;
}

static bool trusted(const struct srv_trust_view *v, const struct pemn_pubkey *pk)
{
    for (size_t i = 0; i < v->n_keys; i++)
        if (memcmp(v->keys[i].bytes, pk->bytes, PEMN_PUBKEY_BYTES) == 0)
            return true;
    return false;
}

pemn_rc srv_trust_check(struct srv_trust_view *v, struct store *st, const struct store_version *ver,
                        struct pemn_err *err)
{
    struct pemn_pubkey signers[PEMN_PKG_MAX_SIGNERS];
    size_t n = 0;
    pemn_rc rc = store_trust_signers_get(st, ver->digest, signers, PEMN_PKG_MAX_SIGNERS, &n, err);
    if (rc)
        return rc;
    if (n == 0) { /* pushed before signers were recorded: the version's signer id */
        const struct pemn_pubkey *k = trusted_by_id(v, ver->signer);
        if (!k) {
            uint8_t id[PEMN_KEYID_BYTES];
            if (v->root && proto_unhex(ver->signer, 2 * PEMN_KEYID_BYTES, id) == 0 &&
                pemn_root_is_revoked(v->root, id))
                return proto_err(err, PEMN_EREVOKED, PEMN_NO_OFFSET,
                                 "signer %s is revoked by root version %" PRIu64, ver->signer,
                                 pemn_root_version(v->root));
            return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                             "signer %s is no longer a trusted key", ver->signer);
        }
        signers[n++] = *k;
    }
    if (v->root) {
        rc = pemn_root_check_signers(v->root, ver->model, signers, n, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (trusted(v, &signers[i]))
            return PEMN_OK;
    char hex[PEMN_KEYID_TEXT_MAX];
    pemn_key_id_hex(&signers[0], hex);
    return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                     n == 1 ? "signer %s is no longer a trusted key"
                            : "no signer (first %s) is a trusted key any more",
                     hex);
}

pemn_rc srv_trust_refuse(struct store *st, const struct store_version *ver, struct pemn_err *err)
{
    struct srv_trust_view *v = NULL;
    pemn_rc rc = srv_trust_view_new(st, &v, err);
    if (!rc)
        rc = srv_trust_check(v, st, ver, err);
    srv_trust_view_free(v);
    return rc;
}

json_t *srv_trust_mark(struct srv_trust_view *v, struct store *st, const struct store_version *ver,
                       json_t *obj)
{
    if (!obj || !v)
        return obj;
    struct pemn_err e = {0};
    pemn_rc rc = srv_trust_check(v, st, ver, &e);
    bool refused = rc == PEMN_EREVOKED || rc == PEMN_EUNTRUSTED;
    json_object_set_new(obj, "revoked", json_boolean(refused));
    if (refused) {
        for (char *p = e.msg; *p; p++) /* keep the JSON valid whatever the message holds */
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        json_object_set_new(obj, "revoked_reason", json_string(e.msg));
    }
    return obj;
}

enum MHD_Result srv_trust_reply_refused(struct srv_req *r, pemn_rc rc, const struct pemn_err *e)
{
    const char *msg = e && e->msg[0] ? e->msg : pemn_strerror(rc);
    if (rc == PEMN_EREVOKED)
        return srv_reply_error(r, 409, "revoked", "%s", msg);
    if (rc == PEMN_EUNTRUSTED)
        return srv_reply_error(r, 409, "untrusted", "%s", msg);
    return srv_reply_store_error(r, rc, e);
}

pemn_rc srv_trust_push_check(struct store *st, const pemn_pkg *pkg, struct pemn_err *err)
{
    pemn_root *root = NULL;
    pemn_rc rc = srv_trust_latest_root(st, &root, err);
    for (uint32_t i = 0; !rc && root && i < pemn_pkg_signer_count(pkg); i++) {
        struct pemn_pubkey pk;
        uint8_t id[PEMN_KEYID_BYTES];
        char hex[PEMN_KEYID_TEXT_MAX];
        if (pemn_pkg_signer(pkg, i, &pk, id) == PEMN_OK && pemn_root_is_revoked(root, id)) {
            pemn_keyid_format(id, hex);
            rc = proto_err(err, PEMN_EREVOKED, PEMN_NO_OFFSET,
                           "signer %s is revoked by root version %" PRIu64, hex,
                           pemn_root_version(root));
        }
    }
    pemn_root_free(root);
    return rc;
}

void srv_trust_record_signers(struct store *st, const pemn_pkg *pkg, const char *digest)
{
    struct pemn_pubkey keys[PEMN_PKG_MAX_SIGNERS];
    uint32_t n = pemn_pkg_signer_count(pkg);
    if (n > PEMN_PKG_MAX_SIGNERS)
        n = PEMN_PKG_MAX_SIGNERS;
    for (uint32_t i = 0; i < n; i++)
        if (pemn_pkg_signer(pkg, i, &keys[i], NULL) != PEMN_OK)
            return;
    struct pemn_err e = {0};
    if (store_trust_signers_put(st, digest, keys, n, &e) != PEMN_OK)
        srv_log(SRV_LOG_WARN, "recording the signers of %s: %s", digest, e.msg);
}
