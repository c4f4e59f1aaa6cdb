// nn.h — the nnc runtime: what generated programs call, and what users may call.
//
// A program built by `nnc build` is: generated code (the model's kernels, its train
// step, and a main() that performs the script's statements in order) + this runtime
// (data loading, batching, the training loop, metrics, callbacks, progress output,
// weights files). Everything here is plain C11; errors are reported on stderr as
// "error: ..." and returned as -1, and the generated main exits with status 1.
#ifndef NN_H
#define NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

//
// Random numbers: one seeded generator; same seed → same stream on every machine.
//
typedef struct nn_rng { uint64_t s[4]; } nn_rng;
void nn_rng_seed(nn_rng *r, uint64_t seed);
uint64_t nn_rng_next(nn_rng *r);
double nn_rng_uniform(nn_rng *r);               // [0, 1)
double nn_rng_normal(nn_rng *r);                // N(0, 1)
void nn_rng_shuffle(nn_rng *r, int64_t *idx, int64_t n);

//
// Data: samples kept compactly (uint8 stays uint8) and converted per batch.
//
typedef enum { NN_U8, NN_F32, NN_F64, NN_I64 } nn_dtype;

typedef struct nn_data {
  nn_dtype dtype;
  int64_t rows;            // samples (first dimension)
  int ndim;                // per-sample rank
  int64_t shape[4];        // per-sample shape (as the model sees it after reshape)
  int64_t row_size;        // product of shape: stored elements per sample
  void *buf;               // rows * row_size elements of dtype (owned)
  double scale;            // multiplied in when a batch is formed (1 = none)
  int64_t onehot;          // > 0: to_categorical(classes) applied when a batch is formed
  char origin[256];        // file it came from, for messages
  bool squeezed;           // x[i]: one sample without its row axis (rows is 1)
} nn_data;

// Elements per sample as the model consumes it (onehot classes if set, else row_size).
int64_t nn_data_width(const nn_data *d);
// Converts samples idx[0..n) to float32, applying scale / onehot, into out[n * width].
// A label outside [0, onehot) is an error (returns -1).
int nn_data_gather(const nn_data *d, const int64_t *idx, int64_t n, float *out);
// Reinterprets per-sample shape; total size must match (returns -1 with a message).
int nn_data_reshape(nn_data *d, int ndim, const int64_t *shape);
// Splits off the last `fraction` of rows (Keras validation_split: taken before shuffling).
void nn_data_split_tail(const nn_data *d, double fraction, nn_data *head, nn_data *tail);
void nn_data_free(nn_data *d);

// IDX (MNIST family), plain or gzip (detected by magic, not by name).
int nn_load_idx(nn_data *out, const char *path);
// keras.datasets.<name>.load_data(): name is "fashion-mnist" or "mnist". Looks in
// data_dir/<name>/, then $NNC_DATA/<name>/, then /usr/share/datasets/<name>/, for the
// usual file names with or without .gz. part: 0 x_train, 1 y_train, 2 x_test, 3 y_test.
// A missing set is an error naming every place tried and the Debian package.
int nn_load_dataset(nn_data *out, const char *name, int part, const char *data_dir);
// Header only: every field but buf (NULL), after the same checks the loaders make of the
// header (and, for NPY and plain IDX, that the file holds the data it announces). The
// compiler learns data shapes this way. nn_probe_dataset returns 1, silently, when the
// set's files are not found.
int nn_probe_idx(nn_data *out, const char *path);
int nn_probe_npy(nn_data *out, const char *path);
int nn_probe_dataset(nn_data *out, const char *name, int part, const char *data_dir);
// NPY v1/v2/v3, C order, dtypes u1 i1 i2 i4 i8 u2 u4 u8 f4 f8 (b1) little-endian.
int nn_load_npy(nn_data *out, const char *path);
int nn_save_npy(const char *path, const float *data, int ndim, const int64_t *shape);
// CSV of numbers, one sample per line; rows must have equal length.
int nn_load_csv(nn_data *out, const char *path, char delimiter);
int nn_load_csv_skip(nn_data *out, const char *path, char delimiter, int64_t skiprows);  // the first lines skipped
// np.array([...]) literal: values row-major, rows × per-sample shape.
int nn_data_from_values(nn_data *out, const double *values, int64_t rows, int ndim,
                        const int64_t *shape);
// A built program refuses data whose per-sample shape differs from the compiled one.
int nn_data_expect_shape(const nn_data *d, int ndim, const int64_t *shape, const char *what);

//
// The model, as generated code describes it to the runtime.
//
typedef struct nn_param {
  const char *name;        // Keras weight name: "dense_1.kernel", "batch_normalization.moving_mean"
  int ndim;
  int64_t shape[4];        // Keras layout: Dense [in, out], Conv2D [kh, kw, in, out]
  int64_t size;
  float *value;
  bool trainable;
} nn_param;

// One layer of the Sequential (the Input excluded), for Keras's HDF5 layouts: weights are
// stored per layer, under a group named after the class (Keras 3) or the layer (Keras 2).
typedef struct nn_layer {
  const char *class_name;  // Keras class: "Dense", "Conv2D", "BatchNormalization", "Flatten"
  const char *name;        // layer name: "dense_1" (Keras's automatic name, or name=)
  int first_param, n_params;  // its weights: params[first_param ..], in Keras's order
} nn_layer;

typedef enum { NN_LOSS_MSE, NN_LOSS_MAE, NN_LOSS_BCE, NN_LOSS_CCE, NN_LOSS_SPARSE_CCE } nn_loss_kind;
typedef enum { NN_METRIC_ACCURACY, NN_METRIC_MAE, NN_METRIC_MSE } nn_metric_kind;

typedef struct nn_model nn_model;
struct nn_model {
  const char *name;
  int n_params;
  nn_param *params;        // trainable and non-trainable (BatchNorm moving statistics)
  int64_t in_width;        // floats per input sample
  int64_t out_width;       // floats per output sample (model output)
  int64_t label_width;     // floats per label sample (1 for sparse labels)
  int max_batch;           // largest n a train step may pass
  int infer_batch;         // largest n an inference call may pass (0: max_batch)
  nn_loss_kind loss;
  int n_metrics;
  nn_metric_kind metrics[4];
  // Glorot etc. as the script asks; deterministic given the generator state.
  void (*init)(nn_model *m, nn_rng *rng);
  // One optimizer step on n <= max_batch samples; out[n*out_width] receives the
  // training-mode outputs. Returns the batch's mean loss plus regularization terms.
  float (*train_step)(nn_model *m, const float *x, const float *y, int n, nn_rng *rng, float *out);
  // Inference (dropout off, moving statistics) on n <= infer_batch samples:
  // out[n*out_width]. If y is non-NULL, returns the batch's mean loss plus
  // regularization terms, else 0.
  float (*infer)(nn_model *m, const float *x, const float *y, int n, float *out);
  // Zero the optimizer's slots and step count (model.compile).
  void (*reset_optimizer)(nn_model *m);
  // Device targets keep the weights on the device: pull copies them into params[].value,
  // push copies params[].value back. NULL where value is the weights themselves (C).
  void (*pull_params)(nn_model *m);
  void (*push_params)(nn_model *m);
  // Device targets keep the training inputs on the device when they fit: bind_inputs
  // uploads x once (uint8 stays uint8) and returns 0, or -1 to keep the host path;
  // train_step_rows then trains on rows[0..n) of it (y and out as for train_step).
  // NULL on the C target.
  int (*bind_inputs)(nn_model *m, const nn_data *x);
  float (*train_step_rows)(nn_model *m, const int64_t *rows, const float *y, int n, nn_rng *rng, float *out);
  // The optimizer's state for backups (runtime/backup.c) and Keras's files (h5.c):
  // optimizer_elems slot values and the step count, copied out (save) or in (from and to
  // the device on OpenCL). NULL: none.
  int64_t optimizer_elems;
  void (*optimizer_state)(nn_model *m, float *slots, int64_t *step, bool save);
  // --check-numerics: after a train step on n samples, the first buffer in execution
  // order (inputs, forward, backward, updated weights and slots) holding a NaN or an
  // infinity; sets *node and *op and returns 1, or returns 0. NULL where not generated.
  int (*first_nonfinite)(nn_model *m, int n, const char **node, const char **op);
  void *state;             // generated code's private buffers
  // Set when the script writes or reads Keras's HDF5 or .keras files, else 0 / NULL.
  int n_layers;
  const nn_layer *layers;
  const char *keras_config;     // the model's Keras config as JSON (a .keras archive's config.json)
  const char *training_config;  // compile()'s settings as Keras 2's .h5 files hold them, or NULL
  // The optimizer's state, for the same files (opt_name NULL: none). Slot k of params[i]
  // (Adam: momentum, velocity; SGD: momentum; RMSprop: velocity, momentum, average
  // gradient) is at opt_offset[i] + k * params[i].size (-1: not trained) in a buffer of
  // optimizer_elems floats that optimizer_state fills (with the steps taken) and reads.
  const char *opt_name;         // Keras's name for it: "adam", "SGD", "rmsprop"
  double opt_lr;
  bool opt_momentum, opt_centered;  // Keras makes momentum (average gradient) slots only then
  const int64_t *opt_offset;
};

// Before reading params[].value / after writing it: no-ops on the C target.
void nn_model_pull_params(nn_model *m);
void nn_model_push_params(nn_model *m);

// Accumulates a metric over batches; value is Keras's (mean over samples).
typedef struct nn_metric_acc { double sum; double count; } nn_metric_acc;
void nn_metric_update(nn_metric_kind kind, nn_loss_kind loss, const float *out, const float *y,
                      int n, int64_t out_width, int64_t label_width, nn_metric_acc *acc);
const char *nn_metric_name(nn_metric_kind kind);      // "accuracy", "mae", "mse"

//
// Weights: safetensors, float32, Keras names and layouts. Written to a temporary
// file, fsynced and renamed. Loading checks names, dtypes, shapes and offsets.
//
int nn_save_weights(const nn_model *m, const char *path);
// Any safetensors file, every tensor converted to float32 (F32/F64/F16/BF16/I*/U8 read).
typedef struct nn_tensor {
  char name[256];
  int ndim;
  int64_t shape[8];
  int64_t size;
  float *data;
} nn_tensor;
int nn_read_safetensors(const char *path, nn_tensor **tensors, int *count);
void nn_free_tensors(nn_tensor *tensors, int count);
int nn_load_weights(nn_model *m, const char *path);

//
// Keras's own files (runtime/h5.c, runtime/keras_archive.c; programs that use them link
// libhdf5). Layer and weight order and shapes are Keras's; every file is written to a
// temporary name and renamed. Loading checks the whole file against the model before any
// weight changes, and refuses a foreign, truncated or mismatched file with a message.
//
// Keras 3's .weights.h5: layers/<class in snake case>[_N]/vars/<i>, i in the layer's order.
int nn_save_weights_h5(const nn_model *m, const char *path);
// Keras 2's .h5: groups named after the layers, each with a weight_names attribute (what
// save_weights('x.h5') wrote); _model: the whole model as model.save('x.h5') writes it
// (attributes model_config and training_config, the weights under /model_weights).
int nn_save_legacy_h5_weights(const nn_model *m, const char *path);
int nn_save_legacy_h5_model(const nn_model *m, const char *path);
// Any of the HDF5 layouts above, told apart by their content.
int nn_load_weights_h5(nn_model *m, const char *path);
// Keras 3's .keras archive: a zip of config.json, metadata.json and model.weights.h5.
int nn_save_keras(const nn_model *m, const char *path);
int nn_load_keras(nn_model *m, const char *path);

//
// Run-time options: the script's values unless given on the command line.
//
typedef struct nn_options {
  int64_t epochs;          // -1: the script's
  int64_t batch_size;      // -1: the script's
  uint64_t seed;           // default 0... but see seed_set
  bool seed_set;
  int threads;             // 0: OMP_NUM_THREADS, else the CPUs this process may use
  int device;              // OpenCL device index (--device N); -1: $NNC_DEVICE, else the default
  const char *data_dir;    // NULL: $NNC_DATA, then /usr/share/datasets
  bool quiet;              // no progress, only results
  bool json;               // one JSON object per epoch / evaluation on stdout
  const char *resume_dir;  // --resume DIR: every fit backs up to and restores from DIR
  bool check_numerics;     // --check-numerics: stop at the first NaN / Inf, naming its node
  const char *plot;        // --plot FILE.svg: the training curves of each fit
} nn_options;
// Parses --epochs N --batch-size N --seed N --threads N --data-dir DIR --quiet --json
// --help. Unknown options: message and exit(1).
void nn_parse_options(nn_options *o, int argc, char **argv);

typedef enum { NN_CB_EARLY_STOPPING, NN_CB_MODEL_CHECKPOINT, NN_CB_CSV_LOGGER,
               NN_CB_BACKUP_AND_RESTORE, NN_CB_TERMINATE_ON_NAN } nn_callback_kind;
typedef struct nn_callback {
  nn_callback_kind kind;
  const char *monitor;     // "val_loss", "loss", "accuracy", "val_accuracy", ...
  int mode;                // 0 auto, 1 min, 2 max
  double min_delta;
  int64_t patience;
  bool restore_best_weights;
  const char *path;        // ModelCheckpoint filepath (may contain {epoch:02d}), CSVLogger filename
  bool save_best_only;
  const char *separator;   // CSVLogger, default ","
  bool append;
  int (*save)(const nn_model *m, const char *path);  // ModelCheckpoint's writer; NULL: safetensors
  int64_t save_freq;       // BackupAndRestore: 0 at each epoch's end, N every N batches
  bool delete_checkpoint;  // BackupAndRestore: remove the backup when fit completes
} nn_callback;

typedef struct nn_fit_config {
  int64_t epochs, batch_size;
  bool shuffle;
  int verbose;             // 0 silent, 1 progress bar, 2 one line per epoch
  double validation_split; // used when no validation data is given
  const nn_data *val_x, *val_y;  // validation_data, or NULL
  const nn_callback *callbacks;
  int n_callbacks;
  struct nn_history *history;   // history = model.fit(...): filled per epoch, or NULL
} nn_fit_config;

// The training loop: shuffles each epoch with rng (unless shuffle=false), trains every
// batch including the last partial one, prints Keras-style progress, evaluates on
// validation data, runs callbacks. Returns -1 on error (message printed).
int nn_fit(nn_model *m, const nn_fit_config *cfg, const nn_data *x, const nn_data *y,
           nn_rng *rng, const nn_options *o);
// Prints "loss: … - accuracy: …"; results[0] = loss, results[1..] = metrics.
int nn_evaluate(nn_model *m, const nn_data *x, const nn_data *y, int64_t batch_size,
                int verbose, const nn_options *o, double *results);
// Runs inference over all rows; returns a malloc'ed float array [rows * out_width].
float *nn_predict(nn_model *m, const nn_data *x, int64_t batch_size, int verbose,
                  const nn_options *o);
// evaluate, predict and validation run the forward pass m->infer_batch samples at a
// time whatever batch_size says (it sets the progress bar's steps): the same outputs,
// the loss summed in another order. Generated code picks that batch at model creation:
// the largest n <= NN_INFER_BATCH_MAX, and >= max_batch, with per_sample * n + work(n)
// <= budget elements (the memory the train step's per-sample buffers and workspace have).
#define NN_INFER_BATCH_MAX 1024
int nn_infer_batch(int max_batch, double budget, int64_t per_sample, size_t (*work)(int n));

//
// What a script's statements need besides the model: print(), x.shape, np.save.
//
// Python's repr() of a float: the shortest digits that read back ("0.1", "1e-05", "100.0").
void nn_format_float(char *buf, size_t cap, double v);
// A byte count in binary units: "812 bytes", "1.5 MiB", "7.2 GiB".
void nn_format_bytes(char *buf, size_t cap, double bytes);
void nn_print_float(double v);
// x.shape as the script sees it: dimension k (0 = rows, then per sample) and rank.
int64_t nn_data_dim(const nn_data *d, int k);
int nn_data_rank(const nn_data *d);
void nn_print_shape(const nn_data *d);   // "(60000, 28, 28)", "(5,)"
// Applies the script's reshape, scale and to_categorical to loaded data, and refuses
// data whose per-sample shape is not the one the program was compiled for.
int nn_data_prepare(nn_data *d, int ndim, const int64_t *shape, double scale, int64_t onehot,
                    const char *what);
void nn_fprint_shape(FILE *f, const nn_data *d);
// Python's format(v, spec) ("{:.3f}", "{:>8}", "{:,}", "{:.1%}"); str formats a string
// instead of v. Returns -1 for a spec Python would refuse.
int nn_format_spec(char *buf, size_t cap, const char *str, double v, bool is_int, const char *spec);
void nn_fprint_spec(FILE *f, double v, bool is_int, const char *spec);
void nn_fprint_float(FILE *f, double v);
// A print() statement writes to what nn_print_begin returns: stdout, or under --json a
// buffer that nn_print_end writes as one {"print": "..."} line.
FILE *nn_print_begin(const nn_options *o);
void nn_print_end(const nn_options *o, FILE *f);
// np.argmax & co. over every element of d (as the script sees it, scale applied).
enum { NN_REDUCE_ARGMAX, NN_REDUCE_ARGMIN, NN_REDUCE_MAX, NN_REDUCE_MIN, NN_REDUCE_SUM, NN_REDUCE_MEAN };
double nn_data_reduce(const nn_data *d, int op);
void nn_fprint_data(FILE *f, const nn_data *d);   // roughly numpy's str()
void nn_softmax_rows(float *x, int64_t rows, int64_t width);
// x[start:stop] (NN_NONE: bound not given) or x[start] (row_index), then columns
// cols[0..n_cols) of each (flattened) sample, x[:, k] when col_index. Python's rules.
#define NN_NONE INT64_MIN
int nn_data_select(nn_data *d, int64_t start, int64_t stop, bool row_index, const int64_t *cols, int n_cols,
                   bool col_index);

// history = model.fit(...): each epoch's logs, by name ("loss", "val_accuracy", ...).
enum { NN_HISTORY_KEYS = 16 };
typedef struct nn_history {
  int n_keys;
  char key[NN_HISTORY_KEYS][40];
  double *value[NN_HISTORY_KEYS];
  int64_t len[NN_HISTORY_KEYS], cap[NN_HISTORY_KEYS];
} nn_history;
void nn_history_add(nn_history *h, int n, const char (*names)[40], const double *values);
const double *nn_history_series(const nn_history *h, const char *key, int64_t *n);
double nn_history_get(const nn_history *h, const char *key, int64_t index);   // Python index
void nn_fprint_history(FILE *f, const nn_history *h, const char *key);

// matplotlib.pyplot, as tutorials use it on training curves: an SVG writer (plot.c).
void nn_plot_figure(void);
void nn_plot_subplot(int rows, int cols, int index);
void nn_plot_series(const double *x, int64_t nx, const double *y, int64_t ny, const char *label, const char *fmt);
void nn_plot_text(int what, const char *text);   // NN_PLOT_TITLE, NN_PLOT_XLABEL, NN_PLOT_YLABEL
enum { NN_PLOT_TITLE, NN_PLOT_XLABEL, NN_PLOT_YLABEL };
void nn_plot_legend(void);
void nn_plot_label(int k, const char *label);     // legend(['train', 'test']): series k's name
void nn_plot_grid(bool on);
void nn_plot_ylim(double lo, double hi);
int nn_plot_save(const char *path);               // savefig: writes the SVG
// The curves of one fit as an SVG (a built program's --plot FILE.svg).
int nn_plot_history(const nn_history *h, const char *path);

// np.save(path, x): every row as the model sees it, float32.
int nn_save_data(const char *path, const nn_data *d);

// Errors: printed on stderr as "error: ..." unless captured (the compiler reports them
// at the script's line instead); the last one is kept either way.
void nn_capture_errors(bool on);
const char *nn_last_error(void);

// Threads for kernels (OpenMP when the program was built with it). n <= 0:
// OMP_NUM_THREADS when set, else nn_default_threads().
void nn_set_threads(int n);
// The threads kernels will use now (1 without OpenMP).
int nn_threads(void);
// The CPUs this process may use: its affinity mask and its cgroup CPU quota (v2 cpu.max,
// v1 cpu.cfs_quota_us / cpu.cfs_period_us), the smaller; at least 1.
int nn_default_threads(void);
// A cgroup quota as CPUs, rounded up; 0 means no limit. cpu_max is the text of a cgroup
// v2 cpu.max file ("max 100000" or "150000 100000").
int nn_cpus_from_quota(long long quota_us, long long period_us);
int nn_cpus_from_cpu_max(const char *cpu_max);
// A built program's main, after nn_parse_options: sets the thread count (o->threads, or
// the default) and stores it in o->threads; with --json prints {"threads":N} first. When
// it is more than 1 and the user set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT, the
// program first executes itself again (same pid, same argv) with OMP_WAIT_POLICY=passive,
// so waiting threads sleep instead of spinning on shared cores (runtime/sys.c says why).
void nn_start_threads(nn_options *o, char **argv);
// Monotonic seconds.
double nn_now(void);
// Called once, after the first training step of the process, with that step's time,
// when set (`nnc run --time-passes` times the start of training with it).
extern void (*nn_on_first_step)(double step_seconds);

#ifdef __cplusplus
}
#endif
#endif
