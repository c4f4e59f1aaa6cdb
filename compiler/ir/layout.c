// layout.c — layout selection: how each contraction reaches its operands.
//
// Needs a fused graph (fuse_epilogues, fuse_gradients, dead nodes removed: the
// contractions are final).
// Guarantees: activations stay NHWC and weights HWIO / [in, out] (Flatten and saved
// weights keep Keras's meaning); a node given LAYOUT_PACKED reads, as its last input, a
// pack_weights node of its weight placed just before it — in the forward pass for a
// forward node (inference packs too), in the backward pass for a gradient — so the
// packed copy is made from the weights of this step whatever changed them before it
// (an update, load_weights, a callback restoring the best weights). A node given
// LAYOUT_BLOCKED (only a filter gradient) reads and writes what the NHWC node would: its
// blocks are copies inside its workspace.
// The OpenCL target has packed kernels too (nn_kernels.cl, "pre-packed weights": panels
// of 16 columns in the buffer the C library's 32-column panels size), but neither blocked
// nor kept-matrix ones, and not this cost model: its CPU layout computes a convolution's
// data gradient packed as the C library does (register tiles of dy scattered into dx, any
// stride), and NHWC as dot products over w's F runs, 2-8x slower on the shapes measured
// (benchmarks/cl_dx_ab.sh), so --layout=auto packs exactly those (select_opencl); the pack
// node costs a launch, small next to what it saves. A forward node reads its weight's rows
// in place as fast (measured; docs/internals.md).
//
// The layouts (kernels/nn_kernels.h, "pre-packed weights"):
//   NHWC    convolution as im2col + GEMM, the GEMM packing its B operand (the weight) in
//           every call; a Dense layer's GEMM likewise.
//   COLS    a forward convolution as NHWC, but in training it builds im2col's matrix of the
//           whole batch in its aux buffer and keeps it there for its filter gradient, which
//           then needs no im2col of its own (the memory plan keeps the matrix alive between
//           them). Inference runs the NHWC kernel, in the workspace. The same bits.
//   PACKED  the weight packed once per step into the GEMM micro-kernel's panel order. A
//           Dense matmul then packs nothing and splits columns as well as rows among the
//           threads; a convolution multiplies straight from its NHWC input (no im2col
//           matrix, no workspace); a convolution's data gradient (any stride) multiplies
//           tiles of dy by each window cell's weights and adds them straight to the dx
//           cells they reach (col2im's scatter from registers: no matrix, no workspace,
//           no product over padding). A forward node gives the same bits in both layouts;
//           a data gradient sums in another order. (OpenCL's packed data gradient is that
//           scatter on CPU devices; its GPU layout convolves dy with the flipped kernel at
//           stride 1 and gathers as NHWC, from the panels, at other strides.)
//   BLOCKED a filter gradient over copies of x (zero-padded) and dy in blocks of channels
//           ([C/16][H][W][16] on AVX2), made chunk by chunk in its workspace, with a
//           register tile of 6 window cells x 16 filters. Measured 1.2-2.4x im2col + GEMM
//           past first layers, copies included (benchmarks/kernel_lab.py --layouts). Blocked forward and
//           data-gradient kernels were measured too and not adopted: within +-20% of the
//           packed ones before converting, slower after (docs/internals.md).
//
// The cost model compares each node's time in both layouts, in FLOPs of one thread: the
// op table's FLOPs (node_cost) over the threads the kernel can use, plus the bytes each
// layout moves besides the operands (im2col's matrix, packing the weight, the packed
// data gradient's additions into dx) at a FLOP-per-byte price that depends on whether
// they stay in the cache. Ties keep NHWC, and so does a Dense
// layer of 64 rows or more: its pack node's traffic is all the packed layout adds. The
// constants are measured on this machine (below, and docs/internals.md). A filter
// gradient compares im2col's traffic with the blocked copies' (filter_times).
#include "nnc.h"
#include "nn.h"

#include <math.h>
#include <string.h>

// What one byte of im2col's matrix (written, then read by the GEMM) costs in FLOPs of one
// thread: about 1 while a chunk of the matrix stays in the cache (fashion_cnn's second
// layer at batch 32, 4.5 MB: NHWC 1.72-1.88 ms, PACKED 1.69 ms on one thread), 4 once it
// spills to memory (79 GFLOP/s per thread over the ~20 GB/s one thread gets).
#define FLOP_PER_CACHED_BYTE 1.0
#define FLOP_PER_MEMORY_BYTE 4.0
// The data gradient's col2im (a scalar loop reading im2col's matrix and adding it into dx)
// costs more per byte of the matrix's traffic than the GEMM's writing it; the packed data
// gradient's additions of its register tiles into dx (as many elements, read and written
// in L1, a sample at a time) less. Measured on fashion_cnn's second layer at batch 32,
// one thread, the kernels interleaved in one process (docs/bench.md; 7.4 MB of matrix
// traffic): col2im 420-530 us, 5.2-6.7 FLOPs of the FMA peak measured in the same run per
// byte (up to 10 under heavier load); the packed kernel's additions into dx about 6% of
// its 1.6-1.8 ms (perf), 1.3 per byte.
#define FLOP_PER_COL2IM_BYTE 6.0
#define FLOP_PER_SCATTER_BYTE 1.5
#define CACHED_BYTES (8.0 * (1 << 20))   // a share of the 32 MiB L3 the cores and other jobs share
// The NHWC GEMM's rule for using threads (NNK_GEMM_PAR_MIN, NNK_GEMM_PAR_MIN_ROWS).
#define GEMM_PAR_MIN 100000.0
#define GEMM_PAR_MIN_ROWS 64
// The chunk of samples the NHWC convolution's im2col matrix is built for
// (NNK_CONV_WORK_CAP elements).
#define CONV_WORK_CAP ((double)(1 << 23))
// The largest im2col matrix (the whole batch's) the cost model keeps from a forward
// convolution for its filter gradient: it is memory the step holds between the two.
#define COLS_MAX_BYTES (64.0 * (1 << 20))
// The largest packed copy of a weight the cost model makes: the copy lives beside the
// weight, and past this size its packing runs at memory speed anyway. (--layout=packed
// packs whatever can be, and the memory check still has the last word.)
#define PACKED_MAX_BYTES (16.0 * (1 << 20))

// The kernel library's vector width, as built for this machine (nn_kernels_lib.c).
int nnk_lib_vec_bytes(void);

typedef struct Model {
  int64_t batch;           // the batch the script trains at
  int threads;             // the threads a program uses on this machine
  int lanes;               // floats per vector
} Model;

static double sz(int64_t v) { return (double)v; }

// A 1x1 stride-1 unpadded convolution: x already is im2col's matrix.
static bool pointwise_conv(const Window *a) {
  return a->kh == 1 && a->kw == 1 && a->sh == 1 && a->sw == 1 && a->pt == 0 && a->pl == 0;
}

// Elements of one sample's im2col matrix: a row (kh, kw, c) per output cell.
static double cols_per_sample(const Window *a) { return sz(a->oh) * sz(a->ow) * sz(a->kh * a->kw * a->c); }

// What one byte of that matrix costs in FLOPs: it is built in chunks of samples (the
// workspace cap), which stay in the cache or spill to memory.
static double cols_byte_cost(const Window *a, const Model *m) {
  double per_sample = cols_per_sample(a), chunk = fmin(sz(m->batch), fmax(1, floor(CONV_WORK_CAP / per_sample)));
  return chunk * per_sample * sizeof(float) <= CACHED_BYTES ? FLOP_PER_CACHED_BYTE : FLOP_PER_MEMORY_BYTE;
}

// A window the NHWC kernels convolve directly, without im2col (nnk_conv2d_is_direct_).
static bool direct_conv(const Window *a, const Model *m) {
  return a->kh * a->kw * a->c <= NNC_CONV_DIRECT_MAX_K && a->f % m->lanes == 0;
}

// The packing a node would read, and the input slot it goes in (after the inputs of
// fusion: a fused activation gradient, fuse_grad.c, is computed by the packed kernels
// too); false: no PACKED form.
static bool packable(const Node *nd, PackKind *kind, int *slot) {
  if (nd->layout != LAYOUT_NHWC || !nd->in[1] || nd->in[1]->op != OP_param) return false;
  switch (nd->op) {
  case OP_conv2d: *kind = PACK_B, *slot = 3; return true;
  case OP_conv2d_bwd_data: *kind = PACK_CONV_FLIP, *slot = 3; return true;
  case OP_matmul:
    if (nd->ta) return false;
    *kind = nd->tb ? PACK_BT : PACK_B, *slot = 4;
    return true;
  default: return false;
  }
}

// Bytes of packing the weight once: read it, write its panels.
static double pack_bytes(const Node *nd) { return 2 * sizeof(float) * sz(node_elems(nd->in[1])); }

// Time in one thread's FLOPs of the node in each layout.
static void times(const Node *nd, const Model *m, double *nhwc, double *packed) {
  double flops, bytes;
  node_cost(nd, m->batch, &flops, &bytes);
  // A GEMM packs each B block just before it multiplies it (in the cache); the pack node
  // writes the whole packed weight for a kernel that reads it later (from memory).
  double pack = pack_bytes(nd) * FLOP_PER_CACHED_BYTE, pack_node = pack_bytes(nd) * FLOP_PER_MEMORY_BYTE;
  if (nd->op == OP_matmul) {
    double rows = sz(shape_rows(&nd->in[0]->shape)) * (nd->in[0]->batched ? sz(m->batch) : 1);
    int par = flops / 2 >= GEMM_PAR_MIN ? m->threads : 1;
    // NHWC keeps few rows on one thread; PACKED splits the columns too.
    *nhwc = flops / (rows >= GEMM_PAR_MIN_ROWS ? par : 1) + pack;
    *packed = flops / par + pack_node;
    return;
  }
  const Window *a = &nd->win;
  bool pointwise = pointwise_conv(a);
  bool direct = nd->op == OP_conv2d && direct_conv(a, m);
  // im2col's matrix (or the data gradient's, before col2im) written and read again, by
  // chunks of samples: in the cache or in memory; col2im's scatter on top.
  double cols = pointwise || direct ? 0 : 2 * sizeof(float) * sz(m->batch) * cols_per_sample(a);
  double col2im = nd->op == OP_conv2d_bwd_data ? cols * FLOP_PER_COL2IM_BYTE : 0;
  *nhwc = flops + cols * cols_byte_cost(a, m) + col2im + (direct ? 0 : pack);
  // The packed data gradient adds each window cell's tiles into dx: as many elements read
  // and written as the matrix has, in L1.
  *packed = flops + pack_node + (nd->op == OP_conv2d_bwd_data && !pointwise ? cols * FLOP_PER_SCATTER_BYTE : 0);
}

// Blocked channels are for the filter gradient only (nnk_conv2d_bwd_filter_blocked): its
// blocks are copies the kernel makes in its workspace, so no other node sees them. It
// needs whole blocks of filters (two vectors) and whole blocks of inputs or fewer inputs
// than a block; NHWC's first layers (the direct path) keep NHWC.
static bool blockable(const Node *nd, const Model *m) {
  if (nd->op != OP_conv2d_bwd_filter || nd->layout != LAYOUT_NHWC || nd->in[2]) return false;   // not a kept matrix's reader
  const Window *a = &nd->win;
  int64_t cb = 2 * m->lanes;
  return a->f % cb == 0 && (a->c < cb || a->c % cb == 0);
}

// Time in one thread's FLOPs of a filter gradient: NHWC builds im2col's matrix (or, on
// the direct path, reads x in place); blocked copies x (padded) and dy once, chunks that
// stay in the cache. The FLOPs are the same; what the model does not see is that the
// blocked kernel ran 1.2-2.4x faster than the im2col GEMM on the shapes measured
// (docs/internals.md), so it decides by the bytes and says why.
static void filter_times(const Node *nd, const Model *m, double *nhwc, double *blocked) {
  double flops, bytes;
  node_cost(nd, m->batch, &flops, &bytes);
  const Window *a = &nd->win;
  double cols = pointwise_conv(a) || direct_conv(a, m) ? 0 : 2 * sizeof(float) * sz(m->batch) * cols_per_sample(a);
  *nhwc = flops + cols * cols_byte_cost(a, m);
  double hp = sz((a->oh - 1) * a->sh + a->kh), wp = sz((a->ow - 1) * a->sw + a->kw);
  double copies = 2 * sizeof(float) * sz(m->batch) * (sz(a->c) * hp * wp + sz(a->oh) * sz(a->ow) * sz(a->f));
  *blocked = flops + copies * FLOP_PER_CACHED_BYTE;
}

// The filter gradient of a forward convolution nd that builds im2col's matrix (no
// pointwise or direct path), which could read nd's kept matrix instead; NULL if none.
static Node *cols_reader(const Graph *g, const Node *nd, const Model *m) {
  if (nd->op != OP_conv2d || nd->layout != LAYOUT_NHWC) return NULL;
  const Window *a = &nd->win;
  if (pointwise_conv(a) || direct_conv(a, m)) return NULL;
  for (int i = nd->id + 1; i < g->n; i++) {
    Node *w = g->nodes[i];
    if (w->op == OP_conv2d_bwd_filter && w->in[0] == nd->in[0] && w->layer == nd->layer && !w->in[2] &&
        !memcmp(&w->win, &nd->win, sizeof w->win))
      return w;
  }
  return NULL;
}

// Time in one thread's FLOPs that keeping nd's matrix saves (negative: costs) against the
// best of the other layouts for nd (best_fwd): the forward runs as NHWC (nhwc_fwd) and the
// filter gradient no longer writes the matrix (its GEMM reads one either way). Building the
// whole batch's matrix at once and reading it back after the rest of the step are priced
// like im2col's chunks: measured on this machine (shared, one thread), the forward took as
// long with a kept 21 MB matrix as in chunks (mnist_cnn's conv2d_1 at batch 32: 38.2 against
// 39.9 ms) and the filter gradient read it back faster than it built its own (28.4 against
// 35.5 ms; cnn_224's conv2d_1 at batch 2, 27 MB: 40.1 against 49.8 ms).
static double cols_gain(const Node *nd, const Model *m, double nhwc_fwd, double best_fwd) {
  const Window *a = &nd->win;
  return best_fwd - nhwc_fwd + sizeof(float) * sz(m->batch) * cols_per_sample(a) * cols_byte_cost(a, m);
}

// nd keeps its matrix in its aux buffer; its filter gradient reads it as in[2].
static void keep_cols(Node *nd, Node *reader) {
  const Window *a = &nd->win;
  nd->layout = LAYOUT_COLS;
  nd->aux_shape = (Shape){2, {a->oh * a->ow, a->kh * a->kw * a->c}};
  nd->aux_batched = true;
  reader->in[2] = nd;
}

static int64_t training_batch(const Program *p) {
  for (int i = 0; i < p->n_actions; i++)
    if (p->actions[i].kind == A_FIT) return action_batch(&p->actions[i]);
  return 32;
}

// Gives nd its weight packed by a new pack_weights node, placed just before nd (at nd's
// position, nd one further on).
static void add_pack(Graph *g, Node *nd, PackKind kind, int slot) {
  static const char *const suffix[] = {[PACK_B] = "w", [PACK_BT] = "wt", [PACK_CONV_FLIP] = "wflip"};
  Node *pk = node_new(g, OP_pack_weights, xprintf("%s_pack_%s", graph_layer_ident(g, nd->layer), suffix[kind]),
                      nd->layer, nd->in[1], NULL);
  pk->pack = kind;
  pk->backward = nd->backward;
  node_done(pk);
  nd->in[slot] = pk;
  nd->layout = LAYOUT_PACKED;
  graph_move_before(g, pk, nd);
}

// The OpenCL target: --layout=packed packs what it can, auto the convolutions' data
// gradients, which its CPU layout would compute as dot products. A Dense data gradient (dy · Wᵀ) is a
// dot product there too, but packing its weight reads and writes the whole of it once
// more per step, which cost as much as the outer form saved (fashion_cnn's 1600 x 64
// layer: 146 us + 165 us of packing against 244-305 us; the packing runs at memory speed).
static int select_opencl(Graph *g, LayoutChoice choice) {
  if (choice != LAYOUTS_AUTO && choice != LAYOUTS_PACKED) return 0;   // blocked, cols: C only
  int chosen = 0;
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    PackKind kind;
    int slot;
    if (!packable(nd, &kind, &slot) || (choice == LAYOUTS_AUTO && kind != PACK_CONV_FLIP)) continue;
    add_pack(g, nd, kind, slot);
    i++;
    chosen++;
  }
  return chosen;
}

int select_layouts(Graph *g, const Program *p, LayoutChoice choice, TargetKind target) {
  if (choice == LAYOUTS_NHWC) return 0;
  if (target != TARGET_C) return select_opencl(g, choice);
  int threads = nn_default_threads();
  Model m = {training_batch(p), threads > 0 ? threads : 1, nnk_lib_vec_bytes() / (int)sizeof(float)};
  int chosen = 0;
  for (int i = 0; i < g->n; i++) {
    Node *nd = g->nodes[i];
    if ((choice == LAYOUTS_AUTO || choice == LAYOUTS_BLOCKED) && blockable(nd, &m)) {
      double nhwc, blocked;
      filter_times(nd, &m, &nhwc, &blocked);
      if (choice == LAYOUTS_BLOCKED || blocked < nhwc) nd->layout = LAYOUT_BLOCKED, chosen++;
      continue;
    }
    if (choice == LAYOUTS_BLOCKED) continue;
    PackKind kind;
    int slot;
    Node *reader = g->differentiated && choice != LAYOUTS_PACKED ? cols_reader(g, nd, &m) : NULL;
    if (reader && choice == LAYOUTS_AUTO && blockable(reader, &m)) {
      double nhwc, blocked;            // a blocked filter gradient builds no matrix to share
      filter_times(reader, &m, &nhwc, &blocked);
      if (blocked < nhwc) reader = NULL;
    }
    if (reader && choice == LAYOUTS_COLS) {
      keep_cols(nd, reader);
      chosen++;
      continue;
    }
    if (!packable(nd, &kind, &slot) || choice == LAYOUTS_COLS) continue;
    if (choice == LAYOUTS_AUTO) {
      double nhwc, packed;
      times(nd, &m, &nhwc, &packed);
      bool pack = packed < nhwc && pack_bytes(nd) / 2 <= PACKED_MAX_BYTES;
      const Window *a = &nd->win;
      double whole = sizeof(float) * sz(m.batch) * cols_per_sample(a);
      if (reader && whole <= COLS_MAX_BYTES && cols_gain(nd, &m, nhwc, pack ? packed : nhwc) > 0) {
        keep_cols(nd, reader);
        chosen++;
        continue;
      }
      if (!pack) continue;
    }
    add_pack(g, nd, kind, slot);       // pk takes position i, nd moves to i + 1
    i++;
    chosen++;
  }
  return chosen;
}

// The NHWC forward and data-gradient convolutions build im2col's matrix in the workspace;
// the filter gradient packs its panels straight from x, and a packed node needs none.
// A COLS convolution still needs it in inference; a filter gradient reading a kept matrix
// does not (the blocked filter gradient sizes its own: node_conv_work_fn).
bool node_needs_conv_work(const Node *nd) {
  return ((nd->op == OP_conv2d || nd->op == OP_conv2d_bwd_data) && nd->layout != LAYOUT_PACKED) ||
         (nd->op == OP_conv2d_bwd_filter && !nd->in[2]);   // im2col's matrix in every other layout
}

// The kernel library's function that sizes a convolution's workspace: the blocked filter
// gradient's holds blocks of x and dy, the others im2col's matrix.
const char *node_conv_work_fn(const Node *nd) {
  return nd->layout == LAYOUT_BLOCKED ? "nnk_conv2d_blocked_work_elems" : "nnk_conv2d_work_elems";
}

const char *node_layout_name(const Node *nd) {
  if (nd->op == OP_pack_weights) return nd->pack == PACK_B ? "panels" : nd->pack == PACK_BT ? "panels^T" : "panels-flip";
  if (nd->layout == LAYOUT_PACKED) return "packed";
  if (nd->layout == LAYOUT_BLOCKED) return "blocked";
  if (nd->layout == LAYOUT_COLS) return "NHWC+cols";
  if (nd->op == OP_conv2d_bwd_filter && nd->in[2]) return "cols";   // reads the kept matrix
  if (nd->shape.rank == 0 && !nd->batched && nd->in[0]) nd = nd->in[0];   // an update: its weight
  if (nd->batched) return nd->shape.rank == 3 ? "NHWC" : "NC";
  return nd->shape.rank == 4 ? "HWIO" : "-";
}

static const char *const choice_names[] = {[LAYOUTS_AUTO] = "auto", [LAYOUTS_NHWC] = "nhwc", [LAYOUTS_PACKED] = "packed",
                                           [LAYOUTS_BLOCKED] = "blocked", [LAYOUTS_COLS] = "cols"};

int layout_choice(const char *name) {
  for (int i = 0; i < (int)(sizeof choice_names / sizeof choice_names[0]); i++)
    if (!strcmp(name, choice_names[i])) return i;
  return -1;
}

const char *layout_choice_name(LayoutChoice c) { return choice_names[c]; }
