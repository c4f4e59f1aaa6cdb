// compare.c — checks nnc's outputs against the PyTorch golden files, with no Python.
//
//   compare pred GOT.npy WANT.npy
//       every element: |got - want| <= 1e-4 + 1e-3 |want|
//   compare weights INIT.safetensors GOT.safetensors WANT.safetensors
//       per tensor: ||(got - init) - (want - init)|| / ||want - init|| <= 2e-3
//
// Weights are judged by their update, not their value: after a few steps the weights
// are mostly their starting values, so comparing values would pass a trainer that
// barely trains. A golden update of norm 0 is a failure (the fixture tests nothing).
// Prints one line per tensor; exits 0 when all pass, 1 on any failure or bad file.
//
// Self-contained (reads NPY '<f4' and safetensors F32 itself) so it builds with just
// `cc compare.c -lm` and keeps working while the runtime changes. Every read is
// bounds-checked: a truncated or malformed file is a message, not a crash.
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRED_ATOL 1e-4
#define PRED_RTOL 1e-3
#define UPDATE_RTOL 2e-3
#define MAX_FILE (256 << 20)
#define MAX_RANK 8

typedef struct Tensor {
  char name[256];
  int ndim;
  int64_t shape[MAX_RANK];
  int64_t size;
  const unsigned char *data;  // little-endian float32s in the file's bytes (maybe unaligned)
} Tensor;

typedef struct File {
  const char *path;
  unsigned char *bytes;
  size_t len;
  Tensor *tensors;
  int n;
} File;

static int fail(const char *path, const char *msg) {
  fprintf(stderr, "compare: %s: %s\n", path, msg);
  return -1;
}

static int read_all(File *f, const char *path) {
  memset(f, 0, sizeof *f);
  f->path = path;
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(stderr, "compare: %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 1 << 16;
  f->bytes = malloc(cap);
  size_t got;
  while (f->bytes && (got = fread(f->bytes + f->len, 1, cap - f->len, fp)) > 0) {
    f->len += got;
    if (f->len == cap) {
      if (cap >= MAX_FILE) break;
      cap *= 2;
      f->bytes = realloc(f->bytes, cap);
    }
  }
  fclose(fp);
  if (!f->bytes) return fail(path, "out of memory");
  if (f->len >= MAX_FILE) return fail(path, "file too large");
  return 0;
}

static void file_free(File *f) {
  free(f->bytes);
  free(f->tensors);
  memset(f, 0, sizeof *f);
}

static int64_t checked_size(const int64_t *shape, int ndim) {
  int64_t size = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0 || (shape[i] > 0 && size > INT64_MAX / 4 / shape[i])) return -1;
    size *= shape[i];
  }
  return size;
}

//
// NPY: magic, version, header length, a Python dict literal, then the data.
//
static int load_npy(File *f, const char *path) {
  if (read_all(f, path)) return -1;
  const unsigned char *b = f->bytes;
  if (f->len < 10 || memcmp(b, "\x93NUMPY", 6)) return fail(path, "not an NPY file");
  size_t hlen, start;
  if (b[6] == 1) {
    hlen = b[8] | (size_t)b[9] << 8;
    start = 10;
  } else if (b[6] == 2 || b[6] == 3) {
    if (f->len < 12) return fail(path, "truncated NPY header");
    hlen = b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    start = 12;
  } else {
    return fail(path, "unknown NPY version");
  }
  if (hlen > f->len - start) return fail(path, "truncated NPY header");
  char header[4096];
  if (hlen >= sizeof header) return fail(path, "NPY header too long");
  memcpy(header, b + start, hlen);
  header[hlen] = 0;
  if (!strstr(header, "'descr': '<f4'")) return fail(path, "only little-endian float32 ('<f4') is compared");
  if (!strstr(header, "'fortran_order': False")) return fail(path, "only C order is compared");
  const char *s = strstr(header, "'shape': (");
  if (!s) return fail(path, "NPY header has no shape");
  s += strlen("'shape': (");
  Tensor *t = calloc(1, sizeof *t);
  f->tensors = t;
  f->n = 1;
  snprintf(t->name, sizeof t->name, "pred");
  while (*s != ')') {
    char *end;
    long long d = strtoll(s, &end, 10);
    if (end == s || t->ndim == MAX_RANK) return fail(path, "bad NPY shape");
    t->shape[t->ndim++] = d;
    s = end;
    while (*s == ',' || *s == ' ') s++;
  }
  t->size = checked_size(t->shape, t->ndim);
  start += hlen;
  if (t->size < 0 || (uint64_t)t->size * 4 != f->len - start)
    return fail(path, "NPY data size does not match its shape");
  t->data = f->bytes + start;
  return 0;
}

//
// safetensors: u64 header length, a JSON object {name: {dtype, shape, data_offsets}},
// then the data. The JSON reader below knows exactly that much JSON.
//
typedef struct Json {
  const char *p, *end;
} Json;

static void skip_ws(Json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static int eat(Json *j, char c) {
  skip_ws(j);
  if (j->p < j->end && *j->p == c) {
    j->p++;
    return 1;
  }
  return 0;
}

static int json_string(Json *j, char *out, size_t cap) {
  if (!eat(j, '"')) return -1;
  size_t n = 0;
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if (c == '\\') {
      if (j->p >= j->end) return -1;
      c = *j->p++;  // names with escapes are compared by their escaped-away form
    }
    if (n + 1 >= cap) return -1;
    out[n++] = c;
  }
  out[n] = 0;
  return eat(j, '"') ? 0 : -1;
}

static int json_int(Json *j, int64_t *v) {
  skip_ws(j);
  if (j->p >= j->end || *j->p < '0' || *j->p > '9') return -1;
  int64_t x = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    if (x > (INT64_MAX - 9) / 10) return -1;
    x = x * 10 + (*j->p++ - '0');
  }
  *v = x;
  return 0;
}

static int json_int_list(Json *j, int64_t *out, int cap, int *n) {
  *n = 0;
  if (!eat(j, '[')) return -1;
  if (eat(j, ']')) return 0;
  do {
    if (*n == cap || json_int(j, &out[*n])) return -1;
    (*n)++;
  } while (eat(j, ','));
  return eat(j, ']') ? 0 : -1;
}

// Skips __metadata__ (an object of strings).
static int json_skip_string_object(Json *j) {
  char tmp[1024];
  if (!eat(j, '{')) return -1;
  if (eat(j, '}')) return 0;
  do {
    if (json_string(j, tmp, sizeof tmp) || !eat(j, ':') || json_string(j, tmp, sizeof tmp)) return -1;
  } while (eat(j, ','));
  return eat(j, '}') ? 0 : -1;
}

static int json_tensor(Json *j, Tensor *t, int64_t *begin, int64_t *end) {
  char key[64], dtype[16] = "";
  int have_shape = 0, have_offsets = 0;
  if (!eat(j, '{')) return -1;
  do {
    if (json_string(j, key, sizeof key) || !eat(j, ':')) return -1;
    if (!strcmp(key, "dtype")) {
      if (json_string(j, dtype, sizeof dtype)) return -1;
    } else if (!strcmp(key, "shape")) {
      if (json_int_list(j, t->shape, MAX_RANK, &t->ndim)) return -1;
      have_shape = 1;
    } else if (!strcmp(key, "data_offsets")) {
      int64_t off[2];
      int n;
      if (json_int_list(j, off, 2, &n) || n != 2) return -1;
      *begin = off[0], *end = off[1];
      have_offsets = 1;
    } else {
      return -1;
    }
  } while (eat(j, ','));
  if (!eat(j, '}') || !have_shape || !have_offsets) return -1;
  return strcmp(dtype, "F32") ? -2 : 0;
}

static int load_safetensors(File *f, const char *path) {
  if (read_all(f, path)) return -1;
  if (f->len < 8) return fail(path, "not a safetensors file (too short)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->bytes[i];
  if (hlen > f->len - 8) return fail(path, "safetensors header runs past the end of the file");
  Json j = {(const char *)f->bytes + 8, (const char *)f->bytes + 8 + hlen};
  size_t data_len = f->len - 8 - hlen;
  const unsigned char *data = f->bytes + 8 + hlen;
  int cap = 0;
  if (!eat(&j, '{')) return fail(path, "safetensors header is not a JSON object");
  if (eat(&j, '}')) return 0;
  do {
    char name[256];
    if (json_string(&j, name, sizeof name) || !eat(&j, ':'))
      return fail(path, "bad safetensors header (tensor name)");
    if (!strcmp(name, "__metadata__")) {
      if (json_skip_string_object(&j)) return fail(path, "bad __metadata__");
      continue;
    }
    if (f->n == cap) {
      cap = cap ? 2 * cap : 16;
      f->tensors = realloc(f->tensors, cap * sizeof *f->tensors);
      if (!f->tensors) return fail(path, "out of memory");
    }
    Tensor *t = &f->tensors[f->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    int64_t begin = 0, end = 0;
    int rc = json_tensor(&j, t, &begin, &end);
    if (rc == -2) {
      fprintf(stderr, "compare: %s: tensor '%s' is not F32\n", path, name);
      return -1;
    }
    if (rc) {
      fprintf(stderr, "compare: %s: bad header entry for tensor '%s'\n", path, name);
      return -1;
    }
    t->size = checked_size(t->shape, t->ndim);
    if (t->size < 0 || begin > end || (uint64_t)end > data_len || end - begin != t->size * 4 || begin % 4) {
      fprintf(stderr, "compare: %s: tensor '%s': offsets do not fit its shape or the file\n", path, name);
      return -1;
    }
    t->data = data + begin;
    f->n++;
  } while (eat(&j, ','));
  if (!eat(&j, '}')) return fail(path, "bad safetensors header (expected '}')");
  return 0;
}

static const Tensor *find(const File *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

static void format_shape(const Tensor *t, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "[");
  for (int i = 0; i < t->ndim && n < (int)cap; i++)
    n += snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  if (n < (int)cap) snprintf(buf + n, cap - n, "]");
}

// Element i as a double; memcpy because a file's data need not be aligned.
static double at(const Tensor *t, int64_t i) {
  float v;
  memcpy(&v, t->data + 4 * i, 4);
  return v;
}

static int same_shape(const Tensor *a, const Tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

static int check_pred(const File *got, const File *want) {
  const Tensor *g = &got->tensors[0], *w = &want->tensors[0];
  char gs[128], ws[128];
  format_shape(g, gs, sizeof gs);
  format_shape(w, ws, sizeof ws);
  if (!same_shape(g, w)) {
    printf("  pred  shape %s, expected %s  FAIL\n", gs, ws);
    return 1;
  }
  if (w->size == 0) {
    printf("  pred  %s is empty  FAIL\n", ws);
    return 1;
  }
  // ratio: how much of the allowed error the worst element uses (<= 1 passes).
  double max_abs = 0, worst = -1;
  int64_t worst_at = 0;
  for (int64_t i = 0; i < w->size; i++) {
    double a = at(g, i), b = at(w, i);
    double err = isfinite(a) && isfinite(b) ? fabs(a - b) : INFINITY;
    double ratio = err / (PRED_ATOL + PRED_RTOL * fabs(b));
    if (err > max_abs) max_abs = err;
    if (ratio > worst) worst = ratio, worst_at = i;
  }
  int ok = worst <= 1.0;
  printf("  pred  %s  max |err| %.2e  worst %.2f of tolerance (at %lld: %.7g vs %.7g)  %s\n", ws,
         max_abs, worst, (long long)worst_at, at(g, worst_at), at(w, worst_at), ok ? "ok" : "FAIL");
  return !ok;
}

static int check_weights(const File *init, const File *got, const File *want) {
  const char *init_path = init->path, *got_path = got->path, *want_path = want->path;
  int failed = 0;
  if (want->n == 0) {
    printf("  %s has no tensors  FAIL\n", want_path);
    return 1;
  }
  for (int i = 0; i < want->n; i++) {
    const Tensor *w = &want->tensors[i], *g = find(got, w->name), *s = find(init, w->name);
    char shape[128];
    format_shape(w, shape, sizeof shape);
    if (!g || !s) {
      printf("  %-36s %s  missing from %s  FAIL\n", w->name, shape, !g ? got_path : init_path);
      failed++;
      continue;
    }
    if (!same_shape(g, w) || !same_shape(s, w)) {
      char other[128];
      format_shape(!same_shape(g, w) ? g : s, other, sizeof other);
      printf("  %-36s shape %s, expected %s  FAIL\n", w->name, other, shape);
      failed++;
      continue;
    }
    double diff2 = 0, upd2 = 0;
    for (int64_t k = 0; k < w->size; k++) {
      double d_want = at(w, k) - at(s, k), d_got = at(g, k) - at(s, k);
      diff2 += (d_got - d_want) * (d_got - d_want);
      upd2 += d_want * d_want;
    }
    double err = upd2 > 0 ? sqrt(diff2 / upd2) : INFINITY;
    int ok = upd2 > 0 && err <= UPDATE_RTOL;  // NaN fails too
    printf("  %-36s %-14s update err %.2e (|update| %.2e)  %s%s\n", w->name, shape, err, sqrt(upd2),
           ok ? "ok" : "FAIL", upd2 > 0 ? "" : " (golden update is zero: fixture tests nothing)");
    failed += !ok;
  }
  for (int i = 0; i < got->n; i++)
    if (!find(want, got->tensors[i].name)) {
      printf("  %-36s unexpected tensor in %s  FAIL\n", got->tensors[i].name, got_path);
      failed++;
    }
  return failed > 0;
}

int main(int argc, char **argv) {
  File f[3] = {0};
  int rc = 1;
  if (argc == 4 && !strcmp(argv[1], "pred")) {
    if (!load_npy(&f[0], argv[2]) && !load_npy(&f[1], argv[3])) rc = check_pred(&f[0], &f[1]);
  } else if (argc == 5 && !strcmp(argv[1], "weights")) {
    if (!load_safetensors(&f[0], argv[2]) && !load_safetensors(&f[1], argv[3]) &&
        !load_safetensors(&f[2], argv[4]))
      rc = check_weights(&f[0], &f[1], &f[2]);
  } else {
    rc = -1;
  }
  for (int i = 0; i < 3; i++) file_free(&f[i]);
  if (rc >= 0) return rc;
  fprintf(stderr,
          "usage: compare pred GOT.npy WANT.npy\n"
          "       compare weights INIT.safetensors GOT.safetensors WANT.safetensors\n");
  return 2;
}
