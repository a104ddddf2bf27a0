/*
 * client/agent_trust_file.c — DIR/trust.json and DIR/root.json on disk (format in
 * client/agent_trust.h): crash-safe writes that never follow a planted symlink.
 */
#include "client/agent_trust.h"

#include "proto/err.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pemn_rc agent_trust_write(const char *dir, const char *name, const void *data, size_t len,
                          struct pemn_err *err)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    pemn_rc rc;
    if ((rc = agent_path(tmp, err, "%s/%s.tmp", dir, name)) ||
        (rc = agent_path(dst, err, "%s/%s", dir, name)))
        return rc;
    /* a leftover of a crash (or anything planted there) goes; unlink never follows a link */
    if (unlink(tmp) != 0 && errno != ENOENT)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "unlink %s: %s", tmp, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "create %s: %s", tmp, strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "write %s: %s", tmp,
                           strerror(w < 0 ? errno : EIO));
            close(fd);
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    if (close(fd) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "close %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, dst) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename %s: %s", tmp, strerror(errno));
        goto fail;
    }
    return agent_fsync_path(dir, err);
fail:
    unlink(tmp);
    return rc;
}

pemn_rc agent_trust_read(const char *dir, const char *name, size_t max, char **out, size_t *len,
                         struct pemn_err *err)
{
    *out = NULL;
    *len = 0;
    char path[PATH_MAX];
    pemn_rc rc = agent_path(path, err, "%s/%s", dir, name);
    if (rc)
        return rc;
    return agent_trust_read_path(path, max, out, len, err);
}

pemn_rc agent_trust_read_path(const char *path, size_t max, char **out, size_t *len,
                              struct pemn_err *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return proto_err(err, errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET,
                         "open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0 ||
        (uint64_t)sb.st_size > max) {
        close(fd);
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "%s: not a regular file of at most %zu bytes", path, max);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory reading %s", path);
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            free(buf);
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "read %s: %s", path,
                             r < 0 ? strerror(errno) : "file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return PEMN_OK;
}

uint64_t agent_trust_rec_release(const struct agent_trust_rec *rec, const char *model)
{
    for (size_t i = 0; i < rec->n_rel; i++)
        if (!strcmp(rec->rel[i].model, model))
            return rec->rel[i].release;
    return 0;
}

pemn_rc agent_trust_rec_raise(struct agent_trust_rec *rec, const char *model, uint64_t release,
                              struct pemn_err *err)
{
    if (strlen(model) >= sizeof rec->rel[0].model)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "model name too long");
    for (size_t i = 0; i < rec->n_rel; i++)
        if (!strcmp(rec->rel[i].model, model)) {
            if (release > rec->rel[i].release)
                rec->rel[i].release = release;
            return PEMN_OK;
        }
    if (rec->n_rel == AGENT_TRUST_MODELS_MAX)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "more than %d models recorded",
                         AGENT_TRUST_MODELS_MAX);
    snprintf(rec->rel[rec->n_rel].model, sizeof rec->rel[0].model, "%s", model);
    rec->rel[rec->n_rel].release = release;
    rec->n_rel++;
    return PEMN_OK;
}

static bool get_str(json_t *o, const char *k, char *dst, size_t cap, bool hex64)
{
    json_t *v = json_object_get(o, k);
    if (!v) {
        dst[0] = 0;
        return true;
    }
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= cap)
        return false;
    if (hex64 && s[0] && !agent_is_hex64(s))
        return false;
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

static bool get_uint(json_t *o, const char *k, uint64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!v) {
        *out = 0;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

pemn_rc agent_trust_rec_load(const char *dir, struct agent_trust_rec *rec, bool *found,
                             struct pemn_err *err)
{
    memset(rec, 0, sizeof *rec);
    *found = false;
    char *buf;
    size_t len;
    struct pemn_err re = {0};
    pemn_rc rc = agent_trust_read(dir, "trust.json", AGENT_TRUST_FILE_MAX, &buf, &len, &re);
    if (rc == PEMN_ENOTFOUND)
        return PEMN_OK;
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "%s", re.msg);
    json_error_t je;
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    uint64_t fmt = 0, exp = 0;
    json_t *rels = json_object_get(o, "releases");
    bool ok = json_is_object(o) && get_uint(o, "format", &fmt) && fmt == 1 &&
              get_str(o, "model", rec->model, sizeof rec->model, false) &&
              get_uint(o, "metadata_version", &rec->meta_version) &&
              get_str(o, "metadata_hash", rec->meta_hash, sizeof rec->meta_hash, true) &&
              get_uint(o, "metadata_expires", &exp) && exp <= INT64_MAX &&
              get_str(o, "metadata_keys", rec->meta_keys, sizeof rec->meta_keys, true) &&
              get_uint(o, "root_version", &rec->root_version) && (!rels || json_is_object(rels));
    rec->meta_expires = (int64_t)exp;
    const char *k;
    json_t *v;
    json_object_foreach(ok ? rels : NULL, k, v)
    {
        if (!ok)
            break;
        ok = json_is_integer(v) && json_integer_value(v) >= 0 &&
             !agent_trust_rec_raise(rec, k, (uint64_t)json_integer_value(v), NULL);
    }
    json_decref(o);
    if (!ok) {
        memset(rec, 0, sizeof *rec);
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "%s/trust.json is damaged; refusing to start without the rollback "
                         "record (restore it, or remove it to start afresh on purpose)",
                         dir);
    }
    *found = true;
    return PEMN_OK;
}

pemn_rc agent_trust_rec_save(const char *dir, const struct agent_trust_rec *rec,
                             struct pemn_err *err)
{
    json_t *rels = json_object();
    json_t *o =
        json_pack("{s:i, s:s, s:I, s:s, s:I, s:s, s:I}", "format", 1, "model", rec->model,
                  "metadata_version", (json_int_t)rec->meta_version, "metadata_hash",
                  rec->meta_hash, "metadata_expires", (json_int_t)rec->meta_expires,
                  "metadata_keys", rec->meta_keys, "root_version", (json_int_t)rec->root_version);
    bool ok = o && rels;
    for (size_t i = 0; ok && i < rec->n_rel; i++)
        ok = !json_object_set_new(rels, rec->rel[i].model,
                                  json_integer((json_int_t)rec->rel[i].release));
    char *text = NULL;
    if (ok && !json_object_set_new(o, "releases", rels)) {
        rels = NULL;
        text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    }
    json_decref(rels);
    json_decref(o);
    if (!text)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (trust.json)");
    pemn_rc rc = agent_trust_write(dir, "trust.json", text, strlen(text), err);
    free(text);
    return rc;
}
