// Differential testing of the targets: random valid models (layer kinds, activations,
// losses, optimizers, partial last batches, dropout) are written as .nn scripts, built
// for C and for OpenCL, trained a few steps on the same data and seed, and their saved
// weights and predictions compared. Runs on the default OpenCL device (PoCL in CI).
//
// The same random models also check the optimization passes: built with and without
// them (epilogue fusion and buffer reuse: --no-fuse --no-reuse), a model must train to
// bit-identical weights and predictions.
//
// NNC_CROSS_MODELS=N and NNC_CROSS_SEED=S run a longer campaign outside CI; a mismatch
// prints the script, which then belongs in tests/cross/ as a fixed case.
#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn.h"

static uint64_t rng_state;
static uint64_t next(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static int pick(int n) { return (int)(next() % (uint64_t)n); }
static int between(int lo, int hi) { return lo + pick(hi - lo + 1); }

static const char *const activations[] = {"relu",  "sigmoid", "tanh",     "linear",       "gelu",
                                          "silu",  "swish",   "elu",      "selu",         "leaky_relu",
                                          "softplus", "hard_sigmoid"};
enum { N_ACTS = sizeof activations / sizeof activations[0] };

typedef struct Script {
  char text[1 << 18];
  size_t len;
} Script;

static void put(Script *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Script *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s->len += vsnprintf(s->text + s->len, sizeof s->text - s->len, fmt, ap);
  va_end(ap);
  cr_assert_lt(s->len, sizeof s->text, "script too long for the generator's buffer");
}

// A nested list literal: `rows` rows of `per_row` values: inputs in [-1, 1] (kind 0),
// class indices (1), 0/1 targets (2), one-hot rows (3).
static void put_values(Script *s, int rows, int per_row, int classes, int kind) {
  put(s, "[");
  for (int r = 0; r < rows; r++) {
    put(s, "%s[", r ? ", " : "");
    for (int k = 0; k < per_row; k++) {
      double v;
      if (kind == 0) v = sin(1.3 * (r * per_row + k) + 0.37 * r);
      else if (kind == 1) v = (r * 7 + k * 3) % classes;                      // class index
      else if (kind == 2) v = (r * 5 + k) % 2;                                 // 0/1 targets
      else v = k == (r * 3) % classes;                                         // one-hot
      put(s, "%s%.4f", k ? ", " : "", v);
    }
    put(s, "]");
  }
  put(s, "]");
}

// Writes a random model; returns its number of classes/outputs.
static void random_script(Script *s) {
  s->len = 0;
  put(s, "import numpy as np\nfrom tensorflow import keras\nfrom tensorflow.keras import layers, regularizers\n\n");
  bool image = pick(3) != 0;
  int h = between(5, 9), w = between(5, 9), c = between(1, 3), flat = between(2, 10);
  int rows = between(7, 13), batch = between(3, 5);
  int out = between(2, 5);
  int loss = pick(6);  // 0 sparse cce, 1 cce, 2 bce, 3 mse, 4 mae, 5 sparse cce from logits
  int per_sample = image ? h * w * c : flat;
  put(s, "x = np.array(");
  put_values(s, rows, per_sample, 0, 0);
  put(s, ")\n");
  if (image) put(s, "x = x.reshape(-1, %d, %d, %d)\n", h, w, c);
  put(s, "y = np.array(");
  int ywidth = loss == 0 || loss == 5 ? 1 : out;
  put_values(s, rows, ywidth, out, loss == 0 || loss == 5 ? 1 : loss == 1 ? 3 : loss == 2 ? 2 : 0);
  put(s, ")\n\nmodel = keras.Sequential([\n");
  if (image) put(s, "    keras.Input(shape=(%d, %d, %d)),\n", h, w, c);
  else put(s, "    keras.Input(shape=(%d,)),\n", flat);
  if (image) {
    int layers = between(1, 3);
    for (int i = 0; i < layers; i++) {
      int kind = pick(5);
      if (kind <= 1) {
        int k = between(1, 3), st = h > 4 && w > 4 ? between(1, 2) : 1;
        bool same = pick(2);
        if (!same && (h < k || w < k)) same = true;
        put(s, "    layers.Conv2D(%d, (%d, %d), strides=(%d, %d), padding='%s', activation='%s'%s),\n", between(2, 6), k,
            k, st, st, same ? "same" : "valid", activations[pick(N_ACTS)], pick(4) ? "" : ", use_bias=False");
        h = same ? (h + st - 1) / st : (h - k) / st + 1;
        w = same ? (w + st - 1) / st : (w - k) / st + 1;
      } else if (kind == 2 && h >= 2 && w >= 2) {
        put(s, "    layers.%s((2, 2)),\n", pick(2) ? "MaxPooling2D" : "AveragePooling2D");
        h /= 2, w /= 2;
      } else if (kind == 3) {
        put(s, pick(2) ? "    layers.BatchNormalization(),\n" : pick(2) ? "    layers.LeakyReLU(negative_slope=0.1),\n"
                                                                    : "    layers.ELU(alpha=0.7),\n");
      } else {
        put(s, "    layers.Dropout(0.25),\n");
      }
    }
    put(s, pick(3) ? "    layers.Flatten(),\n" : "    layers.GlobalAveragePooling2D(),\n");
  }
  int dense = pick(3);
  for (int i = 0; i < dense; i++) {
    put(s, "    layers.Dense(%d, activation='%s'%s),\n", between(3, 8), activations[pick(N_ACTS)],
        pick(3) ? "" : ", kernel_regularizer=regularizers.l2(0.01)");
    if (!pick(3)) put(s, "    layers.Dropout(0.3),\n");
  }
  const char *out_act = loss <= 1 ? "softmax" : loss == 2 ? "sigmoid" : loss == 5 ? "linear" : activations[pick(N_ACTS)];
  put(s, "    layers.Dense(%d, activation='%s'),\n])\n", out, out_act);
  const char *loss_name[] = {"sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
                             "mse", "mae", "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"};
  const char *opt[] = {"'sgd'", "keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)", "'adam'", "'rmsprop'",
                       "keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)"};
  put(s, "model.compile(optimizer=%s, loss=%s%s%s)\n", opt[pick(5)], loss == 5 ? "" : "'", loss_name[loss],
      loss == 5 ? "" : "'");
  put(s, "model.save_weights('w0.safetensors')\n");
  put(s, "model.fit(x, y, epochs=2, batch_size=%d, shuffle=%s, verbose=0)\n", batch, pick(2) ? "True" : "False");
  put(s, "p = model.predict(x, verbose=0)\nnp.save('pred.npy', p)\nmodel.save_weights('w.safetensors')\n");
}

static int run(const char *cmd) {
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool have_opencl(void) {
  return run(NNC_BINARY_DIR "/nnc devices >/dev/null 2>&1") == 0;
}

// Builds (with `flags`) and runs the script for `target` in dir/<sub>; 0 when both succeed.
static int build_and_run_in(const char *dir, const char *sub, const char *target, const char *flags) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "cd %s && mkdir -p %s && cd %s && " NNC_BINARY_DIR "/nnc build ../model.nn --target %s %s -o prog "
           ">build.log 2>&1 && ./prog --quiet --seed 3 >run.log 2>&1",
           dir, sub, sub, target, flags);
  return run(cmd);
}

static const char *xprintf_test(const char *fmt, const char *arg) {
  static char buf[256];
  snprintf(buf, sizeof buf, fmt, arg);
  return buf;
}

static int build_and_run(const char *dir, const char *target) { return build_and_run_in(dir, target, target, ""); }

// Writes the m-th random model of the campaign into root/m<m>/model.nn; returns its text.
static const char *write_model(const char *root, int m, uint64_t seed, char *dir, size_t cap) {
  rng_state = seed * 1000003 + m;
  static Script s;
  random_script(&s);
  char path[600];
  snprintf(dir, cap, "%s/m%d", root, m);
  mkdir(dir, 0700);
  snprintf(path, sizeof path, "%s/model.nn", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(s.text, f);
  fclose(f);
  return s.text;
}

static bool same_file(const char *a, const char *b) {
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
  return run(cmd) == 0;
}

// Worst |a - b| / (1 + |b|) over every tensor of two safetensors files.
static double compare_weights(const char *a_path, const char *b_path, char *worst, size_t cap) {
  nn_tensor *a, *b;
  int na, nb;
  cr_assert_eq(nn_read_safetensors(a_path, &a, &na), 0, "%s", a_path);
  cr_assert_eq(nn_read_safetensors(b_path, &b, &nb), 0, "%s", b_path);
  cr_assert_eq(na, nb);
  double err = 0;
  for (int i = 0; i < na; i++) {
    cr_assert_str_eq(a[i].name, b[i].name);
    cr_assert_eq(a[i].size, b[i].size);
    for (int64_t k = 0; k < a[i].size; k++) {
      double d = fabs((double)a[i].data[k] - b[i].data[k]) / (1 + fabs((double)b[i].data[k]));
      if (!(d <= err)) err = d, snprintf(worst, cap, "%.200s[%lld]: %g vs %g", a[i].name, (long long)k, a[i].data[k], b[i].data[k]);
    }
  }
  nn_free_tensors(a, na);
  nn_free_tensors(b, nb);
  return err;
}

// A campaign's directory goes when every model passed; a failure keeps it to look at.
static void remove_if_passed(const char *root, int failures) {
  if (failures) return;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  run(cmd);
}

// Worst difference of two trainings' updates from the same initial weights w0, per
// tensor relative to the size of b's update: a wrong gradient changes an update by as
// much as the update, however small the update is next to the weights.
static double compare_updates(const char *a_path, const char *b_path, const char *w0_path, char *worst, size_t cap) {
  nn_tensor *a, *b, *w0;
  int na, nb, n0;
  cr_assert_eq(nn_read_safetensors(a_path, &a, &na), 0, "%s", a_path);
  cr_assert_eq(nn_read_safetensors(b_path, &b, &nb), 0, "%s", b_path);
  cr_assert_eq(nn_read_safetensors(w0_path, &w0, &n0), 0, "%s", w0_path);
  cr_assert(na == nb && nb == n0);
  double err = 0;
  for (int i = 0; i < na; i++) {
    cr_assert(a[i].size == b[i].size && b[i].size == w0[i].size);
    double diff = 0, update = 0;
    for (int64_t k = 0; k < a[i].size; k++) {
      diff = fmax(diff, fabs((double)a[i].data[k] - b[i].data[k]));
      update = fmax(update, fabs((double)b[i].data[k] - w0[i].data[k]));
    }
    double e = diff / (update + 1e-6);
    if (!(e <= err)) err = e, snprintf(worst, cap, "%.200s: updates differ by %g, update %g", a[i].name, diff, update);
  }
  nn_free_tensors(a, na);
  nn_free_tensors(b, nb);
  nn_free_tensors(w0, n0);
  return err;
}

Test(cross_target, random_models_agree, .timeout = 1800) {
  if (!have_opencl()) {
    if (getenv("NNC_NO_OPENCL")) cr_skip_test("no OpenCL device (NNC_NO_OPENCL set)");
    cr_assert_fail("no OpenCL device: 'nnc devices' says why; install pocl-opencl-icd or set NNC_NO_OPENCL=1");
  }
  int models = getenv("NNC_CROSS_MODELS") ? atoi(getenv("NNC_CROSS_MODELS")) : 4;
  uint64_t seed = getenv("NNC_CROSS_SEED") ? strtoull(getenv("NNC_CROSS_SEED"), NULL, 10) : 1;
  char root[] = "/tmp/nnc-cross-XXXXXX";
  cr_assert_not_null(mkdtemp(root));
  int failures = 0;
  for (int m = 0; m < models; m++) {
    char dir[512];
    const char *text = write_model(root, m, seed, dir, sizeof dir);
    int rc_c = build_and_run(dir, "c"), rc_cl = build_and_run(dir, "opencl");
    if (rc_c || rc_cl) {
      fprintf(stderr, "model %d (seed %llu): c exit %d, opencl exit %d; logs in %s\n%s\n", m, (unsigned long long)seed, rc_c,
                   rc_cl, dir, text);
      failures++;
      continue;
    }
    char a[600], b[600], worst[256] = "";
    snprintf(a, sizeof a, "%s/opencl/w.safetensors", dir);
    snprintf(b, sizeof b, "%s/c/w.safetensors", dir);
    double err = compare_weights(a, b, worst, sizeof worst);
    // Float32 kernels that sum in different orders, over a few steps of training.
    if (err > 2e-4) {
      fprintf(stderr, "model %d (seed %llu): weights differ by %.3g (%s)\n%s\n", m, (unsigned long long)seed, err, worst,
                   text);
      failures++;
    }
  }
  cr_expect_eq(failures, 0, "%d of %d random models differ between the C and OpenCL targets (scripts above; kept in %s)",
               failures, models, root);
  remove_if_passed(root, failures);
}

// Writes a fixed script as dir/model.nn; returns it.
static const char *write_script(const char *dir, const char *text) {
  char path[600];
  snprintf(path, sizeof path, "%s/model.nn", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  return text;
}

// A model every fusion applies to, whatever the random ones draw: a conv's gelu then a
// LeakyReLU (a pointwise chain forward and backward), Dense(relu) then Dropout (the
// dropout and relu gradients chained), a softmax output the loss computes, several
// weights for the one update kernel.
static const char fixed_model[] =
    "import numpy as np\nfrom tensorflow import keras\nfrom tensorflow.keras import layers\n\n"
    "x = np.array([[0.1, -0.5, 0.3, 0.9, 0.2, -0.4, 0.7, 0.05, -0.6], [0.4, 0.2, -0.7, 0.1, 0.5, 0.3, -0.2, 0.8, 0.1],\n"
    "              [-0.3, 0.8, 0.5, -0.2, 0.6, -0.1, 0.4, 0.2, 0.9], [0.6, -0.1, 0.2, 0.4, -0.8, 0.7, 0.3, -0.5, 0.2]])\n"
    "x = x.reshape(-1, 3, 3, 1)\ny = np.array([[0], [1], [2], [1]])\n"
    "model = keras.Sequential([\n    keras.Input(shape=(3, 3, 1)),\n"
    "    layers.Conv2D(4, (2, 2), activation='gelu'),\n    layers.LeakyReLU(negative_slope=0.1),\n"
    "    layers.Flatten(),\n    layers.Dense(8, activation='relu'),\n    layers.Dropout(0.3),\n"
    "    layers.Dense(3, activation='softmax'),\n])\n"
    "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
    "model.fit(x, y, epochs=3, batch_size=2, verbose=0)\n"
    "p = model.predict(x, verbose=0)\nnp.save('pred.npy', p)\nmodel.save_weights('w.safetensors')\n";

// Fusion does the same float operations in another place, and reuse only moves buffers:
// with and without them, the same bits on C (layouts fixed: layouts_agree checks those); on
// OpenCL the same weights within 1e-5.
Test(cross_target, passes_change_no_bits, .timeout = 1800) {
  int models = getenv("NNC_CROSS_MODELS") ? atoi(getenv("NNC_CROSS_MODELS")) : 6;
  uint64_t seed = getenv("NNC_CROSS_SEED") ? strtoull(getenv("NNC_CROSS_SEED"), NULL, 10) : 1;
  char root[] = "/tmp/nnc-passes-XXXXXX";
  cr_assert_not_null(mkdtemp(root));
  int failures = 0;
  for (int m = -1; m < models; m++) {   // -1: the fixed model
    char dir[512];
    const char *text = fixed_model;
    if (m >= 0) {
      text = write_model(root, m, seed + 7, dir, sizeof dir);
    } else {
      snprintf(dir, sizeof dir, "%s/fixed", root);
      mkdir(dir, 0700);
      write_script(dir, fixed_model);
    }
    int rc_a = build_and_run_in(dir, "optimized", "c", "--layout=nhwc"),
        rc_b = build_and_run_in(dir, "plain", "c", "--no-fuse --no-reuse --layout=nhwc");
    char wa[600], wb[600], pa[600], pb[600];
    snprintf(wa, sizeof wa, "%s/optimized/w.safetensors", dir);
    snprintf(wb, sizeof wb, "%s/plain/w.safetensors", dir);
    snprintf(pa, sizeof pa, "%s/optimized/pred.npy", dir);
    snprintf(pb, sizeof pb, "%s/plain/pred.npy", dir);
    if (rc_a || rc_b || !same_file(wa, wb) || !same_file(pa, pb)) {
      fprintf(stderr, "model %d: optimized exit %d, unoptimized exit %d, weights %s, predictions %s (in %s)\n%s\n", m, rc_a,
              rc_b, same_file(wa, wb) ? "equal" : "DIFFER", same_file(pa, pb) ? "equal" : "DIFFER", dir, text);
      failures++;
    }
  }
  // OpenCL: the same comparison on the first models. The kernels are the same functions
  // fused or not, but the OpenCL compiler may contract a chain's ops into fused
  // multiply-adds: a bound, not bits.
  int cl_models = have_opencl() ? (models < 2 ? models : 2) : -1;
  for (int m = -1; m < cl_models; m++) {   // -1: the fixed model again
    char dir[512];
    const char *text = fixed_model;
    if (m >= 0) text = write_model(root, m, seed + 7, dir, sizeof dir);
    else snprintf(dir, sizeof dir, "%s/fixed", root);
    int rc_a = build_and_run_in(dir, "cl-optimized", "opencl", ""),
        rc_b = build_and_run_in(dir, "cl-plain", "opencl", "--no-fuse --no-reuse");
    char wa[600], wb[600], worst[256] = "";
    snprintf(wa, sizeof wa, "%s/cl-optimized/w.safetensors", dir);
    snprintf(wb, sizeof wb, "%s/cl-plain/w.safetensors", dir);
    double err = rc_a || rc_b ? INFINITY : compare_weights(wa, wb, worst, sizeof worst);
    if (err > 1e-5) {
      fprintf(stderr, "model %d, OpenCL: optimized exit %d, unoptimized exit %d, weights differ by %.3g (%s; in %s)\n%s\n",
              m, rc_a, rc_b, err, worst, dir, text);
      failures++;
    }
  }
  cr_expect_eq(failures, 0, "%d of %d random models train differently with the optimization passes (kept in %s)", failures,
               models + cl_models + 2, root);
  remove_if_passed(root, failures);
}

// A script of five h x w x 3 images, `layers` between the input and Flatten, a softmax
// over 3 classes; trained 3 epochs at batch 2, its weights and predictions saved.
static const char *conv_script(int h, int w, const char *layers) {
  static Script s;
  s.len = 0;
  put(&s, "import numpy as np\nfrom tensorflow import keras\nfrom tensorflow.keras import layers\n\nx = np.array(");
  put_values(&s, 5, h * w * 3, 0, 0);
  put(&s, ")\nx = x.reshape(-1, %d, %d, 3)\ny = np.array(", h, w);
  put_values(&s, 5, 1, 3, 1);
  put(&s, ")\nmodel = keras.Sequential([\n    keras.Input(shape=(%d, %d, 3)),\n%s", h, w, layers);
  put(&s, "    layers.Flatten(),\n    layers.Dense(3, activation='softmax'),\n])\n"
          "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
          "model.save_weights('w0.safetensors')\n"
          "model.fit(x, y, epochs=3, batch_size=2, verbose=0)\n"
          "p = model.predict(x, verbose=0)\nnp.save('pred.npy', p)\nmodel.save_weights('w.safetensors')\n");
  return s.text;
}

// Random models seldom stack stride-1 convolutions, whose data gradients the packed
// layout computes as flipped convolutions: this one has 'same' and 'valid' ones, odd and
// even kernels.
static const char *deep_convs(void) {
  return conv_script(7, 6,
                     "    layers.Conv2D(5, (3, 3), padding='same', activation='tanh'),\n"
                     "    layers.Conv2D(4, (2, 2), padding='same', activation='relu'),\n"
                     "    layers.Conv2D(6, (3, 2), activation='sigmoid'),\n"
                     "    layers.Conv2D(3, (2, 3), activation='tanh'),\n");
}

// Filters in whole blocks of channels at every vector width (32, 64) and inputs of one
// partial block (3) or whole ones: the blocked filter gradients, with 'same' padding,
// stride 2 and a non-square window.
static const char *blocked_convs(void) {
  return conv_script(9, 8,
                     "    layers.Conv2D(32, (3, 3), padding='same', activation='relu'),\n"
                     "    layers.Conv2D(32, (2, 2), strides=(2, 2), padding='same', activation='tanh'),\n"
                     "    layers.Conv2D(64, (3, 2), activation='sigmoid'),\n");
}

// Layouts (layout.c): the same random models built with every contraction NHWC, with
// the cost model's choice, with every one that can be packed, with every filter gradient
// that can be blocked, and with every forward convolution's im2col kept for its filter
// gradient (cols). A forward node and a Dense data gradient give the same bits packed; a
// convolution's packed data gradient and blocked filter gradient sum in another order. So
// models without convolutions train to the same bits, the others to the same weight
// updates within float reassociation; cols gives NHWC's bits always.
Test(cross_target, layouts_agree, .timeout = 1800) {
  int models = getenv("NNC_CROSS_MODELS") ? atoi(getenv("NNC_CROSS_MODELS")) : 5;
  uint64_t seed = getenv("NNC_CROSS_SEED") ? strtoull(getenv("NNC_CROSS_SEED"), NULL, 10) : 1;
  char root[] = "/tmp/nnc-layouts-XXXXXX";
  cr_assert_not_null(mkdtemp(root));
  static const char *const layouts[] = {"auto", "packed", "blocked", "cols"};
  int failures = 0, images = 0;
  for (int m = 0; m <= models + 1; m++) {
    char dir[512];
    const char *text = write_model(root, m, seed + 13, dir, sizeof dir);
    if (m == models) text = write_script(dir, deep_convs());   // the packed data gradients
    if (m == models + 1) text = write_script(dir, blocked_convs());
    bool image = strstr(text, "Conv2D") != NULL;
    images += image;
    int rc_n = build_and_run_in(dir, "nhwc", "c", "--layout=nhwc");
    for (int l = 0; l < (int)(sizeof layouts / sizeof layouts[0]); l++) {
      int rc = build_and_run_in(dir, layouts[l], "c", xprintf_test("--layout=%s", layouts[l]));
      char wa[600], wb[600], w0[600], pa[600], pb[600], worst[256] = "";
      snprintf(wa, sizeof wa, "%s/%s/w.safetensors", dir, layouts[l]);
      snprintf(wb, sizeof wb, "%s/nhwc/w.safetensors", dir);
      snprintf(w0, sizeof w0, "%s/nhwc/w0.safetensors", dir);
      snprintf(pa, sizeof pa, "%s/%s/pred.npy", dir, layouts[l]);
      snprintf(pb, sizeof pb, "%s/nhwc/pred.npy", dir);
      bool ok = rc == 0 && rc_n == 0;
      double err = ok ? compare_updates(wa, wb, w0, worst, sizeof worst) : 0;
      bool bits = !image || !strcmp(layouts[l], "cols");
      if (ok && bits) ok = same_file(wa, wb) && same_file(pa, pb);
      if (ok && !bits) ok = err <= 1e-3;
      if (!ok) {
        fprintf(stderr, "model %d: --layout=%s exit %d, nhwc exit %d, updates differ by %.3g of their size %s(%s)\n%s\n", m,
                layouts[l], rc, rc_n, err, bits ? "or not bit for bit " : "", worst, text);
        failures++;
      }
    }
  }
  cr_expect_gt(images, 0, "no random model with a convolution: the packed convolutions went untested");
  cr_expect_eq(failures, 0, "%d runs of %d random models train differently across layouts (kept in %s)", failures, models,
               root);
  remove_if_passed(root, failures);
}
