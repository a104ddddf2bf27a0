/*
 * pemn/trust.h — the root of trust: signed JSON envelopes, the root file, its chain of
 * versions, publisher rules, thresholds, revocation and expiry.
 *
 * docs/TRUST.md specifies every byte; in short:
 *
 *   envelope  = {"signatures":[{"keyid":"<16 hex>","sig":"<128 hex>"},...],"signed":{...}}
 *   canonical = json_dumps(signed, JSON_COMPACT | JSON_SORT_KEYS) (jansson): sorted keys,
 *               no whitespace, UTF-8, integers only (no reals), no NUL in strings
 *   signature = Ed25519 (crypto_sign_detached) of "pemn-json-v1\0" || canonical
 *
 * A root is an envelope whose "signed" object has "_type":"pemn-root" and names: its
 * version (1, 2, ...), its expiry (Unix seconds), the root keys and their threshold, the
 * registry's online metadata keys, the publishers (each a key and the model-name patterns
 * it may sign), per-pattern package thresholds, and revoked key ids. A root is valid alone
 * when a threshold of its own root keys signed it; version N+1 is a valid successor of N
 * when a threshold of N's root keys signed it too (pemn_root_verify_next).
 *
 * Key ids are those of pemn/key.h: first 8 bytes of SHA-256(public key), 16 lowercase hex.
 *
 * Ownership: objects returned through `**out` are new (free with their _free; _free(NULL) is
 * a no-op); getters return borrowed pointers valid until the object is freed or modified.
 * Thread-safety: a parsed root or envelope that is no longer modified may be shared by
 * threads; modifying calls need exclusive access. All functions are reentrant.
 */
#ifndef PEMN_TRUST_H
#define PEMN_TRUST_H

#include <pemn/common.h>
#include <pemn/key.h>
#include <pemn/pkg.h>

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits ------------------------------------------------------------------------------ */
#define PEMN_TRUST_MAX_BYTES (1u << 20)     /* an envelope / root file */
#define PEMN_TRUST_MAX_SIGS 64u             /* signatures on one envelope */
#define PEMN_ROOT_MAX_KEYS 64u              /* root keys; metadata keys */
#define PEMN_ROOT_MAX_PUBLISHERS 1024u      /* publisher keys */
#define PEMN_ROOT_MAX_PATTERNS 64u          /* model patterns of one publisher */
#define PEMN_ROOT_MAX_THRESHOLDS 1024u      /* model-pattern thresholds */
#define PEMN_ROOT_MAX_REVOKED 4096u         /* revoked key ids */
#define PEMN_ROOT_MAX_THRESHOLD 64u         /* any threshold value */
#define PEMN_ROOT_SPEC_VERSION 1            /* "spec_version" this library reads and writes */
#define PEMN_ROOT_TYPE "pemn-root"          /* "_type" of a root */
#define PEMN_JSON_SIG_DOMAIN "pemn-json-v1" /* signed message prefix (plus its NUL) */

/* ---- canonical JSON ---------------------------------------------------------------------- */
/* Canonical form of one JSON value given as text (sorted keys, compact, UTF-8). Refuses
 * reals, duplicate keys, NUL in strings, invalid UTF-8, more than PEMN_TRUST_MAX_BYTES
 * (PEMN_ECORRUPT / PEMN_ETOOBIG). *out is new (malloc'ed, NUL-terminated; free()). */
PEMN_WARN_UNUSED pemn_rc pemn_json_canonical(const char *json, size_t len, char **out,
                                             size_t *out_len, struct pemn_err *err);

/* ---- signed envelopes (generic; roots and desired-state metadata) ------------------------- */
typedef struct pemn_envelope pemn_envelope;

/* Parses an envelope: an object with exactly the members "signed" (an object with a string
 * "_type") and "signatures" (array of {"keyid","sig"}, at most PEMN_TRUST_MAX_SIGS, no
 * key id twice). Does not verify signatures. PEMN_ECORRUPT / PEMN_ETOOBIG on bad input. */
PEMN_WARN_UNUSED pemn_rc pemn_envelope_parse(const void *data, size_t len, pemn_envelope **out,
                                             struct pemn_err *err);
/* A new unsigned envelope around the JSON object `signed_json` (text; must hold "_type"). */
PEMN_WARN_UNUSED pemn_rc pemn_envelope_new(const char *signed_json, size_t len, pemn_envelope **out,
                                           struct pemn_err *err);
void pemn_envelope_free(pemn_envelope *env); /* NULL is a no-op */

/* "_type" of the signed object (borrowed). */
const char *pemn_envelope_type(const pemn_envelope *env);
/* Canonical bytes of the signed object (borrowed, NUL-terminated): what is signed after the
 * domain prefix, and what a caller parses to read the content. */
const char *pemn_envelope_signed(const pemn_envelope *env, size_t *len);
size_t pemn_envelope_sig_count(const pemn_envelope *env);
/* i-th signature: key id and signature bytes. PEMN_ENOTFOUND when out of range. */
pemn_rc pemn_envelope_sig(const pemn_envelope *env, size_t i, uint8_t keyid[PEMN_KEYID_BYTES],
                          uint8_t sig[PEMN_SIG_BYTES]);

/* Adds (or replaces) the signature of sk over the signed bytes. */
PEMN_WARN_UNUSED pemn_rc pemn_envelope_sign(pemn_envelope *env, const struct pemn_seckey *sk,
                                            struct pemn_err *err);
/* Counts the distinct keys of keys[0..n_keys) with a valid signature on env (into *n_valid
 * when not NULL). PEMN_OK when that count >= threshold (threshold >= 1); PEMN_EUNTRUSTED
 * when fewer ("k of threshold"); PEMN_EINVAL for threshold 0. A signature by a key not in
 * keys, or that does not verify, is ignored (it cannot count, and cannot block). */
PEMN_WARN_UNUSED pemn_rc pemn_envelope_verify(const pemn_envelope *env,
                                              const struct pemn_pubkey *keys, size_t n_keys,
                                              unsigned threshold, unsigned *n_valid,
                                              struct pemn_err *err);
/* The envelope as text: canonical JSON of the whole envelope plus "\n" (signatures sorted
 * by key id). *out is new (malloc'ed, NUL-terminated; free()). */
PEMN_WARN_UNUSED pemn_rc pemn_envelope_serialize(const pemn_envelope *env, char **out,
                                                 size_t *out_len, struct pemn_err *err);

/* ---- the root ---------------------------------------------------------------------------- */
typedef struct pemn_root pemn_root;

/* Parses a root file and checks it completely: envelope, "_type", "spec_version" (higher:
 * PEMN_EVERSION), every field of docs/TRUST.md (unknown fields, unsorted or duplicated
 * lists, key ids that do not match their keys, a key both named and revoked, out-of-range
 * thresholds: PEMN_ECORRUPT), and that at least root_threshold of its own root keys signed
 * it (PEMN_EUNTRUSTED otherwise). Does not check expiry (pemn_root_check_expiry). */
PEMN_WARN_UNUSED pemn_rc pemn_root_parse(const void *data, size_t len, pemn_root **out,
                                         struct pemn_err *err);
/* pemn_root_parse of a file (at most PEMN_TRUST_MAX_BYTES). */
PEMN_WARN_UNUSED pemn_rc pemn_root_load(const char *path, pemn_root **out, struct pemn_err *err);
void pemn_root_free(pemn_root *root); /* NULL is a no-op */

/* Chain link: next must be prev's successor — version prev+1 (PEMN_EVERSION otherwise) and
 * signed by at least prev's root_threshold of prev's root keys (PEMN_EUNTRUSTED). next's own
 * threshold was checked when it was parsed. Expiry of either is not checked (TUF: only the
 * newest root's expiry matters). */
PEMN_WARN_UNUSED pemn_rc pemn_root_verify_next(const pemn_root *prev, const pemn_root *next,
                                               struct pemn_err *err);
/* pemn_root_parse of data, then pemn_root_verify_next(prev, it). */
PEMN_WARN_UNUSED pemn_rc pemn_root_parse_next(const pemn_root *prev, const void *data, size_t len,
                                              pemn_root **out, struct pemn_err *err);
/* PEMN_EEXPIRED when now >= expires, else PEMN_OK. */
PEMN_WARN_UNUSED pemn_rc pemn_root_check_expiry(const pemn_root *root, int64_t now,
                                                struct pemn_err *err);

/* -- getters -- */
uint64_t pemn_root_version(const pemn_root *root);
int64_t pemn_root_expires(const pemn_root *root); /* Unix seconds */
/* The file bytes as parsed or last serialized (borrowed); NULL for an unsigned new root. */
const uint8_t *pemn_root_bytes(const pemn_root *root, size_t *len);
/* Canonical bytes of the "signed" object (borrowed). */
const char *pemn_root_signed(const pemn_root *root, size_t *len);
/* SHA-256 of pemn_root_bytes ("sha256:<hex>" via pemn_digest_format); PEMN_EINVAL if none. */
pemn_rc pemn_root_digest(const pemn_root *root, uint8_t out[PEMN_DIGEST_BYTES]);

unsigned pemn_root_threshold(const pemn_root *root);
size_t pemn_root_key_count(const pemn_root *root);
const struct pemn_pubkey *pemn_root_key(const pemn_root *root, size_t i); /* NULL if none */
size_t pemn_root_metadata_key_count(const pemn_root *root);
const struct pemn_pubkey *pemn_root_metadata_key(const pemn_root *root, size_t i);
/* true when pk is one of the root's metadata keys (and not revoked). */
bool pemn_root_is_metadata_key(const pemn_root *root, const struct pemn_pubkey *pk);

/* Whether env (desired-state metadata, any "_type") carries a valid signature by at least one
 * of the root's metadata keys that is not revoked: PEMN_OK, else PEMN_EUNTRUSTED ("signed by
 * no metadata key of root version N"). Does not look at the content or its expiry. */
PEMN_WARN_UNUSED pemn_rc pemn_root_check_metadata(const pemn_root *root, const pemn_envelope *env,
                                                  struct pemn_err *err);

struct pemn_root_publisher {
    struct pemn_pubkey key;
    uint8_t id[PEMN_KEYID_BYTES];
    size_t n_patterns;
    const char *const *patterns; /* borrowed, sorted */
};
size_t pemn_root_publisher_count(const pemn_root *root);
pemn_rc pemn_root_publisher(const pemn_root *root, size_t i, struct pemn_root_publisher *out);
size_t pemn_root_model_threshold_count(const pemn_root *root);
/* i-th (pattern, threshold) pair; pattern borrowed. */
pemn_rc pemn_root_model_threshold_at(const pemn_root *root, size_t i, const char **pattern,
                                     unsigned *threshold);
/* Signatures a package of `model` needs: the largest threshold whose pattern matches the
 * model, 1 when none does. */
unsigned pemn_root_model_threshold(const pemn_root *root, const char *model);
size_t pemn_root_revoked_count(const pemn_root *root);
pemn_rc pemn_root_revoked_at(const pemn_root *root, size_t i, uint8_t id[PEMN_KEYID_BYTES]);
bool pemn_root_is_revoked(const pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES]);

/* -- model-name patterns -- */
/* A pattern is 1..128 bytes of [A-Za-z0-9._-] and '*'; '*' matches any run (also empty) of
 * characters; everything else matches itself (case-sensitive). No '*': exact match. */
bool pemn_pattern_valid(const char *pattern);
bool pemn_pattern_match(const char *pattern, const char *model);

/* -- package checks -- */
/* Whether a package of `model` whose valid signers are signers[0..n) is allowed: any signer
 * revoked → PEMN_EREVOKED; fewer than pemn_root_model_threshold(model) distinct signers that
 * are publishers with a pattern matching model → PEMN_EUNTRUSTED (the message says which:
 * "not a publisher", "not allowed for model X", "k of t signatures"). Signatures are not
 * checked here: pass only verified signers. */
PEMN_WARN_UNUSED pemn_rc pemn_root_check_signers(const pemn_root *root, const char *model,
                                                 const struct pemn_pubkey *signers, size_t n,
                                                 struct pemn_err *err);
/* Verifies a package against a root: digest and every signature (pemn_pkg_verify_signatures),
 * its model name equals `model` when model is not NULL (PEMN_EUNTRUSTED "package is model X,
 * not Y"), then pemn_root_check_signers for its manifest name. */
PEMN_WARN_UNUSED pemn_rc pemn_root_check_package(const pemn_root *root, const char *model,
                                                 const pemn_pkg *pkg, struct pemn_err *err);

/* ---- making roots (offline tooling) -------------------------------------------------------- */
/* A new empty, unsigned root: version 1, the given expiry, threshold 1, no keys. */
PEMN_WARN_UNUSED pemn_rc pemn_root_new(int64_t expires, pemn_root **out);
/* An unsigned copy of prev with version prev+1 (for pemn root update). */
PEMN_WARN_UNUSED pemn_rc pemn_root_next(const pemn_root *prev, pemn_root **out);

/* Every modifier below drops the signatures already made (they no longer match).
 * PEMN_EEXIST for a key already present, PEMN_EREVOKED for adding a revoked key,
 * PEMN_ECONFLICT for a metadata key that is also a root or publisher key (or the reverse),
 * PEMN_ENOTFOUND for removing what is absent, PEMN_ETOOBIG past a limit, PEMN_EINVAL for a
 * bad pattern or threshold. */
pemn_rc pemn_root_set_expires(pemn_root *root, int64_t expires);
pemn_rc pemn_root_set_threshold(pemn_root *root, unsigned threshold);
pemn_rc pemn_root_add_key(pemn_root *root, const struct pemn_pubkey *pk);
pemn_rc pemn_root_remove_key(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES]);
pemn_rc pemn_root_add_metadata_key(pemn_root *root, const struct pemn_pubkey *pk);
pemn_rc pemn_root_remove_metadata_key(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES]);
/* Adds pattern to the publisher pk (created when new); an existing pattern is PEMN_EEXIST. */
pemn_rc pemn_root_add_publisher(pemn_root *root, const struct pemn_pubkey *pk, const char *pattern);
pemn_rc pemn_root_remove_publisher(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES]);
/* Sets the threshold of a model pattern (1 removes the entry: 1 is the default). */
pemn_rc pemn_root_set_model_threshold(pemn_root *root, const char *pattern, unsigned threshold);
/* Revokes a key id: removes it from publishers and metadata keys (a root key cannot be
 * revoked while it is one: PEMN_EINVAL, remove it first) and lists it as revoked
 * (PEMN_EEXIST when it already is). */
pemn_rc pemn_root_revoke(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES]);

/* Adds sk's signature over the current content (the key need not be a root key: a key of
 * the previous version signs a successor). */
PEMN_WARN_UNUSED pemn_rc pemn_root_sign(pemn_root *root, const struct pemn_seckey *sk,
                                        struct pemn_err *err);
/* Checks that the root is complete (at least one root key, threshold <= keys) and that its
 * own threshold is met, then writes the file text into *out (new, malloc'ed; free()) and
 * makes it the root's bytes. */
PEMN_WARN_UNUSED pemn_rc pemn_root_serialize(pemn_root *root, char **out, size_t *out_len,
                                             struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
