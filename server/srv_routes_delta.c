/*
 * server/srv_routes_delta.c — package deltas (issue 12, docs/API.md "Deltas"):
 *   GET|HEAD /v1/blobs/{digest}/delta?from={old}
 *
 * The bytes that turn the package OLD into the package {digest} (NEW), as a .pemnd delta
 * file (docs/FORMAT.md "Delta files"). Both must be versions of the same model and OLD's
 * release below NEW's. The delta is computed on the first request with pemn_delta_make and
 * stored (storage/store_delta.h): its bytes become a blob named by their own SHA-256, then
 * served exactly as a blob (ETag = that digest, Range, If-None-Match, Cache-Control
 * immutable, private under read_token_required). A delta not smaller than NEW is recorded
 * as such and answered 404 delta_not_smaller, so the client takes the full package; so is
 * one that saves less than delta_min_saving percent of NEW (checked when serving, so the
 * stored rows do not depend on the setting).
 *
 * Bounds: a computation holds both packages and the delta in memory (about 3x the larger
 * package), so packages above delta_max_package are not diffed (404 delta_too_large), and
 * at most delta_concurrency computations run at once (503 busy with Retry-After beyond);
 * serving a stored delta costs what serving a blob costs.
 *
 * Metrics (process-wide counters, rendered by srv_metrics.c through srv_delta_metrics):
 * deltas computed / not smaller / refused busy, deltas served, and bytes saved (NEW's size
 * minus the delta's for every whole delta served).
 */
#include "server/srv.h"
#include "server/srv_delta.h"

#include "storage/store_delta.h"

#include <pemn/delta.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint inflight;
static atomic_ullong fleet_updates[2], fleet_bytes[2], fleet_saved; /* [0] full, [1] delta */
static atomic_ullong n_computed, n_not_smaller, n_busy, n_served, bytes_saved, bytes_served;

/* Reads a whole stored blob into malloc'ed memory. */
static pemn_rc read_blob(struct store *st, const char *digest, uint8_t **out, size_t *len,
                         struct pemn_err *err)
{
    struct store_blob *b = NULL;
    pemn_rc rc = store_blob_get(st, digest, &b, err);
    if (rc)
        return rc;
    uint8_t *buf = malloc(b->size ? (size_t)b->size : 1);
    if (!buf) {
        store_blob_release(b);
        return PEMN_ENOMEM;
    }
    if (b->data)
        memcpy(buf, b->data, (size_t)b->size);
    else
        rc = store_blob_read(st, b, 0, buf, (size_t)b->size, err);
    *len = (size_t)b->size;
    store_blob_release(b);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return PEMN_OK;
}

static enum MHD_Result reply_busy(struct srv_req *r, unsigned limit)
{
    atomic_fetch_add_explicit(&n_busy, 1, memory_order_relaxed);
    char msg[160];
    snprintf(msg, sizeof msg,
             "%u delta computations are running, the server's limit; retry shortly or fetch "
             "the full package",
             limit);
    json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "code", "busy", "message", msg);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    return srv_queue(r, 503, resp, n);
}

/* Computes and stores the delta from old to new (both already checked). */
static enum MHD_Result compute(struct srv_req *r, const struct store_version *nv,
                               const struct store_version *ov, struct store_delta *out, bool *done)
{
    const struct srv_config *cfg = srv_cfg(r->srv);
    struct store *st = srv_store(r->srv);
    *done = false;
    if (nv->size > cfg->delta_max_package || ov->size > cfg->delta_max_package)
        return srv_reply_error(r, 404, "delta_too_large",
                               "no delta: a package is above the server's delta_max_package "
                               "(%llu bytes); fetch the full package",
                               (unsigned long long)cfg->delta_max_package);
    unsigned limit = (unsigned)cfg->delta_concurrency;
    unsigned now = atomic_fetch_add(&inflight, 1);
    if (now >= limit) {
        atomic_fetch_sub(&inflight, 1);
        return reply_busy(r, limit);
    }
    uint8_t *oldb = NULL, *newb = NULL, *delta = NULL;
    size_t old_len = 0, new_len = 0, delta_len = 0;
    struct pemn_err e;
    memset(&e, 0, sizeof e);
    pemn_rc rc = read_blob(st, ov->digest, &oldb, &old_len, &e);
    if (!rc)
        rc = read_blob(st, nv->digest, &newb, &new_len, &e);
    if (!rc)
        rc = pemn_delta_make(oldb, old_len, newb, new_len, &delta, &delta_len, NULL, &e);
    free(oldb);
    bool smaller = !rc && delta_len < new_len;
    if (!rc)
        rc = store_delta_put(st, nv->digest, ov->digest, new_len, smaller ? delta : NULL,
                             smaller ? delta_len : 0, out, &e);
    free(newb);
    free(delta);
    atomic_fetch_sub(&inflight, 1);
    if (rc == PEMN_ENOMEM)
        return srv_reply_error(r, 503, "unavailable", "out of memory computing a delta");
    if (rc == PEMN_ECORRUPT || rc == PEMN_EVERSION || rc == PEMN_ETOOBIG)
        return srv_reply_error(r, 404, "delta_unavailable",
                               "no delta between these packages (%s); fetch the full package",
                               e.msg);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    atomic_fetch_add_explicit(&n_computed, 1, memory_order_relaxed);
    if (!out->smaller)
        atomic_fetch_add_explicit(&n_not_smaller, 1, memory_order_relaxed);
    srv_log(SRV_LOG_INFO, "delta %s -> %s: %llu bytes (package %llu)", ov->digest, nv->digest,
            (unsigned long long)out->size, (unsigned long long)out->new_size);
    *done = true;
    return MHD_YES;
}

static enum MHD_Result get_delta(struct srv_req *r)
{
    struct store *st = srv_store(r->srv);
    const char *new_digest = srv_param(r, "digest");
    const char *from = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "from");
    uint8_t d[PEMN_DIGEST_BYTES];
    if (!from || !*from)
        return srv_reply_error(r, 400, "bad_request",
                               "the query parameter from (the digest of the base package) is "
                               "required");
    if (strlen(from) >= PEMN_DIGEST_TEXT_MAX || pemn_digest_parse(from, d) != PEMN_OK)
        return srv_reply_error(r, 400, "bad_request",
                               "from is not a digest (expected sha256:<64 hex digits>)");
    struct store_version nv, ov;
    struct pemn_err e;
    pemn_rc rc = store_delta_version_of(st, new_digest, &nv, &e);
    if (rc == PEMN_ENOTFOUND)
        return srv_reply_error(r, 404, "not_found", "no package version has digest %s", new_digest);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    rc = store_delta_version_of(st, from, &ov, &e);
    if (rc == PEMN_ENOTFOUND)
        return srv_reply_error(r, 404, "delta_base_unknown",
                               "from: no package version has digest %.80s", from);
    if (rc)
        return srv_reply_store_error(r, rc, &e);
    if (strcmp(nv.model, ov.model) != 0)
        return srv_reply_error(r, 404, "delta_base_other_model",
                               "from is %s %s, not a version of %s", ov.model, ov.version,
                               nv.model);
    if (ov.release >= nv.release)
        return srv_reply_error(r, 404, "delta_base_not_older",
                               "from is %s %s (release %llu), not older than %s (release %llu)",
                               ov.model, ov.version, (unsigned long long)ov.release, nv.version,
                               (unsigned long long)nv.release);
    struct store_delta sd;
    rc = store_delta_get(st, nv.digest, ov.digest, &sd, &e);
    if (rc == PEMN_ENOTFOUND) {
        bool done;
        enum MHD_Result ret = compute(r, &nv, &ov, &sd, &done);
        if (!done)
            return ret;
    } else if (rc) {
        return srv_reply_store_error(r, rc, &e);
    }
    uint64_t pct = srv_cfg(r->srv)->delta_min_saving;
    if (!sd.smaller ||
        (pct && sd.size > sd.new_size / 100 * (100 - pct) + sd.new_size % 100 * (100 - pct) / 100))
        return srv_reply_error(r, 404, "delta_not_smaller",
                               "the delta from %s to %s would not be smaller than the package "
                               "(%llu bytes%s); fetch the full package",
                               ov.version, nv.version, (unsigned long long)sd.new_size,
                               sd.smaller ? " less delta_min_saving" : "");
    enum MHD_Result ret = srv_blob_serve(r, sd.delta_digest, true);
    if (r->status == 200 || r->status == 206) {
        atomic_fetch_add_explicit(&n_served, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&bytes_served, r->bytes, memory_order_relaxed);
        if (r->status == 200 && r->method == SRV_GET)
            atomic_fetch_add_explicit(&bytes_saved, sd.new_size - sd.size, memory_order_relaxed);
    }
    return ret;
}

const char *srv_delta_transfer_parse(const json_t *j, struct srv_delta_transfer *out)
{
    memset(out, 0, sizeof *out);
    if (!j || json_is_null(j))
        return NULL;
    static const char *const why = "\"transfer\" must be {\"bytes\": integer >= 0, "
                                   "\"delta\": boolean, \"package_size\": integer >= 0}";
    if (!json_is_object(j) || json_object_size(j) != 3)
        return why;
    const json_t *b = json_object_get(j, "bytes"), *d = json_object_get(j, "delta");
    const json_t *p = json_object_get(j, "package_size");
    if (!json_is_integer(b) || json_integer_value(b) < 0 || !json_is_boolean(d) ||
        !json_is_integer(p) || json_integer_value(p) < 0)
        return why;
    out->present = true;
    out->bytes = (uint64_t)json_integer_value(b);
    out->delta = json_is_true(d);
    out->package_size = (uint64_t)json_integer_value(p);
    return NULL;
}

void srv_delta_transfer_count(const struct srv_delta_transfer *t)
{
    if (!t->present)
        return;
    int k = t->delta ? 1 : 0;
    atomic_fetch_add_explicit(&fleet_updates[k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&fleet_bytes[k], t->bytes, memory_order_relaxed);
    if (t->delta && t->bytes < t->package_size)
        atomic_fetch_add_explicit(&fleet_saved, t->package_size - t->bytes, memory_order_relaxed);
}

void srv_delta_metrics(void (*add)(void *ctx, const char *text), void *ctx)
{
    char buf[1600];
    snprintf(buf, sizeof buf,
             "# HELP pemnd_deltas_computed_total Package deltas computed (and stored).\n"
             "# TYPE pemnd_deltas_computed_total counter\npemnd_deltas_computed_total %llu\n"
             "# HELP pemnd_deltas_not_smaller_total Deltas computed that were not smaller "
             "than the package (answered 404).\n"
             "# TYPE pemnd_deltas_not_smaller_total counter\n"
             "pemnd_deltas_not_smaller_total %llu\n"
             "# HELP pemnd_deltas_busy_total Delta requests refused (503) at "
             "delta_concurrency.\n"
             "# TYPE pemnd_deltas_busy_total counter\npemnd_deltas_busy_total %llu\n"
             "# HELP pemnd_deltas_served_total Delta responses (200 and 206).\n"
             "# TYPE pemnd_deltas_served_total counter\npemnd_deltas_served_total %llu\n"
             "# HELP pemnd_delta_bytes_served_total Delta body bytes sent.\n"
             "# TYPE pemnd_delta_bytes_served_total counter\n"
             "pemnd_delta_bytes_served_total %llu\n"
             "# HELP pemnd_delta_bytes_saved_total Package bytes not sent because a whole "
             "delta was sent instead.\n"
             "# TYPE pemnd_delta_bytes_saved_total counter\n"
             "pemnd_delta_bytes_saved_total %llu\n"
             "# HELP pemnd_deltas_computing Delta computations running now.\n"
             "# TYPE pemnd_deltas_computing gauge\npemnd_deltas_computing %u\n",
             (unsigned long long)atomic_load(&n_computed),
             (unsigned long long)atomic_load(&n_not_smaller),
             (unsigned long long)atomic_load(&n_busy), (unsigned long long)atomic_load(&n_served),
             (unsigned long long)atomic_load(&bytes_served),
             (unsigned long long)atomic_load(&bytes_saved), atomic_load(&inflight));
    add(ctx, buf);
    snprintf(buf, sizeof buf,
             "# HELP pemnd_fleet_updates_total Updates devices reported installed with their "
             "transfer, by how they were fetched.\n"
             "# TYPE pemnd_fleet_updates_total counter\n"
             "pemnd_fleet_updates_total{via=\"full\"} %llu\n"
             "pemnd_fleet_updates_total{via=\"delta\"} %llu\n"
             "# HELP pemnd_fleet_update_bytes_total Bytes devices reported downloading for "
             "their updates.\n"
             "# TYPE pemnd_fleet_update_bytes_total counter\n"
             "pemnd_fleet_update_bytes_total{via=\"full\"} %llu\n"
             "pemnd_fleet_update_bytes_total{via=\"delta\"} %llu\n"
             "# HELP pemnd_fleet_bytes_saved_total Package bytes devices did not download "
             "because they updated by delta.\n"
             "# TYPE pemnd_fleet_bytes_saved_total counter\npemnd_fleet_bytes_saved_total %llu\n",
             (unsigned long long)atomic_load(&fleet_updates[0]),
             (unsigned long long)atomic_load(&fleet_updates[1]),
             (unsigned long long)atomic_load(&fleet_bytes[0]),
             (unsigned long long)atomic_load(&fleet_bytes[1]),
             (unsigned long long)atomic_load(&fleet_saved));
    add(ctx, buf);
}

const struct srv_route srv_routes_delta[] = {
    {"delta_get", SRV_GET | SRV_HEAD, "/v1/blobs/{digest}/delta", SRV_OPEN_READ, 0, get_delta},
    {0},
};
