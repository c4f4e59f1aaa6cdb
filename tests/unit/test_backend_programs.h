// test_backend_programs.h — hand-built Programs for the back end's tests (what sema
// would produce), and helpers to emit, compile and run generated code.
#ifndef TEST_BACKEND_PROGRAMS_H
#define TEST_BACKEND_PROGRAMS_H

#include "nnc.h"
#include "nnc.h"

#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// summary.c is the lead's; until it lands the tests need a stand-in (weak, so the real
// one wins once it is linked).
__attribute__((weak)) void print_summary(FILE *out, const Program *p) {
  fprintf(out, "Model: \"sequential\"\n(%d layers)\n", p->n_layers);
}

__attribute__((unused)) static Shape tp_shape(int rank, int64_t d0, int64_t d1, int64_t d2) {
  Shape s = {rank, {d0, d1, d2, 0}};
  return s;
}

__attribute__((unused)) static Program *tp_new(void) {
  Program *p = calloc(1, sizeof *p);
  p->layers = calloc(32, sizeof *p->layers);
  p->data = calloc(16, sizeof *p->data);
  p->actions = calloc(16, sizeof *p->actions);
  p->source_path = "test.nn";
  p->opt = (Optimizer){.kind = OPT_ADAM, .lr = 0.001, .beta1 = 0.9, .beta2 = 0.999, .epsilon = 1e-7, .rho = 0.9};
  return p;
}

// Keras's automatic names: dense, dense_1, ...
__attribute__((unused)) static const char *tp_name(Program *p, LayerKind kind, const char *base) {
  int k = 0;
  for (int i = 0; i < p->n_layers; i++) k += p->layers[i].kind == kind;
  if (!k) return base;
  char *s = malloc(strlen(base) + 16);
  sprintf(s, "%s_%d", base, k);
  return s;
}

__attribute__((unused)) static Layer *tp_layer(Program *p, LayerKind kind, const char *base) {
  Layer *L = &p->layers[p->n_layers];
  L->kind = kind;
  L->name = tp_name(p, kind, base);
  L->in = p->n_layers ? p->layers[p->n_layers - 1].out : L->in;
  L->out = L->in;
  L->use_bias = true;
  L->kernel_init = INIT_GLOROT_UNIFORM;
  L->bias_init = INIT_ZEROS;
  p->n_layers++;
  return L;
}

__attribute__((unused)) static void tp_count(Program *p, Layer *L, int64_t trainable, int64_t other) {
  L->params = trainable + other;
  L->trainable_params = trainable;
  p->total_params += trainable + other;
  p->trainable_params += trainable;
}

__attribute__((unused)) static Layer *tp_input(Program *p, Shape s) {
  Layer *L = tp_layer(p, L_INPUT, "input_layer");
  L->in = L->out = s;
  return L;
}

__attribute__((unused)) static Layer *tp_dense(Program *p, int64_t units, Activation act) {
  Layer *L = tp_layer(p, L_DENSE, "dense");
  L->units = units;
  L->act = act;
  L->out.dim[L->out.rank - 1] = units;
  tp_count(p, L, L->in.dim[L->in.rank - 1] * units + units, 0);
  return L;
}

__attribute__((unused)) static Layer *tp_conv(Program *p, int64_t filters, int k, int stride, bool same, Activation act) {
  Layer *L = tp_layer(p, L_CONV2D, "conv2d");
  L->units = filters, L->kh = L->kw = k, L->sh = L->sw = stride, L->pad_same = same, L->act = act;
  for (int d = 0; d < 2; d++) {
    int64_t in = L->in.dim[d];
    int64_t out = same ? (in + stride - 1) / stride : (in - k) / stride + 1;
    int64_t total = (out - 1) * stride + k - in;
    if (!same || total < 0) total = 0;
    L->out.dim[d] = out;
    if (d == 0) L->pad_top = total / 2;
    else L->pad_left = total / 2;
  }
  L->out.dim[2] = filters;
  tp_count(p, L, k * k * L->in.dim[2] * filters + filters, 0);
  return L;
}

__attribute__((unused)) static Layer *tp_pool(Program *p, LayerKind kind, int k) {
  Layer *L = tp_layer(p, kind, kind == L_MAXPOOL2D ? "max_pooling2d" : "average_pooling2d");
  L->kh = L->kw = L->sh = L->sw = k;
  L->out.dim[0] = (L->in.dim[0] - k) / k + 1;
  L->out.dim[1] = (L->in.dim[1] - k) / k + 1;
  return L;
}

__attribute__((unused)) static Layer *tp_flatten(Program *p) {
  Layer *L = tp_layer(p, L_FLATTEN, "flatten");
  int64_t k = 1;
  for (int i = 0; i < L->in.rank; i++) k *= L->in.dim[i];
  L->out = tp_shape(1, k, 0, 0);
  return L;
}

__attribute__((unused)) static Layer *tp_gap(Program *p) {
  Layer *L = tp_layer(p, L_GLOBALAVGPOOL2D, "global_average_pooling2d");
  L->out = tp_shape(1, L->in.dim[2], 0, 0);
  return L;
}

__attribute__((unused)) static Layer *tp_dropout(Program *p, double rate) {
  Layer *L = tp_layer(p, L_DROPOUT, "dropout");
  L->rate = rate;
  return L;
}

__attribute__((unused)) static Layer *tp_bn(Program *p) {
  Layer *L = tp_layer(p, L_BATCHNORM, "batch_normalization");
  L->momentum = 0.99, L->epsilon = 1e-3, L->center = L->scale = true, L->bn_axis = -1;
  int64_t c = L->in.dim[L->in.rank - 1];
  L->units = c;
  tp_count(p, L, 2 * c, 2 * c);
  return L;
}

__attribute__((unused)) static Layer *tp_activation(Program *p, Activation act) {
  Layer *L = tp_layer(p, L_ACTIVATION, "activation");
  L->act = act;
  return L;
}

__attribute__((unused)) static void tp_compile(Program *p, LossKind loss, OptKind opt) {
  p->compiled = true;
  p->loss = loss;
  p->opt.kind = opt;
  if (opt == OPT_SGD) p->opt.lr = 0.01;
  p->metrics[0] = MET_ACCURACY;
  p->n_metrics = 1;
}

// Input(28,28,1) → Conv2D(8,3,relu) → MaxPool(2) → Conv2D(16,3,same,relu) → Flatten →
// Dense(32,relu) → Dropout(0.5) → Dense(10,softmax); sparse CCE, adam.
__attribute__((unused)) static Program *tp_cnn(void) {
  Program *p = tp_new();
  tp_input(p, tp_shape(3, 28, 28, 1));
  tp_conv(p, 8, 3, 1, false, ACT_relu);
  tp_pool(p, L_MAXPOOL2D, 2);
  tp_conv(p, 16, 3, 1, true, ACT_relu);
  tp_flatten(p);
  tp_dense(p, 32, ACT_relu);
  tp_dropout(p, 0.5);
  tp_dense(p, 10, ACT_softmax);
  tp_compile(p, LOSS_SPARSE_CCE, OPT_ADAM);
  return p;
}

//
// Emitting, compiling, running
//
__attribute__((unused)) static const char *tp_tmpdir(void) {
  char *dir = strdup("/tmp/nnc-test-XXXXXX");
  if (!mkdtemp(dir)) return NULL;
  return dir;
}

__attribute__((unused)) static int tp_system(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

__attribute__((unused)) static char *tp_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc(n + 1);
  size_t got = fread(text, 1, n, f);
  text[got] = 0;
  fclose(f);
  return text;
}

__attribute__((unused)) static const char *tp_runtime_lib(void) {
  const char *env = getenv("NNC_RUNTIME_LIB");
  if (env) return env;
  __attribute__((unused)) static char path[4096];
  snprintf(path, sizeof path, "%s/libnnrt.a", NNC_BINARY_DIR);
  return path;
}

#endif
