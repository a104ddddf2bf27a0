/*
 * server/srv_routes_oci.c — OCI Distribution (distribution-spec 1.1) routes of pemnd:
 *
 *   GET  /v2/                                   ping; 401 + Basic challenge without credentials
 *   GET|HEAD /v2/{name}/manifests/{reference}   by digest, pemn tag, version or "latest"
 *   PUT  /v2/{name}/manifests/{reference}       every /v1 push check (srv_oci_manifest.c)
 *   DELETE /v2/{name}/manifests/{tag}           deletes a pemn tag (versions are immutable)
 *   GET|HEAD /v2/{name}/blobs/{digest}          bytes, with Range (as /v1/blobs)
 *   POST /v2/{name}/blobs/uploads/              session; ?digest= monolithic; ?mount=&from=
 *   GET|PATCH|PUT|DELETE /v2/{name}/blobs/uploads/{id}
 *   GET  /v2/{name}/tags/list                   versions + tags (+ "latest"), n / last
 *   GET  /v2/{name}/referrers/{digest}          an image index (artifactType filter)
 *   GET  /v2/_catalog                           repositories, n / last
 *   PUT|GET|DELETE /v1/fleets/{fleet}/oci       where the fleet's devices fetch the bytes
 *
 * Errors are OCI error bodies (srv_oci_error); docs/OCI.md has the name and tag rules.
 */
#include "server/srv_oci.h"

#include "proto/oci.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UPLOAD_TTL (24 * 3600) /* seconds an idle upload session lives */
#define LIST_MAX 10000         /* most entries in one tags/catalog page */

/* ---- errors ---------------------------------------------------------------------------- */
bool srv_oci_path(const char *path)
{
    return path && strncmp(path, "/v2", 3) == 0 && (path[3] == '/' || path[3] == '\0');
}

static enum MHD_Result reply_bytes(struct srv_req *r, unsigned status, char *text, size_t len,
                                   const char *type, const char *h1, const char *v1)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    if (type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (h1 && v1)
        MHD_add_response_header(resp, h1, v1);
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, SRV_OCI_CHALLENGE);
    MHD_add_response_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
    return srv_queue(r, status, resp, len);
}

static enum MHD_Result error_with(struct srv_req *r, unsigned status, const char *code,
                                  const char *detail, const char *msg, const char *h1,
                                  const char *v1)
{
    char clean[600];
    snprintf(clean, sizeof clean, "%s", msg);
    for (char *p = clean; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    json_t *e = json_pack("{s:s,s:s}", "code", code, "message", clean);
    if (e && detail)
        json_object_set_new(e, "detail", json_pack("{s:s}", "pemn_code", detail));
    json_t *obj = e ? json_pack("{s:[o]}", "errors", e) : NULL;
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    if (status >= 500)
        srv_log(SRV_LOG_ERROR, "%s %s: %u %s: %s", r->method_text, r->path, status, code, clean);
    return reply_bytes(r, status, text, strlen(text), "application/json", h1, v1);
}

enum MHD_Result srv_oci_error(struct srv_req *r, unsigned status, const char *code,
                              const char *detail, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_with(r, status, code, detail, msg, NULL, NULL);
}

enum MHD_Result srv_oci_reply_405(struct srv_req *r, const char *allow)
{
    return error_with(r, 405, "UNSUPPORTED", NULL, "method not allowed on this resource",
                      MHD_HTTP_HEADER_ALLOW, allow);
}

static bool route_is(const struct srv_req *r, const char *prefix)
{
    return r->route && strncmp(r->route->name, prefix, strlen(prefix)) == 0;
}

enum MHD_Result srv_oci_reply_pemn_error(struct srv_req *r, unsigned status, const char *code,
                                         const char *msg)
{
    const char *oci = "UNKNOWN";
    if (strcmp(code, "unauthorized") == 0)
        oci = "UNAUTHORIZED";
    else if (strcmp(code, "forbidden") == 0)
        oci = "DENIED";
    else if (strcmp(code, "too_large") == 0)
        oci = "SIZE_INVALID";
    else if (strcmp(code, "not_found") == 0)
        oci = route_is(r, "oci_blob")       ? "BLOB_UNKNOWN"
              : route_is(r, "oci_manifest") ? "MANIFEST_UNKNOWN"
              : route_is(r, "oci_upload")   ? "BLOB_UPLOAD_UNKNOWN"
                                            : "NAME_UNKNOWN";
    else if (strcmp(code, "bad_request") == 0)
        oci = strstr(msg, "invalid name")        ? "NAME_INVALID"
              : strstr(msg, "invalid digest")    ? "DIGEST_INVALID"
              : strstr(msg, "invalid reference") ? "MANIFEST_INVALID"
              : strstr(msg, "invalid uuid")      ? "BLOB_UPLOAD_INVALID"
                                                 : "UNSUPPORTED";
    else if (strcmp(code, "range_not_satisfiable") == 0)
        oci = "BLOB_UNKNOWN";
    return error_with(r, status, oci, code, msg, NULL, NULL);
}

/* ---- helpers --------------------------------------------------------------------------- */
static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A query argument, percent-decoded into out. false when absent, too long or malformed. */
static bool query_arg(struct srv_req *r, const char *name, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v)
        return false;
    size_t n = 0;
    for (const char *p = v; *p; p++) {
        char c = *p;
        if (c == '%') {
            int a = hexval(p[1]), b = a >= 0 ? hexval(p[2]) : -1;
            if (b < 0)
                return false;
            c = (char)(a * 16 + b);
            p += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0' || n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

static bool canon_digest(const char *in, char out[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t d[PEMN_DIGEST_BYTES];
    if (strlen(in) != 71 || strncmp(in, "sha256:", 7) != 0 || pemn_digest_parse(in, d))
        return false;
    pemn_digest_format(d, out);
    return true;
}

/* Every handler starts here: the repository must follow OCI's rules (lower case). */
static bool repo_ok(struct srv_req *r, enum MHD_Result *ret)
{
    const char *name = srv_param(r, "name");
    if (name && proto_oci_valid_repo(name))
        return true;
    *ret = srv_oci_error(r, 400, "NAME_INVALID", NULL,
                         "repository names are lower case: [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*");
    return false;
}

static enum MHD_Result reply_empty_with(struct srv_req *r, unsigned status, const char *loc,
                                        const char *range, const char *uuid, const char *digest)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (loc)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
    if (range)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RANGE, range);
    if (uuid)
        MHD_add_response_header(resp, "Docker-Upload-UUID", uuid);
    if (digest)
        MHD_add_response_header(resp, "Docker-Content-Digest", digest);
    return srv_queue(r, status, resp, 0);
}

/* ---- ping ------------------------------------------------------------------------------ */
static enum MHD_Result ping(struct srv_req *r)
{
    /* OCI clients (skopeo, docker) send credentials only after the ping asked for them */
    if (!srv_header(r, MHD_HTTP_HEADER_AUTHORIZATION))
        return srv_oci_error(r, 401, "UNAUTHORIZED", NULL,
                             "credentials: Basic with a pemn token as the password");
    char *text = strdup("{}");
    return text ? reply_bytes(r, 200, text, 2, "application/json", NULL, NULL) : MHD_NO;
}

/* ---- manifests ------------------------------------------------------------------------- */
static enum MHD_Result manifest_get(struct srv_req *r)
{
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    struct store_oci_manifest m;
    struct pemn_err e = {0};
    pemn_rc rc = srv_oci_resolve(r->srv, srv_param(r, "name"), srv_param(r, "reference"), &m, &e);
    if (rc == PEMN_ENOTFOUND || rc == PEMN_EINVAL)
        return srv_oci_error(r, 404, "MANIFEST_UNKNOWN", NULL, "%s", e.msg);
    if (rc)
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    char etag[PEMN_DIGEST_TEXT_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", m.digest);
    struct MHD_Response *resp;
    size_t n = m.len;
    unsigned status = 200;
    if (srv_etag_matches(srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        store_oci_manifest_clear(&m);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = 304;
        n = 0;
    } else {
        resp = MHD_create_response_from_buffer(m.len, m.data, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            store_oci_manifest_clear(&m);
        m.data = NULL; /* owned by the response */
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, m.media_type);
    MHD_add_response_header(resp, "Docker-Content-Digest", m.digest);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    return srv_queue(r, status, resp, n);
}

static enum MHD_Result manifest_delete(struct srv_req *r)
{
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    const char *repo = srv_param(r, "name"), *ref = srv_param(r, "reference");
    if (strncmp(ref, "sha256:", 7) == 0)
        return srv_oci_error(r, 405, "UNSUPPORTED", NULL,
                             "versions are immutable: only a tag can be deleted");
    struct pemn_err e = {0};
    pemn_rc rc = store_tag_delete(srv_store(r->srv), repo, ref, r->actor, &e);
    if (rc == PEMN_ENOTFOUND) {
        struct store_version v;
        if (store_get_version(srv_store(r->srv), repo, ref, &v, NULL) == PEMN_OK)
            return srv_oci_error(r, 405, "UNSUPPORTED", NULL,
                                 "%s is a version; versions are immutable", ref);
        return srv_oci_error(r, 404, "MANIFEST_UNKNOWN", NULL, "%s", e.msg);
    }
    if (rc)
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    return reply_empty_with(r, 202, NULL, NULL, NULL, NULL);
}

static enum MHD_Result manifest_put(struct srv_req *r)
{
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    return srv_oci_manifest_put(r);
}

/* ---- blobs ----------------------------------------------------------------------------- */
static enum MHD_Result blob_get(struct srv_req *r)
{
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    return srv_blob_serve(r, srv_param(r, "digest"), true);
}

/* ---- uploads --------------------------------------------------------------------------- */
static int expire_cb(void *ctx, const struct store_oci_upload *u)
{
    srv_oci_upload_file_remove(ctx, u->id);
    return 0;
}

static void upload_location(struct srv_req *r, const char *id, char *loc, size_t cap)
{
    snprintf(loc, cap, "/v2/%s/blobs/uploads/%s", srv_param(r, "name"), id);
}

static void range_text(uint64_t size, char *out, size_t cap)
{
    snprintf(out, cap, "0-%llu", (unsigned long long)(size ? size - 1 : 0));
}

static enum MHD_Result blob_created(struct srv_req *r, const char *digest)
{
    char loc[STORE_LABEL_MAX + 100];
    snprintf(loc, sizeof loc, "/v2/%s/blobs/%s", srv_param(r, "name"), digest);
    return reply_empty_with(r, 201, loc, NULL, NULL, digest);
}

/* Stores bytes whose digest the client claims (monolithic POST). */
static enum MHD_Result store_verified(struct srv_req *r, const char *claimed, const void *data,
                                      size_t len)
{
    char actual[PEMN_DIGEST_TEXT_MAX];
    proto_oci_digest(data, len, actual);
    if (strcmp(actual, claimed) != 0)
        return srv_oci_error(r, 400, "DIGEST_INVALID", NULL, "the bytes have digest %s, not %s",
                             actual, claimed);
    struct pemn_err e = {0};
    pemn_rc rc = store_oci_blob_put(srv_store(r->srv), actual, data, len, r->actor, NULL, &e);
    if (rc)
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    return blob_created(r, actual);
}

static enum MHD_Result upload_start(struct srv_req *r)
{
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    struct store *st = srv_store(r->srv);
    char arg[160], digest[PEMN_DIGEST_TEXT_MAX];
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    if (query_arg(r, "mount", arg, sizeof arg)) {
        uint64_t size;
        if (!canon_digest(arg, digest))
            return srv_oci_error(r, 400, "DIGEST_INVALID", NULL, "mount: malformed digest");
        /* blobs are content-addressed and shared by every repository: a mount is a lookup */
        if (store_oci_blob_size(st, digest, &size, NULL) == PEMN_OK)
            return blob_created(r, digest);
    } else if (query_arg(r, "digest", arg, sizeof arg)) {
        if (!canon_digest(arg, digest))
            return srv_oci_error(r, 400, "DIGEST_INVALID", NULL, "malformed digest");
        return store_verified(r, digest, data, len);
    }
    if (len)
        return srv_oci_error(r, 400, "BLOB_UPLOAD_INVALID", NULL,
                             "a POST with a body needs ?digest=");
    struct pemn_err e = {0};
    store_oci_upload_expire(st, (int64_t)time(NULL) - UPLOAD_TTL, expire_cb, r->srv, NULL);
    uint8_t rnd[16];
    char id[33];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(id, sizeof id, rnd, sizeof rnd);
    pemn_rc rc = srv_oci_upload_file_create(r->srv, id, &e);
    if (!rc)
        rc = store_oci_upload_create(st, srv_param(r, "name"), id, &e);
    if (rc) {
        srv_oci_upload_file_remove(r->srv, id);
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    }
    char loc[STORE_LABEL_MAX + 100];
    upload_location(r, id, loc, sizeof loc);
    return reply_empty_with(r, 202, loc, "0-0", id, NULL);
}

static bool upload_find(struct srv_req *r, struct store_oci_upload *u, enum MHD_Result *ret)
{
    if (!repo_ok(r, ret))
        return false;
    struct pemn_err e = {0};
    pemn_rc rc =
        store_oci_upload_get(srv_store(r->srv), srv_param(r, "name"), srv_param(r, "uuid"), u, &e);
    if (rc == PEMN_ENOTFOUND)
        *ret = srv_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN", NULL, "%s", e.msg);
    else if (rc)
        *ret = srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    return rc == PEMN_OK;
}

static bool lock_session(struct srv_req *r, const struct store_oci_upload *u, int *lock,
                         enum MHD_Result *ret)
{
    *lock = srv_oci_upload_lock(r->srv, u->id);
    if (*lock < 0)
        *ret = srv_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN", NULL, "upload %s has no bytes file",
                             u->id);
    return *lock >= 0;
}

static enum MHD_Result upload_416(struct srv_req *r, const struct store_oci_upload *u,
                                  const char *why)
{
    char range[64];
    range_text(u->size, range, sizeof range);
    char msg[200];
    snprintf(msg, sizeof msg, "%s: the upload is at byte %llu", why, (unsigned long long)u->size);
    return error_with(r, 416, "BLOB_UPLOAD_INVALID", NULL, msg, MHD_HTTP_HEADER_RANGE, range);
}

/* Parses "a-b" (also "bytes a-b" and "a-b/total"). */
static bool parse_content_range(const char *h, uint64_t *a, uint64_t *b)
{
    if (strncasecmp(h, "bytes", 5) == 0)
        h += 5;
    while (*h == ' ' || *h == '=')
        h++;
    char *end;
    if (*h < '0' || *h > '9')
        return false;
    unsigned long long x = strtoull(h, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return false;
    unsigned long long y = strtoull(end + 1, &end, 10);
    if (*end && *end != '/')
        return false;
    *a = x;
    *b = y;
    return y >= x;
}

/* Appends the request body to a session. Returns true when done (u->size updated); otherwise
 * a reply is queued in *ret. Called with the session locked (srv_oci_upload_lock). */
static bool append_chunk(struct srv_req *r, struct store_oci_upload *u, enum MHD_Result *ret)
{
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    const char *cr = srv_header(r, MHD_HTTP_HEADER_CONTENT_RANGE);
    if (cr) {
        uint64_t a, b;
        if (!parse_content_range(cr, &a, &b)) {
            *ret = upload_416(r, u, "malformed Content-Range");
            return false;
        }
        if (a != u->size) {
            *ret = upload_416(r, u, "the chunk does not start where the upload ends");
            return false;
        }
        if (b - a + 1 != len) {
            *ret = upload_416(r, u, "Content-Range does not match the body's length");
            return false;
        }
    }
    if (len == 0)
        return true;
    uint64_t max = srv_cfg(r->srv)->max_package_size;
    if (u->size + len > max || u->size + len < u->size) {
        *ret = srv_oci_error(r, 413, "SIZE_INVALID", NULL, "the blob is over the limit of %llu",
                             (unsigned long long)max);
        return false;
    }
    struct pemn_err e = {0};
    pemn_rc rc = srv_oci_upload_file_write(r->srv, u->id, u->size, data, len, &e);
    if (!rc)
        rc =
            store_oci_upload_advance(srv_store(r->srv), u->repo, u->id, u->size, u->size + len, &e);
    if (rc == PEMN_ECONFLICT) {
        *ret = upload_416(r, u, "another chunk was written first");
        return false;
    }
    if (rc) {
        *ret = srv_oci_error(r, rc == PEMN_ENOTFOUND ? 404 : 500,
                             rc == PEMN_ENOTFOUND ? "BLOB_UPLOAD_UNKNOWN" : "UNKNOWN", NULL, "%s",
                             e.msg);
        return false;
    }
    u->size += len;
    return true;
}

static enum MHD_Result upload_status(struct srv_req *r)
{
    struct store_oci_upload u;
    enum MHD_Result ret;
    if (!upload_find(r, &u, &ret))
        return ret;
    char loc[STORE_LABEL_MAX + 100], range[64];
    upload_location(r, u.id, loc, sizeof loc);
    range_text(u.size, range, sizeof range);
    return reply_empty_with(r, 204, loc, range, u.id, NULL);
}

static enum MHD_Result upload_patch(struct srv_req *r)
{
    struct store_oci_upload u;
    enum MHD_Result ret;
    int lock = -1;
    bool ok = upload_find(r, &u, &ret) && lock_session(r, &u, &lock, &ret) &&
              upload_find(r, &u, &ret) && append_chunk(r, &u, &ret); /* re-read under the lock */
    srv_oci_upload_unlock(lock);
    if (!ok)
        return ret;
    char loc[STORE_LABEL_MAX + 100], range[64];
    upload_location(r, u.id, loc, sizeof loc);
    range_text(u.size, range, sizeof range);
    return reply_empty_with(r, 202, loc, range, u.id, NULL);
}

static enum MHD_Result upload_put(struct srv_req *r)
{
    char arg[160], digest[PEMN_DIGEST_TEXT_MAX];
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    if (!query_arg(r, "digest", arg, sizeof arg) || !canon_digest(arg, digest))
        return srv_oci_error(r, 400, "DIGEST_INVALID", NULL,
                             "closing an upload needs ?digest=sha256:<64 hex>");
    struct store_oci_upload u;
    int lock = -1;
    bool ok = upload_find(r, &u, &ret) && lock_session(r, &u, &lock, &ret) &&
              upload_find(r, &u, &ret) && append_chunk(r, &u, &ret); /* re-read under the lock */
    srv_oci_upload_unlock(lock);
    if (!ok)
        return ret;
    void *map = NULL;
    char actual[PEMN_DIGEST_TEXT_MAX];
    struct pemn_err e = {0};
    pemn_rc rc = srv_oci_upload_file_map(r->srv, u.id, u.size, &map, actual, &e);
    if (rc)
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    if (strcmp(actual, digest) != 0) {
        srv_oci_upload_file_unmap(map, u.size);
        return srv_oci_error(r, 400, "DIGEST_INVALID", NULL,
                             "the uploaded %llu bytes have digest %s, not %s",
                             (unsigned long long)u.size, actual, digest);
    }
    rc = store_oci_blob_put(srv_store(r->srv), actual, map ? map : "", (size_t)u.size, r->actor,
                            NULL, &e);
    srv_oci_upload_file_unmap(map, u.size);
    if (rc)
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    store_oci_upload_delete(srv_store(r->srv), u.repo, u.id, NULL);
    srv_oci_upload_file_remove(r->srv, u.id);
    return blob_created(r, actual);
}

static enum MHD_Result upload_delete(struct srv_req *r)
{
    struct store_oci_upload u;
    enum MHD_Result ret;
    if (!upload_find(r, &u, &ret))
        return ret;
    store_oci_upload_delete(srv_store(r->srv), u.repo, u.id, NULL);
    srv_oci_upload_file_remove(r->srv, u.id);
    return reply_empty_with(r, 204, NULL, NULL, NULL, NULL);
}

/* ---- listings -------------------------------------------------------------------------- */
struct strs {
    char (*v)[STORE_LABEL_MAX];
    size_t n, cap;
};

static int strs_add(struct strs *ss, const char *t)
{
    if (ss->n == ss->cap) {
        size_t cap = ss->cap ? ss->cap * 2 : 32;
        void *p = realloc(ss->v, cap * sizeof *ss->v);
        if (!p)
            return -1;
        ss->v = p;
        ss->cap = cap;
    }
    snprintf(ss->v[ss->n++], STORE_LABEL_MAX, "%s", t);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int tag_cb(void *ctx, const char *tag, const char *version)
{
    return strs_add(ctx, tag);
}

static int model_cb(void *ctx, const char *name, const struct store_version *latest, uint64_t n)
{
    return proto_oci_valid_repo(name) ? strs_add(ctx, name) : 0;
}

/* Sorts, removes duplicates, pages (n, last) and replies {key: [...]} (+ "name"). */
static enum MHD_Result reply_page(struct srv_req *r, struct strs *ss, const char *key,
                                  const char *name, const char *base)
{
    qsort(ss->v, ss->n, sizeof *ss->v, cmp_str);
    char arg[STORE_LABEL_MAX + 8], last[STORE_LABEL_MAX] = "";
    unsigned long long n = LIST_MAX;
    bool has_n = query_arg(r, "n", arg, sizeof arg);
    if (has_n) {
        char *end;
        n = strtoull(arg, &end, 10);
        if (*end || end == arg || arg[0] == '-' || n > LIST_MAX) {
            free(ss->v);
            return srv_oci_error(r, 400, "UNSUPPORTED", NULL, "n must be 0..%d", LIST_MAX);
        }
    }
    if (!query_arg(r, "last", last, sizeof last))
        last[0] = '\0';
    json_t *arr = json_array();
    size_t taken = 0;
    bool more = false;
    const char *prev = NULL, *lastout = NULL;
    for (size_t i = 0; i < ss->n && arr; i++) {
        if (prev && strcmp(prev, ss->v[i]) == 0)
            continue;
        prev = ss->v[i];
        if (last[0] && strcmp(ss->v[i], last) <= 0)
            continue;
        if (taken == n) {
            more = true;
            break;
        }
        json_array_append_new(arr, json_string(ss->v[i]));
        lastout = ss->v[i];
        taken++;
    }
    char link[2 * STORE_LABEL_MAX + 100] = "";
    if (more && lastout)
        snprintf(link, sizeof link, "<%s?n=%llu&last=%s>; rel=\"next\"", base, n, lastout);
    json_t *obj =
        name ? json_pack("{s:s,s:o}", "name", name, key, arr) : json_pack("{s:o}", key, arr);
    free(ss->v);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    return reply_bytes(r, 200, text, strlen(text), "application/json", link[0] ? "Link" : NULL,
                       link);
}

static enum MHD_Result tags_list(struct srv_req *r)
{
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    const char *repo = srv_param(r, "name");
    struct store_version *vs = NULL;
    size_t nv = 0;
    struct pemn_err e = {0};
    pemn_rc rc = srv_oci_versions(r->srv, repo, &vs, &nv, &e);
    if (rc == PEMN_ENOTFOUND)
        return srv_oci_error(r, 404, "NAME_UNKNOWN", NULL, "no repository %s", repo);
    if (rc)
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    struct strs ss = {0};
    bool oom = false;
    for (size_t i = 0; i < nv && !oom; i++)
        oom = strs_add(&ss, vs[i].version) != 0;
    if (nv && !oom)
        oom = strs_add(&ss, "latest") != 0; /* resolves to the newest release */
    free(vs);
    if (!oom)
        rc = store_list_tags(srv_store(r->srv), repo, tag_cb, &ss, &e);
    if (oom || rc) {
        free(ss.v);
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", oom ? "out of memory" : e.msg);
    }
    char base[STORE_LABEL_MAX + 32];
    snprintf(base, sizeof base, "/v2/%s/tags/list", repo);
    return reply_page(r, &ss, "tags", repo, base);
}

static enum MHD_Result catalog(struct srv_req *r)
{
    struct strs ss = {0};
    struct pemn_err e = {0};
    pemn_rc rc = store_list_models(srv_store(r->srv), model_cb, &ss, &e);
    if (rc) {
        free(ss.v);
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg);
    }
    return reply_page(r, &ss, "repositories", NULL, "/v2/_catalog");
}

struct refs {
    json_t *arr;
    const char *filter;
};

static int referrer_cb(void *ctx, const struct store_oci_manifest *m)
{
    struct refs *rs = ctx;
    if (rs->filter && strcmp(rs->filter, m->artifact_type) != 0)
        return 0;
    json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", m->media_type, "digest", m->digest, "size",
                          (json_int_t)m->len);
    if (d && m->artifact_type[0])
        json_object_set_new(d, "artifactType", json_string(m->artifact_type));
    return d ? json_array_append_new(rs->arr, d) : -1;
}

static enum MHD_Result referrers(struct srv_req *r)
{
    enum MHD_Result ret;
    if (!repo_ok(r, &ret))
        return ret;
    char subject[PEMN_DIGEST_TEXT_MAX], filter[STORE_OCI_TYPE_MAX];
    canon_digest(srv_param(r, "digest"), subject);
    struct refs rs = {json_array(), NULL};
    if (query_arg(r, "artifactType", filter, sizeof filter))
        rs.filter = filter;
    struct pemn_err e = {0};
    pemn_rc rc = rs.arr ? store_oci_referrers(srv_store(r->srv), srv_param(r, "name"), subject,
                                              referrer_cb, &rs, &e)
                        : PEMN_ENOMEM;
    if (rc) {
        json_decref(rs.arr);
        return srv_oci_error(r, 500, "UNKNOWN", NULL, "%s", e.msg[0] ? e.msg : "out of memory");
    }
    json_t *obj = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", PROTO_OCI_INDEX_TYPE,
                            "manifests", rs.arr);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    return reply_bytes(r, 200, text, strlen(text), PROTO_OCI_INDEX_TYPE,
                       rs.filter ? "OCI-Filters-Applied" : NULL, "artifactType");
}

/* ---- fleet sources: PUT|GET|DELETE /v1/fleets/{fleet}/oci --------------------------------- */
void srv_oci_desired_source(struct srv *s, const char *fleet, json_t *desired)
{
    char loc[STORE_OCI_LOCATION_MAX];
    if (store_oci_source_get(srv_store(s), fleet, loc, NULL) == PEMN_OK)
        json_object_set_new(desired, "package_url", json_string(loc));
}

static enum MHD_Result source_reply(struct srv_req *r, const char *loc)
{
    return srv_reply_json(r, 200,
                          json_pack("{s:s,s:s}", "fleet", srv_param(r, "fleet"), "location", loc));
}

static enum MHD_Result source_put(struct srv_req *r)
{
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    json_error_t je;
    json_t *body = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
    const char *loc = json_string_value(json_object_get(body, "location"));
    if (!json_is_object(body) || !loc || json_object_size(body) != 1 ||
        strlen(loc) >= STORE_OCI_LOCATION_MAX ||
        !proto_oci_valid_location(loc, NULL, NULL, NULL, NULL)) {
        json_decref(body);
        return srv_reply_error(r, 400, "bad_request",
                               "expected {\"location\": \"oci://HOST[:PORT]/REPO\"} (or "
                               "oci+http:// for a plain-http registry), lower-case REPO");
    }
    char copy[STORE_OCI_LOCATION_MAX];
    snprintf(copy, sizeof copy, "%s", loc);
    json_decref(body);
    struct pemn_err e = {0};
    pemn_rc rc = store_oci_source_set(srv_store(r->srv), srv_param(r, "fleet"), copy, r->actor, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    return source_reply(r, copy);
}

static enum MHD_Result source_get(struct srv_req *r)
{
    char loc[STORE_OCI_LOCATION_MAX];
    struct pemn_err e = {0};
    pemn_rc rc = store_oci_source_get(srv_store(r->srv), srv_param(r, "fleet"), loc, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    return source_reply(r, loc);
}

static enum MHD_Result source_delete(struct srv_req *r)
{
    struct pemn_err e = {0};
    pemn_rc rc = store_oci_source_set(srv_store(r->srv), srv_param(r, "fleet"), NULL, r->actor, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    return srv_reply_empty(r, 204);
}

#define PUB STORE_SCOPE_PUBLISH
#define READ SRV_OPEN_READ
#define MANIFEST "/v2/{name}/manifests/{reference}"
#define UPLOAD "/v2/{name}/blobs/uploads/{uuid}"
const struct srv_route srv_routes_oci[] = {
    {"oci_ping", SRV_GET | SRV_HEAD, "/v2/", READ, 0, ping},
    {"oci_ping_noslash", SRV_GET | SRV_HEAD, "/v2", READ, 0, ping},
    {"oci_catalog", SRV_GET, "/v2/_catalog", READ, 0, catalog},
    {"oci_manifest_get", SRV_GET | SRV_HEAD, MANIFEST, READ, 0, manifest_get},
    {"oci_manifest_put", SRV_PUT, MANIFEST, PUB, STORE_OCI_MANIFEST_MAX, manifest_put},
    {"oci_manifest_delete", SRV_DELETE, MANIFEST, PUB, 0, manifest_delete},
    {"oci_blob_get", SRV_GET | SRV_HEAD, "/v2/{name}/blobs/{digest}", READ, 0, blob_get},
    {"oci_upload_start", SRV_POST, "/v2/{name}/blobs/uploads/", PUB, SRV_BODY_PACKAGE,
     upload_start},
    {"oci_upload_start_noslash", SRV_POST, "/v2/{name}/blobs/uploads", PUB, SRV_BODY_PACKAGE,
     upload_start},
    {"oci_upload_status", SRV_GET, UPLOAD, PUB, 0, upload_status},
    {"oci_upload_patch", SRV_PATCH, UPLOAD, PUB, SRV_BODY_PACKAGE, upload_patch},
    {"oci_upload_put", SRV_PUT, UPLOAD, PUB, SRV_BODY_PACKAGE, upload_put},
    {"oci_upload_delete", SRV_DELETE, UPLOAD, PUB, 0, upload_delete},
    {"oci_tags_list", SRV_GET | SRV_HEAD, "/v2/{name}/tags/list", READ, 0, tags_list},
    {"oci_referrers", SRV_GET | SRV_HEAD, "/v2/{name}/referrers/{digest}", READ, 0, referrers},
    {"fleet_oci_get", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}/oci", READ, 0, source_get},
    {"fleet_oci_put", SRV_PUT, "/v1/fleets/{fleet}/oci", PUB, 16 * 1024, source_put},
    {"fleet_oci_delete", SRV_DELETE, "/v1/fleets/{fleet}/oci", PUB, 0, source_delete},
    {0},
};
