/*
 * pemn sign — add a co-signature to a package (threshold signing, format 1.1).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pkg.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

static void help(FILE *f)
{
    fprintf(f, "usage: pemn sign MODEL.pemn --key KEY.key [--out OUT.pemn]\n\n"
               "Adds KEY's Ed25519 signature to the package, beside those it carries (format\n"
               "1.1 co-signatures, docs/FORMAT.md): a root of trust can require several\n"
               "publishers to sign a model (docs/TRUST.md). The content and its digest do not\n"
               "change; the file's identity (SHA-256 of the whole file) does. The existing\n"
               "signatures are checked first. Written atomically to --out (default: in place).\n\n"
               "  -k, --key FILE   the secret key (.key) that signs\n"
               "  -o, --out FILE   write here instead of replacing MODEL.pemn\n"
               "  -h, --help       this text\n\n"
               "exit: 0 signed, 2 usage, 3 corrupt or format 1.0 (re-pack it), 4 a signature\n"
               "      does not verify, 6 not found, 11 already signed by this key, 1 other\n");
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *out = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hk:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            help(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage("sign", "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage("sign", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return cli_usage("sign", "expected one package file");
    if (!key)
        return cli_usage("sign", "--key KEY.key is required");
    const char *path = argv[optind];
    if (!out)
        out = path;
    struct pemn_err e = {0};
    struct pemn_seckey sk;
    pemn_rc rc = pemn_seckey_load(key, &sk, &e);
    if (rc)
        return cli_fail("sign", rc, &e);
    pemn_pkg *pkg = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    rc = pemn_pkg_open_file(path, PEMN_OPEN_COPY, &pkg, &e);
    if (!rc)
        rc = pemn_pkg_add_signature(pkg, &sk, &bytes, &len, &e);
    pemn_seckey_wipe(&sk);
    uint32_t n = pkg ? pemn_pkg_signer_count(pkg) + 1 : 0;
    pemn_pkg_free(pkg);
    if (!rc)
        rc = cli_write_file(out, bytes, len, &e);
    if (rc) {
        free(bytes);
        return cli_fail("sign", rc, &e);
    }
    uint8_t d[PEMN_DIGEST_BYTES];
    char dig[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256(bytes, len, d);
    pemn_digest_format(d, dig);
    free(bytes);
    printf("%s: %u signatures\ndigest %s\n", out, n, dig);
    return CLI_EXIT_OK;
}
