// script.c — what a script's own statements need at run time: print() of floats and
// shapes, x.shape, the data transforms sema recorded, and np.save of data.
#include "rt.h"

#include <stdio.h>
#include <stdlib.h>

void nn_print_float(double v) {
  char buf[64];
  nn_format_float(buf, sizeof buf, v);
  fputs(buf, stdout);
}

int nn_data_rank(const nn_data *d) { return (d->squeezed ? 0 : 1) + (d->onehot > 0 ? 1 : d->ndim); }

int64_t nn_data_dim(const nn_data *d, int k) {
  if (d->squeezed) k++;  // x[i]: one sample, no row axis
  if (k == 0) return d->rows;
  if (d->onehot > 0) return k == 1 ? d->onehot : 0;
  return k <= d->ndim ? d->shape[k - 1] : 0;
}

void nn_fprint_shape(FILE *f, const nn_data *d) {
  int rank = nn_data_rank(d);
  fputc('(', f);
  for (int k = 0; k < rank; k++) fprintf(f, "%s%lld", k ? ", " : "", (long long)nn_data_dim(d, k));
  fputs(rank == 1 ? ",)" : ")", f);
}

void nn_print_shape(const nn_data *d) { nn_fprint_shape(stdout, d); }

int nn_data_prepare(nn_data *d, int ndim, const int64_t *shape, double scale, int64_t onehot, const char *what) {
  int64_t size = 1;
  for (int i = 0; i < ndim; i++) size *= shape[i];
  // Reshape only when the sizes agree; otherwise the shape check below says what is wrong.
  if (d->row_size == size && nn_data_reshape(d, ndim, shape) < 0) return -1;
  d->scale = scale;
  d->onehot = onehot;
  return nn_data_expect_shape(d, ndim, shape, what);
}

int nn_save_data(const char *path, const nn_data *d) {
  int64_t width = nn_data_width(d), shape[6];
  int rank = nn_data_rank(d);
  for (int k = 0; k < rank && k < 6; k++) shape[k] = nn_data_dim(d, k);
  float *values = rt_alloc_array(d->rows, width, sizeof(float), path);
  int64_t *idx = values ? rt_alloc_array(d->rows, 1, sizeof(int64_t), path) : NULL;
  int rc = -1;
  if (values && idx) {
    for (int64_t i = 0; i < d->rows; i++) idx[i] = i;
    if (nn_data_gather(d, idx, d->rows, values) == 0) rc = nn_save_npy(path, values, rank, shape);
  }
  free(values);
  free(idx);
  return rc;
}
