/* Fused full-batch gradient of the batched adapted MLP: one pass over row blocks per trial.
 *
 * The same gradients as synthetic/mlp_backprop.py (see its docstring for the formulas), computed
 * for each trial block of ROWS rows by block: a block's activations and gradients stay in the
 * L1 cache, whereas the eager torch path writes every (rows x width) intermediate to memory and
 * reads it back several times per step. Built and loaded by synthetic/mlp/kernel.py.
 *
 * Tensors passed in are row-major float32 (labels int64); a per-trial tensor of shape S is T
 * consecutive S blocks. Inside, every row of the scratch buffers is padded with zeros to a
 * multiple of LANES floats and aligned to a whole vector, so that every inner loop is a whole number
 * of vectors (the zeros stay zero through relu and tanh and add nothing to any product).
 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

enum { BASE = 0, FULL = 1, MERGED = 2, FACTOR = 3 };
enum { TANH = 0, RELU = 1 };
enum { REGRESSION = 0, CLASSIFICATION = 1 };

#define MAX_LAYERS 16
#define ROWS 8   /* rows per block */
/* Floats per vector: the processor's widest float register (AVX-512: 16, AVX: 8, SSE or NEON:
 * 4), so that the ROWS accumulators of product() and the operands stay in registers. Rows are
 * padded to whole vectors; the order of every sum is fixed for a given LANES. */
#ifndef LANES
#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
#endif

/* n rounded up to a multiple of LANES */
static inline int pad(int n) { return (n + LANES - 1) / LANES * LANES; }

/* LANES floats in one value (GCC / Clang vector extension): one instruction per operation. */
typedef float vec __attribute__((vector_size(4 * LANES), aligned(4 * LANES)));
typedef int32_t mask __attribute__((vector_size(4 * LANES), aligned(4 * LANES)));
#define V(p) ((vec *)(p)) /* a padded, aligned row as vectors */

/* The sum of a vector's lanes, as a tree of halvings (a fixed order). */
#if defined(__clang__)
#define SWAP(v, ...) __builtin_shufflevector((v), (v), __VA_ARGS__)
#else
#define SWAP(v, ...) __builtin_shuffle((v), (mask){__VA_ARGS__})
#endif
#if LANES == 16
static inline float hsum(vec v) {
    v += SWAP(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v += SWAP(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    v += SWAP(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    v += SWAP(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return v[0];
}
#elif LANES == 8
static inline float hsum(vec v) {
    v += SWAP(v, 4, 5, 6, 7, 0, 1, 2, 3);
    v += SWAP(v, 2, 3, 0, 1, 6, 7, 4, 5);
    v += SWAP(v, 1, 0, 3, 2, 5, 4, 7, 6);
    return v[0];
}
#elif LANES == 4
static inline float hsum(vec v) {
    v += SWAP(v, 2, 3, 0, 1);
    v += SWAP(v, 1, 0, 3, 2);
    return v[0];
}
#else
#error "LANES must be 4, 8 or 16"
#endif

/* tanh on LANES lanes: tanh|x| = -e / (2 + e) with e = expm1(-2|x|), the sign restored. expm1(u) is
 * its Taylor polynomial to u^8 for |u| < ln2/2 (truncation below 1e-9 relative), else
 * exp(u) - 1 with exp(u) = 2^k exp(r), r = u - k ln2 in [-ln2/2, ln2/2] and exp(r) to r^7
 * (below 6e-9 relative). |x| > 9 is clamped (tanh(9) rounds to 1 in float32); NaN stays NaN. */
static inline vec tanh_vec(vec x) {
    const vec zero = {0}, big = zero + 9.0f;
    const mask signbit = (mask){0} + INT32_MIN, sign = (mask)x & signbit;
    vec a = (vec)((mask)x & ~signbit);
    a = (vec)(((mask)a & ~(a > big)) | ((mask)big & (a > big)));
    const vec u = -2.0f * a;
    vec small = u * (1.0f + u * (1.0f / 2 + u * (1.0f / 6 + u * (1.0f / 24 + u * (1.0f / 120 + u * (1.0f / 720
                     + u * (1.0f / 5040 + u * (1.0f / 40320))))))));
    const vec shifter = zero + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const vec k = (u * 1.44269504f + shifter) - shifter;
    const vec r = (u - k * 0.693359375f) - k * -2.12194440e-4f; /* ln2 in two parts */
    const vec er = 1.0f + r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
                        + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    const mask bits = (__builtin_convertvector(k, mask) + 127) << 23;
    const vec large = er * (vec)bits - 1.0f;
    const mask near = a < zero + 0.17328679f; /* |u| < ln2 / 2 */
    const vec e = (vec)(((mask)small & near) | ((mask)large & ~near));
    return (vec)((mask)(-e / (2.0f + e)) | sign);
}

typedef struct {
    int32_t kind, d_in, d_out, rank;
    float *w;            /* BASE, MERGED: shared (d_out, d_in); FULL: per trial (d_out, d_in) */
    float *a;            /* MERGED, FACTOR: per trial (rank, d_in); NULL for FACTOR with feats */
    float *b;            /* MERGED, FACTOR: per trial (d_out, rank) */
    const float *base;   /* FACTOR: per trial (m, d_out), the fixed h W0^T */
    const float *feats;  /* FACTOR with a frozen A: per trial (rank, m), the fixed A h */
    float *ga, *gb, *gw; /* gradients, per trial, NULL when not trained */
    float *ma, *mb, *mw; /* Adam's first moments of the trained tensors (mlp_train only) */
    float *va, *vb, *vw; /* Adam's second moments */
} Layer;

typedef struct {
    int32_t n_layers, m, activation, kind;
    float scaling;
    const float *x;       /* per trial (m, d_in of layer 0) */
    const float *y;       /* REGRESSION: per trial (m, d_out of the last layer) */
    const int64_t *label; /* CLASSIFICATION: per trial (m,) */
    Layer layer[MAX_LAYERS];
} Net;

/* Adam's hyperparameters (Kingma and Ba, 2015), as torch.optim.Adam without weight decay. */
typedef struct {
    int32_t steps;
    float lr, beta1, beta2, eps;
} Adam;

/* Scratch of one call; rows padded with zeros (p(d) = pad(d)). Dense layers: w[l] (d_out,
 * p(d_in)) the effective weight, wt[l] (d_in, p(d_out)) its transpose, gw[l] (d_out, p(d_in))
 * dW. FACTOR: wt[l] (rank, p(d_out)) s B^T, at[l] (rank, p(d_in)) A, gw[l] (rank, p(d_out))
 * dB^T / s then (rank, p(d_in)) dA. act[l] (ROWS, p(width l)): activations, act[0] a copy of
 * the input block when it cannot be read in place; in: the input block; low, glow (ROWS,
 * p(rank)): A h and s B^T g of the block; g, g_in (ROWS, p(widest)): gradients wrt a layer's
 * output and input. */
typedef struct {
    float *w[MAX_LAYERS], *wt[MAX_LAYERS], *at[MAX_LAYERS], *gw[MAX_LAYERS], *act[MAX_LAYERS + 1];
    float *low, *glow, *g, *g_in;
    const float *in;
} Scratch;

/* Lay the scratch out from p (when s is not NULL); returns its size in floats. Every part is a
 * whole number of LANES floats, so each starts 64-byte aligned when p is. */
static size_t layout(const Net *net, float *p, Scratch *s) {
    size_t used = 0;
    int widest = 0, rank = 1;
#define PART(field, floats) \
    do { \
        if (s) s->field = p + used; \
        used += (floats); \
    } while (0)
    PART(act[0], (size_t)ROWS * pad(net->layer[0].d_in));
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layer[l];
        const size_t di = L->d_in, dout = L->d_out, r = L->rank;
        if (L->kind == FACTOR) {
            PART(w[l], 0);
            PART(wt[l], r * pad(dout));
            PART(at[l], r * pad(di));
            PART(gw[l], r * (pad(dout) + pad(di)));
        } else {
            PART(w[l], dout * pad(di));
            PART(wt[l], di * pad(dout));
            PART(at[l], L->kind == MERGED ? r * pad(di) : 0);
            PART(gw[l], dout * pad(di));
        }
        PART(act[l + 1], (size_t)ROWS * pad(dout));
        widest = L->d_in > widest ? L->d_in : widest;
        widest = L->d_out > widest ? L->d_out : widest;
        rank = L->rank > rank ? L->rank : rank;
    }
    PART(low, (size_t)ROWS * pad(rank));
    PART(glow, (size_t)ROWS * pad(rank));
    PART(g, (size_t)ROWS * pad(widest));
    PART(g_in, (size_t)ROWS * pad(widest));
#undef PART
    return used;
}

/* z (ROWS, pn) = init + h (ROWS, k) M, with h rows of stride ph, M (k, pn) and init (ROWS, pn)
 * or NULL for zeros (init may be z): LANES outputs of all ROWS rows at a time, accumulated in
 * registers (ROWS independent chains, where one chain through memory would wait on each store). */
static void product(int k, int ph, int pn, const float *h, const float *M, float *z, const float *init) {
    for (int c = 0; c < pn / LANES; c++) {
        vec acc[ROWS] = {{0}};
        if (init)
            for (int i = 0; i < ROWS; i++) acc[i] = V(init + (size_t)i * pn)[c];
        for (int j = 0; j < k; j++) {
            const vec w = V(M + (size_t)j * pn)[c];
            for (int i = 0; i < ROWS; i++) acc[i] += h[(size_t)i * ph + j] * w;
        }
        for (int i = 0; i < ROWS; i++) V(z + (size_t)i * pn)[c] = acc[i];
    }
}

/* out (ROWS, pout)[:, :n] = h (ROWS, pk) M^T with M (n, pk): dot products along the rows, for a
 * narrow output (the rank) that a product would pad to a whole vector. */
static void dots(int n, int pk, const float *h, const float *M, float *out, int pout) {
    for (int i = 0; i < ROWS; i++)
        for (int o = 0; o < n; o++) {
            vec acc = {0};
            for (int c = 0; c < pk / LANES; c++) acc += V(h + (size_t)i * pk)[c] * V(M + (size_t)o * pk)[c];
            out[(size_t)i * pout + o] = hsum(acc);
        }
}

/* dst (n, pad(d)) = src (n, d), each row zero-padded to whole vectors. */
static void pad_rows(int n, int d, const float *src, float *dst) {
    const int pd = pad(d);
    memset(dst, 0, sizeof(float) * (size_t)n * pd);
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * pd, src + (size_t)i * d, sizeof(float) * d);
}

/* dst (n, d) = src (n, pad(d)) without the padding. */
static void unpad_rows(int n, int d, const float *src, float *dst) {
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * d, src + (size_t)i * pad(d), sizeof(float) * d);
}

/* rows (rows, d) of a per-trial tensor as a block (ROWS, pad(d)): read in place when they are a
 * whole block of whole vectors on a 64-byte boundary, else copied (zero-padded) into buffer. */
static const float *block(int rows, int d, const float *src, float *buffer) {
    if (rows == ROWS && d % LANES == 0 && (uintptr_t)src % 64 == 0) return src;
    pad_rows(rows, d, src, buffer);
    memset(buffer + (size_t)rows * pad(d), 0, sizeof(float) * (size_t)(ROWS - rows) * pad(d));
    return buffer;
}

/* D (n, pd) += C^T S over the block: D[o] += sum_i C[i, o] S[i] with C (ROWS, n) of stride pc
 * and S (ROWS, pd); each vector of D is loaded and stored once per block. */
static void outer(int n, int pc, int pd, const float *C, const float *S, float *D) {
    for (int o = 0; o < n; o++)
        for (int c = 0; c < pd / LANES; c++) {
            vec acc = V(D + (size_t)o * pd)[c];
            for (int i = 0; i < ROWS; i++) acc += C[(size_t)i * pc + o] * V(S + (size_t)i * pd)[c];
            V(D + (size_t)o * pd)[c] = acc;
        }
}

/* Per trial: the effective weights (padded) and zeroed gradient accumulators. */
static void prepare(const Net *net, int t, Scratch *s) {
    const float sc = net->scaling;
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layer[l];
        const int di = L->d_in, dout = L->d_out, r = L->rank, pi = pad(di), po = pad(dout);
        float *w = s->w[l], *wt = s->wt[l];
        if (L->kind == FACTOR) {
            const float *b = L->b + (size_t)t * dout * r;
            memset(wt, 0, sizeof(float) * (size_t)r * po);
            for (int o = 0; o < dout; o++)
                for (int k = 0; k < r; k++) wt[(size_t)k * po + o] = sc * b[(size_t)o * r + k];
            if (L->a) pad_rows(r, di, L->a + (size_t)t * r * di, s->at[l]);
            memset(s->gw[l], 0, sizeof(float) * (size_t)r * (po + pi));
            continue;
        }
        const float *src = L->kind == FULL ? L->w + (size_t)t * dout * di : L->w;
        pad_rows(dout, di, src, w);
        if (L->kind == MERGED) {
            const float *a = L->a + (size_t)t * r * di, *b = L->b + (size_t)t * dout * r;
            pad_rows(r, di, a, s->at[l]);
            for (int o = 0; o < dout; o++)
                for (int k = 0; k < r; k++) {
                    const float c = sc * b[(size_t)o * r + k];
                    for (int j = 0; j < di; j++) w[(size_t)o * pi + j] += c * a[(size_t)k * di + j];
                }
        }
        memset(wt, 0, sizeof(float) * (size_t)di * po);
        for (int o = 0; o < dout; o++)
            for (int j = 0; j < di; j++) wt[(size_t)j * po + o] = w[(size_t)o * pi + j];
        if (L->gw || L->ga || L->gb) memset(s->gw[l], 0, sizeof(float) * (size_t)dout * pi);
    }
}

/* The activation in place on n floats (a multiple of LANES); relu zeroes z <= 0 and keeps NaN, as torch. */
static void activate(int n, float *z, int activation) {
    if (activation == RELU) {
        const vec zero = {0};
        for (int j = 0; j < n / LANES; j++) V(z)[j] = (vec)((mask)V(z)[j] & ~(V(z)[j] <= zero)); /* NaN stays */
    } else {
        for (int j = 0; j < n / LANES; j++) V(z)[j] = tanh_vec(V(z)[j]);
    }
}

/* g *= phi'(z) from the activation's output h: 1[h > 0] (relu) or 1 - h^2 (tanh). */
static void activation_grad(int n, float *g, const float *h, int activation) {
    if (activation == RELU) {
        const vec zero = {0};
        for (int j = 0; j < n / LANES; j++) V(g)[j] = (vec)((mask)V(g)[j] & (V(h)[j] > zero));
    } else {
        for (int j = 0; j < n / LANES; j++) V(g)[j] *= 1.0f - V(h)[j] * V(h)[j];
    }
}

/* Gradient g (ROWS, pad(d)) of the trial's mean training loss wrt the outputs f of rows i0.. */
static void output_grad(const Net *net, int t, int i0, int rows, int d, const float *f, float *g) {
    const int m = net->m, pd = pad(d);
    memset(g, 0, sizeof(float) * (size_t)ROWS * pd);
    if (net->kind == REGRESSION) {
        const float *y = net->y + ((size_t)t * m + i0) * d;
        const float c = 2.0f / m;
        for (int i = 0; i < rows; i++)
            for (int o = 0; o < d; o++) g[(size_t)i * pd + o] = c * (f[(size_t)i * pd + o] - y[(size_t)i * d + o]);
        return;
    }
    const int64_t *label = net->label + (size_t)t * m + i0;
    for (int i = 0; i < rows; i++) {
        const float *fi = f + (size_t)i * pd;
        float *gi = g + (size_t)i * pd, top = fi[0], total = 0.0f;
        for (int o = 1; o < d; o++) top = fi[o] > top ? fi[o] : top;
        for (int o = 0; o < d; o++) total += gi[o] = expf(fi[o] - top);
        const float c = 1.0f / (total * m);
        for (int o = 0; o < d; o++) gi[o] *= c;
        gi[label[i]] -= 1.0f / m;
    }
}

static void forward(const Net *net, int t, int i0, int rows, Scratch *s) {
    const int m = net->m, last = net->n_layers - 1;
    for (int l = 0; l <= last; l++) {
        const Layer *L = &net->layer[l];
        const int di = L->d_in, dout = L->d_out, r = L->rank, pi = pad(di), po = pad(dout), pr = pad(r);
        const float *h = l == 0 ? s->in : s->act[l];
        float *z = s->act[l + 1];
        if (L->kind == FACTOR) { /* z = h W0^T (fixed) + (A h)(s B^T) */
            if (L->feats) {
                memset(s->low, 0, sizeof(float) * (size_t)ROWS * pr);
                for (int i = 0; i < rows; i++)
                    for (int k = 0; k < r; k++) s->low[(size_t)i * pr + k] = L->feats[((size_t)t * r + k) * m + i0 + i];
            } else {
                dots(r, pi, h, s->at[l], s->low, pr);
            }
            const float *base = block(rows, dout, L->base + ((size_t)t * m + i0) * dout, z);
            product(r, pr, po, s->low, s->wt[l], z, base);
        } else {
            product(di, pi, po, h, s->wt[l], z, NULL);
        }
        if (l < last) activate(ROWS * po, z, net->activation);
    }
}

static void backward(const Net *net, int t, int i0, int rows, Scratch *s) {
    const int last = net->n_layers - 1;
    float *g = s->g, *g_in = s->g_in;
    output_grad(net, t, i0, rows, net->layer[last].d_out, s->act[last + 1], g);
    for (int l = last; l >= 0; l--) {
        const Layer *L = &net->layer[l];
        const int di = L->d_in, dout = L->d_out, r = L->rank, pi = pad(di), po = pad(dout), pr = pad(r);
        const float *h = l == 0 ? s->in : s->act[l];
        if (l < last) activation_grad(ROWS * po, g, s->act[l + 1], net->activation);
        if (L->kind == FACTOR) {
            if (L->gb) outer(r, pr, po, s->low, g, s->gw[l]); /* dB^T / s += (A h)^T g */
            if (L->ga) {                                      /* dA += (s B^T g^T) h */
                dots(r, po, g, s->wt[l], s->glow, pr);
                outer(r, pr, pi, s->glow, h, s->gw[l] + (size_t)r * po);
            }
        } else if (L->gw || L->ga || L->gb) { /* dW += g^T h */
            outer(dout, po, pi, g, h, s->gw[l]);
        }
        if (l > 0) { /* gradient wrt the layer's input: g W */
            product(dout, po, pi, g, s->w[l], g_in, NULL);
            float *tmp = g;
            g = g_in, g_in = tmp;
        }
    }
}

/* The accumulated gradients of trial t, in the parameters' shapes. */
static void store(const Net *net, int t, const Scratch *s) {
    const float sc = net->scaling;
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layer[l];
        const int di = L->d_in, dout = L->d_out, r = L->rank, pi = pad(di), po = pad(dout);
        const float *gw = s->gw[l];
        if (L->kind == FACTOR) {
            if (L->gb) { /* dB = s g^T (A h) */
                float *gb = L->gb + (size_t)t * dout * r;
                for (int o = 0; o < dout; o++)
                    for (int k = 0; k < r; k++) gb[(size_t)o * r + k] = sc * gw[(size_t)k * po + o];
            }
            if (L->ga) { /* dA = (s B^T g^T) h, s already in wt */
                unpad_rows(r, di, gw + (size_t)r * po, L->ga + (size_t)t * r * di);
            }
        } else if (L->kind == FULL && L->gw) {
            unpad_rows(dout, di, gw, L->gw + (size_t)t * dout * di);
        } else if (L->kind == MERGED) {
            const float *b = L->b + (size_t)t * dout * r;
            if (L->gb) { /* dB = s dW A^T */
                float *gb = L->gb + (size_t)t * dout * r;
                for (int o = 0; o < dout; o++)
                    for (int k = 0; k < r; k++) {
                        const vec *row = V(gw + (size_t)o * pi), *a = V(s->at[l] + (size_t)k * pi);
                        vec v = {0};
                        for (int c = 0; c < pi / LANES; c++) v += row[c] * a[c];
                        gb[(size_t)o * r + k] = sc * hsum(v);
                    }
            }
            if (L->ga) { /* dA = s B^T dW */
                float *ga = L->ga + (size_t)t * r * di;
                memset(ga, 0, sizeof(float) * (size_t)r * di);
                for (int k = 0; k < r; k++)
                    for (int o = 0; o < dout; o++) {
                        const float c = sc * b[(size_t)o * r + k];
                        for (int j = 0; j < di; j++) ga[(size_t)k * di + j] += c * gw[(size_t)o * pi + j];
                    }
            }
        }
    }
}

/* Flush subnormal results and operands to zero while the kernel runs: products of small
 * gradients reach the subnormal range (below 1.2e-38), where an operation can cost a hundred
 * cycles; no value changes by more than 1.2e-38. Returns the previous control word. */
static unsigned int flush_subnormals(void) {
#if defined(__SSE__)
    const unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); /* FTZ | DAZ */
    return csr;
#else
    return 0;
#endif
}

static void restore(unsigned int csr) {
#if defined(__SSE__)
    _mm_setcsr(csr);
#else
    (void)csr;
#endif
}

/* The full-batch gradient of trial t into the layers' ga / gb / gw. */
static void trial_gradients(const Net *net, int t, Scratch *s) {
    const Layer *first = &net->layer[0];
    prepare(net, t, s);
    for (int i0 = 0; i0 < net->m; i0 += ROWS) {
        const int rows = net->m - i0 < ROWS ? net->m - i0 : ROWS;
        s->in = block(rows, first->d_in, net->x + ((size_t)t * net->m + i0) * first->d_in, s->act[0]);
        forward(net, t, i0, rows, s);
        backward(net, t, i0, rows, s);
    }
    store(net, t, s);
}

/* One Adam step on n parameters, operation for operation as synthetic.mlp_backprop.FlatAdam:
 * m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2; p -= step (m / (sqrt(v) / c2 + eps)). */
static void adam_update(int n, float *p, const float *g, float *m, float *v, const Adam *h, float c2, float step) {
    const float w1 = 1.0f - h->beta1, w2 = 1.0f - h->beta2;
    for (int j = 0; j < n; j++) {
        m[j] += w1 * (g[j] - m[j]);
        v[j] = v[j] * h->beta2 + w2 * g[j] * g[j];
        p[j] += (-step * m[j]) / (sqrtf(v[j]) / c2 + h->eps); /* torch's addcdiv: (value m) / denom */
    }
}

/* Adam step `step` (from 1) on every trained tensor of trial t. */
static void trial_adam(const Net *net, const Adam *h, int t, int step) {
    const float c2 = (float)sqrt(1.0 - pow(h->beta2, step));
    const float size = (float)(h->lr / (1.0 - pow(h->beta1, step)));
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layer[l];
        const size_t na = (size_t)L->rank * L->d_in, nb = (size_t)L->d_out * L->rank, nw = (size_t)L->d_out * L->d_in;
        if (L->ga) adam_update(na, L->a + t * na, L->ga + t * na, L->ma + t * na, L->va + t * na, h, c2, size);
        if (L->gb) adam_update(nb, L->b + t * nb, L->gb + t * nb, L->mb + t * nb, L->vb + t * nb, h, c2, size);
        if (L->gw) adam_update(nw, L->w + t * nw, L->gw + t * nw, L->mw + t * nw, L->vw + t * nw, h, c2, size);
    }
}

/* out[0:n] = tanh(x[0:n]) as the kernel computes it (for tests of its accuracy). */
void mlp_tanh(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += LANES) {
        vec v = {0};
        const int64_t k = n - i < LANES ? n - i : LANES;
        memcpy(&v, x + i, sizeof(float) * k);
        v = tanh_vec(v);
        memcpy(out + i, &v, sizeof(float) * k);
    }
}

/* Floats of scratch memory that mlp_gradients and mlp_train need per call (64-byte aligned). */
int64_t mlp_scratch_floats(const Net *net) { return (int64_t)layout(net, NULL, NULL); }

/* Gradients of trials [t0, t1) into the layers' ga / gb / gw, using mlp_scratch_floats(net)
 * floats of 64-byte aligned scratch (one buffer per concurrent call). */
void mlp_gradients(const Net *net, int32_t t0, int32_t t1, float *scratch) {
    const unsigned int csr = flush_subnormals();
    Scratch s;
    layout(net, scratch, &s);
    for (int t = t0; t < t1; t++) trial_gradients(net, t, &s);
    restore(csr);
}

/* Train trials [t0, t1) for adam->steps full-batch Adam steps, one trial after another (the
 * trials are independent and Adam is elementwise, so this is the batched training of all). */
void mlp_train(const Net *net, const Adam *adam, int32_t t0, int32_t t1, float *scratch) {
    const unsigned int csr = flush_subnormals();
    Scratch s;
    layout(net, scratch, &s);
    for (int t = t0; t < t1; t++)
        for (int step = 1; step <= adam->steps; step++) {
            trial_gradients(net, t, &s);
            trial_adam(net, adam, t, step);
        }
    restore(csr);
}
