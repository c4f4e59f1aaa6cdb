// test_runtime_keras_files.c — Keras's HDF5 layouts and .keras archives (runtime/h5.c,
// runtime/keras_archive.c): every format written and read back bit for bit, files Keras
// wrote (tests/keras/, made by make_fixtures.py) read to the same bits as their
// safetensors twin, and a refused file leaves the model as it was.
#include "nn.h"
#include "test_runtime_util.h"

// small.nn's model: Dense(5) on 4 inputs, BatchNormalization, Dense(3).
enum { N_PARAMS = 8, N_VALUES = 20 + 5 + 4 * 5 + 15 + 3 };

typedef struct small_model {
  nn_param p[N_PARAMS];
  float values[N_VALUES];
  nn_model m;
} small_model;

static const nn_layer small_layers[] = {
    {"Dense", "dense", 0, 2}, {"BatchNormalization", "batch_normalization", 2, 4}, {"Dense", "dense_1", 6, 2}};

static void small_init(small_model *s, float seed) {
  static const struct { const char *name; int ndim; int64_t shape[2]; bool trainable; } w[N_PARAMS] = {
      {"dense.kernel", 2, {4, 5}, true},
      {"dense.bias", 1, {5}, true},
      {"batch_normalization.gamma", 1, {5}, true},
      {"batch_normalization.beta", 1, {5}, true},
      {"batch_normalization.moving_mean", 1, {5}, false},
      {"batch_normalization.moving_variance", 1, {5}, false},
      {"dense_1.kernel", 2, {5, 3}, true},
      {"dense_1.bias", 1, {3}, true}};
  float *at = s->values;
  for (int i = 0; i < N_PARAMS; i++) {
    int64_t size = w[i].ndim == 2 ? w[i].shape[0] * w[i].shape[1] : w[i].shape[0];
    s->p[i] = (nn_param){w[i].name, w[i].ndim, {w[i].shape[0], w[i].shape[1]}, size, at, w[i].trainable};
    at += size;
  }
  // Values that need every bit: no short decimal round trip hides a lost one.
  for (int i = 0; i < N_VALUES; i++) s->values[i] = seed * (float)(i + 1) / 7.0f - 1.0f / 3.0f;
  s->m = (nn_model){.name = "sequential", .n_params = N_PARAMS, .params = s->p, .n_layers = 3,
                    .layers = small_layers, .keras_config = "{\"class_name\": \"Sequential\"}",
                    .training_config = "{\"loss\": \"mse\"}"};
}

static const char *fixture(const char *name) {
  static char buf[4][512];
  static int k;
  char *b = buf[k++ % 4];
  snprintf(b, 512, "%s/tests/keras/%s", NNC_SOURCE_DIR, name);
  return b;
}

Test(keras_files, every_format_round_trips_bit_exactly) {
  static const struct { const char *file; int (*save)(const nn_model *, const char *);
                        int (*load)(nn_model *, const char *); } formats[] = {
      {"w.weights.h5", nn_save_weights_h5, nn_load_weights_h5},
      {"w.h5", nn_save_legacy_h5_weights, nn_load_weights_h5},
      {"model.h5", nn_save_legacy_h5_model, nn_load_weights_h5},
      {"m.keras", nn_save_keras, nn_load_keras}};
  for (int f = 0; f < 4; f++) {
    small_model a, b;
    small_init(&a, 1.7f);
    small_init(&b, 0);
    cr_assert_eq(formats[f].save(&a.m, scratch(formats[f].file)), 0, "%s", formats[f].file);
    cr_assert_eq(formats[f].load(&b.m, scratch(formats[f].file)), 0, "%s", formats[f].file);
    cr_assert_eq(memcmp(a.values, b.values, sizeof a.values), 0, "%s changed a bit", formats[f].file);
  }
}

Test(keras_files, files_keras_wrote_match_their_safetensors_twin) {
  small_model st, h5, keras, legacy;
  small_init(&st, 0);
  small_init(&h5, 0);
  small_init(&keras, 0);
  small_init(&legacy, 0);
  cr_assert_eq(nn_load_weights(&st.m, fixture("small.safetensors")), 0);
  cr_assert_eq(nn_load_weights_h5(&h5.m, fixture("small.weights.h5")), 0);
  cr_assert_eq(nn_load_keras(&keras.m, fixture("small.keras")), 0);
  cr_assert_eq(nn_load_weights_h5(&legacy.m, fixture("small_legacy.h5")), 0);
  small_model deflated;
  small_init(&deflated, 0);
  cr_assert_eq(nn_load_keras(&deflated.m, fixture("small_deflated.keras")), 0);
  cr_assert_eq(memcmp(st.values, deflated.values, sizeof st.values), 0);
  cr_assert_eq(memcmp(st.values, h5.values, sizeof st.values), 0);
  cr_assert_eq(memcmp(st.values, keras.values, sizeof st.values), 0);
  cr_assert_eq(memcmp(st.values, legacy.values, sizeof st.values), 0);
  bool nonzero = false;
  for (int i = 0; i < N_VALUES; i++) nonzero |= st.values[i] != 0;
  cr_assert(nonzero);
}

static void refused_untouched(const char *path, int (*load)(nn_model *, const char *), const char *message) {
  small_model s, before;
  small_init(&s, 2.5f);
  small_init(&before, 2.5f);
  nn_capture_errors(true);
  int rc = load(&s.m, path);
  nn_capture_errors(false);
  cr_assert_eq(rc, -1, "%s loaded", path);
  cr_assert(strstr(nn_last_error(), message), "%s: got '%s', want '%s'", path, nn_last_error(), message);
  cr_assert_eq(memcmp(s.values, before.values, sizeof s.values), 0, "%s: a refused file changed weights", path);
}

Test(keras_files, refused_files_leave_the_model_untouched) {
  refused_untouched(fixture("wider.weights.h5"), nn_load_weights_h5, "has shape [4, 6] in the file");
  refused_untouched(fixture("foreign.h5"), nn_load_weights_h5, "not Keras weights");
  refused_untouched(fixture("small.weights.h5"), nn_load_keras, "not a .keras archive");
  refused_untouched(fixture("small.keras"), nn_load_weights_h5, "not an HDF5 file");
  refused_untouched(scratch("missing.weights.h5"), nn_load_weights_h5, "missing.weights.h5");
  // The second layer's weights are wrong: nothing of the first may have been copied either.
  small_model other;
  small_init(&other, 1);
  other.p[7].shape[0] = 4;
  other.p[7].size = 4;
  other.p[6].shape[1] = 4;
  other.p[6].size = 20;
  cr_assert_eq(nn_save_weights_h5(&other.m, scratch("other.weights.h5")), 0);
  refused_untouched(scratch("other.weights.h5"), nn_load_weights_h5, "'dense_1.kernel' has shape [5, 4]");
  cr_assert_eq(nn_save_legacy_h5_weights(&other.m, scratch("other.h5")), 0);
  refused_untouched(scratch("other.h5"), nn_load_weights_h5, "'dense_1.kernel' has shape [5, 4]");
}

Test(keras_files, writes_are_atomic) {
  small_model s;
  small_init(&s, 1);
  cr_assert_eq(nn_save_keras(&s.m, "/nonexistent_dir/m.keras"), -1);
  cr_assert_eq(nn_save_weights_h5(&s.m, "/nonexistent_dir/w.weights.h5"), -1);
  cr_assert_eq(nn_save_weights_h5(&s.m, scratch("a.weights.h5")), 0);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", scratch_dir());
  cr_assert_neq(system(cmd), 0, "a temporary file was left behind");
}

// An Adam state of the small model: two slots per trained weight, laid out as nnc's arena
// lays them out (each param's slots together), which Keras orders differently.
enum { OPT_ELEMS = 2 * (20 + 5 + 5 + 5 + 15 + 3) };
static float opt_a[OPT_ELEMS], opt_b[OPT_ELEMS];
static int64_t step_a = 7, step_b;
// Saving reads model a's state; loading writes model b's.
static void state_ab(nn_model *m, float *slots, int64_t *step, bool save) {
  if (save) *step = step_a, memcpy(slots, opt_a, sizeof opt_a);
  else step_b = *step, memcpy(opt_b, slots, sizeof opt_b);
}
static const int64_t opt_offset[N_PARAMS] = {0, 40, 50, 60, -1, -1, 70, 100};

Test(keras_files, optimizer_state_round_trips) {
  for (int i = 0; i < OPT_ELEMS; i++) opt_a[i] = (float)i / 3.0f + 0.25f;
  const char *files[] = {"o.weights.h5", "o.keras"};
  for (int f = 0; f < 2; f++) {
    small_model a, b;
    small_init(&a, 1);
    small_init(&b, 0);
    a.m.opt_name = b.m.opt_name = "adam";
    a.m.opt_lr = b.m.opt_lr = 0.001;
    a.m.optimizer_elems = b.m.optimizer_elems = OPT_ELEMS;
    a.m.opt_offset = b.m.opt_offset = opt_offset;
    a.m.optimizer_state = b.m.optimizer_state = state_ab;
    memset(opt_b, 0, sizeof opt_b);
    step_b = 0;
    cr_assert_eq((f ? nn_save_keras : nn_save_weights_h5)(&a.m, scratch(files[f])), 0);
    cr_assert_eq((f ? nn_load_keras : nn_load_weights_h5)(&b.m, scratch(files[f])), 0);
    cr_assert_eq(step_b, 7);
    cr_assert_eq(memcmp(opt_a, opt_b, sizeof opt_a), 0, "%s", files[f]);
    // Another optimizer's state does not fit: the weights load, the optimizer stays.
    b.m.opt_name = "SGD";
    b.m.opt_momentum = true;
    memset(opt_b, 0, sizeof opt_b);
    step_b = 0;
    cr_assert_eq((f ? nn_load_keras : nn_load_weights_h5)(&b.m, scratch(files[f])), 0);
    cr_assert_eq(step_b, 0);
  }
}

