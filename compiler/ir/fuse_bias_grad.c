// fuse_bias_grad.c — a layer's bias gradient summed by its weight gradient.
//
// Backward through Conv2D or Dense, the bias gradient db[f] = Σ_rows dy[:, f] is a pass of
// its own over dy, which the weight gradient (the filter gradient's im2col GEMM, its direct
// first-layer form, or a Dense layer's xᵀ·dy) streams through anyway. Here the weight
// gradient sums dy's columns as it goes (nnk_conv2d_bwd_filter_bias,
// nnk_gemm_tn_bias_grad; nncl_ on OpenCL): the GEMM as it packs dy's panels, the direct kernel per output
// row, in double in row order, as nnk_bias_grad does — so the same bits.
//
// Needs: a differentiated graph after the other fusions of the backward pass (the
// weight gradient and the bias gradient read the same dy node). Guarantees: the weight
// gradient keeps its place and value and names the bias_grad node in `grad` (its kernel
// fills it, as a loss fills its loss_grad); the bias_grad node moves to just after it
// (every other node keeps its order), keeps its uses and its storage, and is marked
// computed_by the weight gradient: its own kernel never runs. Both targets: the OpenCL
// library's nncl_gemm_tn_bias_grad and nncl_conv2d_bwd_filter_bias sum dy's columns in
// float in row order, the bits of its own nncl_bias_grad.
#include "nnc.h"

// The weight gradient that can sum dy for this bias gradient, or NULL.
static Node *weight_grad_of(const Graph *g, const Uses *u, const Node *b) {
  const Node *dy = b->in[0];
  for (int k = 0; k < u[dy->id].n; k++) {
    Node *w = u[dy->id].nodes[k];
    if (w->in[1] != dy || w->grad || w->layer != b->layer) continue;
    if (w->op == OP_conv2d_bwd_filter) return w;
    if (w->op == OP_matmul && w->ta && !w->tb && !w->in[2] && !w->in[3] && !w->fused_act) return w;
  }
  return NULL;
}

// Whether nothing before w reads b (its readers, the update and a regularizer's sum, come
// after every backward node), so that b may move to just after w.
static bool later_readers_only(const Graph *g, const Uses *u, const Node *b, const Node *w) {
  for (int k = 0; k < u[b->id].n; k++)
    if (u[b->id].nodes[k]->id <= w->id) return false;
  return true;
}

int fuse_bias_grads(Graph *g) {
  int fused = 0;
  if (!g->differentiated) return 0;
  for (int i = g->stage_fwd_end; i < g->n; i++) {
    Node *b = g->nodes[i];
    if (b->op != OP_bias_grad || b->computed_by) continue;
    Uses *u = graph_uses(g);
    Node *w = weight_grad_of(g, u, b);
    if (!w || !later_readers_only(g, u, b, w)) continue;
    // The bias gradient's buffer is written when the weight gradient runs: b goes to just
    // after its writer, the nodes between moving up past it, so the kernels keep the
    // order autodiff gave them (the data gradient before the weight gradient: cache
    // state, and the memory plan, stay as unfused).
    while (b->id < w->id) graph_move_before(g, g->nodes[b->id + 1], b);
    w->grad = b;
    b->computed_by = w;
    w->name = xprintf("%s_bias", w->name);
    fused++;
  }
  return fused;
}
