/*
 * pemn train — train a dense baseline or an edge-popup (PEMN) model on an IDX dataset and
 * write it as a signed package and/or a safetensors checkpoint. Thin: the work is in
 * train/ (libpemn_train); this file parses options and prints progress.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pemn/builder.h>
#include <pemn/key.h>
#include <pemn/pkg.h>

#include "cli/pemn/blas_tune.h"
#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"
#include "train/export.h"
#include "train/train.h"
#include "train/warm.h"

static void train_usage(FILE *f)
{
    fprintf(f,
            "usage: pemn train [--data DIR] --mode dense|mask [options]\n"
            "                  [--key KEY.key --name N --version V --release R --out M.pemn]\n"
            "                  [--checkpoint M.safetensors] [--init-from M.safetensors]\n"
            "\n"
            "data:\n"
            "  --data DIR         IDX files train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz]\n"
            "                     (default %s)\n"
            "  --train-limit N    use only the first N training samples (smoke runs)\n"
            "  --test-limit N     evaluate on the first N test samples only\n"
            "  --holdout N        hold out the last N training samples for validation\n"
            "  --classes A,B,...  class names (default: Fashion-MNIST's when the data folder's\n"
            "                     path contains \"fashion\", else 0..C-1)\n"
            "network:\n"
            "  --arch SIZES       MLP layer sizes, ReLU between (default 784-300-100-10)\n"
            "  --bias             linear layers with biases (default none)\n"
            "  --batchnorm        batch-norm after every hidden layer (dense, trained)\n"
            "  --mode MODE        dense: train the weights (baseline); mask: edge-popup\n"
            "edge-popup (--mode mask):\n"
            "  --strategy S       mask (full random weights per layer), one-layer, mp, rp\n"
            "                     (default rp)\n"
            "  --ratio R          rp prototype length floor(N_max*R)+1 (default 1e-3)\n"
            "  --density K        fraction of weights kept per layer (default 0.5)\n"
            "  --generator G      signed (default), uniform or normal (pemn/gen.h)\n"
            "  --no-layer-scale   one scale for all layers (the paper's RP), instead of\n"
            "                     sqrt(2/(K*fan_in))/sd per layer\n"
            "optimisation:\n"
            "  --optim O          sgd (default) or adamw\n"
            "  --epochs N         (default 10)    --batch B (default 128)\n"
            "  --lr LR            (default 0.1)   --momentum M (default 0.9)\n"
            "  --wd WD            weight decay (default 1e-4)\n"
            "  --no-cosine        constant learning rate (default: cosine to 0)\n"
            "  --seed S           (default 1)     --threads T OpenBLAS threads (default 1)\n"
            "  --no-epoch-eval    skip the per-epoch test accuracy (final one only)\n"
            "output:\n"
            "  --out FILE         signed .pemn package (needs --key, --name, --version)\n"
            "  --key KEY.key      publisher key (pemn keygen)\n"
            "  --name N --version V --release R   manifest (release default 1)\n"
            "  --checkpoint FILE  safetensors checkpoint (X.weight + X.scores, and the\n"
            "                     optimizer state, so --init-from can continue from it)\n"
            "warm start:\n"
            "  --init-from CKPT   continue from a --checkpoint file: the network (mode,\n"
            "                     architecture, strategy, density, prototype, seed), scores,\n"
            "                     input normalisation and optimizer state come from it;\n"
            "                     train --epochs more on --data (the same or another data\n"
            "                     set), with a fresh --lr schedule. Fine-tunes keep most of\n"
            "                     the mask, so `pemn diff` of the packages is small\n"
            "  --report FILE      JSON summary of the run (for scripts)\n"
            "  --mask-encoding E  auto (default: per tensor the smaller of bit-packed and\n"
            "                     entropy-coded) or bits (readable by format-1.0 readers)\n"
            "  --quiet            no progress\n"
            "  --naive-gemm       naive matrix products instead of OpenBLAS (benchmark peer)\n"
            "Same seed, options and --threads give identical results.\n",
            TRAIN_DEFAULT_DATA_DIR);
}

struct progress_state {
    int tty, quiet;
    double last;
};

static int on_progress(const struct train_progress *p, void *ud)
{
    struct progress_state *s = ud;
    if (s->quiet)
        return 0;
    if (!p->epoch_done) {
        if (!s->tty || p->elapsed - s->last < 0.25)
            return 0;
        s->last = p->elapsed;
        fprintf(stderr, "\repoch %u/%u  batch %llu/%llu  loss %.4f  train %.2f%%  %.1fs   ",
                p->epoch, p->epochs, (unsigned long long)p->step,
                (unsigned long long)p->steps_epoch, p->loss, 100 * p->train_acc, p->elapsed);
        return 0;
    }
    fprintf(stderr, "%sepoch %u/%u  loss %.4f  train %.2f%%", s->tty ? "\r" : "", p->epoch,
            p->epochs, p->loss, 100 * p->train_acc);
    if (p->val_acc >= 0)
        fprintf(stderr, "  val %.2f%%", 100 * p->val_acc);
    if (p->test_acc >= 0)
        fprintf(stderr, "  test %.2f%%", 100 * p->test_acc);
    fprintf(stderr, "  lr %.4g  %.1fs (training %.1fs)%s\n", p->lr, p->elapsed, p->train_seconds,
            s->tty ? "          " : "");
    return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int write_report(const char *path, const struct train_opts *o, const struct train_result *r,
                        const char *pkg_path, const char *st_path, const struct train_model *m)
{
    json_t *j = json_object();
    char arch[256];
    train_mlp_format(&o->arch, arch, sizeof arch);
    json_object_set_new(j, "mode", json_string(o->masked ? "mask" : "dense"));
    json_object_set_new(j, "arch", json_string(arch));
    if (o->masked) {
        json_object_set_new(j, "strategy", json_string(train_strategy_name(o->strategy)));
        json_object_set_new(j, "ratio", json_real(o->ratio));
        json_object_set_new(j, "density", json_real(o->density));
        json_object_set_new(j, "layer_scale", json_boolean(o->layer_scale));
        json_object_set_new(j, "generator", json_string(pemn_gen_name(o->gen)));
        json_t *protos = json_array();
        for (size_t i = 0; i < m->protos.n; i++)
            json_array_append_new(protos, json_integer((json_int_t)m->protos.p[i].length));
        json_object_set_new(j, "proto_lengths", protos);
    }
    json_object_set_new(j, "epochs", json_integer(o->epochs));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "threads", json_integer(o->threads));
    json_object_set_new(j, "test_accuracy", json_real(r->test_acc));
    json_object_set_new(j, "val_accuracy", json_real(r->val_acc));
    json_object_set_new(j, "train_accuracy", json_real(r->train_acc));
    json_object_set_new(j, "first_loss", json_real(r->first_loss));
    json_object_set_new(j, "final_loss", json_real(r->final_loss));
    json_object_set_new(j, "train_seconds", json_real(r->train_seconds));
    json_object_set_new(j, "samples_per_sec", json_real(r->samples_per_sec));
    json_object_set_new(j, "cpu_seconds", json_real(r->cpu_seconds));
    if (pkg_path) {
        pemn_pkg *pkg = NULL;
        struct pemn_pkg_info info;
        if (pemn_pkg_open_file(pkg_path, 0, &pkg, NULL) == PEMN_OK &&
            pemn_pkg_info(pkg, &info) == PEMN_OK) {
            json_object_set_new(j, "package_bytes", json_integer((json_int_t)info.file_size));
            json_object_set_new(j, "f32_bytes", json_integer((json_int_t)info.f32_size));
        }
        pemn_pkg_free(pkg);
    }
    if (st_path)
        json_object_set_new(j, "checkpoint", json_string(st_path));
    int rc = json_dump_file(j, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(j);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    cli_blas_tune(argc, argv);
    enum {
        O_DATA = 256,
        O_MODE,
        O_ARCH,
        O_STRATEGY,
        O_RATIO,
        O_DENSITY,
        O_GEN,
        O_NOSCALE,
        O_BIAS,
        O_BN,
        O_OPTIM,
        O_EPOCHS,
        O_BATCH,
        O_LR,
        O_MOM,
        O_WD,
        O_NOCOS,
        O_SEED,
        O_THREADS,
        O_TLIMIT,
        O_TELIMIT,
        O_HOLDOUT,
        O_CLASSES,
        O_NOEVAL,
        O_KEY,
        O_NAME,
        O_VERSION,
        O_RELEASE,
        O_OUT,
        O_CKPT,
        O_REPORT,
        O_QUIET,
        O_HELP,
        O_NAIVE,
        O_MASKENC,
        O_INIT
    };
    static const struct option lo[] = {
        {"data", 1, 0, O_DATA},
        {"mode", 1, 0, O_MODE},
        {"arch", 1, 0, O_ARCH},
        {"strategy", 1, 0, O_STRATEGY},
        {"ratio", 1, 0, O_RATIO},
        {"density", 1, 0, O_DENSITY},
        {"generator", 1, 0, O_GEN},
        {"no-layer-scale", 0, 0, O_NOSCALE},
        {"bias", 0, 0, O_BIAS},
        {"batchnorm", 0, 0, O_BN},
        {"optim", 1, 0, O_OPTIM},
        {"epochs", 1, 0, O_EPOCHS},
        {"batch", 1, 0, O_BATCH},
        {"lr", 1, 0, O_LR},
        {"momentum", 1, 0, O_MOM},
        {"wd", 1, 0, O_WD},
        {"no-cosine", 0, 0, O_NOCOS},
        {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS},
        {"train-limit", 1, 0, O_TLIMIT},
        {"test-limit", 1, 0, O_TELIMIT},
        {"holdout", 1, 0, O_HOLDOUT},
        {"classes", 1, 0, O_CLASSES},
        {"no-epoch-eval", 0, 0, O_NOEVAL},
        {"key", 1, 0, O_KEY},
        {"name", 1, 0, O_NAME},
        {"version", 1, 0, O_VERSION},
        {"release", 1, 0, O_RELEASE},
        {"out", 1, 0, O_OUT},
        {"checkpoint", 1, 0, O_CKPT},
        {"report", 1, 0, O_REPORT},
        {"quiet", 0, 0, O_QUIET},
        {"help", 0, 0, O_HELP},
        {"naive-gemm", 0, 0, O_NAIVE},
        {"mask-encoding", 1, 0, O_MASKENC},
        {"init-from", 1, 0, O_INIT},
        {0, 0, 0, 0},
    };
    struct train_opts o;
    train_opts_default(&o);
    const char *data = TRAIN_DEFAULT_DATA_DIR, *mode = NULL, *classes = NULL;
    const char *key_path = NULL, *name = NULL, *version = NULL, *out = NULL, *ckpt = NULL;
    const char *report = NULL, *init_from = NULL, *net_opt = NULL;
    int optim_given = 0;
    struct train_init *init = NULL;
    uint64_t release = 1, train_limit = 0, test_limit = 0, v;
    int quiet = 0, data_given = 0;
    struct pemn_err err = {0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int bad = 0;
        if (c == O_MODE || c == O_ARCH || c == O_STRATEGY || c == O_RATIO || c == O_DENSITY ||
            c == O_GEN || c == O_NOSCALE || c == O_BIAS || c == O_BN || c == O_SEED)
            net_opt = lo[c - O_DATA].name;
        if (c == O_OPTIM)
            optim_given = 1;
        switch (c) {
        case O_DATA:
            data = optarg;
            data_given = 1;
            break;
        case O_MODE:
            mode = optarg;
            break;
        case O_ARCH:
            bad = train_mlp_parse(optarg, &o.arch, &err) != PEMN_OK;
            break;
        case O_STRATEGY:
            bad = train_strategy_parse(optarg, &o.strategy) != PEMN_OK;
            break;
        case O_RATIO:
            bad = parse_double(optarg, &o.ratio) || !(o.ratio > 0 && o.ratio <= 1);
            break;
        case O_DENSITY:
            bad = parse_double(optarg, &o.density) || !(o.density > 0 && o.density <= 1);
            break;
        case O_GEN:
            bad = pemn_gen_parse(optarg, &o.gen) != PEMN_OK;
            break;
        case O_NOSCALE:
            o.layer_scale = 0;
            break;
        case O_BIAS:
            o.arch.bias = 1;
            break;
        case O_BN:
            o.arch.batchnorm = 1;
            break;
        case O_OPTIM:
            bad = train_optim_parse(optarg, &o.optim) != PEMN_OK;
            break;
        case O_EPOCHS:
            bad = parse_u64(optarg, 100000, &v) || !v;
            o.epochs = (uint32_t)v;
            break;
        case O_BATCH:
            bad = parse_u64(optarg, 65536, &v) || !v;
            o.batch = (uint32_t)v;
            break;
        case O_LR:
            bad = parse_double(optarg, &o.lr);
            break;
        case O_MOM:
            bad = parse_double(optarg, &o.momentum);
            break;
        case O_WD:
            bad = parse_double(optarg, &o.wd);
            break;
        case O_NOCOS:
            o.cosine = 0;
            break;
        case O_SEED:
            bad = parse_u64(optarg, UINT64_MAX, &o.seed);
            break;
        case O_THREADS:
            bad = parse_u64(optarg, 256, &v) || !v;
            o.threads = (int)v;
            break;
        case O_TLIMIT:
            bad = parse_u64(optarg, UINT32_MAX, &train_limit);
            break;
        case O_TELIMIT:
            bad = parse_u64(optarg, UINT32_MAX, &test_limit);
            break;
        case O_HOLDOUT:
            bad = parse_u64(optarg, UINT32_MAX, &v);
            o.holdout = (uint32_t)v;
            break;
        case O_CLASSES:
            classes = optarg;
            break;
        case O_NOEVAL:
            o.eval_each_epoch = 0;
            break;
        case O_KEY:
            key_path = optarg;
            break;
        case O_NAME:
            name = optarg;
            break;
        case O_VERSION:
            version = optarg;
            break;
        case O_RELEASE:
            bad = parse_u64(optarg, UINT64_MAX, &release) || !release;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_CKPT:
            ckpt = optarg;
            break;
        case O_REPORT:
            report = optarg;
            break;
        case O_MASKENC:
            bad = cli_parse_mask_encoding(optarg, &o.mask_encoding);
            break;
        case O_INIT:
            init_from = optarg;
            break;
        case O_QUIET:
            quiet = 1;
            break;
        case O_HELP:
            train_usage(stdout);
            return CLI_EXIT_OK;
        case O_NAIVE:
            train_set_naive_gemm(1);
            break;
        default:
            fprintf(stderr, "pemn train: unknown option or missing value: %s\n", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "pemn train: bad value for --%s: '%s'%s%s\n", lo[c - O_DATA].name,
                    optarg ? optarg : "", err.msg[0] ? ": " : "", err.msg);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pemn train: unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (init_from) {
        if (net_opt) {
            fprintf(stderr,
                    "pemn train: --%s: with --init-from the network (mode, architecture, "
                    "strategy, density, prototype and seed) comes from the checkpoint\n",
                    net_opt);
            return CLI_EXIT_USAGE;
        }
        pemn_rc lrc = train_init_load(init_from, &init, &err);
        if (lrc) {
            fprintf(stderr, "pemn train: --init-from %s: %s\n", init_from, err.msg);
            return lrc == PEMN_ENOTFOUND ? CLI_EXIT_NOTFOUND : cli_exit_code(lrc);
        }
        o.arch = init->arch;
        o.masked = init->masked;
        o.seed = init->seed;
        if (init->masked) {
            o.strategy = init->strategy;
            o.ratio = init->ratio;
            o.density = init->density;
            o.gen = init->gen;
            o.layer_scale = init->layer_scale;
        }
        if (init->have_optim && !optim_given)
            o.optim = init->optim;
        if (!classes)
            classes = init->classes;
        o.init = init;
        mode = init->masked ? "mask" : "dense";
    }
    if (!mode || (strcmp(mode, "dense") && strcmp(mode, "mask"))) {
        fprintf(stderr, "pemn train: --mode dense|mask is required (pemn train --help)\n");
        train_init_free(init);
        return CLI_EXIT_USAGE;
    }
    o.masked = strcmp(mode, "mask") == 0;
    if (out && (!key_path || !name || !version)) {
        fprintf(stderr, "pemn train: --out needs --key, --name and --version\n");
        return CLI_EXIT_USAGE;
    }
    if (!out && !ckpt)
        fprintf(stderr, "pemn train: note: no --out or --checkpoint, the model is not saved\n");

    /* Load the key first: a wrong path fails before minutes of training. */
    struct pemn_seckey sk;
    int have_key = 0;
    pemn_rc rc;
    if (out) {
        rc = pemn_seckey_load(key_path, &sk, &err);
        if (rc) {
            fprintf(stderr, "pemn train: %s\n", err.msg);
            return cli_exit_code(rc);
        }
        have_key = 1;
        /* check name/version now too: a builder validates them */
        pemn_builder *b = NULL;
        rc = pemn_builder_new(name, version, release, &b, &err);
        pemn_builder_free(b);
        if (rc) {
            fprintf(stderr, "pemn train: %s\n", err.msg);
            pemn_seckey_wipe(&sk);
            return CLI_EXIT_USAGE;
        }
    }

    struct train_data tr, te;
    memset(&te, 0, sizeof te);
    int ret = CLI_EXIT_FAIL;
    struct train_model *m = NULL;
    rc = train_data_load_dir(data, "train", &tr, &err);
    if (rc) {
        fprintf(stderr, "pemn train: %s\n", err.msg);
        ret = rc == PEMN_ENOTFOUND ? CLI_EXIT_NOTFOUND : cli_exit_code(rc);
        goto done;
    }
    rc = train_data_load_dir(data, "t10k", &te, &err);
    if (rc) {
        fprintf(stderr, "pemn train: %s\n", err.msg);
        ret = rc == PEMN_ENOTFOUND ? CLI_EXIT_NOTFOUND : cli_exit_code(rc);
        goto done;
    }
    train_data_truncate(&tr, (uint32_t)train_limit);
    train_data_truncate(&te, (uint32_t)test_limit);
    char arch[256];
    train_mlp_format(&o.arch, arch, sizeof arch);
    if (!quiet) {
        fprintf(stderr, "pemn train: %s %s", mode, arch);
        if (o.masked) {
            fprintf(stderr, " strategy %s", train_strategy_name(o.strategy));
            if (o.strategy == TRAIN_STRAT_RP)
                fprintf(stderr, " ratio %g", o.ratio);
            fprintf(stderr, " k %g %s%s", o.density, pemn_gen_name(o.gen),
                    o.layer_scale ? " per-layer scale" : " one scale");
        }
        fprintf(stderr,
                "; %u train / %u test samples from %s; %s lr %g, %u epochs, batch %u, "
                "seed %llu, %d thread%s\n",
                tr.n - o.holdout, te.n, data, train_optim_name(o.optim), o.lr, o.epochs, o.batch,
                (unsigned long long)o.seed, o.threads, o.threads > 1 ? "s" : "");
        if (init)
            fprintf(stderr, "pemn train: warm start from %s (%s state after %llu steps)\n",
                    init_from, init->have_optim ? "optimizer" : "no optimizer",
                    (unsigned long long)init->optim_t);
    }
    struct progress_state ps = {isatty(STDERR_FILENO), quiet, -1};
    struct train_result res;
    rc = train_run(&o, &tr, &te, on_progress, &ps, &m, &res, &err);
    if (rc) {
        fprintf(stderr, "pemn train: %s\n", err.msg);
        ret = cli_exit_code(rc);
        goto done;
    }
    const char *names = classes;
    if (!names && m->n_classes == 10 && (!data_given || strcasestr(data, "fashion")))
        names = TRAIN_FASHION_CLASSES;
    if (names || classes) {
        rc = train_model_set_classes(m, names, m->n_classes, &err);
        if (rc) {
            fprintf(stderr, "pemn train: --classes: %s\n", err.msg);
            ret = CLI_EXIT_USAGE;
            goto done;
        }
    }
    printf("final: test accuracy %.2f%% (%u samples), train %.2f%%, loss %.4f -> %.4f, "
           "%.1f s training, %.0f samples/s\n",
           100 * res.test_acc, te.n, 100 * res.train_acc, res.first_loss, res.final_loss,
           res.train_seconds, res.samples_per_sec);
    if (res.val_acc >= 0)
        printf("final: validation accuracy %.2f%% (%u held-out samples)\n", 100 * res.val_acc,
               o.holdout);
    if (ckpt) {
        rc = train_export_safetensors(m, &o, &res, ckpt, &err);
        if (rc) {
            fprintf(stderr, "pemn train: %s: %s\n", ckpt, err.msg);
            ret = cli_exit_code(rc);
            goto done;
        }
        printf("wrote %s\n", ckpt);
    }
    if (out) {
        rc = train_export_pkg(m, &o, &res, &sk, name, version, release, out, &err);
        if (rc) {
            fprintf(stderr, "pemn train: %s: %s\n", out, err.msg);
            ret = cli_exit_code(rc);
            goto done;
        }
        pemn_pkg *pkg = NULL;
        struct pemn_pkg_info info;
        if (pemn_pkg_open_file(out, 0, &pkg, &err) == PEMN_OK &&
            pemn_pkg_info(pkg, &info) == PEMN_OK)
            printf("wrote %s: %llu bytes, %.1fx smaller than float32 safetensors (%llu "
                   "bytes)\n",
                   out, (unsigned long long)info.file_size,
                   (double)info.f32_size / (double)info.file_size,
                   (unsigned long long)info.f32_size);
        else
            printf("wrote %s\n", out);
        pemn_pkg_free(pkg);
    }
    if (report && write_report(report, &o, &res, out, ckpt, m) != 0) {
        fprintf(stderr, "pemn train: cannot write %s\n", report);
        goto done;
    }
    ret = CLI_EXIT_OK;
done:
    if (have_key)
        pemn_seckey_wipe(&sk);
    train_model_free(m);
    train_data_free(&tr);
    train_data_free(&te);
    train_init_free(init);
    return ret;
}
