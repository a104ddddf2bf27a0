/* Unit tests: result codes, dtypes, digest text form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <pemn/common.h>
#include "proto/err.h"

static void test_strerror_every_code(void **state)
{
    (void)state;
    for (int rc = 0; rc < PEMN_RC_COUNT_; rc++) {
        assert_non_null(pemn_strerror((pemn_rc)rc));
        assert_true(pemn_rc_name((pemn_rc)rc)[0] == (rc ? 'E' : 'O'));
    }
    assert_string_equal(pemn_strerror((pemn_rc)999), "unknown error");
    assert_string_equal(pemn_rc_name(PEMN_ECORRUPT), "ECORRUPT");
}

static void test_err_fill(void **state)
{
    (void)state;
    struct pemn_err e;
    assert_int_equal(proto_err(&e, PEMN_ECORRUPT, 12, "bad %s", "thing"), PEMN_ECORRUPT);
    assert_int_equal(e.rc, PEMN_ECORRUPT);
    assert_int_equal(e.offset, 12);
    assert_string_equal(e.msg, "bad thing");
    assert_int_equal(proto_err(NULL, PEMN_EIO, 0, "x"), PEMN_EIO);
}

static void test_dtypes(void **state)
{
    (void)state;
    pemn_dtype dt;
    for (int i = 0; i < PEMN_DT_COUNT_; i++) {
        const char *n = pemn_dtype_name((pemn_dtype)i);
        assert_non_null(n);
        assert_int_equal(pemn_dtype_parse(n, &dt), PEMN_OK);
        assert_int_equal(dt, i);
        assert_true(pemn_dtype_size(dt) >= 1);
    }
    assert_int_equal(pemn_dtype_size(PEMN_DT_I64), 8);
    assert_int_equal(pemn_dtype_size(PEMN_DT_BF16), 2);
    assert_int_equal(pemn_dtype_parse("f32", &dt), PEMN_EINVAL);
    assert_int_equal(pemn_dtype_size((pemn_dtype)99), 0);
}

static void test_digest_text(void **state)
{
    (void)state;
    uint8_t d[32], back[32];
    char txt[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256("abc", 3, d);
    pemn_digest_format(d, txt);
    assert_string_equal(txt,
                        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(pemn_digest_parse(txt, back), PEMN_OK);
    assert_memory_equal(d, back, 32);
    assert_int_equal(pemn_digest_parse("sha256:zz", back), PEMN_EINVAL);
    assert_int_equal(pemn_digest_parse("md5:ba7816bf", back), PEMN_EINVAL);
    txt[10] = 'g';
    assert_int_equal(pemn_digest_parse(txt, back), PEMN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_every_code),
        cmocka_unit_test(test_err_fill),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_digest_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
