/* Unit tests: storage/store_devguard.h — which fleet a device is in, and per-token device
 * registration limits (count and rate). Contract test (any backend). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_devguard.h"
#include "storage/store_fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];
static char g_db[300];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/pemn-devguard-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_db, sizeof g_db, "%s/t.db", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[400];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", g_db, suffix[i]);
        unlink(p);
    }
    rmdir(g_dir);
    return 0;
}

static void test_register_limits(void **state)
{
    (void)state;
    struct store *st;
    struct pemn_err e;
    assert_int_equal(store_open(g_db, NULL, &st, &e), PEMN_OK);
    char name[32];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "d%d", i);
        assert_int_equal(store_devguard_register(st, "tok", name, 3, 0, &e), PEMN_OK);
    }
    assert_int_equal(store_devguard_register(st, "tok", "d3", 3, 0, &e), PEMN_ETOOBIG);
    assert_non_null(strstr(e.msg, "tok"));
    /* a device already registered by the token is free */
    assert_int_equal(store_devguard_register(st, "tok", "d1", 3, 0, &e), PEMN_OK);
    /* another token has its own count */
    assert_int_equal(store_devguard_register(st, "other", "d3", 3, 0, &e), PEMN_OK);
    uint64_t total, recent;
    assert_int_equal(store_devguard_count(st, "tok", &total, &recent, &e), PEMN_OK);
    assert_int_equal(total, 3);
    assert_int_equal(recent, 3);
    /* the rate: 3 in the last minute with a per-minute limit of 3 */
    assert_int_equal(store_devguard_register(st, "tok", "d9", 0, 3, &e), PEMN_ETOOBIG);
    assert_non_null(strstr(e.msg, "last minute"));
    assert_int_equal(store_devguard_register(st, "tok", "d9", 0, 4, &e), PEMN_OK);
    assert_int_equal(store_devguard_register(st, "tok", "d10", 0, 0, &e), PEMN_OK);
    assert_int_equal(store_devguard_count(st, "tok", &total, &recent, &e), PEMN_OK);
    assert_int_equal(total, 5);
    store_close(st);
}

static void test_fleet_of(void **state)
{
    (void)state;
    struct store *st;
    struct pemn_err e;
    assert_int_equal(store_open(g_db, NULL, &st, &e), PEMN_OK);
    char fleet[STORE_LABEL_MAX];
    assert_int_equal(store_devguard_fleet_of(st, "cam1", fleet, &e), PEMN_ENOTFOUND);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_of, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
