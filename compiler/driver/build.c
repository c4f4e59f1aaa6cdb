// build.c — `nnc build` and `nnc emit`: generated C on disk, then an executable.
//
// Needs: a graph ready for emit_c. Guarantees: the executable appears at out_path
// atomically (compiled to out_path.tmp, then renamed) or not at all; the temporary
// directory is removed either way. A C compiler rejecting our code is nnc's bug and is
// reported as an internal error with the compiler's output.
#include "nnc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NNC_SOURCE_DIR
#define NNC_SOURCE_DIR "."
#endif
#ifndef NNC_RUNTIME_CFLAGS
#define NNC_RUNTIME_CFLAGS ""
#endif
#ifndef NNC_RUNTIME_LIB
#define NNC_RUNTIME_LIB NNC_SOURCE_DIR "/build/libnnrt.a"
#endif

// libnnrt_mpi.a (runtime/mpi.c), built when CMake found MPI; "" otherwise.
#ifndef NNC_MPI_LIB
#define NNC_MPI_LIB ""
#endif

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

// NNC_INCLUDE_DIR: an installed include directory holding nn.h, nn_cl.h, nn_kernels.h
// and nn_kernels.cl.
static const char *kernels_dir(void) { return env_or("NNC_INCLUDE_DIR", NNC_SOURCE_DIR "/kernels"); }

static int emit_target(const Program *p, Graph *g, TargetKind target, const char *dir) {
  // A model that cannot fit is refused here, not by the program after a long build.
  // NNC_MEMORY_LIMIT (bytes) replaces this machine's memory as the limit.
  const char *limit = getenv("NNC_MEMORY_LIMIT");
  if (g->plan && memory_check(p, g, limit ? atof(limit) : 0) != 0) return -1;
  return target == TARGET_OPENCL ? emit_opencl(p, g, dir, kernels_dir()) : emit_c(p, g, dir);
}

int emit_to_dir(const Program *p, Graph *g, TargetKind target, const char *dir) {
  if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
    fprintf(stderr, "nnc: error: cannot create directory %s: %s\n", dir, strerror(errno));
    return -1;
  }
  return emit_target(p, g, target, dir);
}

// Runs argv with stdout and stderr into log_path; returns the exit status, or -1 if
// the program could not be started.
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
  FILE *f = fopen(path, "r");
  if (!f) return xstrdup("");
  char *text = xalloc(65537);
  size_t n = fread(text, 1, 65536, f);
  text[n] = 0;
  fclose(f);
  return text;
}

static void remove_dir(const char *dir) {
  const char *files[] = {"model.c", "model.cl", "nn_kernels.cl", "README", "cc.log"};
  for (int i = 0; i < 5; i++) unlink(xprintf("%s/%s", dir, files[i]));
  rmdir(dir);
}

// gcc's OpenMP runtime has a static archive; clang's -fopenmp means libomp instead.
static bool links_gomp_statically(const char *cc) {
  const char *base = strrchr(cc, '/');
  base = base ? base + 1 : cc;
  return !strstr(base, "clang") && !getenv("NNC_DYNAMIC_OPENMP");
}

int build_program(const Program *p, Graph *g, TargetKind target, const char *out_path, const char *cflags,
                  const char *cc) {
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
  char *dir = xprintf("%s/nnc-build-XXXXXX", env_or("TMPDIR", "/tmp"));
  if (!mkdtemp(dir)) {
    fprintf(stderr, "nnc: error: cannot create a temporary directory in %s: %s\n", env_or("TMPDIR", "/tmp"),
            strerror(errno));
    return -1;
  }
  if (emit_target(p, g, target, dir) < 0) {
    remove_dir(dir);
    return -1;
  }
  const char *inc = env_or("NNC_INCLUDE_DIR", NNC_SOURCE_DIR "/include");
  const char *kern = kernels_dir();
  const char *lib = env_or("NNC_RUNTIME_LIB", NNC_RUNTIME_LIB);
  if (!cc) cc = env_or("CC", "cc");
  // --mpi: MPI's compiler wrapper adds its include and link flags (OMPI_CC picks the C
  // compiler under Open MPI's mpicc); the MPI runtime comes before libnnrt, which it uses.
  const char *mpi_lib = env_or("NNC_MPI_LIB", NNC_MPI_LIB);
  if (p->mpi && !*mpi_lib) {
    fprintf(stderr, "nnc: error: this nnc was built without MPI, so it cannot build --mpi programs "
                    "(install libopenmpi-dev and openmpi-bin, then rebuild nnc)\n");
    remove_dir(dir);
    return -1;
  }
  if (p->mpi) cc = env_or("MPICC", "mpicc");

  char *argv[64];
  int argc = 0;
  argv[argc++] = (char *)cc;
  argv[argc++] = "-O2";
  argv[argc++] = "-march=native";
  argv[argc++] = "-fopenmp";
  // The runtime's own build flags (sanitizers), then the user's, split on blanks (no
  // quoting: they come from our own command line).
  char *flags = xprintf("%s %s", NNC_RUNTIME_CFLAGS, cflags ? cflags : "");
  for (char *tok = strtok(flags, " \t"); tok && argc < 40; tok = strtok(NULL, " \t")) argv[argc++] = tok;
  argv[argc++] = xprintf("-I%s", inc);
  argv[argc++] = xprintf("-I%s", kern);
  argv[argc++] = xprintf("%s/model.c", dir);
  if (p->mpi) argv[argc++] = (char *)mpi_lib;
  argv[argc++] = (char *)lib;
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
  argv[argc++] = (char *)tmp_out;
  argv[argc] = NULL;

  const char *log_path = xprintf("%s/cc.log", dir);
  int rc = run_logged(argv, log_path);
  if (rc != 0) {
    char *log = read_text(log_path);
    remove_dir(dir);
    unlink(tmp_out);
    if (rc == -1 || rc == 127) {
      fprintf(stderr, "nnc: error: cannot run the C compiler '%s' (set %s): %s", cc, p->mpi ? "MPICC" : "CC", log);
      return -1;
    }
    internal_error("build", "the C compiler rejected the generated code (exit %d):\n%s", rc, log);
  }
  remove_dir(dir);
  if (rename(tmp_out, out_path) < 0) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", out_path, strerror(errno));
    unlink(tmp_out);
    return -1;
  }
  return 0;
}
