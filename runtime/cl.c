// cl.c — the OpenCL host runtime: devices, buffers, kernel arguments, launches,
// error names. Program builds and the binary cache are in cl_cache.c.
#include "nn_cl.h"
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// Once running, a failed call leaves the training step without its data: report and stop.
static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rt_error("OpenCL: %s", msg);
  exit(1);
}

const char *nn_cl_error_name(cl_int err) {
  switch (err) {
#define E(x) case x: return #x;
  E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
  E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
  E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
  E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
  E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
  E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
  E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
  E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
  E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE)
  E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
  E(CL_INVALID_IMAGE_SIZE) E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
  E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
  E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
  E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
  E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
  E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
  E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
  E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
  E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
  E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
  // The ICD loader's answer when no vendor is registered (cl_khr_icd).
  case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
  }
  static _Thread_local char buf[32];
  snprintf(buf, sizeof buf, "CL error %d", (int)err);
  return buf;
}

//
// Devices: one flat list over all platforms.
//
enum { MAX_PLATFORMS = 16, MAX_DEVICES = 64 };
typedef struct devlist {
  int n;
  cl_platform_id platform[MAX_DEVICES];
  cl_device_id device[MAX_DEVICES];
  int platform_index[MAX_DEVICES];
  int n_platforms;
  cl_platform_id platforms[MAX_PLATFORMS];
} devlist;

// What the ICD loader would have read, so "no platform" says where to look.
static void describe_vendors(char *buf, size_t cap) {
  const char *dir = getenv("OCL_ICD_VENDORS");
  if (!dir || !*dir)
    dir = "/etc/OpenCL/vendors";
  size_t n = snprintf(buf, cap, "%s has ", dir);
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(buf + n, cap - n, "nothing (%s)", strerror(errno));
    return;
  }
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    if (e->d_name[0] == '.')
      continue;
    n += snprintf(buf + n, cap - n, "%s%s", count++ ? ", " : "", e->d_name);
  }
  closedir(d);
  if (!count)
    snprintf(buf + n, cap - n, "no .icd files");
}

// Fills l; -1 after a message when there is no platform or no device at all.
static int enumerate(devlist *l) {
  memset(l, 0, sizeof *l);
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(MAX_PLATFORMS, l->platforms, &np);
  if (err != CL_SUCCESS && err != -1001)
    return rt_error("OpenCL: clGetPlatformIDs failed: %s", nn_cl_error_name(err));
  if (err == -1001 || np == 0) {
    char vendors[512];
    describe_vendors(vendors, sizeof vendors);
    return rt_error("no OpenCL platform found: is an ICD such as pocl-opencl-icd installed? %s",
                    vendors);
  }
  l->n_platforms = np < MAX_PLATFORMS ? (int)np : MAX_PLATFORMS;
  for (int p = 0; p < l->n_platforms; p++) {
    cl_device_id ids[MAX_DEVICES];
    cl_uint nd = 0;
    err = clGetDeviceIDs(l->platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &nd);
    if (err == CL_DEVICE_NOT_FOUND)
      continue;
    if (err != CL_SUCCESS)
      return rt_error("OpenCL: clGetDeviceIDs failed: %s", nn_cl_error_name(err));
    for (cl_uint i = 0; i < nd && i < MAX_DEVICES && l->n < MAX_DEVICES; i++) {
      l->platform[l->n] = l->platforms[p];
      l->platform_index[l->n] = p;
      l->device[l->n++] = ids[i];
    }
  }
  if (l->n == 0)
    return rt_error("no OpenCL device found on %d platform%s", l->n_platforms,
                    l->n_platforms == 1 ? "" : "s");
  return 0;
}

static void device_str(cl_device_id d, cl_device_info what, char *buf, size_t cap) {
  buf[0] = 0;
  if (clGetDeviceInfo(d, what, cap, buf, NULL) != CL_SUCCESS)
    snprintf(buf, cap, "?");
  buf[cap - 1] = 0;
}

static void platform_str(cl_platform_id p, cl_platform_info what, char *buf, size_t cap) {
  buf[0] = 0;
  if (clGetPlatformInfo(p, what, cap, buf, NULL) != CL_SUCCESS)
    snprintf(buf, cap, "?");
  buf[cap - 1] = 0;
}

static cl_ulong device_ulong(cl_device_id d, cl_device_info what) {
  cl_ulong v = 0;
  clGetDeviceInfo(d, what, sizeof v, &v, NULL);
  return v;
}

static cl_uint device_uint(cl_device_id d, cl_device_info what) {
  cl_uint v = 0;
  clGetDeviceInfo(d, what, sizeof v, &v, NULL);
  return v;
}

static bool device_fp64(cl_device_id d) {
  // 1.2 reports double support through its FP config (0 when absent); some drivers
  // only list the extension.
  cl_device_fp_config fp = 0;
  clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp, &fp, NULL);
  if (fp)
    return true;
  char ext[4096];
  device_str(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
  return strstr(ext, "cl_khr_fp64") != NULL;
}

static bool is_gpu(cl_device_id d) {
  cl_device_type t = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
  return (t & CL_DEVICE_TYPE_GPU) != 0;
}

// "0: pthread-haswell (Portable Computing Language), 1: ..." for messages.
static void list_brief(const devlist *l, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (int i = 0; i < l->n && n < cap; i++) {
    char name[256], plat[256];
    device_str(l->device[i], CL_DEVICE_NAME, name, sizeof name);
    platform_str(l->platform[i], CL_PLATFORM_NAME, plat, sizeof plat);
    n += snprintf(buf + n, cap - n, "%s%d: %s (%s)", i ? ", " : "", i, name, plat);
  }
}

// The default device and why; -1 after a message when $NNC_DEVICE is not an integer.
static int default_device(const devlist *l, char *why, size_t cap) {
  const char *env = getenv("NNC_DEVICE");
  if (env && *env) {
    char *end;
    errno = 0;
    long v = strtol(env, &end, 10);
    if (*end || errno || v < 0 || v > 1000000)
      return rt_error("NNC_DEVICE must be a device index (a non-negative integer), not '%s'", env);
    snprintf(why, cap, "NNC_DEVICE=%ld", v);
    return (int)v;
  }
  // Data parallel (--mpi): the ranks on one machine take its GPUs in turn.
  int gpus = 0, want = rt_dist.local_rank;
  for (int i = 0; i < l->n; i++) gpus += is_gpu(l->device[i]);
  for (int i = 0, k = 0; gpus > 0 && i < l->n; i++)
    if (is_gpu(l->device[i]) && k++ == want % gpus) {
      snprintf(why, cap, want ? "the GPU of this local rank" : "the first GPU");
      return i;
    }
  snprintf(why, cap, "no GPU, so device %d", want % l->n);
  return want % l->n;
}

nn_cl *nn_cl_open(int device) {
  devlist l;
  if (enumerate(&l) != 0)
    return NULL;
  char why[64];
  if (device < 0 && (device = default_device(&l, why, sizeof why)) < 0)
    return NULL;
  if (device >= l.n) {
    char list[768];
    list_brief(&l, list, sizeof list);
    rt_error("no OpenCL device %d: there %s %d (%s)", device, l.n == 1 ? "is" : "are", l.n, list);
    return NULL;
  }
  nn_cl *cl = calloc(1, sizeof *cl);
  if (!cl) {
    rt_error("out of memory");
    return NULL;
  }
  cl->index = device;
  cl->platform = l.platform[device];
  cl->device = l.device[device];
  device_str(cl->device, CL_DEVICE_NAME, cl->device_name, sizeof cl->device_name);
  device_str(cl->device, CL_DRIVER_VERSION, cl->driver_version, sizeof cl->driver_version);
  platform_str(cl->platform, CL_PLATFORM_NAME, cl->platform_name, sizeof cl->platform_name);
  clGetDeviceInfo(cl->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof cl->max_work_group_size,
                  &cl->max_work_group_size, NULL);
  cl->compute_units = device_uint(cl->device, CL_DEVICE_MAX_COMPUTE_UNITS);
  cl->local_mem = device_ulong(cl->device, CL_DEVICE_LOCAL_MEM_SIZE);
  cl->global_mem = device_ulong(cl->device, CL_DEVICE_GLOBAL_MEM_SIZE);
  cl->fp64 = device_fp64(cl->device);

  cl_int err;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)cl->platform, 0};
  cl->context = clCreateContext(props, 1, &cl->device, NULL, NULL, &err);
  if (!cl->context) {
    rt_error("OpenCL: clCreateContext(%s) failed: %s", cl->device_name, nn_cl_error_name(err));
    free(cl);
    return NULL;
  }
  cl->queue = clCreateCommandQueue(cl->context, cl->device, 0, &err);
  if (!cl->queue) {
    rt_error("OpenCL: clCreateCommandQueue(%s) failed: %s", cl->device_name, nn_cl_error_name(err));
    clReleaseContext(cl->context);
    free(cl);
    return NULL;
  }
  return cl;
}

void nn_cl_close(nn_cl *cl) {
  if (!cl)
    return;
  if (cl->queue) {
    clFinish(cl->queue);
    clReleaseCommandQueue(cl->queue);
  }
  if (cl->program)
    clReleaseProgram(cl->program);
  if (cl->context)
    clReleaseContext(cl->context);
  free(cl);
}

static void print_bytes(FILE *out, const char *label, cl_ulong b) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    fprintf(out, "    %-18s%llu bytes\n", label, (unsigned long long)b);
  else
    fprintf(out, "    %-18s%.1f %s (%llu bytes)\n", label, v, units[u], (unsigned long long)b);
}

int nn_cl_list_devices(FILE *out) {
  devlist l;
  if (enumerate(&l) != 0)
    return 1;
  char why[64] = "";
  int def = default_device(&l, why, sizeof why);
  int shown = -1;
  for (int i = 0; i < l.n; i++) {
    cl_device_id d = l.device[i];
    if (l.platform_index[i] != shown) {
      shown = l.platform_index[i];
      char name[256], vendor[256], version[256];
      platform_str(l.platform[i], CL_PLATFORM_NAME, name, sizeof name);
      platform_str(l.platform[i], CL_PLATFORM_VENDOR, vendor, sizeof vendor);
      platform_str(l.platform[i], CL_PLATFORM_VERSION, version, sizeof version);
      fprintf(out, "platform %d: %s (%s), %s\n", shown, name, vendor, version);
    }
    char name[256], vendor[256], cver[256], dver[256], drv[256];
    device_str(d, CL_DEVICE_NAME, name, sizeof name);
    device_str(d, CL_DEVICE_VENDOR, vendor, sizeof vendor);
    device_str(d, CL_DEVICE_OPENCL_C_VERSION, cver, sizeof cver);
    device_str(d, CL_DEVICE_VERSION, dver, sizeof dver);
    device_str(d, CL_DRIVER_VERSION, drv, sizeof drv);
    cl_device_type t = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    char type[64] = "";
    if (t & CL_DEVICE_TYPE_GPU) strcat(type, " GPU");
    if (t & CL_DEVICE_TYPE_CPU) strcat(type, " CPU");
    if (t & CL_DEVICE_TYPE_ACCELERATOR) strcat(type, " ACCEL");
    if (t & CL_DEVICE_TYPE_CUSTOM) strcat(type, " CUSTOM");
    size_t wg = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);

    fprintf(out, "  device %d: %s%s\n", i, name, i == def ? "  [default]" : "");
    fprintf(out, "    %-18s%s\n", "vendor", vendor);
    fprintf(out, "    %-18s%s\n", "type", type[0] ? type + 1 : "?");
    fprintf(out, "    %-18s%u\n", "compute units", device_uint(d, CL_DEVICE_MAX_COMPUTE_UNITS));
    fprintf(out, "    %-18s%zu\n", "max work-group", wg);
    fprintf(out, "    %-18s%u MHz\n", "max clock", device_uint(d, CL_DEVICE_MAX_CLOCK_FREQUENCY));
    print_bytes(out, "local memory", device_ulong(d, CL_DEVICE_LOCAL_MEM_SIZE));
    print_bytes(out, "global memory", device_ulong(d, CL_DEVICE_GLOBAL_MEM_SIZE));
    print_bytes(out, "max alloc", device_ulong(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE));
    fprintf(out, "    %-18s%s\n", "fp64", device_fp64(d) ? "yes" : "no");
    fprintf(out, "    %-18s%s\n", "OpenCL C", cver);
    fprintf(out, "    %-18s%s\n", "device version", dver);
    fprintf(out, "    %-18s%s\n", "driver version", drv);
  }
  if (def < 0)
    fprintf(out, "default: none ($NNC_DEVICE is not a device index)\n");
  else if (def >= l.n)
    fprintf(out, "default: none (%s, but there %s only %d device%s)\n", why,
            l.n == 1 ? "is" : "are", l.n, l.n == 1 ? "" : "s");
  else
    fprintf(out, "default: device %d (%s)\n", def, why);
  return 0;
}

//
// Kernels, buffers, launches.
//
cl_kernel nn_cl_kernel(nn_cl *cl, const char *name) {
  if (!cl->program)
    die("kernel %s requested before a program was built", name);
  cl_int err;
  cl_kernel k = clCreateKernel(cl->program, name, &err);
  if (!k)
    die("clCreateKernel(%s) failed: %s%s", name, nn_cl_error_name(err),
        err == CL_INVALID_KERNEL_NAME ? " (no kernel of that name in the program)" : "");
  return k;
}

cl_mem nn_cl_alloc(nn_cl *cl, size_t bytes, const char *what) {
  // Zero bytes is legal for an empty tensor, but not for clCreateBuffer.
  size_t n = bytes ? bytes : 16;
  cl_ulong max = device_ulong(cl->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
  if (max && n > max)
    die("cannot allocate %s: %zu bytes, more than %s allows in one buffer (%llu bytes)", what, n,
        cl->device_name, (unsigned long long)max);
  cl_int err;
  cl_mem m = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, n, NULL, &err);
  if (!m)
    die("cannot allocate %s (%zu bytes) on %s: clCreateBuffer failed: %s", what, n,
        cl->device_name, nn_cl_error_name(err));
  // A 4-byte pattern is faster where the size allows; 1 always divides.
  static const cl_uint zero = 0;
  size_t pattern = n % 4 == 0 ? 4 : 1;
  err = clEnqueueFillBuffer(cl->queue, m, &zero, pattern, 0, n, 0, NULL, NULL);
  // Drivers allocate lazily: finishing here makes an out-of-memory name this buffer.
  if (err == CL_SUCCESS)
    err = clFinish(cl->queue);
  if (err != CL_SUCCESS)
    die("cannot allocate %s (%zu bytes) on %s: %s", what, n, cl->device_name,
        nn_cl_error_name(err));
  return m;
}

static void write_buffer(nn_cl *cl, cl_mem m, size_t offset, size_t bytes, const void *src, cl_bool blocking) {
  if (!bytes)
    return;
  cl_int err = clEnqueueWriteBuffer(cl->queue, m, blocking, offset, bytes, src, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    die("clEnqueueWriteBuffer(%zu bytes at %zu) failed: %s", bytes, offset, nn_cl_error_name(err));
}

void nn_cl_write(nn_cl *cl, cl_mem m, size_t offset, size_t bytes, const void *src) {
  write_buffer(cl, m, offset, bytes, src, CL_TRUE);
}

void nn_cl_write_async(nn_cl *cl, cl_mem m, size_t offset, size_t bytes, const void *src) {
  write_buffer(cl, m, offset, bytes, src, CL_FALSE);
}

void nn_cl_read(nn_cl *cl, cl_mem m, size_t offset, size_t bytes, void *dst) {
  if (!bytes)
    return;
  cl_int err = clEnqueueReadBuffer(cl->queue, m, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    die("clEnqueueReadBuffer(%zu bytes at %zu) failed: %s", bytes, offset, nn_cl_error_name(err));
}

void nn_cl_fill_zero(nn_cl *cl, cl_mem m, size_t bytes) {
  if (!bytes)
    return;
  static const cl_uint zero = 0;
  size_t pattern = bytes % 4 == 0 ? 4 : 1;
  cl_int err = clEnqueueFillBuffer(cl->queue, m, &zero, pattern, 0, bytes, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    die("clEnqueueFillBuffer(%zu bytes) failed: %s", bytes, nn_cl_error_name(err));
}

void nn_cl_copy(nn_cl *cl, cl_mem src, cl_mem dst, size_t bytes) {
  if (!bytes)
    return;
  cl_int err = clEnqueueCopyBuffer(cl->queue, src, dst, 0, 0, bytes, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    die("clEnqueueCopyBuffer(%zu bytes) failed: %s", bytes, nn_cl_error_name(err));
}

static void set_arg(cl_kernel k, const char *kname, int index, size_t size, const void *v) {
  cl_int err = clSetKernelArg(k, (cl_uint)index, size, v);
  if (err != CL_SUCCESS)
    die("clSetKernelArg(%s, arg %d) failed: %s", kname, index, nn_cl_error_name(err));
}

void nn_cl_arg_mem(cl_kernel k, const char *kname, int index, cl_mem m) {
  set_arg(k, kname, index, sizeof m, &m);
}
void nn_cl_arg_int(cl_kernel k, const char *kname, int index, int v) {
  cl_int x = v;
  set_arg(k, kname, index, sizeof x, &x);
}
void nn_cl_arg_long(cl_kernel k, const char *kname, int index, long long v) {
  cl_long x = v;
  set_arg(k, kname, index, sizeof x, &x);
}
void nn_cl_arg_ulong(cl_kernel k, const char *kname, int index, unsigned long long v) {
  cl_ulong x = v;
  set_arg(k, kname, index, sizeof x, &x);
}
void nn_cl_arg_float(cl_kernel k, const char *kname, int index, float v) {
  cl_float x = v;
  set_arg(k, kname, index, sizeof x, &x);
}

void nn_cl_run(nn_cl *cl, cl_kernel k, const char *kname, size_t groups, size_t group_size) {
  if (groups == 0)
    return;  // a zero global size is an error in 1.2; nothing to do is not
  if (group_size == 0 || groups > SIZE_MAX / group_size)
    die("clEnqueueNDRangeKernel(%s): bad launch of %zu groups of %zu", kname, groups, group_size);
  size_t global = groups * group_size, local = group_size;
  cl_int err = clEnqueueNDRangeKernel(cl->queue, k, 1, NULL, &global, &local, 0, NULL, NULL);
  if (err == CL_INVALID_WORK_GROUP_SIZE) {
    // The kernel's own limit (registers, local memory) may be below the device's.
    size_t kmax = cl->max_work_group_size;
    clGetKernelWorkGroupInfo(k, cl->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL);
    die("clEnqueueNDRangeKernel(%s) failed: %s (groups of %zu; at most %zu on %s)", kname,
        nn_cl_error_name(err), group_size, kmax, cl->device_name);
  }
  if (err != CL_SUCCESS)
    die("clEnqueueNDRangeKernel(%s) failed: %s", kname, nn_cl_error_name(err));
}

void nn_cl_finish(nn_cl *cl) {
  cl_int err = clFinish(cl->queue);
  if (err != CL_SUCCESS)
    die("clFinish failed: %s", nn_cl_error_name(err));
}
