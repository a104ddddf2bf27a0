#!/usr/bin/env python3
"""Independent reference for pemn's seeded generators (docs/FORMAT.md, "Seeded generators").

Implements ChaCha20 from its published description (the original variant: 64-bit block
counter in state words 12-13, 64-bit nonce in words 14-15) and the three generators, then
prints the test vectors that tests/unit/test_gen.c checks. Documentation tool only: the
build and `make test` do not need Python.

Usage: python3 docs/tools/gen_vectors.py
"""
import struct

MASK32 = 0xFFFFFFFF


def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & MASK32


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK32
    s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK32
    s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK32
    s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK32
    s[b] = rotl(s[b] ^ s[c], 7)


def chacha20_block(key, counter, nonce=b"\0" * 8):
    """The 16 little-endian words of keystream block `counter` (64-bit)."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key))
    state += [counter & MASK32, (counter >> 32) & MASK32]
    state += list(struct.unpack("<2I", nonce))
    s = state[:]
    for _ in range(10):
        quarter(s, 0, 4, 8, 12)
        quarter(s, 1, 5, 9, 13)
        quarter(s, 2, 6, 10, 14)
        quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15)
        quarter(s, 1, 6, 11, 12)
        quarter(s, 2, 7, 8, 13)
        quarter(s, 3, 4, 9, 14)
    return [(s[i] + state[i]) & MASK32 for i in range(16)]


def word(key, j, cache={}):
    """w[j]: the j-th little-endian uint32 of the keystream."""
    b = j // 16
    if (key, b) not in cache:
        cache[(key, b)] = chacha20_block(key, b)
    return cache[(key, b)][j % 16]


def f32(x):
    """Round a Python float (binary64) to binary32, round-to-nearest-even."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def mul32(a, b):
    # The binary64 product of two binary32 values is exact, so one rounding gives the
    # binary32 product.
    return f32(a * b)


def uniform(key, scale, i):
    x = f32((word(key, i) >> 8) * 2.0**-23 - 1.0)
    return mul32(x, f32(scale))


def normal(key, scale, i):
    s = sum(word(key, 12 * i + j) >> 8 for j in range(12))
    x = f32((s - 6 * 2**24) * 2.0**-24)
    return mul32(x, f32(scale))


def signed(key, scale, i):
    sc = f32(scale)
    return -sc if word(key, i) >> 31 else sc


def bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


GENS = [("chacha20-uniform", uniform), ("chacha20-normal", normal),
        ("chacha20-signed", signed)]
SEED = bytes(range(32))
FIRSTS = [0, 1000000, 2**36 - 4, 2**64 - 9]


def main():
    # Self-check of the ChaCha20 core: the all-zero key/nonce block 0 (a widely published
    # value for the original variant).
    z = chacha20_block(b"\0" * 32, 0)
    assert struct.pack("<16I", *z)[:8].hex() == "76b8e0ada0f13d90", "chacha20 self-check"
    print("seed = bytes 00 01 02 .. 1f")
    for name, fn in GENS:
        for scale in (1.0, 0.05):
            for first in FIRSTS:
                print("%s scale=%s first=%d" % (name, scale, first))
                vals = [fn(SEED, scale, first + k) for k in range(8)]
                print("  bits: " + " ".join("%08x" % bits(v) for v in vals))
                print("  dec:  " + " ".join("%.9g" % v for v in vals))


if __name__ == "__main__":
    main()
