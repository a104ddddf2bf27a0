/*
 * cli/pemn/blas_tune.h — re-execute `pemn` once with OPENBLAS_CORETYPE set when OpenBLAS
 * chose slow kernels for this CPU (train/blas.h). Used by `pemn train` and `pemn eval` so
 * both multiply with the same kernels. PEMN_NO_BLAS_TUNE=1, or OPENBLAS_CORETYPE already
 * set, leaves everything as it is.
 */
#ifndef PEMN_CLI_BLAS_TUNE_H
#define PEMN_CLI_BLAS_TUNE_H

/* argv is the command's argv (argv[0] = command name; the program's argv is argv - 1).
 * Returns only when no re-execution happens (or it failed). */
void cli_blas_tune(int argc, char **argv);

#endif
