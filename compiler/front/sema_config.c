// sema_config.c — optimizers, losses, metrics, callbacks and regularizers, as strings
// or calls, with Keras 3's names, positional order and defaults.
#include "sema_internal.h"

#include <string.h>
#include <strings.h>

static const char *const optimizer_names[] = {"SGD", "Adam", "RMSprop"};
static const char *const unsupported_optimizers[] = {"Adagrad", "Adadelta", "Adamax", "Nadam", "AdamW", "Ftrl",
                                                     "Lion", "Adafactor", "LossScaleOptimizer"};
static const char *const loss_classes[] = {"MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
                                           "CategoricalCrossentropy", "SparseCategoricalCrossentropy"};
static const char *const loss_strings[] = {"mean_squared_error", "mean_absolute_error", "binary_crossentropy",
                                           "categorical_crossentropy", "sparse_categorical_crossentropy"};
static const char *const metric_classes[] = {"Accuracy", "SparseCategoricalAccuracy", "CategoricalAccuracy",
                                             "BinaryAccuracy", "MeanAbsoluteError", "MeanSquaredError"};
static const char *const callback_names[] = {"EarlyStopping", "ModelCheckpoint", "CSVLogger", "BackupAndRestore",
                                             "TerminateOnNaN"};
static const char *const regularizer_names[] = {"l1", "l2", "l1_l2", "L1", "L2", "L1L2"};

#define N(a) (int)(sizeof(a) / sizeof(a[0]))
static int index_of(const char *s, const char *const *list, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(s, list[i])) return i;
  return -1;
}

bool is_optimizer_name(const char *n) { return index_of(n, optimizer_names, 3) >= 0 || index_of(n, unsupported_optimizers, N(unsupported_optimizers)) >= 0; }
bool is_loss_name(const char *n) { return index_of(n, loss_classes, 5) >= 0 || index_of(n, loss_strings, 5) >= 0; }
bool is_metric_class(const char *n) { return index_of(n, metric_classes, N(metric_classes)) >= 0; }
bool is_callback_name(const char *n) { return index_of(n, callback_names, N(callback_names)) >= 0; }
bool is_regularizer_name(const char *n) { return index_of(n, regularizer_names, N(regularizer_names)) >= 0; }

static void optimizer_defaults(Optimizer *o, OptKind k) {
  *o = (Optimizer){.kind = k};
  o->epsilon = 1e-7, o->beta1 = 0.9, o->beta2 = 0.999, o->rho = 0.9;
  o->lr = k == OPT_SGD ? 0.01 : 0.001;
}

// optimizer='adam' | Adam(learning_rate=…) | tf.keras.optimizers.Adam(…)
Value *make_optimizer(const char *name, const Expr *call, Loc loc) {
  Value *v = value_new(V_OPT, loc);
  int k = -1;
  for (int i = 0; i < 3; i++)
    if (!strcasecmp(name, optimizer_names[i])) k = i;
  if (k < 0) {
    bool known = false;
    for (int i = 0; i < N(unsupported_optimizers); i++) known |= !strcasecmp(name, unsupported_optimizers[i]);
    if (known) {
      diag_error(loc, "optimizer '%s' is not supported yet (supported: SGD, Adam, RMSprop)", name);
      return value_error();
    }
    diag_error(loc, "unknown optimizer '%s'", name);
    static const char *const lower[] = {"sgd", "adam", "rmsprop"};
    const char *best = diag_closest(name, lower, 3);
    if (best) diag_note("did you mean '%s'?", best);
    else diag_note("supported: SGD, Adam, RMSprop");
    return value_error();
  }
  optimizer_defaults(&v->opt, (OptKind)k);
  if (!call) return v;
  static const char *const sgd_p[] = {"learning_rate", "momentum", "nesterov", "weight_decay", "clipnorm", "clipvalue",
                                      "global_clipnorm", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                                      "loss_scale_factor", "gradient_accumulation_steps", "name", "lr"};
  static const char *const adam_p[] = {"learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad", "weight_decay",
                                       "clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum",
                                       "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps",
                                       "name", "lr"};
  static const char *const rms_p[] = {"learning_rate", "rho", "momentum", "epsilon", "centered", "weight_decay",
                                      "clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum",
                                      "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps",
                                      "name", "lr"};
  const char *const *p = k == 0 ? sgd_p : k == 1 ? adam_p : rms_p;
  int np = k == 0 ? N(sgd_p) : k == 1 ? N(adam_p) : N(rms_p);
  int npos = k == 0 ? 3 : 5;
  const Expr *a[16];
  if (!bind_args(call, optimizer_names[k], p, np, npos, a)) return value_error();
  Optimizer *o = &v->opt;
  bool ok = true;
  const Expr *lr = a[0] ? a[0] : a[np - 1];
  if (a[0] && a[np - 1]) { diag_error(a[np - 1]->loc, "give learning_rate or lr, not both"); ok = false; }
  if (!a[0] && a[np - 1]) diag_warning(a[np - 1]->loc, "'lr' is deprecated; use learning_rate");
  if (lr && !arg_float(lr, "learning_rate", 0, 1e6, true, &o->lr)) ok = false;
  if (k == 0) {
    if (a[1] && !arg_float(a[1], "momentum", 0, 1, false, &o->momentum)) ok = false;
    if (a[2] && !arg_bool(a[2], "nesterov", &o->nesterov)) ok = false;
  } else if (k == 1) {
    if (a[1] && !arg_float(a[1], "beta_1", 0, 1, false, &o->beta1)) ok = false;
    if (a[2] && !arg_float(a[2], "beta_2", 0, 1, false, &o->beta2)) ok = false;
    if (a[3] && !arg_float(a[3], "epsilon", 0, 1e6, false, &o->epsilon)) ok = false;
    bool ams = false;
    if (a[4] && (!arg_bool(a[4], "amsgrad", &ams) || ams)) {
      if (ams) diag_error(a[4]->loc, "amsgrad=True is not supported yet");
      ok = false;
    }
  } else {
    if (a[1] && !arg_float(a[1], "rho", 0, 1, false, &o->rho)) ok = false;
    if (a[2] && !arg_float(a[2], "momentum", 0, 1, false, &o->momentum)) ok = false;
    if (a[3] && !arg_float(a[3], "epsilon", 0, 1e6, false, &o->epsilon)) ok = false;
    if (a[4] && !arg_bool(a[4], "centered", &o->centered)) ok = false;
  }
  // Everything between the formula's own arguments and `name`/`lr` changes the update:
  // refuse rather than silently ignore.
  int first_extra = k == 0 ? 3 : 5;
  for (int i = first_extra; i < np - 2; i++)
    if (a[i] && a[i]->kind != E_NONE && a[i]->kind != E_FALSE) {
      diag_error(a[i]->loc, "optimizer argument '%s' is not supported yet", p[i]);
      ok = false;
    }
  return ok ? v : value_error();
}

// loss='mse' | loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
Value *make_loss(const char *name, const Expr *call, Loc loc) {
  static const char *const aliases[][2] = {
      {"mse", "mean_squared_error"}, {"MSE", "mean_squared_error"}, {"mae", "mean_absolute_error"},
      {"MAE", "mean_absolute_error"}, {"bce", "binary_crossentropy"}};
  for (int i = 0; i < N(aliases); i++)
    if (!strcmp(name, aliases[i][0])) name = aliases[i][1];
  int k = index_of(name, loss_strings, 5);
  if (k < 0) k = index_of(name, loss_classes, 5);
  if (k < 0) {
    static const char *const known_unsupported[] = {"huber", "Huber", "hinge", "kl_divergence", "KLDivergence", "log_cosh",
                                                    "poisson", "cosine_similarity", "mean_squared_logarithmic_error",
                                                    "mean_absolute_percentage_error", "squared_hinge"};
    if (index_of(name, known_unsupported, N(known_unsupported)) >= 0)
      diag_error(loc, "loss '%s' is not supported yet", name);
    else {
      diag_error(loc, "unknown loss '%s'", name);
      const char *best = diag_closest(name, loss_strings, 5);
      if (best) diag_note("did you mean '%s'?", best);
    }
    return value_error();
  }
  Value *v = value_new(V_LOSS, loc);
  static const LossKind kinds[] = {LOSS_MSE, LOSS_MAE, LOSS_BCE, LOSS_CCE, LOSS_SPARSE_CCE};
  v->loss = kinds[k];
  if (!call) return v;
  if (index_of(name, loss_strings, 5) >= 0) {
    // tf.keras.losses.mean_squared_error(y, p) is a function call on tensors.
    diag_error(call->loc, "pass the loss function itself (loss=%s), do not call it", name);
    return value_error();
  }
  static const char *const p[] = {"from_logits", "label_smoothing", "axis", "ignore_class", "reduction", "name", "dtype"};
  const Expr *a[7];
  if (!bind_args(call, name, p, 7, k >= 2 ? 7 : 0, a)) return value_error();
  if (k < 2) {
    for (int i = 0; i < 7; i++)
      if (a[i] && i != 4 && i != 5) {
        diag_error(a[i]->loc, "%s() does not take '%s'", name, p[i]);
        return value_error();
      }
  }
  if (a[0] && !arg_bool(a[0], "from_logits", &v->from_logits)) return value_error();
  double ls = 0;
  if (a[1] && (!arg_float(a[1], "label_smoothing", 0, 1, false, &ls) || ls != 0)) {
    if (ls != 0) diag_error(a[1]->loc, "label_smoothing is not supported yet");
    return value_error();
  }
  for (int i = 2; i < 5; i++)
    if (a[i] && a[i]->kind != E_NONE && !(i == 2 && a[i]->kind == E_UNARY)) {
      const char *r;
      if (i == 4 && arg_str(a[i], "reduction", &r) && !strcmp(r, "sum_over_batch_size")) continue;
      diag_error(a[i]->loc, "loss argument '%s' is not supported yet", p[i]);
      return value_error();
    }
  return v;
}

Value *make_metric(const char *name, const Expr *call, Loc loc) {
  Value *v = value_new(V_METRIC, loc);
  if (!strcmp(name, "accuracy") || !strcmp(name, "acc") || !strcmp(name, "Accuracy") ||
      !strcmp(name, "SparseCategoricalAccuracy") || !strcmp(name, "CategoricalAccuracy") ||
      !strcmp(name, "BinaryAccuracy") || !strcmp(name, "sparse_categorical_accuracy") ||
      !strcmp(name, "categorical_accuracy") || !strcmp(name, "binary_accuracy"))
    v->metric = MET_ACCURACY;
  else if (!strcmp(name, "mae") || !strcmp(name, "mean_absolute_error") || !strcmp(name, "MeanAbsoluteError"))
    v->metric = MET_MAE;
  else if (!strcmp(name, "mse") || !strcmp(name, "mean_squared_error") || !strcmp(name, "MeanSquaredError"))
    v->metric = MET_MSE;
  else {
    static const char *const known[] = {"accuracy", "mae", "mse"};
    diag_error(loc, "metric '%s' is not supported (supported: accuracy, mae, mse)", name);
    const char *best = diag_closest(name, known, 3);
    if (best) diag_note("did you mean '%s'?", best);
    return value_error();
  }
  if (call) {
    static const char *const p[] = {"name", "dtype", "threshold"};
    const Expr *a[3];
    if (!bind_args(call, name, p, 3, 0, a)) return value_error();
  }
  return v;
}

Value *make_regularizer(const char *name, const Expr *call) {
  Value *v = value_new(V_REG, call->loc);
  bool both = !strcmp(name, "l1_l2") || !strcmp(name, "L1L2");
  if (both) {
    static const char *const p[] = {"l1", "l2"};
    const Expr *a[2];
    if (!bind_args(call, name, p, 2, 2, a)) return value_error();
    v->l1 = v->l2 = 0.0;
    if (a[0] && !arg_float(a[0], "l1", 0, 1e6, false, &v->l1)) return value_error();
    if (a[1] && !arg_float(a[1], "l2", 0, 1e6, false, &v->l2)) return value_error();
    return v;
  }
  bool is_l1 = name[1] == '1';
  static const char *const p1[] = {"l1"}, *const p2[] = {"l2"};
  const Expr *a[1];
  if (!bind_args(call, name, is_l1 ? p1 : p2, 1, 1, a)) return value_error();
  double f = 0.01;
  if (a[0] && !arg_float(a[0], is_l1 ? "l1" : "l2", 0, 1e6, false, &f)) return value_error();
  if (is_l1) v->l1 = f;
  else v->l2 = f;
  return v;
}

static bool arg_mode(const Expr *e, int *mode) {
  const char *m;
  if (!arg_str(e, "mode", &m)) return false;
  if (!strcmp(m, "auto")) *mode = 0;
  else if (!strcmp(m, "min")) *mode = 1;
  else if (!strcmp(m, "max")) *mode = 2;
  else {
    diag_error(e->loc, "mode must be 'auto', 'min' or 'max', got '%s'", m);
    return false;
  }
  return true;
}

Value *make_callback(const char *name, const Expr *call) {
  Value *v = value_new(V_CALLBACK, call->loc);
  Callback *cb = &v->cb;
  cb->loc = call->loc;
  cb->monitor = "val_loss";
  bool ok = true;
  if (!strcmp(name, "EarlyStopping")) {
    static const char *const p[] = {"monitor", "min_delta", "patience", "verbose", "mode", "baseline",
                                    "restore_best_weights", "start_from_epoch"};
    const Expr *a[8];
    if (!bind_args(call, name, p, 8, 8, a)) return value_error();
    cb->kind = CB_EARLY_STOPPING;
    if (a[0] && !arg_str(a[0], "monitor", &cb->monitor)) ok = false;
    if (a[1] && !arg_float(a[1], "min_delta", -1e30, 1e30, false, &cb->min_delta)) ok = false;
    if (a[2] && !arg_int(a[2], "patience", 0, INT32_MAX, &cb->patience)) ok = false;
    if (a[4] && !arg_mode(a[4], &cb->mode)) ok = false;
    if (a[5] && a[5]->kind != E_NONE) { diag_error(a[5]->loc, "EarlyStopping baseline is not supported yet"); ok = false; }
    if (a[6] && !arg_bool(a[6], "restore_best_weights", &cb->restore_best_weights)) ok = false;
    int64_t start = 0;
    if (a[7] && (!arg_int(a[7], "start_from_epoch", 0, 0, &start))) ok = false;
  } else if (!strcmp(name, "ModelCheckpoint")) {
    static const char *const p[] = {"filepath", "monitor", "verbose", "save_best_only", "save_weights_only", "mode",
                                    "save_freq", "initial_value_threshold"};
    const Expr *a[8];
    if (!bind_args(call, name, p, 8, 8, a)) return value_error();
    cb->kind = CB_MODEL_CHECKPOINT;
    if (!a[0]) { diag_error(call->loc, "ModelCheckpoint() missing required argument 'filepath'"); ok = false; }
    else if (!arg_str(a[0], "filepath", &cb->path)) ok = false;
    if (a[1] && !arg_str(a[1], "monitor", &cb->monitor)) ok = false;
    if (a[3] && !arg_bool(a[3], "save_best_only", &cb->save_best_only)) ok = false;
    // Keras 3's default is the whole model (.keras or .h5); weights only for .weights.h5.
    if (a[4] && !arg_bool(a[4], "save_weights_only", &cb->save_weights_only)) ok = false;
    else if (cb->path && !weights_format_of(a[0], cb->path, "ModelCheckpoint", true, !cb->save_weights_only, &cb->format))
      ok = false;
    if (a[5] && !arg_mode(a[5], &cb->mode)) ok = false;
    if (a[6]) {
      const char *f;
      if (!arg_str(a[6], "save_freq", &f) || strcmp(f, "epoch")) { diag_error(a[6]->loc, "save_freq must be 'epoch'"); ok = false; }
    }
    if (a[7] && a[7]->kind != E_NONE) { diag_error(a[7]->loc, "initial_value_threshold is not supported yet"); ok = false; }
  } else if (!strcmp(name, "BackupAndRestore")) {
    static const char *const p[] = {"backup_dir", "save_freq", "delete_checkpoint", "double_checkpoint"};
    const Expr *a[4];
    if (!bind_args(call, name, p, 4, 4, a)) return value_error();
    cb->kind = CB_BACKUP_AND_RESTORE;
    cb->delete_checkpoint = true;
    if (!a[0]) { diag_error(call->loc, "BackupAndRestore() missing required argument 'backup_dir'"); ok = false; }
    else if (!arg_str(a[0], "backup_dir", &cb->path)) ok = false;
    // save_freq: 'epoch' (the default) or a number of batches.
    if (a[1] && a[1]->kind == E_STRING) {
      const char *f;
      if (!arg_str(a[1], "save_freq", &f) || strcmp(f, "epoch")) { diag_error(a[1]->loc, "save_freq must be 'epoch' or a number of batches"); ok = false; }
    } else if (a[1] && !arg_int(a[1], "save_freq", 1, INT64_MAX, &cb->save_freq)) {
      ok = false;
    }
    if (a[2] && !arg_bool(a[2], "delete_checkpoint", &cb->delete_checkpoint)) ok = false;
    bool dbl = false;
    if (a[3] && !arg_bool(a[3], "double_checkpoint", &dbl)) ok = false;
  } else if (!strcmp(name, "TerminateOnNaN")) {
    const Expr *a[1];
    if (!bind_args(call, name, NULL, 0, 0, a)) return value_error();
    cb->kind = CB_TERMINATE_ON_NAN;
  } else {
    static const char *const p[] = {"filename", "separator", "append"};
    const Expr *a[3];
    if (!bind_args(call, name, p, 3, 3, a)) return value_error();
    cb->kind = CB_CSV_LOGGER;
    cb->separator = ",";
    if (!a[0]) { diag_error(call->loc, "CSVLogger() missing required argument 'filename'"); ok = false; }
    else if (!arg_str(a[0], "filename", &cb->path)) ok = false;
    if (a[1] && !arg_str(a[1], "separator", &cb->separator)) ok = false;
    if (a[2] && !arg_bool(a[2], "append", &cb->append)) ok = false;
  }
  if (cb->path && !*cb->path) {
    diag_error(call->loc, "%s needs a non-empty file name", name);
    ok = false;
  }
  return ok ? v : value_error();
}
