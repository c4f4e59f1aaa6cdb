// format.c — what a script's print() needs at run time: Python's format specs
// ({acc:.3f}, '%.2f' % x), values known only when the program runs (history, numpy
// reductions, rows of data), and --json, under which printed text becomes JSON lines.
// The compiler links the same formatter, so compile-time and run-time text agree.
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// [[fill]align][sign][#][0][width][,|_][.precision][type], as Python's format().
int nn_format_spec(char *buf, size_t cap, const char *str, double v, bool is_int, const char *spec) {
  const char *s = spec ? spec : "";
  char fill = ' ', align = 0, sign = '-', group = 0, type = 0;
  int width = 0, prec = -1;
  if (s[0] && s[1] && strchr("<>^=", s[1])) fill = s[0], align = s[1], s += 2;
  else if (s[0] && strchr("<>^=", s[0])) align = s[0], s++;
  if (*s && strchr("+- ", *s)) sign = *s++;
  if (*s == 'z') s++;
  if (*s == '#') s++;
  if (*s == '0') {
    if (!align) fill = '0', align = '=';
    s++;
  }
  while (*s >= '0' && *s <= '9') { width = width * 10 + (*s++ - '0'); if (width > 1000) return -1; }
  if (*s == ',' || *s == '_') group = *s++;
  if (*s == '.') {
    s++;
    if (!(*s >= '0' && *s <= '9')) return -1;
    prec = 0;
    while (*s >= '0' && *s <= '9') { prec = prec * 10 + (*s++ - '0'); if (prec > 100) return -1; }
  }
  if (*s) type = *s++;
  if (*s) return -1;
  char body[700];
  const char *prefix = "";
  if (str) {
    if (type && type != 's') return -1;
    if (sign != '-' || group) return -1;
    snprintf(body, sizeof body, "%.*s", prec >= 0 ? prec : 400, str);
    if (!align) align = '<';
  } else {
    if (type && !strchr("deEfFgGn%xXob", type)) return -1;
    if (type && strchr("dnxXob", type) && !is_int) return -1;  // Python: ValueError
    if (type && strchr("dnxXob", type) && prec >= 0) return -1;
    double a = fabs(v);
    bool neg = signbit(v) && !isnan(v);
    if (is_int && (!type || strchr("dn", type))) snprintf(body, sizeof body, "%.0f", a);
    else if (type == 'x' || type == 'X' || type == 'o')
      snprintf(body, sizeof body, type == 'x' ? "%llx" : type == 'X' ? "%llX" : "%llo", (unsigned long long)a);
    else if (type == 'b') {
      unsigned long long u = (unsigned long long)a;
      int n = 0;
      char tmp[70];
      do { tmp[n++] = (char)('0' + (u & 1)); u >>= 1; } while (u);
      for (int i = 0; i < n; i++) body[i] = tmp[n - 1 - i];
      body[n] = 0;
    } else if (type == 'f' || type == 'F') snprintf(body, sizeof body, "%.*f", prec >= 0 ? prec : 6, a);
    else if (type == 'e' || type == 'E') snprintf(body, sizeof body, type == 'e' ? "%.*e" : "%.*E", prec >= 0 ? prec : 6, a);
    else if (type == 'g' || type == 'G') snprintf(body, sizeof body, type == 'g' ? "%.*g" : "%.*G", prec >= 0 ? (prec ? prec : 1) : 6, a);
    else if (type == '%') snprintf(body, sizeof body, "%.*f%%", prec >= 0 ? prec : 6, a * 100);
    else if (is_int) snprintf(body, sizeof body, "%.0f", a);
    else if (prec >= 0) {
      // No type with a precision: 'g', but a float keeps a '.0' when it would look integral.
      snprintf(body, sizeof body, "%.*g", prec ? prec : 1, a);
      if (!strpbrk(body, ".einfa")) strcat(body, ".0");
    } else nn_format_float(body, sizeof body, a);
    if (isnan(v)) snprintf(body, sizeof body, "nan");
    else if (isinf(v)) snprintf(body, sizeof body, "inf");
    if (group) {  // thousands separators in the integer part
      char tmp[600];
      size_t digits = strspn(body, "0123456789");
      size_t w = 0;
      for (size_t i = 0; i < digits; i++) {
        if (i && (digits - i) % 3 == 0) tmp[w++] = group;
        tmp[w++] = body[i];
      }
      snprintf(tmp + w, sizeof tmp - w, "%s", body + digits);
      snprintf(body, sizeof body, "%s", tmp);
    }
    prefix = neg ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "";
    if (!align) align = '>';
  }
  int len = (int)(strlen(prefix) + strlen(body));
  int pad = width > len ? width - len : 0;
  int left = align == '<' ? 0 : align == '^' ? pad / 2 : pad, right = pad - left;
  size_t n = 0;
#define PUT(c) do { if (n + 1 < cap) buf[n++] = (c); } while (0)
  if (align == '=') {
    for (const char *p = prefix; *p; p++) PUT(*p);
    for (int i = 0; i < left; i++) PUT(fill);
  } else {
    for (int i = 0; i < left; i++) PUT(fill);
    for (const char *p = prefix; *p; p++) PUT(*p);
  }
  for (const char *p = body; *p; p++) PUT(*p);
  for (int i = 0; i < right; i++) PUT(fill);
#undef PUT
  if (cap) buf[n < cap ? n : cap - 1] = 0;
  return 0;
}

void nn_fprint_spec(FILE *f, double v, bool is_int, const char *spec) {
  char buf[1200];
  if (nn_format_spec(buf, sizeof buf, NULL, v, is_int, spec) < 0) snprintf(buf, sizeof buf, "%g", v);
  fputs(buf, f);
}

void nn_fprint_float(FILE *f, double v) {
  char buf[64];
  nn_format_float(buf, sizeof buf, v);
  fputs(buf, f);
}

// print() output: straight to stdout, or under --json collected and written as one
// {"print": "..."} line, so stdout holds JSON lines only.
static char *json_text;
static size_t json_len;

FILE *nn_print_begin(const nn_options *o) {
  if (!o || !o->json) return stdout;
  FILE *f = open_memstream(&json_text, &json_len);
  return f ? f : stderr;
}

void nn_print_end(const nn_options *o, FILE *f) {
  if (f == stdout || f == stderr) {
    fflush(f);
    return;
  }
  (void)o;
  fclose(f);
  size_t n = json_len;
  if (n && json_text[n - 1] == '\n') n--;  // print's end= is the line itself
  fputs("{\"print\":\"", stdout);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)json_text[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c == '\n') fputs("\\n", stdout);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  fputs("\"}\n", stdout);
  fflush(stdout);
  free(json_text);
  json_text = NULL;
}

static double elem(const nn_data *d, int64_t i) {
  switch (d->dtype) {
  case NN_U8: return ((const uint8_t *)d->buf)[i] * d->scale;
  case NN_F32: return ((const float *)d->buf)[i] * d->scale;
  case NN_F64: return ((const double *)d->buf)[i] * d->scale;
  case NN_I64: return (double)((const int64_t *)d->buf)[i] * d->scale;
  }
  return 0;
}

double nn_data_reduce(const nn_data *d, int op) {
  int64_t n = d->rows * d->row_size;
  if (n == 0) {
    rt_error("%s: reduction of an empty array", d->origin);
    return NAN;
  }
  double best = elem(d, 0), sum = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = elem(d, i);
    sum += v;
    if ((op == NN_REDUCE_ARGMAX || op == NN_REDUCE_MAX) ? v > best : v < best) best = v, at = i;
  }
  switch (op) {
  case NN_REDUCE_ARGMAX: case NN_REDUCE_ARGMIN: return (double)at;
  case NN_REDUCE_MAX: case NN_REDUCE_MIN: return best;
  case NN_REDUCE_SUM: return sum;
  default: return sum / (double)n;
  }
}

// Roughly numpy's str() of an array: "[0.1 0.2 0.7]", nested by rows, '...' past 1000.
void nn_fprint_data(FILE *f, const nn_data *d) {
  int64_t n = d->rows * d->row_size;
  bool ints = d->dtype == NN_U8 || d->dtype == NN_I64;
  if (d->squeezed && d->ndim == 0 && n == 1) {
    if (ints && d->scale == 1) fprintf(f, "%.0f", elem(d, 0));
    else nn_fprint_float(f, elem(d, 0));
    return;
  }
  int64_t dims[5];
  int nd = 0;
  if (!d->squeezed) dims[nd++] = d->rows;
  for (int i = 0; i < d->ndim; i++) dims[nd++] = d->shape[i];
  int64_t inner = nd ? dims[nd - 1] : 1;
  for (int64_t i = 0; i < n; i++) {
    int64_t k = i, open = 0;
    for (int a = nd - 1; a >= 0 && k % dims[a] == 0; a--) k /= dims[a], open++;
    if (i) fputs(open ? (open > 1 ? "\n\n" : "\n") : " ", f);
    for (int o = 0; o < open; o++) fputc('[', f);
    if (!i && !open) fputc('[', f);
    if (i >= 1000) { fputs("...", f); break; }
    double v = elem(d, i);
    if (ints && d->scale == 1) fprintf(f, "%.0f", v);
    else fprintf(f, "%.8g", v);
    int64_t kk = i + 1, close = 0;
    for (int a = nd - 1; a >= 0 && kk % dims[a] == 0; a--) kk /= dims[a], close++;
    for (int c = 0; c < close; c++) fputc(']', f);
  }
  (void)inner;
}

void nn_softmax_rows(float *x, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; r++) {
    float *p = x + r * width, m = p[0];
    for (int64_t j = 1; j < width; j++) m = p[j] > m ? p[j] : m;
    double s = 0;
    for (int64_t j = 0; j < width; j++) s += (p[j] = expf(p[j] - m));
    for (int64_t j = 0; j < width; j++) p[j] = (float)(p[j] / s);
  }
}

// Python slice bounds on n items: NN_NONE for a missing bound.
static void slice_bounds(int64_t n, int64_t start, int64_t stop, int64_t *lo, int64_t *hi) {
  int64_t a = start == NN_NONE ? 0 : start < 0 ? start + n : start;
  int64_t b = stop == NN_NONE ? n : stop < 0 ? stop + n : stop;
  a = a < 0 ? 0 : a > n ? n : a;
  b = b < a ? a : b > n ? n : b;
  *lo = a, *hi = b;
}

int nn_data_select(nn_data *d, int64_t start, int64_t stop, bool row_index, const int64_t *cols, int n_cols,
                   bool col_index) {
  size_t es = d->dtype == NN_U8 ? 1 : d->dtype == NN_F32 ? 4 : 8;
  if (row_index) {
    int64_t i = start < 0 ? start + d->rows : start;
    if (i < 0 || i >= d->rows)
      return rt_error("%s: index %lld is out of bounds for %lld rows", d->origin, (long long)start, (long long)d->rows);
    start = i, stop = i + 1;
  }
  int64_t lo, hi;
  slice_bounds(d->rows, start, stop, &lo, &hi);
  if (lo > 0) memmove(d->buf, (char *)d->buf + lo * d->row_size * es, (hi - lo) * d->row_size * es);
  d->rows = hi - lo;
  d->squeezed = row_index;
  if (n_cols > 0) {
    int64_t w = d->row_size;
    for (int c = 0; c < n_cols; c++)
      if (cols[c] < -w || cols[c] >= w)
        return rt_error("%s: column %lld is out of bounds for %lld columns", d->origin, (long long)cols[c], (long long)w);
    char *out = malloc((size_t)(d->rows ? d->rows : 1) * n_cols * es);
    if (!out) return rt_error("out of memory");
    for (int64_t r = 0; r < d->rows; r++)
      for (int c = 0; c < n_cols; c++) {
        int64_t k = cols[c] < 0 ? cols[c] + w : cols[c];
        memcpy(out + (r * n_cols + c) * es, (char *)d->buf + (r * w + k) * es, es);
      }
    free(d->buf);
    d->buf = out;
    d->ndim = col_index ? 0 : 1;
    d->shape[0] = n_cols;
    d->row_size = n_cols;
  }
  return 0;
}

//
// The training history: fit() appends each epoch's logs.
//
void nn_history_add(nn_history *h, int n, const char (*names)[40], const double *values) {
  for (int i = 0; i < n; i++) {
    int k = 0;
    while (k < h->n_keys && strcmp(h->key[k], names[i])) k++;
    if (k == h->n_keys) {
      if (k == NN_HISTORY_KEYS) continue;
      snprintf(h->key[k], sizeof h->key[k], "%s", names[i]);
      h->n_keys++;
    }
    if (h->len[k] == h->cap[k]) {
      int64_t cap = h->cap[k] ? 2 * h->cap[k] : 16;
      double *v = realloc(h->value[k], sizeof(double) * cap);
      if (!v) continue;
      h->value[k] = v, h->cap[k] = cap;
    }
    h->value[k][h->len[k]++] = (float)values[i];  // Keras logs float32 values
  }
}

const double *nn_history_series(const nn_history *h, const char *key, int64_t *n) {
  for (int k = 0; k < h->n_keys; k++)
    if (!strcmp(h->key[k], key)) { *n = h->len[k]; return h->value[k]; }
  *n = 0;
  return NULL;
}

double nn_history_get(const nn_history *h, const char *key, int64_t index) {
  int64_t n;
  const double *v = nn_history_series(h, key, &n);
  int64_t i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) {
    rt_error("history['%s'][%lld]: index out of range (%lld epochs ran)", key, (long long)index, (long long)n);
    return NAN;
  }
  return v[i];
}

void nn_fprint_history(FILE *f, const nn_history *h, const char *key) {
  int64_t n;
  const double *v = nn_history_series(h, key, &n);
  fputc('[', f);
  for (int64_t i = 0; i < n; i++) {
    if (i) fputs(", ", f);
    nn_fprint_float(f, v[i]);
  }
  fputc(']', f);
}
