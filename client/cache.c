/*
 * client/cache.c — file helpers (hashing, fsync, copy) and the content-addressed cache:
 * CACHE/blobs/sha256/<64 hex>, holding verified packages only. Entries are written to a
 * temporary name and renamed in, so a reader never sees a partial entry; every hit is
 * re-hashed before use, so a damaged entry is detected, removed and downloaded again.
 */
#include "client/client_int.h"
#include "proto/err.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_CHUNK (1u << 20)

/* ---- files ---------------------------------------------------------------------------- */
pemn_rc client_hash_prefix(int fd, uint64_t len, void *sha_state, struct pemn_err *err)
{
    crypto_hash_sha256_state *st = sha_state;
    uint8_t *buf = malloc(IO_CHUNK);
    if (!buf)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    uint64_t off = 0;
    while (off < len) {
        size_t want = len - off < IO_CHUNK ? (size_t)(len - off) : IO_CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return proto_err(err, PEMN_EIO, off, "read: %s",
                             r < 0 ? strerror(errno) : "unexpected end of file");
        }
        crypto_hash_sha256_update(st, buf, (unsigned long long)r);
        off += (uint64_t)r;
    }
    free(buf);
    return PEMN_OK;
}

pemn_rc client_hash_file(const char *path, uint8_t out[PEMN_DIGEST_BYTES], uint64_t *size,
                         struct pemn_err *err)
{
    /* O_NONBLOCK: a FIFO or a device at path is refused below, never waited on */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return proto_err(err, errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET, "%s: %s",
                         path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    pemn_rc rc = client_hash_prefix(fd, (uint64_t)sb.st_size, &st, err);
    close(fd);
    if (rc)
        return rc;
    crypto_hash_sha256_final(&st, out);
    if (size)
        *size = (uint64_t)sb.st_size;
    return PEMN_OK;
}

pemn_rc client_fsync_dir_of(const char *path, struct pemn_err *err)
{
    char *dup = strdup(path);
    if (!dup)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    char *slash = strrchr(dup, '/');
    const char *dir = ".";
    if (slash == dup)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = dup;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pemn_rc rc = PEMN_OK;
    if (fd < 0 || fsync(fd) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dup);
    return rc;
}

pemn_rc client_copy_file(const char *src, const char *dst, struct pemn_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", dst, strerror(e));
    }
    uint8_t *buf = malloc(IO_CHUNK);
    pemn_rc rc = buf ? PEMN_OK : proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    while (!rc) {
        ssize_t r = read(in, buf, IO_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", src, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        for (ssize_t o = 0; o < r;) {
            ssize_t w = write(out, buf + o, (size_t)(r - o));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", dst, strerror(errno));
                break;
            }
            o += w;
        }
    }
    if (!rc && fsync(out) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", dst, strerror(errno));
    free(buf);
    close(in);
    if (close(out) != 0 && !rc)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", dst, strerror(errno));
    if (rc)
        unlink(dst);
    return rc;
}

/* ---- cache ---------------------------------------------------------------------------- */
pemn_rc pemn_client_cache_path(const pemn_client *c, const char *digest, char *buf, size_t n)
{
    uint8_t d[PEMN_DIGEST_BYTES];
    if (!c || !c->cache_dir || !digest || !buf || pemn_digest_parse(digest, d) != PEMN_OK)
        return PEMN_EINVAL;
    char hex[2 * PEMN_DIGEST_BYTES + 1];
    proto_hex(d, PEMN_DIGEST_BYTES, hex);
    int k = snprintf(buf, n, "%s/blobs/sha256/%s", c->cache_dir, hex);
    if (k < 0 || (size_t)k >= n)
        return PEMN_ETOOBIG;
    return PEMN_OK;
}

/* mkdir -p for CACHE/blobs/sha256 */
static pemn_rc cache_mkdirs(const pemn_client *c, struct pemn_err *err)
{
    char p[PEMN_URL_BUF];
    int k = snprintf(p, sizeof p, "%s/blobs/sha256", c->cache_dir);
    if (k < 0 || (size_t)k >= sizeof p)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "cache path too long");
    return proto_mkdir_p(p, 0755, err);
}

pemn_rc client_cache_get(pemn_client *c, const char *digest, const char *tmp_path,
                         struct pemn_err *err)
{
    char p[PEMN_URL_BUF];
    if (pemn_client_cache_path(c, digest, p, sizeof p) != PEMN_OK)
        return PEMN_ENOTFOUND;
    uint8_t want[PEMN_DIGEST_BYTES], got[PEMN_DIGEST_BYTES];
    if (pemn_digest_parse(digest, want) != PEMN_OK)
        return PEMN_ENOTFOUND;
    if (client_hash_file(p, got, NULL, NULL) != PEMN_OK)
        return PEMN_ENOTFOUND;
    if (sodium_memcmp(want, got, PEMN_DIGEST_BYTES) != 0) {
        unlink(p); /* damaged entry: drop it, the caller downloads again */
        return PEMN_ENOTFOUND;
    }
    unlink(tmp_path);
    if (link(p, tmp_path) == 0)
        return PEMN_OK;
    return client_copy_file(p, tmp_path, err) == PEMN_OK ? PEMN_OK : PEMN_ENOTFOUND;
}

pemn_rc client_cache_put(pemn_client *c, const char *digest, const char *path, struct pemn_err *err)
{
    char p[PEMN_URL_BUF], tmp[PEMN_URL_BUF + 32];
    if (pemn_client_cache_path(c, digest, p, sizeof p) != PEMN_OK)
        return PEMN_EINVAL;
    struct stat sb;
    if (stat(p, &sb) == 0)
        return PEMN_OK;
    pemn_rc rc = cache_mkdirs(c, err);
    if (rc)
        return rc;
    uint32_t r = randombytes_random();
    snprintf(tmp, sizeof tmp, "%s.tmp%08x", p, r);
    if (link(path, tmp) != 0) {
        rc = client_copy_file(path, tmp, err);
        if (rc)
            return rc;
    }
    if (rename(tmp, p) != 0) {
        unlink(tmp);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename into cache: %s", strerror(errno));
    }
    return client_fsync_dir_of(p, err);
}
