/*
 * proto/term.c — the one function that makes text from a registry (or a package) safe to
 * print on a terminal: docs/SECURITY.md, item 11.
 */
#include "proto/term.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one (or a C1 control,
 * U+0080..U+009F, which terminals also act on). */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (!n || (p[0] >= 0xf8))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
        return 0; /* C1 control */
    if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
        return 0; /* overlong, surrogate */
    if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

const char *proto_term_escape(const char *s, char *buf, size_t cap)
{
    if (!cap)
        return "";
    if (!s)
        s = "";
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        char tmp[8];
        const char *out;
        size_t olen;
        if (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '\\') {
            out = (const char *)p;
            olen = 1;
        } else if (n > 1) {
            out = (const char *)p;
            olen = n;
        } else {
            /* control characters (ESC, CR, BEL, DEL, C1...), invalid bytes and the backslash
             * itself are written as \xNN (\\ for a backslash): never acted on by a terminal */
            if (*p == '\\')
                snprintf(tmp, sizeof tmp, "\\\\");
            else
                snprintf(tmp, sizeof tmp, "\\x%02x", *p);
            out = tmp;
            olen = strlen(tmp);
            n = 1;
        }
        if (o + olen >= cap)
            break; /* truncated, never cut inside an escape */
        memcpy(buf + o, out, olen);
        o += olen;
        p += n;
    }
    buf[o] = '\0';
    return buf;
}
