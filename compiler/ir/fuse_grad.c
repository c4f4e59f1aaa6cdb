// fuse_grad.c — gradient fusion: an activation's backward op into the op that produced
// its incoming gradient.
//
// Backward through Dense(activation=...) or Conv2D(activation=...) runs the activation's
// gradient (relu_bwd: dx = y > 0 ? dy : 0) as a pass of its own over a tensor that the
// op before it has just written: a max-pool's backward, a matmul's data gradient or a
// convolution's. Here that op applies the activation's derivative itself, as each value
// is finished (nnk_maxpool2d_bwd_act, nnk_gemm_act_grad, nnk_conv2d_bwd_data_act and
// their OpenCL twins), with the backward kernel's expressions term for term, so the
// result has the unfused graph's bits.
//
// Needs: a differentiated graph after fuse_epilogues. Guarantees: the producer keeps its
// place, takes the activation gradient's uses and value, and records the activation in
// fused_act as the _bwd op (relu_bwd, sigmoid_bwd, tanh_bwd): the ones whose gradient
// reads the activation's output y. matmul reads y as in[3], conv2d_bwd_data as in[2];
// a max-pool's input already is y. A reshape between them (Flatten's gradient) is looked
// through: it stays a view of the producer, whose elements are y's in the same order.
#include "nnc.h"

// The backward ops whose derivative the kernels' gradient epilogue computes (NN_EPI_*).
static bool fusable_grad(OpKind op) { return op == OP_relu_bwd || op == OP_sigmoid_bwd || op == OP_tanh_bwd; }

// Where the producer p reads y, or -1 where it cannot take the gradient: a max-pool whose
// input is y itself; a matmul that is a data gradient (dy · Wᵀ: not transposed, no bias);
// a convolution's data gradient.
static int y_slot(const Node *p, const Node *y) {
  if (p->fused_act) return -1;
  switch (p->op) {
  case OP_maxpool2d_bwd: return p->in[0] == y ? 0 : -1;
  case OP_matmul: return !p->ta && p->tb && !p->in[2] && !p->in[3] ? 3 : -1;
  case OP_conv2d_bwd_data: return !p->in[2] ? 2 : -1;
  default: return -1;
  }
}

int fuse_gradients(Graph *g) {
  int fused = 0;
  if (!g->differentiated) return 0;
  for (int i = g->stage_fwd_end; i < g->n; i++) {
    Node *a = g->nodes[i];
    if (!fusable_grad(a->op)) continue;
    Node *y = a->in[0], *p = a->in[1], *view = NULL;
    Uses *u = graph_uses(g);
    if (u[p->id].n != 1) continue;     // another reader needs the gradient before the activation
    if (p->op == OP_reshape) {         // Flatten's gradient: a view of the producer's storage
      view = p, p = p->in[0];
      if (u[p->id].n != 1) continue;
    }
    int slot = y_slot(p, y);
    if (slot < 0) continue;
    if (slot) p->in[slot] = y;         // y precedes a: it is a forward value or earlier;
    p->fused_act = a->op;              //   the kernels read it with the producer's layout
    graph_replace_uses(g, a, view ? view : p);
    p->name = xprintf("%s_%s", p->name, op_info[a->op].name);
    fused++;
  }
  return fused;
}
