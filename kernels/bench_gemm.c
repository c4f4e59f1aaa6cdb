/* bench_gemm.c — GFLOP/s of nnk_gemm and nnk_conv2d_fwd at a few shapes.
 * Not a test.  Build by hand:
 *   gcc -O2 -march=native -fopenmp -Ikernels kernels/bench_gemm.c -o bench_gemm -lm
 * (-O2 -march=native -fopenmp is how nnc builds generated programs.)
 * Run with OMP_NUM_THREADS=1 and =<cores> to see single-core speed and scaling. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn_kernels.h"

static nn_real *random_buffer(size_t len) {
    nn_real *p = malloc(len * sizeof *p);
    if (!p) { fprintf(stderr, "bench_gemm: out of memory\n"); exit(1); }
    for (size_t i = 0; i < len; i++) p[i] = (nn_real)rand() / RAND_MAX - 0.5f;
    return p;
}

/* Best of reps, after one warm-up call, in seconds. */
#define BEST_TIME(reps, call) ({                                    \
    call;                                                           \
    double best = 1e30;                                             \
    for (int r_ = 0; r_ < (reps); r_++) {                           \
        double t0 = omp_get_wtime();                                \
        call;                                                       \
        double dt = omp_get_wtime() - t0;                           \
        if (dt < best) best = dt;                                   \
    }                                                               \
    best; })

static void bench_gemm(int ta, int tb, int size) {
    nn_real *a = random_buffer((size_t)size * size), *b = random_buffer((size_t)size * size);
    nn_real *c = random_buffer((size_t)size * size);
    int reps = size <= 256 ? 50 : size <= 512 ? 10 : 3;
    double t = BEST_TIME(reps, nnk_gemm(ta, tb, size, size, size, a, b, c, 0));
    printf("gemm ta=%d tb=%d %4d^3          %8.3f ms  %7.2f GFLOP/s\n", ta, tb, size, t * 1e3,
           2.0 * size * size * size / t * 1e-9);
    free(a); free(b); free(c);
}

static void bench_conv(int n, int H, int W, int C, int K, int F) {
    int OH = H - K + 1, OW = W - K + 1;
    nn_real *x = random_buffer((size_t)n * H * W * C), *w = random_buffer((size_t)K * K * C * F);
    nn_real *y = random_buffer((size_t)n * OH * OW * F), *dy = random_buffer((size_t)n * OH * OW * F);
    nn_real *dx = random_buffer((size_t)n * H * W * C), *dw = random_buffer((size_t)K * K * C * F);
    nn_real *work = random_buffer(nnk_conv2d_work_elems(n, H, W, C, K, K, F, 1, 1, OH, OW) + 1);
    double flops = 2.0 * n * OH * OW * F * K * K * C;
    double tf = BEST_TIME(20, nnk_conv2d_fwd(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, x, w, y, work));
    double td = BEST_TIME(20, nnk_conv2d_bwd_data(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, dy, w, dx, work));
    double tw = BEST_TIME(20, nnk_conv2d_bwd_filter(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, x, dy, dw, work));
    printf("conv n=%d %dx%dx%d -> %dx%dx%d %dx%d: fwd %7.3f ms %6.2f GFLOP/s | bwd_data %7.3f ms %6.2f | "
           "bwd_filter %7.3f ms %6.2f\n", n, H, W, C, OH, OW, F, K, K, tf * 1e3, flops / tf * 1e-9,
           td * 1e3, flops / td * 1e-9, tw * 1e3, flops / tw * 1e-9);
    free(x); free(w); free(y); free(dy); free(dx); free(dw); free(work);
}

int main(void) {
    printf("threads: %d, nn_real: %zu bytes\n", omp_get_max_threads(), sizeof(nn_real));
    for (int s = 256; s <= 1024; s *= 2) bench_gemm(0, 0, s);
    bench_gemm(0, 1, 512);
    bench_gemm(1, 0, 512);
    bench_gemm(1, 1, 512);
    bench_conv(32, 28, 28, 1, 3, 32);   /* fashion_cnn conv2d   */
    bench_conv(32, 13, 13, 32, 3, 64);  /* fashion_cnn conv2d_1 */
    return 0;
}
