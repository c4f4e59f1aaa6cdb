// build.c — `nnc build` and `nnc emit`: generated C on disk, then an executable.
//
// Needs: a graph ready for emit_c. Guarantees: the executable appears at out_path
// atomically (compiled to out_path.tmp, then renamed) or not at all; the temporary
// directory is removed either way. A C compiler rejecting our code is nnc's bug and is
// reported as an internal error with the compiler's output.
//
// The model is compiled with -DNNK_LINKED: it calls the kernel library compiled once
// into libnnrt.a (and into nnc, which `nnc run` uses), so `nnc build` and `nnc run`
// execute the same kernel code and give the same bits. Its object is kept in the
// compiled-code cache (include/nn_cache.h), keyed by everything it depends on.
#include "nnc.h"
#include "nn.h"
#include "nn_cache.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NNC_RUNTIME_CFLAGS
#define NNC_RUNTIME_CFLAGS ""
#endif
#ifndef NNC_LIBDIR
#define NNC_LIBDIR "lib"
#endif

// libnnrt_mpi.a (runtime/mpi.c), built when CMake found MPI; "" otherwise.
#ifndef NNC_MPI_LIB
#define NNC_MPI_LIB ""
#endif

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

// The directory holding the running nnc, or "." when /proc cannot say.
static const char *exe_dir(void) {
  static char dir[PATH_MAX];
  if (!*dir) {
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    dir[n > 0 ? n : 0] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
  }
  return dir;
}

static bool exists(const char *path) { return access(path, R_OK) == 0; }

// Headers (nn.h, nn_kernels.h, nn_kernels_api.h, nn_kernels.cl): $NNC_INCLUDE_DIR, else
// <prefix>/include/nnc for an installed nnc (<prefix>/bin/nnc), else <dir of nnc>/include/nnc
// (the build tree). Never a path of the source tree.
const char *nnc_include_dir(void) {
  static const char *dir;
  if (dir) return dir;
  const char *env = getenv("NNC_INCLUDE_DIR");
  if (env && *env) return dir = env;
  const char *installed = xprintf("%s/../include/nnc", exe_dir());
  return dir = exists(xprintf("%s/nn.h", installed)) ? installed : xprintf("%s/include/nnc", exe_dir());
}

const char *nnc_library(const char *name, const char *env_name) {
  const char *env = getenv(env_name);
  if (env && *env) return env;
  const char *installed = xprintf("%s/../%s/nnc/%s", exe_dir(), NNC_LIBDIR, name);
  return exists(installed) ? installed : xprintf("%s/%s", exe_dir(), name);
}

const char *nnc_runtime_lib(void) {
  static const char *lib;
  return lib ? lib : (lib = nnc_library("libnnrt.a", "NNC_RUNTIME_LIB"));
}

const char *nnc_version(void) { return NNC_VERSION; }

static int emit_target(const Program *p, Graph *g, TargetKind target, const char *dir) {
  // A model that cannot fit is refused here, not by the program after a long build.
  if (memory_check_env(p, g) != 0) return -1;
  return target == TARGET_OPENCL ? emit_opencl(p, g, dir, nnc_include_dir()) : emit_c(p, g, dir);
}

int emit_to_dir(const Program *p, Graph *g, TargetKind target, const char *dir) {
  if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
    fprintf(stderr, "nnc: error: cannot create directory %s: %s\n", dir, strerror(errno));
    return -1;
  }
  return emit_target(p, g, target, dir);
}

static int run_logged(char **argv, const char *log_path) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    FILE *log = freopen(log_path, "w", stdout);
    if (!log || dup2(fileno(stdout), 2) < 0) _exit(126);
    execvp(argv[0], argv);
    fprintf(stdout, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *read_text(const char *path) {
  char *text;
  size_t len;
  return read_file(path, 1 << 20, &text, &len) == READ_OK ? text : xstrdup("");
}

int run_compiler(const char **argv, const char *dir, const char *partial, const char *failure) {
  const char *log_path = xprintf("%s/cc.log", dir);
  int rc = run_logged((char **)argv, log_path);
  if (rc == 0) return 0;
  char *log = read_text(log_path);
  remove_temp_dir(dir);
  if (partial) unlink(partial);
  if (rc == -1 || rc == 127) {
    fprintf(stderr, "nnc: error: cannot run the C compiler '%s' (set CC, or MPICC for --mpi): %s", argv[0], log);
    return -1;
  }
  internal_error("build", "%s (exit %d):\n%s", failure, rc, log);
}

char *make_temp_dir(void) {
  char *dir = xprintf("%s/nnc-build-XXXXXX", env_or("TMPDIR", "/tmp"));
  if (!mkdtemp(dir)) {
    fprintf(stderr, "nnc: error: cannot create a temporary directory in %s: %s\n", env_or("TMPDIR", "/tmp"),
            strerror(errno));
    return NULL;
  }
  return dir;
}

void remove_temp_dir(const char *dir) {
  const char *files[] = {"model.c", "model.cl", "nn_kernels.cl", "README", "cc.log", "model.o", "model.so"};
  for (int i = 0; i < 7; i++) unlink(xprintf("%s/%s", dir, files[i]));
  rmdir(dir);
}

static bool is_clang(const char *cc) {
  const char *base = strrchr(cc, '/');
  return strstr(base ? base + 1 : cc, "clang") != NULL;
}

// gcc's OpenMP runtime has a static archive; clang's -fopenmp means libomp instead.
static bool links_gomp_statically(const char *cc) { return !is_clang(cc) && !getenv("NNC_DYNAMIC_OPENMP"); }

int model_cflags(const char **out, int cap, bool specialize) {
  int n = 0;
  out[n++] = "-O2";
  out[n++] = "-march=native";
  if (specialize) {
    out[n++] = "-fopenmp";  // the kernels are compiled here, as the compiler likes
  } else {
    out[n++] = "-DNNK_LINKED";  // the kernels are the library's
    // No contraction into fused multiply-adds in the model's own code: gcc contracts by
    // default and clang differently, and the bits of nnc build and nnc run must agree.
    out[n++] = "-ffp-contract=off";
  }
  out[n++] = xprintf("-I%s", nnc_include_dir());
  if (n > cap) internal_error("build", "too many compiler flags");
  return n;
}

// The cache key of a model's object: everything the bytes depend on.
uint64_t model_cache_key(const char *kind, const char *source, const char *compiler, const char *const *flags,
                         int n_flags) {
  char *flag_text = xstrdup("");
  for (int i = 0; i < n_flags; i++) flag_text = xprintf("%s%s\n", flag_text, flags[i]);
  char *api = read_text(xprintf("%s/nn_kernels_api.h", nnc_include_dir()));
  char *nn_h = read_text(xprintf("%s/nn.h", nnc_include_dir()));
  const char *fields[] = {kind, NNC_VERSION, source, compiler, flag_text, host_cpu_id(), api, nn_h};
  return nn_cache_hash(fields, 8);
}

int build_program(const Program *p, Graph *g, TargetKind target, const char *out_path, const char *cflags,
                  const char *cc, bool specialize) {
  // An unwritable output is the user's problem, said before any work: not a compiler
  // failure reported as nnc's bug.
  const char *tmp_out = xprintf("%s.tmp", out_path);
  FILE *probe = fopen(tmp_out, "w");
  if (!probe) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", out_path, strerror(errno));
    return -1;
  }
  fclose(probe);
  unlink(tmp_out);
  char *dir = make_temp_dir();
  if (!dir) return -1;
  double t0 = nn_now();
  if (emit_target(p, g, target, dir) < 0) {
    remove_temp_dir(dir);
    return -1;
  }
  time_stage("code generation", t0);
  if (!cc) cc = env_or("CC", "cc");
  const char *lib = nnc_runtime_lib();
  // --mpi: MPI's compiler wrapper adds its include and link flags (OMPI_CC picks the C
  // compiler under Open MPI's mpicc); the MPI runtime comes before libnnrt, which it uses.
  const char *mpi_lib = getenv("NNC_MPI_LIB") || *NNC_MPI_LIB ? nnc_library("libnnrt_mpi.a", "NNC_MPI_LIB") : "";
  if (p->mpi && !*mpi_lib) {
    fprintf(stderr, "nnc: error: this nnc was built without MPI, so it cannot build --mpi programs "
                    "(install libopenmpi-dev and openmpi-bin, then rebuild nnc)\n");
    remove_temp_dir(dir);
    return -1;
  }
  if (p->mpi) cc = env_or("MPICC", "mpicc");

  // Compile: the model's object, from the cache when the same source was compiled the
  // same way before.
  const char *argv[64];
  int argc = 0;
  argv[argc++] = cc;
  argc += model_cflags(argv + argc, 16, specialize);
  // Kernels compiled here: clang would unroll their hand-tiled loops again (CMakeLists.txt).
  if (specialize && is_clang(cc)) argv[argc++] = "-fno-unroll-loops";
  // The runtime's own build flags (sanitizers), then the user's, split on blanks (no
  // quoting: they come from our own command line).
  char *flags = xprintf("%s %s", NNC_RUNTIME_CFLAGS, cflags ? cflags : "");
  for (char *tok = strtok(flags, " \t"); tok && argc < 48; tok = strtok(NULL, " \t")) argv[argc++] = tok;
  const char *source_path = xprintf("%s/model.c", dir), *object_path = xprintf("%s/model.o", dir);
  char *source = read_text(source_path);
  uint64_t key = model_cache_key("cc-object 1", source, cc, argv + 1, argc - 1);
  size_t size = 0;
  t0 = nn_now();
  void *object = nn_cache_get("o", key, &size);
  if (object) {
    FILE *f = fopen(object_path, "wb");
    bool ok = f && fwrite(object, 1, size, f) == size;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) {
      free(object);
      object = NULL;
    }
    if (verbose_mode()) fprintf(stderr, "nnc: the model's object is in the cache\n");
  }
  if (!object) {
    argv[argc++] = "-c";
    argv[argc++] = source_path;
    argv[argc++] = "-o";
    argv[argc++] = object_path;
    argv[argc] = NULL;
    if (run_compiler(argv, dir, NULL, "the C compiler rejected the generated code") < 0) return -1;
    char *bytes;
    size_t len;
    if (read_file(object_path, 1 << 30, &bytes, &len) == READ_OK) nn_cache_put("o", key, bytes, len);
  }
  free(object);
  time_stage("compile", t0);

  // Link with the runtime and the kernel library.
  t0 = nn_now();
  argc = 0;
  argv[argc++] = cc;
  argv[argc++] = "-fopenmp";
  if (*NNC_RUNTIME_CFLAGS) argv[argc++] = NNC_RUNTIME_CFLAGS;
  argv[argc++] = object_path;
  if (p->mpi) argv[argc++] = mpi_lib;
  argv[argc++] = lib;
  // zlib and, with gcc, the OpenMP runtime are linked in: the program then needs only
  // libc and libm where it runs (libgomp1 is not on every machine without gcc).
  argv[argc++] = "-Wl,-Bstatic";
  argv[argc++] = "-lz";
  if (links_gomp_statically(cc)) argv[argc++] = "-lgomp";
  argv[argc++] = "-Wl,-Bdynamic";
  // The ICD loader finds the device's driver at run time (PoCL, NVIDIA, ...).
  if (target == TARGET_OPENCL) argv[argc++] = "-lOpenCL";
#ifdef NNC_HDF5_LIB
  // Keras's .weights.h5 / .h5 / .keras files: only scripts that use them need libhdf5.
  if (program_uses_hdf5(p)) argv[argc++] = NNC_HDF5_LIB;
#endif
  argv[argc++] = "-lm";
  argv[argc++] = "-o";
  argv[argc++] = tmp_out;
  argv[argc] = NULL;
  if (run_compiler(argv, dir, tmp_out, "linking the generated program failed") < 0) return -1;
  remove_temp_dir(dir);
  if (rename(tmp_out, out_path) < 0) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", out_path, strerror(errno));
    unlink(tmp_out);
    return -1;
  }
  time_stage("link", t0);
  return 0;
}
