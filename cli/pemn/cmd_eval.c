/*
 * pemn eval — test accuracy of a package (expanded by the library, after its signature is
 * checked) or of a safetensors checkpoint, on an IDX test set.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/key.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>

#include "cli/pemn/blas_tune.h"
#include "cli/pemn/cmd.h"
#include "train/eval.h"
#include "train/train.h"

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: pemn eval MODEL [--data DIR] [--trust KEY.pub]... [--verbose]\n"
            "  MODEL              a .pemn package or a .safetensors checkpoint written by\n"
            "                     pemn train / pemn expand (architecture in its metadata)\n"
            "  --data DIR         IDX folder with t10k-images-idx3-ubyte[.gz] and\n"
            "                     t10k-labels-idx1-ubyte[.gz] (default %s)\n"
            "  --trust KEY.pub    require a valid signature by one of these keys; without it\n"
            "                     the digest and signature are still checked, the signer is\n"
            "                     only reported\n"
            "  --split NAME       evaluate on NAME-* instead of t10k-*\n"
            "  --limit N          the first N samples only\n"
            "  --threads T        OpenBLAS threads (default 1)\n"
            "  --verbose          per-class accuracy and the confusion matrix\n",
            TRAIN_DEFAULT_DATA_DIR);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void print_confusion(const struct train_model *m, const uint64_t *cm)
{
    uint32_t n = m->n_classes;
    printf("confusion matrix (rows: true class, columns: predicted):\n%14s", "");
    for (uint32_t j = 0; j < n; j++)
        printf(" %5u", j);
    printf("   accuracy\n");
    for (uint32_t i = 0; i < n; i++) {
        uint64_t row = 0;
        printf("%2u %-11.11s", i, m->classes[i] ? m->classes[i] : "");
        for (uint32_t j = 0; j < n; j++) {
            printf(" %5llu", (unsigned long long)cm[(size_t)i * n + j]);
            row += cm[(size_t)i * n + j];
        }
        printf("   %6.2f%%\n", row ? 100.0 * (double)cm[(size_t)i * n + i] / (double)row : 0.0);
    }
}

int cmd_eval(int argc, char **argv)
{
    cli_blas_tune(argc, argv);
    enum { O_DATA = 256, O_TRUST, O_SPLIT, O_LIMIT, O_THREADS, O_VERBOSE, O_HELP };
    static const struct option lo[] = {
        {"data", 1, 0, O_DATA},       {"trust", 1, 0, O_TRUST},
        {"split", 1, 0, O_SPLIT},     {"limit", 1, 0, O_LIMIT},
        {"threads", 1, 0, O_THREADS}, {"verbose", 0, 0, O_VERBOSE},
        {"help", 0, 0, O_HELP},       {0, 0, 0, 0},
    };
    const char *data = TRAIN_DEFAULT_DATA_DIR, *split = "t10k";
    unsigned long limit = 0, threads = 1;
    int verbose = 0, ret = CLI_EXIT_FAIL;
    struct pemn_err err = {0};
    pemn_keyring *kr = NULL;
    pemn_pkg *pkg = NULL;
    pemn_st *st = NULL;
    struct train_model *m = NULL;
    struct train_data te;
    uint64_t *cm = NULL;
    memset(&te, 0, sizeof te);
    pemn_rc rc = pemn_keyring_new(&kr);
    if (rc) {
        fprintf(stderr, "pemn eval: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "v", lo, NULL)) != -1) {
        switch (c) {
        case O_DATA:
            data = optarg;
            break;
        case O_SPLIT:
            split = optarg;
            break;
        case O_TRUST:
            rc = pemn_keyring_add_file(kr, optarg, &err);
            if (rc) {
                fprintf(stderr, "pemn eval: --trust %s: %s\n", optarg, err.msg);
                ret = CLI_EXIT_USAGE;
                goto done;
            }
            break;
        case O_LIMIT:
            errno = 0;
            limit = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || limit > UINT32_MAX) {
                fprintf(stderr, "pemn eval: bad --limit '%s'\n", optarg);
                ret = CLI_EXIT_USAGE;
                goto done;
            }
            break;
        case O_THREADS:
            errno = 0;
            threads = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || threads < 1 || threads > 256) {
                fprintf(stderr, "pemn eval: bad --threads '%s' (1..256)\n", optarg);
                ret = CLI_EXIT_USAGE;
                goto done;
            }
            break;
        case 'v':
        case O_VERBOSE:
            verbose = 1;
            break;
        case O_HELP:
            eval_usage(stdout);
            ret = CLI_EXIT_OK;
            goto done;
        default:
            fprintf(stderr, "pemn eval: unknown option or missing value: %s\n", argv[optind - 1]);
            ret = CLI_EXIT_USAGE;
            goto done;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "pemn eval: exactly one MODEL expected (pemn eval --help)\n");
        ret = CLI_EXIT_USAGE;
        goto done;
    }
    const char *path = argv[optind];
    const char *train_meta = NULL;
    if (ends_with(path, ".safetensors")) {
        rc = pemn_st_open_file(path, &st, &err);
        if (rc) {
            fprintf(stderr, "pemn eval: %s: %s\n", path, err.msg);
            ret = cli_exit_code(rc);
            goto done;
        }
        rc = train_model_from_safetensors(st, &m, &err);
        train_meta = pemn_st_meta_get(st, "pemn.train");
    } else {
        rc = pemn_pkg_open_file(path, 0, &pkg, &err);
        if (rc) {
            fprintf(stderr, "pemn eval: %s: %s\n", path, err.msg);
            ret = cli_exit_code(rc);
            goto done;
        }
        rc = pemn_pkg_verify(pkg, pemn_keyring_count(kr) ? kr : NULL, &err);
        struct pemn_pkg_info info;
        char id[PEMN_KEYID_TEXT_MAX] = "?";
        if (pemn_pkg_info(pkg, &info) == PEMN_OK)
            pemn_keyid_format(info.signer_id, id);
        if (rc == PEMN_EUNTRUSTED && pemn_keyring_count(kr) == 0) {
            fprintf(stderr,
                    "pemn eval: signature valid; signer %s not checked against a trusted key "
                    "(use --trust KEY.pub)\n",
                    id);
        } else if (rc) {
            fprintf(stderr, "pemn eval: %s: %s\n", path, err.msg);
            ret = cli_exit_code(rc);
            goto done;
        } else {
            fprintf(stderr, "pemn eval: signature valid, signer %s trusted\n", id);
        }
        rc = train_model_from_pkg(pkg, &m, &err);
        train_meta = pemn_pkg_meta_get(pkg, "pemn.train");
    }
    if (rc) {
        fprintf(stderr, "pemn eval: %s: %s\n", path, err.msg);
        ret = cli_exit_code(rc);
        goto done;
    }
    rc = train_data_load_dir(data, split, &te, &err);
    if (rc) {
        fprintf(stderr, "pemn eval: %s\n", err.msg);
        ret = cli_exit_code(rc);
        goto done;
    }
    train_data_truncate(&te, (uint32_t)limit);
    if (te.rows != m->input.rows || te.cols != m->input.cols) {
        fprintf(stderr, "pemn eval: data images are %ux%u, the model expects %ux%u\n", te.rows,
                te.cols, m->input.rows, m->input.cols);
        ret = CLI_EXIT_USAGE;
        goto done;
    }
    openblas_set_num_threads((int)threads);
    cm = calloc((size_t)m->n_classes * m->n_classes, sizeof *cm);
    if (!cm) {
        fprintf(stderr, "pemn eval: out of memory\n");
        goto done;
    }
    double acc;
    rc = train_evaluate(m, &te, 0, te.n, &acc, cm, &err);
    if (rc) {
        fprintf(stderr, "pemn eval: %s\n", err.msg);
        ret = cli_exit_code(rc);
        goto done;
    }
    uint64_t correct = 0;
    for (uint32_t i = 0; i < m->n_classes; i++)
        correct += cm[(size_t)i * m->n_classes + i];
    printf("test accuracy %.2f%% (%llu/%u correct)\n", 100 * acc, (unsigned long long)correct,
           te.n);
    uint32_t rec_n;
    double rec = train_recorded_accuracy(train_meta, &rec_n);
    if (rec >= 0 && rec_n == te.n && strcmp(split, "t10k") == 0)
        printf("trainer reported %.2f%%: %s\n", 100 * rec,
               rec == acc ? "identical" : "DIFFERENT (other data or thread count?)");
    if (verbose)
        print_confusion(m, cm);
    ret = CLI_EXIT_OK;
done:
    free(cm);
    train_data_free(&te);
    train_model_free(m);
    pemn_pkg_free(pkg);
    pemn_st_free(st);
    pemn_keyring_free(kr);
    return ret;
}
