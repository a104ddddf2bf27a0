/*
 * server/srv_signer.h — signed desired state (docs/TRUST.md, "Signed desired state"): pemnd's
 * online metadata key signs every desired-state answer with the device's next metadata
 * version, an issue time and an expiry. A signed answer is stored (storage/store_metadata.h)
 * and served again while the answer is the same and more than half of its lifetime is left,
 * so steady-state polling (and its 304s) does not sign.
 *
 * Thread-safety: a signer is read-only after srv_signer_new; srv_signer_answer may be called
 * from any number of threads.
 */
#ifndef PEMN_SERVER_SRV_SIGNER_H
#define PEMN_SERVER_SRV_SIGNER_H

#include "storage/store.h"

#include <jansson.h>
#include <stdbool.h>

struct srv_signer;

/* Loads the secret key at key_path; answers will be valid for expiry seconds. Then checks
 * that the newest root stored in st names this key as a metadata key (PEMN_EUNTRUSTED when it
 * does not, PEMN_ENOTFOUND when no root is stored: a device could not trust what it signs). */
PEMN_WARN_UNUSED pemn_rc srv_signer_new(const char *key_path, uint64_t expiry, struct store *st,
                                        struct srv_signer **out, struct pemn_err *err);
void srv_signer_free(struct srv_signer *sg); /* NULL is a no-op; wipes the key */

#define SRV_SIGNER_ETAG_MAX 64

/* The signed body for device's answer (the unsigned JSON object `answer`, borrowed; it must
 * hold "fleet" and "device"): the stored one when still good, else a newly signed one with the
 * next metadata version (stored). etag receives its ETag (quoted; derived from the answer's
 * hash, the metadata version and the issue time: it changes whenever the body does). When
 * if_none_match (the request header, may be NULL) names that ETag, *not_modified is set and
 * no body is returned (*body NULL); else *body is malloc'ed (NUL-terminated, ending in a
 * newline), *len its length. PEMN_ENOMEM, PEMN_EDB. */
PEMN_WARN_UNUSED pemn_rc srv_signer_answer(struct srv_signer *sg, struct store *st,
                                           const char *fleet, const char *device,
                                           const json_t *answer, const char *if_none_match,
                                           char **body, size_t *len, char etag[SRV_SIGNER_ETAG_MAX],
                                           bool *not_modified, struct pemn_err *err);

#endif
