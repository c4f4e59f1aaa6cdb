// cache.c — the compiled-code cache shared by OpenCL program binaries and JIT-compiled
// models (see include/nn_cache.h for the contract).
//
// Entry layout, little-endian:
//   0  magic "NNCACHE\0"        8 bytes
//   8  format version (2)       u32
//   12 header size (40)         u32
//   16 key                      u64  (nn_cache_hash of what the payload depends on)
//   24 payload size             u64
//   32 FNV-1a 64 of the payload u64  (a garbled object could load and run wrongly)
//   40 the payload
#include "nn_cache.h"
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "NNCACHE"  // 7 characters + NUL = 8 bytes
#define CACHE_VERSION 2
#define CACHE_HEADER 40
#define FNV_OFFSET 0xcbf29ce484222325ull

// The kinds of entry nnc writes; `nnc cache` counts and removes only these.
static const char *const kinds[] = {"nncl", "o", "so"};
enum { N_KINDS = sizeof kinds / sizeof kinds[0] };

static bool warned;  // the cache's trouble is reported once per process, then ignored

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t nn_cache_hash(const char *const *fields, int n) {
  uint64_t h = FNV_OFFSET;
  for (int i = 0; i < n; i++) {
    const char *f = fields[i] ? fields[i] : "";
    h = fnv1a(h, f, strlen(f) + 1);
  }
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
  if (warned) return;
  warned = true;
  rt_warn("nnc cache disabled: cannot %s %s: %s (set NNC_CACHE_DIR to a writable directory)", what, path,
          strerror(err));
}

int nn_cache_dir(char *buf, size_t cap) {
  const char *env = getenv("NNC_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  int n;
  if (env && *env) n = snprintf(buf, cap, "%s", env);
  else if (xdg && *xdg == '/') n = snprintf(buf, cap, "%s/nnc", xdg);  // the XDG spec ignores relative values
  else if (home && *home) n = snprintf(buf, cap, "%s/.cache/nnc", home);
  else return -1;
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

long long nn_cache_max_bytes(void) {
  const char *env = getenv("NNC_CACHE_MAX");
  long long def = 512ll << 20;
  if (!env || !*env) return def;
  char *end;
  errno = 0;
  long long v = strtoll(env, &end, 10);
  int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30 : 0;
  if (shift) end++;
  if (errno || v < 0 || *end || end == env || v > (1ll << (62 - shift))) {
    static bool said;
    if (!said) rt_warn("NNC_CACHE_MAX='%s' is not a size (e.g. 200M); using 512M", env);
    said = true;
    return def;
  }
  return v << shift;
}

// The entry's path; -1 when no cache directory can be named.
static int entry_path(const char *kind, uint64_t key, char *dir, size_t dcap, char *path, size_t pcap) {
  if (nn_cache_dir(dir, dcap) != 0) return -1;
  int n = snprintf(path, pcap, "%s/%016llx.%s", dir, (unsigned long long)key, kind);
  return n < 0 || (size_t)n >= pcap ? -1 : 0;
}

// The file's whole contents, or NULL when it is absent, unreadable or too short.
static unsigned char *read_whole(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return NULL;
  struct stat st;
  unsigned char *buf = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= CACHE_HEADER && (buf = malloc(st.st_size))) {
    size_t got = 0;
    while (got < (size_t)st.st_size) {
      ssize_t r = read(fd, buf + got, st.st_size - got);
      if (r <= 0) break;
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

void *nn_cache_get(const char *kind, uint64_t key, size_t *size) {
  char dir[4096], path[4200];
  if (entry_path(kind, key, dir, sizeof dir, path, sizeof path) != 0) return NULL;
  size_t len = 0;
  unsigned char *e = read_whole(path, &len);
  if (!e) return NULL;
  uint64_t n = get_u64(e + 24);
  if (memcmp(e, CACHE_MAGIC, 8) != 0 || get_u32(e + 8) != CACHE_VERSION || get_u32(e + 12) != CACHE_HEADER ||
      get_u64(e + 16) != key || n == 0 || n != len - CACHE_HEADER ||
      fnv1a(FNV_OFFSET, e + CACHE_HEADER, n) != get_u64(e + 32)) {
    free(e);
    return NULL;
  }
  memmove(e, e + CACHE_HEADER, n);
  utimensat(AT_FDCWD, path, NULL, 0);  // recently used: last to be evicted
  *size = n;
  return e;
}

void nn_cache_remove(const char *kind, uint64_t key) {
  char dir[4096], path[4200];
  if (entry_path(kind, key, dir, sizeof dir, path, sizeof path) == 0) unlink(path);
}

static int write_all(int fd, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    s += w;
    n -= w;
  }
  return 0;
}

//
// Listing: only files named like our entries are counted, evicted or removed.
//
// "<16 hex>.<kind>" (returns 1) or its temporary "<16 hex>.<kind>.tmp.XXXXXX" (returns 2).
static int entry_kind(const char *name) {
  for (int i = 0; i < 16; i++)
    if (!name[i] || !strchr("0123456789abcdef", name[i])) return 0;
  if (name[16] != '.') return 0;
  const char *rest = name + 17;
  for (int k = 0; k < N_KINDS; k++) {
    size_t len = strlen(kinds[k]);
    if (strncmp(rest, kinds[k], len)) continue;
    if (!rest[len]) return 1;
    if (!strncmp(rest + len, ".tmp.", 5) && strlen(rest + len + 5) == 6) return 2;
  }
  return 0;
}

typedef struct Entry {
  char name[64];
  long long bytes;
  struct timespec used;
} Entry;

// Our entries in dir (malloc'ed array, *count of them); temps counted apart.
static Entry *list_entries(const char *dir, int *count, long long *temps, bool *exists) {
  DIR *d = opendir(dir);
  *exists = d != NULL;
  *count = 0;
  *temps = 0;
  if (!d) return NULL;
  Entry *list = NULL;
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int kind = entry_kind(e->d_name);
    if (!kind || strlen(e->d_name) >= sizeof list->name) continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (kind == 2) ++*temps;  // listed too (bytes < 0) so that clear removes them
    if (*count == cap) {
      cap = cap ? 2 * cap : 64;
      Entry *grown = realloc(list, cap * sizeof *list);
      if (!grown) break;
      list = grown;
    }
    Entry *x = &list[(*count)++];
    snprintf(x->name, sizeof x->name, "%.63s", e->d_name);   // shorter: checked above
    x->bytes = kind == 1 ? st.st_size : -1;
    x->used = st.st_mtim;
  }
  closedir(d);
  return list;
}

static int older_first(const void *a, const void *b) {
  const Entry *x = a, *y = b;
  if (x->used.tv_sec != y->used.tv_sec) return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
  if (x->used.tv_nsec != y->used.tv_nsec) return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
  return strcmp(x->name, y->name);
}

// Removes the least recently used entries until the whole fits the bound; `keep` (the
// entry just written) stays even when it alone is larger.
static void evict(const char *dir, const char *keep) {
  int count;
  long long temps, total = 0, max = nn_cache_max_bytes();
  bool exists;
  Entry *list = list_entries(dir, &count, &temps, &exists);
  for (int i = 0; i < count; i++)
    if (list[i].bytes > 0) total += list[i].bytes;
  if (total > max) {
    qsort(list, count, sizeof *list, older_first);
    for (int i = 0; i < count && total > max; i++) {
      if (list[i].bytes < 0 || !strcmp(list[i].name, keep)) continue;
      char path[4400];
      snprintf(path, sizeof path, "%s/%s", dir, list[i].name);
      if (unlink(path) == 0 || errno == ENOENT) total -= list[i].bytes;  // another process may have evicted it
    }
  }
  free(list);
}

int nn_cache_put(const char *kind, uint64_t key, const void *data, size_t n) {
  char dir[4096], path[4200], tmp[4300];
  if (entry_path(kind, key, dir, sizeof dir, path, sizeof path) != 0) {
    if (!warned) rt_warn("nnc cache disabled: no cache directory (set NNC_CACHE_DIR, XDG_CACHE_HOME or HOME)");
    warned = true;
    return -1;
  }
  int err = rt_make_dirs(dir, 0700);  // private: the cache holds code this user runs
  if (err) {
    cache_warn("create", dir, err);
    return -1;
  }
  snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    cache_warn("write to", dir, errno);
    return -1;
  }
  unsigned char h[CACHE_HEADER];
  memcpy(h, CACHE_MAGIC, 8);
  put_u32(h + 8, CACHE_VERSION);
  put_u32(h + 12, CACHE_HEADER);
  put_u64(h + 16, key);
  put_u64(h + 24, n);
  put_u64(h + 32, fnv1a(FNV_OFFSET, data, n));
  err = write_all(fd, h, sizeof h);
  if (!err) err = write_all(fd, data, n);
  if (!err && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (!err && rename(tmp, path) != 0) err = errno;
  if (err) {
    unlink(tmp);
    cache_warn("write", path, err);
    return -1;
  }
  int dfd = open(dir, O_RDONLY);  // make the rename durable (best effort)
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  evict(dir, strrchr(path, '/') + 1);
  return 0;
}

// Visits the directory's entries; clear removes them. Counts entries and bytes.
static int walk(FILE *out, bool clear) {
  char dir[4096];
  if (nn_cache_dir(dir, sizeof dir) != 0) return rt_error("no cache directory: set NNC_CACHE_DIR, XDG_CACHE_HOME or HOME");
  int count;
  long long temps, entries = 0, bytes = 0;
  bool exists;
  errno = 0;
  Entry *list = list_entries(dir, &count, &temps, &exists);
  if (!exists && errno != ENOENT) return rt_error("cannot open %s: %s", dir, strerror(errno));
  int rc = 0;
  long long per_kind[N_KINDS] = {0};
  for (int i = 0; i < count; i++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, list[i].name);
    if (clear && unlink(path) != 0 && errno != ENOENT) {
      rc = rt_error("cannot remove %s: %s", path, strerror(errno));
      continue;
    }
    if (list[i].bytes < 0) continue;
    entries++;
    bytes += list[i].bytes;
    for (int k = 0; k < N_KINDS; k++)
      if (!strcmp(strchr(list[i].name, '.') + 1, kinds[k])) per_kind[k]++;
  }
  free(list);
  if (clear) {
    fprintf(out, "removed %lld entr%s (%lld bytes) from %s\n", entries, entries == 1 ? "y" : "ies", bytes, dir);
    return rc;
  }
  fprintf(out, "cache:   %s%s\nentries: %lld\nbytes:   %lld\nlimit:   %lld\n", dir,
          exists ? "" : " (does not exist yet)", entries, bytes, nn_cache_max_bytes());
  static const char *const what[N_KINDS] = {"OpenCL program binaries", "compiled models (objects)",
                                            "compiled models (shared objects)"};
  for (int k = 0; k < N_KINDS; k++)
    if (per_kind[k]) fprintf(out, "  %-40s %lld\n", what[k], per_kind[k]);
  if (temps) fprintf(out, "unfinished writes: %lld\n", temps);
  return rc;
}

int nn_cache_stats(FILE *out) { return walk(out, false); }
int nn_cache_clear(FILE *out) { return walk(out, true); }
