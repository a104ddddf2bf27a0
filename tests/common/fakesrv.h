/*
 * tests/common/fakesrv.h — a small libmicrohttpd server for client fault-injection tests.
 *
 * Binds 127.0.0.1 on a free port (port 0, read back). Serves one blob at a path with
 * Range support (bytes=a-, a-b, -n; 206 + Content-Range; 416), canned JSON routes with
 * ETag/If-None-Match, and records uploads. Faults, each set before a request:
 *   cut_at      close the connection (abruptly) when the body reaches these absolute
 *               offsets, each offset once
 *   ignore_range  always answer 200 with the whole blob
 *   bad_range   answer the next n Range requests with 206 whose Content-Range starts at 0
 *   flip        XOR byte `offset` of the body with 0xff on the wire
 *   fail        answer the next n requests with `status` (+ Retry-After when >= 0)
 *   stall       before sending body offset X, sleep ms (once)
 *   trickle     hostile registry: every body chunk is at most `bytes`, after a `ms` pause
 *   unknown_size  hostile registry: the blob goes out chunked, without Content-Length
 * Counters: body bytes handed to MHD, requests, and the Range starts seen.
 * Thread-safety: configuration and counters are behind a mutex.
 */
#ifndef PEMN_TESTS_FAKESRV_H
#define PEMN_TESTS_FAKESRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fakesrv fakesrv;

fakesrv *fakesrv_start(void); /* NULL on failure */
void fakesrv_stop(fakesrv *s);
uint16_t fakesrv_port(const fakesrv *s);
const char *fakesrv_url(const fakesrv *s); /* "http://127.0.0.1:<port>" */

/* The blob served at path (GET/HEAD), copied; ETag "etag" when etag not NULL. */
void fakesrv_set_blob(fakesrv *s, const char *path, const void *data, size_t len, const char *etag);
/* A canned answer for method + path (replaces an earlier one). etag may be NULL. */
void fakesrv_route(fakesrv *s, const char *method, const char *path, int status, const char *body,
                   const char *etag);
/* The same with a binary body of len bytes. */
void fakesrv_route_bytes(fakesrv *s, const char *method, const char *path, int status,
                         const void *body, size_t len, const char *etag);

void fakesrv_cut_at(fakesrv *s, const uint64_t *offsets, size_t n);
void fakesrv_ignore_range(fakesrv *s, bool on);
void fakesrv_bad_range(fakesrv *s, int n);
void fakesrv_flip(fakesrv *s, int64_t offset); /* -1: none */
void fakesrv_fail(fakesrv *s, int status, int n, int retry_after_s);
void fakesrv_stall(fakesrv *s, uint64_t offset, unsigned ms);
void fakesrv_trickle(fakesrv *s, size_t bytes, unsigned ms); /* bytes 0: off */
void fakesrv_unknown_size(fakesrv *s, bool on);

struct fakesrv_stats {
    uint64_t bytes_sent; /* blob body bytes produced */
    unsigned requests;
    unsigned range_requests;
    uint64_t range_starts[64];
    unsigned n_range_starts;
    char last_auth[256];          /* Authorization header of the last request */
    char last_if_none_match[256]; /* If-None-Match of the last request */
    char last_method[16];
    char last_path[512];
    size_t upload_len;   /* body of the last PUT */
    char put_log[16384]; /* every PUT body since the last reset, one per line (truncated) */
    uint8_t upload_sha[32];
};
void fakesrv_get_stats(fakesrv *s, struct fakesrv_stats *out);
void fakesrv_reset_stats(fakesrv *s);

#endif
