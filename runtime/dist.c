// dist.c — the training loop's view of data parallelism, with no MPI in it.
//
// One process: rank 0 of 1, and every function here is (nearly) a no-op. A program built
// with `nnc build --mpi` links libnnrt_mpi.a, whose runtime/mpi.c fills rt_dist in at
// start-up; libnnrt itself never references an MPI symbol, so programs built without
// --mpi do not depend on MPI.
#include "rt.h"

rt_dist_hooks rt_dist = {.rank = 0, .size = 1, .local_rank = 0, .local_size = 1};

// Keras's tf.distribute split of a global batch: rank r takes a contiguous share,
// the first n % size ranks one row more, so every row is trained exactly once.
void rt_dist_share(int64_t n, int64_t *first, int64_t *count) {
  int64_t base = n / rt_dist.size, extra = n % rt_dist.size, r = rt_dist.rank;
  *first = r * base + (r < extra ? r : extra);
  *count = base + (r < extra);
}

void rt_dist_sum(double *v, int n) {
  if (rt_dist.size > 1 && rt_dist.sum) rt_dist.sum(v, n);
}

void rt_dist_bcast(void *buf, size_t bytes) {
  if (rt_dist.size > 1 && rt_dist.bcast) rt_dist.bcast(buf, bytes);
}

bool rt_dist_writes(void) { return rt_dist.rank == 0; }
