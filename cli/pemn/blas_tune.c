/*
 * cli/pemn/blas_tune.c — see blas_tune.h.
 */
#include "cli/pemn/blas_tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "train/blas.h"

void cli_blas_tune(int argc, char **argv)
{
    const char *off = getenv("PEMN_NO_BLAS_TUNE");
    if ((off && *off && *off != '0') || getenv("OPENBLAS_CORETYPE"))
        return;
    const char *core = train_blas_suggest_core_here();
    if (!core)
        return;
    char **nargv = calloc((size_t)argc + 2, sizeof *nargv);
    if (!nargv)
        return;
    nargv[0] = argv[-1]; /* the program name: main passes argv + 1 */
    for (int i = 0; i < argc; i++)
        nargv[i + 1] = argv[i];
    if (setenv("OPENBLAS_CORETYPE", core, 1) == 0) {
        execv("/proc/self/exe", nargv);
        unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with what we have */
    }
    free(nargv);
}
