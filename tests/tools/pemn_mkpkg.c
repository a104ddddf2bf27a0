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
