/*
 * train/blas.c — OpenBLAS kernel choice (see train/blas.h).
 */
#include "train/blas.h"

#include <cblas.h>
#include <string.h>
#include <strings.h>

const char *train_blas_suggest_core(const char *current, int has_avx2_fma, int has_avx512)
{
    static const char *const weak[] = {"Prescott",   "Core2",       "Penryn", "Dunnington",
                                       "Nehalem",    "Sandybridge", "Atom",   "Katmai",
                                       "Coppermine", "Northwood",   "Banias", "Unknown"};
    if (!current || !has_avx2_fma)
        return NULL;
    int is_weak = 0;
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
        if (strcasecmp(current, weak[i]) == 0)
            is_weak = 1;
    if (!is_weak)
        return NULL;
    return has_avx512 ? "SkylakeX" : "Haswell";
}

const char *train_blas_suggest_core_here(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    return train_blas_suggest_core(openblas_get_corename(), avx2, avx512);
#else
    return NULL;
#endif
}
