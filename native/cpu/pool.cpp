// 2-D max and average pooling over contiguous H*W planes, forward and backward, OpenMP over planes.
// Windows are clipped to the image: a padded cell is -inf for max (never chosen) and 0 for average.
#include <algorithm>
#include <limits>

#include "keydnn_cpu.h"

namespace {

bool valid(const keydnn_pool_geom* g) {
    if (g == nullptr || g->planes < 0 || g->h < 1 || g->w < 1 || g->kh < 1 || g->kw < 1) return false;
    if (g->sh < 1 || g->sw < 1 || g->ph < 0 || g->pw < 0 || 2 * g->ph > g->kh || 2 * g->pw > g->kw) return false;
    const int64_t oh = (g->h + 2 * g->ph - g->kh) / g->sh + 1;
    const int64_t ow = (g->w + 2 * g->pw - g->kw) / g->sw + 1;
    return g->h + 2 * g->ph >= g->kh && g->w + 2 * g->pw >= g->kw && oh == g->oh && ow == g->ow;
}

constexpr int64_t kParallelMin = 16384;  // below this many elements a thread team costs more than it saves

template <typename T>
int max_forward(const T* x, const keydnn_pool_geom* g, T* y, int64_t* argmax) {
    if (!valid(g) || (g->planes > 0 && (!x || !y || !argmax))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
#pragma omp parallel for schedule(static) if (g->planes * in_plane > kParallelMin)
    for (int64_t pl = 0; pl < g->planes; ++pl) {
        const T* xp = x + pl * in_plane;
        T* yp = y + pl * out_plane;
        int64_t* ap = argmax + pl * out_plane;
        for (int64_t oy = 0; oy < g->oh; ++oy) {
            const int64_t h0 = oy * g->sh - g->ph;
            const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + g->kh, g->h);
            for (int64_t ox = 0; ox < g->ow; ++ox) {
                const int64_t w0 = ox * g->sw - g->pw;
                const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + g->kw, g->w);
                T best = -std::numeric_limits<T>::infinity();
                int64_t arg = hs * g->w + ws;
                for (int64_t ih = hs; ih < he; ++ih) {
                    for (int64_t iw = ws; iw < we; ++iw) {
                        const T v = xp[ih * g->w + iw];
                        // Strictly greater keeps the first maximum; a NaN beats any number once.
                        if (v > best || (v != v && best == best)) {
                            best = v;
                            arg = ih * g->w + iw;
                        }
                    }
                }
                yp[oy * g->ow + ox] = best;
                ap[oy * g->ow + ox] = arg;
            }
        }
    }
    return KEYDNN_OK;
}

template <typename T>
int max_backward(const T* gy, const int64_t* argmax, int64_t planes, int64_t in_plane, int64_t out_plane,
                 T* gx) {
    if (planes < 0 || in_plane < 1 || out_plane < 0) return KEYDNN_ERR_INVALID_ARGUMENT;
    if (planes > 0 && (!gy || !argmax || !gx)) return KEYDNN_ERR_INVALID_ARGUMENT;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (planes * in_plane > kParallelMin)
    for (int64_t pl = 0; pl < planes; ++pl) {
        T* gp = gx + pl * in_plane;
        const T* gyp = gy + pl * out_plane;
        const int64_t* ap = argmax + pl * out_plane;
        std::fill(gp, gp + in_plane, T(0));
        for (int64_t i = 0; i < out_plane; ++i) {
            const int64_t a = ap[i];
            if (a < 0 || a >= in_plane) {
                bad = 1;
                continue;
            }
            gp[a] += gyp[i];
        }
    }
    return bad ? KEYDNN_ERR_INDEX_OUT_OF_RANGE : KEYDNN_OK;
}

template <typename T>
int avg_forward(const T* x, const keydnn_pool_geom* g, T* y) {
    if (!valid(g) || (g->planes > 0 && (!x || !y))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    const T scale = T(1) / T(g->kh * g->kw);
#pragma omp parallel for schedule(static) if (g->planes * in_plane > kParallelMin)
    for (int64_t pl = 0; pl < g->planes; ++pl) {
        const T* xp = x + pl * in_plane;
        T* yp = y + pl * out_plane;
        for (int64_t oy = 0; oy < g->oh; ++oy) {
            const int64_t h0 = oy * g->sh - g->ph;
            const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + g->kh, g->h);
            for (int64_t ox = 0; ox < g->ow; ++ox) {
                const int64_t w0 = ox * g->sw - g->pw;
                const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + g->kw, g->w);
                T acc = 0;
                for (int64_t ih = hs; ih < he; ++ih)
                    for (int64_t iw = ws; iw < we; ++iw) acc += xp[ih * g->w + iw];
                yp[oy * g->ow + ox] = acc * scale;
            }
        }
    }
    return KEYDNN_OK;
}

template <typename T>
int avg_backward(const T* gy, const keydnn_pool_geom* g, T* gx) {
    if (!valid(g) || (g->planes > 0 && (!gy || !gx))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    const T scale = T(1) / T(g->kh * g->kw);
#pragma omp parallel for schedule(static) if (g->planes * in_plane > kParallelMin)
    for (int64_t pl = 0; pl < g->planes; ++pl) {
        T* gp = gx + pl * in_plane;
        const T* gyp = gy + pl * out_plane;
        std::fill(gp, gp + in_plane, T(0));
        for (int64_t oy = 0; oy < g->oh; ++oy) {
            const int64_t h0 = oy * g->sh - g->ph;
            const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + g->kh, g->h);
            for (int64_t ox = 0; ox < g->ow; ++ox) {
                const int64_t w0 = ox * g->sw - g->pw;
                const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + g->kw, g->w);
                const T v = gyp[oy * g->ow + ox] * scale;
                for (int64_t ih = hs; ih < he; ++ih)
                    for (int64_t iw = ws; iw < we; ++iw) gp[ih * g->w + iw] += v;
            }
        }
    }
    return KEYDNN_OK;
}

}  // namespace

extern "C" {
int keydnn_max_pool2d_forward_f32(const float* x, const keydnn_pool_geom* g, float* y, int64_t* argmax) {
    return max_forward(x, g, y, argmax);
}
int keydnn_max_pool2d_forward_f64(const double* x, const keydnn_pool_geom* g, double* y, int64_t* argmax) {
    return max_forward(x, g, y, argmax);
}
int keydnn_max_pool2d_backward_f32(const float* gy, const int64_t* argmax, int64_t planes, int64_t in_plane,
                                   int64_t out_plane, float* gx) {
    return max_backward(gy, argmax, planes, in_plane, out_plane, gx);
}
int keydnn_max_pool2d_backward_f64(const double* gy, const int64_t* argmax, int64_t planes, int64_t in_plane,
                                   int64_t out_plane, double* gx) {
    return max_backward(gy, argmax, planes, in_plane, out_plane, gx);
}
int keydnn_avg_pool2d_forward_f32(const float* x, const keydnn_pool_geom* g, float* y) {
    return avg_forward(x, g, y);
}
int keydnn_avg_pool2d_forward_f64(const double* x, const keydnn_pool_geom* g, double* y) {
    return avg_forward(x, g, y);
}
int keydnn_avg_pool2d_backward_f32(const float* gy, const keydnn_pool_geom* g, float* gx) {
    return avg_backward(gy, g, gx);
}
int keydnn_avg_pool2d_backward_f64(const double* gy, const keydnn_pool_geom* g, double* gx) {
    return avg_backward(gy, g, gx);
}
}
