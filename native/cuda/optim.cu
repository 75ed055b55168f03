// Fused multi-tensor optimizer steps: one launch updates up to kMaxTensors parameters in place, their
// pointers and sizes passed by value in a kernel-parameter table (blockIdx.y picks the tensor, blocks along x
// stride over its elements). Semantics match the NumPy reference backend exactly.
#include <algorithm>

#include "kd_common.cuh"

namespace {

constexpr int kMaxTensors = 48;

template <int NPTR>
struct TensorTable {
  void *ptr[NPTR][kMaxTensors];
  int64_t n[kMaxTensors];
};

template <typename T>
__global__ void sgd_kernel(TensorTable<3> t, T lr, T momentum, T dampening, int nesterov, T weight_decay) {
  const int k = blockIdx.y;
  T *p = static_cast<T *>(t.ptr[0][k]);
  const T *g = static_cast<const T *>(t.ptr[1][k]);
  T *b = static_cast<T *>(t.ptr[2][k]);
  const int64_t n = t.n[k];
  KD_GRID_STRIDE(i, n) {
    T pi = p[i];
    T gi = g[i];
    if (weight_decay != T(0)) gi += weight_decay * pi;
    if (momentum != T(0)) {
      T bi = momentum * b[i] + (T(1) - dampening) * gi;
      b[i] = bi;
      gi = nesterov ? gi + momentum * bi : bi;
    }
    p[i] = pi - lr * gi;
  }
}

// The bias corrections of step `step` as the kernel takes them: 1 / (1 - beta2^step) and lr / (1 - beta1^step).
template <typename T>
void adam_scalars(double lr, double beta1, double beta2, int64_t step, T *inv_c2, T *step_size) {
  const double c1 = 1.0 - pow(beta1, (double)step), c2 = 1.0 - pow(beta2, (double)step);
  *inv_c2 = (T)(1.0 / c2);
  *step_size = (T)(lr / c1);
}

// `scalars` (device memory: inv_c2, step_size), when given, replaces the two by-value corrections: a CUDA graph
// freezes kernel arguments, so a captured step reads the corrections its replay's host hook wrote there.
template <typename T>
__global__ void adam_kernel(TensorTable<4> t, T lr, T beta1, T beta2, T eps, T weight_decay, T inv_c2,
                            T step_size, const T *scalars, int decoupled) {
  if (scalars != nullptr) {
    inv_c2 = scalars[0];
    step_size = scalars[1];
  }
  const int k = blockIdx.y;
  T *p = static_cast<T *>(t.ptr[0][k]);
  const T *g = static_cast<const T *>(t.ptr[1][k]);
  T *m = static_cast<T *>(t.ptr[2][k]);
  T *v = static_cast<T *>(t.ptr[3][k]);
  const int64_t n = t.n[k];
  KD_GRID_STRIDE(i, n) {
    T pi = p[i];
    T gi = g[i];
    if (weight_decay != T(0)) {
      if (decoupled) pi *= T(1) - lr * weight_decay;
      else gi += weight_decay * pi;
    }
    T mi = beta1 * m[i] + (T(1) - beta1) * gi;
    T vi = beta2 * v[i] + (T(1) - beta2) * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * (mi / (sqrt(vi * inv_c2) + eps));
  }
}

// Runs `launch(table, grid)` once per chunk of kMaxTensors tensors.
template <int NPTR, typename Launch>
int for_chunks(int64_t count, void *const *const *ptrs, const int64_t *sizes, const char *op, Launch launch) {
  for (int64_t start = 0; start < count; start += kMaxTensors) {
    const int chunk = (int)std::min<int64_t>(kMaxTensors, count - start);
    TensorTable<NPTR> t{};
    int64_t max_n = 0;
    for (int j = 0; j < chunk; ++j) {
      for (int q = 0; q < NPTR; ++q) t.ptr[q][j] = ptrs[q][start + j];
      t.n[j] = sizes[start + j];
      max_n = std::max(max_n, sizes[start + j]);
    }
    if (max_n == 0) continue;
    int64_t per_tensor = std::max<int64_t>(1, (int64_t)kd::num_sms() * 8 / chunk);
    dim3 grid((unsigned)std::min(kd::ceil_div(max_n, kd::kThreads), per_tensor), (unsigned)chunk);
    launch(t, grid);
    int status = kd::check_launch(op);
    if (status != KD_OK) return status;
  }
  return KD_OK;
}

}  // namespace

extern "C" int kd_sgd_step(int dtype, int64_t count, void *const *params, const void *const *grads,
                           void *const *bufs, const int64_t *sizes, double lr, double momentum,
                           double dampening,
                           int nesterov, double weight_decay) {
  void *const *ptrs[3] = {params, const_cast<void *const *>(grads), bufs};
  KD_DISPATCH_FLOAT(dtype, "sgd_step",
    return for_chunks<3>(count, ptrs, sizes, "sgd_step", [&](const TensorTable<3> &t, dim3 grid) {
      kd::launch(sgd_kernel<scalar_t>, grid, kd::kThreads, t, (scalar_t)lr, (scalar_t)momentum,
                 (scalar_t)dampening, nesterov, (scalar_t)weight_decay);
    }));
  return KD_OK;
}

extern "C" int kd_adam_step(int dtype, int64_t count, void *const *params, const void *const *grads,
                            void *const *m,
                            void *const *v, const int64_t *sizes, double lr, double beta1, double beta2,
                            double eps,
                            double weight_decay, int64_t step, int decoupled, const void *scalars) {
  if (step < 1) return kd::fail(KD_ERR_ARGUMENT, "adam_step: step must be >= 1, got %lld", (long long)step);
  void *const *ptrs[4] = {params, const_cast<void *const *>(grads), m, v};
  KD_DISPATCH_FLOAT(dtype, "adam_step",
    scalar_t inv_c2, step_size;
    adam_scalars<scalar_t>(lr, beta1, beta2, step, &inv_c2, &step_size);
    const scalar_t *device_scalars = static_cast<const scalar_t *>(scalars);
    return for_chunks<4>(count, ptrs, sizes, "adam_step", [&](const TensorTable<4> &t, dim3 grid) {
      kd::launch(adam_kernel<scalar_t>, grid, kd::kThreads, t, (scalar_t)lr, (scalar_t)beta1, (scalar_t)beta2,
                 (scalar_t)eps, (scalar_t)weight_decay, inv_c2, step_size, device_scalars, decoupled);
    }));
  return KD_OK;
}

extern "C" int kd_adam_scalars(int dtype, double lr, double beta1, double beta2, int64_t step, void *host_out) {
  if (step < 1) return kd::fail(KD_ERR_ARGUMENT, "adam_step: step must be >= 1, got %lld", (long long)step);
  KD_DISPATCH_FLOAT(dtype, "adam_scalars",
    scalar_t *out = static_cast<scalar_t *>(host_out);
    adam_scalars<scalar_t>(lr, beta1, beta2, step, &out[0], &out[1]));
  return KD_OK;
}
