/*
 * libFuzzer target: the text form of public keys (pemn_pubkey_parse), which is read from
 * .pub files and from HTTP requests. A successful parse must format back to the same key.
 */
#include <pemn/key.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size private copy: a read past the end is a sanitizer report */
    char *txt = malloc(size ? size : 1);
    if (!txt)
        return 0;
    if (size)
        memcpy(txt, data, size);
    struct pemn_pubkey pk, back;
    struct pemn_err e;
    if (pemn_pubkey_parse(txt, size, &pk, &e) == PEMN_OK) {
        char out[PEMN_PUBKEY_TEXT_MAX];
        pemn_pubkey_format(&pk, out);
        if (pemn_pubkey_parse(out, strlen(out), &back, NULL) != PEMN_OK ||
            memcmp(pk.bytes, back.bytes, sizeof pk.bytes) != 0)
            abort();
        char id[PEMN_KEYID_TEXT_MAX];
        pemn_key_id_hex(&pk, id);
        if (strlen(id) != 16)
            abort();
    } else if (e.rc != PEMN_EINVAL) {
        abort();
    }
    free(txt);
    return 0;
}
