/*
 * train/blas.h — OpenBLAS kernel choice.
 *
 * OpenBLAS (DYNAMIC_ARCH builds, as Debian's) picks its kernels from the CPU model when the
 * library is loaded. On CPUs it does not know — common in virtual machines, which report a
 * generic model — it falls back to the Prescott (SSE3) kernels even when the CPU has AVX2
 * or AVX-512: three times slower here. The only remedy is the environment variable
 * OPENBLAS_CORETYPE, read at load time, so the `pemn` commands that multiply matrices
 * re-execute themselves once with it set (cli/pemn/blas_tune.c). The choice of kernel is
 * part of what makes a run reproducible (with the seed and the thread count).
 *
 * Thread-safety: pure functions.
 */
#ifndef PEMN_TRAIN_BLAS_H
#define PEMN_TRAIN_BLAS_H

/* The OPENBLAS_CORETYPE to ask for, or NULL to keep `current` (OpenBLAS's core name):
 * "SkylakeX" when the CPU has AVX-512 F/BW/VL/DQ, "Haswell" with AVX2 + FMA, and only when
 * the current core is one without AVX2 (Prescott, Core2, Penryn, Dunnington, Nehalem,
 * Sandybridge, Atom, ...). */
const char *train_blas_suggest_core(const char *current, int has_avx2_fma, int has_avx512);

/* The same for this process: asks OpenBLAS for its core and the CPU for its features. */
const char *train_blas_suggest_core_here(void);

#endif
