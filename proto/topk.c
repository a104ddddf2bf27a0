/*
 * proto/topk.c — top-k masks as the edge-popup reference computes them.
 *
 * The reference sorts the scores ascending, zeroes the first j = int((1 - k) * n) and keeps
 * the rest. We keep the same count and make the order total: |score| descending, NaN last,
 * ties by lower index first.
 *
 * Selection is a radix select over a 32-bit rank key (no sort, no copy of the scores):
 * four histogram passes of 8 bits find the key K of the m-th best entry, then one pass
 * keeps every key above K and the lowest-index entries whose key equals K. Worst-case
 * O(n) time, O(1) extra memory.
 */
#include <math.h>
#include <string.h>

#include <pemn/pack.h>

#include "proto/err.h"

uint64_t pemn_topk_count(uint64_t n, double k)
{
    if (!(k > 0.0 && k <= 1.0))
        return 0;
    double j = (1.0 - k) * (double)n; /* the reference's arithmetic, in double */
    uint64_t drop = j >= (double)n ? n : (uint64_t)j;
    return n - drop;
}

/* Rank key: larger is better. |s| as bits orders non-negative floats; NaN ranks below 0. */
static inline uint32_t rank_key(float s)
{
    uint32_t b;
    memcpy(&b, &s, sizeof b);
    b &= 0x7fffffffu;
    if (b > 0x7f800000u)
        return 0; /* NaN */
    return b + 1;
}

pemn_rc pemn_topk_mask(const float *scores, uint64_t n, double k, uint8_t *mask)
{
    if (!(k > 0.0 && k <= 1.0))
        return PEMN_EINVAL;
    if (n == 0)
        return PEMN_OK;
    if (!scores || !mask)
        return PEMN_EINVAL;
    uint64_t need = pemn_topk_count(n, k);
    if (need == 0) {
        memset(mask, 0, n);
        return PEMN_OK;
    }
    if (need == n) {
        memset(mask, 1, n);
        return PEMN_OK;
    }

    /* Find K, the key of the need-th best entry, 8 bits at a time from the top. After
     * each pass, `prefix` holds the high bits of K and `need` the rank of the wanted
     * entry among those sharing that prefix. */
    uint64_t prefix = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint64_t hist[256] = {0};
        for (uint64_t i = 0; i < n; i++) {
            uint32_t key = rank_key(scores[i]);
            if (((uint64_t)key >> (shift + 8)) == prefix)
                hist[(key >> shift) & 0xffu]++;
        }
        int b = 255;
        for (; b > 0; b--) {
            if (hist[b] >= need)
                break;
            need -= hist[b];
        }
        prefix = (prefix << 8) | (uint64_t)b;
    }
    uint32_t kth = (uint32_t)prefix;

    for (uint64_t i = 0; i < n; i++) {
        uint32_t key = rank_key(scores[i]);
        uint8_t keep = key > kth;
        if (key == kth && need > 0) {
            keep = 1;
            need--;
        }
        mask[i] = keep;
    }
    return PEMN_OK;
}
