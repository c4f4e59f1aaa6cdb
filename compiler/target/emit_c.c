// emit_c.c — the C target: a differentiated graph and its Program as DIR/model.c.
//
// Needs: graph_build's graph, differentiated by autodiff when the model is compiled.
// Guarantees: readable C11 that includes "nn.h" and "nn_kernels.h"; one static function
// per graph node, named after it, with a comment giving its op and shapes; every shape
// a literal, the batch count n the only run-time dimension; all buffers at offsets
// fixed here, in one arena; the same input gives byte-identical output. Built with
// -DNN_REAL=double the train step runs in double precision (gradient checks).
// Nothing from the user's file is printed except as escaped string literals or
// through the graph's mangled names.
#include "nnc.h"
#include "nn.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct Emit {
  FILE *out;
  const Program *p;
  Graph *g;
  // Memory plan, in elements: storage is either batch-independent (`fixed` region) or
  // per sample (`batch` region, scaled by max_batch at model creation).
  int64_t *off, *aux_off;        // per node id; -1 when the node has no storage there
  bool *in_batch, *aux_in_batch;
  int64_t weights_elems, slots_begin, slots_elems, fixed_elems, batch_elems;
} Emit;

//
// Formatting helpers
//
// A double as a C literal that reads back exactly.
const char *cnum(double v) {
  if (isnan(v)) return "NAN";
  if (isinf(v)) return v < 0 ? "-HUGE_VAL" : "HUGE_VAL";
  char buf[48];
  nn_format_float(buf, sizeof buf, v);
  return xstrdup(buf);
}

void emit_c_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 strchr(" _.,:;/+=-", *c);
    if (plain) fputc(*c, out);
    else fprintf(out, "\\%03o", *c);
  }
  fputc('"', out);
}

static void shape_text(FILE *out, const Node *nd) {
  fputc('(', out);
  int k = 0;
  if (nd->batched) fputc('n', out), k++;
  for (int i = 0; i < nd->shape.rank; i++) fprintf(out, "%s%lld", k++ ? ", " : "", (long long)nd->shape.dim[i]);
  fputc(')', out);
}

static const char *buf(const Node *nd) { return xprintf("s->%s", nd->name); }
static const char *aux(const Node *nd) { return xprintf("s->%s_aux", nd->name); }

// Elements of a node for the current batch: "n * 784", or "784" when batch-independent.
static const char *len_expr(const Node *nd) {
  int64_t k = node_elems(nd);
  if (!nd->batched) return xprintf("%lld", (long long)k);
  return k == 1 ? "(int64_t)n" : xprintf("(int64_t)n * %lld", (long long)k);
}

// Rows of the last-axis view over the batch: "n" or "n * 676".
static const char *rows_expr(const Node *nd) {
  int64_t r = shape_rows(&nd->shape);
  return r == 1 ? "n" : xprintf("n * %lld", (long long)r);
}

static long long last(const Node *nd) { return (long long)shape_last(&nd->shape); }

// H W C KH KW F SH SW PT PL OH OW, as graph.c stores them for conv2d and pooling.
static const char *spatial_args(const Node *nd, bool pool) {
  const int64_t *a = nd->attr;
  if (pool)
    return xprintf("%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld", (long long)a[0], (long long)a[1],
                   (long long)a[2], (long long)a[3], (long long)a[4], (long long)a[6], (long long)a[7],
                   (long long)a[8], (long long)a[9], (long long)a[10], (long long)a[11]);
  return xprintf("%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld", (long long)a[0],
                 (long long)a[1], (long long)a[2], (long long)a[3], (long long)a[4], (long long)a[5],
                 (long long)a[6], (long long)a[7], (long long)a[8], (long long)a[9], (long long)a[10],
                 (long long)a[11]);
}

//
// Emitters (ops.def column 7): the body of a node's function. `infer` is set when the
// node runs as op_info[op].infer (inference mode).
//
#define P(...) fprintf(e->out, __VA_ARGS__)

static void emit_none(Emit *e, const Node *nd, bool infer) {}
static void emit_input(Emit *e, const Node *nd, bool infer) {}     // filled by nnc_load_batch
static void emit_loss_grad(Emit *e, const Node *nd, bool infer) {} // filled by the loss kernel

static void emit_matmul(Emit *e, const Node *nd, bool infer) {
  const Node *a = nd->in[0], *b = nd->in[1];
  if (!nd->attr[0] && !nd->attr[1])
    P("  nnk_gemm(0, 0, %s, %lld, %lld, %s, %s, %s, 0);\n", rows_expr(a), last(nd), last(a), buf(a), buf(b), buf(nd));
  else if (!nd->attr[0])
    P("  nnk_gemm(0, 1, %s, %lld, %lld, %s, %s, %s, 0);\n", rows_expr(a), last(nd), last(a), buf(a), buf(b), buf(nd));
  else
    P("  nnk_gemm(1, 0, %lld, %lld, %s, %s, %s, %s, 0);\n", last(a), last(b), rows_expr(a), buf(a), buf(b), buf(nd));
}

static void emit_conv2d(Emit *e, const Node *nd, bool infer) {
  P("  nnk_conv2d_fwd(n, %s,\n                 %s, %s, %s, s->work);\n", spatial_args(nd, false), buf(nd->in[0]),
    buf(nd->in[1]), buf(nd));
}

static void emit_conv2d_bwd_data(Emit *e, const Node *nd, bool infer) {
  P("  nnk_conv2d_bwd_data(n, %s,\n                      %s, %s, %s, s->work);\n", spatial_args(nd, false),
    buf(nd->in[0]), buf(nd->in[1]), buf(nd));
}

static void emit_conv2d_bwd_filter(Emit *e, const Node *nd, bool infer) {
  P("  nnk_conv2d_bwd_filter(n, %s,\n                        %s, %s, %s, s->work);\n", spatial_args(nd, false),
    buf(nd->in[0]), buf(nd->in[1]), buf(nd));
}

static void emit_bias_add(Emit *e, const Node *nd, bool infer) {
  P("  nnk_bias_add(%s, %lld, %s, %s);\n", rows_expr(nd), last(nd), buf(nd), buf(nd->in[1]));
}

static void emit_bias_grad(Emit *e, const Node *nd, bool infer) {
  const Node *dy = nd->in[0];
  P("  nnk_bias_grad(%s, %lld, %s, %s);\n", rows_expr(dy), last(dy), buf(dy), buf(nd));
}

static void emit_act(Emit *e, const Node *nd, bool infer) {
  P("  nnk_%s_fwd(%s, %s, %s);\n", op_info[nd->op].name, len_expr(nd), buf(nd->in[0]), buf(nd));
}

static void emit_softmax(Emit *e, const Node *nd, bool infer) {
  P("  nnk_softmax_fwd(%s, %lld, %s, %s);\n", rows_expr(nd), last(nd), buf(nd->in[0]), buf(nd));
}

static void emit_act_bwd(Emit *e, const Node *nd, bool infer) {
  P("  nnk_%s(%s, %s, %s, %s);\n", op_info[nd->op].name, len_expr(nd), buf(nd->in[0]), buf(nd->in[1]), buf(nd));
}

static void emit_softmax_bwd(Emit *e, const Node *nd, bool infer) {
  P("  nnk_softmax_bwd(%s, %lld, %s, %s, %s);\n", rows_expr(nd), last(nd), buf(nd->in[0]), buf(nd->in[1]), buf(nd));
}

static void emit_dropout(Emit *e, const Node *nd, bool infer) {
  // Each dropout layer mixes its own constant into the step's seed.
  P("  nnk_dropout_fwd(%s, %s, s->seed ^ 0x%016llxull,\n                  %s, %s, %s);\n", len_expr(nd), cnum(nd->fattr[0]),
    (unsigned long long)(0x9E3779B97F4A7C15ull * (uint64_t)(nd->attr[0] + 1)), buf(nd->in[0]), buf(nd), aux(nd));
}

static void emit_dropout_bwd(Emit *e, const Node *nd, bool infer) {
  P("  nnk_dropout_bwd(%s, %s, %s, %s);\n", len_expr(nd), aux(nd->in[0]), buf(nd->in[1]), buf(nd));
}

static void emit_copy(Emit *e, const Node *nd, bool infer) {
  P("  nnk_copy(%s, %s, %s);\n", len_expr(nd), buf(nd->in[0]), buf(nd));
}

static void emit_add(Emit *e, const Node *nd, bool infer) {
  P("  nnk_copy(%s, %s, %s);\n", len_expr(nd), buf(nd->in[0]), buf(nd));
  P("  nnk_add_inplace(%s, %s, %s);\n", len_expr(nd), buf(nd), buf(nd->in[1]));
}

static void emit_pool2d(Emit *e, const Node *nd, bool infer) {
  P("  nnk_%s_fwd(n, %s,\n                    %s, %s);\n", op_info[nd->op].name, spatial_args(nd, true),
    buf(nd->in[0]), buf(nd));
}

static void emit_pool2d_bwd(Emit *e, const Node *nd, bool infer) {
  if (nd->op == OP_maxpool2d_bwd)
    P("  nnk_maxpool2d_bwd(n, %s,\n                    %s, %s, %s, %s);\n", spatial_args(nd, true), buf(nd->in[0]),
      buf(nd->in[1]), buf(nd->in[2]), buf(nd));
  else
    P("  nnk_avgpool2d_bwd(n, %s,\n                    %s, %s);\n", spatial_args(nd, true), buf(nd->in[1]), buf(nd));
}

static void emit_global_pool(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0];
  P("  nnk_global_avgpool2d_fwd(n, %lld, %lld, %s, %s);\n", (long long)shape_rows(&x->shape), last(x), buf(x), buf(nd));
}

static void emit_global_pool_bwd(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0];
  P("  nnk_global_avgpool2d_bwd(n, %lld, %lld, %s, %s);\n", (long long)shape_rows(&x->shape), last(x),
    buf(nd->in[1]), buf(nd));
}

static const char *opt_buf(const Node *nd) { return nd ? buf(nd) : "NULL"; }

static void emit_batchnorm(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0];
  long long c = last(nd);
  if (infer)
    P("  nnk_batchnorm_fwd_infer(%s, %lld, %s, %s, %s, %s, %s, %s, %s);\n", rows_expr(x), c, cnum(nd->fattr[0]),
      buf(x), opt_buf(nd->in[1]), opt_buf(nd->in[2]), buf(nd->in[3]), buf(nd->in[4]), buf(nd));
  else
    P("  nnk_batchnorm_fwd_train(%s, %lld, %s, %s, %s, %s, %s,\n                          %s, %s, %s + %lld, %s, %s);\n",
      rows_expr(x), c, cnum(nd->fattr[0]), cnum(nd->fattr[1]), buf(x), opt_buf(nd->in[1]), opt_buf(nd->in[2]),
      buf(nd), aux(nd), aux(nd), c, buf(nd->in[3]), buf(nd->in[4]));
}

static void emit_batchnorm_bwd(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0], *fwd = nd->in[3];
  long long c = last(nd);
  P("  nnk_batchnorm_bwd(%s, %lld, %s, %s, %s, %s, %s + %lld,\n                    %s, %s, %s + %lld);\n",
    rows_expr(x), c, buf(x), buf(nd->in[1]), opt_buf(nd->in[2]), aux(fwd), aux(fwd), c, buf(nd), aux(nd), aux(nd), c);
}

static bool is_fused_loss(OpKind op) {
  return op == OP_sparse_softmax_xent || op == OP_softmax_xent || op == OP_sigmoid_bce;
}

static void emit_loss(Emit *e, const Node *nd, bool infer) {
  const Node *pred = nd->in[0], *y = nd->in[1];
  const char *grad = !infer && nd->grad ? buf(nd->grad) : "NULL";
  if (is_fused_loss(nd->op))
    P("  s->loss = nnk_loss_%s(%s, %lld, %s, %s, %s, %s);\n", op_info[nd->op].name, rows_expr(pred), last(pred),
      buf(pred), buf(y), buf(nd), grad);
  else
    P("  s->loss = nnk_loss_%s(%s, %lld, %s, %s, %s);\n", op_info[nd->op].name, rows_expr(pred), last(pred),
      buf(pred), buf(y), grad);
}

static void emit_l1l2(Emit *e, const Node *nd, bool infer) {
  const Node *w = nd->in[0];
  P("  s->reg += nnk_l1l2_loss(%lld, %s, %s, %s);\n", (long long)node_elems(w), cnum(nd->fattr[0]),
    cnum(nd->fattr[1]), buf(w));
}

static void emit_l1l2_grad(Emit *e, const Node *nd, bool infer) {
  long long k = node_elems(nd);
  P("  memset(%s, 0, %lld * sizeof(nn_real));\n", buf(nd), k);
  P("  nnk_l1l2_grad(%lld, %s, %s, %s, %s);\n", k, cnum(nd->fattr[0]), cnum(nd->fattr[1]), buf(nd->in[0]), buf(nd));
}

static void emit_update(Emit *e, const Node *nd, bool infer) {
  const Optimizer *o = &e->p->opt;
  const Node *w = nd->in[0], *g = nd->in[1];
  long long k = node_elems(w);
  switch (nd->op) {
  case OP_sgd_update:
    P("  nnk_sgd_update(%lld, %s, %s, %d, %s, %s, %s);\n", k, cnum(o->lr), cnum(o->momentum), o->nesterov,
      buf(w), buf(g), aux(nd));
    break;
  case OP_adam_update:
    P("  nnk_adam_update(%lld, %s, %s, %s, %s, s->step,\n                  %s, %s, %s, %s + %lld);\n", k,
      cnum(o->lr), cnum(o->beta1), cnum(o->beta2), cnum(o->epsilon), buf(w), buf(g), aux(nd), aux(nd), k);
    break;
  case OP_rmsprop_update:
    P("  nnk_rmsprop_update(%lld, %s, %s, %s, %s, %d,\n                     %s, %s, %s, %s + %lld, %s + %lld);\n", k,
      cnum(o->lr), cnum(o->rho), cnum(o->momentum), cnum(o->epsilon), o->centered, buf(w), buf(g), aux(nd),
      aux(nd), k, aux(nd), 2 * k);
    break;
  default:
    internal_error("emit_c", "%s is not an optimizer update", op_info[nd->op].name);
  }
}

#define OP(name, nin, cls, shape, grad, cost, emit, inf) emit,
static void (*const emit_rule[OP_COUNT])(Emit *, const Node *, bool) = {
#include "ops.def"
};
#undef OP

//
// Memory plan: fixed offsets in one arena. Weights first (contiguous, so they can be
// saved as one block), then optimizer slots (zeroed by reset_optimizer in one memset),
// then other batch-independent buffers, then per-sample buffers × max_batch.
// No two buffers share memory yet; liveness-based reuse is a later pass.
//
static int64_t round16(int64_t k) { return (k + 15) / 16 * 16; }

static void plan_memory(Emit *e) {
  Graph *g = e->g;
  e->off = xalloc(g->n * sizeof *e->off);
  e->aux_off = xalloc(g->n * sizeof *e->aux_off);
  e->in_batch = xalloc(g->n * sizeof *e->in_batch);
  e->aux_in_batch = xalloc(g->n * sizeof *e->aux_in_batch);
  for (int i = 0; i < g->n; i++) e->off[i] = e->aux_off[i] = -1;
  int64_t fixed = 0, batch = 0;
  for (int i = 0; i < g->n_params; i++) {
    e->off[g->params[i]->id] = fixed;
    fixed += round16(node_elems(g->params[i]));
  }
  e->weights_elems = e->slots_begin = fixed;
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    if (op_info[nd->op].cls == FC_OPTIMIZER && node_aux_elems(nd)) {
      e->aux_off[i] = fixed;
      fixed += round16(node_aux_elems(nd));
    }
  }
  e->slots_elems = fixed - e->slots_begin;
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    bool storage = !nd->alias && nd->op != OP_param && nd->shape.rank > 0;
    if (storage && nd->batched) e->off[i] = batch, e->in_batch[i] = true, batch += round16(node_elems(nd));
    else if (storage) e->off[i] = fixed, fixed += round16(node_elems(nd));
    if (op_info[nd->op].cls == FC_OPTIMIZER || !node_aux_elems(nd)) continue;
    if (nd->aux_batched) e->aux_off[i] = batch, e->aux_in_batch[i] = true, batch += round16(node_aux_elems(nd));
    else e->aux_off[i] = fixed, fixed += round16(node_aux_elems(nd));
  }
  e->fixed_elems = fixed;
  e->batch_elems = batch;
}

//
// The file, section by section
//
static void emit_header(Emit *e) {
  const Program *p = e->p;
  Graph *g = e->g;
  int nb = 0, nu = 0;
  for (int i = g->stage_fwd_end; i < g->n; i++)
    op_info[g->nodes[i]->op].cls == FC_OPTIMIZER ? nu++ : nb++;
  P("// model.c — generated by nnc; edit the .nn script instead.\n//\n");
  P("// %d layers, %lld params (%lld trainable).\n//", p->n_layers - 1, (long long)p->total_params,
    (long long)p->trainable_params);
  if (g->loss)
    P(" Loss: %s%s; optimizer: %s.\n", op_info[g->loss->op].name,
      is_fused_loss(g->loss->op) ? " (fused onto the logits)" : "",
      p->opt.kind == OPT_SGD ? "sgd" : p->opt.kind == OPT_ADAM ? "adam" : "rmsprop");
  else
    P(" Not compiled: inference only.\n");
  P("// Graph: %d forward nodes, %d backward nodes, %d optimizer updates.\n//\n", g->stage_fwd_end, nb, nu);
  P("// One function per graph node, named after it; shapes are constants and the batch\n"
    "// count n is the only run-time dimension. Every buffer has an offset fixed at compile\n"
    "// time in one arena allocated at model creation (weights, optimizer slots, other\n"
    "// batch-independent buffers, then per-sample buffers × max_batch). Buffers are not\n"
    "// reused yet: liveness-based sharing is a later pass.\n");
  P("#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
  P("#include \"nn.h\"\n#include \"nn_kernels.h\"\n\n");
  P("enum {\n  WEIGHTS_ELEMS = %lld,\n  SLOTS_BEGIN = %lld,\n  SLOTS_ELEMS = %lld,\n  FIXED_ELEMS = %lld,\n"
    "  PER_SAMPLE_ELEMS = %lld,\n};\n\n",
    (long long)e->weights_elems, (long long)e->slots_begin, (long long)e->slots_elems, (long long)e->fixed_elems,
    (long long)e->batch_elems);
}

static void emit_state(Emit *e) {
  Graph *g = e->g;
  P("// Field names without '_' are the program's own; the others are graph nodes.\n");
  P("typedef struct State {\n  int maxbatch;\n  int64_t step;             // optimizer steps taken (Adam's t)\n"
    "  uint64_t seed;            // this step's dropout seed\n"
    "  double loss, reg;         // the batch's summed loss; regularization terms\n"
    "  nn_real *arena, *work;    // all buffers; convolution workspace\n");
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (nd->shape.rank == 0 && !node_aux_elems(nd)) continue;
    if (nd->shape.rank > 0) {
      P("  nn_real *%s;  // %s ", nd->name, op_info[nd->op].name);
      shape_text(e->out, nd);
      if (nd->alias) P(nd->op == OP_aux_view ? ", in %s_aux" : ", storage of %s", nd->alias->name);
      P("\n");
    }
    if (node_aux_elems(nd)) {
      const char *what = nd->op == OP_dropout ? "mask" : nd->op == OP_batchnorm_train ? "batch mean, 1/std"
                         : nd->op == OP_batchnorm_bwd ? "d gamma, d beta" : "optimizer slots";
      P("  nn_real *%s_aux;  // %s\n", nd->name, what);
    }
  }
  P("} State;\n\n");
}

// The body of one node's function in mode `infer`, or NULL when it has nothing to do.
static char *node_body(Emit *e, const Node *nd, bool infer) {
  char *text = NULL;
  size_t len = 0;
  FILE *saved = e->out;
  e->out = open_memstream(&text, &len);
  if (!e->out) internal_error("emit_c", "open_memstream failed");
  OpKind op = infer ? op_info[nd->op].infer : nd->op;
  emit_rule[op](e, nd, infer);
  fclose(e->out);
  e->out = saved;
  if (len == 0) return free(text), NULL;
  char *copy = xstrdup(text);
  free(text);
  return copy;
}

// A node runs differently in inference if its op says so (dropout, batchnorm) or it is a
// loss (no gradient output).
static bool has_infer_variant(const Node *nd) {
  return op_info[nd->op].infer != nd->op || (op_info[nd->op].cls == FC_LOSS && nd->op != OP_l1l2);
}

// Whether the identifier n occurs in a function body.
static bool uses_n(const char *body) {
  for (const char *c = body; (c = strchr(c, 'n')); c++) {
    bool before = c > body && (isalnum((unsigned char)c[-1]) || c[-1] == '_');
    bool after = isalnum((unsigned char)c[1]) || c[1] == '_';
    if (!before && !after) return true;
  }
  return false;
}

static void emit_node_fn(Emit *e, const Node *nd, bool infer, const char *body) {
  P("// %s: %s", nd->name, op_info[infer ? op_info[nd->op].infer : nd->op].name);
  for (int k = 0; k < MAX_IN; k++) {
    if (!nd->in[k]) continue;
    P("%s", k ? ", " : " ");
    shape_text(e->out, nd->in[k]);
  }
  if (nd->shape.rank) {
    P(" -> ");
    shape_text(e->out, nd);
  }
  double f, b;
  node_cost(nd, 1, &f, &b);
  if (f > 0) P("; %.0f FLOPs%s", f, nd->batched || op_info[nd->op].cls != FC_OPTIMIZER ? " per sample" : "");
  P("\nstatic void %s%s(State *s, int n) {\n%s%s}\n\n", nd->name, infer ? "_infer" : "",
    uses_n(body) ? "" : "  (void)n;\n", body);
}

static void emit_nodes(Emit *e) {
  Graph *g = e->g;
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    char *body = node_body(e, nd, false);
    if (body) emit_node_fn(e, nd, false, body);
    if (i < g->stage_fwd_end && has_infer_variant(nd)) {
      char *ib = node_body(e, nd, true);
      if (ib) emit_node_fn(e, nd, true, ib);
    }
  }
}

static bool runs(Emit *e, const Node *nd) {
  char *body = node_body(e, nd, false);
  return body != NULL;
}

static void emit_passes(Emit *e) {
  Graph *g = e->g;
  P("static void nnc_forward_train(State *s, int n) {\n  s->reg = 0;\n");
  for (int i = 0; i < g->stage_fwd_end; i++)
    if (runs(e, g->nodes[i])) P("  %s(s, n);\n", g->nodes[i]->name);
  P("}\n\n");
  P("// Inference: dropout off, moving statistics; the loss only when labels are given.\n");
  P("static void nnc_forward_infer(State *s, int n, int with_loss) {\n  s->reg = 0;\n");
  for (int i = 0; i < g->stage_fwd_end; i++) {
    const Node *nd = g->nodes[i];
    if (!runs(e, nd)) continue;
    bool loss = op_info[nd->op].cls == FC_LOSS;
    P("  %s%s%s(s, n);\n", loss ? "if (with_loss) " : "", nd->name, has_infer_variant(nd) ? "_infer" : "");
  }
  P("}\n\n");
  if (!g->loss) return;
  P("static void nnc_backward(State *s, int n) {\n");
  for (int i = g->stage_fwd_end; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (op_info[nd->op].cls != FC_OPTIMIZER && runs(e, nd)) P("  %s(s, n);\n", nd->name);
  }
  P("}\n\n");
  P("static void nnc_update(State *s) {\n");
  for (int i = g->stage_fwd_end; i < g->n; i++)
    if (op_info[g->nodes[i]->op].cls == FC_OPTIMIZER) P("  %s(s, 0);\n", g->nodes[i]->name);
  P("}\n\n");
}

static void emit_init_param(Emit *e, const Node *w) {
  // Keras's fans: rank 1 → both the size; Dense [in, out]; Conv [kh, kw, in, out].
  const Shape *s = &w->shape;
  double fan_in = s->dim[0], fan_out = s->dim[0];
  if (s->rank >= 2) {
    double receptive = 1;
    for (int i = 0; i + 2 < s->rank; i++) receptive *= s->dim[i];
    fan_in = s->dim[s->rank - 2] * receptive;
    fan_out = s->dim[s->rank - 1] * receptive;
  }
  const double trunc = 0.87962566103423978;   // stddev of N(0,1) truncated at ±2
  long long k = node_elems(w);
  const char *name = buf(w);
  switch (w->init) {
  case INIT_GLOROT_UNIFORM: P("  nnc_init_uniform(%s, %lld, %s, rng);   // glorot_uniform\n", name, k, cnum(sqrt(6 / (fan_in + fan_out)))); break;
  case INIT_HE_UNIFORM: P("  nnc_init_uniform(%s, %lld, %s, rng);   // he_uniform\n", name, k, cnum(sqrt(6 / fan_in))); break;
  case INIT_LECUN_UNIFORM: P("  nnc_init_uniform(%s, %lld, %s, rng);   // lecun_uniform\n", name, k, cnum(sqrt(3 / fan_in))); break;
  case INIT_RANDOM_UNIFORM: P("  nnc_init_uniform(%s, %lld, 0.05, rng);   // random_uniform\n", name, k); break;
  case INIT_GLOROT_NORMAL: P("  nnc_init_normal(%s, %lld, %s, 1, rng);   // glorot_normal\n", name, k, cnum(sqrt(2 / (fan_in + fan_out)) / trunc)); break;
  case INIT_HE_NORMAL: P("  nnc_init_normal(%s, %lld, %s, 1, rng);   // he_normal\n", name, k, cnum(sqrt(2 / fan_in) / trunc)); break;
  case INIT_LECUN_NORMAL: P("  nnc_init_normal(%s, %lld, %s, 1, rng);   // lecun_normal\n", name, k, cnum(sqrt(1 / fan_in) / trunc)); break;
  case INIT_RANDOM_NORMAL: P("  nnc_init_normal(%s, %lld, 0.05, 0, rng);   // random_normal\n", name, k); break;
  case INIT_ZEROS: P("  nnc_init_fill(%s, %lld, 0);\n", name, k); break;
  case INIT_ONES: P("  nnc_init_fill(%s, %lld, 1);\n", name, k); break;
  }
}

static const char *const model_prelude =
    "static inline void nnc_init_uniform(nn_real *w, int64_t size, double limit, nn_rng *rng) {\n"
    "  for (int64_t i = 0; i < size; i++) w[i] = (nn_real)((2 * nn_rng_uniform(rng) - 1) * limit);\n"
    "}\n\n"
    "// Keras's truncated normal redraws samples beyond two standard deviations.\n"
    "static inline void nnc_init_normal(nn_real *w, int64_t size, double stddev, int truncated, nn_rng *rng) {\n"
    "  for (int64_t i = 0; i < size; i++) {\n"
    "    double z;\n"
    "    do z = nn_rng_normal(rng); while (truncated && fabs(z) > 2);\n"
    "    w[i] = (nn_real)(z * stddev);\n"
    "  }\n"
    "}\n\n"
    "static inline void nnc_init_fill(nn_real *w, int64_t size, double v) {\n"
    "  for (int64_t i = 0; i < size; i++) w[i] = (nn_real)v;\n"
    "}\n\n"
    "// nn_param.value is float*: a double build (gradient checks) has no such view.\n"
    "static inline float *nnc_as_float(nn_real *p) {\n"
    "  return sizeof(nn_real) == sizeof(float) ? (float *)(void *)p : NULL;\n"
    "}\n\n"
    "static void nnc_reset_optimizer(nn_model *m) {\n"
    "  State *s = m->state;\n"
    "  memset(s->arena + SLOTS_BEGIN, 0, SLOTS_ELEMS * sizeof(nn_real));\n"
    "  s->step = 0;\n"
    "}\n\n";

static void emit_model(Emit *e) {
  const Program *p = e->p;
  Graph *g = e->g;
  fputs(model_prelude, e->out);
  P("static void nnc_init(nn_model *m, nn_rng *rng) {\n  State *s = m->state;\n");
  for (int i = 0; i < g->n_params; i++) emit_init_param(e, g->params[i]);
  P("  nnc_reset_optimizer(m);\n}\n\n");

  // Batch in, outputs out: the runtime speaks float, the kernels nn_real.
  long long in_w = node_elems(g->x), out_w = node_elems(g->output), y_w = g->y ? node_elems(g->y) : 0;
  P("static void nnc_load_batch(State *s, const float *x, const float *y, int n) {\n");
  P("  for (int64_t i = 0; i < (int64_t)n * %lld; i++) %s[i] = (nn_real)x[i];\n", in_w, buf(g->x));
  if (g->y) P("  if (y)\n    for (int64_t i = 0; i < (int64_t)n * %lld; i++) %s[i] = (nn_real)y[i];\n", y_w, buf(g->y));
  P("}\n\n");
  P("static void nnc_store_output(State *s, int n, float *out) {\n");
  P("  for (int64_t i = 0; i < (int64_t)n * %lld; i++) out[i] = (float)%s[i];\n}\n\n", out_w, buf(g->output));
  if (g->loss) {
    // Kernels return the batch's summed loss over rows of the prediction.
    long long rows = shape_rows(&g->loss->in[0]->shape);
    P("// The batch's mean loss plus the regularization terms, as Keras reports it.\n"
      "static double nnc_batch_loss(State *s, int n) {\n  return %s;\n}\n\n",
      rows == 1 ? "s->loss / n + s->reg" : xprintf("s->loss / ((double)n * %lld) + s->reg", rows));
    P("static float nnc_train_step(nn_model *m, const float *x, const float *y, int n, nn_rng *rng,\n"
      "                            float *out) {\n  State *s = m->state;\n  nnc_load_batch(s, x, y, n);\n"
      "  s->seed = nn_rng_next(rng);\n  nnc_forward_train(s, n);\n  if (out) nnc_store_output(s, n, out);\n"
      "  nnc_backward(s, n);\n  s->step++;\n  nnc_update(s);\n  return (float)nnc_batch_loss(s, n);\n}\n\n");
  }
  P("static float nnc_infer(nn_model *m, const float *x, const float *y, int n, float *out) {\n"
    "  State *s = m->state;\n  nnc_load_batch(s, x, %s, n);\n  nnc_forward_infer(s, n, %s);\n"
    "  if (out) nnc_store_output(s, n, out);\n  return %s;\n}\n\n",
    g->y ? "y" : "NULL", g->loss ? "y != NULL" : "0", g->loss ? "y ? (float)nnc_batch_loss(s, n) : 0" : "0");

  // Creation: the params table (Keras names and layouts), the arena, the buffers.
  P("static nn_param nnc_params[%d] = {\n", g->n_params ? g->n_params : 1);
  for (int i = 0; i < g->n_params; i++) {
    const Node *w = g->params[i];
    P("  {");
    emit_c_string(e->out, w->keras_name);
    P(", %d, {", w->shape.rank);
    for (int d = 0; d < w->shape.rank; d++) P("%s%lld", d ? ", " : "", (long long)w->shape.dim[d]);
    P("}, %lld, NULL, %s},\n", (long long)node_elems(w), w->trainable ? "true" : "false");
  }
  P("};\n\n");
  P("static nn_model *nnc_model_create(int max_batch) {\n");
  P("  static nn_model model;\n  static State state;\n  State *s = &state;\n  nn_model *m = &model;\n");
  P("  s->maxbatch = max_batch;\n  size_t work = 0;\n");
  // The convolutions share one workspace, sized for the largest (each shape once).
  const char **seen = xalloc(g->n * sizeof *seen);
  int n_seen = 0;
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (nd->op != OP_conv2d && nd->op != OP_conv2d_bwd_data && nd->op != OP_conv2d_bwd_filter) continue;
    const int64_t *a = nd->attr;
    const char *args = xprintf("max_batch, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld",
                               (long long)a[0], (long long)a[1], (long long)a[2], (long long)a[3], (long long)a[4],
                               (long long)a[5], (long long)a[6], (long long)a[7], (long long)a[10], (long long)a[11]);
    bool dup = false;
    for (int k = 0; k < n_seen; k++) dup |= strcmp(seen[k], args) == 0;
    if (dup) continue;
    seen[n_seen++] = args;
    P("  if (nnk_conv2d_work_elems(%s) > work) work = nnk_conv2d_work_elems(%s);\n", args, args);
  }
  P("  size_t elems = FIXED_ELEMS + (size_t)PER_SAMPLE_ELEMS * max_batch + work;\n"
    "  size_t bytes = (elems * sizeof(nn_real) + 63) / 64 * 64;\n"
    "  s->arena = aligned_alloc(64, bytes ? bytes : 64);\n"
    "  if (!s->arena) {\n    fprintf(stderr, \"error: out of memory for the model (%%zu bytes)\\n\", bytes);\n"
    "    return NULL;\n  }\n  memset(s->arena, 0, bytes);\n"
    "  nn_real *fixed = s->arena, *batch = s->arena + FIXED_ELEMS;\n"
    "  s->work = batch + (size_t)PER_SAMPLE_ELEMS * max_batch;\n");
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (e->off[i] >= 0)
      P(e->in_batch[i] ? "  %s = batch + (size_t)%lld * max_batch;\n" : "  %s = fixed + %lld;\n", buf(nd),
        (long long)e->off[i]);
    else if (nd->alias && nd->op == OP_aux_view)
      P("  %s = %s + %lld;\n", buf(nd), aux(nd->alias), (long long)nd->alias_offset);
    else if (nd->alias)
      P("  %s = %s;\n", buf(nd), buf(nd->alias));
    if (e->aux_off[i] >= 0)
      P(e->aux_in_batch[i] ? "  %s = batch + (size_t)%lld * max_batch;\n" : "  %s = fixed + %lld;\n", aux(nd),
        (long long)e->aux_off[i]);
  }
  for (int i = 0; i < g->n_params; i++) P("  nnc_params[%d].value = nnc_as_float(%s);\n", i, buf(g->params[i]));
  P("  m->name = \"model\";\n  m->n_params = %d;\n  m->params = nnc_params;\n", g->n_params);
  P("  m->in_width = %lld;\n  m->out_width = %lld;\n  m->label_width = %lld;\n  m->max_batch = max_batch;\n", in_w,
    out_w, y_w);
  P("  m->loss = %s;\n", (const char *[]){"NN_LOSS_MSE", "NN_LOSS_MAE", "NN_LOSS_BCE", "NN_LOSS_CCE",
                                          "NN_LOSS_SPARSE_CCE"}[p->loss]);
  P("  m->n_metrics = %d;\n", p->n_metrics);
  for (int i = 0; i < p->n_metrics; i++)
    P("  m->metrics[%d] = %s;\n", i, (const char *[]){"NN_METRIC_ACCURACY", "NN_METRIC_MAE", "NN_METRIC_MSE"}[p->metrics[i]]);
  P("  m->init = nnc_init;\n  m->train_step = %s;\n  m->infer = nnc_infer;\n", g->loss ? "nnc_train_step" : "NULL");
  P("  m->reset_optimizer = nnc_reset_optimizer;\n  m->state = s;\n  return m;\n}\n\n");
}

int emit_c(const Program *p, Graph *g, const char *dir) {
  if (p->compiled && !g->differentiated) internal_error("emit_c", "graph not differentiated");
  char *path = xprintf("%s/model.c", dir);
  FILE *out = fopen(path, "w");
  if (!out) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  Emit e = {.out = out, .p = p, .g = g};
  plan_memory(&e);
  emit_header(&e);
  emit_state(&e);
  emit_nodes(&e);
  emit_passes(&e);
  emit_model(&e);
  emit_main(out, p, g);  // emit_main.c
  if (fclose(out) != 0) {
    fprintf(stderr, "nnc: error: cannot write %s\n", path);
    return -1;
  }
  // A README listing the kernels each node calls, for readers of the emitted code.
  path = xprintf("%s/README", dir);
  out = fopen(path, "w");
  if (!out) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  fprintf(out, "model.c: generated by nnc. Build: cc -O2 -fopenmp -I<nnc>/include -I<nnc>/kernels model.c "
               "libnnrt.a -lz -lm\n\nnode\top\tclass\tFLOPs/sample\n");
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    double f, b;
    node_cost(nd, 1, &f, &b);
    fprintf(out, "%s\t%s\t%s\t%.0f\n", nd->name, op_info[nd->op].name, fusion_class_name(op_info[nd->op].cls), f);
  }
  return fclose(out) == 0 ? 0 : -1;
}
