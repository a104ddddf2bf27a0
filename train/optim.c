/*
 * train/optim.c — SGD (momentum, weight decay), AdamW, cosine schedule.
 */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/err.h"

pemn_rc train_optim_parse(const char *name, enum train_opt_kind *out)
{
    if (strcmp(name, "sgd") == 0)
        *out = TRAIN_OPT_SGD;
    else if (strcmp(name, "adamw") == 0)
        *out = TRAIN_OPT_ADAMW;
    else
        return PEMN_EINVAL;
    return PEMN_OK;
}

const char *train_optim_name(enum train_opt_kind kind)
{
    return kind == TRAIN_OPT_ADAMW ? "adamw" : "sgd";
}

pemn_rc train_optim_init(struct train_optim *o, enum train_opt_kind kind, double momentum,
                         double wd, const struct train_net *net, struct pemn_err *err)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->momentum = momentum;
    o->wd = wd;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->n = net->n_params;
    for (size_t i = 0; i < o->n; i++) {
        size_t n = net->params[i].n;
        o->s1[i] = calloc(n, sizeof(float));
        if (kind == TRAIN_OPT_ADAMW)
            o->s2[i] = calloc(n, sizeof(float));
        if (!o->s1[i] || (kind == TRAIN_OPT_ADAMW && !o->s2[i])) {
            train_optim_free(o);
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (optimizer)");
        }
    }
    return PEMN_OK;
}

void train_optim_free(struct train_optim *o)
{
    for (size_t i = 0; i < TRAIN_MAX_LAYERS * 2; i++) {
        free(o->s1[i]);
        free(o->s2[i]);
        o->s1[i] = o->s2[i] = NULL;
    }
    o->n = 0;
}

void train_optim_step(struct train_optim *o, struct train_net *net, double lr)
{
    o->t++;
    float flr = (float)lr, fwd = (float)o->wd, fmom = (float)o->momentum;
    if (o->kind == TRAIN_OPT_SGD) {
        for (size_t i = 0; i < o->n; i++) {
            struct train_param *p = &net->params[i];
            float *buf = o->s1[i];
            for (size_t j = 0; j < p->n; j++) {
                float g = p->grad[j] + fwd * p->value[j];
                buf[j] = fmom * buf[j] + g;
                p->value[j] -= flr * buf[j];
            }
        }
        return;
    }
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float c1 = (float)(1.0 - pow(o->beta1, (double)o->t));
    float c2 = (float)(1.0 - pow(o->beta2, (double)o->t));
    float decay = 1.0f - flr * fwd, sc2 = 1.0f / sqrtf(c2);
    for (size_t i = 0; i < o->n; i++) {
        struct train_param *p = &net->params[i];
        float *m = o->s1[i], *v = o->s2[i];
        for (size_t j = 0; j < p->n; j++) {
            float g = p->grad[j];
            m[j] = b1 * m[j] + (1.0f - b1) * g;
            v[j] = b2 * v[j] + (1.0f - b2) * g * g;
            p->value[j] = p->value[j] * decay - flr * (m[j] / c1) / (sqrtf(v[j]) * sc2 + eps);
        }
    }
}

double train_cosine_lr(double lr0, uint64_t step, uint64_t total)
{
    if (total == 0 || step >= total)
        return 0.0;
    return lr0 * 0.5 * (1.0 + cos(M_PI * (double)step / (double)total));
}
