/* The fused first convolution and max-pool of kernels/nn_kernels.h (compiler/ir/
 * fuse_pool.c): nnk_conv2d_pool_fwd and nnk_conv2d_pool_bwd_filter against the kernels
 * they replace (the direct convolution with its epilogue, the max-pool, the pool's
 * backward through the activation, the bias gradient and the filter gradient), byte for
 * byte, on shapes with padding, windows that leave rows and columns uncovered, ties, each
 * activation, with and without a bias, on one thread and two. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn_kernels.h"

static uint64_t rng_state = 0x9001ull;

/* Uniform in [-1, 1); with `coarse`, a few levels only, so windows hold equal maxima. */
static float *rand_buf(size_t len, int coarse) {
    float *p = malloc((len ? len : 1) * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < len; i++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(rng_state >> 11) * 0x1.0p-53 * 2 - 1;
        p[i] = coarse ? (float)((int)(u * 3) / 3.0) : (float)u;
    }
    return p;
}

static void set_threads(int t) {
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

typedef struct Case {
    int n, H, W, C, K, F, S, same, P, act, bias, coarse;
} Case;

static void check(Case t, int threads) {
    set_threads(threads);
    int PT = 0, PL = 0, OH, OW;
    if (t.same) {
        OH = (t.H + t.S - 1) / t.S, OW = (t.W + t.S - 1) / t.S;
        PT = nnk_max_(0, (OH - 1) * t.S + t.K - t.H) / 2, PL = nnk_max_(0, (OW - 1) * t.S + t.K - t.W) / 2;
    } else {
        OH = (t.H - t.K) / t.S + 1, OW = (t.W - t.K) / t.S + 1;
    }
    int QH = OH / t.P, QW = OW / t.P;
    size_t xs = (size_t)t.n * t.H * t.W * t.C, ys = (size_t)t.n * OH * OW * t.F, qs = (size_t)t.n * QH * QW * t.F;
    size_t ws = (size_t)t.K * t.K * t.C * t.F;
    float *x = rand_buf(xs, t.coarse), *w = rand_buf(ws, t.coarse), *b = t.bias ? rand_buf(t.F, 0) : NULL;
    float *dp = rand_buf(qs, 0);
    /* unfused */
    float *y = malloc(ys * 4), *p0 = malloc(qs * 4), *dy = malloc(ys * 4), *dw0 = malloc(ws * 4), *db0 = malloc(t.F * 4);
    nnk_conv2d_fwd_bias_act(t.n, t.H, t.W, t.C, t.K, t.K, t.F, t.S, t.S, PT, PL, OH, OW, x, w, b, t.act, y, NULL);
    nnk_maxpool2d_fwd(t.n, OH, OW, t.F, t.P, t.P, t.P, t.P, 0, 0, QH, QW, y, p0);
    nnk_maxpool2d_bwd_act(t.n, OH, OW, t.F, t.P, t.P, t.P, t.P, 0, 0, QH, QW, y, dp, t.act, dy);
    nnk_bias_grad(t.n * OH * OW, t.F, dy, db0);
    nnk_conv2d_bwd_filter(t.n, t.H, t.W, t.C, t.K, t.K, t.F, t.S, t.S, PT, PL, OH, OW, x, dy, dw0, NULL);
    /* fused */
    float *p1 = malloc(qs * 4), *idx = malloc(qs * 4), *dw1 = malloc(ws * 4), *db1 = malloc(t.F * 4);
    nnk_conv2d_pool_fwd(t.n, t.H, t.W, t.C, t.K, t.K, t.F, t.S, t.S, PT, PL, OH, OW, t.P, t.P, QH, QW, x, w, b,
                        t.act, p1, idx);
    nnk_conv2d_pool_bwd_filter(t.n, t.H, t.W, t.C, t.K, t.K, t.F, t.S, t.S, PT, PL, OH, OW, t.P, t.P, QH, QW, x,
                               dp, p1, idx, t.act, dw1, t.bias ? db1 : NULL);
    cr_expect(memcmp(p0, p1, qs * 4) == 0, "pooled output differs (%dx%dx%d, K %d, F %d, act %d)", t.H, t.W, t.C,
              t.K, t.F, t.act);
    cr_expect(memcmp(dw0, dw1, ws * 4) == 0, "filter gradient differs (%dx%dx%d, K %d, F %d, act %d, %d threads)",
              t.H, t.W, t.C, t.K, t.F, t.act, threads);
    if (t.bias) cr_expect(memcmp(db0, db1, t.F * 4) == 0, "bias gradient differs");
    free(x), free(w), free(b), free(dp), free(y), free(p0), free(dy), free(dw0), free(db0);
    free(p1), free(idx), free(dw1), free(db1);
}

Test(conv_pool, same_bits_as_the_kernels_it_replaces) {
    Case cases[] = {
        {32, 28, 28, 1, 3, 32, 1, 0, 2, NN_EPI_RELU, 1, 0},   /* fashion_cnn's first layer */
        {5, 28, 28, 1, 3, 32, 1, 0, 2, NN_EPI_RELU, 1, 1},    /* ties */
        {3, 15, 13, 3, 3, 16, 1, 1, 2, NN_EPI_SIGMOID, 1, 0}, /* 'same', odd sizes: a row and column uncovered */
        {2, 17, 17, 2, 4, 48, 2, 1, 3, NN_EPI_TANH, 0, 0},    /* stride 2, 3x3 windows, no bias */
        {4, 12, 12, 3, 3, 64, 1, 0, 2, NN_EPI_NONE, 1, 1},
        {2, 9, 11, 1, 5, 16, 1, 1, 2, NN_EPI_RELU, 0, 1},
        {3, 21, 19, 2, 3, 16, 2, 0, 2, NN_EPI_RELU, 1, 0},   /* stride 2, a column uncovered: side by side */
        {3, 10, 12, 1, 3, 16, 1, 0, 2, NN_EPI_NONE, 0, 1},   /* fashion_cnn's path, linear, no bias, ties */
        {2, 9, 9, 1, 3, 32, 1, 0, 2, NN_EPI_SIGMOID, 1, 0},  /* its shape under another activation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 2; threads++) check(cases[i], threads);
}
