// cl_cache.c — program builds through a cache of compiled binaries.
//
// Compiling OpenCL C takes seconds on some drivers and happens at every start of a
// program, so the binary the driver returns is kept and loaded next time. The cache
// is only ever an optimization: anything wrong with it (unwritable directory, a
// truncated, garbled or stale entry, a binary the driver refuses) falls back to
// building from source, and an entry that did not load is replaced.
//
// Directory: $NNC_CACHE_DIR, else $XDG_CACHE_HOME/nnc, else $HOME/.cache/nnc, created
// 0700. Entry: <key as 16 hex digits>.nncl, written to a temporary file, fsynced and
// renamed. Layout, little-endian:
//   0  magic "NNCLBIN\0"        8 bytes
//   8  format version (1)       u32
//   12 header size (40)         u32
//   16 key                      u64  (nn_cl_hash of the fields listed in nn_cl.h)
//   24 binary size              u64
//   32 FNV-1a 64 of the binary  u64  (a garbled binary could load and run wrongly)
//   40 the binary, as clGetProgramInfo(CL_PROGRAM_BINARIES) gave it
#include "nn_cl.h"
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "NNCLBIN"    // 7 characters + NUL = 8 bytes
#define CACHE_VERSION 1
#define CACHE_HEADER 40
#define CACHE_EXT ".nncl"

static bool last_cached;
static bool warned;  // the cache's trouble is reported once per process, then ignored

bool nn_cl_last_build_cached(void) { return last_cached; }

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
#define FNV_OFFSET 0xcbf29ce484222325ull

uint64_t nn_cl_hash(const char *const *fields, int n) {
  uint64_t h = FNV_OFFSET;
  for (int i = 0; i < n; i++)
    h = fnv1a(h, fields[i] ? fields[i] : "", strlen(fields[i] ? fields[i] : "") + 1);
  return h;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = v >> (8 * i);
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = v >> (8 * i);
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void cache_warn(const char *what, const char *path, int err) {
  if (warned)
    return;
  warned = true;
  rt_warn("OpenCL binary cache disabled: cannot %s %s: %s (set NNC_CACHE_DIR to a writable "
          "directory)", what, path, strerror(err));
}

int nn_cl_cache_dir(char *buf, size_t cap) {
  const char *env = getenv("NNC_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
             *home = getenv("HOME");
  int n;
  if (env && *env)
    n = snprintf(buf, cap, "%s", env);
  else if (xdg && *xdg == '/')  // the XDG spec ignores relative values
    n = snprintf(buf, cap, "%s/nnc", xdg);
  else if (home && *home)
    n = snprintf(buf, cap, "%s/.cache/nnc", home);
  else
    return -1;
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}


// The entry's whole contents, or NULL when it is absent or unreadable.
static unsigned char *read_entry(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  struct stat st;
  unsigned char *buf = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= CACHE_HEADER &&
      (buf = malloc(st.st_size))) {
    size_t got = 0;
    while (got < (size_t)st.st_size) {
      ssize_t r = read(fd, buf + got, st.st_size - got);
      if (r <= 0)
        break;
      got += r;
    }
    if (got != (size_t)st.st_size) {
      free(buf);
      buf = NULL;
    }
    *len = got;
  }
  close(fd);
  return buf;
}

// The binary inside an entry if the entry is whole and is for this key, else NULL.
static const unsigned char *check_entry(const unsigned char *e, size_t len, uint64_t key,
                                        size_t *binsize) {
  if (len < CACHE_HEADER || memcmp(e, CACHE_MAGIC, 8) != 0 || get_u32(e + 8) != CACHE_VERSION ||
      get_u32(e + 12) != CACHE_HEADER || get_u64(e + 16) != key)
    return NULL;
  uint64_t n = get_u64(e + 24);
  if (n == 0 || n != len - CACHE_HEADER || fnv1a(FNV_OFFSET, e + CACHE_HEADER, n) != get_u64(e + 32))
    return NULL;
  *binsize = n;
  return e + CACHE_HEADER;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? errno : EIO;
    s += w;
    n -= w;
  }
  return 0;
}

// Writes the entry atomically; trouble is a warning (once), never a failure.
static void write_entry(const char *dir, const char *path, uint64_t key, const unsigned char *bin,
                        size_t n) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    cache_warn("write to", dir, errno);
    return;
  }
  unsigned char h[CACHE_HEADER];
  memcpy(h, CACHE_MAGIC, 8);
  put_u32(h + 8, CACHE_VERSION);
  put_u32(h + 12, CACHE_HEADER);
  put_u64(h + 16, key);
  put_u64(h + 24, n);
  put_u64(h + 32, fnv1a(FNV_OFFSET, bin, n));
  int err = write_all(fd, h, sizeof h);
  if (!err)
    err = write_all(fd, bin, n);
  if (!err && fsync(fd) != 0)
    err = errno;
  if (close(fd) != 0 && !err)
    err = errno;
  if (!err && rename(tmp, path) != 0)
    err = errno;
  if (err) {
    unlink(tmp);
    cache_warn("write", path, err);
    return;
  }
  int dfd = open(dir, O_RDONLY);  // make the rename durable (best effort)
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

static cl_program from_binary(nn_cl *cl, const unsigned char *bin, size_t n, const char *options) {
  cl_int status, err;
  cl_program p = clCreateProgramWithBinary(cl->context, 1, &cl->device, &n, &bin, &status, &err);
  if (!p)
    return NULL;
  if (status != CL_SUCCESS || clBuildProgram(p, 1, &cl->device, options, NULL, NULL) != CL_SUCCESS) {
    clReleaseProgram(p);
    return NULL;
  }
  return p;
}

static void print_build_log(nn_cl *cl, cl_program p) {
  size_t n = 0;
  clGetProgramBuildInfo(p, cl->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  char *log = malloc(n + 1);
  if (log && clGetProgramBuildInfo(p, cl->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
    log[n] = 0;
    fputs(log, stderr);
    if (n > 1 && log[strlen(log) - 1] != '\n')
      fputc('\n', stderr);
  }
  free(log);
}

// The program's binary for our one device (malloc'ed), or NULL when the driver has none.
static unsigned char *program_binary(cl_program p, size_t *n) {
  size_t size = 0;
  if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
      size == 0)
    return NULL;
  unsigned char *bin = malloc(size);
  if (bin && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
    free(bin);
    return NULL;
  }
  *n = size;
  return bin;
}

int nn_cl_build(nn_cl *cl, const char *source, const char *options) {
  if (!options)
    options = "";
  char dver[256] = "";
  clGetDeviceInfo(cl->device, CL_DEVICE_VERSION, sizeof dver - 1, dver, NULL);
  const char *fields[] = {"nncl 1", source, options, cl->device_name, cl->platform_name,
                          cl->driver_version, dver};
  uint64_t key = nn_cl_hash(fields, 7);

  // Where the entry lives, if anywhere.
  char dir[4096], path[4200];
  bool cache = nn_cl_cache_dir(dir, sizeof dir) == 0;
  if (cache) {
    int err = rt_make_dirs(dir, 0700);   // private: the cache holds binaries this user runs
    if (err) {
      cache_warn("create", dir, err);
      cache = false;
    }
  }
  if (cache)
    snprintf(path, sizeof path, "%s/%016llx%s", dir, (unsigned long long)key, CACHE_EXT);

  cl_program p = NULL;
  last_cached = false;
  if (cache) {
    size_t len = 0, n = 0;
    unsigned char *e = read_entry(path, &len);
    const unsigned char *bin = e ? check_entry(e, len, key, &n) : NULL;
    if (bin && (p = from_binary(cl, bin, n, options)))
      last_cached = true;
    free(e);
  }
  if (!p) {
    cl_int err;
    size_t len = strlen(source);
    p = clCreateProgramWithSource(cl->context, 1, &source, &len, &err);
    if (!p)
      return rt_error("OpenCL: clCreateProgramWithSource failed: %s", nn_cl_error_name(err));
    err = clBuildProgram(p, 1, &cl->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
      rt_error("OpenCL program build failed on %s:%s%s", cl->device_name,
               err == CL_BUILD_PROGRAM_FAILURE ? "" : " ",
               err == CL_BUILD_PROGRAM_FAILURE ? "" : nn_cl_error_name(err));
      print_build_log(cl, p);
      clReleaseProgram(p);
      return -1;
    }
    size_t n = 0;
    unsigned char *bin = cache ? program_binary(p, &n) : NULL;
    if (bin)
      write_entry(dir, path, key, bin, n);
    free(bin);
  }
  if (cl->program)
    clReleaseProgram(cl->program);
  cl->program = p;
  return 0;
}

//
// `nnc cache`: only files named like our entries are counted or removed.
//
// "<16 hex>.nncl" (returns 1) or its temporary "<16 hex>.nncl.tmp.XXXXXX" (returns 2).
static int entry_kind(const char *name) {
  for (int i = 0; i < 16; i++)
    if (!name[i] || !strchr("0123456789abcdef", name[i]))
      return 0;
  const char *rest = name + 16;
  if (strcmp(rest, CACHE_EXT) == 0)
    return 1;
  if (strncmp(rest, CACHE_EXT ".tmp.", 10) == 0 && strlen(rest + 10) == 6)
    return 2;
  return 0;
}

// Visits the directory's entries; clear removes them. Counts entries and bytes.
static int walk(FILE *out, bool clear) {
  char dir[4096];
  if (nn_cl_cache_dir(dir, sizeof dir) != 0)
    return rt_error("no cache directory: set NNC_CACHE_DIR, XDG_CACHE_HOME or HOME");
  DIR *d = opendir(dir);
  bool exists = d != NULL;
  if (!d && errno != ENOENT)
    return rt_error("cannot open %s: %s", dir, strerror(errno));
  long long count = 0, bytes = 0, temps = 0;
  int rc = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    int kind = entry_kind(e->d_name);
    if (!kind)
      continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (clear && unlink(path) != 0) {
      rc = rt_error("cannot remove %s: %s", path, strerror(errno));
      continue;
    }
    if (kind == 1) {
      count++;
      bytes += st.st_size;
    } else {
      temps++;
    }
  }
  if (d)
    closedir(d);
  if (clear)
    fprintf(out, "removed %lld entr%s (%lld bytes) from %s\n", count, count == 1 ? "y" : "ies",
            bytes, dir);
  else
    fprintf(out, "cache:   %s%s\nentries: %lld\nbytes:   %lld\n", dir,
            exists ? "" : " (does not exist yet)", count, bytes);
  if (temps && !clear)
    fprintf(out, "unfinished writes: %lld\n", temps);
  return rc;
}

int nn_cl_cache_stats(FILE *out) { return walk(out, false); }
int nn_cl_cache_clear(FILE *out) { return walk(out, true); }
