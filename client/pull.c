/*
 * client/pull.c — fetching a package: resumable, hashed-while-streaming download into
 * "<dest>.part", verification, and atomic install (fsync, rename, fsync dir).
 *
 * The .part file always holds exactly the bytes fed to the running SHA-256 state, so a
 * resume appends to both; a restart truncates both. A .part left by an interrupted run is
 * re-hashed and resumed; if the result then fails the digest, the download is redone once
 * from byte 0 before giving up (the old prefix may have come from another package).
 */
#include "client/client_int.h"
#include "proto/err.h"
#include "proto/fsutil.h"

#include <pemn/pkg.h>
#include <pemn/trust.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum body_mode { BODY_FILE, BODY_ERR, BODY_REJECT };

struct dl {
    pemn_client *c;
    int fd;
    crypto_hash_sha256_state sha;
    uint64_t have;     /* bytes in .part == bytes hashed */
    uint64_t expect;   /* announced size, 0 = unknown */
    uint64_t total;    /* size learned from the response, 0 = unknown */
    uint64_t req_from; /* Range start of the running request */
    bool decided;      /* status of the running response examined */
    enum body_mode mode;
    bool bad_range, canceled;
    pemn_rc abort_rc;
    char abort_msg[200];
    char *errbody;
    size_t errlen;
    struct client_hdrs hd;
    pemn_progress_fn progress;
    void *user;
    struct pemn_fetch_stats *st;
};

static pemn_rc restart_file(struct dl *d)
{
    if (ftruncate(d->fd, 0) != 0)
        return PEMN_EIO;
    d->have = 0;
    crypto_hash_sha256_init(&d->sha);
    d->st->restarts++;
    return PEMN_OK;
}

/* digits only, no sign or space, no overflow; advances *p */
static bool parse_dec(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return true;
}

bool client_parse_content_range(const char *v, uint64_t *a, uint64_t *b, uint64_t *t)
{
    uint64_t x, y, z;
    if (strncmp(v, "bytes ", 6) != 0)
        return false;
    v += 6;
    if (!parse_dec(&v, &x) || *v++ != '-' || !parse_dec(&v, &y) || *v++ != '/' ||
        !parse_dec(&v, &z) || *v != '\0')
        return false;
    if (x > y || y >= z)
        return false;
    *a = x;
    *b = y;
    *t = z;
    return true;
}

static void set_abort(struct dl *d, pemn_rc rc, const char *msg)
{
    d->abort_rc = rc;
    snprintf(d->abort_msg, sizeof d->abort_msg, "%s", msg);
}

/* Examines the status of the response whose body is about to arrive. */
static void decide(struct dl *d)
{
    d->decided = true;
    long status = 0;
    curl_easy_getinfo(d->c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
        d->mode = BODY_FILE;
        if (d->req_from > 0 && restart_file(d) != PEMN_OK) {
            set_abort(d, PEMN_EIO, "cannot truncate the .part file");
            d->mode = BODY_REJECT;
            return;
        }
        curl_off_t cl = -1;
        curl_easy_getinfo(d->c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl >= 0 && d->expect && (uint64_t)cl != d->expect) {
            char m[200];
            snprintf(m, sizeof m, "server sends %" PRId64 " bytes, the registry announced %" PRIu64,
                     (int64_t)cl, d->expect);
            set_abort(d, PEMN_EDIGEST, m);
            d->mode = BODY_REJECT;
            return;
        }
        if (!d->expect && cl < 0) {
            /* nothing announced the size: never accept an unbounded stream */
            set_abort(d, PEMN_EHTTP,
                      "neither the registry nor the server gave the package size; refusing an "
                      "unbounded download");
            d->mode = BODY_REJECT;
            return;
        }
        d->total = d->expect ? d->expect : (uint64_t)cl;
    } else if (status == 206) {
        uint64_t a, b, t;
        if (!client_parse_content_range(d->hd.content_range, &a, &b, &t) || a != d->req_from ||
            b + 1 != t || (d->expect && t != d->expect)) {
            d->bad_range = true; /* not the continuation we asked for: start over */
            d->mode = BODY_REJECT;
            return;
        }
        d->mode = BODY_FILE;
        d->total = t;
        if (d->req_from > 0)
            d->st->resumes++;
    } else {
        d->mode = BODY_ERR;
    }
}

static size_t dl_write(char *data, size_t size, size_t n, void *user)
{
    struct dl *d = user;
    size_t len = size * n;
    if (!d->decided)
        decide(d);
    d->st->bytes_received += len;
    if (d->mode == BODY_REJECT)
        return 0;
    if (d->mode == BODY_ERR) {
        size_t keep = d->errlen + len > CLIENT_ERRBODY_MAX ? CLIENT_ERRBODY_MAX - d->errlen : len;
        if (keep) {
            char *p = realloc(d->errbody, d->errlen + keep + 1);
            if (!p)
                return 0;
            memcpy(p + d->errlen, data, keep);
            d->errlen += keep;
            p[d->errlen] = '\0';
            d->errbody = p;
        }
        return len;
    }
    uint64_t limit = d->total ? d->total : d->c->o.max_package_size;
    if (d->have + len > limit) {
        char m[200];
        snprintf(m, sizeof m, "server sent more than the %" PRIu64 " bytes announced", limit);
        set_abort(d, d->total ? PEMN_EDIGEST : PEMN_ETOOBIG, m);
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = pwrite(d->fd, data + off, len - off, (off_t)(d->have + off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            char m[200];
            snprintf(m, sizeof m, "write .part: %s", strerror(errno));
            set_abort(d, PEMN_EIO, m);
            return 0;
        }
        off += (size_t)w;
    }
    crypto_hash_sha256_update(&d->sha, (const unsigned char *)data, len);
    d->have += len;
    return len;
}

static int dl_xferinfo(void *user, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    struct dl *d = user;
    if (d->progress && d->progress(d->user, d->have, d->total ? d->total : d->expect) != 0) {
        d->canceled = true;
        return 1;
    }
    return 0;
}

/* One download loop: until the .part holds the whole body or the budget is spent. */
static pemn_rc download(struct dl *d, const char *url, struct pemn_err *err)
{
    pemn_client *c = d->c;
    struct client_retry rt;
    client_retry_init(c, &rt);
    rt.progress = d->progress;
    rt.progress_user = d->user;
    char why[PEMN_ERR_MSG_MAX];
    for (;;) {
        if (d->expect && d->have == d->expect)
            return PEMN_OK;
        pemn_rc rc = client_curl_setup(c, url, &rt, err);
        if (rc)
            return rc;
        CURL *h = c->curl;
        struct curl_slist *hl = NULL;
        char range[64];
        if (d->have > 0) {
            snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-", d->have);
            hl = curl_slist_append(NULL, range);
            if (!hl)
                return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, dl_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, d);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, client_header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &d->hd);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, dl_xferinfo);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
        d->req_from = d->have;
        d->decided = false;
        d->mode = BODY_FILE;
        d->bad_range = false;
        free(d->errbody);
        d->errbody = NULL;
        d->errlen = 0;
        memset(&d->hd, 0, sizeof d->hd);
        uint64_t before = d->have;
        uint32_t restarts_before = d->st->restarts;
        rt.tries++;
        d->st->requests++;
        CURLcode cc = curl_easy_perform(h);
        curl_slist_free_all(hl);
        if (d->canceled)
            return proto_err(err, PEMN_ECANCELED, d->have, "canceled at byte %" PRIu64, d->have);
        if (d->abort_rc)
            return proto_err(err, d->abort_rc, d->have, "%s", d->abort_msg);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (!d->decided && status)
            decide(d); /* empty body */
        if (d->abort_rc)
            return proto_err(err, d->abort_rc, d->have, "%s", d->abort_msg);
        bool progressed = d->have > before && d->st->restarts == restarts_before;
        rt.done = d->have;
        rt.total = d->total ? d->total : d->expect;
        if (d->bad_range) {
            snprintf(why, sizeof why, "server answered Range: bytes=%" PRIu64 "- with '%.60s'",
                     d->req_from, d->hd.content_range);
            if (restart_file(d) != PEMN_OK)
                return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "cannot truncate .part");
            rc = client_retry_wait(c, &rt, false, -1, PEMN_EHTTP, why, err);
            if (rc)
                return rc;
            continue;
        }
        if (d->mode == BODY_ERR && status) {
            if (status == 416 && d->req_from > 0) {
                snprintf(why, sizeof why, "server refused Range from byte %" PRIu64, d->req_from);
                if (restart_file(d) != PEMN_OK)
                    return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "cannot truncate .part");
                rc = client_retry_wait(c, &rt, false, -1, PEMN_EHTTP, why, err);
                if (rc)
                    return rc;
                continue;
            }
            struct pemn_err e1;
            pemn_rc final = client_status_error(status, d->errbody, d->errlen, "GET package", &e1);
            if (!client_status_retryable(status))
                return proto_err(err, final, PEMN_NO_OFFSET, "%s", e1.msg);
            snprintf(why, sizeof why, "%.255s", e1.msg);
            rc = client_retry_wait(c, &rt, false, client_parse_retry_after(d->hd.retry_after),
                                   final, why, err);
            if (rc)
                return rc;
            continue;
        }
        if (cc != CURLE_OK) {
            /* below the minimum rate (or past the deadline): not progress, however many bytes
             * trickled in, so a slow registry cannot keep a download alive */
            bool slow = cc == CURLE_OPERATION_TIMEDOUT;
            snprintf(why, sizeof why, "%s at byte %" PRIu64 "%s", curl_easy_strerror(cc), d->have,
                     slow ? " (below the minimum transfer rate)" : "");
            rc = client_retry_wait(c, &rt, progressed && !slow, -1,
                                   slow ? PEMN_ETIMEOUT : PEMN_EHTTP, why, err);
            if (rc)
                return rc;
            continue;
        }
        if (d->total && d->have < d->total) {
            snprintf(why, sizeof why, "connection closed at byte %" PRIu64 " of %" PRIu64, d->have,
                     d->total);
            rc = client_retry_wait(c, &rt, progressed, -1, PEMN_EHTTP, why, err);
            if (rc)
                return rc;
            continue;
        }
        if (d->expect && d->have != d->expect)
            return proto_err(err, PEMN_EDIGEST, d->have,
                             "received %" PRIu64 " bytes, the registry announced %" PRIu64, d->have,
                             d->expect);
        return PEMN_OK;
    }
}

/* ---- verification and install --------------------------------------------------------- */
/* The release record of the cache (releases.c): refuse a release below the highest one
 * installed for the model, unless the caller allows a downgrade. */
static pemn_rc check_recorded(pemn_client *c, const char *model, uint64_t release,
                              const struct pemn_fetch_options *o, struct pemn_err *err)
{
    uint64_t have;
    if ((o && (o->flags & PEMN_FETCH_ALLOW_DOWNGRADE)) ||
        client_release_get(c, model, &have) != PEMN_OK || release >= have)
        return PEMN_OK;
    return proto_err(err, PEMN_EROLLBACK, PEMN_NO_OFFSET,
                     "release %" PRIu64 " of %.64s is below release %" PRIu64
                     " already installed through this cache (allow a downgrade to take it)",
                     release, model, have);
}

static pemn_rc verify_pkg(pemn_client *c, const char *path, const struct pemn_resolved *r,
                          const struct pemn_fetch_options *o, uint64_t *release_out,
                          char model_out[PEMN_LABEL_BUF], struct pemn_err *err)
{
    pemn_pkg *pkg;
    pemn_rc rc = pemn_pkg_open_file(path, 0, &pkg, err);
    if (rc)
        return rc;
    if (o && (o->flags & PEMN_FETCH_SIGNATURES_ONLY)) {
        rc = pemn_pkg_verify_signatures(pkg, err); /* the caller decides trust */
    } else {
        if (c->o.trusted || !c->o.root)
            rc = pemn_pkg_verify(pkg, c->o.trusted, err);
        if (!rc && c->o.root) {
            rc = pemn_root_check_expiry(c->o.root, (int64_t)time(NULL), err);
            if (!rc)
                rc = pemn_root_check_package(c->o.root, r->model[0] ? r->model : NULL, pkg, err);
        }
    }
    if (rc) {
        pemn_pkg_free(pkg);
        return rc;
    }
    struct pemn_pkg_info info;
    rc = pemn_pkg_info(pkg, &info);
    if (rc) {
        pemn_pkg_free(pkg);
        return proto_err(err, rc, PEMN_NO_OFFSET, "cannot read the package manifest");
    }
    if ((r->model[0] && strcmp(r->model, info.name) != 0) ||
        (r->version[0] && strcmp(r->version, info.version) != 0) ||
        (r->release && r->release != info.release)) {
        rc = proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                       "package is %.64s %.64s (release %" PRIu64
                       ") but the registry announced %.64s %.64s (release %" PRIu64 ")",
                       info.name, info.version, info.release, r->model, r->version, r->release);
    } else if (o && o->min_release && info.release < o->min_release) {
        rc = proto_err(err, PEMN_EROLLBACK, PEMN_NO_OFFSET,
                       "package %.64s %.64s has release %" PRIu64 ", below the minimum %" PRIu64,
                       info.name, info.version, info.release, o->min_release);
    } else {
        rc = check_recorded(c, info.name, info.release, o, err); /* the signed release */
    }
    *release_out = info.release;
    snprintf(model_out, PEMN_LABEL_BUF, "%s", info.name);
    pemn_pkg_free(pkg);
    return rc;
}

static pemn_rc install(const char *part, const char *dest, struct pemn_err *err)
{
    int fd = open(part, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", part, strerror(e));
    }
    close(fd);
    if (rename(part, dest) != 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename to %s: %s", dest, strerror(errno));
    return client_fsync_dir_of(dest, err);
}

static bool keep_part(pemn_rc rc)
{
    /* transport trouble: the bytes so far are worth resuming next time */
    return rc == PEMN_EHTTP || rc == PEMN_ETIMEOUT || rc == PEMN_ECANCELED;
}

/* Downloads r into part (opened and locked here), checking the digest. */
static pemn_rc fetch_to_part(pemn_client *c, const struct pemn_resolved *r, const char *part,
                             const uint8_t want[PEMN_DIGEST_BYTES],
                             const struct pemn_fetch_options *o, struct pemn_fetch_stats *st,
                             bool *busy, struct pemn_err *err)
{
    char *url = client_url(c, r->package_url);
    if (!url)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    int fd = proto_open_regular(part, O_RDWR | O_CREAT, 0644, err); /* no symlink, no FIFO */
    if (fd < 0) {
        free(url);
        return PEMN_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        *busy = true;
        free(url);
        return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                         "%s: another download into this file is running", part);
    }
    struct dl d = {.c = c,
                   .fd = fd,
                   .expect = r->size,
                   .progress = o && o->progress ? o->progress : c->o.progress,
                   .user = o && o->progress ? o->progress_user : c->o.progress_user,
                   .st = st};
    crypto_hash_sha256_init(&d.sha);
    pemn_rc rc = PEMN_OK;
    struct stat sb;
    bool leftover = false;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: not a regular file", part);
    } else if (sb.st_size > 0 && (!d.expect || (uint64_t)sb.st_size <= d.expect)) {
        rc = client_hash_prefix(fd, (uint64_t)sb.st_size, &d.sha, err);
        d.have = (uint64_t)sb.st_size;
        leftover = true;
    } else if (sb.st_size > 0 && ftruncate(fd, 0) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", part, strerror(errno));
    }
    for (int round = 0; !rc; round++) {
        rc = download(&d, url, err);
        if (rc)
            break;
        uint8_t got[PEMN_DIGEST_BYTES];
        crypto_hash_sha256_final(&d.sha, got);
        if (sodium_memcmp(got, want, PEMN_DIGEST_BYTES) == 0)
            break;
        if (leftover && round == 0) {
            /* the prefix from an earlier run was not this package's: once more, cleanly */
            leftover = false;
            if (restart_file(&d) != PEMN_OK)
                rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: truncate failed", part);
            continue;
        }
        char gt[PEMN_DIGEST_TEXT_MAX];
        pemn_digest_format(got, gt);
        rc =
            proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                      "downloaded bytes hash to %s, expected %s; nothing installed", gt, r->digest);
    }
    if (!rc && d.progress)
        d.progress(d.user, d.have, d.have);
    free(d.errbody);
    free(url);
    close(fd);
    return rc;
}

pemn_rc pemn_client_fetch(pemn_client *c, const struct pemn_resolved *r, const char *dest_path,
                          const struct pemn_fetch_options *o, struct pemn_fetch_stats *stats,
                          struct pemn_err *err)
{
    struct pemn_fetch_stats local = {0};
    struct pemn_fetch_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!c || !r || !dest_path || !*dest_path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    uint8_t want[PEMN_DIGEST_BYTES];
    if (pemn_digest_parse(r->digest, want) != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "expected digest is malformed");
    if (r->size > c->o.max_package_size)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                         "package of %" PRIu64 " bytes is above the limit of %" PRIu64, r->size,
                         c->o.max_package_size);
    if (!r->package_url[0])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no package URL");
    size_t n = strlen(dest_path) + 6;
    char *part = malloc(n);
    if (!part)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    snprintf(part, n, "%s.part", dest_path);
    bool use_cache = c->cache_dir && !(o && (o->flags & PEMN_FETCH_NO_CACHE));
    pemn_rc rc;

    /* 0. what the registry says is already older than what this cache installed: refuse
     *    before spending bandwidth (checked again on the signed manifest below) */
    if (r->model[0] && r->release && (rc = check_recorded(c, r->model, r->release, o, err))) {
        free(part);
        return rc;
    }
    uint64_t release = 0;
    char model[PEMN_LABEL_BUF] = "";
    /* 1. dest already holds these bytes: verify (the trust or minimum may differ) */
    uint8_t have[PEMN_DIGEST_BYTES];
    if (client_hash_file(dest_path, have, NULL, NULL) == PEMN_OK &&
        sodium_memcmp(have, want, PEMN_DIGEST_BYTES) == 0) {
        st->from_cache = 1;
        rc = verify_pkg(c, dest_path, r, o, &release, model, err);
        if (!rc && use_cache)
            (void)client_cache_put(c, r->digest, dest_path, NULL);
        goto out;
    }
    /* 2. the cache */
    if (use_cache && client_cache_get(c, r->digest, part, NULL) == PEMN_OK) {
        st->from_cache = 1;
        rc = verify_pkg(c, part, r, o, &release, model, err);
        if (!rc)
            rc = install(part, dest_path, err);
        if (rc)
            unlink(part);
        goto out;
    }
    /* 3. a delta from an older version the client holds (client/delta.c); any failure
     *    falls through to the whole package */
    if (!(o && (o->flags & PEMN_FETCH_NO_DELTA)) && r->package_url[0] == '/') {
        struct pemn_err de;
        if (client_delta_fetch(c, r, dest_path, part, want, o, st, &de) == PEMN_OK) {
            /* the bytes hash to the expected digest: the same checks as a download */
            rc = verify_pkg(c, part, r, o, &release, model, err);
            if (!rc && use_cache)
                (void)client_cache_put(c, r->digest, part, NULL);
            if (!rc)
                rc = install(part, dest_path, err);
            if (rc)
                unlink(part);
            goto out;
        }
        st->delta_used = 0;
        st->delta_bytes = 0;
    }
    /* 4. the network */
    bool busy = false;
    rc = fetch_to_part(c, r, part, want, o, st, &busy, err);
    if (!rc)
        rc = verify_pkg(c, part, r, o, &release, model, err);
    if (!rc && use_cache)
        (void)client_cache_put(c, r->digest, part, NULL);
    if (!rc)
        rc = install(part, dest_path, err);
    if (rc && !busy && !keep_part(rc))
        unlink(part);
out:
    if (!rc && c->cache_dir)
        rc = client_release_note(c, model, release, err);
    free(part);
    return rc;
}

pemn_rc pemn_client_pull(pemn_client *c, const char *name, const char *version, const char *tag,
                         const char *dest_path, const struct pemn_fetch_options *opts,
                         struct pemn_resolved *resolved, struct pemn_fetch_stats *stats,
                         struct pemn_err *err)
{
    struct pemn_resolved local = {0};
    struct pemn_resolved *r = resolved ? resolved : &local;
    pemn_rc rc = pemn_client_resolve(c, name, version, tag, r, err);
    if (rc)
        return rc;
    return pemn_client_fetch(c, r, dest_path, opts, stats, err);
}
