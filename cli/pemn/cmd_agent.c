/*
 * pemn agent — keep this device on the model its fleet wants (pemn/agent.h).
 */
#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

#include <pemn/agent.h>
#include <pemn/key.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRUST 64

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pemn agent --server URL --fleet F --device ID --dir DIR\n"
            "                  (--root ROOT.json --model NAME | --trust KEY.pub [--model NAME])\n"
            "                  [--token T | --token-file FILE] [--interval S] [--once] [--expand]\n"
            "                  [--allow-downgrade] [--timeout S] [--download-timeout S]\n"
            "                  [--min-rate R] [--rate-window S] [--max-disk N] [--no-delta]\n"
            "                  [--quiet]\n"
            "\n"
            "Polls the fleet's desired state for this device, downloads (resuming) and\n"
            "verifies the package against the pinned keys, installs it atomically under DIR\n"
            "(DIR/current/model.pemn is always a whole, verified model; the previous version\n"
            "is kept) and reports every state change to the server.\n"
            "\n"
            "  --server URL        registry base URL (default $PEMN_SERVER)\n"
            "  --fleet F           fleet name\n"
            "  --device ID         this device's id ([A-Za-z0-9][A-Za-z0-9._-]{0,127})\n"
            "  --token T           device-scope token (default $PEMN_TOKEN)\n"
            "  --token-file FILE   read the token from FILE's first line (keeps it out of ps)\n"
            "  --root ROOT.json    root mode: the pinned root of trust (pemn root init); the\n"
            "                      agent follows its chain on the server, installs only what\n"
            "                      signed, unexpired desired state names and the root's\n"
            "                      publishers signed (docs/AGENT.md, Trust)\n"
            "  --model NAME        the one model this device runs (required with --root; with\n"
            "                      --trust the first model installed is pinned otherwise)\n"
            "  --trust KEY.pub     simple mode: trusted publisher key (repeatable)\n"
            "  --dir DIR           agent directory (state.json, versions/, current)\n"
            "  --interval S        seconds between polls, jittered by +-25%% (default 60)\n"
            "  --once              one cycle, then exit with its result\n"
            "  --expand            also write DIR/current/model.safetensors (dense float32)\n"
            "  --allow-downgrade   accept a lower release than the installed one\n"
            "  --timeout S         per-request timeout (default 30)\n"
            "  --download-timeout S  a package download's deadline, all retries (default 600)\n"
            "  --min-rate R        minimum download rate, bytes/s (k, M: 10^3...; default 1k)\n"
            "  --rate-window S     window the minimum rate is averaged over (default 30)\n"
            "  --max-disk N        bytes DIR/versions + DIR/download may hold with a new\n"
            "                      package (K/M/G: 2^10...; default no limit: docs/AGENT.md)\n"
            "  --no-delta          always download whole packages (by default an update is\n"
            "                      fetched as a delta from the installed version when the\n"
            "                      registry has one, and the whole package otherwise)\n"
            "  --quiet             print only errors\n"
            "\n"
            "When the fleet's desired state names an OCI registry (package_url oci://HOST/REPO,\n"
            "see PUT /v1/fleets/{fleet}/oci), the package comes from there, checked the same way;\n"
            "that registry's credentials come from $PEMN_OCI_USERNAME / $PEMN_OCI_PASSWORD.\n"
            "\n"
            "Exit: 0 ok (or stopped by SIGTERM/SIGINT); with --once the cycle's result:\n"
            "  4 bad signature, 5 untrusted, 8 digest mismatch, 9 rollback refused,\n"
            "  7 network, 10 auth, 3 corrupt, 1 other; trust refusals:\n"
            "  20 metadata-expired, 21 metadata-replayed, 22 metadata-untrusted,\n"
            "  23 metadata-wrong-device, 24 wrong-model, 25 signer-revoked,\n"
            "  26 signer-untrusted, 27 root-invalid, 28 root-expired.\n");
}

/* Exit status of a --once cycle refused for a trust reason (docs/AGENT.md). */
static const struct {
    const char *reason;
    int code;
} trust_exit[] = {
    {"metadata-expired", 20},      {"metadata-replayed", 21}, {"metadata-untrusted", 22},
    {"metadata-wrong-device", 23}, {"wrong-model", 24},       {"signer-revoked", 25},
    {"signer-untrusted", 26},      {"root-invalid", 27},      {"root-expired", 28},
};

static int cycle_exit(pemn_rc rc, const struct pemn_agent_cycle *cy)
{
    for (size_t i = 0; rc && i < sizeof trust_exit / sizeof trust_exit[0]; i++)
        if (!strcmp(cy->reason, trust_exit[i].reason))
            return trust_exit[i].code;
    return cli_exit_code(rc);
}

struct agent_log {
    int quiet;
};

static void on_event(const struct pemn_agent_event *ev, void *user)
{
    const struct agent_log *lg = user;
    if (lg->quiet && !ev->rc)
        return;
    FILE *f = ev->rc ? stderr : stdout;
    /* model, version and message come from the registry: escaped for the terminal */
    fprintf(f, "pemn agent: %s %s %s (release %llu) %s%s%s%s%s\n", ev->state, CLI_ESC(ev->model),
            CLI_ESC(ev->version), (unsigned long long)ev->release, CLI_ESC(ev->digest),
            ev->reason ? ": " : "", ev->reason ? CLI_ESC(ev->reason) : "",
            ev->message[0] ? ": " : "", CLI_ESC(ev->message));
    fflush(f);
}

/* Test-only fault hook: PEMN_AGENT_CRASH_AT=<step> ends the process right after that
 * install step, as a power cut would (no clean-up, no atexit). */
static int crash_hook(pemn_agent_step step, void *user)
{
    const pemn_agent_step *at = user;
    if (step == *at)
        _exit(137);
    return 0;
}

/* First line of path, without the newline; -1 when unreadable or empty. */
static int read_token(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *got = fgets(buf, (int)cap, f);
    fclose(f);
    if (!got)
        return -1;
    buf[strcspn(buf, "\r\n")] = 0;
    return buf[0] ? 0 : -1;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0.0) || v > 86400.0 * 7)
        return -1;
    *out = v;
    return 0;
}

/* Sleeps about `seconds`, waking early when a signal asks to stop. */
static void nap(double seconds)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!g_stop) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left =
            seconds - ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9);
        if (left <= 0)
            break;
        double step = left < 0.1 ? left : 0.1;
        struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

int cmd_agent(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"fleet", required_argument, NULL, 'f'},
        {"device", required_argument, NULL, 'd'},
        {"token", required_argument, NULL, 't'},
        {"token-file", required_argument, NULL, 'F'},
        {"trust", required_argument, NULL, 'k'},
        {"root", required_argument, NULL, 'r'},
        {"model", required_argument, NULL, 'm'},
        {"dir", required_argument, NULL, 'D'},
        {"interval", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 'T'},
        {"once", no_argument, NULL, '1'},
        {"expand", no_argument, NULL, 'x'},
        {"allow-downgrade", no_argument, NULL, 'a'},
        {"download-timeout", required_argument, NULL, 'W'},
        {"min-rate", required_argument, NULL, 'R'},
        {"rate-window", required_argument, NULL, 'w'},
        {"max-disk", required_argument, NULL, 'M'},
        {"no-delta", no_argument, NULL, 1100},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pemn_agent_opts o;
    pemn_agent_opts_init(&o);
    const char *trust[MAX_TRUST];
    int n_trust = 0, once = 0;
    double interval = 60, timeout = 30;
    struct agent_log lg = {0};
    static char token_buf[512];
    o.server = getenv("PEMN_SERVER");
    o.token = getenv("PEMN_TOKEN");
    o.oci_username = getenv("PEMN_OCI_USERNAME"); /* when the fleet's bytes live in an OCI */
    o.oci_password = getenv("PEMN_OCI_PASSWORD"); /* registry (docs/OCI.md) */
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.server = optarg;
            break;
        case 'f':
            o.fleet = optarg;
            break;
        case 'd':
            o.device = optarg;
            break;
        case 't':
            o.token = optarg;
            break;
        case 'F':
            if (read_token(optarg, token_buf, sizeof token_buf)) {
                fprintf(stderr, "pemn agent: --token-file %s: cannot read a token from it\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            o.token = token_buf;
            break;
        case 'D':
            o.dir = optarg;
            break;
        case 'r':
            o.root_file = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'k':
            if (n_trust == MAX_TRUST) {
                fprintf(stderr, "pemn agent: at most %d --trust keys\n", MAX_TRUST);
                return CLI_EXIT_USAGE;
            }
            trust[n_trust++] = optarg;
            break;
        case 'i':
            if (parse_seconds(optarg, &interval) || interval < 0.05) {
                fprintf(stderr, "pemn agent: --interval wants seconds >= 0.05, got '%s'\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'T':
            if (parse_seconds(optarg, &timeout) || timeout < 0.1) {
                fprintf(stderr, "pemn agent: --timeout wants seconds >= 0.1, got '%s'\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'W':
        case 'w': {
            double v;
            if (parse_seconds(optarg, &v) || v < 0.1 || v > 86400 * 7) {
                fprintf(stderr, "pemn agent: --%s wants seconds >= 0.1, got '%s'\n",
                        c == 'W' ? "download-timeout" : "rate-window", optarg);
                return CLI_EXIT_USAGE;
            }
            if (c == 'W')
                o.download_timeout_ms = (uint64_t)(v * 1000);
            else
                o.rate_window_ms = (uint32_t)(v * 1000);
            break;
        }
        case 'R': {
            uint64_t v;
            if (cli_parse_rate(optarg, &v) || v > UINT32_MAX) {
                fprintf(stderr, "pemn agent: --min-rate wants bytes/s (e.g. 2k), got '%s'\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            o.min_rate = (uint32_t)v;
            break;
        }
        case 'M': {
            uint64_t v = 0;
            char *end;
            unsigned long long n = strtoull(optarg, &end, 10);
            unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
            if (shift)
                end++;
            v = (uint64_t)n << shift;
            if (*end || end == optarg || optarg[0] == '-' || n == 0 || (v >> shift) != n) {
                fprintf(stderr, "pemn agent: --max-disk wants bytes (K/M/G: 2^10...), got '%s'\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            o.max_disk = v;
            break;
        }
        case '1':
            once = 1;
            break;
        case 1100:
            o.no_delta = 1;
            break;
        case 'x':
            o.expand = 1;
            break;
        case 'a':
            o.allow_downgrade = 1;
            break;
        case 'q':
            lg.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc || !o.server || !o.fleet || !o.device || !o.dir ||
        (n_trust == 0) == !o.root_file || (o.root_file && !o.model)) {
        fprintf(stderr, "pemn agent: %s\n\n",
                optind < argc            ? "unexpected argument"
                : o.root_file && n_trust ? "--root and --trust exclude each other"
                : o.root_file            ? "--root needs --model NAME"
                                         : "--server, --fleet, --device, --dir and --root or "
                                           "--trust are required");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "pemn agent: libsodium failed to initialise\n");
        return CLI_EXIT_FAIL;
    }
    struct pemn_err e = {0};
    pemn_keyring *kr = NULL;
    if (pemn_keyring_new(&kr)) {
        fprintf(stderr, "pemn agent: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < n_trust; i++) {
        pemn_rc rc = pemn_keyring_add_file(kr, trust[i], &e);
        if (rc) {
            fprintf(stderr, "pemn agent: --trust %s: %s\n", trust[i], e.msg);
            pemn_keyring_free(kr);
            return CLI_EXIT_USAGE;
        }
    }
    o.trusted = n_trust ? kr : NULL;
    o.timeout_ms = (long)(timeout * 1000);
    o.cancel = &g_stop;
    o.on_event = on_event;
    o.event_user = &lg;
    pemn_agent_step crash_at;
    const char *crash = getenv("PEMN_AGENT_CRASH_AT");
    if (crash && crash[0]) {
        if (pemn_agent_step_parse(crash, &crash_at)) {
            fprintf(stderr, "pemn agent: PEMN_AGENT_CRASH_AT: unknown step '%s'\n", crash);
            pemn_keyring_free(kr);
            return CLI_EXIT_USAGE;
        }
        o.fault = crash_hook;
        o.fault_user = &crash_at;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pemn_agent *a = NULL;
    pemn_rc rc = pemn_agent_new(&o, &a, &e);
    if (rc) {
        fprintf(stderr, "pemn agent: %s: %s\n", o.dir, CLI_ESC(e.msg));
        pemn_keyring_free(kr);
        return cli_exit_code(rc);
    }
    struct pemn_agent_state st;
    if (!lg.quiet && !pemn_agent_state(a, &st)) {
        if (st.has_current)
            printf("pemn agent: running %s %s (release %llu) %s\n", CLI_ESC(st.current.model),
                   CLI_ESC(st.current.version), (unsigned long long)st.current.release,
                   CLI_ESC(st.current.digest));
        else
            printf("pemn agent: nothing installed yet in %s\n", o.dir);
        fflush(stdout);
    }
    int exit_code = CLI_EXIT_OK;
    while (!g_stop) {
        struct pemn_agent_cycle cy;
        memset(&cy, 0, sizeof cy);
        memset(&e, 0, sizeof e);
        rc = pemn_agent_run_once(a, &cy, &e);
        if (rc == PEMN_ECANCELED)
            break;
        if (rc && cy.result == PEMN_OK) /* could not reach the server: refusals are logged */
            fprintf(stderr, "pemn agent: %s\n", CLI_ESC(e.msg));
        else if (!rc && cy.no_target && !lg.quiet)
            printf("pemn agent: no target for this device yet\n");
        if (cy.changed && cy.package_bytes && !lg.quiet)
            printf("pemn agent: downloaded %llu bytes for a %llu-byte package%s\n",
                   (unsigned long long)cy.bytes_downloaded, (unsigned long long)cy.package_bytes,
                   cy.delta_used ? " (delta from the installed version)" : "");
        if (cy.reports_failed)
            fprintf(stderr, "pemn agent: %u status report(s) not accepted by the server\n",
                    cy.reports_failed);
        fflush(stdout);
        if (once) {
            exit_code = cycle_exit(rc, &cy);
            break;
        }
        /* +-25% jitter so that a fleet started together does not poll together */
        double j = 0.75 + 0.5 * ((double)randombytes_uniform(1000001) / 1000000.0);
        nap(interval * j);
    }
    pemn_agent_free(a);
    pemn_keyring_free(kr);
    sodium_memzero(token_buf, sizeof token_buf);
    if (g_stop && !lg.quiet)
        printf("pemn agent: stopped\n");
    return exit_code;
}
