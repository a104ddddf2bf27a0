/*
 * train/topk_band.h — the training loop's top-k: the same mask as pemn_topk_mask (the K =
 * pemn_topk_count(n, k) largest |score|, ties to the lower index, NaN lowest), found faster
 * between two optimizer steps, when scores move little, by searching only a band around
 * the previous threshold:
 *   pass 1: G = #(|s| > hi), band = {|s| in [lo, hi]};  if G < K <= G + |band|, the
 *           threshold v is the (K - G)-th largest of the band (quickselect on the band);
 *   pass 2: keep |s| > v, and the first K - #(|s| > v) entries equal to v in index order.
 * Otherwise (first call, band missed or too large, NaN in play) it calls pemn_topk_mask
 * itself and re-centres the band. Linear time either way; the band adapts its width.
 * The package is always written with pemn_topk_mask, and tests compare the two.
 *
 * Thread-safety: a state is used by one thread at a time.
 */
#ifndef PEMN_TRAIN_TOPK_BAND_H
#define PEMN_TRAIN_TOPK_BAND_H

#include <pemn/common.h>
#include <stddef.h>

struct train_topk_state {
    int valid;    /* a previous threshold exists */
    float thresh; /* previous K-th largest |score| */
    float width;  /* half-width of the band */
    float *band;  /* scratch, cap floats (owned) */
    size_t cap;
    uint64_t fast, slow; /* calls answered by the band / by pemn_topk_mask */
};

/* cap: band capacity (e.g. n / 16 + 64; one more float is allocated). PEMN_ENOMEM. */
pemn_rc train_topk_init(struct train_topk_state *st, size_t cap);
void train_topk_free(struct train_topk_state *st);

/* mask[i] in {0,1} exactly as pemn_topk_mask(scores, n, k, mask); when w and weff are not
 * NULL, also weff[i] = w[i] * mask[i] (-0.0 for a pruned negative w) in the same pass. With w and
 * weff, mask and weff must hold this state's previous answer (for the same w): only the entries
 * that change are written. */
pemn_rc train_topk_update(struct train_topk_state *st, const float *scores, uint64_t n, double k,
                          uint8_t *mask, const float *w, float *weff);

#endif
