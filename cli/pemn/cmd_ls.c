/*
 * pemn ls — list the models of a registry, or one model's versions and tags.
 */
#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void ls_usage(FILE *f)
{
    fprintf(f, "usage: pemn ls [--server URL] [--token T] [--json] [NAME]\n"
               "\n"
               "Without NAME: every model with its latest version. With NAME: every version\n"
               "of that model, newest first, and its tags.\n"
               "\n"
               "  -s, --server URL   registry base URL (default $PEMN_SERVER)\n"
               "  -t, --token T      bearer token (default $PEMN_TOKEN; needed only when the\n"
               "                     registry requires tokens for reading)\n"
               "      --timeout S, --retries N   as for pemn pull\n"
               "      --json         machine-readable output\n"
               "\n"
               "exit: 0 ok, 2 usage, 6 no such model, 7 network, 10 auth refused\n");
}

static void tags_of(const struct pemn_listing *l, const char *version, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < l->n_tags; i++) {
        if (strcmp(l->tags[i].version, version) != 0)
            continue;
        int k = snprintf(buf + used, cap - used, "%s%s", used ? "," : "", l->tags[i].tag);
        if (k < 0 || (size_t)k >= cap - used)
            break;
        used += (size_t)k;
    }
}

static void print_table(const char *name, const struct pemn_listing *l)
{
    char sz[32], tg[512];
    if (!name) {
        printf("%-24s %-14s %8s %8s %10s %7s\n", "MODEL", "LATEST", "RELEASE", "VERSIONS", "SIZE",
               "RATIO");
        for (size_t i = 0; i < l->count; i++) {
            const struct pemn_resolved *v = &l->versions[i];
            printf("%-24s %-14s %8llu %8llu %10s %6.1fx\n", CLI_ESC(v->model),
                   v->version[0] ? CLI_ESC(v->version) : "-", (unsigned long long)v->release,
                   (unsigned long long)l->n_versions[i], cli_human_size(v->size, sz, sizeof sz),
                   v->ratio);
        }
        return;
    }
    printf("%-14s %8s %10s %7s %-19s %s\n", "VERSION", "RELEASE", "SIZE", "RATIO", "DIGEST",
           "TAGS");
    for (size_t i = 0; i < l->count; i++) {
        const struct pemn_resolved *v = &l->versions[i];
        tags_of(l, v->version, tg, sizeof tg);
        printf("%-14s %8llu %10s %6.1fx %.19s %s\n", CLI_ESC(v->version),
               (unsigned long long)v->release, cli_human_size(v->size, sz, sizeof sz), v->ratio,
               CLI_ESC(v->digest), CLI_ESC(tg));
    }
}

static json_t *listing_json(const char *name, const struct pemn_listing *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->count; i++) {
        json_t *vo = cli_net_vo_json(&l->versions[i]);
        if (!name)
            json_array_append_new(arr, json_pack("{s:s, s:o, s:I}", "name", l->versions[i].model,
                                                 "latest", vo, "versions",
                                                 (json_int_t)l->n_versions[i]));
        else
            json_array_append_new(arr, vo);
    }
    if (!name)
        return json_pack("{s:o}", "models", arr);
    json_t *tags = json_object();
    for (size_t i = 0; i < l->n_tags; i++)
        json_object_set_new(tags, l->tags[i].tag, json_string(l->tags[i].version));
    return json_pack("{s:s, s:o, s:o}", "name", name, "versions", arr, "tags", tags);
}

int cmd_ls(int argc, char **argv)
{
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
        int k = cli_net_opt(&n, "ls", ch, optarg);
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (k > 0)
            continue;
        switch (ch) {
        case 'j':
            json = true;
            break;
        case 'h':
            ls_usage(stdout);
            return CLI_EXIT_OK;
        default:
            ls_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "pemn ls: at most one model name\n");
        return CLI_EXIT_USAGE;
    }
    const char *name = optind < argc ? argv[optind] : NULL;
    pemn_client *c;
    int ex = cli_net_client("ls", &n, NULL, &c);
    if (ex)
        return ex;
    struct pemn_listing *l;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_client_list(c, name, &l, &e);
    pemn_client_free(c);
    if (rc)
        return cli_fail("ls", rc, &e);
    if (json)
        cli_net_print_json(listing_json(name, l));
    else
        print_table(name, l);
    pemn_listing_free(l);
    return CLI_EXIT_OK;
}
