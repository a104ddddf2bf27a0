/* Unit tests: proto/oci.h (the PEMN OCI artifact: deterministic config + manifest, the strict
 * manifest reader, OCI name rules) and pemn_oci_parse_ref (pemn/oci.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/oci.h"
#include "tests/common/pkgfix.h"

#include <jansson.h>
#include <pemn/oci.h>
#include <pemn/pkg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct proto_oci_desc desc(void)
{
    struct proto_oci_desc d = {.name = "net",
                               .version = "1.0.0",
                               .strategy = "rp",
                               .release = 3,
                               .created = 1700000000,
                               .size = 1234,
                               .n_params = 100,
                               .f32_size = 4000,
                               .density = 0.5};
    snprintf(d.digest, sizeof d.digest, "sha256:%064d", 7);
    snprintf(d.signer, sizeof d.signer, "0123456789abcdef");
    return d;
}

static void test_build_deterministic(void **state)
{
    (void)state;
    struct proto_oci_desc d = desc();
    struct proto_oci_artifact a, b;
    assert_int_equal(proto_oci_build(&d, &a, NULL), PEMN_OK);
    assert_int_equal(proto_oci_build(&d, &b, NULL), PEMN_OK);
    assert_int_equal(a.manifest_len, b.manifest_len);
    assert_memory_equal(a.manifest, b.manifest, a.manifest_len);
    assert_string_equal(a.manifest_digest, b.manifest_digest);
    char dg[PEMN_DIGEST_TEXT_MAX];
    proto_oci_digest(a.manifest, a.manifest_len, dg);
    assert_string_equal(dg, a.manifest_digest);
    proto_oci_digest(a.config, a.config_len, dg);
    assert_string_equal(dg, a.config_digest);

    json_t *m = json_loadb(a.manifest, a.manifest_len, 0, NULL);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "artifactType")),
                        "application/vnd.pemn.package.v1");
    json_t *l0 = json_array_get(json_object_get(m, "layers"), 0);
    assert_string_equal(json_string_value(json_object_get(l0, "digest")), d.digest);
    assert_int_equal(json_integer_value(json_object_get(l0, "size")), 1234);
    json_t *ann = json_object_get(m, "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "org.opencontainers.image.created")),
                        "2023-11-14T22:13:20Z");
    assert_string_equal(json_string_value(json_object_get(ann, "org.opencontainers.image.version")),
                        "1.0.0");
    json_decref(m);
    json_t *c = json_loadb(a.config, a.config_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "net");
    assert_int_equal(json_integer_value(json_object_get(c, "release")), 3);
    assert_string_equal(json_string_value(json_object_get(c, "signer")), "0123456789abcdef");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "sizes"), "f32")), 4000);
    json_decref(c);

    /* any field changes the manifest */
    proto_oci_artifact_clear(&b);
    d.release = 4;
    struct proto_oci_artifact c2;
    assert_int_equal(proto_oci_build(&d, &c2, NULL), PEMN_OK);
    assert_string_not_equal(c2.manifest_digest, a.manifest_digest);
    proto_oci_artifact_clear(&c2);

    /* and it parses back */
    struct proto_oci_manifest pm;
    assert_int_equal(proto_oci_parse(a.manifest, a.manifest_len, &pm, NULL), PEMN_OK);
    assert_int_equal(pm.pemn_layer, 0);
    assert_int_equal(pm.n_layers, 1);
    assert_string_equal(pm.config.media_type, PROTO_OCI_CONFIG_TYPE);
    assert_string_equal(pm.config.digest, a.config_digest);
    assert_string_equal(pm.artifact_type, PROTO_OCI_ARTIFACT_TYPE);
    proto_oci_artifact_clear(&a);
    proto_oci_artifact_clear(&a);
    proto_oci_artifact_clear(NULL);
}

static void test_desc_from_pkg(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(1, &sk, &pk);
    uint8_t *bytes;
    size_t len;
    pkgfix_small(&sk, &bytes, &len);
    pemn_pkg *pkg;
    assert_int_equal(pemn_pkg_open_mem(bytes, len, 0, &pkg, NULL), PEMN_OK);
    struct proto_oci_desc d;
    assert_int_equal(proto_oci_desc_from_pkg(pkg, len, &d), PEMN_OK);
    assert_string_equal(d.name, "tiny");
    assert_string_equal(d.version, "v1");
    assert_int_equal(d.release, 7);
    assert_int_equal(d.size, len);
    char whole[PEMN_DIGEST_TEXT_MAX];
    proto_oci_digest(bytes, len, whole);
    assert_string_equal(d.digest, whole); /* the package identity is the OCI layer digest */
    pemn_pkg_free(pkg);
    free(bytes);
}

static pemn_rc parse(const char *text, struct proto_oci_manifest *m, struct pemn_err *e)
{
    return proto_oci_parse(text, strlen(text), m, e);
}

#define H0 "0000000000000000000000000000000000000000000000000000000000000000"
#define CFG "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:" H0 "\",\"size\":2}"
#define PL                                                                                         \
    "{\"mediaType\":\"application/vnd.pemn.package.v1\",\"digest\":\"sha256:" H0 "\",\"size\":9}"
#define OL "{\"mediaType\":\"x/y\",\"digest\":\"sha256:" H0 "\",\"size\":9}"

static void test_parse_errors(void **state)
{
    (void)state;
    struct proto_oci_manifest m;
    struct pemn_err e;
    assert_int_equal(parse("{\"schemaVersion\":2," CFG ",\"layers\":[" OL "," PL "]}", &m, &e),
                     PEMN_OK);
    assert_int_equal(m.pemn_layer, 1);
    assert_string_equal(m.media_type, ""); /* optional */
    assert_int_equal(parse("{\"schemaVersion\":2," CFG ",\"layers\":[" OL "]}", &m, &e), PEMN_OK);
    assert_int_equal(m.pemn_layer, -1);
    assert_int_equal(parse("nope", &m, &e), PEMN_ECORRUPT);
    assert_int_equal(parse("[]", &m, &e), PEMN_ECORRUPT);
    assert_int_equal(parse("{\"schemaVersion\":1," CFG ",\"layers\":[]}", &m, &e), PEMN_ECORRUPT);
    assert_int_equal(parse("{\"schemaVersion\":2,\"layers\":[]}", &m, &e), PEMN_ECORRUPT);
    assert_int_equal(parse("{\"schemaVersion\":2," CFG "}", &m, &e), PEMN_ECORRUPT);
    assert_int_equal(parse("{\"schemaVersion\":2," CFG ",\"layers\":[" PL "," PL "]}", &m, &e),
                     PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "more than one"));
    assert_int_equal(
        parse("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
              "\"manifests\":[]}",
              &m, &e),
        PEMN_EUNSUPPORTED);
    assert_int_equal(parse("{\"schemaVersion\":2,\"manifests\":[]}", &m, &e), PEMN_EUNSUPPORTED);
    assert_int_equal(parse("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":"
                           "\"sha256:abc\",\"size\":2},\"layers\":[]}",
                           &m, &e),
                     PEMN_ECORRUPT);
    assert_int_equal(parse("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":"
                           "\"sha256:" H0 "\",\"size\":-2},\"layers\":[]}",
                           &m, &e),
                     PEMN_ECORRUPT);
    assert_int_equal(
        parse("{\"schemaVersion\":2,\"schemaVersion\":2," CFG ",\"layers\":[]}", &m, &e),
        PEMN_ECORRUPT); /* duplicate keys */
    char many[8192] = "{\"schemaVersion\":2," CFG ",\"layers\":[";
    for (int i = 0; i < PROTO_OCI_LAYERS_MAX + 1; i++) {
        strcat(many, OL);
        strcat(many, i < PROTO_OCI_LAYERS_MAX ? "," : "]}");
    }
    assert_int_equal(parse(many, &m, &e), PEMN_ECORRUPT);
    /* upper-case hex is accepted and made canonical */
    assert_int_equal(parse("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":"
                           "\"sha256:ABCDEF" H0 "\",\"size\":2},\"layers\":[]}",
                           &m, &e),
                     PEMN_ECORRUPT); /* too long */
}

static void test_names(void **state)
{
    (void)state;
    const char *good[] = {"net", "a", "net-1", "my.model", "a__b", "a_b", "a--b", "0net"};
    const char *bad[] = {"", "Net", "-net", "net-", "a..b", "a___b", "a/b", ".a", "a b", "é"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(proto_oci_valid_repo(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(proto_oci_valid_repo(bad[i]));
    assert_true(proto_oci_valid_tag("latest"));
    assert_true(proto_oci_valid_tag("_x.1-A"));
    assert_false(proto_oci_valid_tag(""));
    assert_false(proto_oci_valid_tag(".x"));
    assert_false(proto_oci_valid_tag("a:b"));
}

static void test_parse_ref(void **state)
{
    (void)state;
    struct pemn_oci_ref r;
    struct pemn_err e;
    assert_int_equal(pemn_oci_parse_ref("oci://localhost:5000/models/net:v1", &r, &e), PEMN_OK);
    assert_string_equal(r.host, "localhost:5000");
    assert_string_equal(r.repo, "models/net");
    assert_string_equal(r.tag, "v1");
    assert_string_equal(r.digest, "");
    assert_int_equal(pemn_oci_parse_ref("ghcr.io/a/b/c", &r, &e), PEMN_OK);
    assert_string_equal(r.repo, "a/b/c");
    assert_string_equal(r.tag, "");
    char text[200], want[80];
    snprintf(text, sizeof text, "oci://h/net@sha256:ABCDEF%s", H0 + 6);
    snprintf(want, sizeof want, "sha256:abcdef%s", H0 + 6);
    assert_int_equal(pemn_oci_parse_ref(text, &r, &e), PEMN_OK);
    assert_string_equal(r.digest, want);
    assert_string_equal(r.tag, "");
    assert_int_equal(pemn_oci_parse_ref("oci://h/net@sha256:12", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci://h/Net", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci://h/net:", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci://h/net:a:b", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci://h/", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci://net", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci:///net", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci://h/a//b", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref("oci://h o/net", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_oci_parse_ref(NULL, &r, &e), PEMN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_deterministic), cmocka_unit_test(test_desc_from_pkg),
        cmocka_unit_test(test_parse_errors),        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
