// util.c — error messages, whole-file reads, atomic writes, number formatting, logs.
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool capture_errors;
static char last_error[1024];

void nn_capture_errors(bool on) { capture_errors = on; }
const char *nn_last_error(void) { return last_error; }

int rt_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  if (capture_errors) return -1;
  fflush(stdout);  // keep the message after any progress already printed
  if (rt_dist.size > 1)
    fprintf(stderr, "error: rank %d of %d: %s\n", rt_dist.rank, rt_dist.size, last_error);
  else
    fprintf(stderr, "error: %s\n", last_error);
  return -1;
}

void rt_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  fputs("warning: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int rt_check_regular(const char *path, int64_t *size) {
  struct stat st;
  if (stat(path, &st) != 0) return rt_error("cannot open %s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return rt_error("%s is not a regular file", path);
  if (size) *size = st.st_size;
  return 0;
}

FILE *rt_open_regular(const char *path, int64_t *size) {
  // Checked before opening: opening a FIFO would already block.
  if (rt_check_regular(path, size) != 0) return NULL;
  FILE *f = fopen(path, "rb");
  if (!f) rt_error("cannot open %s: %s", path, strerror(errno));
  return f;
}

char *rt_read_file(const char *path, size_t *len) {
  FILE *f = rt_open_regular(path, NULL);
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap)
      break;
    char *bigger = realloc(buf, cap * 2 + 1);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  bool failed = !buf || ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    rt_error("cannot read %s", path);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

size_t rt_dtype_size(nn_dtype t) {
  switch (t) {
  case NN_U8: return 1;
  case NN_F32: return 4;
  case NN_F64: return 8;
  case NN_I64: return 8;
  }
  return 1;
}

int64_t rt_split_at(int64_t rows, double fraction) {
  // The same expression as Keras's train_validation_split, so the split row matches.
  return (int64_t)floor((double)rows * (1.0 - fraction));
}

int rt_atomic_open(rt_atomic *a, const char *path) {
  a->f = NULL;
  a->path = path;
  if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof a->tmp)
    return rt_error("path too long: %s", path);
  int fd = mkstemp(a->tmp);
  if (fd < 0)
    return rt_error("cannot create %s: %s", a->tmp, strerror(errno));
  // mkstemp makes the file 0600; give it the mode a plain fopen would.
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    close(fd);
    unlink(a->tmp);
    return rt_error("cannot write %s: %s", a->tmp, strerror(errno));
  }
  return 0;
}

int rt_atomic_commit(rt_atomic *a) {
  bool ok = fflush(a->f) == 0 && !ferror(a->f) && fsync(fileno(a->f)) == 0;
  int saved = errno;
  ok = (fclose(a->f) == 0) && ok;
  a->f = NULL;
  if (!ok) {
    unlink(a->tmp);
    return rt_error("cannot write %s: %s", a->path, strerror(saved ? saved : EIO));
  }
  if (rename(a->tmp, a->path) != 0) {
    saved = errno;
    unlink(a->tmp);
    return rt_error("cannot rename %s to %s: %s", a->tmp, a->path, strerror(saved));
  }
  // Make the rename itself durable (best effort: not every filesystem allows it).
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", a->path);
  int dfd = open(dirname(dir), O_RDONLY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

void rt_atomic_abort(rt_atomic *a) {
  if (a->f)
    fclose(a->f);
  a->f = NULL;
  unlink(a->tmp);
}

void rt_format_float(char *buf, size_t size, double v) {
  if (!isfinite(v)) {
    snprintf(buf, size, "null");
    return;
  }
  float f = (float)v;
  for (int prec = 1; prec <= 9; prec++) {
    snprintf(buf, size, "%.*g", prec, (double)f);
    if (strtof(buf, NULL) == f)
      return;
  }
}

// Python's repr(float): shortest round-trip digits ("0.8371999859809875", "1e-05").
void nn_format_float(char *buf, size_t size, double v) {
  if (isnan(v)) {
    snprintf(buf, size, "nan");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, size, v > 0 ? "inf" : "-inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  // Python writes 1.0 where %g writes 1, and uses exponents only outside [1e-4, 1e16).
  double a = fabs(v);
  if (a != 0 && (a < 1e-4 || a >= 1e16))
    return;
  if (!strchr(buf, '.') && !strchr(buf, 'e')) {
    size_t n = strlen(buf);
    if (n + 2 < size)
      memcpy(buf + n, ".0", 3);
  } else if (strchr(buf, 'e')) {
    // %g chose an exponent inside Python's fixed range (e.g. 1e+05): write it out.
    char tmp[64];
    for (int d = 1; d <= 20; d++) {
      snprintf(tmp, sizeof tmp, "%.*f", d, v);
      if (strtod(tmp, NULL) == v) {
        snprintf(buf, size, "%s", tmp);
        break;
      }
    }
  }
}

void rt_format_shape(char *buf, size_t size, int ndim, const int64_t *shape, bool tuple) {
  size_t n = snprintf(buf, size, tuple ? "(" : "[");
  for (int i = 0; i < ndim && n < size; i++)
    n += snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (n < size)
    snprintf(buf + n, size - n, tuple ? (ndim == 1 ? ",)" : ")") : "]");
}

void rt_logs_add(rt_logs *l, const char *prefix, const char *name, double value) {
  if (l->n >= RT_MAX_LOGS)
    return;
  snprintf(l->name[l->n], sizeof l->name[0], "%s%s", prefix, name);
  l->value[l->n++] = value;
}

const double *rt_logs_get(const rt_logs *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->name[i], name) == 0)
      return &l->value[i];
  return NULL;
}

void nn_format_bytes(char *buf, size_t size, double bytes) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, u++;
  if (u == 0) snprintf(buf, size, "%.0f bytes", bytes);
  else snprintf(buf, size, "%.1f %s", bytes, units[u]);
}
