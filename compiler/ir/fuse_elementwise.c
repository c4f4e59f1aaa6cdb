// fuse_elementwise.c — chains of pointwise ops in one loop.
//
// Each pointwise op is a kernel that reads its inputs from memory and writes its value
// back: a Dropout after an activation costs, in the backward pass, dropout_bwd writing
// a gradient that relu_bwd reads right back (and on OpenCL a launch each). Where one op
// is the only reader of another's value, both become one ewise_chain node that computes
// the first value and feeds it to the second without storing it; chains grow by
// merging pairs until no pair is left. What it needs and guarantees: nnc.h.
#include "nnc.h"

#include <string.h>

// The pointwise ops a chain can hold: each has an element function in both kernel
// libraries (NN_EW_* in kernels.c's ew_code). Dropout itself is not one: its mask is
// state its gradient reads; nor bias_add (a broadcast) or l1l2_grad (it accumulates).
static bool chainable(OpKind op) {
  switch (op) {
  case OP_relu: case OP_sigmoid: case OP_tanh: case OP_gelu: case OP_silu: case OP_elu: case OP_selu:
  case OP_leaky_relu: case OP_softplus: case OP_hard_sigmoid:
  case OP_relu_bwd: case OP_sigmoid_bwd: case OP_tanh_bwd: case OP_gelu_bwd: case OP_silu_bwd: case OP_elu_bwd:
  case OP_selu_bwd: case OP_leaky_relu_bwd: case OP_softplus_bwd: case OP_hard_sigmoid_bwd:
  case OP_dropout_bwd: case OP_add: case OP_ewise_chain:
    return true;
  default:
    return false;
  }
}

// The ops a node computes: its chain, or itself.
static Node **ops_of(Node **self) { return (*self)->op == OP_ewise_chain ? (*self)->chain : self; }
static int n_ops(const Node *nd) { return nd->op == OP_ewise_chain ? nd->n_chain : 1; }

// Whether p's value may live only inside a chain with c, its one reader.
static bool absorbable(const Graph *g, const Uses *u, const Node *p, const Node *c) {
  return chainable(p->op) && u[p->id].n == 1 && u[p->id].nodes[0] == c && p != g->output && !p->alias &&
         !p->computed_by && node_aux_elems(p) == 0 && p->batched == c->batched &&
         node_elems(p) == node_elems(c) && p->backward == c->backward;
}

// The graph inputs of the merged chain: p's, then c's other than p. -1 if more than MAX_IN.
static int chain_inputs(const Node *p, const Node *c, Node **in) {
  int n = 0;
  const Node *from[2] = {p, c};
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < MAX_IN; k++) {
      Node *x = from[s]->in[k];
      if (!x || x == p) continue;
      bool seen = false;
      for (int j = 0; j < n; j++) seen |= in[j] == x;
      if (seen) continue;
      if (n == MAX_IN) return -1;
      in[n++] = x;
    }
  return n;
}

// Whether p's value is read by c's first op only: in a chain every op but the first
// reads the value of the op before it, and nothing else of the chain's.
static bool read_first(Node *c, const Node *p) {
  Node **ops = ops_of(&c);
  for (int j = 0; j < n_ops(c); j++)
    for (int k = 0; k < MAX_IN; k++)
      if (ops[j]->in[k] == p && j > 0) return false;
  return true;
}

// One chain node for p then c, in c's place; p and c are left dead.
static Node *merge(Graph *g, Node *p, Node *c) {
  Node *in[MAX_IN] = {0};
  if (!read_first(c, p) || chain_inputs(p, c, in) < 0) return NULL;
  int np = n_ops(p), nc = n_ops(c);
  Node **ops = xalloc((np + nc) * sizeof *ops);
  memcpy(ops, ops_of(&p), np * sizeof *ops);
  memcpy(ops + np, ops_of(&c), nc * sizeof *ops);
  // The op of c that read p now reads p's last op: inside the chain, the value before.
  for (int k = 0; k < MAX_IN; k++)
    if (ops[np]->in[k] == p) ops[np]->in[k] = ops[np - 1];
  // Named after what it computes: the first op's node, then the other ops.
  const char *name = ops[0]->name;
  for (int k = 1; k < np + nc; k++) name = xprintf("%s_%s", name, op_info[ops[k]->op].name);
  Node *ch = node_new(g, OP_ewise_chain, name, c->layer, in[0], in[1]);
  for (int k = 2; k < MAX_IN; k++) ch->in[k] = in[k];
  ch->backward = c->backward;
  ch->chain = ops;
  ch->n_chain = np + nc;
  node_done(ch);
  graph_move_before(g, ch, c);
  graph_replace_uses(g, c, ch);
  return ch;
}

int fuse_elementwise(Graph *g) {
  int merged = 0;
  for (bool changed = true; changed;) {
    changed = false;
    Uses *u = graph_uses(g);
    for (int i = 0; i < g->n && !changed; i++) {
      Node *c = g->nodes[i];
      if (!chainable(c->op) || c->alias) continue;
      for (int k = 0; k < MAX_IN && !changed; k++) {
        Node *p = c->in[k];
        if (p && absorbable(g, u, p, c) && merge(g, p, c)) changed = true, merged++;
      }
    }
    if (changed) graph_remove_dead(g);
  }
  // Chains, not merges: count the chain nodes.
  int chains = 0;
  for (int i = 0; i < g->n; i++) chains += g->nodes[i]->op == OP_ewise_chain;
  return merged ? chains : 0;
}
