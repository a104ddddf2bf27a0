/*
 * storage/store_verify.c — checking stored bytes against their digest (store_verify.h), for
 * every backend: the set of digests verified since open, hashing a stored blob in short
 * chunked reads (the backend's blob_read), and the scrub that walks every blob (the
 * backend's blob_next) at a bounded rate.
 */
#include "storage/store_ops.h"
#include "storage/store_verify.h"

#include "proto/err.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VS_BUCKETS 4096u
#define HASH_CHUNK (1u << 20)

struct vs_node {
    uint8_t d[PEMN_DIGEST_BYTES];
    struct vs_node *next;
};

struct verified_set {
    pthread_mutex_t mu;
    size_t n;
    struct vs_node *buckets[VS_BUCKETS];
};

struct verified_set *store_verified_new(void)
{
    struct verified_set *v = calloc(1, sizeof *v);
    if (v)
        pthread_mutex_init(&v->mu, NULL);
    return v;
}

void store_verified_free(struct verified_set *v)
{
    if (!v)
        return;
    for (unsigned i = 0; i < VS_BUCKETS; i++)
        for (struct vs_node *n = v->buckets[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    pthread_mutex_destroy(&v->mu);
    free(v);
}

static unsigned vs_hash(const uint8_t d[PEMN_DIGEST_BYTES])
{
    return ((unsigned)d[0] << 8 | d[1]) % VS_BUCKETS; /* digests are uniform already */
}

bool store_verified_has(struct store *st, const uint8_t d[PEMN_DIGEST_BYTES])
{
    struct verified_set *v = st->verified;
    if (!v)
        return false;
    pthread_mutex_lock(&v->mu);
    struct vs_node *n = v->buckets[vs_hash(d)];
    while (n && memcmp(n->d, d, PEMN_DIGEST_BYTES) != 0)
        n = n->next;
    pthread_mutex_unlock(&v->mu);
    return n != NULL;
}

void store_verified_add(struct store *st, const uint8_t d[PEMN_DIGEST_BYTES])
{
    struct verified_set *v = st->verified;
    if (!v || store_verified_has(st, d))
        return;
    struct vs_node *nn = malloc(sizeof *nn);
    if (!nn)
        return; /* not remembered: verified again next time */
    memcpy(nn->d, d, PEMN_DIGEST_BYTES);
    pthread_mutex_lock(&v->mu);
    if (v->n >= STORE_VERIFIED_MAX) {
        pthread_mutex_unlock(&v->mu);
        free(nn);
        return;
    }
    unsigned h = vs_hash(d);
    nn->next = v->buckets[h];
    v->buckets[h] = nn;
    v->n++;
    pthread_mutex_unlock(&v->mu);
}

bool store_verify_known(struct store *st, const char *digest)
{
    uint8_t d[PEMN_DIGEST_BYTES];
    return digest && pemn_digest_parse(digest, d) == PEMN_OK && store_verified_has(st, d);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sleeps until `until` (monotonic seconds), in slices, returning early when *stop is set. */
static void pace(double until, const atomic_bool *stop)
{
    for (;;) {
        double left = until - now_s();
        if (left <= 0 || (stop && atomic_load(stop)))
            return;
        if (left > 0.1)
            left = 0.1;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

pemn_rc store_hash_blob(struct store *st, int64_t ref, uint64_t size, uint64_t rate,
                        const atomic_bool *stop, uint8_t out[PEMN_DIGEST_BYTES],
                        struct pemn_err *err)
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    uint8_t *buf = malloc(size < HASH_CHUNK ? (size ? (size_t)size : 1) : HASH_CHUNK);
    if (!buf)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = PEMN_OK;
    double t0 = now_s();
    for (uint64_t off = 0; off < size && !rc;) {
        if (stop && atomic_load(stop)) {
            rc = proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "stopped");
            break;
        }
        size_t n = size - off < HASH_CHUNK ? (size_t)(size - off) : HASH_CHUNK;
        /* one short read per chunk: no snapshot pinned */
        if ((rc = st->ops->blob_read(st, ref, off, buf, n, err)))
            break;
        crypto_hash_sha256_update(&h, buf, n);
        off += n;
        if (rate)
            pace(t0 + (double)off / (double)rate, stop);
    }
    free(buf);
    if (!rc)
        crypto_hash_sha256_final(&h, out);
    return rc;
}

/* Hashes one row and compares. PEMN_EDIGEST with a message on a mismatch. */
static pemn_rc check_row(struct store *st, int64_t rowid, const char *digest, uint64_t size,
                         uint64_t stored_len, uint64_t rate, const atomic_bool *stop,
                         struct pemn_err *err)
{
    uint8_t want[PEMN_DIGEST_BYTES], got[PEMN_DIGEST_BYTES];
    if (pemn_digest_parse(digest, want) != PEMN_OK)
        return proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET, "blob row %lld has a malformed digest",
                         (long long)rowid);
    if (stored_len != size)
        return proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                         "blob %s: %llu bytes stored, %llu recorded", digest,
                         (unsigned long long)stored_len, (unsigned long long)size);
    pemn_rc rc = store_hash_blob(st, rowid, size, rate, stop, got, err);
    if (rc)
        return rc;
    if (sodium_memcmp(want, got, PEMN_DIGEST_BYTES) != 0)
        return proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                         "blob %s: the stored bytes do not hash to their digest", digest);
    store_verified_add(st, want);
    return PEMN_OK;
}

pemn_rc store_verify_blob(struct store *st, const char *digest, struct pemn_err *err)
{
    uint8_t d[PEMN_DIGEST_BYTES];
    char canon[PEMN_DIGEST_TEXT_MAX];
    if (!digest || pemn_digest_parse(digest, d) != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    pemn_digest_format(d, canon);
    int64_t ref = 0;
    uint64_t size = 0;
    /* blob_find itself answers PEMN_EDIGEST when the stored length is not the size */
    pemn_rc rc = st->ops->blob_find(st, canon, &size, &ref, err);
    if (rc)
        return rc;
    return check_row(st, ref, canon, size, size, 0, NULL, err);
}

pemn_rc store_scrub(struct store *st, uint64_t rate_bytes_per_s, const atomic_bool *stop,
                    store_scrub_cb cb, void *ctx, struct store_scrub_stats *stats,
                    struct pemn_err *err)
{
    struct store_scrub_stats local = {0};
    struct store_scrub_stats *sx = stats ? stats : &local;
    memset(sx, 0, sizeof *sx);
    if (!st->ops->verify)
        return store_unsupported(st, "scrub", err);
    int64_t last = -1;
    for (;;) {
        if (stop && atomic_load(stop))
            return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "scrub stopped");
        char digest[PEMN_DIGEST_TEXT_MAX] = "";
        uint64_t size = 0, len = 0;
        int64_t ref = 0;
        pemn_rc rc = st->ops->verify->blob_next(st, last, &ref, digest, &size, &len, err);
        if (rc == PEMN_ENOTFOUND)
            return PEMN_OK;
        if (rc)
            return rc;
        last = ref;
        struct pemn_err e = {0};
        rc = check_row(st, ref, digest, size, len, rate_bytes_per_s, stop, &e);
        sx->blobs++;
        if (rc == PEMN_ECANCELED)
            return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "scrub stopped");
        if (!rc || rc == PEMN_EDIGEST)
            sx->bytes += size;
        if (rc == PEMN_EDIGEST)
            sx->bad++;
        else if (rc)
            sx->unreadable++;
        if (rc && cb && cb(ctx, digest, size, rc, e.msg[0] ? e.msg : pemn_strerror(rc)))
            return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "scrub stopped");
    }
}
