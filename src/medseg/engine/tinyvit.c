/* LiteMedSAM's TinyViT image encoder in C, fp32, channels-last: (3, 256, 256) image -> (256, 64, 64).
 *
 * Built on first use by medseg.engine.native_graphs (cc -O3 -march=native); where no compiler or no AVX2 + FMA
 * is available, the engine is not offered and ONNX Runtime runs the exported graph instead. What it does that a graph runtime does not:
 * every layer works on rows or windows that stay in cache, and the bias, residual, GELU and LayerNorm
 * around each matrix product are applied to its tile while it is in registers or L1.
 *
 *   front:  1x1 stem, the MBConv blocks of stage 0 and the first patch merging, row by row, each
 *           block's 4x wider hidden rows in a ring of three (the 64 MiB tensors are never written).
 *   stages: per block, windowed attention band by band (norm + qkv of a band of window rows, attention
 *           per window and head, proj + residual), the 3x3 local convolution, the MLP on blocks of 48
 *           tokens (norm, fc1 + GELU, fc2 + residual); patch merging as in the front.
 *   neck:   1x1 + LayerNorm, 3x3 as one product per row on its 3x3 neighbourhoods + LayerNorm.
 *
 * Layouts: activations (H, W, C); 1x1 weights (cin, cout) row-major; depthwise 3x3 weights (9, C), tap
 * dy * 3 + dx; dense 3x3 weights (9 * cin, cout). Batch norms are folded and the attention's queries
 * pre-scaled by the caller (medseg.engine.fast_encoder.native_arrays), which also writes the parameter
 * stream in the order read here. Channel counts must be multiples of 16.
 */
#include "tinyvit_ops.h"

/* ---- front: stem, MBConv, patch merging ----------------------------------------------------------- */

/* Expand (1x1 + GELU), depthwise 3x3 (+ GELU), project (1x1): MBConv (residual, then GELU) or
 * PatchMerging (no residual, no GELU after the projection). */
typedef struct { Dense expand; const float *dw_w, *dw_b; Dense project; } Block;
typedef struct { const Block *blk; int H, W, stride, residual; const float *x; float *y; } BlockCtx;

/* Output rows [r0, r1) of a block, the expanded input rows in a ring of three (plus a zero row). */
static void block_rows(const void *ctx, int r0, int r1, int *failed) {
    const BlockCtx *cx = ctx;
    const Block *bk = cx->blk;
    int H = cx->H, W = cx->W, s = cx->stride, C = bk->expand.k, hid = bk->expand.n, w_out = W / s;
    size_t row = (size_t)(W + 2) * hid;
    float *ring = scratch(4 * row + (size_t)w_out * hid, failed);
    if (!ring) return;
    float *zero = ring + 3 * row, *dwo = ring + 4 * row;
    memset(ring, 0, 4 * row * sizeof(float));
    int have = -2; /* highest expanded input row computed so far */
    for (int r = r0; r < r1; r++) {
        int lo = r * s - 1, hi = r * s + 1; /* input rows read by output row r */
        if (have < lo - 1) have = lo - 1;
        for (int i = have + 1; i <= hi && i < H; i++) {
            if (i >= 0) dense(&bk->expand, W, cx->x + (size_t)i * W * C, C, 0, 0, ring + (i % 3) * row + hid, hid, 1);
            have = i;
        }
        const float *t = lo >= 0 ? ring + (lo % 3) * row : zero;
        const float *m = ring + ((r * s) % 3) * row;
        const float *b = hi < H ? ring + (hi % 3) * row : zero;
        depthwise_row(w_out, s, hid, t, m, b, bk->dw_w, bk->dw_b, dwo, 1);
        int cout = bk->project.n;
        float *y = cx->y + (size_t)r * w_out * cout;
        if (cx->residual)
            dense(&bk->project, w_out, dwo, hid, cx->x + (size_t)r * W * C, C, y, cout, 1);
        else
            dense(&bk->project, w_out, dwo, hid, 0, 0, y, cout, 0);
    }
    free(ring);
}

typedef struct { const Dense *s1, *s2; const float *img; float *y; int H, W; } StemCtx;

/* 1x1 stem on rows [r0, r1): (3, H, W) planes -> (H, W, C), GELU between its two layers. */
static void stem_rows(const void *ctx, int r0, int r1, int *failed) {
    const StemCtx *cx = ctx;
    int W = cx->W, HW = cx->H * cx->W, k = cx->s1->k, mid = cx->s1->n, C = cx->s2->n;
    float *px = scratch((size_t)W * (k + mid), failed);
    if (!px) return;
    float *hidden = px + (size_t)W * k;
    for (int r = r0; r < r1; r++) {
        for (int x = 0; x < W; x++)
            for (int c = 0; c < k; c++) px[x * k + c] = cx->img[(size_t)c * HW + (size_t)r * W + x];
        dense(cx->s1, W, px, k, 0, 0, hidden, mid, 1);
        dense(cx->s2, W, hidden, mid, 0, 0, cx->y + (size_t)r * W * C, C, 0);
    }
    free(px);
}

/* ---- parameter stream ------------------------------------------------------------------------------ */

typedef struct { const float *p; } Stream;

static const float *take(Stream *s, size_t n) {
    const float *p = s->p;
    s->p += n;
    return p;
}
static Dense take_dense(Stream *s, int k, int n) {
    Dense d;
    d.w = take(s, (size_t)k * n);
    d.b = take(s, n);
    d.k = k;
    d.n = n;
    return d;
}
static Norm take_norm(Stream *s, int c) {
    Norm n;
    n.eps = *take(s, 1);
    n.g = take(s, c);
    n.b = take(s, c);
    n.c = c;
    return n;
}
static Block take_block(Stream *s, int c, int hid, int cout) {
    Block b;
    b.expand = take_dense(s, c, hid);
    b.dw_w = take(s, 9 * (size_t)hid);
    b.dw_b = take(s, hid);
    b.project = take_dense(s, hid, cout);
    return b;
}

/* image (3, H, W) -> tokens (H/2, W/2, cout) of the first patch merging; work: 2 H W c floats. */
static int front(const float *image, int H, int W, Stream *ps, int mid, int c, int hid, int blocks, int cout,
                 float *work, float *tokens, int threads, volatile int *stop) {
    Dense s1 = take_dense(ps, 3, mid), s2 = take_dense(ps, mid, c);
    float *a = work, *b = work + (size_t)H * W * c;
    StemCtx sc = {&s1, &s2, image, a, H, W};
    int failed = parallel(stem_rows, &sc, H, threads);
    if (failed) return failed;
    for (int n = 0; n <= blocks; n++) {
        int merging = n == blocks;
        Block bk = take_block(ps, c, merging ? cout : hid, merging ? cout : c);
        BlockCtx bc = {&bk, H, W, merging ? 2 : 1, !merging, a, merging ? tokens : b};
        if (stop && *stop) return 2;
        if ((failed = parallel(block_rows, &bc, H / bc.stride, threads))) return failed;
        float *t = a;
        a = b;
        b = t;
    }
    return 0;
}

/* ---- windowed attention ---------------------------------------------------------------------------- */

#define ROUND16(n) (((n) + 15) / 16 * 16)

typedef struct { Norm norm; Dense qkv; const float *fill, *bias; Dense proj; } Attn;
typedef struct { const Attn *at; float *x; int H, W, C, heads, ws; } AttnCtx;

/* x += proj(attention) for the window rows (bands) [b0, b1). qkv columns are (heads, 3, d), the
 * queries pre-scaled; a padding token's qkv is `fill`; bias is (heads, N, ROUND16(N)). */
static void attention_bands(const void *ctx, int b0, int b1, int *failed) {
    const AttnCtx *cx = ctx;
    const Attn *at = cx->at;
    int H = cx->H, W = cx->W, C = cx->C, ws = cx->ws, heads = cx->heads, d = C / heads;
    int nw = (W + ws - 1) / ws, Wp = nw * ws, N = ws * ws, Np = ROUND16(N), C3 = 3 * C;
    size_t band = (size_t)ws * Wp;
    float *buf = scratch(band * C3 + band * C + (size_t)W * C + 3 * (size_t)N * d + (size_t)d * Np +
                         (size_t)N * Np + Np + d, failed);
    if (!buf) return;
    float *qkvb = buf, *outb = qkvb + band * C3, *normed = outb + band * C, *q = normed + (size_t)W * C;
    float *v = q + (size_t)N * d, *o = v + (size_t)N * d, *kt = o + (size_t)N * d, *s = kt + (size_t)d * Np;
    float *zeros = s + (size_t)N * Np;
    memset(kt, 0, (size_t)d * Np * sizeof(float));
    memset(zeros, 0, (Np + d) * sizeof(float));
    Dense scores = {kt, zeros, d, Np}, mix = {v, zeros, N, d};
    for (int by = b0; by < b1; by++) {
        for (int r = 0; r < ws; r++) {
            int y = by * ws + r, real = y < H ? W : 0;
            float *dst = qkvb + (size_t)r * Wp * C3;
            for (int x = 0; x < real; x++) norm_token(&at->norm, cx->x + ((size_t)y * W + x) * C, normed + (size_t)x * C);
            if (real) dense(&at->qkv, W, normed, C, 0, 0, dst, C3, 0);
            for (int x = real; x < Wp; x++) memcpy(dst + (size_t)x * C3, at->fill, C3 * sizeof(float));
        }
        for (int wx = 0; wx < nw; wx++) {
            for (int h = 0; h < heads; h++) {
                for (int t = 0; t < N; t++) {
                    const float *src = qkvb + ((size_t)(t / ws) * Wp + wx * ws + t % ws) * C3 + (size_t)h * 3 * d;
                    memcpy(q + (size_t)t * d, src, d * sizeof(float));
                    for (int k = 0; k < d; k++) kt[(size_t)k * Np + t] = src[d + k];
                    memcpy(v + (size_t)t * d, src + 2 * d, d * sizeof(float));
                }
                dense(&scores, N, q, d, at->bias + (size_t)h * N * Np, Np, s, Np, 0);
                for (int i = 0; i < N; i++) softmax(s + (size_t)i * Np, N, Np);
                dense(&mix, N, s, Np, 0, 0, o, d, 0);
                for (int t = 0; t < N; t++)
                    memcpy(outb + ((size_t)(t / ws) * Wp + wx * ws + t % ws) * C + (size_t)h * d, o + (size_t)t * d,
                           d * sizeof(float));
            }
        }
        for (int r = 0; r < ws && by * ws + r < H; r++) {
            float *xr = cx->x + (size_t)(by * ws + r) * W * C;
            dense(&at->proj, W, outb + (size_t)r * Wp * C, C, xr, C, xr, C, 0);
        }
    }
    free(buf);
}

/* ---- local convolution, MLP ------------------------------------------------------------------------- */

typedef struct { const float *w, *b; float *x, *pad; int H, W, C; } ConvCtx;

/* Rows [r0, r1) of x copied into the zero-bordered (H + 2, W + 2, C) pad. */
static void pad_rows(const void *ctx, int r0, int r1, int *failed) {
    const ConvCtx *cx = ctx;
    size_t C = cx->C, wp = (size_t)(cx->W + 2) * C;
    (void)failed;
    for (int r = r0; r < r1; r++) memcpy(cx->pad + (r + 1) * wp + C, cx->x + (size_t)r * cx->W * C, cx->W * C * sizeof(float));
}

/* x rows [r0, r1) = depthwise 3x3 + bias of the pad (no activation). */
static void conv_rows(const void *ctx, int r0, int r1, int *failed) {
    const ConvCtx *cx = ctx;
    size_t wp = (size_t)(cx->W + 2) * cx->C;
    (void)failed;
    for (int r = r0; r < r1; r++)
        depthwise_row(cx->W, 1, cx->C, cx->pad + r * wp, cx->pad + (r + 1) * wp, cx->pad + (r + 2) * wp, cx->w, cx->b,
                      cx->x + (size_t)r * cx->W * cx->C, 0);
}

static void clear_border(float *pad, int H, int W, int C) {
    size_t wp = (size_t)(W + 2) * C;
    memset(pad, 0, wp * sizeof(float));
    memset(pad + (H + 1) * wp, 0, wp * sizeof(float));
    for (int r = 1; r <= H; r++) {
        memset(pad + r * wp, 0, C * sizeof(float));
        memset(pad + r * wp + (size_t)(W + 1) * C, 0, C * sizeof(float));
    }
}

#define MLP_TOKENS 48
typedef struct { Norm norm; Dense fc1, fc2; } Mlp;
typedef struct { const Mlp *m; float *x; int tokens; } MlpCtx;

/* x += fc2(GELU(fc1(norm(x)))) for the blocks of MLP_TOKENS tokens [b0, b1). */
static void mlp_blocks(const void *ctx, int b0, int b1, int *failed) {
    const MlpCtx *cx = ctx;
    int C = cx->m->norm.c, hid = cx->m->fc1.n;
    float *normed = scratch((size_t)MLP_TOKENS * (C + hid), failed);
    if (!normed) return;
    float *hidden = normed + (size_t)MLP_TOKENS * C;
    for (int b = b0; b < b1; b++) {
        int t0 = b * MLP_TOKENS, n = cx->tokens - t0 < MLP_TOKENS ? cx->tokens - t0 : MLP_TOKENS;
        float *x = cx->x + (size_t)t0 * C;
        for (int t = 0; t < n; t++) norm_token(&cx->m->norm, x + (size_t)t * C, normed + (size_t)t * C);
        dense(&cx->m->fc1, n, normed, C, 0, 0, hidden, hid, 1);
        dense(&cx->m->fc2, n, hidden, hid, x, C, x, C, 0);
    }
    free(normed);
}

/* ---- neck ------------------------------------------------------------------------------------------- */

typedef struct { Dense conv1; Norm n1; Dense conv3; Norm n3; const float *x; float *pad, *out; int H, W; } NeckCtx;

/* pad interior rows [r0, r1) = LayerNorm(x @ conv1). */
static void neck_in(const void *ctx, int r0, int r1, int *failed) {
    const NeckCtx *cx = ctx;
    int W = cx->W, C = cx->conv1.k, Co = cx->conv1.n;
    float *tmp = scratch((size_t)W * Co, failed);
    if (!tmp) return;
    size_t wp = (size_t)(W + 2) * Co;
    for (int r = r0; r < r1; r++) {
        dense(&cx->conv1, W, cx->x + (size_t)r * W * C, C, 0, 0, tmp, Co, 0);
        for (int x = 0; x < W; x++) norm_token(&cx->n1, tmp + (size_t)x * Co, cx->pad + (r + 1) * wp + (size_t)(x + 1) * Co);
    }
    free(tmp);
}

/* out (Co, H, W) rows [r0, r1) = LayerNorm(3x3 convolution of the pad), as one product per row on the
 * rows' 3x3 neighbourhoods. */
static void neck_out(const void *ctx, int r0, int r1, int *failed) {
    const NeckCtx *cx = ctx;
    int H = cx->H, W = cx->W, Co = cx->conv3.n, K = cx->conv3.k;
    float *cols = scratch((size_t)W * K + 2 * (size_t)W * Co, failed);
    if (!cols) return;
    float *tmp = cols + (size_t)W * K, *normed = tmp + (size_t)W * Co;
    size_t wp = (size_t)(W + 2) * Co;
    for (int r = r0; r < r1; r++) {
        for (int x = 0; x < W; x++)
            for (int dy = 0; dy < 3; dy++)
                memcpy(cols + (size_t)x * K + (size_t)dy * 3 * Co, cx->pad + (r + dy) * wp + (size_t)x * Co,
                       3 * Co * sizeof(float));
        dense(&cx->conv3, W, cols, K, 0, 0, tmp, Co, 0);
        for (int x = 0; x < W; x++) norm_token(&cx->n3, tmp + (size_t)x * Co, normed + (size_t)x * Co);
        for (int c = 0; c < Co; c++)
            for (int x = 0; x < W; x++) cx->out[((size_t)c * H + r) * W + x] = normed[(size_t)x * Co + c];
    }
    free(cols);
}

/* ---- the encoder ------------------------------------------------------------------------------------ */

/* dims: side, stem width, c0, hidden0, MBConv blocks, c1 (first merging's output), stages after the
 * front, then per stage: heads, window, depth, MLP hidden, merging output (0: none, the last stage),
 * merging stride; then the neck's channels. */
typedef struct { int side, mid, c0, hid0, blocks0, c1, stages; const int *stage; int neck; } Dims;

static Dims read_dims(const int *d) {
    Dims m = {d[0], d[1], d[2], d[3], d[4], d[5], d[6], d + 7, d[7 + 6 * d[6]]};
    return m;
}

/* Floats of the work buffer medseg_encoder needs: three regions of the largest tensor it holds. */
long medseg_encoder_work(const int *dims) {
    Dims m = read_dims(dims);
    size_t big = (size_t)m.side * m.side * m.c0, side = m.side / 2, c = m.c1;
    for (int s = 0; s < m.stages; s++) {
        const int *st = m.stage + 6 * s;
        size_t padded = (side + 2) * (side + 2) * c;
        if (padded > big) big = padded;
        if (st[4]) {
            side /= st[5];
            c = st[4];
        }
        if (side * side * c > big) big = side * side * c;
    }
    if ((side + 2) * (side + 2) * m.neck > big) big = (side + 2) * (side + 2) * m.neck;
    return (long)(3 * big);
}

/* image (3, side, side) -> out (neck, side / 8, side / 8) for LiteMedSAM's layout. Returns 0; 1 if memory
 * or threads ran out; 2 if *stop became nonzero (checked between layers and between pieces of each layer's
 * rows, ``running_stop``). */
int medseg_encoder(const float *image, const float *params, const int *dims, float *work, float *out,
                   int threads, volatile int *stop) {
    running_stop = stop;
    Dims m = read_dims(dims);
    size_t third = (size_t)medseg_encoder_work(dims) / 3;
    float *pad = work, *xa = work + third, *xb = work + 2 * third;
    Stream ps = {params};
    /* the front's two tensors are the first two regions; its tokens go to the third */
    int failed = front(image, m.side, m.side, &ps, m.mid, m.c0, m.hid0, m.blocks0, m.c1, work, xb, threads, stop);
    if (failed) return failed;
    float *x = xb, *other = xa;
    int side = m.side / 2, C = m.c1;
    for (int s = 0; s < m.stages; s++) {
        const int *st = m.stage + 6 * s;
        int heads = st[0], ws = st[1], depth = st[2], hid = st[3], cout = st[4], stride = st[5];
        int tokens = side * side;
        for (int b = 0; b < depth; b++) {
            if (stop && *stop) return 2;
            Attn at;
            at.norm = take_norm(&ps, C);
            at.qkv = take_dense(&ps, C, 3 * C);
            at.fill = take(&ps, 3 * (size_t)C);
            at.bias = take(&ps, (size_t)heads * ws * ws * ROUND16(ws * ws));
            at.proj = take_dense(&ps, C, C);
            AttnCtx ac = {&at, x, side, side, C, heads, ws};
            if ((failed = parallel(attention_bands, &ac, (side + ws - 1) / ws, threads))) return failed;
            ConvCtx cc = {take(&ps, 9 * (size_t)C), 0, x, pad, side, side, C};
            cc.b = take(&ps, C);
            clear_border(pad, side, side, C);
            if ((failed = parallel(pad_rows, &cc, side, threads)) || (failed = parallel(conv_rows, &cc, side, threads)))
                return failed;
            Mlp mlp;
            mlp.norm = take_norm(&ps, C);
            mlp.fc1 = take_dense(&ps, C, hid);
            mlp.fc2 = take_dense(&ps, hid, C);
            MlpCtx mc = {&mlp, x, tokens};
            if ((failed = parallel(mlp_blocks, &mc, (tokens + MLP_TOKENS - 1) / MLP_TOKENS, threads))) return failed;
        }
        if (cout) {
            Block bk = take_block(&ps, C, cout, cout);
            BlockCtx bc = {&bk, side, side, stride, 0, x, other};
            if ((failed = parallel(block_rows, &bc, side / stride, threads))) return failed;
            float *t = x;
            x = other;
            other = t;
            side /= stride;
            C = cout;
        }
    }
    NeckCtx nc;
    nc.conv1 = take_dense(&ps, C, m.neck);
    nc.n1 = take_norm(&ps, m.neck);
    nc.conv3 = take_dense(&ps, 9 * m.neck, m.neck);
    nc.n3 = take_norm(&ps, m.neck);
    nc.x = x;
    nc.pad = pad;
    nc.out = out;
    nc.H = nc.W = side;
    clear_border(pad, side, side, m.neck);
    if ((failed = parallel(neck_in, &nc, side, threads)) || (failed = parallel(neck_out, &nc, side, threads)))
        return failed;
    return stop && *stop ? 2 : 0;
}
