/*
 * libFuzzer target: packing arbitrary safetensors bytes (pemn/pack.h). Whatever packs must
 * open, verify under the signing key, and expand to exactly weight * mask of the checkpoint
 * (PyTorch's product), with as many kept weights as the package says.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pack.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pemn_seckey sk;
static struct pemn_pubkey pk;
static pemn_keyring *kr;

static void check_package(const pemn_st *st, const uint8_t *buf, size_t len)
{
    pemn_pkg *pkg = NULL;
    struct pemn_err err;
    if (pemn_pkg_open_mem(buf, len, 0, &pkg, &err) != PEMN_OK)
        abort();
    if (pemn_pkg_verify(pkg, kr, &err) != PEMN_OK)
        abort();
    for (uint32_t i = 0; i < pemn_pkg_tensor_count(pkg); i++) {
        struct pemn_tensor_info ti;
        struct pemn_st_tensor t;
        uint32_t si;
        if (pemn_pkg_tensor(pkg, i, &ti) != PEMN_OK || pemn_st_find(st, ti.name, &si) != PEMN_OK ||
            pemn_st_tensor(st, si, &t) != PEMN_OK || t.numel != ti.numel)
            abort();
        if (!ti.masked) {
            if (ti.dtype != t.dtype || memcmp(ti.data, t.data, t.nbytes) != 0)
                abort();
            continue;
        }
        float *out = malloc(ti.numel * sizeof *out);
        if (!out)
            abort();
        if (pemn_pkg_expand(pkg, i, out, ti.numel, &err) != PEMN_OK)
            abort();
        uint64_t kept = 0;
        for (uint64_t k = 0; k < ti.numel; k++) {
            int on = (ti.mask[k >> 3] >> (k & 7)) & 1;
            kept += (uint64_t)on;
            /* weight * mask, as PyTorch computes it */
            uint32_t got, want;
            float w;
            memcpy(&w, (const uint8_t *)t.data + 4 * k, 4);
            w = w * (float)on;
            memcpy(&want, &w, 4);
            memcpy(&got, &out[k], 4);
            if (got != want)
                abort();
        }
        if (kept != ti.kept)
            abort();
        free(out);
    }
    pemn_pkg_free(pkg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!kr) {
        if (pemn_key_generate(&sk, &pk) != PEMN_OK || pemn_keyring_new(&kr) != PEMN_OK ||
            pemn_keyring_add(kr, &pk) != PEMN_OK)
            abort();
    }
    pemn_st *st = NULL;
    struct pemn_err err;
    if (pemn_st_open_mem(data, size, 0, &st, &err) != PEMN_OK)
        return 0;
    static const enum pemn_pack_strategy strategies[] = {PEMN_PACK_AUTO, PEMN_PACK_MASK};
    for (size_t s = 0; s < sizeof strategies / sizeof strategies[0]; s++) {
        struct pemn_pack_opts o;
        pemn_pack_opts_init(&o);
        o.name = "fuzz";
        o.version = "1";
        o.strategy = strategies[s];
        o.density = s ? 0.3 : 0.5;
        struct pemn_pack_report r;
        uint8_t *buf = NULL;
        size_t len = 0;
        pemn_rc rc = pemn_pack_safetensors(st, &o, &sk, &buf, &len, &r, &err);
        if (rc == PEMN_OK) {
            check_package(st, buf, len);
            if (r.strategy == PEMN_PACK_AUTO)
                abort();
        } else if (buf || err.rc != rc || !err.msg[0]) {
            abort(); /* a failure leaves nothing behind and says why */
        }
        free(buf);
        pemn_pack_report_free(&r);
    }
    pemn_st_free(st);
    return 0;
}
