// profile.c — the main() of a program built by `nnc bench`: runs the train step on
// synthetic data, a few steps to warm up, then until --steps or --min-time, and prints
// per-kernel medians as "key value" lines that nnc bench turns into its table (step_s:
// the median of untimed steps; kernel and outside_s: of timed ones):
//
//   threads 2 / batch 32 / steps 40 / step_s 0.0043 / outside_s 0.00002 / kernel 3 0.00012 / ...
//   arena_bytes N / rss_bytes N / peak_gflops G / bandwidth_gbs B
//
// Synthetic data: inputs uniform in [0, 1), labels valid for the loss (class indices,
// one-hot rows, 0/1, or uniform targets). Kernel times do not depend on the values.
#include "rt.h"
#include "nn_profile.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void synthetic_labels(const nn_model *m, float *y, int n, nn_rng *rng) {
  int64_t w = m->label_width, classes = m->out_width;
  for (int i = 0; i < n; i++) {
    float *row = y + (int64_t)i * w;
    int64_t c = (int64_t)(nn_rng_uniform(rng) * (double)classes);
    switch (m->loss) {
    case NN_LOSS_SPARSE_CCE: row[0] = (float)c; break;
    case NN_LOSS_CCE:
      memset(row, 0, sizeof(float) * w);
      row[c < w ? c : 0] = 1;
      break;
    case NN_LOSS_BCE:
      for (int64_t j = 0; j < w; j++) row[j] = nn_rng_uniform(rng) < 0.5 ? 0.0f : 1.0f;
      break;
    default:
      for (int64_t j = 0; j < w; j++) row[j] = (float)nn_rng_uniform(rng);
    }
  }
}

static double number_arg(const char *opt, const char *text, double lo, double hi) {
  char *end;
  double v = strtod(text, &end);
  if (!*text || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "error: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, text);
    exit(1);
  }
  return v;
}

int nn_bench_main(int argc, char **argv, const nn_profile *p) {
  // Our own options first; the rest are the usual program options.
  int steps = 0;
  double min_time = 2;
  bool machine = true;
  char **rest = calloc(argc + 1, sizeof *rest);
  int n_rest = 0;
  if (!rest) return rt_error("out of memory");
  rest[n_rest++] = argv[0];
  for (int i = 1; i < argc; i++) {
    bool has_value = i + 1 < argc;
    if (!strcmp(argv[i], "--steps") && has_value) steps = (int)number_arg("--steps", argv[++i], 0, 1e6);
    else if (!strcmp(argv[i], "--min-time") && has_value) min_time = number_arg("--min-time", argv[++i], 0, 3600);
    else if (!strcmp(argv[i], "--no-machine")) machine = false;
    else rest[n_rest++] = argv[i];
  }
  nn_options opt;
  nn_parse_options(&opt, n_rest, rest);
  nn_start_threads(&opt, argv);
  int batch = opt.batch_size > 0 ? (int)opt.batch_size : 32;
  nn_rng rng;
  nn_rng_seed(&rng, opt.seed_set ? opt.seed : 0);
  nn_model *m = p->create(batch, &opt);
  if (!m) return 1;
  if (!m->train_step) return rt_error("the model has no loss: nnc bench times the train step");
  m->init(m, &rng);

  float *x = malloc(sizeof(float) * batch * m->in_width + 1);
  float *y = malloc(sizeof(float) * batch * m->label_width + 1);
  int cap = steps > 0 ? steps : 1000;
  double *step_s = malloc(sizeof(double) * cap), *outside_s = malloc(sizeof(double) * cap);
  double *kernel_s = malloc(sizeof(double) * cap * (p->n_kernels + 1));
  if (!x || !y || !step_s || !outside_s || !kernel_s) return rt_error("out of memory");
  for (int64_t i = 0; i < (int64_t)batch * m->in_width; i++) x[i] = (float)nn_rng_uniform(&rng);
  synthetic_labels(m, y, batch, &rng);

  for (int i = 0; i < 3; i++) m->train_step(m, x, y, batch, &rng, NULL);  // caches, page faults
  // Timed and untimed steps alternate, so that load from other processes hits both:
  // the kernel times come from the timed ones, the step time from the untimed ones (a
  // timed step syncs after every kernel, which on OpenCL costs a round trip each).
  int done = 0;
  double started = nn_now();
  while (done < cap) {
    memset(p->seconds, 0, sizeof(double) * p->n_kernels);
    *p->timing = 1;
    double t0 = nn_now();
    m->train_step(m, x, y, batch, &rng, NULL);
    outside_s[done] = nn_now() - t0;
    for (int k = 0; k < p->n_kernels; k++) {
      kernel_s[(int64_t)k * cap + done] = p->seconds[k];
      outside_s[done] -= p->seconds[k];
    }
    *p->timing = 0;
    t0 = nn_now();
    m->train_step(m, x, y, batch, &rng, NULL);
    step_s[done] = nn_now() - t0;
    done++;
    if (steps == 0 && done >= 5 && nn_now() - started >= min_time) break;
  }

  printf("threads %d\nbatch %d\nsteps %d\n", opt.threads, batch, done);
  printf("step_s %.9g\noutside_s %.9g\n", median(step_s, done), median(outside_s, done));
  for (int k = 0; k < p->n_kernels; k++) printf("kernel %d %.9g\n", k, median(kernel_s + (int64_t)k * cap, done));
  printf("arena_bytes %zu\n", *p->arena_bytes);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("rss_bytes %lld\n", (long long)ru.ru_maxrss * 1024);
  if (machine) {
    double gflops, gbs;
    p->measure_machine(opt.threads > 0 ? opt.threads : 1, &gflops, &gbs);
    printf("peak_gflops %.6g\nbandwidth_gbs %.6g\n", gflops, gbs);
  }
  free(x), free(y), free(step_s), free(outside_s), free(kernel_s), free(rest);
  return fflush(stdout) == 0 ? 0 : 1;
}
