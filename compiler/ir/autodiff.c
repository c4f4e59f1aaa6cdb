// autodiff.c — reverse mode over the forward graph: one train step.
//
// Needs: graph_build's forward graph with a loss (a compiled model).
// Guarantees: for every node that depends on a trainable param and reaches a loss (the
// loss op or an l1l2 regularizer), its gradient is a node; where a value has several
// consumers the contributions are summed with `add`. Every trainable param then gets
// exactly one optimizer update node. All appended nodes are marked `backward`.
// The gradient rules below only build nodes from other ops of ops.def.
#include "nnc.h"

#include <string.h>

static bool *needs_grad;   // per forward node: depends on a trainable param
static int n_forward;

static bool wants(const Node *x) { return x && x->id < n_forward && needs_grad[x->id]; }

static const char *bname(Graph *g, const Node *fwd, const char *suffix) {
  return xprintf("%s_bwd_%s", graph_layer_ident(g, fwd->layer), suffix);
}

static Node *op1(Graph *g, OpKind op, const Node *fwd, const char *suffix, Node *a) {
  return node_done(node_new(g, op, bname(g, fwd, suffix), fwd->layer, a, NULL));
}

static Node *op2(Graph *g, OpKind op, const Node *fwd, const char *suffix, Node *a, Node *b) {
  return node_done(node_new(g, op, bname(g, fwd, suffix), fwd->layer, a, b));
}

//
// Gradient rules (ops.def column 5): dx[i] = d loss / d nd->in[i], given dy = d loss / d nd.
//
static void grad_none(Graph *g, Node *nd, Node *dy, Node **dx) {}

static void grad_matmul(Graph *g, Node *nd, Node *dy, Node **dx) {
  Node *x = nd->in[0], *w = nd->in[1];
  if (wants(x)) {
    Node *d = node_new(g, OP_matmul, bname(g, nd, "matmul_dx"), nd->layer, dy, w);
    d->tb = true;                      // dy · Wᵀ
    dx[0] = node_done(d);
  }
  if (wants(w)) {
    Node *d = node_new(g, OP_matmul, bname(g, nd, "matmul_dw"), nd->layer, x, dy);
    d->ta = true;                      // xᵀ · dy, summed over the batch
    dx[1] = node_done(d);
  }
}

static void grad_conv2d(Graph *g, Node *nd, Node *dy, Node **dx) {
  Node *x = nd->in[0], *w = nd->in[1];
  if (wants(x)) {
    Node *d = node_new(g, OP_conv2d_bwd_data, bname(g, nd, "conv_dx"), nd->layer, dy, w);
    d->win = nd->win;
    dx[0] = node_done(d);
  }
  if (wants(w)) {
    Node *d = node_new(g, OP_conv2d_bwd_filter, bname(g, nd, "conv_dw"), nd->layer, x, dy);
    d->win = nd->win;
    dx[1] = node_done(d);
  }
}

static void grad_bias_add(Graph *g, Node *nd, Node *dy, Node **dx) {
  dx[0] = dy;                          // y = x + b passes dy through unchanged
  if (wants(nd->in[1])) dx[1] = op1(g, OP_bias_grad, nd, "bias_grad", dy);
}

// Activations: the row's bwd op computes dx from dy and the forward output y
// (grad_act) or the forward input x (grad_act_x); it carries the activation's alpha.
static void act_bwd(Graph *g, Node *nd, Node *from, Node *dy, Node **dx) {
  OpKind op = op_info[nd->op].bwd;
  if (op == OP_none) internal_error("autodiff", "%s has no bwd op in ops.def", op_info[nd->op].name);
  Node *d = node_new(g, op, bname(g, nd, op_info[nd->op].name), nd->layer, from, dy);
  d->alpha = nd->alpha;
  dx[0] = node_done(d);
}

static void grad_act(Graph *g, Node *nd, Node *dy, Node **dx) { act_bwd(g, nd, nd, dy, dx); }
static void grad_act_x(Graph *g, Node *nd, Node *dy, Node **dx) { act_bwd(g, nd, nd->in[0], dy, dx); }

static void pool_bwd(Graph *g, Node *nd, Node *d) {
  d->win = nd->win;
  node_done(d);
}

static void grad_maxpool2d(Graph *g, Node *nd, Node *dy, Node **dx) {
  Node *d = node_new(g, OP_maxpool2d_bwd, bname(g, nd, "maxpool"), nd->layer, nd->in[0], nd);
  d->in[2] = dy;                       // the argmax is recomputed from x and y
  pool_bwd(g, nd, d);
  dx[0] = d;
}

static void grad_avgpool2d(Graph *g, Node *nd, Node *dy, Node **dx) {
  Node *d = node_new(g, OP_avgpool2d_bwd, bname(g, nd, "avgpool"), nd->layer, nd->in[0], dy);
  pool_bwd(g, nd, d);
  dx[0] = d;
}

static void grad_global_pool(Graph *g, Node *nd, Node *dy, Node **dx) {
  dx[0] = op2(g, OP_global_avgpool2d_bwd, nd, "gap", nd->in[0], dy);
}

static void grad_reshape(Graph *g, Node *nd, Node *dy, Node **dx) {
  Node *d = node_new(g, OP_reshape, bname(g, nd, "reshape"), nd->layer, dy, NULL);
  d->shape = nd->in[0]->shape;
  dx[0] = node_done(d);
}

static void grad_dropout(Graph *g, Node *nd, Node *dy, Node **dx) {
  dx[0] = op2(g, OP_dropout_bwd, nd, "dropout", nd, dy);   // reads nd's mask
}

static void grad_copy(Graph *g, Node *nd, Node *dy, Node **dx) { dx[0] = dy; }

static void grad_add(Graph *g, Node *nd, Node *dy, Node **dx) { dx[0] = dx[1] = dy; }

// One kernel computes dx, d gamma and d beta; the last two live in its aux buffer and
// are exposed as views so that they are ordinary gradient nodes.
static void grad_batchnorm(Graph *g, Node *nd, Node *dy, Node **dx) {
  Node *d = node_new(g, OP_batchnorm_bwd, bname(g, nd, "batchnorm"), nd->layer, nd->in[0], dy);
  d->in[2] = nd->in[1];
  d->in[3] = nd;                       // batch mean and 1/std saved by the forward pass
  node_done(d);
  if (wants(nd->in[0])) dx[0] = d;
  for (int k = 0; k < 2; k++) {
    Node *param = nd->in[1 + k];
    if (!wants(param)) continue;
    Node *v = node_new(g, OP_aux_view, bname(g, nd, k ? "dbeta" : "dgamma"), nd->layer, d, NULL);
    v->shape = param->shape;
    v->alias_offset = k * shape_last(&nd->shape);
    dx[1 + k] = node_done(v);
  }
}

// The loss kernel writes d(mean loss)/d(prediction) itself; loss_grad names that buffer.
static void grad_loss(Graph *g, Node *nd, Node *dy, Node **dx) {
  if (!wants(nd->in[0])) return;
  Node *d = node_done(node_new(g, OP_loss_grad, "loss_grad", -1, nd, NULL));
  nd->grad = d;
  dx[0] = d;
}

static void grad_l1l2(Graph *g, Node *nd, Node *dy, Node **dx) {
  if (!wants(nd->in[0])) return;
  Node *d = op1(g, OP_l1l2_grad, nd, "l1l2", nd->in[0]);
  d->l1 = nd->l1;
  d->l2 = nd->l2;
  dx[0] = d;
}

#define OP(name, nin, opt, cls, shape, grad, bwd, cost, emit, inf) grad,
static void (*const grad_rule[OP_COUNT])(Graph *, Node *, Node *, Node **) = {
#include "ops.def"
};
#undef OP

static void accumulate(Graph *g, Node **grads, Node *x, Node *d) {
  if (!grads[x->id]) {
    grads[x->id] = d;
    return;
  }
  Node *sum = node_done(node_new(g, OP_add, xprintf("%s_grad_sum", x->name), x->layer, grads[x->id], d));
  grads[x->id] = sum;
}

static Node *update(Graph *g, const Program *p, Node *param, Node *grad) {
  static const OpKind ops[] = {[OPT_SGD] = OP_sgd_update, [OPT_ADAM] = OP_adam_update,
                               [OPT_RMSPROP] = OP_rmsprop_update};
  static const int slots[] = {[OPT_SGD] = 1, [OPT_ADAM] = 2, [OPT_RMSPROP] = 3};
  const char *weight = strchr(param->keras_name, '.') + 1;
  const char *name = xprintf("%s_upd_%s", graph_layer_ident(g, param->layer), weight);
  Node *u = node_new(g, ops[p->opt.kind], name, param->layer, param, grad);
  u->opt = p->opt;                     // the IR carries the settings: emitters never read the Program
  u->slots = slots[p->opt.kind];
  return node_done(u);
}

void autodiff(Graph *g, const Program *p) {
  if (!g->loss) internal_error("autodiff", "the model has no loss (not compiled)");
  if (g->differentiated) internal_error("autodiff", "graph already differentiated");
  int nf = n_forward = g->n;
  needs_grad = xalloc(nf * sizeof *needs_grad);
  for (int i = 0; i < nf; i++) {
    Node *nd = g->nodes[i];
    needs_grad[i] = nd->op == OP_param && nd->trainable;
    for (int k = 0; k < MAX_IN; k++)
      if (nd->in[k] && needs_grad[nd->in[k]->id]) needs_grad[i] = true;
  }
  g->differentiated = true;            // nodes made from here on are backward nodes
  Node **grads = xalloc(nf * sizeof *grads);
  for (int i = nf - 1; i >= 0; i--) {
    Node *nd = g->nodes[i];
    bool sink = op_info[nd->op].cls == FC_LOSS;   // the loss and regularizers: d = 1
    if (!needs_grad[i] || (!sink && !grads[i]) || nd->op == OP_param) continue;
    Node *dx[MAX_IN] = {0};
    grad_rule[nd->op](g, nd, grads[i], dx);
    for (int k = 0; k < MAX_IN; k++)
      if (nd->in[k] && dx[k]) accumulate(g, grads, nd->in[k], dx[k]);
  }
  for (int i = 0; i < g->n_params; i++) {
    Node *w = g->params[i];
    if (!w->trainable) continue;
    if (!grads[w->id]) internal_error("autodiff", "no gradient reaches %s", w->keras_name);
    update(g, p, w, grads[w->id]);
  }
}
