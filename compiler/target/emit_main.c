// emit_main.c — the generated program's main(): parses the run-time options, loads
// every data value (with the script's transforms and a check that its shape is the
// compiled one), then performs the script's actions in order through the runtime
// (nn_fit, nn_evaluate, nn_predict, weights files, print, np.save).
#include "nnc.h"
#include "nn.h"

#include <stdlib.h>
#include <string.h>

static const char *const dataset_parts[] = {"x_train", "y_train", "x_test", "y_test"};

static void emit_shape_array(FILE *out, const Shape *s) {
  fprintf(out, "(const int64_t[]){");
  for (int i = 0; i < s->rank; i++) fprintf(out, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
  fprintf(out, s->rank ? "}" : "0}");
}

// x[a:b], x[i], x[:, cols] as the script wrote them, applied to the loaded rows.
static void emit_select(FILE *out, const DataValue *d, int k, const char *ind) {
  if (!d->selected) return;
  if (d->n_cols) {
    fprintf(out, "%sstatic const int64_t data_%d_cols[] = {", ind, k);
    for (int c = 0; c < d->n_cols; c++) fprintf(out, "%s%lld", c ? ", " : "", (long long)d->cols[c]);
    fprintf(out, "};\n");
  }
  const char *none = "NN_NONE";
  fprintf(out, "%sif (nn_data_select(&data[%d], %s, %s, %s, %s, %d, %s) < 0) return 1;\n", ind, k,
          d->row_start == INT64_MIN ? none : xprintf("%lldLL", (long long)d->row_start),
          d->row_stop == INT64_MIN ? none : xprintf("%lldLL", (long long)d->row_stop), d->row_index ? "true" : "false",
          d->n_cols ? xprintf("data_%d_cols", k) : "NULL", d->n_cols, d->col_index ? "true" : "false");
}

// Whether two values were read from the same file: the script's transforms
// (x.reshape(...).astype(...) / 255) each make a value, all from one load.
// A value with a selection (x[:2000], data[:, 0:8]) reads its own copy: the selection
// happens in place.
static bool same_file(const DataValue *a, const DataValue *b) {
  if (a->source != b->source || a->selected || b->selected) return false;
  switch (a->source) {
  case DATA_DATASET: return !strcmp(a->dataset, b->dataset) && a->part == b->part;
  case DATA_NPY: return !strcmp(a->path, b->path);
  case DATA_CSV: return !strcmp(a->path, b->path) && a->delimiter == b->delimiter;
  default: return false;
  }
}

// How messages name a value's source.
static const char *data_origin(const DataValue *d) {
  switch (d->source) {
  case DATA_DATASET: return xprintf("%s %s", d->dataset, dataset_parts[d->part & 3]);
  case DATA_NPY:
  case DATA_CSV: return d->path;
  default: return "np.array literal";
  }
}

// The statement that reads value k's file (or literal) into data[k].
static void emit_read_data(FILE *out, const DataValue *d, int k) {
  switch (d->source) {
  case DATA_DATASET:
    fprintf(out, "  if (nn_load_dataset(&data[%d], ", k);
    emit_c_string(out, d->dataset);
    fprintf(out, ", %d, opt.data_dir) < 0) return 1;\n", d->part);
    break;
  case DATA_NPY:
  case DATA_CSV:
    fprintf(out, d->source == DATA_NPY ? "  if (nn_load_npy(&data[%d], " : "  if (nn_load_csv_skip(&data[%d], ", k);
    emit_c_string(out, d->path);
    if (d->source == DATA_CSV) fprintf(out, ", %d, %lld", (int)(unsigned char)d->delimiter, (long long)d->skiprows);
    fprintf(out, ") < 0) return 1;\n");
    break;
  case DATA_LITERAL: {
    int64_t count = d->rows * shape_size(&d->shape);
    fprintf(out, "  static const double data_%d_values[] = {", k);
    for (int64_t i = 0; i < count; i++) fprintf(out, "%s%s", i == 0 ? "\n    " : i % 8 ? ", " : ",\n    ", cnum(d->literal[i]));
    fprintf(out, "\n  };\n  if (nn_data_from_values(&data[%d], data_%d_values, %lld, %d, ", k, k, (long long)d->rows,
            d->shape.rank);
    emit_shape_array(out, &d->shape);
    fprintf(out, ") < 0) return 1;\n");
    break;
  }
  case DATA_PREDICTION: break;
  }
}

static void emit_load_data(FILE *out, const Program *p, int k, const bool *used) {
  const DataValue *d = &p->data[k];
  fprintf(out, "  // data[%d], line %d\n", k, d->loc.line);
  if (d->source == DATA_PREDICTION) {
    fprintf(out, "  // filled by model.predict (action %d)\n", d->predict_action);
    return;
  }
  int first = 0;
  while (first < k && !((!used || used[first]) && same_file(&p->data[first], d))) first++;
  // A file is read once: a later value from it shares data[first]'s samples (one buffer,
  // never freed: only predictions are) and nn_data_prepare sets its own shape, scale and
  // one-hot.
  if (first < k) fprintf(out, "  data[%d] = data[%d];  // the same file, read once\n", k, first);
  else emit_read_data(out, d, k);
  emit_select(out, d, k, "  ");
  fprintf(out, "  if (nn_data_prepare(&data[%d], %d, ", k, d->shape.rank);
  emit_shape_array(out, &d->shape);
  fprintf(out, ", %s, %lld,\n                  ", cnum(d->scale == 0 ? 1 : d->scale), (long long)d->onehot);
  emit_c_string(out, data_origin(d));
  fprintf(out, ") < 0) return 1;\n");
}

static int verbose_of(const Action *a) { return a->verbose < 0 ? 1 : a->verbose; }

static void emit_opt_string(FILE *out, const char *s) {
  if (s) emit_c_string(out, s);
  else fputs("NULL", out);
}

static void emit_fit(FILE *out, const Program *p, int i) {
  const Action *a = &p->actions[i];
  if (a->n_callbacks) {
    fprintf(out, "    static const nn_callback callbacks[] = {\n");
    for (int c = 0; c < a->n_callbacks; c++) {
      const Callback *cb = &a->callbacks[c];
      static const char *kinds[] = {"NN_CB_EARLY_STOPPING", "NN_CB_MODEL_CHECKPOINT", "NN_CB_CSV_LOGGER",
                                    "NN_CB_BACKUP_AND_RESTORE", "NN_CB_TERMINATE_ON_NAN"};
      fprintf(out, "      {%s, ", kinds[cb->kind]);
      emit_opt_string(out, cb->monitor ? cb->monitor : "val_loss");
      fprintf(out, ", %d, %s, %lld, %s, ", cb->mode, cnum(cb->min_delta), (long long)cb->patience,
              cb->restore_best_weights ? "true" : "false");
      emit_opt_string(out, cb->path);
      fprintf(out, ", %s, ", cb->save_best_only ? "true" : "false");
      emit_opt_string(out, cb->separator);
      fprintf(out, ", %s", cb->append ? "true" : "false");
      if (cb->kind == CB_MODEL_CHECKPOINT && cb->format != WF_SAFETENSORS)
        fprintf(out, ", %s", weights_format_function(cb->format, true));
      else
        fprintf(out, ", NULL");
      fprintf(out, ", %lld, %s},\n", (long long)cb->save_freq, cb->delete_checkpoint ? "true" : "false");
    }
    fprintf(out, "    };\n");
  }
  fprintf(out, "    nn_fit_config cfg = {0};\n");
  fprintf(out, "    cfg.epochs = opt.epochs >= 0 ? opt.epochs : %lld;\n", (long long)(a->epochs > 0 ? a->epochs : 1));
  fprintf(out, "    cfg.batch_size = opt.batch_size > 0 ? opt.batch_size : %lld;\n", (long long)action_batch(a));
  fprintf(out, "    cfg.shuffle = %s;\n    cfg.verbose = %d;\n", a->shuffle ? "true" : "false", verbose_of(a));
  if (a->validation_split > 0) fprintf(out, "    cfg.validation_split = %s;\n", cnum(a->validation_split));
  if (a->val_x >= 0) fprintf(out, "    cfg.val_x = &data[%d];\n    cfg.val_y = &data[%d];\n", a->val_x, a->val_y);
  if (a->n_callbacks) fprintf(out, "    cfg.callbacks = callbacks;\n    cfg.n_callbacks = %d;\n", a->n_callbacks);
  fprintf(out, "    cfg.history = &history_%d;\n", i);
  fprintf(out, "    if (nn_fit(m, &cfg, &data[%d], &data[%d], &rng, &opt) < 0) return 1;\n", a->x, a->y);
  fprintf(out, "    if (opt.plot && nn_plot_history(&history_%d, opt.plot) < 0) return 1;\n", i);
}

// A number known only at run time, as a C expression of type double.
static const char *runtime_expr(const PrintItem *it) {
  const char *e = "0";
  switch (it->kind) {
  case P_EVAL_RESULT: e = xprintf("(double)(float)result_%d[%d]", it->action, it->result); break;  // Keras: float32
  case P_SHAPE_DIM: e = xprintf("(double)nn_data_dim(&data[%d], %d)", it->data, it->dim); break;
  case P_REDUCE: e = xprintf("nn_data_reduce(&data[%d], %d)", it->data, it->op); break;
  case P_HIST_ITEM: e = xprintf("nn_history_get(&history_%d, \"%s\", %lldLL)", it->action, it->key, (long long)it->index); break;
  default: internal_error("emit_main", "print item %d is not a number", it->kind);
  }
  if (it->mul && it->mul != 1) e = xprintf("(%s * %s)", e, cnum(it->mul));
  return e;
}

// Items print back to back: sema makes print()'s sep and end string items of their own.
// Everything goes through nn_print_begin's stream, so --json can wrap it.
static void emit_print(FILE *out, const Program *p, int i) {
  const Action *a = &p->actions[i];
  fprintf(out, "    FILE *f = nn_print_begin(&opt);\n");
  for (int k = 0; k < a->n_items; k++) {
    const PrintItem *it = &a->items[k];
    switch (it->kind) {
    case P_STRING:
      fprintf(out, "    fputs(");
      emit_c_string(out, it->text);
      fprintf(out, ", f);\n");
      break;
    case P_NUMBER:
      if (it->is_int) fprintf(out, "    fprintf(f, \"%%lld\", %lldLL);\n", (long long)it->number);
      else fprintf(out, "    nn_fprint_float(f, %s);\n", cnum(it->number));
      break;
    case P_SHAPE:
      fprintf(out, "    nn_fprint_shape(f, &data[%d]);\n", it->data);
      break;
    case P_EVAL_RESULT:
    case P_SHAPE_DIM:
    case P_REDUCE:
    case P_HIST_ITEM: {
      bool is_int = it->kind == P_SHAPE_DIM || it->is_int;
      if (it->spec) {
        fprintf(out, "    nn_fprint_spec(f, %s, %s, ", runtime_expr(it), is_int ? "true" : "false");
        emit_c_string(out, it->spec);
        fprintf(out, ");\n");
      } else if (is_int) fprintf(out, "    fprintf(f, \"%%lld\", (long long)%s);\n", runtime_expr(it));
      else fprintf(out, "    nn_fprint_float(f, %s);\n", runtime_expr(it));
      break;
    }
    case P_EVAL_LIST:
      fprintf(out, "    fputc('[', f);\n");
      for (int r = 0; r <= p->n_metrics; r++)
        fprintf(out, "%s    nn_fprint_float(f, (float)result_%d[%d]);\n", r ? "    fputs(\", \", f);\n" : "", it->action, r);
      fprintf(out, "    fputc(']', f);\n");
      break;
    case P_HIST:
      fprintf(out, "    nn_fprint_history(f, &history_%d, \"%s\");\n", it->action, it->key);
      break;
    case P_DATA:
      fprintf(out, "    nn_fprint_data(f, &data[%d]);\n", it->data);
      break;
    case P_NUMBERS:
      internal_error("emit_main", "a list of numbers in print()");
    }
  }
  fprintf(out, "    nn_print_end(&opt, f);\n");
}

// One plot series (history list or numbers) as `const double *NAME; int64_t nNAME`.
static void emit_series(FILE *out, const PrintItem *it, const char *name) {
  if (it->kind == P_HIST) {
    fprintf(out, "    int64_t n%s;\n    const double *%s = nn_history_series(&history_%d, \"%s\", &n%s);\n", name, name,
            it->action, it->key, name);
    return;
  }
  fprintf(out, "    static const double %s[] = {", name);
  for (int k = 0; k < it->n_numbers; k++) fprintf(out, "%s%s", k ? ", " : "", cnum(it->numbers[k]));
  fprintf(out, "%s};\n    int64_t n%s = %d;\n", it->n_numbers ? "" : "0", name, it->n_numbers);
}

static void emit_plot(FILE *out, const Action *a) {
  switch (a->plot) {
  case PLOT_FIGURE: fprintf(out, "    nn_plot_figure();\n"); break;
  case PLOT_SUBPLOT: fprintf(out, "    nn_plot_subplot(%d, %d, %d);\n", (int)a->ints[0], (int)a->ints[1], (int)a->ints[2]); break;
  case PLOT_SERIES:
    emit_series(out, &a->items[0], "y");
    if (a->n_items > 1) emit_series(out, &a->items[1], "x");
    fprintf(out, "    nn_plot_series(%s, %s, y, ny, ", a->n_items > 1 ? "x" : "NULL", a->n_items > 1 ? "nx" : "0");
    emit_opt_string(out, a->text);
    fprintf(out, ", ");
    emit_opt_string(out, a->fmt);
    fprintf(out, ");\n");
    break;
  case PLOT_TITLE:
  case PLOT_XLABEL:
  case PLOT_YLABEL:
    fprintf(out, "    nn_plot_text(%s, ", a->plot == PLOT_TITLE ? "NN_PLOT_TITLE" : a->plot == PLOT_XLABEL ? "NN_PLOT_XLABEL" : "NN_PLOT_YLABEL");
    emit_c_string(out, a->text);
    fprintf(out, ");\n");
    break;
  case PLOT_LEGEND:
    for (int k = 0; k < a->n_items; k++) {
      fprintf(out, "    nn_plot_label(%d, ", k);
      emit_c_string(out, a->items[k].text);
      fprintf(out, ");\n");
    }
    fprintf(out, "    nn_plot_legend();\n");
    break;
  case PLOT_GRID: fprintf(out, "    nn_plot_grid(%s);\n", a->ints[0] ? "true" : "false"); break;
  case PLOT_YLIM: fprintf(out, "    nn_plot_ylim(%s, %s);\n", cnum(a->lims[0]), cnum(a->lims[1])); break;
  case PLOT_SAVE:
  case PLOT_SHOW:
    fprintf(out, "    if (nn_plot_save(");
    emit_c_string(out, a->text);
    fprintf(out, ") < 0) return 1;\n");
    if (a->plot == PLOT_SHOW) fprintf(out, "    nn_plot_figure();  // show() ends the figure\n");
    break;
  }
}

static void emit_action(FILE *out, const Program *p, const Graph *g, int i, const char *summary) {
  const Action *a = &p->actions[i];
  static const char *what[] = {"model.summary", "model.fit", "model.evaluate", "model.predict",
                               "model.save_weights", "model.load_weights", "print", "np.save", "pyplot"};
  fprintf(out, "  {  // action %d, line %d: %s\n", i, a->loc.line, what[a->kind]);
  switch (a->kind) {
  case A_SUMMARY:
    fprintf(out, "    FILE *f = nn_print_begin(&opt);\n    fputs(nnc_summary_%d, f);\n    nn_print_end(&opt, f);\n", i);
    break;
  case A_FIT:
    emit_fit(out, p, i);
    break;
  case A_EVALUATE:
    fprintf(out, "    if (nn_evaluate(m, &data[%d], &data[%d], %lld, %d, &opt, result_%d) < 0) return 1;\n", a->x, a->y,
            (long long)action_batch(a), verbose_of(a), i);
    break;
  case A_PREDICT: {
    fprintf(out, "    float *pred = nn_predict(m, &data[%d], %lld, %d, &opt);\n    if (!pred) return 1;\n", a->x,
            (long long)action_batch(a), verbose_of(a));
    const Shape *s = &g->output->shape;
    if (a->softmax)  // probability_model = Sequential([model, Softmax()])
      fprintf(out, "    nn_softmax_rows(pred, data[%d].rows, %lld);\n", a->x, (long long)shape_size(s));
    // Every data value made from this prediction (predictions, predictions[0], ...).
    for (int k = 0; k < p->n_data; k++) {
      if (p->data[k].source != DATA_PREDICTION || p->data[k].predict_action != i) continue;
      fprintf(out, "    {\n      nn_data *d = &data[%d];\n      nn_data_free(d);\n      d->dtype = NN_F32;\n", k);
      fprintf(out, "      d->rows = data[%d].rows;\n      d->ndim = %d;\n", a->x, s->rank);
      for (int r = 0; r < s->rank; r++) fprintf(out, "      d->shape[%d] = %lld;\n", r, (long long)s->dim[r]);
      fprintf(out, "      d->row_size = %lld;\n      d->buf = malloc(sizeof(float) * (size_t)(d->rows * d->row_size + 1));\n",
              (long long)shape_size(s));
      fprintf(out, "      if (!d->buf) return 1;\n      memcpy(d->buf, pred, sizeof(float) * (size_t)(d->rows * d->row_size));\n");
      fprintf(out, "      d->scale = 1;\n      d->onehot = 0;\n      d->squeezed = false;\n");
      fprintf(out, "      snprintf(d->origin, sizeof d->origin, \"model.predict\");\n");
      emit_select(out, &p->data[k], k, "      ");
      fprintf(out, "    }\n");
    }
    fprintf(out, "    free(pred);\n");
    break;
  }
  case A_SAVE_WEIGHTS:
  case A_LOAD_WEIGHTS:
    fprintf(out, "    if (%s(m, ", weights_format_function(a->format, a->kind == A_SAVE_WEIGHTS));
    emit_c_string(out, a->path);
    fprintf(out, ") < 0) return 1;\n");
    break;
  case A_PRINT:
    emit_print(out, p, i);
    break;
  case A_PLOT:
    emit_plot(out, a);
    break;
  case A_NP_SAVE:
    fprintf(out, "    if (nn_save_data(");
    emit_c_string(out, a->path);
    fprintf(out, ", &data[%d]) < 0) return 1;\n", a->x);
    break;
  }
  fprintf(out, "  }\n");
}

// The summary text, as `nnc check` prints it, computed now and pasted as a literal.
static char *summary_text(const Program *p) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) internal_error("emit_c", "open_memstream failed");
  print_summary(mem, p);
  fclose(mem);
  char *copy = xstrdup(text);
  free(text);
  return copy;
}

// `nnc bench` builds: the train step on synthetic data instead of the script.
static void emit_bench_main(FILE *out) {
  fprintf(out, "#include \"nn_profile.h\"\n\nint main(int argc, char **argv) {\n"
               "  static const nn_profile prof = {NNC_PROF_KERNELS, nnc_prof_names, nnc_prof_seconds,\n"
               "                                  &nnc_prof_timing, &nnc_prof_arena_bytes, nnc_model_create,\n"
               "                                  nn_measure_machine};\n"
               "  return nn_bench_main(argc, argv, &prof);\n}\n");
}

void emit_main(FILE *out, const Program *p, const Graph *g) {
  if (emit_profile) {
    emit_bench_main(out);
    return;
  }
  fprintf(out, "// Built with -DNNC_NO_MAIN, this file is a model another program can drive.\n#ifndef NNC_NO_MAIN\n\n");
  for (int i = 0; i < p->n_actions; i++) {
    if (p->actions[i].kind != A_SUMMARY) continue;
    // The model as it was when summary() was called: its first ints[0] layers.
    Program part = *p;
    part.n_layers = (int)p->actions[i].ints[0];
    part.total_params = part.trainable_params = 0;
    for (int l = 1; l < part.n_layers; l++)
      part.total_params += p->layers[l].params, part.trainable_params += p->layers[l].trainable_params;
    // One literal per summary line keeps the source readable.
    char *text = summary_text(&part);
    fprintf(out, "static const char nnc_summary_%d[] =", i);
    for (char *line = text; *line;) {
      char *nl = strchr(line, '\n');
      size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
      char *piece = xstrndup(line, n);
      fprintf(out, "\n    ");
      emit_c_string(out, piece);
      line += n;
    }
    fprintf(out, "%s;\n\n", *text ? "" : " \"\"");
  }
  // --mpi: the script runs in nnc_main on every rank; main starts and ends MPI around it.
  fprintf(out, "%s(int argc, char **argv) {\n  nn_options opt;\n  nn_parse_options(&opt, argc, argv);\n",
          p->mpi ? "static int nnc_main" : "int main");
  if (p->mpi) fprintf(out, "  nn_mpi_prepare(&opt);  // threads per rank, before they start\n");
  fprintf(out, "  nn_start_threads(&opt, argv);\n");
  if (p->mpi) fprintf(out, "  nn_mpi_start();\n");
  fprintf(out, "  nn_rng rng;\n  nn_rng_seed(&rng, opt.seed_set ? opt.seed : 0);\n");
  fprintf(out, "  static nn_data data[%d];\n", p->n_data ? p->n_data : 1);
  for (int i = 0; i < p->n_actions; i++)
    if (p->actions[i].kind == A_EVALUATE) fprintf(out, "  double result_%d[%d] = {0};\n", i, 1 + p->n_metrics);
    else if (p->actions[i].kind == A_FIT) fprintf(out, "  static nn_history history_%d;\n", i);
  fprintf(out, "\n");
  // Only what the script uses is loaded: `x = x[:2000] / 255` leaves the whole x unused.
  bool *used = xalloc(sizeof(bool) * (p->n_data + 1));
  for (int i = 0; i < p->n_actions; i++) {
    const Action *a = &p->actions[i];
    int refs[] = {a->x, a->y, a->val_x, a->val_y};
    for (int r = 0; r < 4; r++)
      if (refs[r] >= 0 && a->kind != A_PLOT) used[refs[r]] = true;
    if (a->kind == A_PRINT)
      for (int k = 0; k < a->n_items; k++) {
        PrintKind pk = a->items[k].kind;
        if (pk == P_SHAPE || pk == P_SHAPE_DIM || pk == P_REDUCE || pk == P_DATA) used[a->items[k].data] = true;
      }
  }
  for (int k = 0; k < p->n_data; k++)
    if (used[k] || p->data[k].source == DATA_PREDICTION) emit_load_data(out, p, k, used);
    else fprintf(out, "  // data[%d], line %d: not used\n", k, p->data[k].loc.line);
  fprintf(out, "\n  int64_t max_batch = 1;\n");
  for (int i = 0; i < p->n_actions; i++) {
    const Action *a = &p->actions[i];
    if (a->kind == A_FIT)
      fprintf(out, "  if ((opt.batch_size > 0 ? opt.batch_size : %lld) > max_batch) max_batch = opt.batch_size > 0 ? opt.batch_size : %lld;\n",
              (long long)action_batch(a), (long long)action_batch(a));
    else if (a->kind == A_EVALUATE || a->kind == A_PREDICT)
      fprintf(out, "  if (%lld > max_batch) max_batch = %lld;\n", (long long)action_batch(a), (long long)action_batch(a));
  }
  fprintf(out, "  if (max_batch > (1 << 24)) {\n    fprintf(stderr, \"error: batch size %%lld is too large\\n\", (long long)max_batch);\n    return 1;\n  }\n");
  fprintf(out, "  nn_model *m = nnc_model_create((int)max_batch, &opt);\n  if (!m) return 1;\n  m->init(m, &rng);\n%s\n",
          p->mpi ? "  nn_mpi_model(m);\n" : "");
  for (int i = 0; i < p->n_actions; i++) emit_action(out, p, g, i, NULL);
  fprintf(out, "  return 0;\n}\n\n");
  if (p->mpi)
    fprintf(out, "// A failure on one rank stops every rank, with a message naming it.\n"
                 "int main(int argc, char **argv) {\n  return nn_mpi_finish(nnc_main(argc, argv));\n}\n\n");
  fprintf(out, "#endif  // NNC_NO_MAIN\n");
}

