/*
 * libFuzzer target: mask encoding 2 blocks (proto_maskcode_decode), as read from packages.
 * Input: u16 little-endian output length in mask bytes, then the coded block. A block that
 * decodes must re-encode to a block that decodes to the same bytes; the decoder must never
 * read or write outside its buffers (sanitizers) and must fail only with PEMN_ECORRUPT.
 * The checkpointing pass a reader makes at open (proto_maskcode_scan) must accept exactly
 * the blocks the decoder accepts, and decoding from its checkpoints (as range expansion
 * does) must give the same bytes as the whole decode.
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
    uint64_t nc = proto_maskcode_n_ckpt(nb), kept;
    uint8_t last;
    struct proto_maskcode_ckpt *ck = malloc((nc ? nc : 1) * sizeof *ck);
    if (!ck)
        abort();
    if (proto_maskcode_scan(in, clen, nb, ck, &kept, &last, NULL) != rc)
        abort();
    if (rc == PEMN_OK) {
        uint64_t k = 0;
        for (uint64_t i = 0; i < nb; i++)
            k += (uint64_t)__builtin_popcount(out[i]);
        if (k != kept || last != (nb ? out[nb - 1] : 0))
            abort();
        /* every checkpoint, then a tail from an unaligned byte */
        struct proto_maskdec *d;
        uint8_t part[64];
        if (proto_maskdec_open(in, clen, &d, NULL) != PEMN_OK)
            abort();
        for (uint64_t c = 0; c < nc; c++) {
            uint64_t at = c * PROTO_MASKCODE_CKPT, m = nb - at < 64 ? nb - at : 64;
            proto_maskdec_seek(d, &ck[c], at);
            if (proto_maskdec_next(d, part, m, NULL) != PEMN_OK || memcmp(part, out + at, m))
                abort();
        }
        if (nb > 3) {
            uint64_t from = nb / 3, m = nb - from < 64 ? nb - from : 64;
            uint64_t c = from / PROTO_MASKCODE_CKPT;
            proto_maskdec_seek(d, &ck[c], c * PROTO_MASKCODE_CKPT);
            if (proto_maskdec_next(d, NULL, from - c * PROTO_MASKCODE_CKPT, NULL) != PEMN_OK ||
                proto_maskdec_next(d, part, m, NULL) != PEMN_OK || memcmp(part, out + from, m))
                abort();
        }
        proto_maskdec_free(d);
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
    free(ck);
    free(in);
    free(out);
    return 0;
}
