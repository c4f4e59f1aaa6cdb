// sema_plot.c — the matplotlib.pyplot calls tutorials make on training history:
// figure, subplot, plot, title, xlabel, ylabel, legend, grid, ylim, savefig, show.
// Each becomes an A_PLOT action the built program draws as SVG (runtime/plot.c).
// Pictures of samples (imshow and its decorations) are skipped with one warning.
#include "sema_internal.h"

#include <string.h>

bool is_plot_call(const char *path) {
  const char *dot = strrchr(path, '.');
  if (!dot) return false;
  const char *p = dot;
  while (p > path && p[-1] != '.') p--;
  return (dot - p == 6 && !strncmp(p, "pyplot", 6)) || (dot - p == 3 && !strncmp(p, "plt", 3));
}

static Action *plot_action(PlotOp op, Loc loc) {
  Action *a = sema_add_action(A_PLOT, loc);
  a->plot = op;
  return a;
}

// A series: a history list, or compile-time numbers (a list, range()).
static bool series_item(const Expr *e, PrintItem *out) {
  Value *v = eval(e);
  if (v->kind == V_ERROR) return false;
  if (v->kind == V_RUNTIME && v->rt.kind == P_HIST) { *out = v->rt; return true; }
  if (v->kind == V_LIST || v->kind == V_TUPLE) {
    *out = (PrintItem){.kind = P_NUMBERS, .numbers = xalloc(sizeof(double) * (v->n + 1)), .n_numbers = v->n};
    for (int i = 0; i < v->n; i++) {
      if (v->items[i]->kind != V_INT && v->items[i]->kind != V_FLOAT) {
        diag_error(e->loc, "plot() needs numbers; item %d is %s", i, value_kind_name(v->items[i]));
        return false;
      }
      out->numbers[i] = v->items[i]->f;
    }
    return true;
  }
  diag_error(e->loc, "plot() draws history lists (history.history['loss']) and lists of numbers, not %s", value_kind_name(v));
  return false;
}

static bool text_arg(const Expr *call, int i, const char *fn, const char **out) {
  if (call->args.n <= i) {
    diag_error(call->loc, "plt.%s() needs a string", fn);
    return false;
  }
  Value *v = eval(call->args.items[i]);
  if (v->kind == V_ERROR) return false;
  if (v->kind != V_STR) {
    diag_error(call->args.items[i]->loc, "plt.%s() takes a string known when compiling, got %s", fn, value_kind_name(v));
    return false;
  }
  *out = v->s;
  return true;
}

static const Expr *kwarg(const Expr *call, const char *name) {
  for (int i = 0; i < call->kwargs.n; i++)
    if (!strcmp(call->kwargs.items[i]->kwname, name)) return call->kwargs.items[i];
  return NULL;
}

Value *plot_call(const char *fn, const Expr *call) {
  Value *none = value_new(V_NONE, call->loc);
  // Pictures of samples are skipped with one warning a compilation; their decorations
  // (ticks, colour bars) silently.
  static const Program *warned_images;
  static const char *const pictures[] = {"imshow", "matshow", "bar", "scatter", "hist"};
  static const char *const decorations[] = {"xticks", "yticks", "colorbar", "axis", "suptitle", "xlim", "tight_layout"};
  if (in_list(fn, pictures, 5)) {
    if (warned_images != sema_program())
      diag_warning(call->loc, "plt.%s() is skipped: nnc draws training curves (plt.plot), not images or charts of samples", fn);
    warned_images = sema_program();
    return none;
  }
  if (in_list(fn, decorations, 7)) return none;
  if (!strcmp(fn, "figure") || !strcmp(fn, "clf") || !strcmp(fn, "close")) {
    plot_action(PLOT_FIGURE, call->loc);
    return none;
  }
  if (!strcmp(fn, "subplot")) {
    int64_t v[3];
    if (call->args.n == 1) {
      if (!arg_int(call->args.items[0], "subplot", 111, 999, &v[0])) return value_error();
      v[2] = v[0] % 10, v[1] = v[0] / 10 % 10, v[0] /= 100;
    } else if (call->args.n == 3) {
      for (int i = 0; i < 3; i++)
        if (!arg_int(call->args.items[i], "subplot argument", 1, 64, &v[i])) return value_error();
    } else {
      diag_error(call->loc, "plt.subplot() takes (rows, columns, index) or a number such as 121");
      return value_error();
    }
    if (v[0] < 1 || v[1] < 1 || v[0] * v[1] > 64 || v[2] < 1 || v[2] > v[0] * v[1]) {
      diag_error(call->loc, "plt.subplot(%lld, %lld, %lld): at most 64 plots, index from 1 to rows * columns", (long long)v[0],
                 (long long)v[1], (long long)v[2]);
      return value_error();
    }
    Action *a = plot_action(PLOT_SUBPLOT, call->loc);
    memcpy(a->ints, v, sizeof v);
    return none;
  }
  if (!strcmp(fn, "plot")) {
    int n = call->args.n;
    const char *fmt = NULL;
    if (n >= 2) {
      Value *last = eval(call->args.items[n - 1]);
      if (last->kind == V_STR) fmt = last->s, n--;
    }
    if (n < 1 || n > 2) {
      diag_error(call->loc, "plt.plot() takes y, or x and y, and an optional format such as 'bo'");
      return value_error();
    }
    PrintItem s[2];
    for (int i = 0; i < n; i++)
      if (!series_item(call->args.items[i], &s[i])) return value_error();
    const char *label = NULL;
    const Expr *l = kwarg(call, "label");
    if (l && !arg_str(l, "label", &label)) return value_error();
    Action *a = plot_action(PLOT_SERIES, call->loc);
    a->items = xalloc(sizeof(PrintItem) * 2);
    a->items[0] = s[n - 1];
    if (n == 2) a->items[1] = s[0];
    a->n_items = n;
    a->text = label, a->fmt = fmt;
    return none;
  }
  if (!strcmp(fn, "title") || !strcmp(fn, "xlabel") || !strcmp(fn, "ylabel")) {
    const char *t;
    if (!text_arg(call, 0, fn, &t)) return value_error();
    Action *a = plot_action(fn[0] == 't' ? PLOT_TITLE : fn[0] == 'x' ? PLOT_XLABEL : PLOT_YLABEL, call->loc);
    a->text = t;
    return none;
  }
  if (!strcmp(fn, "legend")) {  // legend() or legend(['train', 'test']): the series' names in order
    Action *a = plot_action(PLOT_LEGEND, call->loc);
    const Expr *labels = call->args.n ? call->args.items[0] : kwarg(call, "labels");
    if (labels) {
      Value *v = eval(labels);
      if (v->kind == V_ERROR) return v;
      if (v->kind != V_LIST && v->kind != V_TUPLE) {
        diag_error(labels->loc, "plt.legend() takes a list of names, got %s", value_kind_name(v));
        return value_error();
      }
      a->items = xalloc(sizeof(PrintItem) * (v->n + 1));
      for (int i = 0; i < v->n; i++) {
        if (v->items[i]->kind != V_STR) {
          diag_error(labels->loc, "plt.legend() names must be strings");
          return value_error();
        }
        a->items[a->n_items++] = (PrintItem){.kind = P_STRING, .text = v->items[i]->s};
      }
    }
    return none;
  }
  if (!strcmp(fn, "grid")) {
    bool on = true;
    if (call->args.n && !arg_bool(call->args.items[0], "grid", &on)) return value_error();
    plot_action(PLOT_GRID, call->loc)->ints[0] = on;
    return none;
  }
  if (!strcmp(fn, "ylim")) {
    double lim[2];
    const Expr *a0 = call->args.n ? call->args.items[0] : NULL;
    Value *v = a0 ? eval(a0) : NULL;
    if (v && (v->kind == V_TUPLE || v->kind == V_LIST) && v->n == 2 && call->args.n == 1 &&
        (v->items[0]->kind == V_INT || v->items[0]->kind == V_FLOAT) && (v->items[1]->kind == V_INT || v->items[1]->kind == V_FLOAT)) {
      lim[0] = v->items[0]->f, lim[1] = v->items[1]->f;
    } else if (call->args.n == 2) {
      if (!arg_float(call->args.items[0], "ylim", -1e300, 1e300, false, &lim[0]) ||
          !arg_float(call->args.items[1], "ylim", -1e300, 1e300, false, &lim[1]))
        return value_error();
    } else {
      diag_error(call->loc, "plt.ylim() takes (bottom, top)");
      return value_error();
    }
    memcpy(plot_action(PLOT_YLIM, call->loc)->lims, lim, sizeof lim);
    return none;
  }
  if (!strcmp(fn, "savefig")) {
    const char *path;
    if (!text_arg(call, 0, fn, &path)) return value_error();
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".svg"))
      diag_warning(call->args.items[0]->loc, "the plot is written as SVG whatever the file name says");
    plot_action(PLOT_SAVE, call->loc)->text = path;
    return none;
  }
  if (!strcmp(fn, "show")) {
    // No window to show it in: the figure goes to <script>.svg in the working directory.
    const char *src = sema_program()->source_path, *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    size_t n = strlen(base);
    const char *stem = n > 3 && !strcmp(base + n - 3, ".nn") ? xstrndup(base, n - 3) : base;
    plot_action(PLOT_SHOW, call->loc)->text = xprintf("%s.svg", stem);
    return none;
  }
  diag_error(call->fn->loc, "plt.%s() is not supported; nnc draws training curves with plot, title, xlabel, ylabel, legend, "
                            "grid, ylim, subplot, figure, savefig and show", fn);
  return value_error();
}
