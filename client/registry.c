/*
 * client/registry.c — the registry's metadata routes: references, resolve, list, tag,
 * untag and push (docs/API.md).
 */
#include "client/client_int.h"
#include "proto/err.h"

#include <pemn/pkg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------------------- */
static bool label_char(char ch, bool first)
{
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
        return true;
    return !first && (ch == '.' || ch == '_' || ch == '-');
}

bool client_label_ok(const char *s)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= PEMN_LABEL_BUF - 1 || !label_char(s[n], n == 0))
            return false;
    return true;
}

static pemn_rc copy_label(char *dst, const char *src, size_t n, const char *what,
                          struct pemn_err *err)
{
    if (n == 0 || n >= PEMN_LABEL_BUF)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s must be 1 to %d characters", what,
                         PEMN_LABEL_BUF - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    if (!client_label_ok(dst))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "%s '%s' is not [A-Za-z0-9][A-Za-z0-9._-]*", what, dst);
    return PEMN_OK;
}

pemn_rc pemn_client_parse_ref(const char *ref, char *name, char *version, char *tag,
                              struct pemn_err *err)
{
    if (!ref || !name || !version || !tag)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    name[0] = version[0] = tag[0] = '\0';
    const char *colon = strchr(ref, ':'), *at = strchr(ref, '@');
    if (colon && at)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "reference '%.64s' has both :VERSION and @TAG", ref);
    const char *sep = colon ? colon : at;
    size_t nlen = sep ? (size_t)(sep - ref) : strlen(ref);
    pemn_rc rc = copy_label(name, ref, nlen, "model name", err);
    if (rc)
        return rc;
    if (colon)
        return copy_label(version, colon + 1, strlen(colon + 1), "version", err);
    if (at)
        return copy_label(tag, at + 1, strlen(at + 1), "tag", err);
    return PEMN_OK;
}

/* ---- version objects ------------------------------------------------------------------ */
static pemn_rc get_str(const json_t *o, const char *key, char *dst, size_t cap, bool required,
                       struct pemn_err *err)
{
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (!v || json_is_null(v)) {
        if (required)
            return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "registry response lacks \"%s\"",
                             key);
        return PEMN_OK;
    }
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= cap)
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET,
                         "registry response: \"%s\" is not a string of < %zu bytes", key, cap);
    memcpy(dst, s, strlen(s) + 1);
    return PEMN_OK;
}

static uint64_t get_u64(const json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

static bool url_ok(const char *u)
{
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

pemn_rc client_parse_version(const json_t *o, struct pemn_resolved *out, struct pemn_err *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "registry response is not an object");
    pemn_rc rc;
    if ((rc = get_str(o, "model", out->model, sizeof out->model, true, err)) ||
        (rc = get_str(o, "version", out->version, sizeof out->version, true, err)) ||
        (rc = get_str(o, "digest", out->digest, sizeof out->digest, true, err)) ||
        (rc = get_str(o, "tag", out->tag, sizeof out->tag, false, err)) ||
        (rc = get_str(o, "package_url", out->package_url, sizeof out->package_url, false, err)) ||
        (rc = get_str(o, "signer", out->signer, sizeof out->signer, false, err)) ||
        (rc = get_str(o, "strategy", out->strategy, sizeof out->strategy, false, err)))
        return rc;
    /* every name from the registry is checked as a label before anything (a file name, a
     * path, a terminal) uses it: docs/SECURITY.md, item 7 */
    if (!client_label_ok(out->model) || !client_label_ok(out->version) ||
        (out->tag[0] && !client_label_ok(out->tag)) ||
        (out->strategy[0] && !client_label_ok(out->strategy)))
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET,
                         "registry response: a model, version, tag or strategy name is not "
                         "[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    if (!url_ok(out->package_url))
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET,
                         "registry response: package_url has control characters or spaces");
    uint8_t d[PEMN_DIGEST_BYTES];
    if (pemn_digest_parse(out->digest, d) != PEMN_OK)
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "registry response: malformed digest");
    pemn_digest_format(d, out->digest); /* canonical lowercase */
    if (!out->package_url[0])
        snprintf(out->package_url, sizeof out->package_url, "/v1/blobs/%s", out->digest);
    out->release = get_u64(o, "release");
    out->size = get_u64(o, "size");
    out->created = json_integer_value(json_object_get(o, "created"));
    out->pushed = json_integer_value(json_object_get(o, "pushed"));
    out->n_params = get_u64(o, "n_params");
    out->f32_size = get_u64(o, "f32_size");
    out->density = json_number_value(json_object_get(o, "density"));
    out->ratio = json_number_value(json_object_get(o, "ratio"));
    return PEMN_OK;
}

/* ---- resolve -------------------------------------------------------------------------- */
static bool empty(const char *s)
{
    return !s || !*s;
}

pemn_rc pemn_client_resolve(pemn_client *c, const char *name, const char *version, const char *tag,
                            struct pemn_resolved *out, struct pemn_err *err)
{
    if (!c || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    if (!client_label_ok(name))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad model name");
    if (!empty(version) && !empty(tag))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "give a version or a tag, not both");
    if ((!empty(version) && !client_label_ok(version)) || (!empty(tag) && !client_label_ok(tag)))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad version or tag");
    char path[3 * PEMN_LABEL_BUF];
    if (!empty(version))
        snprintf(path, sizeof path, "/v1/models/%s/versions/%s", name, version);
    else if (!empty(tag))
        snprintf(path, sizeof path, "/v1/models/%s/tags/%s", name, tag);
    else
        snprintf(path, sizeof path, "/v1/models/%s", name);
    struct client_json_req rq = {.method = "GET", .path = path};
    long st;
    json_t *j;
    pemn_rc rc = client_json(c, &rq, &st, &j, err);
    if (rc)
        return rc;
    const json_t *vo = j;
    if (empty(version) && empty(tag)) {
        vo = json_object_get(j, "latest");
        if (!vo || json_is_null(vo)) {
            json_decref(j);
            return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "model '%s' has no versions",
                             name);
        }
    }
    rc = client_parse_version(vo, out, err);
    json_decref(j);
    if (rc)
        return rc;
    if (strcmp(out->model, name) != 0 || (!empty(version) && strcmp(out->version, version)))
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET,
                         "registry answered for %s %s, asked for %s %s", out->model, out->version,
                         name, empty(version) ? "" : version);
    if (!empty(tag))
        snprintf(out->tag, sizeof out->tag, "%s", tag);
    return PEMN_OK;
}

/* ---- list ----------------------------------------------------------------------------- */
void pemn_listing_free(struct pemn_listing *l)
{
    if (!l)
        return;
    free(l->versions);
    free(l->n_versions);
    free(l->tags);
    free(l);
}

#define LIST_MAX 1000000u

static pemn_rc list_all(const json_t *j, struct pemn_listing *l, struct pemn_err *err)
{
    json_t *arr = json_object_get(j, "models");
    if (!json_is_array(arr))
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "registry response lacks \"models\"");
    size_t n = json_array_size(arr);
    if (n > LIST_MAX)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "too many models");
    l->versions = calloc(n ? n : 1, sizeof *l->versions);
    l->n_versions = calloc(n ? n : 1, sizeof *l->n_versions);
    if (!l->versions || !l->n_versions)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        json_t *latest = json_object_get(m, "latest");
        if (latest && !json_is_null(latest)) {
            pemn_rc rc = client_parse_version(latest, &l->versions[l->count], err);
            if (rc)
                return rc;
        } else {
            const char *nm = json_string_value(json_object_get(m, "name"));
            if (!nm || !client_label_ok(nm))
                return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "model without a valid name");
            memset(&l->versions[l->count], 0, sizeof l->versions[0]);
            snprintf(l->versions[l->count].model, PEMN_LABEL_BUF, "%s", nm);
        }
        json_t *nv = json_object_get(m, "versions");
        l->n_versions[l->count] =
            json_is_integer(nv) ? get_u64(m, "versions") : json_array_size(nv);
        l->count++;
    }
    return PEMN_OK;
}

static pemn_rc list_one(const json_t *j, struct pemn_listing *l, struct pemn_err *err)
{
    json_t *arr = json_object_get(j, "versions");
    if (!json_is_array(arr))
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "registry response lacks \"versions\"");
    size_t n = json_array_size(arr);
    json_t *tags = json_object_get(j, "tags");
    size_t nt = json_is_object(tags) ? json_object_size(tags) : 0;
    if (n > LIST_MAX || nt > LIST_MAX)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "too many versions or tags");
    l->versions = calloc(n ? n : 1, sizeof *l->versions);
    l->tags = calloc(nt ? nt : 1, sizeof *l->tags);
    if (!l->versions || !l->tags)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    for (size_t i = 0; i < n; i++) {
        pemn_rc rc = client_parse_version(json_array_get(arr, i), &l->versions[i], err);
        if (rc)
            return rc;
        l->count++;
    }
    const char *key;
    json_t *val;
    json_object_foreach(tags, key, val)
    {
        const char *v = json_string_value(val);
        if (!v || !client_label_ok(key) || !client_label_ok(v))
            return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "malformed tag in response");
        snprintf(l->tags[l->n_tags].tag, PEMN_LABEL_BUF, "%s", key);
        snprintf(l->tags[l->n_tags].version, PEMN_LABEL_BUF, "%s", v);
        l->n_tags++;
    }
    return PEMN_OK;
}

pemn_rc pemn_client_list(pemn_client *c, const char *name, struct pemn_listing **out,
                         struct pemn_err *err)
{
    if (!c || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    *out = NULL;
    if (!empty(name) && !client_label_ok(name))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad model name");
    char path[2 * PEMN_LABEL_BUF];
    snprintf(path, sizeof path, empty(name) ? "/v1/models" : "/v1/models/%s",
             empty(name) ? "" : name);
    struct client_json_req rq = {.method = "GET", .path = path};
    long st;
    json_t *j;
    pemn_rc rc = client_json(c, &rq, &st, &j, err);
    if (rc)
        return rc;
    struct pemn_listing *l = calloc(1, sizeof *l);
    if (!l) {
        json_decref(j);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    rc = empty(name) ? list_all(j, l, err) : list_one(j, l, err);
    json_decref(j);
    if (rc) {
        pemn_listing_free(l);
        return rc;
    }
    *out = l;
    return PEMN_OK;
}

/* ---- tags ----------------------------------------------------------------------------- */
pemn_rc pemn_client_tag(pemn_client *c, const char *name, const char *version, const char *tag,
                        struct pemn_resolved *out, struct pemn_err *err)
{
    if (!c)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL client");
    if (!client_label_ok(name) || !client_label_ok(version) || !client_label_ok(tag))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "name, version and tag must match [A-Za-z0-9][A-Za-z0-9._-]*");
    char path[3 * PEMN_LABEL_BUF], body[2 * PEMN_LABEL_BUF];
    snprintf(path, sizeof path, "/v1/models/%s/tags/%s", name, tag);
    snprintf(body, sizeof body, "{\"version\":\"%s\"}", version); /* label chars only */
    struct client_json_req rq = {.method = "PUT",
                                 .path = path,
                                 .body = (const uint8_t *)body,
                                 .body_len = strlen(body),
                                 .content_type = "application/json"};
    long st;
    json_t *j;
    pemn_rc rc = client_json(c, &rq, &st, &j, err);
    if (rc)
        return rc;
    struct pemn_resolved tmp;
    rc = j ? client_parse_version(j, out ? out : &tmp, err) : PEMN_OK;
    json_decref(j);
    if (!rc && out && !out->tag[0])
        snprintf(out->tag, sizeof out->tag, "%s", tag);
    return rc;
}

pemn_rc pemn_client_untag(pemn_client *c, const char *name, const char *tag, struct pemn_err *err)
{
    if (!c)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL client");
    if (!client_label_ok(name) || !client_label_ok(tag))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad name or tag");
    char path[3 * PEMN_LABEL_BUF];
    snprintf(path, sizeof path, "/v1/models/%s/tags/%s", name, tag);
    struct client_json_req rq = {.method = "DELETE", .path = path};
    long st;
    json_t *j;
    pemn_rc rc = client_json(c, &rq, &st, &j, err);
    json_decref(j);
    return rc;
}

/* ---- push ----------------------------------------------------------------------------- */
pemn_rc pemn_client_push(pemn_client *c, const char *path, struct pemn_resolved *out, int *created,
                         struct pemn_err *err)
{
    if (!c || !path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "NULL argument");
    pemn_pkg *pkg;
    pemn_rc rc = pemn_pkg_open_file(path, 0, &pkg, err);
    if (rc)
        return rc;
    struct pemn_pkg_info info;
    rc = pemn_pkg_info(pkg, &info);
    if (rc) {
        pemn_pkg_free(pkg);
        return proto_err(err, rc, PEMN_NO_OFFSET, "%s: cannot read the manifest", path);
    }
    size_t len;
    const uint8_t *bytes = pemn_pkg_bytes(pkg, &len);
    if (len > c->o.max_package_size) {
        pemn_pkg_free(pkg);
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%s: %zu bytes, above the limit", path,
                         len);
    }
    if (!client_label_ok(info.name) || !client_label_ok(info.version)) {
        pemn_pkg_free(pkg);
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "%s: model name or version cannot be used in a URL", path);
    }
    char upath[3 * PEMN_LABEL_BUF];
    snprintf(upath, sizeof upath, "/v1/models/%s/versions/%s", info.name, info.version);
    struct client_json_req rq = {.method = "PUT",
                                 .path = upath,
                                 .body = bytes,
                                 .body_len = len,
                                 .content_type = "application/vnd.pemn",
                                 .progress = c->o.progress,
                                 .progress_user = c->o.progress_user};
    long st = 0;
    json_t *j = NULL;
    rc = client_json(c, &rq, &st, &j, err);
    pemn_pkg_free(pkg);
    if (rc)
        return rc;
    if (created)
        *created = st == 201;
    struct pemn_resolved tmp;
    rc = j ? client_parse_version(j, out ? out : &tmp, err)
           : proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "push: empty response");
    json_decref(j);
    return rc;
}
