// mpi_allreduce.c — MPI_Allreduce (float sum) time against message size, for the
// alpha-beta model of benchmarks/mpi_scaling.sh: T(m) = alpha + beta * m.
//
//   mpicc -O2 -o mpi_allreduce benchmarks/mpi_allreduce.c
//   mpirun -np 2 ./mpi_allreduce        # prints "bytes seconds" lines, then the fit
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int max = 1 << 20;  // floats: 4 MiB
  float *buf = calloc(max, sizeof(float));
  // The fastest of several runs per size: on a shared machine the others measure the
  // neighbours. alpha is the smallest message's time; beta the slope up to the largest.
  double t_small = 0, t_large = 0, large = 0;
  for (int n = 1; n <= max; n *= 4) {
    int reps = n < 4096 ? 200 : n < 65536 ? 50 : 10;
    double best = 1e9;
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);  // warm up
    for (int i = 0; i < reps; i++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double t = MPI_Wtime() - t0;
      MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (t < best) best = t;
    }
    if (rank == 0) printf("bytes %d seconds %.3e\n", 4 * n, best);
    if (n == 1) t_small = best;
    t_large = best;
    large = 4.0 * n;
  }
  if (rank == 0) printf("fit alpha_s %.3e beta_s_per_byte %.3e\n", t_small, (t_large - t_small) / large);
  free(buf);
  MPI_Finalize();
  return 0;
}
