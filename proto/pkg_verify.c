/*
 * proto/pkg_verify.c — package identity, prototype values, expansion (signatures:
 * proto/pkg_sigs.c).
 */
#include "proto/err.h"
#include "proto/expand.h"
#include "proto/half.h"
#include "proto/pkg_internal.h"
#include "proto/pkg_layout.h"

#include <pemn/gen.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- identity and verification ---------------------------------------------------------- */
/* SHA-256 of the first n bytes, in chunks, each released from a mapping once hashed: a
 * large mapped package does not stay resident for being hashed. */
static void hash_prefix(const pemn_pkg *pkg, size_t n, uint8_t out[PEMN_DIGEST_BYTES])
{
    crypto_hash_sha256_state hs;
    crypto_hash_sha256_init(&hs);
    for (size_t off = 0; off < n;) {
        size_t k = n - off < ((size_t)8 << 20) ? n - off : ((size_t)8 << 20);
        crypto_hash_sha256_update(&hs, pkg->bytes + off, k);
        proto_pkg_release_bytes(pkg, pkg->bytes + off, k);
        off += k;
    }
    crypto_hash_sha256_final(&hs, out);
}

void pemn_pkg_digest(const pemn_pkg *pkg, uint8_t out[PEMN_DIGEST_BYTES])
{
    if (pemn_init() != PEMN_OK) {
        pemn_sha256(pkg->bytes, pkg->len, out);
        return;
    }
    hash_prefix(pkg, pkg->len, out);
}

/* ---- prototype values ------------------------------------------------------------------- */
static int host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

pemn_rc proto_pkg_values(const pemn_pkg *cpkg, uint32_t i, const float **values,
                         struct pemn_err *err)
{
    pemn_pkg *pkg = (pemn_pkg *)cpkg; /* only the lazily filled cache and its lock change */
    struct pkg_proto *pr = &pkg->protos[i];
    float *v = atomic_load_explicit(&pr->values, memory_order_acquire);
    if (v) {
        *values = v;
        return PEMN_OK;
    }
    if (pr->kind == PEMN_PROTO_EXPLICIT && host_is_le()) {
        /* in place: the values are 64-byte aligned in an 8-byte-aligned mapping */
        *values = (const float *)(const void *)pr->data;
        return PEMN_OK;
    }
    pemn_rc rc = PEMN_OK;
    pthread_mutex_lock(&pkg->lock);
    v = atomic_load_explicit(&pr->values, memory_order_relaxed);
    if (!v) {
        /* length bounded at open: seeded <= 2^34 and <= what its tensors use */
        v = malloc((size_t)pr->length * sizeof *v);
        if (!v) {
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET,
                           "out of memory for %llu prototype values",
                           (unsigned long long)pr->length);
        } else if (pr->kind == PEMN_PROTO_EXPLICIT) {
            for (uint64_t j = 0; j < pr->length; j++)
                v[j] = proto_f32_from_bits(proto_le32(pr->data + 4 * j));
        } else {
            rc = pemn_gen_fill(pr->gen, pr->seed, pr->scale, 0, v, (size_t)pr->length);
            if (rc)
                proto_err(err, rc, PEMN_NO_OFFSET, "prototype %u: generator %u failed: %s", i,
                          pr->gen, pemn_strerror(rc));
        }
        if (rc) {
            free(v);
            v = NULL;
        } else {
            atomic_store_explicit(&pr->values, v, memory_order_release);
        }
    }
    pthread_mutex_unlock(&pkg->lock);
    if (v)
        *values = v;
    return rc;
}

pemn_rc pemn_pkg_proto_values(const pemn_pkg *pkg, uint32_t i, const float **values,
                              struct pemn_err *err)
{
    if (!pkg || !values)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    if (i >= pkg->n_protos)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no prototype %u", i);
    return proto_pkg_values(pkg, i, values, err);
}

/* ---- expansion -------------------------------------------------------------------------- */
/* Elements [first, first + n) of masked tensor t from `bits`, whose byte 0 holds elements
 * base .. base + 7 (base a multiple of 8, base <= first). */
static void expand_bits(const struct pkg_tensor *t, const float *v, uint64_t d_v,
                        const uint8_t *bits, uint64_t base, uint64_t first, uint64_t n, float *out)
{
    /* elements before the next multiple of 8: one at a time, then whole mask bytes */
    uint64_t head = (8 - first % 8) % 8;
    head = head < n ? head : n;
    for (uint64_t k = 0; k < head; k++) {
        uint64_t e = first + k, b = e - base;
        float w = t->scale * v[(t->offset % d_v + e % d_v) % d_v];
        out[k] = w * (float)((bits[b >> 3] >> (b & 7)) & 1u);
    }
    if (n > head) {
        uint64_t e = first + head;
        proto_expand_f32(out + head, bits + (e - base) / 8, n - head, v, d_v,
                         (t->offset % d_v + e % d_v) % d_v, t->scale);
    }
}

/* The same for a coded mask (encoding 2): decoded from the checkpoint at or before the
 * range, PROTO_MASKDEC_SCRATCH mask bytes at a time, in the decoder's own bounded memory. */
static pemn_rc expand_coded(const struct pkg_tensor *t, const float *v, uint64_t d_v,
                            uint64_t first, uint64_t n, float *out, struct pemn_err *err)
{
    struct proto_maskdec *d;
    pemn_rc rc = proto_maskdec_open(t->data, t->data_len, &d, err);
    if (rc)
        return rc;
    uint64_t b0 = first / 8, b1 = (first + n + 7) / 8, c = b0 / PROTO_MASKCODE_CKPT;
    proto_maskdec_seek(d, &t->ckpt[c], c * PROTO_MASKCODE_CKPT);
    if (b0 > c * PROTO_MASKCODE_CKPT)
        rc = proto_maskdec_next(d, NULL, b0 - c * PROTO_MASKCODE_CKPT, err);
    uint8_t *s = proto_maskdec_scratch(d);
    for (uint64_t at = b0; at < b1 && !rc;) {
        uint64_t m = b1 - at < PROTO_MASKDEC_SCRATCH ? b1 - at : PROTO_MASKDEC_SCRATCH;
        if ((rc = proto_maskdec_next(d, s, m, err)) != PEMN_OK)
            break;
        uint64_t e0 = at * 8 > first ? at * 8 : first, e1 = (at + m) * 8;
        e1 = e1 < first + n ? e1 : first + n;
        expand_bits(t, v, d_v, s, at * 8, e0, e1 - e0, out + (e0 - first));
        at += m;
    }
    proto_maskdec_free(d);
    return rc;
}

pemn_rc pemn_pkg_expand(const pemn_pkg *pkg, uint32_t i, float *out, uint64_t n_out,
                        struct pemn_err *err)
{
    if (!pkg || (!out && n_out))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    if (i >= pkg->n_tensors)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no tensor %u", i);
    const struct pkg_tensor *t = &pkg->tensors[i];
    if (n_out != t->numel)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor %s has %llu elements, buffer holds %llu", t->name,
                         (unsigned long long)t->numel, (unsigned long long)n_out);
    return pemn_pkg_expand_range(pkg, i, 0, out, n_out, err);
}

pemn_rc pemn_pkg_expand_range(const pemn_pkg *pkg, uint32_t i, uint64_t first, float *out,
                              uint64_t n, struct pemn_err *err)
{
    if (!pkg || (!out && n))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    if (i >= pkg->n_tensors)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no tensor %u", i);
    const struct pkg_tensor *t = &pkg->tensors[i];
    if (first > t->numel || n > t->numel - first)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "tensor %s has %llu elements, range [%llu, +%llu) is outside", t->name,
                         (unsigned long long)t->numel, (unsigned long long)first,
                         (unsigned long long)n);
    if (n == 0)
        return PEMN_OK;
    if (t->masked) {
        const float *v;
        pemn_rc rc = proto_pkg_values(pkg, t->proto, &v, err);
        if (rc)
            return rc;
        uint64_t d_v = pkg->protos[t->proto].length;
        const uint8_t *bits = t->bits ? t->bits : atomic_load(&((struct pkg_tensor *)t)->decoded);
        if (bits) {
            expand_bits(t, v, d_v, bits, 0, first, n, out);
            return PEMN_OK;
        }
        return expand_coded(t, v, d_v, first, n, out, err);
    }
    const uint8_t *p = t->data + first * pemn_dtype_size(t->dtype);
    switch (t->dtype) {
    case PEMN_DT_F32:
        if (host_is_le())
            memcpy(out, p, (size_t)n * 4);
        else
            for (uint64_t j = 0; j < n; j++)
                out[j] = proto_f32_from_bits(proto_le32(p + 4 * j));
        return PEMN_OK;
    case PEMN_DT_F16:
        for (uint64_t j = 0; j < n; j++)
            out[j] = proto_f16_to_f32(proto_le16(p + 2 * j));
        return PEMN_OK;
    case PEMN_DT_BF16:
        for (uint64_t j = 0; j < n; j++)
            out[j] = proto_bf16_to_f32(proto_le16(p + 2 * j));
        return PEMN_OK;
    case PEMN_DT_F64:
        for (uint64_t j = 0; j < n; j++) {
            uint64_t u = proto_le64(p + 8 * j);
            double dv;
            memcpy(&dv, &u, sizeof dv);
            out[j] = (float)dv; /* round to nearest even; NaN stays NaN, overflow to inf */
        }
        return PEMN_OK;
    default:
        return proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                         "tensor %s: dtype %s does not convert to float32", t->name,
                         pemn_dtype_name(t->dtype));
    }
}

pemn_rc pemn_pkg_expand_all(const pemn_pkg *pkg, float *const *outs, uint32_t n,
                            struct pemn_err *err)
{
    if (!pkg || (!outs && n))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    if (n != pkg->n_tensors)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%u output buffers for %u tensors", n,
                         pkg->n_tensors);
    for (uint32_t i = 0; i < n; i++) {
        if (!outs[i])
            continue;
        pemn_rc rc = pemn_pkg_expand(pkg, i, outs[i], pkg->tensors[i].numel, err);
        if (rc)
            return rc; /* err names the tensor */
    }
    return PEMN_OK;
}
