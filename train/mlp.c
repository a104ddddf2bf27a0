/*
 * train/mlp.c — layers, forward/backward through cblas_sgemm, softmax cross-entropy.
 */
#include "train/mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pack.h>

#include "proto/err.h"

/* ---- matrix products ------------------------------------------------------------------- */

static int use_naive_gemm;

void train_set_naive_gemm(int on)
{
    use_naive_gemm = on;
}

/* Row-major C = alpha * op(A) op(B) + beta * C. The naive triple loop exists only as the
 * in-run peer of `make bench`; training uses OpenBLAS. */
static void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!use_naive_gemm) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
            }
            C[(size_t)i * ldc + j] =
                alpha * acc + (beta != 0.0f ? beta * C[(size_t)i * ldc + j] : 0.0f);
        }
}

/* ---- linear ---------------------------------------------------------------------------- */

static void linear_forward(struct train_layer *l, const float *x, float *y, size_t batch,
                           int training)
{
    (void)training;
    const float *w = l->masked ? l->weff : l->weight;
    int B = (int)batch, in = (int)l->in_dim, out = (int)l->out_dim;
    if (l->bias) {
        for (size_t b = 0; b < batch; b++)
            memcpy(y + b * l->out_dim, l->bias, l->out_dim * sizeof(float));
    }
    /* y[B x out] = x[B x in] * w^T  (w is [out x in]) */
    gemm(0, 1, B, out, in, 1.0f, x, in, w, in, l->bias ? 1.0f : 0.0f, y, out);
}

static void linear_backward(struct train_layer *l, const float *x, const float *y, const float *dy,
                            float *dx, size_t batch)
{
    (void)y;
    int B = (int)batch, in = (int)l->in_dim, out = (int)l->out_dim;
    const float *w = l->masked ? l->weff : l->weight;
    /* dW[out x in] = dy^T[out x B] * x[B x in] */
    gemm(1, 0, out, in, B, 1.0f, dy, out, x, in, 0.0f, l->weight_grad, in);
    if (l->bias) {
        memset(l->bias_grad, 0, l->out_dim * sizeof(float));
        for (size_t b = 0; b < batch; b++)
            for (size_t j = 0; j < l->out_dim; j++)
                l->bias_grad[j] += dy[b * l->out_dim + j];
    }
    if (l->masked) {
        /* Straight-through: d score = (dL/dweff * weight) * sign(score). */
        size_t n = l->in_dim * l->out_dim;
        const float *g = l->weight_grad, *wt = l->weight, *s = l->scores;
        float *sg = l->scores_grad;
        for (size_t i = 0; i < n; i++) {
            float sign = (s[i] > 0.0f) - (s[i] < 0.0f);
            sg[i] = g[i] * wt[i] * sign;
        }
    }
    if (dx) /* dx[B x in] = dy[B x out] * w[out x in] */
        gemm(0, 0, B, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

static const struct train_layer_vt linear_vt = {"linear", linear_forward, linear_backward};

/* ---- relu ------------------------------------------------------------------------------ */

static void relu_forward(struct train_layer *l, const float *x, float *y, size_t batch,
                         int training)
{
    (void)training;
    size_t n = batch * l->out_dim;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(struct train_layer *l, const float *x, const float *y, const float *dy,
                          float *dx, size_t batch)
{
    (void)x;
    if (!dx)
        return;
    size_t n = batch * l->out_dim;
    for (size_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static const struct train_layer_vt relu_vt = {"relu", relu_forward, relu_backward};

/* ---- batchnorm1d (PyTorch semantics: biased variance to normalise, unbiased in the
 * running estimate, running = (1 - momentum) * running + momentum * batch) ----------- */

static void bn_forward(struct train_layer *l, const float *x, float *y, size_t batch, int training)
{
    size_t C = l->out_dim;
    if (!training || batch < 2) {
        for (size_t c = 0; c < C; c++) {
            float inv = 1.0f / sqrtf(l->run_var[c] + l->eps);
            float a = l->gamma[c] * inv, b = l->beta[c] - l->run_mean[c] * a;
            for (size_t i = 0; i < batch; i++)
                y[i * C + c] = x[i * C + c] * a + b;
        }
        return;
    }
    for (size_t c = 0; c < C; c++) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < batch; i++)
            sum += x[i * C + c];
        double mean = sum / (double)batch;
        for (size_t i = 0; i < batch; i++) {
            double d = x[i * C + c] - mean;
            sq += d * d;
        }
        double var = sq / (double)batch;
        float inv = (float)(1.0 / sqrt(var + l->eps));
        l->invstd[c] = inv;
        for (size_t i = 0; i < batch; i++) {
            float xh = (float)(x[i * C + c] - mean) * inv;
            l->xhat[i * C + c] = xh;
            y[i * C + c] = l->gamma[c] * xh + l->beta[c];
        }
        double unbiased = sq / (double)(batch - 1);
        l->run_mean[c] = (1.0f - l->momentum) * l->run_mean[c] + l->momentum * (float)mean;
        l->run_var[c] = (1.0f - l->momentum) * l->run_var[c] + l->momentum * (float)unbiased;
    }
}

static void bn_backward(struct train_layer *l, const float *x, const float *y, const float *dy,
                        float *dx, size_t batch)
{
    (void)x;
    (void)y;
    size_t C = l->out_dim;
    for (size_t c = 0; c < C; c++) {
        double sdy = 0, sdyx = 0;
        for (size_t i = 0; i < batch; i++) {
            sdy += dy[i * C + c];
            sdyx += (double)dy[i * C + c] * l->xhat[i * C + c];
        }
        l->beta_grad[c] = (float)sdy;
        l->gamma_grad[c] = (float)sdyx;
        if (!dx)
            continue;
        float k = l->gamma[c] * l->invstd[c] / (float)batch;
        float mdy = (float)sdy, mdyx = (float)sdyx;
        for (size_t i = 0; i < batch; i++)
            dx[i * C + c] = k * ((float)batch * dy[i * C + c] - mdy - l->xhat[i * C + c] * mdyx);
    }
}

static const struct train_layer_vt bn_vt = {"batchnorm1d", bn_forward, bn_backward};

/* ---- spec ------------------------------------------------------------------------------ */

pemn_rc train_mlp_parse(const char *text, struct train_mlp_spec *spec, struct pemn_err *err)
{
    size_t n = 0;
    const char *p = text;
    size_t cap = sizeof spec->sizes / sizeof spec->sizes[0];
    if (!text || !*text)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "empty architecture");
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9')
            goto bad;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v == 0 || v > TRAIN_MAX_WIDTH)
            goto bad;
        if (n == cap)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "architecture '%s': at most %zu layer sizes", text, cap);
        spec->sizes[n++] = v;
        p = end;
        if (*p == 0)
            break;
        if (*p != '-')
            goto bad;
        p++;
    }
    if (n < 2)
        goto bad;
    spec->n_sizes = n;
    return PEMN_OK;
bad:
    return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                     "architecture '%s': expected layer sizes like 784-300-100-10 "
                     "(each 1..%u)",
                     text, TRAIN_MAX_WIDTH);
}

void train_mlp_format(const struct train_mlp_spec *spec, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < spec->n_sizes && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%zu", i ? "-" : "", spec->sizes[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* ---- net ------------------------------------------------------------------------------- */

static float *falloc(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

pemn_rc train_net_new(const struct train_mlp_spec *spec, int masked, double density,
                      size_t max_batch, struct train_net **out, struct pemn_err *err)
{
    *out = NULL;
    if (spec->n_sizes < 2 || spec->n_sizes > sizeof spec->sizes / sizeof spec->sizes[0])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad layer count");
    if (max_batch == 0 || max_batch > (1u << 20))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad batch size %zu", max_batch);
    if (masked && !(density > 0.0 && density <= 1.0))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "density %g outside (0, 1]", density);
    for (size_t i = 0; i < spec->n_sizes; i++)
        if (spec->sizes[i] == 0 || spec->sizes[i] > TRAIN_MAX_WIDTH)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad layer size %zu",
                             spec->sizes[i]);
    struct train_net *net = calloc(1, sizeof *net);
    if (!net)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    net->in_dim = spec->sizes[0];
    net->out_dim = spec->sizes[spec->n_sizes - 1];
    net->max_batch = max_batch;
    int oom = 0;
    size_t maxdim = 0;
    for (size_t i = 0; i + 1 < spec->n_sizes; i++) {
        size_t in = spec->sizes[i], o = spec->sizes[i + 1], nw = in * o;
        struct train_layer *l = &net->layers[net->n_layers++];
        l->vt = &linear_vt;
        snprintf(l->name, sizeof l->name, "fc%zu", i + 1);
        l->in_dim = in;
        l->out_dim = o;
        l->weight = falloc(nw);
        l->weight_grad = falloc(nw);
        oom |= !l->weight || !l->weight_grad;
        if (spec->bias) {
            l->bias = falloc(o);
            l->bias_grad = falloc(o);
            oom |= !l->bias || !l->bias_grad;
        }
        if (masked) {
            l->masked = 1;
            l->density = density;
            l->scale = 1.0f;
            l->scores = falloc(nw);
            l->scores_grad = falloc(nw);
            l->weff = falloc(nw);
            l->mask = calloc(nw, 1);
            oom |= !l->scores || !l->scores_grad || !l->weff || !l->mask;
            oom |= train_topk_init(&l->topk, nw / 16 + 64) != PEMN_OK;
        }
        if (i + 2 == spec->n_sizes)
            break;
        if (spec->batchnorm) {
            l = &net->layers[net->n_layers++];
            l->vt = &bn_vt;
            snprintf(l->name, sizeof l->name, "bn%zu", i + 1);
            l->in_dim = l->out_dim = o;
            l->gamma = falloc(o);
            l->beta = falloc(o);
            l->gamma_grad = falloc(o);
            l->beta_grad = falloc(o);
            l->run_mean = falloc(o);
            l->run_var = falloc(o);
            l->invstd = falloc(o);
            l->xhat = falloc(o * max_batch);
            l->eps = 1e-5f;
            l->momentum = 0.1f;
            oom |= !l->gamma || !l->beta || !l->gamma_grad || !l->beta_grad || !l->run_mean ||
                   !l->run_var || !l->invstd || !l->xhat;
            if (!oom)
                for (size_t c = 0; c < o; c++)
                    l->gamma[c] = l->run_var[c] = 1.0f;
        }
        l = &net->layers[net->n_layers++];
        l->vt = &relu_vt;
        l->in_dim = l->out_dim = o;
    }
    for (size_t i = 0; i < spec->n_sizes; i++)
        if (spec->sizes[i] > maxdim)
            maxdim = spec->sizes[i];
    net->act[0] = falloc(max_batch * net->in_dim);
    oom |= !net->act[0];
    for (size_t i = 0; i < net->n_layers; i++) {
        net->act[i + 1] = falloc(max_batch * net->layers[i].out_dim);
        oom |= !net->act[i + 1];
    }
    net->grad_a = falloc(max_batch * maxdim);
    net->grad_b = falloc(max_batch * maxdim);
    oom |= !net->grad_a || !net->grad_b;
    if (oom) {
        train_net_free(net);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory for the network");
    }
    train_net_collect_params(net);
    *out = net;
    return PEMN_OK;
}

void train_net_free(struct train_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        float *fs[] = {l->weight,      l->weight_grad, l->bias,    l->bias_grad, l->scores,
                       l->scores_grad, l->weff,        l->gamma,   l->beta,      l->gamma_grad,
                       l->beta_grad,   l->run_mean,    l->run_var, l->xhat,      l->invstd};
        for (size_t j = 0; j < sizeof fs / sizeof fs[0]; j++)
            free(fs[j]);
        free(l->mask);
        train_topk_free(&l->topk);
    }
    for (size_t i = 0; i <= net->n_layers; i++)
        free(net->act[i]);
    free(net->grad_a);
    free(net->grad_b);
    free(net);
}

static void add_param(struct train_net *net, const char *layer, const char *what, float *v,
                      float *g, size_t n)
{
    struct train_param *p = &net->params[net->n_params++];
    snprintf(p->name, sizeof p->name, "%s.%s", layer, what);
    p->value = v;
    p->grad = g;
    p->n = n;
}

void train_net_collect_params(struct train_net *net)
{
    net->n_params = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        if (l->vt == &linear_vt) {
            size_t nw = l->in_dim * l->out_dim;
            if (l->masked)
                add_param(net, l->name, "scores", l->scores, l->scores_grad, nw);
            else
                add_param(net, l->name, "weight", l->weight, l->weight_grad, nw);
            if (l->bias)
                add_param(net, l->name, "bias", l->bias, l->bias_grad, l->out_dim);
        } else if (l->vt == &bn_vt) {
            add_param(net, l->name, "weight", l->gamma, l->gamma_grad, l->out_dim);
            add_param(net, l->name, "bias", l->beta, l->beta_grad, l->out_dim);
        }
    }
}

pemn_rc train_net_update_masks(struct train_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        if (!l->masked)
            continue;
        size_t n = l->in_dim * l->out_dim;
        pemn_rc rc =
            train_topk_update(&l->topk, l->scores, n, l->density, l->mask, l->weight, l->weff);
        if (rc)
            return rc;
    }
    return PEMN_OK;
}

const float *train_net_forward(struct train_net *net, const float *x, size_t batch, int training)
{
    const float *in = x;
    net->input = x;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        l->vt->forward(l, in, net->act[i + 1], batch, training);
        in = net->act[i + 1];
    }
    return in;
}

void train_net_backward(struct train_net *net, const float *dlogits, size_t batch)
{
    const float *dy = dlogits;
    float *bufs[2] = {net->grad_a, net->grad_b};
    int which = 0;
    for (size_t i = net->n_layers; i-- > 0;) {
        struct train_layer *l = &net->layers[i];
        const float *x = i == 0 ? net->input : net->act[i];
        float *dx = i == 0 ? NULL : bufs[which];
        l->vt->backward(l, x, net->act[i + 1], dy, dx, batch);
        dy = dx;
        which ^= 1;
    }
}

double train_softmax_xent(const float *logits, const uint8_t *labels, size_t batch, size_t classes,
                          float *dlogits, size_t *correct)
{
    double loss = 0;
    for (size_t b = 0; b < batch; b++) {
        const float *z = logits + b * classes;
        size_t am = train_argmax(z, classes);
        if (am == labels[b])
            ++*correct;
        float m = z[am];
        double sum = 0;
        for (size_t c = 0; c < classes; c++)
            sum += exp((double)(z[c] - m));
        /* sum >= 1: it includes exp(0) for the argmax (classes >= 1) */
        // cppcheck-suppress invalidFunctionArg
        double lse = (double)m + log(sum);
        loss += lse - (double)z[labels[b]];
        if (dlogits) {
            float *d = dlogits + b * classes;
            for (size_t c = 0; c < classes; c++) {
                double p = exp((double)z[c] - lse);
                d[c] = (float)((p - (c == labels[b] ? 1.0 : 0.0)) / (double)batch);
            }
        }
    }
    return loss / (double)batch;
}

size_t train_argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

struct train_layer *train_net_layer(struct train_net *net, const char *name)
{
    for (size_t i = 0; i < net->n_layers; i++)
        if (net->layers[i].name[0] && strcmp(net->layers[i].name, name) == 0)
            return &net->layers[i];
    return NULL;
}
