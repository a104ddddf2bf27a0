/*
 * proto/pkg_write.c — the package builder: collects a model, serialises it in the layout of
 * proto/pkg_layout.h (docs/FORMAT.md), digests and signs it.
 *
 * Every input is copied and validated when it is added, with the same rules the reader
 * enforces, so a package the builder writes always opens. Counts are bounded by the
 * format limits and the bytes held by PEMN_BUILDER_MAX_BYTES.
 */
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/maskcode.h"
#include "proto/pkg_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct bproto {
    uint32_t kind, gen;
    uint64_t length;
    float scale;
    uint8_t seed[32];
    float *values; /* explicit only */
    uint64_t uses; /* elements of masked tensors that reference it (saturating) */
};

struct btensor {
    char *name;
    size_t name_len;
    int masked;
    pemn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[PEMN_MAX_DIMS];
    uint64_t numel;
    uint32_t proto;
    uint64_t offset;
    float scale;
    uint8_t *data; /* mask in its encoding, or raw dense bytes */
    uint64_t len;
    uint32_t encoding; /* masked: PEMN_MASK_BITS or PEMN_MASK_RANS */
};

struct bmeta {
    char *key, *value;
};

struct pemn_builder {
    char name[PEMN_MAX_LABEL + 1], version[PEMN_MAX_LABEL + 1], strategy[PEMN_MAX_LABEL + 1];
    uint64_t release;
    int64_t created;
    float density;
    struct bmeta *meta;
    uint32_t n_meta, cap_meta;
    struct bproto *protos;
    uint32_t n_protos, cap_protos;
    struct btensor *tensors;
    uint32_t n_tensors, cap_tensors;
    uint32_t *names; /* open-addressing set of tensor indices + 1, by name */
    uint32_t names_cap;
    uint64_t bytes;         /* bytes held, bounded by PEMN_BUILDER_MAX_BYTES */
    uint32_t mask_encoding; /* 0 = the smaller per tensor, else forced (builder.h) */
};

/* ---- validation helpers ----------------------------------------------------------------- */
static int valid_label(const char *s)
{
    size_t n = strnlen(s, PEMN_MAX_LABEL + 1);
    if (n < 1 || n > PEMN_MAX_LABEL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

static int valid_strategy(const char *s)
{
    size_t n = strnlen(s, PEMN_MAX_LABEL + 1);
    if (n > PEMN_MAX_LABEL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* Grows *arr (elements of size es) to hold one more than n, never beyond max. */
static pemn_rc grow(void **arr, uint32_t *cap, uint32_t n, uint32_t max, size_t es)
{
    if (n >= max)
        return PEMN_ETOOBIG;
    if (n < *cap)
        return PEMN_OK;
    uint32_t nc = *cap ? *cap * 2 : 16;
    if (nc > max)
        nc = max;
    void *p = realloc(*arr, (size_t)nc * es);
    if (!p)
        return PEMN_ENOMEM;
    *arr = p;
    *cap = nc;
    return PEMN_OK;
}

static pemn_rc take_bytes(pemn_builder *b, uint64_t n)
{
    if (n > PEMN_BUILDER_MAX_BYTES - b->bytes)
        return PEMN_ETOOBIG;
    b->bytes += n;
    return PEMN_OK;
}

/* ---- tensor name set -------------------------------------------------------------------- */
static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Slot for name: either holding it or the empty slot where it would go. */
static uint32_t name_slot(const pemn_builder *b, const char *s, size_t n)
{
    uint32_t mask = b->names_cap - 1, i = (uint32_t)hash_name(s, n) & mask;
    while (b->names[i]) {
        const struct btensor *t = &b->tensors[b->names[i] - 1];
        if (t->name_len == n && memcmp(t->name, s, n) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static pemn_rc names_reserve(pemn_builder *b)
{
    if ((uint64_t)(b->n_tensors + 1) * 2 <= b->names_cap)
        return PEMN_OK;
    uint32_t nc = b->names_cap ? b->names_cap * 2 : 64;
    uint32_t *old = b->names, oc = b->names_cap;
    b->names = calloc(nc, sizeof *b->names);
    if (!b->names) {
        b->names = old;
        return PEMN_ENOMEM;
    }
    b->names_cap = nc;
    for (uint32_t i = 0; i < oc; i++) {
        if (!old[i])
            continue;
        const struct btensor *t = &b->tensors[old[i] - 1];
        b->names[name_slot(b, t->name, t->name_len)] = old[i];
    }
    free(old);
    return PEMN_OK;
}

/* ---- builder ---------------------------------------------------------------------------- */
pemn_rc pemn_builder_new(const char *name, const char *version, uint64_t release,
                         pemn_builder **out, struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no output");
    *out = NULL;
    if (!name || !valid_label(name))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "model name must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    if (!version || !valid_label(version))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "version label must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    pemn_builder *b = calloc(1, sizeof *b);
    if (!b)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    memcpy(b->name, name, strlen(name) + 1);
    memcpy(b->version, version, strlen(version) + 1);
    b->release = release;
    b->created = (int64_t)time(NULL);
    *out = b;
    return PEMN_OK;
}

void pemn_builder_free(pemn_builder *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; i < b->n_meta; i++) {
        free(b->meta[i].key);
        free(b->meta[i].value);
    }
    for (uint32_t i = 0; i < b->n_protos; i++)
        free(b->protos[i].values);
    for (uint32_t i = 0; i < b->n_tensors; i++) {
        free(b->tensors[i].name);
        free(b->tensors[i].data);
    }
    free(b->meta);
    free(b->protos);
    free(b->tensors);
    free(b->names);
    free(b);
}

pemn_rc pemn_builder_set_strategy(pemn_builder *b, const char *strategy)
{
    if (!b || !strategy || !valid_strategy(strategy))
        return PEMN_EINVAL;
    memcpy(b->strategy, strategy, strlen(strategy) + 1);
    return PEMN_OK;
}

pemn_rc pemn_builder_set_density(pemn_builder *b, float density)
{
    if (!b || !(density >= 0.0f && density <= 1.0f))
        return PEMN_EINVAL;
    b->density = density;
    return PEMN_OK;
}

pemn_rc pemn_builder_set_created(pemn_builder *b, int64_t unix_seconds)
{
    if (!b)
        return PEMN_EINVAL;
    b->created = unix_seconds;
    return PEMN_OK;
}

pemn_rc pemn_builder_add_meta(pemn_builder *b, const char *key, const char *value)
{
    if (!b || !key || !value)
        return PEMN_EINVAL;
    size_t kl = strnlen(key, PEMN_MAX_NAME + 1), vl = strnlen(value, PEMN_MAX_META_VALUE + 1);
    if (kl == 0 || kl > PEMN_MAX_NAME || vl > PEMN_MAX_META_VALUE)
        return PEMN_EINVAL;
    char *v = malloc(vl + 1);
    if (!v)
        return PEMN_ENOMEM;
    memcpy(v, value, vl + 1);
    for (uint32_t i = 0; i < b->n_meta; i++) {
        if (strcmp(b->meta[i].key, key) == 0) {
            uint64_t old = strlen(b->meta[i].value);
            b->bytes -= old;
            if (take_bytes(b, vl) != PEMN_OK) {
                b->bytes += old;
                free(v);
                return PEMN_ETOOBIG;
            }
            free(b->meta[i].value);
            b->meta[i].value = v;
            return PEMN_OK;
        }
    }
    pemn_rc rc = grow((void **)&b->meta, &b->cap_meta, b->n_meta, PEMN_MAX_META, sizeof *b->meta);
    if (!rc)
        rc = take_bytes(b, kl + vl);
    char *k = rc ? NULL : malloc(kl + 1);
    if (!rc && !k) {
        b->bytes -= kl + vl;
        rc = PEMN_ENOMEM;
    }
    if (rc) {
        free(v);
        return rc;
    }
    memcpy(k, key, kl + 1);
    b->meta[b->n_meta++] = (struct bmeta){k, v};
    return PEMN_OK;
}

/* ---- prototypes ------------------------------------------------------------------------- */
static pemn_rc add_proto(pemn_builder *b, const struct bproto *p, uint32_t *id)
{
    pemn_rc rc =
        grow((void **)&b->protos, &b->cap_protos, b->n_protos, PEMN_MAX_PROTOS, sizeof *b->protos);
    if (rc)
        return rc;
    if (id)
        *id = b->n_protos;
    b->protos[b->n_protos++] = *p;
    return PEMN_OK;
}

pemn_rc pemn_builder_add_proto_values(pemn_builder *b, const float *values, uint64_t n,
                                      uint32_t *id)
{
    if (!b || !values || n == 0)
        return PEMN_EINVAL;
    if (n > PEMN_BUILDER_MAX_BYTES / 4)
        return PEMN_ETOOBIG;
    pemn_rc rc = take_bytes(b, n * 4);
    if (rc)
        return rc;
    struct bproto p = {.kind = PEMN_PROTO_EXPLICIT, .length = n};
    p.values = malloc((size_t)n * sizeof(float));
    if (!p.values) {
        b->bytes -= n * 4;
        return PEMN_ENOMEM;
    }
    memcpy(p.values, values, (size_t)n * sizeof(float));
    rc = add_proto(b, &p, id);
    if (rc) {
        free(p.values);
        b->bytes -= n * 4;
    }
    return rc;
}

pemn_rc pemn_builder_add_proto_seeded(pemn_builder *b, uint32_t generator, const uint8_t seed[32],
                                      float scale, uint64_t n, uint32_t *id)
{
    if (!b || !seed || n == 0 || !isfinite(scale))
        return PEMN_EINVAL;
    if (generator != PEMN_GEN_UNIFORM && generator != PEMN_GEN_NORMAL &&
        generator != PEMN_GEN_SIGNED)
        return PEMN_EUNSUPPORTED;
    if (n > PKG_SEEDED_MAX_LEN)
        return PEMN_ETOOBIG;
    struct bproto p = {.kind = PEMN_PROTO_SEEDED, .gen = generator, .length = n, .scale = scale};
    memcpy(p.seed, seed, 32);
    return add_proto(b, &p, id);
}

/* ---- tensors ---------------------------------------------------------------------------- */
static pemn_rc check_shape(uint32_t ndim, const uint64_t *shape, uint64_t *numel,
                           struct pemn_err *err)
{
    if (ndim > PEMN_MAX_DIMS)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%u dimensions (at most %u)", ndim,
                         PEMN_MAX_DIMS);
    if (ndim && !shape)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no shape");
    uint64_t n = 1;
    for (uint32_t d = 0; d < ndim; d++)
        if (proto_mul_overflow(n, shape[d], &n) || n > (UINT64_MAX >> 3))
            return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "shape product too large");
    *numel = n;
    return PEMN_OK;
}

/* Validates the name and the shape and fills the common fields of t. */
static pemn_rc tensor_start(pemn_builder *b, const char *name, uint32_t ndim, const uint64_t *shape,
                            struct btensor *t, struct pemn_err *err)
{
    if (!b || !name)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    size_t nl = strnlen(name, PEMN_MAX_NAME + 1);
    if (nl == 0 || nl > PEMN_MAX_NAME)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor name length outside [1, %u]",
                         PEMN_MAX_NAME);
    if (b->n_tensors >= PEMN_MAX_TENSORS)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "more than %u tensors",
                         PEMN_MAX_TENSORS);
    pemn_rc rc = names_reserve(b);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "out of memory");
    if (b->names[name_slot(b, name, nl)])
        return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "tensor %s already added", name);
    memset(t, 0, sizeof *t);
    rc = check_shape(ndim, shape, &t->numel, err);
    if (rc)
        return rc;
    t->ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->name_len = nl;
    return PEMN_OK;
}

/* Takes ownership of t->data (on failure too); copies the name. */
static pemn_rc tensor_commit(pemn_builder *b, const char *name, struct btensor *t,
                             struct pemn_err *err)
{
    pemn_rc rc = grow((void **)&b->tensors, &b->cap_tensors, b->n_tensors, PEMN_MAX_TENSORS,
                      sizeof *b->tensors);
    if (!rc)
        rc = take_bytes(b, t->len + t->name_len);
    if (!rc) {
        t->name = malloc(t->name_len + 1);
        if (!t->name) {
            b->bytes -= t->len + t->name_len;
            rc = PEMN_ENOMEM;
        }
    }
    if (rc) {
        free(t->data);
        return proto_err(err, rc, PEMN_NO_OFFSET, "cannot add tensor %s: %s", name,
                         pemn_strerror(rc));
    }
    memcpy(t->name, name, t->name_len + 1);
    b->tensors[b->n_tensors] = *t;
    b->names[name_slot(b, t->name, t->name_len)] = b->n_tensors + 1;
    b->n_tensors++;
    if (t->masked) {
        struct bproto *p = &b->protos[t->proto];
        if (proto_add_overflow(p->uses, t->numel, &p->uses))
            p->uses = UINT64_MAX;
    }
    return PEMN_OK;
}

pemn_rc pemn_builder_set_mask_encoding(pemn_builder *b, uint32_t encoding)
{
    if (!b || (encoding != 0 && encoding != PEMN_MASK_BITS && encoding != PEMN_MASK_RANS))
        return PEMN_EINVAL;
    b->mask_encoding = encoding;
    return PEMN_OK;
}

static pemn_rc masked_common(pemn_builder *b, const char *name, uint32_t ndim,
                             const uint64_t *shape, uint32_t proto, uint64_t offset, float scale,
                             const uint8_t *mask, int packed, struct pemn_err *err)
{
    struct btensor t;
    pemn_rc rc = tensor_start(b, name, ndim, shape, &t, err);
    if (rc)
        return rc;
    if (proto >= b->n_protos)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor %s: no prototype %u", name,
                         proto);
    if (offset >= b->protos[proto].length)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor %s: offset %llu >= prototype length %llu", name,
                         (unsigned long long)offset, (unsigned long long)b->protos[proto].length);
    if (!isfinite(scale))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor %s: scale not finite", name);
    if (!mask && t.numel)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor %s: no mask", name);
    t.len = t.numel / 8 + (t.numel % 8 != 0);
    if (t.len > PEMN_BUILDER_MAX_BYTES)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "tensor %s too large", name);
    if (packed && t.numel % 8 && (mask[t.len - 1] >> (t.numel % 8)) != 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor %s: unused trailing mask bits must be zero", name);
    t.data = calloc(t.len ? (size_t)t.len : 1, 1);
    if (!t.data)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    if (packed) {
        memcpy(t.data, mask, (size_t)t.len);
    } else {
        for (uint64_t i = 0; i < t.numel; i++)
            if (mask[i])
                t.data[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    t.encoding = PEMN_MASK_BITS;
    if (t.len && b->mask_encoding != PEMN_MASK_BITS) {
        uint8_t *coded;
        uint64_t clen;
        uint64_t limit = b->mask_encoding == PEMN_MASK_RANS ? 0 : t.len;
        rc = proto_maskcode_encode(t.data, t.len, limit, &coded, &clen, NULL);
        if (rc == PEMN_ENOMEM) {
            free(t.data);
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        }
        if (rc == PEMN_OK && proto_maskcode_ratio_ok(t.len, clen)) {
            free(t.data);
            t.data = coded;
            t.len = clen;
            t.encoding = PEMN_MASK_RANS;
        } else if (rc == PEMN_OK) {
            free(coded);
        }
    }
    t.masked = 1;
    t.dtype = PEMN_DT_F32;
    t.proto = proto;
    t.offset = offset;
    t.scale = scale;
    return tensor_commit(b, name, &t, err);
}

pemn_rc pemn_builder_add_masked(pemn_builder *b, const char *name, uint32_t ndim,
                                const uint64_t *shape, uint32_t proto, uint64_t offset, float scale,
                                const uint8_t *mask, struct pemn_err *err)
{
    return masked_common(b, name, ndim, shape, proto, offset, scale, mask, 0, err);
}

pemn_rc pemn_builder_add_masked_bits(pemn_builder *b, const char *name, uint32_t ndim,
                                     const uint64_t *shape, uint32_t proto, uint64_t offset,
                                     float scale, const uint8_t *bits, struct pemn_err *err)
{
    return masked_common(b, name, ndim, shape, proto, offset, scale, bits, 1, err);
}

pemn_rc pemn_builder_add_dense(pemn_builder *b, const char *name, pemn_dtype dtype, uint32_t ndim,
                               const uint64_t *shape, const void *data, uint64_t nbytes,
                               struct pemn_err *err)
{
    struct btensor t;
    pemn_rc rc = tensor_start(b, name, ndim, shape, &t, err);
    if (rc)
        return rc;
    size_t es = pemn_dtype_size(dtype);
    if (es == 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor %s: invalid dtype %d", name,
                         (int)dtype);
    uint64_t want;
    if (proto_mul_overflow(t.numel, es, &want) || want > PEMN_BUILDER_MAX_BYTES)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "tensor %s too large", name);
    if (nbytes != want)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor %s: %llu bytes given, %llu expected", name,
                         (unsigned long long)nbytes, (unsigned long long)want);
    if (!data && nbytes)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "tensor %s: no data", name);
    t.data = malloc(nbytes ? (size_t)nbytes : 1);
    if (!t.data)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    if (nbytes)
        memcpy(t.data, data, (size_t)nbytes);
    t.len = nbytes;
    t.dtype = dtype;
    return tensor_commit(b, name, &t, err);
}

/* ---- serialisation ---------------------------------------------------------------------- */
struct strbuf {
    uint8_t *p; /* NULL while measuring */
    uint64_t len;
};

/* Appends s (+ NUL) and writes its reference at ref (when writing). */
static void put_str(struct strbuf *sb, uint8_t *ref, const char *s, size_t n)
{
    if (sb->p) {
        memcpy(sb->p + sb->len, s, n);
        sb->p[sb->len + n] = 0;
        proto_put32(ref, (uint32_t)sb->len);
        proto_put32(ref + 4, (uint32_t)n);
    }
    sb->len += n + 1;
}

struct layout {
    uint64_t off[PKG_SEC_KNOWN_MAX + 1], len[PKG_SEC_KNOWN_MAX + 1];
    uint64_t body_end, total;
};

/* Writes (or, with out == NULL, measures) every string of the package. */
static void strings(const pemn_builder *b, uint8_t *out, const struct layout *L, struct strbuf *sb)
{
    uint8_t *m = out ? out + L->off[PKG_SEC_MANIFEST] : NULL;
    uint8_t *meta = out ? out + L->off[PKG_SEC_META] + PKG_TABLE_HDR : NULL;
    uint8_t *ten = out ? out + L->off[PKG_SEC_TENSORS] + PKG_TABLE_HDR : NULL;
    put_str(sb, m ? m + PKG_M_NAME : NULL, b->name, strlen(b->name));
    put_str(sb, m ? m + PKG_M_VERSION : NULL, b->version, strlen(b->version));
    put_str(sb, m ? m + PKG_M_STRATEGY : NULL, b->strategy, strlen(b->strategy));
    for (uint32_t i = 0; i < b->n_meta; i++) {
        uint8_t *e = meta ? meta + (uint64_t)i * PKG_META_ENTRY : NULL;
        put_str(sb, e, b->meta[i].key, strlen(b->meta[i].key));
        put_str(sb, e ? e + 8 : NULL, b->meta[i].value, strlen(b->meta[i].value));
    }
    for (uint32_t i = 0; i < b->n_tensors; i++)
        put_str(sb, ten ? ten + (uint64_t)i * PKG_TENSOR_ENTRY + PKG_T_NAME : NULL,
                b->tensors[i].name, b->tensors[i].name_len);
}

static pemn_rc plan(const pemn_builder *b, struct layout *L, struct pemn_err *err)
{
    struct strbuf sb = {NULL, 0};
    strings(b, NULL, L, &sb);
    if (sb.len > UINT32_MAX)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "string table over 4 GiB");
    uint64_t data = 0;
    for (uint32_t i = 0; i < b->n_protos; i++)
        if (b->protos[i].kind == PEMN_PROTO_EXPLICIT)
            data = pkg_align_up(data) + b->protos[i].length * 4;
    for (uint32_t i = 0; i < b->n_tensors; i++)
        data = pkg_align_up(data) + b->tensors[i].len;
    /* every term is bounded by PEMN_BUILDER_MAX_BYTES (2^36) plus padding: no overflow */
    L->len[PKG_SEC_MANIFEST] = PKG_MANIFEST_SIZE;
    L->len[PKG_SEC_STRINGS] = sb.len;
    L->len[PKG_SEC_META] = PKG_TABLE_HDR + (uint64_t)b->n_meta * PKG_META_ENTRY;
    L->len[PKG_SEC_PROTOS] = PKG_TABLE_HDR + (uint64_t)b->n_protos * PKG_PROTO_ENTRY;
    L->len[PKG_SEC_TENSORS] = PKG_TABLE_HDR + (uint64_t)b->n_tensors * PKG_TENSOR_ENTRY;
    L->len[PKG_SEC_DATA] = data;
    uint64_t pos = pkg_align_up(PKG_HEADER_SIZE + PKG_SEC_KNOWN_MAX * PKG_SECT_ENTRY);
    for (uint32_t t = 1; t <= PKG_SEC_KNOWN_MAX; t++) {
        L->off[t] = pos;
        pos = pkg_align_up(pos + L->len[t]);
    }
    L->body_end = L->off[PKG_SEC_DATA] + L->len[PKG_SEC_DATA];
    L->total = L->body_end + PKG_TRAILER_SIZE;
    if (L->total > SIZE_MAX)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "package too large");
    return PEMN_OK;
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    proto_put32(p, u);
}

static void serialise(const pemn_builder *b, const struct layout *L, uint8_t *out)
{
    memcpy(out, PKG_MAGIC, PKG_MAGIC_LEN);
    proto_put16(out + PKG_H_MAJOR, PKG_MAJOR);
    uint16_t minor = PKG_MINOR;
    for (uint32_t i = 0; i < b->n_tensors; i++)
        if (b->tensors[i].masked && b->tensors[i].encoding == PEMN_MASK_RANS)
            minor = PKG_MINOR_RANS;
    proto_put16(out + PKG_H_MINOR, minor);
    proto_put64(out + PKG_H_FILE_LEN, L->total);
    proto_put32(out + PKG_H_NSECT, PKG_SEC_KNOWN_MAX);
    proto_put64(out + PKG_H_TABLE_OFF, PKG_HEADER_SIZE);
    for (uint32_t t = 1; t <= PKG_SEC_KNOWN_MAX; t++) {
        uint8_t *e = out + PKG_HEADER_SIZE + (t - 1) * PKG_SECT_ENTRY;
        proto_put32(e, t);
        proto_put64(e + 8, L->off[t]);
        proto_put64(e + 16, L->len[t]);
    }
    uint8_t *m = out + L->off[PKG_SEC_MANIFEST];
    proto_put64(m + PKG_M_RELEASE, b->release);
    proto_put64(m + PKG_M_CREATED, (uint64_t)b->created);
    put_f32(m + PKG_M_DENSITY, b->density);

    struct strbuf sb = {out + L->off[PKG_SEC_STRINGS], 0};
    strings(b, out, L, &sb);

    uint8_t *mt = out + L->off[PKG_SEC_META];
    proto_put32(mt, b->n_meta);
    proto_put32(mt + 4, PKG_META_ENTRY);

    uint8_t *data = out + L->off[PKG_SEC_DATA];
    uint64_t dpos = 0;
    uint8_t *pt = out + L->off[PKG_SEC_PROTOS];
    proto_put32(pt, b->n_protos);
    proto_put32(pt + 4, PKG_PROTO_ENTRY);
    for (uint32_t i = 0; i < b->n_protos; i++) {
        const struct bproto *p = &b->protos[i];
        uint8_t *e = pt + PKG_TABLE_HDR + (uint64_t)i * PKG_PROTO_ENTRY;
        proto_put32(e + PKG_P_KIND, p->kind);
        proto_put64(e + PKG_P_LENGTH, p->length);
        if (p->kind == PEMN_PROTO_SEEDED) {
            proto_put32(e + PKG_P_GEN, p->gen);
            put_f32(e + PKG_P_SCALE, p->scale);
            memcpy(e + PKG_P_SEED, p->seed, 32);
        } else {
            dpos = pkg_align_up(dpos);
            proto_put64(e + PKG_P_DATA_OFF, dpos);
            for (uint64_t j = 0; j < p->length; j++)
                put_f32(data + dpos + 4 * j, p->values[j]);
            dpos += p->length * 4;
        }
    }
    uint8_t *tt = out + L->off[PKG_SEC_TENSORS];
    proto_put32(tt, b->n_tensors);
    proto_put32(tt + 4, PKG_TENSOR_ENTRY);
    for (uint32_t i = 0; i < b->n_tensors; i++) {
        const struct btensor *t = &b->tensors[i];
        uint8_t *e = tt + PKG_TABLE_HDR + (uint64_t)i * PKG_TENSOR_ENTRY;
        proto_put32(e + PKG_T_KIND, t->masked ? PKG_TENSOR_MASKED : PKG_TENSOR_DENSE);
        proto_put32(e + PKG_T_DTYPE, (uint32_t)t->dtype);
        proto_put32(e + PKG_T_NDIM, t->ndim);
        if (t->masked) {
            proto_put32(e + PKG_T_PROTO, t->proto);
            proto_put64(e + PKG_T_OFFSET, t->offset);
            put_f32(e + PKG_T_SCALE, t->scale);
            proto_put32(e + PKG_T_ENCODING, t->encoding);
        }
        dpos = pkg_align_up(dpos);
        proto_put64(e + PKG_T_DATA_OFF, dpos);
        proto_put64(e + PKG_T_DATA_LEN, t->len);
        for (uint32_t d = 0; d < t->ndim; d++)
            proto_put64(e + PKG_T_SHAPE + 8 * d, t->shape[d]);
        if (t->len)
            memcpy(data + dpos, t->data, (size_t)t->len);
        dpos += t->len;
    }
}

pemn_rc pemn_builder_finish(pemn_builder *b, const struct pemn_seckey *key, uint8_t **out,
                            size_t *out_len, struct pemn_err *err)
{
    if (!b || !key || !out || !out_len)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    *out_len = 0;
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    /* the secret key's public half must be the one its seed derives */
    uint8_t pk[32], sk2[64];
    crypto_sign_seed_keypair(pk, sk2, key->bytes);
    int same = sodium_memcmp(pk, key->bytes + 32, 32) == 0;
    sodium_memzero(sk2, sizeof sk2);
    if (!same)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "secret key is inconsistent (public half does not match the seed)");
    for (uint32_t i = 0; i < b->n_protos; i++) {
        const struct bproto *p = &b->protos[i];
        uint64_t bound = p->uses > PKG_SEEDED_FREE_LEN ? p->uses : PKG_SEEDED_FREE_LEN;
        if (p->kind == PEMN_PROTO_SEEDED && p->length > bound)
            return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                             "seeded prototype %u: length %llu exceeds what its tensors use "
                             "(%llu)",
                             i, (unsigned long long)p->length, (unsigned long long)bound);
    }
    struct layout L = {0};
    pemn_rc rc = plan(b, &L, err);
    if (rc)
        return rc;
    uint8_t *buf = calloc(1, (size_t)L.total);
    if (!buf)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (%llu bytes)",
                         (unsigned long long)L.total);
    serialise(b, &L, buf);

    uint8_t *tr = buf + L.body_end;
    memcpy(tr, key->bytes + 32, 32);
    pemn_sha256(buf, (size_t)L.body_end, tr + 32);
    uint8_t msg[PKG_SIG_DOMAIN_LEN + PEMN_DIGEST_BYTES];
    memcpy(msg, PKG_SIG_DOMAIN, PKG_SIG_DOMAIN_LEN);
    memcpy(msg + PKG_SIG_DOMAIN_LEN, tr + 32, PEMN_DIGEST_BYTES);
    crypto_sign_detached(tr + 64, NULL, msg, sizeof msg, key->bytes);
    *out = buf;
    *out_len = (size_t)L.total;
    return PEMN_OK;
}

pemn_rc pemn_builder_write_file(pemn_builder *b, const struct pemn_seckey *key, const char *path,
                                struct pemn_err *err)
{
    if (!path || !*path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no output path");
    uint8_t *buf;
    size_t len;
    pemn_rc rc = pemn_builder_finish(b, key, &buf, &len, err);
    if (rc)
        return rc;
    rc = proto_write_atomic(path, buf, len, 0644, err);
    free(buf);
    return rc;
}
