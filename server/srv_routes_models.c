/*
 * server/srv_routes_models.c — push, model and version listings, tags.
 *
 * A push is checked completely before anything is stored: the package must parse, its
 * content digest and Ed25519 signature must verify, the signer must be a trusted publisher
 * (the keys table, read at each push so `pemnd key add` takes effect at once), no signer
 * may be revoked by the latest stored root (server/srv_trust.h), and the manifest's
 * name/version must equal the URL's. The store then writes blob, version and
 * audit row in one transaction.
 */
#include "server/srv.h"
#include "server/srv_trust.h"

#include <math.h>
#include <pemn/key.h>
#include <pemn/pkg.h>
#include <stdio.h>
#include <string.h>

/* Printable ASCII only: the strategy is free text from a package manifest, and one byte of
 * invalid UTF-8 must not make every listing that includes it fail to encode. */
static void ascii_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

json_t *srv_version_json(const struct store_version *v)
{
    char strategy[STORE_LABEL_MAX];
    ascii_copy(strategy, sizeof strategy, v->strategy);
    char url[128];
    snprintf(url, sizeof url, "/v1/blobs/%s", v->digest);
    double ratio = v->size ? (double)v->f32_size / (double)v->size : 0.0;
    return json_pack("{s:s,s:s,s:I,s:s,s:I,s:s,s:I,s:I,s:s,s:f,s:I,s:I,s:f,s:s}", "model", v->model,
                     "version", v->version, "release", (json_int_t)v->release, "digest", v->digest,
                     "size", (json_int_t)v->size, "signer", v->signer, "created",
                     (json_int_t)v->created, "pushed", (json_int_t)v->pushed, "strategy", strategy,
                     "density", round(v->density * 1e6) / 1e6, "n_params", (json_int_t)v->n_params,
                     "f32_size", (json_int_t)v->f32_size, "ratio", round(ratio * 1000) / 1000,
                     "package_url", url);
}

/* ---- push ------------------------------------------------------------------------------ */
static enum MHD_Result reject(struct srv_req *r, unsigned status, const char *code, const char *msg)
{
    srv_metrics_push_rejected(srv_get_metrics(r->srv), code);
    return srv_reply_error(r, status, code, "%s", msg);
}

static int add_key_cb(void *ctx, const struct store_key *k)
{
    return pemn_keyring_add(ctx, &k->pub) != PEMN_OK;
}

static pemn_rc load_keyring(struct store *st, pemn_keyring **out, struct pemn_err *err)
{
    pemn_rc rc = pemn_keyring_new(out);
    if (rc)
        return rc;
    rc = store_key_list(st, add_key_cb, *out, err);
    if (rc) {
        pemn_keyring_free(*out);
        *out = NULL;
    }
    return rc;
}

static enum MHD_Result push(struct srv_req *r)
{
    const char *name = srv_param(r, "name"), *version = srv_param(r, "version");
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    if (len == 0)
        return reject(r, 400, "corrupt", "empty body: expected a .pemn package");

    struct pemn_err e = {0};
    pemn_pkg *pkg = NULL;
    pemn_rc rc = pemn_pkg_open_mem(data, len, 0, &pkg, &e);
    if (rc)
        return reject(r, 400, "corrupt", e.msg[0] ? e.msg : pemn_strerror(rc));

    pemn_keyring *kr = NULL;
    enum MHD_Result ret;
    char msg[PEMN_ERR_MSG_MAX + 64];
    if ((rc = load_keyring(srv_store(r->srv), &kr, &e))) {
        ret = srv_reply_store_error(r, rc, &e);
        goto out;
    }
    rc = pemn_pkg_verify(pkg, kr, &e);
    if (rc == PEMN_EBADSIG) {
        ret = reject(r, 403, "bad_signature", e.msg[0] ? e.msg : "signature does not verify");
        goto out;
    }
    if (rc && rc != PEMN_EUNTRUSTED) {
        ret = reject(r, 400, "corrupt", e.msg[0] ? e.msg : pemn_strerror(rc));
        goto out;
    }
    /* the signatures are valid: a revoked signer is the more precise refusal */
    struct pemn_err re = {0};
    pemn_rc rv = srv_trust_push_check(srv_store(r->srv), pkg, &re);
    if (rv == PEMN_EREVOKED) {
        ret = reject(r, 403, "revoked", re.msg);
        goto out;
    } else if (rv) {
        ret = srv_reply_store_error(r, rv, &re);
        goto out;
    }
    if (rc == PEMN_EUNTRUSTED) {
        ret =
            reject(r, 403, "untrusted", e.msg[0] ? e.msg : "the signer is not a trusted publisher");
        goto out;
    }
    struct pemn_pkg_info info;
    if ((rc = pemn_pkg_info(pkg, &info))) {
        ret = reject(r, 400, "corrupt", pemn_strerror(rc));
        goto out;
    }
    if (strcmp(info.name, name) != 0 || strcmp(info.version, version) != 0) {
        snprintf(msg, sizeof msg, "the package is %.128s %.128s, the URL says %s %s", info.name,
                 info.version, name, version);
        ret = reject(r, 400, "name_mismatch", msg);
        goto out;
    }

    struct store_version meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.model, sizeof meta.model, "%s", info.name);
    snprintf(meta.version, sizeof meta.version, "%s", info.version);
    snprintf(meta.strategy, sizeof meta.strategy, "%s", info.strategy ? info.strategy : "");
    meta.release = info.release;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_pkg_digest(pkg, d);
    pemn_digest_format(d, meta.digest);
    meta.size = len;
    pemn_keyid_format(info.signer_id, meta.signer);
    meta.created = info.created;
    meta.density = info.density;
    meta.n_params = info.n_params;
    meta.f32_size = info.f32_size;

    bool created = false;
    struct store_version out;
    rc = store_put_package(srv_store(r->srv), &meta, data, len, r->actor, &created, &out, &e);
    if (rc == PEMN_ECONFLICT) {
        ret = reject(r, 409, "conflict", e.msg);
    } else if (rc == PEMN_EROLLBACK) {
        ret = reject(r, 409, "release_not_newer", e.msg);
    } else if (rc == PEMN_EINVAL) {
        ret = reject(r, 400, "corrupt", e.msg);
    } else if (rc) {
        srv_metrics_push_rejected(srv_get_metrics(r->srv), "internal");
        ret = srv_reply_store_error(r, rc, &e);
    } else {
        srv_trust_record_signers(srv_store(r->srv), pkg, out.digest);
        if (created) {
            srv_metrics_push_accepted(srv_get_metrics(r->srv), len);
            srv_log(SRV_LOG_INFO, "stored %s %s release %llu %s (%zu bytes) by %s", out.model,
                    out.version, (unsigned long long)out.release, out.digest, len,
                    r->actor[0] ? r->actor : "?");
        }
        ret = srv_reply_json(r, created ? 201 : 200, srv_version_json(&out));
    }
out:
    pemn_keyring_free(kr);
    pemn_pkg_free(pkg);
    return ret;
}

/* ---- listings -------------------------------------------------------------------------- */
/* A listing being built: versions are marked "revoked" through the trust view. */
struct listing {
    json_t *arr;
    struct srv_trust_view *view;
    struct store *st;
};

static int model_cb(void *ctx, const char *name, const struct store_version *latest, uint64_t n)
{
    struct listing *l = ctx;
    json_t *o = json_pack("{s:s,s:o,s:I}", "name", name, "latest",
                          srv_trust_mark(l->view, l->st, latest, srv_version_json(latest)),
                          "versions", (json_int_t)n);
    return o ? json_array_append_new(l->arr, o) : -1;
}

static enum MHD_Result list_models(struct srv_req *r)
{
    struct listing l = {json_array(), NULL, srv_store(r->srv)};
    struct pemn_err e;
    pemn_rc rc = l.arr ? srv_trust_view_new(l.st, &l.view, &e) : PEMN_ENOMEM;
    if (!rc)
        rc = store_list_models(l.st, model_cb, &l, &e);
    srv_trust_view_free(l.view);
    if (rc) {
        json_decref(l.arr);
        return srv_reply_store_error(r, rc, &e);
    }
    return srv_reply_json(r, 200, json_pack("{s:o}", "models", l.arr));
}

static int version_cb(void *ctx, const struct store_version *v)
{
    struct listing *l = ctx;
    json_t *o = srv_trust_mark(l->view, l->st, v, srv_version_json(v));
    return o ? json_array_append_new(l->arr, o) : -1;
}

static int tag_cb(void *ctx, const char *tag, const char *version)
{
    return json_object_set_new(ctx, tag, json_string(version));
}

static enum MHD_Result get_model(struct srv_req *r)
{
    const char *name = srv_param(r, "name");
    struct store *st = srv_store(r->srv);
    json_t *versions = json_array(), *tags = json_object();
    struct listing l = {versions, NULL, st};
    struct pemn_err e;
    pemn_rc rc = versions && tags ? srv_trust_view_new(st, &l.view, &e) : PEMN_ENOMEM;
    if (!rc)
        rc = store_list_versions(st, name, version_cb, &l, &e);
    srv_trust_view_free(l.view);
    if (!rc)
        rc = store_list_tags(st, name, tag_cb, tags, &e);
    if (rc) {
        json_decref(versions);
        json_decref(tags);
        return srv_reply_store_error(r, rc, &e);
    }
    json_t *latest = json_array_get(versions, 0); /* newest first */
    return srv_reply_json(r, 200,
                          json_pack("{s:s,s:O,s:o,s:o}", "name", name, "latest", latest, "versions",
                                    versions, "tags", tags));
}

/* srv_version_json with the "revoked" mark (unmarked if the trust view cannot be read). */
static json_t *marked(struct srv_req *r, const struct store_version *v)
{
    struct srv_trust_view *view = NULL;
    struct pemn_err e;
    json_t *o = srv_version_json(v);
    if (srv_trust_view_new(srv_store(r->srv), &view, &e) == PEMN_OK)
        o = srv_trust_mark(view, srv_store(r->srv), v, o);
    srv_trust_view_free(view);
    return o;
}

static enum MHD_Result get_version(struct srv_req *r)
{
    struct store_version v;
    struct pemn_err e;
    pemn_rc rc =
        store_get_version(srv_store(r->srv), srv_param(r, "name"), srv_param(r, "version"), &v, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    return srv_reply_json(r, 200, marked(r, &v));
}

/* ---- tags ------------------------------------------------------------------------------ */
static enum MHD_Result tag_reply(struct srv_req *r, const struct store_version *v)
{
    json_t *o = marked(r, v);
    if (o)
        json_object_set_new(o, "tag", json_string(srv_param(r, "tag")));
    return srv_reply_json(r, 200, o);
}

static enum MHD_Result put_tag(struct srv_req *r)
{
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    json_error_t je;
    json_t *body = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
    if (!body)
        return srv_reply_error(r, 400, "bad_request", "malformed JSON at line %d column %d: %s",
                               je.line, je.column, je.text);
    json_t *jv = json_is_object(body) ? json_object_get(body, "version") : NULL;
    const char *version = json_string_value(jv);
    if (!version || !srv_valid_label(version, strlen(version))) {
        json_decref(body);
        return srv_reply_error(r, 400, "bad_request",
                               "expected {\"version\": \"<version>\"} with a valid version");
    }
    struct store_version v;
    struct pemn_err e;
    /* a package whose signer is revoked or no longer trusted cannot be tagged */
    pemn_rc rc = store_get_version(srv_store(r->srv), srv_param(r, "name"), version, &v, &e);
    if (!rc)
        rc = srv_trust_refuse(srv_store(r->srv), &v, &e);
    if (rc) {
        json_decref(body);
        return srv_trust_reply_refused(r, rc, &e);
    }
    unsigned moved = 0; /* fleets following this tag start a new rollout (store.h) */
    rc = store_tag_set_follow(srv_store(r->srv), srv_param(r, "name"), srv_param(r, "tag"), version,
                              r->actor, &v, &moved, &e);
    json_decref(body);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    if (moved)
        srv_log(SRV_LOG_INFO, "tag %s:%s -> %s: %u fleet(s) started a new rollout", v.model,
                srv_param(r, "tag"), v.version, moved);
    return tag_reply(r, &v);
}

static enum MHD_Result get_tag(struct srv_req *r)
{
    struct store_version v;
    struct pemn_err e;
    pemn_rc rc =
        store_tag_get(srv_store(r->srv), srv_param(r, "name"), srv_param(r, "tag"), &v, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    return tag_reply(r, &v);
}

static enum MHD_Result delete_tag(struct srv_req *r)
{
    struct pemn_err e;
    pemn_rc rc = store_tag_delete(srv_store(r->srv), srv_param(r, "name"), srv_param(r, "tag"),
                                  r->actor, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    return srv_reply_empty(r, 204);
}

#define PUB STORE_SCOPE_PUBLISH
const struct srv_route srv_routes_models[] = {
    {"models_list", SRV_GET | SRV_HEAD, "/v1/models", SRV_OPEN_READ, 0, list_models},
    {"model_get", SRV_GET | SRV_HEAD, "/v1/models/{name}", SRV_OPEN_READ, 0, get_model},
    {"version_get", SRV_GET | SRV_HEAD, "/v1/models/{name}/versions/{version}", SRV_OPEN_READ, 0,
     get_version},
    {"version_put", SRV_PUT, "/v1/models/{name}/versions/{version}", PUB, SRV_BODY_PACKAGE, push},
    {"tag_get", SRV_GET | SRV_HEAD, "/v1/models/{name}/tags/{tag}", SRV_OPEN_READ, 0, get_tag},
    {"tag_put", SRV_PUT, "/v1/models/{name}/tags/{tag}", PUB, 64 * 1024, put_tag},
    {"tag_delete", SRV_DELETE, "/v1/models/{name}/tags/{tag}", PUB, 0, delete_tag},
    {0},
};
