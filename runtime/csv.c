// csv.c — np.loadtxt(path, delimiter=...) for files of numbers.
//
// One sample per line; blank lines and '#' comments are skipped, "\r\n" is accepted.
// A ' ' delimiter means any run of spaces/tabs (np.loadtxt's delimiter=None).
// Like numpy, a single column or a single row gives a 1-d array: rows of one value.
#include "rt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int nn_load_csv(nn_data *out, const char *path, char delimiter) { return nn_load_csv_skip(out, path, delimiter, 0); }

int nn_load_csv_skip(nn_data *out, const char *path, char delimiter, int64_t skiprows) {
  memset(out, 0, sizeof *out);
  snprintf(out->origin, sizeof out->origin, "%s", path);
  out->scale = 1;
  size_t len;
  char *text = rt_read_file(path, &len);
  if (!text)
    return -1;
  if (memchr(text, 0, len)) {
    free(text);
    return rt_error("%s: not a text file", path);
  }
  bool ws = delimiter == ' ' || delimiter == '\t';
  double *vals = NULL;
  int64_t n = 0, cap = 0, lines = 0, cols = -1, first_line = 0, line = 0;
  char *p = text;
  while (*p) {
    line++;
    char *eol = strchr(p, '\n');
    char *next = eol ? eol + 1 : p + strlen(p);
    char *end = eol ? eol : next;
    if (line <= skiprows) {  // np.loadtxt skiprows=, np.genfromtxt skip_header= (a header line)
      p = next;
      continue;
    }
    char *hash = memchr(p, '#', end - p);
    if (hash)
      end = hash;
    while (end > p && is_blank(end[-1])) end--;
    char *q = p;
    while (q < end && is_blank(*q)) q++;
    if (q == end) {
      p = next;
      continue;
    }
    int64_t c = 0;
    for (;;) {
      // One cell: [q, cell_end)
      while (q < end && (*q == ' ' || *q == '\t')) q++;
      char *cell_end = q;
      if (ws)
        while (cell_end < end && !is_blank(*cell_end)) cell_end++;
      else
        while (cell_end < end && *cell_end != delimiter) cell_end++;
      char *t = cell_end;
      while (t > q && is_blank(t[-1])) t--;
      long col = (long)(q - p) + 1;
      if (t == q) {
        free(text);
        free(vals);
        return rt_error("%s:%lld:%ld: empty cell", path, (long long)line, col);
      }
      char saved = *t;
      *t = 0;
      char *num_end;
      errno = 0;
      double v = strtod(q, &num_end);
      bool hex = strchr(q, 'x') || strchr(q, 'X');
      *t = saved;
      if (num_end != t || hex) {
        int w = (int)(t - q) > 40 ? 40 : (int)(t - q);
        free(vals);
        rt_error("%s:%lld:%ld: '%.*s' is not a number", path, (long long)line, col, w, q);
        free(text);
        return -1;
      }
      if (n == cap) {
        cap = cap ? cap * 2 : 1024;
        double *bigger = realloc(vals, sizeof(double) * cap);
        if (!bigger) {
          free(vals);
          free(text);
          return rt_error("%s: out of memory", path);
        }
        vals = bigger;
      }
      vals[n++] = v;
      c++;
      if (cell_end >= end)
        break;
      q = cell_end + (ws ? 0 : 1);
      if (ws)
        while (q < end && is_blank(*q)) q++;
    }
    if (cols < 0) {
      cols = c;
      first_line = line;
    } else if (c != cols) {
      free(vals);
      free(text);
      return rt_error("%s:%lld: %lld values, but line %lld has %lld (rows must have equal length)",
                      path, (long long)line, (long long)c, (long long)first_line,
                      (long long)cols);
    }
    lines++;
    p = next;
  }
  free(text);
  if (lines == 0) {
    free(vals);
    return rt_error("%s: no data", path);
  }
  out->dtype = NN_F64;
  out->buf = vals;
  out->row_size = 1;
  if (cols == 1 || lines == 1) {
    out->rows = n;  // numpy squeezes to 1-d
    out->ndim = 0;
  } else {
    out->rows = lines;
    out->ndim = 1;
    out->shape[0] = cols;
    out->row_size = cols;
  }
  return 0;
}
