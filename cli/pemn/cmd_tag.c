/*
 * pemn tag — point a tag at a version on a registry, or remove a tag.
 */
#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void tag_usage(FILE *f)
{
    fprintf(f, "usage: pemn tag [--server URL] [--token T] NAME VERSION TAG\n"
               "       pemn tag [--server URL] [--token T] --delete NAME TAG\n"
               "\n"
               "Points TAG (e.g. stable) of model NAME at VERSION, or removes it. Needs a\n"
               "token with publish scope.\n"
               "\n"
               "  -s, --server URL   registry base URL (default $PEMN_SERVER)\n"
               "  -t, --token T      bearer token (default $PEMN_TOKEN)\n"
               "  -d, --delete       remove the tag\n"
               "  -q, --quiet        print nothing on success\n"
               "      --json         print the tagged version object\n"
               "      --timeout S, --retries N   as for pemn pull\n"
               "\n"
               "exit: 0 ok, 2 usage, 6 no such model/version/tag, 7 network, 10 auth refused\n");
}

int cmd_tag(int argc, char **argv)
{
    struct cli_net n;
    cli_net_init(&n);
    cli_net_catch_signals();
    bool del = false, json = false;
    static const struct option opts[] = {
        CLI_NET_LONGOPTS,
        {"delete", no_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "s:t:qdh", opts, NULL)) != -1) {
        int k = cli_net_opt(&n, "tag", ch, optarg);
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (k > 0)
            continue;
        switch (ch) {
        case 'd':
            del = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            tag_usage(stdout);
            return CLI_EXIT_OK;
        default:
            tag_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    int want = del ? 2 : 3;
    if (argc - optind != want) {
        fprintf(stderr, "pemn tag: expected %s\n", del ? "NAME TAG" : "NAME VERSION TAG");
        tag_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    pemn_client *c;
    int ex = cli_net_client("tag", &n, NULL, &c);
    if (ex)
        return ex;
    struct pemn_err e = {0};
    pemn_rc rc;
    if (del) {
        rc = pemn_client_untag(c, argv[optind], argv[optind + 1], &e);
        if (!rc && !n.quiet)
            printf("%s@%s removed\n", argv[optind], argv[optind + 1]);
    } else {
        struct pemn_resolved r;
        rc = pemn_client_tag(c, argv[optind], argv[optind + 1], argv[optind + 2], &r, &e);
        if (!rc && json)
            cli_net_print_json(cli_net_vo_json(&r));
        else if (!rc && !n.quiet)
            printf("%s@%s -> %s (release %llu, %s)\n", CLI_ESC(r.model), argv[optind + 2],
                   CLI_ESC(r.version), (unsigned long long)r.release, CLI_ESC(r.digest));
    }
    pemn_client_free(c);
    return rc ? cli_fail("tag", rc, &e) : CLI_EXIT_OK;
}
