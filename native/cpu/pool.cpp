// 2-D max and average pooling over contiguous H*W planes, forward and backward, OpenMP over planes.
// Windows are clipped to the image: a padded cell is -inf for max (never chosen) and 0 for average.
#include <algorithm>
#include <limits>
#include <vector>

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

// Row at a time with the output column innermost: independent columns instead of one long compare chain.
// Cells are visited in row-major window order, so the strict '>' keeps the first maximum.
template <typename T>
int max_forward(const T* x, const keydnn_pool_geom* geom, T* y, int64_t* argmax) {
    if (!valid(geom) || (geom->planes > 0 && (!x || !y || !argmax))) return KEYDNN_ERR_INVALID_ARGUMENT;
    // A local copy: the int64 argmax stores could otherwise alias the geometry and force reloads.
    const keydnn_pool_geom local = *geom;
    const keydnn_pool_geom* g = &local;
    const int64_t width = g->w, kw = g->kw, sw = g->sw, pw = g->pw;
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    std::vector<int64_t> first_col(g->ow), lo(g->kw), hi(g->kw);
    for (int64_t ox = 0; ox < g->ow; ++ox) first_col[ox] = std::max<int64_t>(ox * g->sw - g->pw, 0);
    for (int64_t kj = 0; kj < g->kw; ++kj) {  // output columns whose window column kj is inside the image
        const int64_t off = kj - g->pw;
        lo[kj] = std::min(g->ow, off >= 0 ? 0 : (-off + g->sw - 1) / g->sw);
        hi[kj] = std::max(lo[kj], (g->w - 1 - off) < 0 ? 0 : std::min(g->ow, (g->w - 1 - off) / g->sw + 1));
    }
#pragma omp parallel for schedule(static) if (g->planes * in_plane > kParallelMin)
    for (int64_t pl = 0; pl < g->planes; ++pl) {
        const T* xp = x + pl * in_plane;
        for (int64_t oy = 0; oy < g->oh; ++oy) {
            T* yr = y + pl * out_plane + oy * g->ow;
            int64_t* ar = argmax + pl * out_plane + oy * g->ow;
            const int64_t h0 = oy * g->sh - g->ph;
            const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + g->kh, g->h);
            for (int64_t ox = 0; ox < g->ow; ++ox) {
                yr[ox] = -std::numeric_limits<T>::infinity();
                ar[ox] = hs * g->w + first_col[ox];
            }
            for (int64_t ih = hs; ih < he; ++ih) {
                const T* xr = xp + ih * width;
                for (int64_t kj = 0; kj < kw; ++kj) {
                    const int64_t off = kj - pw, o0 = lo[kj], o1 = hi[kj], base = ih * width + off;
                    for (int64_t ox = o0; ox < o1; ++ox) {
                        const T v = xr[ox * sw + off], best = yr[ox];
                        // Bitwise (not short-circuit) logic keeps this branch-free: random data would
                        // mispredict a branch on every other cell.
                        const bool take = (v > best) | ((v != v) & (best == best));
                        yr[ox] = take ? v : best;
                        ar[ox] = take ? base + ox * sw : ar[ox];
                    }
                }
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

// Output index range [lo, hi) whose windows (start i*s - p, length k) cover input index x.
inline void covering(int64_t x, int64_t k, int64_t s, int64_t p, int64_t n_out, int64_t& lo, int64_t& hi) {
    const int64_t first = x + p - k + 1;
    lo = first <= 0 ? 0 : (first + s - 1) / s;
    hi = std::min(n_out, (x + p) / s + 1);
    if (hi < lo) hi = lo;
}

// A gather over the windows covering each input cell: every gx element is written once, no zero-fill pass.
template <typename T>
int avg_backward(const T* gy, const keydnn_pool_geom* g, T* gx) {
    if (!valid(g) || (g->planes > 0 && (!gy || !gx))) return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    const T scale = T(1) / T(g->kh * g->kw);
    std::vector<int64_t> col_lo(g->w), col_hi(g->w);
    for (int64_t iw = 0; iw < g->w; ++iw) covering(iw, g->kw, g->sw, g->pw, g->ow, col_lo[iw], col_hi[iw]);
    const bool disjoint = g->sh >= g->kh && g->sw >= g->kw;
#pragma omp parallel for schedule(static) if (g->planes * in_plane > kParallelMin)
    for (int64_t pl = 0; pl < g->planes; ++pl) {
        T* gp = gx + pl * in_plane;
        const T* gyp = gy + pl * out_plane;
        for (int64_t ih = 0; ih < g->h; ++ih) {
            int64_t r0, r1;
            covering(ih, g->kh, g->sh, g->ph, g->oh, r0, r1);
            if (disjoint) {  // stride >= kernel: at most one window covers each cell
                const T* row = gyp + r0 * g->ow;
                for (int64_t iw = 0; iw < g->w; ++iw)
                    gp[ih * g->w + iw] = (r0 < r1 && col_lo[iw] < col_hi[iw]) ? row[col_lo[iw]] * scale : T(0);
                continue;
            }
            for (int64_t iw = 0; iw < g->w; ++iw) {
                T acc = 0;
                for (int64_t oy = r0; oy < r1; ++oy)
                    for (int64_t ox = col_lo[iw]; ox < col_hi[iw]; ++ox) acc += gyp[oy * g->ow + ox];
                gp[ih * g->w + iw] = acc * scale;
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
