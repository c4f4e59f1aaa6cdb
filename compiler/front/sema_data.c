// sema_data.c — data values: load_data(), np.array literals, np.load, np.loadtxt, and
// the transforms a script applies (reshape, astype, / and *, expand_dims,
// to_categorical), all on shapes: sample counts and per-sample shapes are known here,
// the numbers are read by the built program. File shapes come from the runtime's own
// loaders, so compile time and run time agree.
#include "sema_internal.h"
#include "nn.h"

#include <math.h>
#include <string.h>

int sema_add_data(DataValue d) {
  Program *prog = sema_program();
  prog->data = sema_grow(prog->data, prog->n_data, sizeof(DataValue));
  prog->data[prog->n_data] = d;
  return prog->n_data++;
}

static Value *data_value(int idx, Loc loc) {
  Value *v = value_new(V_DATA, loc);
  v->i = idx;
  return v;
}

static DataType data_type(nn_dtype t) {
  switch (t) {
  case NN_U8: return DT_UINT8;
  case NN_F32: return DT_FLOAT32;
  case NN_F64: return DT_FLOAT64;
  default: return DT_INT64;
  }
}

// A data value from what the runtime's loaders read of a file (header or whole file),
// so compile time and run time agree on shapes by construction.
static bool data_from_runtime(DataValue *d, const nn_data *nd, Loc loc) {
  if (nd->ndim > MAX_RANK) {
    diag_error(loc, "%s has %d dimensions per sample; at most %d are supported", nd->origin, nd->ndim, MAX_RANK);
    return false;
  }
  d->dtype = data_type(nd->dtype);
  d->rows = nd->rows;
  d->shape.rank = nd->ndim;
  for (int i = 0; i < nd->ndim; i++) d->shape.dim[i] = nd->shape[i];
  d->scale = 1;
  return true;
}

Value *load_dataset(const char *name, Loc loc) {
  Value *v = value_new(V_DATASETS, loc);
  v->s = name;
  v->items = xalloc(sizeof(Value *) * 4);
  v->n = 4;
  for (int part = 0; part < 4; part++) {
    DataValue d = {.source = DATA_DATASET, .loc = loc, .dataset = name, .part = part, .dtype = DT_UINT8,
                   .rows = part < 2 ? 60000 : 10000, .shape = {.rank = part % 2 ? 0 : 2, .dim = {28, 28}},
                   .scale = 1};
    // The MNIST family has fixed, documented shapes: a program can be compiled where the
    // files are absent; the built program looks for them (and says where) when it runs.
    // Where they are present, their headers must agree with what will be read.
    nn_data nd;
    int rc = nn_probe_dataset(&nd, name, part, sema_data_dir());
    if (rc < 0) {
      diag_error(loc, "%s", nn_last_error());
      return value_error();
    }
    if (rc == 0 && !data_from_runtime(&d, &nd, loc)) return value_error();
    v->items[part] = data_value(sema_add_data(d), loc);
  }
  return v;
}

// Nested np.array([...]) literal: shape from nesting, values row-major.
// The full shape of a literal: rows first, so one more dimension than a Shape holds.
typedef struct LiteralShape {
  int rank;
  int64_t dim[MAX_RANK + 1];
} LiteralShape;

static bool literal_shape(const Value *v, int depth, LiteralShape *full, bool *is_float) {
  if (v->kind == V_INT || v->kind == V_FLOAT || v->kind == V_BOOL) {
    if (v->kind == V_FLOAT) *is_float = true;
    if (depth != full->rank) return false;
    return true;
  }
  if (v->kind != V_LIST && v->kind != V_TUPLE) return false;
  if (depth >= MAX_RANK + 1) return false;
  if (depth == full->rank) {
    full->dim[full->rank++] = v->n;
  } else if (full->dim[depth] != v->n) {
    return false;
  }
  for (int i = 0; i < v->n; i++)
    if (!literal_shape(v->items[i], depth + 1, full, is_float)) return false;
  return true;
}

static void literal_values(const Value *v, double *out, int64_t *k) {
  if (v->kind == V_LIST || v->kind == V_TUPLE) {
    for (int i = 0; i < v->n; i++) literal_values(v->items[i], out, k);
  } else {
    out[(*k)++] = v->f;
  }
}

Value *np_array(const Expr *call) {
  static const char *const p[] = {"object", "dtype", "copy", "order", "ndmin"};
  const Expr *a[5];
  if (!bind_args(call, "np.array", p, 5, 2, a)) return value_error();
  if (!a[0]) {
    diag_error(call->loc, "np.array() needs a list of numbers");
    return value_error();
  }
  Value *v = eval(a[0]);
  if (v->kind == V_ERROR) return v;
  if (v->kind == V_DATA) return v;  // np.array(x) of data is the data itself
  LiteralShape full = {0};
  bool is_float = false;
  if ((v->kind != V_LIST && v->kind != V_TUPLE) || v->n == 0 ||
      !literal_shape(v, 0, &full, &is_float)) {
    diag_error(a[0]->loc, "np.array() needs a non-empty, rectangular list of numbers (at most %d levels deep)", MAX_RANK + 1);
    return value_error();
  }
  int64_t count = 1;
  for (int i = 0; i < full.rank; i++)
    if (!mul_ok(count, full.dim[i], &count) || count > (1 << 26)) {
      diag_error(a[0]->loc, "np.array() literal is too large; load large data from a file");
      return value_error();
    }
  DataValue d = {.source = DATA_LITERAL, .loc = call->loc, .dtype = is_float ? DT_FLOAT64 : DT_INT64,
                 .rows = full.dim[0], .scale = 1};
  d.shape.rank = full.rank - 1;
  for (int i = 1; i < full.rank; i++) d.shape.dim[i - 1] = full.dim[i];
  d.literal = xalloc(sizeof(double) * count);
  int64_t k = 0;
  literal_values(v, d.literal, &k);
  if (a[1]) {
    Value *dt = eval(a[1]);
    const char *n = dt->kind == V_STR ? dt->s : dt->kind == V_PATH ? last_component(dt->s) : "";
    if (strstr(n, "float")) d.dtype = DT_FLOAT64;
    else if (strstr(n, "int")) d.dtype = DT_INT64;
  }
  return data_value(sema_add_data(d), call->loc);
}

Value *np_file(const Expr *call, bool csv) {
  static const char *const pl[] = {"file", "mmap_mode", "allow_pickle", "fix_imports", "encoding"};
  static const char *const pt[] = {"fname", "dtype", "comments", "delimiter", "converters", "skiprows", "usecols", "unpack", "ndmin"};
  const Expr *a[9];
  if (!bind_args(call, csv ? "np.loadtxt" : "np.load", csv ? pt : pl, csv ? 9 : 5, csv ? 9 : 5, a)) return value_error();
  const char *path;
  if (!a[0]) {
    diag_error(call->loc, "%s() needs a file name", csv ? "np.loadtxt" : "np.load");
    return value_error();
  }
  if (!arg_str(a[0], "file name", &path)) return value_error();
  char delim = ' ';
  if (csv && a[3]) {
    const char *ds;
    if (!arg_str(a[3], "delimiter", &ds)) return value_error();
    if (strlen(ds) != 1) {
      diag_error(a[3]->loc, "delimiter must be one character");
      return value_error();
    }
    delim = ds[0];
  }
  if (csv) {
    for (int i = 4; i < 9; i++)
      if (a[i] && i != 8) {
        diag_error(a[i]->loc, "np.loadtxt argument '%s' is not supported", pt[i]);
        return value_error();
      }
  }
  // NPY: its header; CSV has none, so the file is read as the program will read it.
  nn_data nd;
  if ((csv ? nn_load_csv(&nd, path, delim) : nn_probe_npy(&nd, path)) < 0) {
    diag_error(a[0]->loc, "%s", nn_last_error());
    return value_error();
  }
  DataValue d = {.source = csv ? DATA_CSV : DATA_NPY, .loc = call->loc, .path = path, .delimiter = delim};
  bool ok = data_from_runtime(&d, &nd, a[0]->loc);
  nn_data_free(&nd);
  if (!ok) return value_error();
  return data_value(sema_add_data(d), call->loc);
}

void sema_shape_with_rows(const DataValue *d, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "(%lld", (long long)d->rows);
  Shape s = d->shape;
  if (d->onehot) s.rank = 1, s.dim[0] = d->onehot;
  for (int i = 0; i < s.rank && n < (int)cap; i++) n += snprintf(buf + n, cap - n, ", %lld", (long long)s.dim[i]);
  snprintf(buf + n, cap - n, s.rank == 0 ? ",)" : ")");
}

// x.reshape(-1, 28, 28, 1) / x.reshape((60000, 784))
Value *data_reshape(const Value *dv, const Expr *call) {
  DataValue d = sema_program()->data[dv->i];
  if (d.onehot) {
    diag_error(call->loc, "reshape after to_categorical is not supported");
    return value_error();
  }
  const ExprList *args = &call->args;
  Value *tuple = NULL;
  if (args->n == 1) {
    tuple = eval(args->items[0]);
    if (tuple->kind == V_INT) {
      Value *t = value_new(V_TUPLE, tuple->loc);
      t->items = xalloc(sizeof(Value *));
      t->items[0] = tuple, t->n = 1;
      tuple = t;
    }
  } else {
    tuple = value_new(V_TUPLE, call->loc);
    tuple->items = xalloc(sizeof(Value *) * (args->n + 1));
    for (int i = 0; i < args->n; i++) tuple->items[tuple->n++] = eval(args->items[i]);
  }
  if (tuple->kind == V_ERROR) return tuple;
  if ((tuple->kind != V_TUPLE && tuple->kind != V_LIST) || tuple->n < 1 || tuple->n > MAX_RANK + 1 || call->kwargs.n) {
    diag_error(call->loc, "reshape() needs 1 to %d integer dimensions", MAX_RANK + 1);
    return value_error();
  }
  int64_t total = d.rows, known = 1;
  for (int i = 0; i < d.shape.rank; i++) mul_ok(total, d.shape.dim[i], &total);
  int minus = -1;
  int64_t dims[MAX_RANK + 1] = {0};
  for (int i = 0; i < tuple->n; i++) {
    Value *x = tuple->items[i];
    if (x->kind == V_ERROR) return x;
    if (x->kind != V_INT || (x->i < 1 && x->i != -1) || (x->i == -1 && minus >= 0)) {
      diag_error(call->loc, "reshape() dimensions must be positive integers and at most one -1");
      return value_error();
    }
    dims[i] = x->i;
    if (x->i == -1) minus = i;
    else if (!mul_ok(known, x->i, &known)) known = -1;
  }
  if (minus >= 0 && known > 0 && total % known == 0) dims[minus] = total / known, known = total;
  if (known != total) {
    char sb[160];
    sema_shape_with_rows(&d, sb, sizeof sb);
    diag_error(call->loc, "cannot reshape data of shape %s (%lld values) into the requested shape", sb, (long long)total);
    return value_error();
  }
  if (tuple->n == 1) {
    d.shape.rank = 0;
  } else {
    // The first dimension is the samples: it must stay the number of rows.
    if (dims[0] != d.rows) {
      diag_error(call->loc, "reshape() must keep the number of samples (%lld) first, got %lld; use -1 there",
                 (long long)d.rows, (long long)dims[0]);
      return value_error();
    }
    d.shape.rank = tuple->n - 1;
    for (int i = 1; i < tuple->n; i++) d.shape.dim[i - 1] = dims[i];
  }
  if (tuple->n == 1) d.rows = dims[0];
  d.loc = call->loc;
  return data_value(sema_add_data(d), call->loc);
}

Value *data_astype(const Value *dv, const Expr *call) {
  static const char *const p[] = {"dtype", "order", "casting", "subok", "copy"};
  const Expr *a[5];
  if (!bind_args(call, "astype", p, 5, 5, a)) return value_error();
  if (!a[0]) {
    diag_error(call->loc, "astype() needs a dtype such as 'float32'");
    return value_error();
  }
  Value *t = eval(a[0]);
  const char *n = t->kind == V_STR ? t->s : t->kind == V_PATH ? last_component(t->s) : NULL;
  static const char *const ok_types[] = {"float32", "float64", "float", "int32", "int64", "int", "uint8", "double"};
  if (!n || !in_list(n, ok_types, (int)(sizeof ok_types / sizeof *ok_types))) {
    diag_error(a[0]->loc, "astype() supports float32, float64, int32, int64 and uint8");
    return value_error();
  }
  // The conversion happens when batches are formed; float64 data is computed in float32.
  return (Value *)dv;
}

Value *data_scale(const Value *dv, double factor, Loc loc) {
  DataValue d = sema_program()->data[dv->i];
  if (d.onehot) {
    diag_error(loc, "arithmetic on one-hot labels is not supported");
    return value_error();
  }
  d.scale *= factor;
  d.loc = loc;
  return data_value(sema_add_data(d), loc);
}

Value *to_categorical(const Expr *call) {
  static const char *const p[] = {"x", "num_classes", "dtype"};
  const Expr *a[3];
  if (!bind_args(call, "to_categorical", p, 3, 3, a)) return value_error();
  if (!a[0]) {
    diag_error(call->loc, "to_categorical() needs the labels");
    return value_error();
  }
  Value *y = eval(a[0]);
  if (y->kind == V_ERROR) return y;
  if (y->kind != V_DATA) {
    diag_error(a[0]->loc, "to_categorical() needs label data, got %s", value_kind_name(y));
    return value_error();
  }
  DataValue d = sema_program()->data[y->i];
  if (d.onehot || !(d.shape.rank == 0 || (d.shape.rank == 1 && d.shape.dim[0] == 1))) {
    char sb[160];
    sema_shape_with_rows(&d, sb, sizeof sb);
    diag_error(a[0]->loc, "to_categorical() needs one integer label per sample, got data of shape %s", sb);
    return value_error();
  }
  int64_t classes = 0;
  if (a[1]) {
    if (!arg_int(a[1], "num_classes", 1, 1 << 24, &classes)) return value_error();
  } else if (d.source == DATA_LITERAL) {
    for (int64_t i = 0; i < d.rows; i++)
      if (d.literal[i] + 1 > classes) classes = (int64_t)d.literal[i] + 1;
  } else if (d.source == DATA_DATASET) {
    classes = 10;  // every MNIST-family set has labels 0..9
  } else {
    diag_error(call->loc, "to_categorical() needs num_classes= here: nnc fixes shapes at compile time");
    return value_error();
  }
  if (d.source == DATA_LITERAL)
    for (int64_t i = 0; i < d.rows; i++)
      if (d.literal[i] < 0 || d.literal[i] >= classes || d.literal[i] != floor(d.literal[i])) {
        diag_error(a[0]->loc, "label %g is not an integer in [0, %lld)", d.literal[i], (long long)classes);
        return value_error();
      }
  d.onehot = classes;
  d.loc = call->loc;
  return data_value(sema_add_data(d), call->loc);
}

Value *expand_dims(const Expr *call) {
  static const char *const p[] = {"a", "axis"};
  const Expr *a[2];
  if (!bind_args(call, "np.expand_dims", p, 2, 2, a)) return value_error();
  if (!a[0] || !a[1]) {
    diag_error(call->loc, "np.expand_dims() needs the data and an axis");
    return value_error();
  }
  Value *x = eval(a[0]);
  if (x->kind == V_ERROR) return x;
  if (x->kind != V_DATA) {
    diag_error(a[0]->loc, "np.expand_dims() needs data, got %s", value_kind_name(x));
    return value_error();
  }
  DataValue d = sema_program()->data[x->i];
  int64_t axis;
  int full_rank = d.shape.rank + 1;
  if (!arg_int(a[1], "axis", -full_rank - 1, full_rank, &axis)) return value_error();
  if (axis < 0) axis += full_rank + 1;
  if (axis == 0 || d.shape.rank >= MAX_RANK || d.onehot) {
    diag_error(a[1]->loc, "np.expand_dims() can add a per-sample axis (axis >= 1 or -1), not the sample axis");
    return value_error();
  }
  int at = (int)axis - 1;
  for (int i = d.shape.rank; i > at; i--) d.shape.dim[i] = d.shape.dim[i - 1];
  d.shape.dim[at] = 1;
  d.shape.rank++;
  d.loc = call->loc;
  return data_value(sema_add_data(d), call->loc);
}

