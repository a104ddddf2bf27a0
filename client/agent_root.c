/*
 * client/agent_root.c — root mode of the agent: the root chain, signed desired state and the
 * root's publisher rules (client/agent_root.h; docs/AGENT.md, "Trust"; docs/TRUST.md).
 *
 * Order of a cycle (TUF's client workflow, reduced to pemn's two roles):
 *   1. root: GET /v1/root/{N+1}, {N+2}, ... until 404; each must be signed by a threshold of
 *      the previous version's root keys and of its own (pemn_root_parse_next). It is stored
 *      (DIR/root.json) before it is used. A new set of metadata keys resets the metadata
 *      version floor (recovery from a fast-forward by a compromised metadata key). An expired
 *      newest root stops installs.
 *   2. desired state: an envelope of "_type" "pemn-desired" signed by one of the root's
 *      metadata keys, for this fleet and device, with a metadata version not below the highest
 *      seen (the same version only for the same bytes) and not expired. It is recorded
 *      (trust.json) before anything acts on it.
 *   3. package: signed by enough publishers the root allows for the model, none revoked, of
 *      the agent's one model, release not below the highest seen (client/agent_trust.c).
 */
#include "client/agent_root.h"

#include "proto/err.h"

#include <pemn/trust.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DESIRED_TYPE "pemn-desired"

struct agent_root {
    pemn_root *root; /* the current root (DIR/root.json) */
};

/* SHA-256 (hex) of the root's metadata keys, in the root's (sorted) order. */
static void metadata_keys_hash(const pemn_root *root, char out[65])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    for (size_t i = 0; i < pemn_root_metadata_key_count(root); i++) {
        const struct pemn_pubkey *k = pemn_root_metadata_key(root, i);
        if (k)
            crypto_hash_sha256_update(&h, k->bytes, sizeof k->bytes);
    }
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, d);
    sodium_bin2hex(out, 65, d, sizeof d);
}

/* Makes root current: the record's root version and metadata-key hash (a new metadata key
 * set resets the metadata version floor). Takes root. */
static pemn_rc adopt(struct pemn_agent *a, pemn_root *root, struct pemn_err *err)
{
    (void)err;
    struct agent_root *ar = a->trust->root;
    pemn_root_free(ar->root);
    ar->root = root;
    struct agent_trust_rec *rec = &a->trust->rec;
    char mk[65];
    metadata_keys_hash(root, mk);
    if (strcmp(mk, rec->meta_keys) != 0) {
        if (rec->meta_keys[0]) {
            /* new metadata keys: what the old ones signed (maybe a version far in the
             * future, by a stolen key) no longer binds */
            rec->meta_version = 0;
            rec->meta_hash[0] = 0;
            rec->meta_expires = 0;
        }
        memcpy(rec->meta_keys, mk, sizeof mk);
    }
    rec->root_version = pemn_root_version(root);
    return PEMN_OK;
}

pemn_rc agent_root_open(struct pemn_agent *a, struct pemn_err *err)
{
    a->trust->root = calloc(1, sizeof *a->trust->root);
    if (!a->trust->root)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    char *buf = NULL;
    size_t len = 0;
    struct pemn_err re = {0};
    bool stored = true;
    pemn_rc rc = agent_trust_read(a->dir, "root.json", PEMN_TRUST_MAX_BYTES, &buf, &len, &re);
    if (rc == PEMN_ENOTFOUND) {
        stored = false;
        rc = agent_trust_read_path(a->opts.root_file, PEMN_TRUST_MAX_BYTES, &buf, &len, &re);
    }
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "root: %s", re.msg);
    pemn_root *root = NULL;
    rc = pemn_root_parse(buf, len, &root, &re);
    if (rc) {
        free(buf);
        return proto_err(err, rc, PEMN_NO_OFFSET, "%s: not a valid root: %s",
                         stored ? "DIR/root.json" : a->opts.root_file, re.msg);
    }
    if (!stored && (rc = agent_trust_write(a->dir, "root.json", buf, len, err))) {
        free(buf);
        pemn_root_free(root);
        return rc;
    }
    free(buf);
    /* a record written under a newer root than the one found means root.json was replaced
     * behind the agent's back: refuse rather than trust an older root */
    if (a->trust->rec.root_version > pemn_root_version(root)) {
        unsigned long long have = pemn_root_version(root);
        pemn_root_free(root);
        return proto_err(err, PEMN_EROLLBACK, PEMN_NO_OFFSET,
                         "root version %llu is older than version %llu recorded in trust.json",
                         have, (unsigned long long)a->trust->rec.root_version);
    }
    return adopt(a, root, err);
}

void agent_root_free(struct pemn_agent *a)
{
    struct agent_root *ar = a->trust ? a->trust->root : NULL;
    if (!ar)
        return;
    pemn_root_free(ar->root);
    free(ar);
    a->trust->root = NULL;
}

pemn_rc agent_root_update(struct pemn_agent *a, struct pemn_err *err)
{
    struct agent_root *ar = a->trust->root;
    bool changed = false;
    pemn_rc rc = PEMN_OK;
    for (unsigned i = 0; i < AGENT_ROOT_WALK_MAX; i++) {
        unsigned long long next = (unsigned long long)pemn_root_version(ar->root) + 1;
        char url[PATH_MAX];
        if ((rc = agent_path(url, err, "%s/v1/root/%llu", a->opts.server, next)))
            break;
        long status = 0;
        char *body = NULL;
        size_t len = 0;
        if ((rc = agent_http_get(a, url, PEMN_TRUST_MAX_BYTES, &status, &body, &len, err))) {
            free(body);
            if (rc == PEMN_ETOOBIG) /* endless data: not a root */
                rc = agent_trust_refuse(a, AGENT_R_ROOT_INVALID, PEMN_ETOOBIG, err,
                                        "root version %llu: over %u bytes", next,
                                        PEMN_TRUST_MAX_BYTES);
            break;
        }
        if (status == 404) {
            free(body);
            break;
        }
        if (status != 200) {
            free(body);
            rc = proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "root version %llu: HTTP %ld", next,
                           status);
            break;
        }
        pemn_root *nr = NULL;
        struct pemn_err re = {0};
        rc = pemn_root_parse_next(ar->root, body, len, &nr, &re);
        if (rc) {
            free(body);
            rc = agent_trust_refuse(a, AGENT_R_ROOT_INVALID, rc, err,
                                    "root version %llu does not follow version %llu: %s", next,
                                    next - 1, re.msg);
            break;
        }
        /* stored before it is used: a crash leaves either root, both valid */
        rc = agent_trust_write(a->dir, "root.json", body, len, err);
        free(body);
        if (rc) {
            pemn_root_free(nr);
            break;
        }
        if ((rc = adopt(a, nr, err)))
            break;
        changed = true;
    }
    if (changed) {
        /* the record follows the root; a failure here is redone at the next start */
        (void)agent_trust_rec_save(a->dir, &a->trust->rec, NULL);
        a->etag[0] = 0; /* ask afresh under the new root */
    }
    if (rc)
        return rc;
    struct pemn_err re = {0};
    if (pemn_root_check_expiry(ar->root, (int64_t)time(NULL), &re))
        return agent_trust_refuse(a, AGENT_R_ROOT_EXPIRED, PEMN_EEXPIRED, err,
                                  "root version %llu expired: %s; no installs until a newer "
                                  "root is published",
                                  (unsigned long long)pemn_root_version(ar->root), re.msg);
    return PEMN_OK;
}

static bool get_int(json_t *o, const char *k, int64_t min, int64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

pemn_rc agent_root_check_desired(struct pemn_agent *a, const char *body, size_t len, json_t **out,
                                 struct pemn_err *err)
{
    struct agent_root *ar = a->trust->root;
    struct agent_trust_rec *rec = &a->trust->rec;
    *out = NULL;
    pemn_envelope *env = NULL;
    struct pemn_err re = {0};
    pemn_rc rc = pemn_envelope_parse(body, len, &env, &re);
    if (rc)
        return agent_trust_refuse(a, AGENT_R_META_UNTRUSTED, PEMN_EUNTRUSTED, err,
                                  "desired state is not signed metadata: %s", re.msg);
    if (strcmp(pemn_envelope_type(env), DESIRED_TYPE) != 0) {
        rc = agent_trust_refuse(a, AGENT_R_META_UNTRUSTED, PEMN_EUNTRUSTED, err,
                                "desired state has _type '%.40s', not '" DESIRED_TYPE "'",
                                pemn_envelope_type(env));
        goto out;
    }
    if (pemn_root_check_metadata(ar->root, env, &re)) {
        rc = agent_trust_refuse(a, AGENT_R_META_UNTRUSTED, PEMN_EUNTRUSTED, err,
                                "desired state: %s", re.msg);
        goto out;
    }
    size_t slen;
    const char *sig = pemn_envelope_signed(env, &slen);
    json_t *o = json_loadb(sig, slen, 0, NULL);
    int64_t version = 0, expires = 0, issued = 0;
    const char *fleet = json_string_value(json_object_get(o, "fleet"));
    const char *device = json_string_value(json_object_get(o, "device"));
    if (!o || !fleet || !device || !get_int(o, "metadata_version", 1, &version) ||
        !get_int(o, "expires", 0, &expires) || !get_int(o, "issued", 0, &issued)) {
        json_decref(o);
        rc = agent_trust_refuse(a, AGENT_R_META_UNTRUSTED, PEMN_EUNTRUSTED, err,
                                "signed desired state lacks fleet, device, metadata_version, "
                                "issued or expires");
        goto out;
    }
    if (strcmp(fleet, a->opts.fleet) != 0 || strcmp(device, a->opts.device) != 0) {
        rc = agent_trust_refuse(a, AGENT_R_META_WRONG_TARGET, PEMN_EUNTRUSTED, err,
                                "signed desired state is for device '%.64s' of fleet '%.64s', "
                                "not this one",
                                device, fleet);
        json_decref(o);
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
    uint8_t d[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256(d, (const unsigned char *)sig, slen);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    if ((uint64_t)version < rec->meta_version ||
        ((uint64_t)version == rec->meta_version && strcmp(hex, rec->meta_hash) != 0)) {
        rc =
            agent_trust_refuse(a, AGENT_R_META_REPLAYED, PEMN_EROLLBACK, err,
                               "desired state has metadata version %lld; version %llu was "
                               "seen already%s",
                               (long long)version, (unsigned long long)rec->meta_version,
                               (uint64_t)version == rec->meta_version ? " with other content" : "");
        json_decref(o);
        goto out;
    }
    if (now >= expires) {
        rc = agent_trust_refuse(a, AGENT_R_META_EXPIRED, PEMN_EEXPIRED, err,
                                "desired state (metadata version %lld) expired %lld s ago",
                                (long long)version, (long long)(now - expires));
        json_decref(o);
        goto out;
    }
    if ((uint64_t)version != rec->meta_version) {
        rec->meta_version = (uint64_t)version;
        memcpy(rec->meta_hash, hex, sizeof hex);
        rec->meta_expires = expires;
        /* recorded before anything acts on it: a restart never accepts an older one */
        if ((rc = agent_trust_rec_save(a->dir, rec, err))) {
            json_decref(o);
            goto out;
        }
    }
    *out = o;
out:
    pemn_envelope_free(env);
    return rc;
}

pemn_rc agent_root_check_fresh(struct pemn_agent *a, struct pemn_err *err)
{
    const struct agent_trust_rec *rec = &a->trust->rec;
    int64_t now = (int64_t)time(NULL);
    if (rec->meta_version && now >= rec->meta_expires)
        return agent_trust_refuse(a, AGENT_R_META_EXPIRED, PEMN_EEXPIRED, err,
                                  "the desired state in force (metadata version %llu) expired "
                                  "%lld s ago and the server offers nothing newer",
                                  (unsigned long long)rec->meta_version,
                                  (long long)(now - rec->meta_expires));
    return PEMN_OK;
}

pemn_rc agent_root_check_pkg(struct pemn_agent *a, const pemn_pkg *pkg, struct pemn_err *err)
{
    struct agent_root *ar = a->trust->root;
    struct pemn_err re = {0};
    pemn_rc rc = pemn_root_check_package(ar->root, NULL, pkg, &re);
    if (rc == PEMN_EREVOKED)
        return agent_trust_refuse(a, AGENT_R_SIGNER_REVOKED, rc, err, "%s", re.msg);
    if (rc == PEMN_EUNTRUSTED)
        return agent_trust_refuse(a, AGENT_R_SIGNER_UNTRUSTED, rc, err, "%s", re.msg);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "%s", re.msg);
    return PEMN_OK;
}
