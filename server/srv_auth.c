/*
 * server/srv_auth.c — bearer tokens and scopes.
 *
 * A route names the rights it needs (STORE_SCOPE_* bits, any one suffices). Read routes are
 * SRV_OPEN_READ: open to everyone unless the server runs with read_token_required. A token,
 * when presented, is always checked, even on an open route: a wrong or revoked token is a
 * 401, never silently ignored. It comes as "Authorization: Bearer <token>" or, for OCI
 * clients, "Authorization: Basic base64(<any user>:<token>)".
 *   401 unauthorized  no token where one is needed; unknown, malformed or revoked token
 *   403 forbidden     a valid token whose scope does not cover the route
 */
#include "server/srv.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static enum MHD_Result refuse(struct srv_req *r, bool *refused, unsigned status, const char *code,
                              const char *msg)
{
    *refused = true;
    if (r->route->max_body == SRV_BODY_PACKAGE) /* a refused push */
        srv_metrics_push_rejected(srv_get_metrics(r->srv), code);
    return srv_reply_error(r, status, code, "%s", msg);
}

/* "Basic base64(user:token)": the token (after the first ':') decoded into buf, or NULL
 * when h is not Basic or does not decode. */
static const char *basic_token(const char *h, char *buf, size_t cap)
{
    if (strncasecmp(h, "Basic ", 6) != 0)
        return NULL;
    const char *b64 = h + 6;
    while (*b64 == ' ')
        b64++;
    size_t n = 0;
    if (sodium_base642bin((unsigned char *)buf, cap - 1, b64, strlen(b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return "";
    buf[n] = '\0';
    char *colon = memchr(buf, ':', n);
    return colon ? colon + 1 : "";
}

enum MHD_Result srv_auth_check(struct srv_req *r, bool *refused)
{
    *refused = false;
    unsigned need = r->route->need;
    if (need == SRV_OPEN_READ)
        need = srv_cfg(r->srv)->read_token_required ? STORE_SCOPE_READ : SRV_OPEN;
    const char *h = srv_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    /* Basic (any user name, a pemn token as the password) serves OCI clients that only
     * send credentials that way (docs/OCI.md). */
    char basic[512] = "";
    const char *tok = h ? basic_token(h, basic, sizeof basic) : NULL;
    if (tok && !tok[0] && basic[0] == ':') {
        /* "Basic base64(:)": an OCI client without credentials, i.e. anonymous */
        h = NULL;
        tok = NULL;
    }
    if (!h) {
        if (need == SRV_OPEN)
            return MHD_YES;
        return refuse(r, refused, 401, "unauthorized",
                      "this route needs a token: Authorization: Bearer <token>");
    }
    if (!tok && strncasecmp(h, "Bearer ", 7) != 0) {
        return refuse(r, refused, 401, "unauthorized",
                      "unsupported Authorization scheme (use Bearer, or Basic with a token as "
                      "the password)");
    }
    if (!tok) {
        tok = h + 7;
        while (*tok == ' ')
            tok++;
    }
    unsigned scope = 0;
    struct pemn_err e;
    pemn_rc rc = store_token_check_bound(srv_store(r->srv), tok, &scope, r->actor, r->bound_device,
                                         r->bound_fleet, &e);
    sodium_memzero(basic, sizeof basic);
    if (rc == PEMN_EAUTH) {
        return refuse(r, refused, 401, "unauthorized", e.msg);
    }
    if (rc) {
        *refused = true;
        return srv_reply_store_error(r, rc, &e);
    }
    r->rights = store_scope_rights(scope);
    if (need != SRV_OPEN && !(r->rights & need)) {
        char msg[64];
        snprintf(msg, sizeof msg, "a %s token cannot do this", store_scope_name(scope));
        return refuse(r, refused, 403, "forbidden", msg);
    }
    return MHD_YES;
}
