// run.c — `nnc run FILE [program options]`: compile the model in this process and call
// its main(), with no compiler process.
//
// The compiler is libnnc_jit.so (compiler/jit/: Clang and LLVM 14), loaded here and only
// here, privately (RTLD_LOCAL): every other command starts without LLVM, and an OpenCL
// driver built on another LLVM (PoCL) does not meet this one's symbols. Without it
// (nnc built without Clang/LLVM, or NNC_NO_JIT=1) the system compiler makes a shared
// object that dlopen loads.
//
// Needs: a planned graph. The model is compiled with the flags `nnc build` uses
// (model_cflags, -DNNK_LINKED), so its undefined symbols are the runtime's and the
// kernel library's, which nnc contains and exports: the JIT links against them, and so
// does dlopen in the fallback. Objects go through the compiled-code cache (kind "o" for
// the JIT's objects, "so" for the fallback's shared objects); an entry that fails to
// load is removed and compiled again.
#include "nnc.h"
#include "nn.h"
#include "nn_cache.h"
#include "jit.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool timing, verbose;
static double started;

void set_time_passes(bool on) {
  timing = on;
  started = nn_now();
}
void set_verbose(bool on) { verbose = on; }
bool verbose_mode(void) { return verbose; }

static void print_stage(const char *stage, double start, double now) {
  fprintf(stderr, "nnc: time: %-16s %8.1f ms  (%8.1f ms since start)\n", stage, 1e3 * (now - start),
          1e3 * (now - started));
}

void time_stage(const char *stage, double start) {
  if (timing) print_stage(stage, start, nn_now());
}

static double program_started;
// The program's own start (data loading, model creation), then its first step.
static void first_step_done(double step_seconds) {
  double now = nn_now();
  print_stage("program setup", program_started, now - step_seconds);
  print_stage("first step", now - step_seconds, now);
}

// /proc/cpuinfo's first "model name" and "flags" lines: what -march=native looks at.
const char *host_cpu_id(void) {
  static char *id;
  if (id) return id;
  id = xstrdup("");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return id;
  char line[8192];
  int found = 0;
  while (found < 2 && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10) || !strncmp(line, "flags", 5)) {
      id = xprintf("%s%s", id, line);
      found++;
    }
  fclose(f);
  return id;
}

// The in-process compiler's entry points (jit.h), from libnnc_jit.so.
typedef struct Jit {
  void *(*compile)(const JitFile *, int, const char *const *, int, size_t *, char **);
  void *(*link)(const void *, size_t, const char *, char **);
  const char *(*llvm_version)(void);
} Jit;

// The loaded compiler, or NULL with the reason in *why.
static const Jit *load_jit(const char **why) {
  static Jit jit;
  const char *path = nnc_library("libnnc_jit.so", "NNC_JIT_LIB");
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    *why = xprintf("cannot load %s (%s)", path, dlerror());
    return NULL;
  }
  jit.compile = (void *(*)(const JitFile *, int, const char *const *, int, size_t *, char **))dlsym(lib, "jit_compile");
  jit.link = (void *(*)(const void *, size_t, const char *, char **))dlsym(lib, "jit_link");
  jit.llvm_version = (const char *(*)(void))dlsym(lib, "jit_llvm_version");
  if (!jit.compile || !jit.link || !jit.llvm_version) {
    *why = xprintf("%s lacks the jit_* functions", path);
    return NULL;
  }
  return &jit;
}

typedef int (*MainFn)(int, char **);

// Compiles (or finds in the cache) and links; NULL after a message.
static MainFn jit_main(const Jit *jit, const char *source, const char **flags, int n_flags) {
  const char *compiler = xprintf("clang %s (in process)", jit->llvm_version());
  uint64_t key = model_cache_key("jit-object 1", source, compiler, flags, n_flags);
  for (int attempt = 0; attempt < 2; attempt++) {
    double t0 = nn_now();
    size_t size = 0;
    char *log = NULL;
    void *object = attempt == 0 ? nn_cache_get("o", key, &size) : NULL;
    bool cached = object != NULL;
    if (verbose) fprintf(stderr, "nnc: %s\n", cached ? "the model's object is in the cache" : "compiling the model in process (Clang)");
    if (!object) {
      JitFile file = {"/nnc-jit/model.c", source};
      object = jit->compile(&file, 1, flags, n_flags, &size, &log);
      if (!object) internal_error("run", "the in-process compiler rejected the generated code: %s", log ? log : "");
      nn_cache_put("o", key, object, size);
    }
    time_stage("compile", t0);
    t0 = nn_now();
    void *main_fn = jit->link(object, size, "main", &log);
    free(object);
    time_stage("link", t0);
    if (main_fn) return (MainFn)main_fn;
    if (!cached) internal_error("run", "linking the model failed: %s", log ? log : "");
    if (verbose) fprintf(stderr, "nnc: the cached object did not link (%s); compiling again\n", log ? log : "");
    nn_cache_remove("o", key);
  }
  return NULL;
}

// The fallback: the system compiler makes a shared object, dlopen links it.
static MainFn dlopen_main(const char *source, const char **flags, int n_flags) {
  const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
  const char *argv[48];
  int argc = 0;
  argv[argc++] = cc;
  for (int i = 0; i < n_flags; i++) argv[argc++] = flags[i];
  argv[argc++] = "-shared";
  argv[argc++] = "-fPIC";
  uint64_t key = model_cache_key("cc-shared 1", source, cc, argv + 1, argc - 1);
  char *dir = make_temp_dir();
  if (!dir) return NULL;
  const char *so_path = xprintf("%s/model.so", dir), *c_path = xprintf("%s/model.c", dir);
  for (int attempt = 0; attempt < 2; attempt++) {
    double t0 = nn_now();
    size_t size = 0;
    void *object = attempt == 0 ? nn_cache_get("so", key, &size) : NULL;
    bool cached = object != NULL;
    if (verbose) fprintf(stderr, "nnc: %s\n", cached ? "the model's shared object is in the cache" : xprintf("compiling the model with %s", cc));
    if (object) {
      FILE *f = fopen(so_path, "wb");
      bool ok = f && fwrite(object, 1, size, f) == size;
      if (f && fclose(f) != 0) ok = false;
      free(object);
      if (!ok) {
        fprintf(stderr, "nnc: error: cannot write %s: %s\n", so_path, strerror(errno));
        remove_temp_dir(dir);
        return NULL;
      }
    } else {
      FILE *f = fopen(c_path, "w");
      if (!f || fputs(source, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "nnc: error: cannot write %s\n", c_path);
        remove_temp_dir(dir);
        return NULL;
      }
      int n = argc;
      argv[n++] = c_path;
      argv[n++] = "-o";
      argv[n++] = so_path;
      argv[n] = NULL;
      if (run_compiler(argv, dir, NULL, "the C compiler rejected the generated code") < 0) return NULL;
      char *bytes;
      size_t len;
      if (read_file(so_path, 1 << 30, &bytes, &len) == READ_OK) nn_cache_put("so", key, bytes, len);
    }
    time_stage("compile", t0);
    t0 = nn_now();
    void *handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    void *main_fn = handle ? dlsym(handle, "main") : NULL;
    const char *why = handle ? "no main" : dlerror();
    time_stage("link", t0);
    if (main_fn) {
      remove_temp_dir(dir);  // the mapping stays after the file is gone
      return (MainFn)main_fn;
    }
    if (!cached) {
      remove_temp_dir(dir);
      internal_error("run", "loading the compiled model failed: %s", why);
    }
    if (verbose) fprintf(stderr, "nnc: the cached shared object did not load (%s); compiling again\n", why);
    nn_cache_remove("so", key);
  }
  remove_temp_dir(dir);
  return NULL;
}

int run_program(const Program *p, Graph *g, TargetKind target, int argc, char **argv) {
  double t0 = nn_now();
  char *dir = make_temp_dir();
  if (!dir) return 1;
  char *source = NULL;
  size_t len;
  int rc = target == TARGET_OPENCL ? emit_opencl(p, g, dir, nnc_include_dir()) : emit_c(p, g, dir);
  if (rc == 0 && read_file(xprintf("%s/model.c", dir), 256 << 20, &source, &len) != READ_OK) {
    fprintf(stderr, "nnc: error: cannot read back the generated %s/model.c\n", dir);
    rc = -1;
  }
  remove_temp_dir(dir);
  if (rc != 0) return 1;
  time_stage("code generation", t0);

  const char *flags[16];
  int n_flags = model_cflags(flags, 16, false);
  // The model's own code is calls into the kernel library with constant arguments:
  // -O1 compiles it in half the time of -O2 and runs as fast (the kernels are compiled
  // once, -O2). Bits do not depend on it (no contraction, no reassociation either way).
  if (!strcmp(flags[0], "-O2")) flags[0] = "-O1";
  // NNC_NO_JIT=1 takes the fallback in an nnc that has the JIT (tests, comparisons).
  const char *no_jit = getenv("NNC_NO_JIT"), *why = "NNC_NO_JIT is set";
  t0 = nn_now();
  const Jit *jit = no_jit && *no_jit && strcmp(no_jit, "0") ? NULL : load_jit(&why);
  time_stage("load compiler", t0);
  MainFn model_main;
  if (jit) {
    model_main = jit_main(jit, source, flags, n_flags);
  } else {
    if (verbose) fprintf(stderr, "nnc: %s: compiling with the system compiler and loading with dlopen\n", why);
    model_main = dlopen_main(source, flags, n_flags);
  }
  if (!model_main) return 1;
  if (timing) {
    program_started = nn_now();
    nn_on_first_step = first_step_done;
  }
  fflush(NULL);
  return model_main(argc, argv);
}
