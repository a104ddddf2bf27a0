/*
 * proto/pkg_st.c — pemn_pkg_write_safetensors: a package as a dense safetensors file.
 *
 * Built only on the public package API and the safetensors writer. Masked tensors become
 * F32 and are expanded at write time, chunk by chunk (the writer's lazy tensors and
 * pemn_pkg_expand_range), so memory stays bounded whatever the model size; dense
 * tensors are copied as stored. __metadata__ holds the package's own metadata pairs, then
 * the manifest under "pemn.*" keys (which win over a package pair of the same name), and
 * "format": "pt" (what Hugging Face loaders look for).
 */
#include "proto/err.h"
#include "proto/pkg_internal.h"
#include "proto/safetensors_int.h"

#include <inttypes.h>
#include <pemn/pkg.h>
#include <stdio.h>
#include <string.h>

static pemn_rc fill_expanded(void *ctx, uint64_t i, uint64_t off, void *buf, uint64_t nbytes,
                             struct pemn_err *err)
{
    const pemn_pkg *pkg = ctx;
    float *out = buf;
    pemn_rc rc = pemn_pkg_expand_range(pkg, (uint32_t)i, off / sizeof(float), out,
                                       nbytes / sizeof(float), err);
    if (rc != PEMN_OK)
        return rc;
    proto_pkg_release(pkg, (uint32_t)i, off / sizeof(float), nbytes / sizeof(float));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint8_t *b = buf;
    for (uint64_t k = 0; k < nbytes / 4; k++) {
        uint32_t u;
        memcpy(&u, b + 4 * k, 4);
        proto_put32(b + 4 * k, u);
    }
#endif
    return PEMN_OK;
}

static pemn_rc add_manifest(pemn_st_writer *w, const pemn_pkg *pkg, struct pemn_err *err)
{
    struct pemn_pkg_info info;
    pemn_rc rc = pemn_pkg_info(pkg, &info);
    if (rc != PEMN_OK)
        return proto_err(err, rc, PEMN_NO_OFFSET, "cannot read the package manifest");
    for (uint32_t i = 0; i < info.n_meta; i++) {
        const char *k, *v;
        if ((rc = pemn_pkg_meta(pkg, i, &k, &v)) != PEMN_OK ||
            (rc = pemn_st_writer_add_meta(w, k, v)) != PEMN_OK)
            return proto_err(err, rc, PEMN_NO_OFFSET, "metadata pair %u", i);
    }
    char num[3][32], digest[PEMN_DIGEST_TEXT_MAX], signer[PEMN_PUBKEY_TEXT_MAX],
        signer_id[PEMN_KEYID_TEXT_MAX], fmt[16];
    uint8_t d[PEMN_DIGEST_BYTES];
    snprintf(num[0], sizeof num[0], "%" PRIu64, info.release);
    snprintf(num[1], sizeof num[1], "%" PRId64, info.created);
    snprintf(num[2], sizeof num[2], "%.9g", (double)info.density);
    snprintf(fmt, sizeof fmt, "%u.%u", info.format_major, info.format_minor);
    pemn_pkg_digest(pkg, d);
    pemn_digest_format(d, digest);
    pemn_pubkey_format(&info.signer, signer);
    pemn_keyid_format(info.signer_id, signer_id);
    const char *const pairs[][2] = {
        {"format", "pt"},
        {"pemn.name", info.name},
        {"pemn.version", info.version},
        {"pemn.release", num[0]},
        {"pemn.created", num[1]},
        {"pemn.strategy", info.strategy ? info.strategy : ""},
        {"pemn.density", num[2]},
        {"pemn.format", fmt},
        {"pemn.digest", digest},
        {"pemn.signer", signer},
        {"pemn.signer_id", signer_id},
    };
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
        if ((rc = pemn_st_writer_add_meta(w, pairs[p][0], pairs[p][1] ? pairs[p][1] : "")) !=
            PEMN_OK)
            return proto_err(err, rc, PEMN_NO_OFFSET, "metadata %s", pairs[p][0]);
    return PEMN_OK;
}

pemn_rc pemn_pkg_write_safetensors(const pemn_pkg *pkg, const char *path, struct pemn_err *err)
{
    if (!pkg || !path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    pemn_st_writer *w;
    pemn_rc rc = pemn_st_writer_new(&w);
    if (rc != PEMN_OK)
        return proto_err(err, rc, PEMN_NO_OFFSET, "out of memory");
    if ((rc = add_manifest(w, pkg, err)) != PEMN_OK)
        goto out;
    uint32_t n = pemn_pkg_tensor_count(pkg);
    for (uint32_t i = 0; i < n; i++) {
        /* the package's own record, not pemn_pkg_tensor: that would decode a whole coded
         * mask into memory, and expansion decodes it range by range instead */
        const struct pkg_tensor *pt = &pkg->tensors[i];
        struct {
            const char *name;
            pemn_dtype dtype;
            uint32_t ndim;
            const uint64_t *shape;
            uint64_t numel;
            int masked;
            const void *data;
        } t = {pt->name, pt->dtype, pt->ndim, pt->shape, pt->numel, pt->masked, pt->data};
        if (t.masked) {
            rc = proto_st_writer_add_lazy(w, t.name, PEMN_DT_F32, t.ndim, t.shape, fill_expanded,
                                          (void *)pkg, i, err);
        } else {
            uint64_t nbytes;
            if (proto_mul_overflow(t.numel, pemn_dtype_size(t.dtype), &nbytes)) {
                rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "tensor %s: size overflows",
                               t.name);
                goto out;
            }
            rc = pemn_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data, nbytes, err);
        }
        if (rc != PEMN_OK)
            goto out;
    }
    rc = pemn_st_writer_write_file(w, path, err);
out:
    pemn_st_writer_free(w);
    return rc;
}
