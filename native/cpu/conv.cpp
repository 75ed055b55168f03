// Convolution helpers: im2col and its adjoint col2im over NCHW images, OpenMP over (image, channel) planes.
// The GEMMs around them run in NumPy's multithreaded BLAS (see backends/native_cpu/conv.py).
#include <algorithm>
#include <cstring>

#include "keydnn_cpu.h"

namespace {

bool valid(const keydnn_conv_geom* g, int64_t images) {
    if (g == nullptr || images < 0) return false;
    if (g->c < 1 || g->h < 1 || g->w < 1 || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1) return false;
    if (g->ph < 0 || g->pw < 0 || g->dh < 1 || g->dw < 1) return false;
    // The output size must be exactly what the geometry implies, so every read/write below stays in bounds.
    const int64_t oh = (g->h + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1;
    const int64_t ow = (g->w + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1;
    return oh >= 1 && ow >= 1 && oh == g->oh && ow == g->ow;
}

// Output columns [lo, hi) whose input column ox*sw + off lies inside [0, w).
inline void valid_range(int64_t off, int64_t stride, int64_t w, int64_t n_out, int64_t& lo, int64_t& hi) {
    lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    hi = (w - 1 - off) < 0 ? 0 : std::min(n_out, (w - 1 - off) / stride + 1);
    lo = std::min(lo, n_out);
    hi = std::max(hi, lo);
}

template <typename T>
void im2col_plane(const T* x, const keydnn_conv_geom& g, T* out) {
    const int64_t p = g.oh * g.ow;
    for (int64_t ki = 0; ki < g.kh; ++ki) {
        for (int64_t kj = 0; kj < g.kw; ++kj) {
            T* row = out + (ki * g.kw + kj) * p;
            const int64_t off = kj * g.dw - g.pw;
            int64_t lo, hi;
            valid_range(off, g.sw, g.w, g.ow, lo, hi);
            for (int64_t oy = 0; oy < g.oh; ++oy) {
                T* dst = row + oy * g.ow;
                const int64_t ih = oy * g.sh - g.ph + ki * g.dh;
                if (ih < 0 || ih >= g.h) {
                    std::fill(dst, dst + g.ow, T(0));
                    continue;
                }
                const T* src = x + ih * g.w;
                std::fill(dst, dst + lo, T(0));
                if (g.sw == 1) {
                    std::memcpy(dst + lo, src + lo + off, sizeof(T) * (hi - lo));
                } else {
                    for (int64_t ox = lo; ox < hi; ++ox) dst[ox] = src[ox * g.sw + off];
                }
                std::fill(dst + hi, dst + g.ow, T(0));
            }
        }
    }
}

template <typename T>
void col2im_plane(const T* cols, const keydnn_conv_geom& g, T* x) {
    const int64_t p = g.oh * g.ow;
    std::fill(x, x + g.h * g.w, T(0));
    for (int64_t ki = 0; ki < g.kh; ++ki) {
        for (int64_t kj = 0; kj < g.kw; ++kj) {
            const T* row = cols + (ki * g.kw + kj) * p;
            const int64_t off = kj * g.dw - g.pw;
            int64_t lo, hi;
            valid_range(off, g.sw, g.w, g.ow, lo, hi);
            for (int64_t oy = 0; oy < g.oh; ++oy) {
                const int64_t ih = oy * g.sh - g.ph + ki * g.dh;
                if (ih < 0 || ih >= g.h) continue;
                T* dst = x + ih * g.w + off;
                const T* src = row + oy * g.ow;
                if (g.sw == 1) {
#pragma omp simd
                    for (int64_t ox = lo; ox < hi; ++ox) dst[ox] += src[ox];
                } else {
                    for (int64_t ox = lo; ox < hi; ++ox) dst[ox * g.sw] += src[ox];
                }
            }
        }
    }
}

template <typename T>
int im2col(const T* x, const keydnn_conv_geom* g, int64_t images, T* cols) {
    if (!valid(g, images) || (images > 0 && (x == nullptr || cols == nullptr))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t planes = images * g->c, in_plane = g->h * g->w, out_plane = g->kh * g->kw * g->oh * g->ow;
#pragma omp parallel for schedule(static) if (planes * out_plane > 32768)
    for (int64_t i = 0; i < planes; ++i) im2col_plane(x + i * in_plane, *g, cols + i * out_plane);
    return KEYDNN_OK;
}

template <typename T>
int col2im(const T* cols, const keydnn_conv_geom* g, int64_t images, T* x) {
    if (!valid(g, images) || (images > 0 && (x == nullptr || cols == nullptr))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t planes = images * g->c, in_plane = g->h * g->w, out_plane = g->kh * g->kw * g->oh * g->ow;
#pragma omp parallel for schedule(static) if (planes * out_plane > 32768)
    for (int64_t i = 0; i < planes; ++i) col2im_plane(cols + i * out_plane, *g, x + i * in_plane);
    return KEYDNN_OK;
}

}  // namespace

extern "C" {
int keydnn_im2col_f32(const float* x, const keydnn_conv_geom* g, int64_t images, float* cols) {
    return im2col(x, g, images, cols);
}
int keydnn_im2col_f64(const double* x, const keydnn_conv_geom* g, int64_t images, double* cols) {
    return im2col(x, g, images, cols);
}
int keydnn_col2im_f32(const float* cols, const keydnn_conv_geom* g, int64_t images, float* x) {
    return col2im(cols, g, images, x);
}
int keydnn_col2im_f64(const double* cols, const keydnn_conv_geom* g, int64_t images, double* x) {
    return col2im(cols, g, images, x);
}
}
