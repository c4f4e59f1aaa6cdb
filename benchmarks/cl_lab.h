/* cl_lab.h — what the OpenCL A/B harnesses (cl_ab.c, cl_dx_ab.c, cl_pool_ab.c) share:
 * the first device with one queue, programs built from sources (or the build log shown),
 * files read whole, clocks and sorting for medians.  Header-only: each harness is one
 * file that its script compiles. */
#ifndef CL_LAB_H
#define CL_LAB_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                                   \
    do {                                                                              \
        cl_int e_ = (call);                                                           \
        if (e_ != CL_SUCCESS) {                                                       \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, e_); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static cl_context ctx;
static cl_device_id dev;
static cl_command_queue q;

/* The first platform's first device, and an in-order queue with these properties. */
static void lab_open(cl_command_queue_properties props) {
    cl_platform_id plat;
    cl_int err;
    CHECK(clGetPlatformIDs(1, &plat, NULL));
    CHECK(clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL));
    ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    CHECK(err);
    q = clCreateCommandQueue(ctx, dev, props, &err);
    CHECK(err);
}

static char *lab_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc(n + 1);
    if (!s || fread(s, 1, n, f) != (size_t)n) { perror(path); exit(1); }
    s[n] = 0;
    fclose(f);
    return s;
}

/* The n sources as one program, or the build log and exit; `what` names it there. */
static cl_program lab_build(int n, const char **src, const char *opts, const char *what) {
    cl_int err;
    cl_program p = clCreateProgramWithSource(ctx, n, src, NULL, &err);
    CHECK(err);
    if (clBuildProgram(p, 1, &dev, opts, NULL, NULL) != CL_SUCCESS) {
        size_t len = 0;
        clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
        char *log = malloc(len + 1);
        if (log && clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, len, log, NULL) == CL_SUCCESS) log[len] = 0;
        fprintf(stderr, "%s: build failed:\n%s\n", what, log ? log : "");
        exit(1);
    }
    return p;
}

/* CLOCK_MONOTONIC for wall time; CLOCK_PROCESS_CPUTIME_ID for the process's CPU time, all
 * threads (the device's workers wait passively, so this leaves out time other processes
 * held the cores). */
static double lab_now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int lab_by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
