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
  static const char *const pg[] = {"fname", "dtype", "comments", "delimiter", "skip_header", "skip_footer", "converters",
                                   "missing_values", "filling_values", "usecols", "names"};
  const Expr *a[11] = {0};
  bool gen = csv && !strcmp(last_component(ast_dotted(call->fn) ? ast_dotted(call->fn) : ""), "genfromtxt");
  if (gen) {  // np.genfromtxt: the same reader; skip_header is loadtxt's skiprows
    const Expr *g[11];
    if (!bind_args(call, "np.genfromtxt", pg, 11, 2, g)) return value_error();
    for (int i = 5; i < 11; i++)
      if (g[i] && g[i]->kind != E_NONE && !(i == 10 && g[i]->kind == E_FALSE)) {
        diag_error(g[i]->loc, "np.genfromtxt argument '%s' is not supported%s", pg[i],
                   i == 10 ? " (structured arrays); use skip_header=1 and index columns, e.g. data[:, 0:8]" : "");
        return value_error();
      }
    a[0] = g[0], a[1] = g[1], a[2] = g[2], a[3] = g[3], a[5] = g[4], a[6] = g[9];
  } else if (!bind_args(call, csv ? "np.loadtxt" : "np.load", csv ? pt : pl, csv ? 9 : 5, csv ? 9 : 5, a)) return value_error();
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
  int64_t skip = 0, *cols = NULL;
  int n_cols = 0;
  bool col_index = false;
  if (csv) {
    if (a[1] && a[1]->kind != E_NONE) {  // dtype: numbers are read as float64 and become float32 per batch anyway
      Value *t = eval(a[1]);
      const char *tn = t->kind == V_STR ? t->s : t->kind == V_PATH ? last_component(t->s) : "";
      static const char *const ok_types[] = {"float", "float32", "float64", "int", "int32", "int64", "uint8", "f4", "f8", "i4", "i8"};
      if (t->kind == V_ERROR) return t;
      if (!in_list(tn, ok_types, 11)) {
        diag_error(a[1]->loc, "dtype %s is not supported (numeric types such as float or 'float32' are)", value_kind_name(t));
        return value_error();
      }
    }
    if (a[2] && a[2]->kind != E_NONE) {
      const char *c;
      if (!arg_str(a[2], "comments", &c)) return value_error();
      if (strcmp(c, "#")) { diag_error(a[2]->loc, "only comments='#' is supported"); return value_error(); }
    }
    if (a[5] && !arg_int(a[5], gen ? "skip_header" : "skiprows", 0, 1 << 30, &skip)) return value_error();
    if (a[6] && a[6]->kind != E_NONE) {
      Value *u = eval(a[6]);
      if (u->kind == V_ERROR) return u;
      Value one = {.kind = V_TUPLE}, *items[1] = {u};
      if (u->kind == V_INT) one.items = items, one.n = 1, col_index = true, u = &one;
      if ((u->kind != V_TUPLE && u->kind != V_LIST) || u->n < 1) {
        diag_error(a[6]->loc, "usecols must be a column number or a tuple of them");
        return value_error();
      }
      cols = xalloc(sizeof(int64_t) * u->n);
      for (int i = 0; i < u->n; i++) {
        if (u->items[i]->kind != V_INT) { diag_error(a[6]->loc, "usecols must hold integers"); return value_error(); }
        cols[n_cols++] = u->items[i]->i;
      }
    }
    for (int i = 4; i < 9; i++)
      if (a[i] && i != 5 && i != 6 && i != 8 && a[i]->kind != E_NONE) {
        diag_error(a[i]->loc, "np.loadtxt argument '%s' is not supported", pt[i]);
        return value_error();
      }
  }
  // NPY: its header; CSV has none, so the file is read as the program will read it.
  nn_data nd;
  if ((csv ? nn_load_csv_skip(&nd, path, delim, skip) : nn_probe_npy(&nd, path)) < 0) {
    diag_error(a[0]->loc, "%s", nn_last_error());
    return value_error();
  }
  DataValue d = {.source = csv ? DATA_CSV : DATA_NPY, .loc = call->loc, .path = path, .delimiter = delim, .skiprows = skip};
  bool ok = data_from_runtime(&d, &nd, a[0]->loc);
  nn_data_free(&nd);
  if (!ok) return value_error();
  if (n_cols) {
    if (d.shape.rank != 1) {
      diag_error(a[6]->loc, "usecols needs rows of several columns, but %s has shape per row of rank %d", path, d.shape.rank);
      return value_error();
    }
    for (int i = 0; i < n_cols; i++)
      if (cols[i] < -d.shape.dim[0] || cols[i] >= d.shape.dim[0]) {
        diag_error(a[6]->loc, "usecols: column %lld is out of range: %s has %lld columns", (long long)cols[i], path,
                   (long long)d.shape.dim[0]);
        return value_error();
      }
    d.selected = true, d.row_start = d.row_stop = INT64_MIN;
    d.cols = cols, d.n_cols = n_cols, d.col_index = col_index;
    d.shape.rank = col_index ? 0 : 1, d.shape.dim[0] = n_cols;
  }
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
  if (d.row_index) {  // img = x[0]; np.expand_dims(img, 0) is a batch of one again
    int rank = d.shape.rank;
    if (!arg_int(a[1], "axis", -rank - 1, rank, &axis)) return value_error();
    if (axis < 0) axis += rank + 1;
    if (axis == 0) {
      d.row_index = false;
      d.row_stop = d.row_start == -1 ? INT64_MIN : d.row_start + 1;
    }
    else if (d.shape.rank >= MAX_RANK) {
      diag_error(a[1]->loc, "at most %d dimensions per sample are supported", MAX_RANK);
      return value_error();
    } else {
      for (int i = d.shape.rank; i > axis; i--) d.shape.dim[i] = d.shape.dim[i - 1];
      d.shape.dim[axis] = 1;
      d.shape.rank++;
    }
    d.loc = call->loc;
    return data_value(sema_add_data(d), call->loc);
  }
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


// x[a:b] (rows), x[i] (one sample), x[:, a:b] and x[:, k] (columns of 2-D data): a new
// data value the program selects when it loads the data.
Value *data_select(const Value *dv, const Expr *e) {
  DataValue d = sema_program()->data[dv->i];
  const Expr *rowsub = e->rhs, *colsub = NULL;
  if (rowsub->kind == E_TUPLE) {
    if (rowsub->args.n != 2) {
      diag_error(rowsub->loc, "data can be indexed by rows, or by rows and columns, not %d axes", rowsub->args.n);
      return value_error();
    }
    colsub = rowsub->args.items[1];
    rowsub = rowsub->args.items[0];
  }
  // Selections compose when rows and columns are taken in turn (X = data[:, 0:8];
  // X[:200]), or rows of rows with bounds from the start (x[100:][:50]).
  bool rows_taken = d.selected && (d.row_start != INT64_MIN || d.row_stop != INT64_MIN || d.row_index);
  bool all_rows = rowsub->kind == E_SLICE && !rowsub->lhs && !rowsub->rhs && !rowsub->fn;
  int64_t base_start = 0, base_stop = INT64_MIN;
  if (rows_taken && !all_rows) {
    bool simple = !d.row_index && (d.row_start == INT64_MIN || d.row_start >= 0) && (d.row_stop == INT64_MIN || d.row_stop >= 0);
    if (simple && rowsub->kind != E_SLICE && !colsub) {  // y = y[:1000]; y[0]
      int64_t i;
      if (!arg_int(rowsub, "a row index", 0, (int64_t)1 << 48, &i)) return value_error();
      if (i >= d.rows) {
        diag_error(rowsub->loc, "index %lld is out of bounds for %lld rows", (long long)i, (long long)d.rows);
        return value_error();
      }
      d.row_start = (d.row_start == INT64_MIN ? 0 : d.row_start) + i;
      d.row_stop = INT64_MIN, d.row_index = true, d.rows = 1, d.loc = e->loc;
      return data_value(sema_add_data(d), e->loc);
    }
    if (!simple || rowsub->kind != E_SLICE || colsub) {
      diag_error(e->loc, "selecting rows of rows selected this way is not supported; select them in one slice");
      return value_error();
    }
    base_start = d.row_start == INT64_MIN ? 0 : d.row_start, base_stop = d.row_stop;
  }
  if ((colsub && d.n_cols) || d.onehot) {
    diag_error(e->loc, "%s; select rows and columns once, before to_categorical",
               d.onehot ? "indexing one-hot labels is not supported" : "selecting columns of selected columns is not supported");
    return value_error();
  }
  if (!d.selected) d.row_start = d.row_stop = INT64_MIN;
  d.selected = true;
  if (all_rows) {
    // x[:, cols]: the rows stay as they are
  } else if (rowsub->kind == E_SLICE && rows_taken) {
    int64_t b[2] = {0, INT64_MIN};
    const Expr *ends[2] = {rowsub->lhs, rowsub->rhs};
    if (rowsub->fn) {
      diag_error(rowsub->fn->loc, "slices of data with a step are not supported");
      return value_error();
    }
    for (int k = 0; k < 2; k++)
      if (ends[k] && (!arg_int(ends[k], "a slice bound", 0, (int64_t)1 << 48, &b[k]))) return value_error();
    d.row_start = base_start + b[0];
    d.row_stop = b[1] == INT64_MIN ? base_stop : base_stop == INT64_MIN ? base_start + b[1]
                                                : (base_start + b[1] < base_stop ? base_start + b[1] : base_stop);
    int64_t lo = b[0] < d.rows ? b[0] : d.rows, hi = b[1] == INT64_MIN || b[1] > d.rows ? d.rows : b[1];
    d.rows = hi > lo ? hi - lo : 0;
  } else if (rowsub->kind == E_SLICE) {
    const Expr *ends[2] = {rowsub->lhs, rowsub->rhs};
    int64_t b[2] = {0, d.rows}, *out[2] = {&d.row_start, &d.row_stop};
    if (rowsub->fn) {
      diag_error(rowsub->fn->loc, "slices of data with a step are not supported");
      return value_error();
    }
    for (int k = 0; k < 2; k++) {
      if (!ends[k]) continue;
      if (!arg_int(ends[k], "a slice bound", -((int64_t)1 << 48), (int64_t)1 << 48, out[k])) return value_error();
      b[k] = *out[k] < 0 ? *out[k] + d.rows : *out[k];
      b[k] = b[k] < 0 ? 0 : b[k] > d.rows ? d.rows : b[k];
    }
    d.rows = b[1] > b[0] ? b[1] - b[0] : 0;
  } else {
    int64_t i;
    if (!arg_int(rowsub, "a row index", -((int64_t)1 << 48), (int64_t)1 << 48, &i)) return value_error();
    if (d.rows > 0 && (i >= d.rows || i < -d.rows)) {
      diag_error(rowsub->loc, "index %lld is out of bounds for %lld rows", (long long)i, (long long)d.rows);
      return value_error();
    }
    d.row_start = i, d.row_index = true, d.rows = 1;
  }
  if (colsub) {
    if (d.shape.rank != 1) {
      diag_error(colsub->loc, "columns can be selected from 2-D data (rows, columns); this data has %d dimensions",
                 d.shape.rank + 1);
      return value_error();
    }
    int64_t w = d.shape.dim[0], lo, hi;
    if (colsub->kind == E_SLICE) {
      const Expr *ends[2] = {colsub->lhs, colsub->rhs};
      int64_t b[2] = {0, w};
      if (colsub->fn) {
        diag_error(colsub->fn->loc, "slices of data with a step are not supported");
        return value_error();
      }
      for (int k = 0; k < 2; k++) {
        if (!ends[k]) continue;
        if (!arg_int(ends[k], "a slice bound", -((int64_t)1 << 48), (int64_t)1 << 48, &b[k])) return value_error();
        if (b[k] < 0) b[k] += w;
        b[k] = b[k] < 0 ? 0 : b[k] > w ? w : b[k];
      }
      lo = b[0], hi = b[1] > b[0] ? b[1] : b[0];
      if (hi == lo) {
        diag_error(colsub->loc, "this slice selects no columns (the data have %lld)", (long long)w);
        return value_error();
      }
    } else {
      if (!arg_int(colsub, "a column index", -w, w - 1, &lo)) return value_error();
      if (lo < 0) lo += w;
      hi = lo + 1;
      d.col_index = true;
    }
    d.n_cols = (int)(hi - lo);
    d.cols = xalloc(sizeof(int64_t) * d.n_cols);
    for (int k = 0; k < d.n_cols; k++) d.cols[k] = lo + k;
    d.shape.rank = d.col_index ? 0 : 1;
    d.shape.dim[0] = d.n_cols;
  }
  d.loc = e->loc;
  return data_value(sema_add_data(d), e->loc);
}
