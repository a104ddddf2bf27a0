/* Unit tests: seeded prototype generators (pemn/gen.h). The vectors are those of
 * docs/FORMAT.md, produced independently by docs/tools/gen_vectors.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/gen.h>

static const struct vec {
    uint32_t gen;
    float scale;
    uint64_t first;
    uint32_t bits[8];
} vectors[] = {
    {PEMN_GEN_UNIFORM,
     1.0f,
     UINT64_C(0),
     {0xbcb500c0, 0xbe2f31d8, 0xbd8fc430, 0xbedad490, 0xbe013e58, 0x3f18d5bc, 0xbece08d0,
      0x3e112750}},
    {PEMN_GEN_UNIFORM,
     1.0f,
     UINT64_C(1000000),
     {0xbe249208, 0x3f078760, 0x3f5fb308, 0xbf33466e, 0x3efa9acc, 0xbf130208, 0xbf52038c,
      0x3d08f420}},
    {PEMN_GEN_UNIFORM,
     1.0f,
     UINT64_C(68719476732),
     {0x3f674acc, 0xbf2ad6e6, 0x3d84e2c0, 0xbef79740, 0xbf6c0990, 0xbf0ba324, 0xbf001a30,
      0x3e99cd88}},
    {PEMN_GEN_UNIFORM,
     1.0f,
     UINT64_C(18446744073709551607),
     {0xbf2df262, 0x3f63f15e, 0xbd95bd80, 0x3ea6b35c, 0xbe865d20, 0x3f7f211e, 0xbe2a9cb8,
      0x3e8a7c8c}},
    {PEMN_GEN_UNIFORM,
     0.05f,
     UINT64_C(0),
     {0xba90cd67, 0xbc0c27e0, 0xbb6606b3, 0xbcaf1073, 0xbbceca27, 0x3cf4892d, 0xbca4d3da,
      0x3be83ee7}},
    {PEMN_GEN_UNIFORM,
     0.05f,
     UINT64_C(1000000),
     {0xbc03a807, 0x3cd8d89a, 0x3d32f5a0, 0xbd0f6b8b, 0x3cc87bd7, 0xbceb3673, 0xbd2802d7,
      0x3adb2033}},
    {PEMN_GEN_UNIFORM,
     0.05f,
     UINT64_C(68719476732),
     {0x3d3908a3, 0xbd08abeb, 0x3b549e00, 0xbcc6129a, 0xbd3cd473, 0xbcdf6b6d, 0xbcccf6b3,
      0x3c7615a7}},
    {PEMN_GEN_UNIFORM,
     0.05f,
     UINT64_C(18446744073709551607),
     {0xbd0b284f, 0x3d365ab2, 0xbb6f959a, 0x3c855c4a, 0xbc56fb67, 0x3d4c1a7f, 0xbc087d60,
      0x3c5d9413}},
    {PEMN_GEN_NORMAL,
     1.0f,
     UINT64_C(0),
     {0x3e0f61f4, 0xbf6e2d38, 0x3f014fb2, 0xbec4c31c, 0x3fb9d644, 0x3d9afa80, 0x3d54a0d0,
      0xbe20a5a4}},
    {PEMN_GEN_NORMAL,
     1.0f,
     UINT64_C(1000000),
     {0xc0157f08, 0xbee143d6, 0xbe95f82e, 0x3f28d6b1, 0x3f063bea, 0xbf9f9829, 0xbf902d89,
      0xbeb0aaae}},
    {PEMN_GEN_NORMAL,
     1.0f,
     UINT64_C(68719476732),
     {0xbfc22485, 0xbf18e0aa, 0x3ec31e1a, 0xbf4cd536, 0xbf7ac352, 0x3f835b37, 0x3effdbde,
      0xbd762b40}},
    {PEMN_GEN_NORMAL,
     1.0f,
     UINT64_C(18446744073709551607),
     {0x3fdc2d22, 0xbf81306e, 0xbf7b2e7a, 0xbe341910, 0xbfada8b6, 0x3fc04900, 0xbd256ad0,
      0xbf3b97bf}},
    {PEMN_GEN_NORMAL,
     0.05f,
     UINT64_C(0),
     {0x3be56987, 0xbd3e8a93, 0x3ccee5ea, 0xbc9d68e3, 0x3d94ab6a, 0x3b77f733, 0x3b2a1a40,
      0xbc008483}},
    {PEMN_GEN_NORMAL,
     0.05f,
     UINT64_C(1000000),
     {0xbdef31a7, 0xbcb43645, 0xbc6ff37d, 0x3d071227, 0x3cd6c643, 0xbd7f59db, 0xbd66af42,
      0xbc8d5558}},
    {PEMN_GEN_NORMAL,
     0.05f,
     UINT64_C(68719476732),
     {0xbd9b506b, 0xbcf49aaa, 0x3c9c1815, 0xbd23ddc5, 0xbd489c42, 0x3d522b8b, 0x3cccafe5,
      0xbb44ef67}},
    {PEMN_GEN_NORMAL,
     0.05f,
     UINT64_C(18446744073709551607),
     {0x3db0241b, 0xbd4eb3e3, 0xbd48f1fb, 0xbc10140d, 0xbd8aed5f, 0x3d99d400, 0xbb045573,
      0xbd1612ff}},
    {PEMN_GEN_SIGNED,
     1.0f,
     UINT64_C(0),
     {0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0xbf800000, 0x3f800000,
      0xbf800000}},
    {PEMN_GEN_SIGNED,
     1.0f,
     UINT64_C(1000000),
     {0x3f800000, 0xbf800000, 0xbf800000, 0x3f800000, 0xbf800000, 0x3f800000, 0x3f800000,
      0xbf800000}},
    {PEMN_GEN_SIGNED,
     1.0f,
     UINT64_C(68719476732),
     {0xbf800000, 0x3f800000, 0xbf800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
      0xbf800000}},
    {PEMN_GEN_SIGNED,
     1.0f,
     UINT64_C(18446744073709551607),
     {0x3f800000, 0xbf800000, 0x3f800000, 0xbf800000, 0x3f800000, 0xbf800000, 0x3f800000,
      0xbf800000}},
    {PEMN_GEN_SIGNED,
     0.05f,
     UINT64_C(0),
     {0x3d4ccccd, 0x3d4ccccd, 0x3d4ccccd, 0x3d4ccccd, 0x3d4ccccd, 0xbd4ccccd, 0x3d4ccccd,
      0xbd4ccccd}},
    {PEMN_GEN_SIGNED,
     0.05f,
     UINT64_C(1000000),
     {0x3d4ccccd, 0xbd4ccccd, 0xbd4ccccd, 0x3d4ccccd, 0xbd4ccccd, 0x3d4ccccd, 0x3d4ccccd,
      0xbd4ccccd}},
    {PEMN_GEN_SIGNED,
     0.05f,
     UINT64_C(68719476732),
     {0xbd4ccccd, 0x3d4ccccd, 0xbd4ccccd, 0x3d4ccccd, 0x3d4ccccd, 0x3d4ccccd, 0x3d4ccccd,
      0xbd4ccccd}},
    {PEMN_GEN_SIGNED,
     0.05f,
     UINT64_C(18446744073709551607),
     {0x3d4ccccd, 0xbd4ccccd, 0x3d4ccccd, 0xbd4ccccd, 0x3d4ccccd, 0xbd4ccccd, 0x3d4ccccd,
      0xbd4ccccd}},
};

static uint8_t seed0[PEMN_SEED_BYTES];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < PEMN_SEED_BYTES; i++)
        seed0[i] = (uint8_t)i;
    return 0;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void test_vectors(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        float out[8];
        assert_int_equal(
            pemn_gen_fill(vectors[v].gen, seed0, vectors[v].scale, vectors[v].first, out, 8),
            PEMN_OK);
        for (int k = 0; k < 8; k++) {
            if (fbits(out[k]) != vectors[v].bits[k])
                fail_msg("vector %zu element %d: got %08x want %08x", v, k, fbits(out[k]),
                         vectors[v].bits[k]);
        }
        /* One element at a time gives the same values (no dependence on the batch). */
        for (int k = 0; k < 8; k++) {
            float one;
            assert_int_equal(pemn_gen_fill(vectors[v].gen, seed0, vectors[v].scale,
                                           vectors[v].first + (uint64_t)k, &one, 1),
                             PEMN_OK);
            assert_int_equal(fbits(one), vectors[v].bits[k]);
        }
    }
}

/* fill(first = a, n) equals the slice [a, a + n) of a longer fill, for offsets that start
 * mid-block, cross block and batch boundaries. */
static void test_slices(void **state)
{
    (void)state;
    enum { LONG = 5000 };
    float *all = malloc(LONG * sizeof(float)), *part = malloc(LONG * sizeof(float));
    assert_non_null(all);
    assert_non_null(part);
    static const size_t starts[] = {0, 1, 3, 4, 5, 15, 16, 17, 100, 1023, 1024, 1025, 4095};
    static const size_t lens[] = {0, 1, 2, 3, 7, 16, 17, 85, 86, 1000, 2000};
    for (uint32_t g = PEMN_GEN_UNIFORM; g <= PEMN_GEN_SIGNED; g++) {
        assert_int_equal(pemn_gen_fill(g, seed0, 0.5f, 1000, all, LONG), PEMN_OK);
        for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                size_t a = starts[s], n = lens[l];
                if (a + n > LONG)
                    continue;
                memset(part, 0xAB, LONG * sizeof(float));
                assert_int_equal(pemn_gen_fill(g, seed0, 0.5f, 1000 + a, part, n), PEMN_OK);
                assert_memory_equal(part, all + a, n * sizeof(float));
                /* nothing written past n */
                assert_int_equal(fbits(part[n]), 0xABABABABu);
            }
        }
    }
    free(all);
    free(part);
}

static void moments(uint32_t g, float scale, size_t n, double *mean, double *var, double *lo,
                    double *hi)
{
    float *v = malloc(n * sizeof(float));
    assert_non_null(v);
    assert_int_equal(pemn_gen_fill(g, seed0, scale, 0, v, n), PEMN_OK);
    double s = 0, s2 = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        if (v[i] < *lo)
            *lo = v[i];
        if (v[i] > *hi)
            *hi = v[i];
    }
    *mean = s / (double)n;
    *var = s2 / (double)n - *mean * *mean;
    free(v);
}

static void test_distributions(void **state)
{
    (void)state;
    const size_t n = 200000;
    double m, v, lo, hi;
    /* uniform on [-1, 1): mean 0, variance 1/3; sd of the mean ~ 0.0013 */
    moments(PEMN_GEN_UNIFORM, 1.0f, n, &m, &v, &lo, &hi);
    assert_true(fabs(m) < 0.01);
    assert_true(fabs(v - 1.0 / 3.0) < 0.01);
    assert_true(lo >= -1.0 && hi < 1.0 && lo < -0.999 && hi > 0.999);
    /* scaled: variance scale^2 / 3 */
    moments(PEMN_GEN_UNIFORM, 0.05f, n, &m, &v, &lo, &hi);
    assert_true(fabs(m) < 0.0005);
    assert_true(fabs(v - 0.0025 / 3.0) < 0.00003);
    assert_true(lo >= -0.05 && hi < 0.05);
    /* Irwin-Hall normal: mean 0, variance 1, support [-6, 6] */
    moments(PEMN_GEN_NORMAL, 1.0f, n, &m, &v, &lo, &hi);
    assert_true(fabs(m) < 0.015);
    assert_true(fabs(v - 1.0) < 0.02);
    assert_true(lo >= -6.0 && hi <= 6.0 && lo < -3.5 && hi > 3.5);
    moments(PEMN_GEN_NORMAL, 0.05f, n, &m, &v, &lo, &hi);
    assert_true(fabs(v - 0.0025) < 0.0001);
    /* signed: only +-scale, half each */
    moments(PEMN_GEN_SIGNED, 0.05f, n, &m, &v, &lo, &hi);
    assert_true(fabs(m) < 0.0005);
    assert_true(lo == -0.05f && hi == 0.05f);
    assert_true(fabs(v - 0.0025) < 0.00002);
}

static void test_seed_matters(void **state)
{
    (void)state;
    uint8_t other[PEMN_SEED_BYTES];
    memcpy(other, seed0, sizeof other);
    other[31] ^= 1;
    float a[64], b[64];
    for (uint32_t g = PEMN_GEN_UNIFORM; g <= PEMN_GEN_SIGNED; g++) {
        assert_int_equal(pemn_gen_fill(g, seed0, 1.0f, 0, a, 64), PEMN_OK);
        assert_int_equal(pemn_gen_fill(g, other, 1.0f, 0, b, 64), PEMN_OK);
        assert_true(memcmp(a, b, sizeof a) != 0);
    }
}

static void test_errors(void **state)
{
    (void)state;
    float out[4] = {0};
    assert_int_equal(pemn_gen_fill(0, seed0, 1.0f, 0, out, 4), PEMN_EUNSUPPORTED);
    assert_int_equal(pemn_gen_fill(4, seed0, 1.0f, 0, out, 4), PEMN_EUNSUPPORTED);
    assert_int_equal(pemn_gen_fill(UINT32_MAX, seed0, 1.0f, 0, out, 4), PEMN_EUNSUPPORTED);
    /* first + n overflows */
    assert_int_equal(pemn_gen_fill(PEMN_GEN_UNIFORM, seed0, 1.0f, UINT64_MAX, out, 1), PEMN_EINVAL);
    assert_int_equal(pemn_gen_fill(PEMN_GEN_NORMAL, seed0, 1.0f, UINT64_MAX - 2, out, 4),
                     PEMN_EINVAL);
    /* the last representable range is fine */
    assert_int_equal(pemn_gen_fill(PEMN_GEN_NORMAL, seed0, 1.0f, UINT64_MAX - 4, out, 4), PEMN_OK);
    assert_int_equal(pemn_gen_fill(PEMN_GEN_UNIFORM, seed0, 1.0f, UINT64_MAX, out, 0), PEMN_OK);
    assert_int_equal(pemn_gen_fill(PEMN_GEN_UNIFORM, NULL, 1.0f, 0, out, 4), PEMN_EINVAL);
    assert_int_equal(pemn_gen_fill(PEMN_GEN_UNIFORM, seed0, 1.0f, 0, NULL, 4), PEMN_EINVAL);
    assert_int_equal(pemn_gen_fill(PEMN_GEN_UNIFORM, seed0, 1.0f, 0, NULL, 0), PEMN_OK);
}

static void test_names(void **state)
{
    (void)state;
    uint32_t g = 0;
    assert_string_equal(pemn_gen_name(PEMN_GEN_UNIFORM), "chacha20-uniform");
    assert_string_equal(pemn_gen_name(PEMN_GEN_NORMAL), "chacha20-normal");
    assert_string_equal(pemn_gen_name(PEMN_GEN_SIGNED), "chacha20-signed");
    assert_null(pemn_gen_name(0));
    assert_null(pemn_gen_name(4));
    for (uint32_t i = PEMN_GEN_UNIFORM; i <= PEMN_GEN_SIGNED; i++) {
        assert_int_equal(pemn_gen_parse(pemn_gen_name(i), &g), PEMN_OK);
        assert_int_equal(g, i);
    }
    assert_int_equal(pemn_gen_parse("uniform", &g), PEMN_OK);
    assert_int_equal(g, PEMN_GEN_UNIFORM);
    assert_int_equal(pemn_gen_parse("normal", &g), PEMN_OK);
    assert_int_equal(g, PEMN_GEN_NORMAL);
    assert_int_equal(pemn_gen_parse("signed", &g), PEMN_OK);
    assert_int_equal(g, PEMN_GEN_SIGNED);
    g = 77;
    assert_int_equal(pemn_gen_parse("gaussian", &g), PEMN_EUNSUPPORTED);
    assert_int_equal(pemn_gen_parse("Uniform", &g), PEMN_EUNSUPPORTED);
    assert_int_equal(pemn_gen_parse("", &g), PEMN_EUNSUPPORTED);
    assert_int_equal(pemn_gen_parse("chacha20-uniform ", &g), PEMN_EUNSUPPORTED);
    assert_int_equal(g, 77);
    assert_int_equal(pemn_gen_parse(NULL, &g), PEMN_EINVAL);
    assert_int_equal(pemn_gen_parse("uniform", NULL), PEMN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),       cmocka_unit_test(test_slices),
        cmocka_unit_test(test_distributions), cmocka_unit_test(test_seed_matters),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
