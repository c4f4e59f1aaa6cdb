// plan.c — schedule and memory plan: the last passes before a target prints code.
//
// Both targets read the same plan, so a buffer has the same offset in the C arena and
// in the OpenCL device arena, and a later reuse pass changes both at once.
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

static int64_t round16(int64_t k) { return (k + 15) / 16 * 16; }

void plan_memory(Graph *g) {
  Plan *pl = plan_of(g);
  if (!pl->fwd) internal_error("plan", "memory plan before schedule");
  pl->off = xalloc(g->n * sizeof *pl->off);
  pl->aux_off = xalloc(g->n * sizeof *pl->aux_off);
  pl->in_batch = xalloc(g->n * sizeof *pl->in_batch);
  pl->aux_in_batch = xalloc(g->n * sizeof *pl->aux_in_batch);
  pl->scalar = xalloc(g->n * sizeof *pl->scalar);
  for (int i = 0; i < g->n; i++) pl->off[i] = pl->aux_off[i] = -1, pl->scalar[i] = -1;
  int64_t fixed = 0, batch = 0;
  for (int i = 0; i < g->n_params; i++) {
    pl->off[g->params[i]->id] = fixed;
    fixed += round16(node_elems(g->params[i]));
  }
  pl->weights_elems = pl->slots_begin = fixed;
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    if (op_info[nd->op].cls == FC_OPTIMIZER && node_aux_elems(nd)) {
      pl->aux_off[i] = fixed;
      fixed += round16(node_aux_elems(nd));
    }
  }
  pl->slots_elems = fixed - pl->slots_begin;
  // Scalars the kernels return (the loss, each regularizer term), side by side so that
  // a device target reads them back in one transfer.
  pl->scalars_begin = fixed;
  pl->n_scalars = 0;
  for (int i = 0; i < g->n; i++)
    if (op_info[g->nodes[i]->op].cls == FC_LOSS) pl->scalar[i] = pl->n_scalars++;
  fixed += round16(pl->n_scalars);
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    bool storage = !nd->alias && nd->op != OP_param && nd->shape.rank > 0;
    if (storage && nd->batched) pl->off[i] = batch, pl->in_batch[i] = true, batch += round16(node_elems(nd));
    else if (storage) pl->off[i] = fixed, fixed += round16(node_elems(nd));
    if (op_info[nd->op].cls == FC_OPTIMIZER || !node_aux_elems(nd)) continue;
    if (nd->aux_batched) pl->aux_off[i] = batch, pl->aux_in_batch[i] = true, batch += round16(node_aux_elems(nd));
    else pl->aux_off[i] = fixed, fixed += round16(node_aux_elems(nd));
  }
  pl->fixed_elems = fixed;
  pl->batch_elems = batch;
}
