/*
 * pemn verify — check a package's content digest and Ed25519 signature, and that the
 * signer is one of the trusted keys.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pkg.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

static void help(void)
{
    printf("usage: pemn verify MODEL.pemn --trust KEY.pub [--trust KEY2.pub ...] [--json]\n\n"
           "Checks the package's structure, its content digest, its Ed25519 signature (by the\n"
           "public key embedded in it), and that this signer is one of the --trust keys.\n\n"
           "  --trust FILE   a trusted publisher key (.pub); repeatable, at least one\n"
           "  --json         print {\"ok\", \"result\", \"message\", \"digest\", \"signer\"}\n"
           "  -h, --help     this text\n\n"
           "exit: 0 verified, 3 corrupt (malformed, or content digest wrong),\n"
           "      4 bad signature, 5 signer not trusted, 6 file not found,\n"
           "      2 usage (or a malformed key file), 1 other failure\n");
}

#define MAX_TRUST 4096

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"trust", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char **trust = calloc(MAX_TRUST, sizeof *trust);
    if (!trust)
        return cli_fail("verify", PEMN_ENOMEM, NULL);
    size_t nt = 0;
    int json = 0, c, ret;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ht:", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (nt == MAX_TRUST) {
                free(trust);
                return cli_usage("verify", "too many --trust keys");
            }
            trust[nt++] = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            free(trust);
            help();
            return CLI_EXIT_OK;
        case ':':
            free(trust);
            return cli_usage("verify", "%s needs a value", argv[optind - 1]);
        default:
            free(trust);
            return cli_usage("verify", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) {
        free(trust);
        return cli_usage("verify", "expected one package file");
    }
    if (nt == 0) {
        free(trust);
        return cli_usage("verify", "at least one --trust KEY.pub is required");
    }
    const char *path = argv[optind];

    struct pemn_err e = {0};
    pemn_keyring *kr = NULL;
    pemn_pkg *pkg = NULL;
    pemn_rc rc = cli_load_trust(trust, nt, &kr, &e);
    free(trust);
    if (rc != PEMN_OK)
        return cli_fail("verify", rc, &e);
    rc = pemn_pkg_open_file(path, 0, &pkg, &e);
    if (rc != PEMN_OK) {
        pemn_keyring_free(kr);
        return cli_fail("verify", rc, &e);
    }
    struct pemn_pkg_info in;
    char digest[PEMN_DIGEST_TEXT_MAX], signer[PEMN_KEYID_TEXT_MAX] = "";
    uint8_t dg[PEMN_DIGEST_BYTES];
    pemn_pkg_digest(pkg, dg);
    pemn_digest_format(dg, digest);
    if (pemn_pkg_info(pkg, &in) == PEMN_OK)
        pemn_keyid_format(in.signer_id, signer);
    rc = pemn_pkg_verify(pkg, kr, &e);
    const char *what;
    switch (rc) {
    case PEMN_OK:
        what = "verified";
        break;
    case PEMN_ECORRUPT:
        what = "corrupt: the content does not match its digest";
        break;
    case PEMN_EBADSIG:
        what = "bad signature: the package was not signed by the key it names";
        break;
    case PEMN_EUNTRUSTED:
        what = "untrusted signer: the signature is valid but its key is not trusted";
        break;
    default:
        what = pemn_strerror(rc);
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(rc == PEMN_OK));
        json_object_set_new(o, "result", json_string(pemn_rc_name(rc)));
        json_object_set_new(o, "message", json_string(rc == PEMN_OK || !e.msg[0] ? what : e.msg));
        json_object_set_new(o, "digest", json_string(digest));
        json_object_set_new(o, "signer", json_string(signer));
        ret = cli_print_json("verify", o);
        if (rc != PEMN_OK)
            ret = cli_exit_code(rc);
    } else if (rc == PEMN_OK) {
        printf("%s: verified, signed by %s\ndigest %s\n", path, signer, digest);
        ret = CLI_EXIT_OK;
    } else {
        fprintf(stderr, "pemn verify: %s: %s (signer %s)\n", path, what, signer);
        if (e.rc == rc && e.msg[0])
            fprintf(stderr, "  %s\n", e.msg);
        ret = cli_exit_code(rc);
    }
    pemn_pkg_free(pkg);
    pemn_keyring_free(kr);
    return ret;
}
