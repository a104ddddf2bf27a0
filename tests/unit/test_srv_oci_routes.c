/* Unit tests: the routing of pemnd's OCI endpoints (server/srv_routes_oci.c) — {reference}
 * takes a tag or a digest, upload paths are not mistaken for blob digests, PATCH is a method,
 * /v2 paths are recognised for OCI error bodies, and every route name is unique (metrics). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/srv_oci.h"

#include <stdio.h>
#include <string.h>

static const char *route(const char *path, enum srv_method m, int *rc)
{
    static struct srv_req r;
    unsigned allow;
    const char *which = NULL;
    memset(&r, 0, sizeof r);
    *rc = srv_route_match(&r, path, m, &allow, &which);
    return *rc == 0 ? r.route->name : NULL;
}

static void test_reference(void **state)
{
    (void)state;
    int rc;
    char dg[128];
    snprintf(dg, sizeof dg, "/v2/net/manifests/sha256:%064d", 0);
    assert_string_equal(route("/v2/net/manifests/1.0.0", SRV_GET, &rc), "oci_manifest_get");
    assert_string_equal(route("/v2/net/manifests/latest", SRV_HEAD, &rc), "oci_manifest_get");
    assert_string_equal(route(dg, SRV_GET, &rc), "oci_manifest_get");
    assert_string_equal(route(dg, SRV_PUT, &rc), "oci_manifest_put");
    assert_string_equal(route("/v2/net/manifests/stable", SRV_DELETE, &rc), "oci_manifest_delete");
    assert_null(route("/v2/net/manifests/sha256:12", SRV_GET, &rc));
    assert_int_equal(rc, -400);
    assert_null(route("/v2/net/manifests/a%2Fb", SRV_GET, &rc));
    assert_int_equal(rc, -400);
}

static void test_blobs_and_uploads(void **state)
{
    (void)state;
    int rc;
    char dg[128];
    snprintf(dg, sizeof dg, "/v2/net/blobs/sha256:%064d", 7);
    assert_string_equal(route(dg, SRV_GET, &rc), "oci_blob_get");
    assert_null(route(dg, SRV_DELETE, &rc));
    assert_int_equal(rc, -405);
    assert_string_equal(route("/v2/net/blobs/uploads/", SRV_POST, &rc), "oci_upload_start");
    assert_string_equal(route("/v2/net/blobs/uploads", SRV_POST, &rc), "oci_upload_start_noslash");
    assert_string_equal(route("/v2/net/blobs/uploads/0123abcd", SRV_PATCH, &rc),
                        "oci_upload_patch");
    assert_string_equal(route("/v2/net/blobs/uploads/0123abcd", SRV_PUT, &rc), "oci_upload_put");
    assert_string_equal(route("/v2/net/blobs/uploads/0123abcd", SRV_GET, &rc), "oci_upload_status");
    assert_string_equal(route("/v2/net/blobs/uploads/0123abcd", SRV_DELETE, &rc),
                        "oci_upload_delete");
    assert_string_equal(route("/v2/net/tags/list", SRV_GET, &rc), "oci_tags_list");
    assert_string_equal(route("/v2/_catalog", SRV_GET, &rc), "oci_catalog");
    assert_string_equal(route("/v2/", SRV_GET, &rc), "oci_ping");
    assert_string_equal(route("/v1/fleets/edge/oci", SRV_PUT, &rc), "fleet_oci_put");
    /* more than one component is not a pemnd repository */
    assert_null(route("/v2/team/net/tags/list", SRV_GET, &rc));
    assert_int_equal(rc, -404);
}

static void test_paths_and_names(void **state)
{
    (void)state;
    assert_true(srv_oci_path("/v2/"));
    assert_true(srv_oci_path("/v2"));
    assert_true(srv_oci_path("/v2/net/tags/list"));
    assert_false(srv_oci_path("/v2x"));
    assert_false(srv_oci_path("/v1/models"));
    assert_false(srv_oci_path(NULL));
    for (size_t i = 0; i < srv_route_count(); i++)
        for (size_t j = i + 1; j < srv_route_count(); j++)
            if (!strcmp(srv_route_at(i)->name, srv_route_at(j)->name) &&
                strcmp(srv_route_at(i)->pattern, srv_route_at(j)->pattern))
                fail_msg("route name %s used by %s and %s", srv_route_at(i)->name,
                         srv_route_at(i)->pattern, srv_route_at(j)->pattern);
    /* pushes need publish, reads are read routes: nothing in /v2 is open */
    for (size_t i = 0; i < srv_route_count(); i++) {
        const struct srv_route *rt = srv_route_at(i);
        if (!srv_oci_path(rt->pattern))
            continue;
        if (rt->methods & (SRV_PUT | SRV_POST | SRV_PATCH | SRV_DELETE))
            assert_int_equal(rt->need, STORE_SCOPE_PUBLISH);
        else
            assert_true(rt->need == SRV_OPEN_READ || rt->need == STORE_SCOPE_PUBLISH);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_blobs_and_uploads),
        cmocka_unit_test(test_paths_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
