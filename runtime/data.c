// data.c — in-memory data sets: batch gathering (scale, one-hot), reshape, splits.
//
// Samples stay in their file's type (uint8 pixels stay bytes); nn_data_gather turns
// the rows of one batch into float32, which is the only conversion the loop pays for.
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t nn_data_width(const nn_data *d) {
  return d->onehot > 0 ? d->row_size * d->onehot : d->row_size;
}

static double element(const nn_data *d, int64_t i) {
  switch (d->dtype) {
  case NN_U8: return ((const uint8_t *)d->buf)[i];
  case NN_F32: return ((const float *)d->buf)[i];
  case NN_F64: return ((const double *)d->buf)[i];
  case NN_I64: return (double)((const int64_t *)d->buf)[i];
  }
  return 0;
}

void rt_set_shape(nn_data *d, int64_t rows, int ndim, const int64_t *per_sample) {
  d->rows = rows;
  d->ndim = ndim;
  d->row_size = 1;
  for (int i = 0; i < ndim; i++) {
    d->shape[i] = per_sample[i];
    d->row_size *= per_sample[i];
  }
}

int rt_check_class_labels(const nn_data *y, int64_t classes) {
  int64_t count = y->rows * y->row_size;
  for (int64_t i = 0; i < count; i++) {
    double v = element(y, i) * y->scale;
    if (!(v >= 0 && v < (double)classes) || v != floor(v))
      return rt_error("%s: label %g in row %lld is not a class index in [0, %lld) for the model's %lld outputs",
                      y->origin, v, (long long)(i / (y->row_size ? y->row_size : 1)), (long long)classes,
                      (long long)classes);
  }
  return 0;
}

int nn_data_gather(const nn_data *d, const int64_t *idx, int64_t n, float *out) {
  int64_t rs = d->row_size;
  for (int64_t i = 0; i < n; i++) {
    int64_t r = idx[i];
    if (r < 0 || r >= d->rows)
      return rt_error("%s: row %lld out of range (%lld rows)", d->origin, (long long)r,
                      (long long)d->rows);
    if (d->onehot > 0) {
      int64_t k = d->onehot;
      float *o = out + i * rs * k;
      memset(o, 0, sizeof(float) * rs * k);
      for (int64_t j = 0; j < rs; j++) {
        double v = element(d, r * rs + j);
        if (!(v >= 0 && v < (double)k) || v != floor(v))
          return rt_error("%s: label %g in row %lld is not a class in [0, %lld) for to_categorical",
                          d->origin, v, (long long)r, (long long)k);
        o[j * k + (int64_t)v] = (float)d->scale;
      }
      continue;
    }
    float *o = out + i * rs;
    int64_t base = r * rs;
    // The common cases get their own loops so they vectorize.
    if (d->dtype == NN_U8) {
      const uint8_t *s = (const uint8_t *)d->buf + base;
      if (d->scale == 1)
        for (int64_t j = 0; j < rs; j++) o[j] = s[j];
      else
        for (int64_t j = 0; j < rs; j++) o[j] = (float)((double)s[j] * d->scale);
    } else if (d->dtype == NN_F32 && d->scale == 1) {
      memcpy(o, (const float *)d->buf + base, sizeof(float) * rs);
    } else {
      for (int64_t j = 0; j < rs; j++) o[j] = (float)(element(d, base + j) * d->scale);
    }
  }
  return 0;
}

static int64_t shape_product(int ndim, const int64_t *shape) {
  int64_t p = 1;
  for (int i = 0; i < ndim; i++) p *= shape[i];
  return p;
}

int nn_data_reshape(nn_data *d, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > 4)
    return rt_error("%s: reshape to rank %d per sample (at most 4 supported)", d->origin, ndim);
  int64_t s[4], known = 1;
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (s[i] == -1 && infer < 0)
      infer = i;
    else if (s[i] <= 0)
      return rt_error("%s: cannot reshape: dimension %lld", d->origin, (long long)s[i]);
    else
      known *= s[i];
  }
  if (infer >= 0) {
    if (d->row_size % known != 0)
      goto mismatch;
    s[infer] = d->row_size / known;
  }
  if (shape_product(ndim, s) != d->row_size)
    goto mismatch;
  d->ndim = ndim;
  memcpy(d->shape, s, sizeof(int64_t) * ndim);
  return 0;
mismatch:;
  char have[128], want[128];
  rt_format_shape(have, sizeof have, d->ndim, d->shape, true);
  rt_format_shape(want, sizeof want, ndim, shape, true);
  return rt_error("%s: cannot reshape samples of shape %s (%lld values) to %s", d->origin, have,
                  (long long)d->row_size, want);
}

static void copy_rows(const nn_data *d, int64_t from, int64_t rows, nn_data *out) {
  *out = *d;
  out->rows = rows;
  size_t bytes = rt_dtype_size(d->dtype) * d->row_size;
  out->buf = malloc(bytes * rows + 1);
  if (out->buf && rows > 0)
    memcpy(out->buf, (const char *)d->buf + bytes * from, bytes * rows);
}

void nn_data_split_tail(const nn_data *d, double fraction, nn_data *head, nn_data *tail) {
  int64_t at = rt_split_at(d->rows, fraction);
  if (at < 0) at = 0;
  if (at > d->rows) at = d->rows;
  copy_rows(d, 0, at, head);
  copy_rows(d, at, d->rows - at, tail);
}

void nn_data_free(nn_data *d) {
  free(d->buf);
  memset(d, 0, sizeof *d);
}

int nn_data_from_values(nn_data *out, const double *values, int64_t rows, int ndim,
                        const int64_t *shape) {
  memset(out, 0, sizeof *out);
  snprintf(out->origin, sizeof out->origin, "np.array literal");
  if (rows < 0 || ndim < 0 || ndim > 4)
    return rt_error("np.array literal: unsupported shape");
  out->dtype = NN_F64;
  out->rows = rows;
  out->ndim = ndim;
  out->row_size = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return rt_error("np.array literal: negative dimension");
    out->shape[i] = shape[i];
    out->row_size *= shape[i];
  }
  out->scale = 1;
  out->buf = malloc(sizeof(double) * rows * out->row_size + 1);
  if (!out->buf)
    return rt_error("out of memory");
  if (rows * out->row_size > 0)
    memcpy(out->buf, values, sizeof(double) * rows * out->row_size);
  return 0;
}

int nn_data_expect_shape(const nn_data *d, int ndim, const int64_t *shape, const char *what) {
  bool same = d->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = d->shape[i] == shape[i];
  if (same)
    return 0;
  char have[128], want[128];
  rt_format_shape(have, sizeof have, d->ndim, d->shape, true);
  rt_format_shape(want, sizeof want, ndim, shape, true);
  return rt_error("%s (%s): samples have shape %s, but the program was built for %s; "
                  "rebuild it for this data",
                  what, d->origin, have, want);
}
