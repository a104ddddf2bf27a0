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
 * Ties in |score| are broken by index: the lower index is kept. NaN scores rank lowest.
 * Expected O(n) (quickselect), not a sort. PEMN_EINVAL for k outside (0, 1]. */
pemn_rc pemn_topk_mask(const float *scores, uint64_t n, double k, uint8_t *mask);

#ifdef __cplusplus
}
#endif
#endif
