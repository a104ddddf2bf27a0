/*
 * train/train.c — the training loop, evaluation, input preprocessing.
 */
#include "train/train.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/err.h"
#include "train/rng.h"
#include "train/warm.h"

double train_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double train_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- input ----------------------------------------------------------------------------- */

void train_input_init(struct train_input *in, uint32_t rows, uint32_t cols, float scale, float mean,
                      float std)
{
    in->rows = rows;
    in->cols = cols;
    in->scale = scale;
    in->mean = mean;
    in->std = std;
    for (int p = 0; p < 256; p++)
        in->lut[p] = ((float)p * scale - mean) / std;
}

void train_input_stats(const struct train_data *d, float scale, float *mean, float *std)
{
    uint64_t hist[256] = {0};
    size_t total = (size_t)d->n * d->dim;
    for (size_t i = 0; i < total; i++)
        hist[d->images[i]]++;
    double s = 0, s2 = 0;
    for (int p = 0; p < 256; p++) {
        double v = (double)p * (double)scale;
        s += v * (double)hist[p];
        s2 += v * v * (double)hist[p];
    }
    double m = total ? s / (double)total : 0.0;
    double var = total ? s2 / (double)total - m * m : 1.0;
    *mean = (float)m;
    *std = var > 1e-12 ? (float)sqrt(var) : 1.0f;
}

static void fill_batch(const struct train_input *in, const struct train_data *d,
                       const uint32_t *idx, uint32_t first, size_t batch, float *x, uint8_t *labels)
{
    size_t dim = d->dim;
    for (size_t b = 0; b < batch; b++) {
        uint32_t s = idx ? idx[b] : first + (uint32_t)b;
        const uint8_t *px = d->images + (size_t)s * dim;
        float *row = x + b * dim;
        for (size_t j = 0; j < dim; j++)
            row[j] = in->lut[px[j]];
        labels[b] = d->labels[s];
    }
}

/* ---- model ----------------------------------------------------------------------------- */

void train_model_free(struct train_model *m)
{
    if (!m)
        return;
    train_net_free(m->net);
    train_optim_free(&m->optim);
    for (size_t i = 0; i < TRAIN_MAX_CLASSES; i++)
        free(m->classes[i]);
    free(m);
}

pemn_rc train_model_set_classes(struct train_model *m, const char *list, uint32_t n,
                                struct pemn_err *err)
{
    if (n == 0 || n > TRAIN_MAX_CLASSES)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad class count %u", n);
    char *names[TRAIN_MAX_CLASSES] = {0};
    uint32_t got = 0;
    if (list) {
        const char *p = list;
        while (got < TRAIN_MAX_CLASSES) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len == 0 || len > 64) {
                for (uint32_t i = 0; i < got; i++)
                    free(names[i]);
                return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                                 "class names: empty or longer than 64 bytes");
            }
            names[got++] = strndup(p, len);
            if (!e)
                break;
            p = e + 1;
        }
    } else {
        for (got = 0; got < n; got++) {
            char buf[16];
            snprintf(buf, sizeof buf, "%u", got);
            names[got] = strdup(buf);
        }
    }
    int oom = 0;
    for (uint32_t i = 0; i < got; i++)
        oom |= !names[i];
    if (oom || got != n) {
        for (uint32_t i = 0; i < got; i++)
            free(names[i]);
        if (oom)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%u class names given for %u classes",
                         got, n);
    }
    for (size_t i = 0; i < TRAIN_MAX_CLASSES; i++) {
        free(m->classes[i]);
        m->classes[i] = i < got ? names[i] : NULL;
    }
    m->n_classes = n;
    return PEMN_OK;
}

void train_opts_default(struct train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->arch.n_sizes = 4;
    o->arch.sizes[0] = 784;
    o->arch.sizes[1] = 300;
    o->arch.sizes[2] = 100;
    o->arch.sizes[3] = 10;
    o->masked = 1;
    o->strategy = TRAIN_STRAT_RP;
    o->ratio = 1e-3;
    o->density = 0.5;
    o->gen = PEMN_GEN_SIGNED;
    o->layer_scale = 1;
    o->optim = TRAIN_OPT_SGD;
    o->lr = 0.1;
    o->momentum = 0.9;
    o->wd = 1e-4;
    o->cosine = 1;
    o->epochs = 10;
    o->batch = 128;
    o->seed = 1;
    o->threads = 1;
    o->eval_each_epoch = 1;
}

/* ---- evaluation ------------------------------------------------------------------------ */

pemn_rc train_evaluate(struct train_model *m, const struct train_data *d, uint32_t first,
                       uint32_t n, double *accuracy, uint64_t *confusion, struct pemn_err *err)
{
    struct train_net *net = m->net;
    if (d->dim != net->in_dim)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "data has %u inputs per sample, the model expects %zu", d->dim,
                         net->in_dim);
    if (net->max_batch < TRAIN_EVAL_BATCH)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "network batch too small");
    if ((uint64_t)first + n > d->n)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "sample range outside the data");
    uint8_t labels[TRAIN_EVAL_BATCH];
    uint64_t correct = 0;
    size_t classes = net->out_dim;
    if (confusion)
        memset(confusion, 0, (size_t)m->n_classes * m->n_classes * sizeof *confusion);
    for (uint32_t s = 0; s < n; s += TRAIN_EVAL_BATCH) {
        size_t b = n - s < TRAIN_EVAL_BATCH ? n - s : TRAIN_EVAL_BATCH;
        fill_batch(&m->input, d, NULL, first + s, b, net->act[0], labels);
        const float *logits = train_net_forward(net, net->act[0], b, 0);
        for (size_t i = 0; i < b; i++) {
            size_t am = train_argmax(logits + i * classes, classes);
            correct += am == labels[i];
            if (confusion && labels[i] < m->n_classes && am < m->n_classes)
                confusion[(size_t)labels[i] * m->n_classes + am]++;
        }
    }
    *accuracy = n ? (double)correct / (double)n : 0.0;
    return PEMN_OK;
}

/* ---- training -------------------------------------------------------------------------- */

static pemn_rc check_opts(const struct train_opts *o, const struct train_data *train,
                          struct pemn_err *err)
{
    if (o->epochs == 0 || o->epochs > 100000)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "epochs must be 1..100000");
    if (o->batch == 0 || o->batch > 65536)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "batch must be 1..65536");
    if (!(o->lr > 0 && o->lr < 1e3) || !(o->momentum >= 0 && o->momentum < 1) ||
        !(o->wd >= 0 && o->wd < 1))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "need 0 < lr, 0 <= momentum < 1, 0 <= weight decay < 1");
    if (o->masked && !(o->density > 0 && o->density <= 1))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "density must be in (0, 1]");
    if (o->arch.batchnorm && o->batch < 2)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "batch-norm needs --batch >= 2");
    if (o->threads < 1 || o->threads > 256)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "threads must be 1..256");
    if (train->dim != o->arch.sizes[0])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "data has %u inputs per sample (%ux%u), the architecture starts at "
                         "%zu",
                         train->dim, train->rows, train->cols, o->arch.sizes[0]);
    if (train->n_classes > o->arch.sizes[o->arch.n_sizes - 1])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "data has labels up to %u, the architecture has %zu outputs",
                         train->n_classes - 1, o->arch.sizes[o->arch.n_sizes - 1]);
    if (o->holdout >= train->n || train->n - o->holdout < 2)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "hold-out of %u leaves too few of the %u training samples", o->holdout,
                         train->n);
    return PEMN_OK;
}

pemn_rc train_run(const struct train_opts *o, const struct train_data *train,
                  const struct train_data *test, train_progress_fn cb, void *ud,
                  struct train_model **out, struct train_result *res, struct pemn_err *err)
{
    *out = NULL;
    memset(res, 0, sizeof *res);
    res->val_acc = res->test_acc = -1;
    pemn_rc rc = check_opts(o, train, err);
    if (rc)
        return rc;
    if (test && test->dim != train->dim)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "test images are %ux%u, training images %ux%u", test->rows, test->cols,
                         train->rows, train->cols);
    openblas_set_num_threads(o->threads);

    struct train_model *m = calloc(1, sizeof *m);
    if (!m)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    uint32_t *perm = NULL;
    uint8_t *labels = NULL;
    float *dlogits = NULL;
    struct train_optim opt;
    memset(&opt, 0, sizeof opt);
    m->spec = o->arch;
    m->masked = o->masked;
    m->strategy = o->strategy;
    m->ratio = o->ratio;
    m->density = o->masked ? o->density : 0.0;
    m->gen = o->gen;
    m->layer_scale = o->layer_scale;
    m->seed = o->seed;
    size_t max_batch = o->batch > TRAIN_EVAL_BATCH ? o->batch : TRAIN_EVAL_BATCH;
    rc = train_net_new(&o->arch, o->masked, o->density, max_batch, &m->net, err);
    if (rc)
        goto fail;
    rc = train_model_set_classes(m, NULL, (uint32_t)m->net->out_dim, err);
    if (rc)
        goto fail;
    uint32_t n_train = train->n - o->holdout;
    {
        struct train_data view = *train;
        view.n = n_train;
        float mean, sd;
        train_input_stats(&view, 1.0f / 255.0f, &mean, &sd);
        train_input_init(&m->input, train->rows, train->cols, 1.0f / 255.0f, mean, sd);
    }
    if (o->masked) {
        rc = train_ep_init(m->net, o->strategy, o->ratio, o->gen, o->layer_scale, o->seed,
                           &m->protos, err);
        if (rc)
            goto fail;
    } else {
        train_dense_init(m->net, o->seed);
    }
    rc = train_optim_init(&opt, o->optim, o->momentum, o->wd, m->net, err);
    if (rc)
        goto fail;
    if (o->init && (rc = train_init_apply(o->init, m, &opt, err)) != PEMN_OK)
        goto fail;
    perm = malloc((size_t)n_train * sizeof *perm);
    labels = malloc(max_batch);
    dlogits = malloc(max_batch * m->net->out_dim * sizeof(float));
    if (!perm || !labels || !dlogits) {
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < n_train; i++)
        perm[i] = i;

    struct train_rng shuf;
    train_rng_seed(&shuf, o->seed, 2);
    /* A warm start continues the shuffle stream after the epochs already taken (when the
     * steps taken are whole epochs of this data set), so that N epochs then M more from
     * the checkpoint equal N + M epochs in one run under a constant learning rate. */
    uint64_t steps_per_epoch = n_train / o->batch + (n_train % o->batch > 1);
    if (o->init && opt.t && steps_per_epoch && opt.t % steps_per_epoch == 0)
        for (uint64_t ep = 0; ep < opt.t / steps_per_epoch && ep < 100000; ep++)
            for (uint32_t i = n_train - 1; i > 0; i--) {
                uint32_t j = (uint32_t)train_rng_below(&shuf, (uint64_t)i + 1);
                uint32_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
    /* A final batch of one sample is dropped (batch-norm needs two). */
    uint64_t steps_epoch = n_train / o->batch + (n_train % o->batch > 1);
    uint64_t total_steps = steps_epoch * o->epochs, gstep = 0;
    uint64_t first_steps = steps_epoch / 10 ? steps_epoch / 10 : 1;
    double t0 = train_now(), train_secs = 0, first_loss_sum = 0;
    struct train_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.epochs = o->epochs;
    pr.steps_epoch = steps_epoch;
    for (uint32_t ep = 1; ep <= o->epochs; ep++) {
        for (uint32_t i = n_train - 1; i > 0; i--) {
            uint32_t j = (uint32_t)train_rng_below(&shuf, (uint64_t)i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        double loss_sum = 0;
        size_t correct = 0, seen = 0;
        for (uint64_t st = 0; st < steps_epoch; st++) {
            double ts = train_now(), tc = train_cpu_now();
            size_t b0 = st * o->batch;
            size_t bs = n_train - b0 < o->batch ? n_train - b0 : o->batch;
            fill_batch(&m->input, train, perm + b0, 0, bs, m->net->act[0], labels);
            const float *logits = train_net_forward(m->net, m->net->act[0], bs, 1);
            double loss =
                train_softmax_xent(logits, labels, bs, m->net->out_dim, dlogits, &correct);
            train_net_backward(m->net, dlogits, bs);
            double lr = o->cosine ? train_cosine_lr(o->lr, gstep, total_steps) : o->lr;
            train_optim_step(&opt, m->net, lr);
            if (o->masked) {
                rc = train_net_update_masks(m->net);
                if (rc) {
                    proto_err(err, rc, PEMN_NO_OFFSET, "top-k mask failed");
                    goto fail;
                }
            }
            train_secs += train_now() - ts;
            res->cpu_seconds += train_cpu_now() - tc;
            gstep++;
            if (!isfinite(loss)) {
                rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                               "loss diverged (epoch %u step %llu): lower --lr", ep,
                               (unsigned long long)st + 1);
                goto fail;
            }
            loss_sum += loss * (double)bs;
            seen += bs;
            if (ep == 1 && st < first_steps)
                first_loss_sum += loss;
            res->samples += bs;
            pr.epoch = ep;
            pr.step = st + 1;
            pr.epoch_done = 0;
            pr.loss = loss_sum / (double)seen;
            pr.train_acc = (double)correct / (double)seen;
            pr.val_acc = pr.test_acc = -1;
            pr.lr = lr;
            pr.train_seconds = train_secs;
            pr.elapsed = train_now() - t0;
            if (cb && st + 1 < steps_epoch && cb(&pr, ud)) {
                rc = proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "training stopped");
                goto fail;
            }
        }
        res->final_loss = loss_sum / (double)seen;
        res->train_acc = (double)correct / (double)seen;
        if (o->holdout) {
            rc = train_evaluate(m, train, n_train, o->holdout, &res->val_acc, NULL, err);
            if (rc)
                goto fail;
            pr.val_acc = res->val_acc;
        }
        if (test && (o->eval_each_epoch || ep == o->epochs)) {
            rc = train_evaluate(m, test, 0, test->n, &res->test_acc, NULL, err);
            res->test_n = test->n;
            if (rc)
                goto fail;
            pr.test_acc = res->test_acc;
        }
        pr.epoch_done = 1;
        pr.elapsed = train_now() - t0;
        if (cb && cb(&pr, ud)) {
            rc = proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "training stopped");
            goto fail;
        }
    }
    res->first_loss = first_loss_sum / (double)first_steps;
    res->train_seconds = train_secs;
    res->samples_per_sec = train_secs > 0 ? (double)res->samples / train_secs : 0;
    m->optim = opt; /* kept for checkpoints */
    free(perm);
    free(labels);
    free(dlogits);
    *out = m;
    return PEMN_OK;
fail:
    train_optim_free(&opt);
    free(perm);
    free(labels);
    free(dlogits);
    train_model_free(m);
    return rc;
}
