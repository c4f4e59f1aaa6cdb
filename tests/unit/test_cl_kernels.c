/* kernels/nn_kernels.cl against kernels/nn_kernels.h, in float, on the first OpenCL
 * device (PoCL on the CPU here).
 *
 * Each test appends small __kernel wrappers with literal shapes (as the compiler will
 * generate) to the .cl source, builds it, and runs every wrapper twice: with one
 * work-group and with many (NNCL_WG-sized groups, G = 1 and G = 23); the two runs must
 * give bit-identical buffers (every buffer, inputs included).  The G = 23 result is then
 * compared with the C kernel on the same inputs:
 *   exact (bit-equal): relu, copy, maxpool fwd/bwd, dropout masks and outputs;
 *   elementwise math:  |cl − c| <= 1e-6 · max|c| over the array;
 *   GEMM/conv/pooling sums, reductions, losses, batchnorm, optimizers: 1e-5 · max|c|
 *   (C sums those in double or in another order; OpenCL builtins have ULP bounds).
 * Without an OpenCL platform/device the tests fail, unless NNC_NO_OPENCL=1 (skip).
 * NNC_CL_BENCH=1 prints rough timings of a 512³ GEMM and a conv.  NNC_CL_OPTIONS adds
 * build options (e.g. -DNNCL_CPU=0 runs the GPU engine on a CPU device). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn_kernels.h"

/* ------------------------------------------------------------ OpenCL helpers */

#define CL_OK(call)                                                                    \
    do {                                                                               \
        cl_int e_ = (call);                                                            \
        cr_assert(e_ == CL_SUCCESS, "%s failed: OpenCL error %d", #call, (int)e_);     \
    } while (0)

static cl_device_id dev;
static cl_context ctx;
static cl_command_queue queue;
static cl_program prog;
static int wg = 64;          /* NNCL_WG of the current program */
static const char *layout_opts = "";   /* build options a test adds (-DNNCL_CPU=0: the GPU layout) */
static char *src;            /* .cl text + wrappers */
static size_t src_len;

static void src_add(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    src = realloc(src, src_len + need + 1);
    cr_assert(src);
    va_start(ap, fmt);
    vsnprintf(src + src_len, need + 1, fmt, ap);
    va_end(ap);
    src_len += need;
}

/* Opens the first device and starts the source with nn_kernels.cl. */
static void cl_begin(int work_group) {
    cl_platform_id plat;
    cl_uint np = 0, nd = 0;
    if (clGetPlatformIDs(1, &plat, &np) != CL_SUCCESS || np == 0 ||
        clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, &nd) != CL_SUCCESS || nd == 0) {
        const char *skip = getenv("NNC_NO_OPENCL");
        if (skip && strcmp(skip, "1") == 0) cr_skip_test("no OpenCL device (NNC_NO_OPENCL=1)");
        cr_assert_fail("no OpenCL platform/device found (install one, e.g. PoCL, or set "
                       "NNC_NO_OPENCL=1 to skip these tests)");
    }
    cl_int err;
    ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    CL_OK(err);
    queue = clCreateCommandQueue(ctx, dev, 0, &err);
    CL_OK(err);
    wg = work_group;
    FILE *f = fopen(NNC_SOURCE_DIR "/kernels/nn_kernels.cl", "rb");
    cr_assert(f, "cannot open kernels/nn_kernels.cl");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    free(src);
    src = malloc(len + 1);
    cr_assert(src && fread(src, 1, len, f) == (size_t)len);
    src[len] = 0;
    src_len = len;
    fclose(f);
    src_add("\n/* ---- test wrappers ---- */\n");
}

/* A wrapper kernel `name(params)` whose body declares scratch[local] (if local is not
 * NULL) and runs `call`. */
static void wrap(const char *name, const char *local, const char *params, const char *fmt, ...) {
    char call[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call, sizeof call, fmt, ap);
    va_end(ap);
    src_add("__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\nvoid %s(%s) {\n", name, params);
    if (local) src_add("  __local nn_real scratch[%s];\n", local);
    src_add("  %s;\n}\n", call);
}

static void cl_build(void) {
    cl_int err;
    const char *s = src;
    prog = clCreateProgramWithSource(ctx, 1, &s, &src_len, &err);
    CL_OK(err);
    char opts[512];
    const char *extra = getenv("NNC_CL_OPTIONS");   /* e.g. -DNNCL_CPU=0 to test the GPU engine here */
    snprintf(opts, sizeof opts, "-DNNCL_WG=%d %s %s", wg, layout_opts, extra ? extra : "");
    err = clBuildProgram(prog, 1, &dev, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t n = 0;
        clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
        char *log = malloc(n + 1);
        clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL);
        log[n] = 0;
        cr_assert_fail("build failed (%d):\n%s", (int)err, log);
    }
}

static void cl_end(void) {
    if (prog) clReleaseProgram(prog);
    if (queue) clReleaseCommandQueue(queue);
    if (ctx) clReleaseContext(ctx);
    prog = NULL; queue = NULL; ctx = NULL;
    free(src);
    src = NULL;
}

/* Kernel arguments: ints, longs, floats, ulongs, float buffers (host array, elements;
 * in and out) and NULL buffers. */
typedef struct {
    char kind;
    long long i;
    double f;
    unsigned long long u;
    float *host;
    size_t count;
} arg_t;
#define AI(v) ((arg_t){.kind = 'i', .i = (v)})
#define AL(v) ((arg_t){.kind = 'l', .i = (v)})
#define AF(v) ((arg_t){.kind = 'f', .f = (v)})
#define AU(v) ((arg_t){.kind = 'u', .u = (v)})
#define AB(p, n) ((arg_t){.kind = 'b', .host = (p), .count = (n)})
#define AN ((arg_t){.kind = 'n'})
#define MAX_ARGS 16

static double last_ms;   /* time of the last many-group launch */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* One launch with `groups` work-groups; buffers start from the host arrays in `a`,
 * results are read into out[j] (allocated). */
static void launch_once(cl_kernel k, int nargs, const arg_t *a, int groups, float **out) {
    cl_mem mem[MAX_ARGS] = {0};
    cl_int err;
    for (int j = 0; j < nargs; j++) {
        switch (a[j].kind) {
        case 'i': { cl_int v = (cl_int)a[j].i; CL_OK(clSetKernelArg(k, j, sizeof v, &v)); break; }
        case 'l': { cl_long v = a[j].i; CL_OK(clSetKernelArg(k, j, sizeof v, &v)); break; }
        case 'f': { cl_float v = (cl_float)a[j].f; CL_OK(clSetKernelArg(k, j, sizeof v, &v)); break; }
        case 'u': { cl_ulong v = a[j].u; CL_OK(clSetKernelArg(k, j, sizeof v, &v)); break; }
        case 'n': CL_OK(clSetKernelArg(k, j, sizeof(cl_mem), NULL)); break;
        case 'b': {
            size_t bytes = (a[j].count ? a[j].count : 1) * sizeof(float);
            mem[j] = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, a[j].host, &err);
            CL_OK(err);
            CL_OK(clSetKernelArg(k, j, sizeof(cl_mem), &mem[j]));
            break;
        }
        }
    }
    size_t local = (size_t)wg, global = (size_t)groups * wg;
    double t0 = now_ms();
    CL_OK(clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &local, 0, NULL, NULL));
    CL_OK(clFinish(queue));
    last_ms = now_ms() - t0;
    for (int j = 0; j < nargs; j++) {
        if (!mem[j]) continue;
        out[j] = malloc((a[j].count ? a[j].count : 1) * sizeof(float));
        CL_OK(clEnqueueReadBuffer(queue, mem[j], CL_TRUE, 0, a[j].count * sizeof(float), out[j], 0, NULL, NULL));
        clReleaseMemObject(mem[j]);
    }
}

/* Runs kernel `name` with 1 work-group and with each count in more[0..nmore), asserts
 * every buffer comes back bit-identical, and leaves the last result in the host arrays. */
static void run_groups(const char *name, int nargs, arg_t *a, const int *more, int nmore) {
    cl_int err;
    cl_kernel k = clCreateKernel(prog, name, &err);
    cr_assert(err == CL_SUCCESS, "clCreateKernel(%s): %d", name, (int)err);
    float *one[MAX_ARGS] = {0}, *many[MAX_ARGS] = {0};
    launch_once(k, nargs, a, 1, one);
    for (int m = 0; m < nmore; m++) {
        launch_once(k, nargs, a, more[m], many);
        for (int j = 0; j < nargs; j++) {
            if (!many[j]) continue;
            cr_assert(memcmp(one[j], many[j], a[j].count * sizeof(float)) == 0,
                      "%s: argument %d differs between 1 and %d work-groups", name, j, more[m]);
            if (m == nmore - 1) memcpy(a[j].host, many[j], a[j].count * sizeof(float));
            free(many[j]);
            many[j] = NULL;
        }
    }
    for (int j = 0; j < nargs; j++) free(one[j]);
    clReleaseKernel(k);
}

/* run_groups with 1 and 23 work-groups. */
static void run(const char *name, int nargs, arg_t *a) { run_groups(name, nargs, a, (const int[]){23}, 1); }

/* ------------------------------------------------------------ data and comparisons */

static uint64_t rng_state = 0x5EEDull;

static float uniform(float lo, float hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((double)(rng_state >> 11) * 0x1.0p-53);
}

static float *rnd(size_t len, float lo, float hi) {
    float *p = malloc((len ? len : 1) * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < len; i++) p[i] = uniform(lo, hi);
    return p;
}

static float *dup(const float *p, size_t len) {
    float *q = malloc((len ? len : 1) * sizeof *q);
    memcpy(q, p, len * sizeof *q);
    return q;
}

/* |got − want| <= tol · max|want| elementwise (tol 0: bit-equal); NaNs must match. */
static void expect_close(const char *what, const float *got, const float *want, size_t len, double tol) {
    if (tol == 0) {
        for (size_t i = 0; i < len; i++)
            if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
                cr_expect_fail("%s[%zu] = %.9g, C has %.9g (expected bit-equal)", what, i, got[i], want[i]);
                return;
            }
        return;
    }
    double mag = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < len; i++) if (fabs(want[i]) > mag) mag = fabs(want[i]);
    for (size_t i = 0; i < len; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            cr_expect(isnan(want[i]) && isnan(got[i]), "%s[%zu] = %g, C has %g", what, i, got[i], want[i]);
            continue;
        }
        double e = fabs((double)got[i] - want[i]);
        if (e > worst) { worst = e; at = i; }
    }
    cr_expect(worst <= tol * mag + 1e-37, "%s: max error %g at [%zu] (%.9g vs C %.9g), tolerance %g x %g",
              what, worst, at, got[at], want[at], tol, mag);
}

#define TOL_EW 1e-6
#define TOL_SUM 1e-5
#define G_ "__global const nn_real *"
#define GW_ "__global nn_real *"

/* ------------------------------------------------------------ GEMM */

static const int gemm_sizes[][3] = {{1, 1, 1}, {33, 17, 5}, {67, 45, 129}, {128, 64, 64}, {5, 300, 17}};
#define N_GEMM_SIZES (int)(sizeof gemm_sizes / sizeof gemm_sizes[0])

static void gemm_cases(int work_group) {
    cl_begin(work_group);
    for (int s = 0; s < N_GEMM_SIZES; s++)
        for (int t = 0; t < 4; t++)
            for (int acc = 0; acc < 2; acc++) {
                char name[64];
                snprintf(name, sizeof name, "gemm_%d_%d_%d", s, t, acc);
                wrap(name, "NNCL_GEMM_LOCAL", G_ "A, " G_ "B, " GW_ "C",
                     "nncl_gemm(%d, %d, %d, %d, %d, A, B, C, %d, scratch)", t >> 1, t & 1,
                     gemm_sizes[s][0], gemm_sizes[s][1], gemm_sizes[s][2], acc);
            }
    cl_build();
    for (int s = 0; s < N_GEMM_SIZES; s++)
        for (int t = 0; t < 4; t++)
            for (int acc = 0; acc < 2; acc++) {
                int M = gemm_sizes[s][0], N = gemm_sizes[s][1], K = gemm_sizes[s][2];
                float *A = rnd((size_t)M * K, -1, 1), *B = rnd((size_t)K * N, -1, 1);
                float *C = rnd((size_t)M * N, -1, 1), *ref = dup(C, (size_t)M * N);
                nnk_gemm(t >> 1, t & 1, M, N, K, A, B, ref, acc);
                char name[64];
                snprintf(name, sizeof name, "gemm_%d_%d_%d", s, t, acc);
                run(name, 3, (arg_t[]){AB(A, (size_t)M * K), AB(B, (size_t)K * N), AB(C, (size_t)M * N)});
                expect_close(name, C, ref, (size_t)M * N, TOL_SUM);
                free(A); free(B); free(C); free(ref);
            }
    cl_end();
}

Test(cl_gemm, all_transposes_odd_sizes_accumulate) { gemm_cases(64); }
Test(cl_gemm, work_group_16) { gemm_cases(16); }
Test(cl_gemm, work_group_128) { gemm_cases(128); }
Test(cl_gemm, work_group_256) { gemm_cases(256); }

/* ------------------------------------------------------------ conv2d */

typedef struct { int n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW; } conv_t;
static const conv_t convs[] = {
    {2, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 26, 26},  /* first layer, valid */
    {3, 9, 11, 5, 3, 3, 7, 2, 2, 1, 1, 5, 6},      /* 'same', stride 2 */
    {1, 7, 6, 4, 1, 1, 3, 1, 1, 0, 0, 7, 6},       /* pointwise, n = 1 */
    {2, 8, 8, 3, 5, 4, 6, 1, 2, 2, 1, 8, 4},       /* 'same', odd kernel, mixed strides */
    {3, 10, 10, 16, 3, 3, 33, 1, 1, 0, 0, 8, 8},   /* K, F past the tiles */
    {2, 6, 5, 2, 2, 3, 4, 3, 2, 0, 0, 2, 2},       /* stride > 1 leaving cells uncovered */
    {2, 9, 8, 3, 3, 3, 16, 2, 2, 1, 0, 5, 4},      /* direct (27-cell windows), 'same', stride 2 */
};
#define N_CONVS (int)(sizeof convs / sizeof convs[0])

static void conv_wrappers(int i, const conv_t *c) {
    char name[64];
    const char *fn[3] = {"fwd", "bwd_data", "bwd_filter"};
    const char *loc[3] = {"NNCL_CONV2D_FWD_LOCAL", "NNCL_CONV2D_BWD_DATA_LOCAL", "NNCL_CONV2D_BWD_FILTER_LOCAL"};
    for (int f = 0; f < 3; f++) {
        snprintf(name, sizeof name, "conv_%s_%d", fn[f], i);
        wrap(name, loc[f], "int n, " G_ "a, " G_ "b, " GW_ "o",
             "nncl_conv2d_%s(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, a, b, o, scratch)", fn[f],
             c->H, c->W, c->C, c->KH, c->KW, c->F, c->SH, c->SW, c->PT, c->PL, c->OH, c->OW);
    }
}

Test(cl_conv2d, fwd_bwd_data_bwd_filter) {
    cl_begin(64);
    for (int i = 0; i < N_CONVS; i++) conv_wrappers(i, &convs[i]);
    cl_build();
    for (int i = 0; i < N_CONVS; i++) {
        conv_t c = convs[i];
        size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F;
        size_t ny = (size_t)c.n * c.OH * c.OW * c.F;
        float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *dy = rnd(ny, -1, 1);
        float *y = rnd(ny, -1, 1), *dx = rnd(nx, -1, 1), *dw = rnd(nw, -1, 1);
        float *ry = dup(y, ny), *rdx = dup(dx, nx), *rdw = dup(dw, nw);
        size_t nwork = nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW);
        float *work = malloc((nwork + 1) * sizeof *work);
        nnk_conv2d_fwd(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, w, ry, work);
        nnk_conv2d_bwd_data(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, dy, w, rdx, work);
        nnk_conv2d_bwd_filter(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, dy, rdw, work);
        char name[64];
        snprintf(name, sizeof name, "conv_fwd_%d", i);
        run(name, 4, (arg_t[]){AI(c.n), AB(x, nx), AB(w, nw), AB(y, ny)});
        expect_close(name, y, ry, ny, TOL_SUM);
        snprintf(name, sizeof name, "conv_bwd_data_%d", i);
        run(name, 4, (arg_t[]){AI(c.n), AB(dy, ny), AB(w, nw), AB(dx, nx)});
        expect_close(name, dx, rdx, nx, TOL_SUM);
        snprintf(name, sizeof name, "conv_bwd_filter_%d", i);
        run(name, 4, (arg_t[]){AI(c.n), AB(x, nx), AB(dy, ny), AB(dw, nw)});
        expect_close(name, dw, rdw, nw, TOL_SUM);
        free(x); free(w); free(dy); free(y); free(dx); free(dw); free(ry); free(rdx); free(rdw); free(work);
    }
    cl_end();
}

/* Epilogue fusion: the fused GEMM and convolution (bias, then relu or nothing) equal the
 * separate kernels bit for bit on the C side, and the OpenCL twins equal those within
 * the contraction's tolerance. */
static void separate_epilogue(float *y, int rows, int cols, const float *bias, int act) {
    nnk_bias_add(rows, cols, y, bias);
    if (act == NN_EPI_RELU) nnk_relu_fwd((int64_t)rows * cols, y, y);
    if (act == NN_EPI_SIGMOID) nnk_sigmoid_fwd((int64_t)rows * cols, y, y);
    if (act == NN_EPI_TANH) nnk_tanh_fwd((int64_t)rows * cols, y, y);
}

Test(cl_epilogue, fused_equals_separate) {
    cl_begin(64);
    for (int s = 0; s < N_GEMM_SIZES; s++)
        for (int tb = 0; tb < 2; tb++)
            for (int act = 0; act < 4; act++) {
                char name[64];
                snprintf(name, sizeof name, "gemm_epi_%d_%d_%d", s, tb, act);
                wrap(name, "NNCL_GEMM_BIAS_ACT_LOCAL", G_ "A, " G_ "B, " G_ "bias, " GW_ "C",
                     "nncl_gemm_bias_act(0, %d, %d, %d, %d, A, B, bias, %d, C, scratch)", tb, gemm_sizes[s][0],
                     gemm_sizes[s][1], gemm_sizes[s][2], act);
            }
    for (int i = 0; i < N_CONVS; i++) {
        const conv_t *c = &convs[i];
        char name[64];
        snprintf(name, sizeof name, "conv_epi_%d", i);
        wrap(name, "NNCL_CONV2D_FWD_BIAS_ACT_LOCAL", "int n, " G_ "x, " G_ "w, " G_ "bias, " GW_ "y",
             "nncl_conv2d_fwd_bias_act(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, x, w, bias, NN_EPI_RELU, y, "
             "scratch)",
             c->H, c->W, c->C, c->KH, c->KW, c->F, c->SH, c->SW, c->PT, c->PL, c->OH, c->OW);
    }
    cl_build();
    for (int s = 0; s < N_GEMM_SIZES; s++)
        for (int tb = 0; tb < 2; tb++)
            for (int act = 0; act < 4; act++) {
                int M = gemm_sizes[s][0], N = gemm_sizes[s][1], K = gemm_sizes[s][2];
                float *A = rnd((size_t)M * K, -1, 1), *B = rnd((size_t)K * N, -1, 1), *bias = rnd(N, -1, 1);
                float *C = rnd((size_t)M * N, -1, 1), *ref = dup(C, (size_t)M * N), *fused = dup(C, (size_t)M * N);
                nnk_gemm(0, tb, M, N, K, A, B, ref, 0);
                separate_epilogue(ref, M, N, bias, act);
                nnk_gemm_bias_act(0, tb, M, N, K, A, B, bias, act, fused);
                cr_expect_eq(memcmp(fused, ref, (size_t)M * N * sizeof *ref), 0,
                             "nnk_gemm_bias_act %dx%dx%d tb=%d act=%d differs from gemm + bias_add + relu", M, N, K, tb,
                             act);
                char name[64];
                snprintf(name, sizeof name, "gemm_epi_%d_%d_%d", s, tb, act);
                run(name, 4, (arg_t[]){AB(A, (size_t)M * K), AB(B, (size_t)K * N), AB(bias, N), AB(C, (size_t)M * N)});
                expect_close(name, C, ref, (size_t)M * N, TOL_SUM);
                free(A); free(B); free(bias); free(C); free(ref); free(fused);
            }
    for (int i = 0; i < N_CONVS; i++) {
        conv_t c = convs[i];
        size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F;
        size_t ny = (size_t)c.n * c.OH * c.OW * c.F;
        float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *bias = rnd(c.F, -1, 1), *y = rnd(ny, -1, 1);
        float *ref = dup(y, ny), *fused = dup(y, ny);
        size_t nwork = nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW);
        float *work = malloc((nwork + 1) * sizeof *work);
        nnk_conv2d_fwd(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, w, ref, work);
        separate_epilogue(ref, c.n * c.OH * c.OW, c.F, bias, NN_EPI_RELU);
        nnk_conv2d_fwd_bias_act(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, w, bias,
                                NN_EPI_RELU, fused, work);
        cr_expect_eq(memcmp(fused, ref, ny * sizeof *ref), 0,
                     "nnk_conv2d_fwd_bias_act case %d differs from conv2d + bias_add + relu", i);
        char name[64];
        snprintf(name, sizeof name, "conv_epi_%d", i);
        run(name, 5, (arg_t[]){AI(c.n), AB(x, nx), AB(w, nw), AB(bias, c.F), AB(y, ny)});
        expect_close(name, y, ref, ny, TOL_SUM);
        free(x); free(w); free(bias); free(y); free(ref); free(fused); free(work);
    }
    cl_end();
}

/* A partial batch: wrappers are built for n = 3 shapes but called with n = 2 (the
 * runtime n), and the rows past n must stay untouched. */
Test(cl_conv2d, partial_batch_leaves_the_rest) {
    cl_begin(64);
    conv_t c = convs[1];
    conv_wrappers(0, &c);
    cl_build();
    int n = 2;
    size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F;
    size_t ny = (size_t)c.n * c.OH * c.OW * c.F;
    float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *y = rnd(ny, -1, 1), *ry = dup(y, ny);
    float *work = malloc(nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW) * sizeof *work);
    nnk_conv2d_fwd(n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, w, ry, work);
    run("conv_fwd_0", 4, (arg_t[]){AI(n), AB(x, nx), AB(w, nw), AB(y, ny)});
    expect_close("partial conv_fwd", y, ry, ny, TOL_SUM);
    size_t done = (size_t)n * c.OH * c.OW * c.F;
    expect_close("partial conv_fwd tail", y + done, ry + done, ny - done, 0);
    free(x); free(w); free(y); free(ry); free(work);
    cl_end();
}

/* ------------------------------------------------------------ pooling */

typedef struct { int n, H, W, C, PH, PW, SH, SW, PT, PL, OH, OW; } pool_t;
static const pool_t pools[] = {
    {2, 28, 28, 3, 2, 2, 2, 2, 0, 0, 14, 14},  /* tiles the input */
    {2, 9, 10, 4, 3, 3, 2, 2, 0, 0, 4, 4},     /* valid, last row/cols uncovered */
    {1, 7, 8, 2, 3, 3, 2, 2, 1, 0, 4, 4},      /* 'same' with a top pad */
    {3, 5, 5, 2, 2, 2, 1, 1, 0, 0, 4, 4},      /* overlapping windows */
    {1, 5, 7, 3, 3, 2, 3, 2, 1, 1, 2, 4},      /* 'same', uneven */
    {2, 8, 9, 11, 2, 2, 2, 2, 0, 0, 4, 4},     /* C past a vector of 8 (CPU layout) */
    {2, 6, 6, 17, 3, 3, 1, 1, 1, 1, 6, 6},     /* overlapping, padded, C = 2×8 + 1 */
    {2, 12, 13, 16, 2, 2, 2, 2, 0, 0, 6, 6},   /* tiles, C in whole vectors (C's select path) */
    {2, 11, 11, 8, 2, 2, 2, 2, 0, 0, 5, 5},    /* tiles, C = 8, last row and column uncovered */
    {3, 10, 10, 64, 2, 2, 2, 2, 0, 0, 5, 5},   /* fashion_cnn's second pooling */
    {2, 5, 7, 8, 2, 2, 2, 2, 0, 0, 3, 4},      /* 'same': windows past the bottom and right edges */
    {1, 9, 13, 24, 3, 3, 3, 3, 0, 0, 3, 4},    /* 3x3 tiles, one column uncovered */
};
#define N_POOLS (int)(sizeof pools / sizeof pools[0])

Test(cl_pooling, max_avg_global) {
    cl_begin(64);
    for (int i = 0; i < N_POOLS; i++) {
        pool_t p = pools[i];
        char name[64];
        const char *fn[4] = {"maxpool2d_fwd", "maxpool2d_bwd", "avgpool2d_fwd", "avgpool2d_bwd"};
        const char *params[4] = {"int n, " G_ "x, " GW_ "y", "int n, " G_ "x, " G_ "y, " G_ "dy, " GW_ "dx",
                                 "int n, " G_ "x, " GW_ "y", "int n, " G_ "dy, " GW_ "dx"};
        const char *args[4] = {"x, y", "x, y, dy, dx", "x, y", "dy, dx"};
        for (int f = 0; f < 4; f++) {
            snprintf(name, sizeof name, "%s_%d", fn[f], i);
            wrap(name, NULL, params[f], "nncl_%s(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %s)", fn[f],
                 p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, args[f]);
        }
    }
    wrap("gap_fwd", NULL, "int n, " G_ "x, " GW_ "y", "nncl_global_avgpool2d_fwd(n, 49, 10, x, y)");
    wrap("gap_bwd", NULL, "int n, " G_ "dy, " GW_ "dx", "nncl_global_avgpool2d_bwd(n, 49, 10, dy, dx)");
    cl_build();
    for (int i = 0; i < N_POOLS; i++) {
        pool_t p = pools[i];
        size_t nx = (size_t)p.n * p.H * p.W * p.C, ny = (size_t)p.n * p.OH * p.OW * p.C;
        float *x = rnd(nx, -1, 1), *dy = rnd(ny, -1, 1);
        for (size_t j = 0; j < nx; j++) x[j] = floorf(x[j] * 4) / 4;   /* ties: first max wins */
        float *y = rnd(ny, -1, 1), *dx = rnd(nx, -1, 1), *ry = dup(y, ny), *rdx = dup(dx, nx);
        char name[64];
        nnk_maxpool2d_fwd(p.n, p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, x, ry);
        snprintf(name, sizeof name, "maxpool2d_fwd_%d", i);
        run(name, 3, (arg_t[]){AI(p.n), AB(x, nx), AB(y, ny)});
        expect_close(name, y, ry, ny, 0);
        nnk_maxpool2d_bwd(p.n, p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, x, ry, dy, rdx);
        snprintf(name, sizeof name, "maxpool2d_bwd_%d", i);
        run(name, 5, (arg_t[]){AI(p.n), AB(x, nx), AB(y, ny), AB(dy, ny), AB(dx, nx)});
        expect_close(name, dx, rdx, nx, 0);
        nnk_avgpool2d_fwd(p.n, p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, x, ry);
        snprintf(name, sizeof name, "avgpool2d_fwd_%d", i);
        run(name, 3, (arg_t[]){AI(p.n), AB(x, nx), AB(y, ny)});
        expect_close(name, y, ry, ny, TOL_EW);
        nnk_avgpool2d_bwd(p.n, p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, dy, rdx);
        snprintf(name, sizeof name, "avgpool2d_bwd_%d", i);
        run(name, 3, (arg_t[]){AI(p.n), AB(dy, ny), AB(dx, nx)});
        expect_close(name, dx, rdx, nx, TOL_EW);
        free(x); free(dy); free(y); free(dx); free(ry); free(rdx);
    }
    int n = 3;
    size_t nx = (size_t)n * 49 * 10, ny = (size_t)n * 10;
    float *x = rnd(nx, -1, 1), *y = rnd(ny, -1, 1), *ry = dup(y, ny);
    nnk_global_avgpool2d_fwd(n, 49, 10, x, ry);
    run("gap_fwd", 3, (arg_t[]){AI(n), AB(x, nx), AB(y, ny)});
    expect_close("gap_fwd", y, ry, ny, TOL_SUM);
    float *dx = rnd(nx, -1, 1), *rdx = dup(dx, nx);
    nnk_global_avgpool2d_bwd(n, 49, 10, y, rdx);
    run("gap_bwd", 3, (arg_t[]){AI(n), AB(y, ny), AB(dx, nx)});
    expect_close("gap_bwd", dx, rdx, nx, TOL_EW);
    free(x); free(y); free(ry); free(dx); free(rdx);
    cl_end();
}

/* Runs kernel `name` once more with `groups` work-groups and asserts every buffer comes
 * back as the last run() left it (a large G: more groups than units of work). */
static void run_again(const char *name, int nargs, arg_t *a, int groups) {
    cl_int err;
    cl_kernel k = clCreateKernel(prog, name, &err);
    cr_assert(err == CL_SUCCESS, "clCreateKernel(%s): %d", name, (int)err);
    float *out[MAX_ARGS] = {0};
    launch_once(k, nargs, a, groups, out);
    for (int j = 0; j < nargs; j++) {
        if (!out[j]) continue;
        cr_expect(memcmp(out[j], a[j].host, a[j].count * sizeof(float)) == 0,
                  "%s: argument %d differs between 23 and %d work-groups", name, j, groups);
        free(out[j]);
    }
    clReleaseKernel(k);
}

/* The fused first convolution and max-pool (fuse_pool.c), each activation, against C:
 * the pooled output and the argmax bytes (the same format on both targets), then the
 * filter and bias gradients from C's pooled output and argmax.  CPU layout at work-groups
 * of 16 (a CPU device's size) and 64, GPU layout (-DNNCL_CPU=0) at 256; 1, 23 and 97
 * groups. */
static void conv_pool_cases(const char *opts, int work_group) {
    static const int shapes[][9] = {
        /* n H W C K pad F P trim: trim cuts the convolution to the cells its pool reads
         * (trim_pool.c), as fashion_cnn's 28x28 first layer is built */
        {2, 28, 28, 1, 3, 0, 32, 2, 0}, {3, 9, 11, 3, 3, 1, 16, 2, 0}, {2, 10, 10, 2, 4, 1, 48, 3, 0},
        {5, 28, 28, 1, 3, 0, 32, 2, 1},   /* fashion_cnn's, 3x3 single-channel path */
        {3, 13, 9, 1, 3, 0, 16, 2, 0},    /* the same path, odd sizes: last row and column in no window */
        {1, 12, 15, 1, 3, 0, 48, 2, 1},   /* 6 vectors of filters, one sample */
        {2, 12, 12, 1, 3, 1, 16, 2, 0},   /* 'same' padding: the general path */
        {2, 11, 11, 1, 3, 0, 16, 3, 0},   /* 3x3 windows: the general path */
    };
    enum { N = sizeof shapes / sizeof shapes[0] };
    layout_opts = opts;
    cl_begin(work_group);
    for (int i = 0; i < N; i++)
        for (int act = NN_EPI_NONE; act <= NN_EPI_TANH; act++) {
            const int *s = shapes[i];
            int OH = s[5] ? s[1] : s[1] - s[4] + 1, OW = s[5] ? s[2] : s[2] - s[4] + 1, PT = s[5] ? (s[4] - 1) / 2 : 0;
            if (s[8]) OH = OH / s[7] * s[7], OW = OW / s[7] * s[7];
            char name[64];
            snprintf(name, sizeof name, "conv_pool_fwd_%d_%d", i, act);
            wrap(name, NULL, "int n, " G_ "x, " G_ "w, " G_ "b, " GW_ "p, " GW_ "idx",
                 "nncl_conv2d_pool_fwd(n, %d, %d, %d, %d, %d, %d, 1, 1, %d, %d, %d, %d, %d, %d, %d, %d, x, w, b, %d, p, idx)",
                 s[1], s[2], s[3], s[4], s[4], s[6], PT, PT, OH, OW, s[7], s[7], OH / s[7], OW / s[7], act);
            snprintf(name, sizeof name, "conv_pool_bwd_%d_%d", i, act);
            wrap(name, NULL, "int n, " G_ "x, " G_ "dp, " G_ "p, " G_ "idx, " GW_ "dw, " GW_ "db",
                 "nncl_conv2d_pool_bwd_filter(n, %d, %d, %d, %d, %d, %d, 1, 1, %d, %d, %d, %d, %d, %d, %d, %d, x, dp, p, idx, "
                 "%d, dw, db)",
                 s[1], s[2], s[3], s[4], s[4], s[6], PT, PT, OH, OW, s[7], s[7], OH / s[7], OW / s[7], act);
        }
    cl_build();
    for (int i = 0; i < N; i++)
        for (int act = NN_EPI_NONE; act <= NN_EPI_TANH; act++) {
            const int *s = shapes[i];
            int n = s[0], H = s[1], W = s[2], C = s[3], K = s[4], F = s[6], P = s[7];
            int OH = s[5] ? H : H - K + 1, OW = s[5] ? W : W - K + 1, PT = s[5] ? (K - 1) / 2 : 0;
            if (s[8]) OH = OH / P * P, OW = OW / P * P;
            int QH = OH / P, QW = OW / P;
            size_t nx = (size_t)n * H * W * C, nw = (size_t)K * K * C * F, nq = (size_t)n * QH * QW * F;
            float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *b = rnd(F, -0.5f, 0.5f), *dp = rnd(nq, -1, 1);
            float *p = rnd(nq, -1, 1), *idx = rnd(nq, -1, 1), *rp = dup(p, nq), *ridx = dup(idx, nq);
            float *dw = rnd(nw, -1, 1), *db = rnd(F, -1, 1), *rdw = dup(dw, nw), *rdb = dup(db, F);
            nnk_conv2d_pool_fwd(n, H, W, C, K, K, F, 1, 1, PT, PT, OH, OW, P, P, QH, QW, x, w, b, act, rp, ridx);
            nnk_conv2d_pool_bwd_filter(n, H, W, C, K, K, F, 1, 1, PT, PT, OH, OW, P, P, QH, QW, x, dp, rp, ridx, act,
                                       rdw, rdb);
            char name[64];
            snprintf(name, sizeof name, "conv_pool_fwd_%d_%d", i, act);
            arg_t fa[] = {AI(n), AB(x, nx), AB(w, nw), AB(b, F), AB(p, nq), AB(idx, nq)};
            run(name, 6, fa);
            run_again(name, 6, fa, 97);
            expect_close(name, p, rp, nq, TOL_SUM);
            cr_expect(memcmp(idx, ridx, nq) == 0, "%s: argmax bytes differ from C's", name);
            snprintf(name, sizeof name, "conv_pool_bwd_%d_%d", i, act);
            arg_t ba[] = {AI(n), AB(x, nx), AB(dp, nq), AB(rp, nq), AB(ridx, nq), AB(dw, nw), AB(db, F)};
            run(name, 7, ba);
            run_again(name, 7, ba, 97);
            expect_close(name, dw, rdw, nw, TOL_SUM);
            expect_close(name, db, rdb, F, TOL_SUM);
            free(x); free(w); free(b); free(dp); free(p); free(idx); free(rp); free(ridx);
            free(dw); free(db); free(rdw); free(rdb);
        }
    cl_end();
    layout_opts = "";
}

Test(cl_conv_pool, fused_conv_and_max_pool) { conv_pool_cases("", 64); }
Test(cl_conv_pool, work_group_16) { conv_pool_cases("", 16); }
Test(cl_conv_pool, gpu_layout_256) { conv_pool_cases("-DNNCL_CPU=0", 256); }

/* ------------------------------------------------------------ activations, softmax, copies, bias */

/* name + suffix in a small ring of static buffers (kernel names for wrap/run). */
static const char *xname(const char *name, const char *suffix) {
    static char ring[64][48];
    static int next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%s%s", name, suffix);
    return b;
}

/* The activations: C kernel pointers, whether the bwd kernel reads x (grad_act_x in
 * ops.def) and, for parameterized ones, the alpha passed second. */
typedef void (*act_fn)(int64_t, const float *, float *);
typedef void (*act_bwd_fn)(int64_t, const float *, const float *, float *);
typedef void (*act_fn_p)(int64_t, double, const float *, float *);
typedef void (*act_bwd_fn_p)(int64_t, double, const float *, const float *, float *);
static const struct {
    const char *name;
    act_fn fwd;
    act_bwd_fn bwd;
    act_fn_p fwd_p;
    act_bwd_fn_p bwd_p;
    int from_x;
    double alpha;
    double tol;  /* 0: bit-equal */
} acts[] = {
    {"relu", nnk_relu_fwd, nnk_relu_bwd, NULL, NULL, 0, 0, 0},
    {"sigmoid", nnk_sigmoid_fwd, nnk_sigmoid_bwd, NULL, NULL, 0, 0, TOL_EW},
    {"tanh", nnk_tanh_fwd, nnk_tanh_bwd, NULL, NULL, 0, 0, TOL_EW},
    {"gelu", nnk_gelu_fwd, nnk_gelu_bwd, NULL, NULL, 1, 0, TOL_EW},
    {"silu", nnk_silu_fwd, nnk_silu_bwd, NULL, NULL, 1, 0, TOL_EW},
    {"elu", NULL, NULL, nnk_elu_fwd, nnk_elu_bwd, 1, 0.7, TOL_EW},
    {"selu", nnk_selu_fwd, nnk_selu_bwd, NULL, NULL, 0, 0, TOL_EW},
    {"leaky_relu", NULL, NULL, nnk_leaky_relu_fwd, nnk_leaky_relu_bwd, 0, 0.3, 0},
    {"softplus", nnk_softplus_fwd, nnk_softplus_bwd, NULL, NULL, 0, 0, TOL_EW},
    {"hard_sigmoid", nnk_hard_sigmoid_fwd, nnk_hard_sigmoid_bwd, NULL, NULL, 0, 0, TOL_EW},
};
#define N_ACTS (sizeof acts / sizeof *acts)

Test(cl_elementwise, activations_softmax_copies_bias) {
    cl_begin(64);
    const long len = 1037;
    for (size_t f = 0; f < N_ACTS; f++) {
        const char *a = acts[f].name;
        char alpha[48] = "";
        if (acts[f].fwd_p) snprintf(alpha, sizeof alpha, "%.9gf, ", acts[f].alpha);
        wrap(xname(a, "_fwd"), NULL, G_ "x, " GW_ "y", "nncl_%s_fwd(%ld, %sx, y)", a, len, alpha);
        wrap(xname(a, "_bwd"), NULL, G_ "y, " G_ "dy, " GW_ "dx", "nncl_%s_bwd(%ld, %sy, dy, dx)", a, len, alpha);
    }
    wrap("softmax_fwd_a", NULL, G_ "x, " GW_ "y", "nncl_softmax_fwd(7, 10, x, y)");
    wrap("softmax_bwd_a", NULL, G_ "y, " G_ "dy, " GW_ "dx", "nncl_softmax_bwd(7, 10, y, dy, dx)");
    wrap("softmax_fwd_b", NULL, G_ "x, " GW_ "y", "nncl_softmax_fwd(3, 1000, x, y)");
    wrap("softmax_bwd_b", NULL, G_ "y, " G_ "dy, " GW_ "dx", "nncl_softmax_bwd(3, 1000, y, dy, dx)");
    wrap("copy", NULL, G_ "x, " GW_ "y", "nncl_copy(%ld, x, y)", len);
    wrap("add_inplace", NULL, GW_ "y, " G_ "x", "nncl_add_inplace(%ld, y, x)", len);
    wrap("bias_add", NULL, GW_ "y, " G_ "b", "nncl_bias_add(29, 37, y, b)");
    wrap("bias_grad", "NNCL_BIAS_GRAD_LOCAL", G_ "dy, " GW_ "db", "nncl_bias_grad(130, 37, dy, db, scratch)");
    cl_build();

    for (size_t f = 0; f < N_ACTS; f++) {
        /* [-8, 8], with exact 0, ±3 (hard_sigmoid's corners) and values near 0 */
        float *x = rnd(len, -8, 8), *y = rnd(len, -1, 1), *ry = dup(y, len);
        x[0] = 0, x[1] = 3, x[2] = -3, x[3] = 1e-4f, x[4] = -1e-4f, x[5] = -30, x[6] = 30;
        if (acts[f].fwd) acts[f].fwd(len, x, ry);
        else acts[f].fwd_p(len, acts[f].alpha, x, ry);
        run(xname(acts[f].name, "_fwd"), 2, (arg_t[]){AB(x, len), AB(y, len)});
        expect_close(xname(acts[f].name, "_fwd"), y, ry, len, acts[f].tol);
        float *dy = rnd(len, -1, 1), *dx = rnd(len, -1, 1), *rdx = dup(dx, len);
        const float *in = acts[f].from_x ? x : ry;   /* what the bwd kernel reads */
        if (acts[f].bwd) acts[f].bwd(len, in, dy, rdx);
        else acts[f].bwd_p(len, acts[f].alpha, in, dy, rdx);
        memcpy(y, in, len * sizeof *y);
        run(xname(acts[f].name, "_bwd"), 3, (arg_t[]){AB(y, len), AB(dy, len), AB(dx, len)});
        expect_close(xname(acts[f].name, "_bwd"), dx, rdx, len, acts[f].tol);
        free(x); free(y); free(ry); free(dy); free(dx); free(rdx);
    }
    int shapes[2][2] = {{7, 10}, {3, 1000}};
    for (int s = 0; s < 2; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t nn = (size_t)rows * cols;
        float *x = rnd(nn, -20, 20), *y = rnd(nn, -1, 1), *ry = dup(y, nn);
        nnk_softmax_fwd(rows, cols, x, ry);
        char name[32];
        snprintf(name, sizeof name, "softmax_fwd_%c", 'a' + s);
        run(name, 2, (arg_t[]){AB(x, nn), AB(y, nn)});
        expect_close(name, y, ry, nn, TOL_SUM);
        float *dy = rnd(nn, -1, 1), *dx = rnd(nn, -1, 1), *rdx = dup(dx, nn);
        nnk_softmax_bwd(rows, cols, ry, dy, rdx);
        memcpy(y, ry, nn * sizeof *y);
        snprintf(name, sizeof name, "softmax_bwd_%c", 'a' + s);
        run(name, 3, (arg_t[]){AB(y, nn), AB(dy, nn), AB(dx, nn)});
        expect_close(name, dx, rdx, nn, TOL_SUM);
        free(x); free(y); free(ry); free(dy); free(dx); free(rdx);
    }
    float *x = rnd(len, -1, 1), *y = rnd(len, -1, 1), *ry = dup(y, len);
    nnk_copy(len, x, ry);
    run("copy", 2, (arg_t[]){AB(x, len), AB(y, len)});
    expect_close("copy", y, ry, len, 0);
    float *z = rnd(len, -1, 1), *rz = dup(z, len);
    nnk_add_inplace(len, rz, x);
    run("add_inplace", 2, (arg_t[]){AB(z, len), AB(x, len)});
    expect_close("add_inplace", z, rz, len, 0);
    float *b = rnd(37, -1, 1), *yb = rnd(29 * 37, -1, 1), *ryb = dup(yb, 29 * 37);
    nnk_bias_add(29, 37, ryb, b);
    run("bias_add", 2, (arg_t[]){AB(yb, 29 * 37), AB(b, 37)});
    expect_close("bias_add", yb, ryb, 29 * 37, 0);
    float *dyb = rnd(130 * 37, -1, 1), *db = rnd(37, -1, 1), *rdb = dup(db, 37);
    nnk_bias_grad(130, 37, dyb, rdb);
    run("bias_grad", 2, (arg_t[]){AB(dyb, 130 * 37), AB(db, 37)});
    expect_close("bias_grad", db, rdb, 37, TOL_SUM);
    free(x); free(y); free(ry); free(z); free(rz); free(b); free(yb); free(ryb); free(dyb); free(db); free(rdb);
    cl_end();
}

/* ------------------------------------------------------------ dropout */

Test(cl_dropout, masks_equal_c_bit_for_bit) {
    cl_begin(64);
    const long len = 5003;
    wrap("dropout_fwd", NULL, "float rate, ulong seed, " G_ "x, " GW_ "y, " GW_ "mask",
         "nncl_dropout_fwd(%ld, rate, seed, x, y, mask)", len);
    wrap("dropout_bwd", NULL, G_ "mask, " G_ "dy, " GW_ "dx", "nncl_dropout_bwd(%ld, mask, dy, dx)", len);
    cl_build();
    const float rates[] = {0.5f, 0.25f, 0.1f, 0.3f, 0.7f, 0.9f, 0.05f, 0.0f, 1.0f, 0.123456f};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        uint64_t seed = 0x1234567890ABCDEFull * (r + 1);
        float *x = rnd(len, -1, 1), *y = rnd(len, -1, 1), *mask = rnd(len, -1, 1);
        float *ry = dup(y, len), *rmask = dup(mask, len);
        nnk_dropout_fwd(len, (double)rates[r], seed, x, ry, rmask);
        run("dropout_fwd", 5, (arg_t[]){AF(rates[r]), AU(seed), AB(x, len), AB(y, len), AB(mask, len)});
        char what[64];
        snprintf(what, sizeof what, "dropout mask (rate %.9g)", rates[r]);
        expect_close(what, mask, rmask, len, 0);
        snprintf(what, sizeof what, "dropout y (rate %.9g)", rates[r]);
        expect_close(what, y, ry, len, 0);
        float *dy = rnd(len, -1, 1), *dx = rnd(len, -1, 1), *rdx = dup(dx, len);
        nnk_dropout_bwd(len, rmask, dy, rdx);
        run("dropout_bwd", 3, (arg_t[]){AB(mask, len), AB(dy, len), AB(dx, len)});
        expect_close("dropout_bwd", dx, rdx, len, 0);
        free(x); free(y); free(mask); free(ry); free(rmask); free(dy); free(dx); free(rdx);
    }
    cl_end();
}

/* ------------------------------------------------------------ batchnorm */

Test(cl_batchnorm, train_infer_bwd) {
    cl_begin(64);
    const int shapes[][2] = {{77, 5}, {300, 3}, {1, 4}};
    for (int s = 0; s < 3; s++)
        for (int affine = 0; affine < 2; affine++) {
            int rows = shapes[s][0], C = shapes[s][1];
            char name[64];
            const char *gb = affine ? "gamma, beta" : "0, 0";
            snprintf(name, sizeof name, "bn_train_%d_%d", s, affine);
            wrap(name, "NNCL_BATCHNORM_FWD_TRAIN_LOCAL",
                 G_ "x, " G_ "gamma, " G_ "beta, " GW_ "y, " GW_ "sm, " GW_ "si, " GW_ "mm, " GW_ "mv",
                 "nncl_batchnorm_fwd_train(%d, %d, 1e-3f, 0.99f, x, %s, y, sm, si, mm, mv, scratch)", rows, C, gb);
            snprintf(name, sizeof name, "bn_infer_%d_%d", s, affine);
            wrap(name, NULL, G_ "x, " G_ "gamma, " G_ "beta, " G_ "mm, " G_ "mv, " GW_ "y",
                 "nncl_batchnorm_fwd_infer(%d, %d, 1e-3f, x, %s, mm, mv, y)", rows, C, gb);
            snprintf(name, sizeof name, "bn_bwd_%d_%d", s, affine);
            wrap(name, "NNCL_BATCHNORM_BWD_LOCAL",
                 G_ "x, " G_ "dy, " G_ "gamma, " G_ "sm, " G_ "si, " GW_ "dx, " GW_ "dg, " GW_ "db",
                 "nncl_batchnorm_bwd(%d, %d, x, dy, %s, sm, si, dx, %s, scratch)", rows, C,
                 affine ? "gamma" : "0", affine ? "dg, db" : "0, 0");
        }
    cl_build();
    for (int s = 0; s < 3; s++)
        for (int affine = 0; affine < 2; affine++) {
            int rows = shapes[s][0], C = shapes[s][1];
            size_t nx = (size_t)rows * C;
            float *x = rnd(nx, -3, 5), *gamma = rnd(C, 0.5f, 2), *beta = rnd(C, -1, 1);
            float *y = rnd(nx, -1, 1), *sm = rnd(C, -1, 1), *si = rnd(C, -1, 1);
            float *mm = rnd(C, -1, 1), *mv = rnd(C, 0.5f, 2);
            float *ry = dup(y, nx), *rsm = dup(sm, C), *rsi = dup(si, C), *rmm = dup(mm, C), *rmv = dup(mv, C);
            float *g = affine ? gamma : NULL, *be = affine ? beta : NULL;
            nnk_batchnorm_fwd_train(rows, C, (double)1e-3f, (double)0.99f, x, g, be, ry, rsm, rsi, rmm, rmv);
            char name[64];
            snprintf(name, sizeof name, "bn_train_%d_%d", s, affine);
            run(name, 8, (arg_t[]){AB(x, nx), affine ? AB(gamma, C) : AN, affine ? AB(beta, C) : AN, AB(y, nx),
                                   AB(sm, C), AB(si, C), AB(mm, C), AB(mv, C)});
            expect_close("bn y", y, ry, nx, TOL_SUM);
            expect_close("bn save_mean", sm, rsm, C, TOL_SUM);
            expect_close("bn save_invstd", si, rsi, C, TOL_SUM);
            expect_close("bn moving_mean", mm, rmm, C, TOL_SUM);
            expect_close("bn moving_var", mv, rmv, C, TOL_SUM);

            float *yi = rnd(nx, -1, 1), *ryi = dup(yi, nx);
            nnk_batchnorm_fwd_infer(rows, C, (double)1e-3f, x, g, be, mm, mv, ryi);
            snprintf(name, sizeof name, "bn_infer_%d_%d", s, affine);
            run(name, 6, (arg_t[]){AB(x, nx), affine ? AB(gamma, C) : AN, affine ? AB(beta, C) : AN,
                                   AB(mm, C), AB(mv, C), AB(yi, nx)});
            expect_close("bn infer", yi, ryi, nx, TOL_SUM);

            float *dy = rnd(nx, -1, 1), *dx = rnd(nx, -1, 1), *dg = rnd(C, -1, 1), *db = rnd(C, -1, 1);
            float *rdx = dup(dx, nx), *rdg = dup(dg, C), *rdb = dup(db, C);
            memcpy(sm, rsm, C * sizeof *sm);
            memcpy(si, rsi, C * sizeof *si);
            nnk_batchnorm_bwd(rows, C, x, dy, g, rsm, rsi, rdx, affine ? rdg : NULL, affine ? rdb : NULL);
            snprintf(name, sizeof name, "bn_bwd_%d_%d", s, affine);
            run(name, 8, (arg_t[]){AB(x, nx), AB(dy, nx), affine ? AB(gamma, C) : AN, AB(sm, C), AB(si, C),
                                   AB(dx, nx), affine ? AB(dg, C) : AN, affine ? AB(db, C) : AN});
            expect_close("bn dx", dx, rdx, nx, TOL_SUM);
            if (affine) {
                expect_close("bn dgamma", dg, rdg, C, TOL_SUM);
                expect_close("bn dbeta", db, rdb, C, TOL_SUM);
            }
            free(x); free(gamma); free(beta); free(y); free(sm); free(si); free(mm); free(mv);
            free(ry); free(rsm); free(rsi); free(rmm); free(rmv); free(yi); free(ryi);
            free(dy); free(dx); free(dg); free(db); free(rdx); free(rdg); free(rdb);
        }
    cl_end();
}

/* ------------------------------------------------------------ losses */

enum { L_SPARSE_SOFTMAX_XENT, L_SOFTMAX_XENT, L_SIGMOID_BCE, L_CCE, L_SPARSE_CCE, L_BCE, L_MSE, L_MAE, L_COUNT };
static const char *loss_names[L_COUNT] = {"sparse_softmax_xent", "softmax_xent", "sigmoid_bce", "cce",
                                          "sparse_cce", "bce", "mse", "mae"};
static const char *loss_locals[L_COUNT] = {
    "NNCL_LOSS_SPARSE_SOFTMAX_XENT_LOCAL", "NNCL_LOSS_SOFTMAX_XENT_LOCAL", "NNCL_LOSS_SIGMOID_BCE_LOCAL",
    "NNCL_LOSS_CCE_LOCAL", "NNCL_LOSS_SPARSE_CCE_LOCAL", "NNCL_LOSS_BCE_LOCAL", "NNCL_LOSS_MSE_LOCAL",
    "NNCL_LOSS_MAE_LOCAL"};

static int loss_fused(int l) { return l <= L_SIGMOID_BCE; }
static int loss_sparse(int l) { return l == L_SPARSE_SOFTMAX_XENT || l == L_SPARSE_CCE; }

static double loss_c(int l, int n, int C, const float *a, const float *b, float *o1, float *o2) {
    switch (l) {
    case L_SPARSE_SOFTMAX_XENT: return nnk_loss_sparse_softmax_xent(n, C, a, b, o1, o2);
    case L_SOFTMAX_XENT: return nnk_loss_softmax_xent(n, C, a, b, o1, o2);
    case L_SIGMOID_BCE: return nnk_loss_sigmoid_bce(n, C, a, b, o1, o2);
    case L_CCE: return nnk_loss_cce(n, C, a, b, o1);
    case L_SPARSE_CCE: return nnk_loss_sparse_cce(n, C, a, b, o1);
    case L_BCE: return nnk_loss_bce(n, C, a, b, o1);
    case L_MSE: return nnk_loss_mse(n, C, a, b, o1);
    default: return nnk_loss_mae(n, C, a, b, o1);
    }
}

Test(cl_losses, all_losses_sums_and_gradients) {
    cl_begin(64);
    const int shapes[][2] = {{7, 10}, {130, 3}, {1, 1}};
    for (int l = 0; l < L_COUNT; l++)
        for (int s = 0; s < 3; s++)
            for (int grads = 0; grads < 2; grads++) {
                char name[64];
                snprintf(name, sizeof name, "loss_%s_%d_%d", loss_names[l], s, grads);
                const char *outs = loss_fused(l) ? (grads ? "o1, o2" : "0, 0") : (grads ? "o1" : "0");
                wrap(name, loss_locals[l], G_ "a, " G_ "b, " GW_ "o1, " GW_ "o2, " GW_ "sum",
                     "nncl_loss_%s(%d, %d, a, b, %s, sum, scratch)", loss_names[l], shapes[s][0], shapes[s][1], outs);
            }
    cl_build();
    for (int l = 0; l < L_COUNT; l++)
        for (int s = 0; s < 3; s++)
            for (int grads = 0; grads < 2; grads++) {
                int n = shapes[s][0], C = shapes[s][1];
                size_t nn = (size_t)n * C, nb = loss_sparse(l) ? (size_t)n : nn;
                float *a, *b;
                if (l <= L_SIGMOID_BCE || l >= L_MSE) a = rnd(nn, -6, 6);
                else a = rnd(nn, 0.0f, 1.0f);
                if (l == L_CCE || l == L_BCE) a[0] = 0, a[nn - 1] = 1;   /* clipped both ways */
                if (loss_sparse(l)) {
                    b = malloc(n * sizeof *b);
                    for (int i = 0; i < n; i++) b[i] = (float)(int)uniform(0, (float)C - 0.01f);
                } else if (l == L_SOFTMAX_XENT || l == L_CCE) {
                    b = calloc(nn, sizeof *b);
                    for (int i = 0; i < n; i++) b[(size_t)i * C + (int)uniform(0, (float)C - 0.01f)] = 1;
                } else if (l == L_MSE || l == L_MAE) {
                    b = rnd(nn, -6, 6);
                } else {
                    b = rnd(nn, 0, 1);
                }
                float *o1 = rnd(nn, -1, 1), *o2 = rnd(nn, -1, 1), sum = -1;
                float *r1 = dup(o1, nn), *r2 = dup(o2, nn);
                double ref = loss_c(l, n, C, a, b, grads ? r1 : NULL, grads ? r2 : NULL);
                char name[64];
                snprintf(name, sizeof name, "loss_%s_%d_%d", loss_names[l], s, grads);
                run(name, 5, (arg_t[]){AB(a, nn), AB(b, nb), AB(o1, nn), AB(o2, nn), AB(&sum, 1)});
                cr_expect(fabs(sum - ref) <= TOL_SUM * fabs(ref) + 1e-6, "%s: sum %.9g, C %.9g", name, sum, ref);
                expect_close(name, o1, r1, nn, TOL_SUM);
                expect_close(name, o2, r2, nn, TOL_SUM);
                free(a); free(b); free(o1); free(o2); free(r1); free(r2);
            }
    cl_end();
}

/* ------------------------------------------------------------ regularizers and optimizers */

/* Kernels the OpenCL emitters compose from two library calls in one __kernel (the zero
 * before l1l2_grad's accumulation; add as copy then add_inplace): correct only if both
 * calls give each element to the same work-item. Long enough for many CPU chunks. */
Test(cl_compose, zero_then_accumulate_and_add) {
    cl_begin(64);
    const long len = 40009;
    wrap("zero_l1l2_grad", NULL, G_ "w, " GW_ "g", "nncl_fill_zero(%ld, g); nncl_l1l2_grad(%ld, 0.01f, 0.002f, w, g)",
         len, len);
    wrap("copy_add", NULL, G_ "a, " G_ "b, " GW_ "y", "nncl_copy(%ld, a, y); nncl_add_inplace(%ld, y, b)", len, len);
    cl_build();
    float *w = rnd(len, -1, 1), *g = rnd(len, -1, 1), *rg = calloc(len, sizeof *rg);
    nnk_l1l2_grad(len, 0.01f, 0.002f, w, rg);
    run("zero_l1l2_grad", 2, (arg_t[]){AB(w, len), AB(g, len)});
    expect_close("zero_l1l2_grad", g, rg, len, TOL_EW);
    float *a = rnd(len, -1, 1), *b = rnd(len, -1, 1), *y = rnd(len, -1, 1), *ry = dup(a, len);
    nnk_add_inplace(len, ry, b);
    run("copy_add", 3, (arg_t[]){AB(a, len), AB(b, len), AB(y, len)});
    expect_close("copy_add", y, ry, len, 0);
    free(w); free(g); free(rg); free(a); free(b); free(y); free(ry);
    cl_end();
}

Test(cl_update, l1l2_sgd_adam_rmsprop) {
    cl_begin(64);
    const long len = 1003;
    wrap("l1l2_loss", "NNCL_L1L2_LOSS_LOCAL", G_ "w, " GW_ "sum", "nncl_l1l2_loss(%ld, 0.01f, 0.002f, w, sum, scratch)", len);
    wrap("l1l2_grad", NULL, G_ "w, " GW_ "g", "nncl_l1l2_grad(%ld, 0.01f, 0.002f, w, g)", len);
    wrap("sgd_plain", NULL, GW_ "w, " G_ "g, " GW_ "m", "nncl_sgd_update(%ld, 0.1f, 0.0f, 0, w, g, 0)", len);
    wrap("sgd_mom", NULL, GW_ "w, " G_ "g, " GW_ "m", "nncl_sgd_update(%ld, 0.1f, 0.9f, 0, w, g, m)", len);
    wrap("sgd_nesterov", NULL, GW_ "w, " G_ "g, " GW_ "m", "nncl_sgd_update(%ld, 0.1f, 0.9f, 1, w, g, m)", len);
    wrap("adam", NULL, GW_ "w, " G_ "g, " GW_ "m, " GW_ "v",
         "nncl_adam_update(%ld, 0.001f, 0.9f, 0.999f, 1e-7f, 3, w, g, m, v)", len);
    wrap("rmsprop_plain", NULL, GW_ "w, " G_ "g, " GW_ "v, " GW_ "mom, " GW_ "mg",
         "nncl_rmsprop_update(%ld, 0.001f, 0.9f, 0.0f, 1e-7f, 0, w, g, v, 0, 0)", len);
    wrap("rmsprop_centered", NULL, GW_ "w, " G_ "g, " GW_ "v, " GW_ "mom, " GW_ "mg",
         "nncl_rmsprop_update(%ld, 0.001f, 0.9f, 0.5f, 1e-7f, 1, w, g, v, mom, mg)", len);
    cl_build();
    float *w = rnd(len, -1, 1), *g = rnd(len, -1, 1), sum = -1;
    double ref = nnk_l1l2_loss(len, 0.01f, 0.002f, w);
    run("l1l2_loss", 2, (arg_t[]){AB(w, len), AB(&sum, 1)});
    cr_expect(fabs(sum - ref) <= TOL_SUM * fabs(ref), "l1l2_loss %.9g, C %.9g", sum, ref);
    float *rg = dup(g, len);
    nnk_l1l2_grad(len, 0.01f, 0.002f, w, rg);
    run("l1l2_grad", 2, (arg_t[]){AB(w, len), AB(g, len)});
    expect_close("l1l2_grad", g, rg, len, TOL_EW);

    const char *sgd[3] = {"sgd_plain", "sgd_mom", "sgd_nesterov"};
    for (int s = 0; s < 3; s++) {
        float *m = rnd(len, -1, 1), *rw = dup(w, len), *rm = dup(m, len);
        nnk_sgd_update(len, 0.1f, s ? 0.9f : 0.0f, s == 2, rw, g, rm);
        run(sgd[s], 3, (arg_t[]){AB(w, len), AB(g, len), AB(m, len)});
        expect_close(sgd[s], w, rw, len, TOL_EW);
        expect_close(sgd[s], m, rm, len, TOL_EW);
        free(m); free(rw); free(rm);
    }
    {
        float *m = rnd(len, -0.1f, 0.1f), *v = rnd(len, 0, 0.01f);
        float *rw = dup(w, len), *rm = dup(m, len), *rv = dup(v, len);
        nnk_adam_update(len, 0.001f, 0.9f, 0.999f, 1e-7f, 3, rw, g, rm, rv);
        run("adam", 4, (arg_t[]){AB(w, len), AB(g, len), AB(m, len), AB(v, len)});
        expect_close("adam w", w, rw, len, TOL_SUM);
        expect_close("adam m", m, rm, len, TOL_SUM);
        expect_close("adam v", v, rv, len, TOL_SUM);
        free(m); free(v); free(rw); free(rm); free(rv);
    }
    for (int c = 0; c < 2; c++) {
        float *v = rnd(len, 0.5f, 1), *mom = rnd(len, -0.1f, 0.1f), *mg = rnd(len, -0.1f, 0.1f);
        float *rw = dup(w, len), *rv = dup(v, len), *rmom = dup(mom, len), *rmg = dup(mg, len);
        nnk_rmsprop_update(len, 0.001f, 0.9f, c ? 0.5f : 0.0f, 1e-7f, c, rw, g, rv, c ? rmom : NULL, c ? rmg : NULL);
        const char *name = c ? "rmsprop_centered" : "rmsprop_plain";
        run(name, 5, (arg_t[]){AB(w, len), AB(g, len), AB(v, len), c ? AB(mom, len) : AN, c ? AB(mg, len) : AN});
        expect_close(name, w, rw, len, TOL_SUM);
        expect_close(name, v, rv, len, TOL_SUM);
        if (c) {
            expect_close(name, mom, rmom, len, TOL_SUM);
            expect_close(name, mg, rmg, len, TOL_SUM);
        }
        free(v); free(mom); free(mg); free(rw); free(rv); free(rmom); free(rmg);
    }
    free(w); free(g); free(rg);
    cl_end();
}

/* fuse_updates.c: the grouped kernels over three weights (parts of one buffer, as the
 * generated kernel's tables point into the arena) against the C per-weight kernels. */
Test(cl_update, update_all_sgd_adam_rmsprop) {
    cl_begin(64);
    const long size[3] = {7, 1003, 70};
    const long total = 7 + 1003 + 70;
#define PARTS_(b) "{" b ", " b " + 7, " b " + 1010}"
    const char *tables = "  __global nn_real *const w[3] = " PARTS_("W") ";\n"
                         "  __global const nn_real *const g[3] = " PARTS_("G") ";\n"
                         "  __global nn_real *const s0[3] = " PARTS_("S0") ";\n"
                         "  __global nn_real *const s1[3] = " PARTS_("S1") ";\n"
                         "  __global nn_real *const s2[3] = " PARTS_("S2") ";\n"
                         "  const long size[3] = {7, 1003, 70}";
#undef PARTS_
    const char *params = GW_ "W, " G_ "G, " GW_ "S0, " GW_ "S1, " GW_ "S2";
    wrap("sgd_all", NULL, params, "%s;\n  nncl_sgd_update_all(3, w, g, s0, size, 0.1f, 0.9f, 1)", tables);
    wrap("adam_all", NULL, params, "%s;\n  nncl_adam_update_all(3, w, g, s0, s1, size, 0.001f, 0.9f, 0.999f, 1e-7f, 3)",
         tables);
    wrap("rmsprop_all", NULL, params,
         "%s;\n  nncl_rmsprop_update_all(3, w, g, s0, s1, s2, size, 0.001f, 0.9f, 0.5f, 1e-7f, 1)", tables);
    cl_build();
    const char *names[3] = {"sgd_all", "adam_all", "rmsprop_all"};
    for (int o = 0; o < 3; o++) {
        float *w = rnd(total, -1, 1), *g = rnd(total, -1, 1), *s[3];
        for (int j = 0; j < 3; j++) s[j] = rnd(total, 0.01f, 0.5f);
        float *rw = dup(w, total), *rs[3] = {dup(s[0], total), dup(s[1], total), dup(s[2], total)};
        for (long k = 0, at = 0; k < 3; at += size[k++]) {
            if (o == 0) nnk_sgd_update(size[k], 0.1f, 0.9f, 1, rw + at, g + at, rs[0] + at);
            if (o == 1) nnk_adam_update(size[k], 0.001f, 0.9f, 0.999f, 1e-7f, 3, rw + at, g + at, rs[0] + at, rs[1] + at);
            if (o == 2)
                nnk_rmsprop_update(size[k], 0.001f, 0.9f, 0.5f, 1e-7f, 1, rw + at, g + at, rs[0] + at, rs[1] + at,
                                   rs[2] + at);
        }
        run(names[o], 5, (arg_t[]){AB(w, total), AB(g, total), AB(s[0], total), AB(s[1], total), AB(s[2], total)});
        expect_close(names[o], w, rw, total, TOL_SUM);
        for (int j = 0; j < 3; j++) expect_close(names[o], s[j], rs[j], total, TOL_SUM);
        free(w), free(g), free(rw);
        for (int j = 0; j < 3; j++) free(s[j]), free(rs[j]);
    }
    cl_end();
}

/* fuse_elementwise.c: nncl_ewise_chain, every op alone and a chain of four, against
 * the C chain (which equals the per-op C kernels, test_kernels_forward). */
Test(cl_elementwise, ewise_chain_every_op_and_a_chain) {
    cl_begin(64);
    const long len = 3000;
    const char *params = G_ "X, " G_ "DY, " G_ "X2, " G_ "X3, " GW_ "Y";
    for (int op = NN_EW_RELU; op <= NN_EW_ADD; op++) {
        char name[32];
        snprintf(name, sizeof name, "ew_%d", op);
        wrap(name, NULL, params,
             "const int op[1] = {%d};\n  const nn_real alpha[1] = {0.7f};\n"
             "  const __global nn_real *const x[1] = {X}, *const dy[1] = {%s};\n"
             "  nncl_ewise_chain(%ld, 1, op, alpha, x, dy, Y)",
             op, op >= NN_EW_RELU_BWD ? "DY" : "0", len);
    }
    wrap("ew_chain4", NULL, params,
         "const int op[4] = {NN_EW_ELU, NN_EW_RELU_BWD, NN_EW_DROPOUT_BWD, NN_EW_ADD};\n"
         "  const nn_real alpha[4] = {0.7f, 0, 0, 0};\n"
         "  const __global nn_real *const x[4] = {X, X3, X2, 0}, *const dy[4] = {0, 0, 0, DY};\n"
         "  nncl_ewise_chain(%ld, 4, op, alpha, x, dy, Y)", len);
    cl_build();
    float *x = rnd(len, -4, 4), *dy = rnd(len, -1, 1), *x2 = rnd(len, -1, 1), *x3 = rnd(len, -1, 1);
    for (long i = 0; i < len; i++) x2[i] = x2[i] > 0 ? 1.25f : 0;
    float *want = rnd(len, -1, 1);
    for (int op = NN_EW_RELU; op <= NN_EW_ADD + 1; op++) {
        char name[32];
        float *y = rnd(len, -1, 1);
        if (op <= NN_EW_ADD) {
            float a = 0.7f;
            const float *xs[1] = {x}, *ds[1] = {op >= NN_EW_RELU_BWD ? dy : NULL};
            nnk_ewise_chain(len, 1, &op, &a, xs, ds, want);
            snprintf(name, sizeof name, "ew_%d", op);
        } else {
            const int ops[4] = {NN_EW_ELU, NN_EW_RELU_BWD, NN_EW_DROPOUT_BWD, NN_EW_ADD};
            const float alpha[4] = {0.7f, 0, 0, 0};
            const float *xs[4] = {x, x3, x2, NULL}, *ds[4] = {NULL, NULL, NULL, dy};
            nnk_ewise_chain(len, 4, ops, alpha, xs, ds, want);
            snprintf(name, sizeof name, "ew_chain4");
        }
        run(name, 5, (arg_t[]){AB(x, len), AB(dy, len), AB(x2, len), AB(x3, len), AB(y, len)});
        expect_close(name, y, want, len, TOL_EW);
        free(y);
    }
    free(x), free(dy), free(x2), free(x3), free(want);
    cl_end();
}

/* ------------------------------------------------------------ rough timings (opt-in) */

/* Best of `reps` launches with the generated host's group rule (ceil(work/NNCL_WG)
 * work-groups, at most 4096, work = the largest operand's elements); buffers stay on
 * the device.  Returns ms. */
static double bench_cl(const char *name, int nargs, const arg_t *a, long work, int reps) {
    cl_int err;
    cl_kernel k = clCreateKernel(prog, name, &err);
    cr_assert(err == CL_SUCCESS, "clCreateKernel(%s): %d", name, (int)err);
    cl_mem mem[MAX_ARGS] = {0};
    for (int j = 0; j < nargs; j++) {
        if (a[j].kind == 'i') { cl_int v = (cl_int)a[j].i; CL_OK(clSetKernelArg(k, j, sizeof v, &v)); continue; }
        mem[j] = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, a[j].count * sizeof(float), a[j].host, &err);
        CL_OK(err);
        CL_OK(clSetKernelArg(k, j, sizeof(cl_mem), &mem[j]));
    }
    long groups = (work + wg - 1) / wg;
    if (groups > 4096) groups = 4096;
    size_t local = (size_t)wg, global = (size_t)groups * wg;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        CL_OK(clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &local, 0, NULL, NULL));
        CL_OK(clFinish(queue));
        double t = now_ms() - t0;
        if (t < best) best = t;
    }
    for (int j = 0; j < nargs; j++) if (mem[j]) clReleaseMemObject(mem[j]);
    clReleaseKernel(k);
    return best;
}

static double c_ms_best;
#define BENCH_C(reps, stmt)                                            \
    do {                                                               \
        c_ms_best = 1e30;                                              \
        for (int r_ = 0; r_ < (reps); r_++) {                          \
            double t0_ = now_ms();                                     \
            stmt;                                                      \
            double t_ = now_ms() - t0_;                                \
            if (t_ < c_ms_best) c_ms_best = t_;                        \
        }                                                              \
    } while (0)

static const int bench_gemms[][5] = {   /* ta, tb, M, N, K */
    {0, 0, 512, 512, 512}, {0, 0, 32, 64, 1600}, {1, 0, 1600, 64, 32}, {0, 1, 32, 1600, 64},
};
static const conv_t bench_convs[] = {
    {64, 14, 14, 32, 3, 3, 64, 1, 1, 1, 1, 14, 14},   /* the old bench's conv ('same') */
    {32, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 26, 26},    /* fashion_cnn conv 1 */
    {32, 13, 13, 32, 3, 3, 64, 1, 1, 0, 0, 11, 11},   /* fashion_cnn conv 2 */
};

Test(cl_bench, gemm_and_conv, .disabled = 0, .timeout = 600) {
    const char *b = getenv("NNC_CL_BENCH");
    if (!b || strcmp(b, "1") != 0) cr_skip_test("set NNC_CL_BENCH=1 for timings");
    int reps = 5;
    cl_begin(64);
    int ng = (int)(sizeof bench_gemms / sizeof bench_gemms[0]), nc = (int)(sizeof bench_convs / sizeof bench_convs[0]);
    for (int g = 0; g < ng; g++) {
        char name[32];
        snprintf(name, sizeof name, "bg%d", g);
        wrap(name, "NNCL_GEMM_LOCAL", G_ "A, " G_ "B, " GW_ "C", "nncl_gemm(%d, %d, %d, %d, %d, A, B, C, 0, scratch)",
             bench_gemms[g][0], bench_gemms[g][1], bench_gemms[g][2], bench_gemms[g][3], bench_gemms[g][4]);
    }
    for (int i = 0; i < nc; i++) conv_wrappers(100 + i, &bench_convs[i]);
    /* fashion_cnn's first pooling and the elementwise/reduction kernels around it */
    wrap("bpf", NULL, "int n, " G_ "x, " GW_ "y", "nncl_maxpool2d_fwd(n, 26, 26, 32, 2, 2, 2, 2, 0, 0, 13, 13, x, y)");
    wrap("bpb", NULL, "int n, " G_ "x, " G_ "y, " G_ "dy, " GW_ "dx",
         "nncl_maxpool2d_bwd(n, 26, 26, 32, 2, 2, 2, 2, 0, 0, 13, 13, x, y, dy, dx)");
    wrap("brelu", NULL, G_ "y, " G_ "dy, " GW_ "dx", "nncl_relu_bwd(32L * 26 * 26 * 32, y, dy, dx)");
    wrap("bbg", "NNCL_BIAS_GRAD_LOCAL", G_ "dy, " GW_ "db", "nncl_bias_grad(32 * 26 * 26, 32, dy, db, scratch)");
    wrap("bnop", "NNCL_GEMM_LOCAL", G_ "A, " G_ "B, " GW_ "C", "nncl_gemm(0, 0, 1, 1, 1, A, B, C, 0, scratch)");
    double t0 = now_ms();
    cl_build();
    printf("build: %.0f ms\n", now_ms() - t0);
    {   /* the cost of launching the host's 4096 groups when only one item has work */
        float a = 1, bb = 2, cc = 0;
        double t1 = bench_cl("bnop", 3, (arg_t[]){AB(&a, 1), AB(&bb, 1), AB(&cc, 1)}, 1, reps);
        double t4096 = bench_cl("bnop", 3, (arg_t[]){AB(&a, 1), AB(&bb, 1), AB(&cc, 1)}, 4096L * 64, reps);
        printf("1x1x1 gemm: 1 group %.3f ms, 4096 groups %.3f ms\n", t1, t4096);
    }
    for (int g = 0; g < ng; g++) {
        int ta = bench_gemms[g][0], tb = bench_gemms[g][1], M = bench_gemms[g][2], N = bench_gemms[g][3], K = bench_gemms[g][4];
        float *A = rnd((size_t)M * K, -1, 1), *B = rnd((size_t)K * N, -1, 1), *C = rnd((size_t)M * N, -1, 1);
        long work = (long)M * K;
        if ((long)K * N > work) work = (long)K * N;
        if ((long)M * N > work) work = (long)M * N;
        char name[32];
        snprintf(name, sizeof name, "bg%d", g);
        double cl = bench_cl(name, 3, (arg_t[]){AB(A, (size_t)M * K), AB(B, (size_t)K * N), AB(C, (size_t)M * N)}, work, reps);
        BENCH_C(reps, nnk_gemm(ta, tb, M, N, K, A, B, C, 0));
        double fl = 2.0 * M * N * K;
        printf("gemm ta=%d tb=%d %dx%dx%d: OpenCL %.3f ms %.2f GFLOP/s | C %.3f ms %.2f GFLOP/s\n", ta, tb, M, N, K,
               cl, fl / cl / 1e6, c_ms_best, fl / c_ms_best / 1e6);
        free(A); free(B); free(C);
    }
    for (int i = 0; i < nc; i++) {
        conv_t c = bench_convs[i];
        size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F, ny = (size_t)c.n * c.OH * c.OW * c.F;
        float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *y = rnd(ny, -1, 1);
        size_t nwork = nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW);
        float *work = malloc((nwork + 1) * sizeof *work);
        long big = (long)(nx > ny ? nx : ny);
        if ((long)nw > big) big = (long)nw;
        double fl = 2.0 * ny * c.KH * c.KW * c.C;
        char name[64];
        const char *fn[3] = {"fwd", "bwd_data", "bwd_filter"};
        for (int f = 0; f < 3; f++) {
            snprintf(name, sizeof name, "conv_%s_%d", fn[f], 100 + i);
            double cl;
            if (f == 0) {
                cl = bench_cl(name, 4, (arg_t[]){AI(c.n), AB(x, nx), AB(w, nw), AB(y, ny)}, big, reps);
                BENCH_C(reps, nnk_conv2d_fwd(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, w, y, work));
            } else if (f == 1) {
                cl = bench_cl(name, 4, (arg_t[]){AI(c.n), AB(y, ny), AB(w, nw), AB(x, nx)}, big, reps);
                BENCH_C(reps, nnk_conv2d_bwd_data(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, y, w, x, work));
            } else {
                cl = bench_cl(name, 4, (arg_t[]){AI(c.n), AB(x, nx), AB(y, ny), AB(w, nw)}, big, reps);
                BENCH_C(reps, nnk_conv2d_bwd_filter(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, y, w, work));
            }
            printf("conv %s %dx%dx%dx%d %dx%d->%d: OpenCL %.3f ms %.2f GFLOP/s | C %.3f ms %.2f GFLOP/s\n", fn[f],
                   c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, cl, fl / cl / 1e6, c_ms_best, fl / c_ms_best / 1e6);
        }
        free(x); free(w); free(y); free(work);
    }
    {
        size_t nx = 32 * 26 * 26 * 32, ny = 32 * 13 * 13 * 32;
        float *x = rnd(nx, -1, 1), *y = rnd(ny, -1, 1), *dy = rnd(ny, -1, 1), *dx = rnd(nx, -1, 1), *db = rnd(32, -1, 1);
        double a = bench_cl("bpf", 3, (arg_t[]){AI(32), AB(x, nx), AB(y, ny)}, (long)nx, reps);
        double bb = bench_cl("bpb", 5, (arg_t[]){AI(32), AB(x, nx), AB(y, ny), AB(dy, ny), AB(dx, nx)}, (long)nx, reps);
        double r = bench_cl("brelu", 3, (arg_t[]){AB(x, nx), AB(dx, nx), AB(dx, nx)}, (long)nx, reps);
        double g = bench_cl("bbg", 2, (arg_t[]){AB(x, nx), AB(db, 32)}, (long)nx, reps);
        printf("32x26x26x32: maxpool fwd %.3f ms, maxpool bwd %.3f ms, relu bwd %.3f ms, bias_grad %.3f ms\n", a, bb, r, g);
        free(x); free(y); free(dy); free(dx); free(db);
    }
    cl_end();
}

/* Gradient fusion (fuse_grad.c): a max-pool backward, a convolution's data gradient and
 * a GEMM data gradient carried through relu, sigmoid or tanh equal the separate kernels
 * (the op, then the activation's _bwd) bit for bit on the C side; the OpenCL twins
 * equal them exactly for the max-pool under relu, else within the usual tolerances. */
static void separate_act_grad(float *d, const float *y, size_t len, int act) {
    if (act == NN_EPI_RELU) nnk_relu_bwd((int64_t)len, y, d, d);
    if (act == NN_EPI_SIGMOID) nnk_sigmoid_bwd((int64_t)len, y, d, d);
    if (act == NN_EPI_TANH) nnk_tanh_bwd((int64_t)len, y, d, d);
}

Test(cl_grad_fusion, fused_equals_separate) {
    cl_begin(64);
    char name[64];
    for (int act = 1; act < 4; act++) {
        for (int i = 0; i < N_POOLS; i++) {
            const pool_t *p = &pools[i];
            snprintf(name, sizeof name, "pool_act_%d_%d", act, i);
            wrap(name, NULL, "int n, " G_ "x, " G_ "dy, " GW_ "dx",
                 "nncl_maxpool2d_bwd_act(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, x, dy, %d, dx)", p->H, p->W,
                 p->C, p->PH, p->PW, p->SH, p->SW, p->PT, p->PL, p->OH, p->OW, act);
        }
        for (int i = 0; i < N_CONVS; i++) {
            const conv_t *c = &convs[i];
            snprintf(name, sizeof name, "conv_dx_act_%d_%d", act, i);
            wrap(name, "NNCL_CONV2D_BWD_DATA_ACT_LOCAL", "int n, " G_ "dy, " G_ "w, " G_ "y, " GW_ "dx",
                 "nncl_conv2d_bwd_data_act(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, dy, w, y, %d, dx, scratch)",
                 c->H, c->W, c->C, c->KH, c->KW, c->F, c->SH, c->SW, c->PT, c->PL, c->OH, c->OW, act);
        }
        for (int s = 0; s < N_GEMM_SIZES; s++) {
            snprintf(name, sizeof name, "gemm_act_%d_%d", act, s);
            wrap(name, "NNCL_GEMM_ACT_GRAD_LOCAL", G_ "A, " G_ "B, " G_ "y, " GW_ "C",
                 "nncl_gemm_act_grad(0, 1, %d, %d, %d, A, B, y, %d, C, scratch)", gemm_sizes[s][0], gemm_sizes[s][1],
                 gemm_sizes[s][2], act);
        }
    }
    cl_build();
    for (int act = 1; act < 4; act++) {
        for (int i = 0; i < N_POOLS; i++) {
            pool_t p = pools[i];
            size_t nx = (size_t)p.n * p.H * p.W * p.C, ny = (size_t)p.n * p.OH * p.OW * p.C;
            float *x = rnd(nx, -1, 1), *dy = rnd(ny, -1, 1), *y = rnd(ny, -1, 1);
            for (size_t j = 0; j < nx; j++) x[j] = floorf(x[j] * 4) / 4;   /* ties: first max wins */
            if (act != NN_EPI_TANH)   /* an activation's output: relu's and sigmoid's are >= 0 */
                for (size_t j = 0; j < nx; j++) x[j] = act == NN_EPI_RELU ? fmaxf(x[j], 0) : (x[j] + 1) / 2;
            float *dx = rnd(nx, -1, 1), *ref = dup(dx, nx), *fused = dup(dx, nx);
            nnk_maxpool2d_fwd(p.n, p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, x, y);
            nnk_maxpool2d_bwd(p.n, p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, x, y, dy, ref);
            separate_act_grad(ref, x, nx, act);
            nnk_maxpool2d_bwd_act(p.n, p.H, p.W, p.C, p.PH, p.PW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, x, dy, act, fused);
            cr_expect_eq(memcmp(fused, ref, nx * sizeof *ref), 0, "nnk_maxpool2d_bwd_act pool %d act %d differs", i, act);
            snprintf(name, sizeof name, "pool_act_%d_%d", act, i);
            run(name, 4, (arg_t[]){AI(p.n), AB(x, nx), AB(dy, ny), AB(dx, nx)});
            expect_close(name, dx, ref, nx, act == NN_EPI_RELU ? 0 : TOL_EW);
            free(x); free(dy); free(y); free(dx); free(ref); free(fused);
        }
        for (int i = 0; i < N_CONVS; i++) {
            conv_t c = convs[i];
            size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F;
            size_t ny = (size_t)c.n * c.OH * c.OW * c.F;
            float *y = rnd(nx, act == NN_EPI_TANH ? -1 : 0, 1), *w = rnd(nw, -1, 1), *dy = rnd(ny, -1, 1);
            float *dx = rnd(nx, -1, 1), *ref = dup(dx, nx), *fused = dup(dx, nx);
            size_t nwork = nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW);
            float *work = malloc((nwork + 1) * sizeof *work);
            nnk_conv2d_bwd_data(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, dy, w, ref, work);
            separate_act_grad(ref, y, nx, act);
            nnk_conv2d_bwd_data_act(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, dy, w, y,
                                    act, fused, work);
            cr_expect_eq(memcmp(fused, ref, nx * sizeof *ref), 0, "nnk_conv2d_bwd_data_act conv %d act %d differs", i, act);
            snprintf(name, sizeof name, "conv_dx_act_%d_%d", act, i);
            run(name, 5, (arg_t[]){AI(c.n), AB(dy, ny), AB(w, nw), AB(y, nx), AB(dx, nx)});
            expect_close(name, dx, ref, nx, TOL_SUM);
            free(y); free(w); free(dy); free(dx); free(ref); free(fused); free(work);
        }
        for (int s = 0; s < N_GEMM_SIZES; s++) {
            int M = gemm_sizes[s][0], N = gemm_sizes[s][1], K = gemm_sizes[s][2];
            float *A = rnd((size_t)M * K, -1, 1), *B = rnd((size_t)N * K, -1, 1);
            float *y = rnd((size_t)M * N, act == NN_EPI_TANH ? -1 : 0, 1);
            float *C = rnd((size_t)M * N, -1, 1), *ref = dup(C, (size_t)M * N), *fused = dup(C, (size_t)M * N);
            nnk_gemm(0, 1, M, N, K, A, B, ref, 0);
            separate_act_grad(ref, y, (size_t)M * N, act);
            nnk_gemm_act_grad(0, 1, M, N, K, A, B, y, act, fused);
            cr_expect_eq(memcmp(fused, ref, (size_t)M * N * sizeof *ref), 0, "nnk_gemm_act_grad %dx%dx%d act %d differs",
                         M, N, K, act);
            snprintf(name, sizeof name, "gemm_act_%d_%d", act, s);
            run(name, 4, (arg_t[]){AB(A, (size_t)M * K), AB(B, (size_t)N * K), AB(y, (size_t)M * N), AB(C, (size_t)M * N)});
            expect_close(name, C, ref, (size_t)M * N, TOL_SUM);
            free(A); free(B); free(y); free(C); free(ref); free(fused);
        }
    }
    cl_end();
}

/* ------------------------------------------------------------ pre-packed weights */

/* The packed layout (compiler/ir/layout.c): a pack kernel writes op(B) in panels into a
 * buffer sized as the plan sizes it (K x N rounded up to 32), then the packed GEMM or
 * convolution reads it; each equals the C library's unpacked kernel with the same
 * epilogue, in the CPU layout and in the GPU one (-DNNCL_CPU=0). */
#define PACKED_ELEMS(K, N) ((size_t)(K) * (((N) + 31) / 32 * 32))

static void packed_cases(const char *opts) {
    layout_opts = opts;
    cl_begin(64);
    char name[64];
    for (int s = 0; s < N_GEMM_SIZES; s++) {
        int M = gemm_sizes[s][0], N = gemm_sizes[s][1], K = gemm_sizes[s][2];
        for (int tb = 0; tb < 2; tb++) {
            snprintf(name, sizeof name, "pack_b_%d_%d", s, tb);
            wrap(name, NULL, G_ "B, " GW_ "bp", "nncl_pack_b(%d, %d, %d, B, bp)", tb, K, N);
        }
        snprintf(name, sizeof name, "gemm_packed_%d", s);
        wrap(name, "NNCL_GEMM_PACKED_LOCAL", G_ "A, " G_ "bp, " G_ "bias, " GW_ "C",
             "nncl_gemm_packed(%d, %d, %d, A, bp, bias, NN_EPI_RELU, C, scratch)", M, N, K);
        snprintf(name, sizeof name, "gemm_packed_grad_%d", s);
        wrap(name, "NNCL_GEMM_PACKED_ACT_GRAD_LOCAL", G_ "A, " G_ "bp, " G_ "y, " GW_ "C",
             "nncl_gemm_packed_act_grad(%d, %d, %d, A, bp, y, NN_EPI_TANH, C, scratch)", M, N, K);
    }
    for (int i = 0; i < N_CONVS; i++) {
        const conv_t *c = &convs[i];
        snprintf(name, sizeof name, "pack_w_%d", i);
        wrap(name, NULL, G_ "w, " GW_ "bp", "nncl_pack_b(0, %d, %d, w, bp)", c->KH * c->KW * c->C, c->F);
        snprintf(name, sizeof name, "pack_flip_%d", i);
        wrap(name, NULL, G_ "w, " GW_ "bp", "nncl_pack_conv_flip(%d, %d, %d, %d, w, bp)", c->KH, c->KW, c->C, c->F);
        snprintf(name, sizeof name, "conv_packed_%d", i);
        wrap(name, "NNCL_CONV2D_FWD_PACKED_LOCAL", "int n, " G_ "x, " G_ "bp, " G_ "bias, " GW_ "y",
             "nncl_conv2d_fwd_packed(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, x, bp, bias, NN_EPI_RELU, y, scratch)",
             c->H, c->W, c->C, c->KH, c->KW, c->F, c->SH, c->SW, c->PT, c->PL, c->OH, c->OW);
        for (int act = 0; act < 2; act++) {
            snprintf(name, sizeof name, "conv_dx_packed_%d_%d", i, act);
            wrap(name, "NNCL_CONV2D_BWD_DATA_PACKED_ACT_LOCAL", "int n, " G_ "dy, " G_ "bp, " G_ "y, " GW_ "dx",
                 "nncl_conv2d_bwd_data_packed_act(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, dy, bp, %s, %s, dx, scratch)",
                 c->H, c->W, c->C, c->KH, c->KW, c->F, c->SH, c->SW, c->PT, c->PL, c->OH, c->OW, act ? "y" : "0",
                 act ? "NN_EPI_RELU" : "NN_EPI_NONE");
        }
    }
    cl_build();
    for (int s = 0; s < N_GEMM_SIZES; s++) {
        int M = gemm_sizes[s][0], N = gemm_sizes[s][1], K = gemm_sizes[s][2];
        size_t np = PACKED_ELEMS(K, N);
        for (int tb = 0; tb < 2; tb++) {
            float *A = rnd((size_t)M * K, -1, 1), *B = rnd((size_t)K * N, -1, 1), *bias = rnd(N, -1, 1);
            float *bp = rnd(np, -1, 1), *y = rnd((size_t)M * N, -1, 1);
            float *C = rnd((size_t)M * N, -1, 1), *ref = dup(C, (size_t)M * N);
            snprintf(name, sizeof name, "pack_b_%d_%d", s, tb);
            run(name, 2, (arg_t[]){AB(B, (size_t)K * N), AB(bp, np)});
            nnk_gemm_bias_act(0, tb, M, N, K, A, B, bias, NN_EPI_RELU, ref);
            snprintf(name, sizeof name, "gemm_packed_%d", s);
            run(name, 4, (arg_t[]){AB(A, (size_t)M * K), AB(bp, np), AB(bias, N), AB(C, (size_t)M * N)});
            expect_close(name, C, ref, (size_t)M * N, TOL_SUM);
            nnk_gemm_act_grad(0, tb, M, N, K, A, B, y, NN_EPI_TANH, ref);
            snprintf(name, sizeof name, "gemm_packed_grad_%d", s);
            run(name, 4, (arg_t[]){AB(A, (size_t)M * K), AB(bp, np), AB(y, (size_t)M * N), AB(C, (size_t)M * N)});
            expect_close(name, C, ref, (size_t)M * N, TOL_SUM);
            free(A); free(B); free(bias); free(bp); free(y); free(C); free(ref);
        }
    }
    for (int i = 0; i < N_CONVS; i++) {
        conv_t c = convs[i];
        size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F;
        size_t ny = (size_t)c.n * c.OH * c.OW * c.F;
        size_t nwork = nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW);
        float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *bias = rnd(c.F, -1, 1), *dy = rnd(ny, -1, 1);
        float *y = rnd(ny, -1, 1), *ry = dup(y, ny), *work = malloc((nwork + 1) * sizeof *work);
        float *bp = rnd(PACKED_ELEMS(c.KH * c.KW * c.C, c.F), -1, 1);
        float *bf = rnd(PACKED_ELEMS(c.KH * c.KW * c.F, c.C), -1, 1);
        snprintf(name, sizeof name, "pack_w_%d", i);
        run(name, 2, (arg_t[]){AB(w, nw), AB(bp, PACKED_ELEMS(c.KH * c.KW * c.C, c.F))});
        nnk_conv2d_fwd_bias_act(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, w, bias,
                                NN_EPI_RELU, ry, work);
        snprintf(name, sizeof name, "conv_packed_%d", i);
        run(name, 5, (arg_t[]){AI(c.n), AB(x, nx), AB(bp, PACKED_ELEMS(c.KH * c.KW * c.C, c.F)), AB(bias, c.F), AB(y, ny)});
        expect_close(name, y, ry, ny, TOL_SUM);
        snprintf(name, sizeof name, "pack_flip_%d", i);
        run(name, 2, (arg_t[]){AB(w, nw), AB(bf, PACKED_ELEMS(c.KH * c.KW * c.F, c.C))});
        float *xa = rnd(nx, 0, 1);
        for (size_t j = 0; j < nx; j += 3) xa[j] = 0;   /* relu outputs: some zeros */
        for (int act = 0; act < 2; act++) {
            float *dx = rnd(nx, -1, 1), *rdx = dup(dx, nx);
            nnk_conv2d_bwd_data_act(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, dy, w,
                                    act ? xa : NULL, act ? NN_EPI_RELU : NN_EPI_NONE, rdx, work);
            snprintf(name, sizeof name, "conv_dx_packed_%d_%d", i, act);
            run(name, 5, (arg_t[]){AI(c.n), AB(dy, ny), AB(bf, PACKED_ELEMS(c.KH * c.KW * c.F, c.C)), AB(xa, nx), AB(dx, nx)});
            expect_close(name, dx, rdx, nx, TOL_SUM);
            free(dx); free(rdx);
        }
        free(xa);
        free(x); free(w); free(bias); free(dy); free(y); free(ry); free(work); free(bp); free(bf);
    }
    cl_end();
    layout_opts = "";
}

Test(cl_packed, gemm_and_conv_cpu_layout) { packed_cases(""); }
Test(cl_packed, gemm_and_conv_gpu_layout) { packed_cases("-DNNCL_CPU=0"); }

/* The packed data gradient (the CPU layout's scatter from register tiles, the GPU
 * layout's flipped convolution or panel-reading gather) on the shapes that exercise its
 * paths: fashion_cnn's second layer at batch 32 and at a batch of 7; channel counts that
 * leave a partial panel (5, 20) or fill two (32); F of 1 and 3; rows of 7, 10 and 14
 * pixels (tiles of 6 + 1, 5 + 5, 5 + 5 + 4); strides 2 and 3 ('same' and 'valid', a
 * stride past the window leaving dx cells uncovered); padding on all sides; 140-wide rows
 * cut into blocks of one row.  Each without an activation and through relu or tanh (in
 * turn), against the C library's NHWC kernel, with 1, 23 and 200 work-groups (the bits
 * must not change), in groups of 16 (what a CPU device runs; cl_packed has 64). */
static const conv_t dx_convs[] = {
    {32, 12, 12, 32, 3, 3, 64, 1, 1, 0, 0, 10, 10},  /* fashion_cnn's conv2d_1 */
    {7, 12, 12, 32, 3, 3, 64, 1, 1, 0, 0, 10, 10},   /* a batch no block count divides */
    {3, 9, 9, 20, 3, 3, 3, 1, 1, 0, 0, 7, 7},        /* 16 + 4 channels; rows of 7 */
    {2, 16, 16, 5, 3, 3, 1, 2, 2, 0, 0, 7, 7},       /* 5 channels, F = 1, stride 2 'valid' */
    {4, 14, 14, 16, 3, 3, 24, 2, 2, 0, 0, 7, 7},     /* 'same' stride 2, padding only after */
    {2, 10, 9, 20, 2, 2, 5, 3, 3, 0, 0, 3, 3},       /* stride 3 > window: cells uncovered */
    {3, 11, 13, 18, 5, 5, 10, 1, 1, 2, 2, 11, 13},   /* 'same' 5x5 */
    {2, 5, 140, 16, 3, 3, 8, 1, 1, 1, 1, 5, 140},    /* 140 wide: blocks of one row */
    {1, 9, 11, 33, 3, 2, 7, 2, 1, 1, 0, 5, 10},      /* n = 1, mixed strides, 33 channels */
};
#define N_DX_CONVS (int)(sizeof dx_convs / sizeof dx_convs[0])

static void dx_packed_cases(const char *opts, int work_group) {
    static const int acts[] = {NN_EPI_NONE, NN_EPI_RELU, NN_EPI_TANH};
    layout_opts = opts;
    cl_begin(work_group);
    char name[64];
    for (int i = 0; i < N_DX_CONVS; i++) {
        const conv_t *c = &dx_convs[i];
        snprintf(name, sizeof name, "flip_%d", i);
        wrap(name, NULL, G_ "w, " GW_ "bp", "nncl_pack_conv_flip(%d, %d, %d, %d, w, bp)", c->KH, c->KW, c->C, c->F);
        for (int a = 0; a < 3; a += 1 + (i % 2 == 0)) {   /* none, then relu (odd i) or tanh */
            snprintf(name, sizeof name, "dx_%d_%d", i, a);
            wrap(name, "NNCL_CONV2D_BWD_DATA_PACKED_ACT_LOCAL", "int n, " G_ "dy, " G_ "bp, " G_ "y, " GW_ "dx",
                 "nncl_conv2d_bwd_data_packed_act(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, dy, bp, %s, %d, dx, scratch)",
                 c->H, c->W, c->C, c->KH, c->KW, c->F, c->SH, c->SW, c->PT, c->PL, c->OH, c->OW, a ? "y" : "0", acts[a]);
        }
    }
    cl_build();
    for (int i = 0; i < N_DX_CONVS; i++) {
        conv_t c = dx_convs[i];
        size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F;
        size_t ny = (size_t)c.n * c.OH * c.OW * c.F, nbp = PACKED_ELEMS(c.KH * c.KW * c.F, c.C);
        size_t nwork = nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW);
        float *w = rnd(nw, -1, 1), *dy = rnd(ny, -1, 1), *bp = rnd(nbp, -1, 1), *work = malloc((nwork + 1) * sizeof *work);
        snprintf(name, sizeof name, "flip_%d", i);
        run(name, 2, (arg_t[]){AB(w, nw), AB(bp, nbp)});
        for (int a = 0; a < 3; a += 1 + (i % 2 == 0)) {
            /* The activation's outputs: relu's with zeros, tanh's in (-1, 1). */
            float *y = rnd(nx, acts[a] == NN_EPI_TANH ? -1 : 0, 1);
            for (size_t j = 0; j < nx; j += 3) y[j] = acts[a] == NN_EPI_RELU ? 0 : y[j];
            float *dx = rnd(nx, -1, 1), *rdx = dup(dx, nx);
            nnk_conv2d_bwd_data_act(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, dy, w,
                                    a ? y : NULL, acts[a], rdx, work);
            snprintf(name, sizeof name, "dx_%d_%d", i, a);
            arg_t args[] = {AI(c.n), AB(dy, ny), AB(bp, nbp), AB(y, nx), AB(dx, nx)};
            run(name, 5, args);
            expect_close(name, dx, rdx, nx, TOL_SUM);
            /* Many more groups than units: the same bits. */
            cl_int err;
            cl_kernel k = clCreateKernel(prog, name, &err);
            cr_assert(err == CL_SUCCESS);
            float *out[5] = {0};
            launch_once(k, 5, args, 200, out);
            cr_expect(memcmp(out[4], dx, nx * sizeof *dx) == 0, "%s: 200 work-groups give other bits", name);
            for (int j = 0; j < 5; j++) free(out[j]);
            clReleaseKernel(k);
            free(y); free(dx); free(rdx);
        }
        free(w); free(dy); free(bp); free(work);
    }
    cl_end();
    layout_opts = "";
}

Test(cl_conv_dx_packed, cpu_layout) { dx_packed_cases("", 16); }
Test(cl_conv_dx_packed, gpu_layout) { dx_packed_cases("-DNNCL_CPU=0", 16); }

/* ------------------------------------------------------------ fused bias gradients */

/* fuse_bias_grad.c on OpenCL: the weight gradient that also sums dy's columns equals the
 * C library's fused kernel (dw and db within the sums' tolerance), and its db equals the
 * library's own nncl_bias_grad bit for bit, in both layouts. */
static void bias_fused_cases(const char *opts, int work_group) {
    layout_opts = opts;
    cl_begin(work_group);
    char name[64];
    for (int s = 0; s < N_GEMM_SIZES; s++) {
        int M = gemm_sizes[s][0], N = gemm_sizes[s][1], K = gemm_sizes[s][2];
        snprintf(name, sizeof name, "tn_bias_%d", s);
        wrap(name, "NNCL_GEMM_TN_BIAS_GRAD_LOCAL", G_ "A, " G_ "dy, " GW_ "dw, " GW_ "db",
             "nncl_gemm_tn_bias_grad(%d, %d, %d, A, dy, dw, db, scratch)", M, N, K);
        snprintf(name, sizeof name, "tn_sep_%d", s);
        wrap(name, "NNCL_BIAS_GRAD_LOCAL", G_ "dy, " GW_ "db", "nncl_bias_grad(%d, %d, dy, db, scratch)", K, N);
    }
    for (int i = 0; i < N_CONVS; i++) {
        const conv_t *c = &convs[i];
        snprintf(name, sizeof name, "filter_bias_%d", i);
        wrap(name, "NNCL_CONV2D_BWD_FILTER_BIAS_LOCAL", "int n, " G_ "x, " G_ "dy, " GW_ "dw, " GW_ "db",
             "nncl_conv2d_bwd_filter_bias(n, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, x, dy, dw, db, scratch)",
             c->H, c->W, c->C, c->KH, c->KW, c->F, c->SH, c->SW, c->PT, c->PL, c->OH, c->OW);
        snprintf(name, sizeof name, "filter_sep_%d", i);
        wrap(name, "NNCL_BIAS_GRAD_LOCAL", "int rows, " G_ "dy, " GW_ "db",
             "nncl_bias_grad(rows, %d, dy, db, scratch)", c->F);
    }
    cl_build();
    for (int s = 0; s < N_GEMM_SIZES; s++) {
        /* dw[M,N] = Aᵀ·dy: A [K,M] (the layer's input), dy [K,N] */
        int M = gemm_sizes[s][0], N = gemm_sizes[s][1], K = gemm_sizes[s][2];
        float *A = rnd((size_t)K * M, -1, 1), *dy = rnd((size_t)K * N, -1, 1);
        float *dw = rnd((size_t)M * N, -1, 1), *db = rnd(N, -1, 1), *sep = rnd(N, -1, 1);
        float *rdw = dup(dw, (size_t)M * N), *rdb = dup(db, N);
        nnk_gemm_tn_bias_grad(M, N, K, A, dy, rdw, rdb);
        snprintf(name, sizeof name, "tn_bias_%d", s);
        run(name, 4, (arg_t[]){AB(A, (size_t)K * M), AB(dy, (size_t)K * N), AB(dw, (size_t)M * N), AB(db, N)});
        expect_close(name, dw, rdw, (size_t)M * N, TOL_SUM);
        expect_close(name, db, rdb, N, TOL_SUM);
        snprintf(name, sizeof name, "tn_sep_%d", s);
        run(name, 2, (arg_t[]){AB(dy, (size_t)K * N), AB(sep, N)});
        expect_close(name, db, sep, N, 0);
        free(A); free(dy); free(dw); free(db); free(sep); free(rdw); free(rdb);
    }
    for (int i = 0; i < N_CONVS; i++) {
        conv_t c = convs[i];
        size_t nx = (size_t)c.n * c.H * c.W * c.C, nw = (size_t)c.KH * c.KW * c.C * c.F;
        size_t ny = (size_t)c.n * c.OH * c.OW * c.F;
        size_t nwork = nnk_conv2d_work_elems(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.OH, c.OW);
        float *x = rnd(nx, -1, 1), *dy = rnd(ny, -1, 1), *dw = rnd(nw, -1, 1), *db = rnd(c.F, -1, 1);
        float *sep = rnd(c.F, -1, 1), *rdw = dup(dw, nw), *rdb = dup(db, c.F);
        float *work = malloc((nwork + 1) * sizeof *work);
        nnk_conv2d_bwd_filter_bias(c.n, c.H, c.W, c.C, c.KH, c.KW, c.F, c.SH, c.SW, c.PT, c.PL, c.OH, c.OW, x, dy, rdw,
                                   rdb, work);
        snprintf(name, sizeof name, "filter_bias_%d", i);
        run(name, 5, (arg_t[]){AI(c.n), AB(x, nx), AB(dy, ny), AB(dw, nw), AB(db, c.F)});
        expect_close(name, dw, rdw, nw, TOL_SUM);
        expect_close(name, db, rdb, c.F, TOL_SUM);
        snprintf(name, sizeof name, "filter_sep_%d", i);
        run(name, 3, (arg_t[]){AI(c.n * c.OH * c.OW), AB(dy, ny), AB(sep, c.F)});
        expect_close(name, db, sep, c.F, 0);
        free(x); free(dy); free(dw); free(db); free(sep); free(rdw); free(rdb); free(work);
    }
    cl_end();
    layout_opts = "";
}

Test(cl_bias_fused, weight_grads_sum_dy_cpu_layout) { bias_fused_cases("", 64); }
Test(cl_bias_fused, weight_grads_sum_dy_gpu_layout) { bias_fused_cases("-DNNCL_CPU=0", 64); }
/* A CPU device's programs run groups of 16 (nn_cl_pick_work_group). */
Test(cl_bias_fused, work_group_16) { bias_fused_cases("", 16); }

/* ------------------------------------------------------------ Dense layers, loss, Adam */

/* The CPU layout's Dense paths (nncl_cpu_gemm_nn_ for the forward pass and the weight
 * gradient, nncl_cpu_gemm_nt_ for the data gradient), the vectorized sparse softmax
 * cross-entropy and Adam's grouped update, on fashion_cnn's and the MLP's shapes and
 * odd ones (rows that do not fill the 6- or 2-row blocks, columns that do not fill 16
 * or 4, k tails), each with 1, 23, 64 and 300 work-groups (bit-identical), against C. */
static const int dense_sizes[][3] = {   /* M (the batch), N (units), K (inputs) */
    {32, 64, 1600}, {32, 10, 64}, {32, 128, 784}, {128, 128, 784}, {37, 70, 100}, {5, 300, 17}, {1, 3, 9},
    {13, 1601, 67}};
#define N_DENSE_SIZES (int)(sizeof dense_sizes / sizeof dense_sizes[0])
#define DENSE_ODD 4   /* the odd shapes from here (the GPU layout's test, which this work left as it was) */
static const int dense_groups[] = {23, 64, 300};

static void dense_cases(const char *opts, int work_group, int first) {
    layout_opts = opts;
    cl_begin(work_group);
    char name[64];
    for (int s = first; s < N_DENSE_SIZES; s++) {
        int M = dense_sizes[s][0], N = dense_sizes[s][1], K = dense_sizes[s][2];
        snprintf(name, sizeof name, "dense_fwd_%d", s);
        wrap(name, "NNCL_GEMM_BIAS_ACT_LOCAL", G_ "x, " G_ "w, " G_ "b, " GW_ "y",
             "nncl_gemm_bias_act(0, 0, %d, %d, %d, x, w, b, NN_EPI_RELU, y, scratch)", M, N, K);
        snprintf(name, sizeof name, "dense_dx_%d", s);   /* dx [M,K] = dy [M,N] · wᵀ, w [K,N] */
        wrap(name, "NNCL_GEMM_LOCAL", G_ "dy, " G_ "w, " GW_ "dx", "nncl_gemm(0, 1, %d, %d, %d, dy, w, dx, 0, scratch)",
             M, K, N);
        snprintf(name, sizeof name, "dense_dx_act_%d", s);
        wrap(name, "NNCL_GEMM_ACT_GRAD_LOCAL", G_ "dy, " G_ "w, " G_ "y, " GW_ "dx",
             "nncl_gemm_act_grad(0, 1, %d, %d, %d, dy, w, y, NN_EPI_RELU, dx, scratch)", M, K, N);
        snprintf(name, sizeof name, "dense_dw_%d", s);   /* dw [K,N] = xᵀ·dy, db = Σ dy */
        wrap(name, "NNCL_GEMM_TN_BIAS_GRAD_LOCAL", G_ "x, " G_ "dy, " GW_ "dw, " GW_ "db",
             "nncl_gemm_tn_bias_grad(%d, %d, %d, x, dy, dw, db, scratch)", K, N, M);
    }
    cl_build();
    for (int s = first; s < N_DENSE_SIZES; s++) {
        int M = dense_sizes[s][0], N = dense_sizes[s][1], K = dense_sizes[s][2];
        size_t nx = (size_t)M * K, nw = (size_t)K * N, ny = (size_t)M * N;
        float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *b = rnd(N, -1, 1), *dy = rnd(ny, -1, 1);
        float *y = rnd(ny, -1, 1), *ry = dup(y, ny);
        nnk_gemm_bias_act(0, 0, M, N, K, x, w, b, NN_EPI_RELU, ry);
        snprintf(name, sizeof name, "dense_fwd_%d", s);
        run_groups(name, 4, (arg_t[]){AB(x, nx), AB(w, nw), AB(b, N), AB(y, ny)}, dense_groups, 3);
        expect_close(name, y, ry, ny, TOL_SUM);
        float *dx = rnd(nx, -1, 1), *rdx = dup(dx, nx);
        nnk_gemm(0, 1, M, K, N, dy, w, rdx, 0);
        snprintf(name, sizeof name, "dense_dx_%d", s);
        run_groups(name, 3, (arg_t[]){AB(dy, ny), AB(w, nw), AB(dx, nx)}, dense_groups, 3);
        expect_close(name, dx, rdx, nx, TOL_SUM);
        float *act = rnd(nx, -1, 1);   /* relu outputs: about half are 0 */
        for (size_t i = 0; i < nx; i++) act[i] = act[i] > 0 ? act[i] : 0;
        nnk_gemm_act_grad(0, 1, M, K, N, dy, w, act, NN_EPI_RELU, rdx);
        snprintf(name, sizeof name, "dense_dx_act_%d", s);
        run_groups(name, 4, (arg_t[]){AB(dy, ny), AB(w, nw), AB(act, nx), AB(dx, nx)}, dense_groups, 3);
        expect_close(name, dx, rdx, nx, TOL_SUM);
        float *dw = rnd(nw, -1, 1), *db = rnd(N, -1, 1), *rdw = dup(dw, nw), *rdb = dup(db, N);
        nnk_gemm_tn_bias_grad(K, N, M, x, dy, rdw, rdb);
        snprintf(name, sizeof name, "dense_dw_%d", s);
        run_groups(name, 4, (arg_t[]){AB(x, nx), AB(dy, ny), AB(dw, nw), AB(db, N)}, dense_groups, 3);
        expect_close(name, dw, rdw, nw, TOL_SUM);
        expect_close(name, db, rdb, N, TOL_SUM);
        free(x); free(w); free(b); free(dy); free(y); free(ry); free(dx); free(rdx); free(act);
        free(dw); free(db); free(rdw); free(rdb);
    }
    cl_end();
    layout_opts = "";
}

Test(cl_dense, fashion_and_odd_shapes_cpu_layout) { dense_cases("", 16, 0); }
Test(cl_dense, odd_shapes_gpu_layout) { dense_cases("-DNNCL_CPU=0", 64, DENSE_ODD); }

/* Rows in one unit and in several (the sum by one item, the outputs by many), rows that
 * do not fill 8 lanes, and labels that are no class (NaN, -1, C: a NaN loss, as C). */
Test(cl_dense, sparse_softmax_xent_units_and_bad_labels) {
    cl_begin(16);
    const int shapes[][3] = {{32, 10, 0}, {128, 10, 0}, {600, 10, 0}, {9, 1, 0}, {13, 7, 1}, {530, 3, 1}};
    const int ns = (int)(sizeof shapes / sizeof shapes[0]);
    char name[64];
    for (int s = 0; s < ns; s++)
        for (int grads = 0; grads < 2; grads++) {
            snprintf(name, sizeof name, "xent_%d_%d", s, grads);
            wrap(name, "NNCL_LOSS_SPARSE_SOFTMAX_XENT_LOCAL", G_ "z, " G_ "t, " GW_ "p, " GW_ "d, " GW_ "sum",
                 "nncl_loss_sparse_softmax_xent(%d, %d, z, t, %s, sum, scratch)", shapes[s][0], shapes[s][1],
                 grads ? "p, d" : "p, 0");
        }
    cl_build();
    for (int s = 0; s < ns; s++)
        for (int grads = 0; grads < 2; grads++) {
            int n = shapes[s][0], C = shapes[s][1];
            size_t nn = (size_t)n * C;
            float *z = rnd(nn, -6, 6), *t = malloc(n * sizeof *t), sum = -1;
            for (int i = 0; i < n; i++) t[i] = (float)(int)uniform(0, (float)C - 0.01f);
            if (shapes[s][2]) t[1] = NAN, t[n / 2] = -1, t[n - 1] = (float)C;
            float *p = rnd(nn, -1, 1), *d = rnd(nn, -1, 1), *rp = dup(p, nn), *rd = dup(d, nn);
            double ref = nnk_loss_sparse_softmax_xent(n, C, z, t, rp, grads ? rd : NULL);
            snprintf(name, sizeof name, "xent_%d_%d", s, grads);
            run_groups(name, 5, (arg_t[]){AB(z, nn), AB(t, n), AB(p, nn), AB(d, nn), AB(&sum, 1)}, dense_groups, 3);
            if (shapes[s][2]) cr_expect(isnan(sum) && isnan(ref), "%s: sum %g, C %g (a bad label)", name, sum, ref);
            else cr_expect(fabs(sum - ref) <= TOL_SUM * fabs(ref) + 1e-6, "%s: sum %.9g, C %.9g", name, sum, ref);
            expect_close(name, p, rp, nn, TOL_SUM);
            expect_close(name, d, rd, nn, TOL_SUM);
            free(z); free(t); free(p); free(d); free(rp); free(rd);
        }
    cl_end();
}

/* Parts of fashion_cnn's sizes (a Dense kernel of several 8192-element units with a
 * remainder, biases smaller than a vector) in one grouped update, against C's. */
Test(cl_dense, adam_update_all_units) {
    cl_begin(16);
    const long size[5] = {288, 32, 102400, 64, 8197};
    long total = 0, at[5];
    for (int k = 0; k < 5; k++) at[k] = total, total += size[k];
    char tables[1024];
    snprintf(tables, sizeof tables,
             "  __global nn_real *const w[5] = {W, W + %ld, W + %ld, W + %ld, W + %ld};\n"
             "  __global const nn_real *const g[5] = {G, G + %ld, G + %ld, G + %ld, G + %ld};\n"
             "  __global nn_real *const m[5] = {S0, S0 + %ld, S0 + %ld, S0 + %ld, S0 + %ld};\n"
             "  __global nn_real *const v[5] = {S1, S1 + %ld, S1 + %ld, S1 + %ld, S1 + %ld};\n"
             "  const long size[5] = {288, 32, 102400, 64, 8197}",
             at[1], at[2], at[3], at[4], at[1], at[2], at[3], at[4], at[1], at[2], at[3], at[4], at[1], at[2], at[3],
             at[4]);
    wrap("adam_units", NULL, GW_ "W, " G_ "G, " GW_ "S0, " GW_ "S1",
         "%s;\n  nncl_adam_update_all(5, w, g, m, v, size, 0.001f, 0.9f, 0.999f, 1e-7f, 7)", tables);
    cl_build();
    float *w = rnd(total, -1, 1), *g = rnd(total, -1, 1), *m = rnd(total, -0.1f, 0.1f), *v = rnd(total, 0, 0.01f);
    float *rw = dup(w, total), *rm = dup(m, total), *rv = dup(v, total);
    for (int k = 0; k < 5; k++)
        nnk_adam_update(size[k], 0.001f, 0.9f, 0.999f, 1e-7f, 7, rw + at[k], g + at[k], rm + at[k], rv + at[k]);
    run_groups("adam_units", 4, (arg_t[]){AB(w, total), AB(g, total), AB(m, total), AB(v, total)}, dense_groups, 3);
    expect_close("adam w", w, rw, total, TOL_SUM);
    expect_close("adam m", m, rm, total, TOL_SUM);
    expect_close("adam v", v, rv, total, TOL_SUM);
    free(w); free(g); free(m); free(v); free(rw); free(rm); free(rv);
    cl_end();
}
