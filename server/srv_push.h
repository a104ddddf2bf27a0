/*
 * server/srv_push.h — the push checks, once for every protocol.
 *
 * A package becomes a version only through srv_push_package: it must parse, its content
 * digest and Ed25519 signature must verify, its signer must be a trusted publisher (the keys
 * table, read at each push so `pemnd key add` takes effect at once), no signer may be revoked
 * by the latest stored root of trust (srv_trust.h: 403 "revoked"), its name (and version,
 * when the caller names one) must equal what the request says, and its release must be newer
 * than the model's latest (the store checks that in the same transaction that stores it).
 * /v1 (PUT /v1/models/{name}/versions/{version}) and OCI's /v2 (PUT manifests) both call it,
 * and each turns the outcome into its own error format.
 */
#ifndef PEMN_SERVER_SRV_PUSH_H
#define PEMN_SERVER_SRV_PUSH_H

#include "server/srv.h"

struct srv_push_outcome {
    unsigned status;  /* 201 stored, 200 already stored (same bytes); otherwise an error */
    const char *code; /* pemn error code of docs/API.md ("corrupt", "untrusted", ...) */
    char msg[PEMN_ERR_MSG_MAX + 128];
    bool created;
    struct store_version v; /* the stored version (status 200/201) */
};

/* Checks and stores bytes as a version of `name`. version may be NULL (any version: the
 * package says which). Counts accepted/rejected pushes in the metrics and logs a stored one.
 * Returns PEMN_OK when the version is (now) stored, otherwise an error with out->status,
 * out->code and out->msg set. */
pemn_rc srv_push_package(struct srv *s, const uint8_t *data, size_t len, const char *name,
                         const char *version, const char *actor, struct srv_push_outcome *out);

#endif
