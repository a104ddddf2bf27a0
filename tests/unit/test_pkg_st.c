/* Unit tests: pemn_pkg_write_safetensors (package -> dense safetensors file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>
#include "tests/common/pkgfix.h"

static const char *dir;

static int setup(void **state)
{
    (void)state;
    dir = pkgfix_tmpdir();
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pkgfix_rmdir(dir);
    return 0;
}

static int count_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Every tensor of the file equals the package's: masked ones as pemn_pkg_expand's F32
 * values, dense ones byte for byte in their own dtype; same order, names and shapes. */
static void check_export(const pemn_pkg *pkg, const char *path)
{
    struct pemn_err e;
    pemn_st *st;
    assert_int_equal(pemn_st_open_file(path, &st, &e), PEMN_OK);
    uint32_t n = pemn_pkg_tensor_count(pkg);
    assert_int_equal(pemn_st_count(st), n);
    for (uint32_t i = 0; i < n; i++) {
        struct pemn_tensor_info ti;
        struct pemn_st_tensor t;
        assert_int_equal(pemn_pkg_tensor(pkg, i, &ti), PEMN_OK);
        assert_int_equal(pemn_st_tensor(st, i, &t), PEMN_OK);
        assert_string_equal(t.name, ti.name);
        assert_int_equal(t.ndim, ti.ndim);
        assert_memory_equal(t.shape, ti.shape, ti.ndim * sizeof ti.shape[0]);
        assert_int_equal(t.numel, ti.numel);
        if (ti.masked) {
            assert_int_equal(t.dtype, PEMN_DT_F32);
            assert_int_equal(t.nbytes, ti.numel * 4);
            float *want = malloc((size_t)(ti.numel ? ti.numel : 1) * sizeof(float));
            assert_non_null(want);
            assert_int_equal(pemn_pkg_expand(pkg, i, want, ti.numel, &e), PEMN_OK);
            if (ti.numel)
                assert_memory_equal(t.data, want, (size_t)ti.numel * 4);
            free(want);
        } else {
            assert_int_equal(t.dtype, ti.dtype);
            assert_int_equal(t.nbytes, ti.numel * pemn_dtype_size(ti.dtype));
            if (t.nbytes)
                assert_memory_equal(t.data, ti.data, (size_t)t.nbytes);
        }
    }
    /* the manifest */
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(pkg, &info), PEMN_OK);
    assert_string_equal(pemn_st_meta_get(st, "format"), "pt");
    assert_string_equal(pemn_st_meta_get(st, "pemn.name"), info.name);
    assert_string_equal(pemn_st_meta_get(st, "pemn.version"), info.version);
    uint8_t d[PEMN_DIGEST_BYTES];
    char dt[PEMN_DIGEST_TEXT_MAX];
    pemn_pkg_digest(pkg, d);
    pemn_digest_format(d, dt);
    assert_string_equal(pemn_st_meta_get(st, "pemn.digest"), dt);
    char signer[PEMN_KEYID_TEXT_MAX];
    pemn_keyid_format(info.signer_id, signer);
    assert_string_equal(pemn_st_meta_get(st, "pemn.signer_id"), signer);
    for (uint32_t i = 0; i < info.n_meta; i++) {
        const char *k, *v;
        assert_int_equal(pemn_pkg_meta(pkg, i, &k, &v), PEMN_OK);
        if (strncmp(k, "pemn.", 5) != 0 && strcmp(k, "format") != 0)
            assert_string_equal(pemn_st_meta_get(st, k), v);
    }
    pemn_st_free(st);
}

static void test_small(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(3, &sk, &pk);
    for (int seeded = 0; seeded < 2; seeded++) {
        uint8_t *bytes;
        size_t len;
        if (seeded)
            pkgfix_small_seeded(&sk, &bytes, &len);
        else
            pkgfix_small(&sk, &bytes, &len);
        pemn_pkg *pkg;
        struct pemn_err e;
        assert_int_equal(pemn_pkg_open_mem(bytes, len, 0, &pkg, &e), PEMN_OK);
        char path[600];
        snprintf(path, sizeof path, "%s/small%d.safetensors", dir, seeded);
        assert_int_equal(pemn_pkg_write_safetensors(pkg, path, &e), PEMN_OK);
        check_export(pkg, path);

        /* the fixture's values, spelled out: w = mask ? 0.5 * proto[(2 + i) % 7] : 0 */
        pemn_st *st;
        assert_int_equal(pemn_st_open_file(path, &st, &e), PEMN_OK);
        assert_string_equal(pemn_st_meta_get(st, "pemn.release"), "7");
        assert_string_equal(pemn_st_meta_get(st, "pemn.created"), "1700000000");
        assert_string_equal(pemn_st_meta_get(st, "pemn.strategy"), "rp");
        assert_string_equal(pemn_st_meta_get(st, "pemn.density"), "0.5");
        assert_string_equal(pemn_st_meta_get(st, "framework"), "pemn-test");
        uint32_t wi;
        struct pemn_st_tensor t;
        assert_int_equal(pemn_st_find(st, "w", &wi), PEMN_OK);
        assert_int_equal(pemn_st_tensor(st, wi, &t), PEMN_OK);
        float proto[7];
        if (seeded) {
            uint8_t seed[32];
            for (int i = 0; i < 32; i++)
                seed[i] = (uint8_t)(i * 7 + 1);
            assert_int_equal(pemn_gen_fill(PEMN_GEN_UNIFORM, seed, 0.1f, 0, proto, 7), PEMN_OK);
        } else {
            memcpy(proto, pkgfix_proto, sizeof proto);
        }
        for (int i = 0; i < 15; i++) {
            float want = (0.5f * proto[(2 + i) % 7]) * (float)(pkgfix_mask[i] != 0), got;
            memcpy(&got, (const uint8_t *)t.data + 4 * i, 4);
            assert_memory_equal(&got, &want, 4);
        }
        assert_int_equal(pemn_st_find(st, "count", &wi), PEMN_OK);
        assert_int_equal(pemn_st_tensor(st, wi, &t), PEMN_OK);
        assert_int_equal(t.dtype, PEMN_DT_I64);
        assert_int_equal(t.ndim, 0);
        assert_int_equal(((const uint8_t *)t.data)[0], 42);
        pemn_st_free(st);
        pemn_pkg_free(pkg);
        free(bytes);
    }
}

/* A bigger package (enough elements for the SIMD path, several prototypes, an empty
 * tensor, dense dtypes that do not convert to float32) exports exactly too. */
static void test_larger(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(9, &sk, &pk);
    struct pemn_err e;
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("big", "2", 12, &b, &e), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "pemn.name", "spoofed"), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "license", "MIT"), PEMN_OK);
    float pv[26];
    for (int i = 0; i < 26; i++)
        pv[i] = (float)i * 0.5f - 6.0f;
    uint32_t p0, p1;
    uint8_t seed[32] = {1, 2, 3};
    assert_int_equal(pemn_builder_add_proto_values(b, pv, 26, &p0), PEMN_OK);
    assert_int_equal(pemn_builder_add_proto_seeded(b, PEMN_GEN_NORMAL, seed, 0.05f, 4099, &p1),
                     PEMN_OK);
    const uint64_t s1[2] = {100, 37}, s2[4] = {16, 3, 5, 5}, s0[2] = {0, 4}, sd[1] = {5};
    uint8_t *m = malloc(100 * 37);
    assert_non_null(m);
    for (int i = 0; i < 100 * 37; i++)
        m[i] = (uint8_t)((i * 2654435761u) >> 31);
    assert_int_equal(pemn_builder_add_masked(b, "l1.weight", 2, s1, p0, 5, 1.25f, m, &e), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "conv.weight", 4, s2, p1, 4000, 1.0f, m, &e),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "nothing", 2, s0, p0, 0, 1.0f, m, &e), PEMN_OK);
    const int32_t iv[5] = {1, -2, 3, -4, 5};
    assert_int_equal(pemn_builder_add_dense(b, "ints", PEMN_DT_I32, 1, sd, iv, 20, &e), PEMN_OK);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(pemn_builder_finish(b, &sk, &bytes, &len, &e), PEMN_OK);
    pemn_builder_free(b);
    free(m);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(bytes, len, 0, &pkg, &e), PEMN_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    assert_int_equal(pemn_pkg_write_safetensors(pkg, path, &e), PEMN_OK);
    check_export(pkg, path);
    pemn_st *st;
    assert_int_equal(pemn_st_open_file(path, &st, &e), PEMN_OK);
    assert_string_equal(pemn_st_meta_get(st, "pemn.name"), "big"); /* manifest wins */
    assert_string_equal(pemn_st_meta_get(st, "license"), "MIT");
    pemn_st_free(st);

    /* overwriting is atomic and leaves no temporary behind */
    int before = count_files();
    assert_int_equal(pemn_pkg_write_safetensors(pkg, path, &e), PEMN_OK);
    assert_int_equal(count_files(), before);
    check_export(pkg, path);

    /* errors: nothing written */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/missing/dir/x.safetensors", dir);
    assert_int_equal(pemn_pkg_write_safetensors(pkg, bad, &e), PEMN_EIO);
    assert_int_equal(count_files(), before);
    assert_int_equal(pemn_pkg_write_safetensors(NULL, path, &e), PEMN_EINVAL);
    assert_int_equal(pemn_pkg_write_safetensors(pkg, NULL, &e), PEMN_EINVAL);
    pemn_pkg_free(pkg);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_larger),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
