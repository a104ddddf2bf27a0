/*
 * server/srv_respcache.h — reusable complete responses for package bytes (see the .c).
 * Thread-safe.
 */
#ifndef PEMN_SERVER_SRV_RESPCACHE_H
#define PEMN_SERVER_SRV_RESPCACHE_H

#include <microhttpd.h>
#include <pemn/common.h>
#include <stdbool.h>
#include <stdint.h>

struct srv_respcache;

/* budget: bytes of package data the cached responses may pin. */
struct srv_respcache *srv_respcache_new(uint64_t budget);
/* Destroys the cache's references (responses in flight finish). NULL is a no-op. */
void srv_respcache_free(struct srv_respcache *c);
/* Queues the cached 200 response for digest (case-insensitive) on conn. Returns false when
 * there is none (nothing queued). *size receives the body size. */
bool srv_respcache_queue(struct srv_respcache *c, struct MHD_Connection *conn, const char *digest,
                         bool immutable, uint64_t *size);
/* Adds a complete 200 response (the cache takes the caller's reference). */
void srv_respcache_put(struct srv_respcache *c, const char *digest, bool immutable,
                       struct MHD_Response *resp, uint64_t size);

#endif
