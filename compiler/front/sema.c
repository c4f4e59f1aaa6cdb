// sema.c — meaning of a .nn script.
//
// Needs: the statements from parse_source. Runs the script on compile-time values
// (data are shapes, not numbers), fills in Keras defaults, checks every argument and
// shape, and records what the program will do. Guarantees on success: a Program whose
// layers have output shapes and exact parameter counts, whose data values have shapes
// matching the model where they meet it, and whose actions are in script order.
#include "sema_internal.h"
#include "nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static Program *prog;
static const char *data_dir;

//
// Values and variables
//
// Variables: a list in binding order (for did-you-mean) and hash chains (for lookup,
// so scripts with many names stay linear).
typedef struct Var { const char *name; Value *value; struct Var *next, *chain; } Var;
static Var *vars;
enum { VAR_BUCKETS = 4096 };
static Var *var_buckets[VAR_BUCKETS];

static unsigned name_hash(const char *s) {
  unsigned h = 2166136261u;  // FNV-1a
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h % VAR_BUCKETS;
}
static Value *model;  // the one Sequential model, once created
static int history_keys(const Value *h, const char *const **out);

Value *value_new(ValueKind kind, Loc loc) {
  Value *v = xalloc(sizeof(Value));
  v->kind = kind;
  v->loc = loc;
  return v;
}

Value *value_error(void) {
  static Value err = {.kind = V_ERROR};
  return &err;
}

static const char *value_kind_name_rt(const Value *v) {
  return v->rt.kind == P_HIST ? "a history list" : v->rt.kind == P_DATA ? "data" : "a number known at run time";
}

const char *value_kind_name(const Value *v) {
  switch (v->kind) {
  case V_ERROR: return "an invalid value";
  case V_NONE: return "None";
  case V_INT: return "an integer";
  case V_FLOAT: return "a number";
  case V_BOOL: return "a boolean";
  case V_STR: return "a string";
  case V_TUPLE: return "a tuple";
  case V_LIST: return "a list";
  case V_PATH: return xprintf("'%s'", v->s);
  case V_LAYER: return "a layer";
  case V_MODEL: return "the model";
  case V_METHOD: return xprintf("the method '%s'", v->s);
  case V_DATA: return "a data array";
  case V_DATASETS: return "a load_data() result";
  case V_SHAPE: return "a shape";
  case V_OPT: return "an optimizer";
  case V_LOSS: return "a loss";
  case V_METRIC: return "a metric";
  case V_REG: return "a regularizer";
  case V_CALLBACK: return "a callback";
  case V_RESULT: return "an evaluate() result";
  case V_RESULT_ITEM: return "a number from evaluate()";
  case V_HISTORY: return "a training history";
  case V_HISTDICT: return "history.history";
  case V_RUNTIME: return value_kind_name_rt(v);
  case V_TEXT: return "a formatted string";
  }
  return "a value";
}

static Var *find_var(const char *name) {
  for (Var *v = var_buckets[name_hash(name)]; v; v = v->chain)
    if (strcmp(v->name, name) == 0) return v;
  return NULL;
}

static Value *lookup(const char *name) {
  Var *v = find_var(name);
  return v ? v->value : NULL;
}

static void bind(const char *name, Value *value) {
  Var *v = find_var(name);
  if (v) {
    v->value = value;
    return;
  }
  v = xalloc(sizeof(Var));
  unsigned h = name_hash(name);
  v->name = name, v->value = value, v->next = vars, v->chain = var_buckets[h];
  vars = v;
  var_buckets[h] = v;
}

// Module roots a Keras script uses without (or with) importing them.
static const char *const module_roots[] = {
    "tf", "tensorflow", "keras", "np", "numpy", "layers", "models", "optimizers", "losses", "metrics",
    "callbacks", "regularizers", "utils", "datasets", "activations", "initializers", "fashion_mnist", "mnist", "nn",
    "matplotlib", "plt",
};

// Functions and classes that may be called by their bare name (after `from … import`).
static const char *const known_functions[] = {
    "Sequential", "print", "to_categorical", "l1", "l2", "l1_l2", "L1", "L2", "L1L2", "SGD", "Adam", "RMSprop",
    "EarlyStopping", "ModelCheckpoint", "CSVLogger", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
    "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "SparseCategoricalAccuracy",
    "CategoricalAccuracy", "BinaryAccuracy", "Accuracy", "load_data", "relu", "sigmoid", "tanh", "softmax", "linear",
    "len", "range", "float", "int", "str",
};

bool in_list(const char *s, const char *const *list, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0) return true;
  return false;
}
#define IN(s, arr) in_list((s), (arr), (int)(sizeof(arr) / sizeof(arr[0])))

const char *last_component(const char *path) {
  const char *dot = strrchr(path, '.');
  return dot ? dot + 1 : path;
}

// Undefined name: say so, and suggest a variable or known name that is close.
static Value *undefined_name(const Expr *e) {
  const char *cands[256];
  int n = 0;
  for (Var *v = vars; v && n < 200; v = v->next) cands[n++] = v->name;
  for (int i = 0; i < (int)(sizeof known_functions / sizeof *known_functions) && n < 240; i++) cands[n++] = known_functions[i];
  for (int i = 0; i < n_layer_class_names && n < 256; i++) cands[n++] = layer_class_names[i];
  diag_error(e->loc, "name '%s' is not defined", e->name);
  const char *best = diag_closest(e->name, cands, n);
  if (best) diag_note("did you mean '%s'?", best);
  return value_error();
}

//
// Argument binding and typed readers
//
bool bind_args(const Expr *call, const char *fname, const char *const *params, int nparams, int npos,
               const Expr **args) {
  bool ok = true;
  for (int i = 0; i < nparams; i++) args[i] = NULL;
  if (call->args.n > npos) {
    diag_error(call->args.items[npos]->loc, "%s() takes at most %d positional argument%s but %d were given", fname,
               npos, npos == 1 ? "" : "s", call->args.n);
    ok = false;
  }
  for (int i = 0; i < call->args.n && i < npos; i++) args[i] = call->args.items[i];
  for (int k = 0; k < call->kwargs.n; k++) {
    const Expr *a = call->kwargs.items[k];
    int found = -1;
    for (int i = 0; i < nparams; i++)
      if (strcmp(params[i], a->kwname) == 0) found = i;
    if (found < 0) {
      diag_error(a->loc, "%s() got an unexpected keyword argument '%s'", fname, a->kwname);
      const char *best = diag_closest(a->kwname, params, nparams);
      if (best) diag_note("did you mean '%s'?", best);
      ok = false;
    } else if (args[found]) {
      diag_error(a->loc, "%s() got multiple values for argument '%s'", fname, a->kwname);
      ok = false;
    } else {
      args[found] = a;
    }
  }
  return ok;
}

static bool number_of(const Value *v, double *out) {
  if (v->kind == V_INT || v->kind == V_FLOAT) { *out = v->f; return true; }
  if (v->kind == V_BOOL) { *out = (double)v->i; return true; }
  return false;
}

bool arg_int(const Expr *e, const char *what, int64_t lo, int64_t hi, int64_t *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind == V_FLOAT && v->f == floor(v->f) && fabs(v->f) < 9e15) {
    v = value_new(V_INT, v->loc), v->i = (int64_t)eval(e)->f;
  }
  if (v->kind != V_INT) {
    diag_error(e->loc, "%s must be an integer, got %s", what, value_kind_name(v));
    return false;
  }
  if (v->i < lo || v->i > hi) {
    // A huge bound is an implementation limit: name the side that was crossed.
    if (hi >= INT32_MAX && v->i < lo) diag_error(e->loc, "%s must be at least %lld, got %lld", what, (long long)lo, (long long)v->i);
    else if (hi >= INT32_MAX) diag_error(e->loc, "%s must be at most %lld, got %lld", what, (long long)hi, (long long)v->i);
    else diag_error(e->loc, "%s must be in [%lld, %lld], got %lld", what, (long long)lo, (long long)hi, (long long)v->i);
    return false;
  }
  *out = v->i;
  return true;
}

bool arg_float(const Expr *e, const char *what, double lo, double hi, bool lo_open, double *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  double d;
  if (v->kind == V_BOOL || !number_of(v, &d)) {
    diag_error(e->loc, "%s must be a number, got %s", what, value_kind_name(v));
    return false;
  }
  if (!isfinite(d) || d < lo || d > hi || (lo_open && d == lo)) {
    diag_error(e->loc, "%s must be %s %g%s, got %g", what, lo_open ? ">" : ">=", lo,
               hi < 1e10 ? xprintf(" and <= %g", hi) : "", d);
    return false;
  }
  *out = d;
  return true;
}

bool arg_bool(const Expr *e, const char *what, bool *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind != V_BOOL) {
    diag_error(e->loc, "%s must be True or False, got %s", what, value_kind_name(v));
    return false;
  }
  *out = v->i != 0;
  return true;
}

bool arg_str(const Expr *e, const char *what, const char **out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind != V_STR) {
    diag_error(e->loc, "%s must be a string, got %s", what, value_kind_name(v));
    return false;
  }
  *out = v->s;
  return true;
}

bool arg_ints(const Expr *e, const char *what, int n, int64_t lo, int64_t hi, int64_t *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind == V_INT) {
    if (v->i < lo || v->i > hi) {
      diag_error(e->loc, "%s must be in [%lld, %lld], got %lld", what, (long long)lo, (long long)hi, (long long)v->i);
      return false;
    }
    for (int i = 0; i < n; i++) out[i] = v->i;
    return true;
  }
  if ((v->kind != V_TUPLE && v->kind != V_LIST) || v->n != n) {
    diag_error(e->loc, "%s must be an integer or a tuple of %d integers, got %s", what, n, value_kind_name(v));
    return false;
  }
  for (int i = 0; i < n; i++) {
    Value *d = v->items[i];
    if (d->kind != V_INT || d->i < lo || d->i > hi) {
      diag_error(e->loc, "%s must hold integers in [%lld, %lld]", what, (long long)lo, (long long)hi);
      return false;
    }
    out[i] = d->i;
  }
  return true;
}

bool arg_shape(const Expr *e, const char *what, Shape *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind == V_INT) {  // input_shape=784 is a common slip for (784,)
    diag_error(e->loc, "%s must be a tuple, e.g. (%lld,)", what, (long long)v->i);
    return false;
  }
  if (v->kind == V_SHAPE) {  // input_shape=x_train.shape[1:] is not supported; x.shape is the full shape
    diag_error(e->loc, "%s must be a tuple of per-sample dimensions", what);
    return false;
  }
  if ((v->kind != V_TUPLE && v->kind != V_LIST) || v->n < 1) {
    diag_error(e->loc, "%s must be a non-empty tuple of positive integers, got %s", what, value_kind_name(v));
    return false;
  }
  if (v->n > MAX_RANK) {
    diag_error(e->loc, "%s has %d dimensions; at most %d are supported", what, v->n, MAX_RANK);
    return false;
  }
  out->rank = v->n;
  for (int i = 0; i < v->n; i++) {
    Value *d = v->items[i];
    if (d->kind == V_NONE) {
      diag_error(e->loc, "%s: variable dimensions (None) are not supported; nnc compiles fixed shapes", what);
      return false;
    }
    if (d->kind != V_INT || d->i < 1 || d->i > INT32_MAX) {
      diag_error(e->loc, "%s must hold positive integers (at most %d)", what, INT32_MAX);
      return false;
    }
    out->dim[i] = d->i;
  }
  return true;
}

static const char *const activation_names[] = {
#define OP(...)
#define ACT(name, op, param) #name,
#include "ops.def"
#undef ACT
#undef OP
};
static const double activation_params[] = {
#define OP(...)
#define ACT(name, op, param) param,
#include "ops.def"
#undef ACT
#undef OP
};
static const char *const unsupported_activations[] = {"softsign", "relu6", "exponential", "mish", "log_softmax",
                                                      "hard_silu", "hard_swish", "crelu"};

const char *activation_name(Activation a) { return activation_names[a]; }
double activation_default_param(Activation a) { return activation_params[a]; }

// "linear, relu, sigmoid, ..." for messages.
static const char *supported_activations(void) {
  const char *list = activation_names[0];
  for (int i = 1; i < ACT_COUNT; i++) list = xprintf("%s, %s", list, activation_names[i]);
  return list;
}

bool arg_activation(const Expr *e, Activation *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind == V_NONE) { *out = ACT_linear; return true; }
  const char *name = v->kind == V_STR ? v->s : v->kind == V_PATH ? last_component(v->s) : NULL;
  if (!name) {
    diag_error(e->loc, "activation must be a name such as 'relu', got %s", value_kind_name(v));
    return false;
  }
  for (int i = 0; i < ACT_COUNT; i++)
    if (strcmp(name, activation_names[i]) == 0) { *out = (Activation)i; return true; }
  if (IN(name, unsupported_activations)) {
    diag_error(e->loc, "activation '%s' is not supported yet (supported: %s)", name, supported_activations());
    return false;
  }
  diag_error(e->loc, "unknown activation '%s'", name);
  const char *best = diag_closest(name, activation_names, ACT_COUNT);
  if (best) diag_note("did you mean '%s'?", best);
  else diag_note("supported: %s", supported_activations());
  return false;
}

static const char *const init_names[] = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                                         "lecun_uniform", "lecun_normal", "zeros", "ones",
                                         "random_normal", "random_uniform"};
static const char *const init_classes[] = {"GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
                                           "LecunNormal", "Zeros", "Ones", "RandomNormal", "RandomUniform"};

const char *initializer_name(Initializer i) { return init_names[i]; }

bool arg_initializer(const Expr *e, const char *what, Initializer *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  const char *name = v->kind == V_STR ? v->s : v->kind == V_PATH ? last_component(v->s) : NULL;
  if (!name) {
    diag_error(e->loc, "%s must be a name such as 'he_normal', got %s", what, value_kind_name(v));
    return false;
  }
  for (int i = 0; i < 10; i++)
    if (!strcmp(name, init_names[i]) || !strcmp(name, init_classes[i])) { *out = (Initializer)i; return true; }
  if (!strcmp(name, "zero")) { *out = INIT_ZEROS; return true; }
  if (!strcmp(name, "one")) { *out = INIT_ONES; return true; }
  diag_error(e->loc, "unknown %s '%s'", what, name);
  const char *best = diag_closest(name, init_names, 10);
  if (best) diag_note("did you mean '%s'?", best);
  return false;
}

// Program arrays grow by doubling, so a script of many statements stays linear: the
// capacity is the next power of two, so a full array is one of 0, 1, 2, 4, ... items.
void *sema_grow(void *items, int n, size_t size) {
  if (n != 0 && (n & (n - 1)) != 0) return items;
  void *more = xalloc(size * (size_t)(n ? 2 * n : 1));
  if (n) memcpy(more, items, size * (size_t)n);
  return more;
}

//
// Actions
//
static Action *add_action(ActionKind kind, Loc loc) {
  prog->actions = sema_grow(prog->actions, prog->n_actions, sizeof(Action));
  Action *a = &prog->actions[prog->n_actions++];
  a->kind = kind, a->loc = loc;
  a->x = a->y = a->val_x = a->val_y = -1;
  a->verbose = -1;
  a->shuffle = true;
  return a;
}

// The shared state other sema files reach through these (sema_internal.h).
Program *sema_program(void) { return prog; }
Value **sema_model_slot(void) { return &model; }
const char *sema_data_dir(void) { return data_dir; }
Action *sema_add_action(ActionKind kind, Loc loc) { return add_action(kind, loc); }

//
// Evaluation
//
static Value *call_path(const char *path, const Expr *call) {
  const char *fn = last_component(path);
  // The second-to-last component, for dataset modules and numpy functions.
  const char *dot = strrchr(path, '.');
  const char *owner = "";
  if (dot) {
    const char *p = dot;
    while (p > path && p[-1] != '.') p--;
    owner = xstrndup(p, dot - p);
  }
  bool numpy = !strcmp(owner, "np") || !strcmp(owner, "numpy");
  if (is_layer_class(fn)) return layer_construct(fn, call);
  if (!strcmp(fn, "Sequential")) return model_new(call);
  if (!strcmp(fn, "load_data")) {
    if (call->args.n || call->kwargs.n) {
      diag_error(call->loc, "load_data() takes no arguments here");
      return value_error();
    }
    if (!strcmp(owner, "fashion_mnist")) return load_dataset("fashion-mnist", call->loc);
    if (!strcmp(owner, "mnist")) return load_dataset("mnist", call->loc);
    diag_error(call->loc, "unknown data set '%s'; supported: fashion_mnist, mnist", owner);
    return value_error();
  }
  if (numpy && !strcmp(fn, "array")) return np_array(call);
  if (numpy && (!strcmp(fn, "asarray"))) return np_array(call);
  if (numpy && !strcmp(fn, "load")) return np_file(call, false);
  if (numpy && !strcmp(fn, "loadtxt")) return np_file(call, true);
  if (numpy && !strcmp(fn, "expand_dims")) return expand_dims(call);
  if (numpy && !strcmp(fn, "save")) return np_save(call);
  if (numpy && !strcmp(fn, "genfromtxt")) return np_file(call, true);
  if (numpy && (!strcmp(fn, "argmax") || !strcmp(fn, "argmin") || !strcmp(fn, "max") || !strcmp(fn, "min") ||
                !strcmp(fn, "amax") || !strcmp(fn, "amin") || !strcmp(fn, "mean") || !strcmp(fn, "sum")))
    return np_reduce(fn, call);
  if (is_plot_call(path)) return plot_call(fn, call);
  if (!dot && !strcmp(fn, "len")) return builtin_len(call);
  if (!dot && !strcmp(fn, "range")) return builtin_range(call);
  if (!dot && (!strcmp(fn, "float") || !strcmp(fn, "int") || !strcmp(fn, "str"))) return builtin_convert(fn, call);
  if (!strcmp(fn, "to_categorical")) return to_categorical(call);
  if (!strcmp(fn, "print") && !dot) return do_print(call);
  if (!strcmp(fn, "Input") || !strcmp(fn, "InputLayer")) return layer_construct(fn, call);
  if (is_optimizer_name(fn)) return make_optimizer(fn, call, call->loc);
  if (is_loss_name(fn)) return make_loss(fn, call, call->loc);
  if (is_metric_class(fn)) return make_metric(fn, call, call->loc);
  if (is_callback_name(fn)) return make_callback(fn, call);
  if (is_regularizer_name(fn)) return make_regularizer(fn, call);
  if (is_layer_class(fn) || in_list(fn, layer_class_names, n_layer_class_names)) {
    diag_error(call->fn->loc, "layer %s is not supported yet", fn);
    return value_error();
  }
  if (numpy) {
    diag_error(call->fn->loc, "numpy function '%s' is not supported; supported: np.array, np.asarray, np.load, np.loadtxt, "
               "np.genfromtxt, np.expand_dims, np.save, np.argmax, np.argmin, np.max, np.min, np.mean, np.sum", fn);
    return value_error();
  }
  diag_error(call->fn->loc, "'%s' is not something nnc can call", path);
  const char *cands[64];
  int n = 0;
  for (int i = 0; i < n_layer_class_names && n < 40; i++) cands[n++] = layer_class_names[i];
  for (int i = 0; i < (int)(sizeof known_functions / sizeof *known_functions) && n < 64; i++) cands[n++] = known_functions[i];
  const char *best = diag_closest(fn, cands, n);
  if (best) diag_note("did you mean '%s'?", best);
  return value_error();
}

static Value *eval_call(const Expr *e) {
  Value *fn = eval(e->fn);
  switch (fn->kind) {
  case V_ERROR: return fn;
  case V_PATH: return call_path(fn->s, e);
  case V_METHOD: {
    Value *obj = eval(e->fn->lhs);
    if (obj->kind == V_MODEL) return model_method(obj, fn->s, e);
    if (obj->kind == V_DATA) {
      if (!strcmp(fn->s, "reshape")) return data_reshape(obj, e);
      if (!strcmp(fn->s, "astype")) return data_astype(obj, e);
    }
    if (obj->kind == V_STR && !strcmp(fn->s, "format")) return format_method(obj, e);
    if (obj->kind == V_HISTDICT && !strcmp(fn->s, "keys") && !e->args.n && !e->kwargs.n) {
      const char *const *keys;
      int n = history_keys(obj, &keys);
      const char *list = "";
      for (int k = 0; k < n; k++) list = xprintf("%s%s'%s'", list, k ? ", " : "", keys[k]);
      Value *v = value_new(V_STR, e->loc);
      v->s = xprintf("dict_keys([%s])", list);
      return v;
    }
    diag_error(e->fn->loc, "%s has no method '%s' that nnc supports", value_kind_name(obj), fn->s);
    return value_error();
  }
  default:
    diag_error(e->fn->loc, "%s is not callable", value_kind_name(fn));
    return value_error();
  }
}

static Value *eval_attr(const Expr *e) {
  Value *obj = eval(e->lhs);
  switch (obj->kind) {
  case V_ERROR: return obj;
  case V_PATH: {
    if (!strcmp(e->name, "__version__")) {  // tf.__version__, keras.__version__
      Value *v = value_new(V_STR, e->loc);
      v->s = NNC_KERAS_API;
      return v;
    }
    Value *v = value_new(V_PATH, e->loc);
    v->s = xprintf("%s.%s", obj->s, e->name);
    return v;
  }
  case V_MODEL:
  case V_DATA: {
    if (obj->kind == V_DATA && !strcmp(e->name, "shape")) {
      Value *v = value_new(V_SHAPE, e->loc);
      v->i = obj->i;
      return v;
    }
    if (obj->kind == V_DATA && (!strcmp(e->name, "ndim") || !strcmp(e->name, "size"))) {
      const DataValue *d = &prog->data[obj->i];
      Value *v = value_new(V_INT, e->loc);
      Shape s = d->shape;
      if (d->onehot) s.rank = 1, s.dim[0] = d->onehot;
      if (!strcmp(e->name, "ndim")) v->i = s.rank + 1;
      else {
        v->i = d->rows;
        for (int i = 0; i < s.rank; i++) mul_ok(v->i, s.dim[i], &v->i);
      }
      v->f = (double)v->i;
      return v;
    }
    Value *v = value_new(V_METHOD, e->loc);
    v->s = e->name;
    return v;
  }
  case V_HISTDICT:
  case V_STR: {
    Value *v = value_new(V_METHOD, e->loc);
    v->s = e->name;
    return v;
  }
  case V_HISTORY:
    if (!strcmp(e->name, "history")) {
      Value *v = value_new(V_HISTDICT, e->loc);
      v->i = obj->i;
      return v;
    }
    diag_error(e->loc, "history.%s is not supported; history.history['loss'] and the like are", e->name);
    return value_error();
  default:
    diag_error(e->loc, "%s has no attribute '%s'", value_kind_name(obj), e->name);
    return value_error();
  }
}

// The names fit() logs, in Keras 3's order: the metrics, the loss, then the same for
// the validation data when there is any.
static int history_keys(const Value *h, const char *const **out) {
  const Action *fit = &prog->actions[h->i];
  const char **keys = xalloc(sizeof(char *) * 12);
  int n = 0;
  bool val = fit->val_x >= 0 || fit->validation_split > 0;
  for (int v = 0; v <= (val ? 1 : 0); v++) {
    for (int k = 0; k < prog->n_metrics; k++)
      keys[n++] = xprintf("%s%s", v ? "val_" : "", nn_metric_name((nn_metric_kind)prog->metrics[k]));
    keys[n++] = v ? "val_loss" : "loss";
  }
  *out = keys;
  return n;
}

// history.history['loss']: the keys fit() logs (loss, the metrics, val_ with validation).
static Value *history_key(const Value *h, const Value *key, const Expr *e) {
  const Action *fit = &prog->actions[h->i];
  if (key->kind != V_STR) {
    diag_error(e->rhs->loc, "history.history is indexed by a name such as 'loss', got %s", value_kind_name(key));
    return value_error();
  }
  bool val = fit->val_x >= 0 || fit->validation_split > 0;
  const char *const *keys;
  int n = history_keys(h, &keys);
  for (int k = 0; k < n; k++)
    if (!strcmp(keys[k], key->s)) {
      Value *v = value_new(V_RUNTIME, e->loc);
      v->rt = (PrintItem){.kind = P_HIST, .action = (int)h->i, .key = keys[k]};
      return v;
    }
  const char *list = keys[0];
  for (int k = 1; k < n; k++) list = xprintf("%s, %s", list, keys[k]);
  diag_error(e->rhs->loc, "this fit() logs no '%s' (it logs: %s)", key->s, list);
  if (!val && !strncmp(key->s, "val_", 4)) diag_note("val_ entries need validation_data= or validation_split= in fit()");
  return value_error();
}

Value *builtin_range(const Expr *call) {
  int64_t b[3] = {0, 0, 1};
  int n = call->args.n;
  if (n < 1 || n > 3 || call->kwargs.n) {
    diag_error(call->loc, "range() takes 1 to 3 integers");
    return value_error();
  }
  for (int i = 0; i < n; i++)
    if (!arg_int(call->args.items[i], "range() argument", -1000000000, 1000000000, &b[n == 1 ? 1 : i])) return value_error();
  if (b[2] == 0) {
    diag_error(call->loc, "range() step must not be zero");
    return value_error();
  }
  int64_t count = b[2] > 0 ? (b[1] - b[0] + b[2] - 1) / b[2] : (b[0] - b[1] - b[2] - 1) / -b[2];
  if (count < 0) count = 0;
  if (count > 100000) {
    diag_error(call->loc, "range() of more than 100000 numbers is not supported");
    return value_error();
  }
  Value *v = value_new(V_LIST, call->loc);
  v->items = xalloc(sizeof(Value *) * (count + 1));
  for (int64_t k = 0; k < count; k++) {
    Value *it = value_new(V_INT, call->loc);
    it->i = b[0] + k * b[2], it->f = (double)it->i;
    v->items[v->n++] = it;
  }
  return v;
}

// float(x), int(x), str(x) of compile-time values; float() of a run-time number.
Value *builtin_convert(const char *fn, const Expr *call) {
  if (call->args.n != 1 || call->kwargs.n) {
    diag_error(call->loc, "%s() takes one argument here", fn);
    return value_error();
  }
  Value *x = eval(call->args.items[0]);
  if (x->kind == V_ERROR) return x;
  PrintItem it;
  bool is_int;
  if (runtime_item(x, &it, &is_int) && strcmp(fn, "str")) {
    Value *v = value_new(V_RUNTIME, call->loc);
    v->rt = it, v->rt_int = !strcmp(fn, "int");
    if (!strcmp(fn, "int") && !is_int) {
      diag_error(call->loc, "int() of a value known only at run time is not supported; format it with {:.0f}");
      return value_error();
    }
    return v;
  }
  if (!strcmp(fn, "str")) {
    PrintItem *items = NULL;
    int n = 0;
    if (!text_append(&items, &n, x, 0, NULL, call->loc)) return value_error();
    Value *v = value_new(n == 1 && items[0].kind == P_STRING ? V_STR : V_TEXT, call->loc);
    if (v->kind == V_STR) v->s = items[0].text;
    else v->parts = items, v->n = n;
    return v;
  }
  double d;
  if (x->kind == V_STR) {
    char *end;
    d = strtod(x->s, &end);
    if (end == x->s || *end) {
      diag_error(call->loc, "%s() of '%s' is not a number", fn, x->s);
      return value_error();
    }
  } else if (!number_of(x, &d)) {
    diag_error(call->loc, "%s() of %s is not supported", fn, value_kind_name(x));
    return value_error();
  }
  Value *v = value_new(strcmp(fn, "int") ? V_FLOAT : V_INT, call->loc);
  v->f = v->kind == V_INT ? trunc(d) : d;
  v->i = (int64_t)v->f;
  return v;
}

// A compile-time slice of n items: [lo, hi) with step 1, Python's rules.
static bool slice_range(const Expr *sl, int64_t n, int64_t *lo, int64_t *hi) {
  int64_t b[2] = {0, n};
  const Expr *ends[2] = {sl->lhs, sl->rhs};
  if (sl->fn) {
    diag_error(sl->fn->loc, "slices with a step are not supported");
    return false;
  }
  for (int k = 0; k < 2; k++) {
    if (!ends[k]) continue;
    if (!arg_int(ends[k], "a slice bound", INT64_MIN / 4, INT64_MAX / 4, &b[k])) return false;
    if (b[k] < 0) b[k] += n;
    b[k] = b[k] < 0 ? 0 : b[k] > n ? n : b[k];
  }
  *lo = b[0], *hi = b[1] < b[0] ? b[0] : b[1];
  return true;
}

static Value *eval_index(const Expr *e) {
  Value *base = eval(e->lhs);
  if (base->kind == V_ERROR) return base;
  if (base->kind == V_DATA) return data_select(base, e);
  if (e->rhs->kind == E_SLICE) {
    int64_t lo, hi;
    if (base->kind == V_SHAPE) {  // x.shape[1:]: the per-sample dimensions
      const DataValue *d = &prog->data[base->i];
      Value *t = value_new(V_TUPLE, e->loc);
      int rank = d->row_index ? d->shape.rank : d->shape.rank + 1;
      if (!slice_range(e->rhs, rank, &lo, &hi)) return value_error();
      t->items = xalloc(sizeof(Value *) * (hi - lo + 1));
      for (int64_t k = lo; k < hi; k++) {
        Value *it = value_new(V_INT, e->loc);
        it->i = d->row_index ? d->shape.dim[k] : k == 0 ? d->rows : d->shape.dim[k - 1];
        it->f = (double)it->i;
        t->items[t->n++] = it;
      }
      return t;
    }
    if (base->kind == V_TUPLE || base->kind == V_LIST) {
      if (!slice_range(e->rhs, base->n, &lo, &hi)) return value_error();
      Value *t = value_new(base->kind, e->loc);
      t->items = base->items + lo, t->n = (int)(hi - lo);
      return t;
    }
    if (base->kind == V_STR) {
      if (!slice_range(e->rhs, (int64_t)strlen(base->s), &lo, &hi)) return value_error();
      Value *t = value_new(V_STR, e->loc);
      t->s = xstrndup(base->s + lo, hi - lo);
      return t;
    }
    diag_error(e->rhs->loc, "%s cannot be sliced (data, shapes, lists and strings can)", value_kind_name(base));
    return value_error();
  }
  if (e->rhs->kind == E_TUPLE) {
    diag_error(e->rhs->loc, "multi-dimensional indexing of %s is not supported", value_kind_name(base));
    return value_error();
  }
  Value *idx = eval(e->rhs);
  if (idx->kind == V_ERROR) return idx;
  if (base->kind == V_HISTDICT) return history_key(base, idx, e);
  if (base->kind == V_RUNTIME && base->rt.kind == P_HIST && idx->kind == V_INT) {
    Value *v = value_new(V_RUNTIME, e->loc);
    v->rt = base->rt;
    v->rt.kind = P_HIST_ITEM, v->rt.index = idx->i;
    return v;
  }
  if (idx->kind != V_INT) {
    diag_error(e->rhs->loc, "index must be an integer (slices are not supported), got %s", value_kind_name(idx));
    return value_error();
  }
  int64_t i = idx->i;
  if (base->kind == V_SHAPE) {
    const DataValue *d = &prog->data[base->i];
    Shape s = d->shape;
    if (d->onehot) s.rank = 1, s.dim[0] = d->onehot;
    int64_t n = s.rank + 1;
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
      diag_error(e->rhs->loc, "shape index %lld out of range for a shape of %lld dimensions", (long long)idx->i, (long long)n);
      return value_error();
    }
    Value *v = value_new(V_INT, e->loc);
    v->i = i == 0 ? d->rows : s.dim[i - 1];
    v->f = (double)v->i;
    v->shape_of = (int)base->i + 1;
    v->shape_dim = (int)i;
    return v;
  }
  if (base->kind == V_TUPLE || base->kind == V_LIST) {
    if (i < 0) i += base->n;
    if (i < 0 || i >= base->n) {
      diag_error(e->rhs->loc, "index %lld out of range for %s of %d items", (long long)idx->i, value_kind_name(base), base->n);
      return value_error();
    }
    return base->items[i];
  }
  if (base->kind == V_RESULT) {
    int n = 1 + prog->n_metrics;
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
      diag_error(e->rhs->loc, "evaluate() returns %d value%s (loss%s), index %lld is out of range", n, n == 1 ? "" : "s",
                 n > 1 ? " and metrics" : "", (long long)idx->i);
      return value_error();
    }
    Value *v = value_new(V_RESULT_ITEM, e->loc);
    v->i = base->i;
    v->result = (int)i;
    return v;
  }
  if (base->kind == V_STR) {
    int64_t n = (int64_t)strlen(base->s);
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
      diag_error(e->rhs->loc, "string index out of range");
      return value_error();
    }
    Value *v = value_new(V_STR, e->loc);
    v->s = xstrndup(base->s + i, 1);
    return v;
  }
  if (base->kind == V_RESULT_ITEM && base->result == 0 && prog->n_metrics == 0) {
    diag_error(e->lhs->loc, "evaluate() of a model compiled without metrics returns the loss alone (a number, as in "
                            "Keras), which cannot be indexed");
    return value_error();
  }
  diag_error(e->lhs->loc, "%s cannot be indexed", value_kind_name(base));
  return value_error();
}

static Value *eval_binary(const Expr *e) {
  Value *l = eval(e->lhs), *r = eval(e->rhs);
  if (l->kind == V_ERROR || r->kind == V_ERROR) return value_error();
  double a = 0, b = 0;
  bool ln = number_of(l, &a), rn = number_of(r, &b);
  if (l->kind == V_DATA && rn && (e->op == '/' || e->op == '*')) {
    if (e->op == '/' && b == 0) {
      diag_error(e->rhs->loc, "division by zero");
      return value_error();
    }
    return data_scale(l, e->op == '/' ? 1.0 / b : b, e->loc);
  }
  if (r->kind == V_DATA && ln && e->op == '*') return data_scale(r, a, e->loc);
  if (l->kind == V_DATA || r->kind == V_DATA) {
    diag_error(e->loc, "data supports only '/ number' and '* number'");
    return value_error();
  }
  if (l->kind == V_STR && e->op == '%') return format_percent(e, l, r);
  if (e->op == '+' && (l->kind == V_STR || l->kind == V_TEXT) && (r->kind == V_STR || r->kind == V_TEXT) &&
      (l->kind == V_TEXT || r->kind == V_TEXT)) {
    PrintItem *items = NULL;
    int n = 0;
    text_append(&items, &n, l, 0, NULL, e->loc);
    text_append(&items, &n, r, 0, NULL, e->loc);
    Value *v = value_new(V_TEXT, e->loc);
    v->parts = items, v->n = n;
    return v;
  }
  {  // a run-time number times or divided by a constant: acc * 100
    PrintItem it;
    bool is_int;
    // x.shape[k] stays a compile-time number in arithmetic (input_shape=(h * w,)).
    bool lr = (l->kind == V_RESULT_ITEM || l->kind == V_RUNTIME) && runtime_item(l, &it, &is_int);
    if (!lr && !((r->kind == V_RESULT_ITEM || r->kind == V_RUNTIME) && runtime_item(r, &it, &is_int))) goto compile_time;
    double k = lr ? b : a;
    if (!(lr ? rn : ln) || !(e->op == '*' || (e->op == '/' && lr && k != 0))) {
      diag_error(e->loc, "a value known only when the program runs can be multiplied or divided by a number, "
                         "not used in other arithmetic");
      return value_error();
    }
    it.mul = (it.mul ? it.mul : 1) * (e->op == '/' ? 1 / k : k);
    Value *v = value_new(V_RUNTIME, e->loc);
    v->rt = it;
    v->rt_int = is_int && (l->kind == V_INT || r->kind == V_INT) && e->op == '*';
    return v;
  }
compile_time:
  if (l->kind == V_STR && r->kind == V_STR && e->op == '+') {
    Value *v = value_new(V_STR, e->loc);
    v->s = xprintf("%s%s", l->s, r->s);
    return v;
  }
  if (!ln || !rn || l->kind == V_BOOL || r->kind == V_BOOL) {
    diag_error(e->loc, "unsupported operands for '%s': %s and %s", e->op == 'p' ? "**" : xprintf("%c", e->op),
               value_kind_name(l), value_kind_name(r));
    return value_error();
  }
  Value *v = value_new(V_FLOAT, e->loc);
  bool ints = l->kind == V_INT && r->kind == V_INT;
  switch (e->op) {
  case '+':
    if (ints && !__builtin_add_overflow(l->i, r->i, &v->i)) { v->kind = V_INT; v->f = (double)v->i; return v; }
    v->f = a + b; break;
  case '-':
    if (ints && !__builtin_sub_overflow(l->i, r->i, &v->i)) { v->kind = V_INT; v->f = (double)v->i; return v; }
    v->f = a - b; break;
  case '*':
    if (ints && !__builtin_mul_overflow(l->i, r->i, &v->i)) { v->kind = V_INT; v->f = (double)v->i; return v; }
    v->f = a * b; break;
  case '/':
    if (b == 0) {
      diag_error(e->rhs->loc, "division by zero");
      return value_error();
    }
    v->f = a / b; break;
  case '%':
    if (b == 0) {
      diag_error(e->rhs->loc, "modulo by zero");
      return value_error();
    }
    if (ints) {
      v->kind = V_INT;
      v->i = (b == -1) ? 0 : l->i % r->i;
      if (v->i != 0 && ((v->i < 0) != (r->i < 0))) v->i += r->i;  // Python's sign rule
      v->f = (double)v->i;
      return v;
    }
    v->f = fmod(a, b);
    if (v->f != 0 && ((v->f < 0) != (b < 0))) v->f += b;
    break;
  case 'p':
    v->f = pow(a, b);
    if (ints && r->i >= 0 && fabs(v->f) < 9e15) { v->kind = V_INT; v->i = (int64_t)v->f; return v; }
    break;
  }
  if (!isfinite(v->f)) {
    diag_error(e->loc, "arithmetic overflow");
    return value_error();
  }
  return v;
}

// Expressions are trees as deep as the source makes them (`a.b.b.b…`, `1+1+1…`);
// evaluation recurses, so depth is bounded rather than trusted to the stack.
enum { MAX_EVAL_DEPTH = 500 };
static int eval_depth;
static Value *eval_expr(const Expr *e);

Value *eval(const Expr *e) {
  if (eval_depth >= MAX_EVAL_DEPTH) {
    diag_error(e->loc, "expression nested more than %d levels deep", MAX_EVAL_DEPTH);
    return value_error();
  }
  eval_depth++;
  Value *v = eval_expr(e);
  eval_depth--;
  return v;
}

static Value *eval_expr(const Expr *e) {
  Value *v;
  switch (e->kind) {
  case E_NAME:
    if ((v = lookup(e->name))) return v;
    if (IN(e->name, module_roots) || IN(e->name, known_functions) || is_layer_class(e->name) ||
        in_list(e->name, layer_class_names, n_layer_class_names)) {
      v = value_new(V_PATH, e->loc);
      v->s = e->name;
      return v;
    }
    return undefined_name(e);
  case E_INT:
    if (e->overflow) {
      diag_error(e->loc, "integer literal does not fit in 64 bits");
      return value_error();
    }
    v = value_new(V_INT, e->loc);
    v->i = e->ival, v->f = (double)e->ival;
    return v;
  case E_FLOAT:
    if (e->overflow || !isfinite(e->fval)) {
      diag_error(e->loc, "number literal is out of range");
      return value_error();
    }
    v = value_new(V_FLOAT, e->loc);
    v->f = e->fval;
    return v;
  case E_STRING:
    v = value_new(V_STR, e->loc);
    v->s = e->name;
    return v;
  case E_NONE: return value_new(V_NONE, e->loc);
  case E_TRUE:
  case E_FALSE:
    v = value_new(V_BOOL, e->loc);
    v->i = e->kind == E_TRUE, v->f = (double)v->i;
    return v;
  case E_TUPLE:
  case E_LIST:
    v = value_new(e->kind == E_TUPLE ? V_TUPLE : V_LIST, e->loc);
    v->items = xalloc(sizeof(Value *) * (e->args.n + 1));
    for (int i = 0; i < e->args.n; i++) {
      v->items[i] = eval(e->args.items[i]);
      if (v->items[i]->kind == V_ERROR) return value_error();
    }
    v->n = e->args.n;
    return v;
  case E_ATTR: return eval_attr(e);
  case E_CALL: return eval_call(e);
  case E_INDEX: return eval_index(e);
  case E_FSTRING: return eval_fstring(e);
  case E_SLICE:
    diag_error(e->loc, "a slice such as a:b is only allowed inside []");
    return value_error();
  case E_BINARY: return eval_binary(e);
  case E_UNARY: {
    Value *x = eval(e->lhs);
    if (x->kind == V_ERROR) return x;
    if (x->kind == V_INT && x->i != INT64_MIN) {
      v = value_new(V_INT, e->loc);
      v->i = -x->i, v->f = (double)v->i;
      return v;
    }
    if (x->kind == V_FLOAT) {
      v = value_new(V_FLOAT, e->loc);
      v->f = -x->f;
      return v;
    }
    PrintItem it;
    bool is_int;
    if ((x->kind == V_RESULT_ITEM || x->kind == V_RUNTIME) && runtime_item(x, &it, &is_int)) {
      it.mul = -(it.mul ? it.mul : 1);
      v = value_new(V_RUNTIME, e->loc);
      v->rt = it, v->rt_int = is_int;
      return v;
    }
    diag_error(e->loc, "cannot negate %s", value_kind_name(x));
    return value_error();
  }
  }
  internal_error("sema", "unknown expression kind %d", e->kind);
}

//
// Statements
//
static void assign(const Expr *target, Value *v, Loc stmt_loc) {
  if (target->kind == E_NAME) {
    bind(target->name, v);
    return;
  }
  if (target->kind == E_TUPLE || target->kind == E_LIST) {
    int n = target->args.n;
    Value *src = v;
    if (v->kind == V_ERROR) {
      for (int i = 0; i < n; i++) assign(target->args.items[i], v, stmt_loc);
      return;
    }
    if (v->kind == V_DATASETS) {
      // (x_train, y_train), (x_test, y_test) = load_data()
      src = value_new(V_TUPLE, v->loc);
      src->n = 2;
      src->items = xalloc(sizeof(Value *) * 2);
      for (int k = 0; k < 2; k++) {
        src->items[k] = value_new(V_TUPLE, v->loc);
        src->items[k]->n = 2;
        src->items[k]->items = v->items + 2 * k;
      }
    } else if (v->kind == V_RESULT) {
      src = value_new(V_TUPLE, v->loc);
      src->n = 1 + prog->n_metrics;
      src->items = xalloc(sizeof(Value *) * src->n);
      for (int k = 0; k < src->n; k++) {
        src->items[k] = value_new(V_RESULT_ITEM, v->loc);
        src->items[k]->i = v->i, src->items[k]->result = k;
      }
    }
    if (src->kind != V_TUPLE && src->kind != V_LIST) {
      diag_error(target->loc, "cannot unpack %s into %d names", value_kind_name(v), n);
      for (int i = 0; i < n; i++) assign(target->args.items[i], value_error(), stmt_loc);
      return;
    }
    if (src->n != n) {
      diag_error(target->loc, "cannot unpack %d values into %d names", src->n, n);
      for (int i = 0; i < n; i++) assign(target->args.items[i], value_error(), stmt_loc);
      return;
    }
    for (int i = 0; i < n; i++) assign(target->args.items[i], src->items[i], stmt_loc);
    return;
  }
  if (target->kind == E_INDEX) {
    diag_error(target->loc, "assigning to an item or a slice of data is not supported; build the data with np.loadtxt, "
                            "slices and transforms instead");
    return;
  }
  if (target->kind == E_ATTR) {
    diag_error(target->loc, "assigning to an attribute or an item is not supported");
    return;
  }
  diag_error(target->loc, "cannot assign to this expression");
}

static void import_stmt(const Stmt *s) {
  // `import numpy as np`, `from tensorflow.keras.layers import Dense as D`: the bound
  // name refers to the imported path; without `as`, the last name is bound.
  const char *from = s->target ? ast_dotted(s->target) : NULL;
  for (int i = 0; i < s->value->args.n; i++) {
    const Expr *item = s->value->args.items[i];
    const char *dotted = ast_dotted(item);
    if (!dotted || (s->target && !from)) {
      diag_error(item->loc, "module path is too long");
      return;
    }
    if (!strcmp(dotted, "*")) continue;
    const char *full = from ? xprintf("%s.%s", from, dotted) : dotted;
    Value *v = value_new(V_PATH, item->loc);
    v->s = full;
    if (item->kwname) bind(item->kwname, v);
    else if (from) bind(dotted, v);
    else {
      // `import tensorflow.keras` binds `tensorflow`.
      const char *dot = strchr(dotted, '.');
      const char *root = dot ? xstrndup(dotted, dot - dotted) : dotted;
      Value *r = value_new(V_PATH, item->loc);
      r->s = root;
      bind(root, r);
    }
  }
}

static bool is_docstring(const Stmt *s) { return s->kind == S_EXPR && s->value->kind == E_STRING; }

Program *sema_check(Stmt *stmts, const Source *src, const char *dir) {
  prog = xalloc(sizeof(Program));
  nn_capture_errors(true);  // data-file errors are reported at the script's line
  prog->source_path = src->path;
  data_dir = dir;
  vars = NULL;
  memset(var_buckets, 0, sizeof var_buckets);
  model = NULL;
  eval_depth = 0;
  layer_names_reset();
  for (Stmt *s = stmts; s && diag_error_count() <= DIAG_MAX_ERRORS; s = s->next) {
    switch (s->kind) {
    case S_IMPORT: import_stmt(s); break;
    case S_ASSIGN: {
      Value *v = eval(s->value);
      assign(s->target, v, s->loc);
      break;
    }
    case S_EXPR: {
      if (is_docstring(s)) break;
      Value *v = eval(s->value);
      // A bare name or number on a line is a no-op in Python; we say so.
      if (v->kind != V_ERROR && s->value->kind != E_CALL)
        diag_warning(s->value->loc, "this expression has no effect");
      break;
    }
    }
  }
  if (diag_error_count() > 0) return NULL;
  if (!model) {
    diag_error((Loc){1, 1, 1}, "no model: the script must create one with Sequential(...)");
    return NULL;
  }
  if (prog->n_layers == 0)
    diag_warning(model->loc, "the model is never built: no layer has input_shape= and no data reaches it, "
                             "so it has no shapes and nothing can be compiled");
  return prog;
}

void shape_format(const Shape *s, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "(None");
  for (int i = 0; i < s->rank && n < (int)cap; i++) n += snprintf(buf + n, cap - n, ", %lld", (long long)s->dim[i]);
  snprintf(buf + n, cap - n, ")");
}
