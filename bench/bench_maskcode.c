/*
 * bench/bench_maskcode.c — mask encoding 2: size against the entropy, and decode speed
 * against memcpy, single thread, in the same run.
 *
 *   bench_maskcode size PKG.pemn ...
 *       per package: masked weights, kept fraction k, the ideal sum over tensors of
 *       numel * H(k_tensor) in bytes, the bytes the masks take as stored (the encoding the
 *       builder picked), as bit-packed, and bits/weight stored vs H. Also the ratio of the
 *       coded masks alone (encoding-2 tensors) to their entropy.
 *   bench_maskcode speed N_WEIGHTS K REPEATS
 *       an i.i.d. mask of density K over N_WEIGHTS: encodes it, then best-of-REPEATS of
 *       (a) decoding the block, (b) decoding + expanding to float32 (what a reader does for
 *       a coded tensor), (c) expanding bit-packed bits, (d) memcpy of the float32 output;
 *       (e) what streaming expansion does: pemn_pkg_expand_range over a package holding
 *       the coded mask, 1 MiB of output per call (the mask decoded range by range from
 *       its checkpoints into a 4 KiB scratch buffer, never whole);
 *       GB/s are 10^9 bytes of float32 output per second.
 */
#include "proto/expand.h"
#include "proto/maskcode.h"

#include <math.h>
#include <pemn/builder.h>
#include <pemn/key.h>
#include <pemn/pkg.h>
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

static double h2(double k)
{
    return k <= 0 || k >= 1 ? 0 : -k * log2(k) - (1 - k) * log2(1 - k);
}

static int size_report(int argc, char **argv)
{
    printf("%-28s %10s %7s %11s %11s %11s %9s %9s %12s\n", "package", "weights", "k", "H ideal B",
           "stored B", "bits B", "bits/w", "H(k)", "stored/H");
    for (int a = 0; a < argc; a++) {
        pemn_pkg *pkg;
        struct pemn_err e;
        if (pemn_pkg_open_file(argv[a], 0, &pkg, &e) != PEMN_OK) {
            fprintf(stderr, "%s: %s\n", argv[a], e.msg);
            return 1;
        }
        double ideal = 0, cideal = 0;
        uint64_t n = 0, kept = 0, stored = 0, packed = 0, cstored = 0;
        for (uint32_t i = 0; i < pemn_pkg_tensor_count(pkg); i++) {
            struct pemn_tensor_info t;
            if (pemn_pkg_tensor(pkg, i, &t) != PEMN_OK || !t.masked || !t.numel)
                continue;
            double k = (double)t.kept / (double)t.numel, hb = (double)t.numel * h2(k) / 8;
            n += t.numel;
            kept += t.kept;
            ideal += hb;
            stored += t.stored_bytes;
            packed += (t.numel + 7) / 8;
            if (t.mask_encoding == PEMN_MASK_RANS) {
                cideal += hb;
                cstored += t.stored_bytes;
            }
        }
        double k = n ? (double)kept / (double)n : 0;
        printf("%-28s %10llu %7.4f %11.0f %11llu %11llu %9.4f %9.4f %12.4f\n", argv[a],
               (unsigned long long)n, k, ideal, (unsigned long long)stored,
               (unsigned long long)packed, n ? 8.0 * (double)stored / (double)n : 0, h2(k),
               ideal > 0 ? (double)stored / ideal : 0);
        if (cstored)
            printf("%-28s coded tensors only: %llu B stored vs %.0f B entropy = %.4f x H\n", "",
                   (unsigned long long)cstored, cideal, (double)cstored / cideal);
        pemn_pkg_free(pkg);
    }
    return 0;
}

static int speed(uint64_t n, double k, int reps)
{
    uint64_t nb = (n + 7) / 8;
    uint8_t *bits = calloc(nb, 1), *dec = malloc(nb);
    float *out = malloc(n * 4), *src = malloc(n * 4), proto[26620];
    if (!bits || !dec || !out || !src)
        return 1;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        if ((double)(s >> 11) * 0x1p-53 < k)
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    for (int i = 0; i < 26620; i++)
        proto[i] = (float)i * 0.001f - 13.0f;
    for (uint64_t i = 0; i < n; i++)
        src[i] = (float)i;
    memset(out, 0, n * 4);
    uint8_t *blk;
    uint64_t blen;
    if (proto_maskcode_encode(bits, nb, 0, &blk, &blen, NULL) != PEMN_OK)
        return 1;
    /* (e): a package with the coded mask (forced encoding 2), explicit prototype */
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pemn_builder *b;
    uint32_t pid;
    uint8_t *pkgb;
    size_t pkgl;
    pemn_pkg *pkg;
    uint64_t shape[1] = {n};
    if (pemn_key_generate(&sk, &pk) != PEMN_OK || pemn_builder_new("b", "v1", 1, &b, NULL) ||
        pemn_builder_set_mask_encoding(b, PEMN_MASK_RANS) ||
        pemn_builder_add_proto_values(b, proto, 26620, &pid) ||
        pemn_builder_add_masked_bits(b, "w", 1, shape, pid, 0, 1.0f, bits, NULL) ||
        pemn_builder_finish(b, &sk, &pkgb, &pkgl, NULL) ||
        pemn_pkg_open_mem(pkgb, pkgl, 0, &pkg, NULL))
        return 1;
    pemn_builder_free(b);
    double bd = 1e30, bde = 1e30, be = 1e30, bm = 1e30, bs = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (proto_maskcode_decode(blk, blen, dec, nb, NULL) != PEMN_OK)
            return 1;
        double t1 = now();
        proto_expand_f32(out, dec, n, proto, 26620, 0, 1.0f);
        double t2 = now();
        proto_expand_f32(out, bits, n, proto, 26620, 0, 1.0f);
        double t3 = now();
        memcpy(out, src, n * 4);
        double t4 = now();
        for (uint64_t off = 0; off < n; off += (1u << 18))
            if (pemn_pkg_expand_range(pkg, 0, off, out + off,
                                      n - off < (1u << 18) ? n - off : (1u << 18), NULL) != PEMN_OK)
                return 1;
        double t5 = now();
        bs = fmin(bs, t5 - t4);
        bd = fmin(bd, t1 - t0);
        bde = fmin(bde, t2 - t0);
        be = fmin(be, t3 - t2);
        bm = fmin(bm, t4 - t3);
    }
    if (memcmp(dec, bits, nb) != 0)
        return 1;
    double gb = (double)n * 4 / 1e9;
    printf("mask of %llu weights at k=%.2f: coded %llu B = %.4f bits/weight, H(k) %.4f, "
           "ratio %.4f\n",
           (unsigned long long)n, k, (unsigned long long)blen, 8.0 * (double)blen / (double)n,
           h2(k), 8.0 * (double)blen / (double)n / h2(k));
    printf("  decode only            %8.2f GB/s of f32 output (%.0f M mask bytes/s)\n", gb / bd,
           (double)nb / bd / 1e6);
    printf("  decode + expand        %8.2f GB/s  (%.2fx memcpy)\n", gb / bde, bm / bde);
    printf("  expand bit-packed      %8.2f GB/s  (%.2fx memcpy)\n", gb / be, bm / be);
    printf("  streamed range expand  %8.2f GB/s  (%.2fx memcpy; package, 1 MiB per call)\n",
           gb / bs, bm / bs);
    printf("  memcpy (peer)          %8.2f GB/s\n", gb / bm);
    pemn_pkg_free(pkg);
    free(pkgb);
    free(blk);
    free(bits);
    free(dec);
    free(out);
    free(src);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "size") == 0)
        return size_report(argc - 2, argv + 2);
    if (argc == 5 && strcmp(argv[1], "speed") == 0)
        return speed(strtoull(argv[2], NULL, 10), strtod(argv[3], NULL),
                     (int)strtol(argv[4], NULL, 10));
    fprintf(stderr, "usage: bench_maskcode size PKG... | speed N K REPEATS\n");
    return 2;
}
