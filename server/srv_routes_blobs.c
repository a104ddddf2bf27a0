/*
 * server/srv_routes_blobs.c — package bytes:
 *   GET|HEAD /v1/blobs/{digest}                             immutable, cacheable forever
 *   GET|HEAD /v1/models/{name}/versions/{version}/package   the same bytes by version
 *
 * ETag is the quoted digest; If-None-Match answers 304; one Range (bytes=a-b, a-, -n) answers
 * 206 with Content-Range, 416 when unsatisfiable; several ranges or a malformed Range are
 * ignored (the whole body, as RFC 9110 allows); If-Range with another validator disables
 * Range.
 *
 * Bytes come from the store's blob handle: a cached blob is sent from its memfd with
 * sendfile (or, without a memfd, from the shared buffer, releasing the handle when MHD is
 * done with it); otherwise it is streamed in chunks, each chunk a short read of its own.
 */
#include "server/srv.h"
#include "server/srv_respcache.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define STREAM_CHUNK (256 * 1024)

struct stream {
    struct store *st;
    struct store_blob *blob;
    uint64_t off, len;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    if (pos >= s->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - pos < max ? (size_t)(s->len - pos) : max;
    if (store_blob_read(s->st, s->blob, s->off + pos, buf, n, NULL) != PEMN_OK)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    store_blob_release(s->blob);
    free(s);
}

static void blob_release_cb(void *cls)
{
    store_blob_release(cls);
}

/* Parses one decimal number; returns the position after it or NULL. */
static const char *parse_num(const char *p, uint64_t *v)
{
    if (*p < '0' || *p > '9')
        return NULL;
    uint64_t x = 0;
    while (*p >= '0' && *p <= '9') {
        if (x > (UINT64_MAX - 9) / 10)
            return NULL;
        x = x * 10 + (uint64_t)(*p++ - '0');
    }
    *v = x;
    return p;
}

enum range_result { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

static enum range_result parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "bytes=", 6) != 0)
        return RANGE_NONE;
    h += 6;
    while (*h == ' ')
        h++;
    if (strchr(h, ','))
        return RANGE_NONE; /* multiple ranges: serve the whole body */
    uint64_t a = 0, b = 0;
    const char *p;
    if (*h == '-') { /* suffix: the last n bytes */
        if (!(p = parse_num(h + 1, &b)))
            return RANGE_NONE;
        while (*p == ' ')
            p++;
        if (*p)
            return RANGE_NONE;
        if (b == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        if (b > size)
            b = size;
        *off = size - b;
        *len = b;
        return RANGE_OK;
    }
    if (!(p = parse_num(h, &a)) || *p != '-')
        return RANGE_NONE;
    p++;
    bool open_end = *p == '\0' || *p == ' ';
    if (!open_end && !(p = parse_num(p, &b)))
        return RANGE_NONE;
    while (p && *p == ' ')
        p++;
    if (p && *p)
        return RANGE_NONE;
    if (!open_end && b < a)
        return RANGE_NONE;
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    if (open_end || b >= size)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return RANGE_OK;
}

static void common_headers(struct srv_req *r, struct MHD_Response *resp, const char *etag,
                           bool immutable)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, srv_cache_control(r, immutable));
}

static enum MHD_Result serve(struct srv_req *r, const char *digest, bool immutable)
{
    struct store *st = srv_store(r->srv);
    struct srv_respcache *rcache = srv_get_respcache(r->srv);
    /* the common case, a whole package: a ready-made response */
    bool plain =
        !srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH) && !srv_header(r, MHD_HTTP_HEADER_RANGE);
    uint64_t cached_size;
    if (plain && srv_respcache_queue(rcache, r->conn, digest, immutable, &cached_size)) {
        r->status = 200;
        r->bytes = r->method == SRV_HEAD ? 0 : cached_size;
        r->queued = true;
        return MHD_YES;
    }
    struct store_blob *b = NULL;
    struct pemn_err e;
    pemn_rc rc = store_blob_get(st, digest, &b, &e);
    if (rc == PEMN_EDIGEST) {
        /* never serve bytes under a digest they do not have (store_verify.h) */
        srv_log(SRV_LOG_ERROR, "integrity: %s (run `pemnd --db FILE scrub`)", e.msg);
        srv_metrics_blob_corrupt(srv_get_metrics(r->srv), false);
        return srv_reply_error(r, 500, "stored_blob_corrupt",
                               "the stored bytes of %s do not match their digest; the operator "
                               "has been alerted",
                               digest);
    }
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    char etag[PEMN_DIGEST_TEXT_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", b->digest);

    const char *inm = srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (srv_etag_matches(inm, etag)) {
        store_blob_release(b);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        common_headers(r, resp, etag, immutable);
        return srv_queue(r, 304, resp, 0);
    }

    uint64_t off = 0, len = b->size;
    enum range_result rr = RANGE_NONE;
    const char *range = srv_header(r, MHD_HTTP_HEADER_RANGE);
    const char *if_range = srv_header(r, MHD_HTTP_HEADER_IF_RANGE);
    if (range && (!if_range || srv_etag_matches(if_range, etag)))
        rr = parse_range(range, b->size, &off, &len);
    if (rr == RANGE_UNSATISFIABLE) {
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)b->size);
        store_blob_release(b);
        json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "code", "range_not_satisfiable",
                                "message", "the requested range is outside the package");
        char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
        json_decref(obj);
        if (!text)
            return MHD_NO;
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(text);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
        return srv_queue(r, 416, resp, strlen(text));
    }

    uint64_t total = b->size;
    char canon[PEMN_DIGEST_TEXT_MAX];
    memcpy(canon, b->digest, sizeof canon);
    bool reusable = plain && rr == RANGE_NONE && b->data; /* cached bytes, whole body */
    struct MHD_Response *resp;
    int fd = b->data && b->fd >= 0 && len && srv_cfg(r->srv)->sendfile
                 ? fcntl(b->fd, F_DUPFD_CLOEXEC, 0)
                 : -1;
    if (fd >= 0) {
        /* the kernel sends straight from the cached memfd (sendfile); MHD closes fd */
        store_blob_release(b);
        resp = MHD_create_response_from_fd_at_offset64(len, fd, off);
        if (!resp)
            close(fd);
    } else if (b->data) {
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            (size_t)len, (void *)(b->data + off), blob_release_cb, b);
        if (!resp)
            store_blob_release(b);
    } else {
        struct stream *s = malloc(sizeof *s);
        if (!s) {
            store_blob_release(b);
            return srv_reply_error(r, 503, "unavailable", "out of memory");
        }
        *s = (struct stream){.st = st, .blob = b, .off = off, .len = len};
        resp = MHD_create_response_from_callback(len, STREAM_CHUNK, stream_read, s, stream_free);
        if (!resp)
            stream_free(s);
    }
    if (!resp)
        return MHD_NO;
    /* b may be released by MHD from here on: use only etag and the numbers */
    common_headers(r, resp, etag, immutable);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/vnd.pemn");
    if (rr == RANGE_OK) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)total);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        return srv_queue(r, 206, resp, len);
    }
    if (reusable) {
        r->status = 200;
        r->bytes = r->method == SRV_HEAD ? 0 : len;
        r->queued = true;
        enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
        srv_respcache_put(rcache, canon, immutable, resp, total); /* takes our reference */
        return ret;
    }
    return srv_queue(r, 200, resp, len);
}

enum MHD_Result srv_blob_serve(struct srv_req *r, const char *digest, bool immutable)
{
    return serve(r, digest, immutable);
}

static enum MHD_Result get_blob(struct srv_req *r)
{
    return serve(r, srv_param(r, "digest"), true);
}

static enum MHD_Result get_package(struct srv_req *r)
{
    struct store_version v;
    struct pemn_err e;
    pemn_rc rc =
        store_get_version(srv_store(r->srv), srv_param(r, "name"), srv_param(r, "version"), &v, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    return serve(r, v.digest, false);
}

const struct srv_route srv_routes_blobs[] = {
    {"blob_get", SRV_GET | SRV_HEAD, "/v1/blobs/{digest}", SRV_OPEN_READ, 0, get_blob},
    {"package_get", SRV_GET | SRV_HEAD, "/v1/models/{name}/versions/{version}/package",
     SRV_OPEN_READ, 0, get_package},
    {0},
};
