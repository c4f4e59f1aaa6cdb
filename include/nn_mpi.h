// nn_mpi.h — data-parallel training over MPI: what a program built with `nnc build --mpi`
// calls (runtime/mpi.c, in libnnrt_mpi.a; docs/mpi.md).
//
// The program runs unchanged as one process or as N ranks under mpirun. batch_size is the
// global batch: every rank draws the same permutation each epoch and trains its share
// of every batch (runtime/fit.c); the generated train step hands each weight gradient
// to this runtime as soon as the backward pass has completed it, and the runtime sums
// them over the ranks with MPI_Iallreduce in buckets while the backward pass goes on,
// each rank's contribution weighted by its share of the batch, so the result is the
// gradient of the global batch's mean loss, the same on every rank, before the update.
#ifndef NN_MPI_H
#define NN_MPI_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

// Before nn_start_threads: a rank started by mpirun uses its share of the node's CPUs
// (unless --threads or OMP_NUM_THREADS says otherwise).
void nn_mpi_prepare(nn_options *o);
// After it (which may execute the program again): MPI_Init; on every rank but 0
// stdout goes to /dev/null, so progress, print() and --json appear once.
void nn_mpi_start(void);
// The number of ranks (1 before nn_mpi_start).
int nn_mpi_size(void);
// The model whose weights NNC_MPI_CHECK=1 compares across ranks at the end.
void nn_mpi_model(nn_model *m);
// main's status: 0 ends MPI normally; anything else prints which rank failed and
// stops every rank (MPI_Abort). Returns the program's exit status.
int nn_mpi_finish(int status);

// Model creation: each trainable weight's gradient buffer, in the order the backward
// pass completes them; weights no optimizer updates (moving statistics), averaged over
// the ranks after each step.
void nn_mpi_add_grad(float *grad, int64_t elems);
void nn_mpi_add_stat(float *value, int64_t elems);
// Each train step: this rank's rows (0 when the last batch has fewer rows than ranks;
// the rank then contributes nothing but still takes part); each rank's dropout seed
// is made its own. Then gradient k is final; then, before the update, the reduction.
void nn_mpi_step_begin(int n, uint64_t *seed);
void nn_mpi_grad_ready(int k);
void nn_mpi_reduce(void);

#ifdef __cplusplus
}
#endif
#endif
