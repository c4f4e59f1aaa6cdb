// trim_pool.c — a convolution computes only the cells the layer after it reads.
//
// A 'valid' pool or convolution whose windows stop short of the end of its input never
// reads the last rows or columns there: fashion_cnn's second convolution makes 11×11
// cells per filter and its 2×2 pool reads 10×10 of them; that convolution then reads 12×12
// of the first layer's 13×13 pooled cells. Those cells cost the producer, its data
// gradient and its filter gradient FLOPs and memory for nothing: their values are never
// used and their gradient is zero. Here the producer's output shrinks to what its reader
// reaches (its padding and input stay as they were), and the reader's window, its
// backward and the gradients between them follow. Every kernel takes its output size
// apart from its input size, and a data gradient already writes 0 to input cells no
// window covers. A fused first layer (conv2d_pool) also stops computing the convolution
// rows and columns under no pool window.
//
// Needs: a graph after fuse_pooling (an activation between a convolution and its reader
// fused into the convolution's epilogue, its gradient into the reader's backward).
// Guarantees: the same outputs, loss and gradients; the filter and bias gradients lose
// only terms that were zero, so they sum the same values in a shorter reduction.
// Trimmed only where all readers are known: the producer (conv2d or conv2d_pool) read by
// one pool or conv2d and that reader's backward, and the gradient the reader sends back
// read only by the producer's own gradients.
#include "nnc.h"

// The part of a producer's output its reader reaches, and the nodes that change with it.
typedef struct Trim {
  Node *reader;                        // the pool or conv2d reading the producer as in[0]
  Node *ties[3];                       // nodes sharing the reader's window: its backward,
  int n_ties;                          //   filter gradient, data gradient
  Node *grad;                          // the gradient the reader sends back (one of ties)
  int64_t rows, cols;                  // the producer's rows and columns the reader reaches
} Trim;

static bool is_pool(OpKind op) { return op == OP_maxpool2d || op == OP_avgpool2d; }
static bool is_pool_bwd(OpKind op) { return op == OP_maxpool2d_bwd || op == OP_avgpool2d_bwd; }

// The producer's output height and width.
static int64_t out_rows(const Node *x) { return x->op == OP_conv2d_pool ? x->pool.oh : x->win.oh; }
static int64_t out_cols(const Node *x) { return x->op == OP_conv2d_pool ? x->pool.ow : x->win.ow; }

// From 0 up to the last window's end, padding excluded.
static int64_t reach(int64_t in, int64_t out, int64_t stride, int64_t k, int64_t pad) {
  int64_t r = (out - 1) * stride + k - pad;
  return r < in ? r : in;
}

// The one windowed reader of x and its backward nodes, when nothing else reads x.
static bool find_reader(Uses *u, const Node *x, Trim *t) {
  *t = (Trim){0};
  for (int k = 0; k < u[x->id].n; k++) {
    Node *r = u[x->id].nodes[k];
    if (r->op == OP_conv2d_pool_bwd_filter && r->in[2] == x) continue;   // x's own (its argmax)
    if ((is_pool(r->op) || r->op == OP_conv2d) && !r->backward && r->in[0] == x && !t->reader) t->reader = r;
    else if ((is_pool_bwd(r->op) || r->op == OP_conv2d_bwd_filter) && r->in[0] == x && t->n_ties < 2)
      t->ties[t->n_ties++] = r;
    else return false;
  }
  Node *r = t->reader;
  if (!r) return false;
  for (int k = 0; k < t->n_ties; k++) {
    Node *b = t->ties[k];
    bool mine = is_pool(r->op) ? is_pool_bwd(b->op) && (b->op != OP_maxpool2d_bwd || b->in[1] == r)
                               : b->op == OP_conv2d_bwd_filter && b->layer == r->layer;
    if (!mine) return false;
    if (is_pool_bwd(b->op)) t->grad = b;
  }
  if (r->op == OP_conv2d)              // the data gradient reads the reader's weight too
    for (int k = 0; k < u[r->in[1]->id].n && !t->grad; k++) {
      Node *d = u[r->in[1]->id].nodes[k];
      if (d->op == OP_conv2d_bwd_data && d->in[1] == r->in[1]) t->ties[t->n_ties++] = t->grad = d;
    }
  const Window *a = &r->win;
  t->rows = reach(a->h, a->oh, a->sh, a->kh, a->pt);
  t->cols = reach(a->w, a->ow, a->sw, a->kw, a->pl);
  return true;
}

// Whether only x's own gradients read the gradient the reader sends back.
static bool grad_readers(Uses *u, const Node *grad, const Node *x) {
  for (int k = 0; grad && k < u[grad->id].n; k++) {
    const Node *r = u[grad->id].nodes[k];
    bool own = x->op == OP_conv2d_pool
                   ? r->op == OP_conv2d_pool_bwd_filter && r->in[1] == grad && r->in[2] == x
                   : (r->op == OP_conv2d_bwd_data && r->in[0] == grad) ||
                         (r->op == OP_conv2d_bwd_filter && r->in[1] == grad) || r->op == OP_bias_grad;
    if (!own) return false;
  }
  return true;
}

// A conv2d or conv2d_pool (or one of their gradients) producing rows × cols cells; a
// fused first layer's convolution makes just the cells under its pool's windows.
static void set_output(Node *nd, int64_t rows, int64_t cols) {
  if (nd->op == OP_conv2d_pool || nd->op == OP_conv2d_pool_bwd_filter) {
    nd->pool.oh = rows, nd->pool.ow = cols;
    nd->pool.h = nd->win.oh = rows * nd->pool.sh;
    nd->pool.w = nd->win.ow = cols * nd->pool.sw;
  } else {
    nd->win.oh = rows, nd->win.ow = cols;
  }
  node_done(nd);
}

static void set_input(Node *nd, int64_t rows, int64_t cols) {
  nd->win.h = rows, nd->win.w = cols;
  node_done(nd);
}

static bool trim_one(Graph *g, Node *x) {
  Uses *u = graph_uses(g);
  Trim t;
  int64_t rows = out_rows(x), cols = out_cols(x);
  bool cut = find_reader(u, x, &t) && (t.rows < rows || t.cols < cols) && grad_readers(u, t.grad, x);
  bool loose = x->op == OP_conv2d_pool && (x->win.oh > x->pool.oh * x->pool.sh || x->win.ow > x->pool.ow * x->pool.sw);
  if (!cut && !loose) return false;
  if (cut) rows = t.rows, cols = t.cols;
  set_output(x, rows, cols);
  for (int k = 0; k < u[x->id].n; k++)   // a conv2d_pool's filter gradient reads x itself
    if (u[x->id].nodes[k]->op == OP_conv2d_pool_bwd_filter) set_output(u[x->id].nodes[k], rows, cols);
  for (int k = 0; cut && t.grad && k < u[t.grad->id].n; k++) {   // a conv2d's data and filter gradients
    Node *d = u[t.grad->id].nodes[k];
    if (d->op == OP_conv2d_bwd_data || d->op == OP_conv2d_bwd_filter) set_output(d, rows, cols);
  }
  if (cut) {
    set_input(t.reader, rows, cols);
    for (int k = 0; k < t.n_ties; k++) set_input(t.ties[k], rows, cols);
  }
  return true;
}

int trim_pooled_convs(Graph *g) {
  int trimmed = 0;
  // Last to first: a reader is cut before the producer before it asks what it reaches.
  for (int i = (g->differentiated ? g->stage_fwd_end : g->n) - 1; i >= 0; i--) {
    Node *x = g->nodes[i];
    if ((x->op == OP_conv2d || x->op == OP_conv2d_pool) && trim_one(g, x)) trimmed++;
  }
  return trimmed;
}
