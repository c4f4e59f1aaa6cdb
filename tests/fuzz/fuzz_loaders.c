// fuzz_loaders.c — libFuzzer harness for the runtime's file parsers.
//
// The first byte of an input picks the parser (its value mod 8):
//   0 nn_load_npy   1 nn_probe_npy   2 nn_load_idx   3 nn_probe_idx
//   4 nn_load_csv ','   5 nn_load_csv ' '   6 nn_read_safetensors
//   7 nn_load_keras (the zip reader; the HDF5 inside is libhdf5's to parse, and a mutated
//     one rarely gets past the entry's CRC-32), when built with HDF5
// and the rest is the file's content. The loaders take paths, so the content is written
// to one file in /dev/shm per process (memory, not disk). Errors are captured, not
// printed; whatever a loader returns is freed, so leaks show up as findings.
// Every finding becomes a file in tests/fuzz/loaders_regressions/.
//
// Build and run: tests/fuzz/run.sh SECONDS loaders
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(path, sizeof path, "/dev/shm/nnc-fuzz-loaders-%d", (int)getpid());
  nn_capture_errors(true);
  return 0;
}

static int write_file(const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t n = size ? fwrite(data, 1, size, f) : 0;
  return fclose(f) == 0 && n == size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  int format = data[0] % 8;
  if (write_file(data + 1, size - 1) != 0) abort();  // /dev/shm full: not the parser's fault
  nn_data d;
  int rc;
  switch (format) {
  case 0: rc = nn_load_npy(&d, path); break;
  case 1: rc = nn_probe_npy(&d, path); break;
  case 2: rc = nn_load_idx(&d, path); break;
  case 3: rc = nn_probe_idx(&d, path); break;
  case 4: rc = nn_load_csv(&d, path, ','); break;
  case 5: rc = nn_load_csv(&d, path, ' '); break;
  case 7: {
#ifdef NNC_HAVE_HDF5
    // The model of tests/keras/small.nn, whose small.keras seeds the corpus.
    static float values[20 + 5 + 20 + 15 + 3];
    static nn_param p[8] = {
        {"dense.kernel", 2, {4, 5}, 20, values, true},
        {"dense.bias", 1, {5}, 5, values + 20, true},
        {"batch_normalization.gamma", 1, {5}, 5, values + 25, true},
        {"batch_normalization.beta", 1, {5}, 5, values + 30, true},
        {"batch_normalization.moving_mean", 1, {5}, 5, values + 35, false},
        {"batch_normalization.moving_variance", 1, {5}, 5, values + 40, false},
        {"dense_1.kernel", 2, {5, 3}, 15, values + 45, true},
        {"dense_1.bias", 1, {3}, 3, values + 60, true}};
    static const nn_layer layers[] = {{"Dense", "dense", 0, 2},
                                      {"BatchNormalization", "batch_normalization", 2, 4},
                                      {"Dense", "dense_1", 6, 2}};
    nn_model m = {.name = "sequential", .n_params = 8, .params = p, .n_layers = 3, .layers = layers};
    rc = nn_load_keras(&m, path);
    if (rc != 0 && rc != -1) abort();
#endif
    return 0;
  }
  default: {
    nn_tensor *t = NULL;
    int n = 0;
    rc = nn_read_safetensors(path, &t, &n);
    if (rc != 0 && rc != -1) abort();
    if (rc == 0) nn_free_tensors(t, n);
    return 0;
  }
  }
  if (rc != 0 && rc != -1) abort();  // the contract: 0 or -1, nothing else
  if (rc == 0) {
    // A probe leaves buf NULL; a load owns it.
    if (format == 1 || format == 3) {
      if (d.buf) abort();
    } else {
      nn_data_free(&d);
    }
  }
  return 0;
}
