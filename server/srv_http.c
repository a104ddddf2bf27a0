/*
 * server/srv_http.c — the libmicrohttpd daemon: setup and limits, the request lifecycle,
 * bounded upload buffering, replies, graceful stop.
 *
 * Lifecycle of a request (MHD access handler):
 *   1st call   headers only: allocate struct srv_req on *req_cls, match the route, validate
 *              path parameters, check the token, bound Content-Length. Any refusal is queued
 *              right away, before the body is read. Routes without a body run now.
 *   next calls body chunks: appended to a small buffer that spills to an unlinked temp file
 *              (srv_upload.h); never more than the route's limit is kept.
 *   last call  (*upload_data_size == 0): the route's handler runs with the whole body.
 *   completion the request is logged and counted, and its state freed.
 */
#include "server/srv.h"
#include "server/srv_oci.h"
#include "server/srv_guard.h"
#include "server/srv_signer.h"
#include "server/srv_respcache.h"

#include "proto/err.h"

#include <errno.h>
#include <sodium.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct srv {
    struct srv_config cfg;
    struct store *store;
    struct MHD_Daemon *daemon;
    struct srv_metrics *metrics;
    struct srv_respcache *respcache;
    struct srv_scrub *scrub;
    struct srv_uploads *uploads;
    struct srv_guard *guard;
    struct srv_signer *signer; /* NULL: desired state unsigned */
    atomic_uint inflight;
    unsigned port;
    char tmp_dir[1024];
};

struct store *srv_store(struct srv *s)
{
    return s->store;
}

const struct srv_config *srv_cfg(struct srv *s)
{
    return &s->cfg;
}

struct srv_signer *srv_get_signer(struct srv *s)
{
    return s->signer;
}

struct srv_metrics *srv_get_metrics(struct srv *s)
{
    return s->metrics;
}

struct srv_guard *srv_get_guard(struct srv *s)
{
    return s->guard;
}

struct srv_uploads *srv_get_uploads(struct srv *s)
{
    return s->uploads;
}

struct srv_respcache *srv_get_respcache(struct srv *s)
{
    return s->respcache;
}

const char *srv_tmp_dir(struct srv *s)
{
    return s->tmp_dir;
}

unsigned srv_port(const struct srv *s)
{
    return s->port;
}

/* ---- replies --------------------------------------------------------------------------- */
const char *srv_header(const struct srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

enum MHD_Result srv_queue(struct srv_req *r, unsigned status, struct MHD_Response *resp,
                          uint64_t body_bytes)
{
    if (!resp)
        return MHD_NO;
    r->status = status;
    r->bytes = r->method == SRV_HEAD ? 0 : body_bytes;
    r->queued = true;
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_text(struct srv_req *r, unsigned status, char *text, size_t len,
                                  const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                srv_oci_path(r->path) ? SRV_OCI_CHALLENGE
                                                      : "Bearer realm=\"pemn\"");
    return srv_queue(r, status, resp, len);
}

bool srv_etag_matches(const char *header, const char *etag)
{
    if (!header || !etag)
        return false;
    size_t el = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *end = p;
        if (*p == '"') {
            end = strchr(p + 1, '"');
            if (!end)
                return false;
            end++;
            if ((size_t)(end - p) == el && strncasecmp(p, etag, el) == 0)
                return true;
        } else {
            while (*end && *end != ',' && *end != ' ' && *end != '\t')
                end++;
            if (el >= 2 && (size_t)(end - p) == el - 2 && strncasecmp(p, etag + 1, el - 2) == 0)
                return true;
        }
        p = end;
    }
    return false;
}

enum MHD_Result srv_reply_json(struct srv_req *r, unsigned status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        return MHD_NO;
    }
    t2[n] = '\n';
    t2[n + 1] = '\0';
    if (status != MHD_HTTP_OK || r->method != SRV_GET)
        return reply_text(r, status, t2, n + 1, "application/json");

    /* mutable resources: a strong validator over the exact bytes */
    uint8_t h[16];
    char hex[33], etag[36];
    crypto_generichash(h, sizeof h, (const uint8_t *)t2, n + 1, NULL, 0);
    proto_hex(h, sizeof h, hex);
    snprintf(etag, sizeof etag, "\"%s\"", hex);
    struct MHD_Response *resp;
    if (srv_etag_matches(srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        free(t2);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_MODIFIED;
        n = 0;
    } else {
        resp = MHD_create_response_from_buffer(n + 1, t2, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(t2);
        else
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        n += 1;
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, srv_cache_control(r, false));
    return srv_queue(r, status, resp, n);
}

const char *srv_cache_control(const struct srv_req *r, bool immutable)
{
    if (r->srv->cfg.read_token_required)
        return immutable ? "private, max-age=31536000, immutable" : "private, no-cache";
    return immutable ? "public, max-age=31536000, immutable" : "no-cache";
}

enum MHD_Result srv_reply_error(struct srv_req *r, unsigned status, const char *code,
                                const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* messages may quote request bytes: keep the JSON valid whatever they are */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    if (srv_oci_path(r->path)) /* /v2 speaks OCI's error format */
        return srv_oci_reply_pemn_error(r, status, code, msg);
    json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    if (status >= 500)
        srv_log(SRV_LOG_ERROR, "%s %s: %u %s: %s", r->method_text, r->path, status, code, msg);
    return srv_reply_json(r, status, obj);
}

enum MHD_Result srv_reply_empty(struct srv_req *r, unsigned status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return srv_queue(r, status, resp, 0);
}

enum MHD_Result srv_reply_store_error(struct srv_req *r, pemn_rc rc, const struct pemn_err *e)
{
    const char *msg = e && e->msg[0] ? e->msg : pemn_strerror(rc);
    switch (rc) {
    case PEMN_ENOTFOUND:
        return srv_reply_error(r, 404, "not_found", "%s", msg);
    case PEMN_ECONFLICT:
    case PEMN_EEXIST:
        return srv_reply_error(r, 409, "conflict", "%s", msg);
    case PEMN_EROLLBACK:
        return srv_reply_error(r, 409, "release_not_newer", "%s", msg);
    case PEMN_EINVAL:
        return srv_reply_error(r, 400, "bad_request", "%s", msg);
    case PEMN_ENOMEM:
        return srv_reply_error(r, 503, "unavailable", "%s", msg);
    case PEMN_EDB:
        if (strstr(msg, "locked") || strstr(msg, "busy"))
            return srv_reply_error(r, 503, "unavailable", "%s", msg);
        return srv_reply_error(r, 500, "internal", "%s", msg);
    default:
        return srv_reply_error(r, 500, "internal", "%s", msg);
    }
}

/* ---- request bodies -------------------------------------------------------------------- */
static uint64_t body_limit(const struct srv_req *r)
{
    if (!r->route)
        return 0;
    return r->route->max_body == SRV_BODY_PACKAGE ? r->srv->cfg.max_package_size
                                                  : r->route->max_body;
}

void srv_body_get(struct srv_req *r, const uint8_t **data, size_t *len)
{
    srv_body_data(&r->body, data, len);
}

/* ---- the access handler ---------------------------------------------------------------- */
static enum srv_method method_of(const char *m)
{
    static const struct {
        const char *name;
        enum srv_method m;
    } t[] = {{"GET", SRV_GET},       {"HEAD", SRV_HEAD}, {"PUT", SRV_PUT},
             {"DELETE", SRV_DELETE}, {"POST", SRV_POST}, {"PATCH", SRV_PATCH}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(m, t[i].name) == 0)
            return t[i].m;
    return 0;
}

static enum MHD_Result reply_405(struct srv_req *r, unsigned allow)
{
    static const char *const names[] = {"GET", "HEAD", "PUT", "DELETE", "POST", "PATCH"};
    char list[64] = "";
    size_t used = 0;
    for (int i = 0; i < 6 && used < sizeof list; i++)
        if (allow & (1u << i)) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", names[i]);
            if (w > 0)
                used += (size_t)w;
        }
    if (srv_oci_path(r->path))
        return srv_oci_reply_405(r, list);
    json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "code", "method_not_allowed", "message",
                            "method not allowed on this resource");
    char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12));
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
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, list);
    return srv_queue(r, 405, resp, strlen(text));
}

/* Route, parameters, token and declared body size. Returns true when the request may
 * proceed; otherwise a refusal has been queued (*ret). */
static bool admit(struct srv_req *r, enum MHD_Result *ret)
{
    r->method = method_of(r->method_text);
    unsigned allow = 0;
    const char *which = NULL;
    int m = srv_route_match(r, r->path, r->method ? r->method : 0, &allow, &which);
    if (m == -405 || (m == -404 && !r->method && allow)) {
        *ret = reply_405(r, allow);
        return false;
    }
    if (m == -404) {
        *ret = srv_reply_error(r, 404, "not_found", "no such resource");
        return false;
    }
    if (m == -400) {
        size_t wl = which ? strcspn(which, "}") : 0;
        *ret = srv_reply_error(r, 400, "bad_request",
                               "invalid %.*s in path: names, versions and tags match "
                               "[A-Za-z0-9][A-Za-z0-9._-]{0,127}; digests are sha256:<64 hex>",
                               (int)wl, which ? which : "");
        return false;
    }
    bool refused = false;
    *ret = srv_auth_check(r, &refused);
    if (refused)
        return false;

    const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t lim = body_limit(r);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || *end || end == cl) {
            *ret = srv_reply_error(r, 400, "bad_request", "bad Content-Length");
            return false;
        }
        if (v > lim) {
            if (r->route->max_body == SRV_BODY_PACKAGE)
                srv_metrics_push_rejected(r->srv->metrics, "too_large");
            *ret = srv_reply_error(r, 413, "too_large",
                                   "request body of %llu bytes is over the limit of %llu bytes", v,
                                   (unsigned long long)lim);
            return false;
        }
    }
    return true;
}

/* First callback (headers only). A request that carries a body is checked now, so a refusal
 * goes out before the body is read (MHD then closes that connection). Requests without a body
 * are checked on the final callback: answering then keeps the connection alive. */
static enum MHD_Result first_call(struct srv_req *r)
{
    const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    r->has_body =
        (cl && strcmp(cl, "0") != 0) || srv_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
    if (!r->has_body)
        return MHD_YES;
    enum MHD_Result ret = MHD_YES;
    if (!admit(r, &ret))
        return ret;
    r->admitted = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct srv *s = cls;
    struct srv_req *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        r->srv = s;
        r->conn = conn;
        r->route_index = -1;
        srv_body_init(&r->body);
        r->method_text = method;
        r->path = strdup(url);
        atomic_fetch_add(&s->inflight, 1);
        if (!r->path)
            return MHD_NO;
        enum MHD_Result fr = first_call(r);
        srv_guard_head_done(s->guard, conn, r->has_body && !r->queued);
        return fr;
    }
    if (r->queued) { /* refused early: drop whatever body follows */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        srv_guard_body(s->guard, conn, *upload_data_size);
        int k =
            srv_body_append(s->uploads, &r->body, body_limit(r), upload_data, *upload_data_size);
        *upload_data_size = 0;
        /* A body far over the limit (no Content-Length): stop reading, drop the connection. */
        if (k > 0 && r->body.size > body_limit(r) + (16u << 20))
            return MHD_NO;
        return MHD_YES;
    }
    srv_guard_busy(s->guard, conn);
    if (!r->admitted) {
        enum MHD_Result ret = MHD_YES;
        if (!admit(r, &ret))
            return ret;
        r->admitted = true;
    }
    if (r->body.too_large) {
        if (r->route->max_body == SRV_BODY_PACKAGE)
            srv_metrics_push_rejected(s->metrics, "too_large");
        return srv_reply_error(r, 413, "too_large", "request body is over the limit of %llu bytes",
                               (unsigned long long)body_limit(r));
    }
    if (r->body.failed) {
        int e = r->body.failed;
        srv_log(SRV_LOG_ERROR, "cannot spool an upload of %llu bytes to %s: %s",
                (unsigned long long)r->body.size, s->tmp_dir, strerror(e));
        srv_body_release(s->uploads, &r->body);
        if (e == ENOSPC || e == EDQUOT)
            return srv_reply_error(r, 507, "insufficient_storage",
                                   "no room to receive the request body; try again later");
        return srv_reply_error(r, 503, "unavailable", "cannot receive the request body");
    }
    if (srv_body_finish(&r->body))
        return srv_reply_error(r, 500, "internal", "cannot map the request body");
    return r->route->handler(r);
}

static void on_complete(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe)
{
    struct srv *s = cls;
    struct srv_req *r = *req_cls;
    if (!r)
        return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - r->t0.tv_sec) + (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e9;
    unsigned status = r->queued ? r->status : 0;
    uint64_t bytes = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? r->bytes : 0;
    srv_metrics_request(s->metrics, r->route_index, status, bytes, secs);
    srv_log_request(r->method_text, r->path, status, bytes, secs, r->actor);
    srv_body_release(s->uploads, &r->body);
    srv_guard_request_done(s->guard, conn);
    free(r->path);
    free(r);
    *req_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/* Percent escapes are left as they are: a parameter is the literal bytes between two slashes,
 * so "%2F" can never become a separator and "%00" never a NUL (both fail the name pattern). */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* fmt comes from libmicrohttpd: declaring it a printf format keeps -Wformat-nonliteral on */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    srv_log(SRV_LOG_WARN, "libmicrohttpd: %s", msg);
}

/* ---- start / stop ---------------------------------------------------------------------- */
pemn_rc srv_start(const struct srv_config *cfg, struct srv **out, struct pemn_err *err)
{
    pemn_rc rc = srv_config_validate(cfg, err);
    if (rc)
        return rc;
    struct sockaddr_storage ss;
    unsigned sslen;
    if ((rc = srv_parse_listen(cfg->listen, &ss, &sslen, err)))
        return rc;
    struct srv *s = calloc(1, sizeof *s);
    if (!s)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    s->cfg = *cfg;
    if (cfg->tmp_dir[0]) {
        snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s", cfg->tmp_dir);
    } else if (strstr(cfg->db, "://")) {
        /* a database server (PostgreSQL): no local directory to borrow */
        const char *t = getenv("TMPDIR");
        snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s", t && *t ? t : "/var/tmp");
    } else {
        const char *file = strncmp(cfg->db, "sqlite:", 7) == 0 ? cfg->db + 7 : cfg->db;
        snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s", file);
        char *slash = strrchr(s->tmp_dir, '/');
        if (slash == s->tmp_dir)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(s->tmp_dir, sizeof s->tmp_dir, ".");
    }
    if (access(s->tmp_dir, W_OK | X_OK) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET,
                       "upload directory %s is not writable: %s (set tmp_dir)", s->tmp_dir,
                       strerror(errno));
        free(s);
        return rc;
    }
    struct store_opts so;
    store_opts_default(&so);
    so.cache_bytes = (size_t)cfg->cache_size;
    so.cache_item_max = (size_t)cfg->cache_item_max;
    if ((rc = store_open(cfg->db, &so, &s->store, err))) {
        free(s);
        return rc;
    }
    if (cfg->metadata_key[0] &&
        (rc = srv_signer_new(cfg->metadata_key, cfg->metadata_expiry, s->store, &s->signer, err))) {
        store_close(s->store);
        free(s);
        return rc;
    }
    s->metrics = srv_metrics_new(srv_route_count());
    s->respcache = srv_respcache_new(cfg->cache_size / 4);
    s->uploads = srv_uploads_new(s->tmp_dir, cfg->upload_buffer, cfg->upload_memory_max,
                                 cfg->upload_spill_max);
    s->guard = srv_guard_new(cfg->header_timeout, cfg->body_min_rate, cfg->body_rate_window);
    if (!s->metrics || !s->respcache || !s->uploads || !s->guard) {
        srv_guard_free(s->guard);
        srv_uploads_free(s->uploads);
        srv_metrics_free(s->metrics);
        srv_respcache_free(s->respcache);
        srv_signer_free(s->signer);
        store_close(s->store);
        free(s);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    struct pemn_err be = {0};
    if (srv_oci_backfill(s, &be)) /* OCI manifests of versions older than migration 6 */
        srv_log(SRV_LOG_WARN, "OCI manifest backfill: %s", be.msg);
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned threads = (unsigned)cfg->threads;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        threads > 1 ? threads : 0, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_limit,
        MHD_OPTION_NOTIFY_COMPLETED, on_complete, s, MHD_OPTION_NOTIFY_CONNECTION, srv_guard_notify,
        s->guard, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        int e = errno;
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "cannot listen on %s: %s", cfg->listen,
                       e ? strerror(e) : "libmicrohttpd refused the options");
        srv_guard_free(s->guard);
        srv_uploads_free(s->uploads);
        srv_metrics_free(s->metrics);
        srv_respcache_free(s->respcache);
        srv_signer_free(s->signer);
        store_close(s->store);
        free(s);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    s->scrub = srv_scrub_start(s);
    *out = s;
    return PEMN_OK;
}

void srv_stop(struct srv *s)
{
    if (!s)
        return;
    srv_scrub_stop(s->scrub);
    MHD_socket lsock = MHD_quiesce_daemon(s->daemon);
    /* let in-flight requests finish, bounded */
    unsigned waited_ms = 0, limit_ms = (unsigned)s->cfg.shutdown_timeout * 1000;
    while (atomic_load(&s->inflight) > 0 && waited_ms < limit_ms) {
        usleep(10 * 1000);
        waited_ms += 10;
    }
    if (atomic_load(&s->inflight) > 0)
        srv_log(SRV_LOG_WARN, "shutdown: %u request(s) still running after %llus; closing",
                atomic_load(&s->inflight), (unsigned long long)s->cfg.shutdown_timeout);
    MHD_stop_daemon(s->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    srv_respcache_free(s->respcache); /* after the daemon: no response is in flight */
    srv_metrics_free(s->metrics);
    srv_guard_free(s->guard); /* after the daemon: no connection left to notify */
    srv_uploads_free(s->uploads);
    srv_signer_free(s->signer);
    store_close(s->store);
    free(s);
}
