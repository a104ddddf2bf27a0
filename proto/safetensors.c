/*
 * proto/safetensors.c — safetensors reader (pemn/safetensors.h).
 *
 * The 8-byte length and the JSON header are checked completely before any tensor is
 * exposed: every tensor's extent is derived from its dtype and shape with overflow checks,
 * and the extents, sorted by offset, must tile the data buffer exactly (which rules out
 * overlaps, gaps and trailing bytes).
 */
#include "proto/err.h"
#include "proto/safetensors_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct st_tensor {
    char *name;
    pemn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[PEMN_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;
};

struct st_meta {
    char *key;
    char *value;
};

struct st_name {
    const char *name; /* borrowed from t[idx] */
    uint32_t idx;
};

struct pemn_st {
    const uint8_t *bytes; /* the whole file */
    size_t len;
    uint8_t *owned; /* malloc'ed copy (PEMN_OPEN_COPY) */
    void *map;      /* mmap'ed file */
    size_t map_len;
    uint64_t data_start; /* 8 + header length */
    uint32_t n;
    struct st_tensor *t;     /* sorted by (begin, end, name) */
    struct st_name *by_name; /* sorted by name */
    uint32_t n_meta;
    struct st_meta *meta; /* in header order */
};

/* ---- parsing -------------------------------------------------------------------------- */
static int cmp_extent(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct st_name *)a)->name, ((const struct st_name *)b)->name);
}

/* A JSON integer in [0, INT64_MAX]. */
static int get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static pemn_rc parse_tensor(const char *name, json_t *v, uint64_t buf_len, struct st_tensor *t,
                            struct pemn_err *err)
{
    if (!json_is_object(v))
        return proto_err(err, PEMN_ECORRUPT, 8, "tensor \"%.64s\": not an object", name);
    json_t *dt = NULL, *shape = NULL, *offs = NULL;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "dtype") == 0)
            dt = x;
        else if (strcmp(k, "shape") == 0)
            shape = x;
        else if (strcmp(k, "data_offsets") == 0)
            offs = x;
        else
            return proto_err(err, PEMN_ECORRUPT, 8, "tensor \"%.64s\": unknown field \"%.32s\"",
                             name, k);
    }
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs))
        return proto_err(err, PEMN_ECORRUPT, 8,
                         "tensor \"%.64s\": needs dtype (string), shape and data_offsets "
                         "(arrays)",
                         name);
    if (pemn_dtype_parse(json_string_value(dt), &t->dtype) != PEMN_OK)
        return proto_err(err, PEMN_EUNSUPPORTED, 8, "tensor \"%.64s\": unknown dtype \"%.16s\"",
                         name, json_string_value(dt));
    size_t nd = json_array_size(shape);
    if (nd > PEMN_MAX_DIMS)
        return proto_err(err, PEMN_ETOOBIG, 8, "tensor \"%.64s\": %zu dimensions (max %d)", name,
                         nd, PEMN_MAX_DIMS);
    t->ndim = (uint32_t)nd;
    t->numel = 1;
    for (size_t d = 0; d < nd; d++) {
        if (get_u64(json_array_get(shape, d), &t->shape[d]) != 0)
            return proto_err(err, PEMN_ECORRUPT, 8,
                             "tensor \"%.64s\": shape[%zu] is not a non-negative integer", name, d);
        if (proto_mul_overflow(t->numel, t->shape[d], &t->numel))
            return proto_err(err, PEMN_ECORRUPT, 8, "tensor \"%.64s\": shape product overflows",
                             name);
    }
    uint64_t nbytes;
    if (proto_mul_overflow(t->numel, pemn_dtype_size(t->dtype), &nbytes))
        return proto_err(err, PEMN_ECORRUPT, 8, "tensor \"%.64s\": byte size overflows", name);
    if (json_array_size(offs) != 2 || get_u64(json_array_get(offs, 0), &t->begin) != 0 ||
        get_u64(json_array_get(offs, 1), &t->end) != 0)
        return proto_err(err, PEMN_ECORRUPT, 8,
                         "tensor \"%.64s\": data_offsets must be two non-negative integers", name);
    if (t->begin > t->end || t->end > buf_len)
        return proto_err(err, PEMN_ECORRUPT, 8,
                         "tensor \"%.64s\": data_offsets [%llu, %llu] outside the %llu-byte "
                         "data buffer",
                         name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)buf_len);
    if (t->end - t->begin != nbytes)
        return proto_err(err, PEMN_ECORRUPT, 8,
                         "tensor \"%.64s\": data_offsets span %llu bytes, dtype and shape need "
                         "%llu",
                         name, (unsigned long long)(t->end - t->begin), (unsigned long long)nbytes);
    t->name = strdup(name);
    if (!t->name)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    return PEMN_OK;
}

static pemn_rc parse_meta(pemn_st *st, json_t *v, struct pemn_err *err)
{
    if (!json_is_object(v))
        return proto_err(err, PEMN_ECORRUPT, 8, "__metadata__ is not an object");
    size_t n = json_object_size(v);
    if (n == 0)
        return PEMN_OK;
    st->meta = calloc(n, sizeof *st->meta);
    if (!st->meta)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (!json_is_string(x))
            return proto_err(err, PEMN_ECORRUPT, 8, "__metadata__ \"%.64s\": value is not a string",
                             k);
        struct st_meta *m = &st->meta[st->n_meta];
        m->key = strdup(k);
        m->value = strdup(json_string_value(x));
        st->n_meta++;
        if (!m->key || !m->value)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    return PEMN_OK;
}

static pemn_rc parse(pemn_st *st, struct pemn_err *err)
{
    if (st->len < 8)
        return proto_err(err, PEMN_ECORRUPT, 0, "file of %zu bytes has no 8-byte header length",
                         st->len);
    uint64_t hlen = proto_le64(st->bytes);
    if (hlen > st->len - 8)
        return proto_err(err, PEMN_ECORRUPT, 0,
                         "header length %llu runs past the end of the %zu-byte file",
                         (unsigned long long)hlen, st->len);
    if (hlen > PROTO_ST_MAX_HEADER)
        return proto_err(err, PEMN_ETOOBIG, 0, "header length %llu over the %u-byte limit",
                         (unsigned long long)hlen, PROTO_ST_MAX_HEADER);
    if (hlen < 2 || st->bytes[8] != '{')
        return proto_err(err, PEMN_ECORRUPT, 8, "header does not start with '{'");
    st->data_start = 8 + hlen;
    uint64_t buf_len = st->len - st->data_start;

    json_error_t je;
    json_t *root =
        json_loadb((const char *)st->bytes + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return proto_err(err, PEMN_ECORRUPT, 8 + (uint64_t)(je.position > 0 ? je.position : 0),
                         "header JSON: %s", je.text);
    pemn_rc rc = PEMN_OK;
    if (!json_is_object(root)) {
        rc = proto_err(err, PEMN_ECORRUPT, 8, "header is not a JSON object");
        goto out;
    }
    size_t n = json_object_size(root);
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta)
        n--;
    if (n > PROTO_ST_MAX_TENSORS) {
        rc = proto_err(err, PEMN_ETOOBIG, 8, "%zu tensors (max %u)", n, PROTO_ST_MAX_TENSORS);
        goto out;
    }
    if (meta && (rc = parse_meta(st, meta, err)) != PEMN_OK)
        goto out;
    if (n) {
        st->t = calloc(n, sizeof *st->t);
        st->by_name = calloc(n, sizeof *st->by_name);
        if (!st->t || !st->by_name) {
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
            goto out;
        }
    }
    const char *k;
    json_t *x;
    json_object_foreach(root, k, x)
    {
        if (x == meta)
            continue;
        rc = parse_tensor(k, x, buf_len, &st->t[st->n], err);
        if (rc != PEMN_OK)
            goto out;
        st->n++;
    }
    if (st->n)
        qsort(st->t, st->n, sizeof *st->t, cmp_extent);
    /* The extents must tile [0, buf_len) in order: no gap, no overlap, nothing after. */
    uint64_t pos = 0;
    for (uint32_t i = 0; i < st->n; i++) {
        if (st->t[i].begin != pos) {
            rc = proto_err(err, PEMN_ECORRUPT, st->data_start + pos,
                           "tensor \"%.64s\" starts at %llu: %s at data offset %llu", st->t[i].name,
                           (unsigned long long)st->t[i].begin,
                           st->t[i].begin < pos ? "overlap" : "gap", (unsigned long long)pos);
            goto out;
        }
        pos = st->t[i].end;
    }
    if (pos != buf_len) {
        rc = proto_err(err, PEMN_ECORRUPT, st->data_start + pos,
                       "%llu bytes after the last tensor are not covered by any tensor",
                       (unsigned long long)(buf_len - pos));
        goto out;
    }
    for (uint32_t i = 0; i < st->n; i++)
        st->by_name[i] = (struct st_name){st->t[i].name, i};
    if (st->n)
        qsort(st->by_name, st->n, sizeof *st->by_name, cmp_name);
out:
    json_decref(root);
    return rc;
}

/* ---- open / free ---------------------------------------------------------------------- */
static pemn_rc finish_open(pemn_st *st, pemn_st **out, struct pemn_err *err)
{
    pemn_rc rc = parse(st, err);
    if (rc != PEMN_OK) {
        pemn_st_free(st);
        return rc;
    }
    *out = st;
    return PEMN_OK;
}

pemn_rc pemn_st_open_mem(const void *data, size_t len, unsigned flags, pemn_st **out,
                         struct pemn_err *err)
{
    if (!out || (!data && len))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    *out = NULL;
    pemn_st *st = calloc(1, sizeof *st);
    if (!st)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    if (flags & PEMN_OPEN_COPY) {
        st->owned = malloc(len ? len : 1);
        if (!st->owned) {
            free(st);
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        }
        if (len)
            memcpy(st->owned, data, len);
        st->bytes = st->owned;
    } else {
        st->bytes = data;
    }
    st->len = len;
    return finish_open(st, out, err);
}

pemn_rc pemn_st_open_file(const char *path, pemn_st **out, struct pemn_err *err)
{
    if (!path || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return proto_err(err, errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET,
                         "open %.200s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int e = errno;
        close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%.200s: %s", path,
                         S_ISREG(sb.st_mode) ? strerror(e) : "not a regular file");
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%.200s: too large", path);
    }
    pemn_st *st = calloc(1, sizeof *st);
    if (!st) {
        close(fd);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    size_t len = (size_t)sb.st_size;
    if (len > 0) {
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(st);
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "mmap %.200s: %s", path, strerror(e));
        }
        st->map = m;
        st->map_len = len;
        st->bytes = m;
    }
    close(fd);
    st->len = len;
    return finish_open(st, out, err);
}

void pemn_st_free(pemn_st *st)
{
    if (!st)
        return;
    for (uint32_t i = 0; i < st->n; i++)
        free(st->t[i].name);
    free(st->t);
    free(st->by_name);
    for (uint32_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    if (st->map)
        munmap(st->map, st->map_len);
    free(st->owned);
    free(st);
}

/* ---- queries -------------------------------------------------------------------------- */
uint32_t pemn_st_count(const pemn_st *st)
{
    return st ? st->n : 0;
}

pemn_rc pemn_st_tensor(const pemn_st *st, uint32_t i, struct pemn_st_tensor *out)
{
    if (!st || !out)
        return PEMN_EINVAL;
    if (i >= st->n)
        return PEMN_ENOTFOUND;
    const struct st_tensor *t = &st->t[i];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = t->dtype;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, t->ndim * sizeof t->shape[0]);
    out->numel = t->numel;
    out->data = st->bytes + st->data_start + t->begin;
    out->nbytes = t->end - t->begin;
    return PEMN_OK;
}

pemn_rc pemn_st_find(const pemn_st *st, const char *name, uint32_t *index)
{
    if (!st || !name)
        return PEMN_EINVAL;
    uint32_t lo = 0, hi = st->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->by_name[mid].name);
        if (c == 0) {
            if (index)
                *index = st->by_name[mid].idx;
            return PEMN_OK;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return PEMN_ENOTFOUND;
}

const char *pemn_st_meta_get(const pemn_st *st, const char *key)
{
    if (!st || !key)
        return NULL;
    for (uint32_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0)
            return st->meta[i].value;
    return NULL;
}

uint32_t pemn_st_meta_count(const pemn_st *st)
{
    return st ? st->n_meta : 0;
}

pemn_rc pemn_st_meta(const pemn_st *st, uint32_t i, const char **key, const char **value)
{
    if (!st)
        return PEMN_EINVAL;
    if (i >= st->n_meta)
        return PEMN_ENOTFOUND;
    if (key)
        *key = st->meta[i].key;
    if (value)
        *value = st->meta[i].value;
    return PEMN_OK;
}
