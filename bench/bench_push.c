/*
 * bench/bench_push.c — push ingest of pemnd: packages/s and MB/s over HTTP (libcurl, one
 * keep-alive connection per client thread), signature verification included, compared with
 * the same packages opened and verified in-process (the floor any registry must pay).
 *
 *   bench_push URL TOKEN KEY.pub CLIENTS FILE...
 * Prints one line per measurement and "ratio" lines; exits non-zero on any failed push.
 */
#include <curl/curl.h>
#include <pemn/key.h>
#include <pemn/pkg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct file {
    char *path, name[256], version[256];
    uint8_t *data;
    size_t len;
};

static struct file *files;
static int n_files;
static const char *g_url, *g_token;
static int g_clients;
static int g_errors;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    return s * n;
}

static void *client(void *arg)
{
    int id = (int)(intptr_t)arg;
    CURL *c = curl_easy_init();
    char auth[256], url[1024];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", g_token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/vnd.pemn");
    h = curl_slist_append(h, "Expect:");
    for (int i = id; i < n_files; i += g_clients) {
        struct file *f = &files[i];
        snprintf(url, sizeof url, "%s/v1/models/%s/versions/%s", g_url, f->name, f->version);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->len);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        long code = 0;
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 201) {
            pthread_mutex_lock(&g_mu);
            if (g_errors++ < 5)
                fprintf(stderr, "push %s: %s, HTTP %ld\n", url, curl_easy_strerror(rc), code);
            pthread_mutex_unlock(&g_mu);
        }
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static int load(struct file *f)
{
    FILE *fp = fopen(f->path, "rb");
    if (!fp)
        return -1;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->data = malloc((size_t)n);
    f->len = (size_t)n;
    size_t got = fread(f->data, 1, (size_t)n, fp);
    fclose(fp);
    if (got != (size_t)n)
        return -1;
    pemn_pkg *p;
    struct pemn_pkg_info info;
    if (pemn_pkg_open_mem(f->data, f->len, 0, &p, NULL) || pemn_pkg_info(p, &info))
        return -1;
    snprintf(f->name, sizeof f->name, "%s", info.name);
    snprintf(f->version, sizeof f->version, "%s", info.version);
    pemn_pkg_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_push URL TOKEN KEY.pub CLIENTS FILE...\n");
        return 2;
    }
    g_url = argv[1];
    g_token = argv[2];
    char *end;
    long clients = strtol(argv[4], &end, 10);
    if (*end || clients < 1 || clients > 64) {
        fprintf(stderr, "bench_push: CLIENTS must be 1..64\n");
        return 2;
    }
    g_clients = (int)clients;
    n_files = argc - 5;
    files = calloc((size_t)n_files, sizeof *files);
    uint64_t bytes = 0;
    for (int i = 0; i < n_files; i++) {
        files[i].path = argv[5 + i];
        if (load(&files[i])) {
            fprintf(stderr, "bench_push: cannot load %s\n", files[i].path);
            return 1;
        }
        bytes += files[i].len;
    }
    /* in-process: open + verify (digest + Ed25519), the same work pemnd does per push */
    pemn_keyring *kr;
    if (pemn_keyring_new(&kr) || pemn_keyring_add_file(kr, argv[3], NULL))
        return 1;
    double t0 = now();
    for (int i = 0; i < n_files; i++) {
        pemn_pkg *p;
        if (pemn_pkg_open_mem(files[i].data, files[i].len, 0, &p, NULL) ||
            pemn_pkg_verify(p, kr, NULL)) {
            fprintf(stderr, "bench_push: %s does not verify\n", files[i].path);
            return 1;
        }
        pemn_pkg_free(p);
    }
    double t_verify = now() - t0;
    pemn_keyring_free(kr);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t th[64];
    t0 = now();
    for (int i = 0; i < g_clients; i++)
        pthread_create(&th[i], NULL, client, (void *)(intptr_t)i);
    for (int i = 0; i < g_clients; i++)
        pthread_join(th[i], NULL);
    double t_push = now() - t0;
    curl_global_cleanup();

    double mb = (double)bytes / 1e6;
    printf("packages: %d, %.1f KB average\n", n_files, (double)bytes / n_files / 1e3);
    printf("in-process open+verify: %.0f packages/s, %.1f MB/s\n", n_files / t_verify,
           mb / t_verify);
    printf("pemnd push (%d client%s): %.0f packages/s, %.1f MB/s\n", g_clients,
           g_clients > 1 ? "s" : "", n_files / t_push, mb / t_push);
    printf("ratio push/in-process-verify: %.3f\n", t_verify / t_push);
    for (int i = 0; i < n_files; i++)
        free(files[i].data);
    free(files);
    if (g_errors)
        fprintf(stderr, "bench_push: %d failed pushes\n", g_errors);
    return g_errors ? 1 : 0;
}
