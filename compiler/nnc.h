// nnc.h — the compiler's one internal header, a section per stage (chibicc style).
//
//   source ─► lexer/parser (grammar/) ─► AST (ast.c) ─► sema.c: names, Keras defaults,
//   shapes, data shapes, diagnostics ─► Program (layers, compile/fit config, actions)
//   ─► ir/graph.c: forward graph IR (ops.def: the op table) ─► ir/autodiff.c: train step
//   ─► passes (driver/pipeline.c lists them) ─► ir/plan.c: schedule, memory plan
//   ─► target/: kernels.c (op emitters) through a dialect: emit_c.c | emit_opencl.c
//   ─► driver/build.c: cc
#ifndef NNC_H
#define NNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

//
// diag.c — user errors (file:line:col, the line, a caret, exit 1) and internal errors
//
#ifndef NNC_VERSION            // CMake passes project(VERSION); this is the fallback
#define NNC_VERSION "0.1.0"
#endif
// What tf.__version__ / keras.__version__ evaluate to: the Keras API level nnc follows.
#define NNC_KERAS_API "3.0 (nnc " NNC_VERSION ", Keras 3 API)"

typedef struct Loc {
  int line, col;      // 1-based
  int end_col;        // last column of the range on `line` (>= col), for ~~~ underlines
} Loc;

typedef struct Source {
  const char *path;   // as given on the command line
  const char *text;   // NUL-terminated copy of the file (embedded NULs are rejected by the lexer)
  size_t len;
} Source;

void diag_init(const Source *src);
void diag_error(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_warning(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// A hint printed under the last diagnostic ("did you mean 'Dense'?").
void diag_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int diag_error_count(void);
// Errors stop being printed after this many; compilation then gives up.
enum { DIAG_MAX_ERRORS = 20 };
// A user error outside the source (bad path, unreadable file): "nnc: error: ...".
void diag_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
// A bug in nnc, not in the user's file.
void internal_error(const char *pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
// Closest candidate by edit distance, or NULL when nothing is close.
const char *diag_closest(const char *word, const char *const *candidates, int n);

// Where diagnostics go (default stderr; NULL silences them, for the fuzzer).
void diag_set_output(FILE *out);

// One arena per compilation: freed at exit, never piecemeal (or all at once by
// arena_free_all, for processes that compile many inputs: tests, the fuzzer).
void arena_free_all(void);
void *xalloc(size_t size);                  // zeroed; dies on OOM
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// A whole file into the arena, NUL-terminated; at most `max` bytes. Returns 0, or why
// not (errno holds the system's reason for READ_OPEN and READ_IO).
typedef enum { READ_OK, READ_OPEN, READ_DIR, READ_TOO_BIG, READ_IO } ReadStatus;
ReadStatus read_file(const char *path, size_t max, char **text, size_t *len);

//
// ast.c — syntax tree built by grammar actions; no meaning attached yet
//
typedef enum {
  E_NAME,      // foo
  E_INT,       // 42
  E_FLOAT,     // 1e-3
  E_STRING,    // 'relu'
  E_NONE, E_TRUE, E_FALSE,
  E_ATTR,      // obj.name
  E_CALL,      // f(args, key=value)
  E_INDEX,     // x[0]
  E_TUPLE,     // (a, b) — also a bare `a, b` on the left of `=`
  E_LIST,      // [a, b]
  E_BINARY,    // a / b, a * b, a + b, a - b
  E_UNARY,     // -a
  E_SLICE,     // a:b:c inside [] (lhs start, rhs stop, fn step; each may be NULL)
  E_FSTRING,   // f'…{x:.3f}…': name is the template, fields parsed by sema
} ExprKind;

typedef struct Expr Expr;
typedef struct ExprList {
  Expr **items;
  int n, cap;
} ExprList;

struct Expr {
  ExprKind kind;
  Loc loc;
  const char *name;    // E_NAME, E_ATTR (attribute), E_STRING (value), E_CALL keyword name when used as arg
  int64_t ival;        // E_INT
  double fval;         // E_FLOAT (and E_INT as a double)
  bool overflow;       // E_INT that did not fit in int64
  int op;              // E_BINARY/E_UNARY: '+', '-', '*', '/'
  Expr *lhs, *rhs;     // E_ATTR object (lhs), E_INDEX base/index, E_BINARY operands, E_UNARY operand (lhs)
  Expr *fn;            // E_CALL callee
  ExprList args;       // E_CALL positional, E_TUPLE/E_LIST items
  ExprList kwargs;     // E_CALL keyword args: each item is the value, with ->kwname set
  const char *kwname;  // set on an expression passed as `kwname=value`
};

typedef enum { S_IMPORT, S_ASSIGN, S_EXPR } StmtKind;

typedef struct Stmt {
  StmtKind kind;
  Loc loc;
  Expr *target;        // S_ASSIGN: E_NAME or E_TUPLE of names/tuples
  Expr *value;         // S_ASSIGN, S_EXPR
  struct Stmt *next;
} Stmt;

Expr *ast_name(Loc loc, const char *name);
Expr *ast_int(Loc loc, const char *text);
Expr *ast_float(Loc loc, const char *text);
Expr *ast_string(Loc loc, const char *value);
Expr *ast_const(Loc loc, ExprKind kind);
Expr *ast_attr(Loc loc, Expr *obj, const char *name);
Expr *ast_call(Loc loc, Expr *fn, ExprList args);
Expr *ast_index(Loc loc, Expr *base, Expr *index);
Expr *ast_tuple(Loc loc, ExprList items);
Expr *ast_list(Loc loc, ExprList items);
Expr *ast_binary(Loc loc, int op, Expr *l, Expr *r);
Expr *ast_unary(Loc loc, int op, Expr *e);
Expr *ast_kwarg(Loc loc, const char *name, Expr *value);
Expr *ast_slice(Loc loc, Expr *start, Expr *stop, Expr *step);
Expr *ast_fstring(Loc loc, const char *template_text);
// Adjacent literals as one: a string, or an f-string when any part is one.
Expr *ast_strings(Loc loc, ExprList parts);
// `x op= v` is `x = x op v` (names only: sema refuses other targets).
Stmt *ast_augassign(Loc loc, Loc op_loc, int op, Expr *target, Expr *value);
void exprlist_push(ExprList *l, Expr *e);
Stmt *ast_stmt(Loc loc, StmtKind kind, Expr *target, Expr *value);
Loc loc_span(Loc a, Loc b);   // a range from a to b when on one line
// Dotted name of an E_NAME/E_ATTR chain ("tf.keras.layers.Dense"), or NULL.
const char *ast_dotted(const Expr *e);

// parse.c — runs the flex/bison front end; NULL program on syntax errors (already reported)
Stmt *parse_source(const Source *src);
// One expression from text inside an f-string field, its locations at `at`; NULL after
// reporting an error there.
Expr *parse_expression(const char *text, Loc at);

//
// sema.c — meaning: Keras defaults, argument checks, shapes, data shapes → Program
//
enum { MAX_RANK = 4 };  // per-sample rank (batch excluded)

typedef struct Shape {
  int rank;
  int64_t dim[MAX_RANK];
} Shape;

// The ACT rows of ops.def: ACT_linear, ACT_relu, ...
typedef enum {
#define OP(...)
#define ACT(name, op, param) ACT_##name,
#include "ops.def"
#undef ACT
#undef OP
  ACT_COUNT
} Activation;

typedef enum {
  INIT_GLOROT_UNIFORM, INIT_GLOROT_NORMAL, INIT_HE_UNIFORM, INIT_HE_NORMAL,
  INIT_LECUN_UNIFORM, INIT_LECUN_NORMAL, INIT_ZEROS, INIT_ONES,
  INIT_RANDOM_NORMAL, INIT_RANDOM_UNIFORM,
} Initializer;

typedef enum {
  L_INPUT, L_DENSE, L_CONV2D, L_MAXPOOL2D, L_AVGPOOL2D, L_GLOBALAVGPOOL2D,
  L_FLATTEN, L_RESHAPE, L_DROPOUT, L_ACTIVATION, L_BATCHNORM,
} LayerKind;

typedef struct Layer {
  LayerKind kind;
  Loc loc;
  const char *name;        // Keras name: "conv2d", "dense_1", or name= (validated identifier-like)
  Shape in, out;           // per-sample shapes, channels last
  // Dense / Conv2D
  int64_t units;           // Dense units, Conv2D filters, BatchNormalization channels
  int kh, kw, sh, sw;      // Conv2D kernel/strides, pooling pool_size/strides
  bool pad_same;           // padding='same'
  int pad_top, pad_left;   // resolved 'same' padding (TF convention: extra on bottom/right)
  Activation act;          // Dense/Conv2D/Activation (and LeakyReLU, ELU, ReLU, Softmax)
  double act_param;        // the activation's parameter (ACT row default, or LeakyReLU/ELU's argument)
  const char *cls;         // Keras class when it is not layer_kind_name(kind): "LeakyReLU"
  bool use_bias;
  Initializer kernel_init, bias_init;
  double l1, l2;           // kernel_regularizer
  bool keepdims;            // GlobalAveragePooling2D: output (1, 1, C)
  // Dropout
  double rate;
  // BatchNormalization (units = channels once shapes are known)
  int bn_axis;
  double momentum, epsilon;
  bool center, scale;
  int64_t params, trainable_params;
} Layer;

typedef enum { LOSS_MSE, LOSS_MAE, LOSS_BCE, LOSS_CCE, LOSS_SPARSE_CCE } LossKind;
typedef enum { OPT_SGD, OPT_ADAM, OPT_RMSPROP } OptKind;
typedef enum { MET_ACCURACY, MET_MAE, MET_MSE } MetricKind;

typedef struct Optimizer {
  OptKind kind;
  double lr, momentum, beta1, beta2, epsilon, rho;
  bool nesterov, centered;
} Optimizer;

// A data value: where it comes from and the per-batch transforms applied to it.
typedef enum { DATA_DATASET, DATA_NPY, DATA_CSV, DATA_LITERAL, DATA_PREDICTION } DataSource;
typedef enum { DT_UINT8, DT_FLOAT32, DT_FLOAT64, DT_INT64 } DataType;

typedef struct DataValue {
  DataSource source;
  Loc loc;
  const char *dataset;     // "fashion-mnist" | "mnist"
  int part;                // 0 x_train, 1 y_train, 2 x_test, 3 y_test
  const char *path;        // DATA_NPY / DATA_CSV (as written; resolved at run time)
  char delimiter;          // DATA_CSV
  double *literal;         // DATA_LITERAL values, row-major
  DataType dtype;          // as stored (after .astype only the conversion at batch time changes)
  int64_t rows;            // samples (first dimension)
  Shape shape;             // per-sample shape after reshape/expand_dims
  double scale;            // multiply applied at batch time (/255 → 1/255)
  int64_t onehot;          // >0: to_categorical classes, applied at batch time
  int predict_action;      // DATA_PREDICTION: index of the producing action
  // x[a:b], x[i], x[:, cols]: applied when the data are loaded (Python's slice rules on
  // the rows the program finds), before reshape, scale and one-hot.
  bool selected;
  int64_t row_start, row_stop;   // INT64_MIN: bound not given
  bool row_index;                // x[i]: one sample, no row axis
  int64_t *cols;                 // columns of each flattened sample (n_cols > 0)
  int n_cols;
  bool col_index;                // x[:, k]: the column axis goes
  int64_t skiprows;              // DATA_CSV: np.loadtxt skiprows= / genfromtxt skip_header=
} DataValue;

// Weights files, told apart by their suffix: what save_weights, load_weights, model.save and
// ModelCheckpoint write or read. The runtime function of each is weights_format_function.
typedef enum {
  WF_SAFETENSORS,          // .safetensors
  WF_WEIGHTS_H5,           // .weights.h5: Keras 3 (loading also reads the other HDF5 layouts)
  WF_LEGACY_H5_WEIGHTS,    // .h5 / .hdf5 from save_weights: Keras 2's layout
  WF_LEGACY_H5_MODEL,      // .h5 / .hdf5 from model.save: Keras 2's whole-model file
  WF_KERAS,                // .keras: Keras 3's archive
} WeightsFormat;
const char *weights_format_function(WeightsFormat f, bool save);   // "nn_save_keras"
bool weights_format_uses_hdf5(WeightsFormat f);

typedef enum { CB_EARLY_STOPPING, CB_MODEL_CHECKPOINT, CB_CSV_LOGGER, CB_BACKUP_AND_RESTORE,
               CB_TERMINATE_ON_NAN } CallbackKind;
typedef struct Callback {
  CallbackKind kind;
  Loc loc;
  const char *monitor;     // "val_loss" default
  double min_delta;
  int64_t patience;
  bool restore_best_weights;
  const char *path;        // ModelCheckpoint filepath / CSVLogger filename
  bool save_best_only, save_weights_only;
  WeightsFormat format;    // ModelCheckpoint's file
  const char *separator;   // CSVLogger
  bool append;
  int mode;                // 0 auto, 1 min, 2 max
  int64_t save_freq;       // BackupAndRestore: 0 'epoch', else batches
  bool delete_checkpoint;  // BackupAndRestore
} Callback;

typedef enum {
  A_SUMMARY, A_FIT, A_EVALUATE, A_PREDICT, A_SAVE_WEIGHTS, A_LOAD_WEIGHTS, A_PRINT, A_NP_SAVE, A_PLOT,
} ActionKind;

// matplotlib.pyplot calls (A_PLOT).
typedef enum {
  PLOT_FIGURE, PLOT_SUBPLOT, PLOT_SERIES, PLOT_TITLE, PLOT_XLABEL, PLOT_YLABEL, PLOT_LEGEND, PLOT_GRID,
  PLOT_YLIM, PLOT_SAVE, PLOT_SHOW,
} PlotOp;

// One printed item of print(...): a string, a number, or a shape/result reference.
// Run-time values (known only when the program runs) carry a format spec when an
// f-string, '%' or str.format formats them.
typedef enum {
  P_STRING, P_NUMBER, P_SHAPE, P_SHAPE_DIM, P_EVAL_RESULT, P_EVAL_LIST,
  P_REDUCE,      // np.argmax(data) & co.: op, data
  P_HIST,        // history.history['loss'] (a list): action, key
  P_HIST_ITEM,   // history.history['loss'][-1]: action, key, index
  P_DATA,        // print(x[0]): the data, roughly as numpy prints it
  P_NUMBERS,     // a compile-time list of numbers (plot x/y): numbers, n_numbers
} PrintKind;
typedef struct PrintItem {
  PrintKind kind;
  const char *text;        // P_STRING (raw bytes; escaped when emitted)
  double number;           // P_NUMBER
  bool is_int;
  int data;                // P_SHAPE / P_SHAPE_DIM: data value index
  int dim;                 // P_SHAPE_DIM
  int action;              // P_EVAL_RESULT / P_EVAL_LIST: evaluate action index
  int result;              // P_EVAL_RESULT: 0 loss, 1.. metrics
  const char *spec;        // run-time items: Python format spec, NULL for str()
  double mul;              // run-time numbers: times this (acc * 100), 0 meaning 1
  int op;                  // P_REDUCE: NN_REDUCE_*
  const char *key;         // P_HIST, P_HIST_ITEM
  int64_t index;           // P_HIST_ITEM
  double *numbers;         // P_NUMBERS
  int n_numbers;
} PrintItem;

typedef struct Action {
  ActionKind kind;
  Loc loc;
  int x, y;                // data value indices (-1 none)
  int val_x, val_y;        // fit validation_data
  double validation_split;
  int64_t epochs, batch_size;
  bool shuffle;
  int verbose;             // -1 = "auto" (1)
  Callback *callbacks;
  int n_callbacks;
  const char *path;        // save/load weights, np.save
  WeightsFormat format;    // save/load weights (model.save is A_SAVE_WEIGHTS of a whole-model format)
  PrintItem *items;        // A_PRINT; A_PLOT series: items[0] y, items[1] x when given
  int n_items;
  bool softmax;            // A_PREDICT through probability_model (Sequential([model, Softmax()]))
  PlotOp plot;             // A_PLOT
  const char *text, *fmt;  // A_PLOT: title/label/path; series label and format ('bo')
  int64_t ints[3];         // A_PLOT subplot (rows, cols, index), grid on
  double lims[2];          // A_PLOT ylim
} Action;
// A fit/evaluate/predict's batch: the script's batch_size, else Keras's default 32.
static inline int64_t action_batch(const Action *a) { return a->batch_size > 0 ? a->batch_size : 32; }

typedef struct Program {
  const char *source_path;
  const char *model_name;  // "sequential" unless Sequential(name=...)
  Layer *layers;           // layers[0] is the Input (explicit or from input_shape=)
  int n_layers;
  bool compiled;           // model.compile seen
  Optimizer opt;
  LossKind loss;
  bool from_logits;
  MetricKind metrics[4];
  int n_metrics;
  DataValue *data;
  int n_data;
  Action *actions;
  int n_actions;
  int64_t total_params, trainable_params;
  bool mpi;                // set by the driver: `nnc build --mpi` (data parallel, emit_mpi.c)
} Program;

// Checks the parsed statements; returns NULL after reporting errors.
// check_data: read IDX/NPY/CSV headers to learn data shapes (true for check/build).
Program *sema_check(Stmt *stmts, const Source *src, const char *data_dir);
const char *layer_kind_name(LayerKind k);   // "Dense", "Conv2D", ...
const char *activation_name(Activation a);
const char *initializer_name(Initializer i);   // "glorot_uniform", as Keras spells it
double activation_default_param(Activation a);   // the ACT row's parameter column
const char *loss_name(LossKind l);
// Whether the built program reads or writes Keras's HDF5 files (and then links libhdf5 and
// carries the layer table and Keras config).
bool program_uses_hdf5(const Program *p);
void shape_format(const Shape *s, char *buf, size_t cap);  // "(None, 26, 26, 32)"

// sema_model.c — Python's repr() of a float, for print()
void format_pyfloat(double x, char *buf, size_t cap);

// summary.c — the Keras-style table
void print_summary(FILE *out, const Program *p);

//
// ops.def — the op table
//
typedef enum {
#define OP(name, ...) OP_##name,
#include "ops.def"
#undef OP
  OP_COUNT
} OpKind;

// SOURCE and VIEW ops have no kernel: sources are filled by the runtime, views name
// storage that another op owns or writes.
typedef enum {
  FC_SOURCE, FC_VIEW, FC_ELEMENTWISE, FC_REDUCTION, FC_CONTRACTION, FC_MOVEMENT, FC_LOSS, FC_OPTIMIZER,
} FusionClass;

typedef struct OpInfo {
  const char *name;
  int n_in;
  unsigned optional;       // bit i: in[i] may be NULL
  FusionClass cls;
  OpKind bwd;              // activations: the op of their gradient (else the op itself)
  OpKind infer;            // the op this node runs as in inference
} OpInfo;
// Whether a node of this op runs a kernel (SOURCE and VIEW ops do not).
bool op_has_kernel(OpKind op);
extern const OpInfo op_info[OP_COUNT];
const char *fusion_class_name(FusionClass c);

//
// graph.c — the graph IR: primitive tensor ops on static shapes
//
enum { MAX_IN = 5 };

// Window geometry of conv2d, its gradients and pooling, NHWC.
typedef struct Window {
  int64_t h, w, c;         // input height, width, channels
  int64_t kh, kw, f;       // window size; filters (pooling: f is c)
  int64_t sh, sw;          // strides
  int64_t pt, pl;          // 'same' padding at the top and left (TF puts the extra at the bottom/right)
  int64_t oh, ow;          // output height and width
} Window;

// How a contraction's operands are stored (layout.c picks it per node). Activations stay
// NHWC and weights HWIO / [in, out] in every layout, so Flatten and saved weights keep
// Keras's meaning; what changes is how the kernel reaches them.
typedef enum {
  LAYOUT_NHWC,             // today's kernels: im2col + GEMM, which packs its B operand per call
  LAYOUT_PACKED,           // the weight operand pre-packed once per step by a pack_weights node
                           //   (the input after the op's own): the GEMM packs nothing, and a
                           //   convolution reads its input in place (no im2col, no workspace)
  LAYOUT_BLOCKED,          // a filter gradient over blocked-channel copies of x and dy
                           //   ([C/16][H][W][16] on AVX2) the kernel makes in its workspace
  LAYOUT_COLS,             // a forward convolution as NHWC, but in training its im2col matrix of
                           //   the whole batch is kept (its aux buffer) and read by its filter
                           //   gradient (whose in[2] is this node) instead of built again
} Layout;
// What a pack_weights node packs: op(B) of the contraction that reads it.
typedef enum {
  PACK_B,                  // the weight as it is: [K = all dims but the last, N = the last]
  PACK_BT,                 // its transpose (a Dense layer's data gradient, dy · Wᵀ)
  PACK_CONV_FLIP,          // a convolution's data gradient: the kernel turned half a turn,
                           //   channels swapped ([KH*KW*F, C])
} PackKind;
// A packed buffer rounds N up to this many columns (NNK_PACK_COLS in nn_kernels.h, a
// multiple of every micro-kernel width), so its size does not depend on the vector width.
enum { NNC_PACK_COLS = 32 };
// --layout=auto|nhwc|packed|blocked|cols: the cost model's choice per node, or one layout
// wherever the node can have it, NHWC elsewhere (to compare; cols: COLS for convolutions).
typedef enum { LAYOUTS_AUTO, LAYOUTS_NHWC, LAYOUTS_PACKED, LAYOUTS_BLOCKED, LAYOUTS_COLS } LayoutChoice;
typedef enum { TARGET_C, TARGET_OPENCL } TargetKind;

typedef struct Node Node;
struct Node {
  OpKind op;
  int id;                  // position in Graph.nodes, which is a topological order
  const char *name;        // C identifier, unique in the graph: "conv2d_fwd_conv"
  Node *in[MAX_IN];        // inputs; NULL only where the op's row allows it (optional column)
  Shape shape;             // per-sample shape when batched, else the whole shape
  bool batched;            // has the run-time leading dimension n
  int layer;               // index in Program.layers, -1 for none
  bool backward;           // runs only in training (backward pass, updates)
  // Attributes, typed; each op reads only its own (the builders in graph.c and autodiff.c).
  bool ta, tb;             // matmul: A and/or B transposed
  OpKind fused_act;        // matmul, conv2d: the activation fused into the epilogue (fuse.c);
                           //   in[2], when set, the bias added before it; matmul,
                           //   conv2d_bwd_data, maxpool2d_bwd: the activation gradient
                           //   (relu_bwd...) applied to the result (fuse_grad.c)
  Window win;              // conv2d, conv2d_bwd_*, pooling and their gradients
  Window pool;             // conv2d_pool, conv2d_pool_bwd_filter: the max-pool's window (fuse_pool.c)
  double rate;             // dropout: drop probability
  double alpha;            // parameterized activations and their _bwd: leaky_relu negative_slope, elu alpha
  int64_t salt;            // dropout: mixed into the step's seed so layers draw different masks
  double eps, momentum;    // batchnorm
  double l1, l2;           // l1l2, l1l2_grad
  Optimizer opt;           // *_update: the compile() settings (learning rate, betas, ...)
  int slots;               // *_update: optimizer slots per weight element
  Shape aux_shape;         // a second buffer the node owns: dropout mask, batch statistics,
  bool aux_batched;        //   d gamma / d beta, optimizer slots (aux_shape.rank 0: none)
  Node *alias;             // views and in-place ops: the node whose storage this is
  int64_t alias_offset;    // aux_view: element offset into alias's aux buffer
  Node *grad;              // loss nodes: the loss_grad node their kernel fills; a weight
                           //   gradient (fuse_bias_grad.c): the bias_grad node its kernel fills
  Layout layout;           // matmul, conv2d, conv2d_bwd_data: how the kernel reads its operands (layout.c)
  PackKind pack;           // pack_weights: which packing of its input
  Node **members;          // update_all: the update nodes whose work its kernel does
  int n_members;
  Node **chain;            // ewise_chain: the pointwise nodes it computes, in order (not in the
  int n_chain;             //   graph; each reads the one before it, or nodes among in[])
  Node *computed_by;       // fuse_softmax.c: the loss whose kernel writes this node's value (the
                           //   probabilities) whenever the loss runs; the node's own kernel runs
                           //   only in inference without labels (predict). fuse_bias_grad.c: the
                           //   weight gradient that writes this bias_grad (whose kernel never runs)
  // param nodes
  const char *keras_name;  // "dense_1.kernel"
  bool trainable;
  Initializer init;
  int64_t fan_in, fan_out;
};

typedef struct Plan Plan;

typedef struct Graph {
  Node **nodes;
  int n, cap;
  Node *x, *y;             // the batch: inputs and labels
  Node *output;            // the model's output (probabilities when the loss is fused)
  Node *loss;              // the loss node (NULL when the model is not compiled)
  Node **params;           // param nodes in Keras order (layer by layer)
  int n_params, cap_params;
  bool differentiated;     // autodiff has run
  const char **layer_ident; // per layer: its name as a C identifier (graph_layer_ident)
  int n_layers;
  int stage_fwd_end;       // nodes[0..stage_fwd_end) are the forward pass
  Plan *plan;              // set by the schedule and memory-plan passes (plan.c)
  Node *update_all;        // fuse_updates.c: the one kernel of all optimizer updates (not in nodes)
} Graph;

// Needs a checked Program (shapes resolved). Guarantees: nodes in topological order,
// unique C-identifier names, shapes set by each op's shape rule.
Graph *graph_build(const Program *p);
// Graphviz DOT, deterministic: op, shape and layer per node; params by Keras name.
void graph_dot(const Graph *g, FILE *out);

// Appends a node (name made unique); node_done runs the op's shape rule once attributes
// and the remaining inputs are set.
Node *node_new(Graph *g, OpKind op, const char *name, int layer, Node *a, Node *b);
Node *node_done(Node *nd);
int64_t shape_size(const Shape *s);
int64_t node_elems(const Node *nd);          // per sample when batched
int64_t node_aux_elems(const Node *nd);
// Rows of the last-axis view: per-sample product of all dims but the last.
int64_t shape_rows(const Shape *s);
int64_t shape_last(const Shape *s);
void node_cost(const Node *nd, int64_t n, double *flops, double *bytes);
// The layer name as a C identifier ([a-z0-9_], never starting with "nnc" or a digit).
const char *graph_layer_ident(const Graph *g, int layer);
// Use lists: the nodes that read nd (as an input or as the storage they alias).
typedef struct Uses { Node **nodes; int n; } Uses;
Uses *graph_uses(const Graph *g);           // per node id; recomputed on each call
// Every input edge old -> x becomes new -> x (and aliases of old alias new).
void graph_replace_uses(Graph *g, Node *old, Node *with);
// Moves nd to just before `before` (earlier in the order; ids renumbered): a pass that
// gives a node a new input hoists that input when it came later (a bias param).
void graph_move_before(Graph *g, Node *nd, Node *before);
// Removes nodes nothing uses that are not sinks (losses, updates, the output, params);
// renumbers ids. Returns how many were removed.
int graph_remove_dead(Graph *g);
// Checks the invariants passes rely on (topological order, ids, unique names, inputs
// present unless optional, shapes as the op's rule gives them, aliases earlier, one update
// per trainable param once differentiated); internal error naming `stage` otherwise.
void graph_verify(const Graph *g, const char *stage);

//
// autodiff.c — reverse mode: the train step
//
// Needs graph_build's forward graph with a loss. Appends the backward nodes (gradient
// rules from the op table, `add` where a value has several consumers), the regularizer
// gradients and one optimizer update per trainable param. Guarantees: every trainable
// param has exactly one update node; all appended nodes are marked backward.
void autodiff(Graph *g, const Program *p);

//
// plan.c — the back end's last IR passes: schedule and memory plan
//
struct Plan {
  // Schedule: the nodes that run a kernel, per phase, in order.
  Node **fwd, **bwd, **upd;
  int n_fwd, n_bwd, n_upd;
  // Memory, in elements of one arena: the fixed region (weights; optimizer slots; returned
  // scalars; other batch-independent buffers) then the per-sample region × max_batch.
  int64_t *off, *aux_off;  // per node id; -1 where the node has no storage of its own there
  bool *in_batch, *aux_in_batch;
  int *scalar;             // per node id: its returned scalar's slot (losses), -1 none
  int n_scalars;
  int64_t weights_elems, slots_begin, slots_elems, scalars_begin, fixed_elems, batch_elems;
  bool reused;             // buffers share memory by liveness (memplan.c)
  int64_t fixed_unshared, batch_unshared;   // the two regions' sizes had nothing been shared
  // The inference pass (the forward list alone) lays the per-sample region out anew,
  // reused by its own liveness: offsets × the inference batch, -1 for what it does not
  // touch (fixed buffers keep off/aux_off). It runs at a larger batch in the same memory.
  int64_t *infer_off, *infer_aux_off;   // per node id
  int64_t infer_batch_elems;            // per sample
};
// Needs a graph (differentiated when compiled). Guarantees: every node that runs a kernel
// appears once, in topological order, in its phase.
void schedule(Graph *g);
// Whether a scheduled node's own kernel runs in a train step: not when a loss computes
// its value (computed_by) nor when a grouped kernel does its work (Graph.update_all).
bool runs_in_train_step(const Graph *g, const Node *nd);
// The kernels a train step runs, in order (forward, backward, updates), as the bench
// timers number them: the scheduled nodes that run_in_train_step, then the update group.
int train_step_kernels(const Graph *g, const Node ***out);

//
// fuse.c — epilogue fusion
//
// Needs a differentiated graph. A forward matmul or conv2d followed by bias_add and an
// activation the epilogue computes (relu, sigmoid, tanh) becomes one node that adds the bias (in[2]) and
// applies the activation (fused_act) as each output tile is finished; the bias_add and
// activation nodes lose their uses (graph_remove_dead takes them). Only activations
// whose gradient reads the output are fused, so no backward node needs the value before
// the activation. Guarantees: the step computes the same bits. Returns the nodes fused.
int fuse_epilogues(Graph *g);

//
// fuse_grad.c — gradient fusion
//
// Needs a differentiated graph. An activation's backward op (relu_bwd, sigmoid_bwd,
// tanh_bwd) whose incoming gradient comes from a max-pool backward, a matmul data
// gradient or a conv2d data gradient that nothing else reads is computed by that
// producer (fused_act = the _bwd op; matmul reads y as in[3], conv2d_bwd_data as in[2]).
// Guarantees: the same bits. Returns the nodes fused.
int fuse_gradients(Graph *g);

//
// fuse_pool.c — a first convolution and its max-pool in one kernel each way
//
// Needs a graph after fuse_gradients. A direct conv2d whose output only a tiling max-pool
// reads (and its backward, whose gradient only the filter and bias gradients read)
// becomes a conv2d_pool, its filter gradient a conv2d_pool_bwd_filter that also writes
// the bias gradient. Guarantees: the same bits. Returns the convolutions fused.
int fuse_pooling(Graph *g);

//
// trim_pool.c — a convolution computes only the cells the layer after it reads
//
// Needs a graph after fuse_pooling. A conv2d or conv2d_pool read by one pool or conv2d
// (and its backward) whose windows stop short of its last rows or columns, and whose
// gradient only the producer's own gradients read, gets an output window cut to the rows
// and columns the reader reaches; the reader, its backward and the gradients follow, last
// layer first. A conv2d_pool also computes only the convolution cells under its pool.
// Guarantees: the same outputs and gradients (the cut cells are never read; their
// gradient is 0). Returns the producers trimmed.
int trim_pooled_convs(Graph *g);

// The most cells a window of a convolution the kernels compute directly, without im2col,
// may hold (NNK_CONV_DIRECT_MAX_K in kernels/nn_kernels.h; NNCL_CONV_DIRECT_MAX_K in the
// OpenCL library): the layout pass and fuse_pool.c decide by it.
#define NNC_CONV_DIRECT_MAX_K 32

//
// layout.c — layout selection
//
// Needs a fused graph (after fuse_epilogues, fuse_gradients and dead-node removal). For
// each forward convolution and Dense matmul, each convolution data gradient and each
// Dense data gradient, picks NHWC or PACKED (`choice`: the cost model's pick, or forced where
// possible); a PACKED node gets a pack_weights node of its weight as its last input, placed
// just before it (in the forward pass for forward nodes, so inference packs too). The
// OpenCL target packs the convolutions' data gradients (auto) or all it can (packed). Guarantees: activations and weights keep their NHWC / HWIO
// storage; a forward node computes the same bits in either layout, a data gradient the
// same sums in another order. Returns the nodes given PACKED.
int select_layouts(Graph *g, const Program *p, LayoutChoice choice, TargetKind target);
// Whether the kernel the node runs needs the convolution workspace (im2col's matrix).
bool node_needs_conv_work(const Node *nd);
const char *node_conv_work_fn(const Node *nd);
// "NHWC", "packed": what `nnc bench` and `nnc graph` show.
const char *node_layout_name(const Node *nd);

//
// fuse_bias_grad.c — bias gradients summed by the weight gradients
//
// Needs a differentiated graph. A bias_grad whose dy a conv2d_bwd_filter or a Dense weight
// gradient (matmul xᵀ·dy) of the same layer also reads is computed by that node's kernel
// (its `grad` names the bias_grad, which is marked computed_by it and stays after it).
// Guarantees: the same bits (the sums keep the bias kernel's double, row-order
// arithmetic). Returns the nodes fused.
int fuse_bias_grads(Graph *g);

//
// fuse_softmax.c — the softmax computed once
//
// Needs a differentiated graph whose loss is fused onto the logits (softmax or sigmoid
// cross-entropy) while the model's output is that softmax/sigmoid of the same logits.
// The loss kernel already computes the probabilities (with Keras's from-logits
// numerics); it now writes them into the output node's storage (the loss aliases it)
// and the output's own kernel runs only where the loss does not: inference without
// labels. Guarantees: the loss, its gradient and so the weights are the same bits; the
// training and evaluation outputs are the loss kernel's probabilities (within rounding
// of the softmax kernel's). Returns 1 if it fused, else 0.
int fuse_softmax_loss(Graph *g);

//
// fuse_elementwise.c — chains of pointwise ops in one loop
//
// Needs a differentiated graph. Where a pointwise op (an activation, its gradient,
// dropout's gradient, add) is the only reader of another's value, the two and any
// such ops before and after become one ewise_chain node in the last one's place,
// reading the chain's inputs from the graph (at most MAX_IN) and writing the last
// value; the values in between never reach memory (the C kernel keeps them in a
// cache-sized tile, the OpenCL kernel in registers). Ops with state of their own
// (dropout's mask, batch statistics) or values another node reads stay outside.
// Guarantees: C computes the same bits (the per-op kernels and the chain share each
// op's element function, and every intermediate is rounded to nn_real as before).
// Returns the chains made.
int fuse_elementwise(Graph *g);

//
// fuse_updates.c — every optimizer update of a step in one kernel
//
// Needs a differentiated graph. When every trainable weight's update is the same op with
// the same settings (one compile(), so always), makes Graph.update_all: a node outside
// the node list whose members are those updates, in graph order; its kernel walks all
// the weights in one parallel region (C: nnk_*_update_all; OpenCL: one launch). The
// members stay in the graph and the schedule, so the memory plan, MPI's gradient
// buckets, checkpoints and backups see the same nodes, buffers and slots as before;
// the targets run the group's kernel in place of theirs. Safe because the update phase
// follows the whole backward pass and writes no buffer the plan shares (weights and
// slots have their own memory), so every member's gradient is alive wherever the group
// runs. Guarantees: the same bits as the per-weight kernels (one implementation).
// Returns the number of updates grouped (0: none).
int fuse_updates(Graph *g);

//
// memplan.c — the memory plan
//
// Needs schedule's plan. Guarantees: weights contiguous from 0, optimizer slots
// contiguous (zeroed in one fill), 16-element alignment; with `reuse`, buffers never
// alive in the same kernel of the step share memory, otherwise every buffer has its own.
void plan_memory(Graph *g, bool reuse);

//
// driver/pipeline.c — the pass list, in order, as QBE's main reads
//
// Stages by name: "parsed" (the lowered forward graph), "autodiff", "fused",
// "optimized" (layouts chosen), "scheduled", "planned". Runs every pass up to and including `stage` (NULL: all),
// verifying the graph after each when verification is on (tests, debug builds, or
// NNC_VERIFY=1). Returns NULL for an unknown stage name.
Graph *pipeline_run(const Program *p, const char *stage);
int pipeline_stage(const char *name);          // a stage's index in the list, or -1
const char *pipeline_stage_name(int i);        // the i-th stage; NULL past the last
void pipeline_set_verify(bool on);
// The optional passes, all on unless switched off (to compare with and without them).
typedef struct PassOptions {
  bool no_fuse;            // --no-fuse: no fusion pass at all (each is also off by its name:
                           //   --no-fuse=epilogue,gradient,bias,softmax,elementwise,updates)
  bool no_fuse_epilogue;   // fuse.c: bias and activation stay kernels of their own
  bool no_fuse_gradient;   // fuse_grad.c: activation gradients stay kernels of their own
  bool no_fuse_bias;       // fuse_bias_grad.c: bias gradients stay kernels of their own
  bool no_fuse_softmax;    // fuse_softmax.c: the softmax runs beside the loss that recomputes it
  bool no_fuse_elementwise; // fuse_elementwise.c: one kernel per pointwise op
  bool no_fuse_updates;    // fuse_updates.c: one optimizer kernel per weight
  bool no_fuse_pool;       // fuse_pool.c: a first convolution and its max-pool stay two kernels each way
  bool no_fuse_trim;       // trim_pool.c: a convolution computes the cells its pool never reads too
  bool no_reuse;           // --no-reuse: every buffer its own memory
  LayoutChoice layout;     // --layout=
  TargetKind target;       // the target the graph is for (layouts exist on C only)
} PassOptions;
// "auto", "nhwc", "packed", "blocked", "cols" to a LayoutChoice; -1 for anything else.
int layout_choice(const char *name);
const char *layout_choice_name(LayoutChoice c);
void pipeline_set_options(PassOptions o);
// Sets the switches a --no-fuse= list names ("softmax,updates"); -1 for an unknown name.
int pass_options_parse_no_fuse(PassOptions *o, const char *list);

// driver/report.c — `nnc build`'s memory report: weights, optimizer state, activations
// and gradients (and what they would take unshared), convolution workspace, data, total.
void memory_report(FILE *out, const Program *p, const Graph *g);
// Before emitting: -1 with a message (weights, optimizer state, activations and gradients
// in readable units) when the program could not allocate its arena at the script's
// largest batch: more than limit_bytes (0: this machine's memory), or more than a
// program can address. Sizes are summed in double, so they cannot wrap around.
int memory_check(const Program *p, const Graph *g, double limit_bytes);
// memory_check against $NNC_MEMORY_LIMIT (bytes) or this machine's memory: what `nnc build`
// and `nnc run` ask before generating code.
int memory_check_env(const Program *p, const Graph *g);

//
// target/ — code generation (TargetKind is with the pass options)
//
//
// emit_c.c — the C target
//
// Needs a planned graph. Writes DIR/model.c (and DIR/README): one static function per
// node named after it, literal shapes, one arena, an nn_model, and a main() that
// performs the script's actions. Deterministic. Returns 0, or -1 if DIR is unwritable.
int emit_c(const Program *p, Graph *g, const char *dir);
// emit_opencl.c: DIR/model.cl (one __kernel per node), DIR/nn_kernels.cl (the library,
// read from kernels_dir) and DIR/model.c (the host program, embedding both). Returns 0
// or -1 after a message.
int emit_opencl(const Program *p, Graph *g, const char *dir, const char *kernels_dir);
// DIR/README: every node with its op, class and FLOPs, under `build_line`.
int emit_readme(const Graph *g, const char *dir, const char *build_line);
// A user string as a C string literal: every byte outside [A-Za-z0-9 _.,:;/+=-] escaped.
void emit_c_string(FILE *out, const char *s);
// A double as a C literal that reads back exactly (arena string).
const char *cnum(double v);
// emit_main.c: the generated program's main() (data, then the script's actions).
void emit_main(FILE *out, const Program *p, const Graph *g);
// Bench builds (set by `nnc bench` before emitting): the train step's kernels are timed
// one by one and main() is nn_bench_main (include/nn_profile.h). Off for every other
// command, so normal programs carry no timers.
extern bool emit_profile;

//
// build.c — `nnc build` / `nnc emit`
//
// Emits into a temporary directory, compiles model.c with cc (default "cc", env CC; the
// object through the compiled-code cache) and links it with libnnrt.a; writes out_path
// atomically. specialize compiles the kernels into the model (static inline, constant
// shapes) instead of calling the library nnc run also uses. Returns 0, or -1 after a
// message.
int build_program(const Program *p, Graph *g, TargetKind target, const char *out_path, const char *cflags,
                  const char *cc, bool specialize);
// Where nnc finds what programs include and link, relative to the nnc binary (or
// $NNC_INCLUDE_DIR, $NNC_RUNTIME_LIB): <prefix>/include/nnc, <prefix>/lib/nnc/libnnrt.a.
const char *nnc_include_dir(void);
const char *nnc_runtime_lib(void);
// A library nnc carries (libnnrt.a, libnnc_jit.so): $env_name, else
// <prefix>/lib/nnc/<name>, else beside nnc.
const char *nnc_library(const char *name, const char *env_name);
const char *nnc_version(void);
// The flags every compile of a model uses (both compilers, both commands), into out.
int model_cflags(const char **out, int cap, bool specialize);
// The compiled-code cache key of a model's object: kind, nnc's version, the source,
// the compiler, its flags, this CPU, the headers the source includes.
uint64_t model_cache_key(const char *kind, const char *source, const char *compiler, const char *const *flags,
                         int n_flags);
// Runs the C compiler's argv (NULL-terminated) with its output into dir/cc.log. Returns 0;
// or, after removing dir and the partial output (if not NULL), -1 with a message when it
// cannot start; a compiler that fails is nnc's bug: an internal error saying `failure`,
// with the compiler's output.
int run_compiler(const char **argv, const char *dir, const char *partial, const char *failure);
// A fresh directory under $TMPDIR (NULL after a message), and its removal.
char *make_temp_dir(void);
void remove_temp_dir(const char *dir);
// `nnc emit FILE --target c -o DIR`: creates DIR if needed, writes model.c and README.
int emit_to_dir(const Program *p, Graph *g, TargetKind target, const char *dir);

//
// bench.c — `nnc bench FILE [options]` (argv as main received it): builds the model with
// per-kernel timers for each variant, runs the train step, prints the table. `load`
// parses and checks the script (main.c's front end). Returns the exit status.
//
int bench_main(int argc, char **argv, Program *(*load)(const char *file, const char *data_dir));

// run.c — `nnc run`: the model compiled in process (Clang/LLVM: libnnc_jit.so, loaded
// only by `nnc run`) or, where that library is missing, by the system compiler into a shared object that is dlopen'ed;
// either way through the compiled-code cache, linked against the runtime and kernels
// inside nnc, then its main() is called with argv (argv[0] names the script). Returns
// the program's exit status.
int run_program(const Program *p, Graph *g, TargetKind target, int argc, char **argv);
// This CPU for cache keys: what -march=native looks at (/proc/cpuinfo's model and flags).
const char *host_cpu_id(void);
// --time-passes / NNC_DEBUG: time_stage prints "nnc: time: <stage> <ms since start>"
// to stderr when on. --verbose: what nnc run does (cache hits, fallback).
void set_time_passes(bool on);
void time_stage(const char *stage, double start);
void set_verbose(bool on);
bool verbose_mode(void);

#endif
