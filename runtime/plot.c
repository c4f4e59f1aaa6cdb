// plot.c — the matplotlib.pyplot calls tutorials make on training curves (figure,
// subplot, plot, title, xlabel, ylabel, legend, grid, ylim, savefig/show), drawn as
// SVG: axes with ticks, one polyline (or markers) per series, a legend.
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_AXES = 64, MAX_SERIES = 16 };
typedef struct series { double *x, *y; int64_t n; char label[128]; char color[16]; bool line, dots, dashed; } series;
typedef struct axes {
  bool used, legend, grid, ylim;
  double ylo, yhi;
  char title[256], xlabel[128], ylabel[128];
  series s[MAX_SERIES];
  int n;
} axes;
static axes ax[MAX_AXES];
static int rows = 1, cols = 1, cur = 0;

static void clear(void) {
  for (int i = 0; i < MAX_AXES; i++)
    for (int k = 0; k < ax[i].n; k++) free(ax[i].s[k].x), free(ax[i].s[k].y);
  memset(ax, 0, sizeof ax);
  rows = cols = 1, cur = 0;
}

void nn_plot_figure(void) { clear(); }

void nn_plot_subplot(int r, int c, int index) {
  if (r < 1 || c < 1 || r * c > MAX_AXES || index < 1 || index > r * c) return;
  if (r != rows || c != cols) {
    bool empty = true;
    for (int i = 0; i < MAX_AXES; i++) empty &= !ax[i].used;
    if (!empty && !(rows == 1 && cols == 1)) clear();
    rows = r, cols = c;
  }
  cur = index - 1;
}

static const char *const cycle[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

void nn_plot_series(const double *x, int64_t nx, const double *y, int64_t ny, const char *label, const char *fmt) {
  axes *a = &ax[cur];
  if (a->n == MAX_SERIES) return;
  series *s = &a->s[a->n];
  int64_t n = x && nx < ny ? nx : ny;
  s->x = malloc(sizeof(double) * (n ? n : 1));
  s->y = malloc(sizeof(double) * (n ? n : 1));
  if (!s->x || !s->y) { free(s->x), free(s->y); return; }
  for (int64_t i = 0; i < n; i++) s->x[i] = x ? x[i] : (double)i, s->y[i] = y[i];
  s->n = n;
  snprintf(s->label, sizeof s->label, "%s", label ? label : "");
  snprintf(s->color, sizeof s->color, "%s", cycle[a->n % 8]);
  s->line = true;
  if (fmt && *fmt) {  // 'bo', 'r', 'b--', 'g-': a colour letter, markers and/or a line style
    static const char letters[] = "bgrcmykw";
    static const char *const colors[] = {"#0000ff", "#008000", "#ff0000", "#00bfbf", "#bf00bf", "#bfbf00", "#000000", "#ffffff"};
    const char *c = strchr(letters, fmt[0]);
    if (c && fmt[0]) snprintf(s->color, sizeof s->color, "%s", colors[c - letters]);
    s->dots = strpbrk(fmt, "o.") != NULL;
    s->dashed = strstr(fmt, "--") != NULL;
    s->line = strchr(fmt, '-') != NULL || !s->dots;
  }
  a->used = true;
  a->n++;
}

void nn_plot_text(int what, const char *text) {
  axes *a = &ax[cur];
  char *dst = what == NN_PLOT_TITLE ? a->title : what == NN_PLOT_XLABEL ? a->xlabel : a->ylabel;
  size_t cap = what == NN_PLOT_TITLE ? sizeof a->title : sizeof a->xlabel;
  snprintf(dst, cap, "%s", text);
  a->used = true;
}

void nn_plot_legend(void) { ax[cur].legend = true; }
void nn_plot_label(int k, const char *label) {
  if (k >= 0 && k < ax[cur].n) snprintf(ax[cur].s[k].label, sizeof ax[cur].s[k].label, "%s", label);
}
void nn_plot_grid(bool on) { ax[cur].grid = on; }
void nn_plot_ylim(double lo, double hi) { ax[cur].ylim = true, ax[cur].ylo = lo, ax[cur].yhi = hi; }

static void text_escaped(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else if (*s == '"') fputs("&quot;", f);
    else if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
  }
}

// A "nice" tick step for the range: 1, 2 or 5 times a power of ten.
static double tick_step(double span) {
  double raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void draw_axes(FILE *f, const axes *a, double ox, double oy, double w, double h) {
  double l = ox + 60, r = ox + w - 20, t = oy + 35, b = oy + h - 45;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int k = 0; k < a->n; k++)
    for (int64_t i = 0; i < a->s[k].n; i++) {
      double x = a->s[k].x[i], y = a->s[k].y[i];
      if (!isfinite(x) || !isfinite(y)) continue;
      x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
    }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (a->ylim) y0 = a->ylo, y1 = a->yhi;
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  double pad = (y1 - y0) * 0.05;
  if (!a->ylim) y0 -= pad, y1 += pad;
#define SX(x) (l + ((x) - x0) / (x1 - x0) * (r - l))
#define SY(y) (b - ((y) - y0) / (y1 - y0) * (b - t))
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#000\"/>\n", l, t, r - l, b - t);
  for (int axis = 0; axis < 2; axis++) {
    double lo = axis ? y0 : x0, hi = axis ? y1 : x1, st = tick_step(hi - lo);
    for (double v = ceil(lo / st) * st; v <= hi + st * 1e-9; v += st) {
      double p = axis ? SY(v) : SX(v);
      char lab[64];
      snprintf(lab, sizeof lab, "%.6g", fabs(v) < st * 1e-9 ? 0.0 : v);
      if (axis) {
        if (a->grid) fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", l, p, r, p);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", l - 4, p, l, p);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%s</text>\n", l - 6, p + 3, lab);
      } else {
        if (a->grid) fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", p, t, p, b);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", p, b, p, b + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%s</text>\n", p, b + 15, lab);
      }
    }
  }
  for (int k = 0; k < a->n; k++) {
    const series *s = &a->s[k];
    if (s->line && s->n > 0) {
      fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"", s->color,
              s->dashed ? " stroke-dasharray=\"6,4\"" : "");
      for (int64_t i = 0; i < s->n; i++)
        if (isfinite(s->y[i])) fprintf(f, "%s%.1f,%.1f", i ? " " : "", SX(s->x[i]), SY(s->y[i]));
      fprintf(f, "\"/>\n");
    }
    if (s->dots || s->n == 1)
      for (int64_t i = 0; i < s->n; i++)
        if (isfinite(s->y[i])) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", SX(s->x[i]), SY(s->y[i]), s->color);
  }
#undef SX
#undef SY
  if (a->title[0]) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">", (l + r) / 2, t - 10);
    text_escaped(f, a->title);
    fputs("</text>\n", f);
  }
  if (a->xlabel[0]) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">", (l + r) / 2, b + 32);
    text_escaped(f, a->xlabel);
    fputs("</text>\n", f);
  }
  if (a->ylabel[0]) {
    fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" font-size=\"11\" text-anchor=\"middle\">", ox + 16, (t + b) / 2);
    text_escaped(f, a->ylabel);
    fputs("</text>\n", f);
  }
  if (a->legend) {
    int row = 0;
    for (int k = 0; k < a->n; k++) {
      if (!a->s[k].label[0]) continue;
      double y = t + 14 + 15 * row++;
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", r - 150, y - 4, r - 130, y - 4, a->s[k].color);
      fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">", r - 125, y);
      text_escaped(f, a->s[k].label);
      fputs("</text>\n", f);
    }
  }
}

int nn_plot_save(const char *path) {
  double cw = 480, ch = 360;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return rt_error("cannot write the plot %s", path);
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\">\n", cw * cols, ch * rows);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
  for (int i = 0; i < rows * cols; i++)
    if (ax[i].used || rows * cols == 1) draw_axes(f, &ax[i], (i % cols) * cw, (i / cols) * ch, cw, ch);
  fprintf(f, "</svg>\n");
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    remove(tmp);
    return rt_error("cannot write the plot %s", path);
  }
  return 0;
}

int nn_plot_history(const nn_history *h, const char *path) {
  clear();
  for (int k = 0; k < h->n_keys; k++) {
    if (!strncmp(h->key[k], "val_", 4)) continue;
    if (k) nn_plot_subplot(1, 2, 2);  // loss on the left, the first metric on the right
    for (int v = 0; v < 2; v++) {
      char name[48];
      snprintf(name, sizeof name, "%s%s", v ? "val_" : "", h->key[k]);
      int64_t n;
      const double *y = nn_history_series(h, name, &n);
      if (y) nn_plot_series(NULL, 0, y, n, name, NULL);
    }
    nn_plot_text(NN_PLOT_TITLE, h->key[k]);
    nn_plot_text(NN_PLOT_XLABEL, "epoch");
    nn_plot_legend();
    if (k) break;
    if (h->n_keys > 1) { cur = 0; rows = 1, cols = 2; }
  }
  int rc = nn_plot_save(path);
  clear();
  return rc;
}
