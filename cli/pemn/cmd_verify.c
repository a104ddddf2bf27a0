/*
 * pemn verify — check a package's content digest and Ed25519 signature, and that the
 * signer is one of the trusted keys.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pkg.h>
#include <pemn/trust.h>
#include <time.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

static void help(void)
{
    printf("usage: pemn verify MODEL.pemn [--trust KEY.pub ...] [--root ROOT.json [--model NAME]]\n"
           "                  [--json]\n\n"
           "Checks the package's structure, its content digest, every Ed25519 signature it\n"
           "carries (the trailer's and any co-signatures), and that a signer is one of the\n"
           "--trust keys. With --root (docs/TRUST.md), also that the root is not expired and\n"
           "that the package's signers are publishers the root allows for its model, at the\n"
           "model's threshold, none of them revoked. At least one of --trust, --root.\n\n"
           "  --trust FILE   a trusted publisher key (.pub); repeatable\n"
           "  --root FILE    a root of trust (checked alone: its own signatures, its expiry)\n"
           "  --model NAME   with --root: the package must be this model\n"
           "  --json         print {\"ok\", \"result\", \"message\", \"digest\", \"signer\"}\n"
           "  -h, --help     this text\n\n"
           "exit: 0 verified, 3 corrupt (malformed, or content digest wrong),\n"
           "      4 bad signature, 5 signer not trusted (or not allowed for the model, or\n"
           "      too few signatures), 6 file not found, 12 root expired, 13 signer revoked,\n"
           "      2 usage (or a malformed key file), 1 other failure\n");
}

#define MAX_TRUST 4096

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"trust", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"root", required_argument, NULL, 'r'},  {"model", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    char **trust = calloc(MAX_TRUST, sizeof *trust);
    if (!trust)
        return cli_fail("verify", PEMN_ENOMEM, NULL);
    size_t nt = 0;
    int json = 0, c, ret;
    const char *root_path = NULL, *model = NULL;
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
        case 'r':
            root_path = optarg;
            break;
        case 'm':
            model = optarg;
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
    if (nt == 0 && !root_path) {
        free(trust);
        return cli_usage("verify",
                         "at least one --trust KEY.pub or a --root ROOT.json is required");
    }
    if (model && !root_path) {
        free(trust);
        return cli_usage("verify", "--model goes with --root");
    }
    const char *path = argv[optind];

    struct pemn_err e = {0};
    pemn_keyring *kr = NULL;
    pemn_pkg *pkg = NULL;
    pemn_root *root = NULL;
    pemn_rc rc = nt ? cli_load_trust(trust, nt, &kr, &e) : PEMN_OK;
    free(trust);
    if (rc == PEMN_OK && root_path)
        rc = pemn_root_load(root_path, &root, &e);
    if (rc != PEMN_OK) {
        pemn_keyring_free(kr);
        return cli_fail("verify", rc, &e);
    }
    rc = pemn_pkg_open_file(path, 0, &pkg, &e);
    if (rc != PEMN_OK) {
        pemn_keyring_free(kr);
        pemn_root_free(root);
        return cli_fail("verify", rc, &e);
    }
    struct pemn_pkg_info in;
    char digest[PEMN_DIGEST_TEXT_MAX], signer[PEMN_KEYID_TEXT_MAX] = "";
    uint8_t dg[PEMN_DIGEST_BYTES];
    pemn_pkg_digest(pkg, dg);
    pemn_digest_format(dg, digest);
    if (pemn_pkg_info(pkg, &in) == PEMN_OK)
        pemn_keyid_format(in.signer_id, signer);
    rc = kr ? pemn_pkg_verify(pkg, kr, &e) : pemn_pkg_verify_signatures(pkg, &e);
    if (rc == PEMN_OK && root)
        rc = pemn_root_check_expiry(root, (int64_t)time(NULL), &e);
    if (rc == PEMN_OK && root)
        rc = pemn_root_check_package(root, model, pkg, &e);
    uint32_t nsig = pemn_pkg_signer_count(pkg);
    json_t *signers = json_array();
    for (uint32_t i = 0; i < nsig; i++) {
        struct pemn_pubkey pk;
        uint8_t id[PEMN_KEYID_BYTES];
        char hex[PEMN_KEYID_TEXT_MAX];
        if (pemn_pkg_signer(pkg, i, &pk, id) == PEMN_OK) {
            pemn_keyid_format(id, hex);
            json_array_append_new(signers, json_string(hex));
        }
    }
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
        what = root ? "untrusted: the signatures are valid but do not satisfy the root"
                    : "untrusted signer: the signature is valid but its key is not trusted";
        break;
    case PEMN_EREVOKED:
        what = "revoked: a signer's key is revoked by the root";
        break;
    case PEMN_EEXPIRED:
        what = "the root of trust has expired";
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
        json_object_set_new(o, "signers", signers);
        signers = NULL;
        if (root)
            json_object_set_new(o, "root_version",
                                json_integer((json_int_t)pemn_root_version(root)));
        ret = cli_print_json("verify", o);
        if (rc != PEMN_OK)
            ret = cli_exit_code(rc);
    } else if (rc == PEMN_OK) {
        printf("%s: verified, signed by %s", path, signer);
        for (size_t i = 1; i < json_array_size(signers); i++)
            printf(", %s", json_string_value(json_array_get(signers, i)));
        if (root)
            printf(" (root version %llu)", (unsigned long long)pemn_root_version(root));
        printf("\ndigest %s\n", digest);
        ret = CLI_EXIT_OK;
    } else {
        fprintf(stderr, "pemn verify: %s: %s (signer%s %s", path, what,
                json_array_size(signers) > 1 ? "s" : "", signer);
        for (size_t i = 1; i < json_array_size(signers); i++)
            fprintf(stderr, ", %s", json_string_value(json_array_get(signers, i)));
        fprintf(stderr, ")\n");
        if (e.rc == rc && e.msg[0])
            fprintf(stderr, "  %s\n", e.msg);
        ret = cli_exit_code(rc);
    }
    json_decref(signers);
    pemn_pkg_free(pkg);
    pemn_keyring_free(kr);
    pemn_root_free(root);
    return ret;
}
