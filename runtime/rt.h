// rt.h — the runtime's private header: helpers shared by runtime/*.c, not part of nn.h.
//
// Sections: errors, files (whole-file reads, atomic writes), number formatting,
// JSON (for safetensors headers), epoch logs, progress bars, callbacks.
#ifndef NN_RT_H
#define NN_RT_H

#include "nn.h"

#include <stdio.h>

//
// util.c — errors and files
//
// Prints "error: <message>" on stderr and returns -1, so `return rt_error(...)` reads well.
int rt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Data comes from regular files only: /dev/zero or a FIFO would never end.
// The file's size is returned through size (may be NULL); rt_open_regular also opens it
// for reading. Both print the error and return -1 / NULL.
int rt_check_regular(const char *path, int64_t *size);
FILE *rt_open_regular(const char *path, int64_t *size);
// Reads a whole file, NUL-terminated; NULL (message printed) on failure.
char *rt_read_file(const char *path, size_t *len);
size_t rt_dtype_size(nn_dtype t);
// Rows and per-sample shape (row_size follows), as a loader read them from a header.
void rt_set_shape(nn_data *d, int64_t rows, int ndim, const int64_t *per_sample);
// Sparse labels must be whole class indices in [0, classes): checked once per call of
// fit/evaluate, since a bad one would otherwise only show up as a NaN loss.
int rt_check_class_labels(const nn_data *y, int64_t classes);
// Keras validation_split: the first floor(rows * (1 - fraction)) rows train.
int64_t rt_split_at(int64_t rows, double fraction);

// Atomic writes: data goes to an unnamed file in path's directory (O_TMPFILE; else
// "<path>.tmp.XXXXXX"), is fsynced, named "<path>.tmp.<pid>.<k>" and renamed over path,
// so a crash never leaves a half-written file under the real name and a signal never
// leaves the temporary (runtime/signals.c). On any error the previous file is unchanged.
typedef struct rt_atomic { FILE *f; char tmp[4096]; const char *path; int slot; bool named; } rt_atomic;
int rt_atomic_open(rt_atomic *a, const char *path);
int rt_atomic_commit(rt_atomic *a);   // closes; -1 (and tmp removed) on any write error
void rt_atomic_abort(rt_atomic *a);
// For files that are never replaced in place (runtime/backup.c's two generations): the
// unnamed file is linked as final after final is unlinked, so no temporary is ever named.
// Without O_TMPFILE, the same as rt_atomic_commit to final.
int rt_atomic_commit_as(rt_atomic *a, const char *final);

// malloc of rows * width elements of elem bytes (one more element, so 0 rows is not NULL),
// the product checked: NULL, with a message naming what and its size in MiB, when it
// overflows or memory is short.
void *rt_alloc_array(int64_t rows, int64_t width, size_t elem, const char *what);
// mkdir -p: each missing level made with mode (before the umask). Returns 0 or an errno.
int rt_make_dirs(const char *path, unsigned mode);

// Shortest decimal that reads back as the same float32 ("0.8372"), or "null" if not finite.
void rt_format_float(char *buf, size_t size, double v);
// "(28, 28, 1)" as numpy prints a shape (tuple) or "[28, 28, 1]" as safetensors does.
void rt_format_shape(char *buf, size_t size, int ndim, const int64_t *shape, bool tuple);


//
// dist.c — data parallelism as the training loop sees it (runtime/mpi.c implements it)
//
typedef struct rt_dist_hooks {
  int rank, size;                          // 0 and 1 in one process
  int local_rank, local_size;              // among the ranks on this machine
  void (*sum)(double *v, int n);           // in place, over every rank; same bits on each
  void (*bcast)(void *buf, size_t bytes);  // rank 0's bytes to every rank
} rt_dist_hooks;
extern rt_dist_hooks rt_dist;
// This rank's rows [first, first + count) of n (a batch, or validation rows).
void rt_dist_share(int64_t n, int64_t *first, int64_t *count);
void rt_dist_sum(double *v, int n);
void rt_dist_bcast(void *buf, size_t bytes);
// Whether this process writes files (weights, checkpoints, CSV logs, np.save): rank 0.
bool rt_dist_writes(void);

//
// json.c — a small strict JSON parser (RFC 8259), nodes in one array
//
typedef enum { RT_JSON_NULL, RT_JSON_BOOL, RT_JSON_NUMBER, RT_JSON_STRING, RT_JSON_ARRAY,
               RT_JSON_OBJECT } rt_json_kind;
typedef struct rt_json_node {
  rt_json_kind kind;
  const char *key;         // member name when the parent is an object
  const char *str;         // decoded string (NUL-terminated)
  double num;
  bool is_int;             // a number written without fraction/exponent that fits int64
  int64_t i64;
  bool boolean;
  int first, next;         // child / sibling node index, -1 for none
  int count;               // number of children
} rt_json_node;
typedef struct rt_json { rt_json_node *nodes; int n, cap; char *strings; } rt_json;
// Parses text[0..len); 0 and node 0 is the root, or -1 with a reason in err.
int rt_json_parse(rt_json *j, const char *text, size_t len, char *err, size_t errsize);
void rt_json_free(rt_json *j);
// Member of object node obj named key, or -1.
int rt_json_get(const rt_json *j, int obj, const char *key);

//
// Epoch logs: "loss", "accuracy", "val_loss", ... in Keras's order.
//
#define RT_MAX_LOGS 12
typedef struct rt_logs { int n; char name[RT_MAX_LOGS][40]; double value[RT_MAX_LOGS]; } rt_logs;
void rt_logs_add(rt_logs *l, const char *prefix, const char *name, double value);
const double *rt_logs_get(const rt_logs *l, const char *name);

//
// progress.c — Keras 2's Progbar
//
typedef struct rt_progress {
  int64_t target;          // steps in the epoch
  int verbose;             // 0 nothing, 1 bar, 2 one line at the end
  bool live;               // redraw the bar while running (verbose 1 on a terminal)
  double start, last_draw;
  int prev_width;
} rt_progress;
void rt_progress_start(rt_progress *p, int64_t target, int verbose);
// Running values, shown in the live bar (throttled to ~10 redraws a second).
void rt_progress_update(rt_progress *p, int64_t current, const rt_logs *l);
// The epoch's final line, with everything in l.
void rt_progress_finish(rt_progress *p, const rt_logs *l);

//
// callbacks.c — EarlyStopping, ModelCheckpoint, CSVLogger
//
typedef struct rt_callbacks rt_callbacks;
rt_callbacks *rt_callbacks_begin(const nn_callback *cbs, int n, nn_model *m, bool verbose);
// After each epoch (0-based). Sets *stop when training should end. -1 on error.
int rt_callbacks_epoch_end(rt_callbacks *c, int64_t epoch, const rt_logs *l, bool *stop);
// Restores best weights where asked, closes files, frees c.
void rt_callbacks_end(rt_callbacks *c);
// The file the last ModelCheckpoint wrote, or NULL.
const char *rt_callbacks_last_checkpoint(const rt_callbacks *c);

//
// backup.c — BackupAndRestore / --resume DIR (exact resumption; the file's layout is there)
//
// Where a fit is: what a backup holds besides the model.
typedef struct rt_fit_pos {
  int64_t epoch, step;     // the epoch being run (0-based) and the steps done in it
  nn_rng rng_epoch;        // the generator before this epoch's shuffle
  double loss_sum, seen;   // the epoch's running sums, for its logs
  nn_metric_acc acc[4];
} rt_fit_pos;
typedef struct rt_backup rt_backup;
// NULL when the fit has no BackupAndRestore and no --resume (*err 0) or on error (*err -1).
rt_backup *rt_backup_begin(const nn_fit_config *cfg, const nn_options *o, nn_model *m,
                           int64_t rows, int64_t batch, int *err);
// 1: the model, rng and *pos now hold the backup's; 0: no backup yet; -1: error.
int rt_backup_restore(rt_backup *b, nn_rng *rng, rt_fit_pos *pos);
int rt_backup_save(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos);
int rt_backup_after_step(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos, int64_t steps);
int rt_backup_epoch_end(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos);
const char *rt_backup_path(const rt_backup *b);
// In nn_fit's loop, after a step and after an epoch: when a signal came, writes the
// backup (if any) at pos, says where training stopped and what was kept, and exits
// 128 + signal.
void rt_fit_check_signals(rt_backup *b, const nn_rng *rng, const rt_fit_pos *pos,
                          const rt_callbacks *cbs);
// Frees b; a completed fit deletes the backup (Keras's delete_checkpoint=True).
void rt_backup_end(rt_backup *b, bool completed);

//
// numerics.c — TerminateOnNaN and --check-numerics
//
// After a train step: 0 go on, 1 stop training (TerminateOnNaN), -1 error (message
// printed: --check-numerics). epoch and step are 0-based.
int rt_numerics_after_step(nn_model *m, const nn_fit_config *cfg, const nn_options *o, float loss,
                           int n, int64_t epoch, int64_t step);

//
// signals.c — SIGINT / SIGTERM, and the temporary files a signal must remove
//
// Installs the handlers (nn_start_threads does, after any re-execution).
void rt_signals_install(void);
// nn_fit's loop: while on, a first signal is only recorded (rt_signals_pending).
void rt_signals_training(bool on);
int rt_signals_pending(void);
// Holds SIGINT and SIGTERM back (true) or lets them in again (false).
void rt_signals_block(bool block);
// A temporary file the handler unlinks if the program stops; slot for rt_temp_forget.
int rt_temp_register(const char *path);
void rt_temp_forget(int slot);

//
// h5.c / keras_archive.c — Keras's HDF5 layouts, shared by .weights.h5 and .keras files
//
// The Keras 3 .weights.h5 file of the model, built in memory (malloc'ed; NULL, message printed).
void *rt_h5_weights_image(const nn_model *m, size_t *size, const char *path);
// Loads any Keras HDF5 layout held in image[0..size); path names it in messages.
int rt_h5_load_image(nn_model *m, const void *image, size_t size, const char *path);

#endif
