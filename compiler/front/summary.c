// summary.c — model.summary() / `nnc check`: the table Keras prints, with its column
// positions (65 characters: 29, 55, 65), None for the batch and thousands separators.
#include "nnc.h"

#include <string.h>

static void thousands(int64_t v, char *buf, size_t cap) {
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%lld", (long long)v), k = 0;
  for (int i = 0; i < n && k < (int)cap - 1; i++) {
    if (i > 0 && (n - i) % 3 == 0 && digits[0] != '-') buf[k++] = ',';
    buf[k++] = digits[i];
  }
  buf[k] = 0;
}

// One table row; a field longer than its column wraps onto following lines (Keras
// 2.4 cut it off, which hides long layer names).
static void row(FILE *out, const char *f0, const char *f1, const char *f2) {
  static const int pos[3] = {29, 55, 65};
  const char *fields[3] = {f0, f1, f2};
  size_t left[3], off[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) left[i] = strlen(fields[i]);
  for (bool first = true; first || left[0] || left[1] || left[2]; first = false) {
    char line[128];
    int n = 0;
    for (int i = 0; i < 3; i++) {
      int width = pos[i] - (i ? pos[i - 1] : 0) - (i < 2 ? 1 : 0);
      size_t take = left[i] < (size_t)width ? left[i] : (size_t)width;
      memcpy(line + n, fields[i] + off[i], take);
      n += (int)take;
      off[i] += take, left[i] -= take;
      while (n < pos[i]) line[n++] = ' ';
    }
    while (n > 0 && line[n - 1] == ' ') n--;
    fprintf(out, "%.*s\n", n, line);
  }
}

void print_summary(FILE *out, const Program *p) {
  char rule[66], thick[66];
  memset(rule, '_', 65), rule[65] = 0;
  memset(thick, '=', 65), thick[65] = 0;
  fprintf(out, "Model: \"%s\"\n%s\n", p->model_name ? p->model_name : "sequential", rule);
  row(out, "Layer (type)", "Output Shape", "Param #");
  fprintf(out, "%s\n", thick);
  int64_t non_trainable = p->total_params - p->trainable_params;
  for (int i = 1; i < p->n_layers; i++) {
    const Layer *l = &p->layers[i];
    char name[512], shape[128], params[32];
    snprintf(name, sizeof name, "%s (%s)", l->name, l->cls ? l->cls : layer_kind_name(l->kind));
    shape_format(&l->out, shape, sizeof shape);
    thousands(l->params, params, sizeof params);
    row(out, name, shape, params);
    fprintf(out, "%s\n", i + 1 < p->n_layers ? rule : thick);
  }
  if (p->n_layers <= 1) fprintf(out, "%s\n", thick);
  char t[32], tr[32], nt[32];
  thousands(p->total_params, t, sizeof t);
  thousands(p->trainable_params, tr, sizeof tr);
  thousands(non_trainable, nt, sizeof nt);
  fprintf(out, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s\n", t, tr, nt, rule);
}
