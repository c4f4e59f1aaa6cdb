// trim_pool.c — a convolution computes only the cells its pool reads.
//
// A 'valid' pool whose windows do not reach the end of its input never reads the last
// rows or columns there: fashion_cnn's second convolution makes 11×11 cells per filter
// and its 2×2 pool reads 10×10 of them. Those cells cost the convolution, its data
// gradient and its filter gradient 17% of their FLOPs for nothing: their values are
// never used and their gradient is zero. Here the convolution's output window shrinks to
// the rows and columns the pool reads (its padding and input stay as they were), and so
// do the pool's input, the pool's backward and the gradients reading it. Every kernel
// takes its output size apart from its input size, and a data gradient already writes 0
// to input cells no window covers.
//
// Needs: a graph after fuse_pooling (the activation between a convolution and its pool
// fused into the convolution's epilogue and its gradient into the pool's backward).
// Guarantees: the same outputs, loss and gradients; the filter and bias gradients lose
// only terms that were zero, so they sum the same values in a shorter reduction.
// Trimmed only where all readers are known: the convolution's output read by one
// max/avg-pool (and the max-pool's backward), the pool's backward gradient read only by
// the convolution's data, filter and bias gradients.
#include "nnc.h"

// The rows (columns) of its input a valid pool's windows reach: from 0 to the last
// window's end.
static int64_t pool_reach(int64_t out, int64_t stride, int64_t k) { return (out - 1) * stride + k; }

// The pool and its backward reading conv c, when those are c's only readers.
static bool pool_readers(const Graph *g, Uses *u, const Node *c, Node **pool, Node **pool_bwd) {
  *pool = *pool_bwd = NULL;
  for (int k = 0; k < u[c->id].n; k++) {
    Node *r = u[c->id].nodes[k];
    if ((r->op == OP_maxpool2d || r->op == OP_avgpool2d) && !*pool && r->in[0] == c) *pool = r;
    else if ((r->op == OP_maxpool2d_bwd || r->op == OP_avgpool2d_bwd) && !*pool_bwd && r->in[0] == c) *pool_bwd = r;
    else return false;
  }
  return *pool != NULL;
}

// Whether only c's gradients (data, filter, bias) read the pool's backward gradient.
static bool gradient_readers(Uses *u, const Node *pool_bwd, const Node *c) {
  for (int k = 0; k < u[pool_bwd->id].n; k++) {
    const Node *r = u[pool_bwd->id].nodes[k];
    bool conv_grad = ((r->op == OP_conv2d_bwd_data && r->in[0] == pool_bwd) ||
                      (r->op == OP_conv2d_bwd_filter && r->in[1] == pool_bwd)) &&
                     r->win.oh == c->win.oh && r->win.ow == c->win.ow;
    if (!conv_grad && r->op != OP_bias_grad) return false;
  }
  return true;
}

int trim_pooled_convs(Graph *g) {
  int trimmed = 0;
  int forward = g->differentiated ? g->stage_fwd_end : g->n;
  for (int i = 0; i < forward; i++) {
    Node *c = g->nodes[i];
    if (c->op != OP_conv2d) continue;
    Uses *u = graph_uses(g);
    Node *m, *mb;
    if (!pool_readers(g, u, c, &m, &mb)) continue;
    const Window *q = &m->win;
    if (q->pt || q->pl) continue;                 // a 'same' pool reads every cell
    int64_t oh = pool_reach(q->oh, q->sh, q->kh), ow = pool_reach(q->ow, q->sw, q->kw);
    if (oh >= c->win.oh && ow >= c->win.ow) continue;
    if (mb && !gradient_readers(u, mb, c)) continue;
    c->win.oh = oh, c->win.ow = ow;
    node_done(c);
    m->win.h = oh, m->win.w = ow;
    if (mb) {
      mb->win.h = oh, mb->win.w = ow;
      node_done(mb);
      for (int k = 0; k < u[mb->id].n; k++) {
        Node *r = u[mb->id].nodes[k];
        if (r->op == OP_bias_grad) continue;
        r->win.oh = oh, r->win.ow = ow;
        node_done(r);
      }
    }
    trimmed++;
  }
  return trimmed;
}
