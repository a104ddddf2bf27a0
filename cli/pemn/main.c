/*
 * pemn — command-line front end of libpemn. Thin: parse arguments, call the library, print.
 */
#include <stdio.h>
#include <string.h>

#include "cli/pemn/cmd.h"

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
};

static const struct command commands[] = {
    {"keygen", cmd_keygen, "make an Ed25519 publisher key pair"},
    {"pack", cmd_pack, "turn a safetensors checkpoint into a signed .pemn package"},
    {"inspect", cmd_inspect, "show a package's manifest, tensors and sizes"},
    {"verify", cmd_verify, "check a package's digest and signature against trusted keys"},
    {"expand", cmd_expand, "reconstruct the dense network as safetensors"},
    {"push", cmd_push, "upload a package to a pemnd registry"},
    {"ls", cmd_ls, "list models or versions on a registry"},
    {"tag", cmd_tag, "point a tag at a version on a registry"},
    {"pull", cmd_pull, "download, verify (and expand) a model from a registry"},
    {"agent", cmd_agent, "fleet agent: keep a device on its desired model"},
    {"train", cmd_train, "train a dense or PEMN (edge-popup) model"},
    {"eval", cmd_eval, "measure a model's test accuracy"},
    {"sign", cmd_sign, "add a co-signature to a package (threshold signing)"},
    {"root", cmd_root, "make, update and verify the root of trust (offline)"},
};

int cli_exit_code(pemn_rc rc)
{
    switch (rc) {
    case PEMN_OK:
        return CLI_EXIT_OK;
    case PEMN_EINVAL:
        return CLI_EXIT_USAGE;
    case PEMN_ECORRUPT:
    case PEMN_EVERSION:
        return CLI_EXIT_CORRUPT;
    case PEMN_EBADSIG:
        return CLI_EXIT_BADSIG;
    case PEMN_EUNTRUSTED:
        return CLI_EXIT_UNTRUSTED;
    case PEMN_ENOTFOUND:
        return CLI_EXIT_NOTFOUND;
    case PEMN_EHTTP:
    case PEMN_ETIMEOUT:
        return CLI_EXIT_NET;
    case PEMN_EDIGEST:
        return CLI_EXIT_DIGEST;
    case PEMN_EROLLBACK:
        return CLI_EXIT_ROLLBACK;
    case PEMN_EAUTH:
        return CLI_EXIT_AUTH;
    case PEMN_ECONFLICT:
    case PEMN_EEXIST:
        return CLI_EXIT_CONFLICT;
    case PEMN_EEXPIRED:
        return CLI_EXIT_EXPIRED;
    case PEMN_EREVOKED:
        return CLI_EXIT_REVOKED;
    default:
        return CLI_EXIT_FAIL;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: pemn <command> [options]   (pemn <command> --help for details)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].fn)
            fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 failure, 2 usage, 3 corrupt, 4 bad signature,\n"
               "  5 untrusted signer, 6 not found, 7 network, 8 digest mismatch,\n"
               "  9 rollback refused, 10 auth refused, 11 conflict, 12 expired,\n"
               "  13 revoked\n"
               "environment: PEMN_SERVER, PEMN_TOKEN (registry URL and token)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("pemn %s\n", PEMN_VERSION_STRING);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (!commands[i].fn) {
            fprintf(stderr, "pemn: '%s' is not available in this build\n", argv[1]);
            return CLI_EXIT_FAIL;
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "pemn: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
