/*
 * pemn push — upload packages to a pemnd registry.
 */
#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd_oci.h"
#include "cli/pemn/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void push_usage(FILE *f)
{
    fprintf(f, "usage: pemn push [--server URL] [--token T] [--quiet] [--json] FILE.pemn...\n"
               "\n"
               "Uploads each package to /v1/models/<name>/versions/<version> (name and version\n"
               "from its manifest). The registry checks the signature against its trusted\n"
               "publisher keys. Pushing identical bytes again is harmless.\n"
               "To an OCI registry: pemn push FILE.pemn oci://HOST[:PORT]/REPO[:TAG]\n"
               "(options: pemn push --help oci://; docs/OCI.md).\n"
               "\n"
               "  -s, --server URL   registry base URL (default $PEMN_SERVER)\n"
               "  -t, --token T      bearer token with publish scope (default $PEMN_TOKEN)\n"
               "      --timeout S    give up after S seconds in total (default 3600)\n"
               "      --retries N    attempts without progress before giving up (default 6)\n"
               "  -q, --quiet        no progress bar, no summary\n"
               "      --json         print the registry's version object per package\n"
               "\n"
               "exit: 0 ok, 2 usage, 3 corrupt package, 4 bad signature, 5 untrusted signer,\n"
               "      7 network, 10 auth refused, 11 conflict (other bytes under that version)\n");
}

int cmd_push(int argc, char **argv)
{
    if (cli_oci_wanted(argc, argv)) /* oci://HOST/REPO: any OCI registry */
        return cli_oci_push(argc, argv);
    struct cli_net n;
    cli_net_init(&n);
    cli_net_catch_signals();
    bool json = false;
    static const struct option opts[] = {
        CLI_NET_LONGOPTS,
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "s:t:qh", opts, NULL)) != -1) {
        int k = cli_net_opt(&n, "push", ch, optarg);
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (k > 0)
            continue;
        switch (ch) {
        case 'j':
            json = true;
            break;
        default:
            return cli_help_or_usage(ch, push_usage);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "pemn push: no package given\n");
        push_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    pemn_client *c;
    int ex = cli_net_client("push", &n, NULL, &c);
    if (ex)
        return ex;
    int worst = CLI_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        struct cli_bar bar;
        cli_bar_init(&bar, "push", n.quiet || json);
        pemn_client_free(c);
        struct pemn_client_options o;
        pemn_client_options_init(&o);
        /* a fresh client per file keeps the progress callback bound to this bar */
        o.token = n.token;
        o.progress = cli_bar_cb;
        o.progress_user = &bar;
        if (n.timeout_s > 0)
            o.deadline_ms = (uint64_t)(n.timeout_s * 1000.0);
        if (n.retries)
            o.max_attempts = n.retries;
        struct pemn_err e = {0};
        pemn_rc rc = pemn_client_new(n.server, &o, &c, &e);
        if (rc)
            return cli_fail("push", rc, &e);
        struct pemn_resolved r;
        int created = 0;
        rc = pemn_client_push(c, argv[i], &r, &created, &e);
        cli_bar_end(&bar);
        if (rc) {
            fprintf(stderr, "pemn push: %s not pushed:\n", argv[i]);
            int x = cli_fail("push", rc, &e);
            if (worst == CLI_EXIT_OK)
                worst = x;
            continue;
        }
        char sz[32];
        if (json) {
            json_t *jo = cli_net_vo_json(&r);
            if (jo) {
                json_object_set_new(jo, "file", json_string(argv[i]));
                json_object_set_new(jo, "created", json_boolean(created));
            }
            cli_net_print_json(jo);
        } else if (!n.quiet)
            printf("%s %s (release %llu): %s, %s, %s\n", CLI_ESC(r.model), CLI_ESC(r.version),
                   (unsigned long long)r.release, created ? "pushed" : "already present",
                   cli_human_size(r.size, sz, sizeof sz), CLI_ESC(r.digest));
    }
    pemn_client_free(c);
    return worst;
}
