/* The pre-packed weight layout of kernels/nn_kernels.h (compiler/ir/layout.c picks it):
 * the packed GEMM and the packed (im2col-free) convolution give the same bits as the
 * NHWC kernels they replace, the packed data gradient the same values up to float
 * reassociation, and none depends on the thread count; the blocked-channel filter gradient
 * gives the NHWC one's values. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn_kernels.h"

static uint64_t rng_state = 0x5EEDull;

static float *rand_buf(size_t len) {
    float *p = malloc((len ? len : 1) * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < len; i++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(rng_state >> 11) * 0x1.0p-53 * 2 - 1);
    }
    return p;
}

static size_t packed_elems(int K, int N) { return (size_t)K * ((N + NNK_PACK_COLS - 1) / NNK_PACK_COLS * NNK_PACK_COLS); }

static void set_threads(int t) {
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

/* C = op(A)·op(B) + bias, activation: packed against nnk_gemm_bias_act, byte for byte. */
static void check_gemm(int tb, int M, int N, int K, int act) {
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N), *bias = rand_buf(N);
    float *bp = rand_buf(packed_elems(K, N));   /* garbage in the padding must not matter */
    float *want = malloc((size_t)M * N * sizeof *want), *got = malloc((size_t)M * N * sizeof *got);
    nnk_gemm_bias_act(0, tb, M, N, K, A, B, act ? bias : NULL, act, want);
    nnk_pack_b(tb, K, N, B, bp);
    for (int threads = 1; threads <= 3; threads += 2) {
        set_threads(threads);
        memset(got, 0xff, (size_t)M * N * sizeof *got);
        nnk_gemm_packed(M, N, K, A, bp, act ? bias : NULL, act, got);
        cr_expect(!memcmp(got, want, (size_t)M * N * sizeof *got), "gemm_packed tb=%d %dx%dx%d act=%d, %d threads: "
                  "bits differ from nnk_gemm_bias_act", tb, M, N, K, act, threads);
    }
    /* With a fused activation gradient (fuse_grad.c): C times act'(y). */
    float *y = rand_buf((size_t)M * N);
    int gact = 1 + tb + act % 2;   /* relu, sigmoid or tanh */
    nnk_gemm_act_grad(0, tb, M, N, K, A, B, y, gact, want);
    set_threads(3);
    nnk_gemm_packed_act_grad(M, N, K, A, bp, y, gact, got);
    cr_expect(!memcmp(got, want, (size_t)M * N * sizeof *got), "gemm_packed_act_grad tb=%d %dx%dx%d act=%d: bits "
              "differ from nnk_gemm_act_grad", tb, M, N, K, gact);
    set_threads(2);
    free(A); free(B); free(bias); free(bp); free(want); free(got); free(y);
}

Test(gemm_packed, same_bits_as_the_gemm_it_replaces) {
    /* Partial MR/NR panels, several K slices (K > 256), few rows with many columns (a
     * Dense data gradient) and many rows with few (a convolution). */
    int sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {32, 64, 1600}, {32, 1600, 64}, {67, 33, 129}, {300, 70, 600},
                      {130, 131, 260}, {5, 300, 17}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int tb = 0; tb < 2; tb++)
            check_gemm(tb, sizes[s][0], sizes[s][1], sizes[s][2], (int)s % 4);
}

typedef struct Geom { int n, H, W, C, KH, KW, F, SH, SW, PT, PL; } Geom;
static int out_dim(int in, int k, int s, int pad_total) { return (in + pad_total - k) / s + 1; }

/* A convolution's forward pass, packed against nnk_conv2d_fwd_bias_act. */
static void check_conv(Geom g, int same_pad) {
    int PBt = same_pad ? g.KH - 1 : 0, PBl = same_pad ? g.KW - 1 : 0;
    int OH = out_dim(g.H, g.KH, g.SH, PBt), OW = out_dim(g.W, g.KW, g.SW, PBl);
    size_t xs = (size_t)g.n * g.H * g.W * g.C, ys = (size_t)g.n * OH * OW * g.F, K = (size_t)g.KH * g.KW * g.C;
    float *x = rand_buf(xs), *w = rand_buf(K * g.F), *bias = rand_buf(g.F), *bp = rand_buf(packed_elems(K, g.F));
    float *want = malloc(ys * sizeof *want), *got = malloc(ys * sizeof *got);
    float *work = malloc((nnk_conv2d_work_elems(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, OH, OW) + 1) * sizeof *work);
    nnk_conv2d_fwd_bias_act(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, x, w, bias,
                            NN_EPI_RELU, want, work);
    nnk_pack_b(0, (int)K, g.F, w, bp);
    /* The direct path (tiny windows) sums in another order: compare its values. */
    int direct = K <= NNK_CONV_DIRECT_MAX_K && g.F % NNK_VEC_LANES == 0;
    for (int threads = 1; threads <= 3; threads += 2) {
        set_threads(threads);
        nnk_conv2d_fwd_packed(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, x, bp, bias,
                              NN_EPI_RELU, got);
        if (!direct) {
            cr_expect(!memcmp(got, want, ys * sizeof *got), "conv fwd packed %dx%dx%d k%dx%d F%d s%d pad(%d,%d), %d "
                      "threads: bits differ from im2col + GEMM", g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.PT, g.PL, threads);
            continue;
        }
        double worst = 0;
        for (size_t i = 0; i < ys; i++) worst = fmax(worst, fabs(got[i] - want[i]));
        cr_expect(worst < 1e-5, "conv fwd packed (direct-size window): max difference %g", worst);
    }
    set_threads(2);
    free(x); free(w); free(bias); free(bp); free(want); free(got); free(work);
}

/* A convolution's data gradient, packed (window cell by window cell, dy's tiles added to
 * the dx cells they reach) against im2col's GEMM and col2im: the same sums in another
 * order.  trim drops dy's last rows and columns (compiler/ir/trim_pool.c: those a valid
 * max-pool never reads), so some dx cells no window reaches: both must give 0 there. */
static void check_bwd_data(Geom g, int same_pad, int trim) {
    int OH = out_dim(g.H, g.KH, g.SH, same_pad ? g.KH - 1 : 0) - trim, OW = out_dim(g.W, g.KW, g.SW, same_pad ? g.KW - 1 : 0) - trim;
    size_t xs = (size_t)g.n * g.H * g.W * g.C, ys = (size_t)g.n * OH * OW * g.F, K = (size_t)g.KH * g.KW * g.F;
    float *dy = rand_buf(ys), *w = rand_buf(K * g.C), *bp = rand_buf(packed_elems(K, g.C));
    float *want = malloc(xs * sizeof *want), *got = malloc(xs * sizeof *got), *got1 = malloc(xs * sizeof *got1);
    float *work = malloc((nnk_conv2d_work_elems(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, OH, OW) + 1) * sizeof *work);
    nnk_conv2d_bwd_data(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, dy, w, want, work);
    nnk_pack_conv_flip(g.KH, g.KW, g.C, g.F, w, bp);
    set_threads(1);
    memset(got1, 0xff, xs * sizeof *got1);   /* NaN: every cell must be written */
    nnk_conv2d_bwd_data_packed_act(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, dy, bp, NULL,
                                   NN_EPI_NONE, got1);
    set_threads(3);
    nnk_conv2d_bwd_data_packed_act(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, dy, bp, NULL,
                                   NN_EPI_NONE, got);
    set_threads(2);
    cr_expect(!memcmp(got, got1, xs * sizeof *got), "conv bwd data packed: bits depend on the thread count");
    double worst = 0;
    for (size_t i = 0; i < xs; i++) {   /* not fmax: a cell left NaN must count */
        double d = fabs(got1[i] - want[i]) / (1 + fabs(want[i]));
        if (!(d <= worst)) worst = d;
    }
    /* Float reassociation grows with the length of the sums (fashion_cnn's 576: 1e-5). */
    double tol = 1e-5 * fmax(1, sqrt(g.KH * g.KW * g.F / 576.0));
    cr_expect(worst < tol, "conv bwd data packed %dx%dx%d k%dx%d F%d s%d pad(%d,%d) trim %d: max difference %g",
              g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.PT, g.PL, trim, worst);
    /* A fused activation gradient: the same bits as the tanh_bwd kernel after it. */
    float *xact = rand_buf(xs);
    nnk_tanh_bwd((int64_t)xs, xact, got1, want);
    nnk_conv2d_bwd_data_packed_act(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, dy, bp, xact,
                                   NN_EPI_TANH, got);
    cr_expect(!memcmp(got, want, xs * sizeof *got), "conv bwd data packed with tanh's gradient: bits differ from "
              "the packed data gradient, then tanh_bwd");
    free(dy); free(w); free(bp); free(want); free(got); free(got1); free(work); free(xact);
}

Test(conv_packed, forward_same_bits_and_data_gradient_same_values) {
    /* fashion_cnn's second layer; 'same' padding with odd and even kernels; channels
     * past the 512-element zero row; stride 2; a 1x1; a first layer (direct path); a 5x5
     * window (fewer tiles per block of the forward's row tables) and a 23x23 one (its
     * tables on the heap). */
    Geom valid[] = {{3, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0}, {2, 9, 7, 5, 3, 2, 10, 1, 1, 0, 0},
                    {1, 6, 6, 600, 2, 2, 7, 1, 1, 0, 0}, {2, 11, 11, 8, 3, 3, 33, 2, 2, 0, 0},
                    {2, 5, 5, 40, 1, 1, 20, 1, 1, 0, 0}, {2, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0},
                    {3, 12, 12, 8, 5, 5, 16, 1, 1, 0, 0}, {1, 25, 24, 1, 23, 23, 8, 1, 1, 0, 0}};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        check_conv(valid[i], 0);
        check_bwd_data(valid[i], 0, 0);
    }
    Geom same[] = {{2, 8, 8, 16, 3, 3, 24, 1, 1, 1, 1}, {2, 7, 9, 6, 4, 2, 12, 1, 1, 1, 0},
                   {2, 9, 9, 12, 3, 3, 16, 2, 2, 1, 1}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        check_conv(same[i], 1);
        check_bwd_data(same[i], 1, 0);
    }
    /* The data gradient alone: dy trimmed as after a valid 2x2 max-pool (fashion_cnn's
     * second layer: 10x10 of 11x11), channels that fill no vector, stride 2 and 3 with
     * 'same' padding, a kernel wider than its stride, rows wide enough that the kernel
     * cuts dx into blocks of one or two rows (NNK_DX_BLOCK), filters enough that a pass
     * takes some window rows or some filters only (NNK_DX_KBYTES). */
    Geom dx_only[] = {{3, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0}, {2, 9, 9, 20, 3, 3, 7, 1, 1, 0, 0},
                      {2, 10, 11, 5, 3, 3, 9, 2, 2, 0, 0}, {1, 12, 12, 3, 5, 5, 4, 3, 3, 0, 0},
                      {1, 7, 130, 20, 3, 3, 5, 1, 1, 0, 0}, {1, 9, 140, 6, 3, 3, 4, 2, 1, 0, 0},
                      {1, 6, 7, 9, 3, 3, 400, 1, 1, 0, 0}, {2, 8, 8, 10, 3, 3, 150, 1, 1, 0, 0},
                      {1, 11, 11, 6, 5, 5, 150, 2, 2, 0, 0}};
    for (size_t i = 0; i < sizeof dx_only / sizeof dx_only[0]; i++) check_bwd_data(dx_only[i], 0, 1);
    Geom dx_same[] = {{2, 10, 11, 20, 3, 3, 7, 2, 2, 0, 1}, {1, 13, 13, 9, 5, 5, 6, 3, 3, 2, 2}};
    for (size_t i = 0; i < sizeof dx_same / sizeof dx_same[0]; i++) check_bwd_data(dx_same[i], 1, 0);
}

/* The filter gradient over blocked channels (layout.c's LAYOUT_BLOCKED) against im2col's
 * GEMM: the same sums in another order; the same bits at one and three threads; every
 * batch up to the largest within the workspace sized for the largest. */
static void check_bwd_filter_blocked(Geom g, int same_pad) {
    int OH = out_dim(g.H, g.KH, g.SH, same_pad ? g.KH - 1 : 0), OW = out_dim(g.W, g.KW, g.SW, same_pad ? g.KW - 1 : 0);
    size_t xs = (size_t)g.n * g.H * g.W * g.C, ys = (size_t)g.n * OH * OW * g.F, ws = (size_t)g.KH * g.KW * g.C * g.F;
    cr_assert(nnk_conv2d_blocked_ok(g.C, g.F), "test shape C%d F%d has no blocked form", g.C, g.F);
    float *x = rand_buf(xs), *dy = rand_buf(ys);
    float *want = malloc(ws * sizeof *want), *got = malloc(ws * sizeof *got), *got1 = malloc(ws * sizeof *got1);
    float *work = malloc((nnk_conv2d_work_elems(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, OH, OW) + 1) * sizeof *work);
    size_t bwork_elems = nnk_conv2d_blocked_work_elems(g.n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, OH, OW);
    float *bwork = malloc(bwork_elems * sizeof *bwork);   /* exactly: ASan catches a write past it */
    for (int n = 1; n <= g.n; n++) {
        nnk_conv2d_bwd_filter(n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, x, dy, want, work);
        set_threads(1);
        memset(got1, 0xff, ws * sizeof *got1);
        nnk_conv2d_bwd_filter_blocked(n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, x, dy, got1, bwork);
        set_threads(3);
        memset(got, 0xff, ws * sizeof *got);
        nnk_conv2d_bwd_filter_blocked(n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.SW, g.PT, g.PL, OH, OW, x, dy, got, bwork);
        set_threads(2);
        cr_expect(!memcmp(got, got1, ws * sizeof *got), "conv bwd filter blocked n=%d: bits depend on the thread count", n);
        double worst = 0, big = 0;
        for (size_t i = 0; i < ws; i++) worst = fmax(worst, fabs(got[i] - want[i])), big = fmax(big, fabs(want[i]));
        cr_expect(worst <= 1e-5 * fmax(1, big), "conv bwd filter blocked n=%d %dx%dx%d k%dx%d F%d s%d pad(%d,%d): max "
                  "difference %g of %g", n, g.H, g.W, g.C, g.KH, g.KW, g.F, g.SH, g.PT, g.PL, worst, big);
    }
    free(x); free(dy); free(want); free(got); free(got1); free(work); free(bwork);
}

Test(conv_blocked, filter_gradient_same_values_as_nhwc) {
    /* F a multiple of 32 and C of 32 or below 8: whole blocks at every vector width.
     * fashion_cnn's layers; an RGB first layer; 'same' padding with odd and even
     * kernels; stride 2; a 1x1; samples large enough for several chunks of the workspace
     * (and a partial last one); a 5x5 window over 32 channels (more cells than one task's
     * tables hold). */
    Geom valid[] = {{3, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0}, {3, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0},
                    {2, 17, 15, 3, 3, 3, 32, 1, 1, 0, 0}, {2, 11, 11, 64, 3, 3, 32, 2, 2, 0, 0},
                    {2, 5, 5, 32, 1, 1, 64, 1, 1, 0, 0}, {5, 40, 40, 32, 3, 3, 32, 1, 1, 0, 0},
                    {2, 9, 9, 32, 5, 5, 32, 1, 1, 0, 0}};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) check_bwd_filter_blocked(valid[i], 0);
    Geom same[] = {{2, 8, 8, 32, 3, 3, 32, 1, 1, 1, 1}, {2, 7, 9, 3, 4, 2, 32, 1, 1, 1, 0},
                   {2, 9, 9, 32, 3, 3, 64, 2, 2, 1, 1}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) check_bwd_filter_blocked(same[i], 1);
}
