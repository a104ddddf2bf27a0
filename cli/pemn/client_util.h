/*
 * cli/pemn/client_util.h — helpers shared by the registry commands (push, ls, tag, pull):
 * server/token from flags or PEMN_SERVER / PEMN_TOKEN, client creation, error reporting,
 * and a terminal progress bar (bytes, rate, ETA) drawn only on a TTY.
 */
#ifndef PEMN_CLI_CLIENT_UTIL_H
#define PEMN_CLI_CLIENT_UTIL_H

#include <pemn/client.h>

#include "cli/pemn/util.h"

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>

/* Common flags of the registry commands. */
struct cli_net {
    const char *server; /* --server or $PEMN_SERVER */
    const char *token;  /* --token or $PEMN_TOKEN */
    const char *cache;  /* --cache or $PEMN_CACHE; NULL = none */
    bool quiet;
    double timeout_s;             /* --timeout: whole-operation deadline, 0 = library default */
    uint32_t retries;             /* --retries: attempts without progress, 0 = library default */
    uint64_t rate;                /* --limit-rate: bytes per second, 0 = unlimited */
    const struct pemn_root *root; /* --root (pull, agent): root of trust, or NULL */
};

/* getopt_long entries shared by the registry commands (short options "s:t:q"). */
#define CLI_NET_LONGOPTS                                                                           \
    {"server", required_argument, NULL, 's'}, {"token", required_argument, NULL, 't'},             \
        {"quiet", no_argument, NULL, 'q'}, {"timeout", required_argument, NULL, 1001},             \
        {"retries", required_argument, NULL, 1002}, {"cache", required_argument, NULL, 1003},      \
        {"no-cache", no_argument, NULL, 1004},                                                     \
    {                                                                                              \
        "limit-rate", required_argument, NULL, 1005                                                \
    }
/* Handles one of those options: 1 handled, 0 not one of them, -1 bad value (printed). */
int cli_net_opt(struct cli_net *n, const char *cmd, int ch, const char *arg);

/* SIGINT/SIGTERM set a flag that the progress callbacks below turn into PEMN_ECANCELED,
 * so an interrupted pull stops cleanly and keeps its .part for a resume. */
void cli_net_catch_signals(void);
int cli_net_stop_cb(void *user, uint64_t done, uint64_t total); /* pemn_progress_fn */

/* Fills defaults from the environment. */
void cli_net_init(struct cli_net *n);
/* Creates the client; prints the reason and returns the exit code on failure, else 0. */
int cli_net_client(const char *cmd, const struct cli_net *n, const pemn_keyring *trusted,
                   pemn_client **out);

/* A version object (docs/API.md shape) built from r: a new reference. */
json_t *cli_net_vo_json(const struct pemn_resolved *r);
/* Prints v (stolen) compactly on stdout with a newline. */
void cli_net_print_json(json_t *v);

/* Progress bar on stderr; a no-op when disabled (not a TTY, or --quiet). */
struct cli_bar {
    bool on, drawn;
    const char *label;
    uint64_t t0_ms, last_ms;
};
void cli_bar_init(struct cli_bar *b, const char *label, bool quiet);
int cli_bar_cb(void *user, uint64_t done, uint64_t total); /* pemn_progress_fn */
void cli_bar_end(struct cli_bar *b);
uint64_t cli_net_now_ms(void);

#endif
