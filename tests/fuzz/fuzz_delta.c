/*
 * libFuzzer target: .pemnd deltas (pemn_delta_info, pemn_delta_apply) against a fixed
 * base package built here (two masked tensors, one coded, a dense one). A delta that
 * applies must rebuild bytes whose SHA-256 is the digest it names; a failure must be one
 * of the documented codes and leave no output. The corpus (tests/fuzz/corpus/delta/) holds
 * deltas from this base to variants of it; regenerate with
 *   cc -DFUZZ_DELTA_GEN -Iinclude -I. tests/fuzz/fuzz_delta.c build/release/lib/libpemn.a \
 *      -lsodium -ljansson -lcurl -lz -lm -lpthread -o /tmp/gen && /tmp/gen tests/fuzz/corpus/delta
 * (each delta also as a raw-body copy, *-raw.pemnd, so mutations reach the op parser)
 */
#include <pemn/builder.h>
#include <pemn/delta.h>
#include <pemn/pkg.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Base (variant 0) and variants: v flips some mask bits, changes the bias and the version. */
static uint8_t *make_pkg(int v, size_t *len)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    uint8_t kseed[32];
    memset(kseed, 0x42, sizeof kseed);
    if (sodium_init() < 0)
        return NULL;
    crypto_sign_seed_keypair(pk.bytes, sk.bytes, kseed);
    pemn_builder *b;
    char ver[8];
    snprintf(ver, sizeof ver, "v%d", v);
    if (pemn_builder_new("fz", ver, (uint64_t)v + 1, &b, NULL) != PEMN_OK)
        return NULL;
    pemn_builder_set_created(b, 1700000000);
    uint8_t seed[32] = {3}, m[4000];
    uint32_t p, r = 99;
    pemn_builder_add_proto_seeded(b, 1, seed, 1.0f, 500, &p);
    for (int i = 0; i < 4000; i++) {
        r = r * 1103515245u + 12345u;
        m[i] = (r >> 16) % 5 == 0;
        if (v && (r >> 8) % 100 < (uint32_t)v)
            m[i] ^= 1;
    }
    uint64_t s1[1] = {4000}, s2[1] = {700}, s3[1] = {8};
    float bias[8] = {0, 1, 2, 3, 4, 5, 6, (float)v};
    pemn_builder_set_mask_encoding(b, PEMN_MASK_RANS);
    pemn_builder_add_masked(b, "a", 1, s1, p, 0, 1.0f, m, NULL);
    pemn_builder_set_mask_encoding(b, PEMN_MASK_BITS);
    pemn_builder_add_masked(b, "b", 1, s2, p, 7, 0.5f, m + 100, NULL);
    pemn_builder_add_dense(b, "bias", PEMN_DT_F32, 1, s3, bias, sizeof bias, NULL);
    uint8_t *out = NULL;
    if (pemn_builder_finish(b, &sk, &out, len, NULL) != PEMN_OK)
        out = NULL;
    pemn_builder_free(b);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *base;
    static size_t base_len;
    if (!base && !(base = make_pkg(0, &base_len)))
        abort();
    uint8_t *d = malloc(size ? size : 1);
    if (!d)
        return 0;
    if (size)
        memcpy(d, data, size);
    struct pemn_delta_info in;
    pemn_rc irc = pemn_delta_info(d, size, &in, NULL);
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 7;
    struct pemn_err e;
    pemn_rc rc = pemn_delta_apply(base, base_len, d, size, &out, &out_len, &e);
    if (rc == PEMN_OK) {
        uint8_t dg[PEMN_DIGEST_BYTES];
        pemn_sha256(out, out_len, dg);
        if (irc != PEMN_OK || out_len != in.new_len || memcmp(dg, in.new_digest, 32) != 0)
            abort();
        free(out);
    } else if (out != NULL || out_len != 0 ||
               (rc != PEMN_ECORRUPT && rc != PEMN_EDIGEST && rc != PEMN_ETOOBIG &&
                rc != PEMN_EVERSION && rc != PEMN_EUNSUPPORTED && rc != PEMN_ENOMEM)) {
        abort();
    }
    free(d);
    return 0;
}

#ifdef FUZZ_DELTA_GEN
#include <zlib.h>
/* The delta with its body inflated (body encoding 0), so mutations reach the op parser. */
static int write_raw(const char *path, const uint8_t *d, size_t ld, const uint8_t *old)
{
    uint64_t bl =
        (uint64_t)d[112] | (uint64_t)d[113] << 8 | (uint64_t)d[114] << 16 | (uint64_t)d[115] << 24;
    uint32_t dict = (uint32_t)d[44] | (uint32_t)d[45] << 8 | (uint32_t)d[46] << 16;
    uint8_t *r = calloc(1, 128 + bl);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (!r || inflateInit(&z) != Z_OK) {
        free(r);
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)(d + 128);
    z.avail_in = (uInt)(ld - 128);
    z.next_out = r + 128;
    z.avail_out = (uInt)bl;
    int rc = inflate(&z, Z_FINISH);
    if (rc == Z_NEED_DICT && inflateSetDictionary(&z, old, dict) == Z_OK)
        rc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(r);
        return -1;
    }
    memcpy(r, d, 128);
    memset(r + 12, 0, 4); /* raw body */
    memset(r + 44, 0, 4); /* no dictionary */
    uint64_t tot = 128 + bl;
    for (int i = 0; i < 8; i++)
        r[16 + i] = (uint8_t)(tot >> (8 * i));
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(r, 1, tot, f) == tot;
    if (f && fclose(f) != 0)
        ok = 0;
    free(r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    size_t lb;
    uint8_t *base = make_pkg(0, &lb);
    for (int v = 0; v <= 5; v++) {
        size_t ln, ld;
        uint8_t *n = make_pkg(v * 2, &ln), *d;
        if (!base || !n || pemn_delta_make(base, lb, n, ln, &d, &ld, NULL, NULL) != PEMN_OK)
            return 1;
        char path[512];
        snprintf(path, sizeof path, "%s/to-v%d.pemnd", argv[1], v * 2);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(d, 1, ld, f) != ld || fclose(f) != 0)
            return 1;
        snprintf(path, sizeof path, "%s/to-v%d-raw.pemnd", argv[1], v * 2);
        if (write_raw(path, d, ld, base) != 0)
            return 1;
        free(d);
        free(n);
    }
    free(base);
    return 0;
}
#endif
