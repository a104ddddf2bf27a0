/*
 * cli/pemnd/admin.c — `pemnd --db FILE token|key|audit ...`.
 */
#include "cli/pemnd/admin.h"

#include "server/srv_trust.h"
#include "storage/store.h"

#include <pemn/key.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_NOTFOUND = 6, EX_CONFLICT = 11 };

static int exit_for(pemn_rc rc)
{
    switch (rc) {
    case PEMN_OK:
        return EX_OK;
    case PEMN_ENOTFOUND:
        return EX_NOTFOUND;
    case PEMN_EEXIST:
    case PEMN_ECONFLICT:
        return EX_CONFLICT;
    case PEMN_EINVAL:
        return EX_USAGE;
    default:
        return EX_FAIL;
    }
}

/* Prints a failure (when rc is not PEMN_OK) and maps rc to the exit status. */
static int finish(pemn_rc rc, const struct pemn_err *e)
{
    if (rc)
        fprintf(stderr, "pemnd: %s\n", e->msg[0] ? e->msg : pemn_strerror(rc));
    return exit_for(rc);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: pemnd --db FILE token create --scope read|publish|admin|device [--name NAME]\n"
            "                                    [--device ID] [--fleet FLEET]  (device scope)\n"
            "       pemnd --db FILE token revoke NAME\n"
            "       pemnd --db FILE token list\n"
            "       pemnd --db FILE key add KEY.pub [--name NAME]\n"
            "       pemnd --db FILE key remove NAME|ID\n"
            "       pemnd --db FILE key list\n"
            "       pemnd --db FILE audit [--limit N]\n"
            "       pemnd --db FILE root add ROOT.json | root list\n");
    return EX_USAGE;
}

static void fmt_time(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A valid name for tokens and keys: the API's name pattern. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

/* Parses "--name X" / "--scope X" / "--limit X" options after the positional ones. */
static const char *opt(int argc, char **argv, const char *name, int *bad)
{
    const char *v = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        const char *a = argv[i] + 2, *eq = strchr(a, '=');
        size_t al = eq ? (size_t)(eq - a) : strlen(a);
        if (al == strlen(name) && strncmp(a, name, al) == 0) {
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                *bad = 1;
        }
    }
    return v;
}

/* Rejects options other than those allowed; counts positionals. */
static int check_args(int argc, char **argv, const char *const *allowed, int *n_pos)
{
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            (*n_pos)++;
            continue;
        }
        const char *a = argv[i] + 2, *eq = strchr(a, '=');
        size_t al = eq ? (size_t)(eq - a) : strlen(a);
        int ok = 0;
        for (int k = 0; allowed[k]; k++)
            if (al == strlen(allowed[k]) && strncmp(a, allowed[k], al) == 0)
                ok = 1;
        if (!ok) {
            fprintf(stderr, "pemnd: unknown option %s\n", argv[i]);
            return -1;
        }
        if (!eq)
            i++;
    }
    return 0;
}

static const char *positional(int argc, char **argv, int k)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            if (!strchr(argv[i], '='))
                i++;
            continue;
        }
        if (k-- == 0)
            return argv[i];
    }
    return NULL;
}

static int print_token(void *ctx, const struct store_token *t)
{
    char c[32], r[32] = "-";
    fmt_time(t->created, c, sizeof c);
    if (t->revoked)
        fmt_time(t->revoked, r, sizeof r);
    printf("%-32s %-8s created %s  %s%s", t->name, store_scope_name(t->scope), c,
           t->revoked ? "revoked " : "active", t->revoked ? r : "");
    if (t->device[0])
        printf("  device=%s", t->device);
    if (t->fleet[0])
        printf("  fleet=%s", t->fleet);
    printf("\n");
    return 0;
}

static int print_key(void *ctx, const struct store_key *k)
{
    char a[32], text[PEMN_PUBKEY_TEXT_MAX];
    fmt_time(k->added, a, sizeof a);
    pemn_pubkey_format(&k->pub, text);
    printf("%s  %-24s added %s  %s\n", k->id, k->name, a, text);
    return 0;
}

static int print_audit(void *ctx, const struct store_audit *a)
{
    char t[32];
    fmt_time(a->at, t, sizeof t);
    printf("%s  %-16s %-14s %s %s\n", t, a->actor, a->action, a->target, a->detail);
    return 0;
}

static int cmd_token(struct store *st, int argc, char **argv)
{
    static const char *const allowed[] = {"scope", "name", "device", "fleet", NULL};
    int npos, bad = 0;
    if (argc < 1 || check_args(argc, argv, allowed, &npos))
        return usage();
    const char *sub = argv[0];
    struct pemn_err e = {0};
    pemn_rc rc;
    if (strcmp(sub, "create") == 0) {
        const char *scope_s = opt(argc, argv, "scope", &bad), *name = opt(argc, argv, "name", &bad);
        const char *device = opt(argc, argv, "device", &bad),
                   *fleet = opt(argc, argv, "fleet", &bad);
        if (bad || npos != 1 || !scope_s)
            return usage();
        unsigned scope = store_scope_parse(scope_s);
        if (!scope) {
            fprintf(stderr, "pemnd: unknown scope '%s' (read, publish, admin, device)\n", scope_s);
            return EX_USAGE;
        }
        if (name && !valid_name(name)) {
            fprintf(stderr, "pemnd: invalid token name '%s' ([A-Za-z0-9][A-Za-z0-9._-]*)\n", name);
            return EX_USAGE;
        }
        if ((device || fleet) && scope != STORE_SCOPE_DEVICE) {
            fprintf(stderr, "pemnd: --device and --fleet bind a device token (--scope device)\n");
            return EX_USAGE;
        }
        if ((device && !valid_name(device)) || (fleet && !valid_name(fleet))) {
            fprintf(stderr, "pemnd: invalid %s '%s' ([A-Za-z0-9][A-Za-z0-9._-]*)\n",
                    device && !valid_name(device) ? "device id" : "fleet name",
                    device && !valid_name(device) ? device : fleet);
            return EX_USAGE;
        }
        char tok[STORE_TOKEN_TEXT_MAX], nm[STORE_LABEL_MAX];
        rc = store_token_create_bound(st, scope, name, device, fleet, "cli", tok, nm, &e);
        if (rc)
            return finish(rc, &e);
        printf("created token %s (scope %s%s%s%s%s); it is shown once, store it now:\n", nm,
               store_scope_name(scope), device ? ", device " : "", device ? device : "",
               fleet ? ", fleet " : "", fleet ? fleet : "");
        printf("%s\n", tok);
        fflush(stdout);
        return EX_OK;
    }
    if (strcmp(sub, "revoke") == 0) {
        if (npos != 2)
            return usage();
        const char *name = positional(argc, argv, 1);
        rc = store_token_revoke(st, name, "cli", &e);
        if (rc)
            return finish(rc, &e);
        printf("revoked token %s\n", name);
        return EX_OK;
    }
    if (strcmp(sub, "list") == 0) {
        if (npos != 1)
            return usage();
        rc = store_token_list(st, print_token, NULL, &e);
        return finish(rc, &e);
    }
    return usage();
}

static int cmd_key(struct store *st, int argc, char **argv)
{
    static const char *const allowed[] = {"name", NULL};
    int npos, bad = 0;
    if (argc < 1 || check_args(argc, argv, allowed, &npos))
        return usage();
    const char *sub = argv[0];
    struct pemn_err e = {0};
    pemn_rc rc;
    if (strcmp(sub, "add") == 0) {
        const char *name = opt(argc, argv, "name", &bad);
        if (bad || npos != 2)
            return usage();
        if (name && !valid_name(name)) {
            fprintf(stderr, "pemnd: invalid key name '%s' ([A-Za-z0-9][A-Za-z0-9._-]*)\n", name);
            return EX_USAGE;
        }
        const char *path = positional(argc, argv, 1);
        struct pemn_pubkey pk;
        rc = pemn_pubkey_load(path, &pk, &e); /* its messages name the path */
        if (rc)
            return finish(rc, &e);
        /* a key the latest root revokes is not trusted again (docs/TRUST.md) */
        pemn_root *root = NULL;
        if (srv_trust_latest_root(st, &root, &e) == PEMN_OK && root) {
            uint8_t id[PEMN_KEYID_BYTES];
            pemn_key_id(&pk, id);
            bool revoked = pemn_root_is_revoked(root, id);
            uint64_t rv = pemn_root_version(root);
            pemn_root_free(root);
            if (revoked) {
                char hex[PEMN_KEYID_TEXT_MAX];
                pemn_keyid_format(id, hex);
                fprintf(stderr, "pemnd: key %s is revoked by root version %llu\n", hex,
                        (unsigned long long)rv);
                return EX_CONFLICT;
            }
        }
        struct store_key k;
        rc = store_key_add(st, &pk, name, "cli", &k, &e);
        if (rc)
            return finish(rc, &e);
        printf("trusted key %s (%s)\n", k.id, k.name);
        return EX_OK;
    }
    if (strcmp(sub, "remove") == 0) {
        if (npos != 2)
            return usage();
        const char *which = positional(argc, argv, 1);
        rc = store_key_remove(st, which, "cli", &e);
        if (rc)
            return finish(rc, &e);
        printf("removed key %s\n", which);
        return EX_OK;
    }
    if (strcmp(sub, "list") == 0) {
        if (npos != 1)
            return usage();
        rc = store_key_list(st, print_key, NULL, &e);
        return finish(rc, &e);
    }
    return usage();
}

static int cmd_audit(struct store *st, int argc, char **argv)
{
    static const char *const allowed[] = {"limit", NULL};
    int npos, bad = 0;
    if (check_args(argc, argv, allowed, &npos) || npos != 0)
        return usage();
    const char *l = opt(argc, argv, "limit", &bad);
    unsigned limit = 50;
    if (bad)
        return usage();
    if (l) {
        char *end;
        unsigned long v = strtoul(l, &end, 10);
        if (*end || !*l || v == 0 || v > 1000000) {
            fprintf(stderr, "pemnd: --limit: expected 1..1000000\n");
            return EX_USAGE;
        }
        limit = (unsigned)v;
    }
    struct pemn_err e = {0};
    pemn_rc rc = store_audit_list(st, limit, print_audit, NULL, &e);
    return finish(rc, &e);
}

int pemnd_is_admin_command(const char *word)
{
    return strcmp(word, "token") == 0 || strcmp(word, "key") == 0 || strcmp(word, "audit") == 0 ||
           strcmp(word, "root") == 0;
}

int pemnd_admin(const char *db, int argc, char **argv)
{
    if (!db || !*db) {
        fprintf(stderr, "pemnd: %s needs --db FILE\n", argv[0]);
        return EX_USAGE;
    }
    struct store_opts o;
    store_opts_default(&o);
    o.cache_bytes = 0; /* a short-lived command reads no package bytes */
    struct store *st = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = store_open(db, &o, &st, &e);
    if (rc) {
        fprintf(stderr, "pemnd: %s\n", e.msg);
        return EX_FAIL;
    }
    int ret;
    if (strcmp(argv[0], "token") == 0)
        ret = cmd_token(st, argc - 1, argv + 1);
    else if (strcmp(argv[0], "key") == 0)
        ret = cmd_key(st, argc - 1, argv + 1);
    else if (strcmp(argv[0], "root") == 0)
        ret = pemnd_admin_root(st, argc - 1, argv + 1);
    else
        ret = cmd_audit(st, argc - 1, argv + 1);
    store_close(st);
    return ret;
}
