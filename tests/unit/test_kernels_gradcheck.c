/* Finite-difference gradient checks for every backward kernel, loss gradient and
 * regularizer gradient in kernels/nn_kernels.h, in double precision.
 *
 * Each check builds a scalar L from the forward kernel (L = Σ dy·y for a fixed random
 * dy, or the mean loss), perturbs each input element by ±h, and compares the central
 * difference with the analytic gradient.  The error is normwise:
 * max|analytic - numeric| / max|numeric|, which must stay below 1e-6.
 *
 * The checks live in one table.  A second test reads the header and fails when a
 * gradient kernel has no row (or a row names a kernel that no longer exists), and
 * when a kernel belongs to no family this file knows. */
#define NN_REAL double
/* A small im2col cap, so conv batches are split into chunks of samples (the
 * forward tests cover the default, whole-batch case). */
#define NNK_CONV_WORK_CAP 500
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_kernels.h"

#define FD_STEP 1e-6
#define GRAD_TOL 1e-6

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x1234567ull;

static double uniform(double lo, double hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1.0p-53;
}

static double *rand_buf(size_t len, double lo, double hi) {
    double *p = malloc((len ? len : 1) * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < len; i++) p[i] = uniform(lo, hi);
    return p;
}

static double *zero_buf(size_t len) {
    double *p = calloc(len ? len : 1, sizeof *p);
    cr_assert(p);
    return p;
}

/* Values in [-1,1] kept at least `gap` from 0, so kinks (relu, |w|) are not crossed. */
static double *rand_away_from_zero(size_t len, double gap) {
    double *p = rand_buf(len, -1, 1);
    for (size_t i = 0; i < len; i++)
        if (fabs(p[i]) < gap) p[i] = p[i] < 0 ? p[i] - gap : p[i] + gap;
    return p;
}

static double dot(const double *a, const double *b, size_t len) {
    double s = 0;
    for (size_t i = 0; i < len; i++) s += a[i] * b[i];
    return s;
}

/* L(ctx) for the current contents of the perturbed buffer. */
typedef double (*ScalarFn)(void *ctx);

/* Normwise relative error of `analytic` against central differences of f w.r.t.
 * param[0..len).  An all-zero numeric gradient means the check tested nothing: 1. */
static double fd_error(ScalarFn f, void *ctx, double *param, size_t len, const double *analytic) {
    double maxdiff = 0, maxnum = 0;
    for (size_t i = 0; i < len; i++) {
        double saved = param[i];
        param[i] = saved + FD_STEP;
        double lp = f(ctx);
        param[i] = saved - FD_STEP;
        double lm = f(ctx);
        param[i] = saved;
        double num = (lp - lm) / (2 * FD_STEP);
        if (fabs(num - analytic[i]) > maxdiff || isnan(analytic[i])) maxdiff = fabs(num - analytic[i]);
        if (fabs(num) > maxnum) maxnum = fabs(num);
    }
    if (isnan(maxdiff)) return 1;
    return maxnum > 0 ? maxdiff / maxnum : 1;
}

static double worst(double a, double b) { return a > b ? a : b; }

/* ------------------------------------------------------------ elementwise activations */

/* The activations by kernel pointers: whether the bwd kernel reads x (ops.def's grad
 * column is grad_act_x) or y, and the alphas a parameterized one is checked with.
 * A new activation is one row here (and one in gradchecks below). */
typedef void (*act_fn)(int64_t, const double *, double *);
typedef void (*act_bwd_fn)(int64_t, const double *, const double *, double *);
typedef void (*act_fn_p)(int64_t, double, const double *, double *);
typedef void (*act_bwd_fn_p)(int64_t, double, const double *, const double *, double *);
typedef struct {
    const char *kernel;   /* its bwd kernel, the gradchecks row */
    act_fn fwd;
    act_bwd_fn bwd;
    act_fn_p fwd_p;
    act_bwd_fn_p bwd_p;
    int from_x, smooth;   /* smooth: also checked at x = 0 */
    double alpha[2];
} ActKind;

static const ActKind act_kinds[] = {
    {"nnk_relu_bwd", nnk_relu_fwd, nnk_relu_bwd, NULL, NULL, 0, 0, {0}},
    {"nnk_sigmoid_bwd", nnk_sigmoid_fwd, nnk_sigmoid_bwd, NULL, NULL, 0, 1, {0}},
    {"nnk_tanh_bwd", nnk_tanh_fwd, nnk_tanh_bwd, NULL, NULL, 0, 1, {0}},
    {"nnk_gelu_bwd", nnk_gelu_fwd, nnk_gelu_bwd, NULL, NULL, 1, 1, {0}},
    {"nnk_silu_bwd", nnk_silu_fwd, nnk_silu_bwd, NULL, NULL, 1, 1, {0}},
    {"nnk_elu_bwd", NULL, NULL, nnk_elu_fwd, nnk_elu_bwd, 1, 0, {1.0, 0.4}},
    {"nnk_selu_bwd", nnk_selu_fwd, nnk_selu_bwd, NULL, NULL, 0, 0, {0}},
    {"nnk_leaky_relu_bwd", NULL, NULL, nnk_leaky_relu_fwd, nnk_leaky_relu_bwd, 0, 0, {0.2, 0.3}},
    {"nnk_softplus_bwd", nnk_softplus_fwd, nnk_softplus_bwd, NULL, NULL, 0, 1, {0}},
    {"nnk_hard_sigmoid_bwd", nnk_hard_sigmoid_fwd, nnk_hard_sigmoid_bwd, NULL, NULL, 0, 0, {0}},
};
#define N_ACT_KINDS (sizeof act_kinds / sizeof *act_kinds)

typedef struct {
    const ActKind *k;     /* NULL: dropout */
    int64_t len;
    double *x, *y, *dy, *mask;
    double alpha;
} ActCtx;

static void act_fwd(ActCtx *c) {
    if (!c->k) nnk_dropout_fwd(c->len, 0.4, 42, c->x, c->y, c->mask);
    else if (c->k->fwd) c->k->fwd(c->len, c->x, c->y);
    else c->k->fwd_p(c->len, c->alpha, c->x, c->y);
}

static void act_bwd(const ActCtx *c, double *dx) {
    if (!c->k) { nnk_dropout_bwd(c->len, c->mask, c->dy, dx); return; }
    const double *in = c->k->from_x ? c->x : c->y;
    if (c->k->bwd) c->k->bwd(c->len, in, c->dy, dx);
    else c->k->bwd_p(c->len, c->alpha, in, c->dy, dx);
}

static double act_loss(void *p) {
    ActCtx *c = p;
    act_fwd(c);
    return dot(c->dy, c->y, c->len);
}

static double act_error(ActCtx *c) {
    double *dx = zero_buf(c->len);
    act_fwd(c);
    act_bwd(c, dx);
    double err = fd_error(act_loss, c, c->x, c->len, dx);
    free(c->x); free(c->y); free(c->dy); free(c->mask); free(dx);
    return err;
}

/* Points every activation is checked at: negative inputs, both tails, and near 0 (and
 * near ±3, hard_sigmoid's corners) but at least 0.01 away from the kinks; smooth
 * activations also at 0 itself. Then random ones in [-4, 4] kept away from the kinks. */
static const double act_points[] = {-20, -9, -4, -3.2, -2.9, -1.3, -0.5, -0.1, -0.01,
                                    0.01, 0.1, 0.5, 1.3, 2.9, 3.2, 4, 9, 20};
#define N_ACT_POINTS (sizeof act_points / sizeof *act_points)

static double check_act_kind(const ActKind *k) {
    double err = 0;
    for (int a = 0; a < (k->fwd ? 1 : 2); a++) {
        /* random points in [-4, 4] away from 0 (the saturating tails of the old check) */
        ActCtx c = {k, 37, rand_away_from_zero(37, 0.05), zero_buf(37), rand_buf(37, -1, 1), zero_buf(37), k->alpha[a]};
        for (int64_t i = 0; i < c.len; i++) c.x[i] *= 4;
        err = worst(err, act_error(&c));
        enum { LEN = 40 };
        ActCtx d = {k, LEN, rand_buf(LEN, -4, 4), zero_buf(LEN), rand_buf(LEN, -1, 1), zero_buf(LEN), k->alpha[a]};
        for (int64_t i = 0; i < LEN; i++) {
            double *v = &d.x[i];
            if (i < (int64_t)N_ACT_POINTS) *v = act_points[i];
            else if (k->smooth && i == (int64_t)N_ACT_POINTS) *v = 0;
            else
                for (int q = -3; q <= 3; q += 3) /* kinks at 0 (relu family) and ±3 (hard_sigmoid) */
                    if (fabs(*v - q) < 0.05) *v = q + (*v < q ? -0.05 : 0.05);
        }
        err = worst(err, act_error(&d));
    }
    return err;
}

/* The gradchecks row of an activation: its act_kinds entry by kernel name. */
static const char *current_act;
static double check_act(void) {
    for (size_t i = 0; i < N_ACT_KINDS; i++)
        if (!strcmp(act_kinds[i].kernel, current_act)) return check_act_kind(&act_kinds[i]);
    return 1;
}

static double check_dropout(void) {
    ActCtx c = {NULL, 37, rand_away_from_zero(37, 0.05), zero_buf(37), rand_buf(37, -1, 1), zero_buf(37), 0};
    return act_error(&c);
}

/* ------------------------------------------------------------ softmax */

typedef struct { int rows, cols; double *x, *y, *dy; } SoftmaxCtx;

static double softmax_loss(void *p) {
    SoftmaxCtx *c = p;
    nnk_softmax_fwd(c->rows, c->cols, c->x, c->y);
    return dot(c->dy, c->y, (size_t)c->rows * c->cols);
}

static double check_softmax(void) {
    SoftmaxCtx c = {3, 5, rand_buf(15, -3, 3), zero_buf(15), rand_buf(15, -1, 1)};
    double *dx = zero_buf(15);
    nnk_softmax_fwd(c.rows, c.cols, c.x, c.y);
    nnk_softmax_bwd(c.rows, c.cols, c.y, c.dy, dx);
    double err = fd_error(softmax_loss, &c, c.x, 15, dx);
    free(c.x); free(c.y); free(c.dy); free(dx);
    return err;
}

/* ------------------------------------------------------------ dense: gemm + bias */

/* y = x·W + b  with x [n,in], W [in,out]; the three gradients as the emitter forms them. */
typedef struct { int n, in, out; double *x, *w, *b, *y, *dy; } DenseCtx;

static double dense_loss(void *p) {
    DenseCtx *c = p;
    nnk_gemm(0, 0, c->n, c->out, c->in, c->x, c->w, c->y, 0);
    nnk_bias_add(c->n, c->out, c->y, c->b);
    return dot(c->dy, c->y, (size_t)c->n * c->out);
}

static DenseCtx dense_make(int n, int in, int out) {
    DenseCtx c = {n, in, out, rand_buf((size_t)n * in, -1, 1), rand_buf((size_t)in * out, -1, 1),
                  rand_buf(out, -1, 1), zero_buf((size_t)n * out), rand_buf((size_t)n * out, -1, 1)};
    return c;
}

static void dense_free(DenseCtx *c) { free(c->x); free(c->w); free(c->b); free(c->y); free(c->dy); }

static double check_dense_gemm(void) {
    double err = 0;
    int shapes[][3] = {{3, 5, 4}, {1, 7, 3}, {9, 20, 17}};
    for (int s = 0; s < 3; s++) {
        DenseCtx c = dense_make(shapes[s][0], shapes[s][1], shapes[s][2]);
        double *dx = zero_buf((size_t)c.n * c.in), *dw = zero_buf((size_t)c.in * c.out);
        nnk_gemm(0, 1, c.n, c.in, c.out, c.dy, c.w, dx, 0);
        nnk_gemm(1, 0, c.in, c.out, c.n, c.x, c.dy, dw, 0);
        err = worst(err, fd_error(dense_loss, &c, c.x, (size_t)c.n * c.in, dx));
        err = worst(err, fd_error(dense_loss, &c, c.w, (size_t)c.in * c.out, dw));
        dense_free(&c); free(dx); free(dw);
    }
    return err;
}

static double check_bias_grad(void) {
    double err = 0;
    int shapes[][2] = {{4, 3}, {3, 70}}; /* 70 columns cross a column block */
    for (int s = 0; s < 2; s++) {
        DenseCtx c = dense_make(shapes[s][0], 2, shapes[s][1]);
        double *db = zero_buf(c.out);
        nnk_bias_grad(c.n, c.out, c.dy, db);
        err = worst(err, fd_error(dense_loss, &c, c.b, c.out, db));
        dense_free(&c); free(db);
    }
    return err;
}

/* ------------------------------------------------------------ conv2d */

typedef struct {
    int n, H, W, C, KH, KW, F, SH, SW, same;
} ConvShape;

/* Stride 2, 'same' with odd and even pad totals, partial coverage, 1x1 both paths. */
static const ConvShape conv_shapes[] = {
    {2, 5, 5, 3, 3, 3, 4, 1, 1, 0}, /* valid; 243 cols per sample: one chunk of 2 */
    {3, 5, 5, 3, 3, 3, 4, 1, 1, 0}, /* chunks of 2 and 1 samples */
    {2, 6, 7, 2, 3, 3, 3, 2, 2, 1}, /* same, stride 2: pad total 1 (H) and 2 (W) */
    {1, 6, 6, 2, 3, 2, 3, 2, 2, 0}, /* valid stride 2: last input row in no window */
    {1, 4, 5, 2, 2, 2, 3, 1, 2, 1}, /* even kernel, same: pad 1 at bottom/right */
    {1, 7, 5, 1, 4, 3, 2, 3, 1, 1}, /* same, pad total 3: top 1, bottom 2 */
    {2, 5, 4, 3, 1, 1, 2, 1, 1, 0}, /* pointwise: no im2col */
    {2, 5, 5, 2, 1, 1, 3, 2, 2, 0}, /* 1x1 stride 2: im2col path */
    {2, 4, 5, 2, 3, 3, 4, 1, 1, 1}, /* same, stride 1 (the packed data gradient's case) */
    {1, 5, 5, 2, 2, 2, 3, 1, 1, 1}, /* even kernel, same, stride 1: pad 0 top, 1 bottom */
};
#define N_CONV_SHAPES (sizeof conv_shapes / sizeof conv_shapes[0])

typedef struct {
    ConvShape s;
    int OH, OW, PT, PL;
    double *x, *w, *y, *dy, *work;
} ConvCtx;

/* TF padding: 'same' out = ceil(in/stride), total = max((out-1)*stride + k - in, 0),
 * top/left = total/2; 'valid' out = (in-k)/stride + 1. */
static void tf_padding(int in, int k, int stride, int same, int *out, int *pad_before) {
    if (same) {
        *out = (in + stride - 1) / stride;
        int total = (*out - 1) * stride + k - in;
        *pad_before = total > 0 ? total / 2 : 0;
    } else {
        *out = (in - k) / stride + 1;
        *pad_before = 0;
    }
}

static ConvCtx conv_make(ConvShape s) {
    ConvCtx c = {.s = s};
    tf_padding(s.H, s.KH, s.SH, s.same, &c.OH, &c.PT);
    tf_padding(s.W, s.KW, s.SW, s.same, &c.OW, &c.PL);
    size_t xl = (size_t)s.n * s.H * s.W * s.C, wl = (size_t)s.KH * s.KW * s.C * s.F;
    size_t yl = (size_t)s.n * c.OH * c.OW * s.F;
    c.x = rand_buf(xl, -1, 1); c.w = rand_buf(wl, -1, 1);
    c.y = zero_buf(yl); c.dy = rand_buf(yl, -1, 1);
    c.work = zero_buf(nnk_conv2d_work_elems(s.n, s.H, s.W, s.C, s.KH, s.KW, s.F, s.SH, s.SW, c.OH, c.OW));
    return c;
}

static void conv_free(ConvCtx *c) { free(c->x); free(c->w); free(c->y); free(c->dy); free(c->work); }

#define CONV_ARGS(c) (c)->s.n, (c)->s.H, (c)->s.W, (c)->s.C, (c)->s.KH, (c)->s.KW, (c)->s.F, \
                     (c)->s.SH, (c)->s.SW, (c)->PT, (c)->PL, (c)->OH, (c)->OW

#define CONV_WORK_ARGS(c) (c)->s.n, (c)->s.H, (c)->s.W, (c)->s.C, (c)->s.KH, (c)->s.KW, (c)->s.F, \
                          (c)->s.SH, (c)->s.SW, (c)->OH, (c)->OW

static double conv_loss(void *p) {
    ConvCtx *c = p;
    nnk_conv2d_fwd(CONV_ARGS(c), c->x, c->w, c->y, c->work);
    return dot(c->dy, c->y, (size_t)c->s.n * c->OH * c->OW * c->s.F);
}

static double check_conv2d_bwd_data(void) {
    double err = 0;
    for (size_t i = 0; i < N_CONV_SHAPES; i++) {
        ConvCtx c = conv_make(conv_shapes[i]);
        size_t xl = (size_t)c.s.n * c.s.H * c.s.W * c.s.C;
        double *dx = rand_buf(xl, 5, 6); /* garbage: the kernel must overwrite */
        cr_assert_leq(nnk_conv2d_work_elems(CONV_WORK_ARGS(&c)), NNK_CONV_WORK_CAP);
        nnk_conv2d_bwd_data(CONV_ARGS(&c), c.dy, c.w, dx, c.work);
        double e = fd_error(conv_loss, &c, c.x, xl, dx);
        if (e > GRAD_TOL) cr_log_error("conv2d_bwd_data shape #%zu: error %g", i, e);
        err = worst(err, e);
        conv_free(&c); free(dx);
    }
    return err;
}

/* The packed layout's data gradient (stride 1 only: layout.c packs no other), from the
 * kernel packed by nnk_pack_conv_flip, against finite differences of the same loss. */
static double check_conv2d_bwd_data_packed(void) {
    double err = 0;
    int checked = 0;
    for (size_t i = 0; i < N_CONV_SHAPES; i++) {
        if (conv_shapes[i].SH != 1 || conv_shapes[i].SW != 1) continue;
        ConvCtx c = conv_make(conv_shapes[i]);
        size_t xl = (size_t)c.s.n * c.s.H * c.s.W * c.s.C;
        size_t kdim = (size_t)c.s.KH * c.s.KW * c.s.F;
        double *dx = rand_buf(xl, 5, 6);
        double *bp = rand_buf(kdim * ((c.s.C + NNK_PACK_COLS - 1) / NNK_PACK_COLS * NNK_PACK_COLS), 5, 6);
        nnk_pack_conv_flip(c.s.KH, c.s.KW, c.s.C, c.s.F, c.w, bp);
        nnk_conv2d_bwd_data_packed_act(CONV_ARGS(&c), c.dy, bp, NULL, NN_EPI_NONE, dx);
        double e = fd_error(conv_loss, &c, c.x, xl, dx);
        if (e > GRAD_TOL) cr_log_error("conv2d_bwd_data_packed shape #%zu: error %g", i, e);
        err = worst(err, e);
        checked++;
        conv_free(&c); free(dx); free(bp);
    }
    cr_assert_gt(checked, 0, "no stride-1 shape for the packed data gradient");
    return err;
}

static double check_conv2d_bwd_filter(void) {
    double err = 0;
    for (size_t i = 0; i < N_CONV_SHAPES; i++) {
        ConvCtx c = conv_make(conv_shapes[i]);
        size_t wl = (size_t)c.s.KH * c.s.KW * c.s.C * c.s.F;
        double *dw = rand_buf(wl, 5, 6);
        nnk_conv2d_bwd_filter(CONV_ARGS(&c), c.x, c.dy, dw, c.work);
        double e = fd_error(conv_loss, &c, c.w, wl, dw);
        if (e > GRAD_TOL) cr_log_error("conv2d_bwd_filter shape #%zu: error %g", i, e);
        err = worst(err, e);
        conv_free(&c); free(dw);
    }
    return err;
}

/* The blocked-channel filter gradient (layout.c's LAYOUT_BLOCKED): the shapes above (most
 * take its NHWC fallback: their filters make no whole block) and two whose 16 filters and
 * 2 or 16 inputs make whole blocks at every vector width, 'valid' and 'same' stride 2. */
static double check_conv2d_bwd_filter_blocked(void) {
    static const ConvShape blocked[] = {{2, 5, 5, 2, 3, 3, 16, 1, 1, 0}, {1, 6, 7, 16, 3, 2, 16, 2, 2, 1}};
    double err = 0;
    for (size_t i = 0; i < N_CONV_SHAPES + 2; i++) {
        ConvShape s = i < N_CONV_SHAPES ? conv_shapes[i] : blocked[i - N_CONV_SHAPES];
        if (i >= N_CONV_SHAPES) cr_assert(nnk_conv2d_blocked_ok(s.C, s.F), "shape #%zu makes no whole blocks", i);
        ConvCtx c = conv_make(s);
        size_t wl = (size_t)s.KH * s.KW * s.C * s.F;
        double *dw = rand_buf(wl, 5, 6);
        double *work = zero_buf(nnk_conv2d_blocked_work_elems(s.n, s.H, s.W, s.C, s.KH, s.KW, s.F, s.SH, s.SW, c.OH, c.OW));
        nnk_conv2d_bwd_filter_blocked(CONV_ARGS(&c), c.x, c.dy, dw, work);
        double e = fd_error(conv_loss, &c, c.w, wl, dw);
        if (e > GRAD_TOL) cr_log_error("conv2d_bwd_filter_blocked shape #%zu: error %g", i, e);
        err = worst(err, e);
        conv_free(&c); free(dw); free(work);
    }
    return err;
}

/* fuse_bias_grad.c: the filter gradient that also sums dy, for y = conv(x, w) + b. */
typedef struct { ConvCtx c; double *b; } ConvBiasCtx;

static double conv_bias_loss(void *p) {
    ConvBiasCtx *cb = p;
    ConvCtx *c = &cb->c;
    nnk_conv2d_fwd_bias_act(CONV_ARGS(c), c->x, c->w, cb->b, NN_EPI_NONE, c->y, c->work);
    return dot(c->dy, c->y, (size_t)c->s.n * c->OH * c->OW * c->s.F);
}

/* The same from the matrix the forward pass kept (layout.c's COLS), with and without the
 * bias gradient: dw, dw again and db of each kernel against finite differences. */
static double check_conv2d_bwd_filter_bias(void) {
    double err = 0;
    for (size_t i = 0; i < N_CONV_SHAPES; i++) {
        ConvBiasCtx cb = {conv_make(conv_shapes[i]), rand_buf(conv_shapes[i].F, -1, 1)};
        ConvCtx *c = &cb.c;
        size_t wl = (size_t)c->s.KH * c->s.KW * c->s.C * c->s.F;
        size_t cl = (size_t)c->s.n * c->OH * c->OW * c->s.KH * c->s.KW * c->s.C;
        double *dw[3] = {rand_buf(wl, 5, 6), rand_buf(wl, 5, 6), rand_buf(wl, 5, 6)};
        double *db[2] = {rand_buf(c->s.F, 5, 6), rand_buf(c->s.F, 5, 6)}, *cols = rand_buf(cl, 5, 6);
        nnk_conv2d_bwd_filter_bias(CONV_ARGS(c), c->x, c->dy, dw[0], db[0], c->work);
        nnk_conv2d_fwd_cols_bias_act(CONV_ARGS(c), c->x, c->w, cb.b, NN_EPI_NONE, c->y, cols);
        nnk_conv2d_bwd_filter_cols(CONV_ARGS(c), cols, c->dy, dw[1]);
        nnk_conv2d_bwd_filter_cols_bias(CONV_ARGS(c), cols, c->dy, dw[2], db[1]);
        double e = 0;
        for (int k = 0; k < 3; k++) e = worst(e, fd_error(conv_bias_loss, &cb, c->w, wl, dw[k]));
        for (int k = 0; k < 2; k++) e = worst(e, fd_error(conv_bias_loss, &cb, cb.b, c->s.F, db[k]));
        if (e > GRAD_TOL) cr_log_error("conv2d_bwd_filter_bias / _cols shape #%zu: error %g", i, e);
        err = worst(err, e);
        conv_free(c); free(cb.b); free(cols);
        for (int k = 0; k < 3; k++) free(dw[k]);
        for (int k = 0; k < 2; k++) free(db[k]);
    }
    return err;
}

/* And a Dense layer's weight gradient with its bias gradient. */
static double check_gemm_tn_bias_grad(void) {
    double err = 0;
    int shapes[][3] = {{4, 3, 2}, {3, 5, 70}};   /* n, in, out: 70 columns cross a panel */
    for (int s = 0; s < 2; s++) {
        DenseCtx c = dense_make(shapes[s][0], shapes[s][1], shapes[s][2]);
        double *dw = rand_buf((size_t)c.in * c.out, 5, 6), *db = rand_buf(c.out, 5, 6);
        nnk_gemm_tn_bias_grad(c.in, c.out, c.n, c.x, c.dy, dw, db);
        err = worst(err, fd_error(dense_loss, &c, c.w, (size_t)c.in * c.out, dw));
        err = worst(err, fd_error(dense_loss, &c, c.b, c.out, db));
        dense_free(&c); free(dw); free(db);
    }
    return err;
}

/* ------------------------------------------------------------ pooling */

typedef struct { int n, H, W, C, PH, PW, SH, SW, same; } PoolShape;

static const PoolShape pool_shapes[] = {
    {2, 5, 5, 3, 2, 2, 2, 2, 0}, /* valid: last row/col in no window */
    {1, 5, 6, 2, 3, 3, 2, 2, 1}, /* same, pad total 2 (H) and 1 (W) */
    {1, 4, 4, 2, 2, 2, 1, 1, 0}, /* overlapping windows */
    {2, 5, 4, 1, 3, 2, 2, 1, 1}, /* same, mixed pool/stride */
};
#define N_POOL_SHAPES (sizeof pool_shapes / sizeof pool_shapes[0])

typedef struct {
    PoolShape s;
    int is_max, OH, OW, PT, PL;
    double *x, *y, *dy;
} PoolCtx;

#define POOL_ARGS(c) (c)->s.n, (c)->s.H, (c)->s.W, (c)->s.C, (c)->s.PH, (c)->s.PW, (c)->s.SH, \
                     (c)->s.SW, (c)->PT, (c)->PL, (c)->OH, (c)->OW

static double pool_loss(void *p) {
    PoolCtx *c = p;
    if (c->is_max) nnk_maxpool2d_fwd(POOL_ARGS(c), c->x, c->y);
    else nnk_avgpool2d_fwd(POOL_ARGS(c), c->x, c->y);
    return dot(c->dy, c->y, (size_t)c->s.n * c->OH * c->OW * c->s.C);
}

static double check_pool(int is_max) {
    double err = 0;
    for (size_t i = 0; i < N_POOL_SHAPES; i++) {
        PoolCtx c = {.s = pool_shapes[i], .is_max = is_max};
        tf_padding(c.s.H, c.s.PH, c.s.SH, c.s.same, &c.OH, &c.PT);
        tf_padding(c.s.W, c.s.PW, c.s.SW, c.s.same, &c.OW, &c.PL);
        size_t xl = (size_t)c.s.n * c.s.H * c.s.W * c.s.C, yl = (size_t)c.s.n * c.OH * c.OW * c.s.C;
        /* Negative inputs: a padding cell counted as 0 would win every border max. */
        c.x = rand_buf(xl, -2, -1); c.y = zero_buf(yl); c.dy = rand_buf(yl, -1, 1);
        double *dx = rand_buf(xl, 5, 6);
        pool_loss(&c);
        if (is_max) nnk_maxpool2d_bwd(POOL_ARGS(&c), c.x, c.y, c.dy, dx);
        else nnk_avgpool2d_bwd(POOL_ARGS(&c), c.dy, dx);
        double e = fd_error(pool_loss, &c, c.x, xl, dx);
        if (e > GRAD_TOL) cr_log_error("%s shape #%zu: error %g", is_max ? "maxpool" : "avgpool", i, e);
        err = worst(err, e);
        free(c.x); free(c.y); free(c.dy); free(dx);
    }
    return err;
}

static double check_maxpool(void) { return check_pool(1); }
static double check_avgpool(void) { return check_pool(0); }

/* ------------------------------------------------------------ gradients through an activation */

/* The fused kernels of fuse_grad.c: a data gradient carried through the activation a =
 * act(z) whose output is the op's input.  L(z) = Σ dy · op(act(z)); the kernel is given
 * a and returns dL/dz.  Each of relu, sigmoid and tanh, on the op's shapes. */
enum { THROUGH_POOL, THROUGH_CONV, THROUGH_GEMM, THROUGH_CONV_PACKED, THROUGH_GEMM_PACKED };
typedef struct {
    int kind, act;
    double *z, *a;
    size_t len;
    PoolCtx pool;
    ConvCtx conv;
    DenseCtx dense;
} ThroughCtx;

static void act_apply(int act, size_t len, const double *z, double *a) {
    if (act == NN_EPI_RELU) nnk_relu_fwd((int64_t)len, z, a);
    else if (act == NN_EPI_SIGMOID) nnk_sigmoid_fwd((int64_t)len, z, a);
    else nnk_tanh_fwd((int64_t)len, z, a);
}

static double through_loss(void *p) {
    ThroughCtx *c = p;
    act_apply(c->act, c->len, c->z, c->a);
    if (c->kind == THROUGH_POOL) {
        PoolCtx *q = &c->pool;
        nnk_maxpool2d_fwd(POOL_ARGS(q), c->a, q->y);
        return dot(q->dy, q->y, (size_t)q->s.n * q->OH * q->OW * q->s.C);
    }
    if (c->kind == THROUGH_CONV || c->kind == THROUGH_CONV_PACKED) {
        ConvCtx *q = &c->conv;
        nnk_conv2d_fwd(CONV_ARGS(q), c->a, q->w, q->y, q->work);
        return dot(q->dy, q->y, (size_t)q->s.n * q->OH * q->OW * q->s.F);
    }
    DenseCtx *q = &c->dense;
    nnk_gemm(0, 0, q->n, q->out, q->in, c->a, q->w, q->y, 0);
    return dot(q->dy, q->y, (size_t)q->n * q->out);
}

/* One shape: z drawn away from relu's kink, the fused kernel, the check. */
static double through_check(ThroughCtx *c) {
    double *dz = rand_buf(c->len, 5, 6);   /* garbage: the kernel must overwrite */
    c->z = rand_away_from_zero(c->len, 0.05);
    c->a = zero_buf(c->len);
    through_loss(c);
    if (c->kind == THROUGH_POOL)
        nnk_maxpool2d_bwd_act(POOL_ARGS(&c->pool), c->a, c->pool.dy, c->act, dz);
    else if (c->kind == THROUGH_CONV)
        nnk_conv2d_bwd_data_act(CONV_ARGS(&c->conv), c->conv.dy, c->conv.w, c->a, c->act, dz, c->conv.work);
    else if (c->kind == THROUGH_GEMM)
        nnk_gemm_act_grad(0, 1, c->dense.n, c->dense.in, c->dense.out, c->dense.dy, c->dense.w, c->a, c->act, dz);
    else if (c->kind == THROUGH_CONV_PACKED) {   /* the packed layout's flipped convolution */
        ConvCtx *q = &c->conv;
        double *bp = rand_buf((size_t)q->s.KH * q->s.KW * q->s.F * (q->s.C + NNK_PACK_COLS), 5, 6);
        nnk_pack_conv_flip(q->s.KH, q->s.KW, q->s.C, q->s.F, q->w, bp);
        nnk_conv2d_bwd_data_packed_act(CONV_ARGS(q), q->dy, bp, c->a, c->act, dz);
        free(bp);
    } else {                                     /* Wᵀ packed */
        DenseCtx *q = &c->dense;
        double *bp = rand_buf((size_t)q->out * (q->in + NNK_PACK_COLS), 5, 6);
        nnk_pack_b(1, q->out, q->in, q->w, bp);
        nnk_gemm_packed_act_grad(q->n, q->in, q->out, q->dy, bp, c->a, c->act, dz);
        free(bp);
    }
    double e = fd_error(through_loss, c, c->z, c->len, dz);
    if (e > GRAD_TOL) cr_log_error("through activation %d, kernel kind %d: error %g", c->act, c->kind, e);
    free(c->z); free(c->a); free(dz);
    return e;
}

static double check_through(int kind) {
    double err = 0;
    for (int act = NN_EPI_RELU; act <= NN_EPI_TANH; act++) {
        if (kind == THROUGH_POOL) {
            /* The shapes above, and whole vectors of channels in 2×2 tiles (the select path). */
            PoolShape shapes[N_POOL_SHAPES + 1];
            memcpy(shapes, pool_shapes, sizeof pool_shapes);
            shapes[N_POOL_SHAPES] = (PoolShape){2, 4, 6, 2 * NNK_VEC_LANES, 2, 2, 2, 2, 0};
            for (size_t i = 0; i <= N_POOL_SHAPES; i++) {
                ThroughCtx c = {.kind = kind, .act = act, .pool = {.s = shapes[i], .is_max = 1}};
                PoolCtx *q = &c.pool;
                tf_padding(q->s.H, q->s.PH, q->s.SH, q->s.same, &q->OH, &q->PT);
                tf_padding(q->s.W, q->s.PW, q->s.SW, q->s.same, &q->OW, &q->PL);
                c.len = (size_t)q->s.n * q->s.H * q->s.W * q->s.C;
                size_t yl = (size_t)q->s.n * q->OH * q->OW * q->s.C;
                q->y = zero_buf(yl); q->dy = rand_buf(yl, -1, 1);
                err = worst(err, through_check(&c));
                free(q->y); free(q->dy);
            }
        } else if (kind == THROUGH_CONV || kind == THROUGH_CONV_PACKED) {
            for (size_t i = 0; i < N_CONV_SHAPES; i++) {
                if (kind == THROUGH_CONV_PACKED && (conv_shapes[i].SH != 1 || conv_shapes[i].SW != 1)) continue;
                ThroughCtx c = {.kind = kind, .act = act, .conv = conv_make(conv_shapes[i])};
                c.len = (size_t)c.conv.s.n * c.conv.s.H * c.conv.s.W * c.conv.s.C;
                err = worst(err, through_check(&c));
                conv_free(&c.conv);
            }
        } else {
            int shapes[][3] = {{3, 5, 4}, {9, 20, 17}};
            for (int i = 0; i < 2; i++) {
                ThroughCtx c = {.kind = kind, .act = act, .dense = dense_make(shapes[i][0], shapes[i][1], shapes[i][2])};
                c.len = (size_t)c.dense.n * c.dense.in;
                err = worst(err, through_check(&c));
                dense_free(&c.dense);
            }
        }
    }
    return err;
}

static double check_maxpool_act(void) { return check_through(THROUGH_POOL); }
static double check_conv2d_bwd_data_act(void) { return check_through(THROUGH_CONV); }
static double check_gemm_act_grad(void) { return check_through(THROUGH_GEMM); }
static double check_conv2d_bwd_data_packed_act(void) { return check_through(THROUGH_CONV_PACKED); }
static double check_gemm_packed_act_grad(void) { return check_through(THROUGH_GEMM_PACKED); }
/* The packed data gradient alone (no activation) and through each activation. */
static double check_conv2d_bwd_data_packed_all(void) {
    return worst(check_conv2d_bwd_data_packed(), check_conv2d_bwd_data_packed_act());
}

typedef struct { int n, HW, C; double *x, *y, *dy; } GapCtx;

static double gap_loss(void *p) {
    GapCtx *c = p;
    nnk_global_avgpool2d_fwd(c->n, c->HW, c->C, c->x, c->y);
    return dot(c->dy, c->y, (size_t)c->n * c->C);
}

static double check_global_avgpool(void) {
    GapCtx c = {2, 6, 70, rand_buf(2 * 6 * 70, -1, 1), zero_buf(2 * 70), rand_buf(2 * 70, -1, 1)};
    double *dx = zero_buf(2 * 6 * 70);
    nnk_global_avgpool2d_bwd(c.n, c.HW, c.C, c.dy, dx);
    double err = fd_error(gap_loss, &c, c.x, 2 * 6 * 70, dx);
    free(c.x); free(c.y); free(c.dy); free(dx);
    return err;
}

/* ------------------------------------------------------------ batchnorm */

typedef struct {
    int rows, C;
    double *x, *gamma, *beta, *y, *dy, *mean, *invstd, *mmean, *mvar;
} BnCtx;

static double bn_loss(void *p) {
    BnCtx *c = p;
    nnk_batchnorm_fwd_train(c->rows, c->C, 1e-3, 0.99, c->x, c->gamma, c->beta, c->y, c->mean,
                            c->invstd, c->mmean, c->mvar);
    return dot(c->dy, c->y, (size_t)c->rows * c->C);
}

static double check_batchnorm(int rows, int C, int affine) {
    size_t len = (size_t)rows * C;
    BnCtx c = {rows, C, rand_buf(len, -2, 3), affine ? rand_buf(C, 0.5, 1.5) : NULL,
               affine ? rand_buf(C, -1, 1) : NULL, zero_buf(len), rand_buf(len, -1, 1),
               zero_buf(C), zero_buf(C), zero_buf(C), zero_buf(C)};
    double *dx = zero_buf(len), *dgamma = zero_buf(C), *dbeta = zero_buf(C);
    bn_loss(&c);
    nnk_batchnorm_bwd(rows, C, c.x, c.dy, c.gamma, c.mean, c.invstd, dx, affine ? dgamma : NULL,
                      affine ? dbeta : NULL);
    double err = fd_error(bn_loss, &c, c.x, len, dx);
    if (affine) {
        err = worst(err, fd_error(bn_loss, &c, c.gamma, C, dgamma));
        err = worst(err, fd_error(bn_loss, &c, c.beta, C, dbeta));
    }
    free(c.x); free(c.gamma); free(c.beta); free(c.y); free(c.dy); free(c.mean); free(c.invstd);
    free(c.mmean); free(c.mvar); free(dx); free(dgamma); free(dbeta);
    return err;
}

static double check_batchnorm_all(void) {
    return worst(check_batchnorm(6, 3, 1), check_batchnorm(4, 70, 0));
}

/* ------------------------------------------------------------ losses */

enum { L_SPARSE_SOFTMAX_XENT, L_SOFTMAX_XENT, L_SIGMOID_BCE, L_CCE, L_SPARSE_CCE, L_BCE, L_MSE, L_MAE };

typedef struct { int kind, n, K; double *in, *target, *grad; } LossCtx;

static double loss_eval(LossCtx *c, double *grad) {
    switch (c->kind) {
    case L_SPARSE_SOFTMAX_XENT: return nnk_loss_sparse_softmax_xent(c->n, c->K, c->in, c->target, NULL, grad);
    case L_SOFTMAX_XENT: return nnk_loss_softmax_xent(c->n, c->K, c->in, c->target, NULL, grad);
    case L_SIGMOID_BCE: return nnk_loss_sigmoid_bce(c->n, c->K, c->in, c->target, NULL, grad);
    case L_CCE: return nnk_loss_cce(c->n, c->K, c->in, c->target, grad);
    case L_SPARSE_CCE: return nnk_loss_sparse_cce(c->n, c->K, c->in, c->target, grad);
    case L_BCE: return nnk_loss_bce(c->n, c->K, c->in, c->target, grad);
    case L_MSE: return nnk_loss_mse(c->n, c->K, c->in, c->target, grad);
    case L_MAE: return nnk_loss_mae(c->n, c->K, c->in, c->target, grad);
    }
    return NAN;
}

static double loss_mean(void *p) {
    LossCtx *c = p;
    return loss_eval(c, NULL) / c->n;
}

static double check_loss(int kind) {
    int n = 4, K = 5;
    size_t len = (size_t)n * K;
    int sparse = kind == L_SPARSE_SOFTMAX_XENT || kind == L_SPARSE_CCE;
    LossCtx c = {kind, n, K, NULL, NULL, zero_buf(len)};
    switch (kind) {
    case L_SPARSE_SOFTMAX_XENT: case L_SOFTMAX_XENT: case L_SIGMOID_BCE:
        c.in = rand_buf(len, -4, 4); break; /* logits */
    case L_CCE: case L_SPARSE_CCE: case L_BCE:
        c.in = rand_buf(len, 0.05, 0.95); /* probabilities (cce: unnormalized) */
        c.in[3] = -0.25;                  /* clipped below: no gradient */
        if (kind == L_BCE) c.in[7] = 1.5; /* clipped above */
        break;
    default:
        c.in = rand_buf(len, -2, 2); break;
    }
    if (sparse) {
        c.target = zero_buf(n);
        for (int i = 0; i < n; i++) c.target[i] = (double)((i * 3 + 1) % K);
    } else if (kind == L_SOFTMAX_XENT || kind == L_CCE) {
        c.target = zero_buf(len); /* one-hot rows, and one soft row summing to 1.2 */
        for (int i = 0; i < n; i++) c.target[(size_t)i * K + (i * 2) % K] = 1;
        c.target[(size_t)(n - 1) * K + 0] = 0.5;
        c.target[(size_t)(n - 1) * K + 1] = 0.7;
    } else if (kind == L_SIGMOID_BCE || kind == L_BCE) {
        c.target = rand_buf(len, 0, 1);
    } else {
        c.target = rand_buf(len, -2, 2);
        if (kind == L_MAE) /* keep |pred - y| away from the kink at 0 */
            for (size_t i = 0; i < len; i++)
                if (fabs(c.in[i] - c.target[i]) < 0.05) c.target[i] += 0.1;
    }
    loss_eval(&c, c.grad);
    double err = fd_error(loss_mean, &c, c.in, len, c.grad);
    free(c.in); free(c.target); free(c.grad);
    return err;
}

static double check_sparse_softmax_xent(void) { return check_loss(L_SPARSE_SOFTMAX_XENT); }
static double check_softmax_xent(void) { return check_loss(L_SOFTMAX_XENT); }
static double check_sigmoid_bce(void) { return check_loss(L_SIGMOID_BCE); }
static double check_cce(void) { return check_loss(L_CCE); }
static double check_sparse_cce(void) { return check_loss(L_SPARSE_CCE); }
static double check_bce(void) { return check_loss(L_BCE); }
static double check_mse(void) { return check_loss(L_MSE); }
static double check_mae(void) { return check_loss(L_MAE); }

/* ------------------------------------------------------------ regularizers */

typedef struct { int64_t size; double *w; } RegCtx;

static double reg_loss(void *p) {
    RegCtx *c = p;
    return nnk_l1l2_loss(c->size, 0.01, 0.02, c->w);
}

static double check_l1l2(void) {
    RegCtx c = {23, rand_away_from_zero(23, 0.05)};
    double *g = rand_buf(23, -1, 1), *g0 = malloc(23 * sizeof *g0);
    memcpy(g0, g, 23 * sizeof *g);
    nnk_l1l2_grad(c.size, 0.01, 0.02, c.w, g); /* accumulates into g */
    for (int i = 0; i < 23; i++) g[i] -= g0[i];
    double err = fd_error(reg_loss, &c, c.w, 23, g);
    free(c.w); free(g); free(g0);
    return err;
}

/* ------------------------------------------------------------ conv + max-pool (fuse_pool.c)
 * L(w, b) = Σ dp · maxpool(act(conv(x, w) + b)), both in one kernel; its backward gives
 * dL/dw and dL/db from dp, the pooled output and the argmax. */
typedef struct {
    int n, H, W, C, K, F, same, P, act, OH, OW, PT, PL, QH, QW;
    double *x, *w, *b, *dp, *p, *idx;
} ConvPoolCtx;

#define CONV_POOL_ARGS(c) (c)->n, (c)->H, (c)->W, (c)->C, (c)->K, (c)->K, (c)->F, 1, 1, (c)->PT, (c)->PL, \
                          (c)->OH, (c)->OW, (c)->P, (c)->P, (c)->QH, (c)->QW

static double conv_pool_loss(void *p) {
    ConvPoolCtx *c = p;
    nnk_conv2d_pool_fwd(CONV_POOL_ARGS(c), c->x, c->w, c->b, c->act, c->p, c->idx);
    return dot(c->dp, c->p, (size_t)c->n * c->QH * c->QW * c->F);
}

static double check_conv2d_pool(void) {
    double err = 0;
    const int shapes[][7] = {   /* n H W C K same P */
        {2, 7, 6, 2, 3, 1, 2}, {3, 6, 6, 1, 3, 0, 2}, {2, 9, 7, 3, 2, 1, 3},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int act = NN_EPI_NONE; act <= NN_EPI_TANH; act++) {
            const int *s = shapes[i];
            ConvPoolCtx c = {.n = s[0], .H = s[1], .W = s[2], .C = s[3], .K = s[4], .F = 2 * NNK_VEC_LANES,
                             .same = s[5], .P = s[6], .act = act};
            tf_padding(c.H, c.K, 1, c.same, &c.OH, &c.PT);
            tf_padding(c.W, c.K, 1, c.same, &c.OW, &c.PL);
            c.QH = c.OH / c.P, c.QW = c.OW / c.P;
            size_t wl = (size_t)c.K * c.K * c.C * c.F, ql = (size_t)c.n * c.QH * c.QW * c.F;
            c.x = rand_buf((size_t)c.n * c.H * c.W * c.C, -1, 1), c.w = rand_buf(wl, -1, 1);
            c.b = rand_buf(c.F, -0.5, 0.5), c.dp = rand_buf(ql, -1, 1);
            c.p = zero_buf(ql), c.idx = zero_buf(ql);
            double *dw = rand_buf(wl, 5, 6), *db = rand_buf(c.F, 5, 6);   /* garbage: overwritten */
            conv_pool_loss(&c);
            nnk_conv2d_pool_bwd_filter(CONV_POOL_ARGS(&c), c.x, c.dp, c.p, c.idx, act, dw, db);
            double e = worst(fd_error(conv_pool_loss, &c, c.w, wl, dw), fd_error(conv_pool_loss, &c, c.b, c.F, db));
            if (e > GRAD_TOL) cr_log_error("conv2d_pool shape #%zu, activation %d: error %g", i, act, e);
            err = worst(err, e);
            free(c.x), free(c.w), free(c.b), free(c.dp), free(c.p), free(c.idx), free(dw), free(db);
        }
    return err;
}

/* ------------------------------------------------------------ the table */

typedef struct {
    const char *kernel; /* the gradient kernel checked, as named in nn_kernels.h */
    double (*check)(void);
} GradCheck;

static const GradCheck gradchecks[] = {
    {"nnk_gemm", check_dense_gemm},
    {"nnk_bias_grad", check_bias_grad},
    {"nnk_conv2d_bwd_data", check_conv2d_bwd_data},
    {"nnk_conv2d_bwd_data_packed_act", check_conv2d_bwd_data_packed_all},
    {"nnk_conv2d_bwd_filter", check_conv2d_bwd_filter},
    {"nnk_conv2d_pool_bwd_filter", check_conv2d_pool},
    {"nnk_conv2d_bwd_filter_blocked", check_conv2d_bwd_filter_blocked},
    {"nnk_conv2d_bwd_filter_bias", check_conv2d_bwd_filter_bias},
    {"nnk_gemm_tn_bias_grad", check_gemm_tn_bias_grad},
    {"nnk_conv2d_bwd_filter_cols", check_conv2d_bwd_filter_bias},
    {"nnk_conv2d_bwd_filter_cols_bias", check_conv2d_bwd_filter_bias},
    {"nnk_maxpool2d_bwd", check_maxpool},
    {"nnk_maxpool2d_bwd_act", check_maxpool_act},
    {"nnk_conv2d_bwd_data_act", check_conv2d_bwd_data_act},
    {"nnk_gemm_act_grad", check_gemm_act_grad},
    {"nnk_gemm_packed_act_grad", check_gemm_packed_act_grad},
    {"nnk_avgpool2d_bwd", check_avgpool},
    {"nnk_global_avgpool2d_bwd", check_global_avgpool},
    {"nnk_softmax_bwd", check_softmax},
    {"nnk_dropout_bwd", check_dropout},
    {"nnk_batchnorm_bwd", check_batchnorm_all},
    {"nnk_loss_sparse_softmax_xent", check_sparse_softmax_xent},
    {"nnk_loss_softmax_xent", check_softmax_xent},
    {"nnk_loss_sigmoid_bce", check_sigmoid_bce},
    {"nnk_loss_cce", check_cce},
    {"nnk_loss_sparse_cce", check_sparse_cce},
    {"nnk_loss_bce", check_bce},
    {"nnk_loss_mse", check_mse},
    {"nnk_loss_mae", check_mae},
    {"nnk_l1l2_grad", check_l1l2},
};
#define N_GRADCHECKS (sizeof gradchecks / sizeof gradchecks[0])

/* Every public kernel belongs to one of these families (name prefix after nnk_), or to
 * an op of compiler/ir/ops.def (nnk_<op>_fwd, nnk_<op>_bwd: a new activation needs no
 * entry here). A new family must be added here, and its gradient kernels to the table
 * above. */
static const char *kernel_families[] = {
    "gemm", "bias_", "conv2d_", "maxpool2d_", "avgpool2d_", "global_avgpool2d_", "relu_",
    "sigmoid_", "tanh_", "softmax_", "dropout_", "batchnorm_", "loss_", "l1l2_", "sgd_",
    "adam_", "rmsprop_", "copy", "add_inplace", "ewise_chain",
    "pack_",   /* the packed layout's weight panels: no gradient (test_kernels_packed.c) */
};

/* Every row: the table above, then one per activation of act_kinds. */
static int n_rows(void) { return (int)(N_GRADCHECKS + N_ACT_KINDS); }
static const char *row_kernel(int i) {
    return i < (int)N_GRADCHECKS ? gradchecks[i].kernel : act_kinds[i - N_GRADCHECKS].kernel;
}

Test(gradcheck, every_row_within_tolerance) {
    for (int i = 0; i < n_rows(); i++) {
        double err;
        if (i < (int)N_GRADCHECKS) err = gradchecks[i].check();
        else current_act = row_kernel(i), err = check_act();
        cr_log_info("%-30s relative error %.2e", row_kernel(i), err);
        cr_expect(err < GRAD_TOL, "%s: relative gradient error %g (tolerance %g)", row_kernel(i), err, GRAD_TOL);
    }
}

/* A deliberately wrong gradient must fail the same check: the harness can fail. */
Test(gradcheck, harness_rejects_a_wrong_gradient) {
    ActCtx c = {&act_kinds[2], 10, rand_buf(10, -1, 1), zero_buf(10), rand_buf(10, -1, 1), NULL, 0};
    double *dx = zero_buf(10);
    act_fwd(&c);
    nnk_tanh_bwd(c.len, c.y, c.dy, dx);
    cr_assert_lt(fd_error(act_loss, &c, c.x, 10, dx), GRAD_TOL);
    dx[4] *= 1.001;
    cr_assert_gt(fd_error(act_loss, &c, c.x, 10, dx), GRAD_TOL);
    free(c.x); free(c.y); free(c.dy); free(dx);
}

/* Public kernel names defined in the header: "NNK_API <type> nnk_<name>(" (helpers are
 * "static inline" and end in an underscore).  Returns the count. */
static int header_kernels(char names[][64], int max) {
    const char *path = NNC_SOURCE_DIR "/kernels/nn_kernels.h";
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    char line[512];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "NNK_API ", 8) != 0 && strncmp(line, "static inline ", 14) != 0) continue;
        char *at = strstr(line, " nnk_");
        if (!at) continue;
        at++;
        size_t len = strcspn(at, "(");
        if (at[len] != '(' || len >= 64 || at[len - 1] == '_') continue;
        cr_assert_lt(count, max);
        memcpy(names[count], at, len);
        names[count][len] = 0;
        count++;
    }
    fclose(f);
    return count;
}

static int is_gradient_kernel(const char *name) {
    size_t len = strlen(name);
    return strstr(name, "_bwd") || strncmp(name, "nnk_loss_", 9) == 0 ||
           (len > 5 && strcmp(name + len - 5, "_grad") == 0);
}

/* The op names of compiler/ir/ops.def ("OP(name, ..." rows). Returns the count. */
static int ops_def_names(char names[][64], int max) {
    const char *path = NNC_SOURCE_DIR "/compiler/ir/ops.def";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "OP(", 3) != 0) continue;
        size_t len = strcspn(line + 3, ", ");
        cr_assert_lt(len, 64);
        cr_assert_lt(count, max);
        memcpy(names[count], line + 3, len);
        names[count++][len] = 0;
    }
    fclose(f);
    return count;
}

Test(gradcheck, table_covers_every_gradient_kernel) {
    static char names[256][64], ops[256][64];
    int count = header_kernels(names, 256), n_ops = ops_def_names(ops, 256);
    cr_assert_gt(count, 30, "found only %d kernels in nn_kernels.h", count);
    int gradients = 0;
    for (int k = 0; k < count; k++) {
        int family = 0;
        for (size_t f = 0; f < sizeof kernel_families / sizeof *kernel_families; f++)
            if (strncmp(names[k] + 4, kernel_families[f], strlen(kernel_families[f])) == 0) family = 1;
        for (int o = 0; o < n_ops; o++) {
            size_t len = strlen(ops[o]);
            if (strncmp(names[k] + 4, ops[o], len) == 0 && names[k][4 + len] == '_') family = 1;
        }
        cr_expect(family, "%s belongs to no known kernel family: add its family and gradcheck rows",
                  names[k]);
        if (!is_gradient_kernel(names[k])) continue;
        gradients++;
        int row = 0;
        for (int i = 0; i < n_rows(); i++) row |= strcmp(row_kernel(i), names[k]) == 0;
        cr_expect(row, "%s has no gradcheck row", names[k]);
    }
    cr_assert_geq(gradients, 20);
    /* And no row names a kernel that is gone. */
    for (int i = 0; i < n_rows(); i++) {
        int found = 0;
        for (int k = 0; k < count; k++) found |= strcmp(row_kernel(i), names[k]) == 0;
        cr_expect(found, "gradcheck row %s names no kernel in nn_kernels.h", row_kernel(i));
    }
}

/* ------------------------------------------------------------ the compiler's op table */

/* Each op in compiler/ir/ops.def and the gradcheck row that covers its gradient, or NULL
 * where the op has no gradient kernel of its own (the reason is in the comment). An op
 * not listed maps by name: op X to the row nnk_X_bwd, op X_bwd to nnk_X_bwd (so an
 * activation's two ops need only their gradcheck row). */
static const struct { const char *op, *row; } op_rows[] = {
    {"none", NULL}, {"input", NULL}, {"param", NULL},   /* placeholder; sources */
    {"copy", NULL}, {"add", NULL}, {"reshape", NULL},   /* movement: autodiff composes */
    {"pack_weights", NULL},                             /* layout.c's, after autodiff */
    {"aux_view", NULL}, {"loss_grad", NULL},
    {"batchnorm_infer", NULL},                          /* inference only */
    {"sgd_update", NULL}, {"adam_update", NULL},        /* optimizers: hand-computed */
    {"rmsprop_update", NULL},                           /* values in test_kernels_forward */
    {"update_all", NULL},                               /* the three above on many weights */
    {"ewise_chain", NULL},                              /* rows of its ops; test_kernels_forward */
    {"matmul", "nnk_gemm"},
    {"conv2d", "nnk_conv2d_bwd_data"},
    {"conv2d_bwd_data", "nnk_conv2d_bwd_data"},
    {"conv2d_bwd_filter", "nnk_conv2d_bwd_filter"},
    {"conv2d_pool", "nnk_conv2d_pool_bwd_filter"},
    {"conv2d_pool_bwd_filter", "nnk_conv2d_pool_bwd_filter"},
    {"bias_add", "nnk_bias_grad"}, {"bias_grad", "nnk_bias_grad"},
    {"relu", "nnk_relu_bwd"}, {"relu_bwd", "nnk_relu_bwd"},
    {"sigmoid", "nnk_sigmoid_bwd"}, {"sigmoid_bwd", "nnk_sigmoid_bwd"},
    {"tanh", "nnk_tanh_bwd"}, {"tanh_bwd", "nnk_tanh_bwd"},
    {"softmax", "nnk_softmax_bwd"}, {"softmax_bwd", "nnk_softmax_bwd"},
    {"dropout", "nnk_dropout_bwd"}, {"dropout_bwd", "nnk_dropout_bwd"},
    {"maxpool2d", "nnk_maxpool2d_bwd"}, {"maxpool2d_bwd", "nnk_maxpool2d_bwd"},
    {"avgpool2d", "nnk_avgpool2d_bwd"}, {"avgpool2d_bwd", "nnk_avgpool2d_bwd"},
    {"global_avgpool2d", "nnk_global_avgpool2d_bwd"},
    {"global_avgpool2d_bwd", "nnk_global_avgpool2d_bwd"},
    {"batchnorm_train", "nnk_batchnorm_bwd"}, {"batchnorm_bwd", "nnk_batchnorm_bwd"},
    {"sparse_softmax_xent", "nnk_loss_sparse_softmax_xent"},
    {"softmax_xent", "nnk_loss_softmax_xent"},
    {"sigmoid_bce", "nnk_loss_sigmoid_bce"},
    {"cce", "nnk_loss_cce"}, {"sparse_cce", "nnk_loss_sparse_cce"}, {"bce", "nnk_loss_bce"},
    {"mse", "nnk_loss_mse"}, {"mae", "nnk_loss_mae"},
    {"l1l2", "nnk_l1l2_grad"}, {"l1l2_grad", "nnk_l1l2_grad"},
};

Test(gradcheck, every_op_in_ops_def_has_a_row) {
    const char *path = NNC_SOURCE_DIR "/compiler/ir/ops.def";
    FILE *f = fopen(path, "r");
    if (!f) cr_skip_test("%s not present", path);
    char line[512];
    int ops = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "OP(", 3) != 0) continue;
        char name[64];
        size_t len = strcspn(line + 3, ", ");
        cr_assert_lt(len, sizeof name);
        memcpy(name, line + 3, len);
        name[len] = 0;
        ops++;
        int mapped = -1;
        for (size_t i = 0; i < sizeof op_rows / sizeof *op_rows; i++)
            if (strcmp(op_rows[i].op, name) == 0) mapped = (int)i;
        if (mapped >= 0 && !op_rows[mapped].row) continue;
        char by_name[2][80];
        snprintf(by_name[0], sizeof by_name[0], "nnk_%s_bwd", name);
        snprintf(by_name[1], sizeof by_name[1], "nnk_%s", name);
        int row = 0;
        for (int i = 0; i < n_rows(); i++) {
            if (mapped >= 0) row |= strcmp(row_kernel(i), op_rows[mapped].row) == 0;
            else row |= !strcmp(row_kernel(i), by_name[0]) ||
                        (strstr(name, "_bwd") && !strcmp(row_kernel(i), by_name[1]));
        }
        if (mapped >= 0)
            cr_expect(row, "op %s maps to %s, which has no gradcheck row", name, op_rows[mapped].row);
        else
            cr_expect(row, "op %s (compiler/ir/ops.def) has no gradcheck row %s and no entry in op_rows: "
                      "add the row, or map the op to NULL with a reason", name, by_name[0]);
    }
    fclose(f);
    cr_assert_gt(ops, 0, "no OP( rows found in %s", path);
}
