/*
 * libFuzzer target: OCI manifests as pushed to pemnd's /v2 (proto_oci_parse). Whatever
 * parses must be internally consistent: canonical lower-case digests, at most the layer limit,
 * the PEMN layer index in range and of the PEMN media type; and the deterministic manifest
 * of a package always parses back with its layer and config.
 */
#include "proto/oci.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_digest(const char *d)
{
    if (strlen(d) != 71 || strncmp(d, "sha256:", 7) != 0)
        abort();
    for (int i = 7; i < 71; i++)
        if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = calloc(size ? size : 1, 1); /* exact size: over-reads are reports */
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    struct proto_oci_manifest m;
    if (proto_oci_parse(copy, size, &m, NULL) == PEMN_OK) {
        if (m.n_layers > PROTO_OCI_LAYERS_MAX || m.pemn_layer >= (int)m.n_layers)
            abort();
        check_digest(m.config.digest);
        for (size_t i = 0; i < m.n_layers; i++)
            check_digest(m.layers[i].digest);
        if (m.pemn_layer >= 0 && strcmp(m.layers[m.pemn_layer].media_type, PROTO_OCI_LAYER_TYPE))
            abort();
    }
    /* the input's first bytes as a package description: build, parse back */
    char name[9] = "n", version[9] = "v";
    for (size_t i = 0; i < 8 && i < size; i++)
        name[i] = (char)('a' + copy[i] % 26);
    struct proto_oci_desc d = {.name = name,
                               .version = version,
                               .strategy = "rp",
                               .release = size,
                               .created = (int64_t)size * 1000,
                               .size = size};
    proto_oci_digest(copy, size, d.digest);
    memcpy(d.signer, "0123456789abcdef", 17);
    struct proto_oci_artifact a;
    if (proto_oci_build(&d, &a, NULL) == PEMN_OK) {
        if (proto_oci_parse(a.manifest, a.manifest_len, &m, NULL) != PEMN_OK || m.pemn_layer != 0 ||
            strcmp(m.layers[0].digest, d.digest) != 0 ||
            strcmp(m.config.digest, a.config_digest) != 0 || m.config.size != a.config_len)
            abort();
        proto_oci_artifact_clear(&a);
    }
    free(copy);
    return 0;
}
