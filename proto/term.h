/*
 * proto/term.h — text made safe for a terminal (internal; used by every CLI print of text
 * that came from a registry, a package or an error message).
 */
#ifndef PEMN_PROTO_TERM_H
#define PEMN_PROTO_TERM_H

#include <stddef.h>

/* Copies s into buf (cap bytes, NUL-terminated) with control characters (ESC, CR, LF, BEL,
 * DEL, the C1 range), bytes that are not valid UTF-8, and the backslash written as \xNN
 * (\\ for a backslash); valid UTF-8 text is kept as it is. Truncates at a whole character or
 * escape. NULL s is "". Returns buf ("" when cap is 0). Thread-safe. */
const char *proto_term_escape(const char *s, char *buf, size_t cap);

#endif
