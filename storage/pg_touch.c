/*
 * storage/pg_touch.c — the device last_seen refreshes of one replica, batched.
 *
 * A poll that owes its device a last_seen refresh queues (device, database time) here
 * instead of committing an UPDATE of its own; a background thread writes the queue once a
 * second (or at TOUCH_BATCH entries) in one statement that locks the rows in id order and
 * never moves a last_seen backwards. 100,000 devices polling every minute then cost one
 * commit per second per replica, not 1,700. A failed batch loses only refreshes (the next
 * polls queue them again); when the queue is full a poll touches synchronously.
 */
#include "storage/pg_int.h"

#include "proto/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct touch_item {
    char id[STORE_LABEL_MAX];
    int64_t ts;
};

struct pg_touch {
    pthread_mutex_t mu;  /* guards the queue */
    pthread_mutex_t wmu; /* held while a batch is written: a flush waits for one in flight */
    pthread_cond_t cv;
    pthread_t th;
    bool running, stop;
    struct store *st;
    struct touch_item *items;
    size_t n, cap;
};

#define TOUCH_MAX 65536 /* pending touches per replica; beyond, polls touch synchronously */
#define TOUCH_BATCH 4096

bool pg_touch_enqueue(struct store *st, const char *id, int64_t ts)
{
    struct pg_store *q = st->be;
    struct pg_touch *t = q->touch;
    if (!t)
        return false;
    bool ok = false;
    pthread_mutex_lock(&t->mu);
    if (t->running && t->n < TOUCH_MAX) {
        if (t->n == t->cap) {
            size_t nc = t->cap ? t->cap * 2 : 256;
            void *np = realloc(t->items, nc * sizeof *t->items);
            if (np) {
                t->items = np;
                t->cap = nc;
            }
        }
        if (t->n < t->cap) {
            snprintf(t->items[t->n].id, sizeof t->items[t->n].id, "%s", id);
            t->items[t->n].ts = ts;
            t->n++;
            ok = true;
            if (t->n >= TOUCH_BATCH)
                pthread_cond_signal(&t->cv);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

struct flush_ctx {
    char *ids, *tss;
};

static pemn_rc flush_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    /* rows locked in id order so two replicas' batches do not deadlock; never moves a
     * last_seen backwards */
    static const char sql[] =
        "WITH v AS (SELECT u.id, max(u.ts) AS ts FROM unnest($1::text[], $2::bigint[])"
        " AS u(id, ts) GROUP BY u.id),"
        " l AS (SELECT d.id FROM devices d JOIN v ON v.id = d.id ORDER BY d.id FOR UPDATE OF d)"
        " UPDATE devices d SET last_seen = v.ts FROM v, l"
        " WHERE d.id = v.id AND l.id = d.id AND d.last_seen < v.ts";
    struct flush_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->ids);
    pg_p_text(&p, x->tss);
    return pg_cmd(c, sql, &p, "touching devices", err);
}

/* Writes n touches in one statement (array literals; ids are [A-Za-z0-9._-] but quoted and
 * escaped anyway). */
static void touch_write(struct store *st, const struct touch_item *it, size_t n)
{
    if (!n)
        return;
    size_t cap_ids = n * (2 * STORE_LABEL_MAX + 3) + 3, cap_ts = n * 22 + 3;
    char *ids = malloc(cap_ids), *tss = malloc(cap_ts);
    if (ids && tss) {
        size_t a = 0, b = 0;
        ids[a++] = '{';
        tss[b++] = '{';
        for (size_t i = 0; i < n; i++) {
            if (i) {
                ids[a++] = ',';
                tss[b++] = ',';
            }
            ids[a++] = '"';
            for (const char *s = it[i].id; *s; s++) {
                if (*s == '"' || *s == '\\')
                    ids[a++] = '\\';
                ids[a++] = *s;
            }
            ids[a++] = '"';
            b += (size_t)snprintf(tss + b, cap_ts - b, "%lld", (long long)it[i].ts);
        }
        ids[a++] = '}';
        ids[a] = '\0';
        tss[b++] = '}';
        tss[b] = '\0';
        struct flush_ctx x = {ids, tss};
        /* a failure loses only last_seen refreshes: the next polls queue them again */
        (void)pg_run(st, PG_WRITE, flush_body, &x, NULL);
    }
    free(ids);
    free(tss);
}

/* Takes the queue (under the lock) and writes it. */
static void touch_drain(struct pg_touch *t)
{
    pthread_mutex_lock(&t->wmu);
    pthread_mutex_lock(&t->mu);
    struct touch_item *items = t->items;
    size_t n = t->n;
    t->items = NULL;
    t->n = t->cap = 0;
    pthread_mutex_unlock(&t->mu);
    touch_write(t->st, items, n);
    pthread_mutex_unlock(&t->wmu);
    free(items);
}

static void *touch_main(void *arg)
{
    struct pg_touch *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (!t->stop && t->n < TOUCH_BATCH &&
               pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT) {
        }
        pthread_mutex_unlock(&t->mu);
        touch_drain(t);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    touch_drain(t); /* what arrived while stopping */
    return NULL;
}

pemn_rc pg_touch_start(struct store *st, struct pemn_err *err)
{
    struct pg_store *q = st->be;
    struct pg_touch *t = calloc(1, sizeof *t);
    if (!t)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->wmu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->st = st;
    t->running = true;
    if (pthread_create(&t->th, NULL, touch_main, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        pthread_mutex_destroy(&t->wmu);
        free(t);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "cannot start the touch thread");
    }
    q->touch = t;
    return PEMN_OK;
}

void pg_touch_flush(struct store *st)
{
    struct pg_store *q = st->be;
    if (q->touch)
        touch_drain(q->touch);
}

void pg_touch_stop(struct store *st)
{
    struct pg_store *q = st->be;
    struct pg_touch *t = q->touch;
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    t->running = false;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    free(t->items);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->wmu);
    free(t);
    q->touch = NULL;
}
