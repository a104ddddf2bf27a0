/*
 * train/idx.h — IDX datasets (the MNIST / Fashion-MNIST file format), gzip or plain.
 *
 * IDX layout (all integers big-endian):
 *   bytes 0-1  zero
 *   byte  2    element type: 0x08 = unsigned byte (the only type accepted here)
 *   byte  3    number of dimensions d (images: 3, labels: 1)
 *   d x u32    dimension sizes
 *   then the product of the sizes in bytes, and nothing after it.
 * Files are read through zlib's gzread, which also reads uncompressed files as they are.
 * Every size is checked (product overflow, a maximum, exact length, no trailing bytes)
 * before anything is allocated from it.
 *
 * Thread-safety: pure functions on caller-owned structs.
 */
#ifndef PEMN_TRAIN_IDX_H
#define PEMN_TRAIN_IDX_H

#include <pemn/common.h>

#define TRAIN_IDX_MAX_BYTES (1ull << 32) /* largest accepted payload (4 GiB) */
#define TRAIN_MAX_CLASSES 256

/* A labelled image set: n images of rows x cols bytes, n labels in [0, n_classes). */
struct train_data {
    uint32_t n;
    uint32_t rows, cols;
    uint32_t dim;       /* rows * cols */
    uint32_t n_classes; /* 1 + the largest label */
    uint8_t *images;    /* n * dim bytes, owned */
    uint8_t *labels;    /* n bytes, owned */
};

/* Reads one IDX file of unsigned bytes with `want_ndim` dimensions. *data (malloc'ed, owned
 * by the caller) receives the payload, dims[] the sizes. PEMN_EIO when the file cannot be
 * opened, PEMN_ECORRUPT for a damaged gzip stream, bad magic, wrong type or dimension
 * count, a truncated payload or trailing bytes; PEMN_ETOOBIG past TRAIN_IDX_MAX_BYTES. */
pemn_rc train_idx_read(const char *path, uint32_t want_ndim, uint32_t *dims, uint8_t **data,
                       struct pemn_err *err);

/* Loads an image file (3 dims) and a label file (1 dim) and checks they agree. */
pemn_rc train_data_load(const char *images_path, const char *labels_path, struct train_data *out,
                        struct pemn_err *err);

/* Loads split "train" or "t10k" from a folder holding <split>-images-idx3-ubyte[.gz] and
 * <split>-labels-idx1-ubyte[.gz]. PEMN_ENOTFOUND (naming the file) when absent. */
pemn_rc train_data_load_dir(const char *dir, const char *split, struct train_data *out,
                            struct pemn_err *err);

/* Keeps only the first n samples (no-op when n >= out->n or n == 0). */
void train_data_truncate(struct train_data *d, uint32_t n);

void train_data_free(struct train_data *d); /* zeroes the struct; safe twice */

/* The Debian dataset-fashion-mnist location. */
#define TRAIN_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

#endif
