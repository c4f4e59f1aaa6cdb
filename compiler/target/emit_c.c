// emit_c.c — the C target: the plan and the op emitters printed as DIR/model.c.
//
// Needs: a planned graph (pipeline_run to "planned"). Guarantees: readable C11 that
// includes "nn.h" and "nn_kernels.h"; one static function per node that runs a kernel,
// named after it, with a comment giving its op and shapes; every shape a literal, the
// batch count n the only run-time dimension; every buffer at the plan's offset in one
// arena; the same input gives byte-identical output. Built with -DNN_REAL=double the
// train step runs in double precision (gradient checks). Nothing from the user's file
// is printed except as escaped string literals or through the graph's mangled names.
#include "target.h"
#include "nn.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define P(...) fprintf(e->out, __VA_ARGS__)

//
// The C dialect: a kernel call is a statement in the node's function.
//
static const char *c_buf(Emit *e, const Node *nd) { return xprintf("s->%s", nd->name); }
static const char *c_aux(Emit *e, const Node *nd) { return xprintf("s->%s_aux", nd->name); }

static void c_call(Emit *e, const Node *nd, ResultKind result, const char *kernel, const char *args, int traits) {
  const char *lhs = result == R_LOSS ? "s->loss = " : result == R_REG ? "s->reg += " : "";
  P("  %snnk_%s(%s%s);\n", lhs, kernel, args, traits & K_WORK ? ", s->work" : "");
}

static void c_zero(Emit *e, const Node *nd) {
  P("  memset(%s, 0, %lld * sizeof(nn_real));\n", c_buf(e, nd), (long long)node_elems(nd));
}

static const char *c_run(Emit *e, const Node *nd, bool infer, const char *n) {
  return xprintf("%s%s(s, %s);", nd->name, infer ? "_infer" : "", n);
}

static const Dialect c_dialect = {
    .name = "c", .buf = c_buf, .aux = c_aux, .null_buf = "NULL", .ptr_space = "", .seed = "s->seed", .step = "s->step",
    .call = c_call, .zero = c_zero, .run = c_run, .forward_prologue = "  s->reg = 0;\n",
    .sync = "", .infer_state = "State si, *s = nnc_infer_state(m->state, &si);",
};

//
// The file, section by section
//
static void emit_header(Emit *e) {
  const Plan *pl = e->plan;
  emit_model_summary_comment(e, "model.c");
  P("// One function per graph node that runs a kernel, named after it; shapes are\n"
    "// constants and the batch count n is the only run-time dimension. Every buffer has\n"
    "// an offset fixed at compile time in one arena allocated at model creation (weights,\n"
    "// optimizer slots, other batch-independent buffers, then per-sample buffers ×\n"
    "// max_batch), buffers sharing memory where their lifetimes do not overlap. Inference\n"
    "// lays the per-sample region out anew (INFER_PER_SAMPLE_ELEMS) for a larger batch.\n");
  P("#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
  P("#include \"nn.h\"\n#include \"nn_kernels.h\"\n%s\n", e->p->mpi ? "#include \"nn_mpi.h\"\n" : "");
  P("enum {\n  WEIGHTS_ELEMS = %lld,\n  SLOTS_BEGIN = %lld,\n  SLOTS_ELEMS = %lld,\n  FIXED_ELEMS = %lld,\n"
    "  PER_SAMPLE_ELEMS = %lld,\n  INFER_PER_SAMPLE_ELEMS = %lld,  // the inference pass's layout\n};\n\n",
    (long long)pl->weights_elems, (long long)pl->slots_begin, (long long)pl->slots_elems, (long long)pl->fixed_elems,
    (long long)pl->batch_elems, (long long)pl->infer_batch_elems);
}

static void emit_state(Emit *e) {
  Graph *g = e->g;
  P("// Field names without '_' are the program's own; the others are graph nodes.\n");
  P("typedef struct State {\n  int maxbatch, inferbatch;  // largest n of a train step; of an inference call\n  int64_t step;             // optimizer steps taken (Adam's t)\n"
    "  uint64_t seed;            // this step's dropout seed\n"
    "  double loss, reg;         // the batch's summed loss; regularization terms\n"
    "  nn_real *arena, *work;    // all buffers; convolution workspace\n");
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (nd->shape.rank == 0 && !node_aux_elems(nd)) continue;
    if (nd->shape.rank > 0) {
      P("  nn_real *%s;  // %s ", nd->name, op_info[nd->op].name);
      emit_shape_text(e->out, nd);
      if (nd->alias) P(nd->op == OP_aux_view ? ", in %s_aux" : ", storage of %s", nd->alias->name);
      P("\n");
    }
    if (node_aux_elems(nd)) {
      const char *what = nd->op == OP_dropout ? "mask" : nd->op == OP_batchnorm_train ? "batch mean, 1/std"
                         : nd->op == OP_batchnorm_bwd ? "d gamma, d beta"
                         : nd->op == OP_conv2d ? "im2col's matrix, for the filter gradient" : "optimizer slots";
      P("  nn_real *%s_aux;  // %s\n", nd->name, what);
    }
  }
  P("} State;\n\n");
}

// Whether the identifier n occurs in a function body (updates never read it).
static bool uses_n(const char *body) {
  for (const char *c = body; (c = strchr(c, 'n')); c++) {
    bool before = c > body && (isalnum((unsigned char)c[-1]) || c[-1] == '_');
    bool after = isalnum((unsigned char)c[1]) || c[1] == '_';
    if (!before && !after) return true;
  }
  return false;
}

static void emit_node_fn(Emit *e, const Node *nd, bool infer) {
  char *body = node_calls_text(e, nd, infer);
  emit_node_comment(e, nd, infer);
  P("static void %s%s(State *s, int n) {\n%s%s}\n\n", nd->name, infer ? "_infer" : "",
    uses_n(body) ? "" : "  (void)n;\n", body);
}

static void emit_nodes(Emit *e) {
  KernelRef *ks;
  int nk = list_kernels(e, &ks);
  for (int i = 0; i < nk; i++) emit_node_fn(e, ks[i].nd, ks[i].infer);
}

static void emit_work_sizing(Emit *e, Node *const *nodes, int n, const char *batch);
static void emit_infer_state(Emit *e);

static void emit_model(Emit *e) {
  Graph *g = e->g;
  const Plan *pl = e->plan;
  P("static void nnc_reset_optimizer(nn_model *m) {\n  State *s = m->state;\n"
    "  memset(s->arena + SLOTS_BEGIN, 0, SLOTS_ELEMS * sizeof(nn_real));\n  s->step = 0;\n}\n\n");
  P("// The optimizer's state for backups (runtime/backup.c).\n"
    "static void nnc_optimizer_state(nn_model *m, float *slots, int64_t *step, bool save) {\n"
    "  State *s = m->state;\n  for (int64_t i = 0; i < SLOTS_ELEMS; i++)\n"
    "    if (save) slots[i] = (float)s->arena[SLOTS_BEGIN + i];\n"
    "    else s->arena[SLOTS_BEGIN + i] = (nn_real)slots[i];\n"
    "  if (save) *step = s->step;\n  else s->step = *step;\n}\n\n");
  P("static const nn_real *nnc_numerics_view(State *s, int64_t off, int batched, int64_t count) {\n"
    "  (void)count;\n  return s->arena + (batched ? FIXED_ELEMS + off * s->maxbatch : off);\n}\n\n");
  emit_numerics(e);
  emit_host_init(e, "s->arena", "  nnc_reset_optimizer(m);\n");

  // Batch in, outputs out: the runtime speaks float, the kernels nn_real.
  long long in_w = node_elems(g->x), out_w = node_elems(g->output), y_w = g->y ? node_elems(g->y) : 0;
  P("static void nnc_load_batch(State *s, const float *x, const float *y, int n) {\n");
  P("  for (int64_t i = 0; i < (int64_t)n * %lld; i++) s->%s[i] = (nn_real)x[i];\n", in_w, g->x->name);
  if (g->y) P("  if (y)\n    for (int64_t i = 0; i < (int64_t)n * %lld; i++) s->%s[i] = (nn_real)y[i];\n", y_w, g->y->name);
  P("}\n\n");
  P("static void nnc_store_output(State *s, int n, float *out) {\n");
  P("  for (int64_t i = 0; i < (int64_t)n * %lld; i++) out[i] = (float)s->%s[i];\n}\n\n", out_w, g->output->name);
  if (g->loss) {
    P("// The batch's mean loss plus the regularization terms, as Keras reports it.\n"
      "static double nnc_batch_loss(State *s, int n) {\n  return %s;\n}\n\n",
      host_batch_loss_expr(g, "s->loss", "s->reg"));
  }
  emit_infer_state(e);
  emit_host_steps(e);

  P("static nn_model *nnc_model_create(int max_batch, const nn_options *opt) {\n  (void)opt;\n");
  P("  static nn_model model;\n  static State state;\n  State *s = &state;\n  nn_model *m = &model;\n");
  P("  s->maxbatch = max_batch;\n  size_t work = 0;\n");
  emit_work_sizing(e, g->nodes, g->n, "max_batch");
  P("  // The inference pass lays the per-sample region out anew: it must fit at max_batch.\n"
    "  double infer_need = (double)INFER_PER_SAMPLE_ELEMS * max_batch + (double)nnc_infer_work(max_batch);\n"
    "  if (infer_need > (double)PER_SAMPLE_ELEMS * max_batch + (double)work)\n"
    "    work = (size_t)(infer_need - (double)PER_SAMPLE_ELEMS * max_batch);\n");
  P("  // The size in double first: size_t arithmetic could wrap around for a huge batch.\n"
    "  double need = ((double)FIXED_ELEMS + (double)PER_SAMPLE_ELEMS * max_batch + (double)work) * sizeof(nn_real);\n"
    "  size_t elems = FIXED_ELEMS + (size_t)PER_SAMPLE_ELEMS * max_batch + work;\n"
    "  size_t bytes = (elems * sizeof(nn_real) + 63) / 64 * 64;\n"
    "  s->arena = need < 0x1p62 ? aligned_alloc(64, bytes ? bytes : 64) : NULL;\n"
    "  if (!s->arena) {\n"
    "    fprintf(stderr, \"error: out of memory for the model (%%.1f MiB at batch %%d)\\n\", need / 1048576, max_batch);\n"
    "    return NULL;\n  }\n  memset(s->arena, 0, bytes);\n"
    "  nn_real *fixed = s->arena, *batch = s->arena + FIXED_ELEMS;\n"
    "  s->work = batch + (size_t)PER_SAMPLE_ELEMS * max_batch;\n");
  if (emit_profile) P("  nnc_prof_arena_bytes = bytes;\n");
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (pl->off[i] >= 0)
      P(pl->in_batch[i] ? "  s->%s = batch + (size_t)%lld * max_batch;\n" : "  s->%s = fixed + %lld;\n", nd->name,
        (long long)pl->off[i]);
    else if (nd->alias && nd->op == OP_aux_view)
      P("  s->%s = s->%s_aux + %lld;\n", nd->name, nd->alias->name, (long long)nd->alias_offset);
    else if (nd->alias)
      P("  s->%s = s->%s;\n", nd->name, nd->alias->name);
    if (pl->aux_off[i] >= 0)
      P(pl->aux_in_batch[i] ? "  s->%s_aux = batch + (size_t)%lld * max_batch;\n" : "  s->%s_aux = fixed + %lld;\n",
        nd->name, (long long)pl->aux_off[i]);
  }
  if (e->p->mpi && g->loss) emit_mpi_register(e);
  emit_host_model_fields(e, "s->arena");
  P("  // Inference runs at the largest batch whose buffers (their own layout) and workspace\n"
    "  // fit in the per-sample region and workspace just allocated for max_batch.\n"
    "  s->inferbatch = nn_infer_batch(max_batch, (double)PER_SAMPLE_ELEMS * max_batch + (double)work,\n"
    "                                 INFER_PER_SAMPLE_ELEMS, nnc_infer_work);\n"
    "  m->infer_batch = s->inferbatch;\n");
  P("  return m;\n}\n\n");
}

// `work` = the largest workspace the convolutions among nodes[0..n) need at `batch`
// samples (each shape once): the step's convolutions share one workspace.
// The convolutions share one workspace, sized for the largest (each shape once).
static void emit_work_sizing(Emit *e, Node *const *nodes, int n, const char *batch) {
  const char **seen = xalloc((n + 1) * sizeof *seen);
  int n_seen = 0;
  for (int i = 0; i < n; i++) {
    const Node *nd = nodes[i];
    if (!node_needs_conv_work(nd)) continue;
    const Window *a = &nd->win;
    const char *args = xprintf("%s, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld", batch,
                               (long long)a->h, (long long)a->w, (long long)a->c, (long long)a->kh, (long long)a->kw,
                               (long long)a->f, (long long)a->sh, (long long)a->sw, (long long)a->oh, (long long)a->ow);
    const char *call = xprintf("%s(%s)", node_conv_work_fn(nd), args);
    bool dup = false;
    for (int k = 0; k < n_seen; k++) dup |= strcmp(seen[k], call) == 0;
    if (dup) continue;
    seen[n_seen++] = call;
    P("  if (%s > work) work = %s;\n", call, call);
  }
}

// The inference pass's state: a copy of the step's whose per-sample buffers sit at the
// inference layout's offsets (memplan.c) × the inference batch, the workspace after
// them. The step's per-sample values are dead between calls, so the two share memory.
static void emit_infer_state(Emit *e) {
  Graph *g = e->g;
  const Plan *pl = e->plan;
  P("// Workspace of the inference pass's convolutions at n samples.\n"
    "static size_t nnc_infer_work(int n) {\n  size_t work = 0;\n");
  emit_work_sizing(e, pl->fwd, pl->n_fwd, "n");
  P("  return work;\n}\n\n");
  P("// The inference pass's buffers: the step's state with the per-sample buffers it touches\n"
    "// laid out anew for s->inferbatch samples in the same per-sample region.\n"
    "static State *nnc_infer_state(State *s, State *si) {\n  *si = *s;\n"
    "  size_t ib = (size_t)s->inferbatch;\n  nn_real *batch = s->arena + FIXED_ELEMS;\n"
    "  si->work = batch + (size_t)INFER_PER_SAMPLE_ELEMS * ib;\n");
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    if (pl->infer_off[i] >= 0) P("  si->%s = batch + (size_t)%lld * ib;\n", nd->name, (long long)pl->infer_off[i]);
    else if (nd->alias && nd->op == OP_aux_view)
      P("  si->%s = si->%s_aux + %lld;\n", nd->name, nd->alias->name, (long long)nd->alias_offset);
    else if (nd->alias)
      P("  si->%s = si->%s;\n", nd->name, nd->alias->name);
    if (pl->infer_aux_off[i] >= 0) P("  si->%s_aux = batch + (size_t)%lld * ib;\n", nd->name, (long long)pl->infer_aux_off[i]);
  }
  P("  return si;\n}\n\n");
}

// The README beside the sources: every node, its op, class and cost.
int emit_readme(const Graph *g, const char *dir, const char *build_line) {
  char *path = xprintf("%s/README", dir);
  FILE *out = fopen(path, "w");
  if (!out) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  fprintf(out, "%s\n\nnode\top\tclass\tFLOPs/sample\n", build_line);
  for (int i = 0; i < g->n; i++) {
    const Node *nd = g->nodes[i];
    double f, b;
    node_cost(nd, 1, &f, &b);
    fprintf(out, "%s\t%s\t%s\t%.0f\n", nd->name, op_info[nd->op].name, fusion_class_name(op_info[nd->op].cls), f);
  }
  return fclose(out) == 0 ? 0 : -1;
}

int emit_c(const Program *p, Graph *g, const char *dir) {
  if (!g->plan || !g->plan->off) internal_error("emit_c", "graph not planned");
  char *path = xprintf("%s/model.c", dir);
  FILE *out = fopen(path, "w");
  if (!out) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  Emit e = {.out = out, .p = p, .g = g, .plan = g->plan, .d = &c_dialect};
  emit_header(&e);
  emit_state(&e);
  emit_nodes(&e);
  emit_host_phases(&e);
  emit_model(&e);
  emit_main(out, p, g);  // emit_main.c
  if (fclose(out) != 0) {
    fprintf(stderr, "nnc: error: cannot write %s\n", path);
    return -1;
  }
  return emit_readme(g, dir, xprintf("model.c: generated by nnc. Build: cc -O2 -fopenmp -I<nnc>/include -I<nnc>/kernels "
                                     "model.c libnnrt.a -lz%s -lm", program_uses_hdf5(p) ? " -lhdf5_serial" : ""));
}
