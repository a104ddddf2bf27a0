/*
 * tests/unit/test_expand_range.c — pemn_pkg_expand_range (streaming expansion): every
 * range of every tensor equals the same slice of pemn_pkg_expand, for bit-packed and
 * entropy-coded masks, explicit and seeded prototypes, dense F32/F16/F64; range errors;
 * and pemn_pkg_write_safetensors (chunked) equals the whole-tensor reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/safetensors.h>

#include "tests/common/pkgfix.h"

static uint8_t *make(size_t *len, uint32_t enc)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(9, &sk, &pk);
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("r", "v1", 1, &b, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_mask_encoding(b, enc), PEMN_OK);
    uint8_t seed[32] = {5};
    float vals[13];
    for (int i = 0; i < 13; i++)
        vals[i] = (float)i - 6.5f;
    uint32_t p0, p1;
    assert_int_equal(pemn_builder_add_proto_values(b, vals, 13, &p0), PEMN_OK);
    assert_int_equal(pemn_builder_add_proto_seeded(b, 2, seed, 0.1f, 3000, &p1), PEMN_OK);
    uint8_t m[3001];
    uint32_t r = 7;
    for (int i = 0; i < 3001; i++) {
        r = r * 1664525u + 1013904223u;
        m[i] = (r >> 20) % 4 == 0;
    }
    uint64_t s1[2] = {7, 428}, s2[1] = {3001}, s3[1] = {37};
    assert_int_equal(pemn_builder_add_masked(b, "a", 2, s1, p0, 5, 1.5f, m, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "b", 1, s2, p1, 2999, -2.0f, m, NULL), PEMN_OK);
    float f[37];
    double d[37];
    uint16_t h[37];
    for (int i = 0; i < 37; i++) {
        f[i] = (float)i * 0.25f;
        d[i] = (double)i / 3.0;
        h[i] = (uint16_t)(0x3c00 + i);
    }
    assert_int_equal(pemn_builder_add_dense(b, "f", PEMN_DT_F32, 1, s3, f, sizeof f, NULL),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "d", PEMN_DT_F64, 1, s3, d, sizeof d, NULL),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "h", PEMN_DT_F16, 1, s3, h, sizeof h, NULL),
                     PEMN_OK);
    uint8_t *out;
    assert_int_equal(pemn_builder_finish(b, &sk, &out, len, NULL), PEMN_OK);
    pemn_builder_free(b);
    return out;
}

static void check_ranges(uint32_t enc)
{
    size_t len;
    uint8_t *buf = make(&len, enc);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, NULL), PEMN_OK);
    for (uint32_t i = 0; i < pemn_pkg_tensor_count(pkg); i++) {
        struct pemn_tensor_info t;
        assert_int_equal(pemn_pkg_tensor(pkg, i, &t), PEMN_OK);
        float *ref = malloc(t.numel * 4), *got = malloc(t.numel * 4 + 4);
        assert_int_equal(pemn_pkg_expand(pkg, i, ref, t.numel, NULL), PEMN_OK);
        const uint64_t firsts[] = {0, 1, 3, 7, 8, 9, 15, 16, 100, 1001};
        const uint64_t ns[] = {0, 1, 2, 7, 8, 9, 31, 64, 257, 3000};
        for (size_t a = 0; a < 10; a++)
            for (size_t c = 0; c < 10; c++) {
                uint64_t f = firsts[a], n = ns[c];
                if (f > t.numel || n > t.numel - f)
                    continue;
                memset(got, 0xAB, n * 4 + 4);
                assert_int_equal(pemn_pkg_expand_range(pkg, i, f, got, n, NULL), PEMN_OK);
                assert_memory_equal(got, ref + f, n * 4);
                uint32_t guard;
                memcpy(&guard, got + n, 4);
                assert_int_equal(guard, 0xABABABABu); /* nothing past n written */
            }
        /* the whole tensor in 5-element steps */
        for (uint64_t f = 0; f < t.numel; f += 5) {
            uint64_t n = t.numel - f < 5 ? t.numel - f : 5;
            assert_int_equal(pemn_pkg_expand_range(pkg, i, f, got + f, n, NULL), PEMN_OK);
        }
        assert_memory_equal(got, ref, t.numel * 4);
        struct pemn_err e;
        assert_int_equal(pemn_pkg_expand_range(pkg, i, t.numel, got, 1, &e), PEMN_EINVAL);
        assert_int_equal(pemn_pkg_expand_range(pkg, i, 1, got, UINT64_MAX, &e), PEMN_EINVAL);
        assert_int_equal(pemn_pkg_expand_range(pkg, i, t.numel, got, 0, &e), PEMN_OK);
        free(ref);
        free(got);
    }
    float x;
    assert_int_equal(pemn_pkg_expand_range(pkg, 99, 0, &x, 1, NULL), PEMN_ENOTFOUND);
    assert_int_equal(pemn_pkg_expand_range(NULL, 0, 0, &x, 1, NULL), PEMN_EINVAL);
    assert_int_equal(pemn_pkg_expand_range(pkg, 0, 0, NULL, 1, NULL), PEMN_EINVAL);
    pemn_pkg_free(pkg);
    free(buf);
}

static void test_ranges_bits(void **state)
{
    (void)state;
    check_ranges(PEMN_MASK_BITS);
}

static void test_ranges_coded(void **state)
{
    (void)state;
    check_ranges(PEMN_MASK_RANS);
}

/* A tensor larger than the writer's chunk: the file equals the in-memory writer's bytes. */
static void test_write_chunked(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(9, &sk, &pk);
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("big", "v1", 1, &b, NULL), PEMN_OK);
    uint8_t seed[32] = {6};
    uint32_t p;
    uint64_t numel = 3 * 1024 * 1024 + 13; /* > 12 MiB of float32: several chunks */
    assert_int_equal(pemn_builder_add_proto_seeded(b, 1, seed, 1.0f, 65536, &p), PEMN_OK);
    uint8_t *m = malloc(numel);
    for (uint64_t i = 0; i < numel; i++)
        m[i] = (uint8_t)((i * 2654435761u) >> 7) & 1;
    uint64_t s[1] = {numel};
    assert_int_equal(pemn_builder_add_masked(b, "w", 1, s, p, 77, 0.5f, m, NULL), PEMN_OK);
    free(m);
    uint8_t *buf;
    size_t len;
    assert_int_equal(pemn_builder_finish(b, &sk, &buf, &len, NULL), PEMN_OK);
    pemn_builder_free(b);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, NULL), PEMN_OK);
    const char *dir = pkgfix_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    assert_int_equal(pemn_pkg_write_safetensors(pkg, path, NULL), PEMN_OK);
    size_t flen;
    uint8_t *file = pkgfix_read(path, &flen);
    assert_non_null(file);
    pemn_st *st;
    assert_int_equal(pemn_st_open_mem(file, flen, 0, &st, NULL), PEMN_OK);
    struct pemn_st_tensor t;
    assert_int_equal(pemn_st_tensor(st, 0, &t), PEMN_OK);
    assert_int_equal(t.numel, numel);
    float *ref = malloc(numel * 4);
    assert_int_equal(pemn_pkg_expand(pkg, 0, ref, numel, NULL), PEMN_OK);
    assert_memory_equal(t.data, ref, numel * 4);
    free(ref);
    pemn_st_free(st);
    free(file);
    pkgfix_rmdir(dir);
    pemn_pkg_free(pkg);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_bits),
        cmocka_unit_test(test_ranges_coded),
        cmocka_unit_test(test_write_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
