/*
 * server/srv_routes_console.c — the read routes the web console needs (docs/API.md, section
 * "Console reads"); plain API routes with the API's scopes, usable by anyone:
 *
 *   GET /v1/fleets/{fleet}/devices                   devices, filtered, newest report first
 *   GET /v1/fleets/{fleet}/failures                  failed devices by reason
 *   GET /v1/fleets/{fleet}/progress                  the rollout's counts over time
 *   GET /v1/fleets/{fleet}/devices/{device}/reports  a device's recent reports
 *   GET /v1/models/{name}/versions/{version}/contents  tensors, prototypes, bytes by kind
 *   GET /v1/audit                                    the audit log, filtered (publish)
 *
 * Query parameters are validated here (MHD leaves percent escapes alone: the free-text
 * audit filter is decoded by this file, every other value must be a plain name).
 */
#include "server/srv.h"
#include "server/srv_rollout.h"
#include "storage/store_console.h"

#include "proto/err.h"

#include <errno.h>
#include <math.h>
#include <pemn/gen.h>
#include <pemn/key.h>
#include <pemn/pkg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50u
#define LIST_MAX 1000u
#define AUDIT_DEFAULT 100u
#define AUDIT_MAX 1000u
#define TENSORS_LISTED 4096u
#define META_VALUE_SHOWN 4096u

/* ---- query parameters ------------------------------------------------------------------- */
static const char *arg(const struct srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* A name-like parameter: absent -> ""; else it must match the name pattern (or be ""). */
static bool label_arg(const struct srv_req *r, const char *name, const char **out)
{
    const char *v = arg(r, name);
    *out = v ? v : "";
    return !v || !v[0] || srv_valid_label(v, strlen(v));
}

/* An unsigned parameter in [lo, hi]; absent -> dflt. */
static bool uint_arg(const struct srv_req *r, const char *name, uint64_t dflt, uint64_t lo,
                     uint64_t hi, uint64_t *out)
{
    const char *v = arg(r, name);
    if (!v) {
        *out = dflt;
        return true;
    }
    if (v[0] < '0' || v[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes src ('+' is a space) into dst; false on a bad escape, a NUL, a control
 * character or overflow. */
static bool text_arg(const struct srv_req *r, const char *name, char *dst, size_t cap)
{
    const char *v = arg(r, name);
    size_t n = 0;
    dst[0] = '\0';
    if (!v)
        return true;
    for (const char *p = v; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int h = hexval(p[1]), l = h >= 0 ? hexval(p[2]) : -1;
            if (l < 0)
                return false;
            c = h * 16 + l;
            p += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f || n + 1 >= cap)
            return false;
        dst[n++] = (char)c;
    }
    dst[n] = '\0';
    return true;
}

/* A JSON string from bytes that may not be UTF-8 (metadata, names in old rows): invalid
 * bytes become '?'. At most max bytes. */
static json_t *safe_string(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    copy[n] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

/* ---- progress samples ------------------------------------------------------------------- */
void srv_progress_sample(struct srv *s, const char *fleet, bool force)
{
    struct pemn_err e;
    if (store_console_progress_sample(srv_store(s), fleet, force, SRV_PROGRESS_STEP, NULL, &e))
        srv_log(SRV_LOG_WARN, "fleet %s: rollout progress sample not stored: %s", fleet, e.msg);
}

/* ---- devices ------------------------------------------------------------------------------ */
struct devs_ctx {
    json_t *arr;
    const struct store_fleet *f;
};

static json_t *device_row_json(const struct store_device *d, const struct store_fleet *f)
{
    bool member = srv_rollout_member(f->rollout_id, d->id, f->percent_bp);
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:s, s:I, s:I, s:I, s:b, s:b}", "device",
                     d->id, "state", d->state, "reason", d->reason, "message",
                     safe_string(d->message, STORE_MESSAGE_MAX), "version", d->version, "release",
                     (json_int_t)d->release, "digest", d->digest, "first_seen",
                     (json_int_t)d->first_seen, "last_seen", (json_int_t)d->last_seen, "reported",
                     (json_int_t)d->reported, "in_rollout", member, "counted",
                     d->report_rollout[0] && !strcmp(d->report_rollout, f->rollout_id));
}

static int devs_cb(void *ctx, const struct store_device *d)
{
    struct devs_ctx *c = ctx;
    json_t *o = device_row_json(d, c->f);
    return !o || json_array_append_new(c->arr, o) != 0;
}

static enum MHD_Result h_devices(struct srv_req *r)
{
    const char *fleet = srv_param(r, "fleet");
    struct store_device_query q = {0};
    uint64_t limit = 0, offset = 0;
    if (!label_arg(r, "state", &q.state) || !label_arg(r, "reason", &q.reason) ||
        !label_arg(r, "version", &q.version) ||
        !uint_arg(r, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit) ||
        !uint_arg(r, "offset", 0, 0, UINT32_MAX, &offset))
        return srv_reply_error(r, 400, "bad_request",
                               "query: state, reason and version are names; limit 1..%u; "
                               "offset >= 0",
                               LIST_MAX);
    q.limit = (unsigned)limit;
    q.offset = offset;
    struct store_fleet f;
    struct pemn_err e;
    pemn_rc rc = store_fleet_get(srv_store(r->srv), fleet, &f, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    struct devs_ctx c = {json_array(), &f};
    uint64_t total = 0;
    rc = c.arr ? store_console_devices(srv_store(r->srv), fleet, &q, &total, devs_cb, &c, &e)
               : PEMN_ENOMEM;
    if (rc) {
        json_decref(c.arr);
        if (rc == PEMN_ECANCELED || rc == PEMN_ENOMEM)
            return srv_reply_error(r, 503, "unavailable", "out of memory");
        return srv_reply_store_error(r, rc, &e);
    }
    return srv_reply_json(r, 200,
                          json_pack("{s:s, s:I, s:I, s:I, s:o}", "fleet", fleet, "total",
                                    (json_int_t)total, "offset", (json_int_t)offset, "limit",
                                    (json_int_t)limit, "devices", c.arr));
}

/* ---- failures ------------------------------------------------------------------------------ */
static int fail_cb(void *ctx, const char *reason, uint64_t n, uint64_t counted)
{
    json_t *o = json_pack("{s:s, s:I, s:I}", "reason", reason, "devices", (json_int_t)n, "counted",
                          (json_int_t)counted);
    return !o || json_array_append_new(ctx, o) != 0;
}

static enum MHD_Result h_failures(struct srv_req *r)
{
    const char *fleet = srv_param(r, "fleet");
    json_t *arr = json_array();
    struct pemn_err e;
    pemn_rc rc =
        arr ? store_console_failures(srv_store(r->srv), fleet, fail_cb, arr, &e) : PEMN_ENOMEM;
    if (rc) {
        json_decref(arr);
        if (rc == PEMN_ECANCELED || rc == PEMN_ENOMEM)
            return srv_reply_error(r, 503, "unavailable", "out of memory");
        return srv_reply_store_error(r, rc, &e);
    }
    return srv_reply_json(r, 200, json_pack("{s:s, s:o}", "fleet", fleet, "failures", arr));
}

/* ---- progress ------------------------------------------------------------------------------ */
static int progress_cb(void *ctx, const struct store_progress *p)
{
    json_t *o =
        json_pack("{s:I, s:s, s:f, s:I, s:I, s:I, s:I, s:I}", "at", (json_int_t)p->at, "state",
                  store_rollout_state_name(p->state), "percent", srv_bp_to_percent(p->percent_bp),
                  "devices", (json_int_t)p->devices, "reporting", (json_int_t)p->reporting,
                  "installed", (json_int_t)p->installed, "failed", (json_int_t)p->failed,
                  "in_progress", (json_int_t)p->in_progress);
    return !o || json_array_append_new(ctx, o) != 0;
}

static bool rollout_id_ok(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (const char *p = s; *p; p++)
        if (hexval(*p) < 0)
            return false;
    return true;
}

static enum MHD_Result h_progress(struct srv_req *r)
{
    const char *fleet = srv_param(r, "fleet");
    const char *rollout = arg(r, "rollout");
    if (rollout && !rollout_id_ok(rollout))
        return srv_reply_error(r, 400, "bad_request", "rollout must be a rollout id (32 hex)");
    struct store_fleet f;
    struct pemn_err e;
    pemn_rc rc = store_fleet_get(srv_store(r->srv), fleet, &f, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    json_t *arr = json_array();
    rc = arr ? store_console_progress(srv_store(r->srv), fleet, rollout, progress_cb, arr, &e)
             : PEMN_ENOMEM;
    if (rc) {
        json_decref(arr);
        if (rc == PEMN_ECANCELED || rc == PEMN_ENOMEM)
            return srv_reply_error(r, 503, "unavailable", "out of memory");
        return srv_reply_store_error(r, rc, &e);
    }
    return srv_reply_json(r, 200,
                          json_pack("{s:s, s:s, s:I, s:I, s:o}", "fleet", fleet, "rollout_id",
                                    rollout ? rollout : f.rollout_id, "max_samples",
                                    (json_int_t)STORE_PROGRESS_MAX, "started",
                                    (json_int_t)f.rollout_started, "samples", arr));
}

/* ---- a device's reports ---------------------------------------------------------------------- */
static int report_cb(void *ctx, const struct store_report *x)
{
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:I, s:s, s:s}", "at", (json_int_t)x->at, "fleet",
                  x->fleet, "state", x->state, "reason", x->reason, "message",
                  safe_string(x->message, STORE_MESSAGE_MAX), "version", x->version, "release",
                  (json_int_t)x->release, "digest", x->digest, "rollout_id", x->rollout);
    return !o || json_array_append_new(ctx, o) != 0;
}

static enum MHD_Result h_reports(struct srv_req *r)
{
    const char *fleet = srv_param(r, "fleet"), *device = srv_param(r, "device");
    uint64_t limit;
    if (!uint_arg(r, "limit", STORE_HISTORY_MAX, 1, STORE_HISTORY_MAX, &limit))
        return srv_reply_error(r, 400, "bad_request", "limit must be 1..%d", STORE_HISTORY_MAX);
    struct store_device d;
    struct pemn_err e;
    pemn_rc rc = store_device_get(srv_store(r->srv), fleet, device, &d, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    json_t *arr = json_array();
    rc = arr ? store_console_history(srv_store(r->srv), device, (unsigned)limit, report_cb, arr, &e)
             : PEMN_ENOMEM;
    if (rc) {
        json_decref(arr);
        if (rc == PEMN_ECANCELED || rc == PEMN_ENOMEM)
            return srv_reply_error(r, 503, "unavailable", "out of memory");
        return srv_reply_store_error(r, rc, &e);
    }
    return srv_reply_json(r, 200,
                          json_pack("{s:s, s:s, s:I, s:o}", "fleet", fleet, "device", device,
                                    "kept", (json_int_t)STORE_HISTORY_MAX, "reports", arr));
}

/* ---- the audit log ------------------------------------------------------------------------- */
static int audit_cb(void *ctx, const struct store_audit *a)
{
    json_t *o = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "id", (json_int_t)a->id, "at",
                          (json_int_t)a->at, "actor", safe_string(a->actor, 1024), "action",
                          safe_string(a->action, 1024), "target", safe_string(a->target, 1024),
                          "detail", safe_string(a->detail, 4096));
    return !o || json_array_append_new(ctx, o) != 0;
}

static enum MHD_Result h_audit(struct srv_req *r)
{
    char action[STORE_LABEL_MAX], actor[STORE_LABEL_MAX], target[2 * STORE_LABEL_MAX + 2],
        text[256];
    uint64_t limit = 0, before = 0;
    if (!text_arg(r, "action", action, sizeof action) ||
        !text_arg(r, "actor", actor, sizeof actor) ||
        !text_arg(r, "target", target, sizeof target) || !text_arg(r, "q", text, sizeof text) ||
        !uint_arg(r, "limit", AUDIT_DEFAULT, 1, AUDIT_MAX, &limit) ||
        !uint_arg(r, "before", 0, 0, INT64_MAX, &before))
        return srv_reply_error(r, 400, "bad_request",
                               "query: action, actor, target, q are text (target may end in "
                               "'*'); limit 1..%u; before is an audit id",
                               AUDIT_MAX);
    struct store_audit_query q = {action, actor, target, text, (int64_t)before, (unsigned)limit};
    json_t *arr = json_array();
    struct pemn_err e;
    pemn_rc rc = arr ? store_console_audit(srv_store(r->srv), &q, audit_cb, arr, &e) : PEMN_ENOMEM;
    if (rc) {
        json_decref(arr);
        if (rc == PEMN_ECANCELED || rc == PEMN_ENOMEM)
            return srv_reply_error(r, 503, "unavailable", "out of memory");
        return srv_reply_store_error(r, rc, &e);
    }
    /* the cursor for the next (older) page */
    size_t n = json_array_size(arr);
    json_t *next = n == limit ? json_object_get(json_array_get(arr, n - 1), "id") : NULL;
    return srv_reply_json(r, 200, json_pack("{s:o, s:O?}", "entries", arr, "next_before", next));
}

/* ---- a version's contents -------------------------------------------------------------------- */
/* Test accuracy recorded in the metadata: "accuracy" (a number; a fraction, or a percentage
 * when above 1), or pemn train's "pemn.train" {test_correct, test_samples}. -1: none. */
static double meta_accuracy(const pemn_pkg *pkg)
{
    const char *a = pemn_pkg_meta_get(pkg, "accuracy");
    if (a) {
        char *end;
        errno = 0;
        double v = strtod(a, &end);
        if (!errno && end != a && !*end && isfinite(v) && v >= 0 && v <= 100)
            return v > 1 ? v / 100 : v;
    }
    const char *t = pemn_pkg_meta_get(pkg, "pemn.train");
    double acc = -1;
    if (t) {
        json_t *j = json_loads(t, 0, NULL);
        json_t *c = json_object_get(j, "test_correct"), *n = json_object_get(j, "test_samples");
        if (json_is_integer(c) && json_is_integer(n) && json_integer_value(n) > 0 &&
            json_integer_value(c) >= 0 && json_integer_value(c) <= json_integer_value(n))
            acc = (double)json_integer_value(c) / (double)json_integer_value(n);
        json_decref(j);
    }
    return acc;
}

struct fleets_ctx {
    json_t *arr;
    const char *digest;
};

static int fleets_cb(void *ctx, const struct store_fleet *f)
{
    struct fleets_ctx *c = ctx;
    const char *role = !strcmp(f->target.digest, c->digest)                        ? "target"
                       : f->has_previous && !strcmp(f->previous.digest, c->digest) ? "previous"
                                                                                   : NULL;
    if (!role)
        return 0;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:f}", "fleet", f->name, "role", role, "state",
                  store_rollout_state_name(f->state), "percent", srv_bp_to_percent(f->percent_bp));
    return !o || json_array_append_new(c->arr, o) != 0;
}

static json_t *contents_json(const pemn_pkg *pkg, const uint8_t *bytes, size_t len)
{
    struct pemn_pkg_info info;
    if (pemn_pkg_info(pkg, &info) || len < 128)
        return NULL;
    json_t *tensors = json_array(), *protos = json_array(), *meta = json_object();
    uint64_t masks = 0, dense = 0, proto_bytes = 0, kept = 0;
    bool bad = !tensors || !protos || !meta;
    uint32_t nt = pemn_pkg_tensor_count(pkg);
    for (uint32_t i = 0; i < nt && !bad; i++) {
        struct pemn_tensor_info t;
        if (pemn_pkg_tensor(pkg, i, &t)) {
            bad = true;
            break;
        }
        if (t.masked) {
            masks += t.stored_bytes;
            kept += t.kept;
        } else {
            dense += t.stored_bytes;
        }
        if (i >= TENSORS_LISTED)
            continue;
        json_t *shape = json_array();
        for (uint32_t k = 0; k < t.ndim && shape; k++)
            json_array_append_new(shape, json_integer((json_int_t)t.shape[k]));
        json_t *o = json_pack("{s:o, s:s, s:o, s:I, s:s, s:I}", "name",
                              safe_string(t.name, PEMN_MAX_NAME), "dtype", pemn_dtype_name(t.dtype),
                              "shape", shape, "numel", (json_int_t)t.numel, "kind",
                              t.masked ? "masked" : "dense", "bytes", (json_int_t)t.stored_bytes);
        if (o && t.masked) {
            json_object_set_new(o, "kept", json_integer((json_int_t)t.kept));
            json_object_set_new(o, "prototype", json_integer(t.proto));
            json_object_set_new(o, "offset", json_integer((json_int_t)t.offset));
            json_object_set_new(o, "scale", json_real(t.scale));
        }
        bad = !o || json_array_append_new(tensors, o) != 0;
    }
    for (uint32_t i = 0; i < info.n_protos && !bad; i++) {
        struct pemn_proto_info p;
        if (pemn_pkg_proto(pkg, i, &p)) {
            bad = true;
            break;
        }
        json_t *o;
        if (p.kind == PEMN_PROTO_SEEDED) {
            char seed[2 * sizeof p.seed + 1];
            proto_hex(p.seed, sizeof p.seed, seed);
            const char *gen = pemn_gen_name(p.generator);
            o = json_pack("{s:i, s:s, s:I, s:s, s:f, s:s, s:I}", "index", (int)i, "kind", "seeded",
                          "length", (json_int_t)p.length, "generator", gen ? gen : "unknown",
                          "scale", (double)p.scale, "seed", seed, "bytes",
                          (json_int_t)sizeof p.seed);
            proto_bytes += sizeof p.seed;
        } else {
            o = json_pack("{s:i, s:s, s:I, s:I}", "index", (int)i, "kind", "explicit", "length",
                          (json_int_t)p.length, "bytes", (json_int_t)(p.length * 4));
            proto_bytes += p.length * 4;
        }
        bad = !o || json_array_append_new(protos, o) != 0;
    }
    for (uint32_t i = 0; i < info.n_meta && !bad; i++) {
        const char *k, *v;
        if (pemn_pkg_meta(pkg, i, &k, &v))
            continue;
        json_t *key = safe_string(k, PEMN_MAX_NAME);
        bad = !key || json_object_set_new(meta, json_string_value(key),
                                          safe_string(v, META_VALUE_SHOWN)) != 0;
        json_decref(key);
    }
    /* the trailer: signer key | content digest | signature */
    char pub[PEMN_PUBKEY_TEXT_MAX], cdig[65], sig[129], kid[PEMN_KEYID_TEXT_MAX];
    pemn_pubkey_format(&info.signer, pub);
    proto_hex(bytes + len - 96, 32, cdig);
    proto_hex(bytes + len - 64, 64, sig);
    proto_hex(info.signer_id, PEMN_KEYID_BYTES, kid);
    uint64_t accounted = masks + dense + proto_bytes;
    double acc = meta_accuracy(pkg);
    json_t *o =
        bad ? NULL
            : json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:{s:I, "
                        "s:I, s:I, s:I}, s:{s:s, s:s, s:s, s:s}}",
                        "format", "pemn", "format_major", (int)info.format_major, "format_minor",
                        (int)info.format_minor, "n_tensors", (json_int_t)nt, "n_params",
                        (json_int_t)info.n_params, "n_masked", (json_int_t)info.n_masked, "kept",
                        (json_int_t)kept, "tensors", tensors, "prototypes", protos, "metadata",
                        meta, "accuracy",
                        acc >= 0 ? json_real(round(acc * 1e6) / 1e6) : json_null(), "bytes",
                        "masks", (json_int_t)masks, "dense", (json_int_t)dense, "prototypes",
                        (json_int_t)proto_bytes, "other",
                        (json_int_t)(len > accounted ? len - accounted : 0), "signature", "signer",
                        kid, "public_key", pub, "content_digest", cdig, "signature", sig);
    if (!o) {
        json_decref(tensors);
        json_decref(protos);
        json_decref(meta);
    }
    return o;
}

static enum MHD_Result h_contents(struct srv_req *r)
{
    struct store *st = srv_store(r->srv);
    struct store_version v;
    struct pemn_err e;
    pemn_rc rc = store_get_version(st, srv_param(r, "name"), srv_param(r, "version"), &v, &e);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    struct store_blob *b = NULL;
    if ((rc = store_blob_get(st, v.digest, &b, &e)))
        return srv_reply_store_error(r, rc, &e);
    uint8_t *copy = NULL;
    const uint8_t *bytes = b->data;
    size_t len = (size_t)b->size;
    if (!bytes) { /* not cached: read it in chunks */
        copy = b->size <= SIZE_MAX ? malloc(len ? len : 1) : NULL;
        for (size_t off = 0; copy && !rc && off < len;) {
            size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
            rc = store_blob_read(st, b, off, copy + off, n, &e);
            off += n;
        }
        if (!copy || rc) {
            free(copy);
            store_blob_release(b);
            return copy ? srv_reply_store_error(r, rc, &e)
                        : srv_reply_error(r, 503, "unavailable", "out of memory");
        }
        bytes = copy;
    }
    pemn_pkg *pkg = NULL;
    enum MHD_Result ret;
    json_t *o = NULL;
    if ((rc = pemn_pkg_open_mem(bytes, len, 0, &pkg, &e))) {
        ret = srv_reply_error(r, 500, "internal", "stored package does not open: %s", e.msg);
        goto out;
    }
    o = contents_json(pkg, bytes, len);
    json_t *vo = srv_version_json(&v);
    struct fleets_ctx fc = {json_array(), v.digest};
    if (o && vo && fc.arr && !store_fleet_list(st, fleets_cb, &fc, &e)) {
        json_object_update(vo, o);
        json_object_set_new(vo, "fleets", fc.arr);
        fc.arr = NULL;
        ret = srv_reply_json(r, 200, vo);
        vo = NULL;
    } else {
        ret = srv_reply_error(r, 503, "unavailable", "cannot describe the package");
    }
    json_decref(o);
    json_decref(vo);
    json_decref(fc.arr);
out:
    pemn_pkg_free(pkg);
    free(copy);
    store_blob_release(b);
    return ret;
}

const struct srv_route srv_routes_console[] = {
    {"fleet_devices", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}/devices", SRV_OPEN_READ, 0,
     h_devices},
    {"fleet_failures", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}/failures", SRV_OPEN_READ, 0,
     h_failures},
    {"fleet_progress", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}/progress", SRV_OPEN_READ, 0,
     h_progress},
    {"device_reports", SRV_GET | SRV_HEAD, "/v1/fleets/{fleet}/devices/{device}/reports",
     SRV_OPEN_READ, 0, h_reports},
    {"version_contents", SRV_GET | SRV_HEAD, "/v1/models/{name}/versions/{version}/contents",
     SRV_OPEN_READ, 0, h_contents},
    {"audit", SRV_GET | SRV_HEAD, "/v1/audit", STORE_SCOPE_PUBLISH, 0, h_audit},
    {NULL, 0, NULL, 0, 0, NULL},
};
