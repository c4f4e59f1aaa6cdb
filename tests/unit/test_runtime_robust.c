// test_runtime_robust.c — every loader, fed every truncation and thousands of random
// byte mutations of a valid file, must return 0 or -1 and never crash or read out of
// bounds (run this under -DNNC_SANITIZE=ON to make the last part observable).
#include "nn.h"
#include "test_runtime_util.h"

#include <dirent.h>
#include <zlib.h>

typedef int (*loader)(const char *path);

static int load_idx(const char *path) {
  nn_data d;
  int rc = nn_load_idx(&d, path);
  if (rc == 0) nn_data_free(&d);
  return rc;
}
static int load_npy(const char *path) {
  nn_data d;
  int rc = nn_load_npy(&d, path);
  if (rc == 0) nn_data_free(&d);
  return rc;
}
static int load_csv(const char *path) {
  nn_data d;
  int rc = nn_load_csv(&d, path, ',');
  if (rc == 0) nn_data_free(&d);
  return rc;
}
static int load_st(const char *path) {
  nn_tensor *t;
  int n;
  int rc = nn_read_safetensors(path, &t, &n);
  if (rc == 0) nn_free_tensors(t, n);
  return rc;
}

// Truncations at every length, then random mutations of 1–4 bytes.
static void torture(loader load, const uint8_t *good, size_t n, int mutations) {
  const char *path = scratch("mutant");
  int saved = dup(2);
  int devnull = open("/dev/null", O_WRONLY);
  dup2(devnull, 2);  // thousands of (expected) error messages
  close(devnull);
  write_bytes(path, good, n);
  int ok = load(path);
  for (size_t len = 0; len < n; len++) {
    write_bytes(path, good, len);
    int rc = load(path);
    cr_assert(rc == 0 || rc == -1);
  }
  uint8_t *buf = malloc(n);
  uint64_t s = 12345;
  int refused = 0;
  for (int k = 0; k < mutations; k++) {
    memcpy(buf, good, n);
    int edits = 1 + k % 4;
    for (int e = 0; e < edits; e++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      size_t at = (s >> 33) % n;
      uint8_t v = (uint8_t)(s >> 20);
      // Favour bytes that matter to parsers: digits, quotes, brackets, zero, 0xff.
      static const uint8_t special[] = {'0', '9', '"', '\'', '{', '}', '[', ']', ',', 0, 0xff, '-'};
      buf[at] = (s >> 13) & 1 ? special[v % sizeof special] : v;
    }
    write_bytes(path, buf, n);
    int rc = load(path);
    cr_assert(rc == 0 || rc == -1);
    refused += rc == -1;
  }
  free(buf);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  cr_assert_eq(ok, 0, "the unmutated file must load");
  cr_assert_gt(refused, 0, "no mutation was ever refused: the checks are not checking");
}

Test(robust, idx_plain_and_gzip) {
  uint8_t good[16 + 24] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
  for (int i = 16; i < 40; i++) good[i] = (uint8_t)i;
  torture(load_idx, good, sizeof good, 3000);
  // The same file gzipped.
  gzFile f = gzopen(scratch("g.gz"), "wb");
  gzwrite(f, good, sizeof good);
  gzclose(f);
  size_t gzn;
  char *gz = slurp(scratch("g.gz"), &gzn);
  torture(load_idx, (uint8_t *)gz, gzn, 3000);
  free(gz);
}

Test(robust, npy) {
  uint8_t good[128 + 24];
  const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  memset(good, ' ', sizeof good);
  memcpy(good, "\x93NUMPY\x01\x00\x76\x00", 10);
  memcpy(good + 10, dict, strlen(dict));
  good[10 + 0x76 - 1] = '\n';
  for (int i = 0; i < 24; i++) good[128 + i] = (uint8_t)i;
  torture(load_npy, good, sizeof good, 4000);
}

Test(robust, csv) {
  const char *good = "# header\n1,2.5,-3\n4e2, 5 ,6\r\n\n7,8,9\n";
  torture(load_csv, (const uint8_t *)good, strlen(good), 3000);
}

Test(robust, safetensors) {
  float k[6] = {1, 2, 3, 4, 5, 6}, b[3] = {7, 8, 9};
  nn_param p[2] = {{"dense.kernel", 2, {2, 3}, 6, k, true}, {"dense.bias", 1, {3}, 3, b, true}};
  nn_model m = {.n_params = 2, .params = p};
  cr_assert_eq(nn_save_weights(&m, scratch("w.safetensors")), 0);
  size_t n;
  char *good = slurp(scratch("w.safetensors"), &n);
  torture(load_st, (uint8_t *)good, n, 6000);
  free(good);
}

// Every input the loader fuzzer ever broke (tests/fuzz/loaders_regressions/), replayed the
// way tests/fuzz/fuzz_loaders.c feeds it: the first byte picks the parser, the rest is the
// file. Each must load or fail cleanly; under NNC_SANITIZE a regression is a crash here.
static int replay(int format, const char *path) {
  nn_data d;
  int rc;
  switch (format % 7) {
  case 0: rc = nn_load_npy(&d, path); break;
  case 1: rc = nn_probe_npy(&d, path); break;
  case 2: rc = nn_load_idx(&d, path); break;
  case 3: rc = nn_probe_idx(&d, path); break;
  case 4: rc = nn_load_csv(&d, path, ','); break;
  case 5: rc = nn_load_csv(&d, path, ' '); break;
  default: return load_st(path);
  }
  if (rc == 0) nn_data_free(&d);
  return rc;
}

Test(robust, fuzz_regressions) {
  // __FILE__ is absolute under CMake: .../tests/unit/test_runtime_robust.c
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", __FILE__);
  char *cut = strstr(dir, "/unit/test_runtime_robust.c");
  cr_assert(cut, "cannot find the tests directory from %s", __FILE__);
  strcpy(cut, "/fuzz/loaders_regressions");
  DIR *dp = opendir(dir);
  cr_assert(dp, "cannot open %s", dir);
  nn_capture_errors(true);
  int files = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.') continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    size_t n;
    char *bytes = slurp(path, &n);
    cr_assert(bytes && n > 0, "%s is empty", path);
    const char *file = scratch("regression");
    write_bytes(file, (const uint8_t *)bytes + 1, n - 1);
    int rc = replay((uint8_t)bytes[0], file);
    cr_assert(rc == 0 || rc == -1, "%s: returned %d", e->d_name, rc);
    free(bytes);
    files++;
  }
  closedir(dp);
  nn_capture_errors(false);
  cr_assert_geq(files, 2, "expected the committed regression inputs in %s", dir);
}
