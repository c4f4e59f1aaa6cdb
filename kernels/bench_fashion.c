/* bench_fashion.c — one training step of examples/fashion_cnn.nn, kernel by kernel,
 * with the shapes the generated program uses (batch 32).  Not a test.  Build as nnc
 * builds generated programs:
 *   gcc -O2 -march=native -fopenmp -Ikernels kernels/bench_fashion.c -o bench_fashion -lm
 * Run with OMP_NUM_THREADS=1 and =2.  Prints median µs per call, GFLOP/s for the
 * FLOP-heavy kernels and each kernel's share of the step. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn_kernels.h"

#define N 32
#define REPS 301

static nn_real *buf(size_t len) {
    nn_real *p = malloc((len + 16) * sizeof *p);
    if (!p) { fprintf(stderr, "bench_fashion: out of memory\n"); exit(1); }
    for (size_t i = 0; i < len + 16; i++) p[i] = (nn_real)rand() / RAND_MAX - 0.5f;
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double total_us;

/* Median of REPS calls after a warm-up, in µs; prints a row. */
#define TIME(name, flops, call) do {                                          \
    static double t_[REPS];                                                   \
    call;                                                                     \
    for (int r_ = 0; r_ < REPS; r_++) {                                       \
        double t0_ = omp_get_wtime();                                         \
        call;                                                                 \
        t_[r_] = (omp_get_wtime() - t0_) * 1e6;                               \
    }                                                                         \
    qsort(t_, REPS, sizeof t_[0], cmp_double);                                \
    double us_ = t_[REPS / 2];                                                \
    total_us += us_;                                                          \
    printf("%-30s %9.1f us", name, us_);                                      \
    if ((flops) > 0) printf("  %7.1f GFLOP/s", (flops) / us_ * 1e-3);         \
    printf("\n");                                                             \
} while (0)

int main(void) {
    printf("threads: %d, batch %d\n", omp_get_max_threads(), N);
    nn_real *x = buf(N * 784), *w1 = buf(288), *y1 = buf(N * 21632), *r1 = buf(N * 21632);
    nn_real *p1 = buf(N * 5408), *w2 = buf(18432), *y2 = buf(N * 7744), *r2 = buf(N * 7744);
    nn_real *p2 = buf(N * 1600), *wd = buf(102400), *yd = buf(N * 64), *wd1 = buf(640);
    nn_real *yd1 = buf(N * 10), *b = buf(64);
    nn_real *dp2 = buf(N * 1600), *dr2 = buf(N * 7744), *dy2 = buf(N * 7744), *dp1 = buf(N * 5408);
    nn_real *dr1 = buf(N * 21632), *dy1 = buf(N * 21632), *dw1 = buf(288), *dw2 = buf(18432);
    nn_real *dwd = buf(102400), *ddy = buf(N * 64), *db = buf(64);
    nn_real *m = buf(102400), *v = buf(102400);
    for (int i = 0; i < 102400; i++) v[i] = v[i] * v[i];
    size_t we = nnk_conv2d_work_elems(N, 13, 13, 32, 3, 3, 64, 1, 1, 11, 11);
    nn_real *work = buf(we);
    double c1 = 2.0 * N * 676 * 32 * 9, c2 = 2.0 * N * 121 * 64 * 288, d = 2.0 * N * 1600 * 64;

    TIME("conv2d fwd", c1, nnk_conv2d_fwd(N, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 26, 26, x, w1, y1, work));
    TIME("conv2d bias_add", 0, nnk_bias_add(N * 676, 32, y1, b));
    TIME("conv2d relu", 0, nnk_relu_fwd((int64_t)N * 21632, y1, r1));
    TIME("maxpool fwd", 0, nnk_maxpool2d_fwd(N, 26, 26, 32, 2, 2, 2, 2, 0, 0, 13, 13, r1, p1));
    TIME("conv2d_1 fwd", c2, nnk_conv2d_fwd(N, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0, 11, 11, p1, w2, y2, work));
    TIME("conv2d_1 bias_add", 0, nnk_bias_add(N * 121, 64, y2, b));
    TIME("conv2d_1 relu", 0, nnk_relu_fwd((int64_t)N * 7744, y2, r2));
    TIME("maxpool_1 fwd", 0, nnk_maxpool2d_fwd(N, 11, 11, 64, 2, 2, 2, 2, 0, 0, 5, 5, r2, p2));
    TIME("dense fwd gemm", d, nnk_gemm(0, 0, N, 64, 1600, p2, wd, yd, 0));
    TIME("dense_1 fwd gemm", 0, nnk_gemm(0, 0, N, 10, 64, yd, wd1, yd1, 0));
    TIME("dense bwd dx gemm", d, nnk_gemm(0, 1, N, 1600, 64, ddy, wd, dp2, 0));
    TIME("dense bwd dw gemm", d, nnk_gemm(1, 0, 1600, 64, N, p2, ddy, dwd, 0));
    TIME("maxpool_1 bwd", 0, nnk_maxpool2d_bwd(N, 11, 11, 64, 2, 2, 2, 2, 0, 0, 5, 5, r2, p2, dp2, dr2));
    TIME("conv2d_1 relu_bwd", 0, nnk_relu_bwd((int64_t)N * 7744, r2, dr2, dy2));
    TIME("conv2d_1 bias_grad", 0, nnk_bias_grad(N * 121, 64, dy2, db));
    TIME("conv2d_1 bwd_data", c2, nnk_conv2d_bwd_data(N, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0, 11, 11, dy2, w2, dp1, work));
    TIME("conv2d_1 bwd_filter", c2, nnk_conv2d_bwd_filter(N, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0, 11, 11, p1, dy2, dw2, work));
    TIME("maxpool bwd", 0, nnk_maxpool2d_bwd(N, 26, 26, 32, 2, 2, 2, 2, 0, 0, 13, 13, r1, p1, dp1, dr1));
    TIME("conv2d relu_bwd", 0, nnk_relu_bwd((int64_t)N * 21632, r1, dr1, dy1));
    TIME("conv2d bias_grad", 0, nnk_bias_grad(N * 676, 32, dy1, db));
    TIME("conv2d bwd_filter", c1, nnk_conv2d_bwd_filter(N, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 26, 26, x, dy1, dw1, work));
    TIME("adam dense.kernel", 0, nnk_adam_update(102400, 1e-3, 0.9, 0.999, 1e-7, 5, wd, dwd, m, v));
    TIME("adam conv2d_1.kernel", 0, nnk_adam_update(18432, 1e-3, 0.9, 0.999, 1e-7, 5, w2, dw2, m, v));
    printf("%-30s %9.1f us  -> %.2f s per 60000-sample epoch (train steps only)\n", "step", total_us,
           total_us * 1e-6 * 60000 / N);
    return 0;
}
