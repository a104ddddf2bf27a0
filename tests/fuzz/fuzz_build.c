/*
 * libFuzzer target: the builder and the reader agree. The input is read as a program of
 * builder calls (prototypes, masked and dense tensors, metadata, labels); whatever the
 * builder accepts and finishes must open, verify under its key, list exactly the tensors
 * that were accepted, and expand masked tensors to scale * proto[(offset + i) % d_v].
 */
#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t byte(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static float f32(struct in *in)
{
    uint32_t u = 0;
    for (int i = 0; i < 4; i++)
        u |= (uint32_t)byte(in) << (8 * i);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#define MAXT 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pemn_seckey sk;
    static struct pemn_pubkey pk;
    static pemn_keyring *kr;
    if (!kr) {
        uint8_t seed[32];
        memset(seed, 7, sizeof seed);
        if (sodium_init() < 0 || pemn_keyring_new(&kr) != PEMN_OK)
            abort();
        crypto_sign_seed_keypair(pk.bytes, sk.bytes, seed);
        if (pemn_keyring_add(kr, &pk) != PEMN_OK)
            abort();
    }
    struct in in = {data, size};
    pemn_builder *b;
    if (pemn_builder_new("fz", "1", byte(&in), &b, NULL) != PEMN_OK)
        abort();
    uint32_t n_protos = 0, n_tensors = 0;
    uint64_t proto_len[64];
    for (int step = 0; step < 64 && in.n; step++) {
        uint8_t op = byte(&in) % 7;
        uint64_t shape[4];
        uint32_t ndim = byte(&in) % 4;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            shape[d] = byte(&in) % 7;
            numel *= shape[d];
        }
        char name[16];
        uint8_t nb = byte(&in);
        /* mostly new names, sometimes an existing one (must be refused) */
        snprintf(name, sizeof name, "t%u", nb < 16 && n_tensors ? nb % n_tensors : n_tensors);
        uint32_t id;
        pemn_rc rc;
        if (op == 0 && n_protos < 64) {
            float v[16];
            uint32_t n = 1 + byte(&in) % 16;
            for (uint32_t i = 0; i < n; i++)
                v[i] = f32(&in);
            if (pemn_builder_add_proto_values(b, v, n, &id) == PEMN_OK)
                proto_len[n_protos++] = n;
        } else if (op == 1 && n_protos < 64) {
            uint8_t seed[32] = {0};
            seed[0] = byte(&in);
            uint32_t gen = byte(&in) % 5;
            uint64_t n = 1 + byte(&in) * 300u;
            rc = pemn_builder_add_proto_seeded(b, gen, seed, f32(&in), n, &id);
            if (rc == PEMN_OK)
                proto_len[n_protos++] = n;
        } else if (op == 2) {
            uint8_t mask[216];
            for (uint64_t i = 0; i < numel; i++)
                mask[i] = byte(&in) & 1;
            uint32_t proto = byte(&in) % (n_protos + 1);
            uint64_t off = byte(&in);
            rc = pemn_builder_add_masked(b, name, ndim, shape, proto, off, f32(&in), mask, NULL);
            if (rc == PEMN_OK)
                n_tensors++;
        } else if (op == 3) {
            pemn_dtype dt = (pemn_dtype)(byte(&in) % 16);
            uint8_t raw[216 * 8];
            for (size_t i = 0; i < sizeof raw; i++)
                raw[i] = (uint8_t)(i * 31);
            uint64_t nbytes = numel * pemn_dtype_size(dt);
            if (byte(&in) == 0)
                nbytes++; /* wrong size: must be refused */
            rc = pemn_builder_add_dense(b, name, dt, ndim, shape, raw, nbytes, NULL);
            if (rc == PEMN_OK)
                n_tensors++;
        } else if (op == 4) {
            char k[9] = {0}, v[9] = {0};
            uint32_t kl = byte(&in) % 8, vl = byte(&in) % 8;
            for (uint32_t i = 0; i < kl; i++)
                k[i] = (char)(1 + byte(&in) % 255);
            for (uint32_t i = 0; i < vl; i++)
                v[i] = (char)(1 + byte(&in) % 255);
            (void)pemn_builder_add_meta(b, k, v);
        } else if (op == 5) {
            char s[9] = {0};
            uint32_t l = byte(&in) % 8;
            for (uint32_t i = 0; i < l; i++)
                s[i] = (char)(1 + byte(&in) % 255);
            (void)pemn_builder_set_strategy(b, s);
        } else {
            (void)pemn_builder_set_density(b, f32(&in));
        }
    }
    uint8_t *buf;
    size_t len;
    pemn_rc rc = pemn_builder_finish(b, &sk, &buf, &len, NULL);
    pemn_builder_free(b);
    if (rc != PEMN_OK) {
        if (rc != PEMN_ETOOBIG) /* only the seeded-length rule is checked this late */
            abort();
        return 0;
    }
    pemn_pkg *pkg;
    if (pemn_pkg_open_mem(buf, len, 0, &pkg, NULL) != PEMN_OK)
        abort();
    if (pemn_pkg_verify(pkg, kr, NULL) != PEMN_OK || pemn_pkg_tensor_count(pkg) != n_tensors)
        abort();
    for (uint32_t i = 0; i < n_tensors; i++) {
        struct pemn_tensor_info t;
        if (pemn_pkg_tensor(pkg, i, &t) != PEMN_OK)
            abort();
        float out[216];
        rc = pemn_pkg_expand(pkg, i, out, t.numel, NULL);
        if (rc != PEMN_OK && rc != PEMN_EUNSUPPORTED)
            abort();
        if (!t.masked || rc != PEMN_OK)
            continue;
        const float *v;
        if (pemn_pkg_proto_values(pkg, t.proto, &v, NULL) != PEMN_OK)
            abort();
        uint64_t dv = proto_len[t.proto];
        for (uint64_t j = 0; j < t.numel; j++) {
            float want =
                (t.scale * v[(t.offset + j) % dv]) * (float)((t.mask[j >> 3] >> (j & 7)) & 1);
            if (memcmp(&want, &out[j], 4) != 0)
                abort();
        }
    }
    pemn_pkg_free(pkg);
    free(buf);
    return 0;
}
