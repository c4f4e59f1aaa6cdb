// util.c — error messages, whole-file reads, atomic writes, number formatting, logs.
#define _GNU_SOURCE
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
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

// The directory of path ("." for a bare name), for O_TMPFILE and the final fsync.
static void dir_of(const char *path, char *dir, size_t size) {
  snprintf(dir, size, "%s", path);
  char *d = dirname(dir);
  if (d != dir)
    memmove(dir, d, strlen(d) + 1);
}

static void fsync_dir_of(const char *path) {
  char dir[4096];
  dir_of(path, dir, sizeof dir);
  int dfd = open(dir, O_RDONLY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

// "<path>.tmp.<pid>.<k>" files of processes that no longer run: what a SIGKILL between
// naming and renaming left (rt_atomic_commit). Removed before path is written again.
static void remove_stale_temps(const char *path) {
  char dir[4096], name[4096], stale[8192];
  dir_of(path, dir, sizeof dir);
  snprintf(name, sizeof name, "%s", path);
  const char *base = basename(name);
  size_t blen = strlen(base);
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    long pid;
    int k, used = 0;
    if (strncmp(e->d_name, base, blen) != 0 ||
        sscanf(e->d_name + blen, ".tmp.%ld.%d%n", &pid, &k, &used) != 2 || e->d_name[blen + used] ||
        pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name);
    unlink(stale);
  }
  closedir(d);
}

int rt_atomic_open(rt_atomic *a, const char *path) {
  remove_stale_temps(path);
  a->f = NULL;
  a->path = path;
  a->slot = -1;
  a->named = false;
  if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof a->tmp)
    return rt_error("path too long: %s", path);
  // An unnamed file first (Linux O_TMPFILE): a process killed while writing, even by
  // SIGKILL, leaves nothing behind. It gets its temporary name only once complete.
  char dir[4096];
  dir_of(path, dir, sizeof dir);
  int fd = -1;
#ifdef O_TMPFILE
  fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#endif
  if (fd < 0) {
    // No O_TMPFILE here: a named temporary, registered before a signal could see it.
    rt_signals_block(true);
    fd = mkstemp(a->tmp);
    int saved = errno;
    if (fd >= 0) {
      a->named = true;
      a->slot = rt_temp_register(a->tmp);
    }
    rt_signals_block(false);
    if (fd < 0)
      return rt_error("cannot create %s: %s", a->tmp, strerror(saved));
    // mkstemp makes the file 0600; give it the mode a plain fopen would.
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
  }
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    int saved = errno;
    close(fd);
    rt_atomic_abort(a);
    return rt_error("cannot write %s: %s", path, strerror(saved));
  }
  return 0;
}

// Gives the unnamed file its temporary name (signals blocked by the caller).
static int link_tmpfile(rt_atomic *a) {
  if (a->named)
    return 0;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(a->f));
  for (int tries = 0; tries < 100; tries++) {
    snprintf(a->tmp + strlen(a->path), sizeof a->tmp - strlen(a->path), ".tmp.%ld.%d",
             (long)getpid(), tries);
    a->slot = rt_temp_register(a->tmp);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, a->tmp, AT_SYMLINK_FOLLOW) == 0) {
      a->named = true;
      return 0;
    }
    rt_temp_forget(a->slot);
    a->slot = -1;
    if (errno != EEXIST)
      return -1;
  }
  return -1;
}

int rt_atomic_commit(rt_atomic *a) {
  bool ok = fflush(a->f) == 0 && !ferror(a->f) && fsync(fileno(a->f)) == 0;
  int saved = errno;
  rt_signals_block(true);
  // Name and rename back to back: a SIGKILL between the two leaves "<path>.tmp.<pid>.<k>",
  // which the next write of path removes (remove_stale_temps).
  if (ok && link_tmpfile(a) != 0) {
    ok = false;
    saved = errno;
  }
  if (ok && rename(a->tmp, a->path) != 0) {
    ok = false;
    saved = errno;
  } else if (ok) {
    rt_temp_forget(a->slot);
    a->slot = -1;
    a->named = false;
  }
  ok = (fclose(a->f) == 0) && ok;
  a->f = NULL;
  rt_signals_block(false);
  if (!ok) {
    rt_atomic_abort(a);
    return rt_error("cannot write %s: %s (the previous file, if any, is unchanged)", a->path,
                    strerror(saved ? saved : EIO));
  }
  // Make the rename itself durable (best effort: not every filesystem allows it).
  fsync_dir_of(a->path);
  return 0;
}

int rt_atomic_commit_as(rt_atomic *a, const char *final) {
  if (a->named) {
    a->path = final;
    return rt_atomic_commit(a);
  }
  bool ok = fflush(a->f) == 0 && !ferror(a->f) && fsync(fileno(a->f)) == 0;
  int saved = errno;
  if (ok) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(a->f));
    if ((unlink(final) != 0 && errno != ENOENT) ||
        linkat(AT_FDCWD, proc, AT_FDCWD, final, AT_SYMLINK_FOLLOW) != 0) {
      ok = false;
      saved = errno;
    }
  }
  ok = (fclose(a->f) == 0) && ok;
  a->f = NULL;
  if (!ok)
    return rt_error("cannot write %s: %s", final, strerror(saved ? saved : EIO));
  fsync_dir_of(final);
  return 0;
}

void rt_atomic_abort(rt_atomic *a) {
  if (a->f)
    fclose(a->f);
  a->f = NULL;
  if (a->named)
    unlink(a->tmp);
  rt_temp_forget(a->slot);
  a->slot = -1;
  a->named = false;
}

void *rt_alloc_array(int64_t rows, int64_t width, size_t elem, const char *what) {
  int64_t count, bytes;
  bool wraps = rows < 0 || width < 0 || __builtin_mul_overflow(rows, width, &count) ||
               __builtin_add_overflow(count, 1, &count) ||
               __builtin_mul_overflow(count, (int64_t)elem, &bytes) || (uint64_t)bytes > SIZE_MAX;
  void *p = wraps ? NULL : malloc((size_t)bytes);
  if (!p)
    rt_error("out of memory for %s: %lld x %lld values (%.1f MiB)", what, (long long)rows,
             (long long)width, (double)rows * (double)width * (double)elem / 1048576);
  return p;
}

int rt_make_dirs(const char *path, unsigned mode) {
  char p[4096];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s)
      continue;
    char c = *s;
    *s = 0;
    if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST)
      return errno;
    *s = c;
    if (!c)
      break;
  }
  struct stat st;
  if (stat(path, &st) != 0)
    return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
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
