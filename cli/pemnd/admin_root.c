/*
 * cli/pemnd/admin_root.c — `pemnd --db FILE root add ROOT.json | root list`: the registry's
 * copy of the root-of-trust chain (docs/TRUST.md). Only public root files come here; the
 * root secret keys stay on the offline machine that ran `pemn root`.
 */
#include "cli/pemnd/admin.h"

#include "server/srv_trust.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_CORRUPT = 3, EX_UNTRUSTED = 5, EX_NOTFOUND = 6 };
enum { EX_CONFLICT = 11, EX_EXPIRED = 12 };

static int exit_for(pemn_rc rc)
{
    switch (rc) {
    case PEMN_OK:
        return EX_OK;
    case PEMN_EINVAL:
        return EX_USAGE;
    case PEMN_ECORRUPT:
    case PEMN_EVERSION:
        return EX_CORRUPT;
    case PEMN_EUNTRUSTED:
    case PEMN_EBADSIG:
        return EX_UNTRUSTED;
    case PEMN_ENOTFOUND:
        return EX_NOTFOUND;
    case PEMN_EEXIST:
    case PEMN_ECONFLICT:
        return EX_CONFLICT;
    case PEMN_EEXPIRED:
        return EX_EXPIRED;
    default:
        return EX_FAIL;
    }
}

static int root_usage(void)
{
    fprintf(stderr,
            "usage: pemnd --db FILE root add ROOT.json\n"
            "       pemnd --db FILE root list\n"
            "root add stores a root of trust made by `pemn root` (docs/TRUST.md): the first\n"
            "one is taken as it is (its own signatures must meet its threshold); each later\n"
            "one must be the latest's successor (version + 1, signed by a threshold of the\n"
            "latest's root keys). Expired roots are refused. Served at GET /v1/root/N and\n"
            "/v1/root/latest.\n"
            "exit: 0 ok, 2 usage, 3 malformed root, 5 signatures do not meet a threshold,\n"
            "      6 file not found, 11 not the next version / conflict, 12 expired\n");
    return EX_USAGE;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "pemnd: %s: %s\n", path, strerror(errno));
        return errno == ENOENT ? EX_NOTFOUND : EX_FAIL;
    }
    uint8_t *b = malloc(PEMN_TRUST_MAX_BYTES + 1);
    size_t n = b ? fread(b, 1, PEMN_TRUST_MAX_BYTES + 1, f) : 0;
    int bad = !b || ferror(f);
    fclose(f);
    if (bad || n > PEMN_TRUST_MAX_BYTES) {
        free(b);
        fprintf(stderr, "pemnd: %s: %s\n", path,
                bad ? "cannot read it" : "larger than a root may be (1 MiB)");
        return EX_FAIL;
    }
    *out = b;
    *len = n;
    return EX_OK;
}

static int print_root(void *ctx, const struct store_root *r)
{
    (void)ctx;
    char exp[32], added[32];
    time_t te = (time_t)r->expires, ta = (time_t)r->added;
    struct tm tm;
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&te, &tm));
    strftime(added, sizeof added, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&ta, &tm));
    printf("%-8" PRIu64 " expires %s  added %s  %" PRIu64 " bytes  %s\n", r->version, exp, added,
           r->size, r->digest);
    return 0;
}

int pemnd_admin_root(struct store *st, int argc, char **argv)
{
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        root_usage();
        return EX_OK;
    }
    struct pemn_err e = {0};
    if (argc == 1 && !strcmp(argv[0], "list")) {
        printf("%-8s %s\n", "VERSION", "EXPIRES / ADDED / SIZE / DIGEST");
        pemn_rc rc = store_trust_root_list(st, print_root, NULL, &e);
        if (rc)
            fprintf(stderr, "pemnd: %s\n", e.msg[0] ? e.msg : pemn_strerror(rc));
        return exit_for(rc);
    }
    if (argc != 2 || strcmp(argv[0], "add") != 0)
        return root_usage();
    uint8_t *b = NULL;
    size_t n = 0;
    int ex = read_file(argv[1], &b, &n);
    if (ex)
        return ex;
    uint64_t version = 0;
    bool created = false;
    pemn_rc rc = srv_trust_root_add(st, b, n, (int64_t)time(NULL), "admin", &version, &created, &e);
    free(b);
    if (rc) {
        fprintf(stderr, "pemnd: root add %s: %s (%s)\n", argv[1],
                e.msg[0] ? e.msg : pemn_strerror(rc), pemn_rc_name(rc));
        return exit_for(rc);
    }
    printf("root version %" PRIu64 " %s\n", version, created ? "added" : "was already stored");
    return EX_OK;
}
