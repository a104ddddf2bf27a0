/* Unit tests: proto_mkdir_p / proto_mkdir_parent and atomic writes (proto/fsutil.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/fsutil.h"

static char base[256];

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/pemn-fsutil.XXXXXX");
    return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char p[512];
    struct pemn_err e;
    snprintf(p, sizeof p, "%s/a/b//c/", base);
    assert_int_equal(proto_mkdir_p(p, 0755, &e), PEMN_OK);
    snprintf(p, sizeof p, "%s/a/b/c", base);
    assert_true(is_dir(p));
    /* again: existing folders are fine */
    assert_int_equal(proto_mkdir_p(p, 0755, &e), PEMN_OK);
    /* a file in the way */
    snprintf(p, sizeof p, "%s/a/file", base);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(proto_mkdir_p(p, 0755, &e), PEMN_EIO);
    assert_non_null(strstr(e.msg, "file"));
    snprintf(p, sizeof p, "%s/a/file/under", base);
    assert_int_equal(proto_mkdir_p(p, 0755, &e), PEMN_EIO);
    assert_int_equal(proto_mkdir_p("", 0755, &e), PEMN_EINVAL);
    assert_int_equal(proto_mkdir_p(NULL, 0755, &e), PEMN_EINVAL);
    char *longp = malloc(5000);
    memset(longp, 'x', 4999);
    longp[4999] = 0;
    assert_int_equal(proto_mkdir_p(longp, 0755, &e), PEMN_ETOOBIG);
    free(longp);
}

static void test_mkdir_parent(void **state)
{
    (void)state;
    char p[512], d[512];
    struct pemn_err e;
    snprintf(p, sizeof p, "%s/x/y/model.pemn", base);
    assert_int_equal(proto_mkdir_parent(p, 0755, &e), PEMN_OK);
    snprintf(d, sizeof d, "%s/x/y", base);
    assert_true(is_dir(d));
    snprintf(p, sizeof p, "%s/x/y/model.pemn", base);
    assert_false(is_dir(p)); /* the file itself is not created */
    /* no folder part: nothing to do */
    assert_int_equal(proto_mkdir_parent("model.pemn", 0755, &e), PEMN_OK);
    assert_int_equal(proto_mkdir_parent("/model.pemn", 0755, &e), PEMN_OK);
}

static void test_write_atomic(void **state)
{
    (void)state;
    char p[512];
    struct pemn_err e;
    snprintf(p, sizeof p, "%s/w.bin", base);
    assert_int_equal(proto_write_atomic(p, "abc", 3, 0600, &e), PEMN_OK);
    assert_int_equal(proto_write_atomic(p, "defg", 4, 0600, &e), PEMN_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a missing folder: error, nothing created */
    snprintf(p, sizeof p, "%s/none/w.bin", base);
    assert_int_not_equal(proto_write_atomic(p, "abc", 3, 0600, &e), PEMN_OK);
    assert_int_not_equal(access(p, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
