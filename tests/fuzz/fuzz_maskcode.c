/*
 * libFuzzer target: mask encoding 2 blocks (proto_maskcode_decode), as read from packages.
 * Input: u16 little-endian output length in mask bytes, then the coded block. A block that
 * decodes must re-encode to a block that decodes to the same bytes; the decoder must never
 * read or write outside its buffers (sanitizers) and must fail only with PEMN_ECORRUPT.
 */
#include "proto/err.h"
#include "proto/maskcode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t nb = proto_le16(data);
    size_t clen = size - 2;
    uint8_t *in = malloc(clen ? clen : 1), *out = malloc(nb ? nb : 1);
    if (!in || !out) {
        free(in);
        free(out);
        return 0;
    }
    if (clen)
        memcpy(in, data + 2, clen);
    struct pemn_err e;
    pemn_rc rc = proto_maskcode_decode(in, clen, out, nb, &e);
    if (rc == PEMN_OK) {
        uint8_t *re, *back = malloc(nb ? nb : 1);
        uint64_t rlen;
        if (!back || proto_maskcode_encode(out, nb, 0, &re, &rlen, NULL) != PEMN_OK)
            abort();
        if (proto_maskcode_decode(re, rlen, back, nb, NULL) != PEMN_OK ||
            memcmp(back, out, nb) != 0)
            abort();
        free(re);
        free(back);
    } else if (rc != PEMN_ECORRUPT || e.offset > clen) {
        abort();
    }
    free(in);
    free(out);
    return 0;
}
