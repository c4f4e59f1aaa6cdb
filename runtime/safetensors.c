// safetensors.c — weights files: read any safetensors file, write the model's params.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {...}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// then the data area; offsets are relative to its start. Everything the header claims
// is checked against the file before any byte of data is touched.
#include "rt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER (100u << 20)  // the reference implementation's limit

static const struct { const char *name; int size; } st_dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I8", 1}, {"I16", 2}, {"I32", 4},
    {"I64", 8}, {"U8", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"BOOL", 1}};

static float half_to_float(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v;
  if (exp == 0)
    v = ldexpf((float)man, -24);
  else if (exp == 31)
    v = man ? NAN : INFINITY;
  else
    v = ldexpf((float)(man | 1024), exp - 25);
  return sign ? -v : v;
}

static float convert(const uint8_t *p, const char *dtype) {
  uint64_t u = 0;
  int size = 0;
  for (int i = 0; i < (int)(sizeof st_dtypes / sizeof *st_dtypes); i++)
    if (strcmp(dtype, st_dtypes[i].name) == 0)
      size = st_dtypes[i].size;
  for (int i = size - 1; i >= 0; i--) u = (u << 8) | p[i];
  if (strcmp(dtype, "F32") == 0) {
    uint32_t w = (uint32_t)u;
    float f;
    memcpy(&f, &w, 4);
    return f;
  }
  if (strcmp(dtype, "F64") == 0) {
    double d;
    memcpy(&d, &u, 8);
    return (float)d;
  }
  if (strcmp(dtype, "F16") == 0) return half_to_float((uint16_t)u);
  if (strcmp(dtype, "BF16") == 0) {
    uint32_t w = (uint32_t)u << 16;
    float f;
    memcpy(&f, &w, 4);
    return f;
  }
  if (dtype[0] == 'I') {  // sign-extend
    if (size < 8 && (u >> (8 * size - 1)))
      u |= ~0ull << (8 * size);
    return (float)(int64_t)u;
  }
  return (float)u;  // U*, BOOL
}

void nn_free_tensors(nn_tensor *tensors, int count) {
  if (!tensors)
    return;
  for (int i = 0; i < count; i++) free(tensors[i].data);
  free(tensors);
}

static int st_fail(const char *path, const char *name, const char *what, rt_json *j,
                   nn_tensor *t, int count, uint8_t *data, FILE *f) {
  // Print first: name and what may point into the JSON strings freed below.
  if (name)
    rt_error("%s: tensor '%s': %s", path, name, what);
  else
    rt_error("%s: %s", path, what);
  if (f) fclose(f);
  if (j) rt_json_free(j);
  nn_free_tensors(t, count);
  free(data);
  return -1;
}

int nn_read_safetensors(const char *path, nn_tensor **tensors, int *count) {
  *tensors = NULL;
  *count = 0;
  int64_t size;
  FILE *f = rt_open_regular(path, &size);
  if (!f)
    return -1;
  uint64_t fsize = (uint64_t)size;
  uint8_t lenbytes[8];
  if (fsize < 8 || fread(lenbytes, 1, 8, f) != 8)
    return st_fail(path, NULL, "too short for a safetensors file", NULL, NULL, 0, NULL, f);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | lenbytes[i];
  char msg[256];
  if (hlen > fsize - 8) {
    snprintf(msg, sizeof msg, "header length %llu is larger than the file (%llu bytes)",
             (unsigned long long)hlen, (unsigned long long)fsize);
    return st_fail(path, NULL, msg, NULL, NULL, 0, NULL, f);
  }
  if (hlen > MAX_HEADER)
    return st_fail(path, NULL, "header larger than 100 MB", NULL, NULL, 0, NULL, f);
  uint64_t dsize = fsize - 8 - hlen;
  char *htext = malloc(hlen + 1);
  uint8_t *data = malloc(dsize + 1);
  if (!htext || !data || fread(htext, 1, hlen, f) != hlen || fread(data, 1, dsize, f) != dsize) {
    free(htext);
    return st_fail(path, NULL, "cannot read the file", NULL, NULL, 0, data, f);
  }
  fclose(f);
  f = NULL;
  rt_json j;
  char err[128];
  int rc = rt_json_parse(&j, htext, hlen, err, sizeof err);
  free(htext);
  if (rc != 0) {
    snprintf(msg, sizeof msg, "header is not valid JSON (%s)", err);
    return st_fail(path, NULL, msg, NULL, NULL, 0, data, NULL);
  }
  rt_json_node *nodes = j.nodes;
  if (nodes[0].kind != RT_JSON_OBJECT)
    return st_fail(path, NULL, "header is not a JSON object", &j, NULL, 0, data, NULL);

  int n = 0;
  for (int c = nodes[0].first; c >= 0; c = nodes[c].next)
    n += strcmp(nodes[c].key, "__metadata__") != 0;
  nn_tensor *t = calloc(n + 1, sizeof *t);
  if (!t)
    return st_fail(path, NULL, "out of memory", &j, NULL, 0, data, NULL);
  int k = 0;
  for (int c = nodes[0].first; c >= 0; c = nodes[c].next) {
    const char *name = nodes[c].key;
    if (strcmp(name, "__metadata__") == 0) {
      if (nodes[c].kind != RT_JSON_OBJECT)
        return st_fail(path, NULL, "__metadata__ is not an object", &j, t, k, data, NULL);
      for (int m = nodes[c].first; m >= 0; m = nodes[m].next)
        if (nodes[m].kind != RT_JSON_STRING)
          return st_fail(path, NULL, "__metadata__ values must be strings", &j, t, k, data, NULL);
      continue;
    }
    if (strlen(name) >= sizeof t[k].name)
      return st_fail(path, NULL, "tensor name longer than 255 bytes", &j, t, k, data, NULL);
    if (nodes[c].kind != RT_JSON_OBJECT)
      return st_fail(path, name, "entry is not an object", &j, t, k, data, NULL);
    int dt = rt_json_get(&j, c, "dtype"), sh = rt_json_get(&j, c, "shape"),
        off = rt_json_get(&j, c, "data_offsets");
    if (dt < 0 || sh < 0 || off < 0 || nodes[c].count != 3)
      return st_fail(path, name, "needs exactly dtype, shape and data_offsets", &j, t, k, data, NULL);
    int esize = 0;
    if (nodes[dt].kind == RT_JSON_STRING)
      for (int i = 0; i < (int)(sizeof st_dtypes / sizeof *st_dtypes); i++)
        if (strcmp(nodes[dt].str, st_dtypes[i].name) == 0)
          esize = st_dtypes[i].size;
    if (!esize)
      return st_fail(path, name, "unsupported dtype", &j, t, k, data, NULL);
    if (nodes[sh].kind != RT_JSON_ARRAY || nodes[sh].count > 8)
      return st_fail(path, name, "shape is not an array of at most 8 sizes", &j, t, k, data, NULL);
    nn_tensor *x = &t[k];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->size = 1;
    for (int d = nodes[sh].first; d >= 0; d = nodes[d].next) {
      if (nodes[d].kind != RT_JSON_NUMBER || !nodes[d].is_int || nodes[d].i64 < 0)
        return st_fail(path, name, "shape holds something other than a size", &j, t, k, data, NULL);
      int64_t v = nodes[d].i64;
      if (v > 0 && x->size > (INT64_MAX / 16) / v)
        return st_fail(path, name, "shape too large", &j, t, k, data, NULL);
      x->shape[x->ndim++] = v;
      x->size *= v;
    }
    if (nodes[off].kind != RT_JSON_ARRAY || nodes[off].count != 2)
      return st_fail(path, name, "data_offsets is not [begin, end]", &j, t, k, data, NULL);
    int b = nodes[off].first, e = nodes[b].next;
    if (!nodes[b].is_int || !nodes[e].is_int || nodes[b].i64 < 0 || nodes[e].i64 < nodes[b].i64)
      return st_fail(path, name, "data_offsets is not [begin, end] with begin <= end", &j, t, k,
                     data, NULL);
    int64_t begin = nodes[b].i64, end = nodes[e].i64;
    if ((uint64_t)end > dsize) {
      snprintf(msg, sizeof msg, "data_offsets [%lld, %lld] outside the data area (%llu bytes)",
               (long long)begin, (long long)end, (unsigned long long)dsize);
      return st_fail(path, name, msg, &j, t, k, data, NULL);
    }
    if (x->size * esize != end - begin) {
      snprintf(msg, sizeof msg, "shape needs %lld bytes of %s, data_offsets give %lld",
               (long long)(x->size * esize), nodes[dt].str, (long long)(end - begin));
      return st_fail(path, name, msg, &j, t, k, data, NULL);
    }
    x->data = malloc(sizeof(float) * x->size + 1);
    if (!x->data)
      return st_fail(path, name, "out of memory", &j, t, k, data, NULL);
    for (int64_t i = 0; i < x->size; i++)
      x->data[i] = convert(data + begin + i * esize, nodes[dt].str);
    k++;
  }
  rt_json_free(&j);
  free(data);
  *tensors = t;
  *count = k;
  return 0;
}

// Appends a JSON string literal (names come from the model; escape them anyway).
static size_t put_json_string(char *buf, size_t at, size_t cap, const char *s) {
  if (at < cap) buf[at] = '"';
  at++;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    int n;
    if (*p == '"' || *p == '\\')
      n = snprintf(esc, sizeof esc, "\\%c", *p);
    else if (*p < 0x20)
      n = snprintf(esc, sizeof esc, "\\u%04x", *p);
    else
      n = snprintf(esc, sizeof esc, "%c", *p);
    for (int i = 0; i < n; i++, at++)
      if (at < cap) buf[at] = esc[i];
  }
  if (at < cap) buf[at] = '"';
  return at + 1;
}

// Writes the header into buf (or just measures it when buf is NULL); returns its length.
static size_t build_header(const nn_model *m, char *buf, size_t cap) {
  size_t at = 0;
  // Who wrote it and whose layouts it holds; not "format": "pt" (these are not PyTorch's
  // layouts: Dense kernels are [in, out], convolution kernels [kh, kw, in, out]).
  const char *meta = "{\"__metadata__\":{\"producer\":\"nnc\",\"layout\":\"keras\"}";
  for (const char *c = meta; *c; c++, at++)
    if (buf && at < cap) buf[at] = *c;
  int64_t offset = 0;
  for (int i = 0; i < m->n_params; i++) {
    const nn_param *p = &m->params[i];
    if (buf && at < cap) buf[at] = ',';
    at++;
    at = buf ? put_json_string(buf, at, cap, p->name) : put_json_string(NULL, at, 0, p->name);
    char tail[512];
    size_t n = snprintf(tail, sizeof tail, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < p->ndim; d++)
      n += snprintf(tail + n, sizeof tail - n, "%s%lld", d ? "," : "", (long long)p->shape[d]);
    n += snprintf(tail + n, sizeof tail - n, "],\"data_offsets\":[%lld,%lld]}", (long long)offset,
                  (long long)(offset + 4 * p->size));
    offset += 4 * p->size;
    for (size_t c = 0; c < n; c++, at++)
      if (buf && at < cap) buf[at] = tail[c];
  }
  if (buf && at < cap) buf[at] = '}';
  at++;
  // Pad with spaces so the data area starts 8-byte aligned.
  while (at % 8) {
    if (buf && at < cap) buf[at] = ' ';
    at++;
  }
  return at;
}

int nn_save_weights(const nn_model *m, const char *path) {
  if (!rt_dist_writes())
    return 0;  // data parallel: every rank holds the same weights, rank 0 writes them
  for (int i = 0; i < m->n_params; i++) {
    const nn_param *p = &m->params[i];
    int64_t size = 1;
    for (int d = 0; d < p->ndim; d++) size *= p->shape[d];
    if (size != p->size || p->ndim > 8)
      return rt_error("%s: weight '%s' has size %lld but its shape says %lld", path, p->name,
                      (long long)p->size, (long long)size);
    for (int q = 0; q < i; q++)
      if (strcmp(m->params[q].name, p->name) == 0)
        return rt_error("%s: two weights are named '%s'", path, p->name);
  }
  size_t hlen = build_header(m, NULL, 0);
  char *header = malloc(hlen + 1);
  if (!header)
    return rt_error("out of memory");
  build_header(m, header, hlen);
  uint8_t lenbytes[8];
  for (int i = 0; i < 8; i++) lenbytes[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
  rt_atomic a;
  if (rt_atomic_open(&a, path) != 0) {
    free(header);
    return -1;
  }
  fwrite(lenbytes, 1, 8, a.f);
  fwrite(header, 1, hlen, a.f);
  free(header);
  nn_model_pull_params((nn_model *)m);   // refreshes the host copy only
  for (int i = 0; i < m->n_params; i++)
    if (m->params[i].size > 0)
      fwrite(m->params[i].value, sizeof(float), m->params[i].size, a.f);  // little-endian host
  return rt_atomic_commit(&a);
}

int nn_load_weights(nn_model *m, const char *path) {
  nn_tensor *t;
  int n;
  if (nn_read_safetensors(path, &t, &n) != 0)
    return -1;
  // Check everything first, so a refused file leaves the model untouched.
  int *match = malloc(sizeof(int) * (m->n_params + 1));
  bool *used = calloc(n + 1, sizeof(bool));
  int rc = 0;
  if (!match || !used) {
    rc = rt_error("out of memory");
    goto done;
  }
  for (int i = 0; i < m->n_params && rc == 0; i++) {
    const nn_param *p = &m->params[i];
    match[i] = -1;
    for (int k = 0; k < n; k++)
      if (strcmp(t[k].name, p->name) == 0)
        match[i] = k;
    if (match[i] < 0) {
      rc = rt_error("%s: weight '%s' is missing from the file", path, p->name);
      break;
    }
    nn_tensor *x = &t[match[i]];
    used[match[i]] = true;
    bool same = x->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = x->shape[d] == p->shape[d];
    if (!same) {
      char have[128], want[128];
      rt_format_shape(have, sizeof have, x->ndim, x->shape, false);
      rt_format_shape(want, sizeof want, p->ndim, p->shape, false);
      rc = rt_error("%s: weight '%s' has shape %s in the file, the model needs %s", path, p->name,
                    have, want);
    }
  }
  if (rc == 0) {
    char extra[1024] = "";
    size_t used_chars = 0;
    int n_extra = 0;
    for (int k = 0; k < n; k++)
      if (!used[k]) {
        n_extra++;
        if (used_chars < sizeof extra)
          used_chars += snprintf(extra + used_chars, sizeof extra - used_chars, "%s'%s'",
                                 n_extra > 1 ? ", " : "", t[k].name);
      }
    if (n_extra)
      rc = rt_error("%s: %d tensor%s not in the model: %s", path, n_extra, n_extra > 1 ? "s" : "",
                    extra);
  }
  if (rc == 0) {
    for (int i = 0; i < m->n_params; i++)
      memcpy(m->params[i].value, t[match[i]].data, sizeof(float) * m->params[i].size);
    nn_model_push_params(m);
  }
done:
  free(match);
  free(used);
  nn_free_tensors(t, n);
  return rc;
}
