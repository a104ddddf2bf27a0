/*
 * client/agent_fs.c — durable file operations for the agent: every write is fsync'ed, every
 * rename is followed by an fsync of the directory that holds it.
 */
#include "client/agent_int.h"

#include "proto/err.h"
#include "proto/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pemn_rc agent_path(char out[PATH_MAX], struct pemn_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "path too long");
    return PEMN_OK;
}

pemn_rc agent_fsync_path(const char *path, struct pemn_err *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* never blocks on a FIFO */
    if (fd < 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", path, strerror(e));
    return PEMN_OK;
}

pemn_rc agent_write_file(const char *path, const void *data, size_t len, bool trunc,
                         struct pemn_err *err)
{
    /* trunc (a temporary to be renamed): whatever sits at path is removed, never followed;
     * otherwise path must not exist. Either way a planted symlink is never written through. */
    int fd = trunc ? proto_create_exclusive(path, 0644, err)
                   : open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return trunc ? PEMN_EIO
                     : proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "create %s: %s", path,
                                 strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "write %s: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", path, strerror(e));
    }
    if (close(fd) != 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "close %s: %s", path, strerror(errno));
    return PEMN_OK;
}

pemn_rc agent_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                           struct pemn_err *err)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    pemn_rc rc;
    if ((rc = agent_path(tmp, err, "%s/%s.tmp", dir, name)) ||
        (rc = agent_path(dst, err, "%s/%s", dir, name)))
        return rc;
    if ((rc = agent_write_file(tmp, data, len, true, err)))
        goto fail;
    if (rename(tmp, dst) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename %s: %s", tmp, strerror(errno));
        goto fail;
    }
    return agent_fsync_path(dir, err);
fail:
    unlink(tmp);
    return rc;
}

pemn_rc agent_read_file(const char *path, uint64_t max, uint8_t **out, size_t *len,
                        struct pemn_err *err)
{
    *out = NULL;
    *len = 0;
    struct pemn_err oe = {0};
    int fd = proto_open_regular(path, O_RDONLY, 0, &oe); /* no symlink, no FIFO, no device */
    if (fd < 0)
        return proto_err(err, oe.rc, PEMN_NO_OFFSET, "%s", oe.msg);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "stat %s: %s", path, strerror(errno));
    }
    if ((uint64_t)sb.st_size > max || (uint64_t)sb.st_size >= SIZE_MAX) {
        close(fd);
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%s: %lld bytes, limit %llu", path,
                         (long long)sb.st_size, (unsigned long long)max);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(buf);
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "read %s: %s", path,
                             e ? strerror(e) : "file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return PEMN_OK;
}

static pemn_rc rmtree_depth(const char *path, int depth, struct pemn_err *err)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT
                   ? PEMN_OK
                   : proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "stat %s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "unlink %s: %s", path, strerror(errno));
        return PEMN_OK;
    }
    if (depth <= 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: unexpected nested directory", path);
    DIR *d = opendir(path);
    if (!d)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "opendir %s: %s", path, strerror(errno));
    pemn_rc rc = PEMN_OK;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        rc = agent_path(sub, err, "%s/%s", path, de->d_name);
        if (!rc)
            rc = rmtree_depth(sub, depth - 1, err);
    }
    closedir(d);
    if (!rc && rmdir(path) != 0 && errno != ENOENT)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rmdir %s: %s", path, strerror(errno));
    return rc;
}

pemn_rc agent_rmtree(const char *path, struct pemn_err *err)
{
    return rmtree_depth(path, 3, err);
}

bool agent_is_hex64(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (i >= AGENT_HEX_LEN || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == AGENT_HEX_LEN;
}

pemn_rc agent_prune_downloads(const char *dir, const char *keep, struct pemn_err *err)
{
    char path[PATH_MAX];
    pemn_rc rc = agent_path(path, err, "%s/download", dir);
    if (rc)
        return rc;
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? PEMN_OK
                               : proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "opendir %s: %s", path,
                                           strerror(errno));
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            (keep && !strcmp(de->d_name, keep)))
            continue;
        char sub[PATH_MAX];
        if (!(rc = agent_path(sub, err, "%s/%s", path, de->d_name)))
            rc = rmtree_depth(sub, 1, err);
    }
    closedir(d);
    return rc;
}

/* Bytes of the regular files under path (bounded depth; symlinks are not followed). */
static void usage_of(const char *path, int depth, uint64_t *sum)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISREG(sb.st_mode)) {
        *sum += (uint64_t)sb.st_size;
        return;
    }
    if (!S_ISDIR(sb.st_mode) || depth <= 0)
        return;
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        if (agent_path(sub, NULL, "%s/%s", path, de->d_name) == PEMN_OK)
            usage_of(sub, depth - 1, sum);
    }
    closedir(d);
}

uint64_t agent_disk_usage(const char *dir)
{
    uint64_t sum = 0;
    char p[PATH_MAX];
    if (agent_path(p, NULL, "%s/versions", dir) == PEMN_OK)
        usage_of(p, 3, &sum);
    if (agent_path(p, NULL, "%s/download", dir) == PEMN_OK)
        usage_of(p, 2, &sum);
    return sum;
}
