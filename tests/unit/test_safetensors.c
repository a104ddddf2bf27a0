/* Unit tests: safetensors reader and writer (pemn/safetensors.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pemn/pkg.h>
#include <pemn/safetensors.h>
#include "proto/safetensors_int.h"

/* ---- helpers -------------------------------------------------------------------------- */
static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pemn-st-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static int count_dir_entries(void)
{
    int n = 0;
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* A file: u64 length of header, the header, then `data_len` bytes of data (0x11 each). */
static uint8_t *mkfile(const char *header, size_t data_len, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    memset(b + 8 + h, 0x11, data_len);
    return b;
}

static pemn_rc open_header(const char *header, size_t data_len, struct pemn_err *err)
{
    size_t len;
    uint8_t *b = mkfile(header, data_len, &len);
    pemn_st *st = (pemn_st *)0x1;
    pemn_rc rc = pemn_st_open_mem(b, len, 0, &st, err);
    if (rc == PEMN_OK)
        pemn_st_free(st);
    else
        assert_null(st);
    free(b);
    return rc;
}

/* ---- round trips ---------------------------------------------------------------------- */
static void test_roundtrip_every_dtype(void **state)
{
    (void)state;
    pemn_st_writer *w;
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    uint8_t *bufs[PEMN_DT_COUNT_];
    const uint64_t shape[2] = {3, 5};
    for (int dt = 0; dt < PEMN_DT_COUNT_; dt++) {
        size_t nb = 15 * pemn_dtype_size((pemn_dtype)dt);
        bufs[dt] = malloc(nb);
        assert_non_null(bufs[dt]);
        for (size_t i = 0; i < nb; i++)
            bufs[dt][i] = (uint8_t)(i * 31 + (size_t)dt);
        char name[32];
        snprintf(name, sizeof name, "t.%s", pemn_dtype_name((pemn_dtype)dt));
        assert_int_equal(pemn_st_writer_add(w, name, (pemn_dtype)dt, 2, shape, bufs[dt], nb, NULL),
                         PEMN_OK);
    }
    uint8_t *file;
    size_t len;
    assert_int_equal(pemn_st_writer_write_mem(w, &file, &len, NULL), PEMN_OK);
    pemn_st *st;
    assert_int_equal(pemn_st_open_mem(file, len, 0, &st, NULL), PEMN_OK);
    assert_int_equal(pemn_st_count(st), PEMN_DT_COUNT_);
    uint64_t off = 0;
    for (int dt = 0; dt < PEMN_DT_COUNT_; dt++) {
        char name[32];
        snprintf(name, sizeof name, "t.%s", pemn_dtype_name((pemn_dtype)dt));
        uint32_t idx;
        assert_int_equal(pemn_st_find(st, name, &idx), PEMN_OK);
        /* insertion order = offset order */
        assert_int_equal(idx, dt);
        struct pemn_st_tensor t;
        assert_int_equal(pemn_st_tensor(st, idx, &t), PEMN_OK);
        assert_string_equal(t.name, name);
        assert_int_equal(t.dtype, dt);
        assert_int_equal(t.ndim, 2);
        assert_int_equal(t.shape[0], 3);
        assert_int_equal(t.shape[1], 5);
        assert_int_equal(t.numel, 15);
        assert_int_equal(t.nbytes, 15 * pemn_dtype_size((pemn_dtype)dt));
        assert_memory_equal(t.data, bufs[dt], t.nbytes);
        uint64_t hlen = 0;
        for (int i = 0; i < 8; i++)
            hlen |= (uint64_t)file[i] << (8 * i);
        assert_ptr_equal(t.data, file + 8 + hlen + off);
        off += t.nbytes;
    }
    struct pemn_st_tensor t;
    assert_int_equal(pemn_st_tensor(st, PEMN_DT_COUNT_, &t), PEMN_ENOTFOUND);
    assert_int_equal(pemn_st_find(st, "t.F31", NULL), PEMN_ENOTFOUND);
    pemn_st_free(st);
    free(file);
    pemn_st_writer_free(w);
    for (int dt = 0; dt < PEMN_DT_COUNT_; dt++)
        free(bufs[dt]);
}

static void test_metadata(void **state)
{
    (void)state;
    pemn_st_writer *w;
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    assert_int_equal(pemn_st_writer_add_meta(w, "format", "pt"), PEMN_OK);
    assert_int_equal(pemn_st_writer_add_meta(w, "pemn.name", "lenet"), PEMN_OK);
    assert_int_equal(pemn_st_writer_add_meta(w, "note", "\"quoted\" \\ \xc3\xa9"), PEMN_OK);
    assert_int_equal(pemn_st_writer_add_meta(w, "format", "np"), PEMN_OK); /* replaces */
    assert_int_equal(pemn_st_writer_add_meta(w, NULL, "x"), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add_meta(w, "k", NULL), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add_meta(w, "bad\xff", "x"), PEMN_EINVAL);
    uint8_t *file;
    size_t len;
    assert_int_equal(pemn_st_writer_write_mem(w, &file, &len, NULL), PEMN_OK);
    pemn_st *st;
    assert_int_equal(pemn_st_open_mem(file, len, PEMN_OPEN_COPY, &st, NULL), PEMN_OK);
    memset(file, 0, len); /* a copy was taken */
    free(file);
    assert_int_equal(pemn_st_count(st), 0);
    assert_int_equal(pemn_st_meta_count(st), 3);
    assert_string_equal(pemn_st_meta_get(st, "format"), "np");
    assert_string_equal(pemn_st_meta_get(st, "pemn.name"), "lenet");
    assert_string_equal(pemn_st_meta_get(st, "note"), "\"quoted\" \\ \xc3\xa9");
    assert_null(pemn_st_meta_get(st, "missing"));
    const char *k, *v;
    assert_int_equal(pemn_st_meta(st, 0, &k, &v), PEMN_OK);
    assert_string_equal(k, "format");
    assert_int_equal(pemn_st_meta(st, 2, &k, &v), PEMN_OK);
    assert_string_equal(k, "note");
    assert_int_equal(pemn_st_meta(st, 3, &k, &v), PEMN_ENOTFOUND);
    pemn_st_free(st);
    pemn_st_writer_free(w);
}

static void test_scalar_and_empty(void **state)
{
    (void)state;
    pemn_st_writer *w;
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    const double pi = 3.141592653589793;
    const uint64_t empty_shape[3] = {4, 0, 2};
    assert_int_equal(pemn_st_writer_add(w, "pi", PEMN_DT_F64, 0, NULL, &pi, 8, NULL), PEMN_OK);
    assert_int_equal(pemn_st_writer_add(w, "empty", PEMN_DT_F32, 3, empty_shape, NULL, 0, NULL),
                     PEMN_OK);
    const uint64_t one = 1;
    const uint8_t b = 1;
    assert_int_equal(pemn_st_writer_add(w, "flag", PEMN_DT_BOOL, 1, &one, &b, 1, NULL), PEMN_OK);
    uint8_t *file;
    size_t len;
    assert_int_equal(pemn_st_writer_write_mem(w, &file, &len, NULL), PEMN_OK);
    pemn_st *st;
    assert_int_equal(pemn_st_open_mem(file, len, 0, &st, NULL), PEMN_OK);
    assert_int_equal(pemn_st_count(st), 3);
    uint32_t i;
    struct pemn_st_tensor t;
    assert_int_equal(pemn_st_find(st, "pi", &i), PEMN_OK);
    assert_int_equal(pemn_st_tensor(st, i, &t), PEMN_OK);
    assert_int_equal(t.ndim, 0);
    assert_int_equal(t.numel, 1);
    assert_int_equal(t.nbytes, 8);
    assert_memory_equal(t.data, &pi, 8);
    assert_int_equal(pemn_st_find(st, "empty", &i), PEMN_OK);
    assert_int_equal(pemn_st_tensor(st, i, &t), PEMN_OK);
    assert_int_equal(t.ndim, 3);
    assert_int_equal(t.shape[1], 0);
    assert_int_equal(t.numel, 0);
    assert_int_equal(t.nbytes, 0);
    pemn_st_free(st);
    free(file);
    pemn_st_writer_free(w);

    /* a file with no tensors at all */
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    assert_int_equal(pemn_st_writer_write_mem(w, &file, &len, NULL), PEMN_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(file, "\x08\0\0\0\0\0\0\0{}      ", 16);
    assert_int_equal(pemn_st_open_mem(file, len, 0, &st, NULL), PEMN_OK);
    assert_int_equal(pemn_st_count(st), 0);
    assert_int_equal(pemn_st_meta_count(st), 0);
    pemn_st_free(st);
    free(file);
    pemn_st_writer_free(w);
}

/* The writer's bytes for a small file, written out by hand from the format description:
 * compact JSON, "__metadata__" first, fields dtype / shape / data_offsets, header padded
 * with spaces to a multiple of 8, data in insertion order, little-endian. */
static void test_byte_exact(void **state)
{
    (void)state;
    const float a[2] = {1.0f, -2.0f};
    const uint16_t b[3] = {1, 0x0203, 0xffff};
    const uint64_t sa[1] = {2}, sb[2] = {1, 3};
    pemn_st_writer *w;
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    assert_int_equal(pemn_st_writer_add(w, "a", PEMN_DT_F32, 1, sa, a, 8, NULL), PEMN_OK);
    assert_int_equal(pemn_st_writer_add(w, "b", PEMN_DT_U16, 2, sb, b, 6, NULL), PEMN_OK);
    assert_int_equal(pemn_st_writer_add_meta(w, "format", "pt"), PEMN_OK);
    uint8_t *file;
    size_t len;
    assert_int_equal(pemn_st_writer_write_mem(w, &file, &len, NULL), PEMN_OK);
    const char hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"U16\",\"shape\":[1,3],\"data_offsets\":[8,14]}}";
    /* 141 bytes of JSON, padded to 144 */
    assert_int_equal(strlen(hdr), 141);
    const uint8_t want_data[14] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00,
                                   0xc0, 0x01, 0x00, 0x03, 0x02, 0xff, 0xff};
    assert_int_equal(len, 8 + 144 + 14);
    assert_memory_equal(file, "\x90\0\0\0\0\0\0\0", 8);
    assert_memory_equal(file + 8, hdr, 141);
    assert_memory_equal(file + 8 + 141, "   ", 3);
    assert_memory_equal(file + 8 + 144, want_data, 14);
    free(file);
    pemn_st_writer_free(w);

    /* and a hand-written file in another key order, with whitespace, reads back */
    const char other[] = "{ \"b\" : {\"data_offsets\": [8, 14], \"shape\": [1, 3], \"dtype\": "
                         "\"U16\"},\n \"a\": {\"shape\":[2],\"dtype\":\"F32\",\"data_offsets\":"
                         "[0,8]}, \"__metadata__\": {\"format\": \"pt\"} }\n";
    size_t n;
    uint8_t *f2 = mkfile(other, 14, &n);
    memcpy(f2 + 8 + strlen(other), want_data, 14);
    pemn_st *st;
    assert_int_equal(pemn_st_open_mem(f2, n, 0, &st, NULL), PEMN_OK);
    struct pemn_st_tensor t;
    assert_int_equal(pemn_st_tensor(st, 0, &t), PEMN_OK); /* offset order: a first */
    assert_string_equal(t.name, "a");
    assert_memory_equal(t.data, a, 8);
    assert_int_equal(pemn_st_tensor(st, 1, &t), PEMN_OK);
    assert_string_equal(t.name, "b");
    assert_memory_equal(t.data, b, 6);
    assert_string_equal(pemn_st_meta_get(st, "format"), "pt");
    pemn_st_free(st);
    free(f2);
}

/* ---- invalid files -------------------------------------------------------------------- */
#define T1(fields) "{\"w\":{" fields "}}"
#define GOOD_FIELDS "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

static void test_invalid(void **state)
{
    (void)state;
    struct pemn_err e;
    static const struct {
        const char *header;
        size_t data;
        pemn_rc rc;
    } cases[] = {
        {T1(GOOD_FIELDS), 8, PEMN_OK}, /* the control case */
        {"", 0, PEMN_ECORRUPT},
        {" {}", 0, PEMN_ECORRUPT},
        {"[]", 0, PEMN_ECORRUPT},
        {"{", 0, PEMN_ECORRUPT},
        {"{}x", 0, PEMN_ECORRUPT},
        {"{} {}", 0, PEMN_ECORRUPT},
        {"{\"w\":1}", 0, PEMN_ECORRUPT},
        {"{\"w\":\"F32\"}", 0, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, PEMN_EUNSUPPORTED},
        {T1("\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, PEMN_EUNSUPPORTED},
        {T1("\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]"), 8, PEMN_ECORRUPT},
        {T1("\"shape\":[2],\"data_offsets\":[0,8]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"data_offsets\":[0,8]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2]"), 8, PEMN_ECORRUPT},
        {T1(GOOD_FIELDS ",\"extra\":1"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]"), 8,
         PEMN_ETOOBIG},
        {T1("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]"), 8, PEMN_OK},
        {T1("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]"), 8,
         PEMN_ECORRUPT},
        {T1("\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]"), 8,
         PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]"), 8,
         PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]"), 8, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 7, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 9, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]"), 12, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]"), 12, PEMN_ECORRUPT},
        {T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]"), 8,
         PEMN_ECORRUPT},
        /* two tensors: exact tiling, overlap, gap */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
         8, PEMN_OK},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
         6, PEMN_ECORRUPT},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
         4, PEMN_ECORRUPT},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[5,9]}}",
         9, PEMN_ECORRUPT},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
         8, PEMN_ECORRUPT},
        /* metadata */
        {"{\"__metadata__\":{\"k\":\"v\"}}", 0, PEMN_OK},
        {"{\"__metadata__\":{\"k\":1}}", 0, PEMN_ECORRUPT},
        {"{\"__metadata__\":{\"k\":null}}", 0, PEMN_ECORRUPT},
        {"{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", 0, PEMN_ECORRUPT},
        {"{\"__metadata__\":[\"k\"]}", 0, PEMN_ECORRUPT},
        {"{\"__metadata__\":\"k\"}", 0, PEMN_ECORRUPT},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, PEMN_ECORRUPT},
        /* text encoding */
        {"{\"\xff\":{" GOOD_FIELDS "}}", 8, PEMN_ECORRUPT},
        {"{\"__metadata__\":{\"k\":\"\xc3\"}}", 0, PEMN_ECORRUPT},
        {"{\"\\u0000\":{" GOOD_FIELDS "}}", 8, PEMN_ECORRUPT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(&e, 0, sizeof e);
        pemn_rc rc = open_header(cases[c].header, cases[c].data, &e);
        if (rc != cases[c].rc)
            fail_msg("case %zu (%s): got %s want %s (%s)", c, cases[c].header, pemn_rc_name(rc),
                     pemn_rc_name(cases[c].rc), e.msg);
        if (rc != PEMN_OK) {
            assert_int_equal(e.rc, rc);
            assert_true(e.msg[0] != '\0');
        }
    }
}

static void test_invalid_length(void **state)
{
    (void)state;
    struct pemn_err e;
    pemn_st *st;
    uint8_t small[7] = {0};
    assert_int_equal(pemn_st_open_mem(small, sizeof small, 0, &st, &e), PEMN_ECORRUPT);
    assert_int_equal(pemn_st_open_mem(small, 0, 0, &st, &e), PEMN_ECORRUPT);
    assert_int_equal(pemn_st_open_mem(NULL, 0, 0, &st, &e), PEMN_ECORRUPT);
    assert_int_equal(pemn_st_open_mem(NULL, 8, 0, &st, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_open_mem(small, 7, 0, NULL, &e), PEMN_EINVAL);
    /* header length past the end of the file */
    size_t len;
    uint8_t *b = mkfile("{}", 0, &len);
    b[0] = 3;
    assert_int_equal(pemn_st_open_mem(b, len, 0, &st, &e), PEMN_ECORRUPT);
    assert_int_equal(e.offset, 0);
    b[0] = 0;
    b[7] = 0x80; /* 2^63 */
    assert_int_equal(pemn_st_open_mem(b, len, 0, &st, &e), PEMN_ECORRUPT);
    memset(b, 0xff, 8);
    assert_int_equal(pemn_st_open_mem(b, len, 0, &st, &e), PEMN_ECORRUPT);
    free(b);
    /* a NUL byte inside the header */
    b = mkfile("{} ", 0, &len);
    b[8 + 2] = '\0';
    assert_int_equal(pemn_st_open_mem(b, len, 0, &st, &e), PEMN_ECORRUPT);
    free(b);
    /* a header over 100 MiB is refused even when the file holds it (pages never touched) */
    size_t big = (size_t)PROTO_ST_MAX_HEADER + 16;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    uint64_t h = PROTO_ST_MAX_HEADER + 8;
    for (int i = 0; i < 8; i++)
        huge[i] = (uint8_t)(h >> (8 * i));
    huge[8] = '{';
    assert_int_equal(pemn_st_open_mem(huge, big, 0, &st, &e), PEMN_ETOOBIG);
    free(huge);
}

/* ---- writer errors -------------------------------------------------------------------- */
static void test_writer_errors(void **state)
{
    (void)state;
    pemn_st_writer *w;
    struct pemn_err e;
    assert_int_equal(pemn_st_writer_new(NULL), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    const float v[4] = {1, 2, 3, 4};
    const uint64_t s4[1] = {4}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 4};
    const uint64_t sbig[2] = {UINT64_C(1) << 40, UINT64_C(1) << 40};
    assert_int_equal(pemn_st_writer_add(w, "v", PEMN_DT_F32, 1, s4, v, 16, &e), PEMN_OK);
    assert_int_equal(pemn_st_writer_add(w, "v", PEMN_DT_F32, 1, s4, v, 16, &e), PEMN_EEXIST);
    assert_int_equal(pemn_st_writer_add(w, "x", PEMN_DT_F32, 1, s4, v, 12, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, "x", PEMN_DT_COUNT_, 1, s4, v, 16, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, "x", PEMN_DT_F32, 9, s9, v, 16, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, "x", PEMN_DT_F32, 2, sbig, v, 16, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, "__metadata__", PEMN_DT_F32, 1, s4, v, 16, &e),
                     PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, "\xc3(", PEMN_DT_F32, 1, s4, v, 16, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, NULL, PEMN_DT_F32, 1, s4, v, 16, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, "x", PEMN_DT_F32, 1, s4, NULL, 16, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(w, "x", PEMN_DT_F32, 1, NULL, v, 16, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_add(NULL, "x", PEMN_DT_F32, 1, s4, v, 16, &e), PEMN_EINVAL);
    /* nothing lost: the writer still produces exactly the one good tensor */
    uint8_t *file;
    size_t len;
    assert_int_equal(pemn_st_writer_write_mem(w, &file, &len, &e), PEMN_OK);
    pemn_st *st;
    assert_int_equal(pemn_st_open_mem(file, len, 0, &st, &e), PEMN_OK);
    assert_int_equal(pemn_st_count(st), 1);
    pemn_st_free(st);
    free(file);
    assert_int_equal(pemn_st_writer_write_mem(w, NULL, &len, &e), PEMN_EINVAL);
    assert_int_equal(pemn_st_writer_write_file(w, NULL, &e), PEMN_EINVAL);
    pemn_st_writer_free(w);
    pemn_st_writer_free(NULL);
    pemn_st_free(NULL);
}

/* ---- files ---------------------------------------------------------------------------- */
static pemn_rc fill_ramp(void *ctx, uint64_t arg, uint64_t off, void *buf, uint64_t nbytes,
                         struct pemn_err *err)
{
    (void)ctx;
    (void)err;
    uint8_t *b = buf;
    for (uint64_t i = 0; i < nbytes; i++)
        b[i] = (uint8_t)(off + i + arg);
    return PEMN_OK;
}

static pemn_rc fill_fail(void *ctx, uint64_t arg, uint64_t off, void *buf, uint64_t nbytes,
                         struct pemn_err *err)
{
    (void)ctx;
    (void)arg;
    (void)off;
    (void)buf;
    (void)nbytes;
    err->rc = PEMN_ECORRUPT;
    snprintf(err->msg, sizeof err->msg, "producer failed");
    return PEMN_ECORRUPT;
}

static void test_files(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
    struct pemn_err e;
    pemn_st *st;
    assert_int_equal(pemn_st_open_file(path, &st, &e), PEMN_ENOTFOUND);
    assert_int_equal(pemn_st_open_file(tmpdir, &st, &e), PEMN_EIO);

    pemn_st_writer *w;
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    const uint64_t s[2] = {10, 100};
    const int32_t direct[3] = {-1, 0, 7};
    const uint64_t s3[1] = {3};
    assert_int_equal(pemn_st_writer_add(w, "direct", PEMN_DT_I32, 1, s3, direct, 12, &e), PEMN_OK);
    assert_int_equal(proto_st_writer_add_lazy(w, "lazy", PEMN_DT_U8, 2, s, fill_ramp, NULL, 5, &e),
                     PEMN_OK);
    assert_int_equal(pemn_st_writer_add_meta(w, "k", "v"), PEMN_OK);
    assert_int_equal(pemn_st_writer_write_file(w, path, &e), PEMN_OK);
    uint8_t *mem;
    size_t memlen;
    assert_int_equal(pemn_st_writer_write_mem(w, &mem, &memlen, &e), PEMN_OK);
    pemn_st_writer_free(w);
    assert_int_equal(count_dir_entries(), 1); /* no temporary left behind */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((size_t)sb.st_size, memlen);

    assert_int_equal(pemn_st_open_file(path, &st, &e), PEMN_OK);
    uint32_t i;
    struct pemn_st_tensor t;
    assert_int_equal(pemn_st_find(st, "lazy", &i), PEMN_OK);
    assert_int_equal(pemn_st_tensor(st, i, &t), PEMN_OK);
    assert_int_equal(t.nbytes, 1000);
    for (uint64_t k = 0; k < 1000; k++)
        assert_int_equal(((const uint8_t *)t.data)[k], (uint8_t)(k + 5));
    assert_int_equal(pemn_st_find(st, "direct", &i), PEMN_OK);
    assert_int_equal(pemn_st_tensor(st, i, &t), PEMN_OK);
    assert_memory_equal(t.data, direct, 12);
    assert_string_equal(pemn_st_meta_get(st, "k"), "v");
    pemn_st_free(st);
    /* file bytes == memory bytes */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *disk = malloc(memlen);
    assert_non_null(disk);
    assert_int_equal(fread(disk, 1, memlen, f), memlen);
    fclose(f);
    assert_memory_equal(disk, mem, memlen);
    free(disk);
    free(mem);

    /* a failing producer leaves the existing file untouched and no temporary behind */
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    assert_int_equal(proto_st_writer_add_lazy(w, "bad", PEMN_DT_U8, 2, s, fill_fail, NULL, 0, &e),
                     PEMN_OK);
    assert_int_equal(pemn_st_writer_write_file(w, path, &e), PEMN_ECORRUPT);
    assert_string_equal(e.msg, "producer failed");
    assert_int_equal(pemn_st_writer_write_mem(w, &mem, &memlen, &e), PEMN_ECORRUPT);
    assert_int_equal(count_dir_entries(), 1);
    off_t old_size = sb.st_size;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, old_size);
    assert_int_equal(pemn_st_open_file(path, &st, &e), PEMN_OK);
    assert_int_equal(pemn_st_find(st, "lazy", NULL), PEMN_OK);
    pemn_st_free(st);
    /* a directory that does not exist */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", tmpdir);
    assert_int_equal(pemn_st_writer_write_file(w, bad, &e), PEMN_EIO);
    assert_int_equal(proto_st_writer_add_lazy(w, "nofill", PEMN_DT_U8, 2, s, NULL, NULL, 0, &e),
                     PEMN_EINVAL);
    pemn_st_writer_free(w);

    /* an empty file and a truncated file */
    char p2[300];
    snprintf(p2, sizeof p2, "%s/empty.safetensors", tmpdir);
    f = fopen(p2, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(pemn_st_open_file(p2, &st, &e), PEMN_ECORRUPT);
    f = fopen(p2, "wb");
    assert_non_null(f);
    fwrite("\x40\0\0\0\0\0\0\0{}", 1, 10, f);
    fclose(f);
    assert_int_equal(pemn_st_open_file(p2, &st, &e), PEMN_ECORRUPT);
    unlink(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_dtype),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_scalar_and_empty),
        cmocka_unit_test(test_byte_exact),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_invalid_length),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
