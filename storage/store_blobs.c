/*
 * storage/store_blobs.c — serving package bytes without pinning a read snapshot, for every
 * backend.
 *
 * A blob is looked up by digest (the backend's blob_find). If it fits the cache's per-item
 * limit it is copied out of the database once (the backend's blob_read) into a refcounted
 * buffer kept in an LRU cache with a byte budget; every later request for it is served from
 * memory, with no database access at all. Larger blobs are streamed: each chunk is an
 * independent short read. Blobs are immutable (content-addressed, never rewritten), so
 * chunks read in different transactions always belong to the same bytes; the cache is
 * therefore safe to keep per process, whatever other replicas do.
 *
 * Entries are refcounted: eviction only unlinks an entry; the last handle frees it.
 *
 * A cached blob lives in a sealed memfd, mapped read-only: the bytes exist once, and the
 * server can hand the descriptor to the kernel (sendfile) instead of copying through a
 * socket buffer; where memfds are unavailable the copy stays in ordinary memory.
 */
#include "storage/store_ops.h"

#include "proto/err.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BC_BUCKETS 1024u

struct bc_entry {
    char digest[PEMN_DIGEST_TEXT_MAX];
    uint8_t *data; /* mmap of fd, or malloc'ed when fd < 0 */
    int fd;
    size_t size;
    unsigned refs; /* handles + 1 while in the cache */
    bool cached;
    struct bc_entry *hnext;               /* hash chain */
    struct bc_entry *lru_prev, *lru_next; /* most recently used at head */
};

struct blob_cache {
    pthread_mutex_t mu;
    size_t budget, used;
    uint64_t items, hits, misses;
    struct bc_entry *head, *tail;
    struct bc_entry *buckets[BC_BUCKETS];
};

struct blob_ref {
    struct store_blob pub; /* first: handles are cast back */
    struct blob_cache *bc;
    struct bc_entry *e; /* NULL when streamed */
    int64_t rowid;
};

static unsigned bc_hash(const char *digest)
{
    /* The digest is already uniformly distributed: use hex after "sha256:". */
    unsigned h = 0;
    for (int i = 7; i < 15 && digest[i]; i++)
        h = h * 16 + (unsigned)(digest[i] <= '9' ? digest[i] - '0' : digest[i] - 'a' + 10);
    return h % BC_BUCKETS;
}

struct blob_cache *blob_cache_new(size_t budget)
{
    struct blob_cache *bc = calloc(1, sizeof *bc);
    if (!bc)
        return NULL;
    pthread_mutex_init(&bc->mu, NULL);
    bc->budget = budget;
    return bc;
}

static void entry_destroy(struct bc_entry *e)
{
    if (e->fd >= 0) {
        if (e->data)
            munmap(e->data, e->size ? e->size : 1);
        close(e->fd);
    } else {
        free(e->data);
    }
    free(e);
}

static void entry_unref_locked(struct bc_entry *e)
{
    if (--e->refs == 0)
        entry_destroy(e);
}

static void lru_unlink(struct blob_cache *bc, struct bc_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        bc->head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        bc->tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct blob_cache *bc, struct bc_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = bc->head;
    if (bc->head)
        bc->head->lru_prev = e;
    bc->head = e;
    if (!bc->tail)
        bc->tail = e;
}

static void evict_locked(struct blob_cache *bc, struct bc_entry *e)
{
    struct bc_entry **pp = &bc->buckets[bc_hash(e->digest)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(bc, e);
    e->cached = false;
    bc->used -= e->size;
    bc->items--;
    entry_unref_locked(e);
}

void blob_cache_free(struct blob_cache *bc)
{
    if (!bc)
        return;
    pthread_mutex_lock(&bc->mu);
    while (bc->tail)
        evict_locked(bc, bc->tail);
    pthread_mutex_unlock(&bc->mu);
    pthread_mutex_destroy(&bc->mu);
    free(bc);
}

void blob_cache_stats(struct blob_cache *bc, struct store_stats *out)
{
    if (!bc)
        return;
    pthread_mutex_lock(&bc->mu);
    out->cache_bytes = bc->used;
    out->cache_items = bc->items;
    out->cache_hits = bc->hits;
    out->cache_misses = bc->misses;
    pthread_mutex_unlock(&bc->mu);
}

/* Finds and references an entry; NULL on miss. */
static struct bc_entry *cache_lookup(struct blob_cache *bc, const char *digest)
{
    pthread_mutex_lock(&bc->mu);
    struct bc_entry *e = bc->buckets[bc_hash(digest)];
    while (e && strcmp(e->digest, digest) != 0)
        e = e->hnext;
    if (e) {
        e->refs++;
        bc->hits++;
        if (bc->head != e) {
            lru_unlink(bc, e);
            lru_push_front(bc, e);
        }
    } else {
        bc->misses++;
    }
    pthread_mutex_unlock(&bc->mu);
    return e;
}

/* Inserts a fresh entry (refs = 1 for the caller), or returns the entry another thread
 * inserted meanwhile (and frees the fresh one). Entries larger than the budget are not
 * cached but still returned (owned by the caller alone). */
static struct bc_entry *cache_insert(struct blob_cache *bc, struct bc_entry *fresh)
{
    pthread_mutex_lock(&bc->mu);
    unsigned h = bc_hash(fresh->digest);
    struct bc_entry *e = bc->buckets[h];
    while (e && strcmp(e->digest, fresh->digest) != 0)
        e = e->hnext;
    if (e) {
        e->refs++;
        pthread_mutex_unlock(&bc->mu);
        entry_destroy(fresh);
        return e;
    }
    fresh->refs = 1;
    if (fresh->size <= bc->budget) {
        while (bc->tail && bc->used + fresh->size > bc->budget)
            evict_locked(bc, bc->tail);
        fresh->refs++;
        fresh->cached = true;
        fresh->hnext = bc->buckets[h];
        bc->buckets[h] = fresh;
        lru_push_front(bc, fresh);
        bc->used += fresh->size;
        bc->items++;
    }
    pthread_mutex_unlock(&bc->mu);
    return fresh;
}

/* ---- handles --------------------------------------------------------------------------- */
void store_blob_release(struct store_blob *b)
{
    if (!b)
        return;
    struct blob_ref *r = (struct blob_ref *)b;
    if (r->e) {
        pthread_mutex_lock(&r->bc->mu);
        entry_unref_locked(r->e);
        pthread_mutex_unlock(&r->bc->mu);
    }
    free(r);
}

/* Copies a whole blob out of the database. */
static pemn_rc read_whole(struct store *st, int64_t ref, uint8_t *dst, size_t size,
                          struct pemn_err *err)
{
    return size ? st->ops->blob_read(st, ref, 0, dst, size, err) : PEMN_OK;
}

/* Reads a blob into a new entry: a sealed memfd mapped read-only when possible. */
static pemn_rc entry_fill(struct store *st, int64_t rowid, struct bc_entry *e, struct pemn_err *err)
{
    size_t sz = e->size, map = sz ? sz : 1;
    e->fd = memfd_create("pemn-blob", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (e->fd >= 0) {
        void *w = ftruncate(e->fd, (off_t)map) == 0
                      ? mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0)
                      : MAP_FAILED;
        if (w != MAP_FAILED) {
            pemn_rc rc = read_whole(st, rowid, w, sz, err);
            munmap(w, map);
            if (rc)
                return rc;
            if (ftruncate(e->fd, (off_t)sz) == 0)
                (void)fcntl(e->fd, F_ADD_SEALS,
                            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
            void *m = mmap(NULL, map, PROT_READ, MAP_SHARED, e->fd, 0);
            if (m != MAP_FAILED && sz) {
                e->data = m;
                return PEMN_OK;
            }
            if (m != MAP_FAILED)
                munmap(m, map);
        }
        close(e->fd);
    }
    /* no memfd (or an empty blob): plain memory */
    e->fd = -1;
    if (!(e->data = malloc(map)))
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    return read_whole(st, rowid, e->data, sz, err);
}

pemn_rc store_blob_get(struct store *st, const char *digest, struct store_blob **out,
                       struct pemn_err *err)
{
    uint8_t d[PEMN_DIGEST_BYTES];
    if (!digest || pemn_digest_parse(digest, d) != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    struct blob_ref *r = calloc(1, sizeof *r);
    if (!r)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_digest_format(d, r->pub.digest);
    r->bc = st->cache;

    r->pub.fd = -1;
    if (st->cache && (r->e = cache_lookup(st->cache, r->pub.digest))) {
        r->pub.data = r->e->data;
        r->pub.fd = r->e->fd;
        r->pub.size = r->e->size;
        *out = &r->pub;
        return PEMN_OK;
    }

    pemn_rc rc = st->ops->blob_find(st, r->pub.digest, &r->pub.size, &r->rowid, err);
    if (!rc && st->cache && r->pub.size <= st->opts.cache_item_max &&
        r->pub.size <= st->opts.cache_bytes && r->pub.size < (uint64_t)INT32_MAX) {
        struct bc_entry *e = calloc(1, sizeof *e);
        size_t sz = (size_t)r->pub.size;
        if (!e) {
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        } else {
            memcpy(e->digest, r->pub.digest, sizeof e->digest);
            e->size = sz;
            rc = entry_fill(st, r->rowid, e, err);
            if (rc) {
                entry_destroy(e);
            } else {
                r->e = cache_insert(st->cache, e);
                r->pub.data = r->e->data;
                r->pub.fd = r->e->fd;
            }
        }
    }
    if (rc) {
        free(r);
        return rc;
    }
    *out = &r->pub;
    return PEMN_OK;
}

pemn_rc store_blob_read(struct store *st, const struct store_blob *b, uint64_t offset, void *buf,
                        size_t n, struct pemn_err *err)
{
    if (!b || offset > b->size || n > b->size - offset || n > (size_t)INT32_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "read past the end of a blob");
    if (b->data) {
        memcpy(buf, b->data + offset, n);
        return PEMN_OK;
    }
    if (!n)
        return PEMN_OK;
    const struct blob_ref *r = (const struct blob_ref *)b;
    return st->ops->blob_read(st, r->rowid, offset, buf, n, err);
}
