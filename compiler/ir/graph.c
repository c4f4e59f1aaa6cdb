// graph.c — the graph IR: a Program's layers lowered to primitive tensor ops.
//
// Needs: a checked Program (layer shapes and Keras defaults resolved by sema).
// Guarantees: Graph.nodes is a topological order; names are unique C identifiers made
// from the layer names (`conv2d_1_fwd_conv`); every node's shape comes from its op's
// shape rule in ops.def. Shapes are per sample; `batched` marks the run-time dim n.
#include "nnc.h"

#include <string.h>

//
// Shape rules (ops.def column 4)
//
static void shape_none(Node *nd) {}

static void shape_first(Node *nd) {
  nd->shape = nd->in[0]->shape;
  nd->batched = nd->in[0]->batched;
}

static void shape_second(Node *nd) {
  nd->shape = nd->in[1]->shape;
  nd->batched = nd->in[1]->batched;
}

static Shape shape_of(int rank, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  Shape s = {rank, {d0, d1, d2, d3}};
  return s;
}

static Shape with_last(Shape s, int64_t last) {
  s.dim[s.rank - 1] = last;
  return s;
}

// matmul has three uses, told apart by (ta, tb):
//   (0,0) y[n,..,N]  = x[n,..,K] · W[K,N]       forward
//   (0,1) dx[n,..,K] = dy[n,..,N] · W[K,N]ᵀ     gradient of the input
//   (1,0) dW[K,N]    = x[n,..,K]ᵀ · dy[n,..,N]  gradient of the weight (sums over n)
static void shape_matmul(Node *nd) {
  const Node *a = nd->in[0], *b = nd->in[1];
  bool ta = nd->ta, tb = nd->tb;
  if (!ta && !tb) nd->shape = with_last(a->shape, b->shape.dim[1]), nd->batched = a->batched;
  else if (!ta && tb) nd->shape = with_last(a->shape, b->shape.dim[0]), nd->batched = a->batched;
  else if (ta && !tb)
    nd->shape = shape_of(2, shape_last(&a->shape), shape_last(&b->shape), 0, 0), nd->batched = false;
  else internal_error("graph", "matmul with both operands transposed");
}

static void shape_conv2d(Node *nd) {
  nd->shape = shape_of(3, nd->win.oh, nd->win.ow, nd->win.f, 0);
  nd->batched = true;
}

static void shape_conv2d_dx(Node *nd) {
  nd->shape = shape_of(3, nd->win.h, nd->win.w, nd->win.c, 0);
  nd->batched = true;
}

// op(B) of the contraction that reads it, as [K, N]: the rule the pack kernels follow.
static void pack_dims(const Node *nd, int64_t *k, int64_t *n) {
  const Shape *w = &nd->in[0]->shape;
  if (nd->pack == PACK_CONV_FLIP) *k = w->dim[0] * w->dim[1] * w->dim[3], *n = w->dim[2];
  else if (nd->pack == PACK_BT) *k = shape_last(w), *n = shape_rows(w);
  else *k = shape_rows(w), *n = shape_last(w);
}

// Panels of NNC_PACK_COLS-rounded columns: one flat buffer.
static void shape_pack(Node *nd) {
  int64_t k, n;
  pack_dims(nd, &k, &n);
  nd->shape = shape_of(1, k * ((n + NNC_PACK_COLS - 1) / NNC_PACK_COLS * NNC_PACK_COLS), 0, 0, 0);
  nd->batched = false;
}

static void shape_conv2d_dw(Node *nd) {
  const Window *a = &nd->win;
  nd->shape = shape_of(4, a->kh, a->kw, a->c, a->f);
  nd->batched = false;
}

// The pooled output, and each window's argmax beside it.
static void shape_conv2d_pool(Node *nd) {
  nd->shape = shape_of(3, nd->pool.oh, nd->pool.ow, nd->win.f, 0);
  nd->batched = true;
  nd->aux_shape = nd->shape;
  nd->aux_batched = true;
}

// The filter gradient, and the bias gradient beside it when the convolution has a bias.
static void shape_conv2d_pool_dw(Node *nd) {
  shape_conv2d_dw(nd);
  nd->aux_shape = nd->in[2]->in[2] ? shape_of(1, nd->win.f, 0, 0, 0) : (Shape){0};
  nd->aux_batched = false;
}

static void shape_pool2d(Node *nd) {
  nd->shape = shape_of(3, nd->win.oh, nd->win.ow, nd->win.c, 0);
  nd->batched = true;
}

static void shape_global_pool(Node *nd) {
  nd->shape = shape_of(1, shape_last(&nd->in[0]->shape), 0, 0, 0);
  nd->batched = true;
}

// In place: y += b writes into the fresh matmul/conv output it follows.
static void shape_bias_add(Node *nd) {
  shape_first(nd);
  nd->alias = nd->in[0];
}

static void shape_bias_grad(Node *nd) {
  nd->shape = shape_of(1, shape_last(&nd->in[0]->shape), 0, 0, 0);
  nd->batched = false;
}

static void shape_dropout(Node *nd) {
  shape_first(nd);
  nd->aux_shape = nd->shape;           // the mask, kept for the backward pass
  nd->aux_batched = true;
}

static void shape_batchnorm(Node *nd) {
  shape_first(nd);
  nd->aux_shape = shape_of(2, 2, shape_last(&nd->shape), 0, 0);   // batch mean, 1/std
}

static void shape_batchnorm_bwd(Node *nd) {
  shape_first(nd);                     // dx like x
  nd->aux_shape = shape_of(2, 2, shape_last(&nd->shape), 0, 0);   // d gamma, d beta
}

// reshape and aux_view: the builder sets the shape; storage is the input's.
static void shape_view(Node *nd) {
  nd->alias = nd->in[0];
  if (nd->op == OP_reshape) {
    nd->batched = nd->in[0]->batched;
    if (shape_size(&nd->shape) != shape_size(&nd->in[0]->shape))
      internal_error("graph", "reshape of %s changes its size", nd->in[0]->name);
  }
}

static void shape_loss_grad(Node *nd) {
  nd->shape = nd->in[0]->in[0]->shape;
  nd->batched = true;
}

// A pointwise chain's value is its last op's.
static void shape_chain(Node *nd) {
  nd->shape = nd->chain[nd->n_chain - 1]->shape;
  nd->batched = nd->chain[nd->n_chain - 1]->batched;
}

// Fused losses keep the probabilities they compute in their own buffer.
static void shape_loss_fused(Node *nd) { shape_first(nd); }

static void shape_scalar(Node *nd) {
  nd->shape = shape_of(0, 0, 0, 0, 0);
  nd->batched = false;
}

// The optimizer's slots for one param: nd->slots of them, each the param's size.
static void shape_update(Node *nd) {
  shape_scalar(nd);
  if (nd->slots > 0)
    nd->aux_shape = shape_of(2, nd->slots, shape_size(&nd->in[0]->shape), 0, 0);
}

//
// Cost rules (ops.def column 6): FLOPs and bytes moved for a batch of n.
//
static double count(const Node *nd, int64_t n) {
  return (double)node_elems(nd) * (nd->batched ? n : 1);
}

static void cost_zero(const Node *nd, int64_t n, double *f, double *b) { *f = 0, *b = 0; }

static void cost_elem1(const Node *nd, int64_t n, double *f, double *b) {
  *f = count(nd, n);
  *b = 2 * sizeof(float) * count(nd, n);
}

static void cost_elem4(const Node *nd, int64_t n, double *f, double *b) {
  *f = 4 * count(nd, n);
  *b = 2 * sizeof(float) * count(nd, n);
}

static void cost_move(const Node *nd, int64_t n, double *f, double *b) {
  *f = 0;
  *b = 2 * sizeof(float) * count(nd, n);
}

// Reads the weight, writes its panels.
static void cost_pack(const Node *nd, int64_t n, double *f, double *b) {
  *f = 0;
  *b = sizeof(float) * (double)(node_elems(nd->in[0]) + node_elems(nd));
}

static void cost_matmul(const Node *nd, int64_t n, double *f, double *b) {
  const Node *a = nd->in[0], *w = nd->in[1];
  double rows = (double)shape_rows(&a->shape) * (a->batched ? n : 1);
  double m = nd->ta ? shape_last(&a->shape) : rows;
  double k = nd->ta ? rows : shape_last(&a->shape);
  double cols = nd->ta ? shape_last(&w->shape) : shape_last(&nd->shape);
  *f = 2 * m * k * cols;
  *b = sizeof(float) * (m * k + k * cols + m * cols);
}

static void cost_conv(const Node *nd, int64_t n, double *f, double *b) {
  const Window *a = &nd->win;
  *f = 2.0 * n * a->oh * a->ow * a->f * a->kh * a->kw * a->c;
  *b = sizeof(float) * ((double)n * a->h * a->w * a->c + (double)a->kh * a->kw * a->c * a->f +
                        (double)n * a->oh * a->ow * a->f);
}

// The convolution's FLOPs and the bytes that remain: its input, filters and the pooled
// tensors (output and argmax; gradient, output and argmax going back).
static void cost_conv_pool(const Node *nd, int64_t n, double *f, double *b) {
  const Window *a = &nd->win, *q = &nd->pool;
  *f = 2.0 * n * a->oh * a->ow * a->f * a->kh * a->kw * a->c;
  double pooled = (double)n * q->oh * q->ow * a->f;
  *b = sizeof(float) * ((double)n * a->h * a->w * a->c + (double)a->kh * a->kw * a->c * a->f +
                        (nd->op == OP_conv2d_pool ? 2 : 3) * pooled);
}

static void cost_pool(const Node *nd, int64_t n, double *f, double *b) {
  const Window *a = &nd->win;
  *f = (double)n * a->oh * a->ow * a->c * a->kh * a->kw;
  *b = sizeof(float) * ((double)n * a->h * a->w * a->c + (double)n * a->oh * a->ow * a->c);
}

static void cost_bn(const Node *nd, int64_t n, double *f, double *b) {
  *f = 8 * count(nd, n);
  *b = 3 * sizeof(float) * count(nd, n);
}

static void cost_loss(const Node *nd, int64_t n, double *f, double *b) {
  double e = (double)node_elems(nd->in[0]) * n;
  *f = 6 * e;
  *b = 3 * sizeof(float) * e;
}

static void cost_update(const Node *nd, int64_t n, double *f, double *b) {
  double e = (double)shape_size(&nd->in[0]->shape);
  *f = 10 * e;
  *b = sizeof(float) * (2 + 2 * nd->slots) * e;
}

// Its ops' FLOPs; bytes only for what the one loop reads and writes.
static void cost_chain(const Node *nd, int64_t n, double *f, double *b) {
  *f = 0;
  for (int k = 0; k < nd->n_chain; k++) {
    double fk, bk;
    node_cost(nd->chain[k], n, &fk, &bk);
    *f += fk;
  }
  int reads = 0;
  for (int k = 0; k < MAX_IN; k++) reads += nd->in[k] != NULL;
  *b = sizeof(float) * (reads + 1) * count(nd, n);
}

static void cost_update_all(const Node *nd, int64_t n, double *f, double *b) {
  *f = *b = 0;
  for (int k = 0; k < nd->n_members; k++) {
    double fk, bk;
    cost_update(nd->members[k], n, &fk, &bk);
    *f += fk, *b += bk;
  }
}

//
// The op table
//
#define OP(name, nin, opt, cls, shape, grad, bwd, cost, emit, inf) {#name, nin, opt, FC_##cls, OP_##bwd, OP_##inf},
const OpInfo op_info[OP_COUNT] = {
#include "ops.def"
};
#undef OP

#define OP(name, nin, opt, cls, shape, grad, bwd, cost, emit, inf) shape,
static void (*const shape_rule[OP_COUNT])(Node *) = {
#include "ops.def"
};
#undef OP

#define OP(name, nin, opt, cls, shape, grad, bwd, cost, emit, inf) cost,
static void (*const cost_rule[OP_COUNT])(const Node *, int64_t, double *, double *) = {
#include "ops.def"
};
#undef OP

const char *fusion_class_name(FusionClass c) {
  static const char *names[] = {"source", "view", "elementwise", "reduction", "contraction",
                                "movement", "loss", "optimizer"};
  return names[c];
}

bool op_has_kernel(OpKind op) { return op_info[op].cls != FC_SOURCE && op_info[op].cls != FC_VIEW; }

void node_cost(const Node *nd, int64_t n, double *flops, double *bytes) {
  cost_rule[nd->op](nd, n, flops, bytes);
}

//
// Nodes
//
int64_t shape_size(const Shape *s) {
  int64_t k = 1;
  for (int i = 0; i < s->rank; i++) k *= s->dim[i];
  return k;
}

int64_t shape_last(const Shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }

int64_t shape_rows(const Shape *s) {
  int64_t k = 1;
  for (int i = 0; i + 1 < s->rank; i++) k *= s->dim[i];
  return k;
}

int64_t node_elems(const Node *nd) { return shape_size(&nd->shape); }

int64_t node_aux_elems(const Node *nd) {
  return nd->aux_shape.rank ? shape_size(&nd->aux_shape) : 0;
}

static bool name_taken(const Graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (strcmp(g->nodes[i]->name, name) == 0) return true;
  return false;
}

Node *node_new(Graph *g, OpKind op, const char *name, int layer, Node *a, Node *b) {
  Node *nd = xalloc(sizeof *nd);
  nd->op = op;
  nd->layer = layer;
  nd->in[0] = a;
  nd->in[1] = b;
  nd->backward = g->differentiated;
  const char *unique = name;
  for (int k = 2; name_taken(g, unique); k++) unique = xprintf("%s_%d", name, k);
  nd->name = unique;
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    Node **nodes = xalloc(g->cap * sizeof *nodes);
    if (g->n) memcpy(nodes, g->nodes, g->n * sizeof *nodes);
    g->nodes = nodes;
  }
  nd->id = g->n;
  g->nodes[g->n++] = nd;
  return nd;
}

Node *node_done(Node *nd) {
  for (int i = 0; i < op_info[nd->op].n_in; i++) {
    if (!nd->in[i] && !(op_info[nd->op].optional & 1u << i))
      internal_error("graph", "%s: input %d of %s missing", nd->name, i, op_info[nd->op].name);
  }
  shape_rule[nd->op](nd);
  return nd;
}

//
// Layer names as C identifiers — the one mangling decision for generated code.
// Lowercase [a-z0-9_]; a leading digit or "nnc" gets "m_" in front (names starting with
// nnc_ are the generated code's own); duplicates after mangling get _2, _3, ...
//
static void mangle_layer_names(Graph *g, const Program *p) {
  g->n_layers = p->n_layers;
  g->layer_ident = xalloc((p->n_layers + 1) * sizeof *g->layer_ident);
  for (int i = 0; i < p->n_layers; i++) {
    const char *src = p->layers[i].name ? p->layers[i].name : "layer";
    size_t len = strlen(src);
    if (len > 48) len = 48;            // generated names stay readable
    char *id = xalloc(len + 3);
    size_t k = 0;
    for (size_t j = 0; j < len; j++) {
      unsigned char c = src[j];
      if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
      id[k++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_';
    }
    if (k == 0) id[k++] = 'l';
    const char *ident = id;
    if ((id[0] >= '0' && id[0] <= '9') || strncmp(id, "nnc", 3) == 0) ident = xprintf("m_%s", id);
    const char *unique = ident;
    for (int n = 2;; n++) {
      bool clash = false;
      for (int j = 0; j < i; j++)
        if (strcmp(g->layer_ident[j], unique) == 0) clash = true;
      if (!clash) break;
      unique = xprintf("%s_%d", ident, n);
    }
    g->layer_ident[i] = unique;
  }
}

const char *graph_layer_ident(const Graph *g, int layer) {
  return layer >= 0 && layer < g->n_layers ? g->layer_ident[layer] : "model";
}

//
// Lowering layers
//
static const char *lname(Graph *g, int layer, const char *suffix) {
  return xprintf("%s_%s", g->layer_ident[layer], suffix);
}

static Node *add_param(Graph *g, const Program *p, int layer, const char *weight, Shape shape,
                       bool trainable, Initializer init, int64_t fan_in, int64_t fan_out) {
  Node *w = node_new(g, OP_param, lname(g, layer, weight), layer, NULL, NULL);
  w->shape = shape;
  w->keras_name = xprintf("%s.%s", p->layers[layer].name, weight);
  w->trainable = trainable;
  w->init = init;
  w->fan_in = fan_in;
  w->fan_out = fan_out;
  if (g->n_params == g->cap_params) {
    g->cap_params = g->cap_params ? 2 * g->cap_params : 16;
    Node **ps = xalloc(g->cap_params * sizeof *ps);
    if (g->n_params) memcpy(ps, g->params, g->n_params * sizeof *ps);
    g->params = ps;
  }
  g->params[g->n_params++] = w;
  return w;
}

// The layer's activation; parameterized ones (leaky_relu, elu) carry it in alpha.
static Node *activation(Graph *g, const Layer *L, int layer, Node *x) {
  static const OpKind ops[] = {
#define OP(...)
#define ACT(name, op, param) OP_##op,
#include "ops.def"
#undef ACT
#undef OP
  };
  OpKind op = ops[L->act];
  if (op == OP_none) return x;
  Node *y = node_new(g, op, lname(g, layer, xprintf("fwd_%s", op_info[op].name)), layer, x, NULL);
  y->alpha = L->act_param;
  return node_done(y);
}

static void regularize(Graph *g, const Layer *L, int layer, Node *kernel) {
  if (L->l1 == 0 && L->l2 == 0) return;
  Node *r = node_new(g, OP_l1l2, lname(g, layer, "reg_l1l2"), layer, kernel, NULL);
  r->l1 = L->l1;
  r->l2 = L->l2;
  node_done(r);
}

static void set_spatial(Node *nd, const Layer *L, int64_t kh, int64_t kw, int64_t f) {
  nd->win = (Window){.h = L->in.dim[0], .w = L->in.dim[1], .c = L->in.dim[2], .kh = kh, .kw = kw, .f = f,
                     .sh = L->sh, .sw = L->sw, .pt = L->pad_top, .pl = L->pad_left,
                     .oh = L->out.dim[0], .ow = L->out.dim[1]};
}

static Node *lower_layer(Graph *g, const Program *p, int i, Node *x) {
  const Layer *L = &p->layers[i];
  Node *y;
  switch (L->kind) {
  case L_INPUT:
    return x;
  case L_DENSE: {
    int64_t in = shape_last(&L->in);
    Shape ks = shape_of(2, in, L->units, 0, 0), bs = shape_of(1, L->units, 0, 0, 0);
    Node *w = add_param(g, p, i, "kernel", ks, true, L->kernel_init, in, L->units);
    y = node_done(node_new(g, OP_matmul, lname(g, i, "fwd_matmul"), i, x, w));
    if (L->use_bias) {
      Node *b = add_param(g, p, i, "bias", bs, true, L->bias_init, in, L->units);
      y = node_done(node_new(g, OP_bias_add, lname(g, i, "fwd_bias"), i, y, b));
    }
    regularize(g, L, i, w);
    return activation(g, L, i, y);
  }
  case L_CONV2D: {
    int64_t cin = L->in.dim[2], f = L->units;
    Shape ks = shape_of(4, L->kh, L->kw, cin, f), bs = shape_of(1, f, 0, 0, 0);
    Node *w = add_param(g, p, i, "kernel", ks, true, L->kernel_init, L->kh * L->kw * cin,
                        L->kh * L->kw * f);
    y = node_new(g, OP_conv2d, lname(g, i, "fwd_conv"), i, x, w);
    set_spatial(y, L, L->kh, L->kw, f);
    node_done(y);
    if (L->use_bias) {
      Node *b = add_param(g, p, i, "bias", bs, true, L->bias_init, 0, 0);
      y = node_done(node_new(g, OP_bias_add, lname(g, i, "fwd_bias"), i, y, b));
    }
    regularize(g, L, i, w);
    return activation(g, L, i, y);
  }
  case L_MAXPOOL2D:
  case L_AVGPOOL2D: {
    OpKind op = L->kind == L_MAXPOOL2D ? OP_maxpool2d : OP_avgpool2d;
    y = node_new(g, op, lname(g, i, L->kind == L_MAXPOOL2D ? "fwd_maxpool" : "fwd_avgpool"), i, x, NULL);
    set_spatial(y, L, L->kh, L->kw, L->in.dim[2]);
    return node_done(y);
  }
  case L_GLOBALAVGPOOL2D:
    y = node_done(node_new(g, OP_global_avgpool2d, lname(g, i, "fwd_gap"), i, x, NULL));
    if (L->out.rank == 1) return y;
    y = node_new(g, OP_reshape, lname(g, i, "fwd_keepdims"), i, y, NULL);   // (1, 1, C)
    y->shape = L->out;
    return node_done(y);
  case L_FLATTEN:
  case L_RESHAPE:
    // Our layout is NHWC, as Keras's, so Flatten is a view.
    y = node_new(g, OP_reshape, lname(g, i, "fwd_reshape"), i, x, NULL);
    y->shape = L->out;
    return node_done(y);
  case L_DROPOUT:
    if (L->rate <= 0) return x;
    y = node_new(g, OP_dropout, lname(g, i, "fwd_dropout"), i, x, NULL);
    y->rate = L->rate;
    y->salt = i;                       // mixed into the step's seed: masks differ per layer
    return node_done(y);
  case L_ACTIVATION:
    return activation(g, L, i, x);
  case L_BATCHNORM: {
    Shape cs = shape_of(1, shape_last(&L->in), 0, 0, 0);
    Node *gamma = L->scale ? add_param(g, p, i, "gamma", cs, true, INIT_ONES, 0, 0) : NULL;
    Node *beta = L->center ? add_param(g, p, i, "beta", cs, true, INIT_ZEROS, 0, 0) : NULL;
    Node *mean = add_param(g, p, i, "moving_mean", cs, false, INIT_ZEROS, 0, 0);
    Node *var = add_param(g, p, i, "moving_variance", cs, false, INIT_ONES, 0, 0);
    y = node_new(g, OP_batchnorm_train, lname(g, i, "fwd_batchnorm"), i, x, gamma);
    y->in[2] = beta, y->in[3] = mean, y->in[4] = var;
    y->eps = L->epsilon;
    y->momentum = L->momentum;
    return node_done(y);
  }
  }
  internal_error("graph", "layer kind %d not lowered", L->kind);
}

// Chooses the loss op. Softmax + (sparse) categorical cross-entropy and sigmoid + binary
// cross-entropy fuse onto the logits, as Keras does through _keras_logits: the model's
// output stays the probabilities, the loss sees the logits (stable, cheap gradient).
static OpKind choose_loss(const Program *p, Node *out, Node **pred) {
  *pred = out;
  bool sparse = p->loss == LOSS_SPARSE_CCE;
  switch (p->loss) {
  case LOSS_CCE:
  case LOSS_SPARSE_CCE:
    if (p->from_logits) return sparse ? OP_sparse_softmax_xent : OP_softmax_xent;
    if (out->op == OP_softmax) {
      *pred = out->in[0];
      return sparse ? OP_sparse_softmax_xent : OP_softmax_xent;
    }
    return sparse ? OP_sparse_cce : OP_cce;
  case LOSS_BCE:
    if (p->from_logits) return OP_sigmoid_bce;
    if (out->op == OP_sigmoid) {
      *pred = out->in[0];
      return OP_sigmoid_bce;
    }
    return OP_bce;
  case LOSS_MSE: return OP_mse;
  case LOSS_MAE: return OP_mae;
  }
  internal_error("graph", "unknown loss %d", p->loss);
}

Graph *graph_build(const Program *p) {
  if (p->n_layers < 1 || p->layers[0].kind != L_INPUT)
    internal_error("graph", "program has no Input layer");
  Graph *g = xalloc(sizeof *g);
  mangle_layer_names(g, p);
  g->x = node_new(g, OP_input, "batch_x", 0, NULL, NULL);
  g->x->shape = p->layers[0].out;
  g->x->batched = true;
  Node *cur = g->x;
  for (int i = 1; i < p->n_layers; i++) cur = lower_layer(g, p, i, cur);
  g->output = cur;
  if (p->compiled) {
    Node *pred;
    OpKind op = choose_loss(p, cur, &pred);
    g->y = node_new(g, OP_input, "batch_y", -1, NULL, NULL);
    g->y->batched = true;
    if (op == OP_sparse_softmax_xent || op == OP_sparse_cce) {
      // One class index per row of the predictions.
      g->y->shape = pred->shape;
      if (g->y->shape.rank > 1) g->y->shape.rank--;
      else g->y->shape.dim[0] = 1;
    } else {
      g->y->shape = cur->shape;
    }
    g->loss = node_done(node_new(g, op, xprintf("loss_%s", op_info[op].name), -1, pred, g->y));
  }
  g->stage_fwd_end = g->n;
  return g;
}

//
// Graphviz
//
static void dot_string(FILE *out, const char *s) {
  for (; *s; s++) {
    unsigned char c = *s;
    if (c == '"' || c == '\\') fputc('\\', out), fputc(c, out);
    else if (c < 0x20 || c >= 0x7f) fprintf(out, "\\\\x%02x", c);
    else fputc(c, out);
  }
}

static void dot_shape(FILE *out, const Node *nd) {
  fputc('(', out);
  int k = 0;
  if (nd->batched) fprintf(out, "n"), k++;
  for (int i = 0; i < nd->shape.rank; i++) fprintf(out, "%s%lld", k++ ? ", " : "", (long long)nd->shape.dim[i]);
  if (k == 1 && !nd->batched) fputc(',', out);
  fputc(')', out);
}

void graph_dot(const Graph *g, FILE *out) {
  fprintf(out, "digraph nnc {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    fprintf(out, "  n%d [label=\"", nd->id);
    if (nd->op == OP_param) {
      fputs("param ", out);
      dot_string(out, nd->keras_name);
    } else {
      fputs(op_info[nd->op].name, out);
      if (nd->in[2] && (nd->op == OP_matmul || nd->op == OP_conv2d)) fputs(" + bias", out);
      if (nd->fused_act) fprintf(out, " + %s", op_info[nd->fused_act].name);
      if (nd->grad && op_info[nd->op].cls != FC_LOSS) fputs(" + bias_grad", out);   // fuse_bias_grad.c
      if (nd->layout != LAYOUT_NHWC || nd->op == OP_pack_weights) fprintf(out, " [%s]", node_layout_name(nd));
      if (nd->computed_by) fprintf(out, " (by %s)", nd->computed_by->name);   // fuse_softmax.c
      for (int k = 0; k < nd->n_chain; k++)                                    // fuse_elementwise.c
        fprintf(out, "%s%s", k ? " + " : ": ", op_info[nd->chain[k]->op].name);
    }
    fputs("\\n", out);
    dot_shape(out, nd);
    fprintf(out, "\\n%s\"", nd->name);
    if (nd->op == OP_param) fprintf(out, ", shape=ellipse%s", nd->trainable ? "" : ", style=dashed");
    else if (op_info[nd->op].cls == FC_LOSS) fputs(", style=filled, fillcolor=\"#fde2e2\"", out);
    else if (op_info[nd->op].cls == FC_OPTIMIZER) fputs(", style=filled, fillcolor=\"#e2f0fd\"", out);
    else if (nd->backward) fputs(", style=filled, fillcolor=\"#eeeeee\"", out);
    fputs("];\n", out);
  }
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    for (int k = 0; k < MAX_IN; k++)
      if (nd->in[k]) fprintf(out, "  n%d -> n%d;\n", nd->in[k]->id, nd->id);
  }
  if (g->update_all) {                 // fuse_updates.c: the one kernel its members run as
    const Node *all = g->update_all;
    fprintf(out, "  all [label=\"%s\\n%d updates, one kernel\\n%s\", style=filled, fillcolor=\"#e2f0fd\"];\n",
            op_info[all->op].name, all->n_members, all->name);
    for (int k = 0; k < all->n_members; k++) fprintf(out, "  n%d -> all [style=dashed];\n", all->members[k]->id);
  }
  fputs("}\n", out);
}

//
// Editing and checking the graph: what passes stand on
//
Uses *graph_uses(const Graph *g) {
  Uses *u = xalloc(g->n * sizeof *u);
  int *count = xalloc(g->n * sizeof *count);
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < g->n; i++) {
      Node *nd = g->nodes[i];
      Node *reads[MAX_IN + 1];
      int k = 0;
      for (int j = 0; j < MAX_IN; j++)
        if (nd->in[j]) reads[k++] = nd->in[j];
      if (nd->alias && nd->alias != nd->in[0]) reads[k++] = nd->alias;
      for (int j = 0; j < k; j++) {
        int id = reads[j]->id;
        if (pass == 0) count[id]++;
        else u[id].nodes[u[id].n++] = nd;
      }
    }
    if (pass == 0)
      for (int i = 0; i < g->n; i++) u[i].nodes = xalloc((count[i] + 1) * sizeof *u[i].nodes);
  }
  return u;
}

void graph_replace_uses(Graph *g, Node *old, Node *with) {
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    for (int j = 0; j < MAX_IN; j++)
      if (nd->in[j] == old) nd->in[j] = with;
    if (nd->alias == old) nd->alias = with;
    if (nd->grad == old) nd->grad = with;
  }
  if (g->output == old) g->output = with;
}

void graph_move_before(Graph *g, Node *nd, Node *before) {
  int from = nd->id, to = before->id;
  if (from <= to) return;
  memmove(&g->nodes[to + 1], &g->nodes[to], (size_t)(from - to) * sizeof *g->nodes);
  g->nodes[to] = nd;
  for (int i = to; i <= from; i++) g->nodes[i]->id = i;
  if (from >= g->stage_fwd_end && to < g->stage_fwd_end) g->stage_fwd_end++;
}

// Sinks: what the step exists for. Everything else lives only if something reads it.
static bool is_sink(const Graph *g, const Node *nd) {
  FusionClass c = op_info[nd->op].cls;
  return c == FC_LOSS || c == FC_OPTIMIZER || c == FC_SOURCE || nd == g->output;
}

int graph_remove_dead(Graph *g) {
  int removed = 0;
  for (bool changed = true; changed;) {
    changed = false;
    Uses *u = graph_uses(g);
    // Loss kernels write their loss_grad node: it lives while its loss does.
    int k = 0, fwd_end = g->stage_fwd_end;
    for (int i = 0; i < g->n; i++) {
      Node *nd = g->nodes[i];
      bool dead = u[i].n == 0 && !is_sink(g, nd) && nd->op != OP_loss_grad;
      if (dead) {
        removed++, changed = true;
        if (i < g->stage_fwd_end) fwd_end--;
        continue;
      }
      nd->id = k;
      g->nodes[k++] = nd;
    }
    g->n = k;
    g->stage_fwd_end = fwd_end;
  }
  return removed;
}

void graph_verify(const Graph *g, const char *stage) {
  int *updates = xalloc(g->n * sizeof *updates);
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    const OpInfo *info = &op_info[nd->op];
    if (nd->id != i) internal_error(stage, "node %s has id %d at position %d", nd->name, nd->id, i);
    if (nd->op == OP_none) internal_error(stage, "node %s has no op", nd->name);
    for (int j = 0; j < MAX_IN; j++) {
      const Node *x = nd->in[j];
      if (j >= info->n_in && x) internal_error(stage, "%s: %s takes %d inputs, has in[%d]", nd->name, info->name, info->n_in, j);
      if (j < info->n_in && !x && !(info->optional & 1u << j))
        internal_error(stage, "%s: input %d of %s missing", nd->name, j, info->name);
      if (x && (x->id >= i || g->nodes[x->id] != x))
        internal_error(stage, "%s reads %s, which is not an earlier node", nd->name, x->name);
    }
    if (nd->alias && (nd->alias->id >= i || g->nodes[nd->alias->id] != nd->alias))
      internal_error(stage, "%s aliases %s, which is not an earlier node", nd->name, nd->alias->name);
    for (int j = 0; j < i; j++)
      if (!strcmp(g->nodes[j]->name, nd->name)) internal_error(stage, "two nodes named %s", nd->name);
    // The op's shape rule must give the shape the node has.
    if (info->cls != FC_SOURCE && nd->op != OP_reshape && nd->op != OP_aux_view) {
      Node copy = *nd;
      shape_rule[nd->op](&copy);
      bool same = copy.shape.rank == nd->shape.rank && copy.batched == nd->batched;
      for (int d = 0; same && d < nd->shape.rank; d++) same = copy.shape.dim[d] == nd->shape.dim[d];
      if (!same)
        internal_error(stage, "%s: shape differs from what %s's rule gives", nd->name, info->name);
    }
    if (info->cls == FC_OPTIMIZER) updates[nd->in[0]->id]++;
  }
  if (!g->differentiated) return;
  for (int i = 0; i < g->n_params; i++) {
    const Node *w = g->params[i];
    if (updates[w->id] != (w->trainable ? 1 : 0))
      internal_error(stage, "param %s has %d optimizer updates", w->keras_name, updates[w->id]);
  }
}
