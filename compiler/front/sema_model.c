// sema_model.c — the Sequential model and what the script does with it: add,
// compile, fit, evaluate, predict, summary, save/load weights; print and np.save.
// Where data meets the model, shapes are checked and a mismatch names both.
#include "sema_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Layers added before the input shape is known wait here (Keras builds on first use).
static Layer *pending[1024];
static int n_pending;

static void append_layer(Layer *l) {
  Program *p = sema_program();
  p->layers = sema_grow(p->layers, p->n_layers, sizeof(Layer));
  p->layers[p->n_layers++] = *l;
}

// Far beyond any real Sequential model; keeps the unique-name check cheap.
enum { MAX_LAYERS = 10000 };

static bool model_built(void) { return sema_program()->n_layers > 0; }

static bool infer_and_append(Layer *l) {
  Program *p = sema_program();
  Shape in = p->layers[p->n_layers - 1].out;
  if (p->n_layers >= MAX_LAYERS) {
    diag_error(l->loc, "too many layers (at most %d)", MAX_LAYERS);
    return false;
  }
  if (!layer_infer(l, &in)) return false;
  if (__builtin_add_overflow(p->total_params, l->params, &p->total_params) ||
      __builtin_add_overflow(p->trainable_params, l->trainable_params, &p->trainable_params)) {
    diag_error(l->loc, "the model's parameter count overflows 64 bits");
    return false;
  }
  for (int i = 0; i < p->n_layers; i++)
    if (!strcmp(p->layers[i].name, l->name)) {
      diag_error(l->loc, "a layer named '%s' already exists in this model; layer names must be unique", l->name);
      return false;
    }
  append_layer(l);
  return true;
}

// Gives the model its input; layers that were waiting get their shapes now.
static bool build_model(const Shape *input, const char *name, Loc loc) {
  Layer in = {.kind = L_INPUT, .loc = loc, .name = name ? name : "input_layer", .in = *input, .out = *input};
  append_layer(&in);
  bool ok = true;
  for (int i = 0; i < n_pending && ok; i++) ok = infer_and_append(pending[i]);
  n_pending = 0;
  return ok;
}

static bool add_layer_value(Value *v, Loc loc) {
  if (v->kind == V_ERROR) return false;
  if (v->kind != V_LAYER) {
    diag_error(loc, "expected a layer, got %s", value_kind_name(v));
    return false;
  }
  Layer *l = v->layer;
  if (l->kind == L_INPUT) {
    if (model_built() || n_pending) {
      diag_error(l->loc, "Input must be the first layer of the model");
      return false;
    }
    return build_model(&l->out, l->name, l->loc);
  }
  if (v->i == 1) {  // input_shape= given on this layer
    if (!model_built() && n_pending == 0) {
      if (!build_model(&l->in, NULL, l->loc)) return false;
    } else {
      diag_warning(l->loc, "input_shape is ignored on a layer that is not the first");
    }
  }
  if (!model_built()) {
    if (n_pending == (int)(sizeof pending / sizeof *pending)) {
      diag_error(l->loc, "too many layers");
      return false;
    }
    pending[n_pending++] = l;
    return true;
  }
  return infer_and_append(l);
}

Value *model_new(const Expr *call) {
  Value **slot = sema_model_slot();
  static const char *const p[] = {"layers", "trainable", "name"};
  const Expr *a[3];
  if (!bind_args(call, "Sequential", p, 3, 3, a)) return value_error();
  if (*slot && a[0] && (a[0]->kind == E_LIST || a[0]->kind == E_TUPLE) && a[0]->args.n >= 1) {
    // probability_model = Sequential([model, Softmax()]): the model's outputs through softmax.
    Value *first = eval(a[0]->args.items[0]);
    if (first->kind == V_ERROR) return first;
    if (first->kind == V_MODEL) {
      bool ok = a[0]->args.n == 2 && !first->wrapper;
      if (ok) {
        Value *l = eval(a[0]->args.items[1]);
        if (l->kind == V_ERROR) return l;
        ok = l->kind == V_LAYER && l->layer->act == ACT_softmax &&
             (l->layer->kind == L_ACTIVATION);
      }
      if (!ok) {
        diag_error(call->loc, "a model inside another Sequential is supported only as Sequential([model, Softmax()]) "
                              "(the probability model), for predict()");
        return value_error();
      }
      Value *w = value_new(V_MODEL, call->loc);
      w->wrapper = true;
      return w;
    }
  }
  if (*slot) {
    diag_error(call->loc, "a second model: nnc compiles one Sequential model per file");
    return value_error();
  }
  Value *m = value_new(V_MODEL, call->loc);
  *slot = m;
  n_pending = 0;
  sema_program()->model_name = "sequential";
  if (a[2] && a[2]->kind != E_NONE) {
    const char *nm;
    if (arg_str(a[2], "name", &nm)) sema_program()->model_name = nm;
  }
  if (a[1]) {
    bool t;
    if (arg_bool(a[1], "trainable", &t) && !t) diag_error(a[1]->loc, "trainable=False is not supported");
  }
  if (a[0] && a[0]->kind != E_NONE) {
    Value *ls = eval(a[0]);
    if (ls->kind == V_ERROR) return m;
    if (ls->kind != V_LIST && ls->kind != V_TUPLE) {
      diag_error(a[0]->loc, "Sequential() takes a list of layers, got %s", value_kind_name(ls));
      return m;
    }
    for (int i = 0; i < ls->n; i++)
      if (!add_layer_value(ls->items[i], a[0]->kind == E_LIST || a[0]->kind == E_TUPLE ? a[0]->args.items[i]->loc : a[0]->loc))
        break;
  }
  return m;
}

static const Layer *output_layer(void) {
  Program *p = sema_program();
  return &p->layers[p->n_layers - 1];
}

// The activation that produces the model's output (skipping Dropout/Flatten-like layers).
static Activation output_activation(void) {
  Program *p = sema_program();
  for (int i = p->n_layers - 1; i > 0; i--) {
    LayerKind k = p->layers[i].kind;
    if (k == L_DENSE || k == L_CONV2D || k == L_ACTIVATION) return p->layers[i].act;
    if (k != L_DROPOUT && k != L_FLATTEN && k != L_RESHAPE) return ACT_linear;
  }
  return ACT_linear;
}

const char *loss_name(LossKind l) {
  static const char *n[] = {"mean_squared_error", "mean_absolute_error", "binary_crossentropy",
                            "categorical_crossentropy", "sparse_categorical_crossentropy"};
  return n[l];
}

// Loss vs output: what Keras would compute silently wrong, we warn about.
static void check_loss_output(Loc loc) {
  Program *p = sema_program();
  if (!model_built()) return;
  const Shape *out = &output_layer()->out;
  Activation act = output_activation();
  bool ce = p->loss == LOSS_CCE || p->loss == LOSS_SPARSE_CCE;
  char sb[128];
  shape_format(out, sb, sizeof sb);
  if (ce && out->rank == 1 && out->dim[0] < 2)
    diag_warning(loc, "%s over a single output unit %s is always 0; the last layer needs one unit per class",
                 loss_name(p->loss), sb);
  if (ce && !p->from_logits && act != ACT_softmax)
    diag_warning(loc, "%s expects probabilities, but the last activation is '%s'; use activation='softmax' or from_logits=True",
                 loss_name(p->loss), activation_name(act));
  if (ce && p->from_logits && act == ACT_softmax)
    diag_warning(loc, "from_logits=True, but the model already ends in softmax: softmax is applied twice");
  if (p->loss == LOSS_BCE && !p->from_logits && act != ACT_sigmoid && act != ACT_softmax)
    diag_warning(loc, "binary_crossentropy expects probabilities, but the last activation is '%s'; use activation='sigmoid' or from_logits=True",
                 activation_name(act));
}

static Value *do_compile(const Expr *call) {
  Program *p = sema_program();
  static const char *const pn[] = {"optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
                                   "steps_per_execution", "jit_compile", "auto_scale_loss"};
  const Expr *a[9];
  if (!bind_args(call, "compile", pn, 9, 9, a)) return value_error();
  bool ok = true;
  Value *opt = NULL;
  if (!a[0]) opt = make_optimizer("RMSprop", NULL, call->loc);  // Keras's default
  else {
    Value *v = eval(a[0]);
    if (v->kind == V_STR) opt = make_optimizer(v->s, NULL, a[0]->loc);
    else if (v->kind == V_OPT || v->kind == V_ERROR) opt = v;
    else if (v->kind == V_PATH) opt = make_optimizer(strrchr(v->s, '.') ? strrchr(v->s, '.') + 1 : v->s, NULL, a[0]->loc);
    else {
      diag_error(a[0]->loc, "optimizer must be a name such as 'adam' or an optimizer such as Adam(), got %s", value_kind_name(v));
      opt = value_error();
    }
  }
  if (opt->kind == V_ERROR) ok = false;
  else p->opt = opt->opt;
  if (!a[1] || a[1]->kind == E_NONE) {
    diag_error(call->loc, "compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'");
    ok = false;
  } else {
    Value *v = eval(a[1]);
    Value *l = v;
    if (v->kind == V_STR) l = make_loss(v->s, NULL, a[1]->loc);
    else if (v->kind == V_PATH) l = make_loss(strrchr(v->s, '.') ? strrchr(v->s, '.') + 1 : v->s, NULL, a[1]->loc);
    else if (v->kind != V_LOSS && v->kind != V_ERROR) {
      diag_error(a[1]->loc, "loss must be a name such as 'mse' or a loss object, got %s", value_kind_name(v));
      l = value_error();
    }
    if (l->kind == V_ERROR) ok = false;
    else p->loss = l->loss, p->from_logits = l->from_logits;
  }
  if (a[2] && a[2]->kind != E_NONE) { diag_error(a[2]->loc, "loss_weights is not supported (one output)"); ok = false; }
  p->n_metrics = 0;
  if (a[3] && a[3]->kind != E_NONE) {
    Value *v = eval(a[3]);
    Value one = {0}, *items[1];
    if (v->kind == V_STR || v->kind == V_METRIC || v->kind == V_PATH) {
      items[0] = v, one.items = items, one.n = 1;
      v = &one;
    }
    if (v->kind == V_ERROR) ok = false;
    else if (v->kind != V_LIST && v->kind != V_TUPLE && v != &one) {
      diag_error(a[3]->loc, "metrics must be a list such as ['accuracy'], got %s", value_kind_name(v));
      ok = false;
    } else {
      for (int i = 0; i < v->n; i++) {
        Value *m = v->items[i];
        Loc ml = a[3]->kind == E_LIST && i < a[3]->args.n ? a[3]->args.items[i]->loc : a[3]->loc;
        if (m->kind == V_STR) m = make_metric(m->s, NULL, ml);
        else if (m->kind == V_PATH) m = make_metric(strrchr(m->s, '.') ? strrchr(m->s, '.') + 1 : m->s, NULL, ml);
        if (m->kind == V_ERROR) { ok = false; continue; }
        if (m->kind != V_METRIC) {
          diag_error(ml, "expected a metric such as 'accuracy', got %s", value_kind_name(m));
          ok = false;
          continue;
        }
        bool dup = false;
        for (int j = 0; j < p->n_metrics; j++) dup |= p->metrics[j] == m->metric;
        if (dup) diag_warning(ml, "metric listed twice; reported once");
        else if (p->n_metrics < 4) p->metrics[p->n_metrics++] = m->metric;
      }
    }
  }
  for (int i = 4; i < 9; i++)
    if (a[i] && a[i]->kind != E_NONE && i != 5 && i != 7)
      diag_warning(a[i]->loc, "compile argument '%s' is ignored", pn[i]);
  if (ok) p->compiled = true;
  check_loss_output(call->loc);
  return value_new(V_NONE, call->loc);
}

static bool get_data(const Expr *e, const char *what, int *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind != V_DATA) {
    diag_error(e->loc, "%s must be data (an array), got %s", what, value_kind_name(v));
    return false;
  }
  *out = (int)v->i;
  return true;
}

static bool same_shape(const Shape *a, const Shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

static void data_shape(const DataValue *d, Shape *s) {
  *s = d->shape;
  if (d->onehot) s->rank = 1, s->dim[0] = d->onehot;
}

// x against the model's input; builds the model from x if it has no input yet.
static bool check_x(const Expr *e, int xi, const char *call_name) {
  Program *p = sema_program();
  const DataValue *d = &p->data[xi];
  Shape xs;
  data_shape(d, &xs);
  if (!model_built()) {
    if (n_pending == 0) {
      diag_error(e->loc, "the model has no layers");
      return false;
    }
    if (!build_model(&xs, NULL, e->loc)) return false;
  }
  const Shape *in = &p->layers[0].out;
  if (xs.rank == 0 && !d->onehot && in->rank == 1 && in->dim[0] == 1) {
    // One number per sample for a model of input (1,): Keras takes it as (n, 1).
    p->data[xi].shape = *in;
    xs = *in;
  }
  if (!same_shape(&xs, in)) {
    char a[160], b[128];
    sema_shape_with_rows(d, a, sizeof a);
    shape_format(in, b, sizeof b);
    diag_error(e->loc, "%s: x has shape %s, but the model expects input of shape %s", call_name, a, b);
    int64_t xt = 1, it = 1;
    bool sized = true;  // sizes from file headers can be anything: no overflow here
    for (int i = 0; i < xs.rank; i++) sized &= mul_ok(xt, xs.dim[i], &xt);
    for (int i = 0; i < in->rank; i++) sized &= mul_ok(it, in->dim[i], &it);
    if (sized && xt == it) {
      char r[128];
      int n = snprintf(r, sizeof r, "x.reshape(-1");
      for (int i = 0; i < in->rank; i++) n += snprintf(r + n, sizeof r - n, ", %lld", (long long)in->dim[i]);
      snprintf(r + n, sizeof r - n, ")");
      diag_note("the sizes agree: reshape the data with %s", r);
    }
    return false;
  }
  if (d->onehot) {
    diag_error(e->loc, "%s: x is one-hot encoded labels, not inputs", call_name);
    return false;
  }
  if (d->row_index) {
    diag_error(e->loc, "%s: x is one sample (x[i]); pass x[i:i+1] or np.expand_dims(x[i], 0)", call_name);
    return false;
  }
  return true;
}

// y against the loss and the model's output.
static bool check_y(const Expr *e, int yi, int xi, const char *call_name) {
  Program *p = sema_program();
  const DataValue *d = &p->data[yi];
  Shape ys, out = output_layer()->out;
  data_shape(d, &ys);
  char a[160], b[128];
  sema_shape_with_rows(d, a, sizeof a);
  shape_format(&out, b, sizeof b);
  if (p->data[xi].rows != d->rows) {
    diag_error(e->loc, "%s: x has %lld samples but y has %lld", call_name, (long long)p->data[xi].rows, (long long)d->rows);
    return false;
  }
  if (out.rank != 1) {
    diag_error(e->loc, "%s: the model's output %s must be one vector per sample for a loss; add Flatten() before the last Dense",
               call_name, b);
    return false;
  }
  bool sparse_y = ys.rank == 0 || (ys.rank == 1 && ys.dim[0] == 1 && !d->onehot);
  switch (p->loss) {
  case LOSS_SPARSE_CCE:
    if (!sparse_y) {
      diag_error(e->loc, "sparse_categorical_crossentropy expects one integer label per sample, but y has shape %s", a);
      if (d->onehot || (ys.rank == 1 && ys.dim[0] == out.dim[0]))
        diag_note("y is one-hot: use loss='categorical_crossentropy'");
      return false;
    }
    if (d->onehot == 0 && d->source == DATA_LITERAL)
      for (int64_t i = 0; i < d->rows; i++)
        if (d->literal[i] < 0 || d->literal[i] >= out.dim[0] || d->literal[i] != floor(d->literal[i])) {
          diag_error(e->loc, "label %g is not a class index in [0, %lld) for the model's output %s", d->literal[i],
                     (long long)out.dim[0], b);
          return false;
        }
    return true;
  case LOSS_CCE:
    if (sparse_y) {
      diag_error(e->loc, "categorical_crossentropy expects one-hot labels of shape (None, %lld), but y has shape %s",
                 (long long)out.dim[0], a);
      diag_note("use loss='sparse_categorical_crossentropy', or y = keras.utils.to_categorical(y, %lld)", (long long)out.dim[0]);
      return false;
    }
    break;
  default:
    if (sparse_y && out.dim[0] == 1) return true;
    break;
  }
  if (!same_shape(&ys, &out)) {
    diag_error(e->loc, "%s: y has shape %s, but the model's output is %s", call_name, a, b);
    if (d->onehot && d->onehot != out.dim[0])
      diag_note("to_categorical made %lld classes, the last layer has %lld units", (long long)d->onehot, (long long)out.dim[0]);
    return false;
  }
  return true;
}

static bool arg_verbose(const Expr *e, int *out) {
  Value *v = eval(e);
  if (v->kind == V_STR && !strcmp(v->s, "auto")) { *out = -1; return true; }
  if (v->kind == V_BOOL) { *out = (int)v->i; return true; }  // verbose=False is 0, as in Python
  int64_t x;
  if (!arg_int(e, "verbose", 0, 2, &x)) return false;
  *out = (int)x;
  return true;
}

static bool arg_batch_size(const Expr *e, int64_t *out) {
  if (!e || e->kind == E_NONE) { *out = 32; return true; }
  return arg_int(e, "batch_size", 1, 1 << 20, out);
}

static bool require_compiled(Loc loc, const char *what) {
  if (sema_program()->compiled) return true;
  diag_error(loc, "%s() before compile(): call model.compile(optimizer=..., loss=...) first", what);
  return false;
}

static Value *do_fit(const Expr *call) {
  Program *p = sema_program();
  static const char *const pn[] = {"x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split",
                                   "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
                                   "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq"};
  const Expr *a[16];
  if (!bind_args(call, "fit", pn, 16, 16, a)) return value_error();
  if (!require_compiled(call->loc, "fit")) return value_error();
  Action *act = sema_add_action(A_FIT, call->loc);
  bool ok = true;
  if (!a[0] || !a[1]) {
    diag_error(call->loc, "fit() needs x and y");
    return value_error();
  }
  if (!get_data(a[0], "x", &act->x) || !get_data(a[1], "y", &act->y)) return value_error();
  if (!check_x(a[0], act->x, "fit") || !check_y(a[1], act->y, act->x, "fit")) ok = false;
  if (!arg_batch_size(a[2], &act->batch_size)) ok = false;
  act->epochs = 1;
  if (a[3] && !arg_int(a[3], "epochs", 0, INT32_MAX, &act->epochs)) ok = false;
  if (a[4] && !arg_verbose(a[4], &act->verbose)) ok = false;
  if (a[5] && a[5]->kind != E_NONE) {
    Value *v = eval(a[5]);
    if (v->kind == V_ERROR) ok = false;
    else if (v->kind != V_LIST && v->kind != V_TUPLE) {
      diag_error(a[5]->loc, "callbacks must be a list, got %s", value_kind_name(v));
      ok = false;
    } else {
      act->callbacks = xalloc(sizeof(Callback) * (v->n + 1));
      for (int i = 0; i < v->n; i++) {
        if (v->items[i]->kind != V_CALLBACK) {
          diag_error(a[5]->loc, "callbacks[%d] is %s, not a callback (EarlyStopping, ModelCheckpoint, CSVLogger)", i,
                     value_kind_name(v->items[i]));
          ok = false;
          continue;
        }
        act->callbacks[act->n_callbacks++] = v->items[i]->cb;
      }
    }
  }
  if (a[6] && !arg_float(a[6], "validation_split", 0, 1, false, &act->validation_split)) ok = false;
  if (act->validation_split >= 1) {
    diag_error(a[6]->loc, "validation_split must be in [0, 1), got %g", act->validation_split);
    ok = false;
  }
  if (a[7] && a[7]->kind != E_NONE) {
    Value *v = eval(a[7]);
    if (v->kind == V_ERROR) ok = false;
    else if ((v->kind != V_TUPLE && v->kind != V_LIST) || v->n != 2 || v->items[0]->kind != V_DATA ||
             v->items[1]->kind != V_DATA) {
      diag_error(a[7]->loc, "validation_data must be a tuple (x_val, y_val)");
      ok = false;
    } else {
      act->val_x = (int)v->items[0]->i, act->val_y = (int)v->items[1]->i;
      if (ok && (!check_x(a[7], act->val_x, "validation_data") || !check_y(a[7], act->val_y, act->val_x, "validation_data")))
        ok = false;
    }
  }
  if (a[8]) {
    Value *v = eval(a[8]);
    if (v->kind == V_STR && !strcmp(v->s, "batch")) act->shuffle = true;
    else if (!arg_bool(a[8], "shuffle", &act->shuffle)) ok = false;
  }
  for (int i = 9; i < 16; i++) {
    if (!a[i] || a[i]->kind == E_NONE) continue;
    if (i == 11) {
      int64_t ie;
      if (arg_int(a[i], "initial_epoch", 0, 0, &ie)) continue;
      ok = false;
      continue;
    }
    if (i == 15) {
      int64_t vf;
      if (arg_int(a[i], "validation_freq", 1, 1, &vf)) continue;
      ok = false;
      continue;
    }
    if (i == 14) {
      diag_warning(a[i]->loc, "validation_batch_size is ignored; validation uses batch_size");
      continue;
    }
    diag_error(a[i]->loc, "fit argument '%s' is not supported yet", pn[i]);
    ok = false;
  }
  if (ok && act->validation_split > 0 && act->val_x < 0) {
    int64_t rows = p->data[act->x].rows;
    int64_t train = (int64_t)(rows * (1 - act->validation_split));
    if (train < 1 || train == rows) {
      diag_error(a[6]->loc, "validation_split=%g of %lld samples leaves %s", act->validation_split, (long long)rows,
                 train < 1 ? "nothing to train on" : "nothing to validate on");
      ok = false;
    }
  }
  for (int i = 0; ok && i < act->n_callbacks; i++) {
    Callback *cb = &act->callbacks[i];
    bool has_val = act->val_x >= 0 || act->validation_split > 0;
    bool monitors = cb->kind == CB_EARLY_STOPPING || cb->kind == CB_MODEL_CHECKPOINT;
    if (monitors && !strncmp(cb->monitor, "val_", 4) && !has_val)
      diag_warning(cb->loc, "%s monitors '%s', but fit() has no validation data", cb->kind == CB_EARLY_STOPPING ? "EarlyStopping" : "ModelCheckpoint",
                   cb->monitor);
  }
  if (!ok) return value_error();
  Value *h = value_new(V_HISTORY, call->loc);
  h->i = act - p->actions;
  return h;
}

static Value *do_evaluate(const Expr *call, bool predict) {
  static const char *const pe[] = {"x", "y", "batch_size", "verbose", "sample_weight", "steps", "callbacks", "return_dict"};
  static const char *const pp[] = {"x", "batch_size", "verbose", "steps", "callbacks"};
  const Expr *a[8];
  const char *name = predict ? "predict" : "evaluate";
  if (!bind_args(call, name, predict ? pp : pe, predict ? 5 : 8, predict ? 5 : 8, a)) return value_error();
  if (!predict && !require_compiled(call->loc, name)) return value_error();
  Action *act = sema_add_action(predict ? A_PREDICT : A_EVALUATE, call->loc);
  int action_index = sema_program()->n_actions - 1;
  if (!a[0]) {
    diag_error(call->loc, "%s() needs x", name);
    return value_error();
  }
  if (!get_data(a[0], "x", &act->x) || !check_x(a[0], act->x, name)) return value_error();
  bool ok = true;
  if (predict) {
    if (!arg_batch_size(a[1], &act->batch_size)) ok = false;
    if (a[2] && !arg_verbose(a[2], &act->verbose)) ok = false;
    for (int i = 3; i < 5; i++)
      if (a[i] && a[i]->kind != E_NONE) { diag_error(a[i]->loc, "predict argument '%s' is not supported yet", pp[i]); ok = false; }
    if (!ok) return value_error();
    Program *p = sema_program();
    DataValue d = {.source = DATA_PREDICTION, .loc = call->loc, .dtype = DT_FLOAT32, .rows = p->data[act->x].rows,
                   .shape = output_layer()->out, .scale = 1, .predict_action = action_index};
    Value *v = value_new(V_DATA, call->loc);
    v->i = sema_add_data(d);
    return v;
  }
  if (!a[1]) {
    diag_error(call->loc, "evaluate() needs y");
    return value_error();
  }
  if (!get_data(a[1], "y", &act->y) || !check_y(a[1], act->y, act->x, name)) return value_error();
  if (!arg_batch_size(a[2], &act->batch_size)) ok = false;
  if (a[3] && !arg_verbose(a[3], &act->verbose)) ok = false;
  for (int i = 4; i < 8; i++)
    if (a[i] && a[i]->kind != E_NONE && a[i]->kind != E_FALSE) {
      diag_error(a[i]->loc, "evaluate argument '%s' is not supported yet", pe[i]);
      ok = false;
    }
  if (!ok) return value_error();
  if (sema_program()->n_metrics == 0) {  // Keras returns the loss alone: a scalar
    Value *v = value_new(V_RESULT_ITEM, call->loc);
    v->i = action_index, v->result = 0;
    return v;
  }
  Value *v = value_new(V_RESULT, call->loc);
  v->i = action_index;
  return v;
}

const char *weights_format_function(WeightsFormat f, bool save) {
  switch (f) {
  case WF_SAFETENSORS: return save ? "nn_save_weights" : "nn_load_weights";
  case WF_WEIGHTS_H5: return save ? "nn_save_weights_h5" : "nn_load_weights_h5";
  case WF_LEGACY_H5_WEIGHTS: return save ? "nn_save_legacy_h5_weights" : "nn_load_weights_h5";
  case WF_LEGACY_H5_MODEL: return save ? "nn_save_legacy_h5_model" : "nn_load_weights_h5";
  case WF_KERAS: return save ? "nn_save_keras" : "nn_load_keras";
  }
  return "nn_save_weights";
}

bool weights_format_uses_hdf5(WeightsFormat f) { return f != WF_SAFETENSORS; }

bool program_uses_hdf5(const Program *p) {
  for (int i = 0; i < p->n_actions; i++) {
    const Action *a = &p->actions[i];
    if ((a->kind == A_SAVE_WEIGHTS || a->kind == A_LOAD_WEIGHTS) && weights_format_uses_hdf5(a->format)) return true;
    for (int c = 0; c < a->n_callbacks; c++)
      if (a->callbacks[c].kind == CB_MODEL_CHECKPOINT && weights_format_uses_hdf5(a->callbacks[c].format)) return true;
  }
  return false;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && !strcmp(s + n - k, suffix);
}

bool weights_format_of(const Expr *at, const char *path, const char *what, bool save, bool whole_model,
                       WeightsFormat *out) {
  bool h5 = ends_with(path, ".h5") || ends_with(path, ".hdf5");
  if (ends_with(path, ".safetensors") && !(whole_model && !strcmp(what, "save"))) *out = WF_SAFETENSORS;
  else if (ends_with(path, ".keras") && (whole_model || !save)) *out = WF_KERAS;
  // A .weights.h5 file holds Keras 3's weights layout, whatever saves it, except model.save,
  // which Keras points at its legacy whole-model writer for any .h5 name.
  else if (ends_with(path, ".weights.h5") && strcmp(what, "save")) *out = WF_WEIGHTS_H5;
  else if (h5 && whole_model) *out = WF_LEGACY_H5_MODEL;
  else if (h5) *out = save ? WF_LEGACY_H5_WEIGHTS : WF_WEIGHTS_H5;
  else {
    if (ends_with(path, ".keras"))
      diag_error(at->loc, "%s writes weights, not a .keras archive: name the file '%.*s.weights.h5', or use model.save('%s')",
                 what, (int)(strlen(path) - strlen(".keras")), path, path);
    else if (whole_model && !strcmp(what, "save"))
      diag_error(at->loc, "model.save() writes a '.keras' archive or a Keras 2 '.h5' file; '%s' is neither", path);
    else
      diag_error(at->loc, "'%s': unknown weights file type; use '.weights.h5' (Keras 3), '.h5' (Keras 2's layout)%s "
                 "or '.safetensors'", path, whole_model || !save ? ", '.keras'" : "");
    return false;
  }
#ifndef NNC_HAVE_HDF5
  if (weights_format_uses_hdf5(*out)) {
    diag_error(at->loc, "this nnc was built without HDF5 (libhdf5-dev), so it cannot %s '%s'; use '.safetensors'",
               save ? "write" : "read", path);
    return false;
  }
#endif
  return true;
}

static Value *do_weights(const Expr *call, bool save) {
  static const char *const ps[] = {"filepath", "overwrite", "max_shard_size"};
  static const char *const pl[] = {"filepath", "skip_mismatch", "by_name"};
  const Expr *a[3];
  if (!bind_args(call, save ? "save_weights" : "load_weights", save ? ps : pl, 3, 2, a)) return value_error();
  if (!a[0]) {
    diag_error(call->loc, "%s() needs a file path", save ? "save_weights" : "load_weights");
    return value_error();
  }
  const char *path;
  if (!arg_str(a[0], "filepath", &path)) return value_error();
  if (!*path) {
    diag_error(a[0]->loc, "the file path is empty");
    return value_error();
  }
  WeightsFormat format;
  if (!weights_format_of(a[0], path, save ? "save_weights" : "load_weights", save, false, &format)) return value_error();
  if (a[1] && a[1]->kind == E_TRUE && !save) { diag_error(a[1]->loc, "skip_mismatch=True is not supported"); return value_error(); }
  if (!model_built()) {
    diag_error(call->loc, "the model has no input shape yet: give the first layer input_shape= or start with Input(shape=...)");
    return value_error();
  }
  Action *act = sema_add_action(save ? A_SAVE_WEIGHTS : A_LOAD_WEIGHTS, call->loc);
  act->path = path;
  act->format = format;
  return value_new(V_NONE, call->loc);
}

// model.save(filepath, overwrite=True): the whole model as Keras 3 (.keras) or Keras 2
// (.h5) writes it; the built program is still the model nnc runs.
static Value *do_save(const Expr *call) {
  static const char *const ps[] = {"filepath", "overwrite", "zipped", "include_optimizer", "save_format"};
  const Expr *a[5];
  if (!bind_args(call, "save", ps, 5, 2, a)) return value_error();
  const char *path;
  if (!a[0]) {
    diag_error(call->loc, "save() needs a file path");
    return value_error();
  }
  if (!arg_str(a[0], "filepath", &path)) return value_error();
  WeightsFormat format;
  if (!weights_format_of(a[0], path, "save", true, true, &format)) return value_error();
  for (int i = 2; i < 5; i++)
    if (a[i] && a[i]->kind != E_NONE && a[i]->kind != E_TRUE) {
      diag_error(a[i]->loc, "save argument '%s' is not supported", ps[i]);
      return value_error();
    }
  if (!model_built()) {
    diag_error(call->loc, "the model has no input shape yet: give the first layer input_shape= or start with Input(shape=...)");
    return value_error();
  }
  Action *act = sema_add_action(A_SAVE_WEIGHTS, call->loc);
  act->path = path;
  act->format = format;
  return value_new(V_NONE, call->loc);
}

Value *model_method(Value *m, const char *method, const Expr *call) {
  if (m->wrapper) {
    if (strcmp(method, "predict")) {
      diag_error(call->fn->loc, "the probability model (Sequential([model, Softmax()])) supports predict() only; "
                                "call %s() on the model itself", method);
      return value_error();
    }
    Value *v = do_evaluate(call, true);
    if (v->kind != V_ERROR) {
      Program *p = sema_program();
      p->actions[p->data[v->i].predict_action].softmax = true;
    }
    return v;
  }
  if (!strcmp(method, "add")) {
    if (call->args.n != 1 || call->kwargs.n) {
      diag_error(call->loc, "add() takes one layer");
      return value_error();
    }
    add_layer_value(eval(call->args.items[0]), call->args.items[0]->loc);
    return value_new(V_NONE, call->loc);
  }
  if (!strcmp(method, "compile")) return do_compile(call);
  if (!strcmp(method, "fit")) return do_fit(call);
  if (!strcmp(method, "evaluate")) return do_evaluate(call, false);
  if (!strcmp(method, "predict")) return do_evaluate(call, true);
  if (!strcmp(method, "save_weights")) return do_weights(call, true);
  if (!strcmp(method, "load_weights")) return do_weights(call, false);
  if (!strcmp(method, "summary")) {
    static const char *const p[] = {"line_length", "positions", "print_fn", "expand_nested", "show_trainable", "layer_range"};
    const Expr *a[6];
    if (!bind_args(call, "summary", p, 6, 6, a)) return value_error();
    if (!model_built()) {
      diag_error(call->loc, "summary(): the model has no input shape yet; give the first layer input_shape= or start with Input(shape=...)");
      return value_error();
    }
    // The model as it is now: layers added later are not in this summary (as in Keras).
    sema_add_action(A_SUMMARY, call->loc)->ints[0] = sema_program()->n_layers;
    return value_new(V_NONE, call->loc);
  }
  if (!strcmp(method, "save")) return do_save(call);
  static const char *const methods[] = {"add", "compile", "fit", "evaluate", "predict", "summary", "save_weights",
                                        "load_weights", "save"};
  diag_error(call->fn->loc, "the model has no method '%s' that nnc supports", method);
  const char *best = diag_closest(method, methods, 9);
  if (best) diag_note("did you mean '%s'?", best);
  return value_error();
}

// Python's repr of a float: the shortest digits that read back the same.
void format_pyfloat(double x, char *buf, size_t cap) {
  if (isnan(x)) { snprintf(buf, cap, "nan"); return; }
  if (isinf(x)) { snprintf(buf, cap, x > 0 ? "inf" : "-inf"); return; }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  // Python prints positional notation for 1e-4 <= |x| < 1e16.
  double ax = fabs(x);
  if (strchr(buf, 'e') && ax >= 1e-4 && ax < 1e16) {
    int digits = 0;
    for (const char *q = buf; *q && *q != 'e'; q++) digits += *q >= '0' && *q <= '9';
    int exp10 = (int)floor(log10(ax));
    int decimals = digits - 1 - exp10;
    snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, x);
  }
  if (!strchr(buf, '.') && !strchr(buf, 'e') && !strchr(buf, 'n')) strncat(buf, ".0", cap - strlen(buf) - 1);
  // Python writes exponents with at least two digits, as C does: nothing to change.
}

static void add_item(Action *a, PrintItem it) {
  a->items = sema_grow(a->items, a->n_items, sizeof(PrintItem));
  a->items[a->n_items++] = it;
}

static void add_text(Action *a, const char *s) {
  // Adjacent text merges, so the generated code prints it with one call (up to a
  // length, so print(1, 1, 1, …) does not copy ever longer strings).
  if (a->n_items && a->items[a->n_items - 1].kind == P_STRING && strlen(a->items[a->n_items - 1].text) < 4096) {
    a->items[a->n_items - 1].text = xprintf("%s%s", a->items[a->n_items - 1].text, s);
    return;
  }
  add_item(a, (PrintItem){.kind = P_STRING, .text = s});
}

Value *do_print(const Expr *call) {
  static const char *const p[] = {"sep", "end", "file", "flush"};
  const Expr *kw[4] = {0};
  ExprList none = {0};
  Expr fake = *call;
  fake.args = none;
  if (!bind_args(&fake, "print", p, 4, 0, kw)) return value_error();
  const char *sep = " ", *end = "\n";
  if (kw[0] && kw[0]->kind != E_NONE && !arg_str(kw[0], "sep", &sep)) return value_error();
  if (kw[1] && kw[1]->kind != E_NONE && !arg_str(kw[1], "end", &end)) return value_error();
  if (kw[2] && kw[2]->kind != E_NONE) {
    diag_error(kw[2]->loc, "print(file=...) is not supported");
    return value_error();
  }
  // Arguments first: print(model.evaluate(x, y)) evaluates before it prints.
  Value **vals = xalloc(sizeof(Value *) * (call->args.n + 1));
  for (int i = 0; i < call->args.n; i++) {
    vals[i] = eval(call->args.items[i]);
    if (vals[i]->kind == V_ERROR) return vals[i];
  }
  Action *act = sema_add_action(A_PRINT, call->loc);
  for (int i = 0; i < call->args.n; i++) {
    if (i) add_text(act, sep);
    if (!text_append(&act->items, &act->n_items, vals[i], 0, NULL, call->args.items[i]->loc)) return value_error();
  }
  add_text(act, end);
  return value_new(V_NONE, call->loc);
}

Value *np_save(const Expr *call) {
  static const char *const p[] = {"file", "arr", "allow_pickle", "fix_imports"};
  const Expr *a[4];
  if (!bind_args(call, "np.save", p, 4, 4, a)) return value_error();
  if (!a[0] || !a[1]) {
    diag_error(call->loc, "np.save() needs a file name and an array");
    return value_error();
  }
  const char *path;
  if (!arg_str(a[0], "file", &path)) return value_error();
  Value *v = eval(a[1]);
  if (v->kind == V_ERROR) return v;
  if (v->kind != V_DATA || sema_program()->data[v->i].source != DATA_PREDICTION) {
    diag_error(a[1]->loc, "np.save() can save the result of model.predict(), got %s", value_kind_name(v));
    return value_error();
  }
  size_t n = strlen(path);
  if (n < 4 || strcmp(path + n - 4, ".npy")) path = xprintf("%s.npy", path);  // numpy appends .npy too
  Action *act = sema_add_action(A_NP_SAVE, call->loc);
  act->path = path;
  act->x = (int)v->i;
  return value_new(V_NONE, call->loc);
}
