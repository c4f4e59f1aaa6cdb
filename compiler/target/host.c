// host.c — the host-side pieces both targets print the same way: weight initializers,
// the params table (Keras names and layouts), and the nn_model's description.
//
// Weights live at the plan's offsets from a base pointer: the arena itself on the C
// target, a host mirror of the device arena's weight region on OpenCL.
#include "target.h"
#include "nn.h"

#include <math.h>
#include <string.h>

#define P(...) fprintf(e->out, __VA_ARGS__)

// A double as a C literal that reads back exactly.
const char *cnum(double v) {
  if (isnan(v)) return "NAN";
  if (isinf(v)) return v < 0 ? "-HUGE_VAL" : "HUGE_VAL";
  char buf[48];
  nn_format_float(buf, sizeof buf, v);
  return xstrdup(buf);
}

void emit_c_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 strchr(" _.,:;/+=-", *c);
    if (plain) fputc(*c, out);
    else fprintf(out, "\\%03o", *c);
  }
  fputc('"', out);
}

static void emit_init_param(Emit *e, const Node *w, const char *base) {
  // Keras's fans: rank 1 → both the size; Dense [in, out]; Conv [kh, kw, in, out].
  const Shape *s = &w->shape;
  double fan_in = s->dim[0], fan_out = s->dim[0];
  if (s->rank >= 2) {
    double receptive = 1;
    for (int i = 0; i + 2 < s->rank; i++) receptive *= s->dim[i];
    fan_in = s->dim[s->rank - 2] * receptive;
    fan_out = s->dim[s->rank - 1] * receptive;
  }
  const double trunc = 0.87962566103423978;   // stddev of N(0,1) truncated at ±2
  long long k = node_elems(w);
  const char *name = xprintf("%s + %lld", base, (long long)e->plan->off[w->id]);
  P("  // %s\n", w->name);
  switch (w->init) {
  case INIT_GLOROT_UNIFORM: P("  nnc_init_uniform(%s, %lld, %s, rng);   // glorot_uniform\n", name, k, cnum(sqrt(6 / (fan_in + fan_out)))); break;
  case INIT_HE_UNIFORM: P("  nnc_init_uniform(%s, %lld, %s, rng);   // he_uniform\n", name, k, cnum(sqrt(6 / fan_in))); break;
  case INIT_LECUN_UNIFORM: P("  nnc_init_uniform(%s, %lld, %s, rng);   // lecun_uniform\n", name, k, cnum(sqrt(3 / fan_in))); break;
  case INIT_RANDOM_UNIFORM: P("  nnc_init_uniform(%s, %lld, 0.05, rng);   // random_uniform\n", name, k); break;
  case INIT_GLOROT_NORMAL: P("  nnc_init_normal(%s, %lld, %s, 1, rng);   // glorot_normal\n", name, k, cnum(sqrt(2 / (fan_in + fan_out)) / trunc)); break;
  case INIT_HE_NORMAL: P("  nnc_init_normal(%s, %lld, %s, 1, rng);   // he_normal\n", name, k, cnum(sqrt(2 / fan_in) / trunc)); break;
  case INIT_LECUN_NORMAL: P("  nnc_init_normal(%s, %lld, %s, 1, rng);   // lecun_normal\n", name, k, cnum(sqrt(1 / fan_in) / trunc)); break;
  case INIT_RANDOM_NORMAL: P("  nnc_init_normal(%s, %lld, 0.05, 0, rng);   // random_normal\n", name, k); break;
  case INIT_ZEROS: P("  nnc_init_fill(%s, %lld, 0);\n", name, k); break;
  case INIT_ONES: P("  nnc_init_fill(%s, %lld, 1);\n", name, k); break;
  }
}

static const char *const init_prelude =
    "static inline void nnc_init_uniform(nn_real *w, int64_t size, double limit, nn_rng *rng) {\n"
    "  for (int64_t i = 0; i < size; i++) w[i] = (nn_real)((2 * nn_rng_uniform(rng) - 1) * limit);\n"
    "}\n\n"
    "// Keras's truncated normal redraws samples beyond two standard deviations.\n"
    "static inline void nnc_init_normal(nn_real *w, int64_t size, double stddev, int truncated, nn_rng *rng) {\n"
    "  for (int64_t i = 0; i < size; i++) {\n"
    "    double z;\n"
    "    do z = nn_rng_normal(rng); while (truncated && fabs(z) > 2);\n"
    "    w[i] = (nn_real)(z * stddev);\n"
    "  }\n"
    "}\n\n"
    "static inline void nnc_init_fill(nn_real *w, int64_t size, double v) {\n"
    "  for (int64_t i = 0; i < size; i++) w[i] = (nn_real)v;\n"
    "}\n\n"
    "// nn_param.value is float*: a double build (gradient checks) has no such view.\n"
    "static inline float *nnc_as_float(nn_real *p) {\n"
    "  return sizeof(nn_real) == sizeof(float) ? (float *)(void *)p : NULL;\n"
    "}\n\n";

void emit_host_init(Emit *e, const char *base, const char *after) {
  Graph *g = e->g;
  fputs(init_prelude, e->out);
  P("// Initial weights, in Keras's order, from the seeded generator.\n");
  P("static void nnc_init(nn_model *m, nn_rng *rng) {\n  State *s = m->state;\n");
  for (int i = 0; i < g->n_params; i++) emit_init_param(e, g->params[i], base);
  P("%s}\n\n", after);
  P("static nn_param nnc_params[%d] = {\n", g->n_params ? g->n_params : 1);
  for (int i = 0; i < g->n_params; i++) {
    const Node *w = g->params[i];
    P("  {");
    emit_c_string(e->out, w->keras_name);
    P(", %d, {", w->shape.rank);
    for (int d = 0; d < w->shape.rank; d++) P("%s%lld", d ? ", " : "", (long long)w->shape.dim[d]);
    P("}, %lld, NULL, %s},\n", (long long)node_elems(w), w->trainable ? "true" : "false");
  }
  P("};\n\n");
}

// A long text as adjacent literals of at most 100 bytes, so the source stays readable.
static void emit_long_string(FILE *out, const char *s) {
  size_t n = strlen(s);
  if (!n) fputs("\"\"", out);
  for (size_t at = 0; at < n; at += 100) {
    fputs("\n      ", out);
    emit_c_string(out, xstrndup(s + at, n - at < 100 ? n - at : 100));
  }
}

// What Keras's files need beyond the params: the layers (Keras 3 stores weights per layer,
// Keras 2 names them by layer) and the model's Keras config.
static void emit_keras_description(Emit *e) {
  const Program *p = e->p;
  Graph *g = e->g;
  P("  static const nn_layer layers[%d] = {\n", p->n_layers > 1 ? p->n_layers - 1 : 1);
  int n = 0;
  for (int i = 0; i < p->n_layers; i++) {
    const Layer *l = &p->layers[i];
    if (l->kind == L_INPUT) continue;
    int first = -1, count = 0;
    size_t len = strlen(l->name);
    for (int k = 0; k < g->n_params; k++) {
      const char *w = g->params[k]->keras_name;
      if (!strncmp(w, l->name, len) && w[len] == '.' && !strchr(w + len + 1, '.')) {
        if (first < 0) first = k;
        count++;
      }
    }
    P("    {\"%s\", ", l->cls ? l->cls : layer_kind_name(l->kind));
    emit_c_string(e->out, l->name);
    P(", %d, %d},\n", first < 0 ? 0 : first, count);
    n++;
  }
  P("  };\n  m->n_layers = %d;\n  m->layers = layers;\n  m->name = ", n);
  emit_c_string(e->out, p->model_name ? p->model_name : "sequential");
  P(";\n  m->keras_config =");
  emit_long_string(e->out, keras_model_config(p));
  const char *training = keras_training_config(p);
  P(";\n  m->training_config =");
  if (training) emit_long_string(e->out, training);
  else P(" NULL");
  P(";\n");
  if (!g->loss) return;
  // Each trained param's slots: its update node's aux buffer, within the slot region.
  P("  static const int64_t opt_offset[%d] = {", g->n_params ? g->n_params : 1);
  for (int i = 0; i < g->n_params; i++) {
    long long off = -1;
    for (int k = 0; k < g->n; k++) {
      const Node *u = g->nodes[k];
      if (op_info[u->op].cls == FC_OPTIMIZER && u->in[0] == g->params[i])
        off = (long long)(e->plan->aux_off[u->id] - e->plan->slots_begin);
    }
    P("%s%lld", i ? ", " : "", off);
  }
  const Optimizer *o = &p->opt;
  P("};\n  m->opt_name = \"%s\";\n  m->opt_lr = %s;\n", o->kind == OPT_SGD ? "SGD" : optimizer_name(o->kind), cnum(o->lr));
  P("  m->opt_momentum = %s;\n  m->opt_centered = %s;\n", o->momentum != 0 ? "true" : "false",
    o->centered ? "true" : "false");
  P("  m->opt_offset = opt_offset;\n");
}

void emit_host_model_fields(Emit *e, const char *base) {
  const Program *p = e->p;
  Graph *g = e->g;
  for (int i = 0; i < g->n_params; i++)
    P("  nnc_params[%d].value = nnc_as_float(%s + %lld);\n", i, base, (long long)e->plan->off[g->params[i]->id]);
  P("  m->name = \"model\";\n  m->n_params = %d;\n  m->params = nnc_params;\n", g->n_params);
  P("  m->in_width = %lld;\n  m->out_width = %lld;\n  m->label_width = %lld;\n  m->max_batch = max_batch;\n",
    (long long)node_elems(g->x), (long long)node_elems(g->output), (long long)(g->y ? node_elems(g->y) : 0));
  P("  m->loss = %s;\n", (const char *[]){"NN_LOSS_MSE", "NN_LOSS_MAE", "NN_LOSS_BCE", "NN_LOSS_CCE",
                                          "NN_LOSS_SPARSE_CCE"}[p->loss]);
  P("  m->n_metrics = %d;\n", p->n_metrics);
  for (int i = 0; i < p->n_metrics; i++)
    P("  m->metrics[%d] = %s;\n", i, (const char *[]){"NN_METRIC_ACCURACY", "NN_METRIC_MAE", "NN_METRIC_MSE"}[p->metrics[i]]);
  P("  m->init = nnc_init;\n  m->train_step = %s;\n  m->infer = nnc_infer;\n", g->loss ? "nnc_train_step" : "NULL");
  P("  m->reset_optimizer = nnc_reset_optimizer;\n  m->state = s;\n");
  P("  m->optimizer_elems = SLOTS_ELEMS;\n  m->optimizer_state = nnc_optimizer_state;\n");
  if (g->loss) P("  m->first_nonfinite = nnc_first_nonfinite;\n");
  if (program_uses_hdf5(p)) emit_keras_description(e);
}

// The batch's mean loss plus the regularization terms, as Keras reports it, from the
// summed loss the kernel returned.
const char *host_batch_loss_expr(const Graph *g, const char *loss, const char *reg) {
  long long rows = shape_rows(&g->loss->in[0]->shape);
  return rows == 1 ? xprintf("%s / n + %s", loss, reg) : xprintf("%s / ((double)n * %lld) + %s", loss, rows, reg);
}

bool emit_profile;

// Bench builds: the train step's kernels in order (forward, backward, updates), each
// timed into nnc_prof_seconds[k] after the dialect's sync while nnc_prof_timing is set.
// The bench main() also runs untimed steps: on OpenCL each sync is a round trip to the
// device's threads that a normal step does not pay. Nothing in other builds.
static void emit_profile_table(Emit *e) {
  const Node **ks;
  int n = train_step_kernels(e->g, &ks);
  P("// nnc bench: seconds per train-step kernel (bench builds only).\n"
    "enum { NNC_PROF_KERNELS = %d };\nstatic const char *const nnc_prof_names[NNC_PROF_KERNELS + 1] = {\n", n);
  for (int k = 0; k < n; k++) P("  \"%s\",\n", ks[k]->name);
  P("};\nstatic double nnc_prof_seconds[NNC_PROF_KERNELS + 1];\nstatic size_t nnc_prof_arena_bytes;\n"
    "static int nnc_prof_timing = 1;  // 0: the step runs as in a normal build\n"
    "#define NNC_TIMED(k, run)                                 \\\n"
    "  do {                                                    \\\n"
    "    if (!nnc_prof_timing) {                               \\\n"
    "      run                                                 \\\n"
    "      break;                                              \\\n"
    "    }                                                     \\\n"
    "    double t0_ = nn_now();                                \\\n"
    "    run %s                                                \\\n"
    "    nnc_prof_seconds[k] += nn_now() - t0_;                \\\n"
    "  } while (0)\n\n", e->d->sync);
}

// A train-phase run statement, timed as kernel k (train_step_kernels' numbering) in
// bench builds.
static const char *timed(int k, const char *run) {
  return emit_profile ? xprintf("NNC_TIMED(%d, %s);", k, run) : run;
}

void emit_host_phases(Emit *e) {
  const Plan *pl = e->plan;
  const Graph *g = e->g;
  if (emit_profile) emit_profile_table(e);
  int k = 0;                           // the train step's kernels so far
  P("static void nnc_forward_train(State *s, int n) {\n%s", e->d->forward_prologue);
  for (int i = 0; i < pl->n_fwd; i++)
    if (runs_in_train_step(g, pl->fwd[i])) P("  %s\n", timed(k++, e->d->run(e, pl->fwd[i], false, "n")));
    else P("  // %s: written by %s\n", pl->fwd[i]->name, pl->fwd[i]->computed_by->name);
  P("}\n\n");
  P("// Inference: dropout off, moving statistics; the loss only when labels are given.\n");
  P("static void nnc_forward_infer(State *s, int n, int with_loss) {\n%s", e->d->forward_prologue);
  for (int i = 0; i < pl->n_fwd; i++) {
    const Node *nd = pl->fwd[i];
    bool loss = op_info[nd->op].cls == FC_LOSS;
    // A node the loss computes (fuse_softmax.c) runs only when the loss does not.
    P("  %s%s\n", loss ? "if (with_loss) " : nd->computed_by ? "if (!with_loss) " : "",
      e->d->run(e, nd, node_has_infer_variant(nd), "n"));
  }
  P("}\n\n");
  if (!e->g->loss) return;
  P("static void nnc_backward(State *s, int n) {\n");
  for (int i = 0; i < pl->n_bwd; i++) {
    if (runs_in_train_step(g, pl->bwd[i])) P("  %s\n", timed(k++, e->d->run(e, pl->bwd[i], false, "n")));
    else P("  // %s: written by %s\n", pl->bwd[i]->name, pl->bwd[i]->computed_by->name);
    if (e->p->mpi) emit_mpi_backward_hook(e, i);  // start reducing the gradients it completed
  }
  P("}\n\n");
  P("static void nnc_update(State *s) {\n");
  for (int i = 0; i < pl->n_upd; i++)
    if (runs_in_train_step(g, pl->upd[i])) P("  %s\n", timed(k++, e->d->run(e, pl->upd[i], false, "0")));
  if (g->update_all) P("  %s\n", timed(k++, e->d->run(e, g->update_all, false, "0")));
  P("}\n\n");
}

void emit_host_steps(Emit *e) {
  Graph *g = e->g;
  if (g->loss) {
    if (e->p->mpi)
      emit_mpi_train_loaded(e);  // the same step, with the gradients averaged over the ranks
    else
      P("// One optimizer step on the batch in the model's input buffers.\n"
        "static float nnc_train_loaded(State *s, int n, nn_rng *rng, float *out) {\n"
        "  s->seed = nn_rng_next(rng);\n  nnc_forward_train(s, n);\n  if (out) nnc_store_output(s, n, out);\n"
        "  nnc_backward(s, n);\n  s->step++;\n  nnc_update(s);\n  return (float)nnc_batch_loss(s, n);\n}\n\n");
    P("static float nnc_train_step(nn_model *m, const float *x, const float *y, int n, nn_rng *rng,\n"
      "                            float *out) {\n  State *s = m->state;\n  nnc_load_batch(s, x, y, n);\n"
      "  return nnc_train_loaded(s, n, rng, out);\n}\n\n");
  }
  P("static float nnc_infer(nn_model *m, const float *x, const float *y, int n, float *out) {\n"
    "  %s\n  nnc_load_batch(s, x, %s, n);\n  nnc_forward_infer(s, n, %s);\n"
    "  if (out) nnc_store_output(s, n, out);\n  return %s;\n}\n\n",
    e->d->infer_state ? e->d->infer_state : "State *s = m->state;", g->y ? "y" : "NULL", g->loss ? "y != NULL" : "0", g->loss ? "y ? (float)nnc_batch_loss(s, n) : 0" : "0");
}
