/*
 * client/client.c — the client handle, the retry policy, request plumbing shared by every
 * call, and mapping of registry error responses to pemn_rc.
 */
#include "client/client_int.h"
#include "proto/err.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- options and lifetime ------------------------------------------------------------- */
void pemn_client_options_init(struct pemn_client_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->stall_timeout_ms = 30000;
    o->stall_bytes_per_s = 1024; /* a registry trickling bytes cannot hold a download */
    o->deadline_ms = 3600000;
    o->max_attempts = 6;
    o->backoff_base_ms = 250;
    o->backoff_max_ms = 15000;
    o->retry_after_max_ms = 60000;
    o->max_package_size = (uint64_t)16 << 30;
    o->max_json_bytes = 16u << 20;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

pemn_rc pemn_client_new(const char *base_url, const struct pemn_client_options *opts,
                        pemn_client **out, struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "out is NULL");
    *out = NULL;
    if (!base_url ||
        (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "server URL must start with http:// or https://");
    size_t blen = strlen(base_url);
    if (blen > PEMN_URL_BUF / 2)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "server URL too long");
    for (size_t i = 0; i < blen; i++)
        if ((unsigned char)base_url[i] <= ' ' || base_url[i] == 0x7f)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "server URL contains a space or control character");
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "libsodium initialisation failed");
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "libcurl initialisation failed");

    pemn_client *c = calloc(1, sizeof *c);
    if (!c)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    if (opts)
        c->o = *opts;
    else
        pemn_client_options_init(&c->o);
    struct pemn_client_options def;
    pemn_client_options_init(&def);
    /* zero means "default" for every numeric option */
#define DEF(f)                                                                                     \
    if (!c->o.f)                                                                                   \
    c->o.f = def.f
    DEF(connect_timeout_ms);
    DEF(stall_timeout_ms);
    DEF(stall_bytes_per_s);
    DEF(deadline_ms);
    DEF(max_attempts);
    DEF(backoff_base_ms);
    DEF(backoff_max_ms);
    DEF(retry_after_max_ms);
    DEF(max_package_size);
    DEF(max_json_bytes);
#undef DEF
    c->base = strdup(base_url);
    c->token = dupstr(c->o.token);
    c->cache_dir = dupstr(c->o.cache_dir);
    char ua[64];
    snprintf(ua, sizeof ua, "pemn/%s", PEMN_VERSION_STRING);
    c->ua = strdup(c->o.user_agent ? c->o.user_agent : ua);
    c->curl = curl_easy_init();
    if (!c->base || (c->o.token && !c->token) || (c->o.cache_dir && !c->cache_dir) || !c->ua ||
        !c->curl) {
        pemn_client_free(c);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    c->o.token = c->token;
    c->o.cache_dir = c->cache_dir;
    c->o.user_agent = c->ua;
    while (blen > 0 && c->base[blen - 1] == '/')
        c->base[--blen] = '\0';
    if (c->token && strpbrk(c->token, "\r\n")) {
        pemn_client_free(c);
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "token contains a line break");
    }
    *out = c;
    return PEMN_OK;
}

void pemn_client_free(pemn_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->token) {
        sodium_memzero(c->token, strlen(c->token));
        free(c->token);
    }
    if (c->userpwd) {
        sodium_memzero(c->userpwd, strlen(c->userpwd));
        free(c->userpwd);
    }
    free(c->base);
    free(c->cache_dir);
    free(c->ua);
    for (unsigned i = 0; i < CLIENT_MEMO_MAX; i++) {
        free(c->memo[i].url);
        free(c->memo[i].etag);
        free(c->memo[i].body);
    }
    free(c);
}

/* ---- time and retry ------------------------------------------------------------------- */
uint64_t client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void client_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void client_retry_init(const pemn_client *c, struct client_retry *rt)
{
    rt->start_ms = client_now_ms();
    rt->deadline_ms = rt->start_ms + c->o.deadline_ms;
    rt->fails = 0;
    rt->tries = 0;
    rt->progress = c->o.progress;
    rt->progress_user = c->o.progress_user;
    rt->done = rt->total = 0;
}

uint64_t client_retry_left(const struct client_retry *rt)
{
    uint64_t now = client_now_ms();
    return now >= rt->deadline_ms ? 0 : rt->deadline_ms - now;
}

pemn_rc client_retry_wait(const pemn_client *c, struct client_retry *rt, bool progressed,
                          int64_t retry_after_ms, pemn_rc final_rc, const char *why,
                          struct pemn_err *err)
{
    if (progressed)
        rt->fails = 0;
    else
        rt->fails++;
    double elapsed = (double)(client_now_ms() - rt->start_ms) / 1000.0;
    if (rt->fails >= c->o.max_attempts || rt->tries >= CLIENT_MAX_TOTAL_TRIES)
        return proto_err(err, final_rc, PEMN_NO_OFFSET, "%s; gave up after %u attempts in %.1f s",
                         why, rt->tries, elapsed);
    uint64_t wait;
    if (retry_after_ms >= 0) {
        wait = (uint64_t)retry_after_ms;
        if (wait > c->o.retry_after_max_ms)
            wait = c->o.retry_after_max_ms;
    } else if (progressed) {
        wait = 0; /* the connection dropped after moving data: resume at once */
    } else {
        /* full jitter: uniform in [0, min(cap, base * 2^(fails-1))] */
        uint64_t ceil = c->o.backoff_base_ms;
        for (uint32_t i = 1; i < rt->fails && ceil < c->o.backoff_max_ms; i++)
            ceil *= 2;
        if (ceil > c->o.backoff_max_ms)
            ceil = c->o.backoff_max_ms;
        wait =
            ceil
                ? randombytes_uniform((uint32_t)(ceil > UINT32_MAX - 1 ? UINT32_MAX - 1 : ceil) + 1)
                : 0;
    }
    uint64_t left = client_retry_left(rt);
    if (wait >= left)
        return proto_err(err, PEMN_ETIMEOUT, PEMN_NO_OFFSET,
                         "%s; deadline of %.1f s reached after %u attempts%s", why,
                         (double)c->o.deadline_ms / 1000.0, rt->tries,
                         retry_after_ms >= 0 ? " (server asked to retry later)" : "");
    /* sleep in slices so that the progress callback can cancel a long wait */
    uint64_t until = client_now_ms() + wait;
    for (uint64_t now = client_now_ms(); now < until; now = client_now_ms()) {
        client_sleep_ms(until - now < 100 ? until - now : 100);
        if (rt->progress && rt->progress(rt->progress_user, rt->done, rt->total) != 0)
            return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET,
                             "canceled while waiting to retry (%s)", why);
    }
    return PEMN_OK;
}

int64_t client_parse_retry_after(const char *v)
{
    if (!v || !*v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (errno || *end || s > 86400ull * 365)
            return -1;
        return (int64_t)s * 1000;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    time_t now = time(NULL);
    return t <= now ? 0 : (int64_t)(t - now) * 1000;
}

/* ---- request plumbing ----------------------------------------------------------------- */
static void hdr_copy(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

size_t client_header_cb(char *buf, size_t size, size_t n, void *user)
{
    struct client_hdrs *h = user;
    size_t len = size * n;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        memset(h, 0, sizeof *h); /* a new response (after 100 Continue, ...) */
        return len;
    }
    static const struct {
        const char *name;
        size_t off, cap;
    } want[] = {
        {"content-range:", offsetof(struct client_hdrs, content_range), 128},
        {"retry-after:", offsetof(struct client_hdrs, retry_after), 128},
        {"etag:", offsetof(struct client_hdrs, etag), 160},
        {"content-type:", offsetof(struct client_hdrs, content_type), 128},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t k = strlen(want[i].name);
        if (len > k && !strncasecmp(buf, want[i].name, k))
            hdr_copy((char *)h + want[i].off, want[i].cap, buf + k, len - k);
    }
    return len;
}

pemn_rc client_curl_setup(pemn_client *c, const char *url, const struct client_retry *rt,
                          struct pemn_err *err)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    uint64_t left = client_retry_left(rt);
    if (!left)
        return proto_err(err, PEMN_ETIMEOUT, PEMN_NO_OFFSET, "deadline reached");
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, c->ua) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, c->follow ? 1L : 0L) != CURLE_OK;
    if (c->follow) {
        bad |= curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    }
    bad |= curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L) != CURLE_OK;
    uint64_t ct = c->o.connect_timeout_ms < left ? c->o.connect_timeout_ms : left;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ct) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left > LONG_MAX ? LONG_MAX : left)) !=
           CURLE_OK;
    long stall_s = (long)((c->o.stall_timeout_ms + 999) / 1000);
    bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)c->o.stall_bytes_per_s) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s) != CURLE_OK;
    if (c->o.max_recv_bytes_per_s)
        bad |= curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE,
                                (curl_off_t)c->o.max_recv_bytes_per_s) != CURLE_OK;
    /* the token goes only to the registry itself, never to a package_url elsewhere */
    size_t bl = strlen(c->base);
    bool same_origin = !strncmp(url, c->base, bl) && (url[bl] == '/' || url[bl] == '\0');
    if (c->token && same_origin) {
        bad |= curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, c->token) != CURLE_OK;
    } else if (c->userpwd && same_origin) {
        bad |= curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd) != CURLE_OK;
    }
    if (bad)
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "libcurl rejected an option");
    return PEMN_OK;
}

static void wipe_free(char **p)
{
    if (*p) {
        sodium_memzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

pemn_rc client_set_auth(pemn_client *c, const char *bearer, const char *userpwd,
                        struct pemn_err *err)
{
    if ((bearer && strpbrk(bearer, "\r\n")) || (userpwd && strpbrk(userpwd, "\r\n")))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "credentials contain a line break");
    wipe_free(&c->token);
    wipe_free(&c->userpwd);
    c->token = bearer ? strdup(bearer) : NULL;
    c->userpwd = userpwd ? strdup(userpwd) : NULL;
    c->o.token = c->token;
    if ((bearer && !c->token) || (userpwd && !c->userpwd))
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    return PEMN_OK;
}

char *client_url(const pemn_client *c, const char *path)
{
    if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8))
        return strdup(path);
    size_t n = strlen(c->base) + strlen(path) + 2;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "%s%s%s", c->base, path[0] == '/' ? "" : "/", path);
    return u;
}

bool client_status_retryable(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505);
}

static const struct {
    const char *code;
    pemn_rc rc;
} code_map[] = {
    {"bad_request", PEMN_EINVAL},
    {"unauthorized", PEMN_EAUTH},
    {"forbidden", PEMN_EAUTH},
    {"not_found", PEMN_ENOTFOUND},
    {"conflict", PEMN_ECONFLICT},
    {"release_not_newer", PEMN_ECONFLICT},
    {"too_large", PEMN_ETOOBIG},
    {"corrupt", PEMN_ECORRUPT},
    {"bad_signature", PEMN_EBADSIG},
    {"untrusted", PEMN_EUNTRUSTED},
    {"name_mismatch", PEMN_EINVAL},
    {"method_not_allowed", PEMN_EHTTP},
    {"unavailable", PEMN_EHTTP},
    {"internal", PEMN_EHTTP},
    {"range_not_satisfiable", PEMN_EHTTP},
};

static pemn_rc rc_for_status(long status)
{
    switch (status) {
    case 400:
        return PEMN_EINVAL;
    case 401:
    case 403:
        return PEMN_EAUTH;
    case 404:
    case 410:
        return PEMN_ENOTFOUND;
    case 409:
        return PEMN_ECONFLICT;
    case 413:
        return PEMN_ETOOBIG;
    default:
        return PEMN_EHTTP;
    }
}

/* Keeps printable ASCII only: a hostile server must not inject terminal escapes. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

pemn_rc client_status_error(long status, const char *body, size_t len, const char *what,
                            struct pemn_err *err)
{
    pemn_rc rc = rc_for_status(status);
    char code[64] = "", msg[160] = "";
    if (body && len) {
        json_t *j = json_loadb(body, len, 0, NULL);
        json_t *e = j ? json_object_get(j, "error") : NULL;
        const char *jc = json_string_value(json_object_get(e, "code"));
        const char *jm = json_string_value(json_object_get(e, "message"));
        if (jc) {
            snprintf(code, sizeof code, "%s", jc);
            for (size_t i = 0; i < sizeof code_map / sizeof code_map[0]; i++)
                if (!strcmp(code_map[i].code, jc))
                    rc = code_map[i].rc;
        }
        if (jm)
            snprintf(msg, sizeof msg, "%s", jm);
        json_decref(j);
    }
    sanitize(code);
    sanitize(msg);
    if (code[0])
        return proto_err(err, rc, PEMN_NO_OFFSET, "HTTP %ld %s: %s (%s)", status, code,
                         msg[0] ? msg : "-", what);
    return proto_err(err, rc, PEMN_NO_OFFSET, "HTTP %ld (%s)", status, what);
}

/* ---- JSON requests -------------------------------------------------------------------- */
struct membuf {
    char *p;
    size_t len, cap, max;
    bool overflow;
};

static size_t membuf_write(char *data, size_t size, size_t n, void *user)
{
    struct membuf *b = user;
    size_t len = size * n;
    if (b->len + len > b->max) {
        b->overflow = true;
        return 0;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

struct upload {
    const uint8_t *p;
    size_t len, pos;
    pemn_progress_fn progress;
    void *user;
    bool canceled;
};

static size_t upload_read(char *buf, size_t size, size_t n, void *user)
{
    struct upload *u = user;
    size_t want = size * n, left = u->len - u->pos;
    if (want > left)
        want = left;
    memcpy(buf, u->p + u->pos, want);
    u->pos += want;
    return want;
}

static int upload_progress(void *user, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
                           curl_off_t uln)
{
    struct upload *u = user;
    if (u->progress && u->progress(u->user, (uint64_t)uln, (uint64_t)u->len) != 0) {
        u->canceled = true;
        return 1;
    }
    return 0;
}

static struct client_memo *memo_find(pemn_client *c, const char *url)
{
    for (unsigned i = 0; i < CLIENT_MEMO_MAX; i++)
        if (c->memo[i].url && !strcmp(c->memo[i].url, url))
            return &c->memo[i];
    return NULL;
}

static void memo_put(pemn_client *c, const char *url, const char *etag, const char *body,
                     size_t len)
{
    struct client_memo *m = memo_find(c, url);
    if (!m) {
        m = &c->memo[c->memo_next];
        c->memo_next = (c->memo_next + 1) % CLIENT_MEMO_MAX;
    }
    char *u = strdup(url), *e = strdup(etag), *b = malloc(len + 1);
    if (!u || !e || !b) {
        free(u);
        free(e);
        free(b);
        return;
    }
    memcpy(b, body, len);
    b[len] = '\0';
    free(m->url);
    free(m->etag);
    free(m->body);
    m->url = u;
    m->etag = e;
    m->body = b;
    m->len = len;
}

pemn_rc client_json(pemn_client *c, const struct client_json_req *rq, long *status, json_t **out,
                    struct pemn_err *err)
{
    *out = NULL;
    char *url = client_url(c, rq->path);
    if (!url)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    char what[PEMN_URL_BUF / 2];
    snprintf(what, sizeof what, "%s %s", rq->method, rq->path);
    bool is_get = !strcmp(rq->method, "GET");
    struct client_retry rt;
    client_retry_init(c, &rt);
    if (rq->progress) {
        rt.progress = rq->progress;
        rt.progress_user = rq->progress_user;
    }
    pemn_rc rc;
    for (;;) {
        struct membuf mb = {.max = c->o.max_json_bytes};
        struct client_hdrs hd = {0};
        struct upload up = {.p = rq->body,
                            .len = rq->body_len,
                            .progress = rq->progress,
                            .user = rq->progress_user};
        struct curl_slist *hl = NULL, *tmp;
        char line[256];
        rc = client_curl_setup(c, url, &rt, err);
        if (rc) {
            free(url);
            return rc;
        }
        CURL *h = c->curl;
        struct client_memo *m = is_get ? memo_find(c, url) : NULL;
        if (m) {
            snprintf(line, sizeof line, "If-None-Match: %s", m->etag);
            if ((tmp = curl_slist_append(hl, line)))
                hl = tmp;
        }
        if ((tmp = curl_slist_append(hl, "Accept: application/json")))
            hl = tmp;
        if (rq->content_type) {
            snprintf(line, sizeof line, "Content-Type: %s", rq->content_type);
            if ((tmp = curl_slist_append(hl, line)))
                hl = tmp;
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, membuf_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &mb);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, client_header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
        if (!strcmp(rq->method, "PUT")) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
            curl_easy_setopt(h, CURLOPT_READDATA, &up);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
            if (rq->progress) {
                curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
                curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, upload_progress);
                curl_easy_setopt(h, CURLOPT_XFERINFODATA, &up);
            }
        } else if (strcmp(rq->method, "GET") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
        }
        rt.tries++;
        CURLcode cc = curl_easy_perform(h);
        curl_slist_free_all(hl);
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        if (up.canceled) {
            free(mb.p);
            free(url);
            return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "canceled (%s)", what);
        }
        if (mb.overflow) {
            free(mb.p);
            free(url);
            return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                             "response larger than %u bytes (%s)", c->o.max_json_bytes, what);
        }
        char why[PEMN_ERR_MSG_MAX];
        if (cc != CURLE_OK) {
            free(mb.p);
            snprintf(why, sizeof why, "%.150s: %.90s", what, curl_easy_strerror(cc));
            rc = client_retry_wait(c, &rt, false, -1, PEMN_EHTTP, why, err);
            if (rc) {
                free(url);
                return rc;
            }
            continue;
        }
        if (client_status_retryable(st)) {
            int64_t ra = client_parse_retry_after(hd.retry_after);
            struct pemn_err e1;
            pemn_rc final = client_status_error(st, mb.p, mb.len, what, &e1);
            snprintf(why, sizeof why, "%.255s", e1.msg);
            free(mb.p);
            rc = client_retry_wait(c, &rt, false, ra, final, why, err);
            if (rc) {
                free(url);
                return rc;
            }
            continue;
        }
        *status = st;
        if (st == 304 && m) {
            json_t *j = json_loadb(m->body, m->len, 0, NULL);
            free(mb.p);
            free(url);
            if (!j)
                return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "remembered body unreadable");
            *status = 200;
            *out = j;
            return PEMN_OK;
        }
        if (st < 200 || st > 299) {
            rc = client_status_error(st, mb.p, mb.len, what, err);
            free(mb.p);
            free(url);
            return rc;
        }
        if (st == 204 || mb.len == 0) {
            free(mb.p);
            free(url);
            return PEMN_OK;
        }
        json_error_t je;
        json_t *j = json_loadb(mb.p, mb.len, 0, &je);
        if (!j) {
            free(mb.p);
            free(url);
            return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET,
                             "response is not JSON (%s): %.80s at line %d", what, je.text, je.line);
        }
        if (is_get && hd.etag[0])
            memo_put(c, url, hd.etag, mb.p, mb.len);
        free(mb.p);
        free(url);
        *out = j;
        return PEMN_OK;
    }
}
