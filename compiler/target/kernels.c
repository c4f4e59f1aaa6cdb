// kernels.c — the op emitters (ops.def's emit column), written once for every target.
//
// Each says which kernel of the library a node calls (kernels/nn_kernels.h for C,
// kernels/nn_kernels.cl for OpenCL: the same names and arguments) with literal shapes
// and the node's buffers; the dialect prints it. The batch count n is the only
// run-time value in the arguments.
#include "target.h"

#include <stdlib.h>
#include <string.h>

#define CALL(kernel, traits, ...) e->d->call(e, nd, R_NONE, kernel, xprintf(__VA_ARGS__), traits)

static const char *buf(Emit *e, const Node *nd) { return e->d->buf(e, nd); }
static const char *aux(Emit *e, const Node *nd) { return e->d->aux(e, nd); }
static const char *opt_buf(Emit *e, const Node *nd) { return nd ? buf(e, nd) : e->d->null_buf; }

// Elements of a node for the current batch: "(int64_t)n * 784", or "784".
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

// H W C KH KW F SH SW PT PL OH OW (pooling: no F), as the kernels take them.
static const char *window_args(const Node *nd, bool pool) {
  const Window *a = &nd->win;
  if (pool)
    return xprintf("%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld", (long long)a->h, (long long)a->w,
                   (long long)a->c, (long long)a->kh, (long long)a->kw, (long long)a->sh, (long long)a->sw,
                   (long long)a->pt, (long long)a->pl, (long long)a->oh, (long long)a->ow);
  return xprintf("%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld", (long long)a->h,
                 (long long)a->w, (long long)a->c, (long long)a->kh, (long long)a->kw, (long long)a->f,
                 (long long)a->sh, (long long)a->sw, (long long)a->pt, (long long)a->pl, (long long)a->oh,
                 (long long)a->ow);
}

static void emit_none(Emit *e, const Node *nd, bool infer) {}
static void emit_input(Emit *e, const Node *nd, bool infer) {}     // filled by the batch loader
static void emit_loss_grad(Emit *e, const Node *nd, bool infer) {} // filled by the loss kernel

// A fused epilogue's activation as the kernel libraries name it (NN_EPI_*).
static const char *epi_act(const Node *nd) {
  switch (nd->fused_act) {
  case OP_relu: case OP_relu_bwd: return "NN_EPI_RELU";
  case OP_sigmoid: case OP_sigmoid_bwd: return "NN_EPI_SIGMOID";
  case OP_tanh: case OP_tanh_bwd: return "NN_EPI_TANH";
  default: return "NN_EPI_NONE";
  }
}

static bool has_epilogue(const Node *nd) { return nd->in[2] || nd->fused_act; }

static void emit_matmul(Emit *e, const Node *nd, bool infer) {
  const Node *a = nd->in[0], *b = nd->in[1];
  if (nd->layout == LAYOUT_PACKED && nd->in[3]) {   // layout.c: op(B) packed by in[4]; fuse_grad.c
    CALL("gemm_packed_act_grad", 0, "%s, %lld, %lld, %s, %s, %s, %s, %s", rows_expr(a), last(nd), last(a),
         buf(e, a), buf(e, nd->in[4]), buf(e, nd->in[3]), epi_act(nd), buf(e, nd));
    return;
  }
  if (nd->layout == LAYOUT_PACKED) {
    CALL("gemm_packed", 0, "%s, %lld, %lld, %s, %s, %s, %s, %s", rows_expr(a), last(nd), last(a), buf(e, a),
         buf(e, nd->in[4]), opt_buf(e, nd->in[2]), epi_act(nd), buf(e, nd));
    return;
  }
  if (nd->in[3]) {                         // fuse_grad.c: times the activation's derivative at in[3]
    CALL("gemm_act_grad", 0, "0, %d, %s, %lld, %lld, %s, %s,\n      %s, %s, %s", nd->tb, rows_expr(a), last(nd),
         last(a), buf(e, a), buf(e, b), buf(e, nd->in[3]), epi_act(nd), buf(e, nd));
    return;
  }
  if (has_epilogue(nd)) {                  // fuse.c: bias and activation in the epilogue
    CALL("gemm_bias_act", 0, "0, %d, %s, %lld, %lld, %s, %s,\n      %s, %s, %s", nd->tb, rows_expr(a), last(nd),
         last(a), buf(e, a), buf(e, b), opt_buf(e, nd->in[2]), epi_act(nd), buf(e, nd));
    return;
  }
  if (nd->grad)                            // fuse_bias_grad.c: xᵀ·dy, and dy's column sums
    CALL("gemm_tn_bias_grad", 0, "%lld, %lld, %s, %s, %s, %s, %s", last(a), last(b), rows_expr(a), buf(e, a),
         buf(e, b), buf(e, nd), buf(e, nd->grad));
  else if (!nd->ta)
    CALL("gemm", 0, "0, %d, %s, %lld, %lld, %s, %s, %s, 0", nd->tb, rows_expr(a), last(nd), last(a), buf(e, a),
         buf(e, b), buf(e, nd));
  else
    CALL("gemm", 0, "1, 0, %lld, %lld, %s, %s, %s, %s, 0", last(a), last(b), rows_expr(a), buf(e, a), buf(e, b),
         buf(e, nd));
}

static void emit_conv2d(Emit *e, const Node *nd, bool infer) {
  if (nd->layout == LAYOUT_COLS && !infer) {   // layout.c: im2col's matrix kept in aux for the filter gradient
    CALL("conv2d_fwd_cols_bias_act", 0, "n, %s,\n      %s, %s, %s, %s, %s, %s", window_args(nd, false),
         buf(e, nd->in[0]), buf(e, nd->in[1]), opt_buf(e, nd->in[2]), epi_act(nd), buf(e, nd), aux(e, nd));
    return;
  }
  if (nd->layout == LAYOUT_PACKED) {
    CALL("conv2d_fwd_packed", 0, "n, %s,\n      %s, %s, %s, %s, %s", window_args(nd, false), buf(e, nd->in[0]),
         buf(e, nd->in[3]), opt_buf(e, nd->in[2]), epi_act(nd), buf(e, nd));
    return;
  }
  if (has_epilogue(nd)) {
    CALL("conv2d_fwd_bias_act", K_WORK, "n, %s,\n      %s, %s, %s, %s, %s", window_args(nd, false), buf(e, nd->in[0]),
         buf(e, nd->in[1]), opt_buf(e, nd->in[2]), epi_act(nd), buf(e, nd));
    return;
  }
  CALL("conv2d_fwd", K_WORK, "n, %s,\n      %s, %s, %s", window_args(nd, false), buf(e, nd->in[0]), buf(e, nd->in[1]),
       buf(e, nd));
}

static void emit_conv2d_bwd_data(Emit *e, const Node *nd, bool infer) {
  if (nd->layout == LAYOUT_PACKED) {       // layout.c: the flipped kernel packed by in[3]
    CALL("conv2d_bwd_data_packed_act", 0, "n, %s,\n      %s, %s, %s, %s, %s", window_args(nd, false),
         buf(e, nd->in[0]), buf(e, nd->in[3]), opt_buf(e, nd->in[2]), epi_act(nd), buf(e, nd));
    return;
  }
  if (nd->in[2]) {                         // fuse_grad.c: through the activation whose output is in[2]
    CALL("conv2d_bwd_data_act", K_WORK, "n, %s,\n      %s, %s, %s, %s, %s", window_args(nd, false),
         buf(e, nd->in[0]), buf(e, nd->in[1]), buf(e, nd->in[2]), epi_act(nd), buf(e, nd));
    return;
  }
  CALL("conv2d_bwd_data", K_WORK, "n, %s,\n      %s, %s, %s", window_args(nd, false), buf(e, nd->in[0]),
       buf(e, nd->in[1]), buf(e, nd));
}

static void emit_conv2d_bwd_filter(Emit *e, const Node *nd, bool infer) {
  if (nd->in[2]) {                         // layout.c: the matrix in[2] kept (LAYOUT_COLS); fuse_bias_grad.c
    const char *cols = aux(e, nd->in[2]);
    if (nd->grad)
      CALL("conv2d_bwd_filter_cols_bias", 0, "n, %s,\n      %s, %s, %s, %s", window_args(nd, false), cols,
           buf(e, nd->in[1]), buf(e, nd), buf(e, nd->grad));
    else
      CALL("conv2d_bwd_filter_cols", 0, "n, %s,\n      %s, %s, %s", window_args(nd, false), cols, buf(e, nd->in[1]),
           buf(e, nd));
    return;
  }
  if (nd->layout == LAYOUT_BLOCKED) {      // layout.c: over blocked copies in the workspace; a
    CALL("conv2d_bwd_filter_blocked", K_WORK, "n, %s,\n      %s, %s, %s", window_args(nd, false),   //   fused bias
         buf(e, nd->in[0]), buf(e, nd->in[1]), buf(e, nd));                                        //   gradient apart
    if (nd->grad)
      CALL("bias_grad", 0, "%s, %lld, %s, %s", rows_expr(nd->in[1]), last(nd->in[1]), buf(e, nd->in[1]),
           buf(e, nd->grad));
    return;
  }
  if (nd->grad) {                          // fuse_bias_grad.c: the bias gradient from the same dy
    CALL("conv2d_bwd_filter_bias", K_WORK, "n, %s,\n      %s, %s, %s, %s", window_args(nd, false),
         buf(e, nd->in[0]), buf(e, nd->in[1]), buf(e, nd), buf(e, nd->grad));
    return;
  }
  CALL("conv2d_bwd_filter", K_WORK, "n, %s,\n      %s, %s, %s", window_args(nd, false), buf(e, nd->in[0]),
       buf(e, nd->in[1]), buf(e, nd));
}

// The max-pool's window after the convolution's: PH PW (its strides too) QH QW.
static const char *pool_args(const Node *nd) {
  const Window *q = &nd->pool;
  return xprintf("%lld, %lld, %lld, %lld", (long long)q->kh, (long long)q->kw, (long long)q->oh, (long long)q->ow);
}

static void emit_conv2d_pool(Emit *e, const Node *nd, bool infer) {
  CALL("conv2d_pool_fwd", 0, "n, %s, %s,\n      %s, %s, %s, %s, %s, %s", window_args(nd, false), pool_args(nd),
       buf(e, nd->in[0]), buf(e, nd->in[1]), opt_buf(e, nd->in[2]), epi_act(nd), buf(e, nd), aux(e, nd));
}

static void emit_conv2d_pool_bwd_filter(Emit *e, const Node *nd, bool infer) {
  const Node *fwd = nd->in[2];
  CALL("conv2d_pool_bwd_filter", 0, "n, %s, %s,\n      %s, %s, %s, %s, %s, %s, %s", window_args(nd, false),
       pool_args(nd), buf(e, nd->in[0]), buf(e, nd->in[1]), buf(e, fwd), aux(e, fwd), epi_act(nd), buf(e, nd),
       nd->aux_shape.rank ? aux(e, nd) : e->d->null_buf);
}

// op(B) of the contraction that reads it, in panels (kernels/nn_kernels.h, "pre-packed weights").
static void emit_pack(Emit *e, const Node *nd, bool infer) {
  const Node *w = nd->in[0];
  const Shape *s = &w->shape;
  if (nd->pack == PACK_CONV_FLIP)
    CALL("pack_conv_flip", 0, "%lld, %lld, %lld, %lld, %s, %s", (long long)s->dim[0], (long long)s->dim[1],
         (long long)s->dim[2], (long long)s->dim[3], buf(e, w), buf(e, nd));
  else if (nd->pack == PACK_BT)
    CALL("pack_b", 0, "1, %lld, %lld, %s, %s", last(w), (long long)shape_rows(s), buf(e, w), buf(e, nd));
  else
    CALL("pack_b", 0, "0, %lld, %lld, %s, %s", (long long)shape_rows(s), last(w), buf(e, w), buf(e, nd));
}

static void emit_bias_add(Emit *e, const Node *nd, bool infer) {
  CALL("bias_add", 0, "%s, %lld, %s, %s", rows_expr(nd), last(nd), buf(e, nd), buf(e, nd->in[1]));
}

static void emit_bias_grad(Emit *e, const Node *nd, bool infer) {
  const Node *dy = nd->in[0];
  CALL("bias_grad", 0, "%s, %lld, %s, %s", rows_expr(dy), last(dy), buf(e, dy), buf(e, nd));
}

static void emit_act(Emit *e, const Node *nd, bool infer) {
  CALL(xprintf("%s_fwd", op_info[nd->op].name), 0, "%s, %s, %s", len_expr(nd), buf(e, nd->in[0]), buf(e, nd));
}

// Parameterized activations: Node.alpha is the kernels' second argument.
static void emit_act_param(Emit *e, const Node *nd, bool infer) {
  CALL(xprintf("%s_fwd", op_info[nd->op].name), 0, "%s, %s, %s, %s", len_expr(nd), cnum(nd->alpha),
       buf(e, nd->in[0]), buf(e, nd));
}

static void emit_act_param_bwd(Emit *e, const Node *nd, bool infer) {
  CALL(op_info[nd->op].name, 0, "%s, %s, %s, %s, %s", len_expr(nd), cnum(nd->alpha), buf(e, nd->in[0]),
       buf(e, nd->in[1]), buf(e, nd));
}

static void emit_softmax(Emit *e, const Node *nd, bool infer) {
  CALL("softmax_fwd", 0, "%s, %lld, %s, %s", rows_expr(nd), last(nd), buf(e, nd->in[0]), buf(e, nd));
}

static void emit_act_bwd(Emit *e, const Node *nd, bool infer) {
  CALL(op_info[nd->op].name, 0, "%s, %s, %s, %s", len_expr(nd), buf(e, nd->in[0]), buf(e, nd->in[1]), buf(e, nd));
}

static void emit_softmax_bwd(Emit *e, const Node *nd, bool infer) {
  CALL("softmax_bwd", 0, "%s, %lld, %s, %s, %s", rows_expr(nd), last(nd), buf(e, nd->in[0]), buf(e, nd->in[1]),
       buf(e, nd));
}

static void emit_dropout(Emit *e, const Node *nd, bool infer) {
  // Each dropout layer mixes its own constant into the step's seed.
  CALL("dropout_fwd", 0, "%s, %s, %s ^ 0x%016llxull,\n      %s, %s, %s", len_expr(nd), cnum(nd->rate), e->d->seed,
       (unsigned long long)(0x9E3779B97F4A7C15ull * (uint64_t)(nd->salt + 1)), buf(e, nd->in[0]), buf(e, nd),
       aux(e, nd));
}

static void emit_dropout_bwd(Emit *e, const Node *nd, bool infer) {
  CALL("dropout_bwd", 0, "%s, %s, %s, %s", len_expr(nd), aux(e, nd->in[0]), buf(e, nd->in[1]), buf(e, nd));
}

static void emit_copy(Emit *e, const Node *nd, bool infer) {
  CALL("copy", 0, "%s, %s, %s", len_expr(nd), buf(e, nd->in[0]), buf(e, nd));
}

static void emit_add(Emit *e, const Node *nd, bool infer) {
  CALL("copy", 0, "%s, %s, %s", len_expr(nd), buf(e, nd->in[0]), buf(e, nd));
  CALL("add_inplace", 0, "%s, %s, %s", len_expr(nd), buf(e, nd), buf(e, nd->in[1]));
}

static void emit_pool2d(Emit *e, const Node *nd, bool infer) {
  CALL(xprintf("%s_fwd", op_info[nd->op].name), 0, "n, %s,\n      %s, %s", window_args(nd, true),
       buf(e, nd->in[0]), buf(e, nd));
}

static void emit_pool2d_bwd(Emit *e, const Node *nd, bool infer) {
  if (nd->op == OP_maxpool2d_bwd && nd->fused_act)   // fuse_grad.c: through the activation x is the output of
    CALL("maxpool2d_bwd_act", 0, "n, %s,\n      %s, %s, %s, %s", window_args(nd, true), buf(e, nd->in[0]),
         buf(e, nd->in[2]), epi_act(nd), buf(e, nd));
  else if (nd->op == OP_maxpool2d_bwd)
    CALL("maxpool2d_bwd", 0, "n, %s,\n      %s, %s, %s, %s", window_args(nd, true), buf(e, nd->in[0]),
         buf(e, nd->in[1]), buf(e, nd->in[2]), buf(e, nd));
  else
    CALL("avgpool2d_bwd", 0, "n, %s,\n      %s, %s", window_args(nd, true), buf(e, nd->in[1]), buf(e, nd));
}

static void emit_global_pool(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0];
  CALL("global_avgpool2d_fwd", 0, "n, %lld, %lld, %s, %s", (long long)shape_rows(&x->shape), last(x), buf(e, x),
       buf(e, nd));
}

static void emit_global_pool_bwd(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0];
  CALL("global_avgpool2d_bwd", 0, "n, %lld, %lld, %s, %s", (long long)shape_rows(&x->shape), last(x),
       buf(e, nd->in[1]), buf(e, nd));
}

static void emit_batchnorm(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0];
  long long c = last(nd);
  if (infer)
    CALL("batchnorm_fwd_infer", 0, "%s, %lld, %s, %s, %s, %s, %s, %s, %s", rows_expr(x), c, cnum(nd->eps),
         buf(e, x), opt_buf(e, nd->in[1]), opt_buf(e, nd->in[2]), buf(e, nd->in[3]), buf(e, nd->in[4]), buf(e, nd));
  else
    CALL("batchnorm_fwd_train", 0, "%s, %lld, %s, %s, %s, %s, %s,\n      %s, %s, %s + %lld, %s, %s", rows_expr(x), c,
         cnum(nd->eps), cnum(nd->momentum), buf(e, x), opt_buf(e, nd->in[1]), opt_buf(e, nd->in[2]), buf(e, nd),
         aux(e, nd), aux(e, nd), c, buf(e, nd->in[3]), buf(e, nd->in[4]));
}

static void emit_batchnorm_bwd(Emit *e, const Node *nd, bool infer) {
  const Node *x = nd->in[0], *fwd = nd->in[3];
  long long c = last(nd);
  CALL("batchnorm_bwd", 0, "%s, %lld, %s, %s, %s, %s, %s + %lld,\n      %s, %s, %s + %lld", rows_expr(x), c,
       buf(e, x), buf(e, nd->in[1]), opt_buf(e, nd->in[2]), aux(e, fwd), aux(e, fwd), c, buf(e, nd), aux(e, nd),
       aux(e, nd), c);
}

bool is_fused_loss(OpKind op) {
  return op == OP_sparse_softmax_xent || op == OP_softmax_xent || op == OP_sigmoid_bce;
}

// Losses return the batch's summed loss; in training they also write its gradient.
static void emit_loss(Emit *e, const Node *nd, bool infer) {
  const Node *pred = nd->in[0], *y = nd->in[1];
  const char *grad = !infer && nd->grad ? buf(e, nd->grad) : e->d->null_buf;
  const char *kernel = xprintf("loss_%s", op_info[nd->op].name);
  if (is_fused_loss(nd->op))
    e->d->call(e, nd, R_LOSS, kernel,
               xprintf("%s, %lld, %s, %s, %s, %s", rows_expr(pred), last(pred), buf(e, pred), buf(e, y), buf(e, nd),
                       grad), 0);
  else
    e->d->call(e, nd, R_LOSS, kernel,
               xprintf("%s, %lld, %s, %s, %s", rows_expr(pred), last(pred), buf(e, pred), buf(e, y), grad), 0);
}

static void emit_l1l2(Emit *e, const Node *nd, bool infer) {
  const Node *w = nd->in[0];
  e->d->call(e, nd, R_REG, "l1l2_loss",
             xprintf("%lld, %s, %s, %s", (long long)node_elems(w), cnum(nd->l1), cnum(nd->l2), buf(e, w)), 0);
}

static void emit_l1l2_grad(Emit *e, const Node *nd, bool infer) {
  e->d->zero(e, nd);
  CALL("l1l2_grad", 0, "%lld, %s, %s, %s, %s", (long long)node_elems(nd), cnum(nd->l1), cnum(nd->l2),
       buf(e, nd->in[0]), buf(e, nd));
}

// Settings come from the node (autodiff copied them from compile()).
static void emit_update(Emit *e, const Node *nd, bool infer) {
  const Optimizer *o = &nd->opt;
  const Node *w = nd->in[0], *g = nd->in[1];
  long long k = node_elems(w);
  switch (nd->op) {
  case OP_sgd_update:
    CALL("sgd_update", 0, "%lld, %s, %s, %d, %s, %s, %s", k, cnum(o->lr), cnum(o->momentum), o->nesterov, buf(e, w),
         buf(e, g), aux(e, nd));
    break;
  case OP_adam_update:
    CALL("adam_update", 0, "%lld, %s, %s, %s, %s, %s,\n      %s, %s, %s, %s + %lld", k, cnum(o->lr),
         cnum(o->beta1), cnum(o->beta2), cnum(o->epsilon), e->d->step, buf(e, w), buf(e, g), aux(e, nd), aux(e, nd), k);
    break;
  case OP_rmsprop_update:
    CALL("rmsprop_update", 0, "%lld, %s, %s, %s, %s, %d,\n      %s, %s, %s, %s + %lld, %s + %lld", k, cnum(o->lr),
         cnum(o->rho), cnum(o->momentum), cnum(o->epsilon), o->centered, buf(e, w), buf(e, g), aux(e, nd),
         aux(e, nd), k, aux(e, nd), 2 * k);
    break;
  default:
    internal_error("emit", "%s is not an optimizer update", op_info[nd->op].name);
  }
}

// The element function of a chainable op (NN_EW_* in both kernel libraries).
static const char *ew_code(OpKind op) {
  switch (op) {
  case OP_relu: return "NN_EW_RELU";
  case OP_sigmoid: return "NN_EW_SIGMOID";
  case OP_tanh: return "NN_EW_TANH";
  case OP_gelu: return "NN_EW_GELU";
  case OP_silu: return "NN_EW_SILU";
  case OP_elu: return "NN_EW_ELU";
  case OP_selu: return "NN_EW_SELU";
  case OP_leaky_relu: return "NN_EW_LEAKY_RELU";
  case OP_softplus: return "NN_EW_SOFTPLUS";
  case OP_hard_sigmoid: return "NN_EW_HARD_SIGMOID";
  case OP_relu_bwd: return "NN_EW_RELU_BWD";
  case OP_sigmoid_bwd: return "NN_EW_SIGMOID_BWD";
  case OP_tanh_bwd: return "NN_EW_TANH_BWD";
  case OP_gelu_bwd: return "NN_EW_GELU_BWD";
  case OP_silu_bwd: return "NN_EW_SILU_BWD";
  case OP_elu_bwd: return "NN_EW_ELU_BWD";
  case OP_selu_bwd: return "NN_EW_SELU_BWD";
  case OP_leaky_relu_bwd: return "NN_EW_LEAKY_RELU_BWD";
  case OP_softplus_bwd: return "NN_EW_SOFTPLUS_BWD";
  case OP_hard_sigmoid_bwd: return "NN_EW_HARD_SIGMOID_BWD";
  case OP_dropout_bwd: return "NN_EW_DROPOUT_BWD";
  case OP_add: return "NN_EW_ADD";
  default: internal_error("emit", "%s cannot be in a pointwise chain", op_info[op].name);
  }
}

// One operand of a chain's op: the step before's value (the null buffer), dropout's mask
// (the aux buffer of the dropout node its gradient reads) or a graph node's buffer.
static const char *ew_operand(Emit *e, const Node *op, int k, const Node *before) {
  const Node *x = op->in[k];
  if (!x || x == before) return e->d->null_buf;
  if (op->op == OP_dropout_bwd && k == 0) return aux(e, x);
  return buf(e, x);
}

// The chain's operand tables: first inputs, second inputs.
static const char *ew_table(int t) {
  static const char *const names[] = {"x", "dy"};
  return names[t];
}

// A dialect whose kernels hold loops (OpenCL): the chain as straight-line code, one
// element function call per op on element i, the value before in v (a table walked per
// element is slower there than the separate kernels).
static void emit_ewise_loop(Emit *e, const Node *nd) {
  fprintf(e->out, "  %s {\n    nn_real v = 0;\n", xprintf(e->d->for_items, len_expr(nd)));
  for (int k = 0; k < nd->n_chain; k++) {
    const Node *op = nd->chain[k], *before = k ? nd->chain[k - 1] : NULL;
    const char *arg[2];
    for (int t = 0; t < 2; t++) {
      const char *b = ew_operand(e, op, t, before);
      arg[t] = !op->in[t] ? "0" : op->in[t] == before ? "v" : xprintf("%s[i]", b);
    }
    fprintf(e->out, "    v = %s%s_(%s, %s, %s);  // %s\n", e->d->ew_inline, op_info[op->op].name, arg[0], arg[1],
            cnum(op->alpha), op->name);
  }
  fprintf(e->out, "    %s[i] = v;\n  }\n", buf(e, nd));
}

// fuse_elementwise.c: the chain as a table, one row per op in order (op, parameter, its
// two operands); the library runs it in one loop. A comment names the graph nodes.
static void emit_ewise_chain(Emit *e, const Node *nd, bool infer) {
  int n = nd->n_chain;
  const char *sp = e->d->ptr_space;
  fprintf(e->out, "  // One loop over ");
  emit_shape_text(e->out, nd);
  fprintf(e->out, ":");
  for (int k = 0; k < n; k++) fprintf(e->out, "%s %s (%s)", k ? " ->" : "", nd->chain[k]->name, op_info[nd->chain[k]->op].name);
  fprintf(e->out, "\n");
  if (e->d->ew_inline) {
    emit_ewise_loop(e, nd);
    return;
  }
  fprintf(e->out, "  const int op[%d] = ", n);
  for (int k = 0; k < n; k++) fprintf(e->out, k ? ", %s" : "{%s", ew_code(nd->chain[k]->op));
  fprintf(e->out, "};\n  const nn_real alpha[%d] = ", n);
  for (int k = 0; k < n; k++) fprintf(e->out, k ? ", %s" : "{%s", cnum(nd->chain[k]->alpha));
  for (int t = 0; t < 2; t++) {
    fprintf(e->out, "};\n  const %snn_real *const %s[%d] = ", sp, ew_table(t), n);
    for (int k = 0; k < n; k++)
      fprintf(e->out, k ? ", %s" : "{%s", ew_operand(e, nd->chain[k], t, k ? nd->chain[k - 1] : NULL));
  }
  fprintf(e->out, "};\n");
  CALL("ewise_chain", 0, "%s, %d, op, alpha, x, dy, %s", len_expr(nd), n, buf(e, nd));
}

// The grouped update's tables: the weights, their gradients, then the optimizer's slots
// by their Keras names.
static const char *const *update_tables(OpKind op) {
  static const char *const sgd[] = {"w", "g", "momentum"}, *const adam[] = {"w", "g", "m", "v"},
                           *const rmsprop[] = {"w", "g", "velocity", "momentum", "average_grad"};
  return op == OP_sgd_update ? sgd : op == OP_adam_update ? adam : rmsprop;
}

// fuse_updates.c: one kernel for every update of the step. The weights, gradients and
// slots are tables (one row per weight, in graph order) the grouped kernel walks in one
// parallel region (C) or one launch (OpenCL); the settings are the members' (all alike).
static void emit_update_all(Emit *e, const Node *nd, bool infer) {
  int n = nd->n_members;
  const Node *u0 = nd->members[0];
  const Optimizer *o = &u0->opt;
  const char *sp = e->d->ptr_space;
  const char *const *tables = update_tables(u0->op);
  int n_tables = 2 + u0->slots;
  fprintf(e->out, "  // One row per weight: value, gradient, %s slots (nnk_%s_all).\n", optimizer_name(o->kind),
          op_info[u0->op].name);
  for (int t = 0; t < n_tables; t++) {
    fprintf(e->out, "  %s%snn_real *const %s[%d] = {\n", t == 1 ? "const " : "", sp, tables[t], n);
    for (int k = 0; k < n; k++) {
      const Node *u = nd->members[k];
      long long size = node_elems(u->in[0]);
      const char *v = t == 0 ? buf(e, u->in[0]) : t == 1 ? buf(e, u->in[1])
                    : t == 2 ? aux(e, u) : xprintf("%s + %lld", aux(e, u), (t - 2) * size);
      fprintf(e->out, "      %s,%s%s\n", v, t == 0 ? "  // " : "", t == 0 ? u->in[0]->keras_name : "");
    }
    fprintf(e->out, "  };\n");
  }
  fprintf(e->out, "  const int64_t size[%d] = ", n);
  for (int k = 0; k < n; k++) fprintf(e->out, k ? ", %lld" : "{%lld", (long long)node_elems(nd->members[k]->in[0]));
  fprintf(e->out, "};\n");
  switch (u0->op) {
  case OP_sgd_update:
    CALL("sgd_update_all", 0, "%d, w, g, momentum, size, %s, %s, %d", n, cnum(o->lr), cnum(o->momentum), o->nesterov);
    break;
  case OP_adam_update:
    CALL("adam_update_all", 0, "%d, w, g, m, v, size, %s, %s, %s, %s, %s", n, cnum(o->lr), cnum(o->beta1),
         cnum(o->beta2), cnum(o->epsilon), e->d->step);
    break;
  case OP_rmsprop_update:
    CALL("rmsprop_update_all", 0, "%d, w, g, velocity, momentum, average_grad, size, %s, %s, %s, %s, %d", n, cnum(o->lr), cnum(o->rho),
         cnum(o->momentum), cnum(o->epsilon), o->centered);
    break;
  default:
    internal_error("emit", "%s is not an optimizer update", op_info[u0->op].name);
  }
}

#define OP(name, nin, opt, cls, shape, grad, bwd, cost, emit, inf) emit,
static void (*const emit_rule[OP_COUNT])(Emit *, const Node *, bool) = {
#include "ops.def"
};
#undef OP

void emit_node_calls(Emit *e, const Node *nd, bool infer) {
  emit_rule[infer ? op_info[nd->op].infer : nd->op](e, nd, infer);
}

char *node_calls_text(Emit *e, const Node *nd, bool infer) {
  char *text = NULL;
  size_t len = 0;
  FILE *saved = e->out;
  e->out = open_memstream(&text, &len);
  if (!e->out) internal_error("emit", "open_memstream failed");
  emit_node_calls(e, nd, infer);
  fclose(e->out);
  e->out = saved;
  char *copy = xstrdup(text);
  free(text);
  return copy;
}

bool node_has_infer_variant(const Node *nd) {
  return op_info[nd->op].infer != nd->op || (op_info[nd->op].cls == FC_LOSS && nd->op != OP_l1l2) ||
         nd->layout == LAYOUT_COLS;   // inference keeps no matrix
}

int list_kernels(Emit *e, KernelRef **out) {
  const Plan *pl = e->plan;
  KernelRef *ks = xalloc((2 * pl->n_fwd + pl->n_bwd + pl->n_upd + 1) * sizeof *ks);
  int k = 0;
  for (int i = 0; i < pl->n_fwd; i++) {
    ks[k++] = (KernelRef){pl->fwd[i], false};
    if (node_has_infer_variant(pl->fwd[i])) ks[k++] = (KernelRef){pl->fwd[i], true};
  }
  for (int i = 0; i < pl->n_bwd; i++)
    if (runs_in_train_step(e->g, pl->bwd[i])) ks[k++] = (KernelRef){pl->bwd[i], false};
  for (int i = 0; i < pl->n_upd; i++)
    if (runs_in_train_step(e->g, pl->upd[i])) ks[k++] = (KernelRef){pl->upd[i], false};
  if (e->g->update_all) ks[k++] = (KernelRef){e->g->update_all, false};
  *out = ks;
  return k;
}

void emit_shape_text(FILE *out, const Node *nd) {
  fputc('(', out);
  int k = 0;
  if (nd->batched) fputc('n', out), k++;
  for (int i = 0; i < nd->shape.rank; i++) fprintf(out, "%s%lld", k++ ? ", " : "", (long long)nd->shape.dim[i]);
  fputc(')', out);
}

void emit_node_comment(Emit *e, const Node *nd, bool infer) {
  fprintf(e->out, "// %s: %s", nd->name, op_info[infer ? op_info[nd->op].infer : nd->op].name);
  for (int k = 0; k < MAX_IN; k++) {
    if (!nd->in[k]) continue;
    fprintf(e->out, "%s", k ? ", " : " ");
    emit_shape_text(e->out, nd->in[k]);
  }
  if (nd->shape.rank) {
    fprintf(e->out, " -> ");
    emit_shape_text(e->out, nd);
  }
  double f, b;
  node_cost(nd, 1, &f, &b);
  if (f > 0) fprintf(e->out, "; %.0f FLOPs%s", f, nd->batched || op_info[nd->op].cls != FC_OPTIMIZER ? " per sample" : "");
  fputc('\n', e->out);
}

const char *optimizer_name(OptKind k) { return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : "rmsprop"; }

void emit_model_summary_comment(Emit *e, const char *file) {
  const Program *p = e->p;
  Graph *g = e->g;
  fprintf(e->out, "// %s — generated by nnc (%s target); edit the .nn script instead.\n//\n", file, e->d->name);
  fprintf(e->out, "// %d layers, %lld params (%lld trainable).\n//", p->n_layers - 1, (long long)p->total_params,
          (long long)p->trainable_params);
  if (g->loss)
    fprintf(e->out, " Loss: %s%s; optimizer: %s.\n", op_info[g->loss->op].name,
            is_fused_loss(g->loss->op) ? " (fused onto the logits)" : "", optimizer_name(p->opt.kind));
  else
    fprintf(e->out, " Not compiled: inference only.\n");
  fprintf(e->out, "// Graph: %d forward nodes, %d backward nodes, %d optimizer updates.\n//\n", g->stage_fwd_end,
          g->n - g->stage_fwd_end - e->plan->n_upd, e->plan->n_upd);
}
