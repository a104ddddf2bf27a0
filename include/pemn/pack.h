/*
 * pemn/pack.h — turning checkpoints into packages: top-k masks and prototype detection.
 *
 * Thread-safety: pure functions.
 */
#ifndef PEMN_PACK_H
#define PEMN_PACK_H

#include <pemn/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of weights kept at density k out of n, as the reference edge-popup implementation
 * computes it in double precision: n - floor((1.0 - k) * n). k in (0, 1]. */
uint64_t pemn_topk_count(uint64_t n, double k);

/* mask[i] = 1 for the pemn_topk_count(n, k) entries of largest |scores[i]|, else 0.
 * Ties in |score| are broken by index: the lower index is kept (-0.0 ties with 0.0). NaN
 * scores rank lowest (among NaNs, again the lower index first). O(n) worst case (a radix
 * selection: five passes, no sort, no extra memory). PEMN_EINVAL for k outside (0, 1],
 * or scores/mask NULL with n > 0. */
pemn_rc pemn_topk_mask(const float *scores, uint64_t n, double k, uint8_t *mask);

#ifdef __cplusplus
}
#endif
#endif
