/*
 * libFuzzer target: the .pemn reader. Opens the input (borrowed and copied), walks every
 * accessor, expands every tensor into a bounded buffer and verifies against a fixed key.
 * Any crash, sanitizer report, hang or leak is a bug; so is a successful open whose
 * accessors disagree with each other.
 */
#include <pemn/pkg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXPAND (UINT64_C(1) << 22)

static void walk(const pemn_pkg *pkg, const pemn_keyring *kr)
{
    struct pemn_pkg_info info;
    if (pemn_pkg_info(pkg, &info) != PEMN_OK)
        abort();
    if (strlen(info.name) == 0 || strlen(info.version) == 0)
        abort();
    for (uint32_t i = 0; i <= info.n_meta; i++) {
        const char *k = NULL, *v = NULL;
        pemn_rc rc = pemn_pkg_meta(pkg, i, &k, &v);
        if ((rc == PEMN_OK) != (i < info.n_meta))
            abort();
        if (rc == PEMN_OK && pemn_pkg_meta_get(pkg, k) != v)
            abort(); /* keys are unique */
    }
    for (uint32_t i = 0; i < info.n_protos; i++) {
        struct pemn_proto_info pi;
        if (pemn_pkg_proto(pkg, i, &pi) != PEMN_OK || pi.length == 0)
            abort();
        const float *v;
        if (pemn_pkg_proto_values(pkg, i, &v, NULL) == PEMN_OK) {
            volatile float sink = v[0] + v[pi.length - 1];
            (void)sink;
        }
    }
    uint64_t params = 0;
    for (uint32_t i = 0; i < pemn_pkg_tensor_count(pkg); i++) {
        struct pemn_tensor_info t;
        if (pemn_pkg_tensor(pkg, i, &t) != PEMN_OK)
            abort();
        uint32_t idx;
        if (pemn_pkg_find(pkg, t.name, &idx) != PEMN_OK || idx != i)
            abort();
        params += t.numel;
        if (t.masked && t.kept > t.numel)
            abort();
        if (t.numel > MAX_EXPAND)
            continue;
        float *out = malloc((size_t)t.numel * sizeof *out + 1);
        if (!out)
            continue;
        pemn_rc rc = pemn_pkg_expand(pkg, i, out, t.numel, NULL);
        if (rc != PEMN_OK && rc != PEMN_EUNSUPPORTED && rc != PEMN_ENOMEM)
            abort();
        if (t.masked && rc == PEMN_OK) {
            uint64_t nz = 0;
            for (uint64_t j = 0; j < t.numel; j++)
                nz += ((t.mask[j >> 3] >> (j & 7)) & 1);
            if (nz != t.kept)
                abort();
        }
        free(out);
    }
    if (params != info.n_params)
        abort();
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_pkg_digest(pkg, d);
    pemn_rc rc = pemn_pkg_verify(pkg, kr, NULL);
    if (rc != PEMN_OK && rc != PEMN_ECORRUPT && rc != PEMN_EBADSIG && rc != PEMN_EUNTRUSTED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pemn_keyring *kr;
    if (!kr) {
        /* the key of tests/data/signer.pub: the seed 32 x 0x01 */
        static const char pub[] =
            "pemn-ed25519-pub 8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
        struct pemn_pubkey pk;
        if (pemn_keyring_new(&kr) != PEMN_OK ||
            pemn_pubkey_parse(pub, strlen(pub), &pk, NULL) != PEMN_OK ||
            pemn_keyring_add(kr, &pk) != PEMN_OK)
            abort();
    }
    for (unsigned flags = 0; flags <= PEMN_OPEN_COPY; flags += PEMN_OPEN_COPY) {
        pemn_pkg *pkg = NULL;
        pemn_rc rc = pemn_pkg_open_mem(data, size, flags, &pkg, NULL);
        if (rc == PEMN_OK) {
            walk(pkg, kr);
            pemn_pkg_free(pkg);
        } else if (pkg) {
            abort();
        }
    }
    return 0;
}
