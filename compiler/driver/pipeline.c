// pipeline.c — the back end's pass list, read top to bottom (QBE's main is the model).
//
// Every command that needs a graph (graph, emit, build, the tests) runs this one list up
// to the stage it wants, instead of calling passes itself. The optimization passes of
// the speed work (fusion, layout selection, buffer reuse) go between autodiff and
// schedule, each one a row here; `optimized` names the graph after all of them.
#include "nnc.h"

#include <stddef.h>
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

// The fusion passes, each switched off by --no-fuse or by its own name
// (--no-fuse=softmax). Each removes what it absorbed: a fused graph keeps no dead nodes
// for the next pass to trip over (a dead node still counts as a use of its inputs).
static void pass_fuse_epilogues(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_epilogue) fuse_epilogues(g);
  graph_remove_dead(g);
}

static void pass_fuse_gradients(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_gradient) fuse_gradients(g);
  graph_remove_dead(g);
}

static void pass_fuse_pooling(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_pool) fuse_pooling(g);
  graph_remove_dead(g);
}

static void pass_trim_pooled(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_trim) trim_pooled_convs(g);
}

static void pass_fuse_bias_grads(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_bias) fuse_bias_grads(g);
}

static void pass_fuse_softmax(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_softmax) fuse_softmax_loss(g);
}

static void pass_fuse_elementwise(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_elementwise) fuse_elementwise(g);
}

static void pass_fuse_updates(Graph *g, const Program *p) {
  if (!options.no_fuse && !options.no_fuse_updates) fuse_updates(g);
}

// Removal of what no loss, update or output needs: a graph fresh from autodiff has no
// dead nodes; fusion leaves the nodes it absorbed.
static void pass_fused(Graph *g, const Program *p) { graph_remove_dead(g); }

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
    {"epilogues", pass_fuse_epilogues}, // bias and activation in the contractions' epilogues
    {"gradients", pass_fuse_gradients}, // activation gradients inside their producers
    {"pooling", pass_fuse_pooling},    // a first convolution pools its own output
    {"trimmed", pass_trim_pooled},     // convolutions compute only the cells their readers reach
    {"bias_grads", pass_fuse_bias_grads}, // bias gradients summed by the weight gradients
    {"softmax", pass_fuse_softmax},    // the loss kernel writes the output probabilities
    {"elementwise", pass_fuse_elementwise}, // pointwise chains in one loop
    {"updates", pass_fuse_updates},    // every optimizer update of the step in one kernel
    {"fused", pass_fused},             // dead nodes removed
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

int pass_options_parse_no_fuse(PassOptions *o, const char *list) {
  static const struct { const char *name; size_t at; } names[] = {
      {"epilogue", offsetof(PassOptions, no_fuse_epilogue)},
      {"gradient", offsetof(PassOptions, no_fuse_gradient)},
      {"bias", offsetof(PassOptions, no_fuse_bias)},
      {"softmax", offsetof(PassOptions, no_fuse_softmax)},
      {"elementwise", offsetof(PassOptions, no_fuse_elementwise)},
      {"updates", offsetof(PassOptions, no_fuse_updates)},
      {"pool", offsetof(PassOptions, no_fuse_pool)},
      {"trim", offsetof(PassOptions, no_fuse_trim)},
  };
  for (const char *at = list;;) {
    size_t len = strcspn(at, ",");
    bool known = false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      if (strlen(names[i].name) == len && !strncmp(at, names[i].name, len))
        *(bool *)((char *)o + names[i].at) = true, known = true;
    if (!known) return -1;
    if (!at[len]) return 0;
    at += len + 1;
  }
}
