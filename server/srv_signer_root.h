/*
 * server/srv_signer_root.h — what the desired-state signer needs from the root of trust
 * (pemn/trust.h) and the stored roots: the envelope around a signed answer, and the check that
 * the newest stored root names the metadata key.
 */
#ifndef PEMN_SERVER_SRV_SIGNER_ROOT_H
#define PEMN_SERVER_SRV_SIGNER_ROOT_H

#include "storage/store.h"

#include <jansson.h>
#include <pemn/key.h>

#define SRV_DESIRED_TYPE "pemn-desired" /* "_type" of a signed desired state */

/* PEMN_OK when the newest root stored in st names pk as a metadata key; PEMN_ENOTFOUND (no
 * root stored), PEMN_EUNTRUSTED (not named, or revoked), PEMN_EDB / PEMN_ECORRUPT. */
pemn_rc srv_signer_root_names(struct store *st, const struct pemn_pubkey *pk, struct pemn_err *err);
/* The envelope text (pemn/trust.h; ends in "\n") of the object sig signed by sk. *text is
 * malloc'ed. */
pemn_rc srv_signer_envelope(const json_t *sig, const struct pemn_seckey *sk, char **text,
                            struct pemn_err *err);

#endif
