/*
 * bench/bench_fleet_poll.c — load on pemnd's desired-state route: many distinct devices
 * polling one fleet, as agents do, with If-None-Match.
 *
 *   bench_fleet_poll URL FLEET TOKEN [--devices N] [--threads T] [--requests R]
 *                    [--seconds S] [--peer-path PATH]
 *
 * Phase 1 ("first contact"): every device polls once without an ETag (the server registers
 * it: one write each). Phase 2 ("steady"): devices poll round-robin with the ETag they got,
 * as a fleet at rest does (mostly 304), until R requests or S seconds. Phase 3 ("peer"): the
 * same number of requests and threads against PEER-PATH (default /v1/health), the
 * cheapest route of the same server, for a ratio that carries across machines.
 * Each worker thread has its own keep-alive connection. Prints latency percentiles, the
 * status mix and the error count; exits 1 when any request failed.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_DEVICES 100000

struct device {
    char id[32];
    char etag[80];
};

struct shared {
    const char *base, *fleet, *token, *peer_path;
    struct device *dev;
    int n_dev, n_threads;
    long requests; /* phase 2 budget */
    double seconds;
    int phase;
    pthread_mutex_t mu;
    long next; /* next request index (phase 2/3) */
    double t_end;
};

struct worker {
    struct shared *sh;
    int index;
    double *lat; /* seconds, one per request made */
    long n_lat, cap_lat;
    long st200, st304, st404, other, errors;
    char etag_buf[80];
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
    (void)p, (void)u;
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
    struct worker *w = u;
    size_t len = sz * n;
    if (len > 5 && !strncasecmp(p, "etag:", 5)) {
        size_t i = 5;
        while (i < len && p[i] == ' ')
            i++;
        size_t j = len;
        while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n'))
            j--;
        if (j - i < sizeof w->etag_buf) {
            memcpy(w->etag_buf, p + i, j - i);
            w->etag_buf[j - i] = 0;
        }
    }
    return len;
}

static void record(struct worker *w, double dt)
{
    if (w->n_lat == w->cap_lat) {
        long cap = w->cap_lat ? w->cap_lat * 2 : 4096;
        double *nl = realloc(w->lat, (size_t)cap * sizeof *nl);
        if (!nl)
            return;
        w->lat = nl;
        w->cap_lat = cap;
    }
    w->lat[w->n_lat++] = dt;
}

/* One request. dev may be NULL (peer route). */
static void one(struct worker *w, CURL *h, struct curl_slist *base_hdr, struct device *dev)
{
    struct shared *sh = w->sh;
    char url[512], inm[128];
    struct curl_slist *hdr = base_hdr, *extra = NULL;
    if (dev) {
        snprintf(url, sizeof url, "%s/v1/fleets/%s/devices/%s/desired", sh->base, sh->fleet,
                 dev->id);
        if (dev->etag[0]) {
            snprintf(inm, sizeof inm, "If-None-Match: %s", dev->etag);
            extra = curl_slist_append(NULL, inm);
            if (extra) {
                extra->next = base_hdr;
                hdr = extra;
            }
        }
    } else {
        snprintf(url, sizeof url, "%s%s", sh->base, sh->peer_path);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    w->etag_buf[0] = 0;
    double t0 = now_s();
    CURLcode cc = curl_easy_perform(h);
    double dt = now_s() - t0;
    if (extra) {
        extra->next = NULL;
        curl_slist_free_all(extra);
    }
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        w->errors++;
        return;
    }
    record(w, dt);
    if (status == 200) {
        w->st200++;
        if (dev && w->etag_buf[0])
            snprintf(dev->etag, sizeof dev->etag, "%s", w->etag_buf);
    } else if (status == 304)
        w->st304++;
    else if (status == 404)
        w->st404++;
    else {
        w->other++;
        w->errors++;
    }
}

static void *worker_main(void *p)
{
    struct worker *w = p;
    struct shared *sh = w->sh;
    CURL *h = curl_easy_init();
    if (!h) {
        w->errors++;
        return NULL;
    }
    char auth[300];
    struct curl_slist *hdr = NULL;
    if (sh->token && sh->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", sh->token);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    if (sh->phase == 1) {
        /* each thread takes a contiguous share of the devices */
        for (int i = w->index; i < sh->n_dev; i += sh->n_threads)
            one(w, h, hdr, &sh->dev[i]);
    } else {
        for (;;) {
            pthread_mutex_lock(&sh->mu);
            long k = sh->next < sh->requests ? sh->next++ : -1;
            pthread_mutex_unlock(&sh->mu);
            if (k < 0 || now_s() > sh->t_end)
                break;
            /* device k mod N belongs to thread (k mod N) mod T only when T divides N; a
             * device may be polled by two threads at once, as after an agent restart */
            one(w, h, hdr, sh->phase == 2 ? &sh->dev[k % sh->n_dev] : NULL);
        }
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct summary {
    long n, st200, st304, st404, errors;
    double p50, p99, max, seconds;
};

static struct summary run_phase(struct shared *sh, int phase)
{
    struct summary s;
    memset(&s, 0, sizeof s);
    pthread_t th[MAX_THREADS];
    struct worker w[MAX_THREADS];
    sh->phase = phase;
    sh->next = 0;
    double t0 = now_s();
    sh->t_end = t0 + sh->seconds;
    for (int i = 0; i < sh->n_threads; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].sh = sh;
        w[i].index = i;
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    long total = 0;
    for (int i = 0; i < sh->n_threads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].n_lat;
    }
    s.seconds = now_s() - t0;
    double *all = malloc((size_t)(total ? total : 1) * sizeof *all);
    long k = 0;
    for (int i = 0; i < sh->n_threads; i++) {
        if (all)
            memcpy(all + k, w[i].lat, (size_t)w[i].n_lat * sizeof *all);
        k += w[i].n_lat;
        s.st200 += w[i].st200;
        s.st304 += w[i].st304;
        s.st404 += w[i].st404;
        s.errors += w[i].errors;
        free(w[i].lat);
    }
    s.n = total;
    if (all && total) {
        qsort(all, (size_t)total, sizeof *all, cmp_d);
        s.p50 = all[total / 2];
        s.p99 = all[(long)((double)(total - 1) * 0.99)];
        s.max = all[total - 1];
    }
    free(all);
    return s;
}

static void print(const char *name, const struct summary *s)
{
    printf("fleet-poll %-13s requests=%ld seconds=%.2f rps=%.0f p50_ms=%.3f p99_ms=%.3f "
           "max_ms=%.3f 200=%ld 304=%ld 404=%ld errors=%ld\n",
           name, s->n, s->seconds, s->seconds > 0 ? (double)s->n / s->seconds : 0.0, s->p50 * 1e3,
           s->p99 * 1e3, s->max * 1e3, s->st200, s->st304, s->st404, s->errors);
}

/* Strict decimal; -1 when not a number. */
static double num(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    return end != v && !*end ? d : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_fleet_poll URL FLEET TOKEN [--devices N] [--threads T] "
                        "[--requests R] [--seconds S] [--peer-path PATH]\n");
        return 2;
    }
    struct shared sh;
    memset(&sh, 0, sizeof sh);
    sh.base = argv[1];
    sh.fleet = argv[2];
    sh.token = argv[3];
    sh.peer_path = "/v1/health";
    sh.n_dev = 1000;
    sh.n_threads = 8;
    sh.requests = 20000;
    sh.seconds = 60;
    for (int i = 4; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--devices"))
            sh.n_dev = (int)num(v);
        else if (!strcmp(k, "--threads"))
            sh.n_threads = (int)num(v);
        else if (!strcmp(k, "--requests"))
            sh.requests = (long)num(v);
        else if (!strcmp(k, "--seconds"))
            sh.seconds = num(v);
        else if (!strcmp(k, "--peer-path"))
            sh.peer_path = v;
        else {
            fprintf(stderr, "bench_fleet_poll: unknown option %s\n", k);
            return 2;
        }
    }
    if (sh.n_dev < 1 || sh.n_dev > MAX_DEVICES || sh.n_threads < 1 || sh.n_threads > MAX_THREADS ||
        sh.requests < 1 || !(sh.seconds > 0)) {
        fprintf(stderr, "bench_fleet_poll: bad option value\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&sh.mu, NULL);
    sh.dev = calloc((size_t)sh.n_dev, sizeof *sh.dev);
    if (!sh.dev)
        return 1;
    for (int i = 0; i < sh.n_dev; i++)
        snprintf(sh.dev[i].id, sizeof sh.dev[i].id, "bench-dev-%06d", i);
    printf("fleet-poll: %s fleet=%s devices=%d threads=%d requests=%ld max_seconds=%.0f\n", sh.base,
           sh.fleet, sh.n_dev, sh.n_threads, sh.requests, sh.seconds);
    struct summary first = run_phase(&sh, 1);
    print("first-contact", &first);
    struct summary steady = run_phase(&sh, 2);
    print("steady", &steady);
    sh.requests = steady.n > 0 ? steady.n : 1;
    struct summary peer = run_phase(&sh, 3);
    print("peer", &peer);
    if (peer.p50 > 0 && peer.p99 > 0)
        printf("fleet-poll ratio steady/peer: p50 %.2fx p99 %.2fx rps %.2fx\n",
               steady.p50 / peer.p50, steady.p99 / peer.p99,
               (steady.seconds > 0 && peer.seconds > 0)
                   ? ((double)steady.n / steady.seconds) / ((double)peer.n / peer.seconds)
                   : 0.0);
    long errors = first.errors + steady.errors + peer.errors;
    printf("fleet-poll errors=%ld\n", errors);
    free(sh.dev);
    pthread_mutex_destroy(&sh.mu);
    curl_global_cleanup();
    return errors ? 1 : 0;
}
