/*
 * server/srv_oci.h — pemnd's OCI Distribution endpoints (/v2/, docs/OCI.md), internals shared
 * by srv_routes_oci.c (the routes), srv_oci_manifest.c (manifests <-> versions and tags),
 * srv_oci_upload.c (upload session bytes) and srv_http.c (error format of /v2 paths).
 *
 * Every /v2 error is an OCI error body {"errors":[{"code","message","detail"}]} with the
 * distribution-spec's codes; pemn's own errors raised on a /v2 path (auth, routing, limits)
 * are translated by srv_oci_reply_pemn_error, so a /v2 client never sees the /v1 format.
 */
#ifndef PEMN_SERVER_SRV_OCI_H
#define PEMN_SERVER_SRV_OCI_H

#include "server/srv.h"
#include "storage/store_oci.h"

/* Whether a request path belongs to /v2. */
bool srv_oci_path(const char *path);

/* Queues an OCI error reply. code: "BLOB_UNKNOWN", ...; detail may be NULL (no detail) or a
 * pemn error code, given as {"pemn_code": detail}. A 401 carries the Basic challenge. */
enum MHD_Result srv_oci_error(struct srv_req *r, unsigned status, const char *code,
                              const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* srv_reply_error for a /v2 path: pemn code -> OCI code (by the route where it matters). */
enum MHD_Result srv_oci_reply_pemn_error(struct srv_req *r, unsigned status, const char *code,
                                         const char *msg);
/* 405 UNSUPPORTED with an Allow header. */
enum MHD_Result srv_oci_reply_405(struct srv_req *r, const char *allow);
/* The WWW-Authenticate challenge of /v2 (Basic, a pemn token as the password). */
#define SRV_OCI_CHALLENGE "Basic realm=\"pemnd\", charset=\"UTF-8\""

/* ---- manifests (srv_oci_manifest.c) --------------------------------------------------- */
/* Makes sure version v has a manifest: when it has none, stores the deterministic config
 * blob and manifest of proto/oci.h. Errors are logged (a /v1 push has already succeeded). */
pemn_rc srv_oci_version_ensure(struct srv *s, const struct store_version *v);
/* Every version of repo, newest first (malloc'ed array). PEMN_ENOTFOUND for an unknown
 * model. */
pemn_rc srv_oci_versions(struct srv *s, const char *repo, struct store_version **out, size_t *n,
                         struct pemn_err *err);
/* Backfills manifests for every version (versions pushed before migration 6). */
pemn_rc srv_oci_backfill(struct srv *s, struct pemn_err *err);
/* Resolves a reference (a digest, a pemn tag, a version label, or "latest" for the newest
 * release when no tag of that name exists) to a stored manifest. PEMN_ENOTFOUND. */
pemn_rc srv_oci_resolve(struct srv *s, const char *repo, const char *ref,
                        struct store_oci_manifest *out, struct pemn_err *err);
/* PUT /v2/{name}/manifests/{ref}: checks and stores a pushed manifest; queues the reply. */
enum MHD_Result srv_oci_manifest_put(struct srv_req *r);

/* ---- upload session bytes (srv_oci_upload.c) ------------------------------------------ */
/* Session bytes live in files under <tmp_dir>/pemnd-oci-uploads/<id>, so an upload of any
 * size costs no memory beyond one chunk buffer of the HTTP layer. */
/* Creates the (empty) file of a new session. */
pemn_rc srv_oci_upload_file_create(struct srv *s, const char *id, struct pemn_err *err);
/* Writes len bytes at offset (truncating anything past it first: a chunk that was cut off
 * never leaves bytes behind). */
pemn_rc srv_oci_upload_file_write(struct srv *s, const char *id, uint64_t offset,
                                  const uint8_t *data, size_t len, struct pemn_err *err);
/* Maps the first size bytes read-only and computes their sha256 digest. *map is NULL when
 * size is 0. Release with srv_oci_upload_file_unmap. */
pemn_rc srv_oci_upload_file_map(struct srv *s, const char *id, uint64_t size, void **map,
                                char digest[PEMN_DIGEST_TEXT_MAX], struct pemn_err *err);
void srv_oci_upload_file_unmap(void *map, uint64_t size);
/* Locks a session (an exclusive flock on its file) so that a chunk's write and the session's
 * advance are one step; another upload is never held up. Returns the lock (-1: no such
 * session file). */
int srv_oci_upload_lock(struct srv *s, const char *id);
void srv_oci_upload_unlock(int lock); /* -1 is a no-op */
/* Removes a session's file (missing is fine). */
void srv_oci_upload_file_remove(struct srv *s, const char *id);

/* The desired state of a device in `fleet`: when the fleet has an OCI source
 * (PUT /v1/fleets/{fleet}/oci), its package_url becomes that location (docs/OCI.md). */
void srv_oci_desired_source(struct srv *s, const char *fleet, json_t *desired);

extern const struct srv_route srv_routes_oci[];

#endif
