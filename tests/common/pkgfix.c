/*
 * tests/common/pkgfix.c — fixtures for package tests.
 */
#include "tests/common/pkgfix.h"

#include <dirent.h>
#include <pemn/gen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const float pkgfix_proto[7] = {0.25f, -1.5f, 3.0f, -0.125f, 8.0f, 1e-3f, -7.75f};
const uint8_t pkgfix_mask[15] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1};
const float pkgfix_bias[3] = {0.1f, -0.2f, 0.3f};

void pkgfix_key(uint8_t tag, struct pemn_seckey *sk, struct pemn_pubkey *pk)
{
    uint8_t seed[32];
    memset(seed, tag, sizeof seed);
    if (sodium_init() < 0)
        abort();
    crypto_sign_seed_keypair(pk->bytes, sk->bytes, seed);
}

static void small(const struct pemn_seckey *sk, int seeded, uint8_t **out, size_t *len)
{
    pemn_builder *b = NULL;
    uint32_t p = 0;
    if (pemn_builder_new("tiny", "v1", 7, &b, NULL))
        abort();
    if (pemn_builder_set_created(b, 1700000000) || pemn_builder_set_strategy(b, "rp") ||
        pemn_builder_set_density(b, 0.5f) || pemn_builder_add_meta(b, "framework", "pemn-test"))
        abort();
    if (seeded) {
        uint8_t seed[32];
        for (int i = 0; i < 32; i++)
            seed[i] = (uint8_t)(i * 7 + 1);
        if (pemn_builder_add_proto_seeded(b, PEMN_GEN_UNIFORM, seed, 0.1f, 7, &p))
            abort();
    } else if (pemn_builder_add_proto_values(b, pkgfix_proto, 7, &p)) {
        abort();
    }
    uint64_t shw[2] = {3, 5}, shb[1] = {3};
    int64_t count = 42;
    if (pemn_builder_add_masked(b, "w", 2, shw, p, 2, 0.5f, pkgfix_mask, NULL) ||
        pemn_builder_add_dense(b, "b", PEMN_DT_F32, 1, shb, pkgfix_bias, sizeof pkgfix_bias,
                               NULL) ||
        pemn_builder_add_dense(b, "count", PEMN_DT_I64, 0, NULL, &count, 8, NULL))
        abort();
    if (pemn_builder_finish(b, sk, out, len, NULL))
        abort();
    pemn_builder_free(b);
}

void pkgfix_small(const struct pemn_seckey *sk, uint8_t **out, size_t *len)
{
    small(sk, 0, out, len);
}

void pkgfix_small_seeded(const struct pemn_seckey *sk, uint8_t **out, size_t *len)
{
    small(sk, 1, out, len);
}

uint8_t *pkgfix_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int pkgfix_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

const char *pkgfix_tmpdir(void)
{
    static char dir[512];
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pemn-test-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(dir);
}

void pkgfix_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}
