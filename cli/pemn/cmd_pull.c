/*
 * pemn pull — resolve a model on a registry, download it (resuming over bad networks),
 * verify digest and signature against pinned keys, install atomically, and optionally
 * reconstruct the dense network as safetensors in the same step.
 */
#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd.h"
#include "proto/fsutil.h"

#include <pemn/key.h>
#include <pemn/pkg.h>
#include <pemn/trust.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRUST 64

static void pull_usage(FILE *f)
{
    fprintf(f, "usage: pemn pull [--server URL] [--token T] --trust KEY.pub [--trust ...]\n"
               "                 [--root ROOT.json]\n"
               "                 [--out FILE] [--expand DENSE.safetensors] [--cache DIR | "
               "--no-cache]\n"
               "                 [--min-release N] [--timeout S] [--retries N] [--quiet] [--json]\n"
               "                 NAME[:VERSION|@TAG]\n"
               "\n"
               "Resolves NAME (latest version), NAME:VERSION or NAME@TAG, downloads the package\n"
               "into FILE.part (resuming with Range after a dropped connection, retrying 5xx/429\n"
               "with backoff), and installs it at FILE only when its SHA-256 equals the\n"
               "registry's digest and its signature verifies under one of the --trust keys.\n"
               "Otherwise nothing is installed and the reason is printed.\n"
               "\n"
               "  -s, --server URL    registry base URL (default $PEMN_SERVER)\n"
               "  -t, --token T       bearer token (default $PEMN_TOKEN)\n"
               "  -k, --trust KEY.pub trusted publisher key (repeatable; default: the files in\n"
               "                      $PEMN_TRUST, separated by ':')\n"
               "      --root ROOT.json root of trust (docs/TRUST.md): the package must also be\n"
               "                      signed by publishers the root allows for NAME, at its\n"
               "                      threshold, none revoked, and the root must not be\n"
               "                      expired; with --root, --trust is optional\n"
               "  -o, --out FILE      where to install the package (default NAME-VERSION.pemn)\n"
               "  -x, --expand FILE   also write the dense network as safetensors to FILE\n"
               "      --cache DIR     content-addressed cache of verified packages\n"
               "                      (default $PEMN_CACHE; none when unset)\n"
               "      --no-cache      do not use a cache\n"
               "      --min-release N refuse a package whose release is below N (rollback)\n"
               "      --timeout S     give up after S seconds in total (default 3600)\n"
               "      --retries N     attempts without progress before giving up (default 6)\n"
               "      --limit-rate R  download at most R bytes/s (suffix k, M, G: 10^3...)\n"
               "  -q, --quiet         no progress bar, no summary\n"
               "      --json          print a JSON summary (bytes received, requests, time...)\n"
               "\n"
               "A progress bar (bytes, rate, ETA) is drawn on stderr when it is a terminal.\n"
               "exit: 0 ok, 2 usage, 3 corrupt, 4 bad signature, 5 untrusted signer, 6 not\n"
               "      found, 7 network, 8 digest mismatch, 9 rollback refused, 10 auth refused,\n"
               "      12 root expired, 13 signer revoked\n");
}

static int load_trust(char **files, size_t n, pemn_keyring **out)
{
    pemn_keyring *kr;
    if (pemn_keyring_new(&kr) != PEMN_OK) {
        fprintf(stderr, "pemn pull: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        struct pemn_err e = {0};
        pemn_rc rc = pemn_keyring_add_file(kr, files[i], &e);
        if (rc) {
            pemn_keyring_free(kr);
            return cli_fail("pull", rc, &e); /* the message names the file */
        }
    }
    *out = kr;
    return 0;
}

static int expand(const char *pkg_path, const char *st_path, bool quiet)
{
    pemn_pkg *pkg;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_pkg_open_file(pkg_path, 0, &pkg, &e);
    if (!rc)
        rc = pemn_pkg_write_safetensors(pkg, st_path, &e);
    pemn_pkg_free(pkg);
    if (rc) {
        fprintf(stderr, "pemn pull: package installed, but --expand %s failed:\n", st_path);
        return cli_fail("pull", rc, &e);
    }
    return 0;
}

int cmd_pull(int argc, char **argv)
{
    struct cli_net n;
    cli_net_init(&n);
    cli_net_catch_signals();
    bool json = false;
    const char *out = NULL, *dense = NULL;
    char *trust[MAX_TRUST];
    size_t n_trust = 0;
    uint64_t min_release = 0;
    const char *root_path = NULL;
    static const struct option opts[] = {
        CLI_NET_LONGOPTS,
        {"trust", required_argument, NULL, 'k'},
        {"root", required_argument, NULL, 'R'},
        {"out", required_argument, NULL, 'o'},
        {"expand", required_argument, NULL, 'x'},
        {"min-release", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "s:t:qk:o:x:h", opts, NULL)) != -1) {
        int k = cli_net_opt(&n, "pull", ch, optarg);
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (k > 0)
            continue;
        char *end;
        switch (ch) {
        case 'k':
            if (n_trust >= MAX_TRUST) {
                fprintf(stderr, "pemn pull: at most %d --trust keys\n", MAX_TRUST);
                return CLI_EXIT_USAGE;
            }
            trust[n_trust++] = optarg;
            break;
        case 'R':
            root_path = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'x':
            dense = optarg;
            break;
        case 'm':
            min_release = strtoull(optarg, &end, 10);
            if (*end || optarg[0] == '-' || !optarg[0]) {
                fprintf(stderr, "pemn pull: bad --min-release '%s'\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            pull_usage(stdout);
            return CLI_EXIT_OK;
        default:
            pull_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "pemn pull: expected one NAME[:VERSION|@TAG]\n");
        pull_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char name[PEMN_LABEL_BUF], version[PEMN_LABEL_BUF], tag[PEMN_LABEL_BUF];
    struct pemn_err e = {0};
    pemn_rc rc = pemn_client_parse_ref(argv[optind], name, version, tag, &e);
    if (rc) {
        fprintf(stderr, "pemn pull: %s\n", e.msg);
        return CLI_EXIT_USAGE;
    }
    char *env_trust = NULL;
    if (n_trust == 0 && getenv("PEMN_TRUST") && *getenv("PEMN_TRUST")) {
        env_trust = strdup(getenv("PEMN_TRUST"));
        if (!env_trust)
            return CLI_EXIT_FAIL;
        for (char *save = NULL, *p = strtok_r(env_trust, ":", &save); p && n_trust < MAX_TRUST;
             p = strtok_r(NULL, ":", &save))
            trust[n_trust++] = p;
    }
    if (n_trust == 0 && !root_path) {
        free(env_trust);
        fprintf(stderr, "pemn pull: give at least one --trust KEY.pub (or set PEMN_TRUST):\n"
                        "  a package is installed only when a trusted key signed it\n");
        return CLI_EXIT_USAGE;
    }
    pemn_keyring *kr = NULL;
    int ex = n_trust ? load_trust(trust, n_trust, &kr) : 0;
    free(env_trust);
    if (ex)
        return ex;
    pemn_root *root = NULL;
    if (root_path) {
        rc = pemn_root_load(root_path, &root, &e);
        if (rc) {
            pemn_keyring_free(kr);
            return cli_fail("pull", rc, &e);
        }
        n.root = root;
    }
    pemn_client *c = NULL;
    ex = cli_net_client("pull", &n, kr, &c);
    if (ex) {
        pemn_keyring_free(kr);
        pemn_root_free(root);
        return ex;
    }

    uint64_t t0 = cli_net_now_ms();
    struct pemn_resolved r;
    rc = pemn_client_resolve(c, name, version, tag, &r, &e);
    if (rc) {
        ex = cli_fail("pull", rc, &e);
        goto done;
    }
    char def_out[2 * PEMN_LABEL_BUF + 8];
    if (!out) {
        snprintf(def_out, sizeof def_out, "%s-%s.pemn", r.model, r.version);
        out = def_out;
    }
    /* the folders named by --out and --expand are created, as a user asking for
     * dev/model.pemn expects */
    if ((rc = proto_mkdir_parent(out, 0755, &e)) != PEMN_OK ||
        (dense && (rc = proto_mkdir_parent(dense, 0755, &e)) != PEMN_OK)) {
        ex = cli_fail("pull", rc, &e);
        goto done;
    }
    struct cli_bar bar;
    char label[PEMN_LABEL_BUF + 8];
    snprintf(label, sizeof label, "%.60s:%.60s", r.model, r.version);
    cli_bar_init(&bar, label, n.quiet || json);
    struct pemn_fetch_options fo = {
        .min_release = min_release, .progress = cli_bar_cb, .progress_user = &bar};
    struct pemn_fetch_stats st;
    rc = pemn_client_fetch(c, &r, out, &fo, &st, &e);
    cli_bar_end(&bar);
    if (rc == PEMN_ECANCELED) {
        fprintf(stderr, "pemn pull: interrupted; run the same command again to resume\n");
        ex = cli_fail("pull", rc, &e);
        goto done;
    }
    if (rc) {
        ex = cli_fail("pull", rc, &e);
        goto done;
    }
    uint64_t t_fetch = cli_net_now_ms();
    if (dense) {
        ex = expand(out, dense, n.quiet);
        if (ex)
            goto done;
    }
    uint64_t t1 = cli_net_now_ms();
    char sz[32], rx[32];
    if (json) {
        json_t *o = cli_net_vo_json(&r);
        if (o) {
            json_object_set_new(o, "path", json_string(out));
            if (dense)
                json_object_set_new(o, "expanded", json_string(dense));
            json_object_set_new(o, "bytes_received", json_integer((json_int_t)st.bytes_received));
            json_object_set_new(o, "requests", json_integer(st.requests));
            json_object_set_new(o, "resumes", json_integer(st.resumes));
            json_object_set_new(o, "restarts", json_integer(st.restarts));
            json_object_set_new(o, "from_cache", json_boolean(st.from_cache));
            json_object_set_new(o, "fetch_seconds", json_real((double)(t_fetch - t0) / 1000.0));
            json_object_set_new(o, "seconds", json_real((double)(t1 - t0) / 1000.0));
        }
        cli_net_print_json(o);
    } else if (!n.quiet) {
        fprintf(stderr, "%s %s (release %" PRIu64 "): %s, verified, installed %s", r.model,
                r.version, r.release,
                st.from_cache ? "from cache" : cli_human_size(st.bytes_received, rx, sizeof rx),
                out);
        if (dense)
            fprintf(stderr, ", expanded to %s", dense);
        fprintf(stderr, " (%s package, %.2f s)\n", cli_human_size(r.size, sz, sizeof sz),
                (double)(t1 - t0) / 1000.0);
    }
    ex = CLI_EXIT_OK;
done:
    pemn_client_free(c);
    pemn_keyring_free(kr);
    pemn_root_free(root);
    return ex;
}
