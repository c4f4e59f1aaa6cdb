/* nn_kernels_lib.c — the kernel library compiled once, as external functions.
 *
 * nnc links this object, so a model JIT-compiled by `nnc run` (and a program
 * `nnc build` makes, which links it from libnnk.a) calls these definitions instead
 * of compiling the kernels again: the model's own code is then only calls with
 * constant shapes.  Built with the flags of kernels/CMakeLists (-O2 -march=…
 * -fopenmp); see docs/jit.md. */
#define NNK_API
#include "nn_kernels.h"

/* The vector width this library was built for: the layout pass's cost model reads it
 * (nnc itself is not built for the machine, this library is). */
int nnk_lib_vec_bytes(void);
int nnk_lib_vec_bytes(void) { return NNK_VEC_BYTES; }
