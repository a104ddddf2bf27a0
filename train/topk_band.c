/*
 * train/topk_band.c — exact top-k masks between optimizer steps (see train/topk_band.h).
 */
#include "train/topk_band.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pack.h>

pemn_rc train_topk_init(struct train_topk_state *st, size_t cap)
{
    memset(st, 0, sizeof *st);
    st->band = malloc((cap + 1) * sizeof(float)); /* +1: pass 1 stores before it counts */
    if (!st->band)
        return PEMN_ENOMEM;
    st->cap = cap;
    return PEMN_OK;
}

void train_topk_free(struct train_topk_state *st)
{
    free(st->band);
    memset(st, 0, sizeof *st);
}

/* The r-th largest (1 <= r <= n) of v[0..n); v is reordered. Quickselect with a
 * median-of-three pivot and a three-way partition (ties are common); expected linear. */
static float nth_largest(float *v, size_t n, size_t r)
{
    size_t lo = 0, hi = n, want = r - 1; /* position in descending order, within [lo, hi) */
    for (;;) {
        float a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi - 1];
        float p = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
        /* [lo, gt) > p, [gt, i) == p, [i, lt) unknown, [lt, hi) < p */
        size_t gt = lo, i = lo, lt = hi;
        while (i < lt) {
            float x = v[i];
            if (x > p) {
                v[i] = v[gt];
                v[gt] = x;
                gt++;
                i++;
            } else if (x < p) {
                lt--;
                v[i] = v[lt];
                v[lt] = x;
            } else {
                i++;
            }
        }
        if (want < gt)
            hi = gt;
        else if (want < lt)
            return p;
        else
            lo = lt;
    }
}

/* Slow path: the library, then the threshold = smallest kept |score|. */
static pemn_rc slow(struct train_topk_state *st, const float *s, uint64_t n, double k,
                    uint8_t *mask, const float *w, float *weff)
{
    st->slow++;
    pemn_rc rc = pemn_topk_mask(s, n, k, mask);
    if (rc)
        return rc;
    if (w && weff)
        for (uint64_t i = 0; i < n; i++)
            weff[i] = w[i] * (float)(mask[i] != 0);
    float t = INFINITY;
    for (uint64_t i = 0; i < n; i++)
        if (mask[i]) {
            float a = fabsf(s[i]);
            if (a < t)
                t = a;
        }
    st->valid = isfinite(t);
    st->thresh = t;
    if (!(st->width > 0))
        st->width = t * 0.01f + 1e-12f;
    return PEMN_OK;
}

pemn_rc train_topk_update(struct train_topk_state *st, const float *s, uint64_t n, double k,
                          uint8_t *mask, const float *w, float *weff)
{
    uint64_t K = pemn_topk_count(n, k);
    if (!(k > 0.0 && k <= 1.0) || !s || !mask)
        return PEMN_EINVAL;
    if (!st->valid || K == 0 || K == n)
        return slow(st, s, n, k, mask, w, weff);
    float lo = st->thresh - st->width, hi = st->thresh + st->width;
    uint64_t G = 0;
    size_t nb = 0;
    int overflow = 0;
    /* branch-free: every value is stored at band[nb], nb advances only for band members */
    for (uint64_t i = 0; i < n; i++) {
        float a = fabsf(s[i]);
        G += a > hi;
        st->band[nb] = a;
        nb += (a >= lo) & (a <= hi);
        if (nb == st->cap + 1) {
            overflow = 1;
            break;
        }
    }
    if (overflow || G >= K || G + nb < K) {
        /* missed: widen (or narrow after an overflow) and take the slow path */
        st->width = overflow ? st->width * 0.5f : st->width * 2.0f;
        return slow(st, s, n, k, mask, w, weff);
    }
    float v = nth_largest(st->band, nb, (size_t)(K - G));
    uint64_t above = G;
    for (size_t i = 0; i < nb; i++)
        above += st->band[i] > v; /* band was reordered, the multiset is the same */
    uint64_t ties = K - above;
    if (w && weff) {
        /* mask and weff hold the previous step's answer: between two steps only a few
         * entries change, so write only those (the write traffic dominated otherwise) */
        for (uint64_t i = 0; i < n; i++) {
            float a = fabsf(s[i]);
            uint8_t keep = a > v;
            if (a == v && ties) { /* rare: a tie at the threshold, lower index first */
                keep = 1;
                ties--;
            }
            if (keep != mask[i]) {
                mask[i] = keep;
                weff[i] = w[i] * (float)(keep != 0);
            }
        }
    } else {
        for (uint64_t i = 0; i < n; i++) {
            float a = fabsf(s[i]);
            uint8_t keep = a > v;
            if (a == v && ties) {
                keep = 1;
                ties--;
            }
            mask[i] = keep;
        }
    }
    st->fast++;
    st->thresh = v;
    /* keep the band near 1/4 of its capacity */
    if (nb * 8 < st->cap)
        st->width *= 1.25f;
    else if (nb * 2 > st->cap)
        st->width *= 0.75f;
    return PEMN_OK;
}
