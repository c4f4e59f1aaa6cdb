/* nn_kernels.cl — the OpenCL C 1.2 twin of nn_kernels.h: one device function nncl_X per
 * C kernel nnk_X, same arguments in the same order (pointers __global).
 *
 * Generated code wraps each call in a small __kernel with literal shapes and launches it
 * as a 1-D NDRange of local size exactly NNCL_WG and any number G >= 1 of work-groups.
 * Every function therefore grid-strides over its work units (elements, rows, tiles,
 * channels...), and is correct and bit-identical for every G: each output is computed by
 * one work-item, or by one work-group with a fixed tree order; no float atomics.
 *
 * Argument conventions that differ from C:
 *  - int64_t/uint64_t become long/ulong; hyper-parameters C takes as double are float
 *    (devices may lack fp64); the dropout seed stays ulong.
 *  - Functions that need local memory take a trailing `__local nn_real *scratch` of
 *    NNCL_<NAME>_LOCAL elements.
 *  - Where C returns a value (losses, l1l2_loss) the function takes `__global nn_real
 *    *sum_out` (before scratch) and WRITES (not accumulates) the value to sum_out[0].
 *  - The conv2d functions take no `work` buffer: they are implicit GEMMs.
 *  - Optional pointers (NULL in C) are NULL kernel arguments here.
 *
 * Precision: sums C does in double are done in nn_real here (per-item partial sums in
 * fixed order, then a fixed tree), so results match C to rounding, not bit for bit.
 * Builtins (exp, log, sqrt, division) have OpenCL's ULP bounds, not glibc's.
 *
 * Sections (as nn_kernels.h): helpers · GEMM · bias · conv2d · pooling · activations ·
 * dropout · batchnorm · losses · regularizers · optimizers · copies.
 */
#ifndef NN_KERNELS_CL
#define NN_KERNELS_CL

#ifdef NN_REAL_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double nn_real;
#else
typedef float nn_real;
#endif

/* ---------------------------------------------------------------- helpers */

#ifndef NNCL_WG
#define NNCL_WG 64
#endif
#if (NNCL_WG & (NNCL_WG - 1)) != 0 || NNCL_WG < 16 || NNCL_WG > 1024
#error "NNCL_WG must be a power of two in [16, 1024]"
#endif

/* CPU devices (PoCL's pthread driver and the like) run a work-group as one thread
 * looping over its work-items; LLVM vectorizes only innermost loops, so a grid-stride
 * loop of a few elements per item runs scalar, with its index arithmetic (64-bit
 * divisions in the shape decodes) per element; and every barrier splits the kernel
 * into regions whose per-item state goes through memory.  Where NNCL_CPU is 1, the
 * functions below therefore take a CPU layout: no barriers in hot code, each work-item
 * owns whole contiguous runs ("units") that its innermost loop walks, explicit vector
 * types where the loop shape hides the SIMD.  Units are spread over all G groups
 * (NNCL_FOR_UNITS_).  Every output is still
 * computed by one item in a fixed order, so the bits do not depend on G (but may differ
 * from the GPU layout's, which sums in other orders).
 * NNCL_CPU's default: 1 when the kernel compiler targets a CPU architecture (PoCL
 * compiles for the host triple), 0 otherwise; a host may set it with -DNNCL_CPU=0/1. */
#ifndef NNCL_CPU
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) || \
    defined(__powerpc64__) || defined(__riscv)
#define NNCL_CPU 1
#else
#define NNCL_CPU 0
#endif
#endif

/* Eight lanes: one AVX2 register of floats; nncl_mask8 is what comparing two gives. */
#ifdef NN_REAL_DOUBLE
typedef double8 nn_real8;
typedef double4 nn_real4;
typedef long8 nncl_mask8;
#define NNCL_CONVERT8_ convert_double8
#else
typedef float8 nn_real8;
typedef float4 nn_real4;
typedef int8 nncl_mask8;
#define NNCL_CONVERT8_ convert_float8
#endif
#define NNCL_LD8_(p) vload8(0, (p))

/* v where the mask is all ones, +0 where it is 0: a select as a bitwise and, which
 * stays branch-free in a hot loop (LLVM turns a select of a load into branches). */
#ifdef NN_REAL_DOUBLE
typedef ulong nncl_bits_;
#define NNCL_KEEP_(v, m) as_double(as_ulong(v) & (m))
#else
typedef uint nncl_bits_;
#define NNCL_KEEP_(v, m) as_float(as_uint(v) & (m))
#endif

/* Units dealt to items: with at least G units, unit u goes to group u mod G; with
 * fewer, to group floor(u·G/units) (item 0), spread over the whole range of groups,
 * since PoCL hands consecutive groups to a thread in chunks and the first `units`
 * groups could all land in one chunk, i.e. on one core. */
static inline long nncl_first_unit_(long units) {
    long G = (long)get_num_groups(0), g = (long)get_group_id(0);
    if (units >= G) return g + G * (long)get_local_id(0);
    if (get_local_id(0) != 0) return units;
    long u = (g * units + G - 1) / G;
    return u < units && u * G / units == g ? u : units;
}
#define NNCL_FOR_UNITS_(u, units)                                                         \
    for (long u = nncl_first_unit_((long)(units)),                                        \
              st_ = (long)(units) >= (long)get_num_groups(0) ? (long)get_num_groups(0) * NNCL_WG \
                                                              : (long)(units);           \
         u < (long)(units); u += st_)

/* Elementwise loops: every output by one item.  GPU layout: grid-stride over items
 * (neighbouring items touch neighbouring elements).  CPU layout: units of
 * NNCL_CPU_CHUNK consecutive elements, walked by an innermost loop the compiler can
 * vectorize. */
#define NNCL_GID_   ((long)get_group_id(0) * NNCL_WG + (long)get_local_id(0))
#define NNCL_GSIZE_ ((long)get_num_groups(0) * NNCL_WG)
#if NNCL_CPU
#ifndef NNCL_CPU_CHUNK
#define NNCL_CPU_CHUNK 1024
#endif
/* Whether this item has any element of a loop over len (to skip a costly prologue). */
#define NNCL_HAS_ITEMS_(len)                                                               \
    (nncl_first_unit_(((long)(len) + NNCL_CPU_CHUNK - 1) / NNCL_CPU_CHUNK) <               \
     ((long)(len) + NNCL_CPU_CHUNK - 1) / NNCL_CPU_CHUNK)
#define NNCL_FOR_ITEMS_(i, len)                                                           \
    NNCL_FOR_UNITS_(ck_, ((long)(len) + NNCL_CPU_CHUNK - 1) / NNCL_CPU_CHUNK)              \
    for (long i = ck_ * NNCL_CPU_CHUNK, e_ = min(i + NNCL_CPU_CHUNK, (long)(len)); i < e_; i++)
#else
#define NNCL_HAS_ITEMS_(len) (NNCL_GID_ < (long)(len))
#define NNCL_FOR_ITEMS_(i, len) for (long i = NNCL_GID_; i < (long)(len); i += NNCL_GSIZE_)
#endif
#define NNCL_FOR_GROUPS_(u, units) \
    for (int u = (int)get_group_id(0); u < (int)(units); u += (int)get_num_groups(0))

/* Keras's backend.epsilon(), the clip bound of probability losses (see losses). */
#define NNCL_PROB_EPS ((nn_real)1e-7)

/* Sum of one value per work-item over the group, in a fixed tree order (pairs l, l+h),
 * returned to every item.  All items must call it (it has barriers); scratch needs
 * NNCL_WG elements and is free again on return. */
static inline nn_real nncl_group_sum_(nn_real v, __local nn_real *s) {
    int l = (int)get_local_id(0);
    s[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = NNCL_WG / 2; h > 0; h >>= 1) {
        if (l < h) s[l] = s[l] + s[l + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    nn_real r = s[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* ---------------------------------------------------------------- GEMM */

/* One engine serves GEMM and the three convolutions (as implicit GEMMs): C[M,N] (+)=
 * A'[M,K] · B'[K,N] where `mode` says how A' and B' elements are read from memory.
 *
 * Work split: the output is cut into TM×TN tiles, one tile per work-group at a time
 * (grid-stride over tiles).  Items form a TY×TX grid, each owning a 4×4 register block
 * at rows ty + r*TY, cols tx + c*TX (strided, so stores and local reads are spread).
 * K is walked in slices of TK staged in local memory: every output sums its products
 * in k order 0..K-1, whatever G is.  Sizes per NNCL_WG: 64 → 32×32 tile, 128 → 32×64,
 * 256 → 64×64; TK = 16. */
#if NNCL_WG >= 256
#define NNCL_GEMM_TX 16
#define NNCL_GEMM_TY (NNCL_WG / 16)
#elif NNCL_WG == 128
#define NNCL_GEMM_TX 16
#define NNCL_GEMM_TY 8
#elif NNCL_WG == 64
#define NNCL_GEMM_TX 8
#define NNCL_GEMM_TY 8
#elif NNCL_WG == 32
#define NNCL_GEMM_TX 8
#define NNCL_GEMM_TY 4
#else
#define NNCL_GEMM_TX 4
#define NNCL_GEMM_TY 4
#endif
#define NNCL_GEMM_RM 4
#define NNCL_GEMM_RN 4
#define NNCL_GEMM_TM (NNCL_GEMM_TY * NNCL_GEMM_RM)
#define NNCL_GEMM_TN (NNCL_GEMM_TX * NNCL_GEMM_RN)
#define NNCL_GEMM_TK 16
#define NNCL_GEMM_LOCAL (NNCL_GEMM_TK * (NNCL_GEMM_TM + NNCL_GEMM_TN))

#define NNCL_MODE_GEMM_ 0
#define NNCL_MODE_CONV_FWD_ 1        /* A' = im2col(x), B' = w            */
#define NNCL_MODE_CONV_BWD_DATA_ 2   /* A' = "col2im-gather"(dy), B' = wᵀ  */
#define NNCL_MODE_CONV_BWD_FILTER_ 3 /* A' = im2col(x)ᵀ, B' = dy          */

/* Convolution geometry, and the epilogue of a fused contraction (as nnk_epi in
 * nn_kernels.h): bias per output column (0: none) and NN_EPI_* activation. */
#define NN_EPI_NONE 0
#define NN_EPI_RELU 1
#define NN_EPI_SIGMOID 2
#define NN_EPI_TANH 3
static inline nn_real nncl_sigmoid_(nn_real x);   /* with the activation kernels below */
typedef struct {
    int n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW;
    __global const nn_real *bias;
    int act;
    __global const nn_real *gy;   /* gradient epilogue (fuse_grad.c): C times NN_EPI_* gact's */
    int gact;                     /*   derivative at gy, an activation output of C's shape */
    int pk;                       /* B' pre-packed in panels (nncl_pack_b, nncl_pack_conv_flip) */
    __global nn_real *db;         /* a weight gradient's fused bias gradient (fuse_bias_grad.c): */
} nncl_conv_;                     /*   B's column sums, CPU layout (the GPU one runs nncl_bias_grad) */

/* Pre-packed weights (compiler/ir/layout.c): op(B)[K,N] in panels of NNCL_PACK_NR
 * columns, bp[P][K][NNCL_PACK_NR] with zeros past N, made by a pack node once per step.
 * B'(k, j..j+15) is then one contiguous run (two vectors), whatever op(B) was.  A
 * convolution's data gradient reads nncl_pack_conv_flip's panels: the CPU layout scatters
 * with them, the GPU layout convolves dy with the flipped kernel (stride 1).  The plan sizes these buffers for the C library's panels (NNC_PACK_COLS = 32
 * columns), which hold 16-column panels too. */
#define NNCL_PACK_NR 16

/* dy times act's derivative at its output y: the one place these three formulas are
 * written (the _bwd kernels, fused gradients and pointwise chains compute with it). */
static inline nn_real nncl_act_grad_(int act, nn_real y, nn_real dy) {
    if (act == NN_EPI_RELU) return y > 0 ? dy : 0;
    if (act == NN_EPI_SIGMOID) return dy * y * ((nn_real)1 - y);
    if (act == NN_EPI_TANH) return dy * ((nn_real)1 - y * y);
    return dy;
}

/* An output of column j through the epilogue: the bits of bias_add then the activation. */
static inline nn_real nncl_epi_(nncl_conv_ p, int j, nn_real v) {
    if (p.bias) v += p.bias[j];
    if (p.act == NN_EPI_RELU) v = v > 0 ? v : 0;
    else if (p.act == NN_EPI_SIGMOID) v = nncl_sigmoid_(v);
    else if (p.act == NN_EPI_TANH) v = tanh(v);
    return v;
}

/* Stores output (i, j) = Cm[at]: added to it, or through the epilogue. */
static inline void nncl_store_(__global nn_real *Cm, long at, nn_real v, int accumulate, nncl_conv_ p,
                               int j) {
    if (accumulate) Cm[at] += v;
    else Cm[at] = p.gy ? nncl_act_grad_(p.gact, p.gy[at], v) : nncl_epi_(p, j, v);
}

/* A'(i, k), 0 outside [0,M)×[0,K) and in padding. */
static inline nn_real nncl_a_at_(int mode, int ta, int M, int K, __global const nn_real *A,
                                 nncl_conv_ p, int i, int k) {
    if (i >= M || k >= K) return 0;
    if (mode == NNCL_MODE_GEMM_)
        return ta ? A[(long)k * M + i] : A[(long)i * K + k];
    if (mode == NNCL_MODE_CONV_FWD_) {         /* i = (b, oh, ow), k = (kh, kw, c) */
        int ow = i % p.OW, t = i / p.OW, oh = t % p.OH, b = t / p.OH;
        int c = k % p.C, u = k / p.C, kw = u % p.KW, kh = u / p.KW;
        int ih = oh * p.SH - p.PT + kh, iw = ow * p.SW - p.PL + kw;
        if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return 0;
        return A[(((long)b * p.H + ih) * p.W + iw) * p.C + c];
    }
    if (mode == NNCL_MODE_CONV_BWD_DATA_) {    /* i = (b, ih, iw), k = (kh, kw, f) */
        int iw = i % p.W, t = i / p.W, ih = t % p.H, b = t / p.H;
        int f = k % p.F, u = k / p.F, kw = u % p.KW, kh = u / p.KW;
        int oy = ih + p.PT - kh, ox = iw + p.PL - kw;   /* = oh*SH, ow*SW if a window hits */
        if (oy < 0 || ox < 0 || oy % p.SH || ox % p.SW) return 0;
        int oh = oy / p.SH, ow = ox / p.SW;
        if (oh >= p.OH || ow >= p.OW) return 0;
        return A[(((long)b * p.OH + oh) * p.OW + ow) * p.F + f];
    }
    /* bwd_filter: i = (kh, kw, c), k = (b, oh, ow) */
    int c = i % p.C, u = i / p.C, kw = u % p.KW, kh = u / p.KW;
    int ow = k % p.OW, t = k / p.OW, oh = t % p.OH, b = t / p.OH;
    int ih = oh * p.SH - p.PT + kh, iw = ow * p.SW - p.PL + kw;
    if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return 0;
    return A[(((long)b * p.H + ih) * p.W + iw) * p.C + c];
}

/* B'(k, j), 0 outside [0,K)×[0,N). */
static inline nn_real nncl_b_at_(int mode, int tb, int N, int K, __global const nn_real *B,
                                 nncl_conv_ p, int k, int j) {
    if (k >= K || j >= N) return 0;
    if (p.pk && mode == NNCL_MODE_CONV_BWD_DATA_)   /* nncl_pack_conv_flip's panels: the cell turned */
        k = (p.KH * p.KW - 1 - k / p.F) * p.F + k % p.F;
    if (p.pk) return B[((long)(j / NNCL_PACK_NR) * K + k) * NNCL_PACK_NR + j % NNCL_PACK_NR];
    if (mode == NNCL_MODE_GEMM_) return tb ? B[(long)j * K + k] : B[(long)k * N + j];
    if (mode == NNCL_MODE_CONV_BWD_DATA_) {    /* k = (kh, kw, f), j = c: w[kh,kw,c,f] */
        int f = k % p.F, u = k / p.F;
        return B[((long)u * p.C + j) * p.F + f];
    }
    return B[(long)k * N + j];                 /* w [KH*KW*C, F] or dy [rows, F] */
}

/* One output by the generic accessors, k in order (blocks at the N edge). */
static inline nn_real nncl_dot_at_(int mode, int ta, int tb, int M, int N, int K,
                                   __global const nn_real *A, __global const nn_real *B,
                                   nncl_conv_ p, int i, int j) {
    nn_real s = 0;
    for (int k = 0; k < K; k++)
        s += nncl_a_at_(mode, ta, M, K, A, p, i, k) * nncl_b_at_(mode, tb, N, K, B, p, k, j);
    return s;
}

static inline void nncl_tiled_gemm_(int mode, int ta, int tb, int M, int N, int K,
                                    __global const nn_real *A, __global const nn_real *B,
                                    __global nn_real *Cm, int accumulate, nncl_conv_ p,
                                    __local nn_real *scratch) {
    __local nn_real *As = scratch;                                 /* [TK][TM] */
    __local nn_real *Bs = scratch + NNCL_GEMM_TK * NNCL_GEMM_TM;   /* [TK][TN] */
    int l = (int)get_local_id(0), tx = l % NNCL_GEMM_TX, ty = l / NNCL_GEMM_TX;
    /* Which index runs along memory, so consecutive items load neighbours. */
    int a_kfast = (mode == NNCL_MODE_GEMM_ && !ta) || mode == NNCL_MODE_CONV_FWD_ ||
                  mode == NNCL_MODE_CONV_BWD_DATA_;
    int b_kfast = (mode == NNCL_MODE_GEMM_ && tb) || mode == NNCL_MODE_CONV_BWD_DATA_;
    int tiles_n = (N + NNCL_GEMM_TN - 1) / NNCL_GEMM_TN;
    int tiles = ((M + NNCL_GEMM_TM - 1) / NNCL_GEMM_TM) * tiles_n;
    NNCL_FOR_GROUPS_(t, tiles) {
        int i0 = (t / tiles_n) * NNCL_GEMM_TM, j0 = (t % tiles_n) * NNCL_GEMM_TN;
        nn_real acc[NNCL_GEMM_RM][NNCL_GEMM_RN];
        for (int r = 0; r < NNCL_GEMM_RM; r++)
            for (int c = 0; c < NNCL_GEMM_RN; c++) acc[r][c] = 0;
        for (int k0 = 0; k0 < K; k0 += NNCL_GEMM_TK) {
            for (int e = l; e < NNCL_GEMM_TK * NNCL_GEMM_TM; e += NNCL_WG) {
                int kk = a_kfast ? e % NNCL_GEMM_TK : e / NNCL_GEMM_TM;
                int ii = a_kfast ? e / NNCL_GEMM_TK : e % NNCL_GEMM_TM;
                As[kk * NNCL_GEMM_TM + ii] = nncl_a_at_(mode, ta, M, K, A, p, i0 + ii, k0 + kk);
            }
            for (int e = l; e < NNCL_GEMM_TK * NNCL_GEMM_TN; e += NNCL_WG) {
                int kk = b_kfast ? e % NNCL_GEMM_TK : e / NNCL_GEMM_TN;
                int jj = b_kfast ? e / NNCL_GEMM_TK : e % NNCL_GEMM_TN;
                Bs[kk * NNCL_GEMM_TN + jj] = nncl_b_at_(mode, tb, N, K, B, p, k0 + kk, j0 + jj);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int kk = 0; kk < NNCL_GEMM_TK; kk++) {
                nn_real a[NNCL_GEMM_RM], b[NNCL_GEMM_RN];
                for (int r = 0; r < NNCL_GEMM_RM; r++) a[r] = As[kk * NNCL_GEMM_TM + ty + r * NNCL_GEMM_TY];
                for (int c = 0; c < NNCL_GEMM_RN; c++) b[c] = Bs[kk * NNCL_GEMM_TN + tx + c * NNCL_GEMM_TX];
                for (int r = 0; r < NNCL_GEMM_RM; r++)
                    for (int c = 0; c < NNCL_GEMM_RN; c++) acc[r][c] += a[r] * b[c];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (int r = 0; r < NNCL_GEMM_RM; r++) {
            int i = i0 + ty + r * NNCL_GEMM_TY;
            if (i >= M) break;
            for (int c = 0; c < NNCL_GEMM_RN; c++) {
                int j = j0 + tx + c * NNCL_GEMM_TX;
                if (j >= N) break;
                nncl_store_(Cm, (long)i * N + j, acc[r][c], accumulate, p, j);
            }
        }
    }
}

/* ---------------------------------------------------------------- GEMM, CPU engine */

/* On CPU devices (PoCL's pthread/basic drivers and the like) a work-group is run by one
 * thread as a loop over its work-items, and every barrier splits the kernel into
 * regions whose per-item state is saved to memory: the tiled engine above, with two
 * barriers per K slice, spends its time there, not in arithmetic (0.8 GFLOP/s on a
 * 512³ GEMM).  So on a CPU the contractions have no barriers and no local memory:
 * each work-item computes whole register blocks ("units") of the output by itself,
 * with explicit vector types (nn_real8 = one AVX2 register) for the SIMD the
 * implicit work-item vectorizer cannot find around an inner K loop, and the caches do
 * what local memory does on a GPU.  Every output is still one item's sum in a fixed
 * order, so the bits do not depend on the group count.
 *
 * Two block shapes:
 *  - outer: NNCL_CPU_RM rows × 16 columns (two vectors along N), a rank-1 update per k:
 *    needs B'(k, j..j+15) contiguous (GEMM with tb = 0, conv fwd, conv filter grad);
 *    column blocks past N's last multiple of 16 fall back to a scalar loop per output.
 *  - dot: NNCL_CPU_DM rows × NNCL_CPU_DN columns, vectors along K, summed across lanes
 *    at the end: for A' rows and B' columns both contiguous in k (GEMM A·Bᵀ, conv data
 *    grad, whose k runs along F in both dy and w).
 */
#if NNCL_CPU
#ifndef NNCL_CPU_RM
#define NNCL_CPU_RM 6
#endif
#ifndef NNCL_CPU_BM
#define NNCL_CPU_BM 4
#endif
#ifndef NNCL_CPU_DM
#define NNCL_CPU_DM 2
#endif
#ifndef NNCL_CPU_DN
#define NNCL_CPU_DN 4
#endif
/* Dot blocks: a unit is NNCL_CPU_DN columns over up to NNCL_CPU_DROWS rows, so B's DN rows
 * (w's, a Dense layer's) are read from memory once per unit and from L1 for each row pair
 * (one row pair per unit read all of w once per pair: 16 times at batch 32). */
#ifndef NNCL_CPU_DROWS
#define NNCL_CPU_DROWS 32
#endif
/* Filter gradient: a unit is NNCL_CPU_FSB outer blocks (rows) × 16 columns, walked
 * over K in slices of NNCL_CPU_FKC cells so the slice of dy stays in L1 for all of
 * them; dw holds the running sums between slices (a float stored and reloaded is
 * exact: the same bits as one pass). */
#ifndef NNCL_CPU_FSB
#define NNCL_CPU_FSB 8
#endif
#ifndef NNCL_CPU_FKC
#define NNCL_CPU_FKC 256
#endif

/* Lanes summed in a fixed tree. */
static inline nn_real nncl_hsum8_(nn_real8 v) {
    return ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7));
}

/* A fused bias gradient's share: db[0..cols) (+)= the column sums of rows g[r*ld ..], in
 * row order from 0 (or from db when add): per column the additions of nncl_bias_grad,
 * so the same bits.  A weight gradient's unit calls it for its 16 columns of dy while
 * they are in the cache. */
static inline void nncl_colsum16_(__global const nn_real *g, long ld, int rows, int cols,
                                  __global nn_real *db, int add) {
    if (cols >= 16) {
        nn_real8 s0 = add ? NNCL_LD8_(db) : (nn_real8)0, s1 = add ? NNCL_LD8_(db + 8) : (nn_real8)0;
        for (int r = 0; r < rows; r++, g += ld) { s0 += NNCL_LD8_(g); s1 += NNCL_LD8_(g + 8); }
        vstore8(s0, 0, db);
        vstore8(s1, 0, db + 8);
        return;
    }
    for (int c = 0; c < cols; c++) {
        nn_real s = add ? db[c] : (nn_real)0;
        for (int r = 0; r < rows; r++) s += g[(long)r * ld + c];
        db[c] = s;
    }
}


/* Eight outputs of columns j..j+7 through the epilogue (relu as a select, so -0 and NaN
 * become +0 as in the scalar x > 0 ? x : 0). */
static inline nn_real8 nncl_epi8_(nncl_conv_ p, int j, nn_real8 v) {
    if (p.bias) v += NNCL_LD8_(p.bias + j);
    if (p.act == NN_EPI_RELU) v = select((nn_real8)0, v, (nncl_mask8)isgreater(v, (nn_real8)0));
    else if (p.act == NN_EPI_SIGMOID) {   /* nncl_sigmoid_ per lane: exp of -|v| only */
        nn_real8 e = exp(-fabs(v));
        v = select(e / ((nn_real8)1 + e), (nn_real8)1 / ((nn_real8)1 + e), (nncl_mask8)isgreaterequal(v, (nn_real8)0));
    }
    else if (p.act == NN_EPI_TANH) v = tanh(v);
    return v;
}

/* nncl_act_grad_ on eight lanes, with the same expressions. */
static inline nn_real8 nncl_act_grad8_(int act, nn_real8 y, nn_real8 dy) {
    if (act == NN_EPI_RELU) return select((nn_real8)0, dy, (nncl_mask8)isgreater(y, (nn_real8)0));
    if (act == NN_EPI_SIGMOID) return dy * y * ((nn_real8)1 - y);
    if (act == NN_EPI_TANH) return dy * ((nn_real8)1 - y * y);
    return dy;
}

/* Eight lanes from p, of which the first `have` exist (fewer than 8: the rest are 0). */
static inline nn_real8 nncl_ld8_edge_(__global const nn_real *p, int have) {
    if (have >= 8) return NNCL_LD8_(p);
    nn_real t[8];
    for (int l = 0; l < 8; l++) t[l] = l < have ? p[l] : (nn_real)0;
    return vload8(0, t);
}

/* A filter gradient's k for an outer block's rows (taps kh, kw, c at offset xo from the
 * window's corner), each tap checked against the input's edges (padding adds 0). */
static inline void nncl_taps_masked_(__global const nn_real *A, long corner, int ih0, int iw0, const int *khr,
                                     const int *kwr, const long *xo, nncl_conv_ p, nn_real8 b0, nn_real8 b1,
                                     nn_real8 *acc0, nn_real8 *acc1) {
#pragma unroll
    for (int r = 0; r < NNCL_CPU_RM; r++) {
        int ih = ih0 + khr[r], iw = iw0 + kwr[r];
        int ok = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
        nn_real v = A[ok ? corner + xo[r] : 0], a = ok ? v : (nn_real)0;
        acc0[r] += a * b0;
        acc1[r] += a * b1;
    }
}

/* Writes an outer block's accumulators (rows >= M skipped); at the N edge, a GEMM's
 * valid lanes, and a convolution's outputs computed one by one. */
#define NNCL_OUTER_STORE_(full)                                                          \
    for (int r = 0; r < NNCL_CPU_RM; r++) {                                              \
        int i = i0 + r;                                                                  \
        if (i >= M) break;                                                               \
        if (full) {                                                                      \
            __global nn_real *o = Cm + (long)i * N + j0;                                 \
            nn_real8 lo = acc0[r], hi = acc1[r];                                         \
            if (accumulate) { lo += NNCL_LD8_(o); hi += NNCL_LD8_(o + 8); }              \
            else if (p.bias || p.act) { lo = nncl_epi8_(p, j0, lo); hi = nncl_epi8_(p, j0 + 8, hi); } \
            else if (p.gy) {                                                             \
                lo = nncl_act_grad8_(p.gact, NNCL_LD8_(p.gy + (long)i * N + j0), lo);    \
                hi = nncl_act_grad8_(p.gact, NNCL_LD8_(p.gy + (long)i * N + j0 + 8), hi); \
            }                                                                            \
            vstore8(lo, 0, o);                                                           \
            vstore8(hi, 0, o + 8);                                                       \
        } else if (mode == NNCL_MODE_GEMM_ || p.pk) {   /* the edge block's sums, by lane */ \
            nn_real t[16];                                                               \
            vstore8(acc0[r], 0, t);                                                      \
            vstore8(acc1[r], 0, t + 8);                                                  \
            for (int j = j0; j < N; j++)                                                 \
                nncl_store_(Cm, (long)i * N + j, t[j - j0], accumulate, p, j);           \
        } else {                                                                         \
            for (int j = j0; j < N; j++)                                                 \
                nncl_store_(Cm, (long)i * N + j,                                         \
                            nncl_dot_at_(mode, ta, tb, M, N, K, A, B, p, i, j), accumulate, p, j); \
        }                                                                                \
    }

/* A GEMM outer block: acc0/acc1 += rows i0.. of op(A) times B'(k, j0..j0+15) over all k,
 * B' row k at bk0 + k·ldb (vec: 16 columns to load; else the N − j0 there are, the missing
 * ones 0); xᵀ·dy's first row block also sums its columns of dy (p.db).  A macro, as
 * NNCL_OUTER_STORE_: the sums passed by pointer to a function were spilled (2× slower). */
#define NNCL_OUTER_GEMM_BLOCK_(bk0)                                                     \
    do {                                                                                \
        __global const nn_real *ar_[NNCL_CPU_RM], *bk_ = (bk0);                         \
        long sa_ = ta ? M : 1;                                                          \
        _Pragma("unroll") for (int r = 0; r < NNCL_CPU_RM; r++) {                       \
            int i = min(i0 + r, M - 1);                                                 \
            ar_[r] = ta ? A + i : A + (long)i * K;                                      \
        }                                                                               \
        for (int k = 0; k < K; k++, bk_ += ldb) {                                       \
            nn_real8 b0_, b1_;                                                          \
            if (vec) b0_ = NNCL_LD8_(bk_), b1_ = NNCL_LD8_(bk_ + 8);                    \
            else b0_ = nncl_ld8_edge_(bk_, N - j0), b1_ = nncl_ld8_edge_(bk_ + 8, N - j0 - 8); \
            _Pragma("unroll") for (int r = 0; r < NNCL_CPU_RM; r++) {                   \
                nn_real a_ = ar_[r][k * sa_];                                           \
                acc0[r] += a_ * b0_;                                                    \
                acc1[r] += a_ * b1_;                                                    \
            }                                                                           \
        }                                                                               \
        if (p.db && i0 == 0)                                                            \
            nncl_colsum16_(B + j0, N, K, min(16, N - j0), p.db + j0, 0);                \
    } while (0)

/* Outer blocks: C[M,N] (+)= A'·B' with B'(k, j..j+15) contiguous.  mode GEMM (tb = 0, or
 * packed), CONV_FWD (w as it is or packed) or CONV_BWD_FILTER. */
static inline void nncl_cpu_outer_(int mode, int ta, int tb, int M, int N, int K,
                                   __global const nn_real *A, __global const nn_real *B,
                                   __global nn_real *Cm, int accumulate, nncl_conv_ p) {
    int nb = (N + 15) / 16, mb = (M + NNCL_CPU_RM - 1) / NNCL_CPU_RM;
    /* Conv windows that never leave the input need no bounds checks. */
    int inside = p.PT == 0 && p.PL == 0 && (p.OH - 1) * p.SH + p.KH <= p.H &&
                 (p.OW - 1) * p.SW + p.KW <= p.W;
    NNCL_FOR_UNITS_(u, (long)mb * nb) {
        int jb = (int)(u % nb), i0 = (int)(u / nb) * NNCL_CPU_RM, j0 = jb * 16;
        int full = j0 + 16 <= N;
        /* B'(k, j0..j0+15): row k at bj + k*ldb; packed panels load whole at the N edge. */
        int vec = full || p.pk;
        long ldb = p.pk ? NNCL_PACK_NR : N;
        __global const nn_real *bj = p.pk ? B + (long)jb * K * NNCL_PACK_NR : B + j0;
        nn_real8 acc0[NNCL_CPU_RM], acc1[NNCL_CPU_RM];
#pragma unroll
        for (int r = 0; r < NNCL_CPU_RM; r++) { acc0[r] = (nn_real8)0; acc1[r] = (nn_real8)0; }
        if (mode == NNCL_MODE_GEMM_) {
            NNCL_OUTER_GEMM_BLOCK_(bj);
        } else if (vec && mode == NNCL_MODE_CONV_FWD_) {
            /* rows: output cells (b, oh, ow); k = (kh, kw, c); B' = w [KH*KW*C, F]. */
            int ohr[NNCL_CPU_RM], owr[NNCL_CPU_RM];
            long xb[NNCL_CPU_RM];
#pragma unroll
            for (int r = 0; r < NNCL_CPU_RM; r++) {
                int i = min(i0 + r, M - 1);
                int ow = i % p.OW, t = i / p.OW, oh = t % p.OH, b = t / p.OH;
                ohr[r] = oh * p.SH - p.PT;
                owr[r] = ow * p.SW - p.PL;
                xb[r] = (long)b * p.H;
            }
            for (int kh = 0; kh < p.KH; kh++)
                for (int kw = 0; kw < p.KW; kw++) {
                    long off[NNCL_CPU_RM];
                    nncl_bits_ keep[NNCL_CPU_RM];
                    int any = 0;
#pragma unroll
                    for (int r = 0; r < NNCL_CPU_RM; r++) {
                        int ih = ohr[r] + kh, iw = owr[r] + kw;
                        int ok = inside || (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W);
                        off[r] = ok ? ((xb[r] + ih) * p.W + iw) * p.C : 0;
                        keep[r] = ok ? ~(nncl_bits_)0 : 0;
                        any |= ok;
                    }
                    if (!any) continue;   /* all padding ('same' borders) */
                    __global const nn_real *bk = bj + (long)(kh * p.KW + kw) * p.C * ldb;
                    if (inside) {   /* no selects: one broadcast per a, from a pointer per
                                     * row (offsets + c would be vectorized into extracts) */
                        __global const nn_real *ar[NNCL_CPU_RM];
#pragma unroll
                        for (int r = 0; r < NNCL_CPU_RM; r++) ar[r] = A + off[r];
                        for (int c = 0; c < p.C; c++, bk += ldb) {
                            nn_real8 b0 = NNCL_LD8_(bk), b1 = NNCL_LD8_(bk + 8);
#pragma unroll
                            for (int r = 0; r < NNCL_CPU_RM; r++) {
                                nn_real a = ar[r][c];
                                acc0[r] += a * b0;
                                acc1[r] += a * b1;
                            }
                        }
                        continue;
                    }
                    for (int c = 0; c < p.C; c++, bk += ldb) {
                        nn_real8 b0 = NNCL_LD8_(bk), b1 = NNCL_LD8_(bk + 8);
#pragma unroll
                        for (int r = 0; r < NNCL_CPU_RM; r++) {
                            nn_real a = NNCL_KEEP_(A[off[r] + c], keep[r]);
                            acc0[r] += a * b0;
                            acc1[r] += a * b1;
                        }
                    }
                }
        } else if (full) {
            /* CONV_BWD_FILTER: rows (kh, kw, c); k = (b, oh, ow); B' = dy [n*OH*OW, F]. */
            int khr[NNCL_CPU_RM], kwr[NNCL_CPU_RM];
            long xo[NNCL_CPU_RM];
#pragma unroll
            for (int r = 0; r < NNCL_CPU_RM; r++) {
                int i = min(i0 + r, M - 1);
                int c = i % p.C, t = i / p.C, kw = t % p.KW, kh = t / p.KW;
                khr[r] = kh;
                kwr[r] = kw;
                xo[r] = ((long)kh * p.W + kw) * p.C + c;   /* from the window's corner */
            }
            __global const nn_real *bk = B + j0;
            for (int b = 0; b < p.n; b++)
                for (int oh = 0; oh < p.OH; oh++) {
                    int ih0 = oh * p.SH - p.PT;
                    long row = ((long)b * p.H + ih0) * p.W;
                    for (int ow = 0; ow < p.OW; ow++, bk += N) {
                        int iw0 = ow * p.SW - p.PL;
                        long corner = (row + iw0) * p.C;
                        nn_real8 b0 = NNCL_LD8_(bk), b1 = NNCL_LD8_(bk + 8);
                        if (inside) {
#pragma unroll
                            for (int r = 0; r < NNCL_CPU_RM; r++) {
                                nn_real a = A[corner + xo[r]];
                                acc0[r] += a * b0;
                                acc1[r] += a * b1;
                            }
                        } else {
                            nncl_taps_masked_(A, corner, ih0, iw0, khr, kwr, xo, p, b0, b1, acc0, acc1);
                        }
                    }
                }
        }
        NNCL_OUTER_STORE_(full)
    }
}

/* A convolution whose windows leave the input (padding), with
 * B' rows loadable as vectors: outer blocks whose NNCL_CPU_RM rows are one output cell in
 * consecutive samples (NNCL_CPU_BM: a batch of 32 fills 4-row blocks, and LLVM keeps
 * 4×16 sums in registers here where 6×16 spill), so every row of a block has the same window cells inside the
 * input and a cell in the padding is skipped as a whole (no per-row selects, which LLVM
 * turns into branches in the hot loop).  Skipping adds nothing where the NHWC form adds
 * zeros: the same sums.  Used when the batch fills the blocks (nncl_cpu_gemm_). */
static inline void nncl_cpu_conv_batched_(int N, int K, __global const nn_real *A, __global const nn_real *B,
                                          __global nn_real *Cm, nncl_conv_ p) {
    int nb = (N + 15) / 16, cells = p.OH * p.OW, bbs = (p.n + NNCL_CPU_BM - 1) / NNCL_CPU_BM;
    long ldb = p.pk ? NNCL_PACK_NR : N;
    NNCL_FOR_UNITS_(u, (long)bbs * cells * nb) {
        int jb = (int)(u % nb), cell = (int)(u / nb % cells), b0 = (int)(u / nb / cells) * NNCL_CPU_BM;
        int j0 = jb * 16, ow = cell % p.OW, oh = cell / p.OW;
        int ih0 = oh * p.SH - p.PT, iw0 = ow * p.SW - p.PL;
        __global const nn_real *bj = p.pk ? B + (long)jb * K * NNCL_PACK_NR : B + j0;
        long xb[NNCL_CPU_BM];
        nn_real8 acc0[NNCL_CPU_BM], acc1[NNCL_CPU_BM];
#pragma unroll
        for (int r = 0; r < NNCL_CPU_BM; r++) {
            acc0[r] = (nn_real8)0;
            acc1[r] = (nn_real8)0;
            xb[r] = (long)min(b0 + r, p.n - 1) * p.H;
        }
        for (int kh = 0; kh < p.KH; kh++) {
            int ih = ih0 + kh;
            if (ih < 0 || ih >= p.H) continue;
            for (int kw = 0; kw < p.KW; kw++) {
                int iw = iw0 + kw;
                if (iw < 0 || iw >= p.W) continue;
                __global const nn_real *ar[NNCL_CPU_BM];
#pragma unroll
                for (int r = 0; r < NNCL_CPU_BM; r++) ar[r] = A + ((xb[r] + ih) * p.W + iw) * p.C;
                __global const nn_real *bk = bj + (long)(kh * p.KW + kw) * p.C * ldb;
                for (int c = 0; c < p.C; c++, bk += ldb) {
                    nn_real8 b0v = NNCL_LD8_(bk), b1v = NNCL_LD8_(bk + 8);
#pragma unroll
                    for (int r = 0; r < NNCL_CPU_BM; r++) {
                        nn_real a = ar[r][c];
                        acc0[r] += a * b0v;
                        acc1[r] += a * b1v;
                    }
                }
            }
        }
        for (int r = 0; r < NNCL_CPU_BM; r++) {
            if (b0 + r >= p.n) break;
            long i = (long)(b0 + r) * cells + cell;
            if (j0 + 16 <= N) {
                __global nn_real *o = Cm + i * N + j0;
                nn_real8 lo = acc0[r], hi = acc1[r];
                if (p.bias || p.act) { lo = nncl_epi8_(p, j0, lo); hi = nncl_epi8_(p, j0 + 8, hi); }
                else if (p.gy) {
                    lo = nncl_act_grad8_(p.gact, NNCL_LD8_(p.gy + i * N + j0), lo);
                    hi = nncl_act_grad8_(p.gact, NNCL_LD8_(p.gy + i * N + j0 + 8), hi);
                }
                vstore8(lo, 0, o);
                vstore8(hi, 0, o + 8);
            } else {   /* packed panels at the N edge: the valid lanes */
                nn_real t[16];
                vstore8(acc0[r], 0, t);
                vstore8(acc1[r], 0, t + 8);
                for (int j = j0; j < N; j++) nncl_store_(Cm, i * N + j, t[j - j0], 0, p, j);
            }
        }
    }
}

/* Filter gradient dw[KH*KW*C, F] = im2col(x)ᵀ · dy in outer blocks, K in slices. */
static inline void nncl_cpu_filter_(int M, int N, int K, __global const nn_real *A,
                                    __global const nn_real *B, __global nn_real *Cm, nncl_conv_ p) {
    int nb = (N + 15) / 16, mb = (M + NNCL_CPU_RM - 1) / NNCL_CPU_RM;
    int sbs = (mb + NNCL_CPU_FSB - 1) / NNCL_CPU_FSB;
    int inside = p.PT == 0 && p.PL == 0 && (p.OH - 1) * p.SH + p.KH <= p.H &&
                 (p.OW - 1) * p.SW + p.KW <= p.W;
    NNCL_FOR_UNITS_(u, (long)sbs * nb) {
        int j0 = (int)(u % nb) * 16, rb0 = (int)(u / nb) * NNCL_CPU_FSB;
        int rb1 = min(rb0 + NNCL_CPU_FSB, mb);
        if (j0 + 16 > N) {   /* the N edge: one output at a time */
            for (int i = rb0 * NNCL_CPU_RM; i < min(rb1 * NNCL_CPU_RM, M); i++)
                for (int j = j0; j < N; j++)
                    Cm[(long)i * N + j] = nncl_dot_at_(NNCL_MODE_CONV_BWD_FILTER_, 0, 0, M, N, K, A, B, p, i, j);
            if (p.db && rb0 == 0) nncl_colsum16_(B + j0, N, K, N - j0, p.db + j0, 0);
            continue;
        }
        for (int k0 = 0; k0 < K; k0 += NNCL_CPU_FKC) {
            int k1 = min(k0 + NNCL_CPU_FKC, K);
            if (p.db && rb0 == 0)   /* the first row blocks also sum this slice of dy's columns */
                nncl_colsum16_(B + (long)k0 * N + j0, N, k1 - k0, 16, p.db + j0, k0 > 0);
            int ow0 = k0 % p.OW, t0 = k0 / p.OW, oh0 = t0 % p.OH, b0 = t0 / p.OH;
            for (int rb = rb0; rb < rb1; rb++) {
                int i0 = rb * NNCL_CPU_RM;
                nn_real8 acc0[NNCL_CPU_RM], acc1[NNCL_CPU_RM];
                int khr[NNCL_CPU_RM], kwr[NNCL_CPU_RM];
                long xo[NNCL_CPU_RM];
#pragma unroll
                for (int r = 0; r < NNCL_CPU_RM; r++) {
                    int i = min(i0 + r, M - 1);
                    int c = i % p.C, t = i / p.C, kw = t % p.KW, kh = t / p.KW;
                    khr[r] = kh;
                    kwr[r] = kw;
                    xo[r] = ((long)kh * p.W + kw) * p.C + c;   /* from the window's corner */
                    __global const nn_real *o = Cm + (long)i * N + j0;
                    acc0[r] = k0 ? NNCL_LD8_(o) : (nn_real8)0;
                    acc1[r] = k0 ? NNCL_LD8_(o + 8) : (nn_real8)0;
                }
                int one_tap = 1;
#pragma unroll
                for (int r = 1; r < NNCL_CPU_RM; r++)
                    one_tap &= khr[r] == khr[0] && kwr[r] == kwr[0] && xo[r] - xo[0] < p.C;
                /* k = (b, oh, ow) in runs along one output row: the window corner moves by
                 * SW*C per k, so the inside case keeps one pointer into x. */
                int ow = ow0, oh = oh0, b = b0;
                __global const nn_real *bk = B + (long)k0 * N + j0;
                for (int k = k0; k < k1;) {
                    int run = min(p.OW - ow, k1 - k), ih0 = oh * p.SH - p.PT;
                    long row = ((long)b * p.H + ih0) * p.W;
                    if (inside) {
                        __global const nn_real *xc = A + (row + ow * p.SW - p.PL) * p.C;
                        long step = (long)p.SW * p.C;
                        for (int t = 0; t < run; t++, xc += step, bk += N) {
                            nn_real8 v0 = NNCL_LD8_(bk), v1 = NNCL_LD8_(bk + 8);
#pragma unroll
                            for (int r = 0; r < NNCL_CPU_RM; r++) {
                                nn_real a = xc[xo[r]];
                                acc0[r] += a * v0;
                                acc1[r] += a * v1;
                            }
                        }
                    } else {
                        for (int t = 0; t < run; t++, bk += N) {
                            int iw0 = (ow + t) * p.SW - p.PL;
                            long corner = (row + iw0) * p.C;
                            nn_real8 v0 = NNCL_LD8_(bk), v1 = NNCL_LD8_(bk + 8);
                            if (one_tap) {   /* the block's rows share (kh, kw): one check */
                                int ih = ih0 + khr[0], iw = iw0 + kwr[0];
                                int ok = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
                                long at = ok ? corner : -xo[0];   /* A[0] when outside */
#pragma unroll
                                for (int r = 0; r < NNCL_CPU_RM; r++) {
                                    nn_real v = A[at + xo[r]], a = ok ? v : (nn_real)0;
                                    acc0[r] += a * v0;
                                    acc1[r] += a * v1;
                                }
                            } else {
                                nncl_taps_masked_(A, corner, ih0, iw0, khr, kwr, xo, p, v0, v1, acc0, acc1);
                            }
                        }
                    }
                    k += run;
                    if ((ow += run) == p.OW) {
                        ow = 0;
                        if (++oh == p.OH) { oh = 0; b++; }
                    }
                }
                for (int r = 0; r < NNCL_CPU_RM; r++) {
                    int i = i0 + r;
                    if (i >= M) break;
                    __global nn_real *o = Cm + (long)i * N + j0;
                    vstore8(acc0[r], 0, o);
                    vstore8(acc1[r], 0, o + 8);
                }
            }
        }
    }
}

/* Dot blocks: C[M,N] (+)= A'·B' with A'(i, k..) and B'(.., j) both contiguous in k, in
 * vectors of 8 then a scalar tail.  mode GEMM (ta = 0, tb = 1) or CONV_BWD_DATA (k =
 * (kh, kw, f): the f runs are contiguous in dy and in w[kh,kw,c,:]). */
static inline void nncl_cpu_dot_(int mode, int M, int N, int K, __global const nn_real *A,
                                 __global const nn_real *B, __global nn_real *Cm, int accumulate,
                                 nncl_conv_ p) {
    int nb = (N + NNCL_CPU_DN - 1) / NNCL_CPU_DN, mc = (M + NNCL_CPU_DROWS - 1) / NNCL_CPU_DROWS;
    NNCL_FOR_UNITS_(u, (long)mc * nb) {
        int j0 = (int)(u % nb) * NNCL_CPU_DN, ic = (int)(u / nb) * NNCL_CPU_DROWS;
        for (int i0 = ic; i0 < min(ic + NNCL_CPU_DROWS, M); i0 += NNCL_CPU_DM) {
            nn_real8 acc[NNCL_CPU_DM][NNCL_CPU_DN];
            nn_real tail[NNCL_CPU_DM][NNCL_CPU_DN];
#pragma unroll
            for (int r = 0; r < NNCL_CPU_DM; r++)
#pragma unroll
                for (int c = 0; c < NNCL_CPU_DN; c++) { acc[r][c] = (nn_real8)0; tail[r][c] = 0; }
            if (mode == NNCL_MODE_GEMM_) {
                __global const nn_real *ar[NNCL_CPU_DM], *bc[NNCL_CPU_DN];
#pragma unroll
                for (int r = 0; r < NNCL_CPU_DM; r++) ar[r] = A + (long)min(i0 + r, M - 1) * K;
#pragma unroll
                for (int c = 0; c < NNCL_CPU_DN; c++) bc[c] = B + (long)min(j0 + c, N - 1) * K;
                int k = 0;
                for (; k + 8 <= K; k += 8) {
                    nn_real8 a[NNCL_CPU_DM], b[NNCL_CPU_DN];
#pragma unroll
                    for (int r = 0; r < NNCL_CPU_DM; r++) a[r] = NNCL_LD8_(ar[r] + k);
#pragma unroll
                    for (int c = 0; c < NNCL_CPU_DN; c++) b[c] = NNCL_LD8_(bc[c] + k);
#pragma unroll
                    for (int r = 0; r < NNCL_CPU_DM; r++)
#pragma unroll
                        for (int c = 0; c < NNCL_CPU_DN; c++) acc[r][c] += a[r] * b[c];
                }
                for (; k < K; k++)
#pragma unroll
                    for (int r = 0; r < NNCL_CPU_DM; r++)
#pragma unroll
                        for (int c = 0; c < NNCL_CPU_DN; c++) tail[r][c] += ar[r][k] * bc[c][k];
            } else {
                /* CONV_BWD_DATA: rows input cells (b, ih, iw), columns c; A = dy, B = w. */
                int ihr[NNCL_CPU_DM], iwr[NNCL_CPU_DM];
                long yb[NNCL_CPU_DM];
                int F = p.F;
#pragma unroll
                for (int r = 0; r < NNCL_CPU_DM; r++) {
                    int i = min(i0 + r, M - 1);
                    int iw = i % p.W, t = i / p.W, ih = t % p.H, b = t / p.H;
                    ihr[r] = ih + p.PT;
                    iwr[r] = iw + p.PL;
                    yb[r] = (long)b * p.OH;
                }
                for (int kh = 0; kh < p.KH; kh++)
                    for (int kw = 0; kw < p.KW; kw++) {
                        long off[NNCL_CPU_DM];
                        int ok[NNCL_CPU_DM], any = 0;
#pragma unroll
                        for (int r = 0; r < NNCL_CPU_DM; r++) {
                            int oy = ihr[r] - kh, ox = iwr[r] - kw;
                            int oh = oy / p.SH, ow = ox / p.SW;
                            ok[r] = oy >= 0 && ox >= 0 && oy % p.SH == 0 && ox % p.SW == 0 &&
                                    oh < p.OH && ow < p.OW;
                            off[r] = ok[r] ? ((yb[r] + oh) * p.OW + ow) * F : 0;
                            any |= ok[r];
                        }
                        if (!any) continue;
                        __global const nn_real *wc[NNCL_CPU_DN];
#pragma unroll
                        for (int c = 0; c < NNCL_CPU_DN; c++)
                            wc[c] = B + ((long)(kh * p.KW + kw) * p.C + min(j0 + c, N - 1)) * F;
                        int f = 0;
                        for (; f + 8 <= F; f += 8) {
                            nn_real8 a[NNCL_CPU_DM], b[NNCL_CPU_DN];
#pragma unroll
                            for (int r = 0; r < NNCL_CPU_DM; r++) {
                                nn_real8 v = NNCL_LD8_(A + off[r] + f);
                                a[r] = ok[r] ? v : (nn_real8)0;
                            }
#pragma unroll
                            for (int c = 0; c < NNCL_CPU_DN; c++) b[c] = NNCL_LD8_(wc[c] + f);
#pragma unroll
                            for (int r = 0; r < NNCL_CPU_DM; r++)
#pragma unroll
                                for (int c = 0; c < NNCL_CPU_DN; c++) acc[r][c] += a[r] * b[c];
                        }
                        for (; f < F; f++)
#pragma unroll
                            for (int r = 0; r < NNCL_CPU_DM; r++) {
                                nn_real v = A[off[r] + f], a = ok[r] ? v : (nn_real)0;
#pragma unroll
                                for (int c = 0; c < NNCL_CPU_DN; c++) tail[r][c] += a * wc[c][f];
                            }
                    }
            }
            for (int r = 0; r < NNCL_CPU_DM; r++) {
                int i = i0 + r;
                if (i >= M) break;
                for (int c = 0; c < NNCL_CPU_DN; c++) {
                    int j = j0 + c;
                    if (j >= N) break;
                    nncl_store_(Cm, (long)i * N + j, nncl_hsum8_(acc[r][c]) + tail[r][c], accumulate, p, j);
                }
            }
        }
    }
}

/* Lane r of the result is nncl_hsum8_ of the r-th argument: the same tree (neighbouring
 * lanes, then neighbouring pairs, then the halves) for eight vectors at once, so eight
 * dot products end in three rounds of shuffles and adds instead of 56 scalar adds. */
static inline nn_real8 nncl_hsum8x8_(nn_real8 a, nn_real8 b, nn_real8 c, nn_real8 d, nn_real8 e, nn_real8 f,
                                     nn_real8 g, nn_real8 h) {
    nn_real8 ab = (nn_real8)(a.even, b.even) + (nn_real8)(a.odd, b.odd);
    nn_real8 cd = (nn_real8)(c.even, d.even) + (nn_real8)(c.odd, d.odd);
    nn_real8 ef = (nn_real8)(e.even, f.even) + (nn_real8)(e.odd, f.odd);
    nn_real8 gh = (nn_real8)(g.even, h.even) + (nn_real8)(g.odd, h.odd);
    nn_real8 abcd = (nn_real8)(ab.even, cd.even) + (nn_real8)(ab.odd, cd.odd);
    nn_real8 efgh = (nn_real8)(ef.even, gh.even) + (nn_real8)(ef.odd, gh.odd);
    return (nn_real8)(abcd.even, efgh.even) + (nn_real8)(abcd.odd, efgh.odd);
}

/* A Dense layer's data gradient and any C = A·Bᵀ (A [M,K], B [N,K], both contiguous in
 * k): blocks of 2 rows × 4 columns, eight vector sums along k (B's four rows are read
 * from L1 for every row pair of a unit of NNCL_CPU_DROWS rows), reduced together by
 * nncl_hsum8x8_ into one vector, lanes (row, column), then a scalar tail of k: each
 * output the sums of nncl_cpu_dot_, so its bits. */
static inline void nncl_cpu_gemm_nt_(int M, int N, int K, __global const nn_real *A, __global const nn_real *B,
                                     __global nn_real *Cm, int accumulate, nncl_conv_ p) {
    int nb = (N + 3) / 4, mc = (M + NNCL_CPU_DROWS - 1) / NNCL_CPU_DROWS, K8 = K / 8 * 8;
    int plain = !accumulate && !p.gy && !p.bias && !p.act;
    NNCL_FOR_UNITS_(u, (long)mc * nb) {
        int j0 = (int)(u % nb) * 4, ic = (int)(u / nb) * NNCL_CPU_DROWS;
        __global const nn_real *w0 = B + (long)j0 * K, *w1 = B + (long)min(j0 + 1, N - 1) * K,
                               *w2 = B + (long)min(j0 + 2, N - 1) * K, *w3 = B + (long)min(j0 + 3, N - 1) * K;
        for (int i0 = ic; i0 < min(ic + NNCL_CPU_DROWS, M); i0 += 2) {
            int i1 = min(i0 + 1, M - 1);
            __global const nn_real *a0 = A + (long)i0 * K, *a1 = A + (long)i1 * K;
            nn_real8 s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            for (int k = 0; k < K8; k += 8) {
                nn_real8 x0 = NNCL_LD8_(a0 + k), x1 = NNCL_LD8_(a1 + k);
                nn_real8 y0 = NNCL_LD8_(w0 + k), y1 = NNCL_LD8_(w1 + k), y2 = NNCL_LD8_(w2 + k),
                         y3 = NNCL_LD8_(w3 + k);
                s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
                s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
            }
            nn_real8 v = nncl_hsum8x8_(s00, s01, s02, s03, s10, s11, s12, s13);
            if (K8 < K) {   /* the k tail, summed from 0 per output as in nncl_cpu_dot_ */
                nn_real4 t0 = 0, t1 = 0;
                for (int k = K8; k < K; k++) {
                    nn_real4 y = (nn_real4)(w0[k], w1[k], w2[k], w3[k]);
                    t0 += a0[k] * y;
                    t1 += a1[k] * y;
                }
                v += (nn_real8)(t0, t1);
            }
            __global nn_real *o0 = Cm + (long)i0 * N + j0, *o1 = Cm + (long)i1 * N + j0;
            if (plain && j0 + 4 <= N) {
                vstore4(v.lo, 0, o0);
                if (i0 + 1 < M) vstore4(v.hi, 0, o1);
                continue;
            }
            nn_real t[8];
            vstore8(v, 0, t);
            for (int r = 0; r < 2 && i0 + r < M; r++)
                for (int c = 0; c < 4 && j0 + c < N; c++)
                    nncl_store_(Cm, (long)(i0 + r) * N + j0 + c, t[r * 4 + c], accumulate, p, j0 + c);
        }
    }
}

/* GEMM C[M,N] (+)= op(A)·B' with B' rows contiguous along j: B [K,N] (tb = 0) or packed
 * panels (p.pk).  The outer blocks of nncl_cpu_outer_ (the same sums, so its bits), but a
 * unit is a chunk of row blocks × a chunk of 16-column panels, walked so that the larger
 * operand is read from memory once per unit and from the caches after: with B' larger
 * than A' (a Dense layer's forward pass: M is the batch, B' the weights) a unit is one
 * panel of B' (K × 16) for a chunk of row blocks; else (a weight gradient Aᵀ·dy: M is the
 * layer's inputs, dy small) a few row blocks of A' for every panel.  Chunks are sized for
 * at least NNCL_CPU_GEMM_UNITS units (by panel; four times that by rows) where the blocks
 * allow.  For operands that fit in L1 (NNCL_CPU_GEMM_L1 elements), or one panel (there is
 * nothing to walk), nncl_cpu_outer_'s units are as good and measured faster (a Dense layer
 * of 10 units: 0.7-0.8x here). */
#ifndef NNCL_CPU_GEMM_L1
#define NNCL_CPU_GEMM_L1 8192
#endif
#ifndef NNCL_CPU_GEMM_UNITS
#define NNCL_CPU_GEMM_UNITS 8
#endif
#ifndef NNCL_CPU_GEMM_RB
#define NNCL_CPU_GEMM_RB 8
#endif
static inline void nncl_cpu_gemm_nn_(int ta, int M, int N, int K, __global const nn_real *A,
                                     __global const nn_real *B, __global nn_real *Cm, int accumulate,
                                     nncl_conv_ p) {
    int mode = NNCL_MODE_GEMM_, tb = 0;   /* for NNCL_OUTER_STORE_ */
    int nb = (N + 15) / 16, mb = (M + NNCL_CPU_RM - 1) / NNCL_CPU_RM;
    int by_panel = N > M;   /* B' (K×N) larger than A' (M×K) */
    int rc, pc;             /* row blocks and panels per unit */
    if (by_panel) {
        pc = 1;
        int chunks = min(mb, max(1, (NNCL_CPU_GEMM_UNITS + nb - 1) / nb));
        rc = (mb + chunks - 1) / chunks;
    } else {
        pc = nb;
        rc = clamp(mb / (4 * NNCL_CPU_GEMM_UNITS), 1, NNCL_CPU_GEMM_RB);
    }
    int rcs = (mb + rc - 1) / rc, pcs = (nb + pc - 1) / pc;
    long ldb = p.pk ? NNCL_PACK_NR : N;
    NNCL_FOR_UNITS_(u, (long)rcs * pcs) {
        int rb0 = (int)(u % rcs) * rc, jb0 = (int)(u / rcs) * pc;
        int nr = min(rc, mb - rb0), np = min(pc, nb - jb0);
        for (int b = 0; b < nr * np; b++) {
            int rb = rb0 + (by_panel ? b : b / np), jb = jb0 + (by_panel ? 0 : b % np);
            int i0 = rb * NNCL_CPU_RM, j0 = jb * 16, full = j0 + 16 <= N, vec = full || p.pk;
            __global const nn_real *bk = p.pk ? B + (long)jb * K * NNCL_PACK_NR : B + j0;
            nn_real8 acc0[NNCL_CPU_RM], acc1[NNCL_CPU_RM];
#pragma unroll
            for (int r = 0; r < NNCL_CPU_RM; r++) acc0[r] = acc1[r] = (nn_real8)0;
            NNCL_OUTER_GEMM_BLOCK_(bk);
            NNCL_OUTER_STORE_(full)
        }
    }
}

/* Any A', B' (GEMM with ta = tb = 1): one item per output, the generic accessors. */
static inline void nncl_cpu_scalar_(int mode, int ta, int tb, int M, int N, int K,
                                    __global const nn_real *A, __global const nn_real *B,
                                    __global nn_real *Cm, int accumulate, nncl_conv_ p) {
    NNCL_FOR_UNITS_(o, (long)M * N) {
        int i = (int)(o / N), j = (int)(o % N);
        nncl_store_(Cm, o, nncl_dot_at_(mode, ta, tb, M, N, K, A, B, p, i, j), accumulate, p, j);
    }
}

/* A convolution whose windows hold few elements (a first layer: C = 1..3 under 3×3) and
 * whose filters fill 16-lane pairs, convolved directly, as the C library does: as a GEMM
 * its K would be too short to amortize the per-k decoding of the window.  A unit is an
 * output row and 16 filters; four columns at a time keep 4×2 vectors of sums over the
 * window cells (padding cells skipped), stored once through the epilogue. */
#define NNCL_CONV_DIRECT_MAX_K 32
static inline int nncl_conv_is_direct_(nncl_conv_ p) {
    return p.KH * p.KW * p.C <= NNCL_CONV_DIRECT_MAX_K && p.F % 16 == 0;
}

static inline void nncl_cpu_conv_direct_(__global const nn_real *x, __global const nn_real *w,
                                         __global nn_real *y, nncl_conv_ p) {
    int fb = p.F / 16;
    int inside = p.PT == 0 && p.PL == 0 && (p.OH - 1) * p.SH + p.KH <= p.H && (p.OW - 1) * p.SW + p.KW <= p.W;
    NNCL_FOR_UNITS_(u, (long)p.n * p.OH * fb) {
        int f0 = (int)(u % fb) * 16, oh = (int)(u / fb % p.OH), b = (int)(u / fb / p.OH);
        __global const nn_real *xb = x + (long)b * p.H * p.W * p.C;
        __global nn_real *yrow = y + ((long)b * p.OH + oh) * p.OW * p.F;
        int ih0 = oh * p.SH - p.PT;
        int ow0 = 0;
        if (inside)   /* six columns at a time, no bounds checks (6×2 sums in registers) */
            for (; ow0 + 6 <= p.OW; ow0 += 6) {
                nn_real8 s0[6], s1[6];
#pragma unroll
                for (int t = 0; t < 6; t++) s0[t] = s1[t] = (nn_real8)0;
                for (int kh = 0; kh < p.KH; kh++)
                    for (int kw = 0; kw < p.KW; kw++) {
                        __global const nn_real *xr = xb + ((long)(ih0 + kh) * p.W + ow0 * p.SW + kw) * p.C;
                        __global const nn_real *wr = w + ((long)kh * p.KW + kw) * p.C * p.F + f0;
                        for (int c = 0; c < p.C; c++, wr += p.F) {
                            nn_real8 w0 = NNCL_LD8_(wr), w1 = NNCL_LD8_(wr + 8);
#pragma unroll
                            for (int t = 0; t < 6; t++) {
                                nn_real xv = xr[(long)t * p.SW * p.C + c];
                                s0[t] += xv * w0;
                                s1[t] += xv * w1;
                            }
                        }
                    }
#pragma unroll
                for (int t = 0; t < 6; t++) {
                    __global nn_real *o = yrow + (long)(ow0 + t) * p.F + f0;
                    vstore8(nncl_epi8_(p, f0, s0[t]), 0, o);
                    vstore8(nncl_epi8_(p, f0 + 8, s1[t]), 0, o + 8);
                }
            }
        for (; ow0 < p.OW; ow0 += 4) {
            int tw = min(4, p.OW - ow0);
            nn_real8 s[4][2];
            for (int t = 0; t < 4; t++) s[t][0] = s[t][1] = (nn_real8)0;
            for (int kh = 0; kh < p.KH; kh++) {
                int ih = ih0 + kh;
                if (ih < 0 || ih >= p.H) continue;
                for (int kw = 0; kw < p.KW; kw++)
                    for (int c = 0; c < p.C; c++) {
                        __global const nn_real *wr = w + (((long)kh * p.KW + kw) * p.C + c) * p.F + f0;
                        nn_real8 w0 = NNCL_LD8_(wr), w1 = NNCL_LD8_(wr + 8);
                        for (int t = 0; t < 4; t++) {
                            int iw = (ow0 + t) * p.SW - p.PL + kw;
                            if (t >= tw || iw < 0 || iw >= p.W) continue;
                            nn_real xv = xb[((long)ih * p.W + iw) * p.C + c];
                            s[t][0] += xv * w0;
                            s[t][1] += xv * w1;
                        }
                    }
            }
            for (int t = 0; t < tw; t++) {
                __global nn_real *o = yrow + (long)(ow0 + t) * p.F + f0;
                vstore8(nncl_epi8_(p, f0, s[t][0]), 0, o);
                vstore8(nncl_epi8_(p, f0 + 8, s[t][1]), 0, o + 8);
            }
        }
    }
}

static inline void nncl_cpu_gemm_(int mode, int ta, int tb, int M, int N, int K,
                                  __global const nn_real *A, __global const nn_real *B,
                                  __global nn_real *Cm, int accumulate, nncl_conv_ p) {
    if (M <= 0 || N <= 0) return;
    if (mode == NNCL_MODE_CONV_FWD_ && !accumulate && !p.pk && nncl_conv_is_direct_(p)) {
        nncl_cpu_conv_direct_(A, B, Cm, p);
        return;
    }
    int inside = p.PT == 0 && p.PL == 0 && (p.OH - 1) * p.SH + p.KH <= p.H && (p.OW - 1) * p.SW + p.KW <= p.W;
    int blocks = (p.n + NNCL_CPU_BM - 1) / NNCL_CPU_BM * NNCL_CPU_BM;   /* rows the batched form computes */
    if (mode == NNCL_MODE_CONV_FWD_ && !accumulate && !inside && (p.pk || N % 16 == 0) && 3 * blocks <= 4 * p.n) {
        nncl_cpu_conv_batched_(N, K, A, B, Cm, p);   /* at most a quarter of its rows wasted */
        return;
    }
    if (mode == NNCL_MODE_CONV_BWD_FILTER_ && K > 0)
        nncl_cpu_filter_(M, N, K, A, B, Cm, p);
    else if (!p.pk && mode == NNCL_MODE_GEMM_ && !ta && tb)
        nncl_cpu_gemm_nt_(M, N, K, A, B, Cm, accumulate, p);
    else if (!p.pk && mode == NNCL_MODE_CONV_BWD_DATA_)
        nncl_cpu_dot_(mode, M, N, K, A, B, Cm, accumulate, p);
    else if (!p.pk && mode == NNCL_MODE_GEMM_ && tb)
        nncl_cpu_scalar_(mode, ta, tb, M, N, K, A, B, Cm, accumulate, p);
    else if (mode == NNCL_MODE_GEMM_ && N > 16 && max((long)M * K, (long)K * N) > NNCL_CPU_GEMM_L1)
        nncl_cpu_gemm_nn_(ta, M, N, K, A, B, Cm, accumulate, p);
    else
        nncl_cpu_outer_(mode, ta, tb, M, N, K, A, B, Cm, accumulate, p);
}
#endif /* NNCL_CPU */

/* A contraction on this device's engine: the CPU blocks or the GPU tiles (scratch). */
static inline void nncl_contract_(int mode, int ta, int tb, int M, int N, int K, __global const nn_real *A,
                                  __global const nn_real *B, __global nn_real *Cm, int accumulate, nncl_conv_ p,
                                  __local nn_real *scratch) {
#if NNCL_CPU
    nncl_cpu_gemm_(mode, ta, tb, M, N, K, A, B, Cm, accumulate, p);
#else
    nncl_tiled_gemm_(mode, ta, tb, M, N, K, A, B, Cm, accumulate, p, scratch);
#endif
}

/* C[M,N] (+)= op(A)[M,K] · op(B)[K,N], row-major, as nnk_gemm (any ta, tb). */
static inline void nncl_gemm(int ta, int tb, int M, int N, int K, __global const nn_real *A,
                             __global const nn_real *B, __global nn_real *C, int accumulate,
                             __local nn_real *scratch) {
    nncl_conv_ none = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NN_EPI_NONE};
#if NNCL_CPU
    nncl_cpu_gemm_(NNCL_MODE_GEMM_, ta, tb, M, N, K, A, B, C, accumulate, none);
#else
    nncl_tiled_gemm_(NNCL_MODE_GEMM_, ta, tb, M, N, K, A, B, C, accumulate, none, scratch);
#endif
}

/* C = op(A)·op(B) + bias, then the activation, as nnk_gemm_bias_act. */
#define NNCL_GEMM_BIAS_ACT_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_gemm_bias_act(int ta, int tb, int M, int N, int K, __global const nn_real *A,
                                      __global const nn_real *B, __global const nn_real *bias, int act,
                                      __global nn_real *C, __local nn_real *scratch) {
    nncl_conv_ epi = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, bias, act};
#if NNCL_CPU
    nncl_cpu_gemm_(NNCL_MODE_GEMM_, ta, tb, M, N, K, A, B, C, 0, epi);
#else
    nncl_tiled_gemm_(NNCL_MODE_GEMM_, ta, tb, M, N, K, A, B, C, 0, epi, scratch);
#endif
}

/* C = op(A)·op(B) times act'(y), as nnk_gemm_act_grad. */
#define NNCL_GEMM_ACT_GRAD_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_gemm_act_grad(int ta, int tb, int M, int N, int K, __global const nn_real *A,
                                      __global const nn_real *B, __global const nn_real *y, int act,
                                      __global nn_real *C, __local nn_real *scratch) {
    nncl_conv_ epi = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NN_EPI_NONE, y, act};
#if NNCL_CPU
    nncl_cpu_gemm_(NNCL_MODE_GEMM_, ta, tb, M, N, K, A, B, C, 0, epi);
#else
    nncl_tiled_gemm_(NNCL_MODE_GEMM_, ta, tb, M, N, K, A, B, C, 0, epi, scratch);
#endif
}

/* op(B)[K,N] into panels (NNCL_PACK_NR): B stored [K,N] row-major, or [N,K] when tb.
 * CPU layout: a unit is a whole panel, written by one item (B's rows read whole when
 * tb); GPU: one element per item. */
static inline void nncl_pack_b(int tb, int K, int N, __global const nn_real *B, __global nn_real *bp) {
    long panels = (N + NNCL_PACK_NR - 1) / NNCL_PACK_NR;
#if NNCL_CPU
    NNCL_FOR_UNITS_(u, panels) {
        int j0 = (int)u * NNCL_PACK_NR, cols = min(NNCL_PACK_NR, N - j0);
        __global nn_real *d = bp + (long)u * K * NNCL_PACK_NR;
        if (tb)
            for (int j = 0; j < NNCL_PACK_NR; j++) {
                __global const nn_real *src = B + (long)(j0 + min(j, cols - 1)) * K;
                for (int k = 0; k < K; k++) d[(long)k * NNCL_PACK_NR + j] = j < cols ? src[k] : (nn_real)0;
            }
        else
            for (int k = 0; k < K; k++)
                for (int j = 0; j < NNCL_PACK_NR; j++)
                    d[(long)k * NNCL_PACK_NR + j] = j < cols ? B[(long)k * N + j0 + j] : (nn_real)0;
    }
#else
    NNCL_FOR_ITEMS_(e, panels * K * NNCL_PACK_NR) {
        long t = e / NNCL_PACK_NR;
        int k = (int)(t % K), j = (int)(t / K) * NNCL_PACK_NR + (int)(e % NNCL_PACK_NR);
        bp[e] = j < N ? (tb ? B[(long)j * K + k] : B[(long)k * N + j]) : (nn_real)0;
    }
#endif
}

/* C = A·op(B) + bias, then the activation, op(B) packed by nncl_pack_b (bias 0 and
 * NN_EPI_NONE: the plain product), as nnk_gemm_packed. */
#define NNCL_GEMM_PACKED_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_gemm_packed(int M, int N, int K, __global const nn_real *A, __global const nn_real *bp,
                                    __global const nn_real *bias, int act, __global nn_real *C,
                                    __local nn_real *scratch) {
    nncl_conv_ epi = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, bias, act, 0, NN_EPI_NONE, 1};
    nncl_contract_(NNCL_MODE_GEMM_, 0, 0, M, N, K, A, bp, C, 0, epi, scratch);
}

/* C = A·op(B) times act'(y), op(B) packed, as nnk_gemm_packed_act_grad. */
#define NNCL_GEMM_PACKED_ACT_GRAD_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_gemm_packed_act_grad(int M, int N, int K, __global const nn_real *A,
                                             __global const nn_real *bp, __global const nn_real *y, int act,
                                             __global nn_real *C, __local nn_real *scratch) {
    nncl_conv_ epi = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NN_EPI_NONE, y, act, 1};
    nncl_contract_(NNCL_MODE_GEMM_, 0, 0, M, N, K, A, bp, C, 0, epi, scratch);
}

/* ---------------------------------------------------------------- bias */

/* y[r,c] += b[c]; one item per element. */
static inline void nncl_bias_add(int rows, int cols, __global nn_real *y, __global const nn_real *b) {
#if NNCL_CPU
    /* Units of whole rows, about NNCL_CPU_CHUNK elements: no division per element. */
    int per = max(1, NNCL_CPU_CHUNK / max(cols, 1));
    NNCL_FOR_UNITS_(u, (rows + per - 1) / per)
        for (int r = (int)u * per, re = min(r + per, rows); r < re; r++) {
            __global nn_real *yr = y + (long)r * cols;
            for (int c = 0; c < cols; c++) yr[c] += b[c];
        }
#else
    NNCL_FOR_ITEMS_(i, (long)rows * cols) y[i] += b[i % cols];
#endif
}

/* db[c] = Σ_r dy[r,c].  GPU: one work-group per column: item l sums rows l, l+WG, ...
 * in order, then the group's fixed tree.  CPU: one item per 8 columns, rows in order. */
#define NNCL_BIAS_GRAD_LOCAL NNCL_WG
static inline void nncl_bias_grad(int rows, int cols, __global const nn_real *dy,
                                  __global nn_real *db, __local nn_real *scratch) {
#if NNCL_CPU
    /* One item per 8 columns (scalar at the edge), rows in order: no barriers. */
    NNCL_FOR_UNITS_(u, (cols + 7) / 8) {
        int c0 = (int)u * 8;
        if (c0 + 8 <= cols) {
            nn_real8 s = (nn_real8)0;
            for (int r = 0; r < rows; r++) s += NNCL_LD8_(dy + (long)r * cols + c0);
            vstore8(s, 0, db + c0);
        } else {
            for (int c = c0; c < cols; c++) {
                nn_real s = 0;
                for (int r = 0; r < rows; r++) s += dy[(long)r * cols + c];
                db[c] = s;
            }
        }
    }
#else
    int l = (int)get_local_id(0);
    NNCL_FOR_GROUPS_(c, cols) {
        nn_real s = 0;
        for (int r = l; r < rows; r += NNCL_WG) s += dy[(long)r * cols + c];
        s = nncl_group_sum_(s, scratch);
        if (l == 0) db[c] = s;
    }
#endif
}

/* Local scratch of the fused bias gradients: a contraction's tiles, then (GPU layout)
 * nncl_bias_grad's group sums. */
#define NNCL_BIAS_FUSED_LOCAL_ (NNCL_GEMM_LOCAL > NNCL_WG ? NNCL_GEMM_LOCAL : NNCL_WG)

/* dw[M,N] = Aᵀ·dy for A [K,M], dy [K,N], and db = dy's column sums, as
 * nnk_gemm_tn_bias_grad (fuse_bias_grad.c): the CPU layout sums dy's columns in the
 * units of dw's first rows, the GPU layout runs nncl_bias_grad after the product. */
#define NNCL_GEMM_TN_BIAS_GRAD_LOCAL NNCL_BIAS_FUSED_LOCAL_
static inline void nncl_gemm_tn_bias_grad(int M, int N, int K, __global const nn_real *A,
                                          __global const nn_real *dy, __global nn_real *dw,
                                          __global nn_real *db, __local nn_real *scratch) {
#if NNCL_CPU
    nncl_conv_ p = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NN_EPI_NONE, 0, NN_EPI_NONE, 0, db};
    nncl_cpu_gemm_(NNCL_MODE_GEMM_, 1, 0, M, N, K, A, dy, dw, 0, p);
#else
    nncl_gemm(1, 0, M, N, K, A, dy, dw, 0, scratch);
    barrier(CLK_LOCAL_MEM_FENCE);
    nncl_bias_grad(K, N, dy, db, scratch);
#endif
}

/* ---------------------------------------------------------------- conv2d */

/* Implicit GEMMs on the tiled engine above (same tiles, work split and scratch); the
 * im2col matrix is never stored, tiles gather straight from x/dy.  Pads are resolved by
 * the caller (TF 'SAME': top/left = total/2).
 *   forward      y[n*OH*OW, F]   = im2col(x)[.., KH*KW*C] · w[KH*KW*C, F]
 *   data grad    dx[n*H*W, C]    = D[n*H*W, KH*KW*F] · w'[KH*KW*F, C], where D gathers
 *                the dy cell whose window puts (kh, kw) on this input cell (0 if none):
 *                every dx is one dot product, no scatter, so no races.
 *   filter grad  dw[KH*KW*C, F]  = im2col(x)ᵀ · dy, each dw element summed over the
 *                whole batch by one item (or, for few tiles, by one work-group). */
#define NNCL_CONV2D_FWD_LOCAL NNCL_GEMM_LOCAL
#define NNCL_CONV2D_BWD_DATA_LOCAL NNCL_GEMM_LOCAL
#define NNCL_CONV2D_BWD_FILTER_LOCAL NNCL_GEMM_LOCAL

/* y = conv(x, w) + bias, then the activation, as nnk_conv2d_fwd_bias_act. */
#define NNCL_CONV2D_FWD_BIAS_ACT_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_conv2d_fwd_bias_act(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                            int SW, int PT, int PL, int OH, int OW,
                                            __global const nn_real *x, __global const nn_real *w,
                                            __global const nn_real *bias, int act,
                                            __global nn_real *y, __local nn_real *scratch) {
    nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, bias, act};
#if NNCL_CPU
    nncl_cpu_gemm_(NNCL_MODE_CONV_FWD_, 0, 0, n * OH * OW, F, KH * KW * C, x, w, y, 0, p);
#else
    nncl_tiled_gemm_(NNCL_MODE_CONV_FWD_, 0, 0, n * OH * OW, F, KH * KW * C, x, w, y, 0, p, scratch);
#endif
}

static inline void nncl_conv2d_fwd(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                   int SW, int PT, int PL, int OH, int OW,
                                   __global const nn_real *x, __global const nn_real *w,
                                   __global nn_real *y, __local nn_real *scratch) {
    nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, 0, NN_EPI_NONE};
#if NNCL_CPU
    nncl_cpu_gemm_(NNCL_MODE_CONV_FWD_, 0, 0, n * OH * OW, F, KH * KW * C, x, w, y, 0, p);
#else
    nncl_tiled_gemm_(NNCL_MODE_CONV_FWD_, 0, 0, n * OH * OW, F, KH * KW * C, x, w, y, 0, p, scratch);
#endif
}

/* dx overwritten; cells no window covers get 0.  xact (not 0): the output of activation
 * act that x is; dx goes through its derivative too, as nnk_conv2d_bwd_data_act. */
#define NNCL_CONV2D_BWD_DATA_ACT_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_conv2d_bwd_data_act(int n, int H, int W, int C, int KH, int KW, int F,
                                            int SH, int SW, int PT, int PL, int OH, int OW,
                                            __global const nn_real *dy, __global const nn_real *w,
                                            __global const nn_real *xact, int act,
                                            __global nn_real *dx, __local nn_real *scratch) {
    nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, 0, NN_EPI_NONE, xact, act};
#if NNCL_CPU
    nncl_cpu_gemm_(NNCL_MODE_CONV_BWD_DATA_, 0, 0, n * H * W, C, KH * KW * F, dy, w, dx, 0, p);
#else
    nncl_tiled_gemm_(NNCL_MODE_CONV_BWD_DATA_, 0, 0, n * H * W, C, KH * KW * F, dy, w, dx, 0, p, scratch);
#endif
}

static inline void nncl_conv2d_bwd_data(int n, int H, int W, int C, int KH, int KW, int F,
                                        int SH, int SW, int PT, int PL, int OH, int OW,
                                        __global const nn_real *dy, __global const nn_real *w,
                                        __global nn_real *dx, __local nn_real *scratch) {
    nncl_conv2d_bwd_data_act(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, dy, w, 0, NN_EPI_NONE, dx, scratch);
}

/* A stride-1 convolution's data gradient as a convolution of dy with the kernel turned
 * half a turn and its channels swapped: op(B)[(kh*KW + kw)*F + f, c] =
 * w[KH-1-kh, KW-1-kw, c, f], in panels as nncl_pack_b makes them. */
static inline void nncl_pack_conv_flip(int KH, int KW, int C, int F, __global const nn_real *w,
                                       __global nn_real *bp) {
    int K = KH * KW * F;
    long panels = (C + NNCL_PACK_NR - 1) / NNCL_PACK_NR;
#if NNCL_CPU
    /* A unit is one panel under one window cell, by one item: w's F runs read whole. */
    NNCL_FOR_UNITS_(u, panels * KH * KW) {
        int c0 = (int)(u % panels) * NNCL_PACK_NR, cell = (int)(u / panels), cols = min(NNCL_PACK_NR, C - c0);
        int kw = cell % KW, kh = cell / KW;
        __global nn_real *d = bp + ((u % panels) * K + (long)cell * F) * NNCL_PACK_NR;
        __global const nn_real *blk = w + ((long)(KH - 1 - kh) * KW + (KW - 1 - kw)) * C * F;
        for (int j = 0; j < NNCL_PACK_NR; j++) {
            __global const nn_real *src = blk + (long)(c0 + min(j, cols - 1)) * F;
            for (int f = 0; f < F; f++) d[(long)f * NNCL_PACK_NR + j] = j < cols ? src[f] : (nn_real)0;
        }
    }
#else
    NNCL_FOR_ITEMS_(e, panels * K * NNCL_PACK_NR) {
        long t = e / NNCL_PACK_NR;
        int k = (int)(t % K), c = (int)(t / K) * NNCL_PACK_NR + (int)(e % NNCL_PACK_NR);
        int f = k % F, cell = k / F, kw = cell % KW, kh = cell / KW;
        bp[e] = c < C ? w[(((long)(KH - 1 - kh) * KW + (KW - 1 - kw)) * C + c) * F + f] : (nn_real)0;
    }
#endif
}

/* y = conv(x, w) + bias, then the activation, w packed by nncl_pack_b (as [KH*KW*C, F]):
 * the same outer blocks as the NHWC form, reading B' rows contiguously. */
#define NNCL_CONV2D_FWD_PACKED_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_conv2d_fwd_packed(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                          int SW, int PT, int PL, int OH, int OW,
                                          __global const nn_real *x, __global const nn_real *bp,
                                          __global const nn_real *bias, int act,
                                          __global nn_real *y, __local nn_real *scratch) {
    nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, bias, act, 0, NN_EPI_NONE, 1};
    nncl_contract_(NNCL_MODE_CONV_FWD_, 0, 0, n * OH * OW, F, KH * KW * C, x, bp, y, 0, p, scratch);
}

#if NNCL_CPU
/* The CPU layout's data gradient with w packed by nncl_pack_conv_flip, any stride and
 * padding: a scatter from register tiles, as nnk_conv2d_bwd_data_packed_act.  A tile is
 * up to six dy pixels of one row (one window column kw: six dx cells SW apart) × the
 * panel's 16 channels; it sums the window rows kh that reach its dx row and the F
 * filters, then is added to those dx cells.  No product over padding, no flipped
 * convolution of dy's zero border, no col2im matrix. */
#ifndef NNCL_DX_BLOCK
#define NNCL_DX_BLOCK 16384   /* bytes of one panel's dx rows that a unit's KW passes revisit */
#endif

/* Pixel r of a tile reads dy at a + r*F (the last real one past cnt: a full tile's
 * registers, only cnt stored) for nkh window rows, each sstep further in dy and bstep
 * further in the panel; its dx cell is d + r*dstep, whose first nr channels exist. */
static inline void nncl_dx_tile_(int tm, int cnt, int nkh, int F, __global const nn_real *a, long sstep,
                                 __global const nn_real *b, long bstep, __global nn_real *d, long dstep, int nr) {
    nn_real8 acc0[6], acc1[6];
#pragma unroll
    for (int r = 0; r < 6; r++) { acc0[r] = (nn_real8)0; acc1[r] = (nn_real8)0; }
    for (int t = 0; t < nkh; t++, a += sstep, b += bstep) {
        __global const nn_real *ar[6];
#pragma unroll
        for (int r = 0; r < 6; r++) ar[r] = a + min(r, cnt - 1) * F;
        /* Filters two at a time: fewer loop branches (about 10% faster on fashion_cnn's
         * layer, benchmarks/cl_dx_ab.sh); `#pragma unroll 2` warns where F is 1. */
#define NNCL_DX_STEP_(f, bk)                                                             \
        {                                                                                \
            nn_real8 b0 = NNCL_LD8_(bk), b1 = NNCL_LD8_((bk) + 8);                       \
            _Pragma("unroll") for (int r = 0; r < 6; r++) if (r < tm) {                 \
                nn_real s = ar[r][f];                                                    \
                acc0[r] += s * b0;                                                       \
                acc1[r] += s * b1;                                                       \
            }                                                                            \
        }
        __global const nn_real *bk = b;
        int f = 0;
        for (; f + 1 < F; f += 2, bk += 2 * NNCL_PACK_NR) {
            NNCL_DX_STEP_(f, bk)
            NNCL_DX_STEP_(f + 1, bk + NNCL_PACK_NR)
        }
        if (f < F) NNCL_DX_STEP_(f, bk)
#undef NNCL_DX_STEP_
    }
#pragma unroll
    for (int r = 0; r < 6; r++) {
        __global nn_real *o = d + r * dstep;
        if (r >= cnt) ;
        else if (nr == NNCL_PACK_NR) {
            vstore8(NNCL_LD8_(o) + acc0[r], 0, o);
            vstore8(NNCL_LD8_(o + 8) + acc1[r], 0, o + 8);
        } else {
            nn_real t[16];
            vstore8(acc0[r], 0, t);
            vstore8(acc1[r], 0, t + 8);
            for (int j = 0; j < nr; j++) o[j] += t[j];
        }
    }
}

/* A unit is one sample's dx for one panel of channels, in blocks of rows (zeroed, KW
 * passes, then the activation's gradient while the block is in L1).  Each dx element
 * sums pass by pass (kw), each pass's terms in (kh, f) order: fixed by the shapes. */
static inline void nncl_cpu_conv_dx_scatter_(int n, int H, int W, int C, int KH, int KW, int F, int SH, int SW,
                                             int PT, int PL, int OH, int OW, __global const nn_real *dy,
                                             __global const nn_real *bp, __global const nn_real *xact, int act,
                                             __global nn_real *dx) {
    int panels = (C + NNCL_PACK_NR - 1) / NNCL_PACK_NR, K = KH * KW * F;
    int rows = max(1, NNCL_DX_BLOCK / (W * NNCL_PACK_NR * (int)sizeof(nn_real)));
    /* From window row kh to kh + SH: dy one row up, the flipped weights SH rows back. */
    long sstep = -(long)OW * F, bstep = -(long)SH * KW * F * NNCL_PACK_NR;
    NNCL_FOR_UNITS_(u, (long)n * panels) {
        int pn = (int)(u % panels), b = (int)(u / panels);
        int c0 = pn * NNCL_PACK_NR, nr = min(NNCL_PACK_NR, C - c0);
        __global nn_real *dxb = dx + (long)b * H * W * C + c0;
        __global const nn_real *dyb = dy + (long)b * OH * OW * F;
        __global const nn_real *bpp = bp + (long)pn * K * NNCL_PACK_NR;
        for (int ih0 = 0; ih0 < H; ih0 += rows) {
            int ih1 = min(H, ih0 + rows);
            for (int q = ih0 * W; q < ih1 * W; q++) {
                __global nn_real *o = dxb + (long)q * C;
                if (nr == NNCL_PACK_NR) {
                    vstore8((nn_real8)0, 0, o);
                    vstore8((nn_real8)0, 0, o + 8);
                } else
                    for (int j = 0; j < nr; j++) o[j] = 0;
            }
            for (int kw = 0; kw < KW; kw++) {
                /* dy columns [lo, hi) whose cell kw lands in dx: iw = ow*SW + kw - PL. */
                int off = kw - PL;
                int lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
                int hi = W - off <= 0 ? 0 : min(OW, (W - off - 1) / SW + 1);
                if (lo >= hi) continue;
                /* Tiles of 6 or 5, whichever leaves fewer over in a row. */
                int len = hi - lo, tm = (5 - len % 5) % 5 < (6 - len % 6) % 6 ? 5 : 6;
                for (int ih = ih0; ih < ih1; ih++) {
                    /* The window rows reaching ih: kh = top - oh*SH for dy rows oh in [0, OH). */
                    int top = ih + PT, kh0 = max(0, top - (OH - 1) * SH);
                    kh0 += ((top - kh0) % SH + SH) % SH;
                    int khe = min(KH - 1, top);
                    if (kh0 > khe) continue;
                    int nkh = (khe - kh0) / SH + 1;
                    __global const nn_real *srow = dyb + (long)((top - kh0) / SH) * OW * F;
                    __global const nn_real *bk = bpp + ((long)(KH - 1 - kh0) * KW + (KW - 1 - kw)) * F * NNCL_PACK_NR;
                    __global nn_real *drow = dxb + (long)ih * W * C;
                    for (int ow = lo; ow < hi; ow += tm) {
                        int cnt = min(tm, hi - ow);
                        __global const nn_real *a = srow + (long)ow * F;
                        __global nn_real *d = drow + (long)(ow * SW + off) * C;
                        if (tm == 6) nncl_dx_tile_(6, cnt, nkh, F, a, sstep, bk, bstep, d, (long)SW * C, nr);
                        else nncl_dx_tile_(5, cnt, nkh, F, a, sstep, bk, bstep, d, (long)SW * C, nr);
                    }
                }
            }
            if (xact) {
                __global const nn_real *yb = xact + (long)b * H * W * C + c0;
                for (int q = ih0 * W; q < ih1 * W; q++) {
                    __global nn_real *o = dxb + (long)q * C;
                    __global const nn_real *y = yb + (long)q * C;
                    if (nr == NNCL_PACK_NR) {
                        vstore8(nncl_act_grad8_(act, NNCL_LD8_(y), NNCL_LD8_(o)), 0, o);
                        vstore8(nncl_act_grad8_(act, NNCL_LD8_(y + 8), NNCL_LD8_(o + 8)), 0, o + 8);
                    } else
                        for (int j = 0; j < nr; j++) o[j] = nncl_act_grad_(act, y[j], o[j]);
                }
            }
        }
    }
}
#endif

/* dx with w packed by nncl_pack_conv_flip, then, when xact is not 0, times act'(xact).
 * CPU layout: the scatter above.  GPU layout: stride 1, the forward convolution of dy
 * (OH x OW x F) with that kernel, padded so that dx is H x W; other strides, the NHWC
 * form's tiles reading the panels.  Both layouts sum in another order than the NHWC form
 * (float reassociation only). */
#define NNCL_CONV2D_BWD_DATA_PACKED_ACT_LOCAL NNCL_GEMM_LOCAL
static inline void nncl_conv2d_bwd_data_packed_act(int n, int H, int W, int C, int KH, int KW, int F,
                                                   int SH, int SW, int PT, int PL, int OH, int OW,
                                                   __global const nn_real *dy, __global const nn_real *bp,
                                                   __global const nn_real *xact, int act,
                                                   __global nn_real *dx, __local nn_real *scratch) {
#if NNCL_CPU
    nncl_cpu_conv_dx_scatter_(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, dy, bp, xact, act, dx);
#else
    if (SH == 1 && SW == 1) {
        nncl_conv_ p = {n, OH, OW, F, KH, KW, C, 1, 1, KH - 1 - PT, KW - 1 - PL, H, W, 0, NN_EPI_NONE, xact, act, 1};
        nncl_tiled_gemm_(NNCL_MODE_CONV_FWD_, 0, 0, n * H * W, C, KH * KW * F, dy, bp, dx, 0, p, scratch);
    } else {   /* the NHWC form's gather, reading the panels */
        nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, 0, NN_EPI_NONE, xact, act, 1};
        nncl_tiled_gemm_(NNCL_MODE_CONV_BWD_DATA_, 0, 0, n * H * W, C, KH * KW * F, dy, bp, dx, 0, p, scratch);
    }
#endif
}

/* Below this many output tiles the tiled engine would leave most work-groups idle (a
 * first layer: dw is 3×3×1×32, one tile, summed over n·OH·OW products), so each dw
 * element is given a whole work-group instead, which splits the batch sum over its
 * items and adds their partials in the fixed tree.  The choice depends on shapes only. */
#define NNCL_CONV_FILTER_FEW_TILES 4

/* dw overwritten with the batch sum.  Tiled implicit GEMM, or (few outputs) one
 * work-group per dw element. */
static inline void nncl_conv2d_bwd_filter(int n, int H, int W, int C, int KH, int KW, int F,
                                          int SH, int SW, int PT, int PL, int OH, int OW,
                                          __global const nn_real *x, __global const nn_real *dy,
                                          __global nn_real *dw, __local nn_real *scratch) {
    nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, 0, NN_EPI_NONE};
    int M = KH * KW * C, K = n * OH * OW;
#if NNCL_CPU
    nncl_cpu_gemm_(NNCL_MODE_CONV_BWD_FILTER_, 0, 0, M, F, K, x, dy, dw, 0, p);
    return;
#endif
    int tiles = ((M + NNCL_GEMM_TM - 1) / NNCL_GEMM_TM) * ((F + NNCL_GEMM_TN - 1) / NNCL_GEMM_TN);
    if (tiles >= NNCL_CONV_FILTER_FEW_TILES) {
        nncl_tiled_gemm_(NNCL_MODE_CONV_BWD_FILTER_, 0, 0, M, F, K, x, dy, dw, 0, p, scratch);
        return;
    }
    int l = (int)get_local_id(0);
    NNCL_FOR_GROUPS_(o, M * F) {
        int i = o / F, f = o % F;
        nn_real s = 0;
        for (int k = l; k < K; k += NNCL_WG)
            s += nncl_a_at_(NNCL_MODE_CONV_BWD_FILTER_, 0, M, K, x, p, i, k) * dy[(long)k * F + f];
        s = nncl_group_sum_(s, scratch);
        if (l == 0) dw[o] = s;
    }
}

/* dw as nncl_conv2d_bwd_filter and db = dy's column sums, as nnk_conv2d_bwd_filter_bias
 * (fuse_bias_grad.c): the CPU layout sums dy's columns slice by slice in the units of
 * dw's first rows, the GPU layout runs nncl_bias_grad after the filter gradient. */
#define NNCL_CONV2D_BWD_FILTER_BIAS_LOCAL NNCL_BIAS_FUSED_LOCAL_
static inline void nncl_conv2d_bwd_filter_bias(int n, int H, int W, int C, int KH, int KW, int F,
                                               int SH, int SW, int PT, int PL, int OH, int OW,
                                               __global const nn_real *x, __global const nn_real *dy,
                                               __global nn_real *dw, __global nn_real *db,
                                               __local nn_real *scratch) {
#if NNCL_CPU
    nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, 0, NN_EPI_NONE, 0, NN_EPI_NONE, 0, db};
    if (n > 0) nncl_cpu_filter_(KH * KW * C, F, n * OH * OW, x, dy, dw, p);
    else   /* an empty batch: zero sums */
        NNCL_FOR_ITEMS_(i, (long)KH * KW * C * F + F) {
            if (i < F) db[i] = 0;
            else dw[i - F] = 0;
        }
#else
    nncl_conv2d_bwd_filter(n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, x, dy, dw, scratch);
    barrier(CLK_LOCAL_MEM_FENCE);
    nncl_bias_grad(n * OH * OW, F, dy, db, scratch);
#endif
}

/* ---------------------------------------------------------------- pooling */

/* Window of output cell (oh, ow) clipped to the input, as nnk_pool_window_. */
static inline void nncl_pool_window_(int oh, int ow, int H, int W, int PH, int PW, int SH, int SW,
                                     int PT, int PL, int *h0, int *h1, int *w0, int *w1) {
    int hs = oh * SH - PT, ws = ow * SW - PL;
    *h0 = max(hs, 0); *h1 = min(hs + PH, H);
    *w0 = max(ws, 0); *w1 = min(ws + PW, W);
}

/* Output cells whose window covers input index i along one axis: [*lo, *hi]. */
static inline void nncl_pool_cover_(int i, int P, int S, int pad, int O, int *lo, int *hi) {
    int first = i + pad - P + 1;              /* o*S >= first */
    *lo = first <= 0 ? 0 : (first + S - 1) / S;
    *hi = min(O - 1, (i + pad) / S);
}

/* Whether windows tile the input without overlap or padding (Keras's default pooling),
 * none reaching past it, with channels in whole vectors of 8: the CPU layout's fast
 * paths (literal shapes make this a constant). */
static inline int nncl_pool_tiles_(int H, int W, int C, int PH, int PW, int SH, int SW, int PT, int PL, int OH,
                                   int OW) {
    return SH == PH && SW == PW && PT == 0 && PL == 0 && OH * SH <= H && OW * SW <= W && C % 8 == 0;
}

/* One item per output element (b, oh, ow, c). */
static inline void nncl_maxpool2d_fwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                      int PT, int PL, int OH, int OW, __global const nn_real *x,
                                      __global nn_real *y) {
#if NNCL_CPU
    if (nncl_pool_tiles_(H, W, C, PH, PW, SH, SW, PT, PL, OH, OW)) {
        /* Windows that tile the input: one item per output cell (b, oh, ow), its
         * channels 8 at a time, the window's cells in registers (literal shapes unroll
         * the loops). */
        NNCL_FOR_UNITS_(u, (long)n * OH * OW) {
            int ow = (int)(u % OW), oh = (int)(u / OW % OH), b = (int)(u / OW / OH);
            __global const nn_real *x0 = x + (((long)b * H + oh * PH) * W + ow * PW) * C;
            __global nn_real *yo = y + u * C;
#pragma unroll
            for (int c = 0; c < C; c += 8) {
                nn_real8 m = NNCL_LD8_(x0 + c);
#pragma unroll
                for (int k = 1; k < PH * PW; k++) {
                    nn_real8 v = NNCL_LD8_(x0 + (k / PW * W + k % PW) * C + c);
                    m = select(m, v, v > m);
                }
                vstore8(m, 0, yo + c);
            }
        }
        return;
    }
    /* One item per output row (b, oh): no index decode per element; c innermost. */
    NNCL_FOR_UNITS_(u, (long)n * OH) {
        int oh = (int)(u % OH), b = (int)(u / OH);
        __global const nn_real *xb = x + (long)b * H * W * C;
        __global nn_real *yr = y + u * OW * C;
        for (int ow = 0; ow < OW; ow++) {
            int h0, h1, w0, w1;
            nncl_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
            __global nn_real *yo = yr + (long)ow * C;
            if (h0 >= h1 || w0 >= w1) {
                for (int c = 0; c < C; c++) yo[c] = 0;
                continue;
            }
            __global const nn_real *x0 = xb + ((long)h0 * W + w0) * C;
            for (int c = 0; c < C; c++) yo[c] = x0[c];
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++) {
                    __global const nn_real *xi = xb + ((long)ih * W + iw) * C;
                    for (int c = 0; c < C; c++) {
                        nn_real s = xi[c], m = yo[c];
                        yo[c] = s > m ? s : m;
                    }
                }
        }
    }
#else
    NNCL_FOR_ITEMS_(o, (long)n * OH * OW * C) {
        int c = (int)(o % C);
        long t = o / C;
        int ow = (int)(t % OW), oh = (int)(t / OW % OH), b = (int)(t / OW / OH);
        int h0, h1, w0, w1;
        nncl_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) { y[o] = 0; continue; }
        __global const nn_real *xb = x + (long)b * H * W * C + c;
        nn_real m = xb[((long)h0 * W + w0) * C];
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) {
                nn_real s = xb[((long)ih * W + iw) * C];
                m = s > m ? s : m;
            }
        y[o] = m;
    }
#endif
}

/* Gather form of the scatter in C: one item per input element (b, ih, iw, c) adds, in
 * (oh, ow) order, dy of each window covering it whose first maximum (recomputed from x,
 * window order) is this cell.  Same additions in the same order as C's scatter. */
static inline void nncl_maxpool2d_bwd_act(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                          int PT, int PL, int OH, int OW, __global const nn_real *x,
                                          __global const nn_real *dy, int act, __global nn_real *dx) {
#if NNCL_CPU
    if (nncl_pool_tiles_(H, W, C, PH, PW, SH, SW, PT, PL, OH, OW)) {
        /* Windows that tile the input: one item per window (b, oh, ow) finds its first
         * maximum and writes all its cells, 0 + dy or 0 + 0 (the additions the general
         * form makes), through the activation's derivative at the maximum (a cell that is
         * not the maximum gets act'(x)·0 = +0 either way); cells no window covers get 0
         * through it: the columns right of a row of windows from its last window, the
         * rows below the last row of windows from the last window of all. */
        NNCL_FOR_UNITS_(u, (long)n * OH * OW) {
            int ow = (int)(u % OW), oh = (int)(u / OW % OH), b = (int)(u / OW / OH);
            long w0 = (((long)b * H + oh * PH) * W + ow * PW) * C;
            __global const nn_real *g = dy + u * C;
#pragma unroll
            for (int c = 0; c < C; c += 8) {
                nn_real8 best = NNCL_LD8_(x + w0 + c);
                nncl_mask8 at = (nncl_mask8)0;
#pragma unroll
                for (int k = 1; k < PH * PW; k++) {
                    nn_real8 v = NNCL_LD8_(x + w0 + (k / PW * W + k % PW) * C + c);
                    nncl_mask8 up = v > best;
                    best = select(best, v, up);
                    at = select(at, (nncl_mask8)k, up);
                }
                nn_real8 gv = nncl_act_grad8_(act, best, (nn_real8)0 + NNCL_LD8_(g + c));
#pragma unroll
                for (int k = 0; k < PH * PW; k++)
                    vstore8(select((nn_real8)0, gv, at == (nncl_mask8)k), 0, dx + w0 + (k / PW * W + k % PW) * C + c);
            }
            if (ow == OW - 1)   /* the columns right of this row of windows */
                for (int r = oh * PH; r < oh * PH + PH; r++)
                    for (long e = (((long)b * H + r) * W + OW * PW) * C; e < (((long)b * H + r) + 1) * W * C; e++)
                        dx[e] = nncl_act_grad_(act, x[e], 0);
            if (ow == OW - 1 && oh == OH - 1)   /* the rows below the last row of windows */
                for (long e = ((long)b * H + OH * PH) * W * C; e < ((long)b + 1) * H * W * C; e++)
                    dx[e] = nncl_act_grad_(act, x[e], 0);
        }
        return;
    }
    /* One item per input row (b, ih): the row is zeroed, then each window covering it,
     * in (oh, ow) order, adds its dy to the cell of this row that is its first maximum
     * and +0 to the window's other cells here (+0 changes no sum that starts at +0):
     * each cell gets the same additions in the same order as above.  Channels go 8 at
     * a time in vectors (argmax by selects), the rest one by one. */
    NNCL_FOR_UNITS_(u, (long)n * H) {
        int ih = (int)(u % H), b = (int)(u / H);
        __global const nn_real *xb = x + (long)b * H * W * C;
        __global nn_real *dr = dx + u * W * C;
        for (long e = 0; e < (long)W * C; e++) dr[e] = 0;
        int ohl, ohh;
        nncl_pool_cover_(ih, PH, SH, PT, OH, &ohl, &ohh);
        for (int oh = ohl; oh <= ohh; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0, h1, w0, w1, hs = oh * SH - PT, ws = ow * SW - PL;
                nncl_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
                if (h0 >= h1 || w0 >= w1) continue;
                __global const nn_real *g = dy + (((long)b * OH + oh) * OW + ow) * C;
                __global const nn_real *x0 = xb + ((long)h0 * W + w0) * C;
                int first = (h0 - hs) * PW + (w0 - ws), mine = (ih - hs) * PW;
                int c = 0;
                for (; c + 8 <= C; c += 8) {
                    nn_real8 best = NNCL_LD8_(x0 + c);
                    nncl_mask8 at = (nncl_mask8)first;
                    for (int jh = h0; jh < h1; jh++)
                        for (int jw = w0; jw < w1; jw++) {
                            nn_real8 v = NNCL_LD8_(xb + ((long)jh * W + jw) * C + c);
                            nncl_mask8 up = v > best;
                            best = select(best, v, up);
                            at = select(at, (nncl_mask8)((jh - hs) * PW + (jw - ws)), up);
                        }
                    nn_real8 gc = NNCL_LD8_(g + c);
                    for (int jw = w0; jw < w1; jw++) {
                        __global nn_real *o = dr + (long)jw * C + c;
                        vstore8(NNCL_LD8_(o) + select((nn_real8)0, gc, at == (nncl_mask8)(mine + jw - ws)), 0, o);
                    }
                }
                for (; c < C; c++) {
                    nn_real best = x0[c];
                    int at = first;
                    for (int jh = h0; jh < h1; jh++)
                        for (int jw = w0; jw < w1; jw++) {
                            nn_real v = xb[((long)jh * W + jw) * C + c];
                            if (v > best) { best = v; at = (jh - hs) * PW + (jw - ws); }
                        }
                    if (at >= mine && at < mine + PW) dr[(long)(ws + at - mine) * C + c] += g[c];
                }
            }
        if (act != NN_EPI_NONE) {   /* fuse_grad.c: through the activation x is the output of */
            __global const nn_real *xr = x + u * W * C;
            for (long e = 0; e < (long)W * C; e++) dr[e] = nncl_act_grad_(act, xr[e], dr[e]);
        }
    }
#else
    NNCL_FOR_ITEMS_(o, (long)n * H * W * C) {
        int c = (int)(o % C);
        long t = o / C;
        int iw = (int)(t % W), ih = (int)(t / W % H), b = (int)(t / W / H);
        int ohl, ohh, owl, owh;
        nncl_pool_cover_(ih, PH, SH, PT, OH, &ohl, &ohh);
        nncl_pool_cover_(iw, PW, SW, PL, OW, &owl, &owh);
        __global const nn_real *xb = x + (long)b * H * W * C + c;
        int me = ih * W + iw;
        nn_real acc = 0;
        for (int oh = ohl; oh <= ohh; oh++)
            for (int ow = owl; ow <= owh; ow++) {
                int h0, h1, w0, w1;
                nncl_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
                nn_real best = xb[((long)h0 * W + w0) * C];
                int at = h0 * W + w0;
                for (int jh = h0; jh < h1; jh++)
                    for (int jw = w0; jw < w1; jw++) {
                        nn_real s = xb[((long)jh * W + jw) * C];
                        if (s > best) { best = s; at = jh * W + jw; }
                    }
                if (at == me) acc += dy[(((long)b * OH + oh) * OW + ow) * C + c];
            }
        dx[o] = nncl_act_grad_(act, x[o], acc);
    }
#endif
}

static inline void nncl_maxpool2d_bwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                      int PT, int PL, int OH, int OW, __global const nn_real *x,
                                      __global const nn_real *y, __global const nn_real *dy,
                                      __global nn_real *dx) {
    nncl_maxpool2d_bwd_act(n, H, W, C, PH, PW, SH, SW, PT, PL, OH, OW, x, dy, NN_EPI_NONE, dx);
}

/* ---------------------------------------------------------------- conv + max-pool
 * nnk_conv2d_pool_fwd / nnk_conv2d_pool_bwd_filter (compiler/ir/fuse_pool.c): a direct
 * convolution pooled by windows that tile its output (PH×PW, stride the same, no
 * padding; F a multiple of 16).  idx keeps, as C does, a byte per pooled cell and filter
 * in its first quarter: the window's first maximum in window order (0 .. PH*PW-1), or
 * PH*PW where relu left the window 0 (no gradient goes back through it, and the filter
 * gradient under relu needs no pooled output to know it).  Backward, the filter and bias
 * gradients from the pooled gradient, the convolution's gradient rebuilt cell by cell
 * (the pooled gradient through the activation at the argmax, 0 elsewhere). */

#define NNCL_POOL_IDX_(idx) ((__global uchar *)(idx))
#define NNCL_POOL_IDX_RO_(idx) ((__global const uchar *)(idx))
/* Eight argmax bytes at ib (4-byte aligned) as a mask-type vector: one 8-byte load. */
#ifdef NN_REAL_DOUBLE
#define NNCL_IDX_LD8_(ib) convert_long8(as_uchar8(vload2(0, (__global const uint *)(ib))))
#else
#define NNCL_IDX_LD8_(ib) convert_int8(as_uchar8(vload2(0, (__global const uint *)(ib))))
#endif

#if NNCL_CPU   /* the CPU layout's vector helpers (nncl_epi8_ is CPU-only) */
/* Cell k's value v (through the epilogue) into a window's running first maximum best,
 * its cell at (a float: selects of float constants, one conversion at the end). */
static inline void nncl_pool_take8_(nn_real8 *best, nn_real8 *at, nn_real8 v, int k) {
    if (k == 0) { *best = v; *at = (nn_real8)0; return; }
    nncl_mask8 up = v > *best;
    *best = select(*best, v, up);
    *at = select(*at, (nn_real8)k, up);
}

/* A window's maximum to pool and its cell to idx (PH*PW = cells where relu left it 0); ib
 * is 4-byte aligned (idx is a float buffer, the offset a multiple of 8).  Adding 2^23
 * (2^52) leaves the cell's integer in the low bits of the mantissa: no float-to-int
 * conversion; a vstore8 of bytes is eight stores. */
#ifdef NN_REAL_DOUBLE
#define NNCL_IDX_BYTES_(at) convert_uchar8(as_ulong8((at) + (nn_real8)0x1p52))
#else
#define NNCL_IDX_BYTES_(at) convert_uchar8(as_uint8((at) + (nn_real8)0x1p23f))
#endif
static inline void nncl_pool_put8_(int act, int cells, nn_real8 best, nn_real8 at, __global nn_real *pool,
                                   __global uchar *ib) {
    if (act == NN_EPI_RELU) at = select((nn_real8)cells, at, (nncl_mask8)isgreater(best, (nn_real8)0));
    vstore8(best, 0, pool);
    vstore2(as_uint2(NNCL_IDX_BYTES_(at)), 0, (__global uint *)ib);
}

/* The commonest first layer (fashion_cnn's, as nnk_pool_p33_): one channel, 3×3 taps at
 * stride 1, 2×2 windows, no padding, filters in vectors of 8, windows inside x.  A
 * window's four cells read a 4×4 patch of x; each of its 16 values is loaded once and
 * multiplies the weight vector of each cell it is a tap of (forward).  (Literal shapes
 * make this test a constant.) */
static inline int nncl_pool_p33_(int H, int W, int C, int KH, int KW, int F, int SH, int SW, int PT, int PL,
                                 int PH, int PW, int QH, int QW) {
    return C == 1 && KH == 3 && KW == 3 && SH == 1 && SW == 1 && PT == 0 && PL == 0 && PH == 2 &&
           PW == 2 && F % 8 == 0 && 2 * QH + 2 <= H && 2 * QW + 2 <= W;
}

/* Forward: patch value xv at (i, j) into each cell 2r + s whose tap (kh, kw) = (i - r,
 * j - s) it is, in that cell's sum of tap row kh, c[3 (2r + s) + kh]. */
static inline void nncl_p33_fwd_x_(nn_real xv, int i, int j, const nn_real8 *wk, nn_real8 *c) {
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int s = 0; s < 2; s++)
            if (i - r >= 0 && i - r < 3 && j - s >= 0 && j - s < 3)
                c[3 * (2 * r + s) + i - r] += xv * wk[(i - r) * 3 + j - s];
}

/* A window's pooled gradient through the activation (relu's: idx says where it is 0). */
static inline nn_real8 nncl_pool_grad8_(int act, __global const nn_real *pool, __global const nn_real *dp) {
    return act == NN_EPI_RELU ? NNCL_LD8_(dp) : nncl_act_grad8_(act, NNCL_LD8_(pool), NNCL_LD8_(dp));
}
#endif

static inline void nncl_conv2d_pool_fwd(int n, int H, int W, int C, int KH, int KW, int F, int SH, int SW,
                                        int PT, int PL, int OH, int OW, int PH, int PW, int QH, int QW,
                                        __global const nn_real *x, __global const nn_real *w,
                                        __global const nn_real *bias, int act, __global nn_real *pool,
                                        __global nn_real *idx) {
    nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, bias, act};
    __global uchar *ib = NNCL_POOL_IDX_(idx);
    int cells = PH * PW;
#if NNCL_CPU
    if (nncl_pool_p33_(H, W, C, KH, KW, F, SH, SW, PT, PL, PH, PW, QH, QW)) {
        /* A unit: a row of windows of one sample for 8 filters, the nine weight vectors
         * held; a cell's sum in three chains, one per row of taps, added at the end:
         * twelve chains of three FMAs in flight rather than four of nine. */
        int fv = F / 8;
        NNCL_FOR_UNITS_(u, (long)n * QH * fv) {
            int f0 = (int)(u % fv) * 8, qh = (int)(u / fv % QH), b = (int)(u / fv / QH);
            nn_real8 wk[9];
#pragma unroll
            for (int k = 0; k < 9; k++) wk[k] = NNCL_LD8_(w + k * F + f0);
            __global const nn_real *xr = x + ((long)b * H + 2 * qh) * W;
            long o = ((long)b * QH + qh) * QW * F + f0;
            for (int qw = 0; qw < QW; qw++, xr += 2, o += F) {
                nn_real8 c[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, best, at;
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) nncl_p33_fwd_x_(xr[i * W + j], i, j, wk, c);
#pragma unroll
                for (int k = 0; k < 4; k++)
                    nncl_pool_take8_(&best, &at, nncl_epi8_(p, f0, (c[3 * k] + c[3 * k + 1]) + c[3 * k + 2]), k);
                nncl_pool_put8_(act, cells, best, at, pool + o, ib + o);
            }
        }
        return;
    }
    /* A unit: one row of windows of one sample for 16 filters.  A window's cells are
     * summed 4 at a time side by side (two vectors each), tap by tap, so each weight
     * vector loaded serves 4 cells; taps in the padding add 0. */
    int fb = F / 16;
    int inside = PT == 0 && PL == 0 && (OH - 1) * SH + KH <= H && (OW - 1) * SW + KW <= W;
    NNCL_FOR_UNITS_(u, (long)n * QH * fb) {
        int f0 = (int)(u % fb) * 16, qh = (int)(u / fb % QH), b = (int)(u / fb / QH);
        __global const nn_real *xb = x + (long)b * H * W * C;
        for (int qw = 0; qw < QW; qw++) {
            nn_real8 best0 = 0, best1 = 0, at0 = 0, at1 = 0;
            for (int k0 = 0; k0 < cells; k0 += 4) {
                int ih0[4], iw0[4];
#pragma unroll
                for (int t = 0; t < 4; t++) {
                    int k = min(k0 + t, cells - 1);
                    ih0[t] = (qh * PH + k / PW) * SH - PT;
                    iw0[t] = (qw * PW + k % PW) * SW - PL;
                }
                nn_real8 s0[4] = {0, 0, 0, 0}, s1[4] = {0, 0, 0, 0};
                for (int kh = 0; kh < KH; kh++)
                    for (int kw = 0; kw < KW; kw++) {
                        __global const nn_real *wr = w + ((long)(kh * KW + kw) * C) * F + f0;
                        long off[4];
                        int ok[4];
#pragma unroll
                        for (int t = 0; t < 4; t++) {
                            int ih = ih0[t] + kh, iw = iw0[t] + kw;
                            ok[t] = inside || (ih >= 0 && ih < H && iw >= 0 && iw < W);
                            off[t] = ok[t] ? ((long)ih * W + iw) * C : 0;
                        }
                        for (int c = 0; c < C; c++, wr += F) {
                            nn_real8 w0 = NNCL_LD8_(wr), w1 = NNCL_LD8_(wr + 8);
#pragma unroll
                            for (int t = 0; t < 4; t++) {
                                nn_real v = xb[off[t] + c], xv = ok[t] ? v : (nn_real)0;
                                s0[t] += xv * w0;
                                s1[t] += xv * w1;
                            }
                        }
                    }
                for (int t = 0; t < 4 && k0 + t < cells; t++) {
                    nncl_pool_take8_(&best0, &at0, nncl_epi8_(p, f0, s0[t]), k0 + t);
                    nncl_pool_take8_(&best1, &at1, nncl_epi8_(p, f0 + 8, s1[t]), k0 + t);
                }
            }
            long o = (((long)b * QH + qh) * QW + qw) * F + f0;
            nncl_pool_put8_(act, cells, best0, at0, pool + o, ib + o);
            nncl_pool_put8_(act, cells, best1, at1, pool + o + 8, ib + o + 8);
        }
    }
#else
    NNCL_FOR_ITEMS_(o, (long)n * QH * QW * F) {
        int f = (int)(o % F);
        long t = o / F;
        int qw = (int)(t % QW), qh = (int)(t / QW % QH), b = (int)(t / QW / QH);
        nn_real best = 0;
        int at = 0;
        for (int r = 0, k = 0; r < PH; r++)
            for (int q = 0; q < PW; q++, k++) {
                int cell = (b * OH + qh * PH + r) * OW + qw * PW + q;
                nn_real v = nncl_epi_(p, f, nncl_dot_at_(NNCL_MODE_CONV_FWD_, 0, 0, n * OH * OW, F, KH * KW * C, x,
                                                         w, p, cell, f));
                if (k == 0 || v > best) { best = v; at = k; }
            }
        pool[o] = best;
        ib[o] = (uchar)(act == NN_EPI_RELU && !(best > 0) ? cells : at);
    }
#endif
}

/* The convolution's gradient at cell (oh, ow), filter f (0 outside every window). */
static inline nn_real nncl_pool_grad_at_(int PH, int PW, int QH, int QW, int F, __global const nn_real *dp,
                                         __global const nn_real *pool, __global const uchar *ib, int act,
                                         int b, int oh, int ow, int f) {
    int qh = oh / PH, qw = ow / PW;
    if (qh >= QH || qw >= QW) return 0;
    long o = (((long)b * QH + qh) * QW + qw) * F + f;
    return ib[o] == (oh - qh * PH) * PW + ow - qw * PW ? nncl_act_grad_(act, pool[o], dp[o]) : 0;
}

static inline void nncl_conv2d_pool_bwd_filter(int n, int H, int W, int C, int KH, int KW, int F, int SH,
                                               int SW, int PT, int PL, int OH, int OW, int PH, int PW,
                                               int QH, int QW, __global const nn_real *x,
                                               __global const nn_real *dp, __global const nn_real *pool,
                                               __global const nn_real *idx, int act, __global nn_real *dw,
                                               __global nn_real *db) {
    int kdim = KH * KW * C, cells = PH * PW;
    __global const uchar *ib = NNCL_POOL_IDX_RO_(idx);
#if NNCL_CPU
    if (nncl_pool_p33_(H, W, C, KH, KW, F, SH, SW, PT, PL, PH, PW, QH, QW)) {
        /* A unit: the nine taps and the bias of 8 filters in registers over the whole
         * batch, window by window.  Only the argmax cell (r, s) of a window has a
         * gradient, so each tap (kh, kw) adds the gradient times x at (r + kh, s + kw):
         * the 4×4 patch's values picked per lane, its rows by r, then its columns by s
         * (21 selects), and 9 FMAs, instead of 36 FMAs with three zero gradients. */
        int fv = F / 8;
        NNCL_FOR_UNITS_(u, fv) {
            int f0 = (int)u * 8;
            nn_real8 acc[9], bs = 0;
#pragma unroll
            for (int k = 0; k < 9; k++) acc[k] = 0;
            for (int b = 0; b < n; b++)
                for (int qh = 0; qh < QH; qh++) {
                    __global const nn_real *xr = x + ((long)b * H + 2 * qh) * W;
                    long o = ((long)b * QH + qh) * QW * F + f0;
                    for (int qw = 0; qw < QW; qw++, xr += 2, o += F) {
                        nncl_mask8 at = NNCL_IDX_LD8_(ib + o);
                        nn_real8 g = select((nn_real8)0, nncl_pool_grad8_(act, pool + o, dp + o),
                                            at != (nncl_mask8)cells);
                        nncl_mask8 down = (at & 2) != 0, right = (at & 1) != 0;
                        bs += g;
#pragma unroll
                        for (int kh = 0; kh < 3; kh++) {
                            nn_real8 y[4];
#pragma unroll
                            for (int j = 0; j < 4; j++)
                                y[j] = select((nn_real8)xr[kh * W + j], (nn_real8)xr[(kh + 1) * W + j], down);
#pragma unroll
                            for (int kw = 0; kw < 3; kw++) acc[kh * 3 + kw] += g * select(y[kw], y[kw + 1], right);
                        }
                    }
                }
#pragma unroll
            for (int k = 0; k < 9; k++) vstore8(acc[k], 0, dw + k * F + f0);
            if (db) vstore8(bs, 0, db + f0);
        }
        return;
    }
    /* A unit: 4 taps (kh, kw, c) × 16 filters, in registers over the whole batch, window
     * by window: the window's pooled gradient through the activation, then each of its
     * cells (the gradient where idx names the cell, 0 elsewhere) times the 4 taps' input.
     * Cells in no window add 0 and are skipped; the units of the first 4 taps also sum
     * the bias gradient. */
    int rb = (kdim + 3) / 4, fb = F / 16;
    int inside = PT == 0 && PL == 0 && (OH - 1) * SH + KH <= H && (OW - 1) * SW + KW <= W;
    NNCL_FOR_UNITS_(u, (long)rb * fb) {
        int f0 = (int)(u % fb) * 16, r0 = (int)(u / fb) * 4;
        int khr[4], kwr[4];
        long xo[4];
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int k = min(r0 + r, kdim - 1), c = k % C, t = k / C;
            khr[r] = t / KW;
            kwr[r] = t % KW;
            xo[r] = ((long)khr[r] * W + kwr[r]) * C + c;   /* from the window's corner */
        }
        nn_real8 a0[4] = {0, 0, 0, 0}, a1[4] = {0, 0, 0, 0}, bs0 = 0, bs1 = 0;
        for (int b = 0; b < n; b++)
            for (int qh = 0; qh < QH; qh++)
                for (int qw = 0; qw < QW; qw++) {
                    long o = (((long)b * QH + qh) * QW + qw) * F + f0;
                    nn_real8 gv0 = nncl_pool_grad8_(act, pool + o, dp + o);
                    nn_real8 gv1 = nncl_pool_grad8_(act, pool + o + 8, dp + o + 8);
                    nncl_mask8 at0 = NNCL_IDX_LD8_(ib + o), at1 = NNCL_IDX_LD8_(ib + o + 8);
                    if (r0 == 0) {   /* each window's gradient lands once */
                        bs0 += select((nn_real8)0, gv0, at0 != (nncl_mask8)cells);
                        bs1 += select((nn_real8)0, gv1, at1 != (nncl_mask8)cells);
                    }
                    for (int ph = 0, k = 0; ph < PH; ph++)
                        for (int pw = 0; pw < PW; pw++, k++) {
                            int oh = qh * PH + ph, ow = qw * PW + pw;
                            nn_real8 g0 = select((nn_real8)0, gv0, at0 == (nncl_mask8)k);
                            nn_real8 g1 = select((nn_real8)0, gv1, at1 == (nncl_mask8)k);
                            int ih0 = oh * SH - PT, iw0 = ow * SW - PL;
                            long corner = (((long)b * H + ih0) * W + iw0) * C;
#pragma unroll
                            for (int r = 0; r < 4; r++) {
                                int ih = ih0 + khr[r], iw = iw0 + kwr[r];
                                int ok = inside || (ih >= 0 && ih < H && iw >= 0 && iw < W);
                                nn_real v = x[ok ? corner + xo[r] : 0], xv = ok ? v : (nn_real)0;
                                a0[r] += xv * g0;
                                a1[r] += xv * g1;
                            }
                        }
                }
        for (int r = 0; r < 4 && r0 + r < kdim; r++) {
            vstore8(a0[r], 0, dw + (long)(r0 + r) * F + f0);
            vstore8(a1[r], 0, dw + (long)(r0 + r) * F + f0 + 8);
        }
        if (db && r0 == 0) {
            vstore8(bs0, 0, db + f0);
            vstore8(bs1, 0, db + f0 + 8);
        }
    }
#else
    /* One item per filter tap (and per bias), its sum over the batch in row order. */
    NNCL_FOR_ITEMS_(o, (long)(kdim + 1) * F) {
        int f = (int)(o % F), k = (int)(o / F);
        if (k == kdim && !db) continue;
        nncl_conv_ p = {n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW};
        nn_real s = 0;
        for (int b = 0; b < n; b++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    nn_real g = nncl_pool_grad_at_(PH, PW, QH, QW, F, dp, pool, ib, act, b, oh, ow, f);
                    s += k == kdim ? g                  /* x at tap k of this cell's window, 0 in padding */
                                   : nncl_a_at_(NNCL_MODE_CONV_BWD_FILTER_, 0, kdim, n * OH * OW, x, p, k,
                                                (b * OH + oh) * OW + ow) * g;
                }
        if (k == kdim) db[f] = s;
        else dw[(long)k * F + f] = s;
    }
#endif
}

/* TF semantics: the mean over the valid cells.  One item per output element. */
static inline void nncl_avgpool2d_fwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                      int PT, int PL, int OH, int OW, __global const nn_real *x,
                                      __global nn_real *y) {
    NNCL_FOR_ITEMS_(o, (long)n * OH * OW * C) {
        int c = (int)(o % C);
        long t = o / C;
        int ow = (int)(t % OW), oh = (int)(t / OW % OH), b = (int)(t / OW / OH);
        int h0, h1, w0, w1;
        nncl_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
        int count = (h1 - h0) * (w1 - w0);
        if (h0 >= h1 || w0 >= w1) { y[o] = 0; continue; }
        __global const nn_real *xb = x + (long)b * H * W * C + c;
        nn_real s = 0;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) s += xb[((long)ih * W + iw) * C];
        y[o] = s * ((nn_real)1 / (nn_real)count);
    }
}

/* One item per input element: Σ over covering windows, in (oh, ow) order, of dy/count. */
static inline void nncl_avgpool2d_bwd(int n, int H, int W, int C, int PH, int PW, int SH, int SW,
                                      int PT, int PL, int OH, int OW, __global const nn_real *dy,
                                      __global nn_real *dx) {
    NNCL_FOR_ITEMS_(o, (long)n * H * W * C) {
        int c = (int)(o % C);
        long t = o / C;
        int iw = (int)(t % W), ih = (int)(t / W % H), b = (int)(t / W / H);
        int ohl, ohh, owl, owh;
        nncl_pool_cover_(ih, PH, SH, PT, OH, &ohl, &ohh);
        nncl_pool_cover_(iw, PW, SW, PL, OW, &owl, &owh);
        nn_real acc = 0;
        for (int oh = ohl; oh <= ohh; oh++)
            for (int ow = owl; ow <= owh; ow++) {
                int h0, h1, w0, w1;
                nncl_pool_window_(oh, ow, H, W, PH, PW, SH, SW, PT, PL, &h0, &h1, &w0, &w1);
                nn_real inv = (nn_real)1 / (nn_real)((h1 - h0) * (w1 - w0));
                acc += dy[(((long)b * OH + oh) * OW + ow) * C + c] * inv;
            }
        dx[o] = acc;
    }
}

/* y[b,c] = mean of x[b,:,c]; one item per (b, c), summing the HW cells in order. */
static inline void nncl_global_avgpool2d_fwd(int n, int HW, int C, __global const nn_real *x,
                                             __global nn_real *y) {
    NNCL_FOR_ITEMS_(o, (long)n * C) {
        long b = o / C;
        int c = (int)(o % C);
        __global const nn_real *xb = x + b * HW * C + c;
        nn_real s = 0;
        for (int p = 0; p < HW; p++) s += xb[(long)p * C];
        y[o] = s / (nn_real)HW;
    }
}

/* One item per dx element. */
static inline void nncl_global_avgpool2d_bwd(int n, int HW, int C, __global const nn_real *dy,
                                             __global nn_real *dx) {
    nn_real inv = (nn_real)1 / (nn_real)HW;
    NNCL_FOR_ITEMS_(o, (long)n * HW * C) {
        long b = o / ((long)HW * C);
        dx[o] = dy[b * C + o % C] * inv;
    }
}

/* ---------------------------------------------------------------- activations */

/* Elementwise ones: one item per element. */
static inline void nncl_relu_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) y[i] = x[i] > 0 ? x[i] : 0;
}

static inline void nncl_relu_bwd(long len, __global const nn_real *y, __global const nn_real *dy,
                                 __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) dx[i] = nncl_act_grad_(NN_EPI_RELU, y[i], dy[i]);
}

/* Stable in both tails: exp only of a non-positive number. */
static inline nn_real nncl_sigmoid_(nn_real x) {
    if (x >= 0) return (nn_real)1 / ((nn_real)1 + exp(-x));
    nn_real e = exp(x);
    return e / ((nn_real)1 + e);
}

static inline void nncl_sigmoid_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) y[i] = nncl_sigmoid_(x[i]);
}

static inline void nncl_sigmoid_bwd(long len, __global const nn_real *y, __global const nn_real *dy,
                                    __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) dx[i] = nncl_act_grad_(NN_EPI_SIGMOID, y[i], dy[i]);
}

static inline void nncl_tanh_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) y[i] = tanh(x[i]);
}

static inline void nncl_tanh_bwd(long len, __global const nn_real *y, __global const nn_real *dy,
                                 __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) dx[i] = nncl_act_grad_(NN_EPI_TANH, y[i], dy[i]);
}

/* gelu (approximate=False): x·Φ(x), Φ(x) = erfc(-x/√2)/2; the gradient reads x. */
#define NNCL_SQRT1_2 ((nn_real)0.70710678118654752440)
#define NNCL_INV_SQRT_2PI ((nn_real)0.39894228040143267794)
static inline void nncl_gelu_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) y[i] = (nn_real)0.5 * x[i] * erfc(-x[i] * NNCL_SQRT1_2);
}

static inline void nncl_gelu_bwd(long len, __global const nn_real *x, __global const nn_real *dy,
                                 __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) {
        nn_real v = x[i];
        nn_real cdf = (nn_real)0.5 * erfc(-v * NNCL_SQRT1_2);
        dx[i] = dy[i] * (cdf + v * NNCL_INV_SQRT_2PI * exp((nn_real)-0.5 * v * v));
    }
}

/* silu (swish): x·sigmoid(x); the gradient reads x. */
static inline void nncl_silu_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) y[i] = x[i] * nncl_sigmoid_(x[i]);
}

static inline void nncl_silu_bwd(long len, __global const nn_real *x, __global const nn_real *dy,
                                 __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) {
        nn_real s = nncl_sigmoid_(x[i]);
        dx[i] = dy[i] * s * ((nn_real)1 + x[i] * ((nn_real)1 - s));
    }
}

/* elu(alpha); the gradient reads x. */
static inline void nncl_elu_fwd(long len, float alpha, __global const nn_real *x, __global nn_real *y) {
    const nn_real a = (nn_real)alpha;
    NNCL_FOR_ITEMS_(i, len) {
        nn_real v = x[i], neg = v < 0 ? v : 0;
        y[i] = v > 0 ? v : a * expm1(neg);
    }
}

static inline void nncl_elu_bwd(long len, float alpha, __global const nn_real *x, __global const nn_real *dy,
                                __global nn_real *dx) {
    const nn_real a = (nn_real)alpha;
    NNCL_FOR_ITEMS_(i, len) {
        nn_real v = x[i], neg = v < 0 ? v : 0;
        dx[i] = v > 0 ? dy[i] : dy[i] * a * exp(neg);
    }
}

/* selu with the backends' constants; the gradient reads y. */
#define NNCL_SELU_ALPHA 1.6732632423543772848
#define NNCL_SELU_SCALE 1.0507009873554804934
static inline void nncl_selu_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) {
        nn_real v = x[i], neg = v < 0 ? v : 0;
        y[i] = (nn_real)NNCL_SELU_SCALE * (v > 0 ? v : (nn_real)NNCL_SELU_ALPHA * expm1(neg));
    }
}

static inline void nncl_selu_bwd(long len, __global const nn_real *y, __global const nn_real *dy,
                                 __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len)
        dx[i] = dy[i] * (y[i] > 0 ? (nn_real)NNCL_SELU_SCALE : y[i] + (nn_real)(NNCL_SELU_SCALE * NNCL_SELU_ALPHA));
}

/* leaky_relu(negative_slope = alpha >= 0); the gradient reads y. */
static inline void nncl_leaky_relu_fwd(long len, float alpha, __global const nn_real *x, __global nn_real *y) {
    const nn_real a = (nn_real)alpha;
    NNCL_FOR_ITEMS_(i, len) y[i] = x[i] > 0 ? x[i] : a * x[i];
}

static inline void nncl_leaky_relu_bwd(long len, float alpha, __global const nn_real *y,
                                       __global const nn_real *dy, __global nn_real *dx) {
    const nn_real a = (nn_real)alpha;
    NNCL_FOR_ITEMS_(i, len) dx[i] = y[i] > 0 ? dy[i] : a * dy[i];
}

/* softplus = max(x, 0) + log1p(exp(-|x|)); the gradient 1 - exp(-y) reads y. */
static inline void nncl_softplus_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) {
        nn_real v = x[i], pos = v > 0 ? v : 0, mabs = v > 0 ? -v : v;
        y[i] = pos + log1p(exp(mabs));
    }
}

static inline void nncl_softplus_bwd(long len, __global const nn_real *y, __global const nn_real *dy,
                                     __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) dx[i] = -dy[i] * expm1(-y[i]);
}

/* hard_sigmoid (Keras 3): relu6(x + 3) / 6; the gradient reads y. */
static inline void nncl_hard_sigmoid_fwd(long len, __global const nn_real *x, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) {
        nn_real t = x[i] + (nn_real)3;
        t = t > 0 ? t : 0;
        t = t < 6 ? t : (nn_real)6;
        y[i] = t / (nn_real)6;
    }
}

static inline void nncl_hard_sigmoid_bwd(long len, __global const nn_real *y, __global const nn_real *dy,
                                         __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) dx[i] = y[i] > 0 && y[i] < 1 ? dy[i] / (nn_real)6 : 0;
}

/* One item per row (rows are short: class scores); max-subtracted, sum in order. */
static inline void nncl_softmax_fwd(int rows, int cols, __global const nn_real *x,
                                    __global nn_real *y) {
    if (cols <= 0) return;
    NNCL_FOR_ITEMS_(r, rows) {
        __global const nn_real *xr = x + r * cols;
        __global nn_real *yr = y + r * cols;
        nn_real m = xr[0], s = 0;
        for (int c = 1; c < cols; c++) m = xr[c] > m ? xr[c] : m;
        for (int c = 0; c < cols; c++) { yr[c] = exp(xr[c] - m); s += yr[c]; }
        nn_real inv = (nn_real)1 / s;
        for (int c = 0; c < cols; c++) yr[c] *= inv;
    }
}

/* dx = y ⊙ (dy − Σ dy·y); one item per row. */
static inline void nncl_softmax_bwd(int rows, int cols, __global const nn_real *y,
                                    __global const nn_real *dy, __global nn_real *dx) {
    NNCL_FOR_ITEMS_(r, rows) {
        __global const nn_real *yr = y + r * cols, *gr = dy + r * cols;
        __global nn_real *dr = dx + r * cols;
        nn_real dot = 0;
        for (int c = 0; c < cols; c++) dot += gr[c] * yr[c];
        for (int c = 0; c < cols; c++) dr[c] = yr[c] * (gr[c] - dot);
    }
}

/* ---------------------------------------------------------------- dropout */

/* splitmix64's finalizer, as nnk_splitmix64_: element i's draw depends on (seed, i). */
static inline ulong nncl_splitmix64_(ulong z) {
    z += 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

/* C keeps element i iff u·2⁻⁵³ >= rate (in double), u = the draw's top 53 bits.  u·2⁻⁵³
 * is exact, so that is u >= rate·2⁵³, i.e. u >= ceil(rate·2⁵³), and for a float rate
 * rate·2⁵³ is exact in float too: the integer threshold below gives C's decision bit for
 * bit when C is given the same (float) rate, with no fp64.  Rate >= 1 or NaN drops all
 * (threshold 2⁵³, as C whose mask is then 0), rate <= 0 keeps all. */
static inline ulong nncl_dropout_threshold_(float rate) {
    if (!(rate < 1.0f)) return 1UL << 53;
    if (rate <= 0.0f) return 0;
    return (ulong)ceil(rate * 0x1.0p53f);
}

/* C's keep scale (nn_real)(1.0 / (1.0 - rate)).  In float: 1 - rate exactly as hi + lo
 * (Fast2Sum), a quotient refined by one fma Newton step against hi + lo: the correctly
 * rounded float of 1/(1 - rate) in all but pathological cases (C rounds through double
 * first; the test checks equality for the rates it uses). */
static inline nn_real nncl_keep_scale_(float rate) {
    if (!(rate < 1.0f)) return 0;
#ifdef NN_REAL_DOUBLE
    return 1.0 / (1.0 - (double)rate);
#else
    float hi = 1.0f - rate, lo = (1.0f - hi) - rate;
    float q = 1.0f / hi;
    float e = fma(-q, hi, 1.0f);
    e = fma(-q, lo, e);
    return fma(q, e, q);
#endif
}

/* Inverted dropout: mask[i] = keep scale if kept, else 0; y = x * mask.  One item per
 * element. */
static inline void nncl_dropout_fwd(long len, float rate, ulong seed, __global const nn_real *x,
                                    __global nn_real *y, __global nn_real *mask) {
    ulong thr = nncl_dropout_threshold_(rate), key = nncl_splitmix64_(seed);
    nn_real keep = nncl_keep_scale_(rate);
    NNCL_FOR_ITEMS_(i, len) {
        ulong u = nncl_splitmix64_(key ^ ((ulong)i * 0x9E3779B97F4A7C15UL)) >> 11;
        nn_real m = u >= thr ? keep : 0;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

static inline void nncl_dropout_bwd(long len, __global const nn_real *mask,
                                    __global const nn_real *dy, __global nn_real *dx) {
    NNCL_FOR_ITEMS_(i, len) dx[i] = dy[i] * mask[i];
}

/* ---------------------------------------------------------------- batchnorm */

/* Over the last axis, x [rows, C], Keras semantics as nnk_batchnorm_fwd_train (biased
 * variance, two passes).  One work-group per channel: items sum rows l, l+WG, ... then
 * the fixed tree, for the mean and then the variance; the group then normalizes the
 * column.  gamma/beta may be NULL. */
#define NNCL_BATCHNORM_FWD_TRAIN_LOCAL NNCL_WG
static inline void nncl_batchnorm_fwd_train(int rows, int C, float eps, float momentum,
                                            __global const nn_real *x, __global const nn_real *gamma,
                                            __global const nn_real *beta, __global nn_real *y,
                                            __global nn_real *save_mean, __global nn_real *save_invstd,
                                            __global nn_real *moving_mean, __global nn_real *moving_var,
                                            __local nn_real *scratch) {
    if (rows <= 0) return;
    int l = (int)get_local_id(0);
    nn_real mom = momentum, mom1 = (nn_real)1 - (nn_real)momentum;
    NNCL_FOR_GROUPS_(c, C) {
        nn_real s = 0;
        for (int r = l; r < rows; r += NNCL_WG) s += x[(long)r * C + c];
        nn_real mean = nncl_group_sum_(s, scratch) / (nn_real)rows;
        s = 0;
        for (int r = l; r < rows; r += NNCL_WG) { nn_real d = x[(long)r * C + c] - mean; s += d * d; }
        nn_real var = nncl_group_sum_(s, scratch) / (nn_real)rows;
        nn_real invstd = (nn_real)1 / sqrt(var + (nn_real)eps);
        if (l == 0) {
            save_mean[c] = mean;
            save_invstd[c] = invstd;
            moving_mean[c] = moving_mean[c] * mom + mean * mom1;
            moving_var[c] = moving_var[c] * mom + var * mom1;
        }
        /* (x − mean)·scale + beta: C's x·scale + shift is exact enough in double, not
         * in float (it leaves rounding noise where x == mean). */
        nn_real scale = invstd * (gamma ? gamma[c] : (nn_real)1), shift = beta ? beta[c] : (nn_real)0;
        for (int r = l; r < rows; r += NNCL_WG)
            y[(long)r * C + c] = (x[(long)r * C + c] - mean) * scale + shift;
    }
}

/* One item per element. */
static inline void nncl_batchnorm_fwd_infer(int rows, int C, float eps, __global const nn_real *x,
                                            __global const nn_real *gamma, __global const nn_real *beta,
                                            __global const nn_real *moving_mean,
                                            __global const nn_real *moving_var, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, (long)rows * C) {
        int c = (int)(i % C);
        nn_real scale = (nn_real)1 / sqrt(moving_var[c] + (nn_real)eps) * (gamma ? gamma[c] : (nn_real)1);
        y[i] = (x[i] - moving_mean[c]) * scale + (beta ? beta[c] : (nn_real)0);
    }
}

/* dbeta = Σ dy, dgamma = Σ dy·xhat, dx = gamma·invstd·(dy − dbeta/rows − xhat·dgamma/rows).
 * One work-group per channel (two fixed-tree sums, then the column of dx).  dgamma/dbeta
 * may be NULL. */
#define NNCL_BATCHNORM_BWD_LOCAL NNCL_WG
static inline void nncl_batchnorm_bwd(int rows, int C, __global const nn_real *x,
                                      __global const nn_real *dy, __global const nn_real *gamma,
                                      __global const nn_real *save_mean,
                                      __global const nn_real *save_invstd, __global nn_real *dx,
                                      __global nn_real *dgamma, __global nn_real *dbeta,
                                      __local nn_real *scratch) {
    if (rows <= 0) return;
    int l = (int)get_local_id(0);
    NNCL_FOR_GROUPS_(c, C) {
        nn_real mean = save_mean[c], invstd = save_invstd[c], sdy = 0, sdyx = 0;
        for (int r = l; r < rows; r += NNCL_WG) {
            nn_real g = dy[(long)r * C + c];
            sdy += g;
            sdyx += g * ((x[(long)r * C + c] - mean) * invstd);
        }
        sdy = nncl_group_sum_(sdy, scratch);
        sdyx = nncl_group_sum_(sdyx, scratch);
        if (l == 0) {
            if (dbeta) dbeta[c] = sdy;
            if (dgamma) dgamma[c] = sdyx;
        }
        nn_real k = (gamma ? gamma[c] : (nn_real)1) * invstd;
        nn_real mdy = sdy / (nn_real)rows, mdyx = sdyx / (nn_real)rows;
        for (int r = l; r < rows; r += NNCL_WG) {
            long at = (long)r * C + c;
            nn_real xhat = (x[at] - mean) * invstd;
            dx[at] = k * (dy[at] - mdy - xhat * mdyx);
        }
    }
}

/* ---------------------------------------------------------------- losses */

/* Keras reductions as in nn_kernels.h: sum over samples of the per-sample loss goes to
 * sum_out[0] (written); gradients are d(mean loss)/d(input).  Work split: every item
 * grid-strides over rows writing probs/gradients; work-group 0 also computes every
 * row's loss (items take rows l, l+WG, ...) and reduces them in its fixed tree, so the
 * sum does not depend on G.  Each row function returns the row's loss and writes its
 * outputs where the pointers are non-NULL. */
#define NNCL_LOSS_LOCAL_ NNCL_WG
#define NNCL_LOSS_DRIVE_(row, n, C, a, b, o1, o2)                                       \
    do {                                                                                \
        if ((o1) || (o2)) NNCL_FOR_ITEMS_(i_, n) row((int)i_, n, C, a, b, o1, o2);      \
        if (get_group_id(0) == 0) {                                                     \
            nn_real s_ = 0;                                                             \
            for (int i_ = (int)get_local_id(0); i_ < (n); i_ += NNCL_WG)                \
                s_ += row(i_, n, C, a, b, 0, 0);                                        \
            s_ = nncl_group_sum_(s_, scratch);                                          \
            if (get_local_id(0) == 0) sum_out[0] = s_;                                  \
        }                                                                               \
    } while (0)

/* A sparse label as a class index, or -1 when it is not one of 0..C-1 (NaN included). */
static inline int nncl_label_(nn_real v, int C) { return (v >= 0 && v < C) ? (int)v : -1; }

static inline nn_real nncl_logsumexp_(int C, __global const nn_real *z) {
    nn_real m = z[0], s = 0;
    for (int c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
    for (int c = 0; c < C; c++) s += exp(z[c] - m);
    return m + log(s);
}

static inline nn_real nncl_sparse_softmax_xent_row_(int i, int n, int C, __global const nn_real *logits,
                                                    __global const nn_real *labels,
                                                    __global nn_real *probs, __global nn_real *dlogits) {
    __global const nn_real *z = logits + (long)i * C;
    nn_real lse = nncl_logsumexp_(C, z);
    int t = nncl_label_(labels[i], C);
    if (probs || dlogits)
        for (int c = 0; c < C; c++) {
            nn_real p = exp(z[c] - lse);
            if (probs) probs[(long)i * C + c] = p;
            if (dlogits) dlogits[(long)i * C + c] = (p - (nn_real)(c == t)) / (nn_real)n;
        }
    return t >= 0 ? lse - z[t] : (nn_real)NAN;
}

#if NNCL_CPU
/* CPU layout: eight rows at once, lane l row r0 + l (rows past n repeat row n − 1, are not
 * stored, and lose 0): the formulas of nncl_sparse_softmax_xent_row_ on vectors (exp and
 * log on eight lanes instead of one).  Writes probs/dlogits where non-NULL; returns the
 * rows' losses. */
static inline nn_real8 nncl_sparse_softmax_xent8_(int r0, int n, int C, __global const nn_real *logits,
                                                  __global const nn_real *labels, __global nn_real *probs,
                                                  __global nn_real *dlogits) {
    int rows = min(8, n - r0);
    __global const nn_real *z[8];
    nn_real tl[8], zt[8];
#pragma unroll
    for (int l = 0; l < 8; l++) {
        int i = min(r0 + l, n - 1), t = nncl_label_(labels[i], C);
        z[l] = logits + (long)i * C;
        tl[l] = (nn_real)t;
        zt[l] = z[l][max(t, 0)];
    }
#define NNCL_COL8_(c) (nn_real8)(z[0][c], z[1][c], z[2][c], z[3][c], z[4][c], z[5][c], z[6][c], z[7][c])
    nn_real8 m = NNCL_COL8_(0), s = 0;
    for (int c = 1; c < C; c++) m = fmax(m, NNCL_COL8_(c));
    for (int c = 0; c < C; c++) s += exp(NNCL_COL8_(c) - m);
    nn_real8 lse = m + log(s), t8 = vload8(0, tl);
    if (probs || dlogits)
        for (int c = 0; c < C; c++) {
            nn_real8 p = exp(NNCL_COL8_(c) - lse);
            nn_real8 d = (p - select((nn_real8)0, (nn_real8)1, (nncl_mask8)isequal(t8, (nn_real8)c))) / (nn_real)n;
            nn_real pv[8], dv[8];
            vstore8(p, 0, pv);
            vstore8(d, 0, dv);
            for (int l = 0; l < rows; l++) {
                long at = (long)(r0 + l) * C + c;
                if (probs) probs[at] = pv[l];
                if (dlogits) dlogits[at] = dv[l];
            }
        }
#undef NNCL_COL8_
    nn_real8 loss = select((nn_real8)NAN, lse - vload8(0, zt), (nncl_mask8)isgreaterequal(t8, (nn_real8)0));
    nn_real lv[8];
    vstore8(loss, 0, lv);
    for (int l = rows; l < 8; l++) lv[l] = 0;
    return vload8(0, lv);
}

/* Rows in units of NNCL_CPU_LOSS_ROWS for probs/dlogits; the sum by group 0's item 0 over
 * every row, eight lanes of partial sums then nncl_hsum8_ (an order that does not depend
 * on G); with a single unit, that item writes the outputs in the same pass. */
#ifndef NNCL_CPU_LOSS_ROWS
#define NNCL_CPU_LOSS_ROWS 256
#endif
#endif

#define NNCL_LOSS_SPARSE_SOFTMAX_XENT_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_sparse_softmax_xent(int n, int C, __global const nn_real *logits,
                                                 __global const nn_real *labels, __global nn_real *probs,
                                                 __global nn_real *dlogits, __global nn_real *sum_out,
                                                 __local nn_real *scratch) {
#if NNCL_CPU
    long units = (n + NNCL_CPU_LOSS_ROWS - 1) / NNCL_CPU_LOSS_ROWS;
    if (units > 1 && (probs || dlogits))
        NNCL_FOR_UNITS_(u, units)
            for (int r0 = (int)u * NNCL_CPU_LOSS_ROWS; r0 < min((int)u * NNCL_CPU_LOSS_ROWS + NNCL_CPU_LOSS_ROWS, n); r0 += 8)
                nncl_sparse_softmax_xent8_(r0, n, C, logits, labels, probs, dlogits);
    if (get_group_id(0) == 0 && get_local_id(0) == 0) {
        nn_real8 s = 0;
        for (int r0 = 0; r0 < n; r0 += 8)
            s += nncl_sparse_softmax_xent8_(r0, n, C, logits, labels, units > 1 ? 0 : probs, units > 1 ? 0 : dlogits);
        sum_out[0] = nncl_hsum8_(s);
    }
#else
    NNCL_LOSS_DRIVE_(nncl_sparse_softmax_xent_row_, n, C, logits, labels, probs, dlogits);
#endif
}

/* loss_i = Σ_c y_c (lse − z_c);  d/dz_c = (p_c Σy − y_c)/n. */
static inline nn_real nncl_softmax_xent_row_(int i, int n, int C, __global const nn_real *logits,
                                             __global const nn_real *onehot, __global nn_real *probs,
                                             __global nn_real *dlogits) {
    __global const nn_real *z = logits + (long)i * C, *y = onehot + (long)i * C;
    nn_real lse = nncl_logsumexp_(C, z), ysum = 0, loss = 0;
    for (int c = 0; c < C; c++) { loss += y[c] * (lse - z[c]); ysum += y[c]; }
    if (probs || dlogits)
        for (int c = 0; c < C; c++) {
            nn_real p = exp(z[c] - lse);
            if (probs) probs[(long)i * C + c] = p;
            if (dlogits) dlogits[(long)i * C + c] = (p * ysum - y[c]) / (nn_real)n;
        }
    return loss;
}

#define NNCL_LOSS_SOFTMAX_XENT_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_softmax_xent(int n, int C, __global const nn_real *logits,
                                          __global const nn_real *onehot, __global nn_real *probs,
                                          __global nn_real *dlogits, __global nn_real *sum_out,
                                          __local nn_real *scratch) {
    NNCL_LOSS_DRIVE_(nncl_softmax_xent_row_, n, C, logits, onehot, probs, dlogits);
}

/* TF's sigmoid_cross_entropy_with_logits, per-sample mean over K. */
static inline nn_real nncl_sigmoid_bce_row_(int i, int n, int K, __global const nn_real *logits,
                                            __global const nn_real *y, __global nn_real *probs,
                                            __global nn_real *dlogits) {
    nn_real row = 0, nk = (nn_real)n * (nn_real)K;
    for (int k = 0; k < K; k++) {
        long at = (long)i * K + k;
        nn_real z = logits[at];
        row += (z > 0 ? z : (nn_real)0) - z * y[at] + log1p(exp(-fabs(z)));
        nn_real p = nncl_sigmoid_(z);
        if (probs) probs[at] = p;
        if (dlogits) dlogits[at] = (p - y[at]) / nk;
    }
    return row / (nn_real)K;
}

#define NNCL_LOSS_SIGMOID_BCE_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_sigmoid_bce(int n, int K, __global const nn_real *logits,
                                         __global const nn_real *y, __global nn_real *probs,
                                         __global nn_real *dlogits, __global nn_real *sum_out,
                                         __local nn_real *scratch) {
    NNCL_LOSS_DRIVE_(nncl_sigmoid_bce_row_, n, K, logits, y, probs, dlogits);
}

/* Keras's clip of p to [eps, 1−eps] with C's decisions: for a float p, p > 1e-7 (double)
 * ⇔ p >= 1e-7f (1e-7f rounds up; no float lies between), and p < 1 − 1e-7 (double) ⇔
 * p <= 1 − 2⁻²³.  The clipped values are the nn_real nearest eps and 1 − eps; *om
 * returns 1 − r, exact eps at the top clip (1 − r matters to log(1 − r)). */
static inline nn_real nncl_clip_prob_(nn_real p, int *inside, nn_real *om) {
#ifdef NN_REAL_DOUBLE
    nn_real lo = 1e-7, hi = 1.0 - 1e-7;
    int above = p > lo, below = p < hi;
#else
    nn_real lo = 1e-7f, hi = 1.0f - 1e-7f;
    int above = p >= lo, below = p <= 0x1.fffffcp-1f;
#endif
    if (isnan(p)) { *inside = 0; *om = p; return p; }   /* C lets NaN through */
    *inside = above && below;
    if (!above) { *om = (nn_real)1 - lo; return lo; }
    if (!below) { *om = NNCL_PROB_EPS; return hi; }
    *om = (nn_real)1 - p;
    return p;
}

/* Keras 3 CCE on probabilities: q = p/Σp; r = clip(q); loss = −Σ y log r;
 * dL/dp_k = (g_k − Σ_j g_j q_j)/Σp/n with g = −y/r (0 where clipped). */
static inline nn_real nncl_cce_row_(int i, int n, int C, __global const nn_real *p,
                                    __global const nn_real *onehot, __global nn_real *dp,
                                    __global nn_real *unused) {
    __global const nn_real *pi = p + (long)i * C, *y = onehot + (long)i * C;
    nn_real s = 0, gq = 0, loss = 0, om;
    int in;
    for (int c = 0; c < C; c++) s += pi[c];
    for (int c = 0; c < C; c++) {
        nn_real q = pi[c] / s, r = nncl_clip_prob_(q, &in, &om);
        loss -= y[c] * log(r);
        gq += in ? -y[c] / r * q : (nn_real)0;
    }
    if (dp)
        for (int c = 0; c < C; c++) {
            nn_real q = pi[c] / s, r = nncl_clip_prob_(q, &in, &om);
            nn_real g = in ? -y[c] / r : (nn_real)0;
            dp[(long)i * C + c] = (g - gq) / s / (nn_real)n;
        }
    return loss;
}

#define NNCL_LOSS_CCE_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_cce(int n, int C, __global const nn_real *p, __global const nn_real *onehot,
                                 __global nn_real *dp, __global nn_real *sum_out, __local nn_real *scratch) {
    NNCL_LOSS_DRIVE_(nncl_cce_row_, n, C, p, onehot, dp, (__global nn_real *)0);
}

/* Keras 3 sparse CCE on probabilities: r = clip(p); loss = log Σr − log r_t;
 * dL/dp_j = (1/Σr − [j=t]/r_t)/n, 0 where clipped. */
static inline nn_real nncl_sparse_cce_row_(int i, int n, int C, __global const nn_real *p,
                                           __global const nn_real *labels, __global nn_real *dp,
                                           __global nn_real *unused) {
    __global const nn_real *pi = p + (long)i * C;
    int t = nncl_label_(labels[i], C), in;
    nn_real s = 0, om;
    for (int c = 0; c < C; c++) s += nncl_clip_prob_(pi[c], &in, &om);
    if (dp)
        for (int c = 0; c < C; c++) {
            nn_real r = nncl_clip_prob_(pi[c], &in, &om);
            nn_real g = (nn_real)1 / s - (c == t ? (nn_real)1 / r : (nn_real)0);
            dp[(long)i * C + c] = in ? g / (nn_real)n : (nn_real)0;
        }
    return t >= 0 ? log(s) - log(nncl_clip_prob_(pi[t], &in, &om)) : (nn_real)NAN;
}

#define NNCL_LOSS_SPARSE_CCE_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_sparse_cce(int n, int C, __global const nn_real *p,
                                        __global const nn_real *labels, __global nn_real *dp,
                                        __global nn_real *sum_out, __local nn_real *scratch) {
    NNCL_LOSS_DRIVE_(nncl_sparse_cce_row_, n, C, p, labels, dp, (__global nn_real *)0);
}

/* Keras 3 BCE on probabilities: r = clip(p); −(y log r + (1−y) log(1−r)), mean over K. */
static inline nn_real nncl_bce_row_(int i, int n, int K, __global const nn_real *p,
                                    __global const nn_real *y, __global nn_real *dp,
                                    __global nn_real *unused) {
    nn_real row = 0, nk = (nn_real)n * (nn_real)K;
    for (int k = 0; k < K; k++) {
        long at = (long)i * K + k;
        int in;
        nn_real om, r = nncl_clip_prob_(p[at], &in, &om), t = y[at];
        row -= t * log(r) + ((nn_real)1 - t) * log(om);
        if (dp) dp[at] = in ? (-t / r + ((nn_real)1 - t) / om) / nk : (nn_real)0;
    }
    return row / (nn_real)K;
}

#define NNCL_LOSS_BCE_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_bce(int n, int K, __global const nn_real *p, __global const nn_real *y,
                                 __global nn_real *dp, __global nn_real *sum_out, __local nn_real *scratch) {
    NNCL_LOSS_DRIVE_(nncl_bce_row_, n, K, p, y, dp, (__global nn_real *)0);
}

static inline nn_real nncl_mse_row_(int i, int n, int K, __global const nn_real *pred,
                                    __global const nn_real *y, __global nn_real *dpred,
                                    __global nn_real *unused) {
    nn_real row = 0, nk = (nn_real)n * (nn_real)K;
    for (int k = 0; k < K; k++) {
        long at = (long)i * K + k;
        nn_real d = pred[at] - y[at];
        row += d * d;
        if (dpred) dpred[at] = 2 * d / nk;
    }
    return row / (nn_real)K;
}

#define NNCL_LOSS_MSE_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_mse(int n, int K, __global const nn_real *pred, __global const nn_real *y,
                                 __global nn_real *dpred, __global nn_real *sum_out, __local nn_real *scratch) {
    NNCL_LOSS_DRIVE_(nncl_mse_row_, n, K, pred, y, dpred, (__global nn_real *)0);
}

/* The gradient of |d| is sign(d), 0 at 0. */
static inline nn_real nncl_mae_row_(int i, int n, int K, __global const nn_real *pred,
                                    __global const nn_real *y, __global nn_real *dpred,
                                    __global nn_real *unused) {
    nn_real row = 0, nk = (nn_real)n * (nn_real)K;
    for (int k = 0; k < K; k++) {
        long at = (long)i * K + k;
        nn_real d = pred[at] - y[at];
        row += fabs(d);
        if (dpred) dpred[at] = (nn_real)((d > 0) - (d < 0)) / nk;
    }
    return row / (nn_real)K;
}

#define NNCL_LOSS_MAE_LOCAL NNCL_LOSS_LOCAL_
static inline void nncl_loss_mae(int n, int K, __global const nn_real *pred, __global const nn_real *y,
                                 __global nn_real *dpred, __global nn_real *sum_out, __local nn_real *scratch) {
    NNCL_LOSS_DRIVE_(nncl_mae_row_, n, K, pred, y, dpred, (__global nn_real *)0);
}

/* ---------------------------------------------------------------- regularizers */

/* sum_out[0] = l1 Σ|w| + l2 Σw² (written, not accumulated).  Work-group 0 alone: items
 * sum elements l, l+WG, ... then two fixed trees. */
#define NNCL_L1L2_LOSS_LOCAL NNCL_WG
static inline void nncl_l1l2_loss(long size, float l1, float l2, __global const nn_real *w,
                                  __global nn_real *sum_out, __local nn_real *scratch) {
    if (get_group_id(0) != 0) return;
    nn_real a = 0, q = 0;
    for (long i = (long)get_local_id(0); i < size; i += NNCL_WG) { a += fabs(w[i]); q += w[i] * w[i]; }
    a = nncl_group_sum_(a, scratch);
    q = nncl_group_sum_(q, scratch);
    if (get_local_id(0) == 0) sum_out[0] = (nn_real)l1 * a + (nn_real)l2 * q;
}

/* g += l1 sign(w) + 2 l2 w; one item per element. */
static inline void nncl_l1l2_grad(long size, float l1, float l2, __global const nn_real *w,
                                  __global nn_real *g) {
    nn_real a = l1, b = 2 * (nn_real)l2;
    NNCL_FOR_ITEMS_(i, size) g[i] += a * (nn_real)((w[i] > 0) - (w[i] < 0)) + b * w[i];
}

/* ---------------------------------------------------------------- optimizers */

/* Keras 3 formulas, one item per element.  Hyper-parameters arrive as float, so e.g.
 * 1 − β is computed from float β (C: from double β); subnormal moments are kept or
 * flushed as the device does (C flushes them, FTZ/DAZ). */
static inline void nncl_sgd_update(long size, float lr, float momentum, int nesterov,
                                   __global nn_real *w, __global const nn_real *g, __global nn_real *m) {
    nn_real a = lr, mu = momentum;
    if (momentum == 0) {
        NNCL_FOR_ITEMS_(i, size) w[i] -= a * g[i];
        return;
    }
    NNCL_FOR_ITEMS_(i, size) {
        nn_real mi = mu * m[i] - a * g[i];
        m[i] = mi;
        w[i] += nesterov ? mu * mi - a * g[i] : mi;
    }
}

/* t is the 1-based step; alpha = lr sqrt(1−β2^t)/(1−β1^t) in nn_real (C: double). */
static inline nn_real nncl_adam_alpha_(float lr, float beta1, float beta2, long t) {
    nn_real td = (nn_real)t;
    return (nn_real)lr * sqrt((nn_real)1 - pow((nn_real)beta2, td)) / ((nn_real)1 - pow((nn_real)beta1, td));
}

/* Element i's step (b1 = 1 − β1, b2 = 1 − β2). */
static inline void nncl_adam_at_(long i, nn_real alpha, nn_real b1, nn_real b2, nn_real e, __global nn_real *w,
                                 __global const nn_real *g, __global nn_real *m, __global nn_real *v) {
    nn_real gi = g[i], mi = m[i], vi = v[i];
    mi += (gi - mi) * b1;
    vi += (gi * gi - vi) * b2;
    m[i] = mi;
    v[i] = vi;
    w[i] -= alpha * mi / (sqrt(vi) + e);
}

static inline void nncl_adam_update(long size, float lr, float beta1, float beta2, float eps,
                                    long t, __global nn_real *w, __global const nn_real *g,
                                    __global nn_real *m, __global nn_real *v) {
    if (!NNCL_HAS_ITEMS_(size)) return;   /* most items, on a CPU: no pow for them */
    nn_real alpha = nncl_adam_alpha_(lr, beta1, beta2, t);
    nn_real b1 = (nn_real)1 - (nn_real)beta1, b2 = (nn_real)1 - (nn_real)beta2, e = eps;
    NNCL_FOR_ITEMS_(i, size) nncl_adam_at_(i, alpha, b1, b2, e, w, g, m, v);
}

static inline void nncl_rmsprop_update(long size, float lr, float rho, float momentum, float eps,
                                       int centered, __global nn_real *w, __global const nn_real *g,
                                       __global nn_real *v, __global nn_real *mom, __global nn_real *mg) {
    nn_real r = rho, r1 = (nn_real)1 - (nn_real)rho, a = lr, mu = momentum, e = eps;
    NNCL_FOR_ITEMS_(i, size) {
        nn_real gi = g[i], vi = r * v[i] + r1 * gi * gi, denom = vi;
        v[i] = vi;
        if (centered) {
            nn_real mgi = r * mg[i] + r1 * gi;
            mg[i] = mgi;
            denom -= mgi * mgi;
        }
        nn_real inc = a * gi / sqrt(denom + e);
        if (momentum > 0) {
            nn_real mo = mu * mom[i] + inc;
            mom[i] = mo;
            w[i] -= mo;
        } else {
            w[i] -= inc;
        }
    }
}

/* fuse_updates.c: every weight's update in one kernel (one launch per step instead of
 * one per weight). Part k is the weight w[k], its gradient g[k] and its slots, of
 * size[k] elements; each is the per-weight kernel's loop, so the bits are its bits. */
static inline void nncl_sgd_update_all(int parts, __global nn_real *const *w, __global const nn_real *const *g,
                                       __global nn_real *const *m, const long *size, float lr, float momentum,
                                       int nesterov) {
    for (int k = 0; k < parts; k++) nncl_sgd_update(size[k], lr, momentum, nesterov, w[k], g[k], m[k]);
}

#if NNCL_CPU
/* CPU layout: the parts are cut into units of NNCL_CPU_UPDATE_CHUNK elements (counted
 * from each part's start) and the units of all parts dealt to the items as one list:
 * long runs per item, each a few streams the prefetchers follow, and the few elements of
 * the small parts (biases) in one unit each instead of a pass of every item over every
 * part.  Per element the formulas of the per-weight kernel: the same bits. */
#ifndef NNCL_CPU_UPDATE_CHUNK
#define NNCL_CPU_UPDATE_CHUNK 8192
#endif
static inline long nncl_update_units_(int parts, const long *size) {
    long units = 0;
    for (int k = 0; k < parts; k++) units += (size[k] + NNCL_CPU_UPDATE_CHUNK - 1) / NNCL_CPU_UPDATE_CHUNK;
    return units;
}

/* Unit u's part, and its elements [*lo, *hi). */
static inline int nncl_update_unit_(int parts, const long *size, long u, long *lo, long *hi) {
    int k = 0;
    for (; k < parts - 1; k++) {
        long units = (size[k] + NNCL_CPU_UPDATE_CHUNK - 1) / NNCL_CPU_UPDATE_CHUNK;
        if (u < units) break;
        u -= units;
    }
    *lo = u * NNCL_CPU_UPDATE_CHUNK;
    *hi = min(*lo + NNCL_CPU_UPDATE_CHUNK, size[k]);
    return k;
}
#endif

static inline void nncl_adam_update_all(int parts, __global nn_real *const *w, __global const nn_real *const *g,
                                        __global nn_real *const *m, __global nn_real *const *v, const long *size,
                                        float lr, float beta1, float beta2, float eps, long t) {
#if NNCL_CPU
    long units = nncl_update_units_(parts, size);
    if (nncl_first_unit_(units) >= units) return;   /* most items: no pow for them */
    nn_real alpha = nncl_adam_alpha_(lr, beta1, beta2, t);
    nn_real b1 = (nn_real)1 - (nn_real)beta1, b2 = (nn_real)1 - (nn_real)beta2, e = eps;
    NNCL_FOR_UNITS_(u, units) {
        long lo, hi;
        int k = nncl_update_unit_(parts, size, u, &lo, &hi);
        __global nn_real *wk = w[k] + lo, *mk = m[k] + lo, *vk = v[k] + lo;
        __global const nn_real *gk = g[k] + lo;
        int len = (int)(hi - lo), i = 0;
        for (; i + 8 <= len; i += 8) {
            nn_real8 gi = NNCL_LD8_(gk + i), mi = NNCL_LD8_(mk + i), vi = NNCL_LD8_(vk + i);
            mi += (gi - mi) * b1;
            vi += (gi * gi - vi) * b2;
            vstore8(mi, 0, mk + i);
            vstore8(vi, 0, vk + i);
            vstore8(NNCL_LD8_(wk + i) - alpha * mi / (sqrt(vi) + e), 0, wk + i);
        }
        for (; i < len; i++) nncl_adam_at_(i, alpha, b1, b2, e, wk, gk, mk, vk);
    }
#else
    for (int k = 0; k < parts; k++) nncl_adam_update(size[k], lr, beta1, beta2, eps, t, w[k], g[k], m[k], v[k]);
#endif
}

static inline void nncl_rmsprop_update_all(int parts, __global nn_real *const *w, __global const nn_real *const *g,
                                           __global nn_real *const *v, __global nn_real *const *mom,
                                           __global nn_real *const *mg, const long *size, float lr, float rho,
                                           float momentum, float eps, int centered) {
    for (int k = 0; k < parts; k++)
        nncl_rmsprop_update(size[k], lr, rho, momentum, eps, centered, w[k], g[k], v[k], mom[k], mg[k]);
}

/* ---------------------------------------------------------------- pointwise chains */

/* fuse_elementwise.c: a chain of pointwise ops in one kernel, one item per element, the
 * intermediates in registers.  The element functions repeat the per-op functions'
 * expressions (relu, sigmoid and tanh gradients share nncl_act_grad_ with them; x the
 * first input, dy the second, a the parameter); NN_EW_* as in
 * nn_kernels.h. */
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

static inline nn_real nncl_ew_relu_(nn_real x, nn_real dy, nn_real a) {
    return x > 0 ? x : 0;
}

static inline nn_real nncl_ew_sigmoid_(nn_real x, nn_real dy, nn_real a) {
    return nncl_sigmoid_(x);
}

static inline nn_real nncl_ew_tanh_(nn_real x, nn_real dy, nn_real a) {
    return tanh(x);
}

static inline nn_real nncl_ew_gelu_(nn_real x, nn_real dy, nn_real a) {
    return (nn_real)0.5 * x * erfc(-x * NNCL_SQRT1_2);
}

static inline nn_real nncl_ew_silu_(nn_real x, nn_real dy, nn_real a) {
    return x * nncl_sigmoid_(x);
}

static inline nn_real nncl_ew_elu_(nn_real x, nn_real dy, nn_real a) {
    nn_real neg = x < 0 ? x : 0;
    return x > 0 ? x : a * expm1(neg);
}

static inline nn_real nncl_ew_selu_(nn_real x, nn_real dy, nn_real a) {
    nn_real neg = x < 0 ? x : 0;
    return (nn_real)NNCL_SELU_SCALE * (x > 0 ? x : (nn_real)NNCL_SELU_ALPHA * expm1(neg));
}

static inline nn_real nncl_ew_leaky_relu_(nn_real x, nn_real dy, nn_real a) {
    return x > 0 ? x : a * x;
}

static inline nn_real nncl_ew_softplus_(nn_real x, nn_real dy, nn_real a) {
    nn_real pos = x > 0 ? x : 0, mabs = x > 0 ? -x : x;
    return pos + log1p(exp(mabs));
}

static inline nn_real nncl_ew_hard_sigmoid_(nn_real x, nn_real dy, nn_real a) {
    nn_real t = x + (nn_real)3;
    t = t > 0 ? t : 0;
    t = t < 6 ? t : (nn_real)6;
    return t / (nn_real)6;
}

static inline nn_real nncl_ew_relu_bwd_(nn_real x, nn_real dy, nn_real a) {
    return nncl_act_grad_(NN_EPI_RELU, x, dy);
}

static inline nn_real nncl_ew_sigmoid_bwd_(nn_real x, nn_real dy, nn_real a) {
    return nncl_act_grad_(NN_EPI_SIGMOID, x, dy);
}

static inline nn_real nncl_ew_tanh_bwd_(nn_real x, nn_real dy, nn_real a) {
    return nncl_act_grad_(NN_EPI_TANH, x, dy);
}

static inline nn_real nncl_ew_gelu_bwd_(nn_real x, nn_real dy, nn_real a) {
    nn_real cdf = (nn_real)0.5 * erfc(-x * NNCL_SQRT1_2);
    return dy * (cdf + x * NNCL_INV_SQRT_2PI * exp((nn_real)-0.5 * x * x));
}

static inline nn_real nncl_ew_silu_bwd_(nn_real x, nn_real dy, nn_real a) {
    nn_real s = nncl_sigmoid_(x);
    return dy * s * ((nn_real)1 + x * ((nn_real)1 - s));
}

static inline nn_real nncl_ew_elu_bwd_(nn_real x, nn_real dy, nn_real a) {
    nn_real neg = x < 0 ? x : 0;
    return x > 0 ? dy : dy * a * exp(neg);
}

static inline nn_real nncl_ew_selu_bwd_(nn_real x, nn_real dy, nn_real a) {
    return dy * (x > 0 ? (nn_real)NNCL_SELU_SCALE : x + (nn_real)(NNCL_SELU_SCALE * NNCL_SELU_ALPHA));
}

static inline nn_real nncl_ew_leaky_relu_bwd_(nn_real x, nn_real dy, nn_real a) {
    return x > 0 ? dy : a * dy;
}

static inline nn_real nncl_ew_softplus_bwd_(nn_real x, nn_real dy, nn_real a) {
    return -dy * expm1(-x);
}

static inline nn_real nncl_ew_hard_sigmoid_bwd_(nn_real x, nn_real dy, nn_real a) {
    return x > 0 && x < 1 ? dy / (nn_real)6 : 0;
}

static inline nn_real nncl_ew_dropout_bwd_(nn_real x, nn_real dy, nn_real a) {
    return dy * x;
}

static inline nn_real nncl_ew_add_(nn_real x, nn_real dy, nn_real a) {
    return x + dy;
}

static inline nn_real nncl_ew_(int op, nn_real x, nn_real dy, nn_real a) {
    switch (op) {
    case NN_EW_RELU: return nncl_ew_relu_(x, dy, a);
    case NN_EW_SIGMOID: return nncl_ew_sigmoid_(x, dy, a);
    case NN_EW_TANH: return nncl_ew_tanh_(x, dy, a);
    case NN_EW_GELU: return nncl_ew_gelu_(x, dy, a);
    case NN_EW_SILU: return nncl_ew_silu_(x, dy, a);
    case NN_EW_ELU: return nncl_ew_elu_(x, dy, a);
    case NN_EW_SELU: return nncl_ew_selu_(x, dy, a);
    case NN_EW_LEAKY_RELU: return nncl_ew_leaky_relu_(x, dy, a);
    case NN_EW_SOFTPLUS: return nncl_ew_softplus_(x, dy, a);
    case NN_EW_HARD_SIGMOID: return nncl_ew_hard_sigmoid_(x, dy, a);
    case NN_EW_RELU_BWD: return nncl_ew_relu_bwd_(x, dy, a);
    case NN_EW_SIGMOID_BWD: return nncl_ew_sigmoid_bwd_(x, dy, a);
    case NN_EW_TANH_BWD: return nncl_ew_tanh_bwd_(x, dy, a);
    case NN_EW_GELU_BWD: return nncl_ew_gelu_bwd_(x, dy, a);
    case NN_EW_SILU_BWD: return nncl_ew_silu_bwd_(x, dy, a);
    case NN_EW_ELU_BWD: return nncl_ew_elu_bwd_(x, dy, a);
    case NN_EW_SELU_BWD: return nncl_ew_selu_bwd_(x, dy, a);
    case NN_EW_LEAKY_RELU_BWD: return nncl_ew_leaky_relu_bwd_(x, dy, a);
    case NN_EW_SOFTPLUS_BWD: return nncl_ew_softplus_bwd_(x, dy, a);
    case NN_EW_HARD_SIGMOID_BWD: return nncl_ew_hard_sigmoid_bwd_(x, dy, a);
    case NN_EW_DROPOUT_BWD: return nncl_ew_dropout_bwd_(x, dy, a);
    case NN_EW_ADD: return nncl_ew_add_(x, dy, a);
    default: return NAN;
    }
}

/* y = the chain's last value; step s is op[s] with alpha[s] on x[s] and dy[s] (0: the
 * value of step s - 1). */
static inline void nncl_ewise_chain(long len, int steps, const int *op, const nn_real *alpha,
                                    __global const nn_real *const *x, __global const nn_real *const *dy,
                                    __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) {
        nn_real v = 0;
        for (int s = 0; s < steps; s++) v = nncl_ew_(op[s], x[s] ? x[s][i] : v, dy[s] ? dy[s][i] : v, alpha[s]);
        y[i] = v;
    }
}

/* ---------------------------------------------------------------- copies */

/* One item per element.  Unlike C's memmove, x and y must not partially overlap. */
/* y = 0 (the C target's memset), split like every elementwise kernel here, so that a
 * kernel that zeroes then accumulates (l1l2_grad) touches each element from one item. */
static inline void nncl_fill_zero(long len, __global nn_real *y) {
    NNCL_FOR_ITEMS_(i, len) y[i] = 0;
}

static inline void nncl_copy(long len, __global const nn_real *x, __global nn_real *y) {
    if (x == y) return;
    NNCL_FOR_ITEMS_(i, len) y[i] = x[i];
}

/* y += x, for gradient accumulation. */
static inline void nncl_add_inplace(long len, __global nn_real *y, __global const nn_real *x) {
    NNCL_FOR_ITEMS_(i, len) y[i] += x[i];
}

#endif /* NN_KERNELS_CL */
