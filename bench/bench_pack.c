/*
 * bench_pack — packing speed and memory (docs/BENCHMARKS.md, "Packing (proto/pack)").
 *   bench_pack make OUT N      write an RP checkpoint of about N masked parameters
 *                              (layers N/2, N/4, N/8, N/8; d_v 26,620; random scores)
 *   bench_pack pack FILE REPS  pack it (auto strategy, density 0.5): best time, peak RSS
 *   bench_pack hash FILE REPS  the peer: SHA-256 of the same mmap'ed file, best time
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pemn/pack.h>
#include <pemn/safetensors.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float rndf(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 40) / 8388608.0 - 1.0);
}

static int make(const char *out, uint64_t n)
{
    enum { D_V = 26620 };
    static const char *const names[4][2] = {{"l0.weight", "l0.scores"},
                                            {"l1.weight", "l1.scores"},
                                            {"l2.weight", "l2.scores"},
                                            {"l3.weight", "l3.scores"}};
    uint64_t sizes[4] = {n / 2, n / 4, n / 8, n / 8};
    float proto[D_V];
    for (int i = 0; i < D_V; i++)
        proto[i] = rndf();
    pemn_st_writer *w = NULL;
    struct pemn_err e;
    float *bufs[8] = {0};
    int rc = 1;
    if (pemn_st_writer_new(&w) != PEMN_OK)
        return 1;
    for (int l = 0; l < 4; l++) {
        uint64_t m = sizes[l] ? sizes[l] : 1;
        float *wt = malloc(m * sizeof *wt), *sc = malloc(m * sizeof *sc);
        bufs[2 * l] = wt;
        bufs[2 * l + 1] = sc;
        if (!wt || !sc)
            goto out;
        for (uint64_t i = 0; i < m; i++) {
            wt[i] = proto[i % D_V];
            sc[i] = rndf();
        }
        uint64_t shape[1] = {m};
        if (pemn_st_writer_add(w, names[l][0], PEMN_DT_F32, 1, shape, wt, m * 4, &e) ||
            pemn_st_writer_add(w, names[l][1], PEMN_DT_F32, 1, shape, sc, m * 4, &e))
            goto out;
    }
    if (pemn_st_writer_write_file(w, out, &e) != PEMN_OK) {
        fprintf(stderr, "bench_pack: %s\n", e.msg);
        goto out;
    }
    rc = 0;
out:
    pemn_st_writer_free(w);
    for (int i = 0; i < 8; i++)
        free(bufs[i]);
    return rc;
}

static int pack(const char *path, int reps)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    if (pemn_key_generate(&sk, &pk) != PEMN_OK)
        return 1;
    double best = 1e30;
    size_t len = 0;
    uint64_t params = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        pemn_st *st = NULL;
        struct pemn_err e;
        if (pemn_st_open_file(path, &st, &e) != PEMN_OK) {
            fprintf(stderr, "bench_pack: %s\n", e.msg);
            return 1;
        }
        struct pemn_pack_opts o;
        pemn_pack_opts_init(&o);
        o.name = "bench";
        o.version = "1";
        struct pemn_pack_report rep;
        uint8_t *buf = NULL;
        if (pemn_pack_safetensors(st, &o, &sk, &buf, &len, &rep, &e) != PEMN_OK) {
            fprintf(stderr, "bench_pack: %s\n", e.msg);
            return 1;
        }
        double t = now() - t0;
        if (t < best)
            best = t;
        params = rep.n_params;
        free(buf);
        pemn_pack_report_free(&rep);
        pemn_st_free(st);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("pack %.4f s %.1f Mparam/s package %zu bytes maxrss %.1f MiB params %llu\n", best,
           (double)params / best / 1e6, len, (double)ru.ru_maxrss / 1024.0,
           (unsigned long long)params);
    return 0;
}

static int hash(const char *path, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        int fd = open(path, O_RDONLY);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0)
            return 1;
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
            return 1;
        uint8_t d[PEMN_DIGEST_BYTES];
        pemn_sha256(p, (size_t)sb.st_size, d);
        munmap(p, (size_t)sb.st_size);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("hash %.4f s\n", best);
    return 0;
}

/* a repeat count: 1 when absent, malformed or out of 1..1000 */
static int reps_arg(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v < 1 || v > 1000) ? 1 : (int)v;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "make"))
        return make(argv[2], strtoull(argv[3], NULL, 10));
    if (argc == 4 && !strcmp(argv[1], "pack"))
        return pack(argv[2], reps_arg(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "hash"))
        return hash(argv[2], reps_arg(argv[3]));
    fprintf(stderr, "usage: bench_pack make OUT N | pack FILE REPS | hash FILE REPS\n");
    return 2;
}
