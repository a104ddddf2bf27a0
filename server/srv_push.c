/*
 * server/srv_push.c — the push checks shared by /v1 and /v2 (srv_push.h).
 */
#include "server/srv_push.h"
#include "server/srv_trust.h"

#include <pemn/key.h>
#include <pemn/pkg.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pemn_rc refuse(struct srv *s, struct srv_push_outcome *out, unsigned status,
                      const char *code, pemn_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static pemn_rc refuse(struct srv *s, struct srv_push_outcome *out, unsigned status,
                      const char *code, pemn_rc rc, const char *fmt, ...)
{
    out->status = status;
    out->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->msg, sizeof out->msg, fmt, ap);
    va_end(ap);
    srv_metrics_push_rejected(
        srv_get_metrics(s),
        strcmp(code, "unavailable") == 0 || strcmp(code, "internal") == 0 ? "internal" : code);
    return rc ? rc : PEMN_EINVAL;
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

static const char *msg_or(const struct pemn_err *e, const char *dflt)
{
    return e->msg[0] ? e->msg : dflt;
}

static pemn_rc store_failure(struct srv *s, struct srv_push_outcome *out, pemn_rc rc,
                             const struct pemn_err *e)
{
    const char *msg = msg_or(e, pemn_strerror(rc));
    switch (rc) {
    case PEMN_ECONFLICT:
        return refuse(s, out, 409, "conflict", rc, "%s", msg);
    case PEMN_EROLLBACK:
        return refuse(s, out, 409, "release_not_newer", rc, "%s", msg);
    case PEMN_EINVAL:
        return refuse(s, out, 400, "corrupt", rc, "%s", msg);
    case PEMN_ENOMEM:
        return refuse(s, out, 503, "unavailable", rc, "%s", msg);
    case PEMN_EDB:
        if (strstr(msg, "locked") || strstr(msg, "busy"))
            return refuse(s, out, 503, "unavailable", rc, "%s", msg);
        /* fall through */
    default:
        srv_log(SRV_LOG_ERROR, "push: %s", msg);
        return refuse(s, out, 500, "internal", rc, "%s", msg);
    }
}

pemn_rc srv_push_package(struct srv *s, const uint8_t *data, size_t len, const char *name,
                         const char *version, const char *actor, struct srv_push_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return refuse(s, out, 400, "corrupt", PEMN_ECORRUPT,
                      "empty body: expected a .pemn package");
    struct pemn_err e = {0};
    pemn_pkg *pkg = NULL;
    pemn_rc rc = pemn_pkg_open_mem(data, len, 0, &pkg, &e);
    if (rc)
        return refuse(s, out, 400, "corrupt", rc, "%s", msg_or(&e, pemn_strerror(rc)));

    pemn_keyring *kr = NULL;
    struct store *st = srv_store(s);
    if ((rc = load_keyring(st, &kr, &e))) {
        rc = store_failure(s, out, rc, &e);
        goto done;
    }
    rc = pemn_pkg_verify(pkg, kr, &e);
    if (rc == PEMN_EBADSIG) {
        rc =
            refuse(s, out, 403, "bad_signature", rc, "%s", msg_or(&e, "signature does not verify"));
        goto done;
    }
    if (rc && rc != PEMN_EUNTRUSTED) {
        rc = refuse(s, out, 400, "corrupt", rc, "%s", msg_or(&e, pemn_strerror(rc)));
        goto done;
    }
    /* the signatures are valid: a signer the latest root revokes is the more precise
     * refusal (docs/TRUST.md, server-side refusal) */
    struct pemn_err re = {0};
    pemn_rc rv = srv_trust_push_check(st, pkg, &re);
    if (rv == PEMN_EREVOKED) {
        rc = refuse(s, out, 403, "revoked", rv, "%s", re.msg);
        goto done;
    } else if (rv) {
        rc = store_failure(s, out, rv, &re);
        goto done;
    }
    if (rc == PEMN_EUNTRUSTED) {
        rc = refuse(s, out, 403, "untrusted", rc, "%s",
                    msg_or(&e, "the signer is not a trusted publisher"));
        goto done;
    }
    struct pemn_pkg_info info;
    if ((rc = pemn_pkg_info(pkg, &info))) {
        rc = refuse(s, out, 400, "corrupt", rc, "%s", pemn_strerror(rc));
        goto done;
    }
    if (strcmp(info.name, name) != 0 || (version && strcmp(info.version, version) != 0)) {
        rc = refuse(s, out, 400, "name_mismatch", PEMN_ECONFLICT,
                    "the package is %.128s %.128s, the request says %s %s", info.name, info.version,
                    name, version ? version : "(any version)");
        goto done;
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

    rc = store_put_package(st, &meta, data, len, actor, &out->created, &out->v, &e);
    if (rc) {
        rc = store_failure(s, out, rc, &e);
        goto done;
    }
    out->status = out->created ? 201 : 200;
    srv_trust_record_signers(st, pkg, out->v.digest); /* co-signers too, for the checks */
    if (out->created) {
        srv_metrics_push_accepted(srv_get_metrics(s), len);
        srv_log(SRV_LOG_INFO, "stored %s %s release %llu %s (%zu bytes) by %s", out->v.model,
                out->v.version, (unsigned long long)out->v.release, out->v.digest, len,
                actor && actor[0] ? actor : "?");
    }
done:
    pemn_keyring_free(kr);
    pemn_pkg_free(pkg);
    return rc;
}
