/*
 * tests/tools/pemn_mkpkg.c — makes signed test packages for shell tests and benchmarks,
 * through the public builder API (independent of the `pemn` CLI).
 *
 *   pemn_mkpkg keygen BASE                 writes BASE.key and BASE.pub
 *   pemn_mkpkg pack KEY.key NAME VERSION RELEASE BYTES OUT [SEED]
 *       a package of about BYTES bytes: one explicit 16-value prototype and one masked
 *       tensor of BYTES*8 elements whose mask comes from SEED (default 1).
 *   pemn_mkpkg many KEY.key NAME COUNT BYTES DIR
 *       COUNT packages NAME 1..COUNT (release = version number) as DIR/NAME-i.pemn
 *   pemn_mkpkg rich KEY.key NAME VERSION RELEASE OUT [KEY=VALUE...]
 *       a small network like a trained one: a seeded prototype (uniform, 4096 values), an
 *       explicit one (64 values), two masked layers (one per prototype), a dense bias, and
 *       the given metadata pairs (for the console's tests)
 */
#include <pemn/builder.h>
#include <pemn/key.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what, const struct pemn_err *e)
{
    fprintf(stderr, "pemn_mkpkg: %s: %s\n", what, e && e->msg[0] ? e->msg : "failed");
    return 1;
}

static int make(const struct pemn_seckey *sk, const char *name, const char *version,
                uint64_t release, uint64_t bytes, const char *out, uint64_t seed)
{
    struct pemn_err e = {0};
    pemn_builder *b = NULL;
    if (pemn_builder_new(name, version, release, &b, &e))
        return die("builder", &e);
    float proto[16];
    for (int i = 0; i < 16; i++)
        proto[i] = (float)(i - 8) / 8.0f;
    uint32_t pid;
    uint64_t n = bytes ? bytes * 8 : 8;
    uint8_t *mask = malloc(n);
    if (!mask)
        return die("malloc", NULL);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        mask[i] = (uint8_t)(x & 1);
    }
    uint64_t shape[1] = {n};
    int rc = pemn_builder_set_strategy(b, "rp") || pemn_builder_set_density(b, 0.5f) ||
             pemn_builder_add_proto_values(b, proto, 16, &pid) ||
             pemn_builder_add_masked(b, "layer.weight", 1, shape, pid, 0, 1.0f, mask, &e) ||
             pemn_builder_write_file(b, sk, out, &e);
    free(mask);
    pemn_builder_free(b);
    return rc ? die(out, &e) : 0;
}

static int make_rich(const struct pemn_seckey *sk, int argc, char **argv)
{
    struct pemn_err e = {0};
    pemn_builder *b = NULL;
    if (pemn_builder_new(argv[3], argv[4], strtoull(argv[5], NULL, 10), &b, &e))
        return die("builder", &e);
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i * 7 + 1);
    float proto[64], bias[32];
    for (int i = 0; i < 64; i++)
        proto[i] = (float)(i - 32) / 32.0f;
    for (int i = 0; i < 32; i++)
        bias[i] = 0.01f * (float)i;
    static uint8_t m1[256 * 784], m2[32 * 256];
    for (size_t i = 0; i < sizeof m1; i++)
        m1[i] = (uint8_t)((i * 2654435761u >> 7) & 1);
    for (size_t i = 0; i < sizeof m2; i++)
        m2[i] = (uint8_t)((i * 40503u >> 5) & 1);
    uint64_t s1[2] = {256, 784}, s2[2] = {32, 256}, s3[1] = {32};
    uint32_t p1, p2;
    int rc = pemn_builder_set_strategy(b, "one-layer") || pemn_builder_set_density(b, 0.5f) ||
             pemn_builder_add_proto_seeded(b, 1, seed, 0.05f, 4096, &p1) ||
             pemn_builder_add_proto_values(b, proto, 64, &p2) ||
             pemn_builder_add_masked(b, "fc1.weight", 2, s1, p1, 0, 1.0f, m1, &e) ||
             pemn_builder_add_masked(b, "fc2.weight", 2, s2, p2, 0, 1.0f, m2, &e) ||
             pemn_builder_add_dense(b, "fc2.bias", PEMN_DT_F32, 1, s3, bias, sizeof bias, &e);
    for (int i = 7; i < argc && !rc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return die("metadata must be KEY=VALUE", NULL);
        *eq = '\0';
        rc = pemn_builder_add_meta(b, argv[i], eq + 1);
    }
    if (!rc)
        rc = pemn_builder_write_file(b, sk, argv[6], &e);
    pemn_builder_free(b);
    return rc ? die(argv[6], &e) : 0;
}

int main(int argc, char **argv)
{
    struct pemn_err e = {0};
    if (argc == 3 && strcmp(argv[1], "keygen") == 0) {
        struct pemn_seckey sk;
        struct pemn_pubkey pk;
        if (pemn_key_generate(&sk, &pk) || pemn_key_save(argv[2], &sk, &e))
            return die(argv[2], &e);
        pemn_seckey_wipe(&sk);
        return 0;
    }
    if ((argc == 8 || argc == 9) && strcmp(argv[1], "pack") == 0) {
        struct pemn_seckey sk;
        if (pemn_seckey_load(argv[2], &sk, &e))
            return die(argv[2], &e);
        int rc =
            make(&sk, argv[3], argv[4], strtoull(argv[5], NULL, 10), strtoull(argv[6], NULL, 10),
                 argv[7], argc == 9 ? strtoull(argv[8], NULL, 10) : 1);
        pemn_seckey_wipe(&sk);
        return rc;
    }
    if (argc >= 7 && strcmp(argv[1], "rich") == 0) {
        struct pemn_seckey sk;
        if (pemn_seckey_load(argv[2], &sk, &e))
            return die(argv[2], &e);
        return make_rich(&sk, argc, argv);
    }
    if (argc == 7 && strcmp(argv[1], "many") == 0) {
        struct pemn_seckey sk;
        if (pemn_seckey_load(argv[2], &sk, &e))
            return die(argv[2], &e);
        unsigned long count = strtoul(argv[4], NULL, 10);
        uint64_t bytes = strtoull(argv[5], NULL, 10);
        int rc = 0;
        for (unsigned long i = 1; i <= count && !rc; i++) {
            char ver[32], out[4096];
            snprintf(ver, sizeof ver, "%lu", i);
            snprintf(out, sizeof out, "%s/%s-%lu.pemn", argv[6], argv[3], i);
            rc = make(&sk, argv[3], ver, i, bytes, out, i);
        }
        pemn_seckey_wipe(&sk);
        return rc;
    }
    fprintf(stderr, "usage: pemn_mkpkg keygen BASE\n"
                    "       pemn_mkpkg pack KEY.key NAME VERSION RELEASE BYTES OUT [SEED]\n"
                    "       pemn_mkpkg many KEY.key NAME COUNT BYTES DIR\n");
    return 2;
}
