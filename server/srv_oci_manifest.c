/*
 * server/srv_oci_manifest.c — OCI manifests over pemn versions and tags (docs/OCI.md).
 *
 * Every version has at least one manifest: a /v1 push (and, once, every version stored before
 * migration 6) gets the deterministic manifest of proto/oci.h; a manifest pushed through /v2
 * is stored exactly as sent, after its PEMN layer passed every push check of /v1
 * (srv_push_package). References resolve in this order: a digest; a pemn tag; a version
 * label; "latest" (the newest release) when no tag of that name exists.
 */
#include "server/srv_oci.h"
#include "server/srv_trust.h"
#include "server/srv_push.h"

#include "proto/err.h"
#include "proto/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

pemn_rc srv_oci_version_ensure(struct srv *s, const struct store_version *v)
{
    struct store *st = srv_store(s);
    struct store_oci_manifest m;
    struct pemn_err e = {0};
    pemn_rc rc = store_oci_manifest_for_version(st, v->model, v->version, &m, &e);
    if (rc == PEMN_OK) {
        store_oci_manifest_clear(&m);
        return PEMN_OK;
    }
    if (rc != PEMN_ENOTFOUND)
        goto fail;
    struct proto_oci_desc d = {
        .name = v->model,
        .version = v->version,
        .strategy = v->strategy,
        .release = v->release,
        .created = v->created,
        .size = v->size,
        .n_params = v->n_params,
        .f32_size = v->f32_size,
        .density = v->density,
    };
    memcpy(d.digest, v->digest, sizeof d.digest);
    memcpy(d.signer, v->signer, sizeof d.signer);
    struct proto_oci_artifact a;
    if ((rc = proto_oci_build(&d, &a, &e)))
        goto fail;
    rc = store_oci_blob_put(st, a.config_digest, a.config, a.config_len, "pemnd", NULL, &e);
    if (!rc) {
        memset(&m, 0, sizeof m);
        snprintf(m.repo, sizeof m.repo, "%s", v->model);
        memcpy(m.digest, a.manifest_digest, sizeof m.digest);
        snprintf(m.media_type, sizeof m.media_type, PROTO_OCI_MANIFEST_TYPE);
        snprintf(m.artifact_type, sizeof m.artifact_type, PROTO_OCI_ARTIFACT_TYPE);
        snprintf(m.version, sizeof m.version, "%s", v->version);
        m.data = (uint8_t *)a.manifest;
        m.len = a.manifest_len;
        rc = store_oci_manifest_put(st, &m, "pemnd", NULL, &e);
    }
    proto_oci_artifact_clear(&a);
    if (!rc)
        return PEMN_OK;
fail:
    srv_log(SRV_LOG_WARN, "OCI manifest of %s %s: %s", v->model, v->version,
            e.msg[0] ? e.msg : pemn_strerror(rc));
    return rc;
}

/* ---- backfill -------------------------------------------------------------------------- */
struct names {
    char (*v)[STORE_LABEL_MAX];
    size_t n, cap;
};

static int name_cb(void *ctx, const char *name, const struct store_version *latest, uint64_t n)
{
    struct names *ns = ctx;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        void *p = realloc(ns->v, cap * sizeof *ns->v);
        if (!p)
            return -1;
        ns->v = p;
        ns->cap = cap;
    }
    snprintf(ns->v[ns->n++], STORE_LABEL_MAX, "%s", name);
    return 0;
}

struct versions {
    struct store_version *v;
    size_t n, cap;
};

static int version_cb(void *ctx, const struct store_version *v)
{
    struct versions *vs = ctx;
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 16;
        void *p = realloc(vs->v, cap * sizeof *vs->v);
        if (!p)
            return -1;
        vs->v = p;
        vs->cap = cap;
    }
    vs->v[vs->n++] = *v;
    return 0;
}

pemn_rc srv_oci_versions(struct srv *s, const char *repo, struct store_version **out, size_t *n,
                         struct pemn_err *err)
{
    struct versions vs = {0};
    pemn_rc rc = store_list_versions(srv_store(s), repo, version_cb, &vs, err);
    if (rc == PEMN_ECANCELED)
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    if (rc) {
        free(vs.v);
        vs.v = NULL;
        vs.n = 0;
    }
    *out = vs.v;
    *n = vs.n;
    return rc;
}

pemn_rc srv_oci_backfill(struct srv *s, struct pemn_err *err)
{
    /* models first, then each model's versions: no callback calls back into the store */
    struct names ns = {0};
    pemn_rc rc = store_list_models(srv_store(s), name_cb, &ns, err);
    for (size_t i = 0; i < ns.n && !rc; i++) {
        struct store_version *vs = NULL;
        size_t nv = 0;
        rc = srv_oci_versions(s, ns.v[i], &vs, &nv, err);
        for (size_t k = 0; k < nv; k++)
            srv_oci_version_ensure(s, &vs[k]);
        free(vs);
    }
    free(ns.v);
    return rc;
}

/* ---- resolving references ---------------------------------------------------------------- */
static bool is_digest(const char *ref)
{
    return strncmp(ref, "sha256:", 7) == 0;
}

pemn_rc srv_oci_resolve(struct srv *s, const char *repo, const char *ref,
                        struct store_oci_manifest *out, struct pemn_err *err)
{
    struct store *st = srv_store(s);
    memset(out, 0, sizeof *out);
    if (is_digest(ref)) {
        uint8_t d[PEMN_DIGEST_BYTES];
        char canon[PEMN_DIGEST_TEXT_MAX];
        if (pemn_digest_parse(ref, d) != PEMN_OK)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
        pemn_digest_format(d, canon);
        return store_oci_manifest_get(st, repo, canon, out, err);
    }
    struct store_version v;
    pemn_rc rc = store_tag_get(st, repo, ref, &v, err);
    if (rc == PEMN_ENOTFOUND)
        rc = store_get_version(st, repo, ref, &v, err);
    if (rc == PEMN_ENOTFOUND && strcmp(ref, "latest") == 0)
        rc = store_get_latest(st, repo, &v, err);
    if (rc == PEMN_ENOTFOUND)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "%s has no tag or version named %s",
                         repo, ref);
    if (rc)
        return rc;
    rc = store_oci_manifest_for_version(st, repo, v.version, out, err);
    if (rc == PEMN_ENOTFOUND && srv_oci_version_ensure(s, &v) == PEMN_OK)
        rc = store_oci_manifest_for_version(st, repo, v.version, out, err);
    return rc;
}

/* ---- PUT /v2/{name}/manifests/{reference} ------------------------------------------------ */
/* The package bytes of a stored blob, for the push checks, without a heap copy: the blob
 * cache's shared bytes when it holds them, else the blob streamed in chunks into an unlinked
 * temporary file in tmp_dir and mapped (memory stays bounded whatever the package size). */
struct pkg_view {
    struct store_blob *b;
    const uint8_t *data;
    size_t len;
    void *map;
};

#define VIEW_CHUNK (1u << 20)

static void view_release(struct pkg_view *v)
{
    if (v->map)
        munmap(v->map, v->len);
    store_blob_release(v->b);
    memset(v, 0, sizeof *v);
}

static pemn_rc view_open(struct srv *s, const char *digest, struct pkg_view *v,
                         struct pemn_err *err)
{
    memset(v, 0, sizeof *v);
    struct store *st = srv_store(s);
    pemn_rc rc = store_blob_get(st, digest, &v->b, err);
    if (rc)
        return rc;
    if (v->b->size > srv_cfg(s)->max_package_size || v->b->size == 0) {
        view_release(v);
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                         "the layer is empty or over max_package_size");
    }
    v->len = (size_t)v->b->size;
    if (v->b->data) {
        v->data = v->b->data;
        return PEMN_OK;
    }
    int fd = open(srv_tmp_dir(s), O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) { /* no O_TMPFILE on this file system: a named file, unlinked at once */
        char path[1100];
        snprintf(path, sizeof path, "%s/.pemnd-oci-XXXXXX", srv_tmp_dir(s));
        if ((fd = mkostemp(path, O_CLOEXEC)) >= 0)
            unlink(path);
    }
    if (fd < 0) {
        view_release(v);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "temporary file in %s: %s", srv_tmp_dir(s),
                         strerror(errno));
    }
    uint8_t *buf = malloc(VIEW_CHUNK);
    rc = buf ? PEMN_OK : proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    for (uint64_t off = 0; !rc && off < v->b->size;) {
        size_t n = v->b->size - off < VIEW_CHUNK ? (size_t)(v->b->size - off) : VIEW_CHUNK;
        rc = store_blob_read(st, v->b, off, buf, n, err);
        for (size_t w = 0; !rc && w < n;) {
            ssize_t k = pwrite(fd, buf + w, n - w, (off_t)(off + w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                rc =
                    proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "temporary file: %s", strerror(errno));
            else
                w += (size_t)k;
        }
        off += n;
    }
    free(buf);
    if (!rc) {
        void *m = mmap(NULL, v->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "mmap: %s", strerror(errno));
        else
            v->map = m, v->data = m;
    }
    close(fd);
    if (rc)
        view_release(v);
    return rc;
}

static enum MHD_Result push_refused(struct srv_req *r, const struct srv_push_outcome *o)
{
    const char *code = o->status == 403   ? "DENIED"
                       : o->status == 409 ? "DENIED"
                       : o->status >= 500 ? "UNKNOWN"
                                          : "MANIFEST_INVALID";
    return srv_oci_error(r, o->status, code, o->code, "the PEMN layer was refused: %s", o->msg);
}

static enum MHD_Result check_blob(struct srv_req *r, const struct proto_oci_descriptor *d,
                                  const char *what, bool *bad)
{
    uint64_t size = 0;
    struct pemn_err e;
    pemn_rc rc = store_oci_blob_size(srv_store(r->srv), d->digest, &size, &e);
    *bad = true;
    if (rc == PEMN_ENOTFOUND)
        return srv_oci_error(r, 400, "MANIFEST_BLOB_UNKNOWN", NULL,
                             "%s blob %s is not in the registry: push it first", what, d->digest);
    if (rc)
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    if (size != d->size)
        return srv_oci_error(r, 400, "SIZE_INVALID", NULL,
                             "%s blob %s has %llu bytes, the manifest says %llu", what, d->digest,
                             (unsigned long long)size, (unsigned long long)d->size);
    *bad = false;
    return MHD_YES;
}

enum MHD_Result srv_oci_manifest_put(struct srv_req *r)
{
    const char *repo = srv_param(r, "name"), *ref = srv_param(r, "reference");
    struct store *st = srv_store(r->srv);
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    struct pemn_err e = {0};
    struct proto_oci_manifest pm;
    pemn_rc rc = proto_oci_parse(data, len, &pm, &e);
    if (rc == PEMN_EUNSUPPORTED)
        return srv_oci_error(r, 415, "UNSUPPORTED", NULL, "%s", e.msg);
    if (rc)
        return srv_oci_error(r, 400, "MANIFEST_INVALID", NULL, "%s", e.msg);
    const char *ctype = srv_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ctype && pm.media_type[0] && strncmp(ctype, pm.media_type, strlen(pm.media_type)) != 0)
        return srv_oci_error(r, 400, "MANIFEST_INVALID", NULL,
                             "Content-Type %.100s differs from the manifest's mediaType %s", ctype,
                             pm.media_type);
    char digest[PEMN_DIGEST_TEXT_MAX];
    proto_oci_digest(data, len, digest);
    if (is_digest(ref)) {
        uint8_t d[PEMN_DIGEST_BYTES];
        char canon[PEMN_DIGEST_TEXT_MAX];
        if (pemn_digest_parse(ref, d) != PEMN_OK)
            return srv_oci_error(r, 400, "DIGEST_INVALID", NULL, "malformed digest");
        pemn_digest_format(d, canon);
        if (strcmp(canon, digest) != 0)
            return srv_oci_error(r, 400, "DIGEST_INVALID", NULL,
                                 "the manifest's digest is %s, the URL says %s", digest, canon);
    }
    if (pm.pemn_layer < 0)
        return srv_oci_error(r, 400, "MANIFEST_INVALID", NULL,
                             "not a PEMN artifact: pemnd stores manifests with one layer of "
                             "media type " PROTO_OCI_LAYER_TYPE);
    bool bad = false;
    enum MHD_Result ret = check_blob(r, &pm.config, "config", &bad);
    for (size_t i = 0; !bad && i < pm.n_layers; i++)
        ret = check_blob(r, &pm.layers[i], "layer", &bad);
    if (bad)
        return ret;

    struct pkg_view pv;
    if ((rc = view_open(r->srv, pm.layers[pm.pemn_layer].digest, &pv, &e)))
        return srv_oci_error(r, rc == PEMN_ETOOBIG ? 400 : 500,
                             rc == PEMN_ETOOBIG ? "SIZE_INVALID" : "UNKNOWN", NULL, "%s", e.msg);
    /* a reference that is a version label names exactly that version (never re-pointed) */
    struct store_version named;
    const char *want =
        !is_digest(ref) && store_get_version(st, repo, ref, &named, NULL) == PEMN_OK ? ref : NULL;
    struct srv_push_outcome o;
    rc = srv_push_package(r->srv, pv.data, pv.len, repo, want, r->actor, &o);
    view_release(&pv);
    if (rc)
        return push_refused(r, &o);
    struct store_oci_manifest m;
    memset(&m, 0, sizeof m);
    snprintf(m.repo, sizeof m.repo, "%s", repo);
    memcpy(m.digest, digest, sizeof m.digest);
    snprintf(m.media_type, sizeof m.media_type, "%s",
             pm.media_type[0] ? pm.media_type : PROTO_OCI_MANIFEST_TYPE);
    memcpy(m.artifact_type, pm.artifact_type, sizeof m.artifact_type);
    memcpy(m.subject, pm.subject, sizeof m.subject);
    memcpy(m.version, o.v.version, sizeof m.version);
    m.data = (uint8_t *)data;
    m.len = len;
    if ((rc = store_oci_manifest_put(st, &m, r->actor, NULL, &e)))
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    if (!is_digest(ref) && strcmp(ref, o.v.version) != 0) {
        /* as PUT /v1/.../tags: a revoked or untrusted signer's package gets no tag */
        if ((rc = srv_trust_refuse(st, &o.v, &e)) == PEMN_EREVOKED || rc == PEMN_EUNTRUSTED)
            return srv_oci_error(r, 403, "DENIED", NULL, "%s", e.msg);
        if (rc)
            return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
        unsigned moved = 0;
        rc = store_tag_set_follow(st, repo, ref, o.v.version, r->actor, NULL, &moved, &e);
        if (rc)
            return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
        if (moved)
            srv_log(SRV_LOG_INFO, "tag %s:%s -> %s: %u fleet(s) started a new rollout", repo, ref,
                    o.v.version, moved);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    char loc[STORE_LABEL_MAX + 120];
    snprintf(loc, sizeof loc, "/v2/%s/manifests/%s", repo, digest);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
    MHD_add_response_header(resp, "Docker-Content-Digest", digest);
    if (pm.subject[0])
        MHD_add_response_header(resp, "OCI-Subject", pm.subject);
    return srv_queue(r, 201, resp, 0);
}
