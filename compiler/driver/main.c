// main.c — the `nnc` driver: reads the command line, runs the pipeline's stages.
#include "nnc.h"
#include "nn.h"
#include "nn_cache.h"
#ifdef NNC_HAVE_OPENCL
#include "nn_cl.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: nnc <command> FILE.nn [options]   (nnc --version: the version and the Keras API level)\n"
    "\n"
    "commands:\n"
    "  check FILE                 parse, check, infer shapes; print the model summary\n"
    "  graph FILE [--stage STAGE] [-o out.dot]\n"
    "                             the graph IR as Graphviz DOT\n"
    "  graph stages: parsed, autodiff, fused, optimized, scheduled, planned (the pass list)\n"
    "  emit FILE [--target c|opencl] [--mpi] -o DIR\n"
    "                             write the generated sources\n"
    "  build FILE [--target c|opencl] [--mpi] -o PROG [--cflags FLAGS] [--specialize]\n"
    "                             an executable that runs the script; with --mpi it\n"
    "                             also trains data-parallel under mpirun (docs/mpi.md)\n"
    "  run FILE [--target c|opencl] [program options]\n"
    "                             compile in process (JIT) and run the script; program\n"
    "                             options as a built program takes them (--epochs N, ...)\n"
    "  bench FILE [--target c,opencl] [--batch-size N,N] [--csv|--json] [--svg out.svg]\n"
    "                             time the train step kernel by kernel (nnc bench --help)\n"
    "  devices                    OpenCL platforms and devices with their limits\n"
    "  cache --stats|--clear      the compiled-code cache ($NNC_CACHE_DIR)\n"
    "\n"
    "options:\n"
    "  --data-dir DIR             where data sets live (also $NNC_DATA)\n"
    "  --no-fuse                  no fusion: every graph op a kernel of its own\n"
    "  --no-fuse=LIST             only those fusions off: epilogue (bias, activation\n"
    "                             into GEMM/conv), gradient (activation gradients into\n"
    "                             their producers), bias (bias gradients summed by the\n"
    "                             weight gradients), softmax (computed by the loss),\n"
    "                             elementwise (pointwise chains in one loop), updates\n"
    "                             (every optimizer update of a step in one kernel),\n"
    "                             pool (a first convolution and its max-pool as one)\n"
    "  --no-reuse                 give every buffer its own memory (no liveness sharing)\n"
    "  --layout=auto|nhwc|packed|blocked|cols  how convolutions and Dense layers reach\n"
    "                             their weights: the cost model's pick per node (auto),\n"
    "                             im2col + GEMM everywhere (nhwc), weights packed once per\n"
    "                             step wherever possible (packed), filter gradients over\n"
    "                             blocked channels wherever possible (blocked), or im2col +\n"
    "                             GEMM with each forward im2col kept for the filter\n"
    "                             gradient (cols);\n"
    "                             docs/internals.md\n"
    "  --time-passes              print each stage's time (also NNC_DEBUG=1)\n"
    "  --verbose                  say what build and run do (cache hits, the compiler used)\n"
    "  -h, --help                 this text\n";

enum { MAX_SOURCE = 16 << 20 };  // a model script is small; refuse to read gigabytes

// Reads the whole file; refuses directories, unreadable and oversized files.
static Source read_source(const char *path) {
  char *text;
  size_t len;
  switch (read_file(path, MAX_SOURCE, &text, &len)) {
  case READ_OK: break;
  case READ_OPEN: diag_fatal("cannot open '%s': %s", path, strerror(errno));
  case READ_DIR: diag_fatal("'%s' is a directory, not a .nn file", path);
  case READ_TOO_BIG:
    diag_fatal("'%s' is larger than %d MiB; a .nn script is expected to be small", path, MAX_SOURCE >> 20);
  case READ_IO: diag_fatal("cannot read '%s': %s", path, strerror(errno));
  }
  return (Source){.path = path, .text = text, .len = len};
}

typedef struct Options {
  const char *command, *file, *out, *stage, *target, *cflags, *data_dir, *cache_op;
  PassOptions passes;
  bool mpi;  // --mpi: a data-parallel program for mpirun (docs/mpi.md)
  bool specialize, time_passes, verbose;
  // `nnc run`: the program's own command line (argv[0], then the options nnc does not take).
  int prog_argc;
  char **prog_argv;
} Options;

static Options parse_args(int argc, char **argv) {
  Options o = {.target = "c", .stage = "parsed"};
  if (argc < 2) {
    fputs(usage, stderr);
    exit(1);
  }
  o.command = argv[1];
  if (!strcmp(o.command, "--version") || !strcmp(o.command, "version")) {
    printf("nnc %s (follows the Keras 3 API)\n", NNC_VERSION);
    exit(0);
  }
  bool run = !strcmp(o.command, "run");
  o.prog_argv = xalloc((argc + 2) * sizeof(char *));
  o.prog_argc = 1;
  if (!strcmp(o.command, "-h") || !strcmp(o.command, "--help") || !strcmp(o.command, "help")) {
    fputs(usage, stdout);
    exit(0);
  }
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "-o")) slot = &o.out;
    else if (!strcmp(a, "--stage")) slot = &o.stage;
    else if (!strcmp(a, "--target")) slot = &o.target;
    else if (!strcmp(a, "--cflags")) slot = &o.cflags;
    else if (!strcmp(a, "--data-dir")) slot = &o.data_dir;
    else if (!strcmp(a, "--no-reuse")) {
      o.passes.no_reuse = true;
      continue;
    } else if (!strcmp(a, "--no-fuse")) {
      o.passes.no_fuse = true;
      continue;
    } else if (!strncmp(a, "--layout=", 9) || !strcmp(a, "--layout")) {
      const char *v = a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : NULL;
      if (!v) diag_fatal("option '--layout' needs a value: auto, nhwc, packed or cols");
      int c = layout_choice(v);
      if (c < 0) diag_fatal("--layout: expected auto, nhwc, packed or cols, got '%s'", v);
      o.passes.layout = (LayoutChoice)c;
      continue;
    } else if (!strncmp(a, "--no-fuse=", 10)) {
      if (pass_options_parse_no_fuse(&o.passes, a + 10) < 0)
        diag_fatal("--no-fuse= takes a comma list of epilogue, gradient, bias, softmax, elementwise, updates, pool, trim (got '%s')",
                   a + 10);
      continue;
    } else if (!strcmp(a, "--mpi")) {
      o.mpi = true;
      continue;
    } else if (!strcmp(a, "--stats") || !strcmp(a, "--clear")) {
      o.cache_op = a;
      continue;
    } else if (!strcmp(a, "--specialize") || !strcmp(a, "--time-passes") || !strcmp(a, "--verbose")) {
      *(a[2] == 's' ? &o.specialize : a[2] == 't' ? &o.time_passes : &o.verbose) = true;
      continue;
    } else if (run && o.file) {
      // After the script, what nnc does not take is the program's (it checks them).
      o.prog_argv[o.prog_argc++] = (char *)a;
      continue;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      exit(0);
    } else if (a[0] == '-' && a[1]) {
      diag_fatal("unknown option '%s' (see nnc --help)", a);
    } else if (!o.file) {
      o.file = a;
      continue;
    } else {
      diag_fatal("unexpected argument '%s': one .nn file at a time", a);
    }
    if (i + 1 >= argc) diag_fatal("option '%s' needs a value", a);
    *slot = argv[++i];
    // The program reads its data at run time too.
    if (run && slot == &o.data_dir) {
      o.prog_argv[o.prog_argc++] = "--data-dir";
      o.prog_argv[o.prog_argc++] = argv[i];
    }
  }
  if (run && o.out) diag_fatal("'run' takes no -o: it runs the script (use 'nnc build' for a program)");
  o.prog_argv[0] = xprintf("nnc run %s", o.file ? o.file : "");
  o.prog_argv[o.prog_argc] = NULL;
  bool no_file = !strcmp(o.command, "devices") || !strcmp(o.command, "cache");
  if (no_file && o.file) diag_fatal("'%s' takes no file", o.command);
  if (o.cache_op && strcmp(o.command, "cache")) diag_fatal("'%s' is an option of 'nnc cache'", o.cache_op);
  if (!o.file && !no_file) diag_fatal("'%s' needs a .nn file (see nnc --help)", o.command);
  if (!o.data_dir) o.data_dir = getenv("NNC_DATA_DIR");
  return o;
}

// Front end: parse and check; exits with status 1 after user errors.
static Program *front_end(const Options *o, Source *src) {
  *src = read_source(o->file);
  diag_init(src);
  Stmt *stmts = parse_source(src);
  if (!stmts) {
    // parse_source reports why it returns NULL (including empty files); saying
    // nothing would be nnc's bug.
    if (diag_error_count() == 0) internal_error("parse", "parser failed without a message");
    exit(1);
  }
  Program *p = sema_check(stmts, src, o->data_dir);
  if (!p) exit(1);
  if (p->n_layers == 0 && strcmp(o->command, "check"))
    diag_fatal("'%s': the model has no input shape; give the first layer input_shape= or start with keras.Input(shape=...)",
               o->file);
  return p;
}

// `nnc cache --stats|--clear`: the compiled-code cache.
static int cache_command(const Options *o) {
  if (o->cache_op && !strcmp(o->cache_op, "--clear")) return nn_cache_clear(stdout) == 0 ? 0 : 1;
  return nn_cache_stats(stdout) == 0 ? 0 : 1;
}

// `nnc devices`: the OpenCL runtime's listing.
static int device_command(const Options *o) {
#ifdef NNC_HAVE_OPENCL
  return nn_cl_list_devices(stdout);
#else
  diag_fatal("this nnc was built without OpenCL (install ocl-icd-opencl-dev and rebuild)");
#endif
}

// nnc bench's front end (bench.c parses its own options).
static Program *load_for_bench(const char *file, const char *data_dir) {
  static Source src;
  Options o = {.command = "bench", .file = file, .data_dir = data_dir};
  return front_end(&o, &src);
}

static TargetKind target_of(const Options *o) {
  if (!strcmp(o->target, "opencl")) return TARGET_OPENCL;
  if (strcmp(o->target, "c")) diag_fatal("unknown target '%s'; targets: c, opencl", o->target);
  return TARGET_C;
}

// `nnc run`: options checked and threads set up before any work, as a built program
// does first; then the stages, each timed with --time-passes.
static int run_command(const Options *o, char **argv) {
  TargetKind target = target_of(o);
  // mpirun starts the program N times; that is a built program's job.
  if (o->mpi) diag_fatal("'run' does not take --mpi: use 'nnc build --mpi FILE -o PROG' and 'mpirun -np N PROG'");
#ifndef NNC_HAVE_OPENCL
  if (target == TARGET_OPENCL) diag_fatal("this nnc was built without OpenCL, so it cannot run OpenCL programs");
#endif
  nn_options opt;
  nn_parse_options(&opt, o->prog_argc, o->prog_argv);
  // May execute nnc again with OMP_WAIT_POLICY=passive (runtime/sys.c), so before any
  // work; the model's main() then finds it set. Its --json line is the model's to print.
  opt.json = false;
  nn_start_threads(&opt, argv);
  Source src;
  double t0 = nn_now();
  Program *p = front_end(o, &src);
  time_stage("parse and check", t0);
  t0 = nn_now();
  Graph *g = pipeline_run(p, NULL);
  time_stage("passes", t0);
  if (memory_check_env(p, g) != 0) return 1;
  return run_program(p, g, target, o->prog_argc, o->prog_argv);
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "bench")) return bench_main(argc, argv, load_for_bench);
  Options o = parse_args(argc, argv);
  o.passes.target = target_of(&o);
  pipeline_set_options(o.passes);
  const char *debug = getenv("NNC_DEBUG");
  set_time_passes(o.time_passes || (debug && *debug && strcmp(debug, "0")));
  set_verbose(o.verbose);
  Source src;
  if (!strcmp(o.command, "check")) {
    Program *p = front_end(&o, &src);
    print_summary(stdout, p);
    return 0;
  }
  if (!strcmp(o.command, "graph")) {
    int stage = pipeline_stage(o.stage);
    if (stage < 0) {
      const char *list = pipeline_stage_name(0);
      for (int i = 1; pipeline_stage_name(i); i++) list = xprintf("%s, %s", list, pipeline_stage_name(i));
      diag_fatal("unknown stage '%s'; stages: %s", o.stage, list);
    }
    Program *p = front_end(&o, &src);
    if (stage > 0 && !p->compiled)
      diag_fatal("--stage %s needs model.compile(...) in the script: there is no loss to differentiate", o.stage);
    Graph *g = pipeline_run(p, o.stage);
    FILE *out = stdout;
    if (o.out && !(out = fopen(o.out, "w"))) diag_fatal("cannot write '%s': %s", o.out, strerror(errno));
    graph_dot(g, out);
    if (out != stdout && fclose(out) != 0) diag_fatal("cannot write '%s'", o.out);
    return 0;
  }
  if (!strcmp(o.command, "emit") || !strcmp(o.command, "build")) {
    bool emit = !strcmp(o.command, "emit");
    TargetKind target = target_of(&o);
    if (!o.out) diag_fatal("'%s' needs -o %s", o.command, emit ? "DIR" : "PROG");
#ifndef NNC_HAVE_OPENCL
    // The sources can be written anywhere; a program needs the OpenCL headers and loader.
    if (target == TARGET_OPENCL && !emit)
      diag_fatal("this nnc was built without OpenCL, so it cannot build OpenCL programs "
                 "(install ocl-icd-opencl-dev and opencl-headers, then rebuild nnc); 'nnc emit' still works");
#endif
    double t0 = nn_now();
    Program *p = front_end(&o, &src);
    p->mpi = o.mpi;
    time_stage("parse and check", t0);
    t0 = nn_now();
    Graph *g = pipeline_run(p, NULL);
    time_stage("passes", t0);
    int rc = emit ? emit_to_dir(p, g, target, o.out)
                  : build_program(p, g, target, o.out, o.cflags, getenv("CC"), o.specialize);
    if (rc == 0 && !emit) memory_report(stdout, p, g);
    return rc == 0 ? 0 : 1;
  }
  if (!strcmp(o.command, "run")) return run_command(&o, argv);
  if (!strcmp(o.command, "cache")) return cache_command(&o);
  if (!strcmp(o.command, "devices")) return device_command(&o);
  static const char *const commands[] = {"check", "graph", "emit", "build", "run", "bench", "devices", "cache"};
  const char *best = diag_closest(o.command, commands, 8);
  diag_fatal("unknown command '%s'%s", o.command, best ? xprintf("; did you mean '%s'?", best) : " (see nnc --help)");
}
