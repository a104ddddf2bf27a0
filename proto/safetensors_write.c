/*
 * proto/safetensors_write.c — safetensors writer (pemn/safetensors.h).
 *
 * Tensors are laid out in insertion order, back to back from offset 0. The JSON header
 * (compact, "__metadata__" first when present) is padded with spaces to a multiple of 8
 * bytes, so the data buffer starts 8-byte aligned. Files are written to a temporary file
 * in the same directory, fsync'ed, renamed over the target, and the directory fsync'ed.
 */
#include "proto/err.h"
#include "proto/safetensors_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct wt {
    char *name;
    pemn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[PEMN_MAX_DIMS];
    uint64_t nbytes;
    const void *data; /* borrowed; NULL for a lazy tensor */
    proto_st_fill_fn fill;
    void *ctx;
    uint64_t arg;
};

struct wmeta {
    char *key, *value;
};

struct pemn_st_writer {
    struct wt *t;
    uint32_t n, cap;
    struct wmeta *m;
    uint32_t n_meta, cap_meta;
};

pemn_rc pemn_st_writer_new(pemn_st_writer **out)
{
    if (!out)
        return PEMN_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? PEMN_OK : PEMN_ENOMEM;
}

void pemn_st_writer_free(pemn_st_writer *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    for (uint32_t i = 0; i < w->n_meta; i++) {
        free(w->m[i].key);
        free(w->m[i].value);
    }
    free(w->m);
    free(w);
}

/* jansson accepts only valid UTF-8 without NUL for keys and strings. */
static int valid_utf8(const char *s)
{
    json_t *j = json_string(s);
    if (!j)
        return 0;
    json_decref(j);
    return 1;
}

static pemn_rc add_common(pemn_st_writer *w, const char *name, pemn_dtype dtype, uint32_t ndim,
                          const uint64_t *shape, uint64_t *nbytes_out, struct pemn_err *err)
{
    if (!w || !name || (ndim && !shape))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    if (strcmp(name, "__metadata__") == 0 || !valid_utf8(name))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor name \"%.64s\" is reserved or not valid UTF-8", name);
    size_t esz = pemn_dtype_size(dtype);
    if (esz == 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor \"%.64s\": invalid dtype %d",
                         name, (int)dtype);
    if (ndim > PEMN_MAX_DIMS)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor \"%.64s\": %u dimensions (max %d)", name, ndim, PEMN_MAX_DIMS);
    uint64_t numel = 1, nbytes;
    for (uint32_t d = 0; d < ndim; d++) {
        if (shape[d] > (uint64_t)INT64_MAX || proto_mul_overflow(numel, shape[d], &numel))
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "tensor \"%.64s\": shape product overflows", name);
    }
    if (proto_mul_overflow(numel, esz, &nbytes) || nbytes > (uint64_t)INT64_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor \"%.64s\": byte size overflows",
                         name);
    for (uint32_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "tensor \"%.64s\" added twice",
                             name);
    if (w->n == w->cap) {
        if (w->cap >= PROTO_ST_MAX_TENSORS)
            return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "more than %u tensors",
                             PROTO_ST_MAX_TENSORS);
        uint32_t cap = w->cap ? w->cap * 2 : 16;
        struct wt *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        w->t = nt;
        w->cap = cap;
    }
    struct wt *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, ndim * sizeof *shape);
    t->nbytes = nbytes;
    *nbytes_out = nbytes;
    return PEMN_OK;
}

pemn_rc pemn_st_writer_add(pemn_st_writer *w, const char *name, pemn_dtype dtype, uint32_t ndim,
                           const uint64_t *shape, const void *data, uint64_t nbytes,
                           struct pemn_err *err)
{
    if (!data && nbytes)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL data");
    uint64_t need;
    pemn_rc rc = add_common(w, name, dtype, ndim, shape, &need, err);
    if (rc != PEMN_OK)
        return rc;
    if (need != nbytes) {
        free(w->t[w->n].name);
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor \"%.64s\": %llu bytes given, dtype and shape need %llu", name,
                         (unsigned long long)nbytes, (unsigned long long)need);
    }
    w->t[w->n].data = data;
    w->n++;
    return PEMN_OK;
}

pemn_rc proto_st_writer_add_lazy(pemn_st_writer *w, const char *name, pemn_dtype dtype,
                                 uint32_t ndim, const uint64_t *shape, proto_st_fill_fn fill,
                                 void *ctx, uint64_t arg, struct pemn_err *err)
{
    if (!fill)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL fill function");
    uint64_t need;
    pemn_rc rc = add_common(w, name, dtype, ndim, shape, &need, err);
    if (rc != PEMN_OK)
        return rc;
    struct wt *t = &w->t[w->n++];
    t->fill = fill;
    t->ctx = ctx;
    t->arg = arg;
    return PEMN_OK;
}

pemn_rc pemn_st_writer_add_meta(pemn_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value || !valid_utf8(key) || !valid_utf8(value))
        return PEMN_EINVAL;
    char *v = strdup(value);
    if (!v)
        return PEMN_ENOMEM;
    for (uint32_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->m[i].key, key) == 0) {
            free(w->m[i].value);
            w->m[i].value = v;
            return PEMN_OK;
        }
    }
    if (w->n_meta == w->cap_meta) {
        uint32_t cap = w->cap_meta ? w->cap_meta * 2 : 8;
        struct wmeta *nm =
            w->cap_meta >= PROTO_ST_MAX_META ? NULL : realloc(w->m, cap * sizeof *nm);
        if (!nm) {
            free(v);
            return w->cap_meta >= PROTO_ST_MAX_META ? PEMN_ETOOBIG : PEMN_ENOMEM;
        }
        w->m = nm;
        w->cap_meta = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return PEMN_ENOMEM;
    }
    w->m[w->n_meta].key = k;
    w->m[w->n_meta].value = v;
    w->n_meta++;
    return PEMN_OK;
}

/* ---- serialisation -------------------------------------------------------------------- */
/* The 8-byte length followed by the padded header, malloc'ed; *data_len receives the size
 * of the data buffer that follows. */
static pemn_rc build_header(const pemn_st_writer *w, char **out, size_t *out_len,
                            uint64_t *data_len, struct pemn_err *err)
{
    pemn_rc rc = PEMN_ENOMEM;
    char *txt = NULL;
    json_t *root = json_object();
    if (!root)
        goto fail;
    if (w->n_meta) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m) != 0)
            goto fail;
        for (uint32_t i = 0; i < w->n_meta; i++)
            if (json_object_set_new(m, w->m[i].key, json_string(w->m[i].value)) != 0)
                goto fail;
    }
    uint64_t pos = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        const struct wt *t = &w->t[i];
        uint64_t end;
        if (proto_add_overflow(pos, t->nbytes, &end) || end > (uint64_t)INT64_MAX) {
            rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "data larger than 2^63 bytes");
            goto fail_quiet;
        }
        json_t *shape = json_array();
        json_t *ti = json_object();
        if (!shape || !ti) {
            json_decref(shape);
            json_decref(ti);
            goto fail;
        }
        if (json_object_set_new(root, t->name, ti) != 0) {
            json_decref(shape);
            goto fail;
        }
        for (uint32_t d = 0; d < t->ndim; d++)
            if (json_array_append_new(shape, json_integer((json_int_t)t->shape[d])) != 0) {
                json_decref(shape);
                goto fail;
            }
        if (json_object_set_new(ti, "dtype", json_string(pemn_dtype_name(t->dtype))) != 0 ||
            json_object_set_new(ti, "shape", shape) != 0 ||
            json_object_set_new(ti, "data_offsets",
                                json_pack("[II]", (json_int_t)pos, (json_int_t)end)) != 0)
            goto fail;
        pos = end;
    }
    txt = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!txt)
        goto fail;
    size_t n = strlen(txt);
    size_t padded = (n + 7) / 8 * 8;
    if (padded > PROTO_ST_MAX_HEADER) {
        rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                       "header of %zu bytes over the %u-byte limit", padded, PROTO_ST_MAX_HEADER);
        goto fail_quiet;
    }
    char *buf = malloc(8 + padded);
    if (!buf)
        goto fail;
    proto_put64((uint8_t *)buf, (uint64_t)padded);
    memcpy(buf + 8, txt, n);
    memset(buf + 8 + n, ' ', padded - n);
    free(txt);
    json_decref(root);
    *out = buf;
    *out_len = 8 + padded;
    *data_len = pos;
    return PEMN_OK;
fail:
    rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory building the header");
fail_quiet:
    free(txt);
    json_decref(root);
    return rc;
}

pemn_rc pemn_st_writer_write_mem(pemn_st_writer *w, uint8_t **out, size_t *len,
                                 struct pemn_err *err)
{
    if (!w || !out || !len)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    pemn_rc rc = build_header(w, &hdr, &hlen, &dlen, err);
    if (rc != PEMN_OK)
        return rc;
    if (dlen > (uint64_t)(SIZE_MAX - hlen)) {
        free(hdr);
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "file too large for memory");
    }
    uint8_t *buf = malloc(hlen + (size_t)dlen);
    if (!buf) {
        free(hdr);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    memcpy(buf, hdr, hlen);
    free(hdr);
    uint8_t *p = buf + hlen;
    for (uint32_t i = 0; i < w->n; i++) {
        const struct wt *t = &w->t[i];
        if (t->nbytes == 0)
            continue;
        if (t->data) {
            memcpy(p, t->data, (size_t)t->nbytes);
        } else if ((rc = t->fill(t->ctx, t->arg, 0, p, t->nbytes, err)) != PEMN_OK) {
            free(buf);
            return rc;
        }
        p += t->nbytes;
    }
    *out = buf;
    *len = hlen + (size_t)dlen;
    return PEMN_OK;
}

static pemn_rc write_all(int fd, const void *data, uint64_t n, const char *path,
                         struct pemn_err *err)
{
    const uint8_t *p = data;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n;
        ssize_t k = write(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "write %.200s: %s", path,
                             strerror(errno));
        }
        p += k;
        n -= (uint64_t)k;
    }
    return PEMN_OK;
}

/* Starts writeback of what was written since the last call, every 8 MiB, so the disk
 * works while later chunks are produced and the final fsync has little left to do (and
 * dirty pages do not pile up). Advisory: errors are left to fsync. */
static void kick_writeback(int fd, uint64_t *done, uint64_t *kicked)
{
#ifdef SYNC_FILE_RANGE_WRITE
    if (*done - *kicked >= ((uint64_t)8 << 20)) {
        (void)sync_file_range(fd, (off64_t)*kicked, (off64_t)(*done - *kicked),
                              SYNC_FILE_RANGE_WRITE);
        *kicked = *done;
    }
#else
    (void)fd, (void)done, (void)kicked;
#endif
}

static pemn_rc write_tensors(pemn_st_writer *w, int fd, const char *tmp, struct pemn_err *err)
{
    void *buf = NULL;
    pemn_rc rc = PEMN_OK;
    uint64_t done = 0, kicked = 0; /* tensor bytes written; written and handed to writeback */
    for (uint32_t i = 0; i < w->n && rc == PEMN_OK; i++) {
        const struct wt *t = &w->t[i];
        if (t->nbytes == 0)
            continue;
        if (t->data) {
            rc = write_all(fd, t->data, t->nbytes, tmp, err);
            done += t->nbytes;
            kick_writeback(fd, &done, &kicked);
            continue;
        }
        if (!buf && !(buf = malloc(PROTO_ST_FILL_CHUNK))) {
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
            break;
        }
        /* a chunk that is a multiple of every dtype size */
        for (uint64_t off = 0; off < t->nbytes && rc == PEMN_OK;) {
            uint64_t n =
                t->nbytes - off < PROTO_ST_FILL_CHUNK ? t->nbytes - off : PROTO_ST_FILL_CHUNK;
            rc = t->fill(t->ctx, t->arg, off, buf, n, err);
            if (rc == PEMN_OK)
                rc = write_all(fd, buf, n, tmp, err);
            off += n;
            done += n;
            kick_writeback(fd, &done, &kicked);
        }
    }
    free(buf);
    return rc;
}

pemn_rc pemn_st_writer_write_file(pemn_st_writer *w, const char *path, struct pemn_err *err)
{
    if (!w || !path || !*path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    pemn_rc rc = build_header(w, &hdr, &hlen, &dlen, err);
    if (rc != PEMN_OK)
        return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    char *dir = strdup(path);
    if (!tmp || !dir) {
        free(hdr);
        free(tmp);
        free(dir);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "create %.200s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = write_all(fd, hdr, hlen, tmp, err);
    if (rc == PEMN_OK)
        rc = write_tensors(w, fd, tmp, err);
    if (rc == PEMN_OK && fchmod(fd, 0644) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "chmod %.200s: %s", tmp, strerror(errno));
    if (rc == PEMN_OK && fsync(fd) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %.200s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == PEMN_OK)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "close %.200s: %s", tmp, strerror(errno));
    if (rc == PEMN_OK && rename(tmp, path) != 0)
        rc =
            proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename to %.200s: %s", path, strerror(errno));
    if (rc != PEMN_OK) {
        unlink(tmp);
        goto out;
    }
    /* make the rename itself durable */
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL)
            rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync directory of %.200s: %s", path,
                           strerror(errno));
        close(dfd);
    }
out:
    free(hdr);
    free(tmp);
    free(dir);
    return rc;
}
