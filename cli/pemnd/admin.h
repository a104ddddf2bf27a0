/*
 * cli/pemnd/admin.h — pemnd's administrative commands (token, key, audit). They open the
 * same database file as the daemon and work while it runs (SQLite WAL, busy timeout).
 * Exit codes: 0 ok, 1 failure, 2 usage, 6 not found, 11 already exists / conflict.
 */
#ifndef PEMN_CLI_PEMND_ADMIN_H
#define PEMN_CLI_PEMND_ADMIN_H

/* argv[0] is the command word ("token", "key", "audit"). */
int pemnd_admin(const char *db, int argc, char **argv);
/* `root add|list` (admin_root.c); st is open. */
struct store;
int pemnd_admin_root(struct store *st, int argc, char **argv);
/* Whether word names an admin command. */
int pemnd_is_admin_command(const char *word);

#endif
