/*
 * proto/half.h — exact conversions of 16-bit floats to binary32 (internal).
 *
 * Every binary16 and bfloat16 value is exactly representable in binary32, so these are
 * exact: normals, subnormals, signed zeros and infinities map to the same value, and a NaN
 * maps to a quiet NaN carrying the same sign and payload bits (shifted into place).
 */
#ifndef PEMN_PROTO_HALF_H
#define PEMN_PROTO_HALF_H

#include <stdint.h>

float proto_f16_to_f32(uint16_t h);
float proto_bf16_to_f32(uint16_t b);
/* Bit pattern of a float and back, without aliasing tricks. */
uint32_t proto_f32_bits(float f);
float proto_f32_from_bits(uint32_t u);

#endif
