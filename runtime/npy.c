// npy.c — NumPy .npy files: read v1/v2/v3 (C order, little-endian), write v1.0 '<f4'.
//
// Layout: "\x93NUMPY", major, minor, header length (2 bytes LE in v1, 4 in v2/v3), then
// a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and a newline, then the data. The first axis is the sample axis;
// a 0-d or 1-d array is rows of single values (per-sample rank 0).
#include "rt.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct npy_header {
  char descr[16];
  int fortran;             // -1 until seen
  int ndim;                // -1 until seen
  int64_t shape[8];
} npy_header;

typedef struct npy_lexer { const char *p, *end; } npy_lexer;

static void skip_space(npy_lexer *L) {
  while (L->p < L->end && (*L->p == ' ' || *L->p == '\n' || *L->p == '\t' || *L->p == '\r'))
    L->p++;
}

static bool accept(npy_lexer *L, char c) {
  skip_space(L);
  if (L->p < L->end && *L->p == c) {
    L->p++;
    return true;
  }
  return false;
}

// A quoted Python string without escapes (numpy never writes any in these keys).
static bool read_string(npy_lexer *L, char *buf, size_t size) {
  skip_space(L);
  if (L->p >= L->end || (*L->p != '\'' && *L->p != '"'))
    return false;
  char q = *L->p++;
  size_t n = 0;
  while (L->p < L->end && *L->p != q) {
    if (*L->p == '\\' || n + 1 >= size)
      return false;
    buf[n++] = *L->p++;
  }
  if (L->p >= L->end)
    return false;
  L->p++;
  buf[n] = 0;
  return true;
}

static bool read_word(npy_lexer *L, const char *w) {
  skip_space(L);
  size_t n = strlen(w);
  if ((size_t)(L->end - L->p) >= n && memcmp(L->p, w, n) == 0) {
    L->p += n;
    return true;
  }
  return false;
}

static bool read_shape(npy_lexer *L, npy_header *h) {
  if (!accept(L, '('))
    return false;
  h->ndim = 0;
  for (;;) {
    if (accept(L, ')'))
      return true;
    skip_space(L);
    if (L->p >= L->end || !isdigit((unsigned char)*L->p) || h->ndim >= 8)
      return false;
    int64_t v = 0;
    while (L->p < L->end && isdigit((unsigned char)*L->p)) {
      if (v > (INT64_MAX - 9) / 10)
        return false;
      v = v * 10 + (*L->p++ - '0');
    }
    h->shape[h->ndim++] = v;
    if (!accept(L, ',')) {
      return accept(L, ')');
    }
  }
}

// Parses the dict literal; returns NULL or a description of what is wrong.
static const char *parse_header(const char *text, size_t len, npy_header *h) {
  npy_lexer L = {text, text + len};
  h->fortran = -1;
  h->ndim = -1;
  h->descr[0] = 0;
  if (!accept(&L, '{'))
    return "header is not a dict";
  for (;;) {
    if (accept(&L, '}'))
      break;
    char key[32];
    if (!read_string(&L, key, sizeof key) || !accept(&L, ':'))
      return "malformed header dict";
    if (strcmp(key, "descr") == 0) {
      if (!read_string(&L, h->descr, sizeof h->descr))
        return "descr is not a simple dtype string (structured arrays are not supported)";
    } else if (strcmp(key, "fortran_order") == 0) {
      if (read_word(&L, "True"))
        h->fortran = 1;
      else if (read_word(&L, "False"))
        h->fortran = 0;
      else
        return "fortran_order is not True or False";
    } else if (strcmp(key, "shape") == 0) {
      if (!read_shape(&L, h))
        return "shape is not a tuple of non-negative integers";
    } else {
      return "unknown key in header dict";
    }
    if (!accept(&L, ',')) {
      if (!accept(&L, '}'))
        return "malformed header dict";
      break;
    }
  }
  skip_space(&L);
  if (L.p != L.end)
    return "junk after the header dict";
  if (!h->descr[0] || h->fortran < 0 || h->ndim < 0)
    return "header lacks descr, fortran_order or shape";
  return NULL;
}

// '<f4' → kind 'f', size 4; refuses big-endian multi-byte types.
static const char *parse_descr(const char *d, char *kind, int *size) {
  if (strlen(d) != 3 || !strchr("<>|=", d[0]) || !strchr("fiub", d[1]) || !isdigit((unsigned char)d[2]))
    return "unsupported dtype";
  *kind = d[1];
  *size = d[2] - '0';
  if (d[0] == '>' && *size > 1)
    return "big-endian data is not supported (use arr.astype('<f4') before np.save)";
  bool ok = (*kind == 'f' && (*size == 4 || *size == 8)) ||
            (*kind == 'i' && (*size == 1 || *size == 2 || *size == 4 || *size == 8)) ||
            (*kind == 'u' && (*size == 1 || *size == 2 || *size == 4 || *size == 8)) ||
            (*kind == 'b' && *size == 1);
  return ok ? NULL : "unsupported dtype";
}

static uint64_t load_le(const uint8_t *p, int size) {
  uint64_t v = 0;
  for (int i = size - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

// Reads the header, checks the data fits the file, then the data unless header_only.
static int load_npy(nn_data *out, const char *path, bool header_only) {
  memset(out, 0, sizeof *out);
  snprintf(out->origin, sizeof out->origin, "%s", path);
  out->scale = 1;
  int64_t fsize;
  FILE *f = rt_open_regular(path, &fsize);
  if (!f)
    return -1;

  uint8_t pre[12];
  const char *why = NULL;
  npy_header h;
  char *text = NULL;
  int64_t hlen = 0, start = 0;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    why = "not an NPY file (bad magic)";
    goto fail;
  }
  if (pre[6] == 1) {
    hlen = pre[8] | (pre[9] << 8);
    start = 10;
  } else if (pre[6] == 2 || pre[6] == 3) {
    if (fread(pre + 10, 1, 2, f) != 2) {
      why = "truncated header";
      goto fail;
    }
    hlen = (int64_t)load_le(pre + 8, 4);
    start = 12;
  } else {
    why = "unsupported NPY version";
    goto fail;
  }
  if (hlen > fsize - start) {
    why = "truncated header";
    goto fail;
  }
  text = malloc(hlen + 1);
  if (!text || fread(text, 1, hlen, f) != (size_t)hlen) {
    why = "cannot read header";
    goto fail;
  }
  text[hlen] = 0;
  if ((why = parse_header(text, hlen, &h)))
    goto fail;
  if (h.fortran) {
    why = "fortran_order arrays are not supported (save with np.ascontiguousarray)";
    goto fail;
  }
  char kind;
  int esize;
  if ((why = parse_descr(h.descr, &kind, &esize)))
    goto fail;
  if (h.ndim > 5) {
    why = "more than 4 dimensions per sample";
    goto fail;
  }
  // span multiplies the nonzero dimensions only: a zero must not hide an overflow in
  // the per-sample size the others give.
  int64_t count = 1, span = 1;
  for (int i = 0; i < h.ndim; i++) {
    if (h.shape[i] > 0 && span > (INT64_MAX / 16) / h.shape[i]) {
      why = "shape too large";
      goto fail;
    }
    if (h.shape[i] > 0)
      span *= h.shape[i];
    count *= h.shape[i];
  }
  int64_t bytes = count * esize;
  if (bytes > fsize - start - hlen) {
    fclose(f);
    free(text);
    return rt_error("%s: truncated: shape needs %lld bytes of data, the file has %lld", path,
                    (long long)bytes, (long long)(fsize - start - hlen));
  }
  // uint8/bool and little-endian float stay as they are; integers widen to int64.
  rt_set_shape(out, h.ndim == 0 ? 1 : h.shape[0], h.ndim <= 1 ? 0 : h.ndim - 1, h.shape + 1);
  out->dtype = esize == 1 && (kind == 'u' || kind == 'b') ? NN_U8 : kind == 'f' ? (esize == 4 ? NN_F32 : NN_F64) : NN_I64;
  if (header_only) {
    fclose(f);
    free(text);
    return 0;
  }
  uint8_t *raw = malloc(bytes + 1);
  if (!raw || fread(raw, 1, bytes, f) != (size_t)bytes) {
    free(raw);
    why = "cannot read data";
    goto fail;
  }
  fclose(f);
  free(text);

  if (out->dtype != NN_I64) {
    out->buf = raw;
    return 0;  // little-endian host assumed, as everywhere in nnc
  }
  int64_t *v = malloc(sizeof(int64_t) * count + 1);
  if (!v) {
    free(raw);
    return rt_error("%s: out of memory", path);
  }
  for (int64_t i = 0; i < count; i++) {
    uint64_t u = load_le(raw + i * esize, esize);
    if (kind == 'i' && esize < 8 && (u >> (8 * esize - 1)))
      u |= ~0ull << (8 * esize);  // sign-extend
    v[i] = (int64_t)u;
  }
  free(raw);
  out->buf = v;
  return 0;

fail:
  fclose(f);
  free(text);
  return rt_error("%s: %s", path, why);
}

int nn_load_npy(nn_data *out, const char *path) { return load_npy(out, path, false); }
int nn_probe_npy(nn_data *out, const char *path) { return load_npy(out, path, true); }

int nn_save_npy(const char *path, const float *data, int ndim, const int64_t *shape) {
  if (!rt_dist_writes())
    return 0;  // data parallel: rank 0 writes
  if (ndim < 0 || ndim > 8)
    return rt_error("%s: cannot save an array of rank %d", path, ndim);
  char dict[512];
  size_t n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  int64_t count = 1;
  for (int i = 0; i < ndim; i++) {
    n += snprintf(dict + n, sizeof dict - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    count *= shape[i];
  }
  n += snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
  // Pad with spaces so magic + length + dict + '\n' is a multiple of 64, as numpy does.
  size_t total = (10 + n + 1 + 63) / 64 * 64;
  while (10 + n + 1 < total) dict[n++] = ' ';
  dict[n++] = '\n';
  uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};

  rt_atomic a;
  if (rt_atomic_open(&a, path) != 0)
    return -1;
  fwrite(pre, 1, 10, a.f);
  fwrite(dict, 1, n, a.f);
  if (count > 0)
    fwrite(data, sizeof(float), count, a.f);
  return rt_atomic_commit(&a);
}
