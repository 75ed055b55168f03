// Conv2d forward and backward (NCHW, stride/padding/dilation/groups), OpenMP over images. Each thread lowers
// a tile of output columns with im2col into a cache-sized buffer and multiplies it with a register-blocked
// GEMM (an 8 x 2-vector micro-kernel written with GCC vector extensions, so it becomes AVX-512/AVX2 FMAs).
#include <algorithm>
#include <cstring>
#include <vector>

#include "keydnn_cpu.h"

namespace {

template <typename T>
struct Vec;
template <>
struct Vec<float> {
    typedef float type __attribute__((vector_size(64)));
    static constexpr int lanes = 16;
};
template <>
struct Vec<double> {
    typedef double type __attribute__((vector_size(64)));
    static constexpr int lanes = 8;
};

constexpr int MR = 8;              // micro-tile rows
constexpr int64_t kTileBytes = 1 << 20;  // im2col tile budget per thread (~L2)

template <typename T>
inline typename Vec<T>::type load(const T* p) {
    typename Vec<T>::type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

template <typename T>
inline void store(T* p, const typename Vec<T>::type& v) {
    std::memcpy(p, &v, sizeof(v));
}

// C[MR x NR] (+)= Ap[kc x MR] (k-major packed) * B[kc x NR]; NR = 2 vectors.
template <typename T>
void micro_kernel(int64_t kc, const T* ap, const T* b, int64_t ldb, T* c, int64_t ldc, bool load_c) {
    using V = typename Vec<T>::type;
    constexpr int L = Vec<T>::lanes;
    V acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
        acc[r][0] = load_c ? load(c + r * ldc) : V{};
        acc[r][1] = load_c ? load(c + r * ldc + L) : V{};
    }
    for (int64_t k = 0; k < kc; ++k) {
        const V b0 = load(b + k * ldb), b1 = load(b + k * ldb + L);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
            const V a = V{} + ap[k * MR + r];
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
        store(c + r * ldc, acc[r][0]);
        store(c + r * ldc + L, acc[r][1]);
    }
}

// Per-thread scratch for gemm: packed A panels, a padded B edge panel, an edge C tile.
template <typename T>
struct GemmScratch {
    std::vector<T> apack, bedge, cedge;
};

// C[M x N] (+)= A[M x K] * B[K x N], all row-major; A(i, k) = a_trans ? A[k*lda + i] : A[i*lda + k].
template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, bool a_trans, const T* b, int64_t ldb, T* c,
          int64_t ldc, bool accumulate, GemmScratch<T>& s) {
    constexpr int NR = 2 * Vec<T>::lanes;
    const int64_t panels = (m + MR - 1) / MR;
    const int64_t kblocks = (k + 191) / 192;
    const int64_t kc_max = (k + kblocks - 1) / kblocks;
    s.apack.resize(panels * MR * kc_max);
    s.bedge.resize(kc_max * NR);
    s.cedge.resize(MR * NR);
    for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
        const int64_t kc = std::min(kc_max, k - k0);
        const bool load_c = accumulate || k0 > 0;
        for (int64_t p = 0; p < panels; ++p) {
            T* ap = s.apack.data() + p * MR * kc;
            for (int64_t kk = 0; kk < kc; ++kk) {
                for (int r = 0; r < MR; ++r) {
                    const int64_t i = p * MR + r;
                    ap[kk * MR + r] = i >= m ? T(0) : (a_trans ? a[(k0 + kk) * lda + i] : a[i * lda + k0 + kk]);
                }
            }
        }
        for (int64_t j0 = 0; j0 < n; j0 += NR) {
            const int64_t nr = std::min<int64_t>(NR, n - j0);
            const T* bp = b + k0 * ldb + j0;
            int64_t bld = ldb;
            if (nr < NR) {  // zero-pad the last column panel so the micro-kernel never reads past B
                for (int64_t kk = 0; kk < kc; ++kk) {
                    T* dst = s.bedge.data() + kk * NR;
                    std::copy(bp + kk * ldb, bp + kk * ldb + nr, dst);
                    std::fill(dst + nr, dst + NR, T(0));
                }
                bp = s.bedge.data();
                bld = NR;
            }
            for (int64_t p = 0; p < panels; ++p) {
                const int64_t i0 = p * MR, mr = std::min<int64_t>(MR, m - i0);
                const T* ap = s.apack.data() + p * MR * kc;
                T* cp = c + i0 * ldc + j0;
                if (mr == MR && nr == NR) {
                    micro_kernel(kc, ap, bp, bld, cp, ldc, load_c);
                    continue;
                }
                T* ct = s.cedge.data();
                for (int r = 0; r < MR; ++r)
                    for (int64_t j = 0; j < NR; ++j) ct[r * NR + j] = (load_c && r < mr && j < nr) ? cp[r * ldc + j] : T(0);
                micro_kernel(kc, ap, bp, bld, ct, NR, true);
                for (int64_t r = 0; r < mr; ++r) std::copy(ct + r * NR, ct + r * NR + nr, cp + r * ldc);
            }
        }
    }
}

bool valid(const keydnn_conv_geom* g) {
    if (g == nullptr || g->n < 0 || g->c < 1 || g->h < 1 || g->w < 1 || g->o < 1 || g->groups < 1) return false;
    if (g->c % g->groups || g->o % g->groups || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1) return false;
    if (g->ph < 0 || g->pw < 0 || g->dh < 1 || g->dw < 1) return false;
    // The output size must be exactly what the geometry implies, so every read/write below stays in bounds.
    const int64_t oh = (g->h + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1;
    const int64_t ow = (g->w + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1;
    return oh >= 1 && ow >= 1 && oh == g->oh && ow == g->ow;
}

// Output columns [lo, hi) of one output row whose input column ox*sw + off lies inside [0, w).
inline void valid_range(int64_t off, int64_t stride, int64_t w, int64_t n_out, int64_t& lo, int64_t& hi) {
    lo = std::min(n_out, off >= 0 ? 0 : (-off + stride - 1) / stride);
    hi = std::max(lo, (w - 1 - off) < 0 ? 0 : std::min(n_out, (w - 1 - off) / stride + 1));
}

// Visit every (column-matrix row, output row) segment of output columns [p0, p1) of one image:
// fn(row, oy, ih or -1, off, ox_begin, ox_end, lo, hi, dst_offset_in_tile).
template <typename F>
void for_each_segment(const keydnn_conv_geom& g, int64_t p0, int64_t p1, F&& fn) {
    const int64_t rows = g.c * g.kh * g.kw;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t kj = r % g.kw, ki = (r / g.kw) % g.kh, ch = r / (g.kw * g.kh);
        const int64_t off = kj * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off, g.sw, g.w, g.ow, lo, hi);
        for (int64_t oy = p0 / g.ow; oy * g.ow < p1; ++oy) {
            const int64_t xb = std::max<int64_t>(p0 - oy * g.ow, 0), xe = std::min(g.ow, p1 - oy * g.ow);
            const int64_t ih = oy * g.sh - g.ph + ki * g.dh;
            fn(r, ch, (ih < 0 || ih >= g.h) ? -1 : ih, off, xb, xe, lo, hi, oy * g.ow - p0);
        }
    }
}

// cols[r * pt + (p - p0)] for p in [p0, p1): one image's column matrix restricted to a column tile.
template <typename T>
void im2col_tile(const T* x, const keydnn_conv_geom& g, int64_t p0, int64_t p1, T* cols) {
    const int64_t pt = p1 - p0;
    for_each_segment(g, p0, p1, [&](int64_t r, int64_t ch, int64_t ih, int64_t off, int64_t xb, int64_t xe,
                                    int64_t lo, int64_t hi, int64_t base) {
        T* dst = cols + r * pt + base;
        if (ih < 0) {
            std::fill(dst + xb, dst + xe, T(0));
            return;
        }
        const T* src = x + (ch * g.h + ih) * g.w;  // read only at ox * sw + off for ox in [lo, hi)
        const int64_t vb = std::max(xb, lo), ve = std::max(vb, std::min(xe, hi));
        std::fill(dst + xb, dst + std::min(vb, xe), T(0));
        if (g.sw == 1) {
            std::copy(src + vb + off, src + ve + off, dst + vb);
        } else {
            for (int64_t ox = vb; ox < ve; ++ox) dst[ox] = src[ox * g.sw + off];
        }
        std::fill(dst + std::max(ve, xb), dst + xe, T(0));
    });
}

// Adjoint of im2col_tile: x (one image) += scatter of cols.
template <typename T>
void col2im_tile(const T* cols, const keydnn_conv_geom& g, int64_t p0, int64_t p1, T* x) {
    const int64_t pt = p1 - p0;
    for_each_segment(g, p0, p1, [&](int64_t r, int64_t ch, int64_t ih, int64_t off, int64_t xb, int64_t xe,
                                    int64_t lo, int64_t hi, int64_t base) {
        if (ih < 0) return;
        const T* src = cols + r * pt + base;
        T* dst = x + (ch * g.h + ih) * g.w;
        const int64_t vb = std::max(xb, lo), ve = std::min(xe, hi);
        if (g.sw == 1) {
            T* d = dst + off;
#pragma omp simd
            for (int64_t ox = vb; ox < ve; ++ox) d[ox] += src[ox];
        } else {
            for (int64_t ox = vb; ox < ve; ++ox) dst[ox * g.sw + off] += src[ox];
        }
    });
}

int64_t tile_columns(const keydnn_conv_geom& g, int64_t elem) {
    const int64_t rows = g.c * g.kh * g.kw, p = g.oh * g.ow;
    const int64_t fit = std::max<int64_t>(32, (kTileBytes / (rows * elem)) / 32 * 32);
    return std::min(p, fit);
}

template <typename T>
int forward(const T* x, const T* w, const T* bias, const keydnn_conv_geom* g, T* y) {
    if (!valid(g) || (g->n > 0 && (!x || !w || !y))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t og = g->o / g->groups, kg = g->c / g->groups * g->kh * g->kw, p = g->oh * g->ow;
    const int64_t pt = tile_columns(*g, sizeof(T)), in_img = g->c * g->h * g->w;
#pragma omp parallel if (g->n > 1)
    {
        GemmScratch<T> s;
        std::vector<T> cols(g->c * g->kh * g->kw * pt);
#pragma omp for schedule(static)
        for (int64_t img = 0; img < g->n; ++img) {
            T* yi = y + img * g->o * p;
            for (int64_t o = 0; o < g->o; ++o) std::fill(yi + o * p, yi + (o + 1) * p, bias ? bias[o] : T(0));
            for (int64_t p0 = 0; p0 < p; p0 += pt) {
                const int64_t p1 = std::min(p, p0 + pt);
                im2col_tile(x + img * in_img, *g, p0, p1, cols.data());
                for (int64_t grp = 0; grp < g->groups; ++grp)
                    gemm(og, p1 - p0, kg, w + grp * og * kg, kg, false, cols.data() + grp * kg * (p1 - p0), p1 - p0,
                         yi + grp * og * p + p0, p, true, s);
            }
        }
    }
    return KEYDNN_OK;
}

template <typename T>
int backward_input(const T* gy, const T* w, const keydnn_conv_geom* g, T* gx) {
    if (!valid(g) || (g->n > 0 && (!gy || !w || !gx))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t og = g->o / g->groups, kg = g->c / g->groups * g->kh * g->kw, p = g->oh * g->ow;
    const int64_t pt = tile_columns(*g, sizeof(T)), in_img = g->c * g->h * g->w;
#pragma omp parallel if (g->n > 1)
    {
        GemmScratch<T> s;
        std::vector<T> cols(g->c * g->kh * g->kw * pt);
#pragma omp for schedule(static)
        for (int64_t img = 0; img < g->n; ++img) {
            T* gxi = gx + img * in_img;
            std::fill(gxi, gxi + in_img, T(0));
            for (int64_t p0 = 0; p0 < p; p0 += pt) {
                const int64_t p1 = std::min(p, p0 + pt);
                for (int64_t grp = 0; grp < g->groups; ++grp)  // cols_g = W_g^T gy_g
                    gemm(kg, p1 - p0, og, w + grp * og * kg, kg, true, gy + (img * g->o + grp * og) * p + p0, p,
                         cols.data() + grp * kg * (p1 - p0), p1 - p0, false, s);
                col2im_tile(cols.data(), *g, p0, p1, gxi);
            }
        }
    }
    return KEYDNN_OK;
}

template <typename T>
int backward_weight(const T* gy, const T* x, const keydnn_conv_geom* g, T* gw) {
    if (!valid(g) || !gw || (g->n > 0 && (!gy || !x))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t og = g->o / g->groups, kg = g->c / g->groups * g->kh * g->kw, p = g->oh * g->ow;
    const int64_t pt = tile_columns(*g, sizeof(T)), in_img = g->c * g->h * g->w;
    std::fill(gw, gw + g->o * kg, T(0));
#pragma omp parallel if (g->n > 1)
    {
        GemmScratch<T> s;
        std::vector<T> cols(g->c * g->kh * g->kw * pt), gyt(pt * og), acc(g->groups * kg * og, T(0));
#pragma omp for schedule(static)
        for (int64_t img = 0; img < g->n; ++img) {
            for (int64_t p0 = 0; p0 < p; p0 += pt) {
                const int64_t p1 = std::min(p, p0 + pt), n_cols = p1 - p0;
                im2col_tile(x + img * in_img, *g, p0, p1, cols.data());
                for (int64_t grp = 0; grp < g->groups; ++grp) {
                    const T* gyg = gy + (img * g->o + grp * og) * p + p0;
                    for (int64_t o = 0; o < og; ++o)  // gy_g^T, so that gw_g^T += cols_g gy_g^T is one GEMM
                        for (int64_t j = 0; j < n_cols; ++j) gyt[j * og + o] = gyg[o * p + j];
                    gemm(kg, og, n_cols, cols.data() + grp * kg * n_cols, n_cols, false, gyt.data(), og,
                         acc.data() + grp * kg * og, og, true, s);
                }
            }
        }
#pragma omp critical
        for (int64_t grp = 0; grp < g->groups; ++grp)
            for (int64_t k = 0; k < kg; ++k)
                for (int64_t o = 0; o < og; ++o) gw[(grp * og + o) * kg + k] += acc[(grp * kg + k) * og + o];
    }
    return KEYDNN_OK;
}

}  // namespace

extern "C" {
int keydnn_conv2d_forward_f32(const float* x, const float* w, const float* b, const keydnn_conv_geom* g, float* y) {
    return forward(x, w, b, g, y);
}
int keydnn_conv2d_forward_f64(const double* x, const double* w, const double* b, const keydnn_conv_geom* g,
                              double* y) {
    return forward(x, w, b, g, y);
}
int keydnn_conv2d_backward_input_f32(const float* gy, const float* w, const keydnn_conv_geom* g, float* gx) {
    return backward_input(gy, w, g, gx);
}
int keydnn_conv2d_backward_input_f64(const double* gy, const double* w, const keydnn_conv_geom* g, double* gx) {
    return backward_input(gy, w, g, gx);
}
int keydnn_conv2d_backward_weight_f32(const float* gy, const float* x, const keydnn_conv_geom* g, float* gw) {
    return backward_weight(gy, x, g, gw);
}
int keydnn_conv2d_backward_weight_f64(const double* gy, const double* x, const keydnn_conv_geom* g, double* gw) {
    return backward_weight(gy, x, g, gw);
}
}
