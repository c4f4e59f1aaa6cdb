// test_runtime_script.c — what a script's statements need at run time: Python format
// specs, row and column selection with Python's slice rules, the training history and
// the SVG plot writer.
#include "nn.h"
#include "test_runtime_util.h"

#include <math.h>

static const char *fmt(double v, bool is_int, const char *spec) {
  static char buf[256];
  cr_assert_eq(nn_format_spec(buf, sizeof buf, NULL, v, is_int, spec), 0, "spec '%s' refused", spec);
  return buf;
}

Test(format, python_format_specs) {
  cr_assert_str_eq(fmt(0.87654, false, ".3f"), "0.877");
  cr_assert_str_eq(fmt(0.87654, false, ".1%"), "87.7%");
  cr_assert_str_eq(fmt(1234567, true, ","), "1,234,567");
  cr_assert_str_eq(fmt(42, true, ">6"), "    42");
  cr_assert_str_eq(fmt(42, true, "<6"), "42    ");
  cr_assert_str_eq(fmt(42, true, "^6"), "  42  ");
  cr_assert_str_eq(fmt(-3.5, false, "08.2f"), "-0003.50");
  cr_assert_str_eq(fmt(3.5, false, "+.1f"), "+3.5");
  cr_assert_str_eq(fmt(0.1, false, ""), "0.1");
  cr_assert_str_eq(fmt(12345.678, false, ".2e"), "1.23e+04");

  cr_assert_str_eq(fmt(255, true, "x"), "ff");
  cr_assert_str_eq(fmt(5, true, "b"), "101");
  char buf[64];
  cr_assert_eq(nn_format_spec(buf, sizeof buf, "abc", 0, false, "*>6"), 0);
  cr_assert_str_eq(buf, "***abc");
  // What Python refuses: 'd' of a float, junk after the type, a string with a sign.
  cr_assert_eq(nn_format_spec(buf, sizeof buf, NULL, 1.5, false, "d"), -1);
  cr_assert_eq(nn_format_spec(buf, sizeof buf, NULL, 1.5, false, ".2fx"), -1);
  cr_assert_eq(nn_format_spec(buf, sizeof buf, "s", 0, false, "+"), -1);
  cr_assert_eq(nn_format_spec(buf, sizeof buf, NULL, 1, false, "."), -1);
}

static nn_data table(void) {
  // 5 rows of 3 columns: row r, column c holds 10r + c
  double v[15];
  for (int i = 0; i < 15; i++) v[i] = 10 * (i / 3) + i % 3;
  nn_data d;
  cr_assert_eq(nn_data_from_values(&d, v, 5, 1, (const int64_t[]){3}), 0);
  return d;
}

static double at(const nn_data *d, int64_t i) {
  return d->dtype == NN_F64 ? ((double *)d->buf)[i] : ((float *)d->buf)[i];
}

Test(select, rows_follow_python_slices) {
  nn_data d = table();
  cr_assert_eq(nn_data_select(&d, -2, NN_NONE, false, NULL, 0, false), 0);  // x[-2:]
  cr_assert_eq(d.rows, 2);
  cr_assert_eq(at(&d, 0), 30);
  nn_data_free(&d);
  d = table();
  cr_assert_eq(nn_data_select(&d, 3, 100, false, NULL, 0, false), 0);  // past the end: clipped
  cr_assert_eq(d.rows, 2);
  nn_data_free(&d);
  d = table();
  cr_assert_eq(nn_data_select(&d, 4, 2, false, NULL, 0, false), 0);  // empty, not an error
  cr_assert_eq(d.rows, 0);
  nn_data_free(&d);
  d = table();
  cr_assert_eq(nn_data_select(&d, -1, NN_NONE, true, NULL, 0, false), 0);  // x[-1]
  cr_assert(d.squeezed);
  cr_assert_eq(d.rows, 1);
  cr_assert_eq(at(&d, 0), 40);
  cr_assert_eq(nn_data_rank(&d), 1);
  nn_data_free(&d);
  d = table();
  cr_assert_eq(nn_data_select(&d, 5, NN_NONE, true, NULL, 0, false), -1);  // out of bounds
  nn_data_free(&d);
}

Test(select, columns_keep_or_drop_their_axis) {
  nn_data d = table();
  int64_t cols[] = {1, 2};
  cr_assert_eq(nn_data_select(&d, NN_NONE, NN_NONE, false, cols, 2, false), 0);  // d[:, 1:3]
  cr_assert_eq(d.ndim, 1);
  cr_assert_eq(d.shape[0], 2);
  cr_assert_eq(at(&d, 2), 11);
  nn_data_free(&d);
  d = table();
  int64_t last[] = {-1};
  cr_assert_eq(nn_data_select(&d, 1, 3, false, last, 1, true), 0);  // d[1:3, -1]
  cr_assert_eq(d.ndim, 0);
  cr_assert_eq(d.rows, 2);
  cr_assert_eq(at(&d, 0), 12);
  cr_assert_eq(at(&d, 1), 22);
  cr_assert_float_eq(nn_data_reduce(&d, NN_REDUCE_MEAN), 17, 1e-12);
  cr_assert_float_eq(nn_data_reduce(&d, NN_REDUCE_ARGMAX), 1, 0);
  nn_data_free(&d);
  d = table();
  int64_t bad[] = {3};
  cr_assert_eq(nn_data_select(&d, NN_NONE, NN_NONE, false, bad, 1, true), -1);
  nn_data_free(&d);
}

Test(history, keys_values_and_python_indexes) {
  nn_history h = {0};
  const char names[2][40] = {"loss", "accuracy"};
  for (int e = 0; e < 3; e++) nn_history_add(&h, 2, names, (double[]){1.0 / (e + 1), 0.5 + 0.1 * e});
  int64_t n;
  const double *loss = nn_history_series(&h, "loss", &n);
  cr_assert_eq(n, 3);
  cr_assert_float_eq(loss[1], (float)0.5, 0);
  cr_assert_float_eq(nn_history_get(&h, "accuracy", -1), (float)0.7, 0);
  nn_capture_errors(true);
  cr_assert(isnan(nn_history_get(&h, "loss", 3)));
  nn_capture_errors(false);
}

Test(plot, svg_has_the_curves_and_text_escaped) {
  nn_history h = {0};
  const char names[2][40] = {"loss", "val_loss"};
  for (int e = 0; e < 4; e++) nn_history_add(&h, 2, names, (double[]){1.0 / (e + 1), 1.2 / (e + 1)});
  const char *path = scratch("curves.svg");
  cr_assert_eq(nn_plot_history(&h, path), 0);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  char text[65536];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  cr_assert(strstr(text, "<svg") && strstr(text, "</svg>"));
  cr_assert(strstr(text, ">val_loss<"), "the legend names the validation curve");
  const char *first = strstr(text, "<polyline"), *second = first ? strstr(first + 1, "<polyline") : NULL;
  cr_assert(first && second, "two curves");
  nn_plot_figure();
  nn_plot_series(NULL, 0, (double[]){1, 2}, 2, "a<b & \"c\"", "bo");
  nn_plot_text(NN_PLOT_TITLE, "<script>");
  nn_plot_legend();
  cr_assert_eq(nn_plot_save(path), 0);
  f = fopen(path, "r");
  len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  cr_assert(strstr(text, "a&lt;b &amp; &quot;c&quot;"));
  cr_assert(strstr(text, "&lt;script&gt;") && !strstr(text, "<script>"));
  cr_assert(strstr(text, "<circle"), "'bo' draws markers");
}
