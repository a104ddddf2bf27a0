/*
 * tests/common/fakesrv.c — see fakesrv.h.
 */
#include "tests/common/fakesrv.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_ROUTES 256
#define MAX_CUTS 32
#define MAX_BLOBS 64
#define MAX_UPLOAD (256u << 20)

struct route {
    char method[16];
    char path[512];
    int status;
    char *body;
    size_t len; /* body bytes (fakesrv_route_bytes: may hold NULs) */
    char etag[160];
};

struct fakesrv {
    struct MHD_Daemon *d;
    uint16_t port;
    char url[64];
    pthread_mutex_t mu;
    /* blob (older versions kept until stop: a response in flight may still read them) */
    uint8_t *blobs[MAX_BLOBS];
    unsigned n_blobs;
    const uint8_t *blob;
    size_t blob_len;
    char blob_path[512];
    char blob_etag[160];
    struct route routes[MAX_ROUTES];
    unsigned n_routes;
    uint64_t cuts[MAX_CUTS];
    bool cut_used[MAX_CUTS];
    unsigned n_cuts;
    bool ignore_range;
    int bad_range;
    int64_t flip;
    int fail_status, fail_n, fail_retry_after;
    uint64_t stall_at;
    unsigned stall_ms;
    size_t trickle_bytes; /* hostile: at most this many body bytes per chunk (0: off) */
    unsigned trickle_ms;  /* ... each after this pause */
    bool unknown_size;    /* hostile: no Content-Length (chunked), whatever the size */
    struct fakesrv_stats st;
};

struct body_state {
    fakesrv *s;
    const uint8_t *data;
    uint64_t start, end, cut; /* absolute; cut = UINT64_MAX for none */
    int64_t flip;
};

struct conn {
    uint8_t *up;
    size_t len, cap;
    bool too_big;
};

static ssize_t body_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct body_state *b = cls;
    uint64_t abs = b->start + pos;
    if (abs >= b->end)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (abs >= b->cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    uint64_t lim = b->end < b->cut ? b->end : b->cut;
    size_t n = max;
    if (n > lim - abs)
        n = (size_t)(lim - abs);
    unsigned stall = 0;
    pthread_mutex_lock(&b->s->mu);
    if (b->s->trickle_bytes) {
        if (n > b->s->trickle_bytes)
            n = b->s->trickle_bytes;
        stall = b->s->trickle_ms;
    }
    if (b->s->stall_ms && abs <= b->s->stall_at && b->s->stall_at < abs + n) {
        if (b->s->stall_at > abs) {
            n = (size_t)(b->s->stall_at - abs); /* send up to the stall point first */
        } else {
            stall = b->s->stall_ms;
            b->s->stall_ms = 0;
        }
    }
    pthread_mutex_unlock(&b->s->mu);
    if (stall) {
        struct timespec ts = {stall / 1000, (long)(stall % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    memcpy(buf, b->data + abs, n);
    if (b->flip >= 0 && (uint64_t)b->flip >= abs && (uint64_t)b->flip < abs + n)
        buf[b->flip - (int64_t)abs] ^= (char)0xff;
    pthread_mutex_lock(&b->s->mu);
    b->s->st.bytes_sent += n;
    pthread_mutex_unlock(&b->s->mu);
    return (ssize_t)n;
}

static void body_free(void *cls)
{
    free(cls);
}

static enum MHD_Result queue_bytes(struct MHD_Connection *c, int status, const char *body,
                                   size_t len, const char *etag, int retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (body[0] == '{')
        MHD_add_response_header(r, "Content-Type", "application/json");
    if (etag && etag[0])
        MHD_add_response_header(r, "ETag", etag);
    if (retry_after >= 0) {
        char v[32];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue_text(struct MHD_Connection *c, int status, const char *body,
                                  const char *etag, int retry_after)
{
    return queue_bytes(c, status, body, strlen(body), etag, retry_after);
}

/* Parses a single range against size; 0 ok, -1 unsatisfiable, 1 absent/ignored. */
static int parse_range(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
    if (!v || strncmp(v, "bytes=", 6) != 0)
        return 1;
    v += 6;
    char *end;
    if (*v == '-') {
        unsigned long long n = strtoull(v + 1, &end, 10);
        if (*end || n == 0)
            return -1;
        *a = n >= size ? 0 : size - n;
        *b = size - 1;
        return 0;
    }
    unsigned long long x = strtoull(v, &end, 10);
    if (*end != '-')
        return 1;
    unsigned long long y = size ? size - 1 : 0;
    if (end[1]) {
        char *e2;
        y = strtoull(end + 1, &e2, 10);
        if (*e2)
            return 1;
        if (y >= size)
            y = size - 1;
    }
    if (x >= size || x > y)
        return -1;
    *a = x;
    *b = y;
    return 0;
}

static enum MHD_Result serve_blob(fakesrv *s, struct MHD_Connection *c, bool head)
{
    const char *rh = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    pthread_mutex_lock(&s->mu);
    const uint8_t *data = s->blob;
    uint64_t size = s->blob_len, a = 0, b = size ? size - 1 : 0;
    int pr = s->ignore_range ? 1 : parse_range(rh, size, &a, &b);
    bool partial = pr == 0, wrong = false;
    if (rh && !s->ignore_range) {
        s->st.range_requests++;
        if (s->st.n_range_starts < 64)
            s->st.range_starts[s->st.n_range_starts++] = pr == 0 ? a : UINT64_MAX;
        if (pr == 0 && s->bad_range > 0 && a > 0) {
            s->bad_range--;
            wrong = true;
            a = 0;
            b = size - 1;
        }
    }
    uint64_t cut = UINT64_MAX;
    if (pr != -1 && !head) {
        unsigned best = MAX_CUTS;
        for (unsigned i = 0; i < s->n_cuts; i++)
            if (!s->cut_used[i] && s->cuts[i] > a && s->cuts[i] <= b &&
                (best == MAX_CUTS || s->cuts[i] < s->cuts[best]))
                best = i;
        if (best < MAX_CUTS) {
            cut = s->cuts[best];
            s->cut_used[best] = true;
        }
    }
    int64_t flip = s->flip;
    bool unknown = s->unknown_size;
    char etag[160];
    snprintf(etag, sizeof etag, "%s", s->blob_etag);
    pthread_mutex_unlock(&s->mu);

    if (pr == -1) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
        MHD_add_response_header(r, "Content-Range", cr);
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct body_state *bs = calloc(1, sizeof *bs);
    if (!bs)
        return MHD_NO;
    *bs = (struct body_state){
        .s = s, .data = data, .start = a, .end = b + 1, .cut = cut, .flip = flip};
    struct MHD_Response *r = MHD_create_response_from_callback(
        unknown ? MHD_SIZE_UNKNOWN : b + 1 - a, 16384, body_cb, bs, body_free);
    if (!r) {
        free(bs);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    MHD_add_response_header(r, "Content-Type", "application/vnd.pemn");
    if (etag[0])
        MHD_add_response_header(r, "ETag", etag);
    if (partial || wrong) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)a,
                 (unsigned long long)b, (unsigned long long)size);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    enum MHD_Result ret = MHD_queue_response(c, partial || wrong ? 206 : 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void copy_hdr(struct MHD_Connection *c, const char *name, char *dst, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req_cls)
{
    fakesrv *s = cls;
    struct conn *cs = *req_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs)
            return MHD_NO;
        *req_cls = cs;
        return MHD_YES;
    }
    if (*upload_size) {
        if (cs->len + *upload_size > MAX_UPLOAD) {
            cs->too_big = true;
        } else {
            if (cs->len + *upload_size > cs->cap) {
                size_t cap = cs->cap ? cs->cap : 65536;
                while (cap < cs->len + *upload_size)
                    cap *= 2;
                uint8_t *p = realloc(cs->up, cap);
                if (!p)
                    return MHD_NO;
                cs->up = p;
                cs->cap = cap;
            }
            memcpy(cs->up + cs->len, upload, *upload_size);
            cs->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    s->st.requests++;
    copy_hdr(c, "Authorization", s->st.last_auth, sizeof s->st.last_auth);
    copy_hdr(c, "If-None-Match", s->st.last_if_none_match, sizeof s->st.last_if_none_match);
    snprintf(s->st.last_method, sizeof s->st.last_method, "%s", method);
    snprintf(s->st.last_path, sizeof s->st.last_path, "%s", url);
    if (!strcmp(method, "PUT")) {
        s->st.upload_len = cs->len;
        size_t used = strlen(s->st.put_log), room = sizeof s->st.put_log - used;
        if (room > 1)
            snprintf(s->st.put_log + used, room, "%.*s\n", (int)cs->len,
                     cs->up ? (const char *)cs->up : "");
        crypto_hash_sha256(s->st.upload_sha, cs->up ? cs->up : (const uint8_t *)"", cs->len);
    }
    int fail_status = 0, retry_after = -1;
    if (s->fail_n > 0) {
        s->fail_n--;
        fail_status = s->fail_status;
        retry_after = s->fail_retry_after;
    }
    bool is_blob = s->blob && !strcmp(url, s->blob_path) &&
                   (!strcmp(method, "GET") || !strcmp(method, "HEAD"));
    struct route rt = {0};
    bool found = false;
    for (unsigned i = 0; i < s->n_routes && !is_blob; i++)
        if (!strcmp(s->routes[i].method, method) && !strcmp(s->routes[i].path, url)) {
            rt = s->routes[i];
            rt.body = malloc(rt.len + 1);
            if (rt.body)
                memcpy(rt.body, s->routes[i].body, rt.len + 1);
            found = true;
        }
    pthread_mutex_unlock(&s->mu);

    if (fail_status) {
        free(rt.body);
        return queue_text(c, fail_status,
                          "{\"error\":{\"code\":\"unavailable\",\"message\":\"try later\"}}", NULL,
                          retry_after);
    }
    if (is_blob)
        return serve_blob(s, c, !strcmp(method, "HEAD"));
    if (!found || !rt.body)
        return queue_text(c, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no route\"}}",
                          NULL, -1);
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    enum MHD_Result ret;
    if (rt.etag[0] && inm && !strcmp(inm, rt.etag))
        ret = queue_text(c, 304, "", rt.etag, -1);
    else
        ret = queue_bytes(c, rt.status, rt.body, rt.len, rt.etag, -1);
    free(rt.body);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct conn *cs = *req_cls;
    if (cs) {
        free(cs->up);
        free(cs);
    }
    *req_cls = NULL;
}

fakesrv *fakesrv_start(void)
{
    if (sodium_init() < 0)
        return NULL;
    fakesrv *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->flip = -1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                         completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!s->d) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%u", (unsigned)s->port);
    return s;
}

void fakesrv_stop(fakesrv *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    for (unsigned i = 0; i < s->n_blobs; i++)
        free(s->blobs[i]);
    for (unsigned i = 0; i < s->n_routes; i++)
        free(s->routes[i].body);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

uint16_t fakesrv_port(const fakesrv *s)
{
    return s->port;
}

const char *fakesrv_url(const fakesrv *s)
{
    return s->url;
}

void fakesrv_set_blob(fakesrv *s, const char *path, const void *data, size_t len, const char *etag)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, data, len);
    pthread_mutex_lock(&s->mu);
    if (s->n_blobs < MAX_BLOBS) {
        s->blobs[s->n_blobs++] = copy;
        s->blob = copy;
        s->blob_len = len;
        snprintf(s->blob_path, sizeof s->blob_path, "%s", path);
        snprintf(s->blob_etag, sizeof s->blob_etag, "%s", etag ? etag : "");
    } else {
        free(copy);
    }
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_route(fakesrv *s, const char *method, const char *path, int status, const char *body,
                   const char *etag)
{
    fakesrv_route_bytes(s, method, path, status, body, strlen(body), etag);
}

void fakesrv_route_bytes(fakesrv *s, const char *method, const char *path, int status,
                         const void *body, size_t len, const char *etag)
{
    pthread_mutex_lock(&s->mu);
    struct route *r = NULL;
    for (unsigned i = 0; i < s->n_routes; i++)
        if (!strcmp(s->routes[i].method, method) && !strcmp(s->routes[i].path, path))
            r = &s->routes[i];
    if (!r && s->n_routes < MAX_ROUTES)
        r = &s->routes[s->n_routes++];
    if (r) {
        free(r->body);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", path);
        r->status = status;
        r->body = malloc(len + 1);
        if (r->body) {
            memcpy(r->body, body, len);
            r->body[len] = '\0';
        }
        r->len = r->body ? len : 0;
        snprintf(r->etag, sizeof r->etag, "%s", etag ? etag : "");
    }
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_cut_at(fakesrv *s, const uint64_t *offsets, size_t n)
{
    pthread_mutex_lock(&s->mu);
    s->n_cuts = 0;
    for (size_t i = 0; i < n && i < MAX_CUTS; i++) {
        s->cuts[i] = offsets[i];
        s->cut_used[i] = false;
        s->n_cuts++;
    }
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_ignore_range(fakesrv *s, bool on)
{
    pthread_mutex_lock(&s->mu);
    s->ignore_range = on;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_bad_range(fakesrv *s, int n)
{
    pthread_mutex_lock(&s->mu);
    s->bad_range = n;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_flip(fakesrv *s, int64_t offset)
{
    pthread_mutex_lock(&s->mu);
    s->flip = offset;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_fail(fakesrv *s, int status, int n, int retry_after_s)
{
    pthread_mutex_lock(&s->mu);
    s->fail_status = status;
    s->fail_n = n;
    s->fail_retry_after = retry_after_s;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_stall(fakesrv *s, uint64_t offset, unsigned ms)
{
    pthread_mutex_lock(&s->mu);
    s->stall_at = offset;
    s->stall_ms = ms;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_get_stats(fakesrv *s, struct fakesrv_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_reset_stats(fakesrv *s)
{
    pthread_mutex_lock(&s->mu);
    memset(&s->st, 0, sizeof s->st);
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_trickle(fakesrv *s, size_t bytes, unsigned ms)
{
    pthread_mutex_lock(&s->mu);
    s->trickle_bytes = bytes;
    s->trickle_ms = ms;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_unknown_size(fakesrv *s, bool on)
{
    pthread_mutex_lock(&s->mu);
    s->unknown_size = on;
    pthread_mutex_unlock(&s->mu);
}
