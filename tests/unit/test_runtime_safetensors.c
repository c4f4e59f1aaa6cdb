// test_runtime_safetensors.c — weights files: round trip, the exact layout, and every
// kind of malformed file refused with a message (never read out of bounds).
#include "nn.h"
#include "test_runtime_util.h"

#include <math.h>

static float kernel[6] = {1, 2, 3, 4, 5, 6}, bias[3] = {0.5f, -0.5f, 0.25f}, mean[3] = {7, 8, 9};

static nn_model two_layer_model(nn_param *p) {
  p[0] = (nn_param){"dense.kernel", 2, {2, 3}, 6, kernel, true};
  p[1] = (nn_param){"dense.bias", 1, {3}, 3, bias, true};
  p[2] = (nn_param){"batch_normalization.moving_mean", 1, {3}, 3, mean, false};
  return (nn_model){.name = "m", .n_params = 3, .params = p};
}

Test(safetensors, round_trip_and_layout) {
  nn_param p[3];
  nn_model m = two_layer_model(p);
  cr_assert_eq(nn_save_weights(&m, scratch("w.safetensors")), 0);
  size_t n;
  char *raw = slurp(scratch("w.safetensors"), &n);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (uint8_t)raw[i];
  cr_assert_eq((8 + hlen) % 8, 0, "data area not 8-byte aligned");
  cr_assert_eq(n, 8 + hlen + 4 * 12);
  cr_assert_eq(raw[8], '{');
  cr_assert(strstr(raw + 8, "\"__metadata__\":{\"producer\":\"nnc\",\"layout\":\"keras\"}"));
  cr_assert(strstr(raw + 8, "\"dense.kernel\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"));
  cr_assert(strstr(raw + 8, "\"batch_normalization.moving_mean\":{\"dtype\":\"F32\",\"shape\":[3],"
                            "\"data_offsets\":[36,48]}"));
  free(raw);

  nn_tensor *t;
  int count;
  cr_assert_eq(nn_read_safetensors(scratch("w.safetensors"), &t, &count), 0);
  cr_assert_eq(count, 3);
  cr_assert_str_eq(t[1].name, "dense.bias");
  cr_assert_eq(t[0].ndim, 2);
  cr_assert_eq(t[0].shape[1], 3);
  cr_assert_float_eq(t[0].data[5], 6.0f, 0);
  nn_free_tensors(t, count);

  // Loading into a model with different values restores the saved ones.
  float k2[6] = {0}, b2[3] = {0}, m2[3] = {0};
  nn_param q[3];
  nn_model other = two_layer_model(q);
  q[0].value = k2;
  q[1].value = b2;
  q[2].value = m2;
  cr_assert_eq(nn_load_weights(&other, scratch("w.safetensors")), 0);
  cr_assert_eq(memcmp(k2, kernel, sizeof kernel), 0);
  cr_assert_eq(memcmp(b2, bias, sizeof bias), 0);
  cr_assert_eq(memcmp(m2, mean, sizeof mean), 0);
}

// A safetensors file from a header text and data bytes.
static void make_st(const char *path, const char *header, uint64_t claimed_len, const void *data,
                    size_t n) {
  uint8_t buf[4096];
  size_t hl = strlen(header);
  for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(claimed_len >> (8 * i));
  memcpy(buf + 8, header, hl);
  memcpy(buf + 8 + hl, data, n);
  write_bytes(path, buf, 8 + hl + n);
}

static void expect_refused(const char *name, const char *header, int64_t claimed, size_t data_n,
                           const char *phrase) {
  float data[16] = {0};
  const char *path = scratch(name);
  make_st(path, header, claimed >= 0 ? (uint64_t)claimed : strlen(header), data, data_n);
  nn_tensor *t = (nn_tensor *)1;
  int count = 5;
  capture c = capture_begin(2, "err.txt");
  int rc = nn_read_safetensors(path, &t, &count);
  char *err = capture_end(&c);
  cr_assert_eq(rc, -1, "%s accepted", name);
  cr_assert_null(t);
  cr_assert_eq(count, 0);
  cr_assert(strstr(err, "error: ") && strstr(err, path), "%s: %s", name, err);
  if (phrase)
    cr_assert(strstr(err, phrase), "%s: expected '%s' in %s", name, phrase, err);
  free(err);
}

Test(safetensors, malformed_files_are_refused) {
  const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  expect_refused("hlen", ok, 1 << 20, 8, "larger than the file");
  expect_refused("hlen_max", ok, INT64_MAX, 8, "larger than the file");
  expect_refused("notjson", "{\"a\":{\"dtype\":\"F32\",}}", -1, 8, "JSON");
  expect_refused("trailing", "{\"a\":1} x", -1, 8, "JSON");
  expect_refused("array", "[1,2]", -1, 8, "object");
  expect_refused("offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", -1,
                 8, "outside the data area");
  expect_refused("reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", -1,
                 8, "data_offsets");
  expect_refused("negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
                 -1, 8, "data_offsets");
  expect_refused("size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 16,
                 "needs 12 bytes");
  expect_refused("dtype", "{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                 "dtype");
  expect_refused("shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", -1,
                 8, "shape");
  expect_refused("hugeshape",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999,99999999999],\"data_offsets\":[0,8]}}",
                 -1, 8, "shape");
  expect_refused("missingkey", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", -1, 8, NULL);
  expect_refused("dupkey", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2]}}", -1, 8,
                 "duplicate");
  expect_refused("meta", "{\"__metadata__\":{\"x\":1}}", -1, 0, "metadata");
  expect_refused("badescape", "{\"a\\q\":1}", -1, 0, "JSON");
  expect_refused("unterminated", "{\"a", -1, 0, "JSON");
  expect_refused("deep", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                 -1, 0, "JSON");
  expect_refused("empty_header", "", 0, 3, "JSON");
  expect_refused("not_entry", "{\"a\":5}", -1, 0, "not an object");
  write_bytes(scratch("tiny"), "\x01\x00", 2);
  nn_tensor *t;
  int count;
  capture c = capture_begin(2, "e.txt");
  cr_assert_eq(nn_read_safetensors(scratch("tiny"), &t, &count), -1);
  cr_assert_eq(nn_read_safetensors(scratch("missing"), &t, &count), -1);
  free(capture_end(&c));
}

Test(safetensors, reads_other_dtypes_and_escapes) {
  // F64, F16, BF16, I32 and U8 tensors, a \u-escaped name, padding after the JSON.
  uint8_t data[64];
  double d = -2.5;
  memcpy(data, &d, 8);
  uint16_t h = 0x3c00;  // 1.0 in half
  memcpy(data + 8, &h, 2);
  uint16_t bf = 0xc040;  // -3.0 in bfloat16
  memcpy(data + 10, &bf, 2);
  int32_t i = -7;
  memcpy(data + 12, &i, 4);
  data[16] = 200;
  const char *header = "{\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                       "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[8,10]},"
                       "\"b\\u00e9\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[10,12]},"
                       "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[12,16]},"
                       "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[16,17]}}   ";
  make_st(scratch("types"), header, strlen(header), data, 17);
  nn_tensor *t;
  int count;
  cr_assert_eq(nn_read_safetensors(scratch("types"), &t, &count), 0);
  cr_assert_eq(count, 5);
  cr_assert_eq(t[0].ndim, 0);
  cr_assert_eq(t[0].size, 1);
  cr_assert_float_eq(t[0].data[0], -2.5f, 0);
  cr_assert_float_eq(t[1].data[0], 1.0f, 0);
  cr_assert_str_eq(t[2].name, "b\xc3\xa9");
  cr_assert_float_eq(t[2].data[0], -3.0f, 0);
  cr_assert_float_eq(t[3].data[0], -7.0f, 0);
  cr_assert_float_eq(t[4].data[0], 200.0f, 0);
  nn_free_tensors(t, count);
}

static char *load_error(nn_model *m, const char *path) {
  capture c = capture_begin(2, "load_err.txt");
  int rc = nn_load_weights(m, path);
  char *err = capture_end(&c);
  cr_assert_eq(rc, -1, "loaded %s", path);
  return err;
}

Test(safetensors, load_weights_checks_names_and_shapes) {
  nn_param p[3];
  nn_model m = two_layer_model(p);
  cr_assert_eq(nn_save_weights(&m, scratch("w.safetensors")), 0);
  float before = kernel[0];

  // Wrong shape: names the tensor and both shapes, and changes nothing.
  nn_param q[3];
  nn_model wrong = two_layer_model(q);
  q[0].shape[0] = 3;
  q[0].shape[1] = 2;
  char *err = load_error(&wrong, scratch("w.safetensors"));
  cr_assert(strstr(err, "dense.kernel") && strstr(err, "[2, 3]") && strstr(err, "[3, 2]"), "%s", err);
  free(err);

  // Missing tensor.
  nn_param r[4];
  nn_model more = two_layer_model(r);
  float extra[2];
  r[3] = (nn_param){"dense_1.kernel", 1, {2}, 2, extra, true};
  more.n_params = 4;
  err = load_error(&more, scratch("w.safetensors"));
  cr_assert(strstr(err, "dense_1.kernel") && strstr(err, "missing"), "%s", err);
  free(err);

  // Extra tensors in the file.
  nn_model fewer = two_layer_model(q);
  fewer.n_params = 1;
  err = load_error(&fewer, scratch("w.safetensors"));
  cr_assert(strstr(err, "dense.bias") && strstr(err, "batch_normalization.moving_mean"), "%s", err);
  free(err);
  cr_assert_float_eq(kernel[0], before, 0);
}

Test(safetensors, save_refuses_inconsistent_params_and_leaves_no_temp) {
  nn_param p[3];
  nn_model m = two_layer_model(p);
  p[1].size = 4;  // shape says 3
  capture c = capture_begin(2, "e.txt");
  cr_assert_eq(nn_save_weights(&m, scratch("bad.safetensors")), -1);
  p[1].size = 3;
  p[2].name = "dense.bias";
  cr_assert_eq(nn_save_weights(&m, scratch("bad.safetensors")), -1);
  cr_assert_eq(nn_save_weights(&m, "/nonexistent_dir/w.safetensors"), -1);
  free(capture_end(&c));
  cr_assert_neq(access(scratch("bad.safetensors"), F_OK), 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", scratch_dir());
  cr_assert_neq(system(cmd), 0);
}

// An independent reader in Python (struct + json), as torch's safetensors would parse it:
// contiguous offsets covering the data area, 8-byte alignment, F32 little-endian.
Test(safetensors, python_reader_accepts_our_file) {
  if (access("/usr/bin/python3", X_OK) != 0)
    cr_skip_test("no python3");
  nn_param p[3];
  nn_model m = two_layer_model(p);
  cr_assert_eq(nn_save_weights(&m, scratch("py.safetensors")), 0);
  const char *script =
      "import json, struct, sys\n"
      "b = open(sys.argv[1], 'rb').read()\n"
      "n = struct.unpack('<Q', b[:8])[0]\n"
      "h = json.loads(b[8:8 + n])\n"
      "assert (8 + n) % 8 == 0\n"
      "assert h.pop('__metadata__') == {'producer': 'nnc', 'layout': 'keras'}\n"
      "data = b[8 + n:]\n"
      "spans = sorted(v['data_offsets'] for v in h.values())\n"
      "end = 0\n"
      "for s, e in spans:\n"
      "    assert s == end; end = e\n"
      "assert end == len(data)\n"
      "k = h['dense.kernel']\n"
      "assert k['dtype'] == 'F32' and k['shape'] == [2, 3]\n"
      "v = struct.unpack('<6f', data[k['data_offsets'][0]:k['data_offsets'][1]])\n"
      "assert v == (1, 2, 3, 4, 5, 6), v\n"
      "try:\n"
      "    from safetensors.numpy import load_file\n"
      "    assert load_file(sys.argv[1])['dense.kernel'].shape == (2, 3)\n"
      "except ImportError:\n"
      "    pass\n";
  write_text(scratch("check.py"), script);
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", scratch("check.py"), scratch("py.safetensors"));
  cr_assert_eq(system(cmd), 0);
}
