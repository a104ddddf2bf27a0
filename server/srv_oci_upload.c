/*
 * server/srv_oci_upload.c — the bytes of OCI blob upload sessions, in files.
 *
 * A session's bytes are a file <tmp_dir>/pemnd-oci-uploads/<id> (the id is 32 random hex
 * characters made by the server, never a client's text). Chunks are written at the offset the
 * store says the session is at; the digest is computed by streaming the mapped file through
 * SHA-256 when the upload is closed. Nothing here holds more than the caller's chunk.
 */
#include "server/srv_oci.h"

#include "proto/err.h"
#include "proto/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define UPLOAD_DIR "pemnd-oci-uploads"

static pemn_rc file_path(struct srv *s, const char *id, char *out, size_t cap, bool make_dir,
                         struct pemn_err *err)
{
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad upload id");
    int n = snprintf(out, cap, "%s/" UPLOAD_DIR, srv_tmp_dir(s));
    if (n < 0 || (size_t)n >= cap)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "upload directory path too long");
    if (make_dir && mkdir(out, 0700) != 0 && errno != EEXIST)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "cannot create %s: %s", out,
                         strerror(errno));
    n = snprintf(out, cap, "%s/" UPLOAD_DIR "/%s", srv_tmp_dir(s), id);
    if (n < 0 || (size_t)n >= cap)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "upload path too long");
    return PEMN_OK;
}

pemn_rc srv_oci_upload_file_create(struct srv *s, const char *id, struct pemn_err *err)
{
    char path[1200];
    pemn_rc rc = file_path(s, id, path, sizeof path, true, err);
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "cannot create %s: %s", path,
                         strerror(errno));
    close(fd);
    return PEMN_OK;
}

pemn_rc srv_oci_upload_file_write(struct srv *s, const char *id, uint64_t offset,
                                  const uint8_t *data, size_t len, struct pemn_err *err)
{
    char path[1200];
    pemn_rc rc = file_path(s, id, path, sizeof path, false, err);
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return proto_err(err, errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET,
                         "cannot open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)offset) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "truncating %s: %s", path, strerror(errno));
        goto out;
    }
    while (len) {
        ssize_t w = pwrite(fd, data, len, (off_t)offset);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "writing %s: %s", path,
                           w < 0 ? strerror(errno) : "short write");
            goto out;
        }
        data += w, len -= (size_t)w, offset += (uint64_t)w;
    }
out:
    close(fd);
    return rc;
}

pemn_rc srv_oci_upload_file_map(struct srv *s, const char *id, uint64_t size, void **map,
                                char digest[PEMN_DIGEST_TEXT_MAX], struct pemn_err *err)
{
    *map = NULL;
    char path[1200];
    pemn_rc rc = file_path(s, id, path, sizeof path, false, err);
    if (rc)
        return rc;
    if (size == 0) {
        proto_oci_digest("", 0, digest);
        return PEMN_OK;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return proto_err(err, errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET,
                         "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < size) {
        close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s is shorter than the upload", path);
    }
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "mapping %s: %s", path, strerror(errno));
    madvise(m, (size_t)size, MADV_SEQUENTIAL);
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, m, (unsigned long long)size);
    pemn_digest_format(d, digest);
    *map = m;
    return PEMN_OK;
}

void srv_oci_upload_file_unmap(void *map, uint64_t size)
{
    if (map)
        munmap(map, (size_t)size);
}

void srv_oci_upload_file_remove(struct srv *s, const char *id)
{
    char path[1200];
    if (file_path(s, id, path, sizeof path, false, NULL) == PEMN_OK)
        unlink(path);
}

int srv_oci_upload_lock(struct srv *s, const char *id)
{
    char path[1200];
    if (file_path(s, id, path, sizeof path, false, NULL) != PEMN_OK)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

void srv_oci_upload_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}
