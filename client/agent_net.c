/*
 * client/agent_net.c — one polling cycle of the fleet agent: desired state (If-None-Match),
 * status reports, package download through pemn/client.h, install (client/agent.c).
 */
#include "client/agent_int.h"
#include "client/agent_root.h"
#include "client/oci_int.h"

#include "proto/err.h"

#include <pemn/client.h>

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DESIRED_MAX (64u * 1024u)
#define DEFAULT_TIMEOUT_MS 30000L

void agent_net_free(struct pemn_agent *a)
{
    if (a->curl)
        curl_easy_cleanup(a->curl);
    a->curl = NULL;
    pemn_client_free(a->client);
    a->client = NULL;
}

static bool valid_label(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* ---- one HTTP exchange ---------------------------------------------------------------------- */
struct resp {
    char *body;
    size_t len, max;
    bool over;
    char etag[160];
};

static size_t on_body(char *p, size_t sz, size_t n, void *u)
{
    struct resp *r = u;
    size_t add = sz * n;
    if (r->over || add > r->max - r->len) {
        r->over = true;
        return 0; /* stops the transfer */
    }
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, add);
    r->body = nb;
    r->len += add;
    r->body[r->len] = 0;
    return add;
}

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
    struct resp *r = u;
    size_t len = sz * n;
    if (len > 5 && !strncasecmp(p, "etag:", 5)) {
        size_t i = 5;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t j = len;
        while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '))
            j--;
        bool printable = j - i < sizeof r->etag;
        for (size_t k = i; printable && k < j; k++)
            printable = p[k] >= 0x20 && p[k] < 0x7f;
        if (printable) {
            memcpy(r->etag, p + i, j - i);
            r->etag[j - i] = 0;
        }
    }
    return len;
}

static int on_progress(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const struct pemn_agent *a = u;
    return a->opts.cancel && *a->opts.cancel ? 1 : 0;
}

/* The error text of a pemnd error body, or "". */
static void error_text(const struct resp *r, char *out, size_t cap)
{
    out[0] = 0;
    json_t *o = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    json_t *e = json_object_get(o, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (code)
        snprintf(out, cap, "%s: %s", code, msg ? msg : "");
    json_decref(o);
}

/* method "GET" or "PUT" (with body). *status receives the HTTP status. */
static pemn_rc http(struct pemn_agent *a, const char *method, const char *url, const char *body,
                    const char *if_none_match, long *status, struct resp *r, struct pemn_err *err)
{
    if (!a->curl && !(a->curl = curl_easy_init()))
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "curl_easy_init failed");
    CURL *h = a->curl;
    curl_easy_reset(h); /* keeps the connection cache: polls reuse one connection */
    struct curl_slist *hdr = NULL, *t;
    char line[512];
    long timeout = a->opts.timeout_ms > 0 ? a->opts.timeout_ms : DEFAULT_TIMEOUT_MS;
    pemn_rc rc = PEMN_OK;
    if (a->opts.token) {
        if (snprintf(line, sizeof line, "Authorization: Bearer %s", a->opts.token) >=
            (int)sizeof line)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "token too long");
        if (!(t = curl_slist_append(hdr, line)))
            goto nomem;
        hdr = t;
    }
    if (if_none_match && if_none_match[0]) {
        snprintf(line, sizeof line, "If-None-Match: %s", if_none_match);
        if (!(t = curl_slist_append(hdr, line)))
            goto nomem;
        hdr = t;
    }
    if (!(t = curl_slist_append(hdr, "Accept: application/json")))
        goto nomem;
    hdr = t;
    if (body) {
        if (!(t = curl_slist_append(hdr, "Content-Type: application/json")))
            goto nomem;
        hdr = t;
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, a);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pemn-agent/" PEMN_VERSION_STRING);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    if (cc == CURLE_ABORTED_BY_CALLBACK && a->opts.cancel && *a->opts.cancel)
        return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "stopped");
    if (cc == CURLE_WRITE_ERROR && r->over)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%s: response over %zu bytes", url,
                         r->max);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return proto_err(err, PEMN_ETIMEOUT, PEMN_NO_OFFSET, "%s %s: timed out", method, url);
    if (cc != CURLE_OK)
        return proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET, "%s %s: %s", method, url,
                         curl_easy_strerror(cc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return rc;
nomem:
    curl_slist_free_all(hdr);
    return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
}

static pemn_rc status_error(long status, const char *what, const struct resp *r,
                            struct pemn_err *err)
{
    char text[400];
    error_text(r, text, sizeof text);
    pemn_rc rc = status == 401 || status == 403 ? PEMN_EAUTH
                 : status == 404                ? PEMN_ENOTFOUND
                 : status == 400                ? PEMN_EINVAL
                                                : PEMN_EHTTP;
    return proto_err(err, rc, PEMN_NO_OFFSET, "%s: HTTP %ld%s%s", what, status, text[0] ? " " : "",
                     text);
}

pemn_rc agent_http_get(struct pemn_agent *a, const char *url, size_t max, long *status, char **body,
                       size_t *len, struct pemn_err *err)
{
    struct resp r = {.max = max};
    pemn_rc rc = http(a, "GET", url, NULL, NULL, status, &r, err);
    *body = r.body;
    *len = r.len;
    return rc;
}

/* ---- status reports ------------------------------------------------------------------------ */

/* Emits the event and PUTs the report; a report the server does not take is counted, not
 * fatal (the next state change reports again). */
static void report(struct pemn_agent *a, struct pemn_agent_cycle *cy, const char *state, pemn_rc rc,
                   const char *message, const char *digest)
{
    const struct pemn_agent_version *cur = a->st.has_current ? &a->st.current : NULL;
    agent_emit(a, state, rc, message, cy->model, cy->version, cy->release, digest);
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:s}", "state", state, "version", cur ? cur->version : "",
                  "release", (json_int_t)(cur ? cur->release : 0), "digest", digest);
    if (o && !rc && !strcmp(state, "installed") && cy->package_bytes) /* bytes moved */
        json_object_set_new(o, "transfer",
                            json_pack("{s:I, s:b, s:I}", "bytes", (json_int_t)cy->bytes_downloaded,
                                      "delta", cy->delta_used, "package_size",
                                      (json_int_t)cy->package_bytes));
    if (o && (!digest || !digest[0])) /* refused before any package was named */
        json_object_set_new(o, "digest", json_null());
    if (o && rc) {
        json_object_set_new(
            o, "reason",
            json_string(agent_trust_reason(a)[0] ? agent_trust_reason(a) : pemn_agent_reason(rc)));
        if (message && message[0])
            json_object_set_new(o, "message", json_string(message));
    }
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char url[PATH_MAX];
    struct resp r = {.max = 64 * 1024};
    long status = 0;
    if (!body ||
        agent_path(url, NULL, "%s/v1/fleets/%s/devices/%s/status", a->opts.server, a->opts.fleet,
                   a->opts.device) ||
        http(a, "PUT", url, body, NULL, &status, &r, NULL) || status != 200)
        cy->reports_failed++;
    free(body);
    free(r.body);
}

/* ---- the cycle ------------------------------------------------------------------------------ */

static bool str_field(json_t *o, const char *k, char *dst, size_t cap)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s || strlen(s) >= cap)
        return false;
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

static pemn_rc ensure_client(struct pemn_agent *a, struct pemn_err *err)
{
    if (a->client)
        return PEMN_OK;
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.token = a->opts.token;
    /* root mode: the keyring follows the root (replaced on update); fetches then check
     * signatures only and the install asks the root */
    o.trusted = agent_trust_root_mode(a) ? NULL : a->opts.trusted;
    if (a->opts.timeout_ms > 0)
        o.connect_timeout_ms = (uint32_t)(a->opts.timeout_ms < 10000 ? a->opts.timeout_ms : 10000);
    /* a download is bounded as a whole and by its rate, whatever the registry does */
    o.deadline_ms = a->opts.download_timeout_ms ? a->opts.download_timeout_ms : 600000;
    if (a->opts.min_rate)
        o.stall_bytes_per_s = a->opts.min_rate;
    if (a->opts.rate_window_ms)
        o.stall_timeout_ms = a->opts.rate_window_ms;
    o.max_package_size = a->opts.max_package;
    o.user_agent = "pemn-agent/" PEMN_VERSION_STRING;
    return pemn_client_new(a->opts.server, &o, &a->client, err);
}

/* The desired state named an OCI repository: the same fetch and checks, other bytes' host. */
static pemn_rc agent_fetch_oci(struct pemn_agent *a, const struct pemn_resolved *res,
                               const char *dest, const struct pemn_fetch_options *fo,
                               struct pemn_err *err)
{
    char loc[sizeof res->package_url];
    memcpy(loc, res->package_url, sizeof loc);
    struct pemn_resolved r = *res;
    return client_oci_fetch(loc, &a->client->o, a->opts.oci_username, a->opts.oci_password, &r,
                            dest, fo, NULL, err);
}

static int fetch_progress(void *user, uint64_t done, uint64_t total)
{
    (void)done, (void)total;
    const struct pemn_agent *a = user;
    return a->opts.cancel && *a->opts.cancel ? 1 : 0;
}

/* Remembers the answer acted on so that the next poll sends it in If-None-Match. Successes
 * are also kept in state.json (a restarted agent does not redo or re-report them); refusals
 * only in memory, so a restarted agent, perhaps with other keys or --allow-downgrade,
 * looks again. A failure to save only costs one more look next time. */
static void remember(struct pemn_agent *a, const char *etag, bool persist)
{
    snprintf(a->etag, sizeof a->etag, "%s", etag);
    if (persist && strcmp(a->etag_disk, etag) != 0) {
        snprintf(a->etag_disk, sizeof a->etag_disk, "%s", etag);
        (void)agent_state_save(a, &a->st, NULL);
    }
}

/* A refusal that fetching the same bytes again cannot cure. */
static bool final_refusal(pemn_rc rc)
{
    return rc == PEMN_EROLLBACK || rc == PEMN_EBADSIG || rc == PEMN_EUNTRUSTED ||
           rc == PEMN_ECORRUPT || rc == PEMN_EVERSION || rc == PEMN_ECONFLICT || rc == PEMN_ETOOBIG;
}

pemn_rc pemn_agent_run_once(pemn_agent *a, struct pemn_agent_cycle *out, struct pemn_err *err)
{
    struct pemn_agent_cycle cy;
    memset(&cy, 0, sizeof cy);
    if (!a)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "agent is NULL");
    if (!a->opts.server || !a->opts.server[0])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no server URL");
    if (!valid_label(a->opts.fleet) || !valid_label(a->opts.device))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "fleet and device must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    pemn_rc rc = ensure_client(a, err);
    if (rc)
        return rc;
    agent_trust_clear_reason(a);
    struct pemn_err pe = {0};
    pemn_rc act = PEMN_OK;
    struct resp r = {.max = DESIRED_MAX};
    bool quiet = false; /* the same root refusal as the last cycle's: not reported again */

    /* 0. root mode: follow the root chain; a bad link or an expired root stops installs */
    if ((rc = agent_trust_update_root(a, &pe))) {
        if (!agent_trust_reason(a)[0]) { /* could not ask: not a refusal */
            rc = proto_err(err, rc, PEMN_NO_OFFSET, "%s", pe.msg);
            goto done;
        }
        act = rc;
        rc = PEMN_OK;
        quiet = !agent_trust_root_refusal_new(a, pe.msg);
        goto verdict;
    }
    (void)agent_trust_root_refusal_new(a, "");

    /* 1. what should run here */
    char url[PATH_MAX];
    if ((rc = agent_path(url, err, "%s/v1/fleets/%s/devices/%s/desired", a->opts.server,
                         a->opts.fleet, a->opts.device)))
        return rc;
    long status = 0;
    if ((rc = http(a, "GET", url, NULL, a->etag, &status, &r, err)))
        goto done;
    if (status == 304) {
        cy.not_modified = 1;
        /* what was acted on must still be fresh: a registry answering 304 forever is a freeze */
        if ((act = agent_trust_check_fresh(a, &pe))) {
            remember(a, "", false);
            goto verdict;
        }
        goto done;
    }
    if (status == 404) {
        cy.no_target = 1;
        remember(a, "", true);
        goto done;
    }
    if (status != 200) {
        rc = status_error(status, "desired state", &r, err);
        goto done;
    }
    /* root mode: the fields below are the signed ones, verified; else the plain answer */
    json_t *o = NULL;
    if ((act = agent_trust_desired(a, r.body ? r.body : "", r.len, &o, &pe))) {
        remember(a, r.etag, false);
        goto verdict;
    }
    json_t *rel = json_object_get(o, "release"), *size = json_object_get(o, "size");
    struct pemn_resolved res;
    memset(&res, 0, sizeof res);
    uint8_t dbytes[PEMN_DIGEST_BYTES];
    bool ok = o && str_field(o, "model", cy.model, sizeof cy.model) &&
              str_field(o, "version", cy.version, sizeof cy.version) &&
              str_field(o, "digest", cy.digest, sizeof cy.digest) &&
              str_field(o, "package_url", res.package_url, sizeof res.package_url) &&
              json_is_integer(rel) && json_integer_value(rel) >= 0 && json_is_integer(size) &&
              json_integer_value(size) >= 0 && !pemn_digest_parse(cy.digest, dbytes) &&
              valid_label(cy.model) && valid_label(cy.version);
    if (ok) {
        cy.release = (uint64_t)json_integer_value(rel);
        res.size = (uint64_t)json_integer_value(size);
    }
    json_decref(o);
    if (!ok) {
        rc = proto_err(err, PEMN_EHTTP, PEMN_NO_OFFSET,
                       "desired state: not the JSON of docs/API.md (Fleets)");
        goto done;
    }
    pemn_digest_format(dbytes, cy.digest); /* canonical lowercase */

    /* 2. already running it: say so once per answer */
    if (a->st.has_current && !strcmp(a->st.current.digest, cy.digest)) {
        report(a, &cy, "installed", PEMN_OK, "", cy.digest);
        remember(a, r.etag, true);
        goto done;
    }

    /* 3. refuse a downgrade before spending bandwidth on it (the manifest is checked again
     *    after the download: a server can lie about the release, not about signed bytes) */
    act = agent_trust_check_announced(a, cy.model, cy.release, &pe);
    if (act == PEMN_OK)
        act = pemn_agent_admit(a, cy.release, cy.digest, &pe);
    if (act == PEMN_OK) {
        report(a, &cy, "downloading", PEMN_OK, "", cy.digest);
        char dest[PATH_MAX];
        act = agent_path(dest, &pe, "%s/download/%s.pemn", a->dir, cy.digest + 7);
        /* only the partial download of this target is worth keeping (docs/AGENT.md, disk) */
        char keep[AGENT_HEX_LEN + 16];
        snprintf(keep, sizeof keep, "%.64s.pemn.part", cy.digest + 7);
        if (!act)
            act = agent_prune_downloads(a->dir, keep, &pe);
        if (!act && a->opts.max_disk) {
            /* what DIR holds (current, previous, this target's partial) plus the new package
             * must fit (docs/AGENT.md, "Limits") */
            uint64_t used = agent_disk_usage(a->dir);
            if (used + res.size > a->opts.max_disk || used + res.size < used)
                act = proto_err(&pe, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                                "the agent directory holds %llu bytes; with this %llu-byte "
                                "package it would pass max_disk (%llu bytes)",
                                (unsigned long long)used, (unsigned long long)res.size,
                                (unsigned long long)a->opts.max_disk);
        }
        if (!act) {
            /* model is checked by the fetch; release by min_release and by the install */
            snprintf(res.model, sizeof res.model, "%s", cy.model);
            memcpy(res.digest, cy.digest, sizeof res.digest);
            struct pemn_fetch_options fo = {
                .min_release =
                    a->opts.allow_downgrade || !a->st.has_current ? 0 : a->st.current.release,
                .flags = PEMN_FETCH_NO_CACHE | (a->opts.no_delta ? PEMN_FETCH_NO_DELTA : 0) |
                         (agent_trust_root_mode(a) ? PEMN_FETCH_SIGNATURES_ONLY : 0),
                .progress = fetch_progress,
                .progress_user = a,
                /* the installed version is the base of a delta (client/delta.c) */
                .base_path = a->st.has_current ? a->current_path : NULL,
            };
            struct pemn_fetch_stats fst;
            memset(&fst, 0, sizeof fst);
            if (!strncmp(res.package_url, "oci://", 6) ||
                !strncmp(res.package_url, "oci+http://", 11)) /* an OCI registry */
                act = agent_fetch_oci(a, &res, dest, &fo, &pe);
            else
                act = pemn_client_fetch(a->client, &res, dest, &fo, &fst, &pe);
            if (!act && !fst.from_cache) {
                cy.delta_used = fst.delta_used;
                cy.bytes_downloaded = fst.bytes_received;
                cy.package_bytes = res.size;
            }
            if (!act) {
                report(a, &cy, "verifying", PEMN_OK, "", cy.digest);
                struct pemn_agent_expect ex = {.model = cy.model, .digest = cy.digest};
                int changed = 0;
                act = pemn_agent_install_file(a, dest, &ex, &changed, &pe);
                cy.changed = changed;
            }
            unlink(dest); /* installed (copied into versions/) or refused: not kept */
        }
    }
verdict:
    if (act == PEMN_ECANCELED) {
        rc = proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "%s", pe.msg);
        goto done;
    }
    cy.result = act;
    if (act) {
        snprintf(cy.reason, sizeof cy.reason, "%s",
                 agent_trust_reason(a)[0] ? agent_trust_reason(a) : pemn_agent_reason(act));
        if (!quiet)
            report(a, &cy, "failed", act, pe.msg, cy.digest);
        if (final_refusal(act))
            remember(a, r.etag, false); /* not again for this answer */
        rc = proto_err(err, act, PEMN_NO_OFFSET, "%s", pe.msg);
    } else {
        report(a, &cy, "installed", PEMN_OK, "", cy.digest);
        remember(a, r.etag, true);
    }
done:
    free(r.body);
    if (out)
        *out = cy;
    return rc;
}
