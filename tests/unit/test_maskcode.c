/*
 * tests/unit/test_maskcode.c — mask encoding 2 (proto/maskcode.c): round trips at many
 * densities and lengths, size close to the entropy, every hostile-input check, and the
 * package path (builder picks the smaller encoding, reader decodes, expansion matches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/err.h"
#include "proto/maskcode.h"
#include "tests/common/pkgfix.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* nbytes mask bytes with each bit set with probability k. */
static uint8_t *random_mask(uint64_t nbytes, double k)
{
    uint8_t *m = calloc(nbytes ? nbytes : 1, 1);
    assert_non_null(m);
    for (uint64_t i = 0; i < nbytes * 8; i++)
        if ((double)(rnd() >> 11) * 0x1p-53 < k)
            m[i >> 3] |= (uint8_t)(1u << (i & 7));
    return m;
}

static double h2(double k)
{
    return k <= 0 || k >= 1 ? 0 : -k * log2(k) - (1 - k) * log2(1 - k);
}

static void roundtrip(const uint8_t *m, uint64_t nbytes, uint64_t *coded_len)
{
    uint8_t *c;
    uint64_t clen;
    assert_int_equal(proto_maskcode_encode(m, nbytes, 0, &c, &clen, NULL), PEMN_OK);
    uint8_t *d = malloc(nbytes + 1);
    assert_non_null(d);
    struct pemn_err e;
    assert_int_equal(proto_maskcode_decode(c, clen, d, nbytes, &e), PEMN_OK);
    assert_memory_equal(d, m, nbytes);
    /* one byte more or less than encoded is caught, unless the mask is constant (a
     * single symbol of probability 1 costs nothing: the length comes from the shape) */
    int constant = 1;
    for (uint64_t i = 0; i < nbytes; i++)
        constant &= (m[i] == 0 || m[i] == 0xff) && m[i] == m[0];
    if (!constant) {
        assert_int_equal(proto_maskcode_decode(c, clen, d, nbytes - 1, NULL), PEMN_ECORRUPT);
        assert_int_equal(proto_maskcode_decode(c, clen, d, nbytes + 1, NULL), PEMN_ECORRUPT);
    }
    if (coded_len)
        *coded_len = clen;
    free(c);
    free(d);
}

static void test_roundtrip_lengths(void **state)
{
    (void)state;
    const double ks[] = {0.0, 0.001, 0.05, 0.1, 0.3, 0.5, 0.7, 0.95, 1.0};
    const uint64_t ns[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000, 4099};
    for (size_t a = 0; a < sizeof ks / sizeof *ks; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
            uint8_t *m = random_mask(ns[b], ks[a]);
            roundtrip(m, ns[b], NULL);
            free(m);
        }
}

static void test_near_entropy(void **state)
{
    (void)state;
    const double ks[] = {0.1, 0.3, 0.7};
    for (size_t a = 0; a < 3; a++) {
        uint64_t nbytes = 200000;
        uint8_t *m = random_mask(nbytes, ks[a]);
        uint64_t ones = 0;
        for (uint64_t i = 0; i < nbytes; i++)
            ones += (uint64_t)__builtin_popcount(m[i]);
        double k = (double)ones / (double)(nbytes * 8);
        uint64_t clen;
        roundtrip(m, nbytes, &clen);
        double bpw = (double)clen * 8 / (double)(nbytes * 8);
        assert_true(bpw <= 1.01 * h2(k));
        free(m);
    }
}

static void test_limit(void **state)
{
    (void)state;
    uint8_t *m = random_mask(1000, 0.5);
    uint8_t *c = (uint8_t *)1;
    uint64_t clen = 9;
    /* incompressible: never under the bit-packed size */
    assert_int_equal(proto_maskcode_encode(m, 1000, 1000, &c, &clen, NULL), PEMN_ETOOBIG);
    assert_null(c);
    assert_int_equal(clen, 0);
    free(m);
}

/* A valid block to damage. */
static uint8_t *good_block(uint64_t nbytes, uint64_t *clen, uint8_t **mask)
{
    *mask = random_mask(nbytes, 0.2);
    uint8_t *c;
    assert_int_equal(proto_maskcode_encode(*mask, nbytes, 0, &c, clen, NULL), PEMN_OK);
    return c;
}

static void expect_corrupt(const uint8_t *c, uint64_t clen, uint64_t nbytes)
{
    uint8_t *d = malloc(nbytes);
    assert_non_null(d);
    struct pemn_err e;
    memset(&e, 0, sizeof e);
    assert_int_equal(proto_maskcode_decode(c, clen, d, nbytes, &e), PEMN_ECORRUPT);
    assert_true(e.offset <= clen);
    assert_true(strlen(e.msg) > 0);
    free(d);
}

static void test_hostile(void **state)
{
    (void)state;
    uint64_t nb = 3000, clen;
    uint8_t *m, *c = good_block(nb, &clen, &m), *x = malloc(clen + 8);
    assert_non_null(x);
    /* short header */
    expect_corrupt(c, PROTO_MASKCODE_HDR - 1, nb);
    /* frequency sum */
    memcpy(x, c, clen);
    proto_put16(x, (uint16_t)(proto_le16(x) + 1));
    expect_corrupt(x, clen, nb);
    memcpy(x, c, clen);
    proto_put16(x, 0xffff);
    expect_corrupt(x, clen, nb);
    /* reserved */
    memcpy(x, c, clen);
    x[18] = 1;
    expect_corrupt(x, clen, nb);
    /* stream lengths: too short, too long, wrapped, not covering the block */
    for (int j = 0; j < 4; j++) {
        memcpy(x, c, clen);
        proto_put32(x + 20 + 4 * j, 3);
        expect_corrupt(x, clen, nb);
        memcpy(x, c, clen);
        proto_put32(x + 20 + 4 * j, 0xffffffffu);
        expect_corrupt(x, clen, nb);
        memcpy(x, c, clen);
        proto_put32(x + 20 + 4 * j, proto_le32(x + 20 + 4 * j) - 1);
        expect_corrupt(x, clen, nb);
    }
    memcpy(x, c, clen);
    x[clen] = 0;
    expect_corrupt(x, clen + 1, nb); /* trailing byte */
    expect_corrupt(c, clen - 1, nb); /* truncated */
    /* initial state out of range */
    memcpy(x, c, clen);
    proto_put32(x + PROTO_MASKCODE_HDR, 5);
    expect_corrupt(x, clen, nb);
    memcpy(x, c, clen);
    proto_put32(x + PROTO_MASKCODE_HDR, 0x80000000u);
    expect_corrupt(x, clen, nb);
    /* every single-byte change in the streams either decodes differently or is caught */
    uint8_t *d = malloc(nb);
    assert_non_null(d);
    for (uint64_t i = PROTO_MASKCODE_HDR; i < clen; i += 7) {
        memcpy(x, c, clen);
        x[i] ^= 0x5a;
        pemn_rc rc = proto_maskcode_decode(x, clen, d, nb, NULL);
        assert_true(rc == PEMN_ECORRUPT || (rc == PEMN_OK && memcmp(d, m, nb) != 0));
    }
    free(d);
    free(x);
    free(c);
    free(m);
}

static void test_ratio_rule(void **state)
{
    (void)state;
    assert_true(proto_maskcode_ratio_ok(PROTO_MASKCODE_FREE_BYTES, 1));
    assert_true(proto_maskcode_ratio_ok(64 * 100, 100));
    assert_false(proto_maskcode_ratio_ok(64 * 100 + 1, 100));
    assert_false(proto_maskcode_ratio_ok(UINT64_MAX, 36));
}

/* ---- through a package -------------------------------------------------------------- */
static uint8_t *build_pkg(uint32_t enc, const uint8_t *bits, uint64_t numel, size_t *len)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(3, &sk, &pk);
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("m", "v1", 1, &b, NULL), PEMN_OK);
    if (enc != 99)
        assert_int_equal(pemn_builder_set_mask_encoding(b, enc), PEMN_OK);
    uint8_t seed[32] = {1};
    uint32_t p;
    assert_int_equal(pemn_builder_add_proto_seeded(b, 1, seed, 0.5f, 1000, &p), PEMN_OK);
    uint64_t shape[1] = {numel};
    assert_int_equal(pemn_builder_add_masked_bits(b, "w", 1, shape, p, 3, 1.0f, bits, NULL),
                     PEMN_OK);
    uint8_t *out;
    assert_int_equal(pemn_builder_finish(b, &sk, &out, len, NULL), PEMN_OK);
    pemn_builder_free(b);
    return out;
}

static void test_package(void **state)
{
    (void)state;
    uint64_t numel = 80003, nb = numel / 8 + 1;
    uint8_t *m = random_mask(nb, 0.1);
    m[nb - 1] &= 0x07; /* unused high bits zero */
    size_t l1, l2, l3;
    uint8_t *p1 = build_pkg(PEMN_MASK_BITS, m, numel, &l1);
    uint8_t *p2 = build_pkg(0, m, numel, &l2);
    uint8_t *p3 = build_pkg(99, m, numel, &l3); /* default = 0 */
    assert_true(l2 < l1);
    assert_int_equal(l2, l3);
    assert_memory_equal(p2, p3, l2);
    pemn_pkg *a, *c;
    assert_int_equal(pemn_pkg_open_mem(p1, l1, 0, &a, NULL), PEMN_OK);
    assert_int_equal(pemn_pkg_open_mem(p2, l2, 0, &c, NULL), PEMN_OK);
    struct pemn_pkg_info ia, ic;
    pemn_pkg_info(a, &ia);
    pemn_pkg_info(c, &ic);
    assert_int_equal(ia.format_minor, 0);
    assert_int_equal(ic.format_minor, 1);
    struct pemn_tensor_info ta, tc;
    assert_int_equal(pemn_pkg_tensor(a, 0, &ta), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(c, 0, &tc), PEMN_OK);
    assert_int_equal(ta.mask_encoding, PEMN_MASK_BITS);
    assert_int_equal(tc.mask_encoding, PEMN_MASK_RANS);
    assert_int_equal(ta.kept, tc.kept);
    assert_memory_equal(ta.mask, tc.mask, nb);
    assert_true(tc.stored_bytes < ta.stored_bytes);
    assert_int_equal(ta.stored_bytes, nb);
    float *fa = malloc(numel * 4), *fc = malloc(numel * 4);
    assert_int_equal(pemn_pkg_expand(a, 0, fa, numel, NULL), PEMN_OK);
    assert_int_equal(pemn_pkg_expand(c, 0, fc, numel, NULL), PEMN_OK);
    assert_memory_equal(fa, fc, numel * 4);
    assert_int_equal(ia.f32_size, ic.f32_size);

    /* a damaged coded block inside a signed package: ECORRUPT at open, offset inside it
     * (the encoder is deterministic, so the block is found by encoding the mask again) */
    uint8_t *blkc;
    uint64_t blkl;
    assert_int_equal(proto_maskcode_encode(m, nb, 0, &blkc, &blkl, NULL), PEMN_OK);
    assert_int_equal(blkl, tc.stored_bytes);
    const uint8_t *hit = memmem(p2, l2, blkc, blkl);
    assert_non_null(hit);
    size_t blk = (size_t)(hit - p2);
    assert_int_equal(blk % 64, 0);
    free(blkc);
    uint8_t *bad = malloc(l2);
    memcpy(bad, p2, l2);
    bad[blk + 18] = 1;
    pemn_pkg *z = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_pkg_open_mem(bad, l2, 0, &z, &e), PEMN_ECORRUPT);
    assert_int_equal(e.offset, blk + 18);
    assert_null(z);
    /* a forced coding of an incompressible mask still round-trips */
    uint8_t *r = random_mask(nb, 0.5);
    r[nb - 1] &= 0x07;
    size_t l4;
    uint8_t *p4 = build_pkg(PEMN_MASK_RANS, r, numel, &l4);
    pemn_pkg *d;
    assert_int_equal(pemn_pkg_open_mem(p4, l4, 0, &d, NULL), PEMN_OK);
    struct pemn_tensor_info td;
    assert_int_equal(pemn_pkg_tensor(d, 0, &td), PEMN_OK);
    assert_int_equal(td.mask_encoding, PEMN_MASK_RANS);
    assert_memory_equal(td.mask, r, nb);
    pemn_pkg_free(d);
    /* the auto mode keeps it bit-packed */
    size_t l5;
    uint8_t *p5 = build_pkg(0, r, numel, &l5);
    assert_int_equal(pemn_pkg_open_mem(p5, l5, 0, &d, NULL), PEMN_OK);
    assert_int_equal(pemn_pkg_tensor(d, 0, &td), PEMN_OK);
    assert_int_equal(td.mask_encoding, PEMN_MASK_BITS);
    pemn_pkg_free(d);
    assert_int_equal(pemn_builder_set_mask_encoding(NULL, 0), PEMN_EINVAL);

    free(p5);
    free(p4);
    free(r);
    free(bad);
    free(fa);
    free(fc);
    pemn_pkg_free(a);
    pemn_pkg_free(c);
    free(p1);
    free(p2);
    free(p3);
    free(m);
}

static void test_builder_bad_encoding(void **state)
{
    (void)state;
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("m", "v1", 1, &b, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_mask_encoding(b, 3), PEMN_EINVAL);
    pemn_builder_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_lengths),
        cmocka_unit_test(test_near_entropy),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_ratio_rule),
        cmocka_unit_test(test_package),
        cmocka_unit_test(test_builder_bad_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
