/* Unit tests: the console adds no route that bypasses the API's scopes — the only open
 * routes are /v1/health and the console's static files (/ui...); the console's reads are
 * read routes (open only when reads are open) and the audit log needs publish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/srv.h"

#include <string.h>

static const struct srv_route *find(const char *pattern)
{
    for (size_t i = 0; i < srv_route_count(); i++)
        if (!strcmp(srv_route_at(i)->pattern, pattern))
            return srv_route_at(i);
    return NULL;
}

static void test_open_routes(void **state)
{
    (void)state;
    size_t n_ui = 0;
    for (size_t i = 0; i < srv_route_count(); i++) {
        const struct srv_route *r = srv_route_at(i);
        bool ui = !strcmp(r->pattern, "/ui") || !strncmp(r->pattern, "/ui/", 4);
        if (ui) {
            n_ui++;
            assert_int_equal(r->need, SRV_OPEN);
            assert_int_equal(r->methods & ~(unsigned)(SRV_GET | SRV_HEAD), 0); /* read-only */
            assert_int_equal(r->max_body, 0);
        } else if (r->need == SRV_OPEN) {
            assert_string_equal(r->pattern, "/v1/health");
        }
    }
    assert_int_equal(n_ui, 3);
}

static void test_console_scopes(void **state)
{
    (void)state;
    static const char *const reads[] = {
        "/v1/fleets/{fleet}/devices",
        "/v1/fleets/{fleet}/failures",
        "/v1/fleets/{fleet}/progress",
        "/v1/fleets/{fleet}/devices/{device}/reports",
        "/v1/models/{name}/versions/{version}/contents",
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        const struct srv_route *r = find(reads[i]);
        assert_non_null(r);
        assert_int_equal(r->need, SRV_OPEN_READ);
        assert_int_equal(r->methods, SRV_GET | SRV_HEAD);
    }
    const struct srv_route *a = find("/v1/audit");
    assert_non_null(a);
    assert_int_equal(a->need, STORE_SCOPE_PUBLISH);
    assert_int_equal(a->methods, SRV_GET | SRV_HEAD);
}

static void test_ui_paths(void **state)
{
    (void)state;
    struct srv_req r;
    unsigned allow;
    const char *which;
    memset(&r, 0, sizeof r);
    assert_int_equal(srv_route_match(&r, "/ui/", SRV_GET, &allow, &which), 0);
    assert_string_equal(r.route->name, "ui_index");
    memset(&r, 0, sizeof r);
    assert_int_equal(srv_route_match(&r, "/ui/app.js", SRV_GET, &allow, &which), 0);
    assert_string_equal(srv_param(&r, "file"), "app.js");
    static const char *const bad[] = {"/ui/..", "/ui/.hidden.js", "/ui/%2e%2e%2fx", "/ui/a%2Fb.js",
                                      "/ui/-x.js"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(srv_route_match(&r, bad[i], SRV_GET, &allow, &which), -400);
    }
    static const char *const none[] = {"/ui/../v1/health", "/ui/sub/app.js", "/ui//x"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        memset(&r, 0, sizeof r);
        assert_true(srv_route_match(&r, none[i], SRV_GET, &allow, &which) < 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_routes),
        cmocka_unit_test(test_console_scopes),
        cmocka_unit_test(test_ui_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
