/* Forward checks of kernels/nn_kernels.h in float, the precision generated code uses:
 * tiny hand-computed cases (values worked out in the comments), GEMM and conv2d
 * against naive loops, and thread-count independence. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn_kernels.h"

static uint64_t rng_state = 0xC0FFEEull;

static float uniform(float lo, float hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((double)(rng_state >> 11) * 0x1.0p-53);
}

static float *rand_buf(size_t len) {
    float *p = malloc((len ? len : 1) * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < len; i++) p[i] = uniform(-1, 1);
    return p;
}

#define EXPECT_NEAR(got, want, tol) \
    cr_expect(fabs((double)(got) - (double)(want)) <= (tol), "%s = %.9g, expected %.9g", #got, \
              (double)(got), (double)(want))

/* ------------------------------------------------------------ GEMM vs naive loops */

static void check_gemm(int ta, int tb, int M, int N, int K, int accumulate) {
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *C = rand_buf((size_t)M * N);
    float *C0 = malloc((size_t)M * N * sizeof *C0);
    memcpy(C0, C, (size_t)M * N * sizeof *C);
    nnk_gemm(ta, tb, M, N, K, A, B, C, accumulate);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double ref = accumulate ? C0[(size_t)i * N + j] : 0, mag = fabs(ref);
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
                double b = tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
                ref += a * b;
                mag += fabs(a * b);
            }
            double err = fabs(C[(size_t)i * N + j] - ref) / (mag + 1e-30);
            if (err > worst) worst = err;
        }
    cr_expect(worst < 1e-5, "gemm ta=%d tb=%d %dx%dx%d acc=%d: relative error %g", ta, tb, M, N, K,
              accumulate, worst);
    free(A); free(B); free(C); free(C0);
}

Test(gemm, matches_naive_loops_for_all_transposes_and_odd_sizes) {
    /* 67x33x129: partial MR/NR panels; 5x300x17 crosses the N (256) block; 300x70x600
     * the M (144) tile and three K (256) slices; 130x131x260 all of them. */
    int sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {67, 33, 129}, {5, 300, 17}, {300, 70, 600},
                      {130, 131, 260}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int s = 0; s < 6; s++) {
                check_gemm(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 0);
                check_gemm(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1);
            }
}

#ifdef _OPENMP
/* Threads split C's rows, never a sum: 1, 2 and 3 threads give the same bits. */
Test(gemm, same_bits_for_any_thread_count) {
    int M = 301, N = 70, K = 600;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
            float *C[3];
            int saved = omp_get_max_threads();
            for (int t = 0; t < 3; t++) {
                C[t] = rand_buf((size_t)M * N);
                omp_set_num_threads(t + 1);
                nnk_gemm(ta, tb, M, N, K, A, B, C[t], 0);
            }
            omp_set_num_threads(saved);
            for (int t = 1; t < 3; t++)
                cr_expect(memcmp(C[0], C[t], (size_t)M * N * sizeof(float)) == 0,
                          "gemm ta=%d tb=%d differs between 1 and %d threads", ta, tb, t + 1);
            free(A); free(B); free(C[0]); free(C[1]); free(C[2]);
        }
}
#endif

Test(gemm, empty_inner_dimension_zeroes_or_keeps_c) {
    float c[6] = {1, 2, 3, 4, 5, 6};
    nnk_gemm(0, 0, 2, 3, 0, NULL, NULL, c, 1);
    cr_expect_eq(c[5], 6);
    nnk_gemm(0, 0, 2, 3, 0, NULL, NULL, c, 0);
    for (int i = 0; i < 6; i++) cr_expect_eq(c[i], 0);
}

/* ------------------------------------------------------------ conv2d */

Test(conv2d, hand_computed_3x3_on_4x4) {
    /* x[r][c] = 4r + c + 1; w = [[1,2,0],[0,1,0],[0,0,-1]]; valid:
     * y(i,j) = x[i][j] + 2x[i][j+1] + x[i+1][j+1] - x[i+2][j+2] = 12i + 3j. */
    float x[16], w[9] = {1, 2, 0, 0, 1, 0, 0, 0, -1}, y[4], work[64];
    for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
    cr_assert_geq(64, nnk_conv2d_work_elems(1, 4, 4, 1, 3, 3, 1, 1, 1, 2, 2));
    nnk_conv2d_fwd(1, 4, 4, 1, 3, 3, 1, 1, 1, 0, 0, 2, 2, x, w, y, work);
    float valid[4] = {0, 3, 12, 15};
    for (int i = 0; i < 4; i++) cr_expect_eq(y[i], valid[i], "valid y[%d] = %g", i, y[i]);
    /* 'same', stride 2: out 2x2, pad total (2-1)*2+3-4 = 1, all at bottom/right.
     * y(0,1) = x[0][2] + 2x[0][3] + x[1][3] - pad = 3 + 8 + 8 = 19
     * y(1,0) = x[2][0] + 2x[2][1] + x[3][1] - pad = 9 + 20 + 14 = 43
     * y(1,1) = x[2][2] + 2x[2][3] + x[3][3] - pad = 11 + 24 + 16 = 51 */
    nnk_conv2d_fwd(1, 4, 4, 1, 3, 3, 1, 2, 2, 0, 0, 2, 2, x, w, y, work);
    float same[4] = {0, 19, 43, 51};
    for (int i = 0; i < 4; i++) cr_expect_eq(y[i], same[i], "same y[%d] = %g", i, y[i]);
}

/* Direct convolution, the obvious way, in double. */
static void naive_conv(int n, int H, int W, int C, int KH, int KW, int F, int SH, int SW, int PT,
                       int PL, int OH, int OW, const float *x, const float *w, double *y) {
    for (int b = 0; b < n; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int f = 0; f < F; f++) {
                    double s = 0;
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++)
                            for (int c = 0; c < C; c++) {
                                int ih = oh * SH - PT + kh, iw = ow * SW - PL + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += (double)x[(((size_t)b * H + ih) * W + iw) * C + c] *
                                     w[(((size_t)kh * KW + kw) * C + c) * F + f];
                            }
                    y[(((size_t)b * OH + oh) * OW + ow) * F + f] = s;
                }
}

static void naive_conv_bwd_filter(int n, int H, int W, int C, int KH, int KW, int F, int SH, int SW,
                                  int PT, int PL, int OH, int OW, const float *x, const float *dy,
                                  double *dw) {
    for (int b = 0; b < n; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int kh = 0; kh < KH; kh++)
                    for (int kw = 0; kw < KW; kw++) {
                        int ih = oh * SH - PT + kh, iw = ow * SW - PL + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        for (int c = 0; c < C; c++)
                            for (int f = 0; f < F; f++)
                                dw[(((size_t)kh * KW + kw) * C + c) * F + f] +=
                                    (double)x[(((size_t)b * H + ih) * W + iw) * C + c] *
                                    dy[(((size_t)b * OH + oh) * OW + ow) * F + f];
                    }
}

Test(conv2d, matches_direct_convolution) {
    /* n H W C KH KW F SH SW PT PL OH OW */
    int shapes[][13] = {
        {2, 7, 6, 3, 3, 3, 5, 1, 1, 1, 1, 7, 6},   /* same, stride 1 */
        {3, 9, 8, 2, 3, 2, 4, 2, 3, 1, 0, 5, 3},   /* same, strides 2/3 */
        {1, 8, 8, 4, 1, 1, 6, 1, 1, 0, 0, 8, 8},   /* pointwise */
        {32, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0, 11, 11}, /* fashion_cnn conv2d_1 */
        /* small windows, whole vectors of filters: the direct kernels */
        {4, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 26, 26},   /* fashion_cnn conv2d */
        {2, 9, 8, 3, 3, 3, 16, 2, 2, 1, 1, 5, 4},       /* same, stride 2, C = 3 */
        {2, 7, 7, 1, 5, 5, 32, 1, 3, 2, 2, 7, 3},       /* same, 5x5, strides 1/3 */
    };
    for (int s = 0; s < 7; s++) {
        int *d = shapes[s];
        size_t xl = (size_t)d[0] * d[1] * d[2] * d[3], wl = (size_t)d[4] * d[5] * d[3] * d[6];
        size_t yl = (size_t)d[0] * d[11] * d[12] * d[6];
        float *x = rand_buf(xl), *w = rand_buf(wl), *y = rand_buf(yl);
        float *work = rand_buf(nnk_conv2d_work_elems(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
                                                     d[8], d[11], d[12]));
        double *ref = malloc(yl * sizeof *ref);
        nnk_conv2d_fwd(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12],
                       x, w, y, work);
        naive_conv(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], x, w, ref);
        double worst = 0;
        for (size_t i = 0; i < yl; i++) worst = fmax(worst, fabs(y[i] - ref[i]));
        cr_expect(worst < 1e-4, "conv shape #%d: max error %g", s, worst);
        /* The filter gradient against its definition: dw = Σ x·dy over every window. */
        float *dy = rand_buf(yl), *dw = rand_buf(wl);
        double *dw_ref = calloc(wl, sizeof *dw_ref);
        nnk_conv2d_bwd_filter(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10],
                              d[11], d[12], x, dy, dw, work);
        naive_conv_bwd_filter(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10],
                              d[11], d[12], x, dy, dw_ref);
        worst = 0;
        for (size_t i = 0; i < wl; i++) worst = fmax(worst, fabs(dw[i] - dw_ref[i]) / (1 + fabs(dw_ref[i])));
        cr_expect(worst < 1e-4, "conv shape #%d: filter gradient relative error %g", s, worst);
        free(x); free(w); free(y); free(work); free(ref); free(dy); free(dw); free(dw_ref);
    }
}

#ifdef _OPENMP
/* Threads split outputs, never sums: 1 and 2 threads give bitwise equal results. */
Test(conv2d, same_bits_for_any_thread_count) {
    int n = 32, H = 13, W = 13, C = 32, F = 64, O = 11;
    size_t xl = (size_t)n * H * W * C, yl = (size_t)n * O * O * F, wl = 9 * C * F;
    float *x = rand_buf(xl), *w = rand_buf(wl), *dy = rand_buf(yl);
    float *work = rand_buf(nnk_conv2d_work_elems(n, H, W, C, 3, 3, F, 1, 1, O, O));
    float *y1 = rand_buf(yl), *y2 = rand_buf(yl), *dw1 = rand_buf(wl), *dw2 = rand_buf(wl);
    float *dx1 = rand_buf(xl), *dx2 = rand_buf(xl);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    nnk_conv2d_fwd(n, H, W, C, 3, 3, F, 1, 1, 0, 0, O, O, x, w, y1, work);
    nnk_conv2d_bwd_filter(n, H, W, C, 3, 3, F, 1, 1, 0, 0, O, O, x, dy, dw1, work);
    nnk_conv2d_bwd_data(n, H, W, C, 3, 3, F, 1, 1, 0, 0, O, O, dy, w, dx1, work);
    omp_set_num_threads(2);
    nnk_conv2d_fwd(n, H, W, C, 3, 3, F, 1, 1, 0, 0, O, O, x, w, y2, work);
    nnk_conv2d_bwd_filter(n, H, W, C, 3, 3, F, 1, 1, 0, 0, O, O, x, dy, dw2, work);
    nnk_conv2d_bwd_data(n, H, W, C, 3, 3, F, 1, 1, 0, 0, O, O, dy, w, dx2, work);
    omp_set_num_threads(saved);
    cr_expect(memcmp(y1, y2, yl * sizeof *y1) == 0, "conv2d_fwd differs between 1 and 2 threads");
    cr_expect(memcmp(dw1, dw2, wl * sizeof *dw1) == 0, "bwd_filter differs between 1 and 2 threads");
    cr_expect(memcmp(dx1, dx2, xl * sizeof *dx1) == 0, "bwd_data differs between 1 and 2 threads");
    free(x); free(w); free(dy); free(work); free(y1); free(y2); free(dw1); free(dw2); free(dx1); free(dx2);
}

/* The same for the direct kernels of a first layer (C = 1, 3x3, 32 filters). */
Test(conv2d, direct_same_bits_for_any_thread_count) {
    int n = 8, H = 28, F = 32, O = 26;
    size_t xl = (size_t)n * H * H, yl = (size_t)n * O * O * F, wl = 9 * F;
    float *x = rand_buf(xl), *w = rand_buf(wl), *dy = rand_buf(yl);
    float *y1 = rand_buf(yl), *y2 = rand_buf(yl), *dw1 = rand_buf(wl), *dw2 = rand_buf(wl);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    nnk_conv2d_fwd(n, H, H, 1, 3, 3, F, 1, 1, 0, 0, O, O, x, w, y1, NULL);
    nnk_conv2d_bwd_filter(n, H, H, 1, 3, 3, F, 1, 1, 0, 0, O, O, x, dy, dw1, NULL);
    omp_set_num_threads(2);
    nnk_conv2d_fwd(n, H, H, 1, 3, 3, F, 1, 1, 0, 0, O, O, x, w, y2, NULL);
    nnk_conv2d_bwd_filter(n, H, H, 1, 3, 3, F, 1, 1, 0, 0, O, O, x, dy, dw2, NULL);
    omp_set_num_threads(saved);
    cr_expect(memcmp(y1, y2, yl * sizeof *y1) == 0, "direct conv2d_fwd differs between 1 and 2 threads");
    cr_expect(memcmp(dw1, dw2, wl * sizeof *dw1) == 0, "direct bwd_filter differs between 1 and 2 threads");
    free(x); free(w); free(dy); free(y1); free(y2); free(dw1); free(dw2);
}
#endif

/* fuse_bias_grad.c: a weight gradient that also sums dy's columns gives the separate
 * kernels' bits: dw as nnk_conv2d_bwd_filter / nnk_gemm, db as nnk_bias_grad (whose double
 * row-order sums a float or reordered sum would miss over thousands of rows), at 1, 2 and 3
 * threads.  Shapes: im2col in one chunk and in several, strided, pointwise, the direct
 * first-layer path, filters that leave a partial panel, and more filters than the sums'
 * stack buffer holds. */
static void check_filter_bias(const int *d, int threads) {
    int n = d[0], F = d[6], rows = n * d[11] * d[12];
    size_t xl = (size_t)n * d[1] * d[2] * d[3], wl = (size_t)d[4] * d[5] * d[3] * F, yl = (size_t)rows * F;
    float *x = rand_buf(xl), *dy = rand_buf(yl), *dw1 = rand_buf(wl), *dw2 = rand_buf(wl);
    float *db1 = rand_buf(F), *db2 = rand_buf(F);
    float *work = rand_buf(nnk_conv2d_work_elems(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[11], d[12]));
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
#endif
    nnk_conv2d_bwd_filter(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[9], d[10], d[11], d[12], x, dy, dw1, work);
    nnk_bias_grad(rows, F, dy, db1);
    nnk_conv2d_bwd_filter_bias(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[9], d[10], d[11], d[12], x, dy,
                               dw2, db2, work);
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    cr_expect(memcmp(dw1, dw2, wl * sizeof *dw1) == 0, "filter gradient %dx%dx%dx%d F=%d: dw differs (%d threads)",
              n, d[1], d[2], d[3], F, threads);
    cr_expect(memcmp(db1, db2, F * sizeof *db1) == 0, "filter gradient %dx%dx%dx%d F=%d: db differs (%d threads)",
              n, d[1], d[2], d[3], F, threads);
    free(x); free(dy); free(dw1); free(dw2); free(db1); free(db2); free(work);
}

Test(conv2d, filter_gradient_with_bias_gradient_gives_the_separate_bits) {
    int shapes[][13] = {
        {32, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0, 11, 11},  /* fashion_cnn conv2d_1: one chunk */
        {4, 62, 62, 32, 3, 3, 40, 1, 1, 0, 0, 60, 60},   /* two chunks; a partial panel */
        {3, 9, 8, 2, 3, 2, 5, 2, 3, 1, 0, 5, 3},         /* strides 2/3, 'same', F = 5 */
        {2, 8, 8, 4, 1, 1, 1100, 1, 1, 0, 0, 8, 8},      /* pointwise; sums on the heap */
        {8, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 26, 26},    /* fashion_cnn conv2d: direct */
        {2, 9, 8, 3, 3, 3, 16, 2, 2, 1, 1, 5, 4},        /* direct, one vector of filters */
    };
    for (int s = 0; s < 6; s++)
        for (int t = 1; t <= 3; t++) check_filter_bias(shapes[s], t);
}

/* layout.c's COLS: the forward convolution keeps im2col's matrix of the whole batch and the
 * filter gradient reads it.  y, dw and db have the NHWC kernels' bits, the kept matrix is
 * im2col's, at 1 and 2 threads, in one chunk and in several (the filter gradient walks the
 * workspace's chunks over the kept matrix). */
Test(conv2d, kept_im2col_matrix_gives_the_nhwc_bits) {
    int shapes[][13] = {
        {32, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0, 11, 11},  /* fashion_cnn conv2d_1: one chunk */
        {4, 62, 62, 32, 3, 3, 40, 1, 1, 0, 0, 60, 60},   /* two chunks; a partial panel */
        {3, 9, 8, 2, 3, 2, 5, 2, 3, 1, 0, 5, 3},         /* strides 2/3, 'same', F = 5 */
    };
    for (int s = 0; s < 3; s++)
        for (int t = 1; t <= 2; t++) {
            const int *d = shapes[s];
            int n = d[0], F = d[6], rows = n * d[11] * d[12], kdim = d[4] * d[5] * d[3];
            size_t xl = (size_t)n * d[1] * d[2] * d[3], wl = (size_t)kdim * F, yl = (size_t)rows * F;
            float *x = rand_buf(xl), *w = rand_buf(wl), *b = rand_buf(F), *dy = rand_buf(yl);
            float *y1 = rand_buf(yl), *y2 = rand_buf(yl), *cols = rand_buf((size_t)rows * kdim);
            float *dw1 = rand_buf(wl), *dw2 = rand_buf(wl), *dw3 = rand_buf(wl), *db1 = rand_buf(F), *db2 = rand_buf(F);
            size_t wk = nnk_conv2d_work_elems(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[11], d[12]);
            float *work = rand_buf(wk > (size_t)rows * kdim ? wk : (size_t)rows * kdim);
#ifdef _OPENMP
            int saved = omp_get_max_threads();
            omp_set_num_threads(t);
#endif
            nnk_conv2d_fwd_bias_act(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[9], d[10], d[11], d[12], x, w, b,
                                    NN_EPI_RELU, y1, work);
            nnk_conv2d_bwd_filter(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[9], d[10], d[11], d[12], x, dy, dw1,
                                  work);
            nnk_bias_grad(rows, F, dy, db1);
            nnk_conv2d_fwd_cols_bias_act(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[9], d[10], d[11], d[12], x, w,
                                         b, NN_EPI_RELU, y2, cols);
            nnk_conv2d_bwd_filter_cols(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[9], d[10], d[11], d[12], cols,
                                       dy, dw2);
            nnk_conv2d_bwd_filter_cols_bias(n, d[1], d[2], d[3], d[4], d[5], F, d[7], d[8], d[9], d[10], d[11], d[12],
                                            cols, dy, dw3, db2);
            nnk_im2col_(n, d[1], d[2], d[3], d[4], d[5], d[7], d[8], d[9], d[10], d[11], d[12], x, work);
#ifdef _OPENMP
            omp_set_num_threads(saved);
#endif
            cr_expect(memcmp(y1, y2, yl * sizeof *y1) == 0, "shape #%d, %d threads: y differs", s, t);
            cr_expect(memcmp(cols, work, (size_t)rows * kdim * sizeof *cols) == 0, "shape #%d: kept matrix differs", s);
            cr_expect(memcmp(dw1, dw2, wl * sizeof *dw1) == 0, "shape #%d, %d threads: dw differs", s, t);
            cr_expect(memcmp(dw1, dw3, wl * sizeof *dw1) == 0, "shape #%d, %d threads: dw (with db) differs", s, t);
            cr_expect(memcmp(db1, db2, F * sizeof *db1) == 0, "shape #%d, %d threads: db differs", s, t);
            free(x); free(w); free(b); free(dy); free(y1); free(y2); free(cols);
            free(dw1); free(dw2); free(dw3); free(db1); free(db2); free(work);
        }
}

Test(gemm, weight_gradient_with_bias_gradient_gives_the_separate_bits) {
    /* M x N x K of xᵀ·dy: Dense layers (K = the batch), N past one column block and the
     * stack buffer, K past several K slices, and an empty product (M = 0: db alone). */
    int sizes[][3] = {{1600, 64, 32}, {64, 10, 32}, {7, 300, 1000}, {33, 1030, 70}, {0, 20, 50}, {5, 3, 1}};
    for (int s = 0; s < 6; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        float *A = rand_buf((size_t)K * M), *dy = rand_buf((size_t)K * N);
        float *dw1 = rand_buf((size_t)M * N), *dw2 = rand_buf((size_t)M * N), *db1 = rand_buf(N), *db2 = rand_buf(N);
        nnk_gemm(1, 0, M, N, K, A, dy, dw1, 0);
        nnk_bias_grad(K, N, dy, db1);
        nnk_gemm_tn_bias_grad(M, N, K, A, dy, dw2, db2);
        cr_expect(memcmp(dw1, dw2, (size_t)M * N * sizeof *dw1) == 0, "%dx%dx%d: dw differs", M, N, K);
        cr_expect(memcmp(db1, db2, N * sizeof *db1) == 0, "%dx%dx%d: db differs", M, N, K);
        free(A); free(dy); free(dw1); free(dw2); free(db1); free(db2);
    }
}

/* ------------------------------------------------------------ pooling */

Test(pooling, maxpool_ties_send_gradient_to_first_max) {
    float x[4] = {3, 3, 3, 3}, y[1], dy[1] = {1}, dx[4] = {9, 9, 9, 9};
    nnk_maxpool2d_fwd(1, 2, 2, 1, 2, 2, 2, 2, 0, 0, 1, 1, x, y);
    nnk_maxpool2d_bwd(1, 2, 2, 1, 2, 2, 2, 2, 0, 0, 1, 1, x, y, dy, dx);
    cr_expect_eq(y[0], 3);
    float want[4] = {1, 0, 0, 0};
    for (int i = 0; i < 4; i++) cr_expect_eq(dx[i], want[i], "all equal: dx[%d] = %g", i, dx[i]);
    float x2[4] = {1, 5, 2, 5}; /* tie between cells 1 and 3 */
    nnk_maxpool2d_fwd(1, 2, 2, 1, 2, 2, 2, 2, 0, 0, 1, 1, x2, y);
    nnk_maxpool2d_bwd(1, 2, 2, 1, 2, 2, 2, 2, 0, 0, 1, 1, x2, y, dy, dx);
    float want2[4] = {0, 1, 0, 0};
    for (int i = 0; i < 4; i++) cr_expect_eq(dx[i], want2[i], "tie: dx[%d] = %g", i, dx[i]);
}

/* Backward against a per-channel argmax over each window, for tiling windows (2x2
 * stride 2 on 7x7: the last row and column belong to no window and must be cleared)
 * and overlapping ones (3x3 stride 2); dx starts as garbage. */
Test(pooling, maxpool_bwd_matches_per_channel_argmax) {
    /* n H W C PH PW SH SW OH OW */
    int shapes[][10] = {{2, 7, 7, 19, 2, 2, 2, 2, 3, 3}, {2, 7, 7, 19, 3, 3, 2, 2, 3, 3}};
    for (int s = 0; s < 2; s++) {
        int *d = shapes[s], n = d[0], H = d[1], W = d[2], C = d[3], OH = d[8], OW = d[9];
        size_t xl = (size_t)n * H * W * C, yl = (size_t)n * OH * OW * C;
        float *x = rand_buf(xl), *y = rand_buf(yl), *dy = rand_buf(yl), *dx = rand_buf(xl);
        double *ref = calloc(xl, sizeof *ref);
        for (size_t i = 0; i < xl; i += 3) x[i] = x[i + 1 < xl ? i + 1 : i];  /* some ties */
        nnk_maxpool2d_fwd(n, H, W, C, d[4], d[5], d[6], d[7], 0, 0, OH, OW, x, y);
        nnk_maxpool2d_bwd(n, H, W, C, d[4], d[5], d[6], d[7], 0, 0, OH, OW, x, y, dy, dx);
        for (int b = 0; b < n; b++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    for (int c = 0; c < C; c++) {
                        int best = -1;
                        float bv = 0;
                        for (int ih = oh * d[6]; ih < oh * d[6] + d[4]; ih++)
                            for (int iw = ow * d[7]; iw < ow * d[7] + d[5]; iw++) {
                                float v = x[(((size_t)b * H + ih) * W + iw) * C + c];
                                if (best < 0 || v > bv) { best = ih * W + iw; bv = v; }
                            }
                        ref[((size_t)b * H * W + best) * C + c] += dy[(((size_t)b * OH + oh) * OW + ow) * C + c];
                    }
        int bad = 0;
        for (size_t i = 0; i < xl; i++) bad += fabs(dx[i] - ref[i]) > 1e-6;
        cr_expect(bad == 0, "maxpool bwd shape #%d: %d of %zu cells differ", s, bad, xl);
        free(x); free(y); free(dy); free(dx); free(ref);
    }
}

Test(pooling, maxpool_padding_never_wins) {
    /* 3x3 of negatives, pool 2x2 stride 2 'same': out 2x2, pad 1 at bottom/right; the
     * last window holds only x[2][2], and its max is that, not a padding zero. */
    float x[9], y[4];
    for (int i = 0; i < 9; i++) x[i] = -(float)(i + 1);
    nnk_maxpool2d_fwd(1, 3, 3, 1, 2, 2, 2, 2, 0, 0, 2, 2, x, y);
    float want[4] = {-1, -3, -7, -9};
    for (int i = 0; i < 4; i++) cr_expect_eq(y[i], want[i], "y[%d] = %g", i, y[i]);
}

Test(pooling, avgpool_same_counts_only_valid_cells) {
    /* x = 1..9 as 3x3, pool 3x3 stride 1 'same' (pad 1 all round):
     * corner (1+2+4+5)/4 = 3, edge (1+..+6)/6 = 3.5, center 45/9 = 5, far corner 28/4 = 7. */
    float x[9], y[9], dy[9], dx[9];
    for (int i = 0; i < 9; i++) { x[i] = (float)(i + 1); dy[i] = 1; }
    nnk_avgpool2d_fwd(1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 3, 3, x, y);
    float want[9] = {3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7};
    for (int i = 0; i < 9; i++) EXPECT_NEAR(y[i], want[i], 1e-6);
    /* dx[0][0] gets 1/count from the 4 windows covering it: 1/4 + 1/6 + 1/6 + 1/9. */
    nnk_avgpool2d_bwd(1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 3, 3, dy, dx);
    EXPECT_NEAR(dx[0], 1.0 / 4 + 1.0 / 6 + 1.0 / 6 + 1.0 / 9, 1e-6);
    EXPECT_NEAR(dx[4], 4.0 / 4 + 4.0 / 6 + 1.0 / 9, 1e-6); /* center: in all 9 windows */
}

Test(pooling, global_average) {
    float x[2 * 3 * 2] = {1, 10, 2, 20, 3, 30, /* sample 1 */ -1, 0, -2, 0, -3, 6};
    float y[4], dy[4] = {3, 6, 9, 12}, dx[12];
    nnk_global_avgpool2d_fwd(2, 3, 2, x, y);
    float want[4] = {2, 20, -2, 2};
    for (int i = 0; i < 4; i++) EXPECT_NEAR(y[i], want[i], 1e-6);
    nnk_global_avgpool2d_bwd(2, 3, 2, dy, dx);
    EXPECT_NEAR(dx[0], 1, 1e-6);
    EXPECT_NEAR(dx[5], 2, 1e-6);
    EXPECT_NEAR(dx[10], 3, 1e-6);
}

/* ------------------------------------------------------------ activations */

Test(activations, softmax_rows_sum_to_one_with_huge_logits) {
    float x[9] = {1000, 1000, -1000, -1e4f, 0, 1e4f, 88, 89, 90}, y[9];
    nnk_softmax_fwd(3, 3, x, y);
    for (int r = 0; r < 3; r++) {
        double s = 0;
        for (int c = 0; c < 3; c++) {
            cr_expect(isfinite(y[r * 3 + c]), "y[%d][%d] not finite", r, c);
            s += y[r * 3 + c];
        }
        EXPECT_NEAR(s, 1, 1e-6);
    }
    EXPECT_NEAR(y[0], 0.5, 1e-7);
    EXPECT_NEAR(y[2], 0, 1e-30);
    EXPECT_NEAR(y[5], 1, 1e-7);
    EXPECT_NEAR(y[8], 1 / (1 + exp(-1) + exp(-2)), 1e-6);
}

Test(activations, relu_sigmoid_tanh_values_and_tails) {
    float x[5] = {-100, -1, 0, 1, 100}, y[5];
    nnk_relu_fwd(5, x, y);
    float relu[5] = {0, 0, 0, 1, 100};
    for (int i = 0; i < 5; i++) cr_expect_eq(y[i], relu[i]);
    nnk_sigmoid_fwd(5, x, y);
    EXPECT_NEAR(y[0], 0, 1e-30);
    EXPECT_NEAR(y[1], 1 / (1 + exp(1.0)), 1e-7);
    EXPECT_NEAR(y[2], 0.5, 0);
    EXPECT_NEAR(y[4], 1, 0);
    nnk_tanh_fwd(5, x, y);
    EXPECT_NEAR(y[0], -1, 0);
    EXPECT_NEAR(y[3], tanh(1.0), 1e-7);
}

/* ------------------------------------------------------------ dropout */

Test(dropout, keeps_about_one_minus_rate_scaled_and_reproducible) {
    int64_t len = 100000;
    double rate = 0.25;
    float *x = rand_buf(len), *y = malloc(len * sizeof *y), *m1 = malloc(len * sizeof *m1);
    float *m2 = malloc(len * sizeof *m2);
    nnk_dropout_fwd(len, rate, 7, x, y, m1);
    int64_t kept = 0;
    for (int64_t i = 0; i < len; i++) {
        cr_assert(m1[i] == 0 || m1[i] == (float)(1 / (1 - rate)), "mask[%ld] = %g", (long)i, m1[i]);
        cr_assert_eq(y[i], x[i] * m1[i]);
        kept += m1[i] != 0;
    }
    EXPECT_NEAR((double)kept / len, 1 - rate, 0.01);
    nnk_dropout_fwd(len, rate, 7, x, y, m2);
    cr_expect(memcmp(m1, m2, len * sizeof *m1) == 0, "same seed, different mask");
    nnk_dropout_fwd(len, rate, 8, x, y, m2);
    cr_expect(memcmp(m1, m2, len * sizeof *m1) != 0, "different seeds, same mask");
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    nnk_dropout_fwd(len, rate, 7, x, y, m2);
    omp_set_num_threads(saved);
    cr_expect(memcmp(m1, m2, len * sizeof *m1) == 0, "mask depends on the thread count");
#endif
    nnk_dropout_fwd(len, 0, 7, x, y, m2);
    cr_expect(memcmp(x, y, len * sizeof *x) == 0, "rate 0 is not the identity");
    free(x); free(y); free(m1); free(m2);
}

/* ------------------------------------------------------------ batchnorm */

Test(batchnorm, one_training_step_updates_moving_stats_keras_style) {
    /* Channel 0: x = 1,2,3,4 -> mean 2.5, biased var 1.25.
     * moving_mean 0 -> 0*0.99 + 2.5*0.01 = 0.025; moving_var 1 -> 0.99 + 1.25*0.01 = 1.0025.
     * y = 2 (x - 2.5)/sqrt(1.25 + 1e-3) + 1.  Channel 1: constant 5 -> y = beta = -1. */
    float x[8] = {1, 5, 2, 5, 3, 5, 4, 5}, gamma[2] = {2, 3}, beta[2] = {1, -1}, y[8];
    float mean[2], invstd[2], mm[2] = {0, 0}, mv[2] = {1, 1};
    nnk_batchnorm_fwd_train(4, 2, 1e-3, 0.99, x, gamma, beta, y, mean, invstd, mm, mv);
    EXPECT_NEAR(mean[0], 2.5, 1e-7);
    EXPECT_NEAR(invstd[0], 1 / sqrt(1.251), 1e-6);
    EXPECT_NEAR(mm[0], 0.025, 1e-7);
    EXPECT_NEAR(mv[0], 1.0025, 1e-6);
    EXPECT_NEAR(mm[1], 0.05, 1e-7);
    EXPECT_NEAR(mv[1], 0.99, 1e-6);
    float want[4] = {-1.6822089f, 0.10593037f, 1.8940696f, 3.6822089f};
    for (int r = 0; r < 4; r++) {
        EXPECT_NEAR(y[2 * r], want[r], 1e-5);
        EXPECT_NEAR(y[2 * r + 1], -1, 1e-6);
    }
    /* Inference uses the moving statistics; NULL gamma/beta mean 1 and 0. */
    nnk_batchnorm_fwd_infer(4, 2, 1e-3, x, NULL, NULL, mm, mv, y);
    EXPECT_NEAR(y[0], (1 - 0.025) / sqrt(1.0025 + 1e-3), 1e-6);
    EXPECT_NEAR(y[1], (5 - 0.05) / sqrt(0.99 + 1e-3), 1e-5);
}

/* ------------------------------------------------------------ losses */

Test(losses, sparse_softmax_xent_values_and_bad_labels) {
    float z[6] = {0, 0, 0, 1000, 0, -1000}, labels[2] = {1, 0}, p[6], g[6];
    double sum = nnk_loss_sparse_softmax_xent(2, 3, z, labels, p, g);
    EXPECT_NEAR(sum, log(3.0), 1e-6); /* uniform row: log 3; confident right row: 0 */
    EXPECT_NEAR(p[0], 1.0 / 3, 1e-7);
    EXPECT_NEAR(g[1], (1.0 / 3 - 1) / 2, 1e-7);
    labels[1] = 1;
    EXPECT_NEAR(nnk_loss_sparse_softmax_xent(2, 3, z, labels, NULL, NULL), log(3.0) + 1000, 1e-3);
    float bad[3] = {3, -1, NAN};
    for (int i = 0; i < 3; i++)
        cr_expect(isnan(nnk_loss_sparse_softmax_xent(1, 3, z, &bad[i], NULL, g)), "label %g", bad[i]);
}

Test(losses, probability_losses_clip_like_keras) {
    float p1[2] = {0, 1}, y1[2] = {1, 1};
    /* bce: p=0,y=1 -> -log(1e-7) = 16.118; p=1,y=1 -> -log(1-1e-7) ~ 1e-7; mean over K=2. */
    EXPECT_NEAR(nnk_loss_bce(1, 2, p1, y1, NULL), (16.11809565 + 1e-7) / 2, 1e-5);
    /* cce normalizes first: p = (2, 2) -> (0.5, 0.5). */
    float p2[2] = {2, 2}, y2[2] = {1, 0};
    EXPECT_NEAR(nnk_loss_cce(1, 2, p2, y2, NULL), log(2.0), 1e-6);
    /* sparse cce: -log(0.5) + log(0.2+0.3+0.5). */
    float p3[3] = {0.2f, 0.3f, 0.5f}, l3 = 2;
    EXPECT_NEAR(nnk_loss_sparse_cce(1, 3, p3, &l3, NULL), log(2.0), 1e-6);
    float z[3] = {0, 100, -100}, t[3] = {1, 1, 1};
    EXPECT_NEAR(nnk_loss_sigmoid_bce(1, 3, z, t, NULL, NULL), (log(2.0) + 0 + 100) / 3, 1e-5);
}

Test(losses, mse_and_mae_reduce_per_sample_then_sum) {
    float pred[4] = {1, 2, 0, -3}, y[4] = {0, 0, 0, 0}, g[4];
    /* sample 0: (1+4)/2 = 2.5; sample 1: 9/2 = 4.5 */
    EXPECT_NEAR(nnk_loss_mse(2, 2, pred, y, g), 7.0, 1e-6);
    EXPECT_NEAR(g[1], 2 * 2.0 / 4, 1e-7);
    EXPECT_NEAR(nnk_loss_mae(2, 2, pred, y, g), 1.5 + 1.5, 1e-6);
    EXPECT_NEAR(g[0], 0.25, 0);
    EXPECT_NEAR(g[2], 0, 0); /* sign(0) = 0 */
    EXPECT_NEAR(g[3], -0.25, 0);
}

/* ------------------------------------------------------------ regularizers */

Test(regularizers, l1l2_loss_and_accumulated_grad) {
    float w[2] = {1, -2}, g[2] = {10, 10};
    EXPECT_NEAR(nnk_l1l2_loss(2, 0.1, 0.01, w), 0.1 * 3 + 0.01 * 5, 1e-7);
    nnk_l1l2_grad(2, 0.1, 0.01, w, g);
    EXPECT_NEAR(g[0], 10 + 0.1 + 0.02, 1e-6);
    EXPECT_NEAR(g[1], 10 - 0.1 - 0.04, 1e-6);
}

/* ------------------------------------------------------------ optimizers */

Test(optimizers, sgd_plain_momentum_nesterov) {
    /* w=1, g=0.5 twice, lr 0.1, momentum 0.9.
     * plain: 0.95.  momentum: m=-0.05, w=0.95; m=-0.095, w=0.855.
     * nesterov: w += 0.9m - 0.05: 1 - 0.045 - 0.05 = 0.905; then 0.905 - 0.0855 - 0.05 = 0.7695. */
    float g = 0.5f, w = 1, m = 0;
    nnk_sgd_update(1, 0.1, 0, 0, &w, &g, NULL);
    EXPECT_NEAR(w, 0.95, 1e-7);
    w = 1;
    for (int s = 0; s < 2; s++) nnk_sgd_update(1, 0.1, 0.9, 0, &w, &g, &m);
    EXPECT_NEAR(w, 0.855, 1e-6);
    EXPECT_NEAR(m, -0.095, 1e-7);
    w = 1; m = 0;
    nnk_sgd_update(1, 0.1, 0.9, 1, &w, &g, &m);
    EXPECT_NEAR(w, 0.905, 1e-7);
    nnk_sgd_update(1, 0.1, 0.9, 1, &w, &g, &m);
    EXPECT_NEAR(w, 0.7695, 1e-6);
}

Test(optimizers, adam_first_two_steps) {
    /* lr 1e-3, β1 0.9, β2 0.999, ε 1e-7, w=1.  Step 1, g=0.5: m=0.05, v=2.5e-4,
     * alpha = 1e-3·sqrt(1e-3)/0.1 = 3.16228e-4, w -= alpha·0.05/(0.0158114+1e-7) -> 0.99900000632.
     * Step 2, g=-0.25: m=0.02, v=3.1225e-4, alpha = 1e-3·sqrt(1-0.999²)/(1-0.9²) -> w = 0.99873367079. */
    float w = 1, m = 0, v = 0, g = 0.5f;
    nnk_adam_update(1, 1e-3, 0.9, 0.999, 1e-7, 1, &w, &g, &m, &v);
    EXPECT_NEAR(m, 0.05, 1e-8);
    EXPECT_NEAR(v, 2.5e-4, 1e-10);
    EXPECT_NEAR(w, 0.99900000632, 1e-7);
    g = -0.25f;
    nnk_adam_update(1, 1e-3, 0.9, 0.999, 1e-7, 2, &w, &g, &m, &v);
    EXPECT_NEAR(m, 0.02, 1e-8);
    EXPECT_NEAR(v, 3.1225e-4, 1e-10);
    EXPECT_NEAR(w, 0.99873367079, 1e-7);
}

/* Vector body and scalar remainder (37 = 2 vectors + 5 at 16 lanes) follow the same
 * formula; moments decayed into subnormals are flushed; the FP mode is restored. */
Test(optimizers, adam_vector_body_and_remainder_agree_and_flush_subnormals) {
    enum { LEN = 37 };
    float w[LEN], g[LEN], m[LEN], v[LEN];
    for (int i = 0; i < LEN; i++) { w[i] = uniform(-1, 1); g[i] = uniform(-1, 1); m[i] = 0; v[i] = 0; }
    float w0[LEN];
    memcpy(w0, w, sizeof w);
    nnk_adam_update(LEN, 1e-3, 0.9, 0.999, 1e-7, 1, w, g, m, v);
    double alpha = 1e-3 * sqrt(1 - 0.999) / (1 - 0.9);
    for (int i = 0; i < LEN; i++) {
        double mi = 0.1 * g[i], vi = 0.001 * (double)g[i] * g[i];
        EXPECT_NEAR(m[i], mi, 1e-7);
        EXPECT_NEAR(v[i], vi, 1e-9);
        EXPECT_NEAR(w[i], w0[i] - alpha * mi / (sqrt(vi) + 1e-7), 1e-6);
    }
    /* m = 1e-38 (subnormal below 1.18e-38) with g = 0 would decay to 9e-39; it becomes 0. */
    for (int i = 0; i < LEN; i++) { g[i] = 0; m[i] = 1e-38f; v[i] = 1; }
    nnk_adam_update(LEN, 1e-3, 0.9, 0.999, 1e-7, 2, w, g, m, v);
#if defined(__SSE2__)
    for (int i = 0; i < LEN; i++) cr_expect_eq(m[i], 0.0f, "m[%d] = %g, expected a flushed 0", i, m[i]);
#endif
    volatile float tiny = 1e-38f;
    cr_expect(tiny * 0.5f != 0, "the caller's FP mode (no flush to zero) was not restored");
}

Test(optimizers, rmsprop_plain_and_centered_with_momentum) {
    /* lr 0.01, ρ 0.9, ε 1e-7, g = 0.5 then -0.25.
     * plain: v=0.025, w = 1 - 0.005/sqrt(0.025+1e-7) = 0.96837729;
     *        v=0.02875, w += 0.0025/sqrt(0.02875+1e-7) -> 0.98312146.
     * centered, momentum 0.5: v=0.025, mg=0.05, denom 0.0225, inc = 0.0333332593, w = 0.96666674;
     *        v=0.02875, mg=0.02, mom = 0.5·inc + inc2 -> w = 0.96484793. */
    float w = 1, v = 0, g = 0.5f;
    nnk_rmsprop_update(1, 0.01, 0.9, 0, 1e-7, 0, &w, &g, &v, NULL, NULL);
    EXPECT_NEAR(w, 0.96837729, 1e-6);
    g = -0.25f;
    nnk_rmsprop_update(1, 0.01, 0.9, 0, 1e-7, 0, &w, &g, &v, NULL, NULL);
    EXPECT_NEAR(w, 0.98312146, 1e-6);
    float mom = 0, mg = 0;
    w = 1; v = 0; g = 0.5f;
    nnk_rmsprop_update(1, 0.01, 0.9, 0.5, 1e-7, 1, &w, &g, &v, &mom, &mg);
    EXPECT_NEAR(mg, 0.05, 1e-8);
    EXPECT_NEAR(w, 0.96666674, 1e-6);
    g = -0.25f;
    nnk_rmsprop_update(1, 0.01, 0.9, 0.5, 1e-7, 1, &w, &g, &v, &mom, &mg);
    EXPECT_NEAR(mom, 0.00181880904, 1e-7);
    EXPECT_NEAR(w, 0.96484793, 1e-6);
    /* A tiny gradient shows where ε sits (inside the sqrt, as Keras):
     * g=1e-4: v = 1e-9, w = -0.01·1e-4/sqrt(1e-9 + 1e-7) = -3.1465839e-3
     * (with ε outside the sqrt it would be -0.0316). */
    w = 0; v = 0; g = 1e-4f;
    nnk_rmsprop_update(1, 0.01, 0.9, 0, 1e-7, 0, &w, &g, &v, NULL, NULL);
    EXPECT_NEAR(w, -3.1465839e-3, 1e-8);
}

/* fuse_updates.c: one grouped kernel over several weights (sizes around the chunk and
 * vector widths, one past the parallel threshold) gives the per-weight kernels' bits,
 * on 1 and 3 threads, for every optimizer and setting the compiler emits. */
Test(optimizers, update_all_equals_one_kernel_per_weight) {
    enum { PARTS = 5 };
    const int64_t size[PARTS] = {1, 17, NNK_UPDATE_CHUNK + 5, 3, NNK_PAR_MIN + 33};
    for (int variant = 0; variant < 6; variant++)
        for (int threads = 1; threads <= 3; threads += 2) {
            omp_set_num_threads(threads);
            float *w[PARTS], *g[PARTS], *s[PARTS][3], *rw[PARTS], *rs[PARTS][3];
            for (int k = 0; k < PARTS; k++) {
                w[k] = rand_buf(size[k]), g[k] = rand_buf(size[k]);
                rw[k] = malloc(size[k] * sizeof(float));
                memcpy(rw[k], w[k], size[k] * sizeof(float));
                for (int j = 0; j < 3; j++) {
                    s[k][j] = rand_buf(size[k]);
                    for (int64_t i = 0; i < size[k]; i++) s[k][j][i] = s[k][j][i] * s[k][j][i];  /* v >= 0 */
                    rs[k][j] = malloc(size[k] * sizeof(float));
                    memcpy(rs[k][j], s[k][j], size[k] * sizeof(float));
                }
            }
            float *s0[PARTS], *s1[PARTS], *s2[PARTS];
            for (int k = 0; k < PARTS; k++) s0[k] = s[k][0], s1[k] = s[k][1], s2[k] = s[k][2];
            const float *gc[PARTS];
            for (int k = 0; k < PARTS; k++) gc[k] = g[k];
            double mom = variant == 1 || variant == 2 || variant == 5 ? 0.9 : 0;
            for (int k = 0; k < PARTS; k++) {
                if (variant <= 2) nnk_sgd_update(size[k], 0.05, mom, variant == 2, rw[k], g[k], rs[k][0]);
                else if (variant == 3) nnk_adam_update(size[k], 1e-3, 0.9, 0.999, 1e-7, 3, rw[k], g[k], rs[k][0], rs[k][1]);
                else nnk_rmsprop_update(size[k], 1e-3, 0.9, mom, 1e-7, variant == 5, rw[k], g[k], rs[k][0], rs[k][1], rs[k][2]);
            }
            if (variant <= 2) nnk_sgd_update_all(PARTS, w, gc, s0, size, 0.05, mom, variant == 2);
            else if (variant == 3) nnk_adam_update_all(PARTS, w, gc, s0, s1, size, 1e-3, 0.9, 0.999, 1e-7, 3);
            else nnk_rmsprop_update_all(PARTS, w, gc, s0, s1, s2, size, 1e-3, 0.9, mom, 1e-7, variant == 5);
            for (int k = 0; k < PARTS; k++) {
                cr_expect_eq(memcmp(w[k], rw[k], size[k] * sizeof(float)), 0, "variant %d, %d threads: weight %d differs",
                             variant, threads, k);
                for (int j = 0; j < 3; j++)
                    cr_expect_eq(memcmp(s[k][j], rs[k][j], size[k] * sizeof(float)), 0,
                                 "variant %d, %d threads: weight %d slot %d differs", variant, threads, k, j);
                free(w[k]), free(g[k]), free(rw[k]);
                for (int j = 0; j < 3; j++) free(s[k][j]), free(rs[k][j]);
            }
        }
    omp_set_num_threads(omp_get_num_procs());
}

/* ------------------------------------------------------------ pointwise chains */

/* The per-op kernel of a chain op (fuse_elementwise.c): what the chain must equal. */
static void ew_reference(int op, int64_t len, float a, const float *x, const float *dy, float *y) {
    switch (op) {
    case NN_EW_RELU: nnk_relu_fwd(len, x, y); break;
    case NN_EW_SIGMOID: nnk_sigmoid_fwd(len, x, y); break;
    case NN_EW_TANH: nnk_tanh_fwd(len, x, y); break;
    case NN_EW_GELU: nnk_gelu_fwd(len, x, y); break;
    case NN_EW_SILU: nnk_silu_fwd(len, x, y); break;
    case NN_EW_ELU: nnk_elu_fwd(len, a, x, y); break;
    case NN_EW_SELU: nnk_selu_fwd(len, x, y); break;
    case NN_EW_LEAKY_RELU: nnk_leaky_relu_fwd(len, a, x, y); break;
    case NN_EW_SOFTPLUS: nnk_softplus_fwd(len, x, y); break;
    case NN_EW_HARD_SIGMOID: nnk_hard_sigmoid_fwd(len, x, y); break;
    case NN_EW_RELU_BWD: nnk_relu_bwd(len, x, dy, y); break;
    case NN_EW_SIGMOID_BWD: nnk_sigmoid_bwd(len, x, dy, y); break;
    case NN_EW_TANH_BWD: nnk_tanh_bwd(len, x, dy, y); break;
    case NN_EW_GELU_BWD: nnk_gelu_bwd(len, x, dy, y); break;
    case NN_EW_SILU_BWD: nnk_silu_bwd(len, x, dy, y); break;
    case NN_EW_ELU_BWD: nnk_elu_bwd(len, a, x, dy, y); break;
    case NN_EW_SELU_BWD: nnk_selu_bwd(len, x, dy, y); break;
    case NN_EW_LEAKY_RELU_BWD: nnk_leaky_relu_bwd(len, a, x, dy, y); break;
    case NN_EW_SOFTPLUS_BWD: nnk_softplus_bwd(len, x, dy, y); break;
    case NN_EW_HARD_SIGMOID_BWD: nnk_hard_sigmoid_bwd(len, x, dy, y); break;
    case NN_EW_DROPOUT_BWD: nnk_dropout_bwd(len, x, dy, y); break;
    case NN_EW_ADD: nnk_copy(len, x, y), nnk_add_inplace(len, y, dy); break;
    default: cr_assert_fail("op %d has no reference", op);
    }
}

/* Every op alone, and a chain of four, give the per-op kernels' bits: at a length of a
 * few tiles plus a remainder (one thread) and past the parallel threshold. */
Test(ewise_chain, every_op_alone_and_chained_gives_the_per_op_bits) {
    const int64_t lens[2] = {3 * NNK_EW_TILE + 7, NNK_PAR_MIN / 8 + 5};
    for (int l = 0; l < 2; l++) {
        int64_t len = lens[l];
        float *x = rand_buf(len), *dy = rand_buf(len), *x2 = rand_buf(len), *x3 = rand_buf(len);
        for (int64_t i = 0; i < len; i++) x[i] *= 4, x2[i] = x2[i] > 0 ? 1.25f : 0;   /* tails; a mask */
        float *got = rand_buf(len), *want = rand_buf(len), *t1 = rand_buf(len), *t2 = rand_buf(len);
        for (int op = NN_EW_RELU; op <= NN_EW_ADD; op++) {
            float a = 0.7f;
            const float *xs[1] = {x}, *ds[1] = {op >= NN_EW_RELU_BWD ? dy : NULL};
            nnk_ewise_chain(len, 1, &op, &a, xs, ds, got);
            ew_reference(op, len, a, x, dy, want);
            cr_expect_eq(memcmp(got, want, len * sizeof *got), 0, "op %d alone (len %lld) differs from its kernel", op,
                         (long long)len);
        }
        /* elu(x) -> relu_bwd(y = x3, dy = that) -> dropout_bwd(mask x2, that) -> add(that, dy) */
        const int ops[4] = {NN_EW_ELU, NN_EW_RELU_BWD, NN_EW_DROPOUT_BWD, NN_EW_ADD};
        const float alpha[4] = {0.7f, 0, 0, 0};
        const float *xs[4] = {x, x3, x2, NULL}, *ds[4] = {NULL, NULL, NULL, dy};
        nnk_ewise_chain(len, 4, ops, alpha, xs, ds, got);
        nnk_elu_fwd(len, 0.7f, x, t1);
        nnk_relu_bwd(len, x3, t1, t2);
        nnk_dropout_bwd(len, x2, t2, t1);
        nnk_copy(len, t1, want), nnk_add_inplace(len, want, dy);
        cr_expect_eq(memcmp(got, want, len * sizeof *got), 0, "a chain of four (len %lld) differs from its kernels",
                     (long long)len);
        free(x), free(dy), free(x2), free(x3), free(got), free(want), free(t1), free(t2);
    }
}

/* ------------------------------------------------------------ bias, copies */

Test(misc, bias_copy_add) {
    float y[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30}, db[3];
    nnk_bias_add(2, 3, y, b);
    cr_expect_eq(y[4], 25);
    nnk_bias_grad(2, 3, y, db);
    cr_expect_eq(db[0], 11 + 14);
    float z[6];
    nnk_copy(6, y, z);
    nnk_add_inplace(6, z, y);
    cr_expect_eq(z[5], 72);
}

Test(conv2d, scratch_is_bounded_for_large_images) {
    /* examples/cnn_224.nn, conv2d_1: 32 x 111x111x32 -> 109x109x64.  A whole-batch cols
     * matrix would be 32·109²·288 = 110M elements; chunks keep it under the cap. */
    size_t elems = nnk_conv2d_work_elems(32, 111, 111, 32, 3, 3, 64, 1, 1, 109, 109);
    size_t sample = (size_t)109 * 109 * 288;   /* one sample past the cap is done alone */
    cr_expect_leq(elems, NNK_CONV_WORK_CAP > sample ? NNK_CONV_WORK_CAP : sample);
    cr_expect_lt(elems, (size_t)32 * sample / 8, "the batch must be cut into chunks");
    cr_expect_geq(elems, sample, "at least one sample must fit");
    /* Chunks of equal size: 128 samples of 34,848 elements under a cap of 2^21 are three
     * chunks of 43 (not 60, 60 and 8); but a partial batch of 100 is two of 50, so the
     * workspace holds the cap's 60, which every batch up to 128 fits. */
    if (NNK_CONV_WORK_CAP == ((size_t)1 << 21)) {
        cr_expect_eq(nnk_conv2d_chunk_(128, 11, 11, 3, 3, 32), 43);
        cr_expect_eq(nnk_conv2d_chunk_(100, 11, 11, 3, 3, 32), 50);
        size_t work = nnk_conv2d_work_elems(128, 13, 13, 32, 3, 3, 64, 1, 1, 11, 11);
        cr_expect_eq(work, (size_t)60 * 121 * 288);
        for (int n = 1; n <= 128; n++)
            cr_expect_leq((size_t)nnk_conv2d_chunk_(n, 11, 11, 3, 3, 32) * 121 * 288, work, "batch %d", n);
    }
    /* Small problems still use one whole-batch chunk. */
    cr_expect_eq(nnk_conv2d_work_elems(32, 13, 13, 32, 3, 3, 64, 1, 1, 11, 11), (size_t)32 * 121 * 288);
    cr_expect_eq(nnk_conv2d_work_elems(32, 8, 8, 4, 1, 1, 6, 1, 1, 8, 8), 0);
}
