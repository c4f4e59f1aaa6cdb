// test_runtime_cl.c — the OpenCL host runtime on whatever device is the default (PoCL
// on the development machine): device selection and listing, error names, a kernel run
// with several launch shapes, build failures, and the binary cache.
//
// Without an OpenCL device these fail, unless NNC_NO_OPENCL=1 says that is expected.
#include "nn_cache.h"
#include "nn_cl.h"
#include "test_runtime_util.h"

#include <dirent.h>
#include <sys/stat.h>

static const char *add_src =
    "kernel void add(global const float *a, global const float *b, global float *c, int n) {\n"
    "  int i = get_global_id(0);\n"
    "  if (i < n) c[i] = a[i] + b[i];\n"
    "}\n"
    "kernel void affine(global float *y, float a, long off, ulong n) {\n"
    "  ulong i = get_global_id(0);\n"
    "  if (i < n) y[i] = a * y[i] + (float)off;\n"
    "}\n";

// Every test gets its own cache, so none writes to the user's.
static void private_cache(void) {
  setenv("NNC_CACHE_DIR", scratch("cache"), 1);
  unsetenv("NNC_DEVICE");
}

static nn_cl *open_default(void) {
  private_cache();
  const char *no = getenv("NNC_NO_OPENCL");
  if (no && !strcmp(no, "1"))
    cr_skip_test("NNC_NO_OPENCL=1: no OpenCL device expected");
  nn_cl *cl = nn_cl_open(-1);
  cr_assert_not_null(cl, "no OpenCL device (install pocl-opencl-icd, or set NNC_NO_OPENCL=1 "
                         "to skip these tests)");
  return cl;
}

// The *.nncl files in dir: count, and the last one's path in path.
static int entries(const char *dir, char *path, size_t cap) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 5 && !strcmp(e->d_name + len - 5, ".nncl")) {
      n++;
      if (path)
        snprintf(path, cap, "%s/%s", dir, e->d_name);
    }
  }
  closedir(d);
  return n;
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// Runs add on n elements in groups of group_size and checks every sum.
static void check_add(nn_cl *cl, int n, size_t group_size) {
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  for (int i = 0; i < n; i++) {
    a[i] = (float)i;
    b[i] = 0.5f * (float)i + 1;
    c[i] = -1;
  }
  cl_mem ma = nn_cl_alloc(cl, n * sizeof *a, "a"), mb = nn_cl_alloc(cl, n * sizeof *b, "b"),
         mc = nn_cl_alloc(cl, n * sizeof *c, "c");
  nn_cl_write(cl, ma, 0, n * sizeof *a, a);
  nn_cl_write(cl, mb, 0, n * sizeof *b, b);
  cl_kernel k = nn_cl_kernel(cl, "add");
  nn_cl_arg_mem(k, "add", 0, ma);
  nn_cl_arg_mem(k, "add", 1, mb);
  nn_cl_arg_mem(k, "add", 2, mc);
  nn_cl_arg_int(k, "add", 3, n);
  nn_cl_run(cl, k, "add", (n + group_size - 1) / group_size, group_size);
  nn_cl_finish(cl);
  nn_cl_read(cl, mc, 0, n * sizeof *c, c);
  for (int i = 0; i < n; i++)
    cr_assert_eq(c[i], a[i] + b[i], "groups of %zu: c[%d] = %g", group_size, i, c[i]);
  clReleaseKernel(k);
  clReleaseMemObject(ma);
  clReleaseMemObject(mb);
  clReleaseMemObject(mc);
  free(a);
  free(b);
  free(c);
}

Test(cl_device, opens_the_default_and_lists_it) {
  nn_cl *cl = open_default();
  cr_assert(cl->device_name[0] && cl->platform_name[0] && cl->driver_version[0]);
  cr_assert_gt(cl->max_work_group_size, 0);
  cr_assert_gt(cl->compute_units, 0);
  cr_assert_gt(cl->global_mem, 0);
  cr_assert_gt(cl->local_mem, 0);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  cr_assert_eq(nn_cl_list_devices(f), 0);
  fclose(f);
  cr_assert(strstr(text, cl->device_name), "%s", text);
  cr_assert(strstr(text, cl->platform_name), "%s", text);
  char line[300];
  snprintf(line, sizeof line, "device %d: %s  [default]", cl->index, cl->device_name);
  cr_assert(strstr(text, line), "no '%s' in\n%s", line, text);
  cr_assert(strstr(text, "default: device "), "%s", text);
  for (const char *field = "compute units\0max work-group\0max clock\0local memory\0global "
                           "memory\0max alloc\0fp64\0OpenCL C\0device version\0driver version\0";
       *field; field += strlen(field) + 1)
    cr_assert(strstr(text, field), "no %s in\n%s", field, text);
  if (strstr(cl->platform_name, "Portable Computing Language"))
    cr_assert(strstr(text, "type              CPU"), "%s", text);
  free(text);

  // The same device again by its index, and through NNC_DEVICE.
  nn_cl *again = nn_cl_open(cl->index);
  cr_assert_not_null(again);
  cr_assert_str_eq(again->device_name, cl->device_name);
  nn_cl_close(again);
  char idx[16];
  snprintf(idx, sizeof idx, "%d", cl->index);
  setenv("NNC_DEVICE", idx, 1);
  again = nn_cl_open(-1);
  cr_assert_not_null(again);
  cr_assert_eq(again->index, cl->index);
  nn_cl_close(again);
  nn_cl_close(cl);
}

Test(cl_device, bad_indices_fail_with_a_message) {
  nn_cl *cl = open_default();
  nn_cl_close(cl);

  capture c = capture_begin(2, "err1");
  cl = nn_cl_open(99);
  char *err = capture_end(&c);
  cr_assert_null(cl);
  cr_assert(strstr(err, "error: no OpenCL device 99: there "), "%s", err);
  cr_assert(strstr(err, "0: "), "the message lists the devices: %s", err);
  free(err);

  setenv("NNC_DEVICE", "99", 1);
  c = capture_begin(2, "err2");
  cl = nn_cl_open(-1);
  err = capture_end(&c);
  cr_assert_null(cl);
  cr_assert(strstr(err, "no OpenCL device 99"), "%s", err);
  free(err);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  cr_assert_eq(nn_cl_list_devices(f), 0);
  fclose(f);
  cr_assert(strstr(text, "default: none (NNC_DEVICE=99"), "%s", text);
  free(text);

  setenv("NNC_DEVICE", "gpu", 1);
  c = capture_begin(2, "err3");
  cl = nn_cl_open(-1);
  err = capture_end(&c);
  cr_assert_null(cl);
  cr_assert(strstr(err, "error: NNC_DEVICE must be a device index"), "%s", err);
  cr_assert(strstr(err, "'gpu'"), "%s", err);
  free(err);
}

Test(cl_errors, every_code_has_its_name) {
  cr_assert_str_eq(nn_cl_error_name(CL_SUCCESS), "CL_SUCCESS");
  cr_assert_str_eq(nn_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
  cr_assert_str_eq(nn_cl_error_name(CL_MEM_OBJECT_ALLOCATION_FAILURE),
                   "CL_MEM_OBJECT_ALLOCATION_FAILURE");
  cr_assert_str_eq(nn_cl_error_name(-54), "CL_INVALID_WORK_GROUP_SIZE");
  cr_assert_str_eq(nn_cl_error_name(-68), "CL_INVALID_DEVICE_PARTITION_COUNT");
  cr_assert_str_eq(nn_cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
  cr_assert_str_eq(nn_cl_error_name(-20), "CL error -20");
  cr_assert_str_eq(nn_cl_error_name(7), "CL error 7");
  // 1.2 defines 0..-19 and -30..-68: all named, all different.
  static char seen[70][64];
  int n = 0;
  for (int e = 0; e >= -68; e--) {
    if (e < -19 && e > -30)
      continue;
    const char *name = nn_cl_error_name(e);
    cr_assert(!strncmp(name, "CL_", 3), "%d is %s", e, name);
    for (int i = 0; i < n; i++)
      cr_assert_str_neq(seen[i], name);
    snprintf(seen[n++], sizeof seen[0], "%s", name);
  }
}

Test(cl_run, vector_add_with_several_launch_shapes) {
  nn_cl *cl = open_default();
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert_not_null(cl->program);
  size_t shapes[] = {1, 7, 64, 256, 1000};
  for (int i = 0; i < 5; i++)
    if (shapes[i] <= cl->max_work_group_size)
      check_add(cl, 1000, shapes[i]);
  check_add(cl, 1, 1);
  nn_cl_close(cl);
}

Test(cl_run, buffers_and_scalar_arguments) {
  nn_cl *cl = open_default();
  cr_assert_eq(nn_cl_build(cl, add_src, "-cl-std=CL1.2"), 0);
  enum { N = 300 };
  float y[N], z[N];

  // New buffers are zero; a zero-byte one exists.
  cl_mem m = nn_cl_alloc(cl, N * sizeof *y, "y"), m2 = nn_cl_alloc(cl, N * sizeof *y, "z");
  cl_mem empty = nn_cl_alloc(cl, 0, "empty");
  cr_assert_not_null(empty);
  nn_cl_read(cl, m, 0, sizeof y, y);
  for (int i = 0; i < N; i++)
    cr_assert_eq(y[i], 0.0f);

  // Writes and reads at an offset.
  for (int i = 0; i < N; i++)
    y[i] = (float)i;
  nn_cl_write(cl, m, 0, sizeof y, y);
  float part[10] = {0};
  nn_cl_read(cl, m, 100 * sizeof(float), sizeof part, part);
  for (int i = 0; i < 10; i++)
    cr_assert_eq(part[i], (float)(100 + i));
  float one = -5;
  nn_cl_write(cl, m, 7 * sizeof(float), sizeof one, &one);

  // y = 2y + 3 on the first 250 elements only: float, long and ulong arguments.
  cl_kernel k = nn_cl_kernel(cl, "affine");
  nn_cl_arg_mem(k, "affine", 0, m);
  nn_cl_arg_float(k, "affine", 1, 2.0f);
  nn_cl_arg_long(k, "affine", 2, 3);
  nn_cl_arg_ulong(k, "affine", 3, 250);
  nn_cl_run(cl, k, "affine", 5, 64);
  nn_cl_run(cl, k, "affine", 0, 64);  // nothing
  nn_cl_copy(cl, m, m2, sizeof y);
  nn_cl_fill_zero(cl, m, 100 * sizeof(float));
  nn_cl_finish(cl);
  nn_cl_read(cl, m, 0, sizeof y, y);
  nn_cl_read(cl, m2, 0, sizeof z, z);
  for (int i = 0; i < N; i++) {
    float v = i == 7 ? -5 : (float)i;
    float want = i < 250 ? 2 * v + 3 : v;
    cr_assert_eq(z[i], want, "z[%d] = %g", i, z[i]);
    cr_assert_eq(y[i], i < 100 ? 0 : want, "y[%d] = %g", i, y[i]);
  }
  // An odd size takes the byte pattern: 3.0f is 00 00 40 40, so 00 00 00 40 is 2.0f.
  nn_cl_fill_zero(cl, m2, 3);
  nn_cl_read(cl, m2, 0, sizeof z, z);
  cr_assert_eq(z[0], 2.0f, "%g", z[0]);
  cr_assert_eq(z[1], 5.0f);
  clReleaseKernel(k);
  clReleaseMemObject(m);
  clReleaseMemObject(m2);
  clReleaseMemObject(empty);
  nn_cl_close(cl);
}

Test(cl_run, missing_kernel_exits, .exit_code = 1) {
  nn_cl *cl = open_default();
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  nn_cl_kernel(cl, "nope");
}

Test(cl_run, oversized_group_exits, .exit_code = 1) {
  nn_cl *cl = open_default();
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cl_kernel k = nn_cl_kernel(cl, "add");
  cl_mem m = nn_cl_alloc(cl, 16, "m");
  for (int i = 0; i < 3; i++)
    nn_cl_arg_mem(k, "add", i, m);
  nn_cl_arg_int(k, "add", 3, 0);
  nn_cl_run(cl, k, "add", 1, cl->max_work_group_size * 2);
}

Test(cl_run, bad_argument_exits, .exit_code = 1) {
  nn_cl *cl = open_default();
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cl_kernel k = nn_cl_kernel(cl, "add");
  nn_cl_arg_int(k, "add", 9, 0);
}

Test(cl_build, failure_returns_minus_one_with_the_log) {
  nn_cl *cl = open_default();
  capture c = capture_begin(2, "err");
  int rc = nn_cl_build(cl, "kernel void broken(global float *x) { x[0] = undeclared_thing; }",
                       NULL);
  char *err = capture_end(&c);
  cr_assert_eq(rc, -1);
  char head[400];
  snprintf(head, sizeof head, "error: OpenCL program build failed on %s:", cl->device_name);
  cr_assert(strstr(err, head), "%s", err);
  cr_assert(strstr(err, "undeclared_thing"), "the build log is printed: %s", err);
  cr_assert_null(cl->program);
  cr_assert_eq(entries(scratch("cache"), NULL, 0), 0, "failures are not cached");
  free(err);
  nn_cl_close(cl);
}

Test(cl_cache, first_build_writes_second_loads) {
  nn_cl *cl = open_default();
  const char *dir = scratch("deep/er/cache");
  setenv("NNC_CACHE_DIR", dir, 1);
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert(!nn_cl_last_build_cached());
  struct stat st;
  cr_assert_eq(stat(dir, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);
  char path[600];
  cr_assert_eq(entries(dir, path, sizeof path), 1);
  size_t len;
  char *e = slurp(path, &len);
  cr_assert_gt(len, 40);
  cr_assert_eq(memcmp(e, "NNCACHE", 8), 0);
  free(e);

  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert(nn_cl_last_build_cached());
  check_add(cl, 500, 32);  // the loaded binary works

  // Other options, other entry; the same options in another process state, the same one.
  cr_assert_eq(nn_cl_build(cl, add_src, "-cl-fast-relaxed-math"), 0);
  cr_assert(!nn_cl_last_build_cached());
  cr_assert_eq(entries(dir, NULL, 0), 2);
  nn_cl_close(cl);
  cl = nn_cl_open(-1);
  cr_assert_eq(nn_cl_build(cl, add_src, "-cl-fast-relaxed-math"), 0);
  cr_assert(nn_cl_last_build_cached());
  check_add(cl, 100, 8);

  // No temporary files left behind.
  char *text = NULL;
  FILE *f = open_memstream(&text, &len);
  cr_assert_eq(nn_cache_stats(f), 0);
  fclose(f);
  cr_assert(strstr(text, "entries: 2\n"), "%s", text);
  cr_assert(!strstr(text, "unfinished"), "%s", text);
  free(text);
  nn_cl_close(cl);
}

// Damages the only entry with damage(), then checks the next build rebuilds, replaces
// the entry with a whole one, and the build after that loads it.
static void check_recovers(nn_cl *cl, void (*damage)(const char *path, size_t len)) {
  const char *dir = scratch("cache");
  char path[600];
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert_eq(entries(dir, path, sizeof path), 1);
  size_t len;
  char *good = slurp(path, &len);
  damage(path, len);
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert(!nn_cl_last_build_cached());
  check_add(cl, 100, 16);
  size_t len2;
  char *now = slurp(path, &len2);
  // PoCL's binaries grow once a kernel has run (they carry its compiled code), so
  // compare the header's magic and key, not the whole entry.
  cr_assert_gt(len2, 40);
  cr_assert_eq(memcmp(now, good, 24), 0, "the entry was rewritten");
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert(nn_cl_last_build_cached());
  cr_assert_eq(entries(dir, NULL, 0), 1);
  free(good);
  free(now);
}

static void truncate_it(const char *path, size_t len) { cr_assert_eq(truncate(path, 20), 0); }
static void truncate_binary(const char *path, size_t len) {
  cr_assert_eq(truncate(path, len - 1), 0);
}
static void empty_it(const char *path, size_t len) { cr_assert_eq(truncate(path, 0), 0); }
static void garble_binary(const char *path, size_t len) {
  char *e = slurp(path, NULL);
  e[40 + (len - 40) / 2] ^= 0x5a;
  write_bytes(path, e, len);
  free(e);
}
static void wrong_magic(const char *path, size_t len) {
  char *e = slurp(path, NULL);
  e[0] = 'X';
  write_bytes(path, e, len);
  free(e);
}
// A header that checks out around a binary the driver cannot load.
static void unloadable(const char *path, size_t len) {
  unsigned char *e = (unsigned char *)slurp(path, NULL);
  size_t n = 4096;
  unsigned char *bad = malloc(40 + n);
  memcpy(bad, e, 40);
  for (size_t i = 0; i < n; i++)
    bad[40 + i] = (unsigned char)(i * 31 + 7);
  uint64_t sum = fnv1a(bad + 40, n);
  for (int i = 0; i < 8; i++) {
    bad[24 + i] = (unsigned char)((uint64_t)n >> (8 * i));
    bad[32 + i] = (unsigned char)(sum >> (8 * i));
  }
  write_bytes(path, bad, 40 + n);
  free(bad);
  free(e);
}

Test(cl_cache, truncated_entry_is_rebuilt) {
  nn_cl *cl = open_default();
  check_recovers(cl, truncate_it);
  check_recovers(cl, truncate_binary);
  check_recovers(cl, empty_it);
  nn_cl_close(cl);
}

Test(cl_cache, garbled_entry_is_rebuilt) {
  nn_cl *cl = open_default();
  check_recovers(cl, garble_binary);
  check_recovers(cl, wrong_magic);
  nn_cl_close(cl);
}

Test(cl_cache, unloadable_binary_is_rebuilt) {
  nn_cl *cl = open_default();
  check_recovers(cl, unloadable);
  nn_cl_close(cl);
}

Test(cl_cache, unwritable_dir_only_disables_caching) {
  nn_cl *cl = open_default();
  // Under a regular file nothing can be created, even by root.
  write_text(scratch("file"), "x");
  setenv("NNC_CACHE_DIR", scratch("file/cache"), 1);
  capture c = capture_begin(2, "err");
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  char *err = capture_end(&c);
  cr_assert(!nn_cl_last_build_cached());
  check_add(cl, 100, 4);
  const char *w = strstr(err, "warning: nnc cache disabled");
  cr_assert(w, "%s", err);
  cr_assert(!strstr(w + 1, "warning:"), "one warning only: %s", err);
  cr_assert(!strstr(err, "error:"), "%s", err);
  free(err);
  nn_cl_close(cl);
}

Test(cl_cache, clear_removes_only_entries) {
  nn_cl *cl = open_default();
  const char *dir = scratch("cache");
  cr_assert_eq(nn_cl_build(cl, add_src, NULL), 0);
  cr_assert_eq(nn_cl_build(cl, add_src, "-DX=1"), 0);
  write_text(scratch("cache/notes.txt"), "keep");
  write_text(scratch("cache/0123.nncl"), "keep: not a name nnc writes");
  write_text(scratch("cache/0123456789abcdef.nncl.tmp.Ab12Cd"), "an unfinished write");

  char *text = NULL;
  size_t len;
  FILE *f = open_memstream(&text, &len);
  cr_assert_eq(nn_cache_stats(f), 0);
  fclose(f);
  cr_assert(strstr(text, dir), "%s", text);
  cr_assert(strstr(text, "entries: 2\n"), "%s", text);
  cr_assert(strstr(text, "unfinished writes: 1\n"), "%s", text);
  free(text);

  f = open_memstream(&text, &len);
  cr_assert_eq(nn_cache_clear(f), 0);
  fclose(f);
  cr_assert(strstr(text, "removed 2 entries"), "%s", text);
  free(text);
  cr_assert_eq(entries(dir, NULL, 0), 1, "only 0123.nncl is left");
  cr_assert_eq(access(scratch("cache/notes.txt"), F_OK), 0);
  cr_assert_eq(access(scratch("cache/0123.nncl"), F_OK), 0);
  cr_assert_neq(access(scratch("cache/0123456789abcdef.nncl.tmp.Ab12Cd"), F_OK), 0);

  f = open_memstream(&text, &len);
  cr_assert_eq(nn_cache_stats(f), 0);
  fclose(f);
  cr_assert(strstr(text, "entries: 0\n"), "%s", text);
  free(text);

  // A cache that does not exist yet is empty, not an error.
  setenv("NNC_CACHE_DIR", scratch("nowhere"), 1);
  f = open_memstream(&text, &len);
  cr_assert_eq(nn_cache_stats(f), 0);
  cr_assert_eq(nn_cache_clear(f), 0);
  fclose(f);
  cr_assert(strstr(text, "entries: 0\n"), "%s", text);
  free(text);
  nn_cl_close(cl);
}

Test(cl_cache, key_separates_fields) {
  const char *a[] = {"ab", "c"}, *b[] = {"a", "bc"}, *c[] = {"ab", "c"};
  cr_assert_neq(nn_cache_hash(a, 2), nn_cache_hash(b, 2));
  cr_assert_eq(nn_cache_hash(a, 2), nn_cache_hash(c, 2));
  // FNV-1a 64 of the empty string's separator alone: one step from the offset basis.
  const char *e[] = {""};
  cr_assert_eq(nn_cache_hash(e, 1), (0xcbf29ce484222325ull ^ 0) * 0x100000001b3ull);
}
