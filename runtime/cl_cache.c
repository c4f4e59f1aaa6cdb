// cl_cache.c — program builds through the compiled-code cache (runtime/cache.c).
//
// Compiling OpenCL C takes seconds on some drivers and happens at every start of a
// program, so the binary the driver returns is kept and loaded next time. The cache
// is only ever an optimization: anything wrong with it (unwritable directory, a
// truncated, garbled or stale entry, a binary the driver refuses) falls back to
// building from source, and an entry that did not load is replaced.
//
// Entry kind "nncl": the binary as clGetProgramInfo(CL_PROGRAM_BINARIES) gave it, keyed
// by (format, source, options, device name, platform name, driver version, device
// version).
#include "nn_cache.h"
#include "nn_cl.h"
#include "rt.h"

#include <stdlib.h>
#include <string.h>

static bool last_cached;

bool nn_cl_last_build_cached(void) { return last_cached; }

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
  const char *fields[] = {"nncl 2", source, options, cl->device_name, cl->platform_name,
                          cl->driver_version, dver};
  uint64_t key = nn_cache_hash(fields, 7);

  cl_program p = NULL;
  last_cached = false;
  size_t n = 0;
  unsigned char *cached = nn_cache_get("nncl", key, &n);
  if (cached && (p = from_binary(cl, cached, n, options))) last_cached = true;
  free(cached);
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
    unsigned char *bin = program_binary(p, &n);
    if (bin) nn_cache_put("nncl", key, bin, n);
    free(bin);
  }
  if (cl->program)
    clReleaseProgram(cl->program);
  cl->program = p;
  return 0;
}
