/*
 * cli/pemn/cmd.h — the `pemn` subcommands. Each lives in its own cmd_<name>.c and has the
 * signature int cmd_<name>(int argc, char **argv), where argv[0] is the command name.
 * Exit codes (shared by all commands, documented in `pemn --help`):
 *   0 ok, 1 generic failure, 2 usage error, 3 corrupt input, 4 bad signature,
 *   5 untrusted signer, 6 not found, 7 network/HTTP failure, 8 digest mismatch,
 *   9 rollback refused, 10 auth refused, 11 conflict, 12 expired, 13 revoked.
 */
#ifndef PEMN_CLI_CMD_H
#define PEMN_CLI_CMD_H

#include <pemn/common.h>

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_CORRUPT = 3,
    CLI_EXIT_BADSIG = 4,
    CLI_EXIT_UNTRUSTED = 5,
    CLI_EXIT_NOTFOUND = 6,
    CLI_EXIT_NET = 7,
    CLI_EXIT_DIGEST = 8,
    CLI_EXIT_ROLLBACK = 9,
    CLI_EXIT_AUTH = 10,
    CLI_EXIT_CONFLICT = 11,
    CLI_EXIT_EXPIRED = 12, /* a root (or other signed metadata) has expired */
    CLI_EXIT_REVOKED = 13, /* a signer is revoked */
};

/* Maps a library result code to the exit codes above. */
int cli_exit_code(pemn_rc rc);

/* Commands not yet linked in are weak so each can land on its own; main() reports a
 * missing one as "not available in this build". */
#define CLI_CMD(name) int cmd_##name(int argc, char **argv) __attribute__((weak))
CLI_CMD(keygen);
CLI_CMD(pack);
CLI_CMD(inspect);
CLI_CMD(verify);
CLI_CMD(expand);
CLI_CMD(push);
CLI_CMD(ls);
CLI_CMD(tag);
CLI_CMD(pull);
CLI_CMD(agent);
CLI_CMD(train);
CLI_CMD(eval);
CLI_CMD(root);
CLI_CMD(sign);
#undef CLI_CMD

#endif
