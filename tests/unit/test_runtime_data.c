// test_runtime_data.c — IDX, NPY and CSV loaders, keras.datasets lookup, batch gathering,
// reshape and splits. Fixtures are written by the tests themselves.
#include "nn.h"
#include "test_runtime_util.h"

#include <math.h>
#include <sys/stat.h>
#include <zlib.h>

// An IDX file: magic, dims (big-endian), data as given.
static size_t make_idx(uint8_t *buf, uint8_t type, int rank, const uint32_t *dims,
                       const void *data, size_t data_bytes) {
  size_t n = 0;
  buf[n++] = 0;
  buf[n++] = 0;
  buf[n++] = type;
  buf[n++] = (uint8_t)rank;
  for (int i = 0; i < rank; i++) {
    buf[n++] = dims[i] >> 24;
    buf[n++] = dims[i] >> 16;
    buf[n++] = dims[i] >> 8;
    buf[n++] = dims[i];
  }
  memcpy(buf + n, data, data_bytes);
  return n + data_bytes;
}

static void write_gz(const char *path, const void *data, size_t n) {
  gzFile f = gzopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(gzwrite(f, data, (unsigned)n), (int)n);
  gzclose(f);
}

// 3 images of 2x2 pixels, values 0..11.
static size_t images(uint8_t *buf) {
  uint8_t px[12];
  for (int i = 0; i < 12; i++) px[i] = (uint8_t)(i * 20);
  uint32_t dims[3] = {3, 2, 2};
  return make_idx(buf, 0x08, 3, dims, px, 12);
}

static void check_images(const nn_data *d) {
  cr_assert_eq(d->dtype, NN_U8);
  cr_assert_eq(d->rows, 3);
  cr_assert_eq(d->ndim, 2);
  cr_assert_eq(d->shape[0], 2);
  cr_assert_eq(d->shape[1], 2);
  cr_assert_eq(d->row_size, 4);
  cr_assert_eq(((uint8_t *)d->buf)[11], 220);
}

Test(idx, plain_and_gzip_read_the_same) {
  uint8_t buf[64];
  size_t n = images(buf);
  write_bytes(scratch("plain"), buf, n);
  write_gz(scratch("packed.gz"), buf, n);
  write_gz(scratch("packed_without_suffix"), buf, n);  // detection is by magic
  const char *files[] = {"plain", "packed.gz", "packed_without_suffix"};
  for (int i = 0; i < 3; i++) {
    nn_data d;
    cr_assert_eq(nn_load_idx(&d, scratch(files[i])), 0, "%s", files[i]);
    check_images(&d);
    cr_assert(strstr(d.origin, files[i]));
    nn_data_free(&d);
  }
}

Test(idx, labels_are_rank_0_samples) {
  uint8_t lab[5] = {3, 1, 4, 1, 5}, buf[32];
  uint32_t dims[1] = {5};
  write_bytes(scratch("labels"), buf, make_idx(buf, 0x08, 1, dims, lab, 5));
  nn_data d;
  cr_assert_eq(nn_load_idx(&d, scratch("labels")), 0);
  cr_assert_eq(d.rows, 5);
  cr_assert_eq(d.ndim, 0);
  cr_assert_eq(d.row_size, 1);
  cr_assert_eq(((uint8_t *)d.buf)[2], 4);
  nn_data_free(&d);
}

Test(idx, float_and_int_types_decode_big_endian) {
  uint8_t f32[8] = {0x3f, 0x80, 0, 0, 0xc0, 0x00, 0, 0};  // 1.0, -2.0
  uint8_t i32[8] = {0xff, 0xff, 0xff, 0xfe, 0, 0, 1, 0};  // -2, 256
  uint8_t buf[64];
  uint32_t dims[2] = {2, 1};
  write_bytes(scratch("f32"), buf, make_idx(buf, 0x0D, 2, dims, f32, 8));
  nn_data d;
  cr_assert_eq(nn_load_idx(&d, scratch("f32")), 0);
  cr_assert_eq(d.dtype, NN_F32);
  cr_assert_float_eq(((float *)d.buf)[0], 1.0f, 0);
  cr_assert_float_eq(((float *)d.buf)[1], -2.0f, 0);
  nn_data_free(&d);
  write_bytes(scratch("i32"), buf, make_idx(buf, 0x0C, 2, dims, i32, 8));
  cr_assert_eq(nn_load_idx(&d, scratch("i32")), 0);
  cr_assert_eq(d.dtype, NN_I64);
  cr_assert_eq(((int64_t *)d.buf)[0], -2);
  cr_assert_eq(((int64_t *)d.buf)[1], 256);
  nn_data_free(&d);
}

// Loading must fail with a message naming the file.
static void expect_load_error(int (*load)(nn_data *, const char *), const char *path,
                              const char *phrase) {
  nn_data d;
  capture c = capture_begin(2, "stderr.txt");
  int rc = load(&d, path);
  char *err = capture_end(&c);
  cr_assert_eq(rc, -1, "%s loaded", path);
  cr_assert(strstr(err, "error: "), "no error message: %s", err);
  cr_assert(strstr(err, path), "message does not name %s: %s", path, err);
  if (phrase)
    cr_assert(strstr(err, phrase), "expected '%s' in: %s", phrase, err);
  cr_assert_null(d.buf);
  free(err);
}

Test(idx, truncated_files_are_refused) {
  uint8_t buf[64];
  size_t n = images(buf);
  write_bytes(scratch("short"), buf, n - 1);
  expect_load_error(nn_load_idx, scratch("short"), "truncated");
  write_gz(scratch("short.gz"), buf, n - 1);
  expect_load_error(nn_load_idx, scratch("short.gz"), "truncated");
  write_bytes(scratch("header_only"), buf, 6);
  expect_load_error(nn_load_idx, scratch("header_only"), "truncated");
  write_bytes(scratch("empty"), buf, 0);
  expect_load_error(nn_load_idx, scratch("empty"), NULL);
  // A gzip stream cut in the middle.
  write_gz(scratch("whole.gz"), buf, n);
  size_t gzn;
  char *gz = slurp(scratch("whole.gz"), &gzn);
  write_bytes(scratch("cut.gz"), gz, gzn / 2);
  expect_load_error(nn_load_idx, scratch("cut.gz"), NULL);
  free(gz);
}

Test(idx, bad_headers_are_refused) {
  uint8_t buf[64];
  size_t n = images(buf);
  buf[0] = 1;
  write_bytes(scratch("magic"), buf, n);
  expect_load_error(nn_load_idx, scratch("magic"), "not an IDX file");
  images(buf);
  buf[2] = 0x42;
  write_bytes(scratch("type"), buf, n);
  expect_load_error(nn_load_idx, scratch("type"), "type");
  images(buf);
  write_bytes(scratch("long"), buf, n);
  FILE *f = fopen(scratch("long"), "ab");
  fputc(7, f);
  fclose(f);
  expect_load_error(nn_load_idx, scratch("long"), NULL);
  // Dimensions claiming 4 GB in a tiny gzip file: refused before allocating.
  uint32_t dims[3] = {0xffffffu, 0xffff, 0xff};
  n = make_idx(buf, 0x08, 3, dims, "", 0);
  write_gz(scratch("huge.gz"), buf, n);
  expect_load_error(nn_load_idx, scratch("huge.gz"), NULL);
  expect_load_error(nn_load_idx, scratch("does_not_exist"), NULL);
}

Test(dataset, searches_data_dir_then_env_and_names_every_place) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/fashion-mnist", scratch_dir());
  mkdir(dir, 0755);
  uint8_t buf[64];
  size_t n = images(buf);
  char path[700];
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
  write_gz(path, buf, n);
  nn_data d;
  cr_assert_eq(nn_load_dataset(&d, "fashion-mnist", 2, scratch_dir()), 0);
  check_images(&d);
  nn_data_free(&d);
  // Via $NNC_DATA.
  setenv("NNC_DATA", scratch_dir(), 1);
  cr_assert_eq(nn_load_dataset(&d, "fashion_mnist", 2, NULL), 0);
  nn_data_free(&d);
  // mnist is missing everywhere: one message with every path and the needed files.
  capture c = capture_begin(2, "err.txt");
  int rc = nn_load_dataset(&d, "mnist", 0, "/nonexistent_dir");
  char *err = capture_end(&c);
  cr_assert_eq(rc, -1);
  cr_assert(strstr(err, "/nonexistent_dir/mnist/train-images-idx3-ubyte.gz"), "%s", err);
  cr_assert(strstr(err, "/mnist/train-images-idx3-ubyte\n"), "%s", err);
  cr_assert(strstr(err, "/usr/share/datasets/mnist/train-images-idx3-ubyte"), "%s", err);
  cr_assert(strstr(err, "t10k-labels-idx1-ubyte"), "%s", err);
  free(err);
  unsetenv("NNC_DATA");
  c = capture_begin(2, "err2.txt");
  rc = nn_load_dataset(&d, "fashion-mnist", 1, "/nonexistent_dir");
  err = capture_end(&c);
  // Either the Debian package is installed (found) or the message says to install it.
  if (rc != 0)
    cr_assert(strstr(err, "dataset-fashion-mnist"), "%s", err);
  else
    nn_data_free(&d);
  free(err);
  cr_assert_eq(nn_load_dataset(&d, "cifar10", 0, NULL), -1);
}

Test(dataset, debian_fashion_mnist_when_installed) {
  struct stat st;
  if (stat("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", &st) != 0)
    cr_skip_test("dataset-fashion-mnist not installed");
  nn_data d;
  cr_assert_eq(nn_load_dataset(&d, "fashion-mnist", 3, "/nonexistent_dir"), 0);
  cr_assert_eq(d.rows, 10000);
  cr_assert_eq(d.dtype, NN_U8);
  for (int64_t i = 0; i < d.rows; i++) cr_assert_lt(((uint8_t *)d.buf)[i], 10);
  nn_data_free(&d);
}

//
// NPY
//
// An NPY file with the given version, dict text and data.
static void make_npy(const char *path, int major, const char *dict, const void *data, size_t n) {
  uint8_t buf[4096];
  size_t at = 0, dl = strlen(dict);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (uint8_t)major;
  buf[7] = 0;
  at = 8;
  size_t lenbytes = major == 1 ? 2 : 4;
  for (size_t i = 0; i < lenbytes; i++) buf[at++] = (uint8_t)(dl >> (8 * i));
  memcpy(buf + at, dict, dl);
  at += dl;
  memcpy(buf + at, data, n);
  write_bytes(path, buf, at + n);
}

Test(npy, v1_f4_and_v2_f8) {
  float f[6] = {1, 2, 3, 4, 5, 6};
  make_npy(scratch("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  \n",
           f, sizeof f);
  nn_data d;
  cr_assert_eq(nn_load_npy(&d, scratch("a.npy")), 0);
  cr_assert_eq(d.dtype, NN_F32);
  cr_assert_eq(d.rows, 2);
  cr_assert_eq(d.ndim, 1);
  cr_assert_eq(d.shape[0], 3);
  cr_assert_float_eq(((float *)d.buf)[5], 6.0f, 0);
  nn_data_free(&d);
  double g[2] = {0.5, -1.5};
  make_npy(scratch("b.npy"), 2, "{\"descr\": \"<f8\", \"shape\": (2,), \"fortran_order\": False}\n",
           g, sizeof g);
  cr_assert_eq(nn_load_npy(&d, scratch("b.npy")), 0);
  cr_assert_eq(d.dtype, NN_F64);
  cr_assert_eq(d.rows, 2);
  cr_assert_eq(d.ndim, 0);
  cr_assert_eq(d.row_size, 1);
  cr_assert_float_eq(((double *)d.buf)[1], -1.5, 0);
  nn_data_free(&d);
}

Test(npy, u1_i8_i2_and_0d) {
  uint8_t u[4] = {0, 1, 254, 255};
  make_npy(scratch("u.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2), }\n",
           u, 4);
  nn_data d;
  cr_assert_eq(nn_load_npy(&d, scratch("u.npy")), 0);
  cr_assert_eq(d.dtype, NN_U8);
  cr_assert_eq(d.rows, 1);
  cr_assert_eq(d.ndim, 2);
  cr_assert_eq(((uint8_t *)d.buf)[3], 255);
  nn_data_free(&d);
  int64_t l[3] = {-5, 0, 1LL << 40};
  make_npy(scratch("l.npy"), 3, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n", l,
           sizeof l);
  cr_assert_eq(nn_load_npy(&d, scratch("l.npy")), 0);
  cr_assert_eq(d.dtype, NN_I64);
  cr_assert_eq(((int64_t *)d.buf)[0], -5);
  cr_assert_eq(((int64_t *)d.buf)[2], 1LL << 40);
  nn_data_free(&d);
  int16_t s[2] = {-300, 7};
  make_npy(scratch("s.npy"), 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }\n", s,
           sizeof s);
  cr_assert_eq(nn_load_npy(&d, scratch("s.npy")), 0);
  cr_assert_eq(((int64_t *)d.buf)[0], -300);
  nn_data_free(&d);
  float one = 3.5f;
  make_npy(scratch("z.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", &one, 4);
  cr_assert_eq(nn_load_npy(&d, scratch("z.npy")), 0);
  cr_assert_eq(d.rows, 1);
  cr_assert_eq(d.row_size, 1);
  nn_data_free(&d);
}

Test(npy, malformed_files_are_refused) {
  float f[4] = {1, 2, 3, 4};
  make_npy(scratch("fortran.npy"), 1,
           "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", f, sizeof f);
  expect_load_error(nn_load_npy, scratch("fortran.npy"), "fortran");
  make_npy(scratch("big.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }\n",
           f, sizeof f);
  expect_load_error(nn_load_npy, scratch("big.npy"), "big-endian");
  make_npy(scratch("short.npy"), 1,
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", f, sizeof f);
  expect_load_error(nn_load_npy, scratch("short.npy"), "truncated");
  make_npy(scratch("dtype.npy"), 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n",
           f, sizeof f);
  expect_load_error(nn_load_npy, scratch("dtype.npy"), "dtype");
  make_npy(scratch("struct.npy"), 1,
           "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", f, sizeof f);
  expect_load_error(nn_load_npy, scratch("struct.npy"), NULL);
  make_npy(scratch("noshape.npy"), 1, "{'descr': '<f4', 'fortran_order': False}\n", f, sizeof f);
  expect_load_error(nn_load_npy, scratch("noshape.npy"), NULL);
  make_npy(scratch("junk.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} x\n",
           f, sizeof f);
  expect_load_error(nn_load_npy, scratch("junk.npy"), NULL);
  make_npy(scratch("neg.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,)}\n", f,
           sizeof f);
  expect_load_error(nn_load_npy, scratch("neg.npy"), NULL);
  write_bytes(scratch("magic.npy"), "\x93NUMPX\x01\x00\x00\x00", 10);
  expect_load_error(nn_load_npy, scratch("magic.npy"), "magic");
  // Header length pointing past the end of the file.
  write_bytes(scratch("hlen.npy"), "\x93NUMPY\x01\x00\xff\x7f{}", 12);
  expect_load_error(nn_load_npy, scratch("hlen.npy"), "truncated");
  write_bytes(scratch("tiny.npy"), "\x93NUM", 4);
  expect_load_error(nn_load_npy, scratch("tiny.npy"), NULL);
}

Test(npy, save_writes_v1_f4_aligned_and_reads_back) {
  float v[6] = {1, -2, 3.25f, 4, 5, 6};
  int64_t shape[2] = {3, 2};
  cr_assert_eq(nn_save_npy(scratch("out.npy"), v, 2, shape), 0);
  size_t n;
  char *raw = slurp(scratch("out.npy"), &n);
  cr_assert_eq(memcmp(raw, "\x93NUMPY\x01\x00", 8), 0);
  size_t hlen = (uint8_t)raw[8] | ((uint8_t)raw[9] << 8);
  cr_assert_eq((10 + hlen) % 64, 0);
  cr_assert_eq(raw[10 + hlen - 1], '\n');
  cr_assert(strstr(raw + 10, "'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"));
  cr_assert_eq(n, 10 + hlen + sizeof v);
  free(raw);
  nn_data d;
  cr_assert_eq(nn_load_npy(&d, scratch("out.npy")), 0);
  cr_assert_eq(d.rows, 3);
  cr_assert_eq(memcmp(d.buf, v, sizeof v), 0);
  nn_data_free(&d);
  int64_t one[1] = {6};
  cr_assert_eq(nn_save_npy(scratch("flat.npy"), v, 1, one), 0);
  raw = slurp(scratch("flat.npy"), NULL);
  cr_assert(strstr(raw + 10, "'shape': (6,), }"));
  free(raw);
  // No temporary files left behind.
  char cmd[700];
  snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", scratch_dir());
  cr_assert_neq(system(cmd), 0);
}

Test(npy, numpy_reads_what_we_write) {
  if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy' 2>/dev/null"))
    cr_skip_test("no numpy");
  float v[4] = {1, 2, 3, 4.5f};
  int64_t shape[2] = {2, 2};
  cr_assert_eq(nn_save_npy(scratch("np.npy"), v, 2, shape), 0);
  char cmd[900];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import numpy as np; a=np.load('%s'); "
           "assert a.shape==(2,2) and a.dtype==np.float32 and a[1,1]==4.5\"",
           scratch("np.npy"));
  cr_assert_eq(system(cmd), 0);
}

//
// CSV
//
Test(csv, rows_with_blank_lines_comments_and_crlf) {
  write_text(scratch("a.csv"), "# x,y,z\n1,2,3\r\n\n 4 , 5.5,-6e1 \n7,8,9");
  nn_data d;
  cr_assert_eq(nn_load_csv(&d, scratch("a.csv"), ','), 0);
  cr_assert_eq(d.dtype, NN_F64);
  cr_assert_eq(d.rows, 3);
  cr_assert_eq(d.ndim, 1);
  cr_assert_eq(d.shape[0], 3);
  double *v = d.buf;
  cr_assert_float_eq(v[4], 5.5, 0);
  cr_assert_float_eq(v[5], -60, 0);
  cr_assert_float_eq(v[8], 9, 0);
  nn_data_free(&d);
}

Test(csv, single_column_and_whitespace_delimiter) {
  write_text(scratch("col.csv"), "1\n2\n3\n");
  nn_data d;
  cr_assert_eq(nn_load_csv(&d, scratch("col.csv"), ','), 0);
  cr_assert_eq(d.rows, 3);
  cr_assert_eq(d.ndim, 0);
  nn_data_free(&d);
  write_text(scratch("ws.txt"), "1  2\t3\n4 5 6\n");
  cr_assert_eq(nn_load_csv(&d, scratch("ws.txt"), ' '), 0);
  cr_assert_eq(d.rows, 2);
  cr_assert_eq(d.shape[0], 3);
  cr_assert_float_eq(((double *)d.buf)[2], 3, 0);
  nn_data_free(&d);
}

static int load_csv_comma(nn_data *d, const char *path) { return nn_load_csv(d, path, ','); }

Test(csv, errors_name_line_and_column) {
  write_text(scratch("bad.csv"), "1,2,3\n4,five,6\n");
  char where[600];
  snprintf(where, sizeof where, "%s:2:3:", scratch("bad.csv"));
  expect_load_error(load_csv_comma, scratch("bad.csv"), where);
  write_text(scratch("ragged.csv"), "1,2,3\n4,5\n");
  snprintf(where, sizeof where, "%s:2:", scratch("ragged.csv"));
  expect_load_error(load_csv_comma, scratch("ragged.csv"), where);
  write_text(scratch("emptycell.csv"), "1,,3\n");
  expect_load_error(load_csv_comma, scratch("emptycell.csv"), "empty");
  write_text(scratch("empty.csv"), "\n\n# nothing\n");
  expect_load_error(load_csv_comma, scratch("empty.csv"), "no data");
  write_text(scratch("hex.csv"), "0x10\n");
  expect_load_error(load_csv_comma, scratch("hex.csv"), NULL);
  write_bytes(scratch("binary.csv"), "1\0002\n", 4);
  expect_load_error(load_csv_comma, scratch("binary.csv"), NULL);
}

//
// Gathering batches
//
Test(gather, u8_with_scale_and_row_order) {
  uint8_t px[6] = {0, 255, 51, 102, 10, 20};
  nn_data d = {.dtype = NN_U8, .rows = 3, .ndim = 1, .shape = {2}, .row_size = 2, .buf = px,
               .scale = 1.0 / 255.0};
  int64_t idx[2] = {1, 0};
  float out[4];
  cr_assert_eq(nn_data_width(&d), 2);
  cr_assert_eq(nn_data_gather(&d, idx, 2, out), 0);
  cr_assert_float_eq(out[0], 0.2f, 1e-7);
  cr_assert_float_eq(out[1], 0.4f, 1e-7);
  cr_assert_float_eq(out[2], 0.0f, 0);
  cr_assert_float_eq(out[3], 1.0f, 0);
  int64_t bad[1] = {3};
  capture c = capture_begin(2, "e.txt");
  cr_assert_eq(nn_data_gather(&d, bad, 1, out), -1);
  free(capture_end(&c));
}

Test(gather, onehot_and_out_of_range_labels) {
  double lab[3] = {2, 0, 1};
  nn_data d = {.dtype = NN_F64, .rows = 3, .row_size = 1, .buf = lab, .scale = 1, .onehot = 3};
  strcpy(d.origin, "labels");
  cr_assert_eq(nn_data_width(&d), 3);
  int64_t idx[3] = {0, 1, 2};
  float out[9];
  cr_assert_eq(nn_data_gather(&d, idx, 3, out), 0);
  float want[9] = {0, 0, 1, 1, 0, 0, 0, 1, 0};
  for (int i = 0; i < 9; i++) cr_assert_float_eq(out[i], want[i], 0);
  const double bad_values[3] = {3, -1, 0.5};
  for (int k = 0; k < 3; k++) {
    lab[1] = bad_values[k];
    capture c = capture_begin(2, "e.txt");
    int rc = nn_data_gather(&d, idx, 3, out);
    char *err = capture_end(&c);
    cr_assert_eq(rc, -1, "label %g accepted", bad_values[k]);
    cr_assert(strstr(err, "labels") && strstr(err, "[0, 3)"), "%s", err);
    free(err);
  }
}

Test(gather, other_types) {
  int64_t iv[2] = {-3, 4};
  nn_data d = {.dtype = NN_I64, .rows = 2, .row_size = 1, .buf = iv, .scale = 2};
  int64_t idx[2] = {1, 0};
  float out[2];
  cr_assert_eq(nn_data_gather(&d, idx, 2, out), 0);
  cr_assert_float_eq(out[0], 8, 0);
  cr_assert_float_eq(out[1], -6, 0);
  float fv[2] = {1.5f, 2.5f};
  nn_data e = {.dtype = NN_F32, .rows = 2, .row_size = 1, .buf = fv, .scale = 1};
  cr_assert_eq(nn_data_gather(&e, idx, 2, out), 0);
  cr_assert_float_eq(out[0], 2.5f, 0);
}

Test(data, reshape_split_values_expect_shape) {
  double v[12];
  for (int i = 0; i < 12; i++) v[i] = i;
  int64_t shape[1] = {4};
  nn_data d;
  cr_assert_eq(nn_data_from_values(&d, v, 3, 1, shape), 0);
  int64_t to[3] = {2, -1, 1};
  cr_assert_eq(nn_data_reshape(&d, 3, to), 0);
  cr_assert_eq(d.shape[1], 2);
  int64_t want[3] = {2, 2, 1};
  cr_assert_eq(nn_data_expect_shape(&d, 3, want, "x_train"), 0);
  capture c = capture_begin(2, "e.txt");
  int64_t wrong[1] = {5};
  cr_assert_eq(nn_data_reshape(&d, 1, wrong), -1);
  int64_t other[2] = {4, 1};
  cr_assert_eq(nn_data_expect_shape(&d, 2, other, "x_train"), -1);
  char *err = capture_end(&c);
  cr_assert(strstr(err, "(2, 2, 1)") && strstr(err, "(4, 1)") && strstr(err, "x_train"), "%s", err);
  free(err);
  nn_data head, tail;
  nn_data_split_tail(&d, 0.34, &head, &tail);  // floor(3 * 0.66) = 1
  cr_assert_eq(head.rows, 1);
  cr_assert_eq(tail.rows, 2);
  cr_assert_float_eq(((double *)tail.buf)[0], 4, 0);
  cr_assert_eq(tail.row_size, 4);
  nn_data_free(&head);
  nn_data_free(&tail);
  nn_data_free(&d);
  cr_assert_null(d.buf);
}
