/*
 * tests/unit/test_maskcode_stream.c — coded masks (encoding 2) expand range by range from
 * the checkpoints made at open: any range (unaligned ends, checkpoint and tensor
 * boundaries) equals the bit-packed package's expansion, streaming to a safetensors file
 * never decodes a whole mask and keeps the decoder's memory bounded, and a damaged stream
 * is refused at open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/maskcode.h"
#include "proto/pkg_internal.h"
#include "tests/common/pkgfix.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* tensors: sizes straddling the 4-state groups, the scratch size and several checkpoints */
#define NT 5
static const uint64_t numels[NT] = {1, 13, 32771, 4u * 16384u * 8u + 5u, 1000003};
static const double dens[NT] = {1.0, 0.3, 0.1, 0.3, 0.1};

static uint8_t *build(uint32_t enc, uint8_t **masks, size_t *len)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(5, &sk, &pk);
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("s", "v1", 1, &b, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_mask_encoding(b, enc), PEMN_OK);
    uint8_t seed[32] = {7};
    uint32_t p;
    assert_int_equal(pemn_builder_add_proto_seeded(b, 1, seed, 0.5f, 997, &p), PEMN_OK);
    for (int t = 0; t < NT; t++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", t);
        uint64_t shape[1] = {numels[t]};
        assert_int_equal(pemn_builder_add_masked_bits(b, name, 1, shape, p, (uint64_t)t * 101, 1.5f,
                                                      masks[t], NULL),
                         PEMN_OK);
    }
    uint8_t *out;
    assert_int_equal(pemn_builder_finish(b, &sk, &out, len, NULL), PEMN_OK);
    pemn_builder_free(b);
    return out;
}

struct fix {
    uint8_t *masks[NT], *pb, *pc;
    size_t lb, lc;
    pemn_pkg *bits, *coded;
    float *ref[NT];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof *f);
    assert_non_null(f);
    for (int t = 0; t < NT; t++) {
        uint64_t nb = (numels[t] + 7) / 8;
        f->masks[t] = calloc(nb, 1);
        assert_non_null(f->masks[t]);
        for (uint64_t i = 0; i < numels[t]; i++)
            if ((double)(rnd() >> 11) * 0x1p-53 < dens[t])
                f->masks[t][i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    f->pb = build(PEMN_MASK_BITS, f->masks, &f->lb);
    f->pc = build(PEMN_MASK_RANS, f->masks, &f->lc);
    assert_int_equal(pemn_pkg_open_mem(f->pb, f->lb, 0, &f->bits, NULL), PEMN_OK);
    proto_maskdec_peak_reset();
    assert_int_equal(pemn_pkg_open_mem(f->pc, f->lc, 0, &f->coded, NULL), PEMN_OK);
    /* opening validated and indexed every mask with one decoder at a time */
    assert_true(proto_maskdec_peak_bytes() <= 40u * 1024);
    for (int t = 0; t < NT; t++) {
        assert_int_equal(f->coded->tensors[t].encoding, PEMN_MASK_RANS);
        assert_null(f->coded->tensors[t].bits);
        f->ref[t] = malloc(numels[t] * sizeof(float));
        assert_non_null(f->ref[t]);
        assert_int_equal(pemn_pkg_expand(f->bits, (uint32_t)t, f->ref[t], numels[t], NULL),
                         PEMN_OK);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    for (int t = 0; t < NT; t++)
        free(f->masks[t]), free(f->ref[t]);
    pemn_pkg_free(f->bits);
    pemn_pkg_free(f->coded);
    free(f->pb);
    free(f->pc);
    free(f);
    return 0;
}

static void check_range(struct fix *f, int t, uint64_t first, uint64_t n, float *buf)
{
    buf[n] = 12345.0f; /* guard */
    struct pemn_err e;
    assert_int_equal(pemn_pkg_expand_range(f->coded, (uint32_t)t, first, buf, n, &e), PEMN_OK);
    assert_memory_equal(buf, f->ref[t] + first, n * sizeof(float));
    assert_true(buf[n] == 12345.0f);
}

static void test_ranges_equal_full_decode(void **state)
{
    struct fix *f = *state;
    float *buf = malloc((1000003 + 1) * sizeof(float));
    assert_non_null(buf);
    for (int t = 0; t < NT; t++) {
        uint64_t N = numels[t];
        /* the whole tensor, and empty ranges at both ends */
        check_range(f, t, 0, N, buf);
        check_range(f, t, 0, 0, buf);
        check_range(f, t, N, 0, buf);
        /* 300 random ranges, unaligned starts and ends */
        for (int r = 0; r < 300; r++) {
            uint64_t a = rnd() % (N + 1), b = rnd() % (N + 1);
            if (a > b) {
                uint64_t x = a;
                a = b;
                b = x;
            }
            check_range(f, t, a, b - a, buf);
        }
        /* short ranges around every checkpoint, scratch block and the tensor's ends */
        uint64_t step = 8ull * PROTO_MASKDEC_SCRATCH;
        for (uint64_t c = 0; c <= N; c += step)
            for (int64_t d = -9; d <= 9; d++) {
                int64_t a = (int64_t)c + d;
                if (a < 0 || (uint64_t)a > N)
                    continue;
                uint64_t len = N - (uint64_t)a < 20 ? N - (uint64_t)a : 20;
                check_range(f, t, (uint64_t)a, len, buf);
                check_range(f, t, 0, (uint64_t)a, buf);
                check_range(f, t, (uint64_t)a, N - (uint64_t)a, buf);
            }
        for (uint64_t k = 0; k < 17 && k <= N; k++) {
            check_range(f, t, N - k, k, buf);
            check_range(f, t, k, N - k, buf);
        }
        /* out of range is refused */
        assert_int_equal(pemn_pkg_expand_range(f->coded, (uint32_t)t, N, buf, 1, NULL),
                         PEMN_EINVAL);
    }
    /* still no tensor decoded whole */
    for (int t = 0; t < NT; t++)
        assert_null(atomic_load(&f->coded->tensors[t].decoded));
    free(buf);
}

static void test_stream_bounded(void **state)
{
    struct fix *f = *state;
    const char *dir = pkgfix_tmpdir();
    char pb[512], pc[512];
    snprintf(pb, sizeof pb, "%s/b.safetensors", dir);
    snprintf(pc, sizeof pc, "%s/c.safetensors", dir);
    assert_int_equal(pemn_pkg_write_safetensors(f->bits, pb, NULL), PEMN_OK);
    proto_maskdec_peak_reset();
    assert_int_equal(pemn_pkg_write_safetensors(f->coded, pc, NULL), PEMN_OK);
    /* one decoder (tables + 4 KiB scratch) at a time, whatever the mask sizes (125 KB) */
    uint64_t peak = proto_maskdec_peak_bytes();
    assert_true(peak > 0);
    assert_true(peak <= 40u * 1024);
    for (int t = 0; t < NT; t++)
        assert_null(atomic_load(&f->coded->tensors[t].decoded));
    /* the tensor data is the bit-packed package's, byte for byte (headers differ only in
     * the digest and format minor, which have the same lengths) */
    size_t lb, lc;
    uint8_t *b = pkgfix_read(pb, &lb), *c = pkgfix_read(pc, &lc);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(lb, lc);
    uint64_t data = 0;
    for (int t = 0; t < NT; t++)
        data += numels[t] * 4;
    assert_true(data < lb);
    assert_memory_equal(b + lb - data, c + lc - data, data);
    free(b);
    free(c);
    pkgfix_rmdir(dir);

    /* pemn_pkg_tensor still gives the whole decoded mask (made once, on first use) */
    struct pemn_tensor_info ti, ti2;
    assert_int_equal(pemn_pkg_tensor(f->coded, 4, &ti), PEMN_OK);
    assert_memory_equal(ti.mask, f->masks[4], (numels[4] + 7) / 8);
    assert_int_equal(pemn_pkg_tensor(f->coded, 4, &ti2), PEMN_OK);
    assert_ptr_equal(ti.mask, ti2.mask);
    /* and expansion after it still agrees */
    float *buf = malloc(1001 * sizeof(float));
    check_range(f, 4, 777777, 1000, buf);
    free(buf);
}

static void test_damaged_stream_refused(void **state)
{
    struct fix *f = *state;
    /* a byte in the middle of tensor 4's coded block: the checkpointing pass at open
     * decodes every stream to its end and catches it (final state or stream length) */
    const struct pkg_tensor *t = &f->coded->tensors[4];
    size_t off = (size_t)(t->data - f->pc) + (size_t)t->data_len / 2;
    uint8_t *bad = malloc(f->lc);
    assert_non_null(bad);
    memcpy(bad, f->pc, f->lc);
    bad[off] ^= 0x5a;
    pemn_pkg *z = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_pkg_open_mem(bad, f->lc, 0, &z, &e), PEMN_ECORRUPT);
    assert_null(z);
    assert_true(e.offset >= (uint64_t)(t->data - f->pc));
    assert_true(e.offset < (uint64_t)(t->data - f->pc) + t->data_len);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_equal_full_decode),
        cmocka_unit_test(test_stream_bounded),
        cmocka_unit_test(test_damaged_stream_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
