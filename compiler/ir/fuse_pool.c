// fuse_pool.c — a first convolution and the max-pool after it, one kernel each way.
//
// A CNN's first layer (Conv2D over 1-3 channels, then MaxPooling2D) is all memory
// traffic: its convolution is too short to be compute-bound, and its output, the
// largest tensor of the step (fashion_cnn: 26×26×32 per sample), is written by the
// convolution, read by the pool, read again by the pool's backward, whose gradient of
// the same size is written and then read by the bias gradient and the filter gradient.
// Here the convolution pools its own output rows while they are in a thread's buffer
// (conv2d_pool: the pooled output and each window's argmax), and the filter gradient
// rebuilds the convolution's gradient a row at a time from the pooled one, adding up the
// bias gradient as it goes (conv2d_pool_bwd_filter): the large tensor is never stored.
// The kernels sum in the unfused kernels' order, so the bits are the same.
//
// Needs: a differentiated or forward-only graph after fuse_gradients (a relu between the
// convolution and the pool is in the convolution's epilogue, its gradient in the pool's
// backward). Guarantees: the conv2d becomes a conv2d_pool taking the max-pool's uses; its
// filter gradient becomes a conv2d_pool_bwd_filter reading the pooled gradient, and the
// bias gradient an aux_view of it. Fused only where all of it is there: the convolution
// direct (a window of at most 32 cells, filters in whole 16-lane blocks), the pool's
// windows tiling its input without padding, and the convolution's output and gradient
// read by nothing else (no data gradient: a first layer).
#include "nnc.h"

// The kernels' limits: nnk_conv2d_is_direct_ (NNC_CONV_DIRECT_MAX_K cells; filters in
// vectors of up to 16 lanes), the filter gradient's per-thread row buffer (NNK_POOL_ROW_BUF
// elements hold a row at two vectors of 16 filters) and the argmax byte.
#define FILTER_BLOCK 16
#define ROW_BUF 16384
#define IDX_CELLS 255   // the C kernels' argmax is a byte, and PH*PW says "no gradient"

static bool direct_conv(const Node *c) {
  const Window *a = &c->win;
  return a->kh * a->kw * a->c <= NNC_CONV_DIRECT_MAX_K && a->f % FILTER_BLOCK == 0 && !c->in[3] &&
         c->layout == LAYOUT_NHWC;
}

static bool tiling_pool(const Node *m) {
  const Window *q = &m->win;
  return q->sh == q->kh && q->sw == q->kw && q->pt == 0 && q->pl == 0 && q->oh * q->sh <= q->h &&
         q->ow * q->sw <= q->w && q->kh * q->w * 2 * FILTER_BLOCK <= ROW_BUF && q->kh * q->kw <= IDX_CELLS;
}

// The activation gradient the pool's backward must carry for the convolution's epilogue.
static OpKind act_grad(OpKind act) {
  switch (act) {
  case OP_relu: return OP_relu_bwd;
  case OP_sigmoid: return OP_sigmoid_bwd;
  case OP_tanh: return OP_tanh_bwd;
  default: return OP_none;
  }
}

int fuse_pooling(Graph *g) {
  int fused = 0;
  int forward = g->differentiated ? g->stage_fwd_end : g->n;
  for (int i = 0; i < forward; i++) {
    Node *c = g->nodes[i];
    if (c->op != OP_conv2d || !direct_conv(c) || (c->fused_act && !act_grad(c->fused_act))) continue;
    Uses *u = graph_uses(g);
    Node *m = NULL, *mb = NULL;        // the pool, and its backward reading c
    bool other = false;
    for (int k = 0; k < u[c->id].n; k++) {
      Node *r = u[c->id].nodes[k];
      if (r->op == OP_maxpool2d && !m) m = r;
      else if (r->op == OP_maxpool2d_bwd && !mb && r->in[0] == c) mb = r;
      else other = true;
    }
    if (other || !m || !tiling_pool(m)) continue;
    Node *dw = NULL, *db = NULL;       // what reads the convolution's gradient
    if (mb) {
      if (mb->in[1] != m || mb->fused_act != act_grad(c->fused_act)) continue;
      for (int k = 0; k < u[mb->id].n; k++) {
        Node *r = u[mb->id].nodes[k];
        if (r->op == OP_conv2d_bwd_filter && !dw && r->in[1] == mb && r->in[0] == c->in[0]) dw = r;
        else if (r->op == OP_bias_grad && !db && c->in[2]) db = r;
        else other = true;
      }
      if (other || !dw) continue;
    }
    c->op = OP_conv2d_pool;
    c->pool = m->win;
    node_done(c);
    graph_replace_uses(g, m, c);
    c->name = xprintf("%s_maxpool", c->name);
    if (mb) {
      // dw reads only forward values and dp, which precede mb and so the bias gradient:
      // it can take the bias gradient's place, and the view of its aux right after it.
      dw->op = OP_conv2d_pool_bwd_filter;
      dw->in[1] = mb->in[2];
      dw->in[2] = c;
      dw->pool = m->win;
      dw->fused_act = mb->fused_act;
      node_done(dw);
      dw->name = xprintf("%s_maxpool", dw->name);
      if (db) {
        if (dw->id > db->id) graph_move_before(g, dw, db);
        Node *v = node_new(g, OP_aux_view, xprintf("%s_of_dw", db->name), db->layer, dw, NULL);
        v->shape = db->shape;
        node_done(v);
        graph_move_before(g, v, db);
        graph_replace_uses(g, db, v);
      }
    }
    fused++;
  }
  return fused;
}
