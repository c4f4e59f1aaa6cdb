// nn_profile.h — what a program built by `nnc bench` adds to the runtime: the per-kernel
// timers of its train step, a bench main() that runs the step repeatedly on synthetic
// data, and the machine's roofline (FMA peak, memory bandwidth) measured on the threads
// the step uses.
//
// Normal builds never include this file: their generated code has no timers. The
// measurement loops are static inline so that they are compiled with the program's
// -march=native, as the kernels are (the runtime library is built for any x86-64).
#ifndef NN_PROFILE_H
#define NN_PROFILE_H

#include "nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct nn_profile {
  int n_kernels;                 // the train step's kernels: forward, backward, updates
  const char *const *names;      // graph node names, in that order
  double *seconds;               // filled by the step: seconds per kernel since last reset
  int *timing;                   // 1: time each kernel (a sync after each); 0: run plainly
  size_t *arena_bytes;           // the model's arena (host or device), set by create
  nn_model *(*create)(int max_batch, const nn_options *opt);
  // GFLOP/s of a plain FMA loop and GB/s of a stream-like triad, on `threads` threads.
  void (*measure_machine)(int threads, double *gflops, double *gbytes_per_s);
} nn_profile;

// Options: --steps N (0: until --min-time seconds, at least 5 steps), --min-time S,
// --no-machine (skip the roofline measurement), and the usual --batch-size, --threads,
// --seed, --device. Prints "key value" lines (see runtime/profile.c); nnc bench reads them.
int nn_bench_main(int argc, char **argv, const nn_profile *p);

// The widest vector the program is compiled for (-march=native).
#ifdef __AVX512F__
enum { NN_PROF_LANES = 16 };
#else
enum { NN_PROF_LANES = 8 };
#endif
typedef float nn_prof_vec __attribute__((vector_size(NN_PROF_LANES * 4)));

// 12 independent accumulators, named so that they stay in registers, hide the FMA
// latency (4 cycles, 2 ports); the compiler contracts a * b + c into one FMA (GNU C's
// default -ffp-contract=fast).
static inline double nn_prof_fma_gflops(int threads) {
  const long iters = 20000000;
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = nn_now(), sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      nn_prof_vec a, b;
      for (int k = 0; k < NN_PROF_LANES; k++) a[k] = 0.999999f, b[k] = 1e-7f;
      nn_prof_vec c0 = a, c1 = a + b, c2 = c1 + b, c3 = c2 + b, c4 = c3 + b, c5 = c4 + b;
      nn_prof_vec c6 = c5 + b, c7 = c6 + b, c8 = c7 + b, c9 = c8 + b, c10 = c9 + b, c11 = c10 + b;
      for (long it = 0; it < iters; it++) {
        c0 = c0 * a + b, c1 = c1 * a + b, c2 = c2 * a + b, c3 = c3 * a + b;
        c4 = c4 * a + b, c5 = c5 * a + b, c6 = c6 * a + b, c7 = c7 * a + b;
        c8 = c8 * a + b, c9 = c9 * a + b, c10 = c10 * a + b, c11 = c11 * a + b;
      }
      nn_prof_vec all = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
      sink += all[0];
    }
    double t = nn_now() - t0;
    double g = 2.0 * NN_PROF_LANES * 12 * iters * threads / t / 1e9 + sink * 0;
    if (g > best) best = g;
  }
  return best;
}

// a = b + s * c over arrays far larger than the caches: 12 bytes moved per element.
static inline double nn_prof_triad_gbs(int threads) {
  const long n = 16L << 20;
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  if (!a || !b || !c) {
    free(a), free(b), free(c);
    return 0;
  }
#pragma omp parallel for num_threads(threads)
  for (long i = 0; i < n; i++) a[i] = 0, b[i] = 1, c[i] = 2;
  double best = 0;
  for (int rep = 0; rep < 4; rep++) {
    double t0 = nn_now();
#pragma omp parallel for num_threads(threads)
    for (long i = 0; i < n; i++) a[i] = b[i] + 0.5f * c[i];
    double t = nn_now() - t0, g = 12.0 * n / t / 1e9;
    if (g > best) best = g;
  }
  volatile float keep = a[n / 2];
  (void)keep;
  free(a), free(b), free(c);
  return best;
}

static inline void nn_measure_machine(int threads, double *gflops, double *gbytes_per_s) {
  *gflops = nn_prof_fma_gflops(threads);
  *gbytes_per_s = nn_prof_triad_gbs(threads);
}

#endif
