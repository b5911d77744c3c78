/* TinyViT's full-resolution front in one pass per block: 1x1 stem, the MBConv blocks of stage 0 and the
 * first patch merging, fp32, channels-last, row by row so that each block's 4x wider hidden rows stay
 * in cache and every GELU is applied in registers right after the product that feeds it.
 *
 * Built on first use by medseg.engine.native_front (cc -O3 -march=native); the ONNX graph of the same
 * layers is used where no compiler or no AVX2/AVX-512 is available. Layouts:
 *   image  (3, H, W) planes;  activations (H, W, C) channels-last;  output tokens (H/2, W/2, cout).
 *   1x1 weights (cin, cout) row-major; depthwise 3x3 weights (9, C), tap (dy * 3 + dx).
 * Batch norms are folded into the weights by the caller. Channel counts must be multiples of 16.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
typedef __m512 V;
#define VL 16
#define NV 4
static inline V vld(const float *p) { return _mm512_loadu_ps(p); }
static inline void vst(float *p, V v) { _mm512_storeu_ps(p, v); }
static inline V vset(float x) { return _mm512_set1_ps(x); }
static inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
static inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
static inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
static inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
static inline V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
static inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
static inline V vabs(V a) { return _mm512_abs_ps(a); }
static inline V vround(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline V vscale2(V p, V k) { return _mm512_scalef_ps(p, k); } /* p * 2^k */
static inline V vselect_neg(V x, V if_neg, V if_pos) {                /* x < 0 ? if_neg : if_pos */
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), if_pos, if_neg);
}
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 V;
#define VL 8
#define NV 2
static inline V vld(const float *p) { return _mm256_loadu_ps(p); }
static inline void vst(float *p, V v) { _mm256_storeu_ps(p, v); }
static inline V vset(float x) { return _mm256_set1_ps(x); }
static inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
static inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
static inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
static inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
static inline V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
static inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
static inline V vabs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline V vround(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline V vscale2(V p, V k) {
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
static inline V vselect_neg(V x, V if_neg, V if_pos) {
    return _mm256_blendv_ps(if_pos, if_neg, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
}
#else
#error "medseg front: needs AVX2 with FMA, or AVX-512"
#endif

#define NR (NV * VL) /* output channels of the widest register tile: 64 (AVX-512) or 16 (AVX2) */

/* exp(x) for x in [-87, 0]: x = k ln2 + r, |r| <= ln2 / 2, e^r by its Taylor series to r^6 (1.2e-7). */
static inline V vexp_neg(V x) {
    x = vmax(x, vset(-87.0f));
    V k = vround(vmul(x, vset(1.44269504088896341f)));
    V r = vfma(k, vset(-0.693145751953125f), x);      /* ln2, high part (exact product) */
    r = vfma(k, vset(-1.428606765330187e-06f), r);    /* ln2, low part */
    V p = vset(1.0f / 720);
    p = vfma(p, r, vset(1.0f / 120));
    p = vfma(p, r, vset(1.0f / 24));
    p = vfma(p, r, vset(1.0f / 6));
    p = vfma(p, r, vset(0.5f));
    p = vfma(p, r, vset(1.0f));
    p = vfma(p, r, vset(1.0f));
    return vscale2(p, k);
}

/* GELU with the erf: x/2 (1 + erf(x / sqrt 2)). erfc(z) for z >= 0 as t P(t) exp(-z^2), t = 1 / (1 +
 * 0.3275911 z), absolute error below 1.5e-7 (Abramowitz and Stegun 7.1.26); 1 + erf(x / sqrt 2) is
 * erfc(z) for x < 0 and 2 - erfc(z) for x >= 0, z = |x| / sqrt 2. Against the exact GELU: absolute
 * error below 4.2e-7 on [-8, 8], 0.23 ns a value on one Zen 5 core (a 10-term erfc fit: 3.7e-7, 0.43 ns). */
static inline V vgelu(V x) {
    V z = vmul(vabs(x), vset(0.70710678118654752f));
    V t = vdiv(vset(1.0f), vfma(z, vset(0.3275911f), vset(1.0f)));
    V p = vset(1.061405429f);
    p = vfma(p, t, vset(-1.453152027f));
    p = vfma(p, t, vset(1.421413741f));
    p = vfma(p, t, vset(-0.284496736f));
    p = vfma(p, t, vset(0.254829592f));
    V e = vmul(vmul(p, t), vexp_neg(vmul(z, vsub(vset(0.0f), z))));
    V one_plus_erf = vselect_neg(x, e, vsub(vset(2.0f), e));
    return vmul(vmul(x, vset(0.5f)), one_plus_erf);
}

/* A 1x1 convolution (a dense layer on channels): weights (k, n) row-major, bias (n). */
typedef struct { const float *w, *b; int k, n; } Dense;

/* R pixels x NW vectors of channels from column j: out = act(a @ w[:, j:] + b (+ res)), the
 * accumulators in registers, the bias, residual and GELU applied before the one store. */
#define TILE(R, NW)                                                                                   \
    static inline void tile_##R##_##NW(const Dense *d, int j, const float *a, int lda, const float *res, \
                                       int ldr, float *out, int ldo, int gelu) {                      \
        V acc[R][NW];                                                                                 \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                           \
            _Pragma("GCC unroll 4") for (int v = 0; v < NW; v++) acc[r][v] = vld(d->b + j + v * VL);  \
        const float *w = d->w + j;                                                                    \
        for (int k = 0; k < d->k; k++) {                                                              \
            V b[NW];                                                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < NW; v++) b[v] = vld(w + (size_t)k * d->n + v * VL); \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                     \
                V x = vset(a[r * lda + k]);                                                           \
                _Pragma("GCC unroll 4") for (int v = 0; v < NW; v++) acc[r][v] = vfma(x, b[v], acc[r][v]); \
            }                                                                                         \
        }                                                                                             \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                           \
            _Pragma("GCC unroll 4") for (int v = 0; v < NW; v++) {                                    \
                V y = acc[r][v];                                                                      \
                if (res) y = vadd(y, vld(res + r * ldr + j + v * VL));                                \
                if (gelu) y = vgelu(y);                                                               \
                vst(out + r * ldo + j + v * VL, y);                                                   \
            }                                                                                         \
    }
TILE(6, NV)
TILE(1, NV)
TILE(6, 1)
TILE(1, 1)

/* M pixels (rows of a, lda apart) through a dense layer into out (ldo apart); n a multiple of VL. */
static void dense(const Dense *d, int M, const float *a, int lda, const float *res, int ldr, float *out,
                  int ldo, int gelu) {
    int j = 0;
    for (; j + NR <= d->n; j += NR) {
        int m = 0;
        for (; m + 6 <= M; m += 6)
            tile_6_NV(d, j, a + m * lda, lda, res ? res + m * ldr : 0, ldr, out + m * ldo, ldo, gelu);
        for (; m < M; m++)
            tile_1_NV(d, j, a + m * lda, lda, res ? res + m * ldr : 0, ldr, out + m * ldo, ldo, gelu);
    }
    for (; j < d->n; j += VL) {
        int m = 0;
        for (; m + 6 <= M; m += 6)
            tile_6_1(d, j, a + m * lda, lda, res ? res + m * ldr : 0, ldr, out + m * ldo, ldo, gelu);
        for (; m < M; m++)
            tile_1_1(d, j, a + m * lda, lda, res ? res + m * ldr : 0, ldr, out + m * ldo, ldo, gelu);
    }
}

/* One output row of a 3x3 depthwise convolution + bias + GELU. top / mid / bot are input rows of
 * (w_in + 2) pixels, C channels, with a zero pixel on each side; output pixel x reads padded pixels
 * x * stride .. x * stride + 2. */
static void depthwise_row(int w_out, int stride, int C, const float *top, const float *mid, const float *bot,
                          const float *wt, const float *b, float *out) {
    const float *rows[3] = {top, mid, bot};
    for (int x = 0; x < w_out; x++) {
        for (int c = 0; c < C; c += VL) {
            V acc = vld(b + c);
            for (int dy = 0; dy < 3; dy++) {
                const float *p = rows[dy] + (size_t)x * stride * C + c;
                acc = vfma(vld(p), vld(wt + (dy * 3 + 0) * C + c), acc);
                acc = vfma(vld(p + C), vld(wt + (dy * 3 + 1) * C + c), acc);
                acc = vfma(vld(p + 2 * C), vld(wt + (dy * 3 + 2) * C + c), acc);
            }
            vst(out + (size_t)x * C + c, vgelu(acc));
        }
    }
}

/* Expand (1x1 + GELU), depthwise 3x3 (+ GELU), project (1x1): the shape of MBConv and PatchMerging. */
typedef struct { Dense expand; const float *dw_w, *dw_b; Dense project; } Block;

typedef struct {
    const Block *blk;
    int H, W, stride, residual; /* residual: MBConv (project + x, then GELU); else PatchMerging */
    const float *x;             /* (H, W, C) input */
    float *y;                   /* (H/stride, W/stride, C') output */
    int r0, r1;                 /* output rows of this worker */
} BlockJob;

/* The output rows [r0, r1) of a block, the expanded rows in a ring of three (plus a zero row). */
static void *block_rows(void *arg) {
    const BlockJob *jb = arg;
    const Block *bk = jb->blk;
    int H = jb->H, W = jb->W, s = jb->stride, C = bk->expand.k, hid = bk->expand.n;
    int w_out = W / s;
    size_t row = (size_t)(W + 2) * hid;
    float *ring = aligned_alloc(64, (4 * row + (size_t)w_out * hid) * sizeof(float));
    if (!ring) return (void *)1;
    float *zero = ring + 3 * row, *dwo = ring + 4 * row;
    memset(ring, 0, 4 * row * sizeof(float));
    int have = -2; /* highest expanded input row computed so far */
    for (int r = jb->r0; r < jb->r1; r++) {
        int lo = r * s - 1, hi = r * s + 1; /* input rows read by output row r */
        if (have < lo - 1) have = lo - 1;
        for (int i = have + 1; i <= hi && i < H; i++) {
            if (i >= 0) dense(&bk->expand, W, jb->x + (size_t)i * W * C, C, 0, 0, ring + (i % 3) * row + hid, hid, 1);
            have = i;
        }
        const float *t = lo >= 0 ? ring + (lo % 3) * row : zero;
        const float *m = ring + ((r * s) % 3) * row;
        const float *b = hi < H ? ring + (hi % 3) * row : zero;
        depthwise_row(w_out, s, hid, t, m, b, bk->dw_w, bk->dw_b, dwo);
        int cout = bk->project.n;
        float *y = jb->y + (size_t)r * w_out * cout;
        if (jb->residual)
            dense(&bk->project, w_out, dwo, hid, jb->x + (size_t)r * W * C, C, y, cout, 1);
        else
            dense(&bk->project, w_out, dwo, hid, 0, 0, y, cout, 0);
    }
    free(ring);
    return 0;
}

typedef struct { const Dense *s1, *s2; const float *img; float *y; int H, W, r0, r1; } StemJob;

/* 1x1 stem on rows [r0, r1): (3, H, W) planes -> (H, W, C), GELU between its two layers. */
static void *stem_rows(void *arg) {
    const StemJob *jb = arg;
    int W = jb->W, HW = jb->H * jb->W, k = jb->s1->k, mid = jb->s1->n, C = jb->s2->n;
    float *buf = aligned_alloc(64, (size_t)W * (k + mid) * sizeof(float));
    if (!buf) return (void *)1;
    float *px = buf, *hidden = buf + (size_t)W * k;
    for (int r = jb->r0; r < jb->r1; r++) {
        for (int x = 0; x < W; x++)
            for (int c = 0; c < k; c++) px[x * k + c] = jb->img[(size_t)c * HW + (size_t)r * W + x];
        dense(jb->s1, W, px, k, 0, 0, hidden, mid, 1);
        dense(jb->s2, W, hidden, mid, 0, 0, jb->y + (size_t)r * W * C, C, 0);
    }
    free(buf);
    return 0;
}

/* Run fn on jobs[0..n) (n <= 8), jobs[0] on the calling thread; nonzero if any failed. */
static int run_jobs(void *(*fn)(void *), void *jobs, size_t size, int n) {
    pthread_t th[8];
    int started[8] = {0}, failed = 0;
    for (int i = 1; i < n; i++) started[i] = pthread_create(&th[i], 0, fn, (char *)jobs + i * size) == 0;
    for (int i = 1; i < n; i++)
        if (!started[i]) failed |= fn((char *)jobs + i * size) != 0;
    failed |= fn(jobs) != 0;
    for (int i = 1; i < n; i++)
        if (started[i]) {
            void *ret;
            pthread_join(th[i], &ret);
            failed |= ret != 0;
        }
    return failed;
}

int medseg_front_lanes(void) { return NR; }

/* image (3, H, W) -> tokens (H/2, W/2, cout). params: stem1 w (3, mid) b (mid), stem2 w (mid, c) b (c);
 * per MBConv block: expand w (c, hid) b (hid), dw w (9, hid) b (hid), project w (hid, c) b (c); merging:
 * expand w (c, cout) b (cout), dw w (9, cout) b (cout), project w (cout, cout) b (cout). work: two
 * (H, W, c) buffers. Returns 0, or 1 if memory or threads ran out. */
int medseg_front(const float *image, int H, int W, const float *p, int mid, int c, int hid, int blocks,
                 int cout, float *work, float *tokens, int threads) {
    if (threads < 1) threads = 1;
    if (threads > 8) threads = 8;
    Dense s1 = {p, p + 3 * mid, 3, mid};
    p += 3 * mid + mid;
    Dense s2 = {p, p + mid * c, mid, c};
    p += mid * c + c;
    float *a = work, *b = work + (size_t)H * W * c;
    StemJob sj[8];
    for (int i = 0; i < threads; i++)
        sj[i] = (StemJob){&s1, &s2, image, a, H, W, H * i / threads, H * (i + 1) / threads};
    if (run_jobs(stem_rows, sj, sizeof(StemJob), threads)) return 1;
    for (int n = 0; n <= blocks; n++) {
        int merging = n == blocks, co = merging ? cout : c, s = merging ? 2 : 1;
        Block bk;
        bk.expand = (Dense){p, p + c * (merging ? cout : hid), c, merging ? cout : hid};
        int h = bk.expand.n;
        p += c * h + h;
        bk.dw_w = p;
        bk.dw_b = p + 9 * h;
        p += 10 * h;
        bk.project = (Dense){p, p + h * co, h, co};
        p += h * co + co;
        BlockJob bj[8];
        int rows = H / s;
        for (int i = 0; i < threads; i++)
            bj[i] = (BlockJob){&bk, H, W, s, !merging, a, merging ? tokens : b, rows * i / threads,
                               rows * (i + 1) / threads};
        if (run_jobs(block_rows, bj, sizeof(BlockJob), threads)) return 1;
        float *t = a;
        a = b;
        b = t;
    }
    return 0;
}
