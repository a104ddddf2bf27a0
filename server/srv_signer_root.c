/*
 * server/srv_signer_root.c — the signer's use of pemn/trust.h: envelopes and the root check
 * (server/srv_signer_root.h).
 */
#include "server/srv_signer_root.h"

#include "proto/err.h"

#include <pemn/trust.h>

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
    (void)st, (void)pk, (void)err;
    return PEMN_OK; /* FIXME(issue-10 merge): read the newest stored root */
}
