/*
 * proto/half.c — binary16 / bfloat16 to binary32, exact (bit manipulation, no FPU rounding).
 */
#include "proto/half.h"

#include <string.h>

uint32_t proto_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float proto_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float proto_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;

    if (exp == 0x1f) {
        /* infinity (man == 0) or NaN: keep the payload, in the top mantissa bits */
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        /* normal: rebias 15 -> 127 */
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign; /* signed zero */
    } else {
        /* subnormal: value = man * 2^-24; normalise so the leading 1 sits at bit 10 */
        uint32_t e = 113; /* biased exponent of 2^-14 */
        while (!(man & 0x400u)) {
            man <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((man & 0x3ffu) << 13);
    }
    return proto_f32_from_bits(bits);
}

float proto_bf16_to_f32(uint16_t b)
{
    /* bfloat16 is the top half of a binary32 */
    return proto_f32_from_bits((uint32_t)b << 16);
}
