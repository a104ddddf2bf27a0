/*
 * server/srv_scrub.c — the periodic background scrub: every scrub_interval seconds one
 * thread hashes every stored blob at no more than scrub_rate bytes/s (store_scrub), logs
 * each bad blob and counts it in /metrics. Stopping wakes the thread and waits for it.
 */
#include "server/srv.h"

#include "storage/store_verify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct srv_scrub {
    struct srv *srv;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
};

static int on_bad(void *ctx, const char *digest, uint64_t size, pemn_rc rc, const char *msg)
{
    struct srv_scrub *sc = ctx;
    srv_log(SRV_LOG_ERROR, "scrub: %s %s (%llu bytes): %s",
            rc == PEMN_EDIGEST ? "bad blob" : "unreadable blob", digest, (unsigned long long)size,
            msg);
    srv_metrics_blob_corrupt(srv_get_metrics(sc->srv), true);
    return 0;
}

static void *scrub_main(void *arg)
{
    struct srv_scrub *sc = arg;
    const struct srv_config *cfg = srv_cfg(sc->srv);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)cfg->scrub_interval;
        pthread_mutex_lock(&sc->mu);
        while (!atomic_load(&sc->stop)) {
            if (pthread_cond_timedwait(&sc->cv, &sc->mu, &until) != 0)
                break; /* timed out: time to scrub */
        }
        pthread_mutex_unlock(&sc->mu);
        if (atomic_load(&sc->stop))
            return NULL;
        struct store_scrub_stats sx;
        struct pemn_err e = {0};
        srv_log(SRV_LOG_INFO, "scrub: starting (at most %llu bytes/s)",
                (unsigned long long)cfg->scrub_rate);
        pemn_rc rc =
            store_scrub(srv_store(sc->srv), cfg->scrub_rate, &sc->stop, on_bad, sc, &sx, &e);
        srv_metrics_scrub_done(srv_get_metrics(sc->srv), &sx, rc == PEMN_OK);
        if (rc == PEMN_ECANCELED)
            return NULL;
        if (rc)
            srv_log(SRV_LOG_ERROR, "scrub: %s", e.msg);
        else
            srv_log(sx.bad || sx.unreadable ? SRV_LOG_ERROR : SRV_LOG_INFO,
                    "scrub: %llu blobs, %llu bytes checked: %llu bad, %llu unreadable",
                    (unsigned long long)sx.blobs, (unsigned long long)sx.bytes,
                    (unsigned long long)sx.bad, (unsigned long long)sx.unreadable);
    }
}

struct srv_scrub *srv_scrub_start(struct srv *s)
{
    if (srv_cfg(s)->scrub_interval == 0)
        return NULL;
    struct srv_scrub *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->srv = s;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    atomic_init(&sc->stop, false);
    if (pthread_create(&sc->th, NULL, scrub_main, sc) != 0) {
        srv_log(SRV_LOG_ERROR, "scrub: cannot start the background thread");
        pthread_cond_destroy(&sc->cv);
        pthread_mutex_destroy(&sc->mu);
        free(sc);
        return NULL;
    }
    return sc;
}

void srv_scrub_stop(struct srv_scrub *sc)
{
    if (!sc)
        return;
    pthread_mutex_lock(&sc->mu);
    atomic_store(&sc->stop, true);
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(sc->th, NULL);
    pthread_cond_destroy(&sc->cv);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}
