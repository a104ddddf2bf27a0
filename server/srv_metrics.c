/*
 * server/srv_metrics.c — counters for GET /metrics (Prometheus text format 0.0.4).
 * Lock-free: relaxed atomic increments on fixed arrays sized at start-up.
 */
#include "server/srv.h"

#include "server/srv_delta.h"
#include "server/srv_guard.h"
#include "storage/store_verify.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned statuses[] = {0,   200, 201, 204, 206, 304, 400, 401, 403, 404,
                                    405, 409, 413, 414, 416, 429, 500, 503, 507};
#define N_STATUS (sizeof statuses / sizeof statuses[0] + 1) /* + "other" */

static const char *const reasons[] = {
    "corrupt",           "name_mismatch", "bad_signature", "untrusted", "conflict",
    "release_not_newer", "too_large",     "unauthorized",  "forbidden", "internal"};
#define N_REASONS (sizeof reasons / sizeof reasons[0])

struct route_counters {
    atomic_ullong by_status[N_STATUS];
    atomic_ullong micros; /* total duration */
};

struct srv_metrics {
    size_t n_routes;
    struct route_counters *routes; /* n_routes + 1 ("unmatched") */
    atomic_ullong bytes_served;
    atomic_ullong push_accepted, push_bytes;
    atomic_ullong rejected[N_REASONS];
    atomic_ullong corrupt_served, corrupt_scrub; /* integrity failures found */
    atomic_ullong scrub_runs, scrub_blobs, scrub_bytes;
};

struct srv_metrics *srv_metrics_new(size_t n_routes)
{
    struct srv_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_routes = n_routes;
    m->routes = calloc(n_routes + 1, sizeof *m->routes);
    if (!m->routes) {
        free(m);
        return NULL;
    }
    return m;
}

void srv_metrics_free(struct srv_metrics *m)
{
    if (!m)
        return;
    free(m->routes);
    free(m);
}

static size_t status_index(unsigned st)
{
    for (size_t i = 0; i < N_STATUS - 1; i++)
        if (statuses[i] == st)
            return i;
    return N_STATUS - 1;
}

void srv_metrics_request(struct srv_metrics *m, int route_index, unsigned status, uint64_t bytes,
                         double seconds)
{
    size_t ri =
        route_index < 0 || (size_t)route_index >= m->n_routes ? m->n_routes : (size_t)route_index;
    struct route_counters *rc = &m->routes[ri];
    atomic_fetch_add_explicit(&rc->by_status[status_index(status)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rc->micros, (unsigned long long)(seconds * 1e6),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_served, bytes, memory_order_relaxed);
}

void srv_metrics_push_rejected(struct srv_metrics *m, const char *code)
{
    for (size_t i = 0; i < N_REASONS; i++)
        if (strcmp(code, reasons[i]) == 0) {
            atomic_fetch_add_explicit(&m->rejected[i], 1, memory_order_relaxed);
            return;
        }
}

void srv_metrics_push_accepted(struct srv_metrics *m, uint64_t bytes)
{
    atomic_fetch_add_explicit(&m->push_accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->push_bytes, bytes, memory_order_relaxed);
}

void srv_metrics_blob_corrupt(struct srv_metrics *m, bool scrub)
{
    atomic_fetch_add_explicit(scrub ? &m->corrupt_scrub : &m->corrupt_served, 1,
                              memory_order_relaxed);
}

void srv_metrics_scrub_done(struct srv_metrics *m, const struct store_scrub_stats *sx,
                            bool completed)
{
    if (completed)
        atomic_fetch_add_explicit(&m->scrub_runs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->scrub_blobs, sx->blobs, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->scrub_bytes, sx->bytes, memory_order_relaxed);
}

/* A bounded text builder. */
struct tb {
    char *p;
    size_t len, cap;
    bool fail;
};

__attribute__((format(printf, 2, 3))) static void tb_add(struct tb *t, const char *fmt, ...)
{
    if (t->fail)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->fail = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2;
        if (cap > (16u << 20)) {
            t->fail = true;
            return;
        }
        char *np = realloc(t->p, cap);
        if (!np) {
            t->fail = true;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

static void tb_text(void *ctx, const char *text)
{
    tb_add(ctx, "%s", text);
}

char *srv_metrics_render(struct srv *s, size_t *len)
{
    struct srv_metrics *m = srv_get_metrics(s);
    struct tb t = {.p = malloc(16384), .cap = 16384};
    if (!t.p)
        return NULL;
    t.p[0] = '\0';
    tb_add(&t, "# HELP pemnd_requests_total HTTP requests by route and status.\n"
               "# TYPE pemnd_requests_total counter\n");
    for (size_t i = 0; i <= m->n_routes; i++) {
        const struct srv_route *rt = i < m->n_routes ? srv_route_at(i) : NULL;
        const char *name = rt ? rt->name : "unmatched";
        for (size_t k = 0; k < N_STATUS; k++) {
            unsigned long long v =
                atomic_load_explicit(&m->routes[i].by_status[k], memory_order_relaxed);
            if (!v)
                continue;
            if (k == N_STATUS - 1)
                tb_add(&t, "pemnd_requests_total{route=\"%s\",status=\"other\"} %llu\n", name, v);
            else
                tb_add(&t, "pemnd_requests_total{route=\"%s\",status=\"%u\"} %llu\n", name,
                       statuses[k], v);
        }
    }
    tb_add(&t, "# HELP pemnd_request_duration_seconds_sum Time spent in requests by route.\n"
               "# TYPE pemnd_request_duration_seconds_sum counter\n");
    for (size_t i = 0; i <= m->n_routes; i++) {
        unsigned long long us = atomic_load_explicit(&m->routes[i].micros, memory_order_relaxed);
        if (!us)
            continue;
        const struct srv_route *rt = i < m->n_routes ? srv_route_at(i) : NULL;
        tb_add(&t, "pemnd_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
               rt ? rt->name : "unmatched", (double)us / 1e6);
    }
    tb_add(&t,
           "# HELP pemnd_bytes_served_total Response body bytes sent.\n"
           "# TYPE pemnd_bytes_served_total counter\npemnd_bytes_served_total %llu\n",
           (unsigned long long)atomic_load(&m->bytes_served));
    tb_add(&t,
           "# HELP pemnd_pushes_total Packages stored by push.\n"
           "# TYPE pemnd_pushes_total counter\npemnd_pushes_total %llu\n"
           "# HELP pemnd_push_bytes_total Bytes of packages stored by push.\n"
           "# TYPE pemnd_push_bytes_total counter\npemnd_push_bytes_total %llu\n",
           (unsigned long long)atomic_load(&m->push_accepted),
           (unsigned long long)atomic_load(&m->push_bytes));
    tb_add(&t, "# HELP pemnd_push_rejections_total Refused pushes by reason.\n"
               "# TYPE pemnd_push_rejections_total counter\n");
    for (size_t i = 0; i < N_REASONS; i++)
        tb_add(&t, "pemnd_push_rejections_total{reason=\"%s\"} %llu\n", reasons[i],
               (unsigned long long)atomic_load(&m->rejected[i]));
    tb_add(&t,
           "# HELP pemnd_blob_integrity_failures_total Stored blobs whose bytes do not hash to "
           "their digest, by where they were found.\n"
           "# TYPE pemnd_blob_integrity_failures_total counter\n"
           "pemnd_blob_integrity_failures_total{found=\"serving\"} %llu\n"
           "pemnd_blob_integrity_failures_total{found=\"scrub\"} %llu\n"
           "# HELP pemnd_scrubs_total Completed background scrubs.\n"
           "# TYPE pemnd_scrubs_total counter\npemnd_scrubs_total %llu\n"
           "# HELP pemnd_scrub_blobs_total Blobs checked by background scrubs.\n"
           "# TYPE pemnd_scrub_blobs_total counter\npemnd_scrub_blobs_total %llu\n"
           "# HELP pemnd_scrub_bytes_total Bytes hashed by background scrubs.\n"
           "# TYPE pemnd_scrub_bytes_total counter\npemnd_scrub_bytes_total %llu\n",
           (unsigned long long)atomic_load(&m->corrupt_served),
           (unsigned long long)atomic_load(&m->corrupt_scrub),
           (unsigned long long)atomic_load(&m->scrub_runs),
           (unsigned long long)atomic_load(&m->scrub_blobs),
           (unsigned long long)atomic_load(&m->scrub_bytes));
    tb_add(&t,
           "# HELP pemnd_upload_memory_bytes Memory held by request body buffers.\n"
           "# TYPE pemnd_upload_memory_bytes gauge\npemnd_upload_memory_bytes %llu\n"
           "# HELP pemnd_upload_spilled_bytes Request body bytes spooled to tmp_dir now.\n"
           "# TYPE pemnd_upload_spilled_bytes gauge\npemnd_upload_spilled_bytes %llu\n",
           (unsigned long long)srv_uploads_memory(srv_get_uploads(s)),
           (unsigned long long)srv_uploads_spilled(srv_get_uploads(s)));
    uint64_t slow_head, slow_body;
    srv_guard_counts(srv_get_guard(s), &slow_head, &slow_body);
    tb_add(&t,
           "# HELP pemnd_slow_clients_closed_total Connections closed for a request head not "
           "complete in header_timeout, or a body below body_min_rate.\n"
           "# TYPE pemnd_slow_clients_closed_total counter\n"
           "pemnd_slow_clients_closed_total{reason=\"head\"} %llu\n"
           "pemnd_slow_clients_closed_total{reason=\"body\"} %llu\n",
           (unsigned long long)slow_head, (unsigned long long)slow_body);
    srv_delta_metrics(tb_text, &t);
    struct store_stats st;
    if (store_stats(srv_store(s), &st, NULL) == PEMN_OK) {
        tb_add(&t,
               "# HELP pemnd_packages_stored Versions (packages) in the registry.\n"
               "# TYPE pemnd_packages_stored gauge\npemnd_packages_stored %llu\n"
               "# HELP pemnd_models_stored Models in the registry.\n"
               "# TYPE pemnd_models_stored gauge\npemnd_models_stored %llu\n"
               "# HELP pemnd_blob_bytes_stored Bytes of distinct package blobs.\n"
               "# TYPE pemnd_blob_bytes_stored gauge\npemnd_blob_bytes_stored %llu\n"
               "# HELP pemnd_cache_bytes Package bytes held in the memory cache.\n"
               "# TYPE pemnd_cache_bytes gauge\npemnd_cache_bytes %llu\n"
               "# HELP pemnd_cache_hits_total Package reads served from the cache.\n"
               "# TYPE pemnd_cache_hits_total counter\npemnd_cache_hits_total %llu\n"
               "# HELP pemnd_cache_misses_total Package reads that went to the database.\n"
               "# TYPE pemnd_cache_misses_total counter\npemnd_cache_misses_total %llu\n",
               (unsigned long long)st.versions, (unsigned long long)st.models,
               (unsigned long long)st.blob_bytes, (unsigned long long)st.cache_bytes,
               (unsigned long long)st.cache_hits, (unsigned long long)st.cache_misses);
    }
    if (t.fail) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}
