// The C emitter: generated train steps checked against finite differences (built in
// double precision), training reduces the loss, determinism, escaping, snapshots.
#include <criterion/criterion.h>

#include "nnc.h"
#include "nn.h"
#include "test_backend_programs.h"

// The driver's pass list, with the verifier after every pass.
static Graph *lower(Program *p) {
  pipeline_set_verify(true);
  Graph *g = pipeline_run(p, NULL);
  cr_assert_not_null(g);
  return g;
}

static int64_t m_elems(const Node *nd) { return nd ? shape_size(&nd->shape) : 1; }

// Writes a harness that includes the generated model.c (double precision, no main),
// compares every trainable param's gradient with central differences of the generated
// loss, then trains on the batch and reports the loss before and after.
static void write_harness(const char *dir, const Graph *g, LossKind loss, int classes) {
  char path[512];
  snprintf(path, sizeof path, "%s/harness.c", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fprintf(f, "#define NN_REAL double\n#define NNC_NO_MAIN\n#include \"model.c\"\n\n");
  fprintf(f, "int main(void) {\n  nn_model *m = nnc_model_create(4, &(nn_options){.device = -1});\n  nn_rng rng;\n  nn_rng_seed(&rng, 7);\n");
  fprintf(f, "  m->init(m, &rng);\n  State *s = m->state;\n  enum { N = 3 };\n");
  fprintf(f, "  static float x[N * %lld], y[N * %lld];\n", (long long)m_elems(g->x), (long long)m_elems(g->y));
  fprintf(f, "  for (int i = 0; i < N * %lld; i++) x[i] = (float)sin(1.7 * i + 0.3);\n", (long long)m_elems(g->x));
  switch (loss) {
  case LOSS_SPARSE_CCE:
    fprintf(f, "  for (int i = 0; i < N; i++) y[i] = (float)((i + 1) %% %d);\n", classes);
    break;
  case LOSS_CCE:
    fprintf(f, "  for (int i = 0; i < N; i++) y[i * %d + (i + 1) %% %d] = 1;\n", classes, classes);
    break;
  case LOSS_BCE:
    fprintf(f, "  for (int i = 0; i < N * %d; i++) y[i] = (float)(i %% 2);\n", classes);
    break;
  default:
    fprintf(f, "  for (int i = 0; i < N * %d; i++) y[i] = (float)cos(0.9 * i);\n", classes);
  }
  fprintf(f, "  struct { const char *name; nn_real *w, *g; int64_t size; } ps[] = {\n");
  for (int i = 0; i < g->n; i++) {
    const Node *u = g->nodes[i];
    if (op_info[u->op].cls != FC_OPTIMIZER) continue;
    fprintf(f, "    {\"%s\", s->%s, s->%s, %lld},\n", u->in[0]->name, u->in[0]->name, u->in[1]->name,
            (long long)shape_size(&u->in[0]->shape));
  }
  fprintf(f, "  };\n  int np = sizeof ps / sizeof *ps;\n");
  // Biases start at 0, gamma at 1: move every param off its initial value.
  fprintf(f, "  for (int p = 0; p < np; p++)\n"
             "    for (int64_t i = 0; i < ps[p].size; i++) ps[p].w[i] += 0.1 * cos(3.1 * i + p);\n");
  fprintf(f, "  nnc_load_batch(s, x, y, N);\n  s->seed = 12345;\n  nnc_forward_train(s, N);\n"
             "  nnc_backward(s, N);\n  double worst = 0;\n  const char *where = \"\";\n");
  // Every gradient is copied before any finite difference: the memory plan lets later
  // forward passes reuse the gradients' memory.
  fprintf(f, "  double *ana[%d];\n"
             "  for (int p = 0; p < np; p++) {\n"
             "    ana[p] = malloc(ps[p].size * sizeof(double));\n"
             "    for (int64_t i = 0; i < ps[p].size; i++) ana[p][i] = ps[p].g[i];\n"
             "  }\n", g->n_params ? g->n_params : 1);
  fprintf(f, "  for (int p = 0; p < np; p++) {\n"
             "    for (int64_t i = 0; i < ps[p].size; i++) {\n"
             "      double w0 = ps[p].w[i], h = 1e-6;\n"
             "      ps[p].w[i] = w0 + h;\n      nnc_forward_train(s, N);\n      double lp = nnc_batch_loss(s, N);\n"
             "      ps[p].w[i] = w0 - h;\n      nnc_forward_train(s, N);\n      double lm = nnc_batch_loss(s, N);\n"
             "      ps[p].w[i] = w0;\n"
             "      double num = (lp - lm) / (2 * h), err = fabs(num - ana[p][i]) / (1e-3 + fabs(num) + fabs(ana[p][i]));\n"
             "      if (err > worst) worst = err, where = ps[p].name;\n"
             "    }\n    free(ana[p]);\n  }\n");
  fprintf(f, "  printf(\"worst %%.3g %%s\\n\", worst, where);\n");
  // Training on one batch must lower its loss.
  fprintf(f, "  float first = m->train_step(m, x, y, N, &rng, NULL), last = first;\n"
             "  for (int k = 0; k < 60; k++) last = m->train_step(m, x, y, N, &rng, NULL);\n"
             "  float inf = m->infer(m, x, y, N, NULL);\n"
             "  printf(\"first %%.6g last %%.6g infer %%.6g\\n\", first, last, inf);\n");
  // Inference at the planned batch (its own buffer layout, as many rows as fit in the
  // step's memory: at least max_batch) gives every row the bits it gets in batches of
  // max_batch, and the same loss up to the rounding of each call's mean to float.
  fprintf(f, "  enum { R = 13 };\n  static float xs[R * %lld], ys[R * %lld], one[R * %lld], all[R * %lld];\n",
          (long long)m_elems(g->x), (long long)m_elems(g->y), (long long)m_elems(g->output),
          (long long)m_elems(g->output));
  fprintf(f, "  for (int i = 0; i < R; i++) {\n"
             "    memcpy(xs + i * %lld, x + (i %% N) * %lld, %lld * sizeof(float));\n"
             "    memcpy(ys + i * %lld, y + (i %% N) * %lld, %lld * sizeof(float));\n  }\n",
          (long long)m_elems(g->x), (long long)m_elems(g->x), (long long)m_elems(g->x), (long long)m_elems(g->y),
          (long long)m_elems(g->y), (long long)m_elems(g->y));
  fprintf(f, "  double per_batch = 0;\n"
             "  for (int i = 0; i < R; i += 4) {\n"
             "    int n = R - i < 4 ? R - i : 4;\n"
             "    per_batch += (double)m->infer(m, xs + i * %lld, ys + i * %lld, n, one + i * %lld) * n;\n  }\n"
             "  double whole = 0;\n"
             "  for (int i = 0; i < R; i += m->infer_batch) {\n"
             "    int n = R - i < m->infer_batch ? R - i : m->infer_batch;\n"
             "    whole += (double)m->infer(m, xs + i * %lld, ys + i * %lld, n, all + i * %lld) * n;\n  }\n"
             "  int same = memcmp(one, all, sizeof all) == 0;\n"
             "  printf(\"infer batch %%d: outputs %%s, loss %%.17g vs %%.17g\\n\", m->infer_batch,\n"
             "         same ? \"equal\" : \"DIFFER\", whole, per_batch);\n"
             "  int infer_ok = m->infer_batch >= 4 && same && fabs(whole - per_batch) <= 1e-6 * (1 + fabs(per_batch));\n",
          (long long)m_elems(g->x), (long long)m_elems(g->y), (long long)m_elems(g->output), (long long)m_elems(g->x),
          (long long)m_elems(g->y), (long long)m_elems(g->output));
  fprintf(f, "  return worst < 1e-5 && last < first && isfinite(inf) && infer_ok ? 0 : 1;\n}\n");
  fclose(f);
}

static void gradcheck(Program *p, int classes) {
  Graph *g = lower(p);
  const char *dir = tp_tmpdir();
  cr_assert_not_null(dir);
  cr_assert_eq(emit_c(p, g, dir), 0);
  write_harness(dir, g, p->loss, classes);
  // NNC_RUNTIME_CFLAGS: the sanitizer flags libnnrt.a was built with, if any.
  int rc = tp_system("cd %s && cc -std=gnu11 -O1 -fopenmp %s -I%s/include -I%s/kernels harness.c %s -lz -lm -o harness "
                     "> cc.log 2>&1",
                     dir, NNC_RUNTIME_CFLAGS, NNC_SOURCE_DIR, NNC_SOURCE_DIR, tp_runtime_lib());
  if (rc != 0) {
    char log[600];
    snprintf(log, sizeof log, "%s/cc.log", dir);
    char *text = tp_read(log);
    cr_assert_fail("harness did not compile:\n%.3000s", text ? text : "");
  }
  rc = tp_system("cd %s && ./harness > run.log 2>&1", dir);
  char log[600];
  snprintf(log, sizeof log, "%s/run.log", dir);
  char *text = tp_read(log);
  cr_expect_eq(rc, 0, "gradient check failed:\n%s", text ? text : "");
  cr_log_info("%s: %s", op_info[g->loss->op].name, text ? text : "");
  if (rc == 0) tp_system("rm -rf %s", dir);
}

Test(backend_emit, gradcheck_mlp_batchnorm_l1l2_sparse_xent) {
  Program *p = tp_new();
  tp_input(p, tp_shape(1, 4, 0, 0));
  Layer *d = tp_dense(p, 5, ACT_tanh);
  d->l1 = 0.01, d->l2 = 0.02;
  tp_bn(p);
  tp_dense(p, 3, ACT_softmax);
  tp_compile(p, LOSS_SPARSE_CCE, OPT_ADAM);
  gradcheck(p, 3);
}

Test(backend_emit, gradcheck_dropout_sigmoid_bce) {
  Program *p = tp_new();
  tp_input(p, tp_shape(1, 6, 0, 0));
  tp_dense(p, 4, ACT_sigmoid);
  tp_dropout(p, 0.3);
  tp_dense(p, 2, ACT_sigmoid);
  tp_compile(p, LOSS_BCE, OPT_SGD);
  p->opt.momentum = 0.9;
  gradcheck(p, 2);
}

Test(backend_emit, gradcheck_conv_same_stride_maxpool_softmax_xent) {
  Program *p = tp_new();
  tp_input(p, tp_shape(3, 6, 6, 2));
  tp_conv(p, 3, 3, 2, true, ACT_tanh);
  tp_pool(p, L_MAXPOOL2D, 2);
  tp_flatten(p);
  tp_dense(p, 3, ACT_softmax);
  tp_compile(p, LOSS_CCE, OPT_RMSPROP);
  gradcheck(p, 3);
}

Test(backend_emit, gradcheck_conv_avgpool_gap_logits) {
  Program *p = tp_new();
  tp_input(p, tp_shape(3, 6, 6, 2));
  tp_conv(p, 4, 3, 1, false, ACT_tanh);
  tp_bn(p);
  tp_pool(p, L_AVGPOOL2D, 2);
  tp_gap(p);
  tp_dense(p, 3, ACT_linear);
  tp_compile(p, LOSS_SPARSE_CCE, OPT_ADAM);
  p->from_logits = true;
  gradcheck(p, 3);
}

// The packed layout (layout.c) on every contraction that can have it: convolutions
// forward (stride 2 'same', stride 1 'valid' and 'same') and their stride-1 data
// gradients as flipped convolutions, Dense forward and data gradient from packed panels.
Test(backend_emit, gradcheck_packed_layout) {
  pipeline_set_options((PassOptions){.layout = LAYOUTS_PACKED});
  Program *p = tp_new();
  tp_input(p, tp_shape(3, 7, 7, 2));
  tp_conv(p, 3, 3, 2, true, ACT_tanh);
  tp_conv(p, 4, 2, 1, true, ACT_relu);
  tp_conv(p, 3, 3, 1, false, ACT_sigmoid);
  tp_flatten(p);
  tp_dense(p, 5, ACT_tanh);
  tp_dense(p, 3, ACT_softmax);
  tp_compile(p, LOSS_CCE, OPT_ADAM);
  Graph *g = lower(p);
  int packed = 0, packs = 0;
  for (int i = 0; i < g->n; i++) packed += g->nodes[i]->layout == LAYOUT_PACKED, packs += g->nodes[i]->op == OP_pack_weights;
  // 3 convolutions, 2 stride-1 data gradients (the first layer's input needs none), 2
  // Dense forward and 2 data gradients.
  cr_expect_eq(packed, 9, "%d packed nodes", packed);
  cr_expect_eq(packs, packed);
  gradcheck(p, 3);
}

// Blocked channels (layout.c) on every filter gradient that can have them: filters in
// whole blocks (16 at double's block of 8 and float's of 16), inputs of one partial block
// (2) or of whole ones; 'same' with stride 2, 'same' stride 1, 'valid'. The last layer's
// 3 filters keep NHWC.
Test(backend_emit, gradcheck_blocked_layout) {
  pipeline_set_options((PassOptions){.layout = LAYOUTS_BLOCKED});
  Program *p = tp_new();
  tp_input(p, tp_shape(3, 7, 7, 2));
  tp_conv(p, 16, 3, 2, true, ACT_tanh);
  tp_conv(p, 16, 2, 1, true, ACT_relu);
  tp_conv(p, 3, 3, 1, false, ACT_sigmoid);
  tp_flatten(p);
  tp_dense(p, 3, ACT_softmax);
  tp_compile(p, LOSS_CCE, OPT_ADAM);
  Graph *g = lower(p);
  int blocked = 0, other = 0;
  for (int i = 0; i < g->n; i++) {
    blocked += g->nodes[i]->layout == LAYOUT_BLOCKED && g->nodes[i]->op == OP_conv2d_bwd_filter;
    other += g->nodes[i]->layout != LAYOUT_NHWC && g->nodes[i]->op != OP_conv2d_bwd_filter;
  }
  cr_expect_eq(blocked, 2, "%d blocked filter gradients", blocked);
  cr_expect_eq(other, 0, "--layout=blocked changed %d other nodes", other);
  gradcheck(p, 3);
}

Test(backend_emit, gradcheck_unfused_losses) {
  LossKind losses[] = {LOSS_MSE, LOSS_MAE, LOSS_CCE};
  for (int i = 0; i < 3; i++) {
    Program *p = tp_new();
    tp_input(p, tp_shape(1, 5, 0, 0));
    tp_dense(p, 4, ACT_tanh);
    tp_dense(p, 3, losses[i] == LOSS_CCE ? ACT_sigmoid : ACT_linear);
    if (losses[i] == LOSS_MSE) tp_activation(p, ACT_softmax);   // softmax_bwd, unfused
    tp_compile(p, losses[i], OPT_SGD);
    gradcheck(p, 3);
  }
}

Test(backend_emit, strings_are_escaped) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  emit_c_string(f, "a\"b\\c\n*/ ok-1.5,x:y;z/w+=_\x01\xff");
  fclose(f);
  cr_expect_str_eq(text, "\"a\\042b\\134c\\012\\052/ ok-1.5,x:y;z/w+=_\\001\\377\"");
}

Test(backend_emit, python_float_repr) {  // nn_format_float serves compiler and runtime
  struct { double v; const char *s; } cases[] = {
      {0.1, "0.1"}, {1.0, "1.0"}, {0.8765432, "0.8765432"}, {1e-05, "1e-05"}, {0.0001, "0.0001"},
      {1e16, "1e+16"}, {123456789012345.0, "123456789012345.0"}, {-2.5, "-2.5"}, {1.0 / 3, "0.3333333333333333"},
      {0.0, "0.0"}, {1.5e-7, "1.5e-07"}, {2.5e20, "2.5e+20"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char buf[64];
    nn_format_float(buf, sizeof buf, cases[i].v);
    cr_expect_str_eq(buf, cases[i].s, "repr(%.17g)", cases[i].v);
  }
}

// A script-like Program: data, fit, evaluate, predict, print, np.save, weights.
static Program *script_program(void) {
  Program *p = tp_cnn();
  p->n_data = 6;
  for (int i = 0; i < 4; i++)
    p->data[i] = (DataValue){.source = DATA_DATASET, .dataset = "fashion-mnist", .part = i, .scale = 1,
                             .rows = i < 2 ? 60000 : 10000, .loc = {.line = 3 + i}};
  p->data[0].shape = p->data[2].shape = tp_shape(3, 28, 28, 1);
  p->data[0].scale = p->data[2].scale = 1 / 255.0;
  static double values[] = {1, 2, 3, 4.5, -1e-9, 6, 7, 8, 9, 10};   // more than one line of 8
  p->data[4] = (DataValue){.source = DATA_LITERAL, .literal = values, .rows = 2, .shape = tp_shape(1, 5, 0, 0),
                           .scale = 1, .dtype = DT_FLOAT64};
  p->data[5] = (DataValue){.source = DATA_PREDICTION, .predict_action = 3, .rows = 10000,
                           .shape = tp_shape(1, 10, 0, 0), .scale = 1};
  Action none = {.x = -1, .y = -1, .val_x = -1, .val_y = -1, .verbose = -1};
  for (int i = 0; i < 8; i++) p->actions[i] = none;
  p->actions[0].kind = A_FIT, p->actions[0].x = 0, p->actions[0].y = 1, p->actions[0].val_x = 2,
  p->actions[0].val_y = 3, p->actions[0].epochs = 2, p->actions[0].batch_size = 64, p->actions[0].shuffle = true;
  p->actions[1].kind = A_EVALUATE, p->actions[1].x = 2, p->actions[1].y = 3;
  // As sema gives print(...): separators and the end are string items.
  static PrintItem items[] = {{.kind = P_STRING, .text = "Test \"acc\": "},
                              {.kind = P_EVAL_RESULT, .action = 1, .result = 1},
                              {.kind = P_STRING, .text = " "},
                              {.kind = P_SHAPE, .data = 0},
                              {.kind = P_STRING, .text = " "},
                              {.kind = P_SHAPE_DIM, .data = 0, .dim = 1},
                              {.kind = P_STRING, .text = " "},
                              {.kind = P_NUMBER, .number = 0.5},
                              {.kind = P_STRING, .text = " "},
                              {.kind = P_EVAL_LIST, .action = 1},
                              {.kind = P_STRING, .text = "\n"}};
  p->actions[2].kind = A_PRINT, p->actions[2].items = items, p->actions[2].n_items = 11;
  p->actions[3].kind = A_PREDICT, p->actions[3].x = 2;
  p->actions[4].kind = A_NP_SAVE, p->actions[4].x = 5, p->actions[4].path = "pred.npy";
  p->actions[5].kind = A_SAVE_WEIGHTS, p->actions[5].path = "w */.safetensors";
  p->actions[6].kind = A_LOAD_WEIGHTS, p->actions[6].path = "w */.safetensors";
  p->n_actions = 7;
  return p;
}

static char *emit_text(Program *p) {
  Graph *g = lower(p);
  const char *dir = tp_tmpdir();
  cr_assert_eq(emit_to_dir(p, g, TARGET_C, dir), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/model.c", dir);
  char *text = tp_read(path);
  cr_assert_not_null(text);
  tp_system("rm -rf %s", dir);
  return text;
}

Test(backend_emit, deterministic_and_compiles) {
  char *a = emit_text(script_program()), *b = emit_text(script_program());
  cr_assert_str_eq(a, b);
  // User strings appear only escaped.
  cr_expect(strstr(a, "\"w \\052/.safetensors\""));
  cr_expect_null(strstr(a, "w */"));
  cr_expect(strstr(a, "static void conv2d_1_bwd_conv_dw_bias(State *s, int n)"));   // fuse_bias_grad.c
  // The whole program (main included) compiles cleanly.
  const char *dir = tp_tmpdir();
  char path[512];
  snprintf(path, sizeof path, "%s/model.c", dir);
  FILE *f = fopen(path, "w");
  fputs(a, f);
  fclose(f);
  int rc = tp_system("cc -std=gnu11 -Wall -Werror -Wno-unused-parameter -fopenmp -I%s/include -I%s/kernels "
                     "-c %s -o %s/model.o > %s/cc.log 2>&1",
                     NNC_SOURCE_DIR, NNC_SOURCE_DIR, path, dir, dir);
  snprintf(path, sizeof path, "%s/cc.log", dir);
  char *log = tp_read(path);
  cr_expect_eq(rc, 0, "%s", log ? log : "");
  tp_system("rm -rf %s", dir);
}

// Snapshots: tests/snapshots/<name>.c; NNC_UPDATE_SNAPSHOTS=1 rewrites them.
static void snapshot(const char *name, Program *p) {
  // The cost model reads the machine (threads, vector width): the snapshot pins NHWC.
  pipeline_set_options((PassOptions){.layout = LAYOUTS_NHWC});
  char *text = emit_text(p);
  char path[512];
  snprintf(path, sizeof path, "%s/tests/snapshots/%s.c", NNC_SOURCE_DIR, name);
  const char *update = getenv("NNC_UPDATE_SNAPSHOTS");
  if (update && strcmp(update, "1") == 0) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return;
  }
  char *want = tp_read(path);
  cr_assert_not_null(want, "missing snapshot %s (run with NNC_UPDATE_SNAPSHOTS=1)", path);
  if (strcmp(want, text) != 0) {
    int line = 1;
    size_t i = 0;
    for (; want[i] && want[i] == text[i]; i++) line += want[i] == '\n';
    cr_assert_fail("%s differs from the emitted code at line %d (NNC_UPDATE_SNAPSHOTS=1 to accept)", path, line);
  }
}

Test(backend_emit, snapshot_fashion_cnn) { snapshot("fashion_cnn", script_program()); }

Test(backend_emit, snapshot_mlp_regression) {
  Program *p = tp_new();
  tp_input(p, tp_shape(1, 8, 0, 0));
  Layer *d = tp_dense(p, 16, ACT_relu);
  d->l2 = 1e-4;
  d->kernel_init = INIT_HE_NORMAL;
  tp_bn(p);
  tp_dropout(p, 0.2);
  tp_dense(p, 1, ACT_linear);
  tp_compile(p, LOSS_MSE, OPT_RMSPROP);
  p->metrics[0] = MET_MAE;
  snapshot("mlp_regression", p);
}
