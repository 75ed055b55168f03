// Batch normalisation (per channel of x viewed as (n, c, s)) and layer normalisation (per row of x viewed
// as (rows, m)), forward and backward, biased variance. Sums accumulate in double for float32 accuracy.
#include <algorithm>
#include <cmath>

#include "keydnn_cpu.h"

namespace {

constexpr int64_t kParallelMin = 16384;
constexpr int64_t kColumnBlock = 256;

template <typename T>
int bn_forward(const T* x, const T* gamma, const T* beta, int64_t n, int64_t c, int64_t s, double eps, T* y,
               T* mean, T* invstd) {
    if (!x || !y || !mean || !invstd || n < 1 || c < 1 || s < 1 || !(eps >= 0)) return KEYDNN_ERR_INVALID_ARGUMENT;
    const double count = double(n) * double(s);
#pragma omp parallel for schedule(static) if (n * c * s > kParallelMin)
    for (int64_t ch = 0; ch < c; ++ch) {
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) {
            const T* xp = x + (i * c + ch) * s;
            for (int64_t j = 0; j < s; ++j) sum += xp[j];
        }
        const double mu = sum / count;
        double sq = 0;
        for (int64_t i = 0; i < n; ++i) {
            const T* xp = x + (i * c + ch) * s;
            for (int64_t j = 0; j < s; ++j) sq += (xp[j] - mu) * (xp[j] - mu);
        }
        const double inv = 1.0 / std::sqrt(sq / count + eps);
        mean[ch] = T(mu);
        invstd[ch] = T(inv);
        const T scale = T(gamma ? inv * gamma[ch] : inv), shift = T(beta ? double(beta[ch]) : 0.0);
        const T m = T(mu);
        for (int64_t i = 0; i < n; ++i) {
            const T* xp = x + (i * c + ch) * s;
            T* yp = y + (i * c + ch) * s;
            for (int64_t j = 0; j < s; ++j) yp[j] = (xp[j] - m) * scale + shift;
        }
    }
    return KEYDNN_OK;
}

template <typename T>
int bn_backward(const T* gy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t n, int64_t c,
                int64_t s, T* gx, T* ggamma, T* gbeta) {
    if (!gy || !x || !mean || !invstd || !gx || n < 1 || c < 1 || s < 1) return KEYDNN_ERR_INVALID_ARGUMENT;
    if (gamma && (!ggamma || !gbeta)) return KEYDNN_ERR_INVALID_ARGUMENT;
    const double count = double(n) * double(s);
#pragma omp parallel for schedule(static) if (n * c * s > kParallelMin)
    for (int64_t ch = 0; ch < c; ++ch) {
        const double mu = mean[ch], inv = invstd[ch];
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < n; ++i) {
            const T* xp = x + (i * c + ch) * s;
            const T* gp = gy + (i * c + ch) * s;
            for (int64_t j = 0; j < s; ++j) {
                sg += gp[j];
                sgx += gp[j] * ((xp[j] - mu) * inv);
            }
        }
        if (gamma) {
            ggamma[ch] = T(sgx);
            gbeta[ch] = T(sg);
        }
        const T scale = T(gamma ? inv * gamma[ch] : inv);
        const T mg = T(sg / count), mgx = T(sgx / count), m = T(mu), iv = T(inv);
        for (int64_t i = 0; i < n; ++i) {
            const T* xp = x + (i * c + ch) * s;
            const T* gp = gy + (i * c + ch) * s;
            T* out = gx + (i * c + ch) * s;
            for (int64_t j = 0; j < s; ++j) out[j] = (gp[j] - mg - (xp[j] - m) * iv * mgx) * scale;
        }
    }
    return KEYDNN_OK;
}

template <typename T>
int ln_forward(const T* x, const T* gamma, const T* beta, int64_t rows, int64_t m, double eps, T* y, T* mean,
               T* invstd) {
    if (!x || !y || !mean || !invstd || rows < 0 || m < 1 || !(eps >= 0)) return KEYDNN_ERR_INVALID_ARGUMENT;
#pragma omp parallel for schedule(static) if (rows * m > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xp = x + r * m;
        T* yp = y + r * m;
        double sum = 0;
        for (int64_t j = 0; j < m; ++j) sum += xp[j];
        const double mu = sum / double(m);
        double sq = 0;
        for (int64_t j = 0; j < m; ++j) sq += (xp[j] - mu) * (xp[j] - mu);
        const double inv = 1.0 / std::sqrt(sq / double(m) + eps);
        mean[r] = T(mu);
        invstd[r] = T(inv);
        const T mt = T(mu), it = T(inv);
        for (int64_t j = 0; j < m; ++j) {
            T v = (xp[j] - mt) * it;
            if (gamma) v *= gamma[j];
            if (beta) v += beta[j];
            yp[j] = v;
        }
    }
    return KEYDNN_OK;
}

template <typename T>
int ln_backward(const T* gy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t rows, int64_t m,
                T* gx, T* ggamma, T* gbeta) {
    if (!gy || !x || !mean || !invstd || !gx || rows < 0 || m < 1) return KEYDNN_ERR_INVALID_ARGUMENT;
    if (gamma && (!ggamma || !gbeta)) return KEYDNN_ERR_INVALID_ARGUMENT;
#pragma omp parallel for schedule(static) if (rows * m > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xp = x + r * m;
        const T* gp = gy + r * m;
        T* out = gx + r * m;
        const T mu = mean[r], inv = invstd[r];
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < m; ++j) {
            const double g = gamma ? double(gp[j]) * gamma[j] : double(gp[j]);
            sg += g;
            sgx += g * double((xp[j] - mu) * inv);
        }
        const T mg = T(sg / double(m)), mgx = T(sgx / double(m));
        for (int64_t j = 0; j < m; ++j) {
            const T g = gamma ? gp[j] * gamma[j] : gp[j];
            out[j] = (g - mg - (xp[j] - mu) * inv * mgx) * inv;
        }
    }
    if (!gamma) return KEYDNN_OK;
    // Parameter gradients sum over rows: parallel over column blocks so no two threads share an output.
    const int64_t blocks = (m + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (rows * m > kParallelMin)
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t j0 = b * kColumnBlock, j1 = std::min(m, j0 + kColumnBlock);
        double sgx[kColumnBlock] = {0}, sg[kColumnBlock] = {0};
        for (int64_t r = 0; r < rows; ++r) {
            const T mu = mean[r], inv = invstd[r];
            const T* xp = x + r * m;
            const T* gp = gy + r * m;
            for (int64_t j = j0; j < j1; ++j) {
                sg[j - j0] += gp[j];
                sgx[j - j0] += double(gp[j]) * double((xp[j] - mu) * inv);
            }
        }
        for (int64_t j = j0; j < j1; ++j) {
            ggamma[j] = T(sgx[j - j0]);
            gbeta[j] = T(sg[j - j0]);
        }
    }
    return KEYDNN_OK;
}

}  // namespace

extern "C" {
int keydnn_batch_norm_forward_f32(const float* x, const float* gamma, const float* beta, int64_t n, int64_t c,
                                  int64_t s, double eps, float* y, float* mean, float* invstd) {
    return bn_forward(x, gamma, beta, n, c, s, eps, y, mean, invstd);
}
int keydnn_batch_norm_forward_f64(const double* x, const double* gamma, const double* beta, int64_t n,
                                  int64_t c, int64_t s, double eps, double* y, double* mean, double* invstd) {
    return bn_forward(x, gamma, beta, n, c, s, eps, y, mean, invstd);
}
int keydnn_batch_norm_backward_f32(const float* gy, const float* x, const float* gamma, const float* mean,
                                   const float* invstd, int64_t n, int64_t c, int64_t s, float* gx,
                                   float* ggamma, float* gbeta) {
    return bn_backward(gy, x, gamma, mean, invstd, n, c, s, gx, ggamma, gbeta);
}
int keydnn_batch_norm_backward_f64(const double* gy, const double* x, const double* gamma,
                                   const double* mean, const double* invstd, int64_t n, int64_t c, int64_t s,
                                   double* gx, double* ggamma, double* gbeta) {
    return bn_backward(gy, x, gamma, mean, invstd, n, c, s, gx, ggamma, gbeta);
}
int keydnn_layer_norm_forward_f32(const float* x, const float* gamma, const float* beta, int64_t rows,
                                  int64_t m, double eps, float* y, float* mean, float* invstd) {
    return ln_forward(x, gamma, beta, rows, m, eps, y, mean, invstd);
}
int keydnn_layer_norm_forward_f64(const double* x, const double* gamma, const double* beta, int64_t rows,
                                  int64_t m, double eps, double* y, double* mean, double* invstd) {
    return ln_forward(x, gamma, beta, rows, m, eps, y, mean, invstd);
}
int keydnn_layer_norm_backward_f32(const float* gy, const float* x, const float* gamma, const float* mean,
                                   const float* invstd, int64_t rows, int64_t m, float* gx, float* ggamma,
                                   float* gbeta) {
    return ln_backward(gy, x, gamma, mean, invstd, rows, m, gx, ggamma, gbeta);
}
int keydnn_layer_norm_backward_f64(const double* gy, const double* x, const double* gamma,
                                   const double* mean, const double* invstd, int64_t rows, int64_t m,
                                   double* gx, double* ggamma, double* gbeta) {
    return ln_backward(gy, x, gamma, mean, invstd, rows, m, gx, ggamma, gbeta);
}
}
