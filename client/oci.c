/*
 * client/oci.c — push and pull PEMN packages to and from any OCI registry (pemn/oci.h).
 */
#include "client/oci_int.h"

#include "proto/err.h"
#include "proto/oci.h"

#include <pemn/pkg.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CHUNK (8u << 20)
#define MAX_SESSION_RESTARTS 3

static const char ACCEPT_MANIFESTS[] = PROTO_OCI_MANIFEST_TYPE
    ", " PROTO_OCI_INDEX_TYPE ", application/vnd.docker.distribution.manifest.v2+json";

void pemn_oci_options_init(struct pemn_oci_options *o)
{
    memset(o, 0, sizeof *o);
    pemn_client_options_init(&o->client);
    o->chunk_size = DEFAULT_CHUNK;
}

/* Appends "digest=<d>" to an upload URL (which may carry a query already). */
static char *with_digest(const char *loc, const char *digest)
{
    size_t n = strlen(loc) + strlen(digest) + 16;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "%s%sdigest=sha256%%3A%s", loc, strchr(loc, '?') ? "&" : "?", digest + 7);
    return u;
}

static pemn_rc need_location(const struct oci_resp *r, const char *what, struct pemn_err *err)
{
    if (!r->location[0])
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "%s: the registry sent no Location",
                         what);
    return PEMN_OK;
}

/* Whether the registry has the blob. */
static pemn_rc blob_exists(struct oci_sess *s, const char *digest, bool *yes, struct pemn_err *err)
{
    char path[PEMN_OCI_REPO_BUF + 120];
    snprintf(path, sizeof path, "/v2/%s/blobs/%s", s->ref.repo, digest);
    struct oci_resp r = {0};
    static const long ok[] = {404, 0};
    pemn_rc rc = oci_request(s, "HEAD", path, NULL, NULL, 0, ok, &r, err);
    *yes = !rc && r.status == 200;
    oci_resp_clear(&r);
    return rc;
}

/* "0-<end>" -> the number of bytes the registry holds. */
static bool range_bytes(const char *range, uint64_t *have)
{
    const char *dash = strchr(range, '-');
    if (!dash)
        return false;
    char *end;
    errno = 0;
    unsigned long long e = strtoull(dash + 1, &end, 10);
    if (errno || end == dash + 1)
        return false;
    *have = (uint64_t)e + 1;
    return true;
}

/* Uploads len bytes (memory or file) as one blob: POST, PATCH chunks with Content-Range,
 * PUT ?digest=. A chunk that fails in transit is resumed from the offset the registry
 * reports (GET on the session); a lost session starts over, a bounded number of times. */
static pemn_rc upload_blob(struct oci_sess *s, const char *digest, const uint8_t *data, int fd,
                           uint64_t len, struct pemn_oci_result *res, struct pemn_err *err)
{
    char path[PEMN_OCI_REPO_BUF + 64];
    snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", s->ref.repo);
    uint64_t chunk = s->o->chunk_size ? s->o->chunk_size : DEFAULT_CHUNK;
    pemn_rc rc = PEMN_OK;
    for (int attempt = 0; attempt <= MAX_SESSION_RESTARTS; attempt++) {
        struct oci_resp r = {0};
        if ((rc = oci_request(s, "POST", path, NULL, NULL, 0, NULL, &r, err)) ||
            (rc = need_location(&r, "POST upload", err))) {
            oci_resp_clear(&r);
            return rc;
        }
        char loc[1024];
        snprintf(loc, sizeof loc, "%s", r.location);
        oci_resp_clear(&r);
        uint64_t off = 0;
        bool lost = false;
        int stuck = 0; /* resumes in a row that did not move forward */
        while (off < len && !rc) {
            uint64_t n = len - off < chunk ? len - off : chunk;
            char cr[64];
            snprintf(cr, sizeof cr, "%" PRIu64 "-%" PRIu64, off, off + n - 1);
            struct oci_body b = {.data = data ? data + off : NULL,
                                 .fd = fd,
                                 .offset = off,
                                 .len = n,
                                 .content_type = "application/octet-stream",
                                 .content_range = cr};
            struct pemn_err e1 = {0};
            pemn_rc k = oci_request(s, "PATCH", loc, NULL, &b, 1u << 16, NULL, &r, &e1);
            if (res)
                res->bytes_sent += n;
            if (!k && r.location[0]) {
                snprintf(loc, sizeof loc, "%s", r.location);
                off += n;
                oci_resp_clear(&r);
                continue;
            }
            oci_resp_clear(&r);
            if (k == PEMN_EIO || k == PEMN_EAUTH) {
                *err = e1;
                return k;
            }
            /* where did the registry get to? (a 416 or a cut connection) */
            static const long ok404[] = {404, 0};
            if (oci_request(s, "GET", loc, NULL, NULL, 1u << 16, ok404, &r, err) == PEMN_OK &&
                r.status == 204) {
                uint64_t have = 0;
                if (!range_bytes(r.range, &have) || have > len) {
                    oci_resp_clear(&r);
                    *err = e1;
                    return k ? k : PEMN_EHTTP;
                }
                if (r.location[0])
                    snprintf(loc, sizeof loc, "%s", r.location);
                /* "0-0" means no byte as well as one: take the smaller, the chunk resends it */
                if (have == 1 && !strncmp(r.range, "0-0", 4))
                    have = 0;
                stuck = have > off ? 0 : stuck + 1;
                if (stuck > 3) {
                    oci_resp_clear(&r);
                    *err = e1;
                    return k ? k : PEMN_EHTTP;
                }
                off = have;
                if (res)
                    res->resumes++;
            } else {
                lost = true;
            }
            oci_resp_clear(&r);
            if (lost)
                break;
        }
        if (lost) {
            if (res)
                res->restarts++;
            continue; /* a new session */
        }
        char *put = with_digest(loc, digest);
        if (!put)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        rc = oci_request(s, "PUT", put, NULL, NULL, 1u << 16, NULL, &r, err);
        free(put);
        if (!rc && r.status != 201 && r.status != 204)
            rc = proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "closing the upload: HTTP %ld",
                           r.status);
        oci_resp_clear(&r);
        return rc;
    }
    return rc ? rc
              : proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET,
                          "the registry lost the upload session %d times", MAX_SESSION_RESTARTS);
}

pemn_rc pemn_oci_push(const char *path, const char *ref, const struct pemn_oci_options *o,
                      struct pemn_oci_result *out, struct pemn_err *err)
{
    struct pemn_oci_options defaults;
    if (!o) {
        pemn_oci_options_init(&defaults);
        o = &defaults;
    }
    struct pemn_oci_result local = {0};
    struct pemn_oci_result *res = out ? out : &local;
    memset(res, 0, sizeof *res);
    if (!path || !ref)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    struct oci_sess s;
    pemn_rc rc = oci_sess_open(&s, ref, o, "pull,push", err);
    if (rc)
        return rc;
    pemn_pkg *pkg = NULL;
    struct proto_oci_artifact a = {0};
    int fd = -1;
    if ((rc = pemn_pkg_open_file(path, 0, &pkg, err)))
        goto out;
    uint8_t d[PEMN_DIGEST_BYTES];
    uint64_t size = 0;
    if ((rc = client_hash_file(path, d, &size, err)))
        goto out;
    if (size > s.c->o.max_package_size) {
        rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "package over the size limit");
        goto out;
    }
    struct proto_oci_desc desc;
    if ((rc = proto_oci_desc_from_pkg(pkg, size, &desc)))
        goto out;
    pemn_digest_format(d, desc.digest); /* the layer is the whole file */
    if ((rc = proto_oci_build(&desc, &a, err)))
        goto out;
    snprintf(res->model, sizeof res->model, "%s", desc.name);
    snprintf(res->version, sizeof res->version, "%s", desc.version);
    res->release = desc.release;
    memcpy(res->layer_digest, desc.digest, sizeof res->layer_digest);
    res->layer_size = size;
    memcpy(res->manifest_digest, a.manifest_digest, sizeof res->manifest_digest);
    if (s.ref.digest[0] && strcmp(s.ref.digest, a.manifest_digest) != 0) {
        rc = proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                       "the package's manifest is %s, the reference says %s", a.manifest_digest,
                       s.ref.digest);
        goto out;
    }
    const char *tag = s.ref.digest[0] ? s.ref.digest : s.ref.tag[0] ? s.ref.tag : desc.version;
    if (!proto_oci_valid_tag(tag) && !s.ref.digest[0]) {
        rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                       "version '%s' is not a valid OCI tag: give one in the reference", tag);
        goto out;
    }
    snprintf(res->tag, sizeof res->tag, "%s", s.ref.digest[0] ? "" : tag);

    /* blobs first: the config, then the package (skipped when the registry has it) */
    bool have = false;
    if ((rc = blob_exists(&s, a.config_digest, &have, err)))
        goto out;
    if (!have && (rc = upload_blob(&s, a.config_digest, (const uint8_t *)a.config, -1, a.config_len,
                                   res, err)))
        goto out;
    if ((rc = blob_exists(&s, desc.digest, &have, err)))
        goto out;
    if (!have) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", path, strerror(errno));
            goto out;
        }
        if ((rc = upload_blob(&s, desc.digest, NULL, fd, size, res, err)))
            goto out;
        res->layer_uploaded = 1;
    }
    char mpath[PEMN_OCI_REPO_BUF + 200];
    snprintf(mpath, sizeof mpath, "/v2/%s/manifests/%s", s.ref.repo, tag);
    struct oci_body mb = {.data = (const uint8_t *)a.manifest,
                          .len = a.manifest_len,
                          .content_type = PROTO_OCI_MANIFEST_TYPE};
    struct oci_resp r = {0};
    rc = oci_request(&s, "PUT", mpath, NULL, &mb, 1u << 16, NULL, &r, err);
    if (!rc && r.digest[0] && strcmp(r.digest, a.manifest_digest) != 0)
        rc = proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                       "the registry stored the manifest as %.80s, expected %s", r.digest,
                       a.manifest_digest);
    oci_resp_clear(&r);
out:
    if (fd >= 0)
        close(fd);
    proto_oci_artifact_clear(&a);
    pemn_pkg_free(pkg);
    oci_sess_close(&s);
    return rc;
}

/* ---- pull ------------------------------------------------------------------------------ */
/* Reads the PEMN config blob (when that is the config) for what the package must be. */
static pemn_rc read_config(struct oci_sess *s, const struct proto_oci_descriptor *cfg,
                           struct pemn_resolved *rv, struct pemn_err *err)
{
    if (strcmp(cfg->media_type, PROTO_OCI_CONFIG_TYPE) != 0)
        return PEMN_OK; /* another tool's artifact: the signed package speaks for itself */
    if (cfg->size > OCI_CONFIG_MAX)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "config blob of %" PRIu64 " bytes",
                         cfg->size);
    char path[PEMN_OCI_REPO_BUF + 120];
    snprintf(path, sizeof path, "/v2/%s/blobs/%s", s->ref.repo, cfg->digest);
    struct oci_resp r = {0};
    pemn_rc rc = oci_request(s, "GET", path, NULL, NULL, OCI_CONFIG_MAX, NULL, &r, err);
    if (rc) {
        oci_resp_clear(&r);
        return rc;
    }
    char got[PEMN_DIGEST_TEXT_MAX];
    proto_oci_digest(r.body ? r.body : "", r.len, got);
    json_t *j = NULL;
    if (strcmp(got, cfg->digest) != 0) {
        rc = proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET, "config blob hashes to %s, not %s", got,
                       cfg->digest);
    } else if (!(j = json_loadb(r.body ? r.body : "", r.len, 0, NULL))) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "config blob is not JSON");
    } else {
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *ver = json_string_value(json_object_get(j, "version"));
        json_t *rel = json_object_get(j, "release");
        if (!name || !ver || !json_is_integer(rel) || !client_label_ok(name) ||
            !client_label_ok(ver) || json_integer_value(rel) < 0) {
            rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                           "config blob lacks name/version/release");
        } else {
            snprintf(rv->model, sizeof rv->model, "%s", name);
            snprintf(rv->version, sizeof rv->version, "%s", ver);
            rv->release = (uint64_t)json_integer_value(rel);
        }
    }
    json_decref(j);
    oci_resp_clear(&r);
    return rc;
}

pemn_rc pemn_oci_pull(const char *ref, const char *dest_path, const struct pemn_oci_options *o,
                      const struct pemn_fetch_options *fo, struct pemn_oci_result *out,
                      struct pemn_fetch_stats *stats, struct pemn_err *err)
{
    struct pemn_oci_options defaults;
    if (!o) {
        pemn_oci_options_init(&defaults);
        o = &defaults;
    }
    struct pemn_oci_result local = {0};
    struct pemn_oci_result *res = out ? out : &local;
    memset(res, 0, sizeof *res);
    if (!ref || !dest_path || !*dest_path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    struct oci_sess s;
    pemn_rc rc = oci_sess_open(&s, ref, o, "pull", err);
    if (rc)
        return rc;
    const char *want = s.ref.digest[0] ? s.ref.digest : s.ref.tag[0] ? s.ref.tag : "latest";
    snprintf(res->tag, sizeof res->tag, "%s", s.ref.digest[0] ? "" : want);
    char path[PEMN_OCI_REPO_BUF + 200];
    snprintf(path, sizeof path, "/v2/%s/manifests/%s", s.ref.repo, want);
    struct oci_resp r = {0};
    struct proto_oci_manifest pm;
    char md[PEMN_DIGEST_TEXT_MAX];
    rc = oci_request(&s, "GET", path, ACCEPT_MANIFESTS, NULL, OCI_MANIFEST_MAX, NULL, &r, err);
    if (rc)
        goto out;
    proto_oci_digest(r.body ? r.body : "", r.len, md);
    if (s.ref.digest[0] && strcmp(md, s.ref.digest) != 0) {
        rc = proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET, "manifest hashes to %s, asked for %s", md,
                       s.ref.digest);
        goto out;
    }
    if (r.digest[0] && strcmp(r.digest, md) != 0) {
        rc = proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                       "manifest hashes to %s, the registry says %.80s", md, r.digest);
        goto out;
    }
    memcpy(res->manifest_digest, md, sizeof md);
    rc = proto_oci_parse(r.body ? r.body : "", r.len, &pm, err);
    if (rc)
        goto out;
    if (pm.pemn_layer < 0) {
        rc = proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                       "%s is not a PEMN artifact (no " PROTO_OCI_LAYER_TYPE " layer)", ref);
        goto out;
    }
    const struct proto_oci_descriptor *layer = &pm.layers[pm.pemn_layer];
    struct pemn_resolved rv;
    memset(&rv, 0, sizeof rv);
    if ((rc = read_config(&s, &pm.config, &rv, err)))
        goto out;
    memcpy(rv.digest, layer->digest, sizeof rv.digest);
    rv.size = layer->size;
    snprintf(rv.package_url, sizeof rv.package_url, "/v2/%s/blobs/%s", s.ref.repo, layer->digest);
    if (s.ref.tag[0])
        snprintf(rv.tag, sizeof rv.tag, "%s", s.ref.tag);
    rc = pemn_client_fetch(s.c, &rv, dest_path, fo, stats, err);
    if (rc)
        goto out;
    memcpy(res->layer_digest, layer->digest, sizeof res->layer_digest);
    res->layer_size = layer->size;
    /* what was installed, from the verified package itself */
    pemn_pkg *pkg = NULL;
    if (pemn_pkg_open_file(dest_path, 0, &pkg, NULL) == PEMN_OK) {
        struct pemn_pkg_info info;
        if (pemn_pkg_info(pkg, &info) == PEMN_OK) {
            snprintf(res->model, sizeof res->model, "%s", info.name);
            snprintf(res->version, sizeof res->version, "%s", info.version);
            res->release = info.release;
        }
        pemn_pkg_free(pkg);
    }
out:
    oci_resp_clear(&r);
    oci_sess_close(&s);
    return rc;
}

/* ---- a package by digest from a repository location (the fleet agent) -------------------- */
pemn_rc client_oci_fetch(const char *location, const struct pemn_client_options *co,
                         const char *username, const char *password, const struct pemn_resolved *r,
                         const char *dest, const struct pemn_fetch_options *fo,
                         struct pemn_fetch_stats *stats, struct pemn_err *err)
{
    bool plain = false;
    const char *host = NULL, *repo = NULL;
    size_t hl = 0;
    if (!proto_oci_valid_location(location, &plain, &host, &hl, &repo))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "'%.200s' is not oci://HOST[:PORT]/REPO (or oci+http://)", location);
    struct pemn_oci_options o;
    pemn_oci_options_init(&o);
    o.client = *co;
    o.plain_http = plain;
    o.username = username;
    o.password = password;
    char ref[PEMN_OCI_HOST_BUF + PEMN_OCI_REPO_BUF + 8];
    snprintf(ref, sizeof ref, "%.*s/%s", (int)hl, host, repo);
    struct oci_sess s;
    pemn_rc rc = oci_sess_open(&s, ref, &o, "pull", err);
    if (rc)
        return rc;
    struct pemn_resolved rv = *r;
    snprintf(rv.package_url, sizeof rv.package_url, "/v2/%s/blobs/%s", s.ref.repo, r->digest);
    /* answer the registry's challenge once, so the download carries the credentials */
    struct oci_resp resp = {0};
    rc = oci_request(&s, "HEAD", rv.package_url, NULL, NULL, 0, NULL, &resp, err);
    oci_resp_clear(&resp);
    if (!rc)
        rc = pemn_client_fetch(s.c, &rv, dest, fo, stats, err);
    oci_sess_close(&s);
    return rc;
}
