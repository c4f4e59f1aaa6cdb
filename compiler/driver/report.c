// report.c — what a built program will hold in memory, printed by `nnc build`.
//
// The figures come from the memory plan (memplan.c) at the batch size the script asks
// for, the convolution workspace from the kernel library's own sizing function, and the
// data from the shapes sema read in the files' headers: what the program allocates, not a
// measurement (the OS adds the executable, the C library and thread stacks).
#include "nnc.h"
#include "nn.h"
#include "nn_kernels.h"

#include <stdlib.h>
#include <unistd.h>

// The largest batch the program's fit/evaluate/predict calls use (main sizes the arena
// for it the same way).
static int64_t max_batch(const Program *p) {
  int64_t b = 1;
  for (int i = 0; i < p->n_actions; i++) {
    const Action *a = &p->actions[i];
    if ((a->kind == A_FIT || a->kind == A_EVALUATE || a->kind == A_PREDICT) && action_batch(a) > b) b = action_batch(a);
  }
  return b;
}

static double data_bytes(const Program *p) {
  static const int size_of[] = {[DT_UINT8] = 1, [DT_FLOAT32] = 4, [DT_FLOAT64] = 8, [DT_INT64] = 8};
  double total = 0;
  for (int i = 0; i < p->n_data; i++) {
    const DataValue *d = &p->data[i];
    if (d->source == DATA_PREDICTION) continue;        // an output, counted by predict's caller
    bool seen = false;                                 // each file is loaded once
    for (int j = 0; j < i && !seen; j++) {
      const DataValue *e = &p->data[j];
      seen = e->source == d->source && e->part == d->part && e->rows == d->rows &&
             (d->source == DATA_DATASET ? e->dataset && d->dataset && !strcmp(e->dataset, d->dataset)
                                        : e->path && d->path && !strcmp(e->path, d->path));
    }
    if (!seen) total += (double)d->rows * (double)shape_size(&d->shape) * size_of[d->dtype];
  }
  return total;
}

// The largest workspace the convolutions among nodes[0..n) need at `batch`.
static size_t nodes_workspace(Node *const *nodes, int n, int64_t batch) {
  size_t work = 0;
  for (int i = 0; i < n; i++) {
    const Node *nd = nodes[i];
    if (!node_needs_conv_work(nd)) continue;
    const Window *a = &nd->win;
    size_t (*elems)(int, int, int, int, int, int, int, int, int, int, int) =
        nd->layout == LAYOUT_BLOCKED ? nnk_conv2d_blocked_work_elems : nnk_conv2d_work_elems;
    size_t w = elems((int)batch, (int)a->h, (int)a->w, (int)a->c, (int)a->kh, (int)a->kw, (int)a->f, (int)a->sh, (int)a->sw,
                     (int)a->oh, (int)a->ow);
    if (w > work) work = w;
  }
  return work;
}

static double workspace_elems(const Graph *g, int64_t batch) { return (double)nodes_workspace(g->nodes, g->n, batch); }

// The batch evaluate, predict and validation run at (the generated nnc_model_create's
// choice, runtime/fit.c's nn_infer_batch): as many samples as fit in the step's
// per-sample region and workspace at `batch`.
static const Plan *report_plan;
static size_t infer_workspace(int n) { return nodes_workspace(report_plan->fwd, report_plan->n_fwd, n); }
static int64_t infer_batch(const Plan *pl, const Graph *g, int64_t batch) {
  if (batch > NN_INFER_BATCH_MAX || pl->infer_batch_elems <= 0) return batch;
  report_plan = pl;
  double budget = (double)pl->batch_elems * batch + workspace_elems(g, batch);
  double need = (double)pl->infer_batch_elems * batch + (double)infer_workspace((int)batch);
  return nn_infer_batch((int)batch, need > budget ? need : budget, pl->infer_batch_elems, infer_workspace);
}

static const char *bytes_text(double b) {
  char buf[32];
  nn_format_bytes(buf, sizeof buf, b);
  return xstrdup(buf);
}

// The arena as planned at `batch`, in bytes: weights, optimizer slots, and everything
// else (activations, gradients, returned scalars) with the buffers shared as planned.
typedef struct Arena { double weights, slots, acts; } Arena;
static Arena planned_arena(const Plan *pl, int64_t batch) {
  double elem = sizeof(float);
  return (Arena){pl->weights_elems * elem, pl->slots_elems * elem,
                 ((double)pl->fixed_elems - pl->slots_begin - pl->slots_elems + (double)pl->batch_elems * batch) * elem};
}

void memory_report(FILE *out, const Program *p, const Graph *g) {
  const Plan *pl = g->plan;
  int64_t batch = max_batch(p);
  double elem = sizeof(float);
  Arena a = planned_arena(pl, batch);
  double unshared = (pl->fixed_unshared - pl->slots_begin - pl->slots_elems) * elem +
                    (double)pl->batch_unshared * batch * elem;
  double work = workspace_elems(g, batch) * elem, data = data_bytes(p);
  fprintf(out, "memory at batch %lld: weights %s, optimizer state %s, activations and gradients %s", (long long)batch,
          bytes_text(a.weights), bytes_text(a.slots), bytes_text(a.acts));
  if (pl->reused) fprintf(out, " (%s unshared)", bytes_text(unshared));
  fprintf(out, ", workspace %s, data %s; total %s; inference at batch %lld in the same memory\n", bytes_text(work),
          bytes_text(data), bytes_text(a.weights + a.slots + a.acts + work + data),
          (long long)infer_batch(pl, g, batch));
}

int memory_check(const Program *p, const Graph *g, double limit_bytes) {
  const Plan *pl = g->plan;
  int64_t batch = max_batch(p);
  // The plan's int64 figures are exact unless the buffers, summed unshared, pass 2^62
  // elements; summed here in double first to know.
  double weights = 0, slots = 0, other = 0, per_sample = 0;
  for (int i = 0; i < g->n_params; i++) weights += (double)node_elems(g->params[i]);
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (op_info[nd->op].cls == FC_OPTIMIZER) slots += (double)node_aux_elems(nd);
    else if (node_aux_elems(nd)) *(nd->aux_batched ? &per_sample : &other) += (double)node_aux_elems(nd);
    if (!nd->alias && nd->op != OP_param && nd->shape.rank > 0) *(nd->batched ? &per_sample : &other) += (double)node_elems(nd);
  }
  double elem = sizeof(float), acts = (other + per_sample * batch) * elem;
  bool wraps = (weights + slots + other + per_sample * batch) * elem >= 0x1p62;
  if (!wraps) {   // exact: the arena as planned, buffers shared
    Arena a = planned_arena(pl, batch);
    weights = a.weights, slots = a.slots, acts = a.acts;
  } else {
    weights *= elem, slots *= elem;
  }
  double total = weights + slots + acts + workspace_elems(g, batch) * elem;
  if (limit_bytes <= 0) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    limit_bytes = pages > 0 && page > 0 ? (double)pages * page : 0;
  }
  if (!wraps && (limit_bytes <= 0 || total <= limit_bytes)) return 0;
  fprintf(stderr,
          "nnc: error: the model does not fit in memory: it needs %s at batch %lld: weights %s, optimizer state %s, "
          "activations and gradients %s; %s%s\n",
          bytes_text(total), (long long)batch, bytes_text(weights), bytes_text(slots), bytes_text(acts),
          wraps ? "that is more than a program can address" : "this machine has ", wraps ? "" : bytes_text(limit_bytes));
  return -1;
}

int memory_check_env(const Program *p, const Graph *g) {
  const char *limit = getenv("NNC_MEMORY_LIMIT");
  return g->plan ? memory_check(p, g, limit ? atof(limit) : 0) : 0;
}
