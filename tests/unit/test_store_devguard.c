/* Unit tests: storage/store_devguard.h — which fleet a device is in, and per-token device
 * registration limits (count and rate). Contract test: every backend
 * (tests/common/storefix.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_devguard.h"
#include "storage/store_fleet.h"
#include "tests/common/storefix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_register_limits(void **state)
{
    (void)state;
    struct store *st;
    struct pemn_err e;
    assert_int_equal(store_open(storefix_db, NULL, &st, &e), PEMN_OK);
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
    assert_int_equal(store_open(storefix_db, NULL, &st, &e), PEMN_OK);
    char fleet[STORE_LABEL_MAX];
    assert_int_equal(store_devguard_fleet_of(st, "cam1", fleet, &e), PEMN_ENOTFOUND);
    /* a fleet with a target, and cam1 polling it */
    uint8_t bytes[100];
    memset(bytes, 7, sizeof bytes);
    struct store_version m;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "net");
    snprintf(m.version, sizeof m.version, "1.0.0");
    snprintf(m.strategy, sizeof m.strategy, "rp");
    snprintf(m.signer, sizeof m.signer, "0123456789abcdef");
    m.release = 1;
    m.size = sizeof bytes;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(bytes, sizeof bytes, d);
    pemn_digest_format(d, m.digest);
    bool created;
    assert_int_equal(store_put_package(st, &m, bytes, sizeof bytes, "t", &created, NULL, &e),
                     PEMN_OK);
    struct store_fleet_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.model, sizeof t.model, "net");
    snprintf(t.version, sizeof t.version, "1.0.0");
    t.release = 1;
    memcpy(t.digest, m.digest, sizeof t.digest);
    t.size = sizeof bytes;
    bool started;
    struct store_fleet f;
    assert_int_equal(store_fleet_put(st, "edge", &t, 10000, 0, 0, "r1", "t", &started, &f, &e),
                     PEMN_OK);
    struct store_device dev;
    assert_int_equal(store_device_poll(st, "edge", "cam1", 30, &f, &dev, &e), PEMN_OK);
    assert_int_equal(store_devguard_fleet_of(st, "cam1", fleet, &e), PEMN_OK);
    assert_string_equal(fleet, "edge");
    /* bad arguments */
    assert_int_equal(store_devguard_register(st, "", "x", 0, 0, &e), PEMN_EINVAL);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_limits, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_of, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
