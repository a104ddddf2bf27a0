/*
 * server/srv_signer_root.c — the signer's use of pemn/trust.h: envelopes and the root check
 * (server/srv_signer_root.h).
 */
#include "server/srv_signer_root.h"
#include "storage/store_trust.h"

#include "proto/err.h"

#include <pemn/trust.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pemn_rc srv_signer_envelope(const json_t *sig, const struct pemn_seckey *sk, char **text,
                            struct pemn_err *err)
{
    *text = NULL;
    char *s = json_dumps(sig, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_envelope *env = NULL;
    size_t n;
    pemn_rc rc = pemn_envelope_new(s, strlen(s), &env, err);
    free(s);
    if (!rc)
        rc = pemn_envelope_sign(env, sk, err);
    if (!rc)
        rc = pemn_envelope_serialize(env, text, &n, err);
    pemn_envelope_free(env);
    return rc;
}

pemn_rc srv_signer_root_names(struct store *st, const struct pemn_pubkey *pk, struct pemn_err *err)
{
    char id[PEMN_KEYID_TEXT_MAX];
    pemn_key_id_hex(pk, id);
    struct store_root meta;
    uint8_t *bytes = NULL;
    size_t len = 0;
    struct pemn_err se = {0};
    pemn_rc rc = store_trust_root_get(st, 0, &meta, &bytes, &len, &se);
    if (rc == PEMN_ENOTFOUND)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET,
                         "metadata key %s: no root stored; add one that names it first "
                         "(pemnd --db F root add root.json)",
                         id);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "%s", se.msg);
    pemn_root *root = NULL;
    rc = pemn_root_parse(bytes, len, &root, &se);
    free(bytes);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "stored root version %llu: %s",
                         (unsigned long long)meta.version, se.msg);
    bool named = pemn_root_is_metadata_key(root, pk);
    unsigned long long v = pemn_root_version(root);
    pemn_root_free(root);
    if (!named)
        return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                         "metadata key %s is not a metadata key of root version %llu; devices "
                         "would refuse what it signs (publish a root that names it)",
                         id, v);
    return PEMN_OK;
}
