// fuse.c — epilogue fusion: bias and activation into the contraction before them.
//
// Keras's Dense and Conv2D are a contraction, a bias add and an activation: three kernels
// and two extra passes over the layer's output. Here the contraction's epilogue does the
// other two while each output tile is still in cache (nnk_gemm_bias_act,
// nnk_conv2d_fwd_bias_act and their OpenCL twins). The fused node keeps the
// contraction's place and takes the activation's uses; its value is the activation's.
#include "nnc.h"

#include <string.h>

// The activations the kernels' epilogue computes (NN_EPI_* in both kernel libraries).
// Each one's gradient must read the output y, not the input x: the fused node no longer
// keeps x.
static bool epilogue_act(OpKind op) { return op == OP_relu || op == OP_sigmoid || op == OP_tanh; }

// The single node that reads nd, or NULL (none, or several).
static Node *only_use(const Uses *u, const Node *nd) { return u[nd->id].n == 1 ? u[nd->id].nodes[0] : NULL; }

int fuse_epilogues(Graph *g) {
  int fused = 0;
  int forward = g->differentiated ? g->stage_fwd_end : g->n;
  for (int i = 0; i < forward; i++) {
    Node *c = g->nodes[i];
    bool contraction = (c->op == OP_matmul && !c->ta) || c->op == OP_conv2d;
    if (!contraction || c->in[2] || c->fused_act) continue;
    Uses *u = graph_uses(g);
    Node *b = only_use(u, c);
    if (!b || b->op != OP_bias_add || b->in[0] != c) continue;
    Node *a = only_use(u, b);
    bool with_act = a && epilogue_act(a->op) && a->in[0] == b;
    c->in[2] = b->in[1];
    if (c->in[2]->id > c->id) graph_move_before(g, c->in[2], c);   // a param: no inputs of its own
    graph_replace_uses(g, b, c);
    const char *name = xprintf("%s_bias", c->name);
    if (with_act) {
      c->fused_act = a->op;
      graph_replace_uses(g, a, c);
      name = xprintf("%s_%s", name, op_info[a->op].name);
    }
    // The name says what the kernel does (dense_fwd_matmul_bias_relu); b and a keep
    // theirs until graph_remove_dead drops them.
    c->name = name;
    fused++;
  }
  return fused;
}
