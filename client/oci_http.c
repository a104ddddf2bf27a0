/*
 * client/oci_http.c — talking to an OCI registry: references, requests with retries and
 * bounded bodies, the WWW-Authenticate challenge (Basic, or a Bearer token service), and
 * OCI error bodies.
 */
#include "client/oci_int.h"

#include "proto/err.h"
#include "proto/oci.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- references ------------------------------------------------------------------------ */
static bool host_ok(const char *h, size_t n)
{
    if (n == 0 || n >= PEMN_OCI_HOST_BUF)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
        if (!ok)
            return false;
    }
    return true;
}

static bool repo_ok(const char *repo)
{
    char buf[PEMN_OCI_REPO_BUF];
    snprintf(buf, sizeof buf, "%s", repo);
    if (!buf[0] || buf[strlen(buf) - 1] == '/')
        return false;
    for (char *p = buf, *slash; p; p = slash ? slash + 1 : NULL) {
        slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!proto_oci_valid_repo(p))
            return false;
    }
    return true;
}

pemn_rc pemn_oci_parse_ref(const char *text, struct pemn_oci_ref *out, struct pemn_err *err)
{
    if (!text || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    memset(out, 0, sizeof *out);
    const char *p = text;
    if (!strncmp(p, "oci://", 6))
        p += 6;
    const char *slash = strchr(p, '/');
    if (!slash || !host_ok(p, (size_t)(slash - p)))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "'%.200s': expected oci://HOST[:PORT]/REPO[:TAG|@sha256:...]", text);
    memcpy(out->host, p, (size_t)(slash - p));
    const char *rest = slash + 1;
    size_t rl = strlen(rest);
    const char *at = strchr(rest, '@');
    if (at) {
        char canon[PEMN_DIGEST_TEXT_MAX];
        uint8_t d[PEMN_DIGEST_BYTES];
        if (strlen(at + 1) != 71 || strncmp(at + 1, "sha256:", 7) ||
            pemn_digest_parse(at + 1, d) != PEMN_OK)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "'%.200s': a digest is sha256:<64 hex>", text);
        pemn_digest_format(d, canon);
        memcpy(out->digest, canon, sizeof out->digest);
        rl = (size_t)(at - rest);
    }
    const char *lslash = NULL;
    for (const char *q = rest; q < rest + rl; q++)
        if (*q == '/')
            lslash = q;
    const char *colon =
        memchr(lslash ? lslash : rest, ':', (size_t)(rest + rl - (lslash ? lslash : rest)));
    size_t repo_len = colon ? (size_t)(colon - rest) : rl;
    if (repo_len == 0 || repo_len >= PEMN_OCI_REPO_BUF)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "'%.200s': bad repository", text);
    memcpy(out->repo, rest, repo_len);
    if (!repo_ok(out->repo))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "'%.200s': repository components are lower case "
                         "[a-z0-9]+((.|_|__|-+)[a-z0-9]+)*",
                         text);
    if (colon) {
        size_t tl = (size_t)(rest + rl - colon - 1);
        if (tl == 0 || tl >= PEMN_LABEL_BUF)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "'%.200s': bad tag", text);
        memcpy(out->tag, colon + 1, tl);
        if (!proto_oci_valid_tag(out->tag))
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "'%.200s': a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", text);
    }
    return PEMN_OK;
}

/* ---- session --------------------------------------------------------------------------- */
pemn_rc oci_sess_open(struct oci_sess *s, const char *ref, const struct pemn_oci_options *o,
                      const char *scope, struct pemn_err *err)
{
    memset(s, 0, sizeof *s);
    pemn_rc rc = pemn_oci_parse_ref(ref, &s->ref, err);
    if (rc)
        return rc;
    s->o = o;
    s->scope = scope;
    char base[PEMN_OCI_HOST_BUF + 16];
    snprintf(base, sizeof base, "%s://%s", o->plain_http ? "http" : "https", s->ref.host);
    struct pemn_client_options co = o->client;
    co.token = NULL;
    pemn_rc rc2 = pemn_client_new(base, &co, &s->c, err);
    if (!rc2)
        s->c->follow = true; /* blob GETs may be redirected to storage elsewhere */
    return rc2;
}

void oci_sess_close(struct oci_sess *s)
{
    pemn_client_free(s->c);
    s->c = NULL;
}

void oci_resp_clear(struct oci_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* ---- one request ----------------------------------------------------------------------- */
struct xfer {
    struct oci_resp *r;
    size_t max;
    bool too_big;
    const struct oci_body *body;
    uint64_t sent;
    bool read_err;
};

static void hdr_copy(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t n, void *user)
{
    struct xfer *x = user;
    struct oci_resp *r = x->r;
    size_t len = size * n;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        r->location[0] = r->digest[0] = r->range[0] = r->www[0] = r->ctype[0] = '\0';
        return len;
    }
    static const struct {
        const char *name;
        size_t off, cap;
    } want[] = {
        {"location:", offsetof(struct oci_resp, location), 1024},
        {"docker-content-digest:", offsetof(struct oci_resp, digest), 96},
        {"range:", offsetof(struct oci_resp, range), 96},
        {"www-authenticate:", offsetof(struct oci_resp, www), 1024},
        {"content-type:", offsetof(struct oci_resp, ctype), 160},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t k = strlen(want[i].name);
        if (len > k && !strncasecmp(buf, want[i].name, k))
            hdr_copy((char *)r + want[i].off, want[i].cap, buf + k, len - k);
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    struct xfer *x = user;
    struct oci_resp *r = x->r;
    size_t len = size * n;
    if (r->len + len > x->max) {
        x->too_big = true;
        return 0;
    }
    char *p = realloc(r->body, r->len + len + 1);
    if (!p)
        return 0;
    memcpy(p + r->len, data, len);
    r->len += len;
    p[r->len] = '\0';
    r->body = p;
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *user)
{
    struct xfer *x = user;
    const struct oci_body *b = x->body;
    size_t want = size * n;
    uint64_t left = b->len - x->sent;
    if (want > left)
        want = (size_t)left;
    if (!want)
        return 0;
    if (b->data) {
        memcpy(buf, b->data + x->sent, want);
    } else {
        ssize_t got;
        do
            got = pread(b->fd, buf, want, (off_t)(b->offset + x->sent));
        while (got < 0 && errno == EINTR);
        if (got <= 0) {
            x->read_err = true;
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)got;
    }
    x->sent += want;
    return want;
}

/* ---- errors ---------------------------------------------------------------------------- */
pemn_rc oci_status_error(const struct oci_resp *r, const char *what, struct pemn_err *err)
{
    long st = r->status;
    pemn_rc rc = st == 401 || st == 403                             ? PEMN_EAUTH
                 : st == 404                                        ? PEMN_ENOTFOUND
                 : st == 409                                        ? PEMN_ECONFLICT
                 : st == 413                                        ? PEMN_ETOOBIG
                 : st == 400 || st == 405 || st == 415 || st == 416 ? PEMN_EINVAL
                                                                    : PEMN_EHTTP;
    const char *code = "", *msg = "";
    json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    if (json_is_object(e0)) {
        code = json_string_value(json_object_get(e0, "code")) ?: "";
        msg = json_string_value(json_object_get(e0, "message")) ?: "";
        /* pemnd says why a push was refused in detail.pemn_code */
        const char *pc =
            json_string_value(json_object_get(json_object_get(e0, "detail"), "pemn_code"));
        if (pc) {
            static const struct {
                const char *code;
                pemn_rc rc;
            } m[] = {{"untrusted", PEMN_EUNTRUSTED}, {"bad_signature", PEMN_EBADSIG},
                     {"corrupt", PEMN_ECORRUPT},     {"release_not_newer", PEMN_EROLLBACK},
                     {"conflict", PEMN_ECONFLICT},   {"name_mismatch", PEMN_ECONFLICT}};
            for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
                if (!strcmp(pc, m[i].code))
                    rc = m[i].rc;
        }
    }
    pemn_rc out = proto_err(err, rc, PEMN_NO_OFFSET, "HTTP %ld %s%s%.150s (%s)", st, code,
                            code[0] ? ": " : "", msg, what);
    json_decref(j);
    return out;
}

/* ---- the challenge --------------------------------------------------------------------- */
/* Value of key="value" (or key=value) in a challenge's parameter list. */
static bool chal_param(const char *params, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = params; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *eq = strchr(p, '=');
        if (!eq)
            return false;
        bool hit = (size_t)(eq - p) == kl && !strncasecmp(p, key, kl);
        const char *v = eq + 1, *end;
        if (*v == '"') {
            v++;
            end = strchr(v, '"');
            if (!end)
                return false;
        } else {
            end = v + strcspn(v, ",");
        }
        if (hit) {
            size_t n = (size_t)(end - v);
            if (n >= cap)
                return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = *end == '"' ? end + 1 : end;
    }
    return false;
}

static pemn_rc bearer_token(struct oci_sess *s, const char *params, const char *userpwd,
                            struct pemn_err *err)
{
    char realm[512], service[256] = "";
    if (!chal_param(params, "realm", realm, sizeof realm) ||
        (strncmp(realm, "http://", 7) && strncmp(realm, "https://", 8)))
        return proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "Bearer challenge without a realm URL");
    chal_param(params, "service", service, sizeof service);
    CURL *h = curl_easy_init();
    if (!h)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    char scope[PEMN_OCI_REPO_BUF + 64];
    snprintf(scope, sizeof scope, "repository:%s:%s", s->ref.repo, s->scope);
    char *es = curl_easy_escape(h, scope, 0), *ev = curl_easy_escape(h, service, 0);
    char url[2048];
    snprintf(url, sizeof url, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
             ev ? ev : "", es ? es : "");
    curl_free(es);
    curl_free(ev);
    struct oci_resp r = {0};
    struct xfer x = {.r = &r, .max = 1u << 20};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->c->o.connect_timeout_ms * 3);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    if (userpwd) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(h);
    pemn_rc rc;
    if (cc != CURLE_OK) {
        rc = proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "token service %s: %s", realm,
                       curl_easy_strerror(cc));
    } else if (r.status != 200) {
        rc = oci_status_error(&r, "token service", err);
        if (rc != PEMN_EAUTH)
            rc = proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "token service answered %ld", r.status);
    } else {
        json_t *j = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok)
            tok = json_string_value(json_object_get(j, "access_token"));
        rc = tok ? client_set_auth(s->c, tok, NULL, err)
                 : proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "token service sent no token");
        json_decref(j);
    }
    if (r.body)
        sodium_memzero(r.body, r.len);
    oci_resp_clear(&r);
    return rc;
}

/* Answers a 401's challenge: sets the session's credentials. */
static pemn_rc answer_challenge(struct oci_sess *s, const char *www, struct pemn_err *err)
{
    const struct pemn_oci_options *o = s->o;
    char *userpwd = NULL;
    if (o->username || o->password) {
        size_t n =
            strlen(o->username ? o->username : "") + strlen(o->password ? o->password : "") + 2;
        userpwd = malloc(n);
        if (!userpwd)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        snprintf(userpwd, n, "%s:%s", o->username ? o->username : "",
                 o->password ? o->password : "");
    }
    pemn_rc rc;
    if (!strncasecmp(www, "Bearer ", 7)) {
        rc = bearer_token(s, www + 7, userpwd, err);
    } else if (!strncasecmp(www, "Basic", 5)) {
        rc = userpwd ? client_set_auth(s->c, NULL, userpwd, err)
                     : proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET,
                                 "the registry asks for credentials (set PEMN_OCI_USERNAME and "
                                 "PEMN_OCI_PASSWORD, or a credentials file)");
    } else {
        rc = proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "unsupported challenge '%.60s'", www);
    }
    if (userpwd) {
        sodium_memzero(userpwd, strlen(userpwd));
        free(userpwd);
    }
    if (!rc)
        s->authed = true;
    return rc;
}

/* ---- requests with retries ------------------------------------------------------------- */
static bool status_in(long st, const long *list)
{
    for (; list && *list; list++)
        if (*list == st)
            return true;
    return false;
}

pemn_rc oci_request(struct oci_sess *s, const char *method, const char *url, const char *accept,
                    const struct oci_body *body, size_t max, const long *ok_statuses,
                    struct oci_resp *r, struct pemn_err *err)
{
    pemn_client *c = s->c;
    if (max < CLIENT_ERRBODY_MAX)
        max = CLIENT_ERRBODY_MAX; /* room for an error body */
    struct client_retry rt;
    client_retry_init(c, &rt);
    char *full = client_url(c, url);
    if (!full)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    bool challenged = false;
    pemn_rc rc;
    char why[PEMN_ERR_MSG_MAX];
    for (;;) {
        oci_resp_clear(r);
        if ((rc = client_curl_setup(c, full, &rt, err)))
            break;
        CURL *h = c->curl;
        struct xfer x = {.r = r, .max = max, .body = body};
        struct curl_slist *hl = NULL, *t;
        char line[300];
        if (accept) {
            snprintf(line, sizeof line, "Accept: %s", accept);
            if ((t = curl_slist_append(hl, line)))
                hl = t;
        }
        if (body && body->content_type) {
            snprintf(line, sizeof line, "Content-Type: %s", body->content_type);
            if ((t = curl_slist_append(hl, line)))
                hl = t;
        }
        if (body && body->content_range) {
            snprintf(line, sizeof line, "Content-Range: %s", body->content_range);
            if ((t = curl_slist_append(hl, line)))
                hl = t;
        }
        if ((t = curl_slist_append(hl, "Expect:"))) /* no 100-continue round trip */
            hl = t;
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        if (!strcmp(method, "HEAD")) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (body) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, &x);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body->len);
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        } else if (strcmp(method, "GET")) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
            if (!strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
            }
        }
        rt.tries++;
        CURLcode cc = curl_easy_perform(h);
        curl_slist_free_all(hl);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (x.too_big) {
            rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%s %s: response over %zu bytes",
                           method, url, max);
            break;
        }
        if (x.read_err) {
            rc =
                proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "reading the upload: %s", strerror(errno));
            break;
        }
        if (cc != CURLE_OK) {
            snprintf(why, sizeof why, "%s %.200s: %s", method, url, curl_easy_strerror(cc));
            if ((rc = client_retry_wait(c, &rt, false, -1, PEMN_EHTTP, why, err)))
                break;
            continue;
        }
        if (r->status == 401 && !challenged && r->www[0]) {
            challenged = true;
            if ((rc = answer_challenge(s, r->www, err)))
                break;
            continue;
        }
        if ((r->status >= 200 && r->status < 400) || status_in(r->status, ok_statuses)) {
            rc = PEMN_OK;
            break;
        }
        if (client_status_retryable(r->status)) {
            snprintf(why, sizeof why, "%s %.200s: HTTP %ld", method, url, r->status);
            if ((rc = client_retry_wait(c, &rt, false, -1, PEMN_EHTTP, why, err)))
                break;
            continue;
        }
        char what[300];
        snprintf(what, sizeof what, "%s %.200s", method, url);
        rc = oci_status_error(r, what, err);
        break;
    }
    free(full);
    return rc;
}
