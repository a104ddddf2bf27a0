/*
 * server/srv_trust.h — pemnd's side of the root of trust (docs/TRUST.md, docs/API.md):
 * adding roots to the stored chain, serving them, and refusing to tag or target packages
 * whose signers are revoked or no longer trusted.
 *
 * A stored version is *refused* (PEMN_EREVOKED / PEMN_EUNTRUSTED) when
 *   - a signer is revoked by the latest stored root, or
 *   - none of its signers is in the trusted key set (`pemnd key`): the key was removed, or
 *   - a root is stored and the signers do not satisfy it for the model (publisher allowed
 *     for the model, the model's threshold).
 * Refused versions cannot be tagged nor set as a fleet target; listings mark them
 * ("revoked": true, "revoked_reason").
 *
 * Thread-safety: everything takes the store and works per call; a view belongs to one
 * request.
 */
#ifndef PEMN_SERVER_SRV_TRUST_H
#define PEMN_SERVER_SRV_TRUST_H

#include "server/srv.h"
#include "storage/store_trust.h"

#include <pemn/trust.h>

/* Checks a root file and stores it: it must parse and meet its own threshold, not be
 * expired at `now`, and, when roots are stored, be the latest's successor (version + 1,
 * signed by the latest's threshold). *version and *created may be NULL. PEMN_ECORRUPT /
 * PEMN_EUNTRUSTED / PEMN_EVERSION / PEMN_EEXPIRED / PEMN_ECONFLICT, nothing stored. */
PEMN_WARN_UNUSED pemn_rc srv_trust_root_add(struct store *st, const void *bytes, size_t len,
                                            int64_t now, const char *actor, uint64_t *version,
                                            bool *created, struct pemn_err *err);
/* The latest stored root, parsed (*out new; NULL with PEMN_OK when none is stored). */
pemn_rc srv_trust_latest_root(struct store *st, pemn_root **out, struct pemn_err *err);

/* What a request needs to judge versions: the trusted keys and the latest root. */
struct srv_trust_view;
pemn_rc srv_trust_view_new(struct store *st, struct srv_trust_view **out, struct pemn_err *err);
void srv_trust_view_free(struct srv_trust_view *v); /* NULL is a no-op */
/* PEMN_OK, or why the version is refused (above); PEMN_EDB and others on failure. */
pemn_rc srv_trust_check(struct srv_trust_view *v, struct store *st, const struct store_version *ver,
                        struct pemn_err *err);
/* srv_trust_view_new + srv_trust_check + free, for one version. */
pemn_rc srv_trust_refuse(struct store *st, const struct store_version *ver, struct pemn_err *err);
/* Sets "revoked" (and "revoked_reason" when true) on a version object. Returns obj. */
json_t *srv_trust_mark(struct srv_trust_view *v, struct store *st, const struct store_version *ver,
                       json_t *obj);
/* A complete refusal reply for a version that srv_trust_check refused (409 "revoked" or
 * 409 "untrusted"), or the store error. */
enum MHD_Result srv_trust_reply_refused(struct srv_req *r, pemn_rc rc, const struct pemn_err *e);

/* Push-time check: PEMN_EREVOKED when a signer of pkg is revoked by the latest stored root
 * (a revoked key cannot publish); PEMN_OK otherwise, also when no root is stored. */
pemn_rc srv_trust_push_check(struct store *st, const pemn_pkg *pkg, struct pemn_err *err);

/* Records the signers of a pushed package (best effort: a failure is logged; the check then
 * falls back to the version's signer id). */
void srv_trust_record_signers(struct store *st, const pemn_pkg *pkg, const char *digest);

extern const struct srv_route srv_routes_trust[];

#endif
