// datafile.c — data shapes at compile time, from file headers only (IDX, NPY) or a
// scan (CSV). The built program reads the data itself and re-checks the shapes.
#include "nnc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

// Only regular files: a path such as /dev/zero or a FIFO would hang the scan, and a
// directory opens but reads nothing.
static bool regular_file(const char *path, char *err, size_t errcap) {
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(err, errcap, "cannot open '%s'", path);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errcap, "'%s' is not a regular file", path);
    return false;
  }
  return true;
}

// IDX: magic 0 0 <type> <ndim>, then ndim big-endian u32 dims. gzread reads plain
// files too, so one path serves .gz and not.
bool probe_idx(const char *path, DataProbe *out, char *err, size_t errcap) {
  if (!regular_file(path, err, errcap)) return false;
  gzFile f = gzopen(path, "rb");
  if (!f) {
    snprintf(err, errcap, "cannot open '%s'", path);
    return false;
  }
  unsigned char h[4 + 4 * 8];
  int n = gzread(f, h, 4);
  if (n != 4 || h[0] != 0 || h[1] != 0 || h[3] < 1 || h[3] > 5) {
    gzclose(f);
    snprintf(err, errcap, "'%s' is not an IDX file (bad magic)", path);
    return false;
  }
  int ndim = h[3];
  if (gzread(f, h + 4, 4 * ndim) != 4 * ndim) {
    gzclose(f);
    snprintf(err, errcap, "'%s' is truncated (IDX header)", path);
    return false;
  }
  gzclose(f);
  switch (h[2]) {
  case 0x08: out->dtype = DT_UINT8; break;
  case 0x0D: out->dtype = DT_FLOAT32; break;
  case 0x0E: out->dtype = DT_FLOAT64; break;
  case 0x09: case 0x0B: case 0x0C: out->dtype = DT_INT64; break;
  default:
    snprintf(err, errcap, "'%s' has unknown IDX element type 0x%02x", path, h[2]);
    return false;
  }
  int64_t d[8];
  for (int i = 0; i < ndim; i++)
    d[i] = (int64_t)h[4 + 4 * i] << 24 | h[5 + 4 * i] << 16 | h[6 + 4 * i] << 8 | h[7 + 4 * i];
  out->rows = d[0];
  out->shape.rank = ndim - 1;
  for (int i = 1; i < ndim; i++) out->shape.dim[i - 1] = d[i];
  return true;
}

// NPY: "\x93NUMPY" v1 (u16 header length) or v2/v3 (u32), then a Python dict literal.
bool probe_npy(const char *path, DataProbe *out, char *err, size_t errcap) {
  if (!regular_file(path, err, errcap)) return false;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errcap, "cannot open '%s'", path);
    return false;
  }
  unsigned char pre[12];
  size_t got = fread(pre, 1, 10, f);
  if (got != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] < 1 || pre[6] > 3) {
    fclose(f);
    snprintf(err, errcap, "'%s' is not an NPY file (bad magic)", path);
    return false;
  }
  uint32_t hlen = pre[8] | pre[9] << 8;
  if (pre[6] >= 2) {
    if (fread(pre + 10, 1, 2, f) != 2) hlen = UINT32_MAX;
    else hlen = pre[8] | pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
  }
  if (hlen > 65536) {
    fclose(f);
    snprintf(err, errcap, "'%s' has an implausible NPY header length", path);
    return false;
  }
  char *h = calloc(1, hlen + 1);
  bool ok = h && fread(h, 1, hlen, f) == hlen;
  fclose(f);
  if (!ok) {
    free(h);
    snprintf(err, errcap, "'%s' is truncated (NPY header)", path);
    return false;
  }
  const char *descr = strstr(h, "'descr'"), *fo = strstr(h, "'fortran_order'"), *sh = strstr(h, "'shape'");
  if (!descr || !fo || !sh) {
    free(h);
    snprintf(err, errcap, "'%s' has a malformed NPY header", path);
    return false;
  }
  const char *q = strchr(descr + 7, '\'');
  char type[8] = {0};
  if (q) {
    size_t i = 0;
    for (q++; *q && *q != '\'' && i < sizeof type - 1; q++) type[i++] = *q;
  }
  if (strstr(fo, "True")) {
    free(h);
    snprintf(err, errcap, "'%s' is in Fortran order; save it in C order (np.ascontiguousarray)", path);
    return false;
  }
  if (type[0] == '>' && strcmp(type + 1, "u1") && strcmp(type + 1, "i1")) {
    free(h);
    snprintf(err, errcap, "'%s' is big-endian (%s); only little-endian data is supported", path, type);
    return false;
  }
  const char *t = type + (type[0] == '<' || type[0] == '|' || type[0] == '=' || type[0] == '>');
  if (!strcmp(t, "u1") || !strcmp(t, "b1")) out->dtype = DT_UINT8;
  else if (!strcmp(t, "f4") || !strcmp(t, "f2")) out->dtype = DT_FLOAT32;
  else if (!strcmp(t, "f8")) out->dtype = DT_FLOAT64;
  else if (t[0] == 'i' || t[0] == 'u') out->dtype = DT_INT64;
  else {
    free(h);
    snprintf(err, errcap, "'%s' has unsupported dtype '%s'", path, type);
    return false;
  }
  const char *p = strchr(sh, '(');
  int64_t d[8];
  int nd = 0;
  if (!p) ok = false;
  for (p = p ? p + 1 : NULL; ok && p && *p && *p != ')';) {
    while (*p == ' ' || *p == ',') p++;
    if (*p == ')') break;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0 || nd == 8) { ok = false; break; }
    d[nd++] = v;
    p = end;
  }
  free(h);
  if (!ok) {
    snprintf(err, errcap, "'%s' has a malformed shape in its NPY header", path);
    return false;
  }
  if (nd == 0) {
    snprintf(err, errcap, "'%s' holds a single number, not an array of samples", path);
    return false;
  }
  if (nd - 1 > MAX_RANK) {
    snprintf(err, errcap, "'%s' has %d dimensions; at most %d are supported", path, nd, MAX_RANK + 1);
    return false;
  }
  out->rows = d[0];
  out->shape.rank = nd - 1;
  for (int i = 1; i < nd; i++) out->shape.dim[i - 1] = d[i];
  return true;
}

// CSV: rows × columns of numbers; the whole file is scanned (CSV has no header).
bool probe_csv(const char *path, char delim, DataProbe *out, char *err, size_t errcap) {
  if (!regular_file(path, err, errcap)) return false;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errcap, "cannot open '%s'", path);
    return false;
  }
  int64_t rows = 0, cols = -1, cur = 0, line = 1;
  bool in_cell = false, line_has = false;
  int c;
  while ((c = fgetc(f)) != EOF || line_has) {
    if (c == '\n' || c == EOF) {
      if (line_has) {
        cur++;
        if (cols < 0) cols = cur;
        else if (cur != cols) {
          fclose(f);
          snprintf(err, errcap, "%s:%lld: %lld values, but the first row has %lld", path,
                   (long long)line, (long long)cur, (long long)cols);
          return false;
        }
        rows++;
      }
      cur = 0, line_has = false, in_cell = false, line++;
      if (c == EOF) break;
    } else if (c == delim) {
      cur++, line_has = true;
    } else if (c != ' ' && c != '\r' && c != '\t') {
      line_has = true, in_cell = true;
    }
  }
  (void)in_cell;
  fclose(f);
  if (rows == 0) {
    snprintf(err, errcap, "'%s' holds no rows", path);
    return false;
  }
  out->dtype = DT_FLOAT64;
  out->rows = rows;
  out->shape.rank = cols == 1 ? 0 : 1;
  out->shape.dim[0] = cols;
  return true;
}
