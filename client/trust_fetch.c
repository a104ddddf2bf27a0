/*
 * client/trust_fetch.c — the root of trust over HTTP (docs/TRUST.md, docs/API.md "Root of
 * trust"): one version, and the chain walk from a trusted version to the newest.
 */
#include "client/client_int.h"
#include "proto/err.h"

#include <pemn/trust.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pemn_rc pemn_client_get_root(pemn_client *c, uint64_t version, pemn_root **out,
                             struct pemn_err *err)
{
    if (!c || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    char path[64];
    if (version)
        snprintf(path, sizeof path, "/v1/root/%llu", (unsigned long long)version);
    else
        snprintf(path, sizeof path, "/v1/root/latest");
    struct client_json_req rq = {.method = "GET", .path = path};
    long status = 0;
    json_t *j = NULL;
    pemn_rc rc = client_json(c, &rq, &status, &j, err);
    if (rc)
        return rc;
    /* the signatures cover the canonical form of "signed", which any faithful re-encoding
     * keeps; the root is kept as the canonical envelope + "\n", the form pemn root writes */
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    size_t tl = text ? strlen(text) : 0;
    char *t2 = text ? realloc(text, tl + 2) : NULL;
    if (!t2) {
        free(text);
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "GET %s: no root in the answer", path);
    }
    text = t2;
    text[tl] = '\n';
    text[tl + 1] = '\0';
    rc = pemn_root_parse(text, tl + 1, out, err);
    free(text);
    if (!rc && version && pemn_root_version(*out) != version) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "GET %s answered root version %llu",
                       path, (unsigned long long)pemn_root_version(*out));
        pemn_root_free(*out);
        *out = NULL;
    }
    return rc;
}

pemn_rc pemn_client_update_root(pemn_client *c, const pemn_root *trusted, unsigned max_links,
                                pemn_root **out, unsigned *links, struct pemn_err *err)
{
    if (links)
        *links = 0;
    if (!c || !trusted || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    if (max_links == 0)
        max_links = PEMN_ROOT_WALK_MAX;
    size_t n;
    const uint8_t *b = pemn_root_bytes(trusted, &n);
    pemn_root *cur = NULL;
    pemn_rc rc = b ? pemn_root_parse(b, n, &cur, err)
                   : proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "the trusted root is unsigned");
    for (unsigned k = 0; !rc; k++) {
        pemn_root *next = NULL;
        struct pemn_err e = {0};
        pemn_rc r = pemn_client_get_root(c, pemn_root_version(cur) + 1, &next, &e);
        if (r == PEMN_ENOTFOUND)
            break; /* the newest */
        if (!r && k >= max_links) {
            pemn_root_free(next);
            next = NULL;
            r = proto_err(&e, PEMN_ETOOBIG, PEMN_NO_OFFSET, "more than %u root versions to walk",
                          max_links);
        }
        if (!r)
            r = pemn_root_verify_next(cur, next, &e);
        if (r) {
            pemn_root_free(next);
            rc = r;
            if (err)
                *err = e;
            break;
        }
        pemn_root_free(cur);
        cur = next;
        if (links)
            (*links)++;
    }
    /* as TUF: every link verified before a failure stays verified */
    *out = cur;
    return rc;
}
