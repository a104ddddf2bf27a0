/*
 * tests/unit/test_delta.c — package deltas (proto/delta.c, proto/delta_apply.c): byte-exact
 * round trips across mask encodings, shape changes and new tensors; flip positions close to
 * their entropy; wrong bases; every hostile-input check; single-byte damage anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <pemn/delta.h>

#include "proto/delta_int.h"
#include "proto/err.h"
#include "tests/common/pkgfix.h"

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1p-53;
}

#define NW 60000 /* elements of the big masked tensor */

struct model {
    uint8_t big[NW], small[300], other[77];
    float bias[10];
    const char *version;
    uint64_t release;
    uint32_t enc_big, enc_small;
    int other_numel; /* 77 or 70: a shape change */
    int with_extra;  /* a tensor OLD does not have */
};

static uint8_t *build(const struct model *m, size_t *len)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(5, &sk, &pk);
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("net", m->version, m->release, &b, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_created(b, 1700000000), PEMN_OK);
    uint8_t seed[32] = {4};
    uint32_t p;
    assert_int_equal(pemn_builder_add_proto_seeded(b, 1, seed, 1.0f, 999, &p), PEMN_OK);
    uint64_t s1[2] = {200, NW / 200}, s2[1] = {300}, s3[1] = {(uint64_t)m->other_numel},
             s4[1] = {10};
    assert_int_equal(pemn_builder_set_mask_encoding(b, m->enc_big), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "big", 2, s1, p, 0, 1.0f, m->big, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_mask_encoding(b, m->enc_small), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "small", 1, s2, p, 1, 1.0f, m->small, NULL),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "other", 1, s3, p, 2, 1.0f, m->other, NULL),
                     PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "bias", PEMN_DT_F32, 1, s4, m->bias, 40, NULL),
                     PEMN_OK);
    if (m->with_extra)
        assert_int_equal(pemn_builder_add_masked(b, "extra", 1, s2, p, 3, 1.0f, m->small, NULL),
                         PEMN_OK);
    uint8_t *out;
    assert_int_equal(pemn_builder_finish(b, &sk, &out, len, NULL), PEMN_OK);
    pemn_builder_free(b);
    return out;
}

static void base_model(struct model *m, double k)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < NW; i++)
        m->big[i] = urand() < k;
    for (int i = 0; i < 300; i++)
        m->small[i] = urand() < k;
    for (int i = 0; i < 77; i++)
        m->other[i] = urand() < 0.5;
    for (int i = 0; i < 10; i++)
        m->bias[i] = (float)i;
    m->version = "v1";
    m->release = 1;
    m->other_numel = 77;
}

static void flip(uint8_t *mask, int n, double rate)
{
    for (int i = 0; i < n; i++)
        if (urand() < rate)
            mask[i] ^= 1;
}

/* diff then apply; returns the stats. */
static void roundtrip(const uint8_t *a, size_t la, const uint8_t *b, size_t lb,
                      struct pemn_delta_stats *st)
{
    uint8_t *d, *r;
    size_t ld, lr;
    struct pemn_err e;
    assert_int_equal(pemn_delta_make(a, la, b, lb, &d, &ld, st, &e), PEMN_OK);
    assert_int_equal(st->delta_bytes, ld);
    struct pemn_delta_info in;
    assert_int_equal(pemn_delta_info(d, ld, &in, NULL), PEMN_OK);
    assert_int_equal(in.old_len, la);
    assert_int_equal(in.new_len, lb);
    assert_int_equal(pemn_delta_apply(a, la, d, ld, &r, &lr, &e), PEMN_OK);
    assert_int_equal(lr, lb);
    assert_memory_equal(r, b, lb);
    free(r);
    free(d);
}

static void test_roundtrips(void **state)
{
    (void)state;
    const uint32_t encs[3][2] = {
        {PEMN_MASK_BITS, PEMN_MASK_BITS}, {0, PEMN_MASK_RANS}, {PEMN_MASK_RANS, PEMN_MASK_BITS}};
    for (int x = 0; x < 3; x++)
        for (int y = 0; y < 3; y++) {
            struct model o, n;
            base_model(&o, 0.2);
            o.enc_big = encs[x][0];
            o.enc_small = encs[x][1];
            n = o;
            n.enc_big = encs[y][0];
            n.enc_small = encs[y][1];
            n.version = "v2";
            n.release = 2;
            flip(n.big, NW, 0.01);
            flip(n.small, 300, 0.05);
            n.bias[3] = -1.5f;
            size_t la, lb;
            uint8_t *a = build(&o, &la), *b = build(&n, &lb);
            struct pemn_delta_stats st;
            roundtrip(a, la, b, lb, &st);
            uint64_t want = 0;
            for (int i = 0; i < NW; i++)
                want += o.big[i] != n.big[i];
            assert_true(st.mask_tensors >= 2);
            assert_true(st.flips >= want);
            assert_true(st.delta_bytes < lb / 3);
            /* identity: nothing but the header and copies */
            roundtrip(a, la, a, la, &st);
            assert_int_equal(st.flips, 0);
            assert_int_equal(st.literal_bytes, 0);
            free(a);
            free(b);
        }
}

static void test_shape_change_and_new_tensor(void **state)
{
    (void)state;
    struct model o, n;
    base_model(&o, 0.3);
    n = o;
    n.other_numel = 70;
    n.with_extra = 1;
    n.release = 9;
    flip(n.big, NW, 0.002);
    size_t la, lb;
    uint8_t *a = build(&o, &la), *b = build(&n, &lb);
    struct pemn_delta_stats st;
    roundtrip(a, la, b, lb, &st);
    assert_int_equal(st.mask_tensors, 2); /* big, small; other changed shape, extra is new */
    /* and back */
    roundtrip(b, lb, a, la, &st);
    free(a);
    free(b);
}

static double h2(double k)
{
    return k <= 0 || k >= 1 ? 0 : -k * log2(k) - (1 - k) * log2(1 - k);
}

static void test_near_entropy(void **state)
{
    (void)state;
    const double rates[] = {0.001, 0.004, 0.02, 0.1};
    for (int r = 0; r < 4; r++) {
        struct model o, n;
        base_model(&o, 0.1);
        n = o;
        flip(n.big, NW, rates[r]);
        size_t la, lb;
        uint8_t *a = build(&o, &la), *b = build(&n, &lb);
        struct pemn_delta_stats st;
        roundtrip(a, la, b, lb, &st);
        uint64_t f = 0;
        for (int i = 0; i < NW; i++)
            f += o.big[i] != n.big[i];
        double ideal = NW * h2((double)f / NW) / 8;
        assert_true(st.ideal_bytes >= ideal - 1);
        assert_true((double)st.flip_bytes <= 1.05 * st.ideal_bytes + 16);
        free(a);
        free(b);
    }
}

static void test_wrong_base_and_args(void **state)
{
    (void)state;
    struct model o, n, z;
    base_model(&o, 0.2);
    n = o;
    flip(n.big, NW, 0.01);
    z = o;
    z.version = "v0";
    size_t la, lb, lz, ld, lr;
    uint8_t *a = build(&o, &la), *b = build(&n, &lb), *c = build(&z, &lz), *d, *r;
    assert_int_equal(pemn_delta_make(a, la, b, lb, &d, &ld, NULL, NULL), PEMN_OK);
    struct pemn_err e;
    assert_int_equal(pemn_delta_apply(c, lz, d, ld, &r, &lr, &e), PEMN_EDIGEST);
    assert_null(r);
    assert_int_equal(pemn_delta_apply(b, lb, d, ld, &r, &lr, &e), PEMN_EDIGEST);
    assert_int_equal(pemn_delta_apply(NULL, 0, d, ld, &r, &lr, &e), PEMN_EINVAL);
    assert_int_equal(pemn_delta_make(a, la, b, lb, NULL, &ld, NULL, NULL), PEMN_EINVAL);
    /* not packages */
    uint8_t junk[300] = {1, 2, 3};
    assert_int_equal(pemn_delta_make(junk, sizeof junk, b, lb, &r, &lr, NULL, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "old package"));
    assert_int_equal(pemn_delta_make(a, la, junk, sizeof junk, &r, &lr, NULL, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "new package"));
    free(a);
    free(b);
    free(c);
    free(d);
}

/* The same delta with a raw (uncompressed) body: inflates the zlib body. */
static uint8_t *to_raw(const uint8_t *d, size_t ld, const uint8_t *old, size_t *out_len)
{
    assert_int_equal(proto_le32(d + 12), DELTA_BODY_ZLIB);
    uint64_t bl = proto_le64(d + 112);
    uint8_t *r = malloc(DELTA_HDR + bl);
    assert_non_null(r);
    memcpy(r, d, DELTA_HDR);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit(&z), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)(d + DELTA_HDR);
    z.avail_in = (uInt)(ld - DELTA_HDR);
    z.next_out = r + DELTA_HDR;
    z.avail_out = (uInt)bl;
    int rc = inflate(&z, Z_FINISH);
    if (rc == Z_NEED_DICT) {
        assert_int_equal(inflateSetDictionary(&z, old, proto_le32(d + 44)), Z_OK);
        rc = inflate(&z, Z_FINISH);
    }
    assert_int_equal(rc, Z_STREAM_END);
    inflateEnd(&z);
    proto_put32(r + 12, DELTA_BODY_RAW);
    proto_put32(r + 44, 0);
    proto_put64(r + 16, DELTA_HDR + bl);
    *out_len = DELTA_HDR + bl;
    return r;
}

static void test_hostile_header(void **state)
{
    (void)state;
    struct model o, n;
    base_model(&o, 0.2);
    n = o;
    flip(n.big, NW, 0.01);
    size_t la, lb, ld, lr;
    uint8_t *a = build(&o, &la), *b = build(&n, &lb), *z, *d, *r;
    size_t lz;
    assert_int_equal(pemn_delta_make(a, la, b, lb, &z, &lz, NULL, NULL), PEMN_OK);
    /* the compressed body: wrong announced length, wrong dictionary, unknown encoding */
    uint8_t *x = malloc(lz);
    memcpy(x, z, lz);
    proto_put64(x + 112, proto_le64(z + 112) + 1);
    assert_int_equal(pemn_delta_apply(a, la, x, lz, &r, &lr, NULL), PEMN_ECORRUPT);
    memcpy(x, z, lz);
    proto_put64(x + 112, UINT64_MAX / 4);
    assert_int_equal(pemn_delta_apply(a, la, x, lz, &r, &lr, NULL), PEMN_ETOOBIG);
    memcpy(x, z, lz);
    proto_put32(x + 44, proto_le32(z + 44) - 1);
    assert_int_equal(pemn_delta_apply(a, la, x, lz, &r, &lr, NULL), PEMN_ECORRUPT);
    memcpy(x, z, lz);
    proto_put32(x + 44, DELTA_DICT_MAX + 1);
    assert_int_equal(pemn_delta_apply(a, la, x, lz, &r, &lr, NULL), PEMN_ECORRUPT);
    memcpy(x, z, lz);
    proto_put32(x + 12, 7);
    assert_int_equal(pemn_delta_apply(a, la, x, lz, &r, &lr, NULL), PEMN_EUNSUPPORTED);
    free(x);
    /* the raw form applies too; op-level checks on it */
    d = to_raw(z, lz, a, &ld);
    assert_int_equal(pemn_delta_apply(a, la, d, ld, &r, &lr, NULL), PEMN_OK);
    assert_memory_equal(r, b, lb);
    free(r);
    free(z);
    x = malloc(ld);
    struct pemn_err e;
#define EXPECT(rc_)                                                                                \
    assert_int_equal(pemn_delta_apply(a, la, x, ld, &r, &lr, &e), rc_);                            \
    assert_null(r)
    memcpy(x, d, ld);
    x[0] ^= 1;
    EXPECT(PEMN_ECORRUPT);
    memcpy(x, d, ld);
    proto_put16(x + 8, 2);
    EXPECT(PEMN_EVERSION);
    memcpy(x, d, ld);
    proto_put64(x + 112, ld); /* raw body length must be the rest of the file */
    EXPECT(PEMN_ECORRUPT);
    memcpy(x, d, ld);
    proto_put64(x + 16, ld + 1);
    EXPECT(PEMN_ECORRUPT);
    memcpy(x, d, ld);
    proto_put32(x + 40, PEMN_DELTA_MAX_OPS + 1);
    EXPECT(PEMN_ETOOBIG);
    memcpy(x, d, ld);
    proto_put32(x + 40, (uint32_t)(ld / DELTA_OP));
    EXPECT(PEMN_ECORRUPT);
    memcpy(x, d, ld);
    proto_put64(x + 32, UINT64_MAX / 2);
    EXPECT(PEMN_ETOOBIG);
    memcpy(x, d, ld);
    proto_put64(x + 32, lb - 1); /* ops produce more than announced */
    EXPECT(PEMN_ECORRUPT);
    memcpy(x, d, ld);
    x[90] ^= 1; /* NEW digest */
    EXPECT(PEMN_EDIGEST);
    memcpy(x, d, ld);
    proto_put64(x + 24, la + 1);
    EXPECT(PEMN_EDIGEST);
    /* ops: first op fields */
    size_t o0 = DELTA_HDR;
    memcpy(x, d, ld);
    proto_put32(x + o0, 9);
    EXPECT(PEMN_ECORRUPT);
    memcpy(x, d, ld);
    proto_put64(x + o0 + 24, UINT64_MAX);
    EXPECT(PEMN_ECORRUPT);
    /* truncation at every length */
    for (size_t l = 0; l < ld; l += (l < 400 ? 1 : 97)) {
        memcpy(x, d, ld);
        proto_put64(x + 16, l);
        assert_true(pemn_delta_apply(a, la, x, l, &r, &lr, NULL) != PEMN_OK);
        assert_null(r);
    }
    free(x);
    free(a);
    free(b);
    free(d);
}

/* Every single-byte change either fails or (reserved bytes) rebuilds NEW exactly. */
static void test_damage_anywhere(void **state)
{
    (void)state;
    struct model o, n;
    base_model(&o, 0.2);
    o.enc_big = PEMN_MASK_RANS;
    n = o;
    flip(n.big, NW, 0.003);
    flip(n.small, 300, 0.05);
    size_t la, lb, ld, lr;
    uint8_t *a = build(&o, &la), *b = build(&n, &lb), *d, *r, *z;
    size_t lz;
    assert_int_equal(pemn_delta_make(a, la, b, lb, &z, &lz, NULL, NULL), PEMN_OK);
    d = to_raw(z, lz, a, &ld);
    for (size_t i = 0; i < lz; i++) { /* compressed: zlib's checksum catches the body */
        z[i] ^= 0x10;
        pemn_rc rc = pemn_delta_apply(a, la, z, lz, &r, &lr, NULL);
        if (rc == PEMN_OK) {
            assert_memory_equal(r, b, lb);
            free(r);
        }
        z[i] ^= 0x10;
    }
    free(z);
    uint8_t *x = malloc(ld);
    int ok = 0;
    for (size_t i = 0; i < ld; i++) {
        memcpy(x, d, ld);
        x[i] ^= (uint8_t)(1u << (i % 8));
        pemn_rc rc = pemn_delta_apply(a, la, x, ld, &r, &lr, NULL);
        if (rc == PEMN_OK) {
            assert_int_equal(lr, lb);
            assert_memory_equal(r, b, lb);
            free(r);
            ok++;
        } else {
            assert_null(r);
        }
    }
    assert_true(ok <= 40); /* the reserved header bytes */
    free(x);
    free(a);
    free(b);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrips),     cmocka_unit_test(test_shape_change_and_new_tensor),
        cmocka_unit_test(test_near_entropy),   cmocka_unit_test(test_wrong_base_and_args),
        cmocka_unit_test(test_hostile_header), cmocka_unit_test(test_damage_anywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
