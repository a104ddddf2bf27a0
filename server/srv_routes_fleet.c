/*
 * server/srv_routes_fleet.c — fleets: targets, staged rollouts, desired state and device
 * reports (docs/API.md, section "Fleets").
 *
 *   GET  /v1/fleets                                   list (read)
 *   PUT  /v1/fleets/{fleet}                           set target + rollout (publish)
 *   GET  /v1/fleets/{fleet}                           target, rollout, device counts (read)
 *   GET  /v1/fleets/{fleet}/devices/{device}          one device (read)
 *   GET  /v1/fleets/{fleet}/devices/{device}/desired  what the device should run (device)
 *   PUT  /v1/fleets/{fleet}/devices/{device}/status   the device's report (device)
 *   POST /v1/fleets/{fleet}/rollout/{action}          pause | resume | abort (publish)
 *
 * Who gets the new target: a device in the rollout (server/srv_rollout.h: its bucket is
 * below the percentage). While the rollout is paused or aborted, only devices that already
 * reported on the new target keep it; everyone else gets the previous target (or nothing,
 * 404, when the fleet has none yet).
 */
#include "server/srv.h"
#include "server/srv_delta.h"
#include "server/srv_oci.h"
#include "server/srv_trust.h"
#include "server/srv_rollout.h"
#include "server/srv_signer.h"
#include "storage/store_fleet.h"

#include "proto/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEET_BODY_MAX 16384u
#define STATUS_BODY_MAX 16384u
#define REASON_MAX 64u
#define MESSAGE_MAX (STORE_MESSAGE_MAX - 1)
/* a polling device's last_seen is written at most this often */
#define TOUCH_SECONDS 30

/* ---- JSON helpers ------------------------------------------------------------------------ */

static json_t *target_json(const struct store_fleet_target *t)
{
    char url[PEMN_DIGEST_TEXT_MAX + 16];
    snprintf(url, sizeof url, "/v1/blobs/%s", t->digest);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s}", "model", t->model, "version",
                          t->version, "release", (json_int_t)t->release, "digest", t->digest,
                          "size", (json_int_t)t->size, "package_url", url);
    if (o && t->tag[0])
        json_object_set_new(o, "tag", json_string(t->tag));
    return o;
}

struct counts_ctx {
    json_t *by_state, *by_version;
};

static int count_cb(void *ctx, const char *what, const char *key, uint64_t n)
{
    struct counts_ctx *c = ctx;
    bool state = !strcmp(what, "state");
    const char *k = key[0] ? key : state ? "registered" : "none";
    json_object_set_new(state ? c->by_state : c->by_version, k, json_integer((json_int_t)n));
    return 0;
}

/* The fleet object (new reference, NULL on failure with *rc/err set). */
static json_t *fleet_json(struct srv_req *r, const struct store_fleet *f, pemn_rc *rc,
                          struct pemn_err *err)
{
    struct counts_ctx c = {json_object(), json_object()};
    struct store_fleet_counts fc;
    *rc = store_fleet_counts(srv_store(r->srv), f->name, &fc, count_cb, &c, err);
    if (*rc) {
        json_decref(c.by_state);
        json_decref(c.by_version);
        return NULL;
    }
    json_t *abort_rule =
        f->abort_failure_bp
            ? json_pack("{s:f, s:I}", "failure_percent", srv_bp_to_percent(f->abort_failure_bp),
                        "min_devices", (json_int_t)f->abort_min_devices)
            : json_null();
    json_t *rollout = json_pack(
        "{s:s, s:f, s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I}", "id", f->rollout_id, "percent",
        srv_bp_to_percent(f->percent_bp), "state", store_rollout_state_name(f->state), "reason",
        f->state_reason, "started", (json_int_t)f->rollout_started, "abort", abort_rule,
        "reporting", (json_int_t)fc.reporting, "failed", (json_int_t)fc.failed, "installed",
        (json_int_t)fc.installed, "in_progress", (json_int_t)fc.in_progress);
    json_t *devices = json_pack("{s:I, s:o, s:o}", "total", (json_int_t)fc.devices, "by_state",
                                c.by_state, "by_version", c.by_version);
    json_t *o = json_pack(
        "{s:s, s:o, s:o, s:o, s:o, s:I, s:I}", "fleet", f->name, "target", target_json(&f->target),
        "previous", f->has_previous ? target_json(&f->previous) : json_null(), "rollout", rollout,
        "devices", devices, "created", (json_int_t)f->created, "updated", (json_int_t)f->updated);
    if (!o)
        *rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    return o;
}

static enum MHD_Result reply_fleet(struct srv_req *r, unsigned status, const char *name)
{
    struct store_fleet f;
    struct pemn_err e;
    pemn_rc rc = store_fleet_get(srv_store(r->srv), name, &f, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    json_t *o = fleet_json(r, &f, &rc, &e);
    if (!o)
        return srv_reply_store_error(r, rc, &e);
    return srv_reply_json(r, status, o);
}

/* Parses the request body as a JSON object (NULL after queueing a 400). */
static json_t *body_object(struct srv_req *r, enum MHD_Result *ret)
{
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    json_error_t je;
    json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        *ret = srv_reply_error(r, 400, "bad_request", "body must be a JSON object%s%s",
                               o ? "" : ": ", o ? "" : je.text);
        return NULL;
    }
    return o;
}

/* Every key of o is in allowed (NULL-terminated); else the first stranger. */
static const char *unknown_key(json_t *o, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        (void)v;
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok)
            return k;
    }
    return NULL;
}

static bool label_value(json_t *v)
{
    const char *s = json_string_value(v);
    return s && srv_valid_label(s, strlen(s));
}

/* ---- GET /v1/fleets ------------------------------------------------------------------------ */

static int list_cb(void *ctx, const struct store_fleet *f)
{
    json_t *o =
        json_pack("{s:s, s:o, s:s, s:f, s:s}", "fleet", f->name, "target", target_json(&f->target),
                  "rollout_id", f->rollout_id, "percent", srv_bp_to_percent(f->percent_bp), "state",
                  store_rollout_state_name(f->state));
    return json_array_append_new(ctx, o) != 0;
}

static enum MHD_Result h_list(struct srv_req *r)
{
    json_t *arr = json_array();
    struct pemn_err e;
    pemn_rc rc = store_fleet_list(srv_store(r->srv), list_cb, arr, &e);
    if (rc) {
        json_decref(arr);
        return srv_reply_store_error(r, rc, &e);
    }
    return srv_reply_json(r, 200, json_pack("{s:o}", "fleets", arr));
}

/* ---- PUT /v1/fleets/{fleet} ---------------------------------------------------------------- */

/* Reads a percentage field: absent -> dflt; else a number in [lo, 100]. */
static bool percent_field(json_t *o, const char *key, uint32_t dflt, uint32_t lo_bp, uint32_t *bp)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *bp = dflt;
        return true;
    }
    if (!json_is_number(v) || srv_percent_to_bp(json_number_value(v), bp) || *bp < lo_bp)
        return false;
    return true;
}

static enum MHD_Result h_put(struct srv_req *r)
{
    static const char *const top_keys[] = {"model", "version", "tag", "rollout", NULL};
    static const char *const rollout_keys[] = {"percent", "abort", NULL};
    static const char *const abort_keys[] = {"failure_percent", "min_devices", NULL};
    const char *name = srv_param(r, "fleet");
    enum MHD_Result ret = MHD_NO;
    json_t *o = body_object(r, &ret);
    if (!o)
        return ret;
    json_t *model = json_object_get(o, "model"), *version = json_object_get(o, "version");
    json_t *tag = json_object_get(o, "tag"), *rollout = json_object_get(o, "rollout");
    json_t *abort_rule = rollout ? json_object_get(rollout, "abort") : NULL;
    const char *stranger = unknown_key(o, top_keys);
    uint32_t percent_bp = 10000, fail_bp = 0;
    uint64_t min_devices = 0;
    if (stranger) {
        ret = srv_reply_error(r, 400, "bad_request", "unknown field '%s'", stranger);
        goto out;
    }
    if (!label_value(model) || (!version == !tag) || (version && !label_value(version)) ||
        (tag && !label_value(tag))) {
        ret = srv_reply_error(r, 400, "bad_request",
                              "need \"model\" and exactly one of \"version\" or \"tag\" "
                              "(names: [A-Za-z0-9][A-Za-z0-9._-]{0,127})");
        goto out;
    }
    if (rollout) {
        if (!json_is_object(rollout) || (stranger = unknown_key(rollout, rollout_keys)) ||
            !percent_field(rollout, "percent", 10000, 0, &percent_bp)) {
            ret = srv_reply_error(r, 400, "bad_request",
                                  "\"rollout\" must be {\"percent\": 0..100, \"abort\": {...}}%s%s",
                                  stranger ? "; unknown field " : "", stranger ? stranger : "");
            goto out;
        }
        if (abort_rule && !json_is_null(abort_rule)) {
            json_t *md = json_object_get(abort_rule, "min_devices");
            if (!json_is_object(abort_rule) || unknown_key(abort_rule, abort_keys) ||
                !json_object_get(abort_rule, "failure_percent") ||
                !percent_field(abort_rule, "failure_percent", 0, 1, &fail_bp) ||
                (md && (!json_is_integer(md) || json_integer_value(md) < 0))) {
                ret = srv_reply_error(r, 400, "bad_request",
                                      "\"abort\" must be {\"failure_percent\": (0, 100], "
                                      "\"min_devices\": integer >= 0}");
                goto out;
            }
            min_devices = md ? (uint64_t)json_integer_value(md) : 1;
        }
    }
    /* resolve the target to one stored package */
    struct store_version v;
    struct pemn_err e;
    pemn_rc rc = version ? store_get_version(srv_store(r->srv), json_string_value(model),
                                             json_string_value(version), &v, &e)
                         : store_tag_get(srv_store(r->srv), json_string_value(model),
                                         json_string_value(tag), &v, &e);
    if (!rc) /* a package whose signer is revoked or untrusted is no target */
        rc = srv_trust_refuse(srv_store(r->srv), &v, &e);
    if (rc) {
        ret = srv_trust_reply_refused(r, rc, &e);
        goto out;
    }
    struct store_fleet_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.model, sizeof t.model, "%s", v.model);
    snprintf(t.version, sizeof t.version, "%s", v.version);
    if (tag)
        snprintf(t.tag, sizeof t.tag, "%s", json_string_value(tag));
    t.release = v.release;
    memcpy(t.digest, v.digest, sizeof t.digest);
    t.size = v.size;
    char rid[33];
    srv_rollout_new_id(rid);
    bool started = false;
    struct store_fleet f;
    rc = store_fleet_put(srv_store(r->srv), name, &t, percent_bp, fail_bp, min_devices, rid,
                         r->actor, &started, &f, &e);
    if (rc) {
        ret = srv_reply_store_error(r, rc, &e);
        goto out;
    }
    if (started)
        srv_log(SRV_LOG_INFO, "fleet %s: rollout %s of %s %s at %.2f%%", name, f.rollout_id,
                t.model, t.version, percent_bp / 100.0);
    srv_progress_sample(r->srv, name, started);
    ret = reply_fleet(r, 200, name);
out:
    json_decref(o);
    return ret;
}

/* ---- GET /v1/fleets/{fleet} ---------------------------------------------------------------- */

static enum MHD_Result h_get(struct srv_req *r)
{
    return reply_fleet(r, 200, srv_param(r, "fleet"));
}

/* A token bound to a device or a fleet (pemnd token create --device/--fleet) acts only as
 * that device / within that fleet. false after queueing a 403. */
static bool binding_ok(struct srv_req *r, const char *fleet, const char *device,
                       enum MHD_Result *ret)
{
    if (r->bound_device[0] && strcmp(r->bound_device, device) != 0) {
        *ret = srv_reply_error(r, 403, "forbidden",
                               "token '%s' is bound to device '%s' and cannot act as device '%s'",
                               r->actor, r->bound_device, device);
        return false;
    }
    if (r->bound_fleet[0] && strcmp(r->bound_fleet, fleet) != 0) {
        *ret = srv_reply_error(r, 403, "forbidden",
                               "token '%s' is bound to fleet '%s' and cannot act in fleet '%s'",
                               r->actor, r->bound_fleet, fleet);
        return false;
    }
    return true;
}

/* ---- desired state ----------------------------------------------------------------------------
 */

/* Which target a device should run: the new one, the previous one, or none. */
static const struct store_fleet_target *desired_target(const struct store_fleet *f,
                                                       const char *device,
                                                       const char *report_rollout, bool *in_rollout)
{
    bool member = srv_rollout_member(f->rollout_id, device, f->percent_bp);
    bool started = !strcmp(report_rollout, f->rollout_id);
    *in_rollout = member && (f->state == STORE_ROLLOUT_ACTIVE || started);
    if (*in_rollout)
        return &f->target;
    return f->has_previous ? &f->previous : NULL;
}

static enum MHD_Result h_desired(struct srv_req *r)
{
    const char *fleet = srv_param(r, "fleet"), *device = srv_param(r, "device");
    enum MHD_Result refused = MHD_NO;
    if (!binding_ok(r, fleet, device, &refused) || !srv_device_guard(r, fleet, device, &refused))
        return refused;
    struct store_fleet f;
    struct store_device d;
    struct pemn_err e;
    pemn_rc rc = store_device_poll(srv_store(r->srv), fleet, device, TOUCH_SECONDS, &f, &d, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    bool in_rollout;
    const struct store_fleet_target *t = desired_target(&f, device, d.report_rollout, &in_rollout);
    if (!t)
        return srv_reply_error(r, 404, "not_found",
                               "fleet '%s' has no target for device '%s' yet (outside the "
                               "rollout and no previous target)",
                               fleet, device);
    json_t *o = target_json(t);
    if (!o)
        return srv_reply_error(r, 503, "unavailable", "out of memory");
    json_object_set_new(o, "fleet", json_string(fleet));
    json_object_set_new(o, "device", json_string(device));
    json_object_set_new(o, "rollout_id", json_string(f.rollout_id));
    json_object_set_new(o, "in_rollout", json_boolean(in_rollout));
    /* bytes from an OCI registry (docs/OCI.md): part of the answer, so a signed answer
     * covers the location too */
    srv_oci_desired_source(r->srv, fleet, o);
    /* with a metadata key: the signed envelope (docs/TRUST.md), re-signed only on change;
     * its ETag comes from the stored version, so a 304 reads no body */
    struct srv_signer *sg = srv_get_signer(r->srv);
    char *text = NULL;
    size_t n = 0;
    char etag[SRV_SIGNER_ETAG_MAX];
    bool same = false;
    if (sg && (rc = srv_signer_answer(sg, srv_store(r->srv), fleet, device, o,
                                      srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), &text, &n, etag,
                                      &same, &e))) {
        json_decref(o);
        return srv_reply_store_error(r, rc, &e);
    }
    if (!sg)
        text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!text && !same)
        return srv_reply_error(r, 503, "unavailable", "out of memory");
    if (!sg) {
        /* the ETag is the body's hash, so it changes exactly when the answer does */
        n = strlen(text);
        uint8_t h[PEMN_DIGEST_BYTES];
        char hex[2 * 16 + 1];
        pemn_sha256(text, n, h);
        proto_hex(h, 16, hex);
        snprintf(etag, sizeof etag, "\"%s\"", hex);
        same = srv_etag_matches(srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag);
    }
    struct MHD_Response *resp;
    unsigned status;
    if (same) {
        free(text);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = 304;
        n = 0;
    } else {
        char *t2 = sg ? text : realloc(text, n + 2); /* a signed body ends in "\n" already */
        if (!t2) {
            free(text);
            return srv_reply_error(r, 503, "unavailable", "out of memory");
        }
        if (!sg) {
            t2[n++] = '\n';
            t2[n] = 0;
        }
        resp = MHD_create_response_from_buffer(n, t2, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(t2);
        status = 200;
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, srv_cache_control(r, false));
    if (status == 200)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return srv_queue(r, status, resp, n);
}

/* ---- device status ----------------------------------------------------------------------------
 */

static bool reason_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REASON_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static json_t *device_json(const struct store_device *d, const struct store_fleet *f)
{
    bool in;
    const struct store_fleet_target *t = desired_target(f, d->id, d->report_rollout, &in);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:b, s:b, s:i, "
        "s:s?}",
        "fleet", d->fleet, "device", d->id, "state", d->state, "reason", d->reason, "message",
        d->message, "version", d->version, "release", (json_int_t)d->release, "digest", d->digest,
        "first_seen", (json_int_t)d->first_seen, "last_seen", (json_int_t)d->last_seen, "reported",
        (json_int_t)d->reported, "in_rollout", in, "counted",
        d->report_rollout[0] && !strcmp(d->report_rollout, f->rollout_id), "bucket",
        (int)srv_rollout_bucket(f->rollout_id, d->id), "desired_version", t ? t->version : NULL);
}

static enum MHD_Result h_status(struct srv_req *r)
{
    static const char *const keys[] = {"state",  "reason",  "version",  "release",
                                       "digest", "message", "transfer", NULL};
    static const char *const states[] = {"downloading", "verifying", "installed", "failed", NULL};
    const char *fleet = srv_param(r, "fleet"), *device = srv_param(r, "device");
    enum MHD_Result ret = MHD_NO;
    if (!binding_ok(r, fleet, device, &ret) || !srv_device_guard(r, fleet, device, &ret))
        return ret;
    json_t *o = body_object(r, &ret);
    if (!o)
        return ret;
    struct store_device rep;
    memset(&rep, 0, sizeof rep);
    snprintf(rep.id, sizeof rep.id, "%s", device);
    const char *stranger = unknown_key(o, keys);
    const char *state = json_string_value(json_object_get(o, "state"));
    json_t *reason = json_object_get(o, "reason"), *version = json_object_get(o, "version");
    json_t *release = json_object_get(o, "release"), *digest = json_object_get(o, "digest");
    json_t *message = json_object_get(o, "message");
    bool state_ok = false;
    for (int i = 0; state && states[i]; i++)
        state_ok |= !strcmp(state, states[i]);
    uint8_t dbytes[PEMN_DIGEST_BYTES];
    struct srv_delta_transfer xfer; /* bytes moved for the update (srv_delta.h) */
    const char *why =
        stranger    ? "unknown field"
        : !state_ok ? "\"state\" must be downloading, verifying, "
                      "installed or failed"
        : (reason && !json_is_null(reason) &&
           (!json_is_string(reason) || !reason_ok(json_string_value(reason))))
            ? "\"reason\" must be 1-64 characters of [A-Za-z0-9._-]"
        : (!strcmp(state, "failed") && !json_is_string(reason))
            ? "a failed report needs a \"reason\""
        : (version && !json_is_null(version) &&
           !(json_is_string(version) && (!json_string_length(version) || label_value(version))))
            ? "\"version\" must be a version label"
        : (release && !json_is_null(release) &&
           (!json_is_integer(release) || json_integer_value(release) < 0))
            ? "\"release\" must be an integer >= 0"
        : (digest && !json_is_null(digest) &&
           (!json_is_string(digest) || pemn_digest_parse(json_string_value(digest), dbytes)))
            ? "\"digest\" must be sha256:<64 hex>"
        : (message && !json_is_null(message) &&
           (!json_is_string(message) || json_string_length(message) > MESSAGE_MAX ||
            strlen(json_string_value(message)) != json_string_length(message)))
            ? "\"message\" must be a string of at most 256 bytes (no NUL)"
            : srv_delta_transfer_parse(json_object_get(o, "transfer"), &xfer);
    if (why) {
        ret = srv_reply_error(r, 400, "bad_request", "%s%s%s", why, stranger ? " " : "",
                              stranger ? stranger : "");
        goto out;
    }
    snprintf(rep.state, sizeof rep.state, "%s", state);
    if (json_is_string(reason))
        snprintf(rep.reason, sizeof rep.reason, "%s", json_string_value(reason));
    if (json_is_string(version))
        snprintf(rep.version, sizeof rep.version, "%s", json_string_value(version));
    if (json_is_integer(release))
        rep.release = (uint64_t)json_integer_value(release);
    if (json_is_string(digest))
        pemn_digest_format(dbytes, rep.digest); /* canonical lowercase */
    if (json_is_string(message))
        snprintf(rep.message, sizeof rep.message, "%s", json_string_value(message));

    struct store *st = srv_store(r->srv);
    struct store_fleet f;
    struct pemn_err e;
    pemn_rc rc = store_fleet_get(st, fleet, &f, &e);
    if (rc) {
        ret = srv_reply_store_error(r, rc, &e);
        goto out;
    }
    /* the report counts for the rollout when the device is in it and reports on its
     * target */
    bool counts = srv_rollout_member(f.rollout_id, device, f.percent_bp) && rep.digest[0] &&
                  !strcmp(rep.digest, f.target.digest);
    uint64_t reporting = 0, failed = 0;
    rc =
        store_device_report(st, fleet, &rep, counts ? f.rollout_id : NULL, &reporting, &failed, &e);
    if (rc) {
        ret = srv_reply_store_error(r, rc, &e);
        goto out;
    }
    struct srv_abort_rule rule = {f.abort_failure_bp, f.abort_min_devices};
    if (counts && f.state != STORE_ROLLOUT_ABORTED && /* paused rollouts too */
        srv_rollout_should_abort(&rule, failed, reporting)) {
        char why_abort[STORE_REASON_MAX];
        snprintf(why_abort, sizeof why_abort,
                 "abort rule: %llu of %llu reporting devices failed (threshold %.2f%% of at "
                 "least %llu)",
                 (unsigned long long)failed, (unsigned long long)reporting,
                 srv_bp_to_percent(f.abort_failure_bp), (unsigned long long)f.abort_min_devices);
        bool changed = false;
        /* the audit row names the token whose report tripped the rule */
        char who[STORE_LABEL_MAX + 16];
        snprintf(who, sizeof who, "abort-rule:%s", r->actor[0] ? r->actor : "-");
        rc = store_fleet_set_state(st, fleet, STORE_ROLLOUT_ABORTED, why_abort, f.rollout_id, who,
                                   &changed, &f, &e);
        if (rc && rc != PEMN_ECONFLICT) { /* conflict: a newer rollout took over meanwhile */
            ret = srv_reply_store_error(r, rc, &e);
            goto out;
        }
        if (changed)
            srv_log(SRV_LOG_WARN, "fleet %s: rollout %s aborted by a report of token '%s': %s",
                    fleet, f.rollout_id, r->actor, why_abort);
    }
    if (counts)
        srv_progress_sample(r->srv, fleet, false);
    if (!strcmp(rep.state, "installed"))
        srv_delta_transfer_count(&xfer);
    struct store_device d;
    if ((rc = store_device_get(st, fleet, device, &d, &e)) ||
        (rc = store_fleet_get(st, fleet, &f, &e))) {
        ret = srv_reply_store_error(r, rc, &e);
        goto out;
    }
    json_t *dj = device_json(&d, &f);
    if (dj)
        json_object_set_new(dj, "rollout_state", json_string(store_rollout_state_name(f.state)));
    ret = dj ? srv_reply_json(r, 200, dj) : srv_reply_error(r, 503, "unavailable", "no memory");
out:
    json_decref(o);
    return ret;
}

static enum MHD_Result h_device(struct srv_req *r)
{
    const char *fleet = srv_param(r, "fleet"), *device = srv_param(r, "device");
    struct store_fleet f;
    struct store_device d;
    struct pemn_err e;
    pemn_rc rc = store_fleet_get(srv_store(r->srv), fleet, &f, &e);
    if (!rc)
        rc = store_device_get(srv_store(r->srv), fleet, device, &d, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    json_t *dj = device_json(&d, &f);
    return dj ? srv_reply_json(r, 200, dj) : srv_reply_error(r, 503, "unavailable", "no memory");
}

/* ---- POST /v1/fleets/{fleet}/rollout/{action} --------------------------------------------------
 */

static enum MHD_Result h_rollout(struct srv_req *r)
{
    const char *fleet = srv_param(r, "fleet"), *action = srv_param(r, "action");
    enum store_rollout_state to;
    if (!strcmp(action, "pause"))
        to = STORE_ROLLOUT_PAUSED;
    else if (!strcmp(action, "resume"))
        to = STORE_ROLLOUT_ACTIVE;
    else if (!strcmp(action, "abort"))
        to = STORE_ROLLOUT_ABORTED;
    else
        return srv_reply_error(r, 404, "not_found",
                               "no rollout action '%s' (pause, resume or abort)", action);
    /* an optional body {"reason": "..."} says why, for the record */
    char reason[STORE_REASON_MAX];
    const char *who = r->actor[0] ? r->actor : "anonymous";
    const char *verb = to == STORE_ROLLOUT_ACTIVE   ? "resumed"
                       : to == STORE_ROLLOUT_PAUSED ? "paused"
                                                    : "aborted";
    snprintf(reason, sizeof reason, "%s by %.64s", verb, who);
    const uint8_t *data;
    size_t len;
    srv_body_get(r, &data, &len);
    if (len > 0) {
        enum MHD_Result ret = MHD_NO;
        json_t *o = body_object(r, &ret);
        if (!o)
            return ret;
        static const char *const keys[] = {"reason", NULL};
        json_t *why = json_object_get(o, "reason");
        if (unknown_key(o, keys) || (why && !json_is_string(why))) {
            json_decref(o);
            return srv_reply_error(r, 400, "bad_request", "body must be {\"reason\": \"...\"}");
        }
        if (why)
            snprintf(reason, sizeof reason, "%s by %.64s: %.150s", verb, who,
                     json_string_value(why));
        json_decref(o);
    }
    struct pemn_err e;
    pemn_rc rc =
        store_fleet_set_state(srv_store(r->srv), fleet, to, reason, NULL, r->actor, NULL, NULL, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    srv_progress_sample(r->srv, fleet, false);
    return reply_fleet(r, 200, fleet);
}

/* ---- the table ------------------------------------------------------------------------------ */

const struct srv_route srv_routes_fleet[] = {
    {"fleet_list", SRV_GET | SRV_HEAD, "/v1/fleets", SRV_OPEN_READ, 0, h_list},
    {"fleet_put", SRV_PUT, "/v1/fleets/{fleet}", STORE_SCOPE_PUBLISH, FLEET_BODY_MAX, h_put},
    {"fleet_get", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}", SRV_OPEN_READ, 0, h_get},
    {"fleet_device", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}/devices/{device}", SRV_OPEN_READ, 0,
     h_device},
    {"fleet_desired", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}/devices/{device}/desired",
     STORE_SCOPE_DEVICE, 0, h_desired},
    {"fleet_status", SRV_PUT, "/v1/fleets/{fleet}/devices/{device}/status", STORE_SCOPE_DEVICE,
     STATUS_BODY_MAX, h_status},
    {"fleet_rollout", SRV_POST, "/v1/fleets/{fleet}/rollout/{action}", STORE_SCOPE_PUBLISH,
     FLEET_BODY_MAX, h_rollout},
    {NULL, 0, NULL, 0, 0, NULL},
};
