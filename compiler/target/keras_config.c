// keras_config.c — the model as Keras 3 serializes it (get_config of the Sequential and
// its layers, compile_config), so that keras.models.load_model rebuilds it from a .keras
// archive's config.json or a Keras 2 .h5 file's model_config.
//
// Needs: a checked Program. Guarantees: valid JSON text; every layer argument nnc
// implements is written with its value (Keras's defaults fill in the rest when loading);
// layer names are the ones nnc gives the weights, so a file's layers match.
#include "target.h"
#include "nn.h"

#include <stdlib.h>
#include <string.h>

static void jstr(FILE *o, const char *s) {
  fputc('"', o);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') fprintf(o, "\\%c", *c);
    else if (*c < 0x20) fprintf(o, "\\u%04x", *c);
    else fputc(*c, o);
  }
  fputc('"', o);
}

static void jnum(FILE *o, double v) {
  char buf[48];
  nn_format_float(buf, sizeof buf, v);   // Python's repr: 0.001, 1e-07
  fputs(buf, o);
}

static void jbool(FILE *o, bool b) { fputs(b ? "true" : "false", o); }

// `, "key": value` — a member after the first.
static void knum(FILE *o, const char *key, double v) {
  fprintf(o, ", \"%s\": ", key);
  jnum(o, v);
}

static void kbool(FILE *o, const char *key, bool b) { fprintf(o, ", \"%s\": %s", key, b ? "true" : "false"); }

// [null, d0, d1, ...]: a shape with its batch dimension.
static void jbatch_shape(FILE *o, const Shape *s) {
  fputs("[null", o);
  for (int i = 0; i < s->rank; i++) fprintf(o, ", %lld", (long long)s->dim[i]);
  fputc(']', o);
}

static void jpair(FILE *o, int a, int b) { fprintf(o, "[%d, %d]", a, b); }

static const char *dtype_policy =
    "{\"module\": \"keras\", \"class_name\": \"DTypePolicy\", \"config\": {\"name\": \"float32\"}, \"registered_name\": null}";

static void jregularizer(FILE *o, const Layer *l) {
  if (l->l1 == 0 && l->l2 == 0) {
    fputs("null", o);
    return;
  }
  fputs("{\"module\": \"keras.regularizers\", \"class_name\": \"L1L2\", \"config\": {\"l1\": ", o);
  jnum(o, l->l1);
  knum(o, "l2", l->l2);
  fputs("}, \"registered_name\": null}", o);
}

static void jlayer_config(FILE *o, const Layer *l) {
  switch (l->kind) {
  case L_INPUT:
    break;
  case L_DENSE:
  case L_CONV2D:
    if (l->kind == L_DENSE) fprintf(o, ", \"units\": %lld", (long long)l->units);
    else {
      fprintf(o, ", \"filters\": %lld, \"kernel_size\": ", (long long)l->units);
      jpair(o, l->kh, l->kw);
      fputs(", \"strides\": ", o);
      jpair(o, l->sh, l->sw);
      fprintf(o, ", \"padding\": \"%s\", \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], \"groups\": 1",
              l->pad_same ? "same" : "valid");
    }
    fputs(", \"activation\": ", o);
    jstr(o, activation_name(l->act));
    kbool(o, "use_bias", l->use_bias);
    fprintf(o, ", \"kernel_initializer\": \"%s\", \"bias_initializer\": \"%s\", \"kernel_regularizer\": ",
            initializer_name(l->kernel_init), initializer_name(l->bias_init));
    jregularizer(o, l);
    fputs(", \"bias_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": null", o);
    break;
  case L_MAXPOOL2D:
  case L_AVGPOOL2D:
    fputs(", \"pool_size\": ", o);
    jpair(o, l->kh, l->kw);
    fputs(", \"strides\": ", o);
    jpair(o, l->sh, l->sw);
    fprintf(o, ", \"padding\": \"%s\", \"data_format\": \"channels_last\"", l->pad_same ? "same" : "valid");
    break;
  case L_GLOBALAVGPOOL2D:
    fputs(", \"data_format\": \"channels_last\", \"keepdims\": ", o);
    jbool(o, l->keepdims);
    break;
  case L_FLATTEN:
    fputs(", \"data_format\": \"channels_last\"", o);
    break;
  case L_RESHAPE:
    fputs(", \"target_shape\": [", o);
    for (int i = 0; i < l->out.rank; i++) fprintf(o, "%s%lld", i ? ", " : "", (long long)l->out.dim[i]);
    fputc(']', o);
    break;
  case L_DROPOUT:
    knum(o, "rate", l->rate);
    fputs(", \"seed\": null, \"noise_shape\": null", o);
    break;
  case L_ACTIVATION:
    if (!l->cls || !strcmp(l->cls, "Activation")) {
      fputs(", \"activation\": ", o);
      jstr(o, activation_name(l->act));
    } else if (!strcmp(l->cls, "LeakyReLU")) {
      knum(o, "negative_slope", l->act_param);
    } else if (!strcmp(l->cls, "ELU")) {
      knum(o, "alpha", l->act_param);
    } else if (!strcmp(l->cls, "ReLU")) {
      fputs(", \"max_value\": null, \"negative_slope\": 0.0, \"threshold\": 0.0", o);
    } else if (!strcmp(l->cls, "Softmax")) {
      fputs(", \"axis\": -1", o);
    }
    break;
  case L_BATCHNORM:
    fprintf(o, ", \"axis\": %d, \"momentum\": ", l->bn_axis);
    jnum(o, l->momentum);
    knum(o, "epsilon", l->epsilon);
    kbool(o, "center", l->center);
    kbool(o, "scale", l->scale);
    break;
  }
}

static const char *layer_class(const Layer *l) { return l->cls ? l->cls : layer_kind_name(l->kind); }

static void jlayer(FILE *o, const Layer *l) {
  fputs("{\"module\": \"keras.layers\", \"class_name\": ", o);
  jstr(o, layer_class(l));
  fputs(", \"config\": {\"name\": ", o);
  jstr(o, l->name);
  if (l->kind == L_INPUT) {
    fputs(", \"batch_shape\": ", o);
    jbatch_shape(o, &l->out);
    fputs(", \"dtype\": \"float32\", \"sparse\": false}, \"registered_name\": null}", o);
    return;
  }
  fprintf(o, ", \"trainable\": true, \"dtype\": %s", dtype_policy);
  jlayer_config(o, l);
  fputs("}, \"registered_name\": null, \"build_config\": {\"input_shape\": ", o);
  jbatch_shape(o, &l->in);
  fputs("}}", o);
}

static const char *optimizer_class(OptKind k) { return k == OPT_SGD ? "SGD" : k == OPT_ADAM ? "Adam" : "RMSprop"; }

// The optimizer's get_config(): Keras's names and nnc's values.
static void joptimizer_config(FILE *o, const Optimizer *opt) {
  fprintf(o, "{\"name\": \"%s\", \"learning_rate\": ", opt->kind == OPT_SGD ? "SGD" : optimizer_name(opt->kind));
  jnum(o, opt->lr);
  switch (opt->kind) {
  case OPT_SGD:
    knum(o, "momentum", opt->momentum);
    kbool(o, "nesterov", opt->nesterov);
    break;
  case OPT_ADAM:
    knum(o, "beta_1", opt->beta1);
    knum(o, "beta_2", opt->beta2);
    knum(o, "epsilon", opt->epsilon);
    fputs(", \"amsgrad\": false", o);
    break;
  case OPT_RMSPROP:
    knum(o, "rho", opt->rho);
    knum(o, "momentum", opt->momentum);
    knum(o, "epsilon", opt->epsilon);
    kbool(o, "centered", opt->centered);
    break;
  }
  fputc('}', o);
}

static const char *metric_name(MetricKind m) { return m == MET_ACCURACY ? "accuracy" : m == MET_MAE ? "mae" : "mse"; }

// loss and metrics as compile() got them; from_logits needs the loss class.
static void jloss_and_metrics(FILE *o, const Program *p) {
  static const char *classes[] = {"MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
                                  "CategoricalCrossentropy", "SparseCategoricalCrossentropy"};
  fputs("\"loss\": ", o);
  if (p->from_logits)
    fprintf(o, "{\"module\": \"keras.losses\", \"class_name\": \"%s\", \"config\": {\"from_logits\": true}, "
               "\"registered_name\": null}", classes[p->loss]);
  else
    jstr(o, loss_name(p->loss));
  fputs(", \"loss_weights\": null, \"metrics\": [", o);
  for (int i = 0; i < p->n_metrics; i++) fprintf(o, "%s\"%s\"", i ? ", " : "", metric_name(p->metrics[i]));
  fputs("], \"weighted_metrics\": null", o);
}

typedef struct Text { char *buf; size_t len; FILE *o; } Text;

static FILE *text_open(Text *t) {
  t->o = open_memstream(&t->buf, &t->len);
  if (!t->o) internal_error("keras_config", "open_memstream failed");
  return t->o;
}

static char *text_close(Text *t) {
  fclose(t->o);
  char *s = xstrdup(t->buf);
  free(t->buf);
  return s;
}

char *keras_model_config(const Program *p) {
  Text t;
  FILE *o = text_open(&t);
  fputs("{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": {\"name\": ", o);
  jstr(o, p->model_name ? p->model_name : "sequential");
  fprintf(o, ", \"trainable\": true, \"dtype\": %s, \"layers\": [", dtype_policy);
  for (int i = 0; i < p->n_layers; i++) {
    if (i) fputs(", ", o);
    jlayer(o, &p->layers[i]);
  }
  fputs("], \"build_input_shape\": ", o);
  jbatch_shape(o, &p->layers[0].out);
  fputs("}, \"registered_name\": null, \"build_config\": {\"input_shape\": ", o);
  jbatch_shape(o, &p->layers[0].out);
  fputc('}', o);
  if (p->compiled) {
    fputs(", \"compile_config\": {\"optimizer\": {\"module\": \"keras.optimizers\", \"class_name\": ", o);
    jstr(o, optimizer_class(p->opt.kind));
    fputs(", \"config\": ", o);
    joptimizer_config(o, &p->opt);
    fputs(", \"registered_name\": null}, ", o);
    jloss_and_metrics(o, p);
    fputs(", \"run_eagerly\": false, \"steps_per_execution\": 1, \"jit_compile\": false}", o);
  }
  fputc('}', o);
  return text_close(&t);
}

char *keras_training_config(const Program *p) {
  if (!p->compiled) return NULL;
  Text t;
  FILE *o = text_open(&t);
  fputc('{', o);
  jloss_and_metrics(o, p);
  fputs(", \"optimizer_config\": {\"class_name\": ", o);
  jstr(o, optimizer_class(p->opt.kind));
  fputs(", \"config\": ", o);
  joptimizer_config(o, &p->opt);
  fputs("}}", o);
  return text_close(&t);
}
