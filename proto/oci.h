/*
 * proto/oci.h — PEMN packages as OCI artifacts (docs/OCI.md): the deterministic config blob
 * and image manifest of a package, and a strict reader of pushed manifests.
 *
 * The artifact: an OCI image manifest (schemaVersion 2) with artifactType
 * application/vnd.pemn.package.v1, a config blob application/vnd.pemn.config.v1+json
 * (name, version, release, signer, strategy, density, sizes) and exactly one layer of media
 * type application/vnd.pemn.package.v1 whose bytes are the .pemn file; the layer digest is
 * the package digest. proto_oci_build always writes the same bytes for the same package
 * (compact JSON, keys sorted), so pemnd and `pemn push oci://` produce the same manifest
 * digest for the same package.
 *
 * Thread-safety: pure functions.
 */
#ifndef PEMN_PROTO_OCI_H
#define PEMN_PROTO_OCI_H

#include <pemn/common.h>
#include <pemn/key.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_OCI_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define PROTO_OCI_INDEX_TYPE "application/vnd.oci.image.index.v1+json"
#define PROTO_OCI_ARTIFACT_TYPE "application/vnd.pemn.package.v1"
#define PROTO_OCI_LAYER_TYPE "application/vnd.pemn.package.v1"
#define PROTO_OCI_CONFIG_TYPE "application/vnd.pemn.config.v1+json"
#define PROTO_OCI_TYPE_MAX 256
#define PROTO_OCI_LAYERS_MAX 16

/* What the config blob and annotations say about a package. */
struct proto_oci_desc {
    const char *name, *version, *strategy;
    uint64_t release;
    int64_t created; /* manifest creation time of the package (unix seconds) */
    char digest[PEMN_DIGEST_TEXT_MAX];
    char signer[PEMN_KEYID_TEXT_MAX];
    uint64_t size, n_params, f32_size;
    double density;
};

struct proto_oci_artifact {
    char *config; /* malloc'ed JSON bytes */
    size_t config_len;
    char config_digest[PEMN_DIGEST_TEXT_MAX];
    char *manifest; /* malloc'ed JSON bytes */
    size_t manifest_len;
    char manifest_digest[PEMN_DIGEST_TEXT_MAX];
};

/* Builds the config blob and manifest of a package. PEMN_ENOMEM. Free with
 * proto_oci_artifact_clear. */
pemn_rc proto_oci_build(const struct proto_oci_desc *d, struct proto_oci_artifact *out,
                        struct pemn_err *err);
void proto_oci_artifact_clear(struct proto_oci_artifact *a);

/* Fills a descriptor from an opened, verified package (strings borrowed from it). */
struct pemn_pkg;
pemn_rc proto_oci_desc_from_pkg(const struct pemn_pkg *pkg, uint64_t size,
                                struct proto_oci_desc *out);

struct proto_oci_descriptor {
    char media_type[PROTO_OCI_TYPE_MAX];
    char digest[PEMN_DIGEST_TEXT_MAX];
    uint64_t size;
};

/* A parsed image manifest. */
struct proto_oci_manifest {
    char media_type[PROTO_OCI_TYPE_MAX];    /* "" when the manifest has none */
    char artifact_type[PROTO_OCI_TYPE_MAX]; /* "" when none */
    char subject[PEMN_DIGEST_TEXT_MAX];     /* "" when none */
    struct proto_oci_descriptor config;
    struct proto_oci_descriptor layers[PROTO_OCI_LAYERS_MAX];
    size_t n_layers;
    int pemn_layer; /* index of the one application/vnd.pemn.package.v1 layer, -1 if none */
};

/* Parses an image manifest: JSON object, schemaVersion 2, mediaType absent or the OCI image
 * manifest type, a config descriptor and at most PROTO_OCI_LAYERS_MAX layers, every digest
 * sha256:<64 hex> (returned lower case), sizes non-negative. PEMN_EUNSUPPORTED for an image
 * index or another schema; PEMN_ECORRUPT with a message for anything malformed; two PEMN
 * layers are PEMN_ECORRUPT. */
pemn_rc proto_oci_parse(const void *data, size_t len, struct proto_oci_manifest *out,
                        struct pemn_err *err);

/* "sha256:<hex>" of bytes. */
void proto_oci_digest(const void *data, size_t len, char out[PEMN_DIGEST_TEXT_MAX]);

/* OCI name rules: a repository path component [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, and a tag
 * [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool proto_oci_valid_repo(const char *s);
bool proto_oci_valid_tag(const char *s);
/* A repository location "oci://HOST[:PORT]/REPO" or "oci+http://HOST[:PORT]/REPO" (REPO one
 * or more valid components, no tag or digest). *plain_http (may be NULL) tells the scheme;
 * host_end / repo point into s (may be NULL). */
bool proto_oci_valid_location(const char *s, bool *plain_http, const char **host, size_t *host_len,
                              const char **repo);

#endif
