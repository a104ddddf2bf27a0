/* Unit tests: package builder -> reader round trip, expansion, verification, tampering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>
#include "proto/half.h"
#include "tests/common/pkgfix.h"

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- a rich package: every kind of prototype and tensor ----------------------------------- */
static const uint16_t f16_vals[6] = {0x3c00, 0x0001, 0x7c00, 0xfe01, 0x8000, 0x03ff};
static const uint16_t bf16_vals[3] = {0x3f80, 0xc040, 0x0001};
static const double f64_vals[4] = {1.0 / 3.0, -2.5, 1e300, 5e-324};
static const int64_t i64_vals[2] = {INT64_MIN, 1234567890123ll};
static const uint8_t u8_vals[3] = {0, 200, 255};
static const uint8_t bool_vals[2] = {1, 0};

#define BIG_N 300 /* elements of the 8-d masked tensor: 5*3*2*5*1*1*2*1 */

static uint8_t big_mask[BIG_N];

static void build_rich(const struct pemn_seckey *sk, uint8_t **out, size_t *len)
{
    pemn_builder *b = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_builder_new("rich-model_1.x", "2024.01-rc1", 99, &b, &e), PEMN_OK);
    assert_int_equal(pemn_builder_set_created(b, -5), PEMN_OK);
    assert_int_equal(pemn_builder_set_strategy(b, "one-layer"), PEMN_OK);
    assert_int_equal(pemn_builder_set_density(b, 0.25f), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "a", "1"), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "b", ""), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "a", "replaced"), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "unicode", "caf\xc3\xa9"), PEMN_OK);

    uint32_t p0, p1;
    assert_int_equal(pemn_builder_add_proto_values(b, pkgfix_proto, 7, &p0), PEMN_OK);
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(255 - i);
    assert_int_equal(pemn_builder_add_proto_seeded(b, PEMN_GEN_NORMAL, seed, 0.75f, 250, &p1),
                     PEMN_OK);
    assert_int_equal(p0, 0);
    assert_int_equal(p1, 1);

    for (int i = 0; i < BIG_N; i++)
        big_mask[i] = (uint8_t)((i * 37 + 11) % 5 < 2);
    uint64_t s8[8] = {5, 3, 2, 5, 1, 1, 2, 1};
    uint64_t s0[1] = {0};
    uint8_t one = 1;
    assert_int_equal(pemn_builder_add_masked(b, "scalar", 0, NULL, p0, 6, -2.0f, &one, &e),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "eight", 8, s8, p0, 3, 1.5f, big_mask, &e),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "empty", 1, s0, p0, 0, 1.0f, NULL, &e), PEMN_OK);
    uint64_t s2[2] = {10, 30};
    assert_int_equal(pemn_builder_add_masked(b, "seeded.w", 2, s2, p1, 249, 1.0f, big_mask, &e),
                     PEMN_OK);

    uint64_t n6[1] = {6}, n3[1] = {3}, n4[2] = {2, 2}, n2[1] = {2}, n3b[1] = {3};
    assert_int_equal(pemn_builder_add_dense(b, "f16", PEMN_DT_F16, 1, n6, f16_vals, 12, &e),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "bf16", PEMN_DT_BF16, 1, n3, bf16_vals, 6, &e),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "f64", PEMN_DT_F64, 2, n4, f64_vals, 32, &e),
                     PEMN_OK);
    assert_int_equal(
        pemn_builder_add_dense(b, "bn.num_batches_tracked", PEMN_DT_I64, 1, n2, i64_vals, 16, &e),
        PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "u8", PEMN_DT_U8, 1, n3b, u8_vals, 3, &e), PEMN_OK);
    uint64_t nb[2] = {1, 2};
    assert_int_equal(pemn_builder_add_dense(b, "flags", PEMN_DT_BOOL, 2, nb, bool_vals, 2, &e),
                     PEMN_OK);
    assert_int_equal(pemn_builder_finish(b, sk, out, len, &e), PEMN_OK);
    pemn_builder_free(b);
}

static void check_rich(const pemn_pkg *pkg, const struct pemn_pubkey *pk)
{
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(pkg, &info), PEMN_OK);
    assert_string_equal(info.name, "rich-model_1.x");
    assert_string_equal(info.version, "2024.01-rc1");
    assert_string_equal(info.strategy, "one-layer");
    assert_int_equal(info.release, 99);
    assert_int_equal(info.created, -5);
    assert_true(info.density == 0.25f);
    assert_int_equal(info.format_major, 1);
    assert_int_equal(info.format_minor, 1);
    assert_int_equal(info.n_tensors, 10);
    assert_int_equal(info.n_protos, 2);
    assert_int_equal(info.n_meta, 3);
    assert_memory_equal(info.signer.bytes, pk->bytes, 32);
    uint8_t id[8];
    pemn_key_id(pk, id);
    assert_memory_equal(info.signer_id, id, 8);
    assert_int_equal(info.n_params, 1 + BIG_N + 0 + 300 + 6 + 3 + 4 + 2 + 3 + 2);
    assert_int_equal(info.n_masked, 1 + BIG_N + 300);
    size_t len;
    assert_non_null(pemn_pkg_bytes(pkg, &len));
    assert_int_equal(info.file_size, len);

    const char *k, *v;
    assert_int_equal(pemn_pkg_meta(pkg, 0, &k, &v), PEMN_OK);
    assert_string_equal(k, "a");
    assert_string_equal(v, "replaced");
    assert_int_equal(pemn_pkg_meta(pkg, 2, &k, &v), PEMN_OK);
    assert_string_equal(v, "caf\xc3\xa9");
    assert_int_equal(pemn_pkg_meta(pkg, 3, &k, &v), PEMN_ENOTFOUND);
    assert_string_equal(pemn_pkg_meta_get(pkg, "b"), "");
    assert_null(pemn_pkg_meta_get(pkg, "zz"));

    struct pemn_proto_info pi;
    assert_int_equal(pemn_pkg_proto(pkg, 0, &pi), PEMN_OK);
    assert_int_equal(pi.kind, PEMN_PROTO_EXPLICIT);
    assert_int_equal(pi.length, 7);
    const float *vals;
    assert_int_equal(pemn_pkg_proto_values(pkg, 0, &vals, NULL), PEMN_OK);
    assert_memory_equal(vals, pkgfix_proto, sizeof pkgfix_proto);
    assert_int_equal(pemn_pkg_proto(pkg, 1, &pi), PEMN_OK);
    assert_int_equal(pi.kind, PEMN_PROTO_SEEDED);
    assert_int_equal(pi.length, 250);
    assert_int_equal(pi.generator, PEMN_GEN_NORMAL);
    assert_true(pi.scale == 0.75f);
    assert_int_equal(pi.seed[0], 255);
    assert_int_equal(pi.seed[31], 224);
    assert_int_equal(pemn_pkg_proto(pkg, 2, &pi), PEMN_ENOTFOUND);

    struct pemn_tensor_info t;
    uint32_t idx;
    assert_int_equal(pemn_pkg_tensor_count(pkg), 10);
    assert_int_equal(pemn_pkg_find(pkg, "eight", &idx), PEMN_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    assert_string_equal(t.name, "eight");
    assert_int_equal(t.ndim, 8);
    assert_int_equal(t.shape[0], 5);
    assert_int_equal(t.shape[6], 2);
    assert_int_equal(t.numel, BIG_N);
    assert_true(t.masked);
    assert_int_equal(t.dtype, PEMN_DT_F32);
    assert_int_equal(t.proto, 0);
    assert_int_equal(t.offset, 3);
    assert_true(t.scale == 1.5f);
    assert_int_equal(t.mask_encoding, PEMN_MASK_BITS);
    assert_int_equal(t.stored_bytes, (BIG_N + 7) / 8);
    uint64_t kept = 0;
    for (int i = 0; i < BIG_N; i++) {
        kept += big_mask[i];
        assert_int_equal((t.mask[i >> 3] >> (i & 7)) & 1, big_mask[i]);
    }
    assert_int_equal(t.kept, kept);

    assert_int_equal(pemn_pkg_find(pkg, "scalar", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    assert_int_equal(t.ndim, 0);
    assert_int_equal(t.numel, 1);
    assert_int_equal(t.kept, 1);
    assert_int_equal(pemn_pkg_find(pkg, "empty", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    assert_int_equal(t.numel, 0);
    assert_int_equal(t.stored_bytes, 0);

    assert_int_equal(pemn_pkg_find(pkg, "bn.num_batches_tracked", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    assert_false(t.masked);
    assert_int_equal(t.dtype, PEMN_DT_I64);
    assert_int_equal(t.stored_bytes, 16);
    assert_memory_equal(t.data, i64_vals, 16); /* little-endian host */
    float f2[2];
    assert_int_equal(pemn_pkg_expand(pkg, idx, f2, 2, NULL), PEMN_EUNSUPPORTED);

    assert_int_equal(pemn_pkg_find(pkg, "flags", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    assert_int_equal(t.dtype, PEMN_DT_BOOL);
    assert_memory_equal(t.data, bool_vals, 2);
    assert_int_equal(pemn_pkg_find(pkg, "u8", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    assert_memory_equal(t.data, u8_vals, 3);

    assert_int_equal(pemn_pkg_find(pkg, "nope", &idx), PEMN_ENOTFOUND);
    assert_int_equal(pemn_pkg_find(pkg, "", &idx), PEMN_ENOTFOUND);
    assert_int_equal(pemn_pkg_tensor(pkg, 10, &t), PEMN_ENOTFOUND);
    /* every name is found at its own index */
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(pemn_pkg_tensor(pkg, i, &t), PEMN_OK);
        assert_int_equal(pemn_pkg_find(pkg, t.name, &idx), PEMN_OK);
        assert_int_equal(idx, i);
    }
}

static void expect_masked(const pemn_pkg *pkg, const char *name, const float *proto, uint64_t dv,
                          const uint8_t *mask)
{
    uint32_t idx;
    struct pemn_tensor_info t;
    assert_int_equal(pemn_pkg_find(pkg, name, &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    float *out = malloc((t.numel + 1) * sizeof *out);
    assert_non_null(out);
    assert_int_equal(pemn_pkg_expand(pkg, idx, out, t.numel, NULL), PEMN_OK);
    for (uint64_t i = 0; i < t.numel; i++) {
        /* mask is NULL only for the empty tensor, where the loop does not run */
        // cppcheck-suppress nullPointer
        float want = (t.scale * proto[(t.offset + i) % dv]) * (float)(mask[i] != 0);
        assert_int_equal(fbits(out[i]), fbits(want));
    }
    assert_int_equal(pemn_pkg_expand(pkg, idx, out, t.numel + 1, NULL), PEMN_EINVAL);
    free(out);
}

static void test_roundtrip_rich(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(1, &sk, &pk);
    uint8_t *buf;
    size_t len;
    build_rich(&sk, &buf, &len);

    pemn_pkg *pkg = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, &e), PEMN_OK);
    check_rich(pkg, &pk);
    uint8_t one = 1;
    expect_masked(pkg, "scalar", pkgfix_proto, 7, &one);
    expect_masked(pkg, "eight", pkgfix_proto, 7, big_mask);
    expect_masked(pkg, "empty", pkgfix_proto, 7, NULL);

    /* the seeded prototype: pemn_gen_fill's values, generated once */
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(255 - i);
    float gen[250];
    assert_int_equal(pemn_gen_fill(PEMN_GEN_NORMAL, seed, 0.75f, 0, gen, 250), PEMN_OK);
    const float *sv, *sv2;
    assert_int_equal(pemn_pkg_proto_values(pkg, 1, &sv, &e), PEMN_OK);
    assert_memory_equal(sv, gen, sizeof gen);
    assert_int_equal(pemn_pkg_proto_values(pkg, 1, &sv2, &e), PEMN_OK);
    assert_ptr_equal(sv, sv2);
    assert_int_equal(pemn_pkg_proto_values(pkg, 2, &sv2, &e), PEMN_ENOTFOUND);
    expect_masked(pkg, "seeded.w", gen, 250, big_mask);

    /* dense conversions, exact */
    uint32_t idx;
    float f[6];
    assert_int_equal(pemn_pkg_find(pkg, "f16", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_expand(pkg, idx, f, 6, NULL), PEMN_OK);
    assert_true(f[0] == 1.0f);
    assert_true(f[1] == ldexpf(1.0f, -24));
    assert_true(isinf(f[2]) && f[2] > 0);
    assert_true(isnan(f[3]) && signbit(f[3]));
    assert_true(f[4] == 0.0f && signbit(f[4]));
    assert_true(f[5] == 1023.0f * ldexpf(1.0f, -24));
    assert_int_equal(pemn_pkg_find(pkg, "bf16", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_expand(pkg, idx, f, 3, NULL), PEMN_OK);
    assert_true(f[0] == 1.0f && f[1] == -3.0f);
    assert_int_equal(fbits(f[2]), 0x00010000u);
    assert_int_equal(pemn_pkg_find(pkg, "f64", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_expand(pkg, idx, f, 4, NULL), PEMN_OK);
    assert_true(f[0] == (float)(1.0 / 3.0) && f[1] == -2.5f && isinf(f[2]) && f[3] == 0.0f);

    /* expand_all: every float-convertible tensor at once equals one at a time */
    {
        uint32_t nt = pemn_pkg_tensor_count(pkg);
        float *outs[10] = {0};
        assert_int_equal(nt, 10);
        for (uint32_t i = 0; i < nt; i++) {
            struct pemn_tensor_info t;
            assert_int_equal(pemn_pkg_tensor(pkg, i, &t), PEMN_OK);
            if (t.masked || t.dtype == PEMN_DT_F16 || t.dtype == PEMN_DT_BF16 ||
                t.dtype == PEMN_DT_F64)
                outs[i] = calloc(t.numel + 1, sizeof(float));
        }
        assert_int_equal(pemn_pkg_expand_all(pkg, outs, nt, &e), PEMN_OK);
        for (uint32_t i = 0; i < nt; i++) {
            if (!outs[i])
                continue;
            struct pemn_tensor_info t;
            assert_int_equal(pemn_pkg_tensor(pkg, i, &t), PEMN_OK);
            float *single = calloc(t.numel + 1, sizeof(float));
            assert_int_equal(pemn_pkg_expand(pkg, i, single, t.numel, NULL), PEMN_OK);
            assert_memory_equal(single, outs[i], t.numel * sizeof(float));
            free(single);
        }
        assert_int_equal(pemn_pkg_expand_all(pkg, outs, nt - 1, &e), PEMN_EINVAL);
        uint32_t ii;
        assert_int_equal(pemn_pkg_find(pkg, "bn.num_batches_tracked", &ii), PEMN_OK);
        float dummy[2];
        outs[ii] = dummy;
        assert_int_equal(pemn_pkg_expand_all(pkg, outs, nt, &e), PEMN_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, "bn.num_batches_tracked"));
        outs[ii] = NULL;
        for (uint32_t i = 0; i < nt; i++)
            free(outs[i]);
    }

    /* the same through a borrowed copy, an owned copy and a file */
    pemn_pkg *p2 = NULL;
    assert_int_equal(pemn_pkg_open_mem(buf, len, PEMN_OPEN_COPY, &p2, &e), PEMN_OK);
    check_rich(p2, &pk);
    pemn_pkg_free(p2);
    const char *dir = pkgfix_tmpdir();
    assert_non_null(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/rich.pemn", dir);
    assert_int_equal(pkgfix_write(path, buf, len), 0);
    assert_int_equal(pemn_pkg_open_file(path, 0, &p2, &e), PEMN_OK);
    check_rich(p2, &pk);
    expect_masked(p2, "eight", pkgfix_proto, 7, big_mask);
    pemn_pkg_free(p2);
    assert_int_equal(pemn_pkg_open_file(path, PEMN_OPEN_COPY, &p2, &e), PEMN_OK);
    check_rich(p2, &pk);
    pemn_pkg_free(p2);
    pkgfix_rmdir(dir);

    /* an unaligned borrowed buffer is copied internally and still works */
    uint8_t *odd = malloc(len + 1);
    memcpy(odd + 1, buf, len);
    assert_int_equal(pemn_pkg_open_mem(odd + 1, len, 0, &p2, &e), PEMN_OK);
    check_rich(p2, &pk);
    pemn_pkg_free(p2);
    free(odd);

    pemn_pkg_free(pkg);
    free(buf);
}

/* Size of the file pemn_pkg_write_safetensors makes. */
static uint64_t st_size(const pemn_pkg *pkg)
{
    const char *dir = pkgfix_tmpdir();
    assert_non_null(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    struct pemn_err e;
    if (pemn_pkg_write_safetensors(pkg, path, &e) != PEMN_OK)
        fail_msg("write_safetensors: %s", e.msg);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    pkgfix_rmdir(dir);
    return (uint64_t)st.st_size;
}

/* f32_size matches the real writer for names and values that need JSON escapes, a
 * metadata key the manifest overrides, and odd manifest numbers. */
static void test_f32_size_escapes(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(13, &sk, &pk);
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("E", "0", UINT64_MAX, &b, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_created(b, INT64_MIN), PEMN_OK);
    assert_int_equal(pemn_builder_set_density(b, 0.1f), PEMN_OK);
    assert_int_equal(pemn_builder_set_strategy(b, "a \"q\" \\ / ~"), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "format", "not-pt"), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "pemn.name", "x"), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "ctl\x01\x1f\x7f", "tab\tnl\ncr\r\b\f\"\\/"),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "utf8-\xc3\xa9\xe2\x82\xac", "\xf0\x9f\x98\x80"),
                     PEMN_OK);
    float v[3] = {1, 2, 3};
    uint32_t p;
    assert_int_equal(pemn_builder_add_proto_values(b, v, 3, &p), PEMN_OK);
    uint8_t m[12] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1};
    uint64_t sh[3] = {2, 3, 2}, big[2] = {0, UINT64_C(1000000000000)}, one[1] = {1};
    assert_int_equal(
        pemn_builder_add_masked(b, "a\"b\\c/d\x01\n\xc3\xa9", 3, sh, p, 1, 2.0f, m, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "empty-huge-dim", 2, big, p, 0, 1.0f, NULL, NULL),
                     PEMN_OK);
    uint16_t h = 0x3c00;
    assert_int_equal(pemn_builder_add_dense(b, "h", PEMN_DT_F16, 1, one, &h, 2, NULL), PEMN_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(pemn_builder_finish(b, &sk, &buf, &len, NULL), PEMN_OK);
    pemn_builder_free(b);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, NULL), PEMN_OK);
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(pkg, &info), PEMN_OK);
    assert_int_equal(info.f32_size, st_size(pkg));
    pemn_pkg_free(pkg);
    free(buf);
}

static void test_small_fixture_and_f32_size(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(2, &sk, &pk);
    uint8_t *buf;
    size_t len;
    pkgfix_small(&sk, &buf, &len);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, NULL), PEMN_OK);
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(pkg, &info), PEMN_OK);
    assert_string_equal(info.name, "tiny");
    assert_int_equal(info.created, 1700000000);
    /* f32_size is the size of the float32 safetensors file the package writes */
    assert_int_equal(info.f32_size, st_size(pkg));
    uint32_t idx;
    assert_int_equal(pemn_pkg_find(pkg, "count", &idx), PEMN_OK);
    struct pemn_tensor_info t;
    assert_int_equal(pemn_pkg_tensor(pkg, idx, &t), PEMN_OK);
    int64_t c;
    memcpy(&c, t.data, 8);
    assert_int_equal(c, 42);
    expect_masked(pkg, "w", pkgfix_proto, 7, pkgfix_mask);
    float bias[3];
    assert_int_equal(pemn_pkg_find(pkg, "b", &idx), PEMN_OK);
    assert_int_equal(pemn_pkg_expand(pkg, idx, bias, 3, NULL), PEMN_OK);
    assert_memory_equal(bias, pkgfix_bias, sizeof bias);
    pemn_pkg_free(pkg);
    free(buf);
}

/* ---- verification ------------------------------------------------------------------------ */
static pemn_rc verify_bytes(const uint8_t *buf, size_t len, const pemn_keyring *kr)
{
    pemn_pkg *pkg = NULL;
    pemn_rc rc = pemn_pkg_open_mem(buf, len, 0, &pkg, NULL);
    if (rc)
        return rc;
    rc = pemn_pkg_verify(pkg, kr, NULL);
    pemn_pkg_free(pkg);
    return rc;
}

static void test_verify(void **state)
{
    (void)state;
    struct pemn_seckey sk, sk2;
    struct pemn_pubkey pk, pk2;
    pkgfix_key(3, &sk, &pk);
    pkgfix_key(4, &sk2, &pk2);
    uint8_t *buf;
    size_t len;
    pkgfix_small(&sk, &buf, &len);

    pemn_keyring *trusted, *other, *empty;
    assert_int_equal(pemn_keyring_new(&trusted), PEMN_OK);
    assert_int_equal(pemn_keyring_new(&other), PEMN_OK);
    assert_int_equal(pemn_keyring_new(&empty), PEMN_OK);
    assert_int_equal(pemn_keyring_add(trusted, &pk2), PEMN_OK);
    assert_int_equal(pemn_keyring_add(trusted, &pk), PEMN_OK);
    assert_int_equal(pemn_keyring_add(other, &pk2), PEMN_OK);

    struct pemn_err e;
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, NULL), PEMN_OK);
    assert_int_equal(pemn_pkg_verify(pkg, trusted, &e), PEMN_OK);
    assert_int_equal(pemn_pkg_verify(pkg, other, &e), PEMN_EUNTRUSTED);
    assert_int_equal(e.rc, PEMN_EUNTRUSTED);
    char idhex[17];
    pemn_key_id_hex(&pk, idhex);
    assert_non_null(strstr(e.msg, idhex));
    assert_int_equal(pemn_pkg_verify(pkg, empty, NULL), PEMN_EUNTRUSTED);
    assert_int_equal(pemn_pkg_verify(pkg, NULL, NULL), PEMN_EUNTRUSTED);

    /* identity: sha256 of the whole file */
    uint8_t d1[32], d2[32];
    pemn_pkg_digest(pkg, d1);
    pemn_sha256(buf, len, d2);
    assert_memory_equal(d1, d2, 32);
    pemn_pkg_free(pkg);

    /* signature bytes altered */
    buf[len - 1] ^= 0x01;
    assert_int_equal(verify_bytes(buf, len, trusted), PEMN_EBADSIG);
    buf[len - 1] ^= 0x01;
    buf[len - 64] ^= 0x80;
    assert_int_equal(verify_bytes(buf, len, trusted), PEMN_EBADSIG);
    buf[len - 64] ^= 0x80;
    /* the embedded signer key replaced by another (trusted) key: signature fails */
    uint8_t save[32];
    memcpy(save, buf + len - 128, 32);
    memcpy(buf + len - 128, pk2.bytes, 32);
    assert_int_equal(verify_bytes(buf, len, trusted), PEMN_EBADSIG);
    memcpy(buf + len - 128, save, 32);
    /* content altered (a prototype value), nothing fixed up: digest mismatch */
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, NULL), PEMN_OK);
    const float *v;
    assert_int_equal(pemn_pkg_proto_values(pkg, 0, &v, NULL), PEMN_OK);
    size_t off = (size_t)((const uint8_t *)v - buf);
    pemn_pkg_free(pkg);
    buf[off] ^= 0x40;
    assert_int_equal(verify_bytes(buf, len, trusted), PEMN_ECORRUPT);
    buf[off] ^= 0x40;
    /* content digest altered */
    buf[len - 96] ^= 0x01;
    assert_int_equal(verify_bytes(buf, len, trusted), PEMN_ECORRUPT);
    buf[len - 96] ^= 0x01;
    assert_int_equal(verify_bytes(buf, len, trusted), PEMN_OK);

    /* a package re-signed by another key is valid but untrusted by a ring without it */
    uint8_t *buf2;
    size_t len2;
    pkgfix_small(&sk2, &buf2, &len2);
    pemn_keyring *only1;
    assert_int_equal(pemn_keyring_new(&only1), PEMN_OK);
    assert_int_equal(pemn_keyring_add(only1, &pk), PEMN_OK);
    assert_int_equal(verify_bytes(buf2, len2, only1), PEMN_EUNTRUSTED);
    assert_int_equal(verify_bytes(buf2, len2, trusted), PEMN_OK);
    free(buf2);

    pemn_keyring_free(only1);
    pemn_keyring_free(trusted);
    pemn_keyring_free(other);
    pemn_keyring_free(empty);
    free(buf);
}

/* Every single-byte change of a signed package is caught by open or verify. */
static void test_tamper_every_byte(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(5, &sk, &pk);
    uint8_t *buf;
    size_t len;
    pkgfix_small(&sk, &buf, &len);
    pemn_keyring *kr;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &pk), PEMN_OK);
    assert_int_equal(verify_bytes(buf, len, kr), PEMN_OK);
    unsigned long opened_bad = 0;
    for (size_t i = 0; i < len; i++) {
        for (int m = 0; m <= 8; m++) {
            uint8_t x = m == 8 ? 0xff : (uint8_t)(1u << m);
            buf[i] ^= x;
            pemn_rc rc = verify_bytes(buf, len, kr);
            if (rc == PEMN_OK)
                fail_msg("flip 0x%02x at byte %zu of %zu went undetected", x, i, len);
            if (rc == PEMN_EBADSIG || rc == PEMN_EUNTRUSTED)
                opened_bad++;
            buf[i] ^= x;
        }
    }
    assert_true(opened_bad > 0);
    assert_int_equal(verify_bytes(buf, len, kr), PEMN_OK);
    pemn_keyring_free(kr);
    free(buf);
}

static void test_truncation(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(6, &sk, &pk);
    uint8_t *buf;
    size_t len;
    pkgfix_small(&sk, &buf, &len);
    for (size_t n = 0; n < len; n++) {
        /* exact-size heap copy so ASan sees any read past the end */
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, buf, n);
        pemn_pkg *pkg = (pemn_pkg *)1;
        pemn_rc rc = pemn_pkg_open_mem(c, n, 0, &pkg, NULL);
        assert_int_equal(rc, PEMN_ECORRUPT);
        assert_null(pkg);
        free(c);
    }
    /* one byte too many is rejected as well */
    uint8_t *c = malloc(len + 1);
    memcpy(c, buf, len);
    c[len] = 0;
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(c, len + 1, 0, &pkg, NULL), PEMN_ECORRUPT);
    free(c);
    free(buf);
}

/* ---- builder errors ---------------------------------------------------------------------- */
static void test_builder_errors(void **state)
{
    (void)state;
    pemn_builder *b = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_builder_new("", "v1", 1, &b, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_new("-x", "v1", 1, &b, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_new("a b", "v1", 1, &b, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_new("x", "v1/2", 1, &b, &e), PEMN_EINVAL);
    char longname[200];
    memset(longname, 'a', sizeof longname);
    longname[128] = 0;
    assert_int_equal(pemn_builder_new(longname, "v", 1, &b, &e), PEMN_OK);
    pemn_builder_free(b);
    longname[128] = 'a';
    longname[129] = 0;
    assert_int_equal(pemn_builder_new(longname, "v", 1, &b, &e), PEMN_EINVAL);
    assert_null(b);
    pemn_builder_free(NULL);

    assert_int_equal(pemn_builder_new("m", "1", 1, &b, &e), PEMN_OK);
    assert_int_equal(pemn_builder_set_density(b, 1.5f), PEMN_EINVAL);
    assert_int_equal(pemn_builder_set_density(b, -0.1f), PEMN_EINVAL);
    assert_int_equal(pemn_builder_set_density(b, NAN), PEMN_EINVAL);
    assert_int_equal(pemn_builder_set_strategy(b, "tab\there"), PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_meta(b, "", "x"), PEMN_EINVAL);
    uint32_t p;
    float v[4] = {1, 2, 3, 4};
    assert_int_equal(pemn_builder_add_proto_values(b, v, 0, &p), PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_proto_values(b, v, 4, &p), PEMN_OK);
    uint8_t seed[32] = {0};
    assert_int_equal(pemn_builder_add_proto_seeded(b, 99, seed, 1.0f, 4, &p), PEMN_EUNSUPPORTED);
    assert_int_equal(pemn_builder_add_proto_seeded(b, PEMN_GEN_SIGNED, seed, INFINITY, 4, &p),
                     PEMN_EINVAL);
    uint64_t sh[2] = {2, 4};
    uint8_t mask[8] = {1, 1, 0, 0, 1, 0, 1, 0};
    assert_int_equal(pemn_builder_add_masked(b, "w", 2, sh, 1, 0, 1.0f, mask, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_masked(b, "w", 2, sh, 0, 4, 1.0f, mask, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_masked(b, "w", 2, sh, 0, 0, NAN, mask, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_masked(b, "w", 9, sh, 0, 0, 1.0f, mask, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_masked(b, "w", 2, sh, 0, 3, 1.0f, mask, &e), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "w", 2, sh, 0, 0, 1.0f, mask, &e), PEMN_EEXIST);
    uint64_t sh5[1] = {5};
    uint8_t bits = 0xe1; /* bits 5..7 set beyond 5 elements */
    assert_int_equal(pemn_builder_add_masked_bits(b, "m5", 1, sh5, 0, 0, 1.0f, &bits, &e),
                     PEMN_EINVAL);
    bits = 0x11;
    assert_int_equal(pemn_builder_add_masked_bits(b, "m5", 1, sh5, 0, 0, 1.0f, &bits, &e), PEMN_OK);
    uint64_t huge[3] = {UINT64_C(1) << 32, UINT64_C(1) << 32, 2};
    assert_int_equal(pemn_builder_add_dense(b, "h", PEMN_DT_F32, 3, huge, v, 16, &e), PEMN_ETOOBIG);
    uint64_t sh4[1] = {4};
    assert_int_equal(pemn_builder_add_dense(b, "d", PEMN_DT_F32, 1, sh4, v, 12, &e), PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_dense(b, "d", (pemn_dtype)77, 1, sh4, v, 16, &e),
                     PEMN_EINVAL);
    assert_int_equal(pemn_builder_add_dense(b, "d", PEMN_DT_F32, 1, sh4, v, 16, &e), PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "d", PEMN_DT_F32, 1, sh4, v, 16, &e), PEMN_EEXIST);

    /* a seeded prototype longer than anything that uses it */
    assert_int_equal(pemn_builder_add_proto_seeded(b, PEMN_GEN_SIGNED, seed, 1.0f, 70000, &p),
                     PEMN_OK);
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(7, &sk, &pk);
    uint8_t *out;
    size_t len;
    assert_int_equal(pemn_builder_finish(b, &sk, &out, &len, &e), PEMN_ETOOBIG);
    /* used by enough elements it is fine */
    uint64_t big[1] = {70000};
    uint8_t *m = calloc(70000, 1);
    assert_int_equal(pemn_builder_add_masked(b, "big", 1, big, p, 0, 1.0f, m, &e), PEMN_OK);
    free(m);
    assert_int_equal(pemn_builder_finish(b, &sk, &out, &len, &e), PEMN_OK);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(out, len, 0, &pkg, &e), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor_count(pkg), 4);
    pemn_pkg_free(pkg);
    free(out);

    /* an inconsistent secret key is refused */
    sk.bytes[40] ^= 1;
    assert_int_equal(pemn_builder_finish(b, &sk, &out, &len, &e), PEMN_EINVAL);
    pemn_builder_free(b);
}

static void test_write_file(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(8, &sk, &pk);
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("m", "1", 1, &b, NULL), PEMN_OK);
    float v = 2.0f;
    uint32_t p;
    assert_int_equal(pemn_builder_add_proto_values(b, &v, 1, &p), PEMN_OK);
    const char *dir = pkgfix_tmpdir();
    assert_non_null(dir);
    char path[600], bad[700];
    snprintf(path, sizeof path, "%s/m.pemn", dir);
    snprintf(bad, sizeof bad, "%s/missing/m.pemn", dir);
    struct pemn_err e;
    assert_int_equal(pemn_builder_write_file(b, &sk, bad, &e), PEMN_EIO);
    assert_int_equal(pkgfix_write(path, "old", 3), 0);
    assert_int_equal(pemn_builder_write_file(b, &sk, path, &e), PEMN_OK);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_file(path, 0, &pkg, &e), PEMN_OK);
    struct pemn_proto_info pi;
    assert_int_equal(pemn_pkg_proto(pkg, 0, &pi), PEMN_OK);
    assert_int_equal(pi.length, 1);
    pemn_pkg_free(pkg);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* nothing but the package is left in the directory */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);

    /* open_file errors */
    assert_int_equal(pemn_pkg_open_file(bad, 0, &pkg, &e), PEMN_ENOTFOUND);
    assert_int_equal(pemn_pkg_open_file(dir, 0, &pkg, &e), PEMN_EIO);
    assert_int_equal(pkgfix_write(path, "", 0), 0);
    assert_int_equal(pemn_pkg_open_file(path, 0, &pkg, &e), PEMN_ECORRUPT);
    pkgfix_rmdir(dir);
    pemn_builder_free(b);
}

struct thr_arg {
    const pemn_pkg *pkg;
    const float *v;
    pemn_rc rc;
};

static void *thr_values(void *p)
{
    struct thr_arg *a = p;
    a->rc = pemn_pkg_proto_values(a->pkg, 0, &a->v, NULL);
    return NULL;
}

/* Lazy seeded generation from several threads at once yields one buffer. */
static void test_seeded_threads(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(12, &sk, &pk);
    uint8_t *buf;
    size_t len;
    pkgfix_small_seeded(&sk, &buf, &len);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(buf, len, 0, &pkg, NULL), PEMN_OK);
    pthread_t th[4];
    struct thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct thr_arg){pkg, NULL, PEMN_EINVAL};
        assert_int_equal(pthread_create(&th[i], NULL, thr_values, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a[i].rc, PEMN_OK);
        assert_ptr_equal(a[i].v, a[0].v);
    }
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i * 7 + 1);
    float gen[7];
    assert_int_equal(pemn_gen_fill(PEMN_GEN_UNIFORM, seed, 0.1f, 0, gen, 7), PEMN_OK);
    assert_memory_equal(a[0].v, gen, sizeof gen);
    expect_masked(pkg, "w", gen, 7, pkgfix_mask);
    pemn_pkg_free(pkg);
    free(buf);
}

/* binary16 -> binary32 for all 65536 inputs against the compiler's own conversion */
static void test_half_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = proto_f16_to_f32((uint16_t)h);
#if defined(__FLT16_MAX__)
        _Float16 x;
        uint16_t hb = (uint16_t)h;
        memcpy(&x, &hb, 2);
        float want = (float)x;
        if (isnan(want)) {
            assert_true(isnan(got));
            assert_int_equal(!!signbit(got), !!signbit(want));
            /* payload kept: the top 10 mantissa bits */
            assert_int_equal((fbits(got) >> 13) & 0x3ff, h & 0x3ff);
        } else {
            assert_int_equal(fbits(got), fbits(want));
        }
#else
        (void)got;
#endif
        /* bfloat16: exact truncation inverse */
        assert_int_equal(fbits(proto_bf16_to_f32((uint16_t)h)), h << 16);
    }
    /* known values independent of the compiler */
    assert_true(proto_f16_to_f32(0x3c00) == 1.0f);
    assert_true(proto_f16_to_f32(0xc000) == -2.0f);
    assert_true(proto_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(proto_f16_to_f32(0x0400) == ldexpf(1.0f, -14));
    assert_true(proto_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    assert_true(proto_f16_to_f32(0x0200) == ldexpf(1.0f, -15));
    assert_true(isinf(proto_f16_to_f32(0xfc00)) && proto_f16_to_f32(0xfc00) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_rich), cmocka_unit_test(test_small_fixture_and_f32_size),
        cmocka_unit_test(test_verify),         cmocka_unit_test(test_tamper_every_byte),
        cmocka_unit_test(test_truncation),     cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_write_file),     cmocka_unit_test(test_half_exhaustive),
        cmocka_unit_test(test_seeded_threads), cmocka_unit_test(test_f32_size_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
