/* blocked_conv.h — blocked-channel convolutions for the kernel lab (kernel_lab.c --layouts),
 * to measure whether nnc should add them next to its NHWC and packed layouts.  Not part of
 * the kernel library: nothing nnc builds calls these (the library's blocked filter gradient,
 * nnk_conv2d_bwd_filter_blocked, came out of the filter gradient here).
 *
 * Layout ("nChw16c"): an activation [n, H, W, C] is stored as [n][C/CB][H][W][CB], CB
 * channels per block, so that one output pixel's CB channels are whole vectors and a
 * window row's pixels are CB floats apart.  A tensor with fewer than CB channels (an
 * input image: C = 1 or 3) is one block of C channels ([n][1][H][W][C], NHWC's bytes).
 * Weights stay HWIO for saving; each kernel reads a copy blocked to match, made per step
 * as nnc's pack nodes are.
 *
 * The kernels are the register-tiled direct convolution oneDNN's jit:avx2 runs on this
 * layout: the forward and data-gradient tiles are TW output columns × CB output channels
 * (CB is two vectors: 16 on AVX2, 32 on AVX-512; 6 × 2 named accumulators), each input
 * channel broadcast once per
 * column and multiplied by the CB-wide weight row; the filter gradient is a GEMM over the
 * pixels with a tile of 6 window cells (kh, kw, c) × CB filters.  Each kernel also runs
 * on NHWC tensors in place (nhwc = 1: the same tiles, other strides).  Stride 1, no
 * padding (the lab's cases); every sum in a fixed order, threads split outputs only. */
#ifndef BLOCKED_CONV_H
#define BLOCKED_CONV_H

#include "nn_kernels.h"

#define BLK_CB (2 * NNK_VEC_LANES)           /* channels per block: two vectors, 16 on AVX2 */
#define BLK_TW 6                            /* output columns per register tile */
#define BLK_RB 6                            /* window cells per filter-gradient tile */

/* Channels per block of a tensor with C channels: CB, or C itself when C < CB. */
static inline int blk_of(int C) { return C < BLK_CB ? C : BLK_CB; }

/* Tiles of at most `most` splitting len evenly: tile t starts at *start, is *width long. */
static inline void blk_tile(int len, int most, int t, int *start, int *width) {
    int tiles = (len + most - 1) / most, base = len / tiles, extra = len % tiles;
    *start = t * base + nnk_min_(t, extra);
    *width = base + (t < extra);
}

/* x[n,H,W,C] (NHWC) into blocks, and back. */
static void blk_from_nhwc(int n, int H, int W, int C, const nn_real *x, nn_real *xb) {
    int cb = blk_of(C), blocks = C / cb;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int k = 0; k < blocks; k++) {
            nn_real *d = xb + ((size_t)b * blocks + k) * H * W * cb;
            const nn_real *s = x + (size_t)b * H * W * C + (size_t)k * cb;
            if (cb == BLK_CB)
                for (size_t p = 0; p < (size_t)H * W; p++) memcpy(d + p * BLK_CB, s + p * C, BLK_CB * sizeof(nn_real));
            else
                for (size_t p = 0; p < (size_t)H * W; p++)
                    for (int c = 0; c < cb; c++) d[p * cb + c] = s[p * C + c];
        }
}

static void blk_to_nhwc(int n, int H, int W, int C, const nn_real *xb, nn_real *x) {
    int cb = blk_of(C), blocks = C / cb;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < n; b++)
        for (int k = 0; k < blocks; k++) {
            const nn_real *s = xb + ((size_t)b * blocks + k) * H * W * cb;
            nn_real *d = x + (size_t)b * H * W * C + (size_t)k * cb;
            if (cb == BLK_CB)
                for (size_t p = 0; p < (size_t)H * W; p++) memcpy(d + p * C, s + p * BLK_CB, BLK_CB * sizeof(nn_real));
            else
                for (size_t p = 0; p < (size_t)H * W; p++)
                    for (int c = 0; c < cb; c++) d[p * C + c] = s[p * cb + c];
        }
}

/* Forward weights: wf[F/CB][C/cb][KH][KW][cb][CB] from HWIO w[KH][KW][C][F]. */
static void blk_pack_fwd(int KH, int KW, int C, int F, const nn_real *w, nn_real *wf) {
    int cb = blk_of(C), ci_n = C / cb;
    for (int fo = 0; fo < F / BLK_CB; fo++)
        for (int ci = 0; ci < ci_n; ci++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++)
                    for (int c = 0; c < cb; c++) {
                        nn_real *d = wf + ((((size_t)fo * ci_n + ci) * KH + kh) * KW + kw) * cb * BLK_CB + (size_t)c * BLK_CB;
                        const nn_real *s = w + (((size_t)kh * KW + kw) * C + ci * cb + c) * F + fo * BLK_CB;
                        memcpy(d, s, BLK_CB * sizeof(nn_real));
                    }
}

/* Data-gradient weights: wd[C/CB][F/CB][KH][KW][CB f][CB c] (rows over f, vectors over c). */
static void blk_pack_data(int KH, int KW, int C, int F, const nn_real *w, nn_real *wd) {
    int ci_n = C / BLK_CB, fo_n = F / BLK_CB;
    for (int ci = 0; ci < ci_n; ci++)
        for (int fo = 0; fo < fo_n; fo++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    nn_real *d = wd + ((((size_t)ci * fo_n + fo) * KH + kh) * KW + kw) * BLK_CB * BLK_CB;
                    for (int f = 0; f < BLK_CB; f++)
                        for (int c = 0; c < BLK_CB; c++)
                            d[f * BLK_CB + c] = w[(((size_t)kh * KW + kw) * C + ci * BLK_CB + c) * F + fo * BLK_CB + f];
                }
}

/* Named accumulators (so they stay in registers): a##t##0, a##t##1 are column (or row)
 * t's two vectors; a tile narrower than 6 (tw is a constant where the tile is inlined)
 * leaves the rest unused. */
#define BLK_ACC_DECL_                                                              \
    nnk_vec_ a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0};    \
    nnk_vec_ a30 = {0}, a31 = {0}, a40 = {0}, a41 = {0}, a50 = {0}, a51 = {0}
#define BLK_FMA_(t, s) do { if (tw > (t)) { nn_real s_ = (s); a##t##0 += s_ * w0; a##t##1 += s_ * w1; } } while (0)
#define BLK_FMA6_(expr) do {                                                        \
        BLK_FMA_(0, expr(0)); BLK_FMA_(1, expr(1)); BLK_FMA_(2, expr(2));            \
        BLK_FMA_(3, expr(3)); BLK_FMA_(4, expr(4)); BLK_FMA_(5, expr(5));            \
    } while (0)
#define BLK_PUT_(t, dst) do { if (tw > (t)) {                                       \
        nn_real *d_ = (dst);                                                         \
        *(nnk_vec_ *)d_ = a##t##0; *(nnk_vec_ *)(d_ + NNK_VEC_LANES) = a##t##1; } } while (0)

/* Where a tensor [n, H, W, C] keeps channel c of block k at pixel p of sample b:
 * b*sb + k*sk + p*sp + c.  Blocked: sp = its block, sk = H*W*block; NHWC read block by
 * block: sp = C, sk = block.  The kernels below take either, so the lab can tell the
 * layout's share of a speed-up from the micro-kernel's. */
typedef struct blk_lay { size_t sb, sk, sp; } blk_lay;
static inline blk_lay blk_lay_of(int nhwc, int H, int W, int C, int block) {
    blk_lay l = {(size_t)H * W * C, nhwc ? (size_t)block : (size_t)H * W * block, nhwc ? (size_t)C : (size_t)block};
    return l;
}

/* A macro, repeated so that a tile of constant width tw (a literal where it is inlined)
 * gets its own code: the tiles of a row are cut evenly, at most BLK_TW wide. */
#define BLK_BY_WIDTH_(tw, CALL) do {                                                 \
        switch (tw) {                                                                \
        case 6: CALL(6); break; case 5: CALL(5); break; case 4: CALL(4); break;      \
        case 3: CALL(3); break; case 2: CALL(2); break; default: CALL(1); break;     \
        }                                                                            \
    } while (0)

/* One forward tile: y at output columns ow0 .. ow0+tw of a row (CB channels each, ysp
 * apart), summed over every input block, window cell and channel in that order. */
static inline __attribute__((always_inline)) void blk_fwd_tile_(int tw, int cb, int ci_n, int KH, int KW, int W,
                                                                blk_lay xl, const nn_real *x0,
                                                                const nn_real *wq, nn_real *y, size_t ysp) {
    BLK_ACC_DECL_;
    for (int ci = 0; ci < ci_n; ci++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++, wq += (size_t)cb * BLK_CB) {
                const nn_real *xp = x0 + ci * xl.sk + ((size_t)kh * W + kw) * xl.sp;
                for (int c = 0; c < cb; c++) {
                    nnk_vec_ w0 = *(const nnk_vec_ *)(wq + c * BLK_CB);
                    nnk_vec_ w1 = *(const nnk_vec_ *)(wq + c * BLK_CB + NNK_VEC_LANES);
#define BLK_X_(t) xp[(t) * xl.sp + c]
                    BLK_FMA6_(BLK_X_);
#undef BLK_X_
                }
            }
    BLK_PUT_(0, y); BLK_PUT_(1, y + ysp); BLK_PUT_(2, y + 2 * ysp);
    BLK_PUT_(3, y + 3 * ysp); BLK_PUT_(4, y + 4 * ysp); BLK_PUT_(5, y + 5 * ysp);
}

/* y = conv(x, w packed by blk_pack_fwd); stride 1, valid.  x and y blocked, or both NHWC
 * (nhwc: the same tiles, reading and writing NHWC in place). */
static void blk_conv_fwd(int nhwc, int n, int H, int W, int C, int KH, int KW, int F, const nn_real *x,
                         const nn_real *wf, nn_real *y) {
    int OH = H - KH + 1, OW = W - KW + 1, cb = blk_of(C), ci_n = C / cb, fo_n = F / BLK_CB;
    int tiles = (OW + BLK_TW - 1) / BLK_TW;
    blk_lay xl = blk_lay_of(nhwc, H, W, C, cb), yl = blk_lay_of(nhwc, OH, OW, F, BLK_CB);
    #pragma omp parallel for collapse(3) schedule(static)
    for (int b = 0; b < n; b++)
        for (int fo = 0; fo < fo_n; fo++)
            for (int oh = 0; oh < OH; oh++) {
                const nn_real *xrow = x + b * xl.sb + (size_t)oh * W * xl.sp;
                const nn_real *wq = wf + (size_t)fo * ci_n * KH * KW * cb * BLK_CB;
                nn_real *yrow = y + b * yl.sb + fo * yl.sk + (size_t)oh * OW * yl.sp;
                for (int t = 0; t < tiles; t++) {
                    int ow0, tw;
                    blk_tile(OW, BLK_TW, t, &ow0, &tw);
#define BLK_CALL_(w) blk_fwd_tile_(w, cb, ci_n, KH, KW, W, xl, xrow + ow0 * xl.sp, wq, yrow + ow0 * yl.sp, yl.sp)
                    BLK_BY_WIDTH_(tw, BLK_CALL_);
#undef BLK_CALL_
                }
            }
}

/* One data-gradient tile: dx at input columns iw0 .. iw0+tw of row ih, summed over the
 * filter blocks and window cells; dy's pixel for column t is p_t (a zero row where the
 * window leaves dy). */
static inline __attribute__((always_inline)) void blk_data_tile_(int tw, int fo_n, int KH, int KW, int OH, int OW,
                                                                 int ih, int iw0, blk_lay gl, const nn_real *dyb,
                                                                 const nn_real *wq, nn_real *dx, size_t dsp) {
    static const nn_real zeros[BLK_CB] __attribute__((aligned(64)));
    BLK_ACC_DECL_;
    for (int fo = 0; fo < fo_n; fo++)
        for (int kh = 0; kh < KH; kh++) {
            int oh = ih - kh;
            if (oh < 0 || oh >= OH) continue;
            const nn_real *dyrow = dyb + fo * gl.sk + (size_t)oh * OW * gl.sp;
            for (int kw = 0; kw < KW; kw++) {
#define BLK_P_(t) (iw0 + (t) - kw >= 0 && iw0 + (t) - kw < OW ? dyrow + (iw0 + (t) - kw) * gl.sp : zeros)
                const nn_real *p0 = BLK_P_(0), *p1 = BLK_P_(1), *p2 = BLK_P_(2);
                const nn_real *p3 = BLK_P_(3), *p4 = BLK_P_(4), *p5 = BLK_P_(5);
#undef BLK_P_
                const nn_real *wk = wq + (((size_t)fo * KH + kh) * KW + kw) * BLK_CB * BLK_CB;
                for (int f = 0; f < BLK_CB; f++) {
                    nnk_vec_ w0 = *(const nnk_vec_ *)(wk + f * BLK_CB);
                    nnk_vec_ w1 = *(const nnk_vec_ *)(wk + f * BLK_CB + NNK_VEC_LANES);
#define BLK_D_(t) p##t[f]
                    BLK_FMA6_(BLK_D_);
#undef BLK_D_
                }
            }
        }
    BLK_PUT_(0, dx); BLK_PUT_(1, dx + dsp); BLK_PUT_(2, dx + 2 * dsp);
    BLK_PUT_(3, dx + 3 * dsp); BLK_PUT_(4, dx + 4 * dsp); BLK_PUT_(5, dx + 5 * dsp);
}

/* dx of a stride-1 valid convolution from dy and w packed by blk_pack_data (both
 * blocked, or both NHWC): each input cell gathers the outputs whose windows cover it. */
static void blk_conv_bwd_data(int nhwc, int n, int H, int W, int C, int KH, int KW, int F, const nn_real *dy,
                              const nn_real *wd, nn_real *dx) {
    int OH = H - KH + 1, OW = W - KW + 1, ci_n = C / BLK_CB, fo_n = F / BLK_CB;
    int tiles = (W + BLK_TW - 1) / BLK_TW;
    blk_lay xl = blk_lay_of(nhwc, H, W, C, BLK_CB), gl = blk_lay_of(nhwc, OH, OW, F, BLK_CB);
    #pragma omp parallel for collapse(3) schedule(static)
    for (int b = 0; b < n; b++)
        for (int ci = 0; ci < ci_n; ci++)
            for (int ih = 0; ih < H; ih++) {
                const nn_real *dyb = dy + b * gl.sb;
                const nn_real *wq = wd + (size_t)ci * fo_n * KH * KW * BLK_CB * BLK_CB;
                nn_real *dxrow = dx + b * xl.sb + ci * xl.sk + (size_t)ih * W * xl.sp;
                for (int t = 0; t < tiles; t++) {
                    int iw0, tw;
                    blk_tile(W, BLK_TW, t, &iw0, &tw);
#define BLK_CALL_(w) blk_data_tile_(w, fo_n, KH, KW, OH, OW, ih, iw0, gl, dyb, wq, dxrow + iw0 * xl.sp, xl.sp)
                    BLK_BY_WIDTH_(tw, BLK_CALL_);
#undef BLK_CALL_
                }
            }
}

/* One filter-gradient tile: rows tw window cells (each (kh, kw, c) of one input block, at
 * offset off[r] from a pixel's x), columns one filter block; summed over the pixels of
 * output rows [oh0, oh1) of one sample, then added to acc (the running total). */
static inline __attribute__((always_inline)) void blk_filter_tile_(int tw, int W, int OW, int oh0, int oh1,
                                                                   blk_lay xl, const nn_real *xs,
                                                                   const size_t *off, blk_lay gl,
                                                                   const nn_real *dys, nnk_vec_ *acc) {
    BLK_ACC_DECL_;
    size_t o0 = off[0], o1 = tw > 1 ? off[1] : 0, o2 = tw > 2 ? off[2] : 0;
    size_t o3 = tw > 3 ? off[3] : 0, o4 = tw > 4 ? off[4] : 0, o5 = tw > 5 ? off[5] : 0;
    for (int oh = oh0; oh < oh1; oh++) {
        const nn_real *xr = xs + (size_t)oh * W * xl.sp;
        const nn_real *g = dys + (size_t)oh * OW * gl.sp;
        for (int ow = 0; ow < OW; ow++, xr += xl.sp, g += gl.sp) {
            nnk_vec_ w0 = *(const nnk_vec_ *)g, w1 = *(const nnk_vec_ *)(g + NNK_VEC_LANES);
#define BLK_R_(t) xr[o##t]
            BLK_FMA6_(BLK_R_);
#undef BLK_R_
        }
    }
#define BLK_ADD_(t) do { if (tw > (t)) { acc[2 * (t)] += a##t##0; acc[2 * (t) + 1] += a##t##1; } } while (0)
    BLK_ADD_(0); BLK_ADD_(1); BLK_ADD_(2); BLK_ADD_(3); BLK_ADD_(4); BLK_ADD_(5);
#undef BLK_ADD_
}

/* dw[KH][KW][C][F] (HWIO, what is saved and updated) from x and dy (both blocked, or
 * both NHWC).  One task per (filter block, input block): its window cells × CB filters
 * summed over the batch, a few output rows at a time (they stay in L1), in row order. */
static void blk_conv_bwd_filter(int nhwc, int n, int H, int W, int C, int KH, int KW, int F, const nn_real *x,
                                const nn_real *dy, nn_real *dw) {
    int OH = H - KH + 1, OW = W - KW + 1, cb = blk_of(C), ci_n = C / cb, fo_n = F / BLK_CB;
    int rows = KH * KW * cb, groups = (rows + BLK_RB - 1) / BLK_RB;
    int chunk = nnk_max_(1, nnk_min_(OH, 256 / OW));   /* output rows per pass over the cells */
    blk_lay xl = blk_lay_of(nhwc, H, W, C, cb), gl = blk_lay_of(nhwc, OH, OW, F, BLK_CB);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int fo = 0; fo < fo_n; fo++)
        for (int ci = 0; ci < ci_n; ci++) {
            nnk_vec_ *acc = aligned_alloc(64, (size_t)rows * 2 * sizeof(nnk_vec_) + 64);
            size_t *off = malloc((size_t)(rows + BLK_RB) * sizeof *off);
            for (int r = 0; r < rows * 2; r++) acc[r] = (nnk_vec_){0};
            for (int r = 0; r < rows; r++) {   /* row r = (kh, kw, c): HWIO's order within the block */
                int cell = r / cb, c = r % cb;
                off[r] = ((size_t)(cell / KW) * W + cell % KW) * xl.sp + c;
            }
            for (int b = 0; b < n; b++) {
                const nn_real *xs = x + b * xl.sb + ci * xl.sk, *dys = dy + b * gl.sb + fo * gl.sk;
                for (int oh0 = 0; oh0 < OH; oh0 += chunk) {
                    int oh1 = nnk_min_(OH, oh0 + chunk);
                    for (int g = 0; g < groups; g++) {
                        int r0, rb;
                        blk_tile(rows, BLK_RB, g, &r0, &rb);
#define BLK_CALL_(w) blk_filter_tile_(w, W, OW, oh0, oh1, xl, xs, off + r0, gl, dys, acc + (size_t)r0 * 2)
                        BLK_BY_WIDTH_(rb, BLK_CALL_);
#undef BLK_CALL_
                    }
                }
            }
            for (int r = 0; r < rows; r++) {
                int cell = r / cb, c = r % cb;
                nn_real *d = dw + ((size_t)cell * C + ci * cb + c) * F + fo * BLK_CB;
                *(nnk_vec_ *)d = acc[2 * r], *(nnk_vec_ *)(d + NNK_VEC_LANES) = acc[2 * r + 1];
            }
            free(acc), free(off);
        }
}

#endif
