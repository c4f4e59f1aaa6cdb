// fuse_updates.c — every optimizer update of a step in one kernel.
//
// autodiff gives each trainable weight its own update node, and so the step ends with
// one kernel per weight: a fork and join of the threads (C) or a launch (OpenCL) for
// each, most of them for a bias of a few dozen elements. Here one kernel does them all:
// Graph.update_all, whose members are the update nodes. The members keep their place in
// the graph and the schedule (the memory plan, the MPI gradient buckets, checkpoints
// and backups read them as before); the targets emit the group's kernel instead of
// theirs (runs_in_train_step). What it needs and guarantees: nnc.h.
#include "nnc.h"

#include <string.h>

static bool same_settings(const Node *a, const Node *b) {
  return a->op == b->op && a->slots == b->slots && !memcmp(&a->opt, &b->opt, sizeof a->opt);
}

int fuse_updates(Graph *g) {
  if (!g->differentiated || g->update_all) return 0;
  Node **members = xalloc((g->n + 1) * sizeof *members);
  int n = 0;
  for (int i = 0; i < g->n; i++) {
    Node *u = g->nodes[i];
    if (op_info[u->op].cls != FC_OPTIMIZER) continue;
    if (n && !same_settings(members[0], u)) return 0;   // not one optimizer: leave them
    members[n++] = u;
  }
  if (n < 2) return 0;
  Node *all = xalloc(sizeof *all);
  all->op = OP_update_all;
  all->id = -1;                        // not in g->nodes
  all->layer = -1;
  all->backward = true;
  all->members = members;
  all->n_members = n;
  all->opt = members[0]->opt;
  // "adam_update_all", unless a node is already called that (a layer named so).
  const char *base = xprintf("%s_all", op_info[members[0]->op].name), *name = base;
  for (int i = 0, k = 1; i < g->n; i++)
    if (!strcmp(g->nodes[i]->name, name)) name = xprintf("%s_%d", base, k++), i = -1;
  all->name = name;
  g->update_all = all;
  return n;
}
