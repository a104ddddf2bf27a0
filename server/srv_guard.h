/*
 * server/srv_guard.h — request-head deadline and minimum body rate for every connection
 * (srv_guard.c explains how). Thread-safety: all functions may be called from MHD's threads.
 */
#ifndef PEMN_SERVER_SRV_GUARD_H
#define PEMN_SERVER_SRV_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_guard;

/* Starts the reaper thread. min_rate 0: no body rate. NULL on failure. */
struct srv_guard *srv_guard_new(uint64_t header_timeout_s, uint64_t min_rate, uint64_t window_s);
/* Stops the thread (after MHD has stopped). NULL is a no-op. */
void srv_guard_free(struct srv_guard *g);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the guard). */
void srv_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
/* The request head is complete (the access handler's first call). */
void srv_guard_head_done(struct srv_guard *g, struct MHD_Connection *conn, bool has_body);
/* n body bytes arrived. */
void srv_guard_body(struct srv_guard *g, struct MHD_Connection *conn, size_t n);
/* The body is complete: the request is being answered. */
void srv_guard_busy(struct srv_guard *g, struct MHD_Connection *conn);
/* The request ended: the next head's deadline starts now. */
void srv_guard_request_done(struct srv_guard *g, struct MHD_Connection *conn);
/* Connections closed for a slow head / a slow body. */
void srv_guard_counts(struct srv_guard *g, uint64_t *head, uint64_t *body);

#endif
