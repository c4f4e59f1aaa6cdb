// numerics.c — what --check-numerics and the backups need from generated code, printed
// the same way for both targets: a table of every buffer a train step writes, in
// execution order, with the function that finds the first NaN or infinity in them.
//
// The step itself is unchanged: the runtime calls nnc_first_nonfinite after a step only
// when asked (runtime/numerics.c). Each target defines nnc_numerics_view(s, off,
// batched, count) first: a pointer to the buffer's values (C), or a host copy (OpenCL).
#include "target.h"

#define P(...) fprintf(e->out, __VA_ARGS__)

static void row(Emit *e, const char *node, const char *op, int64_t off, long long elems, bool batched) {
  if (off < 0 || elems <= 0) return;
  P("  {\"%s\", \"%s\", %lld, %lld, %d},\n", node, op, (long long)off, elems, batched ? 1 : 0);
}

void emit_numerics(Emit *e) {
  const Graph *g = e->g;
  const Plan *pl = e->plan;
  if (!g->loss) return;
  P("// --check-numerics: every buffer a train step writes, in execution order; the first\n"
    "// one holding a NaN or an infinity names the node that made it (runtime/numerics.c).\n");
  P("// batched: 1 per-sample buffer (n samples), 0 one of its own, 2 the loss value.\n");
  P("static const struct { const char *node, *op; int64_t off, elems; int batched; } nnc_numerics[] = {\n");
  row(e, g->x->name, "input", pl->off[g->x->id], node_elems(g->x), true);
  if (g->y) row(e, g->y->name, "labels", pl->off[g->y->id], node_elems(g->y), true);
  for (int i = 0; i < pl->n_fwd; i++) {
    const Node *nd = pl->fwd[i];
    row(e, nd->name, op_info[nd->op].name, pl->off[nd->id], node_elems(nd), pl->in_batch[nd->id]);
    // The loss (and regularization) value itself: a finite prediction may still overflow it.
    if (op_info[nd->op].cls == FC_LOSS) P("  {\"%s\", \"%s\", 0, 1, 2},\n", nd->name, op_info[nd->op].name);
  }
  for (int i = 0; i < pl->n_bwd; i++) {
    const Node *nd = pl->bwd[i];
    row(e, nd->name, op_info[nd->op].name, pl->off[nd->id], node_elems(nd), pl->in_batch[nd->id]);
  }
  // An update writes its weight and its slots.
  for (int i = 0; i < pl->n_upd; i++) {
    const Node *nd = pl->upd[i], *w = nd->in[0];
    row(e, nd->name, op_info[nd->op].name, pl->off[w->id], node_elems(w), false);
    row(e, nd->name, op_info[nd->op].name, pl->aux_off[nd->id], node_aux_elems(nd), false);
  }
  P("};\n\n");
  P("static int nnc_first_nonfinite(nn_model *m, int n, const char **node, const char **op) {\n"
    "  State *s = m->state;\n"
    "  for (size_t i = 0; i < sizeof nnc_numerics / sizeof nnc_numerics[0]; i++) {\n"
    "    if (nnc_numerics[i].batched == 2 && !(isfinite((float)(s->loss / n)) && isfinite((float)s->reg))) {\n"
    "      *node = nnc_numerics[i].node;\n      *op = nnc_numerics[i].op;\n      return 1;\n    }\n"
    "    if (nnc_numerics[i].batched == 2) continue;\n"
    "    int64_t count = nnc_numerics[i].elems * (nnc_numerics[i].batched ? n : 1);\n"
    "    const nn_real *v = nnc_numerics_view(s, nnc_numerics[i].off, nnc_numerics[i].batched, count);\n"
    "    for (int64_t k = 0; v && k < count; k++)\n"
    "      if (!isfinite(v[k])) {\n"
    "        *node = nnc_numerics[i].node;\n        *op = nnc_numerics[i].op;\n        return 1;\n      }\n"
    "  }\n  return 0;\n}\n\n");
}
