/* kernel_lab.c — times nnc's GEMM and convolution kernels (kernels/nn_kernels.h, compiled
 * here as `nnc build --specialize` compiles them) and OpenBLAS's cblas_sgemm on the same
 * shapes, alternating the two case by case; benchmarks/kernel_lab.py builds and runs it
 * (with each C compiler it is asked for) next to TensorFlow and prints the table.
 *
 *   kernel_lab [--threads T] [--min-time S] [--peak] [--cpu-time] CASE...
 *
 * CASE is NAME=KIND,ARGS:
 *   gemm,M,N,K,TA,TB                 nnk_gemm(TA, TB, M, N, K, ...) / cblas_sgemm
 *   conv_fwd,n,H,W,C,K,F             nnk_conv2d_fwd, valid padding, stride 1, K×K filter
 *   conv_bwd_data,n,H,W,C,K,F        nnk_conv2d_bwd_data
 *   conv_bwd_filter,n,H,W,C,K,F      nnk_conv2d_bwd_filter
 * For a convolution, OpenBLAS times only the GEMM of the im2col formulation (what the
 * convolution costs beyond the gather and scatter); nnc times its whole kernel.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn_kernels.h"
#include "nn_profile.h"

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
    int threads = 0, peak = 0;
    double min_time = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--cpu-time")) lab_clock = CLOCK_PROCESS_CPUTIME_ID;
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
            if (strcmp(argv[i], "--peak") && strcmp(argv[i], "--cpu-time")) i++;
            continue;
        }
        Case c;
        if (parse_case(argv[i], &c) < 0) {
            fprintf(stderr, "kernel_lab: bad case '%s'\n", argv[i]);
            return 1;
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
