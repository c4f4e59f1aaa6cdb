/* pool_ab.c — the fused first layer's C kernels (nnk_conv2d_pool_fwd and
 * nnk_conv2d_pool_bwd_filter) of two versions of kernels/nn_kernels.h, side by side in one
 * process: fashion_cnn's first layer (batch 32, 28x28x1 -> 32 filters 3x3, relu, 2x2
 * max-pool).  Run by pool_ab.sh, which compiles each version in its own translation unit
 * (pool_ab_kernels.c, runtime shapes as in the kernel library) with the symbols a_* and
 * b_*.  The two are called in turn, call by call, each order half the time; medians of
 * thread CPU time on one thread (so another process's time slices do not count), wall
 * time on more.  Also says whether the two give the same bits. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHAPE int n, int H, int W, int C, int KH, int KW, int F, int SH, int SW, int PT, int PL, int OH, int OW, \
              int PH, int PW, int QH, int QW
#define DECLARE(v)                                                                                         \
    void v##_fwd(SHAPE, const float *x, const float *w, const float *b, int act, float *p, float *idx);   \
    void v##_bwd(SHAPE, const float *x, const float *dp, const float *p, const float *idx, int act, float *dw, \
                 float *db);
DECLARE(a)
DECLARE(b)

static int wall;
static double now(void) {
    struct timespec t;
    clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static float *random_floats(size_t n) {
    static uint64_t s = 1;
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 11) * 0x1.0p-53 * 2 - 1);
    }
    return p;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 300;
    int OW = argc > 3 ? atoi(argv[3]) : 24;   /* 24: trimmed (trim_pool.c); 26: --no-fuse=trim */
    if (threads < 1 || reps < 1 || reps > 5000 || OW < 2 || OW > 26) {
        fprintf(stderr, "usage: pool_ab [threads] [calls 1..5000] [conv width 2..26]\n");
        return 2;
    }
    wall = threads > 1;
    omp_set_num_threads(threads);
    int n = 32, H = 28, W = 28, C = 1, K = 3, F = 32, OH = OW, P = 2, QH = OH / P, QW = OW / P;
    size_t xs = (size_t)n * H * W * C, ws = (size_t)K * K * C * F, qs = (size_t)n * QH * QW * F;
    float *x = random_floats(xs), *w = random_floats(ws), *bias = random_floats(F), *dp = random_floats(qs);
    float *p[2], *idx[2], *dw[2], *db[2];
    for (int v = 0; v < 2; v++)
        p[v] = random_floats(qs), idx[v] = random_floats(qs), dw[v] = random_floats(ws), db[v] = random_floats(F);
    double *tf[2] = {malloc(reps * sizeof(double)), malloc(reps * sizeof(double))};
    double *tb[2] = {malloc(reps * sizeof(double)), malloc(reps * sizeof(double))};
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int v = (k + r) & 1;
            double t = now();
            (v ? b_fwd : a_fwd)(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, P, P, QH, QW, x, w, bias, 1, p[v], idx[v]);
            tf[v][r] = now() - t;
        }
        for (int k = 0; k < 2; k++) {
            int v = (k + r) & 1;
            double t = now();
            (v ? b_bwd : a_bwd)(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, P, P, QH, QW, x, dp, p[v], idx[v], 1, dw[v],
                                db[v]);
            tb[v][r] = now() - t;
        }
    }
    for (int v = 0; v < 2; v++) qsort(tf[v], reps, sizeof(double), by_value), qsort(tb[v], reps, sizeof(double), by_value);
    double flop = 2.0 * n * OH * OW * F * K * K * C, fa = tf[0][reps / 2], fb = tf[1][reps / 2];
    double ba = tb[0][reps / 2], bb = tb[1][reps / 2];
    printf("%d thread%s, conv %dx%d: forward a %.1f us, b %.1f us (%.2fx, b %.1f GFLOP/s); filter gradient a %.1f us, "
           "b %.1f us (%.2fx, b %.1f GFLOP/s); same bits: pooled %s, dw %s, db %s\n",
           threads, threads > 1 ? "s" : "", OW, OW, fa * 1e6, fb * 1e6, fa / fb, flop / fb * 1e-9, ba * 1e6, bb * 1e6,
           ba / bb, flop / bb * 1e-9, memcmp(p[0], p[1], qs * 4) ? "no" : "yes", memcmp(dw[0], dw[1], ws * 4) ? "no" : "yes",
           memcmp(db[0], db[1], F * 4) ? "no" : "yes");
    return 0;
}
