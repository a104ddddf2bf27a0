/*
 * pemn diff / pemn patch — make a delta (.pemnd) between two packages, and rebuild the new
 * package from the old one and a delta, then verify it as a downloaded package is.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pemn/delta.h>
#include <pemn/pkg.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

#define MAX_DELTA_FILE (UINT64_C(1) << 36)
#define MAX_TRUST 4096

/* Reads a whole regular file (malloc'ed). */
static pemn_rc read_file(const char *path, uint8_t **out, size_t *len, struct pemn_err *e)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(e->msg, sizeof e->msg, "%s: %s", path, strerror(errno));
        return e->rc = errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_DELTA_FILE) {
        close(fd);
        snprintf(e->msg, sizeof e->msg, "%s: not a regular file of at most 64 GiB", path);
        return e->rc = PEMN_EIO;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return e->rc = PEMN_ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            free(b);
            snprintf(e->msg, sizeof e->msg, "%s: read failed", path);
            return e->rc = PEMN_EIO;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = b;
    *len = n;
    return PEMN_OK;
}

static void diff_help(void)
{
    printf("usage: pemn diff OLD.pemn NEW.pemn --out UPDATE.pemnd [--json]\n\n"
           "Writes a delta that turns OLD into NEW (pemn patch). Masks of tensors present in\n"
           "both with the same size are sent as the positions of the bits that flip (Golomb-\n"
           "coded, near their entropy); everything else as copies of OLD's bytes or\n"
           "literal bytes (docs/FORMAT.md, \"Delta files\"). Neither package is verified: the\n"
           "delta carries no trust, pemn patch verifies what it rebuilds.\n\n"
           "  --out FILE   the delta (written atomically)\n"
           "  --json       print the sizes as JSON\n"
           "  -h, --help   this text\n\n"
           "exit: 0 ok, 2 usage, 3 a package is malformed, 6 not found, 1 other failure\n");
}

int cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *outp = NULL;
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            outp = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            diff_help();
            return CLI_EXIT_OK;
        case ':':
            return cli_usage("diff", "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage("diff", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage("diff", "expected OLD.pemn and NEW.pemn");
    if (!outp)
        return cli_usage("diff", "--out UPDATE.pemnd is required");
    struct pemn_err e = {0};
    pemn_pkg *a = NULL, *b = NULL;
    pemn_rc rc = pemn_pkg_open_file(argv[optind], 0, &a, &e);
    if (!rc)
        rc = pemn_pkg_open_file(argv[optind + 1], 0, &b, &e);
    if (rc) {
        pemn_pkg_free(a);
        return cli_fail("diff", rc, &e);
    }
    size_t la, lb, ld;
    const uint8_t *pa = pemn_pkg_bytes(a, &la), *pb = pemn_pkg_bytes(b, &lb);
    uint8_t *d = NULL;
    struct pemn_delta_stats st;
    rc = pemn_delta_make(pa, la, pb, lb, &d, &ld, &st, &e);
    if (!rc)
        rc = cli_write_file(outp, d, ld, &e);
    free(d);
    pemn_pkg_free(a);
    pemn_pkg_free(b);
    if (rc)
        return cli_fail("diff", rc, &e);
    if (json) {
        json_t *o =
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I}", "out", outp,
                      "delta_bytes", (json_int_t)ld, "new_bytes", (json_int_t)lb, "mask_tensors",
                      (json_int_t)st.mask_tensors, "mask_bits", (json_int_t)st.mask_bits, "flips",
                      (json_int_t)st.flips, "ideal_flip_bytes", st.ideal_bytes, "flip_bytes",
                      (json_int_t)st.flip_bytes, "copied_bytes", (json_int_t)st.copied_bytes,
                      "literal_bytes", (json_int_t)st.literal_bytes);
        return cli_print_json("diff", o);
    }
    printf("%s: %zu bytes (new package %zu bytes, %.1fx smaller)\n", outp, ld, lb,
           ld ? (double)lb / (double)ld : 0.0);
    printf("  masks: %llu tensors, %llu of %llu bits flip (%.3f%%): %llu bytes of positions, "
           "entropy %.0f bytes\n",
           (unsigned long long)st.mask_tensors, (unsigned long long)st.flips,
           (unsigned long long)st.mask_bits,
           st.mask_bits ? 100.0 * (double)st.flips / (double)st.mask_bits : 0.0,
           (unsigned long long)st.flip_bytes, st.ideal_bytes);
    printf("  other bytes: %llu copied from OLD, %llu literal\n",
           (unsigned long long)st.copied_bytes, (unsigned long long)st.literal_bytes);
    return CLI_EXIT_OK;
}

static void patch_help(void)
{
    printf("usage: pemn patch OLD.pemn UPDATE.pemnd --out NEW.pemn --trust KEY.pub [...]\n"
           "                  [--json]\n\n"
           "Rebuilds NEW from OLD and a delta made by pemn diff, byte for byte, then checks it\n"
           "as a download is checked: the SHA-256 the delta names, the package structure, its\n"
           "signature by one of the --trust keys, and that its release is not lower than\n"
           "OLD's. Only then is --out written (atomically); on any failure nothing is written.\n\n"
           "  --out FILE     the rebuilt package\n"
           "  --trust FILE   a trusted publisher key (.pub); repeatable, at least one\n"
           "  --json         print the result as JSON\n"
           "  -h, --help     this text\n\n"
           "exit: 0 ok, 2 usage, 3 corrupt delta or package, 4 bad signature, 5 untrusted,\n"
           "      6 not found, 8 the delta is for another base (or rebuilds the wrong bytes),\n"
           "      9 the release would go backwards, 1 other failure\n");
}

int cmd_patch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"trust", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *trust[MAX_TRUST];
    size_t nt = 0;
    const char *outp = NULL;
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            outp = optarg;
            break;
        case 't':
            if (nt == MAX_TRUST)
                return cli_usage("patch", "too many --trust keys");
            trust[nt++] = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            patch_help();
            return CLI_EXIT_OK;
        case ':':
            return cli_usage("patch", "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage("patch", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage("patch", "expected OLD.pemn and UPDATE.pemnd");
    if (!outp)
        return cli_usage("patch", "--out NEW.pemn is required");
    if (nt == 0)
        return cli_usage("patch", "at least one --trust KEY.pub is required");
    struct pemn_err e = {0};
    pemn_keyring *kr = NULL;
    pemn_pkg *a = NULL, *n = NULL;
    uint8_t *d = NULL, *res = NULL;
    size_t ld = 0, lr = 0, la;
    pemn_rc rc = cli_load_trust(trust, nt, &kr, &e);
    if (!rc)
        rc = pemn_pkg_open_file(argv[optind], 0, &a, &e);
    if (!rc)
        rc = read_file(argv[optind + 1], &d, &ld, &e);
    if (!rc) {
        const uint8_t *pa = pemn_pkg_bytes(a, &la);
        rc = pemn_delta_apply(pa, la, d, ld, &res, &lr, &e);
    }
    if (!rc)
        rc = pemn_pkg_open_mem(res, lr, 0, &n, &e);
    if (!rc)
        rc = pemn_pkg_verify(n, kr, &e);
    struct pemn_pkg_info ia, in;
    if (!rc && pemn_pkg_info(a, &ia) == PEMN_OK && pemn_pkg_info(n, &in) == PEMN_OK &&
        in.release < ia.release) {
        snprintf(e.msg, sizeof e.msg, "release %llu is lower than the base's %llu",
                 (unsigned long long)in.release, (unsigned long long)ia.release);
        rc = e.rc = PEMN_EROLLBACK;
    }
    if (!rc)
        rc = cli_write_file(outp, res, lr, &e);
    char dg[PEMN_DIGEST_TEXT_MAX] = "";
    if (!rc) {
        uint8_t raw[PEMN_DIGEST_BYTES];
        pemn_pkg_digest(n, raw);
        pemn_digest_format(raw, dg);
    }
    pemn_pkg_free(n);
    pemn_pkg_free(a);
    pemn_keyring_free(kr);
    free(res);
    free(d);
    if (rc)
        return cli_fail("patch", rc, &e);
    if (json)
        return cli_print_json("patch",
                              json_pack("{s:s, s:s, s:I, s:I}", "out", outp, "digest", dg, "bytes",
                                        (json_int_t)lr, "delta_bytes", (json_int_t)ld));
    printf("%s: rebuilt (%zu bytes from a %zu-byte delta), verified\ndigest %s\n", outp, lr, ld,
           dg);
    return CLI_EXIT_OK;
}
