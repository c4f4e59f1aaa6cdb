// Every op of compiler/ir/ops.def that runs a kernel, on every target: the kernels its
// emitter (compiler/target/kernels.c) calls exist in both libraries (nnk_X in
// nn_kernels.h, nncl_X in nn_kernels.cl) and are compared with each other by
// test_cl_kernels.c, and their gradients checked by test_kernels_gradcheck.c (which has
// its own per-op table). A new op without its OpenCL kernel or its test fails here.
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_runtime_util.h"

// Whether `word` occurs in text followed by '(' (a definition or call of that function).
static bool has_call(const char *text, const char *word) {
  size_t n = strlen(word);
  for (const char *p = text; (p = strstr(p, word)); p += n) {
    bool start = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
    const char *q = p + n;
    while (*q == ' ') q++;
    if (start && *q == '(') return true;
  }
  return false;
}

// The body of `static void NAME(` in kernels.c, up to the closing brace at column 0.
static char *function_body(const char *src, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "static void %s(", name);
  const char *p = strstr(src, key);
  if (!p) return NULL;
  const char *end = strstr(p, "\n}\n");
  cr_assert_not_null(end);
  return strndup(p, end - p);
}

// The kernel names an emitter asks for: its string literals that are identifiers
// ("gemm", "loss_%s", "%s_fwd" with %s the op's name); argument formats have blanks and
// commas, and internal_error's pass name is skipped.
static int kernels_of(const char *body, const char *op, char names[][256], int cap) {
  int k = 0;
  for (const char *p = body; (p = strchr(p, '"')) && k < cap; p++) {
    const char *q = strchr(p + 1, '"');
    if (!q) break;
    char lit[256];
    snprintf(lit, sizeof lit, "%.*s", (int)(q - p - 1), p + 1);
    bool ident = lit[0] != 0 && strcmp(lit, "%s") != 0;
    for (char *c = lit; *c; c++)
      if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '%')) ident = false;
    bool in_error = p - body >= 15 && !strncmp(p - 15, "internal_error(", 15);
    if (ident && !in_error) {
      char *pct = strstr(lit, "%s");
      if (pct) snprintf(names[k], 256, "%.*s%s%s", (int)(pct - lit), lit, op, pct + 2);
      else snprintf(names[k], 256, "%s", lit);
      k++;
    }
    p = q;
  }
  return k;
}

// Kernels only the C target runs, checked against the kernels they replace by a C test
// instead: the packed and blocked layouts' (layout.c keeps NHWC on OpenCL, and emit_opencl
// refuses such a node; test_kernels_packed.c), the weight gradients that sum the bias
// gradient (fuse_bias_grad.c runs for C only) and the kept im2col matrix's (LAYOUT_COLS);
// test_kernels_forward.c.
static bool c_only(const char *kernel) {
  static const char *const names[] = {"gemm_packed", "gemm_packed_act_grad", "conv2d_fwd_packed",
                                      "conv2d_bwd_data_packed_act", "pack_b", "pack_conv_flip",
                                      "conv2d_bwd_filter_blocked", "conv2d_bwd_filter_bias", "gemm_tn_bias_grad",
                                      "conv2d_fwd_cols_bias_act", "conv2d_bwd_filter_cols", "conv2d_bwd_filter_cols_bias"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(kernel, names[i])) return true;
  return false;
}

Test(ops_coverage, every_kernel_op_has_both_kernels_and_a_cross_target_test) {
  char *ops = slurp(NNC_SOURCE_DIR "/compiler/ir/ops.def", NULL);
  char *emitters = slurp(NNC_SOURCE_DIR "/compiler/target/kernels.c", NULL);
  char *c_lib = slurp(NNC_SOURCE_DIR "/kernels/nn_kernels.h", NULL);
  char *cl_lib = slurp(NNC_SOURCE_DIR "/kernels/nn_kernels.cl", NULL);
  char *cl_test = slurp(NNC_SOURCE_DIR "/tests/unit/test_cl_kernels.c", NULL);
  char *packed_test = slurp(NNC_SOURCE_DIR "/tests/unit/test_kernels_packed.c", NULL);
  char *forward_test = slurp(NNC_SOURCE_DIR "/tests/unit/test_kernels_forward.c", NULL);
  int rows = 0, with_kernels = 0;
  for (char *line = ops; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, "OP(", 3)) continue;
    char name[64], cls[32], emit[64];  // columns 1, 4, 9
    char *fields[10];
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)(strchr(line, '\n') - line), line);
    int n = 0;
    for (char *tok = strtok(buf + 3, ",)"); tok && n < 10; tok = strtok(NULL, ",)")) {
      while (*tok == ' ') tok++;
      fields[n++] = tok;
    }
    cr_assert_eq(n, 10, "ops.def row '%.40s...' does not have 10 columns", line);
    sscanf(fields[0], "%63s", name);
    sscanf(fields[3], "%31s", cls);
    sscanf(fields[8], "%63s", emit);
    rows++;
    if (!strcmp(cls, "SOURCE") || !strcmp(cls, "VIEW")) continue;
    char *body = function_body(emitters, emit);
    cr_assert_not_null(body, "op %s: its emitter %s is not in compiler/target/kernels.c", name, emit);
    char kernels[8][256];
    int nk = kernels_of(body, name, kernels, 8);
    if (nk == 0) snprintf(kernels[nk++], 256, "%s", name);   // named after the op (emit_act_bwd)
    for (int i = 0; i < nk; i++) {
      char c_name[300], cl_name[300];
      snprintf(c_name, sizeof c_name, "nnk_%.200s", kernels[i]);
      snprintf(cl_name, sizeof cl_name, "nncl_%.200s", kernels[i]);
      cr_expect(has_call(c_lib, c_name), "op %s calls %s, which kernels/nn_kernels.h lacks", name, c_name);
      if (c_only(kernels[i])) {
        cr_expect(has_call(packed_test, c_name) || has_call(forward_test, c_name),
                  "op %s: %s is not tested by tests/unit/test_kernels_packed.c or test_kernels_forward.c", name, c_name);
        continue;
      }
      cr_expect(has_call(cl_lib, cl_name), "op %s calls %s, which kernels/nn_kernels.cl lacks", name, cl_name);
      // The test names kernels directly or builds "nncl_loss_%s" / "nncl_%s_fwd" from a
      // list of names: either spelling counts.
      char base[300], quoted[310];
      snprintf(base, sizeof base, "%.200s", kernels[i]);
      if (!strncmp(base, "loss_", 5)) memmove(base, base + 5, strlen(base + 5) + 1);
      size_t bl = strlen(base);
      if (bl > 4 && (!strcmp(base + bl - 4, "_fwd") || !strcmp(base + bl - 4, "_bwd"))) base[bl - 4] = 0;
      snprintf(quoted, sizeof quoted, "\"%s\"", base);
      cr_expect(has_call(cl_test, cl_name) || strstr(cl_test, quoted) || strstr(cl_test, kernels[i]),
                "op %s: %s is not compared with C in tests/unit/test_cl_kernels.c", name, cl_name);
    }
    with_kernels++;
    free(body);
  }
  cr_expect_gt(rows, 40, "ops.def was not parsed (%d rows)", rows);
  cr_expect_gt(with_kernels, 30);
}
