/*
 * server/srv_devguard.c — what a device token may do on the device routes (desired state,
 * status reports), beyond its binding (docs/SECURITY.md, item 4):
 *   - an unbound device token acts only when the operator opted in
 *     (allow_unbound_device_tokens, meant for simulations);
 *   - a token not bound to a device never moves a device that belongs to another fleet (so it
 *     can neither change what that device is told nor erase its last report);
 *   - a token not bound to a device registers new devices within a count and a rate
 *     (device_registrations_max, device_registration_rate per minute): 429 past them.
 * Tokens with the admin scope are not device tokens and are not limited here.
 */
#include "server/srv.h"
#include "storage/store_devguard.h"
#include "storage/store_fleet.h"

#include <string.h>

bool srv_device_guard(struct srv_req *r, const char *fleet, const char *device,
                      enum MHD_Result *ret)
{
    if (!(r->rights & STORE_SCOPE_DEVICE) || (r->rights & STORE_SCOPE_ADMIN))
        return true;
    const struct srv_config *cfg = srv_cfg(r->srv);
    if (r->bound_device[0])
        return true; /* the device itself: it may move between fleets its binding allows */
    if (!r->bound_fleet[0] && !cfg->allow_unbound_device_tokens) {
        *ret = srv_reply_error(r, 403, "forbidden",
                               "token '%s' is a device token bound to no device and no fleet; "
                               "bind it (pemnd token create --device/--fleet) or set "
                               "allow_unbound_device_tokens for simulations",
                               r->actor);
        return false;
    }
    struct store *st = srv_store(r->srv);
    char home[STORE_LABEL_MAX];
    struct pemn_err e;
    pemn_rc rc = store_devguard_fleet_of(st, device, home, &e);
    if (rc == PEMN_OK) {
        if (strcmp(home, fleet) == 0 || !r->bound_fleet[0])
            return true; /* an unbound (simulation) token may still move devices */
        *ret = srv_reply_error(r, 403, "forbidden",
                               "device '%s' belongs to fleet '%s'; token '%s' (bound to fleet "
                               "'%s') cannot act for it",
                               device, home, r->actor, r->bound_fleet);
        return false;
    }
    if (rc != PEMN_ENOTFOUND) {
        *ret = srv_reply_store_error(r, rc, &e);
        return false;
    }
    struct store_fleet f; /* an unknown fleet registers nothing: the handler answers 404 */
    if (store_fleet_get(st, fleet, &f, NULL) == PEMN_ENOTFOUND)
        return true;
    rc = store_devguard_register(st, r->actor, device, cfg->device_registrations_max,
                                 cfg->device_registration_rate, &e);
    if (rc == PEMN_ETOOBIG) {
        srv_log(SRV_LOG_WARN, "device registration refused: %s", e.msg);
        *ret = srv_reply_error(r, 429, "too_many_devices", "%s", e.msg);
        return false;
    }
    if (rc) {
        *ret = srv_reply_store_error(r, rc, &e);
        return false;
    }
    return true;
}
