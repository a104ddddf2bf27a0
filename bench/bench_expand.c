/*
 * bench/bench_expand.c — expansion vs memcpy of the same number of output bytes, single
 * thread, in the same run.
 *
 *   bench_expand [n_elements [repeats [d_v ...]]]
 *   defaults: 67108864 elements (256 MiB of float32), 5 repeats, d_v = 26620 and n
 *
 * For each d_v: a random mask of density 0.5; `repeats` alternating runs of
 * memcpy(dst, src, 4n) and of each kernel (dispatched, AVX2 with and without streaming
 * stores, portable, the scalar reference, and the naive `bit ? proto[i % d_v] : 0` loop).
 * Prints the best GB/s (10^9 bytes of output per second) of each and their ratio.
 */
#include "proto/expand.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The loop the issue calls naive: a modulo and a branch per element. */
__attribute__((noinline)) static void naive(float *out, const uint8_t *bits, uint64_t n,
                                            const float *proto, uint64_t d_v, uint64_t off,
                                            float scale)
{
    for (uint64_t i = 0; i < n; i++)
        out[i] = (bits[i >> 3] >> (i & 7)) & 1 ? scale * proto[(off + i) % d_v] : 0.0f;
}

enum { K_MEMCPY, K_DISPATCH, K_AVX2_STORE, K_AVX2_STREAM, K_PORTABLE, K_SCALAR, K_NAIVE };
static const char *const kname[] = {"memcpy",   "pemn (dispatched)", "avx2 store",  "avx2 stream",
                                    "portable", "scalar reference",  "naive modulo"};

static volatile float sink;

static double best(int k, int reps, float *dst, const float *src, const uint8_t *bits, uint64_t n,
                   const float *proto, uint64_t d_v)
{
    double b = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        switch (k) {
        case K_MEMCPY:
            memcpy(dst, src, (size_t)n * sizeof(float));
            break;
        case K_DISPATCH:
            proto_expand_f32(dst, bits, n, proto, d_v, 7 % d_v, 0.05f);
            break;
        case K_AVX2_STORE:
            proto_expand_f32_avx2(dst, bits, n, proto, d_v, 7 % d_v, 0.05f, 0);
            break;
        case K_AVX2_STREAM:
            proto_expand_f32_avx2(dst, bits, n, proto, d_v, 7 % d_v, 0.05f, 1);
            break;
        case K_PORTABLE:
            proto_expand_f32_portable(dst, bits, n, proto, d_v, 7 % d_v, 0.05f);
            break;
        case K_SCALAR:
            proto_expand_f32_scalar(dst, bits, n, proto, d_v, 7 % d_v, 0.05f);
            break;
        default:
            naive(dst, bits, n, proto, d_v, 7 % d_v, 0.05f);
            break;
        }
        double t = now() - t0;
        sink = dst[n / 2];
        if (t < b)
            b = t;
    }
    return b;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 67108864ull;
    int reps = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
    if (n < 64 || n > (1ull << 32) || reps < 1 || reps > 100) {
        fprintf(stderr,
                "usage: bench_expand [n_elements (64..2^32) [repeats (1..100) [d_v ...]]]\n");
        return 2;
    }
    uint64_t dvs[16];
    int ndv = 0;
    for (int a = 3; a < argc && ndv < 16; a++)
        dvs[ndv++] = strtoull(argv[a], NULL, 10);
    if (ndv == 0) {
        dvs[ndv++] = 26620;
        dvs[ndv++] = n;
    }
    size_t bytes = (size_t)n * sizeof(float);
    float *dst = aligned_alloc(64, bytes), *src = aligned_alloc(64, bytes);
    float *proto = aligned_alloc(64, bytes);
    uint8_t *bits = malloc((size_t)(n + 7) / 8);
    if (!dst || !src || !proto || !bits) {
        fprintf(stderr, "bench_expand: out of memory\n");
        return 1;
    }
    uint64_t s = 0x2545F4914F6CDD1Dull;
    for (uint64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        src[i] = proto[i] = (float)(s >> 40) * 0x1p-24f - 0.5f;
    }
    for (uint64_t i = 0; i < (n + 7) / 8; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        bits[i] = (uint8_t)(s >> 32); /* each bit set with probability 0.5 */
    }
    memset(dst, 0, bytes); /* fault the pages in before timing */

    printf("output %" PRIu64 " float32 = %.0f MiB, best of %d, single thread, kernel=%s, "
           "streaming from %" PRIu64 " MiB\n",
           n, (double)bytes / 1048576.0, reps, proto_expand_kernel(),
           proto_expand_stream_bytes() >> 20);
    int have = proto_expand_have_avx2();
    for (int d = 0; d < ndv; d++) {
        uint64_t d_v = dvs[d];
        if (d_v < 1 || d_v > n) {
            fprintf(stderr, "bench_expand: d_v must be in 1..n\n");
            return 2;
        }
        /* memcpy and each kernel alternate, so both see the same machine load; the ratio
         * compares the best of each. */
        printf("d_v = %" PRIu64 " (density 0.5)\n", d_v);
        double tm_all = 1e30;
        for (int k = K_DISPATCH; k <= K_NAIVE; k++) {
            if (!have && (k == K_AVX2_STORE || k == K_AVX2_STREAM))
                continue;
            int r = k >= K_SCALAR ? (reps < 2 ? reps : 2) : reps; /* slow ones: fewer runs */
            double tm = 1e30, t = 1e30;
            for (int x = 0; x < r; x++) {
                double a = best(K_MEMCPY, 1, dst, src, bits, n, proto, d_v);
                double b = best(k, 1, dst, src, bits, n, proto, d_v);
                tm = a < tm ? a : tm;
                t = b < t ? b : t;
            }
            tm_all = tm < tm_all ? tm : tm_all;
            double g = (double)bytes / t / 1e9, gm = (double)bytes / tm / 1e9;
            printf("  %-18s %6.2f GB/s   memcpy %6.2f GB/s   ratio %.2f\n", kname[k], g, gm,
                   g / gm);
        }
        printf("  %-18s %6.2f GB/s (best)\n", kname[K_MEMCPY], (double)bytes / tm_all / 1e9);
    }
    free(dst);
    free(src);
    free(proto);
    free(bits);
    return 0;
}
