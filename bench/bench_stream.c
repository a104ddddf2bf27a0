/*
 * bench/bench_stream.c — makes a large package for the streaming-expansion benchmark
 * (bench/bench_stream.sh): a seeded prototype (chacha20-uniform, d_v 65536) and masked
 * tensors of 2^26 elements (256 MiB of float32 each) with i.i.d. density-0.5 masks, as many
 * as make GIB GiB of float32; the package is 1/32 of that plus a few hundred bytes.
 *
 *   bench_stream KEY.key GIB OUT.pemn [coded]
 *
 * With "coded" the masks have density 1/8 (each bit the AND of three random bits), so the
 * builder stores them entropy-coded (mask encoding 2, ~0.55 bits per weight).
 */
#include <pemn/builder.h>
#include <pemn/key.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "coded") == 0)) {
        fprintf(stderr, "usage: bench_stream KEY.key GIB OUT.pemn [coded]\n");
        return 2;
    }
    int coded = argc == 5;
    char *end;
    unsigned long gib = strtoul(argv[2], &end, 10);
    if (*end || gib == 0 || gib > 64) {
        fprintf(stderr, "bench_stream: GIB must be 1..64\n");
        return 2;
    }
    struct pemn_err e = {0};
    struct pemn_seckey sk;
    if (pemn_seckey_load(argv[1], &sk, &e) != PEMN_OK) {
        fprintf(stderr, "bench_stream: %s\n", e.msg);
        return 1;
    }
    pemn_builder *b;
    uint32_t p;
    uint8_t seed[32] = {42};
    const uint64_t per = UINT64_C(1) << 26;
    if (pemn_builder_new("stream", "v1", 1, &b, &e) != PEMN_OK ||
        pemn_builder_add_proto_seeded(b, 1, seed, 0.05f, 65536, &p) != PEMN_OK) {
        fprintf(stderr, "bench_stream: builder\n");
        return 1;
    }
    uint8_t *bits = malloc(per / 8);
    if (!bits)
        return 1;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (unsigned long t = 0; t < gib * 4; t++) {
        for (uint64_t i = 0; i < per / 64; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t w = x;
            for (int r = 0; coded && r < 2; r++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                w &= x;
            }
            memcpy(bits + 8 * i, &w, 8);
        }
        char name[32];
        snprintf(name, sizeof name, "layer%lu.weight", t);
        uint64_t shape[2] = {8192, per / 8192};
        if (pemn_builder_add_masked_bits(b, name, 2, shape, p, (t * 977) % 65536, 1.0f, bits, &e) !=
            PEMN_OK) {
            fprintf(stderr, "bench_stream: %s\n", e.msg);
            return 1;
        }
    }
    free(bits);
    pemn_rc rc = pemn_builder_write_file(b, &sk, argv[3], &e);
    pemn_builder_free(b);
    pemn_seckey_wipe(&sk);
    if (rc) {
        fprintf(stderr, "bench_stream: %s\n", e.msg);
        return 1;
    }
    return 0;
}
