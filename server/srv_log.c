/*
 * server/srv_log.c — structured logs on stderr: one line per event, text or JSON.
 * Each line is formatted into a local buffer and written with one write(2), so lines from
 * different threads never interleave.
 */
#include "server/srv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int g_level = SRV_LOG_INFO;
static int g_format = SRV_LOG_TEXT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void srv_log_setup(int level, int format)
{
    g_level = level;
    g_format = format;
}

bool srv_log_enabled(int level)
{
    return level >= g_level;
}

static size_t stamp(char *buf, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    return n + (m > 0 ? (size_t)m : 0);
}

/* Appends s as the inside of a JSON string: quotes, backslashes, control characters and
 * bytes >= 0x80 escaped, so a hostile path can never break a log line. */
static size_t json_escape(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", *p);
        } else {
            dst[o++] = (char)*p;
        }
    }
    dst[o] = '\0';
    return o;
}

/* Text lines: printable ASCII only. */
static void text_safe(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < cap; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", *p);
        else
            dst[o++] = (char)*p;
    }
    dst[o] = '\0';
}

static void emit(char *line, size_t n, size_t cap)
{
    if (n >= cap - 1)
        n = cap - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void srv_log(int level, const char *fmt, ...)
{
    if (level < g_level)
        return;
    char msg[1024], line[2600], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stamp(ts, sizeof ts);
    int n;
    if (g_format == SRV_LOG_JSON) {
        char esc[2200];
        json_escape(esc, sizeof esc, msg);
        n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}", ts,
                     level_names[level & 3], esc);
    } else {
        n = snprintf(line, sizeof line, "%s %-5s %s", ts, level_names[level & 3], msg);
    }
    if (n > 0)
        emit(line, (size_t)n, sizeof line);
}

void srv_log_request(const char *method, const char *path, unsigned status, uint64_t bytes,
                     double seconds, const char *actor)
{
    if (SRV_LOG_INFO < g_level)
        return;
    char line[3200], ts[40], p[2200], m[64];
    stamp(ts, sizeof ts);
    int n;
    if (g_format == SRV_LOG_JSON) {
        json_escape(p, sizeof p, path ? path : "");
        json_escape(m, sizeof m, method ? method : "");
        char a[300];
        json_escape(a, sizeof a, actor ? actor : "");
        n = snprintf(line, sizeof line,
                     "{\"ts\":\"%s\",\"level\":\"info\",\"method\":\"%s\",\"path\":\"%s\","
                     "\"status\":%u,\"bytes\":%llu,\"duration_ms\":%.3f,\"actor\":\"%s\"}",
                     ts, m, p, status, (unsigned long long)bytes, seconds * 1e3, a);
    } else {
        text_safe(p, sizeof p, path ? path : "");
        text_safe(m, sizeof m, method ? method : "");
        n = snprintf(line, sizeof line, "%s info  %s %s %u %lluB %.3fms%s%s", ts, m, p, status,
                     (unsigned long long)bytes, seconds * 1e3, actor && *actor ? " actor=" : "",
                     actor && *actor ? actor : "");
    }
    if (n > 0)
        emit(line, (size_t)n, sizeof line);
}
