// LSTM gate arithmetic of one time step, fused: every gate of a row in one pass instead of a dozen NumPy
// kernels. The pre-activation v (n, 4h) holds gate blocks i, f, g, o with the sigmoid gates' columns already
// halved (the sequence op folds the 1/2 into its weights), so u = tanh(v) gives sigmoid gates as 0.5 u + 0.5
// and g = u; this is the contract of lstm_gates_forward / lstm_gates_backward in backends/contract.py.
//
// The whole sequence (keydnn_lstm_sequence_forward / _backward): the recurrence of lstm_sequence_forward /
// _backward (backends/composite_rnn.py) as one call, the per-step GEMM through the cblas_?gemm of the OpenBLAS
// NumPy already loaded (bound once by keydnn_cpu_bind_gemm), so a step costs no Python at all.
#include <cmath>
#include <cstring>
#include <type_traits>

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
            const T i = half * ur[j] + half, f = half * ur[h + j] + half;
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

// cblas_?gemm, LP64 (int) or ILP64 (int64_t) as the loaded OpenBLAS was built; enums are ints in both.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
using sgemm32 = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using sgemm64 = void (*)(int, int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                         int64_t, float, float*, int64_t);
using dgemm32 = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double,
                         double*, int);
using dgemm64 = void (*)(int, int, int, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                         int64_t, double, double*, int64_t);
struct GemmBinding {
    void* s = nullptr;
    void* d = nullptr;
    int ilp64 = 0;
} g_gemm;

// Row-major C (m, n) = A (m, k) @ B (k, n) [or B^T with B (n, k)] + beta C.
template <typename T>
inline void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
                 T beta, T* c, int64_t ldc) {
    using lp64 = std::conditional_t<sizeof(T) == 4, sgemm32, dgemm32>;
    using ilp64 = std::conditional_t<sizeof(T) == 4, sgemm64, dgemm64>;
    void* fn = sizeof(T) == 4 ? g_gemm.s : g_gemm.d;
    const int tb = trans_b ? kTrans : kNoTrans;
    if (g_gemm.ilp64)
        reinterpret_cast<ilp64>(fn)(kRowMajor, kNoTrans, tb, m, n, k, T(1), a, lda, b, ldb, beta, c, ldc);
    else
        reinterpret_cast<lp64>(fn)(kRowMajor, kNoTrans, tb, (int)m, (int)n, (int)k, T(1), a, (int)lda, b, (int)ldb,
                                   beta, c, (int)ldc);
}
template <typename T>
bool gemm_bound() {
    return (sizeof(T) == 4 ? g_gemm.s : g_gemm.d) != nullptr;
}

// gx (steps, n, 4h): every step's input part, scaled; w (h, 4h): W_hh with the sigmoid columns halved.
// out (steps + 1, n, h): h of every step, then the last c; u (steps, n, 4h), cs and tcs (steps, n, h): what the
// backward needs. reverse runs the steps from the last to the first.
template <typename T>
int lstm_sequence_forward(const T* gx, const T* h0, const T* c0, const T* w, int64_t steps, int64_t n, int64_t h,
                          int reverse, T* out, T* u, T* cs, T* tcs) {
    if (!gemm_bound<T>()) return KEYDNN_ERR_INVALID_ARGUMENT;
    if (!gx || !h0 || !c0 || !w || !out || !u || !cs || !tcs || steps < 1 || n < 1 || h < 1)
        return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t nh = n * h, ng = n * 4 * h;
    const T* hp = h0;
    const T* cp = c0;
    for (int64_t s = 0; s < steps; ++s) {
        const int64_t t = reverse ? steps - 1 - s : s;
        T* v = u + t * ng;  // the pre-activation, then (in place) its tanh
        std::memcpy(v, gx + t * ng, sizeof(T) * ng);
        gemm(false, n, 4 * h, h, hp, h, w, 4 * h, T(1), v, 4 * h);
        const int status = lstm_forward(v, cp, n, h, out + t * nh, cs + t * nh, v, tcs + t * nh);
        if (status) return status;
        hp = out + t * nh;
        cp = cs + t * nh;
    }
    std::memcpy(out + steps * nh, cp, sizeof(T) * nh);
    return KEYDNN_OK;
}

// g (steps + 1, n, h): dL/dh of every step, then dL/dc of the last. dz (steps, n, 4h): dL/d(scaled
// pre-activation) of every step; dh0, dc0 (n, h); work (n, h) scratch.
template <typename T>
int lstm_sequence_backward(const T* g, const T* u, const T* cs, const T* tcs, const T* c0, const T* w,
                           int64_t steps, int64_t n, int64_t h, int reverse, T* dz, T* dh0, T* dc0, T* work) {
    if (!gemm_bound<T>()) return KEYDNN_ERR_INVALID_ARGUMENT;
    if (!g || !u || !cs || !tcs || !c0 || !w || !dz || !dh0 || !dc0 || !work || steps < 1 || n < 1 || h < 1)
        return KEYDNN_ERR_INVALID_ARGUMENT;
    const int64_t nh = n * h, ng = n * 4 * h;
    T* dh = work;
    T* dc = dc0;  // dL/dc, carried from step to step in place (lstm_backward reads each element before writing it)
    std::memcpy(dc, g + steps * nh, sizeof(T) * nh);
    const T* dz_next = nullptr;
    for (int64_t s = 0; s < steps; ++s) {
        const int64_t t = reverse ? s : steps - 1 - s;
        const int64_t prev = reverse ? t + 1 : t - 1;
        const T* c_prev = (prev < 0 || prev >= steps) ? c0 : cs + prev * nh;
        std::memcpy(dh, g + t * nh, sizeof(T) * nh);
        if (dz_next) gemm(true, n, h, 4 * h, dz_next, 4 * h, w, 4 * h, T(1), dh, h);  // + dz_{next} W^T
        const int status = lstm_backward(dh, dc, u + t * ng, c_prev, tcs + t * nh, n, h, dz + t * ng, dc);
        if (status) return status;
        dz_next = dz + t * ng;
    }
    gemm(true, n, h, 4 * h, dz_next, 4 * h, w, 4 * h, T(0), dh0, h);
    return KEYDNN_OK;
}

}  // namespace

extern "C" {
void keydnn_cpu_bind_gemm(void* sgemm, void* dgemm, int ilp64) {
    g_gemm.s = sgemm;
    g_gemm.d = dgemm;
    g_gemm.ilp64 = ilp64;
}
int keydnn_lstm_sequence_forward_f32(const float* gx, const float* h0, const float* c0, const float* w,
                                     int64_t steps, int64_t n, int64_t h, int reverse, float* out, float* u,
                                     float* cs, float* tcs) {
    return lstm_sequence_forward(gx, h0, c0, w, steps, n, h, reverse, out, u, cs, tcs);
}
int keydnn_lstm_sequence_forward_f64(const double* gx, const double* h0, const double* c0, const double* w,
                                     int64_t steps, int64_t n, int64_t h, int reverse, double* out, double* u,
                                     double* cs, double* tcs) {
    return lstm_sequence_forward(gx, h0, c0, w, steps, n, h, reverse, out, u, cs, tcs);
}
int keydnn_lstm_sequence_backward_f32(const float* g, const float* u, const float* cs, const float* tcs,
                                      const float* c0, const float* w, int64_t steps, int64_t n, int64_t h,
                                      int reverse, float* dz, float* dh0, float* dc0, float* work) {
    return lstm_sequence_backward(g, u, cs, tcs, c0, w, steps, n, h, reverse, dz, dh0, dc0, work);
}
int keydnn_lstm_sequence_backward_f64(const double* g, const double* u, const double* cs, const double* tcs,
                                      const double* c0, const double* w, int64_t steps, int64_t n, int64_t h,
                                      int reverse, double* dz, double* dh0, double* dc0, double* work) {
    return lstm_sequence_backward(g, u, cs, tcs, c0, w, steps, n, h, reverse, dz, dh0, dc0, work);
}
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
