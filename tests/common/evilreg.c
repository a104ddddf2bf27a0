/*
 * tests/common/evilreg.c — see evilreg.h.
 */
#include "tests/common/evilreg.h"
#include "tests/common/pkgfix.h"

#include <jansson.h>
#include <pemn/builder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
    fprintf(stderr, "evilreg: %s\n", what);
    abort();
}

void evil_keys_init(struct evil_keys *k)
{
    pkgfix_key(0x51, &k->root1, &k->root1_pk);
    pkgfix_key(0x52, &k->root2, &k->root2_pk);
    pkgfix_key(0x53, &k->root3, &k->root3_pk);
    pkgfix_key(0x61, &k->meta, &k->meta_pk);
    pkgfix_key(0x62, &k->meta2, &k->meta2_pk);
    pkgfix_key(0x71, &k->pub, &k->pub_pk);
    pkgfix_key(0x72, &k->pub2, &k->pub2_pk);
    pkgfix_key(0x7f, &k->attacker, &k->attacker_pk);
}

pemn_root *evil_root_v1(const struct evil_keys *k, const char *pattern, int64_t expires)
{
    pemn_root *r = NULL;
    if (pemn_root_new(expires, &r) || pemn_root_add_key(r, &k->root1_pk) ||
        pemn_root_set_threshold(r, 1) || pemn_root_add_metadata_key(r, &k->meta_pk) ||
        pemn_root_add_publisher(r, &k->pub_pk, pattern))
        die("building a root");
    return r;
}

char *evil_root_text(pemn_root *r, const struct pemn_seckey *const *signers, size_t n, size_t *len)
{
    struct pemn_err e = {0};
    for (size_t i = 0; i < n; i++)
        if (pemn_root_sign(r, signers[i], &e))
            die(e.msg);
    char *text = NULL;
    size_t l = 0;
    if (pemn_root_serialize(r, &text, &l, &e)) {
        /* an under-signed root cannot be serialized through the API: sign the envelope by
         * hand with what was given (for chain-attack tests) */
        size_t sl;
        const char *sig = pemn_root_signed(r, &sl);
        pemn_envelope *env = NULL;
        if (!sig || pemn_envelope_new(sig, sl, &env, &e))
            die(e.msg);
        for (size_t i = 0; i < n; i++)
            if (pemn_envelope_sign(env, signers[i], &e))
                die(e.msg);
        if (pemn_envelope_serialize(env, &text, &l, &e))
            die(e.msg);
        pemn_envelope_free(env);
    }
    if (len)
        *len = l;
    return text;
}

void evil_serve_root(fakesrv *s, uint64_t version, const char *text, int latest)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/root/%llu", (unsigned long long)version);
    fakesrv_route(s, "GET", path, 200, text, NULL);
    if (latest)
        fakesrv_route(s, "GET", "/v1/root/latest", 200, text, NULL);
}

char *evil_desired(const struct evil_desired *d, const struct pemn_seckey *sk)
{
    char url[PEMN_DIGEST_TEXT_MAX + 16];
    snprintf(url, sizeof url, "/v1/blobs/%s", d->digest);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:s, "
                          "s:b}",
                          "_type", d->type ? d->type : "pemn-desired", "fleet", d->fleet, "device",
                          d->device, "model", d->model, "version", d->version, "release",
                          (json_int_t)d->release, "digest", d->digest, "size", (json_int_t)d->size,
                          "package_url", url, "metadata_version", (json_int_t)d->mver, "issued",
                          (json_int_t)d->issued, "expires", (json_int_t)d->expires, "rollout_id",
                          "r1", "in_rollout", 1);
    if (!o)
        die("json_pack");
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!text)
        die("json_dumps");
    if (!sk)
        return text;
    struct pemn_err e = {0};
    pemn_envelope *env = NULL;
    char *out = NULL;
    size_t n;
    if (pemn_envelope_new(text, strlen(text), &env, &e) || pemn_envelope_sign(env, sk, &e) ||
        pemn_envelope_serialize(env, &out, &n, &e))
        die(e.msg);
    pemn_envelope_free(env);
    free(text);
    return out;
}

void evil_serve_desired(fakesrv *s, const char *fleet, const char *device, const char *body)
{
    char path[512], etag[40];
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(body, strlen(body), d);
    snprintf(etag, sizeof etag, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", d[0], d[1], d[2], d[3],
             d[4], d[5], d[6], d[7]);
    snprintf(path, sizeof path, "/v1/fleets/%s/devices/%s/desired", fleet, device);
    fakesrv_route(s, "GET", path, 200, body, etag);
    snprintf(path, sizeof path, "/v1/fleets/%s/devices/%s/status", fleet, device);
    fakesrv_route(s, "PUT", path, 200, "{}", NULL);
}

void evil_pkg(const struct pemn_seckey *sk, const struct pemn_seckey *const *cosign, size_t n,
              const char *model, const char *version, uint64_t release, int salt, uint8_t **out,
              size_t *len, char digest[PEMN_DIGEST_TEXT_MAX])
{
    pemn_builder *b = NULL;
    struct pemn_err e = {0};
    float proto[4] = {0.5f, -0.25f, 1.0f, (float)salt};
    uint32_t pid;
    uint8_t mask[16];
    for (int i = 0; i < 16; i++)
        mask[i] = (uint8_t)((i * 5 + salt) % 3 == 0);
    uint64_t shape[2] = {4, 4};
    if (pemn_builder_new(model, version, release, &b, &e) ||
        pemn_builder_add_proto_values(b, proto, 4, &pid) ||
        pemn_builder_add_masked(b, "w", 2, shape, pid, 0, 1.0f, mask, &e) ||
        pemn_builder_set_created(b, 1700000000 + salt) || pemn_builder_finish(b, sk, out, len, &e))
        die(e.msg[0] ? e.msg : "building a package");
    pemn_builder_free(b);
    for (size_t i = 0; i < n; i++) {
        pemn_pkg *p = NULL;
        uint8_t *more = NULL;
        size_t ml = 0;
        if (pemn_pkg_open_mem(*out, *len, 0, &p, &e) ||
            pemn_pkg_add_signature(p, cosign[i], &more, &ml, &e))
            die(e.msg);
        pemn_pkg_free(p);
        free(*out);
        *out = more;
        *len = ml;
    }
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(*out, *len, d);
    pemn_digest_format(d, digest);
}

void evil_serve_pkg(fakesrv *s, const uint8_t *data, size_t len, const char *digest)
{
    char path[PEMN_DIGEST_TEXT_MAX + 16];
    snprintf(path, sizeof path, "/v1/blobs/%s", digest);
    fakesrv_set_blob(s, path, data, len, NULL);
}
