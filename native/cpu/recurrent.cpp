// LSTM gate arithmetic of one time step, fused: every gate of a row in one pass instead of a dozen NumPy
// kernels. The pre-activation v (n, 4h) holds gate blocks i, f, g, o with the sigmoid gates' columns already
// halved (the sequence op folds the 1/2 into its weights), so u = tanh(v) gives sigmoid gates as 0.5 u + 0.5
// and g = u; this is the contract of lstm_gates_forward / lstm_gates_backward in backends/contract.py.
#include <cmath>

#include "keydnn_cpu.h"

namespace {

constexpr int64_t kParallelMin = 32768;

// float: Eigen's rational approximation of tanh (odd degree-13 over even degree-6 polynomial on the argument
// clamped to +-7.9053), branch-free so the gate loops vectorise; max error 4e-7 against tanh in double, where
// glibc's scalar tanhf cost about 18 ns an element here. double: std::tanh (exact, for the float64 checks).
inline float tanh_of(float x) {
    const float lim = 7.90531110763549805f;
    x = x > lim ? lim : (x < -lim ? -lim : x);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}
inline double tanh_of(double x) { return std::tanh(x); }

template <typename T>
int lstm_forward(const T* v, const T* c_prev, int64_t n, int64_t h, T* h_out, T* c_out, T* u_out, T* tc_out) {
    if (!v || !c_prev || !h_out || !c_out || !u_out || !tc_out || n < 1 || h < 1) return KEYDNN_ERR_INVALID_ARGUMENT;
    const T half = T(0.5);
#pragma omp parallel for schedule(static) if (n * h > kParallelMin)
    for (int64_t r = 0; r < n; ++r) {
        const T* vr = v + r * 4 * h;
        T* ur = u_out + r * 4 * h;
        for (int64_t j = 0; j < 4 * h; ++j) ur[j] = tanh_of(vr[j]);
        const T* cp = c_prev + r * h;
        T* cr = c_out + r * h;
        T* tr = tc_out + r * h;
        T* hr = h_out + r * h;
        for (int64_t j = 0; j < h; ++j) {
            const T i = half * ur[j] + half, f = half * ur[h + j] + half, o = half * ur[3 * h + j] + half;
            const T c = f * cp[j] + i * ur[2 * h + j];
            cr[j] = c;
            tr[j] = tanh_of(c);
        }
        for (int64_t j = 0; j < h; ++j) hr[j] = (half * ur[3 * h + j] + half) * tr[j];
    }
    return KEYDNN_OK;
}

// dh: dL/dh_t; dc: dL/dc_t through later steps (NULL: none). dv (n, 4h): dL/dv; dc_prev (n, h): dL/dc_{t-1}.
template <typename T>
int lstm_backward(const T* dh, const T* dc, const T* u, const T* c_prev, const T* tc, int64_t n, int64_t h, T* dv,
                  T* dc_prev) {
    if (!dh || !u || !c_prev || !tc || !dv || !dc_prev || n < 1 || h < 1) return KEYDNN_ERR_INVALID_ARGUMENT;
    const T half = T(0.5), one = T(1);
#pragma omp parallel for schedule(static) if (n * h > kParallelMin)
    for (int64_t r = 0; r < n; ++r) {
        const T* ur = u + r * 4 * h;
        T* dr = dv + r * 4 * h;
        for (int64_t j = 0; j < h; ++j) {
            const int64_t k = r * h + j;
            const T ui = ur[j], uf = ur[h + j], ug = ur[2 * h + j], uo = ur[3 * h + j];
            const T i = half * ui + half, f = half * uf + half, o = half * uo + half, t = tc[k];
            const T g_h = dh[k];
            const T g_c = (dc ? dc[k] : T(0)) + g_h * o * (one - t * t);
            // d/dv of 0.5 tanh(v) + 0.5 is 0.5 (1 - u^2); of tanh(v) it is 1 - u^2
            dr[j] = g_c * ug * half * (one - ui * ui);
            dr[h + j] = g_c * c_prev[k] * half * (one - uf * uf);
            dr[2 * h + j] = g_c * i * (one - ug * ug);
            dr[3 * h + j] = g_h * t * half * (one - uo * uo);
            dc_prev[k] = g_c * f;
        }
    }
    return KEYDNN_OK;
}

}  // namespace

extern "C" {
int keydnn_lstm_gates_forward_f32(const float* v, const float* c_prev, int64_t n, int64_t h, float* h_out,
                                  float* c_out, float* u_out, float* tc_out) {
    return lstm_forward(v, c_prev, n, h, h_out, c_out, u_out, tc_out);
}
int keydnn_lstm_gates_forward_f64(const double* v, const double* c_prev, int64_t n, int64_t h, double* h_out,
                                  double* c_out, double* u_out, double* tc_out) {
    return lstm_forward(v, c_prev, n, h, h_out, c_out, u_out, tc_out);
}
int keydnn_lstm_gates_backward_f32(const float* dh, const float* dc, const float* u, const float* c_prev,
                                   const float* tc, int64_t n, int64_t h, float* dv, float* dc_prev) {
    return lstm_backward(dh, dc, u, c_prev, tc, n, h, dv, dc_prev);
}
int keydnn_lstm_gates_backward_f64(const double* dh, const double* dc, const double* u, const double* c_prev,
                                   const double* tc, int64_t n, int64_t h, double* dv, double* dc_prev) {
    return lstm_backward(dh, dc, u, c_prev, tc, n, h, dv, dc_prev);
}
}
