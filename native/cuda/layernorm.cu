// Layer normalisation over the trailing `cols` elements of contiguous rows (biased variance). Rows get a warp
// (short) or a block (long); the gamma/beta gradients are column sums over rows, split into a fixed number of
// row chunks whose partials a second kernel adds, so they are deterministic.
#include <algorithm>

#include "kd_common.cuh"

namespace {

template <typename T>
using Acc = typename kd::AccOf<T>::type;

template <int GROUP, typename A>
__device__ __forceinline__ A group_sum(A v) {
  if constexpr (GROUP == 32) return kd::warp_sum(v);
  else return kd::block_sum(v);
}

template <int GROUP>
__device__ __forceinline__ void row_position(int64_t &row, int &lane) {
  if constexpr (GROUP == 32) {
    row = blockIdx.x * (int64_t)(kd::kThreads / 32) + (threadIdx.x >> 5);
    lane = threadIdx.x & 31;
  } else {
    row = blockIdx.x;
    lane = threadIdx.x;
  }
}

template <typename T, int GROUP>
__global__ void ln_forward(T *y, T *mean_out, T *invstd_out, const T *x, const T *gamma, const T *beta,
                           int64_t rows,
                           int64_t cols, double eps) {
  using A = Acc<T>;
  int64_t row;
  int lane;
  row_position<GROUP>(row, lane);
  if (GROUP == 32 && row >= rows) return;
  const T *xr = x + row * cols;
  T *yr = y + row * cols;
  A s = 0;
  for (int64_t j = lane; j < cols; j += GROUP) s += (A)xr[j];
  const A mean = group_sum<GROUP>(s) / (A)cols;
  A q = 0;
  for (int64_t j = lane; j < cols; j += GROUP) {
    A d = (A)xr[j] - mean;
    q += d * d;
  }
  const A invstd = A(1) / sqrt(group_sum<GROUP>(q) / (A)cols + (A)eps);
  for (int64_t j = lane; j < cols; j += GROUP) {
    A v = ((A)xr[j] - mean) * invstd;
    if (gamma) v *= (A)gamma[j];
    if (beta) v += (A)beta[j];
    yr[j] = T(v);
  }
  if (lane == 0) {
    mean_out[row] = T(mean);
    invstd_out[row] = T(invstd);
  }
}

template <typename T, int GROUP>
__global__ void ln_backward_input(T *gx, const T *gy, const T *x, const T *gamma, const T *mean,
                                  const T *invstd,
                                  int64_t rows, int64_t cols) {
  using A = Acc<T>;
  int64_t row;
  int lane;
  row_position<GROUP>(row, lane);
  if (GROUP == 32 && row >= rows) return;
  const T *xr = x + row * cols;
  const T *gr = gy + row * cols;
  const A mu = (A)mean[row], is = (A)invstd[row];
  A sg = 0, sgx = 0;
  for (int64_t j = lane; j < cols; j += GROUP) {
    A g = gamma ? (A)gr[j] * (A)gamma[j] : (A)gr[j];
    sg += g;
    sgx += g * ((A)xr[j] - mu) * is;
  }
  sg = group_sum<GROUP>(sg) / (A)cols;
  sgx = group_sum<GROUP>(sgx) / (A)cols;
  for (int64_t j = lane; j < cols; j += GROUP) {
    A g = gamma ? (A)gr[j] * (A)gamma[j] : (A)gr[j];
    A xhat = ((A)xr[j] - mu) * is;
    gx[row * cols + j] = T((g - sg - xhat * sgx) * is);
  }
}

// blockIdx.y is the row chunk; writes partial (ggamma, gbeta) sums, or the final ones when there is
// one chunk.
template <typename T>
__global__ void ln_backward_params(Acc<T> *partial, T *ggamma, T *gbeta, const T *gy, const T *x,
                                   const T *mean,
                                   const T *invstd, int64_t rows, int64_t cols, int64_t chunk) {
  using A = Acc<T>;
  const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (j >= cols) return;
  const int64_t r0 = blockIdx.y * chunk;
  const int64_t r1 = rows < r0 + chunk ? rows : r0 + chunk;
  A sgg = 0, sgb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    A g = (A)gy[r * cols + j];
    sgb += g;
    sgg += g * ((A)x[r * cols + j] - (A)mean[r]) * (A)invstd[r];
  }
  if (partial) {
    partial[blockIdx.y * cols + j] = sgg;
    partial[(gridDim.y + blockIdx.y) * cols + j] = sgb;
  } else {
    ggamma[j] = T(sgg);
    gbeta[j] = T(sgb);
  }
}

template <typename T>
__global__ void ln_finish_params(T *ggamma, T *gbeta, const Acc<T> *partial, int64_t splits, int64_t cols) {
  const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (j >= cols) return;
  Acc<T> sgg = 0, sgb = 0;
  for (int64_t s = 0; s < splits; ++s) {
    sgg += partial[s * cols + j];
    sgb += partial[(splits + s) * cols + j];
  }
  ggamma[j] = T(sgg);
  gbeta[j] = T(sgb);
}

int64_t param_splits(int64_t rows, int64_t cols) {
  const int64_t blocks = kd::ceil_div(cols, kd::kThreads);
  if (rows < 128 || blocks >= 2 * kd::num_sms()) return 1;
  int64_t s = std::min(kd::ceil_div(4 * kd::num_sms(), blocks), kd::ceil_div(rows, 32));
  s = std::min<int64_t>(s, 1024);
  return kd::ceil_div(rows, kd::ceil_div(rows, s));  // no empty chunk
}

}  // namespace

extern "C" int kd_layer_norm_forward(int dtype, void *y, void *mean, void *invstd, const void *x,
                                     const void *gamma,
                                     const void *beta, int64_t rows, int64_t cols, double eps) {
  if (rows == 0) return KD_OK;
  if (cols <= 0) return kd::fail(KD_ERR_ARGUMENT, "layer_norm_forward: empty rows");
  KD_DISPATCH_FLOAT(dtype, "layer_norm_forward",
    using T = scalar_t;
    auto args = [&](auto kernel, unsigned grid, unsigned threads) {
      kd::launch(kernel, grid, threads, static_cast<T *>(y), static_cast<T *>(mean), static_cast<T *>(invstd),
                 static_cast<const T *>(x), static_cast<const T *>(gamma), static_cast<const T *>(beta), rows,
                 cols, eps);
    };
    if (cols <= 1024) args(ln_forward<T, 32>, (unsigned)kd::ceil_div(rows, kd::kThreads / 32), kd::kThreads);
    else args(ln_forward<T, 512>, (unsigned)rows, 512));
  return kd::check_launch("layer_norm_forward");
}

extern "C" int64_t kd_layer_norm_backward_workspace(int dtype, int64_t rows, int64_t cols) {
  int64_t splits = param_splits(rows, cols);
  return splits > 1 ? 2 * splits * cols * (dtype == KD_F32 ? 4 : 8) : 0;
}

extern "C" int kd_layer_norm_backward(int dtype, void *gx, void *ggamma, void *gbeta, const void *gy,
                                      const void *x,
                                      const void *gamma, const void *mean, const void *invstd, int64_t rows,
                                      int64_t cols, void *workspace, int64_t workspace_bytes) {
  if (cols <= 0) return kd::fail(KD_ERR_ARGUMENT, "layer_norm_backward: empty rows");
  const int64_t splits = param_splits(rows, cols);
  KD_DISPATCH_FLOAT(dtype, "layer_norm_backward",
    using T = scalar_t;
    const T *g = static_cast<const T *>(gy); const T *xx = static_cast<const T *>(x);
    const T *mu = static_cast<const T *>(mean); const T *is = static_cast<const T *>(invstd);
    if (rows > 0) {
      if (cols <= 1024)
        kd::launch(ln_backward_input<T, 32>, (unsigned)kd::ceil_div(rows, kd::kThreads / 32), kd::kThreads,
                   static_cast<T *>(gx), g, xx, static_cast<const T *>(gamma), mu, is, rows, cols);
      else
        kd::launch(ln_backward_input<T, 512>, (unsigned)rows, 512, static_cast<T *>(gx), g, xx,
                   static_cast<const T *>(gamma), mu, is, rows, cols);
    }
    if (ggamma != nullptr) {
      Acc<T> *partial = nullptr;
      if (splits > 1) {
        if (workspace == nullptr || workspace_bytes < (int64_t)(2 * splits * cols * sizeof(Acc<T>)))
          return kd::fail(KD_ERR_ARGUMENT, "layer_norm_backward: workspace too small");
        partial = static_cast<Acc<T> *>(workspace);
      }
      dim3 grid((unsigned)kd::ceil_div(cols, kd::kThreads), (unsigned)splits);
      const int64_t chunk = kd::ceil_div(rows > 0 ? rows : 1, splits);
      T *gg = static_cast<T *>(ggamma), *gb = static_cast<T *>(gbeta);
      kd::launch(ln_backward_params<T>, grid, kd::kThreads, partial, gg, gb, g, xx, mu, is, rows, cols,
                 chunk);
      if (partial)
        kd::launch(ln_finish_params<T>, (unsigned)kd::ceil_div(cols, kd::kThreads), kd::kThreads,
                   static_cast<T *>(ggamma), static_cast<T *>(gbeta), partial, splits, cols);
    });
  return kd::check_launch("layer_norm_backward");
}

// Batch norm's running statistics after a training step, in place (PyTorch's convention: the running variance
// follows the unbiased batch variance): rm = (1 - m) rm + m mean, rv = (1 - m) rv + m (1/invstd^2 - eps) unbias.
// One launch instead of the dozen elementwise ops it took over Tensors.
namespace {
template <typename T>
__global__ void bn_running_update(T *rm, T *rv, const T *mean, const T *invstd, int64_t c, double momentum,
                                  double eps, double unbias) {
  KD_GRID_STRIDE(i, c) {
    const double m = momentum, inv = (double)invstd[i];
    const double var = (1.0 / (inv * inv) - eps) * unbias;
    rm[i] = T((1.0 - m) * (double)rm[i] + m * (double)mean[i]);
    rv[i] = T((1.0 - m) * (double)rv[i] + m * var);
  }
}
}  // namespace

extern "C" int kd_batch_norm_running_update(int dtype, void *rm, void *rv, const void *mean, const void *invstd,
                                            int64_t c, double momentum, double eps, double unbias) {
  if (c == 0) return KD_OK;
  KD_DISPATCH_FLOAT(dtype, "batch_norm_running_update",
    kd::launch(bn_running_update<scalar_t>, kd::grid_for(c), kd::kThreads, (scalar_t *)rm, (scalar_t *)rv,
               (const scalar_t *)mean, (const scalar_t *)invstd, c, momentum, eps, unbias));
  return kd::check_launch("batch_norm_running_update");
}
