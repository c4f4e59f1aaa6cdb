/* nn_kernels.h — the C kernels generated training programs call, one per graph op.
 *
 * Header-only: every kernel is `static inline` so that generated code, which passes
 * compile-time-constant shapes, gets loops specialized to those shapes.
 * Element type nn_real (float unless NN_REAL is defined first; tests use double so
 * finite differences are meaningful).  No dependency on nn.h.
 *
 * Layouts: activations NHWC row-major, batch first.  Dense kernel [in, out].
 * Conv2D kernel [KH, KW, C_in, F] (HWIO).  The batch size n is a run-time int (the
 * last batch may be partial); every other dimension is an argument the emitter
 * writes as a constant.
 *
 * Determinism: every kernel computes each output with a fixed operation order that
 * does not depend on the number of OpenMP threads (threads split outputs, never a
 * sum), so results are bitwise reproducible across thread counts.
 *
 * Sections: helpers · GEMM · bias · conv2d · pooling · activations · dropout ·
 * batchnorm · losses · regularizers · optimizers · copies.
 */
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef NN_REAL
#define NN_REAL float
#endif
typedef NN_REAL nn_real;

/* How a public kernel is defined.  By default `static inline`: the includer gets its
 * own copy, specialized to its constant arguments.  kernels/nn_kernels_lib.c defines
 * NNK_API empty to compile the library once as external functions, which nnc links
 * in.  With NNK_LINKED the includer sees only the prototypes (nn_kernels_api.h, made
 * from this file by the build) and calls that library: `nnc run` and `nnc build`
 * compile a model that way, so no kernel is compiled per model (docs/jit.md). */
#ifdef NNK_LINKED
#include "nn_kernels_api.h"
#else
#ifndef NNK_API
#define NNK_API static inline
#endif

/* Generated programs are built with -O2, whose "very cheap" vectorizer cost model
 * skips every loop that needs a scalar remainder, and OpenMP bodies see their shapes
 * as variables, so most kernel loops would stay scalar.  The kernels ask for the
 * dynamic cost model (what -O3 uses); push/pop keeps it off the generated code. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

/* ---------------------------------------------------------------- helpers */

/* Math at the precision of nn_real: expf for float, exp for double. */
#define nnk_exp_(x)   _Generic((x), float: expf, default: exp)(x)
#define nnk_log1p_(x) _Generic((x), float: log1pf, default: log1p)(x)
#define nnk_tanh_(x)  _Generic((x), float: tanhf, default: tanh)(x)
#define nnk_sqrt_(x)  _Generic((x), float: sqrtf, default: sqrt)(x)
#define nnk_expm1_(x) _Generic((x), float: expm1f, default: expm1)(x)
#define nnk_erfc_(x)  _Generic((x), float: erfcf, default: erfc)(x)

/* Elementwise loops below this length run on one thread: forking costs more. */
#define NNK_PAR_MIN 65536

/* Channel (column) blocks for per-column reductions over rows: each thread owns
 * whole blocks, so the sums are private and their order is fixed. */
#define NNK_COLBLK 64

static inline int nnk_min_(int a, int b) { return a < b ? a : b; }
static inline int nnk_max_(int a, int b) { return a > b ? a : b; }

/* Keras's backend.epsilon(): the clip bound of probability losses. */
#define NNK_PROB_EPS 1e-7

/* ---------------------------------------------------------------- GEMM */

/* C[M,N] (+)= op(A)[M,K] · op(B)[K,N], row-major.  op(A)=A stored [M,K], or if ta
 * stored [K,M]; op(B)=B stored [K,N], or if tb stored [N,K].
 *
 * Goto-style.  K is cut into slices of at most KC (sizes depend on K only, so every
 * output sums its products in the same order for any thread count).  The threads split
 * C's rows; for each column block and K slice each packs op(B) into NR-column panels
 * and its MR-row panels of op(A), and runs an MR×NR register-blocked micro-kernel over
 * them.  Panels are zero-padded, so edges need no special compute path; packing also
 * absorbs the transposes. */
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* The widest vector the target has: the micro-kernel's columns are two of them. */
#if defined(__AVX512F__)
#define NNK_VEC_BYTES 64
#elif defined(__AVX__)
#define NNK_VEC_BYTES 32
#else
#define NNK_VEC_BYTES 16
#endif
/* GCC/Clang vector extension; may_alias and element alignment so it can load and
 * store any nn_real array. */
typedef nn_real nnk_vec_ __attribute__((vector_size(NNK_VEC_BYTES), may_alias, aligned(sizeof(nn_real))));
#define NNK_VEC_LANES ((int)(NNK_VEC_BYTES / sizeof(nn_real)))

/* Lane masks of the vector compares (all ones or zero), and a select on them. */
typedef __typeof__(_Generic((nn_real)0, float: (int32_t)0, default: (int64_t)0)) nnk_lane_int_;
typedef nnk_lane_int_ nnk_mask_ __attribute__((vector_size(NNK_VEC_BYTES)));
static inline __attribute__((always_inline)) nnk_vec_ nnk_vsel_(nnk_mask_ m, nnk_vec_ a, nnk_vec_ b) {   /* m ? a : b */
    return (nnk_vec_)(((nnk_mask_)a & m) | ((nnk_mask_)b & ~m));
}

#define NNK_GEMM_MR 6                     /* the micro-kernel spells out exactly 6 rows */
#define NNK_GEMM_NR (2 * NNK_VEC_LANES)   /* 6×2 vector accumulators: 12 of 16/32 regs */
#define NNK_GEMM_KC 256                   /* a KC×NR panel of B stays in L1 */
#define NNK_GEMM_MC 144                   /* most rows of A per task (packed in L2) */
#define NNK_GEMM_NC 256                   /* most columns of B per block */
_Static_assert(NNK_GEMM_MC % NNK_GEMM_MR == 0, "MC must be a multiple of MR");
_Static_assert(NNK_GEMM_NC % NNK_GEMM_NR == 0, "NC must be a multiple of NR");

/* Below this many multiply-adds a GEMM runs on one thread: forking costs more. */
#define NNK_GEMM_PAR_MIN 100000.0

/* c[0..mr)[0..nr) (+)= the register tile; full tiles store straight from vectors. */
#define NNK_MICRO_ROW_(r) c##r##0 += a[r] * b0; c##r##1 += a[r] * b1;
#define NNK_MICRO_STORE_(r) do {                                                    \
        nnk_vec_ *q = (nnk_vec_ *)(c + (size_t)(r) * ldc);                         \
        nnk_vec_ *q1 = (nnk_vec_ *)(c + (size_t)(r) * ldc + NNK_VEC_LANES);         \
        if (overwrite) { *q = c##r##0; *q1 = c##r##1; }                             \
        else           { *q += c##r##0; *q1 += c##r##1; }                           \
    } while (0)
#define NNK_MICRO_SPILL_(r) do {                                                    \
        *(nnk_vec_ *)(t + (r) * NNK_GEMM_NR) = c##r##0;                              \
        *(nnk_vec_ *)(t + (r) * NNK_GEMM_NR + NNK_VEC_LANES) = c##r##1;              \
    } while (0)
/* The register tile into c: full tiles straight from the vectors, edges through t. */
#define NNK_MICRO_WRITE_() do {                                                      \
        if (mr == NNK_GEMM_MR && nr == NNK_GEMM_NR) {                                \
            NNK_MICRO_STORE_(0); NNK_MICRO_STORE_(1); NNK_MICRO_STORE_(2);           \
            NNK_MICRO_STORE_(3); NNK_MICRO_STORE_(4); NNK_MICRO_STORE_(5);           \
            break;                                                                   \
        }                                                                            \
        nn_real t[NNK_GEMM_MR * NNK_GEMM_NR];                                        \
        NNK_MICRO_SPILL_(0); NNK_MICRO_SPILL_(1); NNK_MICRO_SPILL_(2);               \
        NNK_MICRO_SPILL_(3); NNK_MICRO_SPILL_(4); NNK_MICRO_SPILL_(5);               \
        for (int r = 0; r < mr; r++) {                                               \
            nn_real *cr = c + (size_t)r * ldc;                                       \
            const nn_real *tr = t + r * NNK_GEMM_NR;                                 \
            if (overwrite) for (int j = 0; j < nr; j++) cr[j] = tr[j];               \
            else           for (int j = 0; j < nr; j++) cr[j] += tr[j];              \
        }                                                                            \
    } while (0)

/* A's element (r, k) is ap[r*rs + k*ks]: a packed panel (rs 1, ks MR) or op(A) read
 * in place (row-major: rs K, ks 1; transposed: rs 1, ks M).  bp: [kc][NR].
 * Writes the top-left mr×nr of the tile into C. */
static inline void nnk_gemm_micro_(int kc, const nn_real *restrict ap, size_t rs, size_t ks,
                                   const nn_real *restrict bp, nn_real *restrict c, int ldc,
                                   int mr, int nr, int overwrite) {
    nnk_vec_ c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    nnk_vec_ c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    const nn_real *a0 = ap, *a1 = ap + rs, *a2 = ap + 2 * rs, *a3 = ap + 3 * rs;
    const nn_real *a4 = ap + 4 * rs, *a5 = ap + 5 * rs;
    for (int k = 0; k < kc; k++) {
        size_t o = (size_t)k * ks;
        const nn_real a[NNK_GEMM_MR] = {a0[o], a1[o], a2[o], a3[o], a4[o], a5[o]};
        nnk_vec_ b0 = *(const nnk_vec_ *)(bp + (size_t)k * NNK_GEMM_NR);
        nnk_vec_ b1 = *(const nnk_vec_ *)(bp + (size_t)k * NNK_GEMM_NR + NNK_VEC_LANES);
        NNK_MICRO_ROW_(0) NNK_MICRO_ROW_(1) NNK_MICRO_ROW_(2)
        NNK_MICRO_ROW_(3) NNK_MICRO_ROW_(4) NNK_MICRO_ROW_(5)
    }
    NNK_MICRO_WRITE_();
}

/* Packs rows i0..i0+mc, cols k0..k0+kc of op(A) into MR-row panels: ap[p][k][r]. */
static inline void nnk_gemm_pack_a_(int ta, int M, int K, const nn_real *A, int i0, int mc,
                                    int k0, int kc, nn_real *restrict ap) {
    for (int p = 0; p < mc; p += NNK_GEMM_MR) {
        nn_real *dst = ap + (size_t)p * kc;
        int rows = nnk_min_(NNK_GEMM_MR, mc - p);
        if (ta) {
            for (int k = 0; k < kc; k++) {
                const nn_real *src = A + (size_t)(k0 + k) * M + i0 + p;
                nn_real *d = dst + (size_t)k * NNK_GEMM_MR;
                for (int r = 0; r < rows; r++) d[r] = src[r];
                for (int r = rows; r < NNK_GEMM_MR; r++) d[r] = 0;
            }
            continue;
        }
        for (int r = 0; r < rows; r++) {
            const nn_real *src = A + (size_t)(i0 + p + r) * K + k0;
            for (int k = 0; k < kc; k++) dst[(size_t)k * NNK_GEMM_MR + r] = src[k];
        }
        for (int r = rows; r < NNK_GEMM_MR; r++)
            for (int k = 0; k < kc; k++) dst[(size_t)k * NNK_GEMM_MR + r] = 0;
    }
}

/* Packs rows k0..k0+kc, cols j0..j0+NR of op(B) into one NR-column panel: bp[k][j]. */
static inline void nnk_gemm_pack_b_(int tb, int N, int K, const nn_real *B, int k0, int kc,
                                    int j0, nn_real *restrict bp) {
    int cols = nnk_min_(NNK_GEMM_NR, N - j0);
    for (int k = 0; k < kc; k++) {
        size_t kk = (size_t)(k0 + k);
        nn_real *d = bp + (size_t)k * NNK_GEMM_NR;
        if (!tb) {
            const nn_real *src = B + kk * N + j0;
            for (int j = 0; j < cols; j++) d[j] = src[j];
        } else {
            for (int j = 0; j < cols; j++) d[j] = B[(size_t)(j0 + j) * K + kk];
        }
        for (int j = cols; j < NNK_GEMM_NR; j++) d[j] = 0;
    }
}

/* s[j] += Σ_r g[r*ld + j] for j < cols (≤ NNK_GEMM_NR), the rows in order, each sum in
 * double: the bias gradient's arithmetic (nnk_bias_grad), so a weight gradient that sums
 * dy's columns as it streams them (fuse_bias_grad.c) gives the same bits. */
typedef double nnk_vd4_ __attribute__((vector_size(32), may_alias, aligned(sizeof(double))));
typedef nn_real nnk_vr4_ __attribute__((vector_size(4 * sizeof(nn_real)), may_alias, aligned(sizeof(nn_real))));
#define NNK_COLSUM_ADD_(q) if (V > q) a##q += __builtin_convertvector(row[q], nnk_vd4_)
#define NNK_COLSUM_IO_(q, dst, src) if (V > q) dst = src
static inline void nnk_colsum_(const nn_real *g, size_t ld, int rows, int cols, double *restrict s) {
    /* A whole panel of 8 to 32 columns: 2 to 8 named vectors of four double sums, so
     * they stay in registers. */
    enum { V = NNK_GEMM_NR % 4 == 0 && NNK_GEMM_NR <= 32 ? NNK_GEMM_NR / 4 : 0 };
    if (V != 0 && cols == NNK_GEMM_NR) {
        nnk_vd4_ *sv = (nnk_vd4_ *)s, a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        NNK_COLSUM_IO_(0, a0, sv[0]); NNK_COLSUM_IO_(1, a1, sv[1]); NNK_COLSUM_IO_(2, a2, sv[2]);
        NNK_COLSUM_IO_(3, a3, sv[3]); NNK_COLSUM_IO_(4, a4, sv[4]); NNK_COLSUM_IO_(5, a5, sv[5]);
        NNK_COLSUM_IO_(6, a6, sv[6]); NNK_COLSUM_IO_(7, a7, sv[7]);
        for (int r = 0; r < rows; r++) {
            const nnk_vr4_ *row = (const nnk_vr4_ *)(g + (size_t)r * ld);
            NNK_COLSUM_ADD_(0); NNK_COLSUM_ADD_(1); NNK_COLSUM_ADD_(2); NNK_COLSUM_ADD_(3);
            NNK_COLSUM_ADD_(4); NNK_COLSUM_ADD_(5); NNK_COLSUM_ADD_(6); NNK_COLSUM_ADD_(7);
        }
        NNK_COLSUM_IO_(0, sv[0], a0); NNK_COLSUM_IO_(1, sv[1], a1); NNK_COLSUM_IO_(2, sv[2], a2);
        NNK_COLSUM_IO_(3, sv[3], a3); NNK_COLSUM_IO_(4, sv[4], a4); NNK_COLSUM_IO_(5, sv[5], a5);
        NNK_COLSUM_IO_(6, sv[6], a6); NNK_COLSUM_IO_(7, sv[7], a7);
        return;
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) s[j] += g[(size_t)r * ld + j];
}

/* n items in `parts` near-equal blocks of a multiple of `unit`: the block size. */
static inline int nnk_split_(int n, int parts, int unit) {
    int per = (n + parts - 1) / parts;
    return (per + unit - 1) / unit * unit;
}

/* A contraction's epilogue (the fusion pass's bias + activation): applied to each output
 * tile as soon as its sum is complete, while it is in cache.  v = sum + bias[j], then the
 * activation, the same float operations bias_add and the activation kernel do, so fused
 * and unfused steps give the same bits.  NN_EPI_* are shared with the OpenCL library. */
#define NN_EPI_NONE 0
#define NN_EPI_RELU 1
#define NN_EPI_SIGMOID 2
#define NN_EPI_TANH 3
static inline nn_real nnk_sigmoid_(nn_real x);   /* with the activation kernels below */
typedef struct nnk_epi {
    const nn_real *bias;   /* per column, or NULL */
    int act;               /* NN_EPI_* */
    const nn_real *gy;     /* gradient epilogue (fuse_grad.c): an activation's output, */
    int gact;              /*   C's shape; C is multiplied by that NN_EPI_* activation's */
} nnk_epi;                 /*   derivative there (NULL: none) */

/* dy times the derivative of activation act at its output y: the one place these three
 * formulas are written.  The relu/sigmoid/tanh _bwd kernels, the fused gradients
 * (fuse_grad.c) and the pointwise chains (fuse_elementwise.c) all compute with it, so
 * they give the same bits. */
static inline nn_real nnk_act_grad_(int act, nn_real y, nn_real dy) {
    if (act == NN_EPI_RELU) return y > 0 ? dy : 0;
    if (act == NN_EPI_SIGMOID) return dy * y * ((nn_real)1 - y);
    if (act == NN_EPI_TANH) return dy * ((nn_real)1 - y * y);
    return dy;
}

/* The epilogue on rows [i0, i0+rows) and columns [j0, j0+cols) of C, at c. */
static inline void nnk_epi_rows_(const nnk_epi *e, nn_real *c, size_t ldc, int rows, int cols,
                                 int i0, int j0) {
    for (int r = 0; r < rows; r++) {
        nn_real *cr = c + (size_t)r * ldc;
        if (e->gy) {
            const nn_real *yr = e->gy + (size_t)(i0 + r) * ldc + j0;
            for (int j = 0; j < cols; j++) cr[j] = nnk_act_grad_(e->gact, yr[j], cr[j]);
        }
        if (e->bias)
            for (int j = 0; j < cols; j++) cr[j] += e->bias[j0 + j];
        if (e->act == NN_EPI_RELU)
            for (int j = 0; j < cols; j++) cr[j] = cr[j] > 0 ? cr[j] : 0;
        else if (e->act == NN_EPI_SIGMOID)
            for (int j = 0; j < cols; j++) cr[j] = nnk_sigmoid_(cr[j]);
        else if (e->act == NN_EPI_TANH)
            for (int j = 0; j < cols; j++) cr[j] = nnk_tanh_(cr[j]);
    }
}

/* C[M,N] (+)= op(A)·op(B), then the epilogue (NULL: none) on each finished tile.  With
 * colsum (B not transposed), colsum[j] += Σ_k B[k,j] too, in double in k order: each
 * B panel is summed by one of the threads that pack it, after packing each K slice (in
 * L1), the panels of a column block dealt round-robin among its packers. */
static inline void nnk_gemm_core_(int ta, int tb, int M, int N, int K, const nn_real *A,
                                  const nn_real *B, nn_real *C, int accumulate, const nnk_epi *epi,
                                  double *colsum) {
    if (M <= 0 && colsum)   /* no product, so no packing: the sums alone */
        for (int j0 = 0; j0 < N; j0 += NNK_GEMM_NR)
            nnk_colsum_(B + j0, (size_t)N, K, nnk_min_(NNK_GEMM_NR, N - j0), colsum + j0);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate) memset(C, 0, (size_t)M * N * sizeof(nn_real));
        if (epi) nnk_epi_rows_(epi, C, (size_t)N, M, N, 0, 0);
        return;
    }
    int par = (double)M * N * K >= NNK_GEMM_PAR_MIN;
    int threads = 1;
#ifdef _OPENMP
    if (par) threads = omp_get_max_threads();
#endif
    /* K slices from K alone (the sum order); row tiles and column blocks balanced for
     * the thread count (they only say who computes which outputs): rows while there
     * are enough for every thread, else (a Dense layer on one batch) columns too. */
    int kc_max = nnk_split_(K, (K + NNK_GEMM_KC - 1) / NNK_GEMM_KC, 1);
    int mtiles = (M + NNK_GEMM_MC - 1) / NNK_GEMM_MC;
    int nblocks = (N + NNK_GEMM_NC - 1) / NNK_GEMM_NC;
    if (M >= threads * NNK_GEMM_MR * 4) {
        mtiles = (mtiles + threads - 1) / threads * threads;
    } else {
        int want = (threads + mtiles - 1) / mtiles, most = (N + NNK_GEMM_NR - 1) / NNK_GEMM_NR;
        nblocks = nnk_max_(nblocks, nnk_min_(want, most));
    }
    int mc_max = nnk_split_(M, mtiles, NNK_GEMM_MR);
    mtiles = (M + mc_max - 1) / mc_max;
    int nc_max = nnk_split_(N, nblocks, NNK_GEMM_NR);
    nblocks = (N + nc_max - 1) / nc_max;
    int tiles = nblocks * mtiles;   /* tile t: column block t / mtiles, row tile t % mtiles */
    /* Each thread owns a contiguous run of tiles for the whole product and packs the B
     * blocks they need itself, so threads never wait for one another inside it (a
     * barrier is a sleep and a wake-up when waiting is passive, and a stall when
     * another process holds a core).  A B block packed by two threads costs 1/mc of
     * the multiply-adds it feeds. */
    #pragma omp parallel if (par && tiles > 1)
    {
        _Alignas(64) nn_real ap[NNK_GEMM_MC * NNK_GEMM_KC]; /* this thread's packed A */
        _Alignas(64) nn_real bp[NNK_GEMM_KC * NNK_GEMM_NC]; /* and B block */
        int tid = 0, nth = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num(), nth = omp_get_num_threads();
#endif
        int per = (tiles + nth - 1) / nth;
        int t_lo = nnk_min_(tiles, tid * per), t_hi = nnk_min_(tiles, t_lo + per);
        for (int blk = t_lo / mtiles; t_lo < t_hi && blk <= (t_hi - 1) / mtiles; blk++) {
            int j0 = blk * nc_max, nc = nnk_min_(nc_max, N - j0);
            int panels = (nc + NNK_GEMM_NR - 1) / NNK_GEMM_NR;
            int mt_lo = nnk_max_(t_lo - blk * mtiles, 0), mt_hi = nnk_min_(t_hi - blk * mtiles, mtiles);
            /* The threads that pack this block own its tiles: ids first..last. */
            int first = blk * mtiles / per, packers = ((blk + 1) * mtiles - 1) / per - first + 1;
            for (int k0 = 0; k0 < K; k0 += kc_max) {
                int kc = nnk_min_(kc_max, K - k0);
                int overwrite = (k0 == 0 && !accumulate);
                for (int p = 0; p < panels; p++) {
                    int jp0 = j0 + p * NNK_GEMM_NR;
                    nnk_gemm_pack_b_(tb, N, K, B, k0, kc, jp0, bp + (size_t)p * NNK_GEMM_NR * kc);
                    if (colsum && p % packers == tid - first)
                        nnk_colsum_(B + (size_t)k0 * N + jp0, (size_t)N, kc, nnk_min_(NNK_GEMM_NR, N - jp0),
                                    colsum + jp0);
                }
                for (int mt = mt_lo; mt < mt_hi; mt++) {
                    int i0 = mt * mc_max, mc = nnk_min_(mc_max, M - i0);
                    /* Whole MR-row panels read op(A) in place, which costs less than
                     * packing when few B panels reuse them; a transposed A used by many
                     * is packed (its in-place rows are a stride apart), as is a partial
                     * last panel (with zero rows). */
                    int full = (!ta || panels <= 4) ? mc / NNK_GEMM_MR * NNK_GEMM_MR : 0;
                    if (full < mc) nnk_gemm_pack_a_(ta, M, K, A, i0 + full, mc - full, k0, kc, ap);
                    for (int p = 0; p < panels; p++) {
                        int jp = p * NNK_GEMM_NR;
                        for (int ip = 0; ip < mc; ip += NNK_GEMM_MR) {
                            const nn_real *a = ap;   /* packed: rows 1 apart, k MR apart */
                            size_t rs = 1, ks = NNK_GEMM_MR;
                            if (ip < full) {
                                size_t i = (size_t)(i0 + ip);
                                a = ta ? A + (size_t)k0 * M + i : A + i * K + k0;
                                rs = ta ? 1 : (size_t)K;
                                ks = ta ? (size_t)M : 1;
                            } else {
                                a = ap + (size_t)(ip - full) * kc;
                            }
                            nnk_gemm_micro_(kc, a, rs, ks, bp + (size_t)jp * kc,
                                            C + (size_t)(i0 + ip) * N + j0 + jp, N,
                                            nnk_min_(NNK_GEMM_MR, mc - ip),
                                            nnk_min_(NNK_GEMM_NR, nc - jp), overwrite);
                            if (epi && k0 + kc == K)
                                nnk_epi_rows_(epi, C + (size_t)(i0 + ip) * N + j0 + jp, (size_t)N,
                                              nnk_min_(NNK_GEMM_MR, mc - ip),
                                              nnk_min_(NNK_GEMM_NR, nc - jp), i0 + ip, j0 + jp);
                        }
                    }
                }
            }
        }
    }
}

static inline void nnk_gemm_epi_(int ta, int tb, int M, int N, int K, const nn_real *A,
                                 const nn_real *B, nn_real *C, int accumulate, const nnk_epi *epi) {
    nnk_gemm_core_(ta, tb, M, N, K, A, B, C, accumulate, epi, NULL);
}

NNK_API void nnk_gemm(int ta, int tb, int M, int N, int K, const nn_real *A,
                            const nn_real *B, nn_real *C, int accumulate) {
    nnk_gemm_epi_(ta, tb, M, N, K, A, B, C, accumulate, NULL);
}

/* C = op(A)·op(B) + bias, then the activation: a Dense layer's forward pass in one. */
NNK_API void nnk_gemm_bias_act(int ta, int tb, int M, int N, int K, const nn_real *A,
                                     const nn_real *B, const nn_real *bias, int act, nn_real *C) {
    nnk_epi e = {bias, act, NULL, NN_EPI_NONE};
    nnk_gemm_epi_(ta, tb, M, N, K, A, B, C, 0, &e);
}

/* C = (op(A)·op(B)) times act'(y) at each element, y the output of activation act with
 * C's shape: a data gradient and the activation gradient before it in one pass. */
NNK_API void nnk_gemm_act_grad(int ta, int tb, int M, int N, int K, const nn_real *A,
                                     const nn_real *B, const nn_real *y, int act, nn_real *C) {
    nnk_epi e = {NULL, NN_EPI_NONE, y, act};
    nnk_gemm_epi_(ta, tb, M, N, K, A, B, C, 0, &e);
}

/* ---------------------------------------------------------------- bias */

/* y[r,c] += b[c] */
NNK_API void nnk_bias_add(int rows, int cols, nn_real *y, const nn_real *b) {
    #pragma omp parallel for schedule(static) if ((int64_t)rows * cols >= NNK_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        nn_real *yr = y + (size_t)r * cols;
        for (int c = 0; c < cols; c++) yr[c] += b[c];
    }
}

/* db[c] = Σ_r dy[r,c], summed in double in row order.  Threads take blocks of 16
 * columns (a convolution's 32 or 64 channels still split), each a whole-column sum. */
#define NNK_BIAS_COLBLK 16
NNK_API void nnk_bias_grad(int rows, int cols, const nn_real *dy, nn_real *db) {
    #pragma omp parallel for schedule(static) if ((int64_t)rows * cols >= NNK_PAR_MIN)
    for (int c0 = 0; c0 < cols; c0 += NNK_BIAS_COLBLK) {
        int cb = nnk_min_(NNK_BIAS_COLBLK, cols - c0);
        double s[NNK_BIAS_COLBLK] = {0};
        if (cb == NNK_BIAS_COLBLK) {   /* four vectors of four double sums */
            typedef double vd4 __attribute__((vector_size(32)));
            typedef nn_real vr4 __attribute__((vector_size(4 * sizeof(nn_real)), may_alias, aligned(sizeof(nn_real))));
            vd4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int r = 0; r < rows; r++) {
                const vr4 *row = (const vr4 *)(dy + (size_t)r * cols + c0);
                a0 += __builtin_convertvector(row[0], vd4);
                a1 += __builtin_convertvector(row[1], vd4);
                a2 += __builtin_convertvector(row[2], vd4);
                a3 += __builtin_convertvector(row[3], vd4);
            }
            memcpy(s, &a0, 32), memcpy(s + 4, &a1, 32), memcpy(s + 8, &a2, 32), memcpy(s + 12, &a3, 32);
        } else {
            for (int r = 0; r < rows; r++) {
                const nn_real *row = dy + (size_t)r * cols + c0;
                for (int c = 0; c < cb; c++) s[c] += row[c];
            }
        }
        for (int c = 0; c < cb; c++) db[c0 + c] = (nn_real)s[c];
    }
}

/* A weight gradient with its layer's bias gradient (fuse_bias_grad.c): db[c] = Σ_r dy[r,c]
 * summed while the weight gradient streams dy, in double in row order as nnk_bias_grad
 * does (the same bits).  The sums live on the stack up to NNK_COLSUM_STACK columns, else
 * on the heap; where that fails, nnk_bias_grad computes db after all. */
#define NNK_COLSUM_STACK 1024
static inline double *nnk_colsum_begin_(int cols, double *stack) {
    double *s = cols <= NNK_COLSUM_STACK ? stack : (double *)malloc((size_t)cols * sizeof *s);
    if (s) memset(s, 0, (size_t)nnk_max_(cols, 0) * sizeof *s);
    return s;
}
static inline void nnk_colsum_end_(double *s, double *stack, int rows, int cols, const nn_real *dy,
                                   nn_real *db) {
    if (!s) {
        nnk_bias_grad(rows, cols, dy, db);
        return;
    }
    for (int c = 0; c < cols; c++) db[c] = (nn_real)s[c];
    if (s != stack) free(s);
}

/* dW[M,N] = Aᵀ·dy (A stored [K,M], dy [K,N]) and db[N] = Σ_k dy[k,:]: a Dense layer's
 * weight and bias gradients from one pass over dy (summed as its panels are packed). */
NNK_API void nnk_gemm_tn_bias_grad(int M, int N, int K, const nn_real *A, const nn_real *dy,
                                         nn_real *dw, nn_real *db) {
    double stack[NNK_COLSUM_STACK];
    double *s = nnk_colsum_begin_(N, stack);
    nnk_gemm_core_(1, 0, M, N, K, A, dy, dw, 0, NULL, s);
    nnk_colsum_end_(s, stack, K, N, dy, db);
}

/* ---------------------------------------------------------------- conv2d */

/* Convolution as GEMM over an im2col matrix cols[n*OH*OW, KH*KW*C] whose column
 * order (kh, kw, c) matches the HWIO kernel flattened to [KH*KW*C, F]:
 *   forward      y[n*OH*OW, F]      = cols · w
 *   filter grad  dw[KH*KW*C, F]     = colsᵀ · dy
 *   data grad    dcols              = dy · wᵀ, then scattered back (col2im).
 * A 1×1, stride-1, unpadded conv needs no cols: x already is that matrix.
 * Pads are resolved by the caller (TF 'SAME': top/left = total/2). */

static inline int nnk_conv2d_is_pointwise_(int KH, int KW, int SH, int SW, int PT, int PL) {
    return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
}

/* The cols matrix is built for a chunk of samples at a time, so scratch stays under
 * NNK_CONV_WORK_CAP elements (8 MB in float: at 32 MB, fashion_cnn's workspace at batch
 * 128 was 17 MB and its arena 46 MB, past the 32 MB last-level cache of the machine it
 * was measured on; now 6 and 34) however large the images or batch; a sample too big
 * for the cap is done alone.  Chunks are of equal size.  The chunk depends only on the
 * shapes, so results do not depend on the thread count. */
#ifndef NNK_CONV_WORK_CAP
#define NNK_CONV_WORK_CAP ((size_t)1 << 21)
#endif

/* The most samples a chunk may hold: the cap's worth, at least one. */
static inline int nnk_conv2d_chunk_max_(int n, int OH, int OW, int KH, int KW, int C) {
    size_t per_sample = (size_t)OH * OW * KH * KW * C;
    size_t chunk = per_sample ? NNK_CONV_WORK_CAP / per_sample : (size_t)n;
    if (chunk < 1) chunk = 1;
    return chunk < (size_t)n ? (int)chunk : n;
}

/* The chunk a batch of n is cut into: as few chunks as the cap allows, of equal size.
 * Never more than nnk_conv2d_chunk_max_ for any smaller batch either, which is what the
 * workspace is sized by (a partial last batch may have chunks larger than a full one's). */
static inline int nnk_conv2d_chunk_(int n, int OH, int OW, int KH, int KW, int C) {
    int most = nnk_conv2d_chunk_max_(n, OH, OW, KH, KW, C);
    if (most >= n) return n;
    int chunks = (n + most - 1) / most;
    return (n + chunks - 1) / chunks;
}

/* Scratch elements the three conv functions need for batches of up to n samples.
 * 1×1 stride-1 convs need none (OH == H there means the pads are 0). */
NNK_API size_t nnk_conv2d_work_elems(int n, int H, int W, int C, int KH, int KW, int F,
                                           int SH, int SW, int OH, int OW) {
    if (KH == 1 && KW == 1 && SH == 1 && SW == 1 && OH == H && OW == W) return 0;
    return (size_t)nnk_conv2d_chunk_max_(n, OH, OW, KH, KW, C) * OH * OW * KH * KW * C;
}

/* Windows of at most this many elements (first layers: C = 1..3 under a 3×3 kernel) are
 * convolved directly when the filters fill whole vectors: as a GEMM, K would be too
 * short to pay for im2col and packing. */
#define NNK_CONV_DIRECT_MAX_K 32

static inline int nnk_conv2d_is_direct_(int KH, int KW, int C, int F) {
    return KH * KW * C <= NNK_CONV_DIRECT_MAX_K && F % NNK_VEC_LANES == 0;
}

/* Output columns ow whose input column ow*SW - PL + kw lies in [0, W): [*lo, *hi). */
static inline void nnk_conv_cols_(int OW, int W, int SW, int PL, int kw, int *lo, int *hi) {
    int off = kw - PL;                                   /* iw = ow*SW + off */
    *lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
    *hi = W - off <= 0 ? 0 : nnk_min_(OW, (W - off - 1) / SW + 1);
    if (*hi < *lo) *hi = *lo;
}

/* y[b,oh,ow,:] = Σ_(kh,kw,c) x[b,ih,iw,c] w[kh,kw,c,:], then the epilogue (NULL: none).
 * Register tiles of NNK_DIRECT_TW output columns × two filter vectors sum the taps in
 * (kh, kw, c) order from 0, in registers, and are stored once through the epilogue.
 * Tiles whose windows cross the padding take the taps one column at a time, skipping
 * padding cells (their terms are zero); the sums are the same either way. */
#define NNK_DIRECT_TW 6
#define NNK_DIRECT_TAP_(t) do {                                                     \
        nn_real xv_ = xp[(t) * sx];                                                 \
        a0##t += xv_ * w0; a1##t += xv_ * w1;                                       \
    } while (0)
#define NNK_DIRECT_PUT_(t) do {                                                     \
        nn_real *yo_ = yt + (size_t)(t) * ys;                                       \
        *(nnk_vec_ *)yo_ = nnk_epi_vec_(epi, a0##t, b0);                            \
        if (fpair) *(nnk_vec_ *)(yo_ + NNK_VEC_LANES) = nnk_epi_vec_(epi, a1##t, b1); \
    } while (0)

/* The epilogue on a vector, where it is bias and relu (or none): nnk_epi_rows_'s
 * expressions.  Others are left to nnk_epi_rows_ (nnk_epi_in_vec_ says which). */
static inline int nnk_epi_in_vec_(const nnk_epi *e) {
    return !e || (!e->gy && (e->act == NN_EPI_NONE || e->act == NN_EPI_RELU));
}
static inline nnk_vec_ nnk_epi_vec_(const nnk_epi *e, nnk_vec_ v, nnk_vec_ bias) {
    if (!e || !nnk_epi_in_vec_(e)) return v;
    if (e->bias) v += bias;
    if (e->act == NN_EPI_RELU) v = nnk_vsel_(v > (nnk_vec_){0}, v, (nnk_vec_){0});
    return v;
}

/* One whole tile inside the input: twelve named accumulators, so they stay in registers. */
static inline __attribute__((always_inline)) void nnk_conv2d_direct_tile_(int W, int C, int KW, int F, int SW, int PL, int kh0,
                                           int kh1, int ow0, int f0, int fpair,
                                           const nn_real *xrow0, const nn_real *w, nn_real *yt,
                                           size_t ys, const nnk_epi *epi) {
    nnk_vec_ a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a04 = {0}, a05 = {0};
    nnk_vec_ a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0}, a14 = {0}, a15 = {0};
    size_t sx = (size_t)SW * C;    /* from one output column's window to the next's */
    int row = KW * C;              /* a window row's cells (kw, c) lie contiguously in x */
    for (int kh = kh0; kh < kh1; kh++) {
        const nn_real *xr = xrow0 + (size_t)kh * W * C + ((size_t)ow0 * SW - PL) * C;
        const nn_real *wr = w + (size_t)kh * row * F + f0;
        for (int j = 0; j < row; j++, wr += F) {
            nnk_vec_ w0 = *(const nnk_vec_ *)wr;
            nnk_vec_ w1 = fpair ? *(const nnk_vec_ *)(wr + NNK_VEC_LANES) : w0;
            const nn_real *xp = xr + j;
            NNK_DIRECT_TAP_(0); NNK_DIRECT_TAP_(1); NNK_DIRECT_TAP_(2);
            NNK_DIRECT_TAP_(3); NNK_DIRECT_TAP_(4); NNK_DIRECT_TAP_(5);
        }
    }
    nnk_vec_ b0 = {0}, b1 = {0};
    if (epi && epi->bias) {
        b0 = *(const nnk_vec_ *)(epi->bias + f0);
        if (fpair) b1 = *(const nnk_vec_ *)(epi->bias + f0 + NNK_VEC_LANES);
    }
    NNK_DIRECT_PUT_(0); NNK_DIRECT_PUT_(1); NNK_DIRECT_PUT_(2);
    NNK_DIRECT_PUT_(3); NNK_DIRECT_PUT_(4); NNK_DIRECT_PUT_(5);
}

/* Cell (oh, ow) of sample xb's convolution at filters f0.. (and f0 + LANES.. with fpair):
 * the taps in (kh, kw, c) order from 0, padding cells skipped.  Both sums are updated in
 * one expression each, unconditionally, as in nnk_conv2d_direct_tile_: a product under
 * `if` may stay unfused into a multiply-add (gcc), and the edge cells' bits would differ
 * from the tiles'. */
static inline void nnk_conv_cell_(int H, int W, int C, int KH, int KW, int F, int SH, int SW, int PT, int PL,
                                  const nn_real *xb, int oh, int ow, const nn_real *w, int f0, int fpair,
                                  nnk_vec_ *s0, nnk_vec_ *s1) {
    nnk_vec_ a = {0}, b = {0};
    for (int kh = 0; kh < KH; kh++) {
        int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
            int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W) continue;
            for (int c = 0; c < C; c++) {
                const nn_real *wr = w + (((size_t)kh * KW + kw) * C + c) * F + f0;
                nn_real xv = xb[((size_t)ih * W + iw) * C + c];
                nnk_vec_ w0 = *(const nnk_vec_ *)wr, w1 = fpair ? *(const nnk_vec_ *)(wr + NNK_VEC_LANES) : w0;
                a += xv * w0;
                b += xv * w1;
            }
        }
    }
    *s0 = a;
    *s1 = b;
}

/* Output row oh of sample xb for the filters [f0, f0 + fstep): yrow is the row's first
 * cell at f0, ys the distance between cells (F in y; a pooled caller's buffer packs them). */
static inline void nnk_conv2d_direct_row_(int H, int W, int C, int KH, int KW, int F, int SH,
                                          int SW, int PT, int PL, int OW, const nn_real *xb,
                                          int oh, int f0, int fpair, const nn_real *w,
                                          nn_real *yrow, size_t ys, const nnk_epi *epi) {
    int fstep = (fpair ? 2 : 1) * NNK_VEC_LANES;
    const nn_real *xrow0 = xb + ((size_t)oh * SH - PT) * W * C;   /* row of kh = 0 */
    int kh0 = nnk_max_(0, PT - oh * SH), kh1 = nnk_min_(KH, H + PT - oh * SH);
    for (int ow0 = 0; ow0 < OW; ow0 += NNK_DIRECT_TW) {
        int tw = nnk_min_(NNK_DIRECT_TW, OW - ow0);
        int inside = tw == NNK_DIRECT_TW && ow0 * SW - PL >= 0 &&
                     (ow0 + tw - 1) * SW - PL + KW <= W;
        nn_real *yt = yrow + (size_t)ow0 * ys;
        if (inside) {
            if (fpair)   /* a constant in each copy: no test in the tap loop */
                nnk_conv2d_direct_tile_(W, C, KW, F, SW, PL, kh0, kh1, ow0, f0, 1, xrow0, w, yt, ys, epi);
            else
                nnk_conv2d_direct_tile_(W, C, KW, F, SW, PL, kh0, kh1, ow0, f0, 0, xrow0, w, yt, ys, epi);
        } else {                 /* column by column, padding cells skipped */
            for (int t = 0; t < tw; t++) {
                nnk_vec_ s0, s1;
                nnk_conv_cell_(H, W, C, KH, KW, F, SH, SW, PT, PL, xb, oh, ow0 + t, w, f0, fpair, &s0, &s1);
                *(nnk_vec_ *)(yt + (size_t)t * ys) = s0;
                if (fpair) *(nnk_vec_ *)(yt + (size_t)t * ys + NNK_VEC_LANES) = s1;
            }
        }
        if (epi && !(inside && nnk_epi_in_vec_(epi)))   /* gy is NULL: the row index is unused */
            nnk_epi_rows_(epi, yt, ys, tw, fstep, 0, f0);
    }
}

static inline void nnk_conv2d_direct_fwd_(int n, int H, int W, int C, int KH, int KW, int F,
                                          int SH, int SW, int PT, int PL, int OH, int OW,
                                          const nn_real *x, const nn_real *w, nn_real *y,
                                          const nnk_epi *epi) {
    int fpair = F % (2 * NNK_VEC_LANES) == 0, fstep = (fpair ? 2 : 1) * NNK_VEC_LANES;
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)n * OH * OW * F * KH * KW * C >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        for (int oh = 0; oh < OH; oh++) {
            nn_real *yrow = y + ((size_t)b * OH + oh) * OW * F;
            for (int f0 = 0; f0 < F; f0 += fstep)
                nnk_conv2d_direct_row_(H, W, C, KH, KW, F, SH, SW, PT, PL, OW, x + (size_t)b * H * W * C,
                                       oh, f0, fpair, w, yrow + f0, (size_t)F, epi);
        }
    }
}

/* dw[kh,kw,c,:] = Σ_(b,oh,ow) x[b,ih,iw,c] dy[b,oh,ow,:].  Threads split the filters
 * (two vectors of them per task where F allows), never the sum.  Each output row's
 * sum is split over its columns mod 4 (four independent chains per filter vector),
 * added pairwise, then added to the total in row order. */
typedef nnk_vec_ nnk_direct_dw_acc_[2][NNK_CONV_DIRECT_MAX_K];

/* Adds output row oh's terms to acc: grow is dy's row at the task's filters, gs the
 * distance between its cells (F in dy; a pooled caller's buffer packs them). */
static inline void nnk_conv2d_direct_dw_row_(int H, int W, int C, int KH, int KW, int SH, int SW,
                                             int PT, int PL, int OW, const nn_real *xb, int oh,
                                             const nn_real *grow, size_t gs, int fpair,
                                             nnk_direct_dw_acc_ acc) {
    for (int kh = 0; kh < KH; kh++) {
        int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H) continue;
        const nn_real *xrow = xb + (size_t)ih * W * C;
        for (int kw = 0; kw < KW; kw++) {
            int lo, hi;
            nnk_conv_cols_(OW, W, SW, PL, kw, &lo, &hi);
            for (int c = 0; c < C; c++) {
                nnk_vec_ s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
                nnk_vec_ t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};
                const nn_real *xc = xrow + (size_t)(kw - PL) * C + c;
                int ow = lo;
                for (; ow + 3 < hi; ow += 4) {
                    const nn_real *g = grow + (size_t)ow * gs;
                    nn_real x0 = xc[(size_t)ow * SW * C], x1 = xc[(size_t)(ow + 1) * SW * C];
                    nn_real x2 = xc[(size_t)(ow + 2) * SW * C], x3 = xc[(size_t)(ow + 3) * SW * C];
                    s0 += x0 * *(const nnk_vec_ *)g;
                    s1 += x1 * *(const nnk_vec_ *)(g + gs);
                    s2 += x2 * *(const nnk_vec_ *)(g + 2 * gs);
                    s3 += x3 * *(const nnk_vec_ *)(g + 3 * gs);
                    if (fpair) {
                        t0 += x0 * *(const nnk_vec_ *)(g + NNK_VEC_LANES);
                        t1 += x1 * *(const nnk_vec_ *)(g + gs + NNK_VEC_LANES);
                        t2 += x2 * *(const nnk_vec_ *)(g + 2 * gs + NNK_VEC_LANES);
                        t3 += x3 * *(const nnk_vec_ *)(g + 3 * gs + NNK_VEC_LANES);
                    }
                }
                for (; ow < hi; ow++) {   /* both sums unconditionally: see nnk_conv_cell_ */
                    const nn_real *g = grow + (size_t)ow * gs;
                    nn_real x0 = xc[(size_t)ow * SW * C];
                    nnk_vec_ g0 = *(const nnk_vec_ *)g, g1 = fpair ? *(const nnk_vec_ *)(g + NNK_VEC_LANES) : g0;
                    s0 += x0 * g0;
                    t0 += x0 * g1;
                }
                int k = (kh * KW + kw) * C + c;
                acc[0][k] += (s0 + s1) + (s2 + s3);
                if (fpair) acc[1][k] += (t0 + t1) + (t2 + t3);
            }
        }
    }
}

static inline void nnk_conv2d_direct_dw_store_(int kdim, int F, int f0, int fpair,
                                               nnk_direct_dw_acc_ acc, nn_real *dw) {
    for (int k = 0; k < kdim; k++) {
        *(nnk_vec_ *)(dw + (size_t)k * F + f0) = acc[0][k];
        if (fpair) *(nnk_vec_ *)(dw + (size_t)k * F + f0 + NNK_VEC_LANES) = acc[1][k];
    }
}

static inline void nnk_conv2d_direct_bwd_filter_(int n, int H, int W, int C, int KH, int KW,
                                                 int F, int SH, int SW, int PT, int PL, int OH,
                                                 int OW, const nn_real *x, const nn_real *dy,
                                                 nn_real *dw, double *colsum) {
    int kdim = KH * KW * C;
    int fpair = F % (2 * NNK_VEC_LANES) == 0, fstep = (fpair ? 2 : 1) * NNK_VEC_LANES;
    #pragma omp parallel for schedule(static) if ((int64_t)n * OH * OW * F * kdim >= NNK_PAR_MIN)
    for (int f0 = 0; f0 < F; f0 += fstep) {
        nnk_direct_dw_acc_ acc;
        for (int k = 0; k < kdim; k++) acc[0][k] = acc[1][k] = (nnk_vec_){0};
        for (int b = 0; b < n; b++)
            for (int oh = 0; oh < OH; oh++) {
                const nn_real *grow = dy + ((size_t)b * OH + oh) * OW * F + f0;
                if (colsum) nnk_colsum_(grow, (size_t)F, OW, fstep, colsum + f0);   /* the bias gradient */
                nnk_conv2d_direct_dw_row_(H, W, C, KH, KW, SH, SW, PT, PL, OW, x + (size_t)b * H * W * C, oh, grow,
                                          (size_t)F, fpair, acc);
            }
        nnk_conv2d_direct_dw_store_(kdim, F, f0, fpair, acc, dw);
    }
}

static inline void nnk_im2col_(int n, int H, int W, int C, int KH, int KW, int SH, int SW,
                               int PT, int PL, int OH, int OW, const nn_real *x, nn_real *cols) {
    size_t kdim = (size_t)KH * KW * C;
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)n * OH * OW * kdim >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                nn_real *dst = cols + (((size_t)b * OH + oh) * OW + ow) * kdim;
                for (int kh = 0; kh < KH; kh++) {
                    int ih = oh * SH - PT + kh;
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = ow * SW - PL + kw;
                        nn_real *d = dst + ((size_t)kh * KW + kw) * C;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
                            for (int c = 0; c < C; c++) d[c] = 0;
                        } else {
                            const nn_real *s = x + (((size_t)b * H + ih) * W + iw) * C;
                            for (int c = 0; c < C; c++) d[c] = s[c];
                        }
                    }
                }
            }
        }
    }
}

/* dx = 0; dx[window cells] += cols rows.  One sample per task: windows overlap
 * within a sample, never across samples. */
static inline void nnk_col2im_(int n, int H, int W, int C, int KH, int KW, int SH, int SW,
                               int PT, int PL, int OH, int OW, const nn_real *cols, const nn_real *y,
                               int act, nn_real *dx) {
    size_t kdim = (size_t)KH * KW * C;
    #pragma omp parallel for schedule(static) if ((int64_t)n * OH * OW * kdim >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        nn_real *dxb = dx + (size_t)b * H * W * C;
        memset(dxb, 0, (size_t)H * W * C * sizeof(nn_real));
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                const nn_real *src = cols + (((size_t)b * OH + oh) * OW + ow) * kdim;
                for (int kh = 0; kh < KH; kh++) {
                    int ih = oh * SH - PT + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = ow * SW - PL + kw;
                        if (iw < 0 || iw >= W) continue;
                        const nn_real *s = src + ((size_t)kh * KW + kw) * C;
                        nn_real *d = dxb + ((size_t)ih * W + iw) * C;
                        for (int c = 0; c < C; c++) d[c] += s[c];
                    }
                }
            }
        }
        if (y) {   /* the gradient through the activation before, while dxb is in cache */
            const nn_real *yb = y + (size_t)b * H * W * C;
            for (size_t i = 0; i < (size_t)H * W * C; i++) dxb[i] = nnk_act_grad_(act, yb[i], dxb[i]);
        }
    }
}

/* y[n,OH,OW,F] = conv(x[n,H,W,C], w[KH,KW,C,F]); no bias. */
/* y = conv(x, w) + bias, then the activation (bias NULL and NN_EPI_NONE: the plain
 * convolution).  The GEMM paths apply the epilogue per finished tile; the direct path
 * (first layers) in one pass over y after it. */
NNK_API void nnk_conv2d_fwd_bias_act(int n, int H, int W, int C, int KH, int KW, int F,
                                           int SH, int SW, int PT, int PL, int OH, int OW,
                                           const nn_real *x, const nn_real *w, const nn_real *bias,
                                           int act, nn_real *y, nn_real *work) {
    int rows = n * OH * OW, kdim = KH * KW * C;
    nnk_epi e = {bias, act, NULL, NN_EPI_NONE};
    const nnk_epi *epi = bias || act != NN_EPI_NONE ? &e : NULL;
    if (nnk_conv2d_is_pointwise_(KH, KW, SH, SW, PT, PL)) {
        nnk_gemm_epi_(0, 0, rows, F, C, x, w, y, 0, epi);
        return;
    }
    if (nnk_conv2d_is_direct_(KH, KW, C, F)) {
        nnk_conv2d_direct_fwd_(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, x, w, y, epi);
        return;
    }
    int chunk = nnk_conv2d_chunk_(n, OH, OW, KH, KW, C);
    for (int b0 = 0; b0 < n; b0 += chunk) {
        int nb = nnk_min_(chunk, n - b0);
        nnk_im2col_(nb, H, W, C, KH, KW, SH, SW, PT, PL, OH, OW, x + (size_t)b0 * H * W * C, work);
        nnk_gemm_epi_(0, 0, nb * OH * OW, F, kdim, work, w, y + (size_t)b0 * OH * OW * F, 0, epi);
    }
}

NNK_API void nnk_conv2d_fwd(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                  int SW, int PT, int PL, int OH, int OW, const nn_real *x,
                                  const nn_real *w, nn_real *y, nn_real *work) {
    nnk_conv2d_fwd_bias_act(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, x, w, NULL, NN_EPI_NONE, y,
                            work);
}

/* dx[n,H,W,C] = ∂(Σ dy·y)/∂x; cells no window covers get 0.  With xact (not NULL),
 * the output of activation act that x is, dx is carried through that activation too
 * (fuse_grad.c): the activation's backward kernel in the same pass. */
NNK_API void nnk_conv2d_bwd_data_act(int n, int H, int W, int C, int KH, int KW, int F,
                                           int SH, int SW, int PT, int PL, int OH, int OW,
                                           const nn_real *dy, const nn_real *w, const nn_real *xact,
                                           int act, nn_real *dx, nn_real *work) {
    int rows = n * OH * OW, kdim = KH * KW * C;
    if (nnk_conv2d_is_pointwise_(KH, KW, SH, SW, PT, PL)) {
        nnk_epi e = {NULL, NN_EPI_NONE, xact, act};
        nnk_gemm_epi_(0, 1, rows, C, F, dy, w, dx, 0, xact ? &e : NULL);
        return;
    }
    int chunk = nnk_conv2d_chunk_(n, OH, OW, KH, KW, C);
    for (int b0 = 0; b0 < n; b0 += chunk) {
        int nb = nnk_min_(chunk, n - b0);
        nnk_gemm(0, 1, nb * OH * OW, kdim, F, dy + (size_t)b0 * OH * OW * F, w, work, 0);
        nnk_col2im_(nb, H, W, C, KH, KW, SH, SW, PT, PL, OH, OW, work,
                    xact ? xact + (size_t)b0 * H * W * C : NULL, act, dx + (size_t)b0 * H * W * C);
    }
}

NNK_API void nnk_conv2d_bwd_data(int n, int H, int W, int C, int KH, int KW, int F,
                                       int SH, int SW, int PT, int PL, int OH, int OW,
                                       const nn_real *dy, const nn_real *w, nn_real *dx,
                                       nn_real *work) {
    nnk_conv2d_bwd_data_act(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, dy, w, NULL, NN_EPI_NONE,
                            dx, work);
}

/* dw[KH,KW,C,F] = ∂(Σ dy·y)/∂w, summed over the batch (overwritten, not accumulated);
 * with colsum, colsum[f] += Σ_rows dy[:,f] (nnk_colsum_) from the same pass over dy.
 * With cols (not NULL), im2col's matrix of the whole batch that the forward pass kept
 * (nnk_conv2d_fwd_cols_bias_act): no im2col here, the same chunks and so the same bits. */
static inline void nnk_conv2d_bwd_filter_core_(int n, int H, int W, int C, int KH, int KW, int F,
                                               int SH, int SW, int PT, int PL, int OH, int OW,
                                               const nn_real *x, const nn_real *cols, const nn_real *dy,
                                               nn_real *dw, nn_real *work, double *colsum) {
    int rows = n * OH * OW, kdim = KH * KW * C;
    if (nnk_conv2d_is_pointwise_(KH, KW, SH, SW, PT, PL)) {
        nnk_gemm_core_(1, 0, C, F, rows, cols ? cols : x, dy, dw, 0, NULL, colsum);   /* x is the matrix */
        return;
    }
    if (!cols && nnk_conv2d_is_direct_(KH, KW, C, F)) {
        nnk_conv2d_direct_bwd_filter_(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, x, dy, dw, colsum);
        return;
    }
    int chunk = nnk_conv2d_chunk_(n, OH, OW, KH, KW, C);
    for (int b0 = 0; b0 < n; b0 += chunk) {   /* chunks in order: the sums stay in row order */
        int nb = nnk_min_(chunk, n - b0);
        const nn_real *a = cols ? cols + (size_t)b0 * OH * OW * kdim : work;
        if (!cols) nnk_im2col_(nb, H, W, C, KH, KW, SH, SW, PT, PL, OH, OW, x + (size_t)b0 * H * W * C, work);
        nnk_gemm_core_(1, 0, kdim, F, nb * OH * OW, a, dy + (size_t)b0 * OH * OW * F, dw, b0 > 0, NULL, colsum);
    }
}

NNK_API void nnk_conv2d_bwd_filter(int n, int H, int W, int C, int KH, int KW, int F,
                                         int SH, int SW, int PT, int PL, int OH, int OW,
                                         const nn_real *x, const nn_real *dy, nn_real *dw,
                                         nn_real *work) {
    nnk_conv2d_bwd_filter_core_(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, x, NULL, dy, dw, work, NULL);
}

/* The filter gradient and the bias gradient db[F] = Σ dy[:,f] in one pass over dy
 * (fuse_bias_grad.c): nnk_bias_grad's bits. */
NNK_API void nnk_conv2d_bwd_filter_bias(int n, int H, int W, int C, int KH, int KW, int F,
                                              int SH, int SW, int PT, int PL, int OH, int OW,
                                              const nn_real *x, const nn_real *dy, nn_real *dw,
                                              nn_real *db, nn_real *work) {
    double stack[NNK_COLSUM_STACK];
    double *s = nnk_colsum_begin_(F, stack);
    nnk_conv2d_bwd_filter_core_(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, x, NULL, dy, dw, work, s);
    nnk_colsum_end_(s, stack, n * OH * OW, F, dy, db);
}

/* One im2col shared by the forward pass and the filter gradient (layout.c, LAYOUT_COLS):
 * the forward convolution builds im2col's matrix of the whole batch in cols
 * [n*OH*OW, KH*KW*C] (not in chunks of the workspace) and keeps it; the filter gradient
 * multiplies it by dy without building it again.  Only for convolutions that have a
 * matrix (not pointwise, not direct).  The GEMM's rows are independent, so y has the
 * NHWC kernel's bits; the filter gradient walks the same chunks, so dw and db have too. */
NNK_API void nnk_conv2d_fwd_cols_bias_act(int n, int H, int W, int C, int KH, int KW, int F,
                                                int SH, int SW, int PT, int PL, int OH, int OW,
                                                const nn_real *x, const nn_real *w, const nn_real *bias,
                                                int act, nn_real *y, nn_real *cols) {
    nnk_epi e = {bias, act, NULL, NN_EPI_NONE};
    nnk_im2col_(n, H, W, C, KH, KW, SH, SW, PT, PL, OH, OW, x, cols);
    nnk_gemm_epi_(0, 0, n * OH * OW, F, KH * KW * C, cols, w, y, 0, bias || act != NN_EPI_NONE ? &e : NULL);
}

NNK_API void nnk_conv2d_bwd_filter_cols(int n, int H, int W, int C, int KH, int KW, int F,
                                              int SH, int SW, int PT, int PL, int OH, int OW,
                                              const nn_real *cols, const nn_real *dy, nn_real *dw) {
    nnk_conv2d_bwd_filter_core_(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, NULL, cols, dy, dw, NULL, NULL);
}

NNK_API void nnk_conv2d_bwd_filter_cols_bias(int n, int H, int W, int C, int KH, int KW, int F,
                                                   int SH, int SW, int PT, int PL, int OH, int OW,
                                                   const nn_real *cols, const nn_real *dy, nn_real *dw,
                                                   nn_real *db) {
    double stack[NNK_COLSUM_STACK];
    double *s = nnk_colsum_begin_(F, stack);
    nnk_conv2d_bwd_filter_core_(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, NULL, cols, dy, dw, NULL, s);
    nnk_colsum_end_(s, stack, n * OH * OW, F, dy, db);
}

/* ---------------------------------------------------------------- pooling */

/* Window of output cell (oh, ow) clipped to the input: rows [*h0, *h1), cols [*w0, *w1).
 * Padding cells are never part of a window's valid range. */
static inline void nnk_pool_window_(int oh, int ow, int H, int W, int PH, int PW, int SH, int SW,
                                    int PT, int PL, int *h0, int *h1, int *w0, int *w1) {
    int hs = oh * SH - PT, ws = ow * SW - PL;
    *h0 = nnk_max_(hs, 0); *h1 = nnk_min_(hs + PH, H);
    *w0 = nnk_max_(ws, 0); *w1 = nnk_min_(ws + PW, W);
}

NNK_API void nnk_maxpool2d_fwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                     int PT, int PL, int OH, int OW, const nn_real *x, nn_real *y) {
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)n * OH * OW * C * PH * PW >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        for (int oh = 0; oh < OH; oh++) {
            const nn_real *xb = x + (size_t)b * H * W * C;
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                nnk_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
                nn_real *yo = y + (((size_t)b * OH + oh) * OW + ow) * C;
                if (h0 >= h1 || w0 >= w1) { for (int c = 0; c < C; c++) yo[c] = 0; continue; }
                /* Channel-inner so the max runs over contiguous vectors. */
                const nn_real *first = xb + ((size_t)h0 * W + w0) * C;
                for (int c = 0; c < C; c++) yo[c] = first[c];
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const nn_real *s = xb + ((size_t)ih * W + iw) * C;
                        for (int c = 0; c < C; c++) yo[c] = s[c] > yo[c] ? s[c] : yo[c];
                    }
            }
        }
    }
}

/* nnk_act_grad_ on a vector, with the same expressions. */
static inline nnk_vec_ nnk_act_grad_v_(int act, nnk_vec_ y, nnk_vec_ dy) {
    if (act == NN_EPI_RELU) return nnk_vsel_(y > (nnk_vec_){0}, dy, (nnk_vec_){0});
    if (act == NN_EPI_SIGMOID) return dy * y * ((nn_real)1 - y);
    if (act == NN_EPI_TANH) return dy * ((nn_real)1 - y * y);
    return dy;
}

/* dx overwritten; each window's gradient goes to its first maximum in window order
 * (as TF), recomputed from x.  act: the activation whose output x is (NN_EPI_NONE:
 * none); dx is carried through it as its backward kernel would (fuse_grad.c), which
 * for a max only needs its derivative at the maximum.
 * When windows tile the input without overlap or padding (the usual 2×2, stride 2),
 * each window writes all its cells (gradient or 0) and only the cells past the last
 * window are written apart, instead of clearing dx first and scattering into it; when
 * the channels also fill whole vectors, the argmax runs on vectors by selects. */
NNK_API void nnk_maxpool2d_bwd_act(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                         int PT, int PL, int OH, int OW, const nn_real *x,
                                         const nn_real *dy, int act, nn_real *dx) {
    int tiled = SH == PH && SW == PW && PT == 0 && PL == 0 && OH * SH <= H && OW * SW <= W;
    int vec = tiled && C % NNK_VEC_LANES == 0;
    #pragma omp parallel for schedule(static) if ((int64_t)n * OH * OW * C * PH * PW >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        const nn_real *xb = x + (size_t)b * H * W * C;
        nn_real *dxb = dx + (size_t)b * H * W * C;
        if (tiled) {
            for (int ih = 0; ih < H; ih++) {   /* cells no window covers: act'(x)·0 */
                int from = ih < OH * SH ? OW * SW : 0;
                for (size_t i = ((size_t)ih * W + from) * C; i < ((size_t)ih + 1) * W * C; i++)
                    dxb[i] = nnk_act_grad_(act, xb[i], 0);
            }
        } else {
            memset(dxb, 0, (size_t)H * W * C * sizeof(nn_real));
        }
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                nnk_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
                if (h0 >= h1 || w0 >= w1) continue;
                const nn_real *g = dy + (((size_t)b * OH + oh) * OW + ow) * C;
                if (vec) {
                    for (int c0 = 0; c0 < C; c0 += NNK_VEC_LANES) {
                        nnk_vec_ best = *(const nnk_vec_ *)(xb + ((size_t)h0 * W + w0) * C + c0);
                        nnk_mask_ at = {0}, zero = {0};
                        int k = 0;
                        for (int ih = h0; ih < h1; ih++)
                            for (int iw = w0; iw < w1; iw++, k++) {
                                nnk_vec_ v = *(const nnk_vec_ *)(xb + ((size_t)ih * W + iw) * C + c0);
                                nnk_mask_ up = v > best;
                                best = nnk_vsel_(up, v, best);
                                at = (at & ~up) | ((zero + k) & up);
                            }
                        nnk_vec_ gv = nnk_act_grad_v_(act, best, *(const nnk_vec_ *)(g + c0));
                        k = 0;
                        for (int ih = h0; ih < h1; ih++)
                            for (int iw = w0; iw < w1; iw++, k++)
                                *(nnk_vec_ *)(dxb + ((size_t)ih * W + iw) * C + c0) =
                                    nnk_vsel_(at == zero + k, gv, (nnk_vec_){0});
                    }
                    continue;
                }
                for (int c0 = 0; c0 < C; c0 += NNK_COLBLK) {
                    int cb = nnk_min_(NNK_COLBLK, C - c0);
                    nn_real best[NNK_COLBLK];
                    int at[NNK_COLBLK];  /* cell index ih*W + iw of the first maximum */
                    const nn_real *first = xb + ((size_t)h0 * W + w0) * C + c0;
                    for (int c = 0; c < cb; c++) { best[c] = first[c]; at[c] = h0 * W + w0; }
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) {
                            const nn_real *s = xb + ((size_t)ih * W + iw) * C + c0;
                            int cell = ih * W + iw;
                            for (int c = 0; c < cb; c++) {
                                int gt = s[c] > best[c];
                                best[c] = gt ? s[c] : best[c];
                                at[c] = gt ? cell : at[c];
                            }
                        }
                    if (!tiled) {   /* overlapping windows add up; act' once at the end */
                        for (int c = 0; c < cb; c++) dxb[(size_t)at[c] * C + c0 + c] += g[c0 + c];
                        continue;
                    }
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) {
                            nn_real *d = dxb + ((size_t)ih * W + iw) * C + c0;
                            int cell = ih * W + iw;
                            for (int c = 0; c < cb; c++)
                                d[c] = at[c] == cell ? nnk_act_grad_(act, best[c], g[c0 + c]) : 0;
                        }
                }
            }
        if (!tiled && act != NN_EPI_NONE)
            for (size_t i = 0; i < (size_t)H * W * C; i++) dxb[i] = nnk_act_grad_(act, xb[i], dxb[i]);
    }
}

/* y is accepted for the op's signature but not needed: the argmax is recomputed from x. */
NNK_API void nnk_maxpool2d_bwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                     int PT, int PL, int OH, int OW, const nn_real *x,
                                     const nn_real *y, const nn_real *dy, nn_real *dx) {
    (void)y;
    nnk_maxpool2d_bwd_act(n, H, W, C, PH, PW, SH, SW, PT, PL, OH, OW, x, dy, NN_EPI_NONE, dx);
}

/* ---------------------------------------------------------------- conv + max-pool
 * A first-layer convolution (computed directly: see nnk_conv2d_is_direct_) whose only
 * reader is a max-pool with windows that tile its output (PH×PW, stride the same, no
 * padding: fuse_pool.c checks), in one kernel each way; the convolution's output and its
 * gradient are never stored.
 *
 * Forward: a pooled cell at a time, from its window's PH×PW convolution cells in
 * registers (each cell's taps summed in (kh, kw, c) order from 0, padding cells skipped,
 * then the epilogue), the first maximum in window order written to p and its cell
 * (0 .. PH*PW-1, as nnk_maxpool2d_bwd_act finds it) to idx as a byte (nnk_pool_store_):
 * the bits of the unfused direct convolution and max-pool.  Cells no window covers are
 * not computed.
 *
 * Backward: the convolution's gradient is the pooled gradient through the activation at
 * each window's argmax and 0 elsewhere.  It is added to the filter gradient and, in
 * double in row order, to the bias gradient in the order of nnk_conv2d_direct_bwd_filter_
 * and nnk_bias_grad: the same bits as the unfused kernels.  fashion_cnn's shape visits
 * only the windows' cells (nnk_p33_bwd_filter_); others rebuild each row of the
 * convolution's gradient. */

/* The epilogue on conv cell v at filters f0..: nnk_epi_vec_ where it can, else
 * nnk_epi_rows_ on its lanes (the unfused kernels' expressions either way). */
static inline __attribute__((always_inline)) nnk_vec_ nnk_pool_epi_(const nnk_epi *e, int vec_epi,
                                                                    nnk_vec_ v, int f0) {
    if (vec_epi) return nnk_epi_vec_(e, v, e->bias ? *(const nnk_vec_ *)(e->bias + f0) : (nnk_vec_){0});
    _Alignas(64) nn_real t[NNK_VEC_LANES];
    *(nnk_vec_ *)t = v;
    nnk_epi_rows_(e, t, NNK_VEC_LANES, 1, NNK_VEC_LANES, 0, f0);
    return *(nnk_vec_ *)t;
}

/* Window cell k's value u into the running first maximum: best and its cell at. */
static inline __attribute__((always_inline)) void nnk_pool_take_(nnk_vec_ *best, nnk_vec_ *at, nnk_vec_ u,
                                                                 int k) {
    nnk_mask_ up = u > *best;
    *best = nnk_vsel_(up, u, *best);
    *at = nnk_vsel_(up, (nnk_vec_){0} + (nn_real)k, *at);
}

/* idx keeps a byte per pooled cell and filter, in its first quarter: the window's argmax
 * cell, or PH*PW where relu left the window 0 (no gradient goes back through it, and the
 * filter gradient needs no p to know it): a quarter of the bytes to write and read. */
typedef uint8_t nnk_idx_ __attribute__((vector_size(NNK_VEC_LANES), may_alias, aligned(1)));
static inline __attribute__((always_inline)) void nnk_pool_store_(nn_real *p, uint8_t *idx, nnk_vec_ best,
                                                                  nnk_vec_ at) {
    *(nnk_vec_ *)p = best;
#if NNK_VEC_BYTES == 32 && defined(__AVX2__)
    if (sizeof(nn_real) == 4) {   /* gcc would narrow the lanes one by one: pack them */
        __m256i i = _mm256_cvttps_epi32((__m256)at);
        __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
        _mm_storel_epi64((__m128i *)idx, _mm_packus_epi16(h, h));
        return;
    }
#endif
    *(nnk_idx_ *)idx = __builtin_convertvector(at, nnk_idx_);
}
static inline __attribute__((always_inline)) nnk_vec_ nnk_pool_at_(const uint8_t *idx) {
    return __builtin_convertvector(*(const nnk_idx_ *)idx, nnk_vec_);
}

/* How nnk_pool_put4_ finishes a window: its cells plus the bias (a zero vector when there
 * is none: a sum of taps from +0 is never -0, so that adds nothing), then no activation,
 * or relu; or nnk_pool_epi_'s general epilogue. */
enum { NNK_POOL_LINEAR, NNK_POOL_RELU, NNK_POOL_EPI };

/* A window of four cells (2×2, 1×4, 4×1) pooled: c0..c3 its cells' sums at filters f0...
 * Relu is taken after the maximum: it keeps positive values and their order, and where
 * no cell is positive the unfused pool sees four zeros, so its maximum is 0 (idx: 4). */
static inline __attribute__((always_inline)) void nnk_pool_put4_(const nnk_epi *e, int mode, int f0,
                                                                 nnk_vec_ bias, nnk_vec_ c0, nnk_vec_ c1,
                                                                 nnk_vec_ c2, nnk_vec_ c3, nn_real *p,
                                                                 uint8_t *idx) {
    if (mode == NNK_POOL_EPI) {
        c0 = nnk_pool_epi_(e, 0, c0, f0), c1 = nnk_pool_epi_(e, 0, c1, f0);
        c2 = nnk_pool_epi_(e, 0, c2, f0), c3 = nnk_pool_epi_(e, 0, c3, f0);
    } else {
        c0 += bias, c1 += bias, c2 += bias, c3 += bias;
    }
    nnk_vec_ best = c0, at = {0};
    nnk_pool_take_(&best, &at, c1, 1);
    nnk_pool_take_(&best, &at, c2, 2);
    nnk_pool_take_(&best, &at, c3, 3);
    if (mode == NNK_POOL_RELU) {
        nnk_mask_ pos = best > (nnk_vec_){0};
        best = nnk_vsel_(pos, best, (nnk_vec_){0});
        at = nnk_vsel_(pos, at, (nnk_vec_){0} + 4);
    }
    nnk_pool_store_(p, idx, best, at);
}

/* A four-cell window inside x (no padding cell), whose cells' windows in x start at
 * x0..x3, for filters [f0, f0 + fstep): four cells × two filter vectors in eight named
 * accumulators, so they stay in registers.  bias: the bias at f0.. (zero without). */
#define NNK_POOL_TAP_(k, j) do { nn_real xv_ = x##k[j]; a##k += xv_ * w0; b##k += xv_ * w1; } while (0)
#define NNK_POOL_TAPS_(j) do {                                                       \
        const nn_real *wt_ = wr + (size_t)(j) * F;                                   \
        nnk_vec_ w0 = *(const nnk_vec_ *)wt_;                                        \
        nnk_vec_ w1 = fpair ? *(const nnk_vec_ *)(wt_ + NNK_VEC_LANES) : w0;         \
        NNK_POOL_TAP_(0, j); NNK_POOL_TAP_(1, j); NNK_POOL_TAP_(2, j); NNK_POOL_TAP_(3, j); \
    } while (0)
static inline __attribute__((always_inline)) void nnk_conv_pool_quad_(int W, int C, int KH, int KW, int F,
                                                                      int fpair, int mode, const nn_real *x0,
                                                                      const nn_real *x1, const nn_real *x2,
                                                                      const nn_real *x3, const nn_real *w,
                                                                      const nnk_epi *e, int f0,
                                                                      const nn_real *bias, nn_real *p,
                                                                      uint8_t *idx) {
    nnk_vec_ a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    int row = KW * C;                /* a window row's cells (kw, c) lie contiguously in x */
    size_t xs = (size_t)W * C;
    for (int kh = 0; kh < KH; kh++, x0 += xs, x1 += xs, x2 += xs, x3 += xs) {
        const nn_real *wr = w + (size_t)kh * row * F + f0;
        int j = 0;
        for (; j + 2 < row; j += 3) {   /* three taps a step: a 3-wide window of one channel in one */
            NNK_POOL_TAPS_(j); NNK_POOL_TAPS_(j + 1); NNK_POOL_TAPS_(j + 2);
        }
        for (; j < row; j++) NNK_POOL_TAPS_(j);
    }
    nnk_pool_put4_(e, mode, f0, *(const nnk_vec_ *)bias, a0, a1, a2, a3, p, idx);
    if (fpair)
        nnk_pool_put4_(e, mode, f0 + NNK_VEC_LANES, *(const nnk_vec_ *)(bias + NNK_VEC_LANES), b0, b1, b2, b3,
                       p + NNK_VEC_LANES, idx + NNK_VEC_LANES);
}

/* Whether pooled cell (qh, qw)'s window of conv cells reads no padding. */
static inline int nnk_pool_inside_(int H, int W, int KH, int KW, int SH, int SW, int PT, int PL, int PH,
                                   int PW, int qh, int qw) {
    int oh0 = qh * PH, ow0 = qw * PW;
    return oh0 * SH - PT >= 0 && (oh0 + PH - 1) * SH - PT + KH <= H && ow0 * SW - PL >= 0 &&
           (ow0 + PW - 1) * SW - PL + KW <= W;
}

/* The commonest first layer (fashion_cnn's): one channel, 3×3 taps at stride 1, 2×2
 * windows, no padding.  A window's four cells read a 4×4 patch of x; each of its 16
 * values is broadcast once and multiplies the weight (one of nine vectors, kept in
 * registers for a row of windows) of each cell it is a tap of.  Going through the patch
 * row by row takes each cell's taps in (kh, kw) order, so the sums are the other paths'. */
static inline __attribute__((always_inline)) int nnk_pool_p33_(int C, int KH, int KW, int SH, int SW, int PT,
                                                               int PL, int PH, int PW) {
    return C == 1 && KH == 3 && KW == 3 && SH == 1 && SW == 1 && PT == 0 && PL == 0 && PH == 2 && PW == 2;
}

/* acc += x w[kh][kw] where (kh, kw) is a tap (constants once inlined). */
static inline __attribute__((always_inline)) void nnk_p33_tap_(nnk_vec_ *acc, nn_real x, const nnk_vec_ *wk,
                                                               int kh, int kw) {
    if (kh >= 0 && kh < 3 && kw >= 0 && kw < 3) *acc += x * wk[kh * 3 + kw];
}

/* Patch value (i, j) into the cells c[r * 2 + c] whose tap it is: (kh, kw) = (i - r, j - c). */
static inline __attribute__((always_inline)) void nnk_p33_fwd_x_(const nn_real *xp, int W, int i, int j,
                                                                 const nnk_vec_ *wk, nnk_vec_ *c) {
    nn_real xv = xp[(size_t)i * W + j];
    nnk_p33_tap_(&c[0], xv, wk, i, j);
    nnk_p33_tap_(&c[1], xv, wk, i, j - 1);
    nnk_p33_tap_(&c[2], xv, wk, i - 1, j);
    nnk_p33_tap_(&c[3], xv, wk, i - 1, j - 1);
}

/* The windows of one row (patches from xr, W apart in x) for the filters of wk and bias. */
static inline __attribute__((always_inline)) void nnk_p33_fwd_row_(const nn_real *xr, int W, int QW, int F,
                                                                   const nnk_vec_ *wk, nnk_vec_ bias, int mode,
                                                                   nn_real *p, uint8_t *idx) {
    for (int qw = 0; qw < QW; qw++, xr += 2, p += F, idx += F) {
        nnk_vec_ c[4] = {{0}, {0}, {0}, {0}};
        nnk_p33_fwd_x_(xr, W, 0, 0, wk, c); nnk_p33_fwd_x_(xr, W, 0, 1, wk, c);
        nnk_p33_fwd_x_(xr, W, 0, 2, wk, c); nnk_p33_fwd_x_(xr, W, 0, 3, wk, c);
        nnk_p33_fwd_x_(xr, W, 1, 0, wk, c); nnk_p33_fwd_x_(xr, W, 1, 1, wk, c);
        nnk_p33_fwd_x_(xr, W, 1, 2, wk, c); nnk_p33_fwd_x_(xr, W, 1, 3, wk, c);
        nnk_p33_fwd_x_(xr, W, 2, 0, wk, c); nnk_p33_fwd_x_(xr, W, 2, 1, wk, c);
        nnk_p33_fwd_x_(xr, W, 2, 2, wk, c); nnk_p33_fwd_x_(xr, W, 2, 3, wk, c);
        nnk_p33_fwd_x_(xr, W, 3, 0, wk, c); nnk_p33_fwd_x_(xr, W, 3, 1, wk, c);
        nnk_p33_fwd_x_(xr, W, 3, 2, wk, c); nnk_p33_fwd_x_(xr, W, 3, 3, wk, c);
        nnk_pool_put4_(NULL, mode, 0, bias, c[0], c[1], c[2], c[3], p, idx);
    }
}

/* The nine weight vectors of the filters at f0 (a 3×3×1 kernel). */
static inline __attribute__((always_inline)) void nnk_p33_weights_(const nn_real *w, int F, int f0, nnk_vec_ *wk) {
    const nn_real *wf = w + f0;
    wk[0] = *(const nnk_vec_ *)wf; wk[1] = *(const nnk_vec_ *)(wf + F); wk[2] = *(const nnk_vec_ *)(wf + 2 * F);
    wf += 3 * (size_t)F;
    wk[3] = *(const nnk_vec_ *)wf; wk[4] = *(const nnk_vec_ *)(wf + F); wk[5] = *(const nnk_vec_ *)(wf + 2 * F);
    wf += 3 * (size_t)F;
    wk[6] = *(const nnk_vec_ *)wf; wk[7] = *(const nnk_vec_ *)(wf + F); wk[8] = *(const nnk_vec_ *)(wf + 2 * F);
}

static inline void nnk_conv2d_pool_p33_fwd_(int n, int H, int W, int F, int QH, int QW, const nn_real *x,
                                            const nn_real *w, const nn_real *bias, int mode, nn_real *p,
                                            uint8_t *idx) {
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)n * QH * QW * 36 * F >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        for (int qh = 0; qh < QH; qh++) {
            const nn_real *xr = x + ((size_t)b * H + 2 * qh) * W;
            size_t o = ((size_t)b * QH + qh) * QW * F;
            for (int f0 = 0; f0 < F; f0 += NNK_VEC_LANES) {
                nnk_vec_ wk[9];
                nnk_p33_weights_(w, F, f0, wk);
                nnk_vec_ bv = bias ? *(const nnk_vec_ *)(bias + f0) : (nnk_vec_){0};
                if (mode == NNK_POOL_RELU)   /* a constant in each copy */
                    nnk_p33_fwd_row_(xr, W, QW, F, wk, bv, NNK_POOL_RELU, p + o + f0, idx + o + f0);
                else
                    nnk_p33_fwd_row_(xr, W, QW, F, wk, bv, NNK_POOL_LINEAR, p + o + f0, idx + o + f0);
            }
        }
    }
}

NNK_API void nnk_conv2d_pool_fwd(int n, int H, int W, int C, int KH, int KW, int F, int SH, int SW,
                                 int PT, int PL, int OH, int OW, int PH, int PW, int QH, int QW,
                                 const nn_real *x, const nn_real *w, const nn_real *bias, int act,
                                 nn_real *p, nn_real *idx_buf) {
    int fpair = F % (2 * NNK_VEC_LANES) == 0, fstep = (fpair ? 2 : 1) * NNK_VEC_LANES;
    uint8_t *idx = (uint8_t *)idx_buf;
    nnk_epi e = {bias, act, NULL, NN_EPI_NONE};
    int vec_epi = nnk_epi_in_vec_(&e), quad = PH * PW == 4;
    int mode = !vec_epi ? NNK_POOL_EPI : act == NN_EPI_RELU ? NNK_POOL_RELU : NNK_POOL_LINEAR;
    const nn_real zeros[2 * NNK_VEC_LANES] = {0};   /* the bias of none */
    (void)OH, (void)OW;
    if (mode != NNK_POOL_EPI && nnk_pool_p33_(C, KH, KW, SH, SW, PT, PL, PH, PW)) {
        nnk_conv2d_pool_p33_fwd_(n, H, W, F, QH, QW, x, w, bias, mode, p, idx);
        return;
    }
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)n * QH * QW * PH * PW * F * KH * KW * C >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        for (int qh = 0; qh < QH; qh++) {
            const nn_real *xb = x + (size_t)b * H * W * C;
            for (int qw = 0; qw < QW; qw++) {
                size_t o = (((size_t)b * QH + qh) * QW + qw) * F;
                int oh0 = qh * PH, ow0 = qw * PW;
                if (quad && nnk_pool_inside_(H, W, KH, KW, SH, SW, PT, PL, PH, PW, qh, qw)) {
                    /* cell k = (k / PW, k % PW) of the window */
                    const nn_real *c0 = xb + ((size_t)(oh0 * SH - PT) * W + (ow0 * SW - PL)) * C;
                    size_t d1 = (size_t)((1 / PW) * SH * W + (1 % PW) * SW) * C;
                    size_t d2 = (size_t)((2 / PW) * SH * W + (2 % PW) * SW) * C;
                    size_t d3 = (size_t)((3 / PW) * SH * W + (3 % PW) * SW) * C;
                    /* fpair and mode constants in each copy: no test in the loops */
#define NNK_POOL_QUAD_(fp, m) nnk_conv_pool_quad_(W, C, KH, KW, F, fp, m, c0, c0 + d1, c0 + d2, c0 + d3, w, &e, \
                                                  f0, bias ? bias + f0 : zeros, p + o + f0, idx + o + f0)
                    for (int f0 = 0; f0 < F; f0 += fstep) {
                        if (mode == NNK_POOL_RELU) {
                            if (fpair) NNK_POOL_QUAD_(1, NNK_POOL_RELU); else NNK_POOL_QUAD_(0, NNK_POOL_RELU);
                        } else if (mode == NNK_POOL_LINEAR) {
                            if (fpair) NNK_POOL_QUAD_(1, NNK_POOL_LINEAR); else NNK_POOL_QUAD_(0, NNK_POOL_LINEAR);
                        } else {
                            if (fpair) NNK_POOL_QUAD_(1, NNK_POOL_EPI); else NNK_POOL_QUAD_(0, NNK_POOL_EPI);
                        }
                    }
#undef NNK_POOL_QUAD_
                    continue;
                }
                for (int f0 = 0; f0 < F; f0 += fstep) {   /* any window, cell by cell */
                    nnk_vec_ best0 = {0}, best1 = {0}, at0 = {0}, at1 = {0};
                    for (int k = 0; k < PH * PW; k++) {
                        nnk_vec_ s0, s1;
                        nnk_conv_cell_(H, W, C, KH, KW, F, SH, SW, PT, PL, xb, oh0 + k / PW, ow0 + k % PW, w,
                                       f0, fpair, &s0, &s1);
                        s0 = nnk_pool_epi_(&e, vec_epi, s0, f0);
                        if (k == 0) best0 = s0;
                        else nnk_pool_take_(&best0, &at0, s0, k);
                        if (!fpair) continue;
                        s1 = nnk_pool_epi_(&e, vec_epi, s1, f0 + NNK_VEC_LANES);
                        if (k == 0) best1 = s1;
                        else nnk_pool_take_(&best1, &at1, s1, k);
                    }
                    if (act == NN_EPI_RELU) {   /* no gradient where relu left 0 */
                        at0 = nnk_vsel_(best0 > (nnk_vec_){0}, at0, (nnk_vec_){0} + (nn_real)(PH * PW));
                        at1 = nnk_vsel_(best1 > (nnk_vec_){0}, at1, (nnk_vec_){0} + (nn_real)(PH * PW));
                    }
                    nnk_pool_store_(p + o + f0, idx + o + f0, best0, at0);
                    if (fpair) nnk_pool_store_(p + o + f0 + NNK_VEC_LANES, idx + o + f0 + NNK_VEC_LANES, best1, at1);
                }
            }
        }
    }
}

/* bsum[l] += Σ_q (g[4q] + g[4q + 1])[l] in double, q in order: a conv row's gradient at
 * its windows' two cells in it, of which at most one is nonzero (the sum is then that
 * cell's value): nnk_colsum_'s sums of the row. */
static inline void nnk_pool_bias_row_(const nnk_vec_ *g, int QW, double *bsum) {
    if (NNK_VEC_LANES % 4) {
        for (int q = 0; q < QW; q++) {
            nnk_vec_ v = g[4 * q] + g[4 * q + 1];
            for (int l = 0; l < NNK_VEC_LANES; l++) bsum[l] += v[l];
        }
        return;
    }
    /* four lanes at a time, spelled out: clang keeps a lane loop scalar */
    nnk_vd4_ *s4 = (nnk_vd4_ *)bsum, s0 = s4[0], s1 = {0}, s2 = {0}, s3 = {0};
    if (NNK_VEC_LANES > 4) s1 = s4[1];
    if (NNK_VEC_LANES > 8) s2 = s4[2], s3 = s4[3];
    for (int q = 0; q < QW; q++) {
        nnk_vec_ v = g[4 * q] + g[4 * q + 1];
        const nnk_vr4_ *v4 = (const nnk_vr4_ *)&v;
        s0 += __builtin_convertvector(v4[0], nnk_vd4_);
        if (NNK_VEC_LANES > 4) s1 += __builtin_convertvector(v4[1], nnk_vd4_);
        if (NNK_VEC_LANES > 8) s2 += __builtin_convertvector(v4[2], nnk_vd4_), s3 += __builtin_convertvector(v4[3], nnk_vd4_);
    }
    s4[0] = s0;
    if (NNK_VEC_LANES > 4) s4[1] = s1;
    if (NNK_VEC_LANES > 8) s4[2] = s2, s4[3] = s3;
}

/* The filter and bias gradients of nnk_pool_p33_'s shape, a filter vector per task, in
 * the unfused kernels' order: conv row by conv row, each tap's sum along the row in four
 * chains by column mod 4 (the last OW % 4 columns in the first), paired and added to the
 * total in row order (nnk_conv2d_direct_dw_row_); the bias gradient in double in row order
 * (nnk_colsum_).  Only windows' cells are visited: elsewhere the gradient is +0, and adding
 * it changes no sum.  A row's windows take their chains' registers in pairs. */
#define NNK_P33_MAX_QW 64   /* windows along a row: their cells' gradients in a buffer */
#define NNK_P33_CELLS_(A, B, q) do {   /* window q's cells (r, 0), (r, 1) into chains A, B */ \
        nnk_vec_ g0_ = gq[4 * (q) + 2 * r], g1_ = gq[4 * (q) + 2 * r + 1];                 \
        const nn_real *xq_ = xr + 2 * (q);                                                 \
        nn_real x_ = xq_[0]; A##0 += x_ * g0_;                                             \
        x_ = xq_[1]; A##1 += x_ * g0_; B##0 += x_ * g1_;                                    \
        x_ = xq_[2]; A##2 += x_ * g0_; B##1 += x_ * g1_;                                    \
        x_ = xq_[3]; B##2 += x_ * g1_;                                                     \
    } while (0)

/* A window row's cells' gradients at the filters at p, dp, idx (its first pooled cell):
 * gq[4 qw + k] for cell k of window qw, the gradient through the activation at the argmax,
 * +0 elsewhere (relu's: dp, idx saying where it is 0). */
static inline __attribute__((always_inline)) void nnk_p33_cells_(int QW, int F, int act, const nn_real *p,
                                                                 const nn_real *dp, const uint8_t *idx,
                                                                 nnk_vec_ *gq) {
    for (int qw = 0; qw < QW; qw++, p += F, dp += F, idx += F, gq += 4) {
        nnk_vec_ gv = act == NN_EPI_RELU ? *(const nnk_vec_ *)dp
                                         : nnk_act_grad_v_(act, *(const nnk_vec_ *)p, *(const nnk_vec_ *)dp);
        nnk_vec_ at = nnk_pool_at_(idx);
        gq[0] = nnk_vsel_(at == (nnk_vec_){0}, gv, (nnk_vec_){0});
        gq[1] = nnk_vsel_(at == (nnk_vec_){0} + 1, gv, (nnk_vec_){0});
        gq[2] = nnk_vsel_(at == (nnk_vec_){0} + 2, gv, (nnk_vec_){0});
        gq[3] = nnk_vsel_(at == (nnk_vec_){0} + 3, gv, (nnk_vec_){0});
    }
}

/* One window row (its cells' gradients gq) added to acc, the row's taps' sums in chains. */
static inline void nnk_p33_dw_rows_(const nn_real *xq, int W, int QW, int tail, const nnk_vec_ *gq,
                                    nnk_vec_ *acc) {
    for (int r = 0; r < 2; r++)
        for (int kh = 0; kh < 3; kh++) {
            const nn_real *xr = xq + (size_t)(r + kh) * W;
            nnk_vec_ a0 = {0}, a1 = {0}, a2 = {0}, b0 = {0}, b1 = {0}, b2 = {0};
            nnk_vec_ c0 = {0}, c1 = {0}, c2 = {0}, d0 = {0}, d1 = {0}, d2 = {0};
            int qw = 0;
            for (; 2 * qw < tail && qw + 1 < QW; qw += 2) {   /* columns 0..3 mod 4 */
                NNK_P33_CELLS_(a, b, qw);
                NNK_P33_CELLS_(c, d, qw + 1);
            }
            for (; qw < QW; qw++) NNK_P33_CELLS_(a, a, qw);
            acc[3 * kh] += (a0 + b0) + (c0 + d0);
            acc[3 * kh + 1] += (a1 + b1) + (c1 + d1);
            acc[3 * kh + 2] += (a2 + b2) + (c2 + d2);
        }
}

/* A task: two filter vectors where F makes at least two such tasks, each window row's for
 * one then the other, so that the second reads the pooled cells' cache lines from cache. */
static inline void nnk_p33_bwd_filter_(int n, int H, int W, int F, int OH, int OW, int QH, int QW,
                                       const nn_real *x, const nn_real *dp, const nn_real *p,
                                       const uint8_t *idx, int act, nn_real *dw, nn_real *db) {
    int tail = OW & ~3;   /* columns from here are the chains' remainder, all in the first */
    int fstep = (F % (2 * NNK_VEC_LANES) == 0 && F >= 4 * NNK_VEC_LANES ? 2 : 1) * NNK_VEC_LANES;
    (void)OH;
    #pragma omp parallel for schedule(static) if ((int64_t)n * QH * QW * 36 * F >= NNK_PAR_MIN)
    for (int f1 = 0; f1 < F; f1 += fstep) {
        nnk_vec_ acc[2][9], gq[4 * NNK_P33_MAX_QW];
        _Alignas(64) double bsum[2 * NNK_VEC_LANES] = {0};
        for (int k = 0; k < 9; k++) acc[0][k] = acc[1][k] = (nnk_vec_){0};
        for (int b = 0; b < n; b++)
            for (int qh = 0; qh < QH; qh++)
                for (int v = 0; v * NNK_VEC_LANES < fstep; v++) {
                    size_t o = ((size_t)b * QH + qh) * QW * F + f1 + v * NNK_VEC_LANES;
                    nnk_p33_cells_(QW, F, act, p + o, dp + o, idx + o, gq);
                    if (db) {
                        nnk_pool_bias_row_(gq, QW, bsum + v * NNK_VEC_LANES);
                        nnk_pool_bias_row_(gq + 2, QW, bsum + v * NNK_VEC_LANES);
                    }
                    nnk_p33_dw_rows_(x + ((size_t)b * H + 2 * qh) * W, W, QW, tail, gq, acc[v]);
                }
        for (int v = 0; v * NNK_VEC_LANES < fstep; v++)
            for (int k = 0; k < 9; k++) *(nnk_vec_ *)(dw + (size_t)k * F + f1 + v * NNK_VEC_LANES) = acc[v][k];
        for (int l = 0; db && l < fstep; l++) db[f1 + l] = (nn_real)bsum[l];
    }
}

#define NNK_POOL_ROW_BUF 16384   /* elements: OW cells × 2 vectors (fuse_pool.c) */

NNK_API void nnk_conv2d_pool_bwd_filter(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                        int SW, int PT, int PL, int OH, int OW, int PH, int PW,
                                        int QH, int QW, const nn_real *x, const nn_real *dp,
                                        const nn_real *p, const nn_real *idx_buf, int act, nn_real *dw,
                                        nn_real *db) {
    const uint8_t *idx = (const uint8_t *)idx_buf;
    if (nnk_pool_p33_(C, KH, KW, SH, SW, PT, PL, PH, PW) && QW <= NNK_P33_MAX_QW) {
        nnk_p33_bwd_filter_(n, H, W, F, OH, OW, QH, QW, x, dp, p, idx, act, dw, db);
        return;
    }
    int kdim = KH * KW * C;
    int fpair = F % (2 * NNK_VEC_LANES) == 0, fstep = (fpair ? 2 : 1) * NNK_VEC_LANES;
    #pragma omp parallel for schedule(static) if ((int64_t)n * OH * OW * F * kdim >= NNK_PAR_MIN)
    for (int f0 = 0; f0 < F; f0 += fstep) {
        _Alignas(64) nn_real g[NNK_POOL_ROW_BUF];   /* a row of the conv gradient */
        _Alignas(32) double bsum[2 * NNK_VEC_LANES] = {0};   /* nnk_bias_grad's double sums */
        nnk_direct_dw_acc_ acc;
        for (int k = 0; k < kdim; k++) acc[0][k] = acc[1][k] = (nnk_vec_){0};
        for (int b = 0; b < n; b++)
            for (int oh = 0; oh < OH; oh++) {
                /* The convolution's gradient along row oh: at each window's maximum the
                 * pooled gradient through the activation, 0 elsewhere and in no window. */
                int qh = oh / PH, ow = 0;
                nnk_vec_ first = (nnk_vec_){0} + (nn_real)((oh - qh * PH) * PW);
                for (int qw = 0; qh < QH && qw < QW; qw++) {
                    size_t o = (((size_t)b * QH + qh) * QW + qw) * F + f0;
                    for (int v = 0; v < fstep; v += NNK_VEC_LANES) {
                        nnk_vec_ gv = nnk_act_grad_v_(act, *(const nnk_vec_ *)(p + o + v),
                                                      *(const nnk_vec_ *)(dp + o + v));
                        nnk_vec_ at = nnk_pool_at_(idx + o + v) - first;
                        for (int c = 0; c < PW; c++)
                            *(nnk_vec_ *)(g + (size_t)(ow + c) * fstep + v) =
                                nnk_vsel_(at == (nnk_vec_){0} + (nn_real)c, gv, (nnk_vec_){0});
                    }
                    ow += PW;
                }
                for (; ow < OW; ow++)
                    for (int v = 0; v < fstep; v++) g[(size_t)ow * fstep + v] = 0;
                if (db) nnk_colsum_(g, (size_t)fstep, OW, fstep, bsum);
                nnk_conv2d_direct_dw_row_(H, W, C, KH, KW, SH, SW, PT, PL, OW, x + (size_t)b * H * W * C, oh,
                                          g, (size_t)fstep, fpair, acc);
            }
        nnk_conv2d_direct_dw_store_(kdim, F, f0, fpair, acc, dw);
        for (int v = 0; db && v < fstep; v++) db[f0 + v] = (nn_real)bsum[v];
    }
}

/* TF semantics: the average is over the valid (non-padded) cells only. */
NNK_API void nnk_avgpool2d_fwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                     int PT, int PL, int OH, int OW, const nn_real *x, nn_real *y) {
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)n * OH * OW * C * PH * PW >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        for (int oh = 0; oh < OH; oh++) {
            const nn_real *xb = x + (size_t)b * H * W * C;
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                nnk_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
                nn_real *yo = y + (((size_t)b * OH + oh) * OW + ow) * C;
                for (int c = 0; c < C; c++) yo[c] = 0;
                int count = (h1 - h0) * (w1 - w0);
                if (count <= 0) continue;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const nn_real *s = xb + ((size_t)ih * W + iw) * C;
                        for (int c = 0; c < C; c++) yo[c] += s[c];
                    }
                nn_real inv = (nn_real)1 / (nn_real)count;
                for (int c = 0; c < C; c++) yo[c] *= inv;
            }
        }
    }
}

NNK_API void nnk_avgpool2d_bwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                     int PT, int PL, int OH, int OW, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if ((int64_t)n * OH * OW * C * PH * PW >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        nn_real *dxb = dx + (size_t)b * H * W * C;
        memset(dxb, 0, (size_t)H * W * C * sizeof(nn_real));
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1;
                nnk_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
                int count = (h1 - h0) * (w1 - w0);
                if (count <= 0) continue;
                nn_real inv = (nn_real)1 / (nn_real)count;
                const nn_real *g = dy + (((size_t)b * OH + oh) * OW + ow) * C;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        nn_real *d = dxb + ((size_t)ih * W + iw) * C;
                        for (int c = 0; c < C; c++) d[c] += g[c] * inv;
                    }
            }
    }
}

/* y[b,c] = mean over the HW spatial cells of x[b,:,c]. */
NNK_API void nnk_global_avgpool2d_fwd(int n, int HW, int C, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if ((int64_t)n * HW * C >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++) {
        const nn_real *xb = x + (size_t)b * HW * C;
        for (int c0 = 0; c0 < C; c0 += NNK_COLBLK) {
            int cb = nnk_min_(NNK_COLBLK, C - c0);
            double s[NNK_COLBLK] = {0};
            for (int p = 0; p < HW; p++)
                for (int c = 0; c < cb; c++) s[c] += xb[(size_t)p * C + c0 + c];
            for (int c = 0; c < cb; c++) y[(size_t)b * C + c0 + c] = (nn_real)(s[c] / HW);
        }
    }
}

NNK_API void nnk_global_avgpool2d_bwd(int n, int HW, int C, const nn_real *dy, nn_real *dx) {
    nn_real inv = (nn_real)1 / (nn_real)HW;
    #pragma omp parallel for schedule(static) if ((int64_t)n * HW * C >= NNK_PAR_MIN)
    for (int b = 0; b < n; b++)
        for (int p = 0; p < HW; p++) {
            nn_real *d = dx + ((size_t)b * HW + p) * C;
            const nn_real *g = dy + (size_t)b * C;
            for (int c = 0; c < C; c++) d[c] = g[c] * inv;
        }
}

/* ---------------------------------------------------------------- activations */

NNK_API void nnk_relu_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

/* Uses the output: y > 0 exactly where x > 0. */
NNK_API void nnk_relu_bwd(int64_t len, const nn_real *y, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) dx[i] = nnk_act_grad_(NN_EPI_RELU, y[i], dy[i]);
}

/* Stable in both tails: exp is only taken of a non-positive number. */
static inline nn_real nnk_sigmoid_(nn_real x) {
    if (x >= 0) return (nn_real)1 / ((nn_real)1 + nnk_exp_(-x));
    nn_real e = nnk_exp_(x);
    return e / ((nn_real)1 + e);
}

NNK_API void nnk_sigmoid_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) y[i] = nnk_sigmoid_(x[i]);
}

NNK_API void nnk_sigmoid_bwd(int64_t len, const nn_real *y, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) dx[i] = nnk_act_grad_(NN_EPI_SIGMOID, y[i], dy[i]);
}

NNK_API void nnk_tanh_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) y[i] = nnk_tanh_(x[i]);
}

NNK_API void nnk_tanh_bwd(int64_t len, const nn_real *y, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) dx[i] = nnk_act_grad_(NN_EPI_TANH, y[i], dy[i]);
}

/* Keras's gelu (approximate=False): x·Φ(x), Φ(x) = erfc(-x/√2)/2, the same value as
 * x/2·(1 + erf(x/√2)) without its cancellation for very negative x. */
#define NNK_SQRT1_2 0.70710678118654752440
#define NNK_INV_SQRT_2PI 0.39894228040143267794
NNK_API void nnk_gelu_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++)
        y[i] = (nn_real)0.5 * x[i] * nnk_erfc_(-x[i] * (nn_real)NNK_SQRT1_2);
}

/* Uses the input: d gelu/dx = Φ(x) + x·φ(x) is no function of y. */
NNK_API void nnk_gelu_bwd(int64_t len, const nn_real *x, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) {
        nn_real v = x[i];
        nn_real cdf = (nn_real)0.5 * nnk_erfc_(-v * (nn_real)NNK_SQRT1_2);
        nn_real pdf = (nn_real)NNK_INV_SQRT_2PI * nnk_exp_((nn_real)-0.5 * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

/* silu (Keras's swish): x·sigmoid(x); the gradient s·(1 + x·(1 - s)) reads x. */
NNK_API void nnk_silu_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) y[i] = x[i] * nnk_sigmoid_(x[i]);
}

NNK_API void nnk_silu_bwd(int64_t len, const nn_real *x, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) {
        nn_real s = nnk_sigmoid_(x[i]);
        dx[i] = dy[i] * s * ((nn_real)1 + x[i] * ((nn_real)1 - s));
    }
}

/* elu: x if x > 0 else alpha·(exp(x) - 1); the gradient reads x, so any alpha works
 * (Keras does not restrict it). expm1 of min(x, 0): no overflow in the unused branch. */
NNK_API void nnk_elu_fwd(int64_t len, double alpha, const nn_real *x, nn_real *y) {
    const nn_real a = (nn_real)alpha;
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) {
        nn_real v = x[i], neg = v < 0 ? v : 0;
        y[i] = v > 0 ? v : a * nnk_expm1_(neg);
    }
}

NNK_API void nnk_elu_bwd(int64_t len, double alpha, const nn_real *x, const nn_real *dy, nn_real *dx) {
    const nn_real a = (nn_real)alpha;
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) {
        nn_real v = x[i], neg = v < 0 ? v : 0;
        dx[i] = v > 0 ? dy[i] : dy[i] * a * nnk_exp_(neg);
    }
}

/* selu: scale·elu(x, alpha) with the constants of Keras's backends (TF, JAX, PyTorch;
 * the docstring's 1.67326324 and 1.05070098 round to the same floats). The gradient
 * reads y: scale if y > 0, else y + scale·alpha. */
#define NNK_SELU_ALPHA 1.6732632423543772848
#define NNK_SELU_SCALE 1.0507009873554804934
NNK_API void nnk_selu_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) {
        nn_real v = x[i], neg = v < 0 ? v : 0;
        y[i] = (nn_real)NNK_SELU_SCALE * (v > 0 ? v : (nn_real)NNK_SELU_ALPHA * nnk_expm1_(neg));
    }
}

NNK_API void nnk_selu_bwd(int64_t len, const nn_real *y, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++)
        dx[i] = dy[i] * (y[i] > 0 ? (nn_real)NNK_SELU_SCALE : y[i] + (nn_real)(NNK_SELU_SCALE * NNK_SELU_ALPHA));
}

/* leaky_relu: x if x > 0 else negative_slope·x (alpha). Keras requires slope >= 0, so
 * y > 0 exactly where x > 0 and the gradient reads y. */
NNK_API void nnk_leaky_relu_fwd(int64_t len, double alpha, const nn_real *x, nn_real *y) {
    const nn_real a = (nn_real)alpha;
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) y[i] = x[i] > 0 ? x[i] : a * x[i];
}

NNK_API void nnk_leaky_relu_bwd(int64_t len, double alpha, const nn_real *y, const nn_real *dy,
                                      nn_real *dx) {
    const nn_real a = (nn_real)alpha;
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) dx[i] = y[i] > 0 ? dy[i] : a * dy[i];
}

/* softplus: log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), stable in both tails. Its
 * derivative sigmoid(x) equals 1 - exp(-y): the gradient reads y. */
NNK_API void nnk_softplus_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) {
        nn_real v = x[i], pos = v > 0 ? v : 0, mabs = v > 0 ? -v : v;
        y[i] = pos + nnk_log1p_(nnk_exp_(mabs));
    }
}

NNK_API void nnk_softplus_bwd(int64_t len, const nn_real *y, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 8)
    for (int64_t i = 0; i < len; i++) dx[i] = -dy[i] * nnk_expm1_(-y[i]);
}

/* hard_sigmoid, Keras 3: relu6(x + 3) / 6 (Keras 2 used clip(0.2x + 0.5, 0, 1)). The
 * gradient 1/6 on (-3, 3) reads y: 0 < y < 1. */
NNK_API void nnk_hard_sigmoid_fwd(int64_t len, const nn_real *x, nn_real *y) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) {
        nn_real t = x[i] + (nn_real)3;
        t = t > 0 ? t : 0;
        t = t < 6 ? t : (nn_real)6;
        y[i] = t / (nn_real)6;
    }
}

NNK_API void nnk_hard_sigmoid_bwd(int64_t len, const nn_real *y, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) dx[i] = y[i] > 0 && y[i] < 1 ? dy[i] / (nn_real)6 : 0;
}

/* One row: max-subtracted so huge logits cannot overflow; the sum is in double. */
static inline void nnk_softmax_row_(int cols, const nn_real *x, nn_real *y) {
    nn_real m = x[0];
    for (int c = 1; c < cols; c++) m = x[c] > m ? x[c] : m;
    double s = 0;
    for (int c = 0; c < cols; c++) { y[c] = nnk_exp_(x[c] - m); s += y[c]; }
    nn_real inv = (nn_real)(1.0 / s);
    for (int c = 0; c < cols; c++) y[c] *= inv;
}

NNK_API void nnk_softmax_fwd(int rows, int cols, const nn_real *x, nn_real *y) {
    if (cols <= 0) return;
    #pragma omp parallel for schedule(static) if ((int64_t)rows * cols >= NNK_PAR_MIN / 8)
    for (int r = 0; r < rows; r++)
        nnk_softmax_row_(cols, x + (size_t)r * cols, y + (size_t)r * cols);
}

/* dx = y ⊙ (dy − Σ dy·y) per row. */
NNK_API void nnk_softmax_bwd(int rows, int cols, const nn_real *y, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if ((int64_t)rows * cols >= NNK_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const nn_real *yr = y + (size_t)r * cols, *gr = dy + (size_t)r * cols;
        nn_real *dr = dx + (size_t)r * cols;
        double dot = 0;
        for (int c = 0; c < cols; c++) dot += (double)gr[c] * yr[c];
        for (int c = 0; c < cols; c++) dr[c] = yr[c] * (gr[c] - (nn_real)dot);
    }
}

/* ---------------------------------------------------------------- dropout */

/* splitmix64's finalizer: a counter-based generator, so element i's draw depends only
 * on (seed, i) — thread-safe and the same for any thread count. */
static inline uint64_t nnk_splitmix64_(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits; key = nnk_splitmix64_(seed).  Hashing the
 * seed first keeps callers' seed mixing (seed ^ per-layer constant) from lining up
 * with the index term, so layers draw unrelated streams. */
static inline double nnk_uniform_(uint64_t key, uint64_t i) {
    return (double)(nnk_splitmix64_(key ^ (i * 0x9E3779B97F4A7C15ull)) >> 11) * 0x1.0p-53;
}

/* Inverted dropout: mask[i] = 1/(1-rate) if kept, else 0; y = x * mask.  The caller
 * passes a new seed each step (e.g. run seed mixed with the step count). */
NNK_API void nnk_dropout_fwd(int64_t len, double rate, uint64_t seed, const nn_real *x,
                                   nn_real *y, nn_real *mask) {
    nn_real keep_scale = rate < 1 ? (nn_real)(1.0 / (1.0 - rate)) : 0;
    uint64_t key = nnk_splitmix64_(seed);
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN / 4)
    for (int64_t i = 0; i < len; i++) {
        nn_real m = nnk_uniform_(key, (uint64_t)i) >= rate ? keep_scale : 0;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

NNK_API void nnk_dropout_bwd(int64_t len, const nn_real *mask, const nn_real *dy, nn_real *dx) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) dx[i] = dy[i] * mask[i];
}

/* ---------------------------------------------------------------- batchnorm */

/* Over the last axis: x is [rows, C] with rows = n*H*W.  Keras semantics: biased
 * batch variance, used both to normalize and to update the moving variance;
 * moving = moving*momentum + batch*(1-momentum).  gamma/beta may be NULL
 * (scale/center off).  Statistics are two-pass, in double, per channel block. */
NNK_API void nnk_batchnorm_fwd_train(int rows, int C, double eps, double momentum,
                                           const nn_real *x, const nn_real *gamma,
                                           const nn_real *beta, nn_real *y, nn_real *save_mean,
                                           nn_real *save_invstd, nn_real *moving_mean,
                                           nn_real *moving_var) {
    if (rows <= 0) return;
    #pragma omp parallel for schedule(static) if ((int64_t)rows * C >= NNK_PAR_MIN)
    for (int c0 = 0; c0 < C; c0 += NNK_COLBLK) {
        int cb = nnk_min_(NNK_COLBLK, C - c0);
        double mean[NNK_COLBLK] = {0}, var[NNK_COLBLK] = {0}, scale[NNK_COLBLK], shift[NNK_COLBLK];
        for (int r = 0; r < rows; r++) {
            const nn_real *xr = x + (size_t)r * C + c0;
            for (int c = 0; c < cb; c++) mean[c] += xr[c];
        }
        for (int c = 0; c < cb; c++) mean[c] /= rows;
        for (int r = 0; r < rows; r++) {
            const nn_real *xr = x + (size_t)r * C + c0;
            for (int c = 0; c < cb; c++) { double d = xr[c] - mean[c]; var[c] += d * d; }
        }
        for (int c = 0; c < cb; c++) {
            int ch = c0 + c;
            var[c] /= rows;
            double invstd = 1.0 / sqrt(var[c] + eps);
            save_mean[ch] = (nn_real)mean[c];
            save_invstd[ch] = (nn_real)invstd;
            moving_mean[ch] = (nn_real)(moving_mean[ch] * momentum + mean[c] * (1.0 - momentum));
            moving_var[ch] = (nn_real)(moving_var[ch] * momentum + var[c] * (1.0 - momentum));
            scale[c] = invstd * (gamma ? gamma[ch] : 1.0);
            shift[c] = (beta ? beta[ch] : 0.0) - mean[c] * scale[c];
        }
        for (int r = 0; r < rows; r++) {
            const nn_real *xr = x + (size_t)r * C + c0;
            nn_real *yr = y + (size_t)r * C + c0;
            for (int c = 0; c < cb; c++) yr[c] = (nn_real)(xr[c] * scale[c] + shift[c]);
        }
    }
}

NNK_API void nnk_batchnorm_fwd_infer(int rows, int C, double eps, const nn_real *x,
                                           const nn_real *gamma, const nn_real *beta,
                                           const nn_real *moving_mean, const nn_real *moving_var,
                                           nn_real *y) {
    #pragma omp parallel for schedule(static) if ((int64_t)rows * C >= NNK_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const nn_real *xr = x + (size_t)r * C;
        nn_real *yr = y + (size_t)r * C;
        for (int c = 0; c < C; c++) {
            nn_real scale = (nn_real)(1.0 / sqrt((double)moving_var[c] + eps)) * (gamma ? gamma[c] : 1);
            yr[c] = (xr[c] - moving_mean[c]) * scale + (beta ? beta[c] : 0);
        }
    }
}

/* With xhat = (x-mean)*invstd:  dbeta = Σ dy,  dgamma = Σ dy*xhat,
 * dx = gamma*invstd * (dy - dbeta/rows - xhat*dgamma/rows).  dgamma/dbeta may be NULL. */
NNK_API void nnk_batchnorm_bwd(int rows, int C, const nn_real *x, const nn_real *dy,
                                     const nn_real *gamma, const nn_real *save_mean,
                                     const nn_real *save_invstd, nn_real *dx, nn_real *dgamma,
                                     nn_real *dbeta) {
    if (rows <= 0) return;
    #pragma omp parallel for schedule(static) if ((int64_t)rows * C >= NNK_PAR_MIN)
    for (int c0 = 0; c0 < C; c0 += NNK_COLBLK) {
        int cb = nnk_min_(NNK_COLBLK, C - c0);
        double sdy[NNK_COLBLK] = {0}, sdyx[NNK_COLBLK] = {0};
        for (int r = 0; r < rows; r++) {
            const nn_real *xr = x + (size_t)r * C + c0, *gr = dy + (size_t)r * C + c0;
            for (int c = 0; c < cb; c++) {
                double xhat = (xr[c] - save_mean[c0 + c]) * (double)save_invstd[c0 + c];
                sdy[c] += gr[c];
                sdyx[c] += gr[c] * xhat;
            }
        }
        for (int c = 0; c < cb; c++) {
            if (dbeta) dbeta[c0 + c] = (nn_real)sdy[c];
            if (dgamma) dgamma[c0 + c] = (nn_real)sdyx[c];
        }
        for (int r = 0; r < rows; r++) {
            const nn_real *xr = x + (size_t)r * C + c0, *gr = dy + (size_t)r * C + c0;
            nn_real *dr = dx + (size_t)r * C + c0;
            for (int c = 0; c < cb; c++) {
                int ch = c0 + c;
                double invstd = save_invstd[ch];
                double xhat = (xr[c] - save_mean[ch]) * invstd;
                double k = (gamma ? gamma[ch] : 1.0) * invstd;
                dr[c] = (nn_real)(k * (gr[c] - sdy[c] / rows - xhat * sdyx[c] / rows));
            }
        }
    }
}

/* ---------------------------------------------------------------- losses */

/* Keras reductions: a per-sample loss (mean over the last axis for mse/mae/bce, sum
 * over classes for cross-entropies), then the mean over the n samples.  Each returns
 * the SUM over samples (the caller divides by n, which lets it average over an epoch
 * of unequal batches) and, if the gradient pointer is non-NULL, writes
 * d(mean loss)/d(input), i.e. already divided by n.  Sums are serial, in double. */

/* A sparse label as a class index, or -1 when it is not one of 0..C-1 (NaN included).
 * Bad labels give a NaN loss instead of an out-of-bounds read; the runtime validates
 * labels when it loads data, so this is a guard, not an error channel. */
static inline int nnk_label_(nn_real v, int C) {
    return (v >= 0 && v < C) ? (int)v : -1;
}

/* Stable log Σ exp(z) of one row. */
static inline double nnk_logsumexp_(int C, const nn_real *z) {
    double m = z[0];
    for (int c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
    double s = 0;
    for (int c = 0; c < C; c++) s += exp(z[c] - m);
    return m + log(s);
}

/* Softmax + sparse categorical cross-entropy, fused: loss_i = lse(z_i) - z_i[label]. */
NNK_API double nnk_loss_sparse_softmax_xent(int n, int C, const nn_real *logits,
                                                  const nn_real *labels, nn_real *probs,
                                                  nn_real *dlogits) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const nn_real *z = logits + (size_t)i * C;
        double lse = nnk_logsumexp_(C, z);
        int t = nnk_label_(labels[i], C);
        total += t >= 0 ? lse - z[t] : NAN;
        for (int c = 0; c < C; c++) {
            double p = exp(z[c] - lse);
            if (probs) probs[(size_t)i * C + c] = (nn_real)p;
            if (dlogits) dlogits[(size_t)i * C + c] = (nn_real)((p - (c == t)) / n);
        }
    }
    return total;
}

/* Softmax + categorical cross-entropy on one-hot (or soft) targets, fused:
 * loss_i = Σ_c y_c (lse - z_c);  d/dz_c = p_c Σy - y_c. */
NNK_API double nnk_loss_softmax_xent(int n, int C, const nn_real *logits,
                                           const nn_real *onehot, nn_real *probs,
                                           nn_real *dlogits) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const nn_real *z = logits + (size_t)i * C, *y = onehot + (size_t)i * C;
        double lse = nnk_logsumexp_(C, z), ysum = 0;
        for (int c = 0; c < C; c++) { total += y[c] * (lse - z[c]); ysum += y[c]; }
        for (int c = 0; c < C; c++) {
            double p = exp(z[c] - lse);
            if (probs) probs[(size_t)i * C + c] = (nn_real)p;
            if (dlogits) dlogits[(size_t)i * C + c] = (nn_real)((p * ysum - y[c]) / n);
        }
    }
    return total;
}

/* Sigmoid + binary cross-entropy, fused and stable (TF's sigmoid_cross_entropy_with_logits):
 * max(z,0) - z*y + log1p(exp(-|z|)), per-sample mean over K;  d/dz = (σ(z) - y)/(n K). */
NNK_API double nnk_loss_sigmoid_bce(int n, int K, const nn_real *logits, const nn_real *y,
                                          nn_real *probs, nn_real *dlogits) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double row = 0;
        for (int k = 0; k < K; k++) {
            size_t at = (size_t)i * K + k;
            double z = logits[at];
            row += (z > 0 ? z : 0) - z * y[at] + log1p(exp(-fabs(z)));
            double p = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
            if (probs) probs[at] = (nn_real)p;
            if (dlogits) dlogits[at] = (nn_real)((p - y[at]) / ((double)n * K));
        }
        total += row / K;
    }
    return total;
}

/* Keras's clip to [eps, 1-eps]; *inside says whether the gradient passes. */
static inline double nnk_clip_prob_(double p, int *inside) {
    *inside = p > NNK_PROB_EPS && p < 1.0 - NNK_PROB_EPS;
    return p < NNK_PROB_EPS ? NNK_PROB_EPS : p > 1.0 - NNK_PROB_EPS ? 1.0 - NNK_PROB_EPS : p;
}

/* Categorical cross-entropy on probabilities, as Keras 3: q = p / Σp; r = clip(q);
 * loss_i = -Σ y log r.  Gradient: g_j = -y_j/r_j (0 where clipped),
 * dL/dp_k = (g_k - Σ_j g_j q_j) / Σp. */
NNK_API double nnk_loss_cce(int n, int C, const nn_real *p, const nn_real *onehot, nn_real *dp) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const nn_real *pi = p + (size_t)i * C, *y = onehot + (size_t)i * C;
        double s = 0, gq = 0;
        for (int c = 0; c < C; c++) s += pi[c];
        for (int c = 0; c < C; c++) {
            int in;
            double q = pi[c] / s, r = nnk_clip_prob_(q, &in);
            total -= y[c] * log(r);
            gq += in ? -y[c] / r * q : 0;
        }
        if (!dp) continue;
        for (int c = 0; c < C; c++) {
            int in;
            double q = pi[c] / s, r = nnk_clip_prob_(q, &in);
            double g = in ? -y[c] / r : 0;
            dp[(size_t)i * C + c] = (nn_real)((g - gq) / s / n);
        }
    }
    return total;
}

/* Sparse categorical cross-entropy on probabilities, as Keras 3's TF backend:
 * r = clip(p); loss_i = -log r_t + log Σ_j r_j (sparse softmax CE of log r).
 * dL/dp_j = (1/Σr - [j=t]/r_t), 0 where clipped. */
NNK_API double nnk_loss_sparse_cce(int n, int C, const nn_real *p, const nn_real *labels,
                                         nn_real *dp) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const nn_real *pi = p + (size_t)i * C;
        int t = nnk_label_(labels[i], C), in;
        double s = 0;
        for (int c = 0; c < C; c++) s += nnk_clip_prob_(pi[c], &in);
        total += t >= 0 ? log(s) - log(nnk_clip_prob_(pi[t], &in)) : NAN;
        if (!dp) continue;
        for (int c = 0; c < C; c++) {
            double r = nnk_clip_prob_(pi[c], &in);
            double g = 1.0 / s - (c == t ? 1.0 / r : 0.0);
            dp[(size_t)i * C + c] = (nn_real)(in ? g / n : 0.0);
        }
    }
    return total;
}

/* Binary cross-entropy on probabilities, as Keras 3: r = clip(p);
 * -(y log r + (1-y) log(1-r)), per-sample mean over K. */
NNK_API double nnk_loss_bce(int n, int K, const nn_real *p, const nn_real *y, nn_real *dp) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double row = 0;
        for (int k = 0; k < K; k++) {
            size_t at = (size_t)i * K + k;
            int in;
            double r = nnk_clip_prob_(p[at], &in), t = y[at];
            row -= t * log(r) + (1 - t) * log(1 - r);
            if (dp) dp[at] = (nn_real)(in ? (-t / r + (1 - t) / (1 - r)) / ((double)n * K) : 0.0);
        }
        total += row / K;
    }
    return total;
}

NNK_API double nnk_loss_mse(int n, int K, const nn_real *pred, const nn_real *y, nn_real *dpred) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double row = 0;
        for (int k = 0; k < K; k++) {
            size_t at = (size_t)i * K + k;
            double d = (double)pred[at] - y[at];
            row += d * d;
            if (dpred) dpred[at] = (nn_real)(2 * d / ((double)n * K));
        }
        total += row / K;
    }
    return total;
}

/* The gradient of |d| is sign(d), 0 at 0. */
NNK_API double nnk_loss_mae(int n, int K, const nn_real *pred, const nn_real *y, nn_real *dpred) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double row = 0;
        for (int k = 0; k < K; k++) {
            size_t at = (size_t)i * K + k;
            double d = (double)pred[at] - y[at];
            row += fabs(d);
            if (dpred) dpred[at] = (nn_real)((d > 0) - (d < 0)) / (nn_real)((double)n * K);
        }
        total += row / K;
    }
    return total;
}

/* ---------------------------------------------------------------- regularizers */

/* l1 Σ|w| + l2 Σ w²  (Keras's l1/l2/l1_l2 regularizers). */
NNK_API double nnk_l1l2_loss(int64_t size, double l1, double l2, const nn_real *w) {
    double a = 0, q = 0;
    for (int64_t i = 0; i < size; i++) { a += fabs((double)w[i]); q += (double)w[i] * w[i]; }
    return l1 * a + l2 * q;
}

/* g += l1 sign(w) + 2 l2 w */
NNK_API void nnk_l1l2_grad(int64_t size, double l1, double l2, const nn_real *w, nn_real *g) {
    nn_real a = (nn_real)l1, b = (nn_real)(2 * l2);
    #pragma omp parallel for schedule(static) if (size >= NNK_PAR_MIN)
    for (int64_t i = 0; i < size; i++)
        g[i] += a * (nn_real)((w[i] > 0) - (w[i] < 0)) + b * w[i];
}

/* ---------------------------------------------------------------- optimizers */

/* Keras 3 formulas (not PyTorch's). */

/* momentum 0: w -= lr g (m unused, may be NULL).  Else m = momentum m - lr g;
 * nesterov: w += momentum m - lr g; else w += m. */
/* The per-weight kernel is the grouped kernel (nnk_sgd_update_all, below) on one part:
 * one implementation, so fused and unfused steps give the same bits. */
NNK_API void nnk_sgd_update_all(int parts, nn_real *const *w, const nn_real *const *g, nn_real *const *m,
                                const int64_t *size, double lr, double momentum, int nesterov);
NNK_API void nnk_sgd_update(int64_t size, double lr, double momentum, int nesterov,
                                  nn_real *w, const nn_real *g, nn_real *m) {
    nnk_sgd_update_all(1, &w, &g, &m, &size, lr, momentum, nesterov);
}

/* Lane-wise square root, correctly rounded like sqrtf/sqrt.  The libm call cannot be
 * vectorized (it may set errno), so the optimizer loops use these. */
static inline nnk_vec_ nnk_vsqrt_(nnk_vec_ v) {
#if defined(__AVX512F__)
    if (sizeof(nn_real) == 4) return (nnk_vec_)_mm512_sqrt_ps((__m512)v);
    return (nnk_vec_)_mm512_sqrt_pd((__m512d)v);
#elif defined(__AVX__)
    if (sizeof(nn_real) == 4) return (nnk_vec_)_mm256_sqrt_ps((__m256)v);
    return (nnk_vec_)_mm256_sqrt_pd((__m256d)v);
#elif defined(__SSE2__)
    if (sizeof(nn_real) == 4) return (nnk_vec_)_mm_sqrt_ps((__m128)v);
    return (nnk_vec_)_mm_sqrt_pd((__m128d)v);
#else
    for (int l = 0; l < NNK_VEC_LANES; l++) v[l] = nnk_sqrt_(v[l]);
    return v;
#endif
}

/* The moments of weights whose gradient stays 0 (dead ReLU units) decay geometrically
 * into subnormal floats, which x86 handles ~100x slower (it made Adam 5% of a
 * fashion_cnn epoch).  The optimizer loops flush subnormals to zero on the calling
 * thread (FTZ/DAZ), as TensorFlow does for Keras; the old mode is restored after. */
static inline unsigned nnk_flush_subnormals_begin_(void) {
#if defined(__SSE2__)
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040);   /* FTZ (bit 15) | DAZ (bit 6) */
    return saved;
#else
    return 0;
#endif
}

static inline void nnk_flush_subnormals_end_(unsigned saved) {
#if defined(__SSE2__)
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

/* t is the 1-based step.  alpha = lr sqrt(1-β2^t)/(1-β1^t); m += (g-m)(1-β1);
 * v += (g²-v)(1-β2); w -= alpha m / (sqrt(v) + eps)  (eps outside the sqrt, on raw v).
 * Whole vectors first, then the remainder element by element, same formulas;
 * subnormals flushed (above). */
/* One Adam step of element i (one vector of NNK_VEC_LANES from i, or one element): the
 * kernel and the grouped kernel below (nnk_adam_update_all) share them, so both give
 * the same bits. */
static inline void nnk_adam_vec_(size_t i, nn_real alpha, nn_real b1, nn_real b2, nn_real e, nn_real *w,
                                 const nn_real *g, nn_real *m, nn_real *v) {
    nnk_vec_ gi = *(const nnk_vec_ *)(g + i), mi = *(nnk_vec_ *)(m + i), vi = *(nnk_vec_ *)(v + i);
    mi += (gi - mi) * b1;
    vi += (gi * gi - vi) * b2;
    *(nnk_vec_ *)(m + i) = mi;
    *(nnk_vec_ *)(v + i) = vi;
    *(nnk_vec_ *)(w + i) -= alpha * mi / (nnk_vsqrt_(vi) + e);
}

static inline void nnk_adam_one_(size_t i, nn_real alpha, nn_real b1, nn_real b2, nn_real e, nn_real *w,
                                 const nn_real *g, nn_real *m, nn_real *v) {
    m[i] += (g[i] - m[i]) * b1;
    v[i] += (g[i] * g[i] - v[i]) * b2;
    w[i] -= alpha * m[i] / (nnk_sqrt_(v[i]) + e);
}

static inline nn_real nnk_adam_alpha_(double lr, double beta1, double beta2, int64_t t) {
    double td = (double)t;
    return (nn_real)(lr * sqrt(1 - pow(beta2, td)) / (1 - pow(beta1, td)));
}

NNK_API void nnk_adam_update_all(int parts, nn_real *const *w, const nn_real *const *g, nn_real *const *m,
                                 nn_real *const *v, const int64_t *size, double lr, double beta1, double beta2,
                                 double eps, int64_t t);
NNK_API void nnk_adam_update(int64_t size, double lr, double beta1, double beta2, double eps,
                                   int64_t t, nn_real *w, const nn_real *g, nn_real *m, nn_real *v) {
    nnk_adam_update_all(1, &w, &g, &m, &v, &size, lr, beta1, beta2, eps, t);
}

static inline void nnk_rmsprop_one_(int64_t i, nn_real r, nn_real r1, nn_real a, nn_real mu, nn_real e, int centered,
                                    int momentum, nn_real *w, const nn_real *g, nn_real *v, nn_real *mom,
                                    nn_real *mg) {
    v[i] = r * v[i] + r1 * g[i] * g[i];
    nn_real denom = v[i];
    if (centered) {
        mg[i] = r * mg[i] + r1 * g[i];
        denom -= mg[i] * mg[i];
    }
    nn_real inc = a * g[i] / nnk_sqrt_(denom + e);
    if (momentum) {
        mom[i] = mu * mom[i] + inc;
        w[i] -= mom[i];
    } else {
        w[i] -= inc;
    }
}

NNK_API void nnk_rmsprop_update_all(int parts, nn_real *const *w, const nn_real *const *g, nn_real *const *v,
                                    nn_real *const *mom, nn_real *const *mg, const int64_t *size, double lr,
                                    double rho, double momentum, double eps, int centered);
NNK_API void nnk_rmsprop_update(int64_t size, double lr, double rho, double momentum,
                                      double eps, int centered, nn_real *w, const nn_real *g,
                                      nn_real *v, nn_real *mom, nn_real *mg) {
    nnk_rmsprop_update_all(1, &w, &g, &v, &mom, &mg, &size, lr, rho, momentum, eps, centered);
}

/* ---------------------------------------------------------------- all updates of a step */

/* fuse_updates.c: one kernel updates every weight of the model (part k: the weight
 * w[k], its gradient g[k] and optimizer slots (Adam's m[k], v[k], ...) of size[k]
 * elements, as the per-weight kernels take them), in one parallel region instead of
 * one per weight.  The weights are cut into chunks of
 * NNK_UPDATE_CHUNK elements (a multiple of the vector width, counted from each
 * weight's start, so every element takes the vector or the scalar path it takes in
 * the per-weight kernel: the same bits); threads share the chunks of all weights. */
#define NNK_UPDATE_CHUNK 8192

/* The chunks of the parts, and chunk c's part and element range. */
static inline int64_t nnk_update_chunks_(int parts, const int64_t *size) {
    int64_t c = 0;
    for (int k = 0; k < parts; k++) c += (size[k] + NNK_UPDATE_CHUNK - 1) / NNK_UPDATE_CHUNK;
    return c;
}

static inline int nnk_update_chunk_(int parts, const int64_t *size, int64_t c, int64_t *lo, int64_t *hi) {
    for (int k = 0; k < parts; k++) {
        int64_t ck = (size[k] + NNK_UPDATE_CHUNK - 1) / NNK_UPDATE_CHUNK;
        if (c < ck) {
            *lo = c * NNK_UPDATE_CHUNK;
            *hi = *lo + NNK_UPDATE_CHUNK < size[k] ? *lo + NNK_UPDATE_CHUNK : size[k];
            return k;
        }
        c -= ck;
    }
    return -1;
}

static inline int64_t nnk_update_total_(int parts, const int64_t *size) {
    int64_t t = 0;
    for (int k = 0; k < parts; k++) t += size[k];
    return t;
}

NNK_API void nnk_adam_update_all(int parts, nn_real *const *w, const nn_real *const *g, nn_real *const *m,
                                 nn_real *const *v, const int64_t *size, double lr, double beta1, double beta2,
                                 double eps, int64_t t) {
    nn_real alpha = nnk_adam_alpha_(lr, beta1, beta2, t);
    nn_real b1 = (nn_real)(1 - beta1), b2 = (nn_real)(1 - beta2), e = (nn_real)eps;
    int64_t chunks = nnk_update_chunks_(parts, size);
    #pragma omp parallel if (nnk_update_total_(parts, size) >= NNK_PAR_MIN)
    {
        unsigned csr = nnk_flush_subnormals_begin_();
        #pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t lo = 0, hi = 0;
            int k = nnk_update_chunk_(parts, size, c, &lo, &hi);
            int64_t vec_end = size[k] / NNK_VEC_LANES * NNK_VEC_LANES, i = lo;
            for (; i + NNK_VEC_LANES <= hi && i < vec_end; i += NNK_VEC_LANES)
                nnk_adam_vec_((size_t)i, alpha, b1, b2, e, w[k], g[k], m[k], v[k]);
            for (; i < hi; i++) nnk_adam_one_((size_t)i, alpha, b1, b2, e, w[k], g[k], m[k], v[k]);
        }
        nnk_flush_subnormals_end_(csr);
    }
}

NNK_API void nnk_sgd_update_all(int parts, nn_real *const *w, const nn_real *const *g, nn_real *const *m,
                                const int64_t *size, double lr, double momentum, int nesterov) {
    nn_real a = (nn_real)lr, mu = (nn_real)momentum;
    int64_t chunks = nnk_update_chunks_(parts, size);
    #pragma omp parallel for schedule(static) if (nnk_update_total_(parts, size) >= NNK_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = 0, hi = 0;
        int k = nnk_update_chunk_(parts, size, c, &lo, &hi);
        nn_real *wk = w[k], *mk = m[k];
        const nn_real *gk = g[k];
        if (momentum == 0)   /* m unused (may be NULL) */
            for (int64_t i = lo; i < hi; i++) wk[i] -= a * gk[i];
        else
            for (int64_t i = lo; i < hi; i++) {
                mk[i] = mu * mk[i] - a * gk[i];
                wk[i] += nesterov ? mu * mk[i] - a * gk[i] : mk[i];
            }
    }
}

NNK_API void nnk_rmsprop_update_all(int parts, nn_real *const *w, const nn_real *const *g, nn_real *const *v,
                                    nn_real *const *mom, nn_real *const *mg, const int64_t *size, double lr,
                                    double rho, double momentum, double eps, int centered) {
    nn_real r = (nn_real)rho, r1 = (nn_real)(1 - rho), a = (nn_real)lr, mu = (nn_real)momentum,
            e = (nn_real)eps;
    int64_t chunks = nnk_update_chunks_(parts, size);
    #pragma omp parallel for schedule(static) if (nnk_update_total_(parts, size) >= NNK_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = 0, hi = 0;
        int k = nnk_update_chunk_(parts, size, c, &lo, &hi);
        for (int64_t i = lo; i < hi; i++)
            nnk_rmsprop_one_(i, r, r1, a, mu, e, centered, momentum > 0, w[k], g[k], v[k], mom[k], mg[k]);
    }
}

/* ---------------------------------------------------------------- pre-packed weights
 *
 * The layout pass (compiler/ir/layout.c) may give a contraction its weight operand
 * already in the micro-kernel's panel order, written by a pack node once per step:
 * op(B)[K,N] as panels bp[P][K][NR] (columns P*NR.. of every k, zero past N).  The GEMM
 * then packs nothing, and a convolution reads its input in place instead of building
 * im2col's matrix: the micro-kernel's A rows are output pixels, fetched from x for each
 * window cell (kh, kw).  Same K slices, same micro-kernel, same sum order as the paths
 * above, so a packed forward step gives the same bits as an NHWC one (the data gradient
 * sums its window cells in another order: float reassociation only).  A packed buffer
 * rounds N up to NNK_PACK_COLS, a multiple of every NR, so its size (which the memory
 * plan fixes at compile time) does not depend on the vector width. */
#define NNK_PACK_COLS 32
_Static_assert(NNK_PACK_COLS % NNK_GEMM_NR == 0, "a packed buffer rounds N to a multiple of NR");

/* op(B) into panels: B stored [K,N] row-major, or [N,K] when tb (op(B) = Bᵀ). */
NNK_API void nnk_pack_b(int tb, int K, int N, const nn_real *B, nn_real *bp) {
    int panels = (N + NNK_GEMM_NR - 1) / NNK_GEMM_NR;
    #pragma omp parallel for schedule(static) if ((int64_t)K * N >= NNK_PAR_MIN)
    for (int p = 0; p < panels; p++) {
        nn_real *dst = bp + (size_t)p * K * NNK_GEMM_NR;
        int j0 = p * NNK_GEMM_NR, cols = nnk_min_(NNK_GEMM_NR, N - j0);
        if (!tb) {
            nnk_gemm_pack_b_(0, N, K, B, 0, K, j0, dst);
            continue;
        }
        /* Bᵀ: each of B's rows is read once, contiguously, into a panel column. */
        if (cols < NNK_GEMM_NR) memset(dst, 0, (size_t)K * NNK_GEMM_NR * sizeof(nn_real));
        for (int j = 0; j < cols; j++) {
            const nn_real *src = B + (size_t)(j0 + j) * K;
            for (int k = 0; k < K; k++) dst[(size_t)k * NNK_GEMM_NR + j] = src[k];
        }
    }
}

/* A stride-1 convolution's data gradient is a convolution of dy with the kernel turned
 * half a turn and its channels swapped: op(B)[(kh*KW + kw)*F + f, c] =
 * w[KH-1-kh, KW-1-kw, c, f], packed as nnk_pack_b packs. */
NNK_API void nnk_pack_conv_flip(int KH, int KW, int C, int F, const nn_real *w, nn_real *bp) {
    int K = KH * KW * F, panels = (C + NNK_GEMM_NR - 1) / NNK_GEMM_NR;
    #pragma omp parallel for schedule(static) if ((int64_t)K * C >= NNK_PAR_MIN)
    for (int p = 0; p < panels; p++) {
        nn_real *dst = bp + (size_t)p * K * NNK_GEMM_NR;
        int c0 = p * NNK_GEMM_NR, cols = nnk_min_(NNK_GEMM_NR, C - c0);
        if (cols < NNK_GEMM_NR) memset(dst, 0, (size_t)K * NNK_GEMM_NR * sizeof(nn_real));
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const nn_real *blk = w + ((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * C * F;
                nn_real *d = dst + ((size_t)kh * KW + kw) * F * NNK_GEMM_NR;
                for (int j = 0; j < cols; j++) {
                    const nn_real *src = blk + (size_t)(c0 + j) * F;
                    for (int f = 0; f < F; f++) d[(size_t)f * NNK_GEMM_NR + j] = src[f];
                }
            }
    }
}

/* How a packed contraction's outputs are split: row tiles of at most MC rows times
 * groups of column panels, every output in one tile, so who computes it does not change
 * its sum.  Few rows (a Dense layer on one batch) still give every thread work: the
 * panel groups shrink until there are two tiles per thread. */
typedef struct nnk_tiles_ { int mc, mtiles, panels, group, groups; } nnk_tiles_;
static inline nnk_tiles_ nnk_packed_tiles_(int M, int N, int threads) {
    nnk_tiles_ t;
    t.panels = (N + NNK_GEMM_NR - 1) / NNK_GEMM_NR;
    t.mc = nnk_split_(M, (M + NNK_GEMM_MC - 1) / NNK_GEMM_MC, NNK_GEMM_MR);
    t.mtiles = (M + t.mc - 1) / t.mc;
    t.group = nnk_min_(NNK_GEMM_NC / NNK_GEMM_NR, t.panels);
    while (t.group > 1 && t.mtiles * ((t.panels + t.group - 1) / t.group) < 2 * threads) t.group = (t.group + 1) / 2;
    t.groups = (t.panels + t.group - 1) / t.group;
    return t;
}

static inline int nnk_packed_threads_(double flops) {
    int threads = 1;
#ifdef _OPENMP
    if (flops >= NNK_GEMM_PAR_MIN) threads = omp_get_max_threads();
#endif
    return threads;
}

/* C[M,N] = A[M,K]·op(B), bp op(B) as nnk_pack_b packs it, then the epilogue (NULL: none). */
static inline void nnk_gemm_packed_epi_(int M, int N, int K, const nn_real *A, const nn_real *bp,
                                        nn_real *C, const nnk_epi *epi) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        memset(C, 0, (size_t)M * N * sizeof(nn_real));
        if (epi) nnk_epi_rows_(epi, C, (size_t)N, M, N, 0, 0);
        return;
    }
    int threads = nnk_packed_threads_((double)M * N * K);
    int kc_max = nnk_split_(K, (K + NNK_GEMM_KC - 1) / NNK_GEMM_KC, 1);
    nnk_tiles_ t = nnk_packed_tiles_(M, N, threads);
    #pragma omp parallel for schedule(static) if (threads > 1)
    for (int tile = 0; tile < t.mtiles * t.groups; tile++) {
        int i0 = tile / t.groups * t.mc, mc = nnk_min_(t.mc, M - i0);
        int p0 = tile % t.groups * t.group, p1 = nnk_min_(t.panels, p0 + t.group);
        int full = mc / NNK_GEMM_MR * NNK_GEMM_MR;  /* whole MR-row panels read A in place */
        _Alignas(64) nn_real ap[NNK_GEMM_MR * NNK_GEMM_KC];
        for (int k0 = 0; k0 < K; k0 += kc_max) {
            int kc = nnk_min_(kc_max, K - k0);
            if (full < mc) nnk_gemm_pack_a_(0, M, K, A, i0 + full, mc - full, k0, kc, ap);
            for (int p = p0; p < p1; p++) {
                int jp = p * NNK_GEMM_NR, nr = nnk_min_(NNK_GEMM_NR, N - jp);
                const nn_real *b = bp + (size_t)p * K * NNK_GEMM_NR + (size_t)k0 * NNK_GEMM_NR;
                for (int ip = 0; ip < mc; ip += NNK_GEMM_MR) {
                    size_t i = (size_t)(i0 + ip);
                    int mr = nnk_min_(NNK_GEMM_MR, mc - ip);
                    if (ip < full) nnk_gemm_micro_(kc, A + i * K + k0, (size_t)K, 1, b, C + i * N + jp, N, mr, nr, k0 == 0);
                    else nnk_gemm_micro_(kc, ap, 1, NNK_GEMM_MR, b, C + i * N + jp, N, mr, nr, k0 == 0);
                    if (epi && k0 + kc == K) nnk_epi_rows_(epi, C + i * N + jp, (size_t)N, mr, nr, (int)i, jp);
                }
            }
        }
    }
}

/* C = A·op(B) + bias, then the activation (bias NULL, NN_EPI_NONE: the plain product). */
NNK_API void nnk_gemm_packed(int M, int N, int K, const nn_real *A, const nn_real *bp,
                             const nn_real *bias, int act, nn_real *C) {
    nnk_epi e = {bias, act, NULL, NN_EPI_NONE};
    nnk_gemm_packed_epi_(M, N, K, A, bp, C, bias || act != NN_EPI_NONE ? &e : NULL);
}

/* C = A·op(B) times act'(y) at each element (nnk_gemm_act_grad with packed weights). */
NNK_API void nnk_gemm_packed_act_grad(int M, int N, int K, const nn_real *A, const nn_real *bp,
                                      const nn_real *y, int act, nn_real *C) {
    nnk_epi e = {NULL, NN_EPI_NONE, y, act};
    nnk_gemm_packed_epi_(M, N, K, A, bp, C, &e);
}

/* Where the rows of a micro-tile (output pixels i..i+mr) find each window cell's
 * channels: tab[cell * MR + r] points at x[b, ih, iw, 0], or is NULL over the padding
 * and for rows past mr.  Made once per row tile, used by every panel and K slice. */
static inline void nnk_conv_rows_(int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL,
                                  int OH, int OW, const nn_real *x, int i, int mr, const nn_real **tab) {
    for (int r = 0; r < NNK_GEMM_MR; r++) {
        int pix = i + r, b = pix / (OH * OW), q = pix % (OH * OW);
        int ih0 = q / OW * SH - PT, iw0 = q % OW * SW - PL;
        const nn_real *xb = x + (size_t)b * H * W * C;
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                int ih = ih0 + kh, iw = iw0 + kw;
                int inside = r < mr && ih >= 0 && ih < H && iw >= 0 && iw < W;
                tab[(kh * KW + kw) * NNK_GEMM_MR + r] = inside ? xb + ((size_t)ih * W + iw) * C : NULL;
            }
    }
}

/* The micro-kernel over columns [k0, k0+kc) of a convolution's im2col matrix, read from
 * x in place through tab (nnk_conv_rows_): column k = cell * C + c is channel c of the
 * input cell under window cell `cell`, zero over the padding.  epi (NULL: none) is the
 * epilogue of the tile's last K slice (rows from i, columns from jp): applied in registers
 * where it is bias and relu (nnk_epi_vec_: nnk_epi_rows_'s float operations, so the same
 * bits) before a full tile's one store; other epilogues and edge tiles go through
 * nnk_epi_rows_ after it. */
#define NNK_CONV_STORE_(r) do {                                                              \
        nnk_vec_ *q0 = (nnk_vec_ *)(c + (size_t)(r) * ldc), *q1 = q0 + 1;                    \
        nnk_vec_ v0 = c##r##0, v1 = c##r##1;                                                 \
        if (!overwrite) v0 = *q0 + v0, v1 = *q1 + v1;                                        \
        *q0 = nnk_epi_vec_(epi, v0, bias0), *q1 = nnk_epi_vec_(epi, v1, bias1);              \
    } while (0)
static inline void nnk_conv_micro_epi_(const nn_real *const *tab, int C, int k0, int kc,
                                       const nn_real *restrict bp, nn_real *restrict c, int ldc, int mr,
                                       int nr, int overwrite, const nnk_epi *epi, int i, int jp) {
    enum { ZEROS = 512 };
    static const nn_real zeros[ZEROS];
    nnk_vec_ c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    nnk_vec_ c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int k = k0; k < k0 + kc;) {
        int cell = k / C, c0 = k - cell * C;
        int len = nnk_min_(nnk_min_(C - c0, k0 + kc - k), ZEROS);
        const nn_real *const *t = tab + (size_t)cell * NNK_GEMM_MR;
        const nn_real *s0 = t[0] ? t[0] + c0 : zeros, *s1 = t[1] ? t[1] + c0 : zeros;
        const nn_real *s2 = t[2] ? t[2] + c0 : zeros, *s3 = t[3] ? t[3] + c0 : zeros;
        const nn_real *s4 = t[4] ? t[4] + c0 : zeros, *s5 = t[5] ? t[5] + c0 : zeros;
        const nn_real *bk = bp + (size_t)(k - k0) * NNK_GEMM_NR;
        for (int cc = 0; cc < len; cc++) {
            const nn_real a[NNK_GEMM_MR] = {s0[cc], s1[cc], s2[cc], s3[cc], s4[cc], s5[cc]};
            nnk_vec_ b0 = *(const nnk_vec_ *)(bk + (size_t)cc * NNK_GEMM_NR);
            nnk_vec_ b1 = *(const nnk_vec_ *)(bk + (size_t)cc * NNK_GEMM_NR + NNK_VEC_LANES);
            NNK_MICRO_ROW_(0) NNK_MICRO_ROW_(1) NNK_MICRO_ROW_(2)
            NNK_MICRO_ROW_(3) NNK_MICRO_ROW_(4) NNK_MICRO_ROW_(5)
        }
        k += len;
    }
    if (mr == NNK_GEMM_MR && nr == NNK_GEMM_NR && nnk_epi_in_vec_(epi)) {
        nnk_vec_ bias0 = {0}, bias1 = {0};
        if (epi && epi->bias) bias0 = *(const nnk_vec_ *)(epi->bias + jp), bias1 = *(const nnk_vec_ *)(epi->bias + jp + NNK_VEC_LANES);
        NNK_CONV_STORE_(0); NNK_CONV_STORE_(1); NNK_CONV_STORE_(2);
        NNK_CONV_STORE_(3); NNK_CONV_STORE_(4); NNK_CONV_STORE_(5);
        return;
    }
    NNK_MICRO_WRITE_();
    if (epi) nnk_epi_rows_(epi, c, (size_t)ldc, mr, nr, i, jp);
}
#undef NNK_CONV_STORE_

/* Window cells whose row pointers live on the stack; larger windows take the heap. */
#define NNK_CONV_TAB_CELLS 128

/* Output rows (pixels) per block of the packed forward: the block's row tables and, for
 * one K slice of one panel, its x rows and B's slice stay in L1 while every micro-tile
 * of the block runs over them. */
#define NNK_CONV_FWD_MC 144

/* y = conv(x, w) + bias, then the activation, w packed by nnk_pack_b: im2col's products
 * without its matrix (no workspace), the same K slices and micro-kernel sums as the
 * NHWC kernel, so the same bits.  Each thread takes an equal run of 6-pixel micro-tiles
 * (no barrier inside; who computes a tile does not change its sums), in blocks of
 * NNK_CONV_FWD_MC pixels: per block, panel by panel and slice by slice, every tile. */
NNK_API void nnk_conv2d_fwd_packed(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                   int SW, int PT, int PL, int OH, int OW, const nn_real *x,
                                   const nn_real *bp, const nn_real *bias, int act, nn_real *y) {
    nnk_epi e = {bias, act, NULL, NN_EPI_NONE}, *epi = bias || act != NN_EPI_NONE ? &e : NULL;
    int M = n * OH * OW, K = KH * KW * C, cells = KH * KW;
    if (M <= 0 || F <= 0) return;
    int threads = nnk_packed_threads_((double)M * F * K);
    int kc_max = nnk_split_(K, (K + NNK_GEMM_KC - 1) / NNK_GEMM_KC, 1);
    int panels = (F + NNK_GEMM_NR - 1) / NNK_GEMM_NR, tiles = (M + NNK_GEMM_MR - 1) / NNK_GEMM_MR;
    enum { BT = NNK_CONV_FWD_MC / NNK_GEMM_MR };   /* micro-tiles per block */
    #pragma omp parallel if (threads > 1)
    {
        int tid = 0, nth = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num(), nth = omp_get_num_threads();
#endif
        int t_lo = (int)((int64_t)tiles * tid / nth), t_hi = (int)((int64_t)tiles * (tid + 1) / nth);
        /* The block's tables on the stack (fewer tiles per block for larger windows), or
         * one tile's on the heap for windows past that. */
        const nn_real *stack_tab[NNK_CONV_TAB_CELLS * NNK_GEMM_MR * 4];
        int fit = (int)(sizeof stack_tab / sizeof *stack_tab / ((size_t)cells * NNK_GEMM_MR)), bt = nnk_max_(1, nnk_min_(BT, fit));
        const nn_real **tab = fit ? stack_tab : (const nn_real **)malloc((size_t)cells * NNK_GEMM_MR * sizeof *tab);
        for (int t0 = t_lo; t0 < t_hi; t0 += bt) {
            int t1 = nnk_min_(t_hi, t0 + bt);
            for (int t = t0; t < t1; t++)
                nnk_conv_rows_(H, W, C, KH, KW, SH, SW, PT, PL, OH, OW, x, t * NNK_GEMM_MR,
                               nnk_min_(NNK_GEMM_MR, M - t * NNK_GEMM_MR), tab + (size_t)(t - t0) * cells * NNK_GEMM_MR);
            for (int p = 0; p < panels; p++) {
                int jp = p * NNK_GEMM_NR, nr = nnk_min_(NNK_GEMM_NR, F - jp);
                for (int k0 = 0; k0 < K; k0 += kc_max) {
                    int kc = nnk_min_(kc_max, K - k0);
                    const nn_real *b = bp + (size_t)p * K * NNK_GEMM_NR + (size_t)k0 * NNK_GEMM_NR;
                    for (int t = t0; t < t1; t++) {
                        int i = t * NNK_GEMM_MR;
                        nnk_conv_micro_epi_(tab + (size_t)(t - t0) * cells * NNK_GEMM_MR, C, k0, kc, b, y + (size_t)i * F + jp, F,
                                            nnk_min_(NNK_GEMM_MR, M - i), nr, k0 == 0, k0 + kc == K ? epi : NULL, i, jp);
                    }
                }
            }
        }
        if (tab != stack_tab) free(tab);
    }
}

/* The data gradient with w packed by nnk_pack_conv_flip, any stride and padding, then,
 * when xact is not NULL, times act'(xact) (nnk_conv2d_bwd_data_act's fused gradient).
 * Register tiles of six dx cells (of one window column kw, from six dy pixels in a row,
 * or in rows that share their window rows) times one panel of channels sum over the
 * window rows kh that reach them and the F filters, then are added to those dx cells:
 * col2im's scatter from registers instead of a matrix, KW additions per dx cell instead
 * of KH·KW.  Pixels whose window cell falls in the padding are left out of the tiles, so
 * no product is computed over padding (the flipped convolution this replaces multiplied
 * dy's zero border: 1.4x the FLOPs on fashion_cnn's second layer).  A task is one
 * sample's dx for one panel of channels (fashion_cnn: 26 KB of dy and 11 KB of dx, in
 * L1/L2 throughout); each dx element sums its terms in a fixed order whatever the
 * thread count. */
#define NNK_DX_FMA_(r) if (mr > (r)) { nn_real s_ = a##r[f]; c##r##0 += s_ * b0; c##r##1 += s_ * b1; }
#define NNK_DX_ADD_(r) if (mr > (r)) {                                                           \
        if (nr == NNK_GEMM_NR) {                                                                 \
            *(nnk_vec_ *)dst[r] += c##r##0; *(nnk_vec_ *)(dst[r] + NNK_VEC_LANES) += c##r##1;    \
        } else {                                                                                 \
            _Alignas(64) nn_real t_[NNK_GEMM_NR];                                                \
            *(nnk_vec_ *)t_ = c##r##0; *(nnk_vec_ *)(t_ + NNK_VEC_LANES) = c##r##1;              \
            for (int j = 0; j < nr; j++) dst[r][j] += t_[j];                                     \
        } }
/* The weight vectors in registers: with four rows or fewer gcc otherwise folds their loads
 * into the FMAs, loading each once per row (load-bound: 0.5x on a 28x28x128 layer). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define NNK_DX_IN_REGS_(u, v) __asm__("" : "+x"(u), "+x"(v))
#else
#define NNK_DX_IN_REGS_(u, v) ((void)0)
#endif
/* mr rows: src[r] is row r's dy pixel for the first window row, a further sstep for each
 * next one (nkh of them), whose weights are bstep further on in b. */
static inline __attribute__((always_inline)) void nnk_dx_tile_(int mr, int nkh, int F, int nr,
                                                               const nn_real *const *src, ptrdiff_t sstep,
                                                               const nn_real *b, ptrdiff_t bstep,
                                                               nn_real *const *dst) {
    nnk_vec_ c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    nnk_vec_ c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int t = 0; t < nkh; t++, b += bstep) {
        ptrdiff_t o = t * sstep;
        const nn_real *a0 = src[0] + o, *a1 = src[mr > 1] + o, *a2 = src[2 * (mr > 2)] + o;
        const nn_real *a3 = src[3 * (mr > 3)] + o, *a4 = src[4 * (mr > 4)] + o, *a5 = src[5 * (mr > 5)] + o;
        for (int f = 0; f < F; f++) {
            nnk_vec_ b0 = *(const nnk_vec_ *)(b + (size_t)f * NNK_GEMM_NR);
            nnk_vec_ b1 = *(const nnk_vec_ *)(b + (size_t)f * NNK_GEMM_NR + NNK_VEC_LANES);
            NNK_DX_IN_REGS_(b0, b1);
            NNK_DX_FMA_(0) NNK_DX_FMA_(1) NNK_DX_FMA_(2) NNK_DX_FMA_(3) NNK_DX_FMA_(4) NNK_DX_FMA_(5)
        }
    }
    NNK_DX_ADD_(0) NNK_DX_ADD_(1) NNK_DX_ADD_(2) NNK_DX_ADD_(3) NNK_DX_ADD_(4) NNK_DX_ADD_(5)
}
#undef NNK_DX_FMA_
#undef NNK_DX_ADD_

/* A tile of cnt rows: mr a constant in each copy. */
static inline void nnk_dx_tile_any_(int cnt, int nkh, int F, int nr, const nn_real *const *src, ptrdiff_t sstep,
                                    const nn_real *b, ptrdiff_t bstep, nn_real *const *dst) {
    switch (cnt) {
    case 1: nnk_dx_tile_(1, nkh, F, nr, src, sstep, b, bstep, dst); break;
    case 2: nnk_dx_tile_(2, nkh, F, nr, src, sstep, b, bstep, dst); break;
    case 3: nnk_dx_tile_(3, nkh, F, nr, src, sstep, b, bstep, dst); break;
    case 4: nnk_dx_tile_(4, nkh, F, nr, src, sstep, b, bstep, dst); break;
    case 5: nnk_dx_tile_(5, nkh, F, nr, src, sstep, b, bstep, dst); break;
    case 6: nnk_dx_tile_(6, nkh, F, nr, src, sstep, b, bstep, dst); break;
    default: break;
    }
}

#ifndef NNK_DX_BLOCK
#define NNK_DX_BLOCK 16384
#endif
#ifndef NNK_DX_KBYTES
#define NNK_DX_KBYTES 12288
#endif

/* Tiles of 6 or 5 pixels, whichever leaves fewer over in a row of len (fashion_cnn's
 * trimmed dy rows are 10 wide: two tiles of 5 instead of 6 + 4), so whole rows fill whole
 * tiles and a run of rows alike leaves no partial tile.  (Tiles of 4 ran at 0.6-0.9x.) */
static inline int nnk_dx_tile_rows_(int len) {
    return (5 - len % 5) % 5 < (6 - len % 6) % 6 ? 5 : 6;
}

/* One pass over dx rows [ih0, ih1) of a panel: for window column kw, the window rows in
 * [g0, g1) that reach each row and filters [f0, f0 + fs), in tiles of dy pixels of rows
 * alike (the same window rows), their sums added to dx.  bpp: the panel's weights. */
static inline void nnk_dx_pass_(int H, int W, int C, int KH, int KW, int F, int SH, int SW, int PT, int PL,
                                int OH, int OW, int ih0, int ih1, int kw, int g0, int g1, int f0, int fs,
                                int nr, const nn_real *dyb, const nn_real *bpp, ptrdiff_t sstep,
                                ptrdiff_t bstep, nn_real *dxb) {
    const nn_real *src[NNK_GEMM_MR];
    nn_real *dst[NNK_GEMM_MR];
    int cnt = 0, lo, hi, tile_kh = -1, tile_nkh = 0;
    nnk_conv_cols_(OW, W, SW, PL, kw, &lo, &hi);
    if (lo >= hi) return;
    int tm = nnk_dx_tile_rows_(hi - lo);
    /* The weights of window cell (kh, kw) at filter f0. */
#define NNK_DX_B_(kh) (bpp + (((size_t)(KH - 1 - (kh)) * KW + (KW - 1 - kw)) * F + f0) * NNK_GEMM_NR)
    for (int ih = ih0; ih < ih1; ih++) {
        /* The window rows in [g0, g1) reaching ih: kh ≡ ih + PT (mod SH), dy row
         * oh = (ih + PT - kh) / SH in [0, OH). */
        int top = ih + PT, kh0 = nnk_max_(g0, top - (OH - 1) * SH);
        kh0 += ((top - kh0) % SH + SH) % SH;
        int khe = nnk_min_(g1 - 1, top);
        int nkh = kh0 <= khe ? (khe - kh0) / SH + 1 : 0;
        if (nkh <= 0) continue;
        if (cnt && (kh0 != tile_kh || nkh != tile_nkh)) {   /* rows of another kind: flush */
            nnk_dx_tile_any_(cnt, tile_nkh, fs, nr, src, sstep, NNK_DX_B_(tile_kh), bstep, dst);
            cnt = 0;
        }
        tile_kh = kh0, tile_nkh = nkh;
        const nn_real *srow = dyb + (size_t)((top - kh0) / SH) * OW * F + f0;
        nn_real *drow = dxb + (size_t)ih * W * C;
        for (int ow = lo; ow < hi; ow++) {
            src[cnt] = srow + (size_t)ow * F;
            dst[cnt] = drow + (size_t)(ow * SW - PL + kw) * C;
            if (++cnt == tm) {
                const nn_real *bk = NNK_DX_B_(kh0);
                if (tm == 6) nnk_dx_tile_(6, nkh, fs, nr, src, sstep, bk, bstep, dst);
                else nnk_dx_tile_(5, nkh, fs, nr, src, sstep, bk, bstep, dst);
                cnt = 0;
            }
        }
    }
    if (cnt) nnk_dx_tile_any_(cnt, tile_nkh, fs, nr, src, sstep, NNK_DX_B_(tile_kh), bstep, dst);
#undef NNK_DX_B_
}

NNK_API void nnk_conv2d_bwd_data_packed_act(int n, int H, int W, int C, int KH, int KW, int F,
                                            int SH, int SW, int PT, int PL, int OH, int OW,
                                            const nn_real *dy, const nn_real *bp, const nn_real *xact,
                                            int act, nn_real *dx) {
    int panels = (C + NNK_GEMM_NR - 1) / NNK_GEMM_NR;
    size_t K = (size_t)KH * KW * F;
    int threads = nnk_packed_threads_((double)n * OH * OW * K * C);
    /* From window row kh to kh + SH: dy one row up, the flipped weights SH rows back. */
    ptrdiff_t sstep = -(ptrdiff_t)OW * F, bstep = -(ptrdiff_t)SH * KW * F * NNK_GEMM_NR;
    /* Blocks of dx rows whose cells of one panel fill about NNK_DX_BLOCK bytes: the KW
     * passes over a block find it in L1 (fashion_cnn: a whole 12x12 sample; a 111-wide
     * image: two rows, whose passes read the same few dy rows from L2). */
    int rows = nnk_max_(1, (int)(NNK_DX_BLOCK / ((size_t)W * NNK_GEMM_NR * sizeof(nn_real))));
    /* A pass sums window rows [g, g + gk) and filters [f0, f0 + fs): weights of at most
     * NNK_DX_KBYTES, which the pass's tiles then find in L1 (fashion_cnn: all 3 rows of
     * 64 filters in one pass; 128 filters: one row a pass). */
    int krows = nnk_max_(1, (int)(NNK_DX_KBYTES / (NNK_GEMM_NR * sizeof(nn_real))));
    int fs = nnk_min_(F, krows), gk = nnk_max_(1, krows / fs);
    #pragma omp parallel for collapse(2) schedule(static) if (threads > 1)
    for (int b = 0; b < n; b++) {
        for (int p = 0; p < panels; p++) {
            int c0 = p * NNK_GEMM_NR, nr = nnk_min_(NNK_GEMM_NR, C - c0);
            nn_real *dxb = dx + (size_t)b * H * W * C + c0;
            const nn_real *dyb = dy + (size_t)b * OH * OW * F;
            const nn_real *bpp = bp + (size_t)p * K * NNK_GEMM_NR;
            for (int ih0 = 0; ih0 < H; ih0 += rows) {
                int ih1 = nnk_min_(H, ih0 + rows);
                for (size_t q = (size_t)ih0 * W; q < (size_t)ih1 * W; q++) {   /* vector stores: a memset call per cell cost 4% */
                    nn_real *d = dxb + q * C;
                    if (nr == NNK_GEMM_NR) *(nnk_vec_ *)d = *(nnk_vec_ *)(d + NNK_VEC_LANES) = (nnk_vec_){0};
                    else for (int j = 0; j < nr; j++) d[j] = 0;
                }
                for (int kw = 0; kw < KW; kw++)
                    for (int g = 0; g < KH; g += gk)
                        for (int f0 = 0; f0 < F; f0 += fs)
                            nnk_dx_pass_(H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, ih0, ih1, kw, g,
                                         nnk_min_(KH, g + gk), f0, nnk_min_(fs, F - f0), nr, dyb, bpp, sstep,
                                         bstep, dxb);
                if (xact) {   /* the activation's gradient while the block is in cache */
                    const nn_real *yb = xact + (size_t)b * H * W * C + c0;
                    for (size_t q = (size_t)ih0 * W; q < (size_t)ih1 * W; q++)
                        for (int j = 0; j < nr; j++) dxb[q * C + j] = nnk_act_grad_(act, yb[q * C + j], dxb[q * C + j]);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- blocked channels
 *
 * The filter gradient with blocked channels (layout.c's LAYOUT_BLOCKED, chosen only for
 * conv2d_bwd_filter nodes): a chunk of samples at a time, x and dy are copied into the
 * workspace as blocks [sample][C/cb][H'][W'][cb] ("nChw16c" on AVX2: cb = two vectors,
 * or C itself for a smaller input), x zero-padded (H' x W' = the rows and columns the
 * windows reach, so the padding needs no test); then dw[kh,kw,c,f] is a GEMM over the
 * pixels whose register tile is six window cells (kh, kw, c) × one block of filters: per
 * pixel two vector loads of dy and six broadcasts of x, both from blocks that stay in the
 * cache.  NHWC's im2col + GEMM writes and rereads KH·KW copies of x and splits K (the
 * pixels) into slices; benchmarks/kernel_lab.py --layouts measures both (docs/internals.md).
 * Activations and dw stay NHWC / HWIO: the blocks live only in the workspace.
 * Each dw element sums the pixels in a fixed order (chunk by chunk, sample by sample, a
 * few output rows per partial sum) whatever the thread count. */
#define NNK_BLK_CB (2 * NNK_VEC_LANES)   /* channels per block: the tile's two vectors */
#define NNK_BLK_RB 6                     /* window cells per tile */
#define NNK_BLK_RUN_ROWS 384              /* most window cells one task's tables name */
#ifndef NNK_BLK_CAP
#define NNK_BLK_CAP ((size_t)1 << 18)    /* elements of blocks per chunk (1 MB in float) */
#endif

/* Whether the blocked filter gradient takes these channels: whole blocks of filters, and
 * whole blocks of inputs or fewer inputs than one block. */
NNK_API int nnk_conv2d_blocked_ok(int C, int F) {
    return F % NNK_BLK_CB == 0 && (C < NNK_BLK_CB || C % NNK_BLK_CB == 0);
}

/* The elements one sample's blocks take: x padded to the rows and columns the windows
 * reach, and dy. */
static inline size_t nnk_blk_sample_(int C, int KH, int KW, int F, int SH, int SW, int OH, int OW) {
    return (size_t)C * ((OH - 1) * SH + KH) * ((OW - 1) * SW + KW) + (size_t)OH * OW * F;
}

/* The most samples a chunk may hold (the cap's worth, at least one), and the equal chunks
 * a batch of n is cut into (never more than that for any smaller batch). */
static inline int nnk_blk_chunk_max_(int n, size_t per_sample) {
    size_t most = NNK_BLK_CAP / per_sample;
    return most < 1 ? 1 : most < (size_t)n ? (int)most : n;
}

NNK_API size_t nnk_conv2d_blocked_work_elems(int n, int H, int W, int C, int KH, int KW, int F,
                                                         int SH, int SW, int OH, int OW) {
    if (!nnk_conv2d_blocked_ok(C, F)) return nnk_conv2d_work_elems(n, H, W, C, KH, KW, F, SH, SW, OH, OW);
    size_t per = nnk_blk_sample_(C, KH, KW, F, SH, SW, OH, OW);
    return (size_t)nnk_blk_chunk_max_(n, per) * per;
}

/* One tile: rows rb window cells, each off[r] from a pixel's x (blocked, padded), columns
 * one block of filters of dy (blocked); the partial sum over output rows [oh0, oh1) of
 * one sample, stored into or added to the rows dst[r] of dw. */
#define NNK_BLK_FMA_(t) do { if (rb > (t)) { nn_real s_ = xr[o##t]; a##t##0 += s_ * g0; a##t##1 += s_ * g1; } } while (0)
#define NNK_BLK_PUT_(t) do { if (rb > (t)) {                                                    \
        nnk_vec_ *q0 = (nnk_vec_ *)dst[t], *q1 = (nnk_vec_ *)(dst[t] + NNK_VEC_LANES);           \
        if (overwrite) *q0 = a##t##0, *q1 = a##t##1; else *q0 += a##t##0, *q1 += a##t##1; } } while (0)
static inline __attribute__((always_inline)) void nnk_blk_filter_tile_(int rb, int OW, int oh0, int oh1, size_t xrow,
                                                                       size_t xpix, const nn_real *xs,
                                                                       const size_t *off, const nn_real *gs,
                                                                       nn_real *const *dst, int overwrite) {
    nnk_vec_ a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0};
    nnk_vec_ a30 = {0}, a31 = {0}, a40 = {0}, a41 = {0}, a50 = {0}, a51 = {0};
    size_t o0 = off[0], o1 = rb > 1 ? off[1] : 0, o2 = rb > 2 ? off[2] : 0;
    size_t o3 = rb > 3 ? off[3] : 0, o4 = rb > 4 ? off[4] : 0, o5 = rb > 5 ? off[5] : 0;
    for (int oh = oh0; oh < oh1; oh++) {
        const nn_real *xr = xs + (size_t)oh * xrow, *g = gs + (size_t)oh * OW * NNK_BLK_CB;
        for (int ow = 0; ow < OW; ow++, xr += xpix, g += NNK_BLK_CB) {
            nnk_vec_ g0 = *(const nnk_vec_ *)g, g1 = *(const nnk_vec_ *)(g + NNK_VEC_LANES);
            NNK_BLK_FMA_(0); NNK_BLK_FMA_(1); NNK_BLK_FMA_(2);
            NNK_BLK_FMA_(3); NNK_BLK_FMA_(4); NNK_BLK_FMA_(5);
        }
    }
    NNK_BLK_PUT_(0); NNK_BLK_PUT_(1); NNK_BLK_PUT_(2); NNK_BLK_PUT_(3); NNK_BLK_PUT_(4); NNK_BLK_PUT_(5);
}
#undef NNK_BLK_FMA_
#undef NNK_BLK_PUT_

/* dw[KH,KW,C,F] = ∂(Σ dy·y)/∂w (overwritten), x and dy NHWC; work:
 * nnk_conv2d_blocked_work_elems elements.  Channels that do not make whole
 * blocks at this vector width (a program built for another machine than the compiler's
 * choice assumed) take nnk_conv2d_bwd_filter. */
NNK_API void nnk_conv2d_bwd_filter_blocked(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                           int SW, int PT, int PL, int OH, int OW, const nn_real *x,
                                           const nn_real *dy, nn_real *dw, nn_real *work) {
    enum { CB = NNK_BLK_CB, RB = NNK_BLK_RB };
    int cb = C < CB ? C : CB, ci_n = C / cb, fo_n = F / CB;
    int HP = (OH - 1) * SH + KH, WP = (OW - 1) * SW + KW;
    size_t xplane = (size_t)HP * WP * cb, gplane = (size_t)OH * OW * CB;
    if (!nnk_conv2d_blocked_ok(C, F)) {
        nnk_conv2d_bwd_filter(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, x, dy, dw, work);
        return;
    }
    if (n <= 0 || OH <= 0 || OW <= 0) {
        memset(dw, 0, (size_t)KH * KW * C * F * sizeof(nn_real));
        return;
    }
    int most = nnk_blk_chunk_max_(n, nnk_blk_sample_(C, KH, KW, F, SH, SW, OH, OW));
    int chunks = (n + most - 1) / most, chunk = (n + chunks - 1) / chunks;
    int rows = KH * KW * cb, groups = (rows + RB - 1) / RB;
    int pass = nnk_max_(1, nnk_min_(OH, 256 / OW));   /* output rows per partial sum: in L1 */
    size_t xrow = (size_t)SH * WP * cb, xpix = (size_t)SW * cb;
    #pragma omp parallel if ((int64_t)n * OH * OW * F * KH * KW * C >= NNK_GEMM_PAR_MIN)
    for (int b0 = 0; b0 < n; b0 += chunk) {   /* every thread, the same chunks */
        int nb = nnk_min_(chunk, n - b0);
        nn_real *xw = work, *gw = work + (size_t)nb * ci_n * xplane;
        #pragma omp for collapse(2) schedule(static) nowait   /* x's blocks, then dy's: one barrier */
        for (int b = 0; b < nb; b++)
            for (int ph = 0; ph < HP; ph++) {   /* x's padded row ph, every block */
                int ih = ph - PT;
                const nn_real *src = ih >= 0 && ih < H ? x + ((size_t)(b0 + b) * H + ih) * W * C : NULL;
                for (int k = 0; k < ci_n; k++) {
                    nn_real *d = xw + ((size_t)b * ci_n + k) * xplane + (size_t)ph * WP * cb;
                    for (int pw = 0; pw < WP; pw++, d += cb) {
                        int iw = pw - PL;
                        if (!src || iw < 0 || iw >= W) memset(d, 0, (size_t)cb * sizeof(nn_real));
                        else memcpy(d, src + (size_t)iw * C + (size_t)k * cb, (size_t)cb * sizeof(nn_real));
                    }
                }
            }
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < nb; b++)
            for (int oh = 0; oh < OH; oh++) {
                const nn_real *src = dy + (((size_t)(b0 + b) * OH + oh) * OW) * F;
                for (int k = 0; k < fo_n; k++) {
                    nn_real *d = gw + ((size_t)b * fo_n + k) * gplane + (size_t)oh * OW * CB;
                    for (int ow = 0; ow < OW; ow++) memcpy(d + (size_t)ow * CB, src + (size_t)ow * F + (size_t)k * CB, CB * sizeof(nn_real));
                }
            }
        /* A task: one block of filters, one of inputs, a run of tiles; sample by sample,
         * every tile of the run, so the sample's blocks stay in L1.  More runs than one
         * per pair of blocks when there are fewer pairs than twice the threads, or more
         * window cells than a run's tables hold. */
#ifdef _OPENMP
        int threads = omp_get_num_threads();
#else
        int threads = 1;
#endif
        int runs = nnk_max_((2 * threads + fo_n * ci_n - 1) / (fo_n * ci_n), (rows + NNK_BLK_RUN_ROWS - 1) / NNK_BLK_RUN_ROWS);
        runs = nnk_max_(1, nnk_min_(groups, runs));
        #pragma omp for schedule(static)
        for (int task = 0; task < fo_n * ci_n * runs; task++) {
            int fo = task / (ci_n * runs), ci = task / runs % ci_n, run = task % runs;
            int g0 = run * (groups / runs) + nnk_min_(run, groups % runs), g1 = g0 + groups / runs + (run < groups % runs);
            int r_lo = g0 * (rows / groups) + nnk_min_(g0, rows % groups);
            int r_hi = g1 * (rows / groups) + nnk_min_(g1, rows % groups);
            size_t off[2 * NNK_BLK_RUN_ROWS];   /* a run has at most NNK_BLK_RUN_ROWS + 2 tiles' rows */
            nn_real *dst[2 * NNK_BLK_RUN_ROWS];
            for (int r = r_lo; r < r_hi; r++) {   /* row r: window cell (kh, kw), channel c of the block */
                int cell = r / cb, c = r % cb;
                off[r - r_lo] = ((size_t)(cell / KW) * WP + cell % KW) * cb + c;
                dst[r - r_lo] = dw + ((size_t)cell * C + (size_t)ci * cb + c) * F + (size_t)fo * CB;
            }
            for (int b = 0; b < nb; b++) {
                const nn_real *xs = xw + ((size_t)b * ci_n + ci) * xplane, *gs = gw + ((size_t)b * fo_n + fo) * gplane;
                for (int oh0 = 0; oh0 < OH; oh0 += pass) {
                    int oh1 = nnk_min_(OH, oh0 + pass), first = b0 + b == 0 && oh0 == 0;
                    for (int g = g0; g < g1; g++) {
                        int r0 = g * (rows / groups) + nnk_min_(g, rows % groups), rb = rows / groups + (g < rows % groups);
                        const size_t *o = off + (r0 - r_lo);
                        nn_real *const *d = dst + (r0 - r_lo);
                        switch (rb) {
#define NNK_BLK_TILE_(w) nnk_blk_filter_tile_(w, OW, oh0, oh1, xrow, xpix, xs, o, gs, d, first)
                        case 6: NNK_BLK_TILE_(6); break;
                        case 5: NNK_BLK_TILE_(5); break;
                        case 4: NNK_BLK_TILE_(4); break;
                        case 3: NNK_BLK_TILE_(3); break;
                        case 2: NNK_BLK_TILE_(2); break;
                        default: NNK_BLK_TILE_(1); break;
#undef NNK_BLK_TILE_
                        }
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- copies */

NNK_API void nnk_copy(int64_t len, const nn_real *x, nn_real *y) {
    if (len > 0 && x != y) memmove(y, x, (size_t)len * sizeof(nn_real));
}

/* y += x, for gradient accumulation. */
NNK_API void nnk_add_inplace(int64_t len, nn_real *y, const nn_real *x) {
    #pragma omp parallel for schedule(static) if (len >= NNK_PAR_MIN)
    for (int64_t i = 0; i < len; i++) y[i] += x[i];
}

/* ---------------------------------------------------------------- pointwise chains */

/* fuse_elementwise.c: a chain of pointwise ops in one kernel (nnk_ewise_chain).  Each
 * op is an element function of (x, dy, a): x its first input (the value, y or x of an
 * activation gradient, dropout's mask, add's first term), dy its second (the incoming
 * gradient, add's second term), a its parameter (elu alpha, leaky_relu slope).  They
 * repeat the per-op kernels' expressions above (relu, sigmoid and tanh gradients share
 * nnk_act_grad_ with them), so a chain gives their bits: every
 * intermediate is rounded to nn_real and stored in a tile as the per-op kernel would
 * store it (no contraction across ops).  NN_EW_* are shared with the OpenCL library. */
#define NN_EW_RELU 1
#define NN_EW_SIGMOID 2
#define NN_EW_TANH 3
#define NN_EW_GELU 4
#define NN_EW_SILU 5
#define NN_EW_ELU 6
#define NN_EW_SELU 7
#define NN_EW_LEAKY_RELU 8
#define NN_EW_SOFTPLUS 9
#define NN_EW_HARD_SIGMOID 10
#define NN_EW_RELU_BWD 11
#define NN_EW_SIGMOID_BWD 12
#define NN_EW_TANH_BWD 13
#define NN_EW_GELU_BWD 14
#define NN_EW_SILU_BWD 15
#define NN_EW_ELU_BWD 16
#define NN_EW_SELU_BWD 17
#define NN_EW_LEAKY_RELU_BWD 18
#define NN_EW_SOFTPLUS_BWD 19
#define NN_EW_HARD_SIGMOID_BWD 20
#define NN_EW_DROPOUT_BWD 21
#define NN_EW_ADD 22

static inline nn_real nnk_ew_relu_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return x > 0 ? x : 0;
}

static inline nn_real nnk_ew_sigmoid_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return nnk_sigmoid_(x);
}

static inline nn_real nnk_ew_tanh_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return nnk_tanh_(x);
}

static inline nn_real nnk_ew_gelu_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return (nn_real)0.5 * x * nnk_erfc_(-x * (nn_real)NNK_SQRT1_2);
}

static inline nn_real nnk_ew_silu_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return x * nnk_sigmoid_(x);
}

static inline nn_real nnk_ew_elu_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    nn_real neg = x < 0 ? x : 0;
    return x > 0 ? x : a * nnk_expm1_(neg);
}

static inline nn_real nnk_ew_selu_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    nn_real neg = x < 0 ? x : 0;
    return (nn_real)NNK_SELU_SCALE * (x > 0 ? x : (nn_real)NNK_SELU_ALPHA * nnk_expm1_(neg));
}

static inline nn_real nnk_ew_leaky_relu_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return x > 0 ? x : a * x;
}

static inline nn_real nnk_ew_softplus_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    nn_real pos = x > 0 ? x : 0, mabs = x > 0 ? -x : x;
    return pos + nnk_log1p_(nnk_exp_(mabs));
}

static inline nn_real nnk_ew_hard_sigmoid_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    nn_real t = x + (nn_real)3;
    t = t > 0 ? t : 0;
    t = t < 6 ? t : (nn_real)6;
    return t / (nn_real)6;
}

static inline nn_real nnk_ew_relu_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)a;
    return nnk_act_grad_(NN_EPI_RELU, x, dy);
}

static inline nn_real nnk_ew_sigmoid_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)a;
    return nnk_act_grad_(NN_EPI_SIGMOID, x, dy);
}

static inline nn_real nnk_ew_tanh_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)a;
    return nnk_act_grad_(NN_EPI_TANH, x, dy);
}

static inline nn_real nnk_ew_gelu_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    nn_real cdf = (nn_real)0.5 * nnk_erfc_(-x * (nn_real)NNK_SQRT1_2);
    nn_real pdf = (nn_real)NNK_INV_SQRT_2PI * nnk_exp_((nn_real)-0.5 * x * x);
    return dy * (cdf + x * pdf);
}

static inline nn_real nnk_ew_silu_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    nn_real s = nnk_sigmoid_(x);
    return dy * s * ((nn_real)1 + x * ((nn_real)1 - s));
}

static inline nn_real nnk_ew_elu_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    nn_real neg = x < 0 ? x : 0;
    return x > 0 ? dy : dy * a * nnk_exp_(neg);
}

static inline nn_real nnk_ew_selu_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return dy * (x > 0 ? (nn_real)NNK_SELU_SCALE : x + (nn_real)(NNK_SELU_SCALE * NNK_SELU_ALPHA));
}

static inline nn_real nnk_ew_leaky_relu_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return x > 0 ? dy : a * dy;
}

static inline nn_real nnk_ew_softplus_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return -dy * nnk_expm1_(-x);
}

static inline nn_real nnk_ew_hard_sigmoid_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return x > 0 && x < 1 ? dy / (nn_real)6 : 0;
}

static inline nn_real nnk_ew_dropout_bwd_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return dy * x;
}

static inline nn_real nnk_ew_add_(nn_real x, nn_real dy, nn_real a) {
    (void)x, (void)dy, (void)a;
    return x + dy;
}

/* The chain on elements [0, m) of one tile: step s reads x[s] (or, NULL, the step
 * before's tile) and dy[s], and writes its own tile; the last step writes y. */
#define NNK_EW_TILE 1024
#define NNK_EW_CASE_(code, fn) \
    case code: for (int64_t i = 0; i < m; i++) y[i] = fn(x[i], dy[i], a); break

static inline void nnk_ew_step_(int op, nn_real a, int64_t m, const nn_real *x, const nn_real *dy, nn_real *y) {
    switch (op) {
    NNK_EW_CASE_(NN_EW_RELU, nnk_ew_relu_);
    NNK_EW_CASE_(NN_EW_SIGMOID, nnk_ew_sigmoid_);
    NNK_EW_CASE_(NN_EW_TANH, nnk_ew_tanh_);
    NNK_EW_CASE_(NN_EW_GELU, nnk_ew_gelu_);
    NNK_EW_CASE_(NN_EW_SILU, nnk_ew_silu_);
    NNK_EW_CASE_(NN_EW_ELU, nnk_ew_elu_);
    NNK_EW_CASE_(NN_EW_SELU, nnk_ew_selu_);
    NNK_EW_CASE_(NN_EW_LEAKY_RELU, nnk_ew_leaky_relu_);
    NNK_EW_CASE_(NN_EW_SOFTPLUS, nnk_ew_softplus_);
    NNK_EW_CASE_(NN_EW_HARD_SIGMOID, nnk_ew_hard_sigmoid_);
    NNK_EW_CASE_(NN_EW_RELU_BWD, nnk_ew_relu_bwd_);
    NNK_EW_CASE_(NN_EW_SIGMOID_BWD, nnk_ew_sigmoid_bwd_);
    NNK_EW_CASE_(NN_EW_TANH_BWD, nnk_ew_tanh_bwd_);
    NNK_EW_CASE_(NN_EW_GELU_BWD, nnk_ew_gelu_bwd_);
    NNK_EW_CASE_(NN_EW_SILU_BWD, nnk_ew_silu_bwd_);
    NNK_EW_CASE_(NN_EW_ELU_BWD, nnk_ew_elu_bwd_);
    NNK_EW_CASE_(NN_EW_SELU_BWD, nnk_ew_selu_bwd_);
    NNK_EW_CASE_(NN_EW_LEAKY_RELU_BWD, nnk_ew_leaky_relu_bwd_);
    NNK_EW_CASE_(NN_EW_SOFTPLUS_BWD, nnk_ew_softplus_bwd_);
    NNK_EW_CASE_(NN_EW_HARD_SIGMOID_BWD, nnk_ew_hard_sigmoid_bwd_);
    NNK_EW_CASE_(NN_EW_DROPOUT_BWD, nnk_ew_dropout_bwd_);
    NNK_EW_CASE_(NN_EW_ADD, nnk_ew_add_);
    default: for (int64_t i = 0; i < m; i++) y[i] = NAN;   /* an unknown op: visibly wrong */
    }
}

/* y = the chain's last value; step s is op[s] with parameter alpha[s] on x[s] and dy[s]
 * (NULL: the value of step s - 1; a one-input op's dy is unused).  Tiles of NNK_EW_TILE elements: the intermediates
 * stay in the L1 cache and threads share the tiles. */
/* Whether an op calls libm (exp, erfc, ...): its per-op kernel forks threads from
 * NNK_PAR_MIN / 8 elements, the others from NNK_PAR_MIN (forking costs more than they do). */
static inline int nnk_ew_costly_(int op) {
    switch (op) {
    case NN_EW_SIGMOID: case NN_EW_TANH: case NN_EW_GELU: case NN_EW_SILU: case NN_EW_ELU: case NN_EW_SELU:
    case NN_EW_SOFTPLUS: case NN_EW_GELU_BWD: case NN_EW_SILU_BWD: case NN_EW_ELU_BWD: case NN_EW_SOFTPLUS_BWD:
        return 1;
    default:
        return 0;
    }
}

NNK_API void nnk_ewise_chain(int64_t len, int steps, const int *op, const nn_real *alpha,
                             const nn_real *const *x, const nn_real *const *dy, nn_real *y) {
    int64_t tiles = (len + NNK_EW_TILE - 1) / NNK_EW_TILE, par_min = NNK_PAR_MIN;
    for (int s = 0; s < steps; s++)
        if (nnk_ew_costly_(op[s])) par_min = NNK_PAR_MIN / 8;
    #pragma omp parallel for schedule(static) if (len >= par_min)
    for (int64_t t = 0; t < tiles; t++) {
        nn_real tile[2][NNK_EW_TILE];
        int64_t at = t * NNK_EW_TILE, m = len - at < NNK_EW_TILE ? len - at : NNK_EW_TILE;
        const nn_real *prev = NULL;
        for (int s = 0; s < steps; s++) {
            nn_real *out = s == steps - 1 ? y + at : tile[s & 1];
            const nn_real *xs = x[s] ? x[s] + at : prev, *ds = dy[s] ? dy[s] + at : prev;
            nnk_ew_step_(op[s], alpha[s], m, xs, ds ? ds : xs, out);   /* an op of one input: dy unused */
            prev = out;
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif /* NNK_LINKED */
#endif /* NN_KERNELS_H */
