// The seed's GRU (reset before the recurrent product: n = tanh(x W_in + (r * h) W_hn + b), which cuDNN does not
// implement) over a whole sequence, its loop on the host side of this library: per step two cuBLAS GEMMs and
// two fused gate kernels forward, two GEMMs and two fused kernels backward, no Python between them. The same
// arithmetic as gru_sequence_forward / _backward in keydnn/infrastructure/backends/composite_rnn.py: gx holds
// every step's input part with both biases and the gate scale folded in (z and r columns halved, so their
// sigmoid is 0.5 tanh + 0.5), w = W_hh[:, :2H] / 2 and wn = W_hh[:, 2H:].
#include "kd_common.cuh"

namespace {

__device__ __forceinline__ float tanh_of(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_of(double x) { return tanh(x); }

// zr = 0.5 tanh(gx[:, :2H] + gh) + 0.5 (z, r); e = r * h_prev.
template <typename T>
__global__ void seed_gates_a(const T *gx, const T *gh, const T *hp, int64_t n, int64_t h, T *zr, T *e) {
  KD_GRID_STRIDE(i, n * 2 * h) {
    const int64_t row = i / (2 * h), j = i - row * 2 * h;
    const T s = T(0.5) * tanh_of(gx[row * 3 * h + j] + gh[i]) + T(0.5);
    zr[i] = s;
    if (j >= h) e[row * h + j - h] = s * hp[row * h + j - h];
  }
}

// nn = tanh(gx[:, 2H:] + gn); h = nn + z (h_prev - nn).
template <typename T>
__global__ void seed_gates_b(const T *gx, const T *gn, const T *zr, const T *hp, int64_t n, int64_t h, T *nn,
                             T *hout) {
  KD_GRID_STRIDE(i, n * h) {
    const int64_t row = i / h, j = i - row * h;
    const T v = tanh_of(gx[row * 3 * h + 2 * h + j] + gn[i]);
    const T z = zr[row * 2 * h + j];
    nn[i] = v;
    hout[i] = v + z * (hp[i] - v);
  }
}

// dh = g + ca + cb (what reaches h_t: its own gradient and the later step's two paths); dz, the candidate's
// gradient dan (into dgx[:, 2H:]) and dh_prev's direct part dh z (into dhp, which may be ca: read first).
template <typename T>
__global__ void seed_grad_a(const T *g, const T *ca, const T *cb, const T *hp, const T *zr, const T *nn, int64_t n,
                            int64_t h, T *dz, T *dgx, T *dhp) {
  KD_GRID_STRIDE(i, n * h) {
    const int64_t row = i / h, j = i - row * h;
    T dh = g[i];
    if (ca) dh += ca[i];
    if (cb) dh += cb[i];
    const T z = zr[row * 2 * h + j], v = nn[i];
    dz[i] = dh * (hp[i] - v);
    dgx[row * 3 * h + 2 * h + j] = dh * (T(1) - z) * (T(1) - v * v);
    dhp[i] = dh * z;
  }
}

// From drh = dan wn^T: dr = drh h_prev, dh_prev += drh r, and d(z/2, r/2) = (dz, dr) zr (2 - 2 zr) into
// dgx[:, :2H].
template <typename T>
__global__ void seed_grad_b(const T *drh, const T *hp, const T *zr, const T *dz, int64_t n, int64_t h, T *dgx,
                            T *dhp) {
  KD_GRID_STRIDE(i, n * h) {
    const int64_t row = i / h, j = i - row * h;
    const T z = zr[row * 2 * h + j], r = zr[row * 2 * h + h + j], d = drh[i];
    dhp[i] += d * r;
    dgx[row * 3 * h + j] = dz[i] * (z * (T(2) - T(2) * z));
    dgx[row * 3 * h + h + j] = d * hp[i] * (r * (T(2) - T(2) * r));
  }
}

template <typename T>
__global__ void add_into(const T *a, const T *b, int64_t n, T *out) {
  KD_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

template <typename T>
constexpr int cuda_type() {
  return sizeof(T) == 4 ? 0 : 1;  // CUDA_R_32F, CUDA_R_64F
}

int blas_failed(int status, const char *op) {
  return kd::fail(KD_ERR_CUDA, "%s: cublasGemmEx returned status %d", op, status);
}

template <typename T>
int forward(void *handle, int compute, const T *gx, const T *h0, const T *w, const T *wn, int64_t steps, int64_t n,
            int64_t h, int reverse, T *out, T *zrs, T *ns, T *es, T *gh, T *gn) {
  const T one = 1, zero = 0;
  const int dt = cuda_type<T>();
  const T *hp = h0;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t t = reverse ? steps - 1 - s : s;
    const T *gxt = gx + t * n * 3 * h;
    T *zr = zrs + t * n * 2 * h, *e = es + t * n * h;
    int st = kd::gemm_rows(handle, dt, compute, false, n, 2 * h, h, hp, h, w, 2 * h, &one, &zero, gh, 2 * h);
    if (st) return blas_failed(st, "gru_sequence_forward");
    kd::launch(seed_gates_a<T>, kd::grid_for(n * 2 * h), kd::kThreads, gxt, gh, hp, n, h, zr, e);
    st = kd::gemm_rows(handle, dt, compute, false, n, h, h, e, h, wn, h, &one, &zero, gn, h);
    if (st) return blas_failed(st, "gru_sequence_forward");
    kd::launch(seed_gates_b<T>, kd::grid_for(n * h), kd::kThreads, gxt, gn, zr, hp, n, h, ns + t * n * h,
               out + t * n * h);
    hp = out + t * n * h;
  }
  return kd::check_launch("gru_sequence_forward");
}

template <typename T>
int backward(void *handle, int compute, const T *g, const T *h0, const T *out, const T *zrs, const T *ns,
             const T *w, const T *wn, int64_t steps, int64_t n, int64_t h, int reverse, T *dgx, T *dh0, T *dz,
             T *drh, T *ca, T *cb) {
  const T one = 1, zero = 0;
  const int dt = cuda_type<T>();
  bool first = true;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t t = reverse ? s : steps - 1 - s;
    const int64_t prev = reverse ? t + 1 : t - 1;
    const T *hp = (prev < 0 || prev >= steps) ? h0 : out + prev * n * h;
    const T *zr = zrs + t * n * 2 * h;
    T *dgxt = dgx + t * n * 3 * h;
    kd::launch(seed_grad_a<T>, kd::grid_for(n * h), kd::kThreads, g + t * n * h, first ? nullptr : ca,
               first ? nullptr : cb, hp, zr, ns + t * n * h, n, h, dz, dgxt, ca);
    int st = kd::gemm_rows(handle, dt, compute, true, n, h, h, dgxt + 2 * h, 3 * h, wn, h, &one, &zero, drh, h);
    if (st) return blas_failed(st, "gru_sequence_backward");
    kd::launch(seed_grad_b<T>, kd::grid_for(n * h), kd::kThreads, drh, hp, zr, dz, n, h, dgxt, ca);
    st = kd::gemm_rows(handle, dt, compute, true, n, h, 2 * h, dgxt, 3 * h, w, 2 * h, &one, &zero, cb, h);
    if (st) return blas_failed(st, "gru_sequence_backward");
    first = false;
  }
  kd::launch(add_into<T>, kd::grid_for(n * h), kd::kThreads, ca, cb, n * h, dh0);
  return kd::check_launch("gru_sequence_backward");
}

bool valid(int64_t steps, int64_t n, int64_t h) {
  return steps > 0 && n > 0 && h > 0 && n * 3 * h < INT32_MAX && 3 * h < INT32_MAX;
}

}  // namespace

extern "C" int kd_gru_seed_forward(int dtype, void *handle, int compute, const void *gx, const void *h0,
                                   const void *w, const void *wn, int64_t steps, int64_t n, int64_t h, int reverse,
                                   void *out, void *zrs, void *ns, void *es, void *gh, void *gn) {
  if (!valid(steps, n, h)) return kd::fail(KD_ERR_ARGUMENT, "gru_sequence_forward: bad sizes");
  KD_DISPATCH_FLOAT(dtype, "gru_sequence_forward",
    using P = const scalar_t *;
    return forward<scalar_t>(handle, compute, (P)gx, (P)h0, (P)w, (P)wn, steps, n, h, reverse, (scalar_t *)out,
                             (scalar_t *)zrs, (scalar_t *)ns, (scalar_t *)es, (scalar_t *)gh, (scalar_t *)gn));
  return KD_OK;
}

extern "C" int kd_gru_seed_backward(int dtype, void *handle, int compute, const void *g, const void *h0,
                                    const void *out, const void *zrs, const void *ns, const void *w, const void *wn,
                                    int64_t steps, int64_t n, int64_t h, int reverse, void *dgx, void *dh0,
                                    void *dz, void *drh, void *ca, void *cb) {
  if (!valid(steps, n, h)) return kd::fail(KD_ERR_ARGUMENT, "gru_sequence_backward: bad sizes");
  KD_DISPATCH_FLOAT(dtype, "gru_sequence_backward",
    using P = const scalar_t *;
    return backward<scalar_t>(handle, compute, (P)g, (P)h0, (P)out, (P)zrs, (P)ns, (P)w, (P)wn, steps, n, h,
                              reverse, (scalar_t *)dgx, (scalar_t *)dh0, (scalar_t *)dz, (scalar_t *)drh,
                              (scalar_t *)ca, (scalar_t *)cb));
  return KD_OK;
}
