/*
 * Standalone driver for libFuzzer targets, built with gcc: replays every file of the
 * corpus folders (or single files) given on the command line through
 * LLVMFuzzerTestOneInput. A crash or sanitizer report fails the run; otherwise prints
 * "replay: N inputs" and exits 0.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            if (cap > ((size_t)64 << 20)) {
                fprintf(stderr, "replay: %s larger than 64 MiB\n", path);
                free(buf);
                fclose(f);
                return -1;
            }
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    long count = 0;
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            fprintf(stderr, "replay: no such path %s\n", argv[a]);
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[a]) != 0)
                return 2;
            count++;
            continue;
        }
        DIR *d = opendir(argv[a]);
        if (!d)
            return 2;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            int n = snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
            if (n < 0 || (size_t)n >= sizeof path)
                continue;
            if (replay_file(path) != 0) {
                closedir(d);
                return 2;
            }
            count++;
        }
        closedir(d);
    }
    printf("replay: %ld inputs\n", count);
    return 0;
}
