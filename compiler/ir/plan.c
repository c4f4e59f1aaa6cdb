// plan.c — the schedule: which kernels run in which phase of the step, in order.
//
// The memory plan (memplan.c) reads this order to know when each buffer is alive.
#include "nnc.h"

static Plan *plan_of(Graph *g) {
  if (!g->plan) g->plan = xalloc(sizeof *g->plan);
  return g->plan;
}

// Forward nodes run in graph order; backward nodes after them; the updates last, so
// that every gradient is complete before any weight changes.
void schedule(Graph *g) {
  Plan *pl = plan_of(g);
  pl->fwd = xalloc(g->n * sizeof *pl->fwd);
  pl->bwd = xalloc(g->n * sizeof *pl->bwd);
  pl->upd = xalloc(g->n * sizeof *pl->upd);
  pl->n_fwd = pl->n_bwd = pl->n_upd = 0;
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    if (!op_has_kernel(nd->op)) continue;
    if (i < g->stage_fwd_end) pl->fwd[pl->n_fwd++] = nd;
    else if (op_info[nd->op].cls == FC_OPTIMIZER) pl->upd[pl->n_upd++] = nd;
    else pl->bwd[pl->n_bwd++] = nd;
  }
}

bool runs_in_train_step(const Graph *g, const Node *nd) {
  if (nd->computed_by) return false;
  return nd == g->update_all || !(g->update_all && op_info[nd->op].cls == FC_OPTIMIZER);
}

int train_step_kernels(const Graph *g, const Node ***out) {
  const Plan *pl = g->plan;
  const Node **k = xalloc((pl->n_fwd + pl->n_bwd + pl->n_upd + 1) * sizeof *k);
  int n = 0;
  Node **phases[] = {pl->fwd, pl->bwd, pl->upd};
  int counts[] = {pl->n_fwd, pl->n_bwd, pl->n_upd};
  for (int ph = 0; ph < 3; ph++)
    for (int i = 0; i < counts[ph]; i++)
      if (runs_in_train_step(g, phases[ph][i])) k[n++] = phases[ph][i];
  if (g->update_all) k[n++] = g->update_all;
  *out = k;
  return n;
}
