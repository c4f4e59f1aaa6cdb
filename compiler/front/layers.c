// layers.c — Keras layers: argument lists (names, positional order, defaults, ranges),
// automatic names, output shapes and parameter counts.
//
// Formulas follow Keras's documentation of each layer:
//   Dense:  params = in_last*units + units (bias)           keras.io/api/layers/core_layers/dense
//   Conv2D: params = kh*kw*in_ch*filters + filters; 'valid' out = floor((in-k)/s)+1,
//           'same' out = ceil(in/s)                         keras.io/api/layers/convolution_layers/convolution2d
//   Pooling: same output rules with pool_size, strides default pool_size
//   BatchNormalization: 4*C (gamma, beta trainable; moving mean/variance not)
#include "sema_internal.h"

#include <string.h>

bool mul_ok(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }

typedef struct LayerClass {
  const char *cls;         // Keras class name
  const char *prefix;      // automatic name prefix
  LayerKind kind;
  const char *const *params;
  int nparams, npos;
} LayerClass;

// Activation layers with a fixed function: the ACT row and the default of the parameter
// argument (params[0]) that becomes Node.alpha.
static const struct ActLayer {
  const char *cls;
  Activation act;
  double param;
} act_layers[] = {
    {"LeakyReLU", ACT_leaky_relu, 0.3}, {"ELU", ACT_elu, 1.0}, {"ReLU", ACT_relu, 0}, {"Softmax", ACT_softmax, 0},
};

static const struct ActLayer *act_layer(const char *cls) {
  for (size_t i = 0; i < sizeof act_layers / sizeof *act_layers; i++)
    if (!strcmp(act_layers[i].cls, cls)) return &act_layers[i];
  return NULL;
}

// Keras signatures, positional order first. Keyword-only common arguments follow.
#define COMMON "input_shape", "name", "dtype", "trainable", "batch_size", "input_dim"
static const char *const dense_p[] = {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                                      "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                      "kernel_constraint", "bias_constraint", COMMON};
static const char *const conv2d_p[] = {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                                       "groups", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                                       "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                       "kernel_constraint", "bias_constraint", COMMON};
static const char *const pool_p[] = {"pool_size", "strides", "padding", "data_format", COMMON};
static const char *const gap_p[] = {"data_format", "keepdims", COMMON};
static const char *const flatten_p[] = {"data_format", COMMON};
static const char *const reshape_p[] = {"target_shape", COMMON};
static const char *const dropout_p[] = {"rate", "noise_shape", "seed", COMMON};
static const char *const activation_p[] = {"activation", COMMON};
// Keras 3 signatures; LeakyReLU still takes Keras 2's alpha= (deprecated there too).
static const char *const leaky_relu_p[] = {"negative_slope", "alpha", COMMON};
static const char *const elu_p[] = {"alpha", COMMON};
static const char *const relu_p[] = {"max_value", "negative_slope", "threshold", COMMON};
static const char *const softmax_p[] = {"axis", COMMON};
static const char *const bn_p[] = {"axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                                   "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                                   "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint",
                                   "synchronized", COMMON};
static const char *const input_p[] = {"shape", "batch_size", "dtype", "sparse", "batch_shape", "name", "tensor"};
static const char *const input_layer_p[] = {"shape", "batch_size", "dtype", "sparse", "batch_shape", "name",
                                            "input_shape", "input_tensor"};
#define P(a) a, (int)(sizeof a / sizeof a[0])

static const LayerClass classes[] = {
    {"Dense", "dense", L_DENSE, P(dense_p), 10},
    {"Conv2D", "conv2d", L_CONV2D, P(conv2d_p), 16},
    {"Convolution2D", "conv2d", L_CONV2D, P(conv2d_p), 16},
    {"MaxPooling2D", "max_pooling2d", L_MAXPOOL2D, P(pool_p), 4},
    {"MaxPool2D", "max_pooling2d", L_MAXPOOL2D, P(pool_p), 4},
    {"AveragePooling2D", "average_pooling2d", L_AVGPOOL2D, P(pool_p), 4},
    {"AvgPool2D", "average_pooling2d", L_AVGPOOL2D, P(pool_p), 4},
    {"GlobalAveragePooling2D", "global_average_pooling2d", L_GLOBALAVGPOOL2D, P(gap_p), 2},
    {"GlobalAvgPool2D", "global_average_pooling2d", L_GLOBALAVGPOOL2D, P(gap_p), 2},
    {"Flatten", "flatten", L_FLATTEN, P(flatten_p), 1},
    {"Reshape", "reshape", L_RESHAPE, P(reshape_p), 1},
    {"Dropout", "dropout", L_DROPOUT, P(dropout_p), 3},
    {"Activation", "activation", L_ACTIVATION, P(activation_p), 1},
    {"LeakyReLU", "leaky_re_lu", L_ACTIVATION, P(leaky_relu_p), 1},
    {"ELU", "elu", L_ACTIVATION, P(elu_p), 1},
    {"ReLU", "re_lu", L_ACTIVATION, P(relu_p), 3},
    {"Softmax", "softmax", L_ACTIVATION, P(softmax_p), 1},
    {"BatchNormalization", "batch_normalization", L_BATCHNORM, P(bn_p), 14},
    {"Input", "input_layer", L_INPUT, P(input_p), 7},
    {"InputLayer", "input_layer", L_INPUT, P(input_layer_p), 6},
};
enum { N_CLASSES = sizeof classes / sizeof classes[0] };

const char *const layer_class_names[] = {
    "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Reshape",
    "Dropout", "Activation", "BatchNormalization", "Input", "InputLayer", "Sequential", "LeakyReLU", "ELU",
    "ReLU", "Softmax",
    // Keras layers we know of but do not compile yet get a precise message.
    "Conv1D", "Conv3D", "Embedding", "SimpleRNN", "LSTM", "GRU", "LayerNormalization", "Conv2DTranspose",
    "SeparableConv2D", "DepthwiseConv2D", "UpSampling2D", "ZeroPadding2D", "Cropping2D", "GlobalMaxPooling2D",
    "MaxPooling1D", "PReLU", "Concatenate", "Add", "Rescaling",
};
const int n_layer_class_names = sizeof layer_class_names / sizeof layer_class_names[0];

static const LayerClass *find_class(const char *name) {
  for (int i = 0; i < N_CLASSES; i++)
    if (strcmp(classes[i].cls, name) == 0) return &classes[i];
  return NULL;
}

bool is_layer_class(const char *name) { return find_class(name) != NULL; }

const char *layer_kind_name(LayerKind k) {
  static const char *names[] = {"InputLayer", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D",
                                "GlobalAveragePooling2D", "Flatten", "Reshape", "Dropout", "Activation",
                                "BatchNormalization"};
  return names[k];
}

// Keras counts automatic names per prefix within a session: dense, dense_1, ...
static struct { const char *prefix; int count; } name_counters[32];
static int n_name_counters;

void layer_names_reset(void) { n_name_counters = 0; }

static const char *auto_name(const char *prefix) {
  for (int i = 0; i < n_name_counters; i++)
    if (strcmp(name_counters[i].prefix, prefix) == 0) {
      int k = name_counters[i].count++;
      return k == 0 ? prefix : xprintf("%s_%d", prefix, k);
    }
  name_counters[n_name_counters].prefix = prefix;
  name_counters[n_name_counters++].count = 1;
  return prefix;
}

// Names become tensor names in weight files: keep them to a safe alphabet.
static bool check_layer_name(const Expr *e, const char **out) {
  const char *s;
  if (!arg_str(e, "name", &s)) return false;
  size_t n = strlen(s);
  bool ok = n > 0 && n <= 128;
  for (size_t i = 0; ok && i < n; i++) {
    char c = s[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  }
  if (!ok) {
    diag_error(e->loc, "layer name must be 1 to 128 characters of letters, digits, '_', '-' or '.'");
    return false;
  }
  *out = s;
  return true;
}

static bool reject_if_given(const Expr *e, const char *arg, const char *why) {
  if (!e || e->kind == E_NONE) return true;
  diag_error(e->loc, "%s is not supported%s", arg, why);
  return false;
}

// kernel_regularizer=l2(0.01) and friends.
static bool arg_regularizer(const Expr *e, double *l1, double *l2) {
  *l1 = *l2 = 0;
  if (!e || e->kind == E_NONE) return true;
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind == V_STR) {
    if (!strcmp(v->s, "l1")) { *l1 = 0.01; return true; }
    if (!strcmp(v->s, "l2")) { *l2 = 0.01; return true; }
    if (!strcmp(v->s, "l1_l2")) { *l1 = *l2 = 0.01; return true; }
  }
  if (v->kind != V_REG) {
    diag_error(e->loc, "expected a regularizer such as l2(0.01), got %s", value_kind_name(v));
    return false;
  }
  *l1 = v->l1, *l2 = v->l2;
  return true;
}

// A number argument that must keep its Keras default here ("not supported" otherwise).
static bool default_only(const Expr *e, const char *cls, const char *arg, double dflt, const char *dflt_text) {
  if (!e || (e->kind == E_NONE && !strcmp(dflt_text, "None"))) return true;
  double d;
  if (!arg_float(e, arg, -1e300, 1e300, false, &d)) return false;
  if (d == dflt) return true;
  diag_error(e->loc, "%s(%s=%g) is not supported; only the default %s=%s", cls, arg, d, arg, dflt_text);
  return false;
}

// LeakyReLU(negative_slope), ELU(alpha), ReLU(), Softmax(): the activation is the class's;
// its parameter, where it has one, travels as act_param into Node.alpha.
static bool activation_layer_args(Layer *l, const struct ActLayer *c, const Expr **a) {
  l->act = c->act;
  l->act_param = c->param;
  l->cls = c->cls;
  switch (c->act) {
  case ACT_leaky_relu: {
    const Expr *slope = a[0];
    if (a[1]) {
      if (slope) {
        diag_error(a[1]->loc, "LeakyReLU got both negative_slope and alpha (its old name)");
        return false;
      }
      diag_warning(a[1]->loc, "LeakyReLU's alpha is deprecated in Keras 3; use negative_slope");
      slope = a[1];
    }
    // Keras rejects None and negative slopes (and the y > 0 gradient relies on it).
    return !slope || arg_float(slope, "negative_slope", 0, 1e300, false, &l->act_param);
  }
  case ACT_elu:
    return !a[0] || arg_float(a[0], "alpha", -1e300, 1e300, false, &l->act_param);
  case ACT_relu: {
    // Every argument is checked, so one run reports each one that is not the default.
    bool max_ok = default_only(a[0], "ReLU", "max_value", 0, "None");
    bool slope_ok = default_only(a[1], "ReLU", "negative_slope", 0, "0.0");
    bool threshold_ok = default_only(a[2], "ReLU", "threshold", 0, "0.0");
    return max_ok && slope_ok && threshold_ok;
  }
  case ACT_softmax: {
    int64_t axis = -1;
    if (a[0] && !arg_int(a[0], "axis", -MAX_RANK - 1, MAX_RANK + 1, &axis)) return false;
    if (axis != -1) {
      diag_error(a[0]->loc, "Softmax(axis=%lld) is not supported; only the last axis (axis=-1)", (long long)axis);
      return false;
    }
    return true;
  }
  default:
    internal_error("sema", "activation layer %s has no argument rule", c->cls);
  }
}

// Arguments every layer accepts: name, input_shape (first layer), dtype, trainable.
static bool common_args(Layer *l, const LayerClass *c, const Expr **a, int base, Shape *input_shape,
                        bool *has_input_shape) {
  bool ok = true;
  const Expr *input_shape_e = a[base + 0], *name_e = a[base + 1], *dtype_e = a[base + 2], *trainable_e = a[base + 3],
             *input_dim_e = a[base + 5];
  if (name_e && !check_layer_name(name_e, &l->name)) ok = false;
  if (dtype_e) {
    const char *dt;
    if (!arg_str(dtype_e, "dtype", &dt)) ok = false;
    else if (strcmp(dt, "float32")) {
      diag_error(dtype_e->loc, "dtype '%s' is not supported; nnc computes in float32", dt);
      ok = false;
    }
  }
  if (trainable_e) {
    bool t;
    if (!arg_bool(trainable_e, "trainable", &t)) ok = false;
    else if (!t) {
      diag_error(trainable_e->loc, "trainable=False (frozen layers) is not supported yet");
      ok = false;
    }
  }
  if (input_shape_e) {
    if (!arg_shape(input_shape_e, "input_shape", input_shape)) ok = false;
    else *has_input_shape = true;
  }
  if (input_dim_e) {
    if (c->kind != L_DENSE) {
      diag_error(input_dim_e->loc, "input_dim is only accepted by Dense; use input_shape=");
      ok = false;
    } else {
      int64_t d;
      if (!arg_int(input_dim_e, "input_dim", 1, INT32_MAX, &d)) ok = false;
      else input_shape->rank = 1, input_shape->dim[0] = d, *has_input_shape = true;
    }
  }
  return ok;
}

// The layer value carries its own input shape (from input_shape=) in a side Layer:
// sema makes it the Input layer when this is the first layer of the model.
Value *layer_construct(const char *cls, const Expr *call) {
  const LayerClass *c = find_class(cls);
  const Expr *a[32] = {0};
  if (!bind_args(call, c->cls, c->params, c->nparams, c->npos, a)) return value_error();
  Layer *l = xalloc(sizeof(Layer));
  l->kind = c->kind;
  l->loc = call->loc;
  l->use_bias = true;
  l->kernel_init = INIT_GLOROT_UNIFORM;
  l->bias_init = INIT_ZEROS;
  bool ok = true;
  Shape input_shape = {0};
  bool has_input_shape = false;
  int base = c->nparams - 6;  // COMMON block position for non-Input classes

  switch (c->kind) {
  case L_INPUT: {
    const Expr *shape_e = a[0], *batch_shape_e = a[4], *name_e = a[5];
    if (!strcmp(cls, "InputLayer") && a[6]) shape_e = a[6];
    if (name_e && !check_layer_name(name_e, &l->name)) ok = false;
    if (batch_shape_e && !shape_e) {
      Value *v = eval(batch_shape_e);
      if (v->kind == V_TUPLE && v->n >= 2) {
        // batch_shape=(None, 28, 28, 1): drop the batch entry.
        Value *t = value_new(V_TUPLE, v->loc);
        t->items = v->items + 1, t->n = v->n - 1;
        Shape s = {0};
        if (t->n > MAX_RANK) { diag_error(batch_shape_e->loc, "batch_shape has too many dimensions"); ok = false; }
        for (int i = 0; ok && i < t->n; i++) {
          if (t->items[i]->kind != V_INT || t->items[i]->i < 1) { diag_error(batch_shape_e->loc, "batch_shape dimensions after the batch must be positive integers"); ok = false; }
          else s.dim[s.rank++] = t->items[i]->i;
        }
        l->in = l->out = s;
        has_input_shape = ok;
      } else {
        diag_error(batch_shape_e->loc, "batch_shape must be a tuple like (None, 28, 28, 1)");
        ok = false;
      }
    } else if (!shape_e) {
      diag_error(call->loc, "%s needs shape=, e.g. %s(shape=(28, 28, 1))", cls, cls);
      ok = false;
    } else if (!arg_shape(shape_e, "shape", &l->out)) {
      ok = false;
    } else {
      l->in = l->out;
      has_input_shape = true;
    }
    if (a[1] && a[1]->kind != E_NONE) diag_warning(a[1]->loc, "batch_size is ignored here; fit(batch_size=...) sets it");
    if (!reject_if_given(a[3] && a[3]->kind == E_TRUE ? a[3] : NULL, "sparse=True", "")) ok = false;
    if (!reject_if_given(a[!strcmp(cls, "InputLayer") ? 7 : 6], "tensor=", "")) ok = false;
    break;
  }
  case L_DENSE: {
    if (!a[0]) { diag_error(call->loc, "Dense() missing required argument 'units'"); ok = false; }
    else if (!arg_int(a[0], "units", 1, INT32_MAX, &l->units)) ok = false;
    if (a[1] && !arg_activation(a[1], &l->act)) ok = false;
    if (a[2] && !arg_bool(a[2], "use_bias", &l->use_bias)) ok = false;
    if (a[3] && !arg_initializer(a[3], "kernel_initializer", &l->kernel_init)) ok = false;
    if (a[4] && !arg_initializer(a[4], "bias_initializer", &l->bias_init)) ok = false;
    if (!arg_regularizer(a[5], &l->l1, &l->l2)) ok = false;
    if (!reject_if_given(a[6], "bias_regularizer", " yet; use kernel_regularizer")) ok = false;
    if (!reject_if_given(a[7], "activity_regularizer", " yet")) ok = false;
    if (!reject_if_given(a[8], "kernel_constraint", " yet")) ok = false;
    if (!reject_if_given(a[9], "bias_constraint", " yet")) ok = false;
    break;
  }
  case L_CONV2D: {
    int64_t v2[2];
    if (!a[0]) { diag_error(call->loc, "Conv2D() missing required argument 'filters'"); ok = false; }
    else if (!arg_int(a[0], "filters", 1, INT32_MAX, &l->units)) ok = false;
    if (!a[1]) { diag_error(call->loc, "Conv2D() missing required argument 'kernel_size'"); ok = false; }
    else if (!arg_ints(a[1], "kernel_size", 2, 1, 65536, v2)) ok = false;
    else l->kh = (int)v2[0], l->kw = (int)v2[1];
    l->sh = l->sw = 1;
    if (a[2] && !arg_ints(a[2], "strides", 2, 1, 65536, v2)) ok = false;
    else if (a[2]) l->sh = (int)v2[0], l->sw = (int)v2[1];
    if (a[3]) {
      const char *p;
      if (!arg_str(a[3], "padding", &p)) ok = false;
      else if (!strcmp(p, "same")) l->pad_same = true;
      else if (strcmp(p, "valid")) {
        diag_error(a[3]->loc, "padding must be 'valid' or 'same', got '%s'", p);
        if (!strcmp(p, "causal")) diag_note("'causal' padding is for Conv1D");
        ok = false;
      }
    }
    if (a[4] && a[4]->kind != E_NONE) {
      const char *df;
      if (!arg_str(a[4], "data_format", &df)) ok = false;
      else if (strcmp(df, "channels_last")) { diag_error(a[4]->loc, "data_format '%s' is not supported; nnc models are channels_last (NHWC) as Keras's default", df); ok = false; }
    }
    if (a[5] && (!arg_ints(a[5], "dilation_rate", 2, 1, 65536, v2) || v2[0] != 1 || v2[1] != 1)) {
      diag_error(a[5]->loc, "dilation_rate other than 1 is not supported yet");
      ok = false;
    }
    int64_t groups = 1;
    if (a[6] && (!arg_int(a[6], "groups", 1, INT32_MAX, &groups) || groups != 1)) {
      diag_error(a[6]->loc, "groups other than 1 is not supported yet");
      ok = false;
    }
    if (a[7] && !arg_activation(a[7], &l->act)) ok = false;
    if (a[8] && !arg_bool(a[8], "use_bias", &l->use_bias)) ok = false;
    if (a[9] && !arg_initializer(a[9], "kernel_initializer", &l->kernel_init)) ok = false;
    if (a[10] && !arg_initializer(a[10], "bias_initializer", &l->bias_init)) ok = false;
    if (!arg_regularizer(a[11], &l->l1, &l->l2)) ok = false;
    if (!reject_if_given(a[12], "bias_regularizer", " yet; use kernel_regularizer")) ok = false;
    if (!reject_if_given(a[13], "activity_regularizer", " yet")) ok = false;
    if (!reject_if_given(a[14], "kernel_constraint", " yet")) ok = false;
    if (!reject_if_given(a[15], "bias_constraint", " yet")) ok = false;
    break;
  }
  case L_MAXPOOL2D:
  case L_AVGPOOL2D: {
    int64_t v2[2] = {2, 2};
    if (a[0] && !arg_ints(a[0], "pool_size", 2, 1, 65536, v2)) ok = false;
    l->kh = (int)v2[0], l->kw = (int)v2[1];
    l->sh = l->kh, l->sw = l->kw;
    if (a[1] && a[1]->kind != E_NONE) {
      if (!arg_ints(a[1], "strides", 2, 1, 65536, v2)) ok = false;
      else l->sh = (int)v2[0], l->sw = (int)v2[1];
    }
    if (a[2]) {
      const char *p;
      if (!arg_str(a[2], "padding", &p)) ok = false;
      else if (!strcmp(p, "same")) l->pad_same = true;
      else if (strcmp(p, "valid")) { diag_error(a[2]->loc, "padding must be 'valid' or 'same', got '%s'", p); ok = false; }
    }
    if (a[3] && a[3]->kind != E_NONE) {
      const char *df;
      if (!arg_str(a[3], "data_format", &df)) ok = false;
      else if (strcmp(df, "channels_last")) { diag_error(a[3]->loc, "data_format '%s' is not supported; use channels_last", df); ok = false; }
    }
    break;
  }
  case L_GLOBALAVGPOOL2D: {
    bool keep = false;
    if (a[1] && !arg_bool(a[1], "keepdims", &keep)) ok = false;
    l->keepdims = keep;
    if (a[0] && a[0]->kind != E_NONE) {
      const char *df;
      if (!arg_str(a[0], "data_format", &df)) ok = false;
      else if (strcmp(df, "channels_last")) { diag_error(a[0]->loc, "data_format '%s' is not supported; use channels_last", df); ok = false; }
    }
    break;
  }
  case L_FLATTEN:
    if (a[0] && a[0]->kind != E_NONE) {
      const char *df;
      if (!arg_str(a[0], "data_format", &df)) ok = false;
      else if (strcmp(df, "channels_last")) { diag_error(a[0]->loc, "data_format '%s' is not supported; use channels_last", df); ok = false; }
    }
    break;
  case L_RESHAPE: {
    if (!a[0]) { diag_error(call->loc, "Reshape() missing required argument 'target_shape'"); ok = false; break; }
    Value *v = eval(a[0]);
    if (v->kind == V_ERROR) { ok = false; break; }
    if ((v->kind != V_TUPLE && v->kind != V_LIST) || v->n < 1 || v->n > MAX_RANK) {
      diag_error(a[0]->loc, "target_shape must be a tuple of 1 to %d integers", MAX_RANK);
      ok = false;
      break;
    }
    int minus = 0;
    for (int i = 0; i < v->n; i++) {
      Value *d = v->items[i];
      if (d->kind != V_INT || (d->i < 1 && d->i != -1) || d->i > INT32_MAX) {
        diag_error(a[0]->loc, "target_shape entries must be positive integers or a single -1");
        ok = false;
        break;
      }
      if (d->i == -1 && ++minus > 1) { diag_error(a[0]->loc, "target_shape can contain -1 only once"); ok = false; break; }
      l->out.dim[i] = d->i;
    }
    l->out.rank = v->n;
    break;
  }
  case L_DROPOUT:
    if (!a[0]) { diag_error(call->loc, "Dropout() missing required argument 'rate'"); ok = false; }
    else if (!arg_float(a[0], "rate", 0, 1e300, false, &l->rate)) ok = false;
    else if (l->rate >= 1) { diag_error(a[0]->loc, "rate must be in [0, 1), got %g", l->rate); ok = false; }
    if (!reject_if_given(a[1], "noise_shape", " yet")) ok = false;
    if (a[2] && a[2]->kind != E_NONE) diag_warning(a[2]->loc, "Dropout seed is ignored; the program's --seed decides");
    break;
  case L_ACTIVATION:
    if (act_layer(c->cls)) {
      if (!activation_layer_args(l, act_layer(c->cls), a)) ok = false;
      break;
    }
    if (!a[0]) { diag_error(call->loc, "Activation() missing required argument 'activation'"); ok = false; }
    else if (!arg_activation(a[0], &l->act)) ok = false;
    break;
  case L_BATCHNORM: {
    int64_t axis = -1;
    l->momentum = 0.99, l->epsilon = 1e-3, l->center = l->scale = true;
    if (a[0] && !arg_int(a[0], "axis", -MAX_RANK, MAX_RANK, &axis)) ok = false;
    l->bn_axis = (int)axis;  // checked against the input rank in layer_infer
    if (a[1] && !arg_float(a[1], "momentum", 0, 1, false, &l->momentum)) ok = false;
    if (a[2] && !arg_float(a[2], "epsilon", 0, 1e10, true, &l->epsilon)) ok = false;
    if (a[3] && !arg_bool(a[3], "center", &l->center)) ok = false;
    if (a[4] && !arg_bool(a[4], "scale", &l->scale)) ok = false;
    static const char *const initnames[] = {"beta_initializer", "gamma_initializer", "moving_mean_initializer",
                                            "moving_variance_initializer"};
    static const char *const defaults[] = {"zeros", "ones", "zeros", "ones"};
    for (int i = 0; i < 4; i++)
      if (a[5 + i]) {
        const char *s;
        if (!arg_str(a[5 + i], initnames[i], &s) || strcmp(s, defaults[i])) {
          diag_error(a[5 + i]->loc, "%s other than '%s' is not supported yet", initnames[i], defaults[i]);
          ok = false;
        }
      }
    for (int i = 9; i < 13; i++)
      if (!reject_if_given(a[i], bn_p[i], " yet")) ok = false;
    if (a[13] && a[13]->kind == E_TRUE) diag_warning(a[13]->loc, "synchronized has no effect on one device");
    break;
  }
  }
  if (c->kind != L_INPUT && !common_args(l, c, a, base, &input_shape, &has_input_shape)) ok = false;
  if (!ok) return value_error();
  if (!act_layer(c->cls)) l->act_param = activation_default_param(l->act);  // activation='elu': the ACT row's alpha
  if (!l->name) l->name = auto_name(c->prefix);
  Value *v = value_new(V_LAYER, call->loc);
  v->layer = l;
  // input_shape= on a non-Input layer: remembered in `in` with rank, flagged by i.
  if (c->kind != L_INPUT && has_input_shape) {
    l->in = input_shape;
    v->i = 1;
  }
  return v;
}

static void fmt_shape(const Shape *s, char *buf, size_t cap) { shape_format(s, buf, cap); }

bool layer_infer(Layer *l, const Shape *in) {
  char sb[128];
  l->in = *in;
  Shape out = *in;
  int64_t p = 0, t;
  switch (l->kind) {
  case L_INPUT:
    return true;
  case L_DENSE: {
    if (in->rank < 1) {
      fmt_shape(in, sb, sizeof sb);
      diag_error(l->loc, "Dense expects an input with at least one dimension, got %s", sb);
      return false;
    }
    int64_t fan_in = in->dim[in->rank - 1];
    out.dim[out.rank - 1] = l->units;
    if (!mul_ok(fan_in, l->units, &p) || (l->use_bias && __builtin_add_overflow(p, l->units, &p))) goto overflow;
    l->params = l->trainable_params = p;
    break;
  }
  case L_CONV2D:
  case L_MAXPOOL2D:
  case L_AVGPOOL2D: {
    const char *what = layer_kind_name(l->kind);
    if (in->rank != 3) {
      fmt_shape(in, sb, sizeof sb);
      diag_error(l->loc, "%s expects input of rank 3 (height, width, channels), got %s", what, sb);
      if (in->rank == 2) diag_note("add a channels axis: reshape the data to (..., %lld, %lld, 1) or use input_shape=(%lld, %lld, 1)",
                                   (long long)in->dim[0], (long long)in->dim[1], (long long)in->dim[0], (long long)in->dim[1]);
      return false;
    }
    int64_t H = in->dim[0], W = in->dim[1], C = in->dim[2], OH, OW;
    if (l->pad_same) {
      OH = (H + l->sh - 1) / l->sh, OW = (W + l->sw - 1) / l->sw;
      int64_t pt = (OH - 1) * l->sh + l->kh - H, pl = (OW - 1) * l->sw + l->kw - W;
      l->pad_top = (int)(pt > 0 ? pt / 2 : 0), l->pad_left = (int)(pl > 0 ? pl / 2 : 0);
    } else {
      if (l->kh > H || l->kw > W) {
        fmt_shape(in, sb, sizeof sb);
        diag_error(l->loc, "%s %s (%d, %d) is larger than its input %s with padding='valid'", what,
                   l->kind == L_CONV2D ? "kernel" : "pool_size", l->kh, l->kw, sb);
        diag_note("use padding='same', a smaller %s, or fewer downsampling layers before it",
                  l->kind == L_CONV2D ? "kernel" : "pool_size");
        return false;
      }
      OH = (H - l->kh) / l->sh + 1, OW = (W - l->kw) / l->sw + 1;
    }
    out.dim[0] = OH, out.dim[1] = OW;
    if (l->kind == L_CONV2D) {
      out.dim[2] = l->units;
      if (!mul_ok(l->kh, l->kw, &p) || !mul_ok(p, C, &p) || !mul_ok(p, l->units, &p) ||
          (l->use_bias && __builtin_add_overflow(p, l->units, &p)))
        goto overflow;
      l->params = l->trainable_params = p;
    }
    break;
  }
  case L_GLOBALAVGPOOL2D:
    if (in->rank != 3) {
      fmt_shape(in, sb, sizeof sb);
      diag_error(l->loc, "GlobalAveragePooling2D expects input of rank 3 (height, width, channels), got %s", sb);
      return false;
    }
    if (l->keepdims) out.rank = 3, out.dim[0] = out.dim[1] = 1, out.dim[2] = in->dim[2];
    else out.rank = 1, out.dim[0] = in->dim[2];
    break;
  case L_FLATTEN:
    t = 1;
    for (int i = 0; i < in->rank; i++)
      if (!mul_ok(t, in->dim[i], &t)) goto overflow;
    out.rank = 1, out.dim[0] = t;
    break;
  case L_RESHAPE: {
    int64_t total = 1, known = 1;
    int minus = -1;
    for (int i = 0; i < in->rank; i++)
      if (!mul_ok(total, in->dim[i], &total)) goto overflow;
    Shape target = l->out;
    for (int i = 0; i < target.rank; i++) {
      if (target.dim[i] == -1) minus = i;
      else if (!mul_ok(known, target.dim[i], &known)) goto overflow;
    }
    if (minus >= 0 && known > 0 && total % known == 0) target.dim[minus] = total / known, known = total;
    if (known != total) {
      char tb[128];
      fmt_shape(in, sb, sizeof sb);
      fmt_shape(&l->out, tb, sizeof tb);
      diag_error(l->loc, "cannot reshape %s (%lld values per sample) to %s", sb, (long long)total, tb);
      return false;
    }
    out = target;
    break;
  }
  case L_DROPOUT:
  case L_ACTIVATION:
    break;
  case L_BATCHNORM: {
    int64_t axis = l->bn_axis;
    if (in->rank < 1 || (axis != -1 && axis != in->rank)) {
      // Keras axes count the batch: the channels axis of a rank-3 sample is 3 (or -1).
      fmt_shape(in, sb, sizeof sb);
      diag_error(l->loc, "BatchNormalization supports only the last axis (axis=-1); input is %s", sb);
      return false;
    }
    int64_t C = in->dim[in->rank - 1];
    if (!mul_ok(C, 4, &p)) goto overflow;
    l->params = (l->center ? C : 0) + (l->scale ? C : 0) + 2 * C;
    l->trainable_params = (l->center ? C : 0) + (l->scale ? C : 0);
    l->units = C;
    break;
  }
  }
  l->out = out;
  return true;
overflow:
  diag_error(l->loc, "%s: the shape or parameter count overflows 64 bits", layer_kind_name(l->kind));
  return false;
}
