// emit_opencl.c — the OpenCL target: the plan and the op emitters printed as an
// OpenCL C program (DIR/model.cl) and the C host program that drives it (DIR/model.c).
//
// Needs: a planned graph and the kernel library's text (kernels/nn_kernels.cl).
// Guarantees: one __kernel per node that runs a kernel, named after the node, calling
// the library function of the same name as the C target's (nncl_conv2d_fwd for
// nnk_conv2d_fwd) with literal shapes; every buffer a named offset in one device arena
// laid out by the same plan as the C target's; weights, optimizer state and activations
// stay on the device, only batches go in and losses, outputs and weights come back.
// Every kernel is launched as a 1-D range of work-groups of NNCL_WG items and takes
// the same four arguments (arena, n, seed, step), so the host's launch is one function.
// The host embeds the whole OpenCL source, so a built program needs no file but itself.
#include "target.h"
#include "nn.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define P(...) fprintf(e->out, __VA_ARGS__)

static const char *library;       // kernels/nn_kernels.cl
static const char *scratch_size;  // set by cl_call when a kernel needs local memory

//
// The OpenCL dialect: a kernel call is a statement in the node's __kernel.
//
static const char *cl_buf(Emit *e, const Node *nd) { return xprintf("BUF_%s", nd->name); }
static const char *cl_aux(Emit *e, const Node *nd) { return xprintf("AUX_%s", nd->name); }

// The library defines NNCL_<KERNEL>_LOCAL for the functions that take local scratch.
static const char *local_macro(const char *kernel) {
  char *m = xprintf("NNCL_%s_LOCAL", kernel);
  for (char *c = m; *c; c++) *c = toupper((unsigned char)*c);
  const char *def = xprintf("#define %s ", m);
  return strstr(library, def) ? m : NULL;
}

static void cl_call(Emit *e, const Node *nd, ResultKind result, const char *kernel, const char *args, int traits) {
  const char *sum = result == R_NONE ? "" : xprintf(", SCALAR(%d)", e->plan->scalar[nd->id]);
  const char *local = local_macro(kernel);
  if (local) scratch_size = local;
  P("  nncl_%s(%s%s%s);\n", kernel, args, sum, local ? ", scratch" : "");
}

static void cl_zero(Emit *e, const Node *nd) {
  P("  nncl_fill_zero(%lld, %s);\n", (long long)node_elems(nd), cl_buf(e, nd));
}

static const char *work_expr(const Node *nd);

// Whether text has name as a whole identifier (a kernel's call reading seed or step).
static bool uses_word(const char *text, const char *name) {
  size_t len = strlen(name);
  for (const char *at = strstr(text, name); at; at = strstr(at + 1, name)) {
    bool starts = at == text || !(isalnum((unsigned char)at[-1]) || at[-1] == '_');
    bool ends = !(isalnum((unsigned char)at[len]) || at[len] == '_');
    if (starts && ends) return true;
  }
  return false;
}

static const char *cl_run(Emit *e, const Node *nd, bool infer, const char *n) {
  return xprintf("nnc_launch(s, K_%s%s, %s, %s);", nd->name, infer ? "_infer" : "", work_expr(nd), n);
}

static const Dialect cl_dialect = {
    .name = "opencl", .buf = cl_buf, .aux = cl_aux, .null_buf = "0", .ptr_space = "__global ", .ew_inline = "nncl_ew_", .for_items = "NNCL_FOR_ITEMS_(i, %s)", .seed = "seed", .step = "step",
    .call = cl_call, .zero = cl_zero, .run = cl_run, .forward_prologue = "",
    .sync = "nn_cl_finish(s->cl);",
};

//
// model.cl: buffer names, then one __kernel per node
//
static void emit_cl_buffers(Emit *e) {
  const Plan *pl = e->plan;
  Graph *g = e->g;
  P("// Buffers: offsets in the device arena, from the same memory plan as the C target.\n"
    "// NNC_MAXBATCH comes from the host when it builds the program.\n");
  P("typedef long int64_t;   // the calls read as the C target's do\n");
  P("#define FIXED_ELEMS %lld\n", (long long)pl->fixed_elems);
  P("#define FIXED(off) (arena + (off))\n#define PER_SAMPLE(off) (arena + FIXED_ELEMS + (size_t)(off) * NNC_MAXBATCH)\n");
  P("#define SCALAR(k) (arena + %lld + (k))\n", (long long)pl->scalars_begin);
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (pl->off[i] >= 0)
      P("#define BUF_%s %s(%lld)\n", nd->name, pl->in_batch[i] ? "PER_SAMPLE" : "FIXED", (long long)pl->off[i]);
    else if (nd->alias && nd->op == OP_aux_view)
      P("#define BUF_%s (AUX_%s + %lld)\n", nd->name, nd->alias->name, (long long)nd->alias_offset);
    else if (nd->alias)
      P("#define BUF_%s BUF_%s\n", nd->name, nd->alias->name);
    if (pl->aux_off[i] >= 0)
      P("#define AUX_%s %s(%lld)\n", nd->name, pl->aux_in_batch[i] ? "PER_SAMPLE" : "FIXED", (long long)pl->aux_off[i]);
  }
  P("\n");
}

static void emit_cl_kernel(Emit *e, const Node *nd, bool infer) {
  scratch_size = NULL;
  char *text = node_calls_text(e, nd, infer);
  emit_node_comment(e, nd, infer);
  P("__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
    "void %s%s(__global nn_real *arena, int n, ulong seed, long step) {\n", nd->name, infer ? "_infer" : "");
  if (scratch_size) P("  __local nn_real scratch[%s];\n", scratch_size);
  P("%s}\n\n", text);
}

static void emit_cl_program(Emit *e) {
  KernelRef *ks;
  int nk = list_kernels(e, &ks);
  emit_model_summary_comment(e, "model.cl");
  P("// One __kernel per graph node, named after it, calling the library (nn_kernels.cl,\n"
    "// included before this text) with literal shapes. Launched as 1-D ranges of\n"
    "// work-groups of NNCL_WG items; any number of groups gives the same bits.\n\n");
  emit_cl_buffers(e);
  for (int i = 0; i < nk; i++) emit_cl_kernel(e, ks[i].nd, ks[i].infer);
  if (!e->g->loss) return;
  long long w = node_elems(e->g->x);
  const char *x = e->g->x->name;
  P("// %s = rows of the training inputs kept on the device: uint8 pixels through a table\n"
    "// of their 256 converted values, other types already converted by the host (both in\n"
    "// double, as the host's own gather does, so both paths give the same bits).\n", x);
  P("__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
    "void nnc_gather_inputs_u8(__global nn_real *arena, int n, __global const uchar *data,\n"
    "                          __global const long *rows, __global const float *table) {\n"
    "  for (long i = get_global_id(0); i < (long)n * %lld; i += get_global_size(0))\n"
    "    BUF_%s[i] = table[data[rows[i / %lld] * %lld + i %% %lld]];\n}\n\n", w, x, w, w, w);
  P("__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
    "void nnc_gather_inputs_f32(__global nn_real *arena, int n, __global const float *data,\n"
    "                           __global const long *rows) {\n"
    "  for (long i = get_global_id(0); i < (long)n * %lld; i += get_global_size(0))\n"
    "    BUF_%s[i] = data[rows[i / %lld] * %lld + i %% %lld];\n}\n", w, x, w, w, w);
}

//
// model.c: the host program
//
// Work-items a node's kernel wants, for the current batch: its largest operand, so that
// reductions (one group per output) and contractions (one group per tile) have groups
// to spread over; the library is correct for any count.
static const char *work_expr(const Node *nd) {
  int64_t batched = 0, fixed = 0;
  if (nd->n_members) {                 // a group (fuse_updates.c): its largest weight
    for (int k = 0; k < nd->n_members; k++)
      if (node_elems(nd->members[k]->in[0]) > fixed) fixed = node_elems(nd->members[k]->in[0]);
    return xprintf("%lld", (long long)fixed);
  }
  const Node *ops[MAX_IN + 1] = {nd};
  for (int k = 0; k < MAX_IN; k++) ops[k + 1] = nd->in[k];
  for (int k = 0; k <= MAX_IN; k++) {
    if (!ops[k]) continue;
    int64_t m = node_elems(ops[k]);
    if (ops[k]->batched && m > batched) batched = m;
    if (!ops[k]->batched && m > fixed) fixed = m;
  }
  if (batched == 0) return xprintf("%lld", (long long)(fixed ? fixed : 1));
  return fixed > batched ? xprintf("nnc_max((int64_t)n * %lld, %lld)", (long long)batched, (long long)fixed)
                         : xprintf("(int64_t)n * %lld", (long long)batched);
}

static void emit_c_text_literal(Emit *e, const char *name, const char *text) {
  P("static const char %s[] =", name);
  for (const char *line = text; *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
    P("\n    \"");
    for (size_t i = 0; i < n; i++) {
      unsigned char c = line[i];
      if (c == '\n') P("\\n");
      else if (c == '"' || c == '\\') P("\\%c", c);
      else if (c == '?') P("\\?");          // no trigraphs
      else if (c < 0x20 || c >= 0x7f) P("\\%03o", c);
      else fputc(c, e->out);
    }
    P("\"");
    line += n;
  }
  P(";\n\n");
}

static void emit_host_inputs(Emit *e);

static void emit_host(Emit *e, const char *cl_text) {
  Graph *g = e->g;
  const Plan *pl = e->plan;
  KernelRef *ks;
  int nk = list_kernels(e, &ks);
  emit_model_summary_comment(e, "model.c");
  P("// The host side of the OpenCL target: the device arena (every buffer at the offset the\n"
    "// memory plan gives it), one launch per node, and a host copy of the weights for\n"
    "// initialization and weights files. Batches go in; losses, outputs and weights come\n"
    "// back. model.cl holds the kernels this file launches.\n");
  P("#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
  P("#include \"nn.h\"\n#include \"nn_cl.h\"\n%s\ntypedef float nn_real;\n\n", e->p->mpi ? "#include \"nn_mpi.h\"\n" : "");
  P("enum {\n  WEIGHTS_ELEMS = %lld,\n  SLOTS_BEGIN = %lld,\n  SLOTS_ELEMS = %lld,\n  SCALARS_BEGIN = %lld,\n"
    "  N_SCALARS = %d,\n  FIXED_ELEMS = %lld,\n  PER_SAMPLE_ELEMS = %lld,\n  N_KERNELS = %d,\n};\n\n",
    (long long)pl->weights_elems, (long long)pl->slots_begin, (long long)pl->slots_elems,
    (long long)pl->scalars_begin, pl->n_scalars, (long long)pl->fixed_elems, (long long)pl->batch_elems, nk);
  P("// The OpenCL program: the kernel library, then this model's kernels (model.cl).\n");
  emit_c_text_literal(e, "nnc_cl_source", cl_text);
  P("// Kernels, in the order of nnc_kernel_names.\nenum {\n");
  for (int i = 0; i < nk; i++) P("  K_%s%s,\n", ks[i].nd->name, ks[i].infer ? "_infer" : "");
  P("};\nstatic const char *const nnc_kernel_names[N_KERNELS] = {\n");
  for (int i = 0; i < nk; i++) P("  \"%s%s\",\n", ks[i].nd->name, ks[i].infer ? "_infer" : "");
  P("};\n// Which of the per-step arguments each kernel reads (1: seed, 2: step): the others keep\n"
    "// the values set at their first launch.\nstatic const unsigned char nnc_kernel_uses[N_KERNELS] = {");
  for (int i = 0; i < nk; i++) {
    const char *text = node_calls_text(e, ks[i].nd, ks[i].infer);
    P("%s%d", i == 0 ? "\n  " : i % 16 ? ", " : ",\n  ", (uses_word(text, "seed") ? 1 : 0) | (uses_word(text, "step") ? 2 : 0));
  }
  P("\n};\n\n");
  P("typedef struct State {\n  nn_cl *cl;\n  cl_mem arena;              // every buffer, on the device\n"
    "  cl_kernel kernels[N_KERNELS];\n  int maxbatch;\n  int cpu;                  // a CPU device: the library's CPU layout\n"
    "  int wg;                   // work-group size the program was built for (NNCL_WG)\n"
    "  int64_t max_groups;        // per launch\n  int64_t step;             // optimizer steps taken (Adam's t)\n"
    "  // The scalar arguments each kernel holds, set again only when they change (args_set:\n"
    "  // any since the program was built).\n"
    "  unsigned char args_set[N_KERNELS];\n  int arg_n[N_KERNELS];\n  uint64_t arg_seed[N_KERNELS];\n  int64_t arg_step[N_KERNELS];\n"
    "  uint64_t seed;            // this step's dropout seed\n"
    "  double loss, reg;         // the batch's summed loss; regularization terms\n"
    "  nn_real *weights;         // host copy of the arena's weight region\n"
    "  // The training inputs on the device (bind_inputs): which data, as stored, its rows.\n"
    "  const void *inputs_of;\n  int64_t inputs_rows;\n  double inputs_scale;\n  int inputs_u8;\n"
    "  cl_mem inputs, rows, table;\n  cl_kernel gather_u8, gather_f32;\n%s} State;\n\n",
    e->p->mpi ? "  nn_real *mpi_host;         // --mpi, several ranks: host copies of gradients, statistics\n" : "");
  P("static int64_t nnc_max(int64_t a, int64_t b) { return a > b ? a : b; }\n\n");
  P("// One launch: enough groups of s->wg items for `work` items, at most max_groups (a\n"
    "// CPU runs groups as loops on a few threads: more of them only cost start-up).\n"
    "static void nnc_launch(State *s, int k, int64_t work, int n) {\n"
    "  int64_t groups = (work + s->wg - 1) / s->wg;\n"
    "  if (groups > s->max_groups) groups = s->max_groups;\n  if (groups < 1) groups = 1;\n"
    "  int set = s->args_set[k];\n"
    "  if (!set || s->arg_n[k] != n) nn_cl_arg_int(s->kernels[k], nnc_kernel_names[k], 1, s->arg_n[k] = n);\n"
    "  if (!set || ((nnc_kernel_uses[k] & 1) && s->arg_seed[k] != s->seed))\n"
    "    nn_cl_arg_ulong(s->kernels[k], nnc_kernel_names[k], 2, s->arg_seed[k] = s->seed);\n"
    "  if (!set || ((nnc_kernel_uses[k] & 2) && s->arg_step[k] != s->step))\n"
    "    nn_cl_arg_long(s->kernels[k], nnc_kernel_names[k], 3, s->arg_step[k] = s->step);\n"
    "  s->args_set[k] = 1;\n"
    "  nn_cl_run(s->cl, s->kernels[k], nnc_kernel_names[k], (size_t)groups, (size_t)s->wg);\n}\n\n");
  // Element offsets of host-visible buffers, in bytes.
  P("static size_t nnc_at(State *s, int64_t off, int batched) {\n"
    "  return sizeof(nn_real) * (size_t)(batched ? FIXED_ELEMS + off * s->maxbatch : off);\n}\n\n");

  emit_host_phases(e);
  P("static void nnc_pull_params(nn_model *m) {\n  State *s = m->state;\n"
    "  nn_cl_read(s->cl, s->arena, 0, WEIGHTS_ELEMS * sizeof(nn_real), s->weights);\n}\n\n");
  P("static void nnc_push_params(nn_model *m) {\n  State *s = m->state;\n"
    "  nn_cl_write(s->cl, s->arena, 0, WEIGHTS_ELEMS * sizeof(nn_real), s->weights);\n}\n\n");
  P("static void nnc_reset_optimizer(nn_model *m) {\n  State *s = m->state;\n"
    "  nn_real *zeros = calloc(SLOTS_ELEMS + 1, sizeof(nn_real));\n"
    "  if (!zeros) {\n    fprintf(stderr, \"error: out of memory\\n\");\n    exit(1);\n  }\n"
    "  nn_cl_write(s->cl, s->arena, SLOTS_BEGIN * sizeof(nn_real), SLOTS_ELEMS * sizeof(nn_real), zeros);\n"
    "  free(zeros);\n  s->step = 0;\n}\n\n");
  P("// The optimizer's state for backups (runtime/backup.c), from and to the device.\n"
    "static void nnc_optimizer_state(nn_model *m, float *slots, int64_t *step, bool save) {\n"
    "  State *s = m->state;\n  size_t at = SLOTS_BEGIN * sizeof(nn_real), bytes = SLOTS_ELEMS * sizeof(nn_real);\n"
    "  if (save) nn_cl_read(s->cl, s->arena, at, bytes, slots), *step = s->step;\n"
    "  else nn_cl_write(s->cl, s->arena, at, bytes, slots), s->step = *step;\n}\n\n");
  P("// A host copy of a device buffer for --check-numerics (NULL if memory is short).\n"
    "static const nn_real *nnc_numerics_view(State *s, int64_t off, int batched, int64_t count) {\n"
    "  static nn_real *copy;\n  static int64_t cap;\n"
    "  if (count > cap) {\n    free(copy);\n    copy = malloc(sizeof(nn_real) * count);\n    cap = copy ? count : 0;\n  }\n"
    "  if (copy) nn_cl_read(s->cl, s->arena, nnc_at(s, off, batched), sizeof(nn_real) * count, copy);\n"
    "  return copy;\n}\n\n");
  emit_numerics(e);
  emit_host_init(e, "s->weights", "  nnc_push_params(m);\n  nnc_reset_optimizer(m);\n");

  long long in_w = node_elems(g->x), out_w = node_elems(g->output), y_w = g->y ? node_elems(g->y) : 0;
  P("static void nnc_load_batch(State *s, const float *x, const float *y, int n) {\n");
  P("  if (x) nn_cl_write(s->cl, s->arena, nnc_at(s, %lld, 1), (size_t)n * %lld * sizeof(float), x);\n",
    (long long)pl->off[g->x->id], in_w);
  if (g->y)
    P("  if (y) nn_cl_write(s->cl, s->arena, nnc_at(s, %lld, 1), (size_t)n * %lld * sizeof(float), y);\n",
      (long long)pl->off[g->y->id], y_w);
  P("}\n\n");
  const Node *out_store = g->output;
  while (out_store->alias) out_store = out_store->alias;
  P("static void nnc_store_output(State *s, int n, float *out) {\n"
    "  nn_cl_read(s->cl, s->arena, nnc_at(s, %lld, %d), (size_t)n * %lld * sizeof(float), out);\n}\n\n",
    (long long)pl->off[out_store->id], pl->in_batch[out_store->id], out_w);
  if (g->loss) {
    P("// The loss and regularizer sums the kernels left in the arena's scalar slots.\n"
      "static double nnc_batch_loss(State *s, int n) {\n  float sums[N_SCALARS];\n"
      "  nn_cl_read(s->cl, s->arena, SCALARS_BEGIN * sizeof(nn_real), sizeof sums, sums);\n"
      "  s->loss = sums[%d];\n  s->reg = 0;\n", pl->scalar[g->loss->id]);
    for (int i = 0; i < g->n; i++)
      if (g->nodes[i]->op == OP_l1l2) P("  s->reg += sums[%d];\n", pl->scalar[i]);
    P("  return %s;\n}\n\n", host_batch_loss_expr(g, "s->loss", "s->reg"));
  }
  emit_host_steps(e);
  if (g->loss) emit_host_inputs(e);

  // (Re)builds the program for one work-group size, and binds the arena to its kernels.
  P("// Builds the program for work-groups of wg items; binds the arena to every kernel.\n"
    "static int nnc_build(State *s, int wg) {\n"
    "  for (int k = 0; k < N_KERNELS; k++)\n"
    "    if (s->kernels[k]) clReleaseKernel(s->kernels[k]), s->kernels[k] = NULL;\n");
  if (g->loss)
    P("  if (s->gather_u8) clReleaseKernel(s->gather_u8), clReleaseKernel(s->gather_f32);\n");
  P("  if (s->cl->program) clReleaseProgram(s->cl->program), s->cl->program = NULL;\n"
    "  char options[160];\n"
    "  snprintf(options, sizeof options, \"-DNNC_MAXBATCH=%%d -DNNCL_WG=%%d -DNNCL_CPU=%%d\", s->maxbatch, wg, s->cpu);\n"
    "  if (nn_cl_build(s->cl, nnc_cl_source, options) < 0) return -1;\n"
    "  for (int k = 0; k < N_KERNELS; k++) {\n"
    "    s->kernels[k] = nn_cl_kernel(s->cl, nnc_kernel_names[k]);\n    s->args_set[k] = 0;\n"
    "    nn_cl_arg_mem(s->kernels[k], nnc_kernel_names[k], 0, s->arena);\n  }\n");
  if (g->loss)
    P("  s->gather_u8 = nn_cl_kernel(s->cl, \"nnc_gather_inputs_u8\");\n"
      "  s->gather_f32 = nn_cl_kernel(s->cl, \"nnc_gather_inputs_f32\");\n"
      "  nn_cl_arg_mem(s->gather_u8, \"nnc_gather_inputs_u8\", 0, s->arena);\n"
      "  nn_cl_arg_mem(s->gather_u8, \"nnc_gather_inputs_u8\", 3, s->rows);\n"
      "  nn_cl_arg_mem(s->gather_u8, \"nnc_gather_inputs_u8\", 4, s->table);\n"
      "  nn_cl_arg_mem(s->gather_f32, \"nnc_gather_inputs_f32\", 0, s->arena);\n"
      "  nn_cl_arg_mem(s->gather_f32, \"nnc_gather_inputs_f32\", 3, s->rows);\n");
  P("  s->wg = wg;\n  return 0;\n}\n\n");
  P("// Seconds for three %s at the largest batch, after one to warm up, on whatever\n"
    "// the arena holds: it runs before nnc_init sets the weights and zeroes the optimizer.\n"
    "static double nnc_trial(void *ctx, int wg) {\n  State *s = ctx;\n"
    "  if (nnc_build(s, wg) < 0) return 0;\n  double t0 = 0;\n  for (int i = 0; i < 4; i++) {\n"
    "    if (i == 1) nn_cl_finish(s->cl), t0 = nn_now();\n", g->loss ? "train steps" : "forward passes");
  if (g->loss) P("    nnc_forward_train(s, s->maxbatch);\n    nnc_backward(s, s->maxbatch);\n    nnc_update(s);\n");
  else P("    nnc_forward_infer(s, s->maxbatch, 0);\n");
  P("  }\n  nn_cl_finish(s->cl);\n  return nn_now() - t0;\n}\n\n");

  P("static nn_model *nnc_model_create(int max_batch, const nn_options *opt) {\n");
  P("  static nn_model model;\n  static State state;\n  State *s = &state;\n  nn_model *m = &model;\n");
  P("  s->maxbatch = max_batch;\n  s->cl = nn_cl_open(opt->device);\n  if (!s->cl) return NULL;\n"
    "  // The library's layout by device: blocks per work-item without barriers on a CPU,\n"
    "  // local-memory tiles elsewhere (GPUs, accelerators).\n"
    "  cl_device_type type = 0;\n"
    "  clGetDeviceInfo(s->cl->device, CL_DEVICE_TYPE, sizeof type, &type, NULL);\n"
    "  s->cpu = (type & CL_DEVICE_TYPE_CPU) != 0;\n"
    "  const char *layout = getenv(\"NNC_CL_CPU\");   // 0 or 1: force a layout (tests)\n"
    "  if (layout && *layout) s->cpu = atoi(layout) != 0;\n"
    "  s->max_groups = s->cpu ? 64 : 4096;\n"
    "  size_t bytes = (FIXED_ELEMS + (size_t)PER_SAMPLE_ELEMS * max_batch) * sizeof(nn_real);\n"
    "  s->arena = nn_cl_alloc(s->cl, bytes, \"the model's arena\");\n%s"
    "  s->weights = calloc(WEIGHTS_ELEMS + 1, sizeof(nn_real));\n"
    "  if (!s->weights) {\n    fprintf(stderr, \"error: out of memory for the weights\\n\");\n    return NULL;\n  }\n",
    emit_profile ? "  nnc_prof_arena_bytes = bytes;\n" : "");
  if (g->loss)
    P("  s->rows = nn_cl_alloc(s->cl, (size_t)max_batch * sizeof(int64_t), \"the batch's row indices\");\n"
      "  s->table = nn_cl_alloc(s->cl, 256 * sizeof(float), \"the uint8 conversion table\");\n");
  P("  // Work-group size: searched once per device (GPUs), remembered in the cache.\n"
    "  int wg = nn_cl_pick_work_group(s->cl, nnc_cl_source, max_batch, s->cpu, nnc_trial, s);\n"
    "  if (wg != s->wg && nnc_build(s, wg) < 0) return NULL;\n");
  if (e->p->mpi && g->loss) emit_mpi_register(e);
  emit_host_model_fields(e, "s->weights");
  P("  m->pull_params = nnc_pull_params;\n  m->push_params = nnc_push_params;\n");
  if (g->loss) P("  m->bind_inputs = nnc_bind_inputs;\n  m->train_step_rows = nnc_train_step_rows;\n");
  P("  return m;\n}\n\n");
}

// The training inputs on the device: uploaded once per data set when they fit (a quarter
// of the device's memory and one allocation), then each step sends row indices only.
static void emit_host_inputs(Emit *e) {
  Graph *g = e->g;
  long long w = node_elems(g->x);
  P("// Keeps the training inputs on the device when they fit; -1 keeps the host path. uint8\n"
    "// pixels go as they are; other types as the float32 values the host gather would make.\n"
    "static int nnc_bind_inputs(nn_model *m, const nn_data *x) {\n  State *s = m->state;\n"
    "  if (x->onehot > 0 || x->row_size != %lld || x->rows <= 0) return -1;\n"
    "  // Values of one file share its buffer (x and x / 255): the scale tells them apart.\n"
    "  if (s->inputs && s->inputs_of == x->buf && s->inputs_rows == x->rows && s->inputs_scale == x->scale) return 0;\n"
    "  int u8 = x->dtype == NN_U8;\n"
    "  size_t bytes = (size_t)x->rows * %lld * (u8 ? 1 : sizeof(float));\n"
    "  cl_ulong max_alloc = 0;\n"
    "  clGetDeviceInfo(s->cl->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);\n"
    "  if (bytes > max_alloc || bytes > s->cl->global_mem / 4) return -1;\n"
    "  void *host = u8 ? x->buf : malloc(bytes);\n  if (!host) return -1;\n"
    "  for (int64_t r = 0; !u8 && r < x->rows; r += 1024) {\n"
    "    int64_t idx[1024], k = x->rows - r < 1024 ? x->rows - r : 1024;\n"
    "    for (int64_t i = 0; i < k; i++) idx[i] = r + i;\n"
    "    if (nn_data_gather(x, idx, k, (float *)host + r * %lld) != 0) {\n      free(host);\n      return -1;\n    }\n  }\n"
    "  if (s->inputs) clReleaseMemObject(s->inputs);\n"
    "  s->inputs = nn_cl_alloc(s->cl, bytes, \"the training inputs\");\n"
    "  nn_cl_write(s->cl, s->inputs, 0, bytes, host);\n  if (!u8) free(host);\n"
    "  s->inputs_of = x->buf;\n  s->inputs_rows = x->rows;\n  s->inputs_scale = x->scale;\n  s->inputs_u8 = u8;\n"
    "  if (u8) {\n    float table[256];\n"
    "    for (int v = 0; v < 256; v++) table[v] = (float)(v * x->scale);\n"
    "    nn_cl_write(s->cl, s->table, 0, sizeof table, table);\n"
    "    nn_cl_arg_mem(s->gather_u8, \"nnc_gather_inputs_u8\", 2, s->inputs);\n"
    "  } else {\n    nn_cl_arg_mem(s->gather_f32, \"nnc_gather_inputs_f32\", 2, s->inputs);\n  }\n  return 0;\n}\n\n",
    w, w, w);
  long long y_w = g->y ? node_elems(g->y) : 0;
  P("// The step's only wait is its end (the loss read back): rows and labels go in without\n"
    "// blocking, since the caller's arrays outlive that read.\n"
    "static float nnc_train_step_rows(nn_model *m, const int64_t *rows, const float *y, int n, nn_rng *rng,\n"
    "                                 float *out) {\n  State *s = m->state;\n"
    "  cl_kernel k = s->inputs_u8 ? s->gather_u8 : s->gather_f32;\n"
    "  const char *name = s->inputs_u8 ? \"nnc_gather_inputs_u8\" : \"nnc_gather_inputs_f32\";\n"
    "  nn_cl_write_async(s->cl, s->rows, 0, (size_t)n * sizeof(int64_t), rows);\n"
    "  nn_cl_arg_int(k, name, 1, n);\n"
    "  nn_cl_run(s->cl, k, name, (size_t)(((int64_t)n * %lld + s->wg - 1) / s->wg), (size_t)s->wg);\n", w);
  if (g->y)
    P("  if (y) nn_cl_write_async(s->cl, s->arena, nnc_at(s, %lld, 1), (size_t)n * %lld * sizeof(float), y);\n",
      (long long)e->plan->off[g->y->id], y_w);
  P("  float loss = nnc_train_loaded(s, n, rng, out);\n  nn_cl_finish(s->cl);   // n = 0 reads no loss\n"
    "  return loss;\n}\n\n");
}

// The library's text: read once per emit from the kernels directory.
static const char *read_library(const char *kernels_dir) {
  const char *path = xprintf("%s/nn_kernels.cl", kernels_dir);
  char *text;
  size_t len;
  if (read_file(path, 64 << 20, &text, &len) != READ_OK) {
    fprintf(stderr, "nnc: error: cannot read the OpenCL kernel library %s: %s (set NNC_INCLUDE_DIR)\n", path,
            strerror(errno));
    return NULL;
  }
  return text;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

int emit_opencl(const Program *p, Graph *g, const char *dir, const char *kernels_dir) {
  if (!g->plan || !g->plan->off) internal_error("emit_opencl", "graph not planned");
  for (int i = 0; i < g->n; i++)   // layout.c gives this target NHWC or packed weights only
    if (g->nodes[i]->layout != LAYOUT_NHWC && g->nodes[i]->layout != LAYOUT_PACKED)
      internal_error("emit_opencl", "%s has layout %s, which the OpenCL library lacks (pipeline options without "
                     "the target?)", g->nodes[i]->name, node_layout_name(g->nodes[i]));
  if (!(library = read_library(kernels_dir))) return -1;
  Emit e = {.p = p, .g = g, .plan = g->plan, .d = &cl_dialect};
  // model.cl, as text: written beside the host code for readers, embedded in it to run.
  char *cl_text = NULL;
  size_t cl_len = 0;
  e.out = open_memstream(&cl_text, &cl_len);
  if (!e.out) internal_error("emit_opencl", "open_memstream failed");
  emit_cl_program(&e);
  fclose(e.out);
  const char *program = xprintf("%s\n%s", library, cl_text);
  if (write_text(xprintf("%s/model.cl", dir), xprintf("// Built after nn_kernels.cl (the kernel library).\n%s", cl_text)) < 0 ||
      write_text(xprintf("%s/nn_kernels.cl", dir), library) < 0) {
    free(cl_text);
    return -1;
  }
  free(cl_text);
  char *path = xprintf("%s/model.c", dir);
  FILE *out = fopen(path, "w");
  if (!out) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  e.out = out;
  emit_host(&e, program);
  emit_main(out, p, g);
  if (fclose(out) != 0) {
    fprintf(stderr, "nnc: error: cannot write %s\n", path);
    return -1;
  }
  return emit_readme(g, dir, xprintf("model.c (host) and model.cl (kernels, after nn_kernels.cl): generated by nnc. "
                                     "Build: cc -O2 -I<nnc>/include model.c libnnrt.a -lOpenCL -lz%s -lm",
                                     program_uses_hdf5(p) ? " -lhdf5_serial" : ""));
}
