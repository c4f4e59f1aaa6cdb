// test_runtime_fit.c — the training loop on small fake models written here: batching,
// shuffling, validation, Keras's running means, progress/JSON output, callbacks,
// evaluate/predict, and the metrics.
#include "nn.h"
#include "test_runtime_util.h"

#include <math.h>

//
// A fake model: y = w*x + b trained by plain SGD on mean squared error, which also
// records which samples each step saw.
//
typedef struct fake {
  float w, b, lr;
  int64_t visits[256];     // times each sample (x holds its row number) was trained on
  int64_t order[4096];     // rows in the order trained
  int64_t n_order;
  int batch_sizes[1024];
  int n_batches;
  int64_t infer_seen[256];
  const float *epoch_loss; // when set: train_step returns epoch_loss[batch / steps_per_epoch]
  int steps_per_epoch;
  bool record;             // x is a row number: record it (and do not learn)
} fake;

static fake F;
static nn_param P[2];

static float train_step(nn_model *m, const float *x, const float *y, int n, nn_rng *rng,
                        float *out) {
  fake *f = m->state;
  f->batch_sizes[f->n_batches++] = n;
  double loss = 0, gw = 0, gb = 0;
  for (int i = 0; i < n; i++) {
    out[i] = f->w * x[i] + f->b;
    double e = out[i] - y[i];
    loss += e * e;
    gw += 2 * e * x[i];
    gb += 2 * e;
    if (f->record) {
      f->visits[(int)x[i]]++;
      f->order[f->n_order++] = (int64_t)x[i];
    }
  }
  if (f->epoch_loss) {
    int epoch = (f->n_batches - 1) / f->steps_per_epoch;
    f->w = (float)epoch;  // weights say which epoch produced them
    return f->epoch_loss[epoch];
  }
  if (f->record)
    return (float)n;  // a known per-batch loss, to check the weighted mean
  f->w -= f->lr * (float)(gw / n);
  f->b -= f->lr * (float)(gb / n);
  return (float)(loss / n);
}

static float infer(nn_model *m, const float *x, const float *y, int n, float *out) {
  fake *f = m->state;
  double loss = 0;
  for (int i = 0; i < n; i++) {
    out[i] = f->w * x[i] + f->b;
    if (f->record && x[i] >= 0 && x[i] < 256)
      f->infer_seen[(int)x[i]]++;
    if (y)
      loss += (out[i] - y[i]) * (out[i] - y[i]);
  }
  return y ? (float)(loss / n) : 0;
}

static nn_model fake_model(int max_batch) {
  memset(&F, 0, sizeof F);
  F.lr = 0.1f;
  P[0] = (nn_param){"dense.kernel", 2, {1, 1}, 1, &F.w, true};
  P[1] = (nn_param){"dense.bias", 1, {1}, 1, &F.b, true};
  return (nn_model){.name = "fake", .n_params = 2, .params = P, .in_width = 1, .out_width = 1,
                    .label_width = 1, .max_batch = max_batch, .loss = NN_LOSS_MSE,
                    .train_step = train_step, .infer = infer, .state = &F};
}

// Data over a static array (nothing to free).
static nn_data view(double *v, int64_t rows) {
  nn_data d = {.dtype = NN_F64, .rows = rows, .row_size = 1, .buf = v, .scale = 1};
  strcpy(d.origin, "test data");
  return d;
}

// x = row number, y = 2x + 1.
static double XS[256], YS[256];
static void make_data(nn_data *x, nn_data *y, int rows) {
  for (int i = 0; i < rows; i++) {
    XS[i] = i;
    YS[i] = 2 * i + 1;
  }
  *x = view(XS, rows);
  *y = view(YS, rows);
}

static nn_options quiet_options(void) {
  nn_options o = {.epochs = -1, .batch_size = -1, .quiet = true};
  return o;
}

Test(fit, visits_every_sample_once_per_epoch_including_partial_batch) {
  nn_model m = fake_model(4);
  F.record = true;
  nn_data x, y;
  make_data(&x, &y, 10);
  nn_fit_config cfg = {.epochs = 3, .batch_size = 4, .shuffle = true};
  nn_rng rng;
  nn_rng_seed(&rng, 1);
  nn_options o = quiet_options();
  cr_assert_eq(nn_fit(&m, &cfg, &x, &y, &rng, &o), 0);
  for (int i = 0; i < 10; i++) cr_assert_eq(F.visits[i], 3, "sample %d seen %lld times", i, (long long)F.visits[i]);
  cr_assert_eq(F.n_batches, 9);
  int want[3] = {4, 4, 2};
  for (int b = 0; b < 9; b++) cr_assert_eq(F.batch_sizes[b], want[b % 3]);
  // Each epoch is a permutation, and shuffled.
  bool shuffled = false;
  for (int i = 0; i < 30; i++) shuffled |= F.order[i] != i % 10;
  cr_assert(shuffled);
}

static void run_order(uint64_t seed, bool shuffle, int64_t *order) {
  nn_model m = fake_model(3);
  F.record = true;
  nn_data x, y;
  make_data(&x, &y, 20);
  nn_fit_config cfg = {.epochs = 2, .batch_size = 3, .shuffle = shuffle};
  nn_rng rng;
  nn_rng_seed(&rng, seed);
  nn_options o = quiet_options();
  cr_assert_eq(nn_fit(&m, &cfg, &x, &y, &rng, &o), 0);
  memcpy(order, F.order, sizeof(int64_t) * 40);
}

Test(fit, shuffle_is_deterministic_given_the_seed) {
  int64_t a[40], b[40], c[40], d[40];
  run_order(7, true, a);
  run_order(7, true, b);
  run_order(8, true, c);
  run_order(7, false, d);
  cr_assert_eq(memcmp(a, b, sizeof a), 0);
  cr_assert_neq(memcmp(a, c, sizeof a), 0);
  cr_assert_neq(memcmp(a, a + 20, sizeof(int64_t) * 20), 0, "epochs should differ");
  for (int i = 0; i < 40; i++) cr_assert_eq(d[i], i % 20);
}

Test(fit, validation_split_takes_the_unshuffled_tail) {
  nn_model m = fake_model(4);
  F.record = true;
  nn_data x, y;
  make_data(&x, &y, 10);
  nn_fit_config cfg = {.epochs = 2, .batch_size = 4, .shuffle = true, .validation_split = 0.2};
  nn_rng rng;
  nn_rng_seed(&rng, 3);
  nn_options o = quiet_options();
  cr_assert_eq(nn_fit(&m, &cfg, &x, &y, &rng, &o), 0);
  for (int i = 0; i < 8; i++) {
    cr_assert_eq(F.visits[i], 2);
    cr_assert_eq(F.infer_seen[i], 0);
  }
  for (int i = 8; i < 10; i++) {
    cr_assert_eq(F.visits[i], 0, "validation row %d was trained on", i);
    cr_assert_eq(F.infer_seen[i], 2);
  }
}

Test(fit, learns_linear_regression) {
  nn_model m = fake_model(8);
  static double xs[64], ys[64];
  for (int i = 0; i < 64; i++) {
    xs[i] = -1 + 2.0 * i / 63;
    ys[i] = 2 * xs[i] + 1;
  }
  nn_data x = view(xs, 64), y = view(ys, 64);
  nn_fit_config cfg = {.epochs = 60, .batch_size = 8, .shuffle = true};
  nn_rng rng;
  nn_rng_seed(&rng, 0);
  nn_options o = quiet_options();
  cr_assert_eq(nn_fit(&m, &cfg, &x, &y, &rng, &o), 0);
  cr_assert_float_eq(F.w, 2.0f, 1e-3);
  cr_assert_float_eq(F.b, 1.0f, 1e-3);
  double r[1];
  cr_assert_eq(nn_evaluate(&m, &x, &y, 32, 0, &o, r), 0);
  cr_assert_lt(r[0], 1e-5);
}

static char *fit_output(nn_model *m, nn_fit_config *cfg, nn_options *o, int rows) {
  nn_data x, y;
  make_data(&x, &y, rows);
  nn_rng rng;
  nn_rng_seed(&rng, 1);
  capture c = capture_begin(1, "stdout.txt");
  int rc = nn_fit(m, cfg, &x, &y, &rng, o);
  char *out = capture_end(&c);
  cr_assert_eq(rc, 0);
  return out;
}

Test(fit, json_reports_keras_running_means) {
  nn_model m = fake_model(4);
  F.record = true;  // batch losses 4, 4, 2 → mean over samples (16+16+4)/10 = 3.6
  nn_fit_config cfg = {.epochs = 2, .batch_size = 4, .shuffle = false, .verbose = 1};
  nn_options o = {.epochs = -1, .batch_size = -1, .json = true};
  char *out = fit_output(&m, &cfg, &o, 10);
  cr_assert(strstr(out, "{\"epoch\":1,\"loss\":3.6,\"seconds\":"), "%s", out);
  cr_assert(strstr(out, "{\"epoch\":2,\"loss\":3.6,\"seconds\":"), "%s", out);
  cr_assert_null(strstr(out, "Epoch 1/2"), "bars printed with --json: %s", out);
  free(out);
}

Test(fit, options_override_epochs_and_batch_size) {
  nn_model m = fake_model(8);
  F.record = true;
  nn_fit_config cfg = {.epochs = 5, .batch_size = 4, .shuffle = false};
  nn_options o = {.epochs = 1, .batch_size = 8, .quiet = true};
  free(fit_output(&m, &cfg, &o, 10));
  cr_assert_eq(F.n_batches, 2);
  cr_assert_eq(F.batch_sizes[0], 8);
}

Test(fit, progress_lines_keras_2_style) {
  nn_model m = fake_model(4);
  F.record = true;
  m.n_metrics = 1;
  m.metrics[0] = NN_METRIC_MAE;
  nn_fit_config cfg = {.epochs = 2, .batch_size = 4, .shuffle = false, .verbose = 1};
  nn_options o = {.epochs = -1, .batch_size = -1};
  char *out = fit_output(&m, &cfg, &o, 10);
  // Not a terminal: "Epoch i/n" and the final bar line only.
  cr_assert_eq(strncmp(out, "Epoch 1/2\n3/3 [==============================] - 0s ", 50), 0, "%s", out);
  cr_assert(strstr(out, "/step - loss: 3.6000 - mae: "), "%s", out);
  cr_assert(strstr(out, "\nEpoch 2/2\n3/3 [="), "%s", out);
  cr_assert_null(strchr(out, '\r'));
  free(out);

  m = fake_model(4);
  F.record = true;
  cfg.verbose = 2;
  cfg.validation_split = 0.2;
  out = fit_output(&m, &cfg, &o, 10);
  cr_assert_eq(strncmp(out, "Epoch 1/2\n2/2 - 0s - ", 21), 0, "%s", out);
  cr_assert(strstr(out, "/step - loss: 4.0000 - val_loss: "), "%s", out);
  free(out);

  m = fake_model(4);
  cfg.verbose = 1;
  o.quiet = true;
  out = fit_output(&m, &cfg, &o, 10);
  cr_assert_str_eq(out, "");
  free(out);
}

Test(fit, refuses_bad_configurations) {
  nn_model m = fake_model(4);
  nn_data x, y;
  make_data(&x, &y, 10);
  nn_data y_short = view(YS, 9);
  nn_rng rng;
  nn_rng_seed(&rng, 1);
  nn_options o = quiet_options();
  capture c = capture_begin(2, "err.txt");
  nn_fit_config big = {.epochs = 1, .batch_size = 5};
  cr_assert_eq(nn_fit(&m, &big, &x, &y, &rng, &o), -1);
  nn_fit_config ok = {.epochs = 1, .batch_size = 4};
  cr_assert_eq(nn_fit(&m, &ok, &x, &y_short, &rng, &o), -1);
  nn_fit_config split = {.epochs = 1, .batch_size = 4, .validation_split = 0.95};
  cr_assert_eq(nn_fit(&m, &split, &x, &y, &rng, &o), -1);  // floor(10 * 0.05) = 0 rows train
  char *err = capture_end(&c);
  cr_assert(strstr(err, "batch size 5") && strstr(err, "maximum 4"), "%s", err);
  cr_assert(strstr(err, "10 samples but 9 labels"), "%s", err);
  cr_assert(strstr(err, "no training"), "%s", err);
  free(err);
}

Test(fit, refuses_sparse_labels_outside_the_classes) {
  nn_model m = fake_model(4);
  m.loss = NN_LOSS_SPARSE_CCE;
  m.out_width = 3;
  static double labels[4] = {0, 2, 1, 2};
  nn_data x, y;
  make_data(&x, &y, 4);
  y = view(labels, 4);
  nn_rng rng;
  nn_rng_seed(&rng, 1);
  nn_options o = quiet_options();
  nn_fit_config cfg = {.epochs = 1, .batch_size = 4};
  capture c = capture_begin(2, "err.txt");
  // In range: the check passes (the fake model trains on whatever it gets).
  cr_assert_eq(nn_fit(&m, &cfg, &x, &y, &rng, &o), 0);
  labels[2] = 3;  // one past the last class
  cr_assert_eq(nn_fit(&m, &cfg, &x, &y, &rng, &o), -1);
  labels[2] = 1.5;  // not a whole number
  cr_assert_eq(nn_evaluate(&m, &x, &y, 4, 0, &o, (double[4]){0}), -1);
  char *err = capture_end(&c);
  cr_assert(strstr(err, "label 3 in row 2 is not a class index in [0, 3)"), "%s", err);
  cr_assert(strstr(err, "label 1.5 in row 2"), "%s", err);
  free(err);
}

//
// Callbacks
//
static const float LOSSES[8] = {5, 4, 4.5f, 4.2f, 3.9f, 3.8f, 3.7f, 3.6f};

static nn_model scripted_model(int rows, int batch) {
  nn_model m = fake_model(batch);
  F.epoch_loss = LOSSES;
  F.steps_per_epoch = (rows + batch - 1) / batch;
  return m;
}

Test(callbacks, early_stopping_patience_and_restore) {
  nn_model m = scripted_model(10, 5);
  // Improvements at epochs 0 and 1; 2 and 3 do not improve → stop after epoch 3 (patience 2).
  nn_callback es = {.kind = NN_CB_EARLY_STOPPING, .monitor = "loss", .patience = 2,
                    .restore_best_weights = true};
  nn_fit_config cfg = {.epochs = 8, .batch_size = 5, .verbose = 1, .callbacks = &es,
                       .n_callbacks = 1};
  nn_options o = {.epochs = -1, .batch_size = -1};
  char *out = fit_output(&m, &cfg, &o, 10);
  cr_assert_eq(F.n_batches, 4 * 2, "ran %d batches", F.n_batches);
  cr_assert(strstr(out, "Epoch 4: early stopping\n"), "%s", out);
  cr_assert(strstr(out, "best epoch: 2."), "%s", out);
  cr_assert_float_eq(F.w, 1.0f, 0, "weights from epoch index 1 should be restored, got %g", F.w);
  free(out);
}

Test(callbacks, early_stopping_min_delta_and_max_mode) {
  nn_model m = scripted_model(10, 5);
  // min_delta 0.5: 5 → 4 improves by 1; 4.5, 4.2, 3.9 are not 0.5 better than 4 → stop at epoch 3.
  nn_callback es = {.kind = NN_CB_EARLY_STOPPING, .monitor = "loss", .patience = 2, .min_delta = 0.5};
  nn_fit_config cfg = {.epochs = 8, .batch_size = 5, .callbacks = &es, .n_callbacks = 1};
  nn_options o = quiet_options();
  free(fit_output(&m, &cfg, &o, 10));
  cr_assert_eq(F.n_batches, 4 * 2);
  cr_assert_float_eq(F.w, 3.0f, 0, "no restore asked: last weights stay");

  // mode max on a falling loss: epoch 0 is best; stop at epoch 1 with patience 1.
  m = scripted_model(10, 5);
  es = (nn_callback){.kind = NN_CB_EARLY_STOPPING, .monitor = "loss", .patience = 1, .mode = 2};
  free(fit_output(&m, &cfg, &o, 10));
  cr_assert_eq(F.n_batches, 2 * 2);
}

Test(callbacks, missing_monitor_warns_once_and_does_nothing) {
  nn_model m = scripted_model(10, 5);
  nn_callback es = {.kind = NN_CB_EARLY_STOPPING, .patience = 0};  // val_loss: no validation
  nn_fit_config cfg = {.epochs = 5, .batch_size = 5, .callbacks = &es, .n_callbacks = 1};
  nn_options o = quiet_options();
  capture c = capture_begin(2, "warn.txt");
  free(fit_output(&m, &cfg, &o, 10));
  char *err = capture_end(&c);
  cr_assert_eq(F.n_batches, 5 * 2);
  char *first = strstr(err, "warning: ");
  cr_assert(first && strstr(first, "val_loss"), "%s", err);
  cr_assert_null(strstr(first + 1, "warning: "), "warned more than once: %s", err);
  free(err);
}

Test(callbacks, csv_logger_writes_keras_columns) {
  nn_model m = scripted_model(10, 5);
  m.n_metrics = 1;
  m.metrics[0] = NN_METRIC_ACCURACY;
  nn_callback cb = {.kind = NN_CB_CSV_LOGGER, .path = scratch("log.csv")};
  nn_fit_config cfg = {.epochs = 2, .batch_size = 5, .validation_split = 0.2, .callbacks = &cb,
                       .n_callbacks = 1};
  nn_options o = quiet_options();
  // 8 training rows in batches of 5 → 2 steps per epoch.
  F.steps_per_epoch = 2;
  free(fit_output(&m, &cfg, &o, 10));
  char *log = slurp(scratch("log.csv"), NULL);
  cr_assert_eq(strncmp(log, "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,", 45), 0, "%s", log);
  cr_assert(strstr(log, ",5.0,"), "%s", log);  // epoch 0 loss, as Python writes 5.0
  cr_assert(strstr(log, "\r\n1,"), "%s", log);
  int lines = 0;
  for (char *p = log; *p; p++) lines += *p == '\n';
  cr_assert_eq(lines, 3);
  free(log);
  // append: no second header.
  cb.append = true;
  cb.separator = ";";
  m = scripted_model(10, 5);
  m.n_metrics = 1;
  F.steps_per_epoch = 2;
  free(fit_output(&m, &cfg, &o, 10));
  log = slurp(scratch("log.csv"), NULL);
  lines = 0;
  for (char *p = log; *p; p++) lines += *p == '\n';
  cr_assert_eq(lines, 5, "%s", log);
  cr_assert_eq(strstr(log + 1, "epoch"), NULL, "%s", log);
  cr_assert(strstr(log, "\r\n0;"), "%s", log);
  free(log);
}

Test(callbacks, model_checkpoint_formats_path_and_saves_best_only) {
  nn_model m = scripted_model(10, 5);
  char tmpl[600];
  snprintf(tmpl, sizeof tmpl, "%s/ck_{epoch:02d}_{loss:.2f}.safetensors", scratch_dir());
  nn_callback cb = {.kind = NN_CB_MODEL_CHECKPOINT, .path = tmpl};
  nn_fit_config cfg = {.epochs = 3, .batch_size = 5, .callbacks = &cb, .n_callbacks = 1};
  nn_options o = quiet_options();
  free(fit_output(&m, &cfg, &o, 10));
  cr_assert_eq(access(scratch("ck_01_5.00.safetensors"), F_OK), 0);
  cr_assert_eq(access(scratch("ck_02_4.00.safetensors"), F_OK), 0);
  cr_assert_eq(access(scratch("ck_03_4.50.safetensors"), F_OK), 0);
  nn_tensor *t;
  int n;
  cr_assert_eq(nn_read_safetensors(scratch("ck_02_4.00.safetensors"), &t, &n), 0);
  cr_assert_eq(n, 2);
  cr_assert_float_eq(t[0].data[0], 1.0f, 0);  // the weights after epoch index 1
  nn_free_tensors(t, n);

  // save_best_only on one path: epoch 3 (loss 4.5) must not overwrite epoch 2's weights.
  m = scripted_model(10, 5);
  cb = (nn_callback){.kind = NN_CB_MODEL_CHECKPOINT, .path = scratch("best.safetensors"),
                     .monitor = "loss", .save_best_only = true};
  free(fit_output(&m, &cfg, &o, 10));
  cr_assert_eq(nn_read_safetensors(scratch("best.safetensors"), &t, &n), 0);
  cr_assert_float_eq(t[0].data[0], 1.0f, 0);
  nn_free_tensors(t, n);

  // A placeholder that names nothing: fit fails with a message.
  m = scripted_model(10, 5);
  cb = (nn_callback){.kind = NN_CB_MODEL_CHECKPOINT, .path = "w_{val_acc}.safetensors"};
  nn_data x, y;
  make_data(&x, &y, 10);
  nn_rng rng;
  nn_rng_seed(&rng, 1);
  capture c = capture_begin(2, "err.txt");
  cr_assert_eq(nn_fit(&m, &cfg, &x, &y, &rng, &o), -1);
  char *err = capture_end(&c);
  cr_assert(strstr(err, "val_acc"), "%s", err);
  free(err);
}

//
// evaluate / predict
//
Test(evaluate, results_line_and_json) {
  nn_model m = fake_model(4);
  F.w = 2;
  F.b = 0;  // off by 1 everywhere: loss 1, mae 1
  m.n_metrics = 1;
  m.metrics[0] = NN_METRIC_MAE;
  nn_data x, y;
  make_data(&x, &y, 10);
  nn_options o = {.epochs = -1, .batch_size = -1};
  double r[2];
  capture c = capture_begin(1, "out.txt");
  cr_assert_eq(nn_evaluate(&m, &x, &y, 4, 1, &o, r), 0);
  char *out = capture_end(&c);
  cr_assert_float_eq(r[0], 1.0, 1e-6);
  cr_assert_float_eq(r[1], 1.0, 1e-6);
  cr_assert_eq(strncmp(out, "3/3 [==============================] - 0s ", 40), 0, "%s", out);
  cr_assert(strstr(out, "/step - loss: 1.0000 - mae: 1.0000\n"), "%s", out);
  free(out);
  o.json = true;
  c = capture_begin(1, "out2.txt");
  cr_assert_eq(nn_evaluate(&m, &x, &y, 32, 1, &o, r), 0);  // 32 > max_batch: runs in pieces
  out = capture_end(&c);
  cr_assert(strstr(out, "{\"evaluate\":true,\"loss\":1,\"mae\":1"), "%s", out);
  free(out);
}

Test(predict, outputs_every_row) {
  nn_model m = fake_model(3);
  F.w = 3;
  F.b = -1;
  nn_data x, y;
  make_data(&x, &y, 7);
  nn_options o = quiet_options();
  float *out = nn_predict(&m, &x, 3, 1, &o);
  cr_assert_not_null(out);
  for (int i = 0; i < 7; i++) cr_assert_float_eq(out[i], 3 * i - 1, 0);
  free(out);
}

//
// Metrics
//
Test(metrics, accuracy_follows_the_loss_and_shapes) {
  float out[6] = {0.1f, 0.7f, 0.2f, 0.5f, 0.5f, 0.0f};  // argmax 1, then a tie → 0
  float sparse[2] = {1, 1};
  nn_metric_acc a = {0};
  nn_metric_update(NN_METRIC_ACCURACY, NN_LOSS_SPARSE_CCE, out, sparse, 2, 3, 1, &a);
  cr_assert_float_eq(a.sum / a.count, 0.5, 1e-12);
  float onehot[6] = {0, 1, 0, 1, 0, 0};
  a = (nn_metric_acc){0};
  nn_metric_update(NN_METRIC_ACCURACY, NN_LOSS_CCE, out, onehot, 2, 3, 3, &a);
  cr_assert_float_eq(a.sum / a.count, 1.0, 1e-12);
  // MSE with sparse-looking labels → sparse accuracy, with one-hot labels → categorical.
  a = (nn_metric_acc){0};
  nn_metric_update(NN_METRIC_ACCURACY, NN_LOSS_MSE, out, sparse, 2, 3, 1, &a);
  cr_assert_float_eq(a.sum / a.count, 0.5, 1e-12);
  a = (nn_metric_acc){0};
  nn_metric_update(NN_METRIC_ACCURACY, NN_LOSS_MSE, out, onehot, 2, 3, 3, &a);
  cr_assert_float_eq(a.sum / a.count, 1.0, 1e-12);
  // Binary: threshold 0.5 (strictly greater), mean over elements.
  float p[4] = {0.9f, 0.5f, 0.2f, 0.6f}, t[4] = {1, 1, 0, 0};
  a = (nn_metric_acc){0};
  nn_metric_update(NN_METRIC_ACCURACY, NN_LOSS_BCE, p, t, 2, 2, 2, &a);
  cr_assert_float_eq(a.sum / a.count, 0.5, 1e-12);
  a = (nn_metric_acc){0};
  nn_metric_update(NN_METRIC_ACCURACY, NN_LOSS_MSE, p, t, 4, 1, 1, &a);
  cr_assert_float_eq(a.sum / a.count, 0.5, 1e-12);
  cr_assert_str_eq(nn_metric_name(NN_METRIC_ACCURACY), "accuracy");
}

Test(metrics, mae_mse_and_accumulation_over_batches) {
  float o[4] = {1, 2, 3, 4}, y[4] = {0, 2, 5, 4};
  nn_metric_acc mae = {0}, mse = {0};
  nn_metric_update(NN_METRIC_MAE, NN_LOSS_MSE, o, y, 1, 2, 2, &mae);      // sample 0: (1+0)/2
  nn_metric_update(NN_METRIC_MAE, NN_LOSS_MSE, o + 2, y + 2, 1, 2, 2, &mae);  // sample 1: (2+0)/2
  cr_assert_float_eq(mae.sum / mae.count, 0.75, 1e-12);
  nn_metric_update(NN_METRIC_MSE, NN_LOSS_MSE, o, y, 2, 2, 2, &mse);
  cr_assert_float_eq(mse.sum / mse.count, 1.25, 1e-12);
  cr_assert_str_eq(nn_metric_name(NN_METRIC_MSE), "mse");
}
