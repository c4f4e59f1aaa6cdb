// pipeline.c — the back end's pass list, read top to bottom (QBE's main is the model).
//
// Every command that needs a graph (graph, emit, build, the tests) runs this one list up
// to the stage it wants, instead of calling passes itself. The optimization passes of
// the speed work (fusion, layout selection, buffer reuse) go between autodiff and
// schedule, each one a row here; `optimized` names the graph after all of them.
#include "nnc.h"

#include <stdlib.h>
#include <string.h>

static bool verify_on =
#ifdef NDEBUG
    false;
#else
    true;
#endif

void pipeline_set_verify(bool on) { verify_on = on; }

static PassOptions options;
void pipeline_set_options(PassOptions o) { options = o; }


static void pass_autodiff(Graph *g, const Program *p) {
  if (p->compiled) autodiff(g, p);
}

// Epilogue fusion (fuse.c) and gradient fusion (fuse_grad.c), then removal of what no loss, update or output needs: a
// graph fresh from autodiff has no dead nodes; fusion leaves the bias and activation
// nodes it absorbed.
static void pass_fuse(Graph *g, const Program *p) {
  if (!options.no_fuse) fuse_epilogues(g), fuse_gradients(g);
  graph_remove_dead(g);
}

// Layout selection (layout.c) on the final contractions: after fusion, before the schedule.
static void pass_layout(Graph *g, const Program *p) { select_layouts(g, p, options.layout, options.target); }

static void pass_schedule(Graph *g, const Program *p) { schedule(g); }
static void pass_plan_memory(Graph *g, const Program *p) { plan_memory(g, !options.no_reuse); }

typedef struct Pass {
  const char *stage;                   // the graph after this pass, as --stage names it
  void (*run)(Graph *g, const Program *p);
} Pass;

static const Pass passes[] = {
    {"parsed", NULL},                  // graph_build: layers lowered to ops
    {"autodiff", pass_autodiff},       // backward ops, loss, regularizers, optimizer updates
    {"fused", pass_fuse},              // epilogue fusion, dead nodes removed
    {"optimized", pass_layout},        // a layout per contraction, pack nodes for PACKED ones
    {"scheduled", pass_schedule},      // what runs in which phase
    {"planned", pass_plan_memory},     // buffer offsets in one arena, shared by liveness
};
enum { N_PASSES = sizeof passes / sizeof passes[0] };

const char *pipeline_stage_name(int i) { return i >= 0 && i < N_PASSES ? passes[i].stage : NULL; }

int pipeline_stage(const char *name) {
  for (int i = 0; i < N_PASSES; i++)
    if (!strcmp(passes[i].stage, name)) return i;
  return -1;
}

Graph *pipeline_run(const Program *p, const char *stage) {
  int last = stage ? pipeline_stage(stage) : N_PASSES - 1;
  if (last < 0) return NULL;
  const char *env = getenv("NNC_VERIFY");
  bool verify = verify_on || (env && !strcmp(env, "1"));
  Graph *g = graph_build(p);
  if (verify) graph_verify(g, "parsed");
  for (int i = 1; i <= last; i++) {
    passes[i].run(g, p);
    if (verify) graph_verify(g, passes[i].stage);
  }
  return g;
}
