/*
 * train/idx.c — IDX reader (gzip through zlib). See train/idx.h for the layout.
 */
#include "train/idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "proto/err.h"

#define IDX_TYPE_UBYTE 0x08u
#define IDX_MAX_DIM_COUNT 4u

/* Reads exactly n bytes; returns n, or fewer at end of stream, or -1 on a zlib error. */
static long long gz_read_full(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > (1u << 30))
            want = 1u << 30;
        int r = gzread(f, (uint8_t *)buf + got, (unsigned)want);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long long)got;
}

static pemn_rc gz_fail(gzFile f, const char *path, struct pemn_err *err)
{
    int zerr = 0;
    const char *msg = gzerror(f, &zerr);
    if (zerr == Z_ERRNO)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: read error: %s", path,
                         strerror(errno));
    return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "%s: damaged gzip stream (%s)", path,
                     msg ? msg : "unknown zlib error");
}

pemn_rc train_idx_read(const char *path, uint32_t want_ndim, uint32_t *dims, uint8_t **data,
                       struct pemn_err *err)
{
    *data = NULL;
    if (want_ndim == 0 || want_ndim > IDX_MAX_DIM_COUNT)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad dimension count %u", want_ndim);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return proto_err(err, errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET,
                         "%s: cannot open: %s", path, strerror(errno ? errno : EIO));
    gzbuffer(f, 1u << 17);
    pemn_rc rc = PEMN_OK;
    uint8_t *buf = NULL;
    uint8_t hdr[4 + 4 * IDX_MAX_DIM_COUNT];
    size_t hlen = 4 + 4 * (size_t)want_ndim;
    long long got = gz_read_full(f, hdr, hlen);
    if (got < 0) {
        rc = gz_fail(f, path, err);
        goto out;
    }
    if ((size_t)got < hlen) {
        rc = proto_err(err, PEMN_ECORRUPT, (uint64_t)got,
                       "%s: truncated IDX header (%lld of %zu bytes)", path, got, hlen);
        goto out;
    }
    if (hdr[0] != 0 || hdr[1] != 0) {
        rc = proto_err(err, PEMN_ECORRUPT, 0,
                       "%s: not an IDX file (magic %02x%02x%02x%02x, expected 0000%02x%02x)", path,
                       hdr[0], hdr[1], hdr[2], hdr[3], IDX_TYPE_UBYTE, want_ndim);
        goto out;
    }
    if (hdr[2] != IDX_TYPE_UBYTE) {
        rc = proto_err(err, PEMN_ECORRUPT, 2,
                       "%s: IDX element type 0x%02x, only unsigned bytes (0x08) are supported",
                       path, hdr[2]);
        goto out;
    }
    if (hdr[3] != want_ndim) {
        rc = proto_err(err, PEMN_ECORRUPT, 3, "%s: IDX file has %u dimensions, expected %u", path,
                       hdr[3], want_ndim);
        goto out;
    }
    uint64_t total = 1;
    for (uint32_t i = 0; i < want_ndim; i++) {
        const uint8_t *p = hdr + 4 + 4 * i;
        dims[i] = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        if (dims[i] == 0) {
            rc = proto_err(err, PEMN_ECORRUPT, 4 + 4 * i, "%s: dimension %u is zero", path, i);
            goto out;
        }
        if (proto_mul_overflow(total, dims[i], &total) || total > TRAIN_IDX_MAX_BYTES) {
            rc = proto_err(err, PEMN_ETOOBIG, 4 + 4 * i,
                           "%s: IDX payload larger than the %llu-byte limit", path,
                           (unsigned long long)TRAIN_IDX_MAX_BYTES);
            goto out;
        }
    }
    /* Sanity bound against the file before allocating: a gzip stream expands at most
     * ~1032:1; a plain file must be at least as large as its payload. */
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0 && total > (uint64_t)st.st_size * 1100u + 4096u) {
        rc = proto_err(err, PEMN_ECORRUPT, 4,
                       "%s: header announces %llu bytes, more than the file can hold", path,
                       (unsigned long long)total);
        goto out;
    }
    buf = malloc((size_t)total);
    if (!buf) {
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "%s: out of memory (%llu bytes)", path,
                       (unsigned long long)total);
        goto out;
    }
    got = gz_read_full(f, buf, (size_t)total);
    if (got < 0) {
        rc = gz_fail(f, path, err);
        goto out;
    }
    if ((uint64_t)got < total) {
        rc = proto_err(err, PEMN_ECORRUPT, hlen + (uint64_t)got,
                       "%s: truncated: %llu of %llu payload bytes", path, (unsigned long long)got,
                       (unsigned long long)total);
        goto out;
    }
    uint8_t extra;
    got = gz_read_full(f, &extra, 1);
    if (got < 0) {
        rc = gz_fail(f, path, err);
        goto out;
    }
    if (got != 0) {
        rc = proto_err(err, PEMN_ECORRUPT, hlen + total,
                       "%s: trailing bytes after the %llu-byte payload", path,
                       (unsigned long long)total);
        goto out;
    }
out:
    gzclose(f);
    if (rc != PEMN_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    return PEMN_OK;
}

pemn_rc train_data_load(const char *images_path, const char *labels_path, struct train_data *out,
                        struct pemn_err *err)
{
    memset(out, 0, sizeof *out);
    uint32_t idims[3], ldims[1];
    uint8_t *images = NULL, *labels = NULL;
    pemn_rc rc = train_idx_read(images_path, 3, idims, &images, err);
    if (rc)
        return rc;
    rc = train_idx_read(labels_path, 1, ldims, &labels, err);
    if (rc) {
        free(images);
        return rc;
    }
    if (ldims[0] != idims[0]) {
        free(images);
        free(labels);
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "%s has %u images but %s has %u labels", images_path, idims[0],
                         labels_path, ldims[0]);
    }
    uint32_t maxl = 0;
    for (uint32_t i = 0; i < ldims[0]; i++)
        if (labels[i] > maxl)
            maxl = labels[i];
    out->n = idims[0];
    out->rows = idims[1];
    out->cols = idims[2];
    out->dim = idims[1] * idims[2]; /* bounded by TRAIN_IDX_MAX_BYTES / n */
    out->n_classes = maxl + 1;
    out->images = images;
    out->labels = labels;
    return PEMN_OK;
}

/* Picks <dir>/<base>.gz, else <dir>/<base>. */
static pemn_rc find_file(const char *dir, const char *base, char *out, size_t cap,
                         struct pemn_err *err)
{
    struct stat st;
    int n = snprintf(out, cap, "%s/%s.gz", dir, base);
    if (n < 0 || (size_t)n >= cap)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "data path too long");
    if (stat(out, &st) == 0)
        return PEMN_OK;
    snprintf(out, cap, "%s/%s", dir, base);
    if (stat(out, &st) == 0)
        return PEMN_OK;
    return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET,
                     "missing dataset file %s/%s[.gz] (Fashion-MNIST: apt-get install "
                     "dataset-fashion-mnist, or point --data at a folder of IDX files)",
                     dir, base);
}

pemn_rc train_data_load_dir(const char *dir, const char *split, struct train_data *out,
                            struct pemn_err *err)
{
    memset(out, 0, sizeof *out);
    char ipath[4096], lpath[4096], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    pemn_rc rc = find_file(dir, base, ipath, sizeof ipath, err);
    if (rc)
        return rc;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    rc = find_file(dir, base, lpath, sizeof lpath, err);
    if (rc)
        return rc;
    return train_data_load(ipath, lpath, out, err);
}

void train_data_truncate(struct train_data *d, uint32_t n)
{
    if (n == 0 || n >= d->n)
        return;
    d->n = n;
}

void train_data_free(struct train_data *d)
{
    if (!d)
        return;
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}
