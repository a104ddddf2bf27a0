/*
 * pemn pack — turn a safetensors checkpoint (edge-popup / PEMN convention) into a signed
 * .pemn package. The detection logic is the library's (pemn/pack.h); this prints it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/gen.h>
#include <pemn/pack.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

static void help(void)
{
    printf("usage: pemn pack --in CKPT.safetensors --key BASE.key --name NAME --version V\n"
           "                 --release R --out MODEL.pemn [options]\n\n"
           "Turns a checkpoint into a signed package. X.weight with a sibling X.scores (F32:\n"
           "the mask keeps the top-k of |scores|, exactly n - floor((1-k)*n) entries, ties to\n"
           "the lower index, NaN lowest) or X.mask (U8/BOOL/I8, nonzero keeps) is a masked\n"
           "layer; every other tensor is stored dense as it is. Masked weights must be an\n"
           "exact prototype tiling, w[i] = scale * proto[i mod d_v] (every layer from index 0,\n"
           "one float multiply): the package then reproduces them bit for bit. pack refuses,\n"
           "naming the layer, when they are not.\n\n"
           "  --in FILE            the checkpoint (safetensors)\n"
           "  --key FILE           the publisher's secret key (pemn keygen)\n"
           "  --name NAME          model name   ([A-Za-z0-9][A-Za-z0-9._-]*)\n"
           "  --version V          version label (same rule)\n"
           "  --release R          release number, strictly increasing per model\n"
           "  --out FILE           the package to write (atomically)\n"
           "  --density K          fraction kept for X.scores layers, in (0, 1] (default: the\n"
           "                       checkpoint's pemn.density metadata, else 0.5)\n"
           "  --strategy S         auto (default): the smallest of rp/mp and one-layer that\n"
           "                       reproduces the weights; or force one-layer | mp | rp | mask\n"
           "                         rp        one shared prototype, shortest period d_v\n"
           "                         mp        one shared prototype, d_v = the largest layer\n"
           "                         one-layer one prototype per distinct layer shape\n"
           "                         mask      every layer its own prototype\n"
           "  --seed HEX           32-byte seed (64 hex digits) of a seeded prototype. Once:\n"
           "                       one shared prototype (rp/mp). Repeated: one-layer (one seed\n"
           "                       per distinct layer shape, in checkpoint order) or mask (one\n"
           "                       per masked layer); auto picks by the count.\n"
           "  --generator NAME     with --seed: chacha20-uniform | chacha20-normal |\n"
           "                       chacha20-signed (or uniform, normal, signed). The prototypes\n"
           "                       are checked against the weights; per-layer scales are found.\n"
           "  --seeds-from-meta    take the generator and seeds from the checkpoint's metadata\n"
           "                       (pemn.generator + pemn.protos or pemn.seed, as written by\n"
           "                       'pemn train --checkpoint')\n"
           "  --meta KEY=VALUE     add a metadata pair (repeatable; the checkpoint's own\n"
           "                       __metadata__ is carried over)\n"
           "  --created SECONDS    creation time (Unix seconds; default now)\n"
           "  --dry-run            detect and print only (no --key/--out needed)\n"
           "  --json               print the detection and sizes as JSON\n"
           "  --mask-encoding E    auto (default: per tensor the smaller of bit-packed and\n"
           "                       entropy-coded, format 1.1) or bits (format 1.0 readers)\n"
           "  -h, --help           this text\n\n"
           "exit: 0 ok, 2 usage, 3 corrupt checkpoint, 6 file not found, 1 other failure\n"
           "      (weights not reproducible by the strategy, unsupported dtype, I/O, ...)\n");
}

struct args {
    const char *in, *key, *name, *version, *out, *gen;
    uint8_t (*seeds)[32];
    size_t n_seeds;
    uint64_t release;
    int have_release, dry, json;
    struct pemn_pack_opts o;
    const char **mk, **mv;
    size_t n_meta;
};

static int parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"in", required_argument, NULL, 'i'},      {"key", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},    {"version", required_argument, NULL, 'v'},
        {"release", required_argument, NULL, 'r'}, {"out", required_argument, NULL, 'o'},
        {"density", required_argument, NULL, 'd'}, {"strategy", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},    {"generator", required_argument, NULL, 'g'},
        {"meta", required_argument, NULL, 'm'},    {"created", required_argument, NULL, 'c'},
        {"dry-run", no_argument, NULL, 'D'},       {"seeds-from-meta", no_argument, NULL, 'M'},
        {"json", no_argument, NULL, 'j'},          {"mask-encoding", required_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int c;
    uint64_t u;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hi:k:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            a->in = optarg;
            break;
        case 'E':
            if (cli_parse_mask_encoding(optarg, &a->o.mask_encoding))
                return cli_usage("pack", "--mask-encoding is auto or bits, not '%s'", optarg);
            break;
        case 'k':
            a->key = optarg;
            break;
        case 'n':
            a->name = optarg;
            break;
        case 'v':
            a->version = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'r':
            if (cli_parse_u64(optarg, &a->release))
                return cli_usage("pack", "--release needs a non-negative integer, not '%s'",
                                 optarg);
            a->have_release = 1;
            break;
        case 'd':
            if (cli_parse_double(optarg, &a->o.density) || !(a->o.density > 0.0) ||
                a->o.density > 1.0)
                return cli_usage("pack", "--density needs a number in (0, 1], not '%s'", optarg);
            break;
        case 's':
            if (pemn_pack_strategy_parse(optarg, &a->o.strategy) != PEMN_OK)
                return cli_usage("pack", "unknown strategy '%s' (auto, one-layer, mp, rp, mask)",
                                 optarg);
            break;
        case 'S':
            if (a->n_seeds == PEMN_MAX_PROTOS)
                return cli_usage("pack", "too many --seed (at most %u)", PEMN_MAX_PROTOS);
            if (cli_parse_hex(optarg, a->seeds[a->n_seeds], 32))
                return cli_usage("pack", "--seed needs 64 hex digits (32 bytes)");
            a->n_seeds++;
            break;
        case 'g':
            a->gen = optarg;
            if (pemn_gen_parse(optarg, &a->o.generator) != PEMN_OK)
                return cli_usage("pack", "unknown generator '%s'", optarg);
            break;
        case 'm': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return cli_usage("pack", "--meta needs KEY=VALUE, not '%s'", optarg);
            if (a->n_meta >= PEMN_MAX_META)
                return cli_usage("pack", "too many --meta pairs (at most %u)", PEMN_MAX_META);
            *eq = '\0'; /* argv strings are ours to modify */
            a->mk[a->n_meta] = optarg;
            a->mv[a->n_meta++] = eq + 1;
            break;
        }
        case 'c':
            if (cli_parse_u64(optarg, &u) || u > INT64_MAX || u == 0)
                return cli_usage("pack", "--created needs Unix seconds, not '%s'", optarg);
            a->o.created = (int64_t)u;
            break;
        case 'D':
            a->dry = 1;
            break;
        case 'M':
            a->o.seeds_from_meta = 1;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            help();
            return -1;
        case ':':
            return cli_usage("pack", "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage("pack", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("pack", "unexpected argument '%s'", argv[optind]);
    if (!a->in)
        return cli_usage("pack", "--in CKPT.safetensors is required");
    if (!a->dry) {
        if (!a->key)
            return cli_usage("pack", "--key is required");
        if (!a->out)
            return cli_usage("pack", "--out is required");
        if (!a->name || !a->version || !a->have_release)
            return cli_usage("pack", "--name, --version and --release are required");
    }
    if (a->o.seeds_from_meta && (a->n_seeds || a->gen))
        return cli_usage("pack", "--seeds-from-meta replaces --seed and --generator");
    if (!a->n_seeds != !a->gen)
        return cli_usage("pack", "--seed and --generator go together");
    a->o.seeded = a->n_seeds > 0;
    if (a->n_seeds == 1)
        memcpy(a->o.seed, a->seeds[0], sizeof a->o.seed);
    else if (a->n_seeds > 1) {
        a->o.n_seeds = a->n_seeds;
        a->o.seeds = (const uint8_t(*)[32])a->seeds;
    }
    a->o.name = a->name;
    a->o.version = a->version;
    a->o.release = a->release;
    a->o.n_meta = a->n_meta;
    a->o.meta_keys = a->mk;
    a->o.meta_values = a->mv;
    return 0;
}

static void args_free(struct args *a)
{
    if (a->seeds)
        memset(a->seeds, 0, PEMN_MAX_PROTOS * sizeof *a->seeds);
    free(a->seeds);
    free(a->mk);
    free(a->mv);
}

static void seed_hex(const uint8_t seed[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", seed[i]);
}

static const char *role(const struct pemn_pack_layer *L)
{
    if (!L->masked)
        return "dense";
    return L->mask_from == PEMN_PACK_FROM_SCORES ? "masked (scores)" : "masked (mask)";
}

static json_t *report_json(const struct pemn_pack_report *r, const struct args *a)
{
    json_t *o = json_object(), *protos = json_array(), *layers = json_array();
    if (!o || !protos || !layers) {
        json_decref(o);
        json_decref(protos);
        json_decref(layers);
        return NULL;
    }
    json_object_set_new(o, "strategy", json_string(pemn_pack_strategy_name(r->strategy)));
    json_object_set_new(o, "requested", json_string(pemn_pack_strategy_name(a->o.strategy)));
    json_object_set_new(o, "density", json_real(r->density));
    for (uint32_t i = 0; i < r->n_protos; i++) {
        json_t *p = json_object();
        json_object_set_new(p, "kind", json_string(r->protos[i].seeded ? "seeded" : "explicit"));
        json_object_set_new(p, "d_v", json_integer((json_int_t)r->protos[i].d_v));
        if (r->protos[i].seeded) {
            char hex[65];
            seed_hex(r->protos[i].seed, hex);
            json_object_set_new(p, "generator", json_string(pemn_gen_name(a->o.generator)));
            json_object_set_new(p, "seed", json_string(hex));
        } else
            json_object_set_new(p, "from", json_string(r->layers[r->protos[i].ref_layer].name));
        json_array_append_new(protos, p);
    }
    for (uint32_t i = 0; i < r->n_layers; i++) {
        const struct pemn_pack_layer *L = &r->layers[i];
        json_t *l = json_object(), *shape = json_array();
        for (uint32_t d = 0; d < L->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)L->shape[d]));
        json_object_set_new(l, "name", json_string(L->name));
        json_object_set_new(l, "dtype", json_string(L->masked ? "F32" : pemn_dtype_name(L->dtype)));
        json_object_set_new(l, "shape", shape);
        json_object_set_new(l, "numel", json_integer((json_int_t)L->numel));
        json_object_set_new(l, "masked", json_boolean(L->masked));
        if (L->masked) {
            json_object_set_new(
                l, "mask_from",
                json_string(L->mask_from == PEMN_PACK_FROM_SCORES ? "scores" : "mask"));
            json_object_set_new(l, "proto", json_integer(L->proto));
            json_object_set_new(l, "offset", json_integer((json_int_t)L->offset));
            json_object_set_new(l, "scale", json_real(L->scale));
            if (!a->dry)
                json_object_set_new(l, "kept", json_integer((json_int_t)L->kept));
        }
        json_array_append_new(layers, l);
    }
    json_object_set_new(o, "protos", protos);
    json_object_set_new(o, "layers", layers);
    json_object_set_new(o, "params", json_integer((json_int_t)r->n_params));
    json_object_set_new(o, "masked_params", json_integer((json_int_t)r->n_masked_params));
    return o;
}

static void report_text(const struct pemn_pack_report *r, const struct args *a)
{
    char shape[128];
    printf("strategy   %s", pemn_pack_strategy_name(r->strategy));
    if (a->o.strategy == PEMN_PACK_AUTO && r->strategy != PEMN_PACK_DENSE)
        printf(" (detected)");
    printf("\n");
    if (r->strategy != PEMN_PACK_DENSE)
        printf("density    %g\n", r->density);
    for (uint32_t i = 0; i < r->n_protos; i++) {
        const struct pemn_pack_proto *p = &r->protos[i];
        if (p->seeded) {
            char hex[65];
            seed_hex(p->seed, hex);
            printf("prototype  %u: seeded %s, d_v %llu, seed %.16s...\n", i,
                   pemn_gen_name(a->o.generator), (unsigned long long)p->d_v, hex);
        } else
            printf("prototype  %u: d_v %llu (values of %s)\n", i, (unsigned long long)p->d_v,
                   r->layers[p->ref_layer].name);
    }
    printf("tensors    %u (%llu masked of %llu parameters)\n", r->n_layers,
           (unsigned long long)r->n_masked_params, (unsigned long long)r->n_params);
    for (uint32_t i = 0; i < r->n_layers; i++) {
        const struct pemn_pack_layer *L = &r->layers[i];
        printf("  %-32s %-16s %-15s", L->name, cli_shape(L->ndim, L->shape, shape, sizeof shape),
               role(L));
        if (L->masked) {
            printf(" proto %u scale %.9g", L->proto, L->scale);
            if (!a->dry)
                printf(" kept %llu/%llu", (unsigned long long)L->kept,
                       (unsigned long long)L->numel);
        } else {
            printf(" %s", pemn_dtype_name(L->dtype));
        }
        printf("\n");
    }
}

int cmd_pack(int argc, char **argv)
{
    struct args a = {0};
    pemn_pack_opts_init(&a.o);
    a.mk = calloc(PEMN_MAX_META, sizeof *a.mk);
    a.mv = calloc(PEMN_MAX_META, sizeof *a.mv);
    a.seeds = calloc(PEMN_MAX_PROTOS, sizeof *a.seeds);
    if (!a.mk || !a.mv || !a.seeds) {
        args_free(&a);
        return cli_fail("pack", PEMN_ENOMEM, NULL);
    }
    int ret = parse(argc, argv, &a);
    if (ret != 0) {
        args_free(&a);
        return ret < 0 ? CLI_EXIT_OK : ret;
    }

    struct pemn_err e = {0};
    struct pemn_pack_report r = {0};
    struct pemn_seckey sk;
    int have_sk = 0;
    pemn_st *st = NULL;
    pemn_pkg *pkg = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    pemn_rc rc = pemn_st_open_file(a.in, &st, &e);
    if (rc != PEMN_OK) {
        ret = cli_fail("pack", rc, &e);
        goto out;
    }
    if (a.dry) {
        rc = pemn_pack_detect(st, &a.o, &r, &e);
    } else {
        if ((rc = pemn_seckey_load(a.key, &sk, &e)) != PEMN_OK) {
            ret = cli_fail("pack", rc, &e);
            goto out;
        }
        have_sk = 1;
        rc = pemn_pack_safetensors(st, &a.o, &sk, &buf, &len, &r, &e);
    }
    if (rc != PEMN_OK) {
        ret = cli_fail("pack", rc, &e);
        goto out;
    }

    json_t *js = a.json ? report_json(&r, &a) : NULL;
    if (a.json && !js) {
        ret = cli_fail("pack", PEMN_ENOMEM, NULL);
        goto out;
    }
    if (!a.json)
        report_text(&r, &a);
    if (!a.dry) {
        if ((rc = cli_write_file(a.out, buf, len, &e)) != PEMN_OK ||
            (rc = pemn_pkg_open_mem(buf, len, 0, &pkg, &e)) != PEMN_OK) {
            json_decref(js);
            ret = cli_fail("pack", rc, &e);
            goto out;
        }
        struct pemn_pkg_info info;
        uint8_t dg[PEMN_DIGEST_BYTES];
        char dtext[PEMN_DIGEST_TEXT_MAX], id[PEMN_KEYID_TEXT_MAX], h1[32], h2[32];
        if ((rc = pemn_pkg_info(pkg, &info)) != PEMN_OK) {
            json_decref(js);
            ret = cli_fail("pack", rc, NULL);
            goto out;
        }
        pemn_pkg_digest(pkg, dg);
        pemn_digest_format(dg, dtext);
        pemn_keyid_format(info.signer_id, id);
        double ratio = len ? (double)info.f32_size / (double)len : 0.0;
        if (js) {
            json_t *p = json_object();
            json_object_set_new(p, "path", json_string(a.out));
            json_object_set_new(p, "bytes", json_integer((json_int_t)len));
            json_object_set_new(p, "f32_bytes", json_integer((json_int_t)info.f32_size));
            json_object_set_new(p, "ratio", json_real(ratio));
            json_object_set_new(p, "digest", json_string(dtext));
            json_object_set_new(p, "signer", json_string(id));
            json_object_set_new(js, "package", p);
        } else {
            printf("package    %s: %s (%zu bytes)\n", a.out, cli_human_size(len, h1, sizeof h1),
                   len);
            printf("float32    %s as safetensors: %.1fx smaller\n",
                   cli_human_size(info.f32_size, h2, sizeof h2), ratio);
            printf("digest     %s\nsigner     %s\n", dtext, id);
        }
    }
    ret = js ? cli_print_json("pack", js) : CLI_EXIT_OK;
out:
    if (have_sk)
        pemn_seckey_wipe(&sk);
    pemn_pkg_free(pkg);
    free(buf);
    pemn_pack_report_free(&r);
    pemn_st_free(st);
    args_free(&a);
    return ret;
}
