// nn_cache.h — nnc's compiled-code cache: OpenCL program binaries (runtime/cl_cache.c),
// models compiled by `nnc run` and `nnc build` (compiler/driver/run.c, build.c).
//
// Directory: $NNC_CACHE_DIR, else $XDG_CACHE_HOME/nnc, else $HOME/.cache/nnc, created
// mode 0700. One file per entry, "<key as 16 hex digits>.<kind>", written to a temporary
// file, fsynced and renamed, so readers only ever see whole entries, whatever number of
// processes write at once. Each entry carries a header (magic, format version, key,
// size, FNV-1a of the payload): a truncated, garbled or foreign file is treated as
// missing and replaced. The directory is kept under $NNC_CACHE_MAX bytes (a number with
// an optional K, M or G suffix; default 512M) by removing the least recently used
// entries (a hit refreshes an entry's modification time). The cache is only ever an
// optimization: when it cannot be used, one warning is printed and work goes on.
#ifndef NN_CACHE_H
#define NN_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// FNV-1a 64 over the n strings, each followed by a NUL byte as separator (so
// {"ab","c"} and {"a","bc"} differ); NULL counts as "".
uint64_t nn_cache_hash(const char *const *fields, int n);
// The cache directory as configured (it may not exist yet); -1 if none can be named.
int nn_cache_dir(char *buf, size_t cap);
// The payload of entry (key, kind) (malloc'ed, *size bytes), or NULL when it is
// missing, damaged or someone else's. kind is a short file extension ("o", "nncl").
void *nn_cache_get(const char *kind, uint64_t key, size_t *size);
// Stores the payload atomically, then evicts the least recently used entries over the
// size bound. Returns 0, or -1 after one warning per process.
int nn_cache_put(const char *kind, uint64_t key, const void *data, size_t size);
// Removes one entry (a payload its user found unusable). Missing is fine.
void nn_cache_remove(const char *kind, uint64_t key);
// `nnc cache --stats|--clear`: counts or removes nnc's entries (and unfinished
// temporary files) only, nothing else in the directory. Return 0 or -1.
int nn_cache_stats(FILE *out);
int nn_cache_clear(FILE *out);
// The size bound in bytes ($NNC_CACHE_MAX, default 512 MiB).
long long nn_cache_max_bytes(void);

#ifdef __cplusplus
}
#endif
#endif
