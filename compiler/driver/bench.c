// bench.c — `nnc bench`: the generated train step, kernel by kernel.
//
// Needs: a compiled model (a loss to train). For each variant (a target, a batch size,
// fusion, buffer reuse, a layout choice) it builds the model as
// `nnc build` does, with per-kernel timers (emit_profile) and a bench main() instead of
// the script's, runs it on synthetic data, and reads back its "key value" lines
// (runtime/profile.c). The graph the variant was built from gives each kernel's op,
// shape, layout and cost (the op table's cost column). Guarantees: a table (or CSV, or
// JSON) with one row per train-step kernel and the step's totals per variant; with
// --svg a roofline of the kernels against the FMA peak and bandwidth the bench program
// measured on the same threads. The temporary directory is removed.
#include "nnc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] =
    "usage: nnc bench FILE.nn [--target c|opencl|c,opencl] [--batch-size N[,N...]] [--fuse on,off,no-NAME]\n"
    "                 [--reuse on|off|on,off] [--layout auto|nhwc|packed|blocked|cols[,...]]\n"
    "                 [--csv | --json] [--svg out.svg] [--steps N] [--min-time S] [--threads N]\n"
    "                 [--data-dir DIR]\n"
    "Builds the model with a timer around each kernel of its train step, trains on\n"
    "synthetic data and prints per-kernel medians. Comma lists compare variants side by\n"
    "side (every target x every batch size x every pass setting), with a ratio per kernel\n"
    "against the first. --fuse off: no fusion (nnc build --no-fuse); no-NAME[+NAME]: every\n"
    "fusion but those (epilogue, gradient, bias, softmax, elementwise, updates, pool, trim); --reuse off:\n"
    "every buffer its own memory (nnc build --no-reuse); --layout: how contractions reach\n"
    "their weights (nnc build --layout=...; chosen for the script's batch size).\n";

// One way of building and running the model. The pass switches are PassOptions, so a
// new pass's switch (fusion, a layout) is a value list in BenchOptions and a loop in
// make_variants; run_variant hands them to the pipeline.
typedef struct Variant {
  TargetKind target;
  int batch;
  PassOptions passes;
  const char *name;        // "c b32", "c b32 no-reuse": how tables and legends name it
  const char *fuse;        // "", "no-fuse", "no-softmax": the fusion setting, for file names
} Variant;

// What one variant's run measured, with the graph that was built for it.
typedef struct Result {
  Graph *g;
  const Node **kernels;    // the train step's kernels, in the timers' order
  int n_kernels;
  double *kernel_s;        // median seconds per kernel
  int threads, steps;
  double step_s, outside_s, arena_bytes, rss_bytes, peak_gflops, bandwidth_gbs;
} Result;

typedef struct BenchOptions {
  const char *file, *data_dir, *svg, *targets, *batches, *fuse, *reuse, *layouts, *steps, *min_time, *threads;
  bool csv, json;
} BenchOptions;

static BenchOptions parse_bench_args(int argc, char **argv) {
  BenchOptions o = {.targets = "c", .batches = "32", .fuse = "on", .reuse = "on", .min_time = "2"};
  bool layouts_given = false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "--csv")) o.csv = true;
    else if (!strcmp(a, "--json")) o.json = true;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) fputs(usage, stdout), exit(0);
    else if (!strcmp(a, "--target")) slot = &o.targets;
    else if (!strcmp(a, "--batch-size")) slot = &o.batches;
    else if (!strcmp(a, "--reuse")) slot = &o.reuse;
    else if (!strcmp(a, "--fuse")) slot = &o.fuse;
    else if (!strcmp(a, "--layout")) slot = &o.layouts, layouts_given = true;
    else if (!strcmp(a, "--svg")) slot = &o.svg;
    else if (!strcmp(a, "--steps")) slot = &o.steps;
    else if (!strcmp(a, "--min-time")) slot = &o.min_time;
    else if (!strcmp(a, "--threads")) slot = &o.threads;
    else if (!strcmp(a, "--data-dir")) slot = &o.data_dir;
    else if (a[0] == '-' && a[1]) diag_fatal("unknown option '%s' of nnc bench (see nnc bench --help)", a);
    else if (!o.file) o.file = a;
    else diag_fatal("unexpected argument '%s': one .nn file at a time", a);
    if (!slot) continue;
    if (i + 1 >= argc) diag_fatal("option '%s' needs a value", a);
    *slot = argv[++i];
  }
  if (!o.file) diag_fatal("'bench' needs a .nn file (see nnc bench --help)");
  if (o.csv && o.json) diag_fatal("--csv and --json: choose one");
  if (!o.data_dir) o.data_dir = getenv("NNC_DATA_DIR");
  if (!layouts_given) o.layouts = NULL;   // the default, and not named in the variants
  return o;
}

static long parse_count(const char *what, const char *text, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (!*text || *end || errno || v < lo || v > hi) diag_fatal("%s: expected an integer in [%ld, %ld], got '%s'", what, lo, hi, text);
  return v;
}

// Every target x every batch size x every pass setting, in that nesting, in the order given.
static int make_variants(const BenchOptions *o, Variant **out) {
  char *targets = xstrdup(o->targets), *save1, *save2, *save3;
  Variant *v = xalloc(64 * sizeof *v);
  int n = 0;
  for (char *t = strtok_r(targets, ",", &save1); t; t = strtok_r(NULL, ",", &save1)) {
    TargetKind kind = TARGET_C;
    if (!strcmp(t, "opencl")) kind = TARGET_OPENCL;
    else if (strcmp(t, "c")) diag_fatal("unknown target '%s'; targets: c, opencl", t);
#ifndef NNC_HAVE_OPENCL
    if (kind == TARGET_OPENCL) diag_fatal("this nnc was built without OpenCL, so it cannot bench the OpenCL target");
#endif
    char *batches = xstrdup(o->batches);
    for (char *b = strtok_r(batches, ",", &save2); b; b = strtok_r(NULL, ",", &save2)) {
      int batch = (int)parse_count("--batch-size", b, 1, 1 << 20);
      char *fuses = xstrdup(o->fuse), *save4;
      for (char *f = strtok_r(fuses, ",", &save4); f; f = strtok_r(NULL, ",", &save4)) {
        // on, off, or no-NAME[+NAME...]: every fusion but those (epilogue, gradient,
        // softmax, elementwise, updates).
        PassOptions fused = {.no_fuse = !strcmp(f, "off")};
        char *names = xstrdup(f);
        for (char *c = names; *c; c++) *c = *c == '+' ? ',' : *c;
        bool named = !strncmp(f, "no-", 3) && pass_options_parse_no_fuse(&fused, names + 3) == 0;
        if (strcmp(f, "on") && strcmp(f, "off") && !named)
          diag_fatal("--fuse: expected on, off or no-NAME (NAME: epilogue, gradient, bias, softmax, elementwise, updates, pool, trim), got '%s'",
                     f);
        char *reuses = xstrdup(o->reuse);
        for (char *r = strtok_r(reuses, ",", &save3); r; r = strtok_r(NULL, ",", &save3)) {
          if (strcmp(r, "on") && strcmp(r, "off")) diag_fatal("--reuse: expected on, off or on,off, got '%s'", r);
          char *layouts = xstrdup(o->layouts ? o->layouts : "auto"), *save5;
          for (char *l = strtok_r(layouts, ",", &save5); l; l = strtok_r(NULL, ",", &save5)) {
            int layout = layout_choice(l);
            if (layout < 0) diag_fatal("--layout: expected auto, nhwc, packed or cols (or a list), got '%s'", l);
            if (n == 64) diag_fatal("at most 64 variants in one run");
            PassOptions passes = fused;
            passes.no_reuse = !strcmp(r, "off");
            passes.layout = layout;
            passes.target = kind;
            v[n++] = (Variant){kind, batch, passes,
                               xprintf("%s b%d%s%s%s%s", t, batch,
                                       passes.no_fuse ? " no-fuse" : named ? xprintf(" %s", f) : "",
                                       passes.no_reuse ? " no-reuse" : "", o->layouts ? " " : "", o->layouts ? l : ""),
                               named ? f : passes.no_fuse ? "no-fuse" : ""};
          }
        }
      }
    }
  }
  if (n == 0) diag_fatal("no variant to run: --target and --batch-size need at least one value each");
  *out = v;
  return n;
}

// Runs argv; its stdout comes back as text (stderr passes through). NULL if it failed.
static char *run_captured(char **argv) {
  int fds[2];
  if (pipe(fds) < 0) return NULL;
  pid_t pid = fork();
  if (pid < 0) return NULL;
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]), close(fds[1]);
    execv(argv[0], argv);
    fprintf(stderr, "nnc: error: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0, cap = 4096;
  char *text = xalloc(cap);
  for (;;) {
    if (len + 1 >= cap) {
      char *bigger = xalloc(cap * 2);
      memcpy(bigger, text, len);
      text = bigger, cap *= 2;
    }
    ssize_t got = read(fds[0], text + len, cap - len - 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    len += got;
  }
  close(fds[0]);
  text[len] = 0;
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return NULL;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? text : NULL;
}

static void parse_result(const char *text, Result *r, const char *exe) {
  for (const char *line = text; *line;) {
    char key[32];
    int k;
    double v;
    if (sscanf(line, "kernel %d %lf", &k, &v) == 2) {
      if (k < 0 || k >= r->n_kernels) internal_error("bench", "%s reported kernel %d of %d", exe, k, r->n_kernels);
      r->kernel_s[k] = v;
    } else if (sscanf(line, "%31s %lf", key, &v) == 2) {
      if (!strcmp(key, "threads")) r->threads = (int)v;
      else if (!strcmp(key, "steps")) r->steps = (int)v;
      else if (!strcmp(key, "step_s")) r->step_s = v;
      else if (!strcmp(key, "outside_s")) r->outside_s = v;
      else if (!strcmp(key, "arena_bytes")) r->arena_bytes = v;
      else if (!strcmp(key, "rss_bytes")) r->rss_bytes = v;
      else if (!strcmp(key, "peak_gflops")) r->peak_gflops = v;
      else if (!strcmp(key, "bandwidth_gbs")) r->bandwidth_gbs = v;
    }
    const char *nl = strchr(line, '\n');
    line = nl ? nl + 1 : line + strlen(line);
  }
  if (r->steps <= 0 || r->step_s <= 0) internal_error("bench", "%s printed no step time:\n%s", exe, text);
}

// The program of a variant: one per target and pass setting (the batch is an option).
static const char *bench_exe(const char *dir, const Variant *v) {
  return xprintf("%s/bench-%s%s%s%s-%s", dir, v->target == TARGET_OPENCL ? "opencl" : "c", *v->fuse ? "-" : "", v->fuse,
                 v->passes.no_reuse ? "-no-reuse" : "", layout_choice_name(v->passes.layout));
}

// Builds (once per target) and runs one variant. The roofline is measured in the first run.
static int run_variant(const Program *p, const BenchOptions *o, const Variant *v, const char *dir, bool measure,
                       Result *r) {
  pipeline_set_options(v->passes);
  r->g = pipeline_run(p, NULL);
  r->n_kernels = train_step_kernels(r->g, &r->kernels);
  r->kernel_s = xalloc((r->n_kernels + 1) * sizeof *r->kernel_s);
  // One program per target and pass setting; the batch is a run-time option.
  const char *exe = bench_exe(dir, v);
  if (access(exe, X_OK) != 0) {
    emit_profile = true;
    int rc = build_program(p, r->g, v->target, exe, NULL, getenv("CC"), false);
    emit_profile = false;
    if (rc < 0) return -1;
  }
  char *argv[16];
  int argc = 0;
  argv[argc++] = (char *)exe;
  argv[argc++] = "--batch-size";
  argv[argc++] = xprintf("%d", v->batch);
  argv[argc++] = "--min-time";
  argv[argc++] = (char *)o->min_time;
  if (o->steps) argv[argc++] = "--steps", argv[argc++] = (char *)o->steps;
  if (o->threads) argv[argc++] = "--threads", argv[argc++] = (char *)o->threads;
  if (!measure) argv[argc++] = "--no-machine";
  argv[argc] = NULL;
  fprintf(stderr, "nnc bench: %s ...\n", v->name);
  char *text = run_captured(argv);
  if (!text) {
    fprintf(stderr, "nnc: error: the bench program for %s failed\n", v->name);
    return -1;
  }
  parse_result(text, r, exe);
  return 0;
}

//
// What a kernel row says
//
// An update node has no shape of its own: it shows the weight it changes.
static const char *shape_text(const Node *nd, int batch) {
  if (nd->shape.rank == 0 && !nd->batched && nd->in[0]) nd = nd->in[0];
  const char *s = nd->batched ? xprintf("%d", batch) : "";
  for (int i = 0; i < nd->shape.rank; i++) s = xprintf("%s%s%lld", s, *s ? "x" : "", (long long)nd->shape.dim[i]);
  return *s ? s : "1";
}

// Graph ops one kernel does: a contraction with its epilogue (fuse.c) does three.
static int ops_fused(const Node *nd) {
  if (nd->n_chain) return nd->n_chain;       // fuse_elementwise.c
  if (nd->n_members) return nd->n_members;   // fuse_updates.c
  bool contraction = nd->op == OP_matmul || nd->op == OP_conv2d;
  bool bias_grad = nd->grad && op_info[nd->op].cls != FC_LOSS;   // fuse_bias_grad.c
  return 1 + (contraction && nd->in[2]) + (nd->fused_act != OP_none) + bias_grad;
}

static const char *layout_text(const Node *nd) { return node_layout_name(nd); }

typedef struct Row {
  const Node *nd;
  double flops, bytes, seconds, gflops, gbs, share;
} Row;

static Row kernel_row(const Result *r, const Variant *v, int k) {
  Row row = {.nd = r->kernels[k], .seconds = r->kernel_s[k]};
  node_cost(row.nd, v->batch, &row.flops, &row.bytes);
  row.gflops = row.seconds > 0 ? row.flops / row.seconds / 1e9 : 0;
  row.gbs = row.seconds > 0 ? row.bytes / row.seconds / 1e9 : 0;
  row.share = row.seconds / r->step_s;
  return row;
}

// The same kernel's index in another variant's result (matched by name), or -1.
static int find_kernel(const Result *r, const char *name) {
  for (int k = 0; k < r->n_kernels; k++)
    if (!strcmp(r->kernels[k]->name, name)) return k;
  return -1;
}

// Speed of variant `b` against `a` per sample: > 1 means b is faster.
static double ratio(double a_s, int a_batch, double b_s, int b_batch) {
  return a_s > 0 && b_s > 0 ? (a_s / a_batch) / (b_s / b_batch) : 0;
}

static double mib(double bytes) { return bytes / (1 << 20); }

static void print_memory(const Result *r, int batch) {
  const Plan *pl = r->g->plan;
  double w = pl->weights_elems * 4.0, slots = pl->slots_elems * 4.0;
  double fixed = pl->fixed_elems * 4.0 - w - slots, per_sample = pl->batch_elems * 4.0 * batch;
  double work = r->arena_bytes - w - slots - fixed - per_sample;
  printf("memory: arena %.2f MiB (weights %.2f, optimizer %.2f, other fixed %.2f, per-sample %.2f, workspace %.2f), "
         "max RSS %.1f MiB",
         mib(r->arena_bytes), mib(w), mib(slots), mib(fixed), mib(per_sample), mib(work > 0 ? work : 0),
         mib(r->rss_bytes));
  if (pl->reused)
    printf("; other fixed + per-sample without reuse: %.2f MiB",
           mib(pl->fixed_unshared * 4.0 - w - slots + pl->batch_unshared * 4.0 * batch));
  printf("\n");
}

static void print_table(const BenchOptions *o, const Variant *v, const Result *r, int nv) {
  const Result *r0 = &r[0];
  if (nv == 1) {
    printf("%s: %s, %d threads, median of %d steps on synthetic data\n", o->file, v[0].name, r0->threads, r0->steps);
    printf("%-28s %-20s %5s %-16s %-6s %10s %9s %10s %8s %7s %6s\n", "kernel", "op", "fused", "shape", "layout",
           "MFLOP", "MB", "median_us", "GFLOP/s", "GB/s", "share");
    for (int k = 0; k < r0->n_kernels; k++) {
      Row row = kernel_row(r0, &v[0], k);
      printf("%-28s %-20s %5d %-16s %-6s %10.3f %9.3f %10.1f %8.2f %7.2f %5.1f%%\n", row.nd->name,
             op_info[row.nd->op].name, ops_fused(row.nd), shape_text(row.nd, v[0].batch), layout_text(row.nd), row.flops / 1e6,
             row.bytes / 1e6, row.seconds * 1e6, row.gflops, row.gbs, 100 * row.share);
    }
    printf("%-28s %-20s %5s %-16s %-6s %10s %9s %10.1f %8s %7s %5.1f%%\n", "(outside kernels)", "-", "-", "-", "-", "-",
           "-", r0->outside_s * 1e6, "-", "-", 100 * r0->outside_s / r0->step_s);
  } else {
    printf("%s: median of each variant's steps on synthetic data; ratio = speed per sample against %s\n", o->file,
           v[0].name);
    printf("%-28s %-20s", "kernel", "op");
    for (int i = 0; i < nv; i++) printf(" %12s%s", xprintf("%s us", v[i].name), i ? "  ratio" : "");
    printf("\n");
    for (int k = 0; k < r0->n_kernels; k++) {
      const Node *nd = r0->kernels[k];
      printf("%-28s %-20s %12.1f", nd->name, op_info[nd->op].name, r0->kernel_s[k] * 1e6);
      for (int i = 1; i < nv; i++) {
        int j = find_kernel(&r[i], nd->name);
        if (j < 0) printf(" %12s  %5s", "-", "-");
        else printf(" %12.1f  %5.2f", r[i].kernel_s[j] * 1e6, ratio(r0->kernel_s[k], v[0].batch, r[i].kernel_s[j], v[i].batch));
      }
      printf("\n");
    }
    // Kernels the first variant does not have (another layout's pack nodes, unfused
    // bias and activation kernels): their time, no ratio.
    for (int i = 1; i < nv; i++)
      for (int k = 0; k < r[i].n_kernels; k++) {
        const Node *nd = r[i].kernels[k];
        bool seen = find_kernel(r0, nd->name) >= 0;
        for (int j = 1; j < i && !seen; j++) seen = find_kernel(&r[j], nd->name) >= 0;
        if (seen) continue;
        printf("%-28s %-20s %12s", nd->name, op_info[nd->op].name, "-");
        for (int j = 1; j < nv; j++) {
          int q = find_kernel(&r[j], nd->name);
          if (q < 0) printf(" %12s  %5s", "-", "-");
          else printf(" %12.1f  %5s", r[j].kernel_s[q] * 1e6, "");
        }
        printf("\n");
      }
  }
  for (int i = 0; i < nv; i++) {
    printf("%s: step %.3f ms, %.0f samples/s", v[i].name, r[i].step_s * 1e3, v[i].batch / r[i].step_s);
    if (i) printf(" (%.2fx)", ratio(r0->step_s, v[0].batch, r[i].step_s, v[i].batch));
    double flops = 0;
    for (int k = 0; k < r[i].n_kernels; k++) flops += kernel_row(&r[i], &v[i], k).flops;
    printf(", %.1f GFLOP/s", flops / r[i].step_s / 1e9);
    if (r0->peak_gflops > 0) printf(" (%.0f%% of the FMA peak)", 100 * flops / r[i].step_s / 1e9 / r0->peak_gflops);
    printf(", %d threads\n", r[i].threads);
    print_memory(&r[i], v[i].batch);
  }
  if (r0->peak_gflops > 0)
    printf("machine: FMA peak %.1f GFLOP/s, triad bandwidth %.1f GB/s on %d threads\n", r0->peak_gflops,
           r0->bandwidth_gbs, r0->threads);
}

static void print_csv(const Variant *v, const Result *r, int nv) {
  printf("variant,target,batch,threads,kernel,op,fused,shape,layout,flops,bytes,median_s,gflops,gbs,share,ratio\n");
  for (int i = 0; i < nv; i++) {
    const char *target = v[i].target == TARGET_OPENCL ? "opencl" : "c";
    for (int k = 0; k < r[i].n_kernels; k++) {
      Row row = kernel_row(&r[i], &v[i], k);
      int j = find_kernel(&r[0], row.nd->name);
      double q = j < 0 ? 0 : ratio(r[0].kernel_s[j], v[0].batch, row.seconds, v[i].batch);
      printf("%s,%s,%d,%d,%s,%s,%d,%s,%s,%.0f,%.0f,%.9g,%.4f,%.4f,%.5f,%.4f\n", v[i].name, target, v[i].batch,
             r[i].threads, row.nd->name, op_info[row.nd->op].name, ops_fused(row.nd), shape_text(row.nd, v[i].batch),
             layout_text(row.nd), row.flops, row.bytes, row.seconds, row.gflops, row.gbs, row.share, q);
    }
    printf("%s,%s,%d,%d,(step),total,,,,,,%.9g,,,1,%.4f\n", v[i].name, target, v[i].batch, r[i].threads, r[i].step_s,
           ratio(r[0].step_s, v[0].batch, r[i].step_s, v[i].batch));
  }
}

// A JSON string: quotes, backslashes and control bytes escaped.
static void json_string(const char *s) {
  putchar('"');
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') printf("\\%c", *c);
    else if (*c < 0x20) printf("\\u%04x", *c);
    else putchar(*c);
  }
  putchar('"');
}

static void print_json(const BenchOptions *o, const Variant *v, const Result *r, int nv) {
  printf("{\"file\": ");
  json_string(o->file);
  printf(", \"machine\": {\"peak_gflops\": %.4f, \"bandwidth_gbs\": %.4f, \"threads\": %d},\n \"variants\": [",
         r[0].peak_gflops, r[0].bandwidth_gbs, r[0].threads);
  for (int i = 0; i < nv; i++) {
    printf("%s\n  {\"name\": \"%s\", \"target\": \"%s\", \"batch\": %d, \"threads\": %d, \"steps\": %d, "
           "\"step_s\": %.9g, \"samples_per_s\": %.3f, \"ratio\": %.4f, \"arena_bytes\": %.0f, \"rss_bytes\": %.0f,\n"
           "   \"kernels\": [",
           i ? "," : "", v[i].name, v[i].target == TARGET_OPENCL ? "opencl" : "c", v[i].batch, r[i].threads,
           r[i].steps, r[i].step_s, v[i].batch / r[i].step_s, ratio(r[0].step_s, v[0].batch, r[i].step_s, v[i].batch),
           r[i].arena_bytes, r[i].rss_bytes);
    for (int k = 0; k < r[i].n_kernels; k++) {
      Row row = kernel_row(&r[i], &v[i], k);
      int j = find_kernel(&r[0], row.nd->name);
      printf("%s\n    {\"kernel\": \"%s\", \"op\": \"%s\", \"fused\": %d, \"shape\": \"%s\", \"layout\": \"%s\", "
             "\"flops\": %.0f, \"bytes\": %.0f, \"median_s\": %.9g, \"gflops\": %.4f, \"gbs\": %.4f, \"share\": %.5f, "
             "\"ratio\": %.4f}",
             k ? "," : "", row.nd->name, op_info[row.nd->op].name, ops_fused(row.nd), shape_text(row.nd, v[i].batch),
             layout_text(row.nd), row.flops, row.bytes, row.seconds, row.gflops, row.gbs, row.share,
             j < 0 ? 0 : ratio(r[0].kernel_s[j], v[0].batch, row.seconds, v[i].batch));
    }
    printf("]}");
  }
  printf("\n]}\n");
}

//
// The roofline: log-log, FLOP per byte against GFLOP/s; the roof is min(peak, bw * x).
//
enum { SVG_W = 760, SVG_H = 500, SVG_L = 70, SVG_R = 180, SVG_T = 30, SVG_B = 50 };

typedef struct Axes { double x0, x1, y0, y1; } Axes;

static double px(const Axes *a, double x) { return SVG_L + (log10(x) - a->x0) / (a->x1 - a->x0) * (SVG_W - SVG_L - SVG_R); }
static double py(const Axes *a, double y) { return SVG_H - SVG_B - (log10(y) - a->y0) / (a->y1 - a->y0) * (SVG_H - SVG_T - SVG_B); }

static int write_svg(const char *path, const BenchOptions *o, const Variant *v, const Result *r, int nv) {
  static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  double peak = r[0].peak_gflops, bw = r[0].bandwidth_gbs;
  if (peak <= 0 || bw <= 0) {
    fprintf(stderr, "nnc: error: no machine measurement for the roofline\n");
    return -1;
  }
  Axes a = {-2, 3, floor(log10(peak)) - 4, ceil(log10(peak * 1.5))};
  FILE *out = fopen(path, "w");
  if (!out) {
    fprintf(stderr, "nnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", SVG_W, SVG_H);
  fprintf(out, "<text x=\"%d\" y=\"18\" font-size=\"13\">roofline: ", SVG_L);
  for (const char *c = o->file; *c; c++) fputs(*c == '<' ? "&lt;" : *c == '&' ? "&amp;" : (char[2]){*c, 0}, out);
  fprintf(out, " (FMA peak %.1f GFLOP/s, triad %.1f GB/s, %d threads)</text>\n", peak, bw, r[0].threads);
  // Decade grid and labels.
  for (int e = (int)a.x0; e <= (int)a.x1; e++)
    fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%d\" "
                 "text-anchor=\"middle\">%g</text>\n",
            px(&a, pow(10, e)), SVG_T, px(&a, pow(10, e)), SVG_H - SVG_B, px(&a, pow(10, e)), SVG_H - SVG_B + 14, pow(10, e));
  for (int e = (int)a.y0; e <= (int)a.y1; e++)
    fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
                 "text-anchor=\"end\">%g</text>\n",
            SVG_L, py(&a, pow(10, e)), SVG_W - SVG_R, py(&a, pow(10, e)), SVG_L - 4, py(&a, pow(10, e)) + 4, pow(10, e));
  fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">FLOP per byte (op table cost)</text>\n",
          (SVG_L + SVG_W - SVG_R) / 2, SVG_H - 12);
  fprintf(out, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">GFLOP/s</text>\n",
          (SVG_T + SVG_H - SVG_B) / 2, (SVG_T + SVG_H - SVG_B) / 2);
  // The roof: bandwidth-bound to the ridge point, then flat at the peak.
  double ridge = peak / bw, xl = pow(10, a.x0), xr = pow(10, a.x1);
  double yl = bw * xl > pow(10, a.y0) ? bw * xl : pow(10, a.y0), xs = yl / bw;
  fprintf(out, "<polyline fill=\"none\" stroke=\"black\" stroke-width=\"2\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
          px(&a, xs), py(&a, yl), px(&a, ridge), py(&a, peak), px(&a, xr), py(&a, peak));
  for (int i = 0; i < nv; i++) {
    const char *color = colors[i % 6];
    for (int k = 0; k < r[i].n_kernels; k++) {
      Row row = kernel_row(&r[i], &v[i], k);
      if (row.flops <= 0 || row.bytes <= 0 || row.gflops <= 0) continue;
      double ai = row.flops / row.bytes, g = row.gflops;
      if (ai < xl) ai = xl;
      if (ai > xr) ai = xr;
      if (g < pow(10, a.y0)) g = pow(10, a.y0);
      fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.7\"><title>%s %s: %.2f "
                   "GFLOP/s, %.2f FLOP/B, %.1f%% of the step</title></circle>\n",
              px(&a, ai), py(&a, g), 3 + 6 * sqrt(row.share), color, v[i].name, row.nd->name, row.gflops,
              row.flops / row.bytes, 100 * row.share);
    }
    fprintf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"5\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
            SVG_W - SVG_R + 16, SVG_T + 10 + 18 * i, color, SVG_W - SVG_R + 26, SVG_T + 14 + 18 * i, v[i].name);
  }
  fprintf(out, "<text x=\"%d\" y=\"%d\">area: share of the step</text>\n", SVG_W - SVG_R + 10, SVG_T + 20 + 18 * nv);
  fprintf(out, "</svg>\n");
  return fclose(out) == 0 ? 0 : -1;
}

static void remove_bench_dir(const char *dir, const Variant *v, int nv) {
  for (int i = 0; i < nv; i++) unlink(bench_exe(dir, &v[i]));
  rmdir(dir);
}

int bench_main(int argc, char **argv, Program *(*load)(const char *file, const char *data_dir)) {
  BenchOptions o = parse_bench_args(argc, argv);
  if (o.steps) parse_count("--steps", o.steps, 1, 100000);
  if (o.threads) parse_count("--threads", o.threads, 1, 4096);
  char *end;
  double min_time = strtod(o.min_time, &end);
  if (!*o.min_time || *end || !(min_time >= 0 && min_time <= 3600))
    diag_fatal("--min-time: expected seconds in [0, 3600], got '%s'", o.min_time);
  Variant *v;
  int nv = make_variants(&o, &v);
  Program *p = load(o.file, o.data_dir);
  if (!p->compiled) diag_fatal("'%s': nnc bench times the train step; the script has no model.compile(...)", o.file);
  char *dir = xprintf("%s/nnc-bench-XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) diag_fatal("cannot create a temporary directory: %s", strerror(errno));
  Result *r = xalloc(nv * sizeof *r);
  int rc = 0;
  for (int i = 0; i < nv && rc == 0; i++) rc = run_variant(p, &o, &v[i], dir, i == 0, &r[i]);
  remove_bench_dir(dir, v, nv);
  if (rc < 0) return 1;
  if (o.csv) print_csv(v, r, nv);
  else if (o.json) print_json(&o, v, r, nv);
  else print_table(&o, v, r, nv);
  if (o.svg && write_svg(o.svg, &o, v, r, nv) < 0) return 1;
  return fflush(stdout) == 0 ? 0 : 1;
}
