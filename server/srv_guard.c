/*
 * server/srv_guard.c — deadlines libmicrohttpd does not enforce by itself.
 *
 * MHD's connection_timeout is an inactivity timeout: a client that sends its request head a
 * byte every few seconds, or its body at a few bytes a second, keeps its connection (and its
 * slot) forever. Every connection is tracked from MHD's connection notifications; a reaper
 * thread wakes four times a second and shuts down (shutdown(2): MHD then sees the socket
 * fail and closes it itself) a connection that
 *   - has not completed a request head header_timeout seconds after it opened or after its
 *     previous request ended, or
 *   - is receiving a body at less than body_min_rate bytes/s averaged since the body began,
 *     once body_rate_window seconds have passed.
 * A connection that is being answered (handler running, response streaming) has no
 * deadline here; MHD's connection_timeout still applies.
 */
#include "server/srv_guard.h"

#include "server/srv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

enum phase { PH_HEAD, PH_BODY, PH_BUSY, PH_KILLED };

struct guard_conn {
    int fd;
    enum phase phase;
    double since;
    uint64_t body;
    struct guard_conn *prev, *next;
};

struct srv_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    bool stop, started;
    struct guard_conn *head;
    double header_timeout, window;
    uint64_t min_rate;
    atomic_ullong closed_head, closed_body;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void reap(struct srv_guard *g)
{
    double t = now_s();
    for (struct guard_conn *c = g->head; c; c = c->next) {
        bool slow_head = c->phase == PH_HEAD && t - c->since > g->header_timeout;
        bool slow_body = c->phase == PH_BODY && g->min_rate && t - c->since > g->window &&
                         (double)c->body < (double)g->min_rate * (t - c->since);
        if (!slow_head && !slow_body)
            continue;
        atomic_fetch_add(slow_head ? &g->closed_head : &g->closed_body, 1);
        srv_log(SRV_LOG_WARN, "closing a slow client: %s",
                slow_head ? "request head not complete in time"
                          : "request body below the minimum rate");
        shutdown(c->fd, SHUT_RDWR);
        c->phase = PH_KILLED;
    }
}

static void *guard_main(void *arg)
{
    struct srv_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &until);
        if (!g->stop)
            reap(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

struct srv_guard *srv_guard_new(uint64_t header_timeout, uint64_t min_rate, uint64_t window)
{
    struct srv_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->header_timeout = (double)header_timeout;
    g->min_rate = min_rate;
    g->window = (double)window;
    if (pthread_create(&g->th, NULL, guard_main, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    g->started = true;
    return g;
}

void srv_guard_free(struct srv_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->th, NULL);
    while (g->head) {
        struct guard_conn *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void srv_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    struct srv_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct guard_conn *c = ci ? calloc(1, sizeof *c) : NULL;
        *socket_context = c;
        if (!c)
            return;
        c->fd = ci->connect_fd;
        c->phase = PH_HEAD;
        c->since = now_s();
        pthread_mutex_lock(&g->mu);
        c->next = g->head;
        if (g->head)
            g->head->prev = c;
        g->head = c;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    /* closed: MHD closes the socket after this returns, so the reaper never touches a
     * descriptor number that could be reused */
    struct guard_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->mu);
    free(c);
    *socket_context = NULL;
}

static struct guard_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_phase(struct srv_guard *g, struct MHD_Connection *conn, enum phase p)
{
    struct guard_conn *c = g ? conn_of(conn) : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->phase != PH_KILLED) {
        c->phase = p;
        c->since = now_s();
        c->body = 0;
    }
    pthread_mutex_unlock(&g->mu);
}

void srv_guard_head_done(struct srv_guard *g, struct MHD_Connection *conn, bool has_body)
{
    set_phase(g, conn, has_body ? PH_BODY : PH_BUSY);
}

void srv_guard_body(struct srv_guard *g, struct MHD_Connection *conn, size_t n)
{
    struct guard_conn *c = g ? conn_of(conn) : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->body += n;
    pthread_mutex_unlock(&g->mu);
}

void srv_guard_busy(struct srv_guard *g, struct MHD_Connection *conn)
{
    set_phase(g, conn, PH_BUSY);
}

void srv_guard_request_done(struct srv_guard *g, struct MHD_Connection *conn)
{
    set_phase(g, conn, PH_HEAD);
}

void srv_guard_counts(struct srv_guard *g, uint64_t *head, uint64_t *body)
{
    *head = g ? atomic_load(&g->closed_head) : 0;
    *body = g ? atomic_load(&g->closed_body) : 0;
}
