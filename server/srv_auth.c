/*
 * server/srv_auth.c — bearer tokens and scopes.
 *
 * A route names the rights it needs (STORE_SCOPE_* bits, any one suffices). Read routes are
 * SRV_OPEN_READ: open to everyone unless the server runs with read_token_required. A token,
 * when presented, is always checked, even on an open route: a wrong or revoked token is a
 * 401, never silently ignored.
 *   401 unauthorized  no token where one is needed; unknown, malformed or revoked token
 *   403 forbidden     a valid token whose scope does not cover the route
 */
#include "server/srv.h"

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

enum MHD_Result srv_auth_check(struct srv_req *r, bool *refused)
{
    *refused = false;
    unsigned need = r->route->need;
    if (need == SRV_OPEN_READ)
        need = srv_cfg(r->srv)->read_token_required ? STORE_SCOPE_READ : SRV_OPEN;
    const char *h = srv_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) {
        if (need == SRV_OPEN)
            return MHD_YES;
        return refuse(r, refused, 401, "unauthorized",
                      "this route needs a token: Authorization: Bearer <token>");
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        return refuse(r, refused, 401, "unauthorized",
                      "unsupported Authorization scheme (use Bearer)");
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    unsigned scope = 0;
    struct pemn_err e;
    pemn_rc rc = store_token_check(srv_store(r->srv), tok, &scope, r->actor, &e);
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
