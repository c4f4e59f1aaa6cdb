// sys.c — the clock and the kernel thread count.
#include "nn.h"

#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

double nn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void nn_set_threads(int n) {
#ifdef _OPENMP
  // 0 means all cores: OpenMP's own default (which also honours OMP_NUM_THREADS).
  if (n > 0)
    omp_set_num_threads(n);
#else
  (void)n;
#endif
}
