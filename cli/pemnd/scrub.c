/*
 * cli/pemnd/scrub.c — `pemnd --db FILE scrub [--rate BYTES/s]`: hashes every stored blob and
 * reports each one whose bytes do not match its digest. Works while the daemon runs.
 * Exit: 0 every blob good, 3 bad or unreadable blobs found, 1 the scrub failed, 2 usage.
 */
#include "cli/pemnd/admin.h"

#include "storage/store_verify.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int report(void *ctx, const char *digest, uint64_t size, pemn_rc rc, const char *msg)
{
    printf("%s %s %llu bytes: %s\n", rc == PEMN_EDIGEST ? "BAD" : "UNREADABLE", digest,
           (unsigned long long)size, msg);
    fflush(stdout);
    return 0;
}

/* "16M", "500K", "1048576": bytes; -1 when malformed. */
static int parse_rate(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (errno || *end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int pemnd_scrub(struct store *st, int argc, char **argv)
{
    uint64_t rate = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: pemnd --db FILE scrub [--rate BYTES_PER_SECOND (K/M/G)]\n"
                   "Hashes every stored blob and prints 'BAD <digest> ...' for each one whose\n"
                   "bytes do not match its digest. Exit: 0 all good, 3 bad or unreadable blobs\n"
                   "found, 1 the scrub failed, 2 usage. Safe while pemnd runs.\n");
            return 0;
        }
        const char *v = NULL;
        if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            v = argv[++i];
        else if (strncmp(argv[i], "--rate=", 7) == 0)
            v = argv[i] + 7;
        if (!v || parse_rate(v, &rate)) {
            fprintf(stderr, "usage: pemnd --db FILE scrub [--rate BYTES_PER_SECOND (K/M/G)]\n");
            return 2;
        }
    }
    struct store_scrub_stats sx;
    struct pemn_err e = {0};
    pemn_rc rc = store_scrub(st, rate, NULL, report, NULL, &sx, &e);
    if (rc) {
        fprintf(stderr, "pemnd: scrub: %s\n", e.msg[0] ? e.msg : pemn_strerror(rc));
        return 1;
    }
    printf("scrubbed %llu blobs, %llu bytes: %llu bad, %llu unreadable\n",
           (unsigned long long)sx.blobs, (unsigned long long)sx.bytes, (unsigned long long)sx.bad,
           (unsigned long long)sx.unreadable);
    return sx.bad || sx.unreadable ? 3 : 0;
}
