// idx.c — IDX files (the MNIST family), plain or gzip, and keras.datasets lookup.
//
// IDX: 0x00 0x00 <type> <rank>, then rank big-endian uint32 dimensions, then the data
// big-endian. zlib's gzread reads plain files too, so gzip is detected by its magic,
// never by the file name. Every size is checked before anything is allocated or read.
#include "rt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

// Reads up to n bytes; returns bytes read, or -1 on a zlib error.
static int64_t gz_read_all(gzFile f, void *buf, int64_t n) {
  int64_t done = 0;
  while (done < n) {
    int64_t chunk = n - done > (1 << 30) ? (1 << 30) : n - done;
    int got = gzread(f, (char *)buf + done, (unsigned)chunk);
    if (got < 0)
      return -1;
    if (got == 0)
      break;
    done += got;
  }
  return done;
}

static int idx_fail(gzFile f, nn_data *out, const char *msg, const char *path) {
  if (f)
    gzclose(f);
  free(out->buf);
  out->buf = NULL;
  return rt_error("%s: %s", path, msg);
}

// Reads and checks the header, then the data unless header_only.
static int load_idx(nn_data *out, const char *path, bool header_only) {
  memset(out, 0, sizeof *out);
  snprintf(out->origin, sizeof out->origin, "%s", path);
  out->scale = 1;
  int64_t fsize;
  if (rt_check_regular(path, &fsize) != 0)
    return -1;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return rt_error("cannot open %s: %s", path, strerror(errno));

  uint8_t magic[4];
  if (gz_read_all(f, magic, 4) != 4)
    return idx_fail(f, out, "truncated IDX header", path);
  if (magic[0] != 0 || magic[1] != 0 || magic[3] < 1 || magic[3] > 5) {
    char msg[128];
    snprintf(msg, sizeof msg, "not an IDX file (magic %02x %02x %02x %02x)", magic[0], magic[1],
             magic[2], magic[3]);
    return idx_fail(f, out, msg, path);
  }
  int esize;
  switch (magic[2]) {
  case 0x08: case 0x09: esize = 1; break;  // uint8, int8
  case 0x0B: esize = 2; break;             // int16
  case 0x0C: case 0x0D: esize = 4; break;  // int32, float32
  case 0x0E: esize = 8; break;             // float64
  default: return idx_fail(f, out, "unknown IDX element type", path);
  }
  int rank = magic[3];
  uint8_t dimbytes[20];
  if (gz_read_all(f, dimbytes, 4 * rank) != 4 * rank)
    return idx_fail(f, out, "truncated IDX header", path);
  // span multiplies the nonzero dimensions only: a zero must not hide an overflow in
  // the per-sample size the others give.
  int64_t dims[5], count = 1, span = 1;
  for (int i = 0; i < rank; i++) {
    const uint8_t *b = dimbytes + 4 * i;
    dims[i] = ((int64_t)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    if (dims[i] > 0 && span > (INT64_MAX / 16) / dims[i])
      return idx_fail(f, out, "IDX dimensions too large", path);
    if (dims[i] > 0)
      span *= dims[i];
    count *= dims[i];
  }
  int64_t bytes = count * esize, header = 4 + 4 * rank;
  bool plain = gzdirect(f);
  char msg[256];
  if (plain && bytes != fsize - header) {
    snprintf(msg, sizeof msg, "%s: header says %lld bytes of data, the file has %lld",
             fsize - header < bytes ? "truncated" : "wrong size", (long long)bytes,
             (long long)(fsize - header));
    return idx_fail(f, out, msg, path);
  }
  // deflate cannot compress better than about 1032:1: a larger claim is a corrupt header.
  if (!plain && bytes / 1100 > fsize)
    return idx_fail(f, out, "header claims more data than the compressed file can hold", path);

  // uint8 stays as it is; floats are byte-swapped in place; integers widen to int64.
  rt_set_shape(out, dims[0], rank - 1, dims + 1);
  out->dtype = magic[2] == 0x08 ? NN_U8 : magic[2] == 0x0D ? NN_F32 : magic[2] == 0x0E ? NN_F64 : NN_I64;
  if (header_only) {
    gzclose(f);
    return 0;
  }
  void *raw = malloc(bytes + 1);
  if (!raw)
    return idx_fail(f, out, "out of memory", path);
  int64_t got = gz_read_all(f, raw, bytes);
  uint8_t extra;
  int64_t more = got == bytes ? gz_read_all(f, &extra, 1) : 0;
  if (got < 0 || more < 0) {
    int zerr;
    snprintf(msg, sizeof msg, "corrupt gzip data (%s)", gzerror(f, &zerr));
  } else if (got < bytes) {
    snprintf(msg, sizeof msg, "truncated: header says %lld bytes of data, the file has %lld",
             (long long)bytes, (long long)got);
  } else if (more > 0) {
    snprintf(msg, sizeof msg, "more data than the header says (%lld bytes)", (long long)bytes);
  }
  if (got < bytes || more != 0) {
    free(raw);
    return idx_fail(f, out, msg, path);
  }
  gzclose(f);

  if (magic[2] == 0x08) {
    out->buf = raw;
    return 0;
  }
  // Other types: decode big-endian into float32/float64/int64.
  const uint8_t *b = raw;
  if (magic[2] == 0x0D || magic[2] == 0x0E) {
    out->buf = raw;  // byte-swapped in place
    for (int64_t i = 0; i < count; i++) {
      uint8_t *p = (uint8_t *)raw + i * esize;
      for (int k = 0; k < esize / 2; k++) {
        uint8_t t = p[k];
        p[k] = p[esize - 1 - k];
        p[esize - 1 - k] = t;
      }
    }
    return 0;
  }
  int64_t *v = malloc(sizeof(int64_t) * count + 1);
  if (!v) {
    free(raw);
    return rt_error("%s: out of memory", path);
  }
  for (int64_t i = 0; i < count; i++) {
    const uint8_t *p = b + i * esize;
    if (esize == 1)
      v[i] = (int8_t)p[0];
    else if (esize == 2)
      v[i] = (int16_t)((p[0] << 8) | p[1]);
    else
      v[i] = (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]);
  }
  free(raw);
  out->buf = v;
  return 0;
}

int nn_load_idx(nn_data *out, const char *path) { return load_idx(out, path, false); }
int nn_probe_idx(nn_data *out, const char *path) { return load_idx(out, path, true); }

static const char *const dataset_files[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// Finds part of a data set as DESIGN.md says; loads it, or only its header.
// Returns 1 (with no message) when probing and the files are not there.
static int dataset(nn_data *out, const char *name, int part, const char *data_dir, bool header_only) {
  memset(out, 0, sizeof *out);
  if (strcmp(name, "fashion_mnist") == 0)
    name = "fashion-mnist";
  if (strcmp(name, "fashion-mnist") != 0 && strcmp(name, "mnist") != 0)
    return rt_error("unknown data set '%s' (known: fashion-mnist, mnist)", name);
  if (part < 0 || part > 3)
    return rt_error("data set part %d (expected 0..3)", part);

  const char *env = getenv("NNC_DATA");
  const char *dirs[3] = {data_dir, env, "/usr/share/datasets"};
  char tried[4096] = "";
  size_t used = 0;
  for (int d = 0; d < 3; d++) {
    if (!dirs[d] || !*dirs[d])
      continue;
    for (int gz = 0; gz < 2; gz++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s/%s%s", dirs[d], name, dataset_files[part],
               gz ? ".gz" : "");
      if (access(path, R_OK) == 0)
        return load_idx(out, path, header_only);
      if (used < sizeof tried)
        used += snprintf(tried + used, sizeof tried - used, "\n  %s", path);
    }
  }
  if (header_only)
    return 1;
  if (strcmp(name, "fashion-mnist") == 0)
    return rt_error("Fashion-MNIST file %s not found; tried:%s\n"
                    "install the Debian package dataset-fashion-mnist "
                    "(apt install dataset-fashion-mnist), or pass --data-dir DIR with the IDX "
                    "files in DIR/fashion-mnist/",
                    dataset_files[part], tried);
  return rt_error("MNIST file %s not found; tried:%s\n"
                  "put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
                  "and t10k-labels-idx1-ubyte (each may be .gz) in DIR/mnist/ and pass "
                  "--data-dir DIR or set NNC_DATA=DIR",
                  dataset_files[part], tried);
}

int nn_load_dataset(nn_data *out, const char *name, int part, const char *data_dir) {
  return dataset(out, name, part, data_dir, false);
}

int nn_probe_dataset(nn_data *out, const char *name, int part, const char *data_dir) {
  return dataset(out, name, part, data_dir, true);
}
