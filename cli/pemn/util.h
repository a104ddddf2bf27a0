/*
 * cli/pemn/util.h — helpers shared by the `pemn` subcommands: error reporting with exit
 * codes, trusted key loading, sizes, number parsing, atomic file output, JSON printing.
 */
#ifndef PEMN_CLI_UTIL_H
#define PEMN_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <pemn/common.h>

#include "proto/term.h"
#include <pemn/key.h>

/* Prints "pemn CMD: <message> (<ECODE>)" to stderr (the message of e when it has one,
 * else pemn_strerror(rc)) and returns cli_exit_code(rc). */
int cli_fail(const char *cmd, pemn_rc rc, const struct pemn_err *e);

/* Text from a registry, a package or an error message, made safe for a terminal
 * (proto_term_escape) into a buffer that lives until the end of the enclosing block: use it
 * directly in a printf argument list. */
#define CLI_ESC(s) proto_term_escape((s), (char[1024]){0}, 1024)
/* Prints "pemn CMD: <message>" and a pointer to --help on stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Loads each .pub file into a new keyring (*out). */
pemn_rc cli_load_trust(char *const *paths, size_t n, pemn_keyring **out, struct pemn_err *e);
/* The keyring of a pull: the n --trust files given, else the colon-separated files of
 * $PEMN_TRUST (at most max in all); none at all is a usage error, since a package is
 * installed only when a trusted key signed it. Returns a CLI exit code (0: *out is set). */
int cli_pull_trust(const char *cmd, char *const *paths, size_t n, size_t max, pemn_keyring **out);

/* "1.5 KiB", "12 B", ... into buf. Returns buf. */
const char *cli_human_size(uint64_t bytes, char *buf, size_t cap);
/* "[16, 72]" into buf. Returns buf. */
const char *cli_shape(uint32_t ndim, const uint64_t *shape, char *buf, size_t cap);

/* The end of an option loop: -h/--help prints usage on stdout and returns CLI_EXIT_OK; any
 * other (unknown) option prints it on stderr and returns CLI_EXIT_USAGE. */
int cli_help_or_usage(int ch, void (*usage)(FILE *));

/* Strict parsers: the whole string must be a number in range. 0 ok, -1 otherwise. */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_double(const char *s, double *out);
/* "auto" -> 0, "bits" -> PEMN_MASK_BITS (pemn_builder_set_mask_encoding); -1 otherwise. */
int cli_parse_mask_encoding(const char *s, uint32_t *out);
/* Exactly 2*n hex digits into out. 0 ok, -1 otherwise. */
int cli_parse_hex(const char *s, uint8_t *out, size_t n);

/* Writes buf to path atomically: temporary file beside it, fsync, rename. */
pemn_rc cli_write_file(const char *path, const void *buf, size_t len, struct pemn_err *e);

/* Prints a JSON value (steals the reference) on stdout followed by a newline. Returns
 * CLI_EXIT_OK, or CLI_EXIT_FAIL when encoding failed. */
int cli_print_json(const char *cmd, json_t *v);

#endif
