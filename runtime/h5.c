// h5.c — Keras's HDF5 weights layouts, through libhdf5.
//
// Keras 3 (.weights.h5, and model.weights.h5 inside a .keras archive):
//   /vars                         (the model's own variables: none; attribute name="sequential")
//   /layers/<class>[_N]/vars/<i>  one group per layer, the Input excluded, named after the
//                                 layer's class in snake case, numbered per class in order
//                                 (dense, dense_1, conv2d, max_pooling2d, ...), whatever
//                                 the layer's name; datasets "0", "1", ... in the layer's
//                                 order (kernel, bias; gamma, beta, moving_mean,
//                                 moving_variance); each vars group has attribute name.
// Keras 2 (.h5): attribute layer_names on the root (weights only) or on /model_weights (a
//   whole model, beside the attributes model_config and training_config); one group per
//   layer named after the layer, attribute weight_names, datasets at those names
//   ("dense/kernel:0"). Readers match layers by order, as Keras does.
//
// Files are built in memory (the core driver, no backing store) and written through
// rt_atomic, so a crash never leaves a half-written file; they are read into memory first
// too, so that only regular files are opened and .keras archives share the reader.
// Needs: the model's layer table (nn_model.layers). Guarantees: a load checks the whole
// file against the model (layers, counts, shapes, numeric types) before any weight changes.
#include "rt.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#define KERAS_VERSION "3.0.0"   // the Keras API level nnc follows (files say which Keras wrote them)

// libhdf5 prints its error stack on stderr by default: we report our own messages.
static void h5_quiet(void) {
  static bool done;
  if (!done) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  done = true;
}

//
// Names
//

// Keras's to_snake_case of a class name: "MaxPooling2D" → "max_pooling2d",
// "BatchNormalization" → "batch_normalization", "LeakyReLU" → "leaky_re_lu".
static void snake_case(const char *cls, char *out, size_t cap) {
  char tmp[256];
  size_t n = 0;
  // (.)([A-Z][a-z]+) → \1_\2
  for (size_t i = 0; cls[i] && n + 2 < sizeof tmp; i++) {
    unsigned char c = cls[i];
    if (i > 0 && c >= 'A' && c <= 'Z' && cls[i + 1] >= 'a' && cls[i + 1] <= 'z') tmp[n++] = '_';
    tmp[n++] = c;
  }
  tmp[n] = 0;
  // ([a-z])([A-Z]) → \1_\2, then lower case
  size_t k = 0;
  for (size_t i = 0; tmp[i] && k + 2 < cap; i++) {
    unsigned char c = tmp[i];
    if (i > 0 && c >= 'A' && c <= 'Z' && tmp[i - 1] >= 'a' && tmp[i - 1] <= 'z') out[k++] = '_';
    out[k++] = (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
  }
  out[k] = 0;
}

// The Keras 3 group of layer i: "layers/dense_1".
static void keras3_layer_path(const nn_model *m, int i, char *out, size_t cap) {
  char base[256], other[256];
  snake_case(m->layers[i].class_name, base, sizeof base);
  int seen = 0;
  for (int k = 0; k < i; k++) {
    snake_case(m->layers[k].class_name, other, sizeof other);
    seen += strcmp(base, other) == 0;
  }
  if (seen) snprintf(out, cap, "layers/%s_%d", base, seen);
  else snprintf(out, cap, "layers/%s", base);
}

// The weight's own name: "kernel" of "dense_1.kernel".
static const char *weight_name(const nn_model *m, const nn_layer *l, int k) {
  const char *full = m->params[l->first_param + k].name;
  size_t n = strlen(l->name);
  return strncmp(full, l->name, n) == 0 && full[n] == '.' ? full + n + 1 : full;
}

static int check_layers(const nn_model *m, const char *path) {
  if (!m->layers)
    return rt_error("%s: this program was built without the model's layer table (nnc's bug)", path);
  for (int i = 0; i < m->n_layers; i++) {
    const nn_layer *l = &m->layers[i];
    if (l->first_param < 0 || l->n_params < 0 || l->first_param + l->n_params > m->n_params)
      return rt_error("%s: layer '%s' names weights the model does not have (nnc's bug)", path, l->name);
  }
  return 0;
}

//
// Writing
//

static hid_t memory_file_create(void) {
  static int serial;
  char name[64];
  snprintf(name, sizeof name, "nnc-memory-%d.h5", serial++);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return -1;
  hid_t f = -1;
  if (H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0) f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  return f;
}

static hid_t string_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// Attribute: one string (scalar) or an array of n strings (rank 1), variable length, UTF-8,
// as h5py writes Python strings.
static int put_strings(hid_t obj, const char *name, const char *const *values, int n, bool scalar) {
  hid_t t = string_type();
  hsize_t dim = (hsize_t)n;
  hid_t s = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a >= 0 && (n == 0 || H5Awrite(a, t, values) >= 0) ? 0 : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
  return rc;
}

static int put_string(hid_t obj, const char *name, const char *value) {
  return put_strings(obj, name, &value, 1, true);
}

// A dataset of the param's shape holding data (float32), or a scalar of type file_type
// holding *scalar (of type mem_type) when p is NULL.
static int put_array(hid_t loc, const char *name, const nn_param *p, const float *data, hid_t file_type,
                     hid_t mem_type, const void *scalar) {
  hsize_t dims[4];
  for (int d = 0; p && d < p->ndim; d++) dims[d] = (hsize_t)p->shape[d];
  hid_t s = p && p->ndim ? H5Screate_simple(p->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);   // Keras 2 names hold a '/': "dense/kernel:0"
  hid_t d = H5Dcreate2(loc, name, p ? H5T_IEEE_F32LE : file_type, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  bool empty = p && p->size == 0;
  int rc = d >= 0 && (empty || H5Dwrite(d, p ? H5T_NATIVE_FLOAT : mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                        p ? (const void *)data : scalar) >= 0) ? 0 : -1;
  if (d >= 0) H5Dclose(d);
  H5Pclose(lcpl);
  H5Sclose(s);
  return rc;
}

static int put_param(hid_t loc, const char *name, const nn_param *p) { return put_array(loc, name, p, p->value, 0, 0, NULL); }

static hid_t make_group(hid_t loc, const char *name) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t g = H5Gcreate2(loc, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  return g;
}

// Keras 3's optimizer variables after iterations and learning_rate, as (param, slot) pairs:
// Adam a momentum and a velocity per trained weight in turn; SGD a momentum each (only with
// momentum); RMSprop every velocity, then every momentum (with momentum), then every
// average gradient (centered). Returns the count; NULL arrays just count.
static int keras_slot_order(const nn_model *m, int *param, int *slot) {
  bool adam = !strcmp(m->opt_name, "adam"), sgd = !strcmp(m->opt_name, "SGD");
  int passes[3][2] = {{0, 1}, {1, 1}, {2, 1}}, n_passes;   // {slot, used}
  if (adam) n_passes = 1;
  else if (sgd) n_passes = 1, passes[0][1] = m->opt_momentum;
  else n_passes = 3, passes[1][1] = m->opt_momentum, passes[2][1] = m->opt_centered;
  int n = 0;
  for (int pass = 0; pass < n_passes; pass++) {
    if (!passes[pass][1]) continue;
    for (int i = 0; i < m->n_params; i++) {
      if (m->opt_offset[i] < 0) continue;
      for (int k = 0; k < (adam ? 2 : 1); k++, n++)
        if (param) param[n] = i, slot[n] = adam ? k : passes[pass][0];
    }
  }
  return n;
}

static int64_t slot_at(const nn_model *m, int param, int slot) {
  return m->opt_offset[param] + slot * m->params[param].size;
}

static bool has_optimizer(const nn_model *m) {
  if (!m->opt_name || !m->opt_offset || !m->optimizer_state) return false;
  int slots = !strcmp(m->opt_name, "adam") ? 2 : !strcmp(m->opt_name, "SGD") ? 1 : 3;
  for (int i = 0; i < m->n_params; i++)   // the table must fit the buffer (nnc's bug otherwise)
    if (m->opt_offset[i] >= 0 && slot_at(m, i, slots) > m->optimizer_elems) return false;
  return true;
}

static int write_optimizer(const nn_model *m, hid_t f) {
  int n = keras_slot_order(m, NULL, NULL);
  int *param = malloc(sizeof(int) * (n + 1)), *slot = malloc(sizeof(int) * (n + 1));
  float *buf = malloc(sizeof(float) * (m->optimizer_elems + 1));
  hid_t g = param && slot && buf ? make_group(f, "optimizer/vars") : -1;
  int rc = g >= 0 && put_string(g, "name", m->opt_name) == 0 ? 0 : -1;
  if (rc == 0) {
    int64_t step;
    m->optimizer_state((nn_model *)m, buf, &step, true);
    float lr = (float)m->opt_lr;
    keras_slot_order(m, param, slot);
    rc = put_array(g, "0", NULL, NULL, H5T_STD_I64LE, H5T_NATIVE_INT64, &step);
    if (rc == 0) rc = put_array(g, "1", NULL, NULL, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &lr);
    for (int k = 0; k < n && rc == 0; k++) {
      char idx[16];
      snprintf(idx, sizeof idx, "%d", k + 2);
      rc = put_array(g, idx, &m->params[param[k]], buf + slot_at(m, param[k], slot[k]), 0, 0, NULL);
    }
  }
  if (g >= 0) H5Gclose(g);
  free(param);
  free(slot);
  free(buf);
  return rc;
}

static int write_keras3(const nn_model *m, hid_t f) {
  hid_t root_vars = make_group(f, "vars");
  int rc = root_vars >= 0 && put_string(root_vars, "name", m->name ? m->name : "sequential") == 0 ? 0 : -1;
  if (root_vars >= 0) H5Gclose(root_vars);
  for (int i = 0; i < m->n_layers && rc == 0; i++) {
    const nn_layer *l = &m->layers[i];
    char path[300];
    keras3_layer_path(m, i, path, sizeof path);
    strncat(path, "/vars", sizeof path - strlen(path) - 1);
    hid_t g = make_group(f, path);
    if (g < 0 || put_string(g, "name", l->name) != 0) rc = -1;
    for (int k = 0; k < l->n_params && rc == 0; k++) {
      char idx[16];
      snprintf(idx, sizeof idx, "%d", k);
      rc = put_param(g, idx, &m->params[l->first_param + k]);
    }
    if (g >= 0) H5Gclose(g);
  }
  if (rc == 0 && has_optimizer(m)) rc = write_optimizer(m, f);
  return rc;
}

// Keras 2's layout under g (the root, or /model_weights).
static int write_legacy_weights(const nn_model *m, hid_t g) {
  const char **names = malloc(sizeof(char *) * (m->n_layers + 1));
  if (!names) return -1;
  for (int i = 0; i < m->n_layers; i++) names[i] = m->layers[i].name;
  int rc = put_strings(g, "layer_names", names, m->n_layers, false);
  free(names);
  if (rc == 0) rc = put_string(g, "backend", "tensorflow");
  if (rc == 0) rc = put_string(g, "keras_version", KERAS_VERSION);
  for (int i = 0; i < m->n_layers && rc == 0; i++) {
    const nn_layer *l = &m->layers[i];
    hid_t lg = H5Gcreate2(g, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (lg < 0) return -1;
    char **wn = calloc(l->n_params + 1, sizeof(char *));
    for (int k = 0; wn && k < l->n_params; k++) {
      size_t cap = strlen(l->name) + strlen(weight_name(m, l, k)) + 4;
      wn[k] = malloc(cap);
      if (wn[k]) snprintf(wn[k], cap, "%s/%s:0", l->name, weight_name(m, l, k));
      else rc = -1;
    }
    if (!wn) rc = -1;
    if (rc == 0) rc = put_strings(lg, "weight_names", (const char *const *)wn, l->n_params, false);
    for (int k = 0; k < l->n_params && rc == 0; k++) rc = put_param(lg, wn[k], &m->params[l->first_param + k]);
    for (int k = 0; wn && k < l->n_params; k++) free(wn[k]);
    free(wn);
    H5Gclose(lg);
  }
  return rc;
}

typedef enum { LAYOUT_KERAS3, LAYOUT_LEGACY_WEIGHTS, LAYOUT_LEGACY_MODEL } layout;

static int write_layout(const nn_model *m, hid_t f, layout lay) {
  if (lay == LAYOUT_KERAS3) return write_keras3(m, f);
  if (lay == LAYOUT_LEGACY_WEIGHTS) return write_legacy_weights(m, f);
  if (!m->keras_config) return -1;
  int rc = put_string(f, "backend", "tensorflow");
  if (rc == 0) rc = put_string(f, "keras_version", KERAS_VERSION);
  if (rc == 0) rc = put_string(f, "model_config", m->keras_config);
  if (rc == 0 && m->training_config) rc = put_string(f, "training_config", m->training_config);
  hid_t g = rc == 0 ? H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  if (g < 0) return -1;
  rc = write_legacy_weights(m, g);
  H5Gclose(g);
  return rc;
}

// The file's bytes, malloc'ed; NULL (message printed) on failure.
static void *h5_image(const nn_model *m, layout lay, size_t *size, const char *path) {
  h5_quiet();
  if (check_layers(m, path) != 0) return NULL;
  if (lay == LAYOUT_LEGACY_MODEL && !m->keras_config) {
    rt_error("%s: this program was built without the model's Keras config (nnc's bug)", path);
    return NULL;
  }
  nn_model_pull_params((nn_model *)m);   // refreshes the host copy only
  hid_t f = memory_file_create();
  if (f < 0) {
    rt_error("%s: libhdf5 cannot create a file in memory", path);
    return NULL;
  }
  void *image = NULL;
  ssize_t n = -1;
  if (write_layout(m, f, lay) == 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0) n = H5Fget_file_image(f, NULL, 0);
  if (n > 0 && (image = malloc((size_t)n)) && H5Fget_file_image(f, image, (size_t)n) != n) {
    free(image);
    image = NULL;
  }
  H5Fclose(f);
  if (!image) {
    rt_error("%s: libhdf5 failed to build the file (out of memory?)", path);
    return NULL;
  }
  *size = (size_t)n;
  return image;
}

void *rt_h5_weights_image(const nn_model *m, size_t *size, const char *path) {
  return h5_image(m, LAYOUT_KERAS3, size, path);
}

static int save_layout(const nn_model *m, const char *path, layout lay) {
  size_t size;
  void *image = h5_image(m, lay, &size, path);
  if (!image) return -1;
  rt_atomic a;
  if (rt_atomic_open(&a, path) != 0) {
    free(image);
    return -1;
  }
  fwrite(image, 1, size, a.f);
  free(image);
  return rt_atomic_commit(&a);
}

int nn_save_weights_h5(const nn_model *m, const char *path) { return save_layout(m, path, LAYOUT_KERAS3); }
int nn_save_legacy_h5_weights(const nn_model *m, const char *path) { return save_layout(m, path, LAYOUT_LEGACY_WEIGHTS); }
int nn_save_legacy_h5_model(const nn_model *m, const char *path) { return save_layout(m, path, LAYOUT_LEGACY_MODEL); }

//
// Reading
//

typedef struct reader {
  const nn_model *m;
  const char *path;        // for messages
  hid_t f;
  float **values;          // per param, read before anything is copied into the model
  float *opt;              // the optimizer's slots from the file (NULL: none or not fitting)
  int64_t opt_step;
  bool quiet;              // a mismatch is not an error (the optimizer's variables)
} reader;

#include <stdarg.h>
static int fail(const reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const reader *r, const char *fmt, ...) {
  if (r->quiet) return -1;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rt_error("%s", msg);
}

static bool exists(hid_t loc, const char *name) {
  // H5Lexists checks one component: walk the path so that "a/b/c" works.
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", name);
  size_t at = 0, n = strlen(buf);
  while (at <= n) {
    char *slash = strchr(buf + at, '/');
    if (slash) *slash = 0;
    if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return false;
    if (!slash) return true;
    *slash = '/';
    at = (size_t)(slash - buf) + 1;
  }
  return true;
}

static bool is_group(hid_t loc, const char *name) {
  if (!exists(loc, name)) return false;
  H5O_info_t info;
  return H5Oget_info_by_name(loc, name, &info, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_GROUP;
}

// Reads dataset loc/name into r->values[pi] (or into `into`), after checking its shape and type.
static int read_array(reader *r, hid_t loc, const char *name, int pi, const char *where, float *into);

static int read_param(reader *r, hid_t loc, const char *name, int pi, const char *where) {
  return read_array(r, loc, name, pi, where, NULL);
}

static int read_array(reader *r, hid_t loc, const char *name, int pi, const char *where, float *into) {
  const nn_param *p = &r->m->params[pi];
  if (!exists(loc, name)) return fail(r, "%s: weight '%s' is missing from the file (no %s)", r->path, p->name, where);
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return fail(r, "%s: %s is not a dataset", r->path, where);
  hid_t s = H5Dget_space(d), t = H5Dget_type(d);
  int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  hsize_t dims[32];
  int rc = 0;
  if (rank < 0 || rank > 32 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
    rc = fail(r, "%s: %s has an unreadable shape", r->path, where);
  } else if (t < 0 || (H5Tget_class(t) != H5T_FLOAT && H5Tget_class(t) != H5T_INTEGER)) {
    rc = fail(r, "%s: %s does not hold numbers", r->path, where);
  } else {
    bool same = rank == p->ndim;
    for (int k = 0; same && k < rank; k++) same = dims[k] == (hsize_t)p->shape[k];
    if (!same) {
      int64_t have[32];
      for (int k = 0; k < rank; k++) have[k] = (int64_t)dims[k];
      char hs[256], ws[128];
      rt_format_shape(hs, sizeof hs, rank, have, false);
      rt_format_shape(ws, sizeof ws, p->ndim, p->shape, false);
      rc = fail(r, "%s: weight '%s' has shape %s in the file (%s), the model needs %s", r->path, p->name, hs, where,
                    ws);
    }
  }
  if (rc == 0) {
    float *out = into ? into : (r->values[pi] = malloc(sizeof(float) * (size_t)p->size + 1));
    if (!out) rc = fail(r, "out of memory");
    else if (p->size > 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
      rc = fail(r, "%s: cannot read %s (a truncated or damaged file?)", r->path, where);
  }
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  H5Dclose(d);
  return rc;
}

static int count_links(hid_t loc, const char *name, hsize_t *n) {
  hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
  if (g < 0) return -1;
  H5G_info_t info;
  int rc = H5Gget_info(g, &info) >= 0 ? 0 : -1;
  *n = info.nlinks;
  H5Gclose(g);
  return rc;
}

typedef struct extra_layer { const reader *r; char found[256]; } extra_layer;

// An entry of /layers that no layer of the model claims, holding weights.
static herr_t find_extra_layer(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  extra_layer *e = data;
  const nn_model *m = e->r->m;
  for (int i = 0; i < m->n_layers; i++) {
    char path[300];
    keras3_layer_path(m, i, path, sizeof path);
    if (strcmp(path + strlen("layers/"), name) == 0) return 0;
  }
  char vars[300];
  snprintf(vars, sizeof vars, "%s/vars", name);
  hsize_t n = 0;
  if (is_group(g, vars) && count_links(g, vars, &n) == 0 && n == 0) return 0;
  snprintf(e->found, sizeof e->found, "%s", name);
  return 1;
}

// The optimizer's variables, where the file has them for this model's optimizer (same
// count and shapes); otherwise, as Keras does, a warning and the optimizer is left alone.
static void read_optimizer(reader *r) {
  const nn_model *m = r->m;
  hsize_t n = 0;
  if (!has_optimizer(m) || !is_group(r->f, "optimizer/vars") || count_links(r->f, "optimizer/vars", &n) != 0) return;
  int want = keras_slot_order(m, NULL, NULL);
  int *param = malloc(sizeof(int) * (want + 1)), *slot = malloc(sizeof(int) * (want + 1));
  r->opt = calloc(m->optimizer_elems + 1, sizeof(float));
  bool ok = param && slot && r->opt && n == (hsize_t)want + 2;
  if (ok) {
    keras_slot_order(m, param, slot);
    hid_t d = H5Dopen2(r->f, "optimizer/vars/0", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 &&
         H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &r->opt_step) >= 0 && r->opt_step >= 0;
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    r->quiet = true;   // a mismatch is a warning below, not an error
    for (int k = 0; k < want && ok; k++) {
      char path[64];
      snprintf(path, sizeof path, "optimizer/vars/%d", k + 2);
      ok = read_array(r, r->f, path, param[k], path, r->opt + slot_at(m, param[k], slot[k])) == 0;
    }
    r->quiet = false;
  }
  if (!ok) {
    rt_warn("%s: its optimizer state (%llu variables) does not fit this model's %s (%d): not loaded", r->path,
            (unsigned long long)n, m->opt_name, want + 2);
    free(r->opt);
    r->opt = NULL;
  }
  free(param);
  free(slot);
}

static int read_keras3(reader *r) {
  const nn_model *m = r->m;
  for (int i = 0; i < m->n_layers; i++) {
    const nn_layer *l = &m->layers[i];
    if (l->n_params == 0) continue;
    char path[300];
    keras3_layer_path(m, i, path, sizeof path);
    strncat(path, "/vars", sizeof path - strlen(path) - 1);
    hsize_t n = 0;
    if (!is_group(r->f, path) || count_links(r->f, path, &n) != 0)
      return rt_error("%s: the weights of layer '%s' are missing (no group /%s)", r->path, l->name, path);
    if (n != (hsize_t)l->n_params)
      return rt_error("%s: layer '%s' has %d weights, the file %llu (/%s)", r->path, l->name, l->n_params,
                      (unsigned long long)n, path);
    for (int k = 0; k < l->n_params; k++) {
      char ds[320];
      snprintf(ds, sizeof ds, "%s/%d", path, k);
      if (read_param(r, r->f, ds, l->first_param + k, ds) != 0) return -1;
    }
  }
  extra_layer e = {.r = r};
  hsize_t idx = 0;
  hid_t layers = H5Gopen2(r->f, "layers", H5P_DEFAULT);
  if (layers < 0) return rt_error("%s: /layers is not a group", r->path);
  herr_t found = H5Literate(layers, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, find_extra_layer, &e);
  H5Gclose(layers);
  if (found > 0)
    return rt_error("%s: the file has weights for a layer the model does not have (/layers/%s)", r->path, e.found);
  if (found < 0) return rt_error("%s: cannot list /layers (a damaged file?)", r->path);
  read_optimizer(r);
  return 0;
}

// A string attribute (scalar or rank 1, fixed or variable length) as malloc'ed copies.
static int get_strings(const reader *r, hid_t obj, const char *name, char ***out, int *count, const char *where) {
  *out = NULL;
  *count = 0;
  if (H5Aexists(obj, name) <= 0) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a >= 0 ? H5Aget_type(a) : -1, s = a >= 0 ? H5Aget_space(a) : -1;
  hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  int rc = 0;
  if (t < 0 || s < 0 || n < 0) rc = rt_error("%s: attribute %s of %s is unreadable", r->path, name, where);
  else if (H5Tget_class(t) != H5T_STRING && n > 0) rc = rt_error("%s: attribute %s of %s is not text", r->path, name, where);
  else if (n > 100000) rc = rt_error("%s: attribute %s of %s holds too many names", r->path, name, where);
  char **v = rc == 0 ? calloc((size_t)n + 1, sizeof(char *)) : NULL;
  if (rc == 0 && !v) rc = rt_error("out of memory");
  if (rc == 0 && n > 0) {
    if (H5Tis_variable_str(t) > 0) {
      hid_t mt = string_type();
      H5Tset_cset(mt, H5Tget_cset(t));   // libhdf5 converts no character sets
      char **raw = calloc((size_t)n, sizeof(char *));
      if (!raw || H5Aread(a, mt, raw) < 0) rc = rt_error("%s: cannot read attribute %s of %s", r->path, name, where);
      for (hssize_t i = 0; raw && i < n; i++) {
        if (rc == 0) v[i] = strdup(raw[i] ? raw[i] : "");
        if (raw[i]) H5free_memory(raw[i]);
      }
      free(raw);
      H5Tclose(mt);
    } else {
      size_t size = H5Tget_size(t);
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, size);
      H5Tset_cset(mt, H5Tget_cset(t));
      char *raw = size && size < (1u << 20) ? calloc((size_t)n, size) : NULL;
      if (!raw || H5Aread(a, mt, raw) < 0) rc = rt_error("%s: cannot read attribute %s of %s", r->path, name, where);
      for (hssize_t i = 0; rc == 0 && i < n; i++) v[i] = strndup(raw + i * size, size);
      free(raw);
      H5Tclose(mt);
    }
    for (hssize_t i = 0; rc == 0 && i < n; i++)
      if (!v[i]) rc = rt_error("out of memory");
  }
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (a >= 0) H5Aclose(a);
  if (rc != 0) {
    for (hssize_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
    return -1;
  }
  *out = v;
  *count = (int)n;
  return 0;
}

static void free_strings(char **v, int n) {
  for (int i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

// Keras 2: the layers that hold weights, in order, matched with the model's.
static int read_legacy(reader *r, hid_t g, const char *root) {
  const nn_model *m = r->m;
  char **layers;
  int n_layers;
  if (get_strings(r, g, "layer_names", &layers, &n_layers, root) != 0) return -1;
  int rc = 0, model_at = 0, file_with = 0;
  for (int i = 0; i < n_layers && rc == 0; i++) {
    if (!is_group(g, layers[i])) {
      rc = rt_error("%s: layer_names lists '%s', but %s has no such group", r->path, layers[i], root);
      break;
    }
    hid_t lg = H5Gopen2(g, layers[i], H5P_DEFAULT);
    char **wn = NULL;
    int n_w = 0;
    rc = lg >= 0 ? get_strings(r, lg, "weight_names", &wn, &n_w, layers[i]) : -1;
    if (rc == 0 && n_w > 0) {
      file_with++;
      while (model_at < m->n_layers && m->layers[model_at].n_params == 0) model_at++;
      if (model_at == m->n_layers) {
        rc = rt_error("%s: the file has weights for more layers than the model (from '%s' on)", r->path, layers[i]);
      } else {
        const nn_layer *l = &m->layers[model_at++];
        if (n_w != l->n_params)
          rc = rt_error("%s: layer '%s' has %d weights, the file's layer '%s' %d", r->path, l->name, l->n_params,
                        layers[i], n_w);
        for (int k = 0; k < n_w && rc == 0; k++) {
          char where[600];
          snprintf(where, sizeof where, "%s/%s/%s", root, layers[i], wn[k]);
          rc = read_param(r, lg, wn[k], l->first_param + k, where);
        }
      }
    }
    free_strings(wn, n_w);
    if (lg >= 0) H5Gclose(lg);
  }
  free_strings(layers, n_layers);
  if (rc != 0) return -1;
  while (model_at < m->n_layers && m->layers[model_at].n_params == 0) model_at++;
  if (model_at < m->n_layers)
    return rt_error("%s: the file has weights for %d layers; the model's layer '%s' has none there", r->path,
                    file_with, m->layers[model_at].name);
  return 0;
}

static const unsigned char h5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

int rt_h5_load_image(nn_model *m, const void *image, size_t size, const char *path) {
  h5_quiet();
  if (check_layers(m, path) != 0) return -1;
  // HDF5 allows a user block of 512, 1024, ... bytes before the superblock.
  bool magic = false;
  for (size_t at = 0; at + 8 <= size && !magic; at = at ? at * 2 : 512)
    magic = memcmp((const char *)image + at, h5_magic, 8) == 0;
  if (!magic) return rt_error("%s: not an HDF5 file (no HDF5 signature)", path);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  hid_t f = -1;
  if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 && H5Pset_file_image(fapl, (void *)image, size) >= 0) {
    static int serial;
    char name[64];
    snprintf(name, sizeof name, "nnc-read-%d.h5", serial++);
    f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
  }
  if (fapl >= 0) H5Pclose(fapl);
  if (f < 0) return rt_error("%s: libhdf5 cannot open it (a truncated or damaged HDF5 file?)", path);
  reader r = {.m = m, .path = path, .f = f, .values = calloc(m->n_params + 1, sizeof(float *))};
  int rc;
  if (!r.values) rc = rt_error("out of memory");
  else if (is_group(f, "layers")) rc = read_keras3(&r);
  else if (is_group(f, "model_weights")) {
    hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
    rc = g >= 0 ? read_legacy(&r, g, "/model_weights") : rt_error("%s: cannot open /model_weights", path);
    if (g >= 0) H5Gclose(g);
  } else if (H5Aexists(f, "layer_names") > 0) rc = read_legacy(&r, f, "/");
  else rc = rt_error("%s: an HDF5 file, but not Keras weights (no /layers group, no layer_names attribute)", path);
  if (rc == 0) {
    for (int i = 0; i < m->n_params; i++)
      if (r.values[i]) memcpy(m->params[i].value, r.values[i], sizeof(float) * m->params[i].size);
    nn_model_push_params(m);
    if (r.opt) m->optimizer_state(m, r.opt, &r.opt_step, false);
  }
  for (int i = 0; r.values && i < m->n_params; i++) free(r.values[i]);
  free(r.values);
  free(r.opt);
  H5Fclose(f);
  return rc;
}

int nn_load_weights_h5(nn_model *m, const char *path) {
  size_t size;
  char *image = rt_read_file(path, &size);
  if (!image) return -1;
  int rc = rt_h5_load_image(m, image, size, path);
  free(image);
  return rc;
}
