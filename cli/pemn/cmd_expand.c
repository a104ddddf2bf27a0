/*
 * pemn expand — reconstruct the dense network of a package as a safetensors file.
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
    printf("usage: pemn expand MODEL.pemn --out DENSE.safetensors [--trust KEY.pub ...]\n\n"
           "Writes the network as safetensors: masked tensors as F32 (weight where the mask\n"
           "keeps it, 0 elsewhere, bit-exact), dense tensors as stored; the manifest goes to\n"
           "__metadata__. The file is written atomically. With --trust the package must\n"
           "verify (digest, signature, trusted signer) or nothing is written; without it\n"
           "the package is expanded unverified (a warning says so).\n\n"
           "  --out FILE     the safetensors file to write (required)\n"
           "  --trust FILE   a trusted publisher key (.pub); repeatable\n"
           "  -h, --help     this text\n\n"
           "exit: 0 ok, 2 usage (or a malformed key file), 3 corrupt, 4 bad signature,\n"
           "      5 untrusted signer, 6 file not found, 1 other failure\n");
}

#define MAX_TRUST 4096

int cmd_expand(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"trust", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char **trust = calloc(MAX_TRUST, sizeof *trust);
    if (!trust)
        return cli_fail("expand", PEMN_ENOMEM, NULL);
    size_t nt = 0;
    const char *out = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 't':
            if (nt == MAX_TRUST) {
                free(trust);
                return cli_usage("expand", "too many --trust keys");
            }
            trust[nt++] = optarg;
            break;
        case 'h':
            free(trust);
            help();
            return CLI_EXIT_OK;
        case ':':
            free(trust);
            return cli_usage("expand", "%s needs a value", argv[optind - 1]);
        default:
            free(trust);
            return cli_usage("expand", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1 || !out) {
        free(trust);
        return cli_usage("expand", argc - optind != 1 ? "expected one package file"
                                                      : "--out DENSE.safetensors is required");
    }
    const char *path = argv[optind];

    struct pemn_err e = {0};
    pemn_keyring *kr = NULL;
    pemn_pkg *pkg = NULL;
    pemn_rc rc = PEMN_OK;
    int ret;
    if (nt && (rc = cli_load_trust(trust, nt, &kr, &e)) != PEMN_OK) {
        free(trust);
        return cli_fail("expand", rc, &e);
    }
    free(trust);
    if ((rc = pemn_pkg_open_file(path, 0, &pkg, &e)) != PEMN_OK) {
        ret = cli_fail("expand", rc, &e);
        goto out;
    }
    if (kr) {
        if ((rc = pemn_pkg_verify(pkg, kr, &e)) != PEMN_OK) {
            fprintf(stderr, "pemn expand: %s does not verify; nothing written\n", path);
            ret = cli_fail("expand", rc, &e);
            goto out;
        }
    } else {
        fprintf(stderr,
                "pemn expand: warning: %s expanded without verification "
                "(give --trust KEY.pub to require a trusted signature)\n",
                path);
    }
    if ((rc = pemn_pkg_write_safetensors(pkg, out, &e)) != PEMN_OK) {
        ret = cli_fail("expand", rc, &e);
        goto out;
    }
    struct pemn_pkg_info in;
    char h1[32], h2[32];
    if (pemn_pkg_info(pkg, &in) == PEMN_OK)
        printf("%s: %u tensors, %llu parameters -> %s (float32 network %s; package %s)\n", path,
               in.n_tensors, (unsigned long long)in.n_params, out,
               cli_human_size(in.f32_size, h1, sizeof h1),
               cli_human_size(in.file_size, h2, sizeof h2));
    ret = CLI_EXIT_OK;
out:
    pemn_pkg_free(pkg);
    pemn_keyring_free(kr);
    return ret;
}
