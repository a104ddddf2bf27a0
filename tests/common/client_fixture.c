/*
 * tests/common/client_fixture.c — see client_fixture.h.
 */
#include "tests/common/client_fixture.h"

#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>

#include <errno.h>
#include <inttypes.h>

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
        pemn_builder_add_proto_seeded(b, PEMN_GEN_UNIFORM, seed, 0.05f, 1000, &pid) != PEMN_OK ||
        pemn_builder_add_masked(b, "w", 2, shape, pid, 0, 1.0f, mask, NULL) != PEMN_OK ||
        pemn_builder_add_dense(b, "b", PEMN_DT_F32, 1, bshape, bias, sizeof bias, NULL) != PEMN_OK)
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

char *fx_version_json(const char *name, const char *version, uint64_t release, const char *digest,
                      uint64_t size, const char *package_url, const char *tag)
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
             name, version, (unsigned long long)release, digest, (unsigned long long)size, url, tg);
    return s;
}

void fx_resolved(struct pemn_resolved *r, const char *name, const char *version, uint64_t release,
                 const uint8_t *pkg, size_t len, const char *url)
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

/* ---- tool mode ------------------------------------------------------------------------ */
static int tool_make_pkg(char **a)
{
    struct pemn_seckey sk;
    struct pemn_err e = {0};
    if (pemn_seckey_load(a[0], &sk, &e) != PEMN_OK) {
        fprintf(stderr, "make-pkg: %s\n", e.msg);
        return 1;
    }
    char *end;
    errno = 0;
    uint64_t release = strtoull(a[3], &end, 10);
    pemn_builder *b = NULL;
    int ret = 1;
    float *proto = NULL, *bias = NULL;
    uint8_t *mask = NULL;
    if (*end || errno || pemn_builder_new(a[1], a[2], release, &b, &e) != PEMN_OK) {
        fprintf(stderr, "make-pkg: bad name/version/release %s\n", e.msg);
        goto out;
    }
    enum { DV = 4096 };
    proto = malloc(DV * sizeof *proto);
    if (!proto)
        goto out;
    uint32_t rnd[DV];
    randombytes_buf(rnd, sizeof rnd);
    for (int i = 0; i < DV; i++)
        proto[i] = ((float)(rnd[i] >> 8) / 8388608.0f - 1.0f) * 0.05f;
    uint32_t pid;
    if (pemn_builder_set_strategy(b, "rp") != PEMN_OK ||
        pemn_builder_set_density(b, 0.5f) != PEMN_OK ||
        pemn_builder_add_proto_values(b, proto, DV, &pid) != PEMN_OK)
        goto out;
    char layers[1024];
    snprintf(layers, sizeof layers, "%s", a[4]);
    int li = 0;
    for (char *save = NULL, *tok = strtok_r(layers, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save), li++) {
        unsigned long long rows, cols;
        if (sscanf(tok, "%llux%llu", &rows, &cols) != 2 || !rows || !cols ||
            rows * cols > (1ull << 32)) {
            fprintf(stderr, "make-pkg: bad layer '%s'\n", tok);
            goto out;
        }
        uint64_t n = rows * cols, shape[2] = {rows, cols}, bshape[1] = {cols};
        mask = malloc(n);
        bias = malloc(cols * sizeof *bias);
        if (!mask || !bias)
            goto out;
        randombytes_buf(mask, n);
        for (uint64_t i = 0; i < n; i++)
            mask[i] &= 1;
        for (uint64_t i = 0; i < cols; i++)
            bias[i] = (float)i * 0.001f - 0.05f;
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "fc%d.weight", li + 1);
        snprintf(bn, sizeof bn, "fc%d.bias", li + 1);
        if (pemn_builder_add_masked(b, wn, 2, shape, pid, 0, 1.0f, mask, &e) != PEMN_OK ||
            pemn_builder_add_dense(b, bn, PEMN_DT_F32, 1, bshape, bias, cols * sizeof *bias, &e) !=
                PEMN_OK) {
            fprintf(stderr, "make-pkg: %s\n", e.msg);
            goto out;
        }
        free(mask);
        free(bias);
        mask = NULL;
        bias = NULL;
    }
    if (pemn_builder_write_file(b, &sk, a[5], &e) != PEMN_OK) {
        fprintf(stderr, "make-pkg: %s\n", e.msg);
        goto out;
    }
    ret = 0;
out:
    pemn_seckey_wipe(&sk);
    pemn_builder_free(b);
    free(proto);
    free(mask);
    free(bias);
    return ret;
}

int fx_tool(int argc, char **argv)
{
    struct pemn_err e = {0};
    if (pemn_init() != PEMN_OK)
        return 1;
    if (argc == 3 && !strcmp(argv[1], "keygen")) {
        struct pemn_seckey sk;
        struct pemn_pubkey pk;
        pemn_rc rc = pemn_key_generate(&sk, &pk);
        if (!rc)
            rc = pemn_key_save(argv[2], &sk, &e);
        pemn_seckey_wipe(&sk);
        if (rc)
            fprintf(stderr, "keygen: %s\n", e.msg);
        return rc ? 1 : 0;
    }
    if (argc == 8 && !strcmp(argv[1], "make-pkg"))
        return tool_make_pkg(argv + 2);
    if (argc == 4 && !strcmp(argv[1], "expand")) {
        pemn_pkg *pkg = NULL;
        pemn_rc rc = pemn_pkg_open_file(argv[2], 0, &pkg, &e);
        if (!rc)
            rc = pemn_pkg_write_safetensors(pkg, argv[3], &e);
        pemn_pkg_free(pkg);
        if (rc)
            fprintf(stderr, "expand: %s\n", e.msg);
        return rc ? 1 : 0;
    }
    fprintf(stderr,
            "usage: %s keygen BASE | make-pkg KEY NAME VERSION RELEASE LAYERS OUT | "
            "expand PKG OUT\n",
            argv[0]);
    return 2;
}
