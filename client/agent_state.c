/*
 * client/agent_state.c — DIR/state.json: what the agent has installed.
 *
 *   {"format": 1,
 *    "current":  {"model": "net", "version": "1.4.0", "release": 7,
 *                 "digest": "sha256:<hex>", "size": 12345, "installed": 1700000000},
 *    "previous": {...} | null,
 *    "etag": "\"<hex>\""}      the desired state last acted on ("" = ask afresh)
 *
 * The file is a record, not the truth: recovery (client/agent.c) re-derives it from what
 * DIR/current verifiably holds.
 */
#include "client/agent_int.h"

#include "proto/err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static bool copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= cap)
        return false;
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

static bool version_from_json(json_t *o, struct pemn_agent_version *v)
{
    memset(v, 0, sizeof *v);
    if (!json_is_object(o))
        return false;
    json_t *rel = json_object_get(o, "release"), *size = json_object_get(o, "size");
    json_t *inst = json_object_get(o, "installed");
    if (!copy_str(v->model, sizeof v->model, json_object_get(o, "model")) ||
        !copy_str(v->version, sizeof v->version, json_object_get(o, "version")) ||
        !copy_str(v->digest, sizeof v->digest, json_object_get(o, "digest")) ||
        !json_is_integer(rel) || json_integer_value(rel) < 0)
        return false;
    uint8_t d[PEMN_DIGEST_BYTES];
    if (pemn_digest_parse(v->digest, d) != PEMN_OK)
        return false;
    v->release = (uint64_t)json_integer_value(rel);
    v->size = json_is_integer(size) && json_integer_value(size) > 0
                  ? (uint64_t)json_integer_value(size)
                  : 0;
    v->installed = json_is_integer(inst) ? (int64_t)json_integer_value(inst) : 0;
    return true;
}

void agent_state_load(const struct pemn_agent *a, struct pemn_agent_state *st, char *etag,
                      size_t etag_cap)
{
    memset(st, 0, sizeof *st);
    etag[0] = 0;
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    if (agent_path(path, NULL, "%s/state.json", a->dir) ||
        agent_read_file(path, AGENT_STATE_MAX, &buf, &len, NULL))
        return;
    json_t *root = json_loadb((const char *)buf, len, 0, NULL);
    free(buf);
    if (!root)
        return;
    if (json_integer_value(json_object_get(root, "format")) == 1) {
        st->has_current = version_from_json(json_object_get(root, "current"), &st->current);
        st->has_previous =
            st->has_current && version_from_json(json_object_get(root, "previous"), &st->previous);
        if (!copy_str(etag, etag_cap, json_object_get(root, "etag")))
            etag[0] = 0;
    }
    json_decref(root);
}

static json_t *version_to_json(const struct pemn_agent_version *v)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "model", v->model, "version", v->version,
                     "release", (json_int_t)v->release, "digest", v->digest, "size",
                     (json_int_t)v->size, "installed", (json_int_t)v->installed);
}

pemn_rc agent_state_save(const struct pemn_agent *a, const struct pemn_agent_state *st,
                         struct pemn_err *err)
{
    json_t *root = json_object();
    json_t *cur = st->has_current ? version_to_json(&st->current) : json_null();
    json_t *prev =
        st->has_current && st->has_previous ? version_to_json(&st->previous) : json_null();
    if (!root || !cur || !prev || json_object_set_new(root, "format", json_integer(1)) ||
        json_object_set_new(root, "current", cur) || json_object_set_new(root, "previous", prev) ||
        json_object_set_new(root, "etag", json_string(a->etag_disk))) {
        json_decref(root);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (state.json)");
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (state.json)");
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (state.json)");
    }
    withnl[n] = '\n';
    withnl[n + 1] = 0;
    pemn_rc rc = agent_write_atomic(a->dir, "state.json", withnl, n + 1, err);
    free(withnl);
    return rc;
}
