/*
 * storage/store_oci.c — the OCI state of storage/store_oci.h: validation, canonical digests
 * and bounds, once for every backend; then the backend's table (st->ops->oci).
 */
#include "storage/store_oci.h"
#include "storage/store_ops.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

#define OCI_OPS(st, err)                                                                           \
    do {                                                                                           \
        if (!(st)->ops->oci)                                                                       \
            return store_unsupported((st), "OCI state", (err));                                    \
    } while (0)

static bool text_ok(const char *s, size_t cap)
{
    return s && s[0] && strnlen(s, cap) < cap;
}

static pemn_rc check_session(const char *repo, const char *id, struct pemn_err *err)
{
    if (!text_ok(repo, STORE_LABEL_MAX) || !text_ok(id, STORE_OCI_ID_MAX))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad repository or upload id");
    return PEMN_OK;
}

static pemn_rc canon(const char *digest, char out[PEMN_DIGEST_TEXT_MAX], struct pemn_err *err)
{
    uint8_t d[PEMN_DIGEST_BYTES];
    if (!digest || strnlen(digest, 80) != 71 || pemn_digest_parse(digest, d) != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    pemn_digest_format(d, out);
    return PEMN_OK;
}

pemn_rc store_oci_upload_create(struct store *st, const char *repo, const char *id,
                                struct pemn_err *err)
{
    OCI_OPS(st, err);
    pemn_rc rc = check_session(repo, id, err);
    return rc ? rc : st->ops->oci->upload_create(st, repo, id, err);
}

pemn_rc store_oci_upload_get(struct store *st, const char *repo, const char *id,
                             struct store_oci_upload *out, struct pemn_err *err)
{
    OCI_OPS(st, err);
    pemn_rc rc = check_session(repo, id, err);
    return rc ? rc : st->ops->oci->upload_get(st, repo, id, out, err);
}

pemn_rc store_oci_upload_advance(struct store *st, const char *repo, const char *id, uint64_t from,
                                 uint64_t to, struct pemn_err *err)
{
    OCI_OPS(st, err);
    pemn_rc rc = check_session(repo, id, err);
    if (rc)
        return rc;
    if (to > INT64_MAX || from > to)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad upload size");
    return st->ops->oci->upload_advance(st, repo, id, from, to, err);
}

pemn_rc store_oci_upload_delete(struct store *st, const char *repo, const char *id,
                                struct pemn_err *err)
{
    OCI_OPS(st, err);
    pemn_rc rc = check_session(repo, id, err);
    return rc ? rc : st->ops->oci->upload_delete(st, repo, id, err);
}

pemn_rc store_oci_upload_expire(struct store *st, int64_t before, store_oci_upload_cb cb, void *ctx,
                                struct pemn_err *err)
{
    OCI_OPS(st, err);
    return st->ops->oci->upload_expire(st, before, cb, ctx, err);
}

pemn_rc store_oci_blob_put(struct store *st, const char *digest, const void *bytes, size_t len,
                           const char *actor, bool *created, struct pemn_err *err)
{
    OCI_OPS(st, err);
    char d[PEMN_DIGEST_TEXT_MAX];
    pemn_rc rc = canon(digest, d, err);
    if (rc)
        return rc;
    if (len && !bytes)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL bytes");
    return st->ops->oci->blob_put(st, d, len ? bytes : "", len, actor ? actor : "", created, err);
}

pemn_rc store_oci_blob_size(struct store *st, const char *digest, uint64_t *size,
                            struct pemn_err *err)
{
    char d[PEMN_DIGEST_TEXT_MAX];
    pemn_rc rc = canon(digest, d, err);
    if (rc)
        return rc;
    int64_t ref = 0;
    return st->ops->blob_find(st, d, size, &ref, err); /* the blobs every backend has */
}

pemn_rc store_oci_manifest_put(struct store *st, const struct store_oci_manifest *m,
                               const char *actor, bool *created, struct pemn_err *err)
{
    OCI_OPS(st, err);
    if (!m || !m->data || !m->len || m->len > STORE_OCI_MANIFEST_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "manifest of %zu bytes", m ? m->len : 0);
    struct store_oci_manifest c = *m;
    pemn_rc rc = canon(m->digest, c.digest, err);
    if (!rc && m->subject[0])
        rc = canon(m->subject, c.subject, err);
    if (rc)
        return rc;
    if (!text_ok(c.repo, sizeof c.repo) || !text_ok(c.version, sizeof c.version) ||
        !text_ok(c.media_type, sizeof c.media_type) ||
        strnlen(c.artifact_type, sizeof c.artifact_type) >= sizeof c.artifact_type)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad manifest descriptor");
    return st->ops->oci->manifest_put(st, &c, actor ? actor : "", created, err);
}

pemn_rc store_oci_manifest_get(struct store *st, const char *repo, const char *digest,
                               struct store_oci_manifest *out, struct pemn_err *err)
{
    OCI_OPS(st, err);
    memset(out, 0, sizeof *out);
    char d[PEMN_DIGEST_TEXT_MAX];
    pemn_rc rc = canon(digest, d, err);
    if (rc)
        return rc;
    return st->ops->oci->manifest_get(st, repo, d, out, err);
}

pemn_rc store_oci_manifest_for_version(struct store *st, const char *repo, const char *version,
                                       struct store_oci_manifest *out, struct pemn_err *err)
{
    OCI_OPS(st, err);
    memset(out, 0, sizeof *out);
    return st->ops->oci->manifest_for_version(st, repo, version, out, err);
}

void store_oci_manifest_clear(struct store_oci_manifest *m)
{
    if (!m)
        return;
    free(m->data);
    m->data = NULL;
    m->len = 0;
}

pemn_rc store_oci_referrers(struct store *st, const char *repo, const char *subject,
                            store_oci_manifest_cb cb, void *ctx, struct pemn_err *err)
{
    OCI_OPS(st, err);
    char d[PEMN_DIGEST_TEXT_MAX];
    pemn_rc rc = canon(subject, d, err);
    return rc ? rc : st->ops->oci->referrers(st, repo, d, cb, ctx, err);
}

pemn_rc store_oci_source_set(struct store *st, const char *fleet, const char *location,
                             const char *actor, struct pemn_err *err)
{
    OCI_OPS(st, err);
    if (!text_ok(fleet, STORE_LABEL_MAX) ||
        (location && !text_ok(location, STORE_OCI_LOCATION_MAX)))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad fleet or location");
    return st->ops->oci->source_set(st, fleet, location, actor ? actor : "", err);
}

pemn_rc store_oci_source_get(struct store *st, const char *fleet,
                             char location[STORE_OCI_LOCATION_MAX], struct pemn_err *err)
{
    OCI_OPS(st, err);
    if (!text_ok(fleet, STORE_LABEL_MAX))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad fleet");
    return st->ops->oci->source_get(st, fleet, location, err);
}
