/*
 * proto/pkg_verify.c — package digest and signature checks, prototype values, expansion.
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

pemn_rc pemn_pkg_verify(const pemn_pkg *pkg, const pemn_keyring *trusted, struct pemn_err *err)
{
    if (!pkg)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no package");
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    const uint8_t *tr = pkg->bytes + pkg->len - PKG_TRAILER_SIZE;
    const uint8_t *pk = tr, *digest = tr + 32, *sig = tr + 64;

    uint8_t d[PEMN_DIGEST_BYTES];
    hash_prefix(pkg, pkg->len - PKG_TRAILER_SIZE, d);
    if (sodium_memcmp(d, digest, PEMN_DIGEST_BYTES) != 0)
        return proto_err(err, PEMN_ECORRUPT, pkg->len - PKG_TRAILER_SIZE + 32,
                         "content digest does not match the content");

    uint8_t msg[PKG_SIG_DOMAIN_LEN + PEMN_DIGEST_BYTES];
    memcpy(msg, PKG_SIG_DOMAIN, PKG_SIG_DOMAIN_LEN); /* includes the terminating NUL */
    memcpy(msg + PKG_SIG_DOMAIN_LEN, digest, PEMN_DIGEST_BYTES);
    if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0)
        return proto_err(err, PEMN_EBADSIG, pkg->len - PKG_TRAILER_SIZE + 64,
                         "signature does not verify under the embedded signer key");

    struct pemn_pubkey signer;
    memcpy(signer.bytes, pk, PEMN_PUBKEY_BYTES);
    uint8_t id[PEMN_KEYID_BYTES];
    char idhex[PEMN_KEYID_TEXT_MAX];
    pemn_key_id(&signer, id);
    pemn_keyid_format(id, idhex);
    const struct pemn_pubkey *k = pemn_keyring_find(trusted, id);
    if (!k || sodium_memcmp(k->bytes, signer.bytes, PEMN_PUBKEY_BYTES) != 0)
        return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                         "signed by key %s, which is not trusted", idhex);
    return PEMN_OK;
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
        /* elements before the next multiple of 8: one at a time, then whole mask bytes */
        uint64_t head = (8 - first % 8) % 8;
        head = head < n ? head : n;
        for (uint64_t k = 0; k < head; k++) {
            uint64_t e = first + k;
            float w = t->scale * v[(t->offset % d_v + e % d_v) % d_v];
            out[k] = w * (float)((t->bits[e >> 3] >> (e & 7)) & 1u);
        }
        if (n > head) {
            uint64_t e = first + head;
            proto_expand_f32(out + head, t->bits + e / 8, n - head, v, d_v,
                             (t->offset % d_v + e % d_v) % d_v, t->scale);
        }
        return PEMN_OK;
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
