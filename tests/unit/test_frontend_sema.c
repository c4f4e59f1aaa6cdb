// test_frontend_sema.c — layers' shapes and parameter counts, Keras's defaults and
// automatic names, optimizers/losses/metrics, data shapes and data/model checks.
//
// Parameter formulas are Keras's documented ones (keras.io/api/layers/...):
//   Dense:   in*units + units                    (core_layers/dense)
//   Conv2D:  kh*kw*cin*filters + filters          (convolution_layers/convolution2d)
//            'valid': out = floor((in - k)/s) + 1; 'same': out = ceil(in/s)
//   Pooling: same output rules; strides default to pool_size (pooling_layers/max_pooling2d)
//   BatchNormalization: 4*C (gamma, beta trainable; moving mean/variance not)
#include "nnc.h"
#include "frontend_util.h"

#include <math.h>
#include <unistd.h>

// A model on its own: HEADER + "model = keras.Sequential([<layers>])".
static Program *model_of(const char *layers) {
  static char buf[4096];
  snprintf(buf, sizeof buf, HEADER "model = keras.Sequential([%s])\n", layers);
  return compile(buf);
}

static void assert_shape(const Shape *s, int rank, int64_t d0, int64_t d1, int64_t d2) {
  int64_t d[3] = {d0, d1, d2};
  cr_assert_eq(s->rank, rank, "rank %d, want %d", s->rank, rank);
  for (int i = 0; i < rank; i++) cr_assert_eq(s->dim[i], d[i], "dim %d is %lld, want %lld", i, (long long)s->dim[i], (long long)d[i]);
}

Test(layers, dense_params_and_no_bias) {
  Program *p = model_of("Dense(64, activation='relu', input_shape=(784,)), Dense(10, use_bias=False)");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->n_layers, 3, "the Input layer comes first");
  cr_assert_eq(p->layers[0].kind, L_INPUT);
  cr_assert_eq(p->layers[1].params, 784 * 64 + 64);
  cr_assert_eq(p->layers[1].act, ACT_relu);
  cr_assert_eq(p->layers[2].params, 64 * 10);
  cr_assert_eq(p->layers[2].act, ACT_linear, "Keras's default activation is linear");
  cr_assert_eq(p->total_params, 784 * 64 + 64 + 640);
  cr_assert_eq(p->trainable_params, p->total_params);
  assert_shape(&p->layers[2].out, 1, 10, 0, 0);
}

Test(layers, dense_on_rank3_acts_on_last_axis) {
  Program *p = model_of("Dense(5, input_shape=(4, 6, 3))");
  cr_assert_not_null(p, "%s", last_error());
  assert_shape(&p->layers[1].out, 3, 4, 6, 5);
  cr_assert_eq(p->layers[1].params, 3 * 5 + 5);
}

Test(layers, conv2d_valid) {
  Program *p = model_of("Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)), Conv2D(64, 5, strides=2)");
  cr_assert_not_null(p, "%s", last_error());
  assert_shape(&p->layers[1].out, 3, 26, 26, 32);
  cr_assert_eq(p->layers[1].params, 3 * 3 * 1 * 32 + 32);
  // floor((26 - 5) / 2) + 1 = 11
  assert_shape(&p->layers[2].out, 3, 11, 11, 64);
  cr_assert_eq(p->layers[2].kh, 5);
  cr_assert_eq(p->layers[2].kw, 5);
  cr_assert_eq(p->layers[2].params, 5 * 5 * 32 * 64 + 64);
}

Test(layers, conv2d_same_with_strides) {
  Program *p = model_of("Conv2D(8, (3, 3), strides=(2, 2), padding='same', input_shape=(7, 8, 3))");
  cr_assert_not_null(p, "%s", last_error());
  // ceil(7/2) = 4, ceil(8/2) = 4
  assert_shape(&p->layers[1].out, 3, 4, 4, 8);
  cr_assert(p->layers[1].pad_same);
  // TF: total padding = max((out-1)*s + k - in, 0): rows 3*2+3-7 = 2 (top 1), cols 3*2+3-8 = 1 (left 0)
  cr_assert_eq(p->layers[1].pad_top, 1);
  cr_assert_eq(p->layers[1].pad_left, 0);
  cr_assert_eq(p->layers[1].params, 3 * 3 * 3 * 8 + 8);
}

Test(layers, pooling_defaults_and_strides) {
  Program *p = model_of("MaxPooling2D(input_shape=(9, 9, 4)), AveragePooling2D((3, 3), strides=1), "
                        "MaxPooling2D(2, padding='same')");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->layers[1].kh, 2, "pool_size defaults to (2, 2)");
  cr_assert_eq(p->layers[1].sh, 2, "strides default to pool_size");
  assert_shape(&p->layers[1].out, 3, 4, 4, 4);  // floor((9-2)/2)+1
  assert_shape(&p->layers[2].out, 3, 2, 2, 4);  // (4-3)/1+1
  assert_shape(&p->layers[3].out, 3, 1, 1, 4);  // ceil(2/2)
  cr_assert_eq(p->total_params, 0);
}

Test(layers, flatten_reshape_global_pool) {
  Program *p = model_of("Flatten(input_shape=(5, 5, 64)), Reshape((-1, 10)), Reshape((40, 40)), Flatten()");
  cr_assert_not_null(p, "%s", last_error());
  assert_shape(&p->layers[1].out, 1, 1600, 0, 0);
  assert_shape(&p->layers[2].out, 2, 160, 10, 0);
  assert_shape(&p->layers[3].out, 2, 40, 40, 0);
  p = model_of("GlobalAveragePooling2D(input_shape=(7, 7, 12)), Dense(3)");
  cr_assert_not_null(p, "%s", last_error());
  assert_shape(&p->layers[1].out, 1, 12, 0, 0);
  p = model_of("GlobalAveragePooling2D(keepdims=True, input_shape=(7, 7, 12))");
  cr_assert_not_null(p, "%s", last_error());
  assert_shape(&p->layers[1].out, 3, 1, 1, 12);
}

Test(layers, dropout_activation_keep_shape) {
  Program *p = model_of("Dense(8, input_shape=(4,)), Dropout(0.25), Activation('tanh')");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_float_eq(p->layers[2].rate, 0.25, 1e-12);
  assert_shape(&p->layers[2].out, 1, 8, 0, 0);
  cr_assert_eq(p->layers[3].act, ACT_tanh);
  cr_assert_eq(p->layers[2].params + p->layers[3].params, 0);
}

Test(layers, batchnorm_params) {
  Program *p = model_of("Conv2D(16, 3, input_shape=(8, 8, 3)), BatchNormalization(), Flatten(), Dense(4), "
                        "BatchNormalization(center=False)");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->layers[2].params, 4 * 16);
  cr_assert_eq(p->layers[2].trainable_params, 2 * 16);
  cr_assert_float_eq(p->layers[2].momentum, 0.99, 1e-12);
  cr_assert_float_eq(p->layers[2].epsilon, 1e-3, 1e-15);
  cr_assert_eq(p->layers[5].params, 3 * 4, "no beta without center");
  cr_assert_eq(p->layers[5].trainable_params, 4);
  cr_assert_eq(p->total_params - p->trainable_params, 2 * 16 + 2 * 4);
}

Test(layers, keras_automatic_names_and_name_argument) {
  Program *p = model_of("Conv2D(4, 3, input_shape=(8, 8, 1)), MaxPooling2D(), Conv2D(4, 3), Flatten(), "
                        "Dense(8, name='hidden'), Dropout(0.1), Dense(8), Dense(2)");
  cr_assert_not_null(p, "%s", last_error());
  const char *want[] = {NULL, "conv2d", "max_pooling2d", "conv2d_1", "flatten", "hidden", "dropout", "dense", "dense_1"};
  for (int i = 1; i < 9; i++) cr_assert_str_eq(p->layers[i].name, want[i]);
}

Test(layers, input_layer_and_model_add) {
  Program *p = compile(HEADER "model = keras.Sequential()\nmodel.add(keras.Input(shape=(28, 28, 1)))\n"
                              "model.add(Conv2D(2, 3))\nmodel.add(Flatten())\nmodel.add(layers.Dense(3))\n");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->n_layers, 4);
  assert_shape(&p->layers[0].out, 3, 28, 28, 1);
  cr_assert_eq(p->layers[3].params, 26 * 26 * 2 * 3 + 3);
}

Test(layers, the_issue_example_counts) {
  const char *cnn = "Conv2D(32, (3, 3), activation='relu', input_shape=(%d, %d, %d)), MaxPooling2D((2, 2)), "
                    "Conv2D(64, (3, 3), activation='relu'), MaxPooling2D((2, 2)), Flatten(), "
                    "Dense(64, activation='relu'), Dense(10, activation='softmax')";
  char buf[1024];
  snprintf(buf, sizeof buf, cnn, 28, 28, 1);
  Program *p = model_of(buf);
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->total_params, 121930);
  snprintf(buf, sizeof buf, cnn, 224, 224, 3);
  p = model_of(buf);
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->total_params, 11964042);
}

Test(layers, argument_errors) {
  model_of("Dense(0, input_shape=(4,))");
  cr_assert(strstr(last_error(), "units must be at least 1, got 0"), "%s", last_error());
  model_of("Dense(2**40, input_shape=(4,))");
  cr_assert(strstr(last_error(), "units must be at most 2147483647"), "%s", last_error());
  model_of("Dense(4, input_shape=(4,)), Dropout(1.0)");
  cr_assert(strstr(last_error(), "rate must be in [0, 1), got 1"), "%s", last_error());
  model_of("Conv2D(4, 5, input_shape=(4, 4, 1))");
  cr_assert(strstr(last_error(), "Conv2D kernel (5, 5) is larger than its input (None, 4, 4, 1)"), "%s", last_error());
  model_of("Dense(4, input_shape=(4,)), Conv2D(4, 3)");
  cr_assert(strstr(last_error(), "Conv2D expects input of rank 3"), "%s", last_error());
  model_of("Dense(10, input_shape=(4,)), Reshape((3, 3))");
  cr_assert(strstr(last_error(), "cannot reshape (None, 10) (10 values per sample) to (None, 3, 3)"), "%s", last_error());
  model_of("Dense(4, activaton='relu', input_shape=(4,))");
  cr_assert(strstr(last_error(), "Dense() got an unexpected keyword argument 'activaton'"), "%s", last_error());
  cr_assert(strstr(diag_text, "did you mean 'activation'?"), "%s", diag_text);
  model_of("Dense(4, activation='rleu', input_shape=(4,))");
  cr_assert(strstr(diag_text, "did you mean 'relu'?"), "%s", diag_text);
}

Test(layers, parameter_count_overflow) {
  model_of("Dense(2**31 - 1, input_shape=(2**31 - 1,)), Dense(2**31 - 1), Dense(2**31 - 1)");
  cr_assert(strstr(last_error(), "parameter count overflows 64 bits"), "%s", last_error());
}

Test(layers, layer_count_is_bounded) {
  size_t cap = 12000 * 40 + 256;
  char *buf = malloc(cap);
  int n = sprintf(buf, HEADER "model = keras.Sequential([Dense(1, input_shape=(1,))])\n");
  for (int i = 0; i < 12000; i++) n += sprintf(buf + n, "model.add(Dense(1))\n");
  cr_assert_null(compile(buf));
  cr_assert(strstr(last_error(), "too many layers (at most 10000)"), "%s", last_error());
  free(buf);
}

//
// compile(): optimizers, losses, metrics
//
static Program *compiled(const char *compile_args) {
  static char buf[2048];
  snprintf(buf, sizeof buf, HEADER "model = keras.Sequential([Dense(3, activation='softmax', input_shape=(4,))])\n"
                                   "model.compile(%s)\n", compile_args);
  return compile(buf);
}

Test(config, optimizer_defaults) {
  Program *p = compiled("optimizer='adam', loss='mse'");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->opt.kind, OPT_ADAM);
  cr_assert_float_eq(p->opt.lr, 0.001, 1e-15);
  cr_assert_float_eq(p->opt.beta1, 0.9, 1e-15);
  cr_assert_float_eq(p->opt.beta2, 0.999, 1e-15);
  cr_assert_float_eq(p->opt.epsilon, 1e-7, 1e-20);
  p = compiled("optimizer='sgd', loss='mse'");
  cr_assert_eq(p->opt.kind, OPT_SGD);
  cr_assert_float_eq(p->opt.lr, 0.01, 1e-15);
  cr_assert_float_eq(p->opt.momentum, 0.0, 1e-15);
  cr_assert(!p->opt.nesterov);
  p = compiled("optimizer='rmsprop', loss='mse'");
  cr_assert_eq(p->opt.kind, OPT_RMSPROP);
  cr_assert_float_eq(p->opt.lr, 0.001, 1e-15);
  cr_assert_float_eq(p->opt.rho, 0.9, 1e-15);
  cr_assert_float_eq(p->opt.epsilon, 1e-7, 1e-20);
  p = compiled("loss='mse'");
  cr_assert_eq(p->opt.kind, OPT_RMSPROP, "Keras's compile() defaults to rmsprop");
}

Test(config, optimizer_calls) {
  Program *p = compiled("optimizer=keras.optimizers.Adam(learning_rate=0.01, beta_1=0.8), loss='mse'");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_float_eq(p->opt.lr, 0.01, 1e-15);
  cr_assert_float_eq(p->opt.beta1, 0.8, 1e-15);
  cr_assert_float_eq(p->opt.beta2, 0.999, 1e-15);
  p = compiled("optimizer=keras.optimizers.SGD(0.1, 0.9, True), loss='mse'");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_float_eq(p->opt.lr, 0.1, 1e-15);
  cr_assert_float_eq(p->opt.momentum, 0.9, 1e-15);
  cr_assert(p->opt.nesterov);
  cr_assert_null(compiled("optimizer='adma', loss='mse'"));
  cr_assert(strstr(last_error(), "unknown optimizer 'adma'"), "%s", last_error());
  cr_assert(strstr(diag_text, "did you mean 'adam'?"), "%s", diag_text);
  cr_assert_null(compiled("optimizer='nadam', loss='mse'"));
  cr_assert(strstr(last_error(), "optimizer 'nadam' is not supported yet"), "%s", last_error());
}

Test(config, losses_and_metrics) {
  static const struct { const char *arg; LossKind want; bool logits; } cases[] = {
      {"loss='mse'", LOSS_MSE, false},
      {"loss='mean_absolute_error'", LOSS_MAE, false},
      {"loss='binary_crossentropy'", LOSS_BCE, false},
      {"loss='categorical_crossentropy'", LOSS_CCE, false},
      {"loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)", LOSS_SPARSE_CCE, true},
      {"loss=keras.losses.MeanSquaredError()", LOSS_MSE, false},
  };
  for (int i = 0; i < 6; i++) {
    char a[256];
    snprintf(a, sizeof a, "optimizer='adam', %s, metrics=['accuracy', 'mae']", cases[i].arg);
    Program *p = compiled(a);
    cr_assert_not_null(p, "%s: %s", cases[i].arg, last_error());
    cr_assert_eq(p->loss, cases[i].want, "%s", cases[i].arg);
    cr_assert_eq(p->from_logits, cases[i].logits, "%s", cases[i].arg);
    cr_assert_eq(p->n_metrics, 2);
    cr_assert_eq(p->metrics[0], MET_ACCURACY);
    cr_assert_eq(p->metrics[1], MET_MAE);
  }
  cr_assert_null(compiled("optimizer='adam', loss='sparse_categorical_crossentropi'"));
  cr_assert(strstr(diag_text, "did you mean 'sparse_categorical_crossentropy'?"), "%s", diag_text);
  cr_assert_null(compiled("optimizer='adam'"));
  cr_assert(strstr(last_error(), "compile() needs a loss"), "%s", last_error());
}

//
// Data shapes and data/model checks
//
#define XY "x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])\ny = np.array([0, 1, 1])\n"
#define MODEL2 "model = keras.Sequential([Dense(2, activation='softmax', input_shape=(2,))])\n"
#define SPARSE "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"

Test(data, literal_arrays) {
  Program *p = compile(HEADER XY MODEL2);
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->n_data, 2);
  const DataValue *x = &p->data[0], *y = &p->data[1];
  cr_assert_eq(x->source, DATA_LITERAL);
  cr_assert_eq(x->rows, 3);
  assert_shape(&x->shape, 1, 2, 0, 0);
  cr_assert_eq(x->dtype, DT_FLOAT64);
  cr_assert_float_eq(x->literal[3], 4.0, 1e-12, "row-major");
  cr_assert_eq(y->dtype, DT_INT64);
  cr_assert_eq(y->shape.rank, 0);
}

Test(data, reshape_expand_dims_scale_to_categorical) {
  Program *p = compile(HEADER "(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()\n"
                              "a = x_train.reshape(-1, 28, 28, 1).astype('float32') / 255.0\n"
                              "b = np.expand_dims(x_test, -1) * 2\n"
                              "c = keras.utils.to_categorical(y_train, 10)\n"
                              "d = x_train.reshape((60000, 784))\n" MODEL2);
  cr_assert_not_null(p, "%s", last_error());
  const DataValue *xtr = &p->data[0];
  cr_assert_eq(xtr->rows, 60000);
  assert_shape(&xtr->shape, 2, 28, 28, 0);
  cr_assert_eq(xtr->dtype, DT_UINT8);
  cr_assert_eq(p->data[3].rows, 10000, "t10k labels");
  // Find the derived values by their shapes.
  const DataValue *a = NULL, *b = NULL, *c = NULL, *d = NULL;
  for (int i = 4; i < p->n_data; i++) {
    const DataValue *v = &p->data[i];
    if (v->onehot) c = v;
    else if (v->shape.rank == 3 && v->rows == 60000 && v->scale != 1) a = v;
    else if (v->shape.rank == 3 && v->rows == 10000 && v->scale != 1) b = v;
    else if (v->shape.rank == 1) d = v;
  }
  cr_assert(a && b && c && d);
  assert_shape(&a->shape, 3, 28, 28, 1);
  cr_assert_float_eq(a->scale, 1 / 255.0, 1e-15);
  assert_shape(&b->shape, 3, 28, 28, 1);
  cr_assert_float_eq(b->scale, 2.0, 1e-15);
  cr_assert_eq(c->onehot, 10);
  assert_shape(&d->shape, 1, 784, 0, 0);
}

Test(data, to_categorical_of_literal_counts_classes) {
  Program *p = compile(HEADER "y = np.array([0, 3, 1])\nz = keras.utils.to_categorical(y)\n" MODEL2);
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->data[1].onehot, 4);
}

Test(data, fit_records_defaults) {
  Program *p = compile(HEADER XY MODEL2 SPARSE "model.fit(x, y, epochs=3, validation_data=(x, y))\nscore = model.evaluate(x, y)\n"
                              "print('acc', score[1])\n");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->n_actions, 3);
  const Action *fit = &p->actions[0];
  cr_assert_eq(fit->kind, A_FIT);
  cr_assert_eq(fit->epochs, 3);
  cr_assert_eq(fit->batch_size, 32, "Keras's default batch size");
  cr_assert(fit->shuffle);
  cr_assert_eq(fit->val_x, 0);
  cr_assert_eq(fit->val_y, 1);
  const Action *pr = &p->actions[2];
  cr_assert_eq(pr->kind, A_PRINT);
  cr_assert_eq(pr->items[1].kind, P_EVAL_RESULT);
  cr_assert_eq(pr->items[1].result, 1);
  cr_assert_eq(pr->items[1].action, 1);
}

Test(data, model_input_from_data_when_no_input_shape) {
  Program *p = compile(HEADER XY "model = keras.Sequential([Dense(4), Dense(2, activation='softmax')])\n" SPARSE
                              "model.fit(x, y)\n");
  cr_assert_not_null(p, "%s", last_error());
  assert_shape(&p->layers[0].out, 1, 2, 0, 0);
  cr_assert_eq(p->total_params, 2 * 4 + 4 + 4 * 2 + 2);
}

Test(data, mismatches_name_both_shapes) {
  cr_assert_null(compile(HEADER XY "model = keras.Sequential([Dense(2, input_shape=(3,))])\n" SPARSE "model.fit(x, y)\n"));
  cr_assert(strstr(last_error(), "fit: x has shape (3, 2), but the model expects input of shape (None, 3)"), "%s", last_error());
  cr_assert_null(compile(HEADER XY MODEL2 "model.compile(optimizer='adam', loss='categorical_crossentropy')\nmodel.fit(x, y)\n"));
  cr_assert(strstr(last_error(), "categorical_crossentropy expects one-hot labels of shape (None, 2), but y has shape (3,)"), "%s", last_error());
  cr_assert_null(compile(HEADER XY "y = keras.utils.to_categorical(y, 2)\n" MODEL2 SPARSE "model.fit(x, y)\n"));
  cr_assert(strstr(last_error(), "sparse_categorical_crossentropy expects one integer label per sample"), "%s", last_error());
  cr_assert_null(compile(HEADER XY "y = keras.utils.to_categorical(y, 3)\n" MODEL2
                         "model.compile(optimizer='adam', loss='categorical_crossentropy')\nmodel.fit(x, y)\n"));
  cr_assert(strstr(last_error(), "fit: y has shape (3, 3), but the model's output is (None, 2)"), "%s", last_error());
  cr_assert_null(compile(HEADER XY "y = np.array([0, 1])\n" MODEL2 SPARSE "model.fit(x, y)\n"));
  cr_assert(strstr(last_error(), "fit: x has 3 samples but y has 2"), "%s", last_error());
  cr_assert_null(compile(HEADER XY MODEL2 "model.fit(x, y)\n"));
  cr_assert(strstr(last_error(), "fit() before compile()"), "%s", last_error());
  cr_assert_null(compile(HEADER XY MODEL2 SPARSE "s = model.evaluate(x, y)\nprint(s[5])\n"));
  cr_assert(strstr(last_error(), "evaluate() returns 2 values (loss and metrics), index 5 is out of range"), "%s", last_error());
}

Test(data, npy_and_csv_headers) {
  // A float32 NPY of shape (5, 3) and a 4x2 CSV, written here.
  char npy[] = "/tmp/nnc_test_XXXXXX.npy", csv[] = "/tmp/nnc_test_XXXXXX.csv";
  int fd = mkstemps(npy, 4);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "wb");
  const char *hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }";
  char h[128];
  int n = snprintf(h, sizeof h, "%-*s\n", 127 - 10, hdr);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(n & 0xff, f), fputc(n >> 8, f);
  fwrite(h, 1, n, f);
  float zeros[15] = {0};
  fwrite(zeros, sizeof zeros, 1, f);
  fclose(f);
  fd = mkstemps(csv, 4);
  f = fdopen(fd, "w");
  fputs("1,2\n3,4\n5,6\n7,8\n", f);
  fclose(f);
  char src[1024];
  snprintf(src, sizeof src, HEADER "a = np.load('%s')\nb = np.loadtxt('%s', delimiter=',')\n" MODEL2, npy, csv);
  Program *p = compile(src);
  unlink(npy), unlink(csv);
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->data[0].rows, 5);
  assert_shape(&p->data[0].shape, 1, 3, 0, 0);
  cr_assert_eq(p->data[0].dtype, DT_FLOAT32);
  cr_assert_eq(p->data[1].rows, 4);
  assert_shape(&p->data[1].shape, 1, 2, 0, 0);
  cr_assert_null(compile(HEADER "a = np.load('/nonexistent/x.npy')\n"));
  cr_assert(strstr(last_error(), "cannot open /nonexistent/x.npy"), "%s", last_error());
  cr_assert_null(compile(HEADER "a = np.loadtxt('/dev/zero')\n"));
  cr_assert(strstr(last_error(), "/dev/zero is not a regular file"), "%s", last_error());
}

// Keras 3's activation strings (keras.activations.get: 'swish' is silu) and the
// parameter each carries into the graph (leaky_relu 0.2, elu 1.0: the functions' defaults).
Test(activations, every_keras_string_is_accepted) {
  static const struct { const char *name; Activation act; double param; } cases[] = {
      {"gelu", ACT_gelu, 0},           {"silu", ACT_silu, 0},         {"swish", ACT_swish, 0},
      {"elu", ACT_elu, 1.0},           {"selu", ACT_selu, 0},         {"leaky_relu", ACT_leaky_relu, 0.2},
      {"softplus", ACT_softplus, 0},   {"hard_sigmoid", ACT_hard_sigmoid, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char buf[256];
    snprintf(buf, sizeof buf, "Dense(4, activation='%s', input_shape=(3,)), Activation('%s')", cases[i].name,
             cases[i].name);
    Program *p = model_of(buf);
    cr_assert_not_null(p, "%s: %s", cases[i].name, last_error());
    for (int l = 1; l <= 2; l++) {
      cr_assert_eq(p->layers[l].act, cases[i].act, "%s", cases[i].name);
      cr_assert_eq(p->layers[l].act_param, cases[i].param, "%s", cases[i].name);
      cr_assert_str_eq(activation_name(p->layers[l].act), cases[i].name);
    }
    cr_assert_eq(p->layers[2].params, 0);
  }
}

// The layers: Keras 3 automatic names (snake case of the class), class in the summary,
// no parameters, and their argument as the activation's parameter.
Test(activations, layers_names_summary_and_parameters) {
  Program *p = model_of("Dense(4, input_shape=(3,)), LeakyReLU(), LeakyReLU(negative_slope=0.1), LeakyReLU(0.05), "
                        "ELU(), ELU(alpha=0.5), ReLU(), ReLU(max_value=None, negative_slope=0.0, threshold=0), "
                        "Softmax(), Softmax(axis=-1)");
  cr_assert_not_null(p, "%s", last_error());
  static const struct { const char *name, *cls; Activation act; double param; } want[] = {
      {"leaky_re_lu", "LeakyReLU", ACT_leaky_relu, 0.3}, {"leaky_re_lu_1", "LeakyReLU", ACT_leaky_relu, 0.1},
      {"leaky_re_lu_2", "LeakyReLU", ACT_leaky_relu, 0.05}, {"elu", "ELU", ACT_elu, 1.0},
      {"elu_1", "ELU", ACT_elu, 0.5}, {"re_lu", "ReLU", ACT_relu, 0}, {"re_lu_1", "ReLU", ACT_relu, 0},
      {"softmax", "Softmax", ACT_softmax, 0}, {"softmax_1", "Softmax", ACT_softmax, 0},
  };
  for (int i = 0; i < 9; i++) {
    const Layer *l = &p->layers[2 + i];
    cr_assert_str_eq(l->name, want[i].name);
    cr_assert_str_eq(l->cls, want[i].cls);
    cr_assert_eq(l->kind, L_ACTIVATION);
    cr_assert_eq(l->act, want[i].act, "%s", l->name);
    cr_assert_eq(l->act_param, want[i].param, "%s", l->name);
    cr_assert_eq(l->params, 0);
    assert_shape(&l->out, 1, 4, 0, 0);
  }
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  print_summary(out, p);
  fclose(out);
  cr_assert(strstr(text, "\nleaky_re_lu_1 (LeakyReLU)    (None, 4)                 0\n"), "%s", text);
  cr_assert(strstr(text, "\nelu (ELU)                    (None, 4)                 0\n"), "%s", text);
  cr_assert(strstr(text, "\nre_lu (ReLU)                 (None, 4)                 0\n"), "%s", text);
  cr_assert(strstr(text, "\nsoftmax (Softmax)            (None, 4)                 0\n"), "%s", text);
  cr_assert(strstr(text, "Total params: 16\n"), "%s", text);
  free(text);
  // Keras 2's name of the slope still works, with Keras 3's deprecation warning.
  p = model_of("Dense(4, input_shape=(3,)), LeakyReLU(alpha=0.25)");
  cr_assert_not_null(p, "%s", last_error());
  cr_assert_eq(p->layers[2].act_param, 0.25);
  cr_assert(strstr(diag_text, "4:71: warning: LeakyReLU's alpha is deprecated in Keras 3; use negative_slope"), "%s",
            diag_text);
}

Test(activations, argument_errors_with_positions) {
  expect_error(HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), LeakyReLU(negative_slope='x')])\n",
               "4:80: error: negative_slope must be a number, got a string");
  expect_error(HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), LeakyReLU(-0.1)])\n",
               "4:65: error: negative_slope must be >= 0, got -0.1");
  expect_error(HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), LeakyReLU(0.1, alpha=0.2)])\n",
               "4:76: error: LeakyReLU got both negative_slope and alpha (its old name)");
  expect_error(HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), ELU(alpha=None)])\n",
               "4:65: error: alpha must be a number, got None");
  expect_error(HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), ReLU(max_value=6)])\n",
               "4:70: error: ReLU(max_value=6) is not supported; only the default max_value=None");
  expect_error(HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), ReLU(threshold=0.5)])\n",
               "4:70: error: ReLU(threshold=0.5) is not supported; only the default threshold=0.0");
  expect_error(HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), Softmax(axis=1)])\n",
               "4:68: error: Softmax(axis=1) is not supported; only the last axis (axis=-1)");
  // The supported list in messages is made from ops.def's ACT rows.
  expect_error(HEADER "model = keras.Sequential([Dense(4, activation='relu6', input_shape=(3,))])\n",
               "4:47: error: activation 'relu6' is not supported yet (supported: linear, relu, sigmoid, tanh, "
               "softmax, gelu, silu, swish, elu, selu, leaky_relu, softplus, hard_sigmoid)");
}
