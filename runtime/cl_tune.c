// cl_tune.c — the work-group size for a model's kernels on a device: a small timed search,
// remembered in the binary cache's directory (CLBlast tunes the same way, per device).
//
// The library's GPU layout sizes its tiles from NNCL_WG (64: 32x32 output tiles per
// group, 128: 32x64, 256: 64x64); which is fastest depends on the device. The CPU layout
// (PoCL) deals whole blocks to items and runs a group's items as a loop, so more items
// only cost each its prologue (an update of eight weights at 4,096 items spent half its
// time there): CPU devices take 16, the smallest size, without a search.
#include "nn_cache.h"
#include "nn_cl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const int candidates[] = {64, 128, 256};

// The file remembering the choice for this (source, device, driver, batch) key.
static int tune_path(const nn_cl *cl, const char *source, int max_batch, char *path, size_t cap) {
  char dir[3584], batch[32];
  if (nn_cache_dir(dir, sizeof dir) != 0) return -1;
  snprintf(batch, sizeof batch, "%d", max_batch);
  const char *fields[] = {"wg-v1", source, cl->device_name, cl->platform_name, cl->driver_version, batch};
  uint64_t key = nn_cache_hash(fields, 6);
  int n = snprintf(path, cap, "%s/%016llx.wg", dir, (unsigned long long)key);
  return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int allowed(const nn_cl *cl, int wg) {
  return (size_t)wg <= cl->max_work_group_size;
}

int nn_cl_pick_work_group(nn_cl *cl, const char *source, int max_batch, int cpu,
                          double (*trial)(void *ctx, int wg), void *ctx) {
  const char *env = getenv("NNC_CL_WG");
  if (env && *env) {
    int wg = atoi(env);
    if (wg != 64 && wg != 128 && wg != 256) {
      fprintf(stderr, "error: NNC_CL_WG must be 64, 128 or 256, not '%s'\n", env);
      exit(1);
    }
    return wg;
  }
  if (cpu) return 16;
  if (!trial) return 64;
  char path[4096];
  bool cacheable = tune_path(cl, source, max_batch, path, sizeof path) == 0;
  if (cacheable) {
    FILE *f = fopen(path, "r");
    int wg = 0;
    if (f) {
      if (fscanf(f, "%d", &wg) != 1) wg = 0;
      fclose(f);
    }
    if ((wg == 64 || wg == 128 || wg == 256) && allowed(cl, wg)) return wg;
  }
  int best = 64;
  double best_s = 0;
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    int wg = candidates[i];
    if (!allowed(cl, wg)) continue;
    double s = trial(ctx, wg);
    if (s > 0 && (best_s == 0 || s < best_s)) best = wg, best_s = s;
  }
  if (cacheable) {
    // Written whole or not at all; the directory exists once a build has cached a binary.
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f && fprintf(f, "%d\n", best) > 0 && fclose(f) == 0) {
      if (rename(tmp, path) != 0) unlink(tmp);
    } else {
      if (f) fclose(f);
      unlink(tmp);
    }
  }
  return best;
}
