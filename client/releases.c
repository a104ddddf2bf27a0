/*
 * client/releases.c — the highest release installed per model, kept in the client cache
 * (CACHE/releases/<model>: the release in decimal and a newline), so a registry cannot
 * silently serve an older release (docs/SECURITY.md, item 12). Written atomically (temporary
 * file, fsync, rename, fsync of the folder) under an exclusive lock, and only ever raised.
 */
#include "client/client_int.h"
#include "proto/err.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static pemn_rc rel_path(const pemn_client *c, const char *model, const char *leaf, char *buf,
                        size_t n)
{
    if (!c->cache_dir || !client_label_ok(model))
        return PEMN_EINVAL;
    int k = snprintf(buf, n, "%s/releases%s%s", c->cache_dir, leaf ? "/" : "", leaf ? leaf : "");
    return k < 0 || (size_t)k >= n ? PEMN_ETOOBIG : PEMN_OK;
}

pemn_rc client_release_get(const pemn_client *c, const char *model, uint64_t *out)
{
    char p[PEMN_URL_BUF];
    *out = 0;
    if (rel_path(c, model, model, p, sizeof p))
        return PEMN_ENOTFOUND;
    int fd = proto_open_regular(p, O_RDONLY, 0, NULL);
    if (fd < 0)
        return errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO;
    char buf[32];
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
        return PEMN_ECORRUPT;
    buf[r] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf || (*end && *end != '\n'))
        return PEMN_ECORRUPT;
    *out = (uint64_t)v;
    return PEMN_OK;
}

pemn_rc client_release_note(const pemn_client *c, const char *model, uint64_t release,
                            struct pemn_err *err)
{
    char dir[PEMN_URL_BUF], lock[PEMN_URL_BUF], p[PEMN_URL_BUF];
    if (rel_path(c, model, NULL, dir, sizeof dir) ||
        rel_path(c, model, ".lock", lock, sizeof lock) || rel_path(c, model, model, p, sizeof p))
        return PEMN_OK; /* no cache, or a name that cannot be a file: nothing to keep */
    pemn_rc rc = proto_mkdir_p(dir, 0755, err);
    if (rc)
        return rc;
    int lfd = proto_open_regular(lock, O_RDWR | O_CREAT, 0644, err);
    if (lfd < 0)
        return PEMN_EIO;
    if (flock(lfd, LOCK_EX) != 0) {
        close(lfd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "flock %s: %s", lock, strerror(errno));
    }
    uint64_t have = 0;
    pemn_rc g = client_release_get(c, model, &have);
    if (g == PEMN_OK && have >= release) {
        close(lfd);
        return PEMN_OK; /* never lowered */
    }
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRIu64 "\n", release);
    rc = proto_write_atomic(p, text, (size_t)n, 0644, err);
    close(lfd);
    return rc;
}
