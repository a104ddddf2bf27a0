/*
 * bench/bench_verify.c — the cost of checking stored bytes against their digest
 * (storage/store_verify.h), docs/BENCHMARKS.md "Blob integrity checks (hardening)".
 *
 *   usage: bench_verify DIR SIZE_BYTES REPS
 *
 * For a SIZE-byte blob in a fresh database under DIR, each rep (median reported):
 *   fill      store_blob_get on a freshly opened store: copy out of SQLite + SHA-256 (cached)
 *   stream    the same with caching off: full chunked hash before the first handle
 *   hash      SHA-256 alone over the bytes in memory (what the check adds)
 *   read      copying the bytes out of SQLite in chunks, no hash (the peer: a read without
 *             the check)
 * and the ratios fill/read (what a verified cache fill costs against an unverified copy).
 */
#include "storage/store_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_verify DIR SIZE_BYTES REPS\n");
        return 2;
    }
    char db[1024];
    snprintf(db, sizeof db, "%s/verify.db", argv[1]);
    size_t size = (size_t)strtoull(argv[2], NULL, 10);
    int reps = (int)strtol(argv[3], NULL, 10);
    if (size == 0 || reps < 1 || reps > 100)
        return 2;
    uint8_t *b = malloc(size), *out = malloc(size);
    if (!b || !out)
        return 1;
    for (size_t i = 0; i < size; i++)
        b[i] = (uint8_t)(i * 2654435761u >> 13);
    struct store_version m;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "bench");
    snprintf(m.version, sizeof m.version, "1.0.0");
    snprintf(m.strategy, sizeof m.strategy, "rp");
    snprintf(m.signer, sizeof m.signer, "0123456789abcdef");
    m.release = 1;
    m.size = size;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(b, size, d);
    pemn_digest_format(d, m.digest);
    struct store *st;
    struct pemn_err e;
    bool created;
    if (store_open(db, NULL, &st, &e) ||
        store_put_package(st, &m, b, size, "bench", &created, NULL, &e)) {
        fprintf(stderr, "bench_verify: %s\n", e.msg);
        return 1;
    }
    store_close(st);
    double fill[100], stream[100], hash[100], rd[100];
    for (int r = 0; r < reps; r++) {
        struct store_opts o;
        store_opts_default(&o);
        o.cache_item_max = size + 1;
        struct store_blob *h;
        if (store_open(db, &o, &st, &e))
            return 1;
        double t0 = now();
        if (store_blob_get(st, m.digest, &h, &e))
            return 1;
        fill[r] = now() - t0;
        store_blob_release(h);
        store_close(st);

        o.cache_bytes = 0;
        if (store_open(db, &o, &st, &e))
            return 1;
        t0 = now();
        if (store_blob_get(st, m.digest, &h, &e))
            return 1;
        stream[r] = now() - t0;
        /* now verified: read it again in 1 MiB chunks, no hash (the peer) */
        t0 = now();
        for (size_t off = 0; off < size; off += 1u << 20) {
            size_t n = size - off < (1u << 20) ? size - off : 1u << 20;
            if (store_blob_read(st, h, off, out + off, n, &e))
                return 1;
        }
        rd[r] = now() - t0;
        store_blob_release(h);
        store_close(st);

        t0 = now();
        pemn_sha256(b, size, d);
        hash[r] = now() - t0;
    }
    if (memcmp(out, b, size) != 0) {
        fprintf(stderr, "bench_verify: read back different bytes\n");
        return 1;
    }
    double f = median(fill, reps), s = median(stream, reps), h = median(hash, reps),
           r = median(rd, reps);
    double mb = (double)size / 1048576.0;
    printf("blob %.1f MiB, %d reps (median)\n", mb, reps);
    printf("  cache fill, verified   %8.1f ms  %7.0f MiB/s\n", f * 1e3, mb / f);
    printf("  streamed, verified     %8.1f ms  %7.0f MiB/s\n", s * 1e3, mb / s);
    printf("  read, no check (peer)  %8.1f ms  %7.0f MiB/s\n", r * 1e3, mb / r);
    printf("  SHA-256 alone          %8.1f ms  %7.0f MiB/s\n", h * 1e3, mb / h);
    printf("  ratio fill/read %.2fx, stream-verify/read %.2fx\n", f / r, s / r);
    free(b);
    free(out);
    return 0;
}
