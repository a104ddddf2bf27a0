/*
 * proto/oci.c — the PEMN OCI artifact: deterministic config + manifest, manifest reader.
 */
#include "proto/oci.h"
#include "proto/err.h"

#include <jansson.h>
#include <math.h>
#include <pemn/pkg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void proto_oci_digest(const void *data, size_t len, char out[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, data, len);
    pemn_digest_format(d, out);
}

static char *dump(json_t *o, size_t *len)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(o);
    if (s)
        *len = strlen(s);
    return s;
}

/* Printable ASCII only, as the /v1 version object: free text must not break the JSON. */
static void ascii_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

pemn_rc proto_oci_build(const struct proto_oci_desc *d, struct proto_oci_artifact *out,
                        struct pemn_err *err)
{
    memset(out, 0, sizeof *out);
    char strategy[256], created[32] = "1970-01-01T00:00:00Z", title[300];
    ascii_copy(strategy, sizeof strategy, d->strategy);
    time_t t = (time_t)d->created;
    struct tm tm;
    if (d->created >= 0 && gmtime_r(&t, &tm))
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(title, sizeof title, "%s-%s.pemn", d->name, d->version);
    json_t *cfg = json_pack(
        "{s:s,s:s,s:I,s:s,s:s,s:f,s:s,s:{s:I,s:I,s:I}}", "name", d->name, "version", d->version,
        "release", (json_int_t)d->release, "signer", d->signer, "strategy", strategy, "density",
        round(d->density * 1e6) / 1e6, "created", created, "sizes", "package", (json_int_t)d->size,
        "f32", (json_int_t)d->f32_size, "n_params", (json_int_t)d->n_params);
    out->config = dump(cfg, &out->config_len);
    if (!out->config)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    proto_oci_digest(out->config, out->config_len, out->config_digest);
    json_t *m = json_pack(
        "{s:i,s:s,s:s,s:{s:s,s:s,s:I},s:[{s:s,s:s,s:I,s:{s:s}}],s:{s:s,s:s,s:s}}", "schemaVersion",
        2, "mediaType", PROTO_OCI_MANIFEST_TYPE, "artifactType", PROTO_OCI_ARTIFACT_TYPE, "config",
        "mediaType", PROTO_OCI_CONFIG_TYPE, "digest", out->config_digest, "size",
        (json_int_t)out->config_len, "layers", "mediaType", PROTO_OCI_LAYER_TYPE, "digest",
        d->digest, "size", (json_int_t)d->size, "annotations", "org.opencontainers.image.title",
        title, "annotations", "org.opencontainers.image.created", created,
        "org.opencontainers.image.title", d->name, "org.opencontainers.image.version", d->version);
    out->manifest = dump(m, &out->manifest_len);
    if (!out->manifest) {
        proto_oci_artifact_clear(out);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    proto_oci_digest(out->manifest, out->manifest_len, out->manifest_digest);
    return PEMN_OK;
}

void proto_oci_artifact_clear(struct proto_oci_artifact *a)
{
    if (!a)
        return;
    free(a->config);
    free(a->manifest);
    memset(a, 0, sizeof *a);
}

pemn_rc proto_oci_desc_from_pkg(const struct pemn_pkg *pkg, uint64_t size,
                                struct proto_oci_desc *out)
{
    struct pemn_pkg_info info;
    pemn_rc rc = pemn_pkg_info(pkg, &info);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    out->name = info.name;
    out->version = info.version;
    out->strategy = info.strategy ? info.strategy : "";
    out->release = info.release;
    out->created = info.created;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_pkg_digest(pkg, d);
    pemn_digest_format(d, out->digest);
    pemn_keyid_format(info.signer_id, out->signer);
    out->size = size;
    out->n_params = info.n_params;
    out->f32_size = info.f32_size;
    out->density = info.density;
    return PEMN_OK;
}

/* ---- reading --------------------------------------------------------------------------- */
static bool digest_canon(const char *in, char out[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t d[PEMN_DIGEST_BYTES];
    if (!in || strlen(in) != 71 || pemn_digest_parse(in, d) != PEMN_OK)
        return false;
    pemn_digest_format(d, out);
    return true;
}

static pemn_rc descriptor(json_t *o, const char *what, struct proto_oci_descriptor *out,
                          struct pemn_err *err)
{
    const char *mt = json_string_value(json_object_get(o, "mediaType"));
    const char *dg = json_string_value(json_object_get(o, "digest"));
    json_t *sz = json_object_get(o, "size");
    if (!json_is_object(o) || !mt || !dg || !json_is_integer(sz))
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "%s: a descriptor needs mediaType, digest and size", what);
    if (strlen(mt) >= PROTO_OCI_TYPE_MAX || !mt[0])
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "%s: bad mediaType", what);
    if (!digest_canon(dg, out->digest))
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "%s: digest must be sha256:<64 hex>",
                         what);
    if (json_integer_value(sz) < 0)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "%s: negative size", what);
    snprintf(out->media_type, sizeof out->media_type, "%s", mt);
    out->size = (uint64_t)json_integer_value(sz);
    return PEMN_OK;
}

pemn_rc proto_oci_parse(const void *data, size_t len, struct proto_oci_manifest *out,
                        struct pemn_err *err)
{
    memset(out, 0, sizeof *out);
    out->pemn_layer = -1;
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "manifest is not JSON: %s", je.text);
    pemn_rc rc = PEMN_OK;
    const char *mt = json_string_value(json_object_get(root, "mediaType"));
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!json_is_object(root)) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "manifest is not a JSON object");
    } else if (mt && strcmp(mt, PROTO_OCI_MANIFEST_TYPE) != 0) {
        rc = proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                       "media type %.200s: pemnd stores OCI image manifests of PEMN artifacts", mt);
    } else if (json_object_get(root, "manifests")) {
        rc = proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                       "an image index: pemnd stores image manifests of PEMN artifacts");
    } else if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "schemaVersion must be 2");
    }
    if (rc)
        goto out;
    snprintf(out->media_type, sizeof out->media_type, "%s", mt ? mt : "");
    json_t *at = json_object_get(root, "artifactType");
    if (at && (!json_is_string(at) || json_string_length(at) >= PROTO_OCI_TYPE_MAX)) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "bad artifactType");
        goto out;
    }
    snprintf(out->artifact_type, sizeof out->artifact_type, "%s", at ? json_string_value(at) : "");
    json_t *subj = json_object_get(root, "subject");
    if (subj) {
        struct proto_oci_descriptor sd;
        if ((rc = descriptor(subj, "subject", &sd, err)))
            goto out;
        memcpy(out->subject, sd.digest, sizeof out->subject);
    }
    if ((rc = descriptor(json_object_get(root, "config"), "config", &out->config, err)))
        goto out;
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_array(layers)) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "layers must be an array");
        goto out;
    }
    if (json_array_size(layers) > PROTO_OCI_LAYERS_MAX) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "more than %d layers",
                       PROTO_OCI_LAYERS_MAX);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(layers); i++) {
        char what[32];
        snprintf(what, sizeof what, "layer %zu", i);
        struct proto_oci_descriptor *l = &out->layers[i];
        if ((rc = descriptor(json_array_get(layers, i), what, l, err)))
            goto out;
        out->n_layers++;
        if (strcmp(l->media_type, PROTO_OCI_LAYER_TYPE) == 0) {
            if (out->pemn_layer >= 0) {
                rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                               "more than one " PROTO_OCI_LAYER_TYPE " layer");
                goto out;
            }
            out->pemn_layer = (int)i;
        }
    }
out:
    json_decref(root);
    return rc;
}

bool proto_oci_valid_repo(const char *s)
{
    /* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    bool prev_alnum = false;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            prev_alnum = true;
            i++;
            continue;
        }
        if (!prev_alnum)
            return false;
        if (c == '.') {
            i++;
        } else if (c == '_') {
            i += s[i + 1] == '_' ? 2 : 1;
        } else if (c == '-') {
            while (s[i] == '-')
                i++;
        } else {
            return false;
        }
        prev_alnum = false;
    }
    return prev_alnum;
}

bool proto_oci_valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool w =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!w && (i == 0 || (c != '.' && c != '-')))
            return false;
    }
    return true;
}

bool proto_oci_valid_location(const char *s, bool *plain_http, const char **host, size_t *host_len,
                              const char **repo)
{
    bool plain = false;
    if (!strncmp(s, "oci://", 6)) {
        s += 6;
    } else if (!strncmp(s, "oci+http://", 11)) {
        s += 11;
        plain = true;
    } else {
        return false;
    }
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || slash - s > 255)
        return false;
    for (const char *p = s; p < slash; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    const char *r = slash + 1;
    size_t rl = strlen(r);
    if (rl == 0 || rl > 255 || r[rl - 1] == '/')
        return false;
    char comp[256];
    for (const char *p = r; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || n >= sizeof comp)
            return false;
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (!proto_oci_valid_repo(comp))
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    if (plain_http)
        *plain_http = plain;
    if (host)
        *host = s;
    if (host_len)
        *host_len = (size_t)(slash - s);
    if (repo)
        *repo = r;
    return true;
}
