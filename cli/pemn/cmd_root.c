/*
 * pemn root — the offline tooling of the root of trust (docs/TRUST.md): init, update,
 * verify. Root secret keys are read here, on the offline machine, and never sent anywhere.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <pemn/client.h>
#include <pemn/trust.h>

#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

#define MAX_ARGS 256
#define DEFAULT_DAYS 365

static void help(FILE *f)
{
    fprintf(
        f,
        "usage: pemn root init --out ROOT.json --root-key R1.key [--root-key R2.key ...]\n"
        "                      [--root-pub R3.pub ...] [--threshold N]\n"
        "                      [--metadata-key SERVER.pub ...] [--publisher PUB[=PATTERN] ...]\n"
        "                      [--model-threshold PATTERN=N ...] [--expires DAYS]\n"
        "       pemn root update --in ROOT.json --out ROOT2.json --sign R1.key [--sign ...]\n"
        "                      [--add-publisher PUB[=PATTERN] ...] [--remove-publisher KEYID ...]\n"
        "                      [--revoke KEYID|PUB ...] [--metadata-key PUB ...]\n"
        "                      [--add-root-key PUB ...] [--remove-root-key KEYID ...]\n"
        "                      [--threshold N] [--model-threshold PATTERN=N ...]\n"
        "                      [--expires DAYS | --expires-at UNIX]\n"
        "       pemn root verify [--previous OLD.json] [--json] [--at UNIX] ROOT.json [NEXT.json "
        "...]\n"
        "\n"
        "The root of trust names the root keys and their threshold, the registry's online\n"
        "metadata keys, the publishers and the model names each may sign, per-model\n"
        "signature thresholds and revoked keys; it is signed JSON (docs/TRUST.md). Run\n"
        "init and update on an offline machine: the root secret keys never go to the server.\n"
        "\n"
        "init     writes version 1, signed by every --root-key (their number must reach the\n"
        "         threshold). --root-pub adds a root key held elsewhere (it does not sign).\n"
        "         --threshold: root signatures needed (default 1). PATTERN: a model name or a\n"
        "         glob with '*' (default '*', any model). --expires: days from now (default\n"
        "         %d; 0 = expires now, for tests). ROOT.json must not exist.\n"
        "update   writes version N+1 of --in: the changes asked for, signed by every --sign\n"
        "         key. Refused unless a threshold of version N's root keys AND of its own\n"
        "         signed it. --metadata-key replaces the metadata keys with those given;\n"
        "         --revoke removes a key from publishers and metadata keys and lists it as\n"
        "         revoked (devices refuse packages it signed). Expiry: --expires DAYS from\n"
        "         now (default %d) or --expires-at a Unix time.\n"
        "verify   checks each file alone (its own threshold), each link from --previous or\n"
        "         the file before it (version +1, previous threshold), and that the last is\n"
        "         not expired (at --at, default now); prints its content.\n"
        "pull     walks the registry's chain (GET /v1/root/N+1, N+2, ... until 404) from\n"
        "         the trusted PINNED.json, checking every link, and writes the newest\n"
        "         verified root to --out (atomically; may be PINNED.json itself). Exit 12\n"
        "         when the newest is expired (it is still written: it is authentic).\n"
        "\n"
        "  --model-threshold PATTERN=N  packages of models matching PATTERN need N\n"
        "                      signatures by their publishers (default 1; the largest\n"
        "                      matching threshold applies; N=1 removes the rule)\n"
        "  -h, --help          this text\n"
        "\n"
        "exit: 0 ok, 2 usage, 3 corrupt file, 5 threshold not met (untrusted), 6 not found,\n"
        "      11 exists/conflict, 12 expired, 13 revoked key given, 1 other failure\n",
        DEFAULT_DAYS, DEFAULT_DAYS);
}

/* ---- small helpers ------------------------------------------------------------------------- */
static int fail(pemn_rc rc, const struct pemn_err *e)
{
    return cli_fail("root", rc, e);
}

static int fail_msg(pemn_rc rc, const char *what, const char *arg)
{
    struct pemn_err e = {rc, PEMN_NO_OFFSET, ""};
    snprintf(e.msg, sizeof e.msg, "%s %s: %s", what, arg, pemn_strerror(rc));
    return fail(rc, &e);
}

/* "PUB[=PATTERN]": loads the key; *pattern points into arg (or "*"). */
static int parse_publisher(char *arg, struct pemn_pubkey *pk, const char **pattern)
{
    char *eq = strchr(arg, '=');
    *pattern = "*";
    if (eq) {
        *eq = '\0';
        *pattern = eq + 1;
    }
    if (!pemn_pattern_valid(*pattern))
        return cli_usage("root", "bad model pattern '%s' ([A-Za-z0-9._-] and '*')", *pattern);
    struct pemn_err e = {0};
    pemn_rc rc = pemn_pubkey_load(arg, pk, &e);
    return rc ? fail(rc, &e) : 0;
}

/* "PATTERN=N" */
static int parse_model_threshold(const char *arg, char *pattern, size_t cap, unsigned *n)
{
    const char *eq = strrchr(arg, '=');
    uint64_t v;
    if (!eq || (size_t)(eq - arg) >= cap || cli_parse_u64(eq + 1, &v) != 0 || v < 1 ||
        v > PEMN_ROOT_MAX_THRESHOLD)
        return cli_usage("root", "--model-threshold wants PATTERN=N with N in 1..%u",
                         PEMN_ROOT_MAX_THRESHOLD);
    memcpy(pattern, arg, (size_t)(eq - arg));
    pattern[eq - arg] = '\0';
    if (!pemn_pattern_valid(pattern))
        return cli_usage("root", "bad model pattern '%s'", pattern);
    *n = (unsigned)v;
    return 0;
}

/* A key id given as 16 hex digits, or a .pub file whose id is taken. */
static int parse_keyid(const char *arg, uint8_t id[PEMN_KEYID_BYTES])
{
    if (strlen(arg) == 2 * PEMN_KEYID_BYTES && cli_parse_hex(arg, id, PEMN_KEYID_BYTES) == 0)
        return 0;
    struct pemn_pubkey pk;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_pubkey_load(arg, &pk, &e);
    if (rc)
        return rc == PEMN_ENOTFOUND
                   ? cli_usage("root", "'%s' is neither a key id nor a .pub file", arg)
                   : fail(rc, &e);
    pemn_key_id(&pk, id);
    return 0;
}

static int parse_days(const char *arg, int64_t *expires)
{
    uint64_t d;
    if (cli_parse_u64(arg, &d) != 0 || d > 36500)
        return cli_usage("root", "--expires wants a number of days in 0..36500");
    *expires = (int64_t)time(NULL) + (int64_t)d * 86400;
    return 0;
}

static int parse_unix(const char *arg, int64_t *t)
{
    uint64_t v;
    if (cli_parse_u64(arg, &v) != 0 || v < 1 || v > (uint64_t)INT64_MAX)
        return cli_usage("root", "bad Unix time '%s'", arg);
    *t = (int64_t)v;
    return 0;
}

/* Signs root with each secret key file. */
static int sign_all(pemn_root *root, char **files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pemn_seckey sk;
        struct pemn_err e = {0};
        pemn_rc rc = pemn_seckey_load(files[i], &sk, &e);
        if (!rc)
            rc = pemn_root_sign(root, &sk, &e);
        pemn_seckey_wipe(&sk);
        if (rc)
            return fail(rc, &e);
    }
    return 0;
}

/* Serializes (self threshold checked) and writes path; refuses to replace an existing file. */
static int write_root(pemn_root *root, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        struct pemn_err e = {PEMN_EEXIST, PEMN_NO_OFFSET, ""};
        snprintf(e.msg, sizeof e.msg, "%s exists; roots are never overwritten", path);
        return fail(PEMN_EEXIST, &e);
    }
    char *text = NULL;
    size_t n = 0;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_root_serialize(root, &text, &n, &e);
    if (!rc)
        rc = cli_write_file(path, text, n, &e);
    free(text);
    return rc ? fail(rc, &e) : 0;
}

static void print_summary(const char *path, const pemn_root *r)
{
    char when[32] = "?", hex[PEMN_KEYID_TEXT_MAX];
    time_t t = (time_t)pemn_root_expires(r);
    struct tm tmv;
    if (gmtime_r(&t, &tmv))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    printf("%s: root version %" PRIu64 ", expires %s\n", path, pemn_root_version(r), when);
    printf("  root keys (threshold %u):", pemn_root_threshold(r));
    for (size_t i = 0; i < pemn_root_key_count(r); i++) {
        pemn_key_id_hex(pemn_root_key(r, i), hex);
        printf(" %s", hex);
    }
    printf("\n  metadata keys:");
    for (size_t i = 0; i < pemn_root_metadata_key_count(r); i++) {
        pemn_key_id_hex(pemn_root_metadata_key(r, i), hex);
        printf(" %s", hex);
    }
    printf("\n");
    for (size_t i = 0; i < pemn_root_publisher_count(r); i++) {
        struct pemn_root_publisher p;
        if (pemn_root_publisher(r, i, &p))
            continue;
        pemn_keyid_format(p.id, hex);
        printf("  publisher %s:", hex);
        for (size_t j = 0; j < p.n_patterns; j++)
            printf(" %s", p.patterns[j]);
        printf("\n");
    }
    for (size_t i = 0; i < pemn_root_model_threshold_count(r); i++) {
        const char *pat;
        unsigned thr;
        if (!pemn_root_model_threshold_at(r, i, &pat, &thr))
            printf("  model threshold %s: %u\n", pat, thr);
    }
    for (size_t i = 0; i < pemn_root_revoked_count(r); i++) {
        uint8_t id[PEMN_KEYID_BYTES];
        if (!pemn_root_revoked_at(r, i, id)) {
            pemn_keyid_format(id, hex);
            printf("  revoked %s\n", hex);
        }
    }
}

/* ---- init ---------------------------------------------------------------------------------- */
enum {
    O_OUT = 1,
    O_IN,
    O_ROOT_KEY,
    O_ROOT_PUB,
    O_THRESHOLD,
    O_METADATA,
    O_PUBLISHER,
    O_MODEL_THR,
    O_EXPIRES,
    O_EXPIRES_AT,
    O_SIGN,
    O_REMOVE_PUB,
    O_REVOKE,
    O_ADD_ROOT,
    O_REMOVE_ROOT,
    O_PREVIOUS,
    O_JSON,
    O_AT,
};

struct args {
    const char *out, *in, *previous;
    char *keys[MAX_ARGS], *pubs[MAX_ARGS], *meta[MAX_ARGS], *publishers[MAX_ARGS];
    char *mthr[MAX_ARGS], *sign[MAX_ARGS], *rmpub[MAX_ARGS], *revoke[MAX_ARGS];
    char *addroot[MAX_ARGS], *rmroot[MAX_ARGS];
    size_t n_keys, n_pubs, n_meta, n_publishers, n_mthr, n_sign, n_rmpub, n_revoke, n_addroot,
        n_rmroot;
    unsigned threshold;
    int64_t expires, at;
    int json;
};

static int push(char **v, size_t *n, char *a)
{
    if (*n >= MAX_ARGS)
        return cli_usage("root", "too many repetitions of one option (at most %d)", MAX_ARGS);
    v[(*n)++] = a;
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, O_OUT},
        {"in", required_argument, NULL, O_IN},
        {"root-key", required_argument, NULL, O_ROOT_KEY},
        {"root-pub", required_argument, NULL, O_ROOT_PUB},
        {"threshold", required_argument, NULL, O_THRESHOLD},
        {"metadata-key", required_argument, NULL, O_METADATA},
        {"publisher", required_argument, NULL, O_PUBLISHER},
        {"add-publisher", required_argument, NULL, O_PUBLISHER},
        {"model-threshold", required_argument, NULL, O_MODEL_THR},
        {"expires", required_argument, NULL, O_EXPIRES},
        {"expires-at", required_argument, NULL, O_EXPIRES_AT},
        {"sign", required_argument, NULL, O_SIGN},
        {"remove-publisher", required_argument, NULL, O_REMOVE_PUB},
        {"revoke", required_argument, NULL, O_REVOKE},
        {"add-root-key", required_argument, NULL, O_ADD_ROOT},
        {"remove-root-key", required_argument, NULL, O_REMOVE_ROOT},
        {"previous", required_argument, NULL, O_PREVIOUS},
        {"json", no_argument, NULL, O_JSON},
        {"at", required_argument, NULL, O_AT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int c, r = 0;
    uint64_t v;
    while (!r && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_OUT:
            a->out = optarg;
            break;
        case O_IN:
            a->in = optarg;
            break;
        case O_PREVIOUS:
            a->previous = optarg;
            break;
        case O_ROOT_KEY:
            r = push(a->keys, &a->n_keys, optarg);
            break;
        case O_ROOT_PUB:
            r = push(a->pubs, &a->n_pubs, optarg);
            break;
        case O_METADATA:
            r = push(a->meta, &a->n_meta, optarg);
            break;
        case O_PUBLISHER:
            r = push(a->publishers, &a->n_publishers, optarg);
            break;
        case O_MODEL_THR:
            r = push(a->mthr, &a->n_mthr, optarg);
            break;
        case O_SIGN:
            r = push(a->sign, &a->n_sign, optarg);
            break;
        case O_REMOVE_PUB:
            r = push(a->rmpub, &a->n_rmpub, optarg);
            break;
        case O_REVOKE:
            r = push(a->revoke, &a->n_revoke, optarg);
            break;
        case O_ADD_ROOT:
            r = push(a->addroot, &a->n_addroot, optarg);
            break;
        case O_REMOVE_ROOT:
            r = push(a->rmroot, &a->n_rmroot, optarg);
            break;
        case O_THRESHOLD:
            if (cli_parse_u64(optarg, &v) != 0 || v < 1 || v > PEMN_ROOT_MAX_THRESHOLD)
                r = cli_usage("root", "--threshold wants 1..%u", PEMN_ROOT_MAX_THRESHOLD);
            a->threshold = (unsigned)v;
            break;
        case O_EXPIRES:
            r = parse_days(optarg, &a->expires);
            break;
        case O_EXPIRES_AT:
            r = parse_unix(optarg, &a->expires);
            break;
        case O_AT:
            r = parse_unix(optarg, &a->at);
            break;
        case O_JSON:
            a->json = 1;
            break;
        case 'h':
            help(stdout);
            return -1;
        case ':':
            r = cli_usage("root", "%s needs a value", argv[optind - 1]);
            break;
        default:
            r = cli_usage("root", "unknown option '%s'", argv[optind - 1]);
        }
    }
    return r;
}

/* Publisher and model-threshold options common to init and update. */
static int apply_publishers(pemn_root *root, struct args *a)
{
    for (size_t i = 0; i < a->n_publishers; i++) {
        struct pemn_pubkey pk;
        const char *pattern;
        int r = parse_publisher(a->publishers[i], &pk, &pattern);
        if (r)
            return r;
        pemn_rc rc = pemn_root_add_publisher(root, &pk, pattern);
        if (rc && rc != PEMN_EEXIST)
            return fail_msg(rc, "publisher", a->publishers[i]);
    }
    for (size_t i = 0; i < a->n_mthr; i++) {
        char pattern[PEMN_MAX_LABEL + 1];
        unsigned n = 1;
        int r = parse_model_threshold(a->mthr[i], pattern, sizeof pattern, &n);
        if (r)
            return r;
        pemn_rc rc = pemn_root_set_model_threshold(root, pattern, n);
        if (rc)
            return fail_msg(rc, "model threshold", a->mthr[i]);
    }
    return 0;
}

static int add_pubkeys(pemn_root *root, char **files, size_t n, bool metadata)
{
    for (size_t i = 0; i < n; i++) {
        struct pemn_pubkey pk;
        struct pemn_err e = {0};
        pemn_rc rc = pemn_pubkey_load(files[i], &pk, &e);
        if (rc)
            return fail(rc, &e);
        rc = metadata ? pemn_root_add_metadata_key(root, &pk) : pemn_root_add_key(root, &pk);
        if (rc == PEMN_ECONFLICT) {
            e.rc = rc;
            snprintf(e.msg, sizeof e.msg,
                     "%s: the metadata key must not also be a root or publisher key", files[i]);
            return fail(rc, &e);
        }
        if (rc && rc != PEMN_EEXIST)
            return fail_msg(rc, metadata ? "metadata key" : "root key", files[i]);
    }
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    struct args a = {0};
    int r = parse_args(argc, argv, &a);
    if (r)
        return r < 0 ? CLI_EXIT_OK : r;
    if (optind != argc)
        return cli_usage("root", "init takes no file arguments");
    if (!a.out)
        return cli_usage("root", "init needs --out ROOT.json");
    if (a.n_keys == 0)
        return cli_usage("root", "init needs at least one --root-key KEY.key (it signs)");
    if (a.in || a.n_sign || a.n_rmpub || a.n_revoke || a.n_addroot || a.n_rmroot || a.previous)
        return cli_usage("root", "that option belongs to 'pemn root update'");
    if (!a.expires)
        a.expires = (int64_t)time(NULL) + (int64_t)DEFAULT_DAYS * 86400;
    pemn_root *root = NULL;
    if (pemn_root_new(a.expires, &root))
        return fail(PEMN_ENOMEM, NULL);
    /* root keys: the public halves of the signing keys, then --root-pub */
    for (size_t i = 0; !r && i < a.n_keys; i++) {
        struct pemn_seckey sk;
        struct pemn_pubkey pk;
        struct pemn_err e = {0};
        pemn_rc rc = pemn_seckey_load(a.keys[i], &sk, &e);
        if (rc) {
            r = fail(rc, &e);
            break;
        }
        pemn_seckey_public(&sk, &pk);
        pemn_seckey_wipe(&sk);
        rc = pemn_root_add_key(root, &pk);
        if (rc && rc != PEMN_EEXIST)
            r = fail_msg(rc, "root key", a.keys[i]);
    }
    if (!r)
        r = add_pubkeys(root, a.pubs, a.n_pubs, false);
    if (!r && a.threshold) {
        if (a.threshold > pemn_root_key_count(root))
            r = cli_usage("root", "--threshold %u is more than the %zu root keys", a.threshold,
                          pemn_root_key_count(root));
        else
            (void)pemn_root_set_threshold(root, a.threshold);
    }
    if (!r)
        r = add_pubkeys(root, a.meta, a.n_meta, true);
    if (!r)
        r = apply_publishers(root, &a);
    if (!r)
        r = sign_all(root, a.keys, a.n_keys);
    if (!r)
        r = write_root(root, a.out);
    if (!r)
        print_summary(a.out, root);
    pemn_root_free(root);
    return r;
}

/* ---- update -------------------------------------------------------------------------------- */
static int apply_update(pemn_root *next, struct args *a)
{
    int r = 0;
    for (size_t i = 0; !r && i < a->n_rmroot; i++) {
        uint8_t id[PEMN_KEYID_BYTES];
        r = parse_keyid(a->rmroot[i], id);
        if (!r && pemn_root_remove_key(next, id))
            r = fail_msg(PEMN_ENOTFOUND, "root key", a->rmroot[i]);
    }
    if (!r)
        r = add_pubkeys(next, a->addroot, a->n_addroot, false);
    for (size_t i = 0; !r && i < a->n_rmpub; i++) {
        uint8_t id[PEMN_KEYID_BYTES];
        r = parse_keyid(a->rmpub[i], id);
        if (!r && pemn_root_remove_publisher(next, id))
            r = fail_msg(PEMN_ENOTFOUND, "publisher", a->rmpub[i]);
    }
    for (size_t i = 0; !r && i < a->n_revoke; i++) {
        uint8_t id[PEMN_KEYID_BYTES];
        r = parse_keyid(a->revoke[i], id);
        pemn_rc rc = r ? PEMN_OK : pemn_root_revoke(next, id);
        if (rc == PEMN_EINVAL)
            r = cli_usage("root", "%s is a root key: remove it with --remove-root-key instead",
                          a->revoke[i]);
        else if (rc && rc != PEMN_EEXIST)
            r = fail_msg(rc, "revoke", a->revoke[i]);
    }
    if (!r && a->n_meta) { /* --metadata-key replaces the set */
        while (pemn_root_metadata_key_count(next)) {
            uint8_t id[PEMN_KEYID_BYTES];
            pemn_key_id(pemn_root_metadata_key(next, 0), id);
            (void)pemn_root_remove_metadata_key(next, id);
        }
        r = add_pubkeys(next, a->meta, a->n_meta, true);
    }
    if (!r)
        r = apply_publishers(next, a);
    if (!r && a->threshold) {
        if (a->threshold > pemn_root_key_count(next))
            r = cli_usage("root", "--threshold %u is more than the %zu root keys", a->threshold,
                          pemn_root_key_count(next));
        else
            (void)pemn_root_set_threshold(next, a->threshold);
    }
    if (!r && pemn_root_threshold(next) > pemn_root_key_count(next))
        r = cli_usage("root", "the threshold %u is more than the %zu root keys left",
                      pemn_root_threshold(next), pemn_root_key_count(next));
    if (!r)
        (void)pemn_root_set_expires(
            next, a->expires ? a->expires : (int64_t)time(NULL) + (int64_t)DEFAULT_DAYS * 86400);
    return r;
}

static int cmd_update(int argc, char **argv)
{
    struct args a = {0};
    int r = parse_args(argc, argv, &a);
    if (r)
        return r < 0 ? CLI_EXIT_OK : r;
    if (optind != argc)
        return cli_usage("root", "update takes no file arguments (use --in and --out)");
    if (!a.in || !a.out)
        return cli_usage("root", "update needs --in ROOT.json and --out ROOT2.json");
    if (a.n_sign == 0)
        return cli_usage("root", "update needs --sign KEY.key (root keys of both versions)");
    if (a.n_keys || a.n_pubs || a.previous)
        return cli_usage("root", "that option belongs to 'pemn root init' or 'verify'");
    struct pemn_err e = {0};
    pemn_root *prev = NULL, *next = NULL;
    pemn_rc rc = pemn_root_load(a.in, &prev, &e);
    if (rc)
        return fail(rc, &e);
    if (pemn_root_next(prev, &next)) {
        pemn_root_free(prev);
        return fail(PEMN_ENOMEM, NULL);
    }
    r = apply_update(next, &a);
    if (!r)
        r = sign_all(next, a.sign, a.n_sign);
    if (!r) {
        /* the link must hold before anything is written */
        char *text = NULL;
        rc = pemn_root_serialize(next, &text, NULL, &e);
        free(text);
        if (!rc)
            rc = pemn_root_verify_next(prev, next, &e);
        if (rc)
            r = fail(rc, &e);
    }
    if (!r)
        r = write_root(next, a.out);
    if (!r)
        print_summary(a.out, next);
    pemn_root_free(prev);
    pemn_root_free(next);
    return r;
}

/* ---- verify -------------------------------------------------------------------------------- */
static int cmd_verify_root(int argc, char **argv)
{
    struct args a = {0};
    int r = parse_args(argc, argv, &a);
    if (r)
        return r < 0 ? CLI_EXIT_OK : r;
    if (optind >= argc)
        return cli_usage("root", "verify needs a ROOT.json");
    if (a.out || a.in || a.n_sign || a.n_keys || a.n_publishers)
        return cli_usage("root", "verify only takes --previous, --at and --json");
    struct pemn_err e = {0};
    pemn_root *prev = NULL, *cur = NULL;
    pemn_rc rc = PEMN_OK;
    if (a.previous)
        rc = pemn_root_load(a.previous, &prev, &e);
    for (int i = optind; !rc && i < argc; i++) {
        rc = pemn_root_load(argv[i], &cur, &e);
        if (!rc && prev && (rc = pemn_root_verify_next(prev, cur, &e)) != PEMN_OK) {
            char tmp[PEMN_ERR_MSG_MAX];
            snprintf(tmp, sizeof tmp, "%s", e.msg);
            snprintf(e.msg, sizeof e.msg, "%.60s: %.190s", argv[i], tmp);
        }
        pemn_root_free(prev);
        prev = cur;
        cur = NULL;
    }
    int64_t now = a.at ? a.at : (int64_t)time(NULL);
    if (!rc)
        rc = pemn_root_check_expiry(prev, now, &e);
    if (a.json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(rc == PEMN_OK));
        json_object_set_new(o, "result", json_string(pemn_rc_name(rc)));
        json_object_set_new(o, "message", json_string(rc && e.msg[0] ? e.msg : ""));
        if (prev) {
            json_object_set_new(o, "version", json_integer((json_int_t)pemn_root_version(prev)));
            json_object_set_new(o, "expires", json_integer((json_int_t)pemn_root_expires(prev)));
        }
        r = cli_print_json("root", o);
        if (rc)
            r = cli_exit_code(rc);
    } else if (rc) {
        r = fail(rc, &e);
    } else {
        print_summary(argv[argc - 1], prev);
        printf("verified\n");
    }
    pemn_root_free(prev);
    return r;
}

/* ---- pull (the device side of the chain) --------------------------------------------------- */
static int cmd_pull_root(int argc, char **argv)
{
    struct cli_net n;
    cli_net_init(&n);
    static const struct option opts[] = {
        CLI_NET_LONGOPTS,
        {"root", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *pinned = NULL, *out = NULL;
    bool json = false;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":s:t:qh", opts, NULL)) != -1) {
        int k = cli_net_opt(&n, "root", ch, optarg);
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (k > 0)
            continue;
        switch (ch) {
        case 'r':
            pinned = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            help(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage("root", "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage("root", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc || !pinned)
        return cli_usage("root", "pull needs --root PINNED.json and no other argument");
    struct pemn_err e = {0};
    pemn_root *trusted = NULL, *newest = NULL;
    pemn_rc rc = pemn_root_load(pinned, &trusted, &e);
    if (rc)
        return fail(rc, &e);
    pemn_client *c = NULL;
    int ex = cli_net_client("root", &n, NULL, &c);
    if (ex) {
        pemn_root_free(trusted);
        return ex;
    }
    unsigned links = 0;
    rc = pemn_client_update_root(c, trusted, 0, &newest, &links, &e);
    pemn_rc walk = rc;
    struct pemn_err we = e;
    if (newest && out) { /* every verified link is kept, even before a failure */
        size_t bl;
        const uint8_t *b = pemn_root_bytes(newest, &bl);
        struct pemn_err e2 = {0};
        pemn_rc w = cli_write_file(out, b, bl, &e2);
        if (w) {
            ex = fail(w, &e2);
            goto done;
        }
    }
    if (!walk && newest)
        rc = pemn_root_check_expiry(newest, (int64_t)time(NULL), &e);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(rc == PEMN_OK));
        json_object_set_new(o, "result", json_string(pemn_rc_name(rc)));
        json_object_set_new(o, "message", json_string(rc && e.msg[0] ? e.msg : ""));
        json_object_set_new(o, "links", json_integer(links));
        if (newest)
            json_object_set_new(o, "version", json_integer((json_int_t)pemn_root_version(newest)));
        ex = cli_print_json("root", o);
        if (rc)
            ex = cli_exit_code(rc);
    } else if (walk) {
        ex = fail(walk, &we);
        if (newest && links)
            fprintf(stderr, "  verified up to version %llu (%u links)%s\n",
                    (unsigned long long)pemn_root_version(newest), links, out ? ", written" : "");
    } else {
        printf("root version %llu (%u link%s walked from version %llu)%s%s\n",
               (unsigned long long)pemn_root_version(newest), links, links == 1 ? "" : "s",
               (unsigned long long)pemn_root_version(trusted), out ? ", written to " : "",
               out ? out : "");
        ex = rc ? fail(rc, &e) : CLI_EXIT_OK;
    }
done:
    pemn_client_free(c);
    pemn_root_free(trusted);
    pemn_root_free(newest);
    return ex;
}

int cmd_root(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        help(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(sub, "init"))
        return cmd_init(argc - 1, argv + 1);
    if (!strcmp(sub, "update"))
        return cmd_update(argc - 1, argv + 1);
    if (!strcmp(sub, "verify"))
        return cmd_verify_root(argc - 1, argv + 1);
    if (!strcmp(sub, "pull"))
        return cmd_pull_root(argc - 1, argv + 1);
    return cli_usage("root", "unknown subcommand '%s' (init, update, verify, pull)", sub);
}
