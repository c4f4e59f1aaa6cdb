// nn_cl.h — the OpenCL host runtime: what programs built with `--target opencl` call.
//
// One device, one context, one in-order queue, one program per nn_cl. Only the
// OpenCL 1.2 API is used, so any 1.2 driver (PoCL, Mesa, vendor ICDs) runs the result.
// Setup failures (no platform, bad device index, build errors) print "error: ..." and
// return NULL / -1; failures once running (allocation, launches, transfers) print the
// call, the kernel or buffer it concerns and the error's name, then exit(1): a
// training step cannot go on without them.
//
// Programs are compiled once per (source, options, device, driver) and their binaries
// kept in nnc's compiled-code cache (include/nn_cache.h), as entries of kind "nncl".
#ifndef NN_CL_H
#define NN_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nn_cl {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  cl_program program;             // set by nn_cl_build
  char device_name[256], platform_name[256], driver_version[128];
  size_t max_work_group_size;
  cl_uint compute_units;
  cl_ulong local_mem, global_mem;
  bool fp64;
  int index;                      // in the flattened device list
} nn_cl;

// Devices are numbered across all platforms in platform order, then device order.
// device < 0: $NNC_DEVICE if set (an integer, else error), else the first GPU, else
// device 0; under --mpi, local rank r takes the r-th GPU (device r without GPUs), modulo
// their count. Returns NULL after a message (no platform, index out of range, ...).
nn_cl *nn_cl_open(int device);
// Releases the program, queue and context. Kernels from nn_cl_kernel are the
// caller's (clReleaseKernel); buffers too (clReleaseMemObject).
void nn_cl_close(nn_cl *cl);

// Builds source with options for cl->device through the binary cache and sets
// cl->program. A corrupt or unloadable cache entry is rebuilt and replaced; an
// unusable cache directory only disables caching (one warning per process). On a
// build failure prints "error: OpenCL program build failed on <device>:" and the
// build log, and returns -1.
int nn_cl_build(nn_cl *cl, const char *source, const char *options);
// Whether the last successful nn_cl_build of this process loaded a cached binary.
bool nn_cl_last_build_cached(void);
// A kernel of the built program; exits naming the kernel if there is none.
cl_kernel nn_cl_kernel(nn_cl *cl, const char *name);

// Zero-filled device buffer of bytes (0 allocates a minimal one). Exits naming what.
cl_mem nn_cl_alloc(nn_cl *cl, size_t bytes, const char *what);
void nn_cl_write(nn_cl *cl, cl_mem m, size_t offset, size_t bytes, const void *src);  // blocking
void nn_cl_read(nn_cl *cl, cl_mem m, size_t offset, size_t bytes, void *dst);         // blocking
// Not blocking: src must stay as it is until a later blocking call on the queue returns.
void nn_cl_write_async(nn_cl *cl, cl_mem m, size_t offset, size_t bytes, const void *src);
void nn_cl_fill_zero(nn_cl *cl, cl_mem m, size_t bytes);
void nn_cl_copy(nn_cl *cl, cl_mem src, cl_mem dst, size_t bytes);                     // device to device

// Kernel arguments; a failure exits naming the kernel, the index and the error.
void nn_cl_arg_mem(cl_kernel k, const char *kname, int index, cl_mem m);
void nn_cl_arg_int(cl_kernel k, const char *kname, int index, int v);
void nn_cl_arg_long(cl_kernel k, const char *kname, int index, long long v);            // cl_long
void nn_cl_arg_ulong(cl_kernel k, const char *kname, int index, unsigned long long v);  // cl_ulong
void nn_cl_arg_float(cl_kernel k, const char *kname, int index, float v);
// 1-D NDRange: groups work-groups of group_size work-items (global = groups * group_size).
// groups == 0 launches nothing.
void nn_cl_run(nn_cl *cl, cl_kernel k, const char *kname, size_t groups, size_t group_size);
void nn_cl_finish(nn_cl *cl);
// "CL_OUT_OF_RESOURCES" for every OpenCL 1.2 error code; "CL error <n>" otherwise.
const char *nn_cl_error_name(cl_int err);

// `nnc devices`: every platform and device, and which one is the default and why.
// Returns 0, or 1 after a message when there is none.
int nn_cl_list_devices(FILE *out);

// The work-group size (16, 64, 128 or 256) for a program's kernels: $NNC_CL_WG when set; 16
// on a CPU device; else the fastest by `trial` (seconds for a few steps built with that
// size; <= 0 if it failed), searched once and remembered per source, device, driver and
// batch in the cache directory.
int nn_cl_pick_work_group(nn_cl *cl, const char *source, int max_batch, int cpu,
                          double (*trial)(void *ctx, int wg), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
