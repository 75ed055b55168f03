// Shared device/host helpers for KeyDNN's CUDA kernels: error reporting, launch sizing, strided offsets,
// dtype dispatch and warp/block reductions. Included by every native/cuda/*.cu file.
#pragma once

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <type_traits>

#include "keydnn_cuda.h"

namespace kd {

// Records a message for kd_last_error() and returns `code`.
int fail(int code, const char *fmt, ...);
// One cuBLAS GEMM on row-major operands through the bound cublasGemmEx (blas.cu); cuBLAS's status.
int gemm_rows(void *handle, int dtype, int compute, bool trans_b, int64_t m, int64_t n, int64_t k, const void *a,
              int64_t lda, const void *b, int64_t ldb, const void *one, const void *beta, void *c, int64_t ldc);
// KD_OK, or KD_ERR_CUDA with the runtime's message when the last launch failed.
int check_launch(const char *op);
// Multiprocessor count of the current device (cached; one count when every device has the same).
int num_sms();

// The stream every launch, copy and memset of the library goes to (kd_set_stream): the legacy default stream
// (0) unless Python switched to another one, as CUDA graph capture does.
extern cudaStream_t g_stream;
inline cudaStream_t stream() { return g_stream; }

// Launches a kernel on kd::stream() through the driver's cuLaunchKernel, with the kernel's CUfunction
// cached per device: the runtime's <<<>>> resolves the kernel again on every launch
// (scripts/bench_cuda_launch.cu on two H200 hosts: 4.82 and 4.03 us per launch through <<<>>>, 4.24 and
// 3.93 through a cached CUfunction).
// Falls back to cudaLaunchKernel where the driver entry point is missing. A failed launch is reported by
// the next check_launch.
void launch_raw(const void *kernel, dim3 grid, dim3 block, size_t shared, void **args);

template <typename T>
struct Same {
  using type = T;
};

// launch(kernel, grid, block, args...): the arguments convert to the kernel's parameter types, as <<<>>>'s
// do.
template <typename... P>
inline void launch(void (*kernel)(P...), dim3 grid, dim3 block, typename Same<P>::type... args) {
  void *params[sizeof...(P) + 1] = {(void *)&args..., nullptr};
  launch_raw(reinterpret_cast<const void *>(kernel), grid, block, 0, params);
}

constexpr int kThreads = 256;

// for (i = global thread index; i < n; i += total threads), with the index in int64.
#define KD_GRID_STRIDE(i, n)                                                    \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid size for a grid-stride loop over n work items: enough blocks to fill the GPU, no more.
inline unsigned grid_for(int64_t n, int threads = kThreads, int blocks_per_sm = 8) {
  int64_t want = ceil_div(n, threads);
  int64_t cap = (int64_t)num_sms() * blocks_per_sm;
  if (want > cap) want = cap;
  return (unsigned)(want < 1 ? 1 : want);
}

// Merges dimensions every operand walks contiguously and drops size-1 dimensions, so most strided
// iterations become 1-D or 2-D and the per-element index arithmetic stays small.
void collapse(kd_iter &it);
// True when every offset reachable through `it` (and n) fits in int32.
bool fits_int32(const kd_iter &it);

template <typename I, int N>
struct Offsets {
  int ndim;
  I shape[KD_MAX_DIMS];
  I strides[N][KD_MAX_DIMS];

  explicit Offsets(const kd_iter &it) {
    ndim = it.ndim;
    for (int d = 0; d < KD_MAX_DIMS; ++d) {
      shape[d] = d < it.ndim ? (I)it.shape[d] : 1;
      for (int k = 0; k < N; ++k) strides[k][d] = d < it.ndim ? (I)it.strides[k][d] : 0;
    }
  }

  __device__ __forceinline__ void get(I linear, I (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
    for (int d = KD_MAX_DIMS - 1; d >= 0; --d) {
      if (d < ndim) {
        I q = linear / shape[d];
        I idx = linear - q * shape[d];
        linear = q;
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
      }
    }
  }
};

// The first failing check in stream order claims `fault` (ticket 0 -> `ticket`) and says where it failed.
__device__ __forceinline__ void record_fault(kd_fault *fault, int64_t ticket, int64_t index, int64_t value) {
  if (fault == nullptr) return;
  auto *word = reinterpret_cast<unsigned long long *>(&fault->ticket);
  if (atomicCAS(word, 0ull, (unsigned long long)ticket) == 0ull) {
    fault->index = index;
    fault->value = value;
  }
}

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <typename T>
__device__ __forceinline__ bool is_nan(T x) {
  return x != x;
}

// NumPy's maximum/minimum: a NaN on either side wins.
template <typename T>
__device__ __forceinline__ T nan_max(T a, T b) {
  return (is_nan(a) || a > b) ? a : b;
}
template <typename T>
__device__ __forceinline__ T nan_min(T a, T b) {
  return (is_nan(a) || a < b) ? a : b;
}

template <typename T>
__device__ __forceinline__ T scalar_as(kd_scalar s) {
  return (T)s.f;
}
template <>
__device__ __forceinline__ int64_t scalar_as<int64_t>(kd_scalar s) {
  return s.i;
}
template <>
__device__ __forceinline__ uint8_t scalar_as<uint8_t>(kd_scalar s) {
  return s.i != 0;
}

// Float32 math accumulates in float; the rest in their own type.
template <typename T>
struct AccOf {
  using type = T;
};

__device__ __forceinline__ float fast_exp(float x) { return __expf(x); }
__device__ __forceinline__ double fast_exp(double x) { return exp(x); }
__device__ __forceinline__ float fast_log(float x) { return __logf(x); }
__device__ __forceinline__ double fast_log(double x) { return log(x); }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum/max for blockDim.x a multiple of 32 (<= 1024); every thread gets the result.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T shared[32];
  v = warp_sum(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : T(0);
  return warp_sum(v);
}
template <typename T>
__device__ T block_max(T v) {
  __shared__ T shared[32];
  v = warp_max(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : shared[0];
  return warp_max(v);
}

}  // namespace kd

// Dispatch on a float dtype code: runs BODY with `scalar_t` bound, or returns KD_ERR_DTYPE.
#define KD_DISPATCH_FLOAT(dtype, op, ...)                                            \
  switch (dtype) {                                                                   \
    case KD_F32: { using scalar_t = float; __VA_ARGS__; break; }                     \
    case KD_F64: { using scalar_t = double; __VA_ARGS__; break; }                    \
    default: return kd::fail(KD_ERR_DTYPE, "%s: unsupported dtype code %d", op, dtype); \
  }

#define KD_DISPATCH_NUMERIC(dtype, op, ...)                                          \
  switch (dtype) {                                                                   \
    case KD_F32: { using scalar_t = float; __VA_ARGS__; break; }                     \
    case KD_F64: { using scalar_t = double; __VA_ARGS__; break; }                    \
    case KD_I64: { using scalar_t = int64_t; __VA_ARGS__; break; }                   \
    default: return kd::fail(KD_ERR_DTYPE, "%s: unsupported dtype code %d", op, dtype); \
  }

#define KD_DISPATCH_ALL(dtype, op, ...)                                              \
  switch (dtype) {                                                                   \
    case KD_F32: { using scalar_t = float; __VA_ARGS__; break; }                     \
    case KD_F64: { using scalar_t = double; __VA_ARGS__; break; }                    \
    case KD_I64: { using scalar_t = int64_t; __VA_ARGS__; break; }                   \
    case KD_BOOL: { using scalar_t = uint8_t; __VA_ARGS__; break; }                  \
    default: return kd::fail(KD_ERR_DTYPE, "%s: unsupported dtype code %d", op, dtype); \
  }
