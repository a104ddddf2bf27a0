/* Unit tests: server/ configuration table, listen addresses, route matching and name
 * validation (the parts of pemnd that need no socket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_config_defaults(void **state)
{
    (void)state;
    struct srv_config c;
    srv_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_int_equal(c.max_package_size, 256u << 20);
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.connection_timeout, 30);
    assert_int_equal(c.log_level, SRV_LOG_INFO);
    assert_int_equal(c.log_format, SRV_LOG_TEXT);
    assert_false(c.read_token_required);
    assert_false(c.sendfile);
    struct pemn_err e;
    /* the defaults need only a database to be valid */
    assert_int_equal(srv_config_validate(&c, &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "--db"));
    strcpy(c.db, "/tmp/x.db");
    assert_int_equal(srv_config_validate(&c, &e), PEMN_OK);
}

static void test_config_set(void **state)
{
    (void)state;
    struct srv_config c;
    srv_config_defaults(&c);
    struct pemn_err e;
    assert_int_equal(srv_config_set(&c, "max-package-size", "64M", &e), PEMN_OK);
    assert_int_equal(c.max_package_size, 64u << 20);
    assert_int_equal(srv_config_set(&c, "max_package_size", "1k", &e), PEMN_OK);
    assert_int_equal(c.max_package_size, 1024);
    assert_int_equal(srv_config_set(&c, "max_package_size", "2GiB", &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "out of range"));
    assert_int_equal(srv_config_set(&c, "max_package_size", "12Q", &e), PEMN_EINVAL);
    assert_int_equal(srv_config_set(&c, "max_package_size", "-1", &e), PEMN_EINVAL);
    assert_int_equal(srv_config_set(&c, "max_package_size", "", &e), PEMN_EINVAL);
    assert_int_equal(srv_config_set(&c, "max_package_size", "99999999999999999999999", &e),
                     PEMN_EINVAL);
    assert_int_equal(srv_config_set(&c, "threads", "4", &e), PEMN_OK);
    assert_int_equal(c.threads, 4);
    assert_int_equal(srv_config_set(&c, "threads", "0", &e), PEMN_EINVAL);
    assert_int_equal(srv_config_set(&c, "threads", "4M", &e), PEMN_EINVAL); /* no suffixes */
    assert_int_equal(srv_config_set(&c, "read_token_required", "yes", &e), PEMN_OK);
    assert_true(c.read_token_required);
    assert_int_equal(srv_config_set(&c, "read-token-required", "off", &e), PEMN_OK);
    assert_false(c.read_token_required);
    assert_int_equal(srv_config_set(&c, "read_token_required", "maybe", &e), PEMN_EINVAL);
    assert_int_equal(srv_config_set(&c, "log_level", "DEBUG", &e), PEMN_OK);
    assert_int_equal(c.log_level, SRV_LOG_DEBUG);
    assert_int_equal(srv_config_set(&c, "log_level", "loud", &e), PEMN_EINVAL);
    assert_int_equal(srv_config_set(&c, "log_format", "json", &e), PEMN_OK);
    assert_int_equal(c.log_format, SRV_LOG_JSON);
    assert_int_equal(srv_config_set(&c, "nope", "1", &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "unknown setting"));
    assert_int_equal(srv_config_set(&c, "listen", NULL, &e), PEMN_EINVAL);
    char longv[2000];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    assert_int_equal(srv_config_set(&c, "db", longv, &e), PEMN_EINVAL);
    assert_true(srv_config_is_bool("read-token-required"));
    assert_false(srv_config_is_bool("threads"));
    assert_true(srv_config_known("cache_size"));
    assert_false(srv_config_known("cache_sizes"));
}

static void test_config_cross_checks(void **state)
{
    (void)state;
    struct srv_config c;
    srv_config_defaults(&c);
    strcpy(c.db, "x.db");
    struct pemn_err e;
    assert_int_equal(srv_config_set(&c, "cache_size", "1M", &e), PEMN_OK);
    assert_int_equal(srv_config_validate(&c, &e), PEMN_EINVAL); /* item max 64M > 1M */
    assert_non_null(strstr(e.msg, "cache_item_max"));
    assert_int_equal(srv_config_set(&c, "cache_item_max", "1M", &e), PEMN_OK);
    assert_int_equal(srv_config_validate(&c, &e), PEMN_OK);
    assert_int_equal(srv_config_set(&c, "per_ip_connection_limit", "2000", &e), PEMN_OK);
    assert_int_equal(srv_config_validate(&c, &e), PEMN_EINVAL);
}

static void test_config_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pemnd-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# a comment\n\n  listen = 0.0.0.0:9000  \nmax_package_size=10M\n"
               "db = \"/var/lib/pemnd/pemn.db\"\nread_token_required = true\n");
    fclose(f);
    struct srv_config c;
    srv_config_defaults(&c);
    struct pemn_err e;
    assert_int_equal(srv_config_load_file(&c, path, &e), PEMN_OK);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_string_equal(c.db, "/var/lib/pemnd/pemn.db");
    assert_int_equal(c.max_package_size, 10u << 20);
    assert_true(c.read_token_required);

    f = fopen(path, "w");
    fprintf(f, "threads = 2\nthreads: 3\n");
    fclose(f);
    assert_int_equal(srv_config_load_file(&c, path, &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, ":2:"));
    f = fopen(path, "w");
    fprintf(f, "threads = 1000\n");
    fclose(f);
    assert_int_equal(srv_config_load_file(&c, path, &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, ":1: threads"));
    unlink(path);
    assert_int_equal(srv_config_load_file(&c, path, &e), PEMN_EIO);
}

static void test_listen(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    unsigned len;
    struct pemn_err e;
    assert_int_equal(srv_parse_listen("127.0.0.1:8080", &ss, &len, &e), PEMN_OK);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(srv_parse_listen("[::1]:8080", &ss, &len, &e), PEMN_OK);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(srv_parse_listen("*:0", &ss, &len, &e), PEMN_OK);
    assert_int_equal(srv_parse_listen("127.0.0.1", &ss, &len, &e), PEMN_EINVAL);
    assert_int_equal(srv_parse_listen("127.0.0.1:70000", &ss, &len, &e), PEMN_EINVAL);
    assert_int_equal(srv_parse_listen("127.0.0.1:http", &ss, &len, &e), PEMN_EINVAL);
    assert_int_equal(srv_parse_listen(":8080", &ss, &len, &e), PEMN_EINVAL);
}

static void test_labels(void **state)
{
    (void)state;
    const char *good[] = {"a", "net", "1.4.0", "v1_2-rc.3", "A", "0", NULL};
    const char *bad[] = {"", ".", "..", "-a", "_a", ".a", "a/b", "a%2Fb", "a b", "a\"", "é", NULL};
    for (int i = 0; good[i]; i++)
        assert_true(srv_valid_label(good[i], strlen(good[i])));
    for (int i = 0; bad[i]; i++)
        assert_false(srv_valid_label(bad[i], strlen(bad[i])));
    char s[200];
    memset(s, 'a', sizeof s);
    assert_true(srv_valid_label(s, 128));
    assert_false(srv_valid_label(s, 129));
    assert_false(srv_valid_label("a\0b", 3));
}

static void test_routes(void **state)
{
    (void)state;
    struct srv_req r;
    unsigned allow;
    const char *which;
    memset(&r, 0, sizeof r);
    assert_int_equal(srv_route_match(&r, "/v1/models/net/versions/1.0.0", SRV_PUT, &allow, &which),
                     0);
    assert_string_equal(r.route->name, "version_put");
    assert_string_equal(srv_param(&r, "name"), "net");
    assert_string_equal(srv_param(&r, "version"), "1.0.0");
    assert_null(srv_param(&r, "tag"));
    memset(&r, 0, sizeof r);
    assert_int_equal(srv_route_match(&r, "/v1/models/net/versions/1.0.0", SRV_GET, &allow, &which),
                     0);
    assert_string_equal(r.route->name, "version_get");
    memset(&r, 0, sizeof r);
    assert_int_equal(
        srv_route_match(&r, "/v1/models/net/versions/1.0.0/package", SRV_HEAD, &allow, &which), 0);
    assert_string_equal(r.route->name, "package_get");
    memset(&r, 0, sizeof r);
    assert_int_equal(srv_route_match(&r, "/v1/models/net", SRV_DELETE, &allow, &which), -405);
    assert_true(allow & SRV_GET);
    assert_int_equal(srv_route_match(&r, "/v1/models/..", SRV_GET, &allow, &which), -400);
    assert_int_equal(strncmp(which, "name}", 5), 0);
    assert_int_equal(srv_route_match(&r, "/v1/models/net/tags/a%20b", SRV_GET, &allow, &which),
                     -400);
    assert_int_equal(srv_route_match(&r, "/v1/models/net/", SRV_GET, &allow, &which), -404);
    assert_int_equal(srv_route_match(&r, "/v1//models", SRV_GET, &allow, &which), -404);
    assert_int_equal(srv_route_match(&r, "", SRV_GET, &allow, &which), -404);
    assert_int_equal(srv_route_match(&r, "/", SRV_GET, &allow, &which), -404);
    char d[100] = "/v1/blobs/sha256:";
    memset(d + strlen(d), 'a', 64);
    memset(&r, 0, sizeof r);
    assert_int_equal(srv_route_match(&r, d, SRV_GET, &allow, &which), 0);
    assert_string_equal(r.route->name, "blob_get");
    d[strlen(d) - 1] = 'g';
    assert_int_equal(srv_route_match(&r, d, SRV_GET, &allow, &which), -400);
    assert_int_equal(srv_route_match(&r, "/v1/blobs/sha256:ab", SRV_GET, &allow, &which), -400);
    /* every route has a name, a pattern starting with '/', methods and a handler */
    assert_true(srv_route_count() >= 10);
    for (size_t i = 0; i < srv_route_count(); i++) {
        const struct srv_route *rt = srv_route_at(i);
        assert_non_null(rt->name);
        assert_int_equal(rt->pattern[0], '/');
        assert_true(rt->methods != 0);
        assert_non_null(rt->handler);
    }
    assert_null(srv_route_at(srv_route_count()));
}

static void test_version_json(void **state)
{
    (void)state;
    struct store_version v;
    memset(&v, 0, sizeof v);
    strcpy(v.model, "net");
    strcpy(v.version, "1.0");
    strcpy(v.strategy, "rp\xff\xfe\x01x"); /* not UTF-8: still encodes */
    strcpy(v.digest, "sha256:00");
    strcpy(v.signer, "0123456789abcdef");
    v.size = 100;
    v.f32_size = 3200;
    v.release = 7;
    json_t *o = srv_version_json(&v);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "strategy")), "rp???x");
    assert_true(json_real_value(json_object_get(o, "ratio")) == 32.0);
    assert_int_equal(json_integer_value(json_object_get(o, "release")), 7);
    assert_string_equal(json_string_value(json_object_get(o, "package_url")),
                        "/v1/blobs/sha256:00");
    json_decref(o);
}

static void test_metrics_counters(void **state)
{
    (void)state;
    struct srv_metrics *m = srv_metrics_new(3);
    assert_non_null(m);
    srv_metrics_request(m, 0, 200, 10, 0.001);
    srv_metrics_request(m, 99, 404, 0, 0.001); /* out of range: "unmatched" */
    srv_metrics_request(m, -1, 599, 0, 0.001); /* odd status: "other" */
    srv_metrics_push_rejected(m, "corrupt");
    srv_metrics_push_rejected(m, "no-such-reason");
    srv_metrics_free(m);
    srv_metrics_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_set),
        cmocka_unit_test(test_config_cross_checks),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_metrics_counters),
        cmocka_unit_test(test_version_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
