/*
 * client/delta.c — fetching an update as a delta (issue 12; docs/CLIENT.md "Deltas").
 *
 * When the client holds an older version of the model — the file it is given as the base
 * (pemn_fetch_options.base_path), the file at the destination, or an older version of the
 * model in its cache — it asks the registry for GET /v1/blobs/{new}/delta?from={old},
 * receives at most (package size - 1) bytes, rebuilds the package with pemn_delta_apply
 * (which checks OLD's and NEW's digests) and writes it to the .part file. The caller then
 * verifies the result exactly as a downloaded package. Any failure here only means "fetch
 * the full package": nothing is installed from this file alone.
 */
#include "client/client_int.h"

#include "proto/err.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pemn/delta.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BASES 3 /* candidate bases asked for, at most */
/* Patching holds the base, the delta and the result in memory: larger packages (base or
 * new) are fetched whole. */
#define DELTA_MAX_PACKAGE (1ull << 30)

struct membuf {
    uint8_t *p;
    size_t len, cap, max;
    bool over;
};

static size_t mem_write(char *data, size_t size, size_t n, void *user)
{
    struct membuf *m = user;
    size_t k = size * n;
    if (k > m->max - m->len) {
        m->over = true;
        return 0;
    }
    if (m->len + k > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 65536;
        while (cap < m->len + k)
            cap *= 2;
        if (cap > m->max)
            cap = m->max;
        uint8_t *np = realloc(m->p, cap);
        if (!np)
            return 0;
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, data, k);
    m->len += k;
    return k;
}

/* Reads a regular file of at most max bytes into memory. */
static pemn_rc load_file(const char *path, uint64_t max, uint8_t **out, size_t *len)
{
    int fd = proto_open_regular(path, O_RDONLY, 0, NULL);
    if (fd < 0)
        return PEMN_ENOTFOUND;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
        (uint64_t)sb.st_size > max) {
        close(fd);
        return PEMN_ENOTFOUND;
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *b = malloc(n);
    size_t got = 0;
    while (b && got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!b || got != n) {
        free(b);
        return PEMN_EIO;
    }
    *out = b;
    *len = n;
    return PEMN_OK;
}

/* One GET of the delta into memory (bounded). PEMN_ENOTFOUND for a 404 (no delta from
 * this base). */
static pemn_rc get_delta(pemn_client *c, const struct pemn_resolved *r, const char *from,
                         struct membuf *m, struct pemn_fetch_stats *st, struct pemn_err *err)
{
    char path[PEMN_URL_BUF];
    int k = snprintf(path, sizeof path, "/v1/blobs/%s/delta?from=%s", r->digest, from);
    if (k < 0 || (size_t)k >= sizeof path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "delta URL too long");
    char *url = client_url(c, path);
    if (!url)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    struct client_retry rt;
    client_retry_init(c, &rt);
    pemn_rc rc = client_curl_setup(c, url, &rt, err);
    free(url);
    if (rc)
        return rc;
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, m);
    CURLcode cc = curl_easy_perform(h);
    st->requests++;
    st->bytes_received += m->len;
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (m->over)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                         "the delta is not smaller than the package; fetching it whole");
    if (cc != CURLE_OK)
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "delta: %s", curl_easy_strerror(cc));
    if (status != 200)
        return client_status_error(status, (const char *)m->p, m->len, "delta", err);
    return PEMN_OK;
}

/* Tries one base (its bytes); on success *out holds NEW. */
static pemn_rc try_base(pemn_client *c, const struct pemn_resolved *r,
                        const uint8_t want[PEMN_DIGEST_BYTES], const uint8_t *old, size_t old_len,
                        struct pemn_fetch_stats *st, uint8_t **out, size_t *out_len,
                        struct pemn_err *err)
{
    uint8_t od[PEMN_DIGEST_BYTES];
    char from[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256(old, old_len, od);
    if (sodium_memcmp(od, want, PEMN_DIGEST_BYTES) == 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "the base is the package itself");
    pemn_digest_format(od, from);
    struct membuf m = {.max = r->size ? (size_t)(r->size - 1) : (size_t)c->o.max_package_size};
    pemn_rc rc = get_delta(c, r, from, &m, st, err);
    if (!rc)
        rc = pemn_delta_apply(old, old_len, m.p, m.len, out, out_len, err);
    if (!rc) {
        uint8_t got[PEMN_DIGEST_BYTES];
        pemn_sha256(*out, *out_len, got);
        if (sodium_memcmp(got, want, PEMN_DIGEST_BYTES) != 0) {
            free(*out);
            *out = NULL;
            rc = proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                           "the patched package does not hash to %s", r->digest);
        }
    }
    if (!rc) {
        st->delta_used = 1;
        st->delta_bytes = m.len;
    }
    free(m.p);
    return rc;
}

/* Writes the rebuilt package to part (not fsync'ed: the install that follows fsyncs it
 * before the rename). */
static pemn_rc write_part(const char *part, const uint8_t *p, size_t n, struct pemn_err *err)
{
    int fd = proto_open_regular(part, O_WRONLY | O_CREAT | O_TRUNC, 0644, err);
    if (fd < 0)
        return PEMN_EIO;
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(fd, p + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    int e = errno;
    if (close(fd) != 0 || done != n) {
        unlink(part);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", part, strerror(e));
    }
    return PEMN_OK;
}

/* Older versions of the model in the cache, newest first (paths into bases). */
static size_t cache_bases(pemn_client *c, const struct pemn_resolved *r, char bases[][PEMN_URL_BUF],
                          size_t max)
{
    struct pemn_listing *l = NULL;
    if (!c->cache_dir || !r->model[0] || !r->release ||
        pemn_client_list(c, r->model, &l, NULL) != PEMN_OK)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < l->count && n < max; i++) {
        const struct pemn_resolved *v = &l->versions[i];
        if (v->release >= r->release || strcmp(v->digest, r->digest) == 0)
            continue;
        if (pemn_client_cache_path(c, v->digest, bases[n], PEMN_URL_BUF) != PEMN_OK)
            continue;
        if (access(bases[n], R_OK) == 0)
            n++;
    }
    pemn_listing_free(l);
    return n;
}

pemn_rc client_delta_fetch(pemn_client *c, const struct pemn_resolved *r, const char *dest_path,
                           const char *part, const uint8_t want[PEMN_DIGEST_BYTES],
                           const struct pemn_fetch_options *o, struct pemn_fetch_stats *st,
                           struct pemn_err *err)
{
    uint64_t limit =
        c->o.max_package_size < DELTA_MAX_PACKAGE ? c->o.max_package_size : DELTA_MAX_PACKAGE;
    if (r->size > limit)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                         "package above %" PRIu64 " bytes: no delta", limit);
    char bases[MAX_BASES + 2][PEMN_URL_BUF];
    size_t nb = 0;
    if (o && o->base_path && o->base_path[0])
        snprintf(bases[nb++], PEMN_URL_BUF, "%s", o->base_path);
    snprintf(bases[nb++], PEMN_URL_BUF, "%s", dest_path);
    bool use_cache = !(o && (o->flags & PEMN_FETCH_NO_CACHE));
    if (use_cache)
        nb += cache_bases(c, r, bases + nb, MAX_BASES);
    pemn_rc rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no base for a delta");
    unsigned asked = 0;
    for (size_t i = 0; i < nb && asked < MAX_BASES; i++) {
        uint8_t *old = NULL, *out = NULL;
        size_t old_len = 0, out_len = 0;
        if (load_file(bases[i], limit, &old, &old_len) != PEMN_OK)
            continue;
        asked++;
        rc = try_base(c, r, want, old, old_len, st, &out, &out_len, err);
        free(old);
        if (!rc) {
            rc = write_part(part, out, out_len, err);
            free(out);
            return rc;
        }
        if (rc != PEMN_ENOTFOUND && rc != PEMN_EINVAL)
            break; /* a server or transfer problem, or a bad delta: take the full package */
    }
    return rc;
}
