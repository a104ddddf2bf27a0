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

/* ---- safe opening of state files --------------------------------------------------------- */
int proto_open_regular(const char *path, int flags, mode_t mode, struct pemn_err *err)
{
    /* never follow a planted symlink at the last component; never block on a FIFO or a
     * device (O_NONBLOCK for the open itself, cleared once the file is known regular) */
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        proto_err(err, e == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET, "open %s: %s", path,
                  e == ELOOP ? "is a symbolic link (refused)" : strerror(e));
        errno = e;
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: not a regular file (refused)", path);
        errno = EINVAL;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int proto_create_exclusive(const char *path, mode_t mode, struct pemn_err *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST || attempt)
            break;
        /* a stale temporary (or something planted there): remove the entry itself — unlink
         * never follows a symlink — and create afresh */
        if (unlink(path) != 0 && errno != ENOENT)
            break;
    }
    int e = errno;
    proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "create %s: %s", path, strerror(e));
    errno = e;
    return -1;
}
