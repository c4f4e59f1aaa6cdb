// Graph IR and autodiff on hand-built Programs: shapes, names, gradients, DOT.
#include <criterion/criterion.h>

#include "nnc.h"
#include "test_backend_programs.h"

static Node *find(const Graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
  return NULL;
}

static void expect_shape(const Node *nd, bool batched, int rank, int64_t d0, int64_t d1, int64_t d2) {
  cr_assert_not_null(nd);
  cr_expect_eq(nd->batched, batched, "%s batched", nd->name);
  cr_assert_eq(nd->shape.rank, rank, "%s rank %d", nd->name, nd->shape.rank);
  int64_t d[3] = {d0, d1, d2};
  for (int i = 0; i < rank && i < 3; i++)
    cr_expect_eq(nd->shape.dim[i], d[i], "%s dim %d = %lld", nd->name, i, (long long)nd->shape.dim[i]);
}

Test(backend_graph, cnn_forward_shapes) {
  Program *p = tp_cnn();
  Graph *g = graph_build(p);
  expect_shape(g->x, true, 3, 28, 28, 1);
  expect_shape(find(g, "conv2d_fwd_conv"), true, 3, 26, 26, 8);
  expect_shape(find(g, "conv2d_fwd_relu"), true, 3, 26, 26, 8);
  expect_shape(find(g, "max_pooling2d_fwd_maxpool"), true, 3, 13, 13, 8);
  expect_shape(find(g, "conv2d_1_fwd_conv"), true, 3, 13, 13, 16);
  expect_shape(find(g, "flatten_fwd_reshape"), true, 1, 13 * 13 * 16, 0, 0);
  expect_shape(find(g, "dense_fwd_matmul"), true, 1, 32, 0, 0);
  expect_shape(find(g, "dense_1_fwd_softmax"), true, 1, 10, 0, 0);
  Node *k = find(g, "conv2d_1_kernel");
  cr_assert_not_null(k);
  cr_expect_not(k->batched);
  cr_expect_eq(k->shape.rank, 4);
  cr_expect_eq(k->shape.dim[2], 8);
  cr_expect_eq(k->shape.dim[3], 16);
  // 'same' padding of a 3x3 stride-1 conv: one row/column on each side.
  cr_expect_eq(find(g, "conv2d_1_fwd_conv")->win.pt, 1);
  // Flatten is a view, bias_add is in place.
  cr_expect_eq(find(g, "flatten_fwd_reshape")->alias, find(g, "conv2d_1_fwd_relu"));
  cr_expect_eq(find(g, "dense_fwd_bias")->alias, find(g, "dense_fwd_matmul"));
  // Softmax + sparse CCE fuse onto the logits; the model output stays the softmax.
  cr_assert_not_null(g->loss);
  cr_expect_eq(g->loss->op, OP_sparse_softmax_xent);
  cr_expect_eq(g->loss->in[0], find(g, "dense_1_fwd_bias"));
  cr_expect_eq(g->output, find(g, "dense_1_fwd_softmax"));
  expect_shape(g->y, true, 1, 1, 0, 0);
  // Params in Keras order with Keras names.
  cr_assert_eq(g->n_params, 8);
  const char *names[] = {"conv2d.kernel", "conv2d.bias", "conv2d_1.kernel", "conv2d_1.bias",
                         "dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"};
  for (int i = 0; i < 8; i++) cr_expect_str_eq(g->params[i]->keras_name, names[i]);
  // Topological order.
  for (int i = 0; i < g->n; i++)
    for (int k = 0; k < MAX_IN; k++)
      if (g->nodes[i]->in[k]) cr_expect_lt(g->nodes[i]->in[k]->id, i);
}

Test(backend_graph, autodiff_updates_every_trainable_param) {
  Program *p = tp_new();
  tp_input(p, tp_shape(3, 8, 8, 3));
  tp_conv(p, 4, 3, 2, true, ACT_tanh);
  tp_bn(p);
  tp_pool(p, L_AVGPOOL2D, 2);
  tp_gap(p);
  Layer *d = tp_dense(p, 6, ACT_sigmoid);
  d->l2 = 0.01;
  tp_dense(p, 3, ACT_softmax);
  tp_compile(p, LOSS_CCE, OPT_RMSPROP);
  Graph *g = graph_build(p);
  int fwd = g->n;
  autodiff(g, p);
  cr_expect_gt(g->n, fwd);
  int trainable = 0;
  for (int i = 0; i < g->n_params; i++) {
    Node *w = g->params[i];
    int updates = 0;
    for (int k = 0; k < g->n; k++) {
      Node *u = g->nodes[k];
      if (op_info[u->op].cls != FC_OPTIMIZER || u->in[0] != w) continue;
      updates++;
      cr_expect_eq(u->op, OP_rmsprop_update);
      // The gradient has the param's shape.
      cr_expect_eq(shape_size(&u->in[1]->shape), shape_size(&w->shape), "%s", w->keras_name);
      cr_expect_not(u->in[1]->batched, "%s gradient is per batch", w->keras_name);
    }
    cr_expect_eq(updates, w->trainable ? 1 : 0, "%s has %d updates", w->keras_name, updates);
    trainable += w->trainable;
  }
  cr_expect_eq(trainable, 8);  // conv k,b; bn gamma,beta; dense k,b; dense_1 k,b
  // The regularized kernel's gradient sums the loss and l1l2 contributions.
  Node *acc = find(g, "dense_kernel_grad_sum");
  cr_assert_not_null(acc);
  cr_expect_eq(acc->op, OP_add);
  // No gradient flows into the input batch: the first conv has no bwd_data node.
  for (int i = 0; i < g->n; i++) cr_expect_neq(g->nodes[i]->op, OP_conv2d_bwd_data);
  // Everything autodiff added is marked backward.
  for (int i = fwd; i < g->n; i++) cr_expect(g->nodes[i]->backward);
}

Test(backend_graph, fusion_choices) {
  struct { LossKind loss; Activation act; bool logits; OpKind op; } cases[] = {
      {LOSS_CCE, ACT_softmax, false, OP_softmax_xent},
      {LOSS_CCE, ACT_linear, true, OP_softmax_xent},
      {LOSS_CCE, ACT_sigmoid, false, OP_cce},
      {LOSS_SPARSE_CCE, ACT_linear, true, OP_sparse_softmax_xent},
      {LOSS_BCE, ACT_sigmoid, false, OP_sigmoid_bce},
      {LOSS_BCE, ACT_linear, true, OP_sigmoid_bce},
      {LOSS_BCE, ACT_tanh, false, OP_bce},
      {LOSS_MSE, ACT_linear, false, OP_mse},
      {LOSS_MAE, ACT_relu, false, OP_mae},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Program *p = tp_new();
    tp_input(p, tp_shape(1, 4, 0, 0));
    tp_dense(p, 3, cases[i].act);
    tp_compile(p, cases[i].loss, OPT_SGD);
    p->from_logits = cases[i].logits;
    Graph *g = graph_build(p);
    cr_expect_eq(g->loss->op, cases[i].op, "case %zu: %s", i, op_info[g->loss->op].name);
    // The model output is what the user's last layer computes.
    cr_expect_eq(g->output->op, cases[i].act == ACT_linear ? OP_bias_add
                                 : cases[i].act == ACT_softmax ? OP_softmax
                                 : cases[i].act == ACT_sigmoid ? OP_sigmoid
                                 : cases[i].act == ACT_tanh ? OP_tanh : OP_relu, "case %zu", i);
  }
}

Test(backend_graph, names_are_mangled_and_unique) {
  Program *p = tp_new();
  tp_input(p, tp_shape(1, 4, 0, 0));
  Layer *a = tp_dense(p, 3, ACT_relu);
  Layer *b = tp_dense(p, 3, ACT_relu);
  Layer *c = tp_dense(p, 3, ACT_linear);
  a->name = "My-Layer";      // sema validates names; mangling must hold regardless
  b->name = "my_layer";
  c->name = "nnc_evil\"*/";
  tp_compile(p, LOSS_MSE, OPT_SGD);
  Graph *g = graph_build(p);
  autodiff(g, p);
  cr_expect_str_eq(graph_layer_ident(g, 1), "my_layer");
  cr_expect_str_eq(graph_layer_ident(g, 2), "my_layer_2");
  cr_expect_str_eq(graph_layer_ident(g, 3), "m_nnc_evil___");
  for (int i = 0; i < g->n; i++) {
    for (const char *s = g->nodes[i]->name; *s; s++)
      cr_expect(strchr("abcdefghijklmnopqrstuvwxyz0123456789_", *s), "bad char in %s", g->nodes[i]->name);
    for (int j = 0; j < i; j++) cr_expect_str_neq(g->nodes[i]->name, g->nodes[j]->name);
  }
  // Keras names keep the user's spelling (they are data, escaped when emitted).
  cr_expect_str_eq(g->params[0]->keras_name, "My-Layer.kernel");
}

Test(backend_graph, dot_is_deterministic_and_complete) {
  char *out1 = NULL, *out2 = NULL;
  size_t n1 = 0, n2 = 0;
  for (int run = 0; run < 2; run++) {
    Program *p = tp_cnn();
    Graph *g = graph_build(p);
    autodiff(g, p);
    FILE *f = open_memstream(run ? &out2 : &out1, run ? &n2 : &n1);
    graph_dot(g, f);
    fclose(f);
  }
  cr_assert_eq(n1, n2);
  cr_expect_str_eq(out1, out2);
  cr_expect(strstr(out1, "digraph nnc {"));
  cr_expect(strstr(out1, "param conv2d_1.kernel\\n(3, 3, 8, 16)"));
  cr_expect(strstr(out1, "conv2d\\n(n, 26, 26, 8)\\nconv2d_fwd_conv"));
  cr_expect(strstr(out1, "adam_update"));
  cr_expect(strstr(out1, "conv2d_bwd_filter"));
}

Test(backend_graph, costs) {
  Program *p = tp_cnn();
  Graph *g = graph_build(p);
  double f, b;
  node_cost(find(g, "conv2d_fwd_conv"), 2, &f, &b);
  cr_expect_eq(f, 2.0 * 2 * 26 * 26 * 8 * 3 * 3 * 1);
  node_cost(find(g, "dense_fwd_matmul"), 4, &f, &b);
  cr_expect_eq(f, 2.0 * 4 * 2704 * 32);
  node_cost(find(g, "flatten_fwd_reshape"), 4, &f, &b);
  cr_expect_eq(f + b, 0);
}
