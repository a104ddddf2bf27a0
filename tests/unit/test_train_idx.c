/* Unit tests: IDX reader (train/idx.c) — valid gzip and plain files, and every kind of
 * damage (bad magic, wrong type, wrong dimension count, truncation, trailing bytes, size
 * mismatch, corrupt gzip, missing file) giving a clear error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "train/idx.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pemn-test-idx.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *name, const uint8_t *buf, size_t n, int gz)
{
    char p[512];
    path_of(p, sizeof p, name);
    if (gz) {
        gzFile f = gzopen(p, "wb");
        assert_non_null(f);
        if (n)
            assert_int_equal(gzwrite(f, buf, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, n, f), n);
        fclose(f);
    }
}

/* Images: 3 of 2x2, values 0..11. Labels 2, 0, 1. */
static size_t make_images(uint8_t *b, uint32_t n, uint32_t r, uint32_t c)
{
    uint8_t h[16] = {0, 0, 8, 3};
    uint32_t d[3] = {n, r, c};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            h[4 + 4 * i + k] = (uint8_t)(d[i] >> (24 - 8 * k));
    memcpy(b, h, 16);
    for (uint32_t i = 0; i < n * r * c; i++)
        b[16 + i] = (uint8_t)i;
    return 16 + (size_t)n * r * c;
}

static size_t make_labels(uint8_t *b, uint32_t n)
{
    uint8_t h[8] = {0,         0, 8, 1, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                    (uint8_t)n};
    memcpy(b, h, 8);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (uint8_t)((i + 2) % 3);
    return 8 + n;
}

static void test_valid_gzip_and_plain(void **state)
{
    (void)state;
    uint8_t img[64], lab[32];
    size_t ni = make_images(img, 3, 2, 2), nl = make_labels(lab, 3);
    write_file("train-images-idx3-ubyte.gz", img, ni, 1);
    write_file("train-labels-idx1-ubyte.gz", lab, nl, 1);
    write_file("t10k-images-idx3-ubyte", img, ni, 0); /* plain files work too */
    write_file("t10k-labels-idx1-ubyte", lab, nl, 0);
    struct train_data d;
    struct pemn_err e = {0};
    for (int split = 0; split < 2; split++) {
        assert_int_equal(train_data_load_dir(dir, split ? "t10k" : "train", &d, &e), PEMN_OK);
        assert_int_equal(d.n, 3);
        assert_int_equal(d.rows, 2);
        assert_int_equal(d.cols, 2);
        assert_int_equal(d.dim, 4);
        assert_int_equal(d.n_classes, 3);
        assert_int_equal(d.images[5], 5);
        assert_int_equal(d.labels[0], 2);
        assert_int_equal(d.labels[1], 0);
        train_data_truncate(&d, 2);
        assert_int_equal(d.n, 2);
        train_data_truncate(&d, 0); /* no-op */
        assert_int_equal(d.n, 2);
        train_data_free(&d);
        train_data_free(&d); /* safe twice */
    }
}

static pemn_rc read_bytes(const uint8_t *b, size_t n, int gz, uint32_t ndim, struct pemn_err *e)
{
    write_file("x.idx", b, n, gz);
    char p[512];
    path_of(p, sizeof p, "x.idx");
    uint32_t dims[4];
    uint8_t *data = NULL;
    pemn_rc rc = train_idx_read(p, ndim, dims, &data, e);
    if (rc)
        assert_null(data);
    free(data);
    return rc;
}

static void test_damaged_headers(void **state)
{
    (void)state;
    uint8_t img[64];
    size_t n = make_images(img, 3, 2, 2);
    struct pemn_err e = {0};
    for (int gz = 0; gz < 2; gz++) {
        uint8_t b[64];
        memcpy(b, img, n);
        b[0] = 0x1f; /* wrong magic */
        assert_int_equal(read_bytes(b, n, gz, 3, &e), PEMN_ECORRUPT);
        assert_non_null(strstr(e.msg, "not an IDX file"));
        memcpy(b, img, n);
        b[2] = 0x0d; /* float elements: unsupported */
        assert_int_equal(read_bytes(b, n, gz, 3, &e), PEMN_ECORRUPT);
        assert_non_null(strstr(e.msg, "element type"));
        assert_int_equal(read_bytes(img, n, gz, 1, &e), PEMN_ECORRUPT); /* 3 dims, want 1 */
        assert_non_null(strstr(e.msg, "dimensions"));
        assert_int_equal(read_bytes(img, 10, gz, 3, &e), PEMN_ECORRUPT); /* cut header */
        assert_non_null(strstr(e.msg, "truncated IDX header"));
        assert_int_equal(read_bytes(img, 0, gz, 3, &e), PEMN_ECORRUPT);     /* empty file */
        assert_int_equal(read_bytes(img, n - 1, gz, 3, &e), PEMN_ECORRUPT); /* cut payload */
        assert_non_null(strstr(e.msg, "truncated: 11 of 12"));
        memcpy(b, img, n);
        b[n] = 7; /* one byte too many */
        assert_int_equal(read_bytes(b, n + 1, gz, 3, &e), PEMN_ECORRUPT);
        assert_non_null(strstr(e.msg, "trailing"));
        memcpy(b, img, n);
        b[7] = 0; /* a zero dimension */
        assert_int_equal(read_bytes(b, n, gz, 3, &e), PEMN_ECORRUPT);
        memcpy(b, img, n);
        b[4] = b[5] = b[6] = b[7] = 0xff; /* 4G images of 2x2: announces more than exists */
        pemn_rc rc = read_bytes(b, n, gz, 3, &e);
        assert_true(rc == PEMN_ECORRUPT || rc == PEMN_ETOOBIG);
    }
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    /* A gzip stream of 4 KiB of varied bytes with its deflate data damaged. */
    uint8_t payload[16 + 4096];
    size_t n = make_images(payload, 1024, 2, 2);
    for (size_t i = 16; i < n; i++)
        payload[i] = (uint8_t)(i * 2654435761u >> 13);
    write_file("c.gz", payload, n, 1);
    char p[512];
    path_of(p, sizeof p, "c.gz");
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    assert_true(len > 100);
    for (long off = 40; off < len - 20; off += 7) { /* smash the middle */
        fseek(f, off, SEEK_SET);
        fputc(0xA5, f);
    }
    fclose(f);
    uint32_t dims[3];
    uint8_t *data = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = train_idx_read(p, 3, dims, &data, &e);
    assert_int_equal(rc, PEMN_ECORRUPT);
    assert_null(data);
    /* the damaged stream is named in the message */
    assert_non_null(strstr(e.msg, p));
}

static void test_mismatch_and_missing(void **state)
{
    (void)state;
    uint8_t img[64], lab[32];
    size_t ni = make_images(img, 3, 2, 2), nl = make_labels(lab, 2);
    write_file("bad-images-idx3-ubyte.gz", img, ni, 1);
    write_file("bad-labels-idx1-ubyte.gz", lab, nl, 1);
    struct train_data d;
    struct pemn_err e = {0};
    assert_int_equal(train_data_load_dir(dir, "bad", &d, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "3 images but"));
    assert_non_null(strstr(e.msg, "2 labels"));
    assert_null(d.images);
    assert_int_equal(train_data_load_dir(dir, "absent", &d, &e), PEMN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "absent-images-idx3-ubyte"));
    /* labels file missing only */
    write_file("half-images-idx3-ubyte.gz", img, ni, 1);
    assert_int_equal(train_data_load_dir(dir, "half", &d, &e), PEMN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "half-labels-idx1-ubyte"));
    uint32_t dims[1];
    uint8_t *data;
    assert_int_equal(train_idx_read("/nonexistent/x.gz", 1, dims, &data, &e), PEMN_ENOTFOUND);
    assert_int_equal(train_idx_read("/nonexistent/x.gz", 9, dims, &data, &e), PEMN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_gzip_and_plain),
        cmocka_unit_test(test_damaged_headers),
        cmocka_unit_test(test_corrupt_gzip),
        cmocka_unit_test(test_mismatch_and_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
