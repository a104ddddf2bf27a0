/*
 * pemn/oci.h — PEMN packages in any OCI registry (docs/OCI.md): push a package as an OCI
 * artifact, pull one back with the guarantees of pemn/client.h.
 *
 * References: "oci://HOST[:PORT]/REPO[:TAG|@sha256:<hex>]" (the "oci://" prefix is optional).
 * REPO is one or more lower-case path components; the default tag is the package's version
 * on push and "latest" on pull.
 *
 * Push: the package is checked structurally, its deterministic config blob and manifest are
 * built (proto/oci.h: the same bytes pemnd generates for the same package), blobs the
 * registry already has are skipped, the package is uploaded in chunks (Content-Range), and a
 * chunk cut off mid-way resumes from the offset the registry reports; then the manifest is
 * put under the tag.
 * Pull: the manifest is fetched (its digest checked against the reference or the registry's
 * Docker-Content-Digest), it must hold exactly one application/vnd.pemn.package.v1 layer;
 * when the config is the PEMN config its name/version/release must match the signed package;
 * the layer is then fetched exactly as pemn_client_fetch does (resume with Range, SHA-256 of
 * the whole file against the layer digest, signature against the trusted keyring, atomic
 * install, optional cache). Whatever carried the bytes, only a verified package is installed.
 *
 * Auth: anonymous first; on a 401 the registry's WWW-Authenticate challenge decides: Basic
 * (username/password, e.g. any user and a pemn token for pemnd) or a Bearer token service
 * (realm/service/scope, credentials as Basic to the realm, the returned token used as
 * Bearer). Credentials are passed by the caller (from the environment or a file), never
 * logged; they are wiped after use.
 *
 * Result codes: as pemn/client.h; besides, PEMN_EUNSUPPORTED for a manifest that is not a
 * PEMN artifact (another artifact type, an image index) and PEMN_EDIGEST for a manifest
 * whose bytes do not hash to the digest asked for.
 *
 * Thread-safety: each call is independent (its own connection state).
 */
#ifndef PEMN_OCI_H
#define PEMN_OCI_H

#include <pemn/client.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEMN_OCI_HOST_BUF 256
#define PEMN_OCI_REPO_BUF 256

struct pemn_oci_ref {
    char host[PEMN_OCI_HOST_BUF];      /* "host" or "host:port" */
    char repo[PEMN_OCI_REPO_BUF];      /* "models/net" */
    char tag[PEMN_LABEL_BUF];          /* "" when absent or by digest */
    char digest[PEMN_DIGEST_TEXT_MAX]; /* "" unless "@sha256:<hex>" was given */
};
/* Parses a reference. PEMN_EINVAL with a message naming the bad part. */
pemn_rc pemn_oci_parse_ref(const char *text, struct pemn_oci_ref *out, struct pemn_err *err);

struct pemn_oci_options {
    struct pemn_client_options client; /* timeouts, retries, trusted keyring, cache, progress;
                                          its token is ignored (use username/password) */
    int plain_http;                    /* 1: http:// (local registries); default https:// */
    const char *username;              /* credentials or NULL (borrowed for the call) */
    const char *password;
    uint64_t chunk_size; /* upload chunk size in bytes; default 8 MiB */
};
/* Defaults (pemn_client_options_init for .client, https, no credentials, 8 MiB chunks). */
void pemn_oci_options_init(struct pemn_oci_options *o);

struct pemn_oci_result {
    char manifest_digest[PEMN_DIGEST_TEXT_MAX];
    char layer_digest[PEMN_DIGEST_TEXT_MAX]; /* the package digest */
    uint64_t layer_size;
    char model[PEMN_LABEL_BUF];
    char version[PEMN_LABEL_BUF];
    char tag[PEMN_LABEL_BUF]; /* the tag pushed / pulled ("" by digest) */
    uint64_t release;
    int layer_uploaded;  /* push: 0 when the registry already held the package */
    uint64_t bytes_sent; /* push: blob bytes uploaded (all attempts) */
    uint32_t resumes;    /* push: uploads continued from the registry's offset */
    uint32_t restarts;   /* push: uploads started over in a new session (the registry lost
                            the old one, or cannot resume it) */
};

/* Pushes the package file at path to ref. out may be NULL. */
PEMN_WARN_UNUSED pemn_rc pemn_oci_push(const char *path, const char *ref,
                                       const struct pemn_oci_options *o,
                                       struct pemn_oci_result *out, struct pemn_err *err);
/* Pulls ref into dest_path (see above). fo, out and stats may be NULL. */
PEMN_WARN_UNUSED pemn_rc pemn_oci_pull(const char *ref, const char *dest_path,
                                       const struct pemn_oci_options *o,
                                       const struct pemn_fetch_options *fo,
                                       struct pemn_oci_result *out, struct pemn_fetch_stats *stats,
                                       struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
