/* kernel_lab.c — times nnc's GEMM and convolution kernels (kernels/nn_kernels.h, compiled
 * here as `nnc build --specialize` compiles them) and OpenBLAS's cblas_sgemm on the same
 * shapes, alternating the two case by case; benchmarks/kernel_lab.py builds and runs it
 * (with each C compiler it is asked for) next to TensorFlow and prints the table.
 *
 *   kernel_lab [--threads T] [--min-time S] [--peak] [--cpu-time] [--layouts] CASE...
 *
 * CASE is NAME=KIND,ARGS:
 *   gemm,M,N,K,TA,TB                 nnk_gemm(TA, TB, M, N, K, ...) / cblas_sgemm
 *   conv_fwd,n,H,W,C,K,F             nnk_conv2d_fwd, valid padding, stride 1, K×K filter
 *   conv_bwd_data,n,H,W,C,K,F        nnk_conv2d_bwd_data
 *   conv_bwd_filter,n,H,W,C,K,F      nnk_conv2d_bwd_filter
 * For a convolution, OpenBLAS times only the GEMM of the im2col formulation (what the
 * convolution costs beyond the gather and scatter); nnc times its whole kernel.
 *
 * --layouts times each convolution in every layout instead (nhwc, packed, blocked,
 * blocked+cvt; blocked_conv.h), the variants interleaved call by call, and prints
 * "check NAME ERR ERR ERR" (the direct, blocked and nnc-blocked results against
 * the NHWC one, relative; 0 where there is none) before the rows.
 *
 * --cpu-time times with the process's CPU time instead of the wall clock: on a shared
 * machine, with --threads 1, it leaves out the time other processes held the core (use
 * it to compare builds of the same kernel; threads waiting passively use no CPU).
 *
 * Prints, per case and implementation, "row NAME nnc|openblas MEDIAN_SECONDS FLOPS", and
 * with --peak "peak GFLOPS" (the FMA loop of nnc bench, include/nn_profile.h).  OpenBLAS
 * is loaded with dlopen (libopenblas.so.0), so the lab builds without it and says
 * "row NAME openblas -" when it is not installed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn_kernels.h"
#include "nn_profile.h"
#include "blocked_conv.h"

static clockid_t lab_clock = CLOCK_MONOTONIC;

double nn_now(void) {
    struct timespec ts;
    clock_gettime(lab_clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* cblas_sgemm's enums are ints: 101 row-major, 111 no transpose, 112 transpose. */
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta,
                         float *c, int ldc);
static sgemm_fn blas_sgemm;

static void load_openblas(int threads) {
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    blas_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    if (set_threads) set_threads(threads);
}

typedef struct Case {
    const char *name, *kind;
    int a[6];
} Case;

static nn_real *buffer(size_t len) {
    nn_real *p = malloc((len + 16) * sizeof *p);
    if (!p) { fprintf(stderr, "kernel_lab: out of memory\n"); exit(1); }
    for (size_t i = 0; i < len + 16; i++) p[i] = (nn_real)(rand() / (double)RAND_MAX - 0.5);
    return p;
}

/* The buffers of one case, allocated once for both implementations. */
typedef struct Bufs {
    nn_real *x, *w, *y, *work;       /* conv: input, filter, output/gradient, workspace */
    nn_real *ga, *gb, *gc;           /* the GEMM (for a conv, its im2col formulation) */
    int M, N, K, ta, tb;
} Bufs;

static void setup(const Case *c, Bufs *b) {
    memset(b, 0, sizeof *b);
    const int *v = c->a;
    if (!strcmp(c->kind, "gemm")) {
        b->M = v[0], b->N = v[1], b->K = v[2], b->ta = v[3], b->tb = v[4];
    } else {
        int n = v[0], H = v[1], W = v[2], C = v[3], K = v[4], F = v[5];
        int OH = H - K + 1, OW = W - K + 1;
        b->x = buffer((size_t)n * H * W * C);
        b->w = buffer((size_t)K * K * C * F);
        b->y = buffer((size_t)n * OH * OW * F);
        b->work = buffer(nnk_conv2d_work_elems(n, H, W, C, K, K, F, 1, 1, OH, OW));
        int rows = n * OH * OW, kdim = K * K * C;
        /* fwd: y[rows,F] = col[rows,kdim]·w[kdim,F]; data: dcol = dy·wᵀ; filter: dw = colᵀ·dy */
        if (!strcmp(c->kind, "conv_fwd")) b->M = rows, b->N = F, b->K = kdim;
        else if (!strcmp(c->kind, "conv_bwd_data")) b->M = rows, b->N = kdim, b->K = F, b->tb = 1;
        else b->M = kdim, b->N = F, b->K = rows, b->ta = 1;
    }
    b->ga = buffer((size_t)b->M * b->K);
    b->gb = buffer((size_t)b->K * b->N);
    b->gc = buffer((size_t)b->M * b->N);
}

static void run_nnc(const Case *c, Bufs *b) {
    const int *v = c->a;
    if (!strcmp(c->kind, "gemm")) {
        nnk_gemm(b->ta, b->tb, b->M, b->N, b->K, b->ga, b->gb, b->gc, 0);
        return;
    }
    int n = v[0], H = v[1], W = v[2], C = v[3], K = v[4], F = v[5];
    int OH = H - K + 1, OW = W - K + 1;
    if (!strcmp(c->kind, "conv_fwd"))
        nnk_conv2d_fwd(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, b->x, b->w, b->y, b->work);
    else if (!strcmp(c->kind, "conv_bwd_data"))
        nnk_conv2d_bwd_data(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, b->y, b->w, b->x, b->work);
    else
        nnk_conv2d_bwd_filter(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, b->x, b->y, b->w, b->work);
}

static void run_blas(const Case *c, Bufs *b) {
    (void)c;
    int lda = b->ta ? b->M : b->K, ldb = b->tb ? b->K : b->N;
    blas_sgemm(101, b->ta ? 112 : 111, b->tb ? 112 : 111, b->M, b->N, b->K, 1.0f, b->ga, lda,
               b->gb, ldb, 0.0f, b->gc, b->N);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --layouts: a convolution in each layout, the variants called in turn (interleaved), so
 * a change in the machine's load hits them alike.  Each variant is what one training step
 * pays for the node: the packed and blocked ones pack their weight copy (a pack node per
 * step), "blocked+cvt" also converts its activations from and to NHWC at both ends (a
 * blocked convolution between NHWC neighbours).  "direct" runs blocked_conv.h's tiles on
 * the NHWC tensors in place: the blocked kernels' micro-kernel without the layout, which
 * tells what the layout itself is worth.  "nnc-blocked" is the kernel library's blocked
 * filter gradient (nnk_conv2d_bwd_filter_blocked: NHWC in, HWIO out, its conversions
 * into blocks made chunk by chunk in the workspace). */
typedef struct LBufs {
    nn_real *x, *w, *y, *work, *bp;          /* NHWC operands, workspace, packed weight */
    nn_real *bwork;                           /* nnk_conv2d_bwd_filter_blocked's workspace */
    nn_real *xb, *yb, *wb;                    /* blocked operands and weight copy */
    nn_real *x2, *y2, *w2;                    /* the blocked variants' NHWC results */
    int n, H, W, C, K, F, OH, OW;
} LBufs;

enum { V_NHWC, V_PACKED, V_DIRECT, V_BLOCKED, V_BLOCKED_CVT, V_LIB, VARIANTS };
static const char *const variant_name[VARIANTS] = {"nhwc", "packed", "direct", "blocked", "blocked+cvt", "nnc-blocked"};

/* Whether a case has the variant: no packed filter gradient; the blocked kinds need whole
 * blocks (an input of fewer channels than a block is one block; its data gradient is not
 * computed by any step: it is a first layer). */
static int has_variant(const Case *c, const LBufs *l, int v) {
    int blocks = l->F % BLK_CB == 0 && (l->C % BLK_CB == 0 || l->C < BLK_CB);
    if (v == V_PACKED) return strcmp(c->kind, "conv_bwd_filter") != 0;
    if (v == V_LIB) return !strcmp(c->kind, "conv_bwd_filter") && nnk_conv2d_blocked_ok(l->C, l->F);
    if (v >= V_DIRECT)
        return blocks && (strcmp(c->kind, "conv_bwd_data") != 0 || l->C % BLK_CB == 0);
    return 1;
}

static void run_variant(const Case *c, LBufs *l, int v) {
    int n = l->n, H = l->H, W = l->W, C = l->C, K = l->K, F = l->F, OH = l->OH, OW = l->OW;
    int cvt = v == V_BLOCKED_CVT, nhwc = v == V_DIRECT;
    if (v == V_LIB) {
        nnk_conv2d_bwd_filter_blocked(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, l->x, l->y, l->w2, l->bwork);
        return;
    }
    nn_real *xb = nhwc ? l->x : l->xb, *yb = nhwc ? l->y : l->yb;
    if (!strcmp(c->kind, "conv_fwd")) {
        if (v == V_NHWC) nnk_conv2d_fwd(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, l->x, l->w, l->y, l->work);
        else if (v == V_PACKED) {
            nnk_pack_b(0, K * K * C, F, l->w, l->bp);
            nnk_conv2d_fwd_packed(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, l->x, l->bp, NULL, NN_EPI_NONE, l->y);
        } else {
            if (cvt) blk_from_nhwc(n, H, W, C, l->x, l->xb);
            blk_pack_fwd(K, K, C, F, l->w, l->wb);
            blk_conv_fwd(nhwc, n, H, W, C, K, K, F, xb, l->wb, nhwc ? l->y2 : l->yb);
            if (cvt) blk_to_nhwc(n, OH, OW, F, l->yb, l->y2);
        }
    } else if (!strcmp(c->kind, "conv_bwd_data")) {
        if (v == V_NHWC) nnk_conv2d_bwd_data(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, l->y, l->w, l->x, l->work);
        else if (v == V_PACKED) {
            nnk_pack_conv_flip(K, K, C, F, l->w, l->bp);
            nnk_conv2d_bwd_data_packed_act(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, l->y, l->bp, NULL, NN_EPI_NONE, l->x);
        } else {
            if (cvt) blk_from_nhwc(n, OH, OW, F, l->y, l->yb);
            blk_pack_data(K, K, C, F, l->w, l->wb);
            blk_conv_bwd_data(nhwc, n, H, W, C, K, K, F, yb, l->wb, nhwc ? l->x2 : l->xb);
            if (cvt) blk_to_nhwc(n, H, W, C, l->xb, l->x2);
        }
    } else {
        if (v == V_NHWC) nnk_conv2d_bwd_filter(n, H, W, C, K, K, F, 1, 1, 0, 0, OH, OW, l->x, l->y, l->w, l->work);
        else {
            if (cvt) blk_from_nhwc(n, H, W, C, l->x, l->xb), blk_from_nhwc(n, OH, OW, F, l->y, l->yb);
            blk_conv_bwd_filter(nhwc, n, H, W, C, K, K, F, xb, yb, l->w2);
        }
    }
}

/* The largest difference between the NHWC result and variant v's (direct or
 * blocked+cvt), relative to the NHWC result's largest magnitude. */
static double variant_error(const Case *c, LBufs *l, int v) {
    run_variant(c, l, V_NHWC);
    run_variant(c, l, v);
    const nn_real *a = l->y, *b = l->y2;
    size_t len = (size_t)l->n * l->OH * l->OW * l->F;
    if (!strcmp(c->kind, "conv_bwd_data")) a = l->x, b = l->x2, len = (size_t)l->n * l->H * l->W * l->C;
    if (!strcmp(c->kind, "conv_bwd_filter")) a = l->w, b = l->w2, len = (size_t)l->K * l->K * l->C * l->F;
    double err = 0, big = 0;
    for (size_t i = 0; i < len; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > err) err = d;
        if (fabs(a[i]) > big) big = fabs(a[i]);
    }
    return big > 0 ? err / big : err;
}

static void layout_case(const Case *c, double min_time) {
    const int *v = c->a;
    LBufs l = {.n = v[0], .H = v[1], .W = v[2], .C = v[3], .K = v[4], .F = v[5]};
    l.OH = l.H - l.K + 1, l.OW = l.W - l.K + 1;
    size_t xs = (size_t)l.n * l.H * l.W * l.C, ys = (size_t)l.n * l.OH * l.OW * l.F;
    size_t ws = (size_t)l.K * l.K * l.C * l.F, rows = (size_t)l.K * l.K * (l.C > l.F ? l.C : l.F);
    l.x = buffer(xs), l.xb = buffer(xs), l.x2 = buffer(xs);
    l.y = buffer(ys), l.yb = buffer(ys), l.y2 = buffer(ys);
    l.w = buffer(ws), l.wb = buffer(ws), l.w2 = buffer(ws);
    l.bp = buffer(rows * ((l.C > l.F ? l.C : l.F) + NNK_PACK_COLS));
    l.work = buffer(nnk_conv2d_work_elems(l.n, l.H, l.W, l.C, l.K, l.K, l.F, 1, 1, l.OH, l.OW));
    l.bwork = buffer(nnk_conv2d_blocked_work_elems(l.n, l.H, l.W, l.C, l.K, l.K, l.F, 1, 1, l.OH, l.OW));
    double flops = 2.0 * l.n * l.OH * l.OW * l.F * l.K * l.K * l.C;
    int have[VARIANTS], nv = 0;
    for (int i = 0; i < VARIANTS; i++) nv += have[i] = has_variant(c, &l, i);
    if (have[V_BLOCKED])
        printf("check %s %.3g %.3g %.3g\n", c->name, variant_error(c, &l, V_DIRECT), variant_error(c, &l, V_BLOCKED_CVT),
               have[V_LIB] ? variant_error(c, &l, V_LIB) : 0.0);
    static double t[VARIANTS][1000];
    int calls = 0;
    for (int i = 0; i < VARIANTS; i++)
        if (have[i]) run_variant(c, &l, i);          /* warm-up */
    double start = nn_now();
    while (calls < 1000 && (calls < 5 || nn_now() - start < min_time * nv)) {
        for (int i = 0; i < VARIANTS; i++) {
            if (!have[i]) continue;
            double t0 = nn_now();
            run_variant(c, &l, i);
            t[i][calls] = nn_now() - t0;
        }
        calls++;
    }
    for (int i = 0; i < VARIANTS; i++) {
        if (!have[i]) { printf("row %s %s - %.9g\n", c->name, variant_name[i], flops); continue; }
        qsort(t[i], calls, sizeof t[i][0], cmp_double);
        double med = calls % 2 ? t[i][calls / 2] : (t[i][calls / 2 - 1] + t[i][calls / 2]) / 2;
        printf("row %s %s %.9g %.9g\n", c->name, variant_name[i], med, flops);
    }
    fflush(stdout);
    nn_real *all[] = {l.x, l.xb, l.x2, l.y, l.yb, l.y2, l.w, l.wb, l.w2, l.bp, l.work, l.bwork};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* The median time of one call: one warm-up call, then calls until min_time has passed
 * (at least 5, at most 1000). */
static double median_time(void (*fn)(const Case *, Bufs *), const Case *c, Bufs *b, double min_time) {
    static double t[1000];
    fn(c, b);
    int n = 0;
    double start = nn_now();
    while (n < 1000 && (n < 5 || nn_now() - start < min_time)) {
        double t0 = nn_now();
        fn(c, b);
        t[n++] = nn_now() - t0;
    }
    qsort(t, n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static int parse_case(char *spec, Case *c) {
    char *eq = strchr(spec, '=');
    if (!eq) return -1;
    *eq = 0;
    c->name = spec;
    c->kind = strtok(eq + 1, ",");
    if (!c->kind) return -1;
    int want = !strcmp(c->kind, "gemm") ? 5 : 6;
    if (strcmp(c->kind, "gemm") && strcmp(c->kind, "conv_fwd") && strcmp(c->kind, "conv_bwd_data") &&
        strcmp(c->kind, "conv_bwd_filter"))
        return -1;
    for (int i = 0; i < want; i++) {
        char *tok = strtok(NULL, ",");
        if (!tok) return -1;
        c->a[i] = atoi(tok);
        if (c->a[i] < 0 || (i < 3 && c->a[i] == 0)) return -1;
    }
    return strtok(NULL, ",") ? -1 : 0;
}

int main(int argc, char **argv) {
    int threads = 0, peak = 0, layouts = 0;
    double min_time = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--cpu-time")) lab_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--layouts")) layouts = 1;
        else if (argv[i][0] == '-') { fprintf(stderr, "kernel_lab: unknown option %s\n", argv[i]); return 1; }
    }
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
    threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    load_openblas(threads);
    printf("threads %d\n", threads);
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (strcmp(argv[i], "--peak") && strcmp(argv[i], "--cpu-time") && strcmp(argv[i], "--layouts")) i++;
            continue;
        }
        Case c;
        if (parse_case(argv[i], &c) < 0) {
            fprintf(stderr, "kernel_lab: bad case '%s'\n", argv[i]);
            return 1;
        }
        if (layouts) {
            if (!strcmp(c.kind, "gemm")) { fprintf(stderr, "kernel_lab: --layouts times convolutions\n"); return 1; }
            layout_case(&c, min_time);
            continue;
        }
        Bufs b;
        setup(&c, &b);
        double flops = 2.0 * b.M * b.N * b.K;
        printf("row %s nnc %.9g %.9g\n", c.name, median_time(run_nnc, &c, &b, min_time), flops);
        if (blas_sgemm) printf("row %s openblas %.9g %.9g\n", c.name, median_time(run_blas, &c, &b, min_time), flops);
        else printf("row %s openblas - %.9g\n", c.name, flops);
        fflush(stdout);
        free(b.x), free(b.w), free(b.y), free(b.work), free(b.ga), free(b.gb), free(b.gc);
    }
    if (peak) printf("peak %.6g\n", nn_prof_fma_gflops(threads));
    return 0;
}
