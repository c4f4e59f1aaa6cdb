// sema_internal.h — values shared by sema.c (statements, data, model calls) and
// layers.c (layer arguments and shape rules). Not used outside sema.
#ifndef SEMA_INTERNAL_H
#define SEMA_INTERNAL_H
#include "nnc.h"

// What an expression evaluates to at compile time. A .nn file is a straight-line
// script, so sema simply runs it on these values, with data as shapes only.
typedef enum {
  V_ERROR,     // already reported; silences follow-on errors
  V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR, V_TUPLE, V_LIST,
  V_PATH,      // a module or function path: "tf.keras.layers.Dense" → canonical dotted name
  V_LAYER, V_MODEL, V_METHOD,
  V_DATA,      // a data value (index into Program.data)
  V_DATASETS,  // the result of load_data() before unpacking
  V_SHAPE,     // x.shape
  V_OPT, V_LOSS, V_METRIC, V_REG, V_CALLBACK,
  V_RESULT,    // evaluate()'s result (a list when metrics are compiled)
  V_RESULT_ITEM,
  V_HISTORY,   // fit()'s result: i = the fit action
  V_HISTDICT,  // history.history: i = the fit action
  V_RUNTIME,   // a value known when the program runs (rt): print, format, plot it
  V_TEXT,      // formatted text with run-time parts (parts, n)
} ValueKind;

typedef struct Value Value;
struct Value {
  ValueKind kind;
  Loc loc;
  int64_t i;            // V_INT, V_BOOL, V_DATA index, V_SHAPE data index, V_RESULT action
  double f;             // V_FLOAT (and V_INT as double)
  const char *s;        // V_STR, V_PATH, V_METHOD name, V_DATASETS name
  Value **items;        // V_TUPLE, V_LIST
  int n;
  Layer *layer;         // V_LAYER
  Optimizer opt;        // V_OPT
  LossKind loss;        // V_LOSS
  bool from_logits;
  MetricKind metric;    // V_METRIC
  double l1, l2;        // V_REG
  Callback cb;          // V_CALLBACK
  int result;           // V_RESULT_ITEM index
  int shape_of;         // V_INT read from x.shape[k]: data index + 1 (0: not), and k
  int shape_dim;        //   so print() shows the run-time value, not the compiled one
  PrintItem rt;         // V_RUNTIME: what it is (P_EVAL_RESULT, P_REDUCE, P_HIST, ...)
  bool rt_int;          // V_RUNTIME: an integer (argmax, a shape dimension)
  PrintItem *parts;     // V_TEXT
  bool wrapper;         // V_MODEL: Sequential([model, Softmax()]), for predict only
};

Value *value_new(ValueKind kind, Loc loc);
Value *value_error(void);
const char *value_kind_name(const Value *v);
Value *eval(const Expr *e);

// Binds a call's arguments to parameter names (Python rules: the first `npos` may be
// positional, the rest keyword-only). args[i] is NULL when not given. Unknown or
// repeated keywords are errors with a did-you-mean. Returns false after an error.
bool bind_args(const Expr *call, const char *fname, const char *const *params, int nparams,
               int npos, const Expr **args);

// Typed readers of bound arguments; each reports a clear error and returns false.
bool arg_int(const Expr *e, const char *what, int64_t lo, int64_t hi, int64_t *out);
bool arg_float(const Expr *e, const char *what, double lo, double hi, bool lo_open, double *out);
bool arg_bool(const Expr *e, const char *what, bool *out);
bool arg_str(const Expr *e, const char *what, const char **out);
// An int or a tuple/list of n ints, each in [lo, hi].
bool arg_ints(const Expr *e, const char *what, int n, int64_t lo, int64_t hi, int64_t *out);
// A shape tuple (None for the batch is not allowed here), per sample.
bool arg_shape(const Expr *e, const char *what, Shape *out);
bool arg_activation(const Expr *e, Activation *out);
bool arg_initializer(const Expr *e, const char *what, Initializer *out);

// layers.c
// Is `name` (the last component of a called path) a layer class? Builds the layer.
bool is_layer_class(const char *name);
Value *layer_construct(const char *cls, const Expr *call);
// Infers the output shape of `l` from `in` and counts its parameters; reports
// errors at the layer's location. Returns false after an error.
bool layer_infer(Layer *l, const Shape *in);
// Resets Keras's automatic name counters (one compilation per process, but tests run many).
void layer_names_reset(void);
extern const char *const layer_class_names[];
extern const int n_layer_class_names;

// sema.c: shared state and helpers
Program *sema_program(void);
Value **sema_model_slot(void);     // the one Sequential model, once created
const char *sema_data_dir(void);   // --data-dir
Action *sema_add_action(ActionKind kind, Loc loc);
void *sema_grow(void *items, int n, size_t size);  // doubling arrays: call before appending item n
bool in_list(const char *s, const char *const *list, int n);
const char *last_component(const char *path);      // "tf.keras.layers.Dense" → "Dense"

// sema_data.c: data values (all return value_error() after reporting)
int sema_add_data(DataValue d);
void sema_shape_with_rows(const DataValue *d, char *buf, size_t cap);  // "(60000, 28, 28)"
Value *load_dataset(const char *name, Loc loc);
Value *np_array(const Expr *call);
Value *np_file(const Expr *call, bool csv);
Value *data_reshape(const Value *dv, const Expr *call);
Value *data_astype(const Value *dv, const Expr *call);
Value *data_scale(const Value *dv, double factor, Loc loc);
Value *to_categorical(const Expr *call);
Value *expand_dims(const Expr *call);
Value *data_select(const Value *dv, const Expr *index);   // x[a:b], x[i], x[:, cols]

// sema_config.c: optimizers, losses, metrics, callbacks, regularizers
Value *make_optimizer(const char *name, const Expr *call, Loc loc);
Value *make_loss(const char *name, const Expr *call, Loc loc);
Value *make_metric(const char *name, const Expr *call, Loc loc);
Value *make_callback(const char *name, const Expr *call);
Value *make_regularizer(const char *name, const Expr *call);
bool is_optimizer_name(const char *n);
bool is_loss_name(const char *n);
bool is_metric_class(const char *n);
bool is_callback_name(const char *n);
bool is_regularizer_name(const char *n);

// sema_model.c: the model, its methods, print and np.save
Value *model_new(const Expr *call);
Value *model_method(Value *m, const char *method, const Expr *call);
Value *do_print(const Expr *call);

// sema_format.c: f-strings, '%' and str.format; values known at run time
Value *eval_fstring(const Expr *e);
Value *format_percent(const Expr *e, Value *fmt, Value *args);
Value *format_method(const Value *fmt, const Expr *call);
// Appends v as print() shows it (conv 'r': repr; spec: a format spec) to items; false
// after an error (reported at loc).
bool text_append(PrintItem **items, int *n, const Value *v, char conv, const char *spec, Loc loc);
void text_append_literal(PrintItem **items, int *n, const char *s);
// A run-time value as a print item (V_RESULT_ITEM, x.shape[k], V_RUNTIME); false if v is not one.
bool runtime_item(const Value *v, PrintItem *out, bool *is_int);
Value *np_reduce(const char *fn, const Expr *call);
Value *builtin_len(const Expr *call);
Value *builtin_range(const Expr *call);
Value *builtin_convert(const char *fn, const Expr *call);

// sema_plot.c: matplotlib.pyplot
bool is_plot_call(const char *path);
Value *plot_call(const char *fn, const Expr *call);
Value *np_save(const Expr *call);
// The format of a weights file from its suffix, as Keras picks it (plus .safetensors). what
// names the call in messages ("save_weights", "save", "ModelCheckpoint"); whole_model: model.save
// or ModelCheckpoint(save_weights_only=False). False after an error at `at`.
bool weights_format_of(const Expr *at, const char *path, const char *what, bool save, bool whole_model,
                       WeightsFormat *out);

// Checked int64 arithmetic for parameter counts and shapes.
bool mul_ok(int64_t a, int64_t b, int64_t *out);
#endif
