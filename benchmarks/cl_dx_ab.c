/* cl_dx_ab.c — a convolution's data gradient on OpenCL from two versions of
 * kernels/nn_kernels.cl, side by side in one process on the first OpenCL device (PoCL
 * here): nncl_pack_conv_flip then nncl_conv2d_bwd_data_packed_act (what --layout=auto
 * runs), and the NHWC nncl_conv2d_bwd_data_act and the C library's packed kernel
 * (nnk_conv2d_bwd_data_packed_act, OpenMP threads, shapes at run time as in the library)
 * for reference.  Run by cl_dx_ab.sh.
 *
 *   cl_dx_ab A.cl B.cl n H W C KH KW F SH SW PT PL OH OW [rounds] [batch]
 *
 * Each version is its own program (work-groups of 16, as the runtime picks on a CPU
 * device), launched as the generated host code does (min(64, work/16) groups).  Rounds
 * alternate the variants, each order half the time; a round times `batch` launches
 * enqueued back to back then one clFinish (a pipelined step: no thread wake-up per
 * launch), per launch.  Prints the medians and the largest difference between the
 * versions' dx, relative to max|dx|. */
#include "cl_lab.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn_kernels.h"

static int sh[13];   /* n H W C KH KW F SH SW PT PL OH OW */

static cl_program build(const char *lib_path) {
    char *lib = lab_slurp(lib_path);
    char shape[256], wrap[4096];
    snprintf(shape, sizeof shape, "%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d", sh[1], sh[2], sh[3], sh[4], sh[5],
             sh[6], sh[7], sh[8], sh[9], sh[10], sh[11], sh[12]);
    snprintf(wrap, sizeof wrap,
             "\n__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
             "void pack(__global const nn_real *w, __global nn_real *bp) { nncl_pack_conv_flip(%d, %d, %d, %d, w, bp); }\n"
             "__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
             "void packed(int n, __global const nn_real *dy, __global const nn_real *bp, __global nn_real *dx) {\n"
             "  __local nn_real scratch[NNCL_CONV2D_BWD_DATA_PACKED_ACT_LOCAL];\n"
             "  nncl_conv2d_bwd_data_packed_act(n, %s, dy, bp, 0, NN_EPI_NONE, dx, scratch);\n}\n"
             "__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
             "void nhwc(int n, __global const nn_real *dy, __global const nn_real *w, __global nn_real *dx) {\n"
             "  __local nn_real scratch[NNCL_CONV2D_BWD_DATA_ACT_LOCAL];\n"
             "  nncl_conv2d_bwd_data_act(n, %s, dy, w, 0, NN_EPI_NONE, dx, scratch);\n}\n",
             sh[4], sh[5], sh[3], sh[6], shape, shape);
    const char *opts = getenv("CL_DX_AB_OPTIONS");   /* more build options, e.g. -DNNCL_CPU=0 */
    char all[512];
    snprintf(all, sizeof all, "-DNNCL_WG=16 %s", opts ? opts : "");
    cl_program p = lab_build(2, (const char *[]){lib, wrap}, all, lib_path);
    free(lib);
    return p;
}

static cl_mem buffer(size_t elems, int random) {
    float *h = malloc(elems * sizeof *h);
    static uint64_t s = 1;
    for (size_t i = 0; i < elems; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = random ? (float)((double)(s >> 11) * 0x1.0p-53 * 2 - 1) : 0;
    }
    cl_int err;
    cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, elems * sizeof *h, h, &err);
    CHECK(err);
    free(h);
    return m;
}

static void run(cl_kernel k, size_t groups) {
    size_t local = 16, global = groups * local;
    CHECK(clEnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, NULL));
}

int main(int argc, char **argv) {
    if (argc < 16) {
        fprintf(stderr, "usage: cl_dx_ab A.cl B.cl n H W C KH KW F SH SW PT PL OH OW [rounds] [batch]\n");
        return 2;
    }
    for (int i = 0; i < 13; i++) sh[i] = atoi(argv[3 + i]);
    int rounds = argc > 16 ? atoi(argv[16]) : 40, batch = argc > 17 ? atoi(argv[17]) : 10;
    int n = sh[0], H = sh[1], W = sh[2], C = sh[3], KH = sh[4], KW = sh[5], F = sh[6], OH = sh[11], OW = sh[12];
    lab_open(0);
    cl_int err;
    size_t nx = (size_t)n * H * W * C, ny = (size_t)n * OH * OW * F, nw = (size_t)KH * KW * C * F;
    size_t nbp = (size_t)KH * KW * F * ((C + 31) / 32 * 32);
    cl_mem dy = buffer(ny, 1), w = buffer(nw, 1), bp = buffer(nbp, 0), dx[2] = {buffer(nx, 0), buffer(nx, 0)};
    cl_program prog[2] = {build(argv[1]), build(argv[2])};
    enum { PACKED_A, PACKED_B, NHWC_B, C_PACKED, VARIANTS };
    const char *names[VARIANTS] = {"a packed", "b packed", "b nhwc", "C packed"};
    cl_kernel k[VARIANTS];
    for (int v = 0; v < C_PACKED; v++) {
        k[v] = clCreateKernel(prog[v == PACKED_A ? 0 : 1], v == NHWC_B ? "nhwc" : "packed", &err);
        CHECK(err);
        CHECK(clSetKernelArg(k[v], 0, sizeof(cl_int), &n));
        CHECK(clSetKernelArg(k[v], 1, sizeof(cl_mem), &dy));
        CHECK(clSetKernelArg(k[v], 2, sizeof(cl_mem), v == NHWC_B ? &w : &bp));
        CHECK(clSetKernelArg(k[v], 3, sizeof(cl_mem), &dx[v == PACKED_A ? 0 : 1]));
    }
    cl_kernel pack = clCreateKernel(prog[0], "pack", &err);
    CHECK(err);
    CHECK(clSetKernelArg(pack, 0, sizeof(cl_mem), &w));
    CHECK(clSetKernelArg(pack, 1, sizeof(cl_mem), &bp));
    size_t work = nx > (size_t)nw ? nx : nw, groups = (work + 15) / 16;   /* as nnc_launch */
    if (groups > 64) groups = 64;
    run(pack, (nw + 15) / 16 < 64 ? (nw + 15) / 16 : 64);
    CHECK(clFinish(q));
    /* The versions' packed dx, compared (after warming up: PoCL compiles at first launch). */
    float *h[2] = {malloc(nx * sizeof(float)), malloc(nx * sizeof(float))};
    for (int v = 0; v < 2; v++) {
        run(k[v], groups);
        CHECK(clEnqueueReadBuffer(q, dx[v], CL_TRUE, 0, nx * sizeof(float), h[v], 0, NULL, NULL));
    }
    run(k[NHWC_B], groups);
    CHECK(clFinish(q));
    /* The C library's, on the same inputs. */
    float *hdy = malloc(ny * sizeof(float)), *hw = malloc(nw * sizeof(float));
    float *hbp = malloc(nbp * sizeof(float)), *hdx = malloc(nx * sizeof(float));   /* 32-column panels hold the library's */
    CHECK(clEnqueueReadBuffer(q, dy, CL_TRUE, 0, ny * sizeof(float), hdy, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(q, w, CL_TRUE, 0, nw * sizeof(float), hw, 0, NULL, NULL));
    nnk_pack_conv_flip(KH, KW, C, F, hw, hbp);
#define C_DX() nnk_conv2d_bwd_data_packed_act(n, H, W, C, KH, KW, F, sh[7], sh[8], sh[9], sh[10], OH, OW, hdy, hbp, NULL, 0, hdx)
    C_DX();
    double mag = 0, worst = 0, worst_c = 0;
    for (size_t i = 0; i < nx; i++) {
        mag = fmax(mag, fabs(h[0][i]));
        worst = fmax(worst, fabs((double)h[0][i] - h[1][i]));
        worst_c = fmax(worst_c, fabs((double)hdx[i] - h[1][i]));
    }
    double *t[VARIANTS], *tc[VARIANTS];
    for (int v = 0; v < VARIANTS; v++) t[v] = malloc(rounds * sizeof(double)), tc[v] = malloc(rounds * sizeof(double));
    for (int r = 0; r < rounds; r++)
        for (int j = 0; j < VARIANTS; j++) {
            int v = (r & 1) ? VARIANTS - 1 - j : j;
            double t0 = lab_now(CLOCK_MONOTONIC), c0 = lab_now(CLOCK_PROCESS_CPUTIME_ID);
            if (v == C_PACKED)
                for (int b = 0; b < batch; b++) C_DX();
            else {
                for (int b = 0; b < batch; b++) run(k[v], groups);
                CHECK(clFinish(q));
            }
            t[v][r] = (lab_now(CLOCK_MONOTONIC) - t0) / batch;
            tc[v][r] = (lab_now(CLOCK_PROCESS_CPUTIME_ID) - c0) / batch;
        }
    double flop = 2.0 * n * OH * OW * F * KH * KW * C;
    printf("shape n=%d %dx%dx%d <- %dx%dx%d, %dx%d, stride %dx%d, pads %d,%d; %zu groups of 16; %d rounds of %d launches\n",
           n, H, W, C, OH, OW, F, KH, KW, sh[7], sh[8], sh[9], sh[10], groups, rounds, batch);
    double med[VARIANTS], cmed[VARIANTS];
    for (int v = 0; v < VARIANTS; v++) {
        qsort(t[v], rounds, sizeof(double), lab_by_value);
        qsort(tc[v], rounds, sizeof(double), lab_by_value);
        med[v] = t[v][rounds / 2];
        cmed[v] = tc[v][rounds / 2];
        printf("%-9s wall median %8.1f us (quartiles %.1f-%.1f) %6.1f GFLOP/s; CPU time median %8.1f us\n", names[v],
               1e6 * med[v], 1e6 * t[v][rounds / 4], 1e6 * t[v][3 * rounds / 4], flop / med[v] * 1e-9, 1e6 * cmed[v]);
    }
    printf("ratio wall a/b (packed) %.2f, C/b %.2f; CPU time a/b %.2f, C/b %.2f\n", med[PACKED_A] / med[PACKED_B],
           med[C_PACKED] / med[PACKED_B], cmed[PACKED_A] / cmed[PACKED_B], cmed[C_PACKED] / cmed[PACKED_B]);
    printf("max |dx_a - dx_b| = %.3g, |dx_C - dx_b| = %.3g x max|dx_a| (%.3g)\n", mag > 0 ? worst / mag : worst,
           mag > 0 ? worst_c / mag : worst_c, mag);
    return 0;
}
