// backend.h — the compiler's back half (to be folded into nnc.h as its last sections).
//
//   Program ─► graph.c: forward graph IR ─► autodiff.c: train step (backward + updates)
//           ─► emit_c.c: model.c (kernels named after the graph, one arena) ─► build.c: cc
#ifndef NNC_BACKEND_H
#define NNC_BACKEND_H

#include "nnc.h"

//
// ops.def — the op table
//
typedef enum {
#define OP(name, ...) OP_##name,
#include "ops.def"
#undef OP
  OP_COUNT
} OpKind;

typedef enum {
  FC_SOURCE, FC_ELEMENTWISE, FC_REDUCTION, FC_CONTRACTION, FC_MOVEMENT, FC_LOSS, FC_OPTIMIZER,
} FusionClass;

typedef struct OpInfo {
  const char *name;
  int n_in;
  FusionClass cls;
  OpKind infer;            // the op this node runs as in inference
} OpInfo;
extern const OpInfo op_info[OP_COUNT];
const char *fusion_class_name(FusionClass c);

//
// graph.c — the graph IR: primitive tensor ops on static shapes
//
enum { MAX_IN = 5 };

typedef struct Node Node;
struct Node {
  OpKind op;
  int id;                  // position in Graph.nodes, which is a topological order
  const char *name;        // C identifier, unique in the graph: "conv2d_fwd_conv"
  Node *in[MAX_IN];        // inputs; some ops allow NULL (batchnorm without gamma/beta)
  Shape shape;             // per-sample shape when batched, else the whole shape
  bool batched;            // has the run-time leading dimension n
  int layer;               // index in Program.layers, -1 for none
  bool backward;           // runs only in training (backward pass, updates)
  int64_t attr[12];        // op attributes (see the node builders in graph.c)
  double fattr[4];
  Shape aux_shape;         // a second buffer the node owns: dropout mask, batch statistics,
  bool aux_batched;        //   d gamma / d beta, optimizer slots (aux_shape.rank 0: none)
  Node *alias;             // views and in-place ops: the node whose storage this is
  int64_t alias_offset;    // aux_view: element offset into alias's aux buffer
  Node *grad;              // loss nodes: the loss_grad node their kernel fills
  // param nodes
  const char *keras_name;  // "dense_1.kernel"
  bool trainable;
  Initializer init;
  int64_t fan_in, fan_out;
};

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

//
// autodiff.c — reverse mode: the train step
//
// Needs graph_build's forward graph with a loss. Appends the backward nodes (gradient
// rules from the op table, `add` where a value has several consumers), the regularizer
// gradients and one optimizer update per trainable param. Guarantees: every trainable
// param has exactly one update node; all appended nodes are marked backward.
void autodiff(Graph *g, const Program *p);

//
// emit_c.c — the C target
//
// Needs a differentiated graph. Writes DIR/model.c (and DIR/README): one static function
// per node named after it, literal shapes, one arena, an nn_model, and a main() that
// performs the script's actions. Deterministic. Returns 0, or -1 if DIR is unwritable.
int emit_c(const Program *p, Graph *g, const char *dir);
// A user string as a C string literal: every byte outside [A-Za-z0-9 _.,:;/+=-] escaped.
void emit_c_string(FILE *out, const char *s);
// Python's repr() of a float: shortest round-trip digits, "1.0", "1e-05".
void python_float_repr(double v, char *buf, size_t cap);

//
// build.c — `nnc build` / `nnc emit`
//
// Emits into a temporary directory and compiles with cc (default "cc", env CC); writes
// out_path atomically. Returns 0, or -1 after a message.
int build_program(const Program *p, Graph *g, const char *out_path, const char *cflags,
                  const char *cc);
// `nnc emit FILE --target c -o DIR`: creates DIR if needed, writes model.c and README.
int emit_to_dir(const Program *p, Graph *g, const char *dir);

#endif
