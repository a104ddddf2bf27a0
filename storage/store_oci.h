/*
 * storage/store_oci.h — stored state of pemnd's OCI Distribution endpoints (/v2/).
 *
 *   upload   an OCI blob upload session: (repository, id) -> bytes received so far. The
 *            bytes themselves live in a file the server owns (named by the id); the store
 *            keeps the session so that a chunk can be checked against the offset it must
 *            start at, and so that sessions survive a restart of pemnd.
 *   blob     blobs pushed through /v2 (config blobs, layers) join the content-addressed
 *            blob table of store.h: a blob is bytes, whatever the protocol that brought
 *            them. A blob is never a version: only a verified package becomes one
 *            (store_put_package), after every push check of /v1.
 *   manifest an OCI image manifest, stored byte for byte as pushed (or, for a /v1 push, as
 *            generated once), addressed by (repository, digest) and bound to the pemn
 *            version whose package is its layer. A version may have several manifests; the
 *            newest one is what its tags resolve to.
 *
 * Thread-safety: as store.h.
 */
#ifndef PEMN_STORAGE_STORE_OCI_H
#define PEMN_STORAGE_STORE_OCI_H

#include "storage/store.h"

#define STORE_OCI_ID_MAX 65            /* upload ids: up to 64 characters + NUL */
#define STORE_OCI_TYPE_MAX 256         /* media types */
#define STORE_OCI_MANIFEST_MAX 4194304 /* 4 MiB, the distribution-spec's advice */

/* ---- upload sessions ------------------------------------------------------------------- */
struct store_oci_upload {
    char id[STORE_OCI_ID_MAX];
    char repo[STORE_LABEL_MAX];
    uint64_t size; /* bytes received so far */
    int64_t created, updated;
};

/* Starts a session with size 0. id is chosen by the caller (random, unguessable).
 * PEMN_EEXIST when the id is taken. */
pemn_rc store_oci_upload_create(struct store *st, const char *repo, const char *id,
                                struct pemn_err *err);
/* One session of repo. PEMN_ENOTFOUND when absent (or of another repository). */
pemn_rc store_oci_upload_get(struct store *st, const char *repo, const char *id,
                             struct store_oci_upload *out, struct pemn_err *err);
/* Moves a session's size from `from` to `to` (a chunk was appended). PEMN_ECONFLICT when the
 * session's size is no longer `from` (another chunk won the race); PEMN_ENOTFOUND. */
pemn_rc store_oci_upload_advance(struct store *st, const char *repo, const char *id, uint64_t from,
                                 uint64_t to, struct pemn_err *err);
/* Ends a session. PEMN_ENOTFOUND. */
pemn_rc store_oci_upload_delete(struct store *st, const char *repo, const char *id,
                                struct pemn_err *err);
typedef int (*store_oci_upload_cb)(void *ctx, const struct store_oci_upload *u);
/* Deletes every session not updated since `before` (unix seconds), calling cb for each
 * deleted one (after the delete commits) so that the caller removes its bytes. */
pemn_rc store_oci_upload_expire(struct store *st, int64_t before, store_oci_upload_cb cb, void *ctx,
                                struct pemn_err *err);

/* ---- blobs ----------------------------------------------------------------------------- */
/* Stores bytes under digest (the caller verified digest == sha256(bytes)) unless present.
 * *created tells which (may be NULL). An audit row "oci.blob" is written when created. */
pemn_rc store_oci_blob_put(struct store *st, const char *digest, const void *bytes, size_t len,
                           const char *actor, bool *created, struct pemn_err *err);
/* The size of a stored blob without reading it. PEMN_ENOTFOUND; PEMN_EINVAL (bad digest). */
pemn_rc store_oci_blob_size(struct store *st, const char *digest, uint64_t *size,
                            struct pemn_err *err);

/* ---- manifests ------------------------------------------------------------------------- */
struct store_oci_manifest {
    char repo[STORE_LABEL_MAX];
    char digest[PEMN_DIGEST_TEXT_MAX];
    char media_type[STORE_OCI_TYPE_MAX];
    char artifact_type[STORE_OCI_TYPE_MAX]; /* "" when none */
    char subject[PEMN_DIGEST_TEXT_MAX];     /* the manifest's subject digest, "" when none */
    char version[STORE_LABEL_MAX];          /* the pemn version it carries */
    int64_t created;                        /* set by the store */
    uint8_t *data;                          /* owned: free with store_oci_manifest_clear */
    size_t len;
};

/* Stores a manifest (data/len as given, byte for byte) unless (repo, digest) is present.
 * The version must exist (PEMN_ENOTFOUND otherwise). *created may be NULL. */
pemn_rc store_oci_manifest_put(struct store *st, const struct store_oci_manifest *m,
                               const char *actor, bool *created, struct pemn_err *err);
/* By digest. On success out->data is malloc'ed (store_oci_manifest_clear). PEMN_ENOTFOUND. */
pemn_rc store_oci_manifest_get(struct store *st, const char *repo, const char *digest,
                               struct store_oci_manifest *out, struct pemn_err *err);
/* The newest manifest stored for a version. PEMN_ENOTFOUND when it has none. */
pemn_rc store_oci_manifest_for_version(struct store *st, const char *repo, const char *version,
                                       struct store_oci_manifest *out, struct pemn_err *err);
/* Frees out->data; NULL is a no-op. */
void store_oci_manifest_clear(struct store_oci_manifest *m);
/* Manifests of repo whose subject is `subject`, oldest first; the callback's m->data is
 * NULL (only the descriptor fields are read). */
typedef int (*store_oci_manifest_cb)(void *ctx, const struct store_oci_manifest *m);
pemn_rc store_oci_referrers(struct store *st, const char *repo, const char *subject,
                            store_oci_manifest_cb cb, void *ctx, struct pemn_err *err);

/* ---- fleet sources ------------------------------------------------------------------- */
/* Where the devices of a fleet fetch package bytes: "oci://HOST[:PORT]/REPO" (or
 * "oci+http://..." for a plain-http registry); the desired state then names it instead of
 * pemnd's /v1/blobs. The bytes are checked on the device exactly as from pemnd. */
#define STORE_OCI_LOCATION_MAX 512
/* Sets (location != NULL) or removes (NULL) a fleet's source. PEMN_ENOTFOUND when the fleet
 * does not exist (set) or has no source (remove). Audited. */
pemn_rc store_oci_source_set(struct store *st, const char *fleet, const char *location,
                             const char *actor, struct pemn_err *err);
/* PEMN_ENOTFOUND when the fleet has none. */
pemn_rc store_oci_source_get(struct store *st, const char *fleet,
                             char location[STORE_OCI_LOCATION_MAX], struct pemn_err *err);

/* ---- backends (internal to storage/) --------------------------------------------------- */
/* The feature's table of operations (storage/store_ops.h, st->ops->oci). Arguments arrive
 * validated by the dispatchers (storage/store_oci.c): ids and locations bounded, digests
 * canonical, manifests non-empty and at most STORE_OCI_MANIFEST_MAX. Same contracts as above. */
struct store_oci_ops {
    pemn_rc (*upload_create)(struct store *st, const char *repo, const char *id,
                             struct pemn_err *err);
    pemn_rc (*upload_get)(struct store *st, const char *repo, const char *id,
                          struct store_oci_upload *out, struct pemn_err *err);
    pemn_rc (*upload_advance)(struct store *st, const char *repo, const char *id, uint64_t from,
                              uint64_t to, struct pemn_err *err);
    pemn_rc (*upload_delete)(struct store *st, const char *repo, const char *id,
                             struct pemn_err *err);
    pemn_rc (*upload_expire)(struct store *st, int64_t before, store_oci_upload_cb cb, void *ctx,
                             struct pemn_err *err);
    pemn_rc (*blob_put)(struct store *st, const char *digest, const void *bytes, size_t len,
                        const char *actor, bool *created, struct pemn_err *err);
    pemn_rc (*manifest_put)(struct store *st, const struct store_oci_manifest *m, const char *actor,
                            bool *created, struct pemn_err *err);
    pemn_rc (*manifest_get)(struct store *st, const char *repo, const char *digest,
                            struct store_oci_manifest *out, struct pemn_err *err);
    pemn_rc (*manifest_for_version)(struct store *st, const char *repo, const char *version,
                                    struct store_oci_manifest *out, struct pemn_err *err);
    pemn_rc (*referrers)(struct store *st, const char *repo, const char *subject,
                         store_oci_manifest_cb cb, void *ctx, struct pemn_err *err);
    pemn_rc (*source_set)(struct store *st, const char *fleet, const char *location,
                          const char *actor, struct pemn_err *err);
    pemn_rc (*source_get)(struct store *st, const char *fleet,
                          char location[STORE_OCI_LOCATION_MAX], struct pemn_err *err);
};
extern const struct store_oci_ops sq_oci_ops;
extern const struct store_oci_ops pg_oci_ops;

#endif
