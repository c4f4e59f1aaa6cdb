/* cl_pool_ab.c — the pooling kernels of two versions of kernels/nn_kernels.cl side by
 * side on one OpenCL device (PoCL here), at fashion_cnn's shapes and launch geometry
 * (batch 32, work-groups of 16, min(work / 16, 64) groups as model.c launches them):
 *   pool_fwd   nncl_conv2d_pool_fwd        (n, 28, 28, 1) * (3, 3, 1, 32), relu, 2x2 pool
 *   pool_bwd   nncl_conv2d_pool_bwd_filter from the pooled gradient (its version's own idx)
 *   maxp_fwd   nncl_maxpool2d_fwd          (n, 10, 10, 64), 2x2
 *   maxp_bwd   nncl_maxpool2d_bwd_act      the same, through relu
 * Run by cl_pool_ab.sh.  Each version is its own program (same build options); each round
 * runs every kernel `calls` times back to back (one clFinish at the end, as a pipelined
 * step launches them) for a, then b, then b, then a.  Prints medians per launch and a/b,
 * in wall time and in the process's CPU time (all threads; steadier on a shared machine),
 * and how far b's outputs are from a's (relative to their largest magnitude).
 *
 *   cl_pool_ab A.cl B.cl [rounds] [calls] [batch] */
#include "cl_lab.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *wrappers =
    "\n#define G_ __global const nn_real *\n"
    "__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
    "void pool_fwd(int n, G_ x, G_ w, G_ b, __global nn_real *p, __global nn_real *idx) {\n"
    "  nncl_conv2d_pool_fwd(n, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 24, 24, 2, 2, 12, 12, x, w, b, NN_EPI_RELU, p, idx);\n"
    "}\n"
    "__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
    "void pool_bwd(int n, G_ x, G_ dp, G_ p, G_ idx, __global nn_real *dw, __global nn_real *db) {\n"
    "  nncl_conv2d_pool_bwd_filter(n, 28, 28, 1, 3, 3, 32, 1, 1, 0, 0, 24, 24, 2, 2, 12, 12, x, dp, p, idx,\n"
    "                              NN_EPI_RELU, dw, db);\n"
    "}\n"
    "__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
    "void maxp_fwd(int n, G_ x, __global nn_real *y) {\n"
    "  nncl_maxpool2d_fwd(n, 10, 10, 64, 2, 2, 2, 2, 0, 0, 5, 5, x, y);\n"
    "}\n"
    "__kernel __attribute__((reqd_work_group_size(NNCL_WG, 1, 1)))\n"
    "void maxp_bwd(int n, G_ x, G_ dy, __global nn_real *dx) {\n"
    "  nncl_maxpool2d_bwd_act(n, 10, 10, 64, 2, 2, 2, 2, 0, 0, 5, 5, x, dy, NN_EPI_RELU, dx);\n"
    "}\n";

enum { K_PFWD, K_PBWD, K_MFWD, K_MBWD, NK };
static const char *names[NK] = {"pool_fwd", "pool_bwd", "maxp_fwd", "maxp_bwd"};
enum { B_X1, B_W1, B_B1, B_P, B_IDX, B_DP, B_DW, B_DB, B_X2, B_Y2, B_DY2, B_DX2, NB };

typedef struct {
    cl_program prog;
    cl_kernel k[NK];
    cl_mem m[NB];
} version_t;

static float *random_floats(size_t n, float lo, float hi) {
    static uint64_t s = 7;
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = lo + (hi - lo) * (float)((double)(s >> 11) * 0x1.0p-53);
    }
    return p;
}

static size_t sizes[NB];
static cl_int batch;
static float *host[NB];

static void build(version_t *v, const char *path) {
    cl_int err;
    v->prog = lab_build(2, (const char *[]){lab_slurp(path), wrappers}, "-DNNCL_WG=16", path);
    for (int k = 0; k < NK; k++) {
        v->k[k] = clCreateKernel(v->prog, names[k], &err);
        CHECK(err);
    }
    for (int b = 0; b < NB; b++) {
        v->m[b] = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizes[b] * sizeof(float), host[b], &err);
        CHECK(err);
    }
    static const int args[NK][7] = {
        {B_X1, B_W1, B_B1, B_P, B_IDX, -1}, {B_X1, B_DP, B_P, B_IDX, B_DW, B_DB, -1},
        {B_X2, B_Y2, -1}, {B_X2, B_DY2, B_DX2, -1}};
    for (int k = 0; k < NK; k++) CHECK(clSetKernelArg(v->k[k], 0, sizeof(cl_int), &batch));
    for (int k = 0; k < NK; k++)
        for (int j = 0; args[k][j] >= 0; j++) CHECK(clSetKernelArg(v->k[k], j + 1, sizeof(cl_mem), &v->m[args[k][j]]));
}

static size_t groups[NK];

/* Wall seconds per launch; *cpu: the process's CPU seconds per launch (all threads: the
 * device's workers sleep when idle, so this leaves out time other processes held the cores). */
static double time_kernel(version_t *v, int k, int calls, double *cpu) {
    size_t local = 16, global = groups[k] * 16;
    double t0 = lab_now(CLOCK_MONOTONIC), c0 = lab_now(CLOCK_PROCESS_CPUTIME_ID);
    for (int c = 0; c < calls; c++) CHECK(clEnqueueNDRangeKernel(q, v->k[k], 1, NULL, &global, &local, 0, NULL, NULL));
    CHECK(clFinish(q));
    *cpu = (lab_now(CLOCK_PROCESS_CPUTIME_ID) - c0) / calls;
    return (lab_now(CLOCK_MONOTONIC) - t0) / calls;
}

/* max |b - a| / max |a| over buffer m */
static double differ(version_t *a, version_t *b, int m) {
    size_t n = sizes[m];
    float *ha = malloc(n * sizeof *ha), *hb = malloc(n * sizeof *hb);
    CHECK(clEnqueueReadBuffer(q, a->m[m], CL_TRUE, 0, n * sizeof(float), ha, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(q, b->m[m], CL_TRUE, 0, n * sizeof(float), hb, 0, NULL, NULL));
    double mag = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        mag = fmax(mag, fabs(ha[i]));
        worst = fmax(worst, fabs((double)ha[i] - hb[i]));
    }
    free(ha), free(hb);
    return mag > 0 ? worst / mag : worst;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: cl_pool_ab A.cl B.cl [rounds] [calls] [batch]\n"); return 2; }
    int rounds = argc > 3 ? atoi(argv[3]) : 7, calls = argc > 4 ? atoi(argv[4]) : 50;
    int n = argc > 5 ? atoi(argv[5]) : 32;
    batch = n;
    if (rounds < 1 || rounds > 1000 || calls < 1 || calls > 10000 || n < 1 || n > 1024) {
        fprintf(stderr, "cl_pool_ab: rounds 1..1000, calls 1..10000, batch 1..1024\n");
        return 2;
    }
    lab_open(0);
    size_t pooled = (size_t)n * 12 * 12 * 32, conv1 = (size_t)n * 10 * 10 * 64, pool1 = (size_t)n * 5 * 5 * 64;
    sizes[B_X1] = (size_t)n * 28 * 28, sizes[B_W1] = 9 * 32, sizes[B_B1] = 32, sizes[B_P] = pooled;
    sizes[B_IDX] = pooled, sizes[B_DP] = pooled, sizes[B_DW] = 9 * 32, sizes[B_DB] = 32;
    sizes[B_X2] = conv1, sizes[B_Y2] = pool1, sizes[B_DY2] = pool1, sizes[B_DX2] = conv1;
    for (int b = 0; b < NB; b++) host[b] = random_floats(sizes[b], -1, 1);
    for (size_t i = 0; i < sizes[B_X1]; i++) host[B_X1][i] = (host[B_X1][i] + 1) / 2;   /* pixels in [0, 1) */
    for (size_t i = 0; i < sizes[B_W1]; i++) host[B_W1][i] *= 0.5f;
    for (size_t i = 0; i < sizes[B_X2]; i++) host[B_X2][i] = fmaxf(host[B_X2][i], 0);   /* relu's output */
    size_t work[NK] = {(size_t)n * 4608, (size_t)n * 4608, conv1, conv1};
    for (int k = 0; k < NK; k++) {
        groups[k] = (work[k] + 15) / 16;
        if (groups[k] > 64) groups[k] = 64;
    }
    version_t v[2];
    build(&v[0], argv[1]);
    build(&v[1], argv[2]);
    double cpu;
    for (int i = 0; i < 2; i++)   /* warm-up (PoCL compiles at the first launch); fwd before bwd */
        for (int k = 0; k < NK; k++) time_kernel(&v[i], k, 3, &cpu);
    double *t[2][2][NK];   /* [wall, cpu][version][kernel][round] */
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < NK; k++) t[m][i][k] = calloc(rounds, sizeof(double));
    const char *only = getenv("CL_POOL_AB_ONLY");   /* one kernel's name: time only it (for perf) */
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < NK; k++)
            for (int s = 0; s < 4 && (!only || strcmp(only, names[k]) == 0); s++) {   /* a b b a */
                int i = s == 0 || s == 3 ? 0 : 1;
                double dt = time_kernel(&v[i], k, calls, &cpu);
                t[0][i][k][r] += dt / 2;
                t[1][i][k][r] += cpu / 2;
            }
    printf("batch %d, %d rounds x %d calls each way, median us per launch (wall; CPU of all threads):\n", n, rounds,
           calls);
    printf("%-9s %9s %9s %7s   %9s %9s %7s\n", "kernel", "wall a", "wall b", "a/b", "cpu a", "cpu b", "a/b");
    for (int k = 0; k < NK; k++) {
        double med[2][2];
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < 2; i++) {
                qsort(t[m][i][k], rounds, sizeof(double), lab_by_value);
                med[m][i] = t[m][i][k][rounds / 2] * 1e6;
            }
        printf("%-9s %9.1f %9.1f %7.2f   %9.1f %9.1f %7.2f\n", names[k], med[0][0], med[0][1], med[0][0] / med[0][1],
               med[1][0], med[1][1], med[1][0] / med[1][1]);
    }
    printf("b against a (max |b - a| / max |a|): pool %.2g, dw %.2g, db %.2g, maxpool y %.2g, dx %.2g\n",
           differ(&v[0], &v[1], B_P), differ(&v[0], &v[1], B_DW), differ(&v[0], &v[1], B_DB),
           differ(&v[0], &v[1], B_Y2), differ(&v[0], &v[1], B_DX2));
    return 0;
}
