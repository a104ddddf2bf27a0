/*
 * proto/trust_int.h — internals shared by the trust files of proto/ (envelopes, roots).
 */
#ifndef PEMN_PROTO_TRUST_INT_H
#define PEMN_PROTO_TRUST_INT_H

#include <pemn/trust.h>
#include <jansson.h>

/* json_loadb with duplicate keys rejected and the size bounded; NULL with err filled. */
json_t *proto_json_load(const void *data, size_t len, size_t flags, struct pemn_err *err);
/* Canonical text of v (reals refused); *out malloc'ed. */
pemn_rc proto_json_dump_canonical(const json_t *v, char **out, size_t *out_len,
                                  struct pemn_err *err);
/* A new unsigned envelope around signed_obj (a reference is taken). */
pemn_rc proto_envelope_from_json(json_t *signed_obj, pemn_envelope **out, struct pemn_err *err);
/* The signed object (borrowed). */
const json_t *proto_envelope_json(const pemn_envelope *env);

#endif
