/*
 * libFuzzer target: what a hostile registry can send the client — version objects and
 * listings (JSON), error bodies, Retry-After and Content-Range values — and what a user
 * types as a reference. Every parse must fail cleanly or produce bounded, NUL-terminated,
 * canonical fields.
 */
#include "client/client_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_resolved(const struct pemn_resolved *r)
{
    /* every string is terminated inside its buffer */
    if (!memchr(r->model, 0, sizeof r->model) || !memchr(r->version, 0, sizeof r->version) ||
        !memchr(r->tag, 0, sizeof r->tag) || !memchr(r->digest, 0, sizeof r->digest) ||
        !memchr(r->package_url, 0, sizeof r->package_url) ||
        !memchr(r->signer, 0, sizeof r->signer) || !memchr(r->strategy, 0, sizeof r->strategy))
        abort();
    uint8_t d[PEMN_DIGEST_BYTES];
    if (pemn_digest_parse(r->digest, d) != PEMN_OK || strncmp(r->digest, "sha256:", 7) != 0)
        abort();
    for (const char *p = r->digest + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            abort(); /* canonical lowercase */
    if (!r->package_url[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pemn_err e;
    struct pemn_resolved r;
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (j) {
        if (client_parse_version(j, &r, &e) == PEMN_OK)
            check_resolved(&r);
        json_t *latest = json_object_get(j, "latest");
        if (latest && client_parse_version(latest, &r, &e) == PEMN_OK)
            check_resolved(&r);
        json_decref(j);
    }
    pemn_rc rc = client_status_error(503, (const char *)data, size, "fuzz", &e);
    if (rc == PEMN_OK || !memchr(e.msg, 0, sizeof e.msg))
        abort();
    for (const char *p = e.msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            abort(); /* no escapes from the server reach a terminal */

    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char n[PEMN_LABEL_BUF], v[PEMN_LABEL_BUF], t[PEMN_LABEL_BUF];
    if (pemn_client_parse_ref(s, n, v, t, &e) == PEMN_OK) {
        if (!client_label_ok(n) || (v[0] && !client_label_ok(v)) || (t[0] && !client_label_ok(t)))
            abort();
        if (v[0] && t[0])
            abort();
    }
    int64_t ra = client_parse_retry_after(s);
    if (ra < -1)
        abort();
    uint64_t a, b, tot;
    if (client_parse_content_range(s, &a, &b, &tot) && !(a <= b && b < tot))
        abort();
    free(s);
    return 0;
}
