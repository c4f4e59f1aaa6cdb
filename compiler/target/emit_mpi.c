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
#include <string.h>

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

static bool on_device(const Emit *e) { return strcmp(e->d->name, "opencl") == 0; }

// OpenCL: where a node's values live in the device arena: a buffer (element offset,
// per-sample region or not) and an element offset into it, following views to the node
// whose storage they are.
static void arena_place(const Plan *pl, const Node *nd, int64_t *off, bool *batched, int64_t *extra) {
  *extra = 0;
  while (pl->off[nd->id] < 0 && nd->alias) {
    if (nd->op == OP_aux_view) {
      *off = pl->aux_off[nd->alias->id];
      *batched = pl->aux_in_batch[nd->alias->id];
      *extra = nd->alias_offset;
      return;
    }
    nd = nd->alias;
  }
  *off = pl->off[nd->id];
  *batched = pl->in_batch[nd->id];
}

// OpenCL: the statement that copies node nd's values between the device arena and
// host, at element `host_at` of s->mpi_host.
static const char *device_copy(Emit *e, const Node *nd, int64_t host_at, bool to_device) {
  int64_t off, extra;
  bool batched;
  arena_place(e->plan, nd, &off, &batched, &extra);
  return xprintf("nn_cl_%s(s->cl, s->arena, nnc_at(s, %lld, %d) + %lld * sizeof(nn_real), %lld * sizeof(nn_real), "
                 "s->mpi_host + %lld);",
                 to_device ? "write" : "read", (long long)off, batched, (long long)extra, (long long)node_elems(nd),
                 (long long)host_at);
}

// The C target registers the gradients themselves; the OpenCL target host copies of them
// (s->mpi_host: the gradients in completion order, then the statistics), made only when
// there are several ranks.
void emit_mpi_register(Emit *e) {
  MpiGrad *gs;
  int n = mpi_grads(e, &gs);
  bool dev = on_device(e);
  int64_t at = 0;
  P("  // Data parallel (--mpi): the gradients, in the order nnc_backward completes them, and\n"
    "  // the weights no optimizer updates (moving statistics), averaged after each step.\n");
  if (dev) {
    for (int i = 0; i < n; i++) at += node_elems(gs[i].grad);
    for (int i = 0; i < e->g->n_params; i++)
      if (!e->g->params[i]->trainable) at += node_elems(e->g->params[i]);
    P("  if (nn_mpi_size() > 1) {\n    s->mpi_host = calloc(%lld, sizeof(nn_real));\n"
      "    if (!s->mpi_host) {\n      fprintf(stderr, \"error: out of memory\\n\");\n      return NULL;\n    }\n",
      (long long)at + 1);
    at = 0;
  }
  const char *indent = dev ? "    " : "  ";
  for (int i = 0; i < n; i++) {
    long long elems = node_elems(gs[i].grad);
    if (dev) P("%snn_mpi_add_grad(s->mpi_host + %lld, %lld);  // %s\n", indent, (long long)at, elems, gs[i].grad->name);
    else P("%snn_mpi_add_grad(s->%s, %lld);\n", indent, gs[i].grad->name, elems);
    at += elems;
  }
  for (int i = 0; i < e->g->n_params; i++) {
    const Node *w = e->g->params[i];
    if (w->trainable) continue;
    if (dev) P("%snn_mpi_add_stat(s->mpi_host + %lld, %lld);  // %s\n", indent, (long long)at, (long long)node_elems(w), w->name);
    else P("%snn_mpi_add_stat(s->%s, %lld);\n", indent, w->name, (long long)node_elems(w));
    at += node_elems(w);
  }
  if (dev) P("  }\n");
}

void emit_mpi_backward_hook(Emit *e, int bwd_index) {
  MpiGrad *gs;
  int n = mpi_grads(e, &gs);
  int64_t at = 0;
  for (int k = 0; k < n; k++) {
    if (gs[k].at == bwd_index) {
      if (on_device(e)) P("  if (s->mpi_host) %s\n", device_copy(e, gs[k].grad, at, false));
      P("  nn_mpi_grad_ready(%d);  // %s\n", k, gs[k].grad->name);
    }
    at += node_elems(gs[k].grad);
  }
}

// OpenCL: copies of the moving statistics, which follow the gradients in s->mpi_host.
static void emit_stats_copies(Emit *e, int64_t at, bool to_device) {
  for (int i = 0; i < e->g->n_params; i++) {
    const Node *w = e->g->params[i];
    if (w->trainable) continue;
    P("  %s\n", device_copy(e, w, at, to_device));
    at += node_elems(w);
  }
}

// OpenCL: the statistics come to the host before the reduction; the averaged gradients
// and statistics go back to the device before the update.
static void emit_device_exchange(Emit *e) {
  MpiGrad *gs;
  int n = mpi_grads(e, &gs);
  int64_t grads_elems = 0;
  for (int k = 0; k < n; k++) grads_elems += node_elems(gs[k].grad);
  P("static void nnc_mpi_exchange(State *s) {\n  if (!s->mpi_host) return;\n");
  emit_stats_copies(e, grads_elems, false);
  P("  nn_mpi_reduce();\n");
  int64_t at = 0;
  for (int k = 0; k < n; k++) {
    P("  %s\n", device_copy(e, gs[k].grad, at, true));
    at += node_elems(gs[k].grad);
  }
  emit_stats_copies(e, grads_elems, true);
  P("}\n\n");
}

void emit_mpi_train_loaded(Emit *e) {
  bool dev = on_device(e);
  if (dev) emit_device_exchange(e);
  P("// One optimizer step on this rank's share (n rows, maybe none) of the global batch:\n"
    "// the gradients are averaged over every rank's rows before the update.\n"
    "static float nnc_train_loaded(State *s, int n, nn_rng *rng, float *out) {\n"
    "  s->seed = nn_rng_next(rng);\n  nn_mpi_step_begin(n, &s->seed);\n"
    "  if (n > 0) {\n    nnc_forward_train(s, n);\n    if (out) nnc_store_output(s, n, out);\n"
    "    nnc_backward(s, n);\n  }\n  %s\n"
    "  s->step++;\n  nnc_update(s);\n  return n > 0 ? (float)nnc_batch_loss(s, n) : 0;\n}\n\n",
    dev ? "nnc_mpi_exchange(s);" : "nn_mpi_reduce();");
}
