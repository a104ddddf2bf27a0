/*
 * pemn inspect — a package's manifest, prototypes, tensors and sizes. It reads the
 * structure only; `pemn verify` checks the digest and the signature.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <pemn/gen.h>
#include <pemn/pkg.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"

static void help(void)
{
    printf("usage: pemn inspect MODEL.pemn [--json]\n\n"
           "Shows the manifest (name, version, release, creation time, strategy, density,\n"
           "metadata), the prototypes, every tensor with the bytes it occupies, the total\n"
           "size, the ratio against the float32 safetensors file of the same network, the\n"
           "signer's key id and the package digest. The signature is NOT checked here: use\n"
           "'pemn verify'.\n\n"
           "  --json       print everything as one JSON object\n"
           "  -h, --help   this text\n\n"
           "exit: 0 ok, 2 usage, 3 corrupt package, 6 file not found, 1 other failure\n");
}

struct totals {
    uint64_t mask_bytes, dense_bytes, proto_bytes;
};

static const char *gen_label(uint32_t g)
{
    const char *n = pemn_gen_name(g);
    return n ? n : "unknown";
}

static json_t *to_json(const pemn_pkg *pkg, const struct pemn_pkg_info *in, const char *digest,
                       const char *signer, const struct totals *t)
{
    json_t *o = json_object(), *meta = json_object(), *protos = json_array(),
           *tensors = json_array(), *sizes = json_object();
    if (!o || !meta || !protos || !tensors || !sizes) {
        json_decref(o);
        json_decref(meta);
        json_decref(protos);
        json_decref(tensors);
        json_decref(sizes);
        return NULL;
    }
    json_object_set_new(o, "name", json_string(in->name));
    json_object_set_new(o, "version", json_string(in->version));
    json_object_set_new(o, "release", json_integer((json_int_t)in->release));
    json_object_set_new(o, "created", json_integer((json_int_t)in->created));
    json_object_set_new(o, "strategy", json_string(in->strategy));
    json_object_set_new(o, "density", json_real(in->density));
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%u.%u", in->format_major, in->format_minor);
    json_object_set_new(o, "format", json_string(fmt));
    json_object_set_new(o, "digest", json_string(digest));
    json_object_set_new(o, "signer", json_string(signer));
    char pub[PEMN_PUBKEY_TEXT_MAX];
    pemn_pubkey_format(&in->signer, pub);
    json_object_set_new(o, "signer_key", json_string(pub));
    json_t *all = json_array(); /* every signer, co-signers of format 1.1 included */
    for (uint32_t i = 0; i < pemn_pkg_signer_count(pkg); i++) {
        struct pemn_pubkey k;
        uint8_t id[PEMN_KEYID_BYTES];
        char hex[PEMN_KEYID_TEXT_MAX];
        if (pemn_pkg_signer(pkg, i, &k, id) == PEMN_OK) {
            pemn_keyid_format(id, hex);
            json_array_append_new(all, json_string(hex));
        }
    }
    json_object_set_new(o, "signers", all);
    for (uint32_t i = 0; i < in->n_meta; i++) {
        const char *k, *v;
        if (pemn_pkg_meta(pkg, i, &k, &v) == PEMN_OK)
            json_object_set_new(meta, k, json_string(v));
    }
    json_object_set_new(o, "meta", meta);
    for (uint32_t i = 0; i < in->n_protos; i++) {
        struct pemn_proto_info p;
        if (pemn_pkg_proto(pkg, i, &p) != PEMN_OK)
            continue;
        json_t *j = json_object();
        int seeded = p.kind == PEMN_PROTO_SEEDED;
        json_object_set_new(j, "kind", json_string(seeded ? "seeded" : "explicit"));
        json_object_set_new(j, "d_v", json_integer((json_int_t)p.length));
        if (seeded) {
            char hex[65];
            for (int b = 0; b < 32; b++)
                snprintf(hex + 2 * b, 3, "%02x", p.seed[b]);
            json_object_set_new(j, "generator", json_string(gen_label(p.generator)));
            json_object_set_new(j, "seed", json_string(hex));
            json_object_set_new(j, "scale", json_real(p.scale));
        }
        json_array_append_new(protos, j);
    }
    json_object_set_new(o, "protos", protos);
    for (uint32_t i = 0; i < in->n_tensors; i++) {
        struct pemn_tensor_info ti;
        if (pemn_pkg_tensor(pkg, i, &ti) != PEMN_OK)
            continue;
        json_t *j = json_object(), *shape = json_array();
        for (uint32_t d = 0; d < ti.ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)ti.shape[d]));
        json_object_set_new(j, "name", json_string(ti.name));
        json_object_set_new(j, "dtype", json_string(pemn_dtype_name(ti.dtype)));
        json_object_set_new(j, "shape", shape);
        json_object_set_new(j, "numel", json_integer((json_int_t)ti.numel));
        json_object_set_new(j, "masked", json_boolean(ti.masked));
        if (ti.masked) {
            json_object_set_new(j, "proto", json_integer(ti.proto));
            json_object_set_new(j, "offset", json_integer((json_int_t)ti.offset));
            json_object_set_new(j, "scale", json_real(ti.scale));
            json_object_set_new(j, "kept", json_integer((json_int_t)ti.kept));
        }
        json_object_set_new(j, "stored_bytes", json_integer((json_int_t)ti.stored_bytes));
        json_array_append_new(tensors, j);
    }
    json_object_set_new(o, "tensors", tensors);
    json_object_set_new(sizes, "file_bytes", json_integer((json_int_t)in->file_size));
    json_object_set_new(sizes, "f32_bytes", json_integer((json_int_t)in->f32_size));
    json_object_set_new(
        sizes, "ratio",
        json_real(in->file_size ? (double)in->f32_size / (double)in->file_size : 0.0));
    json_object_set_new(sizes, "mask_bytes", json_integer((json_int_t)t->mask_bytes));
    json_object_set_new(sizes, "dense_bytes", json_integer((json_int_t)t->dense_bytes));
    json_object_set_new(sizes, "proto_value_bytes", json_integer((json_int_t)t->proto_bytes));
    json_object_set_new(sizes, "params", json_integer((json_int_t)in->n_params));
    json_object_set_new(sizes, "masked_params", json_integer((json_int_t)in->n_masked));
    json_object_set_new(o, "sizes", sizes);
    return o;
}

static void to_text(const pemn_pkg *pkg, const struct pemn_pkg_info *in, const char *path,
                    const char *digest, const char *signer, const struct totals *t)
{
    char h[32], h2[32], shape[128], when[64] = "?";
    time_t ct = (time_t)in->created;
    struct tm tmv;
    if (gmtime_r(&ct, &tmv))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    printf("package    %s\n", path);
    printf("model      %s  version %s  release %llu\n", in->name, in->version,
           (unsigned long long)in->release);
    printf("created    %s\n", when);
    printf("strategy   %s", in->strategy[0] ? in->strategy : "-");
    if (in->density > 0)
        printf("  density %g", in->density);
    printf("\nformat     %u.%u\n", in->format_major, in->format_minor);
    printf("signer     %s", signer);
    for (uint32_t i = 1; i < pemn_pkg_signer_count(pkg); i++) {
        struct pemn_pubkey k;
        uint8_t id[PEMN_KEYID_BYTES];
        char hex[PEMN_KEYID_TEXT_MAX];
        if (pemn_pkg_signer(pkg, i, &k, id) == PEMN_OK) {
            pemn_keyid_format(id, hex);
            printf(", %s", hex);
        }
    }
    printf(" (signatures not checked: pemn verify)\n");
    printf("digest     %s\n", digest);
    for (uint32_t i = 0; i < in->n_meta; i++) {
        const char *k, *v;
        if (pemn_pkg_meta(pkg, i, &k, &v) == PEMN_OK)
            printf("meta       %s = %s\n", k, v);
    }
    for (uint32_t i = 0; i < in->n_protos; i++) {
        struct pemn_proto_info p;
        if (pemn_pkg_proto(pkg, i, &p) != PEMN_OK)
            continue;
        if (p.kind == PEMN_PROTO_SEEDED)
            printf("prototype  %u: seeded %s, d_v %llu, scale %.9g (32-byte seed)\n", i,
                   gen_label(p.generator), (unsigned long long)p.length, p.scale);
        else
            printf("prototype  %u: %llu explicit floats (%s)\n", i, (unsigned long long)p.length,
                   cli_human_size(p.length * 4, h, sizeof h));
    }
    printf("tensors    %u (%llu parameters, %llu masked)\n", in->n_tensors,
           (unsigned long long)in->n_params, (unsigned long long)in->n_masked);
    for (uint32_t i = 0; i < in->n_tensors; i++) {
        struct pemn_tensor_info ti;
        if (pemn_pkg_tensor(pkg, i, &ti) != PEMN_OK)
            continue;
        printf("  %-32s %-5s %-16s %10s", ti.name, pemn_dtype_name(ti.dtype),
               cli_shape(ti.ndim, ti.shape, shape, sizeof shape),
               cli_human_size(ti.stored_bytes, h, sizeof h));
        if (ti.masked)
            printf("  masked proto %u scale %.9g kept %llu/%llu", ti.proto, ti.scale,
                   (unsigned long long)ti.kept, (unsigned long long)ti.numel);
        else
            printf("  dense");
        printf("\n");
    }
    printf("size       %s (%llu bytes): masks %s, dense %s, prototype values %s\n",
           cli_human_size(in->file_size, h, sizeof h), (unsigned long long)in->file_size,
           cli_human_size(t->mask_bytes, h2, sizeof h2),
           cli_human_size(t->dense_bytes, shape, sizeof shape),
           cli_human_size(t->proto_bytes, when, sizeof when));
    printf("float32    %s as safetensors: %.1fx smaller\n",
           cli_human_size(in->f32_size, h, sizeof h),
           in->file_size ? (double)in->f32_size / (double)in->file_size : 0.0);
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            help();
            return CLI_EXIT_OK;
        default:
            return cli_usage("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return cli_usage("inspect", "expected one package file");
    const char *path = argv[optind];

    pemn_pkg *pkg = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_pkg_open_file(path, 0, &pkg, &e);
    if (rc != PEMN_OK)
        return cli_fail("inspect", rc, &e);
    struct pemn_pkg_info in;
    if ((rc = pemn_pkg_info(pkg, &in)) != PEMN_OK) {
        pemn_pkg_free(pkg);
        return cli_fail("inspect", rc, NULL);
    }
    struct totals t = {0};
    for (uint32_t i = 0; i < in.n_tensors; i++) {
        struct pemn_tensor_info ti;
        if (pemn_pkg_tensor(pkg, i, &ti) != PEMN_OK)
            continue;
        if (ti.masked)
            t.mask_bytes += ti.stored_bytes;
        else
            t.dense_bytes += ti.stored_bytes;
    }
    for (uint32_t i = 0; i < in.n_protos; i++) {
        struct pemn_proto_info p;
        if (pemn_pkg_proto(pkg, i, &p) == PEMN_OK && p.kind == PEMN_PROTO_EXPLICIT)
            t.proto_bytes += p.length * 4;
    }
    uint8_t dg[PEMN_DIGEST_BYTES];
    char digest[PEMN_DIGEST_TEXT_MAX], signer[PEMN_KEYID_TEXT_MAX];
    pemn_pkg_digest(pkg, dg);
    pemn_digest_format(dg, digest);
    pemn_keyid_format(in.signer_id, signer);
    int ret = CLI_EXIT_OK;
    if (json)
        ret = cli_print_json("inspect", to_json(pkg, &in, digest, signer, &t));
    else
        to_text(pkg, &in, path, digest, signer, &t);
    pemn_pkg_free(pkg);
    return ret;
}
