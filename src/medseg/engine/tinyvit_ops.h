/* Building blocks of tinyvit.c: vectors (AVX-512 or AVX2 + FMA), GELU and exp, the register-tiled
 * matrix product with its fused epilogue, LayerNorm, softmax, the 3x3 depthwise row, and threads. */
#ifndef MEDSEG_TINYVIT_OPS_H
#define MEDSEG_TINYVIT_OPS_H
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
static inline float vsum(V a) { return _mm512_reduce_add_ps(a); }
static inline float vhmax(V a) { return _mm512_reduce_max_ps(a); }
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
static inline float vsum(V a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static inline float vhmax(V a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
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

/* ---- products ------------------------------------------------------------------------------------ */

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
                V x = vset(a[(size_t)r * lda + k]);                                                   \
                _Pragma("GCC unroll 4") for (int v = 0; v < NW; v++) acc[r][v] = vfma(x, b[v], acc[r][v]); \
            }                                                                                         \
        }                                                                                             \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                           \
            _Pragma("GCC unroll 4") for (int v = 0; v < NW; v++) {                                    \
                V y = acc[r][v];                                                                      \
                if (res) y = vadd(y, vld(res + (size_t)r * ldr + j + v * VL));                        \
                if (gelu) y = vgelu(y);                                                               \
                vst(out + (size_t)r * ldo + j + v * VL, y);                                           \
            }                                                                                         \
    }
TILE(6, NV)
TILE(4, NV)
TILE(2, NV)
TILE(1, NV)
TILE(6, 2)
TILE(1, 2)
TILE(6, 1)
TILE(1, 1)

#define TILE_AT(T, m) T(d, j, a + (size_t)(m) * lda, lda, res ? res + (size_t)(m) * ldr : 0, ldr, out + (size_t)(m) * ldo, ldo, gelu)
/* the rows of one column block: tiles of 6, then one of 4 and one of 2 (the widest blocks, whose leftover
 * rows cost most one at a time), then single rows */
#define TILE_ROWS(T6, T1)                                                                             \
    {                                                                                                 \
        int m = 0;                                                                                    \
        for (; m + 6 <= M; m += 6) TILE_AT(T6, m);                                                    \
        for (; m < M; m++) TILE_AT(T1, m);                                                            \
    }
#define TILE_ROWS_WIDE(T6, T4, T2, T1)                                                                \
    {                                                                                                 \
        int m = 0;                                                                                    \
        for (; m + 6 <= M; m += 6) TILE_AT(T6, m);                                                    \
        if (m + 4 <= M) TILE_AT(T4, m), m += 4;                                                       \
        if (m + 2 <= M) TILE_AT(T2, m), m += 2;                                                       \
        for (; m < M; m++) TILE_AT(T1, m);                                                            \
    }

/* M pixels (rows of a, lda apart) through a dense layer into out (ldo apart); n a multiple of VL.
 * res (ldr apart) is added before the GELU; out may be res. */
static void dense(const Dense *d, int M, const float *a, int lda, const float *res, int ldr, float *out,
                  int ldo, int gelu) {
    int j = 0;
    for (; j + NV * VL <= d->n; j += NV * VL) TILE_ROWS_WIDE(tile_6_NV, tile_4_NV, tile_2_NV, tile_1_NV)
    for (; j + 2 * VL <= d->n; j += 2 * VL) TILE_ROWS(tile_6_2, tile_1_2)
    for (; j < d->n; j += VL) TILE_ROWS(tile_6_1, tile_1_1)
}

/* ---- elementwise --------------------------------------------------------------------------------- */

typedef struct { float eps; const float *g, *b; int c; } Norm;

/* LayerNorm of one token (c values). */
static void norm_token(const Norm *n, const float *x, float *y) {
    int C = n->c;
    V s = vset(0.0f);
    for (int c = 0; c < C; c += VL) s = vadd(s, vld(x + c));
    V mean = vset(vsum(s) / C), q = vset(0.0f);
    for (int c = 0; c < C; c += VL) {
        V d = vsub(vld(x + c), mean);
        q = vfma(d, d, q);
    }
    V r = vset(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(vsum(q) / C + n->eps))));
    for (int c = 0; c < C; c += VL) vst(y + c, vfma(vmul(vsub(vld(x + c), mean), r), vld(n->g + c), vld(n->b + c)));
}

/* Softmax of s[0..n) in place; s has room for np >= n values (a multiple of VL), the rest overwritten. */
static void softmax(float *s, int n, int np) {
    for (int j = n; j < np; j++) s[j] = -1e30f;
    V m = vld(s);
    for (int j = VL; j < np; j += VL) m = vmax(m, vld(s + j));
    V top = vset(vhmax(m)), sum = vset(0.0f);
    for (int j = 0; j < np; j += VL) {
        V e = vexp_neg(vsub(vld(s + j), top));
        vst(s + j, e);
        sum = vadd(sum, e);
    }
    V inv = vset(1.0f / vsum(sum));
    for (int j = 0; j < np; j += VL) vst(s + j, vmul(vld(s + j), inv));
}

/* One output row of a 3x3 depthwise convolution + bias (+ GELU). top / mid / bot are input rows of
 * (w_in + 2) pixels, C channels, with a zero pixel on each side; output pixel x reads padded pixels
 * x * stride .. x * stride + 2. */
static void depthwise_row(int w_out, int stride, int C, const float *top, const float *mid, const float *bot,
                          const float *wt, const float *b, float *out, int gelu) {
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
            vst(out + (size_t)x * C + c, gelu ? vgelu(acc) : acc);
        }
    }
}

/* ---- threads ------------------------------------------------------------------------------------- */

typedef void (*RangeFn)(const void *ctx, int begin, int end, int *failed);
typedef struct { RangeFn fn; const void *ctx; int begin, end, failed; volatile int *stop; } Part;

/* The stop flag of the encode running on this thread (medseg_encoder sets it): a stoppable run does its parts in
 * STOP_CHUNKS pieces and gives up between them once the flag is set, so a stop takes effect within a few ms rather
 * than at the end of a layer (up to 150 ms on one thread). */
static __thread volatile int *running_stop;
#define STOP_CHUNKS 8

static void *run_part(void *arg) {
    Part *p = arg;
    if (!p->stop) {
        p->fn(p->ctx, p->begin, p->end, &p->failed);
        return 0;
    }
    int n = p->end - p->begin, step = n / STOP_CHUNKS > 0 ? n / STOP_CHUNKS : 1;
    for (int b = p->begin; b < p->end && !p->failed; b += step) {
        if (*p->stop) {
            p->failed = 2;
            break;
        }
        p->fn(p->ctx, b, b + step < p->end ? b + step : p->end, &p->failed);
    }
    return 0;
}

/* fn over [0, n) in contiguous parts on up to `threads` threads (the caller's is one); nonzero if any failed (2: the
 * run was stopped). */
static int parallel(RangeFn fn, const void *ctx, int n, int threads) {
    Part parts[8];
    pthread_t th[8];
    int started[8] = {0}, failed = 0;
    if (threads > 8) threads = 8;
    if (threads > n) threads = n;
    if (threads < 1) threads = 1;
    for (int i = 0; i < threads; i++)
        parts[i] = (Part){fn, ctx, n * i / threads, n * (i + 1) / threads, 0, running_stop};
    for (int i = 1; i < threads; i++) started[i] = pthread_create(&th[i], 0, run_part, &parts[i]) == 0;
    for (int i = 1; i < threads; i++)
        if (!started[i]) run_part(&parts[i]);
    run_part(&parts[0]);
    for (int i = 0; i < threads; i++) {
        if (i && started[i]) pthread_join(th[i], 0);
        if (parts[i].failed > failed) failed = parts[i].failed;
    }
    return failed;
}

static float *scratch(size_t floats, int *failed) {
    float *p = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!p) *failed = 1;
    return p;
}

#endif
