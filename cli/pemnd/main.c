/*
 * cli/pemnd/main.c — the pemnd command line: run the registry daemon, or an admin command
 * on its database. Settings come from defaults, then --config FILE, then flags.
 */
#include "cli/pemnd/admin.h"
#include "server/srv.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_line(void *ctx, const char *text)
{
    fprintf(ctx, "%s\n", text);
}

static void help(FILE *f)
{
    fprintf(f,
            "pemnd %s — the pemn model registry daemon\n"
            "\n"
            "usage: pemnd --db FILE [--listen HOST:PORT] [--config FILE] [--SETTING VALUE]...\n"
            "       pemnd --db FILE token create --scope read|publish|admin|device [--name NAME]\n"
            "                 [--device ID] [--fleet FLEET]  (bind a device token)\n"
            "       pemnd --db FILE token revoke NAME | token list\n"
            "       pemnd --db FILE key add KEY.pub [--name NAME] | key remove NAME|ID | key list\n"
            "       pemnd --db FILE audit [--limit N]\n"
            "       pemnd --db FILE root add ROOT.json | root list  (root of trust)\n"
            "       pemnd --print-config [--config FILE] [--SETTING VALUE]...\n"
            "\n"
            "Every setting can be given as a flag (--max-package-size 64M) or in the config\n"
            "file as 'key = value' (max_package_size = 64M); flags win. Boolean flags may omit\n"
            "their value (--read-token-required). Settings and defaults:\n\n",
            PEMN_VERSION_STRING);
    struct srv_config cfg;
    srv_config_defaults(&cfg);
    srv_config_print(&cfg, print_line, f);
    fprintf(f, "\nSIGTERM/SIGINT stop the daemon gracefully. API: docs/API.md.\n"
               "Exit codes: 0 ok, 1 failure, 2 usage, 6 not found, 11 already exists.\n");
}

static int run_daemon(const struct srv_config *cfg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Blocked before any thread starts, so only sigwait below ever sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv_log_setup(cfg->log_level, cfg->log_format);
    struct srv *s = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = srv_start(cfg, &s, &e);
    if (rc) {
        srv_log(SRV_LOG_ERROR, "cannot start: %s", e.msg);
        return 1;
    }
    char host[128];
    snprintf(host, sizeof host, "%s", cfg->listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    srv_log(SRV_LOG_INFO, "pemnd %s listening on http://%s:%u (database %s, %llu threads)",
            PEMN_VERSION_STRING, host, srv_port(s), cfg->db, (unsigned long long)cfg->threads);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    srv_log(SRV_LOG_INFO, "received %s: finishing in-flight requests",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    srv_stop(s);
    srv_log(SRV_LOG_INFO, "stopped; database closed");
    return 0;
}

/* Applies one --key[=value] flag; consumes the next argument as its value when needed. */
static int apply_flag(struct srv_config *cfg, int argc, char **argv, int *i)
{
    const char *a = argv[*i] + 2;
    char key[64];
    const char *eq = strchr(a, '=');
    size_t kl = eq ? (size_t)(eq - a) : strlen(a);
    if (kl >= sizeof key) {
        fprintf(stderr, "pemnd: unknown option %s (see --help)\n", argv[*i]);
        return 2;
    }
    memcpy(key, a, kl);
    key[kl] = '\0';
    if (!srv_config_known(key)) {
        fprintf(stderr, "pemnd: unknown option --%s (see --help)\n", key);
        return 2;
    }
    const char *val;
    if (eq)
        val = eq + 1;
    else if (srv_config_is_bool(key) && (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0 ||
                                         pemnd_is_admin_command(argv[*i + 1])))
        val = "true";
    else if (*i + 1 < argc)
        val = argv[++*i];
    else {
        fprintf(stderr, "pemnd: --%s needs a value\n", key);
        return 2;
    }
    struct pemn_err e;
    if (srv_config_set(cfg, key, val, &e)) {
        fprintf(stderr, "pemnd: %s\n", e.msg);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct srv_config cfg;
    srv_config_defaults(&cfg);
    const char *config = NULL;
    int cmd = -1;
    bool print_config = false;
    /* pass 1: the config file, help, where a command starts */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("pemnd %s\n", PEMN_VERSION_STRING);
            return 0;
        }
        if (strcmp(argv[i], "--print-config") == 0) {
            print_config = true;
            continue;
        }
        if (strcmp(argv[i], "--config") == 0 || strncmp(argv[i], "--config=", 9) == 0) {
            if (argv[i][8] == '=')
                config = argv[i] + 9;
            else if (i + 1 < argc)
                config = argv[++i];
            else {
                fprintf(stderr, "pemnd: --config needs a file\n");
                return 2;
            }
            continue;
        }
        if (strncmp(argv[i], "--", 2) == 0) {
            const char *a = argv[i] + 2;
            if (!strchr(a, '=') && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 &&
                !(srv_config_is_bool(a) &&
                  (pemnd_is_admin_command(argv[i + 1]) || argv[i + 1][0] == '-')))
                if (!srv_config_is_bool(a) || strchr("tfyn01oTFYNO", argv[i + 1][0]))
                    i++;
            continue;
        }
        if (pemnd_is_admin_command(argv[i])) {
            cmd = i;
            break;
        }
        fprintf(stderr, "pemnd: unexpected argument '%s' (see --help)\n", argv[i]);
        return 2;
    }
    struct pemn_err e;
    if (config && srv_config_load_file(&cfg, config, &e)) {
        fprintf(stderr, "pemnd: %s\n", e.msg);
        return 2;
    }
    /* pass 2: flags override the file */
    int end = cmd < 0 ? argc : cmd;
    for (int i = 1; i < end; i++) {
        if (strcmp(argv[i], "--print-config") == 0)
            continue;
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0)
            continue;
        int rc = apply_flag(&cfg, end, argv, &i);
        if (rc)
            return rc;
    }
    if (print_config) {
        srv_config_print(&cfg, print_line, stdout);
        return 0;
    }
    if (cmd >= 0)
        return pemnd_admin(cfg.db, argc - cmd, argv + cmd);
    if (srv_config_validate(&cfg, &e)) {
        fprintf(stderr, "pemnd: %s\n", e.msg);
        return 2;
    }
    return run_daemon(&cfg);
}
