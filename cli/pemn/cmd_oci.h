/*
 * cli/pemn/cmd_oci.h — `pemn push FILE oci://...` and `pemn pull oci://...` (OCI registries).
 */
#ifndef PEMN_CLI_CMD_OCI_H
#define PEMN_CLI_CMD_OCI_H

#include <stdbool.h>

/* Whether an argument is an oci:// reference (the push/pull commands then go here). */
bool cli_oci_wanted(int argc, char **argv);
int cli_oci_push(int argc, char **argv);
int cli_oci_pull(int argc, char **argv);

#endif
