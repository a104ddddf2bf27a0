/* Unit tests: expansion kernels (proto/expand.h). Every kernel must match the scalar
 * reference bit for bit, for odd sizes, offsets, prototype lengths and output alignments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/expand.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float *make_proto(uint64_t d_v)
{
    float *p = malloc((size_t)d_v * sizeof(float));
    assert_non_null(p);
    for (uint64_t j = 0; j < d_v; j++)
        p[j] = (float)((double)(int64_t)(rnd() >> 11) * 0x1p-52) - 0.3f;
    /* values whose sign or class a sloppy kernel would get wrong */
    static const float special[] = {-0.0f,     0.0f, 1e-42f,  -1e-42f, INFINITY,
                                    -INFINITY, NAN,  3.4e38f, 1.0f};
    for (size_t s = 0; s < sizeof special / sizeof special[0] && s < d_v; s++)
        p[(s * 7919) % d_v] = special[s];
    return p;
}

static uint8_t *make_bits(uint64_t n, int density_pct)
{
    size_t nb = (size_t)((n + 7) / 8);
    uint8_t *b = malloc(nb ? nb : 1);
    assert_non_null(b);
    memset(b, 0, nb ? nb : 1);
    for (uint64_t i = 0; i < n; i++)
        if ((int)(rnd() % 100) < density_pct)
            b[i >> 3] |= (uint8_t)(1u << (i & 7));
    return b;
}

enum { K_DISPATCH, K_PORTABLE, K_AVX2, K_AVX2_STREAM, K_COUNT };

static void run_kernel(int k, float *out, const uint8_t *bits, uint64_t n, const float *proto,
                       uint64_t d_v, uint64_t off, float scale)
{
    switch (k) {
    case K_DISPATCH:
        proto_expand_f32(out, bits, n, proto, d_v, off, scale);
        break;
    case K_PORTABLE:
        proto_expand_f32_portable(out, bits, n, proto, d_v, off, scale);
        break;
    case K_AVX2:
        proto_expand_f32_avx2(out, bits, n, proto, d_v, off, scale, 0);
        break;
    default:
        proto_expand_f32_avx2(out, bits, n, proto, d_v, off, scale, 1);
        break;
    }
}

/* Compares every kernel with the reference at output misalignments 0..7 floats; checks
 * that nothing outside out[0..n) is written. */
static void check_case(uint64_t n, uint64_t d_v, uint64_t off, int density, float scale)
{
    float *proto = make_proto(d_v);
    uint8_t *bits = make_bits(n, density);
    float *ref = malloc((size_t)(n ? n : 1) * sizeof(float));
    float *buf = aligned_alloc(32, (size_t)((n + 16 + 7) / 8 * 8) * sizeof(float));
    assert_non_null(ref);
    assert_non_null(buf);
    proto_expand_f32_scalar(ref, bits, n, proto, d_v, off, scale);
    int have = proto_expand_have_avx2();
    for (int k = 0; k < K_COUNT; k++) {
        if (!have && (k == K_AVX2 || k == K_AVX2_STREAM))
            continue;
        for (unsigned mis = 0; mis < 8; mis++) {
            if (n > 100000 && mis != 0 && mis != 3)
                continue; /* large cases: one aligned and one misaligned output suffice */
            memset(buf, 0x5A, (size_t)(n + 16) * sizeof(float));
            run_kernel(k, buf + 1 + mis, bits, n, proto, d_v, off, scale);
            if (n && memcmp(buf + 1 + mis, ref, (size_t)n * sizeof(float)) != 0) {
                uint64_t i = 0;
                while (memcmp(buf + 1 + mis + i, ref + i, 4) == 0)
                    i++;
                fail_msg("kernel %d n=%llu d_v=%llu off=%llu mis=%u: first difference at %llu", k,
                         (unsigned long long)n, (unsigned long long)d_v, (unsigned long long)off,
                         mis, (unsigned long long)i);
            }
            const uint8_t *raw = (const uint8_t *)buf;
            for (size_t b = 0; b < (1 + mis) * sizeof(float); b++)
                assert_int_equal(raw[b], 0x5A);
            for (size_t b = (1 + mis + n) * sizeof(float); b < (n + 16) * sizeof(float); b++)
                assert_int_equal(raw[b], 0x5A);
        }
    }
    free(proto);
    free(bits);
    free(ref);
    free(buf);
}

static void test_hand_computed(void **state)
{
    (void)state;
    /* proto = {1, 2, 3}, offset 1, scale 0.5, mask bits 1011 0110 1 (LSB first: byte 0 =
     * 0b01101101, byte 1 = 0b1), n = 9: prototype indices 1 2 0 1 2 0 1 2 0 */
    const float proto[3] = {1.0f, 2.0f, 3.0f};
    const uint8_t bits[2] = {0x6D, 0x01};
    const float want[9] = {1.0f, 0.0f, 0.5f, 1.0f, 0.0f, 0.5f, 1.0f, 0.0f, 0.5f};
    /* (all weights positive: dropped ones are +0.0) */
    float out[9];
    proto_expand_f32_scalar(out, bits, 9, proto, 3, 1, 0.5f);
    assert_memory_equal(out, want, sizeof want);
    memset(out, 0xFF, sizeof out);
    proto_expand_f32(out, bits, 9, proto, 3, 1, 0.5f);
    assert_memory_equal(out, want, sizeof want);
    memset(out, 0xFF, sizeof out);
    proto_expand_f32_portable(out, bits, 9, proto, 3, 1, 0.5f);
    assert_memory_equal(out, want, sizeof want);
    /* a cleared lane is weight * 0.0f, as PyTorch's weight * mask: the sign of a dropped
     * weight survives (-2 -> -0.0, 2 -> +0.0) and NaN or inf times 0 is NaN */
    const float odd[4] = {-2.0f, 2.0f, NAN, INFINITY};
    const uint8_t none[1] = {0};
    float z[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    proto_expand_f32(z, none, 4, odd, 4, 0, 1.0f);
    assert_true(z[0] == 0.0f && signbit(z[0]));
    assert_true(z[1] == 0.0f && !signbit(z[1]));
    assert_true(isnan(z[2]) && isnan(z[3]));
    float zs[4];
    proto_expand_f32_scalar(zs, none, 4, odd, 4, 0, 1.0f);
    assert_memory_equal(z, zs, sizeof z);
    proto_expand_f32_portable(zs, none, 4, odd, 4, 0, 1.0f);
    assert_memory_equal(z, zs, sizeof z);
}

static void test_sizes_and_dv(void **state)
{
    (void)state;
    static const uint64_t ns[] = {0, 1, 2, 7, 8, 9, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000};
    static const uint64_t dvs[] = {1, 2, 3, 5, 7, 8, 9, 31, 32, 33, 255, 256, 257, 1000, 5000};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        for (size_t b = 0; b < sizeof dvs / sizeof dvs[0]; b++) {
            uint64_t d_v = dvs[b];
            uint64_t offs[3] = {0, d_v - 1, rnd() % d_v};
            for (int o = 0; o < 3; o++)
                check_case(ns[a], d_v, offs[o], 50, 0.75f);
        }
    }
}

static void test_large(void **state)
{
    (void)state;
    const uint64_t n = 1000003;
    static const uint64_t dvs[] = {1, 3, 7, 9, 1000, 26620, 1000003, 2000000};
    for (size_t b = 0; b < sizeof dvs / sizeof dvs[0]; b++) {
        check_case(n, dvs[b], 0, 50, 0.05f);
        check_case(n, dvs[b], dvs[b] - 1, 50, -1.5f);
        check_case(n, dvs[b], rnd() % dvs[b], 37, 1.0f);
    }
}

static void test_densities(void **state)
{
    (void)state;
    static const int dens[] = {0, 1, 50, 99, 100};
    for (size_t d = 0; d < sizeof dens / sizeof dens[0]; d++) {
        check_case(4099, 26620, 26000, dens[d], 0.1f);
        check_case(4099, 13, 5, dens[d], 2.0f);
    }
}

static void test_random_cases(void **state)
{
    (void)state;
    for (int t = 0; t < 200; t++) {
        uint64_t n = rnd() % 3000;
        uint64_t d_v = 1 + rnd() % (rnd() % 2 ? 40 : 4000);
        check_case(n, d_v, rnd() % d_v, (int)(rnd() % 101), (float)(rnd() % 1000) / 300.0f);
    }
}

/* PEMN_SIMD=off selects the portable kernel; checked in a child process because the choice
 * is made once per process. */
static void test_simd_override(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("PEMN_SIMD", "off", 1);
        _exit(strcmp(proto_expand_kernel(), "portable") == 0 ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* without the override, the AVX2 kernel is used exactly when the CPU has it */
    assert_string_equal(proto_expand_kernel(), proto_expand_have_avx2() ? "avx2" : "portable");
    assert_true(proto_expand_stream_bytes() >= ((uint64_t)4 << 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simd_override), cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_sizes_and_dv),  cmocka_unit_test(test_large),
        cmocka_unit_test(test_densities),     cmocka_unit_test(test_random_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
