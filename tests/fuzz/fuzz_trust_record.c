/*
 * libFuzzer target: the agent's trust record, DIR/trust.json (client/agent_trust_file.c),
 * which guards rollback protection and so must never be misread. Invariants: a record that
 * loads saves and loads again to the same content; a damaged one is PEMN_ECORRUPT (never a
 * silent reset to an empty record); nothing else is returned.
 */
#include "client/agent_trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];

static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/trust.json", g_dir);
    unlink(p);
    rmdir(g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/pemn-fuzz-trust-XXXXXX");
        if (!mkdtemp(g_dir))
            abort();
        atexit(cleanup);
    }
    if (agent_trust_write(g_dir, "trust.json", data, size, NULL) != PEMN_OK)
        abort();
    struct agent_trust_rec *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b)
        abort();
    bool found = false;
    pemn_rc rc = agent_trust_rec_load(g_dir, a, &found, NULL);
    if (rc != PEMN_OK && rc != PEMN_ECORRUPT && rc != PEMN_ENOMEM)
        abort();
    if (rc == PEMN_OK) {
        if (!found)
            abort(); /* the file is there */
        if (agent_trust_rec_save(g_dir, a, NULL) != PEMN_OK ||
            agent_trust_rec_load(g_dir, b, &found, NULL) != PEMN_OK || !found)
            abort();
        if (strcmp(a->model, b->model) || a->meta_version != b->meta_version ||
            strcmp(a->meta_hash, b->meta_hash) || a->meta_expires != b->meta_expires ||
            strcmp(a->meta_keys, b->meta_keys) || a->root_version != b->root_version ||
            a->n_rel != b->n_rel)
            abort();
        for (size_t i = 0; i < a->n_rel; i++)
            if (agent_trust_rec_release(b, a->rel[i].model) != a->rel[i].release)
                abort();
    } else if (found) {
        abort();
    }
    free(a);
    free(b);
    return 0;
}
