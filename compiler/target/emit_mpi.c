// emit_mpi.c — what `nnc build --mpi` adds to the C target's program: data-parallel
// training over MPI ranks through include/nn_mpi.h (runtime/mpi.c, libnnrt_mpi.a).
//
// Needs: a planned, compiled graph and Program.mpi set. Guarantees: every trainable
// weight's gradient is registered with the runtime in the order the backward pass
// completes it, and nnc_backward announces each one right after the node that finishes
// it, so the runtime's bucketed MPI_Iallreduce overlaps the rest of the backward pass;
// the train step waits for the reduction (the mean over every rank's samples) before the
// optimizer update, so every rank holds the same weights. Without --mpi nothing here is
// printed and the program has no MPI in it.
#include "target.h"

#include <stdlib.h>

#define P(...) fprintf(e->out, __VA_ARGS__)

// The backward position after which gradient node gr holds its final value: its own
// kernel, else (a view) the kernel of the node whose storage it is. n_bwd if it is never
// written in the backward pass (the runtime then copies it when the pass is over).
static int ready_at(const Plan *pl, const Node *gr) {
  for (const Node *nd = gr; nd; nd = nd->alias)
    for (int i = 0; i < pl->n_bwd; i++)
      if (pl->bwd[i] == nd) return i;
  return pl->n_bwd;
}

typedef struct MpiGrad { const Node *grad; int at; } MpiGrad;

// The trainable weights' gradients (the updates' second input) in completion order.
static int mpi_grads(Emit *e, MpiGrad **out) {
  const Plan *pl = e->plan;
  MpiGrad *gs = xalloc((pl->n_upd + 1) * sizeof *gs);
  int n = 0;
  for (int i = 0; i < pl->n_upd; i++) {
    const Node *gr = pl->upd[i]->in[1];
    MpiGrad g = {gr, ready_at(pl, gr)};
    int k = n++;
    while (k > 0 && gs[k - 1].at > g.at) {  // stable insertion: ties keep the update order
      gs[k] = gs[k - 1];
      k--;
    }
    gs[k] = g;
  }
  *out = gs;
  return n;
}

void emit_mpi_register(Emit *e) {
  MpiGrad *gs;
  int n = mpi_grads(e, &gs);
  P("  // Data parallel (--mpi): the gradients, in the order nnc_backward completes them, and\n"
    "  // the weights no optimizer updates (moving statistics), averaged after each step.\n");
  for (int i = 0; i < n; i++) P("  nn_mpi_add_grad(s->%s, %lld);\n", gs[i].grad->name, (long long)node_elems(gs[i].grad));
  for (int i = 0; i < e->g->n_params; i++) {
    const Node *w = e->g->params[i];
    if (!w->trainable) P("  nn_mpi_add_stat(s->%s, %lld);\n", w->name, (long long)node_elems(w));
  }
}

void emit_mpi_backward_hook(Emit *e, int bwd_index) {
  MpiGrad *gs;
  int n = mpi_grads(e, &gs);
  for (int k = 0; k < n; k++)
    if (gs[k].at == bwd_index) P("  nn_mpi_grad_ready(%d);  // %s\n", k, gs[k].grad->name);
}

void emit_mpi_train_loaded(Emit *e) {
  P("// One optimizer step on this rank's share (n rows, maybe none) of the global batch:\n"
    "// the gradients are averaged over every rank's rows before the update.\n"
    "static float nnc_train_loaded(State *s, int n, nn_rng *rng, float *out) {\n"
    "  s->seed = nn_rng_next(rng);\n  nn_mpi_step_begin(n, &s->seed);\n"
    "  if (n > 0) {\n    nnc_forward_train(s, n);\n    if (out) nnc_store_output(s, n, out);\n"
    "    nnc_backward(s, n);\n  }\n  nn_mpi_reduce();\n"
    "  s->step++;\n  nnc_update(s);\n  return n > 0 ? (float)nnc_batch_loss(s, n) : 0;\n}\n\n");
}
