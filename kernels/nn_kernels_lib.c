/* nn_kernels_lib.c — the kernel library compiled once, as external functions.
 *
 * nnc links this object, so a model JIT-compiled by `nnc run` (and a program
 * `nnc build` makes, which links it from libnnk.a) calls these definitions instead
 * of compiling the kernels again: the model's own code is then only calls with
 * constant shapes.  Built with the flags of kernels/CMakeLists (-O2 -march=…
 * -fopenmp); see docs/jit.md. */
#define NNK_API
#include "nn_kernels.h"
