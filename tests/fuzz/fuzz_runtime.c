// fuzz_runtime.c — libFuzzer harness for what fuzz_loaders.c does not reach.
//
// The first byte of an input picks the target (its value mod 4); the rest is the data:
//   0 gzip-compressed here, then nn_load_idx: the IDX parser on decompressed contents,
//     past everything gzip itself checks (fuzz_loaders.c feeds raw bytes, which gzip
//     mostly refuses before the IDX header is read)
//   1 nn_load_weights of the bytes as a file into a small model (Dense 4→3 and a
//     BatchNorm's statistics): names, shapes, dtypes, offsets against the model's own
//   2 nn_load_weights of a valid file for that model with the bytes as (offset, value)
//     patches: mutations that keep most of the structure
//   3 an NPY file (the bytes) loaded, then prepared with a one-hot count and a scale
//     from its first bytes and gathered in batches of rows the bytes pick: the batch
//     gathering a training step does, on whatever data a loader accepted
// Errors are captured, not printed; the contract is 0 or -1 and nothing out of bounds.
//
// Build and run: tests/fuzz/run.sh SECONDS runtime
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char path[64], valid_path[64];
static float kernel[12], bias[3], mean[3];
static nn_param params[3] = {
    {"dense.kernel", 2, {4, 3}, 12, kernel, true},
    {"dense.bias", 1, {3}, 3, bias, true},
    {"batch_normalization.moving_mean", 1, {3}, 3, mean, false},
};
static nn_model model = {.name = "fuzz", .n_params = 3, .params = params};
static uint8_t *valid;
static size_t valid_size;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(path, sizeof path, "/dev/shm/nnc-fuzz-runtime-%d", (int)getpid());
  snprintf(valid_path, sizeof valid_path, "/dev/shm/nnc-fuzz-runtime-valid-%d", (int)getpid());
  nn_capture_errors(true);
  for (int i = 0; i < 12; i++) kernel[i] = (float)i / 7;
  if (nn_save_weights(&model, valid_path) != 0) abort();
  FILE *f = fopen(valid_path, "rb");
  if (!f) abort();
  valid = malloc(1 << 16);
  valid_size = fread(valid, 1, 1 << 16, f);
  fclose(f);
  unlink(valid_path);
  return 0;
}

static void write_file(const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  size_t n = size ? fwrite(data, 1, size, f) : 0;
  if (fclose(f) != 0 || n != size) abort();  // /dev/shm full: not the parser's fault
}

static void write_gzip(const uint8_t *data, size_t size) {
  gzFile g = gzopen(path, "wb1");
  if (!g) abort();
  if (size && gzwrite(g, data, (unsigned)size) != (int)size) abort();
  if (gzclose(g) != Z_OK) abort();
}

static void check(int rc) {
  if (rc != 0 && rc != -1) abort();
}

static void gather(const uint8_t *data, size_t size) {
  nn_data d;
  write_file(data, size);
  int rc = nn_load_npy(&d, path);
  check(rc);
  if (rc != 0) return;
  // One-hot count and scale from the first bytes; the per-sample shape as loaded.
  int64_t onehot = size > 0 ? data[size - 1] % 12 : 0;
  double scale = size > 1 ? 1.0 / (1 + data[size - 2]) : 1;
  if (onehot && d.row_size != 1) onehot = 0;   // to_categorical takes one label per row
  rc = nn_data_prepare(&d, d.ndim, d.shape, scale, onehot, "fuzz");
  check(rc);
  int64_t width = nn_data_width(&d);
  if (rc == 0 && d.rows > 0 && width > 0 && width <= (1 << 20)) {
    int64_t idx[16];
    int n = 0;
    for (size_t i = 0; i < size && n < 16; i += 7) idx[n++] = (int64_t)(data[i] * 2654435761u % (uint64_t)d.rows);
    float *out = malloc(sizeof(float) * (size_t)(n * width + 1));
    if (!out) abort();
    check(nn_data_gather(&d, idx, n, out));
    free(out);
  }
  nn_data_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  int target = data[0] % 4;
  data++, size--;
  switch (target) {
  case 0: {
    write_gzip(data, size);
    nn_data d;
    int rc = nn_load_idx(&d, path);
    check(rc);
    if (rc == 0) nn_data_free(&d);
    break;
  }
  case 1:
    write_file(data, size);
    check(nn_load_weights(&model, path));
    break;
  case 2: {
    uint8_t *file = malloc(valid_size);
    if (!file) abort();
    memcpy(file, valid, valid_size);
    for (size_t i = 0; i + 2 < size; i += 3) file[((size_t)data[i] << 8 | data[i + 1]) % valid_size] = data[i + 2];
    // A patch may also cut the file short.
    size_t len = size % 5 == 4 && size > 0 ? valid_size * data[size - 1] / 256 : valid_size;
    write_file(file, len);
    free(file);
    check(nn_load_weights(&model, path));
    break;
  }
  default:
    gather(data, size);
    break;
  }
  return 0;
}
