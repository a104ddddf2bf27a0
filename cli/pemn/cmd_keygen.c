/*
 * pemn keygen — make an Ed25519 publisher key pair: BASE.key (0600) and BASE.pub.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/key.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

static void help(void)
{
    printf("usage: pemn keygen --out BASE [--json]\n\n"
           "Makes an Ed25519 publisher key pair: BASE.key (the secret seed, mode 0600) and\n"
           "BASE.pub (the public key to hand to verifiers with --trust). Existing files are\n"
           "never overwritten. Prints the key id (16 hex digits: the first 8 bytes of\n"
           "SHA-256 of the public key).\n\n"
           "  --out BASE   path prefix of the two files (required)\n"
           "  --json       print {\"key_id\", \"secret_key\", \"public_key\"} as JSON\n"
           "  -h, --help   this text\n\n"
           "exit: 0 ok, 2 usage, 11 a key file already exists, 1 other failure\n");
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *base = NULL;
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            base = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            help();
            return CLI_EXIT_OK;
        case ':':
            return cli_usage("keygen", "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage("keygen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("keygen", "unexpected argument '%s'", argv[optind]);
    if (!base || !*base)
        return cli_usage("keygen", "--out BASE is required");

    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_key_generate(&sk, &pk);
    if (rc != PEMN_OK)
        return cli_fail("keygen", rc, NULL);
    rc = pemn_key_save(base, &sk, &e);
    pemn_seckey_wipe(&sk);
    if (rc != PEMN_OK)
        return cli_fail("keygen", rc, &e);

    char id[PEMN_KEYID_TEXT_MAX];
    pemn_key_id_hex(&pk, id);
    if (json) {
        json_t *o = json_object();
        char *k = NULL, *p = NULL;
        if (o && asprintf(&k, "%s.key", base) >= 0 && asprintf(&p, "%s.pub", base) >= 0) {
            json_object_set_new(o, "key_id", json_string(id));
            json_object_set_new(o, "secret_key", json_string(k));
            json_object_set_new(o, "public_key", json_string(p));
        }
        free(k);
        free(p);
        return cli_print_json("keygen", o);
    }
    printf("key id     %s\nsecret key %s.key (keep it private)\npublic key %s.pub\n", id, base,
           base);
    return CLI_EXIT_OK;
}
