/*
 * server/srv_respcache.c — ready-made responses for whole packages.
 *
 * A package's bytes never change (content-addressed), so the complete 200 response for a
 * blob — body, ETag, Cache-Control, Content-Type — can be built once and queued again on
 * every request for it; libmicrohttpd responses are reference-counted and may be queued on
 * any number of connections at once. This takes header building, allocation and blob
 * lookup off the hot path; with `sendfile` the body goes from the blob's memfd to the socket
 * without a copy.
 *
 * The cache pins the bytes its responses point at, so it has its own byte budget (a quarter
 * of cache_size) and evicts least recently used entries; an evicted response lives on until
 * the last connection sending it is done.
 */
#include "server/srv_respcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RC_SLOTS 512u

struct rc_entry {
    char key[PEMN_DIGEST_TEXT_MAX + 1]; /* digest + 'i' (immutable) or 'n' */
    struct MHD_Response *resp;
    uint64_t size;
    uint64_t used; /* LRU clock */
};

struct srv_respcache {
    pthread_mutex_t mu;
    uint64_t budget, pinned, clock;
    struct rc_entry slots[RC_SLOTS];
};

struct srv_respcache *srv_respcache_new(uint64_t budget)
{
    struct srv_respcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->budget = budget;
    return c;
}

void srv_respcache_free(struct srv_respcache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < RC_SLOTS; i++)
        if (c->slots[i].resp)
            MHD_destroy_response(c->slots[i].resp);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void make_key(char key[PEMN_DIGEST_TEXT_MAX + 1], const char *digest, bool immutable)
{
    size_t n = strnlen(digest, PEMN_DIGEST_TEXT_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        char ch = digest[i];
        key[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
    }
    key[n] = immutable ? 'i' : 'n';
    key[n + 1] = '\0';
}

static unsigned slot_of(const char *key)
{
    unsigned h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % RC_SLOTS;
}

bool srv_respcache_queue(struct srv_respcache *c, struct MHD_Connection *conn, const char *digest,
                         bool immutable, uint64_t *size)
{
    if (!c)
        return false;
    char key[PEMN_DIGEST_TEXT_MAX + 1];
    make_key(key, digest, immutable);
    struct rc_entry *e = &c->slots[slot_of(key)];
    bool ok = false;
    pthread_mutex_lock(&c->mu);
    if (e->resp && strcmp(e->key, key) == 0) {
        /* queued under the lock: the entry cannot be destroyed in between */
        ok = MHD_queue_response(conn, MHD_HTTP_OK, e->resp) == MHD_YES;
        if (ok) {
            e->used = ++c->clock;
            *size = e->size;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void srv_respcache_put(struct srv_respcache *c, const char *digest, bool immutable,
                       struct MHD_Response *resp, uint64_t size)
{
    if (!c || size > c->budget) {
        MHD_destroy_response(resp);
        return;
    }
    char key[PEMN_DIGEST_TEXT_MAX + 1];
    make_key(key, digest, immutable);
    struct rc_entry *e = &c->slots[slot_of(key)];
    struct MHD_Response *drop[RC_SLOTS + 1];
    unsigned n_drop = 0;
    pthread_mutex_lock(&c->mu);
    if (e->resp) { /* the slot's previous tenant (or a racing twin) goes */
        drop[n_drop++] = e->resp;
        c->pinned -= e->size;
        e->resp = NULL;
    }
    while (c->pinned + size > c->budget) { /* least recently used first */
        struct rc_entry *old = NULL;
        for (unsigned i = 0; i < RC_SLOTS; i++)
            if (c->slots[i].resp && (!old || c->slots[i].used < old->used))
                old = &c->slots[i];
        if (!old)
            break;
        drop[n_drop++] = old->resp;
        c->pinned -= old->size;
        old->resp = NULL;
    }
    memcpy(e->key, key, sizeof key);
    e->resp = resp;
    e->size = size;
    e->used = ++c->clock;
    c->pinned += size;
    pthread_mutex_unlock(&c->mu);
    for (unsigned i = 0; i < n_drop; i++)
        MHD_destroy_response(drop[i]);
}
