// memplan.c — the memory plan: every buffer's offset in one arena, reused by liveness.
//
// Needs schedule's plan (the order the step runs its kernels in). Guarantees: weights
// contiguous from 0, optimizer slots contiguous after them (zeroed in one fill), the
// returned scalars side by side, 16-element alignment; and two buffers share memory only
// when no kernel of the step — forward, backward, update, or the inference pass, which
// runs the forward list — can see both alive. Both targets read this plan, so a buffer
// has the same offset in the C arena and the OpenCL device arena.
//
// Liveness is over positions in the step: 0 is the batch being loaded, then one position
// per scheduled kernel in phase order, then `end` (the host reading the output). The
// batch's inputs and labels live from 0 to `end`. A buffer
// lives from its first write to its last read, both ends included, so a kernel never
// writes into memory one of its own inputs occupies. Buffers are then placed greedily,
// the largest first, at the lowest offset free for their whole lifetime (the
// greedy-by-size placement TFLite's arena planner uses).
#include "nnc.h"

#include <stdlib.h>

typedef struct Buf {
  int same_as;           // >= 0: shares that buffer's memory (an in-place op's output)
  int64_t size;          // elements (per sample in the batch region)
  bool batch;            // per-sample region (× max_batch) or fixed region
  int64_t *off;          // where the offset goes: &plan->off[id] or &plan->aux_off[id]
  int first, last;       // lifetime in step positions; first > last: never touched
  int order;             // creation order, to break ties deterministically
} Buf;

typedef struct Buffers {
  Buf *b;
  int n;
  int *main_of, *aux_of; // per node id: its buffer's index, or -1
} Buffers;

// Offsets saturate instead of wrapping: a model too large to address gets a plan all the
// same, and memory_check (report.c, sums in double) refuses it with its sizes.
static int64_t add_sat(int64_t a, int64_t b) {
  int64_t s;
  return __builtin_add_overflow(a, b, &s) ? INT64_MAX : s;
}
static int64_t round16(int64_t k) { return k > INT64_MAX - 15 ? INT64_MAX : (k + 15) / 16 * 16; }

static int add_buf(Buffers *bs, int64_t size, bool batch, int64_t *off) {
  bs->b[bs->n] = (Buf){-1, size, batch, off, 1 << 30, -1, bs->n};
  return bs->n++;
}

// The buffer a node's value lives in: views and in-place ops (bias_add) resolve to the
// node that owns the storage; an aux_view to that node's aux buffer.
static int storage_of(const Buffers *bs, const Node *x) {
  while (x->alias && x->op != OP_aux_view) x = x->alias;
  if (x->op == OP_aux_view) return bs->aux_of[x->alias->id];
  return bs->main_of[x->id];
}

static void touch(Buffers *bs, int k, int pos) {
  if (k < 0) return;
  Buf *b = &bs->b[k];
  if (pos < b->first) b->first = pos;
  if (pos > b->last) b->last = pos;
}

// A kernel reads its inputs' values and, conservatively, the aux buffers of every node
// on their alias chains (dropout's mask, batchnorm's saved statistics are read that way).
static void touch_read(Buffers *bs, const Node *x, int pos) {
  touch(bs, storage_of(bs, x), pos);
  for (; x; x = x->alias) touch(bs, bs->aux_of[x->id], pos);
}

// A kernel writes its own value and aux, and the node its `grad` names: a loss its
// gradient (the loss_grad node the backward pass starts from is filled by the forward loss
// kernel), a weight gradient its layer's bias gradient (fuse_bias_grad.c).
static void touch_node(Buffers *bs, const Node *nd, int pos) {
  touch(bs, storage_of(bs, nd), pos);
  touch(bs, bs->aux_of[nd->id], pos);
  if (nd->grad) touch(bs, storage_of(bs, nd->grad), pos);
  for (int j = 0; j < MAX_IN; j++)
    if (nd->in[j]) touch_read(bs, nd->in[j], pos);
}

static void liveness(Buffers *bs, const Graph *g, const Plan *pl) {
  int pos = 0;
  Node **phases[] = {pl->fwd, pl->bwd, pl->upd};
  int counts[] = {pl->n_fwd, pl->n_bwd, pl->n_upd};
  int end = counts[0] + counts[1] + counts[2] + 1;
  // The loaded batch stays whole for the whole step: a caller may run the step again on
  // it (gradient checks, nnc bench, a device that gathers once per batch).
  touch(bs, storage_of(bs, g->x), 0), touch(bs, storage_of(bs, g->x), end);
  if (g->y) touch(bs, storage_of(bs, g->y), 0), touch(bs, storage_of(bs, g->y), end);
  for (int ph = 0; ph < 3; ph++)
    for (int i = 0; i < counts[ph]; i++) touch_node(bs, phases[ph][i], ++pos);
  touch(bs, storage_of(bs, g->output), end);
  // What no kernel touches (nothing, in a well-formed graph) keeps memory of its own.
  for (int k = 0; k < bs->n; k++)
    if (bs->b[k].first > bs->b[k].last) bs->b[k].first = 0, bs->b[k].last = end;
}

// An elementwise op (out[i] from in[i] only) may write over its first input when that
// input's value dies at this op: the activation overwrites the convolution's output, the
// activation's gradient the incoming gradient's place. Saves one buffer per such op.
static void share_in_place(Buffers *bs, const Plan *pl) {
  Node **phases[] = {pl->fwd, pl->bwd};
  int counts[] = {pl->n_fwd, pl->n_bwd};
  for (int ph = 0, pos = 0; ph < 2; ph++)
    for (int i = 0; i < counts[ph]; i++) {
      const Node *nd = phases[ph][i];
      pos++;
      int out = bs->main_of[nd->id], in = nd->in[0] ? storage_of(bs, nd->in[0]) : -1;
      if (op_info[nd->op].cls != FC_ELEMENTWISE || out < 0 || in < 0 || in == out) continue;
      while (bs->b[in].same_as >= 0) in = bs->b[in].same_as;
      Buf *o = &bs->b[out], *x = &bs->b[in];
      if (x->size != o->size || x->batch != o->batch || x->last != pos || o->first != pos) continue;
      o->same_as = in;
      x->last = o->last;
    }
}

static int by_size_desc(const void *pa, const void *pb) {
  const Buf *a = *(Buf *const *)pa, *b = *(Buf *const *)pb;
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  return a->order - b->order;
}

// Places the pool's buffers from `base`; returns the pool's end.
static int64_t place(Buffers *bs, bool batch, int64_t base, bool reuse) {
  Buf **pool = xalloc((bs->n + 1) * sizeof *pool);
  int n = 0;
  for (int k = 0; k < bs->n; k++)
    if (bs->b[k].batch == batch && (!reuse || bs->b[k].same_as < 0)) pool[n++] = &bs->b[k];
  int64_t top = base;
  if (!reuse) {                        // one buffer after another, in graph order
    for (int i = 0; i < n; i++) *pool[i]->off = top, top = add_sat(top, round16(pool[i]->size));
    return top;
  }
  qsort(pool, n, sizeof *pool, by_size_desc);
  for (int i = 0; i < n; i++) {
    Buf *b = pool[i];
    int64_t at = base, len = round16(b->size);
    // Lowest offset clear of every placed buffer alive at the same time: bump past each
    // overlapping one until a pass finds none (placed buffers are few; this is O(n²)).
    for (bool moved = true; moved;) {
      moved = false;
      for (int j = 0; j < i; j++) {
        Buf *o = pool[j];
        bool alive_together = b->first <= o->last && o->first <= b->last;
        int64_t o_end = add_sat(*o->off, round16(o->size));
        bool overlap = at < o_end && *o->off < add_sat(at, len);
        if (alive_together && overlap && at != o_end) at = o_end, moved = true;
      }
    }
    *b->off = at;
    if (add_sat(at, len) > top) top = add_sat(at, len);
  }
  for (int k = 0; k < bs->n; k++) {    // in-place outputs: their input's offset
    int root = k;
    while (bs->b[root].same_as >= 0) root = bs->b[root].same_as;
    if (reuse && bs->b[k].batch == batch && root != k) *bs->b[k].off = *bs->b[root].off;
  }
  return top;
}

// The inference pass's per-sample region: the batch's inputs and labels (alive from
// loading to the output's read, as in the step), then each forward node's value and
// aux, alive from its first write to its last read within the forward list. Without
// reuse, one after another as the step's are.
static void plan_infer_memory(Graph *g, Plan *pl, bool reuse) {
  pl->infer_off = xalloc(g->n * sizeof *pl->infer_off);
  pl->infer_aux_off = xalloc(g->n * sizeof *pl->infer_aux_off);
  Buffers bs = {xalloc((2 * g->n + 1) * sizeof *bs.b), 0, xalloc(g->n * sizeof(int)), xalloc(g->n * sizeof(int))};
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    pl->infer_off[i] = pl->infer_aux_off[i] = -1;
    bs.main_of[i] = pl->off[i] >= 0 && pl->in_batch[i] ? add_buf(&bs, node_elems(nd), true, &pl->infer_off[i]) : -1;
    // A COLS convolution (layout.c) keeps its matrix only in training.
    bool aux = pl->aux_off[i] >= 0 && pl->aux_in_batch[i] && nd->layout != LAYOUT_COLS;
    bs.aux_of[i] = aux ? add_buf(&bs, node_aux_elems(nd), true, &pl->infer_aux_off[i]) : -1;
  }
  int end = pl->n_fwd + 1;
  touch(&bs, storage_of(&bs, g->x), 0), touch(&bs, storage_of(&bs, g->x), end);
  if (g->y) touch(&bs, storage_of(&bs, g->y), 0), touch(&bs, storage_of(&bs, g->y), end);
  for (int i = 0; i < pl->n_fwd; i++) touch_node(&bs, pl->fwd[i], i + 1);
  touch(&bs, storage_of(&bs, g->output), end);
  // Only what the pass touches gets a place; the rest keeps -1 (the step's buffers).
  Buffers used = {xalloc((bs.n + 1) * sizeof *used.b), 0, bs.main_of, bs.aux_of};
  for (int k = 0; k < bs.n; k++)
    if (bs.b[k].first <= bs.b[k].last) used.b[used.n++] = bs.b[k];
  pl->infer_batch_elems = place(&used, true, 0, reuse);
}

void plan_memory(Graph *g, bool reuse) {
  Plan *pl = g->plan;
  if (!pl || !pl->fwd) internal_error("plan", "memory plan before schedule");
  pl->off = xalloc(g->n * sizeof *pl->off);
  pl->aux_off = xalloc(g->n * sizeof *pl->aux_off);
  pl->in_batch = xalloc(g->n * sizeof *pl->in_batch);
  pl->aux_in_batch = xalloc(g->n * sizeof *pl->aux_in_batch);
  pl->scalar = xalloc(g->n * sizeof *pl->scalar);
  for (int i = 0; i < g->n; i++) pl->off[i] = pl->aux_off[i] = -1, pl->scalar[i] = -1;
  int64_t fixed = 0;
  for (int i = 0; i < g->n_params; i++) {
    pl->off[g->params[i]->id] = fixed;
    fixed = add_sat(fixed, round16(node_elems(g->params[i])));
  }
  pl->weights_elems = pl->slots_begin = fixed;
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    if (op_info[nd->op].cls == FC_OPTIMIZER && node_aux_elems(nd)) {
      pl->aux_off[i] = fixed;
      fixed = add_sat(fixed, round16(node_aux_elems(nd)));
    }
  }
  pl->slots_elems = fixed - pl->slots_begin;
  // Scalars the kernels return (the loss, each regularizer term), side by side so that
  // a device target reads them back in one transfer.
  pl->scalars_begin = fixed;
  pl->n_scalars = 0;
  for (int i = 0; i < g->n; i++)
    if (op_info[g->nodes[i]->op].cls == FC_LOSS) pl->scalar[i] = pl->n_scalars++;
  fixed = add_sat(fixed, round16(pl->n_scalars));

  // Every other buffer: node values and aux buffers, in graph order.
  Buffers bs = {xalloc((2 * g->n + 1) * sizeof *bs.b), 0, xalloc(g->n * sizeof(int)), xalloc(g->n * sizeof(int))};
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    bs.main_of[i] = bs.aux_of[i] = -1;
    if (!nd->alias && nd->op != OP_param && nd->shape.rank > 0) {
      pl->in_batch[i] = nd->batched;
      bs.main_of[i] = add_buf(&bs, node_elems(nd), nd->batched, &pl->off[i]);
    }
    if (op_info[nd->op].cls != FC_OPTIMIZER && node_aux_elems(nd)) {
      pl->aux_in_batch[i] = nd->aux_batched;
      bs.aux_of[i] = add_buf(&bs, node_aux_elems(nd), nd->aux_batched, &pl->aux_off[i]);
    }
  }
  if (reuse) liveness(&bs, g, pl), share_in_place(&bs, pl);
  pl->reused = reuse;
  pl->fixed_elems = place(&bs, false, fixed, reuse);
  pl->batch_elems = place(&bs, true, 0, reuse);
  plan_infer_memory(g, pl, reuse);
  // What the same buffers take without reuse, for the build report.
  pl->fixed_unshared = fixed, pl->batch_unshared = 0;
  for (int k = 0; k < bs.n; k++) {
    int64_t *sum = bs.b[k].batch ? &pl->batch_unshared : &pl->fixed_unshared;
    *sum = add_sat(*sum, round16(bs.b[k].size));
  }
}
