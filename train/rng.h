/*
 * train/rng.h — the trainer's own deterministic PRNG (xoshiro256**, seeded by splitmix64)
 * for score/weight initialisation and shuffling. Prototype values do NOT come from here:
 * they come from the format's seeded generators (pemn/gen.h) so a package can carry the
 * seed instead of the values.
 */
#ifndef PEMN_TRAIN_RNG_H
#define PEMN_TRAIN_RNG_H

#include <stdint.h>

struct train_rng {
    uint64_t s[4];
};

static inline uint64_t train_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Independent streams for one seed: stream 1 scores/weights, 2 shuffling, ... */
static inline void train_rng_seed(struct train_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = train_splitmix64(&x);
}

static inline uint64_t train_rng_next(struct train_rng *r)
{
    uint64_t *s = r->s;
    uint64_t v = s[1] * 5;
    uint64_t res = ((v << 7) | (v >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform float in [-a, a). */
static inline float train_rng_uniform(struct train_rng *r, float a)
{
    float u = (float)(train_rng_next(r) >> 40) * (1.0f / 16777216.0f); /* [0,1) */
    return (2.0f * u - 1.0f) * a;
}

/* Uniform integer in [0, n) (n > 0), unbiased. */
static inline uint64_t train_rng_below(struct train_rng *r, uint64_t n)
{
    uint64_t lim = -n % n;
    for (;;) {
        uint64_t x = train_rng_next(r);
        if (x >= lim)
            return x % n;
    }
}

#endif
