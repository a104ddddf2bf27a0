/*
 * proto/fsutil.c — atomic file replacement: temporary file, fsync, rename, fsync directory.
 */
#include "proto/fsutil.h"
#include "proto/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pemn_rc proto_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           struct pemn_err *err)
{
    if (!path || !*path || (!data && len))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    size_t pl = strlen(path);
    if (pl > 4000)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "path too long");
    char tmp[4096], dir[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    /* the directory of path, for the final fsync */
    memcpy(dir, path, pl + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        memcpy(dir, ".", 2);
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';

    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "create temporary file for %s: %s", path,
                         strerror(errno));
    pemn_rc rc = PEMN_OK;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0 && rc == PEMN_OK) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "write %s: %s", tmp,
                           w < 0 ? strerror(errno) : "no progress");
        else {
            p += w;
            left -= (size_t)w;
        }
    }
    if (rc == PEMN_OK && fchmod(fd, mode) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "chmod %s: %s", tmp, strerror(errno));
    if (rc == PEMN_OK && fsync(fd) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == PEMN_OK)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "close %s: %s", tmp, strerror(errno));
    if (rc == PEMN_OK && rename(tmp, path) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename to %s: %s", path, strerror(errno));
    if (rc != PEMN_OK) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: some filesystems refuse fsync on directories */
        close(dfd);
    }
    return PEMN_OK;
}

pemn_rc proto_mkdir_p(const char *path, mode_t mode, struct pemn_err *err)
{
    if (!path || !*path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "empty folder name");
    size_t n = strlen(path);
    if (n >= 4096)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "folder name too long");
    char p[4096];
    memcpy(p, path, n + 1);
    /* create each prefix that ends before a '/', then the whole path */
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            int e = errno;
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "mkdir %s: %s", p, strerror(e));
        }
        p[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: not a folder", path);
    return PEMN_OK;
}

pemn_rc proto_mkdir_parent(const char *file, mode_t mode, struct pemn_err *err)
{
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (!slash || slash == file)
        return PEMN_OK; /* current folder or "/" */
    size_t n = (size_t)(slash - file);
    if (n >= 4096)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "folder name too long");
    char dir[4096];
    memcpy(dir, file, n);
    dir[n] = '\0';
    return proto_mkdir_p(dir, mode, err);
}
