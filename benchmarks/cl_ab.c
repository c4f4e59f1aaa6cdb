/* cl_ab.c — the kernels of one generated OpenCL model (model.cl) on two versions of the
 * kernel library (nn_kernels.cl), side by side in one process on one device: two
 * programs, one arena each (same initial values), launched in turn so that the machine's
 * other load hits both alike.  Run by cl_ab.sh, which emits the model and lists its train
 * step's kernels with their work sizes as the generated host computes them.
 *
 *   cl_ab MODEL.cl LIB_A.cl LIB_B.cl BATCH WG MAXGROUPS ROUNDS NAME=WORK...
 *
 * ROUNDS train steps of each version (every kernel once, in order, one clFinish), in turn;
 * prints each kernel's median microseconds from its event's profiling times (its run
 * inside a pipelined step, caches as the step leaves them) and the ratio a/b, then the
 * step's median wall-clock time.  Before timing, one step on each arena
 * from the same values: "max |a-b|" over the arena says whether they agree. */
#include "cl_lab.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: cl_ab MODEL.cl LIB_A.cl LIB_B.cl BATCH WG MAXGROUPS ROUNDS NAME=WORK...\n");
        return 2;
    }
    char *model = lab_slurp(argv[1]), *lib[2] = {lab_slurp(argv[2]), lab_slurp(argv[3])};
    int n = atoi(argv[4]), wg = atoi(argv[5]), maxg = atoi(argv[6]), rounds = atoi(argv[7]);
    int nk = argc - 8;
    lab_open(CL_QUEUE_PROFILING_ENABLE);
    cl_int err;
    char opts[160];
    snprintf(opts, sizeof opts, "-DNNC_MAXBATCH=%d -DNNCL_WG=%d -DNNCL_CPU=1", n, wg);
    /* The arena: everything the model addresses, generously (FIXED_ELEMS + per-sample). */
    size_t elems = 0;
    {
        const char *f = strstr(model, "#define FIXED_ELEMS ");
        long fixed = f ? atol(f + 20) : 0;
        long per = 0;
        for (const char *s = model; (s = strstr(s, "PER_SAMPLE(")) != NULL; s += 11) {
            long o = atol(s + 11);
            if (o > per) per = o;
        }
        elems = (size_t)fixed + (size_t)(per + 4096) * n + 65536;
    }
    float *init = malloc(elems * sizeof(float)), *back[2];
    uint64_t st = 1;
    for (size_t i = 0; i < elems; i++) {   /* in [0, 0.5): valid labels (0), positive v */
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        init[i] = (float)((double)(st >> 11) * 0x1.0p-53 * 0.5);
    }
    cl_program prog[2];
    cl_mem arena[2];
    cl_kernel *k[2];
    size_t *groups = malloc(nk * sizeof *groups);
    char **names = malloc(nk * sizeof *names);
    for (int i = 0; i < nk; i++) {
        char *eq = strchr(argv[8 + i], '=');
        if (!eq) return 2;
        *eq = 0;
        names[i] = argv[8 + i];
        long work = atol(eq + 1), g = (work + wg - 1) / wg;
        groups[i] = g > maxg ? maxg : g < 1 ? 1 : g;
    }
    for (int v = 0; v < 2; v++) {
        prog[v] = lab_build(2, (const char *[]){lib[v], model}, opts, argv[2 + v]);
        arena[v] = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, elems * sizeof(float), init, &err);
        CHECK(err);
        k[v] = malloc(nk * sizeof(cl_kernel));
        for (int i = 0; i < nk; i++) {
            k[v][i] = clCreateKernel(prog[v], names[i], &err);
            if (err != CL_SUCCESS) {
                fprintf(stderr, "cl_ab: no kernel %s\n", names[i]);
                return 1;
            }
            cl_ulong seed = 42;
            cl_long step = 1;
            CHECK(clSetKernelArg(k[v][i], 0, sizeof(cl_mem), &arena[v]));
            CHECK(clSetKernelArg(k[v][i], 1, sizeof(int), &n));
            CHECK(clSetKernelArg(k[v][i], 2, sizeof seed, &seed));
            CHECK(clSetKernelArg(k[v][i], 3, sizeof step, &step));
        }
    }
    size_t lsz = wg;
#define LAUNCH(v, i) \
    CHECK(clEnqueueNDRangeKernel(q, k[v][i], 1, NULL, (size_t[]){groups[i] * lsz}, &lsz, 0, NULL, NULL))
    /* One step on each from the same values; then compare. */
    for (int v = 0; v < 2; v++) {
        for (int i = 0; i < nk; i++) LAUNCH(v, i);
        CHECK(clFinish(q));
        back[v] = malloc(elems * sizeof(float));
        CHECK(clEnqueueReadBuffer(q, arena[v], CL_TRUE, 0, elems * sizeof(float), back[v], 0, NULL, NULL));
    }
    double maxd = 0, maxrel = 0;
    for (size_t i = 0; i < elems; i++) {
        double d = fabs((double)back[0][i] - back[1][i]);
        if (!(d <= maxd)) maxd = d;
        double r = d / (fabs(back[0][i]) + 1e-6);
        if (r > maxrel) maxrel = r;
    }
    printf("max |a-b| over the arena after one step: %g (relative %g)\n", maxd, maxrel);
    /* Whole steps, a and b in turn (each order half the time); every launch with an
     * event, so each kernel's time is its own run inside a pipelined step, with the
     * caches as the step leaves them. */
    double *t[2], *kt[2];
    for (int v = 0; v < 2; v++) {
        t[v] = malloc(rounds * sizeof(double));
        kt[v] = malloc((size_t)rounds * nk * sizeof(double));
    }
    cl_event *ev = malloc(nk * sizeof(cl_event));
    for (int r = -3; r < rounds; r++)   /* three rounds to warm up */
        for (int o = 0; o < 2; o++) {
            int v = (o + (r & 1)) & 1;
            double t0 = lab_now(CLOCK_MONOTONIC);
            for (int i = 0; i < nk; i++)
                CHECK(clEnqueueNDRangeKernel(q, k[v][i], 1, NULL, (size_t[]){groups[i] * lsz}, &lsz, 0, NULL, &ev[i]));
            CHECK(clFinish(q));
            double dt = (lab_now(CLOCK_MONOTONIC) - t0) * 1e6;
            for (int i = 0; i < nk; i++) {
                cl_ulong s0 = 0, s1 = 0;
                CHECK(clGetEventProfilingInfo(ev[i], CL_PROFILING_COMMAND_START, sizeof s0, &s0, NULL));
                CHECK(clGetEventProfilingInfo(ev[i], CL_PROFILING_COMMAND_END, sizeof s1, &s1, NULL));
                if (r >= 0) kt[v][(size_t)i * rounds + r] = (double)(s1 - s0) / 1e3;
                clReleaseEvent(ev[i]);
            }
            if (r >= 0) t[v][r] = dt;
        }
    printf("%-40s %6s %10s %10s %7s\n", "kernel", "groups", "a us", "b us", "a/b");
    double sa = 0, sb = 0;
    for (int i = 0; i < nk; i++) {
        double m[2];
        for (int v = 0; v < 2; v++) {
            qsort(kt[v] + (size_t)i * rounds, rounds, sizeof(double), lab_by_value);
            m[v] = kt[v][(size_t)i * rounds + rounds / 2];
        }
        sa += m[0], sb += m[1];
        printf("%-40s %6zu %10.1f %10.1f %7.2f\n", names[i], groups[i], m[0], m[1], m[0] / m[1]);
    }
    printf("%-40s %6s %10.1f %10.1f %7.2f\n", "(sum of the kernels' medians)", "", sa, sb, sa / sb);
    qsort(t[0], rounds, sizeof(double), lab_by_value);
    qsort(t[1], rounds, sizeof(double), lab_by_value);
    printf("%-40s %6s %10.1f %10.1f %7.2f\n", "(step, wall clock)", "", t[0][rounds / 2], t[1][rounds / 2],
           t[0][rounds / 2] / t[1][rounds / 2]);
    return 0;
}
