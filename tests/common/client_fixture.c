/*
 * tests/common/client_fixture.c — see client_fixture.h.
 */
#include "tests/common/client_fixture.h"

#include <pemn/builder.h>
#include <pemn/gen.h>

#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t *fx_make_pkg(const char *name, const char *version, uint64_t release,
                     const struct pemn_seckey *sk, uint64_t n_weights, size_t *len)
{
    pemn_builder *b = NULL;
    uint8_t *out = NULL, *mask = NULL;
    if (pemn_init() != PEMN_OK || pemn_builder_new(name, version, release, &b, NULL) != PEMN_OK)
        return NULL;
    uint8_t seed[32];
    randombytes_buf(seed, sizeof seed);
    uint32_t pid;
    uint64_t shape[2] = {n_weights / 100, 100};
    float bias[10] = {0.5f, -1.0f, 2.0f, 0.25f, 0, 1, 2, 3, 4, 5};
    uint64_t bshape[1] = {10};
    mask = malloc(n_weights);
    if (!mask)
        goto done;
    randombytes_buf(mask, n_weights);
    for (uint64_t i = 0; i < n_weights; i++)
        mask[i] &= 1;
    if (pemn_builder_set_strategy(b, "rp") != PEMN_OK ||
        pemn_builder_add_proto_seeded(b, PEMN_GEN_UNIFORM, seed, 0.05f, 1000, &pid) !=
            PEMN_OK ||
        pemn_builder_add_masked(b, "w", 2, shape, pid, 0, 1.0f, mask, NULL) != PEMN_OK ||
        pemn_builder_add_dense(b, "b", PEMN_DT_F32, 1, bshape, bias, sizeof bias, NULL) !=
            PEMN_OK)
        goto done;
    if (pemn_builder_finish(b, sk, &out, len, NULL) != PEMN_OK)
        out = NULL;
done:
    free(mask);
    pemn_builder_free(b);
    return out;
}

void fx_digest(const void *p, size_t len, char out[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(p, len, d);
    pemn_digest_format(d, out);
}

char *fx_version_json(const char *name, const char *version, uint64_t release,
                      const char *digest, uint64_t size, const char *package_url,
                      const char *tag)
{
    char *s = malloc(2048);
    if (!s)
        return NULL;
    char url[600] = "";
    if (package_url)
        snprintf(url, sizeof url, ",\"package_url\":\"%s\"", package_url);
    char tg[200] = "";
    if (tag)
        snprintf(tg, sizeof tg, ",\"tag\":\"%s\"", tag);
    snprintf(s, 2048,
             "{\"model\":\"%s\",\"version\":\"%s\",\"release\":%llu,\"digest\":\"%s\","
             "\"size\":%llu,\"signer\":\"0123456789abcdef\",\"created\":1700000000,"
             "\"pushed\":1700000100,\"strategy\":\"rp\",\"density\":0.5,\"n_params\":266200,"
             "\"f32_size\":1065000,\"ratio\":31.9%s%s}",
             name, version, (unsigned long long)release, digest, (unsigned long long)size, url,
             tg);
    return s;
}

void fx_resolved(struct pemn_resolved *r, const char *name, const char *version,
                 uint64_t release, const uint8_t *pkg, size_t len, const char *url)
{
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", name);
    snprintf(r->version, sizeof r->version, "%s", version);
    r->release = release;
    fx_digest(pkg, len, r->digest);
    r->size = len;
    snprintf(r->package_url, sizeof r->package_url, "%s", url);
}

char *fx_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/pemn-client-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void fx_rmrf(const char *dir)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fx_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

uint8_t *fx_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        *len = (size_t)n;
    return p;
}
