/*
 * storage/sqlite_verify.c — checking stored bytes against their digest (store_verify.h):
 * the set of digests verified since open, hashing a stored blob in short chunked reads, and
 * the scrub that walks every blob at a bounded rate.
 */
#include "storage/sqlite_int.h"
#include "storage/store_verify.h"

#include "proto/err.h"

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

struct verified_set *sq_verified_new(void)
{
    struct verified_set *v = calloc(1, sizeof *v);
    if (v)
        pthread_mutex_init(&v->mu, NULL);
    return v;
}

void sq_verified_free(struct verified_set *v)
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

bool sq_verified_has(struct verified_set *v, const uint8_t d[PEMN_DIGEST_BYTES])
{
    if (!v)
        return false;
    pthread_mutex_lock(&v->mu);
    struct vs_node *n = v->buckets[vs_hash(d)];
    while (n && memcmp(n->d, d, PEMN_DIGEST_BYTES) != 0)
        n = n->next;
    pthread_mutex_unlock(&v->mu);
    return n != NULL;
}

void sq_verified_add(struct verified_set *v, const uint8_t d[PEMN_DIGEST_BYTES])
{
    if (!v || sq_verified_has(v, d))
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
    return digest && pemn_digest_parse(digest, d) == PEMN_OK && sq_verified_has(st->verified, d);
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

pemn_rc sq_hash_blob(struct store *st, int64_t rowid, uint64_t size, uint64_t rate,
                     const atomic_bool *stop, uint8_t out[PEMN_DIGEST_BYTES], struct pemn_err *err)
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
        struct sq_conn *c;
        if ((rc = sq_acquire(st, &c, err)))
            break;
        sqlite3_blob *bh = NULL; /* one short read per chunk: no snapshot pinned */
        if (sqlite3_blob_open(c->db, "main", "blobs", "data", rowid, 0, &bh) != SQLITE_OK)
            rc = sq_fail(c, err, "opening a blob");
        else if (sqlite3_blob_read(bh, buf, (int)n, (int)off) != SQLITE_OK)
            rc = sq_fail(c, err, "reading a blob");
        sqlite3_blob_close(bh);
        sq_release(st, c);
        if (rc)
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
    pemn_rc rc = sq_hash_blob(st, rowid, size, rate, stop, got, err);
    if (rc)
        return rc;
    if (sodium_memcmp(want, got, PEMN_DIGEST_BYTES) != 0)
        return proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET,
                         "blob %s: the stored bytes do not hash to their digest", digest);
    sq_verified_add(st->verified, want);
    return PEMN_OK;
}

pemn_rc store_verify_blob(struct store *st, const char *digest, struct pemn_err *err)
{
    static const char sql[] = "SELECT id, size, length(data) FROM blobs WHERE digest = ?1";
    uint8_t d[PEMN_DIGEST_BYTES];
    char canon[PEMN_DIGEST_TEXT_MAX];
    if (!digest || pemn_digest_parse(digest, d) != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    pemn_digest_format(d, canon);
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, canon, -1, SQLITE_STATIC);
    int64_t rowid = 0;
    uint64_t size = 0, len = 0;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        rowid = sqlite3_column_int64(s, 0);
        size = (uint64_t)sqlite3_column_int64(s, 1);
        len = (uint64_t)sqlite3_column_int64(s, 2);
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no blob %s", canon);
    } else {
        rc = sq_fail(c, err, "looking up a blob");
    }
    sq_done(s);
    sq_release(st, c);
    if (rc)
        return rc;
    return check_row(st, rowid, canon, size, len, 0, NULL, err);
}

pemn_rc store_scrub(struct store *st, uint64_t rate_bytes_per_s, const atomic_bool *stop,
                    store_scrub_cb cb, void *ctx, struct store_scrub_stats *stats,
                    struct pemn_err *err)
{
    static const char sql[] = "SELECT id, digest, size, length(data) FROM blobs WHERE id > ?1 "
                              "ORDER BY id LIMIT 1";
    struct store_scrub_stats local = {0};
    struct store_scrub_stats *sx = stats ? stats : &local;
    memset(sx, 0, sizeof *sx);
    int64_t last = -1;
    for (;;) {
        if (stop && atomic_load(stop))
            return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "scrub stopped");
        struct sq_conn *c;
        sqlite3_stmt *s;
        pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
        if (rc)
            return rc;
        sqlite3_bind_int64(s, 1, last);
        char digest[PEMN_DIGEST_TEXT_MAX] = "";
        uint64_t size = 0, len = 0;
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            last = sqlite3_column_int64(s, 0);
            sq_col_text(s, 1, digest, sizeof digest);
            size = (uint64_t)sqlite3_column_int64(s, 2);
            len = (uint64_t)sqlite3_column_int64(s, 3);
        } else if (r != SQLITE_DONE) {
            rc = sq_fail(c, err, "listing blobs");
        }
        sq_done(s);
        sq_release(st, c);
        if (rc)
            return rc;
        if (r == SQLITE_DONE)
            return PEMN_OK;
        struct pemn_err e = {0};
        rc = check_row(st, last, digest, size, len, rate_bytes_per_s, stop, &e);
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
