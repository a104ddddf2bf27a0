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
void pemn_pkg_digest(const pemn_pkg *pkg, uint8_t out[PEMN_DIGEST_BYTES])
{
    pemn_sha256(pkg->bytes, pkg->len, out);
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
    if (t->numel == 0)
        return PEMN_OK;
    const uint8_t *p = t->data;
    if (t->masked) {
        const float *v;
        pemn_rc rc = proto_pkg_values(pkg, t->proto, &v, err);
        if (rc)
            return rc;
        proto_expand_f32(out, p, t->numel, v, pkg->protos[t->proto].length, t->offset, t->scale);
        return PEMN_OK;
    }
    switch (t->dtype) {
    case PEMN_DT_F32:
        if (host_is_le())
            memcpy(out, p, (size_t)t->numel * 4);
        else
            for (uint64_t j = 0; j < t->numel; j++)
                out[j] = proto_f32_from_bits(proto_le32(p + 4 * j));
        return PEMN_OK;
    case PEMN_DT_F16:
        for (uint64_t j = 0; j < t->numel; j++)
            out[j] = proto_f16_to_f32(proto_le16(p + 2 * j));
        return PEMN_OK;
    case PEMN_DT_BF16:
        for (uint64_t j = 0; j < t->numel; j++)
            out[j] = proto_bf16_to_f32(proto_le16(p + 2 * j));
        return PEMN_OK;
    case PEMN_DT_F64:
        for (uint64_t j = 0; j < t->numel; j++) {
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
