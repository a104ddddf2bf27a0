/*
 * server/srv_delta.h — package deltas served by pemnd (srv_routes_delta.c).
 */
#ifndef PEMN_SERVER_SRV_DELTA_H
#define PEMN_SERVER_SRV_DELTA_H

#include "server/srv.h"

/* GET|HEAD /v1/blobs/{digest}/delta?from={old} */
extern const struct srv_route srv_routes_delta[];

/* The delta metrics in Prometheus text, handed to add (process-wide counters). */
void srv_delta_metrics(void (*add)(void *ctx, const char *text), void *ctx);

/* The optional "transfer" object of a device report (docs/API.md "Fleets"):
 *   {"bytes": N, "delta": true|false, "package_size": N}
 * the bytes the device downloaded for its update, whether a delta was used, and the size of
 * the package it installed. */
struct srv_delta_transfer {
    bool present, delta;
    uint64_t bytes, package_size;
};
/* Fills out from j (NULL or JSON null: not present). Returns NULL, or why j is malformed. */
const char *srv_delta_transfer_parse(const json_t *j, struct srv_delta_transfer *out);
/* Counts an installed update in the fleet transfer metrics (nothing when !present). */
void srv_delta_transfer_count(const struct srv_delta_transfer *t);

#endif
