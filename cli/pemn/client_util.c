/*
 * cli/pemn/client_util.c — see client_util.h.
 */
#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = sig;
}

void cli_net_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_net_stop_cb(void *user, uint64_t done, uint64_t total)
{
    return g_stop != 0;
}

void cli_net_init(struct cli_net *n)
{
    memset(n, 0, sizeof *n);
    n->server = getenv("PEMN_SERVER");
    n->token = getenv("PEMN_TOKEN");
    n->cache = getenv("PEMN_CACHE");
    if (n->server && !*n->server)
        n->server = NULL;
    if (n->token && !*n->token)
        n->token = NULL;
    if (n->cache && !*n->cache)
        n->cache = NULL;
}

int cli_net_opt(struct cli_net *n, const char *cmd, int ch, const char *arg)
{
    char *end;
    switch (ch) {
    case 's':
        n->server = arg;
        return 1;
    case 't':
        n->token = arg;
        return 1;
    case 'q':
        n->quiet = true;
        return 1;
    case 1001:
        n->timeout_s = strtod(arg, &end);
        if (*end || !(n->timeout_s > 0 && n->timeout_s < 1e7)) {
            fprintf(stderr, "pemn %s: --timeout wants seconds > 0, not '%s'\n", cmd, arg);
            return -1;
        }
        return 1;
    case 1002: {
        unsigned long v = strtoul(arg, &end, 10);
        if (*end || v == 0 || v > 1000) {
            fprintf(stderr, "pemn %s: --retries wants 1..1000, not '%s'\n", cmd, arg);
            return -1;
        }
        n->retries = (uint32_t)v;
        return 1;
    }
    case 1003:
        n->cache = arg;
        return 1;
    case 1004:
        n->cache = NULL;
        return 1;
    case 1005: {
        double v = strtod(arg, &end);
        double mul = 1;
        if (*end == 'k' || *end == 'K')
            mul = 1e3, end++;
        else if (*end == 'm' || *end == 'M')
            mul = 1e6, end++;
        else if (*end == 'g' || *end == 'G')
            mul = 1e9, end++;
        if (*end || !(v > 0) || v * mul < 1 || v * mul > 1e12) {
            fprintf(stderr, "pemn %s: --limit-rate wants bytes/s (e.g. 500k, 10M), not '%s'\n", cmd,
                    arg);
            return -1;
        }
        n->rate = (uint64_t)(v * mul);
        return 1;
    }
    default:
        return 0;
    }
}

int cli_net_client(const char *cmd, const struct cli_net *n, const pemn_keyring *trusted,
                   pemn_client **out)
{
    if (!n->server) {
        fprintf(stderr, "pemn %s: no server: give --server URL or set PEMN_SERVER\n", cmd);
        return CLI_EXIT_USAGE;
    }
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.token = n->token;
    o.trusted = trusted;
    o.root = n->root;
    o.cache_dir = n->cache;
    o.progress = cli_net_stop_cb; /* Ctrl-C cancels cleanly, also between retries */
    if (n->timeout_s > 0)
        o.deadline_ms = (uint64_t)(n->timeout_s * 1000.0);
    if (n->retries)
        o.max_attempts = n->retries;
    o.max_recv_bytes_per_s = n->rate;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_client_new(n->server, &o, out, &e);
    return rc ? cli_fail(cmd, rc, &e) : 0;
}

uint64_t cli_net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cli_bar_init(struct cli_bar *b, const char *label, bool quiet)
{
    memset(b, 0, sizeof *b);
    b->on = !quiet && isatty(STDERR_FILENO);
    b->label = label;
    b->t0_ms = cli_net_now_ms();
}

static void draw(struct cli_bar *b, uint64_t done, uint64_t total, uint64_t now)
{
    char d[32], t[32], r[32], eta[32] = "";
    double secs = (double)(now - b->t0_ms) / 1000.0;
    double rate = secs > 0.05 ? (double)done / secs : 0;
    cli_human_size(done, d, sizeof d);
    cli_human_size((uint64_t)rate, r, sizeof r);
    if (total && rate > 0 && done <= total) {
        uint64_t left = (uint64_t)((double)(total - done) / rate);
        snprintf(eta, sizeof eta, "  ETA %llu:%02llu", (unsigned long long)(left / 60),
                 (unsigned long long)(left % 60));
    }
    if (total) {
        int pct = (int)(100.0 * (double)done / (double)total);
        int fill = pct / 5;
        char bar[21];
        for (int i = 0; i < 20; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[20] = '\0';
        fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %s/s%s\033[K", b->label, bar, pct, d,
                cli_human_size(total, t, sizeof t), r, eta);
    } else {
        fprintf(stderr, "\r%s %s  %s/s\033[K", b->label, d, r);
    }
    b->drawn = true;
}

int cli_bar_cb(void *user, uint64_t done, uint64_t total)
{
    struct cli_bar *b = user;
    if (g_stop)
        return 1;
    if (!b->on)
        return 0;
    uint64_t now = cli_net_now_ms();
    if (now - b->last_ms < 100 && !(total && done == total))
        return 0;
    b->last_ms = now;
    draw(b, done, total, now);
    return 0;
}

void cli_bar_end(struct cli_bar *b)
{
    if (b->on && b->drawn)
        fputs("\r\033[K", stderr);
}

json_t *cli_net_vo_json(const struct pemn_resolved *r)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:I, s:I}", "model",
                  r->model, "version", r->version, "release", (json_int_t)r->release, "digest",
                  r->digest, "size", (json_int_t)r->size, "package_url", r->package_url, "signer",
                  r->signer, "strategy", r->strategy, "created", (json_int_t)r->created, "pushed",
                  (json_int_t)r->pushed, "density", r->density, "ratio", r->ratio, "n_params",
                  (json_int_t)r->n_params, "f32_size", (json_int_t)r->f32_size);
    if (o && r->tag[0])
        json_object_set_new(o, "tag", json_string(r->tag));
    return o;
}

void cli_net_print_json(json_t *v)
{
    if (!v)
        return;
    json_dumpf(v, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(v);
}
