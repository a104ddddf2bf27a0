/*
 * tests/common/evilreg.h — a malicious registry for trust tests (issue 10): on top of
 * tests/common/fakesrv.h (which serves whatever the test scripts, with faults: cuts, stalls,
 * flipped bytes), it makes what an attacker would serve: roots of any version signed by any
 * keys, desired states signed by any key (or none) for any device, version and expiry, and
 * packages of any model, release and signer.
 */
#ifndef PEMN_TESTS_EVILREG_H
#define PEMN_TESTS_EVILREG_H

#include "tests/common/fakesrv.h"

#include <pemn/key.h>
#include <pemn/trust.h>

/* The cast of keys, each deterministic (pkgfix_key). */
struct evil_keys {
    struct pemn_seckey root1, root2, root3, meta, meta2, pub, pub2, attacker;
    struct pemn_pubkey root1_pk, root2_pk, root3_pk, meta_pk, meta2_pk, pub_pk, pub2_pk,
        attacker_pk;
};
void evil_keys_init(struct evil_keys *k);

/* A root (version 1): root keys root1 (threshold 1), metadata key meta, publisher pub for
 * pattern `pattern`, expiring at `expires`. Unsigned; the caller edits, then evil_root_text. */
pemn_root *evil_root_v1(const struct evil_keys *k, const char *pattern, int64_t expires);
/* Signs r with each of signers[0..n) and serializes it (malloc'ed text, *len). */
char *evil_root_text(pemn_root *r, const struct pemn_seckey *const *signers, size_t n, size_t *len);
/* Publishes text as GET /v1/root/<version> (and /v1/root/latest when latest). */
void evil_serve_root(fakesrv *s, uint64_t version, const char *text, int latest);

/* What a desired state says. type NULL = "pemn-desired". */
struct evil_desired {
    const char *fleet, *device, *model, *version, *type;
    uint64_t release;
    const char *digest; /* "sha256:<hex>" */
    uint64_t size;
    uint64_t mver;
    int64_t issued, expires;
};
/* The envelope text signed by sk, or the plain unsigned JSON when sk is NULL (malloc'ed). */
char *evil_desired(const struct evil_desired *d, const struct pemn_seckey *sk);
/* Serves body at GET /v1/fleets/<fleet>/devices/<device>/desired with an ETag of its hash,
 * and accepts status reports (PUT .../status). */
void evil_serve_desired(fakesrv *s, const char *fleet, const char *device, const char *body);

/* A package of model/version/release signed by sk (plus co-signers cosign[0..n)); salt
 * changes the bytes. *out malloc'ed; digest receives its "sha256:<hex>". */
void evil_pkg(const struct pemn_seckey *sk, const struct pemn_seckey *const *cosign, size_t n,
              const char *model, const char *version, uint64_t release, int salt, uint8_t **out,
              size_t *len, char digest[PEMN_DIGEST_TEXT_MAX]);
/* Serves the package bytes at /v1/blobs/<digest>. */
void evil_serve_pkg(fakesrv *s, const uint8_t *data, size_t len, const char *digest);

#endif
