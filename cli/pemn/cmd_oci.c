/*
 * pemn push/pull with an OCI registry (oci://HOST[:PORT]/REPO[:TAG|@sha256:...]).
 * Credentials come from the environment or a file, never from the command line:
 *   PEMN_OCI_USERNAME / PEMN_OCI_PASSWORD, or --credentials FILE / $PEMN_OCI_CREDENTIALS
 *   (first line "USER:PASSWORD"); otherwise $PEMN_TOKEN as the password (pemnd).
 */
#include "cli/pemn/cmd_oci.h"
#include "cli/pemn/client_util.h"
#include "cli/pemn/cmd.h"
#include "proto/fsutil.h"

#include <pemn/oci.h>

#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRUST 64

bool cli_oci_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "oci://", 6))
            return true;
    return false;
}

struct creds {
    char buf[1024];
    const char *user, *pass;
};

/* Fills o's credentials. 0 ok, else an exit code (printed). */
static int load_creds(const char *cmd, const char *file, struct creds *cr,
                      struct pemn_oci_options *o)
{
    memset(cr, 0, sizeof *cr);
    if (!file)
        file = getenv("PEMN_OCI_CREDENTIALS");
    if (file && *file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            fprintf(stderr, "pemn %s: cannot read credentials file %s\n", cmd, file);
            return CLI_EXIT_USAGE;
        }
        bool ok = fgets(cr->buf, sizeof cr->buf, f) != NULL;
        fclose(f);
        cr->buf[strcspn(cr->buf, "\r\n")] = '\0';
        char *colon = ok ? strchr(cr->buf, ':') : NULL;
        if (!colon) {
            sodium_memzero(cr->buf, sizeof cr->buf);
            fprintf(stderr, "pemn %s: %s: expected one line USER:PASSWORD\n", cmd, file);
            return CLI_EXIT_USAGE;
        }
        *colon = '\0';
        cr->user = cr->buf;
        cr->pass = colon + 1;
    } else if (getenv("PEMN_OCI_USERNAME") || getenv("PEMN_OCI_PASSWORD")) {
        cr->user = getenv("PEMN_OCI_USERNAME");
        cr->pass = getenv("PEMN_OCI_PASSWORD");
    } else if (getenv("PEMN_TOKEN") && *getenv("PEMN_TOKEN")) {
        cr->user = "pemn";
        cr->pass = getenv("PEMN_TOKEN");
    }
    o->username = cr->user;
    o->password = cr->pass;
    return 0;
}

static void apply_net(const struct cli_net *n, struct pemn_oci_options *o)
{
    o->client.progress = cli_net_stop_cb;
    o->client.cache_dir = n->cache;
    if (n->timeout_s > 0)
        o->client.deadline_ms = (uint64_t)(n->timeout_s * 1000.0);
    if (n->retries)
        o->client.max_attempts = n->retries;
    o->client.max_recv_bytes_per_s = n->rate;
}

/* ---- push ------------------------------------------------------------------------------ */
/* The options push and pull share: --server/--token refused, the network options, --plain-http
 * and --credentials. Returns -1 on a usage error (already reported), 1 when ch was one of
 * them, 0 otherwise. */
static int oci_common_opt(struct cli_net *n, struct pemn_oci_options *o, const char **cred_file,
                          const char *cmd, int ch, const char *arg)
{
    if (ch == 's' || ch == 't') {
        fprintf(stderr,
                "pemn %s: --server/--token do not apply to oci:// (credentials "
                "come from the environment or --credentials)\n",
                cmd);
        return -1;
    }
    int k = cli_net_opt(n, cmd, ch, arg);
    if (k)
        return k;
    switch (ch) {
    case 'P':
        o->plain_http = 1;
        return 1;
    case 'C':
        *cred_file = arg;
        return 1;
    }
    return 0;
}

static void push_usage(FILE *f)
{
    fprintf(f,
            "usage: pemn push [--plain-http] [--credentials FILE] [--chunk-size N] [--quiet]\n"
            "                 [--json] FILE.pemn oci://HOST[:PORT]/REPO[:TAG]\n"
            "\n"
            "Pushes a package to any OCI registry as a PEMN artifact (docs/OCI.md): config\n"
            "application/vnd.pemn.config.v1+json, one layer application/vnd.pemn.package.v1 = the\n"
            "file itself; TAG defaults to the package's version. Blobs the registry has are\n"
            "skipped; the package goes up in chunks, and a cut chunk resumes where the registry\n"
            "says it got to.\n"
            "\n"
            "      --plain-http      http:// instead of https:// (local registries)\n"
            "      --credentials F   a file whose first line is USER:PASSWORD\n"
            "                        (default $PEMN_OCI_CREDENTIALS; else $PEMN_OCI_USERNAME and\n"
            "                        $PEMN_OCI_PASSWORD; else $PEMN_TOKEN as the password)\n"
            "      --chunk-size N    upload chunk in bytes (default 8388608)\n"
            "      --timeout S, --retries N, -q/--quiet, --json   as for a pemnd push\n"
            "\n"
            "exit: 0 ok, 2 usage, 3 corrupt, 4 bad signature, 5 untrusted, 6 not found,\n"
            "      7 network, 8 digest mismatch, 9 rollback, 10 auth refused, 11 conflict\n");
}

static json_t *result_json(const struct pemn_oci_result *r, const char *ref)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:I,s:I,s:b}", "reference", ref, "model",
                     r->model, "version", r->version, "tag", r->tag, "release",
                     (json_int_t)r->release, "manifest_digest", r->manifest_digest, "digest",
                     r->layer_digest, "size", (json_int_t)r->layer_size, "upload_resumes",
                     (json_int_t)r->resumes, "upload_restarts", (json_int_t)r->restarts, "uploaded",
                     r->layer_uploaded);
}

int cli_oci_push(int argc, char **argv)
{
    struct cli_net n;
    cli_net_init(&n);
    n.cache = NULL;
    cli_net_catch_signals();
    bool json = false;
    const char *cred_file = NULL;
    struct pemn_oci_options o;
    pemn_oci_options_init(&o);
    static const struct option opts[] = {
        CLI_NET_LONGOPTS,
        {"plain-http", no_argument, NULL, 'P'},
        {"credentials", required_argument, NULL, 'C'},
        {"chunk-size", required_argument, NULL, 'Z'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        int k = oci_common_opt(&n, &o, &cred_file, "push", ch, optarg);
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (k > 0)
            continue;
        switch (ch) {
        case 'Z':
            if (cli_parse_u64(optarg, &o.chunk_size) || o.chunk_size < 1024) {
                fprintf(stderr, "pemn push: --chunk-size wants bytes >= 1024\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_help_or_usage(ch, push_usage);
        }
    }
    if (argc - optind != 2 || strncmp(argv[optind + 1], "oci://", 6) != 0) {
        fprintf(stderr, "pemn push: expected FILE.pemn oci://HOST/REPO[:TAG]\n");
        push_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    struct creds cr;
    int ex = load_creds("push", cred_file, &cr, &o);
    if (ex)
        return ex;
    apply_net(&n, &o);
    struct pemn_oci_result res;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_oci_push(argv[optind], argv[optind + 1], &o, &res, &e);
    sodium_memzero(cr.buf, sizeof cr.buf);
    if (rc)
        return cli_fail("push", rc, &e);
    if (json)
        return cli_print_json("push", result_json(&res, argv[optind + 1]));
    if (!n.quiet)
        printf("pushed %s %s (release %" PRIu64 ") to %s\n  manifest %s\n  package  %s%s\n",
               res.model, res.version, res.release, argv[optind + 1], res.manifest_digest,
               res.layer_digest, res.layer_uploaded ? "" : " (already in the registry)");
    return CLI_EXIT_OK;
}

/* ---- pull ------------------------------------------------------------------------------ */
static void pull_usage(FILE *f)
{
    fprintf(f,
            "usage: pemn pull [--plain-http] [--credentials FILE] --trust KEY.pub [--trust ...]\n"
            "                 [--out FILE] [--cache DIR | --no-cache] [--min-release N]\n"
            "                 [--timeout S] [--retries N] [--quiet] [--json]\n"
            "                 oci://HOST[:PORT]/REPO[:TAG|@sha256:<hex>]\n"
            "\n"
            "Pulls a PEMN artifact from any OCI registry: the manifest (its digest checked), its\n"
            "one application/vnd.pemn.package.v1 layer downloaded into FILE.part (resumed with\n"
            "Range), installed at FILE only when its SHA-256 equals the layer digest, its\n"
            "signature verifies under a --trust key and, with a PEMN config, its name, version\n"
            "and release match it. TAG defaults to latest.\n"
            "\n"
            "      --plain-http      http:// instead of https:// (local registries)\n"
            "      --credentials F   a file whose first line is USER:PASSWORD\n"
            "                        (default $PEMN_OCI_CREDENTIALS; else $PEMN_OCI_USERNAME and\n"
            "                        $PEMN_OCI_PASSWORD; else $PEMN_TOKEN as the password)\n"
            "  -k, --trust KEY.pub   trusted publisher key (repeatable; default $PEMN_TRUST)\n"
            "  -o, --out FILE        where to install (default: REPO's last component + .pemn)\n"
            "      --cache DIR, --no-cache, --min-release N, --timeout S, --retries N,\n"
            "      --limit-rate R, -q/--quiet, --json   as for a pemnd pull\n"
            "\n"
            "exit: 0 ok, 2 usage, 3 corrupt, 4 bad signature, 5 untrusted, 6 not found,\n"
            "      7 network, 8 digest mismatch, 9 rollback, 10 auth refused\n");
}

int cli_oci_pull(int argc, char **argv)
{
    struct cli_net n;
    cli_net_init(&n);
    cli_net_catch_signals();
    bool json = false;
    const char *cred_file = NULL, *out = NULL;
    char *trust[MAX_TRUST];
    size_t n_trust = 0;
    uint64_t min_release = 0;
    struct pemn_oci_options o;
    pemn_oci_options_init(&o);
    static const struct option opts[] = {
        CLI_NET_LONGOPTS,
        {"plain-http", no_argument, NULL, 'P'},
        {"credentials", required_argument, NULL, 'C'},
        {"trust", required_argument, NULL, 'k'},
        {"out", required_argument, NULL, 'o'},
        {"min-release", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "qk:o:h", opts, NULL)) != -1) {
        int k = oci_common_opt(&n, &o, &cred_file, "pull", ch, optarg);
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (k > 0)
            continue;
        switch (ch) {
        case 'k':
            if (n_trust >= MAX_TRUST)
                return cli_usage("pull", "at most %d --trust keys", MAX_TRUST);
            trust[n_trust++] = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'm':
            if (cli_parse_u64(optarg, &min_release))
                return cli_usage("pull", "bad --min-release '%s'", optarg);
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            pull_usage(stdout);
            return CLI_EXIT_OK;
        default:
            pull_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        pull_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *ref = argv[optind];
    struct pemn_oci_ref pr;
    struct pemn_err e = {0};
    if (pemn_oci_parse_ref(ref, &pr, &e))
        return cli_usage("pull", "%s", e.msg);
    pemn_keyring *kr = NULL;
    int ex = cli_pull_trust("pull", trust, n_trust, MAX_TRUST, &kr);
    if (ex)
        return ex;
    struct creds cr;
    ex = load_creds("pull", cred_file, &cr, &o);
    if (ex) {
        pemn_keyring_free(kr);
        return ex;
    }
    apply_net(&n, &o);
    o.client.trusted = kr;
    char def_out[PEMN_OCI_REPO_BUF + 8];
    if (!out) {
        const char *last = strrchr(pr.repo, '/');
        snprintf(def_out, sizeof def_out, "%s.pemn", last ? last + 1 : pr.repo);
        out = def_out;
    }
    pemn_rc rc;
    if ((rc = proto_mkdir_parent(out, 0755, &e)) != PEMN_OK) {
        sodium_memzero(cr.buf, sizeof cr.buf);
        pemn_keyring_free(kr);
        return cli_fail("pull", rc, &e);
    }
    struct cli_bar bar;
    cli_bar_init(&bar, pr.repo, n.quiet || json);
    struct pemn_fetch_options fo = {
        .min_release = min_release, .progress = cli_bar_cb, .progress_user = &bar};
    struct pemn_fetch_stats st;
    struct pemn_oci_result res;
    rc = pemn_oci_pull(ref, out, &o, &fo, &res, &st, &e);
    cli_bar_end(&bar);
    sodium_memzero(cr.buf, sizeof cr.buf);
    pemn_keyring_free(kr);
    if (rc == PEMN_ECANCELED)
        fprintf(stderr, "pemn pull: interrupted; run the same command again to resume\n");
    if (rc)
        return cli_fail("pull", rc, &e);
    if (json) {
        json_t *j = result_json(&res, ref);
        if (j) {
            json_object_set_new(j, "path", json_string(out));
            json_object_set_new(j, "bytes_received", json_integer((json_int_t)st.bytes_received));
            json_object_set_new(j, "requests", json_integer(st.requests));
            json_object_set_new(j, "resumes", json_integer(st.resumes));
            json_object_set_new(j, "from_cache", json_boolean(st.from_cache));
        }
        return cli_print_json("pull", j);
    }
    if (!n.quiet)
        printf("installed %s %s (release %" PRIu64 ") from %s at %s\n  verified %s\n", res.model,
               res.version, res.release, ref, out, res.layer_digest);
    return CLI_EXIT_OK;
}
